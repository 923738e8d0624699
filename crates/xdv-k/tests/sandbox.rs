//! The sandbox on small WebAssembly text guests: fuel, slices, memory and stack limits,
//! malformed modules, link errors, ABI misuse, Q and Φ jobs, IPC, many guests at once.

use std::path::Path;
use xdv_k::{Channel, EngineLimits, Exit, GuestReport, Limits, RunConfig, Sandbox, TrapKind};

fn sandbox() -> Sandbox {
    Sandbox::new(EngineLimits::default()).expect("sandbox")
}

fn wat_file(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/wat")
        .join(name);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn cfg(fuel_max: u64, fuel_per_slice: u64) -> RunConfig {
    RunConfig {
        limits: Limits {
            fuel_max,
            fuel_per_slice,
            ..Limits::default()
        },
        ..RunConfig::default()
    }
}

fn run_text(sb: &Sandbox, text: &str, cfg: &RunConfig) -> GuestReport {
    let guest = sb.compile(text.as_bytes()).expect("compiles");
    sb.run(&guest, cfg).expect("runs")
}

fn kind(r: &GuestReport) -> Option<TrapKind> {
    r.trap.as_ref().map(|t| t.kind)
}

/// A module importing every `xdv` function and WASI `fd_write`, with `data` at address 1024 and
/// `body` as `_start`; `$print` writes `len` bytes at `ptr` to stdout.
fn abi_module(data: &str, body: &str) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "xdv" "abi_version" (func $abi_version (result i32)))
  (import "xdv" "q_submit" (func $q_submit (param i32 i32) (result i32)))
  (import "xdv" "phi_submit" (func $phi_submit (param i32 i32) (result i32)))
  (import "xdv" "await_next" (func $await_next (result i32)))
  (import "xdv" "result_len" (func $result_len (param i32) (result i32)))
  (import "xdv" "result_read" (func $result_read (param i32 i32 i32) (result i32)))
  (import "xdv" "job_release" (func $job_release (param i32)))
  (import "xdv" "chan_send" (func $chan_send (param i32 i32 i32) (result i32)))
  (import "xdv" "chan_peek_len" (func $chan_peek_len (param i32) (result i32)))
  (import "xdv" "chan_recv" (func $chan_recv (param i32 i32 i32) (result i32)))
  (import "xdv" "log" (func $log (param i32 i32 i32)))
  (import "xdv" "yield" (func $yield))
  (memory (export "memory") 2)
  (data (i32.const 1024) "{data}")
  (func $print (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start") (local $job i32) (local $n i32)
{body}))"#
    )
}

/// Escapes `s` for a WebAssembly text string.
fn esc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'"' | b'\\' => format!("\\{:02x}", b),
            b'\n' => "\\0a".to_string(),
            0x20..=0x7e => (b as char).to_string(),
            _ => format!("\\{b:02x}"),
        })
        .collect()
}

/// Submits the Q request at 1024 (`len` bytes), awaits it, and prints its result.
fn submit_and_print(submit: &str, len: usize) -> String {
    format!(
        "(local.set $job (call ${submit} (i32.const 1024) (i32.const {len})))
         (if (i32.ne (call $await_next) (local.get $job)) (then unreachable))
         (local.set $n (call $result_read (local.get $job) (i32.const 32768) (i32.const 32768)))
         (call $print (i32.const 32768) (local.get $n))
         (call $job_release (local.get $job))"
    )
}

#[test]
fn endless_loop_stops_at_the_fuel_limit() {
    let sb = sandbox();
    for (fuel, slice) in [
        (10_000u64, 1_000u64),
        (1_000_000, 999),
        (1_000_000, 1_000_000),
    ] {
        let r = run_text(&sb, &wat_file("loop.wat"), &cfg(fuel, slice));
        assert_eq!(kind(&r), Some(TrapKind::OutOfFuel), "{r:?}");
        assert_eq!(r.fuel_consumed, fuel);
        // One slice per fuel_per_slice units consumed, the last one ending in the trap.
        assert_eq!(r.slices, fuel.div_ceil(slice), "fuel {fuel}, slice {slice}");
    }
}

