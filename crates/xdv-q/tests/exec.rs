//! Execution, sampling and Pauli observables, against exact probabilities and closed forms.

use num_complex::Complex;
use std::collections::BTreeMap;
use xdv_q::circuit::{Circuit, Condition, Gate, Op, Register};
use xdv_q::engine::{Engine, Reference};
use xdv_q::exec::{self, final_state, run, ExecError, Method, RunOptions};
use xdv_q::gates::{Matrix, C64};
use xdv_q::pauli::{Observable, PauliErrorKind};
use xdv_q::state::{StateError, StateVec};
use xdv_q::Real;

fn g(name: &str, params: &[f64], qubits: &[u32]) -> Op {
    Op::Gate(Gate::table(name, params, qubits).expect("a table gate"))
}

fn m(qubit: u32, clbit: u32) -> Op {
    Op::Measure { qubit, clbit }
}

fn circuit(n: u32, cregs: &[(&str, u32)], ops: Vec<Op>) -> Circuit {
    let mut off = 0;
    let cregs: Vec<Register> = cregs
        .iter()
        .map(|&(name, size)| {
            let r = Register {
                name: name.into(),
                offset: off,
                size,
            };
            off += size;
            r
        })
        .collect();
    Circuit {
        num_qubits: n,
        num_clbits: off,
        qregs: vec![Register {
            name: "q".into(),
            offset: 0,
            size: n,
        }],
        cregs,
        ops,
        global_phase: 0.0,
    }
}

fn opts(shots: u64, seed: u64) -> RunOptions {
    RunOptions {
        shots,
        seed,
        memory_bytes_max: 1 << 30,
        ..RunOptions::default()
    }
}

/// Pearson's statistic against `probs` (key → p); fails on an impossible outcome.
fn chi_square(
    counts: &BTreeMap<String, u64>,
    probs: &BTreeMap<String, f64>,
    shots: u64,
) -> (f64, usize) {
    for (k, &v) in counts {
        assert!(
            probs.get(k).is_some_and(|&p| p > 0.0),
            "outcome {k} ({v} shots) has probability 0"
        );
    }
    let mut stat = 0.0;
    let mut cells = 0usize;
    for (k, &p) in probs {
        if p <= 0.0 {
            continue;
        }
        cells += 1;
        let e = p * shots as f64;
        let o = *counts.get(k).unwrap_or(&0) as f64;
        stat += (o - e) * (o - e) / e;
    }
    (stat, cells.saturating_sub(1))
}

/// Asserts the counts are consistent with `probs`: statistic below `df + 6·√(2·df)`.
fn assert_distribution(counts: &BTreeMap<String, u64>, probs: &BTreeMap<String, f64>, shots: u64) {
    assert_eq!(counts.values().sum::<u64>(), shots);
    let (stat, df) = chi_square(counts, probs, shots);
    let bound = df as f64 + 6.0 * (2.0 * df as f64).sqrt();
    assert!(
        stat < bound,
        "chi-square {stat} ≥ {bound} (df {df}): {counts:?} vs {probs:?}"
    );
}

/// Exact key probabilities of a product of ry(θ_q) on |0…0⟩, every qubit q measured into bit q.
fn ry_probs(thetas: &[f64]) -> BTreeMap<String, f64> {
    let n = thetas.len();
    (0..1usize << n)
        .map(|i| {
            let p: f64 = thetas
                .iter()
                .enumerate()
                .map(|(q, t)| {
                    let s = (t / 2.0).sin().powi(2);
                    if i >> q & 1 == 1 {
                        s
                    } else {
                        1.0 - s
                    }
                })
                .product();
            let key: String = (0..n)
                .rev()
                .map(|q| if i >> q & 1 == 1 { '1' } else { '0' })
                .collect();
            (key, p)
        })
        .collect()
}

