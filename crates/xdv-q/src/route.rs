//! Routing and basis translation: from a lowered [`Circuit`] to one that [`Device::check`]
//! accepts — every gate on two qubits on a coupled pair, every gate native — with the same
//! meaning.
//!
//! [`route`] runs three stages:
//!
//! 1. **Decomposition.** A gate on three or more qubits (controls included) is rewritten into
//!    gates on one and two qubits: by the gate table's exact decompositions when it is a table
//!    gate (a modified gate that equals one — `ctrl @ ctrl @ x` is `ccx` — counts as that gate);
//!    otherwise exactly by construction: a multi-controlled one-qubit gate through its
//!    eigen-decomposition into multi-controlled phases (parities computed with `cx`), and any
//!    other unitary through two-level (Givens) rotations. Global phase is kept exactly. A native
//!    gate on three or more qubits is kept when the device is all-to-all or when the circuit
//!    already fits the coupling map (no gate on an uncoupled pair), since then no swap is needed.
//! 2. **Routing**, SABRE-style (Li, Ding & Xie, ASPLOS 2019) and fully deterministic: logical
//!    qubit `i` starts on device qubit `i` (the trivial initial layout). Routing uses the
//!    connected component of device qubit 0 among qubits `0..m`, for the smallest `m ≥ n` in
//!    which it holds qubits `0..n` (`m = n` when qubits `0..n` are connected among themselves,
//!    as on a partition from [`Device::restrict`]); the idle qubits of that region are in |0⟩ and
//!    may be swapped through. A circuit that already fits the coupling map is not routed at all.
//!    The operations form a dependency graph over qubits and classical bits; the front layer's
//!    executable operations are
//!    emitted lowest index first; when none is, the candidate swaps (every coupled pair touching
//!    a qubit of a blocked front gate) are scored by the distance of the front gates plus
//!    [`EXTENDED_SET_WEIGHT`] times that of the next [`EXTENDED_SET_SIZE`] two-qubit gates (the
//!    extended set), each mean, times the larger decay of the pair; the lowest score wins, ties
//!    going to the lowest pair. Decay grows by [`DECAY_DELTA`] per swap of a qubit and resets
//!    after [`DECAY_RESET_SWAPS`] swaps or when a gate is executed. After `10·R` swaps without
//!    progress (`R` the routed qubits) those swaps are undone and the lowest blocked gate is
//!    brought together along a shortest path. Measurement and reset act on the device qubit
//!    holding the logical qubit at that point; a conditional block is routed inside with the
//!    layout at its start and the layout is restored at its end, so both branches leave the
//!    same layout. With [`RouteOptions::restore_layout`] the initial layout is restored at the
//!    end by swaps along a breadth-first spanning tree. A measurement that a swap would follow on
//!    its qubit is moved past the swaps (`measure p; swap p, q` = `swap p, q; measure q`), so
//!    terminal measurements stay terminal and [`crate::exec::run`] still samples them from one
//!    final state.
//! 3. **Basis translation**, when the device declares native gates. A native gate (its name is
//!    native and it has the table's arity — what [`Device::check`] asks) is left untouched. Any
//!    other gate is expanded into `U`, `CX` and `gphase`; consecutive one-qubit matrices on a
//!    qubit are merged into one, which is written with the natives (`U`/`u`/`u3`; else
//!    `rz·sx·rz·sx·rz`; else `rz·ry·rz`, `rz·rx·rz`, `rx·ry·rx`, `rz·h·rz·h·rz`; a diagonal as
//!    one `rz`/`p`, a native fixed gate such as `x` as itself), and `CX` as `cx`, or `cz` (or a
//!    controlled gate equivalent to it: `cp(π)`, `crz(π)`, `cy`, `ch`, …, or `rzz`/`rxx`) with
//!    one-qubit gates, or two `csx`. Every rewrite is exact including its global phase, which goes
//!    to [`Circuit::global_phase`] (a phase inside a conditional block is a global phase of that
//!    branch of the trajectory and is dropped). A routing swap is three `cx`, then translated.
//!
//! The result is the same circuit up to the final permutation of qubits ([`Routed::final_layout`]):
//! the same state (global phase included) with logical qubit `l` on device qubit
//! `final_layout[l]`, and the same classical bits, so the same counts. The same circuit and device
//! always give the same routed circuit: nothing is random, every iteration is ordered and every
//! tie is broken by the lowest index. A circuit that needs no swap and whose gates are all native
//! comes out identical.
//!
//! Limits: the output has at most `64 · (G + R) · R` gates ([`ROUTE_GATES_PER_INPUT_GATE_AND_QUBIT`],
//! `G` the input's gates after stage 1, `R` the routed qubits) and never more than
//! [`ROUTE_GATES_MAX`]; routing spans at most [`ROUTE_QUBITS_MAX`] device qubits. Every failure
//! is a [`RouteError`].

use crate::circuit::{Circuit, Condition, Gate, Op, Register};
use crate::device::Device;
use crate::exec::{self, ExecError};
use crate::gates::{self, GateDef, Matrix, C64};
use crate::qasm::lower::euler_u;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::f64::consts::{FRAC_PI_2, PI};
use thiserror::Error;

/// The most gates a routed circuit may have, whatever its input (the hard cap), in gates.
pub const ROUTE_GATES_MAX: usize = 10_000_000;
/// The output may have at most this many gates per (input gate + routed qubit) per routed qubit:
/// `64 · (G + R) · R`, with `G` the input's gates after decomposition into one- and two-qubit
/// gates and `R` the routed qubits (and never more than [`ROUTE_GATES_MAX`]).
pub const ROUTE_GATES_PER_INPUT_GATE_AND_QUBIT: usize = 64;
/// The most device qubits one routing may span, in qubits (its distance table has `R²` entries).
pub const ROUTE_QUBITS_MAX: u32 = 4096;
/// How many upcoming two-qubit gates SABRE's lookahead (the extended set) scores.
pub const EXTENDED_SET_SIZE: usize = 20;
/// The weight of the extended set in a swap's score.
pub const EXTENDED_SET_WEIGHT: f64 = 0.5;
/// What a swap adds to the decay of its two qubits.
pub const DECAY_DELTA: f64 = 0.001;
/// Swaps after which every decay returns to 1.
pub const DECAY_RESET_SWAPS: usize = 5;

/// The most operations the extended-set search visits per swap.
const EXTENDED_SET_VISITS: usize = 1000;
/// Two matrices this close (largest entrywise distance) are the same gate.
const SAME: f64 = 1e-12;
/// A product of native gates this close to a matrix, up to a phase, writes it.
const FIT: f64 = 1e-10;
/// The largest unitarity error `|U†U − I|` of a gate that is decomposed.
const UNITARY: f64 = 1e-9;
/// An angle this small is dropped.
const TINY: f64 = 1e-14;

/// How [`route`] works.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RouteOptions {
    /// Swap the qubits back to the initial layout at the end (for callers that read the final
    /// state or expectation values on it); [`Routed::final_layout`] is then the initial layout.
    pub restore_layout: bool,
}

/// A routed and translated circuit.
#[derive(Clone, Debug, PartialEq)]
pub struct Routed {
    /// The circuit on device qubits: every gate native, every multi-qubit gate on coupled qubits.
    /// It has `max(routed device qubits) + 1` qubits (the input's count when the routing stays on
    /// qubits `0..n`); its registers are the input's when no swap was inserted and the qubit
    /// count is unchanged, else one register `$` of device qubits. Classical bits are unchanged.
    pub circuit: Circuit,
    /// Logical qubit `l` starts on device qubit `initial_layout[l]` (always `l`).
    pub initial_layout: Vec<u32>,
    /// Logical qubit `l` ends on device qubit `final_layout[l]`.
    pub final_layout: Vec<u32>,
    /// Swaps inserted (routing, restoring conditional blocks' layouts, and `restore_layout`).
    pub swaps: usize,
    /// Input gates (counting inside conditionals) that were decomposed or translated rather than
    /// kept as they were.
    pub translated_gates: usize,
}

