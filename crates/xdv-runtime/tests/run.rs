//! End-to-end tests of the run loop on the repository's examples: results against independent
//! computations, determinism, isolation between tenants, crash and resume at every commit, fault
//! containment, and verification of the trace by replay.

mod common;
use common::ipc_module;

use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;
use xdv_core::Machine;
use xdv_runtime::provider::{Answer, Capability, EmbeddedPhi, EmbeddedQ, Provider, Query};
use xdv_runtime::run::{InjectFault, NoSink};
use xdv_runtime::{run, Manifest, Options, Resume, RunError, RunReport, Sink, VhmStatus};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn load(dir: &str, text: Option<&str>) -> (Manifest, BTreeMap<String, Vec<u8>>, Machine) {
    let base = examples().join(dir);
    let text = match text {
        Some(t) => t.to_string(),
        None => std::fs::read_to_string(base.join("run.toml")).expect("example manifest"),
    };
    let m = Manifest::from_toml(&text, "run.toml").expect("manifest parses");
    let files = xdv_runtime::files::load(&m, &base).expect("files load");
    let machine = xdv_runtime::files::machine(&m, &files).expect("machine");
    (m, files, machine)
}

/// Runs a loaded manifest with the default options, keeping nothing.
fn run_plain(m: &Manifest, files: &BTreeMap<String, Vec<u8>>, machine: Machine) -> RunReport {
    run(
        m,
        files,
        machine,
        &Options::default(),
        Resume::default(),
        &mut NoSink,
    )
    .expect("runs")
}

/// Runs a manifest from the start and keeps its trace.
fn run_traced(
    m: &Manifest,
    files: &BTreeMap<String, Vec<u8>>,
    machine: Machine,
    opts: &Options,
) -> (RunReport, Vec<u8>) {
    let mut sink = MemSink::default();
    let r = run(m, files, machine, opts, Resume::default(), &mut sink).expect("runs");
    (r, sink.trace)
}

fn go(dir: &str, opts: &Options) -> (RunReport, Vec<u8>) {
    let (m, files, machine) = load(dir, None);
    run_traced(&m, &files, machine, opts)
}

/// Keeps everything; fails (as a crash would) at commit number `fail_at`.
#[derive(Default)]
struct MemSink {
    trace: Vec<u8>,
    results: BTreeMap<u64, Vec<u8>>,
    commits: u64,
    fail_at: Option<u64>,
}

impl Sink for MemSink {
    fn commit(&mut self, trace: &[u8], results: &[(u64, Vec<u8>)]) -> Result<(), String> {
        self.commits += 1;
        if Some(self.commits) == self.fail_at {
            return Err("simulated crash".into());
        }
        self.trace.extend_from_slice(trace);
        for (j, b) in results {
            self.results.insert(*j, b.clone());
        }
        Ok(())
    }
}

fn vhm<'a>(r: &'a RunReport, path: &str) -> &'a xdv_runtime::run::VhmReport {
    r.vhms
        .iter()
        .find(|v| v.path == path)
        .expect("vhm in report")
}

type C = (f64, f64);
fn mul(a: C, b: C) -> C {
    (a.0 * b.0 - a.1 * b.1, a.0 * b.1 + a.1 * b.0)
}
fn add(a: C, b: C) -> C {
    (a.0 + b.0, a.1 + b.1)
}

/// T(θ, φ) = [[e^{iφ}cos θ, −sin θ], [e^{iφ}sin θ, cos θ]] on modes (m, m+1), written out.
fn mzi(f: &mut [C], m: usize, theta: f64, phi: f64) {
    let e = (phi.cos(), phi.sin());
    let (a, b) = (f[m], f[m + 1]);
    f[m] = add(
        mul(mul(e, (theta.cos(), 0.0)), a),
        mul((-theta.sin(), 0.0), b),
    );
    f[m + 1] = add(
        mul(mul(e, (theta.sin(), 0.0)), a),
        mul((theta.cos(), 0.0), b),
    );
}

#[test]
fn hybrid_pipeline_samples_then_transforms_the_sampled_distribution() {
    let (r, _) = go("hybrid-pipeline", &Options::default());
    let v = vhm(&r, "pipeline");
    assert_eq!(v.status, VhmStatus::Finished);
    let counts = v.results[0]["counts"].as_object().expect("counts");
    let shots = 4096.0;
    let n000 = counts.get("000").and_then(Value::as_u64).unwrap_or(0) as f64;
    let n111 = counts.get("111").and_then(Value::as_u64).unwrap_or(0) as f64;
    assert_eq!(
        n000 + n111,
        shots,
        "a GHZ circuit gives only 000 and 111: {counts:?}"
    );
    // ry(π/3): P(000) = cos²(π/6) = 3/4; five standard deviations of a binomial.
    let sd = (shots * 0.75 * 0.25_f64).sqrt();
    assert!((n000 - 0.75 * shots).abs() < 5.0 * sd, "P(000) off: {n000}");
    // The Φ step: amplitude encoding of the sampled distribution through the butterfly.
    let mut f = vec![(0.0, 0.0); 8];
    f[0] = ((n000 / shots).sqrt(), 0.0);
    f[7] = ((n111 / shots).sqrt(), 0.0);
    let q = std::f64::consts::FRAC_PI_4;
    for (pairs, phi) in [
        (&[0usize, 2, 4, 6][..], 0.0),
        (&[1, 3, 5][..], std::f64::consts::FRAC_PI_2),
        (&[0, 2, 4, 6][..], q),
    ] {
        for &m in pairs {
            mzi(&mut f, m, q, phi);
        }
    }
    let got = v.results[1]["intensities"].as_array().expect("intensities");
    assert_eq!(got.len(), 8);
    for (m, g) in got.iter().enumerate() {
        let want = f[m].0 * f[m].0 + f[m].1 * f[m].1;
        let g = g.as_f64().expect("number");
        assert!((g - want).abs() < 1e-12, "mode {m}: {g} vs {want}");
    }
}

