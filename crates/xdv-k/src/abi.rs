//! The host side of ABI `xdv` v1 (specified byte for byte in `docs/abi.md`): the functions a
//! guest imports from module `"xdv"`, the per-guest host state behind them, and the IPC
//! channels that connect guests of one run.
//!
//! Every pointer and length a guest passes is checked against its linear memory before it is
//! used; a misuse (out-of-bounds range, over-long request, unknown handle, bad level) returns an
//! [`AbiMisuse`] error, which traps that guest alone with kind `abi_misuse`. Recoverable
//! conditions return a negative status code ([`E_NONE`], [`E_BUSY`], [`E_TOO_SMALL`]); job
//! requests that are the guest's mistake complete with an error result (see [`crate::jobs`]).

use crate::error::{AbiMisuse, CompleteError};
use crate::jobs::{self, Domain, JobOutcome};
use crate::limits::Limits;
use crate::sandbox::{JobMode, Submitted};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use wasmtime::{Caller, Extern, Linker};

/// ABI version, as guests may check with `xdv.abi_version`.
pub const ABI_VERSION: i32 = 1;
/// Status: nothing to deliver (no job in flight awaiting delivery; no message queued).
pub const E_NONE: i32 = -1;
/// Status: a limit is reached for now (jobs in flight, queued messages); retry later.
pub const E_BUSY: i32 = -2;
/// Status: the buffer is smaller than the message (which stays queued); see `chan_peek_len`.
pub const E_TOO_SMALL: i32 = -3;
/// Status: the driver's boundary check refused the message (the guest's capability token does
/// not allow it); nothing was queued.
pub const E_DENIED: i32 = -4;

/// A driver's check of every message before it is queued: `(sending guest, channel, bytes)`
/// → allowed. The hypervisor checks the sender's capability token here.
pub type SendCheck = Arc<dyn Fn(usize, usize, usize) -> bool + Send + Sync>;

/// Log levels accepted by `xdv.log` (0 = trace … 4 = error).
pub const LOG_LEVELS: [&str; 5] = ["trace", "debug", "info", "warn", "error"];

/// One line the guest logged with `xdv.log`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LogLine {
    /// Its level's name.
    pub level: &'static str,
    /// Its text (invalid UTF-8 replaced by U+FFFD).
    pub text: String,
}

/// What the report keeps of one job.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct JobRecord {
    /// The job's handle (its id: 0, 1, … in submission order).
    pub id: u32,
    /// Its domain.
    pub domain: Domain,
    /// Whether it succeeded.
    pub ok: bool,
    /// The error message of a failed job.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Bytes of its result document.
    pub result_bytes: usize,
}

/// The error text of a job whose result had not arrived when its guest ended (External mode);
/// [`crate::Session::complete`] replaces the record when the result arrives.
pub const PENDING_AT_END: &str =
    "pending: the guest ended before the job's result arrived (the driver has not completed it)";

impl JobRecord {
    fn of(id: u32, domain: Domain, outcome: &JobOutcome) -> JobRecord {
        JobRecord {
            id,
            domain,
            ok: outcome.ok,
            error: outcome.error.clone(),
            result_bytes: outcome.result.len(),
        }
    }
}

struct JobSlot {
    delivered: bool,
    /// `None` until the driver completes the job (External mode).
    result: Option<Vec<u8>>,
}

/// A guest's jobs: the ones it holds (submitted, not released), their records in submission
/// order, and the ones still waiting for their result.
#[derive(Default)]
pub(crate) struct JobTable {
    next: u32,
    slots: BTreeMap<u32, JobSlot>,
    pub(crate) records: Vec<JobRecord>,
    pending: BTreeSet<u32>,
}

