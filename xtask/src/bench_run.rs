//! `cargo xtask bench run`: the Domain Hypervisor's figures — VHM creation plus teardown in the
//! core (`crates/xdv-core/examples/vhm_churn.rs`: a root VHM holding K, Q and Φ resources with a
//! nested VHM inside, created and terminated, per second) and the hypervisor's overhead on the
//! VQE example (`crates/xdv-runtime/examples/hv_overhead.rs`: the VQE guest run as a VHM by the
//! run loop against the same guest run directly in the K sandbox, alternated, medians).
//!
//! Both are built in release (the hypervisor example without LTO, as `bench k` does: fat LTO of
//! wasmtime takes minutes and the guest is compiled by cranelift at run time either way). It
//! writes `bench-out/run.json`.

use crate::{cargo, machine_description, output, root};
use anyhow::{bail, Result};

/// Runs the benchmark; `--quick` makes it short.
pub fn bench_run(rest: &[&str]) -> Result<()> {
    let quick = match rest {
        [] => false,
        ["--quick"] => true,
        other => bail!("unknown arguments {other:?} (expected nothing or --quick)"),
    };
    crate::build_guests()?;
    let (pairs, churn_runs, hv_runs) = if quick {
        ("50000", "3", "5")
    } else {
        ("200000", "7", "21")
    };
    let release = |pkg: &str, example: &str, args: &[&str]| -> Result<String> {
        let mut cmd = cargo();
        cmd.env("CARGO_PROFILE_RELEASE_LTO", "off")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16")
            .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
            .args([
                "run",
                "-q",
                "--release",
                "-p",
                pkg,
                "--example",
                example,
                "--",
            ])
            .args(args);
        eprintln!("$ {:?}", cmd);
        Ok(output(&mut cmd)?.trim().to_string())
    };
    let churn = release("xdv-core", "vhm_churn", &[pairs, churn_runs])?;
    let hv = release("xdv-runtime", "hv_overhead", &[hv_runs])?;
    let machine = machine_description();
    println!("machine: {machine}");
    println!("vhm churn: {churn}");
    println!("hypervisor overhead on VQE: {hv}");
    let out = root().join("bench-out");
    std::fs::create_dir_all(&out)?;
    std::fs::write(
        out.join("run.json"),
        format!("{{\"machine\":{machine:?},\"vhm_churn\":{churn},\"hv_overhead\":{hv}}}\n"),
    )?;
    println!("wrote bench-out/run.json");
    Ok(())
}
