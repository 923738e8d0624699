//! Feeds every file of the committed fuzz corpus (`fuzz/corpus/audit_log`, `audit_entry`) to the
//! parsers the fuzz targets drive, so the corpus runs on every `cargo test`, not only under
//! nightly. Each target's property is asserted, and the known seeds' verdicts too.

use std::path::PathBuf;
use xdv_sdbm::entry::Entry;
use xdv_sdbm::log::{verify, VerifyOptions};

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut out: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|f| {
            let p = f.unwrap().path();
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "the {target} corpus is empty");
    out
}

#[test]
fn every_audit_log_seed_gets_a_verdict() {
    let lenient = VerifyOptions {
        allow_unsealed: true,
        keep_entries: true,
        trusted_keys: None,
    };
    for (name, bytes) in corpus("audit_log") {
        let strict = verify(&bytes, &VerifyOptions::default());
        let _ = verify(&bytes, &lenient);
        // The one undamaged seed verifies; every damaged one is refused.
        assert_eq!(strict.is_ok(), name == "sealed", "{name}: {strict:?}");
    }
}

#[test]
fn every_entry_seed_is_canonical() {
    for (name, bytes) in corpus("audit_entry") {
        if let Ok(e) = Entry::decode(&bytes) {
            assert_eq!(e.encode().unwrap(), bytes, "{name}");
        }
        // Its every prefix is refused without a panic.
        for cut in 0..bytes.len() {
            assert!(Entry::decode(&bytes[..cut]).is_err(), "{name} cut at {cut}");
        }
    }
}
