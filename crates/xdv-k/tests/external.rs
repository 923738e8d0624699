//! External job mode: a guest's Q and Φ submissions go to the session's driver, `await_next`
//! blocks until the driver delivers the result, blocked slices return their unused fuel exactly,
//! and the guest's report is the inline one whatever the slicing and the delivery delays.
//!
//! The VQE and QAOA tests need the example guests built (`cargo xtask guests`); when one is
//! missing they fail with the command that builds it, never skip.

use std::path::PathBuf;
use xdv_k::abi::PENDING_AT_END;
use xdv_k::jobs::{self, JobOutcome};
use xdv_k::{
    CompleteError, Domain, EngineLimits, Exit, Guest, GuestReport, JobMode, Limits, RunConfig,
    Sandbox, Slice, Submitted,
};

fn sandbox() -> Sandbox {
    Sandbox::new(EngineLimits::default()).expect("sandbox")
}

fn cfg(mode: JobMode, fuel_max: u64, fuel_per_slice: u64) -> RunConfig {
    RunConfig {
        limits: Limits {
            fuel_max,
            fuel_per_slice,
            ..Limits::default()
        },
        jobs: mode,
        ..RunConfig::default()
    }
}

fn example_guest(sb: &Sandbox, name: &str) -> Guest {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/guests/wasm32-wasip1/release")
        .join(format!("{name}.wasm"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}\nthe example guests are not built: run `cargo xtask guests` (or: rustup target add wasm32-wasip1 && cargo build --manifest-path examples/guests/Cargo.toml --target wasm32-wasip1 --release --target-dir target/guests)",
            path.display()
        )
    });
    sb.compile(&bytes).expect("the guest compiles")
}

/// What the driver would run for a submission: the inline simulators.
fn run_submitted(s: &Submitted, limits: &Limits) -> JobOutcome {
    match s.domain {
        Domain::Q => jobs::run_q(&s.request, s.seed, limits),
        Domain::Phi => jobs::run_phi(&s.request, s.seed, limits),
    }
}

/// One guest driven alone in External mode: each submission is completed `delays[k]` slices
/// after the slice in which it was submitted (k counting submissions, cycling through
/// `delays`); what each slice returned, and the report once every job has been completed.
fn drive(
    sb: &Sandbox,
    guest: &Guest,
    cfg: &RunConfig,
    delays: &[u64],
) -> (GuestReport, Vec<Slice>) {
    let mut session = sb.session(&[(guest, cfg.clone())], &[]).expect("session");
    let mut due: Vec<(u64, Submitted)> = Vec::new();
    let mut slices = Vec::new();
    let mut k = 0usize;
    loop {
        let out = session.slice(0);
        slices.push(out);
        let n = slices.len() as u64;
        for s in session.take_submitted() {
            assert_eq!(s.guest, 0);
            assert_eq!(s.seed, jobs::job_seed(cfg.seed, s.job));
            due.push((n + delays[k % delays.len()], s));
            k += 1;
        }
        if out == Slice::Ended {
            break;
        }
        let mut later = Vec::new();
        for (at, s) in due.drain(..) {
            if at <= n {
                session
                    .complete(s.guest, s.job, run_submitted(&s, &cfg.limits))
                    .expect("a fresh completion is accepted");
            } else {
                later.push((at, s));
            }
        }
        due = later;
        assert!(n < 10_000_000, "the guest does not end");
    }
    // A guest that ended with jobs pending gets them completed afterwards.
    for (_, s) in due {
        session
            .complete(s.guest, s.job, run_submitted(&s, &cfg.limits))
            .expect("completing a job of an ended guest is accepted");
    }
    assert_eq!(session.jobs_pending(0), 0);
    let report = session.report(0).expect("report").clone();
    (report, slices)
}

fn assert_same_report(inline: &GuestReport, ext: &GuestReport, what: &str) {
    assert_eq!(ext.exit, inline.exit, "{what}: {:?}", ext.trap);
    assert_eq!(ext.trap, inline.trap, "{what}");
    assert_eq!(ext.stdout, inline.stdout, "{what}");
    assert_eq!(ext.stderr, inline.stderr, "{what}");
    assert_eq!(ext.jobs, inline.jobs, "{what}");
    assert_eq!(ext.log, inline.log, "{what}");
    assert_eq!(ext.fuel_consumed, inline.fuel_consumed, "{what}");
    assert_eq!(ext.yields, inline.yields, "{what}");
    assert_eq!(ext.messages_sent, inline.messages_sent, "{what}");
}

