//! XDV's K domain: the deterministic WebAssembly sandbox in which tenants' classical code runs,
//! metered and memory-isolated, and drives the Q and Φ domains through one small host ABI.
//!
//! - [`sandbox`]: the wasmtime engine configured for determinism, guests compiled from `.wasm`
//!   or `.wat`, vCPUs run in fuel slices and scheduled round-robin.
//! - [`abi`]: the host side of ABI `xdv` v1 (`docs/abi.md`): Q and Φ job submission, completions,
//!   results, IPC channels, log, yield.
//! - [`jobs`]: Q jobs on `xdv-q`, Φ jobs on `xdv-phi`, and their JSON results; parsing and running
//!   split apart for a driver that schedules them itself.
//!
//! A guest's jobs run at submission ([`JobMode::Inline`]), or go to the session's driver
//! ([`JobMode::External`]: [`Session::take_submitted`], [`Session::complete`]), a guest awaiting a
//! result that has not arrived blocking with [`Slice::Blocked`] and its unused fuel.
//! - [`limits`]: every limit, with its unit.
//! - [`error`]: configuration errors and trap kinds.
//!
//! The same guest, seed and limits give the same fuel consumption, outputs and job results on
//! every run, whatever the slice size (and, in External mode, whenever the driver delivers the
//! results).

pub mod abi;
pub mod error;
pub mod jobs;
pub mod limits;
pub mod sandbox;

pub use abi::{SendCheck, E_DENIED};
pub use error::{AbiMisuse, CompleteError, KError, TrapInfo, TrapKind};
pub use jobs::{Domain, JobOutcome};
pub use limits::{EngineLimits, Limits};
pub use sandbox::{
    Channel, DeniedSend, Exit, Guest, GuestReport, JobMode, RunConfig, Sandbox, SentMessage,
    Session, Slice, Submitted,
};