fn count_module(n: u32) -> String {
    wat_file("count.wat").replace("(i32.const N)", &format!("(i32.const {n})"))
}

#[test]
fn the_result_does_not_depend_on_slicing() {
    let sb = sandbox();
    let text = count_module(100_000);
    let reference = run_text(&sb, &text, &cfg(10_000_000, u64::MAX / 2));
    assert_eq!(reference.exit, Exit::Ok, "{reference:?}");
    assert_eq!(reference.slices, 1);
    assert_eq!(reference.stdout, b"done\n");
    for slice in [1u64, 7, 1000, 4096, 77_777, 1_000_000] {
        if slice == 1 {
            // One unit per slice: check a shorter count (each slice is a host round trip).
            let short = count_module(2000);
            let a = run_text(&sb, &short, &cfg(10_000_000, 1));
            let b = run_text(&sb, &short, &cfg(10_000_000, 1 << 40));
            assert_eq!((a.fuel_consumed, &a.stdout), (b.fuel_consumed, &b.stdout));
            // Fuel is checked at function entries and loop headers: one slice per check.
            assert!(
                a.slices > 2000 && a.slices <= a.fuel_consumed,
                "{} slices",
                a.slices
            );
            continue;
        }
        let r = run_text(&sb, &text, &cfg(10_000_000, slice));
        assert_eq!(r.exit, Exit::Ok, "slice {slice}: {r:?}");
        assert_eq!(r.fuel_consumed, reference.fuel_consumed, "slice {slice}");
        assert_eq!(r.stdout, reference.stdout, "slice {slice}");
        // A slice ends at the first fuel check (function entry, loop header; this loop checks
        // every 8 units) at or after `slice` units.
        let most = r.fuel_consumed.div_ceil(slice) + 1;
        let least = r.fuel_consumed / (slice + 16);
        assert!(
            (least..=most).contains(&r.slices),
            "slice {slice}: {} slices for {} fuel",
            r.slices,
            r.fuel_consumed
        );
    }
}

#[test]
fn fuel_is_linear_in_the_work_and_the_same_on_every_run() {
    let sb = sandbox();
    let f = |n| run_text(&sb, &count_module(n), &cfg(100_000_000, 10_000)).fuel_consumed;
    let (a, b, c) = (f(1000), f(2000), f(3000));
    assert!(a > 1000, "each iteration costs fuel: {a}");
    assert_eq!(b - a, c - b, "the loop's cost per iteration is constant");
    assert_eq!(f(2000), b, "the same on a second run");
}

#[test]
fn memory_bomb_stops_at_the_limit() {
    let sb = sandbox();
    for mib in [1u64, 3, 16] {
        let mut c = cfg(100_000_000, 100_000);
        c.limits.memory_bytes_max = mib << 20;
        let r = run_text(&sb, &wat_file("membomb.wat"), &c);
        assert_eq!(kind(&r), Some(TrapKind::MemoryLimit), "{r:?}");
        let msg = &r.trap.as_ref().unwrap().message;
        // The first growth refused is the one page past the limit.
        let desired = (mib << 20) + 65536;
        assert!(msg.contains(&format!("grow to {desired} bytes")), "{msg}");
    }
}

#[test]
fn initial_memory_past_the_limit_traps_memory_limit() {
    let sb = sandbox();
    let mut c = cfg(1_000_000, 1_000_000);
    c.limits.memory_bytes_max = 16 << 20;
    let r = run_text(&sb, &wat_file("big-initial.wat"), &c);
    assert_eq!(kind(&r), Some(TrapKind::MemoryLimit), "{r:?}");
    c.limits.memory_bytes_max = 32 << 20;
    let r = run_text(&sb, &wat_file("big-initial.wat"), &c);
    assert_eq!(r.exit, Exit::Ok, "{r:?}");
}

