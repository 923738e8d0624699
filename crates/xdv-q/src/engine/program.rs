//! Register programs: a sweep's one- and two-qubit operations grouped so that each group runs
//! in one load and one store of every amplitude, the amplitudes held in vector registers
//! meanwhile.
//!
//! A program works on `2^R` vectors at a time (its *slots*; `R` register bits of the index
//! choose the slot, the `L` lowest bits the lane inside a vector), so it can take every
//! operation whose qubits are lane bits or its `R` register bits: one-qubit gates, X and CX (slot
//! exchanges, lane permutations or lane blends — no arithmetic), and diagonals on those qubits
//! (consecutive ones, such as a layer's `rz` gates, merged: per qubit, or as one per-slot
//! product). A sweep's operations are grouped greedily in order: a group takes every later
//! operation that fits its register bits and commutes with the operations it skips (disjoint
//! dense qubits; see `classify`), and a local search over the register bits picks the set that
//! takes the most work.
//!
//! Fewer floating-point operations: a 2×2 with equal real diagonal entries `μ` and real or
//! imaginary off-diagonal entries (`rx`, `ry`) runs as `μ·[[1, a], [b, 1]]`, one fused
//! multiply-add per amplitude; a diagonal `(z0, z1)` on one register bit as `z0·diag(1, z1/z0)`,
//! multiplying half the slots. The scalar factors `μ`, `z0` are collected and multiplied into
//! the next diagonal that touches every slot, or applied on their own when they pass
//! `2^±SCALE_LOG_MAX` and at the end of the sweep, so the state is exact at every sweep's end and
//! never more than `2^SCALE_LOG_MAX` off its scale in between.
//!
//! Everything here is decided from the operations, the block and tile sizes and the SIMD level
//! alone, so every block (and thread) runs the same instructions on its amplitudes.

use super::fusion::{FusedGate, FusedOp};
use super::kernels::normalise;
use super::simd::{self, POp, Program, ProgramShape, SimdLevel};
use crate::gates::C64;
use crate::real::Real;

/// The largest `|off-diagonal / diagonal|` a 2×2 runs with in the unit-diagonal form (beyond it,
/// as a general 2×2).
const UNIT_RATIO_MAX: f64 = 64.0;

/// A pending scale factor is applied once its magnitude passes `2^±SCALE_LOG_MAX`.
const SCALE_LOG_MAX: f64 = 20.0;

/// A merged diagonal of one-qubit factors runs factor by factor when at most this many of them
/// are on register bits (each multiplies half the slots), else as one per-slot table.
const SEPARATE_REG_FACTORS_MAX: usize = 3;

/// How many pending operations one group's scan looks at.
const SCAN_MAX: usize = 256;

/// An operation as the programs see it (physical qubits).
#[derive(Clone, Debug)]
enum Shape {
    /// A 2×2 `[m00, m01, m10, m11]` on `q`, no controls.
    One { q: u32, m: [C64; 4] },
    /// X on `t`, controlled by `ctl = Some((qubit, value))` or not at all.
    X { t: u32, ctl: Option<(u32, bool)> },
    /// A diagonal on `qubits` (ascending; entry bit `j` is `qubits[j]`).
    Diag { qubits: Vec<u32>, d: Vec<C64> },
    /// Anything else: runs as its own kernel.
    Other,
}

fn is_x(m: &crate::gates::Matrix) -> bool {
    let (zero, one) = (C64::new(0.0, 0.0), C64::new(1.0, 0.0));
    m.dim == 2 && m.data == [zero, one, one, zero]
}

/// The shape of `op` and its two commutation masks: the qubits it acts on densely (targets of a
/// non-diagonal operation) and all its qubits.
fn classify(op: &FusedGate, diag_max: usize) -> (Shape, u64, u64) {
    let (targets, controls, ctrl_state, body) = normalise(op);
    let all = targets
        .iter()
        .chain(&controls)
        .fold(0u64, |m, &q| m | 1 << q);
    match body {
        FusedOp::Diagonal(d) => {
            let shape = if targets.len() <= diag_max {
                Shape::Diag { qubits: targets, d }
            } else {
                Shape::Other
            };
            (shape, 0, all)
        }
        FusedOp::Dense(m) => {
            let dense = targets.iter().fold(0u64, |s, &q| s | 1 << q);
            let shape = match (targets.as_slice(), controls.as_slice()) {
                ([t], []) if is_x(&m) => Shape::X { t: *t, ctl: None },
                ([t], [c]) if is_x(&m) => Shape::X {
                    t: *t,
                    ctl: Some((*c, ctrl_state & 1 == 1)),
                },
                ([q], []) => Shape::One {
                    q: *q,
                    m: [m.at(0, 0), m.at(0, 1), m.at(1, 0), m.at(1, 1)],
                },
                _ => Shape::Other,
            };
            (shape, dense, all)
        }
    }
}

