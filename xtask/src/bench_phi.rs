//! `cargo xtask bench phi`: XDV's Clements mesh compiler measured side by side with Strawberry
//! Fields 0.23, piquasso and interferometer on the same Haar-random unitaries, and XDV's
//! MZI-by-MZI application of a compiled 256-mode mesh.
//!
//! It builds XDV's Φ measurement program (`cargo build --release -p xdv-phi --example
//! phi_bench`), writes the Haar-random unitaries (XDV's seeded generator) as JSON matrices under
//! `bench-out/phi-matrices/` for every side, creates a Python virtual environment under
//! `bench-out/phi-venv` with the peers pinned in `bench/phi/requirements.txt`, then, per size, runs
//! one warm-up of each side and `--runs` timed repetitions, rotating the order every repetition.
//! Every measurement is a fresh process that reports the time of the decomposition call alone.
//! The 1-minute load average is recorded with each run, and a run started while it exceeded the
//! core count plus one half is discarded. A peer that cannot be installed or imported is reported
//! as unavailable (with the reason) in the output and the table; no figure is made up for it.
//! Sizes: N = 64, 128, 256 for every side and N = 1024 for XDV; with `--quick` the peers (Strawberry
//! Fields takes ≈100 s at 256, interferometer over a minute) are skipped above 128, at most 3 runs
//! are taken and XDV's N = 1024 is measured once. It writes
//! `bench-out/phi.md` and `bench-out/phi.json` with medians and ratios.

use crate::{machine_description, median, output, root, run};
use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// One side of the comparison.
struct Side {
    label: &'static str,
    /// `None` for XDV, the peer's name in `bench/phi/peers.py` otherwise.
    peer: Option<&'static str>,
}

const SIDES: [Side; 4] = [
    Side {
        label: "XDV (Rust, 1 thread)",
        peer: None,
    },
    Side {
        label: "Strawberry Fields 0.23 (rectangular)",
        peer: Some("sf"),
    },
    Side {
        label: "piquasso 8.0 (clements)",
        peer: Some("piquasso"),
    },
    Side {
        label: "interferometer 1.1 (square_decomposition)",
        peer: Some("interferometer"),
    },
];

struct Measurement {
    side: &'static str,
    n: usize,
    seconds: f64,
    load1: f64,
    discarded: bool,
}

fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(0.0)
}

/// The peers' virtual environment, or why it could not be made.
fn venv(out: &Path) -> std::result::Result<PathBuf, String> {
    let venv = out.join("phi-venv");
    let py = venv.join("bin/python");
    let req = root().join("bench/phi/requirements.txt");
    let stamp = venv.join("requirements.txt");
    let want =
        std::fs::read_to_string(&req).map_err(|e| format!("bench/phi/requirements.txt: {e}"))?;
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) && py.exists() {
        return Ok(py);
    }
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv))
        .map_err(|e| format!("python3 -m venv failed: {e}"))?;
    run(Command::new(&py)
        .args(["-m", "pip", "install", "-q", "-r"])
        .arg(&req))
    .map_err(|e| format!("pip install -r bench/phi/requirements.txt failed: {e}"))?;
    std::fs::write(&stamp, want).map_err(|e| e.to_string())?;
    Ok(py)
}

/// One timed decomposition by `side`, in seconds; `Err` with the reason when the side cannot run.
fn measure(side: &Side, file: &Path, xdv: &Path, py: Option<&Path>) -> Result<f64> {
    let f = file.to_string_lossy().to_string();
    let j = match side.peer {
        None => output(Command::new(xdv).args(["decompose", &f]))?,
        Some(peer) => {
            let py = py.context("no Python environment")?;
            let out = Command::new(py)
                .arg(root().join("bench/phi/peers.py"))
                .args([peer, &f])
                .env("OMP_NUM_THREADS", "1")
                .env("OPENBLAS_NUM_THREADS", "1")
                .env("MKL_NUM_THREADS", "1")
                .output()
                .context("cannot start python")?;
            let s = String::from_utf8_lossy(&out.stdout).to_string();
            if !out.status.success() {
                bail!(
                    "{}{}",
                    s.trim(),
                    String::from_utf8_lossy(&out.stderr)
                        .lines()
                        .last()
                        .unwrap_or("")
                );
            }
            s
        }
    };
    crate::field(&j, "decompose_s")
}

