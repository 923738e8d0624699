//! Capability tokens: minting, attenuation, verification, revocation, and the attacks on them.
//! Randomness (the block keys) comes from a seeded ChaCha8 generator; a failure prints the seed.

use biscuit_auth::builder::BlockBuilder;
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use xdv_token::*;

const SEED: u64 = 0x5d_b0_0c;

struct Keys(ChaCha8Rng);
impl Keys {
    fn new() -> Keys {
        Keys(ChaCha8Rng::seed_from_u64(SEED))
    }
    fn next(&mut self) -> [u8; 32] {
        let mut b = [0u8; 32];
        self.0.fill_bytes(&mut b);
        b
    }
}

fn grant() -> Grant {
    Grant {
        domains: vec![Domain::K, Domain::Q],
        operations: vec![Operation::Submit, Operation::Reserve, Operation::Send],
        amount_max: Some(1000),
        resources_max: vec![],
        expires_ns: Some(1_000_000),
    }
}

/// A request for `amount` fuel units (the grant's `amount_max` caps every resource).
fn req(operation: Operation, domain: Domain, amount: u64, time_ns: u64) -> Request {
    reqr(operation, domain, "fuel_units", amount, time_ns)
}

fn reqr(
    operation: Operation,
    domain: Domain,
    resource: &'static str,
    amount: u64,
    time_ns: u64,
) -> Request {
    Request {
        operation,
        domain,
        resource,
        amount,
        time_ns,
    }
}

fn setup() -> (Authority, Verifier, Keys) {
    let mut k = Keys::new();
    let a = Authority::from_secret(&k.next()).unwrap();
    let v = Verifier::new(&a.public_key()).unwrap();
    (a, v, k)
}

/// Every request in the table against one token: (operation, domain, amount, time, allowed).
fn check_table(
    v: &Verifier,
    bytes: &[u8],
    revoked: &RevocationSet,
    table: &[(Operation, Domain, u64, u64, bool)],
) {
    for (i, (op, d, amt, t, ok)) in table.iter().enumerate() {
        let r = v.verify(bytes, &req(*op, *d, *amt, *t), revoked);
        assert_eq!(
            r.is_ok(),
            *ok,
            "seed {SEED:#x}, case {i} {op:?} {d:?} {amt} @{t}: {r:?}"
        );
    }
}

#[test]
fn a_minted_token_allows_exactly_its_grant() {
    let (a, v, mut k) = setup();
    let t = a
        .mint(&Subject::Vhm("tenant-a".into()), &grant(), &k.next())
        .unwrap();
    let b = t.to_bytes().unwrap();
    use Domain::*;
    use Operation::*;
    check_table(
        &v,
        &b,
        &RevocationSet::default(),
        &[
            (Submit, Q, 10, 0, true),
            (Reserve, K, 1000, 999_999, true),
            (Send, K, 0, 5, true),
            (Submit, Phi, 1, 0, false),
            (Create, Q, 1, 0, false),
            (Submit, Q, 1001, 0, false),
            (Submit, Q, 1, 1_000_000, false),
        ],
    );
}

#[test]
fn failures_name_the_failing_check() {
    let (a, v, mut k) = setup();
    let b = a
        .mint(&Subject::Vhm("t".into()), &grant(), &k.next())
        .unwrap()
        .to_bytes()
        .unwrap();
    let none = RevocationSet::default();
    match v.verify(&b, &req(Operation::Submit, Domain::Q, 5000, 0), &none) {
        Err(TokenError::CheckFailed { block: 0, rule, .. }) => {
            assert!(rule.contains("$a <= 1000"), "{rule}")
        }
        r => panic!("{r:?}"),
    }
    match v.verify(&b, &req(Operation::Submit, Domain::Q, 1, 2_000_000), &none) {
        Err(TokenError::Expired {
            block: 0,
            rule,
            time_ns: 2_000_000,
            ..
        }) => assert!(rule.contains("1000000"), "{rule}"),
        r => panic!("{r:?}"),
    }
    match v.verify(&b, &req(Operation::Create, Domain::Phi, 0, 0), &none) {
        Err(e @ TokenError::Insufficient { .. }) => {
            assert!(e.to_string().contains("right(\"phi\", \"create\")"), "{e}")
        }
        r => panic!("{r:?}"),
    }
}

