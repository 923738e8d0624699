//! The limits a K guest runs under, every one with its unit in its name.
//!
//! [`EngineLimits`] are fixed when a [`crate::Sandbox`] is built (they shape the compiled code
//! and the pooling allocator); [`Limits`] are per run of a guest (per VHM).

use serde::Serialize;

/// Limits fixed for a sandbox's lifetime: they shape compiled code and the instance pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct EngineLimits {
    /// The most native stack bytes a guest's WebAssembly frames may take before it traps
    /// `stack_overflow`.
    pub stack_bytes_max: usize,
    /// The largest linear memory any guest may have, in bytes (the pooling allocator's slot size);
    /// a run's own [`Limits::memory_bytes_max`] must not exceed it.
    pub memory_bytes_ceiling: usize,
    /// Guests that may be instantiated at the same time (slots in the pool).
    pub guests_at_once_max: u32,
    /// Fuel metering on (always, except to measure what metering costs: without it guests are
    /// neither limited nor preempted, and report 0 fuel in 1 slice).
    pub fuel_metering: bool,
}

impl Default for EngineLimits {
    fn default() -> Self {
        EngineLimits {
            stack_bytes_max: 512 << 10,
            memory_bytes_ceiling: 4 << 30,
            guests_at_once_max: 64,
            fuel_metering: true,
        }
    }
}

/// Limits of one guest run (one VHM's vCPU).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Limits {
    /// Fuel units the guest may consume in all (about one per WebAssembly instruction); past it
    /// the guest traps `out_of_fuel`.
    pub fuel_max: u64,
    /// Fuel units of one slice: the guest is preempted after this many and resumed later.
    pub fuel_per_slice: u64,
    /// Linear memory bytes; growing past it traps `memory_limit`.
    pub memory_bytes_max: u64,
    /// Bytes of stdout kept; a write past it fails (WASI error), the bytes before it are kept.
    pub stdout_bytes_max: u64,
    /// Bytes of stderr kept (as for stdout).
    pub stderr_bytes_max: u64,
    /// Bytes of `xdv.log` text kept; later log lines are counted as dropped.
    pub log_bytes_max: u64,
    /// Bytes of one job request (OpenQASM text with its JSON envelope, or a Φ program); a longer
    /// one traps `abi_misuse`.
    pub request_bytes_max: u64,
    /// Bytes of one job result (JSON); a longer result is replaced by an error result.
    pub result_bytes_max: u64,
    /// Jobs submitted and not yet released; a submit past it returns `E_BUSY`.
    pub jobs_in_flight_max: u32,
    /// Jobs one guest may submit in all; a submit past it returns `E_BUSY`.
    pub jobs_total_max: u64,
    /// Qubits of one Q job.
    pub qubits_max: u32,
    /// Shots of one Q job.
    pub shots_max: u64,
    /// Bytes of one IPC message.
    pub message_bytes_max: u64,
    /// Messages queued on one channel direction; a send past it returns `E_BUSY`.
    pub channel_messages_max: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel_max: 10_000_000_000,
            fuel_per_slice: 1_000_000,
            memory_bytes_max: 256 << 20,
            stdout_bytes_max: 1 << 20,
            stderr_bytes_max: 1 << 20,
            log_bytes_max: 1 << 20,
            request_bytes_max: 1 << 20,
            result_bytes_max: 4 << 20,
            jobs_in_flight_max: 64,
            jobs_total_max: 1_000_000,
            qubits_max: 24,
            shots_max: 1_000_000,
            message_bytes_max: 64 << 10,
            channel_messages_max: 1024,
        }
    }
}