#[test]
fn example_guests_give_the_inline_report_whatever_the_slicing_and_delays() {
    let sb = sandbox();
    for name in ["vqe-h2", "qaoa-maxcut"] {
        let guest = example_guest(&sb, name);
        let inline = sb
            .run(&guest, &cfg(JobMode::Inline, 10_000_000_000, 1_000_000))
            .unwrap();
        assert_eq!(inline.exit, Exit::Ok, "{name}: {:?}", inline.trap);
        assert!(!inline.jobs.is_empty());
        for (slice, delays) in [
            (1_000_000u64, &[0u64][..]),
            (10_007, &[1, 3, 0, 7][..]),
            (250_000, &[2][..]),
            (u64::MAX / 2, &[5, 0][..]),
        ] {
            let c = cfg(JobMode::External, 10_000_000_000, slice);
            let (ext, slices) = drive(&sb, &guest, &c, delays);
            let what = format!("{name}, slice {slice}, delays {delays:?}");
            assert_same_report(&inline, &ext, &what);
            let blocked = slices
                .iter()
                .filter(|s| matches!(s, Slice::Blocked { .. }))
                .count();
            assert!(
                blocked >= inline.jobs.len(),
                "{what}: every await blocks once at least ({blocked} blocked slices)"
            );
        }
        // `run_many` drives External guests itself.
        let ext = sb
            .run(&guest, &cfg(JobMode::External, 10_000_000_000, 10_007))
            .unwrap();
        assert_same_report(&inline, &ext, &format!("{name}, run_many"));
    }
}

/// A module importing the `xdv` functions and WASI `fd_write`, with `data` at address 1024 and
/// `body` as `_start`; `$print` writes `len` bytes at `ptr` to stdout; `$busy` runs `n`
/// iterations of a small loop.
fn module(data: &str, body: &str) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "xdv" "q_submit" (func $q_submit (param i32 i32) (result i32)))
  (import "xdv" "phi_submit" (func $phi_submit (param i32 i32) (result i32)))
  (import "xdv" "await_next" (func $await_next (result i32)))
  (import "xdv" "result_len" (func $result_len (param i32) (result i32)))
  (import "xdv" "result_read" (func $result_read (param i32 i32 i32) (result i32)))
  (import "xdv" "job_release" (func $job_release (param i32)))
  (import "xdv" "yield" (func $yield))
  (memory (export "memory") 2)
  (data (i32.const 1024) "{data}")
  (func $print (param $ptr i32) (param $len i32)
    (i32.store (i32.const 0) (local.get $ptr))
    (i32.store (i32.const 4) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func $busy (param $n i32) (local $i i32)
    (block $done (loop $l
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $l))))
  (func (export "_start") (local $job i32) (local $a i32) (local $b i32) (local $n i32) (local $r i32)
{body}))"#
    )
}

/// Escapes `s` for a WebAssembly text string.
fn esc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'"' | b'\\' => format!("\\{b:02x}"),
            b'\n' => "\\0a".to_string(),
            0x20..=0x7e => (b as char).to_string(),
            _ => format!("\\{b:02x}"),
        })
        .collect()
}

const BELL: &str = "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[2];\ncreg c[2];\nh q[0];\ncx q[0],q[1];\nmeasure q -> c;\n";

fn bell_request(shots: u64) -> String {
    serde_json::json!({"qasm": BELL, "shots": shots}).to_string()
}

fn compile(sb: &Sandbox, text: &str) -> Guest {
    sb.compile(text.as_bytes()).expect("compiles")
}

/// The fuel charged for the slices before the last: `fuel_per_slice` for a preempted slice,
/// less `fuel_unused` for a blocked one.
fn charged_before_last(slices: &[Slice], fuel_per_slice: u64) -> u64 {
    slices[..slices.len() - 1]
        .iter()
        .map(|s| match s {
            Slice::Preempted => fuel_per_slice,
            Slice::Blocked { fuel_unused } => {
                assert!(*fuel_unused <= fuel_per_slice);
                fuel_per_slice - fuel_unused
            }
            Slice::Ended => panic!("a slice after the end"),
        })
        .sum()
}