#[test]
fn attenuation_only_narrows() {
    let (a, v, mut k) = setup();
    let parent = a
        .mint(&Subject::Vhm("parent".into()), &grant(), &k.next())
        .unwrap();
    let child = parent
        .attenuate(
            &Restriction {
                domains: Some(vec![Domain::Q]),
                operations: Some(vec![Operation::Submit]),
                amount_max: Some(100),
                resources_max: vec![],
                expires_ns: Some(500),
            },
            "nested vhm parent/child",
            &k.next(),
        )
        .unwrap();
    assert_eq!(child.blocks(), 2);
    let b = child.to_bytes().unwrap();
    use Domain::*;
    use Operation::*;
    check_table(
        &v,
        &b,
        &RevocationSet::default(),
        &[
            (Submit, Q, 100, 499, true),
            (Submit, Q, 101, 0, false),
            (Submit, Q, 1, 500, false),
            (Submit, K, 1, 0, false),
            (Reserve, Q, 1, 0, false),
        ],
    );
    // A restriction that tries to widen (more domains, a larger amount, a later expiry) is only
    // one more check: the parent's checks still bind.
    let wider = parent
        .attenuate(
            &Restriction {
                domains: Some(vec![Domain::K, Domain::Q, Domain::Phi]),
                operations: Some(Operation::ALL.to_vec()),
                amount_max: Some(1 << 40),
                resources_max: vec![("shots".into(), 1 << 40)],
                expires_ns: Some(1 << 50),
            },
            "wider",
            &k.next(),
        )
        .unwrap()
        .to_bytes()
        .unwrap();
    check_table(
        &v,
        &wider,
        &RevocationSet::default(),
        &[
            (Submit, Q, 10, 0, true),
            (Submit, Phi, 10, 0, false),
            (Create, K, 1, 0, false),
            (Submit, Q, 2000, 0, false),
            (Submit, Q, 1, 2_000_000, false),
        ],
    );
}

#[test]
fn escalation_through_nesting_is_refused() {
    let (a, v, mut k) = setup();
    let root = a
        .mint(&Subject::Vhm("p".into()), &grant(), &k.next())
        .unwrap();
    // Three levels deep, each narrowing; the grandchild cannot regain what the child dropped.
    let child = root
        .attenuate(
            &Restriction {
                domains: Some(vec![Domain::Q]),
                ..Restriction::default()
            },
            "p/c",
            &k.next(),
        )
        .unwrap();
    let grandchild = child
        .attenuate(
            &Restriction {
                domains: Some(vec![Domain::K, Domain::Q]),
                amount_max: Some(10),
                ..Restriction::default()
            },
            "p/c/g",
            &k.next(),
        )
        .unwrap();
    let b = grandchild.to_bytes().unwrap();
    let none = RevocationSet::default();
    assert!(v
        .verify(&b, &req(Operation::Submit, Domain::Q, 10, 0), &none)
        .is_ok());
    match v.verify(&b, &req(Operation::Submit, Domain::K, 1, 0), &none) {
        Err(TokenError::CheckFailed { block: 1, .. }) => {}
        r => panic!("seed {SEED:#x}: {r:?}"),
    }
}

#[test]
fn an_appended_block_that_declares_rights_grants_nothing() {
    let (a, v, mut k) = setup();
    let t = a
        .mint(&Subject::Vhm("t".into()), &grant(), &k.next())
        .unwrap();
    let kp = biscuit_auth::KeyPair::from(
        &biscuit_auth::PrivateKey::from_bytes(&k.next(), biscuit_auth::Algorithm::Ed25519).unwrap(),
    );
    let hostile = BlockBuilder::new()
        .code(
            r#"right("phi", "create"); right("q", "submit");
               right($d, $o) <- domain($d), operation($o);
               check if true;"#,
        )
        .unwrap();
    let forged = t.biscuit().append_with_keypair(&kp, hostile).unwrap();
    let b = Token::from_biscuit(forged).to_bytes().unwrap();
    let none = RevocationSet::default();
    assert!(matches!(
        v.verify(&b, &req(Operation::Create, Domain::Phi, 0, 0), &none),
        Err(TokenError::Insufficient { .. })
    ));
    assert!(v
        .verify(&b, &req(Operation::Submit, Domain::Q, 5000, 0), &none)
        .is_err());
    assert!(v
        .verify(&b, &req(Operation::Submit, Domain::Q, 5, 0), &none)
        .is_ok());
}

