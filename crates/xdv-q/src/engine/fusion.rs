//! Gate fusion for the fast engine: turns a gate sequence into fewer, larger operations, each
//! one pass over the state.
//!
//! Rules (all deterministic — the same gates and options always give the same plan):
//!
//! - A gate may move earlier past operations it commutes with: operations on disjoint qubits, and,
//!   when both are diagonal, any diagonal operation. Nothing else is ever reordered.
//! - A gate scanning back merges into the first operation it overlaps if the result is allowed and
//!   not costlier than the two apart: diagonal with diagonal while the union has at most
//!   [`FastOptions::diagonal_qubits_max`] qubits (a QFT's phase run becomes one diagonal pass);
//!   anything else into a dense matrix while the union has at most
//!   [`FastOptions::fused_qubits_max`] qubits and the cost model (the kernels' measured cost per
//!   amplitude) says the merged operation is no dearer than the two apart. Controls are expanded
//!   into the matrix when gates merge; a gate that merges with nothing keeps its controls.
//! - A controlled gate whose target matrix is diagonal is a diagonal on all its qubits.
//! - A global phase (no targets, no controls) is folded into an uncontrolled operation.
//! - Exact identities (`id`, `u0`, `U(0,0,0)`) are dropped.
//! - Merged matrices are multiplied in `f64`, before any conversion to the state's precision.
//!
//! Barriers are not gates: the caller splits a circuit at barriers and hands each segment to the
//! engine separately, so nothing is fused across one. [`plan`] fuses everything it is given.

use super::fast::FastOptions;
use crate::circuit::Gate;
use crate::gates::{Matrix, C64};
use thiserror::Error;

/// The cost model, in tenths of a nanosecond per amplitude (measured informally, `f64`, one
/// thread, the x86-64 baseline target; see `examples/fast_passes.rs`). Blocked passes keep a
/// chunk in cache across operations, so a pass itself is cheap and the kernels' arithmetic
/// dominates; retune these when the kernels change.
///
/// The fixed cost of one more operation (loop set-up, and memory traffic when it is a pass of
/// its own).
const PASS_COST: u64 = 4;
/// A one-target dense 2×2.
const DENSE1_COST: u64 = 4;
/// A diagonal of any size.
const DIAGONAL_COST: u64 = 3;
/// A permutation (with phases) of two or more targets, per target: it runs through the
/// gather/scatter kernel (SWAP alone is cheaper, but is priced the same here).
const PERMUTATION_COST_PER_TARGET: u64 = 10;
/// Dense operations by target count (index `k`; 0 and 1 unused).
const DENSE_COST: [u64; 7] = [4, 4, 20, 60, 100, 200, 400];

/// How far back (in planned operations) a gate looks for an operation to merge into.
pub const LOOKBACK_OPS_MAX: usize = 64;

/// The largest dense fused operation, in qubits, that [`FastOptions`] may ask for.
pub const FUSED_QUBITS_LIMIT: u32 = 6;

/// The largest fused diagonal, in qubits, that [`FastOptions`] may ask for (a table of
/// `2^16` entries).
pub const DIAGONAL_QUBITS_LIMIT: u32 = 16;

/// Why a gate sequence cannot be applied to a state.
#[derive(Debug, Error, PartialEq)]
pub enum FastError {
    /// A gate names a qubit the state does not have.
    #[error(
        "gate {index} ({name}) acts on qubit {qubit}, but the state has only {qubits} qubits (0..{qubits}); declare more qubits or fix the argument"
    )]
    QubitOutOfRange {
        /// Position of the gate in the sequence.
        index: usize,
        /// The gate's name.
        name: String,
        /// The offending qubit.
        qubit: u32,
        /// The state's qubit count.
        qubits: u32,
    },
    /// A gate names the same qubit twice (among its targets and controls).
    #[error(
        "gate {index} ({name}) uses qubit {qubit} more than once; a gate's qubits must be distinct"
    )]
    DuplicateQubit {
        /// Position of the gate in the sequence.
        index: usize,
        /// The gate's name.
        name: String,
        /// The repeated qubit.
        qubit: u32,
    },
    /// A gate's matrix does not match its number of targets.
    #[error(
        "gate {index} ({name}) has {targets} targets but a {dim}×{dim} matrix with {entries} entries; a k-target gate needs a 2^k×2^k matrix"
    )]
    MatrixShape {
        /// Position of the gate in the sequence.
        index: usize,
        /// The gate's name.
        name: String,
        /// Number of targets.
        targets: usize,
        /// The matrix's declared dimension.
        dim: usize,
        /// The number of entries it holds.
        entries: usize,
    },
}

