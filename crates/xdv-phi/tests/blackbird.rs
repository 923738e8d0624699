//! The Blackbird importer: files in `tests/blackbird/` run to outputs computed here by hand from
//! Strawberry Fields' gate definitions (2 × 2 matrices multiplied out in this file, not taken from
//! the importer), quantum and non-passive operations are refused with their name, line:column and
//! the reason, syntax errors name file:line:column, and `Program::from_path` dispatches on the
//! extension.
#![allow(clippy::needless_range_loop)] // mode-indexed loops read like the formulas

use std::f64::consts::PI;
use std::path::PathBuf;
use xdv_phi::detect::Detect;
use xdv_phi::{from_blackbird, run, run_with, Path, Program, C64};

type M2 = [[C64; 2]; 2];

fn c(re: f64, im: f64) -> C64 {
    C64::new(re, im)
}

fn file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/blackbird")
        .join(name)
}

/// SF's BSgate on (a, b): a → cos θ a − e^{−iφ} sin θ b, b → e^{iφ} sin θ a + cos θ b.
fn sf_bs(theta: f64, phi: f64) -> M2 {
    let (s, co) = (theta.sin(), theta.cos());
    [
        [c(co, 0.0), -c(phi.cos(), -phi.sin()) * s],
        [c(phi.cos(), phi.sin()) * s, c(co, 0.0)],
    ]
}

fn mul(a: M2, b: M2) -> M2 {
    let mut o = [[c(0.0, 0.0); 2]; 2];
    for i in 0..2 {
        for j in 0..2 {
            o[i][j] = a[i][0] * b[0][j] + a[i][1] * b[1][j];
        }
    }
    o
}

fn rot0(p: f64) -> M2 {
    [
        [c(p.cos(), p.sin()), c(0.0, 0.0)],
        [c(0.0, 0.0), c(1.0, 0.0)],
    ]
}

/// Applies a 2 × 2 matrix to modes (i, j) of a field.
fn apply(x: &mut [C64], m: M2, i: usize, j: usize) {
    let (a, b) = (x[i], x[j]);
    x[i] = m[0][0] * a + m[0][1] * b;
    x[j] = m[1][0] * a + m[1][1] * b;
}

#[test]
fn gates_file_runs_to_its_hand_computed_output() {
    let p = Program::from_path(&file("gates.xbb")).unwrap();
    assert_eq!(p.modes, 3);
    let mut x = vec![C64::from_polar(0.7, PI / 3.0), c(0.0, 0.0), c(1.2, 0.0)];
    apply(&mut x, sf_bs(PI / 5.0, 0.4), 0, 1);
    x[1] *= C64::from_polar(1.0, -0.25);
    // MZgate(φ_in, φ_ex) = BS(π/4, π/2) R(φ_in) BS(π/4, π/2) R(φ_ex), R on the first mode.
    let bs = sf_bs(PI / 4.0, PI / 2.0);
    let mz = mul(bs, mul(rot0(1.1), mul(bs, rot0(0.3))));
    apply(&mut x, mz, 1, 2);
    // BSgate() is BS(π/4, 0), here on (q[2], q[0]): mode 2 is its first mode.
    apply(&mut x, sf_bs(PI / 4.0, 0.0), 2, 0);
    x[0] *= 0.81f64.sqrt();
    for path in [Path::Reference, Path::TransferMatrix] {
        let r = run_with(&p, 1, path).unwrap();
        for m in 0..3 {
            let d = (r.amplitudes[0][m] - x[m]).norm();
            assert!(
                d < 1e-12,
                "{path:?} mode {m}: {} vs {}",
                r.amplitudes[0][m],
                x[m]
            );
        }
    }
}

#[test]
fn mzgate_identity_and_swap_as_sf_documents() {
    // SF: MZgate(π, 0) is diagonal (no coupling) and MZgate(0, 0) swaps the modes.
    for (phi_in, coupled) in [(PI, false), (0.0, true)] {
        let text =
            format!("name t\nversion 1.0\nCoherent(1.0) | 0\nMZgate({phi_in:?}, 0) | [0, 1]\n");
        let r = run(&from_blackbird(&text, "t.xbb").unwrap(), 1).unwrap();
        let (p0, p1) = (r.intensities[0][0], r.intensities[0][1]);
        if coupled {
            assert!(p0 < 1e-24 && (p1 - 1.0).abs() < 1e-12, "{p0} {p1}");
        } else {
            assert!((p0 - 1.0).abs() < 1e-12 && p1 < 1e-24, "{p0} {p1}");
        }
    }
}

