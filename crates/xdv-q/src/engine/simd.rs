//! Explicit SIMD kernels for the fast engine, and its in-place bit-exchange pass — the one module
//! of the crate that uses `unsafe`.
//!
//! The kernels use `std::arch::x86_64` AVX2+FMA or AVX-512F, chosen once at run time with
//! `is_x86_feature_detected!` (capped by [`SimdLevel`], so tests can force the narrower path or
//! the portable one on a wider CPU). Every entry point returns `false` when it cannot take the
//! case (no SIMD on this CPU or target, runs shorter than a vector, a shape it does not cover), and
//! the caller then runs the portable kernel of [`super::kernels`]. On other targets the module
//! compiles to those `false` answers alone.
//!
//! The state is interleaved `Complex<T>` (`re, im` pairs; `num_complex::Complex` is `repr(C)`).
//! A complex product `m·a` on a vector of amplitudes is `addsub(m.re·a, m.im·swap_pairs(a))`;
//! a target bit below the vector width is handled by a lane permutation and per-lane
//! coefficients. Every amplitude goes through the same instructions whichever block it is in and
//! whichever thread runs the block, so results stay bit-identical across thread counts (they may
//! differ from the portable kernels in the last bits: FMA rounds once).
//!
//! [`exchange_bits`] swaps amplitude runs between disjoint pairs of positions from several
//! threads at once; the pairs of an involution are disjoint, which is what makes that sound.
#![allow(unsafe_code)]

use crate::real::Real;
use num_complex::Complex;
use rayon::prelude::*;

/// The widest instruction set the fast engine may use (it uses the widest the CPU has, up to
/// this).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SimdLevel {
    /// The portable kernels only (what runs on CPUs without AVX2 and FMA).
    Portable,
    /// AVX2 with FMA: 256-bit vectors.
    Avx2,
    /// AVX-512F: 512-bit vectors.
    #[default]
    Avx512,
}

impl SimdLevel {
    /// The level's name, for reports (`portable`, `avx2`, `avx512`).
    pub fn name(self) -> &'static str {
        match self {
            SimdLevel::Portable => "portable",
            SimdLevel::Avx2 => "avx2",
            SimdLevel::Avx512 => "avx512",
        }
    }
}

/// The widest level this CPU supports (detected once).
pub fn detected() -> SimdLevel {
    #[cfg(target_arch = "x86_64")]
    {
        static LEVEL: std::sync::OnceLock<SimdLevel> = std::sync::OnceLock::new();
        *LEVEL.get_or_init(|| {
            let avx2 = is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma");
            if avx2 && is_x86_feature_detected!("avx512f") {
                SimdLevel::Avx512
            } else if avx2 {
                SimdLevel::Avx2
            } else {
                SimdLevel::Portable
            }
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        SimdLevel::Portable
    }
}

/// The level the engine runs at when asked for at most `requested`.
pub fn effective(requested: SimdLevel) -> SimdLevel {
    requested.min(detected())
}

/// Which precision a generic `T` is.
#[derive(Clone, Copy, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
enum Prec {
    F32,
    F64,
    Other,
}

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn prec<T: Real>() -> Prec {
    use std::any::TypeId;
    if TypeId::of::<T>() == TypeId::of::<f32>() {
        Prec::F32
    } else if TypeId::of::<T>() == TypeId::of::<f64>() {
        Prec::F64
    } else {
        Prec::Other
    }
}

/// Complex numbers per vector for `T` at `level` (0 when there is no SIMD path).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn lanes<T: Real>(level: SimdLevel) -> usize {
    if !cfg!(target_arch = "x86_64") {
        return 0;
    }
    match (level, prec::<T>()) {
        (SimdLevel::Avx512, Prec::F32) => 8,
        (SimdLevel::Avx512, Prec::F64) | (SimdLevel::Avx2, Prec::F32) => 4,
        (SimdLevel::Avx2, Prec::F64) => 2,
        _ => 0,
    }
}

/// A complex matrix entry as `[re, im]` in `f32`/`f64` (exact: `T` is one of them).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn pair32<T: Real>(z: Complex<T>) -> [f32; 2] {
    [z.re.to_f64() as f32, z.im.to_f64() as f32]
}

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn pair64<T: Real>(z: Complex<T>) -> [f64; 2] {
    [z.re.to_f64(), z.im.to_f64()]
}

/// Runs `$call` in the module for `level` and `T`'s precision with the slices' pointers cast to
/// the float type; evaluates to whether it ran.
macro_rules! dispatch {
    ($level:expr, $t:ty, |$m:ident, $pair:ident, $f:ident| $call:expr) => {{
        #[cfg(target_arch = "x86_64")]
        {
            match ($level, prec::<$t>()) {
                (SimdLevel::Avx512, Prec::F32) => {
                    use pair32 as $pair;
                    use x86::avx512_f32 as $m;
                    type $f = f32;
                    $call;
                    true
                }
                (SimdLevel::Avx512, Prec::F64) => {
                    use pair64 as $pair;
                    use x86::avx512_f64 as $m;
                    type $f = f64;
                    $call;
                    true
                }
                (SimdLevel::Avx2, Prec::F32) => {
                    use pair32 as $pair;
                    use x86::avx2_f32 as $m;
                    type $f = f32;
                    $call;
                    true
                }
                (SimdLevel::Avx2, Prec::F64) => {
                    use pair64 as $pair;
                    use x86::avx2_f64 as $m;
                    type $f = f64;
                    $call;
                    true
                }
                _ => false,
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            false
        }
    }};
}

/// Which entries of a 2×2 matrix may be non-zero in their real and imaginary parts: the SIMD
/// kernels skip the multiplications by exact zeros.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dense2Kind {
    /// Any complex entries.
    Dense,
    /// Every entry real (RY, H).
    Real,
    /// Real diagonal, imaginary off-diagonal (RX).
    RealImag,
}

