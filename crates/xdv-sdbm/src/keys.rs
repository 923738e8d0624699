//! Key material: HKDF-SHA-256 (RFC 5869) derivation from 256-bit secrets, and key files.
//!
//! One 256-bit master secret per node; every key (checkpoint signers, the token root, channel
//! keys) is `HKDF-SHA-256(salt = "xdv/hkdf/v1", ikm = master, info = label)`, so a label names a
//! key for ever and two labels never share key material.
//!
//! Secret files are created with mode 0600 (never overwritten) and refused on reading when the
//! group or others can read or write them. The secret file holds `"XDVSEC01" ‖ 32 bytes ‖
//! CRC-32 of both`; the public key file holds `"XDVPUB01" ‖` the tagged key list of
//! [`crate::sign::encode_tagged`] `‖ CRC-32`.

use crate::sign::{decode_tagged, encode_tagged, PublicKey};
use hkdf::Hkdf;
use sha2::Sha256;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The HKDF salt of every XDV derivation.
pub const HKDF_SALT: &[u8] = b"xdv/hkdf/v1";
/// Magic of a secret key file.
pub const SECRET_MAGIC: &[u8; 8] = b"XDVSEC01";
/// Magic of a public key file.
pub const PUBLIC_MAGIC: &[u8; 8] = b"XDVPUB01";
/// Name of the master secret in a key directory.
pub const MASTER_FILE: &str = "master.key";
/// Name of the audit public keys in a key directory.
pub const AUDIT_PUBLIC_FILE: &str = "audit.pub";
/// Largest key file read, bytes.
pub const KEY_FILE_BYTES_MAX: u64 = 1 << 16;

/// A 256-bit master secret. Its `Debug` does not print it.
#[derive(Clone, PartialEq, Eq)]
pub struct MasterSecret(pub [u8; 32]);

impl std::fmt::Debug for MasterSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterSecret(..)")
    }
}

/// Derives 32 bytes for `label` from the master secret.
pub fn derive_key(master: &MasterSecret, label: &str) -> [u8; 32] {
    derive_bytes::<32>(&master.0, label)
}

/// Derives `N` bytes (`N <= 8160`) for `label` from a 256-bit secret with HKDF-SHA-256.
pub fn derive_bytes<const N: usize>(secret: &[u8; 32], label: &str) -> [u8; N] {
    let hk = Hkdf::<Sha256>::new(Some(HKDF_SALT), secret);
    let mut out = [0u8; N];
    // HKDF-SHA-256 expands to at most 255 × 32 = 8160 bytes; every caller asks for 32 or 64.
    if hk.expand(label.as_bytes(), &mut out).is_err() {
        unreachable!("HKDF output of {N} bytes exceeds 8160");
    }
    out
}

/// Errors reading or writing key files.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// An I/O error on a path.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file exists already; keys are never overwritten.
    #[error("{0}: exists already; key files are never overwritten (move it away or choose another directory)")]
    Exists(PathBuf),
    /// A secret file is readable or writable by group or others.
    #[error("{path}: mode {mode:o} lets group or others at the secret; run `chmod 600 {path}` (and consider the key exposed)")]
    Permissions {
        /// The file.
        path: PathBuf,
        /// Its mode bits.
        mode: u32,
    },
    /// The file is not a key file of the expected kind.
    #[error("{path}: {detail}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> KeyError + '_ {
    move |source| KeyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), KeyError> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            KeyError::Exists(path.to_path_buf())
        } else {
            KeyError::Io {
                path: path.to_path_buf(),
                source: e,
            }
        }
    })?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))?;
    Ok(())
}

fn read_limited(path: &Path) -> Result<Vec<u8>, KeyError> {
    let meta = std::fs::metadata(path).map_err(io(path))?;
    if meta.len() > KEY_FILE_BYTES_MAX {
        return Err(KeyError::Format {
            path: path.to_path_buf(),
            detail: format!(
                "{} bytes, more than a key file's {KEY_FILE_BYTES_MAX}",
                meta.len()
            ),
        });
    }
    std::fs::read(path).map_err(io(path))
}

