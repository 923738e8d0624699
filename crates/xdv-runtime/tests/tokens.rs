//! Capability tokens at the hypervisor's boundaries: a run that enforces tokens creates, nests,
//! submits, opens channels and keeps VHMs running only as their tokens allow; every refusal is a
//! `Deny` in the trace (faulting only the VHM concerned), every revocation a `RevokeToken`, and
//! the trace replays.

mod common;
use common::ipc_module;

use std::collections::BTreeMap;
use std::path::PathBuf;
use xdv_core::{Command, DeniedOp, DenyReason, Input};
use xdv_runtime::{run, Manifest, Options, Resume, RunError, RunReport, Sink, VhmStatus};
use xdv_token::{Authority, Domain, Grant, Operation, Restriction, Subject, Token};

const SECRET: [u8; 32] = [7; 32];

fn authority() -> Authority {
    Authority::from_secret(&SECRET).expect("authority")
}

fn grant(domains: &[Domain], operations: &[Operation]) -> Grant {
    Grant {
        domains: domains.to_vec(),
        operations: operations.to_vec(),
        amount_max: None,
        resources_max: Vec::new(),
        expires_ns: None,
    }
}

fn mint(a: &Authority, name: &str, g: &Grant) -> Token {
    a.mint(&Subject::Vhm(name.into()), g, &[name.len() as u8; 32])
        .expect("mint")
}

/// The operations `xdv run` checks: every one but `terminate` and `read`.
const RUN_OPS: [Operation; 7] = [
    Operation::Create,
    Operation::Nest,
    Operation::Reserve,
    Operation::Submit,
    Operation::Open,
    Operation::Send,
    Operation::Receive,
];

/// The three-tenants example with token files named.
const MANIFEST: &str = r#"
name = "tokens"
seed = 2026
machine = "machine.toml"

[[vhm]]
name = "alice"
token = "alice.token"
[vhm.q]
qubits = 4
shots = 3000
[vhm.phi]
modes = 8
coherence_window_ns = 50000
[[vhm.step]]
domain = "q"
circuit = "bell.qasm"
shots = 1000
[[vhm.step]]
domain = "phi"
program = "split4.toml"

[[vhm.vhm]]
name = "worker"
[vhm.vhm.q]
qubits = 2
shots = 1000
[vhm.vhm.phi]
modes = 4
coherence_window_ns = 20000
[[vhm.vhm.step]]
domain = "q"
circuit = "bell.qasm"
shots = 1000
[[vhm.vhm.step]]
domain = "phi"
program = "split4.toml"

[[vhm]]
name = "bob"
token = "bob.token"
[vhm.q]
provider = "ring8"
qubits = 3
shots = 2000
[[vhm.step]]
domain = "q"
circuit = "ghz3.qasm"
shots = 2000
"#;

fn example_files() -> BTreeMap<String, Vec<u8>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/three-tenants");
    let mut files = BTreeMap::new();
    for e in std::fs::read_dir(&dir).expect("example dir") {
        let p = e.expect("entry").path();
        let name = p.file_name().expect("name").to_string_lossy().into_owned();
        files.insert(name, std::fs::read(&p).expect("example file"));
    }
    files
}

#[derive(Default)]
struct Keep {
    trace: Vec<u8>,
}

impl Sink for Keep {
    fn commit(&mut self, trace: &[u8], _: &[(u64, Vec<u8>)]) -> Result<(), String> {
        self.trace.extend_from_slice(trace);
        Ok(())
    }
}

/// Runs `text` with `tokens` (file name → token) under the test authority's root key.
fn go(text: &str, tokens: &[(&str, &Token)]) -> (RunReport, Vec<u8>) {
    try_go(text, tokens, Some(authority().public_key())).expect("runs")
}

fn try_go(
    text: &str,
    tokens: &[(&str, &Token)],
    root: Option<Vec<u8>>,
) -> Result<(RunReport, Vec<u8>), RunError> {
    let m = Manifest::from_toml(text, "run.toml").expect("manifest");
    let mut files = example_files();
    for (name, t) in tokens {
        let text = format!("{}\n", t.to_base64().expect("base64"));
        files.insert(name.to_string(), text.into_bytes());
    }
    let machine = xdv_runtime::files::machine(&m, &files).expect("machine");
    let mut sink = Keep::default();
    let opts = Options {
        token_root: root,
        ..Options::default()
    };
    let r = run(&m, &files, machine, &opts, Resume::default(), &mut sink)?;
    Ok((r, sink.trace))
}

