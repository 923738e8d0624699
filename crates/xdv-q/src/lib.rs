//! XDV's Q domain: the embedded quantum provider.
//!
//! - [`gates`]: the gate table — every gate's matrix, inverse, decomposition and documentation, as
//!   data, checked for self-consistency by the tests.
//! - [`qasm`]: the OpenQASM 2.0 and 3 front end (lexer, parser, lowering), with file:line:column
//!   errors.
//! - [`circuit`]: the circuit IR every front end lowers to and every engine executes.
//! - [`real`]: the floating-point abstraction that makes every engine generic over `f32` and `f64`.
//! - [`engine`]: engines that apply gates to a state — the scalar reference (the oracle) and the
//!   fast engine.
//! - [`state`]: the state-vector buffer, with its memory limit checked before allocation.
//! - [`exec`]: running a circuit — final sampling or trajectories — to counts or a final state.
//! - [`bandwidth`]: the memory-bandwidth probe benchmarks set an engine's passes against.
//! - [`rng`]: the pinned random generator every random choice comes from.
//! - [`pauli`]: Pauli observables, exact and estimated from shots.
//! - [`device`]: the device model (coupling map, native gates, noise figures) read from TOML.
//! - [`noise`]: quantum-trajectory noise from a device, and the predicted error.
//! - [`route`](mod@route): routing a circuit onto a device's coupling map (deterministic SABRE) and
//!   translating it into the device's native gates.
//!
//! Conventions (shared with Qiskit): qubit `q` is the `q`-th declared qubit, registers
//! concatenated in declaration order; a state-vector index is `Σ bit_q · 2^q` (qubit 0 is the least
//! significant bit); a counts key lists the classical bits with the highest index leftmost.

pub mod bandwidth;
pub mod circuit;
pub mod device;
pub mod engine;
pub mod exec;
pub mod gates;
pub mod noise;
pub mod pauli;
pub mod qasm;
pub mod real;
pub mod rng;
pub mod route;
pub mod state;

pub use circuit::{Circuit, Condition, Gate, Op, Register};
pub use device::{Device, DeviceCheckError, DeviceError, RestrictError};
pub use engine::{Engine, Fast, Reference};
pub use exec::{final_state, run, ExecError, Method, RunOptions, RunResult};
pub use gates::{GateDef, Matrix, C64};
pub use noise::predicted_error;
pub use pauli::{Estimate, Observable, PauliError};
pub use real::Real;
pub use route::{route, RouteError, RouteOptions, Routed};
pub use state::{StateError, StateVec};