#[test]
fn traps_are_reported_by_kind() {
    let sb = sandbox();
    let cases: &[(&str, TrapKind)] = &[
        ("stack.wat", TrapKind::StackOverflow),
        ("unreachable.wat", TrapKind::Unreachable),
        ("bad-import.wat", TrapKind::Link),
        ("no-start.wat", TrapKind::Link),
    ];
    for (file, want) in cases {
        let r = run_text(&sb, &wat_file(file), &cfg(1_000_000_000, 1_000_000));
        assert_eq!(kind(&r), Some(*want), "{file}: {r:?}");
        assert_eq!(r.exit, Exit::Trap);
    }
}

#[test]
fn stack_overflow_is_deterministic() {
    let sb = sandbox();
    let a = run_text(&sb, &wat_file("stack.wat"), &cfg(1_000_000_000, 1000));
    let b = run_text(
        &sb,
        &wat_file("stack.wat"),
        &cfg(1_000_000_000, 1_000_000_000),
    );
    assert_eq!(kind(&a), Some(TrapKind::StackOverflow));
    assert_eq!(a.fuel_consumed, b.fuel_consumed);
}

#[test]
fn malformed_modules_are_refused_by_kind() {
    let sb = sandbox();
    let cases: &[(&str, &[u8])] = &[
        ("garbage", b"\x00asm\x07\x00\x00\x00garbage"),
        ("empty", b""),
        ("truncated", b"\x00asm\x01\x00\x00\x00\x01\x05"),
        (
            "text syntax error",
            b"(module (func (export \"_start\") (i32.add)))",
        ),
        ("text typo", b"(modul)"),
    ];
    for (name, bytes) in cases {
        let err = sb
            .compile(bytes)
            .err()
            .unwrap_or_else(|| panic!("{name} compiled"));
        assert_eq!(err.kind, TrapKind::MalformedModule, "{name}: {err:?}");
        assert!(!err.message.is_empty());
    }
    // A text error names its line and column.
    let err = sb
        .compile(b"(module\n  (func (export \"_start\") (i32.bogus)))")
        .err()
        .unwrap();
    assert!(err.message.contains(":2:"), "{}", err.message);
}

#[test]
fn abi_misuse_traps_that_guest_only() {
    let sb = sandbox();
    // (case, body); memory is 2 pages = 131072 bytes.
    let cases: &[(&str, &str)] = &[
        (
            "pointer past memory",
            "(drop (call $q_submit (i32.const 131070) (i32.const 16)))",
        ),
        (
            "negative pointer",
            "(drop (call $q_submit (i32.const -8) (i32.const 4)))",
        ),
        (
            "huge length",
            "(drop (call $q_submit (i32.const 0) (i32.const 2147483647)))",
        ),
        (
            "length wraps",
            "(drop (call $phi_submit (i32.const 16) (i32.const -1)))",
        ),
        ("unknown job", "(drop (call $result_len (i32.const 7)))"),
        ("negative job", "(drop (call $result_len (i32.const -1)))"),
        ("release unknown job", "(call $job_release (i32.const 0))"),
        (
            "unknown channel",
            "(drop (call $chan_send (i32.const 0) (i32.const 0) (i32.const 1)))",
        ),
        (
            "recv unknown channel",
            "(drop (call $chan_recv (i32.const 3) (i32.const 0) (i32.const 1)))",
        ),
        (
            "bad log level",
            "(call $log (i32.const 9) (i32.const 0) (i32.const 1))",
        ),
        (
            "log past memory",
            "(call $log (i32.const 2) (i32.const 131000) (i32.const 100))",
        ),
        (
            "read result before await",
            "(local.set $job (call $q_submit (i32.const 1024) (i32.const 2)))
             (drop (call $result_len (local.get $job)))",
        ),
        (
            "result buffer past memory",
            "(local.set $job (call $q_submit (i32.const 1024) (i32.const 2)))
             (drop (call $await_next))
             (drop (call $result_read (local.get $job) (i32.const 131000) (i32.const 1000)))",
        ),
        (
            "use after release",
            "(local.set $job (call $q_submit (i32.const 1024) (i32.const 2)))
             (drop (call $await_next))
             (call $job_release (local.get $job))
             (drop (call $result_len (local.get $job)))",
        ),
    ];
    let mut guests = Vec::new();
    for (_, body) in cases {
        guests.push(
            sb.compile(abi_module("{}", body).as_bytes())
                .expect("compiles"),
        );
    }
    // A well-behaved guest runs among them and is unaffected.
    let good = sb.compile(count_module(5000).as_bytes()).unwrap();
    let mut specs: Vec<(&xdv_k::Guest, RunConfig)> =
        guests.iter().map(|g| (g, cfg(10_000_000, 1000))).collect();
    specs.push((&good, cfg(10_000_000, 1000)));
    let reports = sb.run_many(&specs, &[]).unwrap();
    for ((name, _), r) in cases.iter().zip(&reports) {
        assert_eq!(kind(r), Some(TrapKind::AbiMisuse), "{name}: {r:?}");
        assert!(
            r.trap.as_ref().unwrap().message.starts_with("xdv."),
            "{name}"
        );
    }
    let last = reports.last().unwrap();
    assert_eq!(last.exit, Exit::Ok);
    assert_eq!(last.stdout, b"done\n");
}