/// Checks that every gate fits an `n`-qubit state: qubits in range and distinct, matrix of the
/// right shape.
pub fn validate(gates: &[Gate], n: u32) -> Result<(), FastError> {
    for (index, g) in gates.iter().enumerate() {
        let mut seen = 0u64;
        for q in g.qubits() {
            if q >= n {
                return Err(FastError::QubitOutOfRange {
                    index,
                    name: g.name.clone(),
                    qubit: q,
                    qubits: n,
                });
            }
            if seen >> q & 1 == 1 {
                return Err(FastError::DuplicateQubit {
                    index,
                    name: g.name.clone(),
                    qubit: q,
                });
            }
            seen |= 1 << q;
        }
        let k = g.targets.len();
        let ok = k < 32 && g.matrix.dim == 1 << k && g.matrix.data.len() == g.matrix.dim << k;
        if !ok {
            return Err(FastError::MatrixShape {
                index,
                name: g.name.clone(),
                targets: k,
                dim: g.matrix.dim,
                entries: g.matrix.data.len(),
            });
        }
    }
    Ok(())
}

/// What a fused operation does to the amplitudes of its targets.
#[derive(Clone, Debug, PartialEq)]
pub enum FusedOp {
    /// A dense `2^k × 2^k` matrix on the targets (basis bit `j` is `targets[j]`).
    Dense(Matrix),
    /// A diagonal of `2^k` entries on the targets (entry index bit `j` is `targets[j]`).
    Diagonal(Vec<C64>),
}

/// One operation of a fusion plan: one pass over the state.
#[derive(Clone, Debug, PartialEq)]
pub struct FusedGate {
    /// The qubits the operation's matrix (or diagonal) acts on; fused operations list them in
    /// ascending order.
    pub targets: Vec<u32>,
    /// Control qubits (disjoint from `targets`); empty once controls have been expanded.
    pub controls: Vec<u32>,
    /// Bit `i` is the value `controls[i]` must have.
    pub ctrl_state: u64,
    /// The operation on the targets.
    pub op: FusedOp,
    /// How many input gates it stands for.
    pub sources: usize,
}

impl FusedGate {
    /// Every qubit touched, as a bit mask.
    fn mask(&self) -> u64 {
        self.targets
            .iter()
            .chain(&self.controls)
            .fold(0, |m, &q| m | 1 << q)
    }

    /// Number of qubits touched (targets and controls).
    pub fn qubit_count(&self) -> usize {
        self.targets.len() + self.controls.len()
    }

    /// Whether the operation is a diagonal.
    pub fn is_diagonal(&self) -> bool {
        matches!(self.op, FusedOp::Diagonal(_))
    }

    /// The operation as a [`Gate`] (named `fused`, a diagonal written out densely), for checking
    /// a plan against the reference engine.
    pub fn to_gate(&self) -> Gate {
        let matrix = match &self.op {
            FusedOp::Dense(m) => m.clone(),
            FusedOp::Diagonal(d) => Matrix::diagonal(d),
        };
        Gate {
            name: "fused".into(),
            params: Vec::new(),
            targets: self.targets.clone(),
            controls: self.controls.clone(),
            ctrl_state: self.ctrl_state,
            matrix,
        }
    }

    /// The same operation with controls expanded and qubits in ascending order.
    fn expanded(&self) -> (Vec<u32>, FusedOp) {
        let args: Vec<u32> = self.controls.iter().chain(&self.targets).copied().collect();
        let nc = self.controls.len();
        match &self.op {
            FusedOp::Dense(m) => {
                let full = m.controlled(nc, self.ctrl_state);
                let (sorted, m) = sort_dense(&args, &full);
                (sorted, FusedOp::Dense(m))
            }
            FusedOp::Diagonal(d) => {
                let full = controlled_diagonal(d, nc, self.ctrl_state);
                let (sorted, d) = sort_diagonal(&args, &full);
                (sorted, FusedOp::Diagonal(d))
            }
        }
    }

    /// The cost of one application under the cost model.
    fn cost(&self) -> u64 {
        PASS_COST + op_cost(&self.op, self.targets.len())
    }
}

