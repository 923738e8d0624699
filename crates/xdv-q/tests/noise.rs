//! Trajectory noise against its analytic decay laws, and the predicted error against a hand
//! computation.

use num_complex::Complex;
use std::collections::BTreeMap;
use xdv_q::circuit::{Circuit, Gate, Op, Register};
use xdv_q::device::Device;
use xdv_q::engine::Reference;
use xdv_q::exec::{final_state, ops, run, Method, RunOptions};
use xdv_q::noise::{self, predicted_error};
use xdv_q::pauli::Observable;
use xdv_q::rng::{Purpose, Rng};
use xdv_q::state::StateVec;

fn g(name: &str, params: &[f64], qubits: &[u32]) -> Op {
    Op::Gate(Gate::table(name, params, qubits).expect("a table gate"))
}

fn m(qubit: u32, clbit: u32) -> Op {
    Op::Measure { qubit, clbit }
}

fn circuit(n: u32, nc: u32, ops: Vec<Op>) -> Circuit {
    Circuit {
        num_qubits: n,
        num_clbits: nc,
        qregs: vec![Register {
            name: "q".into(),
            offset: 0,
            size: n,
        }],
        cregs: vec![Register {
            name: "c".into(),
            offset: 0,
            size: nc,
        }],
        ops,
        global_phase: 0.0,
    }
}

/// A two-qubit all-to-all device with `extra` TOML appended.
fn dev(extra: &str) -> Device {
    let text = format!("name = \"test\"\nqubits = 2\nall_to_all = true\n{extra}");
    Device::from_toml(&text, "test.toml").unwrap()
}

fn run_on(c: &Circuit, d: &Device, shots: u64, seed: u64) -> BTreeMap<String, u64> {
    let o = RunOptions {
        shots,
        seed,
        memory_bytes_max: 1 << 24,
        device: Some(d.clone()),
        ..RunOptions::default()
    };
    let r = run::<f64>(c, &Reference, &o).unwrap();
    assert_eq!(r.method, Method::Trajectories);
    assert_eq!(r.trajectories, shots);
    r.counts
}

/// Asserts `k` successes of `n` are within 5σ of probability `p`.
fn assert_binomial(k: u64, n: u64, p: f64, what: &str) {
    let sigma = (n as f64 * p * (1.0 - p)).sqrt().max(0.5);
    let d = (k as f64 - n as f64 * p).abs();
    assert!(
        d <= 5.0 * sigma,
        "{what}: {k} of {n}, expected {:.1} ± {sigma:.1}",
        n as f64 * p
    );
}

fn ones_at(counts: &BTreeMap<String, u64>, bit: usize) -> u64 {
    counts
        .iter()
        .filter(|(k, _)| k.chars().rev().nth(bit) == Some('1'))
        .map(|(_, v)| v)
        .sum()
}

#[test]
fn amplitude_damping_decays_the_excited_population_as_exp_minus_t_over_t1() {
    for t_ns in [2_000.0, 10_000.0, 25_000.0] {
        let d = dev(&format!(
            "[coherence]\nt1_us = 10\n[duration_ns.by_name]\nid = {t_ns}\n"
        ));
        let c = circuit(1, 1, vec![g("x", &[], &[0]), g("id", &[], &[0]), m(0, 0)]);
        let n = 4000;
        let counts = run_on(&c, &d, n, 1);
        assert_binomial(
            ones_at(&counts, 0),
            n,
            (-t_ns / 10_000.0f64).exp(),
            &format!("t = {t_ns} ns"),
        );
    }
}

#[test]
fn dephasing_decays_plus_coherence_as_exp_minus_t_over_t2() {
    for t_ns in [3_000.0, 10_000.0] {
        let d = dev(&format!(
            "[coherence]\nt1_us = 40\nt2_us = 10\n[duration_ns.by_name]\nid = {t_ns}\n"
        ));
        // |+⟩, wait, measure X: P(0) = (1 + ⟨X⟩)/2 with ⟨X⟩ = e^{−t/T2}.
        let c = circuit(
            1,
            1,
            vec![
                g("h", &[], &[0]),
                g("id", &[], &[0]),
                g("h", &[], &[0]),
                m(0, 0),
            ],
        );
        let n = 4000;
        let counts = run_on(&c, &d, n, 2);
        let p0 = (1.0 + (-t_ns / 10_000.0f64).exp()) / 2.0;
        assert_binomial(n - ones_at(&counts, 0), n, p0, &format!("t = {t_ns} ns"));
    }
}

