//! The run loop of `xdv run`: turns a manifest into core commands, drives the core's scheduler
//! tick by tick, hands every dispatched job to its provider, and feeds completions back in the
//! core's logical order.
//!
//! Order of work in one round (all decisions are the core's; the runtime only performs them):
//!
//! 1. each VHM whose previous step finished submits its next step (`SubmitJob`, preceded by a
//!    `ReserveWindow` for a Φ step);
//! 2. one `Tick` input: the core expires, schedules and dispatches (`ExecuteQ`, `ExecutePhi`);
//! 3. the records of the round are logged (and, with a state directory, committed durably)
//!    **before** any effect is performed;
//! 4. the dispatched jobs run on their providers — in parallel, since the core dispatched them
//!    on disjoint resources — and their completions are applied in job-id order, whatever order
//!    they finished in; a failed job faults its VHM (and its nested VHMs) alone.
//!
//! Every job's seed derives from its VHM's seed and the step's index (see `docs/manifest.md`), so
//! a run's results are a function of the manifest alone. A resumed run re-derives the same inputs,
//! checks them byte for byte against the stored trace, and takes stored results instead of
//! running those jobs again.

use crate::gate::{Ask, Gate, Refusal};
use crate::manifest::{Manifest, RevokeSource, StepDecl, VhmDecl};
use crate::provider::{
    EmbeddedPhi, EmbeddedQ, GuestPhiJob, GuestQJob, JobRequest, PhiJob, Provider, ProviderError,
    QJob, RESULT_BYTES_MAX,
};
use rayon::prelude::*;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use xdv_core::table::{resource_table, ResourceRow};
use xdv_core::{
    CapId, Command, Core, Denial, DeniedOp, DenyReason, Domain, Effect, Event, Genesis, Input,
    JobCost, JobId, JobStatus, Limits, Machine, Outcome, Principal, Resource, StopReason, VhmId,
    ROOT_CAP,
};
use xdv_trace::TraceWriter;

/// Predicted duration of one Φ job on the embedded mesh, ns: one reconfiguration of a thermally
/// tuned mesh (≈10 µs) plus the light's transit, which is negligible beside it.
pub const PHI_JOB_NS: u64 = 10_000;
/// Records between two state digests in the trace.
pub const DIGEST_INTERVAL: u32 = 64;

/// Why a run could not be carried out (as opposed to a VHM faulting, which is a result).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The manifest asks for something this runtime cannot run.
    #[error("{key}: {message}\n  hint: {hint}")]
    Unsupported {
        /// The key in the manifest.
        key: String,
        /// What.
        message: String,
        /// How to fix it.
        hint: String,
    },
    /// A file the manifest names was not provided.
    #[error("{key}: the file {path:?} was not loaded")]
    MissingFile {
        /// The key.
        key: String,
        /// The path as written.
        path: String,
    },
    /// The trace could not be written.
    #[error("trace: {0}")]
    Trace(#[from] xdv_trace::TraceError),
    /// The resumed run diverged from the stored trace: the state directory belongs to another
    /// manifest or build.
    #[error("the stored trace diverges from this run at byte {offset}; the state directory was written by another manifest or an incompatible build — use a new directory")]
    Diverged {
        /// First differing byte.
        offset: usize,
    },
    /// The durable sink failed.
    #[error("{0}")]
    Sink(String),
}

/// Where the run's records and results go as they are produced.
pub trait Sink {
    /// Called with every new chunk of trace bytes and the results completed with it, before any
    /// effect of those records is performed. A durable sink commits both atomically here.
    fn commit(&mut self, trace: &[u8], results: &[(u64, Vec<u8>)]) -> Result<(), String>;
}

/// A sink that keeps nothing.
pub struct NoSink;

impl Sink for NoSink {
    fn commit(&mut self, _: &[u8], _: &[(u64, Vec<u8>)]) -> Result<(), String> {
        Ok(())
    }
}

/// What a resumed run starts from: the stored trace and results.
#[derive(Clone, Debug, Default)]
pub struct Resume {
    /// The trace bytes stored so far.
    pub trace: Vec<u8>,
    /// Stored results by job id.
    pub results: BTreeMap<u64, Vec<u8>>,
}

/// A fault to inject, for tests of fault containment: the provider fails the `nth` job (0-based,
/// in dispatch order) it is given.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InjectFault {
    /// The provider's name.
    pub provider: String,
    /// Which of its jobs fails.
    pub nth: u64,
}

/// Run options.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Inject a provider fault.
    pub inject_fault: Option<InjectFault>,
    /// The operator's token root public key (32 bytes). With it every VHM must present a
    /// capability token, checked at every boundary; without it the manifest may name no tokens
    /// and the operator's own authority runs every VHM.
    pub token_root: Option<Vec<u8>>,
    /// A K sandbox with the manifest's guests already compiled, reused instead of compiling them
    /// again (a guest it lacks is compiled in it).
    pub warm: Option<Warm>,
}

/// A K sandbox and guests compiled in it ahead of runs: compiling a guest with cranelift is most
/// of a short run's time, and a service (or a benchmark) that runs the same guests again need
/// not pay it again. Results do not depend on whether a run was warm.
#[derive(Clone)]
pub struct Warm {
    sandbox: std::sync::Arc<xdv_k::Sandbox>,
    guests: BTreeMap<String, Result<xdv_k::Guest, xdv_k::TrapInfo>>,
}