/// What a sweep runs, in order: an operation on its own (by index), or a program over a group
/// of them; `tile` when every qubit the program uses is below the tile size.
pub(crate) enum Entry<T> {
    /// `ops[i]` as its own kernel.
    Op(usize),
    /// A register program.
    Program { prog: Program<T>, tile: bool },
}

/// How many rounds of the local search over a group's register bits.
const LOCAL_SEARCH_ROUNDS: usize = 3;

/// One group's scan over the pending operations.
struct Scan<'a> {
    cl: &'a [(Shape, u64, u64)],
    done: &'a [bool],
    first: usize,
    lanes: u64,
    limit: u32,
    r: u32,
}

impl Scan<'_> {
    /// The operations a group takes, in order, scanning from the first pending one: those that
    /// fit (their qubits are lane bits or register bits below the limit) and commute with every
    /// operation skipped before them. With `fixed`, the register bits are those; without, they
    /// are taken in order as operations need them, up to `r`. Returns the members, the register
    /// bits they use and their work (a weight per operation).
    fn run(&self, fixed: Option<u64>) -> (Vec<usize>, u64, u32) {
        let mut members = Vec::new();
        let mut regs = 0u64;
        let mut score = 0;
        let (mut blocked_dense, mut blocked_all) = (0u64, 0u64);
        let mut scanned = 0;
        for i in self.first..self.cl.len() {
            if self.done[i] {
                continue;
            }
            let (ref s, dense, all) = self.cl[i];
            let commutes = dense & blocked_all == 0 && all & blocked_dense == 0;
            let want = regs | (all & !self.lanes);
            let room = match fixed {
                Some(set) => want & !set == 0,
                None => want.count_ones() <= self.r,
            };
            let fits = !matches!(s, Shape::Other) && all >> self.limit == 0 && room;
            if commutes && fits {
                members.push(i);
                regs = want;
                score += match s {
                    Shape::X { .. } => 1,
                    Shape::Diag { .. } => 2,
                    _ => 4,
                };
            } else {
                blocked_dense |= dense;
                blocked_all |= all;
            }
            scanned += 1;
            if scanned >= SCAN_MAX {
                break;
            }
        }
        (members, regs, score)
    }
}

/// The group a scan takes greedily (register bits taken in order as operations need them),
/// improved, with `search`, by a local search over its register bits (swapping one for another
/// while that takes more work); `need` are the register bits the first operation needs.
/// Returns the members, the register bits and the work.
fn best_group(scan: &Scan<'_>, need: u64, l: u32, r: u32, search: bool) -> (Vec<usize>, u64, u32) {
    let (mut members, mut regs, mut score) = scan.run(None);
    let candidates: Vec<u32> = (l..scan.limit).collect();
    let rounds = if search { LOCAL_SEARCH_ROUNDS } else { 0 };
    for _ in 0..rounds {
        let mut best: Option<(Vec<usize>, u64, u32)> = None;
        let mut tries: Vec<u64> = Vec::new();
        for &q in &candidates {
            if regs >> q & 1 == 1 {
                continue;
            }
            if regs.count_ones() < r {
                tries.push(regs | 1 << q);
            }
            for p in (0..64).filter(|&p| regs >> p & 1 == 1 && need >> p & 1 == 0) {
                tries.push(regs & !(1 << p) | 1 << q);
            }
        }
        for set in tries {
            let (m, used, sc) = scan.run(Some(set));
            if sc > best.as_ref().map_or(score, |b| b.2) {
                best = Some((m, used | set, sc));
            }
        }
        match best {
            Some((m, set, sc)) => {
                members = m;
                regs = set;
                score = sc;
            }
            None => break,
        }
    }
    (members, regs, score)
}