impl Dense2Kind {
    /// The kind of `m` (`[m00, m01, m10, m11]`), from its exact zeros.
    pub(crate) fn of<T: Real>(m: &[Complex<T>; 4]) -> Dense2Kind {
        let zero = T::zero();
        if m.iter().all(|z| z.im == zero) {
            Dense2Kind::Real
        } else if m[0].im == zero && m[3].im == zero && m[1].re == zero && m[2].re == zero {
            Dense2Kind::RealImag
        } else {
            Dense2Kind::Dense
        }
    }
}

/// The dense 2×2 `m` (`[m00, m01, m10, m11]`) of kind `kind` ([`Dense2Kind::of`]) on one whole
/// block `chunk` for a target at bit `t`
/// (nothing else fixed). `level` must be [`effective`].
pub(crate) fn dense2_block<T: Real>(
    level: SimdLevel,
    chunk: &mut [Complex<T>],
    t: u32,
    m: &[Complex<T>; 4],
    kind: Dense2Kind,
) -> bool {
    let w = lanes::<T>(level);
    let len = chunk.len();
    if w == 0 || len < w || len < 2 << t || !len.is_multiple_of(2 << t) || !len.is_multiple_of(w) {
        return false;
    }
    let p = chunk.as_mut_ptr();
    dispatch!(level, T, |k, pair, F| {
        let m = m.map(pair);
        // SAFETY: the level is at most the detected one, so the CPU has the module's features;
        // `p` points to `len` complex values (`2·len` floats of `F`, `T` being `F`), borrowed
        // exclusively; `len` is a multiple of the vector width and of `2^(t+1)`.
        unsafe {
            match kind {
                Dense2Kind::Real => k::d2_blk::<1>(p.cast::<F>(), len, t, &m),
                Dense2Kind::RealImag => k::d2_blk::<2>(p.cast::<F>(), len, t, &m),
                Dense2Kind::Dense => k::d2_blk::<0>(p.cast::<F>(), len, t, &m),
            }
        }
    })
}

/// The dense 2×2 `m` of kind `kind` on two equal runs (`a` the target-0 members, `b` the
/// target-1 ones).
pub(crate) fn dense2_runs<T: Real>(
    level: SimdLevel,
    a: &mut [Complex<T>],
    b: &mut [Complex<T>],
    m: &[Complex<T>; 4],
    kind: Dense2Kind,
) -> bool {
    let w = lanes::<T>(level);
    let len = a.len();
    if w == 0 || !len.is_multiple_of(w) || b.len() != len {
        return false;
    }
    let (pa, pb) = (a.as_mut_ptr(), b.as_mut_ptr());
    dispatch!(level, T, |k, pair, F| {
        let m = m.map(pair);
        // SAFETY: CPU features as in `dense2_block`; `a` and `b` are distinct exclusive borrows of
        // `len` complex values each, `len` a multiple of the vector width.
        unsafe {
            let (a, b) = (pa.cast::<F>(), pb.cast::<F>());
            match kind {
                Dense2Kind::Real => k::d2_runs::<1>(a, b, len, &m),
                Dense2Kind::RealImag => k::d2_runs::<2>(a, b, len, &m),
                Dense2Kind::Dense => k::d2_runs::<0>(a, b, len, &m),
            }
        }
    })
}

/// X on bit `t` of every index of `chunk` whose bit `c` is `cv` for `ctl = Some((c, cv))` (CX
/// or its negative-control form, both qubits inside the block), of every index for `None`.
/// `level` must be [`effective`].
pub(crate) fn cx_block<T: Real>(
    level: SimdLevel,
    chunk: &mut [Complex<T>],
    ctl: Option<(u32, bool)>,
    t: u32,
) -> bool {
    let w = lanes::<T>(level);
    let len = chunk.len();
    let top = ctl.map_or(t, |(c, _)| c.max(t));
    if w == 0
        || ctl.is_some_and(|(c, _)| c == t)
        || top >= usize::BITS - 2
        || len < 2 << top
        || !len.is_multiple_of(w)
        || !len.is_multiple_of(2 << top)
    {
        return false;
    }
    let p = chunk.as_mut_ptr();
    dispatch!(level, T, |k, pair, F| {
        let _ = pair::<T>;
        // SAFETY: CPU features as in `dense2_block`; `p` points to `len` complex values borrowed
        // exclusively; the control is not the target; `len` is a multiple of the vector width and
        // of `2^(max+1)`.
        unsafe { k::cx_blk(p.cast::<F>(), len, ctl, t) }
    })
}

