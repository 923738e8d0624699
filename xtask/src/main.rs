//! XDV's automation: `cargo xtask test` runs the whole test suite, `cargo xtask ci` adds the
//! formatting and lint checks; `cargo xtask bench core` measures the
//! orchestration core (simulation with invariant checks, trace replay) and the floors it stands
//! on, with medians over repeated runs, and writes `bench-out/core.json`; `cargo xtask bench q`
//! measures the Q simulator side by side with qsim, qulacs and Qiskit Aer; `cargo xtask bench phi`
//! measures the Φ mesh compiler side by side with Strawberry Fields, piquasso and interferometer;
//! `cargo xtask guests` builds the example K guests (installing the wasm32-wasip1 target when it
//! is missing) and `cargo xtask bench k` measures the K sandbox; `cargo xtask bench audit`
//! measures the audit log's append, verification and checkpoint signature costs; `cargo xtask
//! bench run` measures VHM churn in the core and the hypervisor's overhead on the VQE guest.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

mod bench_audit;
mod bench_k;
mod bench_phi;
mod bench_q;
mod bench_run;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("$ {:?}", cmd);
    let st = cmd
        .status()
        .with_context(|| format!("cannot start {:?}", cmd))?;
    if !st.success() {
        bail!("{:?} failed with {st}", cmd);
    }
    Ok(())
}

