//! One explicit counterexample per invariant: every input here must be refused with a specific
//! [`Rejection`], leave the state exactly as it was, and leave `check_full` passing. The second
//! half corrupts the state on purpose and shows that the checker itself can fail, naming the rule.

use std::collections::BTreeSet;
use xdv_core::input::Source;
use xdv_core::invariants::{check_full, check_step, Violation};
use xdv_core::{
    CapId, Capability, ChannelId, Command, Core, Domain, Effect, Event, Genesis, Input, JobCost,
    JobId, JobStatus, KSpec, Limits, Machine, Outcome, PhiRegion, PhiSpec, Principal, QSpec,
    Rejection, Resource, ResourceKind, ResourceVector, Rights, StopReason, Target, VhmId, VhmSpec,
    Window, WindowId, ROOT_CAP,
};

// ----- machines ------------------------------------------------------------------------------

/// Eight qubits on a line with guard qubits, an 8 × 4 mesh, 4 vCPU slots.
const LINE8: &str = r#"
tick_ns = 1000
[k]
vcpu_slots = 4
fuel_per_slice = 100
memory_bytes = 4096
[[q]]
provider = "test"
qubits = 8
topology = "line"
guard_qubits = true
max_inflight_jobs = 2
[[phi]]
provider = "test"
modes = 8
wavelength_channels = 4
thermal_budget_mw = 100
optical_bandwidth_mhz = 1000
max_inflight_jobs = 2
"#;

/// A 4 × 4 grid of qubits with guard qubits.
const GRID4: &str = r#"
tick_ns = 1000
[k]
vcpu_slots = 4
fuel_per_slice = 100
memory_bytes = 4096
[[q]]
provider = "test"
qubits = 16
topology = "grid"
rows = 4
cols = 4
guard_qubits = true
max_inflight_jobs = 2
[[phi]]
provider = "test"
modes = 4
wavelength_channels = 2
thermal_budget_mw = 100
optical_bandwidth_mhz = 1000
max_inflight_jobs = 1
"#;

// ----- harness -------------------------------------------------------------------------------

/// A core with both checkers run after every input.
struct H {
    core: Core,
    out: Outcome,
    step: usize,
}

impl H {
    fn new(toml: &str) -> H {
        let machine = Machine::from_toml(toml, "test machine").expect("test machine parses");
        let core = Core::new(Genesis {
            machine,
            limits: Limits::default(),
        });
        check_full(&core).expect("genesis satisfies every invariant");
        H {
            core,
            out: Outcome::default(),
            step: 0,
        }
    }

    /// Applies an input, runs both checkers, and returns the outcome.
    fn apply(&mut self, input: &Input) -> Outcome {
        self.core.apply(input, &mut self.out);
        let step = self.step;
        self.step += 1;
        if let Err(v) = check_step(&self.core, input, &self.out) {
            panic!("step {step}: check_step failed: {v}\n  input: {input:?}");
        }
        if let Err(v) = check_full(&self.core) {
            panic!("step {step}: check_full failed: {v}\n  input: {input:?}");
        }
        self.out.clone()
    }

    /// Applies an input that must be accepted.
    fn ok(&mut self, input: &Input) -> Outcome {
        let out = self.apply(input);
        assert!(
            out.accepted(),
            "step {}: expected acceptance of {input:?}, got {:?}",
            self.step - 1,
            out.rejection
        );
        out
    }

    /// Applies an input that must be refused, checks nothing changed, and returns why.
    fn reject(&mut self, input: &Input) -> Rejection {
        let digest = self.core.state_digest();
        let state = self.core.state().clone();
        let out = self.apply(input);
        let step = self.step - 1;
        let Some(r) = out.rejection.clone() else {
            panic!("step {step}: expected a rejection of {input:?}, it was accepted: {out:?}");
        };
        assert!(
            out.effects.is_empty() && out.events.is_empty(),
            "step {step}: rejected input {input:?} produced effects or events: {out:?}"
        );
        assert_eq!(
            self.core.state_digest(),
            digest,
            "step {step}: rejected input {input:?} ({r:?}) changed the state digest"
        );
        assert!(
            *self.core.state() == state,
            "step {step}: rejected input {input:?} ({r:?}) changed the state"
        );
        r
    }

    /// Creates a root VHM as the operator and returns its id.
    fn root(&mut self, spec: VhmSpec) -> VhmId {
        let out = self.ok(&op(Command::CreateVhm { spec }));
        created(&out)
    }

    /// Creates a nested VHM as its parent (with the parent's own capability).
    fn nested(&mut self, parent: VhmId, spec: VhmSpec) -> VhmId {
        let cap = self.own(parent);
        let out = self.ok(&by(parent, cap, Command::CreateNested { parent, spec }));
        created(&out)
    }

    fn own(&self, v: VhmId) -> CapId {
        self.core.state().vhms[&v].own_cap
    }

    fn vhm(&self, v: VhmId) -> &xdv_core::Vhm {
        &self.core.state().vhms[&v]
    }

    /// `v` acting with its own capability.
    fn as_self(&self, v: VhmId, command: Command) -> Input {
        by(v, self.own(v), command)
    }
}

