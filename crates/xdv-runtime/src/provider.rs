//! The Domain Abstraction Layer (DAL): one trait every provider implements, typed capability
//! queries, and the embedded Q and Φ providers (XDV's own simulators).
//!
//! A provider never decides anything: the deterministic core places VHMs, reserves windows and
//! dispatches jobs; the runtime hands a provider one dispatched job at a time ([`Provider::execute`])
//! and feeds the completion back to the core. A provider answers a capability query with a typed
//! value, or [`Answer::Unsupported`] when it does not model that capability — never with a made-up
//! figure. Results are JSON documents (the same shapes `xdv q run --json` and `xdv phi run --json`
//! print), so that they can be stored, hashed and handed to the next pipeline step unchanged.
//!
//! Every job carries its own seed; a provider draws all randomness from it, so re-executing a job
//! (after a crash, during a resume) gives the same bytes.

use serde_json::{json, Value};
use std::borrow::Cow;
use std::collections::BTreeMap;
use xdv_core::Domain;

/// Largest job result a provider may return, bytes of JSON.
pub const RESULT_BYTES_MAX: usize = 16 << 20;
/// Most qubits the embedded Q provider simulates for one tenant (a 2^26 complex128 state is 1 GiB).
pub const Q_QUBITS_MAX: u32 = 26;
/// Memory one tenant's state vector may take in the embedded Q provider, bytes.
pub const Q_MEMORY_BYTES_MAX: u64 = 1 << 30;

/// A capability a provider may be asked about.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Query {
    /// Q: physical qubits.
    Qubits,
    /// Q: the coupling map.
    CouplingMap,
    /// Q: the native gate set.
    NativeGates,
    /// Q: gate error rates.
    GateErrors,
    /// Q: gate durations.
    GateDurations,
    /// Q: T1 and T2 per qubit.
    Coherence,
    /// Q: readout error per qubit.
    ReadoutError,
    /// Φ: spatial modes.
    Modes,
    /// Φ: wavelength channels.
    Channels,
    /// Φ: loss per MZI.
    Loss,
    /// Φ: phase-setting precision.
    PhasePrecision,
    /// Φ: reconfiguration time.
    ReconfigurationTime,
    /// Φ: phase drift (the coherence of the mesh).
    PhaseDrift,
    /// K: fuel units per second of host time.
    FuelRate,
    /// K: guest memory.
    Memory,
}

impl Query {
    /// Every query, in declaration order.
    pub const ALL: [Query; 15] = [
        Query::Qubits,
        Query::CouplingMap,
        Query::NativeGates,
        Query::GateErrors,
        Query::GateDurations,
        Query::Coherence,
        Query::ReadoutError,
        Query::Modes,
        Query::Channels,
        Query::Loss,
        Query::PhasePrecision,
        Query::ReconfigurationTime,
        Query::PhaseDrift,
        Query::FuelRate,
        Query::Memory,
    ];

    /// Its name in JSON and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Query::Qubits => "qubits",
            Query::CouplingMap => "coupling_map",
            Query::NativeGates => "native_gates",
            Query::GateErrors => "gate_errors",
            Query::GateDurations => "gate_durations",
            Query::Coherence => "coherence",
            Query::ReadoutError => "readout_error",
            Query::Modes => "modes",
            Query::Channels => "channels",
            Query::Loss => "loss",
            Query::PhasePrecision => "phase_precision",
            Query::ReconfigurationTime => "reconfiguration_time",
            Query::PhaseDrift => "phase_drift",
            Query::FuelRate => "fuel_rate",
            Query::Memory => "memory",
        }
    }
}

/// A typed capability value.
#[derive(Clone, Debug, PartialEq)]
pub enum Capability {
    /// A count (qubits, modes, channels).
    Count(u32),
    /// Coupled qubit pairs `(a, b)`, `a < b`, in the provider's own numbering.
    CouplingMap(Vec<(u32, u32)>),
    /// Every gate is native.
    AllGates,
    /// The native gates, by name.
    Gates(Vec<String>),
    /// Per-gate figures (error probability or duration in ns), by gate name.
    PerGate(BTreeMap<String, f64>),
    /// Per-qubit `(T1, T2)` in ns.
    CoherenceNs(Vec<(f64, f64)>),
    /// Per-qubit readout error `(P(1|0), P(0|1))`.
    Readout(Vec<(f64, f64)>),
    /// A loss, dB.
    LossDb(f64),
    /// An angle, radians.
    Radians(f64),
    /// A phase drift, radians per √second.
    RadiansPerSqrtSecond(f64),
    /// A duration, ns.
    DurationNs(u64),
    /// Bytes.
    Bytes(u64),
}

