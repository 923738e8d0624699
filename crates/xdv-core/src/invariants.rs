//! The invariant checker: re-derives from the state, independently of the code that changed it,
//! the rules XDV-014 requires, and reports the first one broken.
//!
//! [`check_step`] is incremental: after each input it checks what that input touched (the VHMs,
//! placements, windows, capabilities and effects it produced). [`check_full`] checks everything
//! from scratch. The rules:
//!
//! - `quota`: a VHM never holds more than its quota; what it lent to children plus what its jobs
//!   consumed is within what it holds; what it lent equals what its children hold; the machine's
//!   free capacity plus what root VHMs hold is the machine's capacity.
//! - `placement`: Q partitions and Φ regions of different VHMs never overlap; a nested VHM's lie
//!   inside its parent's; guard qubits separate root tenants on a sparse coupling map.
//! - `windows`: coherence windows of different VHMs never overlap without a sharing contract.
//! - `ipc`: a message is delivered only between the two ends of an open channel that both hold a
//!   live endpoint capability for.
//! - `capability`: every accepted command was authorised by a live capability of its principal
//!   with the rights the command needs over its target; every derived capability is at most as
//!   wide as its parent.
//! - `stop`: a stopped VHM holds nothing: no jobs, channels, windows, capabilities or placements,
//!   and its children stopped before it.
//! - `isolation`: every effect that runs work names only its own VHM's resources.
//! - `jobs`: queues, in-flight counters and per-VHM indexes agree.
//! - `atomicity`: a rejected input produced no effects and no events.

use crate::caps::{Rights, Scope, Target};
use crate::core::{Core, JobState, State};
use crate::input::{Command, Effect, Event, Input, Outcome};
use crate::model::{Domain, Resource, ResourceKind, ResourceVector, VhmId};
use std::fmt;

/// A broken invariant: which rule and what was found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// The rule's name (see the module documentation).
    pub rule: &'static str,
    /// What was found.
    pub detail: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invariant `{}` violated: {}", self.rule, self.detail)
    }
}

impl std::error::Error for Violation {}

fn fail<T>(rule: &'static str, detail: String) -> Result<T, Violation> {
    Err(Violation { rule, detail })
}

/// The right and target a command needs, as the checker understands it (kept apart from the
/// core's own dispatch on purpose).
fn needed(st: &State, cmd: &Command) -> Option<(Target, Rights)> {
    Some(match cmd {
        Command::CreateVhm { .. } => (Target::Machine, Rights::CREATE),
        Command::CreateNested { parent, .. } => (Target::Vhm(*parent), Rights::NEST),
        Command::Reserve { vhm, .. }
        | Command::Release { vhm, .. }
        | Command::ReserveWindow { vhm, .. } => (Target::Vhm(*vhm), Rights::RESERVE),
        Command::ShareWindows { a, .. } => (Target::Vhm(*a), Rights::SHARE),
        Command::SubmitJob { vhm, .. } => (Target::Vhm(*vhm), Rights::SUBMIT),
        Command::OpenChannel { a, .. } => (Target::Vhm(*a), Rights::IPC),
        Command::CloseChannel { channel } | Command::Send { channel, .. } => {
            (Target::Channel(*channel), Rights::IPC)
        }
        Command::Fault { vhm, .. } | Command::Terminate { vhm } => {
            (Target::Vhm(*vhm), Rights::CONTROL)
        }
        Command::Grant { .. } | Command::Attenuate { .. } | Command::Revoke { .. } => return None,
        Command::Wait { job, .. } => (Target::Vhm(st.jobs.get(job)?.vhm), Rights::SUBMIT),
        Command::RevokeToken { .. } => (Target::Machine, Rights::REVOKE),
        Command::Deny { .. } => (Target::Machine, Rights::CONTROL),
    })
}

