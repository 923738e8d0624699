//! The fast engine's kernels: one planned operation, converted to the state's precision once and
//! classified by shape, applied to one piece of the state.
//!
//! The state is cut into chunks of `2^c` amplitudes (`c` depends only on the qubit count, never on
//! the thread count). A kernel whose targets all lie below `c` — and every diagonal — works on one
//! chunk at a time (*local*); one with targets at or above `c` works on a *group* of `2^h` chunks
//! that differ only in those `h` high target bits (*wide*). Controls at or above `c` select whole
//! chunks or groups (the caller skips the others); controls below `c` and low targets are *fixed*
//! bits, and the kernels visit only the contiguous runs of indices that satisfy them.
//!
//! Shapes, all behind [`Kernel::apply`], the one dispatch point:
//! - `Dense2`: one target, dense 2×2 — the hot path, a zipped loop over two equal runs.
//! - `Anti2`: one target, anti-diagonal (X, Y and their controlled forms): exchange with phases.
//! - `Exchange`: two group members exchanged, no arithmetic (X, CX, CCX, SWAP, CSWAP).
//! - `Diagonal`: any number of qubits, phases looked up by index bits (Z, S, T, P, RZ, CP, RZZ,
//!   fused QFT phase runs, controlled diagonals with the controls expanded).
//! - `Permutation`: `k` targets, each output a copy (or a phase times a copy) of one input.
//! - `Dense4`: two targets, dense 4×4, on the four runs in place.
//! - `Dense`: `k` targets, gathered into a scratch block and multiplied out row by row.
//!
//! Every amplitude is computed by the same operations in the same order wherever its chunk falls
//! and whichever thread runs it, so results are bit-identical across thread counts. Rust never
//! contracts `a * b + c` into a fused multiply-add, so vectorised and scalar loops agree too.

use super::fusion::{controlled_diagonal, sort_dense, sort_diagonal, FusedGate, FusedOp};
use super::simd::{self, SimdLevel};
use crate::gates::{Matrix, C64};
use crate::real::Real;
use num_complex::Complex;

/// Runs of the gather/scatter kernels are at most `2^RUN_LOG_MAX` amplitudes, bounding scratch.
const RUN_LOG_MAX: u32 = 6;

/// The gather/scatter kernels work on batches of at least this many amplitudes per member.
const BATCH: usize = 64;

/// The diagonal kernel resolves the lowest `2^DIAG_BLOCK_LOG` index bits by a table.
const DIAG_BLOCK_LOG: u32 = 6;

/// The largest diagonal, in qubits, that a dense operation is converted into.
const DIAG_TABLE_QUBITS_MAX: usize = 16;

/// What a kernel does, in the state's precision.
#[derive(Clone, Debug)]
enum Body<T: Real> {
    /// `[m00, m01, m10, m11]` on one target, and which of its parts are exact zeros.
    Dense2([Complex<T>; 4], simd::Dense2Kind),
    /// `lo' = a·hi`, `hi' = b·lo` on one target.
    Anti2(Complex<T>, Complex<T>),
    /// Exchange of group members `lo` and `hi`, no arithmetic: X (members 0 and 1 of one
    /// target) and SWAP (members 1 and 2 of two targets).
    Exchange { lo: usize, hi: usize },
    /// Diagonal entries by index bits of `targets` (no controls).
    Diagonal(Diag<T>),
    /// `out[s] = phase[s] · in[from[s]]`, the phase omitted when it is exactly 1.
    Permutation {
        from: Vec<usize>,
        phase: Vec<Option<Complex<T>>>,
    },
    /// A dense 4×4 matrix on two targets, row-major, applied directly on the four runs.
    Dense4([Complex<T>; 16]),
    /// A dense `2^k × 2^k` matrix, row-major.
    Dense(Vec<Complex<T>>),
}