#[test]
fn a_q_job_reaches_the_simulator() {
    let sb = sandbox();
    let qasm = "OPENQASM 2.0; include \"qelib1.inc\"; qreg q[2]; creg c[2]; h q[0]; cx q[0],q[1]; measure q -> c;";
    let req = serde_json::json!({"qasm": qasm, "shots": 1000, "seed": 5}).to_string();
    let text = abi_module(&esc(&req), &submit_and_print("q_submit", req.len()));
    let r = run_text(&sb, &text, &cfg(100_000_000, 10_000));
    assert_eq!(r.exit, Exit::Ok, "{r:?}");
    let doc: serde_json::Value = serde_json::from_slice(&r.stdout).expect("result JSON");
    assert_eq!(doc["ok"], true, "{doc}");
    let counts = doc["counts"].as_object().unwrap();
    let total: u64 = counts.values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!(total, 1000);
    assert!(counts.keys().all(|k| k == "00" || k == "11"), "{doc}");
    // The same counts as the simulator gives directly for that seed.
    let c = xdv_q::qasm::parse(qasm, "x", &xdv_q::qasm::Options::default()).unwrap();
    let direct = xdv_q::exec::run::<f64>(
        &c,
        &xdv_q::Fast::new(1),
        &xdv_q::RunOptions {
            shots: 1000,
            seed: 5,
            ..Default::default()
        },
    )
    .unwrap();
    let direct = serde_json::to_value(&direct.counts).unwrap();
    assert_eq!(doc["counts"], direct);
    assert_eq!(r.jobs.len(), 1);
    assert!(r.jobs[0].ok);
}

#[test]
fn an_exact_expectation_job() {
    let sb = sandbox();
    // RY(θ)|0⟩: ⟨Z⟩ = cos θ, ⟨X⟩ = sin θ.
    let theta = 0.7f64;
    let qasm =
        "OPENQASM 3.0; include \"stdgates.inc\"; input float theta; qubit[1] q; ry(theta) q[0];";
    let req =
        serde_json::json!({"qasm": qasm, "params": {"theta": theta}, "observable": "0.5*Z + 2*X"})
            .to_string();
    let text = abi_module(&esc(&req), &submit_and_print("q_submit", req.len()));
    let r = run_text(&sb, &text, &cfg(100_000_000, 10_000));
    let doc: serde_json::Value = serde_json::from_slice(&r.stdout).expect("result JSON");
    let e = doc["expectation"].as_f64().unwrap();
    assert!(
        (e - (0.5 * theta.cos() + 2.0 * theta.sin())).abs() < 1e-12,
        "{doc}"
    );
}

