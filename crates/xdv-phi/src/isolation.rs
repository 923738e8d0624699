//! Tenant isolation on one Φ device: regions, their disjointness, a field buffer per region, and
//! the modelled leakage between regions.
//!
//! A **region** is a contiguous range of modes × a set of wavelength channels. Two regions
//! overlap when both their mode ranges and their channel sets intersect; a [`Partition`] refuses
//! an overlap with both tenants and the shared cells named.
//!
//! **Leakage.** Tenants' programs are placed on their modes of one physical mesh; between two
//! mode-adjacent regions the device holds the MZIs on the boundary pair `(b − 1, b)` in the bar
//! state: one in every column of the rectangular layout whose parity is that of `b − 1`. A
//! bar-state MZI leaks ℓ = 10^(bar_extinction_db/10) of the power across; it is modelled as
//! `C(γ) = [[cos γ, i sin γ], [i sin γ, cos γ]]` with sin²γ = ℓ. Every other element stays inside
//! its region. So with d boundary MZIs touching region A, light entering A (unit power) reaches
//! any other region with power at most `(d·√ℓ)²`: the leaked field is a sum of d terms, each a
//! product of contractions around one `C(γ) − cos γ·I` of norm √ℓ ([`Placement::leakage_bound`]);
//! with perfect extinction (−∞ dB) nothing leaks. Channel-separated regions do not exchange
//! light in this wavelength-independent, linear model (no inter-channel crosstalk is modelled),
//! but they cannot hold different programs on shared modes: one MZI has one setting.

use std::collections::BTreeSet;
use std::ops::Range;

use thiserror::Error;

use crate::mesh::Mesh;
use crate::noise::{columns, PhysElement, PhysMesh};
use crate::C64;

/// One tenant's region: modes `modes.start .. modes.end` × the channels in `channels`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Region {
    /// The tenant's name, used in messages.
    pub tenant: String,
    /// The contiguous mode range.
    pub modes: Range<usize>,
    /// The wavelength channels.
    pub channels: BTreeSet<usize>,
}

/// Why a set of regions or a placement was refused.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum IsolationError {
    /// A region with no modes or no channels.
    #[error("tenant `{tenant}`'s region is empty (modes {start}..{end}, {channels} channels); give it at least one mode and one channel")]
    Empty {
        /// The tenant.
        tenant: String,
        /// First mode.
        start: usize,
        /// One past the last mode.
        end: usize,
        /// Number of channels.
        channels: usize,
    },
    /// A region outside the device.
    #[error("tenant `{tenant}`'s region (modes {start}..{end}, highest channel {channel_max}) lies outside the device's {modes} modes × {channels} channels; place it inside")]
    OutsideDevice {
        /// The tenant.
        tenant: String,
        /// First mode.
        start: usize,
        /// One past the last mode.
        end: usize,
        /// Its highest channel.
        channel_max: usize,
        /// The device's modes.
        modes: usize,
        /// The device's channels.
        channels: usize,
    },
    /// Two regions share cells.
    #[error("tenants `{first}` and `{second}` overlap on modes {}..{} × channels {channels:?}; give them disjoint mode ranges or disjoint channel sets", modes.start, modes.end)]
    Overlap {
        /// The first tenant (in the order given).
        first: String,
        /// The second tenant.
        second: String,
        /// The shared modes.
        modes: Range<usize>,
        /// The shared channels.
        channels: Vec<usize>,
    },
    /// Two tenants named the same.
    #[error("two regions belong to a tenant named `{0}`; tenant names are unique")]
    DuplicateTenant(String),
    /// A program for a tenant that has no region.
    #[error("no region belongs to tenant index {0}")]
    NoSuchRegion(usize),
    /// A program whose modes are not its region's.
    #[error("tenant `{tenant}`'s program has {program_modes} modes but its region has {region_modes}; compile it for its region")]
    ProgramShape {
        /// The tenant.
        tenant: String,
        /// The program's modes.
        program_modes: usize,
        /// The region's modes.
        region_modes: usize,
    },
    /// Two programmed regions share modes (a wavelength-independent mesh has one setting per MZI).
    #[error("tenants `{first}` and `{second}` both program modes {}..{}; one MZI has one setting for every wavelength, so programmed regions need disjoint mode ranges", modes.start, modes.end)]
    SharedModes {
        /// The first tenant.
        first: String,
        /// The second tenant.
        second: String,
        /// The shared modes.
        modes: Range<usize>,
    },
}

/// Disjoint regions on a device of `modes` × `channels`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Partition {
    modes: usize,
    channels: usize,
    regions: Vec<Region>,
}

fn intersect(a: &Range<usize>, b: &Range<usize>) -> Range<usize> {
    a.start.max(b.start)..a.end.min(b.end)
}

