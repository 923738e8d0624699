//! The device description and the noise model: the example parses, bad files name
//! file:line:column, the physical MZI reduces to the Clements convention, a zero-noise device
//! gives the ideal result exactly, realisations are deterministic from the seed, DAC errors stay
//! within half an LSB, crosstalk follows its rule, drift has the variance σ_d²·t of a random walk.

use std::f64::consts::{FRAC_PI_4, PI};
use xdv_phi::device::{PhiDevice, EXAMPLE_TOML};
use xdv_phi::haar::haar_unitary;
use xdv_phi::mesh::Mesh;
use xdv_phi::mzi::mzi_matrix;
use xdv_phi::noise::{physical_mzi, realise, ShifterKind};
use xdv_phi::{run, run_on_device, PhiError, Program, C64};

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
        .map(|m| format!("[{}, {}]", 1.0 / (1.0 + m as f64), 0.1 * m as f64))
        .collect();
    let text = format!(
        "modes = {n}\ninput = [{}]\n\n[[op]]\nkind = \"unitary\"\nmodes = [{}]\nmatrix = [{}]\n\n[[op]]\nkind = \"bs\"\nmodes = [0, 1]\ntheta = 0.3\n",
        input.join(", "),
        modes.join(", "),
        rows.join(", ")
    );
    Program::from_toml(&text, "haar.toml").expect("the Haar program parses")
}

#[test]
fn the_example_device_parses_with_its_documented_values() {
    let d = PhiDevice::from_toml(EXAMPLE_TOML, "example.toml").expect("example parses");
    assert_eq!(d.name, "example-mesh-16");
    assert_eq!((d.modes, d.channels), (16, 4));
    assert_eq!(d.channel_wavelengths_nm.len(), 4);
    assert_eq!(d.dac_bits, 14);
    assert_eq!(d.bar_extinction_db, -30.0);
    assert_eq!(d.limits.mzis_max, 120);
    assert!((d.bar_leakage() - 1e-3).abs() < 1e-15);
    assert!(d.check().is_ok());
    assert!(!d.is_ideal());
    assert!(PhiDevice::ideal(4, 1).is_ideal());
}

/// (file text, expected "file:line:column" prefix, a word the message must contain).
const BAD_DEVICES: &[(&str, &str, &str)] = &[
    (
        "name = \"d\"\nmodes = 4\nfrobnicate = 1\n",
        "bad.toml:3:1",
        "frobnicate",
    ),
    ("name = \"d\"\nmodes = 0\n", "bad.toml:2:9", "modes"),
    (
        "name = \"d\"\nmodes = 4\ndac_bits = 40\n",
        "bad.toml:3:12",
        "dac_bits",
    ),
    (
        "name = \"d\"\nmodes = 4\nmzi_loss_db = -1\n",
        "bad.toml:3:15",
        "mzi_loss_db",
    ),
    (
        "name = \"d\"\nmodes = 4\nbar_extinction_db = 3.0\n",
        "bad.toml:3:21",
        "bar_extinction_db",
    ),
    (
        "name = \"d\"\nmodes = 4\nchannels = 2\nchannel_wavelengths_nm = [1550.0]\n",
        "bad.toml:4:26",
        "wavelengths",
    ),
    (
        "name = \"d\"\nmodes = 4\nchannels = 2\nchannel_wavelengths_nm = [1551.0, 1550.0]\n",
        "bad.toml:4:26",
        "ascending",
    ),
    (
        "name = \"d\"\nmodes = 4\ndac_range_rad = 1.0\n",
        "bad.toml:3:17",
        "dac_range_rad",
    ),
    ("name = \"d\"\nmodes = \"four\"\n", "bad.toml:2:9", "modes"),
    (
        "name = \"d\"\nmodes = 4\n[limits]\nmzis_max = 0\n",
        "bad.toml:4:12",
        "mzis_max",
    ),
    (
        "name = \"d\"\nmodes = 4\n[limits]\nwindow = 5\n",
        "bad.toml:4:1",
        "window",
    ),
    ("modes = 4\n", "bad.toml:1:1", "name"),
];

#[test]
fn bad_device_files_name_file_line_column_and_the_key() {
    for (text, at, word) in BAD_DEVICES {
        let e = PhiDevice::from_toml(text, "bad.toml").expect_err(text);
        let m = e.to_string();
        assert!(m.starts_with(at), "{text:?}: expected {at}, got: {m}");
        assert!(m.contains(word), "{text:?}: expected `{word}` in: {m}");
        assert!(matches!(e, PhiError::Program { .. }), "{m}");
    }
}

