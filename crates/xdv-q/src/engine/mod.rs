//! Engines: what applies a sequence of gates to a state vector. [`Reference`] is the scalar
//! oracle — one amplitude group at a time, straight from the definition — that every fast engine
//! is tested against. [`Fast`] is the fused, multithreaded engine built from [`fusion`] and the
//! shape-specific kernels.

mod fast;
pub mod fusion;
mod kernels;
mod program;
mod reference;
mod sched;
mod simd;

pub use fast::{block_qubits, chunk_qubits, tile_qubits, Fast, FastOptions, FastStats};
pub use fusion::{plan, FastError, FusedGate, FusedOp};
pub use reference::Reference;
pub(crate) use simd::zeroed_amplitudes;
pub use simd::{detected as simd_detected, SimdLevel};

use crate::circuit::Gate;
use crate::real::Real;
use crate::state::StateVec;

/// Applies unitary gates to a state vector.
///
/// An engine must give the same result (to rounding) as [`Reference`] for every gate sequence, and
/// the same bits whatever its thread count.
pub trait Engine<T: Real>: Sync {
    /// The engine's name, for reports (`reference`, `fast`).
    fn name(&self) -> &'static str;

    /// Applies `gates` to `state`, in order.
    fn apply_gates(&self, state: &mut StateVec<T>, gates: &[Gate]);
}