impl JobTable {
    /// Jobs submitted and not yet completed.
    pub(crate) fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Delivers a job's result (External mode). `keep` false (the guest has ended) records the
    /// outcome without keeping the result bytes, which no one can read any more.
    pub(crate) fn complete(
        &mut self,
        guest: usize,
        job: u32,
        outcome: JobOutcome,
        limits: &Limits,
        keep: bool,
    ) -> Result<JobRecord, CompleteError> {
        if job >= self.next {
            return Err(CompleteError::UnknownJob {
                guest,
                job,
                submitted: self.next,
            });
        }
        let (Some(record), true) = (
            self.records.get_mut(job as usize),
            self.pending.contains(&job),
        ) else {
            return Err(CompleteError::AlreadyCompleted { guest, job });
        };
        self.pending.remove(&job);
        let outcome = jobs::cap_result(record.domain, outcome, limits);
        *record = JobRecord::of(job, record.domain, &outcome);
        let record = record.clone();
        if let Some(slot) = self.slots.get_mut(&job) {
            slot.result = keep.then_some(outcome.result);
        }
        Ok(record)
    }
}

/// What the guest's host functions and its session both reach while the guest runs (the store
/// itself is inside the guest's future): its jobs, its counters and whether it blocked.
#[derive(Default)]
pub(crate) struct Shared {
    /// The guest's polls so far, the current one included (set by the session before a poll).
    pub(crate) polls: u64,
    /// Voluntary yields (the scheduler tells a yield from a stuck guest with them).
    pub(crate) yields: u64,
    /// Slices that ended with the guest blocked in `await_next`.
    pub(crate) blocks: u64,
    /// Set when the current slice ends with the guest blocked: the slice's unused fuel.
    pub(crate) blocked: Option<u64>,
    /// The guest's jobs.
    pub(crate) jobs: JobTable,
}

/// Locks a guest's shared state (a poisoned lock is taken over: its data stays consistent, every
/// update under it being a few plain assignments).
pub(crate) fn lock<S>(m: &Mutex<S>) -> MutexGuard<'_, S> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The fuel model of External mode: which part of the current slice a guest that blocks has not
/// used. The core charges every slice `fuel_per_slice`; wasmtime gives the guest its fuel in
/// chunks of that size, refilled at each fuel yield. Since its last *base* (its start, or a
/// resumption after a block or a yield) the guest was given `base_avail` in its first slice and
/// `fuel_per_slice` in each one after; what it has not used of that is the unused part of the
/// current slice. A fuel check lands a few units past the end of a chunk (the cost of the block
/// it ends), so a slice may use slightly more than it was given: that excess is a `debt` taken off
/// the next fuel returned, so that the fuel charged (slices given less fuel returned) equals the
/// fuel used.
#[derive(Clone, Copy, Debug)]
struct Meter {
    base_fuel: u64,
    base_poll: u64,
    base_avail: u64,
    debt: u64,
}

impl Meter {
    fn new(limits: &Limits) -> Meter {
        Meter {
            base_fuel: limits.fuel_max,
            base_poll: 1,
            base_avail: limits.fuel_per_slice.min(limits.fuel_max),
            debt: 0,
        }
    }

    /// Fuel given since the base less fuel used (negative: used past what was given).
    fn balance(&self, fuel_per_slice: u64, fuel: u64, poll: u64) -> i128 {
        let given = i128::from(poll.saturating_sub(self.base_poll))
            .saturating_mul(i128::from(fuel_per_slice))
            .saturating_add(i128::from(self.base_avail));
        given.saturating_sub(i128::from(self.base_fuel.saturating_sub(fuel)))
    }

    /// The unused fuel of the current slice (at most the slice, at most the fuel left) when the
    /// guest blocks with `fuel` left in poll `poll`; settles the debt first.
    fn block(&mut self, fuel_per_slice: u64, fuel: u64, poll: u64) -> u64 {
        let balance = self.balance(fuel_per_slice, fuel, poll);
        let cap = fuel_per_slice.min(fuel);
        let unused = u64::try_from(balance.clamp(0, i128::from(cap))).unwrap_or(0);
        let owed = self
            .debt
            .saturating_add(u64::try_from(-balance.min(0)).unwrap_or(u64::MAX));
        let paid = unused.min(owed);
        self.debt = owed - paid;
        unused - paid
    }

    /// What is left of the current chunk by the model (for a yield, whose slice keeps its chunk).
    fn left(&self, fuel_per_slice: u64, fuel: u64, poll: u64) -> u64 {
        let cap = fuel_per_slice.min(fuel);
        u64::try_from(
            self.balance(fuel_per_slice, fuel, poll)
                .clamp(0, i128::from(cap)),
        )
        .unwrap_or(0)
    }