#[test]
fn three_tenants_finish_with_correct_and_isolated_results() {
    let (r, _) = go("three-tenants", &Options::default());
    for v in &r.vhms {
        assert_eq!(v.status, VhmStatus::Finished, "{}", v.path);
    }
    let w = vhm(&r, "alice/worker");
    let ex = w.results[0]["expectations"]
        .as_array()
        .expect("expectations");
    let val = |i: usize| ex[i]["value"].as_f64().expect("value");
    assert!((val(0) - 1.0).abs() < 1e-12 && (val(1) - 1.0).abs() < 1e-12 && val(2).abs() < 1e-12);
    let bob = vhm(&r, "bob");
    let counts = bob.results[0]["counts"].as_object().expect("counts");
    assert!(
        counts.keys().all(|k| k == "000" || k == "111"),
        "{counts:?}"
    );
    // carol's mesh has a device model (0.1 dB per MZI, coupler and phase errors): the split is
    // even to within its errors, and the power out is what the reported transmission says.
    let carol = vhm(&r, "carol");
    let out = &carol.results[0];
    let mut total = 0.0;
    for x in out["intensities"].as_array().expect("intensities") {
        let x = x.as_f64().expect("number");
        assert!((x - 0.25).abs() < 0.02, "{out}");
        total += x;
    }
    let t = out["transmission_db"].as_f64().expect("transmission");
    assert!((total - 10f64.powf(t / 10.0)).abs() < 1e-12, "{out}");
    assert!(t < 0.0 && t > -1.0, "two MZIs deep at 0.1 dB each: {t}");
    // Isolation: a tenant's results do not depend on who else runs (the seeds derive from its
    // path, its state vector and field buffer are its own).
    let text = std::fs::read_to_string(examples().join("three-tenants/run.toml")).expect("read");
    let bob_alone = {
        let start = text.find("[[vhm]]\nname = \"bob\"").expect("bob's table");
        let end = text
            .find("[[vhm]]\nname = \"carol\"")
            .expect("carol's table");
        format!(
            "name = \"three-tenants\"\nseed = 2026\nmachine = \"machine.toml\"\n{}",
            &text[start..end]
        )
    };
    let (m, files, machine) = load("three-tenants", Some(&bob_alone));
    let alone = run(
        &m,
        &files,
        machine.clone(),
        &Options::default(),
        Resume::default(),
        &mut NoSink,
    )
    .expect("runs");
    assert_eq!(vhm(&alone, "bob").results, bob.results);
    // Placement: roots hold disjoint qubits and non-overlapping Φ regions; a nested VHM's
    // holdings lie inside its parent's; bob is on the device he named.
    let alice = vhm(&r, "alice");
    assert!(alice.qubits.iter().all(|q| !bob.qubits.contains(q)));
    assert!(w.qubits.iter().all(|q| alice.qubits.contains(q)));
    assert!(
        bob.qubits.iter().all(|&q| (16..24).contains(&q)),
        "bob not on ring8: {:?}",
        bob.qubits
    );
    let (ra, rc, rw) = (
        alice.region.expect("a"),
        carol.region.expect("c"),
        w.region.expect("w"),
    );
    assert!(!ra.overlaps(&rc), "{ra:?} {rc:?}");
    assert!(rw.mode_start >= ra.mode_start && rw.mode_start + rw.modes <= ra.mode_start + ra.modes);
    assert!(r.resource_table.iter().any(|row| row.name == "worker"));
}

#[test]
fn runs_are_deterministic_and_their_traces_replay() {
    require_guests();
    for dir in [
        "hybrid-pipeline",
        "three-tenants",
        "vqe-vhm",
        "white-paper-pipeline",
    ] {
        let (a, ta) = go(dir, &Options::default());
        let (b, tb) = go(dir, &Options::default());
        assert_eq!(a.to_json(), b.to_json(), "{dir}");
        assert_eq!(ta, tb, "{dir}: traces differ");
        let (rep, core) = xdv_trace::replay(&ta, xdv_trace::ReplayOptions::default())
            .unwrap_or_else(|e| panic!("{dir}: replay failed: {e}"));
        assert_eq!(core.state_digest(), a.state_hash, "{dir}");
        assert_eq!(rep.inputs, a.inputs, "{dir}");
    }
}

