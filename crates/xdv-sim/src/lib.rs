//! The deterministic simulation driver: from a seed, a random stream of valid and invalid inputs
//! (nesting several levels deep, over-quota requests, overlapping windows, escalation and forgery
//! attempts, faults, terminations, IPC), applied to the core with every invariant checked after
//! every step. It also plays the providers: dispatched jobs complete after a random delay.
//!
//! The generator is ChaCha8 (`rand_chacha` 0.9) seeded with `seed_from_u64`; its output for a
//! seed is fixed by that crate's value-stability promise, so a seed replays the same stream on
//! every machine, build profile and thread count.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use std::io::Write;
use xdv_core::invariants::{check_full, check_step, Violation};
use xdv_core::{
    CapId, ChannelId, Command, Core, Denial, DeniedOp, DenyReason, Domain, Effect, Event, Genesis,
    Input, JobCost, JobId, JobState, JobStatus, KSpec, Limits, Machine, Outcome, PhiSpec, Policy,
    Principal, QSpec, Resource, ResourceVector, Rights, Target, TokenId, VhmId, VhmSpec, ROOT_CAP,
};
use xdv_trace::{TraceError, TraceWriter};

/// The machine the simulation runs on by default: a 6 × 6 grid of qubits with guard qubits, so
/// that placement and guards are exercised, and a 32-mode × 4-channel mesh.
pub const SIM_MACHINE_TOML: &str = include_str!("sim_machine.toml");

/// The simulation machine.
pub fn sim_machine() -> Machine {
    match Machine::from_toml(SIM_MACHINE_TOML, "<embedded simulation machine>") {
        Ok(m) => m,
        Err(e) => panic!("embedded simulation machine is invalid: {e}"),
    }
}

/// What to simulate.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// The seed.
    pub seed: u64,
    /// Inputs to generate.
    pub ops: u64,
    /// Run the full (non-incremental) checker every this many steps; 0 only at the end.
    pub full_check_every: u64,
    /// The machine.
    pub machine: Machine,
}

impl SimConfig {
    /// A configuration on the simulation machine.
    pub fn new(seed: u64, ops: u64) -> SimConfig {
        SimConfig {
            seed,
            ops,
            full_check_every: 4096,
            machine: sim_machine(),
        }
    }

    /// The genesis the simulated core starts from (recorded at the head of its trace).
    pub fn genesis(&self) -> Genesis {
        Genesis {
            machine: self.machine.clone(),
            limits: Limits::default(),
        }
    }
}

/// What a simulation did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SimReport {
    /// The seed.
    pub seed: u64,
    /// Inputs applied.
    pub ops: u64,
    /// Accepted inputs.
    pub accepted: u64,
    /// Rejected inputs.
    pub rejected: u64,
    /// Attack inputs generated (forgery, escalation, use after stop, message without channel);
    /// every one was refused, or the run would have failed.
    pub attacks: u64,
    /// VHMs created.
    pub vhms_created: u64,
    /// VHMs stopped (terminated, faulted or with an ancestor).
    pub vhms_stopped: u64,
    /// Jobs completed.
    pub jobs_completed: u64,
    /// Messages delivered.
    pub messages: u64,
    /// K jobs parked by `Wait` for their VHM's Q or Φ jobs.
    pub jobs_waited: u64,
    /// Parked K jobs woken when one of those ended.
    pub jobs_woken: u64,
    /// Capability-token blocks revoked.
    pub tokens_revoked: u64,
    /// Refusals of the boundary manager recorded.
    pub denials: u64,
    /// Rejections by the rule they broke.
    pub rejections: std::collections::BTreeMap<&'static str, u64>,
    /// The final state digest.
    pub state_hash: [u8; 32],
}

/// Why a simulation stopped early.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// An invariant broke.
    #[error("seed {seed}, step {step}: {violation}\n  input: {input}\n  reproduce with: xdv sim --seed {seed} --ops {}", step + 1)]
    Violation {
        /// The seed.
        seed: u64,
        /// The step (0-based input index).
        step: u64,
        /// The input.
        input: String,
        /// What broke.
        violation: Violation,
    },
    /// Writing the trace failed.
    #[error(transparent)]
    Trace(#[from] TraceError),
}