fn status<'a>(r: &'a RunReport, path: &str) -> &'a VhmStatus {
    &r.vhms
        .iter()
        .find(|v| v.path == path)
        .expect("vhm in report")
        .status
}

fn faulted_with(r: &RunReport, path: &str, needle: &str) {
    match status(r, path) {
        VhmStatus::Faulted(why) => assert!(why.contains(needle), "{path}: {why}"),
        s => panic!("{path} should have been refused ({needle}): {s:?}"),
    }
}

/// Every input of a trace, after replaying it (every decision re-derived and verified).
fn inputs(trace: &[u8]) -> Vec<Input> {
    xdv_trace::replay(trace, xdv_trace::ReplayOptions::default()).expect("the trace replays");
    xdv_trace::read_inputs(trace).expect("inputs")
}

fn denials(trace: &[u8]) -> Vec<(Option<xdv_core::VhmId>, xdv_core::Denial)> {
    inputs(trace)
        .into_iter()
        .filter_map(|i| match i {
            Input::Command {
                command: Command::Deny { vhm, denial },
                ..
            } => Some((vhm, denial)),
            _ => None,
        })
        .collect()
}

#[test]
fn sufficient_tokens_change_nothing_in_the_run() {
    let a = authority();
    let alice = mint(&a, "alice", &grant(&[Domain::Q, Domain::Phi], &RUN_OPS));
    let bob = mint(&a, "bob", &grant(&[Domain::Q], &RUN_OPS));
    let (r, trace) = go(MANIFEST, &[("alice.token", &alice), ("bob.token", &bob)]);
    for v in &r.vhms {
        assert_eq!(v.status, VhmStatus::Finished, "{}", v.path);
    }
    assert!(denials(&trace).is_empty());
    // The same run without tokens (the operator's authority) makes the same decisions.
    let plain: String = MANIFEST
        .lines()
        .filter(|l| !l.starts_with("token ="))
        .collect::<Vec<_>>()
        .join("\n");
    let (p, _) = try_go(&plain, &[], None).expect("runs");
    assert_eq!(p.state_hash, r.state_hash);
}

fn with(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not in the manifest");
    text.replacen(from, to, 1)
}

#[test]
fn a_missing_forged_or_insufficient_token_refuses_creation_and_nothing_else() {
    let a = authority();
    let bob = mint(&a, "bob", &grant(&[Domain::Q], &RUN_OPS));
    // alice: no token at all.
    let no_token = with(MANIFEST, "token = \"alice.token\"\n", "");
    let (r, trace) = go(&no_token, &[("bob.token", &bob)]);
    faulted_with(&r, "alice", "presents no capability token");
    faulted_with(&r, "alice/worker", "parent was not created");
    assert_eq!(*status(&r, "bob"), VhmStatus::Finished);
    let d = denials(&trace);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].0, None, "a refused creation concerns no VHM");
    assert_eq!(d[0].1.operation, DeniedOp::Create);
    assert_eq!(d[0].1.reason, DenyReason::Missing);

    // alice: a token minted by another operator.
    let other = Authority::from_secret(&[9; 32]).expect("authority");
    let forged = mint(&other, "alice", &grant(&[Domain::Q, Domain::Phi], &RUN_OPS));
    let (r, trace) = go(MANIFEST, &[("alice.token", &forged), ("bob.token", &bob)]);
    faulted_with(&r, "alice", "forged");
    assert_eq!(*status(&r, "bob"), VhmStatus::Finished);
    assert_eq!(denials(&trace)[0].1.reason, DenyReason::Forged);

    // alice: rights in Q only, but she holds Φ modes too.
    let q_only = mint(&a, "alice", &grant(&[Domain::Q], &RUN_OPS));
    let (r, trace) = go(MANIFEST, &[("alice.token", &q_only), ("bob.token", &bob)]);
    faulted_with(&r, "alice", "create");
    let d = denials(&trace);
    assert_eq!(
        (d[0].1.domain, d[0].1.reason),
        (xdv_core::Domain::Phi, DenyReason::Insufficient)
    );
    assert_eq!(*status(&r, "bob"), VhmStatus::Finished);
}