impl std::fmt::Debug for Warm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Warm")
            .field("guests", &self.guests.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl Warm {
    /// A sandbox with every guest `manifest` names compiled (`files` holds their bytes).
    pub fn new(manifest: &Manifest, files: &BTreeMap<String, Vec<u8>>) -> Result<Warm, RunError> {
        let sandbox = xdv_k::Sandbox::new(xdv_k::EngineLimits::default())
            .map_err(|e| RunError::Sink(format!("the K sandbox: {e}")))?;
        let mut guests = BTreeMap::new();
        for v in manifest.all_vhms() {
            for g in guest_paths(v) {
                let bytes = files.get(&g.value).ok_or_else(|| RunError::MissingFile {
                    key: g.key.clone(),
                    path: g.value.clone(),
                })?;
                guests
                    .entry(g.value.clone())
                    .or_insert_with(|| sandbox.compile(bytes));
            }
        }
        Ok(Warm {
            sandbox: std::sync::Arc::new(sandbox),
            guests,
        })
    }
}

/// The guest modules a declared VHM runs: its guest and its K steps' guests.
fn guest_paths(d: &VhmDecl) -> Vec<&crate::manifest::Located<String>> {
    let guest = d.k.as_ref().and_then(|k| k.guest.as_ref());
    let steps = d.steps.iter().filter_map(|s| match s {
        StepDecl::K { guest, .. } => Some(guest),
        _ => None,
    });
    guest.into_iter().chain(steps).collect()
}

/// How a VHM ended.
#[derive(Clone, Debug, PartialEq)]
pub enum VhmStatus {
    /// Every step finished.
    Finished,
    /// It (or an ancestor) faulted; the message says why.
    Faulted(String),
    /// The run's `max_ticks` passed first.
    Unfinished,
}

/// The result of one VHM.
#[derive(Clone, Debug, PartialEq)]
pub struct VhmReport {
    /// Its path (`alice/worker`).
    pub path: String,
    /// The core's id.
    pub id: Option<VhmId>,
    /// How it ended.
    pub status: VhmStatus,
    /// Each finished step's result, in order.
    pub results: Vec<Value>,
    /// Its physical qubits (the core's global numbering), as placed at creation.
    pub qubits: Vec<u32>,
    /// Its Φ region, as placed at creation.
    pub region: Option<xdv_core::PhiRegion>,
}

/// The result of a run.
#[derive(Clone, Debug)]
pub struct RunReport {
    /// The run's name.
    pub name: String,
    /// Every VHM, in manifest order (parents before their children).
    pub vhms: Vec<VhmReport>,
    /// The Resource_Table rows of every VHM, taken when it finished or faulted (before its
    /// resources were reclaimed).
    pub resource_table: Vec<ResourceRow>,
    /// The core's state digest at the end.
    pub state_hash: [u8; 32],
    /// Logical ticks the run took.
    pub ticks: u64,
    /// Inputs applied.
    pub inputs: u64,
    /// Jobs run on providers in this process (not taken from a resumed state).
    pub jobs_executed: u64,
    /// Jobs whose results came from the stored state.
    pub jobs_resumed: u64,
    /// IPC messages between guest VHMs recorded in the trace (a `Send` each, by hash).
    pub messages: u64,
}

impl RunReport {
    /// The report as JSON: `{"name", "vhms": [{"name", "path", "status", "results", ...}],
    /// "resource_table": [...], "state_hash", "ticks", "inputs"}`.
    pub fn to_json(&self) -> Value {
        let vhms: Vec<Value> = self
            .vhms
            .iter()
            .map(|v| {
                let (status, fault) = match &v.status {
                    VhmStatus::Finished => ("finished", Value::Null),
                    VhmStatus::Faulted(m) => ("faulted", json!(m)),
                    VhmStatus::Unfinished => ("unfinished", Value::Null),
                };
                let name = v.path.rsplit('/').next().unwrap_or(&v.path);
                let region = v.region.map(|r| {
                    json!({"mode_start": r.mode_start, "modes": r.modes,
                        "channel_start": r.channel_start, "channels": r.channels})
                });
                let mut o = json!({"name": name, "path": v.path, "status": status,
                    "id": v.id.map(|i| i.0), "qubits": v.qubits, "region": region,
                    "results": v.results});
                if !fault.is_null() {
                    o["fault"] = fault;
                }
                o
            })
            .collect();
        let table: Vec<Value> = self
            .resource_table
            .iter()
            .map(|r| {
                json!({"vhm": r.name, "id": r.vhm.0, "domain": r.domain.name(),
                "provider": r.provider, "resource": r.resource.name(), "amount": r.amount,
                "consumed": r.consumed, "start_ns": r.interval.start_ns,
                "end_ns": r.interval.end_ns, "capability": r.capability.0})
            })
            .collect();
        json!({"name": self.name, "vhms": vhms, "resource_table": table,
            "state_hash": xdv_trace::hex(&self.state_hash), "ticks": self.ticks,
            "inputs": self.inputs, "messages": self.messages})
    }
}

/// The seed of a VHM: its own if the manifest sets one, else derived from the run's seed and its
/// path (BLAKE3 of `"xdv-vhm-seed"`, the run seed little-endian and the path; first 8 bytes LE).
pub fn vhm_seed(run_seed: u64, decl: &VhmDecl) -> u64 {
    decl.seed.unwrap_or_else(|| {
        let mut h = blake3::Hasher::new();
        h.update(b"xdv-vhm-seed");
        h.update(&run_seed.to_le_bytes());
        h.update(decl.path.as_bytes());
        first_u64(h.finalize().as_bytes())
    })
}

/// The seed of a VHM's step `index` (BLAKE3 of `"xdv-job-seed"`, the VHM seed LE and the index
/// LE; first 8 bytes LE).
pub fn step_seed(vhm_seed: u64, index: usize) -> u64 {
    let mut h = blake3::Hasher::new();
    h.update(b"xdv-job-seed");
    h.update(&vhm_seed.to_le_bytes());
    h.update(&(index as u64).to_le_bytes());
    first_u64(h.finalize().as_bytes())
}

fn first_u64(b: &[u8; 32]) -> u64 {
    let mut x = [0u8; 8];
    x.copy_from_slice(&b[..8]);
    u64::from_le_bytes(x)
}

/// Loads and checks the device model a Q provider names: its qubits must be the provider's and
/// every pair the machine couples (where the core places partitions) must be coupled on the
/// device (where circuits are routed).
fn q_device(
    cap: &xdv_core::QCapacity,
    path: &str,
    coupling: &[(u32, u32)],
    files: &BTreeMap<String, Vec<u8>>,
) -> Result<xdv_q::device::Device, RunError> {
    let key = format!("machine: q provider {:?}: device", cap.provider);
    let bytes = files.get(path).ok_or_else(|| RunError::MissingFile {
        key: key.clone(),
        path: path.to_string(),
    })?;
    let d =
        xdv_q::device::Device::from_toml(&String::from_utf8_lossy(bytes), path).map_err(|e| {
            RunError::Unsupported {
                key: key.clone(),
                message: e.to_string(),
                hint: "fix the device description (see docs/q.md, \"Devices\")".into(),
            }
        })?;
    if d.qubits() != cap.qubits {
        return Err(RunError::Unsupported {
            key,
            message: format!(
                "device {path:?} describes {} qubits but the machine gives the provider {}",
                d.qubits(),
                cap.qubits
            ),
            hint: "make the machine's `qubits` equal the device's".into(),
        });
    }
    if let Some(&(a, b)) = coupling.iter().find(|&&(a, b)| !d.coupled(a, b)) {
        return Err(RunError::Unsupported {
            key,
            message: format!(
                "the machine couples qubits {a} and {b} but device {path:?} does not; partitions are placed on the machine's coupling map and circuits routed on the device's"
            ),
            hint: "describe the device's coupling map in the machine (topology = \"explicit\" with its `coupling`)".into(),
        });
    }
    Ok(d)
}

/// The domains a declared VHM holds.
fn held_domains(d: &VhmDecl) -> Vec<Domain> {
    let mut v = Vec::new();
    if d.k.is_some() {
        v.push(Domain::K);
    }
    if d.q.is_some() {
        v.push(Domain::Q);
    }
    if d.phi.is_some() {
        v.push(Domain::Phi);
    }
    v
}

fn token_domain(d: Domain) -> xdv_token::Domain {
    match d {
        Domain::K => xdv_token::Domain::K,
        Domain::Q => xdv_token::Domain::Q,
        Domain::Phi => xdv_token::Domain::Phi,
    }
}

/// What creating (or nesting) a VHM asks of a token: every resource it is created with, in its
/// domain and unit; a VHM that holds nothing of its own asks for the operation in K.
fn creation_asks(d: &VhmDecl, operation: DeniedOp) -> Vec<Ask> {
    let alloc = d.spec().allocation();
    let mut asks: Vec<Ask> = Resource::ALL
        .iter()
        .filter(|r| alloc.get(**r) > 0)
        .map(|r| Ask {
            operation,
            domain: r.domain(),
            resource: r.name(),
            amount: alloc.get(*r),
        })
        .collect();
    if asks.is_empty() {
        asks.push(Ask {
            operation,
            domain: Domain::K,
            resource: xdv_token::RESOURCE_NONE,
            amount: 0,
        });
    }
    asks
}

/// What a Q job asks of a token: its shots and its predicted error.
fn q_asks(shots: u64, error_ppm: u64) -> [Ask; 2] {
    [
        submit_ask(Domain::Q, "shots", shots),
        submit_ask(Domain::Q, "error_budget_ppm", error_ppm),
    ]
}

/// What a Φ job asks of a token: a coherence window reserved and the job submitted in it.
fn phi_asks() -> [Ask; 2] {
    let window = "coherence_window_ns";
    [
        Ask {
            operation: DeniedOp::Reserve,
            domain: Domain::Phi,
            resource: window,
            amount: PHI_JOB_NS,
        },
        submit_ask(Domain::Phi, window, PHI_JOB_NS),
    ]
}

/// Sending a message of `bytes` on a channel.
fn send_ask(bytes: u64) -> Ask {
    Ask {
        operation: DeniedOp::Send,
        domain: Domain::K,
        resource: "message_bytes",
        amount: bytes,
    }
}

/// A submission's ask: a job of `domain` costing `amount` of `resource`.
fn submit_ask(domain: Domain, resource: &'static str, amount: u64) -> Ask {
    Ask {
        operation: DeniedOp::Submit,
        domain,
        resource,
        amount,
    }
}

/// The per-VHM bookkeeping of the run loop.
struct VhmRun {
    decl: VhmDecl,
    parent: Option<usize>,
    seed: u64,
    id: Option<VhmId>,
    cap: CapId,
    next_step: usize,
    waiting: Option<JobId>,
    prev: Value,
    results: Vec<Value>,
    status: Option<VhmStatus>,
    qubits: Vec<u32>,
    region: Option<xdv_core::PhiRegion>,
    /// For a VHM that runs a guest: its index in the guests' session, and whether its K job
    /// was submitted and has ended.
    guest: Option<usize>,
    guest_submitted: bool,
    guest_ended: bool,
    /// The capability token it presents (or was derived for it from its parent's), when the
    /// run enforces tokens.
    token: Option<xdv_token::Token>,
}

impl VhmRun {
    /// Whether the VHM still has work: a guest that has not ended, or pipeline steps left.
    fn has_work(&self) -> bool {
        match self.guest {
            Some(_) => !self.guest_ended,
            None => self.next_step < self.decl.steps.len(),
        }
    }
}

/// A Q or Φ job a guest submitted through the ABI, queued in the core as its VHM's job.
struct GuestJob {
    /// The VHM's index.
    vhm: usize,
    /// The guest's index in the session.
    guest: usize,
    /// The job's handle in the guest.
    job: u32,
    /// Its domain.
    domain: Domain,
    /// The request (Q) or program (Φ).
    bytes: Vec<u8>,
    /// A Q request as parsed at submission.
    parsed: Option<std::sync::Arc<xdv_k::jobs::QRequest>>,
    /// Its seed.
    seed: u64,
}

/// A guest that blocked in `await_next` during its last slice: its K job, its VHM's index, the
/// fuel the slice left unused, and whether the slice was the job's last declared one.
type Blocked = (JobId, usize, u64, bool);

/// A channel the core opened: its id and each end's VHM and endpoint capability.
type OpenChannel = (xdv_core::ChannelId, [(VhmId, CapId); 2]);

/// A job that ended this round: its id, its VHM's index, its result bytes or error, and whether
/// the result came from the stored state.
/// A finished job: its id, its VHM's index, its result (the stored bytes `{"ok": doc}` and the
/// document itself, so that the document is not parsed back from the bytes) and whether it was
/// taken from the state directory rather than run.
type Completed = (JobId, usize, JobResult, bool);

/// A job's result: the stored bytes `{"ok": doc}` and `doc`, or why it failed.
type JobResult = Result<(Vec<u8>, Value), ProviderError>;

struct Dispatched {
    job: JobId,
    vhm: usize,
    provider: Domain,
    index: u32,
    request: JobRequest,
}

/// Runs a manifest to the end. `files` holds the bytes of every file the manifest names, keyed by
/// the path as written.
pub fn run(
    manifest: &Manifest,
    files: &BTreeMap<String, Vec<u8>>,
    machine: Machine,
    opts: &Options,
    resume: Resume,
    sink: &mut dyn Sink,
) -> Result<RunReport, RunError> {
    let mut r = Runner::new(manifest, files, machine, opts, resume)?;
    r.go(sink)?;
    Ok(r.report())
}

struct Runner<'a> {
    manifest: &'a Manifest,
    files: &'a BTreeMap<String, Vec<u8>>,
    core: Core,
    out: Outcome,
    trace: Option<TraceWriter<Vec<u8>>>,
    inputs: u64,
    /// Bytes of trace produced so far (the writer's buffer is drained at every commit).
    emitted: usize,
    resume: Resume,
    vhms: Vec<VhmRun>,
    jobs: BTreeMap<JobId, usize>,
    q: Vec<Box<dyn Provider>>,
    phi: Vec<Box<dyn Provider>>,
    provider_jobs: BTreeMap<(Domain, u32), u64>,
    inject: Option<InjectFault>,
    pending_results: Vec<(u64, Vec<u8>)>,
    table: Vec<ResourceRow>,
    jobs_executed: u64,
    jobs_resumed: u64,
    /// The K provider: the sandbox, compiled guests by path, the session of the VHMs' guests
    /// (started after the VHMs are created) and one session per running K pipeline step.
    sandbox: Option<std::sync::Arc<xdv_k::Sandbox>>,
    compiled: BTreeMap<String, Result<xdv_k::Guest, xdv_k::TrapInfo>>,
    guests: Option<xdv_k::Session>,
    k_steps: BTreeMap<JobId, xdv_k::Session>,
    fuel_per_slice: u64,
    /// The core's channel for each manifest channel that was opened: its id and each end's VHM
    /// and endpoint capability.
    channels: Vec<Option<OpenChannel>>,
    /// For each channel of the guests' session, its manifest channel's index.
    session_channels: Vec<usize>,
    /// For each guest of the session, its VHM's index.
    session_vhms: Vec<usize>,
    messages: u64,
    /// The boundary manager, when the run enforces tokens.
    gate: Option<std::sync::Arc<Gate>>,
    /// The tokens of the guests of the session, by guest index (for the send check).
    guest_tokens: std::sync::Arc<Vec<Option<xdv_token::Token>>>,
    /// A copy of the core's revoked token ids for the send check, taken again only when the set
    /// grows (revocations are never undone), not on every tick.
    revoked_for_sends: std::sync::Arc<std::collections::BTreeSet<xdv_core::TokenId>>,
    /// Scheduled revocations: the tick from which they apply, the revocation ids, and whether
    /// they were applied.
    revokes: Vec<(u64, Vec<String>, bool)>,
    /// The guests' own Q and Φ jobs queued in the core, by job id.
    guest_jobs: BTreeMap<JobId, GuestJob>,
    /// Guests that blocked in the last slice, to park (`Wait`) once their submissions are in.
    blocked: Vec<Blocked>,
}

