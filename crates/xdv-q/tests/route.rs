//! Routing and basis translation (`route::route`) and `Device::restrict`: random circuits over the
//! whole gate table (extra and negated controls, dense unitaries) on lines, rings, a grid, a
//! heavy-hex fragment, the example device and all-to-all devices with many native sets. The
//! reference engine is the oracle: the routed circuit's state must equal the original's with the
//! qubits permuted by the final layout, amplitude by amplitude (global phase included); every
//! output must pass `Device::check`; measurement distributions (mid-circuit measurement, reset and
//! conditions included) must be the same; routing must be deterministic.

use num_complex::Complex;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use std::collections::BTreeMap;
use xdv_q::circuit::{Circuit, Condition, Gate, Op, Register};
use xdv_q::exec::{self, ops, RunOptions};
use xdv_q::gates::{self, GateDef, Matrix, C64};
use xdv_q::route::{route, RouteError, RouteOptions, Routed};
use xdv_q::{noise, Device, Engine, Reference, RestrictError, StateVec};

// ---------------------------------------------------------------------------------------------
// Random circuits (after tests/engines.rs).

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

/// Table gate `def` on `args` (controls first), plus `extra` controls with the values in the low
/// bits of `extra_state`; with `inverse`, the adjoint matrix under the same name (as `inv @` does
/// for a gate without a table inverse).
fn table_gate(
    def: &GateDef,
    params: &[f64],
    args: &[u32],
    extra: &[u32],
    extra_state: u64,
    inverse: bool,
) -> Gate {
    let nc = def.controls;
    let mut controls = args[..nc].to_vec();
    controls.extend_from_slice(extra);
    let ones = (1u64 << nc) - 1;
    let m = (def.target_matrix)(params);
    Gate {
        name: def.name.into(),
        params: params.to_vec(),
        targets: args[nc..].to_vec(),
        controls,
        ctrl_state: ones | (extra_state << nc),
        matrix: if inverse { m.adjoint() } else { m },
    }
}

/// A random gate: any table entry (random parameters and qubits, sometimes extra controls with
/// random values, sometimes adjoint), or a random dense 1-, 2- or 3-qubit unitary.
fn random_gate(rng: &mut ChaCha8Rng, n: u32, dense: bool) -> Gate {
    let table: Vec<&GateDef> = gates::table().iter().filter(|d| d.qubits > 0).collect();
    let extra_kinds = if dense { 3 } else { 0 };
    let pick = below(rng, table.len() + extra_kinds);
    if pick >= table.len() {
        let k = (pick - table.len() + 1).min(n as usize);
        return Gate {
            name: "unitary".into(),
            params: Vec::new(),
            targets: distinct(rng, n, k),
            controls: Vec::new(),
            ctrl_state: 0,
            matrix: random_unitary(rng, 1 << k),
        };
    }
    let def = table[pick];
    if def.qubits > n as usize {
        return random_gate(rng, n, dense);
    }
    let params: Vec<f64> = (0..def.params)
        .map(|_| (uniform(rng) - 0.5) * 4.0 * std::f64::consts::PI)
        .collect();
    let spare = n as usize - def.qubits;
    let extra_n = if spare > 0 && below(rng, 4) == 0 {
        1 + below(rng, spare.min(2))
    } else {
        0
    };
    let qs = distinct(rng, n, def.qubits + extra_n);
    let extra_state = rng.next_u64() & ((1 << extra_n) - 1);
    let inverse = below(rng, 8) == 0;
    table_gate(
        def,
        &params,
        &qs[..def.qubits],
        &qs[def.qubits..],
        extra_state,
        inverse,
    )
}

fn circuit(n: u32, clbits: u32, ops: Vec<Op>) -> Circuit {
    Circuit {
        num_qubits: n,
        num_clbits: clbits,
        qregs: vec![Register {
            name: "q".into(),
            offset: 0,
            size: n,
        }],
        cregs: if clbits > 0 {
            vec![Register {
                name: "c".into(),
                offset: 0,
                size: clbits,
            }]
        } else {
            vec![]
        },
        ops,
        global_phase: 0.0,
    }
}

/// A random unitary circuit (gates and the odd barrier).
fn random_unitary_circuit(rng: &mut ChaCha8Rng, n: u32, len: usize, dense: bool) -> Circuit {
    let mut ops = Vec::with_capacity(len);
    for _ in 0..len {
        if below(rng, 12) == 0 {
            let k = 1 + below(rng, n as usize);
            ops.push(Op::Barrier {
                qubits: distinct(rng, n, k),
            });
        } else {
            ops.push(Op::Gate(random_gate(rng, n, dense)));
        }
    }
    let mut c = circuit(n, 0, ops);
    c.global_phase = uniform(rng);
    c
}

/// A random circuit with mid-circuit measurements, resets and conditional blocks; at most
/// `branch_max` measurements and resets in all, so its distribution can be enumerated.
fn random_dynamic_circuit(rng: &mut ChaCha8Rng, n: u32, len: usize, branch_max: usize) -> Circuit {
    let clbits = n;
    let mut branching = 0;
    let mut ops = Vec::with_capacity(len + n as usize);
    let random_op = |rng: &mut ChaCha8Rng, branching: &mut usize, nested: bool| -> Op {
        let r = below(rng, 20);
        if r < 2 && *branching < branch_max {
            *branching += 1;
            Op::Measure {
                qubit: below(rng, n as usize) as u32,
                clbit: below(rng, clbits as usize) as u32,
            }
        } else if r < 3 && *branching < branch_max {
            *branching += 1;
            Op::Reset {
                qubit: below(rng, n as usize) as u32,
            }
        } else if r < 4 {
            let k = 1 + below(rng, n as usize);
            Op::Barrier {
                qubits: distinct(rng, n, k),
            }
        } else if r < 6 && !nested {
            let k = 1 + below(rng, 2);
            let bits = distinct(rng, clbits, k);
            let value = rng.next_u64() & ((1 << k) - 1);
            let then_ops = (0..1 + below(rng, 3))
                .map(|_| Op::Gate(random_gate(rng, n, false)))
                .collect();
            let else_ops = (0..below(rng, 3))
                .map(|_| Op::Gate(random_gate(rng, n, false)))
                .collect();
            Op::If {
                cond: Condition {
                    clbits: bits,
                    value,
                },
                then_ops,
                else_ops,
            }
        } else {
            Op::Gate(random_gate(rng, n, true))
        }
    };
    for _ in 0..len {
        let op = random_op(rng, &mut branching, false);
        // Sometimes a measurement or reset inside a branch too.
        let op = match op {
            Op::If {
                cond,
                mut then_ops,
                else_ops,
            } if branching < branch_max && below(rng, 3) == 0 => {
                branching += 1;
                then_ops.push(Op::Measure {
                    qubit: below(rng, n as usize) as u32,
                    clbit: below(rng, clbits as usize) as u32,
                });
                Op::If {
                    cond,
                    then_ops,
                    else_ops,
                }
            }
            op => op,
        };
        ops.push(op);
    }
    for q in 0..n {
        ops.push(Op::Measure { qubit: q, clbit: q });
    }
    circuit(n, clbits, ops)
}

