//! The deterministic WebAssembly sandbox: one wasmtime engine configured for determinism, guests
//! compiled from `.wasm` or `.wat`, and vCPUs that run in fuel slices.
//!
//! Determinism: fuel metering (never epoch interruption, which a timer drives), canonical NaNs,
//! deterministic relaxed SIMD, no threads (the `threads` feature is not compiled in), WASI with a
//! fixed clock, seeded randomness, no filesystem, no network, stdin from the run's configuration
//! (empty by default). A guest runs
//! `fuel_per_slice` units, is preempted (an async fuel yield), and resumes exactly where it
//! stopped; guests of one run are polled round-robin in their order, one slice at a time, by a
//! poll loop with a no-op waker — no clock, no thread pool. A [`JobMode::External`] guest's Q and
//! Φ jobs go to the session's driver; awaiting one whose result has not arrived ends the slice
//! ([`Slice::Blocked`]) with the fuel it did not use, and the slice after the driver's
//! [`Session::complete`] starts with a whole `fuel_per_slice` of fuel.

use crate::abi::{
    self, lock, Channels, Endpoint, HasHost, Host, HostLinks, JobRecord, LogLine, Shared,
};
use crate::error::{AbiMisuse, CompleteError, KError, MemoryLimitExceeded, TrapInfo, TrapKind};
use crate::jobs::{self, Domain, JobOutcome};
use crate::limits::{EngineLimits, Limits};
use serde_json::json;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use wasmtime::{
    Config, Engine, InstanceAllocationStrategy, InstancePre, Linker, Module,
    PoolingAllocationConfig, ResourceLimiter, Store, Trap,
};
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
use wasmtime_wasi::{HostMonotonicClock, HostWallClock, I32Exit, WasiCtxBuilder};

/// Bytes of a module file the CLI reads at most.
pub const MODULE_BYTES_MAX: u64 = 64 << 20;

/// Table elements a guest may have (function tables of Rust guests are small).
pub const TABLE_ELEMENTS_MAX: usize = 100_000;

/// The store data of one guest: WASI, the memory limiter and the `xdv` host state.
pub(crate) struct VhmState {
    wasi: WasiP1Ctx,
    limiter: MemoryLimiter,
    host: Host,
}

impl HasHost for VhmState {
    fn host(&mut self) -> &mut Host {
        &mut self.host
    }
}

/// The per-VHM memory limit.
struct MemoryLimiter {
    memory_bytes_max: u64,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired as u64 > self.memory_bytes_max {
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                desired_bytes: desired as u64,
                limit_bytes: self.memory_bytes_max,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= TABLE_ELEMENTS_MAX)
    }
}

/// A clock that always reads the same instant: the UNIX epoch, monotonic time 0.
struct FixedClock;

impl HostWallClock for FixedClock {
    fn resolution(&self) -> Duration {
        Duration::from_nanos(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

impl HostMonotonicClock for FixedClock {
    fn resolution(&self) -> u64 {
        1
    }
    fn now(&self) -> u64 {
        0
    }
}

/// WASI's random source: the pinned ChaCha8 generator seeded from the run's seed.
struct SeededRandom(rand_chacha::ChaCha8Rng);

impl rand_core_wasi::TryRng for SeededRandom {
    type Error = std::convert::Infallible;
    fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
        Ok(rand_core::RngCore::next_u32(&mut self.0))
    }
    fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
        Ok(rand_core::RngCore::next_u64(&mut self.0))
    }
    fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
        rand_core::RngCore::fill_bytes(&mut self.0, dst);
        Ok(())
    }
}

fn seeded(seed: u64, stream: u64) -> SeededRandom {
    let mut r = <rand_chacha::ChaCha8Rng as rand_core::SeedableRng>::seed_from_u64(seed);
    r.set_stream(stream);
    SeededRandom(r)
}

/// A compiled guest, linked against WASI preview 1 and `xdv` v1.
#[derive(Clone)]
pub struct Guest {
    pre: Result<InstancePre<VhmState>, TrapInfo>,
}

impl Guest {
    /// The link error of a module that imports what the sandbox does not provide.
    pub fn link_error(&self) -> Option<&TrapInfo> {
        self.pre.as_ref().err()
    }
}

