//! `xdv keys` and `xdv audit` as a user runs them: a simulation writes a signed audit log, the
//! verifier accepts it and names the first damaged frame; proofs are checked against an RFC 6962
//! computation written here from the file's bytes.

use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn xdv(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xdv"))
        .args(args)
        .output()
        .expect("xdv runs")
}

fn json(args: &[&str]) -> Value {
    let out = xdv(args);
    assert!(
        out.status.success(),
        "xdv {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON document on stdout")
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xdv-audit-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A key directory, a trace and an audit log with checkpoints every 400 entries.
fn setup(name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let d = dir(name);
    let keys = d.join("keys");
    json(&["keys", "generate", &s(&keys), "--json"]);
    let trace = d.join("run.trace");
    json(&[
        "sim",
        "--seed",
        "11",
        "--ops",
        "3000",
        "--trace",
        &s(&trace),
        "--json",
    ]);
    let log = d.join("audit.log");
    json(&[
        "audit",
        "from-trace",
        &s(&trace),
        "--out",
        &s(&log),
        "--keys",
        &s(&keys),
        "--checkpoint-every",
        "400",
        "--json",
    ]);
    (d, keys, log)
}

/// The entry payloads of a log, read from its frames (header 16 bytes; frame = len u32 LE,
/// kind u8, payload, crc u32).
fn payloads(bytes: &[u8]) -> (Vec<Vec<u8>>, Vec<u64>) {
    let mut pos = 16;
    let (mut entries, mut sizes) = (Vec::new(), Vec::new());
    while pos < bytes.len() {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        match bytes[pos + 4] {
            2 => entries.push(bytes[pos + 5..pos + 5 + len].to_vec()),
            3 => sizes.push(u64::from_le_bytes(
                bytes[pos + 5..pos + 13].try_into().unwrap(),
            )),
            _ => {}
        }
        pos += len + 9;
    }
    (entries, sizes)
}

fn leaf(d: &[u8]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([0]);
    h.update(d);
    h.finalize().into()
}

fn node(l: [u8; 32], r: [u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1]);
    h.update(l);
    h.update(r);
    h.finalize().into()
}

fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

fn mth(d: &[Vec<u8>]) -> [u8; 32] {
    match d.len() {
        0 => Sha256::digest([]).into(),
        1 => leaf(&d[0]),
        n => node(mth(&d[..split(n)]), mth(&d[split(n)..])),
    }
}

fn path(m: usize, d: &[Vec<u8>]) -> Vec<[u8; 32]> {
    if d.len() <= 1 {
        return vec![];
    }
    let k = split(d.len());
    let (mut p, other) = if m < k {
        (path(m, &d[..k]), mth(&d[k..]))
    } else {
        (path(m - k, &d[k..]), mth(&d[..k]))
    };
    p.push(other);
    p
}

fn subproof(m: usize, d: &[Vec<u8>], b: bool) -> Vec<[u8; 32]> {
    let n = d.len();
    if m == n {
        return if b { vec![] } else { vec![mth(d)] };
    }
    let k = split(n);
    let (mut p, other) = if m <= k {
        (subproof(m, &d[..k], b), mth(&d[k..]))
    } else {
        (subproof(m - k, &d[k..], false), mth(&d[..k]))
    };
    p.push(other);
    p
}

fn hex(h: &[u8]) -> String {
    h.iter().map(|b| format!("{b:02x}")).collect()
}