// ---------------------------------------------------------------------------------------------
// Devices.

fn device(name: &str, n: u32, coupling: &[(u32, u32)], native: Option<&[&str]>) -> Device {
    let mut toml = format!("name = \"{name}\"\nqubits = {n}\n");
    if coupling.is_empty() && n > 1 {
        toml += "all_to_all = true\n";
    } else if !coupling.is_empty() {
        let pairs: Vec<String> = coupling
            .iter()
            .map(|(a, b)| format!("[{a}, {b}]"))
            .collect();
        toml += &format!("coupling = [{}]\n", pairs.join(", "));
    }
    if let Some(native) = native {
        let names: Vec<String> = native.iter().map(|s| format!("\"{s}\"")).collect();
        toml += &format!("native_gates = [{}]\n", names.join(", "));
    }
    Device::from_toml(&toml, name).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn line_edges(n: u32) -> Vec<(u32, u32)> {
    (1..n).map(|i| (i - 1, i)).collect()
}

fn ring_edges(n: u32) -> Vec<(u32, u32)> {
    let mut e = line_edges(n);
    e.push((n - 1, 0));
    e
}

/// A `rows × cols` grid, row-major.
fn grid_edges(rows: u32, cols: u32) -> Vec<(u32, u32)> {
    let mut e = Vec::new();
    for r in 0..rows {
        for c in 0..cols {
            let q = r * cols + c;
            if c + 1 < cols {
                e.push((q, q + 1));
            }
            if r + 1 < rows {
                e.push((q, q + cols));
            }
        }
    }
    e
}

/// The first ten qubits of a 27-qubit heavy-hex (Falcon) coupling map.
fn heavy_hex_edges() -> Vec<(u32, u32)> {
    vec![
        (0, 1),
        (1, 2),
        (1, 4),
        (2, 3),
        (3, 5),
        (4, 7),
        (5, 8),
        (6, 7),
        (8, 9),
    ]
}

const IBM: &[&str] = &["id", "rz", "sx", "x", "cx"];

/// The devices the random tests run on, with the qubit count of their circuits.
fn devices() -> Vec<(Device, u32)> {
    vec![
        (device("line6", 6, &line_edges(6), Some(IBM)), 6),
        (device("line6-star", 6, &line_edges(6), None), 5),
        (device("ring6", 6, &ring_edges(6), Some(&["u3", "cz"])), 6),
        (
            device("grid2x3", 6, &grid_edges(2, 3), Some(&["rz", "ry", "cp"])),
            6,
        ),
        (
            device("grid3x3", 9, &grid_edges(3, 3), Some(&["rz", "sx", "rzz"])),
            7,
        ),
        (device("heavyhex10", 10, &heavy_hex_edges(), Some(IBM)), 8),
        (Device::example(), 5),
        (Device::ideal(5), 5),
        (device("all6", 6, &[], Some(&["rx", "ry", "rxx"])), 6),
        (
            device("line5-ph", 5, &line_edges(5), Some(&["p", "h", "csx"])),
            5,
        ),
        (device("line5-U", 5, &line_edges(5), Some(&["U", "CX"])), 4),
        (
            device(
                "line5-sxdg",
                5,
                &line_edges(5),
                Some(&["rz", "sxdg", "crz"]),
            ),
            5,
        ),
        (
            device("line4-cy", 4, &line_edges(4), Some(&["rz", "rx", "cy"])),
            4,
        ),
        (device("line4-ch", 4, &line_edges(4), Some(&["u", "ch"])), 4),
    ]
}

// ---------------------------------------------------------------------------------------------
// Oracles.

const AMP_TOL: f64 = 1e-9;
const FID_TOL: f64 = 1e-10;

fn final_amps(c: &Circuit) -> Vec<C64> {
    let (s, _) = exec::final_state::<f64>(c, &Reference, 1 << 30).expect("a unitary circuit");
    s.amplitudes().to_vec()
}

/// The original state `orig` on `n` logical qubits, placed on the routed circuit's qubits with
/// logical `l` on `layout[l]`.
fn permuted(orig: &[C64], layout: &[u32], routed_qubits: u32) -> Vec<C64> {
    let mut out = vec![C64::new(0.0, 0.0); 1 << routed_qubits];
    for (l_index, &a) in orig.iter().enumerate() {
        let p: usize = layout
            .iter()
            .enumerate()
            .map(|(l, &p)| ((l_index >> l) & 1) << p)
            .sum();
        out[p] = a;
    }
    out
}

fn assert_same_state(want: &[C64], got: &[C64], what: &str) {
    assert_eq!(want.len(), got.len(), "{what}: state sizes differ");
    let diff = want
        .iter()
        .zip(got)
        .map(|(a, b)| (a - b).norm())
        .fold(0.0, f64::max);
    let overlap: C64 = want.iter().zip(got).map(|(a, b)| a.conj() * b).sum();
    let fidelity = overlap.norm_sqr();
    assert!(
        fidelity >= 1.0 - FID_TOL,
        "{what}: fidelity {fidelity} (largest amplitude difference {diff})"
    );
    assert!(
        diff <= AMP_TOL,
        "{what}: amplitudes differ by up to {diff} (fidelity {fidelity}): global phase or permutation wrong"
    );
}

/// Every gate is native and every multi-qubit gate on coupled qubits.
fn assert_runs_on(r: &Routed, d: &Device, what: &str) {
    if let Err(e) = d.check(&r.circuit) {
        panic!("{what}: the routed circuit fails the device check: {e}");
    }
    let mut layout = r.final_layout.clone();
    layout.sort_unstable();
    layout.dedup();
    assert_eq!(
        layout.len(),
        r.final_layout.len(),
        "{what}: final layout is not a permutation"
    );
    assert!(r.final_layout.iter().all(|&p| p < r.circuit.num_qubits));
}

/// The exact distribution of counts keys, by enumerating every measurement and reset outcome.
fn distribution(c: &Circuit) -> BTreeMap<String, f64> {
    fn walk(
        ops: &[&Op],
        state: StateVec<f64>,
        bits: Vec<bool>,
        p: f64,
        acc: &mut BTreeMap<String, f64>,
    ) {
        let mut state = state;
        for (i, op) in ops.iter().enumerate() {
            match op {
                Op::Gate(g) => Reference.apply_gates(&mut state, std::slice::from_ref(g)),
                Op::Barrier { .. } => {}
                Op::Measure { qubit, clbit } => {
                    let (p0, p1) = ops::probabilities(&state, *qubit);
                    for (outcome, po) in [(false, p0), (true, p1)] {
                        if po <= 1e-14 {
                            continue;
                        }
                        let mut s = state.clone();
                        ops::collapse(&mut s, *qubit, outcome, po);
                        let mut b = bits.clone();
                        b[*clbit as usize] = outcome;
                        walk(&ops[i + 1..], s, b, p * po, acc);
                    }
                    return;
                }
                Op::Reset { qubit } => {
                    let (p0, p1) = ops::probabilities(&state, *qubit);
                    for (outcome, po) in [(false, p0), (true, p1)] {
                        if po <= 1e-14 {
                            continue;
                        }
                        let mut s = state.clone();
                        ops::collapse(&mut s, *qubit, outcome, po);
                        if outcome {
                            ops::apply_pauli(&mut s, 1 << qubit, 0);
                        }
                        walk(&ops[i + 1..], s, bits.clone(), p * po, acc);
                    }
                    return;
                }
                Op::If {
                    cond,
                    then_ops,
                    else_ops,
                } => {
                    let branch = if exec::condition_holds(cond, &bits) {
                        then_ops
                    } else {
                        else_ops
                    };
                    let rest: Vec<&Op> =
                        branch.iter().chain(ops[i + 1..].iter().copied()).collect();
                    walk(&rest, state, bits, p, acc);
                    return;
                }
            }
        }
        *acc.entry(exec::counts_key(&bits)).or_insert(0.0) += p;
    }
    let mut state = StateVec::<f64>::zero(c.num_qubits, 1 << 30).expect("small");
    if c.global_phase != 0.0 {
        ops::global_phase(&mut state, c.global_phase);
    }
    let mut acc = BTreeMap::new();
    let ops: Vec<&Op> = c.ops.iter().collect();
    walk(
        &ops,
        state,
        vec![false; c.num_clbits as usize],
        1.0,
        &mut acc,
    );
    acc
}

fn assert_same_distribution(a: &BTreeMap<String, f64>, b: &BTreeMap<String, f64>, what: &str) {
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    for k in keys {
        let (pa, pb) = (
            a.get(k).copied().unwrap_or(0.0),
            b.get(k).copied().unwrap_or(0.0),
        );
        assert!(
            (pa - pb).abs() <= 1e-9,
            "{what}: P({k}) is {pa} originally, {pb} routed"
        );
    }
}

fn route_ok(c: &Circuit, d: &Device, opts: &RouteOptions, what: &str) -> Routed {
    route(c, d, opts).unwrap_or_else(|e| panic!("{what}: {e}"))
}

// ---------------------------------------------------------------------------------------------
// The routed circuit means the same.

#[test]
fn routed_states_equal_the_original_up_to_the_final_layout() {
    let mut total_swaps = 0;
    for (d, n) in devices() {
        for seed in 0..6u64 {
            let what = format!("device {}, seed {seed}", d.name());
            let mut rng = ChaCha8Rng::seed_from_u64(seed * 7919 + u64::from(n));
            let c = random_unitary_circuit(&mut rng, n, 10 + 3 * n as usize, seed % 2 == 0);
            let r = route_ok(&c, &d, &RouteOptions::default(), &what);
            assert_runs_on(&r, &d, &what);
            assert_eq!(r.initial_layout, (0..n).collect::<Vec<_>>(), "{what}");
            let want = permuted(&final_amps(&c), &r.final_layout, r.circuit.num_qubits);
            assert_same_state(&want, &final_amps(&r.circuit), &what);
            total_swaps += r.swaps;
        }
    }
    assert!(total_swaps > 0, "no test needed a swap");
}

#[test]
fn restore_layout_gives_the_original_state() {
    let opts = RouteOptions {
        restore_layout: true,
    };
    for (d, n) in devices() {
        for seed in 0..3u64 {
            let what = format!("device {}, seed {seed}, restore_layout", d.name());
            let mut rng = ChaCha8Rng::seed_from_u64(seed * 104729 + u64::from(n));
            let c = random_unitary_circuit(&mut rng, n, 8 + 2 * n as usize, seed == 0);
            let r = route_ok(&c, &d, &opts, &what);
            assert_runs_on(&r, &d, &what);
            assert_eq!(r.final_layout, r.initial_layout, "{what}");
            let identity: Vec<u32> = (0..n).collect();
            let want = permuted(&final_amps(&c), &identity, r.circuit.num_qubits);
            assert_same_state(&want, &final_amps(&r.circuit), &what);
        }
    }
}

#[test]
fn mid_circuit_measurement_reset_and_conditions_keep_their_distribution() {
    for (d, n) in devices() {
        let n = n.min(6);
        for seed in 0..4u64 {
            let what = format!("device {}, seed {seed}, dynamic", d.name());
            let mut rng = ChaCha8Rng::seed_from_u64(seed * 31337 + u64::from(n));
            let c = random_dynamic_circuit(&mut rng, n, 6 + 2 * n as usize, 5);
            for restore in [false, true] {
                let r = route_ok(
                    &c,
                    &d,
                    &RouteOptions {
                        restore_layout: restore,
                    },
                    &what,
                );
                assert_runs_on(&r, &d, &what);
                assert_eq!(r.circuit.num_clbits, c.num_clbits, "{what}");
                assert_same_distribution(&distribution(&c), &distribution(&r.circuit), &what);
            }
        }
    }
}

#[test]
fn counts_from_exec_run_follow_the_original_distribution() {
    let d = device("line5", 5, &line_edges(5), Some(IBM));
    let shots = 20_000u64;
    for seed in 0..3u64 {
        let what = format!("seed {seed}, counts");
        let mut rng = ChaCha8Rng::seed_from_u64(seed + 4242);
        let c = random_dynamic_circuit(&mut rng, 5, 12, 4);
        let r = route_ok(&c, &d, &RouteOptions::default(), &what);
        let want = distribution(&c);
        let opts = RunOptions {
            shots,
            seed: 11,
            device: Some(d.clone()),
            ..RunOptions::default()
        };
        let got = exec::run::<f64>(&r.circuit, &Reference, &opts)
            .unwrap_or_else(|e| panic!("{what}: {e}"))
            .counts;
        for (k, &count) in &got {
            assert!(want.contains_key(k), "{what}: {k} drawn but impossible");
            let _ = count;
        }
        for (k, &p) in &want {
            let f = got.get(k).copied().unwrap_or(0) as f64 / shots as f64;
            let sigma = (p * (1.0 - p) / shots as f64).sqrt();
            assert!(
                (f - p).abs() <= 6.0 * sigma + 2.0 / shots as f64,
                "{what}: {k} drawn with frequency {f}, probability {p}"
            );
        }
    }
}

#[test]
fn routing_is_deterministic() {
    for (d, n) in devices() {
        let mut rng = ChaCha8Rng::seed_from_u64(99 + u64::from(n));
        let c = random_dynamic_circuit(&mut rng, n, 30, 6);
        let u = random_unitary_circuit(&mut rng, n, 30, true);
        for c in [c, u] {
            for restore in [false, true] {
                let opts = RouteOptions {
                    restore_layout: restore,
                };
                let a = route_ok(&c, &d, &opts, d.name());
                let b = route_ok(&c, &d.clone(), &opts, d.name());
                assert_eq!(a, b, "{}: two routings differ", d.name());
            }
        }
    }
}

#[test]
fn a_native_circuit_that_fits_comes_out_unchanged() {
    // The example device: rz, sx, x, cx on a line; gates on coupled pairs, measurements, a
    // reset, a barrier and a conditional.
    let g = |name: &str, params: &[f64], qs: &[u32]| {
        Op::Gate(Gate::table(name, params, qs).expect("a table gate"))
    };
    let ops = vec![
        g("rz", &[0.3], &[0]),
        g("sx", &[], &[1]),
        g("cx", &[], &[0, 1]),
        g("cx", &[], &[3, 2]),
        g("x", &[], &[4]),
        Op::Barrier {
            qubits: vec![0, 1, 2],
        },
        g("cx", &[], &[4, 3]),
        Op::Measure { qubit: 1, clbit: 0 },
        Op::If {
            cond: Condition {
                clbits: vec![0],
                value: 1,
            },
            then_ops: vec![g("cx", &[], &[2, 1]), g("rz", &[1.0], &[2])],
            else_ops: vec![g("sx", &[], &[0])],
        },
        Op::Reset { qubit: 1 },
        g("id", &[], &[2]),
        Op::Measure { qubit: 0, clbit: 1 },
    ];
    let mut c = circuit(5, 2, ops);
    c.global_phase = 0.25;
    let d = Device::example();
    d.check(&c).expect("fits as written");
    for restore in [false, true] {
        let r = route_ok(
            &c,
            &d,
            &RouteOptions {
                restore_layout: restore,
            },
            "example",
        );
        assert_eq!(r.circuit, c, "a native circuit that fits changed");
        assert_eq!(r.swaps, 0);
        assert_eq!(r.translated_gates, 0);
        assert_eq!(r.final_layout, vec![0, 1, 2, 3, 4]);
    }

    // Random table circuits (gates on up to five qubits, extra controls) on the ideal device,
    // and a native ccx on a triangle.
    for seed in 0..10u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let c = random_unitary_circuit(&mut rng, 6, 40, true);
        let r = route_ok(&c, &Device::ideal(6), &RouteOptions::default(), "ideal");
        assert_eq!(r.circuit, c, "seed {seed}: changed on the ideal device");
    }
    let tri = device(
        "triangle",
        3,
        &[(0, 1), (1, 2), (0, 2)],
        Some(&["ccx", "h"]),
    );
    let c = circuit(3, 0, vec![g("h", &[], &[0]), g("ccx", &[], &[0, 1, 2])]);
    let r = route_ok(&c, &tri, &RouteOptions::default(), "triangle");
    assert_eq!(r.circuit, c);
}

