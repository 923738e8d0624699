//! `cargo xtask bench q`: XDV's Q simulator measured side by side with qsim, qulacs and Qiskit
//! Aer on identical circuits.
//!
//! It builds `xdv` in release, writes the benchmark circuits as OpenQASM 2 (a seeded random
//! circuit — layers of a random `rx`/`ry`/`rz` on every qubit followed by brickwork CNOTs — and the
//! textbook QFT), creates a Python virtual environment with the peers pinned in
//! `bench/q/requirements.txt`, then, for every circuit and thread count, runs one warm-up of each
//! simulator and `--runs` timed repetitions, rotating the order of the simulators every
//! repetition. Each measurement is a fresh process that reports the time of the state evolution
//! alone (`timings.simulate_s` for XDV). The 1-minute load average is recorded with each run, and
//! a run started while it exceeded the core count plus one half is discarded. The machine's read +
//! write memory bandwidth is measured on each thread count (`xdv q bandwidth`), and XDV's runs
//! report how many full passes over the state they made, so each is set against its bandwidth
//! floor (passes × 2 × state bytes / bandwidth). It writes `bench-out/q.json` and `bench-out/q.md`
//! with medians and ratios.

use crate::{machine_description, median, output, root, run};
use anyhow::{bail, Context, Result};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A seeded generator for the circuits (SplitMix64: fixed here so the circuits never change).
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// `layers` layers of a random rotation on every qubit followed by brickwork CNOTs.
pub fn random_circuit(n: u32, layers: u32, seed: u64) -> String {
    let mut rng = SplitMix(seed);
    let mut s = format!("OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[{n}];\n");
    for l in 0..layers {
        for q in 0..n {
            let g = ["rx", "ry", "rz"][(rng.next() % 3) as usize];
            let a = rng.unit() * std::f64::consts::TAU;
            let _ = writeln!(s, "{g}({a:.17}) q[{q}];");
        }
        let mut i = l % 2;
        while i + 1 < n {
            let _ = writeln!(s, "cx q[{i}],q[{}];", i + 1);
            i += 2;
        }
    }
    s
}

/// The textbook QFT: Hadamards and controlled phases, then the qubit-order reversal.
pub fn qft_circuit(n: u32) -> String {
    let mut s = format!("OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[{n}];\n");
    for j in (0..n).rev() {
        let _ = writeln!(s, "h q[{j}];");
        for k in (0..j).rev() {
            let a = std::f64::consts::PI / (1u64 << (j - k)) as f64;
            let _ = writeln!(s, "cu1({a:.17}) q[{k}],q[{j}];");
        }
    }
    for i in 0..n / 2 {
        let _ = writeln!(s, "swap q[{i}],q[{}];", n - 1 - i);
    }
    s
}

#[derive(Clone)]
struct Sim {
    /// Row label.
    label: &'static str,
    /// What to run.
    kind: Kind,
}

#[derive(Clone, Copy)]
enum Kind {
    Xdv(&'static str),
    Peer(&'static str),
}

struct Measurement {
    sim: &'static str,
    circuit: String,
    threads: usize,
    simulate_s: f64,
    load1: f64,
    discarded: bool,
    passes: Option<f64>,
}

fn load1() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(0.0)
}

fn venv(out: &Path) -> Result<PathBuf> {
    let venv = out.join("q-venv");
    let py = venv.join("bin/python");
    let req = root().join("bench/q/requirements.txt");
    let stamp = venv.join("requirements.txt");
    let want = std::fs::read_to_string(&req).context("bench/q/requirements.txt")?;
    if std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) && py.exists() {
        return Ok(py);
    }
    run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    run(Command::new(&py).args(["-m", "pip", "install", "-q", "--upgrade", "pip"]))?;
    run(Command::new(&py)
        .args(["-m", "pip", "install", "-q", "-r"])
        .arg(&req))?;
    std::fs::write(&stamp, want)?;
    Ok(py)
}