fn with_crc(mut v: Vec<u8>) -> Vec<u8> {
    let c = crc32fast::hash(&v);
    v.extend_from_slice(&c.to_le_bytes());
    v
}

fn check_crc<'a>(path: &Path, b: &'a [u8], magic: &[u8; 8]) -> Result<&'a [u8], KeyError> {
    let bad = |detail: String| KeyError::Format {
        path: path.to_path_buf(),
        detail,
    };
    if b.len() < 12 || &b[..8] != magic {
        return Err(bad(format!(
            "not an XDV key file of this kind (expected it to start with {:?})",
            String::from_utf8_lossy(magic)
        )));
    }
    let (body, crc) = b.split_at(b.len() - 4);
    if crc32fast::hash(body).to_le_bytes() != crc {
        return Err(bad("checksum mismatch: the file is corrupt".into()));
    }
    Ok(&body[8..])
}

/// Writes a 256-bit secret to a new file with mode 0600.
pub fn write_secret(path: &Path, secret: &MasterSecret) -> Result<(), KeyError> {
    let mut v = SECRET_MAGIC.to_vec();
    v.extend_from_slice(&secret.0);
    write_new(path, &with_crc(v), 0o600)
}

/// Reads a secret file, refusing one that group or others can read or write.
pub fn read_secret(path: &Path) -> Result<MasterSecret, KeyError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path)
            .map_err(io(path))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(KeyError::Permissions {
                path: path.to_path_buf(),
                mode: mode & 0o777,
            });
        }
    }
    let b = read_limited(path)?;
    let body = check_crc(path, &b, SECRET_MAGIC)?;
    let s: [u8; 32] = body.try_into().map_err(|_| KeyError::Format {
        path: path.to_path_buf(),
        detail: format!("holds {} secret bytes, not 32", body.len()),
    })?;
    Ok(MasterSecret(s))
}

/// Writes public keys to a new file (mode 0644).
pub fn write_public(path: &Path, keys: &[PublicKey]) -> Result<(), KeyError> {
    let mut v = PUBLIC_MAGIC.to_vec();
    let items: Vec<_> = keys.iter().map(|k| (k.alg, k.bytes.as_slice())).collect();
    encode_tagged(&mut v, &items);
    write_new(path, &with_crc(v), 0o644)
}

/// Reads a public key file.
pub fn read_public(path: &Path) -> Result<Vec<PublicKey>, KeyError> {
    let b = read_limited(path)?;
    let body = check_crc(path, &b, PUBLIC_MAGIC)?;
    let bad = |detail: String| KeyError::Format {
        path: path.to_path_buf(),
        detail,
    };
    let (items, used) = decode_tagged(body).map_err(bad)?;
    if used != body.len() {
        return Err(KeyError::Format {
            path: path.to_path_buf(),
            detail: format!("{} bytes follow the key list", body.len() - used),
        });
    }
    Ok(items
        .into_iter()
        .map(|(alg, bytes)| PublicKey { alg, bytes })
        .collect())
}

/// Creates `dir` (mode 0700 where it is new) and writes a new master secret and the audit public
/// keys derived from it. `secret` comes from the caller (the CLI reads the operating system's
/// entropy source; tests pass fixed bytes).
pub fn generate(dir: &Path, secret: &MasterSecret) -> Result<Vec<PublicKey>, KeyError> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        b.mode(0o700);
    }
    b.create(dir).map_err(io(dir))?;
    let master = dir.join(MASTER_FILE);
    let public = dir.join(AUDIT_PUBLIC_FILE);
    for p in [&master, &public] {
        if p.exists() {
            return Err(KeyError::Exists(p.clone()));
        }
    }
    let keys = crate::sign::Signer::from_master(secret).public_keys();
    write_secret(&master, secret)?;
    write_public(&public, &keys)?;
    Ok(keys)
}