#[test]
fn removing_or_swapping_blocks_breaks_the_signature_chain() {
    let (a, v, mut k) = setup();
    let t = a
        .mint(&Subject::Vhm("t".into()), &grant(), &k.next())
        .unwrap();
    let narrowed = t
        .attenuate(
            &Restriction {
                operations: Some(vec![Operation::Send]),
                ..Restriction::default()
            },
            "c",
            &k.next(),
        )
        .unwrap();
    let full = narrowed.to_bytes().unwrap();
    // Dropping the restricting block from the protobuf container: re-encode with fewer blocks.
    let container = narrowed.biscuit().container();
    let mut c = container.clone();
    c.blocks.clear();
    let stripped = c.to_vec().unwrap();
    let none = RevocationSet::default();
    assert!(matches!(
        v.verify(&stripped, &req(Operation::Submit, Domain::Q, 1, 0), &none),
        Err(TokenError::Forged { .. })
    ));
    assert!(v
        .verify(&full, &req(Operation::Send, Domain::Q, 1, 0), &none)
        .is_ok());
}

#[test]
fn forged_tokens_are_refused() {
    let (a, v, mut k) = setup();
    let b = a
        .mint(&Subject::Vhm("t".into()), &grant(), &k.next())
        .unwrap()
        .to_bytes()
        .unwrap();
    let none = RevocationSet::default();
    let ok = req(Operation::Submit, Domain::Q, 1, 0);
    // Another operator's key.
    let other = Authority::from_secret(&k.next()).unwrap();
    let theirs = other
        .mint(&Subject::Vhm("t".into()), &grant(), &k.next())
        .unwrap()
        .to_bytes()
        .unwrap();
    assert!(matches!(
        v.verify(&theirs, &ok, &none),
        Err(TokenError::Forged { .. })
    ));
    // Every single bit flip of a genuine token is refused (or, if it lands in a byte protobuf
    // ignores, changes nothing the signatures cover).
    let mut accepted_changes = 0;
    for pos in 0..b.len() {
        let mut bad = b.clone();
        bad[pos] ^= 0x01;
        if let Ok(t) = Token::from_bytes(&bad, &a.public_key()) {
            // Parsing succeeded: the signed content must be unchanged.
            assert_eq!(
                t.print(),
                Token::from_bytes(&b, &a.public_key()).unwrap().print(),
                "seed {SEED:#x}, byte {pos}"
            );
            accepted_changes += 1;
        }
    }
    assert!(accepted_changes <= 2, "{accepted_changes} flips parsed");
    assert!(matches!(
        v.verify(b"garbage", &ok, &none),
        Err(TokenError::Forged { .. })
    ));
    assert!(matches!(
        v.verify(&vec![0u8; TOKEN_BYTES_MAX + 1], &ok, &none),
        Err(TokenError::TooLarge { .. })
    ));
}

#[test]
fn revocation_by_id_revokes_the_token_and_its_children() {
    let (a, v, mut k) = setup();
    let t = a
        .mint(&Subject::IpcEndpoint("c7-a".into()), &grant(), &k.next())
        .unwrap();
    let child = t
        .attenuate(
            &Restriction {
                amount_max: Some(5),
                ..Restriction::default()
            },
            "c",
            &k.next(),
        )
        .unwrap();
    let ids = child.revocation_ids();
    assert_eq!(ids.len(), 2);
    assert_eq!(ids[0], t.revocation_ids()[0]);
    let ok = req(Operation::Send, Domain::K, 1, 0);
    let mut set = RevocationSet::default();
    assert!(v.verify(&child.to_bytes().unwrap(), &ok, &set).is_ok());
    // Revoking the child's own block leaves the parent usable.
    set.revoke(&ids[1]);
    assert!(matches!(
        v.verify(&child.to_bytes().unwrap(), &ok, &set),
        Err(TokenError::Revoked { block: 1, .. })
    ));
    assert!(v.verify(&t.to_bytes().unwrap(), &ok, &set).is_ok());
    // Revoking the authority block revokes both; the set survives its text form.
    set.revoke(&ids[0]);
    let set = RevocationSet::from_text(&set.to_text()).unwrap();
    assert_eq!(set.len(), 2);
    assert!(matches!(
        v.verify(&t.to_bytes().unwrap(), &ok, &set),
        Err(TokenError::Revoked { block: 0, .. })
    ));
    assert!(RevocationSet::from_text("zz\n").is_err());
}

