//! The orchestration trace: a versioned, hash-chained record of every input the core received and
//! the decision it made, with periodic full state digests, and the replayer that verifies it.
//!
//! The format is specified in `docs/trace-format.md`. In short: a header with the genesis, then
//! records; each input record carries the postcard-encoded [`Input`] and [`Outcome`] and a chain
//! hash: BLAKE3 keyed with the previous record's hash, over the record's bytes. Writing and reading
//! work on byte buffers and `std::io::Write`; opening files is the caller's business.

use std::io::Write;
use xdv_core::{Core, Genesis, Input, Outcome};

/// The magic bytes at the start of every trace.
pub const MAGIC: &[u8; 8] = b"XDVTRACE";
/// The format version this crate writes and reads.
pub const VERSION: u16 = 3;
/// Default number of inputs between state digest records.
pub const DEFAULT_DIGEST_INTERVAL: u32 = 65_536;
/// Largest encoded genesis accepted, bytes.
pub const GENESIS_BYTES_MAX: u32 = 1 << 24;
/// Largest encoded input or outcome accepted, bytes.
pub const RECORD_BYTES_MAX: u32 = 1 << 24;

const TAG_INPUT: u8 = 1;
const TAG_DIGEST: u8 = 2;
const TAG_SEAL: u8 = 3;

/// Lower-case hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(D[(b >> 4) as usize] as char);
        s.push(D[(b & 15) as usize] as char);
    }
    s
}