/// A group while it is planned: member operations in order and the register bits they need.
struct Group {
    members: Vec<usize>,
    regs: u64,
    /// The bits below which its qubits lie (the tile's or the block's).
    limit: u32,
}

/// Groups a sweep's operations (physical qubits, every target below `b`) into register
/// programs for blocks of `2^b` and tiles of `2^t` amplitudes at `level`; `None` when the level
/// has no program kernels or blocks are smaller than one program's span.
pub(crate) fn plan_sweep<T: Real>(
    ops: &[FusedGate],
    b: u32,
    t: u32,
    level: SimdLevel,
    search: bool,
) -> Option<Vec<Entry<T>>> {
    let shape = simd::program_shape::<T>(level)?;
    let (l, r) = (shape.lane_bits, shape.reg_bits);
    if b < l + r || b >= 64 {
        return None;
    }
    let tile_ok = t >= l + r && t < b;
    let lanes = (1u64 << l) - 1;
    let classified: Vec<(Shape, u64, u64)> = ops
        .iter()
        .map(|op| classify(op, (l + r) as usize))
        .collect();
    let n = ops.len();
    let mut done = vec![false; n];
    let mut first = 0;
    let mut plan: Vec<Result<Group, usize>> = Vec::new();
    loop {
        while first < n && done[first] {
            first += 1;
        }
        if first == n {
            break;
        }
        let (ref s0, _, all0) = classified[first];
        if matches!(s0, Shape::Other) || all0 >> b != 0 || (all0 & !lanes).count_ones() > r {
            plan.push(Err(first));
            done[first] = true;
            continue;
        }
        // Within the tile when the first operation is (its group then runs tile by tile, from
        // L1), else over the whole block.
        let limit = if tile_ok && all0 >> t == 0 { t } else { b };
        let scan = Scan {
            cl: &classified,
            done: &done,
            first,
            lanes,
            limit,
            r,
        };
        let (members, regs, _) = best_group(&scan, all0 & !lanes, l, r, search);
        for &i in &members {
            done[i] = true;
        }
        let g = Group {
            members,
            regs,
            limit,
        };
        plan.push(Ok(g));
    }
    let last = plan.iter().rposition(Result::is_ok);
    let mut scale = C64::new(1.0, 0.0);
    let mut out = Vec::with_capacity(plan.len());
    for (k, entry) in plan.into_iter().enumerate() {
        match entry {
            Err(i) => out.push(Entry::Op(i)),
            Ok(g) => {
                let mut em = Emit::<T>::new(level, shape, &g);
                em.group(&g, &classified, &mut scale);
                if Some(k) == last && scale != C64::new(1.0, 0.0) {
                    em.scale(&mut scale);
                }
                let tile = g.limit == t;
                let prog = em.finish()?.with_sources(g.members.len());
                out.push(Entry::Program { prog, tile });
            }
        }
    }
    Some(out)
}

/// Where a physical bit sits in a program.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Loc {
    Lane(u32),
    Reg(u8),
}

/// One program being written.
struct Emit<T> {
    level: SimdLevel,
    shape: ProgramShape,
    regs: Vec<u32>,
    ops: Vec<POp>,
    coefs: Vec<T>,
    aux: Vec<u8>,
}

/// A group's items: an operation, or diagonals merged.
enum Item {
    Op(usize),
    Diag(Vec<usize>),
}

impl<T: Real> Emit<T> {
    /// A program for `g`: its register bits, padded with the lowest free bits above the lanes.
    fn new(level: SimdLevel, shape: ProgramShape, g: &Group) -> Emit<T> {
        let mut regs: Vec<u32> = (0..64).filter(|&q| g.regs >> q & 1 == 1).collect();
        let mut q = shape.lane_bits;
        while regs.len() < shape.reg_bits as usize {
            if !regs.contains(&q) {
                regs.push(q);
            }
            q += 1;
        }
        regs.sort_unstable();
        Emit {
            level,
            shape,
            regs,
            ops: Vec::new(),
            coefs: Vec::new(),
            aux: Vec::new(),
        }
    }

    fn finish(self) -> Option<Program<T>> {
        Program::new(self.level, self.regs, self.ops, self.coefs, self.aux)
    }

