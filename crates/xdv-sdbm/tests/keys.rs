//! Keys: HKDF against an HMAC-SHA-256 computation written here (itself checked against RFC 5869
//! test case 1), key file permissions, and the hybrid channel key agreement.

mod common;

use common::scratch;
use sha2::{Digest, Sha256};
use xdv_sdbm::channel::{initiate, ChannelError, ChannelKeyPair, CIPHERTEXT_BYTES};
use xdv_sdbm::keys::*;

fn hmac(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let mut inner = Sha256::new();
    inner.update(k.map(|b| b ^ 0x36));
    inner.update(msg);
    let mut outer = Sha256::new();
    outer.update(k.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

fn hkdf(salt: &[u8], ikm: &[u8], info: &[u8], len: usize) -> Vec<u8> {
    let prk = hmac(salt, ikm);
    let mut out = Vec::new();
    let mut t = Vec::new();
    let mut i = 1u8;
    while out.len() < len {
        let mut m = t.clone();
        m.extend_from_slice(info);
        m.push(i);
        t = hmac(&prk, &m).to_vec();
        out.extend_from_slice(&t);
        i += 1;
    }
    out.truncate(len);
    out
}

fn unhex(s: &str) -> Vec<u8> {
    xdv_sdbm::unhex(s).unwrap()
}

#[test]
fn the_reference_hkdf_passes_rfc5869_case_1() {
    let okm = hkdf(
        &unhex("000102030405060708090a0b0c"),
        &[0x0b; 22],
        &unhex("f0f1f2f3f4f5f6f7f8f9"),
        42,
    );
    assert_eq!(
        xdv_sdbm::hex(&okm),
        "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"
    );
}

#[test]
fn derivation_is_hkdf_sha256_with_the_xdv_salt() {
    for (i, label) in ["xdv/audit/ed25519/v1", "a", ""].iter().enumerate() {
        let secret = [i as u8 * 17 + 3; 32];
        let ours: [u8; 64] = derive_bytes(&secret, label);
        assert_eq!(
            ours.to_vec(),
            hkdf(HKDF_SALT, &secret, label.as_bytes(), 64)
        );
        assert_eq!(
            derive_key(&MasterSecret(secret), label).to_vec(),
            hkdf(HKDF_SALT, &secret, label.as_bytes(), 32)
        );
    }
    assert_ne!(
        derive_key(&MasterSecret([1; 32]), "x"),
        derive_key(&MasterSecret([1; 32]), "y")
    );
}

#[test]
fn secret_files_are_0600_and_loose_ones_are_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = scratch("keyfiles");
    let keys = generate(&dir.join("k"), &MasterSecret([9; 32])).unwrap();
    let master = dir.join("k").join(MASTER_FILE);
    let mode = std::fs::metadata(&master).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert_eq!(read_secret(&master).unwrap(), MasterSecret([9; 32]));
    assert_eq!(
        read_public(&dir.join("k").join(AUDIT_PUBLIC_FILE)).unwrap(),
        keys
    );
    for loose in [0o640, 0o604, 0o660, 0o602] {
        std::fs::set_permissions(&master, std::fs::Permissions::from_mode(loose)).unwrap();
        assert!(
            matches!(read_secret(&master), Err(KeyError::Permissions { .. })),
            "mode {loose:o} accepted"
        );
    }
    std::fs::set_permissions(&master, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Never overwritten.
    assert!(matches!(
        generate(&dir.join("k"), &MasterSecret([1; 32])),
        Err(KeyError::Exists(_))
    ));
    assert_eq!(read_secret(&master).unwrap(), MasterSecret([9; 32]));
    // A corrupt file is refused.
    let mut b = std::fs::read(&master).unwrap();
    b[12] ^= 1;
    let bad = dir.join("bad.key");
    std::fs::write(&bad, &b).unwrap();
    std::fs::set_permissions(&bad, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert!(matches!(read_secret(&bad), Err(KeyError::Format { .. })));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn hybrid_agreement_gives_both_sides_the_same_key() {
    for i in 0..4u8 {
        let responder = ChannelKeyPair::from_secret(&[i; 32]);
        let (ct, k1) = initiate(&responder.public(), &[i ^ 0xff; 32]).unwrap();
        assert_eq!(ct.len(), CIPHERTEXT_BYTES);
        assert_eq!(responder.respond(&ct).unwrap(), k1);
        // Another seed gives another key; another responder cannot derive it.
        let (_, k2) = initiate(&responder.public(), &[i ^ 0xfe; 32]).unwrap();
        assert_ne!(k1, k2);
        let other = ChannelKeyPair::from_secret(&[i + 100; 32]);
        assert_ne!(other.respond(&ct).unwrap(), k1);
    }
}

#[test]
fn tampering_with_either_ciphertext_changes_or_refuses_the_key() {
    let responder = ChannelKeyPair::from_secret(&[42; 32]);
    let (ct, key) = initiate(&responder.public(), &[7; 32]).unwrap();
    // Every 97th byte of the ML-KEM part and every byte of the X25519 part.
    let positions = (0..1088).step_by(97).chain(1088..CIPHERTEXT_BYTES);
    for pos in positions {
        let mut bad = ct.clone();
        bad[pos] ^= 0x01;
        match responder.respond(&bad) {
            Ok(k) => assert_ne!(k, key, "flipping byte {pos} kept the key"),
            Err(e) => assert!(matches!(e, ChannelError::LowOrder(_)), "{e}"),
        }
    }
    // A low-order X25519 point (the identity) is refused.
    let mut low = ct.clone();
    low[1088..].copy_from_slice(&[0; 32]);
    assert_eq!(
        responder.respond(&low),
        Err(ChannelError::LowOrder("ephemeral key"))
    );
    assert!(matches!(
        responder.respond(&ct[..100]),
        Err(ChannelError::Length { .. })
    ));
    assert!(matches!(
        initiate(&responder.public()[..50], &[0; 32]),
        Err(ChannelError::Length { .. })
    ));
}
