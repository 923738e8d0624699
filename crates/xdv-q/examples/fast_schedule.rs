//! Informal timing of the fast engine on one OpenQASM file: the state evolution's time and the
//! schedule's counts (operations, sweeps, permutation passes) for a precision, thread count and
//! SIMD level. Run with `cargo run --release -p xdv-q --example fast_schedule FILE [f32|f64]
//! [threads] [avx512|avx2|portable] [reps]`. It asserts nothing; timings depend on the machine.

use std::time::Instant;
use xdv_q::engine::{FastOptions, SimdLevel};
use xdv_q::{Fast, Gate, Op, Real, StateVec};

fn time<T: Real>(gates: &[Gate], n: u32, fast: &Fast, reps: usize) {
    for _ in 0..reps {
        let mut s = StateVec::<T>::zero(n, u64::MAX).expect("state fits");
        let t = Instant::now();
        let stats = fast.apply_with_stats(&mut s, gates).expect("valid gates");
        let dt = t.elapsed().as_secs_f64();
        println!(
            "{} {}T {:>8}: {dt:8.4} s  gates {} -> ops {}, passes {} (sweeps {}, permutations {})",
            T::NAME,
            fast.threads(),
            fast.simd_level().name(),
            stats.gates_in,
            stats.gates_out,
            stats.passes,
            stats.sweeps,
            stats.permutation_passes
        );
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(path) = args.get(1) else {
        eprintln!("usage: fast_schedule FILE [f32|f64] [threads] [avx512|avx2|portable] [reps]");
        return;
    };
    let text = std::fs::read_to_string(path).expect("readable file");
    let c = xdv_q::qasm::parse(&text, path, &Default::default()).expect("valid OpenQASM");
    let gates: Vec<Gate> = c
        .ops
        .iter()
        .filter_map(|op| match op {
            Op::Gate(g) => Some(g.clone()),
            _ => None,
        })
        .collect();
    let threads = args.get(3).and_then(|t| t.parse().ok()).unwrap_or(1);
    let simd = match args.get(4).map(String::as_str) {
        Some("portable") => SimdLevel::Portable,
        Some("avx2") => SimdLevel::Avx2,
        _ => SimdLevel::Avx512,
    };
    let reps = args.get(5).and_then(|t| t.parse().ok()).unwrap_or(3);
    let fast = Fast::with_options(
        threads,
        FastOptions {
            simd,
            ..FastOptions::default()
        },
    );
    match args.get(2).map(String::as_str) {
        Some("f64") => time::<f64>(&gates, c.num_qubits, &fast, reps),
        _ => time::<f32>(&gates, c.num_qubits, &fast, reps),
    }
}
