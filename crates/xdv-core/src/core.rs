//! The Deterministic Orchestration Core: `(state, input) -> (state', effects, events)`.
//!
//! No I/O, no clock, no randomness: time arrives as [`Input::Tick`], results as
//! [`Input::Completion`]. Every command is validated completely before anything changes, so a
//! rejected input leaves the state exactly as it was. Collections that are iterated are ordered
//! (`BTreeMap`, sorted `Vec`), so every tie is broken by id.

use crate::caps::{authorize, CapTable, CapView, Rights, Scope, Target, ROOT_CAP};
use crate::input::{
    Command, Effect, Event, Input, JobStatus, Outcome, Principal, Rejection, Source, StopReason,
    FAULT_DENIED,
};
use crate::machine::{Layout, Machine};
use crate::model::{
    CapId, ChannelId, Denial, Domain, JobCost, JobId, PhiRegion, Resource, ResourceKind,
    ResourceVector, TokenId, VhmId, VhmSpec, WindowId,
};
use crate::placement::{find_partition, find_region};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The core's limits. Every queue and table is bounded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// Live VHMs.
    pub vhms_live_max: u32,
    /// Nesting depth (a root VHM has depth 0).
    pub nesting_depth_max: u32,
    /// Live capabilities.
    pub caps_live_max: u32,
    /// Open IPC channels.
    pub channels_live_max: u32,
    /// Live coherence windows, machine-wide.
    pub windows_live_max: u32,
    /// Live coherence windows of one VHM.
    pub windows_per_vhm_max: u32,
    /// Longest coherence window, ns.
    pub window_ns_max: u64,
    /// Live jobs (queued or running), machine-wide.
    pub jobs_live_max: u32,
    /// Live jobs of one VHM.
    pub jobs_per_vhm_max: u32,
    /// Largest IPC message, bytes.
    pub message_bytes_max: u32,
    /// Most ticks one tick input may advance.
    pub ticks_per_input_max: u32,
    /// Ticks of waiting that raise a job's effective priority by one.
    pub aging_ticks: u64,
    /// Ticks of waiting after which a job is served before all non-starving jobs, oldest first.
    pub starvation_ticks: u64,
    /// Sharing contracts of one VHM.
    pub contracts_per_vhm_max: u32,
    /// Revoked capability-token blocks remembered.
    pub revoked_tokens_max: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            vhms_live_max: 4096,
            nesting_depth_max: 8,
            caps_live_max: 65_536,
            channels_live_max: 4096,
            windows_live_max: 4096,
            windows_per_vhm_max: 64,
            window_ns_max: 10_000_000_000,
            jobs_live_max: 65_536,
            jobs_per_vhm_max: 1024,
            message_bytes_max: 65_536,
            ticks_per_input_max: 1024,
            aging_ticks: 16,
            starvation_ticks: 256,
            contracts_per_vhm_max: 64,
            revoked_tokens_max: 65_536,
        }
    }
}

/// What the core starts from: the machine and the limits. Recorded at the head of every trace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    /// The machine's providers.
    pub machine: Machine,
    /// The core's limits.
    pub limits: Limits,
}

/// A live VHM.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vhm {
    /// Its id.
    pub id: VhmId,
    /// Its name, unique among live siblings.
    pub name: String,
    /// Its parent.
    pub parent: Option<VhmId>,
    /// The root of its tree.
    pub root: VhmId,
    /// Nesting depth (root 0).
    pub depth: u32,
    /// Live children, ascending.
    pub children: Vec<VhmId>,
    /// Scheduling priority.
    pub priority: u8,
    /// Deadline tick.
    pub deadline_tick: Option<u64>,
    /// The most it may hold.
    pub quota: ResourceVector,
    /// What it holds, including what it delegated to children.
    pub held: ResourceVector,
    /// The sum of its children's `held`.
    pub delegated: ResourceVector,
    /// Budget consumed or committed by its own jobs and windows (and by stopped children).
    pub charged: ResourceVector,
    /// Its Q partition (physical qubits, ascending), including its children's.
    pub qubits: Vec<u32>,
    /// Its Φ region, including its children's.
    pub region: Option<PhiRegion>,
    /// The capability issued to it at creation.
    pub own_cap: CapId,
    /// Tick of creation.
    pub created_tick: u64,
    /// Live jobs, ascending.
    pub jobs: Vec<JobId>,
    /// A Q job is in flight on its partition.
    pub q_busy: bool,
    /// A Φ job is in flight in its region.
    pub phi_busy: bool,
    /// Cumulative service per domain (K slices, Q jobs, Φ ticks), for fair share.
    pub service: [u64; 3],
    /// Live coherence windows, ascending.
    pub windows: Vec<WindowId>,
    /// Open channels, ascending.
    pub channels: Vec<ChannelId>,
    /// VHMs whose windows may overlap its own, ascending.
    pub contracts: Vec<VhmId>,
    /// Capabilities it holds or that target it (may include revoked ids), ascending.
    pub cap_index: Vec<CapId>,
}

impl Vhm {
    /// What is free for its own use or for new children.
    pub fn available(&self, r: Resource) -> u64 {
        let i = r.index();
        self.held.0[i]
            .saturating_sub(self.delegated.0[i])
            .saturating_sub(self.charged.0[i])
    }
}

/// Where a job is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    /// Waiting; nothing dispatched yet.
    Queued,
    /// A K job with slices dispatched and more to come.
    Running,
    /// Fully dispatched; waiting for its completion.
    AwaitingCompletion,
    /// A K job parked by `Command::Wait` until one of its VHM's Q or Φ jobs ends.
    Waiting,
}

/// A live job.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    /// Its id.
    pub id: JobId,
    /// Its VHM.
    pub vhm: VhmId,
    /// Its domain.
    pub domain: Domain,
    /// Its declared cost.
    pub cost: JobCost,
    /// Tick of submission.
    pub submitted_tick: u64,
    /// Tick since which it has waited for service.
    pub ready_tick: u64,
    /// Where it is.
    pub state: JobState,
    /// K: fuel not yet dispatched.
    pub fuel_remaining: u64,
    /// K: fuel of its last slice not yet returned by a `Wait` (0 before its first slice).
    pub last_slice_fuel: u64,
}

/// An open IPC channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Channel {
    /// Its id.
    pub id: ChannelId,
    /// One end.
    pub a: VhmId,
    /// The other end.
    pub b: VhmId,
    /// `a`'s endpoint capability.
    pub cap_a: CapId,
    /// `b`'s endpoint capability.
    pub cap_b: CapId,
    /// Next message sequence number.
    pub next_seq: u64,
    /// Other capabilities issued with this channel as target (grants), ascending; revoked when the
    /// channel closes.
    pub granted: Vec<CapId>,
}

/// A reserved coherence window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// Its id.
    pub id: WindowId,
    /// Its VHM.
    pub vhm: VhmId,
    /// The Φ provider (mesh) it is reserved on: windows on different meshes never conflict.
    pub provider: u32,
    /// Start, logical ns.
    pub start_ns: u64,
    /// End (exclusive), logical ns.
    pub end_ns: u64,
}

/// The whole orchestration state. Everything here is covered by the state digest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct State {
    /// The logical clock.
    pub now_tick: u64,
    /// Live VHMs.
    pub vhms: BTreeMap<VhmId, Box<Vhm>>,
    /// Next VHM id.
    pub next_vhm: u32,
    /// Root VHM names → id.
    pub root_names: BTreeMap<String, VhmId>,
    /// Capabilities.
    pub caps: CapTable,
    /// Live jobs.
    pub jobs: BTreeMap<JobId, Job>,
    /// Next job id.
    pub next_job: u64,
    /// Jobs waiting for dispatch (K: also partially run), per domain, in submission order.
    pub queues: [Vec<JobId>; 3],
    /// Q jobs in flight, per Q provider.
    pub q_inflight: Vec<u32>,
    /// Φ jobs in flight, per Φ provider.
    pub phi_inflight: Vec<u32>,
    /// Open channels.
    pub channels: BTreeMap<ChannelId, Channel>,
    /// Next channel id.
    pub next_channel: u32,
    /// Live windows.
    pub windows: BTreeMap<WindowId, Window>,
    /// Live windows by (start, id).
    pub windows_by_start: BTreeSet<(u64, WindowId)>,
    /// Next window id.
    pub next_window: u64,
    /// Capacity and placed resources not held by any root VHM (the Φ dimensions are not pooled:
    /// they stay at the machine's figure; see `Resource::is_dimension`).
    pub machine_free: ResourceVector,
    /// For each physical qubit (global numbering, see `Layout`), the deepest VHM holding it.
    pub q_owner: Vec<Option<VhmId>>,
    /// For each Φ cell (global numbering, see `Layout::phi_cell`), the deepest VHM holding it.
    pub phi_owner: Vec<Option<VhmId>>,
    /// Revoked capability-token blocks (`Command::RevokeToken`), which the Secure Domain
    /// Boundary Manager refuses from then on.
    pub revoked_tokens: BTreeSet<TokenId>,
}

/// What the last input touched, for incremental invariant checks.
#[derive(Clone, Debug, Default)]
pub struct Touched {
    /// VHMs created, changed or stopped.
    pub vhms: Vec<VhmId>,
    /// Placements changed.
    pub placement: bool,
    /// Windows or contracts changed.
    pub windows: bool,
    /// Capabilities issued.
    pub caps_issued: Vec<CapId>,
    /// Capabilities the input was authorised with, as they were when checked.
    pub authorized: Vec<CapView>,
    /// Jobs changed.
    pub jobs: bool,
}