#[test]
fn blocked_slices_return_exactly_the_fuel_they_did_not_use() {
    // Rounds of work of different lengths, each ending in a submission and a blocking await;
    // then rounds without work, and the end. Every await blocks (the submission and the await
    // are in one slice, with no fuel check between them), so the last slice starts where the
    // last await resumes, and it uses the same fuel (the guest's tail) in every configuration:
    // fuel consumed − fuel charged for the slices before it must be that same small amount.
    let req = bell_request(4);
    let body = format!(
        "(block $end (loop $rounds
           (br_if $end (i32.ge_u (local.get $r) (i32.const 40)))
           (if (i32.lt_u (local.get $r) (i32.const 12))
             (then (call $busy (i32.add (i32.const 50) (i32.mul (local.get $r) (i32.const 397))))))
           (local.set $job (call $q_submit (i32.const 1024) (i32.const {len})))
           (if (i32.ne (call $await_next) (local.get $job)) (then unreachable))
           (call $job_release (local.get $job))
           (local.set $r (i32.add (local.get $r) (i32.const 1)))
           (br $rounds)))",
        len = req.len()
    );
    let sb = sandbox();
    let guest = compile(&sb, &module(&esc(&req), &body));
    let inline = sb
        .run(&guest, &cfg(JobMode::Inline, 100_000_000, 1_000_000))
        .unwrap();
    assert_eq!(inline.exit, Exit::Ok, "{:?}", inline.trap);
    let run = |fuel_per_slice: u64, delays: &[u64]| {
        let c = cfg(JobMode::External, 100_000_000, fuel_per_slice);
        let (ext, slices) = drive(&sb, &guest, &c, delays);
        let what = format!("slice {fuel_per_slice}, delays {delays:?}");
        assert_same_report(&inline, &ext, &what);
        assert_eq!(*slices.last().unwrap(), Slice::Ended);
        let charged = charged_before_last(&slices, fuel_per_slice);
        assert!(charged <= ext.fuel_consumed, "{what}");
        (ext.fuel_consumed - charged, what)
    };
    let mut tails = Vec::new();
    for fuel_per_slice in [333u64, 997, 10_000, 1_000_000] {
        for delays in [&[0u64][..], &[1][..], &[3, 0, 1][..]] {
            tails.push(run(fuel_per_slice, delays));
        }
    }
    let tail = tails[0].0;
    assert!(
        tail > 0 && tail < 100,
        "the tail after the last await: {tail}"
    );
    for (t, what) in &tails {
        assert_eq!(*t, tail, "{what}: fuel consumed − fuel charged");
    }
    // A preempted slice runs a few units past its fuel (to the next fuel check); blocked slices
    // pay that back from their unused fuel. With slices this small the overrun of the busy
    // rounds exceeds what the 28 rounds without work can pay back: the fuel charged then falls
    // short of the fuel consumed, never past it.
    for delays in [&[0u64][..], &[2, 1][..]] {
        let (t, what) = run(100, delays);
        assert!(t > tail, "{what}: {t}");
    }
}

#[test]
fn a_session_can_move_between_threads() {
    fn send<T: Send>() {}
    send::<xdv_k::Session>();
    send::<Submitted>();
    send::<CompleteError>();
}

#[test]
fn await_before_any_submission_is_e_none() {
    let sb = sandbox();
    let guest = compile(
        &sb,
        &module(
            "ok",
            "(if (i32.ne (call $await_next) (i32.const -1)) (then unreachable))
             (call $print (i32.const 1024) (i32.const 2))",
        ),
    );
    let c = cfg(JobMode::External, 1_000_000, 1_000);
    let mut session = sb.session(&[(&guest, c)], &[]).unwrap();
    assert_eq!(session.slice(0), Slice::Ended);
    let r = session.report(0).unwrap();
    assert_eq!(r.exit, Exit::Ok, "{:?}", r.trap);
    assert_eq!(r.stdout, b"ok");
    assert!(session.take_submitted().is_empty());
}

