//! The VHM model: domains, resources with units, resource vectors, VHM specifications and policies.
//!
//! Every amount in the core is an integer with its unit in its name; there are no floats in any
//! decision, so the same inputs give the same decisions on every machine.

use serde::{Deserialize, Serialize};
use std::fmt;

/// A computational domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Domain {
    /// Classical: sandboxed WebAssembly guests, fuel-sliced vCPUs.
    K,
    /// Quantum: logical qubits on a provider's coupling map.
    Q,
    /// Phase: coherent light in a programmable interferometer (modes × wavelength channels).
    Phi,
}

impl Domain {
    /// All domains in canonical order.
    pub const ALL: [Domain; 3] = [Domain::K, Domain::Q, Domain::Phi];

    /// Index of the domain in `ALL`.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Short name used in output (`K`, `Q`, `Φ`).
    pub fn name(self) -> &'static str {
        match self {
            Domain::K => "K",
            Domain::Q => "Q",
            Domain::Phi => "Φ",
        }
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a resource behaves when a VHM holds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResourceKind {
    /// Held capacity drawn from the machine (vCPU slots, memory, thermal budget, bandwidth).
    Capacity,
    /// Held capacity that the core also *places* (which qubits, which modes and channels).
    Placed,
    /// A budget consumed by jobs and windows (fuel, shots, error, coherence-window time).
    Budget,
}

/// A resource with its unit. The discriminant is the index into a [`ResourceVector`]. In JSON a
/// resource is its [`Resource::name`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resource {
    /// K: fuel units (wasmtime fuel), consumed by fuel slices.
    FuelUnits = 0,
    /// K: virtual CPUs (concurrent fuel slices per tick).
    VcpuSlots = 1,
    /// K: linear memory in bytes.
    MemoryBytes = 2,
    /// Q: logical qubits, placed on a connected partition of the coupling map.
    LogicalQubits = 3,
    /// Q: shots.
    Shots = 4,
    /// Q: error budget in parts per million of predicted error, summed over jobs.
    ErrorBudgetPpm = 5,
    /// Φ: spatial modes, placed as a contiguous range.
    PhiModes = 6,
    /// Φ: wavelength channels, placed as a contiguous range.
    WavelengthChannels = 7,
    /// Φ: coherence-window time in nanoseconds, consumed when a window is reserved.
    CoherenceWindowNs = 8,
    /// Φ: thermal budget of the phase shifters' heaters in milliwatts.
    ThermalBudgetMw = 9,
    /// Φ: optical bandwidth in megahertz.
    OpticalBandwidthMhz = 10,
}

/// Number of resources, the length of a [`ResourceVector`].
pub const RESOURCE_COUNT: usize = 11;

impl Resource {
    /// All resources in index order.
    pub const ALL: [Resource; RESOURCE_COUNT] = [
        Resource::FuelUnits,
        Resource::VcpuSlots,
        Resource::MemoryBytes,
        Resource::LogicalQubits,
        Resource::Shots,
        Resource::ErrorBudgetPpm,
        Resource::PhiModes,
        Resource::WavelengthChannels,
        Resource::CoherenceWindowNs,
        Resource::ThermalBudgetMw,
        Resource::OpticalBandwidthMhz,
    ];