#[test]
fn swaps_bring_distant_qubits_together_on_a_line() {
    let d = device("line6", 6, &line_edges(6), Some(IBM));
    let g = |name: &str, qs: &[u32]| Op::Gate(Gate::table(name, &[], qs).expect("table"));
    let c = circuit(
        6,
        0,
        vec![
            g("h", &[0]),
            g("cx", &[0, 5]),
            g("cx", &[5, 1]),
            g("x", &[0]),
        ],
    );
    let r = route_ok(&c, &d, &RouteOptions::default(), "line");
    assert_runs_on(&r, &d, "line");
    assert!(r.swaps >= 4, "cx 0, 5 on a line needs at least 4 swaps");
    assert_ne!(r.final_layout, r.initial_layout);
    assert_eq!(r.circuit.num_qubits, 6);
    assert_eq!(
        r.circuit.qregs[0].name, "$",
        "routed qubits are device qubits"
    );
    let want = permuted(&final_amps(&c), &r.final_layout, 6);
    assert_same_state(&want, &final_amps(&r.circuit), "line");
    // Each swap is three cx; h and x are rewritten in rz and sx (x is native: kept).
    assert!(r.translated_gates >= 1);
}

#[test]
fn a_gapped_numbering_routes_through_higher_qubits() {
    // Qubits 0 and 1 are connected only through 4: the routing uses 0, 1 and 4.
    let d = device("gap", 5, &[(0, 4), (4, 1), (2, 3)], None);
    let g = |name: &str, qs: &[u32]| Op::Gate(Gate::table(name, &[], qs).expect("table"));
    let c = circuit(2, 0, vec![g("h", &[0]), g("cx", &[0, 1])]);
    let r = route_ok(&c, &d, &RouteOptions::default(), "gap");
    assert_runs_on(&r, &d, "gap");
    assert_eq!(r.circuit.num_qubits, 5);
    let want = permuted(&final_amps(&c), &r.final_layout, 5);
    assert_same_state(&want, &final_amps(&r.circuit), "gap");
    // The same circuit without the cx fits as written and stays on two qubits.
    let c1 = circuit(2, 0, vec![g("h", &[0]), g("h", &[1])]);
    let r1 = route_ok(&c1, &d, &RouteOptions::default(), "gap, no cx");
    assert_eq!(r1.circuit, c1);
}

