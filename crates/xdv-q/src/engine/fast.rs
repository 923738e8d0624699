//! The fast state-vector engine: fuses the gates ([`super::fusion`]), converts each fused
//! operation to the state's precision once and picks its kernel by shape ([`super::kernels`]),
//! then runs the kernels in passes over the state on a rayon pool built once.
//!
//! The state is cut into chunks of `2^c` amplitudes, `c` a function of the qubit count alone.
//! Consecutive kernels that each work within one chunk (all targets below `c`, or diagonal) form
//! one *blocked* pass: every chunk goes through all of them while it is in cache. A kernel with a
//! target at or above `c` is a pass of its own over groups of chunks. Chunks (or groups) are the
//! unit of parallel work; every amplitude is computed by the same operations whatever thread runs
//! its chunk, so the result is bit-identical for every thread count.

use super::fusion::{self, FastError};
use super::kernels::{Kernel, Scratch};
use super::Engine;
use crate::circuit::Gate;
use crate::real::Real;
use crate::state::StateVec;
use num_complex::Complex;
use rayon::prelude::*;

/// The largest chunk, in qubits: `2^14` amplitudes (256 KiB in `f64`), kept in a core's cache
/// while a blocked pass runs through it.
const CHUNK_QUBITS_MAX: u32 = 14;

/// The smallest chunk, in qubits, when the state is larger.
const CHUNK_QUBITS_MIN: u32 = 10;

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
}

impl Default for FastOptions {
    fn default() -> Self {
        FastOptions {
            fusion: true,
            fused_qubits_max: 2,
            diagonal_qubits_max: 12,
        }
    }
}

/// What one application did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FastStats {
    /// Gates given.
    pub gates_in: usize,
    /// Operations after fusion (exact identities dropped).
    pub gates_out: usize,
    /// Passes over the state (a blocked pass runs several operations per chunk).
    pub passes: usize,
}

/// The fast engine.
#[derive(Debug)]
pub struct Fast {
    threads: usize,
    pool: Option<rayon::ThreadPool>,
    opts: FastOptions,
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

    /// Applies `gates` to `state` in order and says what it did; refuses gates that do not fit
    /// the state, before touching it. Everything given is fused together: split the sequence at
    /// barriers before calling.
    pub fn apply_with_stats<T: Real>(
        &self,
        state: &mut StateVec<T>,
        gates: &[Gate],
    ) -> Result<FastStats, FastError> {
        let n = state.qubits();
        let planned = fusion::plan(gates, n, &self.opts)?;
        let c = chunk_qubits(n);
        let kernels: Vec<Kernel<T>> = planned
            .iter()
            .filter_map(|g| Kernel::compile(g, c))
            .collect();
        let passes = self.run(state.amplitudes_mut(), n, c, &kernels);
        Ok(FastStats {
            gates_in: gates.len(),
            gates_out: planned.len(),
            passes,
        })
    }

    /// Runs `kernels` in passes; returns the number of passes.
    fn run<T: Real>(
        &self,
        amps: &mut [Complex<T>],
        n: u32,
        c: u32,
        kernels: &[Kernel<T>],
    ) -> usize {
        let parallel = self.pool.is_some() && n >= PARALLEL_QUBITS_MIN;
        let mut passes = 0;
        let mut i = 0;
        while i < kernels.len() {
            let mut j = i;
            while j < kernels.len() && kernels[j].is_local() {
                j += 1;
            }
            if j > i {
                self.in_pool(parallel, || blocked_pass(amps, c, &kernels[i..j], parallel));
                passes += 1;
                i = j;
            } else {
                self.in_pool(parallel, || wide_pass(amps, c, &kernels[i], parallel));
                passes += 1;
                i += 1;
            }
        }
        passes
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

/// The chunk size, log2, for an `n`-qubit state (never dependent on the thread count).
pub fn chunk_qubits(n: u32) -> u32 {
    if n <= CHUNK_QUBITS_MIN {
        n
    } else {
        n.saturating_sub(4)
            .clamp(CHUNK_QUBITS_MIN, CHUNK_QUBITS_MAX)
    }
}

/// Every chunk through every kernel of the run.
fn blocked_pass<T: Real>(amps: &mut [Complex<T>], c: u32, kernels: &[Kernel<T>], parallel: bool) {
    let work = |(ci, chunk): (usize, &mut [Complex<T>])| {
        let base = ci << c;
        let mut scratch = Scratch::default();
        let mut parts = [chunk];
        for k in kernels {
            if k.selects(base) {
                k.apply(&mut parts, base, &mut scratch);
            }
        }
    };
    if parallel {
        amps.par_chunks_mut(1 << c).enumerate().for_each(work);
    } else {
        amps.chunks_mut(1 << c).enumerate().for_each(work);
    }
}

/// One wide kernel over groups of chunks that differ only in its high target bits.
fn wide_pass<T: Real>(amps: &mut [Complex<T>], c: u32, kernel: &Kernel<T>, parallel: bool) {
    let hmask = kernel.high_target_chunk_mask();
    let h = hmask.count_ones();
    let nchunks = amps.len() >> c;
    let mut groups: Vec<(usize, Vec<&mut [Complex<T>]>)> = (0..nchunks >> h)
        .map(|_| (usize::MAX, Vec::with_capacity(1 << h)))
        .collect();
    for (j, chunk) in amps.chunks_mut(1 << c).enumerate() {
        let g = &mut groups[compress(j, hmask)];
        if g.0 == usize::MAX {
            g.0 = j << c;
        }
        g.1.push(chunk);
    }
    groups.retain(|(base, _)| kernel.selects(*base));
    let work = |(base, mut parts): (usize, Vec<&mut [Complex<T>]>)| {
        let mut scratch = Scratch::default();
        kernel.apply(&mut parts, base, &mut scratch);
    };
    if parallel {
        groups.into_par_iter().for_each(work);
    } else {
        groups.into_iter().for_each(work);
    }
}

/// `j` with the bits of `mask` removed (the higher bits shifted down).
fn compress(j: usize, mask: usize) -> usize {
    let mut out = 0;
    let mut o = 0;
    for b in 0..usize::BITS {
        if mask >> b & 1 == 0 {
            out |= ((j >> b) & 1) << o;
            o += 1;
        }
    }
    out
}