    fn rebase(&mut self, fuel: u64, poll: u64, avail: u64) {
        self.base_fuel = fuel;
        self.base_poll = poll;
        self.base_avail = avail;
    }
}

/// Both directions of the channels of one run: `queues[c][s]` holds the messages waiting for
/// side `s` of channel `c`.
#[derive(Default)]
pub(crate) struct Channels {
    queues: Vec<[VecDeque<Vec<u8>>; 2]>,
    /// Every message queued, in order, until the driver takes them (`Session::take_sent`):
    /// (channel, the sender's side, the bytes).
    pub(crate) sent: Vec<(usize, usize, Vec<u8>)>,
    /// The driver's check of each message, if it set one.
    pub(crate) send_check: Option<SendCheck>,
    /// Messages the check refused, until the driver takes them (`Session::take_denied`):
    /// (channel, the sender's side, the message's length).
    pub(crate) denied: Vec<(usize, usize, usize)>,
}

impl Channels {
    pub(crate) fn new(count: usize) -> Channels {
        Channels {
            queues: (0..count)
                .map(|_| [VecDeque::new(), VecDeque::new()])
                .collect(),
            sent: Vec::new(),
            send_check: None,
            denied: Vec::new(),
        }
    }
}

/// One end of a channel held by a guest: its handle is its position in the guest's list.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Endpoint {
    pub(crate) channel: usize,
    pub(crate) side: usize,
}

/// The per-guest state behind the ABI.
pub(crate) struct Host {
    pub(crate) seed: u64,
    pub(crate) limits: Limits,
    mode: JobMode,
    /// The guest's index in its session (for [`Submitted::guest`]).
    guest: usize,
    /// The session's submissions not yet taken by the driver (External mode).
    submitted: Arc<Mutex<Vec<Submitted>>>,
    /// Jobs and counters, shared with the session.
    pub(crate) shared: Arc<Mutex<Shared>>,
    meter: Meter,
    pub(crate) log: Vec<LogLine>,
    log_bytes: u64,
    pub(crate) log_dropped_bytes: u64,
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) channels: Arc<Mutex<Channels>>,
    pub(crate) messages_sent: u64,
}

/// Where a guest's host state connects to its session.
pub(crate) struct HostLinks {
    /// The guest's index in the session.
    pub(crate) guest: usize,
    /// Its channel ends.
    pub(crate) endpoints: Vec<Endpoint>,
    /// The session's channels.
    pub(crate) channels: Arc<Mutex<Channels>>,
    /// The session's queue of submissions.
    pub(crate) submitted: Arc<Mutex<Vec<Submitted>>>,
    /// The guest's shared state.
    pub(crate) shared: Arc<Mutex<Shared>>,
}

/// What `await_next` finds.
enum Next {
    /// Deliver this job.
    Job(i32),
    /// No submitted job awaits delivery.
    None,
    /// The lowest undelivered job has no result yet (External mode): block.
    Pending,
}

impl Host {
    pub(crate) fn new(seed: u64, limits: Limits, mode: JobMode, links: HostLinks) -> Host {
        Host {
            seed,
            limits,
            mode,
            guest: links.guest,
            submitted: links.submitted,
            shared: links.shared,
            meter: Meter::new(&limits),
            log: Vec::new(),
            log_bytes: 0,
            log_dropped_bytes: 0,
            endpoints: links.endpoints,
            channels: links.channels,
            messages_sent: 0,
        }
    }

