//! State-level primitives that measurement and noise need beyond unitary gates: the probability
//! of a qubit being 1, collapse, a (not necessarily unitary) 2×2 operator on one qubit,
//! renormalisation and Pauli strings. Scalar, accumulating in `f64`, and independent of the
//! engine, so that every engine sees the same non-unitary steps.

use crate::gates::C64;
use crate::real::Real;
use crate::state::StateVec;
use num_complex::Complex;

fn sq<T: Real>(a: Complex<T>) -> f64 {
    let (r, i) = (a.re.to_f64(), a.im.to_f64());
    r * r + i * i
}

/// `(P(q = 0), P(q = 1))` unnormalised: the squared norms of the two halves, in `f64`.
pub fn probabilities<T: Real>(state: &StateVec<T>, q: u32) -> (f64, f64) {
    let bit = 1usize << q;
    let (mut p0, mut p1) = (0.0f64, 0.0f64);
    for (i, a) in state.amplitudes().iter().enumerate() {
        if i & bit == 0 {
            p0 += sq(*a);
        } else {
            p1 += sq(*a);
        }
    }
    (p0, p1)
}

/// The probability that measuring `q` gives 1, normalised by the state's norm.
pub fn prob_one<T: Real>(state: &StateVec<T>, q: u32) -> f64 {
    let (p0, p1) = probabilities(state, q);
    let t = p0 + p1;
    if t > 0.0 {
        p1 / t
    } else {
        0.0
    }
}

/// Projects `q` onto `outcome` and rescales the kept half by `1/√kept_norm_sqr`, where
/// `kept_norm_sqr` is the squared norm of the kept half (from [`probabilities`]).
pub fn collapse<T: Real>(state: &mut StateVec<T>, q: u32, outcome: bool, kept_norm_sqr: f64) {
    let bit = 1usize << q;
    let scale = if kept_norm_sqr > 0.0 {
        1.0 / kept_norm_sqr.sqrt()
    } else {
        0.0
    };
    let s = T::from_f64(scale);
    let zero = Complex::new(T::zero(), T::zero());
    for (i, a) in state.amplitudes_mut().iter_mut().enumerate() {
        if ((i & bit) != 0) == outcome {
            *a = Complex::new(a.re * s, a.im * s);
        } else {
            *a = zero;
        }
    }
}

/// Applies the 2×2 matrix `m` (row-major, `m[r][c]`, not necessarily unitary) to qubit `q`, in
/// `f64`.
pub fn apply_1q<T: Real>(state: &mut StateVec<T>, q: u32, m: [[C64; 2]; 2]) {
    let bit = 1usize << q;
    let amps = state.amplitudes_mut();
    for i in 0..amps.len() {
        if i & bit != 0 {
            continue;
        }
        let j = i | bit;
        let a0 = C64::new(amps[i].re.to_f64(), amps[i].im.to_f64());
        let a1 = C64::new(amps[j].re.to_f64(), amps[j].im.to_f64());
        amps[i] = T::c(m[0][0] * a0 + m[0][1] * a1);
        amps[j] = T::c(m[1][0] * a0 + m[1][1] * a1);
    }
}

/// Multiplies every amplitude by `s`.
pub fn scale<T: Real>(state: &mut StateVec<T>, s: f64) {
    let s = T::from_f64(s);
    for a in state.amplitudes_mut() {
        *a = Complex::new(a.re * s, a.im * s);
    }
}

/// Rescales the state to norm 1 and returns the squared norm it had (a zero state is left as is).
pub fn renormalise<T: Real>(state: &mut StateVec<T>) -> f64 {
    let n = state.norm_sqr();
    if n > 0.0 {
        scale(state, 1.0 / n.sqrt());
    }
    n
}

/// Applies `X^x_mask · Z^z_mask` (Z first): a Pauli string up to its global phase `i^{#Y}`
/// (a qubit in both masks gets `XZ = −iY`).
pub fn apply_pauli<T: Real>(state: &mut StateVec<T>, x_mask: u64, z_mask: u64) {
    let amps = state.amplitudes_mut();
    if z_mask != 0 {
        for (i, a) in amps.iter_mut().enumerate() {
            if (i as u64 & z_mask).count_ones() & 1 == 1 {
                *a = -*a;
            }
        }
    }
    if x_mask != 0 {
        let x = x_mask as usize;
        // Swap each pair (i, i ^ x) once: from the member whose highest flipped bit is 0.
        let top = 1usize << (63 - x_mask.leading_zeros());
        for i in 0..amps.len() {
            if i & top == 0 {
                amps.swap(i, i ^ x);
            }
        }
    }
}

/// Sets the state to |0…0⟩.
pub fn set_zero<T: Real>(state: &mut StateVec<T>) {
    let zero = Complex::new(T::zero(), T::zero());
    let amps = state.amplitudes_mut();
    amps.fill(zero);
    if let Some(a) = amps.first_mut() {
        *a = Complex::new(T::one(), T::zero());
    }
}

/// Multiplies the state by the global phase `e^{iφ}`.
pub fn global_phase<T: Real>(state: &mut StateVec<T>, phi: f64) {
    let z = C64::from_polar(1.0, phi);
    for a in state.amplitudes_mut() {
        let v = C64::new(a.re.to_f64(), a.im.to_f64()) * z;
        *a = T::c(v);
    }
}