/// Why a circuit could not be routed onto a device.
#[derive(Debug, Error, PartialEq)]
pub enum RouteError {
    /// The circuit is malformed (an index out of range, a matrix of the wrong size, …).
    #[error(transparent)]
    Invalid(#[from] ExecError),
    /// The circuit has more qubits than the device.
    #[error("the circuit uses {circuit} qubits but device '{device}' has {available}; use a larger device or fewer qubits")]
    TooManyQubits {
        /// The circuit's qubits.
        circuit: u32,
        /// The device's qubits.
        available: u32,
        /// The device.
        device: String,
    },
    /// Logical qubit `qubit` starts on device qubit `qubit`, which the coupling map does not
    /// connect to device qubit 0.
    #[error("device '{device}': the coupling map does not connect qubit {qubit} to qubit 0, and the circuit's logical qubit {qubit} starts on device qubit {qubit}; routing needs device qubits 0 to {last} connected: restrict the device to a connected partition")]
    Disconnected {
        /// The unreachable device qubit (the lowest one).
        qubit: u32,
        /// The circuit's last logical qubit.
        last: u32,
        /// The device.
        device: String,
    },
    /// Connecting qubits `0..n` would take too many device qubits.
    #[error("device '{device}': connecting qubits 0 to {last} takes {qubits} device qubits, more than the {max} one routing may span; restrict the device to a connected partition")]
    TooManyRoutedQubits {
        /// The device qubits it would take.
        qubits: u32,
        /// [`ROUTE_QUBITS_MAX`].
        max: u32,
        /// The circuit's last logical qubit.
        last: u32,
        /// The device.
        device: String,
    },
    /// A gate to decompose whose matrix is not unitary.
    #[error("{gate} ({position}): its matrix is not unitary (|U†U − I| = {error:e}), so it has no exact decomposition; check the gate's matrix")]
    NotUnitary {
        /// The gate as written.
        gate: String,
        /// Where it is.
        position: String,
        /// `max |U†U − I|`.
        error: f64,
    },
    /// A gate that cannot be written with the device's native gates.
    #[error("{gate} ({position}): {what} cannot be written exactly with the native gates of device '{device}' ({}); add a universal set to `native_gates` (for example rz, sx and cx)", native.join(", "))]
    Untranslatable {
        /// The gate as written (the input gate it comes from).
        gate: String,
        /// Where it is.
        position: String,
        /// What had no native form (`a cx (controlled-NOT)`, `the one-qubit matrix …`).
        what: String,
        /// The device.
        device: String,
        /// The native set.
        native: Vec<String>,
    },
    /// The output would exceed its gate limit.
    #[error("the routed circuit would have more than {gates_max} gates ({reason}); split the circuit, use fewer controls, or restrict the device to a partition that fits it better")]
    TooManyGates {
        /// The limit, in gates.
        gates_max: usize,
        /// How the limit was set.
        reason: String,
    },
}

/// Routes `c` onto `device` and translates it into the device's native gates (see the module
/// doc). The output passes [`Device::check`]. Nothing panics: every input is validated
/// ([`exec::validate`]) first and every failure is a [`RouteError`].
pub fn route(c: &Circuit, device: &Device, opts: &RouteOptions) -> Result<Routed, RouteError> {
    route_with(c, device, opts, None)
}

/// [`route`], with the number of fruitless swaps before the shortest-path fallback given
/// (`None`: `10·R`); the tests force the fallback with small values.
fn route_with(
    c: &Circuit,
    device: &Device,
    opts: &RouteOptions,
    patience: Option<usize>,
) -> Result<Routed, RouteError> {
    exec::validate(c)?;
    let n = c.num_qubits;
    if n > device.qubits() {
        return Err(RouteError::TooManyQubits {
            circuit: n,
            available: device.qubits(),
            device: device.name().to_string(),
        });
    }
    let fits = fits_as_is(&c.ops, device);
    let native = device.native_gates();

    // 1. Decomposition of gates on three or more qubits.
    let mut prep = Prep {
        native,
        keep_multi: fits || device.is_all_to_all(),
        budget: Budget::new(ROUTE_GATES_MAX),
        phase: 0.0,
        translated: 0,
        next_gate: 0,
    };
    let items = prep.ops(&c.ops, true).map_err(|f| {
        fail_error(
            c,
            f,
            ROUTE_GATES_MAX,
            "decomposing the input's gates on three or more qubits".into(),
        )
    })?;

    // 2. Routing.
    let region: Vec<u32> = if fits {
        (0..n).collect()
    } else {
        routing_region(device, n)?
    };
    let r = region.len();
    let input_gates = count_gates(&items);
    let gates_max = ROUTE_GATES_PER_INPUT_GATE_AND_QUBIT
        .saturating_mul(input_gates.saturating_add(r))
        .saturating_mul(r.max(1))
        .min(ROUTE_GATES_MAX);
    let reason = format!(
        "{ROUTE_GATES_PER_INPUT_GATE_AND_QUBIT} gates per input gate and routed qubit: {input_gates} gates after decomposition, {r} routed qubits, at most {ROUTE_GATES_MAX}"
    );
    let mut router = Router::new(device, region, n as usize, c.num_clbits as usize, gates_max);
    if let Some(p) = patience {
        router.patience = p;
    }
    let mut routed = router
        .block(items)
        .map_err(|f| fail_error(c, f, gates_max, reason.clone()))?;
    if opts.restore_layout {
        let identity: Vec<usize> = (0..r).collect();
        let back = router
            .permute_to(&identity)
            .map_err(|f| fail_error(c, f, gates_max, reason.clone()))?;
        routed.extend(back);
    }
    let routed = float_measurements(routed, n);
    let final_layout: Vec<u32> = (0..n).map(|l| router.phys(l)).collect();
    let swaps = router.swaps;
    let num_qubits = router.region.iter().max().map_or(n, |&m| (m + 1).max(n));

    // 3. Basis translation.
    let mut tx = Translator::new(c, device, gates_max, reason);
    let ops = tx.block(routed, true)?;

    let qregs = if swaps == 0 && num_qubits == n {
        c.qregs.clone()
    } else {
        vec![Register {
            name: "$".into(),
            offset: 0,
            size: num_qubits,
        }]
    };
    Ok(Routed {
        circuit: Circuit {
            num_qubits,
            num_clbits: c.num_clbits,
            qregs,
            cregs: c.cregs.clone(),
            ops,
            global_phase: c.global_phase + prep.phase + tx.phase,
        },
        initial_layout: (0..n).collect(),
        final_layout,
        swaps,
        translated_gates: prep.translated + tx.translated,
    })
}

// ---------------------------------------------------------------------------------------------
// Shared pieces.

/// Where a gate of the pipeline comes from: the pre-order index of the input gate (operations in
/// order, then-branch before else-branch), and whether it is that gate unchanged.
#[derive(Clone, Copy, Debug)]
struct Origin {
    gate: usize,
    whole: bool,
}

/// The origin of a routing swap.
const SWAP: Origin = Origin {
    gate: usize::MAX,
    whole: false,
};

/// An operation between the stages: logical qubits before routing, device qubits after.
#[derive(Clone, Debug)]
enum Item {
    Gate(Gate, Origin),
    Swap(u32, u32),
    Measure {
        qubit: u32,
        clbit: u32,
    },
    Reset {
        qubit: u32,
    },
    Barrier {
        qubits: Vec<u32>,
    },
    If {
        cond: Condition,
        then_ops: Vec<Item>,
        else_ops: Vec<Item>,
    },
}

fn count_gates(items: &[Item]) -> usize {
    items
        .iter()
        .map(|i| match i {
            Item::Gate(..) | Item::Swap(..) => 1,
            Item::If {
                then_ops, else_ops, ..
            } => count_gates(then_ops) + count_gates(else_ops),
            _ => 0,
        })
        .sum()
}

/// An internal failure, given its context by the caller.
#[derive(Debug)]
enum Fail {
    /// The gate budget ran out.
    Gates,
    /// A gate to decompose is not unitary (its error), from the input gate `origin`.
    NotUnitary(f64, Origin),
}

fn fail_error(c: &Circuit, f: Fail, gates_max: usize, reason: String) -> RouteError {
    match f {
        Fail::Gates => RouteError::TooManyGates { gates_max, reason },
        Fail::NotUnitary(error, o) => {
            let (gate, position) = describe_origin(c, o);
            RouteError::NotUnitary {
                gate,
                position,
                error,
            }
        }
    }
}

/// The input gate an origin names, as written, and its position.
fn describe_origin(c: &Circuit, o: Origin) -> (String, String) {
    fn find(
        c: &Circuit,
        ops: &[Op],
        prefix: &str,
        want: usize,
        seen: &mut usize,
    ) -> Option<(String, String)> {
        for (i, op) in ops.iter().enumerate() {
            let position = format!("{prefix}op {i}");
            match op {
                Op::Gate(g) => {
                    if *seen == want {
                        return Some((exec::describe_gate(c, g), position));
                    }
                    *seen += 1;
                }
                Op::If {
                    then_ops, else_ops, ..
                } => {
                    if let Some(r) = find(
                        c,
                        then_ops,
                        &format!("{position}, then-branch "),
                        want,
                        seen,
                    ) {
                        return Some(r);
                    }
                    if let Some(r) = find(
                        c,
                        else_ops,
                        &format!("{position}, else-branch "),
                        want,
                        seen,
                    ) {
                        return Some(r);
                    }
                }
                _ => {}
            }
        }
        None
    }
    if o.gate == usize::MAX {
        return ("swap".into(), "inserted by routing".into());
    }
    find(c, &c.ops, "", o.gate, &mut 0).unwrap_or_else(|| ("a gate".into(), "unknown".into()))
}

/// A count of emitted gates against a limit.
struct Budget {
    used: usize,
    max: usize,
}

impl Budget {
    fn new(max: usize) -> Self {
        Budget { used: 0, max }
    }

    /// Counts `n` more gates.
    fn take(&mut self, n: usize) -> Result<(), Fail> {
        self.used = self.used.saturating_add(n);
        if self.used > self.max {
            Err(Fail::Gates)
        } else {
            Ok(())
        }
    }

    /// Fails when `n` more gates would not fit, without counting them.
    fn room(&self, n: usize) -> Result<(), Fail> {
        if self.used.saturating_add(n) > self.max {
            Err(Fail::Gates)
        } else {
            Ok(())
        }
    }
}

/// The table entry `name` (only called with names that are in the table).
fn def(name: &str) -> &'static GateDef {
    match gates::lookup(name) {
        Some(d) => d,
        None => unreachable!("`{name}` is in the gate table"),
    }
}

/// The table gate `d` on `qubits` (its controls first), as the front end builds it.
fn table_gate(d: &GateDef, params: &[f64], qubits: &[u32]) -> Gate {
    Gate {
        name: d.name.into(),
        params: params.to_vec(),
        targets: qubits[d.controls..].to_vec(),
        controls: qubits[..d.controls].to_vec(),
        ctrl_state: (1u64 << d.controls) - 1,
        matrix: (d.target_matrix)(params),
    }
}

fn low_mask(n: usize) -> u64 {
    if n >= 64 {
        u64::MAX
    } else {
        (1u64 << n) - 1
    }
}

fn same(a: &Matrix, b: &Matrix) -> bool {
    a.dim == b.dim && a.data.len() == b.data.len() && a.max_diff(b) <= SAME
}

fn cis(x: f64) -> C64 {
    C64::from_polar(1.0, x)
}

fn m2(a: C64, b: C64, c: C64, d: C64) -> Matrix {
    Matrix {
        dim: 2,
        data: vec![a, b, c, d],
    }
}

fn diag2(a: C64, b: C64) -> Matrix {
    Matrix::diagonal(&[a, b])
}

fn x_matrix() -> Matrix {
    def("x").matrix(&[])
}

/// `x` wrapped into `(-π, π]`.
fn wrap(x: f64) -> f64 {
    let y = x.rem_euclid(2.0 * PI);
    if y > PI {
        y - 2.0 * PI
    } else {
        y
    }
}

/// Whether a 2×2 matrix is `e^{iβ}·I` (to [`TINY`]), and `β`.
fn scalar_phase(m: &Matrix) -> Option<f64> {
    let (a, b, c, d) = (m.at(0, 0), m.at(0, 1), m.at(1, 0), m.at(1, 1));
    (b.norm() <= TINY
        && c.norm() <= TINY
        && (a - d).norm() <= TINY
        && (a.norm() - 1.0).abs() <= TINY)
        .then(|| a.arg())
}

/// `β` with `target = e^{iβ}·approx` (to [`FIT`]), if there is one.
fn fit(target: &Matrix, approx: &Matrix) -> Option<f64> {
    if target.dim != approx.dim {
        return None;
    }
    let s: C64 = approx
        .data
        .iter()
        .zip(&target.data)
        .map(|(a, t)| a.conj() * t)
        .sum();
    if s.norm() < 1e-9 {
        return None;
    }
    let beta = s.arg();
    (target.max_diff(&approx.scale(cis(beta))) <= FIT).then_some(beta)
}

/// The full matrix of `g` on its qubits, controls first (for gates on at most 6 qubits).
fn full_matrix(g: &Gate) -> Option<Matrix> {
    let k = g.controls.len() + g.targets.len();
    (k <= 6 && g.matrix.dim == 1 << g.targets.len())
        .then(|| g.matrix.controlled(g.controls.len(), g.ctrl_state))
}

