//! The fast engine against the reference engine: random circuits over the whole gate table (with
//! extra controls, negated controls and random dense unitaries), random initial states, both
//! precisions, several thread counts, fusion on and off, and the fusion plan on its own.

use num_complex::Complex;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use xdv_q::engine::{
    block_qubits, plan, simd_detected, FastError, FastOptions, FastStats, FusedGate, SimdLevel,
};
use xdv_q::gates::{self, GateDef, Matrix, C64};
use xdv_q::{Engine, Fast, Gate, Real, Reference, StateVec};

const F64_TOL: f64 = 1e-10;
const F32_TOL: f64 = 1e-4;

fn uniform(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64
}

fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
    (rng.next_u64() % n as u64) as usize
}

/// `k` distinct qubits of `n`, in random order.
fn distinct(rng: &mut ChaCha8Rng, n: u32, k: usize) -> Vec<u32> {
    let mut pool: Vec<u32> = (0..n).collect();
    for i in 0..k {
        let j = i + below(rng, pool.len() - i);
        pool.swap(i, j);
    }
    pool.truncate(k);
    pool
}

/// A random unitary of dimension `dim` (Gram–Schmidt on a random complex matrix).
fn random_unitary(rng: &mut ChaCha8Rng, dim: usize) -> Matrix {
    let mut cols: Vec<Vec<C64>> = Vec::new();
    while cols.len() < dim {
        let mut v: Vec<C64> = (0..dim)
            .map(|_| C64::new(uniform(rng) * 2.0 - 1.0, uniform(rng) * 2.0 - 1.0))
            .collect();
        for u in &cols {
            let dot: C64 = u.iter().zip(&v).map(|(a, b)| a.conj() * b).sum();
            for (x, a) in v.iter_mut().zip(u) {
                *x -= dot * a;
            }
        }
        let norm = v.iter().map(|x| x.norm_sqr()).sum::<f64>().sqrt();
        if norm < 1e-6 {
            continue;
        }
        cols.push(v.into_iter().map(|x| x / norm).collect());
    }
    let mut m = Matrix::identity(dim);
    for (c, col) in cols.iter().enumerate() {
        for (r, &x) in col.iter().enumerate() {
            m.data[r * dim + c] = x;
        }
    }
    m
}

/// Table gate `def` with `params` on `args` (controls first, as the table orders them), plus
/// `extra` controls with the values in the low bits of `extra_state`.
fn table_gate(
    def: &GateDef,
    params: &[f64],
    args: &[u32],
    extra: &[u32],
    extra_state: u64,
) -> Gate {
    let nc = def.controls;
    let mut controls = args[..nc].to_vec();
    controls.extend_from_slice(extra);
    let ones = (1u64 << nc) - 1;
    Gate {
        name: def.name.into(),
        params: params.to_vec(),
        targets: args[nc..].to_vec(),
        controls,
        ctrl_state: ones | (extra_state << nc),
        matrix: (def.target_matrix)(params),
    }
}

/// A random gate: any table entry (random parameters and qubits, random extra controls with
/// random values), or a random dense 2- or 3-qubit unitary.
fn random_gate(rng: &mut ChaCha8Rng, n: u32) -> Gate {
    let table = gates::table();
    let pick = below(rng, table.len() + 2);
    if pick >= table.len() {
        let k = (pick - table.len() + 2).min(n as usize);
        let targets = distinct(rng, n, k);
        return Gate {
            name: "unitary".into(),
            params: Vec::new(),
            targets,
            controls: Vec::new(),
            ctrl_state: 0,
            matrix: random_unitary(rng, 1 << k),
        };
    }
    let def = &table[pick];
    if def.qubits > n as usize {
        return random_gate(rng, n);
    }
    let params: Vec<f64> = (0..def.params)
        .map(|_| (uniform(rng) - 0.5) * 4.0 * std::f64::consts::PI)
        .collect();
    let spare = n as usize - def.qubits;
    let extra_n = if spare > 0 && below(rng, 3) == 0 {
        1 + below(rng, spare.min(3))
    } else {
        0
    };
    let qs = distinct(rng, n, def.qubits + extra_n);
    let extra_state = rng.next_u64() & ((1 << extra_n) - 1);
    table_gate(
        def,
        &params,
        &qs[..def.qubits],
        &qs[def.qubits..],
        extra_state,
    )
}

fn random_circuit(rng: &mut ChaCha8Rng, n: u32, len: usize) -> Vec<Gate> {
    (0..len).map(|_| random_gate(rng, n)).collect()
}

