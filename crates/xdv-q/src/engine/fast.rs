//! The fast state-vector engine: strips SWAPs into a qubit relabelling, fuses the gates
//! ([`super::fusion`]), schedules them into cache-blocked sweeps and bit-exchange passes
//! ([`super::sched`]), converts each operation to the state's precision once and picks its kernel
//! by shape ([`super::kernels`], with the explicit SIMD of [`super::simd`]), then runs the steps
//! on a rayon pool built once.
//!
//! The state is cut into blocks of `2^b` amplitudes, `b` a function of the qubit count and the
//! precision alone (a block fills half a core's L2 cache). A sweep takes every block, one task
//! per block, through all its operations while the block is in cache; an exchange pass moves
//! qubits between high and low physical bits. Blocks are independent and every amplitude is
//! computed by the same operations whatever thread runs its block, so the result is
//! bit-identical for every thread count. At the end the qubits are put back on their own bits.

use super::fusion::FusedGate;
use super::fusion::{self, FastError};
use super::kernels::{Kernel, Scratch};
use super::program::{self, Entry};
use super::sched::{self, Step};
use super::simd::{self, Program, SimdLevel};
use super::Engine;
use crate::circuit::Gate;
use crate::real::Real;
use crate::state::StateVec;
use num_complex::Complex;
use rayon::prelude::*;
use std::borrow::Cow;
use std::sync::Mutex;

/// A block's size, log2 of bytes: 512 KiB, half of a core's L2 cache on current x86-64 parts.
const BLOCK_BYTES_LOG: u32 = 19;

/// A tile's size, log2 of bytes: 32 KiB, within a core's L1 data cache (measured best on a
/// 48 KiB L1: 6-9 % faster sweeps than no tiles; 16 KiB tiles gain less, 64 KiB ones nothing).
const TILE_BYTES_LOG: u32 = 15;

/// The smallest block, in qubits, when the state is larger.
const BLOCK_QUBITS_MIN: u32 = 10;

/// A state of more qubits than this is cut into at least 8 blocks (so that threads share work)
/// down to [`BLOCK_QUBITS_MIN`].
const BLOCKS_LOG_MIN: u32 = 3;

/// From this many qubits on, the register-program planner searches for better groups (below, a
/// program's pass costs less than the search).
const PROGRAM_SEARCH_QUBITS_MIN: u32 = 16;

/// States below this many qubits run on the calling thread: the work is smaller than the cost of
/// waking the pool.
const PARALLEL_QUBITS_MIN: u32 = 14;

/// Tuning of the fast engine.
#[derive(Clone, Debug, PartialEq)]
pub struct FastOptions {
    /// Whether gates are fused before they run.
    pub fusion: bool,
    /// The most qubits a fused dense operation may act on (1 to
    /// [`fusion::FUSED_QUBITS_LIMIT`]; larger values are treated as the limit).
    pub fused_qubits_max: u32,
    /// The most qubits a fused diagonal may act on (up to [`fusion::DIAGONAL_QUBITS_LIMIT`]).
    pub diagonal_qubits_max: u32,
    /// The widest SIMD instruction set the kernels may use (the CPU's widest up to this; lower it
    /// to force the AVX2 or the portable kernels).
    pub simd: SimdLevel,
    /// Log2 of the tile, in amplitudes, that runs of operations on a block's lowest qubits work
    /// on one at a time inside a sweep (so they stream from L1 rather than L2); 0 picks
    /// [`tile_qubits`]. Values at or above the block size turn tiling off.
    pub tile_qubits: u32,
    /// Whether a sweep's one- and two-qubit operations are grouped into register programs
    /// (several operations per load and store of each amplitude; AVX2 and AVX-512 only). Off,
    /// every operation runs as its own kernel.
    pub programs: bool,
}

impl Default for FastOptions {
    fn default() -> Self {
        FastOptions {
            fusion: true,
            fused_qubits_max: 2,
            diagonal_qubits_max: 12,
            simd: SimdLevel::default(),
            tile_qubits: 0,
            programs: true,
        }
    }
}