impl Capability {
    /// The value as JSON.
    pub fn to_json(&self) -> Value {
        match self {
            Capability::Count(n) => json!(n),
            Capability::CouplingMap(p) => json!(p),
            Capability::AllGates => json!("all"),
            Capability::Gates(g) => json!(g),
            Capability::PerGate(m) => json!(m),
            Capability::CoherenceNs(v) => json!(v
                .iter()
                .map(|(t1, t2)| json!({"t1_ns": t1, "t2_ns": t2}))
                .collect::<Vec<_>>()),
            Capability::Readout(v) => json!(v
                .iter()
                .map(|(a, b)| json!({"p1_given_0": a, "p0_given_1": b}))
                .collect::<Vec<_>>()),
            Capability::LossDb(x) => json!({"db": x}),
            Capability::Radians(x) => json!({"rad": x}),
            Capability::RadiansPerSqrtSecond(x) => json!({"rad_per_sqrt_s": x}),
            Capability::DurationNs(x) => json!({"ns": x}),
            Capability::Bytes(x) => json!({"bytes": x}),
        }
    }
}

/// A provider's answer to a capability query.
#[derive(Clone, Debug, PartialEq)]
pub enum Answer {
    /// The provider models this capability.
    Value(Capability),
    /// The provider does not model it (or it does not belong to its domain).
    Unsupported,
}

/// A Q job as the runtime hands it to a provider.
#[derive(Clone, Debug, PartialEq)]
pub struct QJob {
    /// OpenQASM 2 or 3 source.
    pub source: String,
    /// Where the source came from, for error messages.
    pub origin: String,
    /// `input float` bindings.
    pub params: Vec<(String, f64)>,
    /// Shots.
    pub shots: u64,
    /// Pauli sums evaluated exactly on the final state.
    pub observables: Vec<String>,
    /// Logical qubits the VHM holds (the circuit must fit).
    pub qubits: u32,
    /// The VHM's own physical qubits in the provider's numbering, ascending (logical qubit i is
    /// the i-th): the partition a device model is restricted to and the circuit routed on.
    pub physical: Vec<u32>,
    /// Seed of every random choice.
    pub seed: u64,
}

/// A Φ job as the runtime hands it to a provider.
#[derive(Clone, Debug, PartialEq)]
pub struct PhiJob {
    /// The program text.
    pub source: String,
    /// Where it came from (its extension selects the format).
    pub origin: String,
    /// An input field that replaces the program's (one channel), if the previous step gave one.
    pub input: Option<Vec<(f64, f64)>>,
    /// Modes the VHM's region holds (the program must fit).
    pub modes: u32,
    /// Wavelength channels the region holds.
    pub channels: u32,
    /// Seed of every random choice.
    pub seed: u64,
    /// The coherence window the job runs in, ns: the mesh is reconfigured at its start, so this
    /// is the drift time the contract is checked for.
    pub window_ns: u64,
    /// The VHM's transform execution contract: least predicted fidelity accepted.
    pub min_fidelity: f64,
    /// Most predicted loss accepted, dB.
    pub loss_budget_db: f64,
    /// Phase-error tolerance that bounds the coherence window, rad.
    pub tolerance_rad: f64,
}

/// A Q job a guest submitted through the ABI (`q_submit`), as the runtime hands it to a
/// provider: the request's bytes, run exactly as the K sandbox would run it inline (same
/// parsing, limits, seed and result document), but on the VHM's partition of the provider.
#[derive(Clone, Debug, PartialEq)]
pub struct GuestQJob {
    /// The request (JSON, `docs/abi.md`).
    pub request: Vec<u8>,
    /// The job's default seed (`xdv_k::jobs::job_seed` of the guest's seed and the job's id).
    pub seed: u64,
    /// The guest's limits (qubits, shots, result size).
    pub limits: xdv_k::Limits,
    /// The VHM's own physical qubits in the provider's numbering, ascending.
    pub physical: Vec<u32>,
    /// The request as the runtime already parsed it (to declare its cost), if it did: the
    /// provider runs it instead of parsing the bytes again.
    pub parsed: Option<std::sync::Arc<xdv_k::jobs::QRequest>>,
}

