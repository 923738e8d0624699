//! One measurement of the audit log, printed as one JSON document (driven by
//! `cargo xtask bench audit`, which repeats it and takes medians):
//!
//! - durable batched appends: `--entries N` entries written with an `fsync` every `--batch B`,
//!   then sealed; entries per second over the whole write;
//! - verifying that log from its bytes (framing, checksums, canonical decoding, the whole RFC 6962
//!   tree, every checkpoint signature); seconds, file read excluded;
//! - signing and verifying one checkpoint with each algorithm, median of `--sign-runs`.
//!
//! `cargo run --release -p xdv-sdbm --example audit_bench -- --entries 1000000 --dir bench-out`

use std::time::Instant;
use xdv_sdbm::entry::{Domain, Entry, Event};
use xdv_sdbm::keys::MasterSecret;
use xdv_sdbm::log::{verify, AuditWriter, VerifyOptions, WriterOptions};
use xdv_sdbm::sign::{self, Algorithm, Signer};

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{name} takes a number"))
        })
        .unwrap_or(default)
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let entries = arg(&args, "--entries", 1_000_000);
    let batch = arg(&args, "--batch", 4096) as usize;
    let sign_runs = arg(&args, "--sign-runs", 50).max(1);
    let dir = args
        .iter()
        .position(|a| a == "--dir")
        .and_then(|i| args.get(i + 1))
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&dir).expect("bench dir");
    let path = dir.join(format!("audit-bench-{}.log", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let master = MasterSecret([7; 32]);

    // A realistic mix: transitions and allocations, about 50 bytes each.
    let sample = |i: u64| Entry {
        time_ns: i * 1000,
        event: if i.is_multiple_of(2) {
            Event::Transition {
                vhm: (i % 61) as u32,
                job: i,
                from: Domain::K,
                to: Domain::Q,
                detail: "submitted".into(),
            }
        } else {
            Event::Allocation {
                vhm: (i % 61) as u32,
                resource: "logical_qubits".into(),
                amount: i % 17,
                released: false,
            }
        },
    };
    let t0 = Instant::now();
    let mut w = AuditWriter::create(
        &path,
        Signer::from_master(&master),
        WriterOptions {
            batch_entries_max: batch,
        },
    )
    .expect("create");
    for i in 0..entries {
        w.append(&sample(i)).expect("append");
        if (i + 1) % 262_144 == 0 {
            w.checkpoint(i * 1000).expect("checkpoint");
        }
    }
    let batches = w.batches();
    w.finish(entries * 1000).expect("finish");
    let append_s = t0.elapsed().as_secs_f64();

    let bytes = std::fs::read(&path).expect("read back");
    let t1 = Instant::now();
    let v = verify(&bytes, &VerifyOptions::default()).expect("the log verifies");
    let verify_s = t1.elapsed().as_secs_f64();
    assert_eq!(v.leaves.len() as u64, entries);
    let _ = std::fs::remove_file(&path);

    let signer = Signer::from_master(&master);
    let keys = signer.public_keys();
    let msg = b"XDV-AUDIT-CHECKPOINT-V1\0 a checkpoint message of the usual 73 bytes....";
    let mut costs = serde_like::Obj::default();
    for alg in Algorithm::ALL {
        let key = keys.iter().find(|k| k.alg == alg).expect("key");
        let (mut s_us, mut v_us) = (Vec::new(), Vec::new());
        for _ in 0..sign_runs {
            let t = Instant::now();
            let sig = signer.sign_with(alg, msg);
            s_us.push(t.elapsed().as_secs_f64() * 1e6);
            let t = Instant::now();
            sign::verify(key, msg, &sig).expect("verifies");
            v_us.push(t.elapsed().as_secs_f64() * 1e6);
        }
        costs.push(alg.name(), median(&mut s_us), median(&mut v_us));
    }
    println!(
        "{{\"entries\":{entries},\"batch\":{batch},\"fsyncs\":{},\"bytes\":{},\"append_s\":{append_s},\"append_entries_per_sec\":{},\"verify_s\":{verify_s},\"verify_entries_per_sec\":{},\"checkpoints\":{},\"sign\":{}}}",
        batches + 1,
        bytes.len(),
        entries as f64 / append_s,
        entries as f64 / verify_s,
        v.checkpoints.len(),
        costs.render()
    );
}

/// Just enough JSON for the sign/verify table, without a dependency.
mod serde_like {
    #[derive(Default)]
    pub struct Obj(Vec<String>);
    impl Obj {
        pub fn push(&mut self, name: &str, sign_us: f64, verify_us: f64) {
            self.0.push(format!(
                "\"{name}\":{{\"sign_us\":{sign_us:.1},\"verify_us\":{verify_us:.1}}}"
            ));
        }
        pub fn render(&self) -> String {
            format!("{{{}}}", self.0.join(","))
        }
    }
}
