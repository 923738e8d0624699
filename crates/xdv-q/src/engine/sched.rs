//! The fast engine's schedule: cache blocking with qubit remapping.
//!
//! The state is cut into blocks of `2^b` amplitudes. A *sweep* takes every block (in parallel)
//! through a list of operations while it is in cache, so an operation can join a sweep when all
//! its dense targets sit on *physical* index bits below `b` (controls on higher bits only select
//! blocks; a diagonal can have any qubits, its phase coming from the full index). To bring a high
//! target low, the schedule keeps a map from qubits to physical bits and emits an *exchange*
//! pass, which swaps some high physical bits with low ones in place (one pass over memory).
//!
//! - SWAP gates are free: [`strip_swaps`] turns them into a relabelling of the later gates'
//!   qubits (the caller restores the order at the end).
//! - [`schedule`] orders the operations greedily: scanning the pending ones in order, it takes
//!   every operation whose targets are low and that commutes with every earlier pending one it
//!   would pass (disjoint qubits, or both diagonal — the same rule the fusion planner uses); when
//!   nothing more fits it picks which qubits to bring low by a lookahead over the pending
//!   operations (the earliest needed high targets replace the low qubits needed latest,
//!   Belady's rule) and never moves the lowest [`fixed_low_bits`] physical bits, so an exchange
//!   moves contiguous runs.
//! - [`restore_plan`] puts every qubit back on its own bit at the end: a permutation inside each
//!   block (in cache), at most two exchange passes on the bits that move contiguous runs, and one
//!   more in-block permutation.

use super::fusion::FusedGate;
use crate::circuit::Gate;
use crate::gates::{Matrix, C64};

/// How many pending operations one scan looks at (bounds the planning time of huge circuits).
const SCAN_OPS_MAX: usize = 1 << 16;

/// One step of a schedule.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Step {
    /// Operations on physical qubits, every block through all of them.
    Sweep(Vec<FusedGate>),
    /// Disjoint pairs of physical bits to exchange, in one pass.
    Exchange(Vec<(u32, u32)>),
}

/// Byte lookup tables for a map that is linear over index bits: `images[j]` is the image of bit
/// `j`, and the image of an index is the OR of `tables[k][byte k of the index]`.
pub(crate) fn bit_image_tables(images: &[usize]) -> Vec<[usize; 256]> {
    images
        .chunks(8)
        .map(|byte| {
            let mut t = [0usize; 256];
            for (v, e) in t.iter_mut().enumerate() {
                *e = byte
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| v >> j & 1 == 1)
                    .fold(0, |acc, (_, &img)| acc | img);
            }
            t
        })
        .collect()
}

/// The lowest physical bits that never move for blocks of `2^b` amplitudes: runs of `2^L`
/// amplitudes stay contiguous, and `b − L` bits (at least [`super::fusion::FUSED_QUBITS_LIMIT`])
/// stay free for targets.
pub(crate) fn fixed_low_bits(b: u32) -> u32 {
    b.saturating_sub(super::fusion::FUSED_QUBITS_LIMIT).min(4)
}

fn swap_matrix() -> Matrix {
    let zero = C64::new(0.0, 0.0);
    let one = C64::new(1.0, 0.0);
    let mut m = Matrix::identity(4);
    m.data[5] = zero;
    m.data[10] = zero;
    m.data[6] = one;
    m.data[9] = one;
    m
}

/// Removes every uncontrolled exact SWAP, renaming the later gates' qubits instead. Returns the
/// renamed gates and `label`: circuit qubit `q`'s amplitudes end up on bit `label[q]`.
pub(crate) fn strip_swaps(gates: &[Gate], n: u32) -> (Vec<Gate>, Vec<u32>) {
    let swap = swap_matrix();
    let mut label: Vec<u32> = (0..n).collect();
    let mut out = Vec::with_capacity(gates.len());
    for g in gates {
        let is_swap = g.controls.is_empty() && g.targets.len() == 2 && g.matrix == swap;
        if is_swap {
            let (a, b) = (g.targets[0] as usize, g.targets[1] as usize);
            label.swap(a, b);
            continue;
        }
        let mut h = g.clone();
        for q in h.targets.iter_mut().chain(h.controls.iter_mut()) {
            *q = label[*q as usize];
        }
        out.push(h);
    }
    (out, label)
}

