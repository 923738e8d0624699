//! XDV guest SDK: safe wrappers over the K domain's host ABI `xdv` v1 (`docs/abi.md`), for
//! guests built for `wasm32-wasip1`.
//!
//! - Q jobs: [`q_submit`] (a JSON request), with the shortcuts [`q_expectation`] (an exact
//!   Pauli-sum expectation value) and [`q_counts`] (measurement counts from shots).
//! - Φ jobs: [`phi_submit`] (a program in TOML or JSON), [`phi_run`].
//! - Completions: [`await_next`] delivers finished jobs in job-id order; [`Job::take_result`]
//!   reads a result and releases the job.
//! - IPC: [`Channel`] — send, try to receive, receive (yielding while empty).
//! - [`log`], [`yield_now`].
//! - [`optim`]: the Nelder–Mead minimiser the example guests run.
//!
//! Misusing the ABI traps the guest; these wrappers never do. A job request that is the guest's
//! mistake comes back as [`JobError`].

pub mod optim;
mod sys;

use serde_json::Value;
use std::fmt;

/// The ABI version the host implements.
pub fn abi_version() -> i32 {
    sys::abi_version()
}

/// A submitted job: its handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Job(pub i32);

/// Why a job gave no value.
#[derive(Clone, Debug, PartialEq)]
pub enum JobError {
    /// The host refused the submission for now: too many jobs in flight or submitted.
    Busy,
    /// The job completed with an error result: its kind and message.
    Failed {
        /// The error's kind (`request`, `qasm`, `limit`, `observable`, `exec`, `program`, …).
        kind: String,
        /// What was wrong.
        message: String,
    },
    /// The result was not the JSON the ABI specifies.
    BadResult(String),
}

impl fmt::Display for JobError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JobError::Busy => write!(f, "the host is busy: too many jobs in flight"),
            JobError::Failed { kind, message } => write!(f, "job failed ({kind}): {message}"),
            JobError::BadResult(m) => write!(f, "unexpected job result: {m}"),
        }
    }
}

impl std::error::Error for JobError {}

fn submitted(handle: i32) -> Result<Job, JobError> {
    if handle >= 0 {
        Ok(Job(handle))
    } else {
        Err(JobError::Busy)
    }
}

/// Submits a Q job: `request` is the JSON request of `docs/abi.md` (`qasm`, `shots`, `params`,
/// `observable`, `seed`).
pub fn q_submit(request: &Value) -> Result<Job, JobError> {
    submitted(sys::q_submit(request.to_string().as_bytes()))
}

/// Submits a Φ job: a program in TOML, or JSON.
pub fn phi_submit(program: &str) -> Result<Job, JobError> {
    submitted(sys::phi_submit(program.as_bytes()))
}

/// The next completed job, in job-id order; `None` when no job is waiting to be delivered.
pub fn await_next() -> Option<Job> {
    let h = sys::await_next();
    (h >= 0).then_some(Job(h))
}

impl Job {
    /// Reads this delivered job's result and releases the job.
    pub fn take_result(self) -> Vec<u8> {
        let len = sys::result_len(self.0).max(0) as usize;
        let mut buf = vec![0u8; len];
        let n = sys::result_read(self.0, &mut buf).max(0) as usize;
        buf.truncate(n);
        sys::job_release(self.0);
        buf
    }

    /// Waits for this job (delivering and keeping the results of any earlier ones is the
    /// caller's business: this returns when this job's completion arrives, releasing earlier
    /// jobs delivered meanwhile), reads its result as JSON and releases it.
    pub fn wait_json(self) -> Result<Value, JobError> {
        loop {
            match await_next() {
                Some(j) if j == self => break,
                Some(other) => drop(other.take_result()),
                None => {
                    return Err(JobError::BadResult(format!(
                        "job {} is not in flight",
                        self.0
                    )))
                }
            }
        }
        let bytes = self.take_result();
        let doc: Value =
            serde_json::from_slice(&bytes).map_err(|e| JobError::BadResult(e.to_string()))?;
        if doc.get("ok").and_then(Value::as_bool) == Some(true) {
            Ok(doc)
        } else {
            Err(JobError::Failed {
                kind: doc
                    .pointer("/error/kind")
                    .and_then(Value::as_str)
                    .unwrap_or("unknown")
                    .to_string(),
                message: doc
                    .pointer("/error/message")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string(),
            })
        }
    }
}

fn params_json(params: &[(&str, f64)]) -> Value {
    Value::Object(
        params
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(*v)))
            .collect(),
    )
}

/// The exact expectation value of the Pauli sum `observable` (e.g. `"0.5*ZZ + XI"`, leftmost
/// letter on the highest qubit) in the final state of `qasm` with `params` bound.
pub fn q_expectation(
    qasm: &str,
    observable: &str,
    params: &[(&str, f64)],
) -> Result<f64, JobError> {
    let req =
        serde_json::json!({"qasm": qasm, "observable": observable, "params": params_json(params)});
    let doc = q_submit(&req)?.wait_json()?;
    doc.get("expectation")
        .and_then(Value::as_f64)
        .ok_or_else(|| JobError::BadResult("no expectation in the result".into()))
}

/// Measurement counts of `qasm` over `shots` shots with `params` bound: (bit string, count)
/// pairs, the highest classical bit leftmost.
pub fn q_counts(
    qasm: &str,
    shots: u64,
    params: &[(&str, f64)],
) -> Result<Vec<(String, u64)>, JobError> {
    let req = serde_json::json!({"qasm": qasm, "shots": shots, "params": params_json(params)});
    let doc = q_submit(&req)?.wait_json()?;
    let counts = doc
        .get("counts")
        .and_then(Value::as_object)
        .ok_or_else(|| JobError::BadResult("no counts in the result".into()))?;
    Ok(counts
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
        .collect())
}

/// Runs a Φ program and returns its result document (`RunResult` JSON under `"result"`).
pub fn phi_run(program: &str) -> Result<Value, JobError> {
    phi_submit(program)?.wait_json()
}

/// Log levels of [`log`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// Trace.
    Trace = 0,
    /// Debug.
    Debug = 1,
    /// Info.
    Info = 2,
    /// Warning.
    Warn = 3,
    /// Error.
    Error = 4,
}

/// Writes a line to the VHM's log.
pub fn log(level: Level, text: &str) {
    sys::log(level as i32, text.as_bytes());
}

/// Ends the current slice: the scheduler runs other guests before this one resumes.
pub fn yield_now() {
    sys::yield_now();
}

/// One end of an IPC channel, by handle (handles are given by the host's run configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channel(pub i32);

impl Channel {
    /// Sends a message; `Err(JobError::Busy)` when the peer's queue is full.
    pub fn send(self, message: &[u8]) -> Result<(), JobError> {
        match sys::chan_send(self.0, message) {
            0 => Ok(()),
            _ => Err(JobError::Busy),
        }
    }

    /// The next message, if one is queued.
    pub fn try_recv(self) -> Option<Vec<u8>> {
        let len = sys::chan_peek_len(self.0);
        if len < 0 {
            return None;
        }
        let mut buf = vec![0u8; len as usize];
        let n = sys::chan_recv(self.0, &mut buf);
        if n < 0 {
            return None;
        }
        buf.truncate(n as usize);
        Some(buf)
    }

    /// The next message, yielding while none is queued.
    pub fn recv(self) -> Vec<u8> {
        loop {
            if let Some(m) = self.try_recv() {
                return m;
            }
            yield_now();
        }
    }
}
