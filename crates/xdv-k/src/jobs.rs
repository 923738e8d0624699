//! Q and Φ jobs submitted through the ABI: each runs on the embedded simulator (`xdv-q`,
//! `xdv-phi`) and becomes a JSON result document.
//!
//! A job whose request is the guest's recoverable mistake (malformed JSON, an OpenQASM parse
//! error, an unknown observable, too many qubits or shots, a bad Φ program) completes with an
//! error result `{"ok": false, "domain": …, "error": {"kind": …, "message": …}}`; it never traps.
//!
//! [`run_q`] and [`run_phi`] are what a guest in [`crate::JobMode::Inline`] gets at submission.
//! A driver that runs a [`crate::JobMode::External`] guest's jobs itself splits them: [`parse_q`]
//! (or [`q_request_shots`], the cost to declare) and [`run_parsed_q`], with an optional device
//! (noise model) onto which it has routed the circuit; [`phi_request_check`] and
//! [`run_parsed_phi`]. A request that does not parse gives, at once, the error result the job
//! completes with.

use crate::limits::Limits;
use serde_json::{json, Map, Value};
use xdv_q::device::Device;
use xdv_q::engine::Fast;
use xdv_q::exec::{self, RunOptions};
use xdv_q::pauli::Observable;
use xdv_q::qasm;

/// The domain a job ran in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Domain {
    /// The Q domain (`xdv-q`).
    Q,
    /// The Φ domain (`xdv-phi`).
    Phi,
}

impl Domain {
    /// The name written in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Domain::Q => "q",
            Domain::Phi => "phi",
        }
    }
}

/// A finished job: whether it succeeded and its result document (JSON bytes).
#[derive(Clone, Debug, PartialEq)]
pub struct JobOutcome {
    /// Whether the result is a success (`"ok": true`).
    pub ok: bool,
    /// The error message of a failed job.
    pub error: Option<String>,
    /// The result document, serialised.
    pub result: Vec<u8>,
}

/// The error result document `{"ok": false, "domain", "error": {"kind", "message"}}` (kinds in
/// `docs/abi.md`).
pub fn failure(domain: Domain, kind: &str, message: String) -> Value {
    json!({"ok": false, "domain": domain.name(), "error": {"kind": kind, "message": message}})
}

/// A job outcome from a result document a driver produced itself (a provider's run of a
/// parsed request, or a refusal): serialised, and replaced by a `result_too_large` error
/// result when longer than `limits.result_bytes_max`.
pub fn outcome(domain: Domain, doc: Value, limits: &Limits) -> JobOutcome {
    finish(domain, doc, limits)
}

/// The error result `{"ok": false, "domain", "error": {"kind", "message"}}` of a job the driver
/// could not run (refused by the orchestration core or the boundary manager, or its provider
/// failed).
pub fn failed(domain: Domain, kind: &str, message: String, limits: &Limits) -> JobOutcome {
    finish(domain, failure(domain, kind, message), limits)
}

/// Serialises `doc`, replacing it with an error result when longer than
/// `limits.result_bytes_max`.
fn finish(domain: Domain, doc: Value, limits: &Limits) -> JobOutcome {
    let ok = doc.get("ok").and_then(Value::as_bool).unwrap_or(false);
    let error = doc
        .pointer("/error/message")
        .and_then(Value::as_str)
        .map(str::to_string);
    let bytes = doc.to_string().into_bytes();
    cap_result(
        domain,
        JobOutcome {
            ok,
            error,
            result: bytes,
        },
        limits,
    )
}

/// `outcome`, or an error result in its place when its result is longer than
/// `limits.result_bytes_max`.
pub(crate) fn cap_result(domain: Domain, outcome: JobOutcome, limits: &Limits) -> JobOutcome {
    if outcome.result.len() as u64 > limits.result_bytes_max {
        let message = format!(
            "the result takes {} bytes, past the limit of {} result bytes (ask for fewer shots or qubits, or an expectation value instead of counts)",
            outcome.result.len(),
            limits.result_bytes_max
        );
        let doc = failure(domain, "result_too_large", message.clone());
        return JobOutcome {
            ok: false,
            error: Some(message),
            result: doc.to_string().into_bytes(),
        };
    }
    outcome
}

