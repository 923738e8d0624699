//! The Clements decomposition (Clements et al., "Optimal design for universal multiport
//! interferometers", Optica 3, 1460 (2016)): any N × N unitary `U` as N(N−1)/2 MZIs
//! `T(θ, φ)` (see [`crate::mzi`]) in a rectangular arrangement, followed by N output phases.
//!
//! **Composition, exactly.** With `mzis = [T_0, T_1, …, T_{K−1}]` (each `T_k` the N × N matrix
//! that acts as `T(θ_k, φ_k)` on its modes `(m_k, m_k+1)` and as the identity elsewhere) and
//! `D = diag(e^{i·output_phases[0]}, …, e^{i·output_phases[N−1]})`:
//!
//! ```text
//! U = D · T_{K−1} ⋯ T_1 · T_0
//! ```
//!
//! i.e. applying the MZIs to a field in the listed order, then the output phases, reproduces
//! `U · field`. [`Decomposition::reconstruct`] computes exactly this product.
//!
//! **Algorithm.** The lower-left triangle of a working copy of `U` is nulled anti-diagonal by
//! anti-diagonal. On even anti-diagonals an element is nulled from the right (columns `(c, c+1)`
//! multiplied by `T⁻¹`), on odd ones from the left (rows `(r−1, r)` multiplied by `T`). Each
//! step touches only the two affected columns or rows, and only the part of them not already zero,
//! so the whole is O(N³) with a small constant. What remains is a diagonal `D₀`; the left factors
//! are then moved through it using `T(θ,φ)⁻¹ · diag(d₁, d₂) = diag(−e^{−iφ} d₂, d₂) · T(θ, φ′)`
//! with `e^{iφ′} = −d₁/d₂`, which leaves one ordered list of MZIs and the output phases. The input
//! is first checked to be unitary: max |U†U − I| ≤ [`UNITARITY_TOLERANCE`].

use serde::{Deserialize, Serialize};
use std::f64::consts::PI;

use crate::mesh::Mesh;
use crate::mzi::Mzi;
use crate::{Matrix, PhiError, C64};

/// The largest max |U†U − I| accepted as unitary. The decomposition of a matrix this far from
/// unitary reconstructs it only to about this accuracy; give entries to full double precision.
pub const UNITARITY_TOLERANCE: f64 = 1e-9;

/// Largest matrix [`decompose`] accepts, in modes.
pub const DECOMPOSE_MODES_MAX: usize = 4096;

/// A unitary as a rectangular Clements mesh: `U = D · T_{K−1} ⋯ T_0` (see the module docs).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Decomposition {
    /// N, the number of modes.
    pub modes: usize,
    /// The N(N−1)/2 MZIs, in application order (the first listed acts first on the field).
    pub mzis: Vec<Mzi>,
    /// The N output phases in radians, in (−π, π], applied after all MZIs: mode k gets e^{i·p_k}.
    pub output_phases: Vec<f64>,
}

impl Decomposition {
    /// The matrix `D · T_{K−1} ⋯ T_0` that the decomposition describes.
    pub fn reconstruct(&self) -> Matrix {
        Mesh::from_decomposition(self).transfer_matrix()
    }

    /// The decomposition as a mesh of precomputed elements (for fast application to fields).
    pub fn mesh(&self) -> Mesh {
        Mesh::from_decomposition(self)
    }
}

/// Wraps an angle into (−π, π].
fn wrap(a: f64) -> f64 {
    let mut x = a % (2.0 * PI);
    if x > PI {
        x -= 2.0 * PI;
    } else if x <= -PI {
        x += 2.0 * PI;
    }
    x
}