#[test]
fn interferometer_file_applies_the_unitary_on_listed_modes() {
    let p = Program::from_path(&file("interferometer.xbb")).unwrap();
    assert_eq!(p.modes, 4);
    // U acts on (q3, q0, q1) in that order: y[L[i]] = Σ_j U[i][j] x[L[j]], mode 2 untouched.
    let listed = [3usize, 0, 1];
    let x = [
        c(1.0, 0.0),
        c(0.0, 0.0),
        c(0.0, 0.0),
        C64::from_polar(0.5, PI / 2.0),
    ];
    let mut want = x;
    for (i, &li) in listed.iter().enumerate() {
        want[li] = listed
            .iter()
            .enumerate()
            .map(|(j, &lj)| {
                C64::from_polar(1.0 / 3f64.sqrt(), 2.0 * PI * ((i * j) % 3) as f64 / 3.0) * x[lj]
            })
            .sum();
    }
    let r = run(&p, 1).unwrap();
    for m in 0..4 {
        // The file's 8 digits: the nearest unitary differs from the exact DFT by ~1e−8.
        let d = (r.amplitudes[0][m] - want[m]).norm();
        assert!(d < 1e-7, "mode {m}: {} vs {}", r.amplitudes[0][m], want[m]);
    }
    // Lossless: the polar factor is exactly unitary.
    assert!(r.transmission_db.abs() < 1e-12);
}

#[test]
fn homodyne_file_sets_phases_and_shots() {
    let p = Program::from_path(&file("homodyne.xbb")).unwrap();
    let Detect::Homodyne(h) = &p.detect else {
        panic!("{:?}", p.detect)
    };
    assert_eq!(h.modes, vec![0, 1]);
    assert_eq!(h.lo_phase, vec![0.3, PI / 2.0]);
    assert_eq!(h.shots, 4000);
    assert_eq!(h.hbar, 2.0);
    let mut x = [C64::from_polar(1.5, 0.2), C64::from_polar(0.8, -1.0)];
    let bs = sf_bs(PI / 4.0, PI / 2.0);
    let (a, b) = (x[0], x[1]);
    x = [bs[0][0] * a + bs[0][1] * b, bs[1][0] * a + bs[1][1] * b];
    let r = run(&p, 5).unwrap();
    let want = [2.0 * (x[0] * C64::from_polar(1.0, -0.3)).re, 2.0 * x[1].im];
    for i in 0..2 {
        assert!(
            (r.detection.expected[0][i] - want[i]).abs() < 1e-12,
            "mode {i}"
        );
        let mean = r.detection.samples.iter().map(|s| s[0][i]).sum::<f64>() / 4000.0;
        // Vacuum variance 1 (ħ = 2): six standard errors of the mean.
        assert!(
            (mean - want[i]).abs() < 6.0 / 4000f64.sqrt(),
            "seed 5, mode {i}: {mean} vs {}",
            want[i]
        );
    }
}