/// The kernel cost of an operation on `k` targets.
fn op_cost(op: &FusedOp, k: usize) -> u64 {
    match op {
        FusedOp::Diagonal(_) => DIAGONAL_COST,
        FusedOp::Dense(_) if k <= 1 => DENSE1_COST,
        FusedOp::Dense(m) if is_permutation(m) => PERMUTATION_COST_PER_TARGET * k as u64,
        FusedOp::Dense(_) => DENSE_COST[k.min(DENSE_COST.len() - 1)],
    }
}

/// Whether every row and column has exactly one non-zero entry.
fn is_permutation(m: &Matrix) -> bool {
    let zero = C64::new(0.0, 0.0);
    let mut used = vec![false; m.dim];
    (0..m.dim).all(|r| {
        let mut nz = (0..m.dim).filter(|&c| m.at(r, c) != zero);
        match (nz.next(), nz.next()) {
            (Some(c), None) if !used[c] => {
                used[c] = true;
                true
            }
            _ => false,
        }
    })
}

/// The diagonal of the controlled expansion: controls in the low `nc` index bits.
pub(crate) fn controlled_diagonal(d: &[C64], nc: usize, ctrl_state: u64) -> Vec<C64> {
    if nc == 0 {
        return d.to_vec();
    }
    let want = (ctrl_state as usize) & ((1 << nc) - 1);
    (0..d.len() << nc)
        .map(|i| {
            if i & ((1 << nc) - 1) == want {
                d[i >> nc]
            } else {
                C64::new(1.0, 0.0)
            }
        })
        .collect()
}

/// Rank of each of `args` in `sorted`.
fn positions(args: &[u32], sorted: &[u32]) -> Vec<usize> {
    args.iter()
        .map(|q| sorted.iter().position(|s| s == q).unwrap_or(0))
        .collect()
}

fn sorted_copy(args: &[u32]) -> Vec<u32> {
    let mut s = args.to_vec();
    s.sort_unstable();
    s
}

/// A dense matrix on `args` rewritten on the same qubits in ascending order.
pub(crate) fn sort_dense(args: &[u32], m: &Matrix) -> (Vec<u32>, Matrix) {
    let sorted = sorted_copy(args);
    if sorted == args {
        return (sorted, m.clone());
    }
    let pos = positions(args, &sorted);
    (sorted, m.embed(&pos, args.len()))
}

/// Index `i` over `onto` (bit `j` is `onto[j]`) restricted to `qubits` (bit `j` is `qubits[j]`).
fn sub_index(i: usize, onto: &[u32], qubits: &[u32]) -> usize {
    qubits
        .iter()
        .enumerate()
        .map(|(j, q)| {
            let p = onto.iter().position(|o| o == q).unwrap_or(0);
            ((i >> p) & 1) << j
        })
        .sum()
}

/// A diagonal on `args` rewritten on the same qubits in ascending order.
pub(crate) fn sort_diagonal(args: &[u32], d: &[C64]) -> (Vec<u32>, Vec<C64>) {
    let sorted = sorted_copy(args);
    if sorted == args {
        return (sorted, d.to_vec());
    }
    let out = (0..d.len())
        .map(|i| d[sub_index(i, &sorted, args)])
        .collect();
    (sorted, out)
}

fn union(a: &[u32], b: &[u32]) -> Vec<u32> {
    let mut u: Vec<u32> = a.iter().chain(b).copied().collect();
    u.sort_unstable();
    u.dedup();
    u
}

/// `later · earlier` for two expanded (control-free, sorted) operations.
fn merge(earlier: &FusedGate, later: &FusedGate) -> FusedGate {
    let (qa, oa) = earlier.expanded();
    let (qb, ob) = later.expanded();
    let u = union(&qa, &qb);
    let sources = earlier.sources + later.sources;
    let op = match (oa, ob) {
        (FusedOp::Diagonal(da), FusedOp::Diagonal(db)) => {
            let (pa, pb) = (positions(&qa, &u), positions(&qb, &u));
            let sub = |i: usize, pos: &[usize]| -> usize {
                pos.iter()
                    .enumerate()
                    .map(|(j, &p)| ((i >> p) & 1) << j)
                    .sum()
            };
            FusedOp::Diagonal(
                (0..1usize << u.len())
                    .map(|i| db[sub(i, &pb)] * da[sub(i, &pa)])
                    .collect(),
            )
        }
        (oa, ob) => {
            let dense = |q: &[u32], o: FusedOp| {
                let m = match o {
                    FusedOp::Dense(m) => m,
                    FusedOp::Diagonal(d) => Matrix::diagonal(&d),
                };
                m.embed(&positions(q, &u), u.len())
            };
            FusedOp::Dense(dense(&qb, ob).mul(&dense(&qa, oa)))
        }
    };
    FusedGate {
        targets: u,
        controls: Vec::new(),
        ctrl_state: 0,
        op,
        sources,
    }
}

