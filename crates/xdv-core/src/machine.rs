//! Provider capacity descriptions: what the machine offers in each domain, read from TOML.
//!
//! The description fixes the Q coupling map and the Φ mode × channel grid, so that placement —
//! which qubits, which modes — is a deterministic decision of the core. Parsing is pure (text in,
//! value out); reading the file is the caller's business.

use serde::{Deserialize, Serialize};
use std::fmt;
use toml::Spanned;

/// Most physical qubits a Q provider may describe.
pub const QUBITS_MAX: u32 = 1024;
/// Most Φ modes a provider may describe.
pub const PHI_MODES_MAX: u32 = 1024;
/// Most wavelength channels a provider may describe (one bit each in a 64-bit mask).
pub const WAVELENGTH_CHANNELS_MAX: u32 = 64;
/// Most vCPU slots a K provider may describe.
pub const VCPU_SLOTS_MAX: u32 = 4096;
/// Most jobs a provider may run at once.
pub const INFLIGHT_JOBS_MAX: u32 = 4096;
/// Most providers of one domain (Q devices, Φ meshes) a machine may describe.
pub const PROVIDERS_PER_DOMAIN_MAX: usize = 16;

/// The embedded default description: an ideal, all-to-all 32-qubit simulator, a 64-mode ×
/// 8-channel mesh and 8 vCPU slots.
pub const DEFAULT_MACHINE_TOML: &str = include_str!("default_machine.toml");

/// The shape of the Q coupling map.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Topology {
    /// Every pair of qubits is coupled.
    AllToAll,
    /// Qubit i is coupled to i+1.
    Line,
    /// A line closed into a ring.
    Ring,
    /// A rows × cols grid, row-major.
    Grid {
        /// Rows.
        rows: u32,
        /// Columns.
        cols: u32,
    },
    /// An explicit list of coupled pairs.
    Explicit(Vec<[u32; 2]>),
}

/// K-domain capacity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KCapacity {
    /// vCPU slots: fuel slices that may run in one tick, machine-wide.
    pub vcpu_slots: u32,
    /// Fuel units in one slice.
    pub fuel_per_slice: u64,
    /// Guest memory in bytes.
    pub memory_bytes: u64,
}

/// Q-domain capacity of one provider (a device).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QCapacity {
    /// Provider name, unique among the machine's Q providers.
    pub provider: String,
    /// A device description (noise, native gates, durations) for the runtime to load; the core
    /// never reads it.
    pub device: Option<String>,
    /// Physical qubits.
    pub qubits: u32,
    /// Coupling map.
    pub topology: Topology,
    /// Whether a tenant's partition must keep one uncoupled qubit of distance from every other
    /// tenant's (guard qubits against crosstalk).
    pub guard_qubits: bool,
    /// Jobs the provider runs at once.
    pub max_inflight_jobs: u32,
}

/// Φ-domain capacity of one provider (a mesh).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhiCapacity {
    /// Provider name, unique among the machine's Φ providers.
    pub provider: String,
    /// A device description (loss, phase noise, reconfiguration time) for the runtime to load;
    /// the core never reads it.
    pub device: Option<String>,
    /// Spatial modes.
    pub modes: u32,
    /// Wavelength channels.
    pub wavelength_channels: u32,
    /// Heater power in milliwatts.
    pub thermal_budget_mw: u64,
    /// Optical bandwidth in megahertz.
    pub optical_bandwidth_mhz: u64,
    /// Jobs the provider runs at once.
    pub max_inflight_jobs: u32,
}

/// A machine: the K provider, any number of Q and Φ providers (up to
/// [`PROVIDERS_PER_DOMAIN_MAX`] each), and the length of a logical tick.
///
/// The core numbers qubits, Φ modes and Φ cells globally by concatenating the providers in
/// declared order (see [`Layout`]); a partition or region always lies inside one provider.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// Logical nanoseconds per tick.
    pub tick_ns: u64,
    /// K provider.
    pub k: KCapacity,
    /// Q providers, in declared order.
    pub q: Vec<QCapacity>,
    /// Φ providers, in declared order.
    pub phi: Vec<PhiCapacity>,
}