fn random_state<T: Real>(rng: &mut ChaCha8Rng, n: u32) -> StateVec<T> {
    let v: Vec<C64> = (0..1usize << n)
        .map(|_| C64::new(uniform(rng) - 0.5, uniform(rng) - 0.5))
        .collect();
    let norm = v.iter().map(|x| x.norm_sqr()).sum::<f64>().sqrt();
    StateVec::from_amplitudes(v.into_iter().map(|x| T::c(x / norm)).collect())
}

fn zero_state<T: Real>(n: u32) -> StateVec<T> {
    StateVec::zero(n, u64::MAX).expect("small state")
}

/// Runs `gates` from `init` under the reference and under `fast`; returns the fidelity.
fn fidelity_vs_reference<T: Real>(fast: &Fast, init: &StateVec<T>, gates: &[Gate]) -> f64 {
    let mut want = init.clone();
    Reference.apply_gates(&mut want, gates);
    let mut got = init.clone();
    fast.apply_with_stats(&mut got, gates).expect("valid gates");
    got.fidelity(&want)
}

/// One random circuit per case, `f` building the initial state; checks fidelity ≥ `1 − tol`.
fn check_random<T: Real>(cases: &[(u32, usize, u64)], tol: f64, fast: &Fast) {
    for &(n, len, seed) in cases {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let gates = random_circuit(&mut rng, n, len);
        for init in [zero_state::<T>(n), random_state::<T>(&mut rng, n)] {
            let f = fidelity_vs_reference(fast, &init, &gates);
            assert!(
                f >= 1.0 - tol,
                "{}: n = {n}, {len} gates, seed {seed}, options {:?}: fidelity {f}",
                T::NAME,
                fast.options()
            );
        }
    }
}

fn small_cases() -> Vec<(u32, usize, u64)> {
    (1..=12u32)
        .flat_map(|n| (0..4u64).map(move |s| (n, 30 + 5 * n as usize, 1000 * n as u64 + s)))
        .collect()
}

fn option_sets() -> Vec<FastOptions> {
    let base = FastOptions::default();
    vec![
        base.clone(),
        FastOptions {
            fusion: false,
            ..base.clone()
        },
        FastOptions {
            fused_qubits_max: 1,
            diagonal_qubits_max: 1,
            ..base.clone()
        },
        FastOptions {
            fused_qubits_max: 2,
            ..base.clone()
        },
        FastOptions {
            fused_qubits_max: 5,
            diagonal_qubits_max: 16,
            ..base
        },
    ]
}

#[test]
fn random_circuits_match_the_reference_in_f64() {
    for opts in option_sets() {
        check_random::<f64>(&small_cases(), F64_TOL, &Fast::with_options(2, opts));
    }
}

#[test]
fn random_circuits_match_the_reference_in_f32() {
    for opts in option_sets() {
        check_random::<f32>(&small_cases(), F32_TOL, &Fast::with_options(2, opts));
    }
}

#[test]
fn large_random_circuits_match_the_reference() {
    // Above 14 qubits the state has several chunks and high targets run as wide passes.
    let cases = [(15, 40, 15), (16, 40, 16), (18, 30, 18)];
    check_random::<f64>(&cases, F64_TOL, &Fast::new(2));
    check_random::<f32>(&cases[..2], F32_TOL, &Fast::new(3));
    let unfused = FastOptions {
        fusion: false,
        ..FastOptions::default()
    };
    check_random::<f64>(&cases[..2], F64_TOL, &Fast::with_options(2, unfused));
}

/// Every table gate alone on a 15-qubit state (chunks of 2^11), its qubits placed low, high and
/// straddling the chunk boundary, with extra controls low and high of both values.
#[test]
fn every_table_gate_matches_the_reference_in_every_placement() {
    let n = 15;
    let placements: [&[u32]; 4] = [
        &[0, 1, 2, 3, 4],
        &[14, 13, 12, 11, 10],
        &[3, 12, 0, 14, 6],
        &[11, 1, 13, 2, 9],
    ];
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let init = random_state::<f64>(&mut rng, n);
    let init32 = random_state::<f32>(&mut rng, n);
    for fusion in [true, false] {
        let fast = Fast::with_options(
            2,
            FastOptions {
                fusion,
                ..FastOptions::default()
            },
        );
        for def in gates::table() {
            let params = gates::sample_params(def.params, 3);
            for args in placements {
                let used = &args[..def.qubits];
                let free: Vec<u32> = (0..n).filter(|q| !used.contains(q)).collect();
                // No extra control; one low and one high (either value); two low.
                let extras: [(Vec<u32>, u64); 4] = [
                    (vec![], 0),
                    (vec![free[1], free[free.len() - 1]], 0b01),
                    (vec![free[free.len() - 2], free[0]], 0b10),
                    (vec![free[0], free[2]], 0b11),
                ];
                for (extra, state) in &extras {
                    let g = table_gate(def, &params, used, extra, *state);
                    let gates = [g];
                    let f = fidelity_vs_reference(&fast, &init, &gates);
                    assert!(
                        f >= 1.0 - F64_TOL,
                        "{}: {:?}: fidelity {f}",
                        def.name,
                        gates[0]
                    );
                    let f = fidelity_vs_reference(&fast, &init32, &gates);
                    assert!(
                        f >= 1.0 - F32_TOL,
                        "{} f32: {:?}: fidelity {f}",
                        def.name,
                        gates[0]
                    );
                }
            }
        }
    }
}

