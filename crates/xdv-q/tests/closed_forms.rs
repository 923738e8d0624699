//! Circuits whose results are known in closed form — GHZ, the QFT of basis states,
//! Bernstein–Vazirani, Deutsch–Jozsa and the W state — written as OpenQASM, parsed, simulated with
//! the reference and fast engines in both precisions, and compared with the formula.

use num_complex::Complex;
use std::f64::consts::PI;
use xdv_q::engine::{Engine, Fast, Reference};
use xdv_q::exec::{self, RunOptions};
use xdv_q::qasm;
use xdv_q::Real;

const MEMORY: u64 = 1 << 30;

fn parse(src: &str) -> xdv_q::Circuit {
    qasm::parse(src, "test.qasm", &qasm::Options::default())
        .unwrap_or_else(|e| panic!("{e}\n{src}"))
}

fn state<T: Real>(src: &str, engine: &dyn Engine<T>) -> Vec<Complex<f64>> {
    let (s, _) = exec::final_state(&parse(src), engine, MEMORY).unwrap();
    s.amplitudes()
        .iter()
        .map(|a| Complex::new(a.re.to_f64(), a.im.to_f64()))
        .collect()
}

/// Every engine and precision reproduces `want` for `src`.
fn check_state(src: &str, want: &[Complex<f64>]) {
    let runs: [(&str, Vec<Complex<f64>>, f64); 4] = [
        ("reference f64", state::<f64>(src, &Reference), 1e-12),
        (
            "fast f64, 1 thread",
            state::<f64>(src, &Fast::new(1)),
            1e-12,
        ),
        (
            "fast f64, 2 threads",
            state::<f64>(src, &Fast::new(2)),
            1e-12,
        ),
        ("fast f32", state::<f32>(src, &Fast::new(2)), 1e-5),
    ];
    for (what, got, tol) in runs {
        assert_eq!(got.len(), want.len());
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                (a - b).norm() < tol,
                "{what}: amplitude {i} is {a}, expected {b}\n{src}"
            );
        }
    }
}

fn counts(src: &str, shots: u64) -> std::collections::BTreeMap<String, u64> {
    let opts = RunOptions {
        shots,
        seed: 7,
        memory_bytes_max: MEMORY,
        ..RunOptions::default()
    };
    exec::run::<f64>(&parse(src), &Fast::new(2), &opts)
        .unwrap()
        .counts
}

fn ghz(n: usize, measure: bool) -> String {
    let mut s =
        format!("OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[{n}];\ncreg c[{n}];\nh q[0];\n");
    for i in 1..n {
        s += &format!("cx q[{}],q[{i}];\n", i - 1);
    }
    if measure {
        s += "measure q -> c;\n";
    }
    s
}

#[test]
fn ghz_states() {
    for n in 2..=9 {
        let mut want = vec![Complex::new(0.0, 0.0); 1 << n];
        want[0] = Complex::new(std::f64::consts::FRAC_1_SQRT_2, 0.0);
        want[(1 << n) - 1] = want[0];
        check_state(&ghz(n, false), &want);
        let c = counts(&ghz(n, true), 2000);
        assert_eq!(
            c.len(),
            2,
            "GHZ-{n} gives only all-zeros and all-ones: {c:?}"
        );
        let (zeros, ones) = (c["0".repeat(n).as_str()], c["1".repeat(n).as_str()]);
        assert_eq!(zeros + ones, 2000);
        // binomial(2000, 1/2): σ ≈ 22.4; 5σ
        assert!(zeros.abs_diff(1000) < 112, "GHZ-{n}: {zeros} zeros of 2000");
    }
}

/// The textbook QFT (with the final swaps), in OpenQASM 3, on the basis state |x⟩.
fn qft(n: usize, x: usize) -> String {
    let mut s = format!("OPENQASM 3.0;\ninclude \"stdgates.inc\";\nqubit[{n}] q;\n");
    for b in 0..n {
        if x >> b & 1 == 1 {
            s += &format!("x q[{b}];\n");
        }
    }
    for j in (0..n).rev() {
        s += &format!("h q[{j}];\n");
        for k in (0..j).rev() {
            s += &format!("cp(pi/{}) q[{k}], q[{j}];\n", 1u64 << (j - k));
        }
    }
    for i in 0..n / 2 {
        s += &format!("swap q[{i}], q[{}];\n", n - 1 - i);
    }
    s
}

#[test]
fn qft_of_basis_states() {
    for n in 1..=7 {
        let dim = 1usize << n;
        for x in [0, 1, dim / 2, dim - 1, (5 * dim / 7) % dim] {
            let want: Vec<Complex<f64>> = (0..dim)
                .map(|k| {
                    Complex::from_polar(
                        1.0 / (dim as f64).sqrt(),
                        2.0 * PI * (x * k) as f64 / dim as f64,
                    )
                })
                .collect();
            check_state(&qft(n, x), &want);
        }
    }
}

#[test]
fn bernstein_vazirani_finds_the_secret_in_one_query() {
    for (n, secret) in [(3usize, 0b101u64), (5, 0b10110), (8, 0b1100_1011), (10, 0)] {
        let mut s = format!("OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[{n}];\nqreg a[1];\ncreg c[{n}];\nx a[0];\nh a[0];\nh q;\n");
        for b in 0..n {
            if secret >> b & 1 == 1 {
                s += &format!("cx q[{b}],a[0];\n");
            }
        }
        s += "h q;\nmeasure q -> c;\n";
        let c = counts(&s, 500);
        let key = format!("{:0n$b}", secret);
        assert_eq!(c.get(&key), Some(&500), "BV n={n}: {c:?}");
    }
}

#[test]
fn deutsch_jozsa_tells_constant_from_balanced() {
    let n = 4;
    let oracles = [
        ("constant 0", "", true),
        ("constant 1", "x a[0];\n", true),
        ("balanced x0", "cx q[0],a[0];\n", false),
        (
            "balanced parity",
            "cx q[0],a[0];\ncx q[1],a[0];\ncx q[3],a[0];\n",
            false,
        ),
    ];
    for (what, oracle, constant) in oracles {
        let s = format!(
            "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[{n}];\nqreg a[1];\ncreg c[{n}];\nx a[0];\nh a[0];\nh q;\n{oracle}h q;\nmeasure q -> c;\n"
        );
        let c = counts(&s, 300);
        let zeros = c.get("0000").copied().unwrap_or(0);
        if constant {
            assert_eq!(zeros, 300, "{what}: {c:?}");
        } else {
            assert_eq!(zeros, 0, "{what}: {c:?}");
        }
    }
}

#[test]
fn w_state() {
    let src = "OPENQASM 3.0;\ninclude \"stdgates.inc\";\nqubit[3] q;\nry(2*acos(1/sqrt(3))) q[0];\nch q[0], q[1];\ncx q[1], q[2];\ncx q[0], q[1];\nx q[0];\n";
    let a = Complex::new(1.0 / 3f64.sqrt(), 0.0);
    let z = Complex::new(0.0, 0.0);
    check_state(src, &[z, a, a, z, a, z, z, z]);
}