#[test]
fn await_delivers_the_lowest_job_only_once_it_completes() {
    let req = bell_request(100);
    // Two submissions; the first await must return 0, the second 1; job 0's result is printed.
    let body = format!(
        "(local.set $a (call $q_submit (i32.const 1024) (i32.const {len})))
         (local.set $b (call $q_submit (i32.const 1024) (i32.const {len})))
         (if (i32.ne (call $await_next) (i32.const 0)) (then unreachable))
         (local.set $n (call $result_read (i32.const 0) (i32.const 32768) (i32.const 32768)))
         (call $print (i32.const 32768) (local.get $n))
         (if (i32.ne (call $await_next) (i32.const 1)) (then unreachable))
         (if (i32.ne (call $await_next) (i32.const -1)) (then unreachable))",
        len = req.len()
    );
    let sb = sandbox();
    let guest = compile(&sb, &module(&esc(&req), &body));
    let c = cfg(JobMode::External, 1_000_000, 10_000);
    let mut session = sb.session(&[(&guest, c.clone())], &[]).unwrap();
    let Slice::Blocked { fuel_unused } = session.slice(0) else {
        panic!("the guest blocks on job 0")
    };
    assert!(fuel_unused > 0 && fuel_unused < 10_000, "{fuel_unused}");
    let subs = session.take_submitted();
    assert_eq!(
        subs.iter().map(|s| (s.guest, s.job)).collect::<Vec<_>>(),
        [(0, 0), (0, 1)]
    );
    assert_eq!(subs[0].request, req.as_bytes());
    assert_eq!(subs[0].seed, jobs::job_seed(c.seed, 0));
    assert_eq!(subs[1].seed, jobs::job_seed(c.seed, 1));
    assert_eq!(session.jobs_pending(0), 2);
    // Job 1 first: the guest still waits for job 0, and its slice is wholly unused.
    let out1 = run_submitted(&subs[1], &c.limits);
    session.complete(0, 1, out1.clone()).unwrap();
    assert_eq!(session.jobs_pending(0), 1);
    assert_eq!(
        session.slice(0),
        Slice::Blocked {
            fuel_unused: 10_000
        }
    );
    let out0 = run_submitted(&subs[0], &c.limits);
    session.complete(0, 0, out0.clone()).unwrap();
    assert_eq!(session.slice(0), Slice::Ended);
    let r = session.report(0).unwrap().clone();
    assert_eq!(r.exit, Exit::Ok, "{:?}", r.trap);
    assert_eq!(r.stdout, out0.result);
    assert_eq!(r.slices, 3);
    let inline = sb
        .run(&guest, &cfg(JobMode::Inline, 1_000_000, 10_000))
        .unwrap();
    assert_same_report(&inline, &r, "out of order");
    assert_eq!(inline.slices, 1);
}

#[test]
fn bad_completions_are_refused_and_change_nothing() {
    let req = bell_request(10);
    let body = format!(
        "(local.set $a (call $q_submit (i32.const 1024) (i32.const {len})))
         (drop (call $await_next))",
        len = req.len()
    );
    let sb = sandbox();
    let guest = compile(&sb, &module(&esc(&req), &body));
    let c = cfg(JobMode::External, 1_000_000, 10_000);
    let inline_cfg = cfg(JobMode::Inline, 1_000_000, 10_000);
    let mut session = sb
        .session(&[(&guest, c.clone()), (&guest, inline_cfg)], &[])
        .unwrap();
    assert!(matches!(session.slice(0), Slice::Blocked { .. }));
    assert_eq!(session.slice(1), Slice::Ended);
    let subs = session.take_submitted();
    assert_eq!(subs.len(), 1, "the inline guest's job ran at submission");
    let out = run_submitted(&subs[0], &c.limits);
    assert_eq!(
        session.complete(2, 0, out.clone()),
        Err(CompleteError::UnknownGuest {
            guest: 2,
            guests: 2
        })
    );
    assert_eq!(
        session.complete(0, 1, out.clone()),
        Err(CompleteError::UnknownJob {
            guest: 0,
            job: 1,
            submitted: 1
        })
    );
    assert_eq!(
        session.complete(1, 0, out.clone()),
        Err(CompleteError::AlreadyCompleted { guest: 1, job: 0 })
    );
    // Nothing changed: the guest still waits.
    assert_eq!(session.jobs_pending(0), 1);
    assert_eq!(
        session.slice(0),
        Slice::Blocked {
            fuel_unused: 10_000
        }
    );
    session.complete(0, 0, out.clone()).unwrap();
    assert_eq!(
        session.complete(0, 0, out.clone()),
        Err(CompleteError::AlreadyCompleted { guest: 0, job: 0 })
    );
    assert_eq!(session.slice(0), Slice::Ended);
    let reports = session.into_reports();
    assert_same_report(&reports[1], &reports[0], "after refusals");
    let e = CompleteError::UnknownJob {
        guest: 0,
        job: 1,
        submitted: 1,
    };
    assert!(e.to_string().contains("no job 1"), "{e}");
}