/// Where a guest's Q and Φ jobs run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum JobMode {
    /// Each job runs on the embedded simulator when the guest submits it ([`jobs::run_q`],
    /// [`jobs::run_phi`]); `await_next` never blocks. What `xdv k run` does.
    #[default]
    Inline,
    /// Submissions are handed to the session's driver ([`Session::take_submitted`]), which runs
    /// them (through the hypervisor's Q and Φ schedulers) and delivers their results with
    /// [`Session::complete`]; a guest awaiting a job whose result has not arrived blocks, its slice
    /// ending with [`Slice::Blocked`]. The guest's report is the one [`JobMode::Inline`] gives once
    /// the driver has completed every job as [`jobs::run_q`] and [`jobs::run_phi`] would.
    External,
}

/// A job an [`JobMode::External`] guest submitted, for the driver to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Submitted {
    /// The guest (its index in the session).
    pub guest: usize,
    /// The job's id (the guest's handle: 0, 1, … in its submission order).
    pub job: u32,
    /// Its domain.
    pub domain: Domain,
    /// The request as the guest wrote it: a Q request (JSON, [`jobs::parse_q`]) or a Φ program
    /// ([`jobs::phi_request_check`]).
    pub request: Vec<u8>,
    /// The job's default seed, [`jobs::job_seed`] of the guest's seed and the job id (a Q
    /// request's own `seed` field overrides it).
    pub seed: u64,
}

/// How to run one guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunConfig {
    /// The seed of WASI randomness and of the jobs' seeds.
    pub seed: u64,
    /// The guest's limits.
    pub limits: Limits,
    /// Its command-line arguments (WASI `args_get`; the first is the program name).
    pub args: Vec<String>,
    /// What the guest reads on stdin (empty by default).
    pub stdin: Vec<u8>,
    /// Where its Q and Φ jobs run ([`JobMode::Inline`] by default).
    pub jobs: JobMode,
}

impl Default for RunConfig {
    fn default() -> Self {
        RunConfig {
            seed: 1,
            limits: Limits::default(),
            args: vec!["guest".to_string()],
            stdin: Vec::new(),
            jobs: JobMode::Inline,
        }
    }
}

/// How a guest ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// `_start` returned, or the guest called `proc_exit(0)`.
    Ok,
    /// The guest trapped (see the report's trap).
    Trap,
}

/// What one guest did: how it ended, the fuel and slices it took, its captured output, its jobs
/// and its log.
#[derive(Clone, Debug, PartialEq)]
pub struct GuestReport {
    /// How it ended.
    pub exit: Exit,
    /// The trap, when it trapped.
    pub trap: Option<TrapInfo>,
    /// Fuel units consumed.
    pub fuel_consumed: u64,
    /// Slices it ran in (1 when it finished in its first slice; 0 when it never started).
    pub slices: u64,
    /// Its voluntary yields (`xdv.yield`, WASI `sched_yield`).
    pub yields: u64,
    /// Captured stdout (at most `stdout_bytes_max` bytes).
    pub stdout: Vec<u8>,
    /// Captured stderr (at most `stderr_bytes_max` bytes).
    pub stderr: Vec<u8>,
    /// Its jobs, in submission order. In [`JobMode::External`], a job whose result had not
    /// arrived when the guest ended reads `ok: false` with the error [`abi::PENDING_AT_END`] until
    /// the driver completes it ([`Session::complete`] updates the report).
    pub jobs: Vec<JobRecord>,
    /// Its log lines.
    pub log: Vec<LogLine>,
    /// Log bytes dropped past `log_bytes_max`.
    pub log_dropped_bytes: u64,
    /// IPC messages it sent.
    pub messages_sent: u64,
}

impl GuestReport {
    /// The report of a guest that never ran (a malformed module, a failed setup).
    pub fn not_run(kind: TrapKind, message: String) -> GuestReport {
        GuestReport {
            exit: Exit::Trap,
            trap: Some(TrapInfo { kind, message }),
            fuel_consumed: 0,
            slices: 0,
            yields: 0,
            stdout: Vec::new(),
            stderr: Vec::new(),
            jobs: Vec::new(),
            log: Vec::new(),
            log_dropped_bytes: 0,
            messages_sent: 0,
        }
    }