/// The name of a rejection's variant (`NestedQuotaExceeded`, `SameVhm`, ...).
fn variant(r: &Rejection) -> String {
    format!("{r:?}")
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// Data-driven: every input must be refused with the named variant and change nothing.
fn check(h: &mut H, cases: &[(Input, &str)]) {
    for (i, (input, expected)) in cases.iter().enumerate() {
        let r = h.reject(input);
        assert_eq!(
            variant(&r),
            *expected,
            "case {i}: {input:?} was refused with {r:?}, expected {expected}"
        );
    }
}

fn op(command: Command) -> Input {
    Input::Command {
        principal: Principal::Operator,
        cap: ROOT_CAP,
        command,
    }
}

fn by(v: VhmId, cap: CapId, command: Command) -> Input {
    Input::Command {
        principal: Principal::Vhm(v),
        cap,
        command,
    }
}

fn tick(ticks: u32) -> Input {
    Input::Tick { ticks }
}

fn created(out: &Outcome) -> VhmId {
    out.events
        .iter()
        .find_map(|e| match e {
            Event::VhmCreated { vhm, .. } => Some(*vhm),
            _ => None,
        })
        .expect("a VhmCreated event")
}

fn issued(out: &Outcome) -> CapId {
    out.events
        .iter()
        .find_map(|e| match e {
            Event::CapIssued { cap, .. } => Some(*cap),
            _ => None,
        })
        .expect("a CapIssued event")
}

fn opened(out: &Outcome) -> (ChannelId, CapId, CapId) {
    out.events
        .iter()
        .find_map(|e| match e {
            Event::ChannelOpened {
                channel,
                cap_a,
                cap_b,
                ..
            } => Some((*channel, *cap_a, *cap_b)),
            _ => None,
        })
        .expect("a ChannelOpened event")
}

fn queued(out: &Outcome) -> JobId {
    out.events
        .iter()
        .find_map(|e| match e {
            Event::JobQueued { job, .. } => Some(*job),
            _ => None,
        })
        .expect("a JobQueued event")
}

// ----- specifications ------------------------------------------------------------------------

fn empty(name: &str) -> VhmSpec {
    VhmSpec {
        name: name.into(),
        ..VhmSpec::default()
    }
}

fn with_k(mut s: VhmSpec, vcpus: u32, fuel_units: u64) -> VhmSpec {
    s.k = Some(KSpec {
        vcpus,
        memory_bytes: 64 * u64::from(vcpus),
        fuel_units,
    });
    s
}

fn with_q(mut s: VhmSpec, logical_qubits: u32, shots: u64) -> VhmSpec {
    s.q = Some(QSpec {
        provider: None,
        logical_qubits,
        shots,
        error_budget_ppm: 10 * shots,
    });
    s
}

fn with_phi(mut s: VhmSpec, modes: u32, channels: u32, window_ns: u64) -> VhmSpec {
    s.phi = Some(PhiSpec {
        provider: None,
        modes,
        wavelength_channels: channels,
        coherence_window_ns: window_ns,
        thermal_budget_mw: 10,
        optical_bandwidth_mhz: 100,
    });
    s
}

/// Sets the quota to the allocation with some components raised.
fn with_quota(mut s: VhmSpec, raised: &[(Resource, u64)]) -> VhmSpec {
    let mut q = s.allocation();
    for &(r, x) in raised {
        q.set(r, x);
    }
    s.policy.quotas = Some(q);
    s
}

fn k(name: &str, vcpus: u32, fuel: u64) -> VhmSpec {
    with_k(empty(name), vcpus, fuel)
}

fn q(name: &str, qubits: u32) -> VhmSpec {
    with_q(empty(name), qubits, 1000)
}

fn phi(name: &str, window_ns: u64) -> VhmSpec {
    with_phi(empty(name), 2, 1, window_ns)
}

/// The machine's capacity as free at genesis: budgets are granted, not held by the machine.
fn genesis_free(core: &Core) -> ResourceVector {
    let mut v = core.genesis().machine.capacity();
    for r in Resource::ALL {
        if r.kind() == ResourceKind::Budget {
            v.set(r, 0);
        }
    }
    v
}

// ----- escalation through nesting ------------------------------------------------------------

#[test]
fn nested_quota_above_parents_is_refused() {
    let mut h = H::new(LINE8);
    let a = h.root(k("a", 2, 1000));
    // The child asks for little but declares a quota above its parent's.
    let greedy = with_quota(k("c", 1, 100), &[(Resource::FuelUnits, 1001)]);
    let r = h.reject(&h.as_self(
        a,
        Command::CreateNested {
            parent: a,
            spec: greedy.clone(),
        },
    ));
    assert_eq!(
        r,
        Rejection::NestedQuotaExceeded {
            resource: Resource::FuelUnits,
            requested: 1001,
            parent_quota: 1000
        }
    );
    // Even the operator cannot nest above the parent's quota.
    let r = h.reject(&op(Command::CreateNested {
        parent: a,
        spec: greedy,
    }));
    assert_eq!(variant(&r), "NestedQuotaExceeded");
    // A quota equal to the parent's is fine.
    let c = h.nested(
        a,
        with_quota(k("c", 1, 100), &[(Resource::FuelUnits, 1000)]),
    );
    assert_eq!(h.vhm(c).parent, Some(a));
    // And the grandchild is bounded by the child, not the root.
    let gq = with_quota(k("g", 1, 10), &[(Resource::VcpuSlots, 2)]);
    let r = h.reject(&h.as_self(
        c,
        Command::CreateNested {
            parent: c,
            spec: gq,
        },
    ));
    assert_eq!(
        r,
        Rejection::NestedQuotaExceeded {
            resource: Resource::VcpuSlots,
            requested: 2,
            parent_quota: 1
        }
    );
}

#[test]
fn childs_capability_does_not_reach_its_parent() {
    let mut h = H::new(LINE8);
    let a = h.root(k("a", 2, 1000));
    let b = h.root(k("b", 1, 100));
    let c = h.nested(a, k("c", 1, 100));
    let cc = h.own(c);
    let cases = [
        (by(c, cc, Command::Terminate { vhm: a }), "OutOfScope"),
        (by(c, cc, Command::Fault { vhm: a, code: 1 }), "OutOfScope"),
        (
            by(
                c,
                cc,
                Command::Reserve {
                    vhm: a,
                    resource: Resource::FuelUnits,
                    amount: 1,
                },
            ),
            "OutOfScope",
        ),
        (
            by(
                c,
                cc,
                Command::SubmitJob {
                    vhm: a,
                    domain: Domain::K,
                    cost: JobCost {
                        fuel_units: 1,
                        ..JobCost::default()
                    },
                },
            ),
            "OutOfScope",
        ),
        (
            by(
                c,
                cc,
                Command::CreateNested {
                    parent: a,
                    spec: k("sib", 1, 1),
                },
            ),
            "OutOfScope",
        ),
        // Nor a sibling tenant.
        (by(c, cc, Command::Terminate { vhm: b }), "OutOfScope"),
        // Nor the machine.
        (
            by(c, cc, Command::CreateVhm { spec: k("x", 1, 1) }),
            "OutOfScope",
        ),
    ];
    check(&mut h, &cases);
    assert_eq!(
        h.reject(&by(c, cc, Command::Terminate { vhm: a })),
        Rejection::OutOfScope {
            cap: cc,
            covers: Target::Vhm(c),
            target: Target::Vhm(a)
        }
    );
    // The parent's capability does reach the child.
    h.ok(&h.as_self(a, Command::Terminate { vhm: c }));
}

#[test]
fn grant_cannot_widen_rights_target_or_expiry() {
    let mut h = H::new(LINE8);
    let a = h.root(k("a", 2, 1000));
    let b = h.root(k("b", 1, 100));
    let c = h.nested(a, k("c", 1, 100));
    let ca = h.own(a);
    let grant = |target: Target, rights: Rights, expires_tick: Option<u64>| Command::Grant {
        to: Principal::Vhm(b),
        target,
        rights,
        expires_tick,
    };
    // A VHM's own capability never carries CREATE.
    let create_submit = Rights(Rights::CREATE.0 | Rights::SUBMIT.0);
    let cases = [
        (
            by(a, ca, grant(Target::Vhm(a), create_submit, None)),
            "Escalation",
        ),
        (
            by(a, ca, grant(Target::Vhm(a), Rights::ALL, None)),
            "Escalation",
        ),
        (
            by(a, ca, grant(Target::Machine, Rights::SUBMIT, None)),
            "Escalation",
        ),
        (
            by(a, ca, grant(Target::Vhm(b), Rights::SUBMIT, None)),
            "Escalation",
        ),
        // Attenuation is derivation too.
        (
            by(
                a,
                ca,
                Command::Attenuate {
                    target: Target::Machine,
                    rights: Rights::SUBMIT,
                    expires_tick: None,
                },
            ),
            "Escalation",
        ),
        (
            by(
                a,
                ca,
                Command::Attenuate {
                    target: Target::Vhm(a),
                    rights: Rights::ALL,
                    expires_tick: None,
                },
            ),
            "Escalation",
        ),
    ];
    check(&mut h, &cases);

    // A narrowed capability: RESERVE and GRANT over `a`, expiring at tick 50.
    let narrow = Rights(Rights::RESERVE.0 | Rights::GRANT.0);
    let x = issued(&h.ok(&by(
        a,
        ca,
        Command::Attenuate {
            target: Target::Vhm(a),
            rights: narrow,
            expires_tick: Some(50),
        },
    )));
    let cases = [
        // Rights the capability lacks (the VHM itself has SUBMIT, the capability does not).
        (
            by(a, x, grant(Target::Vhm(a), Rights::SUBMIT, None)),
            "Escalation",
        ),
        // A later expiry.
        (
            by(a, x, grant(Target::Vhm(a), Rights::RESERVE, Some(51))),
            "Escalation",
        ),
        (
            by(a, x, grant(Target::Vhm(a), Rights::RESERVE, Some(u64::MAX))),
            "Escalation",
        ),
        // A wider target.
        (
            by(a, x, grant(Target::Machine, Rights::RESERVE, None)),
            "Escalation",
        ),
    ];
    check(&mut h, &cases);
    let r = h.reject(&by(a, x, grant(Target::Vhm(a), Rights::RESERVE, Some(51))));
    assert!(
        matches!(&r, Rejection::Escalation { cap, .. } if *cap == x),
        "{r:?}"
    );

    // What may be granted: a subset, a target inside (a nested VHM), the same or an earlier expiry.
    let y = issued(&h.ok(&by(a, x, grant(Target::Vhm(c), Rights::RESERVE, None))));
    let yc = &h.core.state().caps.caps[&y];
    assert_eq!(
        (yc.holder, yc.target, yc.rights, yc.expires_tick, yc.parent),
        (
            Principal::Vhm(b),
            Target::Vhm(c),
            Rights::RESERVE,
            50,
            Some(x)
        )
    );
    // The grantee can use it on `c`, but not on `a`, and not for what it does not allow.
    h.ok(&by(
        b,
        y,
        Command::Release {
            vhm: c,
            resource: Resource::FuelUnits,
            amount: 1,
        },
    ));
    let cases = [
        (
            by(
                b,
                y,
                Command::Reserve {
                    vhm: a,
                    resource: Resource::FuelUnits,
                    amount: 1,
                },
            ),
            "OutOfScope",
        ),
        (by(b, y, Command::Terminate { vhm: c }), "MissingRight"),
        // It cannot re-grant: GRANT was not passed on.
        (
            by(b, y, grant(Target::Vhm(c), Rights::RESERVE, None)),
            "MissingRight",
        ),
    ];
    check(&mut h, &cases);
}

#[test]
fn a_child_created_through_a_narrow_capability_is_as_narrow() {
    let mut h = H::new(LINE8);
    let a = h.root(k("a", 2, 1000));
    let nest_only = issued(&h.ok(&h.as_self(
        a,
        Command::Attenuate {
            target: Target::Vhm(a),
            rights: Rights::NEST,
            expires_tick: Some(100),
        },
    )));
    let out = h.ok(&by(
        a,
        nest_only,
        Command::CreateNested {
            parent: a,
            spec: k("c", 1, 100),
        },
    ));
    let c = created(&out);
    let cc = h.own(c);
    let cap = &h.core.state().caps.caps[&cc];
    assert_eq!(cap.rights, Rights::NEST);
    assert_eq!(cap.expires_tick, 100);
    let cases = [
        (
            by(
                c,
                cc,
                Command::SubmitJob {
                    vhm: c,
                    domain: Domain::K,
                    cost: JobCost {
                        fuel_units: 1,
                        ..JobCost::default()
                    },
                },
            ),
            "MissingRight",
        ),
        (
            by(
                c,
                cc,
                Command::Grant {
                    to: Principal::Vhm(c),
                    target: Target::Vhm(c),
                    rights: Rights::NEST,
                    expires_tick: None,
                },
            ),
            "MissingRight",
        ),
        (
            by(
                c,
                cc,
                Command::Attenuate {
                    target: Target::Vhm(c),
                    rights: Rights::SUBMIT,
                    expires_tick: None,
                },
            ),
            "Escalation",
        ),
    ];
    check(&mut h, &cases);
}

// ----- coherence windows ---------------------------------------------------------------------

#[test]
fn overlapping_windows_need_a_sharing_contract() {
    let mut h = H::new(LINE8);
    let a = h.root(phi("a", 100_000));
    let b = h.root(phi("b", 100_000));
    let c = h.root(phi("c", 100_000));
    let win = |h: &H, v: VhmId, start_ns: u64, duration_ns: u64| {
        h.as_self(
            v,
            Command::ReserveWindow {
                vhm: v,
                start_ns,
                duration_ns,
            },
        )
    };
    h.ok(&win(&h, a, 1000, 5000)); // a: 1000..6000
    let r = h.reject(&win(&h, b, 3000, 5000));
    assert_eq!(
        r,
        Rejection::WindowOverlap {
            start_ns: 3000,
            end_ns: 8000,
            other: WindowId(0),
            other_vhm: a
        }
    );
    let cases = [
        (win(&h, b, 0, 1001), "WindowOverlap"),      // ends inside
        (win(&h, b, 5999, 10), "WindowOverlap"),     // starts inside
        (win(&h, b, 500, 10_000), "WindowOverlap"),  // covers
        (win(&h, b, 2000, 100), "WindowOverlap"),    // inside
        (win(&h, a, 2000, 100), "WindowOverlap"),    // a VHM's own windows do not overlap either
        (win(&h, b, 7000, 200_000), "Insufficient"), // beyond its window budget
        (win(&h, b, 7000, 0), "InvalidAmount"),
    ];
    check(&mut h, &cases);
    // Touching is not overlapping.
    h.ok(&win(&h, b, 6000, 1000)); // b: 6000..7000
    h.ok(&win(&h, b, 0, 1000)); // b: 0..1000

    // A contract between a and b: now their windows may overlap, but c's still may not.
    h.ok(&op(Command::ShareWindows {
        a,
        b,
        peer_cap: ROOT_CAP,
    }));
    assert_eq!(h.vhm(a).contracts, vec![b]);
    assert_eq!(h.vhm(b).contracts, vec![a]);
    h.ok(&win(&h, b, 3000, 2000)); // overlaps a's
    let cases = [
        (win(&h, c, 3000, 10), "WindowOverlap"),
        (win(&h, b, 3500, 10), "WindowOverlap"), // b still may not overlap itself
    ];
    check(&mut h, &cases);
    // The contract is not transitive: c shares with b only.
    h.ok(&op(Command::ShareWindows {
        a: c,
        b,
        peer_cap: ROOT_CAP,
    }));
    let r = h.reject(&win(&h, c, 1000, 10));
    assert!(
        matches!(r, Rejection::WindowOverlap { other_vhm, .. } if other_vhm == a),
        "{r:?}"
    );
    h.ok(&win(&h, c, 6000, 1000)); // overlaps b's 6000..7000 only
}

#[test]
fn sharing_contracts_need_share_on_both_sides() {
    let mut h = H::new(LINE8);
    let a = h.root(phi("a", 100_000));
    let b = h.root(phi("b", 100_000));
    let (ca, cb) = (h.own(a), h.own(b));
    let cases = [
        // `a` has no capability over `b`.
        (
            by(a, ca, Command::ShareWindows { a, b, peer_cap: ca }),
            "OutOfScope",
        ),
        // Nor may it present b's.
        (
            by(a, ca, Command::ShareWindows { a, b, peer_cap: cb }),
            "CapabilityNotHeld",
        ),
        (
            op(Command::ShareWindows {
                a,
                b: a,
                peer_cap: ROOT_CAP,
            }),
            "SameVhm",
        ),
    ];
    check(&mut h, &cases);
}

// ----- quota exhaustion ----------------------------------------------------------------------

#[test]
fn reserve_beyond_quota_is_refused() {
    let mut h = H::new(LINE8);
    let a = h.root(with_quota(
        k("a", 1, 500),
        &[(Resource::FuelUnits, 1000), (Resource::VcpuSlots, 8)],
    ));
    let reserve = |h: &H, v: VhmId, resource: Resource, amount: u64| {
        h.as_self(
            v,
            Command::Reserve {
                vhm: v,
                resource,
                amount,
            },
        )
    };
    assert_eq!(
        h.reject(&reserve(&h, a, Resource::FuelUnits, 501)),
        Rejection::QuotaExceeded {
            resource: Resource::FuelUnits,
            requested: 1001,
            quota: 1000
        }
    );
    h.ok(&reserve(&h, a, Resource::FuelUnits, 500));
    assert_eq!(h.vhm(a).held.get(Resource::FuelUnits), 1000);
    let cases = [
        (reserve(&h, a, Resource::FuelUnits, 1), "QuotaExceeded"),
        (
            reserve(&h, a, Resource::FuelUnits, u64::MAX),
            "QuotaExceeded",
        ),
        (reserve(&h, a, Resource::Shots, 1), "QuotaExceeded"), // no Q quota at all
        (reserve(&h, a, Resource::FuelUnits, 0), "InvalidAmount"),
        (
            reserve(&h, a, Resource::LogicalQubits, 1),
            "PlacedResourceFixed",
        ),
        (
            h.as_self(
                a,
                Command::Release {
                    vhm: a,
                    resource: Resource::FuelUnits,
                    amount: 1001,
                },
            ),
            "Insufficient",
        ),
    ];
    check(&mut h, &cases);

    // The machine has 4 vCPU slots: a's quota of 8 does not make more exist.
    let b = h.root(k("b", 2, 10));
    h.ok(&reserve(&h, a, Resource::VcpuSlots, 1)); // a: 2, b: 2, machine: 0
    assert_eq!(h.core.state().machine_free.get(Resource::VcpuSlots), 0);
    assert_eq!(
        h.reject(&reserve(&h, a, Resource::VcpuSlots, 1)),
        Rejection::Insufficient {
            resource: Resource::VcpuSlots,
            requested: 1,
            available: 0,
            from: Source::Machine
        }
    );
    let cases = [
        (
            op(Command::CreateVhm { spec: k("c", 1, 1) }),
            "Insufficient",
        ),
        (
            op(Command::CreateVhm {
                spec: with_k(empty("m"), 0, 1),
            }),
            "InvalidSpec",
        ),
    ];
    check(&mut h, &cases);
    // Released capacity is available again.
    h.ok(&h.as_self(
        b,
        Command::Release {
            vhm: b,
            resource: Resource::VcpuSlots,
            amount: 1,
        },
    ));
    h.root(k("c", 1, 1));
}

#[test]
fn nested_reservations_draw_from_the_parent() {
    let mut h = H::new(LINE8);
    let a = h.root(with_quota(k("a", 2, 1000), &[(Resource::FuelUnits, 5000)]));
    let c = h.nested(
        a,
        with_quota(k("c", 1, 600), &[(Resource::FuelUnits, 5000)]),
    );
    assert_eq!(h.vhm(a).delegated.get(Resource::FuelUnits), 600);
    // c's quota allows 5000, but a has only 400 left to lend.
    let r = h.reject(&h.as_self(
        c,
        Command::Reserve {
            vhm: c,
            resource: Resource::FuelUnits,
            amount: 401,
        },
    ));
    assert_eq!(
        r,
        Rejection::Insufficient {
            resource: Resource::FuelUnits,
            requested: 401,
            available: 400,
            from: Source::Vhm(a)
        }
    );
    // A second child cannot take more than what is left either.
    let r = h.reject(&h.as_self(
        a,
        Command::CreateNested {
            parent: a,
            spec: k("d", 1, 401),
        },
    ));
    assert_eq!(
        r,
        Rejection::Insufficient {
            resource: Resource::FuelUnits,
            requested: 401,
            available: 400,
            from: Source::Vhm(a)
        }
    );
    h.ok(&h.as_self(
        c,
        Command::Reserve {
            vhm: c,
            resource: Resource::FuelUnits,
            amount: 400,
        },
    ));
    assert_eq!(h.vhm(a).available(Resource::FuelUnits), 0);
    // The parent cannot release what it lent.
    let r = h.reject(&h.as_self(
        a,
        Command::Release {
            vhm: a,
            resource: Resource::FuelUnits,
            amount: 1,
        },
    ));
    assert_eq!(variant(&r), "Insufficient");
}

#[test]
fn jobs_beyond_the_budget_are_refused() {
    let mut h = H::new(LINE8);
    let a = h.root(with_q(k("a", 1, 1000), 2, 500));
    let submit = |h: &H, v: VhmId, domain: Domain, cost: JobCost| {
        h.as_self(
            v,
            Command::SubmitJob {
                vhm: v,
                domain,
                cost,
            },
        )
    };
    let fuel = |f: u64| JobCost {
        fuel_units: f,
        ..JobCost::default()
    };
    let shots = |s: u64| JobCost {
        shots: s,
        error_ppm: 100,
        duration_ns: 10,
        ..JobCost::default()
    };
    h.ok(&submit(&h, a, Domain::K, fuel(600)));
    assert_eq!(
        h.reject(&submit(&h, a, Domain::K, fuel(401))),
        Rejection::Insufficient {
            resource: Resource::FuelUnits,
            requested: 401,
            available: 400,
            from: Source::Vhm(a)
        }
    );
    h.ok(&submit(&h, a, Domain::Q, shots(300)));
    assert_eq!(
        h.reject(&submit(&h, a, Domain::Q, shots(201))),
        Rejection::Insufficient {
            resource: Resource::Shots,
            requested: 201,
            available: 200,
            from: Source::Vhm(a)
        }
    );
    let cases = [
        (submit(&h, a, Domain::K, fuel(u64::MAX)), "Insufficient"),
        (
            submit(
                &h,
                a,
                Domain::Q,
                JobCost {
                    shots: 1,
                    error_ppm: 10_001,
                    ..JobCost::default()
                },
            ),
            "Insufficient",
        ),
        (submit(&h, a, Domain::K, fuel(0)), "InvalidAmount"),
        (submit(&h, a, Domain::Q, shots(0)), "InvalidAmount"),
        (
            submit(
                &h,
                a,
                Domain::Phi,
                JobCost {
                    duration_ns: 10,
                    ..JobCost::default()
                },
            ),
            "DomainNotAllocated",
        ),
    ];
    check(&mut h, &cases);
    // The budget is consumed: the remaining 400 fuel can still be spent exactly.
    h.ok(&submit(&h, a, Domain::K, fuel(400)));
    assert_eq!(h.vhm(a).available(Resource::FuelUnits), 0);
    let last = submit(&h, a, Domain::K, fuel(1));
    check(&mut h, &[(last, "Insufficient")]);
}

// ----- use after terminate -------------------------------------------------------------------

#[test]
fn terminate_stops_children_first_and_revokes_everything() {
    let mut h = H::new(LINE8);
    let a = h.root(with_q(k("a", 2, 1000), 3, 100));
    let other = h.root(k("other", 1, 10));
    let b = h.nested(a, with_q(k("b", 1, 300), 2, 10));
    let c = h.nested(b, with_q(k("c", 1, 100), 1, 1));
    let d = h.nested(a, k("d", 1, 100));
    let e = h.nested(c, k("e", 1, 10));
    let (ca, cb, cc, cd) = (h.own(a), h.own(b), h.own(c), h.own(d));
    // `other` holds a capability over b, granted by a.
    let g = issued(&h.ok(&by(
        a,
        ca,
        Command::Grant {
            to: Principal::Vhm(other),
            target: Target::Vhm(b),
            rights: Rights::SUBMIT,
            expires_tick: None,
        },
    )));
    let before_free = h.core.state().machine_free;

    let out = h.ok(&op(Command::Terminate { vhm: a }));
    let stopped: Vec<(VhmId, StopReason)> = out
        .events
        .iter()
        .filter_map(|e| match e {
            Event::VhmStopped { vhm, reason } => Some((*vhm, *reason)),
            _ => None,
        })
        .collect();
    // Post-order, children ascending: e, c, b, d, a.
    assert_eq!(
        stopped,
        vec![
            (e, StopReason::ParentStopped(a)),
            (c, StopReason::ParentStopped(a)),
            (b, StopReason::ParentStopped(a)),
            (d, StopReason::ParentStopped(a)),
            (a, StopReason::Terminated),
        ]
    );
    // Every child is reported stopped before its parent.
    for (i, (v, _)) in stopped.iter().enumerate() {
        for (p, _) in &stopped[..i] {
            assert_ne!(Some(*p), Some(*v));
        }
    }
    let stop_effects: Vec<VhmId> = out
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::StopVhm { vhm, .. } => Some(*vhm),
            _ => None,
        })
        .collect();
    assert_eq!(stop_effects, vec![e, c, b, d, a]);
    let revoked: BTreeSet<CapId> = out
        .events
        .iter()
        .filter_map(|e| match e {
            Event::CapRevoked { cap } => Some(*cap),
            _ => None,
        })
        .collect();
    for x in [ca, cb, cc, cd, g] {
        assert!(revoked.contains(&x), "{x} was not revoked: {revoked:?}");
    }
    // Everything a held came back to the machine.
    let st = h.core.state();
    assert!(st.q_owner.iter().all(|o| o.is_none() || *o == Some(other)));
    assert_eq!(
        st.machine_free.get(Resource::VcpuSlots),
        before_free.get(Resource::VcpuSlots) + 2
    );
    assert_eq!(st.machine_free.get(Resource::LogicalQubits), 8);

    // Use after terminate.
    let reserve = |v: VhmId| Command::Reserve {
        vhm: v,
        resource: Resource::FuelUnits,
        amount: 1,
    };
    let cases = [
        (op(Command::Terminate { vhm: a }), "VhmStopped"),
        (op(reserve(a)), "VhmStopped"),
        (op(reserve(c)), "VhmStopped"),
        (
            op(Command::CreateNested {
                parent: b,
                spec: k("z", 1, 1),
            }),
            "VhmStopped",
        ),
        (by(a, ca, reserve(a)), "CapabilityRevoked"),
        (by(b, cb, reserve(b)), "CapabilityRevoked"),
        (
            by(c, cc, Command::Terminate { vhm: c }),
            "CapabilityRevoked",
        ),
        (by(other, g, reserve(b)), "CapabilityRevoked"),
        (
            op(Command::OpenChannel {
                a: other,
                b: d,
                peer_cap: ROOT_CAP,
            }),
            "VhmStopped",
        ),
        (op(Command::Terminate { vhm: VhmId(99) }), "UnknownVhm"),
    ];
    check(&mut h, &cases);
    assert_eq!(h.reject(&op(reserve(a))), Rejection::VhmStopped { vhm: a });
    assert_eq!(
        h.reject(&by(a, ca, reserve(a))),
        Rejection::CapabilityRevoked { cap: ca }
    );
    // A name is free again once its VHM stopped.
    h.root(k("a", 1, 1));
}