#[test]
fn a_guest_may_end_with_jobs_pending() {
    // Submits a Q and a Φ job, awaits the first, and ends without awaiting the second.
    let req = bell_request(10);
    let program = "modes = 2\ninput = [[1, 0], [0, 0]]\n\n[[op]]\nkind = \"mzi\"\nmodes = [0, 1]\ntheta = 0.7853981633974483\nphi = 0.0\n";
    let body = format!(
        "(drop (call $q_submit (i32.const 1024) (i32.const {len})))
         (drop (call $phi_submit (i32.const 4096) (i32.const {plen})))
         (drop (call $await_next))",
        len = req.len(),
        plen = program.len()
    );
    let text = module(&esc(&req), &body).replace(
        "(func $print",
        &format!(
            "(data (i32.const 4096) \"{}\")\n  (func $print",
            esc(program)
        ),
    );
    let sb = sandbox();
    let guest = compile(&sb, &text);
    let c = cfg(JobMode::External, 1_000_000, 10_000);
    let inline = sb
        .run(&guest, &cfg(JobMode::Inline, 1_000_000, 10_000))
        .unwrap();
    assert_eq!(inline.exit, Exit::Ok, "{:?}", inline.trap);
    assert_eq!(inline.jobs.len(), 2);

    let mut session = sb.session(&[(&guest, c.clone())], &[]).unwrap();
    assert!(matches!(session.slice(0), Slice::Blocked { .. }));
    let subs = session.take_submitted();
    assert_eq!(
        subs.iter().map(|s| s.domain).collect::<Vec<_>>(),
        [Domain::Q, Domain::Phi]
    );
    session
        .complete(0, 0, run_submitted(&subs[0], &c.limits))
        .unwrap();
    assert_eq!(session.slice(0), Slice::Ended);
    let r = session.report(0).unwrap().clone();
    assert_eq!(r.exit, Exit::Ok, "{:?}", r.trap);
    assert_eq!(r.fuel_consumed, inline.fuel_consumed);
    assert_eq!(r.jobs[0], inline.jobs[0]);
    assert!(!r.jobs[1].ok);
    assert_eq!(r.jobs[1].error.as_deref(), Some(PENDING_AT_END));
    assert_eq!(r.jobs[1].result_bytes, 0);
    assert_eq!(session.jobs_pending(0), 1);
    // The result still arrives: the report's record becomes the inline one.
    session
        .complete(0, 1, run_submitted(&subs[1], &c.limits))
        .unwrap();
    assert_eq!(session.jobs_pending(0), 0);
    assert_same_report(
        &inline,
        session.report(0).unwrap(),
        "completed after the end",
    );
    assert_eq!(
        session.complete(0, 1, run_submitted(&subs[1], &c.limits)),
        Err(CompleteError::AlreadyCompleted { guest: 0, job: 1 })
    );
}

#[test]
fn a_blocked_guest_polled_again_and_again_is_not_stuck_and_burns_no_fuel() {
    let req = bell_request(10);
    let body = format!(
        "(call $busy (i32.const 100))
         (local.set $a (call $q_submit (i32.const 1024) (i32.const {len})))
         (drop (call $await_next))
         (call $busy (i32.const 100))",
        len = req.len()
    );
    let sb = sandbox();
    let guest = compile(&sb, &module(&esc(&req), &body));
    // 10 slices' worth of fuel: the stuck-guest detector would kill a guest polled 13 times
    // without blocking.
    for (fuel_max, fuel_per_slice) in [(10_000u64, 1_000u64), (10_000, 1_000_000)] {
        let c = cfg(JobMode::External, fuel_max, fuel_per_slice);
        let inline = sb
            .run(&guest, &cfg(JobMode::Inline, fuel_max, fuel_per_slice))
            .unwrap();
        assert_eq!(inline.exit, Exit::Ok, "{:?}", inline.trap);
        let mut session = sb.session(&[(&guest, c.clone())], &[]).unwrap();
        let first = loop {
            match session.slice(0) {
                Slice::Preempted => {}
                Slice::Blocked { fuel_unused } => break fuel_unused,
                Slice::Ended => panic!("the guest ended without blocking"),
            }
        };
        // A slice larger than the fuel left: its unused part is the fuel left, as at the block.
        let whole = if fuel_per_slice > fuel_max {
            first
        } else {
            fuel_per_slice
        };
        for _ in 0..100 {
            assert_eq!(
                session.slice(0),
                Slice::Blocked { fuel_unused: whole },
                "slice {fuel_per_slice}"
            );
        }
        let sub = session.take_submitted().pop().unwrap();
        session
            .complete(0, 0, run_submitted(&sub, &c.limits))
            .unwrap();
        let mut last = session.slice(0);
        while last == Slice::Preempted {
            last = session.slice(0);
        }
        assert_eq!(last, Slice::Ended);
        let r = session.report(0).unwrap();
        assert_same_report(&inline, r, &format!("slice {fuel_per_slice}"));
        assert!(r.slices > 100);
    }
}