/// Why a trace could not be written, read or verified. Offsets are in bytes from the start.
#[derive(Debug, thiserror::Error)]
pub enum TraceError {
    /// Writing failed.
    #[error("writing the trace failed: {0}")]
    Io(#[from] std::io::Error),
    /// Encoding failed (should not happen for valid values).
    #[error("encoding failed: {0}")]
    Encode(String),
    /// Not a trace.
    #[error("byte 0: not an XDV trace (bad magic); expected a file written by `xdv sim --trace` or the runtime")]
    BadMagic,
    /// A version this build cannot read.
    #[error("byte 8: trace format version {found} is not supported (this build reads version {VERSION}); use the XDV release that wrote it")]
    UnsupportedVersion {
        /// The version found.
        found: u16,
    },
    /// The file ends inside a header or record.
    #[error("byte {offset}: the trace is truncated inside {what}; the file was cut short (a crash or an incomplete copy)")]
    Truncated {
        /// Where the cut record starts.
        offset: u64,
        /// What was being read.
        what: &'static str,
    },
    /// Something that cannot be decoded.
    #[error("byte {offset}: corrupt {what}: {detail}")]
    Corrupt {
        /// Where.
        offset: u64,
        /// What.
        what: &'static str,
        /// Why.
        detail: String,
    },
    /// A record's chain hash does not match its content: it was altered.
    #[error("byte {offset}: record {seq}'s chain hash does not match its content; the trace was altered at or before this record")]
    ChainMismatch {
        /// Input sequence number (0-based) of the record.
        seq: u64,
        /// Where the record starts.
        offset: u64,
    },
    /// Re-applying an input gave a different decision.
    #[error("byte {offset}: input {seq} diverged on replay: {input}\n  recorded: {recorded}\n  replayed: {replayed}")]
    Divergence {
        /// Input sequence number (0-based).
        seq: u64,
        /// Where the record starts.
        offset: u64,
        /// The input.
        input: String,
        /// The recorded outcome.
        recorded: String,
        /// The replayed outcome.
        replayed: String,
    },
    /// A state digest differs.
    #[error("byte {offset}: the state digest after {seq} inputs differs: recorded {recorded}, replayed {replayed}")]
    DigestMismatch {
        /// Inputs applied.
        seq: u64,
        /// Where the record starts.
        offset: u64,
        /// Recorded digest.
        recorded: String,
        /// Replayed digest.
        replayed: String,
    },
    /// The trace ends without a seal.
    #[error("byte {offset}: the trace ends after {inputs} inputs without a seal record; the writer stopped early (pass --allow-unsealed to verify the complete prefix)")]
    Unsealed {
        /// Where it ends.
        offset: u64,
        /// Inputs verified.
        inputs: u64,
    },
    /// Bytes after the seal.
    #[error("byte {offset}: data after the seal record; the file has extra bytes appended")]
    TrailingData {
        /// Where they start.
        offset: u64,
    },
}

/// The chain hash of a record: BLAKE3 keyed with the previous chain hash, over the record's bytes
/// from its tag up to (not including) the hash itself.
fn chain(prev: &[u8; 32], record: &[u8]) -> [u8; 32] {
    *blake3::keyed_hash(prev, record).as_bytes()
}

/// The chain's seed: BLAKE3 over a domain separator and the whole header before it (version,
/// digest interval, genesis length and genesis), so that no header byte can change unnoticed.
fn chain_genesis(header: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    h.update(b"xdv-trace-v1 genesis");
    h.update(header);
    *h.finalize().as_bytes()
}

/// Writes a trace. Append each input's record after the core applied it and before its effects are
/// performed; call [`TraceWriter::finish`] to seal.
pub struct TraceWriter<W: Write> {
    w: W,
    chain: [u8; 32],
    seq: u64,
    digest_interval: u32,
    rec: Vec<u8>,
    out_buf: Vec<u8>,
}

impl<W: Write> TraceWriter<W> {
    /// Writes the header.
    pub fn new(mut w: W, genesis: &Genesis, digest_interval: u32) -> Result<Self, TraceError> {
        let g = postcard::to_allocvec(genesis).map_err(|e| TraceError::Encode(e.to_string()))?;
        if g.len() as u64 > u64::from(GENESIS_BYTES_MAX) {
            return Err(TraceError::Encode(format!(
                "the genesis encodes to {} bytes, more than {GENESIS_BYTES_MAX}",
                g.len()
            )));
        }
        let digest_interval = digest_interval.max(1);
        w.write_all(MAGIC)?;
        w.write_all(&VERSION.to_le_bytes())?;
        w.write_all(&digest_interval.to_le_bytes())?;
        w.write_all(&(g.len() as u32).to_le_bytes())?;
        w.write_all(&g)?;
        let mut head = Vec::with_capacity(10 + g.len());
        head.extend_from_slice(&VERSION.to_le_bytes());
        head.extend_from_slice(&digest_interval.to_le_bytes());
        head.extend_from_slice(&(g.len() as u32).to_le_bytes());
        head.extend_from_slice(&g);
        let chain = chain_genesis(&head);
        w.write_all(&chain)?;
        Ok(TraceWriter {
            w,
            chain,
            seq: 0,
            digest_interval,
            rec: Vec::new(),
            out_buf: Vec::new(),
        })
    }

    /// Appends one input with its outcome; every `digest_interval` inputs also a state digest.
    pub fn append(
        &mut self,
        input: &Input,
        outcome: &Outcome,
        core: &Core,
    ) -> Result<(), TraceError> {
        let enc = |e: postcard::Error| TraceError::Encode(e.to_string());
        // Layout: tag, input length, outcome length, input, outcome; then the chain hash.
        self.rec.clear();
        self.rec
            .extend_from_slice(&[TAG_INPUT, 0, 0, 0, 0, 0, 0, 0, 0]);
        self.rec = postcard::to_extend(input, std::mem::take(&mut self.rec)).map_err(enc)?;
        let il = (self.rec.len() - 9) as u32;
        self.out_buf.clear();
        self.out_buf =
            postcard::to_extend(outcome, std::mem::take(&mut self.out_buf)).map_err(enc)?;
        self.rec.extend_from_slice(&self.out_buf);
        if il > RECORD_BYTES_MAX || self.out_buf.len() as u64 > u64::from(RECORD_BYTES_MAX) {
            return Err(TraceError::Encode(format!(
                "input {} has {il} encoded input bytes and {} outcome bytes; a record holds at most {RECORD_BYTES_MAX} of each",
                self.seq,
                self.out_buf.len()
            )));
        }
        self.rec[1..5].copy_from_slice(&il.to_le_bytes());
        self.rec[5..9].copy_from_slice(&(self.out_buf.len() as u32).to_le_bytes());
        self.chain = chain(&self.chain, &self.rec);
        self.w.write_all(&self.rec)?;
        self.w.write_all(&self.chain)?;
        self.seq += 1;
        if self.seq.is_multiple_of(u64::from(self.digest_interval)) {
            self.digest(TAG_DIGEST, core)?;
        }
        Ok(())
    }

