//! XDV's Domain Hypervisor (XDV-014): runs the Virtual Hybrid Machines a manifest declares on the
//! providers behind the Domain Abstraction Layer, driven by the deterministic orchestration core,
//! with a durable trace that a crashed run resumes from.
//!
//! - [`files`]: reading the files a manifest names (the run loop reads none itself);
//! - [`gate`]: the Secure Domain Boundary Manager at the edge — capability tokens checked at
//!   every boundary a VHM crosses;
//! - [`manifest`]: the VHM manifest (TOML), parsed and validated with `file:line:column` errors;
//! - [`provider`]: the Domain Abstraction Layer — the provider trait, typed capability queries and
//!   the embedded Q and Φ providers;
//! - [`run`]: the run loop — manifest to core commands, ticks, dispatch to providers, completions
//!   in logical order, fault containment, resume from a stored trace;
//! - [`store`]: the durable state directory (redb).

pub mod files;
pub mod gate;
pub mod manifest;
pub mod provider;
pub mod run;
pub mod store;

pub use manifest::{Manifest, ManifestError};
pub use run::{run, Options, Resume, RunError, RunReport, Sink, VhmStatus, Warm};