/// A pinned, seeded generator with the few draws the driver needs.
struct Rng(ChaCha8Rng);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        ((u128::from(self.0.next_u64()) * u128::from(n)) >> 64) as u64
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<T: Copy>(&mut self, v: &[T]) -> Option<T> {
        if v.is_empty() {
            None
        } else {
            Some(v[self.below(v.len() as u64) as usize])
        }
    }
}

/// The driver's knowledge of the system, kept from outcomes (lazily pruned against the state).
struct World {
    vhms: Vec<VhmId>,
    stopped: Vec<VhmId>,
    caps: Vec<(CapId, Principal)>,
    revoked: Vec<CapId>,
    channels: Vec<ChannelId>,
    inflight: Vec<JobId>,
}

const RING: usize = 64;

fn push_ring<T>(v: &mut Vec<T>, x: T) {
    if v.len() >= RING {
        v.remove(0);
    }
    v.push(x);
}

/// Runs a simulation, optionally writing its trace.
pub fn run<W: Write>(
    cfg: &SimConfig,
    mut trace: Option<&mut TraceWriter<W>>,
) -> Result<(SimReport, Core), SimError> {
    let mut core = Core::new(cfg.genesis());
    let mut rng = Rng(ChaCha8Rng::seed_from_u64(cfg.seed));
    let mut world = World {
        vhms: Vec::new(),
        stopped: Vec::new(),
        caps: Vec::new(),
        revoked: Vec::new(),
        channels: Vec::new(),
        inflight: Vec::new(),
    };
    let mut rep = SimReport {
        seed: cfg.seed,
        ..SimReport::default()
    };
    let mut out = Outcome::default();
    for step in 0..cfg.ops {
        let (input, attack) = generate(&mut rng, &core, &mut world);
        core.apply(&input, &mut out);
        let violation = check_step(&core, &input, &out).err().or_else(|| {
            if attack && out.accepted() {
                Some(Violation {
                    rule: "capability",
                    detail: "an attack input was accepted".into(),
                })
            } else if cfg.full_check_every > 0 && (step + 1) % cfg.full_check_every == 0 {
                check_full(&core).err()
            } else {
                None
            }
        });
        if let Some(violation) = violation {
            return Err(SimError::Violation {
                seed: cfg.seed,
                step,
                input: format!("{input:?}"),
                violation,
            });
        }
        if let Some(t) = trace.as_deref_mut() {
            t.append(&input, &out, &core)?;
        }
        rep.ops += 1;
        rep.attacks += u64::from(attack);
        if out.accepted() {
            rep.accepted += 1;
        } else {
            rep.rejected += 1;
            if let Some(r) = &out.rejection {
                *rep.rejections.entry(r.rule()).or_insert(0) += 1;
            }
        }
        learn(&out, &mut world, &mut rep);
    }
    if let Err(violation) = check_full(&core) {
        return Err(SimError::Violation {
            seed: cfg.seed,
            step: cfg.ops.saturating_sub(1),
            input: "<end of run>".into(),
            violation,
        });
    }
    rep.state_hash = core.state_digest();
    Ok((rep, core))
}

fn learn(out: &Outcome, w: &mut World, rep: &mut SimReport) {
    for e in &out.events {
        match e {
            Event::VhmCreated { vhm, .. } => {
                w.vhms.push(*vhm);
                rep.vhms_created += 1;
            }
            Event::VhmStopped { vhm, .. } => {
                push_ring(&mut w.stopped, *vhm);
                rep.vhms_stopped += 1;
            }
            Event::CapIssued { cap, holder, .. } => w.caps.push((*cap, *holder)),
            Event::CapRevoked { cap } => push_ring(&mut w.revoked, *cap),
            Event::ChannelOpened { channel, .. } => w.channels.push(*channel),
            Event::JobCompleted { .. } => rep.jobs_completed += 1,
            Event::JobWaiting { .. } => rep.jobs_waited += 1,
            Event::JobWoken { .. } => rep.jobs_woken += 1,
            Event::TokenRevoked { .. } => rep.tokens_revoked += 1,
            Event::Denied { .. } => rep.denials += 1,
            _ => {}
        }
    }
    for e in &out.effects {
        match e {
            Effect::ExecuteQ { job, .. } | Effect::ExecutePhi { job, .. } => w.inflight.push(*job),
            Effect::RunSlice { job, .. } if !w.inflight.contains(job) => w.inflight.push(*job),
            Effect::Deliver { .. } => rep.messages += 1,
            _ => {}
        }
    }
}

