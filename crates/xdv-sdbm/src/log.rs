//! The durable audit log: a framed, versioned, checksummed file of entries and signed checkpoints,
//! its batched writer and its verifier.
//!
//! Layout (specified byte by byte in `docs/audit.md`):
//!
//! ```text
//! header  "XDVAUDIT" ‖ version u16 LE (1) ‖ reserved u16 (0) ‖ CRC-32 of the 12 bytes before
//! frame   length u32 LE ‖ kind u8 ‖ payload (length bytes) ‖ CRC-32 of length ‖ kind ‖ payload
//! kinds   1 keys (first frame, once), 2 entry, 3 checkpoint
//! ```
//!
//! An entry payload is the canonical encoding of [`Entry`]; its Merkle leaf is
//! `SHA-256(0x00 ‖ payload)`. A checkpoint states (tree size, root, logical time, flags) over the
//! entries before it and carries algorithm-tagged signatures of [`Checkpoint::message`]. The last
//! checkpoint of a finished log has the seal flag, so a truncation at a frame boundary is detected
//! too. The writer buffers frames and makes each batch durable with one `fsync`.

use crate::entry::{DecodeError, EncodeError, Entry};
use crate::merkle::{Accumulator, Hash};
use crate::sign::{self, decode_tagged, encode_tagged, Algorithm, PublicKey, SignError, Signer};
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// Magic bytes at the start of every audit log.
pub const MAGIC: &[u8; 8] = b"XDVAUDIT";
/// The format version written and read.
pub const VERSION: u16 = 1;
/// Header length, bytes.
pub const HEADER_BYTES: usize = 16;
/// Largest frame payload accepted, bytes.
pub const FRAME_BYTES_MAX: u32 = 1 << 20;
/// Default entries per durable batch.
pub const BATCH_ENTRIES_DEFAULT: usize = 4096;
/// Domain-separation prefix of the signed checkpoint message.
pub const CHECKPOINT_LABEL: &[u8] = b"XDV-AUDIT-CHECKPOINT-V1\0";

const KIND_KEYS: u8 = 1;
const KIND_ENTRY: u8 = 2;
const KIND_CHECKPOINT: u8 = 3;
const FLAG_SEAL: u8 = 1;
/// Bytes of a frame besides its payload (length, kind, CRC).
const FRAME_OVERHEAD: usize = 9;

/// A signed statement about the tree: its size, root and logical time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Entries covered.
    pub tree_size: u64,
    /// The RFC 6962 root of those entries.
    pub root: Hash,
    /// Logical time, ns.
    pub time_ns: u64,
    /// True for the final checkpoint of a finished log.
    pub seal: bool,
    /// Signatures of [`Checkpoint::message`], one per algorithm.
    pub signatures: Vec<sign::Signature>,
}

impl Checkpoint {
    /// The signed bytes: [`CHECKPOINT_LABEL`] ‖ tree size u64 LE ‖ root ‖ time u64 LE ‖ flags u8.
    pub fn message(&self) -> Vec<u8> {
        signed_message(self.tree_size, &self.root, self.time_ns, self.seal)
    }

    fn encode(&self) -> Vec<u8> {
        let mut v = Vec::with_capacity(64 + 3400 + 80);
        v.extend_from_slice(&self.tree_size.to_le_bytes());
        v.extend_from_slice(&self.root);
        v.extend_from_slice(&self.time_ns.to_le_bytes());
        v.push(if self.seal { FLAG_SEAL } else { 0 });
        let items: Vec<_> = self
            .signatures
            .iter()
            .map(|s| (s.alg, s.bytes.as_slice()))
            .collect();
        encode_tagged(&mut v, &items);
        v
    }