fn ry_circuit(thetas: &[f64]) -> Circuit {
    let n = thetas.len() as u32;
    let mut ops: Vec<Op> = thetas
        .iter()
        .enumerate()
        .map(|(q, &t)| g("ry", &[t], &[q as u32]))
        .collect();
    ops.extend((0..n).map(|q| m(q, q)));
    circuit(n, &[("c", n)], ops)
}

#[test]
fn hadamards_sample_uniformly() {
    let c = circuit(
        3,
        &[("c", 3)],
        vec![
            g("h", &[], &[0]),
            g("h", &[], &[1]),
            g("h", &[], &[2]),
            m(0, 0),
            m(1, 1),
            m(2, 2),
        ],
    );
    let probs = ry_probs(&[std::f64::consts::FRAC_PI_2; 3]);
    for seed in [1, 2, 3] {
        let r = run::<f64>(&c, &Reference, &opts(8000, seed)).unwrap();
        assert_eq!(r.method, Method::FinalSampling);
        assert_eq!(r.trajectories, 0);
        assert_eq!(r.predicted_error, 0.0);
        assert_distribution(&r.counts, &probs, 8000);
    }
}

#[test]
fn ry_angles_sample_their_probabilities_in_both_methods_and_precisions() {
    let cases: &[&[f64]] = &[&[0.3, 1.1, 2.5], &[2.0, 0.0], &[std::f64::consts::PI, 0.7]];
    for thetas in cases {
        let c = ry_circuit(thetas);
        let probs = ry_probs(thetas);
        for force in [false, true] {
            let o = RunOptions {
                force_trajectories: force,
                ..opts(6000, 11)
            };
            let r = run::<f64>(&c, &Reference, &o).unwrap();
            assert_eq!(
                r.method,
                if force {
                    Method::Trajectories
                } else {
                    Method::FinalSampling
                }
            );
            assert_distribution(&r.counts, &probs, 6000);
            let r32 = run::<f32>(&c, &Reference, &o).unwrap();
            assert_distribution(&r32.counts, &probs, 6000);
        }
    }
}

#[test]
fn many_shots_cross_chunks_and_stay_consistent() {
    let thetas = [1.0, 2.0];
    let shots = exec::SAMPLE_CHUNK + 12_345;
    let r = run::<f64>(&ry_circuit(&thetas), &Reference, &opts(shots, 5)).unwrap();
    assert_distribution(&r.counts, &ry_probs(&thetas), shots);
}

#[test]
fn same_seed_same_counts_different_seed_different_counts() {
    let c = ry_circuit(&[0.4, 1.3, 2.2, 0.9]);
    for force in [false, true] {
        let o = |seed| RunOptions {
            force_trajectories: force,
            ..opts(2000, seed)
        };
        let a = run::<f64>(&c, &Reference, &o(9)).unwrap().counts;
        let b = run::<f64>(&c, &Reference, &o(9)).unwrap().counts;
        let d = run::<f64>(&c, &Reference, &o(10)).unwrap().counts;
        assert_eq!(a, b);
        assert_ne!(a, d);
    }
}

/// An engine that applies gates one call at a time and records the batch sizes it was given.
struct Recording(std::sync::Mutex<Vec<usize>>);

impl<T: Real> Engine<T> for Recording {
    fn name(&self) -> &'static str {
        "recording"
    }
    fn apply_gates(&self, state: &mut StateVec<T>, gates: &[Gate]) {
        self.0.lock().unwrap().push(gates.len());
        for gate in gates {
            Reference.apply_gates(state, std::slice::from_ref(gate));
        }
    }
}