/// The dense 4×4 `m` (row-major, basis bit 0 at bit `t0`, bit 1 at `t1`, `t0 < t1`) on one whole
/// block (nothing else fixed).
pub(crate) fn dense4_block<T: Real>(
    level: SimdLevel,
    chunk: &mut [Complex<T>],
    t0: u32,
    t1: u32,
    m: &[Complex<T>; 16],
) -> bool {
    let w = lanes::<T>(level);
    let len = chunk.len();
    if w == 0 || t0 >= t1 || len < 2 << t1 || !len.is_multiple_of(2 << t1) || !len.is_multiple_of(w)
    {
        return false;
    }
    let p = chunk.as_mut_ptr();
    dispatch!(level, T, |k, pair, F| {
        let m = m.map(pair);
        // SAFETY: CPU features as in `dense2_block`; `p` points to `len` complex values borrowed
        // exclusively, `len` a multiple of the vector width and of `2^(t1+1)`.
        unsafe { k::d4_blk(p.cast::<F>(), len, t0, t1, &m) }
    })
}

/// The dense 4×4 `m` on four equal runs (members 0 to 3, in basis order).
pub(crate) fn dense4_runs<T: Real>(
    level: SimdLevel,
    runs: &mut [&mut [Complex<T>]; 4],
    m: &[Complex<T>; 16],
) -> bool {
    let w = lanes::<T>(level);
    let len = runs[0].len();
    if w == 0 || !len.is_multiple_of(w) || runs.iter().any(|r| r.len() != len) {
        return false;
    }
    let ptrs = runs.each_mut().map(|r| r.as_mut_ptr());
    dispatch!(level, T, |k, pair, F| {
        let m = m.map(pair);
        let ptrs = ptrs.map(|p| p.cast::<F>());
        // SAFETY: CPU features as in `dense2_block`; the four runs are distinct exclusive borrows
        // of `len` complex values each, `len` a multiple of the vector width.
        unsafe { k::d4_runs(ptrs, len, &m) }
    })
}

/// `a[i] *= z[i]` elementwise.
pub(crate) fn cmul<T: Real>(level: SimdLevel, a: &mut [Complex<T>], z: &[Complex<T>]) -> bool {
    let w = lanes::<T>(level);
    let len = a.len();
    if w == 0 || !len.is_multiple_of(w) || z.len() < len {
        return false;
    }
    let (pa, pz) = (a.as_mut_ptr(), z.as_ptr());
    dispatch!(level, T, |k, pair, F| {
        let _ = pair::<T>;
        // SAFETY: CPU features as in `dense2_block`; `a` is an exclusive borrow of `len` complex
        // values, `z` a shared one of at least `len` (a different buffer, the diagonal's table).
        unsafe { k::cmul(pa.cast::<F>(), pz.cast::<F>(), len) }
    })
}

/// `a[i] *= z` for one complex `z`.
pub(crate) fn cscale<T: Real>(level: SimdLevel, a: &mut [Complex<T>], z: Complex<T>) -> bool {
    let w = lanes::<T>(level);
    let len = a.len();
    if w == 0 || !len.is_multiple_of(w) {
        return false;
    }
    let pa = a.as_mut_ptr();
    dispatch!(level, T, |k, pair, F| {
        let z = pair(z);
        // SAFETY: CPU features as in `dense2_block`; `a` is an exclusive borrow of `len` complex
        // values, `len` a multiple of the vector width.
        unsafe { k::cscale(pa.cast::<F>(), len, z) }
    })
}