/// The table gate `g` is, exactly: its own name with its parameters, or a parameter-free gate of
/// the same size (`ctrl @ ctrl @ x` is `ccx`).
fn table_match(g: &Gate, full: &Matrix) -> Option<(&'static GateDef, Vec<f64>)> {
    let k = g.controls.len() + g.targets.len();
    if k == 0 {
        return None;
    }
    if let Some(d) = gates::lookup(&g.name) {
        if d.qubits == k && d.params == g.params.len() && same(&d.matrix(&g.params), full) {
            return Some((d, g.params.clone()));
        }
    }
    gates::table()
        .iter()
        .find(|d| d.qubits == k && d.params == 0 && !d.is_primitive() && same(&d.matrix(&[]), full))
        .map(|d| (d, Vec::new()))
}

/// `m = P · diag(e^{ia}, e^{ib}) · P†` for a 2×2 unitary: `(P, a, b)`.
fn eigen(m: &Matrix) -> (Matrix, f64, f64) {
    let (m00, m01, m10, m11) = (m.at(0, 0), m.at(0, 1), m.at(1, 0), m.at(1, 1));
    let half_tr = (m00 + m11) * 0.5;
    let det = m00 * m11 - m01 * m10;
    let disc = (half_tr * half_tr - det).sqrt();
    let (l1, l2) = (half_tr + disc, half_tr - disc);
    if (l1 - l2).norm() < 1e-12 {
        let a = half_tr.arg();
        return (Matrix::identity(2), a, a);
    }
    // The columns of m − l2·I span the eigenvector of l1.
    let c0 = [m00 - l2, m10];
    let c1 = [m01, m11 - l2];
    let norm = |v: &[C64; 2]| (v[0].norm_sqr() + v[1].norm_sqr()).sqrt();
    let v = if norm(&c0) >= norm(&c1) { c0 } else { c1 };
    let s = norm(&v);
    let v1 = [v[0] / s, v[1] / s];
    let v2 = [-v1[1].conj(), v1[0].conj()];
    (m2(v1[0], v2[0], v1[1], v2[1]), l1.arg(), l2.arg())
}

/// A multi-controlled one-qubit gate: `m` on `target` when `controls[i]` has bit `i` of `state`.
#[derive(Clone, Debug)]
struct Mc {
    controls: Vec<u32>,
    state: u64,
    target: u32,
    m: Matrix,
}

/// A step of an exact expansion: a multi-controlled one-qubit gate or a global phase.
#[derive(Clone, Debug)]
enum Prim {
    Mc(Mc),
    Phase(f64),
}

fn one(q: u32, m: Matrix) -> Prim {
    Prim::Mc(Mc {
        controls: Vec::new(),
        state: 0,
        target: q,
        m,
    })
}

fn cx_prim(c: u32, t: u32) -> Prim {
    Prim::Mc(Mc {
        controls: vec![c],
        state: 1,
        target: t,
        m: x_matrix(),
    })
}

/// A step of a decomposition into table gates on at most two qubits.
#[derive(Clone, Debug)]
enum Piece {
    Gate(Gate),
    Phase(f64),
}

// ---------------------------------------------------------------------------------------------
// Exact decompositions.

/// Expands table gate `d` on `qs` into `U`, `CX` (as one-control [`Mc`]s) and phases.
fn table_prims(
    d: &GateDef,
    params: &[f64],
    qs: &[u32],
    b: &mut Budget,
    out: &mut Vec<Prim>,
) -> Result<(), Fail> {
    match d.qubits {
        0 => {
            out.push(Prim::Phase(params.first().copied().unwrap_or(0.0)));
            return Ok(());
        }
        1 => {
            b.take(1)?;
            out.push(one(qs[0], d.matrix(params)));
            return Ok(());
        }
        _ => {}
    }
    if d.name == "CX" || d.name == "cx" {
        b.take(1)?;
        out.push(cx_prim(qs[0], qs[1]));
        return Ok(());
    }
    for step in (d.decomposition)(params) {
        let mapped: Vec<u32> = step.args.iter().map(|&a| qs[a]).collect();
        table_prims(def(step.name), &step.params, &mapped, b, out)?;
    }
    Ok(())
}

/// Decomposes table gate `d` on `qs` into table gates on at most two qubits.
fn table_pieces(
    d: &GateDef,
    params: &[f64],
    qs: &[u32],
    b: &mut Budget,
    out: &mut Vec<Piece>,
) -> Result<(), Fail> {
    if d.qubits == 0 {
        out.push(Piece::Phase(params.first().copied().unwrap_or(0.0)));
        return Ok(());
    }
    if qs.len() <= 2 {
        b.take(1)?;
        out.push(Piece::Gate(table_gate(d, params, qs)));
        return Ok(());
    }
    for step in (d.decomposition)(params) {
        let mapped: Vec<u32> = step.args.iter().map(|&a| qs[a]).collect();
        table_pieces(def(step.name), &step.params, &mapped, b, out)?;
    }
    Ok(())
}

/// Decomposes any gate into table gates on at most two qubits (and phases), exactly.
fn pieces_of(g: &Gate, o: Origin, b: &mut Budget, out: &mut Vec<Piece>) -> Result<(), Fail> {
    let qs: Vec<u32> = g.qubits().collect();
    if let Some(full) = full_matrix(g) {
        if let Some((d, p)) = table_match(g, &full) {
            return table_pieces(d, &p, &qs, b, out);
        }
    }
    let nc = g.controls.len();
    // Beyond this the multi-controlled phases or the two-level rotations alone exceed any gate
    // limit (and the unitarity check below would be slow).
    if qs.len() > 24 || g.targets.len() > 6 {
        return Err(Fail::Gates);
    }
    let err = g.matrix.unitarity_error();
    if err.is_nan() || err > UNITARY {
        return Err(Fail::NotUnitary(err, o));
    }
    let state = g.ctrl_state & low_mask(nc);
    match g.targets.len() {
        0 => controlled_phase(&g.controls, state, g.matrix.data[0].arg(), b, out),
        1 => mc1(
            &Mc {
                controls: g.controls.clone(),
                state,
                target: g.targets[0],
                m: g.matrix.clone(),
            },
            b,
            out,
        ),
        _ => {
            let mut prims = Vec::new();
            target_prims(g, b, &mut prims)?;
            for p in prims {
                match p {
                    Prim::Phase(gamma) => controlled_phase(&g.controls, state, gamma, b, out)?,
                    Prim::Mc(mc) => {
                        let mut controls = g.controls.clone();
                        controls.extend(&mc.controls);
                        let mc = Mc {
                            controls,
                            state: state | (mc.state << nc),
                            target: mc.target,
                            m: mc.m,
                        };
                        mc1(&mc, b, out)?;
                    }
                }
            }
            Ok(())
        }
    }
}

/// The unitary of `g` on its targets alone (controls ignored), as multi-controlled one-qubit
/// gates on the targets: by the table (the gate itself, its inverse, or a parameter-free gate
/// with that matrix), else by two-level rotations.
fn target_prims(g: &Gate, b: &mut Budget, out: &mut Vec<Prim>) -> Result<(), Fail> {
    let t = g.targets.len();
    let m = &g.matrix;
    if let Some(d) = gates::lookup(&g.name) {
        if d.qubits == t && d.params == g.params.len() {
            let tm = d.matrix(&g.params);
            if same(&tm, m) {
                return table_prims(d, &g.params, &g.targets, b, out);
            }
            if same(&tm.adjoint(), m) {
                let mut fwd = Vec::new();
                table_prims(d, &g.params, &g.targets, b, &mut fwd)?;
                out.extend(fwd.into_iter().rev().map(|p| match p {
                    Prim::Phase(x) => Prim::Phase(-x),
                    Prim::Mc(mut mc) => {
                        mc.m = mc.m.adjoint();
                        Prim::Mc(mc)
                    }
                }));
                return Ok(());
            }
        }
    }
    if let Some(d) = gates::table()
        .iter()
        .find(|d| d.qubits == t && d.params == 0 && !d.is_primitive() && same(&d.matrix(&[]), m))
    {
        return table_prims(d, &[], &g.targets, b, out);
    }
    two_level(m, &g.targets, b, out)
}

/// The multi-controlled gate `m` on bit `j` of `targets`, controlled by the other bits of
/// `targets` having their values in `s`.
fn on_bit(targets: &[u32], j: usize, s: usize, m: Matrix) -> Mc {
    let mut controls = Vec::with_capacity(targets.len() - 1);
    let mut state = 0u64;
    for (i, &q) in targets.iter().enumerate() {
        if i != j {
            if s >> i & 1 == 1 {
                state |= 1 << controls.len();
            }
            controls.push(q);
        }
    }
    Mc {
        controls,
        state,
        target: targets[j],
        m,
    }
}

/// Any unitary `m` on `targets` as two-level rotations (Givens eliminations), each a
/// multi-controlled one-qubit gate between Gray-code neighbours, and a diagonal of phases.
fn two_level(m: &Matrix, targets: &[u32], b: &mut Budget, out: &mut Vec<Prim>) -> Result<(), Fail> {
    let t = targets.len();
    let d = 1usize << t;
    b.room((d * (d - 1) / 2).saturating_mul(2 * t - 1))?;
    let mut a = m.data.clone();
    let mut rotations: Vec<(usize, usize, Matrix)> = Vec::new();
    for c in 0..d {
        for r in c + 1..d {
            let y = a[r * d + c];
            if y == C64::new(0.0, 0.0) {
                continue;
            }
            let x = a[c * d + c];
            let nrm = (x.norm_sqr() + y.norm_sqr()).sqrt();
            let g = m2(x.conj() / nrm, y.conj() / nrm, -y / nrm, x / nrm);
            for col in 0..d {
                let (u, v) = (a[c * d + col], a[r * d + col]);
                a[c * d + col] = g.data[0] * u + g.data[1] * v;
                a[r * d + col] = g.data[2] * u + g.data[3] * v;
            }
            rotations.push((c, r, g));
        }
    }
    // G_K ⋯ G_1 · m = D, so m = G_1† ⋯ G_K† · D: D first, then G_K†, …, G_1†.
    for s in 0..d {
        let delta = a[s * d + s].arg();
        if delta.abs() > TINY {
            let ph = if s & 1 == 1 {
                diag2(C64::new(1.0, 0.0), cis(delta))
            } else {
                diag2(cis(delta), C64::new(1.0, 0.0))
            };
            b.take(1)?;
            out.push(Prim::Mc(on_bit(targets, 0, s, ph)));
        }
    }
    for (i, j, g) in rotations.into_iter().rev() {
        let v = g.adjoint();
        let diff = i ^ j;
        let bits: Vec<usize> = (0..t).filter(|&k| diff >> k & 1 == 1).collect();
        let (&last, path) = match bits.split_last() {
            Some(x) => x,
            None => continue,
        };
        // Move |i⟩ next to |j⟩ by flipping the lower differing bits (multi-controlled x between
        // Gray-code neighbours), rotate, and move back. `last` is the highest differing bit and
        // i < j, so |i⟩ arrives with that bit 0: `v`'s rows and columns keep their order.
        let mut flips = Vec::with_capacity(path.len());
        let mut s = i;
        for &k in path {
            flips.push(on_bit(targets, k, s, x_matrix()));
            s ^= 1 << k;
        }
        b.take(2 * flips.len() + 1)?;
        out.extend(flips.iter().cloned().map(Prim::Mc));
        out.push(Prim::Mc(on_bit(targets, last, j, v)));
        out.extend(flips.into_iter().rev().map(Prim::Mc));
    }
    Ok(())
}

