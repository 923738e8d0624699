//! Random input sequences over a few VHM, capability, channel and job ids: the invariant checkers
//! never fail, a rejected input never changes the state, and two fresh cores given the same
//! sequence agree on every outcome and every digest.
//!
//! The runner is seeded explicitly (default below, or `XDV_PROPTEST_SEED=<u64>`), and a failure
//! prints the seed with the shrunk sequence. `XDV_PROPTEST_CASES=<n>` runs more cases.

use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestRng, TestRunner};
use std::cell::RefCell;
use xdv_core::invariants::{check_full, check_step};
use xdv_core::{
    CapId, ChannelId, Command, Core, Domain, Effect, Event, Genesis, Input, JobCost, JobId,
    JobStatus, KSpec, Limits, Machine, Outcome, PhiSpec, Policy, Principal, QSpec, Resource,
    ResourceVector, Rights, Target, VhmId, VhmSpec, ROOT_CAP,
};
use xdv_core::{Denial, DeniedOp, DenyReason, TokenId};

const DEFAULT_SEED: u64 = 0x0058_4456_2024;
const CASES: u32 = 64;
const MAX_LEN: usize = 200;

/// Twelve qubits on a line with guard qubits and a 5-qubit all-to-all device, two small meshes,
/// few slots: placement failures, quota exhaustion, contention and the choice between providers
/// are frequent.
const MACHINE: &str = r#"
tick_ns = 1000
[k]
vcpu_slots = 4
fuel_per_slice = 100
memory_bytes = 4096
[[q]]
provider = "line"
qubits = 12
topology = "line"
guard_qubits = true
max_inflight_jobs = 2
[[q]]
provider = "a2a"
qubits = 5
topology = "all-to-all"
max_inflight_jobs = 1
[[phi]]
provider = "mesh"
modes = 6
wavelength_channels = 3
thermal_budget_mw = 100
optical_bandwidth_mhz = 1000
max_inflight_jobs = 1
[[phi]]
provider = "tiny"
modes = 2
wavelength_channels = 1
thermal_budget_mw = 10
optical_bandwidth_mhz = 100
max_inflight_jobs = 1
"#;

/// A provider choice: mostly none (first with room), sometimes one by name, rarely a bad name.
fn provider(names: &'static [&'static str]) -> impl Strategy<Value = Option<String>> {
    prop::sample::select(
        [
            &[None, None, None][..],
            &names.iter().map(|n| Some(*n)).collect::<Vec<_>>()[..],
            &[Some("bogus")][..],
        ]
        .concat(),
    )
    .prop_map(|n| n.map(String::from))
}

fn genesis() -> Genesis {
    Genesis {
        machine: Machine::from_toml(MACHINE, "test machine").expect("test machine parses"),
        limits: Limits::default(),
    }
}

/// How a generated step's ids are turned into concrete ones against the current state.
#[derive(Clone, Copy, Debug)]
enum Mode {
    /// As generated: ids may be unknown, stopped, forged or another principal's.
    Raw,
    /// Ids are mapped onto live ones (the n-th live VHM, capability, channel, running job) and the
    /// capability is presented by its holder.
    Live,
    /// As `Live`, and the command is issued by the VHM it is about with its own capability (or by
    /// the operator for machine-wide and two-party commands, or by an endpoint for a send).
    Own,
}

/// One generated step: an input and how to resolve its ids.
#[derive(Clone, Debug)]
struct Step {
    input: Input,
    mode: Mode,
}

fn vhm() -> impl Strategy<Value = VhmId> {
    (0u32..7).prop_map(VhmId)
}

fn cap() -> impl Strategy<Value = CapId> {
    (0u64..28).prop_map(CapId)
}

fn channel() -> impl Strategy<Value = ChannelId> {
    (0u32..5).prop_map(ChannelId)
}

fn principal() -> impl Strategy<Value = Principal> {
    prop_oneof![
        1 => Just(Principal::Operator),
        3 => vhm().prop_map(Principal::Vhm),
    ]
}

fn target() -> impl Strategy<Value = Target> {
    prop_oneof![
        1 => Just(Target::Machine),
        4 => vhm().prop_map(Target::Vhm),
        1 => channel().prop_map(Target::Channel),
    ]
}

fn rights() -> impl Strategy<Value = Rights> {
    prop_oneof![
        2 => (0u16..(1 << 9)).prop_map(Rights),
        1 => Just(Rights::VHM_ALL),
        1 => Just(Rights::IPC),
    ]
}