    fn decode(b: &[u8]) -> Result<Checkpoint, String> {
        if b.len() < 49 {
            return Err(format!(
                "{} bytes, shorter than the 49 fixed bytes",
                b.len()
            ));
        }
        let tree_size = u64::from_le_bytes(b[0..8].try_into().map_err(|_| "size")?);
        let root: Hash = b[8..40].try_into().map_err(|_| "root")?;
        let time_ns = u64::from_le_bytes(b[40..48].try_into().map_err(|_| "time")?);
        let seal = match b[48] {
            0 => false,
            FLAG_SEAL => true,
            f => return Err(format!("unknown flags {f:#04x}")),
        };
        let (items, used) = decode_tagged(&b[49..])?;
        if 49 + used != b.len() {
            return Err(format!(
                "{} bytes follow the signatures",
                b.len() - 49 - used
            ));
        }
        Ok(Checkpoint {
            tree_size,
            root,
            time_ns,
            seal,
            signatures: items
                .into_iter()
                .map(|(alg, bytes)| sign::Signature { alg, bytes })
                .collect(),
        })
    }
}

fn signed_message(tree_size: u64, root: &Hash, time_ns: u64, seal: bool) -> Vec<u8> {
    let mut m = Vec::with_capacity(CHECKPOINT_LABEL.len() + 49);
    m.extend_from_slice(CHECKPOINT_LABEL);
    m.extend_from_slice(&tree_size.to_le_bytes());
    m.extend_from_slice(root);
    m.extend_from_slice(&time_ns.to_le_bytes());
    m.push(if seal { FLAG_SEAL } else { 0 });
    m
}

/// Where in a log something is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    /// Byte offset of the frame.
    pub offset: u64,
    /// Frame number (0 is the key frame).
    pub frame: u64,
    /// What the frame is (or claims to be): `entry 17`, `checkpoint 2`, `the key frame`.
    pub what: String,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (frame {} at byte {})",
            self.what, self.frame, self.offset
        )
    }
}

/// Everything that can be wrong with an audit log or its writing.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// An I/O error.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The header is not an XDV audit log header of this version.
    #[error("bad header: {0}")]
    Header(String),
    /// The file ends inside a frame.
    #[error("{at}: the file ends inside this frame ({len} of {need} bytes present); the log was truncated")]
    Truncated {
        /// Where.
        at: Location,
        /// Bytes present from the frame start.
        len: u64,
        /// Bytes the frame needs.
        need: u64,
    },
    /// A frame's checksum does not match: a byte in it changed.
    #[error("{at}: checksum mismatch; a byte of this frame was altered")]
    Checksum {
        /// Where.
        at: Location,
    },
    /// A frame is malformed.
    #[error("{at}: {detail}")]
    Frame {
        /// Where.
        at: Location,
        /// What is wrong.
        detail: String,
    },
    /// An entry is not canonical.
    #[error("{at}: {source}")]
    Entry {
        /// Where.
        at: Location,
        /// Why.
        source: DecodeError,
    },
    /// An entry's logical time is before its predecessor's: entries were reordered.
    #[error("{at}: logical time {time_ns} ns is before the previous entry's {previous_ns} ns; entries were reordered")]
    TimeBackwards {
        /// Where.
        at: Location,
        /// Its time.
        time_ns: u64,
        /// The previous entry's time.
        previous_ns: u64,
    },
    /// A checkpoint disagrees with the entries before it.
    #[error("{at}: {detail}")]
    Checkpoint {
        /// Where.
        at: Location,
        /// What disagrees.
        detail: String,
    },
    /// A checkpoint signature does not verify.
    #[error("{at}: {source}")]
    Signature {
        /// Where.
        at: Location,
        /// Why.
        source: SignError,
    },
    /// The log's keys are not the trusted keys.
    #[error("the log's {alg} key is not the trusted {alg} key given; the log was signed by someone else")]
    Untrusted {
        /// The algorithm.
        alg: Algorithm,
    },
    /// The log has no seal (it was truncated at a frame boundary, or its writer stopped early).
    #[error("the log is not sealed: its last checkpoint ({checkpoints} checkpoints, {entries} entries) is not a final one, so frames may have been cut off its end; pass --allow-unsealed to verify the prefix of a log whose writer stopped")]
    Unsealed {
        /// Entries read.
        entries: u64,
        /// Checkpoints read.
        checkpoints: u64,
    },
    /// An entry could not be encoded.
    #[error("cannot append: {0}")]
    Encode(#[from] EncodeError),
    /// An appended entry's time is before the last one's.
    #[error("cannot append an entry at {time_ns} ns after one at {last_ns} ns: logical time never goes back")]
    AppendTimeBackwards {
        /// The new entry's time.
        time_ns: u64,
        /// The last time written.
        last_ns: u64,
    },
}

