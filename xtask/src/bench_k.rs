//! `cargo xtask bench k`: the K sandbox's figures — instantiating a guest with the pooling
//! allocator (µs, median of batches) and the cost of fuel metering on the VQE guest (whole runs
//! with and without fuel, alternated, medians).
//!
//! It builds the example guests, then runs `crates/xdv-k/examples/k_bench.rs` in release. The
//! release build here is without LTO and with 16 codegen units (environment overrides of the
//! release profile): fat LTO of wasmtime and cranelift takes a long time on a small machine,
//! and the guest's own code is compiled by cranelift at run time either way. It writes
//! `bench-out/k.json`.

use crate::{cargo, machine_description, output, root};
use anyhow::{bail, Result};

/// Runs the benchmark; `--quick` makes it short (3 runs, batches of 200).
pub fn bench_k(rest: &[&str]) -> Result<()> {
    let mut args: Vec<String> = Vec::new();
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        match *a {
            "--quick" => args.push("--quick".into()),
            "--runs" | "--instantiations" => {
                let Some(v) = it.next() else {
                    bail!("{a} needs a number");
                };
                args.push(a.to_string());
                args.push(v.to_string());
            }
            other => {
                bail!("unknown argument {other} (expected --quick, --runs R, --instantiations N)")
            }
        }
    }
    crate::build_guests()?;
    let vqe = root().join("target/guests/wasm32-wasip1/release/vqe-h2.wasm");
    let mut cmd = cargo();
    cmd.env("CARGO_PROFILE_RELEASE_LTO", "off")
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16")
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .args([
            "run",
            "-q",
            "--release",
            "-p",
            "xdv-k",
            "--example",
            "k_bench",
            "--",
        ])
        .arg(&vqe)
        .args(&args);
    eprintln!("$ {:?}", cmd);
    let json = output(&mut cmd)?;
    let machine = machine_description();
    println!("machine: {machine}");
    println!("{}", json.trim());
    let out = root().join("bench-out");
    std::fs::create_dir_all(&out)?;
    std::fs::write(
        out.join("k.json"),
        format!("{{\"machine\":{machine:?},\"k\":{}}}\n", json.trim()),
    )?;
    println!("wrote bench-out/k.json");
    Ok(())
}