/// Picks a live VHM, pruning stopped ones lazily.
fn live_vhm(rng: &mut Rng, core: &Core, w: &mut World) -> Option<VhmId> {
    for _ in 0..4 {
        let i = rng.below(w.vhms.len() as u64) as usize;
        let v = *w.vhms.get(i)?;
        if core.state().vhms.contains_key(&v) {
            return Some(v);
        }
        w.vhms.swap_remove(i);
    }
    None
}

fn live_cap(rng: &mut Rng, core: &Core, w: &mut World) -> Option<(CapId, Principal)> {
    for _ in 0..4 {
        let i = rng.below(w.caps.len() as u64) as usize;
        let c = *w.caps.get(i)?;
        if core.state().caps.caps.contains_key(&c.0) {
            return Some(c);
        }
        w.caps.swap_remove(i);
    }
    None
}

fn live_channel(rng: &mut Rng, core: &Core, w: &mut World) -> Option<ChannelId> {
    for _ in 0..4 {
        let i = rng.below(w.channels.len() as u64) as usize;
        let c = *w.channels.get(i)?;
        if core.state().channels.contains_key(&c) {
            return Some(c);
        }
        w.channels.swap_remove(i);
    }
    None
}

/// Who acts for a VHM: usually itself with its own capability, sometimes the operator, sometimes
/// an ancestor with its own capability.
fn actor(rng: &mut Rng, core: &Core, v: VhmId) -> (Principal, CapId) {
    let st = core.state();
    let vhm = &st.vhms[&v];
    match rng.below(10) {
        0 => (Principal::Operator, ROOT_CAP),
        1 => match vhm.parent {
            Some(p) => (Principal::Vhm(p), st.vhms[&p].own_cap),
            None => (Principal::Vhm(v), vhm.own_cap),
        },
        _ => (Principal::Vhm(v), vhm.own_cap),
    }
}

fn cmd(principal: Principal, cap: CapId, command: Command) -> Input {
    Input::Command {
        principal,
        cap,
        command,
    }
}

/// A provider name for a spec: usually none (first with room), sometimes one of the machine's,
/// rarely one it lacks (which must be refused).
fn random_provider(rng: &mut Rng, names: &[String]) -> Option<String> {
    match rng.below(100) {
        0..=69 => None,
        70..=97 if !names.is_empty() => Some(names[rng.below(names.len() as u64) as usize].clone()),
        _ => Some("no-such-provider".into()),
    }
}