/// A diagonal's table and its low-bit lookup.
#[derive(Clone, Debug)]
struct Diag<T: Real> {
    table: Vec<Complex<T>>,
    /// Number of diagonal qubits below the block size.
    low_count: u32,
    /// For each index in a block, its table index from the low qubits.
    low_index: Vec<usize>,
    /// The diagonal's qubits, ascending.
    qubits: Vec<u32>,
    /// Block size, log2.
    block_log: u32,
    /// When small enough: for every assignment of the high qubits, the block's entries written
    /// out (`2^block_log` each), so the inner loop is a contiguous multiply.
    pattern: Option<Vec<Complex<T>>>,
    /// The table index from the high qubits, looked up a byte of `g >> block_log` at a time.
    high_tables: Vec<[usize; 256]>,
}

impl<T: Real> Diag<T> {
    /// The table index contributed by the qubits at or above the lookup block, for global
    /// index `g`.
    #[inline]
    fn high_index(&self, g: usize) -> usize {
        let h = g >> self.block_log;
        self.high_tables
            .iter()
            .enumerate()
            .fold(0, |acc, (k, t)| acc | t[(h >> (8 * k)) & 255])
    }
}

/// One planned operation ready to run on `2^c`-amplitude chunks.
#[derive(Clone, Debug)]
pub(crate) struct Kernel<T: Real> {
    body: Body<T>,
    /// Targets, ascending (matrices permuted to match).
    targets: Vec<u32>,
    /// Chunk size, log2.
    c: u32,
    /// Control bits at or above `c` and their required values (global index bits).
    high_ctl_mask: usize,
    high_ctl_val: usize,
    /// Bits below `c` fixed for every visited run (low targets at 0, low controls at their
    /// values), and the values.
    fixed_mask: usize,
    fixed_val: usize,
    /// Number of targets below `c`.
    low_targets: u32,
    /// In-chunk offset of each assignment of the low targets.
    low_offsets: Vec<usize>,
    /// The SIMD level the kernel runs at (already capped by the CPU's).
    simd: SimdLevel,
}

impl<T: Real> Kernel<T> {
    /// Converts a planned operation for chunks of `2^c` amplitudes, to run at SIMD level `simd`
    /// (as [`simd::effective`] gives it); `None` for an exact identity.
    pub(crate) fn compile(g: &FusedGate, c: u32, simd: SimdLevel) -> Option<Kernel<T>> {
        let (targets, controls, ctrl_state, op) = normalise(g);
        if let FusedOp::Diagonal(d) = &op {
            if d.iter().all(|&z| z == C64::new(1.0, 0.0)) {
                return None;
            }
        }
        let (mut cmask, mut cval) = (0usize, 0usize);
        for (i, &q) in controls.iter().enumerate() {
            cmask |= 1 << q;
            if ctrl_state >> i & 1 == 1 {
                cval |= 1 << q;
            }
        }
        let chunk_mask = (1usize << c) - 1;
        let body = classify::<T>(&targets, &op, c);
        let is_diag = matches!(body, Body::Diagonal(_));
        let low: Vec<u32> = if is_diag {
            Vec::new()
        } else {
            targets.iter().copied().filter(|&q| q < c).collect()
        };
        let low_tmask: usize = low.iter().map(|&q| 1usize << q).sum();
        let low_offsets = (0..1usize << low.len())
            .map(|s| {
                low.iter()
                    .enumerate()
                    .map(|(j, &q)| ((s >> j) & 1) << q)
                    .sum()
            })
            .collect();
        Some(Kernel {
            body,
            targets,
            c,
            high_ctl_mask: cmask & !chunk_mask,
            high_ctl_val: cval & !chunk_mask,
            fixed_mask: low_tmask | (cmask & chunk_mask),
            fixed_val: cval & chunk_mask,
            low_targets: low.len() as u32,
            low_offsets,
            simd,
        })
    }