impl Touched {
    fn clear(&mut self) {
        self.vhms.clear();
        self.placement = false;
        self.windows = false;
        self.caps_issued.clear();
        self.authorized.clear();
        self.jobs = false;
    }
}

/// The Deterministic Orchestration Core.
#[derive(Clone, Debug)]
pub struct Core {
    genesis: Genesis,
    layout: Layout,
    adjacency: Vec<Vec<u32>>,
    state: State,
    touched: Touched,
    scratch: Vec<(SchedKey, JobId)>,
}

/// A job's place in its domain's order: smaller sorts first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct SchedKey {
    /// 0 when starving, else 1.
    not_starving: u8,
    /// For starving jobs, the tick since which they have waited (oldest first); else 0.
    starving_since: u64,
    /// 255 − effective priority.
    inv_priority: u8,
    /// Deadline tick (earliest first), `u64::MAX` for none.
    deadline: u64,
    /// Dominant share of the VHM in ppm (lowest first).
    share_ppm: u64,
}

impl Scope for State {
    fn within(&self, inner: Target, outer: Target) -> bool {
        match (inner, outer) {
            (_, Target::Machine) => true,
            (Target::Machine, _) => false,
            (Target::Vhm(b), Target::Vhm(a)) => self.is_ancestor_or_self(a, b),
            (Target::Channel(c), Target::Vhm(a)) => self.channels.get(&c).is_some_and(|ch| {
                self.is_ancestor_or_self(a, ch.a) || self.is_ancestor_or_self(a, ch.b)
            }),
            (Target::Channel(c), Target::Channel(d)) => c == d,
            (Target::Vhm(_), Target::Channel(_)) => false,
        }
    }
}

impl State {
    /// True when `a` is `b` or one of `b`'s ancestors (both live).
    pub fn is_ancestor_or_self(&self, a: VhmId, b: VhmId) -> bool {
        let mut cur = Some(b);
        while let Some(c) = cur {
            if c == a {
                return true;
            }
            cur = self.vhms.get(&c).and_then(|v| v.parent);
        }
        false
    }

    /// The live VHM, or why not.
    pub fn live(&self, vhm: VhmId) -> Result<&Vhm, Rejection> {
        self.vhms
            .get(&vhm)
            .map(|v| &**v)
            .ok_or(if vhm.0 < self.next_vhm {
                Rejection::VhmStopped { vhm }
            } else {
                Rejection::UnknownVhm { vhm }
            })
    }

    /// The qubits a VHM holds that none of its children hold.
    pub fn own_qubits(&self, vhm: &Vhm) -> Vec<u32> {
        vhm.qubits
            .iter()
            .copied()
            .filter(|&q| self.q_owner[q as usize] == Some(vhm.id))
            .collect()
    }
}

fn validate_name(name: &str) -> Result<(), Rejection> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(Rejection::InvalidSpec {
            field: "name".into(),
            reason: "a name is 1 to 64 characters of A-Z, a-z, 0-9, '_', '-' and '.'".into(),
        })
    }
}

fn validate_spec(spec: &VhmSpec) -> Result<(ResourceVector, ResourceVector), Rejection> {
    validate_name(&spec.name)?;
    if spec.k.as_ref().is_some_and(|k| k.vcpus == 0) {
        return Err(Rejection::InvalidSpec {
            field: "k.vcpus".into(),
            reason: "a K part needs at least one vCPU".into(),
        });
    }
    if spec.q.as_ref().is_some_and(|q| q.logical_qubits == 0) {
        return Err(Rejection::InvalidSpec {
            field: "q.logical_qubits".into(),
            reason: "a Q part needs at least one logical qubit".into(),
        });
    }
    if spec
        .phi
        .as_ref()
        .is_some_and(|p| p.modes == 0 || p.wavelength_channels == 0)
    {
        return Err(Rejection::InvalidSpec {
            field: "phi.modes".into(),
            reason: "a Φ part needs at least one mode and one wavelength channel".into(),
        });
    }
    let alloc = spec.allocation();
    let quota = spec.quota();
    if let Some(r) = alloc.first_excess(&quota) {
        return Err(Rejection::QuotaExceeded {
            resource: r,
            requested: alloc.get(r),
            quota: quota.get(r),
        });
    }
    Ok((alloc, quota))
}

/// Sorted insert without duplicates.
fn insert_sorted<T: Ord + Copy>(v: &mut Vec<T>, x: T) {
    if let Err(i) = v.binary_search(&x) {
        v.insert(i, x);
    }
}

fn remove_sorted<T: Ord + Copy>(v: &mut Vec<T>, x: T) {
    if let Ok(i) = v.binary_search(&x) {
        v.remove(i);
    }
}

impl Core {
    /// A core at genesis: no VHMs, the operator's root capability, logical time 0.
    pub fn new(genesis: Genesis) -> Core {
        let m = &genesis.machine;
        let layout = m.layout();
        let adjacency = m.adjacency();
        let mut machine_free = m.capacity();
        for r in Resource::ALL {
            if r.kind() == ResourceKind::Budget {
                machine_free.set(r, 0);
            }
        }
        let state = State {
            now_tick: 0,
            vhms: BTreeMap::new(),
            next_vhm: 0,
            root_names: BTreeMap::new(),
            caps: CapTable::genesis(),
            jobs: BTreeMap::new(),
            next_job: 0,
            queues: [Vec::new(), Vec::new(), Vec::new()],
            q_inflight: vec![0; m.q.len()],
            phi_inflight: vec![0; m.phi.len()],
            channels: BTreeMap::new(),
            next_channel: 0,
            windows: BTreeMap::new(),
            windows_by_start: BTreeSet::new(),
            next_window: 0,
            machine_free,
            q_owner: vec![None; layout.qubits() as usize],
            phi_owner: vec![None; layout.phi_cells()],
            revoked_tokens: BTreeSet::new(),
        };
        Core {
            genesis,
            layout,
            adjacency,
            state,
            touched: Touched::default(),
            scratch: Vec::new(),
        }
    }

    /// The genesis this core started from.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The state (read-only).
    pub fn state(&self) -> &State {
        &self.state
    }

    /// What the last input touched.
    pub fn touched(&self) -> &Touched {
        &self.touched
    }

    /// The coupling maps' adjacency lists over global qubits (empty for the qubits of an
    /// all-to-all provider).
    pub fn adjacency(&self) -> &[Vec<u32>] {
        &self.adjacency
    }

    /// The global numbering of qubits, modes and Φ cells.
    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    /// Logical time in nanoseconds.
    pub fn now_ns(&self) -> u64 {
        self.state
            .now_tick
            .saturating_mul(self.genesis.machine.tick_ns)
    }

    /// Mutable state, for tests that corrupt it on purpose to show the invariant checker fails.
    #[doc(hidden)]
    pub fn state_mut_for_tests(&mut self) -> &mut State {
        &mut self.state
    }

    /// The BLAKE3 digest of the canonical encoding of the whole state.
    pub fn state_digest(&self) -> [u8; 32] {
        let mut h = blake3::Hasher::new();
        h.update(b"xdv-state-v1");
        // Encoding an in-memory state into a vector cannot fail; if it ever did, hashing nothing
        // would hide the defect, so stop instead.
        let bytes = postcard::to_allocvec(&self.state).expect("the state always encodes");
        h.update(&bytes);
        *h.finalize().as_bytes()
    }

    /// Applies one input. `out` is cleared first; on rejection it holds only the rejection and the
    /// state is unchanged.
    pub fn apply(&mut self, input: &Input, out: &mut Outcome) {
        out.clear();
        self.touched.clear();
        let r = match input {
            Input::Command {
                principal,
                cap,
                command,
            } => self.command(*principal, *cap, command, out),
            Input::Tick { ticks } => self.tick(*ticks, out),
            Input::Completion { job, status } => self.completion(*job, *status, out),
        };
        if let Err(e) = r {
            debug_assert!(out.effects.is_empty() && out.events.is_empty());
            out.effects.clear();
            out.events.clear();
            out.rejection = Some(e);
        }
    }

    fn auth(
        &mut self,
        principal: Principal,
        cap: CapId,
        target: Target,
        needed: Rights,
    ) -> Result<CapView, Rejection> {
        let c = authorize(
            &self.state.caps,
            &self.state,
            principal,
            cap,
            self.state.now_tick,
            target,
            needed,
        )?;
        self.touched.authorized.push(c);
        Ok(c)
    }