    fn loc(&self, q: u32) -> Loc {
        if q < self.shape.lane_bits {
            Loc::Lane(q)
        } else {
            let j = self.regs.iter().position(|&p| p == q).unwrap_or(0);
            Loc::Reg(j as u8)
        }
    }

    /// Complex lanes per vector.
    fn w(&self) -> usize {
        self.shape.vec_floats / 2
    }

    /// Appends a coefficient vector, float `f` (complex lane `f / 2`, real part when `f` is
    /// even) given by `val`; returns its index.
    fn push_vec(&mut self, val: impl Fn(usize) -> f64) -> u32 {
        let k = self.coefs.len() / self.shape.vec_floats;
        self.coefs
            .extend((0..self.shape.vec_floats).map(|f| T::from_f64(val(f))));
        k as u32
    }

    /// Appends the two vectors of a complex product by `z(lane)`: real parts on both floats,
    /// then imaginary parts signed for the re/im swap (`−im` on the real float).
    fn push_cmul(&mut self, z: impl Fn(usize) -> C64) -> u32 {
        let k = self.push_vec(|f| z(f / 2).re);
        self.push_vec(|f| {
            let im = z(f / 2).im;
            if f.is_multiple_of(2) {
                -im
            } else {
                im
            }
        });
        k
    }

    /// Appends the lane index vector that takes float `map(f)` into float `f`.
    fn push_index(&mut self, map: impl Fn(usize) -> usize) -> u32 {
        let k = self.aux.len() / self.shape.aux_bytes;
        let m: Vec<usize> = (0..self.shape.vec_floats).map(map).collect();
        self.aux.extend(simd::lane_index_bytes::<T>(self.level, &m));
        k as u32
    }

    fn push_mask(&mut self, sel: impl Fn(usize) -> bool) -> u32 {
        let k = self.aux.len() / self.shape.aux_bytes;
        let s: Vec<bool> = (0..self.shape.vec_floats).map(sel).collect();
        self.aux.extend(simd::lane_mask_bytes::<T>(self.level, &s));
        k as u32
    }

    /// Applies the pending scale `scale` to every slot, and resets it.
    fn scale(&mut self, scale: &mut C64) {
        let z = *scale;
        let co = self.push_cmul(|_| z);
        self.ops.push(POp::DiagAll { co });
        *scale = C64::new(1.0, 0.0);
    }

    /// Emits the group's operations in order, diagonals merged where they commute back to the
    /// previous one; `scale` is the pending factor, carried in and out.
    fn group(&mut self, g: &Group, cl: &[(Shape, u64, u64)], scale: &mut C64) {
        let mut items: Vec<(Item, u64)> = Vec::new();
        for &i in &g.members {
            let (ref s, dense, all) = cl[i];
            if matches!(s, Shape::Diag { .. }) {
                // Merge into the latest diagonal when nothing since acts densely on its qubits.
                let target = items
                    .iter()
                    .rposition(|(it, _)| matches!(it, Item::Diag(_)));
                if let Some(k) = target {
                    if items[k + 1..].iter().all(|&(_, d)| d & all == 0) {
                        if let (Item::Diag(list), _) = &mut items[k] {
                            list.push(i);
                        }
                        continue;
                    }
                }
                items.push((Item::Diag(vec![i]), 0));
            } else {
                items.push((Item::Op(i), dense));
            }
        }
        for (item, _) in &items {
            match item {
                Item::Op(i) => match &cl[*i].0 {
                    Shape::One { q, m } => self.one(*q, m, scale),
                    Shape::X { t, ctl } => self.x(*t, *ctl),
                    _ => {}
                },
                Item::Diag(list) => self.diag(list, cl, scale),
            }
            if scale.norm().log2().abs() > SCALE_LOG_MAX {
                self.scale(scale);
            }
        }
    }