// ---------------------------------------------------------------------------------------------
// Errors, never panics.

#[test]
fn too_many_qubits_and_disconnected_maps_are_refused() {
    let g = |name: &str, qs: &[u32]| Op::Gate(Gate::table(name, &[], qs).expect("table"));
    let c = circuit(6, 0, vec![g("cx", &[0, 5])]);
    let err = route(&c, &Device::example(), &RouteOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            RouteError::TooManyQubits {
                circuit: 6,
                available: 5,
                ..
            }
        ),
        "{err:?}"
    );
    let two_islands = device("islands", 4, &[(0, 1), (2, 3)], None);
    let c = circuit(3, 0, vec![g("cx", &[0, 2])]);
    let err = route(&c, &two_islands, &RouteOptions::default()).unwrap_err();
    assert!(
        matches!(err, RouteError::Disconnected { qubit: 2, .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("qubit 2"), "{err}");
}

#[test]
fn untranslatable_gates_name_the_gate_device_and_natives() {
    let g = |name: &str, qs: &[u32]| Op::Gate(Gate::table(name, &[], qs).expect("table"));
    // No universal one-qubit set: h has no form in x and cx.
    let d = device("xcx", 2, &[(0, 1)], Some(&["x", "cx"]));
    let c = circuit(2, 0, vec![g("x", &[0]), g("h", &[1])]);
    let err = route(&c, &d, &RouteOptions::default()).unwrap_err();
    match &err {
        RouteError::Untranslatable {
            gate,
            position,
            device,
            native,
            ..
        } => {
            assert_eq!(gate, "h q[1]");
            assert_eq!(position, "op 1");
            assert_eq!(device, "xcx");
            assert_eq!(native, &vec!["cx".to_string(), "x".to_string()]);
        }
        other => panic!("{other:?}"),
    }
    // Gates that are native need nothing more.
    let ok = circuit(2, 0, vec![g("x", &[0]), g("cx", &[0, 1])]);
    route_ok(&ok, &d, &RouteOptions::default(), "xcx");
    // No two-qubit entangler to make cx from.
    let d = device("noent", 3, &line_edges(3), Some(&["rz", "sx", "swap"]));
    let c = circuit(3, 0, vec![g("cz", &[0, 1])]);
    let err = route(&c, &d, &RouteOptions::default()).unwrap_err();
    assert!(
        matches!(&err, RouteError::Untranslatable { what, .. } if what.contains("cx")),
        "{err:?}"
    );
    assert!(err.to_string().contains("noent"), "{err}");
}

#[test]
fn non_unitary_gates_and_gate_limits_are_errors() {
    let mut m = Matrix::identity(8);
    m.data[0] = C64::new(2.0, 0.0);
    let bad = Gate {
        name: "blob".into(),
        params: vec![],
        targets: vec![0, 1, 2],
        controls: vec![],
        ctrl_state: 0,
        matrix: m,
    };
    let c = circuit(3, 0, vec![Op::Gate(bad)]);
    let err = route(&c, &Device::example(), &RouteOptions::default()).unwrap_err();
    assert!(matches!(err, RouteError::NotUnitary { .. }), "{err:?}");

    // h with 22 controls: its multi-controlled phases are far beyond any gate limit.
    let n = 23;
    let h = gates::lookup("h").expect("h");
    let big = Gate {
        name: "h".into(),
        params: vec![],
        targets: vec![22],
        controls: (0..22).collect(),
        ctrl_state: (1 << 22) - 1,
        matrix: (h.target_matrix)(&[]),
    };
    let d = device("all23", n, &[], Some(&["U", "cx"]));
    let err = route(
        &circuit(n, 0, vec![Op::Gate(big)]),
        &d,
        &RouteOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(err, RouteError::TooManyGates { gates_max, .. } if gates_max > 0),
        "{err:?}"
    );
    // A dense unitary on seven targets is refused before any work.
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let wide = Gate {
        name: "unitary".into(),
        params: vec![],
        targets: (0..7).collect(),
        controls: vec![],
        ctrl_state: 0,
        matrix: random_unitary(&mut rng, 128),
    };
    let d = device("all7", 7, &[], Some(IBM));
    let err = route(
        &circuit(7, 0, vec![Op::Gate(wide)]),
        &d,
        &RouteOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, RouteError::TooManyGates { .. }), "{err:?}");

    // Qubits 0 and 1 connected only through 4998 others: more than one routing may span.
    let n = 5000u32;
    let mut edges = vec![(0, 2)];
    edges.extend((2..n - 1).map(|q| (q, q + 1)));
    edges.push((n - 1, 1));
    let d = device("long", n, &edges, None);
    let g = |name: &str, qs: &[u32]| Op::Gate(Gate::table(name, &[], qs).expect("table"));
    let err = route(
        &circuit(2, 0, vec![g("cx", &[0, 1])]),
        &d,
        &RouteOptions::default(),
    )
    .unwrap_err();
    assert!(
        matches!(
            err,
            RouteError::TooManyRoutedQubits {
                qubits: 5000,
                max: 4096,
                ..
            }
        ),
        "{err:?}"
    );
}