#[test]
fn a_bad_job_is_an_error_result_not_a_trap() {
    let sb = sandbox();
    let cases: &[(&str, &str)] = &[
        ("not json", "qasm"),
        (
            r#"{"qasm": "OPENQASM 2.0; qreg q[1]; bogus q[0];", "shots": 10}"#,
            "qasm",
        ),
        (
            r#"{"qasm": "OPENQASM 2.0; qreg q[30];", "shots": 10}"#,
            "limit",
        ),
        (
            r#"{"qasm": "OPENQASM 2.0; qreg q[1];", "shots": 0}"#,
            "limit",
        ),
        (r#"{"qasm": "OPENQASM 2.0; qreg q[1];"}"#, "request"),
        (
            r#"{"qasm": "OPENQASM 2.0; qreg q[1];", "observable": "ZZQ"}"#,
            "observable",
        ),
        (
            r#"{"qasm": "OPENQASM 2.0; qreg q[1];", "colour": 1}"#,
            "request",
        ),
    ];
    for (req, want) in cases {
        let text = abi_module(&esc(req), &submit_and_print("q_submit", req.len()));
        let r = run_text(&sb, &text, &cfg(100_000_000, 10_000));
        assert_eq!(r.exit, Exit::Ok, "{req}: {r:?}");
        let doc: serde_json::Value = serde_json::from_slice(&r.stdout).expect("result JSON");
        assert_eq!(doc["ok"], false, "{req}");
        let kind = doc["error"]["kind"].as_str().unwrap();
        let want = if *req == "not json" { "request" } else { want };
        assert_eq!(kind, want, "{req}: {doc}");
        assert!(!doc["error"]["message"].as_str().unwrap().is_empty());
        assert!(!r.jobs[0].ok);
    }
}

#[test]
fn a_phi_job_reaches_the_simulator() {
    let sb = sandbox();
    let program = "modes = 2\ninput = [[1, 0], [0, 0]]\n\n[[op]]\nkind = \"mzi\"\nmodes = [0, 1]\ntheta = 0.7853981633974483\nphi = 0.0\n";
    let text = abi_module(
        &esc(program),
        &submit_and_print("phi_submit", program.len()),
    );
    let r = run_text(&sb, &text, &cfg(100_000_000, 10_000));
    assert_eq!(r.exit, Exit::Ok, "{r:?}");
    let doc: serde_json::Value = serde_json::from_slice(&r.stdout).expect("result JSON");
    assert_eq!(doc["ok"], true, "{doc}");
    let direct = xdv_phi::sim::run(&xdv_phi::Program::from_toml(program, "x").unwrap(), 0).unwrap();
    assert_eq!(doc["result"], direct.to_json());
}

#[test]
fn jobs_in_flight_are_limited() {
    let sb = sandbox();
    // Submit 5 jobs without releasing: with a limit of 3, the 4th and 5th return E_BUSY (-2),
    // which the guest prints as the byte 'B'; a success prints 'J'.
    let body = "(local.set $n (i32.const 0))
        (loop $l
          (if (i32.lt_s (call $q_submit (i32.const 1024) (i32.const 2)) (i32.const 0))
            (then (i32.store8 (i32.const 2048) (i32.const 66)))
            (else (i32.store8 (i32.const 2048) (i32.const 74))))
          (call $print (i32.const 2048) (i32.const 1))
          (local.set $n (i32.add (local.get $n) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $n) (i32.const 5))))";
    let mut c = cfg(100_000_000, 10_000);
    c.limits.jobs_in_flight_max = 3;
    let r = run_text(&sb, &abi_module("{}", body), &c);
    assert_eq!(r.stdout, b"JJJBB", "{r:?}");
    assert_eq!(r.jobs.len(), 3);
}

#[test]
fn yield_ends_a_slice() {
    let sb = sandbox();
    let body = "(call $yield) (call $yield) (call $yield)";
    let r = run_text(&sb, &abi_module("", body), &cfg(1_000_000, 1_000_000));
    assert_eq!(r.exit, Exit::Ok);
    assert_eq!(r.yields, 3);
    assert_eq!(r.slices, 4);
}