impl<'a> Runner<'a> {
    fn new(
        manifest: &'a Manifest,
        files: &'a BTreeMap<String, Vec<u8>>,
        machine: Machine,
        opts: &Options,
        resume: Resume,
    ) -> Result<Runner<'a>, RunError> {
        let mut vhms = Vec::new();
        fn walk(d: &VhmDecl, parent: Option<usize>, run_seed: u64, out: &mut Vec<VhmRun>) {
            let i = out.len();
            out.push(VhmRun {
                decl: d.clone(),
                parent,
                seed: vhm_seed(run_seed, d),
                id: None,
                cap: ROOT_CAP,
                next_step: 0,
                waiting: None,
                prev: Value::Null,
                results: Vec::new(),
                status: None,
                qubits: Vec::new(),
                region: None,
                guest: None,
                guest_submitted: false,
                guest_ended: false,
                token: None,
            });
            for c in &d.children {
                walk(c, Some(i), run_seed, out);
            }
        }
        for d in &manifest.vhms {
            walk(d, None, manifest.seed, &mut vhms);
        }
        let mut sandbox = opts.warm.as_ref().map(|w| w.sandbox.clone());
        let mut compiled = opts
            .warm
            .as_ref()
            .map(|w| w.guests.clone())
            .unwrap_or_default();
        for v in &vhms {
            for g in guest_paths(&v.decl) {
                let bytes = files.get(&g.value).ok_or_else(|| RunError::MissingFile {
                    key: g.key.clone(),
                    path: g.value.clone(),
                })?;
                if sandbox.is_none() {
                    sandbox = Some(std::sync::Arc::new(
                        xdv_k::Sandbox::new(xdv_k::EngineLimits::default())
                            .map_err(|e| RunError::Sink(format!("the K sandbox: {e}")))?,
                    ));
                }
                if let Some(sb) = &sandbox {
                    if !compiled.contains_key(&g.value) {
                        // A module that does not compile faults its VHM when it would start.
                        compiled.insert(g.value.clone(), sb.compile(bytes));
                    }
                }
            }
            for s in v.decl.steps.iter() {
                let path = match s {
                    StepDecl::Q { circuit, .. } => circuit,
                    StepDecl::Phi { program } => program,
                    StepDecl::K { guest, .. } => guest,
                };
                if !files.contains_key(&path.value) {
                    return Err(RunError::MissingFile {
                        key: path.key.clone(),
                        path: path.value.clone(),
                    });
                }
            }
        }
        let fuel_per_slice = machine.k.fuel_per_slice;
        let layout = machine.layout();
        let genesis = Genesis {
            machine,
            limits: Limits::default(),
        };
        let core = Core::new(genesis.clone());
        let adjacency = core.adjacency();
        let mut q: Vec<Box<dyn Provider>> = Vec::new();
        let mut first = 0u32;
        for cap in &genesis.machine.q {
            let mut coupling = Vec::new();
            for a in first..first + cap.qubits {
                for &b in &adjacency[a as usize] {
                    if a < b && b < first + cap.qubits {
                        coupling.push((layout.q_local(a), layout.q_local(b)));
                    }
                }
            }
            first += cap.qubits;
            let device = match &cap.device {
                None => None,
                Some(path) => Some(q_device(cap, path, &coupling, files)?),
            };
            q.push(Box::new(EmbeddedQ::new(
                &cap.provider,
                cap.qubits,
                coupling,
                device,
            )));
        }
        let mut phi: Vec<Box<dyn Provider>> = Vec::new();
        for c in &genesis.machine.phi {
            let device = match &c.device {
                None => None,
                Some(path) => {
                    let key = format!("machine: phi provider {:?}: device", c.provider);
                    let bytes = files.get(path).ok_or_else(|| RunError::MissingFile {
                        key: key.clone(),
                        path: path.clone(),
                    })?;
                    let text = String::from_utf8_lossy(bytes);
                    let d = xdv_phi::PhiDevice::from_toml(&text, path).map_err(|e| {
                        RunError::Unsupported {
                            key: key.clone(),
                            message: e.to_string(),
                            hint: "fix the device description (see docs/phi.md)".into(),
                        }
                    })?;
                    if d.modes != c.modes as usize || d.channels != c.wavelength_channels as usize {
                        return Err(RunError::Unsupported {
                            key,
                            message: format!(
                                "device {path:?} describes {} modes × {} channels but the machine gives the mesh {} × {}",
                                d.modes, d.channels, c.modes, c.wavelength_channels
                            ),
                            hint: "make the machine's modes and wavelength_channels equal the device's".into(),
                        });
                    }
                    Some(d)
                }
            };
            phi.push(Box::new(EmbeddedPhi::new(
                &c.provider,
                c.modes,
                c.wavelength_channels,
                device,
            )));
        }
        let gate = match &opts.token_root {
            Some(root) => Some(std::sync::Arc::new(Gate::new(root).map_err(|e| {
                RunError::Unsupported {
                    key: "token root key".into(),
                    message: format!("the operator's token root key is unusable: {e}"),
                    hint: "pass the key directory `xdv keys generate` made".into(),
                }
            })?)),
            None => {
                if let Some(v) = vhms.iter().find(|v| v.decl.token.is_some()) {
                    let key = v
                        .decl
                        .token
                        .as_ref()
                        .map_or(String::new(), |t| t.key.clone());
                    return Err(RunError::Unsupported {
                        key,
                        message: "the manifest presents capability tokens, but no token root key was given to check them".into(),
                        hint: "run with --token-root DIR, the operator's key directory (`xdv keys generate`)".into(),
                    });
                }
                if let Some(r) = manifest.revokes.first() {
                    return Err(RunError::Unsupported {
                        key: r.key.clone(),
                        message: "the manifest revokes capability tokens, but the run does not check tokens".into(),
                        hint: "run with --token-root DIR, the operator's key directory (`xdv keys generate`)".into(),
                    });
                }
                None
            }
        };
        let mut revokes = Vec::with_capacity(manifest.revokes.len());
        for r in &manifest.revokes {
            let ids = match &r.source {
                RevokeSource::Id(id) => vec![id.clone()],
                RevokeSource::List(l) => {
                    let bytes = files.get(&l.value).ok_or_else(|| RunError::MissingFile {
                        key: l.key.clone(),
                        path: l.value.clone(),
                    })?;
                    let set = xdv_token::RevocationSet::from_text(&String::from_utf8_lossy(bytes))
                        .map_err(|e| RunError::Unsupported {
                            key: l.key.clone(),
                            message: format!("{}: {e}", l.value),
                            hint: "a revocation list holds one revocation id per line, as `xdv token revoke` writes it".into(),
                        })?;
                    set.ids().map(str::to_string).collect()
                }
            };
            revokes.push((r.at_tick, ids, false));
        }
        let trace = TraceWriter::new(Vec::new(), &genesis, DIGEST_INTERVAL)?;
        Ok(Runner {
            manifest,
            files,
            core,
            out: Outcome::default(),
            trace: Some(trace),
            inputs: 0,
            emitted: 0,
            resume,
            vhms,
            jobs: BTreeMap::new(),
            q,
            phi,
            provider_jobs: BTreeMap::new(),
            inject: opts.inject_fault.clone(),
            pending_results: Vec::new(),
            table: Vec::new(),
            jobs_executed: 0,
            jobs_resumed: 0,
            sandbox,
            compiled,
            guests: None,
            k_steps: BTreeMap::new(),
            fuel_per_slice,
            channels: Vec::new(),
            session_channels: Vec::new(),
            session_vhms: Vec::new(),
            messages: 0,
            gate,
            guest_tokens: std::sync::Arc::new(Vec::new()),
            revoked_for_sends: Default::default(),
            revokes,
            guest_jobs: BTreeMap::new(),
            blocked: Vec::new(),
        })
    }

    /// Applies one input and logs it; returns whether it was accepted.
    fn apply(&mut self, input: Input) -> Result<bool, RunError> {
        self.out.clear();
        self.core.apply(&input, &mut self.out);
        if let Some(t) = self.trace.as_mut() {
            t.append(&input, &self.out, &self.core)?;
            self.inputs = t.inputs();
        }
        let events = std::mem::take(&mut self.out.events);
        for ev in &events {
            match ev {
                Event::VhmStopped { vhm, reason } => {
                    let why = match reason {
                        StopReason::Terminated => None,
                        StopReason::Faulted(code) => Some(format!("faulted with code {code}")),
                        StopReason::ParentStopped(p) => Some(format!("its parent {p} stopped")),
                    };
                    if let Some(i) = self.vhms.iter().position(|v| v.id == Some(*vhm)) {
                        if self.vhms[i].status.is_none() {
                            self.snapshot(*vhm);
                            self.vhms[i].status = Some(match why {
                                Some(w) => VhmStatus::Faulted(w),
                                None => VhmStatus::Finished,
                            });
                        }
                    }
                }
                Event::JobQueued { job, vhm, .. } => {
                    if let Some(i) = self.vhms.iter().position(|v| v.id == Some(*vhm)) {
                        self.jobs.insert(*job, i);
                        // A VHM's own job (its step, or its guest's K job); a guest's Q and Φ
                        // jobs queue beside its K job.
                        if self.vhms[i].waiting.is_none() {
                            self.vhms[i].waiting = Some(*job);
                        }
                    }
                }
                _ => {}
            }
        }
        self.out.events = events;
        Ok(self.out.accepted())
    }

    /// Hands the new trace bytes and results to the sink (or, while resuming, checks them
    /// against the stored trace).
    fn commit(&mut self, sink: &mut dyn Sink) -> Result<(), RunError> {
        let bytes = match self.trace.as_mut() {
            Some(t) => std::mem::take(t.writer_mut()),
            None => Vec::new(),
        };
        self.check_and_commit(bytes, sink)
    }

    fn check_and_commit(&mut self, bytes: Vec<u8>, sink: &mut dyn Sink) -> Result<(), RunError> {
        let start = self.emitted;
        self.emitted += bytes.len();
        let stored = &self.resume.trace;
        let overlap = stored.len().saturating_sub(start).min(bytes.len());
        if let Some(off) = (0..overlap).find(|&k| stored[start + k] != bytes[k]) {
            return Err(RunError::Diverged {
                offset: start + off,
            });
        }
        let results: Vec<(u64, Vec<u8>)> = std::mem::take(&mut self.pending_results)
            .into_iter()
            .filter(|(j, _)| !self.resume.results.contains_key(j))
            .collect();
        if overlap < bytes.len() || !results.is_empty() {
            sink.commit(&bytes[overlap..], &results)
                .map_err(RunError::Sink)?;
        }
        Ok(())
    }

    fn snapshot(&mut self, vhm: VhmId) {
        self.table.extend(
            resource_table(&self.core)
                .into_iter()
                .filter(|r| r.vhm == vhm),
        );
    }

    fn command(
        &mut self,
        principal: Principal,
        cap: CapId,
        command: Command,
    ) -> Result<bool, RunError> {
        self.apply(Input::Command {
            principal,
            cap,
            command,
        })
    }

    /// Faults VHM `i` (and so its nested VHMs) with `message` and `code`.
    fn fault(&mut self, i: usize, code: u32, message: String) -> Result<(), RunError> {
        let Some(id) = self.vhms[i].id else {
            self.vhms[i].status = Some(VhmStatus::Faulted(message));
            return Ok(());
        };
        if self.vhms[i].status.is_some() {
            return Ok(());
        }
        self.before_stop(i, message);
        self.command(
            Principal::Operator,
            ROOT_CAP,
            Command::Fault { vhm: id, code },
        )?;
        Ok(())
    }

    /// Records what VHM `i` and its nested VHMs hold (they stop with it) and its status.
    fn before_stop(&mut self, i: usize, message: String) {
        let n = self.vhms.len();
        let tree: Vec<usize> = (i..n)
            .filter(|&j| j == i || self.is_descendant(j, i))
            .collect();
        for j in tree {
            if let (Some(cid), None) = (self.vhms[j].id, &self.vhms[j].status) {
                self.snapshot(cid);
            }
        }
        self.vhms[i].status = Some(VhmStatus::Faulted(message));
    }

    /// Checks requests of VHM `i` with the token of VHM `holder` (itself, or its parent for a
    /// nesting) at the boundary; the first refusal, if any. Always `None` when the run does not
    /// enforce tokens.
    fn refused(&self, holder: usize, asks: &[Ask]) -> Option<(Ask, Refusal)> {
        let gate = self.gate.as_ref()?;
        let revoked = &self.core.state().revoked_tokens;
        let now_ns = self.core.now_ns();
        match &self.vhms[holder].token {
            None => asks.first().map(|a| {
                (
                    *a,
                    Refusal {
                        reason: DenyReason::Missing,
                        message: format!(
                            "{} presents no capability token; name one with its `token` key",
                            self.vhms[holder].decl.path
                        ),
                    },
                )
            }),
            Some(t) => asks
                .iter()
                .find_map(|a| gate.check(t, *a, now_ns, revoked).err().map(|r| (*a, r))),
        }
    }

    /// Checks VHM `i`'s requests with its own token; on a refusal records it in the trace
    /// (faulting the VHM) and returns false.
    fn allowed(&mut self, i: usize, asks: &[Ask]) -> Result<bool, RunError> {
        match self.refused(i, asks) {
            None => Ok(true),
            Some((ask, r)) => {
                self.deny(i, ask, r)?;
                Ok(false)
            }
        }
    }

    /// Records the boundary manager's refusal of VHM `i`'s request (`Command::Deny`): a live VHM
    /// faults with its nested VHMs; one not yet created is not created.
    fn deny(&mut self, i: usize, ask: Ask, r: Refusal) -> Result<(), RunError> {
        let denial = Denial {
            operation: ask.operation,
            domain: ask.domain,
            amount: ask.amount,
            reason: r.reason,
        };
        let what = format!(
            "{} {} {} in {} refused by the boundary manager: {r}",
            ask.operation.name(),
            ask.amount,
            ask.resource,
            ask.domain
        );
        match (self.vhms[i].id, self.vhms[i].status.is_some()) {
            (_, true) => {}
            (Some(id), false) => {
                self.before_stop(i, what);
                self.command(
                    Principal::Operator,
                    ROOT_CAP,
                    Command::Deny {
                        vhm: Some(id),
                        denial,
                    },
                )?;
            }
            (None, false) => {
                self.vhms[i].status = Some(VhmStatus::Faulted(format!("not created: {what}")));
                self.command(
                    Principal::Operator,
                    ROOT_CAP,
                    Command::Deny { vhm: None, denial },
                )?;
            }
        }
        Ok(())
    }

    /// Applies the scheduled revocations due by the present tick (`RevokeToken` for each block,
    /// in manifest order), then stops every live VHM whose token carries a revoked block.
    fn apply_revocations(&mut self) -> Result<(), RunError> {
        let now = self.core.state().now_tick;
        let mut due = Vec::new();
        for r in &mut self.revokes {
            if !r.2 && r.0 <= now {
                r.2 = true;
                due.extend(r.1.iter().cloned());
            }
        }
        if due.is_empty() {
            return Ok(());
        }
        for id in due {
            let token = crate::gate::token_id(&id);
            if !self.core.state().revoked_tokens.contains(&token) {
                self.command(
                    Principal::Operator,
                    ROOT_CAP,
                    Command::RevokeToken { token },
                )?;
            }
        }
        for i in 0..self.vhms.len() {
            let v = &self.vhms[i];
            if v.status.is_some() || v.id.is_none() {
                continue;
            }
            let Some(t) = &v.token else { continue };
            if let Some((block, id)) = Gate::revoked_block(t, &self.core.state().revoked_tokens) {
                let domain = held_domains(&v.decl).first().copied().unwrap_or(Domain::K);
                let ask = Ask {
                    operation: DeniedOp::Hold,
                    domain,
                    resource: xdv_token::RESOURCE_NONE,
                    amount: 0,
                };
                let r = Refusal {
                    reason: DenyReason::Revoked,
                    message: format!("its token was revoked: block {block} has revocation id {id}"),
                };
                self.deny(i, ask, r)?;
            }
        }
        Ok(())
    }

    /// The token VHM `i` acts with: its own `token` file, which must extend its parent's, or
    /// (nested, without one) its parent's narrowed to its own domains and holdings. `Err` is the
    /// refusal to record.
    fn token_for(&self, i: usize) -> Result<Option<xdv_token::Token>, Refusal> {
        let Some(gate) = &self.gate else {
            return Ok(None);
        };
        let v = &self.vhms[i];
        let parent = v.parent.and_then(|p| self.vhms[p].token.clone());
        let own = match &v.decl.token {
            Some(path) => {
                let bytes = self.files.get(&path.value).ok_or_else(|| Refusal {
                    reason: DenyReason::Missing,
                    message: format!(
                        "{}: the token file {:?} was not loaded",
                        path.key, path.value
                    ),
                })?;
                Some(gate.parse(bytes)?)
            }
            None => None,
        };
        match (own, parent) {
            (Some(t), Some(p)) if !t.extends(&p) => Err(Refusal {
                reason: DenyReason::NotDerived,
                message: format!(
                    "the token of {} does not extend its parent's (attenuate the parent's token with `xdv token attenuate`)",
                    v.decl.path
                ),
            }),
            (Some(t), _) => Ok(Some(t)),
            (None, Some(p)) => {
                let alloc = v.decl.spec().allocation();
                let restriction = xdv_token::Restriction {
                    domains: Some(held_domains(&v.decl).iter().map(|d| token_domain(*d)).collect()),
                    resources_max: Resource::ALL
                        .iter()
                        .filter(|r| alloc.get(**r) > 0)
                        .map(|r| (r.name().to_string(), alloc.get(*r)))
                        .collect(),
                    ..xdv_token::Restriction::default()
                };
                // The block's key seals nothing outside this process; derive it, so the run
                // draws no entropy.
                let mut h = blake3::Hasher::new();
                h.update(b"xdv-token-nested");
                h.update(&v.seed.to_le_bytes());
                let seed = *h.finalize().as_bytes();
                p.attenuate(&restriction, &v.decl.path, &seed)
                    .map(Some)
                    .map_err(|e| Refusal {
                        reason: DenyReason::Forged,
                        message: format!("cannot narrow the parent's token: {e}"),
                    })
            }
            (None, None) => Ok(None),
        }
    }

    fn create_all(&mut self) -> Result<(), RunError> {
        for i in 0..self.vhms.len() {
            let spec = self.vhms[i].decl.spec();
            if self.gate.is_some() {
                let parent = self.vhms[i].parent;
                if parent.is_some_and(|p| self.vhms[p].id.is_none()) {
                    self.vhms[i].status =
                        Some(VhmStatus::Faulted("its parent was not created".into()));
                    continue;
                }
                let op = if parent.is_some() {
                    DeniedOp::Nest
                } else {
                    DeniedOp::Create
                };
                let asks = creation_asks(&self.vhms[i].decl, op);
                match self.token_for(i) {
                    Ok(t) => self.vhms[i].token = t,
                    Err(r) => {
                        self.deny(i, asks[0], r)?;
                        continue;
                    }
                }
                // A root VHM's own token must allow its creation; a nested VHM's parent's token
                // must allow the nesting.
                if let Some((ask, r)) = self.refused(parent.unwrap_or(i), &asks) {
                    self.deny(i, ask, r)?;
                    continue;
                }
            }
            let (principal, cap, command) = match self.vhms[i].parent {
                None => (Principal::Operator, ROOT_CAP, Command::CreateVhm { spec }),
                Some(p) => {
                    let Some(pid) = self.vhms[p].id else {
                        self.vhms[i].status =
                            Some(VhmStatus::Faulted("its parent was not created".into()));
                        continue;
                    };
                    (
                        Principal::Vhm(pid),
                        self.vhms[p].cap,
                        Command::CreateNested { parent: pid, spec },
                    )
                }
            };
            if !self.command(principal, cap, command)? {
                let why = self
                    .out
                    .rejection
                    .as_ref()
                    .map(|r| r.to_string())
                    .unwrap_or_default();
                self.vhms[i].status = Some(VhmStatus::Faulted(format!("not created: {why}")));
                continue;
            }
            for ev in &self.out.events {
                if let Event::VhmCreated {
                    vhm,
                    cap,
                    qubits,
                    region,
                    ..
                } = ev
                {
                    self.vhms[i].id = Some(*vhm);
                    self.vhms[i].cap = *cap;
                    self.vhms[i].qubits = qubits.clone();
                    self.vhms[i].region = *region;
                }
            }
        }
        let channels = self.manifest.channels.clone();
        for c in &channels {
            // Both ends' tokens must allow opening the channel and receiving on it.
            let mut ok = true;
            for end in [&c.a, &c.b] {
                let Some(i) = self.vhms.iter().position(|v| v.decl.path == *end) else {
                    continue;
                };
                if self.vhms[i].status.is_some() {
                    continue;
                }
                let asks = [
                    Ask {
                        operation: DeniedOp::Open,
                        domain: Domain::K,
                        resource: "messages_max",
                        amount: u64::from(c.messages_max),
                    },
                    Ask {
                        operation: DeniedOp::Receive,
                        domain: Domain::K,
                        resource: xdv_token::RESOURCE_NONE,
                        amount: 0,
                    },
                ];
                ok &= self.allowed(i, &asks)?;
            }
            let find = |p: &str| {
                self.vhms
                    .iter()
                    .find(|v| v.decl.path == p && v.status.is_none())
                    .and_then(|v| v.id)
            };
            let mut opened = None;
            if let (Some(a), Some(b), true) = (find(&c.a), find(&c.b), ok) {
                self.command(
                    Principal::Operator,
                    ROOT_CAP,
                    Command::OpenChannel {
                        a,
                        b,
                        peer_cap: ROOT_CAP,
                    },
                )?;
                for ev in &self.out.events {
                    if let Event::ChannelOpened {
                        channel,
                        a,
                        b,
                        cap_a,
                        cap_b,
                    } = ev
                    {
                        opened = Some((*channel, [(*a, *cap_a), (*b, *cap_b)]));
                    }
                }
            }
            self.channels.push(opened);
        }
        Ok(())
    }

    /// The sandbox limits of a K job of VHM `i`: its fuel, the machine's slice, its memory, and
    /// its Q holdings for the jobs its guest submits.
    fn k_limits(&self, i: usize, fuel_units: u64) -> xdv_k::Limits {
        let d = &self.vhms[i].decl;
        xdv_k::Limits {
            fuel_max: fuel_units,
            fuel_per_slice: self.fuel_per_slice.max(1),
            memory_bytes_max: d.k.as_ref().map_or(64 << 20, |k| k.memory_bytes),
            qubits_max: d.q.as_ref().map_or(0, |q| q.qubits),
            shots_max: d.q.as_ref().map_or(0, |q| q.shots),
            ..xdv_k::Limits::default()
        }
    }

    /// The limits the jobs of VHM `i`'s guest run under.
    fn guest_limits(&self, i: usize) -> xdv_k::Limits {
        let fuel = self.vhms[i].decl.k.as_ref().map_or(1, |k| k.fuel_units);
        self.k_limits(i, fuel)
    }

    /// Hands a guest job's outcome to its guest.
    fn deliver(
        &mut self,
        guest: usize,
        job: u32,
        outcome: xdv_k::JobOutcome,
    ) -> Result<(), RunError> {
        let Some(session) = self.guests.as_mut() else {
            return Ok(());
        };
        session
            .complete(guest, job, outcome)
            .map_err(|e| RunError::Sink(format!("the K sandbox refused a completion: {e}")))
    }

    /// Queues in the core the Q and Φ jobs the guests submitted in the last slice — checked at
    /// the boundary, with their declared costs (shots and the predicted error on the VHM's
    /// partition; a coherence window reserved for a Φ job). A request that does not parse, or
    /// one the core refuses (an exhausted budget, no window), completes at once with an error
    /// result the guest reads; the refusal is in the trace.
    fn guest_submissions(&mut self) -> Result<(), RunError> {
        let Some(session) = self.guests.as_mut() else {
            return Ok(());
        };
        for sub in session.take_submitted() {
            let Some(&vi) = self.session_vhms.get(sub.guest) else {
                continue;
            };
            let (Some(id), None) = (self.vhms[vi].id, &self.vhms[vi].status) else {
                continue;
            };
            let limits = self.guest_limits(vi);
            let kd = sub.domain;
            let mut parsed = None;
            let (domain, cost, asks) = match kd {
                xdv_k::Domain::Q => {
                    let req = match xdv_k::jobs::parse_q(&sub.request, sub.seed, &limits) {
                        Ok(r) => std::sync::Arc::new(r),
                        Err(o) => {
                            self.deliver(sub.guest, sub.job, o)?;
                            continue;
                        }
                    };
                    let shots = req.shots_sampled();
                    parsed = Some(req.clone());
                    let ppm = self
                        .predict_q(id, |physical| {
                            Some(JobRequest::GuestQ(GuestQJob {
                                request: sub.request.clone(),
                                seed: sub.seed,
                                limits,
                                physical,
                                parsed: Some(req),
                            }))
                        })
                        .unwrap_or_default()
                        .error_ppm();
                    (
                        Domain::Q,
                        JobCost {
                            shots,
                            error_ppm: ppm,
                            ..JobCost::default()
                        },
                        q_asks(shots, ppm),
                    )
                }
                xdv_k::Domain::Phi => {
                    if let Err(o) = xdv_k::jobs::phi_request_check(&sub.request, &limits) {
                        self.deliver(sub.guest, sub.job, o)?;
                        continue;
                    }
                    (
                        Domain::Phi,
                        JobCost {
                            duration_ns: PHI_JOB_NS,
                            ..JobCost::default()
                        },
                        phi_asks(),
                    )
                }
            };
            if !self.allowed(vi, &asks)? {
                continue;
            }
            let (me, cap) = (Principal::Vhm(id), self.vhms[vi].cap);
            let mut accepted = true;
            if domain == Domain::Phi {
                accepted = self.reserve_phi_window(me, cap, id)?;
            }
            if accepted {
                accepted = self.command(
                    me,
                    cap,
                    Command::SubmitJob {
                        vhm: id,
                        domain,
                        cost,
                    },
                )?;
            }
            if !accepted {
                let why = self.rejection();
                let o = xdv_k::jobs::failed(
                    kd,
                    "refused",
                    format!("the orchestration core refused the job: {why}"),
                    &limits,
                );
                self.deliver(sub.guest, sub.job, o)?;
                continue;
            }
            let queued = self.out.events.iter().find_map(|e| match e {
                Event::JobQueued { job, .. } => Some(*job),
                _ => None,
            });
            if let Some(job) = queued {
                self.guest_jobs.insert(
                    job,
                    GuestJob {
                        vhm: vi,
                        guest: sub.guest,
                        job: sub.job,
                        domain,
                        bytes: sub.request,
                        parsed,
                        seed: sub.seed,
                    },
                );
            }
        }
        Ok(())
    }

    /// Parks the K job of every guest that blocked in `await_next` (`Wait`, returning the fuel
    /// its slice left unused), now that its submissions are in the core; the core wakes it when
    /// one of its VHM's Q or Φ jobs ends. A guest that cannot be parked on its last declared
    /// slice has used its fuel: its K job ends as out of fuel.
    fn park_blocked(&mut self) -> Result<Vec<(JobId, usize)>, RunError> {
        let mut exhausted = Vec::new();
        for (job, vi, fuel_unused, last) in std::mem::take(&mut self.blocked) {
            let (Some(id), None, Some(n)) =
                (self.vhms[vi].id, &self.vhms[vi].status, self.vhms[vi].guest)
            else {
                continue;
            };
            let pending = self.guests.as_ref().map_or(0, |s| s.jobs_pending(n));
            let slice = self
                .core
                .state()
                .jobs
                .get(&job)
                .map_or(0, |j| j.last_slice_fuel);
            let parked = pending > 0
                && self.command(
                    Principal::Vhm(id),
                    self.vhms[vi].cap,
                    Command::Wait {
                        job,
                        fuel_unused: fuel_unused.min(slice),
                    },
                )?;
            if !parked && last {
                exhausted.push((job, vi));
            }
        }
        Ok(exhausted)
    }

    fn k_config(
        &self,
        i: usize,
        fuel_units: u64,
        stdin: Vec<u8>,
        args: Vec<String>,
    ) -> xdv_k::RunConfig {
        let d = &self.vhms[i].decl;
        let limits = self.k_limits(i, fuel_units);
        let mut all = vec![d.name.clone()];
        all.extend(args);
        xdv_k::RunConfig {
            seed: self.vhms[i].seed,
            limits,
            args: all,
            stdin,
            ..xdv_k::RunConfig::default()
        }
    }

    /// Starts the guests of every created VHM that runs one, in manifest order, connected by
    /// the manifest's channels between guest VHMs (a channel handle is the index among the
    /// VHM's channels in manifest order, as in `docs/abi.md`).
    fn start_guests(&mut self) -> Result<(), RunError> {
        let Some(sb) = &self.sandbox else {
            return Ok(());
        };
        let mut specs: Vec<(usize, xdv_k::Guest, xdv_k::RunConfig)> = Vec::new();
        let mut failed = Vec::new();
        for i in 0..self.vhms.len() {
            let v = &self.vhms[i];
            let (Some(k), Some(_)) = (v.decl.k.as_ref(), v.id) else {
                continue;
            };
            let Some(g) = &k.guest else { continue };
            match self.compiled.get(&g.value) {
                Some(Ok(guest)) => {
                    let mut cfg = self.k_config(i, k.fuel_units, Vec::new(), k.args.clone());
                    // The guest's Q and Φ jobs go through the core's queues.
                    cfg.jobs = xdv_k::JobMode::External;
                    specs.push((i, guest.clone(), cfg));
                }
                Some(Err(t)) => failed.push((
                    i,
                    format!("guest {:?}: {}: {}", g.value, t.kind.name(), t.message),
                )),
                None => failed.push((i, format!("guest {:?} was not compiled", g.value))),
            }
        }
        let index: BTreeMap<String, usize> = specs
            .iter()
            .enumerate()
            .map(|(n, (i, _, _))| (self.vhms[*i].decl.path.clone(), n))
            .collect();
        let mut session_channels = Vec::new();
        let channels: Vec<xdv_k::Channel> = self
            .manifest
            .channels
            .iter()
            .enumerate()
            .filter_map(|(n, c)| {
                // Only channels the core opened connect guests.
                self.channels.get(n)?.as_ref()?;
                let ch = xdv_k::Channel {
                    a: *index.get(&c.a)?,
                    b: *index.get(&c.b)?,
                };
                session_channels.push(n);
                Some(ch)
            })
            .collect();
        self.session_channels = session_channels;
        self.session_vhms = specs.iter().map(|(i, _, _)| *i).collect();
        let list: Vec<(&xdv_k::Guest, xdv_k::RunConfig)> =
            specs.iter().map(|(_, g, c)| (g, c.clone())).collect();
        let session = sb
            .session(&list, &channels)
            .map_err(|e| RunError::Sink(format!("the K sandbox refused the guests: {e}")))?;
        for (n, (i, _, _)) in specs.iter().enumerate() {
            self.vhms[*i].guest = Some(n);
        }
        self.guest_tokens = std::sync::Arc::new(
            specs
                .iter()
                .map(|(i, _, _)| self.vhms[*i].token.clone())
                .collect(),
        );
        self.guests = Some(session);
        for (i, why) in failed {
            self.fault(i, 20, why)?;
        }
        Ok(())
    }

    /// Runs one dispatched fuel slice of K job `job` (VHM `vi`); `None` while it goes on.
    fn k_slice(
        &mut self,
        job: JobId,
        vi: usize,
        last: bool,
    ) -> Option<Result<Value, ProviderError>> {
        let out_of_fuel = || {
            Err(ProviderError::Trap(
                "out_of_fuel: the guest used every fuel slice its budget allows without ending"
                    .into(),
            ))
        };
        let report = |r: &xdv_k::GuestReport| match r.exit {
            xdv_k::Exit::Ok => Ok(r.to_json()),
            xdv_k::Exit::Trap => Err(ProviderError::Trap(match &r.trap {
                Some(t) => format!("{}: {}", t.kind.name(), t.message),
                None => "trap".into(),
            })),
        };
        if let Some(n) = self.vhms[vi].guest {
            let session = self.guests.as_mut()?;
            return match session.slice(n) {
                xdv_k::Slice::Ended => Some(match session.report(n) {
                    Some(r) => report(r),
                    None => out_of_fuel(),
                }),
                xdv_k::Slice::Blocked { fuel_unused } => {
                    // Parked (or, when it cannot be, ended) after its submissions are in.
                    self.blocked.push((job, vi, fuel_unused, last));
                    None
                }
                xdv_k::Slice::Preempted if last => Some(out_of_fuel()),
                xdv_k::Slice::Preempted => None,
            };
        }
        // A pipeline K step: its guest reads the previous step's result on stdin and writes its
        // own as JSON on stdout.
        if !self.k_steps.contains_key(&job) {
            let v = &self.vhms[vi];
            let Some(StepDecl::K { guest, fuel_units }) = v.decl.steps.get(v.next_step) else {
                return Some(Err(ProviderError::Input("no K step is pending".into())));
            };
            let (path, fuel) = (guest.value.clone(), *fuel_units);
            let stdin = serde_json::to_vec(&v.prev).unwrap_or_default();
            let g = match self.compiled.get(&path) {
                Some(Ok(g)) => g.clone(),
                Some(Err(t)) => {
                    return Some(Err(ProviderError::Input(format!(
                        "guest {path:?}: {}: {}",
                        t.kind.name(),
                        t.message
                    ))))
                }
                None => {
                    return Some(Err(ProviderError::Input(format!(
                        "guest {path:?} was not compiled"
                    ))))
                }
            };
            let cfg = self.k_config(vi, fuel, stdin, Vec::new());
            let sb = self.sandbox.as_ref()?;
            match sb.session(&[(&g, cfg)], &[]) {
                Ok(sess) => {
                    self.k_steps.insert(job, sess);
                }
                Err(e) => {
                    return Some(Err(ProviderError::Failed {
                        provider: "xdv-wasm".into(),
                        message: e.to_string(),
                    }))
                }
            }
        }
        let sess = self.k_steps.get_mut(&job)?;
        let r = match sess.slice(0) {
            xdv_k::Slice::Ended => match sess.report(0) {
                Some(r) => match report(r) {
                    Ok(_) => serde_json::from_slice::<Value>(&r.stdout).map_err(|e| {
                        ProviderError::Input(format!(
                            "the K step's stdout is not one JSON document ({e}); a step's guest writes its result as JSON"
                        ))
                    }),
                    Err(e) => Err(e),
                },
                None => out_of_fuel(),
            },
            xdv_k::Slice::Preempted | xdv_k::Slice::Blocked { .. } if last => out_of_fuel(),
            xdv_k::Slice::Preempted | xdv_k::Slice::Blocked { .. } => return None,
        };
        self.k_steps.remove(&job);
        Some(r)
    }

    /// Lets the boundary manager check every message a guest sends before it is queued: the
    /// sender's token must allow sending its length in bytes at the present logical time.
    fn install_send_check(&mut self) {
        let Some(gate) = self.gate.clone() else {
            return;
        };
        let tokens = self.guest_tokens.clone();
        let current = &self.core.state().revoked_tokens;
        if self.revoked_for_sends.len() != current.len() {
            self.revoked_for_sends = std::sync::Arc::new(current.clone());
        }
        let revoked = self.revoked_for_sends.clone();
        let now_ns = self.core.now_ns();
        let Some(session) = self.guests.as_mut() else {
            return;
        };
        session.set_send_check(Some(std::sync::Arc::new(move |guest, _channel, bytes| {
            let Some(Some(t)) = tokens.get(guest) else {
                return false;
            };
            gate.check(t, send_ask(bytes as u64), now_ns, &revoked)
                .is_ok()
        })));
    }

    /// Records the sends the boundary manager refused in the last slice: each faults its sender.
    fn record_denied_sends(&mut self) -> Result<(), RunError> {
        let Some(session) = self.guests.as_mut() else {
            return Ok(());
        };
        for d in session.take_denied() {
            let Some(&vi) = self.session_vhms.get(d.from) else {
                continue;
            };
            let ask = send_ask(d.bytes as u64);
            let r = self.refused(vi, &[ask]).map_or(
                Refusal {
                    reason: DenyReason::Insufficient,
                    message: "the token does not allow this message".into(),
                },
                |(_, r)| r,
            );
            self.deny(vi, ask, r)?;
        }
        Ok(())
    }

    /// Records every message the guests sent in the last slice as a `Send` on the core's channel,
    /// by the sender with its endpoint capability; the payload recorded is the message's length
    /// (u32 LE) and BLAKE3 hash, so the trace holds a commitment to each message, not its bytes.
    /// A send the core refuses faults the sender.
    fn record_messages(&mut self) -> Result<(), RunError> {
        let Some(session) = self.guests.as_mut() else {
            return Ok(());
        };
        for m in session.take_sent() {
            let Some(&n) = self.session_channels.get(m.channel) else {
                continue;
            };
            let Some(Some((channel, ends))) = self.channels.get(n).cloned() else {
                continue;
            };
            let Some(&vi) = self.session_vhms.get(m.from) else {
                continue;
            };
            let Some(id) = self.vhms[vi].id else { continue };
            let Some(&(_, cap)) = ends.iter().find(|(v, _)| *v == id) else {
                continue;
            };
            let mut payload = (m.payload.len() as u32).to_le_bytes().to_vec();
            payload.extend_from_slice(blake3::hash(&m.payload).as_bytes());
            self.messages += 1;
            if !self.command(Principal::Vhm(id), cap, Command::Send { channel, payload })? {
                let why = self.rejection();
                self.fault(vi, 30, format!("IPC send refused: {why}"))?;
            }
        }
        Ok(())
    }

    /// Submits the next step of every VHM that is ready for one.
    fn submit_ready(&mut self) -> Result<(), RunError> {
        for i in 0..self.vhms.len() {
            let v = &self.vhms[i];
            if v.status.is_some() || v.waiting.is_some() {
                continue;
            }
            let Some(id) = v.id else { continue };
            if v.guest.is_some() {
                if !v.guest_submitted {
                    let fuel_units = v.decl.k.as_ref().map_or(0, |k| k.fuel_units);
                    let cap = v.cap;
                    self.vhms[i].guest_submitted = true;
                    if !self.allowed(i, &[submit_ask(Domain::K, "fuel_units", fuel_units)])? {
                        continue;
                    }
                    let cost = JobCost {
                        fuel_units,
                        ..JobCost::default()
                    };
                    let cmd = Command::SubmitJob {
                        vhm: id,
                        domain: Domain::K,
                        cost,
                    };
                    if !self.command(Principal::Vhm(id), cap, cmd)? {
                        let why = self.rejection();
                        self.fault(i, 11, format!("guest: refused: {why}"))?;
                    }
                }
                continue;
            }
            let Some(step) = v.decl.steps.get(v.next_step).cloned() else {
                continue;
            };
            let cap = v.cap;
            let me = Principal::Vhm(id);
            let (domain, cost) = match &step {
                StepDecl::Q { shots, .. } => {
                    // The provider predicts the job's error on the VHM's partition (routed onto
                    // its device, if it has one): the decoherence budget is charged with it.
                    let own = self.core.state().own_qubits(&self.core.state().vhms[&id]);
                    let prediction =
                        self.predict_q(id, |_| self.q_step_job(i, &own).map(JobRequest::Q));
                    match prediction {
                        Ok(p) => {
                            if !self.allowed(i, &q_asks(*shots, p.error_ppm()))? {
                                continue;
                            }
                            (
                                Domain::Q,
                                JobCost {
                                    shots: *shots,
                                    error_ppm: p.error_ppm(),
                                    ..JobCost::default()
                                },
                            )
                        }
                        Err(e) => {
                            let step = self.vhms[i].next_step;
                            self.fault(i, 100 + e.code(), format!("step {step}: {e}"))?;
                            continue;
                        }
                    }
                }
                StepDecl::Phi { .. } => {
                    if !self.allowed(i, &phi_asks())? {
                        continue;
                    }
                    if !self.reserve_phi_window(me, cap, id)? {
                        let why = self.rejection();
                        self.fault(
                            i,
                            10,
                            format!(
                                "step {}: no coherence window: {why}",
                                self.vhms[i].next_step
                            ),
                        )?;
                        continue;
                    }
                    (
                        Domain::Phi,
                        JobCost {
                            duration_ns: PHI_JOB_NS,
                            ..JobCost::default()
                        },
                    )
                }
                StepDecl::K { fuel_units, .. } => {
                    if !self.allowed(i, &[submit_ask(Domain::K, "fuel_units", *fuel_units)])? {
                        continue;
                    }
                    (
                        Domain::K,
                        JobCost {
                            fuel_units: *fuel_units,
                            ..JobCost::default()
                        },
                    )
                }
            };
            if !self.command(
                me,
                cap,
                Command::SubmitJob {
                    vhm: id,
                    domain,
                    cost,
                },
            )? {
                let why = self.rejection();
                self.fault(
                    i,
                    11,
                    format!("step {}: refused: {why}", self.vhms[i].next_step),
                )?;
            }
        }
        Ok(())
    }

    /// Reserves for `vhm`'s next Φ job a [`PHI_JOB_NS`] coherence window at the earliest free
    /// start ([`Self::free_window_start`]); whether the core accepted it.
    fn reserve_phi_window(
        &mut self,
        me: Principal,
        cap: CapId,
        vhm: VhmId,
    ) -> Result<bool, RunError> {
        let start_ns = self.free_window_start(vhm);
        self.command(
            me,
            cap,
            Command::ReserveWindow {
                vhm,
                start_ns,
                duration_ns: PHI_JOB_NS,
            },
        )
    }

    /// The earliest tick boundary after now at which a [`PHI_JOB_NS`] window on `vhm`'s mesh
    /// overlaps no other VHM's window (windows are exclusive per mesh unless shared; the
    /// runtime does not establish sharing contracts). Φ jobs dispatch on tick boundaries, so a
    /// window must start on one.
    fn free_window_start(&self, vhm: VhmId) -> u64 {
        let st = self.core.state();
        let tick_ns = self.core.genesis().machine.tick_ns.max(1);
        let provider = st.vhms.get(&vhm).and_then(|v| {
            v.region
                .map(|r| self.core.layout().phi_provider(r.mode_start) as u32)
        });
        let mut busy: Vec<(u64, u64)> = st
            .windows
            .values()
            .filter(|w| Some(w.provider) == provider && w.vhm != vhm)
            .map(|w| (w.start_ns, w.end_ns))
            .collect();
        busy.sort_unstable();
        let mut start = self.core.now_ns().saturating_add(tick_ns);
        for (s, e) in busy {
            if start.saturating_add(PHI_JOB_NS) <= s {
                break;
            }
            if e > start {
                start = e.div_ceil(tick_ns).saturating_mul(tick_ns);
            }
        }
        start
    }

    fn rejection(&self) -> String {
        self.out
            .rejection
            .as_ref()
            .map(|r| r.to_string())
            .unwrap_or_default()
    }

    /// What the Q provider of VHM `id` predicts of the job `job` builds from the VHM's own
    /// qubits (in the provider's numbering); nothing for a VHM without qubits or a job.
    fn predict_q(
        &self,
        id: VhmId,
        job: impl FnOnce(Vec<u32>) -> Option<JobRequest>,
    ) -> Result<crate::provider::Prediction, ProviderError> {
        let st = self.core.state();
        let own = st.own_qubits(&st.vhms[&id]);
        let layout = self.core.layout();
        let Some(&first) = own.first() else {
            return Ok(Default::default());
        };
        let index = layout.q_provider(first) as u32;
        match job(own.iter().map(|&q| layout.q_local(q)).collect()) {
            Some(j) => self.provider(Domain::Q, index).predict(&j),
            None => Ok(Default::default()),
        }
    }

    /// The Q job of VHM `vi`'s current step on its own qubits `qubits` (global numbering).
    fn q_step_job(&self, vi: usize, qubits: &[u32]) -> Option<QJob> {
        let v = &self.vhms[vi];
        let StepDecl::Q {
            circuit,
            shots,
            observables,
        } = v.decl.steps.get(v.next_step)?
        else {
            return None;
        };
        let mut params = Vec::new();
        if let Some(Value::Object(m)) = v.prev.get("params") {
            for (k, x) in m {
                if let Some(f) = x.as_f64() {
                    params.push((k.clone(), f));
                }
            }
        }
        let layout = self.core.layout();
        Some(QJob {
            source: String::from_utf8_lossy(self.files.get(&circuit.value)?).into_owned(),
            origin: circuit.value.clone(),
            params,
            shots: *shots,
            observables: observables.clone(),
            qubits: qubits.len() as u32,
            physical: qubits.iter().map(|&q| layout.q_local(q)).collect(),
            seed: step_seed(v.seed, v.next_step),
        })
    }

    /// Builds the provider request for a dispatched effect.
    fn request(&self, e: &Effect) -> Option<Dispatched> {
        let (job, domain, index) = match e {
            Effect::ExecuteQ { job, provider, .. } => (*job, Domain::Q, *provider),
            Effect::ExecutePhi { job, provider, .. } => (*job, Domain::Phi, *provider),
            _ => return None,
        };
        if let Some(g) = self.guest_jobs.get(&job) {
            let layout = self.core.layout();
            let limits = self.guest_limits(g.vhm);
            let request = match e {
                Effect::ExecuteQ { qubits, .. } => JobRequest::GuestQ(GuestQJob {
                    request: g.bytes.clone(),
                    seed: g.seed,
                    limits,
                    physical: qubits.iter().map(|&q| layout.q_local(q)).collect(),
                    parsed: g.parsed.clone(),
                }),
                Effect::ExecutePhi {
                    region, excluded, ..
                } => {
                    let lent: u32 = excluded.iter().map(|r| r.modes).sum();
                    let decl = self.vhms[g.vhm].decl.phi.as_ref()?;
                    JobRequest::GuestPhi(GuestPhiJob {
                        program: g.bytes.clone(),
                        seed: g.seed,
                        limits,
                        modes: region.modes.saturating_sub(lent),
                        channels: region.channels,
                        window_ns: PHI_JOB_NS,
                        min_fidelity: decl.min_fidelity,
                        loss_budget_db: decl.loss_budget_db,
                        tolerance_rad: decl.tolerance_rad,
                    })
                }
                _ => return None,
            };
            return Some(Dispatched {
                job,
                vhm: g.vhm,
                provider: domain,
                index,
                request,
            });
        }
        let vi = *self.jobs.get(&job)?;
        let v = &self.vhms[vi];
        let step = v.decl.steps.get(v.next_step)?;
        let seed = step_seed(v.seed, v.next_step);
        let text = |p: &str| String::from_utf8_lossy(&self.files[p]).into_owned();
        let request = match (step, e) {
            (StepDecl::Q { .. }, Effect::ExecuteQ { qubits, .. }) => {
                JobRequest::Q(self.q_step_job(vi, qubits)?)
            }
            (
                StepDecl::Phi { program },
                Effect::ExecutePhi {
                    region, excluded, ..
                },
            ) => {
                // Modes lent to nested VHMs are not the job's to use.
                let lent: u32 = excluded.iter().map(|r| r.modes).sum();
                let decl = v.decl.phi.as_ref()?;
                JobRequest::Phi(PhiJob {
                    source: text(&program.value),
                    origin: program.value.clone(),
                    input: field_from(&v.prev),
                    modes: region.modes.saturating_sub(lent),
                    channels: region.channels,
                    seed,
                    window_ns: PHI_JOB_NS,
                    min_fidelity: decl.min_fidelity,
                    loss_budget_db: decl.loss_budget_db,
                    tolerance_rad: decl.tolerance_rad,
                })
            }
            _ => return None,
        };
        Some(Dispatched {
            job,
            vhm: vi,
            provider: domain,
            index,
            request,
        })
    }

    fn go(&mut self, sink: &mut dyn Sink) -> Result<(), RunError> {
        self.apply_revocations()?;
        self.create_all()?;
        self.start_guests()?;
        self.commit(sink)?;
        let max_ticks = self.manifest.max_ticks;
        let mut ticks = 0u64;
        while ticks < max_ticks
            && self
                .vhms
                .iter()
                .any(|v| v.status.is_none() && v.id.is_some())
        {
            self.apply_revocations()?;
            self.submit_ready()?;
            self.apply(Input::Tick { ticks: 1 })?;
            ticks += 1;
            let effects = std::mem::take(&mut self.out.effects);
            let mut work = Vec::new();
            for e in &effects {
                if let Some(d) = self.request(e) {
                    work.push(d);
                }
            }
            // Log, then effect.
            self.commit(sink)?;
            // K slices first, in the core's dispatch order (guests share channels, so they run
            // one after another); then the Q and Φ jobs, in parallel.
            let mut k_done: Vec<(JobId, usize, JobResult)> = Vec::new();
            self.install_send_check();
            for e in &effects {
                if let Effect::RunSlice { job, last, .. } = e {
                    let Some(&vi) = self.jobs.get(job) else {
                        continue;
                    };
                    if let Some(r) = self.k_slice(*job, vi, *last) {
                        let result = r.and_then(|v| stored_result(v, "xdv-wasm"));
                        k_done.push((*job, vi, result));
                    }
                    self.record_denied_sends()?;
                    self.record_messages()?;
                    self.guest_submissions()?;
                }
            }
            for (job, vi) in self.park_blocked()? {
                k_done.push((
                    job,
                    vi,
                    Err(ProviderError::Trap(
                        "out_of_fuel: the guest used every fuel slice its budget allows without ending"
                            .into(),
                    )),
                ));
            }
            // Which jobs fail by injection is decided in dispatch order, before running.
            let mut inject = Vec::with_capacity(work.len());
            for d in &work {
                let name = self.provider(d.provider, d.index).name().to_string();
                let n = self.provider_jobs.entry((d.provider, d.index)).or_insert(0);
                inject.push(
                    self.inject
                        .as_ref()
                        .is_some_and(|f| f.provider == name && f.nth == *n),
                );
                *n += 1;
            }
            let resumed: Vec<Option<Vec<u8>>> = work
                .iter()
                .map(|d| self.resume.results.get(&d.job.0).cloned())
                .collect();
            // Only the providers cross into the worker threads (the K sessions stay here).
            let (qs, phis) = (&self.q, &self.phi);
            let provider = |d: Domain, i: u32| -> &dyn Provider {
                match d {
                    Domain::Phi => phis[i as usize].as_ref(),
                    _ => qs[i as usize].as_ref(),
                }
            };
            let execute = |((d, &fail), stored): ((&Dispatched, &bool), &Option<Vec<u8>>)| {
                let p = provider(d.provider, d.index);
                if let Some(bytes) = stored {
                    return decode_stored(bytes);
                }
                if fail {
                    return Err(ProviderError::Failed {
                        provider: p.name().to_string(),
                        message: "injected fault".into(),
                    });
                }
                let v = p.execute(&d.request)?;
                let (bytes, v) = stored_result(v, p.name())?;
                if bytes.len() > RESULT_BYTES_MAX {
                    return Err(ProviderError::Fit(format!(
                        "the result is {} bytes, more than {RESULT_BYTES_MAX}",
                        bytes.len()
                    )));
                }
                Ok((bytes, v))
            };
            // Several jobs run in parallel on disjoint resources; one runs here, without handing
            // it to a worker thread and waiting for it.
            let outcomes: Vec<JobResult> = if work.len() > 1 {
                work.par_iter()
                    .zip(&inject)
                    .zip(&resumed)
                    .map(execute)
                    .collect()
            } else {
                work.iter()
                    .zip(&inject)
                    .zip(&resumed)
                    .map(execute)
                    .collect()
            };
            // Completions in job-id order (the core dispatched in its own order; `work` follows it,
            // but sort anyway so the rule does not depend on that).
            let mut done: Vec<Completed> = work
                .into_iter()
                .zip(outcomes)
                .zip(resumed.iter().map(Option::is_some))
                .map(|((d, o), r)| (d.job, d.vhm, o, r))
                .chain(k_done.into_iter().map(|(j, v, o)| (j, v, o, false)))
                .collect();
            done.sort_by_key(|(j, _, _, _)| *j);
            for (job, vi, outcome, was_stored) in done {
                if was_stored {
                    self.jobs_resumed += 1;
                } else {
                    self.jobs_executed += 1;
                }
                // A failure is stored too, so a resumed run fails the same way without re-running.
                let bytes = match &outcome {
                    Ok((b, _)) => b.clone(),
                    Err(e) => {
                        serde_json::to_vec(&json!({"error": e.to_string(), "code": e.code()}))
                            .unwrap_or_default()
                    }
                };
                self.pending_results.push((job.0, bytes));
                let status = match &outcome {
                    Ok(_) => JobStatus::Ok,
                    Err(e) => JobStatus::Failed(e.code()),
                };
                self.apply(Input::Completion { job, status })?;
                if let Some(g) = self.guest_jobs.remove(&job) {
                    // A guest's own job: its result goes to the guest, which decides what a
                    // failure means; the VHM goes on.
                    let kd = match g.domain {
                        Domain::Phi => xdv_k::Domain::Phi,
                        _ => xdv_k::Domain::Q,
                    };
                    let limits = self.guest_limits(g.vhm);
                    let o = match outcome {
                        Ok((_, doc)) => xdv_k::jobs::outcome(kd, doc, &limits),
                        Err(e) => xdv_k::jobs::failed(kd, "provider", e.to_string(), &limits),
                    };
                    if self.vhms[g.vhm].status.is_none() {
                        self.deliver(g.guest, g.job, o)?;
                    }
                    continue;
                }
                let v = &mut self.vhms[vi];
                v.waiting = None;
                let is_guest = v.guest.is_some();
                if is_guest {
                    v.guest_ended = true;
                }
                match outcome {
                    Ok((_, doc)) => {
                        v.prev = doc.clone();
                        v.results.push(doc);
                        if !is_guest {
                            v.next_step += 1;
                        }
                    }
                    Err(e) => {
                        let what = if is_guest {
                            "guest".to_string()
                        } else {
                            format!("step {}", v.next_step)
                        };
                        self.fault(vi, 100 + e.code(), format!("{what}: {e}"))?;
                    }
                }
            }
            self.finish_done()?;
            self.commit(sink)?;
        }
        for v in &mut self.vhms {
            if v.status.is_none() && v.id.is_some() {
                v.status = Some(VhmStatus::Unfinished);
            }
        }
        self.seal(sink)
    }

    /// Writes the trace's seal (the final state digest) and commits it.
    fn seal(&mut self, sink: &mut dyn Sink) -> Result<(), RunError> {
        let Some(t) = self.trace.take() else {
            return Ok(());
        };
        let tail = t.finish(&self.core)?;
        self.trace = None;
        self.check_and_commit(tail, sink)
    }

    /// Terminates every root VHM whose whole tree has finished its steps.
    fn finish_done(&mut self) -> Result<(), RunError> {
        let n = self.vhms.len();
        let done = |v: &VhmRun| v.status.is_some() || !v.has_work();
        for i in 0..n {
            if self.vhms[i].parent.is_some() || self.vhms[i].status.is_some() {
                continue;
            }
            let tree: Vec<usize> = (i..n)
                .filter(|&j| j == i || self.is_descendant(j, i))
                .collect();
            if tree
                .iter()
                .all(|&j| done(&self.vhms[j]) && self.vhms[j].waiting.is_none())
            {
                // Children first, so each VHM's row shows its own holdings.
                for &j in tree.iter().rev() {
                    if let Some(id) = self.vhms[j].id {
                        if self.vhms[j].status.is_none() {
                            self.snapshot(id);
                            self.vhms[j].status = Some(VhmStatus::Finished);
                        }
                    }
                }
                if let Some(id) = self.vhms[i].id {
                    self.command(
                        Principal::Operator,
                        ROOT_CAP,
                        Command::Terminate { vhm: id },
                    )?;
                }
            }
        }
        Ok(())
    }

    fn is_descendant(&self, j: usize, ancestor: usize) -> bool {
        let mut p = self.vhms[j].parent;
        while let Some(x) = p {
            if x == ancestor {
                return true;
            }
            p = self.vhms[x].parent;
        }
        false
    }

    fn provider(&self, d: Domain, index: u32) -> &dyn Provider {
        match d {
            Domain::Phi => self.phi[index as usize].as_ref(),
            _ => self.q[index as usize].as_ref(),
        }
    }

    fn report(&self) -> RunReport {
        RunReport {
            name: self.manifest.name.clone(),
            vhms: self
                .vhms
                .iter()
                .map(|v| VhmReport {
                    path: v.decl.path.clone(),
                    id: v.id,
                    status: v.status.clone().unwrap_or(VhmStatus::Unfinished),
                    results: v.results.clone(),
                    qubits: v.qubits.clone(),
                    region: v.region,
                })
                .collect(),
            resource_table: self.table.clone(),
            state_hash: self.core.state_digest(),
            ticks: self.core.state().now_tick,
            inputs: self.inputs,
            jobs_executed: self.jobs_executed,
            jobs_resumed: self.jobs_resumed,
            messages: self.messages,
        }
    }
}