/// Checks what the last input touched. Call right after [`Core::apply`] with its input and outcome.
pub fn check_step(core: &Core, input: &Input, out: &Outcome) -> Result<(), Violation> {
    let st = core.state();
    let t = core.touched();
    if !out.accepted() && (!out.effects.is_empty() || !out.events.is_empty()) {
        return fail(
            "atomicity",
            "a rejected input produced effects or events".into(),
        );
    }
    let mut roots_touched = false;
    for &v in &t.vhms {
        match st.vhms.get(&v) {
            Some(vhm) => {
                roots_touched |= vhm.parent.is_none();
                check_vhm_accounting(st, v)?;
            }
            None => roots_touched = true,
        }
    }
    if roots_touched {
        check_machine_accounting(core)?;
    }
    if t.placement {
        check_placement(core)?;
    }
    if t.windows {
        check_windows(core)?;
    }
    if let (
        Input::Command {
            principal, command, ..
        },
        true,
    ) = (input, out.accepted())
    {
        check_authorised(core, *principal, command)?;
    }
    for &c in &t.caps_issued {
        if let Some(cap) = st.caps.caps.get(&c) {
            check_narrowing(st, cap)?;
        }
    }
    for e in &out.effects {
        check_effect(core, e)?;
    }
    let mut stopped: Vec<VhmId> = Vec::new();
    for e in &out.events {
        if let Event::VhmStopped { vhm, .. } = e {
            check_stopped(core, *vhm, &stopped)?;
            stopped.push(*vhm);
        }
    }
    if let (
        Input::Command {
            principal,
            command: Command::Send { channel, .. },
            ..
        },
        true,
    ) = (input, out.accepted())
    {
        for e in &out.effects {
            if let Effect::Deliver { from, .. } = e {
                if crate::input::Principal::Vhm(*from) != *principal {
                    return fail(
                        "ipc",
                        format!(
                            "{principal} sent on {channel} but the delivery names {from} as sender"
                        ),
                    );
                }
            }
        }
    }
    let m = &core.genesis().machine;
    let over_q = st
        .q_inflight
        .iter()
        .zip(&m.q)
        .any(|(n, c)| *n > c.max_inflight_jobs);
    let over_phi = st
        .phi_inflight
        .iter()
        .zip(&m.phi)
        .any(|(n, c)| *n > c.max_inflight_jobs);
    if over_q
        || over_phi
        || st.q_inflight.len() != m.q.len()
        || st.phi_inflight.len() != m.phi.len()
    {
        return fail(
            "jobs",
            format!(
                "in flight Q {:?} / Φ {:?} exceeds the providers' limits",
                st.q_inflight, st.phi_inflight
            ),
        );
    }
    Ok(())
}

/// Checks every invariant over the whole state.
pub fn check_full(core: &Core) -> Result<(), Violation> {
    let st = core.state();
    for &v in st.vhms.keys() {
        check_vhm_accounting(st, v)?;
    }
    check_machine_accounting(core)?;
    check_placement(core)?;
    check_windows(core)?;
    for cap in st.caps.caps.values() {
        check_narrowing(st, cap)?;
        if let crate::input::Principal::Vhm(v) = cap.holder {
            if !st.vhms.contains_key(&v) {
                return fail(
                    "stop",
                    format!("{} is held by {v}, which has stopped", cap.id),
                );
            }
        }
        let target_live = match cap.target {
            Target::Machine => true,
            Target::Vhm(v) => st.vhms.contains_key(&v),
            Target::Channel(c) => st.channels.contains_key(&c),
        };
        if !target_live {
            return fail(
                "stop",
                format!("{} targets {}, which is gone", cap.id, cap.target),
            );
        }
    }
    for ch in st.channels.values() {
        for (v, c) in [(ch.a, ch.cap_a), (ch.b, ch.cap_b)] {
            let ok = st.vhms.contains_key(&v)
                && st.caps.caps.get(&c).is_some_and(|cap| {
                    cap.holder == crate::input::Principal::Vhm(v)
                        && cap.target == Target::Channel(ch.id)
                });
            if !ok {
                return fail(
                    "ipc",
                    format!(
                        "{} is open but {v} lacks its live endpoint capability {c}",
                        ch.id
                    ),
                );
            }
        }
    }
    check_jobs(core)
}

