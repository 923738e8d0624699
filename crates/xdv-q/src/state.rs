//! The state-vector buffer: `2^n` contiguous complex amplitudes, index `Σ bit_q · 2^q`. Its size
//! is checked against a memory limit before anything is allocated, so an impossible request is a
//! clear error, never an abort.

use crate::real::Real;
use num_complex::Complex;
use thiserror::Error;

/// The largest qubit count a state vector may have, whatever the memory limit (2^40 amplitudes).
pub const QUBITS_MAX: u32 = 40;

/// Why a state vector cannot be created.
#[derive(Debug, Error, PartialEq)]
pub enum StateError {
    /// More qubits than XDV simulates.
    #[error("{qubits} qubits is more than the {max} a state vector may have")]
    TooManyQubits {
        /// Requested.
        qubits: u32,
        /// [`QUBITS_MAX`].
        max: u32,
    },
    /// The state would not fit in the memory limit.
    #[error(
        "a {qubits}-qubit state vector in {precision} needs {needed_bytes} bytes ({}), more than the {limit_bytes} bytes ({}) available; use fewer qubits{}",
        human(*needed_bytes), human(*limit_bytes),
        if *precision == "f64" { " or --precision f32" } else { "" }
    )]
    TooLarge {
        /// Requested qubits.
        qubits: u32,
        /// `f32` or `f64`.
        precision: &'static str,
        /// Bytes the amplitudes would take.
        needed_bytes: u64,
        /// The limit.
        limit_bytes: u64,
    },
}

/// `12.0 GiB`-style rendering of a byte count.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = bytes as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{bytes} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Bytes a state of `qubits` qubits takes in precision `T`.
pub fn state_bytes<T: Real>(qubits: u32) -> u64 {
    (std::mem::size_of::<Complex<T>>() as u64) << qubits
}

/// A state vector of `n` qubits.
#[derive(Debug)]
pub struct StateVec<T: Real> {
    n: u32,
    amps: Vec<Complex<T>>,
    /// Whether the amplitudes' pages may still be untouched since [`StateVec::zero`] allocated
    /// them (all zero but the first); any mutable access clears it.
    untouched: bool,
}

impl<T: Real> Clone for StateVec<T> {
    fn clone(&self) -> Self {
        StateVec {
            n: self.n,
            amps: self.amps.clone(),
            untouched: false,
        }
    }
}

impl<T: Real> PartialEq for StateVec<T> {
    /// Equal qubit counts and amplitudes.
    fn eq(&self, other: &Self) -> bool {
        self.n == other.n && self.amps == other.amps
    }
}

impl<T: Real> StateVec<T> {
    /// |0…0⟩ on `n` qubits, refused before allocation if it would exceed `memory_bytes_max`.
    pub fn zero(n: u32, memory_bytes_max: u64) -> Result<Self, StateError> {
        Self::check(n, memory_bytes_max)?;
        // A large state comes on small pages, left for the engine to fault in from all its
        // threads (see `zeroed_amplitudes`: huge pages' first touch can cost ten times as much,
        // and varies from run to run).
        let (mut amps, untouched) = crate::engine::zeroed_amplitudes::<T>(1usize << n);
        amps[0] = Complex::new(T::one(), T::zero());
        Ok(StateVec { n, amps, untouched })
    }

    /// Checks that an `n`-qubit state fits in `memory_bytes_max`.
    pub fn check(n: u32, memory_bytes_max: u64) -> Result<(), StateError> {
        if n > QUBITS_MAX {
            return Err(StateError::TooManyQubits {
                qubits: n,
                max: QUBITS_MAX,
            });
        }
        let needed_bytes = state_bytes::<T>(n);
        if needed_bytes > memory_bytes_max {
            return Err(StateError::TooLarge {
                qubits: n,
                precision: T::NAME,
                needed_bytes,
                limit_bytes: memory_bytes_max,
            });
        }
        Ok(())
    }

    /// Wraps amplitudes (length must be a power of two).
    pub fn from_amplitudes(amps: Vec<Complex<T>>) -> Self {
        assert!(
            amps.len().is_power_of_two(),
            "StateVec: length is not a power of two"
        );
        StateVec {
            n: amps.len().trailing_zeros(),
            amps,
            untouched: false,
        }
    }

    /// Number of qubits.
    pub fn qubits(&self) -> u32 {
        self.n
    }

    /// The amplitudes.
    pub fn amplitudes(&self) -> &[Complex<T>] {
        &self.amps
    }

    /// The amplitudes, mutably (for engines).
    pub fn amplitudes_mut(&mut self) -> &mut [Complex<T>] {
        self.untouched = false;
        &mut self.amps
    }

    /// Whether the pages may still be untouched since [`StateVec::zero`] (every amplitude zero
    /// but the first, nothing written since); clears it. An engine that gets `true` may fault
    /// the pages in ahead (see `engine::simd::first_touch`).
    pub(crate) fn take_untouched(&mut self) -> bool {
        std::mem::take(&mut self.untouched)
    }

    /// `Σ |a|²`, accumulated in `f64`.
    pub fn norm_sqr(&self) -> f64 {
        self.amps
            .iter()
            .map(|a| a.re.to_f64() * a.re.to_f64() + a.im.to_f64() * a.im.to_f64())
            .sum()
    }

    /// `|⟨self|other⟩|²`, accumulated in `f64` (the state fidelity for normalised states).
    pub fn fidelity(&self, other: &StateVec<T>) -> f64 {
        assert_eq!(self.n, other.n, "fidelity: qubit counts differ");
        let mut re = 0.0;
        let mut im = 0.0;
        for (a, b) in self.amps.iter().zip(&other.amps) {
            let (ar, ai, br, bi) = (a.re.to_f64(), a.im.to_f64(), b.re.to_f64(), b.im.to_f64());
            re += ar * br + ai * bi;
            im += ar * bi - ai * br;
        }
        re * re + im * im
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_before_allocating() {
        let e = StateVec::<f64>::zero(34, 1 << 30).unwrap_err();
        assert_eq!(
            e,
            StateError::TooLarge {
                qubits: 34,
                precision: "f64",
                needed_bytes: 16 << 34,
                limit_bytes: 1 << 30
            }
        );
        assert!(e.to_string().contains("256.0 GiB"), "{e}");
        assert!(e.to_string().contains("--precision f32"), "{e}");
        assert!(matches!(
            StateVec::<f32>::zero(41, u64::MAX),
            Err(StateError::TooManyQubits { .. })
        ));
    }

    #[test]
    fn large_zero_states_are_zero_but_the_first_amplitude() {
        // 2^20 amplitudes: 8 and 16 MiB, past the size where the pages are faulted in ahead.
        fn check<T: Real>() {
            let s = StateVec::<T>::zero(20, u64::MAX).unwrap();
            let a = s.amplitudes();
            assert_eq!(a.len(), 1 << 20);
            assert_eq!(a[0], Complex::new(T::one(), T::zero()));
            assert!(a[1..]
                .iter()
                .all(|z| *z == Complex::new(T::zero(), T::zero())));
        }
        check::<f32>();
        check::<f64>();
    }

    #[test]
    fn zero_state_is_normalised() {
        let s = StateVec::<f32>::zero(3, 1 << 20).unwrap();
        assert_eq!(s.amplitudes().len(), 8);
        assert!((s.norm_sqr() - 1.0).abs() < 1e-12);
        assert!((s.fidelity(&s) - 1.0).abs() < 1e-12);
    }
}