#[test]
fn the_physical_mzi_is_the_clements_mzi_without_errors() {
    for (theta, phi) in [
        (0.0, 0.0),
        (FRAC_PI_4, 0.3),
        (1.2, -2.0),
        (PI / 2.0, 3.0),
        (-0.7, 1.0),
    ] {
        let p = physical_mzi(theta, 2.0 * theta + PI, phi, 0.0, 0.0);
        let t = mzi_matrix(theta, phi);
        for i in 0..2 {
            for j in 0..2 {
                assert!(
                    (p[i][j] - t[i][j]).norm() < 1e-15,
                    "θ={theta} φ={phi} ({i},{j})"
                );
            }
        }
    }
    // Bar state with coupler errors δ₁, δ₂ leaks sin²(δ₂ − δ₁).
    let (d1, d2) = (0.01, -0.02);
    let p = physical_mzi(0.0, PI, 0.0, d1, d2);
    assert!((p[1][0].norm_sqr() - (d2 - d1).sin().powi(2)).abs() < 1e-15);
}

#[test]
fn a_zero_noise_device_gives_the_ideal_result_exactly() {
    for seed in [1, 2, 99] {
        let p = haar_program(9, seed);
        let ideal = run(&p, seed).unwrap();
        let dev = PhiDevice::ideal(9, 1);
        for elapsed in [0, 1_000_000_000] {
            let r = run_on_device(&p, &dev, seed, elapsed).unwrap();
            assert_eq!(r, ideal, "seed {seed}");
            assert_eq!(r.predicted_fidelity, 1.0);
        }
    }
}

fn noisy(n: usize) -> PhiDevice {
    PhiDevice {
        mzi_loss_db: 0.1,
        splitter_imbalance_rad: 0.01,
        phase_calibration_residual_rad: 0.003,
        dac_bits: 10,
        thermal_crosstalk: 0.002,
        phase_drift_rad_per_sqrt_s: 0.01,
        laser_linewidth_hz: 1e6,
        arm_delay_mismatch_ps: 1.0,
        ..PhiDevice::ideal(n, 1)
    }
}

#[test]
fn realisations_are_deterministic_from_the_seed() {
    let p = haar_program(8, 5);
    let mesh = p.mesh();
    let d = noisy(8);
    let a = realise(&mesh, &d, 42, 5_000_000_000).unwrap();
    let b = realise(&mesh, &d, 42, 5_000_000_000).unwrap();
    assert_eq!(a, b);
    let c = realise(&mesh, &d, 43, 5_000_000_000).unwrap();
    assert_ne!(a.mesh, c.mesh, "another seed draws other errors");
    let ra = run_on_device(&p, &d, 42, 5_000_000_000).unwrap();
    let rb = run_on_device(&p, &d, 42, 5_000_000_000).unwrap();
    assert_eq!(ra, rb);
    // The static draws do not depend on the elapsed time; the drift does.
    let e = realise(&mesh, &d, 42, 7_000_000_000).unwrap();
    for (x, y) in a.shifters.iter().zip(&e.shifters) {
        assert_eq!(x.calibration_rad, y.calibration_rad);
        assert_eq!(x.laser_rad, y.laser_rad);
    }
    assert_eq!(a.couplers_rad, e.couplers_rad);
    assert!(a
        .shifters
        .iter()
        .zip(&e.shifters)
        .any(|(x, y)| x.drift_rad != y.drift_rad));
}

#[test]
fn dac_quantisation_error_is_at_most_half_an_lsb() {
    let p = haar_program(12, 8);
    for bits in [1u32, 4, 8, 12, 16] {
        let d = PhiDevice {
            dac_bits: bits,
            ..PhiDevice::ideal(12, 1)
        };
        let lsb = d.dac_lsb_rad();
        assert_eq!(lsb, 2.0 * PI / f64::from(1u32 << bits));
        let r = realise(&p.mesh(), &d, 0, 0).unwrap();
        let mut worst = 0.0f64;
        for s in &r.shifters {
            let err = s.quantised_rad - s.programmed_rad;
            assert!(
                err.abs() <= lsb / 2.0 * (1.0 + 1e-12),
                "bits {bits}: {err} vs LSB {lsb}"
            );
            let steps = s.quantised_rad / lsb;
            assert!((steps - steps.round()).abs() < 1e-9, "on the LSB grid");
            worst = worst.max(err.abs());
            assert_eq!(s.error_rad(), err, "only the DAC acts on this device");
        }
        // With this many shifters the worst error comes close to half an LSB.
        assert!(worst > 0.3 * lsb, "bits {bits}: worst {worst} of LSB {lsb}");
    }
}