    /// Whether the kernel works on one chunk at a time.
    pub(crate) fn is_local(&self) -> bool {
        matches!(self.body, Body::Diagonal(_)) || self.low_targets as usize == self.targets.len()
    }

    /// Whether the high controls hold for the chunk or group starting at global index `base`.
    pub(crate) fn selects(&self, base: usize) -> bool {
        base & self.high_ctl_mask == self.high_ctl_val
    }

    /// Applies the kernel to `parts`: one chunk (local) or the `2^h` chunks of a group in order
    /// of their high target bits (wide), `base` the global index of `parts[0][0]`. `scratch` is
    /// reused between calls.
    pub(crate) fn apply(
        &self,
        parts: &mut [&mut [Complex<T>]],
        base: usize,
        scratch: &mut Scratch<T>,
    ) {
        match &self.body {
            Body::Dense2(m, kind) => {
                let (m, kind, level) = (*m, *kind, self.simd);
                if let [chunk] = parts {
                    let dist = self.low_offsets.get(1).copied().unwrap_or(0);
                    let t = dist.trailing_zeros();
                    if self.low_targets == 1
                        && self.fixed_mask == dist
                        && simd::dense2_block(level, chunk, t, &m, kind)
                    {
                        return;
                    }
                }
                self.pairs(parts, 0, 1, |a, b| {
                    if !simd::dense2_runs(level, a, b, &m, kind) {
                        dense2(a, b, &m);
                    }
                });
            }
            Body::Anti2(x, y) => {
                let (x, y) = (*x, *y);
                self.pairs(parts, 0, 1, |a, b| anti2(a, b, x, y));
            }
            Body::Exchange { lo, hi } => {
                if let ([chunk], 0, 1, 1) = (&mut *parts, *lo, *hi, self.low_targets) {
                    // An X or a CX inside the block: the SIMD kernel.
                    let dist = self.low_offsets[1];
                    let ctl = self.fixed_mask & !dist;
                    let control = match ctl.count_ones() {
                        0 => Some(None),
                        1 => Some(Some((ctl.trailing_zeros(), self.fixed_val & ctl != 0))),
                        _ => None,
                    };
                    if let Some(control) = control {
                        if self.fixed_mask & dist != 0
                            && simd::cx_block(self.simd, chunk, control, dist.trailing_zeros())
                        {
                            return;
                        }
                    }
                }
                self.pairs(parts, *lo, *hi, |a, b| a.swap_with_slice(b));
            }
            Body::Diagonal(d) => {
                if let Some(chunk) = parts.first_mut() {
                    diagonal(chunk, base, d, self.simd);
                }
            }
            Body::Dense4(m) => self.dense4(parts, m),
            Body::Permutation { .. } | Body::Dense(_) => self.gathered(parts, scratch),
        }
    }

    /// Where group member `s` (an assignment of all targets) lives: part and in-chunk offset.
    fn member(&self, s: usize) -> (usize, usize) {
        let kl = self.low_targets;
        (s >> kl, self.low_offsets[s & ((1 << kl) - 1)])
    }

