//! The two-mode building blocks and their conventions.
//!
//! Modes are numbered 0..N. A two-mode block acts on modes `(m, m+1)`; its 2 × 2 matrix `B` maps
//! the amplitudes `(a_m, a_{m+1})` to `B · (a_m, a_{m+1})ᵀ`, all other modes untouched.
//!
//! - **MZI** (Clements et al., Optica 3, 1460 (2016)):
//!   `T(θ, φ) = [[e^{iφ} cos θ, −sin θ], [e^{iφ} sin θ, cos θ]]` — an external phase φ on mode
//!   `m`, then a real rotation by θ. θ = 0 is the bar state (no coupling, mode `m` picks up
//!   e^{iφ}); θ = π/2 is the cross state; θ = π/4 is balanced (splits power equally).
//! - **Beam splitter**: `B(θ) = [[cos θ, i sin θ], [i sin θ, cos θ]]` (symmetric, the common
//!   lossless-splitter convention); θ = π/4 is 50:50.
//! - **Phase shifter** on mode `m`: `a_m ← e^{iφ} a_m`.

use serde::{Deserialize, Serialize};

use crate::C64;

/// One MZI of a mesh: `T(theta, phi)` on `modes = [m, m+1]`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Mzi {
    /// The two adjacent modes `[m, m+1]` it couples.
    pub modes: [usize; 2],
    /// The internal (coupling) angle θ in radians.
    pub theta: f64,
    /// The external phase φ in radians, applied to mode `m` before the coupling.
    pub phi: f64,
}

impl Mzi {
    /// The MZI `T(theta, phi)` on modes `(m, m+1)`.
    pub fn new(m: usize, theta: f64, phi: f64) -> Mzi {
        Mzi {
            modes: [m, m + 1],
            theta,
            phi,
        }
    }

    /// Its 2 × 2 matrix `T(θ, φ)`.
    pub fn matrix(&self) -> [[C64; 2]; 2] {
        mzi_matrix(self.theta, self.phi)
    }

    /// Applies it to a field vector in place: O(1). Panics if `modes[1]` is out of range (the
    /// callers check modes against the field when they build a mesh).
    pub fn apply(&self, field: &mut [C64]) {
        let (s, c) = self.theta.sin_cos();
        let e = C64::from_polar(1.0, self.phi);
        let m = self.modes[0];
        let t = e * field[m];
        let y = field[m + 1];
        field[m] = t * c - y * s;
        field[m + 1] = t * s + y * c;
    }
}

/// `T(θ, φ) = [[e^{iφ} cos θ, −sin θ], [e^{iφ} sin θ, cos θ]]`.
pub fn mzi_matrix(theta: f64, phi: f64) -> [[C64; 2]; 2] {
    let (s, c) = theta.sin_cos();
    let e = C64::from_polar(1.0, phi);
    [[e * c, C64::new(-s, 0.0)], [e * s, C64::new(c, 0.0)]]
}

/// The beam splitter `B(θ) = [[cos θ, i sin θ], [i sin θ, cos θ]]`.
pub fn bs_matrix(theta: f64) -> [[C64; 2]; 2] {
    let (s, c) = theta.sin_cos();
    [
        [C64::new(c, 0.0), C64::new(0.0, s)],
        [C64::new(0.0, s), C64::new(c, 0.0)],
    ]
}