    /// Index into a [`ResourceVector`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The name used in manifests, output and errors; it carries the unit.
    pub fn name(self) -> &'static str {
        match self {
            Resource::FuelUnits => "fuel_units",
            Resource::VcpuSlots => "vcpu_slots",
            Resource::MemoryBytes => "memory_bytes",
            Resource::LogicalQubits => "logical_qubits",
            Resource::Shots => "shots",
            Resource::ErrorBudgetPpm => "error_budget_ppm",
            Resource::PhiModes => "phi_modes",
            Resource::WavelengthChannels => "wavelength_channels",
            Resource::CoherenceWindowNs => "coherence_window_ns",
            Resource::ThermalBudgetMw => "thermal_budget_mw",
            Resource::OpticalBandwidthMhz => "optical_bandwidth_mhz",
        }
    }

    /// Parses a resource from its [`Resource::name`].
    pub fn from_name(name: &str) -> Option<Resource> {
        Resource::ALL.into_iter().find(|r| r.name() == name)
    }

    /// The domain the resource belongs to.
    pub fn domain(self) -> Domain {
        match self {
            Resource::FuelUnits | Resource::VcpuSlots | Resource::MemoryBytes => Domain::K,
            Resource::LogicalQubits | Resource::Shots | Resource::ErrorBudgetPpm => Domain::Q,
            _ => Domain::Phi,
        }
    }

    /// True for the two sides of a Φ region (modes and wavelength channels). They describe the
    /// shape of a placed rectangle, not an amount drawn from a pool: two tenants may use the same
    /// channels on different modes, and two nested VHMs may split their parent's rectangle either
    /// way. Placement alone decides whether a rectangle fits; pooled accounting (what the machine
    /// has free, what a parent lent) leaves them out.
    pub fn is_dimension(self) -> bool {
        matches!(self, Resource::PhiModes | Resource::WavelengthChannels)
    }

    /// How the resource is held.
    pub fn kind(self) -> ResourceKind {
        match self {
            Resource::FuelUnits
            | Resource::Shots
            | Resource::ErrorBudgetPpm
            | Resource::CoherenceWindowNs => ResourceKind::Budget,
            Resource::LogicalQubits | Resource::PhiModes | Resource::WavelengthChannels => {
                ResourceKind::Placed
            }
            _ => ResourceKind::Capacity,
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An amount of every resource, indexed by [`Resource`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResourceVector(pub [u64; RESOURCE_COUNT]);

impl ResourceVector {
    /// All zero.
    pub const ZERO: ResourceVector = ResourceVector([0; RESOURCE_COUNT]);
    /// All `u64::MAX`: no limit.
    pub const UNLIMITED: ResourceVector = ResourceVector([u64::MAX; RESOURCE_COUNT]);

    /// The amount of one resource.
    pub fn get(&self, r: Resource) -> u64 {
        self.0[r.index()]
    }

    /// Sets the amount of one resource.
    pub fn set(&mut self, r: Resource, amount: u64) {
        self.0[r.index()] = amount;
    }

    /// A vector with one resource set.
    pub fn of(r: Resource, amount: u64) -> ResourceVector {
        let mut v = ResourceVector::ZERO;
        v.set(r, amount);
        v
    }

    /// The first resource where `self` exceeds `other`, if any.
    pub fn first_excess(&self, other: &ResourceVector) -> Option<Resource> {
        Resource::ALL
            .into_iter()
            .find(|r| self.get(*r) > other.get(*r))
    }

    /// True when every component is at most the other's.
    pub fn le(&self, other: &ResourceVector) -> bool {
        self.first_excess(other).is_none()
    }

    /// Component-wise sum; `None` on overflow.
    pub fn checked_add(&self, other: &ResourceVector) -> Option<ResourceVector> {
        let mut out = *self;
        for i in 0..RESOURCE_COUNT {
            out.0[i] = out.0[i].checked_add(other.0[i])?;
        }
        Some(out)
    }

    /// Component-wise difference; `None` if any component would go negative.
    pub fn checked_sub(&self, other: &ResourceVector) -> Option<ResourceVector> {
        let mut out = *self;
        for i in 0..RESOURCE_COUNT {
            out.0[i] = out.0[i].checked_sub(other.0[i])?;
        }
        Some(out)
    }

    /// Component-wise minimum.
    pub fn min(&self, other: &ResourceVector) -> ResourceVector {
        let mut out = *self;
        for i in 0..RESOURCE_COUNT {
            out.0[i] = out.0[i].min(other.0[i]);
        }
        out
    }

    /// Keeps only the components of the given kind, zeroing the others.
    pub fn only(&self, kind: ResourceKind) -> ResourceVector {
        let mut out = ResourceVector::ZERO;
        for r in Resource::ALL {
            if r.kind() == kind {
                out.set(r, self.get(r));
            }
        }
        out
    }

    /// The same vector with the dimension resources ([`Resource::is_dimension`]) set to zero:
    /// what pooled accounting counts.
    pub fn pooled(&self) -> ResourceVector {
        let mut out = *self;
        for r in Resource::ALL {
            if r.is_dimension() {
                out.set(r, 0);
            }
        }
        out
    }

    /// True when every component is zero.
    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|&x| x == 0)
    }
}

/// The classical part of a VHM, V_K.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KSpec {
    /// Virtual CPUs: how many fuel slices of this VHM may run in one tick.
    pub vcpus: u32,
    /// Linear-memory limit in bytes.
    pub memory_bytes: u64,
    /// Fuel budget in fuel units.
    pub fuel_units: u64,
}