fn bits<T: Real>(s: &StateVec<T>) -> Vec<(u64, u64)> {
    s.amplitudes()
        .iter()
        .map(|a| (a.re.to_f64().to_bits(), a.im.to_f64().to_bits()))
        .collect()
}

fn check_thread_invariance<T: Real>(n: u32, len: usize, seed: u64) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let gates = random_circuit(&mut rng, n, len);
    let init = random_state::<T>(&mut rng, n);
    let run = |threads: usize| {
        let mut s = init.clone();
        Fast::new(threads)
            .apply_with_stats(&mut s, &gates)
            .expect("valid gates");
        bits(&s)
    };
    let one = run(1);
    for threads in [2, 3] {
        assert!(
            run(threads) == one,
            "{}: n = {n}, seed {seed}: {threads} threads differ from 1",
            T::NAME
        );
    }
}

#[test]
fn thread_counts_give_bit_identical_states() {
    check_thread_invariance::<f64>(16, 60, 21);
    check_thread_invariance::<f32>(16, 60, 22);
    check_thread_invariance::<f64>(12, 60, 23);
}

/// `gates` applied to a copy of `init` by the fast engine on 2 threads with `opts`, and its
/// statistics.
fn run_on_two_threads(
    init: &StateVec<f64>,
    gates: &[Gate],
    opts: FastOptions,
) -> (StateVec<f64>, FastStats) {
    let mut s = init.clone();
    let stats = Fast::with_options(2, opts)
        .apply_with_stats(&mut s, gates)
        .expect("valid gates");
    (s, stats)
}

#[test]
fn fusion_on_and_off_give_the_same_state() {
    for (n, seed) in [(6, 31), (10, 32), (15, 33)] {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let gates = random_circuit(&mut rng, n, 80);
        let init = random_state::<f64>(&mut rng, n);
        let run = |fusion: bool| {
            let opts = FastOptions {
                fusion,
                ..FastOptions::default()
            };
            run_on_two_threads(&init, &gates, opts)
        };
        let (on, on_stats) = run(true);
        let (off, off_stats) = run(false);
        let f = on.fidelity(&off);
        assert!(f >= 1.0 - F64_TOL, "n = {n}, seed {seed}: fidelity {f}");
        assert_eq!(off_stats.gates_out, gates.len());
        assert!(on_stats.gates_out < off_stats.gates_out, "{on_stats:?}");
        assert!(on_stats.passes <= on_stats.gates_out);
    }
}

// ---- The fusion plan on its own ----

fn g(name: &str, params: &[f64], args: &[u32]) -> Gate {
    let def = gates::lookup(name).expect("table gate");
    table_gate(def, params, args, &[], 0)
}

/// The plan, checked against the original under the reference engine on a random state.
fn checked_plan(gates: &[Gate], n: u32, opts: &FastOptions) -> Vec<FusedGate> {
    let p = plan(gates, n, opts).expect("valid gates");
    let mut rng = ChaCha8Rng::seed_from_u64(99);
    let init = random_state::<f64>(&mut rng, n);
    let mut want = init.clone();
    Reference.apply_gates(&mut want, gates);
    let mut got = init;
    let fused: Vec<Gate> = p.iter().map(FusedGate::to_gate).collect();
    Reference.apply_gates(&mut got, &fused);
    let f = got.fidelity(&want);
    assert!(f >= 1.0 - F64_TOL, "plan changes the state: fidelity {f}");
    assert_eq!(
        p,
        plan(gates, n, opts).expect("valid gates"),
        "plan is deterministic"
    );
    let sources: usize = p.iter().map(|o| o.sources).sum();
    assert!(sources <= gates.len());
    p
}

