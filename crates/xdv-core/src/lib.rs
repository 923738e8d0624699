//! XDV's Deterministic Orchestration Core: the VHM model, provider capacity descriptions, the
//! capability seam, the pure state machine with its Cross-Domain Scheduler, the invariant checker
//! and the Resource_Table.
//!
//! This crate does no I/O, reads no clock and draws no randomness. Given the same [`Genesis`] and
//! the same ordered [`Input`]s it produces the same [`Outcome`]s and the same state digest on
//! every machine, build profile and thread count.

pub mod caps;
mod core;
pub mod input;
pub mod invariants;
pub mod machine;
pub mod model;
pub mod placement;
pub mod table;

pub use crate::core::{Channel, Core, Genesis, Job, JobState, Limits, State, Touched, Vhm, Window};
pub use caps::{CapTable, CapView, Capability, Rights, Target, ROOT_CAP};
pub use input::{
    Command, Effect, Event, Input, JobStatus, Outcome, Principal, Rejection, StopReason,
    FAULT_DENIED,
};
pub use machine::{DescriptionError, Layout, Machine, PhiCapacity, QCapacity, Topology};
pub use model::*;