    /// Calls `f` on every pair of equal runs of members `s_lo` and `s_hi` (`s_lo < s_hi`).
    fn pairs(
        &self,
        parts: &mut [&mut [Complex<T>]],
        s_lo: usize,
        s_hi: usize,
        f: impl Fn(&mut [Complex<T>], &mut [Complex<T>]),
    ) {
        let (p_lo, o_lo) = self.member(s_lo);
        let (p_hi, o_hi) = self.member(s_hi);
        if p_lo == p_hi {
            let dist = o_hi - o_lo;
            let Some(chunk) = parts.get_mut(p_lo) else {
                return;
            };
            if self.fixed_mask == dist && o_lo == 0 {
                // One low target and nothing else fixed: the plain blocked loop, with the
                // stride a constant for the lowest qubits so the loop body unrolls.
                match dist {
                    1 => blocked::<T, 1>(chunk, &f),
                    2 => blocked::<T, 2>(chunk, &f),
                    4 => blocked::<T, 4>(chunk, &f),
                    8 => blocked::<T, 8>(chunk, &f),
                    _ => {
                        for blk in chunk.chunks_exact_mut(2 * dist) {
                            let (a, b) = blk.split_at_mut(dist);
                            f(a, b);
                        }
                    }
                }
                return;
            }
            for_each_run(self.c, self.fixed_mask, self.fixed_val, 63, |start, len| {
                let (a, b) = chunk[start + o_lo..].split_at_mut(dist);
                f(&mut a[..len], &mut b[..len]);
            });
        } else {
            let (lo_parts, hi_parts) = parts.split_at_mut(p_hi);
            let (Some(lo), Some(hi)) = (lo_parts.get_mut(p_lo), hi_parts.first_mut()) else {
                return;
            };
            for_each_run(self.c, self.fixed_mask, self.fixed_val, 63, |start, len| {
                f(
                    &mut lo[start + o_lo..][..len],
                    &mut hi[start + o_hi..][..len],
                );
            });
        }
    }

    /// The two-target dense kernel: the four members' runs as slices, multiplied in place.
    fn dense4(&self, parts: &mut [&mut [Complex<T>]], m: &[Complex<T>; 16]) {
        let level = self.simd;
        if let [chunk] = parts {
            let (d0, d1) = (self.low_offsets[1], self.low_offsets[2]);
            if self.low_targets == 2
                && self.fixed_mask == d0 | d1
                && simd::dense4_block(level, chunk, d0.trailing_zeros(), d1.trailing_zeros(), m)
            {
                return;
            }
        }
        let members = [0, 1, 2, 3].map(|s| self.member(s));
        for_each_run(self.c, self.fixed_mask, self.fixed_val, 63, |start, len| {
            let mut runs = member_runs(parts, &members, start, len);
            if simd::dense4_runs(level, &mut runs, m) {
                return;
            }
            let [a, b, c, d] = runs;
            for (((w, x), y), z) in a.iter_mut().zip(b.iter_mut()).zip(c.iter_mut()).zip(d) {
                let v = [*w, *x, *y, *z];
                let row = |r: usize| {
                    m[4 * r] * v[0]
                        + m[4 * r + 1] * v[1]
                        + (m[4 * r + 2] * v[2] + m[4 * r + 3] * v[3])
                };
                *w = row(0);
                *x = row(1);
                *y = row(2);
                *z = row(3);
            }
        });
    }

    /// The gather/scatter kernels: runs are collected into batches of at least [`BATCH`]
    /// amplitudes per member (short runs — a low target or control — are many to a batch), every
    /// member's runs are copied to scratch, and every output row is computed over the whole
    /// batch as one contiguous loop, then written back.
    fn gathered(&self, parts: &mut [&mut [Complex<T>]], scratch: &mut Scratch<T>) {
        let mut runs: Vec<(usize, usize)> = Vec::with_capacity(BATCH);
        let mut total = 0;
        for_each_run(
            self.c,
            self.fixed_mask,
            self.fixed_val,
            RUN_LOG_MAX,
            |start, len| {
                runs.push((start, len));
                total += len;
                if total >= BATCH {
                    self.batch(parts, &runs, total, scratch);
                    runs.clear();
                    total = 0;
                }
            },
        );
        if total > 0 {
            self.batch(parts, &runs, total, scratch);
        }
    }