/// A phase `e^{iγ}` when `controls` have the values in `state` (a global phase without
/// controls).
fn controlled_phase(
    controls: &[u32],
    state: u64,
    gamma: f64,
    b: &mut Budget,
    out: &mut Vec<Piece>,
) -> Result<(), Fail> {
    if controls.is_empty() {
        out.push(Piece::Phase(gamma));
        return Ok(());
    }
    let zeros: Vec<u32> = flipped(controls, state);
    b.take(2 * zeros.len())?;
    let x = def("x");
    for &z in &zeros {
        out.push(Piece::Gate(table_gate(x, &[], &[z])));
    }
    mcp(gamma, controls, b, out)?;
    for &z in &zeros {
        out.push(Piece::Gate(table_gate(x, &[], &[z])));
    }
    Ok(())
}

/// The controls that must be 0.
fn flipped(controls: &[u32], state: u64) -> Vec<u32> {
    controls
        .iter()
        .enumerate()
        .filter(|&(i, _)| i >= 64 || state >> i & 1 == 0)
        .map(|(_, &q)| q)
        .collect()
}

/// A phase `e^{iλ}` on the states where every qubit of `qs` is 1: `p`, `cp`, or parities
/// computed with `cx` and phased with `p`.
fn mcp(lambda: f64, qs: &[u32], b: &mut Budget, out: &mut Vec<Piece>) -> Result<(), Fail> {
    let m = qs.len();
    match m {
        0 => out.push(Piece::Phase(lambda)),
        1 => {
            b.take(1)?;
            out.push(Piece::Gate(table_gate(def("p"), &[lambda], qs)));
        }
        2 => {
            b.take(1)?;
            out.push(Piece::Gate(table_gate(def("cp"), &[lambda], qs)));
        }
        _ => {
            if m > 20 {
                return Err(Fail::Gates);
            }
            b.room(m * (1 << m))?;
            let (p, cx) = (def("p"), def("cx"));
            let scale = lambda / (1u64 << (m - 1)) as f64;
            for set in 1u32..(1 << m) {
                let members: Vec<u32> = (0..m)
                    .filter(|i| set >> i & 1 == 1)
                    .map(|i| qs[i])
                    .collect();
                let Some((&last, rest)) = members.split_last() else {
                    continue;
                };
                let sign = if members.len() % 2 == 1 { 1.0 } else { -1.0 };
                b.take(2 * rest.len() + 1)?;
                for &q in rest {
                    out.push(Piece::Gate(table_gate(cx, &[], &[q, last])));
                }
                out.push(Piece::Gate(table_gate(p, &[sign * scale], &[last])));
                for &q in rest.iter().rev() {
                    out.push(Piece::Gate(table_gate(cx, &[], &[q, last])));
                }
            }
        }
    }
    Ok(())
}

/// A one-qubit unitary as one table gate (a named gate when it is one exactly, else `U`) and a
/// phase; nothing but the phase when it is a multiple of the identity.
fn one_q_pieces(q: u32, m: &Matrix, b: &mut Budget, out: &mut Vec<Piece>) -> Result<(), Fail> {
    if let Some(beta) = scalar_phase(m) {
        out.push(Piece::Phase(beta));
        return Ok(());
    }
    b.take(1)?;
    if let Some(d) = gates::table()
        .iter()
        .find(|d| d.qubits == 1 && d.params == 0 && same(&d.matrix(&[]), m))
    {
        out.push(Piece::Gate(table_gate(d, &[], &[q])));
        return Ok(());
    }
    let (theta, phi, lambda, alpha) = euler_u(m);
    out.push(Piece::Gate(table_gate(
        def("U"),
        &[theta, wrap(phi), wrap(lambda)],
        &[q],
    )));
    out.push(Piece::Phase(alpha));
    Ok(())
}

/// A multi-controlled one-qubit gate as table gates on at most two qubits: a table gate when it
/// is one (`cx`, `ccx`, `c3x`, `cp`, …), else `P† · C(diag(e^{ia})) · C(diag(e^{ib−ia})) · P` on
/// the eigenbasis `P` of `m`, the controlled phases from [`mcp`]. Controls on 0 are flipped
/// around it with `x`.
fn mc1(mc: &Mc, b: &mut Budget, out: &mut Vec<Piece>) -> Result<(), Fail> {
    let n = mc.controls.len();
    if n == 0 {
        return one_q_pieces(mc.target, &mc.m, b, out);
    }
    let zeros = flipped(&mc.controls, mc.state);
    b.take(2 * zeros.len())?;
    let x = def("x");
    for &z in &zeros {
        out.push(Piece::Gate(table_gate(x, &[], &[z])));
    }
    let mut qs = mc.controls.clone();
    qs.push(mc.target);
    if let Some(d) = gates::table().iter().find(|d| {
        d.controls == n
            && d.qubits == n + 1
            && d.params == 0
            && !d.is_primitive()
            && same(&(d.target_matrix)(&[]), &mc.m)
    }) {
        table_pieces(d, &[], &qs, b, out)?;
    } else if n == 1 && mc.m.is_diagonal() && (mc.m.at(0, 0) - 1.0).norm() <= SAME {
        b.take(1)?;
        out.push(Piece::Gate(table_gate(
            def("cp"),
            &[mc.m.at(1, 1).arg()],
            &qs,
        )));
    } else {
        let (p, a, bb) = eigen(&mc.m);
        let basis = !same(&p, &Matrix::identity(2));
        if basis {
            one_q_pieces(mc.target, &p.adjoint(), b, out)?;
        }
        if a.abs() > TINY {
            mcp(a, &mc.controls, b, out)?;
        }
        if wrap(bb - a).abs() > TINY {
            mcp(bb - a, &qs, b, out)?;
        }
        if basis {
            one_q_pieces(mc.target, &p, b, out)?;
        }
    }
    for &z in &zeros {
        out.push(Piece::Gate(table_gate(x, &[], &[z])));
    }
    Ok(())
}

/// Any gate as `U` matrices, `CX` and phases (one-qubit [`Mc`]s without controls, one-control
/// ones with `x`), exactly.
fn to_prims(g: &Gate, o: Origin, b: &mut Budget) -> Result<Vec<Prim>, Fail> {
    let qs: Vec<u32> = g.qubits().collect();
    let mut out = Vec::new();
    match qs.len() {
        0 => {
            out.push(Prim::Phase(g.matrix.data.first().map_or(0.0, |z| z.arg())));
            return Ok(out);
        }
        1 => {
            let full = g.matrix.controlled(g.controls.len(), g.ctrl_state);
            let err = full.unitarity_error();
            if err.is_nan() || err > UNITARY {
                return Err(Fail::NotUnitary(err, o));
            }
            b.take(1)?;
            out.push(one(qs[0], full));
            return Ok(out);
        }
        _ => {}
    }
    if let Some(full) = full_matrix(g) {
        if let Some((d, p)) = table_match(g, &full) {
            table_prims(d, &p, &qs, b, &mut out)?;
            return Ok(out);
        }
    }
    let mut pieces = Vec::new();
    pieces_of(g, o, b, &mut pieces)?;
    for piece in pieces {
        match piece {
            Piece::Phase(x) => out.push(Prim::Phase(x)),
            Piece::Gate(pg) => {
                let pq: Vec<u32> = pg.qubits().collect();
                table_prims(def(&pg.name), &pg.params, &pq, b, &mut out)?;
            }
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Stage 1: decomposition of gates on three or more qubits.

/// Whether every gate on two or more qubits already acts on pairwise coupled qubits.
fn fits_as_is(ops: &[Op], d: &Device) -> bool {
    ops.iter().all(|op| match op {
        Op::Gate(g) => {
            let qs: Vec<u32> = g.qubits().collect();
            qs.iter()
                .enumerate()
                .all(|(i, &a)| qs[i + 1..].iter().all(|&b| d.coupled(a, b)))
        }
        Op::If {
            then_ops, else_ops, ..
        } => fits_as_is(then_ops, d) && fits_as_is(else_ops, d),
        _ => true,
    })
}

/// Whether a gate is native on a device with native set `native` (as [`Device::check`] decides).
fn is_native(native: Option<&BTreeSet<String>>, g: &Gate) -> bool {
    match native {
        None => true,
        Some(set) => {
            set.contains(&g.name)
                && gates::lookup(&g.name).map(|d| d.qubits) == Some(g.qubits().count())
        }
    }
}

struct Prep<'d> {
    native: Option<&'d BTreeSet<String>>,
    keep_multi: bool,
    budget: Budget,
    phase: f64,
    translated: usize,
    next_gate: usize,
}

impl Prep<'_> {
    fn ops(&mut self, ops: &[Op], top: bool) -> Result<Vec<Item>, Fail> {
        let mut out = Vec::with_capacity(ops.len());
        for op in ops {
            match op {
                Op::Gate(g) => {
                    let o = Origin {
                        gate: self.next_gate,
                        whole: true,
                    };
                    self.next_gate += 1;
                    let k = g.qubits().count();
                    if k <= 2 || (self.keep_multi && is_native(self.native, g)) {
                        self.budget.take(1)?;
                        out.push(Item::Gate(g.clone(), o));
                        continue;
                    }
                    self.translated += 1;
                    let mut pieces = Vec::new();
                    pieces_of(g, o, &mut self.budget, &mut pieces)?;
                    let part = Origin { whole: false, ..o };
                    for p in pieces {
                        match p {
                            Piece::Gate(pg) => out.push(Item::Gate(pg, part)),
                            Piece::Phase(x) if top => self.phase += x,
                            Piece::Phase(_) => {}
                        }
                    }
                }
                Op::Measure { qubit, clbit } => out.push(Item::Measure {
                    qubit: *qubit,
                    clbit: *clbit,
                }),
                Op::Reset { qubit } => out.push(Item::Reset { qubit: *qubit }),
                Op::Barrier { qubits } => out.push(Item::Barrier {
                    qubits: qubits.clone(),
                }),
                Op::If {
                    cond,
                    then_ops,
                    else_ops,
                } => {
                    let then_ops = self.ops(then_ops, false)?;
                    let else_ops = self.ops(else_ops, false)?;
                    out.push(Item::If {
                        cond: cond.clone(),
                        then_ops,
                        else_ops,
                    });
                }
            }
        }
        Ok(out)
    }
}

// ---------------------------------------------------------------------------------------------
// Stage 2: routing.

/// The device qubits routing may use: the connected component of qubit 0 among qubits `0..m`,
/// for the smallest `m ≥ n` where that component holds qubits `0..n`.
fn routing_region(device: &Device, n: u32) -> Result<Vec<u32>, RouteError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    if device.is_all_to_all() {
        return Ok((0..n).collect());
    }
    let total = device.qubits() as usize;
    let mut edges: Vec<(u32, u32)> = device.coupling().map(|(a, b)| (b, a)).collect();
    edges.sort_unstable();
    let mut parent: Vec<usize> = (0..total).collect();
    let mut need: Vec<u32> = (0..total).map(|v| u32::from(v < n as usize)).collect();
    fn find(parent: &mut [usize], mut v: usize) -> usize {
        while parent[v] != v {
            parent[v] = parent[parent[v]];
            v = parent[v];
        }
        v
    }
    let mut e = 0;
    let mut end = None;
    for v in 0..total {
        while e < edges.len() && edges[e].0 as usize == v {
            let (ra, rb) = (find(&mut parent, edges[e].1 as usize), find(&mut parent, v));
            if ra != rb {
                let (lo, hi) = (ra.min(rb), ra.max(rb));
                parent[hi] = lo;
                need[lo] += need[hi];
            }
            e += 1;
        }
        if v + 1 >= n as usize {
            let r0 = find(&mut parent, 0);
            if need[r0] == n {
                end = Some(v + 1);
                break;
            }
        }
    }
    let Some(m) = end else {
        let r0 = find(&mut parent, 0);
        let qubit = (0..n)
            .find(|&q| find(&mut parent, q as usize) != r0)
            .unwrap_or(0);
        return Err(RouteError::Disconnected {
            qubit,
            last: n - 1,
            device: device.name().to_string(),
        });
    };
    let r0 = find(&mut parent, 0);
    let region: Vec<u32> = (0..m)
        .filter(|&v| find(&mut parent, v) == r0)
        .map(|v| v as u32)
        .collect();
    if region.len() > ROUTE_QUBITS_MAX as usize {
        return Err(RouteError::TooManyRoutedQubits {
            qubits: region.len() as u32,
            max: ROUTE_QUBITS_MAX,
            last: n - 1,
            device: device.name().to_string(),
        });
    }
    Ok(region)
}

