//! `xdv q` as a user runs it: the JSON documents the README and docs/q.md promise, exit codes, and
//! errors that name the file, line and column.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn xdv(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xdv"))
        .args(args)
        .output()
        .expect("xdv runs")
}

fn json(args: &[&str]) -> Value {
    let out = xdv(args);
    assert!(
        out.status.success(),
        "xdv {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON document on stdout")
}

fn file(name: &str, text: &str) -> String {
    let dir: PathBuf = std::env::temp_dir().join(format!("xdv-q-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.to_string_lossy().into_owned()
}

const BELL: &str = "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\nmeasure q -> c;\n";

#[test]
fn run_prints_counts_that_depend_only_on_the_seed() {
    let f = file("bell.qasm", BELL);
    let a = json(&[
        "q",
        "run",
        &f,
        "--shots",
        "4000",
        "--seed",
        "3",
        "--threads",
        "1",
        "--json",
    ]);
    assert_eq!(a["qubits"], 2);
    assert_eq!(a["clbits"], 2);
    assert_eq!(a["shots"], 4000);
    assert_eq!(a["seed"], 3);
    let counts = a["counts"].as_object().unwrap();
    assert_eq!(counts.keys().collect::<Vec<_>>(), ["00", "11"]);
    let total: u64 = counts.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(total, 4000);
    for key in ["parse_s", "simulate_s", "sample_s"] {
        assert!(a["timings"][key].as_f64().unwrap() >= 0.0, "timings.{key}");
    }
    assert_eq!(a["predicted_error"], 0.0);
    let b = json(&[
        "q",
        "run",
        &f,
        "--shots",
        "4000",
        "--seed",
        "3",
        "--threads",
        "2",
        "--json",
    ]);
    assert_eq!(a["counts"], b["counts"], "thread count changed the counts");
    let f32 = json(&[
        "q",
        "run",
        &f,
        "--shots",
        "4000",
        "--seed",
        "4",
        "--precision",
        "f32",
        "--json",
    ]);
    assert_ne!(
        a["counts"], f32["counts"],
        "a different seed gave the same counts"
    );
}

#[test]
fn state_and_expect() {
    let f = file("bell2.qasm", BELL);
    let out = xdv(&["q", "state", &f, "--json"]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("dropped 2 terminal measurements"));
    let s: Value = serde_json::from_slice(&out.stdout).unwrap();
    let amps = s["amplitudes"].as_array().unwrap();
    assert_eq!(amps.len(), 4);
    let h = std::f64::consts::FRAC_1_SQRT_2;
    assert!((amps[0][0].as_f64().unwrap() - h).abs() < 1e-12);
    assert!((amps[3][0].as_f64().unwrap() - h).abs() < 1e-12);
    let e = json(&[
        "q",
        "expect",
        &f,
        "--observable",
        "0.5*ZZ + XX - 2*IZ",
        "--json",
    ]);
    assert!((e["expectation"].as_f64().unwrap() - 1.5).abs() < 1e-12);
    let est = json(&[
        "q",
        "expect",
        &f,
        "--observable",
        "ZZ",
        "--shots",
        "1000",
        "--json",
    ]);
    assert_eq!(
        est["expectation"], 1.0,
        "⟨ZZ⟩ of a Bell state is 1 in every shot"
    );
}

#[test]
fn parameters_bind_openqasm3_inputs() {
    let f = file(
        "ry.qasm3",
        "OPENQASM 3.0;\ninclude \"stdgates.inc\";\ninput float theta;\nqubit[1] q;\nry(theta) q[0];\n",
    );
    let e = json(&[
        "q",
        "expect",
        &f,
        "--param",
        "theta=0.7",
        "--observable",
        "Z",
        "--json",
    ]);
    assert!((e["expectation"].as_f64().unwrap() - 0.7f64.cos()).abs() < 1e-12);
    let out = xdv(&["q", "expect", &f, "--observable", "Z"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--param theta="));
}

#[test]
fn bad_input_is_a_located_error() {
    let f = file(
        "bad.qasm",
        "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[2];\nh q[0]\ncx q[0],q[1];\n",
    );
    let out = xdv(&["q", "run", &f]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.qasm:5:1"), "{err}");
    assert!(out.stdout.is_empty());
    let big = file("big.qasm", "OPENQASM 2.0;\nqreg q[38];\nU(0,0,0) q[0];\n");
    let out = xdv(&["q", "run", &big]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("4.0 TiB"));
}

#[test]
fn devices_refuse_uncoupled_gates_and_predict_errors() {
    let dev = xdv(&["q", "example-device"]);
    assert!(dev.status.success());
    let d = file("line5.toml", &String::from_utf8(dev.stdout).unwrap());
    let far = file(
        "far.qasm",
        "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[5];\ncx q[0],q[3];\n",
    );
    let out = xdv(&["q", "run", &far, "--device", &d]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("qubits 0 and 3 are not coupled"));
    let ok = file(
        "line.qasm",
        "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[2];\ncreg c[2];\nsx q[0];\ncx q[0],q[1];\nmeasure q -> c;\n",
    );
    let r = json(&["q", "run", &ok, "--device", &d, "--json"]);
    let e = r["predicted_error"].as_f64().unwrap();
    assert!(e > 0.0 && e < 0.1, "predicted error {e}");
    assert_eq!(r["method"], "trajectories");
}

#[test]
fn the_gate_table_command_prints_the_documented_table() {
    let out = xdv(&["q", "gates"]);
    assert!(out.status.success());
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/q-gates.md"
    ))
    .unwrap();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), doc);
}

/// A file that never ends (a device, a pipe) is refused at the size limit instead of being read
/// until memory runs out: as the circuit, as an include, and as the device.
#[cfg(target_os = "linux")]
#[test]
fn endless_inputs_stop_at_the_size_limit() {
    let out = xdv(&["q", "run", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("larger than the 67108864 bytes"), "{err}");
    let inc = file(
        "inc_zero.qasm",
        "OPENQASM 2.0;\ninclude \"/dev/zero\";\nqreg q[1];\n",
    );
    let out = xdv(&["q", "run", &inc]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("inc_zero.qasm:2:9"), "{err}");
    assert!(err.contains("larger than the 67108864 bytes"), "{err}");
    let f = file("bell_zero.qasm", BELL);
    let out = xdv(&["q", "run", &f, "--device", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("more than the 1048576 allowed"), "{err}");
}