fn random_spec(
    rng: &mut Rng,
    machine: &Machine,
    name_seq: u64,
    room: Option<&ResourceVector>,
) -> VhmSpec {
    // At least 1 where there is room; 0 where the parent has none of it.
    let frac = |rng: &mut Rng, max: u64, hi: u64| -> u64 {
        if max == 0 {
            0
        } else {
            rng.range(1, hi.min(max))
        }
    };
    let room_of = |r: Resource| room.map_or(u64::MAX, |x| x.get(r));
    let mut spec = VhmSpec {
        name: format!("t{name_seq}"),
        ..VhmSpec::default()
    };
    let mut any = false;
    if rng.chance(70) && room_of(Resource::VcpuSlots) > 0 {
        spec.k = Some(KSpec {
            vcpus: frac(rng, room_of(Resource::VcpuSlots), 2) as u32,
            memory_bytes: frac(rng, room_of(Resource::MemoryBytes), 1 << 28),
            fuel_units: frac(rng, room_of(Resource::FuelUnits), 50_000_000),
        });
        any = true;
    }
    if rng.chance(55) && room_of(Resource::LogicalQubits) > 0 {
        let q_names: Vec<String> = machine.q.iter().map(|c| c.provider.clone()).collect();
        spec.q = Some(QSpec {
            provider: random_provider(rng, &q_names),
            logical_qubits: frac(rng, room_of(Resource::LogicalQubits), 5) as u32,
            shots: frac(rng, room_of(Resource::Shots), 100_000),
            error_budget_ppm: frac(rng, room_of(Resource::ErrorBudgetPpm), 500_000),
        });
        any = true;
    }
    if rng.chance(50)
        && room_of(Resource::PhiModes) > 0
        && room_of(Resource::WavelengthChannels) > 0
    {
        let phi_names: Vec<String> = machine.phi.iter().map(|c| c.provider.clone()).collect();
        spec.phi = Some(PhiSpec {
            provider: random_provider(rng, &phi_names),
            modes: frac(rng, room_of(Resource::PhiModes), 6) as u32,
            wavelength_channels: frac(rng, room_of(Resource::WavelengthChannels), 2) as u32,
            coherence_window_ns: frac(rng, room_of(Resource::CoherenceWindowNs), 200_000_000),
            thermal_budget_mw: frac(rng, room_of(Resource::ThermalBudgetMw), 200),
            optical_bandwidth_mhz: frac(rng, room_of(Resource::OpticalBandwidthMhz), 10_000),
        });
        any = true;
    }
    if !any {
        spec.k = Some(KSpec {
            vcpus: 1,
            memory_bytes: 1 << 20,
            fuel_units: 1_000_000,
        });
    }
    spec.policy = Policy {
        priority: rng.below(8) as u8,
        deadline_tick: None,
        quotas: None,
    };
    // Room to grow: a quota above the allocation, sometimes.
    if rng.chance(50) {
        let alloc = spec.allocation();
        let mut q = alloc;
        for r in Resource::ALL {
            if r.kind() != xdv_core::ResourceKind::Placed && alloc.get(r) > 0 {
                q.set(r, alloc.get(r).saturating_mul(2));
            }
        }
        if let Some(room) = room {
            q = q.min(room);
            q = ResourceVector(std::array::from_fn(|i| q.0[i].max(alloc.0[i])));
        }
        spec.policy.quotas = Some(q);
    }
    spec
}