#[test]
fn a_run_crashed_at_any_commit_resumes_to_the_same_result() {
    require_guests();
    for dir in [
        "hybrid-pipeline",
        "three-tenants",
        "vqe-vhm",
        "white-paper-pipeline",
    ] {
        let (whole, whole_trace) = go(dir, &Options::default());
        let (m, files, machine) = load(dir, None);
        // Every commit of a short run; of a long one (a guest's every Q job is a round trip
        // through the core, and every run compiles the guests again) the first and last four
        // and eight spread between them.
        let mut counted = MemSink::default();
        run(
            &m,
            &files,
            machine.clone(),
            &Options::default(),
            Resume::default(),
            &mut counted,
        )
        .expect("runs");
        let n = counted.commits;
        let points: Vec<u64> = if n <= 32 {
            (1..=n + 1).collect()
        } else {
            let mut p: Vec<u64> = (1..=4).chain(n - 3..=n + 1).collect();
            p.extend((1..=8).map(|i| 4 + i * (n - 8) / 9));
            p.sort_unstable();
            p.dedup();
            p
        };
        let mut tried = 0;
        for &k in &points {
            tried += 1;
            let mut crashed = MemSink {
                fail_at: Some(k),
                ..MemSink::default()
            };
            let r = run(
                &m,
                &files,
                machine.clone(),
                &Options::default(),
                Resume::default(),
                &mut crashed,
            );
            match r {
                Err(RunError::Sink(_)) => {}
                Ok(_) => {
                    assert_eq!(k, n + 1, "{dir}: no crash at commit {k} of {n}");
                    break; // past the last commit
                }
                Err(e) => panic!("{dir}: crash at commit {k}: {e}"),
            }
            let resume = Resume {
                trace: crashed.trace.clone(),
                results: crashed.results.clone(),
            };
            let mut rest = MemSink::default();
            let resumed = run(
                &m,
                &files,
                machine.clone(),
                &Options::default(),
                resume,
                &mut rest,
            )
            .unwrap_or_else(|e| panic!("{dir}: resume after commit {k}: {e}"));
            assert_eq!(
                resumed.to_json(),
                whole.to_json(),
                "{dir}: crash at commit {k}"
            );
            let mut all = crashed.trace.clone();
            all.extend_from_slice(&rest.trace);
            assert_eq!(
                all, whole_trace,
                "{dir}: crash at commit {k}: stored trace differs"
            );
            assert_eq!(
                resumed.jobs_executed + resumed.jobs_resumed,
                whole.jobs_executed
            );
        }
        assert!(n > 3 && tried == points.len(), "{dir}: only {n} commits");
    }
}

#[test]
fn a_resume_from_another_runs_trace_is_refused() {
    let (_, other) = go("hybrid-pipeline", &Options::default());
    let (m, files, machine) = load("three-tenants", None);
    let r = run(
        &m,
        &files,
        machine.clone(),
        &Options::default(),
        Resume {
            trace: other,
            results: BTreeMap::new(),
        },
        &mut NoSink,
    );
    assert!(matches!(r, Err(RunError::Diverged { .. })), "{:?}", r.err());
}

#[test]
fn a_failing_provider_faults_only_the_vhm_whose_job_failed_and_its_children() {
    let clean = go("three-tenants", &Options::default()).0;
    // grid16 runs alice's and worker's jobs (bob is on ring8); fail the first, alice's.
    let opts = Options {
        inject_fault: Some(InjectFault {
            provider: "grid16".into(),
            nth: 0,
        }),
        ..Options::default()
    };
    let (r, trace) = go("three-tenants", &opts);
    let alice = vhm(&r, "alice");
    assert!(
        matches!(&alice.status, VhmStatus::Faulted(m) if m.contains("injected")),
        "{:?}",
        alice.status
    );
    assert!(matches!(
        vhm(&r, "alice/worker").status,
        VhmStatus::Faulted(_)
    ));
    for other in ["bob", "carol"] {
        assert_eq!(vhm(&r, other).status, VhmStatus::Finished, "{other}");
        assert_eq!(
            vhm(&r, other).results,
            vhm(&clean, other).results,
            "{other}"
        );
    }
    xdv_trace::replay(&trace, xdv_trace::ReplayOptions::default())
        .expect("the faulted run's trace replays");
}

#[test]
fn providers_answer_capabilities_or_say_unsupported() {
    let q = EmbeddedQ::new("q", 5, vec![(0, 1), (1, 2)], None);
    assert_eq!(q.query(Query::Qubits), Answer::Value(Capability::Count(5)));
    assert_eq!(
        q.query(Query::CouplingMap),
        Answer::Value(Capability::CouplingMap(vec![(0, 1), (1, 2)]))
    );
    assert_eq!(q.query(Query::GateErrors), Answer::Unsupported);
    assert_eq!(q.query(Query::Modes), Answer::Unsupported);
    let p = EmbeddedPhi::new("m", 16, 2, None);
    assert_eq!(
        p.query(Query::Channels),
        Answer::Value(Capability::Count(2))
    );
    assert_eq!(p.query(Query::Loss), Answer::Unsupported);
    assert_eq!(p.query(Query::Qubits), Answer::Unsupported);
}