    fn digest(&mut self, tag: u8, core: &Core) -> Result<(), TraceError> {
        let d = core.state_digest();
        let mut rec = [0u8; 41];
        rec[0] = tag;
        rec[1..9].copy_from_slice(&self.seq.to_le_bytes());
        rec[9..].copy_from_slice(&d);
        self.chain = chain(&self.chain, &rec);
        self.w.write_all(&rec)?;
        self.w.write_all(&self.chain)?;
        Ok(())
    }

    /// Writes the seal (a final state digest) and returns the writer.
    pub fn finish(mut self, core: &Core) -> Result<W, TraceError> {
        self.digest(TAG_SEAL, core)?;
        self.w.flush()?;
        Ok(self.w)
    }

    /// Inputs written so far.
    pub fn inputs(&self) -> u64 {
        self.seq
    }

    /// The underlying writer, for a caller that moves written bytes elsewhere between records
    /// (the runtime drains a `Vec<u8>` into its durable store after each append).
    pub fn writer_mut(&mut self) -> &mut W {
        &mut self.w
    }
}

/// Decodes a value that must occupy the whole slice.
fn decode_exact<'a, T: serde::Deserialize<'a>>(bytes: &'a [u8]) -> Result<T, String> {
    let (v, rest) = postcard::take_from_bytes(bytes).map_err(|e| e.to_string())?;
    if !rest.is_empty() {
        return Err(format!("{} unexpected bytes after the value", rest.len()));
    }
    Ok(v)
}

/// A postcard flavor that compares what is serialised with recorded bytes instead of storing it:
/// replay checks each decision without writing it out.
struct Compare<'a> {
    expected: &'a [u8],
    pos: usize,
    same: bool,
}

impl postcard::ser_flavors::Flavor for Compare<'_> {
    type Output = bool;

    fn try_push(&mut self, byte: u8) -> postcard::Result<()> {
        self.same &= self.expected.get(self.pos) == Some(&byte);
        self.pos += 1;
        Ok(())
    }

    fn try_extend(&mut self, data: &[u8]) -> postcard::Result<()> {
        let end = self.pos + data.len();
        self.same &= self.expected.get(self.pos..end) == Some(data);
        self.pos = end;
        Ok(())
    }

    fn finalize(self) -> postcard::Result<bool> {
        Ok(self.same && self.pos == self.expected.len())
    }
}

/// Options for [`replay`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ReplayOptions {
    /// Accept a trace without a seal (verify the complete prefix).
    pub allow_unsealed: bool,
    /// Run the full invariant checker after every input (slow; for audits and tests).
    pub check_invariants: bool,
}

/// What a successful replay found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplayReport {
    /// Inputs re-applied.
    pub inputs: u64,
    /// Of which accepted.
    pub accepted: u64,
    /// Of which rejected.
    pub rejected: u64,
    /// State digests verified (including the seal).
    pub digests: u64,
    /// Whether the trace was sealed.
    pub sealed: bool,
    /// The final state digest.
    pub state_hash: [u8; 32],
    /// The final chain hash.
    pub chain_hash: [u8; 32],
    /// Bytes of a partly written last record that were ignored (only with `allow_unsealed`).
    pub torn_tail_bytes: u64,
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str, start: usize) -> Result<&'a [u8], TraceError> {
        if self.b.len() - self.pos < n {
            return Err(TraceError::Truncated {
                offset: start as u64,
                what,
            });
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u32(&mut self, what: &'static str, start: usize) -> Result<u32, TraceError> {
        let s = self.take(4, what, start)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn u64(&mut self, what: &'static str, start: usize) -> Result<u64, TraceError> {
        let s = self.take(8, what, start)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_le_bytes(a))
    }
    fn hash(&mut self, what: &'static str, start: usize) -> Result<[u8; 32], TraceError> {
        let s = self.take(32, what, start)?;
        let mut a = [0u8; 32];
        a.copy_from_slice(s);
        Ok(a)
    }
}