#[test]
fn a_per_resource_cap_refuses_exactly_what_exceeds_it() {
    let a = authority();
    let bob = mint(&a, "bob", &grant(&[Domain::Q], &RUN_OPS));
    let mut g = grant(&[Domain::Q, Domain::Phi], &RUN_OPS);
    // alice holds 3000 shots; her token caps shots at 2000.
    g.resources_max = vec![("shots".into(), 2000), ("logical_qubits".into(), 4)];
    let capped = mint(&a, "alice", &g);
    let (r, trace) = go(MANIFEST, &[("alice.token", &capped), ("bob.token", &bob)]);
    faulted_with(&r, "alice", "shots");
    let d = denials(&trace);
    assert_eq!(d[0].1.amount, 3000);
    // With the cap at 3000 she runs.
    g.resources_max = vec![("shots".into(), 3000)];
    let enough = mint(&a, "alice", &g);
    let (r, _) = go(MANIFEST, &[("alice.token", &enough), ("bob.token", &bob)]);
    assert_eq!(*status(&r, "alice"), VhmStatus::Finished);
}

#[test]
fn nesting_needs_the_parents_nest_right_and_a_derived_token() {
    let a = authority();
    let bob = mint(&a, "bob", &grant(&[Domain::Q], &RUN_OPS));
    // No `nest` right: alice runs, her worker is not created.
    let ops: Vec<Operation> = RUN_OPS
        .iter()
        .copied()
        .filter(|o| *o != Operation::Nest)
        .collect();
    let alice = mint(&a, "alice", &grant(&[Domain::Q, Domain::Phi], &ops));
    let (r, trace) = go(MANIFEST, &[("alice.token", &alice), ("bob.token", &bob)]);
    assert_eq!(*status(&r, "alice"), VhmStatus::Finished);
    faulted_with(&r, "alice/worker", "nest");
    assert_eq!(denials(&trace)[0].1.operation, DeniedOp::Nest);

    // The worker presents its own token, which must extend alice's.
    let alice = mint(&a, "alice", &grant(&[Domain::Q, Domain::Phi], &RUN_OPS));
    let text = with(
        MANIFEST,
        "name = \"worker\"\n",
        "name = \"worker\"\ntoken = \"worker.token\"\n",
    );
    let stranger = mint(&a, "worker", &grant(&[Domain::Q, Domain::Phi], &RUN_OPS));
    let (r, trace) = go(
        &text,
        &[
            ("alice.token", &alice),
            ("bob.token", &bob),
            ("worker.token", &stranger),
        ],
    );
    faulted_with(&r, "alice/worker", "does not extend");
    assert_eq!(denials(&trace)[0].1.reason, DenyReason::NotDerived);
    // An attenuation of alice's token is accepted.
    let narrowed = alice
        .attenuate(
            &Restriction {
                domains: Some(vec![Domain::Q, Domain::Phi]),
                ..Restriction::default()
            },
            "worker",
            &[3; 32],
        )
        .expect("attenuate");
    let (r, trace) = go(
        &text,
        &[
            ("alice.token", &alice),
            ("bob.token", &bob),
            ("worker.token", &narrowed),
        ],
    );
    assert_eq!(*status(&r, "alice/worker"), VhmStatus::Finished);
    assert!(denials(&trace).is_empty());
    // A derived token that cannot do what the worker asks: Q only.
    let q_only = alice
        .attenuate(
            &Restriction {
                domains: Some(vec![Domain::Q]),
                ..Restriction::default()
            },
            "worker",
            &[4; 32],
        )
        .expect("attenuate");
    let (r, trace) = go(
        &text,
        &[
            ("alice.token", &alice),
            ("bob.token", &bob),
            ("worker.token", &q_only),
        ],
    );
    // Created (alice may nest), then refused at its Φ step; alice herself is untouched.
    faulted_with(&r, "alice/worker", "reserve");
    assert_eq!(*status(&r, "alice"), VhmStatus::Finished);
    let d = denials(&trace);
    assert!(d[0].0.is_some());
    assert_eq!(d[0].1.domain, xdv_core::Domain::Phi);
}