fn qft(n: u32) -> Vec<Gate> {
    let mut out = Vec::new();
    for j in 0..n {
        out.push(g("h", &[], &[j]));
        for k in j + 1..n {
            let angle = std::f64::consts::PI / f64::from(1u32 << (k - j));
            out.push(g("cp", &[angle], &[k, j]));
        }
    }
    out
}

#[test]
fn ten_single_qubit_gates_on_one_qubit_fuse_to_one() {
    let names = ["h", "t", "sx", "rx", "y", "s", "ry", "h", "rz", "u3"];
    let gates: Vec<Gate> = names
        .iter()
        .map(|&name| {
            let def = gates::lookup(name).expect("table gate");
            g(name, &gates::sample_params(def.params, 1), &[2])
        })
        .collect();
    let p = checked_plan(&gates, 4, &FastOptions::default());
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].sources, 10);
    assert_eq!(p[0].targets, vec![2]);
}

#[test]
fn qft_phase_runs_fuse_into_few_diagonal_passes() {
    let n = 10;
    let gates = qft(n);
    let opts = FastOptions::default();
    let p = checked_plan(&gates, n, &opts);
    // Each run of cp phases after a Hadamard is one diagonal: n Hadamards, n − 1 diagonals.
    let diagonals: Vec<usize> = p
        .iter()
        .filter(|o| o.is_diagonal())
        .map(|o| o.sources)
        .collect();
    let want: Vec<usize> = (1..n as usize).rev().collect();
    assert_eq!(diagonals, want, "cp gates per diagonal");
    assert_eq!(p.len(), 2 * n as usize - 1);
    // Only the cp phases: one diagonal.
    let phases: Vec<Gate> = gates.into_iter().filter(|x| x.name == "cp").collect();
    let p = checked_plan(&phases, n, &opts);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].is_diagonal());
    assert_eq!(p[0].sources, phases.len());
}

#[test]
fn single_qubit_gates_are_absorbed_into_a_two_qubit_gate() {
    let mut rng = ChaCha8Rng::seed_from_u64(5);
    let u = Gate {
        name: "unitary".into(),
        params: Vec::new(),
        targets: vec![3, 1],
        controls: Vec::new(),
        ctrl_state: 0,
        matrix: random_unitary(&mut rng, 4),
    };
    let gates = vec![
        g("h", &[], &[1]),
        u,
        g("t", &[], &[3]),
        g("x", &[], &[0]),
        g("sx", &[], &[1]),
    ];
    let p = checked_plan(&gates, 4, &FastOptions::default());
    let sources: Vec<(Vec<u32>, usize)> =
        p.iter().map(|o| (o.targets.clone(), o.sources)).collect();
    assert_eq!(sources, vec![(vec![1, 3], 4), (vec![0], 1)]);
}

#[test]
fn fused_operations_respect_the_qubit_limits() {
    let mut rng = ChaCha8Rng::seed_from_u64(41);
    let gates = random_circuit(&mut rng, 8, 120);
    for opts in option_sets() {
        let p = checked_plan(&gates, 8, &opts);
        for o in &p {
            if o.sources > 1 {
                let limit = if o.is_diagonal() {
                    opts.diagonal_qubits_max
                } else {
                    opts.fused_qubits_max
                };
                assert!(o.qubit_count() as u32 <= limit, "{opts:?}: {o:?}");
            }
        }
        if !opts.fusion {
            assert_eq!(p.len(), gates.len());
        }
    }
}

#[test]
fn non_commuting_gates_keep_their_order() {
    // With single-qubit fusion only, h·cx·h cannot merge, and no gate may pass another.
    let gates = vec![
        g("h", &[], &[0]),
        g("cx", &[], &[0, 1]),
        g("h", &[], &[1]),
        g("h", &[], &[0]),
    ];
    let opts = FastOptions {
        fused_qubits_max: 1,
        diagonal_qubits_max: 1,
        ..FastOptions::default()
    };
    let p = checked_plan(&gates, 2, &opts);
    let shapes: Vec<(Vec<u32>, Vec<u32>)> = p
        .iter()
        .map(|o| (o.targets.clone(), o.controls.clone()))
        .collect();
    assert_eq!(
        shapes,
        vec![
            (vec![0], vec![]),
            (vec![1], vec![0]),
            (vec![1], vec![]),
            (vec![0], vec![])
        ]
    );
}