fn check_vhm_accounting(st: &State, id: VhmId) -> Result<(), Violation> {
    let v = &st.vhms[&id];
    if let Some(r) = v.held.first_excess(&v.quota) {
        return fail(
            "quota",
            format!(
                "{id} holds {} {r}, over its quota of {}",
                v.held.get(r),
                v.quota.get(r)
            ),
        );
    }
    let used = v.delegated.checked_add(&v.charged);
    match used {
        Some(u) if u.le(&v.held) => {}
        _ => {
            return fail(
                "quota",
                format!(
                    "{id}: lent {:?} + consumed {:?} exceeds held {:?}",
                    v.delegated, v.charged, v.held
                ),
            )
        }
    }
    let mut lent = ResourceVector::ZERO;
    for c in &v.children {
        let Some(child) = st.vhms.get(c) else {
            return fail("stop", format!("{id} lists child {c}, which is gone"));
        };
        if child.parent != Some(id) {
            return fail(
                "quota",
                format!(
                    "{c} is listed under {id} but names {:?} as parent",
                    child.parent
                ),
            );
        }
        if let Some(r) = child.quota.first_excess(&v.quota) {
            return fail(
                "quota",
                format!(
                    "nested {c}'s quota of {} {r} exceeds its parent {id}'s {}",
                    child.quota.get(r),
                    v.quota.get(r)
                ),
            );
        }
        lent = match lent.checked_add(&child.held.pooled()) {
            Some(x) => x,
            None => {
                return fail(
                    "quota",
                    format!("{id}'s children hold more than can be counted"),
                )
            }
        };
    }
    if lent != v.delegated {
        return fail(
            "quota",
            format!(
                "{id} records lending {:?} but its children hold {:?}",
                v.delegated, lent
            ),
        );
    }
    if let Some(p) = v.parent {
        let Some(pv) = st.vhms.get(&p) else {
            return fail("stop", format!("{id} outlived its parent {p}"));
        };
        if pv.children.binary_search(&id).is_err() {
            return fail(
                "quota",
                format!("{id} names {p} as parent but is not among its children"),
            );
        }
        if pv.depth + 1 != v.depth || pv.root != v.root {
            return fail(
                "quota",
                format!("{id}'s depth or root disagrees with its parent {p}"),
            );
        }
        // The parent's accounting includes this child; check it too.
        let plent = pv.children.iter().try_fold(ResourceVector::ZERO, |acc, c| {
            acc.checked_add(&st.vhms[c].held.pooled())
        });
        if plent != Some(pv.delegated) {
            return fail(
                "quota",
                format!(
                    "{p} records lending {:?} but its children hold {:?}",
                    pv.delegated, plent
                ),
            );
        }
    }
    Ok(())
}

fn check_machine_accounting(core: &Core) -> Result<(), Violation> {
    let st = core.state();
    let cap = core.genesis().machine.capacity();
    let mut sum = st.machine_free;
    for v in st.vhms.values().filter(|v| v.parent.is_none()) {
        for r in Resource::ALL {
            if r.kind() != ResourceKind::Budget {
                sum.0[r.index()] = sum.0[r.index()].saturating_add(v.held.get(r));
            }
        }
    }
    for r in Resource::ALL {
        // The Φ dimensions are not pooled: they stay at the machine's figure.
        let expect = if r.is_dimension() {
            cap.get(r).saturating_add(
                st.vhms
                    .values()
                    .filter(|v| v.parent.is_none())
                    .fold(0u64, |a, v| a.saturating_add(v.held.get(r))),
            )
        } else {
            cap.get(r)
        };
        if r.kind() != ResourceKind::Budget && sum.get(r) != expect {
            return fail(
                "quota",
                format!(
                    "{r}: free {} + held by root VHMs adds up to {}, not the machine's {}",
                    st.machine_free.get(r),
                    sum.get(r),
                    cap.get(r)
                ),
            );
        }
    }
    Ok(())
}