/// A Φ job a guest submitted through the ABI (`phi_submit`).
#[derive(Clone, Debug, PartialEq)]
pub struct GuestPhiJob {
    /// The Φ program (TOML, or JSON when it starts with `{`).
    pub program: Vec<u8>,
    /// The job's seed.
    pub seed: u64,
    /// The guest's limits (result size).
    pub limits: xdv_k::Limits,
    /// Modes of the VHM's own region.
    pub modes: u32,
    /// Wavelength channels of the region.
    pub channels: u32,
    /// The coherence window the job runs in, ns.
    pub window_ns: u64,
    /// The VHM's transform execution contract: least predicted fidelity.
    pub min_fidelity: f64,
    /// Most predicted loss, dB.
    pub loss_budget_db: f64,
    /// Phase-error tolerance that bounds the window, rad.
    pub tolerance_rad: f64,
}

/// One job for a provider.
#[derive(Clone, Debug, PartialEq)]
pub enum JobRequest {
    /// A circuit of a pipeline step.
    Q(QJob),
    /// A photonic program of a pipeline step.
    Phi(PhiJob),
    /// A guest's circuit.
    GuestQ(GuestQJob),
    /// A guest's photonic program.
    GuestPhi(GuestPhiJob),
}

/// Why a provider could not run a job. The VHM that submitted it is faulted; nothing else is.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ProviderError {
    /// The job's input is malformed (a parse error, a bad binding).
    #[error("{0}")]
    Input(String),
    /// The job does not fit what the VHM holds.
    #[error("{0}")]
    Fit(String),
    /// The job is for another domain than the provider's.
    #[error("provider {provider} runs {domain:?} jobs; this job is for another domain")]
    WrongDomain {
        /// The provider.
        provider: String,
        /// Its domain.
        domain: Domain,
    },
    /// The device model predicts that the job would break the VHM's transform execution
    /// contract (fidelity, loss or coherence); the reason carries the predicted figures.
    #[error("contract refused: {0}")]
    Refused(String),
    /// A guest trapped (out of fuel, memory limit, ABI misuse, …); the message names the kind.
    #[error("trap {0}")]
    Trap(String),
    /// The provider failed (a device error, or an injected fault in tests).
    #[error("provider {provider} failed: {message}")]
    Failed {
        /// The provider.
        provider: String,
        /// What happened.
        message: String,
    },
}

impl ProviderError {
    /// The code the runtime reports to the core in `JobStatus::Failed`.
    pub fn code(&self) -> u32 {
        match self {
            ProviderError::Input(_) => 1,
            ProviderError::Fit(_) => 2,
            ProviderError::WrongDomain { .. } => 3,
            ProviderError::Failed { .. } => 4,
            ProviderError::Refused(_) => 5,
            ProviderError::Trap(_) => 6,
        }
    }
}

/// What a provider predicts of a job before it is submitted: the declared costs the core
/// schedules and budgets on.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Prediction {
    /// Q: the predicted error probability of the job (from the device model; 0 when ideal).
    pub error: f64,
}

impl Prediction {
    /// The predicted error in parts per million, rounded up (what `JobCost::error_ppm` declares).
    pub fn error_ppm(&self) -> u64 {
        let ppm = (self.error.clamp(0.0, 1.0) * 1e6).ceil();
        ppm as u64
    }
}

/// A provider behind the DAL.
pub trait Provider: Send + Sync {
    /// Its name, as the machine description gives it.
    fn name(&self) -> &str;
    /// Its domain.
    fn domain(&self) -> Domain;
    /// What it can say about a capability.
    fn query(&self, q: Query) -> Answer;
    /// Predicts a job's costs before submission (the decoherence budget is charged with the
    /// predicted error). A job the provider could never run is refused here with the error
    /// `execute` would give. The default predicts nothing.
    fn predict(&self, _job: &JobRequest) -> Result<Prediction, ProviderError> {
        Ok(Prediction::default())
    }
    /// Runs one dispatched job to completion; the result is a JSON document.
    fn execute(&self, job: &JobRequest) -> Result<Value, ProviderError>;
}