#[test]
fn disjoint_gates_are_passed_to_reach_their_partner() {
    // h(0), x(1), t(0): t commutes past x(1) and merges into h(0).
    let gates = vec![g("h", &[], &[0]), g("x", &[], &[1]), g("t", &[], &[0])];
    let opts = FastOptions {
        fused_qubits_max: 1,
        ..FastOptions::default()
    };
    let p = checked_plan(&gates, 2, &opts);
    assert_eq!(p.len(), 2);
    assert_eq!((p[0].targets.clone(), p[0].sources), (vec![0], 2));
}

#[test]
fn identities_vanish_and_global_phases_fold() {
    let gates = vec![
        g("id", &[], &[0]),
        g("h", &[], &[1]),
        g("gphase", &[0.7], &[]),
        g("u0", &[1.0], &[2]),
        g("U", &[0.0, 0.0, 0.0], &[0]),
    ];
    let p = checked_plan(&gates, 3, &FastOptions::default());
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].sources, 2);
    // A lone global phase is still applied.
    let p = checked_plan(&[g("gphase", &[0.7], &[])], 2, &FastOptions::default());
    assert_eq!(p.len(), 1);
}

#[test]
fn stats_count_gates_and_passes() {
    let n = 10;
    let gates = qft(n);
    let mut s = zero_state::<f64>(n);
    let stats = Fast::new(1)
        .apply_with_stats(&mut s, &gates)
        .expect("valid");
    assert_eq!(stats.gates_in, gates.len());
    let p = plan(&gates, n, &FastOptions::default()).expect("valid");
    assert_eq!(stats.gates_out, p.len());
    // Ten qubits fit in one chunk: everything is one blocked pass.
    assert_eq!(stats.passes, 1);
    // The QFT of |0⟩ is the uniform superposition.
    let want = 1.0 / f64::from(1u32 << n).sqrt();
    for a in s.amplitudes() {
        assert!((a - Complex::new(want, 0.0)).norm() < 1e-12, "{a}");
    }
}

#[test]
fn gates_that_do_not_fit_are_refused_before_the_state_changes() {
    let h = g("h", &[], &[0]);
    let mut bad_dim = g("cx", &[], &[0, 1]);
    bad_dim.matrix = Matrix::identity(4);
    let cases: Vec<(Vec<Gate>, FastError)> = vec![
        (
            vec![h.clone(), g("x", &[], &[3])],
            FastError::QubitOutOfRange {
                index: 1,
                name: "x".into(),
                qubit: 3,
                qubits: 3,
            },
        ),
        (
            vec![g("cx", &[], &[1, 1])],
            FastError::DuplicateQubit {
                index: 0,
                name: "cx".into(),
                qubit: 1,
            },
        ),
        (
            vec![h, bad_dim],
            FastError::MatrixShape {
                index: 1,
                name: "cx".into(),
                targets: 1,
                dim: 4,
                entries: 16,
            },
        ),
    ];
    for (gates, want) in cases {
        let mut s = zero_state::<f64>(3);
        let before = s.clone();
        let got = Fast::new(1).apply_with_stats(&mut s, &gates);
        assert_eq!(got, Err(want));
        assert_eq!(s, before);
    }
}

// ---- Cache blocking, qubit remapping and the SIMD levels ----

/// Brickwork: a rotation on every qubit, then CX on neighbours, `layers` times.
fn brickwork(n: u32, layers: u32, seed: u64) -> Vec<Gate> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    for l in 0..layers {
        for q in 0..n {
            let name = ["rx", "ry", "rz"][below(&mut rng, 3)];
            out.push(g(name, &[uniform(&mut rng) * 6.0], &[q]));
        }
        for i in (l % 2..n.saturating_sub(1)).step_by(2) {
            out.push(g("cx", &[], &[i, i + 1]));
        }
    }
    out
}

/// The QFT with the final qubit reversal as SWAPs (they become a relabelling).
fn qft_with_swaps(n: u32) -> Vec<Gate> {
    let mut out = qft(n);
    for i in 0..n / 2 {
        out.push(g("swap", &[], &[i, n - 1 - i]));
    }
    out
}

fn levels() -> Vec<SimdLevel> {
    vec![SimdLevel::Avx512, SimdLevel::Avx2, SimdLevel::Portable]
}

/// `gates` from a random state at every SIMD level (capped by the CPU) on 1 and 2 threads: the
/// two thread counts bit-identical, each level within `tol` of the reference.
fn check_levels<T: Real>(n: u32, gates: &[Gate], tol: f64, seed: u64) {
    check_levels_with::<T>(n, gates, tol, seed, &FastOptions::default());
}