#[test]
fn a_transform_the_device_cannot_deliver_is_refused_and_faults_only_its_vhm() {
    // carol asks for a fidelity the mesh's noise model cannot reach; the others run on.
    let text = std::fs::read_to_string(examples().join("three-tenants/run.toml")).expect("read");
    let strict = text.replace(
        "[vhm.phi]\nmodes = 4\ncoherence_window_ns = 30000\n",
        "[vhm.phi]\nmodes = 4\ncoherence_window_ns = 30000\nmin_fidelity = 0.9999999\n",
    );
    assert_ne!(strict, text, "carol's [vhm.phi] table not found");
    let (m, files, machine) = load("three-tenants", Some(&strict));
    let r = run_plain(&m, &files, machine);
    let carol = vhm(&r, "carol");
    assert!(
        matches!(&carol.status, VhmStatus::Faulted(m) if m.contains("contract refused") && m.contains("fidelity")),
        "{:?}",
        carol.status
    );
    assert!(carol.results.is_empty());
    for other in ["alice", "alice/worker", "bob"] {
        assert_eq!(vhm(&r, other).status, VhmStatus::Finished, "{other}");
    }
    // The admitted jobs report the device model's prediction.
    let a = &vhm(&r, "alice").results[1]["admission"];
    let f = a["predicted_fidelity"].as_f64().expect("fidelity");
    assert!(f > 0.99 && f < 1.0, "{a}");
}

#[test]
fn a_phi_provider_with_a_device_reports_its_model() {
    let d = xdv_phi::PhiDevice::example();
    let p = EmbeddedPhi::new("m", d.modes as u32, d.channels as u32, Some(d.clone()));
    assert_eq!(
        p.query(Query::Loss),
        Answer::Value(Capability::LossDb(d.mzi_loss_db))
    );
    assert_eq!(
        p.query(Query::ReconfigurationTime),
        Answer::Value(Capability::DurationNs(d.reconfiguration_time_ns))
    );
    assert_eq!(p.query(Query::Qubits), Answer::Unsupported);
}

/// The guests' modules are built by `cargo xtask guests` (and by `cargo xtask test` before the
/// tests); a test that needs them fails, never skips, when they are missing.
fn require_guests() {
    for g in ["vqe-h2", "qaoa-maxcut"] {
        let p = examples().join(format!("../target/guests/wasm32-wasip1/release/{g}.wasm"));
        assert!(
            p.exists(),
            "{} is missing: build the example guests with `cargo xtask guests` (or run the suite with `cargo xtask test`)",
            p.display()
        );
    }
}

