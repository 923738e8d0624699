//! Algorithm-tagged signatures over audit checkpoints: Ed25519 (RFC 8032, `ed25519-dalek` 2) and
//! ML-DSA-65 (FIPS 204, RustCrypto `ml-dsa`, deterministic signing with the context string
//! [`MLDSA_CONTEXT`]).
//!
//! Every public key and signature carries its [`Algorithm`] id, so a log can hold any set of
//! signatures and the set can change without a format change. Both signers are derived from one
//! 256-bit master secret through HKDF ([`crate::keys`]); signing is deterministic.

use crate::keys::{derive_key, MasterSecret};
use ed25519_dalek::Signer as _;
use ml_dsa::MlDsa65;

/// The FIPS 204 context string of every ML-DSA-65 checkpoint signature.
pub const MLDSA_CONTEXT: &[u8] = b"xdv-audit-checkpoint";
/// HKDF label of the Ed25519 checkpoint key.
pub const LABEL_ED25519: &str = "xdv/audit/ed25519/v1";
/// HKDF label of the ML-DSA-65 checkpoint key seed.
pub const LABEL_MLDSA65: &str = "xdv/audit/ml-dsa-65/v1";
/// Largest encoded public key or signature accepted, bytes.
pub const KEY_OR_SIGNATURE_BYTES_MAX: usize = 8192;

/// A signature algorithm, with its id in files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Algorithm {
    /// Ed25519 (RFC 8032); id 1; 32-byte keys, 64-byte signatures.
    Ed25519,
    /// ML-DSA-65 (FIPS 204); id 2; 1952-byte keys, 3309-byte signatures.
    MlDsa65,
}

impl Algorithm {
    /// Every algorithm this build knows, in id order.
    pub const ALL: [Algorithm; 2] = [Algorithm::Ed25519, Algorithm::MlDsa65];

    /// The id written in files.
    pub fn id(self) -> u16 {
        match self {
            Algorithm::Ed25519 => 1,
            Algorithm::MlDsa65 => 2,
        }
    }

    /// The algorithm with this id.
    pub fn from_id(id: u16) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.id() == id)
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Ed25519 => "ed25519",
            Algorithm::MlDsa65 => "ml-dsa-65",
        }
    }
}

impl std::fmt::Display for Algorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A public key tagged with its algorithm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKey {
    /// The algorithm.
    pub alg: Algorithm,
    /// The encoded key.
    pub bytes: Vec<u8>,
}

/// A signature tagged with its algorithm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// The algorithm.
    pub alg: Algorithm,
    /// The encoded signature.
    pub bytes: Vec<u8>,
}

/// Why a signature does not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignError {
    /// The public key bytes are not a key of their algorithm.
    #[error("the {alg} public key is malformed: {detail}")]
    BadKey {
        /// The algorithm.
        alg: Algorithm,
        /// What is wrong.
        detail: String,
    },
    /// The signature bytes are not a signature of their algorithm.
    #[error("the {alg} signature is malformed: {detail}")]
    BadSignature {
        /// The algorithm.
        alg: Algorithm,
        /// What is wrong.
        detail: String,
    },
    /// The signature does not match the message and key.
    #[error("the {alg} signature does not match the checkpoint under the log's {alg} key")]
    Mismatch {
        /// The algorithm.
        alg: Algorithm,
    },
}

/// The checkpoint signer: one key per algorithm, all derived from one master secret.
pub struct Signer {
    ed25519: ed25519_dalek::SigningKey,
    mldsa65: ml_dsa::SigningKey<MlDsa65>,
}

impl Signer {
    /// Derives both keys from the master secret.
    pub fn from_master(master: &MasterSecret) -> Signer {
        let ed = derive_key(master, LABEL_ED25519);
        let ml = derive_key(master, LABEL_MLDSA65);
        Signer {
            ed25519: ed25519_dalek::SigningKey::from_bytes(&ed),
            mldsa65: ml_dsa::SigningKey::<MlDsa65>::from_seed(&ml.into()),
        }
    }

    /// The public keys, in algorithm order.
    pub fn public_keys(&self) -> Vec<PublicKey> {
        vec![
            PublicKey {
                alg: Algorithm::Ed25519,
                bytes: self.ed25519.verifying_key().to_bytes().to_vec(),
            },
            PublicKey {
                alg: Algorithm::MlDsa65,
                bytes: self
                    .mldsa65
                    .expanded_key()
                    .verifying_key()
                    .encode()
                    .to_vec(),
            },
        ]
    }