    /// The report as the JSON document `xdv k run --json` prints.
    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "exit": match self.exit { Exit::Ok => "ok", Exit::Trap => "trap" },
            "trap": self.trap,
            "fuel_consumed": self.fuel_consumed,
            "slices": self.slices,
            "yields": self.yields,
            "stdout": String::from_utf8_lossy(&self.stdout),
            "stderr": String::from_utf8_lossy(&self.stderr),
            "jobs": self.jobs,
            "log": self.log,
            "log_dropped_bytes": self.log_dropped_bytes,
            "messages_sent": self.messages_sent,
        })
    }
}

/// A channel of a run: a bidirectional queue pair between two guests (by index). Each guest's
/// endpoints get handles 0, 1, … in the order of the run's channel list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channel {
    /// One end's guest.
    pub a: usize,
    /// The other end's guest (may equal `a`: a loopback).
    pub b: usize,
}

/// The sandbox: an engine configured for deterministic, metered execution and a linker holding
/// WASI preview 1 and `xdv` v1.
pub struct Sandbox {
    engine: Engine,
    linker: Linker<VhmState>,
    limits: EngineLimits,
}

type GuestFuture = Pin<Box<dyn Future<Output = (Store<VhmState>, wasmtime::Result<()>)> + Send>>;

struct GuestStore {
    store: Store<VhmState>,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
}

struct Running {
    fut: Option<GuestFuture>,
    polls: u64,
    /// Polls a running guest may take: one per fuel slice, plus its voluntary yields and the
    /// slices in which it was blocked.
    polls_fuel_max: u64,
    /// Its jobs and counters, shared with its host functions.
    shared: Arc<Mutex<Shared>>,
    limits: Limits,
    stdout: MemoryOutputPipe,
    stderr: MemoryOutputPipe,
    report: Option<GuestReport>,
}

/// Guests started together (sharing their channels), each driven one slice at a time.
pub struct Session {
    running: Vec<Running>,
    channels: Arc<Mutex<Channels>>,
    ends: Vec<[usize; 2]>,
    submitted: Arc<Mutex<Vec<Submitted>>>,
}

/// A message one guest queued for another, as [`Session::take_sent`] reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentMessage {
    /// The channel (its index in the session's channel list).
    pub channel: usize,
    /// The sending guest.
    pub from: usize,
    /// The receiving guest.
    pub to: usize,
    /// The bytes.
    pub payload: Vec<u8>,
}

/// A message the driver's send check refused ([`Session::take_denied`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeniedSend {
    /// The channel (its index in the session's channel list).
    pub channel: usize,
    /// The sending guest.
    pub from: usize,
    /// The message's length, bytes.
    pub bytes: usize,
}

/// What one slice of a guest did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slice {
    /// It was preempted (its slice's fuel ran out, or it yielded) and can run again.
    Preempted,
    /// It ended in this slice (or had ended before): its report is ready.
    Ended,
    /// ([`JobMode::External`] only.) It called `await_next` and the job due (the lowest-id one
    /// not yet delivered) has no result yet: the slice ended there. Polled again before
    /// [`Session::complete`] delivers that job, it blocks again at once, running nothing.
    Blocked {
        /// The fuel of this slice the guest did not use: `fuel_per_slice` (at most the fuel it
        /// has left) less what it ran since the slice began — the whole slice when it was
        /// already blocked. Fuel a preempted slice ran past its `fuel_per_slice` (a fuel check
        /// lands a few units late) is taken off the next fuel returned, so that the fuel charged,
        /// `fuel_per_slice` per slice less `fuel_unused` of blocked slices, equals the fuel the
        /// guest consumed (voluntary yields aside: their slices' rest is not returned). 0 without
        /// fuel metering.
        fuel_unused: u64,
    },
}

impl Session {
    /// Guests in the session.
    pub fn len(&self) -> usize {
        self.running.len()
    }

    /// Whether the session has no guests.
    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Whether guest `i` has ended (an unknown index counts as ended).
    pub fn is_done(&self, i: usize) -> bool {
        self.running.get(i).is_none_or(|r| r.fut.is_none())
    }