/// A node of a block's dependency graph.
struct Node {
    item: Option<Item>,
    /// The logical qubits of a gate on two or more qubits (which must be coupled); else empty.
    multi: Vec<usize>,
    succ: Vec<usize>,
}

/// The routing state. Positions are indices into `region` ("slots"); logical qubits `0..n` are
/// the circuit's, `n..R` the idle qubits of the region (in |0⟩).
struct Router {
    region: Vec<u32>,
    adj: Vec<Vec<usize>>,
    all_to_all: bool,
    dist: Vec<u16>,
    tree: Option<(Vec<usize>, Vec<usize>, Vec<usize>)>,
    slot_of: Vec<usize>,
    log_of: Vec<usize>,
    decay: Vec<f64>,
    n: usize,
    clbits: usize,
    swaps: usize,
    budget: Budget,
    /// Fruitless swaps before the shortest-path fallback.
    patience: usize,
}

impl Router {
    fn new(device: &Device, region: Vec<u32>, n: usize, clbits: usize, gates_max: usize) -> Self {
        let r = region.len();
        let all_to_all = device.is_all_to_all();
        let mut adj = vec![Vec::new(); r];
        if !all_to_all {
            let index: BTreeMap<u32, usize> =
                region.iter().enumerate().map(|(i, &q)| (q, i)).collect();
            for (a, b) in device.coupling() {
                if let (Some(&i), Some(&j)) = (index.get(&a), index.get(&b)) {
                    adj[i].push(j);
                    adj[j].push(i);
                }
            }
            for v in &mut adj {
                v.sort_unstable();
                v.dedup();
            }
        }
        Router {
            region,
            adj,
            all_to_all,
            dist: Vec::new(),
            tree: None,
            slot_of: (0..r).collect(),
            log_of: (0..r).collect(),
            decay: vec![1.0; r],
            n,
            clbits,
            swaps: 0,
            budget: Budget::new(gates_max),
            patience: 10 * r.max(1),
        }
    }

    /// The device qubit holding logical qubit `l`.
    fn phys(&self, l: u32) -> u32 {
        self.slot_of
            .get(l as usize)
            .and_then(|&s| self.region.get(s))
            .copied()
            .unwrap_or(l)
    }

    fn coupled(&self, a: usize, b: usize) -> bool {
        a != b && (self.all_to_all || self.adj[a].binary_search(&b).is_ok())
    }

    fn distance(&mut self, a: usize, b: usize) -> u32 {
        if self.all_to_all {
            return u32::from(a != b);
        }
        let r = self.region.len();
        if self.dist.is_empty() {
            self.dist = vec![u16::MAX; r * r];
            let mut queue = VecDeque::new();
            for s in 0..r {
                self.dist[s * r + s] = 0;
                queue.push_back(s);
                while let Some(v) = queue.pop_front() {
                    let dv = self.dist[s * r + v];
                    for &w in &self.adj[v] {
                        if self.dist[s * r + w] == u16::MAX {
                            self.dist[s * r + w] = dv + 1;
                            queue.push_back(w);
                        }
                    }
                }
            }
        }
        u32::from(self.dist[a * r + b])
    }

    fn executable(&self, node: &Node) -> bool {
        let m = &node.multi;
        m.iter().enumerate().all(|(i, &a)| {
            m[i + 1..]
                .iter()
                .all(|&b| self.coupled(self.slot_of[a], self.slot_of[b]))
        })
    }

    /// Exchanges the contents of slots `a` and `b`.
    fn swap(&mut self, a: usize, b: usize, out: &mut Vec<Item>) -> Result<(), Fail> {
        self.budget.take(3)?;
        let (la, lb) = (self.log_of[a], self.log_of[b]);
        self.log_of.swap(a, b);
        self.slot_of[la] = b;
        self.slot_of[lb] = a;
        self.swaps += 1;
        out.push(Item::Swap(self.region[a], self.region[b]));
        Ok(())
    }

    fn map(&self, qs: &[u32]) -> Vec<u32> {
        qs.iter().map(|&q| self.phys(q)).collect()
    }

    /// The wires (qubits `0..n`, then classical bits) an item depends on.
    fn wires(&self, item: &Item, out: &mut BTreeSet<usize>) {
        match item {
            Item::Gate(g, _) => {
                if g.qubits().count() == 0 {
                    out.extend(0..self.n);
                }
                out.extend(g.qubits().map(|q| q as usize));
            }
            Item::Swap(a, b) => out.extend([*a as usize, *b as usize]),
            Item::Measure { qubit, clbit } => {
                out.insert(*qubit as usize);
                out.insert(self.n + *clbit as usize);
            }
            Item::Reset { qubit } => {
                out.insert(*qubit as usize);
            }
            Item::Barrier { qubits } => {
                if qubits.is_empty() {
                    out.extend(0..self.n);
                }
                out.extend(qubits.iter().map(|&q| q as usize));
            }
            Item::If {
                cond,
                then_ops,
                else_ops,
            } => {
                out.extend(cond.clbits.iter().map(|&b| self.n + b as usize));
                for i in then_ops.iter().chain(else_ops) {
                    self.wires(i, out);
                }
            }
        }
    }

    /// Routes a block of items (a circuit's operations or a branch).
    fn block(&mut self, items: Vec<Item>) -> Result<Vec<Item>, Fail> {
        let count = items.len();
        let mut nodes: Vec<Node> = Vec::with_capacity(count);
        let mut last: Vec<Option<usize>> = vec![None; self.n + self.clbits];
        let mut indeg = vec![0usize; count];
        for (i, item) in items.into_iter().enumerate() {
            let mut wires = BTreeSet::new();
            self.wires(&item, &mut wires);
            for &w in &wires {
                if let Some(p) = last.get(w).copied().flatten() {
                    let s: &mut Vec<usize> = &mut nodes[p].succ;
                    if s.last() != Some(&i) {
                        s.push(i);
                        indeg[i] += 1;
                    }
                }
                if let Some(slot) = last.get_mut(w) {
                    *slot = Some(i);
                }
            }
            let multi = match &item {
                Item::Gate(g, _) if g.qubits().count() >= 2 => {
                    g.qubits().map(|q| q as usize).collect()
                }
                _ => Vec::new(),
            };
            nodes.push(Node {
                item: Some(item),
                multi,
                succ: Vec::new(),
            });
        }

        let mut out = Vec::with_capacity(count);
        let mut front: BTreeSet<usize> = (0..count).filter(|&i| indeg[i] == 0).collect();
        let mut stalled: Vec<(usize, usize)> = Vec::new();
        let mut since_reset = 0usize;
        while !front.is_empty() {
            let mut progressed = false;
            while let Some(&x) = front.iter().find(|&&x| self.executable(&nodes[x])) {
                front.remove(&x);
                if let Some(item) = nodes[x].item.take() {
                    self.execute(item, &mut out)?;
                }
                for s in std::mem::take(&mut nodes[x].succ) {
                    indeg[s] -= 1;
                    if indeg[s] == 0 {
                        front.insert(s);
                    }
                }
                progressed = true;
            }
            if front.is_empty() {
                break;
            }
            if progressed {
                stalled.clear();
                self.decay.iter_mut().for_each(|d| *d = 1.0);
                since_reset = 0;
            }
            if stalled.len() >= self.patience {
                // Undo the fruitless swaps and bring the lowest blocked gate together.
                while let Some((a, b)) = stalled.pop() {
                    out.pop();
                    self.budget.used = self.budget.used.saturating_sub(3);
                    self.swaps -= 1;
                    let (la, lb) = (self.log_of[a], self.log_of[b]);
                    self.log_of.swap(a, b);
                    self.slot_of[la] = b;
                    self.slot_of[lb] = a;
                }
                let Some(&x) = front.iter().find(|&&x| !nodes[x].multi.is_empty()) else {
                    break;
                };
                let m = nodes[x].multi.clone();
                let pair = m.iter().enumerate().find_map(|(i, &a)| {
                    m[i + 1..]
                        .iter()
                        .find(|&&b| !self.coupled(self.slot_of[a], self.slot_of[b]))
                        .map(|&b| (a, b))
                });
                if let Some((a, b)) = pair {
                    let path = self.path(self.slot_of[a], self.slot_of[b]);
                    if path.len() < 3 {
                        // Unreachable: the routing region is connected.
                        return Err(Fail::Gates);
                    }
                    for w in path.windows(2).take(path.len() - 2) {
                        self.swap(w[0], w[1], &mut out)?;
                    }
                }
                self.decay.iter_mut().for_each(|d| *d = 1.0);
                since_reset = 0;
                continue;
            }
            let (a, b) = self.best_swap(&nodes, &front);
            self.swap(a, b, &mut out)?;
            stalled.push((a, b));
            self.decay[a] += DECAY_DELTA;
            self.decay[b] += DECAY_DELTA;
            since_reset += 1;
            if since_reset >= DECAY_RESET_SWAPS {
                self.decay.iter_mut().for_each(|d| *d = 1.0);
                since_reset = 0;
            }
        }
        Ok(out)
    }