#[test]
fn odd_but_valid_circuits_route_without_panicking() {
    let x = gates::lookup("x").expect("x");
    let d = device("line4", 4, &line_edges(4), Some(IBM));
    let cases: Vec<(&str, Vec<Op>)> = vec![
        ("empty", vec![]),
        ("empty barrier", vec![Op::Barrier { qubits: vec![] }]),
        (
            // A phase under two negated controls, with no target at all.
            "controlled phase without targets",
            vec![Op::Gate(Gate {
                name: "phase-only".into(),
                params: vec![],
                targets: vec![],
                controls: vec![0, 3],
                ctrl_state: 0b01,
                matrix: Matrix::diagonal(&[Complex::from_polar(1.0, 0.7)]),
            })],
        ),
        (
            "x with high ctrl_state bits",
            vec![Op::Gate(Gate {
                name: "x".into(),
                params: vec![],
                targets: vec![3],
                controls: vec![0],
                ctrl_state: u64::MAX,
                matrix: (x.target_matrix)(&[]),
            })],
        ),
    ];
    for (what, ops) in cases {
        let mut c = circuit(4, 0, ops);
        c.ops
            .insert(0, Op::Gate(Gate::table("h", &[], &[0]).expect("h")));
        c.ops
            .insert(0, Op::Gate(Gate::table("h", &[], &[3]).expect("h")));
        let r = route_ok(&c, &d, &RouteOptions::default(), what);
        assert_runs_on(&r, &d, what);
        let want = permuted(&final_amps(&c), &r.final_layout, r.circuit.num_qubits);
        assert_same_state(&want, &final_amps(&r.circuit), what);
    }
    // No qubits at all.
    let c = circuit(0, 0, vec![]);
    let r = route_ok(
        &c,
        &Device::example(),
        &RouteOptions::default(),
        "no qubits",
    );
    assert_eq!(r.circuit, c);
    // A malformed circuit is an error, not a panic.
    let mut c = circuit(2, 0, vec![]);
    c.ops.push(Op::Measure { qubit: 5, clbit: 0 });
    assert!(matches!(
        route(&c, &Device::example(), &RouteOptions::default()),
        Err(RouteError::Invalid(_))
    ));
}