    /// One batch of the gather/scatter kernels: `runs` (start, length) holding `total`
    /// amplitudes per member. Scratch holds real and imaginary parts apart, so the arithmetic
    /// loops are plain loops over `T` that vectorise.
    fn batch(
        &self,
        parts: &mut [&mut [Complex<T>]],
        runs: &[(usize, usize)],
        total: usize,
        sc: &mut Scratch<T>,
    ) {
        let dim = 1usize << self.targets.len();
        let size = (dim + 1) * total;
        sc.re.resize(size, T::zero());
        sc.im.resize(size, T::zero());
        for s in 0..dim {
            let (p, o) = self.member(s);
            let xr = &mut sc.re[s * total..][..total];
            let xi = &mut sc.im[s * total..][..total];
            let mut i = 0;
            for &(start, len) in runs {
                let src = &parts[p][start + o..][..len];
                for ((r, m), a) in xr[i..i + len].iter_mut().zip(&mut xi[i..i + len]).zip(src) {
                    *r = a.re;
                    *m = a.im;
                }
                i += len;
            }
        }
        let (xr, yr) = sc.re.split_at_mut(dim * total);
        let (xi, yi) = sc.im.split_at_mut(dim * total);
        for r in 0..dim {
            let (sr, si): (&[T], &[T]) = match &self.body {
                Body::Permutation { from, phase } => {
                    let ar = &xr[from[r] * total..][..total];
                    let ai = &xi[from[r] * total..][..total];
                    match phase[r] {
                        None => (ar, ai),
                        Some(z) => {
                            cmul_into(yr, yi, z, ar, ai);
                            (yr, yi)
                        }
                    }
                }
                Body::Dense(m) => {
                    let row = &m[r * dim..][..dim];
                    let mut first = true;
                    for (col, &z) in row.iter().enumerate() {
                        if z.re == T::zero() && z.im == T::zero() {
                            continue;
                        }
                        let ar = &xr[col * total..][..total];
                        let ai = &xi[col * total..][..total];
                        if first {
                            cmul_into(yr, yi, z, ar, ai);
                            first = false;
                        } else {
                            cmul_acc(yr, yi, z, ar, ai);
                        }
                    }
                    if first {
                        yr.fill(T::zero());
                        yi.fill(T::zero());
                    }
                    (yr, yi)
                }
                _ => return,
            };
            let (p, o) = self.member(r);
            let mut i = 0;
            for &(start, len) in runs {
                let dst = &mut parts[p][start + o..][..len];
                for (d, (&re, &im)) in dst
                    .iter_mut()
                    .zip(sr[i..i + len].iter().zip(&si[i..i + len]))
                {
                    *d = Complex::new(re, im);
                }
                i += len;
            }
        }
    }
}