    fn submit(&mut self, domain: Domain, request: Vec<u8>) -> i32 {
        let id = {
            let mut shared = lock(&self.shared);
            let t = &mut shared.jobs;
            if t.slots.len() >= self.limits.jobs_in_flight_max as usize
                || u64::from(t.next) >= self.limits.jobs_total_max
                || t.next >= i32::MAX as u32
            {
                return E_BUSY;
            }
            let id = t.next;
            t.next += 1;
            id
        };
        let seed = jobs::job_seed(self.seed, id);
        let (record, result) = match self.mode {
            JobMode::Inline => {
                let outcome = match domain {
                    Domain::Q => jobs::run_q(&request, seed, &self.limits),
                    Domain::Phi => jobs::run_phi(&request, seed, &self.limits),
                };
                (JobRecord::of(id, domain, &outcome), Some(outcome.result))
            }
            JobMode::External => {
                let record = JobRecord {
                    id,
                    domain,
                    ok: false,
                    error: Some(PENDING_AT_END.into()),
                    result_bytes: 0,
                };
                lock(&self.submitted).push(Submitted {
                    guest: self.guest,
                    job: id,
                    domain,
                    request,
                    seed,
                });
                (record, None)
            }
        };
        let mut shared = lock(&self.shared);
        let t = &mut shared.jobs;
        if result.is_none() {
            t.pending.insert(id);
        }
        t.records.push(record);
        t.slots.insert(
            id,
            JobSlot {
                delivered: false,
                result,
            },
        );
        id as i32
    }

    fn await_next(&mut self) -> Next {
        let mut shared = lock(&self.shared);
        match shared.jobs.slots.iter_mut().find(|(_, j)| !j.delivered) {
            Some((id, j)) if j.result.is_some() => {
                j.delivered = true;
                Next::Job(*id as i32)
            }
            Some(_) => Next::Pending,
            None => Next::None,
        }
    }

    /// A delivered job's result (a copy of at most `max` bytes of it), and its full length.
    fn delivered(
        &self,
        f: &'static str,
        job: i32,
        max: usize,
    ) -> Result<(Vec<u8>, usize), AbiMisuse> {
        let shared = lock(&self.shared);
        let slot = u32::try_from(job)
            .ok()
            .and_then(|id| shared.jobs.slots.get(&id));
        match slot {
            Some(JobSlot {
                delivered: true,
                result: Some(r),
            }) => Ok((
                r.get(..max.min(r.len()))
                    .map(<[u8]>::to_vec)
                    .unwrap_or_default(),
                r.len(),
            )),
            Some(_) => Err(misuse(
                f,
                format!(
                    "job {job} has not completed yet: call xdv.await_next until it returns {job}"
                ),
            )),
            None => Err(misuse(
                f,
                format!("unknown job handle {job} (never submitted, or already released)"),
            )),
        }
    }

    /// The current poll of the guest (its slices so far, this one included).
    fn poll(&self) -> u64 {
        lock(&self.shared).polls
    }

    fn log(&mut self, level: &'static str, bytes: &[u8]) {
        let n = bytes.len() as u64;
        if self.log_bytes.saturating_add(n) > self.limits.log_bytes_max {
            self.log_dropped_bytes = self.log_dropped_bytes.saturating_add(n);
            return;
        }
        self.log_bytes += n;
        self.log.push(LogLine {
            level,
            text: String::from_utf8_lossy(bytes).into_owned(),
        });
    }

    fn endpoint(&self, f: &'static str, handle: i32) -> Result<Endpoint, AbiMisuse> {
        usize::try_from(handle)
            .ok()
            .and_then(|h| self.endpoints.get(h).copied())
            .ok_or_else(|| {
                misuse(
                    f,
                    format!(
                        "unknown channel handle {handle} (this guest holds {} channel(s), handles 0..{})",
                        self.endpoints.len(),
                        self.endpoints.len()
                    ),
                )
            })
    }
}

fn misuse(function: &'static str, message: impl Into<String>) -> AbiMisuse {
    AbiMisuse {
        function,
        message: message.into(),
    }
}

/// What a store's data must give the ABI.
pub(crate) trait HasHost: Send + 'static {
    fn host(&mut self) -> &mut Host;
}

/// A guest's address range `[ptr, ptr + len)`, checked against its memory of `size` bytes.
fn range(
    f: &'static str,
    ptr: i32,
    len: i32,
    size: usize,
) -> Result<std::ops::Range<usize>, AbiMisuse> {
    let (p, l) = (ptr as u32 as usize, len as u32 as usize);
    match p.checked_add(l) {
        Some(end) if end <= size => Ok(p..end),
        _ => Err(misuse(
            f,
            format!(
                "the range at {p:#x} of {l} bytes lies outside the guest's {size} bytes of linear memory"
            ),
        )),
    }
}