#[test]
fn segments_go_to_the_engine_whole_and_results_do_not_depend_on_the_engine() {
    let ops = vec![
        g("h", &[], &[0]),
        g("cx", &[], &[0, 1]),
        Op::Barrier { qubits: vec![0, 1] },
        g("ry", &[0.3], &[1]),
        m(0, 0),
        g("x", &[], &[0]),
        g("h", &[], &[1]),
        g("t", &[], &[1]),
        m(1, 1),
    ];
    let c = circuit(2, &[("c", 2)], ops);
    let rec = Recording(Default::default());
    let o = RunOptions {
        force_trajectories: false,
        ..opts(500, 3)
    };
    let a = run::<f64>(&c, &rec, &o).unwrap();
    assert_eq!(
        a.method,
        Method::Trajectories,
        "a gate follows a measurement"
    );
    let b = run::<f64>(&c, &Reference, &o).unwrap();
    assert_eq!(a.counts, b.counts);
    let calls = rec.0.lock().unwrap().clone();
    // The prefix [h, cx] and [ry] once (cached), then [x, h, t] once per shot.
    assert_eq!(&calls[..2], &[2, 1]);
    assert!(
        calls[2..].iter().all(|&k| k == 3) && calls.len() == 2 + 500,
        "{calls:?}"
    );
}

#[test]
fn keys_put_the_highest_clbit_leftmost_across_registers() {
    // check(circuit, expected counts key) for deterministic circuits.
    let cases: Vec<(Circuit, &str)> = vec![
        (
            circuit(1, &[("c", 3)], vec![g("x", &[], &[0]), m(0, 2)]),
            "100",
        ),
        (
            circuit(1, &[("c", 3)], vec![g("x", &[], &[0]), m(0, 0)]),
            "001",
        ),
        (
            circuit(
                2,
                &[("a", 2), ("b", 1)],
                vec![g("x", &[], &[1]), m(1, 2), m(0, 0)],
            ),
            "100",
        ),
        (
            circuit(
                3,
                &[("a", 1), ("b", 2)],
                vec![
                    g("x", &[], &[0]),
                    g("x", &[], &[2]),
                    m(0, 1),
                    m(2, 0),
                    m(1, 2),
                ],
            ),
            "011",
        ),
        (circuit(2, &[], vec![g("h", &[], &[0])]), ""),
        (circuit(2, &[("c", 2)], vec![g("x", &[], &[0])]), "00"),
    ];
    for (c, key) in cases {
        for force in [false, true] {
            let r = run::<f64>(
                &c,
                &Reference,
                &RunOptions {
                    force_trajectories: force,
                    ..opts(50, 1)
                },
            )
            .unwrap();
            assert_eq!(
                r.counts,
                BTreeMap::from([(key.to_string(), 50)]),
                "{:?}",
                c.ops
            );
        }
    }
}

fn cond(clbits: &[u32], value: u64, then_ops: Vec<Op>) -> Op {
    Op::If {
        cond: Condition {
            clbits: clbits.to_vec(),
            value,
        },
        then_ops,
        else_ops: vec![],
    }
}

#[test]
fn measure_then_conditional_x_always_ends_in_zero() {
    let c = circuit(
        1,
        &[("c", 1), ("d", 1)],
        vec![
            g("h", &[], &[0]),
            m(0, 0),
            cond(&[0], 1, vec![g("x", &[], &[0])]),
            m(0, 1),
        ],
    );
    let r = run::<f64>(&c, &Reference, &opts(4000, 8)).unwrap();
    assert_eq!(r.method, Method::Trajectories);
    assert_eq!(r.trajectories, 4000);
    let probs = BTreeMap::from([("00".to_string(), 0.5), ("01".to_string(), 0.5)]);
    assert_distribution(&r.counts, &probs, 4000);
}