/// The quantum part of a VHM, V_Q.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct QSpec {
    /// The Q provider to place on, by name; `None` takes the first provider (in the machine's
    /// order) with room. A nested VHM is always placed on its parent's provider.
    pub provider: Option<String>,
    /// Logical qubits, placed on a connected partition of the provider's coupling map.
    pub logical_qubits: u32,
    /// Shot budget.
    pub shots: u64,
    /// Decoherence (error) budget in parts per million, summed over the predicted error of jobs.
    pub error_budget_ppm: u64,
}

/// The phase part of a VHM, V_Φ.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhiSpec {
    /// The Φ provider to place on, by name; `None` takes the first provider (in the machine's
    /// order) with room. A nested VHM is always placed on its parent's provider.
    pub provider: Option<String>,
    /// Spatial modes, placed as a contiguous range of the mesh.
    pub modes: u32,
    /// Wavelength channels, placed as a contiguous range.
    pub wavelength_channels: u32,
    /// Coherence-window time budget in nanoseconds.
    pub coherence_window_ns: u64,
    /// Heater power budget in milliwatts.
    pub thermal_budget_mw: u64,
    /// Optical bandwidth in megahertz.
    pub optical_bandwidth_mhz: u64,
}

/// V_Policy: priority, quotas and deadline.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Scheduling priority, higher first (0..=255).
    pub priority: u8,
    /// Logical tick after which the VHM's queued jobs expire and new jobs are refused.
    pub deadline_tick: Option<u64>,
    /// The most the VHM (with its nested VHMs) may ever hold of each resource. `None` means the
    /// initial allocation is also the quota.
    pub quotas: Option<ResourceVector>,
}

/// A VHM specification: VHM = (V_K, V_Q, V_Φ, V_Policy), any domain optional.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VhmSpec {
    /// Human-readable name (1..=64 bytes of `[A-Za-z0-9_.-]`); unique among live siblings.
    pub name: String,
    /// V_K.
    pub k: Option<KSpec>,
    /// V_Q.
    pub q: Option<QSpec>,
    /// V_Φ.
    pub phi: Option<PhiSpec>,
    /// V_Policy.
    pub policy: Policy,
}

impl VhmSpec {
    /// The resources the spec asks for at creation.
    pub fn allocation(&self) -> ResourceVector {
        let mut v = ResourceVector::ZERO;
        if let Some(k) = &self.k {
            v.set(Resource::VcpuSlots, u64::from(k.vcpus));
            v.set(Resource::MemoryBytes, k.memory_bytes);
            v.set(Resource::FuelUnits, k.fuel_units);
        }
        if let Some(q) = &self.q {
            v.set(Resource::LogicalQubits, u64::from(q.logical_qubits));
            v.set(Resource::Shots, q.shots);
            v.set(Resource::ErrorBudgetPpm, q.error_budget_ppm);
        }
        if let Some(p) = &self.phi {
            v.set(Resource::PhiModes, u64::from(p.modes));
            v.set(
                Resource::WavelengthChannels,
                u64::from(p.wavelength_channels),
            );
            v.set(Resource::CoherenceWindowNs, p.coherence_window_ns);
            v.set(Resource::ThermalBudgetMw, p.thermal_budget_mw);
            v.set(Resource::OpticalBandwidthMhz, p.optical_bandwidth_mhz);
        }
        v
    }

