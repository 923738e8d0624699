//! XDV's Domain Hypervisor (XDV-014): runs the Virtual Hybrid Machines a manifest declares on the
//! providers behind the Domain Abstraction Layer, driven by the deterministic orchestration core,
//! with a durable trace that a crashed run resumes from.

pub mod manifest;

pub use manifest::{Manifest, ManifestError};
pub mod store;
