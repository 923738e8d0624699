//! Measures the Domain Hypervisor's overhead on the VQE example: the VQE guest run as a VHM by
//! `xdv run`'s loop (manifest → core commands, fuel slices dispatched by the core's scheduler,
//! each of the guest's Q jobs submitted to the core, dispatched and completed, the guest parked
//! while it waits, the trace appended for every input) against the same guest, with the same
//! seed and limits, run directly in the K sandbox as `xdv k run` does (its jobs run at
//! submission). Cold: both sides set up a sandbox, compile the guest and run it to the end. Warm:
//! both sides reuse a sandbox with the guest already compiled, so only the execution is timed.
//! The four kinds of run alternate, and the medians are printed as JSON for
//! `cargo xtask bench run`.
//!
//! `cargo run --release -p xdv-runtime --example hv_overhead -- [RUNS] [ONLY]` (build the guests
//! first: `cargo xtask guests`). `ONLY`, one of `hv`, `direct`, `hv-warm`, `direct-warm`, runs that
//! kind alone `RUNS` times and prints its median, for profiling one side.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;
use xdv_runtime::run::NoSink;
use xdv_runtime::{Manifest, Options, Resume};

// The allocator the `xdv` binary runs with, on both sides.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse().expect("RUNS is an integer"))
        .unwrap_or(11)
        .max(1);
    const KINDS: [&str; 4] = ["hv", "direct", "hv-warm", "direct-warm"];
    let only: Option<usize> = std::env::args().nth(2).map(|a| {
        KINDS
            .iter()
            .position(|k| *k == a)
            .unwrap_or_else(|| panic!("ONLY is one of {KINDS:?}, not {a:?}"))
    });
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let wasm = root.join("target/guests/wasm32-wasip1/release/vqe-h2.wasm");
    let bytes = std::fs::read(&wasm).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; build the guests with `cargo xtask guests`",
            wasm.display()
        )
    });
    let text = "name = \"vqe\"\nseed = 1\n[[vhm]]\nname = \"chemistry\"\n[vhm.k]\nguest = \"vqe.wasm\"\nfuel_units = 100000000\nmemory_mib = 64\n[vhm.q]\nqubits = 2\nshots = 1000000\n";
    let manifest = Manifest::from_toml(text, "vqe.toml").expect("manifest");
    let files = BTreeMap::from([("vqe.wasm".to_string(), bytes.clone())]);
    let machine = xdv_core::Machine::default_machine();
    let vhm_seed = xdv_runtime::run::vhm_seed(1, &manifest.vhms[0]);
    let direct_cfg = xdv_k::RunConfig {
        seed: vhm_seed,
        limits: xdv_k::Limits {
            fuel_max: 100_000_000,
            fuel_per_slice: machine.k.fuel_per_slice,
            memory_bytes_max: 64 << 20,
            qubits_max: 2,
            shots_max: 1_000_000,
            ..xdv_k::Limits::default()
        },
        args: vec!["chemistry".into()],
        stdin: Vec::new(),
        jobs: xdv_k::JobMode::Inline,
    };
    let (mut hv, mut direct, mut compile) = (Vec::new(), Vec::new(), Vec::new());
    let (mut hv_warm, mut direct_warm) = (Vec::new(), Vec::new());
    let warm = xdv_runtime::Warm::new(&manifest, &files).expect("warm sandbox");
    let warm_opts = Options {
        warm: Some(warm),
        ..Options::default()
    };
    let direct_sandbox = xdv_k::Sandbox::new(xdv_k::EngineLimits::default()).expect("sandbox");
    let direct_guest = direct_sandbox.compile(&bytes).expect("compiles");
    let mut check = None;
    for i in 0..runs + 1 {
        for k in 0..4 {
            // Rotate which kind goes first.
            let side = (i + k) % 4;
            if only.is_some_and(|o| o != side) {
                continue;
            }
            let t0 = Instant::now();
            let out = match side {
                0 | 2 => {
                    let opts = if side == 0 {
                        Options::default()
                    } else {
                        warm_opts.clone()
                    };
                    let r = xdv_runtime::run(
                        &manifest,
                        &files,
                        machine.clone(),
                        &opts,
                        Resume::default(),
                        &mut NoSink,
                    )
                    .expect("run");
                    r.vhms[0].results[0]["stdout"].clone()
                }
                1 => {
                    // As `xdv k run` does: a sandbox (engine and instance pool), then the guest.
                    let sandbox =
                        xdv_k::Sandbox::new(xdv_k::EngineLimits::default()).expect("sandbox");
                    let g = sandbox.compile(&bytes).expect("compiles");
                    let r = sandbox.run(&g, &direct_cfg).expect("runs");
                    serde_json::json!(String::from_utf8_lossy(&r.stdout))
                }
                _ => {
                    let r = direct_sandbox
                        .run(&direct_guest, &direct_cfg)
                        .expect("runs");
                    serde_json::json!(String::from_utf8_lossy(&r.stdout))
                }
            };
            let s = t0.elapsed().as_secs_f64();
            // Every kind of run computes the same thing.
            match &check {
                None => check = Some(out),
                Some(c) => assert_eq!(c, &out, "the hypervisor and the direct run differ"),
            }
            if i > 0 {
                match side {
                    0 => hv.push(s),
                    1 => direct.push(s),
                    2 => hv_warm.push(s),
                    _ => direct_warm.push(s),
                }
            }
        }
    }
    if let Some(o) = only {
        let mut kinds = [hv, direct, hv_warm, direct_warm];
        let v = &mut kinds[o];
        v.sort_by(f64::total_cmp);
        println!(
            "{{\"kind\": {:?}, \"runs\": {runs}, \"s_median\": {:.6}}}",
            KINDS[o],
            v[v.len() / 2]
        );
        return;
    }
    // Both sides set up a sandbox and compile the guest with cranelift on every run; that cost,
    // alone, so that the overhead can also be stated on the rest of the run.
    for _ in 0..runs {
        let t0 = Instant::now();
        let sandbox = xdv_k::Sandbox::new(xdv_k::EngineLimits::default()).expect("sandbox");
        let g = sandbox.compile(&bytes).expect("compiles");
        compile.push(t0.elapsed().as_secs_f64());
        drop(g);
    }
    let med = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (h, d, c) = (med(&mut hv), med(&mut direct), med(&mut compile));
    let (hw, dw) = (med(&mut hv_warm), med(&mut direct_warm));
    println!(
        "{{\"runs\": {runs}, \"hypervisor_s_median\": {h:.6}, \"direct_s_median\": {d:.6}, \"compile_s_median\": {c:.6}, \"overhead_fraction\": {:.4}, \"hypervisor_warm_s_median\": {hw:.6}, \"direct_warm_s_median\": {dw:.6}, \"overhead_fraction_warm\": {:.4}}}",
        h / d - 1.0,
        hw / dw - 1.0
    );
}