/// Every capability a provider answers, as a JSON object (`Unsupported` ones are `null`).
pub fn capabilities_json(p: &dyn Provider) -> Value {
    let mut m = serde_json::Map::new();
    for q in Query::ALL {
        m.insert(
            q.name().to_string(),
            match p.query(q) {
                Answer::Value(c) => c.to_json(),
                Answer::Unsupported => Value::Null,
            },
        );
    }
    Value::Object(m)
}

// ----- the embedded Q provider -----------------------------------------------------------------

/// XDV's state-vector simulator as a Q provider: each tenant's partition is simulated in its own
/// state vector, so no tenant can observe another's amplitudes.
pub struct EmbeddedQ {
    name: String,
    qubits: u32,
    coupling: Vec<(u32, u32)>,
    device: Option<xdv_q::device::Device>,
}

impl EmbeddedQ {
    /// A provider with `qubits` physical qubits, the given coupling map (provider numbering) and,
    /// optionally, a device description whose noise every job is simulated with.
    pub fn new(
        name: &str,
        qubits: u32,
        coupling: Vec<(u32, u32)>,
        device: Option<xdv_q::device::Device>,
    ) -> EmbeddedQ {
        EmbeddedQ {
            name: name.to_string(),
            qubits,
            coupling,
            device,
        }
    }
}

impl Provider for EmbeddedQ {
    fn name(&self) -> &str {
        &self.name
    }

    fn domain(&self) -> Domain {
        Domain::Q
    }

    fn query(&self, q: Query) -> Answer {
        let d = self.device.as_ref();
        let per_qubit = |f: &dyn Fn(u32) -> (f64, f64)| (0..self.qubits).map(f).collect();
        match q {
            Query::Qubits => Answer::Value(Capability::Count(self.qubits)),
            Query::CouplingMap => Answer::Value(Capability::CouplingMap(self.coupling.clone())),
            Query::NativeGates => match d.and_then(|d| d.native_gates()) {
                Some(set) => Answer::Value(Capability::Gates(set.iter().cloned().collect())),
                None => Answer::Value(Capability::AllGates),
            },
            // The ideal simulator has no error model or durations to report.
            Query::GateErrors | Query::GateDurations => match d {
                Some(d) if !d.is_noiseless() => {
                    Answer::Value(Capability::PerGate(per_gate(d, q == Query::GateErrors)))
                }
                _ => Answer::Unsupported,
            },
            Query::Coherence => match d {
                Some(d) if !d.is_noiseless() => {
                    Answer::Value(Capability::CoherenceNs(per_qubit(&|i| {
                        (d.t1_ns(i), d.t2_ns(i))
                    })))
                }
                _ => Answer::Unsupported,
            },
            Query::ReadoutError => match d {
                Some(d) if !d.is_noiseless() => {
                    Answer::Value(Capability::Readout(per_qubit(&|i| d.readout(i))))
                }
                _ => Answer::Unsupported,
            },
            _ => Answer::Unsupported,
        }
    }

    fn predict(&self, job: &JobRequest) -> Result<Prediction, ProviderError> {
        match job {
            JobRequest::Q(job) => {
                let (placed, _) = place_q(job, self.device.as_ref())?;
                Ok(Prediction {
                    error: placed.predicted_error,
                })
            }
            JobRequest::GuestQ(job) => {
                // The ideal simulator predicts no error: nothing to parse.
                let Some(d) = self.device.as_ref() else {
                    return Ok(Prediction::default());
                };
                match guest_q_request(job).and_then(|req| place_guest_q(&req, job, d)) {
                    Ok(placed) => Ok(Prediction {
                        error: placed.predicted_error,
                    }),
                    // The guest gets the error result when the job runs; it costs nothing here.
                    Err(_) => Ok(Prediction::default()),
                }
            }
            _ => Err(ProviderError::WrongDomain {
                provider: self.name.clone(),
                domain: Domain::Q,
            }),
        }
    }

    fn execute(&self, job: &JobRequest) -> Result<Value, ProviderError> {
        match job {
            JobRequest::Q(job) => run_q(job, self.device.as_ref()),
            JobRequest::GuestQ(job) => Ok(run_guest_q(job, self.device.as_ref())),
            _ => Err(ProviderError::WrongDomain {
                provider: self.name.clone(),
                domain: Domain::Q,
            }),
        }
    }
}

