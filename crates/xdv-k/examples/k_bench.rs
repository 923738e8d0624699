//! The K sandbox's benchmark (`cargo xtask bench k` runs it in release): the time to instantiate
//! a guest from the pooling allocator, and what fuel metering costs on the VQE guest.
//!
//! `k_bench VQE_WASM [--runs R] [--instantiations N] [--quick]` prints one JSON document:
//! - `instantiate_us_median`: setting up a guest's store (WASI context, limiter, ABI state, fuel)
//!   and instantiating it from the pool, µs per guest, the median of R batches of N; also for a
//!   minimal module (`instantiate_empty_us_median`).
//! - `vqe_fuel_s_median`, `vqe_nofuel_s_median`: one whole run of the VQE guest (its Q jobs
//!   included) with and without fuel metering, medians of R runs taken alternately, and their
//!   ratio `fuel_overhead`.

use anyhow::{bail, Context, Result};
use std::time::Instant;
use xdv_k::{EngineLimits, Exit, RunConfig, Sandbox};

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut path = None;
    let (mut runs, mut n) = (9usize, 2000usize);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--runs" => runs = it.next().context("--runs R")?.parse()?,
            "--instantiations" => n = it.next().context("--instantiations N")?.parse()?,
            "--quick" => (runs, n) = (3, 200),
            p if path.is_none() => path = Some(p.to_string()),
            other => bail!("unknown argument {other}"),
        }
    }
    let path = path.context("usage: k_bench VQE_WASM [--runs R] [--instantiations N] [--quick]")?;
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {path}"))?;
    let metered = Sandbox::new(EngineLimits::default())?;
    let unmetered = Sandbox::new(EngineLimits {
        fuel_metering: false,
        ..EngineLimits::default()
    })?;
    let cfg = RunConfig::default();
    let vqe = metered
        .compile(&bytes)
        .map_err(|t| anyhow::anyhow!("{}", t.message))?;
    let vqe_free = unmetered
        .compile(&bytes)
        .map_err(|t| anyhow::anyhow!("{}", t.message))?;
    let empty = metered
        .compile(b"(module (memory (export \"memory\") 1) (func (export \"_start\")))")
        .map_err(|t| anyhow::anyhow!("{}", t.message))?;
    let per = |g: &xdv_k::Guest| -> Result<f64> {
        let mut batches = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            for _ in 0..n {
                metered
                    .instantiate_only(g, &cfg)
                    .map_err(|t| anyhow::anyhow!("{}", t.message))?;
            }
            batches.push(t.elapsed().as_secs_f64() * 1e6 / n as f64);
        }
        Ok(median(&mut batches))
    };
    let inst_vqe = per(&vqe)?;
    let inst_empty = per(&empty)?;
    let (mut with, mut without) = (Vec::new(), Vec::new());
    let mut fuel = 0;
    for _ in 0..runs {
        let t = Instant::now();
        let r = metered.run(&vqe, &cfg)?;
        with.push(t.elapsed().as_secs_f64());
        fuel = r.fuel_consumed;
        if r.exit != Exit::Ok {
            bail!("the VQE guest trapped: {:?}", r.trap);
        }
        let t = Instant::now();
        let r = unmetered.run(&vqe_free, &cfg)?;
        without.push(t.elapsed().as_secs_f64());
        if r.exit != Exit::Ok {
            bail!("the VQE guest trapped without fuel: {:?}", r.trap);
        }
    }
    let (w, wo) = (median(&mut with), median(&mut without));
    println!(
        "{}",
        serde_json::json!({
            "runs": runs, "instantiations_per_batch": n,
            "instantiate_us_median": inst_vqe, "instantiate_empty_us_median": inst_empty,
            "vqe_fuel_s_median": w, "vqe_nofuel_s_median": wo, "fuel_overhead": w / wo - 1.0,
            "vqe_fuel_consumed": fuel,
        })
    );
    Ok(())
}
