//! Contracts: the predicted fidelity against Monte Carlo over seeds (phase errors, coupler
//! errors, drift), the systematic part against an exact realisation, the coherence window's
//! closed form against the model, the envelope against Monte Carlo, every refusal, and bad
//! contract files.

use xdv_phi::contract::{
    admit, coherence_window_ns, fidelity, predict, predict_envelope, rms_phase_error_rad, Contract,
    Envelope, Refusal,
};
use xdv_phi::device::PhiDevice;
use xdv_phi::haar::haar_unitary;
use xdv_phi::noise::realise;
use xdv_phi::{Mesh, PhiError, Program};

fn haar_program(n: usize, seed: u64) -> Program {
    let u = haar_unitary(n, seed);
    let rows: Vec<String> = u
        .to_rows()
        .iter()
        .map(|r| {
            let e: Vec<String> = r
                .iter()
                .map(|z| format!("[{:?}, {:?}]", z.re, z.im))
                .collect();
            format!("[{}]", e.join(", "))
        })
        .collect();
    let modes: Vec<String> = (0..n).map(|m| m.to_string()).collect();
    let input: Vec<String> = (0..n)
        .map(|m| format!("[{}, {}]", 1.0 / (1.0 + m as f64), 0.2))
        .collect();
    let text = format!(
        "modes = {n}\ninput = [{}]\n\n[[op]]\nkind = \"unitary\"\nmodes = [{}]\nmatrix = [{}]\n",
        input.join(", "),
        modes.join(", "),
        rows.join(", ")
    );
    Program::from_toml(&text, "haar.toml").expect("the Haar program parses")
}

/// The mean infidelity 1 − F over `seeds` realisations and its standard error.
fn monte_carlo(mesh: &Mesh, d: &PhiDevice, seeds: u64, elapsed_ns: u64) -> (f64, f64) {
    let u = mesh.transfer_matrix();
    let xs: Vec<f64> = (0..seeds)
        .map(|seed| {
            let r = realise(mesh, d, seed, elapsed_ns).unwrap();
            1.0 - fidelity(&u, &r.mesh.transfer_matrix())
        })
        .collect();
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}

/// (name, device, elapsed ns): cases whose random errors the second-order model must predict.
fn random_cases(n: usize) -> Vec<(&'static str, PhiDevice, u64)> {
    let ideal = PhiDevice::ideal(n, 1);
    vec![
        (
            "calibration residual σ = 0.01 rad",
            PhiDevice {
                phase_calibration_residual_rad: 0.01,
                ..ideal.clone()
            },
            0,
        ),
        (
            "splitter imbalance σ = 0.01 rad",
            PhiDevice {
                splitter_imbalance_rad: 0.01,
                ..ideal.clone()
            },
            0,
        ),
        (
            "drift σ_d = 0.01 rad/√s after 1 s",
            PhiDevice {
                phase_drift_rad_per_sqrt_s: 0.01,
                ..ideal.clone()
            },
            1_000_000_000,
        ),
        (
            "laser 1 MHz × 10 ps arm mismatch and calibration 0.005 rad",
            PhiDevice {
                laser_linewidth_hz: 1e6,
                arm_delay_mismatch_ps: 10.0,
                phase_calibration_residual_rad: 0.005,
                ..ideal
            },
            0,
        ),
    ]
}

#[test]
fn predicted_fidelity_matches_monte_carlo_over_seeds() {
    let n = 8;
    let mesh = haar_program(n, 11).mesh();
    for (name, d, t) in random_cases(n) {
        let p = predict(&mesh, &d, t).unwrap();
        assert!(
            (p.fidelity_systematic - 1.0).abs() < 1e-12,
            "{name}: no systematic errors"
        );
        let (mean, se) = monte_carlo(&mesh, &d, 400, t);
        // Statistical bound: 4 standard errors of the mean; model bound: the neglected
        // fourth-order terms, below 2 % of the infidelity at these σ.
        let bound = 4.0 * se + 0.02 * p.infidelity_random;
        eprintln!(
            "{name}: Monte Carlo 1 − F = {mean:.4e} ± {se:.1e}, predicted {:.4e}",
            p.infidelity_random
        );
        assert!(
            (mean - p.infidelity_random).abs() <= bound,
            "{name}: Monte Carlo 1 − F = {mean:.4e} ± {se:.1e}, predicted {:.4e} (seeds 0..400)",
            p.infidelity_random
        );
    }
}