/// A guest's Q request: the one the runtime already parsed, else parsed from its bytes; `Err` is
/// the guest's error result document.
fn guest_q_request(job: &GuestQJob) -> Result<Cow<'_, xdv_k::jobs::QRequest>, Value> {
    match &job.parsed {
        Some(r) => Ok(Cow::Borrowed(&**r)),
        None => xdv_k::jobs::parse_q(&job.request, job.seed, &job.limits)
            .map(Cow::Owned)
            .map_err(result_doc),
    }
}

/// Places a guest's circuit on the VHM's partition of `device`; `Err` is the guest's error
/// result document.
fn place_guest_q(
    req: &xdv_k::jobs::QRequest,
    job: &GuestQJob,
    device: &xdv_q::device::Device,
) -> Result<PlacedCircuit, Value> {
    place_circuit(
        req.circuit.clone(),
        "job",
        &job.physical,
        Some(device),
        req.observable.is_some(),
    )
    .map_err(|e| xdv_k::jobs::failure(xdv_k::Domain::Q, "device", e.to_string()))
}

/// The result document of a job outcome.
fn result_doc(o: xdv_k::JobOutcome) -> Value {
    serde_json::from_slice(&o.result).unwrap_or(Value::Null)
}

/// Runs a guest's Q job as the sandbox would inline, on the VHM's partition: routed onto it and
/// with its noise when the provider has a device. The result is the guest's result document
/// (an error result when the request is the guest's mistake).
pub fn run_guest_q(job: &GuestQJob, device: Option<&xdv_q::device::Device>) -> Value {
    let req = match guest_q_request(job) {
        Ok(r) => r,
        Err(doc) => return doc,
    };
    let Some(d) = device else {
        return result_doc(xdv_k::jobs::run_parsed_q(&req, None, &job.limits));
    };
    let placed = match place_guest_q(&req, job, d) {
        Ok(p) => p,
        Err(doc) => return doc,
    };
    // An observable reads the logical qubits: routing restored their layout, and qubits the
    // partition adds above the circuit's are idle.
    let n = placed.circuit.num_qubits;
    let routed = xdv_k::jobs::QRequest {
        circuit: placed.circuit,
        shots: req.shots,
        seed: req.seed,
        observable: req.observable.clone().map(|obs| widened(obs, n)),
    };
    result_doc(xdv_k::jobs::run_parsed_q(
        &routed,
        placed.device.as_ref(),
        &job.limits,
    ))
}

/// The observable on `n ≥ its` qubits: identity on the qubits above its labels.
fn widened(mut obs: xdv_q::pauli::Observable, n: u32) -> xdv_q::pauli::Observable {
    obs.qubits = obs.qubits.max(n);
    obs
}

/// A circuit made ready for a tenant's partition: on the ideal simulator, the circuit as it is;
/// on a device, routed onto the partition's coupling map and translated to its native gates,
/// with the device restricted to the partition.
pub struct PlacedCircuit {
    /// The circuit to simulate (on the partition's qubits `0..k`, k the partition's size, when
    /// routed).
    pub circuit: xdv_q::Circuit,
    /// The partition's device (restricted), or `None` on the ideal simulator.
    pub device: Option<xdv_q::device::Device>,
    /// The routing's figures, on a device.
    pub routing: Option<Value>,
    /// The predicted error of the placed circuit (0 when ideal).
    pub predicted_error: f64,
}

/// Places `c` (from `origin`) on the partition `physical` of `device` (provider numbering):
/// restricts the device to it, routes and translates the circuit; `restore_layout` brings every
/// logical qubit back to its partition qubit at the end (for expectation values on the final
/// state).
pub fn place_circuit(
    c: xdv_q::Circuit,
    origin: &str,
    physical: &[u32],
    device: Option<&xdv_q::device::Device>,
    restore_layout: bool,
) -> Result<PlacedCircuit, ProviderError> {
    let Some(d) = device else {
        return Ok(PlacedCircuit {
            circuit: c,
            device: None,
            routing: None,
            predicted_error: 0.0,
        });
    };
    let sub = d.restrict(physical).map_err(|e| {
        ProviderError::Fit(format!(
            "{origin}: the partition {physical:?} does not fit the device: {e}"
        ))
    })?;
    let routed =
        xdv_q::route::route(&c, &sub, &xdv_q::RouteOptions { restore_layout }).map_err(|e| {
            ProviderError::Input(format!(
                "{origin}: cannot run on the partition {physical:?} of device {:?}: {e}",
                d.name()
            ))
        })?;
    let to_physical = |l: &[u32]| -> Vec<u32> {
        l.iter()
            .map(|&q| physical.get(q as usize).copied().unwrap_or(u32::MAX))
            .collect()
    };
    let routing = json!({
        "device": d.name(),
        "partition": physical,
        "swaps": routed.swaps,
        "translated_gates": routed.translated_gates,
        "final_layout": to_physical(&routed.final_layout),
    });
    let predicted_error = xdv_q::noise::predicted_error(&routed.circuit, &sub);
    Ok(PlacedCircuit {
        circuit: routed.circuit,
        device: Some(sub),
        routing: Some(routing),
        predicted_error,
    })
}