fn hexes(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_simulated_run_writes_a_log_that_verifies() {
    let d = dir("sim");
    let keys = d.join("keys");
    json(&["keys", "generate", &s(&keys), "--json"]);
    let log = d.join("a.log");
    let sim = json(&[
        "sim",
        "--seed",
        "5",
        "--ops",
        "2000",
        "--audit",
        &s(&log),
        "--keys",
        &s(&keys),
        "--json",
    ]);
    let v = json(&["audit", "verify", &s(&log), "--json"]);
    assert_eq!(v["verified"], true);
    assert_eq!(v["entries"], sim["audit"]["entries"]);
    assert_eq!(v["root"], sim["audit"]["root"]);
    let bytes = std::fs::read(&log).unwrap();
    let (entries, sizes) = payloads(&bytes);
    assert_eq!(v["entries"].as_u64().unwrap() as usize, entries.len());
    assert_eq!(v["checkpoints"].as_u64().unwrap() as usize, sizes.len());
    assert_eq!(v["root"].as_str().unwrap(), hex(&mth(&entries)));
    // Rejections and lifecycle events are there: the simulation refuses attacks.
    let shown = json(&["audit", "show", &s(&log), "--json"]);
    let texts: Vec<&str> = shown
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["text"].as_str().unwrap())
        .collect();
    assert!(texts.iter().any(|t| t.contains("rejected")));
    assert!(texts.iter().any(|t| t.contains("vhm-created")));
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn proofs_match_an_independent_rfc6962_computation() {
    let (d, _, log) = setup("proofs");
    let bytes = std::fs::read(&log).unwrap();
    let (entries, sizes) = payloads(&bytes);
    assert!(sizes.len() >= 3, "checkpoints at {sizes:?}");
    for n in [0usize, 1, 7, entries.len() / 2, entries.len() - 1] {
        let p = json(&[
            "audit",
            "prove",
            &s(&log),
            "--entry",
            &n.to_string(),
            "--json",
        ]);
        let size = p["tree_size"].as_u64().unwrap() as usize;
        assert!(n < size && sizes.contains(&(size as u64)));
        assert_eq!(p["leaf_hash"].as_str().unwrap(), hex(&leaf(&entries[n])));
        assert_eq!(p["root"].as_str().unwrap(), hex(&mth(&entries[..size])));
        let expect: Vec<String> = path(n, &entries[..size]).iter().map(|h| hex(h)).collect();
        assert_eq!(hexes(&p["proof"]), expect, "entry {n}");
    }
    let (a, b) = (sizes[0], sizes[sizes.len() - 1]);
    for (from, to) in [(a, b), (sizes[1], sizes[2]), (a, a)] {
        let c = json(&[
            "audit",
            "consistency",
            &s(&log),
            "--from",
            &from.to_string(),
            "--to",
            &to.to_string(),
            "--json",
        ]);
        assert_eq!(c["verified"], true);
        let (m, n) = (from as usize, to as usize);
        let expect: Vec<String> = if m == n {
            vec![]
        } else {
            subproof(m, &entries[..n], true)
                .iter()
                .map(|h| hex(h))
                .collect()
        };
        assert_eq!(hexes(&c["proof"]), expect, "{from} -> {to}");
        assert_eq!(c["from_root"].as_str().unwrap(), hex(&mth(&entries[..m])));
        assert_eq!(c["to_root"].as_str().unwrap(), hex(&mth(&entries[..n])));
    }
    // Sizes that are not checkpoints, and entries beyond the log, are refused.
    assert!(!xdv(&[
        "audit",
        "consistency",
        &s(&log),
        "--from",
        "3",
        "--to",
        &b.to_string()
    ])
    .status
    .success());
    assert!(!xdv(&[
        "audit",
        "prove",
        &s(&log),
        "--entry",
        &entries.len().to_string()
    ])
    .status
    .success());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn damage_is_refused_and_located() {
    let (d, _, log) = setup("damage");
    let bytes = std::fs::read(&log).unwrap();
    // Frame offsets, to know which entry each byte belongs to.
    let mut frames = Vec::new();
    let mut pos = 16;
    while pos < bytes.len() {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        frames.push((pos, bytes[pos + 4]));
        pos += len + 9;
    }
    let bad = d.join("bad.log");
    // A byte inside entry 10 (frame 11), and inside the first checkpoint.
    let entry10 = frames[11].0 + 7;
    let cp = frames.iter().find(|f| f.1 == 3).unwrap().0 + 20;
    for (pos, what) in [(entry10, "entry 10"), (cp, "checkpoint 0")] {
        let mut b = bytes.clone();
        b[pos] ^= 0x10;
        std::fs::write(&bad, &b).unwrap();
        let out = xdv(&["audit", "verify", &s(&bad), "--json"]);
        assert_eq!(out.status.code(), Some(1));
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["verified"], false);
        assert_eq!(v["what"], what);
        assert!(String::from_utf8_lossy(&out.stderr).contains(what));
    }
    // Truncation, in a frame or at a frame boundary.
    for cut in [bytes.len() - 1, frames[frames.len() - 1].0] {
        std::fs::write(&bad, &bytes[..cut]).unwrap();
        assert_eq!(
            xdv(&["audit", "verify", &s(&bad)]).status.code(),
            Some(1),
            "cut at {cut}"
        );
    }
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn keys_pin_the_signer_and_loose_secrets_are_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let (d, keys, log) = setup("keys");
    assert_eq!(
        json(&["audit", "verify", &s(&log), "--keys", &s(&keys), "--json"])["keys_trusted"],
        true
    );
    let other = d.join("other");
    json(&["keys", "generate", &s(&other), "--json"]);
    assert_eq!(
        xdv(&["audit", "verify", &s(&log), "--keys", &s(&other)])
            .status
            .code(),
        Some(1)
    );
    // Generating into an existing key directory never overwrites it.
    let before = std::fs::read(keys.join("master.key")).unwrap();
    assert!(!xdv(&["keys", "generate", &s(&keys)]).status.success());
    assert_eq!(std::fs::read(keys.join("master.key")).unwrap(), before);
    assert_eq!(
        std::fs::metadata(keys.join("master.key"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
    // A group-readable master secret is refused, before the simulation runs.
    std::fs::set_permissions(
        keys.join("master.key"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    let out = xdv(&[
        "sim",
        "--ops",
        "10",
        "--audit",
        &s(&d.join("x.log")),
        "--keys",
        &s(&keys),
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("chmod 600"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn show_filters_by_vhm_name() {
    let (d, _, log) = setup("show");
    let all = json(&["audit", "show", &s(&log), "--json"]);
    let rows = all.as_array().unwrap();
    let first = rows
        .iter()
        .find(|r| r["text"].as_str().unwrap().contains("vhm-created"))
        .unwrap();
    let text = first["text"].as_str().unwrap();
    let name = text.split('"').nth(1).unwrap();
    let id = first["vhms"][0].as_u64().unwrap();
    let mine = json(&["audit", "show", &s(&log), "--vhm", name, "--json"]);
    let mine = mine.as_array().unwrap();
    assert!(!mine.is_empty() && mine.len() < rows.len());
    for r in mine {
        assert!(
            r["vhms"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v.as_u64() == Some(id))
                || r["text"].as_str().unwrap().contains(name),
            "{r}"
        );
    }
    let by_id = json(&[
        "audit",
        "show",
        &s(&log),
        "--vhm",
        &format!("v{id}"),
        "--json",
    ]);
    assert!(by_id.as_array().unwrap().len() >= mine.len());
    std::fs::remove_dir_all(&d).unwrap();
}

#[test]
fn a_hypervisor_run_writes_a_log_that_verifies_and_names_its_tenants() {
    let d = dir("run");
    let keys = d.join("keys");
    json(&["keys", "generate", &s(&keys), "--json"]);
    let log = d.join("run.log");
    let manifest =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/three-tenants/run.toml");
    let run = json(&[
        "run",
        &s(&manifest),
        "--audit",
        &s(&log),
        "--keys",
        &s(&keys),
        "--json",
    ]);
    let v = json(&["audit", "verify", &s(&log), "--keys", &s(&keys), "--json"]);
    assert_eq!(v["verified"], true);
    assert_eq!(v["entries"], run["audit"]["entries"]);
    assert_eq!(v["root"], run["audit"]["root"]);
    let bytes = std::fs::read(&log).unwrap();
    let (entries, _) = payloads(&bytes);
    assert_eq!(v["root"].as_str().unwrap(), hex(&mth(&entries)));
    // Every tenant's creation is in the log.
    let shown = json(&["audit", "show", &s(&log), "--json"]);
    let texts: Vec<String> = shown
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["text"].as_str().unwrap().to_string())
        .collect();
    let created = texts.iter().filter(|t| t.contains("vhm-created")).count();
    assert_eq!(created, run["vhms"].as_array().unwrap().len(), "{texts:?}");
    std::fs::remove_dir_all(&d).unwrap();
}