/// Runs the benchmark.
pub fn bench_phi(rest: &[&str]) -> Result<()> {
    let mut runs: usize = 5;
    let mut quick = false;
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match *a {
            "--runs" => runs = it.next().context("--runs R")?.parse()?,
            "--quick" => quick = true,
            other => bail!("unknown argument {other} (expected --runs R, --quick)"),
        }
    }
    if quick {
        runs = runs.min(3);
    }
    run(crate::cargo().args([
        "build",
        "--release",
        "-p",
        "xdv-phi",
        "--example",
        "phi_bench",
    ]))?;
    let xdv = root().join("target/release/examples/phi_bench");
    let out = root().join("bench-out");
    let dir = out.join("phi-matrices");
    std::fs::create_dir_all(&dir)?;
    let sizes = [64usize, 128, 256, 1024];
    for &n in &sizes {
        let f = dir.join(format!("haar_{n}.json"));
        let fs = f.to_string_lossy().to_string();
        output(Command::new(&xdv).args(["write", &n.to_string(), &n.to_string(), &fs]))?;
    }
    let (py, venv_note) = match venv(&out) {
        Ok(p) => (Some(p), None),
        Err(e) => (None, Some(e)),
    };
    if let Some(e) = &venv_note {
        eprintln!("peers unavailable: {e}");
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let load_max = cores as f64 + 0.5;
    // Which side runs at which size.
    let runs_at = |side: &Side, n: usize| -> bool {
        match side.peer {
            None => true,
            Some(_) if quick => n <= 128,
            Some(_) => n <= 256,
        }
    };
    let mut unavailable: Vec<(&'static str, String)> = Vec::new();
    if let Some(e) = &venv_note {
        for s in SIDES.iter().filter(|s| s.peer.is_some()) {
            unavailable.push((s.label, e.clone()));
        }
    }
    let mut ms: Vec<Measurement> = Vec::new();
    for &n in &sizes {
        let file = dir.join(format!("haar_{n}.json"));
        let active: Vec<&Side> = SIDES
            .iter()
            .filter(|s| runs_at(s, n) && !unavailable.iter().any(|(l, _)| *l == s.label))
            .collect();
        let mut live: Vec<&Side> = Vec::new();
        for s in active {
            eprintln!("warm-up: {} at N = {n}", s.label);
            match measure(s, &file, &xdv, py.as_deref()) {
                Ok(_) => live.push(s),
                Err(e) => {
                    eprintln!("{} unavailable: {e}", s.label);
                    unavailable.push((s.label, e.to_string()));
                }
            }
        }
        let reps = if n == 1024 && quick { 1 } else { runs };
        for r in 0..reps {
            for i in 0..live.len() {
                let s = live[(i + r) % live.len()];
                let load = load1();
                let secs = measure(s, &file, &xdv, py.as_deref())?;
                eprintln!(
                    "run {r}: {:<44} N = {n:<5} {secs:>10.5} s (load {load:.2})",
                    s.label
                );
                ms.push(Measurement {
                    side: s.label,
                    n,
                    seconds: secs,
                    load1: load,
                    discarded: load > load_max,
                });
            }
        }
    }
    // The MZI-by-MZI application of a compiled 256-mode mesh (XDV only: the peers have no
    // field-level mesh application to compare with).
    let mut per_mzi = Vec::new();
    output(Command::new(&xdv).args(["mesh", "256", "200"]))?;
    for _ in 0..runs {
        let j = output(Command::new(&xdv).args(["mesh", "256", "2000"]))?;
        per_mzi.push(crate::field(&j, "ns_per_mzi")?);
    }
    let ns_per_mzi = median(&mut per_mzi);
    let med = |side: &str, n: usize| -> Option<f64> {
        let mut v: Vec<f64> = ms
            .iter()
            .filter(|m| m.side == side && m.n == n && !m.discarded)
            .map(|m| m.seconds)
            .collect();
        (!v.is_empty()).then(|| median(&mut v))
    };
    let machine = machine_description();
    let mut md = String::new();
    let _ = writeln!(md, "Machine: {machine}. Clements decomposition of the same Haar-random unitaries (XDV's seeded generator, written as JSON for every side); medians of {runs} runs after one warm-up{}, seconds of the decomposition call alone, one thread (lower is better); runs started with a 1-minute load average above {load_max} discarded ({} of {}).\n",
        if quick { " (--quick: at most 3 runs, N = 1024 once, the peers only up to N = 128)" } else { "" },
        ms.iter().filter(|m| m.discarded).count(), ms.len());
    let _ = writeln!(
        md,
        "| decomposer | N = 64 | N = 128 | N = 256 | N = 1024 |\n|---|---:|---:|---:|---:|"
    );
    for s in &SIDES {
        let mut row = format!("| {} |", s.label);
        for &n in &sizes {
            match med(s.label, n) {
                Some(v) => {
                    let _ = write!(row, " {v:.4} |");
                }
                None if unavailable.iter().any(|(l, _)| *l == s.label) => {
                    row.push_str(" unavailable |")
                }
                None => row.push_str(" — |"),
            }
        }
        let _ = writeln!(md, "{row}");
    }
    for s in SIDES.iter().skip(1) {
        let mut row = format!("| ratio {} / XDV |", s.label);
        for &n in &sizes {
            match (med(s.label, n), med(SIDES[0].label, n)) {
                (Some(p), Some(x)) => {
                    let _ = write!(row, " {:.1}× |", p / x);
                }
                _ => row.push_str(" — |"),
            }
        }
        let _ = writeln!(md, "{row}");
    }
    let _ = writeln!(md, "\nXDV, compiled 256-mode mesh (32 640 MZIs) applied to a field MZI by MZI: {ns_per_mzi:.2} ns per MZI (median of {runs} processes × 2000 passes; goal ≤ 5 ns).");
    let goals = [(256usize, 0.040), (1024, 3.0)];
    for (n, goal) in goals {
        if let Some(x) = med(SIDES[0].label, n) {
            let _ = writeln!(
                md,
                "XDV at N = {n}: {:.1} ms (goal ≤ {:.0} ms).",
                x * 1e3,
                goal * 1e3
            );
        }
    }
    for (label, why) in &unavailable {
        let _ = writeln!(md, "\n{label}: unavailable — {why}");
    }
    println!("{md}");
    let mut json = String::from("{");
    let _ = write!(json, "\"machine\":{machine:?},\"runs\":{runs},\"quick\":{quick},\"load_max\":{load_max},\"ns_per_mzi_256\":{ns_per_mzi},\"medians\":[");
    let mut first = true;
    for s in &SIDES {
        for &n in &sizes {
            if let Some(v) = med(s.label, n) {
                if !first {
                    json.push(',');
                }
                first = false;
                let _ = write!(
                    json,
                    "{{\"side\":{:?},\"n\":{n},\"decompose_s\":{v}}}",
                    s.label
                );
            }
        }
    }
    json.push_str("],\"unavailable\":[");
    for (i, (label, why)) in unavailable.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        let _ = write!(json, "{{\"side\":{label:?},\"reason\":{why:?}}}");
    }
    json.push_str("],\"measurements\":[");
    for (i, m) in ms.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        let _ = write!(
            json,
            "{{\"side\":{:?},\"n\":{},\"decompose_s\":{},\"load1\":{},\"discarded\":{}}}",
            m.side, m.n, m.seconds, m.load1, m.discarded
        );
    }
    json.push_str("]}\n");
    std::fs::write(out.join("phi.json"), json)?;
    std::fs::write(out.join("phi.md"), md)?;
    println!("wrote bench-out/phi.json and bench-out/phi.md");
    Ok(())
}