    fn command(
        &mut self,
        principal: Principal,
        cap: CapId,
        command: &Command,
        out: &mut Outcome,
    ) -> Result<(), Rejection> {
        // A presented capability is checked before anything about the target is revealed.
        self.state
            .caps
            .presented(principal, cap, self.state.now_tick)?;
        match command {
            Command::CreateVhm { spec } => {
                let c = self.auth(principal, cap, Target::Machine, Rights::CREATE)?;
                self.create(None, &c, spec, out)
            }
            Command::CreateNested { parent, spec } => {
                self.state.live(*parent)?;
                let c = self.auth(principal, cap, Target::Vhm(*parent), Rights::NEST)?;
                self.create(Some(*parent), &c, spec, out)
            }
            Command::Reserve {
                vhm,
                resource,
                amount,
            } => {
                self.state.live(*vhm)?;
                self.auth(principal, cap, Target::Vhm(*vhm), Rights::RESERVE)?;
                self.reserve(*vhm, *resource, *amount, false, out)
            }
            Command::Release {
                vhm,
                resource,
                amount,
            } => {
                self.state.live(*vhm)?;
                self.auth(principal, cap, Target::Vhm(*vhm), Rights::RESERVE)?;
                self.reserve(*vhm, *resource, *amount, true, out)
            }
            Command::ReserveWindow {
                vhm,
                start_ns,
                duration_ns,
            } => {
                self.state.live(*vhm)?;
                self.auth(principal, cap, Target::Vhm(*vhm), Rights::RESERVE)?;
                self.reserve_window(*vhm, *start_ns, *duration_ns, out)
            }
            Command::ShareWindows { a, b, peer_cap } => {
                self.pair(principal, cap, *a, *b, *peer_cap, Rights::SHARE)?;
                self.share(*a, *b, out)
            }
            Command::SubmitJob { vhm, domain, cost } => {
                self.state.live(*vhm)?;
                self.auth(principal, cap, Target::Vhm(*vhm), Rights::SUBMIT)?;
                self.submit(*vhm, *domain, *cost, out)
            }
            Command::OpenChannel { a, b, peer_cap } => {
                let (ca, cb) = self.pair(principal, cap, *a, *b, *peer_cap, Rights::IPC)?;
                self.open_channel(*a, *b, &ca, &cb, out)
            }
            Command::CloseChannel { channel } => {
                self.live_channel(*channel)?;
                self.auth(principal, cap, Target::Channel(*channel), Rights::IPC)?;
                self.close_channel(*channel, out);
                Ok(())
            }
            Command::Send { channel, payload } => self.send(principal, cap, *channel, payload, out),
            Command::Fault { vhm, code } => {
                self.state.live(*vhm)?;
                self.auth(principal, cap, Target::Vhm(*vhm), Rights::CONTROL)?;
                self.stop(*vhm, StopReason::Faulted(*code), out);
                Ok(())
            }
            Command::Terminate { vhm } => {
                self.state.live(*vhm)?;
                self.auth(principal, cap, Target::Vhm(*vhm), Rights::CONTROL)?;
                self.stop(*vhm, StopReason::Terminated, out);
                Ok(())
            }
            Command::Grant {
                to,
                target,
                rights,
                expires_tick,
            } => {
                let c = self.auth(principal, cap, self.cap_target(cap), Rights::GRANT)?;
                self.derive(&c, *to, *target, *rights, *expires_tick, out)
            }
            Command::Attenuate {
                target,
                rights,
                expires_tick,
            } => {
                let c = self.auth(principal, cap, self.cap_target(cap), Rights(0))?;
                self.derive(&c, principal, *target, *rights, *expires_tick, out)
            }
            Command::Revoke { cap: victim } => {
                let c = self.auth(principal, cap, self.cap_target(cap), Rights(0))?;
                self.revoke_cmd(&c, *victim, out)
            }
            Command::Wait { job, fuel_unused } => {
                let vhm = match self.state.jobs.get(job) {
                    Some(j) => j.vhm,
                    None => return Err(Rejection::JobNotRunning { job: *job }),
                };
                self.auth(principal, cap, Target::Vhm(vhm), Rights::SUBMIT)?;
                self.wait(*job, *fuel_unused, out)
            }
            Command::RevokeToken { token } => {
                self.auth(principal, cap, Target::Machine, Rights::REVOKE)?;
                self.revoke_token(*token, out)
            }
            Command::Deny { vhm, denial } => {
                if let Some(v) = vhm {
                    self.state.live(*v)?;
                }
                // The boundary manager acts for the operator: no VHM may record a denial, not
                // even about itself.
                self.auth(principal, cap, Target::Machine, Rights::CONTROL)?;
                self.deny(*vhm, *denial, out);
                Ok(())
            }
        }
    }

    fn cap_target(&self, cap: CapId) -> Target {
        self.state
            .caps
            .caps
            .get(&cap)
            .map_or(Target::Machine, |c| c.target)
    }

    /// Authorises a two-party command: `cap` over `a`, `peer_cap` (same principal) over `b`.
    fn pair(
        &mut self,
        principal: Principal,
        cap: CapId,
        a: VhmId,
        b: VhmId,
        peer_cap: CapId,
        needed: Rights,
    ) -> Result<(CapView, CapView), Rejection> {
        self.state
            .caps
            .presented(principal, peer_cap, self.state.now_tick)?;
        if a == b {
            return Err(Rejection::SameVhm);
        }
        self.state.live(a)?;
        self.state.live(b)?;
        let ca = self.auth(principal, cap, Target::Vhm(a), needed)?;
        let cb = self.auth(principal, peer_cap, Target::Vhm(b), needed)?;
        Ok((ca, cb))
    }

    fn live_channel(&self, channel: ChannelId) -> Result<&Channel, Rejection> {
        self.state
            .channels
            .get(&channel)
            .ok_or(if channel.0 < self.state.next_channel {
                Rejection::ChannelClosed { channel }
            } else {
                Rejection::UnknownChannel { channel }
            })
    }

    fn caps_room(&self, n: u32) -> Result<(), Rejection> {
        let max = self.genesis.limits.caps_live_max;
        if self.state.caps.caps.len() as u64 + u64::from(n) > u64::from(max) {
            return Err(Rejection::LimitReached {
                what: "live capabilities".into(),
                max: u64::from(max),
            });
        }
        Ok(())
    }

    // ----- VHM creation -----------------------------------------------------------------------