/// [`check_levels`] from `base` options (the SIMD level and tile size varied).
fn check_levels_with<T: Real>(n: u32, gates: &[Gate], tol: f64, seed: u64, base: &FastOptions) {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let init = random_state::<T>(&mut rng, n);
    let mut want = init.clone();
    Reference.apply_gates(&mut want, gates);
    // Tiles: the default, small ones (most operations tiled) and none.
    for (simd, tile_qubits) in levels().into_iter().flat_map(|l| [(l, 0), (l, 5), (l, 31)]) {
        let opts = FastOptions {
            simd,
            tile_qubits,
            ..base.clone()
        };
        let run = |threads: usize| {
            let fast = Fast::with_options(threads, opts.clone());
            let mut s = init.clone();
            let stats = fast.apply_with_stats(&mut s, gates).expect("valid gates");
            assert_eq!(stats.passes, stats.sweeps + stats.permutation_passes);
            assert_eq!(fast.stats_total(), stats);
            s
        };
        let one = run(1);
        let two = run(2);
        assert!(
            bits(&one) == bits(&two),
            "{}: n = {n}, {simd:?}, tiles 2^{tile_qubits}: 2 threads differ from 1",
            T::NAME
        );
        let f = one.fidelity(&want);
        assert!(
            f >= 1.0 - tol,
            "{}: n = {n}, block 2^{}, {simd:?}, tiles 2^{tile_qubits}: fidelity {f}",
            T::NAME,
            block_qubits::<T>(n)
        );
    }
}

/// Qubit counts on every side of the block size: the whole state one block (n ≤ 10), blocks
/// clamped to the smallest size (11 to 13), growing (14 to 17), and at the largest size (18 in
/// f64, 19 in f32).
#[test]
fn every_blocking_boundary_matches_the_reference_at_every_simd_level() {
    for (n, len) in [
        (3u32, 40usize),
        (10, 60),
        (11, 60),
        (13, 60),
        (15, 50),
        (18, 30),
    ] {
        let mut rng = ChaCha8Rng::seed_from_u64(500 + u64::from(n));
        let gates = random_circuit(&mut rng, n, len);
        check_levels::<f64>(n, &gates, F64_TOL, u64::from(n));
        check_levels::<f32>(n, &gates, F32_TOL, u64::from(n));
    }
    let gates = random_circuit(&mut ChaCha8Rng::seed_from_u64(519), 19, 24);
    check_levels::<f32>(19, &gates, F32_TOL, 19);
}

#[test]
fn brickwork_and_qft_match_the_reference_at_every_simd_level() {
    for n in [5u32, 12, 16, 19] {
        let b = brickwork(n, 6, u64::from(n));
        check_levels::<f64>(n, &b, F64_TOL, 1);
        check_levels::<f32>(n, &b, F32_TOL, 2);
        let q = qft_with_swaps(n);
        check_levels::<f64>(n, &q, F64_TOL, 3);
        check_levels::<f32>(n, &q, F32_TOL, 4);
    }
}

/// CX (and its negative-control form) on every ordered pair of the low qubits, where the
/// SIMD kernels exchange whole vectors, blend lanes or permute lanes, interleaved with real
/// (RY, H), RX-type and general 2×2 rotations on every low qubit.
#[test]
fn controlled_x_and_special_rotations_on_low_qubits_match_the_reference() {
    let n = 12u32;
    let mut rng = ChaCha8Rng::seed_from_u64(77);
    let cx = gates::lookup("cx").expect("table gate");
    let mut out = Vec::new();
    for c in 0..7u32 {
        for t in 0..7u32 {
            if c == t {
                continue;
            }
            let mut gate = table_gate(cx, &[], &[c, t], &[], 0);
            if (c + t) % 3 == 0 {
                gate.ctrl_state = 0;
            }
            out.push(gate);
            let name = ["ry", "h", "rx", "u"][below(&mut rng, 4)];
            let params: Vec<f64> = match name {
                "h" => Vec::new(),
                "u" => (0..3).map(|_| uniform(&mut rng) * 6.0).collect(),
                _ => vec![uniform(&mut rng) * 6.0],
            };
            out.push(g(name, &params, &[(c * 7 + t) % 8]));
        }
    }
    // Pairs with a high control and a low target and the other way round.
    out.push(g("cx", &[], &[11, 1]));
    out.push(g("cx", &[], &[1, 11]));
    out.push(g("cx", &[], &[10, 6]));
    // Unfused, so that every CX runs as itself; fused, as the engine runs by default.
    let no_fusion = FastOptions {
        fusion: false,
        ..FastOptions::default()
    };
    check_levels_with::<f64>(n, &out, F64_TOL, 5, &no_fusion);
    check_levels_with::<f32>(n, &out, F32_TOL, 6, &no_fusion);
    check_levels::<f64>(n, &out, F64_TOL, 7);
}