#[test]
fn log_lines_are_kept_up_to_the_limit() {
    let sb = sandbox();
    let body = "(call $log (i32.const 2) (i32.const 1024) (i32.const 5))
                (call $log (i32.const 4) (i32.const 1024) (i32.const 5))
                (call $log (i32.const 0) (i32.const 1024) (i32.const 5))";
    let mut c = cfg(1_000_000, 1_000_000);
    c.limits.log_bytes_max = 10;
    let r = run_text(&sb, &abi_module("hello", body), &c);
    assert_eq!(r.log.len(), 2);
    assert_eq!((r.log[0].level, r.log[0].text.as_str()), ("info", "hello"));
    assert_eq!(r.log[1].level, "error");
    assert_eq!(r.log_dropped_bytes, 5);
}

#[test]
fn ipc_between_two_guests() {
    let sb = sandbox();
    // The sender sends "ping" three times on its channel 0; the receiver polls (yielding while
    // the queue is empty) and prints each message.
    let sender = abi_module(
        "ping",
        "(local.set $n (i32.const 0))
         (loop $l
           (if (i32.ne (call $chan_send (i32.const 0) (i32.const 1024) (i32.const 4)) (i32.const 0))
             (then unreachable))
           (call $yield)
           (local.set $n (i32.add (local.get $n) (i32.const 1)))
           (br_if $l (i32.lt_u (local.get $n) (i32.const 3))))",
    );
    let receiver = abi_module(
        "",
        "(local.set $job (i32.const 0))
         (loop $l
           (local.set $n (call $chan_recv (i32.const 0) (i32.const 4096) (i32.const 64)))
           (if (i32.ge_s (local.get $n) (i32.const 0))
             (then (call $print (i32.const 4096) (local.get $n))
                   (local.set $job (i32.add (local.get $job) (i32.const 1))))
             (else (call $yield)))
           (br_if $l (i32.lt_u (local.get $job) (i32.const 3))))",
    );
    let (s, r) = (
        sb.compile(sender.as_bytes()).unwrap(),
        sb.compile(receiver.as_bytes()).unwrap(),
    );
    // The receiver first: it must wait for the sender.
    let reports = sb
        .run_many(
            &[(&r, cfg(10_000_000, 1000)), (&s, cfg(10_000_000, 1000))],
            &[Channel { a: 1, b: 0 }],
        )
        .unwrap();
    assert_eq!(reports[0].exit, Exit::Ok, "{:?}", reports[0]);
    assert_eq!(reports[0].stdout, b"pingpingping");
    assert_eq!(reports[1].messages_sent, 3);
    // And the same again: deterministic interleaving.
    let again = sb
        .run_many(
            &[(&r, cfg(10_000_000, 1000)), (&s, cfg(10_000_000, 1000))],
            &[Channel { a: 1, b: 0 }],
        )
        .unwrap();
    assert_eq!(reports, again);
}

#[test]
fn a_small_receive_buffer_keeps_the_message() {
    let sb = sandbox();
    // A loopback channel gives the guest both ends, handles 0 and 1. Send 4 bytes on 0; on 1,
    // receive into 2 bytes (E_TOO_SMALL = -3), peek (4), receive into 8 and print; then both
    // ends are empty (E_NONE = -1).
    let body = "(drop (call $chan_send (i32.const 0) (i32.const 1024) (i32.const 4)))
        (if (i32.ne (call $chan_recv (i32.const 1) (i32.const 4096) (i32.const 2)) (i32.const -3)) (then unreachable))
        (if (i32.ne (call $chan_peek_len (i32.const 1)) (i32.const 4)) (then unreachable))
        (local.set $n (call $chan_recv (i32.const 1) (i32.const 4096) (i32.const 8)))
        (call $print (i32.const 4096) (local.get $n))
        (if (i32.ne (call $chan_recv (i32.const 1) (i32.const 4096) (i32.const 8)) (i32.const -1)) (then unreachable))
        (if (i32.ne (call $chan_recv (i32.const 0) (i32.const 4096) (i32.const 8)) (i32.const -1)) (then unreachable))";
    let g = sb.compile(abi_module("abcd", body).as_bytes()).unwrap();
    let reports = sb
        .run_many(
            &[(&g, cfg(1_000_000, 1_000_000))],
            &[Channel { a: 0, b: 0 }],
        )
        .unwrap();
    assert_eq!(reports[0].exit, Exit::Ok, "{:?}", reports[0]);
    assert_eq!(reports[0].stdout, b"abcd");
}