#[test]
fn crosstalk_is_kappa_times_the_neighbours_phases() {
    let p = haar_program(10, 3);
    let kappa = 0.01;
    let d = PhiDevice {
        thermal_crosstalk: kappa,
        ..PhiDevice::ideal(10, 1)
    };
    let r = realise(&p.mesh(), &d, 0, 0).unwrap();
    let mut some = false;
    for s in &r.shifters {
        // The nearest shifter of the same kind in the same column below and above, each at
        // most 2 modes away.
        let same = || {
            r.shifters
                .iter()
                .filter(|o| o.column == s.column && o.kind == s.kind)
        };
        let below = same()
            .filter(|o| o.mode < s.mode && s.mode - o.mode <= 2)
            .max_by_key(|o| o.mode);
        let above = same()
            .filter(|o| o.mode > s.mode && o.mode - s.mode <= 2)
            .min_by_key(|o| o.mode);
        let expect: f64 = below
            .into_iter()
            .chain(above)
            .map(|o| kappa * o.quantised_rad)
            .sum();
        assert!((s.crosstalk_rad - expect).abs() < 1e-15, "{s:?}");
        some |= expect != 0.0 && s.kind == ShifterKind::Internal;
    }
    assert!(some, "a Clements mesh has neighbouring internal shifters");
}

#[test]
fn drift_is_a_random_walk_with_variance_sigma_squared_t() {
    let mut mesh = Mesh::new(2);
    for _ in 0..50 {
        mesh.push(xdv_phi::Element::phase(0, 0.5)).unwrap();
    }
    let sd = 0.02;
    let d = PhiDevice {
        phase_drift_rad_per_sqrt_s: sd,
        ..PhiDevice::ideal(2, 1)
    };
    let (t1, t2) = (2_000_000_000u64, 8_000_000_000u64);
    let (mut s1, mut s2, mut s12, mut n) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for seed in 0..200u64 {
        let a = realise(&mesh, &d, seed, t1).unwrap();
        let b = realise(&mesh, &d, seed, t2).unwrap();
        for (x, y) in a.shifters.iter().zip(&b.shifters) {
            s1 += x.drift_rad * x.drift_rad;
            s2 += y.drift_rad * y.drift_rad;
            s12 += (y.drift_rad - x.drift_rad).powi(2);
            n += 1.0;
        }
    }
    // 10 000 samples: the sample variance is within 5 % of σ² at 3.5 standard errors (√(2/n)).
    let bound = 3.5 * (2.0 / n).sqrt();
    for (got, t) in [(s1 / n, t1), (s2 / n, t2), (s12 / n, t2 - t1)] {
        let want = sd * sd * t as f64 * 1e-9;
        assert!(
            (got / want - 1.0).abs() < bound,
            "t = {t} ns: {got} vs {want}"
        );
    }
}

#[test]
fn devices_too_small_for_a_program_are_refused() {
    let p = haar_program(8, 1);
    let e = run_on_device(&p, &PhiDevice::ideal(4, 1), 0, 0).unwrap_err();
    assert!(e.to_string().contains("modes"), "{e}");
    let small = PhiDevice {
        limits: xdv_phi::device::DeviceLimits {
            mzis_max: 3,
            window_ns_max: 10,
        },
        ..PhiDevice::ideal(8, 1)
    };
    let e = run_on_device(&p, &small, 0, 0).unwrap_err();
    assert!(e.to_string().contains("MZIs"), "{e}");
    let e = realise(&p.mesh(), &noisy(8), 0, u64::MAX).unwrap_err();
    assert!(e.to_string().contains("elapsed"), "{e}");
}

#[test]
fn loss_lowers_the_transmission_by_the_mzis_on_the_path() {
    // One MZI in the bar state on modes (0, 1), light in mode 0: one MZI's loss.
    let p = Program::from_toml(
        "modes = 2\ninput = [[1, 0], [0, 0]]\n[[op]]\nkind = \"mzi\"\nmodes = [0, 1]\ntheta = 0.0\nphi = 0.0\n",
        "bar.toml",
    )
    .unwrap();
    let d = PhiDevice {
        mzi_loss_db: 0.25,
        ..PhiDevice::ideal(2, 1)
    };
    let r = run_on_device(&p, &d, 0, 0).unwrap();
    assert!(
        (r.transmission_db + 0.25).abs() < 1e-12,
        "{}",
        r.transmission_db
    );
    assert!((r.amplitudes[0][0] - C64::new(10f64.powf(-0.25 / 20.0), 0.0)).norm() < 1e-12);
}

mod fuzz {
    use proptest::prelude::*;
    use xdv_phi::contract::Contract;
    use xdv_phi::device::{PhiDevice, EXAMPLE_TOML};

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Random text, and the example with one line replaced by random text, never panic the
        /// device or contract readers; an error always carries a position.
        #[test]
        fn readers_never_panic(text in ".{0,200}", line in 0usize..24, junk in "[a-z_]{1,12} = [-0-9.e]{1,8}") {
            let _ = PhiDevice::from_toml(&text, "fuzz.toml");
            let _ = Contract::from_toml(&text, "fuzz.toml");
            let mut lines: Vec<&str> = EXAMPLE_TOML.lines().collect();
            let k = line % lines.len();
            lines[k] = &junk;
            let edited = lines.join("\n");
            if let Err(e) = PhiDevice::from_toml(&edited, "fuzz.toml") {
                prop_assert!(e.to_string().starts_with("fuzz.toml:"), "{}", e);
            }
        }
    }
}