// ---------------------------------------------------------------------------------------------
// Device::restrict.

#[test]
fn restrict_keeps_the_figures_under_the_new_numbering() {
    let full = Device::example();
    let sub = full.restrict(&[1, 2, 4]).expect("valid qubits");
    assert_eq!(sub.name(), "line5[1,2,4]");
    assert_eq!(sub.qubits(), 3);
    assert!(sub.coupled(0, 1), "1-2 stays coupled");
    assert!(!sub.coupled(1, 2), "2-4 was never coupled");
    assert_eq!(sub.coupling().collect::<Vec<_>>(), vec![(0, 1)]);
    assert_eq!(sub.native_gates(), full.native_gates());
    // Physical qubit 2 (now 1) has its own T1/T2, one-qubit error and readout.
    assert_eq!(sub.t1_ns(1), full.t1_ns(2));
    assert_eq!(sub.t2_ns(1), full.t2_ns(2));
    assert_eq!(sub.readout(1), (0.02, 0.03));
    assert_eq!(sub.readout(0), full.readout(1));
    let sx = |q: u32| Gate::table("sx", &[], &[q]).expect("sx");
    assert_eq!(sub.gate_error(&sx(1)), 4.0e-4);
    assert_eq!(sub.gate_error(&sx(0)), 2.5e-4);
    assert_eq!(sub.measure_duration_ns(), full.measure_duration_ns());
    assert_eq!(sub.reset_duration_ns(), full.reset_duration_ns());
    // The per-pair override of (3, 4) follows it to (1, 2).
    let sub = full.restrict(&[2, 3, 4]).expect("valid qubits");
    let cx = |a: u32, b: u32| Gate::table("cx", &[], &[a, b]).expect("cx");
    assert_eq!(sub.gate_error(&cx(2, 1)), 1.1e-2);
    assert_eq!(sub.gate_duration_ns(&cx(1, 2)), 400.0);
    assert_eq!(sub.gate_error(&cx(0, 1)), 7.5e-3);
    assert_eq!(sub.gate_duration_ns(&cx(0, 1)), 320.0);
    let rz = Gate::table("rz", &[0.5], &[0]).expect("rz");
    assert_eq!(sub.gate_error(&rz), 0.0, "by-name entries stay");
    // Any order of distinct qubits: qubit i is qubits[i].
    let rev = full.restrict(&[4, 3]).expect("valid");
    assert_eq!(rev.gate_error(&cx(0, 1)), 1.1e-2);
    assert_eq!(rev.name(), "line5[4,3]");
}

#[test]
fn restrict_refuses_bad_lists_naming_the_qubit() {
    let d = Device::example();
    assert_eq!(
        d.restrict(&[]),
        Err(RestrictError::Empty {
            device: "line5".into()
        })
    );
    assert_eq!(
        d.restrict(&[0, 5]),
        Err(RestrictError::OutOfRange {
            qubit: 5,
            qubits: 5,
            device: "line5".into()
        })
    );
    let err = d.restrict(&[1, 3, 1]).unwrap_err();
    assert_eq!(
        err,
        RestrictError::Duplicate {
            qubit: 1,
            device: "line5".into()
        }
    );
    assert!(err.to_string().contains("qubit 1"), "{err}");
}

#[test]
fn restrict_of_all_to_all_is_all_to_all() {
    let sub = Device::ideal(8).restrict(&[2, 5, 7]).expect("valid");
    assert!(sub.is_all_to_all());
    assert_eq!(sub.qubits(), 3);
    assert!(sub.coupled(0, 2));
    assert!(sub.is_noiseless());
}