/// What one application (or, summed, several) did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FastStats {
    /// Gates given.
    pub gates_in: usize,
    /// Operations after fusion (exact identities and SWAPs dropped).
    pub gates_out: usize,
    /// Full passes over the state's memory: `sweeps + permutation_passes`.
    pub passes: usize,
    /// Sweeps: every block through a list of operations while it is in cache.
    pub sweeps: usize,
    /// Passes that exchange physical qubit bits (to bring targets into a block, or to restore the
    /// qubit order at the end).
    pub permutation_passes: usize,
    /// Register programs the sweeps ran (each several operations per load and store).
    pub programs: usize,
    /// Operations that ran inside register programs.
    pub program_ops: usize,
}

impl FastStats {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &FastStats) {
        self.gates_in += other.gates_in;
        self.gates_out += other.gates_out;
        self.passes += other.passes;
        self.sweeps += other.sweeps;
        self.permutation_passes += other.permutation_passes;
        self.programs += other.programs;
        self.program_ops += other.program_ops;
    }
}

/// The fast engine.
#[derive(Debug)]
pub struct Fast {
    threads: usize,
    pool: Option<rayon::ThreadPool>,
    opts: FastOptions,
    total: Mutex<FastStats>,
}

impl Fast {
    /// An engine on `threads` threads (0: every available core), default options. The result is
    /// bit-identical for every thread count.
    pub fn new(threads: usize) -> Fast {
        Fast::with_options(threads, FastOptions::default())
    }

    /// An engine on `threads` threads (0: every available core) with `opts`.
    pub fn with_options(threads: usize, opts: FastOptions) -> Fast {
        let threads = if threads == 0 {
            std::thread::available_parallelism().map_or(1, |n| n.get())
        } else {
            threads
        };
        // If the pool cannot be built, the engine runs on the calling thread: same results.
        let pool = (threads > 1)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .thread_name(|i| format!("xdv-q-fast-{i}"))
                    .build()
                    .ok()
            })
            .flatten();
        let threads = if pool.is_some() { threads } else { 1 };
        Fast {
            threads,
            pool,
            opts,
            total: Mutex::new(FastStats::default()),
        }
    }

    /// The number of threads it runs on.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Its options.
    pub fn options(&self) -> &FastOptions {
        &self.opts
    }

    /// The SIMD level the kernels run at on this CPU.
    pub fn simd_level(&self) -> SimdLevel {
        simd::effective(self.opts.simd)
    }

    /// Everything every application since the engine was created did, summed.
    pub fn stats_total(&self) -> FastStats {
        match self.total.lock() {
            Ok(t) => *t,
            Err(poisoned) => *poisoned.into_inner(),
        }
    }

    /// Applies `gates` to `state` in order and says what it did; refuses gates that do not fit
    /// the state, before touching it. Everything given is fused together: split the sequence at
    /// barriers before calling.
    pub fn apply_with_stats<T: Real>(
        &self,
        state: &mut StateVec<T>,
        gates: &[Gate],
    ) -> Result<FastStats, FastError> {
        let n = state.qubits();
        fusion::validate(gates, n)?;
        let (gates_v, label): (Cow<'_, [Gate]>, Vec<u32>) = if self.opts.fusion {
            let (g, l) = sched::strip_swaps(gates, n);
            (Cow::Owned(g), l)
        } else {
            (Cow::Borrowed(gates), (0..n).collect())
        };
        let planned = fusion::plan(&gates_v, n, &self.opts)?;
        let b = block_qubits::<T>(n);
        let (steps, phys) = sched::schedule(&planned, n, b);
        let pos: Vec<u32> = label.iter().map(|&v| phys[v as usize]).collect();
        let level = simd::effective(self.opts.simd);
        let tile = match self.opts.tile_qubits {
            0 => tile_qubits::<T>(),
            t => t,
        };
        let parallel = self.pool.is_some() && n >= PARALLEL_QUBITS_MIN;
        let untouched = state.take_untouched();
        let amps = state.amplitudes_mut();
        if untouched {
            // A fresh state's pages, faulted in from every thread before the first pass.
            self.in_pool(parallel, || simd::first_touch(amps, parallel));
        }
        let mut stats = FastStats {
            gates_in: gates.len(),
            gates_out: planned.len(),
            ..FastStats::default()
        };
        let restore = sched::restore_plan(&pos, b);
        let last_sweep = steps.iter().rposition(|s| matches!(s, Step::Sweep(_)));
        let pre = BlockPermutation::new(&restore.pre, b);
        let post = BlockPermutation::new(&restore.post, b);
        let mut pre_done = pre.is_none();
        for (i, step) in steps.iter().enumerate() {
            match step {
                Step::Sweep(ops) => {
                    let kernels = segments::<T>(ops, b, n, tile, level, self.opts.programs);
                    for seg in &kernels {
                        for item in &seg.items {
                            if let Item::Program(p) = item {
                                stats.programs += 1;
                                stats.program_ops += p.sources();
                            }
                        }
                    }
                    // The restore's first in-block permutation rides on the last sweep.
                    let tail = if Some(i) == last_sweep && i + 1 == steps.len() {
                        pre_done = true;
                        pre.as_ref()
                    } else {
                        None
                    };
                    if !kernels.is_empty() || tail.is_some() {
                        self.in_pool(parallel, || sweep(amps, b, level, &kernels, tail, parallel));
                        stats.sweeps += 1;
                    }
                }
                Step::Exchange(pairs) => {
                    if !pairs.is_empty() {
                        self.in_pool(parallel, || simd::exchange_bits(amps, pairs, parallel));
                        stats.permutation_passes += 1;
                    }
                }
            }
        }
        if !pre_done {
            self.in_pool(parallel, || {
                sweep(amps, b, level, &[], pre.as_ref(), parallel)
            });
            stats.permutation_passes += 1;
        }
        for pairs in &restore.exchanges {
            self.in_pool(parallel, || simd::exchange_bits(amps, pairs, parallel));
            stats.permutation_passes += 1;
        }
        if post.is_some() {
            self.in_pool(parallel, || {
                sweep(amps, b, level, &[], post.as_ref(), parallel)
            });
            stats.permutation_passes += 1;
        }
        stats.passes = stats.sweeps + stats.permutation_passes;
        match self.total.lock() {
            Ok(mut t) => t.add(&stats),
            Err(poisoned) => poisoned.into_inner().add(&stats),
        }
        Ok(stats)
    }

    fn in_pool(&self, parallel: bool, f: impl FnOnce() + Send) {
        match &self.pool {
            Some(pool) if parallel => pool.install(f),
            _ => f(),
        }
    }
}