/// A job's result as the state directory stores it, `{"ok": v}` serialised, and `v`.
fn stored_result(v: Value, provider: &str) -> JobResult {
    let mut doc = json!({ "ok": v });
    let bytes = serde_json::to_vec(&doc).map_err(|e| ProviderError::Failed {
        provider: provider.to_string(),
        message: e.to_string(),
    })?;
    Ok((bytes, doc["ok"].take()))
}

/// A stored result read back: its bytes and its `ok` document, or the error it recorded.
fn decode_stored(bytes: &[u8]) -> JobResult {
    let mut v: Value = serde_json::from_slice(bytes).map_err(|e| ProviderError::Failed {
        provider: "state".into(),
        message: format!("a stored result does not parse: {e}"),
    })?;
    if let Some(err) = v.get("error") {
        let message = err.as_str().unwrap_or("failed").to_string();
        return Err(match v.get("code").and_then(Value::as_u64) {
            Some(1) => ProviderError::Input(message),
            Some(2) => ProviderError::Fit(message),
            _ => ProviderError::Failed {
                provider: "stored".into(),
                message,
            },
        });
    }
    let doc = v.get_mut("ok").map(Value::take).unwrap_or(Value::Null);
    Ok((bytes.to_vec(), doc))
}

/// The input field a Φ step takes from the previous step's result: its `amplitudes` (a Φ
/// result) as they are, or the square roots of a Q result's outcome probabilities, in the order
/// of the outcome keys read as binary numbers (amplitude encoding of the distribution).
fn field_from(prev: &Value) -> Option<Vec<(f64, f64)>> {
    if let Some(Value::Array(a)) = prev.get("amplitudes") {
        let mut f = Vec::with_capacity(a.len());
        for x in a {
            let re = x.get(0)?.as_f64()?;
            let im = x.get(1)?.as_f64()?;
            f.push((re, im));
        }
        return Some(f);
    }
    if let Some(Value::Object(counts)) = prev.get("counts") {
        let total: u64 = counts.values().filter_map(Value::as_u64).sum();
        if total == 0 {
            return None;
        }
        let width = counts.keys().map(String::len).max()?;
        if width > 20 {
            return None;
        }
        let mut f = vec![(0.0, 0.0); 1 << width];
        for (k, c) in counts {
            let idx = usize::from_str_radix(k, 2).ok()?;
            let p = c.as_u64()? as f64 / total as f64;
            *f.get_mut(idx)? = (p.sqrt(), 0.0);
        }
        return Some(f);
    }
    None
}