/// The runs `[start, start + len)` of each member (`(part, offset)`, in ascending order), as
/// disjoint slices.
fn member_runs<'a, T, const D: usize>(
    parts: &'a mut [&mut [Complex<T>]],
    members: &[(usize, usize); D],
    start: usize,
    len: usize,
) -> [&'a mut [Complex<T>]; D] {
    let mut out: [Option<&'a mut [Complex<T>]>; D] = [(); D].map(|_| None);
    let mut it = parts.iter_mut().enumerate();
    let mut cur: Option<(usize, &'a mut [Complex<T>])> = None;
    let mut pos = 0;
    for (j, &(p, o)) in members.iter().enumerate() {
        if cur.as_ref().is_none_or(|(q, _)| *q != p) {
            cur = it
                .by_ref()
                .find(|(q, _)| *q == p)
                .map(|(q, part)| (q, &mut part[..]));
            pos = 0;
        }
        if let Some((_, rest)) = cur.as_mut() {
            let tail = std::mem::take(rest);
            let (_, tail) = tail.split_at_mut(start + o - pos);
            let (run, after) = tail.split_at_mut(len);
            out[j] = Some(run);
            *rest = after;
            pos = start + o + len;
        }
    }
    out.map(Option::unwrap_or_default)
}

/// Scratch space of the gather/scatter kernels, real and imaginary parts apart; reused.
#[derive(Debug, Default)]
pub(crate) struct Scratch<T> {
    re: Vec<T>,
    im: Vec<T>,
}

/// `y = z · a` over split real and imaginary parts (the same operations as `Complex`'s `*`).
#[inline(always)]
fn cmul_into<T: Real>(yr: &mut [T], yi: &mut [T], z: Complex<T>, ar: &[T], ai: &[T]) {
    for ((r, m), (&u, &v)) in yr.iter_mut().zip(yi.iter_mut()).zip(ar.iter().zip(ai)) {
        *r = z.re * u - z.im * v;
        *m = z.re * v + z.im * u;
    }
}

/// `y = y + z · a` over split real and imaginary parts.
#[inline(always)]
fn cmul_acc<T: Real>(yr: &mut [T], yi: &mut [T], z: Complex<T>, ar: &[T], ai: &[T]) {
    for ((r, m), (&u, &v)) in yr.iter_mut().zip(yi.iter_mut()).zip(ar.iter().zip(ai)) {
        *r = *r + (z.re * u - z.im * v);
        *m = *m + (z.re * v + z.im * u);
    }
}

/// Targets ascending with the operation permuted to match; a diagonal keeps no controls.
pub(crate) fn normalise(g: &FusedGate) -> (Vec<u32>, Vec<u32>, u64, FusedOp) {
    match &g.op {
        FusedOp::Dense(m) => {
            let (t, m) = sort_dense(&g.targets, m);
            let nq = t.len() + g.controls.len();
            if m.is_diagonal() && nq <= DIAG_TABLE_QUBITS_MAX {
                let d: Vec<C64> = (0..m.dim).map(|i| m.at(i, i)).collect();
                let diag = FusedGate {
                    targets: t,
                    controls: g.controls.clone(),
                    ctrl_state: g.ctrl_state,
                    op: FusedOp::Diagonal(d),
                    sources: g.sources,
                };
                return normalise(&diag);
            }
            (t, g.controls.clone(), g.ctrl_state, FusedOp::Dense(m))
        }
        FusedOp::Diagonal(d) => {
            let args: Vec<u32> = g.controls.iter().chain(&g.targets).copied().collect();
            let full = controlled_diagonal(d, g.controls.len(), g.ctrl_state);
            let (t, d) = sort_diagonal(&args, &full);
            (t, Vec::new(), 0, FusedOp::Diagonal(d))
        }
    }
}

/// Picks the kernel shape for a normalised operation.
fn classify<T: Real>(targets: &[u32], op: &FusedOp, c: u32) -> Body<T> {
    let m = match op {
        FusedOp::Diagonal(d) => return Body::Diagonal(Diag::new(targets, d, c)),
        FusedOp::Dense(m) => m,
    };
    let k = targets.len();
    let zero = C64::new(0.0, 0.0);
    let one = C64::new(1.0, 0.0);
    let cv = |z: C64| T::c(z);
    if k == 1 {
        if m.at(0, 0) == zero && m.at(1, 1) == zero {
            if m.at(0, 1) == one && m.at(1, 0) == one {
                return Body::Exchange { lo: 0, hi: 1 };
            }
            return Body::Anti2(cv(m.at(0, 1)), cv(m.at(1, 0)));
        }
        let m = [
            cv(m.at(0, 0)),
            cv(m.at(0, 1)),
            cv(m.at(1, 0)),
            cv(m.at(1, 1)),
        ];
        return Body::Dense2(m, simd::Dense2Kind::of(&m));
    }
    if k == 2 && *m == swap_matrix() {
        return Body::Exchange { lo: 1, hi: 2 };
    }
    let dim = m.dim;
    let mut from = Vec::with_capacity(dim);
    let mut phase = Vec::with_capacity(dim);
    let mut used = vec![false; dim];
    let mut is_perm = true;
    for r in 0..dim {
        let nz: Vec<usize> = (0..dim).filter(|&c| m.at(r, c) != zero).collect();
        match nz.as_slice() {
            [c] if !used[*c] => {
                used[*c] = true;
                from.push(*c);
                let z = m.at(r, *c);
                phase.push((z != one).then(|| cv(z)));
            }
            _ => {
                is_perm = false;
                break;
            }
        }
    }
    if is_perm {
        return Body::Permutation { from, phase };
    }
    if k == 2 {
        let mut d = [Complex::new(T::zero(), T::zero()); 16];
        for (o, &z) in d.iter_mut().zip(&m.data) {
            *o = cv(z);
        }
        return Body::Dense4(d);
    }
    Body::Dense(m.data.iter().map(|&z| cv(z)).collect())
}

fn swap_matrix() -> Matrix {
    let mut m = Matrix::identity(4);
    m.data[5] = C64::new(0.0, 0.0);
    m.data[10] = C64::new(0.0, 0.0);
    m.data[6] = C64::new(1.0, 0.0);
    m.data[9] = C64::new(1.0, 0.0);
    m
}

/// The largest written-out diagonal pattern, in entries.
const DIAG_PATTERN_ENTRIES_MAX: usize = 1 << 14;

impl<T: Real> Diag<T> {
    fn new(qubits: &[u32], d: &[C64], c: u32) -> Self {
        let block_log = DIAG_BLOCK_LOG.min(c);
        let low_count = qubits.iter().filter(|&&q| q < block_log).count() as u32;
        let low_index: Vec<usize> = (0..1usize << block_log)
            .map(|l| {
                qubits[..low_count as usize]
                    .iter()
                    .enumerate()
                    .map(|(j, &q)| ((l >> q) & 1) << j)
                    .sum()
            })
            .collect();
        let table: Vec<Complex<T>> = d.iter().map(|&z| T::c(z)).collect();
        let high_rows = table.len() >> low_count;
        let pattern =
            (low_count > 0 && high_rows << block_log <= DIAG_PATTERN_ENTRIES_MAX).then(|| {
                (0..high_rows)
                    .flat_map(|h| {
                        let sub = &table[h << low_count..][..1 << low_count];
                        low_index.iter().map(move |&li| sub[li])
                    })
                    .collect()
            });
        let top = qubits.iter().map(|&q| q + 1).max().unwrap_or(0);
        let high_bits = top.saturating_sub(block_log);
        let high_tables = (0..high_bits.div_ceil(8))
            .map(|k| {
                let mut t = [0usize; 256];
                for (v, e) in t.iter_mut().enumerate() {
                    *e = qubits
                        .iter()
                        .enumerate()
                        .skip(low_count as usize)
                        .filter(|&(_, &q)| {
                            let b = q - block_log;
                            b / 8 == k && (v >> (b % 8)) & 1 == 1
                        })
                        .fold(0, |acc, (j, _)| acc | 1 << j);
                }
                t
            })
            .collect();
        Diag {
            table,
            low_count,
            low_index,
            qubits: qubits.to_vec(),
            block_log,
            pattern,
            high_tables,
        }
    }
}

/// Visits every run of `2^r` consecutive in-chunk indices whose fixed bits hold their values,
/// `r` the lowest fixed bit (at most `len_log_max`, at most `c`): `f(start, len)`.
fn for_each_run(
    c: u32,
    fixed_mask: usize,
    fixed_val: usize,
    len_log_max: u32,
    mut f: impl FnMut(usize, usize),
) {
    let r = fixed_mask.trailing_zeros().min(c).min(len_log_max);
    let len = 1usize << r;
    let free = ((1usize << c) - 1) & !fixed_mask & !(len - 1);
    let mut x = 0usize;
    loop {
        f(x | fixed_val, len);
        if x == free {
            break;
        }
        x = (x | !free).wrapping_add(1) & free;
    }
}

/// The blocked pair loop for a compile-time stride `D` (runs of `D`, blocks of `2D`).
#[inline(always)]
fn blocked<T: Real, const D: usize>(
    chunk: &mut [Complex<T>],
    f: &impl Fn(&mut [Complex<T>], &mut [Complex<T>]),
) {
    for blk in chunk.chunks_exact_mut(2 * D) {
        let (a, b) = blk.split_at_mut(D);
        f(&mut a[..D], &mut b[..D]);
    }
}

/// The 2×2 kernel: `a' = m00·a + m01·b`, `b' = m10·a + m11·b`, elementwise over two runs.
#[inline(always)]
fn dense2<T: Real>(a: &mut [Complex<T>], b: &mut [Complex<T>], m: &[Complex<T>; 4]) {
    let [m0, m1, m2, m3] = *m;
    for (x, y) in a.iter_mut().zip(b.iter_mut()) {
        let (u, v) = (*x, *y);
        *x = Complex::new(
            m0.re * u.re - m0.im * u.im + (m1.re * v.re - m1.im * v.im),
            m0.re * u.im + m0.im * u.re + (m1.re * v.im + m1.im * v.re),
        );
        *y = Complex::new(
            m2.re * u.re - m2.im * u.im + (m3.re * v.re - m3.im * v.im),
            m2.re * u.im + m2.im * u.re + (m3.re * v.im + m3.im * v.re),
        );
    }
}

/// The anti-diagonal kernel: `a' = x·b`, `b' = y·a`.
#[inline(always)]
fn anti2<T: Real>(a: &mut [Complex<T>], b: &mut [Complex<T>], x: Complex<T>, y: Complex<T>) {
    for (p, q) in a.iter_mut().zip(b.iter_mut()) {
        let (u, v) = (*p, *q);
        *p = x * v;
        *q = y * u;
    }
}

/// The diagonal kernel on one chunk starting at global index `base`.
fn diagonal<T: Real>(chunk: &mut [Complex<T>], base: usize, d: &Diag<T>, level: SimdLevel) {
    let one = Complex::new(T::one(), T::zero());
    let lc = d.low_count as usize;
    let block = 1usize << d.block_log;
    if lc == 0 {
        // Only qubits at or above the lookup block: one entry holds for runs of `2^q`, `q` the
        // lowest of them.
        let span = d
            .qubits
            .first()
            .map_or(chunk.len(), |&q| {
                1usize.checked_shl(q).unwrap_or(usize::MAX)
            })
            .min(chunk.len())
            .max(1);
        for (si, piece) in chunk.chunks_exact_mut(span).enumerate() {
            let hidx = d.high_index(base + si * span);
            let z = d.table[hidx];
            if z != one && !simd::cscale(level, piece, z) {
                for a in piece.iter_mut() {
                    *a = *a * z;
                }
            }
        }
        return;
    }
    let mut row = [one; 1 << DIAG_BLOCK_LOG];
    let mut last = None;
    for (bi, blk) in chunk.chunks_exact_mut(block).enumerate() {
        let hidx = d.high_index(base + bi * block);
        if let Some(pattern) = &d.pattern {
            let row = &pattern[(hidx >> lc) * block..][..block];
            if simd::cmul(level, blk, row) {
                continue;
            }
            for (a, &z) in blk.iter_mut().zip(row) {
                *a = *a * z;
            }
            continue;
        }
        let sub = &d.table[hidx..hidx + (1 << lc)];
        if lc == 0 {
            let z = sub[0];
            if z != one && !simd::cscale(level, blk, z) {
                for a in blk.iter_mut() {
                    *a = *a * z;
                }
            }
        } else {
            // The block's entries written out (reused while the high qubits' index stays), then
            // one contiguous multiply.
            if last != Some(hidx) {
                for (r, &li) in row.iter_mut().zip(&d.low_index) {
                    *r = sub[li];
                }
                last = Some(hidx);
            }
            if simd::cmul(level, blk, &row[..block]) {
                continue;
            }
            for (a, &z) in blk.iter_mut().zip(&row[..block]) {
                *a = *a * z;
            }
        }
    }
}