/// `op` with every qubit `q` renamed `phys[q]`.
fn renamed(op: &FusedGate, phys: &[u32]) -> FusedGate {
    let mut o = op.clone();
    for q in o.targets.iter_mut().chain(o.controls.iter_mut()) {
        *q = phys[*q as usize];
    }
    o
}

fn mask_of(op: &FusedGate) -> u64 {
    op.targets
        .iter()
        .chain(&op.controls)
        .fold(0, |m, &q| m | 1 << q)
}

/// Schedules `ops` (on qubits `0..n`) for blocks of `2^b` amplitudes. Returns the steps and the
/// final map: qubit `q`'s amplitudes end on physical bit `phys[q]`.
pub(crate) fn schedule(ops: &[FusedGate], n: u32, b: u32) -> (Vec<Step>, Vec<u32>) {
    let identity: Vec<u32> = (0..n).collect();
    if n <= b {
        return (vec![Step::Sweep(ops.to_vec())], identity);
    }
    let fixed = fixed_low_bits(b);
    let all: u64 = if n >= 64 { u64::MAX } else { (1u64 << n) - 1 };
    let mut phys = identity.clone();
    let mut at = identity;
    let mut done = vec![false; ops.len()];
    let mut first = 0;
    let mut steps = Vec::new();
    loop {
        while first < ops.len() && done[first] {
            first += 1;
        }
        if first == ops.len() {
            break;
        }
        // One sweep: every operation that fits and may move ahead of the skipped ones.
        let mut sweep = Vec::new();
        let (mut blocked_any, mut blocked_dense) = (0u64, 0u64);
        let mut scanned = 0;
        let mut cut = false;
        for i in first..ops.len() {
            if done[i] {
                continue;
            }
            let op = &ops[i];
            let mask = mask_of(op);
            let diag = op.is_diagonal();
            let dep = if diag { blocked_dense } else { blocked_any };
            let fits = diag || op.targets.iter().all(|&q| phys[q as usize] < b);
            if mask & dep == 0 && fits {
                sweep.push(renamed(op, &phys));
                done[i] = true;
            } else {
                blocked_any |= mask;
                if !diag {
                    blocked_dense |= mask;
                }
                if blocked_dense == all {
                    break;
                }
            }
            scanned += 1;
            if scanned >= SCAN_OPS_MAX {
                cut = true;
                break;
            }
        }
        let took = !sweep.is_empty();
        if took {
            steps.push(Step::Sweep(sweep));
        }
        if cut && took {
            continue;
        }
        while first < ops.len() && done[first] {
            first += 1;
        }
        if first == ops.len() {
            break;
        }
        let pairs = choose_exchange(ops, &done, first, n, b, fixed, &phys, &at);
        for &(lo, hi) in &pairs {
            let (u, v) = (at[lo as usize], at[hi as usize]);
            at.swap(lo as usize, hi as usize);
            phys[u as usize] = hi;
            phys[v as usize] = lo;
        }
        steps.push(Step::Exchange(pairs));
    }
    (steps, phys)
}