fn expiry() -> impl Strategy<Value = Option<u64>> {
    prop_oneof![2 => Just(None), 1 => (0u64..40).prop_map(Some)]
}

fn resource() -> impl Strategy<Value = Resource> {
    (0usize..Resource::ALL.len()).prop_map(|i| Resource::ALL[i])
}

/// Mostly `lo..hi`, sometimes zero (an invalid part).
fn count(lo: u32, hi: u32) -> impl Strategy<Value = u32> {
    prop_oneof![9 => lo..hi, 1 => Just(0u32)]
}

/// A specification; `small` ones fit inside a typical root, for nesting.
fn spec(small: bool) -> impl Strategy<Value = VhmSpec> {
    let d = if small { 8 } else { 1 };
    let k = prop::option::weighted(
        0.7,
        (count(1, 3), 1u64..800 / d, 1u64..3000 / d).prop_map(
            |(vcpus, memory_bytes, fuel_units)| KSpec {
                vcpus,
                memory_bytes,
                fuel_units,
            },
        ),
    );
    let q = prop::option::weighted(
        0.5,
        (
            count(1, 5 - d as u32 / 4),
            1u64..2000 / d,
            0u64..20_000 / d,
            provider(&["line", "a2a"]),
        )
            .prop_map(
                |(logical_qubits, shots, error_budget_ppm, provider)| QSpec {
                    provider,
                    logical_qubits,
                    shots,
                    error_budget_ppm,
                },
            ),
    );
    let phi = prop::option::weighted(
        0.5,
        (
            count(1, 3),
            count(1, 3),
            0u64..40_000 / d,
            0u64..40 / d,
            0u64..400 / d,
            provider(&["mesh", "tiny"]),
        )
            .prop_map(
                |(
                    modes,
                    wavelength_channels,
                    coherence_window_ns,
                    thermal_budget_mw,
                    bw,
                    provider,
                )| {
                    PhiSpec {
                        provider,
                        modes,
                        wavelength_channels,
                        coherence_window_ns,
                        thermal_budget_mw,
                        optical_bandwidth_mhz: bw,
                    }
                },
            ),
    );
    let name = prop::sample::select(vec!["a", "b", "c", "d", "e", "f", "g", "h", "i", ""]);
    (
        name,
        k,
        q,
        phi,
        any::<u8>(),
        prop::option::weighted(0.2, 0u64..60),
        prop_oneof![4 => Just(0u8), 4 => Just(1u8), 1 => Just(2u8)],
    )
        .prop_map(|(name, k, q, phi, priority, deadline_tick, quota)| {
            let mut s = VhmSpec {
                name: name.to_string(),
                k,
                q,
                phi,
                policy: Policy {
                    priority,
                    deadline_tick,
                    quotas: None,
                },
            };
            // No declared quota, twice the allocation, or an unlimited one (which nesting refuses).
            s.policy.quotas = match quota {
                0 => None,
                1 => {
                    let a = s.allocation();
                    Some(ResourceVector(a.0.map(|x| x.saturating_mul(2))))
                }
                _ => Some(ResourceVector::UNLIMITED),
            };
            s
        })
}