#[test]
fn phase_error_infidelity_has_the_closed_form_per_shifter() {
    // 1 − F = K σ² (N − 1)/N² for K shifters with σ: independent of the transform.
    let (n, sigma) = (8usize, 0.01);
    let d = PhiDevice {
        phase_calibration_residual_rad: sigma,
        ..PhiDevice::ideal(n, 1)
    };
    for seed in [1, 2, 3] {
        let mesh = haar_program(n, seed).mesh();
        let shifters = 2 * n * (n - 1) / 2 + n;
        let want = shifters as f64 * sigma * sigma * (n - 1) as f64 / (n * n) as f64;
        let got = predict(&mesh, &d, 0).unwrap().infidelity_random;
        assert!((got - want).abs() < 1e-15, "{got} vs {want}");
    }
}

#[test]
fn systematic_prediction_is_the_exact_realisation() {
    let n = 6;
    let mesh = haar_program(n, 4).mesh();
    let d = PhiDevice {
        dac_bits: 6,
        thermal_crosstalk: 0.01,
        mzi_loss_db: 0.3,
        ..PhiDevice::ideal(n, 1)
    };
    let p = predict(&mesh, &d, 0).unwrap();
    assert_eq!(p.infidelity_random, 0.0);
    let r = realise(&mesh, &d, 12345, 0).unwrap();
    let v = r.mesh.transfer_matrix();
    let f = fidelity(&mesh.transfer_matrix(), &v);
    assert!((p.fidelity - f).abs() < 1e-14, "{} vs {f}", p.fidelity);
    assert!(
        p.fidelity < 1.0 - 1e-6,
        "6-bit DAC and 1 % crosstalk cost fidelity"
    );
    // Transmission: every light path of a rectangular 6-mode mesh crosses 6 MZIs or fewer.
    assert!(p.transmission_db < 0.0 && p.transmission_db >= -0.3 * n as f64 - 1e-12);
    let power: f64 = v.data().iter().map(|z| z.norm_sqr()).sum();
    assert!((p.transmission_db - 10.0 * (power / n as f64).log10()).abs() < 1e-12);
}

#[test]
fn coherence_window_closed_form_agrees_with_the_model() {
    let d = PhiDevice {
        phase_calibration_residual_rad: 0.003,
        dac_bits: 12,
        laser_linewidth_hz: 1e5,
        arm_delay_mismatch_ps: 2.0,
        phase_drift_rad_per_sqrt_s: 0.004,
        ..PhiDevice::ideal(4, 1)
    };
    for eps in [0.005, 0.01, 0.05] {
        let w = coherence_window_ns(&d, eps);
        assert!(w.is_finite() && w > 0.0);
        let at = rms_phase_error_rad(&d, w);
        assert!((at - eps).abs() < 1e-12 * eps, "ε = {eps}: σ(t_w) = {at}");
        assert!(rms_phase_error_rad(&d, w * (1.0 + 1e-6)) > eps);
        assert!(rms_phase_error_rad(&d, w * (1.0 - 1e-6)) < eps);
    }
    // Below the static error: no window; without drift: unbounded.
    assert_eq!(coherence_window_ns(&d, 0.001), 0.0);
    let still = PhiDevice {
        phase_drift_rad_per_sqrt_s: 0.0,
        ..d
    };
    assert_eq!(coherence_window_ns(&still, 0.01), f64::INFINITY);
}

#[test]
fn the_modelled_phase_error_is_what_realisations_show() {
    // σ(t) from the model against the rms of realised shifter errors over seeds.
    let d = PhiDevice {
        phase_calibration_residual_rad: 0.004,
        phase_drift_rad_per_sqrt_s: 0.003,
        ..PhiDevice::ideal(6, 1)
    };
    let mesh = haar_program(6, 2).mesh();
    let t = 3_000_000_000u64;
    let (mut s, mut k) = (0.0f64, 0.0f64);
    for seed in 0..60 {
        for sh in realise(&mesh, &d, seed, t).unwrap().shifters {
            s += sh.error_rad().powi(2);
            k += 1.0;
        }
    }
    let want = rms_phase_error_rad(&d, t as f64).powi(2);
    let got = s / k;
    assert!(
        (got / want - 1.0).abs() < 4.0 * (2.0 / k).sqrt(),
        "{got} vs {want}"
    );
}