#[test]
fn an_expired_token_faults_its_vhm_at_its_next_request() {
    let a = authority();
    let bob = mint(&a, "bob", &grant(&[Domain::Q], &RUN_OPS));
    // The machine's tick is 1 ms: alice is created and submits her first step at 0 ns, her
    // second (Φ) after the first completed, at 1 ms — past the token's expiry at 0.5 ms.
    let mut g = grant(&[Domain::Q, Domain::Phi], &RUN_OPS);
    g.expires_ns = Some(500_000);
    let alice = mint(&a, "alice", &g);
    let (r, trace) = go(MANIFEST, &[("alice.token", &alice), ("bob.token", &bob)]);
    faulted_with(&r, "alice", "expired");
    assert_eq!(*status(&r, "bob"), VhmStatus::Finished);
    let v = r.vhms.iter().find(|v| v.path == "alice").expect("alice");
    assert_eq!(v.results.len(), 1, "her first step ran before expiry");
    assert_eq!(denials(&trace)[0].1.reason, DenyReason::Expired);
}

#[test]
fn revocations_refuse_tokens_from_their_tick_on_and_are_in_the_trace() {
    let a = authority();
    let alice = mint(&a, "alice", &grant(&[Domain::Q, Domain::Phi], &RUN_OPS));
    let bob = mint(&a, "bob", &grant(&[Domain::Q], &RUN_OPS));
    let bob_id = bob.revocation_ids()[0].clone();
    // Revoked before the run: bob is never created.
    let text = format!("{MANIFEST}\n[[revoke]]\nid = \"{bob_id}\"\n");
    let (r, trace) = go(&text, &[("alice.token", &alice), ("bob.token", &bob)]);
    faulted_with(&r, "bob", "revoked");
    assert_eq!(*status(&r, "alice"), VhmStatus::Finished);
    let revoked: Vec<Input> = inputs(&trace)
        .into_iter()
        .filter(|i| {
            matches!(
                i,
                Input::Command {
                    command: Command::RevokeToken { .. },
                    ..
                }
            )
        })
        .collect();
    assert_eq!(revoked.len(), 1);
    // Revoking alice's block at tick 1 stops her (and her worker) while they run; revoking
    // the parent's block also revokes every token derived from it.
    let alice_id = alice.revocation_ids()[0].clone();
    let text = format!("{MANIFEST}\n[[revoke]]\nid = \"{alice_id}\"\nat_tick = 1\n");
    let (r, trace) = go(&text, &[("alice.token", &alice), ("bob.token", &bob)]);
    faulted_with(&r, "alice", "revoked");
    assert!(matches!(status(&r, "alice/worker"), VhmStatus::Faulted(_)));
    assert_eq!(*status(&r, "bob"), VhmStatus::Finished);
    let d = denials(&trace);
    assert_eq!(d.len(), 1, "{d:?}");
    assert_eq!(d[0].1.operation, DeniedOp::Hold);
    // In the trace the revocation comes first, then the denial it caused.
    let all = inputs(&trace);
    let at = |f: &dyn Fn(&Command) -> bool| {
        all.iter()
            .position(|i| matches!(i, Input::Command { command, .. } if f(command)))
            .expect("in the trace")
    };
    assert!(
        at(&|c| matches!(c, Command::RevokeToken { .. }))
            < at(&|c| matches!(c, Command::Deny { .. }))
    );
    let (_, core) =
        xdv_trace::replay(&trace, xdv_trace::ReplayOptions::default()).expect("replays");
    assert_eq!(core.state().revoked_tokens.len(), 1);
}

#[test]
fn tokens_without_a_root_key_and_revocations_without_tokens_are_refused() {
    let a = authority();
    let alice = mint(&a, "alice", &grant(&[Domain::Q, Domain::Phi], &RUN_OPS));
    let bob = mint(&a, "bob", &grant(&[Domain::Q], &RUN_OPS));
    match try_go(
        MANIFEST,
        &[("alice.token", &alice), ("bob.token", &bob)],
        None,
    ) {
        Err(RunError::Unsupported { message, hint, .. }) => {
            assert!(message.contains("no token root key"), "{message}");
            assert!(hint.contains("--token-root"), "{hint}");
        }
        other => panic!("expected a refusal: {:?}", other.map(|r| r.0.state_hash)),
    }
    // Revocations need a run that checks tokens.
    let plain: String = MANIFEST
        .lines()
        .filter(|l| !l.starts_with("token ="))
        .collect::<Vec<_>>()
        .join("\n");
    let text = format!("{plain}\n[[revoke]]\nid = \"ab12\"\n");
    match try_go(&text, &[], None) {
        Err(RunError::Unsupported { key, .. }) => assert_eq!(key, "revoke[0]"),
        other => panic!("expected a refusal: {:?}", other.map(|r| r.0.state_hash)),
    }
}