impl<T: Real> Engine<T> for Fast {
    fn name(&self) -> &'static str {
        "fast"
    }

    /// Applies `gates` to `state`.
    ///
    /// # Panics
    ///
    /// If a gate does not fit the state (a qubit out of range or repeated, a matrix of the wrong
    /// shape): front ends validate gates, and [`Fast::apply_with_stats`] reports the same as an
    /// error.
    fn apply_gates(&self, state: &mut StateVec<T>, gates: &[Gate]) {
        if let Err(e) = self.apply_with_stats(state, gates) {
            panic!("fast engine: {e}");
        }
    }
}

/// The block size, log2, of the fast engine for an `n`-qubit state in precision `T` (never
/// dependent on the thread count): 512 KiB blocks (`2^16` amplitudes in `f32`, `2^15` in `f64`),
/// at least 8 of them down to `2^10`-amplitude blocks, the whole state when it is that small.
pub fn block_qubits<T: Real>(n: u32) -> u32 {
    let amp_log = std::mem::size_of::<Complex<T>>().trailing_zeros();
    let max = BLOCK_BYTES_LOG
        .saturating_sub(amp_log)
        .max(BLOCK_QUBITS_MIN);
    if n <= BLOCK_QUBITS_MIN {
        n
    } else {
        n.saturating_sub(BLOCKS_LOG_MIN)
            .clamp(BLOCK_QUBITS_MIN, max)
    }
}

/// The default tile size, log2, in amplitudes of precision `T`: 32 KiB (`2^12` amplitudes in
/// `f32`, `2^11` in `f64`).
pub fn tile_qubits<T: Real>() -> u32 {
    TILE_BYTES_LOG - std::mem::size_of::<Complex<T>>().trailing_zeros()
}

/// What a sweep runs on a piece of a block: one operation's kernel, or a register program.
enum Item<T: Real> {
    Kernel(Kernel<T>),
    Program(Program<T>),
}

impl<T: Real> Item<T> {
    fn is_local(&self) -> bool {
        match self {
            Item::Kernel(k) => k.is_local(),
            Item::Program(_) => true,
        }
    }
}

