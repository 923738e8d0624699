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

/// One operation of a register [`Program`]: a program loads `2^R` vectors of amplitudes (its
/// *slots*: slot `s` holds the vector whose register bits are the bits of `s`), runs every
/// operation on them while they are in registers, and stores them back. `reg` names a register
/// bit (`0..R`), `co` a coefficient vector (each `2W` floats) and `aux` a lane index or lane mask
/// vector of the program; a *lane* bit is one of the `L` index bits inside a vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum POp {
    /// A 2×2 with a unit diagonal on register bit `reg`: `lo' = lo + A·Y(hi)`, `hi' = hi +
    /// B·Y(lo)`, `Y` the identity, or the re/im swap when `imag` (coefficients `A, B` at `co`).
    Unit { reg: u8, imag: bool, co: u32 },
    /// The same on a lane bit: `x' = x + A·P(x)`, `P` the lane exchange (with the re/im swap for
    /// an imaginary coefficient) at `aux`, `A` per lane at `co`.
    UnitLane { aux: u32, co: u32 },
    /// A real 2×2 on register bit `reg`: `lo' = m00·lo + m01·hi`, `hi' = m10·lo + m11·hi`
    /// (`co`: `m00, m01, m10, m11`).
    Real { reg: u8, co: u32 },
    /// A complex 2×2 on register bit `reg` (`co`: `m00, m01, m10, m11`, each as a real-part and a
    /// signed imaginary-part vector).
    Dense { reg: u8, co: u32 },
    /// A complex 2×2 on a lane bit: `x' = Ar·x + Ai·swap(x) + Br·P(x) + Bi·P'(x)`, `P` the lane
    /// exchange at `aux` and `P'` the same with re/im swapped at `aux + 1` (`co`: `Ar, Ai, Br,
    /// Bi`).
    DenseLane { aux: u32, co: u32 },
    /// Every slot `s` times its own diagonal (`co + 2s`: real parts, signed imaginary parts).
    Diag { co: u32 },
    /// Every slot times one diagonal (per lane; a scale factor when all lanes agree).
    DiagAll { co: u32 },
    /// The slots with register bit `reg` set times one diagonal.
    DiagHalf { reg: u8, co: u32 },
    /// X on register bit `t` of the slots whose register bit `c` is `cv` (`ctl = Some((c, cv))`)
    /// or of every slot: the slot pairs exchanged.
    Swap { t: u8, ctl: Option<(u8, bool)> },
    /// The lane permutation at `aux` on the slots whose register bit `c` is `cv`, or on every
    /// slot (an X or CX with its target on a lane bit).
    Permute { ctl: Option<(u8, bool)>, aux: u32 },
    /// CX with its control on a lane bit and its target on register bit `t`: the lanes set in
    /// the mask at `aux` take their partner's value.
    Blend { t: u8, aux: u32 },
}

/// The geometry of register programs at a SIMD level: `lane_bits` (`L`) index bits inside a
/// vector, `reg_bits` (`R`) register bits, `vec_floats` floats per vector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ProgramShape {
    pub lane_bits: u32,
    pub reg_bits: u32,
    pub vec_floats: usize,
    /// Bytes of one lane index or mask vector.
    pub aux_bytes: usize,
}

/// The register-program geometry for `T` at `level` (as [`effective`] gives it), `None` where
/// there are no program kernels (the portable level, other targets).
pub(crate) fn program_shape<T: Real>(level: SimdLevel) -> Option<ProgramShape> {
    let w = lanes::<T>(level);
    if w == 0 {
        return None;
    }
    let reg_bits = if level == SimdLevel::Avx512 { 4 } else { 3 };
    let vec_floats = 2 * w;
    Some(ProgramShape {
        lane_bits: w.trailing_zeros(),
        reg_bits,
        vec_floats,
        aux_bytes: vec_floats * std::mem::size_of::<T>(),
    })
}

/// The lane index vector, as the kernels of `level` read it, that sets float `f` of a vector to
/// float `map[f]` (`map` has `vec_floats` entries, each below it).
pub(crate) fn lane_index_bytes<T: Real>(level: SimdLevel, map: &[usize]) -> Vec<u8> {
    let double = prec::<T>() == Prec::F64;
    match level {
        // One 64-bit index per double, or one 32-bit index per float.
        SimdLevel::Avx512 if double => map.iter().flat_map(|&m| (m as u64).to_le_bytes()).collect(),
        // Two 32-bit halves per double (a float permutation moves them).
        SimdLevel::Avx2 if double => map
            .iter()
            .flat_map(|&m| [(2 * m) as u32, (2 * m + 1) as u32])
            .flat_map(u32::to_le_bytes)
            .collect(),
        _ => map.iter().flat_map(|&m| (m as u32).to_le_bytes()).collect(),
    }
}