    fn create(
        &mut self,
        parent: Option<VhmId>,
        via: &CapView,
        spec: &VhmSpec,
        out: &mut Outcome,
    ) -> Result<(), Rejection> {
        let limits = &self.genesis.limits;
        let (alloc, quota) = validate_spec(spec)?;
        if self.state.vhms.len() as u64 >= u64::from(limits.vhms_live_max) {
            return Err(Rejection::LimitReached {
                what: "live VHMs".into(),
                max: u64::from(limits.vhms_live_max),
            });
        }
        self.caps_room(1)?;
        let st = &self.state;
        let depth = match parent {
            None => {
                if st.root_names.contains_key(&spec.name) {
                    return Err(Rejection::InvalidSpec {
                        field: "name".into(),
                        reason: "a live root VHM already has this name".into(),
                    });
                }
                for r in Resource::ALL {
                    if r.kind() != ResourceKind::Budget
                        && !r.is_dimension()
                        && alloc.get(r) > st.machine_free.get(r)
                    {
                        return Err(Rejection::Insufficient {
                            resource: r,
                            requested: alloc.get(r),
                            available: st.machine_free.get(r),
                            from: Source::Machine,
                        });
                    }
                }
                0
            }
            Some(p) => {
                let pv = &st.vhms[&p];
                if pv.depth + 1 > limits.nesting_depth_max {
                    return Err(Rejection::LimitReached {
                        what: "nesting depth".into(),
                        max: u64::from(limits.nesting_depth_max),
                    });
                }
                if pv.children.iter().any(|c| st.vhms[c].name == spec.name) {
                    return Err(Rejection::InvalidSpec {
                        field: "name".into(),
                        reason: "a live sibling already has this name".into(),
                    });
                }
                if let Some(r) = quota.first_excess(&pv.quota) {
                    return Err(Rejection::NestedQuotaExceeded {
                        resource: r,
                        requested: quota.get(r),
                        parent_quota: pv.quota.get(r),
                    });
                }
                for r in Resource::ALL {
                    if !r.is_dimension() && alloc.get(r) > pv.available(r) {
                        return Err(Rejection::Insufficient {
                            resource: r,
                            requested: alloc.get(r),
                            available: pv.available(r),
                            from: Source::Vhm(pv.id),
                        });
                    }
                }
                pv.depth + 1
            }
        };
        // Placement, still without changing anything.
        let m = &self.genesis.machine;
        let layout = &self.layout;
        let named =
            |name: &Option<String>, field: &'static str, find: &dyn Fn(&str) -> Option<usize>| {
                match name {
                    None => Ok(None),
                    Some(n) => find(n).map(Some).ok_or_else(|| Rejection::InvalidSpec {
                        field: field.into(),
                        reason: format!("the machine has no provider named {n:?}").into(),
                    }),
                }
            };
        let nq = spec.q.as_ref().map_or(0, |q| q.logical_qubits);
        let qubits = match &spec.q {
            None => Vec::new(),
            Some(qs) => {
                let want = named(&qs.provider, "q.provider", &|n| m.q_provider(n))?;
                let candidates: Vec<usize> = match parent {
                    None => match want {
                        Some(d) => vec![d],
                        None => (0..m.q.len()).collect(),
                    },
                    Some(p) => {
                        // A nested partition lies inside the parent's, so on its provider.
                        let pq = &st.vhms[&p].qubits;
                        let Some(&first) = pq.first() else {
                            return Err(Rejection::DomainNotAllocated {
                                vhm: p,
                                domain: Domain::Q,
                            });
                        };
                        let d = layout.q_provider(first);
                        if want.is_some_and(|w| w != d) {
                            return Err(Rejection::InvalidSpec {
                                field: "q.provider".into(),
                                reason: format!(
                                    "a nested VHM is placed on its parent's Q provider, {:?}",
                                    m.q[d].provider
                                )
                                .into(),
                            });
                        }
                        vec![d]
                    }
                };
                let adj = &self.adjacency;
                let placed = candidates.into_iter().find_map(|d| {
                    let range = layout.q_offsets[d]..layout.q_offsets[d + 1];
                    let all_to_all = matches!(m.q[d].topology, crate::machine::Topology::AllToAll);
                    match parent {
                        None => {
                            let guard = m.q[d].guard_qubits;
                            find_partition(range, adj, all_to_all, nq, |q| {
                                st.q_owner[q as usize].is_none()
                                    && (!guard
                                        || adj[q as usize]
                                            .iter()
                                            .all(|&n| st.q_owner[n as usize].is_none()))
                            })
                        }
                        Some(p) => find_partition(range, adj, all_to_all, nq, |q| {
                            st.q_owner[q as usize] == Some(p)
                        }),
                    }
                });
                placed.ok_or(Rejection::NoPlacement {
                    resource: Resource::LogicalQubits,
                    requested: u64::from(nq),
                    why: "no connected set of free qubits that large on one provider (guard qubits kept from other tenants)".into(),
                })?
            }
        };
        let region = match &spec.phi {
            None => None,
            Some(phi) => {
                let want = named(&phi.provider, "phi.provider", &|n| m.phi_provider(n))?;
                let (candidates, scope): (Vec<PhiRegion>, Option<VhmId>) = match parent {
                    None => (
                        (0..m.phi.len())
                            .filter(|&d| want.is_none_or(|w| w == d))
                            .map(|d| layout.phi_bounds(d))
                            .collect(),
                        None,
                    ),
                    Some(p) => {
                        let Some(b) = st.vhms[&p].region else {
                            return Err(Rejection::DomainNotAllocated {
                                vhm: p,
                                domain: Domain::Phi,
                            });
                        };
                        let d = layout.phi_provider(b.mode_start);
                        if want.is_some_and(|w| w != d) {
                            return Err(Rejection::InvalidSpec {
                                field: "phi.provider".into(),
                                reason: format!(
                                    "a nested VHM is placed on its parent's Φ provider, {:?}",
                                    m.phi[d].provider
                                )
                                .into(),
                            });
                        }
                        (vec![b], Some(p))
                    }
                };
                let found = candidates.into_iter().find_map(|bounds| {
                    let occupied = |mode: u32| {
                        let mut mask = 0u64;
                        for c in bounds.channel_start..bounds.channel_end() {
                            if st.phi_owner[layout.phi_cell(mode, c)] != scope {
                                mask |= 1 << c;
                            }
                        }
                        mask
                    };
                    find_region(bounds, phi.modes, phi.wavelength_channels, occupied)
                });
                Some(found.ok_or(Rejection::NoPlacement {
                    resource: Resource::PhiModes,
                    requested: u64::from(phi.modes),
                    why: "no free rectangle of modes × wavelength channels that large on one provider"
                        .into(),
                })?)
            }
        };
        // Commit.
        let id = VhmId(self.state.next_vhm);
        self.state.next_vhm += 1;
        let now = self.state.now_tick;
        let cap_id = self.state.caps.issue(
            via.id,
            Principal::Vhm(id),
            Target::Vhm(id),
            via.rights.and(Rights::VHM_ALL),
            via.expires_tick,
        );
        self.touched.caps_issued.push(cap_id);
        let root = match parent {
            None => {
                let pooled = alloc.pooled();
                for r in Resource::ALL {
                    if r.kind() != ResourceKind::Budget {
                        let f = self.state.machine_free.get(r) - pooled.get(r);
                        self.state.machine_free.set(r, f);
                    }
                }
                self.state.root_names.insert(spec.name.clone(), id);
                id
            }
            Some(p) => {
                let pv = self.state.vhms.get_mut(&p).expect("parent checked live");
                pv.delegated = pv
                    .delegated
                    .checked_add(&alloc.pooled())
                    .expect("checked against available");
                insert_sorted(&mut pv.children, id);
                self.touched.vhms.push(p);
                pv.root
            }
        };
        for &q in &qubits {
            self.state.q_owner[q as usize] = Some(id);
        }
        if let Some(r) = region {
            self.set_phi_owner(r, Some(id));
        }
        if !qubits.is_empty() || region.is_some() {
            self.touched.placement = true;
        }
        let vhm = Vhm {
            id,
            name: spec.name.clone(),
            parent,
            root,
            depth,
            children: Vec::new(),
            priority: spec.policy.priority,
            deadline_tick: spec.policy.deadline_tick,
            quota,
            held: alloc,
            delegated: ResourceVector::ZERO,
            charged: ResourceVector::ZERO,
            qubits: qubits.clone(),
            region,
            own_cap: cap_id,
            created_tick: now,
            jobs: Vec::new(),
            q_busy: false,
            phi_busy: false,
            service: [0; 3],
            windows: Vec::new(),
            channels: Vec::new(),
            contracts: Vec::new(),
            cap_index: vec![cap_id],
        };
        self.state.vhms.insert(id, Box::new(vhm));
        self.touched.vhms.push(id);
        self.index_cap(cap_id);
        out.events.push(Event::VhmCreated {
            vhm: id,
            parent,
            cap: cap_id,
            qubits,
            region,
        });
        out.events.push(Event::CapIssued {
            cap: cap_id,
            parent: via.id,
            holder: Principal::Vhm(id),
        });
        out.effects.push(Effect::StartVhm { vhm: id });
        Ok(())
    }

    fn set_phi_owner(&mut self, r: PhiRegion, owner: Option<VhmId>) {
        for m in r.mode_start..r.mode_end() {
            for c in r.channel_start..r.channel_end() {
                self.state.phi_owner[self.layout.phi_cell(m, c)] = owner;
            }
        }
    }

    /// The Φ provider of a VHM's region (which every Φ-holding VHM has).
    fn phi_provider_of(&self, v: &Vhm) -> u32 {
        v.region
            .map_or(0, |r| self.layout.phi_provider(r.mode_start) as u32)
    }

    /// The Q provider of a VHM's partition.
    fn q_provider_of(&self, v: &Vhm) -> u32 {
        v.qubits
            .first()
            .map_or(0, |&q| self.layout.q_provider(q) as u32)
    }

    /// Records a capability in the index of its holder and target VHMs.
    fn index_cap(&mut self, cap: CapId) {
        let Some(c) = self.state.caps.caps.get(&cap) else {
            return;
        };
        let mut vs: [Option<VhmId>; 2] = [None, None];
        if let Principal::Vhm(v) = c.holder {
            vs[0] = Some(v);
        }
        if let Target::Vhm(v) = c.target {
            vs[1] = Some(v);
        }
        if vs[0] == vs[1] {
            vs[1] = None;
        }
        for v in vs.into_iter().flatten() {
            let caps = &self.state.caps;
            if let Some(vhm) = self.state.vhms.get_mut(&v) {
                let idx = &mut vhm.cap_index;
                if idx.len() >= 64 && idx.len().is_power_of_two() {
                    idx.retain(|c| caps.caps.contains_key(c));
                }
                idx.push(cap);
            }
        }
    }

    // ----- reservations -----------------------------------------------------------------------

    fn reserve(
        &mut self,
        vhm: VhmId,
        r: Resource,
        amount: u64,
        release: bool,
        out: &mut Outcome,
    ) -> Result<(), Rejection> {
        if r.kind() == ResourceKind::Placed {
            return Err(Rejection::PlacedResourceFixed { resource: r });
        }
        if amount == 0 {
            return Err(Rejection::InvalidAmount {
                what: "reserve/release".into(),
                reason: "the amount must be positive".into(),
            });
        }
        let v = &self.state.vhms[&vhm];
        if release {
            if amount > v.available(r) {
                return Err(Rejection::Insufficient {
                    resource: r,
                    requested: amount,
                    available: v.available(r),
                    from: Source::Vhm(vhm),
                });
            }
        } else {
            let new = v.held.get(r).saturating_add(amount);
            if new > v.quota.get(r) {
                return Err(Rejection::QuotaExceeded {
                    resource: r,
                    requested: new,
                    quota: v.quota.get(r),
                });
            }
            match v.parent {
                Some(p) => {
                    let pv = &self.state.vhms[&p];
                    if amount > pv.available(r) {
                        return Err(Rejection::Insufficient {
                            resource: r,
                            requested: amount,
                            available: pv.available(r),
                            from: Source::Vhm(p),
                        });
                    }
                }
                None if r.kind() == ResourceKind::Capacity => {
                    let free = self.state.machine_free.get(r);
                    if amount > free {
                        return Err(Rejection::Insufficient {
                            resource: r,
                            requested: amount,
                            available: free,
                            from: Source::Machine,
                        });
                    }
                }
                None => {}
            }
        }
        // Commit.
        let parent = v.parent;
        let i = r.index();
        let v = self.state.vhms.get_mut(&vhm).expect("live");
        if release {
            v.held.0[i] -= amount;
        } else {
            v.held.0[i] += amount;
        }
        match parent {
            Some(p) => {
                let pv = self
                    .state
                    .vhms
                    .get_mut(&p)
                    .expect("parent of a live VHM is live");
                if release {
                    pv.delegated.0[i] -= amount;
                } else {
                    pv.delegated.0[i] += amount;
                }
                self.touched.vhms.push(p);
            }
            None if r.kind() == ResourceKind::Capacity => {
                let f = &mut self.state.machine_free.0[i];
                if release {
                    *f += amount;
                } else {
                    *f -= amount;
                }
            }
            None => {}
        }
        self.touched.vhms.push(vhm);
        out.events.push(Event::Reserved {
            vhm,
            resource: r,
            amount,
            released: release,
        });
        Ok(())
    }

    fn reserve_window(
        &mut self,
        vhm: VhmId,
        start_ns: u64,
        duration_ns: u64,
        out: &mut Outcome,
    ) -> Result<(), Rejection> {
        let limits = &self.genesis.limits;
        let v = &self.state.vhms[&vhm];
        if v.region.is_none() {
            return Err(Rejection::DomainNotAllocated {
                vhm,
                domain: Domain::Phi,
            });
        }
        if duration_ns == 0 || duration_ns > limits.window_ns_max {
            return Err(Rejection::InvalidAmount {
                what: "coherence window".into(),
                reason: "the duration must be positive and at most Limits::window_ns_max".into(),
            });
        }
        let now_ns = self.now_ns();
        if start_ns < now_ns {
            return Err(Rejection::WindowInPast { start_ns, now_ns });
        }
        let Some(end_ns) = start_ns.checked_add(duration_ns) else {
            return Err(Rejection::InvalidAmount {
                what: "coherence window".into(),
                reason: "the end overflows".into(),
            });
        };
        if duration_ns > v.available(Resource::CoherenceWindowNs) {
            return Err(Rejection::Insufficient {
                resource: Resource::CoherenceWindowNs,
                requested: duration_ns,
                available: v.available(Resource::CoherenceWindowNs),
                from: Source::Vhm(vhm),
            });
        }
        if v.windows.len() as u64 >= u64::from(limits.windows_per_vhm_max) {
            return Err(Rejection::LimitReached {
                what: "coherence windows of one VHM".into(),
                max: u64::from(limits.windows_per_vhm_max),
            });
        }
        if self.state.windows.len() as u64 >= u64::from(limits.windows_live_max) {
            return Err(Rejection::LimitReached {
                what: "live coherence windows".into(),
                max: u64::from(limits.windows_live_max),
            });
        }
        if let Some(w) = self.window_conflict(vhm, start_ns, end_ns) {
            return Err(Rejection::WindowOverlap {
                start_ns,
                end_ns,
                other: w.id,
                other_vhm: w.vhm,
            });
        }
        // Commit.
        let provider = self.phi_provider_of(v);
        let id = WindowId(self.state.next_window);
        self.state.next_window += 1;
        self.state.windows.insert(
            id,
            Window {
                id,
                vhm,
                provider,
                start_ns,
                end_ns,
            },
        );
        self.state.windows_by_start.insert((start_ns, id));
        let v = self.state.vhms.get_mut(&vhm).expect("live");
        v.charged.0[Resource::CoherenceWindowNs.index()] += duration_ns;
        insert_sorted(&mut v.windows, id);
        self.touched.vhms.push(vhm);
        self.touched.windows = true;
        out.events.push(Event::WindowReserved {
            window: id,
            vhm,
            start_ns,
            end_ns,
        });
        Ok(())
    }

    /// The first live window on the same mesh overlapping `start..end` that `vhm` may not
    /// overlap.
    fn window_conflict(&self, vhm: VhmId, start_ns: u64, end_ns: u64) -> Option<Window> {
        let v = &self.state.vhms[&vhm];
        let provider = self.phi_provider_of(v);
        let lo = start_ns.saturating_sub(self.genesis.limits.window_ns_max);
        self.state
            .windows_by_start
            .range((lo, WindowId(0))..(end_ns, WindowId(0)))
            .map(|(_, id)| self.state.windows[id])
            .find(|w| {
                w.end_ns > start_ns
                    && w.provider == provider
                    && (w.vhm == vhm || v.contracts.binary_search(&w.vhm).is_err())
            })
    }

    fn share(&mut self, a: VhmId, b: VhmId, out: &mut Outcome) -> Result<(), Rejection> {
        let max = self.genesis.limits.contracts_per_vhm_max as usize;
        let (va, vb) = (&self.state.vhms[&a], &self.state.vhms[&b]);
        if va.contracts.binary_search(&b).is_ok() {
            return Ok(());
        }
        if va.contracts.len() >= max || vb.contracts.len() >= max {
            return Err(Rejection::LimitReached {
                what: "sharing contracts of one VHM".into(),
                max: max as u64,
            });
        }
        insert_sorted(&mut self.state.vhms.get_mut(&a).expect("live").contracts, b);
        insert_sorted(&mut self.state.vhms.get_mut(&b).expect("live").contracts, a);
        self.touched.vhms.extend([a, b]);
        self.touched.windows = true;
        out.events.push(Event::WindowsShared {
            a: a.min(b),
            b: a.max(b),
        });
        Ok(())
    }

    // ----- jobs -------------------------------------------------------------------------------

    fn submit(
        &mut self,
        vhm: VhmId,
        domain: Domain,
        cost: JobCost,
        out: &mut Outcome,
    ) -> Result<(), Rejection> {
        let limits = &self.genesis.limits;
        let v = &self.state.vhms[&vhm];
        // Its own resources: a job cannot run on what is lent to nested VHMs.
        let has = match domain {
            Domain::K => v.available(Resource::VcpuSlots) > 0,
            Domain::Q => v.available(Resource::LogicalQubits) > 0,
            Domain::Phi => v.region.is_some(),
        };
        if !has {
            return Err(Rejection::DomainNotAllocated { vhm, domain });
        }
        if let Some(d) = v.deadline_tick {
            if self.state.now_tick > d {
                return Err(Rejection::DeadlinePassed {
                    vhm,
                    deadline_tick: d,
                });
            }
        }
        let bad = |reason: &'static str| {
            Err(Rejection::InvalidAmount {
                what: "job cost".into(),
                reason: reason.into(),
            })
        };
        match domain {
            Domain::K if cost.fuel_units == 0 || cost.shots != 0 || cost.error_ppm != 0 => {
                return bad("a K job declares fuel_units > 0 and no shots or error");
            }
            Domain::Q if cost.shots == 0 || cost.fuel_units != 0 => {
                return bad("a Q job declares shots > 0 and no fuel");
            }
            Domain::Phi
                if cost.duration_ns == 0
                    || cost.fuel_units != 0
                    || cost.shots != 0
                    || cost.error_ppm != 0 =>
            {
                return bad("a Φ job declares duration_ns > 0 and no fuel, shots or error");
            }
            _ => {}
        }
        let charge = cost.charge();
        for r in [
            Resource::FuelUnits,
            Resource::Shots,
            Resource::ErrorBudgetPpm,
        ] {
            if charge.get(r) > v.available(r) {
                return Err(Rejection::Insufficient {
                    resource: r,
                    requested: charge.get(r),
                    available: v.available(r),
                    from: Source::Vhm(vhm),
                });
            }
        }
        if v.jobs.len() as u64 >= u64::from(limits.jobs_per_vhm_max) {
            return Err(Rejection::LimitReached {
                what: "live jobs of one VHM".into(),
                max: u64::from(limits.jobs_per_vhm_max),
            });
        }
        if self.state.jobs.len() as u64 >= u64::from(limits.jobs_live_max) {
            return Err(Rejection::LimitReached {
                what: "live jobs".into(),
                max: u64::from(limits.jobs_live_max),
            });
        }
        if domain == Domain::Phi && !self.window_ahead(v, cost.duration_ns) {
            return Err(Rejection::NoWindow {
                vhm,
                duration_ns: cost.duration_ns,
            });
        }
        // Commit.
        let id = JobId(self.state.next_job);
        self.state.next_job += 1;
        let now = self.state.now_tick;
        let v = self.state.vhms.get_mut(&vhm).expect("live");
        v.charged = v
            .charged
            .checked_add(&charge)
            .expect("checked against available");
        v.jobs.push(id);
        self.state.jobs.insert(
            id,
            Job {
                id,
                vhm,
                domain,
                cost,
                submitted_tick: now,
                ready_tick: now,
                state: JobState::Queued,
                fuel_remaining: cost.fuel_units,
                last_slice_fuel: 0,
            },
        );
        self.state.queues[domain.index()].push(id);
        self.touched.vhms.push(vhm);
        self.touched.jobs = true;
        out.events.push(Event::JobQueued {
            job: id,
            vhm,
            domain,
        });
        Ok(())
    }

    /// True when one of the VHM's windows still has `duration_ns` ahead of now.
    fn window_ahead(&self, v: &Vhm, duration_ns: u64) -> bool {
        let now = self.now_ns();
        v.windows.iter().any(|w| {
            let w = &self.state.windows[w];
            w.end_ns.saturating_sub(w.start_ns.max(now)) >= duration_ns
        })
    }

    fn completion(
        &mut self,
        job: JobId,
        status: JobStatus,
        out: &mut Outcome,
    ) -> Result<(), Rejection> {
        let j = match self.state.jobs.get(&job) {
            Some(j) if j.state != JobState::Queued => j.clone(),
            _ => return Err(Rejection::JobNotRunning { job }),
        };
        if matches!(j.state, JobState::Running | JobState::Waiting) {
            self.state.queues[Domain::K.index()].retain(|x| *x != job);
            // Ended early: the fuel it declared but was never dispatched goes back to its VHM
            // (a declared figure the core itself tracked; what the slices really used is unknown
            // here and changes nothing).
            if j.fuel_remaining > 0 {
                let v = self
                    .state
                    .vhms
                    .get_mut(&j.vhm)
                    .expect("a live job's VHM is live");
                v.charged.0[Resource::FuelUnits.index()] -= j.fuel_remaining;
            }
        }
        self.finish_job(&j);
        out.events.push(Event::JobCompleted { job, status });
        if j.domain != Domain::K {
            self.wake(j.vhm, out);
        }
        Ok(())
    }

    fn wait(&mut self, job: JobId, fuel_unused: u64, out: &mut Outcome) -> Result<(), Rejection> {
        let j = &self.state.jobs[&job];
        if j.domain != Domain::K
            || !matches!(j.state, JobState::Running | JobState::AwaitingCompletion)
        {
            return Err(Rejection::NotWaitable { job });
        }
        if fuel_unused > j.last_slice_fuel {
            return Err(Rejection::InvalidAmount {
                what: "fuel_unused".into(),
                reason: format!(
                    "at most the {} fuel units of the job's last slice not yet returned",
                    j.last_slice_fuel
                )
                .into(),
            });
        }
        if j.fuel_remaining + fuel_unused == 0 {
            return Err(Rejection::InvalidAmount {
                what: "fuel_unused".into(),
                reason: "the job has no fuel left to resume with; let it end instead".into(),
            });
        }
        let v = &self.state.vhms[&j.vhm];
        let wakeable = v.jobs.iter().any(|x| {
            self.state
                .jobs
                .get(x)
                .is_some_and(|o| o.domain != Domain::K)
        });
        if !wakeable {
            return Err(Rejection::NothingToWaitFor { job });
        }
        let vhm = j.vhm;
        let j = self.state.jobs.get_mut(&job).expect("checked above");
        if j.state == JobState::Running {
            self.state.queues[Domain::K.index()].retain(|x| *x != job);
        }
        j.state = JobState::Waiting;
        j.fuel_remaining += fuel_unused;
        j.last_slice_fuel = 0;
        self.touched.vhms.push(vhm);
        self.touched.jobs = true;
        out.events.push(Event::JobWaiting { job, fuel_unused });
        Ok(())
    }

    /// Wakes every parked K job of `vhm` (one of its Q or Φ jobs ended): back in the K queue,
    /// ready from now.
    fn wake(&mut self, vhm: VhmId, out: &mut Outcome) {
        let Some(v) = self.state.vhms.get(&vhm) else {
            return;
        };
        let now = self.state.now_tick;
        for &jid in &v.jobs {
            let Some(j) = self.state.jobs.get_mut(&jid) else {
                continue;
            };
            if j.state != JobState::Waiting {
                continue;
            }
            j.state = JobState::Running;
            j.ready_tick = now;
            self.state.queues[Domain::K.index()].push(jid);
            self.touched.jobs = true;
            out.events.push(Event::JobWoken { job: jid });
        }
    }

    fn revoke_token(&mut self, token: TokenId, out: &mut Outcome) -> Result<(), Rejection> {
        if self.state.revoked_tokens.contains(&token) {
            return Err(Rejection::TokenAlreadyRevoked { token });
        }
        let max = self.genesis.limits.revoked_tokens_max;
        if self.state.revoked_tokens.len() as u64 >= u64::from(max) {
            return Err(Rejection::LimitReached {
                what: "revoked token blocks".into(),
                max: u64::from(max),
            });
        }
        self.state.revoked_tokens.insert(token);
        out.events.push(Event::TokenRevoked { token });
        Ok(())
    }

    fn deny(&mut self, vhm: Option<VhmId>, denial: Denial, out: &mut Outcome) {
        out.events.push(Event::Denied { vhm, denial });
        if let Some(v) = vhm {
            self.stop(v, StopReason::Faulted(FAULT_DENIED), out);
        }
    }

    /// Removes a dispatched job and frees what it occupied.
    fn finish_job(&mut self, j: &Job) {
        self.state.jobs.remove(&j.id);
        let v = &self.state.vhms[&j.vhm];
        let (qp, pp) = (self.q_provider_of(v), self.phi_provider_of(v));
        let v = self
            .state
            .vhms
            .get_mut(&j.vhm)
            .expect("a live job's VHM is live");
        remove_sorted(&mut v.jobs, j.id);
        if j.state == JobState::AwaitingCompletion || j.state == JobState::Running {
            match j.domain {
                Domain::Q => {
                    v.q_busy = false;
                    self.state.q_inflight[qp as usize] -= 1;
                }
                Domain::Phi => {
                    v.phi_busy = false;
                    self.state.phi_inflight[pp as usize] -= 1;
                }
                Domain::K => {}
            }
        }
        self.touched.vhms.push(j.vhm);
        self.touched.jobs = true;
    }

    // ----- IPC --------------------------------------------------------------------------------

    fn open_channel(
        &mut self,
        a: VhmId,
        b: VhmId,
        ca: &CapView,
        cb: &CapView,
        out: &mut Outcome,
    ) -> Result<(), Rejection> {
        let max = self.genesis.limits.channels_live_max;
        if self.state.channels.len() as u64 >= u64::from(max) {
            return Err(Rejection::LimitReached {
                what: "open channels".into(),
                max: u64::from(max),
            });
        }
        self.caps_room(2)?;
        let id = ChannelId(self.state.next_channel);
        self.state.next_channel += 1;
        let exp = |c: &CapView| c.expires_tick;
        let cap_a = self.state.caps.issue(
            ca.id,
            Principal::Vhm(a),
            Target::Channel(id),
            Rights::ENDPOINT,
            exp(ca),
        );
        let cap_b = self.state.caps.issue(
            cb.id,
            Principal::Vhm(b),
            Target::Channel(id),
            Rights::ENDPOINT,
            exp(cb),
        );
        self.state.channels.insert(
            id,
            Channel {
                id,
                a,
                b,
                cap_a,
                cap_b,
                next_seq: 0,
                granted: Vec::new(),
            },
        );
        for (v, c) in [(a, cap_a), (b, cap_b)] {
            let vhm = self.state.vhms.get_mut(&v).expect("live");
            insert_sorted(&mut vhm.channels, id);
            self.index_cap(c);
            self.touched.caps_issued.push(c);
            self.touched.vhms.push(v);
        }
        out.events.push(Event::CapIssued {
            cap: cap_a,
            parent: ca.id,
            holder: Principal::Vhm(a),
        });
        out.events.push(Event::CapIssued {
            cap: cap_b,
            parent: cb.id,
            holder: Principal::Vhm(b),
        });
        out.events.push(Event::ChannelOpened {
            channel: id,
            a,
            b,
            cap_a,
            cap_b,
        });
        Ok(())
    }

    /// Closes a live channel and revokes both endpoint capabilities.
    fn close_channel(&mut self, channel: ChannelId, out: &mut Outcome) {
        let Some(ch) = self.state.channels.remove(&channel) else {
            return;
        };
        let mut revoked = Vec::new();
        self.state.caps.revoke(ch.cap_a, &mut revoked);
        self.state.caps.revoke(ch.cap_b, &mut revoked);
        for &c in &ch.granted {
            self.state.caps.revoke(c, &mut revoked);
        }
        for v in [ch.a, ch.b] {
            if let Some(vhm) = self.state.vhms.get_mut(&v) {
                remove_sorted(&mut vhm.channels, channel);
                self.touched.vhms.push(v);
            }
        }
        out.events.push(Event::ChannelClosed { channel });
        // Endpoint capabilities may have derived ones (attenuated copies); they go too.
        self.after_revoke(&revoked, out);
    }

    fn send(
        &mut self,
        principal: Principal,
        cap: CapId,
        channel: ChannelId,
        payload: &[u8],
        out: &mut Outcome,
    ) -> Result<(), Rejection> {
        let (a, b, cap_a, cap_b) = {
            let ch = self.live_channel(channel)?;
            (ch.a, ch.b, ch.cap_a, ch.cap_b)
        };
        self.auth(principal, cap, Target::Channel(channel), Rights::IPC)?;
        let (from, to) = match principal {
            Principal::Vhm(v) if v == a && cap == cap_a => (a, b),
            Principal::Vhm(v) if v == b && cap == cap_b => (b, a),
            _ => return Err(Rejection::NotAnEndpoint { channel, principal }),
        };
        let max = self.genesis.limits.message_bytes_max;
        if payload.len() as u64 > u64::from(max) {
            return Err(Rejection::LimitReached {
                what: "IPC message bytes".into(),
                max: u64::from(max),
            });
        }
        let ch = self.state.channels.get_mut(&channel).expect("live");
        let seq = ch.next_seq;
        ch.next_seq += 1;
        out.effects.push(Effect::Deliver {
            channel,
            from,
            to,
            seq,
            payload: payload.to_vec(),
        });
        Ok(())
    }

    // ----- capabilities -----------------------------------------------------------------------

    fn derive(
        &mut self,
        from: &CapView,
        to: Principal,
        target: Target,
        rights: Rights,
        expires_tick: Option<u64>,
        out: &mut Outcome,
    ) -> Result<(), Rejection> {
        if let Principal::Vhm(v) = to {
            self.state.live(v)?;
        }
        match target {
            Target::Machine => {}
            Target::Vhm(v) => {
                self.state.live(v)?;
            }
            Target::Channel(c) => {
                self.live_channel(c)?;
            }
        }
        if !self.state.within(target, from.target) {
            return Err(Rejection::Escalation {
                cap: from.id,
                what: "its target lies outside the parent's".into(),
            });
        }
        if !from.rights.contains(rights) {
            return Err(Rejection::Escalation {
                cap: from.id,
                what: "it has rights the parent lacks".into(),
            });
        }
        let expires = expires_tick.unwrap_or(from.expires_tick);
        if expires > from.expires_tick {
            return Err(Rejection::Escalation {
                cap: from.id,
                what: "it expires after the parent".into(),
            });
        }
        self.caps_room(1)?;
        let id = self.state.caps.issue(from.id, to, target, rights, expires);
        self.index_cap(id);
        if let Target::Channel(c) = target {
            if let Some(ch) = self.state.channels.get_mut(&c) {
                ch.granted.push(id);
            }
        }
        self.touched.caps_issued.push(id);
        out.events.push(Event::CapIssued {
            cap: id,
            parent: from.id,
            holder: to,
        });
        Ok(())
    }

    fn revoke_cmd(
        &mut self,
        by: &CapView,
        victim: CapId,
        out: &mut Outcome,
    ) -> Result<(), Rejection> {
        if victim == ROOT_CAP {
            return Err(Rejection::Escalation {
                cap: by.id,
                what: "the operator's root capability cannot be revoked".into(),
            });
        }
        if !self.state.caps.caps.contains_key(&victim) {
            return Err(if victim.0 < self.state.caps.next_id {
                Rejection::CapabilityRevoked { cap: victim }
            } else {
                Rejection::UnknownCapability { cap: victim }
            });
        }
        if !self.state.caps.derives_from(victim, by.id) {
            return Err(Rejection::OutOfScope {
                cap: by.id,
                covers: by.target,
                target: self.cap_target(victim),
            });
        }
        if victim != by.id && !by.rights.contains(Rights::REVOKE) {
            return Err(Rejection::MissingRight {
                cap: by.id,
                needed: Rights::REVOKE,
                held: by.rights,
            });
        }
        let mut revoked = Vec::new();
        self.state.caps.revoke(victim, &mut revoked);
        self.after_revoke(&revoked, out);
        Ok(())
    }

    /// Records revoked capabilities and closes the channels whose endpoint capability went.
    fn after_revoke(&mut self, revoked: &[(CapId, Target)], out: &mut Outcome) {
        for &(c, _) in revoked {
            out.events.push(Event::CapRevoked { cap: c });
        }
        for &(c, t) in revoked {
            if let Target::Channel(ch) = t {
                // A channel lives only while both endpoint capabilities do; closing it revokes the
                // other one. Revoking a copy or a grant over the channel leaves it open.
                let endpoint = self
                    .state
                    .channels
                    .get(&ch)
                    .is_some_and(|x| x.cap_a == c || x.cap_b == c);
                if endpoint {
                    self.close_channel(ch, out);
                }
            }
        }
    }

    // ----- stopping ---------------------------------------------------------------------------

    /// Stops a VHM and its subtree, children first (post-order, ascending), reclaiming everything.
    fn stop(&mut self, vhm: VhmId, reason: StopReason, out: &mut Outcome) {
        let mut order = Vec::new();
        self.post_order(vhm, &mut order);
        for u in order {
            let r = if u == vhm {
                reason
            } else {
                StopReason::ParentStopped(vhm)
            };
            self.stop_one(u, r, out);
        }
        for q in &mut self.state.queues {
            let jobs = &self.state.jobs;
            q.retain(|j| jobs.contains_key(j));
        }
    }

    fn post_order(&self, v: VhmId, order: &mut Vec<VhmId>) {
        for &c in &self.state.vhms[&v].children {
            self.post_order(c, order);
        }
        order.push(v);
    }

    fn stop_one(&mut self, u: VhmId, reason: StopReason, out: &mut Outcome) {
        // Taken out of the table first: nothing below reaches it through the table any more.
        let v = self.state.vhms.remove(&u).expect("stopping a live VHM");
        debug_assert!(v.children.is_empty() && v.delegated.is_zero());
        // Jobs: queued ones are refunded; dispatched ones are cancelled at the driver.
        let (qp, pp) = (
            self.q_provider_of(&v) as usize,
            self.phi_provider_of(&v) as usize,
        );
        let mut charged = v.charged;
        for &jid in &v.jobs {
            let j = self.state.jobs.remove(&jid).expect("indexed job is live");
            if j.state == JobState::Queued {
                charged = charged
                    .checked_sub(&j.cost.charge())
                    .expect("queued charge is within charged");
            } else {
                out.effects.push(Effect::CancelJob { job: jid });
                match j.domain {
                    Domain::Q => self.state.q_inflight[qp] -= 1,
                    Domain::Phi => self.state.phi_inflight[pp] -= 1,
                    Domain::K => {}
                }
            }
            out.events.push(Event::JobCancelled { job: jid });
        }
        if !v.jobs.is_empty() {
            self.touched.jobs = true;
        }
        for &ch in &v.channels {
            self.close_channel(ch, out);
        }
        for &w in &v.windows {
            let win = self
                .state
                .windows
                .remove(&w)
                .expect("indexed window is live");
            self.state.windows_by_start.remove(&(win.start_ns, w));
        }
        for &p in &v.contracts {
            if let Some(pv) = self.state.vhms.get_mut(&p) {
                remove_sorted(&mut pv.contracts, u);
                self.touched.vhms.push(p);
            }
        }
        if !v.windows.is_empty() || !v.contracts.is_empty() {
            self.touched.windows = true;
        }
        for &q in &v.qubits {
            self.state.q_owner[q as usize] = v.parent;
        }
        if let Some(r) = v.region {
            self.set_phi_owner(r, v.parent);
        }
        if !v.qubits.is_empty() || v.region.is_some() {
            self.touched.placement = true;
        }
        match v.parent {
            Some(p) => {
                let pv = self.state.vhms.get_mut(&p).expect("parent outlives child");
                pv.delegated = pv
                    .delegated
                    .checked_sub(&v.held.pooled())
                    .expect("child held is within parent's delegated");
                pv.charged = pv
                    .charged
                    .checked_add(&charged.only(ResourceKind::Budget))
                    .expect("bounded by held");
                remove_sorted(&mut pv.children, u);
                self.touched.vhms.push(p);
            }
            None => {
                let pooled = v.held.pooled();
                for r in Resource::ALL {
                    if r.kind() != ResourceKind::Budget {
                        self.state.machine_free.0[r.index()] += pooled.get(r);
                    }
                }
                self.state.root_names.remove(&v.name);
            }
        }
        let mut revoked = Vec::new();
        for &c in &v.cap_index {
            self.state.caps.revoke(c, &mut revoked);
        }
        self.after_revoke(&revoked, out);
        self.touched.vhms.push(u);
        out.events.push(Event::VhmStopped { vhm: u, reason });
        out.effects.push(Effect::StopVhm { vhm: u, reason });
    }

    // ----- time and the Cross-Domain Scheduler --------------------------------------------------

    fn tick(&mut self, ticks: u32, out: &mut Outcome) -> Result<(), Rejection> {
        let max = self.genesis.limits.ticks_per_input_max;
        if ticks == 0 || ticks > max {
            return Err(Rejection::TicksOutOfRange { ticks, max });
        }
        for _ in 0..ticks {
            self.state.now_tick += 1;
            self.expire_windows();
            self.expire_jobs(out);
            self.schedule_k(out);
            self.schedule_q(out);
            self.schedule_phi(out);
        }
        out.events.push(Event::Ticked {
            tick: self.state.now_tick,
        });
        Ok(())
    }

    fn expire_windows(&mut self) {
        let now = self.now_ns();
        let mut gone = Vec::new();
        for &(start, id) in &self.state.windows_by_start {
            if start >= now {
                break;
            }
            if self.state.windows[&id].end_ns <= now {
                gone.push((start, id));
            }
        }
        for (start, id) in gone {
            let w = self.state.windows.remove(&id).expect("indexed");
            self.state.windows_by_start.remove(&(start, id));
            if let Some(v) = self.state.vhms.get_mut(&w.vhm) {
                remove_sorted(&mut v.windows, id);
            }
            self.touched.windows = true;
        }
    }

    fn expire_jobs(&mut self, out: &mut Outcome) {
        let now = self.state.now_tick;
        let mut expired = Vec::new();
        for d in Domain::ALL {
            for &jid in &self.state.queues[d.index()] {
                let j = &self.state.jobs[&jid];
                if j.state != JobState::Queued {
                    continue;
                }
                let v = &self.state.vhms[&j.vhm];
                let late = v.deadline_tick.is_some_and(|dl| now > dl);
                let no_window = d == Domain::Phi && !self.window_ahead(v, j.cost.duration_ns);
                if late || no_window {
                    expired.push(jid);
                }
            }
        }
        if expired.is_empty() {
            return;
        }
        let mut woken = Vec::new();
        for jid in &expired {
            let j = self.state.jobs.remove(jid).expect("queued job is live");
            let v = self.state.vhms.get_mut(&j.vhm).expect("live");
            v.charged = v
                .charged
                .checked_sub(&j.cost.charge())
                .expect("refund within charged");
            remove_sorted(&mut v.jobs, j.id);
            self.touched.vhms.push(j.vhm);
            out.events.push(Event::JobExpired { job: *jid });
            if j.domain != Domain::K {
                woken.push(j.vhm);
            }
        }
        self.touched.jobs = true;
        for q in &mut self.state.queues {
            let jobs = &self.state.jobs;
            q.retain(|j| jobs.contains_key(j));
        }
        for v in woken {
            self.wake(v, out);
        }
    }

    /// Orders a domain's queue into `self.scratch` by the scheduling key, ties by job id.
    fn order(&mut self, d: Domain) {
        let now = self.state.now_tick;
        let limits = &self.genesis.limits;
        let m = &self.genesis.machine;
        let caps = [
            u64::from(m.k.vcpu_slots),
            m.q.iter()
                .map(|c| u64::from(c.max_inflight_jobs))
                .sum::<u64>()
                .max(1),
            m.phi
                .iter()
                .map(|c| u64::from(c.max_inflight_jobs))
                .sum::<u64>()
                .max(1),
        ];
        self.scratch.clear();
        for &jid in &self.state.queues[d.index()] {
            let j = &self.state.jobs[&jid];
            let v = &self.state.vhms[&j.vhm];
            // Only jobs that could run now are ordered; the others keep their place in the queue
            // (their VHM is busy, or lent everything to nested VHMs after they were queued).
            let runnable = match d {
                Domain::K => v.available(Resource::VcpuSlots) > 0,
                Domain::Q => !v.q_busy && v.available(Resource::LogicalQubits) > 0,
                Domain::Phi => !v.phi_busy,
            };
            if !runnable {
                continue;
            }
            let waited = now.saturating_sub(j.ready_tick);
            let starving = waited >= limits.starvation_ticks;
            let eff = u64::from(v.priority)
                .saturating_add(waited / limits.aging_ticks.max(1))
                .min(255);
            let share = (0..3)
                .map(|i| v.service[i].saturating_mul(1_000_000) / caps[i])
                .max()
                .unwrap_or(0);
            let key = SchedKey {
                not_starving: u8::from(!starving),
                starving_since: if starving { j.ready_tick } else { 0 },
                inv_priority: 255 - eff as u8,
                deadline: v.deadline_tick.unwrap_or(u64::MAX),
                share_ppm: share,
            };
            self.scratch.push((key, jid));
        }
        self.scratch.sort_unstable();
    }

    fn schedule_k(&mut self, out: &mut Outcome) {
        if self.state.queues[Domain::K.index()].is_empty() {
            return;
        }
        self.order(Domain::K);
        let m = &self.genesis.machine;
        let mut slots = m.k.vcpu_slots;
        let per_slice = m.k.fuel_per_slice;
        let now = self.state.now_tick;
        // Slices given to each VHM this tick (few entries: a linear map is fastest).
        let mut used: Vec<(VhmId, u64)> = Vec::new();
        let mut done = false;
        for i in 0..self.scratch.len() {
            if slots == 0 {
                break;
            }
            let jid = self.scratch[i].1;
            let j = self.state.jobs.get_mut(&jid).expect("queued job is live");
            let v = self.state.vhms.get_mut(&j.vhm).expect("live");
            let slot = match used.iter_mut().find(|(x, _)| *x == j.vhm) {
                Some(e) => e,
                None => {
                    used.push((j.vhm, 0));
                    used.last_mut().expect("just pushed")
                }
            };
            // Only its own vCPUs: those lent to nested VHMs run the children's slices.
            if slot.1 >= v.available(Resource::VcpuSlots) {
                continue; // this VHM's vCPUs are all busy this tick: backfill with others
            }
            slot.1 += 1;
            slots -= 1;
            let fuel = j.fuel_remaining.min(per_slice);
            j.fuel_remaining -= fuel;
            j.last_slice_fuel = fuel;
            let last = j.fuel_remaining == 0;
            if j.state == JobState::Queued {
                out.events.push(Event::JobDispatched { job: jid });
            }
            j.state = if last {
                JobState::AwaitingCompletion
            } else {
                JobState::Running
            };
            j.ready_tick = now;
            v.service[0] += 1;
            done |= last;
            out.effects.push(Effect::RunSlice {
                job: jid,
                vhm: j.vhm,
                fuel_units: fuel,
                last,
            });
            self.touched.vhms.push(j.vhm);
            self.touched.jobs = true;
        }
        if done {
            let jobs = &self.state.jobs;
            self.state.queues[Domain::K.index()]
                .retain(|j| jobs[j].state != JobState::AwaitingCompletion);
        }
    }

    fn schedule_q(&mut self, out: &mut Outcome) {
        if self.state.queues[Domain::Q.index()].is_empty() {
            return;
        }
        let full = |st: &State, m: &Machine| {
            st.q_inflight
                .iter()
                .zip(&m.q)
                .all(|(n, c)| *n >= c.max_inflight_jobs)
        };
        if full(&self.state, &self.genesis.machine) {
            return;
        }
        self.order(Domain::Q);
        let mut any = false;
        for i in 0..self.scratch.len() {
            if full(&self.state, &self.genesis.machine) {
                break;
            }
            let jid = self.scratch[i].1;
            let j = &self.state.jobs[&jid];
            let v = &self.state.vhms[&j.vhm];
            if v.q_busy {
                continue;
            }
            let provider = self.q_provider_of(v);
            if self.state.q_inflight[provider as usize]
                >= self.genesis.machine.q[provider as usize].max_inflight_jobs
            {
                continue; // its provider is busy: backfill with jobs for other providers
            }
            let qubits = self.state.own_qubits(v);
            if qubits.is_empty() {
                continue; // every qubit is lent to nested VHMs: wait for them
            }
            let (vid, shots) = (j.vhm, j.cost.shots);
            let v = self.state.vhms.get_mut(&vid).expect("live");
            v.q_busy = true;
            v.service[1] += 1;
            self.state.q_inflight[provider as usize] += 1;
            self.state.jobs.get_mut(&jid).expect("live").state = JobState::AwaitingCompletion;
            out.events.push(Event::JobDispatched { job: jid });
            out.effects.push(Effect::ExecuteQ {
                job: jid,
                vhm: vid,
                provider,
                qubits,
                shots,
            });
            self.touched.vhms.push(vid);
            any = true;
        }
        if any {
            self.touched.jobs = true;
            let jobs = &self.state.jobs;
            self.state.queues[Domain::Q.index()].retain(|j| jobs[j].state == JobState::Queued);
        }
    }

    fn schedule_phi(&mut self, out: &mut Outcome) {
        if self.state.queues[Domain::Phi.index()].is_empty() {
            return;
        }
        let full = |st: &State, m: &Machine| {
            st.phi_inflight
                .iter()
                .zip(&m.phi)
                .all(|(n, c)| *n >= c.max_inflight_jobs)
        };
        if full(&self.state, &self.genesis.machine) {
            return;
        }
        self.order(Domain::Phi);
        let now = self.now_ns();
        let tick_ns = self.genesis.machine.tick_ns;
        let mut any = false;
        for i in 0..self.scratch.len() {
            if full(&self.state, &self.genesis.machine) {
                break;
            }
            let jid = self.scratch[i].1;
            let j = &self.state.jobs[&jid];
            let v = &self.state.vhms[&j.vhm];
            if v.phi_busy {
                continue;
            }
            let provider = self.phi_provider_of(v);
            if self.state.phi_inflight[provider as usize]
                >= self.genesis.machine.phi[provider as usize].max_inflight_jobs
            {
                continue; // its mesh is busy: backfill with jobs for other meshes
            }
            let dur = j.cost.duration_ns;
            let Some(window) = v
                .windows
                .iter()
                .map(|w| self.state.windows[w])
                .find(|w| w.start_ns <= now && now.saturating_add(dur) <= w.end_ns)
            else {
                continue; // its window has not opened yet
            };
            let region = v.region.expect("Φ jobs need a region (checked at submit)");
            let excluded: Vec<PhiRegion> = v
                .children
                .iter()
                .filter_map(|c| self.state.vhms[c].region)
                .collect();
            let vid = j.vhm;
            let v = self.state.vhms.get_mut(&vid).expect("live");
            v.phi_busy = true;
            v.service[2] += dur.div_ceil(tick_ns);
            self.state.phi_inflight[provider as usize] += 1;
            self.state.jobs.get_mut(&jid).expect("live").state = JobState::AwaitingCompletion;
            out.events.push(Event::JobDispatched { job: jid });
            out.effects.push(Effect::ExecutePhi {
                job: jid,
                vhm: vid,
                provider,
                region,
                excluded,
                window: window.id,
                at_ns: now,
                window_start_ns: window.start_ns,
                window_end_ns: window.end_ns,
            });
            self.touched.vhms.push(vid);
            any = true;
        }
        if any {
            self.touched.jobs = true;
            let jobs = &self.state.jobs;
            self.state.queues[Domain::Phi.index()].retain(|j| jobs[j].state == JobState::Queued);
        }
    }
}
