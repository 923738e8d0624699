//! `xdv phi` as a user runs it: the decomposition's JSON, recomposed here from the documented
//! convention alone, reproduces the matrix; programs run; bad input is a located error.

use serde_json::Value;
use std::process::{Command, Output};

fn xdv(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xdv"))
        .args(args)
        .output()
        .expect("xdv runs")
}

fn file(name: &str, text: &str) -> String {
    let dir = std::env::temp_dir().join(format!("xdv-phi-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

type C = (f64, f64);
fn mul(a: C, b: C) -> C {
    (a.0 * b.0 - a.1 * b.1, a.0 * b.1 + a.1 * b.0)
}

#[test]
fn decompose_then_recompose_by_the_documented_convention() {
    let n = 6usize;
    // The DFT matrix F[j][k] = e^{2πi jk/n} / √n.
    let dft: Vec<Vec<C>> = (0..n)
        .map(|j| {
            (0..n)
                .map(|k| {
                    let a = 2.0 * std::f64::consts::PI * (j * k) as f64 / n as f64;
                    (a.cos() / (n as f64).sqrt(), a.sin() / (n as f64).sqrt())
                })
                .collect()
        })
        .collect();
    let text = serde_json::to_string(
        &dft.iter()
            .map(|r| r.iter().map(|&(re, im)| [re, im]).collect::<Vec<_>>())
            .collect::<Vec<_>>(),
    )
    .unwrap();
    let f = file("dft6.json", &text);
    let out = xdv(&["phi", "decompose", &f, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let d: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(d["modes"], 6);
    let mzis = d["mzis"].as_array().unwrap();
    assert_eq!(mzis.len(), n * (n - 1) / 2);
    assert!(d["reconstruction_error"].as_f64().unwrap() < 1e-12);
    // U = D · T_{K−1} ⋯ T_0: start from the identity, apply each MZI's 2×2 block
    // [[e^{iφ} cos θ, −sin θ], [e^{iφ} sin θ, cos θ]] to its two rows, then the output phases.
    let mut u: Vec<Vec<C>> = (0..n)
        .map(|j| {
            (0..n)
                .map(|k| if j == k { (1.0, 0.0) } else { (0.0, 0.0) })
                .collect()
        })
        .collect();
    for z in mzis {
        let (m, m1) = (
            z["modes"][0].as_u64().unwrap() as usize,
            z["modes"][1].as_u64().unwrap() as usize,
        );
        assert_eq!(m1, m + 1, "MZIs act on neighbouring modes");
        let (t, p) = (z["theta"].as_f64().unwrap(), z["phi"].as_f64().unwrap());
        let e = (p.cos(), p.sin());
        let (lo, hi) = u.split_at_mut(m1);
        for (x, y) in lo[m].iter_mut().zip(hi[0].iter_mut()) {
            let (a, b) = (*x, *y);
            let ea = mul(e, a);
            *x = (
                ea.0 * t.cos() - b.0 * t.sin(),
                ea.1 * t.cos() - b.1 * t.sin(),
            );
            *y = (
                ea.0 * t.sin() + b.0 * t.cos(),
                ea.1 * t.sin() + b.1 * t.cos(),
            );
        }
    }
    for (row, ph) in u.iter_mut().zip(d["output_phases"].as_array().unwrap()) {
        let ph = ph.as_f64().unwrap();
        for x in row.iter_mut() {
            *x = mul((ph.cos(), ph.sin()), *x);
        }
    }
    for j in 0..n {
        for k in 0..n {
            let (a, b) = (u[j][k], dft[j][k]);
            assert!(
                ((a.0 - b.0).powi(2) + (a.1 - b.1).powi(2)).sqrt() < 1e-12,
                "entry ({j},{k})"
            );
        }
    }
}

#[test]
fn a_balanced_mzi_splits_power_equally() {
    let f = file(
        "mzi.toml",
        "modes = 2\ninput = [[1, 0], [0, 0]]\n\n[[op]]\nkind = \"mzi\"\nmodes = [0, 1]\ntheta = 0.7853981633974483\nphi = 0.0\n",
    );
    let out = xdv(&["phi", "run", &f, "--json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    let i = r["intensities"].as_array().unwrap();
    assert!((i[0].as_f64().unwrap() - 0.5).abs() < 1e-12);
    assert!((i[1].as_f64().unwrap() - 0.5).abs() < 1e-12);
    assert!(r["transmission_db"].as_f64().unwrap().abs() < 1e-12);
}

#[test]
fn bad_input_is_a_located_error() {
    let f = file(
        "bad.toml",
        "modes = 2\ninput = [[1, 0], [0, 0]]\n[[op]]\nkind = \"phase\"\nmode = 2\nphi = 1\n",
    );
    let out = xdv(&["phi", "run", &f]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("bad.toml:5:8"));
    let m = file("nonunitary.json", "[[[1, 0], [0, 0]], [[0, 0], [2, 0]]]");
    let out = xdv(&["phi", "decompose", &m]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not unitary"));
}

const DFT4: &str = "modes = 4\ninput = [[1, 0], [0, 0], [0, 0.5], [0, 0]]\n[[op]]\nkind = \"unitary\"\nmodes = [0, 1, 2, 3]\nmatrix = [[[0.5, 0], [0.5, 0], [0.5, 0], [0.5, 0]], [[0.5, 0], [0, 0.5], [-0.5, 0], [0, -0.5]], [[0.5, 0], [-0.5, 0], [0.5, 0], [-0.5, 0]], [[0.5, 0], [0, -0.5], [-0.5, 0], [0, 0.5]]]\n";

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_example_device_runs_programs_with_noise_deterministically() {
    let out = xdv(&["phi", "example-device"]);
    assert!(out.status.success());
    let dev = file("example-device.toml", &String::from_utf8_lossy(&out.stdout));
    let p = file("dft4.toml", DFT4);
    let ideal = json_of(&xdv(&["phi", "run", &p, "--json"]));
    assert_eq!(ideal["predicted_fidelity"], 1.0);
    let run = |seed: &str, t: &str| {
        json_of(&xdv(&[
            "phi",
            "run",
            &p,
            "--device",
            &dev,
            "--seed",
            seed,
            "--elapsed-ns",
            t,
            "--json",
        ]))
    };
    let a = run("7", "1000000000");
    let b = run("7", "1000000000");
    let c = run("8", "1000000000");
    assert_eq!(
        a["amplitudes"], b["amplitudes"],
        "the same seed, the same run"
    );
    assert_ne!(
        a["amplitudes"], c["amplitudes"],
        "another seed, other errors"
    );
    assert_eq!(a["device"], "example-mesh-16");
    let f = a["predicted_fidelity"].as_f64().unwrap();
    assert!(f < 1.0 && f > 0.99, "{f}");
    let t = a["transmission_db"].as_f64().unwrap();
    assert!(t < 0.0 && t > -3.0, "lossy MZIs: {t}");
    assert!(a["timings"]["simulate_s"].is_number());
    // The seed drives only the noise: an ideal device reproduces the ideal run exactly.
    let perfect = file("perfect.toml", "name = \"perfect\"\nmodes = 4\n");
    let z = json_of(&xdv(&[
        "phi", "run", &p, "--device", &perfect, "--seed", "3", "--json",
    ]));
    assert_eq!(z["amplitudes"], ideal["amplitudes"]);
    assert_eq!(z["predicted_fidelity"], 1.0);
}

#[test]
fn admit_exits_0_when_admitted_and_1_with_the_reason_when_refused() {
    let out = xdv(&["phi", "example-device"]);
    let dev = file("admit-device.toml", &String::from_utf8_lossy(&out.stdout));
    file("admit-p.toml", DFT4);
    let contract = |name: &str, fidelity_min: &str, window_ns: &str| {
        file(
            name,
            &format!(
                "program = \"admit-p.toml\"\nmodes = 4\nwindow_ns = {window_ns}\nfidelity_min = {fidelity_min}\nloss_budget_db = 3.0\ncoherence_tolerance_rad = 0.05\n"
            ),
        )
    };
    let ok = contract("ok.toml", "0.99", "1000000");
    let a = json_of(&xdv(&["phi", "admit", &ok, "--device", &dev, "--json"]));
    assert_eq!(a["admitted"], true);
    assert!(a["predicted_fidelity"].as_f64().unwrap() >= 0.99);
    assert_eq!(a["window_end_ns"], 1_010_000);

    let strict = contract("strict.toml", "0.999999", "1000000");
    let out = xdv(&["phi", "admit", &strict, "--device", &dev, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["admitted"], false);
    assert_eq!(r["reason"], "FidelityBelowMinimum");
    assert_eq!(r["figures"]["required"], 0.999999);
    assert!(r["figures"]["predicted"].as_f64().unwrap() < 0.999999);
    let out = xdv(&["phi", "admit", &strict, "--device", &dev]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("below the required"));

    // The example device grants windows up to 1 s.
    let long = contract("long.toml", "0.5", "2000000000");
    let out = xdv(&["phi", "admit", &long, "--device", &dev, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["reason"], "WindowAboveDeviceLimit");
}

#[test]
fn bad_device_and_contract_files_are_located_errors() {
    let p = file("ok-prog.toml", DFT4);
    let dev = file(
        "bad-device.toml",
        "name = \"d\"\nmodes = 4\ndac_bits = 99\n",
    );
    let out = xdv(&["phi", "run", &p, "--device", &dev]);
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("bad-device.toml:3:12") && e.contains("dac_bits"),
        "{e}"
    );
    let good = file("good-device.toml", "name = \"d\"\nmodes = 4\n");
    let c = file(
        "bad-contract.toml",
        "program = \"ok-prog.toml\"\nmodes = 4\nwindow_ns = 10\nfidelity_min = 2\nloss_budget_db = 1\ncoherence_tolerance_rad = 0.1\n",
    );
    let out = xdv(&["phi", "admit", &c, "--device", &good]);
    assert_eq!(out.status.code(), Some(2));
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(
        e.contains("bad-contract.toml:4:16") && e.contains("fidelity_min"),
        "{e}"
    );
}
