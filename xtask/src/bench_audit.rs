//! `cargo xtask bench audit`: the audit log's promises measured — durable batched appends
//! (target ≥ 200,000 entries/s), verifying a 1,000,000-entry log (target ≤ 1 s), and the cost of
//! signing and verifying one checkpoint with each algorithm (Ed25519, ML-DSA-65).
//!
//! It builds the `audit_bench` example of `xdv-sdbm` in release and runs it `--runs` times (a
//! fresh process each), writing the log under `bench-out/`, and reports medians; it writes
//! `bench-out/audit.json`. `--quick` runs once on 100,000 entries, to show the harness works.

use crate::{field, machine_description, median, output, root, run};
use anyhow::{bail, Context, Result};
use std::process::Command;

/// Runs the benchmark.
pub fn bench_audit(rest: &[&str]) -> Result<()> {
    let (mut entries, mut runs) = (1_000_000u64, 5usize);
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match *a {
            "--entries" => entries = it.next().context("--entries N")?.parse()?,
            "--runs" => runs = it.next().context("--runs R")?.parse()?,
            "--quick" => {
                entries = 100_000;
                runs = 1;
            }
            other => bail!("unknown argument {other}"),
        }
    }
    run(crate::cargo().args([
        "build",
        "--release",
        "-p",
        "xdv-sdbm",
        "--example",
        "audit_bench",
    ]))?;
    let exe = root().join("target/release/examples/audit_bench");
    let out = root().join("bench-out");
    std::fs::create_dir_all(&out)?;
    let dir = out.to_string_lossy().to_string();
    let n = entries.to_string();
    let (mut append, mut verify_s, mut ed_s, mut ed_v, mut ml_s, mut ml_v) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let mut last = String::new();
    for _ in 0..runs.max(1) {
        let j = output(Command::new(&exe).args(["--entries", &n, "--dir", &dir]))?;
        append.push(field(&j, "append_entries_per_sec")?);
        verify_s.push(field(&j, "verify_s")?);
        let sign = |alg: &str, what: &str| -> Result<f64> {
            let i = j.find(&format!("\"{alg}\":")).context("sign table")?;
            field(&j[i..], what)
        };
        ed_s.push(sign("ed25519", "sign_us")?);
        ed_v.push(sign("ed25519", "verify_us")?);
        ml_s.push(sign("ml-dsa-65", "sign_us")?);
        ml_v.push(sign("ml-dsa-65", "verify_us")?);
        last = j;
    }
    let (a, v) = (median(&mut append), median(&mut verify_s));
    let (es, ev, ms, mv) = (
        median(&mut ed_s),
        median(&mut ed_v),
        median(&mut ml_s),
        median(&mut ml_v),
    );
    println!("machine: {}", machine_description());
    println!("workload: {entries} entries (~50 bytes each), fsync every 4096, checkpoint every 262,144; medians of {runs} runs");
    println!("{:<52} {:>14}", "measurement", "median");
    println!(
        "{:<52} {:>14.0}",
        "durable batched append (entries/s; target ≥ 200,000)", a
    );
    println!(
        "{:<52} {:>14.3}",
        "verify the whole log (s; target ≤ 1 s per 1,000,000)", v
    );
    println!("{:<52} {:>14.1}", "Ed25519 checkpoint sign (µs)", es);
    println!("{:<52} {:>14.1}", "Ed25519 checkpoint verify (µs)", ev);
    println!("{:<52} {:>14.1}", "ML-DSA-65 checkpoint sign (µs)", ms);
    println!("{:<52} {:>14.1}", "ML-DSA-65 checkpoint verify (µs)", mv);
    let doc = format!(
        "{{\"entries\":{entries},\"runs\":{runs},\"append_entries_per_sec\":{a},\"verify_s\":{v},\"ed25519_sign_us\":{es},\"ed25519_verify_us\":{ev},\"mldsa65_sign_us\":{ms},\"mldsa65_verify_us\":{mv},\"last_run\":{last}}}\n"
    );
    std::fs::write(out.join("audit.json"), doc)?;
    Ok(())
}