/// Parses and checks a pipeline Q job and places it (see [`place_circuit`]); returns the placed
/// circuit and the original circuit's qubit count.
fn place_q(
    job: &QJob,
    device: Option<&xdv_q::device::Device>,
) -> Result<(PlacedCircuit, u32), ProviderError> {
    let no_include = |name: &str| -> Result<String, String> {
        Err(format!(
            "include {name:?}: a pipeline circuit may include only the standard headers; inline the file"
        ))
    };
    let opts = xdv_q::qasm::Options {
        params: &job.params,
        include: Some(&no_include),
    };
    let c = xdv_q::qasm::parse(&job.source, &job.origin, &opts)
        .map_err(|e| ProviderError::Input(e.to_string()))?;
    if c.num_qubits > job.qubits {
        return Err(ProviderError::Fit(format!(
            "{}: the circuit uses {} qubits but the VHM holds {}; declare more `qubits` in its [q] table",
            job.origin, c.num_qubits, job.qubits
        )));
    }
    if c.num_qubits > Q_QUBITS_MAX {
        return Err(ProviderError::Fit(format!(
            "{}: {} qubits is more than the embedded simulator runs for one tenant ({Q_QUBITS_MAX})",
            job.origin, c.num_qubits
        )));
    }
    if c.num_clbits == 0 && job.observables.is_empty() {
        return Err(ProviderError::Input(format!(
            "{}: the circuit measures nothing and the step lists no observables; add measurements or `observables`",
            job.origin
        )));
    }
    if !job.observables.is_empty() && device.is_some_and(|d| !d.is_noiseless()) {
        return Err(ProviderError::Input(format!(
            "{}: `observables` are exact values on the final state, which a noisy device does not have; measure the circuit and estimate from its counts, or run it on an ideal provider",
            job.origin
        )));
    }
    let n = c.num_qubits;
    let placed = place_circuit(
        c,
        &job.origin,
        &job.physical,
        device,
        !job.observables.is_empty(),
    )?;
    Ok((placed, n))
}

/// A device's figure (error probability, or duration in ns) of each of its native gates (every
/// gate of the table when it declares none), on qubit 0 or on its first coupled pair; per-qubit
/// and per-pair overrides are in the device file.
fn per_gate(d: &xdv_q::device::Device, errors: bool) -> BTreeMap<String, f64> {
    let pair = d.coupling().next().unwrap_or((0, 1));
    let names: Vec<String> = match d.native_gates() {
        Some(set) => set.iter().cloned().collect(),
        None => xdv_q::gates::table()
            .iter()
            .map(|g| g.name.to_string())
            .collect(),
    };
    let mut m = BTreeMap::new();
    for name in names {
        let Some(def) = xdv_q::gates::lookup(&name) else {
            continue;
        };
        let qubits: Vec<u32> = match def.qubits {
            1 => vec![0],
            2 => vec![pair.0, pair.1],
            _ => continue,
        };
        let Some(g) = xdv_q::Gate::table(&name, &vec![0.0; def.params], &qubits) else {
            continue;
        };
        let x = if errors {
            d.gate_error(&g)
        } else {
            d.gate_duration_ns(&g)
        };
        m.insert(name, x);
    }
    m
}