impl LogError {
    /// Where the fault is, when it lies in one frame.
    pub fn location(&self) -> Option<&Location> {
        match self {
            LogError::Truncated { at, .. }
            | LogError::Checksum { at }
            | LogError::Frame { at, .. }
            | LogError::Entry { at, .. }
            | LogError::TimeBackwards { at, .. }
            | LogError::Checkpoint { at, .. }
            | LogError::Signature { at, .. } => Some(at),
            _ => None,
        }
    }
}

fn header() -> [u8; HEADER_BYTES] {
    let mut h = [0u8; HEADER_BYTES];
    h[..8].copy_from_slice(MAGIC);
    h[8..10].copy_from_slice(&VERSION.to_le_bytes());
    let c = crc32fast::hash(&h[..12]);
    h[12..].copy_from_slice(&c.to_le_bytes());
    h
}

fn push_frame(out: &mut Vec<u8>, kind: u8, payload: &[u8]) {
    let start = out.len();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.push(kind);
    out.extend_from_slice(payload);
    let c = crc32fast::hash(&out[start..]);
    out.extend_from_slice(&c.to_le_bytes());
}

/// Writer settings.
#[derive(Clone, Copy, Debug)]
pub struct WriterOptions {
    /// Entries buffered before a batch is written and `fsync`ed.
    pub batch_entries_max: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            batch_entries_max: BATCH_ENTRIES_DEFAULT,
        }
    }
}

/// Appends entries and checkpoints to a new log file, durably in batches.
pub struct AuditWriter {
    file: std::fs::File,
    path: PathBuf,
    buf: Vec<u8>,
    scratch: Vec<u8>,
    pending: usize,
    acc: Accumulator,
    last_time_ns: u64,
    signer: Signer,
    opts: WriterOptions,
    batches: u64,
}

impl AuditWriter {
    /// Creates a new log (refusing an existing file) and makes its header and key frame durable.
    pub fn create(
        path: &Path,
        signer: Signer,
        opts: WriterOptions,
    ) -> Result<AuditWriter, LogError> {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|source| LogError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        let mut buf = header().to_vec();
        let keys = signer.public_keys();
        let mut payload = Vec::new();
        let items: Vec<_> = keys.iter().map(|k| (k.alg, k.bytes.as_slice())).collect();
        encode_tagged(&mut payload, &items);
        push_frame(&mut buf, KIND_KEYS, &payload);
        let mut w = AuditWriter {
            file,
            path: path.to_path_buf(),
            buf,
            scratch: Vec::with_capacity(256),
            pending: 0,
            acc: Accumulator::default(),
            last_time_ns: 0,
            signer,
            opts: WriterOptions {
                batch_entries_max: opts.batch_entries_max.max(1),
            },
            batches: 0,
        };
        w.commit()?;
        Ok(w)
    }

    /// Appends an entry (durable at the next [`commit`](Self::commit), which happens by itself
    /// every `batch_entries_max` entries); returns its index.
    pub fn append(&mut self, e: &Entry) -> Result<u64, LogError> {
        if e.time_ns < self.last_time_ns {
            return Err(LogError::AppendTimeBackwards {
                time_ns: e.time_ns,
                last_ns: self.last_time_ns,
            });
        }
        self.scratch.clear();
        e.encode_into(&mut self.scratch)?;
        self.acc.push(crate::merkle::leaf_hash(&self.scratch));
        push_frame(&mut self.buf, KIND_ENTRY, &self.scratch);
        self.last_time_ns = e.time_ns;
        self.pending += 1;
        if self.pending >= self.opts.batch_entries_max {
            self.commit()?;
        }
        Ok(self.acc.size() - 1)
    }