    /// A 2×2 on physical bit `q`.
    fn one(&mut self, q: u32, m: &[C64; 4], scale: &mut C64) {
        let [m00, m01, m10, m11] = *m;
        let real_off = m01.im == 0.0 && m10.im == 0.0;
        let imag_off = m01.re == 0.0 && m10.re == 0.0;
        let mu = m00.re;
        let unit = m00 == m11
            && m00.im == 0.0
            && mu != 0.0
            && (real_off || imag_off)
            && (m01 / mu).norm() <= UNIT_RATIO_MAX
            && (m10 / mu).norm() <= UNIT_RATIO_MAX;
        let loc = self.loc(q);
        if unit {
            let (a, b) = (m01 / mu, m10 / mu);
            let imag = !real_off;
            *scale *= mu;
            // The coefficient of the partner: real on both floats, or imaginary, signed for the
            // re/im swap.
            let coef = |z: C64, f: usize| {
                if !imag {
                    z.re
                } else if f.is_multiple_of(2) {
                    -z.im
                } else {
                    z.im
                }
            };
            match loc {
                Loc::Reg(j) => {
                    let co = self.push_vec(|f| coef(a, f));
                    self.push_vec(|f| coef(b, f));
                    self.ops.push(POp::Unit { reg: j, imag, co });
                }
                Loc::Lane(l) => {
                    let co = self.push_vec(|f| {
                        let z = if (f / 2) >> l & 1 == 0 { a } else { b };
                        coef(z, f)
                    });
                    let aux = self.push_index(|f| {
                        (((f / 2) ^ (1 << l)) << 1) | ((f & 1) ^ usize::from(imag))
                    });
                    self.ops.push(POp::UnitLane { aux, co });
                }
            }
            return;
        }
        let all_real = m.iter().all(|z| z.im == 0.0);
        match loc {
            Loc::Reg(j) if all_real => {
                let co = self.push_vec(|_| m00.re);
                for z in [m01, m10, m11] {
                    self.push_vec(|_| z.re);
                }
                self.ops.push(POp::Real { reg: j, co });
            }
            Loc::Reg(j) => {
                let co = self.push_cmul(|_| m00);
                for z in [m01, m10, m11] {
                    self.push_cmul(|_| z);
                }
                self.ops.push(POp::Dense { reg: j, co });
            }
            Loc::Lane(l) => {
                // Lane k (bit x of the target) takes m[x][x]·x_k + m[x][x^1]·x_{k^d}.
                let entry = |k: usize, off: bool| {
                    let x = (k >> l) & 1;
                    let col = if off { x ^ 1 } else { x };
                    m[2 * x + col]
                };
                let co = self.push_cmul(|k| entry(k, false));
                self.push_cmul(|k| entry(k, true));
                let aux = self.push_index(|f| (((f / 2) ^ (1 << l)) << 1) | (f & 1));
                self.push_index(|f| (((f / 2) ^ (1 << l)) << 1) | ((f & 1) ^ 1));
                self.ops.push(POp::DenseLane { aux, co });
            }
        }
    }

    /// X on physical bit `t`, controlled or not.
    fn x(&mut self, t: u32, ctl: Option<(u32, bool)>) {
        let ctl = ctl.map(|(c, v)| (self.loc(c), v));
        match (self.loc(t), ctl) {
            (Loc::Reg(jt), None) => self.ops.push(POp::Swap { t: jt, ctl: None }),
            (Loc::Reg(jt), Some((Loc::Reg(jc), v))) => self.ops.push(POp::Swap {
                t: jt,
                ctl: Some((jc, v)),
            }),
            (Loc::Reg(jt), Some((Loc::Lane(lc), v))) => {
                let aux = self.push_mask(|f| ((f / 2) >> lc & 1 == 1) == v);
                self.ops.push(POp::Blend { t: jt, aux });
            }
            (Loc::Lane(lt), ctl) => {
                let lane_ctl = match ctl {
                    Some((Loc::Lane(lc), v)) => Some((lc, v)),
                    _ => None,
                };
                let aux = self.push_index(|f| {
                    let k = f / 2;
                    let on = lane_ctl.is_none_or(|(lc, v)| (k >> lc & 1 == 1) == v);
                    if on {
                        ((k ^ (1 << lt)) << 1) | (f & 1)
                    } else {
                        f
                    }
                });
                let slot_ctl = match ctl {
                    Some((Loc::Reg(jc), v)) => Some((jc, v)),
                    _ => None,
                };
                self.ops.push(POp::Permute { ctl: slot_ctl, aux });
            }
        }
    }