#[test]
fn every_message_is_checked_against_its_senders_token_before_it_is_queued() {
    // `ping` sends "ping" (4 bytes) once and prints the status; `pong` waits for a message and
    // prints it (yielding while none is there).
    let ping = ipc_module(
        "ping",
        "(local.set $n (call $chan_send (i32.const 0) (i32.const 1024) (i32.const 4)))
         (i32.store (i32.const 3000) (i32.add (i32.const 48) (i32.sub (i32.const 0) (local.get $n))))
         (i32.store (i32.const 0) (i32.const 3000))
         (i32.store (i32.const 4) (i32.const 1))
         (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))",
    );
    let pong = ipc_module(
        "",
        "(loop $l
           (local.set $len (call $chan_recv (i32.const 0) (i32.const 2048) (i32.const 64)))
           (if (i32.gt_s (local.get $len) (i32.const 0))
             (then
               (i32.store (i32.const 0) (i32.const 2048))
               (i32.store (i32.const 4) (local.get $len))
               (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
             (else (call $yield) (br $l))))",
    );
    let text = "name = \"ipc\"\n\
        [[vhm]]\nname = \"ping\"\ntoken = \"ping.token\"\n[vhm.k]\nguest = \"ping.wat\"\nfuel_units = 3000000\n\
        [[vhm]]\nname = \"pong\"\ntoken = \"pong.token\"\n[vhm.k]\nguest = \"pong.wat\"\nfuel_units = 3000000\n\
        [[channel]]\nbetween = [\"ping\", \"pong\"]\n";
    let a = authority();
    let pong_token = mint(&a, "pong", &grant(&[Domain::K], &RUN_OPS));
    let run_with = |ping_token: &Token| {
        let m = Manifest::from_toml(text, "ipc.toml").expect("parses");
        let mut files = BTreeMap::from([
            ("ping.wat".to_string(), ping.clone()),
            ("pong.wat".to_string(), pong.clone()),
        ]);
        for (n, t) in [("ping.token", ping_token), ("pong.token", &pong_token)] {
            files.insert(n.into(), t.to_base64().expect("base64").into_bytes());
        }
        let mut sink = Keep::default();
        let opts = Options {
            token_root: Some(a.public_key()),
            ..Options::default()
        };
        let r = run(
            &m,
            &files,
            xdv_core::Machine::default_machine(),
            &opts,
            Resume::default(),
            &mut sink,
        )
        .expect("runs");
        (r, sink.trace)
    };
    let stdout = |r: &RunReport, p: &str| -> Option<String> {
        r.vhms
            .iter()
            .find(|v| v.path == p)
            .and_then(|v| v.results.first())
            .and_then(|x| x["stdout"].as_str().map(str::to_string))
    };
    // With the right to send, the message arrives.
    let (r, _) = run_with(&mint(&a, "ping", &grant(&[Domain::K], &RUN_OPS)));
    assert_eq!(stdout(&r, "pong").as_deref(), Some("ping"));
    assert_eq!(
        stdout(&r, "ping").as_deref(),
        Some("0"),
        "chan_send returned 0"
    );
    // Without it (or with a 3-byte cap), the send is refused before the message is queued: the
    // guest sees E_DENIED (-4), its VHM faults, pong never gets the message.
    let no_send: Vec<Operation> = RUN_OPS
        .iter()
        .copied()
        .filter(|o| *o != Operation::Send)
        .collect();
    let mut capped = grant(&[Domain::K], &RUN_OPS);
    capped.resources_max = vec![("message_bytes".into(), 3)];
    for t in [
        mint(&a, "ping", &grant(&[Domain::K], &no_send)),
        mint(&a, "ping", &capped),
    ] {
        let (r, trace) = run_with(&t);
        faulted_with(&r, "ping", "send 4 message_bytes");
        assert_ne!(stdout(&r, "pong").as_deref(), Some("ping"));
        assert_eq!(r.messages, 0);
        let d = denials(&trace);
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(d[0].1.operation, DeniedOp::Send);
        assert_eq!(d[0].1.amount, 4);
    }
}