#[test]
fn large_states_take_few_passes_and_the_totals_add_up() {
    let n = 18;
    let fast = Fast::new(2);
    let mut s = zero_state::<f32>(n);
    let gates = brickwork(n, 10, 7);
    let a = fast.apply_with_stats(&mut s, &gates).expect("valid");
    // Blocks of 2^15: the window of low qubits slides over the brickwork a few times.
    assert!(a.sweeps <= 6 && a.permutation_passes <= 8, "{a:?}");
    let q = qft_with_swaps(n);
    let b = fast.apply_with_stats(&mut s, &q).expect("valid");
    assert!(b.passes <= 10, "{b:?}");
    // The SWAPs are free and the phase runs fuse.
    assert!(b.gates_out < q.len() - n as usize, "{b:?}");
    let mut sum = a;
    sum.add(&b);
    assert_eq!(fast.stats_total(), sum);
    assert!(simd_detected() <= SimdLevel::Avx512);
}

// ---- Register programs ----

/// Every shape a register program takes, on the lowest qubits (lane bits, register bits and the
/// tile's and block's upper bits): one-qubit rotations in the unit-diagonal form (`rx`, `ry` at
/// ordinary angles), the general forms (angles near π, where the off-diagonal dwarfs the
/// diagonal; `h`, `u3`, `sx`), X and CX with every placement of control and target (lane or
/// register bit, both control values), and diagonals alone, merged, on one register bit, on
/// lanes only and spanning both.
fn program_shapes(n: u32, seed: u64) -> Vec<Gate> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let cx = gates::lookup("cx").expect("table gate");
    let mut out = Vec::new();
    for layer in 0..6u32 {
        for q in 0..n {
            let a = uniform(&mut rng) * 6.0;
            let gate = match (q + layer) % 9 {
                0 => g("rx", &[a], &[q]),
                1 => g("ry", &[a], &[q]),
                2 => g("rz", &[a], &[q]),
                3 => g("rx", &[std::f64::consts::PI - 1e-3 * a], &[q]),
                4 => g("h", &[], &[q]),
                5 => g("u3", &[a, 0.3, -0.7], &[q]),
                6 => g("sx", &[], &[q]),
                7 => g("ry", &[std::f64::consts::PI + 1e-3], &[q]),
                _ => g("x", &[], &[q]),
            };
            out.push(gate);
        }
        for i in (layer % 2..n - 1).step_by(2) {
            let (c, t) = if (i / 2 + layer) % 2 == 0 {
                (i, i + 1)
            } else {
                (i + 1, i)
            };
            let mut gate = table_gate(cx, &[], &[c, t], &[], 0);
            if (i + layer) % 3 == 0 {
                gate.ctrl_state = 0;
            }
            out.push(gate);
        }
        // Diagonals: a controlled phase, a zz rotation, lone and paired rz.
        let a = uniform(&mut rng) * 6.0;
        out.push(g("cp", &[a], &[layer % n, (layer + 3) % n]));
        out.push(g("rzz", &[a], &[(layer + 1) % n, (layer + 5) % n]));
        out.push(g("cz", &[], &[0, 1]));
        out.push(g("rz", &[a], &[(layer + 2) % 3]));
    }
    // CX between distant low qubits, either way round.
    for (c, t) in [(0, 6), (6, 0), (2, 9), (9, 2), (1, 2), (5, 4)] {
        if c < n && t < n {
            out.push(g("cx", &[], &[c, t]));
            out.push(g("ry", &[0.4], &[t]));
        }
    }
    out
}

#[test]
fn register_programs_match_the_reference_in_every_shape() {
    for n in [10u32, 12, 15, 17] {
        let gates = program_shapes(n, u64::from(n));
        check_levels::<f64>(n, &gates, F64_TOL, 40 + u64::from(n));
        check_levels::<f32>(n, &gates, F32_TOL, 60 + u64::from(n));
        let no_fusion = FastOptions {
            fusion: false,
            ..FastOptions::default()
        };
        check_levels_with::<f64>(n, &gates, F64_TOL, 80 + u64::from(n), &no_fusion);
    }
}