/// A sweep's operations in order, cut into segments: a run of two or more consecutive items
/// that each stay inside a `2^t`-amplitude tile (compiled for tiles) runs tile by tile; the
/// others run on the whole `2^b`-amplitude block. Every amplitude still goes through the same
/// operations in the same order.
struct Segment<T: Real> {
    /// Log2 of the piece the items run on: `t` (a tile) or `b` (the block).
    c: u32,
    items: Vec<Item<T>>,
}

/// A candidate for a tile segment: its form for tiles and for the whole block.
enum Cand<T: Real> {
    Kernel {
        tiled: Box<Kernel<T>>,
        whole: Box<Kernel<T>>,
    },
    Program(Program<T>),
}

impl<T: Real> Cand<T> {
    fn tiled(self) -> Item<T> {
        match self {
            Cand::Kernel { tiled, .. } => Item::Kernel(*tiled),
            Cand::Program(p) => Item::Program(p),
        }
    }

    fn whole(self) -> Item<T> {
        match self {
            Cand::Kernel { whole, .. } => Item::Kernel(*whole),
            Cand::Program(p) => Item::Program(p),
        }
    }
}

fn segments<T: Real>(
    ops: &[FusedGate],
    b: u32,
    n: u32,
    t: u32,
    level: SimdLevel,
    programs: bool,
) -> Vec<Segment<T>> {
    // Searching for better groups pays once a program's pass over the state costs more than
    // planning it.
    let search = n >= PROGRAM_SEARCH_QUBITS_MIN;
    let entries: Vec<Entry<T>> = programs
        .then(|| program::plan_sweep::<T>(ops, b, t, level, search))
        .flatten()
        .unwrap_or_else(|| (0..ops.len()).map(Entry::Op).collect());
    let mut out: Vec<Segment<T>> = Vec::new();
    let mut run: Vec<Cand<T>> = Vec::new();
    let flush = |run: &mut Vec<Cand<T>>, out: &mut Vec<Segment<T>>| {
        if run.len() >= 2 {
            out.push(Segment {
                c: t,
                items: run.drain(..).map(Cand::tiled).collect(),
            });
        } else {
            for cand in run.drain(..) {
                push_block(out, b, cand.whole());
            }
        }
    };
    for entry in entries {
        match entry {
            Entry::Program { prog, tile } => {
                if tile && t < b {
                    run.push(Cand::Program(prog));
                } else {
                    flush(&mut run, &mut out);
                    push_block(&mut out, b, Item::Program(prog));
                }
            }
            Entry::Op(i) => {
                let g = &ops[i];
                let Some(whole) = Kernel::compile(g, b, level) else {
                    continue;
                };
                let tiled = (t < b)
                    .then(|| Kernel::compile(g, t, level))
                    .flatten()
                    .filter(Kernel::is_local);
                match tiled {
                    Some(tiled) => run.push(Cand::Kernel {
                        tiled: Box::new(tiled),
                        whole: Box::new(whole),
                    }),
                    None => {
                        flush(&mut run, &mut out);
                        push_block(&mut out, b, Item::Kernel(whole));
                    }
                }
            }
        }
    }
    flush(&mut run, &mut out);
    out
}

fn push_block<T: Real>(out: &mut Vec<Segment<T>>, b: u32, item: Item<T>) {
    match out.last_mut() {
        Some(seg) if seg.c == b => seg.items.push(item),
        _ => out.push(Segment {
            c: b,
            items: vec![item],
        }),
    }
}

/// The block size, log2, for an `n`-qubit state in `f64` ([`block_qubits`]).
pub fn chunk_qubits(n: u32) -> u32 {
    block_qubits::<f64>(n)
}

/// One sweep: every block through every kernel, then through the in-block permutation `tail`.
fn sweep<T: Real>(
    amps: &mut [Complex<T>],
    b: u32,
    level: SimdLevel,
    segments: &[Segment<T>],
    tail: Option<&BlockPermutation>,
    parallel: bool,
) {
    debug_assert!(
        segments
            .iter()
            .all(|s| s.c <= b && s.items.iter().all(Item::is_local)),
        "a sweep kernel leaves its block"
    );
    let work = |(ci, chunk): (usize, &mut [Complex<T>])| {
        let base = ci << b;
        let mut scratch = Scratch::default();
        let mut gathered = Vec::new();
        for seg in segments {
            for (ti, piece) in chunk.chunks_mut(1 << seg.c).enumerate() {
                let tbase = base + (ti << seg.c);
                let mut parts = [piece];
                for item in &seg.items {
                    match item {
                        Item::Kernel(k) => {
                            if k.selects(tbase) {
                                k.apply(&mut parts, tbase, &mut scratch);
                            }
                        }
                        Item::Program(p) => {
                            let [piece] = &mut parts;
                            let ran = simd::run_program(level, piece, p);
                            assert!(ran, "fast engine: a register program did not run");
                        }
                    }
                }
            }
        }
        if let Some(t) = tail {
            t.apply(chunk, &mut gathered);
        }
    };
    if parallel {
        amps.par_chunks_mut(1 << b).enumerate().for_each(work);
    } else {
        amps.chunks_mut(1 << b).enumerate().for_each(work);
    }
}