/// Exchanges index bits in place: for every disjoint pair `(p, q)` of `pairs`, the amplitude at
/// index `i` moves to the index with bits `p` and `q` of `i` exchanged (all pairs at once). The
/// map is an involution, so it is done by swapping `i` with its image for every `i` below it.
/// Works on runs of `2^min_bit` contiguous amplitudes, in parallel (on the current rayon pool)
/// when `parallel`.
///
/// # Panics
///
/// If the pairs are not disjoint or name a bit outside `amps` (the engine's own planning never
/// does).
pub(crate) fn exchange_bits<T: Real>(
    amps: &mut [Complex<T>],
    pairs: &[(u32, u32)],
    parallel: bool,
) {
    let mut used = 0u64;
    for &(p, q) in pairs {
        let both = (1u64 << p) | (1u64 << q);
        assert!(
            p != q && used & both == 0 && (1usize << p.max(q)) < amps.len(),
            "exchange_bits: bad pairs {pairs:?} for {} amplitudes",
            amps.len()
        );
        used |= both;
    }
    if pairs.is_empty() {
        return;
    }
    let low = used.trailing_zeros();
    let run = 1usize << low;
    let nruns = amps.len() >> low;
    // The map is linear over the index bits: the image is the XOR of each byte's image.
    let bits = usize::BITS - (nruns.max(1) - 1).leading_zeros();
    let mut single: Vec<usize> = (0..bits).map(|j| 1usize << j).collect();
    for &(p, q) in pairs {
        single.swap((p - low) as usize, (q - low) as usize);
    }
    let tables = super::sched::bit_image_tables(&single);
    let image = |j: usize| -> usize {
        tables
            .iter()
            .enumerate()
            .fold(0, |acc, (k, t)| acc | t[(j >> (8 * k)) & 255])
    };
    // Tiles: the lowest run-index bits (a few KiB of contiguous runs) and their partners vary
    // inside a tile, the other bits outside. A tile's image is a tile (the inner bits are closed
    // under the exchange), so both sides of every swap stay within a few pages at a time.
    let run_bytes = run * std::mem::size_of::<Complex<T>>();
    let k = (TILE_SPAN_BYTES_LOG.saturating_sub(run_bytes.trailing_zeros())).min(bits);
    let mut inner = (1usize << k) - 1;
    for &img in &single[..k as usize] {
        inner |= img;
    }
    let all = nruns - 1;
    let outer = all & !inner;
    let inner_vals: Vec<usize> = subsets(inner).collect();
    let inner_img: Vec<usize> = inner_vals.iter().map(|&i| image(i)).collect();
    let tiles = 1usize << outer.count_ones();
    let base = amps.as_mut_ptr() as usize;
    let work = |range: std::ops::Range<usize>| {
        let ptr = base as *mut Complex<T>;
        for t in range {
            let o = deposit(t, outer);
            let po = image(o);
            for (&i, &pi) in inner_vals.iter().zip(&inner_img) {
                let (j, pj) = (o | i, po | pi);
                if j < pj {
                    // SAFETY: `j` and `pj < nruns` index runs of `run` amplitudes inside the
                    // exclusively borrowed `amps`; `j != pj`, so the runs do not overlap. The map
                    // is an involution, so each run belongs to exactly one pair `{j, pj}`, and
                    // only the task whose tiles hold the smaller index `j` touches that pair (each
                    // index is in exactly one tile): no two tasks (threads) ever access the same
                    // amplitude.
                    unsafe {
                        std::ptr::swap_nonoverlapping(ptr.add(j * run), ptr.add(pj * run), run);
                    }
                }
            }
        }
    };
    let tasks = if parallel { 256.min(tiles) } else { 1 };
    let per = tiles.div_ceil(tasks);
    if parallel && tasks > 1 {
        (0..tasks)
            .into_par_iter()
            .for_each(|t| work(t * per..((t + 1) * per).min(tiles)));
    } else {
        work(0..tiles);
    }
}

/// An exchange pass's tiles span about `2^TILE_SPAN_BYTES_LOG` bytes of contiguous runs.
const TILE_SPAN_BYTES_LOG: u32 = 12;

/// Every subset of the bits of `mask`, ascending.
fn subsets(mask: usize) -> impl Iterator<Item = usize> {
    let mut x = Some(0usize);
    std::iter::from_fn(move || {
        let cur = x?;
        x = (cur != mask).then(|| (cur | !mask).wrapping_add(1) & mask);
        Some(cur)
    })
}