    /// Runs guest `i` for one slice: until its slice's fuel (`fuel_per_slice`) runs out, it
    /// yields, it blocks waiting for a job ([`JobMode::External`]), or it ends.
    pub fn slice(&mut self, i: usize) -> Slice {
        let Some(r) = self.running.get_mut(i) else {
            return Slice::Ended;
        };
        let Some(fut) = r.fut.as_mut() else {
            return Slice::Ended;
        };
        let mut cx = Context::from_waker(Waker::noop());
        r.polls += 1;
        {
            let mut shared = lock(&r.shared);
            shared.polls = r.polls;
            shared.blocked = None;
        }
        match fut.as_mut().poll(&mut cx) {
            Poll::Ready((store, result)) => {
                r.fut = None;
                r.report = Some(finish(store, result, r.polls, &r.stdout, &r.stderr));
                Slice::Ended
            }
            Poll::Pending => {
                let (blocked, allowed) = {
                    let shared = lock(&r.shared);
                    (
                        shared.blocked,
                        r.polls_fuel_max
                            .saturating_add(shared.yields)
                            .saturating_add(shared.blocks),
                    )
                };
                if let Some(fuel_unused) = blocked {
                    return Slice::Blocked { fuel_unused };
                }
                if r.polls > allowed {
                    r.fut = None;
                    let mut rep = GuestReport::not_run(
                        TrapKind::Blocked,
                        format!("the guest was preempted {} times without ending: more slices than its fuel allows (a host call that never completes)", r.polls),
                    );
                    rep.slices = r.polls;
                    rep.stdout = r.stdout.contents().to_vec();
                    rep.stderr = r.stderr.contents().to_vec();
                    r.report = Some(rep);
                    return Slice::Ended;
                }
                Slice::Preempted
            }
        }
    }

    /// Every job submitted by the session's [`JobMode::External`] guests since the last call, in
    /// the order they were submitted (across guests, as the slices ran). The driver runs each one
    /// and delivers its result with [`Session::complete`].
    pub fn take_submitted(&mut self) -> Vec<Submitted> {
        std::mem::take(&mut *lock(&self.submitted))
    }

    /// Delivers the result of job `job` of guest `guest` (a [`JobMode::External`] guest): the
    /// guest's `await_next` returns it in job-id order, unblocking the guest if it was waiting
    /// for it. The outcome is what [`jobs::run_q`] / [`jobs::run_phi`] (or
    /// [`jobs::run_parsed_q`] on a device) returns; a result longer than the guest's
    /// `result_bytes_max` is replaced by a `result_too_large` error result, as at submission.
    /// A guest that has ended has its report's record of the job updated. An unknown guest or
    /// job, or a job that already has its result, is refused and changes nothing.
    pub fn complete(
        &mut self,
        guest: usize,
        job: u32,
        outcome: JobOutcome,
    ) -> Result<(), CompleteError> {
        let guests = self.running.len();
        let r = self
            .running
            .get_mut(guest)
            .ok_or(CompleteError::UnknownGuest { guest, guests })?;
        let ended = r.fut.is_none();
        let record = lock(&r.shared)
            .jobs
            .complete(guest, job, outcome, &r.limits, !ended)?;
        if let Some(slot) = r
            .report
            .as_mut()
            .and_then(|rep| rep.jobs.get_mut(job as usize))
        {
            *slot = record;
        }
        Ok(())
    }

    /// Jobs guest `i` submitted whose results the driver has not delivered yet (0 for an
    /// unknown guest, and always 0 in [`JobMode::Inline`]).
    pub fn jobs_pending(&self, i: usize) -> usize {
        self.running
            .get(i)
            .map_or(0, |r| lock(&r.shared).jobs.pending())
    }

    /// The messages queued since the last call, in the order they were sent (so that a driver
    /// can record each one, e.g. by hash in its trace).
    pub fn take_sent(&mut self) -> Vec<SentMessage> {
        let sent = match self.channels.lock() {
            Ok(mut c) => std::mem::take(&mut c.sent),
            Err(_) => Vec::new(),
        };
        sent.into_iter()
            .filter_map(|(channel, side, payload)| {
                let ends = self.ends.get(channel)?;
                Some(SentMessage {
                    channel,
                    from: ends[side],
                    to: ends[1 - side],
                    payload,
                })
            })
            .collect()
    }

    /// Sets the driver's check of every message a guest sends, before it is queued (a refused
    /// send returns `E_DENIED` to the guest and is reported by [`Session::take_denied`]).
    pub fn set_send_check(&mut self, check: Option<abi::SendCheck>) {
        if let Ok(mut c) = self.channels.lock() {
            c.send_check = check;
        }
    }