/// Rebuilds the owner maps from the VHMs' own placements, shallowest first, and compares.
fn check_placement(core: &Core) -> Result<(), Violation> {
    let st = core.state();
    let m = &core.genesis().machine;
    let mut order: Vec<(u32, VhmId)> = st.vhms.values().map(|v| (v.depth, v.id)).collect();
    order.sort_unstable();
    // The layout is recomputed from the machine, not taken from the core.
    let layout = m.layout();
    let mut q_owner: Vec<Option<VhmId>> = vec![None; layout.qubits() as usize];
    let mut phi_owner: Vec<Option<VhmId>> = vec![None; layout.phi_cells()];
    for &(_, id) in &order {
        let v = &st.vhms[&id];
        if v.qubits.windows(2).any(|p| p[0] >= p[1]) {
            return fail(
                "placement",
                format!("{id}'s qubits are not sorted and distinct"),
            );
        }
        if v.qubits.len() as u64 != v.held.get(Resource::LogicalQubits) {
            return fail(
                "placement",
                format!(
                    "{id} holds {} logical qubits but is placed on {}",
                    v.held.get(Resource::LogicalQubits),
                    v.qubits.len()
                ),
            );
        }
        if let Some(why) = partition_defect(m, &layout, core.adjacency(), &v.qubits) {
            return fail("placement", format!("{id}'s partition {why}"));
        }
        for &q in &v.qubits {
            let Some(slot) = q_owner.get_mut(q as usize) else {
                return fail(
                    "placement",
                    format!("{id} is placed on qubit {q}, which the machine lacks"),
                );
            };
            if *slot != v.parent {
                return fail(
                    "placement",
                    format!(
                        "qubit {q} of {id} is also held by {:?} (expected {:?})",
                        slot, v.parent
                    ),
                );
            }
            *slot = Some(id);
        }
        match v.region {
            None => {
                if v.held.get(Resource::PhiModes) != 0 {
                    return fail("placement", format!("{id} holds Φ modes but has no region"));
                }
            }
            Some(r) => {
                if u64::from(r.modes) != v.held.get(Resource::PhiModes)
                    || u64::from(r.channels) != v.held.get(Resource::WavelengthChannels)
                    || layout.phi_provider_of(&r).is_none()
                {
                    return fail(
                        "placement",
                        format!("{id}'s region {r} disagrees with its holdings or the mesh"),
                    );
                }
                for mo in r.mode_start..r.mode_end() {
                    for c in r.channel_start..r.channel_end() {
                        let slot = &mut phi_owner[layout.phi_cell(mo, c)];
                        if *slot != v.parent {
                            return fail(
                                "placement",
                                format!(
                                    "Φ cell (mode {mo}, channel {c}) of {id} is also held by {:?}",
                                    slot
                                ),
                            );
                        }
                        *slot = Some(id);
                    }
                }
            }
        }
    }
    if q_owner != st.q_owner {
        return fail(
            "placement",
            "the qubit owner map disagrees with the VHMs' partitions".into(),
        );
    }
    if phi_owner != st.phi_owner {
        return fail(
            "placement",
            "the Φ owner map disagrees with the VHMs' regions".into(),
        );
    }
    let adjacency = core.adjacency();
    for (d, c) in m.q.iter().enumerate() {
        if !c.guard_qubits {
            continue;
        }
        for q in layout.q_offsets[d]..layout.q_offsets[d + 1] {
            let (q, nbrs) = (q as usize, &adjacency[q as usize]);
            let Some(a) = q_owner[q] else { continue };
            for &n in nbrs {
                if let Some(b) = q_owner[n as usize] {
                    let (ra, rb) = (st.vhms[&a].root, st.vhms[&b].root);
                    if ra != rb {
                        return fail("placement", format!("qubits {q} ({ra}) and {n} ({rb}) of different tenants are coupled: no guard qubit between them"));
                    }
                }
            }
        }
    }
    Ok(())
}