#[test]
fn terminating_a_child_returns_its_holdings_to_the_parent() {
    let mut h = H::new(LINE8);
    let a = h.root(with_q(k("a", 2, 1000), 3, 100));
    let b = h.nested(a, with_q(k("b", 1, 300), 2, 10));
    let held_b = h.vhm(b).held;
    let qb = h.vhm(b).qubits.clone();
    let job = queued(&h.ok(&h.as_self(
        b,
        Command::SubmitJob {
            vhm: b,
            domain: Domain::K,
            cost: JobCost {
                fuel_units: 50,
                ..JobCost::default()
            },
        },
    )));
    assert_eq!(h.vhm(a).delegated, held_b);
    let out = h.ok(&h.as_self(a, Command::Terminate { vhm: b }));
    assert!(out.events.contains(&Event::JobCancelled { job }));
    let av = h.vhm(a);
    assert!(av.delegated.is_zero());
    assert!(av.children.is_empty());
    // The queued job was refunded, so a has nothing charged.
    assert!(av.charged.is_zero(), "{:?}", av.charged);
    for q in qb {
        assert_eq!(h.core.state().q_owner[q as usize], Some(a));
    }
    check(
        &mut h,
        &[(
            Input::Completion {
                job,
                status: JobStatus::Ok,
            },
            "JobNotRunning",
        )],
    );
}