fn output(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {:?}", cmd))?;
    if !out.status.success() {
        bail!("{:?} failed: {}", cmd, String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(root());
    c
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["ci"] => ci(),
        ["test"] => test(),
        ["bench", "core", rest @ ..] => bench_core(rest),
        ["bench", "q", rest @ ..] => bench_q::bench_q(rest),
        ["bench", "phi", rest @ ..] => bench_phi::bench_phi(rest),
        ["bench", "k", rest @ ..] => bench_k::bench_k(rest),
        ["bench", "audit", rest @ ..] => bench_audit::bench_audit(rest),
        ["bench", "run", rest @ ..] => bench_run::bench_run(rest),
        ["guests"] => build_guests(),
        _ => {
            eprintln!("usage: cargo xtask test | cargo xtask ci | cargo xtask guests | cargo xtask bench core [--ops N] [--runs R] | cargo xtask bench q [--runs R] [--quick] | cargo xtask bench phi [--runs R] [--quick] | cargo xtask bench k [--runs R] [--instantiations N] [--quick] | cargo xtask bench audit [--entries N] [--runs R] [--quick] | cargo xtask bench run [--quick]");
            std::process::exit(2);
        }
    }
}

/// The example K guests' workspace (built for wasm32-wasip1, outside the host workspace).
const GUESTS_MANIFEST: &str = "examples/guests/Cargo.toml";

/// Installs the wasm32-wasip1 target when rustup lacks it.
fn ensure_wasm_target() -> Result<()> {
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"]))
        .context(
            "cannot ask rustup for its targets (the K guests need rustup's wasm32-wasip1 target)",
        )?;
    if !installed.lines().any(|l| l.trim() == "wasm32-wasip1") {
        run(Command::new("rustup").args(["target", "add", "wasm32-wasip1"]))?;
    }
    Ok(())
}

/// Builds the example K guests into `target/guests/wasm32-wasip1/release/*.wasm`.
pub(crate) fn build_guests() -> Result<()> {
    ensure_wasm_target()?;
    run(cargo().args([
        "build",
        "--manifest-path",
        GUESTS_MANIFEST,
        "--target",
        "wasm32-wasip1",
        "--release",
        "--target-dir",
        "target/guests",
    ]))
}

/// What CI runs: formatting, lints (the host workspace and the guests' for wasm32-wasip1), then
/// the whole test suite.
fn ci() -> Result<()> {
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    run(cargo().args([
        "fmt",
        "--manifest-path",
        GUESTS_MANIFEST,
        "--all",
        "--",
        "--check",
    ]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    ensure_wasm_target()?;
    run(cargo().args([
        "clippy",
        "--manifest-path",
        GUESTS_MANIFEST,
        "--workspace",
        "--target",
        "wasm32-wasip1",
        "--release",
        "--target-dir",
        "target/guests",
        "--",
        "-D",
        "warnings",
    ]))?;
    test()
}

/// The whole test suite: the example K guests built, every crate's tests, then the simulation driver over many seeds in
/// release mode, each run's trace replayed and verified.
fn test() -> Result<()> {
    // The K tests run the example guests: build them first.
    build_guests()?;
    let (mut passed, failed) = cargo_test()?;
    if failed > 0 {
        println!("tests: {passed} passed, {failed} failed");
        bail!("{failed} tests failed");
    }
    run(cargo().args(["build", "--release", "-p", "xdv"]))?;
    let xdv = root().join("target/release/xdv");
    let dir = std::env::temp_dir().join(format!("xdv-ci-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    for seed in 1..=16u64 {
        let trace = dir.join(format!("seed{seed}.trace"));
        let t = trace.to_string_lossy().to_string();
        run(Command::new(&xdv).args([
            "sim",
            "--seed",
            &seed.to_string(),
            "--ops",
            "200000",
            "--full-check-every",
            "1000",
            "--trace",
            &t,
            "--json",
        ]))?;
        run(Command::new(&xdv).args(["replay", &t, "--json"]))?;
        std::fs::remove_file(&trace)?;
    }
    std::fs::remove_dir_all(&dir)?;
    // The same seed gives the same state hash in a debug and a release build.
    let args = ["sim", "--seed", "7", "--ops", "20000", "--json"];
    let release = output(Command::new(&xdv).args(args))?;
    // `cargo test --workspace` built the debug binary for the CLI tests. `cargo run -p xdv` would
    // build wasmtime and its tree a second time, with only xdv's features, and double the disk
    // a clean run needs.
    let debug_xdv = root().join("target/debug/xdv");
    if !debug_xdv.exists() {
        bail!(
            "{} is missing: `cargo test --workspace` should have built it for the CLI tests",
            debug_xdv.display()
        );
    }
    let debug = output(Command::new(&debug_xdv).args(args))?;
    let (r, d) = (
        field_str(&release, "state_hash")?,
        field_str(&debug, "state_hash")?,
    );
    if r != d {
        bail!("seed 7: release build gives state hash {r}, debug build {d}");
    }
    eprintln!("seed 7: debug and release builds agree on state hash {r}");
    // Each seed's simulation and replay, and the profile comparison, count as one test each.
    passed += 16 + 1;
    println!("tests: {passed} passed, 0 failed");
    Ok(())
}

/// Runs `cargo test --workspace`, echoing its output, and sums the passed and failed counts of
/// its `test result:` lines.
fn cargo_test() -> Result<(u64, u64)> {
    use std::io::{BufRead, BufReader};
    let mut cmd = cargo();
    cmd.args(["test", "--workspace"])
        .stdout(std::process::Stdio::piped());
    eprintln!("$ {:?}", cmd);
    let mut child = cmd.spawn().context("cannot start cargo test")?;
    let (mut passed, mut failed) = (0u64, 0u64);
    let stdout = child.stdout.take().context("no stdout")?;
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        println!("{line}");
        if let Some(rest) = line.strip_prefix("test result: ") {
            for part in rest.split(';') {
                let mut words = part.split_whitespace().rev();
                let (Some(kind), Some(n)) = (words.next(), words.next()) else {
                    continue;
                };
                match (kind, n.parse::<u64>()) {
                    ("passed", Ok(n)) => passed += n,
                    ("failed", Ok(n)) => failed += n,
                    _ => {}
                }
            }
        }
    }
    let st = child.wait()?;
    if !st.success() && failed == 0 {
        bail!("cargo test failed with {st}");
    }
    Ok((passed, failed))
}

fn field_str(json: &str, key: &str) -> Result<String> {
    let pat = format!("\"{key}\":\"");
    let i = json
        .find(&pat)
        .with_context(|| format!("no {key} in {json}"))?
        + pat.len();
    let end = json[i..].find('"').context("unterminated string")?;
    Ok(json[i..i + end].to_string())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn field(json: &str, key: &str) -> Result<f64> {
    let pat = format!("\"{key}\":");
    let i = json
        .find(&pat)
        .with_context(|| format!("no {key} in {json}"))?
        + pat.len();
    let rest = &json[i..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Ok(rest[..end].trim().trim_matches('"').parse()?)
}

fn machine_description() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(0);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .next()
                .map(|l| l.split_whitespace().nth(1).unwrap_or("0").to_string())
        })
        .and_then(|kb| kb.parse::<u64>().ok())
        .map(|kb| format!("{:.0} GiB", kb as f64 / 1048576.0))
        .unwrap_or_default();
    let rustc = output(Command::new("rustc").arg("--version")).unwrap_or_default();
    format!("{cpu}, {cores} cores, {mem}, {}", rustc.trim())
}

/// Measures `xdv sim` (every invariant checked after every step) and `xdv replay`, plus in the
/// same run the floor replay stands on: verifying the hash chain alone.
fn bench_core(rest: &[&str]) -> Result<()> {
    let mut ops: u64 = 1_000_000;
    let mut runs: usize = 9;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match *a {
            "--ops" => ops = it.next().context("--ops N")?.parse()?,
            "--runs" => runs = it.next().context("--runs R")?.parse()?,
            other => bail!("unknown argument {other}"),
        }
    }
    run(cargo().args(["build", "--release", "-p", "xdv"]))?;
    let xdv = root().join("target/release/xdv");
    let out = root().join("bench-out");
    std::fs::create_dir_all(&out)?;
    let trace = out.join("core-bench.trace");
    let t = trace.to_string_lossy().to_string();
    let ops_s = ops.to_string();
    let first = output(Command::new(&xdv).args([
        "sim", "--seed", "1", "--ops", &ops_s, "--trace", &t, "--json",
    ]))?;
    let size = std::fs::metadata(&trace)?.len();
    let (mut sim, mut sim_trace, mut replay, mut hash) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    // Alternate the measurements so that drifts of a shared machine hit each alike.
    for _ in 0..runs {
        let j = output(Command::new(&xdv).args(["sim", "--seed", "1", "--ops", &ops_s, "--json"]))?;
        sim.push(field(&j, "ops_per_sec")?);
        let j = output(Command::new(&xdv).args([
            "sim", "--seed", "1", "--ops", &ops_s, "--trace", &t, "--json",
        ]))?;
        sim_trace.push(field(&j, "ops_per_sec")?);
        let j = output(Command::new(&xdv).args(["replay", &t, "--json"]))?;
        replay.push(field(&j, "inputs_per_sec")?);
        let j = output(Command::new(&xdv).args(["replay", &t, "--chain-only", "--json"]))?;
        hash.push(field(&j, "inputs_per_sec")?);
    }
    let (sim_m, sim_t_m, rep_m, hash_m) = (
        median(&mut sim),
        median(&mut sim_trace),
        median(&mut replay),
        median(&mut hash),
    );
    let machine = machine_description();
    println!("machine: {machine}");
    println!("workload: xdv sim --seed 1 --ops {ops} (trace {:.1} MB, {:.0} bytes/input); medians of {runs} runs", size as f64 / 1e6, size as f64 / ops as f64);
    println!("{:<58} {:>14}", "measurement", "inputs/s");
    println!(
        "{:<58} {:>14.0}",
        "xdv sim (every invariant after every step)", sim_m
    );
    println!(
        "{:<58} {:>14.0}",
        "xdv sim --trace (same, writing the trace)", sim_t_m
    );
    println!(
        "{:<58} {:>14.0}",
        "xdv replay (verify every hash, decision, digest)", rep_m
    );
    println!(
        "{:<58} {:>14.0}",
        "floor: hash chain alone (xdv replay --chain-only)", hash_m
    );
    let json = format!(
        "{{\"machine\":{:?},\"ops\":{ops},\"runs\":{runs},\"trace_bytes\":{size},\"sim_ops_per_sec\":{sim_m:.0},\"sim_trace_ops_per_sec\":{sim_t_m:.0},\"replay_inputs_per_sec\":{rep_m:.0},\"chain_only_inputs_per_sec\":{hash_m:.0},\"sim\":{}}}\n",
        machine,
        first.trim()
    );
    std::fs::write(out.join("core.json"), json)?;
    std::fs::remove_file(&trace)?;
    println!("wrote bench-out/core.json");
    Ok(())
}