/// Why a partition (sorted global qubits) is not a connected set on one provider, if it is not.
fn partition_defect(
    m: &crate::machine::Machine,
    layout: &crate::machine::Layout,
    adjacency: &[Vec<u32>],
    qubits: &[u32],
) -> Option<String> {
    let (&first, &last) = (qubits.first()?, qubits.last()?);
    if last >= layout.qubits() {
        return Some(format!("names qubit {last}, which the machine lacks"));
    }
    let d = layout.q_provider(first);
    if layout.q_provider(last) != d {
        return Some(format!(
            "spans two Q providers ({:?} and {:?})",
            m.q[d].provider,
            m.q[layout.q_provider(last)].provider
        ));
    }
    if matches!(m.q[d].topology, crate::machine::Topology::AllToAll) {
        return None;
    }
    let mut seen = vec![false; qubits.len()];
    let mut stack = vec![0usize];
    seen[0] = true;
    while let Some(i) = stack.pop() {
        for n in &adjacency[qubits[i] as usize] {
            if let Ok(j) = qubits.binary_search(n) {
                if !seen[j] {
                    seen[j] = true;
                    stack.push(j);
                }
            }
        }
    }
    seen.iter().position(|s| !s).map(|i| {
        format!(
            "is not connected: qubit {} is cut off from qubit {first}",
            qubits[i]
        )
    })
}

fn check_windows(core: &Core) -> Result<(), Violation> {
    let st = core.state();
    let layout = core.layout();
    let mut sorted: Vec<_> = st.windows.values().copied().collect();
    sorted.sort_unstable_by_key(|w| (w.start_ns, w.id));
    if st.windows_by_start.len() != sorted.len()
        || !sorted
            .iter()
            .zip(&st.windows_by_start)
            .all(|(w, k)| (w.start_ns, w.id) == *k)
    {
        return fail(
            "windows",
            "the window index disagrees with the window table".into(),
        );
    }
    let mut active: Vec<crate::core::Window> = Vec::new();
    for w in sorted {
        let Some(v) = st.vhms.get(&w.vhm) else {
            return fail(
                "stop",
                format!("{} belongs to {}, which has stopped", w.id, w.vhm),
            );
        };
        let on_mesh = v
            .region
            .and_then(|r| layout.phi_provider_of(&r))
            .is_some_and(|d| d as u32 == w.provider);
        if v.windows.binary_search(&w.id).is_err() || !on_mesh {
            return fail(
                "windows",
                format!(
                    "{} is not indexed under {}, or it is not on the mesh of its Φ region",
                    w.id, w.vhm
                ),
            );
        }
        active.retain(|a| a.end_ns > w.start_ns);
        for a in active.iter().filter(|a| a.provider == w.provider) {
            let shared = a.vhm != w.vhm && v.contracts.binary_search(&a.vhm).is_ok();
            if !shared {
                return fail("windows", format!("{} of {} ({}..{} ns) overlaps {} of {} ({}..{} ns) without a sharing contract", w.id, w.vhm, w.start_ns, w.end_ns, a.id, a.vhm, a.start_ns, a.end_ns));
            }
        }
        active.push(w);
    }
    Ok(())
}