/// The same state with programs on and off, and the programs really run where the CPU has the
/// vector kernels.
#[test]
fn register_programs_agree_with_the_kernels_they_replace() {
    for (n, layers) in [(11u32, 8u32), (16, 10), (19, 6)] {
        let gates = brickwork(n, layers, 90 + u64::from(n));
        let mut rng = ChaCha8Rng::seed_from_u64(u64::from(n));
        let init = random_state::<f64>(&mut rng, n);
        for simd in levels() {
            let run = |programs: bool| {
                let opts = FastOptions {
                    programs,
                    simd,
                    ..FastOptions::default()
                };
                run_on_two_threads(&init, &gates, opts)
            };
            let (on, on_stats) = run(true);
            let (off, off_stats) = run(false);
            let f = on.fidelity(&off);
            assert!(f >= 1.0 - F64_TOL, "n = {n}, {simd:?}: fidelity {f}");
            assert_eq!(off_stats.programs, 0);
            let vector = simd_detected().min(simd) >= SimdLevel::Avx2;
            if vector {
                assert!(on_stats.programs > 0, "{simd:?}: {on_stats:?}");
                assert!(
                    on_stats.program_ops * 10 >= on_stats.gates_out * 9,
                    "{simd:?}: most operations run in programs: {on_stats:?}"
                );
            } else {
                assert_eq!(on_stats.programs, 0);
            }
            assert_eq!(on_stats.passes, off_stats.passes);
        }
    }
}

/// Long runs of rotations whose unit-diagonal form grows the amplitudes (angles near π, where
/// `1/cos` is large) and diagonals that never touch every slot: the pending scale must be
/// applied before it leaves the precision's range, and at every sweep's end.
#[test]
fn register_programs_keep_the_scale_in_range() {
    let n = 12u32;
    let mut gates = Vec::new();
    for rep in 0..400u32 {
        let q = rep % 6;
        let a = std::f64::consts::PI - 0.05 - 1e-4 * f64::from(rep);
        gates.push(g(if rep % 2 == 0 { "rx" } else { "ry" }, &[a], &[q]));
        gates.push(g("cx", &[], &[q, (q + 1) % 6]));
        gates.push(g("rz", &[0.1 * f64::from(rep)], &[q + 4]));
    }
    check_levels::<f32>(n, &gates, F32_TOL, 71);
    check_levels::<f64>(n, &gates, F64_TOL, 72);
    // The result is normalised (no scale left over).
    let mut s = zero_state::<f32>(n);
    Fast::new(1)
        .apply_with_stats(&mut s, &gates)
        .expect("valid gates");
    assert!((s.norm_sqr() - 1.0).abs() < 1e-4, "{}", s.norm_sqr());
}

/// A large fresh |0…0⟩ (its pages left for the engine to fault in, from one thread or from all
/// of them): the same bits on 1 and 2 threads, the reference's state, and a clone or a state
/// written through `amplitudes_mut` first runs the same.
#[test]
fn fresh_large_zero_states_run_the_same_on_any_thread_count() {
    let n = 19;
    let gates = brickwork(n, 2, 19);
    let mut want = zero_state::<f64>(n);
    Reference.apply_gates(&mut want, &gates);
    let run = |threads: usize, prepare: &dyn Fn(&mut StateVec<f64>)| {
        let mut s = zero_state::<f64>(n);
        prepare(&mut s);
        Fast::new(threads)
            .apply_with_stats(&mut s, &gates)
            .expect("valid gates");
        s
    };
    let fresh1 = run(1, &|_| {});
    let fresh2 = run(2, &|_| {});
    assert!(bits(&fresh1) == bits(&fresh2), "1 and 2 threads differ");
    let f = fresh1.fidelity(&want);
    assert!(f >= 1.0 - F64_TOL, "fidelity {f}");
    let written = run(2, &|s| s.amplitudes_mut()[1] = Complex::new(0.0, 0.0));
    assert!(bits(&written) == bits(&fresh2));
    let cloned = {
        let mut s = zero_state::<f64>(n).clone();
        Fast::new(2)
            .apply_with_stats(&mut s, &gates)
            .expect("valid gates");
        s
    };
    assert!(bits(&cloned) == bits(&fresh2));
    let f32s = {
        let mut s = zero_state::<f32>(n + 1);
        Fast::new(2)
            .apply_with_stats(&mut s, &brickwork(n + 1, 1, 20))
            .expect("valid gates");
        s
    };
    assert!((f32s.norm_sqr() - 1.0).abs() < 1e-4);
}
