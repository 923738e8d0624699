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
        expires_ns: Some(1_000_000),
    }
}

fn req(operation: Operation, domain: Domain, amount: u64, time_ns: u64) -> Request {
    Request {
        operation,
        domain,
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