/// Reads a trace's header and returns the genesis, the digest interval and the chain seed.
fn header(c: &mut Cursor<'_>) -> Result<(Genesis, u32, [u8; 32]), TraceError> {
    if c.b.len() < 8 || &c.b[..8] != MAGIC {
        return Err(if c.b.len() < 8 && MAGIC.starts_with(c.b) {
            TraceError::Truncated {
                offset: 0,
                what: "the header",
            }
        } else {
            TraceError::BadMagic
        });
    }
    c.pos = 8;
    let v = c.take(2, "the header", 0)?;
    let version = u16::from_le_bytes([v[0], v[1]]);
    if version != VERSION {
        return Err(TraceError::UnsupportedVersion { found: version });
    }
    let interval = c.u32("the header", 0)?;
    if interval == 0 {
        return Err(TraceError::Corrupt {
            offset: 10,
            what: "header",
            detail: "digest interval is zero".into(),
        });
    }
    let glen = c.u32("the header", 0)?;
    if glen > GENESIS_BYTES_MAX {
        return Err(TraceError::Corrupt {
            offset: 14,
            what: "header",
            detail: format!("genesis length {glen} exceeds {GENESIS_BYTES_MAX}"),
        });
    }
    let g = c.take(glen as usize, "the genesis", 0)?;
    let genesis: Genesis = decode_exact(g).map_err(|detail| TraceError::Corrupt {
        offset: 18,
        what: "genesis",
        detail,
    })?;
    let seed = c.hash("the header", 0)?;
    if seed != chain_genesis(&c.b[8..18 + glen as usize]) {
        return Err(TraceError::Corrupt {
            offset: 18 + u64::from(glen),
            what: "header",
            detail: "the header hash does not match the header; the header was altered".into(),
        });
    }
    Ok((genesis, interval, seed))
}

/// Reads only the genesis of a trace.
pub fn read_genesis(bytes: &[u8]) -> Result<Genesis, TraceError> {
    header(&mut Cursor { b: bytes, pos: 0 }).map(|h| h.0)
}

/// One record as framed in the file: its offset, its bytes up to the chain hash, the hash, and
/// what it holds.
struct Framed<'a> {
    start: usize,
    body: &'a [u8],
    hash: [u8; 32],
    record: Record<'a>,
}

enum Record<'a> {
    Input {
        input: &'a [u8],
        outcome: &'a [u8],
    },
    Digest {
        seal: bool,
        seq: u64,
        digest: [u8; 32],
    },
}

impl<'a> Cursor<'a> {
    /// Reads the next record's framing (no hash is checked); `None` at the end of the data.
    fn next_record(&mut self) -> Result<Option<Framed<'a>>, TraceError> {
        let start = self.pos;
        if start == self.b.len() {
            return Ok(None);
        }
        let tag = self.take(1, "a record", start)?[0];
        let record = match tag {
            TAG_INPUT => {
                let il = self.u32("an input record", start)?;
                let ol = self.u32("an input record", start)?;
                if il > RECORD_BYTES_MAX || ol > RECORD_BYTES_MAX {
                    return Err(TraceError::Corrupt {
                        offset: start as u64,
                        what: "input record",
                        detail: format!("lengths {il} and {ol} exceed {RECORD_BYTES_MAX}"),
                    });
                }
                let input = self.take(il as usize, "an input record", start)?;
                let outcome = self.take(ol as usize, "an input record", start)?;
                Record::Input { input, outcome }
            }
            TAG_DIGEST | TAG_SEAL => {
                let what = if tag == TAG_SEAL {
                    "the seal record"
                } else {
                    "a digest record"
                };
                let seq = self.u64(what, start)?;
                let digest = self.hash(what, start)?;
                Record::Digest {
                    seal: tag == TAG_SEAL,
                    seq,
                    digest,
                }
            }
            other => {
                return Err(TraceError::Corrupt {
                    offset: start as u64,
                    what: "record",
                    detail: format!(
                        "unknown record tag {other} (expected 1 input, 2 digest or 3 seal)"
                    ),
                })
            }
        };
        let body = &self.b[start..self.pos];
        let hash = self.hash("a record's chain hash", start)?;
        Ok(Some(Framed {
            start,
            body,
            hash,
            record,
        }))
    }
}