#[test]
fn submissions_come_in_the_order_they_happened_across_guests() {
    let req = bell_request(10);
    let body = format!(
        "(drop (call $q_submit (i32.const 1024) (i32.const {len})))
         (call $yield)
         (drop (call $q_submit (i32.const 1024) (i32.const {len})))
         (if (i32.ne (call $await_next) (i32.const 0)) (then unreachable))
         (if (i32.ne (call $await_next) (i32.const 1)) (then unreachable))",
        len = req.len()
    );
    let sb = sandbox();
    let guest = compile(&sb, &module(&esc(&req), &body));
    let a = RunConfig {
        seed: 7,
        ..cfg(JobMode::External, 1_000_000, 100_000)
    };
    let b = RunConfig {
        seed: 8,
        ..cfg(JobMode::External, 1_000_000, 100_000)
    };
    let mut session = sb
        .session(&[(&guest, a.clone()), (&guest, b.clone())], &[])
        .unwrap();
    // Round-robin: a submits 0 and yields, b submits 0 and yields, a submits 1, b submits 1.
    for _ in 0..2 {
        for i in 0..2 {
            session.slice(i);
        }
    }
    let subs = session.take_submitted();
    assert_eq!(
        subs.iter().map(|s| (s.guest, s.job)).collect::<Vec<_>>(),
        [(0, 0), (1, 0), (0, 1), (1, 1)]
    );
    assert_eq!(subs[1].seed, jobs::job_seed(8, 0));
    assert_eq!(subs[2].seed, jobs::job_seed(7, 1));
    assert!(session.take_submitted().is_empty());
    for s in &subs {
        session
            .complete(s.guest, s.job, run_submitted(s, &a.limits))
            .unwrap();
    }
    for i in 0..2 {
        assert_eq!(session.slice(i), Slice::Ended);
    }
    let reports = session.into_reports();
    let inline_a = sb
        .run(
            &guest,
            &RunConfig {
                jobs: JobMode::Inline,
                ..a
            },
        )
        .unwrap();
    assert_same_report(&inline_a, &reports[0], "guest a");
    assert_eq!(reports[0].yields, 1);
}

#[test]
fn yields_keep_their_slices_in_external_mode() {
    // No jobs: an External guest that yields is sliced exactly as an inline one.
    let sb = sandbox();
    let guest = compile(
        &sb,
        &module(
            "",
            "(call $busy (i32.const 300))
             (call $yield)
             (call $busy (i32.const 500))
             (call $yield)
             (call $busy (i32.const 700))",
        ),
    );
    for fuel_per_slice in [50u64, 777, 100_000] {
        let inline = sb
            .run(&guest, &cfg(JobMode::Inline, 1_000_000, fuel_per_slice))
            .unwrap();
        let ext = sb
            .run(&guest, &cfg(JobMode::External, 1_000_000, fuel_per_slice))
            .unwrap();
        assert_eq!(ext, inline, "slice {fuel_per_slice}");
        assert_eq!(inline.yields, 2);
    }
}