fn check_authorised(
    core: &Core,
    principal: crate::input::Principal,
    cmd: &Command,
) -> Result<(), Violation> {
    let st = core.state();
    let auth = &core.touched().authorized;
    let Some(first) = auth.first() else {
        return fail(
            "capability",
            format!(
                "{} by {principal} was accepted without any capability check",
                cmd.name()
            ),
        );
    };
    for a in auth {
        if a.holder != principal {
            return fail(
                "capability",
                format!(
                    "{} by {principal} was authorised by {} held by {}",
                    cmd.name(),
                    a.id,
                    a.holder
                ),
            );
        }
        if a.expires_tick <= st.now_tick {
            return fail(
                "capability",
                format!("{} was authorised by expired {}", cmd.name(), a.id),
            );
        }
    }
    if let Some((target, right)) = needed(st, cmd) {
        if !first.rights.contains(right) {
            return fail(
                "capability",
                format!(
                    "{} needs {right} but {} has {}",
                    cmd.name(),
                    first.id,
                    first.rights
                ),
            );
        }
        let live = match target {
            Target::Vhm(v) => st.vhms.contains_key(&v),
            Target::Channel(c) => st.channels.contains_key(&c),
            Target::Machine => true,
        };
        if live && !st.within(target, first.target) {
            return fail(
                "capability",
                format!(
                    "{} on {target} was authorised by {}, which covers only {}",
                    cmd.name(),
                    first.id,
                    first.target
                ),
            );
        }
    }
    if let Command::Grant { .. } = cmd {
        if !first.rights.contains(Rights::GRANT) {
            return fail(
                "capability",
                format!("grant authorised by {} without the grant right", first.id),
            );
        }
    }
    Ok(())
}

fn check_narrowing(st: &State, cap: &crate::caps::Capability) -> Result<(), Violation> {
    let Some(pid) = cap.parent else {
        if cap.id != crate::caps::ROOT_CAP {
            return fail(
                "capability",
                format!("{} has no parent but is not the root capability", cap.id),
            );
        }
        return Ok(());
    };
    let Some(parent) = st.caps.caps.get(&pid) else {
        return fail(
            "capability",
            format!("{} outlived {pid}, which it derives from", cap.id),
        );
    };
    if !parent.rights.contains(cap.rights) {
        return fail(
            "capability",
            format!(
                "{} has rights {} beyond its parent {pid}'s {}",
                cap.id, cap.rights, parent.rights
            ),
        );
    }
    if cap.expires_tick > parent.expires_tick {
        return fail(
            "capability",
            format!("{} expires after its parent {pid}", cap.id),
        );
    }
    let reachable = st.within(cap.target, parent.target);
    if !reachable {
        return fail(
            "capability",
            format!(
                "{} targets {} outside its parent {pid}'s {}",
                cap.id, cap.target, parent.target
            ),
        );
    }
    Ok(())
}