    /// Writes the buffered frames and `fsync`s them.
    pub fn commit(&mut self) -> Result<(), LogError> {
        let io = |source| LogError::Io {
            path: self.path.clone(),
            source,
        };
        if !self.buf.is_empty() {
            self.file.write_all(&self.buf).map_err(io)?;
            self.file.sync_data().map_err(io)?;
            self.buf.clear();
            self.batches += 1;
        }
        self.pending = 0;
        Ok(())
    }

    /// Entries appended.
    pub fn entries(&self) -> u64 {
        self.acc.size()
    }

    /// Durable batches written (header and key frame included).
    pub fn batches(&self) -> u64 {
        self.batches
    }

    /// The root over the entries appended so far.
    pub fn root(&self) -> Hash {
        self.acc.root()
    }

    fn push_checkpoint(&mut self, time_ns: u64, seal: bool) -> Result<Checkpoint, LogError> {
        let time_ns = time_ns.max(self.last_time_ns);
        let root = self.acc.root();
        let tree_size = self.acc.size();
        let msg = signed_message(tree_size, &root, time_ns, seal);
        let cp = Checkpoint {
            tree_size,
            root,
            time_ns,
            seal,
            signatures: self.signer.sign(&msg),
        };
        push_frame(&mut self.buf, KIND_CHECKPOINT, &cp.encode());
        self.last_time_ns = time_ns;
        self.commit()?;
        Ok(cp)
    }

    /// Signs and appends a checkpoint over every entry so far (at logical time `time_ns`, raised
    /// to the last entry's time if earlier) and makes it durable.
    pub fn checkpoint(&mut self, time_ns: u64) -> Result<Checkpoint, LogError> {
        self.push_checkpoint(time_ns, false)
    }

    /// Appends the sealing checkpoint and closes the log.
    pub fn finish(mut self, time_ns: u64) -> Result<Checkpoint, LogError> {
        self.push_checkpoint(time_ns, true)
    }
}

/// Verifier settings.
#[derive(Clone, Debug, Default)]
pub struct VerifyOptions {
    /// Accept a log without a seal (verify the prefix up to its last checkpoint and any entries
    /// after it).
    pub allow_unsealed: bool,
    /// Keys the log's own key frame must equal; `None` checks signatures against the log's keys.
    pub trusted_keys: Option<Vec<PublicKey>>,
    /// Keep the decoded entries (for `show`).
    pub keep_entries: bool,
}

/// A checkpoint with where it lies.
#[derive(Clone, Debug)]
pub struct CheckpointAt {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// Byte offset of its frame.
    pub offset: u64,
}

/// A verified log.
#[derive(Clone, Debug)]
pub struct Verified {
    /// The log's public keys.
    pub keys: Vec<PublicKey>,
    /// Every entry's leaf hash.
    pub leaves: Vec<Hash>,
    /// Every entry, when asked for.
    pub entries: Vec<Entry>,
    /// Every checkpoint, each checked against the recomputed tree and its signatures.
    pub checkpoints: Vec<CheckpointAt>,
    /// The root over every entry.
    pub root: Hash,
    /// True when the last checkpoint seals the log.
    pub sealed: bool,
}

/// Reads a whole log file (at most `bytes_max` bytes) into memory.
pub fn read_file(path: &Path, bytes_max: u64) -> Result<Vec<u8>, LogError> {
    let io = |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    };
    let len = std::fs::metadata(path).map_err(io)?.len();
    if len > bytes_max {
        return Err(LogError::Header(format!(
            "{}: {len} bytes, more than the {bytes_max} this reader accepts",
            path.display()
        )));
    }
    std::fs::read(path).map_err(io)
}

