//! The core's vocabulary: inputs (commands, ticks, completions), outputs (effects for drivers,
//! events for the trace) and the typed rejection of every rule a command can break.

use crate::caps::{Rights, Target};
use crate::model::{
    CapId, ChannelId, Denial, Domain, JobCost, JobId, PhiRegion, Resource, TokenId, VhmId, VhmSpec,
    WindowId,
};
use serde::{Deserialize, Serialize};

/// Who issues a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Principal {
    /// The machine's operator (holds the root capability).
    Operator,
    /// A VHM, acting through its runtime.
    Vhm(VhmId),
}

impl std::fmt::Display for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Principal::Operator => f.write_str("operator"),
            Principal::Vhm(v) => write!(f, "{v}"),
        }
    }
}

/// How a job ended, as its provider reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobStatus {
    /// Finished normally.
    Ok,
    /// Failed with a provider-specific code; the VHM is not faulted by this alone.
    Failed(u32),
}

/// One input to the core. The orchestration trace is the ordered list of these.
// Inputs are decoded and applied one at a time, so the size of the largest variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Input {
    /// A command from a principal, authorised by a capability it presents.
    Command {
        /// Who issues it.
        principal: Principal,
        /// The capability presented.
        cap: CapId,
        /// What is asked.
        command: Command,
    },
    /// Advances logical time by `ticks` (1..=`Limits::ticks_per_input_max`).
    Tick {
        /// Ticks to advance.
        ticks: u32,
    },
    /// A provider reports that a dispatched job finished.
    Completion {
        /// The job.
        job: JobId,
        /// How it ended.
        status: JobStatus,
    },
}