#[test]
fn the_driver_can_declare_and_run_q_jobs_itself() {
    let l = Limits::default();
    let nomeas =
        "OPENQASM 3;\ninclude \"stdgates.inc\";\nqubit[2] q;\nry(0.3) q[0];\ncx q[0], q[1];\n";
    let sampling = bell_request(1000);
    let exact = serde_json::json!({"qasm": nomeas, "observable": "0.5*ZZ + XI"}).to_string();
    let estimated =
        serde_json::json!({"qasm": nomeas, "observable": "ZZ + XX + 2*II", "shots": 300})
            .to_string();
    let bad = serde_json::json!({"qasm": BELL}).to_string();
    assert_eq!(jobs::q_request_shots(sampling.as_bytes(), &l), Ok(1000));
    assert_eq!(jobs::q_request_shots(exact.as_bytes(), &l), Ok(1));
    // ZZ and XX are two qubit-wise commuting groups of 300 shots each.
    assert_eq!(jobs::q_request_shots(estimated.as_bytes(), &l), Ok(600));
    for r in [&bad, "{", "[]"] {
        assert_eq!(
            jobs::q_request_shots(r.as_bytes(), &l),
            Err(jobs::run_q(r.as_bytes(), 3, &l)),
            "{r}"
        );
    }
    // Parse + run with no device is run_q, byte for byte.
    for r in [&sampling, &exact, &estimated] {
        let req = jobs::parse_q(r.as_bytes(), 11, &l).unwrap();
        assert_eq!(
            jobs::run_parsed_q(&req, None, &l),
            jobs::run_q(r.as_bytes(), 11, &l)
        );
    }

    // On a noisy device: route the circuit onto a two-qubit partition, then sample with noise.
    let device = xdv_q::device::Device::example();
    assert!(!device.is_noiseless());
    let part = device.restrict(&[3, 4]).unwrap();
    let mut req = jobs::parse_q(bell_request(20_000).as_bytes(), 5, &l).unwrap();
    req.circuit = xdv_q::route::route(&req.circuit, &part, &Default::default())
        .unwrap()
        .circuit;
    let noisy = jobs::run_parsed_q(&req, Some(&part), &l);
    assert!(noisy.ok, "{:?}", noisy.error);
    let doc: serde_json::Value = serde_json::from_slice(&noisy.result).unwrap();
    let counts = doc["counts"].as_object().unwrap();
    let odd = counts.get("01").and_then(|v| v.as_u64()).unwrap_or(0)
        + counts.get("10").and_then(|v| v.as_u64()).unwrap_or(0);
    assert!(odd > 0, "noise shows in a Bell pair's counts: {counts:?}");
    assert_eq!(noisy, jobs::run_parsed_q(&req, Some(&part), &l));
    // The unrouted circuit does not suit the device.
    let unrouted = jobs::parse_q(bell_request(10).as_bytes(), 5, &l).unwrap();
    let refused = jobs::run_parsed_q(&unrouted, Some(&part), &l);
    assert!(!refused.ok);

    // Expectation values under noise are refused, not computed ideally.
    for r in [&exact, &estimated] {
        let req = jobs::parse_q(r.as_bytes(), 5, &l).unwrap();
        let out = jobs::run_parsed_q(&req, Some(&part), &l);
        assert!(!out.ok, "{r}");
        let doc: serde_json::Value = serde_json::from_slice(&out.result).unwrap();
        assert_eq!(doc["error"]["kind"], "exec");
        assert!(
            out.error.as_deref().unwrap().contains("noise"),
            "{:?}",
            out.error
        );
    }
    // On a noiseless device they are the ideal values.
    let ideal = xdv_q::device::Device::ideal(2);
    let req = jobs::parse_q(exact.as_bytes(), 5, &l).unwrap();
    assert_eq!(
        jobs::run_parsed_q(&req, Some(&ideal), &l),
        jobs::run_q(exact.as_bytes(), 5, &l)
    );
}

#[test]
fn the_driver_can_check_phi_programs() {
    let l = Limits::default();
    let program = "modes = 2\ninput = [[1, 0], [0, 0]]\n\n[[op]]\nkind = \"mzi\"\nmodes = [0, 1]\ntheta = 0.7853981633974483\nphi = 0.0\n";
    let p = jobs::phi_request_check(program.as_bytes(), &l).unwrap();
    assert_eq!(p.modes, 2);
    assert_eq!(
        jobs::run_parsed_phi(&p, 9, &l),
        jobs::run_phi(program.as_bytes(), 9, &l)
    );
    for bad in ["modes = x", "\u{ff}", "{\"modes\": 2}"] {
        assert_eq!(
            jobs::phi_request_check(bad.as_bytes(), &l).err(),
            Some(jobs::run_phi(bad.as_bytes(), 9, &l)),
            "{bad}"
        );
    }
}
