//! `xdv run` as a user runs it: the examples finish; a run killed with SIGKILL at random moments
//! and restarted on its state directory ends exactly as an uninterrupted run; the state directory
//! and the trace file verify with `xdv replay`; a changed manifest is refused on resume.

use serde_json::Value;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

fn xdv(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xdv"))
        .args(args)
        .output()
        .expect("xdv runs")
}

fn example(dir: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(dir)
        .join("run.toml")
        .to_string_lossy()
        .into_owned()
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xdv-run-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// The report without what legitimately differs between runs (wall time, how many jobs were
/// taken from the stored state).
fn stable(out: &[u8]) -> Value {
    let mut v: Value = serde_json::from_slice(out).expect("JSON report");
    let o = v.as_object_mut().expect("object");
    for k in ["timings", "jobs_executed", "jobs_resumed"] {
        o.remove(k);
    }
    v
}

#[test]
fn examples_run_and_their_state_and_trace_verify() {
    for ex in [
        "hybrid-pipeline",
        "three-tenants",
        "white-paper-pipeline",
        "vqe-vhm",
        "noisy-device",
    ] {
        let dir = tmp(&format!("verify-{ex}"));
        let trace = dir.with_extension("trace");
        let o = xdv(&[
            "run",
            &example(ex),
            "--state-dir",
            dir.to_str().unwrap(),
            "--trace",
            trace.to_str().unwrap(),
            "--json",
        ]);
        assert!(
            o.status.success(),
            "{ex}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let v = stable(&o.stdout);
        assert!(
            v["vhms"]
                .as_array()
                .unwrap()
                .iter()
                .all(|x| x["status"] == "finished"),
            "{v}"
        );
        assert!(!v["resource_table"].as_array().unwrap().is_empty());
        for target in [dir.to_str().unwrap(), trace.to_str().unwrap()] {
            let r = xdv(&["replay", target, "--json"]);
            assert!(
                r.status.success(),
                "{ex}: replay {target}: {}",
                String::from_utf8_lossy(&r.stderr)
            );
        }
        // Running again on the finished state directory re-derives everything from it.
        let again = xdv(&[
            "run",
            &example(ex),
            "--state-dir",
            dir.to_str().unwrap(),
            "--json",
        ]);
        assert!(again.status.success());
        assert_eq!(stable(&again.stdout), v, "{ex}");
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_file(&trace);
    }
}

#[test]
fn a_run_killed_at_random_moments_resumes_to_the_uninterrupted_result() {
    let ex = example("three-tenants");
    let whole = xdv(&["run", &ex, "--json"]);
    assert!(whole.status.success());
    let want = stable(&whole.stdout);
    let seed: u64 = 0x5eed_2026;
    let mut x = seed;
    let mut total_kills = 0;
    for round in 0..4 {
        let dir = tmp(&format!("kill-{round}"));
        let mut kills = 0;
        let out = loop {
            let mut child = Command::new(env!("CARGO_BIN_EXE_xdv"))
                .args([
                    "run",
                    &ex,
                    "--state-dir",
                    dir.to_str().unwrap(),
                    "--json",
                    "--throttle-ms",
                    "15",
                ])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn");
            // xorshift: a kill delay of 5..100 ms.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            std::thread::sleep(Duration::from_millis(5 + x % 95));
            match child.try_wait().expect("wait") {
                Some(_) => break child.wait_with_output().expect("output"),
                None if kills < 20 => {
                    child.kill().expect("SIGKILL");
                    let _ = child.wait();
                    kills += 1;
                }
                None => break child.wait_with_output().expect("output"),
            }
        };
        assert!(
            out.status.success(),
            "seed {seed:#x} round {round}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(
            stable(&out.stdout),
            want,
            "seed {seed:#x} round {round} after {kills} kills"
        );
        let r = xdv(&["replay", dir.to_str().unwrap()]);
        assert!(
            r.status.success(),
            "seed {seed:#x} round {round}: {}",
            String::from_utf8_lossy(&r.stderr)
        );
        let _ = std::fs::remove_dir_all(&dir);
        total_kills += kills;
    }
    assert!(
        total_kills > 0,
        "seed {seed:#x}: no run was killed; the test did not test anything"
    );
}

#[test]
fn resuming_with_an_edited_manifest_is_refused() {
    let dir = tmp("edited");
    let src = PathBuf::from(example("hybrid-pipeline"));
    let copy = tmp("edited-src");
    std::fs::create_dir_all(&copy).unwrap();
    for f in ["run.toml", "ghz.qasm", "butterfly.toml"] {
        std::fs::copy(src.parent().unwrap().join(f), copy.join(f)).unwrap();
    }
    let m = copy.join("run.toml");
    let o = xdv(&[
        "run",
        m.to_str().unwrap(),
        "--state-dir",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success());
    let text = std::fs::read_to_string(&m)
        .unwrap()
        .replace("seed = 7", "seed = 8");
    std::fs::write(&m, text).unwrap();
    let o = xdv(&[
        "run",
        m.to_str().unwrap(),
        "--state-dir",
        dir.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("another manifest"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&copy);
}

#[test]
fn a_bad_manifest_is_a_located_error() {
    let dir = tmp("bad");
    std::fs::create_dir_all(&dir).unwrap();
    let m = dir.join("run.toml");
    std::fs::write(
        &m,
        "name = \"x\"\n[[vhm]]\nname = \"a\"\n[vhm.q]\nqubits = 0\nshots = 1\n",
    )
    .unwrap();
    let o = xdv(&["run", m.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("run.toml:5:") && err.contains("vhm[0].q.qubits"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_run_that_enforces_tokens_admits_what_they_allow_and_refuses_the_rest() {
    let dir = tmp("tokens");
    std::fs::create_dir_all(&dir).expect("dir");
    let d = |f: &str| dir.join(f).to_string_lossy().into_owned();
    let ok = |o: &Output| assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    ok(&xdv(&["keys", "generate", &d("keys")]));
    // alice may run Q jobs of up to 2000 shots; bob may run Q jobs but not be created with Φ.
    ok(&xdv(&[
        "token",
        "mint",
        "--keys",
        &d("keys"),
        "--subject",
        "vhm:alice",
        "--domains",
        "q",
        "--operations",
        "create,submit",
        "--max",
        "shots=2000",
        "--out",
        &d("alice.token"),
    ]));
    ok(&xdv(&[
        "token",
        "mint",
        "--keys",
        &d("keys"),
        "--subject",
        "vhm:bob",
        "--domains",
        "q",
        "--operations",
        "create,submit",
        "--out",
        &d("bob.token"),
    ]));
    let bell =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/three-tenants/bell.qasm");
    std::fs::copy(&bell, dir.join("bell.qasm")).expect("copy");
    let manifest = r#"
name = "tokens"
[[vhm]]
name = "alice"
token = "alice.token"
[vhm.q]
qubits = 2
shots = 2000
[[vhm.step]]
domain = "q"
circuit = "bell.qasm"
shots = 1000

[[vhm]]
name = "bob"
token = "bob.token"
[vhm.q]
qubits = 2
shots = 1000
[vhm.phi]
modes = 2
coherence_window_ns = 10000
[[vhm.step]]
domain = "q"
circuit = "bell.qasm"
shots = 1000
"#;
    std::fs::write(dir.join("run.toml"), manifest).expect("manifest");
    let trace = d("run.trace");
    let o = xdv(&[
        "run",
        &d("run.toml"),
        "--token-root",
        &d("keys"),
        "--trace",
        &trace,
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(1), "bob is refused: exit 1");
    let r: Value = serde_json::from_slice(&o.stdout).expect("JSON report");
    let status = |n: &str| {
        r["vhms"]
            .as_array()
            .expect("vhms")
            .iter()
            .find(|v| v["name"] == n)
            .map(|v| (v["status"].clone(), v["fault"].clone()))
            .expect("vhm")
    };
    assert_eq!(status("alice").0, "finished");
    let (s, why) = status("bob");
    assert_eq!(s, "faulted");
    assert!(
        why.as_str().unwrap_or("").contains("token insufficient"),
        "{why}"
    );
    // The refusal is in the trace, which verifies.
    ok(&xdv(&["replay", &trace]));
    // Tokens named, no root key given: a usage error before anything runs.
    let o = xdv(&["run", &d("run.toml")]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--token-root"));
}