/// A command. Each variant states the right it needs on which target.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Creates a root VHM. Needs `CREATE` on the machine.
    CreateVhm {
        /// The specification.
        spec: VhmSpec,
    },
    /// Creates a VHM nested in `parent`, carved from the parent's holdings. Needs `NEST` on the
    /// parent.
    CreateNested {
        /// The parent.
        parent: VhmId,
        /// The specification; its quota must lie within the parent's.
        spec: VhmSpec,
    },
    /// Draws more of a capacity or budget resource (not a placed one). Needs `RESERVE`.
    Reserve {
        /// The VHM.
        vhm: VhmId,
        /// Which resource.
        resource: Resource,
        /// How much more.
        amount: u64,
    },
    /// Gives back an unused amount of a capacity or budget resource. Needs `RESERVE`.
    Release {
        /// The VHM.
        vhm: VhmId,
        /// Which resource.
        resource: Resource,
        /// How much.
        amount: u64,
    },
    /// Reserves an exclusive coherence window on the Φ device. Needs `RESERVE`.
    ReserveWindow {
        /// The VHM (it must hold a Φ region).
        vhm: VhmId,
        /// Start in logical nanoseconds; not in the past.
        start_ns: u64,
        /// Length in nanoseconds.
        duration_ns: u64,
    },
    /// Establishes a sharing contract: the two VHMs' coherence windows may overlap. Needs `SHARE`
    /// on `a` through the presented capability and on `b` through `peer_cap`.
    ShareWindows {
        /// One VHM.
        a: VhmId,
        /// The other.
        b: VhmId,
        /// A capability of the same principal covering `b`.
        peer_cap: CapId,
    },
    /// Submits a job with its declared cost. Needs `SUBMIT`.
    SubmitJob {
        /// The VHM.
        vhm: VhmId,
        /// The domain that runs it.
        domain: Domain,
        /// The declared cost.
        cost: JobCost,
    },
    /// Opens an IPC channel between two VHMs and issues an endpoint capability to each. Needs
    /// `IPC` on `a` through the presented capability and on `b` through `peer_cap`.
    OpenChannel {
        /// One end.
        a: VhmId,
        /// The other end.
        b: VhmId,
        /// A capability of the same principal covering `b`.
        peer_cap: CapId,
    },
    /// Closes a channel and revokes its endpoint capabilities. Needs `IPC` on the channel or on
    /// either end.
    CloseChannel {
        /// The channel.
        channel: ChannelId,
    },
    /// Sends a message on a channel. The principal must be an endpoint VHM presenting its live
    /// endpoint capability; the peer must still hold its own.
    Send {
        /// The channel.
        channel: ChannelId,
        /// The bytes (at most `Limits::message_bytes_max`).
        payload: Vec<u8>,
    },
    /// Faults a VHM: it and its nested VHMs stop and everything they hold is reclaimed. Needs
    /// `CONTROL`.
    Fault {
        /// The VHM.
        vhm: VhmId,
        /// Why (for example a guest trap code).
        code: u32,
    },
    /// Terminates a VHM, children first. Needs `CONTROL`.
    Terminate {
        /// The VHM.
        vhm: VhmId,
    },
    /// Derives a narrower capability from the presented one and gives it to another principal.
    /// Needs `GRANT`.
    Grant {
        /// Who receives it.
        to: Principal,
        /// Its target: the presented capability's target or something inside it.
        target: Target,
        /// Its rights: a subset of the presented capability's.
        rights: Rights,
        /// Its expiry tick: no later than the presented capability's.
        expires_tick: Option<u64>,
    },
    /// Derives a narrower capability for the same holder. Needs no right: narrowing is always
    /// allowed.
    Attenuate {
        /// Its target.
        target: Target,
        /// Its rights.
        rights: Rights,
        /// Its expiry tick.
        expires_tick: Option<u64>,
    },
    /// Revokes a capability and everything derived from it. The presented capability must be the
    /// revoked one or one it was derived from, with `REVOKE` unless they are the same.
    Revoke {
        /// The capability to revoke.
        cap: CapId,
    },
    /// Parks a K job whose guest waits for one of its VHM's Q or Φ jobs: the job is not given
    /// slices again until one of those jobs completes or expires — a virtual interrupt, delivered
    /// in the core's logical order — and `fuel_unused`, what its last slice left unused (at most
    /// that slice's fuel), returns to the job. The VHM must have a Q or Φ job live and the job
    /// fuel left to resume with. Needs `SUBMIT` on the job's VHM.
    Wait {
        /// The K job.
        job: JobId,
        /// Fuel units its last slice did not use.
        fuel_unused: u64,
    },
    /// Records the revocation of a capability-token block (from now on the Secure Domain
    /// Boundary Manager refuses every token containing it). Needs `REVOKE` on the machine.
    RevokeToken {
        /// The block's id.
        token: TokenId,
    },
    /// Records a refusal by the Secure Domain Boundary Manager at the edge — a capability token
    /// that is missing, forged, revoked, expired or does not cover the request — and faults the
    /// VHM it concerns, if any, with [`FAULT_DENIED`] (its nested VHMs stop with it). `vhm` is
    /// `None` when a root VHM was refused creation. Needs `CONTROL` on the machine: the boundary
    /// manager acts for the operator.
    Deny {
        /// The VHM whose request was refused.
        vhm: Option<VhmId>,
        /// What was refused and why.
        denial: Denial,
    },
}

/// The fault code of a VHM faulted by a [`Command::Deny`].
pub const FAULT_DENIED: u32 = 40;

impl Command {
    /// A short name for output and statistics.
    pub fn name(&self) -> &'static str {
        match self {
            Command::CreateVhm { .. } => "create_vhm",
            Command::CreateNested { .. } => "create_nested",
            Command::Reserve { .. } => "reserve",
            Command::Release { .. } => "release",
            Command::ReserveWindow { .. } => "reserve_window",
            Command::ShareWindows { .. } => "share_windows",
            Command::SubmitJob { .. } => "submit_job",
            Command::OpenChannel { .. } => "open_channel",
            Command::CloseChannel { .. } => "close_channel",
            Command::Send { .. } => "send",
            Command::Fault { .. } => "fault",
            Command::Terminate { .. } => "terminate",
            Command::Grant { .. } => "grant",
            Command::Attenuate { .. } => "attenuate",
            Command::Revoke { .. } => "revoke",
            Command::Wait { .. } => "wait",
            Command::RevokeToken { .. } => "revoke_token",
            Command::Deny { .. } => "deny",
        }
    }
}

/// Why a VHM stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum StopReason {
    /// Terminated by command.
    Terminated,
    /// Faulted with a code.
    Faulted(u32),
    /// Stopped because an ancestor stopped.
    ParentStopped(VhmId),
}