/// The length of the longest prefix made of the header and whole records (framing only; no
/// hashes are checked). A prefix that does not even hold the header is returned whole, so that
/// [`replay`] reports what is wrong with it.
fn complete_prefix(bytes: &[u8]) -> usize {
    let mut c = Cursor { b: bytes, pos: 0 };
    if header(&mut c).is_err() {
        return bytes.len();
    }
    loop {
        let start = c.pos;
        match c.next_record() {
            // Nothing a writer wrote follows a seal: leave what follows for replay to refuse.
            Ok(Some(Framed {
                record: Record::Digest { seal: true, .. },
                ..
            }))
            | Ok(None) => return bytes.len(),
            Ok(Some(_)) => {}
            Err(_) => return start,
        }
    }
}

/// Verifies only the chain: the header and every record's hash, without re-applying inputs.
/// Returns the number of input records and the final chain hash. This proves the file is intact
/// and complete (sealed) but not that the decisions in it are the core's; [`replay`] proves both.
pub fn verify_chain(bytes: &[u8]) -> Result<(u64, [u8; 32]), TraceError> {
    let mut c = Cursor { b: bytes, pos: 0 };
    let (_, _, mut chain_hash) = header(&mut c)?;
    let mut inputs = 0u64;
    while let Some(f) = c.next_record()? {
        chain_hash = chain(&chain_hash, f.body);
        if chain_hash != f.hash {
            return Err(TraceError::ChainMismatch {
                seq: inputs,
                offset: f.start as u64,
            });
        }
        match f.record {
            Record::Input { .. } => inputs += 1,
            Record::Digest { seal: true, .. } => {
                if c.pos != bytes.len() {
                    return Err(TraceError::TrailingData {
                        offset: c.pos as u64,
                    });
                }
                return Ok((inputs, chain_hash));
            }
            Record::Digest { .. } => {}
        }
    }
    Err(TraceError::Unsealed {
        offset: bytes.len() as u64,
        inputs,
    })
}

/// Every input of a trace, in order, after checking the header and every record's chain hash
/// (as [`verify_chain`]; an unsealed trace is read up to its last complete record). The inputs
/// are not re-applied: use [`replay`] to verify the decisions.
pub fn read_inputs(bytes: &[u8]) -> Result<Vec<Input>, TraceError> {
    let bytes = &bytes[..complete_prefix(bytes)];
    let mut c = Cursor { b: bytes, pos: 0 };
    let (_, _, mut chain_hash) = header(&mut c)?;
    let mut inputs = Vec::new();
    while let Some(f) = c.next_record()? {
        chain_hash = chain(&chain_hash, f.body);
        if chain_hash != f.hash {
            return Err(TraceError::ChainMismatch {
                seq: inputs.len() as u64,
                offset: f.start as u64,
            });
        }
        if let Record::Input { input, .. } = f.record {
            let input: Input = decode_exact(input).map_err(|detail| TraceError::Corrupt {
                offset: f.start as u64,
                what: "input",
                detail,
            })?;
            inputs.push(input);
        }
    }
    Ok(inputs)
}