/// The lane mask vector, as the kernels of `level` read it, selecting the floats `f` with
/// `sel[f]` (`vec_floats` entries).
pub(crate) fn lane_mask_bytes<T: Real>(level: SimdLevel, sel: &[bool]) -> Vec<u8> {
    let size = std::mem::size_of::<T>();
    match level {
        // AVX-512: a bit mask in the first bytes, the rest unused.
        SimdLevel::Avx512 => {
            let bits: u64 = sel
                .iter()
                .enumerate()
                .fold(0, |m, (f, &s)| m | u64::from(s) << f);
            let mut out = bits.to_le_bytes().to_vec();
            out.resize(sel.len() * size, 0);
            out
        }
        // AVX2: every element all ones or all zeros.
        _ => sel
            .iter()
            .flat_map(|&s| std::iter::repeat_n(if s { 0xFF } else { 0 }, size))
            .collect(),
    }
}

/// An operation as the program kernels read it: one opcode for its kind and its register bits
/// (so that one jump picks its code, compiled for those bits), its coefficient vector and its
/// lane vector.
fn opcode(op: &POp) -> (u8, u32, u32) {
    let ctl = |c: Option<(u8, bool)>| c.map(|(c, v)| 2 * c + u8::from(v));
    match *op {
        POp::Unit { reg, imag, co } => (4 * u8::from(imag) + reg, co, 0),
        POp::UnitLane { aux, co } => (8, co, aux),
        POp::Real { reg, co } => (9 + reg, co, 0),
        POp::Dense { reg, co } => (13 + reg, co, 0),
        POp::DenseLane { aux, co } => (17, co, aux),
        POp::Diag { co } => (18, co, 0),
        POp::DiagAll { co } => (19, co, 0),
        POp::DiagHalf { reg, co } => (20 + reg, co, 0),
        POp::Swap { t, ctl: c } => match ctl(c) {
            None => (24 + t, 0, 0),
            Some(cc) => (28 + 8 * t + cc, 0, 0),
        },
        POp::Permute { ctl: c, aux } => match ctl(c) {
            None => (60, 0, aux),
            Some(cc) => (61 + cc, 0, aux),
        },
        POp::Blend { t, aux } => (69 + t, 0, aux),
    }
}

/// A register program, checked when it is made: its register bits and operations for one SIMD
/// level and precision, its coefficient vectors and its lane index and mask vectors.
#[derive(Clone, Debug)]
pub(crate) struct Program<T> {
    level: SimdLevel,
    regs: Vec<u32>,
    /// The operations as the kernels read them: `(opcode, coefficient vector, lane vector)`
    /// (see [`opcode`]).
    code: Vec<(u8, u32, u32)>,
    coefs: Vec<T>,
    aux: Vec<u8>,
    /// The highest register bit plus one: chunks must span at least this many bits.
    top: u32,
    /// Planned operations it stands for (statistics only).
    sources: usize,
}

impl<T: Real> Program<T> {
    /// A program for `T` at `level`; `None` unless the level has program kernels, `regs` are
    /// `R` distinct bits at or above the lane bits, and every operation's register bits,
    /// coefficient vectors and lane vectors are in range.
    pub(crate) fn new(
        level: SimdLevel,
        regs: Vec<u32>,
        ops: Vec<POp>,
        coefs: Vec<T>,
        aux: Vec<u8>,
    ) -> Option<Program<T>> {
        let shape = program_shape::<T>(level)?;
        let r = shape.reg_bits;
        let distinct = regs.iter().enumerate().all(|(i, a)| !regs[..i].contains(a));
        if regs.len() != r as usize
            || !distinct
            || regs
                .iter()
                .any(|&q| q < shape.lane_bits || q >= usize::BITS - 2)
            || !coefs.len().is_multiple_of(shape.vec_floats)
            || !aux.len().is_multiple_of(shape.aux_bytes)
        {
            return None;
        }
        let nco = coefs.len() / shape.vec_floats;
        let naux = aux.len() / shape.aux_bytes;
        let reg_ok = |j: u8| u32::from(j) < r;
        let ctl_ok = |c: Option<(u8, bool)>| c.is_none_or(|(j, _)| reg_ok(j));
        let co_ok = |co: u32, n: usize| (co as usize).checked_add(n).is_some_and(|e| e <= nco);
        let aux_ok = |a: u32, n: usize| (a as usize).checked_add(n).is_some_and(|e| e <= naux);
        let ok = ops.iter().all(|op| match *op {
            POp::Unit { reg, co, .. } => reg_ok(reg) && co_ok(co, 2),
            POp::UnitLane { aux, co } => aux_ok(aux, 1) && co_ok(co, 1),
            POp::Real { reg, co } => reg_ok(reg) && co_ok(co, 4),
            POp::Dense { reg, co } => reg_ok(reg) && co_ok(co, 8),
            POp::DenseLane { aux, co } => aux_ok(aux, 2) && co_ok(co, 4),
            POp::Diag { co } => co_ok(co, 2 << r),
            POp::DiagAll { co } => co_ok(co, 2),
            POp::DiagHalf { reg, co } => reg_ok(reg) && co_ok(co, 2),
            POp::Swap { t, ctl } => reg_ok(t) && ctl_ok(ctl) && ctl.is_none_or(|(c, _)| c != t),
            POp::Permute { ctl, aux } => ctl_ok(ctl) && aux_ok(aux, 1),
            POp::Blend { t, aux } => reg_ok(t) && aux_ok(aux, 1),
        });
        if !ok {
            return None;
        }
        let top = regs.iter().map(|&q| q + 1).max().unwrap_or(0);
        let code = ops.iter().map(opcode).collect();
        Some(Program {
            level,
            regs,
            code,
            coefs,
            aux,
            top,
            sources: 0,
        })
    }

