//! Hybrid ML-KEM-768 (FIPS 203) + X25519 (RFC 7748) key agreement for channels between two
//! nodes: the session key stays secret while either primitive holds.
//!
//! The initiator encapsulates to the responder's ML-KEM-768 key and does an ephemeral X25519
//! exchange with the responder's static X25519 key. The session key is
//! `HKDF-SHA-256(salt = "xdv/channel/hybrid/v1", ikm = ss_mlkem ‖ ss_x25519, info = transcript)`
//! where `transcript = SHA-256("xdv/channel/transcript/v1" ‖ ek_mlkem ‖ pk_x25519 ‖ ct_mlkem ‖
//! eph_x25519)` binds both public keys and both ciphertexts. A tampered ML-KEM ciphertext yields
//! a different key (FIPS 203 implicit rejection); a low-order X25519 point is refused.
//! Randomness comes from the caller as 32-byte seeds; nothing here draws entropy itself.

use crate::keys::derive_bytes;
use hkdf::Hkdf;
use ml_kem::{Decapsulate as _, KeyExport as _, MlKem768};
use sha2::{Digest, Sha256};

/// Bytes of an ML-KEM-768 encapsulation key.
pub const MLKEM768_EK_BYTES: usize = 1184;
/// Bytes of an ML-KEM-768 ciphertext.
pub const MLKEM768_CT_BYTES: usize = 1088;
/// Bytes of a channel public key: ML-KEM-768 encapsulation key then X25519 public key.
pub const PUBLIC_BYTES: usize = MLKEM768_EK_BYTES + 32;
/// Bytes of a channel ciphertext: ML-KEM-768 ciphertext then X25519 ephemeral public key.
pub const CIPHERTEXT_BYTES: usize = MLKEM768_CT_BYTES + 32;

/// Why a key agreement failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChannelError {
    /// A public key or ciphertext has the wrong length.
    #[error("the {what} is {got} bytes; a hybrid ML-KEM-768 + X25519 {what} is {want} bytes")]
    Length {
        /// What.
        what: &'static str,
        /// Its length.
        got: usize,
        /// The right length.
        want: usize,
    },
    /// The ML-KEM encapsulation key fails FIPS 203's input check.
    #[error("the ML-KEM-768 encapsulation key fails the FIPS 203 modulus check")]
    BadMlKemKey,
    /// The X25519 exchange gave the all-zero secret (a low-order point).
    #[error(
        "the X25519 {0} is a low-order point: the exchange contributes nothing; refuse the peer"
    )]
    LowOrder(&'static str),
}

/// A node's long-term channel key pair.
pub struct ChannelKeyPair {
    mlkem: ml_kem::DecapsulationKey<MlKem768>,
    x25519: x25519_dalek::StaticSecret,
}

/// A 32-byte session key.
#[derive(Clone, PartialEq, Eq)]
pub struct SessionKey(pub [u8; 32]);

impl std::fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKey(..)")
    }
}

impl ChannelKeyPair {
    /// Derives the key pair from a 256-bit secret (the node's master secret, or a key derived
    /// from it).
    pub fn from_secret(secret: &[u8; 32]) -> ChannelKeyPair {
        let seed: [u8; 64] = derive_bytes(secret, "xdv/channel/ml-kem-768/v1");
        let x: [u8; 32] = derive_bytes(secret, "xdv/channel/x25519/v1");
        ChannelKeyPair {
            mlkem: ml_kem::DecapsulationKey::<MlKem768>::from_seed(seed.into()),
            x25519: x25519_dalek::StaticSecret::from(x),
        }
    }

    /// The public key: ML-KEM-768 encapsulation key then X25519 public key.
    pub fn public(&self) -> Vec<u8> {
        let mut v = self.mlkem.encapsulation_key().to_bytes().to_vec();
        v.extend_from_slice(x25519_dalek::PublicKey::from(&self.x25519).as_bytes());
        v
    }