/// An in-block permutation of one set of pairs of bits, none below this, is swapped in place.
const SWAP_RUN_LOG_MIN: u32 = 3;

/// A permutation of the index bits inside a block, applied by gathering through a scratch buffer
/// (the block is in cache): `new[i] = old[src(i)]`, `src` linear in the bits of `i`, looked up a
/// byte at a time.
struct BlockPermutation {
    tables: Vec<[usize; 256]>,
    /// How many of the lowest bits stay where they are.
    fixed_low: u32,
    /// A single set of disjoint pairs: exchanged in place instead (one read and one write of
    /// each amplitude that moves, no scratch).
    swaps: Option<Vec<(u32, u32)>>,
}

impl BlockPermutation {
    /// The permutation that applies the sets of disjoint bit pairs `sets` (bits below `b`) in
    /// order; `None` when there is nothing to do.
    fn new(sets: &[Vec<(u32, u32)>], b: u32) -> Option<BlockPermutation> {
        if sets.iter().all(Vec::is_empty) {
            return None;
        }
        // holder[p]: the original bit whose data is on bit p after the exchanges.
        let mut holder: Vec<u32> = (0..b).collect();
        for set in sets {
            for &(p, q) in set {
                holder.swap(p as usize, q as usize);
            }
        }
        let images: Vec<usize> = holder.iter().map(|&src| 1usize << src).collect();
        let tables = super::sched::bit_image_tables(&images);
        let fixed_low = holder
            .iter()
            .enumerate()
            .take_while(|&(p, &h)| p as u32 == h)
            .count() as u32;
        let sets: Vec<&Vec<(u32, u32)>> = sets.iter().filter(|s| !s.is_empty()).collect();
        // In place when the runs that move are long enough for whole-run swaps.
        let swaps = match sets.as_slice() {
            [one] if one.iter().all(|&(p, q)| p.min(q) >= SWAP_RUN_LOG_MIN) => Some((*one).clone()),
            _ => None,
        };
        Some(BlockPermutation {
            tables,
            fixed_low,
            swaps,
        })
    }

    /// The source index of `i`.
    fn src(&self, i: usize) -> usize {
        self.tables
            .iter()
            .enumerate()
            .fold(0, |acc, (k, t)| acc | t[(i >> (8 * k)) & 255])
    }

    fn apply<T: Real>(&self, chunk: &mut [Complex<T>], scratch: &mut Vec<Complex<T>>) {
        if let Some(pairs) = &self.swaps {
            simd::exchange_bits(chunk, pairs, false);
            return;
        }
        let n = chunk.len();
        if scratch.len() != n {
            scratch.clear();
            scratch.resize(n, Complex::new(T::zero(), T::zero()));
        }
        let run = (1usize << self.fixed_low).min(n);
        if run >= 8 {
            // The lowest bits stay: whole runs are copied.
            for (i, out) in scratch.chunks_exact_mut(run).enumerate() {
                let s = self.src(i * run);
                out.copy_from_slice(&chunk[s..s + run]);
            }
        } else if n >= 256 {
            // The low byte by its table, the rest once per 256.
            let t0 = &self.tables[0];
            for (i, out) in scratch.chunks_exact_mut(256).enumerate() {
                let h = self.src(i * 256);
                for (o, &l) in out.iter_mut().zip(t0.iter()) {
                    *o = chunk[h | l];
                }
            }
        } else {
            for (i, o) in scratch.iter_mut().enumerate() {
                *o = chunk[self.src(i)];
            }
        }
        chunk.copy_from_slice(scratch);
    }
}