    /// How many planned operations it stands for (set by its planner).
    pub(crate) fn sources(&self) -> usize {
        self.sources
    }

    /// Records how many planned operations it stands for.
    pub(crate) fn with_sources(mut self, n: usize) -> Program<T> {
        self.sources = n;
        self
    }
}

/// Runs `prog` on one chunk (a tile or a block): every group of `2^R` vectors that differ in the
/// register bits goes through all its operations in registers. `false` when the chunk is too
/// small for the program or `level` is not the program's (nothing is touched then).
pub(crate) fn run_program<T: Real>(
    level: SimdLevel,
    chunk: &mut [Complex<T>],
    prog: &Program<T>,
) -> bool {
    let len = chunk.len();
    if level != prog.level
        || lanes::<T>(level) == 0
        || !len.is_power_of_two()
        || len < 1usize << prog.top
    {
        return false;
    }
    let p = chunk.as_mut_ptr();
    dispatch!(level, T, |k, pair, F| {
        let _ = pair::<T>;
        // SAFETY: CPU features as in `dense2_block`; `p` points to `len` complex values borrowed
        // exclusively, `len` a power of two above every register bit (so every slot of every
        // group lies inside the chunk, and groups are disjoint); `Program::new` checked that the
        // register bits are distinct and at or above the lane bits, that the program is for this
        // level and precision (so `R` and the vector widths match), and that every coefficient
        // and lane vector an operation reads is inside `coefs` and `aux`.
        unsafe {
            k::prog(
                p.cast::<F>(),
                len,
                &prog.regs,
                &prog.code,
                prog.coefs.as_ptr().cast::<F>(),
                prog.aux.as_ptr(),
            )
        }
    })
}

/// States at least this large (bytes) get the page handling of [`zeroed_amplitudes`].
const LARGE_STATE_BYTES_MIN: usize = 1 << 22;

/// `len` zero amplitudes, and whether their pages may still be untouched. For a state of at
/// least 4 MiB in `f32` or `f64` on Linux: allocated zeroed (an allocator hands fresh memory
/// over untouched, the kernel faults zeroed pages in on first use) and, on x86-64, advised
/// `MADV_NOHUGEPAGE`; the fast engine then faults the pages in ahead of its first pass
/// ([`first_touch`]), from every thread it runs on. Anything else is `vec![0; len]`, touched.
///
/// Why small pages: an allocator may ask for transparent huge pages, and a huge page's first
/// touch is fast when the kernel has free ones at hand but costs 10 to 20 times a small page's
/// per byte when it has to find (compact) them or the hypervisor has to back memory a previous
/// process gave back — the first touch of a 24-qubit `f64` state went from 0.02 s to 0.3–0.8 s,
/// differently from run to run. Small pages cost the same every time. The advice never changes
/// the memory's contents, and a kernel without it just faults the pages in on first use.
pub(crate) fn zeroed_amplitudes<T: Real>(len: usize) -> (Vec<Complex<T>>, bool) {
    let zero = Complex::new(T::zero(), T::zero());
    let bytes = len.saturating_mul(std::mem::size_of::<Complex<T>>());
    let float = matches!(prec::<T>(), Prec::F32 | Prec::F64);
    if bytes < LARGE_STATE_BYTES_MIN || !float || !cfg!(target_os = "linux") {
        return (vec![zero; len], false);
    }
    let Ok(layout) = std::alloc::Layout::array::<Complex<T>>(len) else {
        return (vec![zero; len], false);
    };
    // SAFETY: `layout` has a non-zero size (at least 4 MiB).
    let p = unsafe { std::alloc::alloc_zeroed(layout) }.cast::<Complex<T>>();
    if p.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    if let Some((start, pages)) = whole_pages(p as usize, bytes) {
        madvise(start, pages, MADV_NOHUGEPAGE);
    }
    // SAFETY: `p` was allocated by the global allocator with the layout of `len` values of
    // `Complex<T>` (so capacity `len` matches it), and every byte is zero, which is the value
    // `0.0 + 0.0i` for `T` of `f32` or `f64` (checked above): all `len` values are initialised.
    (unsafe { Vec::from_raw_parts(p, len, len) }, true)
}