#[test]
fn refusals_name_the_operation_position_and_reason() {
    let head = "name t\nversion 1.0\nCoherent(1.0) | 0\n";
    let cases: &[(&str, &[&str])] = &[
        (
            "Sgate(0.5) | 0\n",
            &["t.xbb:4:1", "`Sgate`", "non-passive", "Q domain"],
        ),
        (
            "  Squeezed(0.5) | 1\n",
            &["t.xbb:4:3", "`Squeezed`", "Q domain"],
        ),
        (
            "S2gate(1.0, 0.0) | [0, 1]\n",
            &["t.xbb:4:1", "`S2gate`", "non-passive"],
        ),
        (
            "Kgate(0.1) | 0\n",
            &["t.xbb:4:1", "`Kgate`", "non-Gaussian"],
        ),
        ("Vgate(0.1) | 0\n", &["`Vgate`", "non-Gaussian"]),
        ("Fock(1) | 1\n", &["t.xbb:4:1", "`Fock`", "non-Gaussian"]),
        ("Catstate(1.0) | 1\n", &["`Catstate`", "non-Gaussian"]),
        ("GKP() | 1\n", &["`GKP`", "non-Gaussian"]),
        (
            "MeasureFock() | [0, 1]\n",
            &["t.xbb:4:1", "`MeasureFock`", "Q domain"],
        ),
        ("Dgate(0.5) | 0\n", &["`Dgate`", "displacement", "Coherent"]),
        (
            "Teleport(1) | 0\n",
            &["t.xbb:4:1", "unknown operation `Teleport`"],
        ),
        (
            "MeasureHomodyne(select=0.1) | 0\n",
            &["t.xbb:4:17", "post-selection"],
        ),
        (
            "BSgate(0.1) | 0\n",
            &["t.xbb:4:15", "acts on 2 modes, 1 given"],
        ),
        (
            "BSgate(0.1, 0.2, 0.3) | [0, 1]\n",
            &["t.xbb:4:18", "at most 2 parameters"],
        ),
        (
            "Rgate(0.1+0.2j) | 0\n",
            &["t.xbb:4:7", "not a finite real number"],
        ),
        ("Rgate(foo) | 0\n", &["t.xbb:4:7", "`foo` is neither"]),
        ("Rgate(0.1) 0\n", &["t.xbb:4:12", "expected `|`"]),
        ("Rgate((0.1) | 0\n", &["t.xbb:4:13", "expected `)`"]),
        (
            "Rgate(0.1) | [0, 1\n",
            &["t.xbb:4:19", "to close the list of modes"],
        ),
        (
            "Rgate(0.1) | 0 ?\n",
            &["t.xbb:4:16", "unexpected character `?`"],
        ),
        ("LossChannel(1.5) | 0\n", &["t.xbb:4:1", "outside [0, 1]"]),
        (
            "MeasureX | 0\nRgate(0.1) | 0\n",
            &["t.xbb:5:14", "measured at 4:12"],
        ),
        (
            "Rgate(0.1) | 1\nCoherent(1.0) | 1\n",
            &["t.xbb:5:1", "prepared after a gate"],
        ),
        ("BSgate() | [1, 1]\n", &["t.xbb:4:16", "listed twice"]),
        (
            "complex array U[2, 2] =\n    1, 0\n    0, 2\nInterferometer(U) | [0, 1]\n",
            &["t.xbb:7:16", "not unitary"],
        ),
        (
            "complex array U[2, 3] =\n    1, 0\n    0, 1\n",
            &["t.xbb:4:17", "declared 2 × 3"],
        ),
        (
            "Interferometer(V) | [0, 1]\n",
            &["t.xbb:4:16", "`V` is neither"],
        ),
        ("type tdm (temporal_modes=3)\n", &["t.xbb:4:1", "TDM"]),
        ("float x = {alpha}\n", &["t.xbb:4:11", "template parameter"]),
    ];
    for (tail, expect) in cases {
        let text = format!("{head}{tail}");
        let e = from_blackbird(&text, "t.xbb").expect_err(tail).to_string();
        for x in *expect {
            assert!(e.contains(x), "`{e}` lacks `{x}` for\n{tail}");
        }
    }
    let dark = from_blackbird("name t\nversion 1.0\nRgate(0.1) | 0\n", "t.xbb")
        .expect_err("dark")
        .to_string();
    assert!(dark.contains("every input is vacuum"), "{dark}");
    let bad_version = from_blackbird("name t\nversion 2.0\n", "t.xbb")
        .expect_err("v")
        .to_string();
    assert!(bad_version.contains("t.xbb:2:9"), "{bad_version}");
}

#[test]
fn expressions_evaluate_like_python() {
    let cases = [
        ("pi/4", PI / 4.0),
        ("-2**2", -4.0),
        ("2**-1", 0.5),
        (
            "sqrt(2)*cos(0.3) - exp(0.1)/3",
            2f64.sqrt() * 0.3f64.cos() - 0.1f64.exp() / 3.0,
        ),
        ("(1+2)*3 - 4/2", 7.0),
        ("arctan(1)*4", PI),
        ("1e-1 + .5", 0.6),
        ("log(exp(1.25))", 1.25),
    ];
    for (e, want) in cases {
        let text = format!("name t\nversion 1.0\nCoherent(1.0) | 0\nRgate({e}) | 0\n");
        let p = from_blackbird(&text, "t.xbb").unwrap();
        let r = run(&p, 0).unwrap();
        let got = r.amplitudes[0][0].arg();
        let want_phase = C64::from_polar(1.0, want).arg();
        assert!(
            (got - want_phase).abs() < 1e-12,
            "{e}: {got} vs {want_phase}"
        );
    }
    // A complex literal as a matrix entry and as a scalar.
    let text = "name t\nversion 1.0\ncomplex z = 0.6+0.8j\ncomplex array U[1, 1] =\n    z\nCoherent(1.0) | 0\nInterferometer(U) | [0]\n";
    let r = run(&from_blackbird(text, "t.xbb").unwrap(), 0).unwrap();
    assert!((r.amplitudes[0][0] - c(0.6, 0.8)).norm() < 1e-12);
}

#[test]
fn from_path_dispatches_on_the_extension() {
    let dir = std::env::temp_dir().join(format!("xdv-phi-bb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let toml = dir.join("p.toml");
    let json = dir.join("p.json");
    let other = dir.join("p.txt");
    std::fs::write(&toml, "modes = 1\ninput = [[1, 0]]\n").unwrap();
    std::fs::write(&json, "{\"modes\": 1, \"input\": [[1, 0]]}").unwrap();
    std::fs::write(&other, "").unwrap();
    assert_eq!(
        Program::from_path(&toml).unwrap(),
        Program::from_path(&json).unwrap()
    );
    let e = Program::from_path(&other).unwrap_err().to_string();
    assert!(e.contains("`.txt` names no Φ program format"), "{e}");
    let missing = Program::from_path(&dir.join("none.xbb"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("cannot read the file"), "{missing}");
    std::fs::remove_dir_all(&dir).unwrap();
}