/// Generates one input; the flag says it is an attack that must be refused.
fn generate(rng: &mut Rng, core: &Core, w: &mut World) -> (Input, bool) {
    let st = core.state();
    let tick_ns = core.genesis().machine.tick_ns;
    let roll = rng.below(1000);
    // Keep the population bounded: with many VHMs, creation draws fall through to other inputs.
    let crowded = st.vhms.len() > 48;
    match roll {
        0..=119 => (
            Input::Tick {
                ticks: rng.range(1, 3) as u32,
            },
            false,
        ),
        240..=259 => waits_and_tokens(rng, core, w),
        120..=239 => {
            // A provider completes a dispatched job.
            for _ in 0..4 {
                let Some(i) =
                    (!w.inflight.is_empty()).then(|| rng.below(w.inflight.len() as u64) as usize)
                else {
                    break;
                };
                let job = w.inflight[i];
                match st.jobs.get(&job) {
                    Some(j) if j.state != JobState::Queued => {
                        w.inflight.swap_remove(i);
                        let status = if rng.chance(95) {
                            JobStatus::Ok
                        } else {
                            JobStatus::Failed(rng.below(4) as u32)
                        };
                        return (Input::Completion { job, status }, false);
                    }
                    Some(_) => break,
                    None => {
                        w.inflight.swap_remove(i);
                    }
                }
            }
            (Input::Tick { ticks: 1 }, false)
        }
        260..=299 if !crowded => {
            let seq = rng.below(1 << 20);
            let spec = random_spec(rng, &core.genesis().machine, seq, None);
            (
                cmd(Principal::Operator, ROOT_CAP, Command::CreateVhm { spec }),
                false,
            )
        }
        300..=369 if !crowded => {
            let Some(p) = live_vhm(rng, core, w) else {
                return (Input::Tick { ticks: 1 }, false);
            };
            let pv = &st.vhms[&p];
            let room =
                ResourceVector(std::array::from_fn(|i| Resource::ALL[i]).map(|r| pv.available(r)));
            let seq = rng.below(1 << 20);
            let mut spec = random_spec(rng, &core.genesis().machine, seq, Some(&room));
            let (pr, cap) = actor(rng, core, p);
            if rng.chance(15) {
                // Escalation through nesting: a child quota above the parent's.
                let mut q = pv.quota;
                q.set(
                    Resource::FuelUnits,
                    pv.quota.get(Resource::FuelUnits).saturating_add(1),
                );
                spec.policy.quotas = Some(
                    q.checked_add(&spec.allocation())
                        .unwrap_or(ResourceVector::UNLIMITED),
                );
                return (
                    cmd(pr, cap, Command::CreateNested { parent: p, spec }),
                    true,
                );
            }
            (
                cmd(pr, cap, Command::CreateNested { parent: p, spec }),
                false,
            )
        }
        370..=449 => {
            let Some(v) = live_vhm(rng, core, w) else {
                return (Input::Tick { ticks: 1 }, false);
            };
            // Mostly resources that can be reserved; sometimes a placed one, which must be refused.
            let r = loop {
                let r = Resource::ALL[rng.below(Resource::ALL.len() as u64) as usize];
                if r.kind() != xdv_core::ResourceKind::Placed || rng.chance(10) {
                    break r;
                }
            };
            let vhm = &st.vhms[&v];
            let (pr, cap) = actor(rng, core, v);
            let release = rng.chance(40);
            let base = if release {
                vhm.available(r)
            } else {
                vhm.quota.get(r).saturating_sub(vhm.held.get(r))
            };
            // Sometimes more than allowed: quota exhaustion must be refused.
            let amount = if rng.chance(20) {
                base.saturating_add(1 + rng.below(1000))
            } else {
                rng.range(0, base.min(1 << 40))
            };
            let c = if release {
                Command::Release {
                    vhm: v,
                    resource: r,
                    amount,
                }
            } else {
                Command::Reserve {
                    vhm: v,
                    resource: r,
                    amount,
                }
            };
            (cmd(pr, cap, c), false)
        }
        450..=509 => {
            let Some(v) = live_vhm(rng, core, w) else {
                return (Input::Tick { ticks: 1 }, false);
            };
            let (pr, cap) = actor(rng, core, v);
            let start_ns = core.now_ns() + rng.below(40) * tick_ns + rng.below(tick_ns);
            let duration_ns = rng.range(1, 8) * tick_ns;
            (
                cmd(
                    pr,
                    cap,
                    Command::ReserveWindow {
                        vhm: v,
                        start_ns,
                        duration_ns,
                    },
                ),
                false,
            )
        }
        510..=519 => {
            let (Some(a), Some(b)) = (live_vhm(rng, core, w), live_vhm(rng, core, w)) else {
                return (Input::Tick { ticks: 1 }, false);
            };
            (
                cmd(
                    Principal::Operator,
                    ROOT_CAP,
                    Command::ShareWindows {
                        a,
                        b,
                        peer_cap: ROOT_CAP,
                    },
                ),
                false,
            )
        }
        520..=719 => {
            let Some(v) = live_vhm(rng, core, w) else {
                return (Input::Tick { ticks: 1 }, false);
            };
            let (pr, cap) = actor(rng, core, v);
            // Mostly a domain the VHM holds; sometimes one it lacks, which must be refused.
            let vhm = &st.vhms[&v];
            let held: Vec<Domain> = [
                (Domain::K, vhm.available(Resource::VcpuSlots) > 0),
                (Domain::Q, vhm.available(Resource::LogicalQubits) > 0),
                (Domain::Phi, vhm.region.is_some()),
            ]
            .into_iter()
            .filter_map(|(d, has)| has.then_some(d))
            .collect();
            let domain = match rng.pick(&held) {
                Some(d) if rng.chance(90) => d,
                _ => Domain::ALL[rng.below(3) as usize],
            };
            let cost = match domain {
                Domain::K => JobCost {
                    fuel_units: rng.range(1, 4_000_000),
                    ..JobCost::default()
                },
                Domain::Q => JobCost {
                    shots: rng.range(1, 4096),
                    error_ppm: rng.below(20_000),
                    duration_ns: rng.range(1, 3) * tick_ns,
                    ..JobCost::default()
                },
                Domain::Phi => JobCost {
                    duration_ns: rng.range(1, 2 * tick_ns),
                    ..JobCost::default()
                },
            };
            (
                cmd(
                    pr,
                    cap,
                    Command::SubmitJob {
                        vhm: v,
                        domain,
                        cost,
                    },
                ),
                false,
            )
        }
        720..=749 => {
            let (Some(a), Some(b)) = (live_vhm(rng, core, w), live_vhm(rng, core, w)) else {
                return (Input::Tick { ticks: 1 }, false);
            };
            (
                cmd(
                    Principal::Operator,
                    ROOT_CAP,
                    Command::OpenChannel {
                        a,
                        b,
                        peer_cap: ROOT_CAP,
                    },
                ),
                false,
            )
        }
        750..=759 => {
            let Some(c) = live_channel(rng, core, w) else {
                return (Input::Tick { ticks: 1 }, false);
            };
            let ch = &st.channels[&c];
            (
                cmd(
                    Principal::Vhm(ch.a),
                    ch.cap_a,
                    Command::CloseChannel { channel: c },
                ),
                false,
            )
        }
        760..=839 => {
            let Some(c) = live_channel(rng, core, w) else {
                return (Input::Tick { ticks: 1 }, false);
            };
            let ch = &st.channels[&c];
            let (from, cap) = if rng.chance(50) {
                (ch.a, ch.cap_a)
            } else {
                (ch.b, ch.cap_b)
            };
            let len = rng.below(48) as usize;
            let payload: Vec<u8> = (0..len).map(|i| (i as u8) ^ (c.0 as u8)).collect();
            (
                cmd(
                    Principal::Vhm(from),
                    cap,
                    Command::Send {
                        channel: c,
                        payload,
                    },
                ),
                false,
            )
        }
        // A small population stops less often, so that trees grow several levels deep.
        840..=879 if st.vhms.len() < 24 && rng.chance(60) => (Input::Tick { ticks: 1 }, false),
        840..=854 => {
            let Some(v) = live_vhm(rng, core, w) else {
                return (Input::Tick { ticks: 1 }, false);
            };
            let (pr, cap) = actor(rng, core, v);
            (
                cmd(
                    pr,
                    cap,
                    Command::Fault {
                        vhm: v,
                        code: rng.below(8) as u32,
                    },
                ),
                false,
            )
        }
        855..=879 => {
            let Some(v) = live_vhm(rng, core, w) else {
                return (Input::Tick { ticks: 1 }, false);
            };
            let (pr, cap) = actor(rng, core, v);
            (cmd(pr, cap, Command::Terminate { vhm: v }), false)
        }
        880..=909 => {
            // Grant: a VHM hands a narrower capability over itself (or a child) to another VHM.
            let (Some(a), Some(b)) = (live_vhm(rng, core, w), live_vhm(rng, core, w)) else {
                return (Input::Tick { ticks: 1 }, false);
            };
            if rng.chance(15) {
                // The operator hands a VHM a capability over a channel it is not an end of.
                if let Some(c) = live_channel(rng, core, w) {
                    let grant = Command::Grant {
                        to: Principal::Vhm(b),
                        target: Target::Channel(c),
                        rights: Rights::IPC,
                        expires_tick: None,
                    };
                    return (cmd(Principal::Operator, ROOT_CAP, grant), false);
                }
            }
            let va = &st.vhms[&a];
            let target = match rng.pick(&va.children) {
                Some(c) if rng.chance(50) => Target::Vhm(c),
                _ => Target::Vhm(a),
            };
            let rights = Rights(Rights::VHM_ALL.0 & (rng.next_u16() | Rights::GRANT.0));
            let expires_tick = rng.chance(30).then(|| st.now_tick + rng.range(1, 200));
            (
                cmd(
                    Principal::Vhm(a),
                    va.own_cap,
                    Command::Grant {
                        to: Principal::Vhm(b),
                        target,
                        rights,
                        expires_tick,
                    },
                ),
                false,
            )
        }
        910..=919 => {
            let Some((cap, holder)) = live_cap(rng, core, w) else {
                return (Input::Tick { ticks: 1 }, false);
            };
            let c = &st.caps.caps[&cap];
            let rights = Rights(c.rights.0 & rng.next_u16());
            (
                cmd(
                    holder,
                    cap,
                    Command::Attenuate {
                        target: c.target,
                        rights,
                        expires_tick: None,
                    },
                ),
                false,
            )
        }
        920..=939 => {
            let Some((cap, holder)) = live_cap(rng, core, w) else {
                return (Input::Tick { ticks: 1 }, false);
            };
            // Revoke something derived from it (or itself).
            let c = &st.caps.caps[&cap];
            let victim = rng.pick(&c.children).unwrap_or(cap);
            (cmd(holder, cap, Command::Revoke { cap: victim }), false)
        }
        _ => attack(rng, core, w),
    }
}