#[test]
fn envelope_prediction_matches_monte_carlo() {
    let n = 6;
    let p = haar_program(n, 9);
    let mesh = p.mesh();
    let d = PhiDevice {
        phase_calibration_residual_rad: 0.01,
        splitter_imbalance_rad: 0.005,
        ..PhiDevice::ideal(n, 1)
    };
    let input = &p.input[0];
    let figures = predict_envelope(&mesh, &d, 0, input).unwrap();
    let mut ideal = input.clone();
    mesh.apply(&mut ideal).unwrap();
    let norm2: f64 = ideal.iter().map(|a| a.norm_sqr()).sum();
    let seeds = 300;
    let mut ms = vec![0.0f64; n];
    for seed in 0..seeds {
        let mut f = input.clone();
        realise(&mesh, &d, seed, 0)
            .unwrap()
            .mesh
            .apply(&mut f)
            .unwrap();
        for (m, (a, b)) in f.iter().zip(&ideal).enumerate() {
            ms[m] += (a - b).norm_sqr() / norm2;
        }
    }
    for (m, fig) in figures.iter().enumerate() {
        let mc = (ms[m] / seeds as f64).sqrt();
        // rms over 300 seeds of a sum of many terms: within 25 % (about 4 standard errors).
        assert!(
            (mc / fig.amplitude_error - 1.0).abs() < 0.25,
            "mode {m}: Monte Carlo {mc:.3e}, predicted {:.3e}",
            fig.amplitude_error
        );
    }
}

fn contract(program: &Program) -> Contract {
    Contract {
        program: "p.toml".into(),
        modes: program.modes,
        channels: program.channels,
        window_ns: 1_000_000,
        fidelity_min: 0.9,
        loss_budget_db: 3.0,
        coherence_tolerance_rad: 0.05,
        envelope: None,
    }
}

#[test]
fn admission_admits_with_its_figures_and_refuses_each_kind() {
    let p = haar_program(8, 3);
    let good = PhiDevice {
        phase_calibration_residual_rad: 0.002,
        phase_drift_rad_per_sqrt_s: 0.001,
        mzi_loss_db: 0.05,
        reconfiguration_time_ns: 10_000,
        ..PhiDevice::ideal(8, 2)
    };
    let c = contract(&p);
    let a = admit(&c, &p, &good).expect("admitted");
    let pred = predict(&p.mesh(), &good, 1_010_000).unwrap();
    assert_eq!(a.prediction, pred);
    assert_eq!(a.window_end_ns, 1_010_000);

    let refusal = |c: &Contract, d: &PhiDevice| admit(c, &p, d).unwrap_err();
    assert!(matches!(
        refusal(&c, &PhiDevice::ideal(4, 1)),
        Refusal::ModesExceedDevice {
            requested: 8,
            available: 4
        }
    ));
    let c3 = Contract {
        channels: 3,
        ..c.clone()
    };
    assert!(matches!(
        refusal(&c3, &good),
        Refusal::ChannelsExceedDevice {
            requested: 3,
            available: 2
        }
    ));
    let c2 = Contract {
        channels: 2,
        ..c.clone()
    };
    assert!(matches!(
        refusal(&c2, &good),
        Refusal::ProgramMismatch { .. }
    ));
    let few = PhiDevice {
        limits: xdv_phi::device::DeviceLimits {
            mzis_max: 10,
            window_ns_max: 1 << 40,
        },
        ..good.clone()
    };
    assert!(matches!(
        refusal(&c, &few),
        Refusal::MzisExceedDevice {
            required: 28,
            available: 10
        }
    ));
    let short = PhiDevice {
        limits: xdv_phi::device::DeviceLimits {
            mzis_max: 28,
            window_ns_max: 1000,
        },
        ..good.clone()
    };
    assert!(matches!(
        refusal(&c, &short),
        Refusal::WindowAboveDeviceLimit { .. }
    ));
    // σ₀ = 0.002 rad, σ_d = 0.001 rad/√s: a window of (0.005² − 0.002²)/0.001² = 21 s.
    let long = Contract {
        window_ns: 30_000_000_000,
        coherence_tolerance_rad: 0.005,
        ..c.clone()
    };
    match refusal(&long, &good) {
        Refusal::WindowExceedsCoherence {
            coherence_window_ns,
            ..
        } => {
            assert_eq!(coherence_window_ns, coherence_window_ns_of(&good, 0.005));
            assert!((coherence_window_ns / 21e9 - 1.0).abs() < 1e-12);
        }
        r => panic!("{r}"),
    }
    let strict = Contract {
        fidelity_min: 0.9999999,
        ..c.clone()
    };
    match refusal(&strict, &good) {
        Refusal::FidelityBelowMinimum {
            predicted,
            required,
        } => {
            assert_eq!(predicted, pred.fidelity);
            assert_eq!(required, 0.9999999);
        }
        r => panic!("{r}"),
    }
    let stingy = Contract {
        loss_budget_db: 0.01,
        ..c.clone()
    };
    match refusal(&stingy, &good) {
        Refusal::LossOverBudget {
            predicted_loss_db,
            budget_db,
        } => {
            assert_eq!(predicted_loss_db, -pred.transmission_db);
            assert_eq!(budget_db, 0.01);
        }
        r => panic!("{r}"),
    }
    let tight = Contract {
        envelope: Some(Envelope {
            amplitude_tolerance: 1e-6,
            phase_tolerance_rad: 1.0,
        }),
        ..c.clone()
    };
    assert!(matches!(
        refusal(&tight, &good),
        Refusal::EnvelopeViolated {
            quantity: "amplitude",
            ..
        }
    ));
    let phase = Contract {
        envelope: Some(Envelope {
            amplitude_tolerance: 1.0,
            phase_tolerance_rad: 1e-6,
        }),
        ..c.clone()
    };
    assert!(matches!(
        refusal(&phase, &good),
        Refusal::EnvelopeViolated {
            quantity: "phase",
            ..
        }
    ));
    let loose = Contract {
        envelope: Some(Envelope {
            amplitude_tolerance: 0.5,
            phase_tolerance_rad: 0.5,
        }),
        ..c.clone()
    };
    let a = admit(&loose, &p, &good).unwrap();
    assert_eq!(a.envelope.len(), 8);
}