/// Re-applies every input of a trace to a fresh core, verifying every chain hash, every decision
/// and every state digest. Returns the report and the final core.
pub fn replay(bytes: &[u8], opts: ReplayOptions) -> Result<(ReplayReport, Core), TraceError> {
    // A writer that crashed leaves a partly written last record: with `allow_unsealed` the
    // complete records before it are verified and the torn tail is reported, not an error.
    let full_len = bytes.len();
    let bytes = if opts.allow_unsealed {
        &bytes[..complete_prefix(bytes)]
    } else {
        bytes
    };
    let mut c = Cursor { b: bytes, pos: 0 };
    let (genesis, interval, mut chain_hash) = header(&mut c)?;
    let mut core = Core::new(genesis);
    let mut outcome = Outcome::default();
    let mut rep = ReplayReport {
        inputs: 0,
        accepted: 0,
        rejected: 0,
        digests: 0,
        sealed: false,
        state_hash: [0; 32],
        chain_hash,
        torn_tail_bytes: (full_len - bytes.len()) as u64,
    };
    while let Some(f) = c.next_record()? {
        let offset = f.start as u64;
        chain_hash = chain(&chain_hash, f.body);
        if chain_hash != f.hash {
            return Err(TraceError::ChainMismatch {
                seq: rep.inputs,
                offset,
            });
        }
        match f.record {
            Record::Input {
                input: ib,
                outcome: ob,
            } => {
                let seq = rep.inputs;
                let input: Input = decode_exact(ib).map_err(|detail| TraceError::Corrupt {
                    offset,
                    what: "input",
                    detail,
                })?;
                core.apply(&input, &mut outcome);
                if opts.check_invariants {
                    let v = xdv_core::invariants::check_step(&core, &input, &outcome)
                        .and_then(|_| xdv_core::invariants::check_full(&core));
                    if let Err(v) = v {
                        return Err(TraceError::Corrupt {
                            offset,
                            what: "state after input",
                            detail: v.to_string(),
                        });
                    }
                }
                let same = postcard::serialize_with_flavor(
                    &outcome,
                    Compare {
                        expected: ob,
                        pos: 0,
                        same: true,
                    },
                )
                .map_err(|e| TraceError::Encode(e.to_string()))?;
                if !same {
                    let recorded = postcard::from_bytes::<Outcome>(ob)
                        .map(|o| format!("{o:?}"))
                        .unwrap_or_else(|e| format!("<undecodable: {e}>"));
                    return Err(TraceError::Divergence {
                        seq,
                        offset,
                        input: format!("{input:?}"),
                        recorded,
                        replayed: format!("{outcome:?}"),
                    });
                }
                rep.inputs += 1;
                if outcome.accepted() {
                    rep.accepted += 1;
                } else {
                    rep.rejected += 1;
                }
            }
            Record::Digest { seal, seq, digest } => {
                let what = if seal {
                    "the seal record"
                } else {
                    "a digest record"
                };
                if seq != rep.inputs || (!seal && seq % u64::from(interval) != 0) {
                    return Err(TraceError::Corrupt {
                        offset,
                        what,
                        detail: format!("it claims {seq} inputs but {} precede it", rep.inputs),
                    });
                }
                let mine = core.state_digest();
                if mine != digest {
                    return Err(TraceError::DigestMismatch {
                        seq,
                        offset,
                        recorded: hex(&digest),
                        replayed: hex(&mine),
                    });
                }
                rep.digests += 1;
                if seal {
                    rep.sealed = true;
                    rep.state_hash = mine;
                    if c.pos != bytes.len() {
                        return Err(TraceError::TrailingData {
                            offset: c.pos as u64,
                        });
                    }
                    rep.chain_hash = chain_hash;
                    return Ok((rep, core));
                }
            }
        }
    }
    if !opts.allow_unsealed {
        return Err(TraceError::Unsealed {
            offset: bytes.len() as u64,
            inputs: rep.inputs,
        });
    }
    rep.state_hash = core.state_digest();
    rep.chain_hash = chain_hash;
    Ok((rep, core))
}
