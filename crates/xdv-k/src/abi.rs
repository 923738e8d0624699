//! The host side of ABI `xdv` v1 (specified byte for byte in `docs/abi.md`): the functions a
//! guest imports from module `"xdv"`, the per-guest host state behind them, and the IPC
//! channels that connect guests of one run.
//!
//! Every pointer and length a guest passes is checked against its linear memory before it is
//! used; a misuse (out-of-bounds range, over-long request, unknown handle, bad level) returns an
//! [`AbiMisuse`] error, which traps that guest alone with kind `abi_misuse`. Recoverable
//! conditions return a negative status code ([`E_NONE`], [`E_BUSY`], [`E_TOO_SMALL`]); job
//! requests that are the guest's mistake complete with an error result (see [`crate::jobs`]).

use crate::error::AbiMisuse;
use crate::jobs::{self, Domain, JobOutcome};
use crate::limits::Limits;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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

struct JobSlot {
    delivered: bool,
    result: Vec<u8>,
}

/// Both directions of the channels of one run: `queues[c][s]` holds the messages waiting for
/// side `s` of channel `c`.
#[derive(Default)]
pub(crate) struct Channels {
    queues: Vec<[VecDeque<Vec<u8>>; 2]>,
    /// Every message queued, in order, until the driver takes them (`Session::take_sent`):
    /// (channel, the sender's side, the bytes).
    pub(crate) sent: Vec<(usize, usize, Vec<u8>)>,
}

impl Channels {
    pub(crate) fn new(count: usize) -> Channels {
        Channels {
            queues: (0..count)
                .map(|_| [VecDeque::new(), VecDeque::new()])
                .collect(),
            sent: Vec::new(),
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
    next_job: u32,
    jobs: BTreeMap<u32, JobSlot>,
    pub(crate) records: Vec<JobRecord>,
    pub(crate) log: Vec<LogLine>,
    log_bytes: u64,
    pub(crate) log_dropped_bytes: u64,
    pub(crate) endpoints: Vec<Endpoint>,
    pub(crate) channels: Arc<Mutex<Channels>>,
    /// Voluntary yields, shared with the scheduler (which tells a yield from a stuck guest).
    pub(crate) yields: Arc<AtomicU64>,
    pub(crate) messages_sent: u64,
}

impl Host {
    pub(crate) fn new(
        seed: u64,
        limits: Limits,
        endpoints: Vec<Endpoint>,
        channels: Arc<Mutex<Channels>>,
    ) -> Host {
        Host {
            seed,
            limits,
            next_job: 0,
            jobs: BTreeMap::new(),
            records: Vec::new(),
            log: Vec::new(),
            log_bytes: 0,
            log_dropped_bytes: 0,
            endpoints,
            channels,
            yields: Arc::new(AtomicU64::new(0)),
            messages_sent: 0,
        }
    }

    fn submit(&mut self, domain: Domain, request: &[u8]) -> i32 {
        if self.jobs.len() >= self.limits.jobs_in_flight_max as usize
            || u64::from(self.next_job) >= self.limits.jobs_total_max
            || self.next_job >= i32::MAX as u32
        {
            return E_BUSY;
        }
        let id = self.next_job;
        self.next_job += 1;
        let seed = jobs::job_seed(self.seed, id);
        let JobOutcome { ok, error, result } = match domain {
            Domain::Q => jobs::run_q(request, seed, &self.limits),
            Domain::Phi => jobs::run_phi(request, seed, &self.limits),
        };
        self.records.push(JobRecord {
            id,
            domain,
            ok,
            error,
            result_bytes: result.len(),
        });
        self.jobs.insert(
            id,
            JobSlot {
                delivered: false,
                result,
            },
        );
        id as i32
    }

    fn await_next(&mut self) -> i32 {
        match self.jobs.iter_mut().find(|(_, j)| !j.delivered) {
            Some((id, j)) => {
                j.delivered = true;
                *id as i32
            }
            None => E_NONE,
        }
    }

    fn delivered(&self, f: &'static str, job: i32) -> Result<&JobSlot, AbiMisuse> {
        let slot = u32::try_from(job).ok().and_then(|id| self.jobs.get(&id));
        match slot {
            Some(j) if j.delivered => Ok(j),
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
            Ok(caller.data_mut().host().submit(Domain::Q, &req))
        },
    )?;
    linker.func_wrap(
        "xdv",
        "phi_submit",
        |mut caller: Caller<'_, T>, ptr: i32, len: i32| -> wasmtime::Result<i32> {
            let max = caller.data_mut().host().limits.request_bytes_max;
            let req = read("phi_submit", &mut caller, ptr, len, max, "program").map_err(trap)?;
            Ok(caller.data_mut().host().submit(Domain::Phi, &req))
        },
    )?;
    linker.func_wrap("xdv", "await_next", |mut caller: Caller<'_, T>| -> i32 {
        caller.data_mut().host().await_next()
    })?;
    linker.func_wrap(
        "xdv",
        "result_len",
        |mut caller: Caller<'_, T>, job: i32| -> wasmtime::Result<i32> {
            let host = caller.data_mut().host();
            let j = host.delivered("result_len", job).map_err(trap)?;
            Ok(j.result.len() as i32)
        },
    )?;
    linker.func_wrap(
        "xdv",
        "result_read",
        |mut caller: Caller<'_, T>, job: i32, ptr: i32, cap: i32| -> wasmtime::Result<i32> {
            let bytes = {
                let host = caller.data_mut().host();
                let j = host.delivered("result_read", job).map_err(trap)?;
                let n = j.result.len().min(cap as u32 as usize);
                j.result.get(..n).map(<[u8]>::to_vec).unwrap_or_default()
            };
            write("result_read", &mut caller, ptr, cap, &bytes).map_err(trap)?;
            Ok(bytes.len() as i32)
        },
    )?;
    linker.func_wrap(
        "xdv",
        "job_release",
        |mut caller: Caller<'_, T>, job: i32| -> wasmtime::Result<()> {
            let host = caller.data_mut().host();
            host.delivered("job_release", job).map_err(trap)?;
            if let Ok(id) = u32::try_from(job) {
                host.jobs.remove(&id);
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
            let inbox = &mut queues[1 - ep.side];
            if inbox.len() >= queue_max as usize {
                return Ok(E_BUSY);
            }
            inbox.push_back(msg.clone());
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
            caller
                .data_mut()
                .host()
                .yields
                .fetch_add(1, Ordering::Relaxed);
            YieldOnce(false).await;
        })
    })?;
    linker.allow_shadowing(true);
    linker.func_wrap_async(
        "wasi_snapshot_preview1",
        "sched_yield",
        |mut caller: Caller<'_, T>, (): ()| {
            Box::new(async move {
                caller
                    .data_mut()
                    .host()
                    .yields
                    .fetch_add(1, Ordering::Relaxed);
                YieldOnce(false).await;
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
