//! One-shot timing of the Φ mesh compiler and the mesh, for docs/phi.md: Clements decomposition
//! of Haar-random unitaries at N = 64, 128, 256, 1024 (unitarity check and elimination shown
//! apart), the reconstruction error, and the cost per MZI of applying a 256-mode mesh to a field.
//! Run with `cargo run --release -p xdv-phi --example phi_timing`.

use std::time::Instant;
use xdv_phi::haar::haar_unitary;
use xdv_phi::{decompose, C64};

fn main() {
    for (n, reps) in [(64usize, 20), (128, 10), (256, 5), (1024, 1)] {
        let u = haar_unitary(n, n as u64);
        let mut best = f64::INFINITY;
        let mut best_check = f64::INFINITY;
        let mut d = None;
        for _ in 0..reps {
            let t0 = Instant::now();
            let dev = u.unitarity_deviation();
            best_check = best_check.min(t0.elapsed().as_secs_f64());
            let t1 = Instant::now();
            let r = decompose(&u).expect("Haar unitaries decompose");
            best = best.min(t1.elapsed().as_secs_f64());
            assert!(dev < 1e-12);
            d = Some(r);
        }
        let d = d.expect("at least one repetition");
        let err = d.reconstruct().max_abs_diff(&u);
        println!(
            "N = {n:5}: decompose {:9.3} ms (of which unitarity check {:8.3} ms), reconstruction error {err:.2e}",
            best * 1e3,
            best_check * 1e3
        );
    }
    let n = 256;
    let mesh = decompose(&haar_unitary(n, 1)).expect("decomposes").mesh();
    let mzis = n * (n - 1) / 2;
    let mut field: Vec<C64> = (0..n)
        .map(|k| C64::new(1.0 / (n as f64).sqrt(), k as f64 * 1e-3))
        .collect();
    let reps = 2000;
    let t = Instant::now();
    for _ in 0..reps {
        mesh.apply(&mut field).expect("sizes match");
    }
    let s = t.elapsed().as_secs_f64();
    let power: f64 = field.iter().map(|a| a.norm_sqr()).sum();
    println!(
        "N = 256 mesh ({mzis} MZIs + {n} phases) applied to a field: {:.2} ns per element ({:.1} µs per pass; power kept {power:.12})",
        s / (reps * (mzis + n)) as f64 * 1e9,
        s / reps as f64 * 1e6
    );
}