/// Decomposes a unitary into a rectangular Clements mesh (see the module docs for the exact
/// composition). Refuses a matrix with max |U†U − I| above [`UNITARITY_TOLERANCE`], reporting the
/// deviation, and one larger than [`DECOMPOSE_MODES_MAX`].
pub fn decompose(u: &Matrix) -> Result<Decomposition, PhiError> {
    let n = u.n();
    if n == 0 {
        return Err(PhiError::Shape {
            message: "a 0 × 0 matrix has nothing to decompose; give at least 1 mode".into(),
        });
    }
    if n > DECOMPOSE_MODES_MAX {
        return Err(PhiError::Limit {
            what: "the matrix size in modes".into(),
            value: n as u64,
            max: DECOMPOSE_MODES_MAX as u64,
            hint: "split the transform into smaller blocks".into(),
        });
    }
    let deviation = u.unitarity_deviation();
    if deviation > UNITARITY_TOLERANCE {
        return Err(PhiError::NotUnitary {
            deviation,
            tolerance: UNITARITY_TOLERANCE,
        });
    }
    // The working copy is row-major with a padded row stride `ld`: with ld = n, a power-of-two
    // row length in bytes maps every row of a column to the same cache sets, and the column
    // steps (which touch two adjacent entries in each row) thrash the caches.
    let ld = n + 4;
    let mut a = vec![C64::new(0.0, 0.0); n * ld];
    for r in 0..n {
        a[r * ld..r * ld + n].copy_from_slice(u.row(r));
    }
    let pairs = n * (n - 1) / 2;
    let mut right: Vec<Mzi> = Vec::with_capacity(pairs);
    let mut left: Vec<Mzi> = Vec::with_capacity(pairs);
    for i in 0..n - 1 {
        if i % 2 == 0 {
            // Null a[r][col] from the right with T(θ,φ)⁻¹ on columns (col, col+1):
            // [x', y'] = [x, y] · T⁻¹ gives x' = e^{−iφ} cos θ · x − sin θ · y = 0 for
            // tan θ = |x|/|y|, φ = arg x − arg y.
            for j in 0..=i {
                let r = n - 1 - j;
                let col = i - j;
                let x = a[r * ld + col];
                let y = a[r * ld + col + 1];
                let theta = x.norm().atan2(y.norm());
                let phi = if x.norm() == 0.0 {
                    0.0
                } else {
                    wrap(x.arg() - y.arg())
                };
                let (s, c) = theta.sin_cos();
                let e = C64::from_polar(1.0, -phi);
                // Rows below r are already zero in both columns.
                for row in 0..=r {
                    let p = row * ld + col;
                    let t = a[p] * e;
                    let yy = a[p + 1];
                    a[p] = t * c - yy * s;
                    a[p + 1] = t * s + yy * c;
                }
                a[r * ld + col] = C64::new(0.0, 0.0);
                right.push(Mzi::new(col, theta, phi));
            }
        } else {
            // Null a[r][col] from the left with T(θ,φ) on rows (r−1, r):
            // y' = e^{iφ} sin θ · x + cos θ · y = 0 for tan θ = |y|/|x|, φ = π + arg y − arg x.
            for j in 1..=i + 1 {
                let r = n + j - i - 2;
                let col = j - 1;
                let x = a[(r - 1) * ld + col];
                let y = a[r * ld + col];
                let theta = y.norm().atan2(x.norm());
                let phi = if y.norm() == 0.0 {
                    0.0
                } else {
                    wrap(PI + y.arg() - x.arg())
                };
                let (s, c) = theta.sin_cos();
                let e = C64::from_polar(1.0, phi);
                // Columns left of col are already zero in both rows.
                let (upper, lower) = a.split_at_mut(r * ld);
                let row_x = &mut upper[(r - 1) * ld + col..(r - 1) * ld + n];
                let row_y = &mut lower[col..n];
                for (xx, yy) in row_x.iter_mut().zip(row_y.iter_mut()) {
                    let t = e * *xx;
                    let yv = *yy;
                    *xx = t * c - yv * s;
                    *yy = t * s + yv * c;
                }
                a[r * ld + col] = C64::new(0.0, 0.0);
                left.push(Mzi::new(r - 1, theta, phi));
            }
        }
    }
    // Now L_K ⋯ L_1 · U · R_1⁻¹ ⋯ R_M⁻¹ = D₀, so U = L_1⁻¹ ⋯ L_K⁻¹ · D₀ · R_M ⋯ R_1.
    // Move each L⁻¹ (the last one first) through the diagonal: L⁻¹ D = D′ T′.
    let mut d: Vec<C64> = (0..n).map(|k| a[k * ld + k]).collect();
    let mut mzis = right;
    for l in left.iter().rev() {
        let m = l.modes[0];
        let (d1, d2) = (d[m], d[m + 1]);
        let phi_new = wrap(PI + d1.arg() - d2.arg());
        d[m] = -C64::from_polar(1.0, -l.phi) * d2;
        mzis.push(Mzi::new(m, l.theta, phi_new));
    }
    let output_phases = d.iter().map(|z| z.arg()).collect();
    Ok(Decomposition {
        modes: n,
        mzis,
        output_phases,
    })
}