/// Where each provider's qubits, modes and Φ cells lie in the core's global numbering: provider
/// `d`'s qubits are `q_offsets[d]..q_offsets[d + 1]`, its modes
/// `phi_mode_offsets[d]..phi_mode_offsets[d + 1]`, and the cell of its local mode `m` and channel
/// `c` is `phi_cell_offsets[d] + m · channels_d + c`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Qubit offsets, one more than there are Q providers.
    pub q_offsets: Vec<u32>,
    /// Mode offsets, one more than there are Φ providers.
    pub phi_mode_offsets: Vec<u32>,
    /// Cell offsets, one more than there are Φ providers.
    pub phi_cell_offsets: Vec<u32>,
    /// Wavelength channels of each Φ provider.
    pub phi_channels: Vec<u32>,
}

impl Layout {
    /// Qubits of all Q providers together.
    pub fn qubits(&self) -> u32 {
        *self.q_offsets.last().unwrap_or(&0)
    }

    /// Modes of all Φ providers together.
    pub fn phi_modes(&self) -> u32 {
        *self.phi_mode_offsets.last().unwrap_or(&0)
    }

    /// Φ cells of all providers together.
    pub fn phi_cells(&self) -> usize {
        *self.phi_cell_offsets.last().unwrap_or(&0) as usize
    }

    /// The Q provider a global qubit belongs to (`qubit` < [`Layout::qubits`]).
    pub fn q_provider(&self, qubit: u32) -> usize {
        self.q_offsets.partition_point(|&o| o <= qubit) - 1
    }

    /// The provider-local index of a global qubit.
    pub fn q_local(&self, qubit: u32) -> u32 {
        qubit - self.q_offsets[self.q_provider(qubit)]
    }

    /// The Φ provider a global mode belongs to (`mode` < [`Layout::phi_modes`]).
    pub fn phi_provider(&self, mode: u32) -> usize {
        self.phi_mode_offsets.partition_point(|&o| o <= mode) - 1
    }

    /// The bounds of Φ provider `d`'s whole mesh as a region in global modes.
    pub fn phi_bounds(&self, d: usize) -> crate::model::PhiRegion {
        crate::model::PhiRegion {
            mode_start: self.phi_mode_offsets[d],
            modes: self.phi_mode_offsets[d + 1] - self.phi_mode_offsets[d],
            channel_start: 0,
            channels: self.phi_channels[d],
        }
    }

    /// The global index of the Φ cell at global `mode` and `channel` (which must lie on the mode's
    /// provider).
    pub fn phi_cell(&self, mode: u32, channel: u32) -> usize {
        let d = self.phi_provider(mode);
        (self.phi_cell_offsets[d]
            + (mode - self.phi_mode_offsets[d]) * self.phi_channels[d]
            + channel) as usize
    }

    /// The Φ provider whose mesh contains the whole region, if one does.
    pub fn phi_provider_of(&self, r: &crate::model::PhiRegion) -> Option<usize> {
        if r.modes == 0 || r.mode_end() > self.phi_modes() {
            return None;
        }
        let d = self.phi_provider(r.mode_start);
        r.within(&self.phi_bounds(d)).then_some(d)
    }
}

/// A description that could not be read: where, what, and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{origin}:{line}:{column}: {message}\n  hint: {hint}")]
pub struct DescriptionError {
    /// File name or other origin of the text.
    pub origin: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in characters).
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// Converts a byte offset into a 1-based (line, column).
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..text.floor_char_boundary_compat(offset)];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

trait FloorCharBoundary {
    fn floor_char_boundary_compat(&self, i: usize) -> usize;
}