fn memory<T>(f: &'static str, caller: &mut Caller<'_, T>) -> Result<wasmtime::Memory, AbiMisuse> {
    match caller.get_export("memory") {
        Some(Extern::Memory(m)) => Ok(m),
        _ => Err(misuse(f, "the module exports no memory named \"memory\"")),
    }
}

/// Copies `len` bytes at `ptr` out of the guest, refusing more than `max` bytes.
fn read<T>(
    f: &'static str,
    caller: &mut Caller<'_, T>,
    ptr: i32,
    len: i32,
    max: u64,
    what: &str,
) -> Result<Vec<u8>, AbiMisuse> {
    let l = len as u32 as u64;
    if l > max {
        return Err(misuse(
            f,
            format!("the {what} is {l} bytes, past the limit of {max} bytes"),
        ));
    }
    let mem = memory(f, caller)?;
    let data = mem.data(&*caller);
    let r = range(f, ptr, len, data.len())?;
    Ok(data.get(r).map(<[u8]>::to_vec).unwrap_or_default())
}

/// Writes `bytes` into the guest at `ptr` (whose buffer is `cap` bytes; `bytes` fits it).
fn write<T>(
    f: &'static str,
    caller: &mut Caller<'_, T>,
    ptr: i32,
    cap: i32,
    bytes: &[u8],
) -> Result<(), AbiMisuse> {
    let mem = memory(f, caller)?;
    let data = mem.data_mut(&mut *caller);
    let r = range(f, ptr, cap, data.len())?;
    let start = r.start;
    let end = start + bytes.len().min(r.len());
    if let (Some(dst), Some(src)) = (data.get_mut(start..end), bytes.get(..end - start)) {
        dst.copy_from_slice(src);
    }
    Ok(())
}

fn trap(e: AbiMisuse) -> wasmtime::Error {
    wasmtime::Error::new(e)
}

/// A future that is pending once: `xdv.yield` ends the guest's slice with it.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

/// After a block: gives the guest a fresh fuel chunk of `min(fuel_per_slice, fuel left)` (wasmtime
/// refills the chunk only at a fuel yield, so without this the slice after a block would run only
/// what the blocked slice left of its chunk) and makes this point the fuel model's base.
fn resume_after_block<T: HasHost>(caller: &mut Caller<'_, T>) {
    let Ok(fuel) = caller.get_fuel() else {
        return;
    };
    if caller.set_fuel(fuel).is_err() {
        return;
    }
    let host = caller.data_mut().host();
    let poll = host.poll();
    let avail = host.limits.fuel_per_slice.min(fuel);
    host.meter.rebase(fuel, poll, avail);
}

/// `xdv.yield` and WASI `sched_yield`: ends the slice. The guest resumes in the fuel chunk it
/// yielded in (as it always has); in External mode the fuel model follows it there.
async fn voluntary_yield<T: HasHost>(caller: &mut Caller<'_, T>) {
    let external = caller.data_mut().host().mode == JobMode::External;
    let fuel = if external {
        caller.get_fuel().ok()
    } else {
        None
    };
    let host = caller.data_mut().host();
    let fps = host.limits.fuel_per_slice;
    let left = fuel.map(|f| (f, host.meter.left(fps, f, host.poll())));
    lock(&host.shared).yields += 1;
    YieldOnce(false).await;
    if let Some((f, left)) = left {
        let host = caller.data_mut().host();
        let poll = host.poll();
        host.meter.rebase(f, poll, left);
    }
}