fn cost() -> impl Strategy<Value = (Domain, JobCost)> {
    let valid = prop_oneof![
        (1u64..400).prop_map(|f| (
            Domain::K,
            JobCost {
                fuel_units: f,
                ..JobCost::default()
            }
        )),
        (1u64..300, 0u64..2000, 0u64..3000).prop_map(|(s, e, d)| (
            Domain::Q,
            JobCost {
                shots: s,
                error_ppm: e,
                duration_ns: d,
                ..JobCost::default()
            }
        )),
        (1u64..3000).prop_map(|d| (
            Domain::Phi,
            JobCost {
                duration_ns: d,
                ..JobCost::default()
            }
        )),
    ];
    let domain = prop::sample::select(Domain::ALL.to_vec());
    let anything = (domain, 0u64..300, 0u64..300, 0u64..300, 0u64..3000).prop_map(
        |(d, fuel_units, shots, error_ppm, duration_ns)| {
            (
                d,
                JobCost {
                    fuel_units,
                    shots,
                    error_ppm,
                    duration_ns,
                },
            )
        },
    );
    prop_oneof![6 => valid, 1 => anything]
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        6 => spec(false).prop_map(|spec| Command::CreateVhm { spec }),
        7 => (vhm(), spec(true)).prop_map(|(parent, spec)| Command::CreateNested { parent, spec }),
        3 => (vhm(), resource(), 0u64..3000)
            .prop_map(|(vhm, resource, amount)| Command::Reserve { vhm, resource, amount }),
        2 => (vhm(), resource(), 0u64..3000)
            .prop_map(|(vhm, resource, amount)| Command::Release { vhm, resource, amount }),
        4 => (vhm(), 0u64..30_000, 0u64..10_000).prop_map(|(vhm, start_ns, duration_ns)| {
            Command::ReserveWindow { vhm, start_ns, duration_ns }
        }),
        1 => (vhm(), vhm(), cap()).prop_map(|(a, b, peer_cap)| Command::ShareWindows { a, b, peer_cap }),
        8 => (vhm(), cost()).prop_map(|(vhm, (domain, cost))| Command::SubmitJob { vhm, domain, cost }),
        2 => (vhm(), vhm(), cap()).prop_map(|(a, b, peer_cap)| Command::OpenChannel { a, b, peer_cap }),
        1 => channel().prop_map(|channel| Command::CloseChannel { channel }),
        4 => (channel(), prop::collection::vec(any::<u8>(), 0..8))
            .prop_map(|(channel, payload)| Command::Send { channel, payload }),
        1 => (vhm(), 0u32..4).prop_map(|(vhm, code)| Command::Fault { vhm, code }),
        1 => vhm().prop_map(|vhm| Command::Terminate { vhm }),
        2 => (principal(), target(), rights(), expiry()).prop_map(|(to, target, rights, expires_tick)| {
            Command::Grant { to, target, rights, expires_tick }
        }),
        1 => (target(), rights(), expiry()).prop_map(|(target, rights, expires_tick)| {
            Command::Attenuate { target, rights, expires_tick }
        }),
        1 => cap().prop_map(|cap| Command::Revoke { cap }),
        3 => (0u64..64, 0u64..300).prop_map(|(j, fuel_unused)| Command::Wait { job: JobId(j), fuel_unused }),
        1 => (0u8..4).prop_map(|b| Command::RevokeToken { token: TokenId([b; 32]) }),
        1 => (prop::option::of(vhm()), 0u64..100).prop_map(|(vhm, amount)| Command::Deny {
            vhm,
            denial: Denial {
                operation: DeniedOp::Submit,
                domain: Domain::Q,
                amount,
                reason: DenyReason::Insufficient,
            },
        }),
    ]
}

fn mode() -> impl Strategy<Value = Mode> {
    prop_oneof![1 => Just(Mode::Raw), 2 => Just(Mode::Live), 6 => Just(Mode::Own)]
}

fn step() -> impl Strategy<Value = Step> {
    let status = prop_oneof![3 => Just(JobStatus::Ok), 1 => (0u32..3).prop_map(JobStatus::Failed)];
    prop_oneof![
        3 => prop_oneof![9 => 1u32..4, 1 => Just(0u32)]
            .prop_map(|ticks| Step { input: Input::Tick { ticks }, mode: Mode::Raw }),
        2 => ((0u64..40).prop_map(JobId), status, mode())
            .prop_map(|(job, status, mode)| Step { input: Input::Completion { job, status }, mode }),
        14 => (principal(), cap(), command(), mode()).prop_map(|(principal, cap, command, mode)| Step {
            input: Input::Command { principal, cap, command },
            mode,
        }),
    ]
}

/// The live ids of the current state, to map generated ids onto.
struct Live {
    vhms: Vec<VhmId>,
    caps: Vec<CapId>,
    channels: Vec<ChannelId>,
    running: Vec<JobId>,
}

fn nth<T: Copy>(v: &[T], raw: T, n: u64) -> T {
    if v.is_empty() {
        raw
    } else {
        v[(n % v.len() as u64) as usize]
    }
}

impl Live {
    fn of(core: &Core) -> Live {
        let st = core.state();
        Live {
            vhms: st.vhms.keys().copied().collect(),
            caps: st.caps.caps.keys().copied().collect(),
            channels: st.channels.keys().copied().collect(),
            running: st
                .jobs
                .values()
                .filter(|j| j.state != xdv_core::JobState::Queued)
                .map(|j| j.id)
                .collect(),
        }
    }
    fn vhm(&self, v: &mut VhmId) {
        *v = nth(&self.vhms, *v, u64::from(v.0));
    }
    fn cap(&self, c: &mut CapId) {
        *c = nth(&self.caps, *c, c.0);
    }
    fn channel(&self, c: &mut ChannelId) {
        *c = nth(&self.channels, *c, u64::from(c.0));
    }
    fn target(&self, t: &mut Target) {
        match t {
            Target::Machine => {}
            Target::Vhm(v) => self.vhm(v),
            Target::Channel(c) => self.channel(c),
        }
    }
}