// ----- messages and capabilities -------------------------------------------------------------

#[test]
fn messages_need_an_open_channel_and_its_endpoint_capability() {
    let mut h = H::new(LINE8);
    let a = h.root(k("a", 1, 10));
    let b = h.root(k("b", 1, 10));
    let c = h.root(k("c", 1, 10));
    let (ca, cb, cc) = (h.own(a), h.own(b), h.own(c));
    let send = |channel: ChannelId| Command::Send {
        channel,
        payload: vec![1, 2, 3],
    };
    // No channel yet.
    assert_eq!(
        h.reject(&by(a, ca, send(ChannelId(0)))),
        Rejection::UnknownChannel {
            channel: ChannelId(0)
        }
    );
    let (ch, ea, eb) = opened(&h.ok(&op(Command::OpenChannel {
        a,
        b,
        peer_cap: ROOT_CAP,
    })));
    let out = h.ok(&by(a, ea, send(ch)));
    assert_eq!(
        out.effects,
        vec![Effect::Deliver {
            channel: ch,
            from: a,
            to: b,
            seq: 0,
            payload: vec![1, 2, 3]
        }]
    );
    let out = h.ok(&by(b, eb, send(ch)));
    assert!(matches!(
        out.effects[..],
        [Effect::Deliver { from, to, seq: 1, .. }] if from == b && to == a
    ));
    let cases = [
        (by(a, ca, send(ChannelId(7))), "UnknownChannel"),
        // An endpoint VHM presenting something other than its endpoint capability.
        (by(a, ca, send(ch)), "NotAnEndpoint"),
        (by(a, eb, send(ch)), "CapabilityNotHeld"),
        // A VHM that is not an endpoint.
        (by(c, cc, send(ch)), "OutOfScope"),
        (by(c, ea, send(ch)), "CapabilityNotHeld"),
        // The operator reaches every channel but is not an endpoint.
        (op(send(ch)), "NotAnEndpoint"),
        // Forgery and theft.
        (by(a, CapId(10_000), send(ch)), "UnknownCapability"),
        (by(b, ca, send(ch)), "CapabilityNotHeld"),
        // The payload limit.
        (
            by(
                a,
                ea,
                Command::Send {
                    channel: ch,
                    payload: vec![0; Limits::default().message_bytes_max as usize + 1],
                },
            ),
            "LimitReached",
        ),
        // Channels join two different VHMs.
        (
            op(Command::OpenChannel {
                a,
                b: a,
                peer_cap: ROOT_CAP,
            }),
            "SameVhm",
        ),
        // A VHM cannot open a channel to a VHM it has no capability over.
        (
            by(
                a,
                ca,
                Command::OpenChannel {
                    a,
                    b: c,
                    peer_cap: ca,
                },
            ),
            "OutOfScope",
        ),
    ];
    check(&mut h, &cases);
    assert_eq!(
        h.reject(&op(send(ch))),
        Rejection::NotAnEndpoint {
            channel: ch,
            principal: Principal::Operator
        }
    );
    assert_eq!(
        h.reject(&by(b, ca, send(ch))),
        Rejection::CapabilityNotHeld {
            cap: ca,
            holder: Principal::Vhm(a),
            principal: Principal::Vhm(b)
        }
    );
    // A non-endpoint cannot close it either.
    check(
        &mut h,
        &[(
            by(c, cc, Command::CloseChannel { channel: ch }),
            "OutOfScope",
        )],
    );

    // Closed: the endpoint capabilities are revoked, the channel refuses messages.
    let out = h.ok(&by(a, ea, Command::CloseChannel { channel: ch }));
    assert!(out.events.contains(&Event::ChannelClosed { channel: ch }));
    assert!(out.events.contains(&Event::CapRevoked { cap: ea }));
    assert!(out.events.contains(&Event::CapRevoked { cap: eb }));
    let cases = [
        (by(a, ca, send(ch)), "ChannelClosed"),
        (by(b, cb, send(ch)), "ChannelClosed"),
        (by(a, ea, send(ch)), "CapabilityRevoked"),
        (by(b, eb, send(ch)), "CapabilityRevoked"),
        (op(Command::CloseChannel { channel: ch }), "ChannelClosed"),
    ];
    check(&mut h, &cases);
    assert_eq!(
        h.reject(&by(a, ca, send(ch))),
        Rejection::ChannelClosed { channel: ch }
    );
}

#[test]
fn revoking_an_endpoint_capability_closes_the_channel() {
    let mut h = H::new(LINE8);
    let a = h.root(k("a", 1, 10));
    let b = h.root(k("b", 1, 10));
    let (ch, ea, eb) = opened(&h.ok(&op(Command::OpenChannel {
        a,
        b,
        peer_cap: ROOT_CAP,
    })));
    // eb derives from the operator's root capability, which may revoke it.
    let out = h.ok(&op(Command::Revoke { cap: eb }));
    assert!(out.events.contains(&Event::ChannelClosed { channel: ch }));
    assert!(out.events.contains(&Event::CapRevoked { cap: ea }));
    let cases = [
        (
            by(
                a,
                h.own(a),
                Command::Send {
                    channel: ch,
                    payload: vec![],
                },
            ),
            "ChannelClosed",
        ),
        (op(Command::Revoke { cap: eb }), "CapabilityRevoked"),
        (
            op(Command::Revoke { cap: CapId(5000) }),
            "UnknownCapability",
        ),
        (op(Command::Revoke { cap: ROOT_CAP }), "Escalation"),
        // A VHM cannot revoke what it did not derive.
        (
            h.as_self(a, Command::Revoke { cap: h.own(b) }),
            "OutOfScope",
        ),
    ];
    check(&mut h, &cases);
}

/// A capability over a channel derived from a VHM capability (rather than from an endpoint
/// capability) must not outlive the channel: `check_full` requires every live capability's target
/// to be live.
#[test]
fn channel_capabilities_derived_from_a_vhm_capability_go_with_the_channel() {
    let mut h = H::new(LINE8);
    let a = h.root(k("a", 1, 10));
    let b = h.root(k("b", 1, 10));
    let (ch, ea, _) = opened(&h.ok(&op(Command::OpenChannel {
        a,
        b,
        peer_cap: ROOT_CAP,
    })));
    // a covers the channel (it is an endpoint), so it may derive a capability over it.
    let x = issued(&h.ok(&h.as_self(
        a,
        Command::Attenuate {
            target: Target::Channel(ch),
            rights: Rights::IPC,
            expires_tick: None,
        },
    )));
    assert_eq!(h.core.state().caps.caps[&x].target, Target::Channel(ch));
    // Closing the channel must leave no capability aimed at it (H::ok runs check_full).
    h.ok(&by(a, ea, Command::CloseChannel { channel: ch }));
    assert!(
        !h.core.state().caps.caps.contains_key(&x),
        "{x} outlived the channel it targets"
    );
}

/// Revoking a capability derived from an endpoint capability (an attenuated copy, or a grant of it
/// to a third VHM) is not revoking the endpoint capability: both ends still hold theirs, so the
/// channel stays open. A third VHM that held such a grant stopping must not cut the two ends off.
#[test]
fn revoking_a_copy_of_an_endpoint_capability_leaves_the_channel_open() {
    let mut h = H::new(LINE8);
    let a = h.root(k("a", 1, 10));
    let b = h.root(k("b", 1, 10));
    let third = h.root(k("third", 1, 10));
    let (ch, ea, eb) = opened(&h.ok(&op(Command::OpenChannel {
        a,
        b,
        peer_cap: ROOT_CAP,
    })));
    let copy = issued(&h.ok(&by(
        a,
        ea,
        Command::Attenuate {
            target: Target::Channel(ch),
            rights: Rights::IPC,
            expires_tick: Some(100),
        },
    )));
    h.ok(&by(a, copy, Command::Revoke { cap: copy }));
    assert!(
        h.core.state().channels.contains_key(&ch),
        "revoking {copy}, a copy of {ea}, closed {ch} although {ea} and {eb} are live"
    );
    h.ok(&by(
        a,
        ea,
        Command::Send {
            channel: ch,
            payload: vec![1],
        },
    ));
    // A grant over the channel to a third VHM, which then faults.
    h.ok(&op(Command::Grant {
        to: Principal::Vhm(third),
        target: Target::Channel(ch),
        rights: Rights::IPC,
        expires_tick: None,
    }));
    h.ok(&op(Command::Fault {
        vhm: third,
        code: 1,
    }));
    assert!(
        h.core.state().channels.contains_key(&ch),
        "{third} faulting closed {ch} between {a} and {b}"
    );
}

#[test]
fn forged_stolen_and_expired_capabilities_are_refused() {
    let mut h = H::new(LINE8);
    let a = h.root(k("a", 1, 100));
    let b = h.root(k("b", 1, 100));
    let (ca, cb) = (h.own(a), h.own(b));
    let reserve = |v: VhmId| Command::Release {
        vhm: v,
        resource: Resource::FuelUnits,
        amount: 1,
    };
    let next = h.core.state().caps.next_id;
    assert_eq!(
        h.reject(&by(a, CapId(next), reserve(a))),
        Rejection::UnknownCapability { cap: CapId(next) }
    );
    assert_eq!(
        h.reject(&by(b, ca, Command::Terminate { vhm: a })),
        Rejection::CapabilityNotHeld {
            cap: ca,
            holder: Principal::Vhm(a),
            principal: Principal::Vhm(b)
        }
    );
    let cases = [
        (by(a, CapId(u64::MAX), reserve(a)), "UnknownCapability"),
        (op_with(CapId(next + 3), reserve(a)), "UnknownCapability"),
        // Theft of the operator's root capability.
        (by(a, ROOT_CAP, reserve(b)), "CapabilityNotHeld"),
        (by(a, cb, reserve(b)), "CapabilityNotHeld"),
        (op_with(ca, reserve(a)), "CapabilityNotHeld"),
    ];
    check(&mut h, &cases);

    // Expiry: a capability expiring at tick 5 works at tick 4, not at tick 5.
    let x = issued(&h.ok(&by(
        a,
        ca,
        Command::Attenuate {
            target: Target::Vhm(a),
            rights: Rights(Rights::RESERVE.0 | Rights::GRANT.0),
            expires_tick: Some(5),
        },
    )));
    h.ok(&tick(4));
    h.ok(&by(a, x, reserve(a)));
    h.ok(&tick(1));
    assert_eq!(
        h.reject(&by(a, x, reserve(a))),
        Rejection::CapabilityExpired {
            cap: x,
            expired_tick: 5
        }
    );
    let cases = [
        (
            by(
                a,
                x,
                Command::Grant {
                    to: Principal::Vhm(b),
                    target: Target::Vhm(a),
                    rights: Rights::RESERVE,
                    expires_tick: None,
                },
            ),
            "CapabilityExpired",
        ),
        (by(a, x, Command::Revoke { cap: x }), "CapabilityExpired"),
        (tick(0), "TicksOutOfRange"),
        (
            tick(Limits::default().ticks_per_input_max + 1),
            "TicksOutOfRange",
        ),
        (
            Input::Completion {
                job: JobId(0),
                status: JobStatus::Ok,
            },
            "JobNotRunning",
        ),
    ];
    check(&mut h, &cases);
    // The unexpired own capability still works.
    h.ok(&by(a, ca, reserve(a)));
}