impl Partition {
    /// Checks that every region is non-empty, inside the device, owned by a distinct tenant and
    /// disjoint from every other (by modes or by channels).
    pub fn new(
        modes: usize,
        channels: usize,
        regions: Vec<Region>,
    ) -> Result<Partition, IsolationError> {
        for (i, r) in regions.iter().enumerate() {
            if r.modes.is_empty() || r.channels.is_empty() {
                return Err(IsolationError::Empty {
                    tenant: r.tenant.clone(),
                    start: r.modes.start,
                    end: r.modes.end,
                    channels: r.channels.len(),
                });
            }
            let channel_max = r.channels.iter().next_back().copied().unwrap_or(0);
            if r.modes.end > modes || channel_max >= channels {
                return Err(IsolationError::OutsideDevice {
                    tenant: r.tenant.clone(),
                    start: r.modes.start,
                    end: r.modes.end,
                    channel_max,
                    modes,
                    channels,
                });
            }
            for s in &regions[..i] {
                if s.tenant == r.tenant {
                    return Err(IsolationError::DuplicateTenant(r.tenant.clone()));
                }
                let m = intersect(&s.modes, &r.modes);
                let c: Vec<usize> = s.channels.intersection(&r.channels).copied().collect();
                if !m.is_empty() && !c.is_empty() {
                    return Err(IsolationError::Overlap {
                        first: s.tenant.clone(),
                        second: r.tenant.clone(),
                        modes: m,
                        channels: c,
                    });
                }
            }
        }
        Ok(Partition {
            modes,
            channels,
            regions,
        })
    }

    /// The regions, in the order given.
    pub fn regions(&self) -> &[Region] {
        &self.regions
    }

    /// An empty (dark) field buffer for every region, in order.
    pub fn buffers(&self) -> Vec<FieldBuffer> {
        self.regions
            .iter()
            .map(|r| FieldBuffer {
                modes: r.modes.clone(),
                channels: r.channels.iter().copied().collect(),
                amplitudes: vec![vec![C64::new(0.0, 0.0); r.modes.len()]; r.channels.len()],
            })
            .collect()
    }

    /// Places `programs` (pairs of a region's index and its mesh, on the region's modes
    /// `0 .. len`) on one physical mesh of the device, with bar-state boundary MZIs of power
    /// leakage `bar_leakage` between mode-adjacent regions.
    pub fn place(
        &self,
        programs: &[(usize, &Mesh)],
        bar_leakage: f64,
    ) -> Result<Placement, IsolationError> {
        for (k, (i, mesh)) in programs.iter().enumerate() {
            let r = self
                .regions
                .get(*i)
                .ok_or(IsolationError::NoSuchRegion(*i))?;
            if mesh.modes() != r.modes.len() {
                return Err(IsolationError::ProgramShape {
                    tenant: r.tenant.clone(),
                    program_modes: mesh.modes(),
                    region_modes: r.modes.len(),
                });
            }
            for (j, _) in &programs[..k] {
                let s = &self.regions[*j];
                let m = intersect(&s.modes, &r.modes);
                if !m.is_empty() {
                    return Err(IsolationError::SharedModes {
                        first: s.tenant.clone(),
                        second: r.tenant.clone(),
                        modes: m,
                    });
                }
            }
        }
        // Each program's elements, by column, shifted to its region.
        let mut by_column: Vec<Vec<PhysElement>> = Vec::new();
        for (i, mesh) in programs {
            let offset = self.regions[*i].modes.start;
            for (e, c) in mesh.elements().iter().zip(columns(mesh)) {
                if by_column.len() <= c {
                    by_column.resize_with(c + 1, Vec::new);
                }
                by_column[c].push(PhysElement::from_element(e).shifted(offset));
            }
        }
        let depth = by_column.len().max(1);
        by_column.resize_with(depth, Vec::new);
        // Boundaries: b with b − 1 and b in different regions (or b a region's edge next to
        // another region's), both sides inside the device.
        let mut owner = vec![None; self.modes];
        for (i, r) in self.regions.iter().enumerate() {
            for m in r.modes.clone() {
                if owner[m].is_none() {
                    owner[m] = Some(i);
                }
            }
        }
        let boundaries: Vec<usize> = (1..self.modes)
            .filter(|&b| owner[b - 1].is_some() && owner[b].is_some() && owner[b - 1] != owner[b])
            .collect();
        let gamma = bar_leakage.clamp(0.0, 1.0).sqrt().asin();
        let (s, c) = gamma.sin_cos();
        let mut mesh = PhysMesh::new(self.modes);
        let mut boundary_mzis = vec![0usize; self.regions.len()];
        for (col, elements) in by_column.into_iter().enumerate() {
            for e in elements {
                // In range: every element lies inside its region, which lies inside the device.
                let _ = mesh.push(e);
            }
            for &b in &boundaries {
                if (b - 1) % 2 == col % 2 {
                    let _ = mesh.push(PhysElement::Bs { mode: b - 1, c, s });
                    for side in [owner[b - 1], owner[b]].into_iter().flatten() {
                        boundary_mzis[side] += 1;
                    }
                }
            }
        }
        Ok(Placement {
            partition: self.clone(),
            mesh,
            boundary_mzis,
            bar_leakage,
        })
    }
}