/// The seed of job `job` of a guest seeded `seed` (SplitMix64 of the pair): distinct per job,
/// the same on every run.
pub fn job_seed(seed: u64, job: u32) -> u64 {
    let mut z = seed ^ (u64::from(job).wrapping_add(1)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A parsed Q job request: what [`run_parsed_q`] executes. A driver that routes jobs itself
/// parses with [`parse_q`], may replace `circuit` by the circuit routed onto its device (e.g.
/// with `xdv_q::route::route`), and runs it with [`run_parsed_q`].
#[derive(Clone, Debug, PartialEq)]
pub struct QRequest {
    /// The circuit (OpenQASM parsed and lowered, parameters bound).
    pub circuit: xdv_q::circuit::Circuit,
    /// Shots: sampled shots, or with an observable shots per qubit-wise commuting group; `None`
    /// only with an observable (an exact expectation value).
    pub shots: Option<u64>,
    /// The seed of sampling (the request's `seed`, else the job's default seed).
    pub seed: u64,
    /// The observable of an expectation job.
    pub observable: Option<Observable>,
}

impl QRequest {
    /// The shots the job samples: `shots` for a sampling job, `shots` times the number of
    /// qubit-wise commuting groups for an estimated expectation (at least one group), 1 for an
    /// exact expectation value.
    pub fn shots_sampled(&self) -> u64 {
        match (&self.observable, self.shots) {
            (_, None) => 1,
            (None, Some(s)) => s,
            (Some(obs), Some(s)) => s.saturating_mul(obs.groups().len().max(1) as u64),
        }
    }
}

/// Runs a Q job request (JSON: `qasm`, and `shots`, `params`, `observable`, `seed` as in
/// `docs/abi.md`) and returns its result: [`parse_q`], then [`run_parsed_q`] with no device.
pub fn run_q(request: &[u8], default_seed: u64, limits: &Limits) -> JobOutcome {
    match parse_q(request, default_seed, limits) {
        Ok(req) => run_parsed_q(&req, None, limits),
        Err(outcome) => outcome,
    }
}

/// Parses and checks a Q job request without running it. A request that is the guest's mistake
/// (not JSON, an unknown field, bad OpenQASM, a bad observable, too many qubits or shots, a
/// sampling job without shots) gives `Err` with the very error result [`run_q`] gives for it.
pub fn parse_q(request: &[u8], default_seed: u64, limits: &Limits) -> Result<QRequest, JobOutcome> {
    parse_q_doc(request, default_seed, limits).map_err(|doc| finish(Domain::Q, doc, limits))
}

/// The shots a Q job request will sample ([`QRequest::shots_sampled`]: 1 for an exact
/// expectation value), so that a driver can declare the job's cost without running it; a request
/// that does not parse gives the error result [`run_q`] would give, with which the driver can
/// complete the job at once.
pub fn q_request_shots(request: &[u8], limits: &Limits) -> Result<u64, JobOutcome> {
    // The seed plays no part in parsing or in the error results.
    parse_q(request, 0, limits).map(|r| r.shots_sampled())
}

fn parse_q_doc(request: &[u8], default_seed: u64, limits: &Limits) -> Result<QRequest, Value> {
    let fail = |kind: &str, message: String| failure(Domain::Q, kind, message);
    let req: Map<String, Value> = match serde_json::from_slice(request) {
        Ok(Value::Object(m)) => m,
        Ok(_) => {
            return Err(fail(
                "request",
                "the request must be a JSON object with a \"qasm\" string".into(),
            ))
        }
        Err(e) => {
            return Err(fail(
                "request",
                format!(
                    "the request is not valid JSON: {e} (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            ))
        }
    };
    for key in req.keys() {
        if !matches!(
            key.as_str(),
            "qasm" | "shots" | "params" | "observable" | "seed"
        ) {
            return Err(fail(
                "request",
                format!(
                    "unknown field {key:?} (the fields are qasm, shots, params, observable, seed)"
                ),
            ));
        }
    }
    let Some(text) = req.get("qasm").and_then(Value::as_str) else {
        return Err(fail(
            "request",
            "the request has no \"qasm\" string (the OpenQASM 2 or 3 source)".into(),
        ));
    };
    let mut params: Vec<(String, f64)> = Vec::new();
    match req.get("params") {
        None | Some(Value::Null) => {}
        Some(Value::Object(p)) => {
            for (name, v) in p {
                match v.as_f64() {
                    Some(x) if x.is_finite() => params.push((name.clone(), x)),
                    _ => {
                        return Err(fail(
                            "request",
                            format!("params.{name} must be a finite number"),
                        ))
                    }
                }
            }
        }
        Some(_) => {
            return Err(fail(
                "request",
                "\"params\" must be an object of name → number".into(),
            ))
        }
    }
    let shots = match req.get("shots") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(s) if s >= 1 && s <= limits.shots_max => Some(s),
            _ => {
                return Err(fail(
                    "limit",
                    format!(
                        "\"shots\" must be an integer from 1 to {} (shots_max)",
                        limits.shots_max
                    ),
                ))
            }
        },
    };
    let seed = match req.get("seed") {
        None | Some(Value::Null) => default_seed,
        Some(v) => match v.as_u64() {
            Some(s) => s,
            None => {
                return Err(fail(
                    "request",
                    "\"seed\" must be a non-negative integer".into(),
                ))
            }
        },
    };
    let observable = match req.get("observable") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match Observable::parse(s) {
            Ok(o) => Some(o),
            Err(e) => return Err(fail("observable", format!("observable {s:?}: {e}"))),
        },
        Some(_) => {
            return Err(fail(
                "request",
                "\"observable\" must be a string such as \"0.5*ZZ + XI\"".into(),
            ))
        }
    };
    let opts = qasm::Options {
        params: &params,
        include: None,
    };
    let circuit = match qasm::parse(text, "job.qasm", &opts) {
        Ok(c) => c,
        Err(e) => return Err(fail("qasm", e.to_string())),
    };
    if circuit.num_qubits > limits.qubits_max {
        return Err(fail(
            "limit",
            format!(
                "the circuit has {} qubits, past the limit of {} (qubits_max)",
                circuit.num_qubits, limits.qubits_max
            ),
        ));
    }
    match &observable {
        Some(obs) => {
            if let Err(e) = obs.check_qubits(circuit.num_qubits) {
                return Err(fail("observable", e.to_string()));
            }
        }
        None if shots.is_none() => {
            return Err(fail(
                "request",
                "a sampling job needs \"shots\" (or give an \"observable\" for an exact expectation value)".into(),
            ));
        }
        None => {}
    }
    Ok(QRequest {
        circuit,
        shots,
        seed,
        observable,
    })
}

/// Runs a parsed Q job ([`parse_q`]) and returns its result. With `device`, the circuit must
/// already suit it (the driver routes it onto the device first; [`xdv_q::device::Device::check`]
/// refuses it otherwise, as an `exec` error result) and sampling follows the device's noise model.
/// An expectation value on a device with noise is an `exec` error result: the estimator samples
/// the ideal state only (`Observable::estimate` takes no device), and an exact value ignores noise
/// by definition, so neither is computed rather than silently returning the ideal value. The
/// observable must have one letter per qubit of `circuit` (route with
/// `RouteOptions::restore_layout` and keep the qubit count). With no device the result is the
/// one [`run_q`] gives.
pub fn run_parsed_q(req: &QRequest, device: Option<&Device>, limits: &Limits) -> JobOutcome {
    finish(Domain::Q, q_doc(req, device, limits), limits)
}

fn q_doc(req: &QRequest, device: Option<&Device>, limits: &Limits) -> Value {
    let fail = |kind: &str, message: String| failure(Domain::Q, kind, message);
    let circuit = &req.circuit;
    let (shots, seed) = (req.shots, req.seed);
    // A state of `qubits_max` qubits at complex128: the memory the job may take.
    let memory_bytes_max = 16u64 << limits.qubits_max.min(40);
    let engine = Fast::new(1);
    match &req.observable {
        Some(obs) => {
            if let Err(e) = obs.check_qubits(circuit.num_qubits) {
                return fail("observable", e.to_string());
            }
            if let Some(d) = device {
                if !d.is_noiseless() {
                    let message = match shots {
                        None => format!(
                            "an exact expectation value ignores noise, and device {:?} has a noise model: give \"shots\" to sample, or ask for counts",
                            d.name()
                        ),
                        Some(_) => format!(
                            "expectation values are not estimated under noise yet (device {:?} has a noise model): ask for counts with \"shots\" and no \"observable\", measuring each commuting group in its basis",
                            d.name()
                        ),
                    };
                    return fail("exec", message);
                }
                if let Err(e) = d.check(circuit) {
                    return fail("exec", e.to_string());
                }
            }
            let (value, std_error) = match shots {
                None => {
                    let state = match exec::final_state::<f64>(circuit, &engine, memory_bytes_max) {
                        Ok((s, _)) => s,
                        Err(e) => return fail("exec", e.to_string()),
                    };
                    match obs.expectation(&state) {
                        Ok(v) => (v, 0.0),
                        Err(e) => return fail("observable", e.to_string()),
                    }
                }
                Some(s) => match obs.estimate::<f64>(circuit, &engine, s, seed, memory_bytes_max) {
                    Ok(e) => (e.value, e.std_error),
                    Err(e) => return fail("exec", e.to_string()),
                },
            };
            let mut doc = json!({
                "ok": true, "domain": "q", "kind": "expectation", "qubits": circuit.num_qubits,
                "expectation": value, "standard_error": std_error,
            });
            if let Some(s) = shots {
                doc["shots"] = json!(s);
                doc["seed"] = json!(seed);
            }
            doc
        }
        None => {
            let Some(shots) = shots else {
                return fail(
                    "request",
                    "a sampling job needs \"shots\" (or give an \"observable\" for an exact expectation value)".into(),
                );
            };
            let ro = RunOptions {
                shots,
                seed,
                memory_bytes_max,
                shots_max: limits.shots_max,
                device: device.cloned(),
                ..RunOptions::default()
            };
            match exec::run::<f64>(circuit, &engine, &ro) {
                Ok(r) => json!({
                    "ok": true, "domain": "q", "kind": "counts", "qubits": circuit.num_qubits,
                    "clbits": circuit.num_clbits, "shots": shots, "seed": seed, "counts": r.counts,
                }),
                Err(e) => fail("exec", e.to_string()),
            }
        }
    }
}

/// Runs a Φ job: `program` is a Φ program in TOML, or in JSON when its first non-blank character
/// is `{` (the formats of `docs/phi.md`): [`phi_request_check`], then [`run_parsed_phi`].
pub fn run_phi(program: &[u8], seed: u64, limits: &Limits) -> JobOutcome {
    match phi_request_check(program, limits) {
        Ok(p) => run_parsed_phi(&p, seed, limits),
        Err(outcome) => outcome,
    }
}

/// Parses and checks a Φ job's program without running it: the program (its modes, channels
/// and operations tell a driver what the job needs), or the error result [`run_phi`] gives for
/// it (not UTF-8, a bad program), with which the driver can complete the job at once.
pub fn phi_request_check(program: &[u8], limits: &Limits) -> Result<xdv_phi::Program, JobOutcome> {
    let parsed = match std::str::from_utf8(program) {
        Err(e) => Err(failure(
            Domain::Phi,
            "request",
            format!("the program is not UTF-8 text: {e}"),
        )),
        Ok(text) => {
            let parsed = if text.trim_start().starts_with('{') {
                xdv_phi::Program::from_json(text, "job.json")
            } else {
                xdv_phi::Program::from_toml(text, "job.toml")
            };
            parsed.map_err(|e| failure(Domain::Phi, "program", e.to_string()))
        }
    };
    parsed.map_err(|doc| finish(Domain::Phi, doc, limits))
}

/// Runs a checked Φ program ([`phi_request_check`]) with `seed` on the embedded mesh simulator
/// and returns its result, as [`run_phi`] does.
pub fn run_parsed_phi(program: &xdv_phi::Program, seed: u64, limits: &Limits) -> JobOutcome {
    let doc = match xdv_phi::sim::run(program, seed) {
        Ok(r) => json!({"ok": true, "domain": "phi", "result": r.to_json()}),
        Err(e) => failure(Domain::Phi, "exec", e.to_string()),
    };
    finish(Domain::Phi, doc, limits)
}