fn op_with(cap: CapId, command: Command) -> Input {
    Input::Command {
        principal: Principal::Operator,
        cap,
        command,
    }
}

// ----- Q placement on a sparse coupling map --------------------------------------------------

fn adjacent(core: &Core, x: u32, y: u32) -> bool {
    core.adjacency()[x as usize].contains(&y)
}

fn connected(core: &Core, set: &[u32]) -> bool {
    let Some(&first) = set.first() else {
        return true;
    };
    let mut seen = vec![first];
    let mut i = 0;
    while i < seen.len() {
        let x = seen[i];
        i += 1;
        for &y in set {
            if !seen.contains(&y) && adjacent(core, x, y) {
                seen.push(y);
            }
        }
    }
    seen.len() == set.len()
}

/// Two tenants' partitions: disjoint, each connected, and no coupling between them.
fn assert_separated(core: &Core, pa: &[u32], pb: &[u32]) {
    assert!(connected(core, pa), "{pa:?} is not connected");
    assert!(connected(core, pb), "{pb:?} is not connected");
    for &x in pa {
        assert!(!pb.contains(&x), "{pa:?} and {pb:?} share qubit {x}");
        for &y in pb {
            assert!(
                !adjacent(core, x, y),
                "qubits {x} of {pa:?} and {y} of {pb:?} are coupled: no guard qubit between"
            );
        }
    }
}

#[test]
fn tenants_on_a_line_are_separated_by_a_guard_qubit() {
    let mut h = H::new(LINE8);
    let a = h.root(q("a", 3));
    let b = h.root(q("b", 3));
    let (pa, pb) = (h.vhm(a).qubits.clone(), h.vhm(b).qubits.clone());
    assert_eq!(pa, vec![0, 1, 2]);
    assert_eq!(pb, vec![4, 5, 6]);
    assert_separated(&h.core, &pa, &pb);
    // A guard qubit lies between them and belongs to nobody.
    assert_eq!(h.core.state().q_owner[3], None);
    // Two qubits are free (3 and 7) but each touches a tenant: no placement.
    assert_eq!(h.core.state().machine_free.get(Resource::LogicalQubits), 2);
    let r = h.reject(&op(Command::CreateVhm { spec: q("c", 1) }));
    assert!(
        matches!(
            r,
            Rejection::NoPlacement {
                resource: Resource::LogicalQubits,
                requested: 1,
                ..
            }
        ),
        "{r:?}"
    );
    // More qubits than are free at all is Insufficient, not NoPlacement.
    assert_eq!(
        h.reject(&op(Command::CreateVhm { spec: q("c", 3) })),
        Rejection::Insufficient {
            resource: Resource::LogicalQubits,
            requested: 3,
            available: 2,
            from: Source::Machine
        }
    );
    // Once b leaves, c fits beside a (with a guard).
    h.ok(&op(Command::Terminate { vhm: b }));
    let c = h.root(q("c", 4));
    let pc = h.vhm(c).qubits.clone();
    assert_eq!(pc, vec![4, 5, 6, 7]);
    assert_separated(&h.core, &pa, &pc);
}

#[test]
fn nested_partitions_are_subsets_of_the_parents() {
    let mut h = H::new(LINE8);
    let a = h.root(with_q(empty("a"), 3, 1000));
    let b = h.root(with_q(empty("b"), 3, 1000));
    let pa = h.vhm(a).qubits.clone();
    let a1 = h.nested(a, with_q(empty("a1"), 2, 10));
    let p1 = h.vhm(a1).qubits.clone();
    assert_eq!(p1.len(), 2);
    assert!(p1.iter().all(|x| pa.contains(x)), "{p1:?} ⊄ {pa:?}");
    assert!(connected(&h.core, &p1));
    for &x in &p1 {
        assert_eq!(h.core.state().q_owner[x as usize], Some(a1));
    }
    // Only one of a's qubits is left: a nested VHM of two has no placement, one of one has.
    let r = h.reject(&h.as_self(
        a,
        Command::CreateNested {
            parent: a,
            spec: with_q(empty("a2"), 2, 10),
        },
    ));
    assert!(
        matches!(
            r,
            Rejection::Insufficient { .. } | Rejection::NoPlacement { .. }
        ),
        "{r:?}"
    );
    let a2 = h.nested(a, with_q(empty("a2"), 1, 10));
    let p2 = h.vhm(a2).qubits.clone();
    assert!(p2.iter().all(|x| pa.contains(x) && !p1.contains(x)));
    // Siblings of one tenant need no guard between them; other tenants still do.
    assert_separated(&h.core, &pa, &h.vhm(b).qubits.clone());
    // A grandchild lies within its parent.
    let g = h.nested(a1, with_q(empty("g"), 1, 1));
    let pg = h.vhm(g).qubits.clone();
    assert!(pg.iter().all(|x| p1.contains(x)), "{pg:?} ⊄ {p1:?}");
    assert_eq!(h.core.state().own_qubits(h.vhm(a)), Vec::<u32>::new());
}

#[test]
fn tenants_on_a_grid_are_separated_until_no_placement_exists() {
    let mut h = H::new(GRID4);
    let mut parts: Vec<Vec<u32>> = Vec::new();
    let mut refused = None;
    for i in 0..8 {
        let input = op(Command::CreateVhm {
            spec: q(&format!("t{i}"), 4),
        });
        let out = h.apply(&input);
        match out.rejection {
            None => parts.push(h.vhm(created(&out)).qubits.clone()),
            Some(r) => {
                refused = Some(r);
                break;
            }
        }
    }
    assert!(parts.len() >= 2, "{parts:?}");
    for (i, pa) in parts.iter().enumerate() {
        assert_eq!(pa.len(), 4);
        for pb in &parts[i + 1..] {
            assert_separated(&h.core, pa, pb);
        }
    }
    let free = h.core.state().machine_free.get(Resource::LogicalQubits);
    assert!(free >= 4, "free {free}: expected qubits left over");
    let r = refused.expect("the grid fills up");
    assert!(
        matches!(
            r,
            Rejection::NoPlacement {
                resource: Resource::LogicalQubits,
                requested: 4,
                ..
            }
        ),
        "{r:?}"
    );
}

// ----- faults reclaim everything -------------------------------------------------------------

#[test]
fn faults_reclaim_everything() {
    let mut h = H::new(LINE8);
    // a keeps one vCPU of its own after lending two to a1, which keeps one after lending to a1a.
    let full = |name: &str, vcpus| with_phi(with_q(k(name, vcpus, 1000), 2, 1000), 2, 1, 100_000);
    let a = h.root(full("a", 3));
    let b = h.root(full("b", 1));
    let a1 = h.nested(a, with_q(k("a1", 2, 200), 1, 100));
    let a1a = h.nested(a1, k("a1a", 1, 50));
    h.ok(&op(Command::OpenChannel {
        a,
        b,
        peer_cap: ROOT_CAP,
    }));
    h.ok(&op(Command::OpenChannel {
        a: a1,
        b,
        peer_cap: ROOT_CAP,
    }));
    h.ok(&op(Command::ShareWindows {
        a,
        b,
        peer_cap: ROOT_CAP,
    }));
    for v in [a, b] {
        h.ok(&h.as_self(
            v,
            Command::ReserveWindow {
                vhm: v,
                start_ns: 0,
                duration_ns: 50_000,
            },
        ));
    }
    let mut jobs = Vec::new();
    for (v, domain, cost) in [
        (
            a,
            Domain::K,
            JobCost {
                fuel_units: 500,
                ..JobCost::default()
            },
        ),
        (
            a1,
            Domain::K,
            JobCost {
                fuel_units: 100,
                ..JobCost::default()
            },
        ),
        (
            a1,
            Domain::Q,
            JobCost {
                shots: 10,
                error_ppm: 10,
                duration_ns: 100,
                ..JobCost::default()
            },
        ),
        (
            a,
            Domain::Phi,
            JobCost {
                duration_ns: 500,
                ..JobCost::default()
            },
        ),
        (
            b,
            Domain::Q,
            JobCost {
                shots: 10,
                ..JobCost::default()
            },
        ),
    ] {
        jobs.push(queued(&h.ok(&h.as_self(
            v,
            Command::SubmitJob {
                vhm: v,
                domain,
                cost,
            },
        ))));
    }
    // Dispatch some of them.
    h.ok(&tick(1));
    assert!(h.core.state().q_inflight[0] > 0);
    assert!(h.core.state().phi_inflight[0] > 0);
    let a1_qubits = h.vhm(a1).qubits.clone();

    // A nested fault returns the child's placements to its parent.
    let out = h.ok(&h.as_self(a, Command::Fault { vhm: a1, code: 3 }));
    let stopped: Vec<_> = out
        .events
        .iter()
        .filter_map(|e| match e {
            Event::VhmStopped { vhm, reason } => Some((*vhm, *reason)),
            _ => None,
        })
        .collect();
    assert_eq!(
        stopped,
        vec![
            (a1a, StopReason::ParentStopped(a1)),
            (a1, StopReason::Faulted(3))
        ]
    );
    for q in a1_qubits {
        assert_eq!(h.core.state().q_owner[q as usize], Some(a));
    }
    assert!(h.vhm(a).delegated.is_zero());

    // Fault the roots: everything comes back.
    h.ok(&op(Command::Fault { vhm: a, code: 1 }));
    h.ok(&op(Command::Fault { vhm: b, code: 2 }));
    let st = h.core.state();
    assert!(st.vhms.is_empty());
    assert_eq!(st.machine_free, genesis_free(&h.core));
    assert!(st.q_owner.iter().all(Option::is_none));
    assert!(st.phi_owner.iter().all(Option::is_none));
    assert!(st.jobs.is_empty());
    assert!(st.queues.iter().all(Vec::is_empty));
    assert_eq!(
        (&st.q_inflight[..], &st.phi_inflight[..]),
        (&[0][..], &[0][..])
    );
    assert!(st.channels.is_empty());
    assert!(st.windows.is_empty() && st.windows_by_start.is_empty());
    assert!(st.root_names.is_empty());
    assert_eq!(
        st.caps.caps.keys().copied().collect::<Vec<_>>(),
        vec![ROOT_CAP]
    );
    // Completions of cancelled jobs are refused.
    let cases: Vec<(Input, &str)> = jobs
        .iter()
        .map(|&job| {
            (
                Input::Completion {
                    job,
                    status: JobStatus::Ok,
                },
                "JobNotRunning",
            )
        })
        .collect();
    check(&mut h, &cases);
    // The machine is as good as new: the same tenants fit again.
    h.root(full("a", 3));
    h.root(full("b", 1));
}