    /// The lowest-scoring candidate swap (ties: the lowest pair).
    fn best_swap(&mut self, nodes: &[Node], front: &BTreeSet<usize>) -> (usize, usize) {
        let blocked: Vec<&[usize]> = front
            .iter()
            .map(|&x| nodes[x].multi.as_slice())
            .filter(|m| !m.is_empty())
            .collect();
        // The extended set: the next gates on two or more qubits after the front layer.
        let mut extended: Vec<&[usize]> = Vec::new();
        let mut seen: BTreeSet<usize> = front.clone();
        let mut queue: VecDeque<usize> = front.iter().copied().collect();
        let mut visits = 0;
        'search: while let Some(x) = queue.pop_front() {
            for &s in &nodes[x].succ {
                if !seen.insert(s) {
                    continue;
                }
                visits += 1;
                if !nodes[s].multi.is_empty() {
                    extended.push(&nodes[s].multi);
                    if extended.len() >= EXTENDED_SET_SIZE {
                        break 'search;
                    }
                }
                if visits >= EXTENDED_SET_VISITS {
                    break 'search;
                }
                queue.push_back(s);
            }
        }
        let mut candidates: BTreeSet<(usize, usize)> = BTreeSet::new();
        for m in &blocked {
            for &l in m.iter() {
                let s = self.slot_of[l];
                let neighbours: Vec<usize> = if self.all_to_all {
                    (0..self.region.len()).filter(|&t| t != s).collect()
                } else {
                    self.adj[s].clone()
                };
                for t in neighbours {
                    candidates.insert((s.min(t), s.max(t)));
                }
            }
        }
        let mut best: Option<((usize, usize), f64)> = None;
        for (a, b) in candidates {
            let moved = |s: usize| {
                if s == a {
                    b
                } else if s == b {
                    a
                } else {
                    s
                }
            };
            let cost = |gates: &[&[usize]], me: &mut Router| -> f64 {
                if gates.is_empty() {
                    return 0.0;
                }
                let mut sum = 0u64;
                for m in gates {
                    for (i, &p) in m.iter().enumerate() {
                        for &q in &m[i + 1..] {
                            let (sp, sq) = (moved(me.slot_of[p]), moved(me.slot_of[q]));
                            sum += u64::from(me.distance(sp, sq));
                        }
                    }
                }
                sum as f64 / gates.len() as f64
            };
            let f = cost(&blocked, self);
            let e = cost(&extended, self);
            let h = self.decay[a].max(self.decay[b]) * (f + EXTENDED_SET_WEIGHT * e);
            if best.is_none_or(|(_, s)| h < s) {
                best = Some(((a, b), h));
            }
        }
        best.map_or((0, 0), |(p, _)| p)
    }

    /// A shortest path of slots from `a` to `b` (lowest neighbours first).
    fn path(&self, a: usize, b: usize) -> Vec<usize> {
        let r = self.region.len();
        let mut parent = vec![usize::MAX; r];
        parent[a] = a;
        let mut queue = VecDeque::from([a]);
        while let Some(v) = queue.pop_front() {
            if v == b {
                break;
            }
            let neighbours: Vec<usize> = if self.all_to_all {
                (0..r).filter(|&t| t != v).collect()
            } else {
                self.adj[v].clone()
            };
            for w in neighbours {
                if parent[w] == usize::MAX {
                    parent[w] = v;
                    queue.push_back(w);
                }
            }
        }
        if parent[b] == usize::MAX {
            return Vec::new();
        }
        let mut path = vec![b];
        let mut v = b;
        while v != a {
            v = parent[v];
            path.push(v);
        }
        path.reverse();
        path
    }

    /// Emits an item with its qubits mapped to device qubits.
    fn execute(&mut self, item: Item, out: &mut Vec<Item>) -> Result<(), Fail> {
        match item {
            Item::Gate(mut g, o) => {
                g.targets = self.map(&g.targets);
                g.controls = self.map(&g.controls);
                out.push(Item::Gate(g, o));
            }
            Item::Swap(a, b) => {
                let (a, b) = (self.phys(a), self.phys(b));
                out.push(Item::Swap(a, b));
            }
            Item::Measure { qubit, clbit } => out.push(Item::Measure {
                qubit: self.phys(qubit),
                clbit,
            }),
            Item::Reset { qubit } => out.push(Item::Reset {
                qubit: self.phys(qubit),
            }),
            Item::Barrier { qubits } => out.push(Item::Barrier {
                qubits: self.map(&qubits),
            }),
            Item::If {
                cond,
                then_ops,
                else_ops,
            } => {
                let entry = self.log_of.clone();
                let mut then_r = self.block(then_ops)?;
                then_r.extend(self.permute_to(&entry)?);
                let mut else_r = self.block(else_ops)?;
                else_r.extend(self.permute_to(&entry)?);
                out.push(Item::If {
                    cond,
                    then_ops: then_r,
                    else_ops: else_r,
                });
            }
        }
        Ok(())
    }

    /// Swaps until slot `s` holds logical qubit `target[s]` for every slot: directly on an
    /// all-to-all device, else along a breadth-first spanning tree, filling its leaves first.
    fn permute_to(&mut self, target: &[usize]) -> Result<Vec<Item>, Fail> {
        let mut out = Vec::new();
        let r = self.region.len();
        if self.log_of.as_slice() == target {
            return Ok(out);
        }
        if self.all_to_all {
            for (v, &want) in target.iter().enumerate().take(r) {
                while self.log_of[v] != want {
                    let u = self.slot_of[want];
                    self.swap(u, v, &mut out)?;
                }
            }
            return Ok(out);
        }
        if self.tree.is_none() {
            let mut parent = vec![usize::MAX; r];
            let mut depth = vec![0usize; r];
            let mut order = Vec::with_capacity(r);
            parent[0] = 0;
            let mut queue = VecDeque::from([0usize]);
            while let Some(v) = queue.pop_front() {
                order.push(v);
                for &w in &self.adj[v] {
                    if parent[w] == usize::MAX {
                        parent[w] = v;
                        depth[w] = depth[v] + 1;
                        queue.push_back(w);
                    }
                }
            }
            self.tree = Some((parent, depth, order));
        }
        let Some((parent, depth, order)) = self.tree.clone() else {
            return Ok(out);
        };
        for &v in order.iter().rev() {
            let u = self.slot_of[target[v]];
            if u == v {
                continue;
            }
            // The tree path u → v: up from both to their lowest common ancestor.
            let (mut x, mut y) = (u, v);
            let (mut up, mut down) = (vec![x], vec![y]);
            while x != y {
                if depth[x] >= depth[y] {
                    x = parent[x];
                    up.push(x);
                } else {
                    y = parent[y];
                    down.push(y);
                }
            }
            down.pop();
            up.extend(down.into_iter().rev());
            for w in up.windows(2) {
                self.swap(w[0], w[1], &mut out)?;
            }
        }
        Ok(out)
    }
}

/// The qubits an item touches; `None` for all of them (an empty barrier, a gate without qubits)
/// and for a conditional block (which also reads classical bits).
fn touched(item: &Item) -> Option<Vec<u32>> {
    match item {
        Item::Gate(g, _) if g.qubits().count() > 0 => Some(g.qubits().collect()),
        Item::Swap(a, b) => Some(vec![*a, *b]),
        Item::Measure { qubit, .. } | Item::Reset { qubit } => Some(vec![*qubit]),
        Item::Barrier { qubits } if !qubits.is_empty() => Some(qubits.clone()),
        _ => None,
    }
}

/// A measurement being moved: its device qubit (followed through swaps) and classical bit.
type Floating = (u32, u32);

/// Moves each top-level measurement that a routing swap would follow on its device qubit past
/// the swaps (`measure p; swap p, q` is `swap p, q; measure q`), up to the next other operation
/// on its qubit or classical bit, so that terminal measurements stay terminal (and `exec::run`
/// can sample them from one final state). A measurement not followed by a swap stays in place.
fn float_measurements(items: Vec<Item>, n: u32) -> Vec<Item> {
    // floats[i]: the next item on measurement i's qubit is a swap.
    let width = items
        .iter()
        .filter_map(touched)
        .flatten()
        .max()
        .map_or(n, |m| (m + 1).max(n)) as usize;
    let mut next_is_swap: Vec<bool> = vec![false; width];
    let mut floats = vec![false; items.len()];
    for (i, item) in items.iter().enumerate().rev() {
        if let Item::Measure { qubit, .. } = item {
            floats[i] = next_is_swap[*qubit as usize];
        }
        let swap = matches!(item, Item::Swap(..));
        match touched(item) {
            Some(qs) => qs.iter().for_each(|&q| next_is_swap[q as usize] = swap),
            None => next_is_swap.iter_mut().for_each(|x| *x = false),
        }
    }
    if !floats.contains(&true) {
        return items;
    }
    let mut out = Vec::with_capacity(items.len());
    let mut floating: Vec<Floating> = Vec::new();
    for (i, item) in items.into_iter().enumerate() {
        if let (Item::Swap(a, b), false) = (&item, floating.is_empty()) {
            for f in &mut floating {
                if f.0 == *a {
                    f.0 = *b;
                } else if f.0 == *b {
                    f.0 = *a;
                }
            }
            out.push(item);
            continue;
        }
        let qs = touched(&item);
        let clbit = match &item {
            Item::Measure { clbit, .. } => Some(*clbit),
            _ => None,
        };
        let (land, keep): (Vec<Floating>, Vec<Floating>) =
            floating.iter().partition(|&&(q, c)| match &qs {
                None => true,
                Some(qs) => qs.contains(&q) || clbit == Some(c),
            });
        floating = keep;
        out.extend(
            land.into_iter()
                .map(|(qubit, clbit)| Item::Measure { qubit, clbit }),
        );
        match item {
            Item::Measure { qubit, clbit } if floats[i] => floating.push((qubit, clbit)),
            item => out.push(item),
        }
    }
    out.extend(
        floating
            .into_iter()
            .map(|(qubit, clbit)| Item::Measure { qubit, clbit }),
    );
    out
}

// ---------------------------------------------------------------------------------------------
// Stage 3: basis translation.