/// Turns a generated step into the concrete input for the current state.
fn concrete(core: &Core, s: &Step) -> Input {
    let mut input = s.input.clone();
    if let Mode::Raw = s.mode {
        return input;
    }
    let live = Live::of(core);
    let st = core.state();
    let (principal, cap, command) = match &mut input {
        Input::Tick { .. } => return input,
        Input::Completion { job, .. } => {
            *job = nth(&live.running, *job, job.0);
            return input;
        }
        Input::Command {
            principal,
            cap,
            command,
        } => (principal, cap, command),
    };
    live.cap(cap);
    // Ids inside the command, and the VHM the command is about.
    let subject: Option<VhmId> = match command {
        Command::CreateVhm { .. } => None,
        Command::CreateNested { parent: v, .. }
        | Command::Reserve { vhm: v, .. }
        | Command::Release { vhm: v, .. }
        | Command::ReserveWindow { vhm: v, .. }
        | Command::SubmitJob { vhm: v, .. }
        | Command::Fault { vhm: v, .. }
        | Command::Terminate { vhm: v } => {
            live.vhm(v);
            Some(*v)
        }
        Command::ShareWindows { a, b, peer_cap } | Command::OpenChannel { a, b, peer_cap } => {
            live.vhm(a);
            live.vhm(b);
            live.cap(peer_cap);
            if let Mode::Own = s.mode {
                *peer_cap = ROOT_CAP;
            }
            None
        }
        Command::CloseChannel { channel } | Command::Send { channel, .. } => {
            live.channel(channel);
            None
        }
        Command::Grant { to, target, .. } => {
            if let Principal::Vhm(v) = to {
                live.vhm(v);
            }
            live.target(target);
            match target {
                Target::Vhm(v) => Some(*v),
                _ => None,
            }
        }
        Command::Attenuate { target, .. } => {
            live.target(target);
            match target {
                Target::Vhm(v) => Some(*v),
                _ => None,
            }
        }
        Command::Revoke { cap: victim } => {
            live.cap(victim);
            None
        }
        Command::Wait { job, .. } => {
            *job = nth(&live.running, *job, job.0);
            st.jobs.get(job).map(|j| j.vhm)
        }
        Command::RevokeToken { .. } => None,
        Command::Deny { vhm, .. } => {
            if let Some(v) = vhm {
                live.vhm(v);
            }
            *vhm
        }
    };
    match s.mode {
        Mode::Own => match (&*command, subject) {
            (Command::Send { channel, .. }, _) => {
                if let Some(ch) = st.channels.get(channel) {
                    let (v, c) = if cap.0 % 2 == 0 {
                        (ch.a, ch.cap_a)
                    } else {
                        (ch.b, ch.cap_b)
                    };
                    *principal = Principal::Vhm(v);
                    *cap = c;
                }
            }
            (Command::Revoke { cap: victim }, _) => {
                // Revoked through the capability it was derived from.
                let parent = st.caps.caps.get(victim).and_then(|c| c.parent);
                if let Some(p) = parent.and_then(|p| st.caps.caps.get(&p)) {
                    *principal = p.holder;
                    *cap = p.id;
                }
            }
            (_, Some(v)) if st.vhms.contains_key(&v) => {
                *principal = Principal::Vhm(v);
                *cap = st.vhms[&v].own_cap;
            }
            _ => {
                *principal = Principal::Operator;
                *cap = ROOT_CAP;
            }
        },
        _ => {
            if let Some(c) = st.caps.caps.get(cap) {
                *principal = c.holder;
            }
        }
    }
    input
}

/// What the whole run exercised, so that a generator that stops reaching the core is noticed.
#[derive(Debug, Default)]
struct Coverage {
    inputs: u64,
    accepted: u64,
    created: u64,
    nested: u64,
    stopped: u64,
    windows: u64,
    dispatched: u64,
    completed: u64,
    delivered: u64,
    caps_issued: u64,
    waits: u64,
    woken: u64,
    tokens_revoked: u64,
    denials: u64,
    rejections: std::collections::BTreeMap<String, u64>,
}