#[test]
fn teleportation_moves_the_state() {
    for theta in [0.0, 0.8, 2.1, std::f64::consts::PI] {
        let ops = vec![
            g("ry", &[theta], &[0]),
            g("h", &[], &[1]),
            g("cx", &[], &[1, 2]),
            g("cx", &[], &[0, 1]),
            g("h", &[], &[0]),
            m(0, 0),
            m(1, 1),
            cond(&[1], 1, vec![g("x", &[], &[2])]),
            cond(&[0], 1, vec![g("z", &[], &[2])]),
            m(2, 2),
        ];
        let c = circuit(3, &[("c", 3)], ops);
        let shots = 4000;
        let r = run::<f64>(&c, &Reference, &opts(shots, 21)).unwrap();
        let ones: u64 = r
            .counts
            .iter()
            .filter(|(k, _)| k.starts_with('1'))
            .map(|(_, v)| v)
            .sum();
        let p = (theta / 2.0).sin().powi(2);
        let sigma = (shots as f64 * p * (1.0 - p)).sqrt();
        assert!(
            (ones as f64 - p * shots as f64).abs() <= 5.0 * sigma + 1e-9,
            "θ = {theta}: {ones} ones of {shots}, expected {}",
            p * shots as f64
        );
        // The first two bits are uniform whatever θ.
        let low: BTreeMap<String, u64> =
            r.counts.iter().fold(BTreeMap::new(), |mut acc, (k, v)| {
                *acc.entry(k[1..].to_string()).or_insert(0) += v;
                acc
            });
        let uni = (0..4).map(|i| (format!("{:02b}", i), 0.25)).collect();
        assert_distribution(&low, &uni, shots);
    }
}

#[test]
fn reset_returns_to_zero() {
    let cases = vec![
        circuit(
            1,
            &[("c", 1)],
            vec![g("x", &[], &[0]), Op::Reset { qubit: 0 }, m(0, 0)],
        ),
        circuit(
            1,
            &[("c", 2)],
            vec![g("h", &[], &[0]), m(0, 1), Op::Reset { qubit: 0 }, m(0, 0)],
        ),
        circuit(
            2,
            &[("c", 2)],
            vec![
                g("h", &[], &[0]),
                g("cx", &[], &[0, 1]),
                Op::Reset { qubit: 0 },
                m(0, 0),
                m(1, 1),
            ],
        ),
    ];
    for c in cases {
        let r = run::<f64>(&c, &Reference, &opts(400, 4)).unwrap();
        assert_eq!(r.method, Method::Trajectories);
        assert!(r.counts.keys().all(|k| k.ends_with('0')), "{:?}", r.counts);
        assert!(r.counts.len() <= 2);
    }
    // A reset before a qubit is used is a no-op: final sampling still applies.
    let c = circuit(
        1,
        &[("c", 1)],
        vec![Op::Reset { qubit: 0 }, g("x", &[], &[0]), m(0, 0)],
    );
    let r = run::<f64>(&c, &Reference, &opts(10, 4)).unwrap();
    assert_eq!(r.method, Method::FinalSampling);
    assert_eq!(r.counts, BTreeMap::from([("1".to_string(), 10)]));
}

#[test]
fn final_state_drops_terminal_measurements_and_refuses_mid_circuit_ones() {
    let bell = circuit(
        2,
        &[("c", 2)],
        vec![g("h", &[], &[0]), g("cx", &[], &[0, 1]), m(0, 0), m(1, 1)],
    );
    let (s, dropped) = final_state::<f64>(&bell, &Reference, 1 << 20).unwrap();
    assert_eq!(dropped, 2);
    let h = std::f64::consts::FRAC_1_SQRT_2;
    let want = StateVec::from_amplitudes(vec![
        Complex::new(h, 0.0),
        Complex::new(0.0, 0.0),
        Complex::new(0.0, 0.0),
        Complex::new(h, 0.0),
    ]);
    assert!((s.fidelity(&want) - 1.0).abs() < 1e-12);

    let cases: Vec<(Circuit, &str, &str)> = vec![
        (
            circuit(
                1,
                &[("c", 1)],
                vec![g("h", &[], &[0]), m(0, 0), g("h", &[], &[0])],
            ),
            "measure q[0] -> c[0]` (op 1)",
            "h q[0]` (op 2)",
        ),
        (
            circuit(
                1,
                &[("c", 1)],
                vec![g("h", &[], &[0]), Op::Reset { qubit: 0 }],
            ),
            "reset q[0]",
            "op 1",
        ),
        (
            circuit(
                1,
                &[("c", 1)],
                vec![m(0, 0), cond(&[0], 1, vec![g("x", &[], &[0])])],
            ),
            "if (c == 1)",
            "op 1",
        ),
    ];
    for (c, op, pos) in cases {
        let e = final_state::<f64>(&c, &Reference, 1 << 20).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, ExecError::NotUnitary { .. }), "{msg}");
        assert!(
            msg.contains(op) && msg.contains(pos) && msg.contains("xdv q run"),
            "{msg}"
        );
    }
}

