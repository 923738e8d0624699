//! `xdv k run` as a user runs it: the JSON report docs/k.md promises, trap kinds, exit codes,
//! determinism across runs and slice sizes, several guests at once, bad channel arguments.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output};

fn xdv(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xdv"))
        .args(args)
        .output()
        .expect("xdv runs")
}

fn report(args: &[&str]) -> (Option<i32>, Value) {
    let out = xdv(args);
    let doc = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "xdv {args:?}: {e}; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), doc)
}

fn wat(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../xdv-k/tests/wat")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn file(name: &str, bytes: &[u8]) -> String {
    let dir = std::env::temp_dir().join(format!("xdv-k-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p.to_string_lossy().into_owned()
}

#[test]
fn traps_are_reported_by_kind_with_exit_code_1() {
    let cases: &[(&str, &[&str], &str)] = &[
        ("loop.wat", &["--fuel", "50000"], "out_of_fuel"),
        ("membomb.wat", &["--memory-mib", "2"], "memory_limit"),
        ("stack.wat", &[], "stack_overflow"),
        ("unreachable.wat", &[], "unreachable"),
        ("bad-import.wat", &[], "link"),
    ];
    for (name, extra, kind) in cases {
        let path = wat(name);
        let mut args = vec!["k", "run", path.as_str(), "--json"];
        args.extend_from_slice(extra);
        let (code, doc) = report(&args);
        assert_eq!(code, Some(1), "{name}");
        assert_eq!(doc["exit"], "trap", "{name}: {doc}");
        assert_eq!(doc["trap"]["kind"], *kind, "{name}: {doc}");
        assert!(doc["trap"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
        for key in ["fuel_consumed", "slices", "stdout", "stderr", "jobs"] {
            assert!(doc.get(key).is_some(), "{name}: no {key}");
        }
    }
    let (_, doc) = report(&[
        "k",
        "run",
        &wat("loop.wat"),
        "--fuel",
        "50000",
        "--fuel-per-slice",
        "1000",
        "--json",
    ]);
    assert_eq!(doc["fuel_consumed"], 50000);
    assert_eq!(doc["slices"], 50);
}

#[test]
fn a_malformed_module_is_a_trap_not_a_crash() {
    let f = file("bad.wasm", b"\0asm\x01\0\0\0\xff\xff");
    let (code, doc) = report(&["k", "run", &f, "--json"]);
    assert_eq!(code, Some(1));
    assert_eq!(doc["trap"]["kind"], "malformed_module");
    let f = file(
        "bad.wat",
        b"(module\n  (func (export \"_start\") (i32.nope)))\n",
    );
    let (_, doc) = report(&["k", "run", &f, "--json"]);
    assert_eq!(doc["trap"]["kind"], "malformed_module");
    assert!(
        doc["trap"]["message"].as_str().unwrap().contains(":2:"),
        "{doc}"
    );
}

#[test]
fn the_same_run_gives_the_same_report_whatever_the_slicing() {
    let text = std::fs::read_to_string(wat("count.wat"))
        .unwrap()
        .replace("(i32.const N)", "(i32.const 50000)");
    let f = file("count.wat", text.as_bytes());
    let (code, a) = report(&["k", "run", &f, "--json"]);
    assert_eq!(code, Some(0), "{a}");
    assert_eq!(a["exit"], "ok");
    assert_eq!(a["stdout"], "done\n");
    assert_eq!(a["trap"], Value::Null);
    for slice in ["997", "100000"] {
        let (_, b) = report(&["k", "run", &f, "--fuel-per-slice", slice, "--json"]);
        assert_eq!(a["fuel_consumed"], b["fuel_consumed"], "slice {slice}");
        assert_eq!(a["stdout"], b["stdout"]);
    }
    let (_, again) = report(&["k", "run", &f, "--json"]);
    assert_eq!(a, again);
}

#[test]
fn several_guests_and_bad_channels() {
    // Guest 0 traps; guest 1 runs to its end regardless.
    let (code, doc) = report(&[
        "k",
        "run",
        &wat("unreachable.wat"),
        &wat("no-start.wat"),
        &wat("loop.wat"),
        "--fuel",
        "10000",
        "--json",
    ]);
    assert_eq!(code, Some(1));
    let g = doc["guests"].as_array().unwrap();
    assert_eq!(g.len(), 3);
    assert_eq!(g[0]["trap"]["kind"], "unreachable");
    assert_eq!(g[1]["trap"]["kind"], "link");
    assert_eq!(g[2]["trap"]["kind"], "out_of_fuel");
    let out = xdv(&["k", "run", &wat("loop.wat"), "--channel", "0:5"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("channel"));
    let out = xdv(&["k", "run", &wat("loop.wat"), "--channel", "zero"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn the_vqe_guest_from_the_command_line() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/guests/wasm32-wasip1/release/vqe-h2.wasm");
    assert!(
        path.exists(),
        "{} is missing: build the example guests with `cargo xtask guests`",
        path.display()
    );
    let (code, doc) = report(&["k", "run", &path.to_string_lossy(), "--json"]);
    assert_eq!(code, Some(0), "{doc}");
    let result: Value = serde_json::from_str(doc["stdout"].as_str().unwrap().trim()).unwrap();
    let e = result["energy_total_ha"].as_f64().unwrap();
    assert!((e - (-1.137)).abs() < 1.6e-3, "{e}");
    assert_eq!(
        doc["jobs"].as_array().unwrap().len() as u64,
        result["evaluations"].as_u64().unwrap()
    );
}