#[test]
fn the_vqe_and_qaoa_guests_run_as_vhms_and_reach_their_answers() {
    require_guests();
    let (r, trace) = go("vqe-vhm", &Options::default());
    for v in &r.vhms {
        assert_eq!(v.status, VhmStatus::Finished, "{}", v.path);
    }
    let report = |path: &str| -> Value {
        let out = vhm(&r, path).results[0]["stdout"]
            .as_str()
            .expect("stdout")
            .to_string();
        serde_json::from_str(out.trim()).expect("the guest prints one JSON document")
    };
    let e = report("chemistry")["energy_total_ha"]
        .as_f64()
        .expect("energy");
    // The STO-3G H₂ ground state at 0.735 Å, within chemical accuracy (1.6 mHa).
    assert!((e - -1.137).abs() < 1.6e-3, "VQE energy {e}");
    let cut = report("maxcut")["most_frequent_cut"].as_u64().expect("cut");
    // The example graph's edges, from its own report; its best cut by brute force.
    let g = report("maxcut")["graph"].clone();
    let n = g["nodes"].as_u64().expect("nodes") as u32;
    let edges: Vec<(u64, u64)> = g["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|e| (e[0].as_u64().expect("a"), e[1].as_u64().expect("b")))
        .collect();
    let best = (0u64..1 << n)
        .map(|m| {
            edges
                .iter()
                .filter(|(a, b)| (m >> a & 1) != (m >> b & 1))
                .count() as u64
        })
        .max()
        .expect("cuts");
    assert_eq!(cut, best);
    // The core dispatched the guests in fuel slices: the charged fuel is a whole number of
    // slices covering what the guest consumed.
    let fuel_row = r
        .resource_table
        .iter()
        .find(|row| row.name == "chemistry" && row.resource.name() == "fuel_units")
        .expect("fuel row");
    let used = vhm(&r, "chemistry").results[0]["fuel_consumed"]
        .as_u64()
        .expect("fuel");
    assert!(fuel_row.consumed >= used && fuel_row.consumed - used < 1_000_000);
    xdv_trace::replay(&trace, xdv_trace::ReplayOptions::default()).expect("replays");
    // The guests' own Q jobs went through the core: each is a `SubmitJob` by its VHM, each
    // blocked `await_next` a `Wait`, and the shots are charged (an exact expectation value
    // declares one shot).
    let inputs = xdv_trace::read_inputs(&trace).expect("inputs");
    let id = vhm(&r, "chemistry").id.expect("created");
    let by_chemistry = |f: &dyn Fn(&xdv_core::Command) -> bool| {
        inputs
            .iter()
            .filter(|i| {
                matches!(i, xdv_core::Input::Command { principal: xdv_core::Principal::Vhm(v), command, .. }
                    if *v == id && f(command))
            })
            .count()
    };
    let jobs = report("chemistry")["evaluations"]
        .as_u64()
        .expect("evaluations") as usize;
    let q_jobs = by_chemistry(&|c| {
        matches!(
            c,
            xdv_core::Command::SubmitJob {
                domain: xdv_core::Domain::Q,
                ..
            }
        )
    });
    assert_eq!(q_jobs, jobs);
    assert!(by_chemistry(&|c| matches!(c, xdv_core::Command::Wait { .. })) > 0);
    let shots = r
        .resource_table
        .iter()
        .find(|row| row.name == "chemistry" && row.resource.name() == "shots")
        .expect("shots row");
    assert_eq!(shots.consumed, jobs as u64);
    // The guest's report is the one it gives when its jobs run inline (`xdv k run`).
    let (m, files, machine) = load("vqe-vhm", None);
    let decl = &m.vhms[0];
    let k = decl.k.as_ref().expect("k");
    let sandbox = xdv_k::Sandbox::new(xdv_k::EngineLimits::default()).expect("sandbox");
    let guest = sandbox
        .compile(&files[&k.guest.as_ref().expect("guest").value])
        .expect("compiles");
    let direct = sandbox
        .run(
            &guest,
            &xdv_k::RunConfig {
                seed: xdv_runtime::run::vhm_seed(m.seed, decl),
                limits: xdv_k::Limits {
                    fuel_max: k.fuel_units,
                    fuel_per_slice: machine.k.fuel_per_slice,
                    memory_bytes_max: k.memory_bytes,
                    qubits_max: decl.q.as_ref().map_or(0, |q| q.qubits),
                    shots_max: decl.q.as_ref().map_or(0, |q| q.shots),
                    ..xdv_k::Limits::default()
                },
                args: vec![decl.name.clone()],
                stdin: Vec::new(),
                jobs: xdv_k::JobMode::Inline,
            },
        )
        .expect("runs");
    assert_eq!(
        vhm(&r, "chemistry").results[0]["stdout"].as_str(),
        Some(String::from_utf8_lossy(&direct.stdout).as_ref())
    );
    // Deterministic: the same report and trace again.
    let (r2, trace2) = go("vqe-vhm", &Options::default());
    assert_eq!(r2.to_json(), r.to_json());
    assert_eq!(trace2, trace);
}

#[test]
fn a_guest_that_traps_faults_its_vhm_alone() {
    // `spin` loops forever and runs out of fuel; `ok` returns at once.
    let text = "name = \"traps\"\n\
        [[vhm]]\nname = \"spin\"\n[vhm.k]\nguest = \"spin.wat\"\nfuel_units = 3000000\n\
        [[vhm]]\nname = \"ok\"\n[vhm.k]\nguest = \"ok.wat\"\nfuel_units = 1000000\n";
    let m = Manifest::from_toml(text, "traps.toml").expect("parses");
    let files = BTreeMap::from([
        (
            "spin.wat".to_string(),
            b"(module (func (export \"_start\") (loop (br 0))) (memory (export \"memory\") 1))"
                .to_vec(),
        ),
        (
            "ok.wat".to_string(),
            b"(module (func (export \"_start\")) (memory (export \"memory\") 1))".to_vec(),
        ),
    ]);
    let (r, trace) = run_traced(&m, &files, Machine::default_machine(), &Options::default());
    assert!(
        matches!(&vhm(&r, "spin").status, VhmStatus::Faulted(m) if m.contains("out_of_fuel")),
        "{:?}",
        vhm(&r, "spin").status
    );
    assert_eq!(vhm(&r, "ok").status, VhmStatus::Finished);
    // Three slices of 1 000 000 fuel units, dispatched one per tick.
    assert!(r.ticks >= 3, "{} ticks", r.ticks);
    xdv_trace::replay(&trace, xdv_trace::ReplayOptions::default()).expect("replays");
}

#[test]
fn the_white_paper_pipeline_chains_classical_quantum_phase_classical() {
    require_guests();
    let (r, trace) = go("white-paper-pipeline", &Options::default());
    let v = vhm(&r, "pipeline");
    assert_eq!(v.status, VhmStatus::Finished);
    assert_eq!(v.results.len(), 4);
    // Step 0: the angles of the data vector, recomputed here.
    let data = [3.0f64, 1.0, 2.0, 0.5];
    let norm = data.iter().map(|x| x * x).sum::<f64>().sqrt();
    let p: Vec<f64> = data.iter().map(|x| (x / norm).powi(2)).collect();
    let theta0 = v.results[0]["params"]["theta0"].as_f64().expect("theta0");
    assert!((theta0 - 2.0 * (p[2] + p[3]).sqrt().atan2((p[0] + p[1]).sqrt())).abs() < 1e-12);
    // Step 1: the sampled distribution is the data's squared amplitudes (5 standard deviations).
    let counts = v.results[1]["counts"].as_object().expect("counts");
    let shots = 20000.0;
    let mut sampled = [0.0f64; 4];
    for (k, n) in counts {
        let i = usize::from_str_radix(k, 2).expect("binary key");
        sampled[i] = n.as_f64().expect("count") / shots;
    }
    for i in 0..4 {
        let sd = (p[i] * (1.0 - p[i]) / shots).sqrt();
        assert!(
            (sampled[i] - p[i]).abs() < 5.0 * sd + 1e-9,
            "outcome {i}: {sampled:?} vs {p:?}"
        );
    }
    // Step 2: the sampled distribution as a field through the documented interferometer.
    let mut f: Vec<(f64, f64)> = sampled.iter().map(|q| (q.sqrt(), 0.0)).collect();
    let q = std::f64::consts::FRAC_PI_4;
    mzi(&mut f, 0, q, 0.0);
    mzi(&mut f, 2, q, 0.0);
    mzi(&mut f, 1, q, std::f64::consts::FRAC_PI_2);
    let got = v.results[2]["intensities"].as_array().expect("intensities");
    for (m, g) in got.iter().enumerate() {
        let want = f[m].0 * f[m].0 + f[m].1 * f[m].1;
        assert!(
            (g.as_f64().expect("number") - want).abs() < 1e-12,
            "mode {m}"
        );
    }
    // Step 3: the post-processing guest's summary of that light.
    let post = &v.results[3];
    let total: f64 = got.iter().filter_map(Value::as_f64).sum();
    let dist: Vec<f64> = got
        .iter()
        .filter_map(Value::as_f64)
        .map(|x| x / total)
        .collect();
    for (a, b) in dist
        .iter()
        .zip(post["distribution"].as_array().expect("distribution"))
    {
        assert!((a - b.as_f64().expect("number")).abs() < 1e-12);
    }
    let brightest = (0..4).fold(0, |b, i| if dist[i] > dist[b] { i } else { b });
    assert_eq!(post["brightest_mode"].as_u64(), Some(brightest as u64));
    xdv_trace::replay(&trace, xdv_trace::ReplayOptions::default()).expect("replays");
}

#[test]
fn guests_talk_over_manifest_channels_and_every_message_is_in_the_trace() {
    // `ping` sends "ping" three times; `pong` receives three messages (yielding while its queue
    // is empty) and prints each.
    let ping = ipc_module(
        "ping",
        "(local.set $n (i32.const 0))
         (loop $l
           (drop (call $chan_send (i32.const 0) (i32.const 1024) (i32.const 4)))
           (local.set $n (i32.add (local.get $n) (i32.const 1)))
           (call $yield)
           (br_if $l (i32.lt_u (local.get $n) (i32.const 3))))",
    );
    let pong = ipc_module(
        "",
        "(local.set $n (i32.const 0))
         (loop $l
           (local.set $len (call $chan_recv (i32.const 0) (i32.const 2048) (i32.const 64)))
           (if (i32.gt_s (local.get $len) (i32.const 0))
             (then
               (i32.store (i32.const 0) (i32.const 2048))
               (i32.store (i32.const 4) (local.get $len))
               (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
               (local.set $n (i32.add (local.get $n) (i32.const 1))))
             (else (call $yield)))
           (br_if $l (i32.lt_u (local.get $n) (i32.const 3))))",
    );
    let text = "name = \"ipc\"\n\
        [[vhm]]\nname = \"ping\"\n[vhm.k]\nguest = \"ping.wat\"\nfuel_units = 5000000\n\
        [[vhm]]\nname = \"pong\"\n[vhm.k]\nguest = \"pong.wat\"\nfuel_units = 5000000\n\
        [[channel]]\nbetween = [\"ping\", \"pong\"]\n";
    let m = Manifest::from_toml(text, "ipc.toml").expect("parses");
    let files = BTreeMap::from([
        ("ping.wat".to_string(), ping),
        ("pong.wat".to_string(), pong),
    ]);
    let (r, trace) = run_traced(&m, &files, Machine::default_machine(), &Options::default());
    for v in &r.vhms {
        assert_eq!(v.status, VhmStatus::Finished, "{}", v.path);
    }
    assert_eq!(
        vhm(&r, "pong").results[0]["stdout"].as_str(),
        Some("pingpingping")
    );
    assert_eq!(r.messages, 3);
    // Each message is a Send in the trace, whose payload commits to the bytes: their length
    // and BLAKE3 hash. The trace replays, so the core accepted every one from its endpoint.
    let mut commitment = 4u32.to_le_bytes().to_vec();
    commitment.extend_from_slice(blake3::hash(b"ping").as_bytes());
    let found = trace
        .windows(commitment.len())
        .filter(|w| *w == commitment.as_slice())
        .count();
    assert!(found >= 3, "{found} commitments in the trace");
    xdv_trace::replay(&trace, xdv_trace::ReplayOptions::default()).expect("replays");
}

// ----- Q devices: routing onto each tenant's partition, noise, the decoherence budget ----------

#[test]
fn a_noisy_device_runs_each_tenant_routed_on_its_own_partition_and_charges_predicted_error() {
    let (r, trace) = go("noisy-device", &Options::default());
    for path in ["alice", "bob"] {
        let v = vhm(&r, path);
        assert_eq!(v.status, VhmStatus::Finished, "{path}: {:?}", v.status);
        let mut charged = 0u64;
        for res in &v.results {
            let routing = &res["routing"];
            // One Q provider: global numbering is the device's.
            let partition: Vec<u32> = routing["partition"]
                .as_array()
                .expect("partition")
                .iter()
                .map(|x| x.as_u64().expect("qubit") as u32)
                .collect();
            assert_eq!(partition, v.qubits, "{path} ran outside its partition");
            let pe = res["predicted_error"].as_f64().expect("predicted error");
            assert!(pe > 0.0 && pe < 0.5, "{path}: predicted error {pe}");
            charged += (pe * 1e6).ceil() as u64;
            let counts = res["counts"].as_object().expect("counts");
            let shots = res["shots"].as_u64().expect("shots");
            let total: u64 = counts.values().filter_map(Value::as_u64).sum();
            assert_eq!(total, shots);
            // A GHZ (or Bell) state under the device's noise: mostly all-zeros or all-ones, but
            // not only (the noise is simulated).
            let n = v.qubits.len();
            let good: u64 = [("0".repeat(n)), ("1".repeat(n))]
                .iter()
                .filter_map(|k| counts.get(k).and_then(Value::as_u64))
                .sum();
            let frac = good as f64 / shots as f64;
            assert!(frac > 0.8 && frac < 0.995, "{path}: GHZ fraction {frac}");
        }
        // The decoherence budget consumed is exactly the sum of the predicted errors.
        let row = r
            .resource_table
            .iter()
            .find(|row| row.name == path && row.resource.name() == "error_budget_ppm")
            .expect("error budget row");
        assert_eq!(row.consumed, charged, "{path}");
    }
    // alice's chain 0-1-2-3 does not follow her partition [0, 1, 2, 11] of the ring in order:
    // the router had to swap.
    let a = vhm(&r, "alice");
    assert!(a.results[0]["routing"]["swaps"].as_u64().unwrap_or(0) > 0);
    // Deterministic: the same bytes again.
    let (again, trace2) = go("noisy-device", &Options::default());
    assert_eq!(trace, trace2);
    assert_eq!(r.state_hash, again.state_hash);
}

#[test]
fn a_job_whose_predicted_error_exceeds_the_budget_is_refused_and_faults_only_its_vhm() {
    let text = std::fs::read_to_string(examples().join("noisy-device/run.toml"))
        .expect("manifest")
        .replace("error_budget_ppm = 100000", "error_budget_ppm = 1000");
    let (m, files, machine) = load("noisy-device", Some(&text));
    let r = run_plain(&m, &files, machine);
    match &vhm(&r, "bob").status {
        VhmStatus::Faulted(why) => assert!(why.contains("error_budget_ppm"), "{why}"),
        s => panic!("bob should be refused by his decoherence budget: {s:?}"),
    }
    assert_eq!(vhm(&r, "alice").status, VhmStatus::Finished);
}

#[test]
fn a_device_that_does_not_couple_what_the_machine_couples_is_refused() {
    let (m, mut files, machine) = load("noisy-device", None);
    let dev = String::from_utf8(files["hex12.toml"].clone()).expect("utf-8");
    files.insert(
        "hex12.toml".into(),
        dev.replace(", [1, 7], [4, 10]]", ", [1, 7]]").into_bytes(),
    );
    match run(
        &m,
        &files,
        machine,
        &Options::default(),
        Resume::default(),
        &mut NoSink,
    ) {
        Err(RunError::Unsupported { message, .. }) => {
            assert!(message.contains("qubits 4 and 10"), "{message}")
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(_) => panic!("a device without the machine's pair 4-10 was accepted"),
    }
}

#[test]
fn exact_observables_on_an_ideal_device_follow_the_logical_qubits_through_routing() {
    // An ideal device with a native gate set and a line coupling map: the circuit is routed and
    // translated, the layout restored, and ⟨ZZ…⟩ read on the logical qubits.
    let machine = r#"
tick_ns = 1000000
[k]
vcpu_slots = 1
fuel_per_slice = 1000000
memory_bytes = 1048576
[[q]]
provider = "line6"
device = "line6.toml"
qubits = 6
topology = "line"
max_inflight_jobs = 1
"#;
    let device = r#"
name = "line6"
qubits = 6
coupling = [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5]]
native_gates = ["rz", "sx", "x", "cx"]
"#;
    // Qubit 0 flipped, then entangled with qubit 2 (not adjacent on the line): ⟨Z0⟩ = −1,
    // ⟨Z2⟩ = −1 (CX copies the 1), ⟨Z1⟩ = +1, ⟨Z2 Z0⟩ = +1.
    let circuit = "OPENQASM 2.0;\ninclude \"qelib1.inc\";\nqreg q[3];\nx q[0];\ncx q[0], q[2];\nh q[1];\nh q[1];\n";
    let manifest = r#"
name = "ideal-device"
machine = "machine.toml"
[[vhm]]
name = "t"
[vhm.q]
qubits = 3
shots = 10
[[vhm.step]]
domain = "q"
circuit = "c.qasm"
shots = 1
observables = ["IIZ", "IZI", "ZII", "ZIZ"]
"#;
    let m = Manifest::from_toml(manifest, "run.toml").expect("manifest");
    let mut files = BTreeMap::new();
    files.insert("machine.toml".to_string(), machine.as_bytes().to_vec());
    files.insert("line6.toml".to_string(), device.as_bytes().to_vec());
    files.insert("c.qasm".to_string(), circuit.as_bytes().to_vec());
    let mach = xdv_runtime::files::machine(&m, &files).expect("machine");
    let r = run(
        &m,
        &files,
        mach,
        &Options::default(),
        Resume::default(),
        &mut NoSink,
    )
    .expect("runs");
    let v = vhm(&r, "t");
    assert_eq!(v.status, VhmStatus::Finished, "{:?}", v.status);
    let res = &v.results[0];
    assert!(res["routing"]["swaps"].as_u64().unwrap_or(0) > 0, "{res}");
    let values: Vec<f64> = res["expectations"]
        .as_array()
        .expect("expectations")
        .iter()
        .map(|x| x["value"].as_f64().expect("value"))
        .collect();
    let want = [-1.0, 1.0, -1.0, 1.0];
    for (got, want) in values.iter().zip(want) {
        assert!((got - want).abs() < 1e-9, "{values:?}");
    }
    assert_eq!(res["predicted_error"], Value::Null);
}

#[test]
fn a_q_provider_with_a_device_reports_its_model() {
    let d = xdv_q::device::Device::example();
    let q = EmbeddedQ::new(
        "line5",
        5,
        vec![(0, 1), (1, 2), (2, 3), (3, 4)],
        Some(d.clone()),
    );
    let Answer::Value(Capability::PerGate(errors)) = q.query(Query::GateErrors) else {
        panic!("gate errors: {:?}", q.query(Query::GateErrors));
    };
    // The example device: one-qubit 2.5e-4, rz free, two-qubit 7.5e-3; natives only.
    assert_eq!(errors.get("sx"), Some(&2.5e-4));
    assert_eq!(errors.get("rz"), Some(&0.0));
    assert_eq!(errors.get("cx"), Some(&7.5e-3));
    assert!(!errors.contains_key("h"), "h is not native: {errors:?}");
    let Answer::Value(Capability::PerGate(durations)) = q.query(Query::GateDurations) else {
        panic!("gate durations");
    };
    assert_eq!(durations.get("cx"), Some(&320.0));
    let Answer::Value(Capability::CoherenceNs(t)) = q.query(Query::Coherence) else {
        panic!("coherence");
    };
    assert_eq!(t[2], (110_000.0, 70_000.0));
    assert_eq!(
        q.query(Query::NativeGates),
        Answer::Value(Capability::Gates(
            ["cx", "id", "rz", "sx", "x"].map(String::from).to_vec()
        ))
    );
}

/// A WebAssembly text module whose data segment holds `data` (every byte escaped).
fn wat_data(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("\\{b:02x}")).collect()
}

#[test]
fn a_guests_jobs_are_charged_and_refused_by_the_core_like_any_job() {
    // The guest submits a 60-shot job (run on its partition) and then another (over what is
    // left of its 100-shot budget: the core refuses it, the guest reads an error result), and
    // prints both results.
    let ok = br#"{"qasm": "OPENQASM 2.0; include \"qelib1.inc\"; qreg q[1]; creg c[1]; x q[0]; measure q -> c;", "shots": 60}"#;
    let refused = ok;
    let module = format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "xdv" "q_submit" (func $q_submit (param i32 i32) (result i32)))
  (import "xdv" "await_next" (func $await (result i32)))
  (import "xdv" "result_read" (func $read (param i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 1024) "{a}")
  (data (i32.const 2048) "{b}")
  (data (i32.const 3072) "\0a")
  (func $print (param $p i32) (param $n i32)
    (i32.store (i32.const 0) (local.get $p))
    (i32.store (i32.const 4) (local.get $n))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8))))
  (func (export "_start") (local $j i32) (local $n i32)
    (local.set $j (call $q_submit (i32.const 1024) (i32.const {la})))
    (drop (call $await))
    (local.set $n (call $read (local.get $j) (i32.const 8192) (i32.const 16384)))
    (call $print (i32.const 8192) (local.get $n))
    (call $print (i32.const 3072) (i32.const 1))
    (local.set $j (call $q_submit (i32.const 2048) (i32.const {lb})))
    (drop (call $await))
    (local.set $n (call $read (local.get $j) (i32.const 8192) (i32.const 16384)))
    (call $print (i32.const 8192) (local.get $n))))"#,
        a = wat_data(ok),
        b = wat_data(refused),
        la = ok.len(),
        lb = refused.len(),
    );
    let manifest = r#"