    /// The quota: the declared one, or the allocation when none is declared.
    pub fn quota(&self) -> ResourceVector {
        self.policy.quotas.unwrap_or_else(|| self.allocation())
    }
}

/// Identifies a VHM. Ids are allocated in increasing order and never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct VhmId(pub u32);

/// Identifies a capability. Ids are allocated in increasing order and never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CapId(pub u64);

/// Identifies a job. Ids are allocated in increasing order and never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct JobId(pub u64);

/// Identifies an IPC channel. Ids are allocated in increasing order and never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ChannelId(pub u32);

/// Identifies a coherence window. Ids are allocated in increasing order and never reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WindowId(pub u64);

macro_rules! display_id {
    ($t:ty, $p:literal) => {
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!($p, "{}"), self.0)
            }
        }
    };
}
display_id!(VhmId, "vhm#");
display_id!(CapId, "cap#");
display_id!(JobId, "job#");
display_id!(ChannelId, "chan#");
display_id!(WindowId, "win#");

/// Identifies a revoked capability-token block: the BLAKE3 hash of the block's revocation id (the
/// text the token library reports, e.g. biscuit's hex signature). The core stores and compares
/// these opaque 32 bytes; it never sees or checks a token itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TokenId(pub [u8; 32]);

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("token#")?;
        for b in &self.0[..8] {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// The operation of a request the Secure Domain Boundary Manager refused at the edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeniedOp {
    /// Creating a root VHM.
    Create,
    /// Creating a nested VHM.
    Nest,
    /// Reserving a resource or a coherence window.
    Reserve,
    /// Submitting a job (a pipeline step, a guest, or a guest's own Q or Φ job).
    Submit,
    /// Opening an IPC channel.
    Open,
    /// Sending on an IPC channel.
    Send,
    /// Receiving on an IPC channel.
    Receive,
    /// Holding what it holds: a live VHM whose token was revoked.
    Hold,
}

impl DeniedOp {
    /// Its name in output.
    pub fn name(self) -> &'static str {
        match self {
            DeniedOp::Create => "create",
            DeniedOp::Nest => "nest",
            DeniedOp::Reserve => "reserve",
            DeniedOp::Submit => "submit",
            DeniedOp::Open => "open",
            DeniedOp::Send => "send",
            DeniedOp::Receive => "receive",
            DeniedOp::Hold => "hold",
        }
    }
}

/// Why the Secure Domain Boundary Manager refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DenyReason {
    /// No token was presented where one is required.
    Missing,
    /// The token does not parse or its signatures do not chain to the operator's root key.
    Forged,
    /// One of the token's blocks was revoked.
    Revoked,
    /// A check on logical time failed: the token has expired.
    Expired,
    /// A check of the token (domain, operation, amount) failed, or no right covers the request.
    Insufficient,
    /// A nested VHM's token does not extend its parent's.
    NotDerived,
}

impl DenyReason {
    /// Its name in output.
    pub fn name(self) -> &'static str {
        match self {
            DenyReason::Missing => "missing",
            DenyReason::Forged => "forged",
            DenyReason::Revoked => "revoked",
            DenyReason::Expired => "expired",
            DenyReason::Insufficient => "insufficient",
            DenyReason::NotDerived => "not_derived",
        }
    }
}

/// A refusal by the Secure Domain Boundary Manager, as the trace records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Denial {
    /// What was asked.
    pub operation: DeniedOp,
    /// In which domain.
    pub domain: Domain,
    /// How much (in the unit of the resource the request named; 0 when none).
    pub amount: u64,
    /// Why it was refused.
    pub reason: DenyReason,
}