/// An instruction for a driver. Drivers perform effects and report completions as inputs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Effect {
    /// Start a VHM's domain contexts on its placements.
    StartVhm {
        /// The VHM.
        vhm: VhmId,
    },
    /// Run one fuel slice of a K job on one of the VHM's vCPUs.
    RunSlice {
        /// The job.
        job: JobId,
        /// The VHM.
        vhm: VhmId,
        /// Fuel units in this slice.
        fuel_units: u64,
        /// True for the job's last declared slice.
        last: bool,
    },
    /// Execute a Q job on the VHM's own qubits.
    ExecuteQ {
        /// The job.
        job: JobId,
        /// The VHM.
        vhm: VhmId,
        /// The Q provider (index into `Machine::q`).
        provider: u32,
        /// Physical qubits in the core's global numbering (`Layout::q_local` gives the provider's
        /// own index), ascending; logical qubit i is the i-th.
        qubits: Vec<u32>,
        /// Shots.
        shots: u64,
    },
    /// Execute a Φ job in the VHM's region inside one of its windows.
    ExecutePhi {
        /// The job.
        job: JobId,
        /// The VHM.
        vhm: VhmId,
        /// The Φ provider (index into `Machine::phi`).
        provider: u32,
        /// The region, in global modes (`Layout::phi_mode_offsets` gives the provider's first).
        region: PhiRegion,
        /// Parts of the region lent to nested VHMs, which the job must leave untouched.
        excluded: Vec<PhiRegion>,
        /// The window it runs in.
        window: WindowId,
        /// Logical time of dispatch, ns.
        at_ns: u64,
        /// The window's bounds, ns: the job runs inside `window_start_ns..window_end_ns`.
        window_start_ns: u64,
        /// End of the window, ns.
        window_end_ns: u64,
    },
    /// Cancel a dispatched job (its VHM stopped).
    CancelJob {
        /// The job.
        job: JobId,
    },
    /// Deliver a message, in logical order, to a VHM (a virtual interrupt).
    Deliver {
        /// The channel.
        channel: ChannelId,
        /// The sender.
        from: VhmId,
        /// The receiver.
        to: VhmId,
        /// The channel's message sequence number.
        seq: u64,
        /// The bytes.
        payload: Vec<u8>,
    },
    /// Stop a VHM's domain contexts and free its driver state.
    StopVhm {
        /// The VHM.
        vhm: VhmId,
        /// Why.
        reason: StopReason,
    },
}

/// A fact for the trace and the audit record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// A VHM was created with its placements and its own capability.
    VhmCreated {
        /// The new VHM.
        vhm: VhmId,
        /// Its parent, for a nested VHM.
        parent: Option<VhmId>,
        /// Its capability.
        cap: CapId,
        /// Its physical qubits.
        qubits: Vec<u32>,
        /// Its Φ region.
        region: Option<PhiRegion>,
    },
    /// A VHM stopped; everything it held was reclaimed.
    VhmStopped {
        /// The VHM.
        vhm: VhmId,
        /// Why.
        reason: StopReason,
    },
    /// An amount was reserved (positive) or released.
    Reserved {
        /// The VHM.
        vhm: VhmId,
        /// The resource.
        resource: Resource,
        /// The amount.
        amount: u64,
        /// True for a release.
        released: bool,
    },
    /// A coherence window was reserved.
    WindowReserved {
        /// The window.
        window: WindowId,
        /// Its VHM.
        vhm: VhmId,
        /// Start, ns.
        start_ns: u64,
        /// End, ns.
        end_ns: u64,
    },
    /// Two VHMs' windows may now overlap.
    WindowsShared {
        /// One VHM.
        a: VhmId,
        /// The other.
        b: VhmId,
    },
    /// A job was accepted into its domain's queue.
    JobQueued {
        /// The job.
        job: JobId,
        /// Its VHM.
        vhm: VhmId,
        /// Its domain.
        domain: Domain,
    },
    /// A job was dispatched (its first or only effect was emitted).
    JobDispatched {
        /// The job.
        job: JobId,
    },
    /// A job finished.
    JobCompleted {
        /// The job.
        job: JobId,
        /// How.
        status: JobStatus,
    },
    /// A queued job can no longer run (deadline passed, no window left); its charge is refunded.
    JobExpired {
        /// The job.
        job: JobId,
    },
    /// A job was cancelled because its VHM stopped.
    JobCancelled {
        /// The job.
        job: JobId,
    },
    /// A channel was opened with one endpoint capability per end.
    ChannelOpened {
        /// The channel.
        channel: ChannelId,
        /// One end.
        a: VhmId,
        /// The other.
        b: VhmId,
        /// `a`'s endpoint capability.
        cap_a: CapId,
        /// `b`'s endpoint capability.
        cap_b: CapId,
    },
    /// A channel was closed.
    ChannelClosed {
        /// The channel.
        channel: ChannelId,
    },
    /// A capability was issued.
    CapIssued {
        /// The new capability.
        cap: CapId,
        /// The one it was derived from.
        parent: CapId,
        /// Its holder.
        holder: Principal,
    },
    /// A capability was revoked (directly or because one it derives from was).
    CapRevoked {
        /// The capability.
        cap: CapId,
    },
    /// Logical time advanced to this tick.
    Ticked {
        /// The new tick.
        tick: u64,
    },
    /// A K job was parked until one of its VHM's Q or Φ jobs ends.
    JobWaiting {
        /// The job.
        job: JobId,
        /// Fuel returned to it from its last slice.
        fuel_unused: u64,
    },
    /// A parked K job was woken (a virtual interrupt: one of its VHM's Q or Φ jobs ended).
    JobWoken {
        /// The job.
        job: JobId,
    },
    /// A capability-token block was revoked.
    TokenRevoked {
        /// The block's id.
        token: TokenId,
    },
    /// The Secure Domain Boundary Manager refused a request at the edge.
    Denied {
        /// The VHM concerned (`None` for a refused creation).
        vhm: Option<VhmId>,
        /// What and why.
        denial: Denial,
    },
}