#[test]
fn a_replayed_expired_token_stays_expired() {
    let (a, v, mut k) = setup();
    let t = a
        .mint(
            &Subject::ApiClient("ops".into()),
            &Grant {
                expires_ns: Some(100),
                ..grant()
            },
            &k.next(),
        )
        .unwrap()
        .to_bytes()
        .unwrap();
    let none = RevocationSet::default();
    assert!(v
        .verify(&t, &req(Operation::Submit, Domain::Q, 1, 99), &none)
        .is_ok());
    // Replaying the same bytes later, any number of times, is refused; so is a child that
    // claims a later expiry.
    for time in [100, 101, 10_000, i64::MAX as u64] {
        assert!(
            matches!(
                v.verify(&t, &req(Operation::Submit, Domain::Q, 1, time), &none),
                Err(TokenError::Expired { .. })
            ),
            "time {time}"
        );
    }
    let parsed = Token::from_bytes(&t, &a.public_key()).unwrap();
    let later = parsed
        .attenuate(
            &Restriction {
                expires_ns: Some(1 << 40),
                ..Restriction::default()
            },
            "later",
            &k.next(),
        )
        .unwrap()
        .to_bytes()
        .unwrap();
    assert!(matches!(
        v.verify(&later, &req(Operation::Submit, Domain::Q, 1, 200), &none),
        Err(TokenError::Expired { block: 0, .. })
    ));
    // Times beyond Datalog's integers are refused, not wrapped.
    assert!(matches!(
        v.verify(&t, &req(Operation::Submit, Domain::Q, 1, u64::MAX), &none),
        Err(TokenError::OutOfRange { .. })
    ));
}