/// Runs a Q job on the ideal simulator or a device model; the result is
/// `{"counts", "shots", "qubits", "seed", "method", "predicted_error", "expectations"?}`.
pub fn run_q(job: &QJob, device: Option<&xdv_q::device::Device>) -> Result<Value, ProviderError> {
    use xdv_q::engine::Fast;
    use xdv_q::exec::{self, RunOptions};
    use xdv_q::pauli::Observable;
    let (placed, qubits) = place_q(job, device)?;
    let c = &placed.circuit;
    // One thread per job: the runtime runs jobs of different tenants in parallel.
    let engine = Fast::new(1);
    let mut doc = json!({"qubits": qubits, "shots": job.shots, "seed": job.seed});
    if let Some(r) = &placed.routing {
        doc["routing"] = r.clone();
    }
    if c.num_clbits > 0 {
        let r = exec::run::<f64>(
            c,
            &engine,
            &RunOptions {
                shots: job.shots,
                seed: job.seed,
                memory_bytes_max: Q_MEMORY_BYTES_MAX,
                device: placed.device.clone(),
                ..RunOptions::default()
            },
        )
        .map_err(|e| ProviderError::Input(format!("{}: {e}", job.origin)))?;
        doc["counts"] = json!(r.counts);
        doc["method"] = json!(format!("{:?}", r.method).to_lowercase());
        doc["predicted_error"] = json!(r.predicted_error);
    }
    if !job.observables.is_empty() {
        let (state, _) = exec::final_state::<f64>(c, &engine, Q_MEMORY_BYTES_MAX)
            .map_err(|e| ProviderError::Input(format!("{}: {e}", job.origin)))?;
        // Routing on a partition larger than the circuit leaves the idle partition qubits in
        // |0⟩ above the circuit's own: an observable on the circuit's qubits reads the low ones.
        let mut values = Vec::with_capacity(job.observables.len());
        for text in &job.observables {
            let obs = Observable::parse(text)
                .map_err(|e| ProviderError::Input(format!("observable {text:?}: {e}")))?;
            let obs = widened(obs, c.num_qubits);
            let v = obs
                .expectation(&state)
                .map_err(|e| ProviderError::Input(format!("observable {text:?}: {e}")))?;
            values.push(json!({"observable": text, "value": v}));
        }
        doc["expectations"] = json!(values);
    }
    Ok(doc)
}

// ----- the embedded Φ provider -----------------------------------------------------------------

/// XDV's coherent mesh simulator as a Φ provider: each tenant's program runs on its own field
/// buffer of its region's size, on the mesh's device model (loss, splitter imbalance, phase
/// calibration, DAC, crosstalk, drift, linewidth; ideal when the machine names no device).
pub struct EmbeddedPhi {
    name: String,
    modes: u32,
    channels: u32,
    device: xdv_phi::PhiDevice,
}

impl EmbeddedPhi {
    /// A mesh of `modes` spatial modes and `channels` wavelength channels, ideal or with a device
    /// model.
    pub fn new(
        name: &str,
        modes: u32,
        channels: u32,
        device: Option<xdv_phi::PhiDevice>,
    ) -> EmbeddedPhi {
        EmbeddedPhi {
            name: name.to_string(),
            modes,
            channels,
            device: device
                .unwrap_or_else(|| xdv_phi::PhiDevice::ideal(modes as usize, channels as usize)),
        }
    }
}

impl Provider for EmbeddedPhi {
    fn name(&self) -> &str {
        &self.name
    }

    fn domain(&self) -> Domain {
        Domain::Phi
    }

    fn query(&self, q: Query) -> Answer {
        let d = &self.device;
        let ideal = d.is_ideal();
        match q {
            Query::Modes => Answer::Value(Capability::Count(self.modes)),
            Query::Channels => Answer::Value(Capability::Count(self.channels)),
            // An ideal mesh has no model of these to report.
            _ if ideal => Answer::Unsupported,
            Query::Loss => Answer::Value(Capability::LossDb(d.mzi_loss_db)),
            Query::PhasePrecision => Answer::Value(Capability::Radians(d.dac_lsb_rad())),
            Query::ReconfigurationTime => {
                Answer::Value(Capability::DurationNs(d.reconfiguration_time_ns))
            }
            Query::PhaseDrift => Answer::Value(Capability::RadiansPerSqrtSecond(
                d.phase_drift_rad_per_sqrt_s,
            )),
            _ => Answer::Unsupported,
        }
    }

    fn execute(&self, job: &JobRequest) -> Result<Value, ProviderError> {
        match job {
            JobRequest::Phi(job) => run_phi(job, &self.device),
            JobRequest::GuestPhi(job) => Ok(run_guest_phi(job, &self.device)),
            _ => Err(ProviderError::WrongDomain {
                provider: self.name.clone(),
                domain: Domain::Phi,
            }),
        }
    }
}