#[test]
fn one_qubit_depolarising_shrinks_z_by_one_minus_four_e_over_three() {
    for e in [0.05, 0.3, 0.75] {
        let d = dev(&format!("[gate_error]\none_qubit = {e}\n"));
        let c = circuit(1, 1, vec![g("id", &[], &[0]), m(0, 0)]);
        let n = 5000;
        let counts = run_on(&c, &d, n, 3);
        // ⟨Z⟩ = 1 − 4e/3, so P(1) = 2e/3.
        assert_binomial(ones_at(&counts, 0), n, 2.0 * e / 3.0, &format!("e = {e}"));
    }
}

#[test]
fn two_qubit_depolarising_spreads_over_the_fifteen_paulis() {
    let e = 0.45;
    let d = dev(&format!("[gate_error]\ntwo_qubit = {e}\n"));
    let c = circuit(2, 2, vec![g("cx", &[], &[0, 1]), m(0, 0), m(1, 1)]);
    let n = 6000;
    let counts = run_on(&c, &d, n, 4);
    // Of the 15 non-identity Paulis: 3 flip neither qubit, 4 flip only q0, 4 only q1, 4 both.
    let probs = [
        ("00", 1.0 - e + 3.0 * e / 15.0),
        ("01", 4.0 * e / 15.0),
        ("10", 4.0 * e / 15.0),
        ("11", 4.0 * e / 15.0),
    ];
    for (k, p) in probs {
        assert_binomial(*counts.get(k).unwrap_or(&0), n, p, k);
    }
}

#[test]
fn readout_flips_at_their_rates() {
    let d = dev("[readout]\np01 = 0.1\np10 = 0.25\n");
    let c = circuit(2, 2, vec![g("x", &[], &[1]), m(0, 0), m(1, 1)]);
    let n = 5000;
    let counts = run_on(&c, &d, n, 5);
    assert_binomial(ones_at(&counts, 0), n, 0.1, "p01");
    assert_binomial(n - ones_at(&counts, 1), n, 0.25, "p10");
    // The state is not affected: re-measuring gives the true value with the same flip rate.
    let c = circuit(1, 2, vec![g("x", &[], &[0]), m(0, 0), m(0, 1)]);
    let counts = run_on(&c, &d, n, 6);
    assert_binomial(
        counts.get("00").copied().unwrap_or(0),
        n,
        0.25 * 0.25,
        "both flipped",
    );
}

#[test]
fn idle_decay_follows_the_asap_schedule() {
    let d = dev("[coherence]\nt1_us = 10\n[duration_ns.by_name]\nid = 10000\n");
    let n = 3000;
    // q0 waits for q1's 10 µs identity at the barrier, then is measured: e^{−1}.
    let with_barrier = circuit(
        2,
        2,
        vec![
            g("x", &[], &[0]),
            g("x", &[], &[1]),
            g("id", &[], &[1]),
            Op::Barrier { qubits: vec![0, 1] },
            m(0, 0),
            m(1, 1),
        ],
    );
    let counts = run_on(&with_barrier, &d, n, 7);
    assert_binomial(ones_at(&counts, 0), n, (-1.0f64).exp(), "q0 idle");
    assert_binomial(ones_at(&counts, 1), n, (-1.0f64).exp(), "q1 busy");
    // Without the barrier, q0 is measured at once and does not decay.
    let without = circuit(
        2,
        2,
        vec![
            g("x", &[], &[0]),
            g("x", &[], &[1]),
            g("id", &[], &[1]),
            m(0, 0),
            m(1, 1),
        ],
    );
    let counts = run_on(&without, &d, n, 7);
    assert_eq!(ones_at(&counts, 0), n);
}

fn ry_state(theta: f64) -> StateVec<f64> {
    final_state::<f64>(
        &circuit(1, 0, vec![g("ry", &[theta], &[0])]),
        &Reference,
        1 << 20,
    )
    .unwrap()
    .0
}