/// The bits of `v`, lowest first, placed on the set bits of `mask`, lowest first.
fn deposit(mut v: usize, mut mask: usize) -> usize {
    let mut out = 0;
    while mask != 0 && v != 0 {
        let low = mask & mask.wrapping_neg();
        if v & 1 == 1 {
            out |= low;
        }
        v >>= 1;
        mask &= mask - 1;
    }
    out
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The kernels, written once (`kernels!`) over a handful of vector primitives that each
    //! instruction-set module defines. Every function here is `unsafe`: it needs its module's CPU
    //! features and valid pointers, as each one's `SAFETY` note says.

    /// Complex lanes `l` of a vector, `re` duplicated: `[f(l).re, f(l).re]` per lane, and the
    /// same for `im`, as float arrays (up to 16 floats).
    fn lane_coefs<F: Copy + Default>(w: usize, f: impl Fn(usize) -> [F; 2]) -> ([F; 16], [F; 16]) {
        let mut re = [F::default(); 16];
        let mut im = [F::default(); 16];
        for l in 0..w {
            let [r, i] = f(l);
            re[2 * l] = r;
            re[2 * l + 1] = r;
            im[2 * l] = i;
            im[2 * l + 1] = i;
        }
        (re, im)
    }

    /// The float-index pattern that moves complex lane `l ^ s` to lane `l`.
    fn lane_xor_index<I: TryFrom<usize> + Copy + Default>(w: usize, s: usize) -> [I; 16] {
        let mut out = [I::default(); 16];
        for (f, o) in out.iter_mut().enumerate().take(2 * w) {
            let src = (((f >> 1) ^ s) << 1) | (f & 1);
            *o = I::try_from(src).unwrap_or_default();
        }
        out
    }

    macro_rules! kernels {
        ($feat:literal) => {
            use super::{lane_coefs, lane_xor_index};

            /// `Σ_j c_j · x_j` with `c_j` given as duplicated re/im vectors and `xs_j` the
            /// pair-swapped `x_j`.
            // SAFETY: needs the module's CPU features (only called from functions that have them).
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn mac<const N: usize>(cr: &[V; N], ci: &[V; N], x: &[V; N], xs: &[V; N]) -> V {
                let mut a = mul(cr[0], x[0]);
                let mut b = mul(ci[0], xs[0]);
                for j in 1..N {
                    a = fma(cr[j], x[j], a);
                    b = fma(ci[j], xs[j], b);
                }
                addsub(a, b)
            }

            // SAFETY: needs the module's CPU features.
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn bcast<const N: usize>(m: &[[F; 2]; N]) -> ([V; N], [V; N]) {
                let mut cr = [set1(0.0); N];
                let mut ci = [set1(0.0); N];
                for j in 0..N {
                    cr[j] = set1(m[j][0]);
                    ci[j] = set1(m[j][1]);
                }
                (cr, ci)
            }

            /// The lane coefficients of row `x + 2y` for the inputs `[v0, perm v0, v1, perm v1]`
            /// of `d4_blk`'s split case (columns `[x, x^1, x+2, (x^1)+2]`, `x` bit `t0` of the
            /// lane).
            // SAFETY: needs the module's CPU features.
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn split_coefs(m: &[[F; 2]; 16], t0: u32, y: usize) -> ([V; 4], [V; 4]) {
                let mut cr = [set1(0.0); 4];
                let mut ci = [set1(0.0); 4];
                for k in 0..4 {
                    let c = lane_vec(&lane_coefs(W, |l| {
                        let x = (l >> t0) & 1;
                        let col = [x, x ^ 1, x + 2, (x ^ 1) + 2][k];
                        m[4 * (x + 2 * y) + col]
                    }));
                    cr[k] = c.0;
                    ci[k] = c.1;
                }
                (cr, ci)
            }

            // SAFETY: needs the module's CPU features; `c` holds at least one vector of floats.
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn lane_vec(c: &([F; 16], [F; 16])) -> (V, V) {
                (ld(c.0.as_ptr()), ld(c.1.as_ptr()))
            }

            /// One output of a 2×2 row: `c0·x0 + c1·x1`, the coefficients as duplicated re/im
            /// vectors; `K` the matrix's `Dense2Kind` as a number: 0
            /// dense, 1 real (imaginary parts ignored), 2 real `c0` and imaginary `c1`.
            // SAFETY: needs the module's CPU features.
            #[inline]
            #[target_feature(enable = $feat)]
            unsafe fn row2<const K: u8>(c0: (V, V), c1: (V, V), x0: V, x1: V) -> V {
                match K {
                    1 => fma(c1.0, x1, mul(c0.0, x0)),
                    2 => addsub(mul(c0.0, x0), mul(c1.1, swp(x1))),
                    _ => mac(&[c0.0, c1.0], &[c0.1, c1.1], &[x0, x1], &[swp(x0), swp(x1)]),
                }
            }

            /// Dense 2×2 of kind `K` (see `row2`) on two runs of `len` complex values at `a`
            /// and `b`.
            // SAFETY (callers): the CPU has the module's features; `a` and `b` each point to
            // `len` complex values (`2·len` floats) valid for reads and writes, not overlapping;
            // `len` is a multiple of `W`.
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn d2_runs<const K: u8>(
                a: *mut F,
                b: *mut F,
                len: usize,
                m: &[[F; 2]; 4],
            ) {
                let (cr, ci) = bcast(m);
                let mut i = 0;
                while i < len {
                    let (pa, pb) = (a.add(2 * i), b.add(2 * i));
                    let (x0, x1) = (ld(pa), ld(pb));
                    let r0 = row2::<K>((cr[0], ci[0]), (cr[1], ci[1]), x0, x1);
                    let r1 = row2::<K>((cr[3], ci[3]), (cr[2], ci[2]), x1, x0);
                    st(pa, r0);
                    st(pb, r1);
                    i += W;
                }
            }

            /// Dense 2×2 of kind `K` (see `row2`) on a block of `len` complex values at `p`,
            /// target bit `t`.
            // SAFETY (callers): the CPU has the module's features; `p` points to `len` complex
            // values valid for reads and writes; `len` is a multiple of `W` and of `2^(t+1)`.
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn d2_blk<const K: u8>(
                p: *mut F,
                len: usize,
                t: u32,
                m: &[[F; 2]; 4],
            ) {
                let d = 1usize << t;
                if d >= W {
                    // The coefficients are broadcast once for the whole block.
                    let (cr, ci) = bcast(m);
                    let mut g = 0;
                    while g < len {
                        let mut i = g;
                        while i < g + d {
                            let (pa, pb) = (p.add(2 * i), p.add(2 * (i + d)));
                            let (x0, x1) = (ld(pa), ld(pb));
                            let r0 = row2::<K>((cr[0], ci[0]), (cr[1], ci[1]), x0, x1);
                            let r1 = row2::<K>((cr[3], ci[3]), (cr[2], ci[2]), x1, x0);
                            st(pa, r0);
                            st(pb, r1);
                            i += W;
                        }
                        g += 2 * d;
                    }
                    return;
                }
                // Both members in one vector: lane l holds member x = bit t of l; its partner
                // (lane l ^ d) comes by a permutation.
                let c0 = lane_vec(&lane_coefs(W, |l| {
                    let x = (l >> t) & 1;
                    m[3 * x]
                }));
                let c1 = lane_coefs(W, |l| {
                    let x = (l >> t) & 1;
                    m[2 * x + (x ^ 1)]
                });
                let c1 = lane_vec(&c1);
                let ix = ldix(lane_xor_index::<IE>(W, d).as_ptr());
                let mut i = 0;
                while i < len {
                    let q = p.add(2 * i);
                    let v = ld(q);
                    st(q, row2::<K>(c0, c1, v, perm(v, ix)));
                    i += W;
                }
            }

            /// X on bit `t` of every index of a block of `len` complex values at `p` whose bit
            /// `c` is `cv`, `ctl = Some((c, cv))` (a CX with both qubits in the block), or of
            /// every index (`ctl = None`), by whole vectors, lane permutations or masked blends
            /// as the bits fall.
            // SAFETY (callers): the CPU has the module's features; `p` points to `len` complex
            // values valid for reads and writes; `c != t`; `len` is a multiple of `W` and of
            // `2^(max(c, t)+1)`.
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn cx_blk(p: *mut F, len: usize, ctl: Option<(u32, bool)>, t: u32) {
                // No control: one that always holds, on a vector-level bit no index has.
                let (dc, cv) = ctl.map_or((0, false), |(c, v)| (1usize << c, v));
                let dt = 1usize << t;
                let inside = |l: usize| dc == 0 || dc >= W || ((l & dc) != 0) == cv;
                // Vector-level bits that every visited vector fixes, and their values.
                let mut fixed = 0usize;
                let mut val = 0usize;
                if dc >= W {
                    fixed |= dc;
                    if cv {
                        val |= dc;
                    }
                }
                if dt >= W {
                    fixed |= dt;
                }
                let free = (len - 1) & !fixed & !(W - 1);
                let mut x = 0usize;
                if dt >= W && (dc == 0 || dc >= W) {
                    loop {
                        let (a, b) = (p.add(2 * (x | val)), p.add(2 * ((x | val) + dt)));
                        let (u, v) = (ld(a), ld(b));
                        st(a, v);
                        st(b, u);
                        if x == free {
                            break;
                        }
                        x = (x | !free).wrapping_add(1) & free;
                    }
                } else if dt >= W {
                    // The control inside the vector: lanes that hold it take their partner's
                    // value (an exact blend by multiplying with 1 and 0).
                    let one = lane_vec(&lane_coefs(W, |l| [if inside(l) { 1.0 } else { 0.0 }; 2]));
                    let zero = lane_vec(&lane_coefs(W, |l| [if inside(l) { 0.0 } else { 1.0 }; 2]));
                    let (m, n) = (one.0, zero.0);
                    loop {
                        let (a, b) = (p.add(2 * (x | val)), p.add(2 * ((x | val) + dt)));
                        let (u, v) = (ld(a), ld(b));
                        st(a, fma(v, m, mul(u, n)));
                        st(b, fma(u, m, mul(v, n)));
                        if x == free {
                            break;
                        }
                        x = (x | !free).wrapping_add(1) & free;
                    }
                } else {
                    // The target inside the vector: a lane permutation.
                    let mut ix = [IE::default(); 16];
                    for (f, o) in ix.iter_mut().enumerate().take(2 * W) {
                        let l = f >> 1;
                        let src = if inside(l) { l ^ dt } else { l };
                        *o = IE::try_from((src << 1) | (f & 1)).unwrap_or_default();
                    }
                    let ix = ldix(ix.as_ptr());
                    loop {
                        let a = p.add(2 * (x | val));
                        st(a, perm(ld(a), ix));
                        if x == free {
                            break;
                        }
                        x = (x | !free).wrapping_add(1) & free;
                    }
                }
            }

            /// Dense 4×4 on four runs of `len` complex values.
            // SAFETY (callers): the CPU has the module's features; each pointer points to `len`
            // complex values valid for reads and writes, the four not overlapping; `len` is a
            // multiple of `W`.
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn d4_runs(p: [*mut F; 4], len: usize, m: &[[F; 2]; 16]) {
                let (cr, ci) = bcast(m);
                let mut rr = [[set1(0.0); 4]; 4];
                let mut ri = [[set1(0.0); 4]; 4];
                for r in 0..4 {
                    for c in 0..4 {
                        rr[r][c] = cr[4 * r + c];
                        ri[r][c] = ci[4 * r + c];
                    }
                }
                let mut i = 0;
                while i < len {
                    let q = [
                        p[0].add(2 * i),
                        p[1].add(2 * i),
                        p[2].add(2 * i),
                        p[3].add(2 * i),
                    ];
                    let x = [ld(q[0]), ld(q[1]), ld(q[2]), ld(q[3])];
                    let xs = [swp(x[0]), swp(x[1]), swp(x[2]), swp(x[3])];
                    let o0 = mac(&rr[0], &ri[0], &x, &xs);
                    let o1 = mac(&rr[1], &ri[1], &x, &xs);
                    let o2 = mac(&rr[2], &ri[2], &x, &xs);
                    let o3 = mac(&rr[3], &ri[3], &x, &xs);
                    st(q[0], o0);
                    st(q[1], o1);
                    st(q[2], o2);
                    st(q[3], o3);
                    i += W;
                }
            }

            /// Dense 4×4 on a block of `len` complex values at `p`, basis bits at `t0 < t1`.
            // SAFETY (callers): the CPU has the module's features; `p` points to `len` complex
            // values valid for reads and writes; `len` is a multiple of `W` and of `2^(t1+1)`.
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn d4_blk(p: *mut F, len: usize, t0: u32, t1: u32, m: &[[F; 2]; 16]) {
                let (d0, d1) = (1usize << t0, 1usize << t1);
                if d0 >= W {
                    let mut g = 0;
                    while g < len {
                        let mut h = g;
                        while h < g + d1 {
                            let b = p.add(2 * h);
                            d4_runs(
                                [b, b.add(2 * d0), b.add(2 * d1), b.add(2 * (d0 + d1))],
                                d0,
                                m,
                            );
                            h += 2 * d0;
                        }
                        g += 2 * d1;
                    }
                    return;
                }
                let ix0 = ldix(lane_xor_index::<IE>(W, d0).as_ptr());
                if d1 >= W {
                    // Bit t0 inside a vector, bit t1 between vectors v0 (t1 = 0) and v1.
                    // Inputs [v0, perm v0, v1, perm v1] hold columns [x, x^1, x+2, (x^1)+2]
                    // for the lane's bit x.
                    let (c0, c1) = (split_coefs(m, t0, 0), split_coefs(m, t0, 1));
                    let mut g = 0;
                    while g < len {
                        let mut i = g;
                        while i < g + d1 {
                            let (a, b) = (p.add(2 * i), p.add(2 * (i + d1)));
                            let (v0, v1) = (ld(a), ld(b));
                            let x = [v0, perm(v0, ix0), v1, perm(v1, ix0)];
                            let xs = [swp(x[0]), swp(x[1]), swp(x[2]), swp(x[3])];
                            st(a, mac(&c0.0, &c0.1, &x, &xs));
                            st(b, mac(&c1.0, &c1.1, &x, &xs));
                            i += W;
                        }
                        g += 2 * d1;
                    }
                    return;
                }
                // Both bits inside a vector: lane l holds sub-index x; perm_s brings column x ^ s.
                let ix1 = ldix(lane_xor_index::<IE>(W, d1).as_ptr());
                let ix2 = ldix(lane_xor_index::<IE>(W, d0 | d1).as_ptr());
                let mut cr = [set1(0.0); 4];
                let mut ci = [set1(0.0); 4];
                for s in 0..4 {
                    let c = lane_vec(&lane_coefs(W, |l| {
                        let x = ((l >> t0) & 1) | (((l >> t1) & 1) << 1);
                        m[4 * x + (x ^ s)]
                    }));
                    cr[s] = c.0;
                    ci[s] = c.1;
                }
                let mut i = 0;
                while i < len {
                    let q = p.add(2 * i);
                    let v = ld(q);
                    let x = [v, perm(v, ix0), perm(v, ix1), perm(v, ix2)];
                    let xs = [swp(x[0]), swp(x[1]), swp(x[2]), swp(x[3])];
                    st(q, mac(&cr, &ci, &x, &xs));
                    i += W;
                }
            }

            /// `a[i] *= z[i]` over `len` complex values.
            // SAFETY (callers): the CPU has the module's features; `a` points to `len` complex
            // values valid for reads and writes, `z` to `len` valid for reads.
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn cmul(a: *mut F, z: *const F, len: usize) {
                let mut i = 0;
                while i < len {
                    let (pa, pz) = (a.add(2 * i), z.add(2 * i));
                    let (x, zz) = (ld(pa), ld(pz));
                    st(pa, addsub(mul(dupre(zz), x), mul(dupim(zz), swp(x))));
                    i += W;
                }
            }

            /// `a[i] *= z` over `len` complex values.
            // SAFETY (callers): the CPU has the module's features; `a` points to `len` complex
            // values valid for reads and writes; `len` is a multiple of `W`.
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn cscale(a: *mut F, len: usize, z: [F; 2]) {
                let (zr, zi) = (set1(z[0]), set1(z[1]));
                let mut i = 0;
                while i < len {
                    let pa = a.add(2 * i);
                    let x = ld(pa);
                    st(pa, addsub(mul(zr, x), mul(zi, swp(x))));
                    i += W;
                }
            }
        };
    }

    pub(super) mod avx512_f32 {
        //! AVX-512F, complex64: 8 amplitudes per vector.
        use std::arch::x86_64::*;
        type F = f32;
        type V = __m512;
        type IE = i32;
        const W: usize = 8;
        // SAFETY (all primitives below): they need AVX-512F, which every caller has enabled;
        // loads and stores need `p` valid for one vector of floats.
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn ld(p: *const F) -> V {
            _mm512_loadu_ps(p)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn st(p: *mut F, v: V) {
            _mm512_storeu_ps(p, v)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn set1(x: F) -> V {
            _mm512_set1_ps(x)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn mul(a: V, b: V) -> V {
            _mm512_mul_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn fma(a: V, b: V, c: V) -> V {
            _mm512_fmadd_ps(a, b, c)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn addsub(a: V, b: V) -> V {
            _mm512_fmaddsub_ps(a, _mm512_set1_ps(1.0), b)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn swp(v: V) -> V {
            _mm512_permute_ps::<0xB1>(v)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn dupre(v: V) -> V {
            _mm512_moveldup_ps(v)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn dupim(v: V) -> V {
            _mm512_movehdup_ps(v)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn ldix(p: *const IE) -> __m512i {
            _mm512_loadu_epi32(p)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn perm(v: V, ix: __m512i) -> V {
            _mm512_permutexvar_ps(ix, v)
        }
        kernels!("avx512f");
    }

    pub(super) mod avx512_f64 {
        //! AVX-512F, complex128: 4 amplitudes per vector.
        use std::arch::x86_64::*;
        type F = f64;
        type V = __m512d;
        type IE = i64;
        const W: usize = 4;
        // SAFETY (all primitives below): they need AVX-512F, which every caller has enabled;
        // loads and stores need `p` valid for one vector of floats.
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn ld(p: *const F) -> V {
            _mm512_loadu_pd(p)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn st(p: *mut F, v: V) {
            _mm512_storeu_pd(p, v)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn set1(x: F) -> V {
            _mm512_set1_pd(x)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn mul(a: V, b: V) -> V {
            _mm512_mul_pd(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn fma(a: V, b: V, c: V) -> V {
            _mm512_fmadd_pd(a, b, c)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn addsub(a: V, b: V) -> V {
            _mm512_fmaddsub_pd(a, _mm512_set1_pd(1.0), b)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn swp(v: V) -> V {
            _mm512_permute_pd::<0x55>(v)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn dupre(v: V) -> V {
            _mm512_movedup_pd(v)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn dupim(v: V) -> V {
            _mm512_permute_pd::<0xFF>(v)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn ldix(p: *const IE) -> __m512i {
            _mm512_loadu_epi64(p)
        }
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn perm(v: V, ix: __m512i) -> V {
            _mm512_permutexvar_pd(ix, v)
        }
        kernels!("avx512f");
    }

    pub(super) mod avx2_f32 {
        //! AVX2 with FMA, complex64: 4 amplitudes per vector.
        use std::arch::x86_64::*;
        type F = f32;
        type V = __m256;
        type IE = i32;
        const W: usize = 4;
        // SAFETY (all primitives below): they need AVX2 and FMA, which every caller has
        // enabled; loads and stores need `p` valid for one vector of floats.
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn ld(p: *const F) -> V {
            _mm256_loadu_ps(p)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn st(p: *mut F, v: V) {
            _mm256_storeu_ps(p, v)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn set1(x: F) -> V {
            _mm256_set1_ps(x)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn mul(a: V, b: V) -> V {
            _mm256_mul_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn fma(a: V, b: V, c: V) -> V {
            _mm256_fmadd_ps(a, b, c)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn addsub(a: V, b: V) -> V {
            _mm256_addsub_ps(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn swp(v: V) -> V {
            _mm256_permute_ps::<0xB1>(v)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn dupre(v: V) -> V {
            _mm256_moveldup_ps(v)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn dupim(v: V) -> V {
            _mm256_movehdup_ps(v)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn ldix(p: *const IE) -> __m256i {
            _mm256_loadu_si256(p.cast::<__m256i>())
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn perm(v: V, ix: __m256i) -> V {
            _mm256_permutevar8x32_ps(v, ix)
        }
        kernels!("avx2,fma");
    }

    pub(super) mod avx2_f64 {
        //! AVX2 with FMA, complex128: 2 amplitudes per vector.
        use std::arch::x86_64::*;
        type F = f64;
        type V = __m256d;
        type IE = i64;
        const W: usize = 2;
        // SAFETY (all primitives below): they need AVX2 and FMA, which every caller has
        // enabled; loads and stores need `p` valid for one vector of floats.
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn ld(p: *const F) -> V {
            _mm256_loadu_pd(p)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn st(p: *mut F, v: V) {
            _mm256_storeu_pd(p, v)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn set1(x: F) -> V {
            _mm256_set1_pd(x)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn mul(a: V, b: V) -> V {
            _mm256_mul_pd(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn fma(a: V, b: V, c: V) -> V {
            _mm256_fmadd_pd(a, b, c)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn addsub(a: V, b: V) -> V {
            _mm256_addsub_pd(a, b)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn swp(v: V) -> V {
            _mm256_permute_pd::<0b0101>(v)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn dupre(v: V) -> V {
            _mm256_movedup_pd(v)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn dupim(v: V) -> V {
            _mm256_permute_pd::<0b1111>(v)
        }
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn ldix(p: *const IE) -> __m256i {
            _mm256_loadu_si256(p.cast::<__m256i>())
        }
        /// Two complex lanes: the only lane exchange is the two halves, so the index is unused.
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn perm(v: V, _ix: __m256i) -> V {
            _mm256_permute4x64_pd::<0x4E>(v)
        }
        kernels!("avx2,fma");
    }
}