fn run_case(steps: &[Step], cov: &RefCell<Coverage>) -> Result<(), TestCaseError> {
    let mut core = Core::new(genesis());
    let mut out = Outcome::default();
    let mut inputs = Vec::with_capacity(steps.len());
    let mut outcomes = Vec::with_capacity(steps.len());
    let mut digests = Vec::with_capacity(steps.len());
    let mut c = cov.borrow_mut();
    for (i, s) in steps.iter().enumerate() {
        let input = concrete(&core, s);
        let before = core.state_digest();
        core.apply(&input, &mut out);
        if let Err(v) = check_step(&core, &input, &out) {
            return Err(TestCaseError::fail(format!(
                "step {i}: check_step: {v}\n  input: {input:?}\n  outcome: {out:?}"
            )));
        }
        if let Err(v) = check_full(&core) {
            return Err(TestCaseError::fail(format!(
                "step {i}: check_full: {v}\n  input: {input:?}\n  outcome: {out:?}"
            )));
        }
        let after = core.state_digest();
        if !out.accepted() {
            prop_assert!(
                out.effects.is_empty() && out.events.is_empty(),
                "step {}: rejected input produced output: {:?}",
                i,
                out
            );
            prop_assert_eq!(
                before,
                after,
                "step {}: rejected input {:?} ({:?}) changed the state digest",
                i,
                input,
                out.rejection
            );
        }
        c.inputs += 1;
        c.accepted += u64::from(out.accepted());
        if let Some(r) = &out.rejection {
            let name: String = format!("{r:?}")
                .chars()
                .take_while(char::is_ascii_alphanumeric)
                .collect();
            *c.rejections.entry(name).or_insert(0) += 1;
        }
        for e in &out.events {
            match e {
                Event::VhmCreated { parent, .. } => {
                    c.created += 1;
                    c.nested += u64::from(parent.is_some());
                }
                Event::VhmStopped { .. } => c.stopped += 1,
                Event::WindowReserved { .. } => c.windows += 1,
                Event::JobDispatched { .. } => c.dispatched += 1,
                Event::JobCompleted { .. } => c.completed += 1,
                Event::CapIssued { .. } => c.caps_issued += 1,
                Event::JobWaiting { .. } => c.waits += 1,
                Event::JobWoken { .. } => c.woken += 1,
                Event::TokenRevoked { .. } => c.tokens_revoked += 1,
                Event::Denied { .. } => c.denials += 1,
                _ => {}
            }
        }
        c.delivered += out
            .effects
            .iter()
            .filter(|e| matches!(e, Effect::Deliver { .. }))
            .count() as u64;
        inputs.push(input);
        outcomes.push(out.clone());
        digests.push(after);
    }
    // The same inputs on a second fresh core: the same decisions, step by step.
    let mut twin = Core::new(genesis());
    for (i, input) in inputs.iter().enumerate() {
        twin.apply(input, &mut out);
        prop_assert_eq!(
            &out,
            &outcomes[i],
            "step {}: outcomes differ on a twin core",
            i
        );
        prop_assert_eq!(
            twin.state_digest(),
            digests[i],
            "step {}: digests differ on a twin core",
            i
        );
    }
    prop_assert!(*twin.state() == *core.state());
    Ok(())
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(s) => s
            .parse()
            .unwrap_or_else(|_| panic!("{name}={s:?} is not a number")),
        Err(_) => default,
    }
}

#[test]
fn random_sequences_keep_every_invariant_and_replay_identically() {
    let seed: u64 = env_or("XDV_PROPTEST_SEED", DEFAULT_SEED);
    let cases: u32 = env_or("XDV_PROPTEST_CASES", CASES);
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let config = Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &bytes));
    let cov = RefCell::new(Coverage::default());
    let strategy = prop::collection::vec(step(), 1..=MAX_LEN);
    if let Err(e) = runner.run(&strategy, |steps| run_case(&steps, &cov)) {
        panic!("seed {seed} (rerun with XDV_PROPTEST_SEED={seed}): {e}");
    }
    // The generator must actually reach the core's interesting paths. (Accepted `Wait`s need a
    // dispatched K job beside a live Q or Φ job of the same VHM, which random sequences this
    // short rarely build; `xdv-sim` and `tests/invariants.rs` cover them.)
    let c = cov.into_inner();
    eprintln!("seed {seed}: {c:?}");
    let reached = [
        ("accepted inputs", c.accepted),
        ("rejected inputs", c.inputs - c.accepted),
        ("VHMs created", c.created),
        ("nested VHMs", c.nested),
        ("VHMs stopped", c.stopped),
        ("windows", c.windows),
        ("jobs dispatched", c.dispatched),
        ("jobs completed", c.completed),
        ("messages", c.delivered),
        ("capabilities issued", c.caps_issued),
        ("token revocations", c.tokens_revoked),
        ("denials", c.denials),
    ];
    for (what, n) in reached {
        assert!(n > 0, "seed {seed}: no {what} in {cases} cases: {c:?}");
    }
}