fn measure_one(
    sim: &Sim,
    file: &Path,
    threads: usize,
    xdv: &Path,
    py: &Path,
) -> Result<(f64, Option<f64>)> {
    let f = file.to_string_lossy().to_string();
    let t = threads.to_string();
    match sim.kind {
        Kind::Xdv(precision) => {
            let j = output(Command::new(xdv).args([
                "q",
                "run",
                &f,
                "--shots",
                "1",
                "--precision",
                precision,
                "--threads",
                &t,
                "--json",
            ]))?;
            let passes = crate::field(&j, "passes").ok();
            Ok((crate::field(&j, "simulate_s")?, passes))
        }
        Kind::Peer(name) => {
            let script = root().join("bench/q/peers.py");
            let mut cmd = Command::new(py);
            cmd.arg(&script).args([name, &f, &t]);
            // Every OpenMP-based peer honours this; qulacs reads it only at start-up.
            cmd.env("OMP_NUM_THREADS", &t);
            cmd.env_remove("OPENBLAS_CORETYPE");
            cmd.env_remove("OPENBLAS_L2_SIZE");
            let j = output(&mut cmd)?;
            Ok((crate::field(&j, "simulate_s")?, None))
        }
    }
}

/// Runs the benchmark.
pub fn bench_q(rest: &[&str]) -> Result<()> {
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
    run(crate::cargo().args(["build", "--release", "-p", "xdv"]))?;
    let xdv = root().join("target/release/xdv");
    let out = root().join("bench-out");
    let dir = out.join("q-circuits");
    std::fs::create_dir_all(&dir)?;
    let mut circuits: Vec<(String, String, u32)> =
        vec![("random_20".into(), random_circuit(20, 10, 20), 20)];
    if !quick {
        circuits.push(("random_24".into(), random_circuit(24, 10, 24), 24));
        circuits.push(("qft_24".into(), qft_circuit(24), 24));
    } else {
        circuits.push(("qft_20".into(), qft_circuit(20), 20));
    }
    for (name, text, _) in &circuits {
        std::fs::write(dir.join(format!("{name}.qasm")), text)?;
    }
    let py = venv(&out)?;
    let sims = [
        Sim {
            label: "XDV f32 (complex64)",
            kind: Kind::Xdv("f32"),
        },
        Sim {
            label: "XDV f64 (complex128)",
            kind: Kind::Xdv("f64"),
        },
        Sim {
            label: "qsim 0.22 (complex64, fusion 2)",
            kind: Kind::Peer("qsim"),
        },
        Sim {
            label: "qulacs 0.6.14 (complex128)",
            kind: Kind::Peer("qulacs"),
        },
        Sim {
            label: "Qiskit Aer 0.18.2 (complex128)",
            kind: Kind::Peer("aer"),
        },
    ];
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let load_max = cores as f64 + 0.5;
    let thread_counts: Vec<usize> = if cores >= 2 { vec![1, 2] } else { vec![1] };
    let mut bandwidth: Vec<(usize, f64)> = Vec::new();
    for &t in &thread_counts {
        let j = output(Command::new(&xdv).args([
            "q",
            "bandwidth",
            "--threads",
            &t.to_string(),
            "--json",
        ]))?;
        bandwidth.push((t, crate::field(&j, "bytes_per_s")?));
    }
    let mut ms: Vec<Measurement> = Vec::new();
    for (name, _, _) in &circuits {
        let file = dir.join(format!("{name}.qasm"));
        for &threads in &thread_counts {
            for s in &sims {
                eprintln!("warm-up: {} on {name}, {threads} thread(s)", s.label);
                measure_one(s, &file, threads, &xdv, &py)?;
            }
            for r in 0..runs {
                for i in 0..sims.len() {
                    let s = &sims[(i + r) % sims.len()];
                    let load = load1();
                    let (secs, passes) = measure_one(s, &file, threads, &xdv, &py)?;
                    eprintln!(
                        "run {r}: {:<32} {name:<10} {threads}T {secs:>9.4} s (load {load:.2})",
                        s.label
                    );
                    ms.push(Measurement {
                        sim: s.label,
                        circuit: name.clone(),
                        threads,
                        simulate_s: secs,
                        load1: load,
                        discarded: load > load_max,
                        passes,
                    });
                }
            }
        }
    }
    let med = |sim: &str, circuit: &str, threads: usize| -> Option<f64> {
        let mut v: Vec<f64> = ms
            .iter()
            .filter(|m| {
                m.sim == sim && m.circuit == circuit && m.threads == threads && !m.discarded
            })
            .map(|m| m.simulate_s)
            .collect();
        (!v.is_empty()).then(|| median(&mut v))
    };
    let med_passes = |sim: &str, circuit: &str, threads: usize| -> Option<f64> {
        let mut v: Vec<f64> = ms
            .iter()
            .filter(|m| m.sim == sim && m.circuit == circuit && m.threads == threads)
            .filter_map(|m| m.passes)
            .collect();
        (!v.is_empty()).then(|| median(&mut v))
    };
    let machine = machine_description();
    let mut md = String::new();
    let _ = writeln!(md, "Machine: {machine}. Medians of {runs} runs after one warm-up, seconds of state evolution (lower is better); runs started with a 1-minute load average above {load_max} discarded ({} of {}).\n",
        ms.iter().filter(|m| m.discarded).count(), ms.len());
    let mut header = String::from("| simulator |");
    let mut rule = String::from("|---|");
    for (name, _, _) in &circuits {
        for &t in &thread_counts {
            let _ = write!(header, " {name} {t}T |");
            rule.push_str("---:|");
        }
    }
    let bw: Vec<String> = bandwidth
        .iter()
        .map(|(t, b)| {
            format!(
                "{:.1} GB/s on {t} thread{}",
                b / 1e9,
                if *t == 1 { "" } else { "s" }
            )
        })
        .collect();
    let _ = writeln!(
        md,
        "Read + write memory bandwidth (`xdv q bandwidth`): {}.\n",
        bw.join(", ")
    );
    let _ = writeln!(md, "{header}\n{rule}");
    for s in &sims {
        let mut row = format!("| {} |", s.label);
        for (name, _, _) in &circuits {
            for &t in &thread_counts {
                match med(s.label, name, t) {
                    Some(v) => {
                        let _ = write!(row, " {v:.4} |");
                    }
                    None => row.push_str(" — |"),
                }
            }
        }
        let _ = writeln!(md, "{row}");
    }
    let ratios = [
        ("XDV f32 / qsim (goal ≤ 0.5)", sims[0].label, sims[2].label),
        (
            "XDV f64 / qulacs (goal ≤ 0.25)",
            sims[1].label,
            sims[3].label,
        ),
        ("XDV f64 / qsim (goal < 1)", sims[1].label, sims[2].label),
        ("XDV f64 / Aer", sims[1].label, sims[4].label),
    ];
    for (i, precision_bytes) in [(0usize, 8u64), (1, 16)] {
        let label = sims[i].label;
        let mut passes_row = format!("| {label}: passes over the state |");
        let mut floor_row = format!("| {label}: time / bandwidth floor |");
        for (name, _, n) in &circuits {
            for &t in &thread_counts {
                let bw = bandwidth.iter().find(|(x, _)| *x == t).map(|(_, b)| *b);
                match (med_passes(label, name, t), med(label, name, t), bw) {
                    (Some(p), Some(secs), Some(bw)) => {
                        let floor = p * 2.0 * (precision_bytes << n) as f64 / bw;
                        let _ = write!(passes_row, " {p:.0} |");
                        let _ = write!(floor_row, " {:.2}× |", secs / floor.max(1e-12));
                    }
                    _ => {
                        passes_row.push_str(" — |");
                        floor_row.push_str(" — |");
                    }
                }
            }
        }
        let _ = writeln!(md, "{passes_row}\n{floor_row}");
    }
    for (what, a, b) in ratios {
        let mut row = format!("| {what} |");
        for (name, _, _) in &circuits {
            for &t in &thread_counts {
                match (med(a, name, t), med(b, name, t)) {
                    (Some(x), Some(y)) => {
                        let _ = write!(row, " {:.3} |", x / y);
                    }
                    _ => row.push_str(" — |"),
                }
            }
        }
        let _ = writeln!(md, "{row}");
    }
    println!("{md}");
    let mut json = String::from("{");
    let _ = write!(
        json,
        "\"machine\":{machine:?},\"runs\":{runs},\"load_max\":{load_max},\"bandwidth_bytes_per_s\":{{{}}},\"measurements\":[",
        bandwidth
            .iter()
            .map(|(t, b)| format!("\"{t}\":{b}"))
            .collect::<Vec<_>>()
            .join(",")
    );
    for (i, m) in ms.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        let _ = write!(
            json,
            "{{\"sim\":{:?},\"circuit\":{:?},\"threads\":{},\"simulate_s\":{},\"load1\":{},\"discarded\":{},\"passes\":{}}}",
            m.sim,
            m.circuit,
            m.threads,
            m.simulate_s,
            m.load1,
            m.discarded,
            m.passes.map(|p| p.to_string()).unwrap_or_else(|| "null".into())
        );
    }
    json.push_str("]}\n");
    std::fs::write(out.join("q.json"), json)?;
    std::fs::write(out.join("q.md"), md)?;
    println!("wrote bench-out/q.json and bench-out/q.md");
    Ok(())
}