/// A step of the native form of `cx` on arguments (0 = control, 1 = target).
#[derive(Clone)]
enum Step {
    One(usize, Matrix),
    Native(&'static GateDef, Vec<f64>, [usize; 2]),
    Phase(f64),
}

fn h_matrix() -> Matrix {
    def("h").matrix(&[])
}

fn rz_matrix(x: f64) -> Matrix {
    def("rz").matrix(&[x])
}

/// Exact native forms of `cx` (controlled-NOT, argument 0 the control), best first.
fn cx_forms(has: &dyn Fn(&str) -> bool) -> Vec<Vec<Step>> {
    let mut forms: Vec<Vec<Step>> = Vec::new();
    for name in ["cx", "CX"] {
        if has(name) {
            forms.push(vec![Step::Native(def(name), vec![], [0, 1])]);
        }
    }
    // Forms of cz; cx = h · cz · h on the target.
    let mut cz_forms: Vec<Vec<Step>> = Vec::new();
    if has("cz") {
        cz_forms.push(vec![Step::Native(def("cz"), vec![], [0, 1])]);
    }
    // A controlled V whose eigenvalues differ by π: cz = p(−a) on the control after
    // P† · C(V) · P on the target.
    let controlled: [(&str, &[f64]); 10] = [
        ("cp", &[PI]),
        ("cu1", &[PI]),
        ("cphase", &[PI]),
        ("crz", &[PI]),
        ("cy", &[]),
        ("ch", &[]),
        ("cry", &[PI]),
        ("crx", &[PI]),
        ("cu3", &[PI, 0.0, PI]),
        ("cu", &[PI, 0.0, PI, 0.0]),
    ];
    for (name, params) in controlled {
        if has(name) {
            let d = def(name);
            let (p, a, _) = eigen(&(d.target_matrix)(params));
            cz_forms.push(vec![
                Step::One(1, p.clone()),
                Step::Native(d, params.to_vec(), [0, 1]),
                Step::One(1, p.adjoint()),
                Step::One(0, diag2(C64::new(1.0, 0.0), cis(-a))),
            ]);
        }
    }
    // cz ∝ rz(π/2) ⊗ rz(π/2) · rzz(−π/2), and rzz(θ) = (h ⊗ h) · rxx(θ) · (h ⊗ h).
    let zz_tail = || {
        vec![
            Step::One(0, rz_matrix(FRAC_PI_2)),
            Step::One(1, rz_matrix(FRAC_PI_2)),
        ]
    };
    if has("rzz") {
        let mut f = vec![Step::Native(def("rzz"), vec![-FRAC_PI_2], [0, 1])];
        f.extend(zz_tail());
        cz_forms.push(f);
    }
    if has("rxx") {
        let mut f = vec![
            Step::One(0, h_matrix()),
            Step::One(1, h_matrix()),
            Step::Native(def("rxx"), vec![-FRAC_PI_2], [0, 1]),
            Step::One(0, h_matrix()),
            Step::One(1, h_matrix()),
        ];
        f.extend(zz_tail());
        cz_forms.push(f);
    }
    for cz in cz_forms {
        let mut f = vec![Step::One(1, h_matrix())];
        f.extend(cz);
        f.push(Step::One(1, h_matrix()));
        forms.push(f);
    }
    if has("csx") {
        let csx = def("csx");
        forms.push(vec![
            Step::Native(csx, vec![], [0, 1]),
            Step::Native(csx, vec![], [0, 1]),
        ]);
    }
    forms
}

/// The first form that multiplies to `cx` up to a phase, with that phase appended.
fn cx_form(has: &dyn Fn(&str) -> bool) -> Option<Vec<Step>> {
    let cx = def("cx").matrix(&[]);
    for mut form in cx_forms(has) {
        let mut acc = Matrix::identity(4);
        for s in &form {
            let m = match s {
                Step::One(a, m) => m.embed(&[*a], 2),
                Step::Native(d, p, args) => d.matrix(p).embed(args, 2),
                Step::Phase(_) => continue,
            };
            acc = m.mul(&acc);
        }
        if let Some(beta) = fit(&cx, &acc) {
            form.push(Step::Phase(beta));
            return Some(form);
        }
    }
    None
}

/// How one-qubit matrices are written with the natives.
struct OneQ {
    /// Native parameter-free one-qubit gates (`x`, `h`, `sx`, …), by name.
    fixed: Vec<&'static GateDef>,
    /// A native z rotation (`rz`, `p`, `u1`, `phase`).
    z: Option<&'static GateDef>,
    /// A native `U`, `u` or `u3`.
    u: Option<&'static GateDef>,
    sx: Option<&'static GateDef>,
    sxdg: Option<&'static GateDef>,
    rx: Option<&'static GateDef>,
    ry: Option<&'static GateDef>,
    h: Option<&'static GateDef>,
}

type Seq = Vec<(&'static GateDef, Vec<f64>)>;

impl OneQ {
    fn new(has: &dyn Fn(&str) -> bool) -> Self {
        let pick = |names: &[&str]| names.iter().find(|n| has(n)).map(|n| def(n));
        OneQ {
            fixed: gates::table()
                .iter()
                .filter(|d| d.qubits == 1 && d.params == 0 && d.name != "id" && has(d.name))
                .collect(),
            z: pick(&["rz", "p", "u1", "phase"]),
            u: pick(&["U", "u", "u3"]),
            sx: pick(&["sx"]),
            sxdg: pick(&["sxdg"]),
            rx: pick(&["rx"]),
            ry: pick(&["ry"]),
            h: pick(&["h"]),
        }
    }

    /// Native gates (in time order) and a phase `β` with `m = e^{iβ}·product`.
    fn synth(&self, m: &Matrix) -> Option<(Seq, f64)> {
        if let Some(beta) = scalar_phase(m) {
            return Some((Vec::new(), beta));
        }
        for d in &self.fixed {
            if let Some(beta) = fit(m, &d.matrix(&[])) {
                return Some((vec![(*d, Vec::new())], beta));
            }
        }
        let (theta, phi, lambda, _) = euler_u(m);
        let diagonal = m.at(0, 1).norm() <= TINY && m.at(1, 0).norm() <= TINY;
        let mut forms: Vec<Seq> = Vec::new();
        if let (true, Some(z)) = (diagonal, self.z) {
            forms.push(vec![(z, vec![wrap(m.at(1, 1).arg() - m.at(0, 0).arg())])]);
        }
        if let Some(u) = self.u {
            forms.push(vec![(u, vec![theta, wrap(phi), wrap(lambda)])]);
        }
        if let Some(z) = self.z {
            let zr = |x: f64| (z, vec![wrap(x)]);
            if let Some(sx) = self.sx {
                if (theta - FRAC_PI_2).abs() <= TINY {
                    forms.push(vec![
                        zr(lambda - FRAC_PI_2),
                        (sx, vec![]),
                        zr(phi + FRAC_PI_2),
                    ]);
                }
                forms.push(vec![
                    zr(lambda),
                    (sx, vec![]),
                    zr(theta + PI),
                    (sx, vec![]),
                    zr(phi + PI),
                ]);
            }
            if let Some(sxdg) = self.sxdg {
                forms.push(vec![
                    zr(lambda + PI),
                    (sxdg, vec![]),
                    zr(theta + 3.0 * PI),
                    (sxdg, vec![]),
                    zr(phi + 2.0 * PI),
                ]);
            }
            if let Some(ry) = self.ry {
                forms.push(vec![zr(lambda), (ry, vec![theta]), zr(phi)]);
            }
            if let Some(rx) = self.rx {
                forms.push(vec![
                    zr(lambda - FRAC_PI_2),
                    (rx, vec![theta]),
                    zr(phi + FRAC_PI_2),
                ]);
            }
        }
        if let (Some(rx), Some(ry)) = (self.rx, self.ry) {
            // m = h · m' · h with m' = rz(φ')·ry(θ')·rz(λ'), so m ∝ rx(φ')·ry(−θ')·rx(λ').
            let h = h_matrix();
            let (t2, p2, l2, _) = euler_u(&h.mul(m).mul(&h));
            forms.push(vec![
                (rx, vec![wrap(l2)]),
                (ry, vec![-t2]),
                (rx, vec![wrap(p2)]),
            ]);
        }
        if let (Some(z), Some(h)) = (self.z, self.h) {
            forms.push(vec![
                (z, vec![wrap(lambda - FRAC_PI_2)]),
                (h, vec![]),
                (z, vec![wrap(theta)]),
                (h, vec![]),
                (z, vec![wrap(phi + FRAC_PI_2)]),
            ]);
        }
        for mut form in forms {
            // A z rotation by 0 is the identity (up to a phase the fit absorbs).
            form.retain(|(d, p)| !(d.params == 1 && p[0].abs() <= TINY));
            let mut acc = Matrix::identity(2);
            for (d, p) in &form {
                acc = d.matrix(p).mul(&acc);
            }
            if let Some(beta) = fit(m, &acc) {
                return Some((form, beta));
            }
        }
        None
    }
}

struct Translator<'a> {
    c: &'a Circuit,
    device: &'a Device,
    native: Option<&'a BTreeSet<String>>,
    one_q: OneQ,
    cx: Option<Vec<Step>>,
    cx_direct: Option<&'static GateDef>,
    budget: Budget,
    reason: String,
    phase: f64,
    translated: usize,
}

/// One-qubit matrices waiting to be written, by device qubit, with the gate they come from.
type Pending = BTreeMap<u32, (Matrix, Origin)>;

impl<'a> Translator<'a> {
    fn new(c: &'a Circuit, device: &'a Device, gates_max: usize, reason: String) -> Self {
        let native = device.native_gates();
        let has = |name: &str| native.is_none_or(|s| s.contains(name));
        let cx_direct = if has("cx") { Some(def("cx")) } else { None };
        Translator {
            c,
            device,
            native,
            one_q: OneQ::new(&has),
            cx: cx_form(&has),
            cx_direct,
            budget: Budget::new(gates_max),
            reason,
            phase: 0.0,
            translated: 0,
        }
    }

    fn fail(&self, f: Fail) -> RouteError {
        fail_error(self.c, f, self.budget.max, self.reason.clone())
    }

    fn untranslatable(&self, o: Origin, what: String) -> RouteError {
        let (gate, position) = describe_origin(self.c, o);
        RouteError::Untranslatable {
            gate,
            position,
            what,
            device: self.device.name().to_string(),
            native: self
                .native
                .map(|s| s.iter().cloned().collect())
                .unwrap_or_default(),
        }
    }

    fn push(&mut self, g: Gate, out: &mut Vec<Op>) -> Result<(), RouteError> {
        self.budget.take(1).map_err(|f| self.fail(f))?;
        out.push(Op::Gate(g));
        Ok(())
    }