/// A field buffer of one region: `amplitudes[k][j]` is mode `modes.start + j` in channel
/// `channels[k]`.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldBuffer {
    /// The region's modes.
    pub modes: Range<usize>,
    /// The region's channels, ascending.
    pub channels: Vec<usize>,
    /// The amplitudes, per channel then per mode.
    pub amplitudes: Vec<Vec<C64>>,
}

impl FieldBuffer {
    /// The power in the buffer.
    pub fn power(&self) -> f64 {
        self.amplitudes.iter().flatten().map(|a| a.norm_sqr()).sum()
    }
}

/// Programs placed on one device mesh with their boundary MZIs.
#[derive(Clone, Debug, PartialEq)]
pub struct Placement {
    partition: Partition,
    mesh: PhysMesh,
    boundary_mzis: Vec<usize>,
    bar_leakage: f64,
}

impl Placement {
    /// The device-wide physical mesh.
    pub fn mesh(&self) -> &PhysMesh {
        &self.mesh
    }

    /// The number of boundary MZIs touching region `i`.
    pub fn boundary_mzis(&self, i: usize) -> usize {
        self.boundary_mzis.get(i).copied().unwrap_or(0)
    }

    /// The modelled bound on the power fraction leaving region `from` into any other region:
    /// `(d·√ℓ)²`, capped at 1.
    pub fn leakage_bound(&self, from: usize) -> f64 {
        let d = self.boundary_mzis(from) as f64;
        (d * d * self.bar_leakage).min(1.0)
    }

    /// The power fraction from region `from` into region `to`, worst case over single-mode unit
    /// inputs in `from` (computed from the device-wide transfer matrix; 0 for unknown regions).
    pub fn leakage(&self, from: usize, to: usize) -> f64 {
        let (Some(a), Some(b)) = (
            self.partition.regions.get(from),
            self.partition.regions.get(to),
        ) else {
            return 0.0;
        };
        let n = self.mesh.modes();
        let mut worst = 0.0f64;
        for j in a.modes.clone() {
            let mut field = vec![C64::new(0.0, 0.0); n];
            field[j] = C64::new(1.0, 0.0);
            if self.mesh.apply(&mut field).is_err() {
                return f64::NAN;
            }
            let p: f64 = field[b.modes.clone()].iter().map(|x| x.norm_sqr()).sum();
            worst = worst.max(p);
        }
        worst
    }

    /// Runs the placed mesh on the regions' buffers (one per region, as from
    /// [`Partition::buffers`]): gathers each channel's device-wide field from the buffers, applies
    /// the mesh, and scatters it back, so that light leaked across a boundary appears in the
    /// neighbour's buffer. Channels no region holds carry no light.
    pub fn run(&self, buffers: &mut [FieldBuffer]) -> Result<(), crate::PhiError> {
        if buffers.len() != self.partition.regions.len() {
            return Err(crate::PhiError::Shape {
                message: format!(
                    "{} field buffers given for {} regions",
                    buffers.len(),
                    self.partition.regions.len()
                ),
            });
        }
        for (b, r) in buffers.iter().zip(&self.partition.regions) {
            let shape_ok = b.modes == r.modes
                && b.channels.iter().copied().eq(r.channels.iter().copied())
                && b.amplitudes.len() == b.channels.len()
                && b.amplitudes.iter().all(|ch| ch.len() == r.modes.len());
            if !shape_ok {
                return Err(crate::PhiError::Shape {
                    message: format!(
                        "tenant `{}`'s field buffer does not have its region's shape",
                        r.tenant
                    ),
                });
            }
        }
        let n = self.mesh.modes();
        for w in 0..self.partition.channels {
            let mut field = vec![C64::new(0.0, 0.0); n];
            let mut any = false;
            for b in buffers.iter() {
                if let Some(k) = b.channels.iter().position(|&c| c == w) {
                    field[b.modes.clone()].copy_from_slice(&b.amplitudes[k]);
                    any = true;
                }
            }
            if !any {
                continue;
            }
            self.mesh.apply(&mut field)?;
            for b in buffers.iter_mut() {
                if let Some(k) = b.channels.iter().position(|&c| c == w) {
                    b.amplitudes[k].copy_from_slice(&field[b.modes.clone()]);
                }
            }
        }
        Ok(())
    }
}