/// Runs a guest's Φ program on the VHM's region of the mesh, with the mesh's device model and
/// the VHM's transform execution contract, as a pipeline step's program runs. The result is the
/// guest's result document: `{"ok": true, "domain": "phi", "result": …}` or an error result.
pub fn run_guest_phi(job: &GuestPhiJob, device: &xdv_phi::PhiDevice) -> Value {
    let fail =
        |kind: &str, message: String| xdv_k::jobs::failure(xdv_k::Domain::Phi, kind, message);
    // The request's own checks (UTF-8, format) first, with the sandbox's error results.
    if let Err(o) = xdv_k::jobs::phi_request_check(&job.program, &job.limits) {
        return result_doc(o);
    }
    let text = String::from_utf8_lossy(&job.program).into_owned();
    let origin = if text.trim_start().starts_with('{') {
        "job.json"
    } else {
        "job.toml"
    };
    let phi = PhiJob {
        source: text,
        origin: origin.into(),
        input: None,
        modes: job.modes,
        channels: job.channels,
        seed: job.seed,
        window_ns: job.window_ns,
        min_fidelity: job.min_fidelity,
        loss_budget_db: job.loss_budget_db,
        tolerance_rad: job.tolerance_rad,
    };
    let doc = match run_phi(&phi, device) {
        Ok(doc) => serde_json::json!({"ok": true, "domain": "phi", "result": doc}),
        Err(ProviderError::Fit(m)) => fail("limit", m),
        Err(ProviderError::Refused(m)) => fail("contract", m),
        Err(e) => fail("exec", e.to_string()),
    };
    result_doc(xdv_k::jobs::outcome(xdv_k::Domain::Phi, doc, &job.limits))
}

/// Runs a Φ job on a device: admission of the VHM's transform execution contract first (the
/// predicted fidelity and loss at the window's end against its minimum and budget), then the
/// noisy mesh MZI by MZI. The result is `xdv phi run --json`'s document plus the admission's
/// figures.
pub fn run_phi(job: &PhiJob, device: &xdv_phi::PhiDevice) -> Result<Value, ProviderError> {
    use xdv_phi::{Program, C64};
    let kind = Program::format_of(&job.origin).unwrap_or("toml");
    let mut p = Program::from_text(&job.source, &job.origin, kind)
        .map_err(|e| ProviderError::Input(e.to_string()))?;
    if p.modes > job.modes as usize || p.channels > job.channels as usize {
        return Err(ProviderError::Fit(format!(
            "{}: the program needs {} modes × {} channels but the VHM's region is {} × {}; enlarge its [phi] table",
            job.origin, p.modes, p.channels, job.modes, job.channels
        )));
    }
    if let Some(field) = &job.input {
        if p.channels != 1 {
            return Err(ProviderError::Input(format!(
                "{}: an input field from the previous step feeds one channel, but the program has {}",
                job.origin, p.channels
            )));
        }
        if field.len() > p.modes {
            return Err(ProviderError::Input(format!(
                "{}: the previous step gives {} amplitudes for a {}-mode program; use more modes",
                job.origin,
                field.len(),
                p.modes
            )));
        }
        let mut input = vec![C64::new(0.0, 0.0); p.modes];
        for (slot, (re, im)) in input.iter_mut().zip(field) {
            *slot = C64::new(*re, *im);
        }
        p.input = vec![input];
    }
    let contract = xdv_phi::Contract {
        program: job.origin.clone(),
        modes: p.modes,
        channels: p.channels,
        window_ns: job.window_ns,
        fidelity_min: job.min_fidelity,
        loss_budget_db: job.loss_budget_db,
        coherence_tolerance_rad: job.tolerance_rad,
        envelope: None,
    };
    let admission = xdv_phi::admit(&contract, &p, device)
        .map_err(|r| ProviderError::Refused(format!("{}: {r}", job.origin)))?;
    let r = xdv_phi::run_on_device(&p, device, job.seed, job.window_ns)
        .map_err(|e| ProviderError::Input(e.to_string()))?;
    let mut doc = r.to_json();
    doc["admission"] = json!({
        "predicted_fidelity": admission.prediction.fidelity,
        "predicted_transmission_db": admission.prediction.transmission_db,
        "coherence_window_ns": if admission.coherence_window_ns.is_finite() {
            json!(admission.coherence_window_ns)
        } else {
            Value::Null
        },
    });
    Ok(doc)
}