    /// Writes the pending matrix of qubit `q`.
    fn flush(
        &mut self,
        q: u32,
        pending: &mut Pending,
        out: &mut Vec<Op>,
        phase: &mut f64,
    ) -> Result<(), RouteError> {
        let Some((m, o)) = pending.remove(&q) else {
            return Ok(());
        };
        let Some((seq, beta)) = self.one_q.synth(&m) else {
            let entries: Vec<String> = m
                .data
                .iter()
                .map(|z| format!("{:.4}{:+.4}i", z.re, z.im))
                .collect();
            return Err(self.untranslatable(
                o,
                format!("the one-qubit unitary [{}] it needs", entries.join(", ")),
            ));
        };
        *phase += beta;
        for (d, p) in seq {
            self.push(table_gate(d, &p, &[q]), out)?;
        }
        Ok(())
    }

    fn flush_all(
        &mut self,
        pending: &mut Pending,
        out: &mut Vec<Op>,
        phase: &mut f64,
    ) -> Result<(), RouteError> {
        let qs: Vec<u32> = pending.keys().copied().collect();
        for q in qs {
            self.flush(q, pending, out, phase)?;
        }
        Ok(())
    }

    fn merge(pending: &mut Pending, q: u32, m: Matrix, o: Origin) {
        match pending.get_mut(&q) {
            Some((acc, _)) => *acc = m.mul(acc),
            None => {
                pending.insert(q, (m, o));
            }
        }
    }

    /// Emits `cx c, t` in native gates.
    fn cx(
        &mut self,
        c: u32,
        t: u32,
        o: Origin,
        pending: &mut Pending,
        out: &mut Vec<Op>,
        phase: &mut f64,
    ) -> Result<(), RouteError> {
        if let Some(d) = self.cx_direct {
            self.flush(c, pending, out, phase)?;
            self.flush(t, pending, out, phase)?;
            return self.push(table_gate(d, &[], &[c, t]), out);
        }
        let Some(form) = self.cx.clone() else {
            return Err(self.untranslatable(o, "a cx (controlled-NOT) it needs".into()));
        };
        let args = [c, t];
        for s in form {
            match s {
                Step::One(a, m) => Self::merge(pending, args[a], m, o),
                Step::Native(d, p, [a, b]) => {
                    self.flush(args[a], pending, out, phase)?;
                    self.flush(args[b], pending, out, phase)?;
                    self.push(table_gate(d, &p, &[args[a], args[b]]), out)?;
                }
                Step::Phase(x) => *phase += x,
            }
        }
        Ok(())
    }

    /// Translates a block; its phases go to the circuit's global phase at the top level and are
    /// dropped inside a conditional block (a global phase of that branch).
    fn block(&mut self, items: Vec<Item>, top: bool) -> Result<Vec<Op>, RouteError> {
        let mut out = Vec::with_capacity(items.len());
        let mut pending = Pending::new();
        let mut phase = 0.0;
        for item in items {
            match item {
                Item::Gate(g, o) => {
                    if is_native(self.native, &g) {
                        for q in g.qubits() {
                            self.flush(q, &mut pending, &mut out, &mut phase)?;
                        }
                        self.push(g, &mut out)?;
                        continue;
                    }
                    if o.whole {
                        self.translated += 1;
                    }
                    let prims = to_prims(&g, o, &mut self.budget).map_err(|f| self.fail(f))?;
                    for p in prims {
                        match p {
                            Prim::Phase(x) => phase += x,
                            Prim::Mc(mc) => match mc.controls.as_slice() {
                                [] => Self::merge(&mut pending, mc.target, mc.m, o),
                                [ctrl, ..] => self.cx(
                                    *ctrl,
                                    mc.target,
                                    o,
                                    &mut pending,
                                    &mut out,
                                    &mut phase,
                                )?,
                            },
                        }
                    }
                }
                Item::Swap(a, b) => {
                    for (c, t) in [(a, b), (b, a), (a, b)] {
                        self.cx(c, t, SWAP, &mut pending, &mut out, &mut phase)?;
                    }
                }
                Item::Measure { qubit, clbit } => {
                    self.flush(qubit, &mut pending, &mut out, &mut phase)?;
                    out.push(Op::Measure { qubit, clbit });
                }
                Item::Reset { qubit } => {
                    self.flush(qubit, &mut pending, &mut out, &mut phase)?;
                    out.push(Op::Reset { qubit });
                }
                Item::Barrier { qubits } => {
                    if qubits.is_empty() {
                        self.flush_all(&mut pending, &mut out, &mut phase)?;
                    } else {
                        for &q in &qubits {
                            self.flush(q, &mut pending, &mut out, &mut phase)?;
                        }
                    }
                    out.push(Op::Barrier { qubits });
                }
                Item::If {
                    cond,
                    then_ops,
                    else_ops,
                } => {
                    self.flush_all(&mut pending, &mut out, &mut phase)?;
                    let then_ops = self.block(then_ops, false)?;
                    let else_ops = self.block(else_ops, false)?;
                    out.push(Op::If {
                        cond,
                        then_ops,
                        else_ops,
                    });
                }
            }
        }
        self.flush_all(&mut pending, &mut out, &mut phase)?;
        if top {
            self.phase += phase;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close_up_to_phase(a: &Matrix, b: &Matrix) -> bool {
        fit(a, b).is_some()
    }

    #[test]
    fn every_cx_form_is_exact() {
        let cx = def("cx").matrix(&[]);
        for form in cx_forms(&|_| true) {
            let mut acc = Matrix::identity(4);
            for s in &form {
                if let Step::Native(d, p, args) = s {
                    acc = d.matrix(p).embed(args, 2).mul(&acc);
                } else if let Step::One(a, m) = s {
                    acc = m.embed(&[*a], 2).mul(&acc);
                }
            }
            let names: Vec<&str> = form
                .iter()
                .filter_map(|s| match s {
                    Step::Native(d, ..) => Some(d.name),
                    _ => None,
                })
                .collect();
            assert!(close_up_to_phase(&cx, &acc), "cx form {names:?}");
        }
    }

    #[test]
    fn every_one_qubit_form_is_exact() {
        let sets: &[&[&str]] = &[
            &["U"],
            &["u3"],
            &["rz", "sx"],
            &["p", "sx"],
            &["rz", "sxdg"],
            &["rz", "ry"],
            &["rz", "rx"],
            &["rx", "ry"],
            &["rz", "h"],
            &["u1", "h"],
        ];
        for set in sets {
            let one_q = OneQ::new(&|n| set.contains(&n));
            for seed in 0..40 {
                let p = gates::sample_params(3, seed);
                let mut theta = p[0];
                if seed % 5 == 0 {
                    theta = 0.0;
                } else if seed % 5 == 1 {
                    theta = FRAC_PI_2;
                } else if seed % 5 == 2 {
                    theta = PI;
                }
                let m = gates::u_matrix(theta, p[1], p[2]).scale(cis(p[0] * 0.7));
                let (seq, beta) = one_q
                    .synth(&m)
                    .unwrap_or_else(|| panic!("{set:?}: no form"));
                let mut acc = Matrix::identity(2);
                for (d, params) in &seq {
                    assert!(set.contains(&d.name), "{set:?}: used {}", d.name);
                    acc = d.matrix(params).mul(&acc);
                }
                let diff = m.max_diff(&acc.scale(cis(beta)));
                assert!(diff < 1e-10, "{set:?}, seed {seed}: differs by {diff}");
                assert!(seq.len() <= 5, "{set:?}: {} gates", seq.len());
            }
        }
    }

    #[test]
    fn a_fixed_native_is_used_as_itself() {
        let one_q = OneQ::new(&|n| ["rz", "sx", "x"].contains(&n));
        let (seq, _) = one_q.synth(&x_matrix().scale(cis(0.3))).expect("x");
        assert_eq!(seq.len(), 1);
        assert_eq!(seq[0].0.name, "x");
        let (seq, _) = one_q.synth(&def("s").matrix(&[])).expect("s");
        assert_eq!(seq.len(), 1);
        assert_eq!(seq[0].0.name, "rz");
    }

    #[test]
    fn the_shortest_path_fallback_routes_correctly() {
        use crate::engine::Reference;
        let text = "name = \"grid\"\nqubits = 9\ncoupling = [[0,1],[1,2],[3,4],[4,5],[6,7],[7,8],[0,3],[3,6],[1,4],[4,7],[2,5],[5,8]]\nnative_gates = [\"rz\", \"sx\", \"cx\"]\n";
        let d = Device::from_toml(text, "grid").expect("device");
        let names = ["h", "cx", "rzz", "ccx", "swap", "cry", "t"];
        let mut ops = Vec::new();
        for i in 0..60u32 {
            let name = names[(i as usize * 5 + 3) % names.len()];
            let dd = def(name);
            let qs: Vec<u32> = (0..dd.qubits as u32)
                .map(|j| (i * 7 + j * 4 + i / 3) % 9)
                .collect();
            let mut uniq = qs.clone();
            uniq.sort_unstable();
            uniq.dedup();
            if uniq.len() != qs.len() {
                continue;
            }
            let params: Vec<f64> = (0..dd.params)
                .map(|j| 0.3 + i as f64 * 0.1 + j as f64)
                .collect();
            ops.push(Op::Gate(table_gate(dd, &params, &qs)));
        }
        let c = Circuit {
            num_qubits: 9,
            ops,
            ..Circuit::default()
        };
        let (want, _) = exec::final_state::<f64>(&c, &Reference, 1 << 30).expect("state");
        for patience in [0, 1, 2] {
            for restore_layout in [false, true] {
                let opts = RouteOptions { restore_layout };
                let r = route_with(&c, &d, &opts, Some(patience)).expect("routes");
                d.check(&r.circuit).expect("runs on the grid");
                assert!(r.swaps > 0);
                let (got, _) =
                    exec::final_state::<f64>(&r.circuit, &Reference, 1 << 30).expect("state");
                let mut diff = 0.0f64;
                for (l_index, a) in want.amplitudes().iter().enumerate() {
                    let p: usize = r
                        .final_layout
                        .iter()
                        .enumerate()
                        .map(|(l, &p)| ((l_index >> l) & 1) << p)
                        .sum();
                    diff = diff.max((got.amplitudes()[p] - a).norm());
                }
                assert!(
                    diff < 1e-9,
                    "patience {patience}: amplitudes differ by {diff}"
                );
            }
        }
    }

    #[test]
    fn eigen_reconstructs() {
        for seed in 0..30 {
            let p = gates::sample_params(4, seed);
            let m = gates::u_matrix(p[0], p[1], p[2]).scale(cis(p[3]));
            let (v, a, b) = eigen(&m);
            let back = v.mul(&diag2(cis(a), cis(b))).mul(&v.adjoint());
            assert!(back.max_diff(&m) < 1e-12, "seed {seed}");
        }
    }
}