/// Verifies a whole log: framing and checksums, canonical entries in time order, every
/// checkpoint's size and root against the recomputed RFC 6962 tree, every signature against the
/// log's (or the trusted) public keys, and the seal. The first fault found is returned with its
/// location.
pub fn verify(bytes: &[u8], opts: &VerifyOptions) -> Result<Verified, LogError> {
    let h = bytes.get(..HEADER_BYTES).ok_or_else(|| {
        LogError::Header(format!(
            "{} bytes, shorter than the 16-byte header",
            bytes.len()
        ))
    })?;
    if &h[..8] != MAGIC {
        return Err(LogError::Header(
            "not an XDV audit log (no XDVAUDIT magic)".into(),
        ));
    }
    if crc32fast::hash(&h[..12]).to_le_bytes() != h[12..16] {
        return Err(LogError::Header(
            "header checksum mismatch; the header was altered".into(),
        ));
    }
    let version = u16::from_le_bytes([h[8], h[9]]);
    if version != VERSION || h[10] != 0 || h[11] != 0 {
        return Err(LogError::Header(format!(
            "format version {version} (reserved {:#04x}{:02x}); this XDV reads version {VERSION}",
            h[10], h[11]
        )));
    }
    let mut v = Verified {
        keys: Vec::new(),
        leaves: Vec::new(),
        entries: Vec::new(),
        checkpoints: Vec::new(),
        root: crate::merkle::empty_root(),
        sealed: false,
    };
    let mut acc = Accumulator::default();
    let mut pos = HEADER_BYTES;
    let mut frame = 0u64;
    let mut last_time = 0u64;
    while pos < bytes.len() {
        let rest = &bytes[pos..];
        let claimed = rest.get(4).copied();
        let at = |kind: Option<u8>| Location {
            offset: pos as u64,
            frame,
            what: match kind {
                Some(KIND_KEYS) => "the key frame".to_string(),
                Some(KIND_ENTRY) => format!("entry {}", acc.size()),
                Some(KIND_CHECKPOINT) => format!("checkpoint {}", v.checkpoints.len()),
                Some(k) => format!("a frame of unknown kind {k}"),
                None => "a frame".to_string(),
            },
        };
        if rest.len() < FRAME_OVERHEAD {
            return Err(LogError::Truncated {
                at: at(claimed),
                len: rest.len() as u64,
                need: FRAME_OVERHEAD as u64,
            });
        }
        let len = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
        if len > FRAME_BYTES_MAX {
            return Err(LogError::Frame {
                at: at(claimed),
                detail: format!("claims {len} payload bytes, more than {FRAME_BYTES_MAX}; its length field was altered"),
            });
        }
        let total = len as usize + FRAME_OVERHEAD;
        if rest.len() < total {
            return Err(LogError::Truncated {
                at: at(claimed),
                len: rest.len() as u64,
                need: total as u64,
            });
        }
        let body = &rest[..total - 4];
        if crc32fast::hash(body).to_le_bytes() != rest[total - 4..total] {
            return Err(LogError::Checksum { at: at(claimed) });
        }
        let kind = rest[4];
        let payload = &rest[5..total - 4];
        let here = at(Some(kind));
        if v.sealed {
            return Err(LogError::Frame {
                at: here,
                detail: "follows the sealing checkpoint; nothing may be appended to a sealed log"
                    .into(),
            });
        }
        match (frame, kind) {
            (0, KIND_KEYS) => {
                let (items, used) = decode_tagged(payload).map_err(|detail| LogError::Frame {
                    at: here.clone(),
                    detail,
                })?;
                if used != payload.len() || items.is_empty() {
                    return Err(LogError::Frame {
                        at: here,
                        detail: "the key list is empty or followed by stray bytes".into(),
                    });
                }
                v.keys = items
                    .into_iter()
                    .map(|(alg, bytes)| PublicKey { alg, bytes })
                    .collect();
                if let Some(trusted) = &opts.trusted_keys {
                    for t in trusted {
                        if !v.keys.contains(t) {
                            return Err(LogError::Untrusted { alg: t.alg });
                        }
                    }
                    if let Some(k) = v.keys.iter().find(|k| !trusted.contains(k)) {
                        return Err(LogError::Untrusted { alg: k.alg });
                    }
                }
            }
            (0, _) => {
                return Err(LogError::Frame {
                    at: here,
                    detail: "the first frame must be the key frame".into(),
                })
            }
            (_, KIND_ENTRY) => {
                let e = Entry::decode(payload).map_err(|source| LogError::Entry {
                    at: here.clone(),
                    source,
                })?;
                if e.time_ns < last_time {
                    return Err(LogError::TimeBackwards {
                        at: here,
                        time_ns: e.time_ns,
                        previous_ns: last_time,
                    });
                }
                last_time = e.time_ns;
                let leaf = crate::merkle::leaf_hash(payload);
                acc.push(leaf);
                v.leaves.push(leaf);
                if opts.keep_entries {
                    v.entries.push(e);
                }
            }
            (_, KIND_CHECKPOINT) => {
                let cp = Checkpoint::decode(payload).map_err(|detail| LogError::Frame {
                    at: here.clone(),
                    detail,
                })?;
                if cp.tree_size != acc.size() {
                    return Err(LogError::Checkpoint {
                        at: here,
                        detail: format!(
                            "states a tree of {} entries but {} entries precede it; entries were removed, inserted or reordered",
                            cp.tree_size,
                            acc.size()
                        ),
                    });
                }
                let root = acc.root();
                if cp.root != root {
                    return Err(LogError::Checkpoint {
                        at: here,
                        detail: format!(
                            "states root {} but the {} entries before it hash to {}; an entry was altered or entries were reordered",
                            crate::hex(&cp.root),
                            cp.tree_size,
                            crate::hex(&root)
                        ),
                    });
                }
                if cp.time_ns < last_time {
                    return Err(LogError::Checkpoint {
                        at: here,
                        detail: format!(
                            "logical time {} ns is before the last entry's {last_time} ns",
                            cp.time_ns
                        ),
                    });
                }
                last_time = cp.time_ns;
                let msg = cp.message();
                for key in &v.keys {
                    let sig = cp
                        .signatures
                        .iter()
                        .find(|s| s.alg == key.alg)
                        .ok_or_else(|| LogError::Checkpoint {
                            at: here.clone(),
                            detail: format!(
                                "has no {} signature; the log's key frame requires one",
                                key.alg
                            ),
                        })?;
                    sign::verify(key, &msg, sig).map_err(|source| LogError::Signature {
                        at: here.clone(),
                        source,
                    })?;
                }
                if let Some(s) = cp
                    .signatures
                    .iter()
                    .find(|s| !v.keys.iter().any(|k| k.alg == s.alg))
                {
                    return Err(LogError::Checkpoint {
                        at: here,
                        detail: format!(
                            "carries a {} signature but the log has no {} key",
                            s.alg, s.alg
                        ),
                    });
                }
                v.sealed = cp.seal;
                v.checkpoints.push(CheckpointAt {
                    checkpoint: cp,
                    offset: pos as u64,
                });
            }
            (_, k) => {
                return Err(LogError::Frame {
                    at: here,
                    detail: format!("unknown frame kind {k} (1 keys, 2 entry, 3 checkpoint)"),
                })
            }
        }
        pos += total;
        frame += 1;
    }
    if frame == 0 {
        return Err(LogError::Header("the log has no key frame".into()));
    }
    if !v.sealed && !opts.allow_unsealed {
        return Err(LogError::Unsealed {
            entries: acc.size(),
            checkpoints: v.checkpoints.len() as u64,
        });
    }
    v.root = acc.root();
    Ok(v)
}