#[test]
fn channels_keep_the_norm_and_average_to_the_channel() {
    let theta = 1.1f64;
    let gamma = 0.35;
    let p_z = 0.2;
    let n = 20_000;
    let x = Observable::parse("X").unwrap();
    let (mut p1_sum, mut x_sum, mut xz_sum) = (0.0, 0.0, 0.0);
    let mut rng = Rng::new(99, Purpose::Trajectory, 0);
    for _ in 0..n {
        let mut s = ry_state(theta);
        noise::amplitude_damping(&mut s, 0, gamma, &mut rng);
        assert!((s.norm_sqr() - 1.0).abs() < 1e-12);
        p1_sum += ops::prob_one(&s, 0);
        x_sum += x.expectation(&s).unwrap();
        noise::phase_damping(&mut s, 0, p_z, &mut rng);
        assert!((s.norm_sqr() - 1.0).abs() < 1e-12);
        xz_sum += x.expectation(&s).unwrap();
    }
    let nf = n as f64;
    let p1 = (theta / 2.0).sin().powi(2);
    // Population: P(1) → (1 − γ)·P(1); coherence: ⟨X⟩ → √(1 − γ)·⟨X⟩, then × (1 − 2p_z).
    let bound = 5.0 / nf.sqrt();
    assert!(
        (p1_sum / nf - (1.0 - gamma) * p1).abs() < bound,
        "{}",
        p1_sum / nf
    );
    let x0 = theta.sin() * (1.0 - gamma).sqrt();
    assert!((x_sum / nf - x0).abs() < bound, "{} vs {x0}", x_sum / nf);
    assert!((xz_sum / nf - x0 * (1.0 - 2.0 * p_z)).abs() < bound);

    // Depolarising and Pauli application keep the norm exactly.
    let mut s = StateVec::from_amplitudes(vec![
        Complex::new(0.6, 0.0),
        Complex::new(0.0, 0.8),
        Complex::new(0.0, 0.0),
        Complex::new(0.0, 0.0),
    ]);
    for _ in 0..100 {
        noise::depolarize(&mut s, &[0, 1], 0.9, &mut rng);
        assert!((s.norm_sqr() - 1.0).abs() < 1e-12);
    }
    assert_eq!(noise::damping_gamma(5.0, f64::INFINITY), 0.0);
    assert!((noise::damping_gamma(10.0, 10.0) - (1.0 - (-1.0f64).exp())).abs() < 1e-15);
    assert!((noise::dephasing_pz(10.0, 5.0) - (1.0 - (-2.0f64).exp()) / 2.0).abs() < 1e-15);
}

#[test]
fn predicted_error_matches_the_hand_computation() {
    let grid = Device::load(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/devices/grid.toml"),
    )
    .unwrap();
    let mut c = circuit(
        6,
        2,
        vec![g("x", &[], &[0]), g("cx", &[], &[0, 1]), m(0, 0), m(1, 1)],
    );
    // By hand: x on q0 over [0, 50] ns, cx over [50, 350]; both measured at 350.
    // q0 decays from 0 to 350, q1 from 50 (its first operation) to 350.
    let (t1, t2) = (100_000.0f64, 80_000.0f64);
    let tphi = 1.0 / (1.0 / t2 - 1.0 / (2.0 * t1));
    let f = |tau: f64| (-tau / t1).exp() * (1.0 + (-tau / tphi).exp()) / 2.0;
    let want =
        1.0 - (1.0 - 1e-3) * (1.0 - 1e-2) * f(350.0) * f(300.0) * (1.0 - 0.02) * (1.0 - 0.02);
    let got = predicted_error(&c, &grid);
    assert!((got - want).abs() < 1e-15, "{got} vs {want}");
    let o = RunOptions {
        shots: 10,
        device: Some(grid.clone()),
        memory_bytes_max: 1 << 24,
        ..RunOptions::default()
    };
    assert_eq!(run::<f64>(&c, &Reference, &o).unwrap().predicted_error, got);
    assert_eq!(predicted_error(&c, &Device::ideal(6)), 0.0);
    // Waiting longer costs more; an extra gate costs its error.
    c.ops.insert(2, g("x", &[], &[0]));
    assert!(predicted_error(&c, &grid) > got);
}

#[test]
fn noisy_runs_are_deterministic_and_noiseless_devices_sample_once() {
    let d = Device::example();
    let c = circuit(
        2,
        2,
        vec![
            g("sx", &[], &[0]),
            g("cx", &[], &[0, 1]),
            g("rz", &[0.4], &[1]),
            m(0, 0),
            m(1, 1),
        ],
    );
    let a = run_on(&c, &d, 300, 12);
    assert_eq!(a, run_on(&c, &d, 300, 12));
    assert_ne!(a, run_on(&c, &d, 300, 13));
    let quiet = dev("[duration_ns]\none_qubit = 30\n");
    assert!(quiet.is_noiseless());
    let o = RunOptions {
        shots: 100,
        device: Some(quiet),
        memory_bytes_max: 1 << 24,
        ..RunOptions::default()
    };
    let r = run::<f64>(
        &circuit(2, 2, vec![g("h", &[], &[0]), m(0, 0)]),
        &Reference,
        &o,
    )
    .unwrap();
    assert_eq!(r.method, Method::FinalSampling);
    assert_eq!(r.predicted_error, 0.0);
}
