//! Errors of the K domain: why a sandbox could not be built or a run could not start, and the
//! kinds of trap that end one guest.

use serde::Serialize;
use std::fmt;

/// Why a sandbox could not be built or a run not set up (the host's configuration, not a guest).
#[derive(Debug, thiserror::Error)]
pub enum KError {
    /// The engine refused its configuration.
    #[error("cannot build the WebAssembly engine: {0} (check the engine limits: stack, memory ceiling, guests at once)")]
    Engine(String),
    /// A limit is out of range.
    #[error("limit {name} = {value} is out of range: {why}")]
    Limit {
        /// The limit's name.
        name: &'static str,
        /// Its value.
        value: u64,
        /// What it must be.
        why: String,
    },
    /// A channel names a guest that is not in the run.
    #[error("channel {index} connects guest {guest}, but the run has {guests} guest(s) (guests are numbered from 0)")]
    Channel {
        /// The channel's position in the list.
        index: usize,
        /// The guest named.
        guest: usize,
        /// Guests in the run.
        guests: usize,
    },
    /// More guests than the pool has slots for.
    #[error("{guests} guests in one run, but the sandbox's pool has {slots} slots (raise guests_at_once_max)")]
    TooManyGuests {
        /// Guests asked for.
        guests: usize,
        /// Slots in the pool.
        slots: u32,
    },
}

/// The kind of trap that ended a guest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TrapKind {
    /// The guest consumed its fuel (`fuel_max`).
    OutOfFuel,
    /// The guest tried to grow (or start with) memory beyond `memory_bytes_max`.
    MemoryLimit,
    /// An `unreachable` instruction (a Rust guest's panic or abort ends here).
    Unreachable,
    /// The guest's call stack exceeded the sandbox's stack limit.
    StackOverflow,
    /// The guest misused the `xdv` ABI: a pointer or length out of bounds, an over-long request,
    /// an unknown handle.
    AbiMisuse,
    /// A load or store outside linear memory.
    MemoryOutOfBounds,
    /// An integer division by zero.
    IntegerDivideByZero,
    /// An integer overflow (`i32.div_s` of MIN by −1).
    IntegerOverflow,
    /// A float-to-integer conversion out of range or of NaN.
    BadConversionToInteger,
    /// A table access out of bounds, an indirect call of a null entry or of the wrong type.
    IndirectCall,
    /// Another WebAssembly trap.
    Wasm,
    /// The guest called WASI `proc_exit` with a non-zero code.
    Exit,
    /// The bytes are not a valid WebAssembly module (binary or text).
    MalformedModule,
    /// The module imports something the sandbox does not provide, or exports no `_start`
    /// function of type `() -> ()`.
    Link,
    /// The guest waited on something no slice can deliver.
    Blocked,
    /// Another host error.
    Host,
}

impl TrapKind {
    /// The kind's name as written in JSON.
    pub fn name(self) -> &'static str {
        match self {
            TrapKind::OutOfFuel => "out_of_fuel",
            TrapKind::MemoryLimit => "memory_limit",
            TrapKind::Unreachable => "unreachable",
            TrapKind::StackOverflow => "stack_overflow",
            TrapKind::AbiMisuse => "abi_misuse",
            TrapKind::MemoryOutOfBounds => "memory_out_of_bounds",
            TrapKind::IntegerDivideByZero => "integer_divide_by_zero",
            TrapKind::IntegerOverflow => "integer_overflow",
            TrapKind::BadConversionToInteger => "bad_conversion_to_integer",
            TrapKind::IndirectCall => "indirect_call",
            TrapKind::Wasm => "wasm",
            TrapKind::Exit => "exit",
            TrapKind::MalformedModule => "malformed_module",
            TrapKind::Link => "link",
            TrapKind::Blocked => "blocked",
            TrapKind::Host => "host",
        }
    }
}

impl fmt::Display for TrapKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The trap that ended a guest: its kind and a message saying what happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TrapInfo {
    /// The kind.
    pub kind: TrapKind,
    /// What happened, and where the guest can look.
    pub message: String,
}

/// A misuse of the `xdv` ABI by a guest: returned from a host function, it traps that guest
/// alone with kind `abi_misuse`.
#[derive(Debug, thiserror::Error)]
#[error("xdv.{function}: {message}")]
pub struct AbiMisuse {
    /// The ABI function called.
    pub function: &'static str,
    /// What was wrong.
    pub message: String,
}

/// Raised by the resource limiter when a guest's memory would exceed its limit.
#[derive(Debug, thiserror::Error)]
#[error("linear memory would grow to {desired_bytes} bytes, past the limit of {limit_bytes} bytes (raise --memory-mib, or use less memory)")]
pub struct MemoryLimitExceeded {
    /// Bytes asked for.
    pub desired_bytes: u64,
    /// The limit.
    pub limit_bytes: u64,
}

/// Why [`crate::Session::complete`] refused a completion; nothing changed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CompleteError {
    /// No such guest in the session.
    #[error("guest {guest} is not in the session, which has {guests} guest(s) (numbered from 0)")]
    UnknownGuest {
        /// The guest named.
        guest: usize,
        /// Guests in the session.
        guests: usize,
    },
    /// The guest never submitted that job.
    #[error("guest {guest} has no job {job}: it submitted {submitted} job(s), numbered from 0")]
    UnknownJob {
        /// The guest.
        guest: usize,
        /// The job named.
        job: u32,
        /// Jobs the guest has submitted.
        submitted: u32,
    },
    /// The job already has its result (it was completed before, or it ran at submission because
    /// the guest is in [`crate::JobMode::Inline`]).
    #[error("job {job} of guest {guest} is already complete (a job is completed once; an inline guest's jobs complete at submission)")]
    AlreadyCompleted {
        /// The guest.
        guest: usize,
        /// The job.
        job: u32,
    },
}