// ----- the checker itself can fail -----------------------------------------------------------

/// A small populated system: two tenants (a with a nested child), a channel, windows, caps, jobs.
fn populated() -> (H, VhmId, VhmId, VhmId) {
    let mut h = H::new(LINE8);
    let full = |name: &str| with_phi(with_q(k(name, 2, 1000), 3, 1000), 2, 1, 100_000);
    let a = h.root(full("a"));
    let b = h.root(full("b"));
    let c = h.nested(a, with_phi(with_q(k("c", 1, 100), 2, 10), 1, 1, 10_000));
    h.ok(&op(Command::OpenChannel {
        a,
        b,
        peer_cap: ROOT_CAP,
    }));
    h.ok(&h.as_self(
        a,
        Command::ReserveWindow {
            vhm: a,
            start_ns: 10_000,
            duration_ns: 5000,
        },
    ));
    h.ok(&h.as_self(
        a,
        Command::SubmitJob {
            vhm: a,
            domain: Domain::K,
            cost: JobCost {
                fuel_units: 10,
                ..JobCost::default()
            },
        },
    ));
    (h, a, b, c)
}

fn violated(core: &Core) -> Violation {
    match check_full(core) {
        Ok(()) => panic!("check_full accepted a corrupted state"),
        Err(v) => v,
    }
}

#[test]
fn checker_fails_on_a_qubit_shared_in_partitions() {
    let (mut h, a, b, _) = populated();
    let qa = h.vhm(a).qubits[2];
    let st = h.core.state_mut_for_tests();
    let bq = &mut st.vhms.get_mut(&b).unwrap().qubits;
    bq[0] = qa;
    bq.sort_unstable();
    let v = violated(&h.core);
    assert_eq!(v.rule, "placement", "{v}");
}

#[test]
fn checker_fails_on_a_qubit_owner_map_that_disagrees() {
    let (mut h, a, b, _) = populated();
    let qb = h.vhm(b).qubits[0];
    h.core.state_mut_for_tests().q_owner[qb as usize] = Some(a);
    let v = violated(&h.core);
    assert_eq!(v.rule, "placement", "{v}");
}

#[test]
fn checker_fails_on_tenants_without_a_guard_qubit() {
    let (mut h, _, b, _) = populated();
    // a holds 0..=2 and b 4..=6; move b onto 3..=5, consistently in both maps.
    let st = h.core.state_mut_for_tests();
    st.vhms.get_mut(&b).unwrap().qubits = vec![3, 4, 5];
    st.q_owner[3] = Some(b);
    st.q_owner[6] = None;
    let v = violated(&h.core);
    assert_eq!(v.rule, "placement", "{v}");
    assert!(v.detail.contains("guard"), "{v}");
}

#[test]
fn checker_fails_on_a_shared_phi_cell() {
    let (mut h, a, b, _) = populated();
    let ra = h.vhm(a).region.unwrap();
    let st = h.core.state_mut_for_tests();
    let vb = st.vhms.get_mut(&b).unwrap();
    let rb = vb.region.unwrap();
    vb.region = Some(PhiRegion {
        mode_start: ra.mode_start,
        channel_start: ra.channel_start,
        ..rb
    });
    let v = violated(&h.core);
    assert_eq!(v.rule, "placement", "{v}");
}

#[test]
fn checker_fails_when_delegated_disagrees_with_children() {
    let (mut h, a, _, _) = populated();
    let st = h.core.state_mut_for_tests();
    st.vhms.get_mut(&a).unwrap().delegated.0[Resource::FuelUnits.index()] -= 1;
    let v = violated(&h.core);
    assert_eq!(v.rule, "quota", "{v}");
    assert!(v.detail.contains("lending"), "{v}");
}

#[test]
fn checker_fails_when_a_vhm_holds_more_than_its_quota() {
    let (mut h, _, b, _) = populated();
    let st = h.core.state_mut_for_tests();
    let vb = st.vhms.get_mut(&b).unwrap();
    vb.held.0[Resource::Shots.index()] = vb.quota.get(Resource::Shots) + 1;
    let v = violated(&h.core);
    assert_eq!(v.rule, "quota", "{v}");
}

#[test]
fn checker_fails_when_machine_capacity_does_not_add_up() {
    let (mut h, _, _, _) = populated();
    h.core.state_mut_for_tests().machine_free.0[Resource::VcpuSlots.index()] += 1;
    let v = violated(&h.core);
    assert_eq!(v.rule, "quota", "{v}");
}

#[test]
fn checker_fails_on_overlapping_windows() {
    let (mut h, a, b, _) = populated();
    let wa = h.core.state().windows.values().next().copied().unwrap();
    assert_eq!(wa.vhm, a);
    let st = h.core.state_mut_for_tests();
    let id = WindowId(st.next_window);
    st.next_window += 1;
    let w = Window {
        id,
        vhm: b,
        provider: 0,
        start_ns: wa.start_ns + 1,
        end_ns: wa.end_ns + 1,
    };
    st.windows.insert(id, w);
    st.windows_by_start.insert((w.start_ns, id));
    st.vhms.get_mut(&b).unwrap().windows.push(id);
    let v = violated(&h.core);
    assert_eq!(v.rule, "windows", "{v}");
    assert!(v.detail.contains("overlaps"), "{v}");
    // With a contract between them, the same windows are fine.
    let st = h.core.state_mut_for_tests();
    st.vhms.get_mut(&a).unwrap().contracts.push(b);
    st.vhms.get_mut(&b).unwrap().contracts.push(a);
    check_full(&h.core).expect("overlap under a contract");
}

#[test]
fn checker_fails_on_a_window_index_that_disagrees() {
    let (mut h, _, _, _) = populated();
    let st = h.core.state_mut_for_tests();
    let first = *st.windows_by_start.iter().next().unwrap();
    st.windows_by_start.remove(&first);
    st.windows_by_start.insert((first.0 + 1, first.1));
    let v = violated(&h.core);
    assert_eq!(v.rule, "windows", "{v}");
}

#[test]
fn checker_fails_on_a_capability_wider_than_its_parent() {
    for widen in ["rights", "expiry", "target"] {
        let (mut h, a, b, _) = populated();
        let ca = h.own(a);
        let parent = h.core.state().caps.caps[&ca].clone();
        let st = h.core.state_mut_for_tests();
        let id = CapId(st.caps.next_id);
        st.caps.next_id += 1;
        let mut cap = Capability {
            id,
            holder: Principal::Vhm(a),
            target: parent.target,
            rights: Rights::SUBMIT,
            expires_tick: 10,
            parent: Some(ca),
            children: Vec::new(),
        };
        match widen {
            "rights" => cap.rights = Rights::ALL,
            "expiry" => {
                st.caps.caps.get_mut(&ca).unwrap().expires_tick = 10;
                cap.expires_tick = 11;
            }
            _ => cap.target = Target::Vhm(b),
        }
        st.caps.caps.insert(id, cap);
        st.caps.caps.get_mut(&ca).unwrap().children.push(id);
        let v = violated(&h.core);
        assert_eq!(v.rule, "capability", "{widen}: {v}");
    }
}

#[test]
fn checker_fails_on_a_capability_whose_holder_stopped() {
    let (mut h, a, _, _) = populated();
    let st = h.core.state_mut_for_tests();
    let id = CapId(st.caps.next_id);
    st.caps.next_id += 1;
    st.caps.caps.insert(
        id,
        Capability {
            id,
            holder: Principal::Vhm(VhmId(77)),
            target: Target::Vhm(a),
            rights: Rights::SUBMIT,
            expires_tick: u64::MAX,
            parent: Some(ROOT_CAP),
            children: Vec::new(),
        },
    );
    let v = violated(&h.core);
    assert_eq!(v.rule, "stop", "{v}");
}

#[test]
fn checker_fails_on_an_open_channel_without_its_endpoint_capability() {
    let (mut h, _, _, _) = populated();
    let st = h.core.state_mut_for_tests();
    let ch = st.channels.values().next().unwrap().clone();
    st.caps.caps.remove(&ch.cap_b);
    for c in st.caps.caps.values_mut() {
        c.children.retain(|x| *x != ch.cap_b);
    }
    let v = violated(&h.core);
    assert_eq!(v.rule, "ipc", "{v}");
}

#[test]
fn checker_fails_on_job_bookkeeping_that_disagrees() {
    let (mut h, _, _, _) = populated();
    h.core.state_mut_for_tests().q_inflight[0] += 1;
    assert_eq!(violated(&h.core).rule, "jobs");

    let (mut h, a, _, _) = populated();
    h.core
        .state_mut_for_tests()
        .vhms
        .get_mut(&a)
        .unwrap()
        .jobs
        .clear();
    assert_eq!(violated(&h.core).rule, "jobs");

    let (mut h, _, _, _) = populated();
    let st = h.core.state_mut_for_tests();
    st.queues[Domain::K.index()].clear();
    assert_eq!(violated(&h.core).rule, "jobs");
}

#[test]
fn checker_fails_on_a_child_missing_from_its_parents_children() {
    let (mut h, a, _, c) = populated();
    let st = h.core.state_mut_for_tests();
    let va = st.vhms.get_mut(&a).unwrap();
    va.children.retain(|x| *x != c);
    va.delegated = ResourceVector::ZERO;
    let v = violated(&h.core);
    assert_eq!(v.rule, "quota", "{v}");
    assert!(v.detail.contains("not among its children"), "{v}");
}

#[test]
fn checker_fails_on_a_child_that_outlived_its_parent() {
    let (mut h, a, _, c) = populated();
    let st = h.core.state_mut_for_tests();
    st.vhms.remove(&a);
    let v = violated(&h.core);
    assert_eq!(v.rule, "stop", "{v}");
    assert!(v.detail.contains(&c.to_string()), "{v}");
}

#[test]
fn step_checker_fails_on_forged_outcomes() {
    let (h, a, b, _) = populated();
    let core = &h.core;
    // A rejected input with events: not atomic.
    let input = tick(1);
    let out = Outcome {
        rejection: Some(Rejection::TicksOutOfRange { ticks: 0, max: 1 }),
        effects: Vec::new(),
        events: vec![Event::Ticked { tick: 1 }],
    };
    assert_eq!(
        check_step(core, &input, &out).unwrap_err().rule,
        "atomicity"
    );
    // An accepted command that no capability check authorised: the core's last input was a tick,
    // which authorised nothing, and the terminate is presented as if it had been accepted.
    let mut fresh = H::new(LINE8);
    fresh.ok(&tick(1));
    let input = op(Command::Terminate { vhm: VhmId(0) });
    let err = check_step(&fresh.core, &input, &Outcome::default()).unwrap_err();
    assert_eq!(err.rule, "capability", "{err}");
    // A message delivered without a channel.
    let out = Outcome {
        rejection: None,
        effects: vec![Effect::Deliver {
            channel: ChannelId(9),
            from: a,
            to: b,
            seq: 0,
            payload: vec![],
        }],
        events: vec![],
    };
    assert_eq!(check_step(core, &tick(1), &out).unwrap_err().rule, "ipc");
    // A Q job run on another tenant's qubits.
    let out = Outcome {
        rejection: None,
        effects: vec![Effect::ExecuteQ {
            job: JobId(0),
            vhm: a,
            provider: 0,
            qubits: h.vhm(b).qubits.clone(),
            shots: 1,
        }],
        events: vec![],
    };
    assert_eq!(
        check_step(core, &tick(1), &out).unwrap_err().rule,
        "isolation"
    );
    // A VHM reported stopped while still live.
    let out = Outcome {
        rejection: None,
        effects: vec![],
        events: vec![Event::VhmStopped {
            vhm: a,
            reason: StopReason::Terminated,
        }],
    };
    assert_eq!(check_step(core, &tick(1), &out).unwrap_err().rule, "stop");
}

