//! Feeds every file of the committed fuzz corpus (`fuzz/corpus/token`) to the verifier the fuzz
//! target drives, so the corpus runs on every `cargo test`, not only under nightly.

use std::path::PathBuf;
use xdv_token::{Authority, Domain, Operation, Request, RevocationSet};

#[test]
fn every_token_seed_gets_a_verdict() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/token");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|f| f.unwrap().path())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "the token corpus is empty");
    // The corpus tokens were minted under the root secret [1; 32] (as in the fuzz target).
    let v = Authority::from_secret(&[1; 32]).unwrap().verifier();
    let req = Request {
        operation: Operation::Submit,
        domain: Domain::Q,
        resource: "shots",
        amount: 1,
        time_ns: 0,
    };
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        let r = v.verify(&std::fs::read(&f).unwrap(), &req, &RevocationSet::default());
        let genuine = name == "minted" || name == "attenuated";
        assert_eq!(r.is_ok(), genuine, "{name}: {r:?}");
    }
}