fn coherence_window_ns_of(d: &PhiDevice, eps: f64) -> f64 {
    coherence_window_ns(d, eps)
}

const CONTRACT: &str = "program = \"p.toml\"\nmodes = 8\nwindow_ns = 1000000\nfidelity_min = 0.99\nloss_budget_db = 3.0\ncoherence_tolerance_rad = 0.05\n\n[envelope]\namplitude_tolerance = 0.02\nphase_tolerance_rad = 0.05\n";

#[test]
fn a_contract_file_parses() {
    let c = Contract::from_toml(CONTRACT, "c.toml").unwrap();
    assert_eq!(c.modes, 8);
    assert_eq!(c.channels, 1);
    assert_eq!(c.window_ns, 1_000_000);
    assert_eq!(
        c.envelope,
        Some(Envelope {
            amplitude_tolerance: 0.02,
            phase_tolerance_rad: 0.05
        })
    );
}

#[test]
fn bad_contract_files_name_file_line_column() {
    let cases: &[(&str, &str, &str)] = &[
        ("window_ns = 1000000", "window_ns = 0", "c.toml:3:13"),
        ("fidelity_min = 0.99", "fidelity_min = 1.5", "c.toml:4:16"),
        ("loss_budget_db = 3.0", "loss_budget_db = -1", "c.toml:5:18"),
        (
            "coherence_tolerance_rad = 0.05",
            "coherence_tolerance_rad = 0",
            "c.toml:6:27",
        ),
        ("modes = 8", "modes = 8\nextra = 1", "c.toml:3:1"),
        (
            "phase_tolerance_rad = 0.05",
            "phase_tol = 0.05",
            "c.toml:10:1",
        ),
        ("modes = 8", "modes = -2", "c.toml:2:9"),
    ];
    for (from, to, at) in cases {
        let text = CONTRACT.replace(from, to);
        let e = Contract::from_toml(&text, "c.toml").unwrap_err();
        assert!(matches!(e, PhiError::Program { .. }));
        assert!(e.to_string().starts_with(at), "{to}: expected {at}: {e}");
    }
}