    /// The responder's side: derives the session key from the initiator's ciphertext.
    pub fn respond(&self, ciphertext: &[u8]) -> Result<SessionKey, ChannelError> {
        if ciphertext.len() != CIPHERTEXT_BYTES {
            return Err(ChannelError::Length {
                what: "ciphertext",
                got: ciphertext.len(),
                want: CIPHERTEXT_BYTES,
            });
        }
        let (ct, eph) = ciphertext.split_at(MLKEM768_CT_BYTES);
        let ss_kem = self
            .mlkem
            .decapsulate_slice(ct)
            .map_err(|_| ChannelError::Length {
                what: "ML-KEM ciphertext",
                got: ct.len(),
                want: MLKEM768_CT_BYTES,
            })?;
        let eph: [u8; 32] = eph.try_into().map_err(|_| ChannelError::Length {
            what: "X25519 ephemeral key",
            got: eph.len(),
            want: 32,
        })?;
        let ss_x = self
            .x25519
            .diffie_hellman(&x25519_dalek::PublicKey::from(eph));
        if !ss_x.was_contributory() {
            return Err(ChannelError::LowOrder("ephemeral key"));
        }
        Ok(combine(
            &ss_kem,
            ss_x.as_bytes(),
            &self.public(),
            ciphertext,
        ))
    }
}

/// The initiator's side: encapsulates to `responder_public` with randomness from `seed` (32 fresh
/// random bytes, used once); returns the ciphertext to send and the session key.
pub fn initiate(
    responder_public: &[u8],
    seed: &[u8; 32],
) -> Result<(Vec<u8>, SessionKey), ChannelError> {
    if responder_public.len() != PUBLIC_BYTES {
        return Err(ChannelError::Length {
            what: "public key",
            got: responder_public.len(),
            want: PUBLIC_BYTES,
        });
    }
    let (ek, xpk) = responder_public.split_at(MLKEM768_EK_BYTES);
    let ek = ml_kem::Key::<ml_kem::EncapsulationKey<MlKem768>>::try_from(ek).map_err(|_| {
        ChannelError::Length {
            what: "ML-KEM encapsulation key",
            got: ek.len(),
            want: MLKEM768_EK_BYTES,
        }
    })?;
    let ek =
        ml_kem::EncapsulationKey::<MlKem768>::new(&ek).map_err(|_| ChannelError::BadMlKemKey)?;
    let m: [u8; 32] = derive_bytes(seed, "xdv/channel/encaps-m/v1");
    let (ct, ss_kem) = ek.encapsulate_deterministic(&m.into());
    let eph_secret =
        x25519_dalek::StaticSecret::from(derive_bytes::<32>(seed, "xdv/channel/ephemeral/v1"));
    let eph_public = x25519_dalek::PublicKey::from(&eph_secret);
    let xpk: [u8; 32] = xpk.try_into().map_err(|_| ChannelError::Length {
        what: "X25519 public key",
        got: xpk.len(),
        want: 32,
    })?;
    let ss_x = eph_secret.diffie_hellman(&x25519_dalek::PublicKey::from(xpk));
    if !ss_x.was_contributory() {
        return Err(ChannelError::LowOrder("public key"));
    }
    let mut ciphertext = ct.to_vec();
    ciphertext.extend_from_slice(eph_public.as_bytes());
    let key = combine(&ss_kem, ss_x.as_bytes(), responder_public, &ciphertext);
    Ok((ciphertext, key))
}

fn combine(ss_kem: &[u8], ss_x: &[u8; 32], public: &[u8], ciphertext: &[u8]) -> SessionKey {
    let mut t = Sha256::new();
    t.update(b"xdv/channel/transcript/v1");
    t.update(public);
    t.update(ciphertext);
    let transcript = t.finalize();
    let mut ikm = [0u8; 64];
    ikm[..32].copy_from_slice(ss_kem);
    ikm[32..].copy_from_slice(ss_x);
    let hk = Hkdf::<Sha256>::new(Some(b"xdv/channel/hybrid/v1"), &ikm);
    let mut out = [0u8; 32];
    if hk.expand(&transcript, &mut out).is_err() {
        unreachable!("32 bytes is a valid HKDF-SHA-256 length");
    }
    SessionKey(out)
}