/// The exchange before the next sweep: pairs `(low physical bit, high physical bit)`.
#[allow(clippy::too_many_arguments)]
fn choose_exchange(
    ops: &[FusedGate],
    done: &[bool],
    first: usize,
    n: u32,
    b: u32,
    fixed: u32,
    phys: &[u32],
    at: &[u32],
) -> Vec<(u32, u32)> {
    const NEVER: usize = usize::MAX;
    // When each qubit is next needed low (as a dense target), in pending order.
    let mut next = vec![NEVER; n as usize];
    let pending = (first..ops.len()).filter(|&i| !done[i]);
    for (rank, i) in pending.take(SCAN_OPS_MAX).enumerate() {
        if !ops[i].is_diagonal() {
            for &q in &ops[i].targets {
                if next[q as usize] == NEVER {
                    next[q as usize] = rank;
                }
            }
        }
    }
    let mut incoming: Vec<u32> = (0..n)
        .filter(|&q| phys[q as usize] >= b && next[q as usize] != NEVER)
        .collect();
    incoming.sort_by_key(|&q| (next[q as usize], q));
    let mut outgoing: Vec<u32> = (fixed..b).collect();
    outgoing.sort_by_key(|&p| (std::cmp::Reverse(next[at[p as usize] as usize]), p));
    let mut pairs: Vec<(u32, u32)> = incoming
        .iter()
        .zip(&outgoing)
        .take_while(|(&q, &p)| next[q as usize] < next[at[p as usize] as usize])
        .map(|(&q, &p)| (p, phys[q as usize]))
        .collect();
    if pairs.is_empty() {
        // Cannot happen (the first pending operation is dense with a high target, and fewer
        // qubits than there are free low bits), but never loop: bring its targets low.
        let op = ops[first..]
            .iter()
            .zip(&done[first..])
            .find(|(_, &d)| !d)
            .map(|(o, _)| o);
        let targets: Vec<u32> = op.map(|o| o.targets.clone()).unwrap_or_default();
        let mut free = (fixed..b).filter(|&p| !targets.contains(&at[p as usize]));
        for &q in &targets {
            if phys[q as usize] >= b {
                if let Some(p) = free.next() {
                    pairs.push((p, phys[q as usize]));
                }
            }
        }
    }
    pairs.sort_unstable();
    pairs
}

/// How the qubit order is restored at the end, for blocks of `2^b` amplitudes: `pre`, a
/// permutation inside every block (in cache, appended to the last sweep); `exchanges`, passes
/// that exchange bits at or above [`fixed_low_bits`] only (contiguous runs); `post`, a
/// permutation inside every block (one more sweep). Each is a list of sets of disjoint bit pairs
/// applied in order (see [`decompose`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Restore {
    /// In-block exchanges before the passes.
    pub pre: Vec<Vec<(u32, u32)>>,
    /// Whole-state exchange passes.
    pub exchanges: Vec<Vec<(u32, u32)>>,
    /// In-block exchanges after the passes.
    pub post: Vec<Vec<(u32, u32)>>,
}

/// The restore plan that moves qubit `q` from physical bit `pos[q]` back to bit `q`.
pub(crate) fn restore_plan(pos: &[u32], b: u32) -> Restore {
    let n = pos.len() as u32;
    if n <= b {
        return Restore {
            post: decompose(&dest_of(pos)),
            ..Restore::default()
        };
    }
    let fixed = fixed_low_bits(b);
    let mut cur = pos.to_vec();
    let mut at = vec![0u32; n as usize];
    for (q, &p) in cur.iter().enumerate() {
        at[p as usize] = q as u32;
    }
    // Qubits that end high move to the block's top bits first (in cache, riding on the last
    // sweep), so that the passes move long runs: an exchange pass moves runs of `2^(lowest low
    // bit)` amplitudes, and short ones cost up to three times as much (memory pages, DRAM rows).
    // When there are too many for that, at least those on a fixed low bit move to a free bit of
    // the block.
    let leaving = (0..b).filter(|&p| at[p as usize] >= b).count() as u32;
    let first_moved = if b >= fixed + leaving {
        b - leaving
    } else {
        fixed
    };
    let mut pre = Vec::new();
    let mut spare = (first_moved..b).rev().filter(|&p| at[p as usize] < b);
    for p in 0..first_moved {
        let q = at[p as usize];
        if q >= b {
            let Some(s) = spare.next() else {
                return Restore {
                    exchanges: decompose(&dest_of(pos)),
                    ..Restore::default()
                };
            };
            pre.push((p, s));
        }
    }
    for &(p, s) in &pre {
        let (u, v) = (at[p as usize], at[s as usize]);
        at.swap(p as usize, s as usize);
        cur[u as usize] = s;
        cur[v as usize] = p;
    }
    // High qubits go home; the block's qubits that sit high take the bits they leave.
    let mut target = cur.clone();
    let mut vacated: Vec<u32> = (0..b).filter(|&p| at[p as usize] >= b).collect();
    vacated.sort_unstable();
    let mut homeless: Vec<u32> = (0..b).filter(|&q| cur[q as usize] >= b).collect();
    homeless.sort_by_key(|&q| cur[q as usize]);
    for q in b..n {
        target[q as usize] = q;
    }
    for (&q, &p) in homeless.iter().zip(&vacated) {
        target[q as usize] = p;
    }
    let mut dest = vec![0u32; n as usize];
    for q in 0..n as usize {
        dest[cur[q] as usize] = target[q];
    }
    let exchanges = decompose(&dest);
    // Then every block puts its own qubits in order.
    let inner: Vec<u32> = (0..b as usize).map(|q| target[q]).collect();
    Restore {
        pre: if pre.is_empty() {
            Vec::new()
        } else {
            vec![pre]
        },
        exchanges,
        post: decompose(&dest_of(&inner)),
    }
}