#[test]
fn a_job_needs_resources_the_vhm_has_not_lent_away() {
    let mut h = H::new(LINE8);
    let p = h.root(with_q(k("p", 1, 1000), 2, 1000));
    let c = h.nested(p, with_q(k("c", 1, 100), 2, 100));
    let fuel = JobCost {
        fuel_units: 10,
        ..JobCost::default()
    };
    let shots = JobCost {
        shots: 10,
        ..JobCost::default()
    };
    // p lent its only vCPU and both qubits to c: its own jobs could never run.
    let cases = [
        (
            h.as_self(
                p,
                Command::SubmitJob {
                    vhm: p,
                    domain: Domain::K,
                    cost: fuel,
                },
            ),
            "DomainNotAllocated",
        ),
        (
            h.as_self(
                p,
                Command::SubmitJob {
                    vhm: p,
                    domain: Domain::Q,
                    cost: shots,
                },
            ),
            "DomainNotAllocated",
        ),
    ];
    check(&mut h, &cases);
    h.ok(&h.as_self(
        c,
        Command::SubmitJob {
            vhm: c,
            domain: Domain::K,
            cost: fuel,
        },
    ));
    h.ok(&h.as_self(
        c,
        Command::SubmitJob {
            vhm: c,
            domain: Domain::Q,
            cost: shots,
        },
    ));
}

// ----- several providers per domain, and Φ regions as rectangles -------------------------------

/// Two Q devices (a 6-qubit line with guards, a 3-qubit all-to-all) and two meshes (4 × 2, 2 × 1).
const TWO_EACH: &str = r#"
tick_ns = 1000
[k]
vcpu_slots = 4
fuel_per_slice = 100
memory_bytes = 4096
[[q]]
provider = "line"
qubits = 6
topology = "line"
max_inflight_jobs = 1
[[q]]
provider = "a2a"
qubits = 3
topology = "all-to-all"
max_inflight_jobs = 1
[[phi]]
provider = "big"
modes = 4
wavelength_channels = 2
thermal_budget_mw = 100
optical_bandwidth_mhz = 1000
max_inflight_jobs = 1
[[phi]]
provider = "small"
modes = 2
wavelength_channels = 1
thermal_budget_mw = 100
optical_bandwidth_mhz = 1000
max_inflight_jobs = 1
"#;

fn on_q(mut s: VhmSpec, provider: &str) -> VhmSpec {
    s.q.as_mut().expect("a Q part").provider = Some(provider.into());
    s
}

fn on_phi(mut s: VhmSpec, provider: &str) -> VhmSpec {
    s.phi.as_mut().expect("a Φ part").provider = Some(provider.into());
    s
}

#[test]
fn phi_tenants_may_use_the_same_channels_on_different_modes() {
    // Each tenant takes every channel of a 2-mode slice of the 8 × 4 mesh: channels are a side of
    // a rectangle, not a pool, so all four fit and a fifth finds no room.
    let mut h = H::new(LINE8);
    let mut regions = Vec::new();
    for name in ["a", "b", "c", "d"] {
        let v = h.root(with_phi(empty(name), 2, 4, 1000));
        regions.push(h.vhm(v).region.expect("placed"));
    }
    for (i, r) in regions.iter().enumerate() {
        assert_eq!((r.mode_start, r.modes, r.channels), (2 * i as u32, 2, 4));
    }
    let r = h.reject(&op(Command::CreateVhm {
        spec: with_phi(empty("e"), 1, 1, 1000),
    }));
    assert_eq!(variant(&r), "NoPlacement", "{r:?}");
}

#[test]
fn nested_vhms_may_split_their_parents_rectangle_by_channel() {
    let mut h = H::new(LINE8);
    let mut spec = with_phi(empty("a"), 4, 4, 4000);
    let p = spec.phi.as_mut().unwrap();
    (p.thermal_budget_mw, p.optical_bandwidth_mhz) = (40, 400);
    let a = h.root(spec);
    // Two children with the parent's full width in modes, two channels each.
    let c1 = h.nested(a, with_phi(empty("c1"), 4, 2, 1000));
    let c2 = h.nested(a, with_phi(empty("c2"), 4, 2, 1000));
    let (r1, r2) = (h.vhm(c1).region.unwrap(), h.vhm(c2).region.unwrap());
    assert!(!r1.overlaps(&r2), "{r1} and {r2}");
    let pa = h.vhm(a).region.unwrap();
    assert!(r1.within(&pa) && r2.within(&pa));
    // A third finds no free cell inside the parent.
    let r = h.reject(&h.as_self(
        a,
        Command::CreateNested {
            parent: a,
            spec: with_phi(empty("c3"), 1, 1, 100),
        },
    ));
    assert_eq!(variant(&r), "NoPlacement", "{r:?}");
    // Terminating one child frees exactly its cells for a new one.
    h.ok(&h.as_self(a, Command::Terminate { vhm: c1 }));
    let c3 = h.nested(a, with_phi(empty("c3"), 4, 2, 100));
    assert_eq!(h.vhm(c3).region.unwrap(), r1);
}

#[test]
fn vhms_are_placed_on_the_provider_they_name_or_the_first_with_room() {
    let mut h = H::new(TWO_EACH);
    let layout = h.core.layout().clone();
    // Named: on the all-to-all device (global qubits 6..9).
    let a = h.root(on_q(q("a", 2), "a2a"));
    assert_eq!(h.vhm(a).qubits, vec![6, 7]);
    // Unnamed: the first provider with room, the line.
    let b = h.root(q("b", 4));
    assert_eq!(h.vhm(b).qubits, vec![0, 1, 2, 3]);
    // The line has no room left for 2 (guard qubit 4, then only qubit 5), the all-to-all has
    // one qubit: no provider can take 2.
    let r = h.reject(&op(Command::CreateVhm { spec: q("c", 2) }));
    assert_eq!(variant(&r), "NoPlacement", "{r:?}");
    // One qubit fits on the line beyond the guard.
    let c = h.root(q("c", 1));
    assert_eq!(h.vhm(c).qubits, vec![5]);
    assert_eq!(layout.q_provider(5), 0);
    // A provider the machine lacks is an invalid spec.
    let r = h.reject(&op(Command::CreateVhm {
        spec: on_q(q("d", 1), "nope"),
    }));
    assert_eq!(variant(&r), "InvalidSpec", "{r:?}");
    // A nested VHM stays on its parent's provider, and may not name another.
    let n = h.nested(b, with_q(empty("n"), 2, 10));
    assert!(h.vhm(n).qubits.iter().all(|&x| layout.q_provider(x) == 0));
    let r = h.reject(&h.as_self(
        b,
        Command::CreateNested {
            parent: b,
            spec: on_q(with_q(empty("m"), 1, 10), "a2a"),
        },
    ));
    assert_eq!(variant(&r), "InvalidSpec", "{r:?}");
    // Φ: the small mesh by name (global modes 4..6), the big one by default.
    let p = h.root(on_phi(with_phi(empty("p"), 2, 1, 100), "small"));
    assert_eq!(h.vhm(p).region.unwrap().mode_start, 4);
    let p2 = h.root(with_phi(empty("p2"), 4, 2, 100));
    assert_eq!(h.vhm(p2).region.unwrap().mode_start, 0);
    // A region never straddles two meshes, even when the cells exist: 1 mode is left on neither.
    let r = h.reject(&op(Command::CreateVhm {
        spec: with_phi(empty("p3"), 1, 1, 100),
    }));
    assert_eq!(variant(&r), "NoPlacement", "{r:?}");
}

#[test]
fn windows_on_different_meshes_never_conflict_and_jobs_run_on_their_own_provider() {
    let mut h = H::new(TWO_EACH);
    let a = h.root(on_phi(
        with_phi(with_q(empty("a"), 1, 100), 2, 1, 10_000),
        "big",
    ));
    let b = h.root(on_phi(
        with_phi(with_q(empty("b"), 1, 100), 2, 1, 10_000),
        "small",
    ));
    let c = h.root(on_q(
        with_phi(with_q(empty("c"), 1, 100), 2, 1, 10_000),
        "a2a",
    ));
    // a and b reserve the same interval on different meshes: no conflict, no contract needed.
    for v in [a, b] {
        h.ok(&h.as_self(
            v,
            Command::ReserveWindow {
                vhm: v,
                start_ns: 1000,
                duration_ns: 5000,
            },
        ));
    }
    // c is on the big mesh with a: the same interval conflicts there.
    let r = h.reject(&h.as_self(
        c,
        Command::ReserveWindow {
            vhm: c,
            start_ns: 2000,
            duration_ns: 1000,
        },
    ));
    assert_eq!(variant(&r), "WindowOverlap", "{r:?}");
    // Q jobs: a and b share the line (1 in flight), c is alone on the all-to-all device.
    for v in [a, b, c] {
        h.ok(&h.as_self(
            v,
            Command::SubmitJob {
                vhm: v,
                domain: Domain::Q,
                cost: JobCost {
                    shots: 1,
                    ..JobCost::default()
                },
            },
        ));
    }
    let out = h.ok(&tick(1));
    let mut dispatched: Vec<(VhmId, u32)> = out
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::ExecuteQ { vhm, provider, .. } => Some((*vhm, *provider)),
            _ => None,
        })
        .collect();
    dispatched.sort();
    // One job per provider: the line's limit holds b back, c runs beside a.
    assert_eq!(dispatched, vec![(a, 0), (c, 1)]);
    assert_eq!(h.core.state().q_inflight, vec![1, 1]);
    // Φ jobs run on their own mesh.
    for v in [a, b] {
        h.ok(&h.as_self(
            v,
            Command::SubmitJob {
                vhm: v,
                domain: Domain::Phi,
                cost: JobCost {
                    duration_ns: 1000,
                    ..JobCost::default()
                },
            },
        ));
    }
    let out = h.ok(&tick(1));
    let mut phi: Vec<(VhmId, u32)> = out
        .effects
        .iter()
        .filter_map(|e| match e {
            Effect::ExecutePhi { vhm, provider, .. } => Some((*vhm, *provider)),
            _ => None,
        })
        .collect();
    phi.sort();
    assert_eq!(phi, vec![(a, 0), (b, 1)]);
}