/// Faults in the pages of a state that [`zeroed_amplitudes`] left untouched, whose amplitudes
/// are all zero except the first: on one thread with one `madvise(MADV_POPULATE_WRITE)` (about
/// 20 % cheaper than a fault per page), in parallel by writing a zero into every page (the
/// kernel takes faults on several threads at once, a single populate call on one), on the
/// current rayon pool. Nothing changes but where the pages are: the first amplitude is never
/// written, the others are written the zero they hold.
pub(crate) fn first_touch<T: Real>(amps: &mut [Complex<T>], parallel: bool) {
    const PAGE: usize = 4096;
    let bytes = std::mem::size_of_val(amps);
    if !parallel {
        if let Some((start, pages)) = whole_pages(amps.as_ptr() as usize, bytes) {
            madvise(start, pages, MADV_POPULATE_WRITE);
        }
        return;
    }
    let zero = Complex::new(T::zero(), T::zero());
    let stride = (PAGE / std::mem::size_of::<Complex<T>>()).max(1);
    // Chunks of 2 MiB, a multiple of the stride: every page gets one write.
    let chunk = stride << 9;
    amps.par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(c, part)| {
            for (k, a) in part.iter_mut().step_by(stride).enumerate() {
                if c > 0 || k > 0 {
                    *a = zero;
                }
            }
        });
}

/// The whole pages inside `[addr, addr + bytes)`: their start and length, if any.
fn whole_pages(addr: usize, bytes: usize) -> Option<(usize, usize)> {
    const PAGE: usize = 4096;
    let start = addr.div_ceil(PAGE) * PAGE;
    let end = (addr + bytes) / PAGE * PAGE;
    (end > start).then(|| (start, end - start))
}

/// `madvise(2)` on the page-aligned range `[addr, addr + len)`; the result is ignored (it is
/// advice: a kernel without `MADV_POPULATE_WRITE` answers `EINVAL` and the pages fault in on
/// first use as usual).
#[cfg(target_os = "linux")]
fn madvise(addr: usize, len: usize, advice: libc::c_int) {
    // SAFETY: `madvise` with the advices used here (`MADV_NOHUGEPAGE`, `MADV_POPULATE_WRITE`)
    // sets a paging policy or faults pages in ahead of use; it never changes the memory's
    // contents, mapping or validity, and the range lies inside an allocation the caller holds.
    let _ = unsafe { libc::madvise(addr as *mut libc::c_void, len, advice) };
}

#[cfg(not(target_os = "linux"))]
fn madvise(_addr: usize, _len: usize, _advice: i32) {}

