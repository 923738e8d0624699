//! Engines: what applies a sequence of gates to a state vector. [`Reference`] is the scalar
//! oracle — one amplitude group at a time, straight from the definition — that every fast engine
//! is tested against.

mod reference;

pub use reference::Reference;

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