#[test]
fn final_state_applies_the_global_phase() {
    let mut c = circuit(1, &[], vec![g("x", &[], &[0])]);
    c.global_phase = 0.7;
    let (s, _) = final_state::<f64>(&c, &Reference, 1 << 20).unwrap();
    let a = s.amplitudes()[1];
    assert!((a.re - 0.7f64.cos()).abs() < 1e-12 && (a.im - 0.7f64.sin()).abs() < 1e-12);
}

#[test]
fn limits_are_refused_before_work() {
    let c = ry_circuit(&[0.1]);
    assert_eq!(
        run::<f64>(&c, &Reference, &opts(0, 0)).unwrap_err(),
        ExecError::NoShots
    );
    let o = RunOptions {
        shots_max: 100,
        ..opts(101, 0)
    };
    assert!(matches!(
        run::<f64>(&c, &Reference, &o),
        Err(ExecError::TooManyShots {
            shots: 101,
            max: 100
        })
    ));
    let big = circuit(34, &[("c", 1)], vec![m(0, 0)]);
    match run::<f64>(&big, &Reference, &opts(1, 0)) {
        Err(ExecError::State(StateError::TooLarge { qubits: 34, .. })) => {}
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        final_state::<f32>(&big, &Reference, 1 << 30),
        Err(ExecError::State(_))
    ));
    let o = RunOptions {
        trajectory_work_max: 1000,
        force_trajectories: true,
        ..opts(1000, 0)
    };
    assert!(matches!(
        run::<f64>(&c, &Reference, &o),
        Err(ExecError::TooMuchWork { .. })
    ));
}

#[test]
fn malformed_circuits_are_errors_not_panics() {
    let mut bad_gate = circuit(1, &[("c", 1)], vec![g("x", &[], &[0])]);
    if let Op::Gate(gt) = &mut bad_gate.ops[0] {
        gt.targets = vec![3];
    }
    let mut bad_matrix = circuit(2, &[("c", 1)], vec![g("x", &[], &[0])]);
    if let Op::Gate(gt) = &mut bad_matrix.ops[0] {
        gt.targets = vec![0, 1];
    }
    let mut nan = circuit(1, &[("c", 1)], vec![g("rz", &[f64::NAN], &[0])]);
    nan.ops.push(m(0, 0));
    let cases = vec![
        bad_gate,
        bad_matrix,
        nan,
        circuit(1, &[("c", 1)], vec![m(0, 4)]),
        circuit(1, &[("c", 1)], vec![cond(&[7], 1, vec![])]),
        circuit(1, &[("c", 1)], vec![Op::Barrier { qubits: vec![2] }]),
    ];
    for c in cases {
        assert!(
            matches!(
                run::<f64>(&c, &Reference, &opts(5, 0)),
                Err(ExecError::InvalidCircuit { .. })
            ),
            "{:?}",
            c.ops
        );
        assert!(matches!(
            final_state::<f64>(&c, &Reference, 1 << 20),
            Err(ExecError::InvalidCircuit { .. })
        ));
    }
}

// ---------------------------------------------------------------------------------------------
// Pauli observables.