    /// The sends the driver's check refused since the last call, in order.
    pub fn take_denied(&mut self) -> Vec<DeniedSend> {
        let denied = match self.channels.lock() {
            Ok(mut c) => std::mem::take(&mut c.denied),
            Err(_) => Vec::new(),
        };
        denied
            .into_iter()
            .filter_map(|(channel, side, bytes)| {
                let ends = self.ends.get(channel)?;
                Some(DeniedSend {
                    channel,
                    from: ends[side],
                    bytes,
                })
            })
            .collect()
    }

    /// Guest `i`'s report, once it has ended.
    pub fn report(&self, i: usize) -> Option<&GuestReport> {
        self.running.get(i).and_then(|r| r.report.as_ref())
    }

    /// Every guest's report, in order (a guest that has not ended gets a `host` trap report
    /// saying so).
    pub fn into_reports(self) -> Vec<GuestReport> {
        self.running
            .into_iter()
            .map(|r| {
                r.report.unwrap_or_else(|| {
                    GuestReport::not_run(TrapKind::Host, "the guest had not ended".into())
                })
            })
            .collect()
    }
}

impl Sandbox {
    /// A sandbox with `limits` (stack, memory ceiling, pool slots).
    pub fn new(limits: EngineLimits) -> Result<Sandbox, KError> {
        if limits.guests_at_once_max == 0 {
            return Err(KError::Limit {
                name: "guests_at_once_max",
                value: 0,
                why: "at least 1".into(),
            });
        }
        let mut pool = PoolingAllocationConfig::new();
        pool.total_core_instances(limits.guests_at_once_max)
            .total_memories(limits.guests_at_once_max)
            .total_tables(limits.guests_at_once_max)
            .total_stacks(limits.guests_at_once_max)
            .total_component_instances(0)
            .max_memory_size(limits.memory_bytes_ceiling)
            .table_elements(TABLE_ELEMENTS_MAX);
        let mut config = Config::new();
        config
            .consume_fuel(limits.fuel_metering)
            .cranelift_nan_canonicalization(true)
            .relaxed_simd_deterministic(true)
            .max_wasm_stack(limits.stack_bytes_max)
            .async_stack_size(limits.stack_bytes_max + (1 << 20))
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        let engine = Engine::new(&config).map_err(|e| KError::Engine(format!("{e:#}")))?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut VhmState| &mut s.wasi)
            .map_err(|e| KError::Engine(format!("{e:#}")))?;
        abi::add_to_linker(&mut linker).map_err(|e| KError::Engine(format!("{e:#}")))?;
        Ok(Sandbox {
            engine,
            linker,
            limits,
        })
    }

    /// The sandbox's engine limits.
    pub fn limits(&self) -> EngineLimits {
        self.limits
    }

    /// Compiles a guest from WebAssembly binary or text bytes. A malformed module is a
    /// [`TrapKind::MalformedModule`]; one whose imports the sandbox cannot satisfy compiles, and
    /// its runs trap [`TrapKind::Link`].
    pub fn compile(&self, bytes: &[u8]) -> Result<Guest, TrapInfo> {
        let module = Module::new(&self.engine, bytes).map_err(|e| TrapInfo {
            kind: TrapKind::MalformedModule,
            message: format!("{e:#}"),
        })?;
        let pre = self.linker.instantiate_pre(&module).map_err(|e| TrapInfo {
            kind: TrapKind::Link,
            message: format!(
                "{e:#} (a guest may import only wasi_snapshot_preview1 and xdv v1, see docs/abi.md)"
            ),
        });
        Ok(Guest { pre })
    }

    /// Runs one guest to its end.
    pub fn run(&self, guest: &Guest, cfg: &RunConfig) -> Result<GuestReport, KError> {
        let mut reports = self.run_many(&[(guest, cfg.clone())], &[])?;
        Ok(reports.pop().unwrap_or_else(|| {
            GuestReport::not_run(TrapKind::Host, "the run produced no report".into())
        }))
    }

    /// Runs several guests at once, connected by `channels`: round-robin in their order, one slice
    /// each in turn, until all have ended. A guest's trap ends that guest alone. The reports come
    /// in the guests' order. [`JobMode::External`] guests get their jobs run after the round in
    /// which they were submitted (the reports are those of [`JobMode::Inline`]).
    pub fn run_many(
        &self,
        guests: &[(&Guest, RunConfig)],
        channels: &[Channel],
    ) -> Result<Vec<GuestReport>, KError> {
        let mut session = self.session(guests, channels)?;
        loop {
            let mut live = false;
            for i in 0..session.len() {
                if !session.is_done(i) {
                    live = true;
                    session.slice(i);
                }
            }
            // Nobody records the messages of a plain run: keep the log from growing.
            drop(session.take_sent());
            // External guests' jobs: this loop is their driver, running each after the round in
            // which it was submitted.
            for sub in session.take_submitted() {
                let limits = session.running.get(sub.guest).map(|r| r.limits);
                if let Some(limits) = limits {
                    let outcome = match sub.domain {
                        Domain::Q => jobs::run_q(&sub.request, sub.seed, &limits),
                        Domain::Phi => jobs::run_phi(&sub.request, sub.seed, &limits),
                    };
                    // A refusal cannot happen for a fresh submission; nothing to undo if it did.
                    let _ = session.complete(sub.guest, sub.job, outcome);
                }
            }
            if !live {
                break;
            }
        }
        Ok(session.into_reports())
    }

    /// Starts several guests connected by `channels` without running them: the caller drives
    /// each one slice at a time with [`Session::slice`], in whatever order its scheduler decides
    /// (the hypervisor runs the slices its core dispatches). [`Sandbox::run_many`] is a session
    /// driven round-robin.
    pub fn session(
        &self,
        guests: &[(&Guest, RunConfig)],
        channels: &[Channel],
    ) -> Result<Session, KError> {
        if guests.len() > self.limits.guests_at_once_max as usize {
            return Err(KError::TooManyGuests {
                guests: guests.len(),
                slots: self.limits.guests_at_once_max,
            });
        }
        for (_, cfg) in guests {
            self.check(&cfg.limits)?;
        }
        let mut endpoints: Vec<Vec<Endpoint>> = vec![Vec::new(); guests.len()];
        for (i, ch) in channels.iter().enumerate() {
            for (side, g) in [ch.a, ch.b].into_iter().enumerate() {
                match endpoints.get_mut(g) {
                    Some(list) => list.push(Endpoint { channel: i, side }),
                    None => {
                        return Err(KError::Channel {
                            index: i,
                            guest: g,
                            guests: guests.len(),
                        })
                    }
                }
            }
        }
        let table = Arc::new(Mutex::new(Channels::new(channels.len())));
        let submitted = Arc::new(Mutex::new(Vec::new()));
        let running: Vec<Running> = guests
            .iter()
            .zip(endpoints)
            .enumerate()
            .map(|(i, ((guest, cfg), endpoints))| {
                let links = HostLinks {
                    guest: i,
                    endpoints,
                    channels: table.clone(),
                    submitted: submitted.clone(),
                    shared: Arc::new(Mutex::new(Shared::default())),
                };
                self.start(guest, cfg, links)
            })
            .collect();
        Ok(Session {
            running,
            channels: table,
            ends: channels.iter().map(|c| [c.a, c.b]).collect(),
            submitted,
        })
    }

    /// Sets up a guest's store (WASI, limiter, ABI state, fuel) and instantiates it from the
    /// pool, without running it: what starting a guest costs, for the benchmark.
    pub fn instantiate_only(&self, guest: &Guest, cfg: &RunConfig) -> Result<(), TrapInfo> {
        let pre = guest.pre.as_ref().map_err(Clone::clone)?;
        let links = HostLinks {
            guest: 0,
            endpoints: Vec::new(),
            channels: Arc::new(Mutex::new(Channels::new(0))),
            submitted: Arc::new(Mutex::new(Vec::new())),
            shared: Arc::new(Mutex::new(Shared::default())),
        };
        let mut store = self.store(cfg, links)?.store;
        let mut cx = Context::from_waker(Waker::noop());
        let mut fut = std::pin::pin!(pre.instantiate_async(&mut store));
        loop {
            if let Poll::Ready(res) = fut.as_mut().poll(&mut cx) {
                return res.map(|_| ()).map_err(|e| {
                    classify(&e).unwrap_or(TrapInfo {
                        kind: TrapKind::Host,
                        message: format!("{e:#}"),
                    })
                });
            }
        }
    }

    fn check(&self, l: &Limits) -> Result<(), KError> {
        if l.fuel_per_slice == 0 {
            return Err(KError::Limit {
                name: "fuel_per_slice",
                value: 0,
                why: "at least 1 fuel unit".into(),
            });
        }
        if l.memory_bytes_max > self.limits.memory_bytes_ceiling as u64 {
            return Err(KError::Limit {
                name: "memory_bytes_max",
                value: l.memory_bytes_max,
                why: format!(
                    "at most the sandbox's ceiling of {} bytes",
                    self.limits.memory_bytes_ceiling
                ),
            });
        }
        Ok(())
    }

    /// A guest's store, with its captured output.
    fn store(&self, cfg: &RunConfig, links: HostLinks) -> Result<GuestStore, TrapInfo> {
        let l = cfg.limits;
        let cap = |n: u64| usize::try_from(n).unwrap_or(usize::MAX);
        let stdout = MemoryOutputPipe::new(cap(l.stdout_bytes_max));
        let stderr = MemoryOutputPipe::new(cap(l.stderr_bytes_max));
        let host = Host::new(cfg.seed, l, cfg.jobs, links);
        let wasi = WasiCtxBuilder::new()
            .stdin(MemoryInputPipe::new(cfg.stdin.clone()))
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .args(&cfg.args)
            .wall_clock(FixedClock)
            .monotonic_clock(FixedClock)
            .secure_random(seeded(cfg.seed, 1))
            .insecure_random(seeded(cfg.seed, 2))
            .insecure_random_seed(u128::from(cfg.seed))
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build_p1();
        let state = VhmState {
            wasi,
            limiter: MemoryLimiter {
                memory_bytes_max: l.memory_bytes_max,
            },
            host,
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        if self.limits.fuel_metering {
            store
                .set_fuel(l.fuel_max)
                .and_then(|()| store.fuel_async_yield_interval(Some(l.fuel_per_slice)))
                .map_err(|e| TrapInfo {
                    kind: TrapKind::Host,
                    message: format!("{e:#}"),
                })?;
        }
        Ok(GuestStore {
            store,
            stdout,
            stderr,
        })
    }

    fn start(&self, guest: &Guest, cfg: &RunConfig, links: HostLinks) -> Running {
        let l = cfg.limits;
        // A guest that runs is preempted at most once per fuel slice, plus once per voluntary
        // yield (and a blocked guest once per slice it is blocked in); more polls than that mean a
        // host call that never completes.
        let polls_fuel_max = (l.fuel_max / l.fuel_per_slice).saturating_add(2);
        let shared = links.shared.clone();
        let failed = |t: &TrapInfo| Running {
            fut: None,
            polls: 0,
            polls_fuel_max,
            shared: shared.clone(),
            limits: l,
            stdout: MemoryOutputPipe::new(0),
            stderr: MemoryOutputPipe::new(0),
            report: Some(GuestReport::not_run(t.kind, t.message.clone())),
        };
        let pre = match &guest.pre {
            Ok(pre) => pre.clone(),
            Err(t) => return failed(t),
        };
        let GuestStore {
            mut store,
            stdout,
            stderr,
        } = match self.store(cfg, links) {
            Ok(s) => s,
            Err(t) => return failed(&t),
        };
        let mut running = Running {
            fut: None,
            polls: 0,
            polls_fuel_max,
            shared,
            limits: l,
            stdout,
            stderr,
            report: None,
        };
        running.fut = Some(Box::pin(async move {
            let result = async {
                let instance = pre.instantiate_async(&mut store).await?;
                let start = instance
                    .get_typed_func::<(), ()>(&mut store, "_start")
                    .map_err(|e| {
                        wasmtime::Error::new(LinkError(format!(
                            "the module exports no `_start` function of type () -> (): {e:#}"
                        )))
                    })?;
                start.call_async(&mut store, ()).await
            }
            .await;
            (store, result)
        }));
        running
    }
}