#[cfg(target_os = "linux")]
use libc::{MADV_NOHUGEPAGE, MADV_POPULATE_WRITE};
#[cfg(not(target_os = "linux"))]
const MADV_NOHUGEPAGE: i32 = 0;
#[cfg(not(target_os = "linux"))]
const MADV_POPULATE_WRITE: i32 = 0;

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

    /// Runs `$body` once for every slot `$s` of the list, `$s` a constant, so that the slots stay
    /// in registers (every index into them is known at compile time).
    macro_rules! each_slot_in {
        ([$($k:literal)*] $s:ident => $body:block) => {
            $({
                const $s: usize = $k;
                $body
            })*
        };
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

            /// A register program's slots: vector `s` holds the amplitudes whose register bits
            /// are the bits of `s`.
            type Slots = [V; S];

            // SAFETY (every `p_*` helper below): inlined into `prog` alone, which has the
            // module's CPU features; `c` points to the operation's coefficient vectors (and
            // `ix`/`mk` are its lane vectors), as `Program::new` checked. A helper for a register
            // bit `J >= R` does nothing (its arm is never taken; the check keeps it in bounds).

            /// Unit-diagonal 2×2 on register bit `J`: `lo' = lo + A·Y(hi)`, `hi' = hi + B·Y(lo)`.
            #[inline(always)]
            unsafe fn p_unit<const J: usize, const IM: bool>(v: &mut Slots, c: *const F) {
                if J >= R {
                    return;
                }
                let (a, b) = (ld(c), ld(c.add(2 * W)));
                each_slot!(SL => {
                    if !has(SL, J) {
                        let (x0, x1) = (v[SL], v[SL | 1 << J]);
                        let (y0, y1) = if IM { (swp(x0), swp(x1)) } else { (x0, x1) };
                        v[SL] = fma(a, y1, x0);
                        v[SL | 1 << J] = fma(b, y0, x1);
                    }
                });
            }

            /// Unit-diagonal 2×2 on a lane bit: `x' = x + A·P(x)`.
            #[inline(always)]
            unsafe fn p_unit_lane(v: &mut Slots, c: *const F, ix: IX) {
                let a = ld(c);
                each_slot!(SL => {
                    v[SL] = fma(a, permx(v[SL], ix), v[SL]);
                });
            }

            /// Real 2×2 on register bit `J`.
            #[inline(always)]
            unsafe fn p_real<const J: usize>(v: &mut Slots, c: *const F) {
                if J >= R {
                    return;
                }
                let m = [ld(c), ld(c.add(2 * W)), ld(c.add(4 * W)), ld(c.add(6 * W))];
                each_slot!(SL => {
                    if !has(SL, J) {
                        let (x0, x1) = (v[SL], v[SL | 1 << J]);
                        v[SL] = fma(m[1], x1, mul(m[0], x0));
                        v[SL | 1 << J] = fma(m[2], x0, mul(m[3], x1));
                    }
                });
            }

            /// Complex 2×2 on register bit `J` (imaginary parts signed for the re/im swap).
            #[inline(always)]
            unsafe fn p_dense<const J: usize>(v: &mut Slots, c: *const F) {
                if J >= R {
                    return;
                }
                let m = [
                    ld(c),
                    ld(c.add(2 * W)),
                    ld(c.add(4 * W)),
                    ld(c.add(6 * W)),
                    ld(c.add(8 * W)),
                    ld(c.add(10 * W)),
                    ld(c.add(12 * W)),
                    ld(c.add(14 * W)),
                ];
                each_slot!(SL => {
                    if !has(SL, J) {
                        let (x0, x1) = (v[SL], v[SL | 1 << J]);
                        let (y0, y1) = (swp(x0), swp(x1));
                        v[SL] = fma(m[3], y1, fma(m[2], x1, fma(m[1], y0, mul(m[0], x0))));
                        v[SL | 1 << J] =
                            fma(m[7], y1, fma(m[6], x1, fma(m[5], y0, mul(m[4], x0))));
                    }
                });
            }

            /// Complex 2×2 on a lane bit.
            #[inline(always)]
            unsafe fn p_dense_lane(v: &mut Slots, c: *const F, ix: IX, ixs: IX) {
                let m = [ld(c), ld(c.add(2 * W)), ld(c.add(4 * W)), ld(c.add(6 * W))];
                each_slot!(SL => {
                    let x = v[SL];
                    let a = fma(m[1], swp(x), mul(m[0], x));
                    v[SL] = fma(m[3], permx(x, ixs), fma(m[2], permx(x, ix), a));
                });
            }

            /// Every slot times its own diagonal.
            #[inline(always)]
            unsafe fn p_diag(v: &mut Slots, c: *const F) {
                each_slot!(SL => {
                    let (zr, zi) = (ld(c.add(4 * W * SL)), ld(c.add(4 * W * SL + 2 * W)));
                    v[SL] = fma(zi, swp(v[SL]), mul(zr, v[SL]));
                });
            }

            /// Every slot (`J >= R`), or the slots with register bit `J` set, times one
            /// diagonal.
            #[inline(always)]
            unsafe fn p_diag_some<const J: usize>(v: &mut Slots, c: *const F) {
                let (zr, zi) = (ld(c), ld(c.add(2 * W)));
                each_slot!(SL => {
                    if J >= R || has(SL, J) {
                        v[SL] = fma(zi, swp(v[SL]), mul(zr, v[SL]));
                    }
                });
            }

            /// Whether bit `j` of slot `s` is set.
            #[inline(always)]
            const fn has(s: usize, j: usize) -> bool {
                (s >> j) & 1 == 1
            }

            /// Whether slot `s` satisfies the control on register bit `C` with value `CV`
            /// (`C >= R`: no control).
            #[inline(always)]
            const fn holds<const C: usize, const CV: bool>(s: usize) -> bool {
                C >= R || ((s >> C) & 1 == 1) == CV
            }

            /// X on register bit `TT` of the slots that satisfy the control.
            #[inline(always)]
            unsafe fn p_swap<const TT: usize, const C: usize, const CV: bool>(v: &mut Slots) {
                if TT >= R {
                    return;
                }
                each_slot!(SL => {
                    if !has(SL, TT) && holds::<C, CV>(SL) {
                        // (By hand: the slots must stay plain values in registers.)
                        #[allow(clippy::manual_swap)]
                        {
                            let tmp = v[SL];
                            v[SL] = v[SL | 1 << TT];
                            v[SL | 1 << TT] = tmp;
                        }
                    }
                });
            }

            /// A lane permutation of the slots that satisfy the control.
            #[inline(always)]
            unsafe fn p_permute<const C: usize, const CV: bool>(v: &mut Slots, ix: IX) {
                each_slot!(SL => {
                    if holds::<C, CV>(SL) {
                        v[SL] = permx(v[SL], ix);
                    }
                });
            }

            /// CX with a lane control and its target on register bit `TT`: the masked lanes
            /// of each slot pair exchanged.
            #[inline(always)]
            unsafe fn p_blend<const TT: usize>(v: &mut Slots, mk: MK) {
                if TT >= R {
                    return;
                }
                each_slot!(SL => {
                    if !has(SL, TT) {
                        let (a, b) = (v[SL], v[SL | 1 << TT]);
                        v[SL] = blend(mk, a, b);
                        v[SL | 1 << TT] = blend(mk, b, a);
                    }
                });
            }

            /// Runs a register program on a chunk of `len` complex values at `p`: every group
            /// of `S` vectors that differ only in the register bits `regs` is loaded, taken
            /// through `ops` in registers and stored.
            // SAFETY (callers): the CPU has the module's features; `p` points to `len` complex
            // values valid for reads and writes, `len` a power of two above every bit of
            // `regs`; `regs` are `R` distinct bits, none of them a lane bit; every operation's
            // register bits are below `R`, and its coefficient vectors (`2W` floats each, from
            // `co`) and lane vectors (`2W` floats' bytes each, from `aux`) exist.
            #[target_feature(enable = $feat)]
            pub(crate) unsafe fn prog(
                p: *mut F,
                len: usize,
                regs: &[u32],
                code: &[(u8, u32, u32)],
                cp: *const F,
                aux_p: *const u8,
            ) {
                // Slot `s` is at `lo[s % 4] + hi[s / 4]` floats from a group's first amplitude:
                // a few offsets that stay in registers (a table of all `S` would not).
                let stride = |j: usize| 2usize << regs[j];
                let lo = [0, stride(0), stride(1), stride(0) + stride(1)];
                let mut hi = [0usize; S / 4];
                for (k, h) in hi.iter_mut().enumerate() {
                    for j in 2..R {
                        if (k >> (j - 2)) & 1 == 1 {
                            *h += stride(j);
                        }
                    }
                }
                let regmask = regs.iter().take(R).fold(0usize, |m, &q| m | 1usize << q);
                let vb = 2 * W * std::mem::size_of::<F>();
                let free = (len - 1) & !regmask & !(W - 1);
                let mut x = 0usize;
                loop {
                    let b = p.add(2 * x);
                    let mut v: Slots = [set1(0.0); S];
                    each_slot!(SL => {
                        v[SL] = ld(b.add(hi[SL / 4]).add(lo[SL % 4]));
                    });
                    for &(code, k, a) in code {
                        let (k, a) = (k as usize, a as usize);
                        match code {
                            0 => p_unit::<0, false>(&mut v, cp.add(2 * W * k)),
                            1 => p_unit::<1, false>(&mut v, cp.add(2 * W * k)),
                            2 => p_unit::<2, false>(&mut v, cp.add(2 * W * k)),
                            3 => p_unit::<3, false>(&mut v, cp.add(2 * W * k)),
                            4 => p_unit::<0, true>(&mut v, cp.add(2 * W * k)),
                            5 => p_unit::<1, true>(&mut v, cp.add(2 * W * k)),
                            6 => p_unit::<2, true>(&mut v, cp.add(2 * W * k)),
                            7 => p_unit::<3, true>(&mut v, cp.add(2 * W * k)),
                            8 => p_unit_lane(&mut v, cp.add(2 * W * k), ldix(aux_p.add(vb * a).cast::<IE>())),
                            9 => p_real::<0>(&mut v, cp.add(2 * W * k)),
                            10 => p_real::<1>(&mut v, cp.add(2 * W * k)),
                            11 => p_real::<2>(&mut v, cp.add(2 * W * k)),
                            12 => p_real::<3>(&mut v, cp.add(2 * W * k)),
                            13 => p_dense::<0>(&mut v, cp.add(2 * W * k)),
                            14 => p_dense::<1>(&mut v, cp.add(2 * W * k)),
                            15 => p_dense::<2>(&mut v, cp.add(2 * W * k)),
                            16 => p_dense::<3>(&mut v, cp.add(2 * W * k)),
                            17 => p_dense_lane(&mut v, cp.add(2 * W * k), ldix(aux_p.add(vb * a).cast::<IE>()), ldix(aux_p.add(vb * (a + 1)).cast::<IE>())),
                            18 => p_diag(&mut v, cp.add(2 * W * k)),
                            19 => p_diag_some::<R>(&mut v, cp.add(2 * W * k)),
                            20 => p_diag_some::<0>(&mut v, cp.add(2 * W * k)),
                            21 => p_diag_some::<1>(&mut v, cp.add(2 * W * k)),
                            22 => p_diag_some::<2>(&mut v, cp.add(2 * W * k)),
                            23 => p_diag_some::<3>(&mut v, cp.add(2 * W * k)),
                            24 => p_swap::<0, R, false>(&mut v),
                            25 => p_swap::<1, R, false>(&mut v),
                            26 => p_swap::<2, R, false>(&mut v),
                            27 => p_swap::<3, R, false>(&mut v),
                            28 => p_swap::<0, 0, false>(&mut v),
                            29 => p_swap::<0, 0, true>(&mut v),
                            30 => p_swap::<0, 1, false>(&mut v),
                            31 => p_swap::<0, 1, true>(&mut v),
                            32 => p_swap::<0, 2, false>(&mut v),
                            33 => p_swap::<0, 2, true>(&mut v),
                            34 => p_swap::<0, 3, false>(&mut v),
                            35 => p_swap::<0, 3, true>(&mut v),
                            36 => p_swap::<1, 0, false>(&mut v),
                            37 => p_swap::<1, 0, true>(&mut v),
                            38 => p_swap::<1, 1, false>(&mut v),
                            39 => p_swap::<1, 1, true>(&mut v),
                            40 => p_swap::<1, 2, false>(&mut v),
                            41 => p_swap::<1, 2, true>(&mut v),
                            42 => p_swap::<1, 3, false>(&mut v),
                            43 => p_swap::<1, 3, true>(&mut v),
                            44 => p_swap::<2, 0, false>(&mut v),
                            45 => p_swap::<2, 0, true>(&mut v),
                            46 => p_swap::<2, 1, false>(&mut v),
                            47 => p_swap::<2, 1, true>(&mut v),
                            48 => p_swap::<2, 2, false>(&mut v),
                            49 => p_swap::<2, 2, true>(&mut v),
                            50 => p_swap::<2, 3, false>(&mut v),
                            51 => p_swap::<2, 3, true>(&mut v),
                            52 => p_swap::<3, 0, false>(&mut v),
                            53 => p_swap::<3, 0, true>(&mut v),
                            54 => p_swap::<3, 1, false>(&mut v),
                            55 => p_swap::<3, 1, true>(&mut v),
                            56 => p_swap::<3, 2, false>(&mut v),
                            57 => p_swap::<3, 2, true>(&mut v),
                            58 => p_swap::<3, 3, false>(&mut v),
                            59 => p_swap::<3, 3, true>(&mut v),
                            60 => p_permute::<R, false>(&mut v, ldix(aux_p.add(vb * a).cast::<IE>())),
                            61 => p_permute::<0, false>(&mut v, ldix(aux_p.add(vb * a).cast::<IE>())),
                            62 => p_permute::<0, true>(&mut v, ldix(aux_p.add(vb * a).cast::<IE>())),
                            63 => p_permute::<1, false>(&mut v, ldix(aux_p.add(vb * a).cast::<IE>())),
                            64 => p_permute::<1, true>(&mut v, ldix(aux_p.add(vb * a).cast::<IE>())),
                            65 => p_permute::<2, false>(&mut v, ldix(aux_p.add(vb * a).cast::<IE>())),
                            66 => p_permute::<2, true>(&mut v, ldix(aux_p.add(vb * a).cast::<IE>())),
                            67 => p_permute::<3, false>(&mut v, ldix(aux_p.add(vb * a).cast::<IE>())),
                            68 => p_permute::<3, true>(&mut v, ldix(aux_p.add(vb * a).cast::<IE>())),
                            69 => p_blend::<0>(&mut v, ldmk(aux_p.add(vb * a))),
                            70 => p_blend::<1>(&mut v, ldmk(aux_p.add(vb * a))),
                            71 => p_blend::<2>(&mut v, ldmk(aux_p.add(vb * a))),
                            72 => p_blend::<3>(&mut v, ldmk(aux_p.add(vb * a))),
                            _ => {}
                        }
                    }
                    each_slot!(SL => {
                        st(b.add(hi[SL / 4]).add(lo[SL % 4]), v[SL]);
                    });
                    if x == free {
                        break;
                    }
                    x = (x | !free).wrapping_add(1) & free;
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
        /// Register bits of a program (16 slot vectors of the 32 registers).
        const R: usize = 4;
        const S: usize = 1 << R;
        type IX = __m512i;
        type MK = __mmask16;
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
        /// A lane permutation by a full index vector.
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn permx(v: V, ix: IX) -> V {
            _mm512_permutexvar_ps(ix, v)
        }
        /// A lane mask: one bit per float, in the first bytes at `p`.
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn ldmk(p: *const u8) -> MK {
            u16::from_le_bytes(p.cast::<[u8; 2]>().read_unaligned())
        }
        /// `b` in the lanes the mask selects, `a` elsewhere.
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn blend(m: MK, a: V, b: V) -> V {
            _mm512_mask_blend_ps(m, a, b)
        }
        /// Runs `$body` once for every slot `$s` (0 to 15) (see `each_slot_in!`).
        macro_rules! each_slot {
            ($s:ident => $body:block) => { each_slot_in!([0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15] $s => $body) };
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
        /// Register bits of a program (16 slot vectors of the 32 registers).
        const R: usize = 4;
        const S: usize = 1 << R;
        type IX = __m512i;
        type MK = __mmask8;
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
        /// A lane permutation by a full index vector.
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn permx(v: V, ix: IX) -> V {
            _mm512_permutexvar_pd(ix, v)
        }
        /// A lane mask: one bit per double, in the first byte at `p`.
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn ldmk(p: *const u8) -> MK {
            p.read()
        }
        /// `b` in the lanes the mask selects, `a` elsewhere.
        #[inline]
        #[target_feature(enable = "avx512f")]
        unsafe fn blend(m: MK, a: V, b: V) -> V {
            _mm512_mask_blend_pd(m, a, b)
        }
        /// Runs `$body` once for every slot `$s` (0 to 15) (see `each_slot_in!`).
        macro_rules! each_slot {
            ($s:ident => $body:block) => { each_slot_in!([0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15] $s => $body) };
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
        /// Register bits of a program (8 slot vectors of the 16 registers).
        const R: usize = 3;
        const S: usize = 1 << R;
        type IX = __m256i;
        type MK = __m256;
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
        /// A lane permutation by a full index vector.
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn permx(v: V, ix: IX) -> V {
            _mm256_permutevar8x32_ps(v, ix)
        }
        /// A lane mask: every float all ones or all zeros, at `p`.
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn ldmk(p: *const u8) -> MK {
            _mm256_loadu_ps(p.cast::<F>())
        }
        /// `b` in the lanes the mask selects, `a` elsewhere.
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn blend(m: MK, a: V, b: V) -> V {
            _mm256_blendv_ps(a, b, m)
        }
        /// Runs `$body` once for every slot `$s` (0 to 7) (see `each_slot_in!`).
        macro_rules! each_slot {
            ($s:ident => $body:block) => { each_slot_in!([0 1 2 3 4 5 6 7] $s => $body) };
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
        /// Register bits of a program (8 slot vectors of the 16 registers).
        const R: usize = 3;
        const S: usize = 1 << R;
        type IX = __m256i;
        type MK = __m256d;
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
        /// A lane permutation by a full index vector (32-bit halves of the doubles moved in
        /// pairs).
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn permx(v: V, ix: IX) -> V {
            _mm256_castps_pd(_mm256_permutevar8x32_ps(_mm256_castpd_ps(v), ix))
        }
        /// A lane mask: every double all ones or all zeros, at `p`.
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn ldmk(p: *const u8) -> MK {
            _mm256_loadu_pd(p.cast::<F>())
        }
        /// `b` in the lanes the mask selects, `a` elsewhere.
        #[inline]
        #[target_feature(enable = "avx2,fma")]
        unsafe fn blend(m: MK, a: V, b: V) -> V {
            _mm256_blendv_pd(a, b, m)
        }
        /// Runs `$body` once for every slot `$s` (0 to 7) (see `each_slot_in!`).
        macro_rules! each_slot {
            ($s:ident => $body:block) => { each_slot_in!([0 1 2 3 4 5 6 7] $s => $body) };
        }
        kernels!("avx2,fma");
    }
}