impl FloorCharBoundary for str {
    fn floor_char_boundary_compat(&self, mut i: usize) -> usize {
        while i > 0 && !self.is_char_boundary(i) {
            i -= 1;
        }
        i
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMachine {
    tick_ns: Spanned<u64>,
    k: RawK,
    q: Option<Spanned<Vec<RawQ>>>,
    phi: Option<Spanned<Vec<RawPhi>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawK {
    vcpu_slots: Spanned<u32>,
    fuel_per_slice: Spanned<u64>,
    memory_bytes: u64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQ {
    provider: Spanned<String>,
    device: Option<String>,
    qubits: Spanned<u32>,
    topology: Spanned<String>,
    rows: Option<u32>,
    cols: Option<u32>,
    coupling: Option<Vec<Spanned<[u32; 2]>>>,
    guard_qubits: Option<bool>,
    max_inflight_jobs: Spanned<u32>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPhi {
    provider: Spanned<String>,
    device: Option<String>,
    modes: Spanned<u32>,
    wavelength_channels: Spanned<u32>,
    thermal_budget_mw: u64,
    optical_bandwidth_mhz: u64,
    max_inflight_jobs: Spanned<u32>,
}

impl Machine {
    /// The embedded default machine.
    pub fn default_machine() -> Machine {
        match Machine::from_toml(DEFAULT_MACHINE_TOML, "<embedded default machine>") {
            Ok(m) => m,
            // The embedded text is tested; reaching this is a build defect, not user input.
            Err(e) => panic!("embedded default machine description is invalid: {e}"),
        }
    }

    /// Reads a description from TOML text; `origin` names the text in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Machine, DescriptionError> {
        let err = |span: std::ops::Range<usize>, message: String, hint: &str| {
            let (line, column) = line_col(text, span.start);
            DescriptionError {
                origin: origin.to_string(),
                line,
                column,
                message,
                hint: hint.to_string(),
            }
        };
        let raw: RawMachine = toml::from_str(text).map_err(|e| {
            let span = e.span().unwrap_or(0..0);
            let hint = if e.message().contains("expected a sequence") {
                "providers are arrays of tables: write [[q]] and [[phi]], one table per provider"
            } else {
                "see docs/machine.md for the keys of a provider capacity description"
            };
            err(span, e.message().trim().to_string(), hint)
        })?;
        let in_range = |v: &Spanned<u32>, lo: u32, hi: u32, what: &str| {
            let x = *v.get_ref();
            if x < lo || x > hi {
                Err(err(
                    v.span(),
                    format!("{what} = {x} is out of range {lo}..={hi}"),
                    &format!("set {what} to a value between {lo} and {hi}"),
                ))
            } else {
                Ok(x)
            }
        };
        if *raw.tick_ns.get_ref() == 0 {
            return Err(err(
                raw.tick_ns.span(),
                "tick_ns must be positive".into(),
                "a logical tick is usually 1000000 ns (1 ms)",
            ));
        }
        if *raw.k.fuel_per_slice.get_ref() == 0 {
            return Err(err(
                raw.k.fuel_per_slice.span(),
                "k.fuel_per_slice must be positive".into(),
                "a slice is usually 1000000 fuel units",
            ));
        }
        let vcpu_slots = in_range(&raw.k.vcpu_slots, 1, VCPU_SLOTS_MAX, "k.vcpu_slots")?;
        let name_ok = |name: &Spanned<String>, what: &str| {
            let n = name.get_ref();
            let ok = !n.is_empty()
                && n.len() <= 64
                && n.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
            if ok {
                Ok(n.clone())
            } else {
                Err(err(
                    name.span(),
                    format!("{what}.provider = {n:?} is not a valid provider name"),
                    "a provider name is 1 to 64 characters of A-Z, a-z, 0-9, '_', '-' and '.'",
                ))
            }
        };
        let count_ok = |span: std::ops::Range<usize>, n: usize, what: &str| {
            if n > PROVIDERS_PER_DOMAIN_MAX {
                Err(err(
                    span,
                    format!("{n} {what} providers; at most {PROVIDERS_PER_DOMAIN_MAX} are allowed"),
                    "describe fewer providers, or run several machines",
                ))
            } else {
                Ok(())
            }
        };
        let mut q = Vec::new();
        if let Some(list) = raw.q {
            count_ok(list.span(), list.get_ref().len(), "Q")?;
            for rq in list.into_inner() {
                let provider = name_ok(&rq.provider, "q")?;
                if q.iter().any(|c: &QCapacity| c.provider == provider) {
                    return Err(err(
                        rq.provider.span(),
                        format!("a Q provider named {provider:?} is already described"),
                        "give every [[q]] provider its own name",
                    ));
                }
                q.push(Self::q_from_raw(rq, provider, &err, &in_range)?);
            }
        }
        let mut phi = Vec::new();
        if let Some(list) = raw.phi {
            count_ok(list.span(), list.get_ref().len(), "Φ")?;
            for rp in list.into_inner() {
                let provider = name_ok(&rp.provider, "phi")?;
                if phi.iter().any(|c: &PhiCapacity| c.provider == provider) {
                    return Err(err(
                        rp.provider.span(),
                        format!("a Φ provider named {provider:?} is already described"),
                        "give every [[phi]] provider its own name",
                    ));
                }
                let modes = in_range(&rp.modes, 1, PHI_MODES_MAX, "phi.modes")?;
                let channels = in_range(
                    &rp.wavelength_channels,
                    1,
                    WAVELENGTH_CHANNELS_MAX,
                    "phi.wavelength_channels",
                )?;
                let max_inflight_jobs = in_range(
                    &rp.max_inflight_jobs,
                    1,
                    INFLIGHT_JOBS_MAX,
                    "phi.max_inflight_jobs",
                )?;
                phi.push(PhiCapacity {
                    provider,
                    device: rp.device,
                    modes,
                    wavelength_channels: channels,
                    thermal_budget_mw: rp.thermal_budget_mw,
                    optical_bandwidth_mhz: rp.optical_bandwidth_mhz,
                    max_inflight_jobs,
                });
            }
        }
        Ok(Machine {
            tick_ns: *raw.tick_ns.get_ref(),
            k: KCapacity {
                vcpu_slots,
                fuel_per_slice: *raw.k.fuel_per_slice.get_ref(),
                memory_bytes: raw.k.memory_bytes,
            },
            q,
            phi,
        })
    }

    /// One `[[q]]` table: ranges, topology and guard qubits.
    fn q_from_raw(
        rq: RawQ,
        provider: String,
        err: &impl Fn(std::ops::Range<usize>, String, &str) -> DescriptionError,
        in_range: &impl Fn(&Spanned<u32>, u32, u32, &str) -> Result<u32, DescriptionError>,
    ) -> Result<QCapacity, DescriptionError> {
        let qubits = in_range(&rq.qubits, 1, QUBITS_MAX, "q.qubits")?;
        let max_inflight_jobs = in_range(
            &rq.max_inflight_jobs,
            1,
            INFLIGHT_JOBS_MAX,
            "q.max_inflight_jobs",
        )?;
        let topo_span = rq.topology.span();
        let topology = match rq.topology.get_ref().as_str() {
            "all-to-all" => Topology::AllToAll,
            "line" => Topology::Line,
            "ring" => Topology::Ring,
            "grid" => {
                let (Some(rows), Some(cols)) = (rq.rows, rq.cols) else {
                    return Err(err(
                        topo_span,
                        "topology = \"grid\" needs q.rows and q.cols".into(),
                        "add rows = R and cols = C with R × C = q.qubits",
                    ));
                };
                if u64::from(rows) * u64::from(cols) != u64::from(qubits) {
                    return Err(err(
                        topo_span,
                        format!("grid {rows} × {cols} does not have q.qubits = {qubits} qubits"),
                        "make rows × cols equal q.qubits",
                    ));
                }
                Topology::Grid { rows, cols }
            }
            "explicit" => {
                let Some(pairs) = rq.coupling else {
                    return Err(err(
                        topo_span,
                        "topology = \"explicit\" needs q.coupling".into(),
                        "add coupling = [[0, 1], [1, 2], ...]",
                    ));
                };
                let mut out: Vec<[u32; 2]> = Vec::with_capacity(pairs.len());
                for p in &pairs {
                    let [a, b] = *p.get_ref();
                    if a >= qubits || b >= qubits {
                        return Err(err(
                            p.span(),
                            format!("coupling pair [{a}, {b}] names a qubit outside 0..{qubits}"),
                            "qubits are numbered from 0 to q.qubits - 1",
                        ));
                    }
                    if a == b {
                        return Err(err(
                            p.span(),
                            format!("coupling pair [{a}, {b}] couples a qubit to itself"),
                            "remove the pair",
                        ));
                    }
                    let key = [a.min(b), a.max(b)];
                    if out.contains(&key) {
                        return Err(err(
                            p.span(),
                            format!("coupling pair [{a}, {b}] is listed twice"),
                            "couplings are undirected; list each pair once",
                        ));
                    }
                    out.push(key);
                }
                out.sort_unstable();
                Topology::Explicit(out)
            }
            other => {
                return Err(err(
                    topo_span,
                    format!("unknown topology \"{other}\""),
                    "use \"all-to-all\", \"line\", \"ring\", \"grid\" or \"explicit\"",
                ))
            }
        };
        let all_to_all = matches!(topology, Topology::AllToAll);
        let guard_qubits = rq.guard_qubits.unwrap_or(!all_to_all);
        if guard_qubits && all_to_all {
            return Err(err(
                topo_span,
                "guard_qubits = true with an all-to-all topology would leave room for one tenant"
                    .into(),
                "set guard_qubits = false, or describe the real coupling map",
            ));
        }
        Ok(QCapacity {
            provider,
            device: rq.device,
            qubits,
            topology,
            guard_qubits,
            max_inflight_jobs,
        })
    }

    /// The global numbering of qubits, modes and Φ cells.
    pub fn layout(&self) -> Layout {
        let mut q_offsets = vec![0u32];
        for c in &self.q {
            q_offsets.push(q_offsets[q_offsets.len() - 1] + c.qubits);
        }
        let (mut modes, mut cells) = (vec![0u32], vec![0u32]);
        for c in &self.phi {
            modes.push(modes[modes.len() - 1] + c.modes);
            cells.push(cells[cells.len() - 1] + c.modes * c.wavelength_channels);
        }
        Layout {
            q_offsets,
            phi_mode_offsets: modes,
            phi_cell_offsets: cells,
            phi_channels: self.phi.iter().map(|c| c.wavelength_channels).collect(),
        }
    }

    /// The index of the Q provider with this name.
    pub fn q_provider(&self, name: &str) -> Option<usize> {
        self.q.iter().position(|c| c.provider == name)
    }

    /// The index of the Φ provider with this name.
    pub fn phi_provider(&self, name: &str) -> Option<usize> {
        self.phi.iter().position(|c| c.provider == name)
    }

    /// The coupling maps of all Q providers as sorted adjacency lists over global qubits. Qubits
    /// of an all-to-all provider have empty lists (their coupling is implicit; see
    /// [`QCapacity::topology`]); no list crosses from one provider to another.
    pub fn adjacency(&self) -> Vec<Vec<u32>> {
        let mut adj = Vec::new();
        for c in &self.q {
            let base = adj.len() as u32;
            let n = c.qubits as usize;
            adj.resize(adj.len() + n, Vec::new());
            let mut add = |a: u32, b: u32| {
                adj[(base + a) as usize].push(base + b);
                adj[(base + b) as usize].push(base + a);
            };
            match &c.topology {
                Topology::AllToAll => continue,
                Topology::Line => (1..n as u32).for_each(|i| add(i - 1, i)),
                Topology::Ring => {
                    (1..n as u32).for_each(|i| add(i - 1, i));
                    if n > 2 {
                        add(n as u32 - 1, 0);
                    }
                }
                Topology::Grid { rows, cols } => {
                    for r in 0..*rows {
                        for col in 0..*cols {
                            let i = r * cols + col;
                            if col + 1 < *cols {
                                add(i, i + 1);
                            }
                            if r + 1 < *rows {
                                add(i, i + cols);
                            }
                        }
                    }
                }
                Topology::Explicit(pairs) => pairs.iter().for_each(|[a, b]| add(*a, *b)),
            }
        }
        for l in &mut adj {
            l.sort_unstable();
            l.dedup();
        }
        adj
    }

    /// The machine's capacity of each capacity and placed resource (budgets are unlimited at the
    /// machine level: the operator grants them).
    pub fn capacity(&self) -> crate::model::ResourceVector {
        use crate::model::{Resource, ResourceVector};
        let mut v = ResourceVector::UNLIMITED;
        let sum = |f: &dyn Fn(&PhiCapacity) -> u64| {
            self.phi
                .iter()
                .fold(0u64, |acc, c| acc.saturating_add(f(c)))
        };
        v.set(Resource::VcpuSlots, u64::from(self.k.vcpu_slots));
        v.set(Resource::MemoryBytes, self.k.memory_bytes);
        v.set(
            Resource::LogicalQubits,
            self.q.iter().map(|c| u64::from(c.qubits)).sum(),
        );
        v.set(Resource::PhiModes, sum(&|c| u64::from(c.modes)));
        v.set(
            Resource::WavelengthChannels,
            sum(&|c| u64::from(c.wavelength_channels)),
        );
        v.set(Resource::ThermalBudgetMw, sum(&|c| c.thermal_budget_mw));
        v.set(
            Resource::OpticalBandwidthMhz,
            sum(&|c| c.optical_bandwidth_mhz),
        );
        v
    }
}

impl fmt::Display for Topology {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topology::AllToAll => f.write_str("all-to-all"),
            Topology::Line => f.write_str("line"),
            Topology::Ring => f.write_str("ring"),
            Topology::Grid { rows, cols } => write!(f, "grid {rows}×{cols}"),
            Topology::Explicit(p) => write!(f, "explicit ({} couplings)", p.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_description_parses() {
        let m = Machine::default_machine();
        assert_eq!(m.q.len(), 1);
        assert_eq!(m.q[0].topology, Topology::AllToAll);
        assert!(!m.q[0].guard_qubits);
    }

    fn check_err(text: &str, line: usize, column: usize, needle: &str) {
        let e = Machine::from_toml(text, "m.toml").expect_err("must be refused");
        assert_eq!((e.line, e.column), (line, column), "{e}");
        assert!(e.message.contains(needle), "{e}");
    }

    const BASE: &str = "tick_ns = 1000\n[k]\nvcpu_slots = 2\nfuel_per_slice = 10\nmemory_bytes = 100\n[[phi]]\nprovider = \"p\"\nmodes = 4\nwavelength_channels = 2\nthermal_budget_mw = 5\noptical_bandwidth_mhz = 5\nmax_inflight_jobs = 1\n[[q]]\nprovider = \"s\"\nmax_inflight_jobs = 1\n";

    #[test]
    fn errors_name_line_and_column() {
        check_err(
            &format!("{BASE}qubits = 4\ntopology = \"lattice\"\n"),
            17,
            12,
            "unknown topology",
        );
        check_err(
            &format!("{BASE}qubits = 4000\ntopology = \"line\"\n"),
            16,
            10,
            "out of range",
        );
        check_err(
            &format!("{BASE}qubits = 3\ntopology = \"explicit\"\ncoupling = [[0, 1], [1, 3]]\n"),
            18,
            21,
            "outside",
        );
        check_err(
            &format!("{BASE}qubits = 3\ntopology = \"line\"\ncolour = 1\n"),
            18,
            1,
            "unknown field",
        );
        check_err(
            &format!("{BASE}qubits = 4\ntopology = \"grid\"\nrows = 3\ncols = 2\n"),
            17,
            12,
            "grid",
        );
    }

    #[test]
    fn grid_and_explicit_adjacency() {
        let m = Machine::from_toml(
            &format!("{BASE}qubits = 6\ntopology = \"grid\"\nrows = 2\ncols = 3\n"),
            "m",
        )
        .unwrap();
        let adj = m.adjacency();
        assert_eq!(adj[0], vec![1, 3]);
        assert_eq!(adj[4], vec![1, 3, 5]);
        assert!(m.q[0].guard_qubits);
        let m = Machine::from_toml(
            &format!("{BASE}qubits = 3\ntopology = \"explicit\"\ncoupling = [[2, 0], [1, 0]]\n"),
            "m",
        )
        .unwrap();
        assert_eq!(m.adjacency()[0], vec![1, 2]);
    }

    #[test]
    fn several_providers_are_numbered_globally() {
        let text = format!(
            "{BASE}qubits = 4\ntopology = \"line\"\n[[q]]\nprovider = \"t\"\nqubits = 3\ntopology = \"all-to-all\"\nmax_inflight_jobs = 2\n[[phi]]\nprovider = \"p2\"\nmodes = 3\nwavelength_channels = 5\nthermal_budget_mw = 1\noptical_bandwidth_mhz = 1\nmax_inflight_jobs = 1\n"
        );
        let m = Machine::from_toml(&text, "m").unwrap();
        let l = m.layout();
        assert_eq!(l.q_offsets, vec![0, 4, 7]);
        assert_eq!((l.q_provider(3), l.q_provider(4), l.q_local(6)), (0, 1, 2));
        assert_eq!(l.phi_mode_offsets, vec![0, 4, 7]);
        assert_eq!(l.phi_cell_offsets, vec![0, 8, 23]);
        assert_eq!(l.phi_cell(5, 3), 8 + 5 + 3);
        assert_eq!(m.q_provider("t"), Some(1));
        let adj = m.adjacency();
        assert_eq!(adj.len(), 7);
        assert_eq!(adj[3], vec![2]);
        assert!(adj[4].is_empty(), "all-to-all is implicit");
        let cap = m.capacity();
        assert_eq!(cap.get(crate::model::Resource::LogicalQubits), 7);
        let straddle = crate::model::PhiRegion {
            mode_start: 3,
            modes: 2,
            channel_start: 0,
            channels: 1,
        };
        assert_eq!(l.phi_provider_of(&straddle), None);
        let inside = crate::model::PhiRegion {
            mode_start: 4,
            modes: 3,
            channel_start: 2,
            channels: 3,
        };
        assert_eq!(l.phi_provider_of(&inside), Some(1));
        // Duplicate names are refused at the second name.
        let dup = format!("{BASE}qubits = 4\ntopology = \"line\"\n[[q]]\nprovider = \"s\"\nqubits = 3\ntopology = \"line\"\nmax_inflight_jobs = 1\n");
        check_err(&dup, 19, 12, "already described");
        // The single-table form of earlier versions gets a hint to the array form.
        let e = Machine::from_toml(&BASE.replace("[[q]]", "[q]"), "m").unwrap_err();
        assert!(e.hint.contains("[[q]]"), "{e}");
        // A machine may have no Q or Φ provider at all.
        let none = Machine::from_toml(
            "tick_ns = 1\n[k]\nvcpu_slots = 1\nfuel_per_slice = 1\nmemory_bytes = 1\n",
            "m",
        )
        .unwrap();
        assert!(none.q.is_empty() && none.phi.is_empty());
        assert_eq!(none.layout().qubits(), 0);
    }
}