/// Where an amount is drawn from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Source {
    /// The machine's free capacity.
    Machine,
    /// A VHM's own holdings (its budget, or a parent lending to a child).
    Vhm(VhmId),
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Machine => f.write_str("the machine"),
            Source::Vhm(v) => write!(f, "{v}"),
        }
    }
}

/// A static explanation that also deserialises (as an owned string).
pub type Why = std::borrow::Cow<'static, str>;

/// Every rule a command, tick or completion can break. Each message says what and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum Rejection {
    /// The capability id was never issued: a forgery or a typing error.
    #[error("{cap} was never issued (forged or mistyped); present a capability you were granted")]
    UnknownCapability {
        /// The id presented.
        cap: CapId,
    },
    /// The capability was revoked, or its holder or target stopped.
    #[error("{cap} was revoked or its VHM stopped; ask its issuer for a new one")]
    CapabilityRevoked {
        /// The id presented.
        cap: CapId,
    },
    /// The capability belongs to another principal.
    #[error(
        "{cap} is held by {holder}, not by {principal}; a capability works only for its holder"
    )]
    CapabilityNotHeld {
        /// The id presented.
        cap: CapId,
        /// Its real holder.
        holder: Principal,
        /// Who presented it.
        principal: Principal,
    },
    /// The capability expired.
    #[error("{cap} expired at tick {expired_tick}; ask its issuer for a fresh one")]
    CapabilityExpired {
        /// The id presented.
        cap: CapId,
        /// When it expired.
        expired_tick: u64,
    },
    /// The capability lacks a right the command needs.
    #[error("{cap} lacks the {needed} right (it has {held}); use a capability that grants it")]
    MissingRight {
        /// The id presented.
        cap: CapId,
        /// The right needed.
        needed: Rights,
        /// The rights it has.
        held: Rights,
    },
    /// The capability does not cover the command's target.
    #[error("{cap} covers {covers}, not {target}; a capability reaches only its target and the VHMs nested in it")]
    OutOfScope {
        /// The id presented.
        cap: CapId,
        /// What it covers.
        covers: Target,
        /// What the command touches.
        target: Target,
    },
    /// A derived capability would be wider than its parent: privilege escalation.
    #[error("a capability derived from {cap} would widen it ({what}); a capability can only be narrowed")]
    Escalation {
        /// The parent capability.
        cap: CapId,
        /// What would widen.
        what: Why,
    },
    /// A VHM id that was never issued.
    #[error("{vhm} does not exist")]
    UnknownVhm {
        /// The id.
        vhm: VhmId,
    },
    /// A VHM that has stopped (terminated or faulted).
    #[error("{vhm} has stopped (terminated or faulted); nothing can be done with it any more")]
    VhmStopped {
        /// The id.
        vhm: VhmId,
    },
    /// A specification field is invalid.
    #[error("invalid specification: {field}: {reason}")]
    InvalidSpec {
        /// Which field.
        field: Why,
        /// Why.
        reason: Why,
    },
    /// The allocation exceeds the VHM's own quota.
    #[error("{resource}: {requested} would exceed the quota of {quota}; raise the quota or ask for less")]
    QuotaExceeded {
        /// The resource.
        resource: Resource,
        /// What the VHM would hold.
        requested: u64,
        /// Its quota.
        quota: u64,
    },
    /// A nested VHM's quota exceeds its parent's.
    #[error(
        "{resource}: a nested quota of {requested} exceeds the parent's quota of {parent_quota}"
    )]
    NestedQuotaExceeded {
        /// The resource.
        resource: Resource,
        /// The child's quota.
        requested: u64,
        /// The parent's quota.
        parent_quota: u64,
    },
    /// Not enough left in the parent (or the machine) to draw from.
    #[error("{resource}: {requested} requested but only {available} is free in {from}; release something or ask for less")]
    Insufficient {
        /// The resource.
        resource: Resource,
        /// Requested.
        requested: u64,
        /// Free.
        available: u64,
        /// Where it would come from.
        from: Source,
    },
    /// No connected partition / free region fits.
    #[error("no placement for {requested} {resource}: {why}")]
    NoPlacement {
        /// The resource.
        resource: Resource,
        /// How many.
        requested: u64,
        /// Why not.
        why: Why,
    },
    /// Placed resources are fixed at creation.
    #[error("{resource} is placed at creation and cannot be reserved or released later; create a VHM with the size it needs")]
    PlacedResourceFixed {
        /// The resource.
        resource: Resource,
    },
    /// A limit of the core was reached.
    #[error("limit reached: {what} (at most {max})")]
    LimitReached {
        /// Which limit.
        what: Why,
        /// Its value.
        max: u64,
    },
    /// A zero or out-of-range amount.
    #[error("invalid amount for {what}: {reason}")]
    InvalidAmount {
        /// Which amount.
        what: Why,
        /// Why.
        reason: Why,
    },
    /// The VHM holds nothing of its own in the job's or window's domain.
    #[error("{vhm} holds no {domain} resources of its own (none, or all lent to nested VHMs); create it with a [{domain}] part or stop a nested VHM")]
    DomainNotAllocated {
        /// The VHM.
        vhm: VhmId,
        /// The domain.
        domain: Domain,
    },
    /// Two different VHMs' coherence windows would overlap without a sharing contract.
    #[error("window {start_ns}..{end_ns} ns overlaps {other} of {other_vhm}; pick another time or establish a sharing contract")]
    WindowOverlap {
        /// Requested start.
        start_ns: u64,
        /// Requested end.
        end_ns: u64,
        /// The window in the way.
        other: WindowId,
        /// Its VHM.
        other_vhm: VhmId,
    },
    /// A window would start in the past.
    #[error("window start {start_ns} ns is before the present ({now_ns} ns)")]
    WindowInPast {
        /// Requested start.
        start_ns: u64,
        /// The present.
        now_ns: u64,
    },
    /// No present or future window of the VHM can hold the job.
    #[error("{vhm} has no coherence window of at least {duration_ns} ns ahead; reserve one first")]
    NoWindow {
        /// The VHM.
        vhm: VhmId,
        /// The job's duration.
        duration_ns: u64,
    },
    /// The VHM's deadline has passed.
    #[error("{vhm}'s deadline (tick {deadline_tick}) has passed")]
    DeadlinePassed {
        /// The VHM.
        vhm: VhmId,
        /// Its deadline.
        deadline_tick: u64,
    },
    /// The channel id was never issued.
    #[error("{channel} does not exist; open a channel first")]
    UnknownChannel {
        /// The id.
        channel: ChannelId,
    },
    /// The channel was closed.
    #[error("{channel} is closed")]
    ChannelClosed {
        /// The id.
        channel: ChannelId,
    },
    /// The sender is not an endpoint of the channel, or presented the wrong capability.
    #[error("{principal} is not an endpoint of {channel} holding its endpoint capability")]
    NotAnEndpoint {
        /// The channel.
        channel: ChannelId,
        /// Who tried.
        principal: Principal,
    },
    /// A channel or contract needs two different VHMs.
    #[error("a channel or sharing contract joins two different VHMs")]
    SameVhm,
    /// The job id is unknown or the job is not running.
    #[error("{job} is not running (unknown, finished, expired or cancelled)")]
    JobNotRunning {
        /// The job.
        job: JobId,
    },
    /// Ticks out of range.
    #[error("a tick input advances 1..={max} ticks, not {ticks}")]
    TicksOutOfRange {
        /// Requested.
        ticks: u32,
        /// The limit.
        max: u32,
    },
    /// A `Wait` for a job that is not a dispatched K job.
    #[error("{job} is not a K job that has run a slice and may wait; only a dispatched K job waits for its VHM's Q or Φ jobs")]
    NotWaitable {
        /// The job.
        job: JobId,
    },
    /// A `Wait` while the VHM has no Q or Φ job that could wake the K job.
    #[error("{job} would wait forever: its VHM has no Q or Φ job live; submit one before waiting")]
    NothingToWaitFor {
        /// The job.
        job: JobId,
    },
    /// A token block that is already revoked.
    #[error("{token} is already revoked")]
    TokenAlreadyRevoked {
        /// The block's id.
        token: TokenId,
    },
}

