//! Detection statistics against the closed forms: Poisson shot noise (mean n̄, variance n̄),
//! homodyne quadratures (mean √(2ħ)·Re(a e^{−iφ}), variance ħ/2), ADC quantisation, and
//! determinism from the seed. Bounds are six standard errors of the estimator (a false failure
//! has probability below 1e−8 per check); every failure prints its seed.

use xdv_phi::detect::{detect, Adc, Detect, HomodyneDetect, IntensityDetect};
use xdv_phi::{run, Program, C64};

fn mean_var(xs: &[f64]) -> (f64, f64) {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    let v = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0);
    (m, v)
}

fn intensity(modes: usize, shots: usize, shot_noise: bool, adc: Option<Adc>) -> Detect {
    Detect::Intensity(IntensityDetect {
        modes: (0..modes).collect(),
        shot_noise,
        adc,
        shots,
    })
}

#[test]
fn shot_noise_is_poisson() {
    // Means across the Knuth (< 10), PTRS (≥ 10) and large regimes.
    let means = [0.05, 0.7, 3.0, 9.5, 10.0, 42.0, 1e3, 2.5e5];
    let shots = 20_000;
    for seed in [1u64, 2] {
        let field: Vec<C64> = means
            .iter()
            .map(|m: &f64| C64::from_polar(m.sqrt(), 0.3))
            .collect();
        let d = detect(&intensity(means.len(), shots, true, None), &[field], seed).unwrap();
        for (i, &lam) in means.iter().enumerate() {
            assert!((d.expected[0][i] - lam).abs() <= 1e-12 * lam, "seed {seed}");
            assert!((d.variance[0][i] - lam).abs() <= 1e-12 * lam, "seed {seed}");
            let xs: Vec<f64> = d.samples.iter().map(|s| s[0][i]).collect();
            assert!(
                xs.iter().all(|x| x.fract() == 0.0 && *x >= 0.0),
                "seed {seed}: counts are whole"
            );
            let (m, v) = mean_var(&xs);
            let n = shots as f64;
            // Var of the sample mean λ/n; of the sample variance ≈ (μ4 − λ²)/n, μ4 = λ(1 + 3λ).
            let se_mean = (lam / n).sqrt();
            let se_var = ((lam * (1.0 + 3.0 * lam) - lam * lam) / n).sqrt();
            assert!(
                (m - lam).abs() < 6.0 * se_mean,
                "seed {seed}, λ = {lam}: mean {m}"
            );
            assert!(
                (v - lam).abs() < 6.0 * se_var,
                "seed {seed}, λ = {lam}: variance {v}"
            );
        }
    }
}

#[test]
fn homodyne_quadratures_have_the_closed_form_statistics() {
    let amps = [C64::new(0.0, 0.0), C64::new(1.5, -0.4), C64::new(-0.2, 3.0)];
    let phases = [0.0, 0.7, std::f64::consts::FRAC_PI_2];
    let shots = 20_000;
    for (seed, hbar) in [(7u64, 2.0), (8, 1.0)] {
        let spec = Detect::Homodyne(HomodyneDetect {
            modes: vec![0, 1, 2],
            lo_phase: phases.to_vec(),
            hbar,
            shots,
        });
        let d = detect(&spec, &[amps.to_vec()], seed).unwrap();
        for i in 0..3 {
            let a = amps[i];
            let phi = phases[i];
            // x_φ = √(2ħ)(Re a cos φ + Im a sin φ)
            let want = (2.0 * hbar).sqrt() * (a.re * phi.cos() + a.im * phi.sin());
            assert!((d.expected[0][i] - want).abs() < 1e-12, "seed {seed}");
            let xs: Vec<f64> = d.samples.iter().map(|s| s[0][i]).collect();
            let (m, v) = mean_var(&xs);
            let var = hbar / 2.0;
            let n = shots as f64;
            assert!(
                (m - want).abs() < 6.0 * (var / n).sqrt(),
                "seed {seed}, mode {i}: mean {m} vs {want}"
            );
            // Normal: Var of the sample variance is 2σ⁴/(n − 1).
            assert!(
                (v - var).abs() < 6.0 * (2.0 * var * var / (n - 1.0)).sqrt(),
                "seed {seed}, mode {i}: variance {v} vs {var}"
            );
        }
    }
}

#[test]
fn adc_quantises_to_codes() {
    let field = vec![C64::new(2.0, 0.0), C64::new(0.1, 0.0), C64::new(100.0, 0.0)];
    let adc = Adc {
        bits: 4,
        full_scale: 15.0 * 0.5,
    };
    let d = detect(&intensity(3, 1, false, Some(adc)), &[field], 1).unwrap();
    let codes = d.codes.as_ref().unwrap();
    // LSB 0.5 photons: 4 → code 8, 0.01 → 0, 10000 → clamped to 15.
    assert_eq!(codes[0][0], vec![8, 0, 15]);
    assert_eq!(d.samples[0][0], vec![4.0, 0.0, 7.5]);
}

#[test]
fn detection_is_deterministic_from_the_seed() {
    let text = "modes = 2\ninput = [[3, 0], [0, 1]]\n[[op]]\nkind = \"bs\"\nmodes = [0, 1]\ntheta = 0.4\n[detect]\nkind = \"intensity\"\nshot_noise = true\nshots = 50\n";
    let p = Program::from_toml(text, "d.toml").unwrap();
    let a = run(&p, 11).unwrap();
    let b = run(&p, 11).unwrap();
    let c = run(&p, 12).unwrap();
    assert_eq!(a.detection, b.detection);
    assert_ne!(a.detection.samples, c.detection.samples);
    // The expectation is the noise-free intensity, whatever the seed.
    assert_eq!(a.detection.expected, c.detection.expected);
    for m in 0..2 {
        assert!((a.detection.expected[0][m] - a.intensities[0][m]).abs() < 1e-15);
    }
}

#[test]
fn homodyne_from_a_program_with_per_mode_phases() {
    let text = "modes = 3\ninput = [[1, 0], [0, 2], [0.5, 0.5]]\n[detect]\nkind = \"homodyne\"\nmodes = [1, 2]\nlo_phase = [1.5707963267948966, 0.0]\nshots = 3\n";
    let p = Program::from_toml(text, "h.toml").unwrap();
    let r = run(&p, 3).unwrap();
    assert_eq!(r.detection.modes, vec![1, 2]);
    // ħ = 2: mode 1 (a = 2i, φ = π/2) → 2·Im a = 4; mode 2 (a = 0.5 + 0.5i, φ = 0) → 2·Re a = 1.
    assert!((r.detection.expected[0][0] - 4.0).abs() < 1e-12);
    assert!((r.detection.expected[0][1] - 1.0).abs() < 1e-12);
    assert_eq!(r.detection.samples.len(), 3);
    let j = r.to_json();
    assert_eq!(j["detection"]["kind"], "homodyne");
}