fn check_effect(core: &Core, e: &Effect) -> Result<(), Violation> {
    let st = core.state();
    match e {
        Effect::Deliver {
            channel, from, to, ..
        } => {
            let Some(ch) = st.channels.get(channel) else {
                return fail(
                    "ipc",
                    format!(
                        "a message crossed from {from} to {to} without an open channel ({channel})"
                    ),
                );
            };
            if !((ch.a == *from && ch.b == *to) || (ch.b == *from && ch.a == *to)) {
                return fail(
                    "ipc",
                    format!("{channel} joins {} and {}, not {from} and {to}", ch.a, ch.b),
                );
            }
            for (v, c) in [(ch.a, ch.cap_a), (ch.b, ch.cap_b)] {
                let ok = st
                    .caps
                    .caps
                    .get(&c)
                    .is_some_and(|cap| cap.holder == crate::input::Principal::Vhm(v));
                if !ok {
                    return fail(
                        "ipc",
                        format!(
                            "a message crossed {channel} while {v} lacks its endpoint capability"
                        ),
                    );
                }
            }
        }
        Effect::ExecuteQ {
            job,
            vhm,
            provider,
            qubits,
            ..
        } => {
            let Some(v) = st.vhms.get(vhm) else {
                return fail("isolation", format!("{job} dispatched for stopped {vhm}"));
            };
            let layout = core.layout();
            if qubits
                .iter()
                .any(|&q| q >= layout.qubits() || layout.q_provider(q) as u32 != *provider)
            {
                return fail(
                    "isolation",
                    format!("{job} of {vhm} names qubits {qubits:?} off its provider {provider}"),
                );
            }
            if qubits.is_empty()
                || qubits
                    .iter()
                    .any(|&q| st.q_owner.get(q as usize).copied().flatten() != Some(v.id))
            {
                return fail(
                    "isolation",
                    format!("{job} of {vhm} runs on qubits {qubits:?} that are not its own"),
                );
            }
        }
        Effect::ExecutePhi {
            job,
            vhm,
            provider,
            region,
            excluded,
            window,
            at_ns,
            window_start_ns,
            window_end_ns,
        } => {
            let Some(v) = st.vhms.get(vhm) else {
                return fail("isolation", format!("{job} dispatched for stopped {vhm}"));
            };
            if v.region != Some(*region)
                || core.layout().phi_provider_of(region) != Some(*provider as usize)
            {
                return fail(
                    "isolation",
                    format!("{job} of {vhm} runs in {region} on mesh {provider}, not its region"),
                );
            }
            let kids: Vec<_> = v
                .children
                .iter()
                .filter_map(|c| st.vhms[c].region)
                .collect();
            if &kids != excluded {
                return fail(
                    "isolation",
                    format!("{job} of {vhm} does not exclude its nested VHMs' regions"),
                );
            }
            let dur = st.jobs.get(job).map_or(0, |j| j.cost.duration_ns);
            let inside = *window_start_ns <= *at_ns && at_ns.saturating_add(dur) <= *window_end_ns;
            // A window that ended later in the same (multi-tick) input is gone; a live one must be
            // this VHM's with the same bounds.
            let consistent = match st.windows.get(window) {
                Some(w) => {
                    w.vhm == *vhm && w.start_ns == *window_start_ns && w.end_ns == *window_end_ns
                }
                None => *window_end_ns <= core.now_ns() && window.0 < st.next_window,
            };
            if !inside || !consistent || *at_ns > core.now_ns() {
                return fail(
                    "windows",
                    format!("{job} of {vhm} runs outside its own open coherence window {window}"),
                );
            }
        }
        Effect::RunSlice {
            job,
            vhm,
            fuel_units,
            ..
        } => {
            if !st.vhms.contains_key(vhm) {
                return fail(
                    "isolation",
                    format!("a slice of {job} dispatched for stopped {vhm}"),
                );
            }
            if let Some(j) = st.jobs.get(job) {
                if j.vhm != *vhm || j.domain != Domain::K {
                    return fail(
                        "isolation",
                        format!("a slice of {job} was dispatched for {vhm}, not its owner"),
                    );
                }
            }
            if *fuel_units == 0 || *fuel_units > core.genesis().machine.k.fuel_per_slice {
                return fail(
                    "jobs",
                    format!("a slice of {job} carries {fuel_units} fuel units"),
                );
            }
        }
        Effect::StartVhm { vhm } => {
            if !st.vhms.contains_key(vhm) {
                return fail("stop", format!("{vhm} was started but is not live"));
            }
        }
        Effect::CancelJob { .. } | Effect::StopVhm { .. } => {}
    }
    Ok(())
}