impl Rejection {
    /// The name of the rule broken, for statistics and machine-readable output.
    pub fn rule(&self) -> &'static str {
        match self {
            Rejection::UnknownCapability { .. } => "unknown_capability",
            Rejection::CapabilityRevoked { .. } => "capability_revoked",
            Rejection::CapabilityNotHeld { .. } => "capability_not_held",
            Rejection::CapabilityExpired { .. } => "capability_expired",
            Rejection::MissingRight { .. } => "missing_right",
            Rejection::OutOfScope { .. } => "out_of_scope",
            Rejection::Escalation { .. } => "escalation",
            Rejection::UnknownVhm { .. } => "unknown_vhm",
            Rejection::VhmStopped { .. } => "vhm_stopped",
            Rejection::InvalidSpec { .. } => "invalid_spec",
            Rejection::QuotaExceeded { .. } => "quota_exceeded",
            Rejection::NestedQuotaExceeded { .. } => "nested_quota_exceeded",
            Rejection::Insufficient { .. } => "insufficient",
            Rejection::NoPlacement { .. } => "no_placement",
            Rejection::PlacedResourceFixed { .. } => "placed_resource_fixed",
            Rejection::LimitReached { .. } => "limit_reached",
            Rejection::InvalidAmount { .. } => "invalid_amount",
            Rejection::DomainNotAllocated { .. } => "domain_not_allocated",
            Rejection::WindowOverlap { .. } => "window_overlap",
            Rejection::WindowInPast { .. } => "window_in_past",
            Rejection::NoWindow { .. } => "no_window",
            Rejection::DeadlinePassed { .. } => "deadline_passed",
            Rejection::UnknownChannel { .. } => "unknown_channel",
            Rejection::ChannelClosed { .. } => "channel_closed",
            Rejection::NotAnEndpoint { .. } => "not_an_endpoint",
            Rejection::SameVhm => "same_vhm",
            Rejection::JobNotRunning { .. } => "job_not_running",
            Rejection::NotWaitable { .. } => "not_waitable",
            Rejection::NothingToWaitFor { .. } => "nothing_to_wait_for",
            Rejection::TokenAlreadyRevoked { .. } => "token_already_revoked",
            Rejection::TicksOutOfRange { .. } => "ticks_out_of_range",
        }
    }
}

/// What the core produced for one input. Buffers are reused between inputs.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outcome {
    /// `None` when accepted, or why it was refused (then `effects` and `events` are empty: nothing
    /// is half-applied).
    pub rejection: Option<Rejection>,
    /// Effects for drivers, in order.
    pub effects: Vec<Effect>,
    /// Events for the trace, in order.
    pub events: Vec<Event>,
}

impl Outcome {
    /// Clears for reuse.
    pub fn clear(&mut self) {
        self.rejection = None;
        self.effects.clear();
        self.events.clear();
    }

    /// True when the input was accepted.
    pub fn accepted(&self) -> bool {
        self.rejection.is_none()
    }
}