/// A random refusal as the boundary manager would record it.
fn random_denial(rng: &mut Rng) -> Denial {
    const OPS: [DeniedOp; 8] = [
        DeniedOp::Create,
        DeniedOp::Nest,
        DeniedOp::Reserve,
        DeniedOp::Submit,
        DeniedOp::Open,
        DeniedOp::Send,
        DeniedOp::Receive,
        DeniedOp::Hold,
    ];
    const WHY: [DenyReason; 6] = [
        DenyReason::Missing,
        DenyReason::Forged,
        DenyReason::Revoked,
        DenyReason::Expired,
        DenyReason::Insufficient,
        DenyReason::NotDerived,
    ];
    Denial {
        operation: OPS[rng.below(OPS.len() as u64) as usize],
        domain: Domain::ALL[rng.below(3) as usize],
        amount: rng.below(10_000),
        reason: WHY[rng.below(WHY.len() as u64) as usize],
    }
}

/// A K job's guest waits for its VHM's Q or Φ jobs (`Wait`, sometimes with more fuel back than
/// its slice had, or on a job that cannot wait), or the operator revokes a token block (from a
/// small pool, so repeats are refused) or records a boundary manager's refusal.
fn waits_and_tokens(rng: &mut Rng, core: &Core, w: &mut World) -> (Input, bool) {
    let st = core.state();
    match rng.below(10) {
        0..=6 => {
            // Usually a K job that can wait (dispatched, beside a live Q or Φ job of its VHM);
            // sometimes any dispatched job, which mostly cannot.
            let waitable: Vec<JobId> = st
                .jobs
                .values()
                .filter(|j| {
                    j.domain == Domain::K
                        && matches!(j.state, JobState::Running | JobState::AwaitingCompletion)
                        && st.vhms[&j.vhm]
                            .jobs
                            .iter()
                            .any(|x| st.jobs.get(x).is_some_and(|o| o.domain != Domain::K))
                })
                .map(|j| j.id)
                .collect();
            let pick = if rng.chance(80) {
                rng.pick(&waitable)
            } else {
                rng.pick(&w.inflight)
            };
            let Some(j) = pick.and_then(|job| st.jobs.get(&job)) else {
                return (Input::Tick { ticks: 1 }, false);
            };
            let job = j.id;
            let fuel_unused = match rng.below(10) {
                0 => j.last_slice_fuel + 1 + rng.below(10),
                1..=3 => j.last_slice_fuel,
                _ => rng.below(j.last_slice_fuel + 1),
            };
            let (pr, cap) = actor(rng, core, j.vhm);
            (cmd(pr, cap, Command::Wait { job, fuel_unused }), false)
        }
        7..=8 => {
            let token = TokenId([rng.below(32) as u8; 32]);
            (
                cmd(
                    Principal::Operator,
                    ROOT_CAP,
                    Command::RevokeToken { token },
                ),
                false,
            )
        }
        _ => {
            let vhm = if rng.chance(70) {
                live_vhm(rng, core, w)
            } else {
                None
            };
            let denial = random_denial(rng);
            (
                cmd(Principal::Operator, ROOT_CAP, Command::Deny { vhm, denial }),
                false,
            )
        }
    }
}

