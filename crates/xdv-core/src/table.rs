//! The Resource_Table of XDV-014 §5, derived deterministically from the state: one row per
//! (VHM, resource) it holds, plus one row per coherence window.

use crate::core::Core;
use crate::model::{CapId, Domain, Resource, VhmId};
use serde::{Deserialize, Serialize};

/// A half-open interval of logical time in nanoseconds; `end_ns` is `None` while open-ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Interval {
    /// Start, ns.
    pub start_ns: u64,
    /// End, ns, if bounded.
    pub end_ns: Option<u64>,
}

/// One row: `{vhm, domain, resource, amount, interval, capability}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceRow {
    /// The VHM.
    pub vhm: VhmId,
    /// Its name.
    pub name: String,
    /// The domain.
    pub domain: Domain,
    /// The provider it is held on (Q and Φ resources of a placed VHM), by name.
    pub provider: Option<String>,
    /// The resource (its name carries the unit).
    pub resource: Resource,
    /// The amount held (including what is lent to nested VHMs).
    pub amount: u64,
    /// The amount consumed so far (budgets only).
    pub consumed: u64,
    /// When it is held: from creation to the deadline, or a window's bounds.
    pub interval: Interval,
    /// The capability under which it is held.
    pub capability: CapId,
}

/// The table, ordered by VHM id, then resource, then window id.
pub fn resource_table(core: &Core) -> Vec<ResourceRow> {
    let st = core.state();
    let machine = &core.genesis().machine;
    let layout = core.layout();
    let tick_ns = machine.tick_ns;
    let mut rows = Vec::new();
    for v in st.vhms.values() {
        let q_provider = v
            .qubits
            .first()
            .map(|&q| machine.q[layout.q_provider(q)].provider.clone());
        let phi_provider = v.region.map(|r| {
            machine.phi[layout.phi_provider(r.mode_start)]
                .provider
                .clone()
        });
        let provider_of = |d: Domain| match d {
            Domain::K => None,
            Domain::Q => q_provider.clone(),
            Domain::Phi => phi_provider.clone(),
        };
        let interval = Interval {
            start_ns: v.created_tick.saturating_mul(tick_ns),
            end_ns: v.deadline_tick.map(|d| d.saturating_mul(tick_ns)),
        };
        for r in Resource::ALL {
            let amount = v.held.get(r);
            if amount == 0 {
                continue;
            }
            rows.push(ResourceRow {
                vhm: v.id,
                name: v.name.clone(),
                domain: r.domain(),
                provider: provider_of(r.domain()),
                resource: r,
                amount,
                consumed: v.charged.get(r),
                interval,
                capability: v.own_cap,
            });
        }
        for w in &v.windows {
            let w = &st.windows[w];
            rows.push(ResourceRow {
                vhm: v.id,
                name: v.name.clone(),
                domain: Domain::Phi,
                provider: Some(machine.phi[w.provider as usize].provider.clone()),
                resource: Resource::CoherenceWindowNs,
                amount: w.end_ns - w.start_ns,
                consumed: w.end_ns - w.start_ns,
                interval: Interval {
                    start_ns: w.start_ns,
                    end_ns: Some(w.end_ns),
                },
                capability: v.own_cap,
            });
        }
    }
    rows
}