/// `ops` on qubits `0..k`, renamed to `qubits[i]`.
fn renamed(ops: &[Op], qubits: &[u32]) -> Vec<Op> {
    ops.iter()
        .map(|op| match op {
            Op::Gate(g) => {
                let mut g = g.clone();
                for q in g.targets.iter_mut().chain(g.controls.iter_mut()) {
                    *q = qubits[*q as usize];
                }
                Op::Gate(g)
            }
            Op::Measure { qubit, clbit } => Op::Measure {
                qubit: qubits[*qubit as usize],
                clbit: *clbit,
            },
            Op::Reset { qubit } => Op::Reset {
                qubit: qubits[*qubit as usize],
            },
            Op::Barrier { qubits: qs } => Op::Barrier {
                qubits: qs.iter().map(|&q| qubits[q as usize]).collect(),
            },
            Op::If {
                cond,
                then_ops,
                else_ops,
            } => Op::If {
                cond: cond.clone(),
                then_ops: renamed(then_ops, qubits),
                else_ops: renamed(else_ops, qubits),
            },
        })
        .collect()
}

#[test]
fn a_restricted_device_behaves_as_its_qubits_on_the_full_device() {
    let full = Device::example();
    let g = |name: &str, params: &[f64], qs: &[u32]| {
        Op::Gate(Gate::table(name, params, qs).expect("table"))
    };
    for part in [&[1u32, 2, 3][..], &[2, 3, 4], &[0, 1], &[3, 4]] {
        let sub = full.restrict(part).expect("valid");
        let k = part.len() as u32;
        let mut ops = vec![g("sx", &[], &[0]), g("rz", &[0.4], &[0])];
        for q in 1..k {
            ops.push(g("cx", &[], &[q - 1, q]));
            ops.push(g("sx", &[], &[q]));
        }
        ops.push(Op::Reset { qubit: 0 });
        ops.push(g("x", &[], &[0]));
        for q in 0..k {
            ops.push(Op::Measure { qubit: q, clbit: q });
        }
        let small = circuit(k, k, ops.clone());
        let mut big = circuit(5, k, renamed(&ops, part));
        big.cregs = small.cregs.clone();
        sub.check(&small).expect("fits the sub-device");
        full.check(&big).expect("fits the full device");

        let (pe_small, pe_big) = (
            noise::predicted_error(&small, &sub),
            noise::predicted_error(&big, &full),
        );
        assert!(
            (pe_small - pe_big).abs() <= 1e-12 * pe_big.max(1e-300),
            "{part:?}: predicted error {pe_small} vs {pe_big}"
        );
        assert!(pe_big > 0.0);

        let run = |c: &Circuit, d: &Device| {
            let opts = RunOptions {
                shots: 400,
                seed: 5,
                device: Some(d.clone()),
                ..RunOptions::default()
            };
            exec::run::<f64>(c, &Reference, &opts).expect("runs").counts
        };
        assert_eq!(
            run(&small, &sub),
            run(&big, &full),
            "{part:?}: noisy counts differ with the same seed"
        );
    }
}

#[test]
fn routing_on_a_restricted_partition_runs_on_it() {
    // A tenant's partition of a heavy-hex fragment, then a circuit routed onto it.
    let full = device("heavyhex10", 10, &heavy_hex_edges(), Some(IBM));
    let sub = full.restrict(&[1, 2, 3, 4, 5, 7]).expect("valid");
    assert_eq!(
        sub.coupling().collect::<Vec<_>>(),
        vec![(0, 1), (0, 3), (1, 2), (2, 4), (3, 5)]
    );
    for seed in 0..4u64 {
        let what = format!("partition, seed {seed}");
        let mut rng = ChaCha8Rng::seed_from_u64(seed + 77);
        let c = random_unitary_circuit(&mut rng, 6, 20, false);
        let r = route_ok(&c, &sub, &RouteOptions::default(), &what);
        assert_runs_on(&r, &sub, &what);
        assert_eq!(r.circuit.num_qubits, 6);
        let want = permuted(&final_amps(&c), &r.final_layout, 6);
        assert_same_state(&want, &final_amps(&r.circuit), &what);
    }
}

#[test]
fn modified_gates_on_several_qubits_keep_their_exact_phase() {
    // Gates that are not table gates as written: inverses without a table inverse, extra and
    // negated controls, controlled multi-target gates, dense unitaries. Each is preceded by
    // Hadamards and a random layer so every relative and global phase shows.
    let def = |name: &str| gates::lookup(name).expect("table");
    let theta = [0.37, -1.21, 2.5, 0.9];
    let mut rng = ChaCha8Rng::seed_from_u64(2024);
    let specials: Vec<(&str, Gate)> = vec![
        (
            "inv @ rccx",
            table_gate(def("rccx"), &[], &[2, 0, 1], &[], 0, true),
        ),
        (
            "inv @ rc3x",
            table_gate(def("rc3x"), &[], &[3, 1, 0, 2], &[], 0, true),
        ),
        (
            "inv @ c3sqrtx",
            table_gate(def("c3sqrtx"), &[], &[0, 1, 2, 3], &[], 0, true),
        ),
        (
            "ctrl @ swap",
            table_gate(def("swap"), &[], &[1, 3], &[0], 1, false),
        ),
        (
            "negctrl @ ctrl @ h",
            table_gate(def("h"), &[], &[2], &[0, 3], 0b10, false),
        ),
        (
            "ctrl(2) @ rx",
            table_gate(def("rx"), &theta[..1], &[1], &[3, 0], 0b11, false),
        ),
        (
            "ctrl @ rxx",
            table_gate(def("rxx"), &theta[..1], &[0, 2], &[3], 1, false),
        ),
        (
            "negctrl @ cu",
            table_gate(def("cu"), &theta, &[2, 1], &[0], 0, false),
        ),
        (
            "inv @ ctrl @ csx",
            table_gate(def("csx"), &[], &[3, 1], &[2], 1, true),
        ),
        (
            "ctrl @ ccx",
            table_gate(def("ccx"), &[], &[0, 1, 2], &[3], 1, false),
        ),
        (
            "ctrl @ cswap",
            table_gate(def("cswap"), &[], &[3, 1, 2], &[0], 0, false),
        ),
        (
            "dense 3-qubit",
            Gate {
                name: "unitary".into(),
                params: vec![],
                targets: vec![2, 0, 3],
                controls: vec![],
                ctrl_state: 0,
                matrix: random_unitary(&mut rng, 8),
            },
        ),
        (
            "ctrl @ dense 2-qubit",
            Gate {
                name: "unitary".into(),
                params: vec![],
                targets: vec![1, 3],
                controls: vec![2],
                ctrl_state: 1,
                matrix: random_unitary(&mut rng, 4),
            },
        ),
        (
            "dense 1-qubit under 3 controls",
            Gate {
                name: "unitary".into(),
                params: vec![],
                targets: vec![0],
                controls: vec![3, 1, 2],
                ctrl_state: 0b101,
                matrix: random_unitary(&mut rng, 2),
            },
        ),
    ];
    let devices = [
        device("line4", 4, &line_edges(4), Some(IBM)),
        device("line4-star", 4, &line_edges(4), None),
        device("all4", 4, &[], Some(&["u", "cz"])),
        Device::ideal(4),
    ];
    for d in &devices {
        for (what, gate) in &specials {
            let what = format!("{what} on {}", d.name());
            let mut ops: Vec<Op> = (0..4)
                .map(|q| Op::Gate(Gate::table("h", &[], &[q]).expect("h")))
                .collect();
            ops.push(Op::Gate(
                Gate::table("u3", &[0.3, 1.1, -0.4], &[1]).expect("u3"),
            ));
            ops.push(Op::Gate(Gate::table("t", &[], &[2]).expect("t")));
            ops.push(Op::Gate(gate.clone()));
            let c = circuit(4, 0, ops);
            for restore in [false, true] {
                let r = route_ok(
                    &c,
                    d,
                    &RouteOptions {
                        restore_layout: restore,
                    },
                    &what,
                );
                assert_runs_on(&r, d, &what);
                let want = permuted(&final_amps(&c), &r.final_layout, r.circuit.num_qubits);
                assert_same_state(&want, &final_amps(&r.circuit), &what);
            }
        }
    }
}