/// Adds the `xdv` v1 imports to `linker`; also replaces WASI's `sched_yield` by `xdv.yield` and
/// its `poll_oneoff` (sleeps and waits, which would read a clock) by an `ENOSYS` error.
pub(crate) fn add_to_linker<T: HasHost>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    linker.func_wrap("xdv", "abi_version", || ABI_VERSION)?;
    linker.func_wrap(
        "xdv",
        "q_submit",
        |mut caller: Caller<'_, T>, ptr: i32, len: i32| -> wasmtime::Result<i32> {
            let max = caller.data_mut().host().limits.request_bytes_max;
            let req = read("q_submit", &mut caller, ptr, len, max, "request").map_err(trap)?;
            Ok(caller.data_mut().host().submit(Domain::Q, req))
        },
    )?;
    linker.func_wrap(
        "xdv",
        "phi_submit",
        |mut caller: Caller<'_, T>, ptr: i32, len: i32| -> wasmtime::Result<i32> {
            let max = caller.data_mut().host().limits.request_bytes_max;
            let req = read("phi_submit", &mut caller, ptr, len, max, "program").map_err(trap)?;
            Ok(caller.data_mut().host().submit(Domain::Phi, req))
        },
    )?;
    linker.func_wrap_async("xdv", "await_next", |mut caller: Caller<'_, T>, (): ()| {
        Box::new(async move {
            // In External mode the lowest undelivered job may still be running at the driver:
            // the guest blocks, ending its slice, until the driver completes it.
            let mut blocked = false;
            loop {
                match caller.data_mut().host().await_next() {
                    Next::Job(id) => {
                        if blocked {
                            resume_after_block(&mut caller);
                        }
                        return Ok::<i32, wasmtime::Error>(id);
                    }
                    Next::None => return Ok(E_NONE),
                    Next::Pending => {
                        let fuel = caller.get_fuel().ok();
                        let host = caller.data_mut().host();
                        let fps = host.limits.fuel_per_slice;
                        let poll = host.poll();
                        let unused = match fuel {
                            // Fuel metering off (the benchmark's mode): nothing to return.
                            None => 0,
                            // Polled again before the result arrived: no WebAssembly ran in
                            // this slice, which is wholly unused.
                            Some(f) if blocked => fps.min(f),
                            Some(f) => host.meter.block(fps, f, poll),
                        };
                        {
                            let mut shared = lock(&host.shared);
                            shared.blocks += 1;
                            shared.blocked = Some(unused);
                        }
                        blocked = true;
                        YieldOnce(false).await;
                    }
                }
            }
        })
    })?;
    linker.func_wrap(
        "xdv",
        "result_len",
        |mut caller: Caller<'_, T>, job: i32| -> wasmtime::Result<i32> {
            let host = caller.data_mut().host();
            let (_, len) = host.delivered("result_len", job, 0).map_err(trap)?;
            Ok(len as i32)
        },
    )?;
    linker.func_wrap(
        "xdv",
        "result_read",
        |mut caller: Caller<'_, T>, job: i32, ptr: i32, cap: i32| -> wasmtime::Result<i32> {
            let (bytes, _) = caller
                .data_mut()
                .host()
                .delivered("result_read", job, cap as u32 as usize)
                .map_err(trap)?;
            write("result_read", &mut caller, ptr, cap, &bytes).map_err(trap)?;
            Ok(bytes.len() as i32)
        },
    )?;
    linker.func_wrap(
        "xdv",
        "job_release",
        |mut caller: Caller<'_, T>, job: i32| -> wasmtime::Result<()> {
            let host = caller.data_mut().host();
            host.delivered("job_release", job, 0).map_err(trap)?;
            if let Ok(id) = u32::try_from(job) {
                lock(&host.shared).jobs.slots.remove(&id);
            }
            Ok(())
        },
    )?;
    linker.func_wrap(
        "xdv",
        "chan_send",
        |mut caller: Caller<'_, T>, chan: i32, ptr: i32, len: i32| -> wasmtime::Result<i32> {
            let (ep, max, queue_max) = {
                let host = caller.data_mut().host();
                let ep = host.endpoint("chan_send", chan).map_err(trap)?;
                (
                    ep,
                    host.limits.message_bytes_max,
                    host.limits.channel_messages_max,
                )
            };
            let msg = read("chan_send", &mut caller, ptr, len, max, "message").map_err(trap)?;
            let host = caller.data_mut().host();
            let mut channels = host.channels.lock().map_err(|_| {
                trap(misuse(
                    "chan_send",
                    "the channel table is poisoned by an earlier failure",
                ))
            })?;
            let Some(queues) = channels.queues.get_mut(ep.channel) else {
                return Err(trap(misuse("chan_send", "the channel is gone")));
            };
            if queues[1 - ep.side].len() >= queue_max as usize {
                return Ok(E_BUSY);
            }
            let allowed = channels
                .send_check
                .as_ref()
                .is_none_or(|check| check(host.guest, ep.channel, msg.len()));
            if !allowed {
                channels.denied.push((ep.channel, ep.side, msg.len()));
                return Ok(E_DENIED);
            }
            let Some(queues) = channels.queues.get_mut(ep.channel) else {
                return Err(trap(misuse("chan_send", "the channel is gone")));
            };
            queues[1 - ep.side].push_back(msg.clone());
            channels.sent.push((ep.channel, ep.side, msg));
            drop(channels);
            host.messages_sent += 1;
            Ok(0)
        },
    )?;
    linker.func_wrap(
        "xdv",
        "chan_peek_len",
        |mut caller: Caller<'_, T>, chan: i32| -> wasmtime::Result<i32> {
            let host = caller.data_mut().host();
            let ep = host.endpoint("chan_peek_len", chan).map_err(trap)?;
            let channels = host.channels.lock().map_err(|_| {
                trap(misuse(
                    "chan_peek_len",
                    "the channel table is poisoned by an earlier failure",
                ))
            })?;
            Ok(channels
                .queues
                .get(ep.channel)
                .and_then(|q| q[ep.side].front())
                .map_or(E_NONE, |m| m.len() as i32))
        },
    )?;
    linker.func_wrap(
        "xdv",
        "chan_recv",
        |mut caller: Caller<'_, T>, chan: i32, ptr: i32, cap: i32| -> wasmtime::Result<i32> {
            // Check the buffer before taking the message, so that a misuse loses nothing.
            let size = memory("chan_recv", &mut caller)
                .map_err(trap)?
                .data_size(&caller);
            range("chan_recv", ptr, cap, size).map_err(trap)?;
            let msg = {
                let host = caller.data_mut().host();
                let ep = host.endpoint("chan_recv", chan).map_err(trap)?;
                let mut channels = host.channels.lock().map_err(|_| {
                    trap(misuse(
                        "chan_recv",
                        "the channel table is poisoned by an earlier failure",
                    ))
                })?;
                let Some(queue) = channels.queues.get_mut(ep.channel).map(|q| &mut q[ep.side])
                else {
                    return Ok(E_NONE);
                };
                match queue.front() {
                    None => return Ok(E_NONE),
                    Some(m) if m.len() > cap as u32 as usize => return Ok(E_TOO_SMALL),
                    Some(_) => queue.pop_front().unwrap_or_default(),
                }
            };
            write("chan_recv", &mut caller, ptr, cap, &msg).map_err(trap)?;
            Ok(msg.len() as i32)
        },
    )?;
    linker.func_wrap(
        "xdv",
        "log",
        |mut caller: Caller<'_, T>, level: i32, ptr: i32, len: i32| -> wasmtime::Result<()> {
            let Some(name) = usize::try_from(level).ok().and_then(|l| LOG_LEVELS.get(l)) else {
                return Err(trap(misuse(
                    "log",
                    format!(
                        "unknown log level {level} (0 trace, 1 debug, 2 info, 3 warn, 4 error)"
                    ),
                )));
            };
            let text = read(
                "log",
                &mut caller,
                ptr,
                len,
                u64::from(u32::MAX),
                "log text",
            )
            .map_err(trap)?;
            caller.data_mut().host().log(name, &text);
            Ok(())
        },
    )?;
    linker.func_wrap_async("xdv", "yield", |mut caller: Caller<'_, T>, (): ()| {
        Box::new(async move {
            voluntary_yield(&mut caller).await;
        })
    })?;
    linker.allow_shadowing(true);
    linker.func_wrap_async(
        "wasi_snapshot_preview1",
        "sched_yield",
        |mut caller: Caller<'_, T>, (): ()| {
            Box::new(async move {
                voluntary_yield(&mut caller).await;
                0i32
            })
        },
    )?;
    // ENOSYS: a guest cannot sleep or wait on a clock in a deterministic sandbox.
    linker.func_wrap(
        "wasi_snapshot_preview1",
        "poll_oneoff",
        |_: Caller<'_, T>, _: i32, _: i32, _: i32, _: i32| -> i32 { 52 },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}