#[test]
fn observables_parse_in_every_accepted_form() {
    let cases: &[(&str, &[(f64, &str)])] = &[
        (
            "0.5*ZZI + XIX - 1.2*III",
            &[(0.5, "ZZI"), (1.0, "XIX"), (-1.2, "III")],
        ),
        ("0.5 ZZI", &[(0.5, "ZZI")]),
        ("-ZZ", &[(-1.0, "ZZ")]),
        ("+ 1e-3*XY", &[(1e-3, "XY")]),
        (
            "  2 *  YY-.5ZX  +3E+1 IZ ",
            &[(2.0, "YY"), (-0.5, "ZX"), (30.0, "IZ")],
        ),
    ];
    for (text, want) in cases {
        let o = Observable::parse(text).unwrap();
        let got: Vec<(f64, &str)> = o
            .terms
            .iter()
            .map(|t| (t.coeff, t.label.as_str()))
            .collect();
        assert_eq!(&got, want, "{text}");
        assert_eq!(o.qubits as usize, want[0].1.len());
    }
    // Leftmost letter on the highest qubit.
    let t = &Observable::parse("XIZ").unwrap().terms[0];
    assert_eq!((t.x_mask, t.z_mask), (0b100, 0b001));
}

#[test]
fn observable_errors_have_a_kind_and_a_column() {
    let cases: &[(&str, PauliErrorKind, usize)] = &[
        ("", PauliErrorKind::Empty, 1),
        ("   ", PauliErrorKind::Empty, 1),
        ("0.5*", PauliErrorKind::ExpectedTerm, 5),
        ("zz", PauliErrorKind::LowerCase, 1),
        ("ZZ + ZZZ", PauliErrorKind::LengthMismatch, 6),
        ("ZA", PauliErrorKind::BadLetter, 2),
        ("ZZ ZZ", PauliErrorKind::ExpectedOperator, 4),
        ("1e*ZZ", PauliErrorKind::BadNumber, 1),
        ("ZZ + *X", PauliErrorKind::ExpectedTerm, 6),
    ];
    for &(text, kind, column) in cases {
        let e = Observable::parse(text).unwrap_err();
        assert_eq!((e.kind, e.column), (kind, column), "{text:?}: {e}");
        assert!(!e.hint.is_empty());
    }
    let e = Observable::parse("ZZ")
        .unwrap()
        .check_qubits(3)
        .unwrap_err();
    assert_eq!(e.kind, PauliErrorKind::QubitCount);
}

fn state_of(c: &Circuit) -> StateVec<f64> {
    final_state::<f64>(c, &Reference, 1 << 24).unwrap().0
}

#[test]
fn expectation_matches_closed_forms() {
    let bell = circuit(2, &[], vec![g("h", &[], &[0]), g("cx", &[], &[0, 1])]);
    let s = state_of(&bell);
    let ev = |o: &str, s: &StateVec<f64>| Observable::parse(o).unwrap().expectation(s).unwrap();
    for (o, want) in [
        ("ZZ", 1.0),
        ("XX", 1.0),
        ("YY", -1.0),
        ("ZI", 0.0),
        ("IZ", 0.0),
        ("XY", 0.0),
        ("0.5*ZZ - 2*XX + 3*II", 0.5 - 2.0 + 3.0),
    ] {
        assert!(
            (ev(o, &s) - want).abs() < 1e-12,
            "{o}: {} vs {want}",
            ev(o, &s)
        );
    }
    for theta in [0.0, 0.4, 1.9, 3.0, -2.2] {
        let s = state_of(&circuit(1, &[], vec![g("ry", &[theta], &[0])]));
        assert!((ev("Z", &s) - theta.cos()).abs() < 1e-12);
        assert!((ev("X", &s) - theta.sin()).abs() < 1e-12);
        let s = state_of(&circuit(1, &[], vec![g("rx", &[theta], &[0])]));
        assert!((ev("Y", &s) + theta.sin()).abs() < 1e-12);
        // ry on qubit 1 of two: only the leftmost letter sees it.
        let s = state_of(&circuit(2, &[], vec![g("ry", &[theta], &[1])]));
        assert!((ev("ZI", &s) - theta.cos()).abs() < 1e-12);
        assert!((ev("IZ", &s) - 1.0).abs() < 1e-12);
    }
}