    /// The product of the diagonals `list` over the program's slots and lanes.
    fn diag(&mut self, list: &[usize], cl: &[(Shape, u64, u64)], scale: &mut C64) {
        let (l, r) = (self.shape.lane_bits, self.shape.reg_bits);
        let w = self.w();
        // One-qubit diagonals only (a layer's rz): one factor per qubit. A factor on a register
        // bit multiplies half the slots, those on lanes one lane pattern; that beats a per-slot
        // table (two coefficient loads a slot) for up to `SEPARATE_REG_FACTORS_MAX` register
        // factors.
        let mut factors: Vec<(u32, C64, C64)> = Vec::new();
        let separable = list.iter().all(|&i| match &cl[i].0 {
            Shape::Diag { qubits, d } if qubits.len() == 1 => {
                match factors.iter_mut().find(|f| f.0 == qubits[0]) {
                    Some(f) => {
                        f.1 *= d[0];
                        f.2 *= d[1];
                    }
                    None => factors.push((qubits[0], d[0], d[1])),
                }
                true
            }
            Shape::Diag { qubits, .. } => qubits.is_empty(),
            _ => false,
        });
        let reg_factors = factors.iter().filter(|f| f.0 >= l && f.1 != f.2).count();
        if separable
            && reg_factors <= SEPARATE_REG_FACTORS_MAX
            && factors.iter().all(|f| f.1 != C64::new(0.0, 0.0))
        {
            let mut lanes = vec![C64::new(1.0, 0.0); w];
            for i in list {
                if let Shape::Diag { qubits, d } = &cl[*i].0 {
                    if qubits.is_empty() {
                        *scale *= d[0];
                    }
                }
            }
            for &(q, z0, z1) in &factors {
                match self.loc(q) {
                    Loc::Lane(lb) => {
                        for (k, z) in lanes.iter_mut().enumerate() {
                            *z *= if (k >> lb) & 1 == 1 { z1 } else { z0 };
                        }
                    }
                    Loc::Reg(j) => {
                        *scale *= z0;
                        if z1 != z0 {
                            let ratio = z1 / z0;
                            let co = self.push_cmul(|_| ratio);
                            self.ops.push(POp::DiagHalf { reg: j, co });
                        }
                    }
                }
            }
            if lanes.iter().any(|&z| z != lanes[0]) {
                let sc = *scale;
                let co = self.push_cmul(|k| lanes[k] * sc);
                self.ops.push(POp::DiagAll { co });
                *scale = C64::new(1.0, 0.0);
            } else {
                *scale *= lanes[0];
            }
            return;
        }
        let size = 1usize << (l + r);
        let mut z = vec![C64::new(1.0, 0.0); size];
        for &i in list {
            let Shape::Diag { qubits, d } = &cl[i].0 else {
                continue;
            };
            let locs: Vec<Loc> = qubits.iter().map(|&q| self.loc(q)).collect();
            for (g, zg) in z.iter_mut().enumerate() {
                let (s, k) = (g >> l, g & (w - 1));
                let e: usize = locs
                    .iter()
                    .enumerate()
                    .map(|(j, loc)| {
                        let bit = match *loc {
                            Loc::Lane(lb) => (k >> lb) & 1,
                            Loc::Reg(jr) => (s >> jr) & 1,
                        };
                        bit << j
                    })
                    .sum();
                *zg *= d[e];
            }
        }
        let z0 = z[0];
        if z.iter().all(|&v| v == z0) {
            *scale *= z0;
            return;
        }
        let lanes_only = (0..size).all(|g| z[g] == z[g & (w - 1)]);
        if lanes_only {
            let sc = *scale;
            let co = self.push_cmul(|k| z[k] * sc);
            self.ops.push(POp::DiagAll { co });
            *scale = C64::new(1.0, 0.0);
            return;
        }
        // One register bit alone: z0 on its 0 half, z1 on its 1 half.
        for j in 0..r {
            let z1 = z[(1 << j) << l];
            let fits = (0..size).all(|g| z[g] == if (g >> l) >> j & 1 == 1 { z1 } else { z0 });
            if fits {
                *scale *= z0;
                let ratio = z1 / z0;
                let co = self.push_cmul(|_| ratio);
                self.ops.push(POp::DiagHalf { reg: j as u8, co });
                return;
            }
        }
        let sc = *scale;
        let co = self.coefs.len() / self.shape.vec_floats;
        for s in 0..1usize << r {
            self.push_cmul(|k| z[(s << l) | k] * sc);
        }
        self.ops.push(POp::Diag { co: co as u32 });
        *scale = C64::new(1.0, 0.0);
    }
}
