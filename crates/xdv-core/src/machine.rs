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

/// Q-domain capacity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QCapacity {
    /// Provider name.
    pub provider: String,
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

/// Φ-domain capacity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhiCapacity {
    /// Provider name.
    pub provider: String,
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

/// A machine: one provider per domain and the length of a logical tick.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Machine {
    /// Logical nanoseconds per tick.
    pub tick_ns: u64,
    /// K provider.
    pub k: KCapacity,
    /// Q provider.
    pub q: QCapacity,
    /// Φ provider.
    pub phi: PhiCapacity,
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
    q: RawQ,
    phi: RawPhi,
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
    provider: String,
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
    provider: String,
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
            err(
                span,
                e.message().trim().to_string(),
                "see docs/machine.md for the keys of a provider capacity description",
            )
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
        let qubits = in_range(&raw.q.qubits, 1, QUBITS_MAX, "q.qubits")?;
        let q_inflight = in_range(
            &raw.q.max_inflight_jobs,
            1,
            INFLIGHT_JOBS_MAX,
            "q.max_inflight_jobs",
        )?;
        let modes = in_range(&raw.phi.modes, 1, PHI_MODES_MAX, "phi.modes")?;
        let channels = in_range(
            &raw.phi.wavelength_channels,
            1,
            WAVELENGTH_CHANNELS_MAX,
            "phi.wavelength_channels",
        )?;
        let phi_inflight = in_range(
            &raw.phi.max_inflight_jobs,
            1,
            INFLIGHT_JOBS_MAX,
            "phi.max_inflight_jobs",
        )?;
        let topo_span = raw.q.topology.span();
        let topology = match raw.q.topology.get_ref().as_str() {
            "all-to-all" => Topology::AllToAll,
            "line" => Topology::Line,
            "ring" => Topology::Ring,
            "grid" => {
                let (Some(rows), Some(cols)) = (raw.q.rows, raw.q.cols) else {
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
                let Some(pairs) = raw.q.coupling else {
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
        let guard_qubits = raw.q.guard_qubits.unwrap_or(!all_to_all);
        if guard_qubits && all_to_all {
            return Err(err(
                topo_span,
                "guard_qubits = true with an all-to-all topology would leave room for one tenant"
                    .into(),
                "set guard_qubits = false, or describe the real coupling map",
            ));
        }
        Ok(Machine {
            tick_ns: *raw.tick_ns.get_ref(),
            k: KCapacity {
                vcpu_slots,
                fuel_per_slice: *raw.k.fuel_per_slice.get_ref(),
                memory_bytes: raw.k.memory_bytes,
            },
            q: QCapacity {
                provider: raw.q.provider,
                qubits,
                topology,
                guard_qubits,
                max_inflight_jobs: q_inflight,
            },
            phi: PhiCapacity {
                provider: raw.phi.provider,
                modes,
                wavelength_channels: channels,
                thermal_budget_mw: raw.phi.thermal_budget_mw,
                optical_bandwidth_mhz: raw.phi.optical_bandwidth_mhz,
                max_inflight_jobs: phi_inflight,
            },
        })
    }

    /// The coupling map as sorted adjacency lists (empty for all-to-all, which is implicit).
    pub fn adjacency(&self) -> Vec<Vec<u32>> {
        let n = self.q.qubits as usize;
        let mut adj = vec![Vec::new(); n];
        let mut add = |a: u32, b: u32| {
            adj[a as usize].push(b);
            adj[b as usize].push(a);
        };
        match &self.q.topology {
            Topology::AllToAll => return adj,
            Topology::Line => (1..n as u32).for_each(|i| add(i - 1, i)),
            Topology::Ring => {
                (1..n as u32).for_each(|i| add(i - 1, i));
                if n > 2 {
                    add(n as u32 - 1, 0);
                }
            }
            Topology::Grid { rows, cols } => {
                for r in 0..*rows {
                    for c in 0..*cols {
                        let i = r * cols + c;
                        if c + 1 < *cols {
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
        v.set(Resource::VcpuSlots, u64::from(self.k.vcpu_slots));
        v.set(Resource::MemoryBytes, self.k.memory_bytes);
        v.set(Resource::LogicalQubits, u64::from(self.q.qubits));
        v.set(Resource::PhiModes, u64::from(self.phi.modes));
        v.set(
            Resource::WavelengthChannels,
            u64::from(self.phi.wavelength_channels),
        );
        v.set(Resource::ThermalBudgetMw, self.phi.thermal_budget_mw);
        v.set(
            Resource::OpticalBandwidthMhz,
            self.phi.optical_bandwidth_mhz,
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
        assert_eq!(m.q.topology, Topology::AllToAll);
        assert!(!m.q.guard_qubits);
    }

    fn check_err(text: &str, line: usize, column: usize, needle: &str) {
        let e = Machine::from_toml(text, "m.toml").expect_err("must be refused");
        assert_eq!((e.line, e.column), (line, column), "{e}");
        assert!(e.message.contains(needle), "{e}");
    }

    const BASE: &str = "tick_ns = 1000\n[k]\nvcpu_slots = 2\nfuel_per_slice = 10\nmemory_bytes = 100\n[phi]\nprovider = \"p\"\nmodes = 4\nwavelength_channels = 2\nthermal_budget_mw = 5\noptical_bandwidth_mhz = 5\nmax_inflight_jobs = 1\n[q]\nprovider = \"s\"\nmax_inflight_jobs = 1\n";

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
        assert!(m.q.guard_qubits);
        let m = Machine::from_toml(
            &format!("{BASE}qubits = 3\ntopology = \"explicit\"\ncoupling = [[2, 0], [1, 0]]\n"),
            "m",
        )
        .unwrap();
        assert_eq!(m.adjacency()[0], vec![1, 2]);
    }
}