/// Whether `later` may merge into `earlier`, and the merged operation if so.
fn try_merge(earlier: &FusedGate, later: &FusedGate, opts: &FastOptions) -> Option<FusedGate> {
    let u = (earlier.mask() | later.mask()).count_ones();
    let both_diagonal = earlier.is_diagonal() && later.is_diagonal();
    if both_diagonal {
        return (u <= opts.diagonal_qubits_max.min(DIAGONAL_QUBITS_LIMIT))
            .then(|| merge(earlier, later));
    }
    if u > opts.fused_qubits_max.min(FUSED_QUBITS_LIMIT) {
        return None;
    }
    let merged = merge(earlier, later);
    (merged.cost() <= earlier.cost() + later.cost()).then_some(merged)
}

/// One input gate as a plan operation, before any merging: diagonal gates (controls expanded
/// into the diagonal while it stays small) or dense with controls kept.
fn intake(g: &Gate, opts: &FastOptions) -> FusedGate {
    let nq = g.targets.len() + g.controls.len();
    if g.matrix.is_diagonal() && nq as u32 <= opts.diagonal_qubits_max.min(DIAGONAL_QUBITS_LIMIT) {
        let d: Vec<C64> = (0..g.matrix.dim).map(|i| g.matrix.at(i, i)).collect();
        let raw = FusedGate {
            targets: g.targets.clone(),
            controls: g.controls.clone(),
            ctrl_state: g.ctrl_state,
            op: FusedOp::Diagonal(d),
            sources: 1,
        };
        let (targets, op) = raw.expanded();
        return FusedGate {
            targets,
            controls: Vec::new(),
            ctrl_state: 0,
            op,
            sources: 1,
        };
    }
    FusedGate {
        targets: g.targets.clone(),
        controls: g.controls.clone(),
        ctrl_state: g.ctrl_state,
        op: FusedOp::Dense(g.matrix.clone()),
        sources: 1,
    }
}

fn is_identity(m: &Matrix) -> bool {
    *m == Matrix::identity(m.dim)
}

/// Plans `gates` for an `n`-qubit state: validates them, then fuses them if `opts.fusion` is
/// on (otherwise one operation per gate, diagonal gates already in diagonal form).
pub fn plan(gates: &[Gate], n: u32, opts: &FastOptions) -> Result<Vec<FusedGate>, FastError> {
    validate(gates, n)?;
    let mut out: Vec<FusedGate> = Vec::with_capacity(gates.len());
    for g in gates {
        let node = intake(g, opts);
        if !opts.fusion {
            out.push(node);
            continue;
        }
        if is_identity(&g.matrix) {
            continue;
        }
        if node.qubit_count() == 0 {
            fold_global_phase(&mut out, node);
            continue;
        }
        let mask = node.mask();
        let mut merged = false;
        for idx in (0..out.len()).rev().take(LOOKBACK_OPS_MAX) {
            let o = &out[idx];
            if o.mask() & mask == 0 {
                continue;
            }
            if let Some(m) = try_merge(o, &node, opts) {
                out[idx] = m;
                merged = true;
                break;
            }
            if !(o.is_diagonal() && node.is_diagonal()) {
                break;
            }
        }
        if !merged {
            out.push(node);
        }
    }
    Ok(out)
}

/// Folds a global phase into the latest uncontrolled operation (a global phase commutes with
/// everything), or appends it when there is none.
fn fold_global_phase(out: &mut Vec<FusedGate>, phase_gate: FusedGate) {
    let z = match &phase_gate.op {
        FusedOp::Dense(m) => m.data[0],
        FusedOp::Diagonal(d) => d[0],
    };
    if let Some(o) = out.iter_mut().rev().find(|o| o.controls.is_empty()) {
        o.op = match &o.op {
            FusedOp::Dense(m) => FusedOp::Dense(m.scale(z)),
            FusedOp::Diagonal(d) => FusedOp::Diagonal(d.iter().map(|&x| x * z).collect()),
        };
        o.sources += 1;
    } else {
        out.push(phase_gate);
    }
}