#[test]
fn a_k_job_completed_early_returns_its_undispatched_fuel() {
    // fuel_per_slice is 100: a 1000-unit job gets one slice, then completes early.
    let mut h = H::new(LINE8);
    let a = h.root(k("a", 1, 1000));
    let submit = |h: &mut H, fuel: u64| {
        queued(&h.ok(&h.as_self(
            a,
            Command::SubmitJob {
                vhm: a,
                domain: Domain::K,
                cost: JobCost {
                    fuel_units: fuel,
                    ..JobCost::default()
                },
            },
        )))
    };
    let j = submit(&mut h, 1000);
    assert_eq!(h.vhm(a).available(Resource::FuelUnits), 0);
    let out = h.ok(&tick(1));
    assert!(out.effects.iter().any(|e| matches!(
        e,
        Effect::RunSlice {
            fuel_units: 100,
            last: false,
            ..
        }
    )));
    h.ok(&Input::Completion {
        job: j,
        status: JobStatus::Ok,
    });
    // The dispatched slice stays charged; the 900 never dispatched come back.
    assert_eq!(h.vhm(a).charged.get(Resource::FuelUnits), 100);
    assert_eq!(h.vhm(a).available(Resource::FuelUnits), 900);
    let j2 = submit(&mut h, 900);
    // A job completed after its last slice returns nothing.
    for _ in 0..9 {
        h.ok(&tick(1));
    }
    h.ok(&Input::Completion {
        job: j2,
        status: JobStatus::Ok,
    });
    assert_eq!(h.vhm(a).charged.get(Resource::FuelUnits), 1000);
    let r = h.reject(&h.as_self(
        a,
        Command::SubmitJob {
            vhm: a,
            domain: Domain::K,
            cost: JobCost {
                fuel_units: 1,
                ..JobCost::default()
            },
        },
    ));
    assert_eq!(variant(&r), "Insufficient", "{r:?}");
}

// ----- K jobs that wait for their VHM's Q and Φ jobs (virtual interrupts) ---------------------

fn effects_of(out: &Outcome) -> Vec<&Effect> {
    out.effects.iter().collect()
}

fn slices_for(out: &Outcome, job: JobId) -> Vec<u64> {
    out.effects
        .iter()
        .filter_map(|e| match e {
            Effect::RunSlice {
                job: j, fuel_units, ..
            } if *j == job => Some(*fuel_units),
            _ => None,
        })
        .collect()
}

fn ok_self(h: &mut H, v: VhmId, command: Command) -> Outcome {
    let input = h.as_self(v, command);
    h.ok(&input)
}

fn hybrid(h: &mut H, name: &str) -> VhmId {
    h.root(with_q(k(name, 1, 1000), 2, 100))
}

fn submit(h: &mut H, v: VhmId, domain: Domain, cost: JobCost) -> JobId {
    let out = ok_self(
        h,
        v,
        Command::SubmitJob {
            vhm: v,
            domain,
            cost,
        },
    );
    queued(&out)
}

fn fuel(n: u64) -> JobCost {
    JobCost {
        fuel_units: n,
        ..JobCost::default()
    }
}

fn shots(n: u64) -> JobCost {
    JobCost {
        shots: n,
        ..JobCost::default()
    }
}

#[test]
fn a_waiting_k_job_gets_no_slices_until_its_q_job_completes() {
    let mut h = H::new(LINE8);
    let a = hybrid(&mut h, "a");
    let kj = submit(&mut h, a, Domain::K, fuel(1000));
    let qj = submit(&mut h, a, Domain::Q, shots(10));
    let out = h.ok(&tick(1));
    assert_eq!(slices_for(&out, kj), vec![100], "{:?}", effects_of(&out));
    // The guest used 40 of its slice's 100 units, then waited.
    let out = ok_self(
        &mut h,
        a,
        Command::Wait {
            job: kj,
            fuel_unused: 60,
        },
    );
    assert_eq!(
        out.events,
        vec![Event::JobWaiting {
            job: kj,
            fuel_unused: 60
        }]
    );
    assert_eq!(h.core.state().jobs[&kj].fuel_remaining, 960);
    for _ in 0..3 {
        let out = h.ok(&tick(1));
        assert!(slices_for(&out, kj).is_empty(), "a waiting job ran a slice");
    }
    // A second wait, a wait with more fuel back than the slice had: both refused.
    let cases = [
        (
            h.as_self(
                a,
                Command::Wait {
                    job: kj,
                    fuel_unused: 0,
                },
            ),
            "NotWaitable",
        ),
        (
            h.as_self(
                a,
                Command::Wait {
                    job: qj,
                    fuel_unused: 0,
                },
            ),
            "NotWaitable",
        ),
    ];
    check(&mut h, &cases);
    let out = h.ok(&Input::Completion {
        job: qj,
        status: JobStatus::Ok,
    });
    assert!(out.events.contains(&Event::JobWoken { job: kj }));
    let out = h.ok(&tick(1));
    assert_eq!(slices_for(&out, kj), vec![100]);
    // Now no Q job is live: waiting would never end.
    let cases = [(
        h.as_self(
            a,
            Command::Wait {
                job: kj,
                fuel_unused: 10,
            },
        ),
        "NothingToWaitFor",
    )];
    check(&mut h, &cases);
    // The slice's fuel bounds what comes back.
    let _q2 = submit(&mut h, a, Domain::Q, shots(10));
    let cases = [(
        h.as_self(
            a,
            Command::Wait {
                job: kj,
                fuel_unused: 101,
            },
        ),
        "InvalidAmount",
    )];
    check(&mut h, &cases);
    ok_self(
        &mut h,
        a,
        Command::Wait {
            job: kj,
            fuel_unused: 100,
        },
    );
}

#[test]
fn fuel_a_wait_returns_is_refunded_when_the_job_ends() {
    let mut h = H::new(LINE8);
    let a = hybrid(&mut h, "a");
    let kj = submit(&mut h, a, Domain::K, fuel(1000));
    let qj = submit(&mut h, a, Domain::Q, shots(10));
    h.ok(&tick(1));
    ok_self(
        &mut h,
        a,
        Command::Wait {
            job: kj,
            fuel_unused: 70,
        },
    );
    h.ok(&Input::Completion {
        job: qj,
        status: JobStatus::Ok,
    });
    h.ok(&tick(1));
    // The guest ends in its second slice: it used 30 + 100 of the 1000 it declared.
    h.ok(&Input::Completion {
        job: kj,
        status: JobStatus::Ok,
    });
    // Undispatched fuel (1000 − 200 dispatched + 70 returned) goes back to the VHM.
    assert_eq!(h.vhm(a).available(Resource::FuelUnits), 1000 - 130);
}

#[test]
fn a_waiting_job_wakes_when_a_q_job_expires() {
    let mut h = H::new(LINE8);
    let mut spec = with_q(k("a", 1, 1000), 2, 100);
    spec.policy.deadline_tick = Some(3);
    let a = h.root(spec);
    let kj = submit(&mut h, a, Domain::K, fuel(1000));
    let _q1 = submit(&mut h, a, Domain::Q, shots(10));
    let q2 = submit(&mut h, a, Domain::Q, shots(10));
    // K slice and q1 dispatched; q2 stays queued behind q1 (one Q job of a VHM at a time), and
    // q1 never completes here.
    h.ok(&tick(1));
    ok_self(
        &mut h,
        a,
        Command::Wait {
            job: kj,
            fuel_unused: 0,
        },
    );
    for now in 2..=3 {
        let out = h.ok(&tick(1));
        assert!(
            !out.events.contains(&Event::JobWoken { job: kj }),
            "woken at tick {now} with nothing ended"
        );
    }
    // Past the deadline q2 expires: that is an end of a Q job too, and wakes the K job.
    let out = h.ok(&tick(1));
    assert!(out.events.contains(&Event::JobExpired { job: q2 }));
    assert!(out.events.contains(&Event::JobWoken { job: kj }));
}

#[test]
fn wait_is_refused_to_others_and_for_jobs_that_cannot_wait() {
    let mut h = H::new(LINE8);
    let a = hybrid(&mut h, "a");
    let b = hybrid(&mut h, "b");
    let kj = submit(&mut h, a, Domain::K, fuel(1000));
    let _qj = submit(&mut h, a, Domain::Q, shots(10));
    let wait = |job| Command::Wait {
        job,
        fuel_unused: 0,
    };
    // Not dispatched yet.
    let cases = [(h.as_self(a, wait(kj)), "NotWaitable")];
    check(&mut h, &cases);
    h.ok(&tick(1));
    let cases = [
        (h.as_self(b, wait(kj)), "OutOfScope"),
        (h.as_self(a, wait(JobId(999))), "JobNotRunning"),
    ];
    check(&mut h, &cases);
}

// ----- token revocations and the boundary manager's refusals -----------------------------------

fn denial(operation: xdv_core::DeniedOp) -> xdv_core::Denial {
    xdv_core::Denial {
        operation,
        domain: Domain::Q,
        amount: 10,
        reason: xdv_core::DenyReason::Insufficient,
    }
}

#[test]
fn token_revocations_are_recorded_once_by_the_operator_only() {
    let mut h = H::new(LINE8);
    let a = hybrid(&mut h, "a");
    let t = xdv_core::TokenId([7; 32]);
    let cases = [(
        h.as_self(a, Command::RevokeToken { token: t }),
        "OutOfScope",
    )];
    check(&mut h, &cases);
    let out = h.ok(&op(Command::RevokeToken { token: t }));
    assert_eq!(out.events, vec![Event::TokenRevoked { token: t }]);
    assert!(h.core.state().revoked_tokens.contains(&t));
    let cases = [(op(Command::RevokeToken { token: t }), "TokenAlreadyRevoked")];
    check(&mut h, &cases);
}

#[test]
fn a_denial_faults_the_vhm_and_its_children_and_nothing_else() {
    let mut h = H::new(LINE8);
    let a = h.root(with_quota(
        k("a", 2, 1000),
        &[(Resource::VcpuSlots, 2), (Resource::FuelUnits, 1000)],
    ));
    let child = h.nested(a, k("c", 1, 100));
    let b = h.root(k("b", 1, 100));
    let cases = [
        (
            h.as_self(
                b,
                Command::Deny {
                    vhm: Some(a),
                    denial: denial(xdv_core::DeniedOp::Submit),
                },
            ),
            "OutOfScope",
        ),
        (
            h.as_self(
                a,
                Command::Deny {
                    vhm: Some(a),
                    denial: denial(xdv_core::DeniedOp::Submit),
                },
            ),
            "OutOfScope",
        ),
        (
            h.as_self(
                a,
                Command::Deny {
                    vhm: None,
                    denial: denial(xdv_core::DeniedOp::Create),
                },
            ),
            "OutOfScope",
        ),
    ];
    check(&mut h, &cases);
    let out = h.ok(&op(Command::Deny {
        vhm: Some(a),
        denial: denial(xdv_core::DeniedOp::Submit),
    }));
    assert!(out.events.contains(&Event::VhmStopped {
        vhm: a,
        reason: StopReason::Faulted(xdv_core::FAULT_DENIED)
    }));
    assert!(out.events.contains(&Event::VhmStopped {
        vhm: child,
        reason: StopReason::ParentStopped(a)
    }));
    assert!(h.core.state().vhms.contains_key(&b));
    // A refused creation is recorded without touching any VHM.
    let before = h.core.state().vhms.len();
    let out = h.ok(&op(Command::Deny {
        vhm: None,
        denial: denial(xdv_core::DeniedOp::Create),
    }));
    assert_eq!(out.events.len(), 1);
    assert_eq!(h.core.state().vhms.len(), before);
}
