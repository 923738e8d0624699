//! Nelder–Mead minimisation (the standard coefficients: reflection 1, expansion 2, contraction
//! ½, shrink ½), deterministic: the same start gives the same path.

/// The outcome of a minimisation.
#[derive(Clone, Debug, PartialEq)]
pub struct Minimum {
    /// The best point found.
    pub x: Vec<f64>,
    /// The function's value there.
    pub value: f64,
    /// Function evaluations made.
    pub evaluations: usize,
}

/// Minimises `f` from `start` with an initial simplex of edge `step`, until the values of the
/// simplex span less than `tolerance` or `evaluations_max` evaluations are spent.
pub fn nelder_mead<F, E>(
    mut f: F,
    start: &[f64],
    step: f64,
    tolerance: f64,
    evaluations_max: usize,
) -> Result<Minimum, E>
where
    F: FnMut(&[f64]) -> Result<f64, E>,
{
    let n = start.len();
    let mut evaluations = 0usize;
    let mut eval = |x: &[f64], evaluations: &mut usize| {
        *evaluations += 1;
        f(x)
    };
    let mut simplex: Vec<(Vec<f64>, f64)> = Vec::with_capacity(n + 1);
    let v0 = eval(start, &mut evaluations)?;
    simplex.push((start.to_vec(), v0));
    for i in 0..n {
        let mut x = start.to_vec();
        x[i] += step;
        let v = eval(&x, &mut evaluations)?;
        simplex.push((x, v));
    }
    while evaluations < evaluations_max {
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (best, worst) = (simplex[0].1, simplex[n].1);
        if (worst - best).abs() < tolerance {
            break;
        }
        let centroid: Vec<f64> = (0..n)
            .map(|j| simplex[..n].iter().map(|p| p.0[j]).sum::<f64>() / n as f64)
            .collect();
        let along = |t: f64| -> Vec<f64> {
            centroid
                .iter()
                .zip(&simplex[n].0)
                .map(|(c, w)| c + t * (c - w))
                .collect()
        };
        let xr = along(1.0);
        let vr = eval(&xr, &mut evaluations)?;
        if vr < simplex[0].1 {
            let xe = along(2.0);
            let ve = eval(&xe, &mut evaluations)?;
            simplex[n] = if ve < vr { (xe, ve) } else { (xr, vr) };
        } else if vr < simplex[n - 1].1 {
            simplex[n] = (xr, vr);
        } else {
            let outside = vr < simplex[n].1;
            let xc = along(if outside { 0.5 } else { -0.5 });
            let vc = eval(&xc, &mut evaluations)?;
            if vc < vr.min(simplex[n].1) {
                simplex[n] = (xc, vc);
            } else {
                let x0 = simplex[0].0.clone();
                for p in simplex.iter_mut().skip(1) {
                    let x: Vec<f64> = x0
                        .iter()
                        .zip(&p.0)
                        .map(|(a, b)| a + 0.5 * (b - a))
                        .collect();
                    let v = eval(&x, &mut evaluations)?;
                    *p = (x, v);
                }
            }
        }
    }
    simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (x, value) = simplex.swap_remove(0);
    Ok(Minimum {
        x,
        value,
        evaluations,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_minimum_of_a_quadratic() {
        let m = nelder_mead::<_, ()>(
            |x| Ok((x[0] - 1.0).powi(2) + 3.0 * (x[1] + 2.0).powi(2)),
            &[0.0, 0.0],
            0.5,
            1e-14,
            10_000,
        )
        .unwrap();
        assert!(
            (m.x[0] - 1.0).abs() < 1e-5 && (m.x[1] + 2.0).abs() < 1e-5,
            "{m:?}"
        );
    }
}
