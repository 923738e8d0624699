//! Q and Φ jobs submitted through the ABI: each is run on the embedded simulator (`xdv-q`,
//! `xdv-phi`) and becomes a JSON result document.
//!
//! A job whose request is the guest's recoverable mistake (malformed JSON, an OpenQASM parse
//! error, an unknown observable, too many qubits or shots, a bad Φ program) completes with an
//! error result `{"ok": false, "domain": …, "error": {"kind": …, "message": …}}`; it never traps.

use crate::limits::Limits;
use serde_json::{json, Map, Value};
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

fn failure(domain: Domain, kind: &str, message: String) -> Value {
    json!({"ok": false, "domain": domain.name(), "error": {"kind": kind, "message": message}})
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
    if bytes.len() as u64 > limits.result_bytes_max {
        let message = format!(
            "the result takes {} bytes, past the limit of {} result bytes (ask for fewer shots or qubits, or an expectation value instead of counts)",
            bytes.len(),
            limits.result_bytes_max
        );
        let doc = failure(domain, "result_too_large", message.clone());
        return JobOutcome {
            ok: false,
            error: Some(message),
            result: doc.to_string().into_bytes(),
        };
    }
    JobOutcome {
        ok,
        error,
        result: bytes,
    }
}

/// The seed of job `job` of a guest seeded `seed` (SplitMix64 of the pair): distinct per job,
/// the same on every run.
pub fn job_seed(seed: u64, job: u32) -> u64 {
    let mut z = seed ^ (u64::from(job).wrapping_add(1)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Runs a Q job request (JSON: `qasm`, and `shots`, `params`, `observable`, `seed` as in
/// `docs/abi.md`) and returns its result.
pub fn run_q(request: &[u8], default_seed: u64, limits: &Limits) -> JobOutcome {
    finish(Domain::Q, q_doc(request, default_seed, limits), limits)
}

fn q_doc(request: &[u8], default_seed: u64, limits: &Limits) -> Value {
    let fail = |kind: &str, message: String| failure(Domain::Q, kind, message);
    let req: Map<String, Value> = match serde_json::from_slice(request) {
        Ok(Value::Object(m)) => m,
        Ok(_) => {
            return fail(
                "request",
                "the request must be a JSON object with a \"qasm\" string".into(),
            )
        }
        Err(e) => {
            return fail(
                "request",
                format!(
                    "the request is not valid JSON: {e} (line {}, column {})",
                    e.line(),
                    e.column()
                ),
            )
        }
    };
    for key in req.keys() {
        if !matches!(
            key.as_str(),
            "qasm" | "shots" | "params" | "observable" | "seed"
        ) {
            return fail(
                "request",
                format!(
                    "unknown field {key:?} (the fields are qasm, shots, params, observable, seed)"
                ),
            );
        }
    }
    let Some(text) = req.get("qasm").and_then(Value::as_str) else {
        return fail(
            "request",
            "the request has no \"qasm\" string (the OpenQASM 2 or 3 source)".into(),
        );
    };
    let mut params: Vec<(String, f64)> = Vec::new();
    match req.get("params") {
        None | Some(Value::Null) => {}
        Some(Value::Object(p)) => {
            for (name, v) in p {
                match v.as_f64() {
                    Some(x) if x.is_finite() => params.push((name.clone(), x)),
                    _ => return fail("request", format!("params.{name} must be a finite number")),
                }
            }
        }
        Some(_) => {
            return fail(
                "request",
                "\"params\" must be an object of name → number".into(),
            )
        }
    }
    let shots = match req.get("shots") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(s) if s >= 1 && s <= limits.shots_max => Some(s),
            _ => {
                return fail(
                    "limit",
                    format!(
                        "\"shots\" must be an integer from 1 to {} (shots_max)",
                        limits.shots_max
                    ),
                )
            }
        },
    };
    let seed = match req.get("seed") {
        None | Some(Value::Null) => default_seed,
        Some(v) => match v.as_u64() {
            Some(s) => s,
            None => return fail("request", "\"seed\" must be a non-negative integer".into()),
        },
    };
    let observable = match req.get("observable") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => match Observable::parse(s) {
            Ok(o) => Some(o),
            Err(e) => return fail("observable", format!("observable {s:?}: {e}")),
        },
        Some(_) => {
            return fail(
                "request",
                "\"observable\" must be a string such as \"0.5*ZZ + XI\"".into(),
            )
        }
    };
    let opts = qasm::Options {
        params: &params,
        include: None,
    };
    let circuit = match qasm::parse(text, "job.qasm", &opts) {
        Ok(c) => c,
        Err(e) => return fail("qasm", e.to_string()),
    };
    if circuit.num_qubits > limits.qubits_max {
        return fail(
            "limit",
            format!(
                "the circuit has {} qubits, past the limit of {} (qubits_max)",
                circuit.num_qubits, limits.qubits_max
            ),
        );
    }
    // A state of `qubits_max` qubits at complex128: the memory the job may take.
    let memory_bytes_max = 16u64 << limits.qubits_max.min(40);
    let engine = Fast::new(1);
    match observable {
        Some(obs) => {
            if let Err(e) = obs.check_qubits(circuit.num_qubits) {
                return fail("observable", e.to_string());
            }
            let (value, std_error) = match shots {
                None => {
                    let state = match exec::final_state::<f64>(&circuit, &engine, memory_bytes_max)
                    {
                        Ok((s, _)) => s,
                        Err(e) => return fail("exec", e.to_string()),
                    };
                    match obs.expectation(&state) {
                        Ok(v) => (v, 0.0),
                        Err(e) => return fail("observable", e.to_string()),
                    }
                }
                Some(s) => {
                    match obs.estimate::<f64>(&circuit, &engine, s, seed, memory_bytes_max) {
                        Ok(e) => (e.value, e.std_error),
                        Err(e) => return fail("exec", e.to_string()),
                    }
                }
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
                ..RunOptions::default()
            };
            match exec::run::<f64>(&circuit, &engine, &ro) {
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
/// is `{` (the formats of `docs/phi.md`).
pub fn run_phi(program: &[u8], seed: u64, limits: &Limits) -> JobOutcome {
    let doc = match std::str::from_utf8(program) {
        Err(e) => failure(
            Domain::Phi,
            "request",
            format!("the program is not UTF-8 text: {e}"),
        ),
        Ok(text) => {
            let parsed = if text.trim_start().starts_with('{') {
                xdv_phi::Program::from_json(text, "job.json")
            } else {
                xdv_phi::Program::from_toml(text, "job.toml")
            };
            match parsed {
                Err(e) => failure(Domain::Phi, "program", e.to_string()),
                Ok(p) => match xdv_phi::sim::run(&p, seed) {
                    Ok(r) => json!({"ok": true, "domain": "phi", "result": r.to_json()}),
                    Err(e) => failure(Domain::Phi, "exec", e.to_string()),
                },
            }
        }
    };
    finish(Domain::Phi, doc, limits)
}
