//! XDV's Φ domain: classical coherent light in N spatial modes × W wavelength channels,
//! transformed linearly by meshes of Mach–Zehnder interferometers (MZIs).
//!
//! - [`mzi`]: the MZI and beam-splitter conventions (2 × 2 blocks on modes `(m, m+1)`);
//! - [`mesh`]: an ordered list of optical elements applied to a field vector one by one, and its
//!   transfer matrix;
//! - [`matrix`]: a dense square complex matrix (flat, row-major) and its JSON reader;
//! - [`clements`]: the Clements decomposition of a unitary into a rectangular MZI mesh plus output
//!   phases, and its reconstruction;
//! - [`haar`]: Haar-random unitaries from a seeded, pinned generator;
//! - [`program`]: the Φ program format (TOML and JSON, one schema), including `delay` (a
//!   wavelength-dependent phase) and `matvec` (any matrix via the SVD);
//! - [`svd`]: the SVD (through faer) and the `matvec` compiler: two Clements meshes and
//!   attenuators;
//! - [`detect`]: intensity detection (shot noise, ADC) and homodyne detection (vacuum noise,
//!   ħ = 2 by default), seeded;
//! - [`blackbird`]: the importer for Strawberry Fields' Blackbird (`.xbb`), passive linear subset;
//! - [`sim`]: running a program on a field buffer per channel, element by element (the reference)
//!   or through the compiled transfer matrix (the fast path).
//!
//! The noise and device model and transform contracts are not built yet; `docs/phi.md` says so
//! and describes the conventions.

pub mod blackbird;
pub mod clements;
pub mod detect;
pub mod error;
pub mod haar;
pub mod matrix;
pub mod mesh;
pub mod mzi;
pub mod program;
pub mod sim;
pub mod svd;

pub use blackbird::from_blackbird;
pub use clements::{decompose, Decomposition, UNITARITY_TOLERANCE};
pub use detect::{detect, Detection};
pub use error::PhiError;
pub use matrix::Matrix;
pub use mesh::{Element, Mesh};
pub use mzi::Mzi;
pub use program::{Detect, Op, Program, ProgramReport};
pub use sim::{run, run_with, Path, RunResult};
pub use svd::{svd, MatVec, Svd};

/// A complex amplitude or matrix entry.
pub type C64 = num_complex::Complex<f64>;
