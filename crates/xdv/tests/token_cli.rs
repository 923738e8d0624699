//! `xdv token` as a user runs it: mint from a key directory, inspect, verify requests, attenuate
//! offline, revoke by block, and the refusals of forged, altered and badly asked-for tokens.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn xdv(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_xdv"))
        .args(args)
        .output()
        .expect("xdv runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn code(out: &Output) -> i32 {
    out.status.code().expect("an exit code")
}

/// Runs `xdv ARGS --json`, expects `want` as the exit code, returns the JSON on stdout.
fn json_exit(args: &[&str], want: i32) -> Value {
    let mut a = args.to_vec();
    a.push("--json");
    let out = xdv(&a);
    assert_eq!(code(&out), want, "xdv {a:?}: {}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "xdv {a:?}: not one JSON document ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn json(args: &[&str]) -> Value {
    json_exit(args, 0)
}

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("xdv-token-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn s(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// A key directory and a token for `vhm:tenant-a`: K and Q, submit/send/reserve, at most 1000
/// shots, expiring at logical time 1 000 000 ns.
fn setup(name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let d = dir(name);
    let keys = d.join("keys");
    json(&["keys", "generate", &s(&keys)]);
    let token = d.join("tenant-a.token");
    let minted = json(&[
        "token",
        "mint",
        "--keys",
        &s(&keys),
        "--subject",
        "vhm:tenant-a",
        "--domains",
        "k,q",
        "--operations",
        "submit,send,reserve",
        "--max",
        "shots=1000",
        "--max",
        "message_bytes=4096",
        "--expires-ns",
        "1000000",
        "--out",
        &s(&token),
    ]);
    assert_eq!(minted["blocks"], 1);
    assert_eq!(minted["subject"]["kind"], "vhm");
    assert_eq!(minted["revocation_ids"].as_array().unwrap().len(), 1);
    (d, keys, token)
}

/// `xdv token verify TOKEN --root KEYS --operation OP --domain D --resource R --amount N` plus
/// `extra`.
fn verify(token: &Path, keys: &Path, req: [&str; 4], extra: &[&str]) -> Output {
    let (t, k) = (s(token), s(keys));
    let mut a = vec![
        "token",
        "verify",
        &t,
        "--root",
        &k,
        "--operation",
        req[0],
        "--domain",
        req[1],
        "--resource",
        req[2],
        "--amount",
        req[3],
    ];
    a.extend_from_slice(extra);
    xdv(&a)
}

#[cfg(unix)]
fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_minted_token_inspects_and_verifies() {
    let (d, keys, token) = setup("mint");
    #[cfg(unix)]
    assert_eq!(mode(&token), 0o600, "a token file is a bearer credential");
    let text = std::fs::read_to_string(&token).unwrap();
    assert!(text.ends_with('\n'));
    assert!(text
        .trim_end()
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"-_=".contains(&c)));

    let shown = json(&["token", "inspect", &s(&token), "--root", &s(&keys)]);
    assert_eq!(shown["verified"], true);
    assert_eq!(shown["subject"]["name"], "tenant-a");
    assert_eq!(shown["block_count"], 1);
    let datalog = shown["blocks"][0]["datalog"].as_str().unwrap();
    assert!(datalog.contains(r#"right("q", "submit")"#), "{datalog}");
    assert!(
        datalog.contains(r#"check if resource($r), $r != "shots" or amount($a), $a <= 1000"#),
        "{datalog}"
    );
    let human = xdv(&["token", "inspect", &s(&token), "--root", &s(&keys)]);
    assert_eq!(code(&human), 0, "{}", stderr(&human));
    assert!(String::from_utf8_lossy(&human.stdout).contains("subject vhm \"tenant-a\""));

    let ok = verify(&token, &keys, ["submit", "q", "shots", "1000"], &["--json"]);
    assert_eq!(code(&ok), 0, "{}", stderr(&ok));
    let v: Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(v["authorized"], true);
    // Other resources are not capped by the shots cap.
    let qubits = verify(
        &token,
        &keys,
        ["submit", "q", "logical_qubits", "5000"],
        &[],
    );
    assert_eq!(code(&qubits), 0, "{}", stderr(&qubits));
    let over = verify(&token, &keys, ["submit", "q", "shots", "1001"], &[]);
    assert_eq!(code(&over), 1);
    assert!(
        stderr(&over).contains(r#"$r != "shots" or amount($a), $a <= 1000"#),
        "{}",
        stderr(&over)
    );
    let expired = verify(
        &token,
        &keys,
        ["send", "k", "message_bytes", "10"],
        &["--time-ns", "1000000", "--json"],
    );
    assert_eq!(code(&expired), 1);
    let v: Value = serde_json::from_slice(&expired.stdout).unwrap();
    assert_eq!(v["reason"], "expired");
    let phi = verify(&token, &keys, ["submit", "phi", "none", "0"], &[]);
    assert_eq!(code(&phi), 1);
    assert!(stderr(&phi).contains(r#"right("phi", "submit")"#));

    // Never overwritten.
    let again = xdv(&[
        "token",
        "mint",
        "--keys",
        &s(&keys),
        "--subject",
        "vhm:other",
        "--domains",
        "k",
        "--operations",
        "read",
        "--out",
        &s(&token),
    ]);
    assert_eq!(code(&again), 2);
    assert!(
        stderr(&again).contains("never overwritten"),
        "{}",
        stderr(&again)
    );
    assert_eq!(std::fs::read_to_string(&token).unwrap(), text);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn an_attenuated_token_is_refused_beyond_its_attenuation() {
    let (d, keys, token) = setup("attenuate");
    let child = d.join("child.token");
    let made = json(&[
        "token",
        "attenuate",
        &s(&token),
        "--root",
        &s(&keys),
        "--domains",
        "q",
        "--max",
        "shots=10",
        "--out",
        &s(&child),
    ]);
    assert_eq!(made["blocks"], 2);
    #[cfg(unix)]
    assert_eq!(mode(&child), 0o600);
    assert!(code(&verify(&child, &keys, ["submit", "q", "shots", "10"], &[])) == 0);
    let over = verify(&child, &keys, ["submit", "q", "shots", "11"], &["--json"]);
    assert_eq!(code(&over), 1);
    let e = stderr(&over);
    assert!(
        e.contains("check 1 of block 1 failed") && e.contains("$a <= 10"),
        "{e}"
    );
    let v: Value = serde_json::from_slice(&over.stdout).unwrap();
    assert_eq!(v["authorized"], false);
    assert_eq!(v["reason"], "insufficient");
    assert!(v["error"].as_str().unwrap().contains("$a <= 10"));
    let k = verify(&child, &keys, ["send", "k", "message_bytes", "1"], &[]);
    assert_eq!(code(&k), 1);
    assert!(
        stderr(&k).contains(r#"check if domain("q")"#),
        "{}",
        stderr(&k)
    );
    // The parent still allows what the child dropped.
    assert_eq!(
        code(&verify(
            &token,
            &keys,
            ["send", "k", "message_bytes", "1"],
            &[]
        )),
        0
    );
    // Asking for a higher cap than the parent's widens nothing: block 0's check refuses.
    let wider = d.join("wider.token");
    json(&[
        "token",
        "attenuate",
        &s(&token),
        "--root",
        &s(&keys),
        "--max",
        "shots=5000",
        "--amount-max",
        "1000000",
        "--out",
        &s(&wider),
    ]);
    let w = verify(&wider, &keys, ["submit", "q", "shots", "2000"], &[]);
    assert_eq!(code(&w), 1);
    assert!(stderr(&w).contains("of block 0 failed"), "{}", stderr(&w));
    let shown = json(&["token", "inspect", &s(&child), "--root", &s(&keys)]);
    assert_eq!(shown["block_count"], 2);
    assert_eq!(shown["blocks"][1]["context"], "xdv token attenuate");
    assert_eq!(shown["subject"]["name"], "tenant-a");
    // An attenuation that restricts nothing is a usage error.
    let empty = xdv(&[
        "token",
        "attenuate",
        &s(&token),
        "--root",
        &s(&keys),
        "--out",
        &s(&d.join("empty.token")),
    ]);
    assert_eq!(code(&empty), 2);
    assert!(stderr(&empty).contains("restriction is empty"));
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn revoking_a_block_refuses_the_tokens_that_carry_it() {
    let (d, keys, token) = setup("revoke");
    let child = d.join("child.token");
    json(&[
        "token",
        "attenuate",
        &s(&token),
        "--root",
        &s(&keys),
        "--operations",
        "submit",
        "--out",
        &s(&child),
    ]);
    let list = d.join("revoked.txt");
    let r = json(&[
        "token",
        "revoke",
        &s(&child),
        "--root",
        &s(&keys),
        "--block",
        "1",
        "--list",
        &s(&list),
    ]);
    assert_eq!(r["newly_revoked"], true);
    assert_eq!(r["revoked_count"], 1);
    let ask = ["submit", "q", "shots", "1"];
    let lst = s(&list);
    let refused = verify(&child, &keys, ask, &["--revoked", &lst, "--json"]);
    assert_eq!(code(&refused), 1);
    assert!(
        stderr(&refused).contains("revoked: block 1"),
        "{}",
        stderr(&refused)
    );
    let v: Value = serde_json::from_slice(&refused.stdout).unwrap();
    assert_eq!(v["reason"], "revoked");
    assert_eq!(code(&verify(&token, &keys, ask, &["--revoked", &lst])), 0);
    // Revoking again changes nothing; revoking block 0 of the parent revokes both.
    let again = json(&[
        "token",
        "revoke",
        &s(&child),
        "--root",
        &s(&keys),
        "--block",
        "1",
        "--list",
        &lst,
    ]);
    assert_eq!(again["newly_revoked"], false);
    json(&[
        "token",
        "revoke",
        &s(&token),
        "--root",
        &s(&keys),
        "--list",
        &lst,
    ]);
    assert_eq!(code(&verify(&token, &keys, ask, &["--revoked", &lst])), 1);
    assert_eq!(code(&verify(&child, &keys, ask, &["--revoked", &lst])), 1);
    let text = std::fs::read_to_string(&list).unwrap();
    assert_eq!(text.lines().count(), 2, "{text}");
    assert!(text
        .lines()
        .all(|l| l.bytes().all(|b| b.is_ascii_hexdigit())));
    // A block the token does not have.
    let none = xdv(&[
        "token",
        "revoke",
        &s(&token),
        "--root",
        &s(&keys),
        "--block",
        "3",
        "--list",
        &lst,
    ]);
    assert_eq!(code(&none), 2);
    // A damaged list is a file error.
    std::fs::write(&list, "not hex\n").unwrap();
    assert_eq!(code(&verify(&token, &keys, ask, &["--revoked", &lst])), 2);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn forged_and_altered_tokens_are_refused() {
    let (d, keys, token) = setup("forged");
    // A token minted by another key directory, verified against the first.
    let other = d.join("other-keys");
    json(&["keys", "generate", &s(&other)]);
    let theirs = d.join("theirs.token");
    json(&[
        "token",
        "mint",
        "--keys",
        &s(&other),
        "--subject",
        "api-client:mallory",
        "--domains",
        "k,q,phi",
        "--operations",
        "create,submit",
        "--out",
        &s(&theirs),
    ]);
    let ask = ["submit", "q", "shots", "1"];
    let forged = verify(&theirs, &keys, ask, &["--json"]);
    assert_eq!(code(&forged), 1);
    assert!(stderr(&forged).contains("forged"), "{}", stderr(&forged));
    let v: Value = serde_json::from_slice(&forged.stdout).unwrap();
    assert_eq!(v["reason"], "forged");
    assert_eq!(code(&verify(&theirs, &other, ask, &[])), 0);
    // Inspect says it does not verify, and shows the claimed content as unverified.
    let shown = json_exit(&["token", "inspect", &s(&theirs), "--root", &s(&keys)], 1);
    assert_eq!(shown["verified"], false);
    assert_eq!(shown["block_count"], 1);
    assert!(shown["blocks"][0]["datalog"]
        .as_str()
        .unwrap()
        .contains("mallory"));
    let human = xdv(&["token", "inspect", &s(&theirs), "--root", &s(&keys)]);
    assert_eq!(code(&human), 1);
    assert!(String::from_utf8_lossy(&human.stdout).contains("UNVERIFIED"));

    // One character changed (in the proof that closes the chain) is refused.
    let text = std::fs::read_to_string(&token).unwrap();
    let mut bytes = text.trim_end().as_bytes().to_vec();
    let pos = bytes.len() - 10;
    bytes[pos] = if bytes[pos] == b'A' { b'B' } else { b'A' };
    let flipped = d.join("flipped.token");
    std::fs::write(&flipped, [bytes.as_slice(), b"\n"].concat()).unwrap();
    let f = verify(&flipped, &keys, ask, &[]);
    assert_eq!(code(&f), 1);
    assert!(
        stderr(&f).contains("forged or corrupt token"),
        "{}",
        stderr(&f)
    );
    // And one in the middle of the signed authority block (its subject name).
    let mut bytes = text.trim_end().as_bytes().to_vec();
    bytes[40] = if bytes[40] == b'A' { b'B' } else { b'A' };
    std::fs::write(&flipped, [bytes.as_slice(), b"\n"].concat()).unwrap();
    assert_eq!(code(&verify(&flipped, &keys, ask, &[])), 1);
    // Not a token at all.
    std::fs::write(&flipped, "hello\n").unwrap();
    assert_eq!(code(&verify(&flipped, &keys, ask, &[])), 1);
    let _ = std::fs::remove_dir_all(d);
}

#[test]
fn bad_requests_are_usage_errors() {
    let (d, keys, token) = setup("usage");
    let out = d.join("bad.token");
    // (subject, further arguments, what the error says)
    let mint = |subject: &str, extra: &[&str]| {
        let (k, o) = (s(&keys), s(&out));
        let mut a = vec![
            "token",
            "mint",
            "--keys",
            &k,
            "--subject",
            subject,
            "--operations",
            "submit",
            "--out",
            &o,
        ];
        a.extend_from_slice(extra);
        if !extra.contains(&"--domains") {
            a.extend_from_slice(&["--domains", "q"]);
        }
        xdv(&a)
    };
    for (subject, extra, says) in [
        (
            "vhm:t",
            &["--max", "qubits=5"][..],
            "unknown resource \"qubits\"",
        ),
        ("vhm:t", &["--max", "shots"][..], "must be RESOURCE=N"),
        (
            "vhm:t",
            &["--max", "shots=-1"][..],
            "not a non-negative integer",
        ),
        ("vhm:t", &["--domains", "k,x"][..], "unknown domain \"x\""),
        (
            "vhm:t",
            &["--operations", "delete"][..],
            "unknown operation \"delete\"",
        ),
        ("root:t", &[][..], "unknown subject kind \"root\""),
        ("vhm:a b", &[][..], "subject name \"a b\""),
        ("tenant", &[][..], "must be KIND:NAME"),
    ] {
        let o = mint(subject, extra);
        assert_eq!(code(&o), 2, "{subject} {extra:?}: {}", stderr(&o));
        let e = stderr(&o);
        assert!(
            e.starts_with("xdv: error: ") && e.contains(says),
            "{subject} {extra:?}: {e}"
        );
        assert!(!out.exists(), "{subject} {extra:?} wrote a token");
    }
    let ask = ["submit", "q", "bogus", "1"];
    let o = verify(&token, &keys, ask, &[]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("unknown resource"), "{}", stderr(&o));
    assert_eq!(
        code(&verify(&token, &keys, ["fly", "q", "none", "0"], &[])),
        2
    );
    // Amounts beyond Datalog's integers cannot be asked for.
    assert_eq!(
        code(&verify(
            &token,
            &keys,
            ["submit", "q", "shots", "18446744073709551615"],
            &[]
        )),
        2
    );
    let missing = verify(
        &d.join("missing.token"),
        &keys,
        ["submit", "q", "none", "0"],
        &[],
    );
    assert_eq!(code(&missing), 2);
    assert!(
        stderr(&missing).contains("cannot read"),
        "{}",
        stderr(&missing)
    );
    assert_eq!(
        code(&verify(&token, &d, ["submit", "q", "none", "0"], &[])),
        2,
        "a directory without token-root.pub"
    );
    let _ = std::fs::remove_dir_all(d);
}
