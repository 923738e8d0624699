//! Known-answer and differential tests of the post-quantum primitives XDV builds on.
//!
//! Key generation is checked against the IETF LAMPS examples in `tests/data` (seed → public key);
//! ML-DSA-65 signing and ML-KEM-768 encapsulation are checked byte for byte against a second,
//! independent implementation of FIPS 204 and FIPS 203 (the `fips204` and `fips203` crates).

use fips203::traits::{Decaps as _, Encaps as _, KeyGen as _, SerDes as _};
use fips204::traits::{KeyGen as _, SerDes as _, Signer as _, Verifier as _};
use ml_dsa::MlDsa65;
use ml_kem::{Decapsulate as _, KeyExport as _, MlKem768};

/// The DER bytes of a PEM file (a base64 decoder written here: no dependency to trust).
fn pem_der(text: &str) -> Vec<u8> {
    let b64: String = text
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<Vec<_>>()
        .concat();
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a' + 26),
            b'0'..=b'9' => u32::from(c - b'0' + 52),
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let mut out = Vec::new();
    let bytes: Vec<u8> = b64.bytes().filter(|c| *c != b'=').collect();
    for chunk in bytes.chunks(4) {
        let mut acc = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            acc |= val(*c) << (18 - 6 * i);
        }
        let n = chunk.len() * 6 / 8;
        for i in 0..n {
            out.push((acc >> (16 - 8 * i)) as u8);
        }
    }
    out
}

fn seq(n: usize) -> Vec<u8> {
    (0..n as u8).collect()
}

#[test]
fn ml_dsa_65_key_generation_matches_the_lamps_example() {
    let der = pem_der(include_str!("data/ML-DSA-65.pub"));
    // The SubjectPublicKeyInfo ends with the raw 1952-byte key in its BIT STRING.
    let expect = &der[der.len() - 1952..];
    let xi: [u8; 32] = seq(32).try_into().unwrap();
    let sk = ml_dsa::SigningKey::<MlDsa65>::from_seed(&xi.into());
    let pk = sk.expanded_key().verifying_key().encode();
    assert_eq!(pk.as_slice(), expect, "ml-dsa key generation");
    let (pk2, _) = fips204::ml_dsa_65::KG::keygen_from_seed(&xi);
    assert_eq!(
        pk2.into_bytes().as_slice(),
        expect,
        "fips204 key generation"
    );
}

#[test]
fn ml_dsa_65_deterministic_signatures_agree_across_implementations() {
    for (i, msg) in [&b""[..], b"xdv", &[0xa5; 1000]].iter().enumerate() {
        let xi = [i as u8 + 1; 32];
        let ctx = xdv_sdbm::sign::MLDSA_CONTEXT;
        let sk = ml_dsa::SigningKey::<MlDsa65>::from_seed(&xi.into());
        let ours = sk
            .expanded_key()
            .sign_deterministic(msg, ctx)
            .unwrap()
            .encode();
        let (pk2, sk2) = fips204::ml_dsa_65::KG::keygen_from_seed(&xi);
        // The deterministic variant of FIPS 204 signs with rnd = 0^32.
        let theirs = sk2.try_sign_with_seed(&[0u8; 32], msg, ctx).unwrap();
        assert_eq!(ours.as_slice(), theirs.as_slice(), "message {i}");
        assert!(pk2.verify(msg, &theirs, ctx));
        let mut bad = theirs;
        bad[17] ^= 1;
        assert!(!pk2.verify(msg, &bad, ctx));
    }
}

#[test]
fn ml_kem_768_key_generation_matches_the_lamps_example() {
    let der = pem_der(include_str!("data/ML-KEM-768.pub"));
    let expect = &der[der.len() - 1184..];
    let seed: [u8; 64] = seq(64).try_into().unwrap();
    let dk = ml_kem::DecapsulationKey::<MlKem768>::from_seed(seed.into());
    assert_eq!(dk.encapsulation_key().to_bytes().as_slice(), expect);
    let (ek2, _) = fips203::ml_kem_768::KG::keygen_from_seed(
        seed[..32].try_into().unwrap(),
        seed[32..].try_into().unwrap(),
    );
    assert_eq!(ek2.into_bytes().as_slice(), expect);
}

#[test]
fn ml_kem_768_encapsulation_agrees_across_implementations() {
    for i in 0..4u8 {
        let seed = [i.wrapping_mul(37).wrapping_add(5); 64];
        let m = [i ^ 0x5a; 32];
        let dk = ml_kem::DecapsulationKey::<MlKem768>::from_seed(seed.into());
        let (ct, ss) = dk.encapsulation_key().encapsulate_deterministic(&m.into());
        let (ek2, dk2) = fips203::ml_kem_768::KG::keygen_from_seed(
            seed[..32].try_into().unwrap(),
            seed[32..].try_into().unwrap(),
        );
        let (ss2, ct2) = ek2.encaps_from_seed(&m);
        assert_eq!(
            ct.as_slice(),
            ct2.clone().into_bytes().as_slice(),
            "ciphertext {i}"
        );
        assert_eq!(
            ss.as_slice(),
            ss2.clone().into_bytes().as_slice(),
            "shared secret {i}"
        );
        assert_eq!(dk.decapsulate(&ct).as_slice(), ss.as_slice());
        // Implicit rejection: a tampered ciphertext decapsulates to a different key in both.
        let mut bad = ct2.into_bytes();
        bad[100] ^= 1;
        let r1 = dk.decapsulate_slice(&bad).unwrap();
        let r2 = dk2
            .try_decaps(&fips203::ml_kem_768::CipherText::try_from_bytes(bad).unwrap())
            .unwrap();
        assert_ne!(r1.as_slice(), ss.as_slice());
        assert_eq!(
            r1.as_slice(),
            r2.into_bytes().as_slice(),
            "implicit rejection {i}"
        );
    }
}