#[test]
fn many_guests_at_once() {
    let sb = sandbox();
    let files = ["loop.wat", "membomb.wat", "stack.wat", "unreachable.wat"];
    let mut guests = Vec::new();
    for f in files {
        guests.push((sb.compile(wat_file(f).as_bytes()).unwrap(), Some(f)));
    }
    for n in [1000u32, 20_000, 300] {
        guests.push((sb.compile(count_module(n).as_bytes()).unwrap(), None));
    }
    let mut specs = Vec::new();
    for i in 0..32 {
        let (g, _) = &guests[i % guests.len()];
        let mut c = cfg(5_000_000, 1000 + i as u64);
        c.limits.memory_bytes_max = 2 << 20;
        specs.push((g, c));
    }
    let reports = sb.run_many(&specs, &[]).unwrap();
    // Each guest alone gives the same report as in the crowd.
    for (i, r) in reports.iter().enumerate() {
        let alone = sb.run(specs[i].0, &specs[i].1).unwrap();
        assert_eq!(r, &alone, "guest {i}");
        let want = match guests[i % guests.len()].1 {
            Some("loop.wat") => Some(TrapKind::OutOfFuel),
            Some("membomb.wat") => Some(TrapKind::MemoryLimit),
            Some("stack.wat") => Some(TrapKind::StackOverflow),
            Some("unreachable.wat") => Some(TrapKind::Unreachable),
            _ => None,
        };
        assert_eq!(kind(r), want, "guest {i}");
    }
}

#[test]
fn too_many_guests_or_bad_channels_are_refused() {
    let sb = Sandbox::new(EngineLimits {
        guests_at_once_max: 2,
        ..EngineLimits::default()
    })
    .unwrap();
    let g = sb.compile(wat_file("unreachable.wat").as_bytes()).unwrap();
    let c = RunConfig::default();
    assert!(sb
        .run_many(&[(&g, c.clone()), (&g, c.clone()), (&g, c.clone())], &[])
        .is_err());
    assert!(sb
        .run_many(&[(&g, c.clone())], &[Channel { a: 0, b: 1 }])
        .is_err());
    let mut z = c.clone();
    z.limits.fuel_per_slice = 0;
    assert!(sb.run(&g, &z).is_err());
}

#[test]
fn stdout_is_bounded() {
    let sb = sandbox();
    // Writes 100 bytes 20 times with a 1000-byte stdout limit.
    let body = "(local.set $n (i32.const 0))
        (loop $l
          (call $print (i32.const 1024) (i32.const 100))
          (local.set $n (i32.add (local.get $n) (i32.const 1)))
          (br_if $l (i32.lt_u (local.get $n) (i32.const 20))))";
    let mut c = cfg(10_000_000, 10_000);
    c.limits.stdout_bytes_max = 1000;
    let r = run_text(&sb, &abi_module(&"x".repeat(100), body), &c);
    assert!(r.stdout.len() <= 1000, "{}", r.stdout.len());
    assert!(r.stdout.len() >= 900);
    let again = run_text(&sb, &abi_module(&"x".repeat(100), body), &c);
    assert_eq!(r, again);
}

#[test]
fn a_bad_pointer_to_wasi_is_abi_misuse() {
    let sb = sandbox();
    // An iovec pointing past memory.
    let body = "(i32.store (i32.const 0) (i32.const 131000))
        (i32.store (i32.const 4) (i32.const 1000))
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))";
    let r = run_text(&sb, &abi_module("", body), &cfg(1_000_000, 1_000_000));
    assert_eq!(kind(&r), Some(TrapKind::AbiMisuse), "{r:?}");
}