/// A rectangle of the Φ mesh: a contiguous range of modes × a contiguous range of channels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhiRegion {
    /// First mode.
    pub mode_start: u32,
    /// Number of modes.
    pub modes: u32,
    /// First wavelength channel.
    pub channel_start: u32,
    /// Number of channels.
    pub channels: u32,
}

impl PhiRegion {
    /// One past the last mode.
    pub fn mode_end(&self) -> u32 {
        self.mode_start + self.modes
    }

    /// One past the last channel.
    pub fn channel_end(&self) -> u32 {
        self.channel_start + self.channels
    }

    /// True when the two rectangles share a cell.
    pub fn overlaps(&self, other: &PhiRegion) -> bool {
        self.mode_start < other.mode_end()
            && other.mode_start < self.mode_end()
            && self.channel_start < other.channel_end()
            && other.channel_start < self.channel_end()
    }

    /// True when `self` lies inside `outer`.
    pub fn within(&self, outer: &PhiRegion) -> bool {
        self.mode_start >= outer.mode_start
            && self.mode_end() <= outer.mode_end()
            && self.channel_start >= outer.channel_start
            && self.channel_end() <= outer.channel_end()
    }
}

impl fmt::Display for PhiRegion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "modes {}..{} × channels {}..{}",
            self.mode_start,
            self.mode_end(),
            self.channel_start,
            self.channel_end()
        )
    }
}

/// What a job declares it will cost; the scheduler decides on these figures only, never on
/// measured outcomes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobCost {
    /// K: fuel units.
    pub fuel_units: u64,
    /// Q: shots.
    pub shots: u64,
    /// Q: predicted error in parts per million (from the device model).
    pub error_ppm: u64,
    /// Q, Φ: predicted duration in nanoseconds.
    pub duration_ns: u64,
}

impl JobCost {
    /// The budget this cost charges.
    pub fn charge(&self) -> ResourceVector {
        let mut v = ResourceVector::ZERO;
        v.set(Resource::FuelUnits, self.fuel_units);
        v.set(Resource::Shots, self.shots);
        v.set(Resource::ErrorBudgetPpm, self.error_ppm);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_names_round_trip_and_kinds_cover_all() {
        for r in Resource::ALL {
            assert_eq!(Resource::from_name(r.name()), Some(r));
            assert_eq!(Resource::ALL[r.index()], r);
        }
        assert_eq!(Resource::from_name("qubits"), None);
    }

    #[test]
    fn vector_arithmetic_checks_bounds() {
        let a = ResourceVector::of(Resource::Shots, 5);
        let b = ResourceVector::of(Resource::Shots, 7);
        assert!(a.le(&b));
        assert_eq!(b.first_excess(&a), Some(Resource::Shots));
        assert_eq!(a.checked_sub(&b), None);
        assert_eq!(
            b.checked_sub(&a),
            Some(ResourceVector::of(Resource::Shots, 2))
        );
        assert_eq!(ResourceVector::UNLIMITED.checked_add(&a), None);
    }

    #[test]
    fn regions_overlap_only_when_both_ranges_meet() {
        let a = PhiRegion {
            mode_start: 0,
            modes: 4,
            channel_start: 0,
            channels: 2,
        };
        let b = PhiRegion {
            mode_start: 4,
            modes: 4,
            channel_start: 0,
            channels: 2,
        };
        let c = PhiRegion {
            mode_start: 2,
            modes: 4,
            channel_start: 2,
            channels: 2,
        };
        let d = PhiRegion {
            mode_start: 2,
            modes: 4,
            channel_start: 1,
            channels: 2,
        };
        assert!(!a.overlaps(&b));
        assert!(!a.overlaps(&c));
        assert!(a.overlaps(&d));
        assert!(PhiRegion {
            mode_start: 1,
            modes: 2,
            channel_start: 0,
            channels: 1
        }
        .within(&a));
    }
}