name = "guest-jobs"
[[vhm]]
name = "g"
[vhm.k]
guest = "g.wat"
fuel_units = 10000000
[vhm.q]
qubits = 1
shots = 100
"#;
    let m = Manifest::from_toml(manifest, "run.toml").expect("manifest");
    let files = BTreeMap::from([("g.wat".to_string(), module.into_bytes())]);
    let (r, trace) = run_traced(&m, &files, Machine::default_machine(), &Options::default());
    let v = vhm(&r, "g");
    assert_eq!(v.status, VhmStatus::Finished, "{:?}", v.status);
    let out = v.results[0]["stdout"].as_str().expect("stdout").to_string();
    let mut lines = out.lines();
    let first: Value = serde_json::from_str(lines.next().expect("first")).expect("json");
    let second: Value = serde_json::from_str(lines.next().expect("second")).expect("json");
    assert_eq!(first["ok"], Value::Bool(true), "{first}");
    assert_eq!(first["counts"]["1"], 60, "{first}");
    assert_eq!(second["ok"], Value::Bool(false), "{second}");
    assert_eq!(second["error"]["kind"], "refused", "{second}");
    assert!(second["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("shots"));
    // 60 shots charged: the refused job took nothing.
    let row = r
        .resource_table
        .iter()
        .find(|row| row.resource.name() == "shots")
        .expect("shots row");
    assert_eq!(row.consumed, 60);
    // The refusal is the core's, in the trace.
    let (rep, _) = xdv_trace::replay(&trace, xdv_trace::ReplayOptions::default()).expect("replays");
    assert!(rep.rejected >= 1);
}

#[test]
fn a_warm_run_is_the_same_run() {
    require_guests();
    let (m, files, machine) = load("vqe-vhm", None);
    let (cold, cold_trace) = go("vqe-vhm", &Options::default());
    let warm = xdv_runtime::Warm::new(&m, &files).expect("warm");
    let opts = Options {
        warm: Some(warm),
        ..Options::default()
    };
    for _ in 0..2 {
        let (r, trace) = run_traced(&m, &files, machine.clone(), &opts);
        assert_eq!(r.to_json(), cold.to_json());
        assert_eq!(trace, cold_trace);
    }
}