fn pauli_matrix(label: &str) -> Matrix {
    let one = C64::new(1.0, 0.0);
    let z = C64::new(0.0, 0.0);
    let i = C64::new(0.0, 1.0);
    let letter = |c: char| match c {
        'X' => [[z, one], [one, z]],
        'Y' => [[z, -i], [i, z]],
        'Z' => [[one, z], [z, -one]],
        _ => [[one, z], [z, one]],
    };
    // Kronecker product, leftmost factor most significant.
    let mut m = Matrix::identity(1);
    for c in label.chars() {
        let l = letter(c);
        let d = m.dim * 2;
        let mut data = vec![z; d * d];
        for r in 0..m.dim {
            for cc in 0..m.dim {
                for a in 0..2 {
                    for b in 0..2 {
                        data[(2 * r + a) * d + 2 * cc + b] = m.at(r, cc) * l[a][b];
                    }
                }
            }
        }
        m = Matrix { dim: d, data };
    }
    m
}

#[test]
fn expectation_matches_dense_matrices_on_a_random_state() {
    let ops = vec![
        g("u", &[0.3, 1.2, -0.7], &[0]),
        g("u", &[2.1, -0.4, 0.9], &[1]),
        g("u", &[1.3, 0.5, 2.5], &[2]),
        g("cx", &[], &[0, 2]),
        g("ry", &[0.8], &[1]),
        g("cz", &[], &[1, 2]),
        g("rx", &[1.7], &[0]),
    ];
    let s = state_of(&circuit(3, &[], ops));
    let a = s.amplitudes();
    for label in ["XYZ", "YYI", "ZXY", "IIY", "XXX", "YIX", "ZZZ", "IYZ"] {
        let p = pauli_matrix(label);
        let mut acc = C64::new(0.0, 0.0);
        for r in 0..8 {
            for c in 0..8 {
                acc += a[r].conj() * p.at(r, c) * a[c];
            }
        }
        let got = Observable::parse(label).unwrap().expectation(&s).unwrap();
        assert!(acc.im.abs() < 1e-12);
        assert!((got - acc.re).abs() < 1e-12, "{label}: {got} vs {}", acc.re);
    }
}

#[test]
fn estimates_fall_within_five_sigma() {
    let ops = vec![
        g("ry", &[0.9], &[0]),
        g("rx", &[0.4], &[1]),
        g("cx", &[], &[0, 1]),
        g("ry", &[-1.3], &[2]),
    ];
    let c = circuit(3, &[], ops);
    let s = state_of(&c);
    for (text, groups) in [
        ("Z", 1),
        ("0.7*ZZI - 0.2*XIX + 1.5*III + YZI", 3),
        ("ZZI + IZZ - 0.3*XIX + XXX", 2),
        ("XII + IXI + IIX + ZZZ", 2),
    ] {
        let text = if text == "Z" { "IIZ" } else { text };
        let o = Observable::parse(text).unwrap();
        let exact = o.expectation(&s).unwrap();
        let e = o
            .estimate::<f64>(&c, &Reference, 20_000, 3, 1 << 24)
            .unwrap();
        assert_eq!(e.groups, groups, "{text}");
        assert!(
            (e.value - exact).abs() < 5.0 * e.std_error + 1e-12,
            "{text}: {} ± {} vs {exact}",
            e.value,
            e.std_error
        );
        let again = o
            .estimate::<f64>(&c, &Reference, 20_000, 3, 1 << 24)
            .unwrap();
        assert_eq!(e, again);
    }
    // A single term: the standard error is √((1 − ⟨P⟩²)/shots).
    let o = Observable::parse("IIZ").unwrap();
    let p = o.expectation(&s).unwrap();
    let e = o
        .estimate::<f64>(&c, &Reference, 20_000, 4, 1 << 24)
        .unwrap();
    let theory = ((1.0 - p * p) / 20_000.0).sqrt();
    assert!(
        (e.std_error / theory - 1.0).abs() < 0.05,
        "{} vs {theory}",
        e.std_error
    );
    assert!(matches!(
        Observable::parse("ZZ")
            .unwrap()
            .estimate::<f64>(&c, &Reference, 10, 0, 1 << 24),
        Err(ExecError::Observable(_))
    ));
}