/// `dest[p]`: the bit the data on bit `p` must go to, when qubit `q` is on `pos[q]` and must go
/// to `q`.
fn dest_of(pos: &[u32]) -> Vec<u32> {
    let mut dest = vec![0u32; pos.len()];
    for (q, &p) in pos.iter().enumerate() {
        dest[p as usize] = q as u32;
    }
    dest
}

/// A bit permutation (the data on bit `p` goes to `dest[p]`) as at most two sets of disjoint
/// pairs, applied in order (every permutation is a product of two involutions).
pub(crate) fn decompose(dest: &[u32]) -> Vec<Vec<(u32, u32)>> {
    let n = dest.len();
    let mut out = Vec::new();
    let mut seen = vec![false; n];
    let mut first = Vec::new();
    let mut second = Vec::new();
    for start in 0..n {
        if seen[start] {
            continue;
        }
        let mut cycle = vec![start as u32];
        seen[start] = true;
        let mut p = dest[start] as usize;
        while p != start {
            seen[p] = true;
            cycle.push(p as u32);
            p = dest[p] as usize;
        }
        let k = cycle.len();
        if k == 2 {
            first.push((cycle[0].min(cycle[1]), cycle[0].max(cycle[1])));
        } else if k > 2 {
            // dest moves c_i to c_{i+1}: first the reflection i → −i, then i → 1 − i.
            for i in 1..k.div_ceil(2) {
                let (a, b) = (cycle[i], cycle[k - i]);
                first.push((a.min(b), a.max(b)));
            }
            for i in 0..k {
                let j = (k + 1 - i) % k;
                if i < j {
                    let (a, b) = (cycle[i], cycle[j]);
                    second.push((a.min(b), a.max(b)));
                }
            }
        }
    }
    for mut set in [first, second] {
        if !set.is_empty() {
            set.sort_unstable();
            out.push(set);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    //! The schedule replayed through the reference engine, the exchange primitive against a
    //! naive index permutation, and the restore plans against the layouts they undo.

    use super::super::fusion::{plan, FusedGate};
    use super::super::reference::apply_gate;
    use super::super::simd::exchange_bits;
    use super::super::FastOptions;
    use super::*;
    use crate::gates;
    use crate::state::StateVec;
    use num_complex::Complex;
    use rand_chacha::ChaCha8Rng;
    use rand_core::{RngCore, SeedableRng};

    fn below(rng: &mut ChaCha8Rng, n: usize) -> usize {
        (rng.next_u64() % n as u64) as usize
    }

    fn shuffled(rng: &mut ChaCha8Rng, n: u32) -> Vec<u32> {
        let mut v: Vec<u32> = (0..n).collect();
        for i in (1..v.len()).rev() {
            v.swap(i, below(rng, i + 1));
        }
        v
    }

    /// A random circuit over the table's gates (with their own controls).
    fn circuit(rng: &mut ChaCha8Rng, n: u32, len: usize) -> Vec<Gate> {
        let table = gates::table();
        let mut out = Vec::new();
        while out.len() < len {
            let def = &table[below(rng, table.len())];
            if def.qubits > n as usize {
                continue;
            }
            let qs = shuffled(rng, n);
            let params = gates::sample_params(def.params, rng.next_u64());
            out.push(Gate {
                name: def.name.into(),
                params: params.clone(),
                targets: qs[def.controls..def.qubits].to_vec(),
                controls: qs[..def.controls].to_vec(),
                ctrl_state: u64::MAX >> (64 - def.controls.max(1)),
                matrix: (def.target_matrix)(&params),
            });
        }
        out
    }

    fn random_amps(rng: &mut ChaCha8Rng, len: usize) -> Vec<Complex<f64>> {
        (0..len)
            .map(|_| {
                let mut u = || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 - 0.5;
                Complex::new(u(), u())
            })
            .collect()
    }

    /// The index bit permutation the slow way: amplitude `i` moves to `i` with bits exchanged.
    fn naive_exchange(amps: &[Complex<f64>], pairs: &[(u32, u32)]) -> Vec<Complex<f64>> {
        let mut out = amps.to_vec();
        for (i, &a) in amps.iter().enumerate() {
            let mut j = i;
            for &(p, q) in pairs {
                let (bp, bq) = ((i >> p) & 1, (i >> q) & 1);
                j = (j & !(1 << p) & !(1 << q)) | (bq << p) | (bp << q);
            }
            out[j] = a;
        }
        out
    }

    #[test]
    fn exchange_bits_is_the_naive_index_permutation() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for n in [1u32, 2, 5, 9, 12, 16] {
            for _ in 0..6 {
                let k = 1 + below(&mut rng, (n / 2).max(1) as usize);
                let bits = shuffled(&mut rng, n);
                let pairs: Vec<(u32, u32)> = (0..k.min(n as usize / 2))
                    .map(|i| (bits[2 * i], bits[2 * i + 1]))
                    .collect();
                let amps = random_amps(&mut rng, 1 << n);
                let want = naive_exchange(&amps, &pairs);
                for parallel in [false, true] {
                    let mut got = amps.clone();
                    exchange_bits(&mut got, &pairs, parallel);
                    assert_eq!(got, want, "n = {n}, pairs {pairs:?}, parallel {parallel}");
                }
            }
        }
    }

    /// Applies the sets of pairs in order, the naive way.
    fn apply_sets(amps: &[Complex<f64>], sets: &[Vec<(u32, u32)>]) -> Vec<Complex<f64>> {
        sets.iter()
            .fold(amps.to_vec(), |a, s| naive_exchange(&a, s))
    }

    /// The state laid out with qubit `q` on bit `pos[q]`.
    fn laid_out(amps: &[Complex<f64>], pos: &[u32]) -> Vec<Complex<f64>> {
        let mut out = amps.to_vec();
        for (i, &a) in amps.iter().enumerate() {
            let j: usize = pos
                .iter()
                .enumerate()
                .map(|(q, &p)| ((i >> q) & 1) << p)
                .sum();
            out[j] = a;
        }
        out
    }

    #[test]
    fn restore_plans_undo_any_layout_in_few_passes() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        for (n, b) in [(6u32, 6u32), (8, 6), (12, 10), (14, 10), (16, 10), (13, 12)] {
            for _ in 0..20 {
                let pos = shuffled(&mut rng, n);
                let amps = random_amps(&mut rng, 1 << n);
                let scrambled = laid_out(&amps, &pos);
                let r = restore_plan(&pos, b);
                let fixed = fixed_low_bits(b);
                for set in &r.pre {
                    assert!(set.iter().all(|&(p, q)| p < b && q < b), "{r:?}");
                }
                for set in &r.post {
                    assert!(set.iter().all(|&(p, q)| p < b && q < b), "{r:?}");
                }
                if n > b {
                    for set in &r.exchanges {
                        assert!(set.iter().all(|&(p, q)| p >= fixed && q >= fixed), "{r:?}");
                    }
                }
                assert!(r.pre.len() <= 1 && r.exchanges.len() <= 2 && r.post.len() <= 2);
                let all: Vec<Vec<(u32, u32)>> = r
                    .pre
                    .iter()
                    .chain(&r.exchanges)
                    .chain(&r.post)
                    .cloned()
                    .collect();
                assert_eq!(apply_sets(&scrambled, &all), amps, "n = {n}, pos {pos:?}");
                // The general decomposition alone also restores, in at most two passes.
                let d = decompose(&dest_of(&pos));
                assert!(d.len() <= 2);
                assert_eq!(apply_sets(&scrambled, &d), amps, "n = {n}, pos {pos:?}");
            }
        }
    }

    /// Replays a schedule through the reference engine: sweeps' operations as gates on the
    /// physical layout, exchanges as the naive permutation, then the restore.
    fn replay(steps: &[Step], pos: &[u32], init: &StateVec<f64>, b: u32) -> StateVec<f64> {
        let mut s = init.clone();
        for step in steps {
            match step {
                Step::Sweep(ops) => {
                    for op in ops {
                        if !op.is_diagonal() {
                            assert!(op.targets.iter().all(|&t| t < b), "target high: {op:?}");
                        }
                        apply_gate(&mut s, &op.to_gate());
                    }
                }
                Step::Exchange(pairs) => {
                    assert!(pairs.iter().all(|&(lo, hi)| lo < b && hi >= b), "{pairs:?}");
                    s = StateVec::from_amplitudes(naive_exchange(s.amplitudes(), pairs));
                }
            }
        }
        let r = restore_plan(pos, b);
        let sets: Vec<Vec<(u32, u32)>> =
            r.pre.into_iter().chain(r.exchanges).chain(r.post).collect();
        StateVec::from_amplitudes(apply_sets(s.amplitudes(), &sets))
    }

    #[test]
    fn schedules_replayed_through_the_reference_give_the_circuit() {
        let mut rng = ChaCha8Rng::seed_from_u64(5);
        for (n, b, len) in [
            (8u32, 8u32, 60usize),
            (9, 6, 80),
            (11, 7, 120),
            (12, 10, 150),
            (13, 6, 120),
        ] {
            for fusion in [true, false] {
                let gates = circuit(&mut rng, n, len);
                let init = StateVec::from_amplitudes(random_amps(&mut rng, 1 << n));
                let mut want = init.clone();
                for g in &gates {
                    apply_gate(&mut want, g);
                }
                let opts = FastOptions {
                    fusion,
                    ..FastOptions::default()
                };
                let (renamed, label) = if fusion {
                    strip_swaps(&gates, n)
                } else {
                    (gates.clone(), (0..n).collect())
                };
                let planned: Vec<FusedGate> = plan(&renamed, n, &opts).expect("valid");
                let (steps, phys) = schedule(&planned, n, b);
                let pos: Vec<u32> = label.iter().map(|&v| phys[v as usize]).collect();
                let got = replay(&steps, &pos, &init, b);
                let f = got.fidelity(&want);
                assert!(
                    f >= 1.0 - 1e-10,
                    "n = {n}, b = {b}, fusion {fusion}: fidelity {f}"
                );
                let scheduled: usize = steps
                    .iter()
                    .map(|s| match s {
                        Step::Sweep(o) => o.len(),
                        Step::Exchange(_) => 0,
                    })
                    .sum();
                assert_eq!(scheduled, planned.len(), "every operation exactly once");
            }
        }
    }

    #[test]
    fn a_brickwork_circuit_needs_few_sweeps() {
        // 24 qubits, blocks of 2^16: rotations on every qubit and brickwork CX, 10 layers.
        let n = 24;
        let mut gates = Vec::new();
        for l in 0..10u32 {
            for q in 0..n {
                let name = ["rx", "ry", "rz"][((q + l) % 3) as usize];
                let def = gates::lookup(name).expect("table gate");
                gates.push(Gate {
                    name: name.into(),
                    params: vec![0.3 + f64::from(q)],
                    targets: vec![q],
                    controls: vec![],
                    ctrl_state: 0,
                    matrix: (def.target_matrix)(&[0.3 + f64::from(q)]),
                });
            }
            for i in (l % 2..n - 1).step_by(2) {
                let def = gates::lookup("cx").expect("table gate");
                gates.push(Gate {
                    name: "cx".into(),
                    params: vec![],
                    targets: vec![i + 1],
                    controls: vec![i],
                    ctrl_state: 1,
                    matrix: (def.target_matrix)(&[]),
                });
            }
        }
        let planned = plan(&gates, n, &FastOptions::default()).expect("valid");
        let (steps, _) = schedule(&planned, n, 16);
        let sweeps = steps.iter().filter(|s| matches!(s, Step::Sweep(_))).count();
        let exchanges = steps.len() - sweeps;
        assert!(
            sweeps <= 5 && exchanges <= 4,
            "{sweeps} sweeps, {exchanges} exchanges"
        );
    }
}