/// A module that cannot be started (no `_start`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct LinkError(String);

fn finish(
    mut store: Store<VhmState>,
    result: wasmtime::Result<()>,
    polls: u64,
    stdout: &MemoryOutputPipe,
    stderr: &MemoryOutputPipe,
) -> GuestReport {
    let limits = store.data().host.limits;
    let fuel_consumed = match store.get_fuel() {
        Ok(left) => limits.fuel_max.saturating_sub(left),
        Err(_) => 0,
    };
    let (exit, trap) = match result {
        Ok(()) => (Exit::Ok, None),
        Err(e) => match classify(&e) {
            None => (Exit::Ok, None),
            Some(t) => (Exit::Trap, Some(t)),
        },
    };
    let host = &mut store.data_mut().host;
    let (yields, jobs) = {
        let shared = lock(&host.shared);
        (shared.yields, shared.jobs.records.clone())
    };
    GuestReport {
        exit,
        trap,
        fuel_consumed,
        slices: polls,
        yields,
        stdout: stdout.contents().to_vec(),
        stderr: stderr.contents().to_vec(),
        jobs,
        log: std::mem::take(&mut host.log),
        log_dropped_bytes: host.log_dropped_bytes,
        messages_sent: host.messages_sent,
    }
}

/// The trap an error from a guest's run stands for; `None` for `proc_exit(0)`.
fn classify(e: &wasmtime::Error) -> Option<TrapInfo> {
    let t = |kind, message: String| Some(TrapInfo { kind, message });
    if let Some(exit) = e.downcast_ref::<I32Exit>() {
        if exit.0 == 0 {
            return None;
        }
        return t(
            TrapKind::Exit,
            format!("the guest exited with code {}", exit.0),
        );
    }
    if let Some(m) = e.downcast_ref::<AbiMisuse>() {
        return t(TrapKind::AbiMisuse, m.to_string());
    }
    if let Some(m) = e.downcast_ref::<MemoryLimitExceeded>() {
        return t(TrapKind::MemoryLimit, m.to_string());
    }
    if let Some(m) = e.downcast_ref::<LinkError>() {
        return t(TrapKind::Link, m.to_string());
    }
    let frames = e
        .downcast_ref::<wasmtime::WasmBacktrace>()
        .map(|bt| {
            let names: Vec<String> = bt
                .frames()
                .iter()
                .take(4)
                .map(|f| match f.func_name() {
                    Some(n) => n.to_string(),
                    None => format!("func {}", f.func_index()),
                })
                .collect();
            if names.is_empty() {
                String::new()
            } else {
                format!(" (in {})", names.join(" ← "))
            }
        })
        .unwrap_or_default();
    if let Some(trap) = e.downcast_ref::<Trap>() {
        let kind = match trap {
            Trap::OutOfFuel => TrapKind::OutOfFuel,
            Trap::StackOverflow => TrapKind::StackOverflow,
            Trap::UnreachableCodeReached => TrapKind::Unreachable,
            Trap::MemoryOutOfBounds => TrapKind::MemoryOutOfBounds,
            Trap::IntegerDivisionByZero => TrapKind::IntegerDivideByZero,
            Trap::IntegerOverflow => TrapKind::IntegerOverflow,
            Trap::BadConversionToInteger => TrapKind::BadConversionToInteger,
            Trap::TableOutOfBounds | Trap::IndirectCallToNull | Trap::BadSignature => {
                TrapKind::IndirectCall
            }
            _ => TrapKind::Wasm,
        };
        let hint = match kind {
            TrapKind::OutOfFuel => " (raise --fuel, or look for an endless loop)",
            TrapKind::StackOverflow => " (deep or endless recursion)",
            TrapKind::Unreachable => " (a Rust guest's panic lands here: see its stderr)",
            _ => "",
        };
        return t(kind, format!("{trap}{frames}{hint}"));
    }
    let text = format!("{e:#}");
    // WASI functions refuse out-of-bounds guest pointers with a trap of their own.
    if text.contains("out of bounds") || text.contains("Pointer not aligned") {
        let last = text.lines().last().unwrap_or("").trim().to_string();
        return t(
            TrapKind::AbiMisuse,
            format!("a WASI call was passed a bad pointer or length: {last}"),
        );
    }
    if text.contains("incompatible import type")
        || text.contains("unknown import")
        || text.contains("instantiat")
    {
        return t(TrapKind::Link, text);
    }
    t(TrapKind::Host, text)
}
