//! Informal speed of the fast engine's kernels: nanoseconds per amplitude per gate for single
//! gates (fusion off; consecutive gates on low qubits share one blocked pass) on a 20-qubit state, in both precisions and on 1
//! and 2 threads. Run with `cargo run --release -p xdv-q --example fast_passes [qubits] [circuit]`;
//! with `circuit` it times a whole fused circuit under each fusion limit instead.
//! It asserts nothing; timings depend on the machine.

use std::time::Instant;
use xdv_q::engine::FastOptions;
use xdv_q::gates::{self, Matrix};
use xdv_q::{Fast, Gate, Real, StateVec};

fn gate(name: &str, params: &[f64], args: &[u32]) -> Gate {
    let def = gates::lookup(name).expect("table gate");
    Gate {
        name: name.into(),
        params: params.to_vec(),
        targets: args[def.controls..].to_vec(),
        controls: args[..def.controls].to_vec(),
        ctrl_state: u64::MAX,
        matrix: (def.target_matrix)(params),
    }
}

fn dense(args: &[u32]) -> Gate {
    let k = args.len();
    // A dense product of rotations: every entry non-zero.
    let mut m = Matrix::identity(1 << k);
    for j in 0..k {
        let r = gates::u_matrix(0.3 + j as f64, 0.7, -0.4).embed(&[j], k);
        m = r.mul(&m);
        if j > 0 {
            m = gates::lookup("cx")
                .expect("cx")
                .matrix(&[])
                .embed(&[0, j], k)
                .mul(&m);
        }
    }
    Gate {
        name: "unitary".into(),
        params: Vec::new(),
        targets: args.to_vec(),
        controls: Vec::new(),
        ctrl_state: 0,
        matrix: m,
    }
}

fn time<T: Real>(fast: &Fast, state: &mut StateVec<T>, g: &Gate, reps: usize) -> f64 {
    let gates = vec![g.clone(); reps];
    let t = Instant::now();
    let stats = fast.apply_with_stats(state, &gates).expect("valid gates");
    let dt = t.elapsed().as_secs_f64();
    dt * 1e9 / (stats.gates_out as f64 * state.amplitudes().len() as f64)
}

fn run<T: Real>(n: u32) {
    let opts = FastOptions {
        fusion: false,
        ..FastOptions::default()
    };
    let cases: Vec<(String, Gate)> = vec![
        ("u3 q0".into(), gate("u3", &[0.3, 0.2, 0.1], &[0])),
        ("u3 q1".into(), gate("u3", &[0.3, 0.2, 0.1], &[1])),
        ("u3 q5".into(), gate("u3", &[0.3, 0.2, 0.1], &[5])),
        ("u3 q12".into(), gate("u3", &[0.3, 0.2, 0.1], &[12])),
        (
            format!("u3 q{}", n - 1),
            gate("u3", &[0.3, 0.2, 0.1], &[n - 1]),
        ),
        ("rz q3".into(), gate("rz", &[0.3], &[3])),
        ("x q3".into(), gate("x", &[], &[3])),
        ("cx 2,7".into(), gate("cx", &[], &[2, 7])),
        ("cp 2,7".into(), gate("cp", &[0.4], &[2, 7])),
        ("swap 1,9".into(), gate("swap", &[], &[1, 9])),
        ("dense2 3,8".into(), dense(&[3, 8])),
        ("dense3 0,4,9".into(), dense(&[0, 4, 9])),
        ("dense4 1,3,6,11".into(), dense(&[1, 3, 6, 11])),
    ];
    for threads in [1, 2] {
        let fast = Fast::with_options(threads, opts.clone());
        let mut s = StateVec::<T>::zero(n, u64::MAX).expect("fits");
        println!("{} n={n} threads={threads}", T::NAME);
        for (label, g) in &cases {
            time(&fast, &mut s, g, 2);
            let ns = time(&fast, &mut s, g, 10);
            println!("  {label:<18} {ns:6.3} ns/amp/gate");
        }
    }
}

/// Ten layers of `u3` on every qubit then `cx` on even and odd neighbour pairs, then a QFT.
fn circuit(n: u32) -> Vec<Gate> {
    let mut out = Vec::new();
    for layer in 0..10 {
        for q in 0..n {
            let a = f64::from(layer * n + q);
            out.push(gate("u3", &[0.1 * a, 0.2 * a, 0.3], &[q]));
        }
        for start in [0, 1] {
            for q in (start..n - 1).step_by(2) {
                out.push(gate("cx", &[], &[q, q + 1]));
            }
        }
    }
    for j in 0..n {
        out.push(gate("h", &[], &[j]));
        for k in j + 1..n {
            out.push(gate(
                "cp",
                &[std::f64::consts::PI / f64::from(1u32 << (k - j).min(30))],
                &[k, j],
            ));
        }
    }
    out
}

fn whole<T: Real>(n: u32) {
    let gates = circuit(n);
    println!(
        "{} n={n}: layered circuit and QFT, {} gates, 2 threads",
        T::NAME,
        gates.len()
    );
    let t = Instant::now();
    let planned = xdv_q::engine::plan(&gates, n, &FastOptions::default()).expect("valid gates");
    let diagonals = planned.iter().filter(|o| o.is_diagonal()).count();
    println!(
        "  plan alone: {:.2} ms, {} operations, {diagonals} diagonal",
        t.elapsed().as_secs_f64() * 1e3,
        planned.len()
    );
    let mut variants: Vec<(String, FastOptions)> = vec![(
        "fusion off".into(),
        FastOptions {
            fusion: false,
            ..FastOptions::default()
        },
    )];
    for q in 1..=5 {
        variants.push((
            format!("fused_qubits_max {q}"),
            FastOptions {
                fused_qubits_max: q,
                ..FastOptions::default()
            },
        ));
    }
    for (label, opts) in variants {
        let fast = Fast::with_options(2, opts);
        let mut s = StateVec::<T>::zero(n, u64::MAX).expect("fits");
        fast.apply_with_stats(&mut s, &gates[..20])
            .expect("valid gates");
        let t = Instant::now();
        let stats = fast.apply_with_stats(&mut s, &gates).expect("valid gates");
        let ms = t.elapsed().as_secs_f64() * 1e3;
        println!(
            "  {label:<20} {ms:8.2} ms  ops {:4}  passes {:4}",
            stats.gates_out, stats.passes
        );
    }
}

fn main() {
    let n = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20);
    if std::env::args().nth(2).as_deref() == Some("circuit") {
        whole::<f32>(n);
        whole::<f64>(n);
        return;
    }
    run::<f32>(n);
    run::<f64>(n);
}