    /// Signs `msg` with one algorithm.
    pub fn sign_with(&self, alg: Algorithm, msg: &[u8]) -> Signature {
        let bytes = match alg {
            Algorithm::Ed25519 => self.ed25519.sign(msg).to_bytes().to_vec(),
            Algorithm::MlDsa65 => match self
                .mldsa65
                .expanded_key()
                .sign_deterministic(msg, MLDSA_CONTEXT)
            {
                Ok(s) => s.encode().to_vec(),
                // Only a context longer than 255 bytes fails, and MLDSA_CONTEXT is a constant.
                Err(_) => unreachable!("the ML-DSA context is a short constant"),
            },
        };
        Signature { alg, bytes }
    }

    /// Signs `msg` with every algorithm.
    pub fn sign(&self, msg: &[u8]) -> Vec<Signature> {
        Algorithm::ALL
            .into_iter()
            .map(|a| self.sign_with(a, msg))
            .collect()
    }
}

/// Verifies `sig` over `msg` under `key`; both must be of the same algorithm.
pub fn verify(key: &PublicKey, msg: &[u8], sig: &Signature) -> Result<(), SignError> {
    let alg = key.alg;
    if sig.alg != alg {
        return Err(SignError::BadSignature {
            alg: sig.alg,
            detail: format!("checked against a {alg} key"),
        });
    }
    match alg {
        Algorithm::Ed25519 => {
            let kb: [u8; 32] = key
                .bytes
                .as_slice()
                .try_into()
                .map_err(|_| SignError::BadKey {
                    alg,
                    detail: format!("{} bytes, not 32", key.bytes.len()),
                })?;
            let vk =
                ed25519_dalek::VerifyingKey::from_bytes(&kb).map_err(|e| SignError::BadKey {
                    alg,
                    detail: e.to_string(),
                })?;
            let s = ed25519_dalek::Signature::from_slice(&sig.bytes).map_err(|e| {
                SignError::BadSignature {
                    alg,
                    detail: e.to_string(),
                }
            })?;
            vk.verify_strict(msg, &s)
                .map_err(|_| SignError::Mismatch { alg })
        }
        Algorithm::MlDsa65 => {
            let enc = ml_dsa::EncodedVerifyingKey::<MlDsa65>::try_from(key.bytes.as_slice())
                .map_err(|_| SignError::BadKey {
                    alg,
                    detail: format!("{} bytes, not 1952", key.bytes.len()),
                })?;
            let vk = ml_dsa::VerifyingKey::<MlDsa65>::decode(&enc);
            let s = ml_dsa::Signature::<MlDsa65>::try_from(sig.bytes.as_slice()).map_err(|_| {
                SignError::BadSignature {
                    alg,
                    detail: format!(
                        "{} bytes that do not decode as a signature",
                        sig.bytes.len()
                    ),
                }
            })?;
            if vk.verify_with_context(msg, MLDSA_CONTEXT, &s) {
                Ok(())
            } else {
                Err(SignError::Mismatch { alg })
            }
        }
    }
}

/// A decoded list of algorithm-tagged byte strings.
pub type Tagged = Vec<(Algorithm, Vec<u8>)>;

/// Lists of tagged keys and signatures share one encoding: `count u8 ‖ (alg u16 LE ‖ len u32 LE ‖
/// bytes)*`.
pub fn encode_tagged(out: &mut Vec<u8>, items: &[(Algorithm, &[u8])]) {
    out.push(items.len() as u8);
    for (alg, bytes) in items {
        out.extend_from_slice(&alg.id().to_le_bytes());
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    }
}

/// Decodes [`encode_tagged`] from the start of `b`; returns the items and the bytes consumed.
pub fn decode_tagged(b: &[u8]) -> Result<(Tagged, usize), String> {
    let n = *b.first().ok_or("no count byte")?;
    let mut pos = 1usize;
    let mut out = Vec::with_capacity(usize::from(n));
    for i in 0..n {
        let head = b
            .get(pos..pos + 6)
            .ok_or_else(|| format!("item {i} ends inside its header"))?;
        let id = u16::from_le_bytes([head[0], head[1]]);
        let len = u32::from_le_bytes([head[2], head[3], head[4], head[5]]) as usize;
        let alg = Algorithm::from_id(id).ok_or_else(|| {
            format!("item {i} has unknown algorithm id {id}; this build knows 1 (ed25519) and 2 (ml-dsa-65)")
        })?;
        if len > KEY_OR_SIGNATURE_BYTES_MAX {
            return Err(format!(
                "item {i} claims {len} bytes, more than {KEY_OR_SIGNATURE_BYTES_MAX}"
            ));
        }
        pos += 6;
        let bytes = b
            .get(pos..pos + len)
            .ok_or_else(|| format!("item {i} ends inside its {len} bytes"))?;
        if out.iter().any(|(a, _)| *a == alg) {
            return Err(format!("item {i} repeats algorithm {alg}"));
        }
        out.push((alg, bytes.to_vec()));
        pos += len;
    }
    Ok((out, pos))
}