#[test]
fn subject_names_cannot_inject_datalog() {
    let (a, _, mut k) = setup();
    for bad in ["", "a\"); right(\"phi\", \"create", "x y", &"n".repeat(65)] {
        assert!(
            matches!(
                a.mint(&Subject::Vhm(bad.into()), &grant(), &k.next()),
                Err(TokenError::BadName(_))
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        a.mint(&Subject::Vhm("ok".into()), &grant(), &k.next())
            .unwrap()
            .attenuate(&Restriction::default(), "", &k.next()),
        Err(TokenError::EmptyRestriction)
    ));
}

/// A grant of Q submissions and K sends with per-resource caps and no overall cap.
fn capped() -> Grant {
    Grant {
        domains: vec![Domain::K, Domain::Q],
        operations: vec![Operation::Submit, Operation::Send, Operation::Reserve],
        amount_max: None,
        resources_max: vec![("shots".into(), 1000), ("message_bytes".into(), 64)],
        expires_ns: None,
    }
}

#[test]
fn a_per_resource_cap_refuses_only_that_resource() {
    let (a, v, mut k) = setup();
    let b = a
        .mint(&Subject::Vhm("t".into()), &capped(), &k.next())
        .unwrap()
        .to_bytes()
        .unwrap();
    let none = RevocationSet::default();
    use Domain::*;
    use Operation::*;
    for (i, (op, d, r, amount, ok)) in [
        (Submit, Q, "shots", 1000, true),
        (Submit, Q, "shots", 1001, false),
        (Submit, Q, "logical_qubits", 5000, true),
        (Reserve, K, "memory_bytes", 1 << 40, true),
        (Send, K, "message_bytes", 64, true),
        (Send, K, "message_bytes", 65, false),
        (Send, K, "messages_max", 65, true),
        (Submit, Q, RESOURCE_NONE, 1 << 50, true),
    ]
    .into_iter()
    .enumerate()
    {
        let res = v.verify(&b, &reqr(op, d, r, amount, 0), &none);
        assert_eq!(res.is_ok(), ok, "case {i} {r} {amount}: {res:?}");
    }
    // The refusal names the check of the capped resource, not the other one.
    match v.verify(&b, &reqr(Submit, Q, "shots", 1001, 0), &none) {
        Err(e @ TokenError::CheckFailed { block: 0, .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains(r#"$r != "shots" or amount($a), $a <= 1000"#),
                "{msg}"
            );
            assert!(!msg.contains("message_bytes"), "{msg}");
            assert_eq!(e.reason(), "insufficient");
        }
        r => panic!("{r:?}"),
    }
    // The overall cap and a resource cap together: the smaller binds.
    let both = a
        .mint(
            &Subject::Vhm("t".into()),
            &Grant {
                amount_max: Some(500),
                ..capped()
            },
            &k.next(),
        )
        .unwrap()
        .to_bytes()
        .unwrap();
    assert!(v
        .verify(&both, &reqr(Submit, Q, "shots", 500, 0), &none)
        .is_ok());
    assert!(matches!(
        v.verify(&both, &reqr(Submit, Q, "shots", 501, 0), &none),
        Err(TokenError::CheckFailed { rule, .. }) if rule == "check if amount($a), $a <= 500"
    ));
}

#[test]
fn attenuating_to_a_higher_resource_cap_does_not_widen() {
    let (a, v, mut k) = setup();
    let parent = a
        .mint(&Subject::Vhm("p".into()), &capped(), &k.next())
        .unwrap();
    let none = RevocationSet::default();
    let shots = |n| reqr(Operation::Submit, Domain::Q, "shots", n, 0);
    // Asking for more than the parent's cap: the parent's check (block 0) still refuses.
    let wider = parent
        .attenuate(
            &Restriction {
                resources_max: vec![("shots".into(), 1 << 40)],
                ..Restriction::default()
            },
            "p/wider",
            &k.next(),
        )
        .unwrap()
        .to_bytes()
        .unwrap();
    assert!(v.verify(&wider, &shots(1000), &none).is_ok());
    match v.verify(&wider, &shots(2000), &none) {
        Err(TokenError::CheckFailed { block: 0, rule, .. }) => {
            assert!(rule.contains("$a <= 1000"), "{rule}")
        }
        r => panic!("seed {SEED:#x}: {r:?}"),
    }
    // Narrowing: the child's own cap binds, and names block 1; other resources are untouched.
    let narrow = parent
        .attenuate(
            &Restriction {
                resources_max: vec![("shots".into(), 10)],
                ..Restriction::default()
            },
            "p/narrow",
            &k.next(),
        )
        .unwrap();
    let nb = narrow.to_bytes().unwrap();
    assert!(v.verify(&nb, &shots(10), &none).is_ok());
    match v.verify(&nb, &shots(11), &none) {
        Err(TokenError::CheckFailed { block: 1, rule, .. }) => {
            assert!(
                rule.contains(r#"$r != "shots""#) && rule.contains("$a <= 10"),
                "{rule}"
            )
        }
        r => panic!("seed {SEED:#x}: {r:?}"),
    }
    assert!(v
        .verify(
            &nb,
            &reqr(Operation::Submit, Domain::Q, "logical_qubits", 900, 0),
            &none
        )
        .is_ok());
    // A grandchild cannot lift the child's cap either.
    let regained = narrow
        .attenuate(
            &Restriction {
                resources_max: vec![("shots".into(), 1000)],
                ..Restriction::default()
            },
            "p/narrow/g",
            &k.next(),
        )
        .unwrap()
        .to_bytes()
        .unwrap();
    assert!(matches!(
        v.verify(&regained, &shots(11), &none),
        Err(TokenError::CheckFailed { block: 1, .. })
    ));
}

#[test]
fn unknown_resource_names_are_refused() {
    let (a, v, mut k) = setup();
    for bad in [
        "qubits",
        "",
        "Shots",
        "shots\" or true or \"",
        "shots\", $a <= 99999999",
    ] {
        let g = Grant {
            resources_max: vec![(bad.into(), 5)],
            ..capped()
        };
        match a.mint(&Subject::Vhm("t".into()), &g, &k.next()) {
            Err(e @ TokenError::UnknownResource(_)) => {
                assert_eq!(e.reason(), "invalid");
                assert!(e.to_string().contains("fuel_units"), "{e}");
            }
            r => panic!("{bad:?}: {r:?}"),
        }
    }
    let t = a
        .mint(&Subject::Vhm("t".into()), &capped(), &k.next())
        .unwrap();
    assert!(matches!(
        t.attenuate(
            &Restriction {
                resources_max: vec![("gpu_hours".into(), 1)],
                ..Restriction::default()
            },
            "",
            &k.next()
        ),
        Err(TokenError::UnknownResource(n)) if n == "gpu_hours"
    ));
    // A request naming an unknown resource is refused before any Datalog runs, even when the
    // token would allow everything else.
    let b = t.to_bytes().unwrap();
    assert!(matches!(
        v.verify(
            &b,
            &reqr(Operation::Submit, Domain::Q, "bogus", 0, 0),
            &RevocationSet::default()
        ),
        Err(TokenError::UnknownResource(_))
    ));
    // Long names are cut in the message.
    let long = "x".repeat(1000);
    match resource(&long) {
        Err(TokenError::UnknownResource(n)) => assert_eq!(n.len(), 64),
        r => panic!("{r:?}"),
    }
    for r in RESOURCES {
        assert_eq!(resource(r).unwrap(), r);
    }
}

#[test]
fn base64_text_round_trips_and_every_changed_character_is_refused() {
    let (a, v, mut k) = setup();
    let t = a
        .mint(&Subject::Vhm("t".into()), &capped(), &k.next())
        .unwrap()
        .attenuate(
            &Restriction {
                operations: Some(vec![Operation::Submit]),
                ..Restriction::default()
            },
            "c",
            &k.next(),
        )
        .unwrap();
    let text = t.to_base64().unwrap();
    assert!(text
        .bytes()
        .all(|c| c.is_ascii_alphanumeric() || b"-_=".contains(&c)));
    let back = Token::from_base64(&format!("  {text}\n\n"), &a.public_key()).unwrap();
    assert_eq!(back.to_bytes().unwrap(), t.to_bytes().unwrap());
    assert_eq!(back.revocation_ids(), t.revocation_ids());
    let ok = reqr(Operation::Submit, Domain::Q, "shots", 1, 0);
    assert!(v.authorize(&back, &ok, &RevocationSet::default()).is_ok());
    // Another root refuses it.
    let other = Authority::from_secret(&k.next()).unwrap();
    assert!(matches!(
        Token::from_base64(&text, &other.public_key()),
        Err(TokenError::Forged { .. })
    ));
    // Every character replaced by another base64 character is refused or leaves the signed
    // content unchanged.
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut unchanged = 0;
    for pos in 0..text.len() {
        let mut bad = text.clone().into_bytes();
        let i = alphabet.iter().position(|&c| c == bad[pos]).unwrap_or(0);
        bad[pos] = alphabet[(i + 1) % 64];
        let bad = String::from_utf8(bad).unwrap();
        if let Ok(p) = Token::from_base64(&bad, &a.public_key()) {
            assert_eq!(p.print(), t.print(), "seed {SEED:#x}, character {pos}");
            unchanged += 1;
        }
    }
    assert!(unchanged <= 2, "{unchanged} changed characters parsed");
    // Not base64, or too long, is refused before parsing.
    assert!(matches!(
        Token::from_base64("not base64!", &a.public_key()),
        Err(TokenError::Forged { .. })
    ));
    assert!(matches!(
        Token::from_base64(&"A".repeat(TOKEN_TEXT_BYTES_MAX + 4), &a.public_key()),
        Err(TokenError::TooLarge { .. })
    ));
}

#[test]
fn the_subject_is_read_from_the_authority_block_only() {
    let (a, _, mut k) = setup();
    let t = a
        .mint(&Subject::ApiClient("ops".into()), &grant(), &k.next())
        .unwrap();
    let want = Some(("api-client".to_string(), "ops".to_string()));
    assert_eq!(t.subject(), want);
    let child = t
        .attenuate(
            &Restriction {
                amount_max: Some(1),
                ..Restriction::default()
            },
            "c",
            &k.next(),
        )
        .unwrap();
    assert_eq!(child.subject(), want);
    // A block that declares another subject changes nothing.
    let kp = biscuit_auth::KeyPair::from(
        &biscuit_auth::PrivateKey::from_bytes(&k.next(), biscuit_auth::Algorithm::Ed25519).unwrap(),
    );
    let hostile = BlockBuilder::new()
        .code(r#"subject("vhm", "root");"#)
        .unwrap();
    let forged = Token::from_biscuit(t.biscuit().append_with_keypair(&kp, hostile).unwrap());
    assert_eq!(forged.subject(), want);
    for (kind, name) in [
        ("vhm", "a"),
        ("nested-vhm", "a/b"),
        ("ipc-endpoint", "c1"),
        ("api-client", "x"),
    ] {
        let s = Subject::new(kind, name).unwrap();
        assert_eq!((s.kind(), s.name()), (kind, name));
        let t = a.mint(&s, &grant(), &k.next()).unwrap();
        assert_eq!(t.subject(), Some((kind.to_string(), name.to_string())));
    }
    assert_eq!(Subject::new("root", "x"), None);
}

#[test]
fn extends_holds_for_the_token_itself_and_its_attenuations_only() {
    let (a, _, mut k) = setup();
    let s = Subject::Vhm("p".into());
    let parent = a.mint(&s, &grant(), &k.next()).unwrap();
    let r = Restriction {
        domains: Some(vec![Domain::Q]),
        ..Restriction::default()
    };
    let child = parent.attenuate(&r, "p/c", &k.next()).unwrap();
    let sibling = parent.attenuate(&r, "p/c", &k.next()).unwrap();
    let grandchild = child.attenuate(&r, "p/c/g", &k.next()).unwrap();
    // Minted again with the same content: another token (another signature).
    let twin = a.mint(&s, &grant(), &k.next()).unwrap();
    assert!(parent.extends(&parent));
    assert!(child.extends(&parent));
    assert!(grandchild.extends(&parent) && grandchild.extends(&child));
    assert!(!parent.extends(&child));
    assert!(!sibling.extends(&child) && !grandchild.extends(&sibling));
    assert!(!twin.extends(&parent) && !parent.extends(&twin));
}

#[test]
fn blocks_can_be_shown_and_unverified_tokens_are_only_shown() {
    let (a, _, mut k) = setup();
    let t = a
        .mint(&Subject::Vhm("t".into()), &capped(), &k.next())
        .unwrap()
        .attenuate(
            &Restriction {
                expires_ns: Some(77),
                ..Restriction::default()
            },
            "nested vhm t/c",
            &k.next(),
        )
        .unwrap();
    let views = t.block_views();
    assert_eq!(views.len(), 2);
    assert_eq!(
        views
            .iter()
            .map(|b| b.revocation_id.clone())
            .collect::<Vec<_>>(),
        t.revocation_ids()
    );
    assert!(
        views[0].source.contains(r#"subject("vhm", "t")"#),
        "{}",
        views[0].source
    );
    assert!(views[0].source.contains(r#"right("q", "submit")"#));
    assert!(views[1].source.contains("$t < 77"), "{}", views[1].source);
    assert_eq!(views[1].context.as_deref(), Some("nested vhm t/c"));
    // Another operator's token does not verify here, but can still be shown.
    let other = Authority::from_secret(&k.next()).unwrap();
    let theirs = other
        .mint(&Subject::Vhm("x".into()), &capped(), &k.next())
        .unwrap();
    let text = theirs.to_base64().unwrap();
    assert!(Token::from_base64(&text, &a.public_key()).is_err());
    let shown = inspect_unverified(&text).unwrap();
    assert_eq!(shown.len(), 1);
    assert_eq!(shown[0].revocation_id, theirs.revocation_ids()[0]);
    assert!(shown[0].source.contains(r#"subject("vhm", "x")"#));
    assert!(matches!(
        inspect_unverified("%%%"),
        Err(TokenError::Forged { .. })
    ));
}

#[test]
fn names_parse_back_and_reasons_match_the_cores_denials() {
    for d in Domain::ALL {
        assert_eq!(Domain::from_name(d.name()), Some(d));
    }
    for o in Operation::ALL {
        assert_eq!(Operation::from_name(o.name()), Some(o));
    }
    assert_eq!(Domain::from_name("Q"), None);
    assert_eq!(Operation::from_name("delete"), None);
    let (a, v, mut k) = setup();
    let t = a
        .mint(&Subject::Vhm("t".into()), &grant(), &k.next())
        .unwrap();
    let b = t.to_bytes().unwrap();
    let mut revoked = RevocationSet::default();
    let reason = |r: Result<Authorized, TokenError>| r.unwrap_err().reason();
    assert_eq!(
        reason(v.verify(b"junk", &req(Operation::Submit, Domain::Q, 1, 0), &revoked)),
        "forged"
    );
    assert_eq!(
        reason(v.verify(&b, &req(Operation::Submit, Domain::Q, 1, 1 << 30), &revoked)),
        "expired"
    );
    assert_eq!(
        reason(v.verify(&b, &req(Operation::Create, Domain::Q, 1, 0), &revoked)),
        "insufficient"
    );
    revoked.revoke(&t.revocation_ids()[0]);
    assert_eq!(
        reason(v.verify(&b, &req(Operation::Submit, Domain::Q, 1, 0), &revoked)),
        "revoked"
    );
}