trait NextU16 {
    fn next_u16(&mut self) -> u16;
}

impl NextU16 for Rng {
    fn next_u16(&mut self) -> u16 {
        self.0.next_u32() as u16
    }
}

/// An input that must be refused: forgery, theft, escalation, use after stop, or a message
/// without a channel.
fn attack(rng: &mut Rng, core: &Core, w: &mut World) -> (Input, bool) {
    let st = core.state();
    let some_vhm = live_vhm(rng, core, w);
    match rng.below(7) {
        0 => {
            // Forgery: a capability id never issued.
            let cap = CapId(st.caps.next_id + rng.below(1 << 30));
            let pr = some_vhm.map_or(Principal::Operator, Principal::Vhm);
            let vhm = some_vhm.unwrap_or(VhmId(0));
            (cmd(pr, cap, Command::Terminate { vhm }), true)
        }
        1 => {
            // Theft: presenting another principal's capability.
            let Some(v) = some_vhm else {
                return (Input::Tick { ticks: 1 }, false);
            };
            let thief = Principal::Vhm(VhmId(v.0.wrapping_add(1 + rng.below(5) as u32)));
            (
                cmd(thief, st.vhms[&v].own_cap, Command::Terminate { vhm: v }),
                true,
            )
        }
        2 => {
            // Escalation: a nested VHM's capability used on its parent.
            let child = some_vhm.and_then(|v| st.vhms[&v].parent.map(|p| (v, p)));
            let Some((c, p)) = child else {
                return (Input::Tick { ticks: 1 }, false);
            };
            (
                cmd(
                    Principal::Vhm(c),
                    st.vhms[&c].own_cap,
                    Command::Terminate { vhm: p },
                ),
                true,
            )
        }
        3 => {
            // Escalation: granting rights the capability lacks (CREATE, which VHMs never hold).
            let Some(v) = some_vhm else {
                return (Input::Tick { ticks: 1 }, false);
            };
            let rights = Rights(Rights::CREATE.0 | Rights::SUBMIT.0);
            (
                cmd(
                    Principal::Vhm(v),
                    st.vhms[&v].own_cap,
                    Command::Grant {
                        to: Principal::Vhm(v),
                        target: Target::Vhm(v),
                        rights,
                        expires_tick: None,
                    },
                ),
                true,
            )
        }
        4 => {
            // Use after stop: a stopped VHM's capability, or a command on a stopped VHM.
            let Some(dead) = rng.pick(&w.stopped) else {
                return (Input::Tick { ticks: 1 }, false);
            };
            if rng.chance(50) {
                // The operator's valid capability on a stopped VHM: refused as stopped.
                let job = Command::SubmitJob {
                    vhm: dead,
                    domain: Domain::K,
                    cost: JobCost {
                        fuel_units: 1,
                        ..JobCost::default()
                    },
                };
                return (cmd(Principal::Operator, ROOT_CAP, job), true);
            }
            let cap = rng.pick(&w.revoked).unwrap_or(CapId(1));
            (
                cmd(
                    Principal::Vhm(dead),
                    cap,
                    Command::SubmitJob {
                        vhm: dead,
                        domain: Domain::K,
                        cost: JobCost {
                            fuel_units: 1,
                            ..JobCost::default()
                        },
                    },
                ),
                true,
            )
        }
        5 => {
            // A message without a channel: an unknown or closed channel id, or a non-endpoint.
            let Some(v) = some_vhm else {
                return (Input::Tick { ticks: 1 }, false);
            };
            let channel = match live_channel(rng, core, w) {
                Some(c) if st.channels[&c].a != v && st.channels[&c].b != v => c,
                _ => ChannelId(st.next_channel + rng.below(100) as u32),
            };
            (
                cmd(
                    Principal::Vhm(v),
                    st.vhms[&v].own_cap,
                    Command::Send {
                        channel,
                        payload: vec![1, 2, 3],
                    },
                ),
                true,
            )
        }
        6 if rng.chance(50) => {
            // A VHM parks another tenant's K job, or a VHM revokes a token or records a
            // denial (operator-only acts).
            let Some(v) = some_vhm else {
                return (Input::Tick { ticks: 1 }, false);
            };
            let foreign = st
                .jobs
                .values()
                .find(|j| j.domain == Domain::K && !st.is_ancestor_or_self(v, j.vhm));
            let command = match (foreign, rng.below(3)) {
                (Some(j), 0) => Command::Wait {
                    job: j.id,
                    fuel_unused: 0,
                },
                (_, 1) => Command::RevokeToken {
                    token: TokenId([0xa5; 32]),
                },
                _ => Command::Deny {
                    vhm: None,
                    denial: random_denial(rng),
                },
            };
            (cmd(Principal::Vhm(v), st.vhms[&v].own_cap, command), true)
        }
        _ => {
            // Replay of a revoked capability.
            let Some(cap) = rng.pick(&w.revoked) else {
                return (Input::Tick { ticks: 1 }, false);
            };
            let pr = some_vhm.map_or(Principal::Operator, Principal::Vhm);
            let vhm = some_vhm.unwrap_or(VhmId(0));
            (
                cmd(
                    pr,
                    cap,
                    Command::Reserve {
                        vhm,
                        resource: Resource::Shots,
                        amount: 1,
                    },
                ),
                true,
            )
        }
    }
}