#[test]
fn terminal_measurements_stay_terminal() {
    // Measurements in the middle of the routing (some qubits measured early, others still
    // interacting) must not be followed by a swap on their qubit, so `exec::run` still samples
    // the routed circuit from one final state.
    let mut moved = 0;
    for (d, n) in devices() {
        for seed in 0..4u64 {
            let what = format!("device {}, seed {seed}, terminal", d.name());
            let mut rng = ChaCha8Rng::seed_from_u64(seed * 65537 + u64::from(n));
            let mut c = random_unitary_circuit(&mut rng, n, 8 + 2 * n as usize, false);
            c.num_clbits = n;
            c.cregs = vec![Register {
                name: "c".into(),
                offset: 0,
                size: n,
            }];
            // Measure half the qubits, keep entangling the others, then measure them.
            let half = n / 2;
            for q in 0..half {
                c.ops.push(Op::Measure { qubit: q, clbit: q });
            }
            for _ in 0..2 * n {
                let qs = distinct(&mut rng, n - half, 2);
                c.ops.push(Op::Gate(
                    Gate::table("cx", &[], &[qs[0] + half, qs[1] + half]).expect("cx"),
                ));
            }
            for q in half..n {
                c.ops.push(Op::Measure { qubit: q, clbit: q });
            }
            assert!(exec::measurements_are_terminal(&c), "{what}");
            for restore in [false, true] {
                let r = route_ok(
                    &c,
                    &d,
                    &RouteOptions {
                        restore_layout: restore,
                    },
                    &what,
                );
                assert_runs_on(&r, &d, &what);
                assert!(
                    exec::measurements_are_terminal(&r.circuit),
                    "{what}: a routed measurement is no longer terminal"
                );
                assert_same_distribution(&distribution(&c), &distribution(&r.circuit), &what);
                let run = exec::run::<f64>(&r.circuit, &Reference, &RunOptions::default())
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                assert_eq!(run.method, exec::Method::FinalSampling, "{what}");
                moved += r.swaps;
            }
        }
    }
    assert!(moved > 0);
}

#[test]
fn corpus_circuits_route_to_the_same_state() {
    // Every circuit of the Qiskit and MQT Bench corpora, both dialects, on a heavy-hex fragment
    // with IBM's basis and on a ring with u3 and cz.
    let targets = [
        device("heavyhex10", 10, &heavy_hex_edges(), Some(IBM)),
        device("ring8", 8, &ring_edges(8), Some(&["u3", "cz"])),
    ];
    let (mut files, mut swaps, mut routings) = (0, 0, 0);
    for dir in ["qiskit", "mqt_bench"] {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests")
            .join(dir);
        let mut names: Vec<std::path::PathBuf> = std::fs::read_dir(&path)
            .expect("corpus directory")
            .map(|e| e.expect("entry").path())
            .filter(|p| p.extension().is_some_and(|x| x == "qasm" || x == "qasm3"))
            .collect();
        names.sort();
        for file in names {
            let name = file.display().to_string();
            let text = std::fs::read_to_string(&file).expect("readable");
            let c = xdv_q::qasm::parse(&text, &name, &xdv_q::qasm::Options::default())
                .unwrap_or_else(|e| panic!("{e}"));
            files += 1;
            for d in &targets {
                if c.num_qubits > d.qubits() {
                    continue;
                }
                let what = format!("{name} on {}", d.name());
                let r = route_ok(&c, d, &RouteOptions::default(), &what);
                assert_runs_on(&r, d, &what);
                assert_eq!(
                    exec::measurements_are_terminal(&c),
                    exec::measurements_are_terminal(&r.circuit),
                    "{what}"
                );
                let want = permuted(&final_amps(&c), &r.final_layout, r.circuit.num_qubits);
                assert_same_state(&want, &final_amps(&r.circuit), &what);
                swaps += r.swaps;
                routings += 1;
            }
        }
    }
    assert!(files >= 40, "the corpora are missing ({files} files)");
    assert!(
        routings >= 2 * files - 4 && swaps > 0,
        "{routings} routings, {swaps} swaps"
    );
}
