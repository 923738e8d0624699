//! XDV's Q domain: the embedded quantum provider.
//!
//! - [`gates`]: the gate table — every gate's matrix, inverse, decomposition and documentation, as
//!   data, checked for self-consistency by the tests.
//! - [`circuit`]: the circuit IR every front end lowers to and every engine executes.
//! - [`real`]: the floating-point abstraction that makes every engine generic over `f32` and `f64`.
//! - [`engine`]: engines that apply gates to a state — the scalar reference (the oracle) and the
//!   fast engine.
//! - [`state`]: the state-vector buffer, with its memory limit checked before allocation.
//!
//! Conventions (shared with Qiskit): qubit `q` is the `q`-th declared qubit, registers
//! concatenated in declaration order; a state-vector index is `Σ bit_q · 2^q` (qubit 0 is the least
//! significant bit); a counts key lists the classical bits with the highest index leftmost.

pub mod circuit;
pub mod engine;
pub mod gates;
pub mod real;
pub mod state;

pub use circuit::{Circuit, Condition, Gate, Op, Register};
pub use engine::{Engine, Fast, Reference};
pub use gates::{GateDef, Matrix, C64};
pub use real::Real;
pub use state::{StateError, StateVec};