fn check_stopped(core: &Core, id: VhmId, stopped_before: &[VhmId]) -> Result<(), Violation> {
    let st = core.state();
    if st.vhms.contains_key(&id) {
        return fail(
            "stop",
            format!("{id} was reported stopped but is still live"),
        );
    }
    if st.vhms.values().any(|v| v.parent == Some(id)) {
        return fail("stop", format!("{id} stopped but a child still runs"));
    }
    if stopped_before.iter().any(|s| st.vhms.contains_key(s)) {
        return fail("stop", format!("a VHM stopped before {id} is live again"));
    }
    if st.jobs.values().any(|j| j.vhm == id) {
        return fail("stop", format!("{id} stopped but still has jobs"));
    }
    if st.channels.values().any(|c| c.a == id || c.b == id) {
        return fail("stop", format!("{id} stopped but a channel to it is open"));
    }
    if st.windows.values().any(|w| w.vhm == id) {
        return fail(
            "stop",
            format!("{id} stopped but still has a coherence window"),
        );
    }
    if st.q_owner.contains(&Some(id)) || st.phi_owner.contains(&Some(id)) {
        return fail(
            "stop",
            format!("{id} stopped but still owns qubits or Φ cells"),
        );
    }
    let p = crate::input::Principal::Vhm(id);
    if let Some(c) = st
        .caps
        .caps
        .values()
        .find(|c| c.holder == p || c.target == Target::Vhm(id))
    {
        return fail(
            "stop",
            format!("{id} stopped but {} held by or targeting it is live", c.id),
        );
    }
    if st
        .vhms
        .values()
        .any(|v| v.contracts.binary_search(&id).is_ok())
    {
        return fail(
            "stop",
            format!("{id} stopped but a sharing contract names it"),
        );
    }
    Ok(())
}

fn check_jobs(core: &Core) -> Result<(), Violation> {
    let st = core.state();
    let layout = core.layout();
    let (mut q, mut phi) = (
        vec![0u32; st.q_inflight.len()],
        vec![0u32; st.phi_inflight.len()],
    );
    for j in st.jobs.values() {
        let Some(v) = st.vhms.get(&j.vhm) else {
            return fail("stop", format!("{} belongs to stopped {}", j.id, j.vhm));
        };
        if v.jobs.binary_search(&j.id).is_err() {
            return fail("jobs", format!("{} is not indexed under {}", j.id, j.vhm));
        }
        let queued = st.queues[j.domain.index()].contains(&j.id);
        let should = matches!(j.state, JobState::Queued | JobState::Running);
        if queued != should {
            return fail(
                "jobs",
                format!(
                    "{} in state {:?} is {}in its queue",
                    j.id,
                    j.state,
                    if queued { "" } else { "not " }
                ),
            );
        }
        if j.state == JobState::Waiting {
            if j.domain != Domain::K {
                return fail(
                    "jobs",
                    format!("{} is a {} job parked by Wait", j.id, j.domain),
                );
            }
            let wakeable = v
                .jobs
                .iter()
                .any(|x| st.jobs.get(x).is_some_and(|o| o.domain != Domain::K));
            if !wakeable {
                return fail(
                    "jobs",
                    format!(
                        "{} waits but {} has no Q or Φ job left to wake it",
                        j.id, j.vhm
                    ),
                );
            }
        }
        if j.state == JobState::AwaitingCompletion {
            let slot = match j.domain {
                Domain::Q => v
                    .qubits
                    .first()
                    .and_then(|&x| q.get_mut(layout.q_provider(x))),
                Domain::Phi => v
                    .region
                    .and_then(|r| phi.get_mut(layout.phi_provider(r.mode_start))),
                Domain::K => continue,
            };
            match slot {
                Some(n) => *n += 1,
                None => {
                    return fail(
                        "jobs",
                        format!("{} is in flight but its VHM holds no place to run it", j.id),
                    )
                }
            }
        }
    }
    for v in st.vhms.values() {
        for jid in &v.jobs {
            if !st.jobs.contains_key(jid) {
                return fail("jobs", format!("{} indexes {jid}, which is gone", v.id));
            }
        }
        let busy_q = st.jobs.values().any(|j| {
            j.vhm == v.id && j.domain == Domain::Q && j.state == JobState::AwaitingCompletion
        });
        if busy_q != v.q_busy {
            return fail(
                "jobs",
                format!("{}'s Q busy flag disagrees with its jobs", v.id),
            );
        }
    }
    if q != st.q_inflight || phi != st.phi_inflight {
        return fail(
            "jobs",
            format!(
                "in-flight counters Q {:?} Φ {:?} disagree with the jobs (Q {q:?} Φ {phi:?})",
                st.q_inflight, st.phi_inflight
            ),
        );
    }
    Ok(())
}
