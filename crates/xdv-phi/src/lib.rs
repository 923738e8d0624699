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
//!   or through the compiled transfer matrix (the fast path), or on a device with its noise;
//! - [`device`]: the TOML device description (loss, imbalance, DAC, crosstalk, drift, linewidth);
//! - [`noise`]: a mesh realised on a device from a seed and the time since calibration;
//! - [`contract`]: predicted fidelity and transmission, coherence windows, Φ envelopes and the
//!   admission of transform execution contracts;
//! - [`isolation`]: tenants' regions, their field buffers and the modelled leakage between them.
//!
//! `docs/phi.md` describes the conventions and lists what is not built yet.

pub mod blackbird;
pub mod clements;
pub mod contract;
pub mod detect;
pub mod device;
pub mod error;
pub mod haar;
pub mod isolation;
pub mod matrix;
pub mod mesh;
pub mod mzi;
pub mod noise;
pub mod program;
pub mod sim;
pub mod svd;

pub use blackbird::from_blackbird;
pub use clements::{decompose, Decomposition, UNITARITY_TOLERANCE};
pub use contract::{
    admit, coherence_window_ns, predict, Admission, Contract, Envelope, Prediction, Refusal,
};
pub use detect::{detect, Detection};
pub use device::{PhiDevice, EXAMPLE_TOML};
pub use error::PhiError;
pub use isolation::{FieldBuffer, IsolationError, Partition, Placement, Region};
pub use matrix::Matrix;
pub use mesh::{Element, Mesh};
pub use mzi::Mzi;
pub use noise::{realise, PhysMesh, Realisation};
pub use program::{Detect, Op, Program, ProgramReport};
pub use sim::{run, run_on_device, run_with, Path, RunResult};
pub use svd::{svd, MatVec, Svd};

/// A complex amplitude or matrix entry.
pub type C64 = num_complex::Complex<f64>;
