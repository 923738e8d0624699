//! XDV's Secure Domain Boundary Manager: the primitives that make the boundaries between domains
//! accountable.
//!
//! - [`merkle`]: RFC 6962 Merkle tree hashing, inclusion and consistency proofs and their
//!   verifiers.
//! - [`entry`]: the typed audit records (VHM lifecycle, allocation, cross-domain transition, IPC,
//!   capability, rejection) and their canonical byte encoding.
//! - [`log`]: the durable audit log file (framed, versioned, checksummed), its batched writer and
//!   its verifier.
//! - [`sign`]: algorithm-tagged checkpoint signatures, Ed25519 and ML-DSA-65 (FIPS 204).
//! - [`keys`]: HKDF-SHA-256 derivation from 256-bit secrets and key files that refuse loose
//!   permissions.
//! - [`channel`]: hybrid ML-KEM-768 + X25519 key agreement for node-to-node channels.
//!
//! Nothing here reads a clock or ambient randomness: logical times and every secret come from the
//! caller. The file format is specified in `docs/audit.md`.

pub mod channel;
pub mod entry;
pub mod keys;
pub mod log;
pub mod merkle;
pub mod sign;

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// Parses lower- or upper-case hex; `None` when the text is not an even number of hex digits.
pub fn unhex(text: &str) -> Option<Vec<u8>> {
    let t = text.trim().as_bytes();
    if !t.len().is_multiple_of(2) {
        return None;
    }
    let val = |c: u8| -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    };
    t.chunks_exact(2)
        .map(|p| Some((val(p[0])? << 4) | val(p[1])?))
        .collect()
}
