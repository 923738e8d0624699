//! The typed audit records and their canonical encoding.
//!
//! Every entry is `tag u8 ‖ time_ns u64 LE ‖ fields`, fields in declaration order: integers are
//! fixed-width little-endian, a bool or an option tag is one byte that must be 0 or 1, a string is
//! `u32 LE length ‖ UTF-8 bytes` (at most [`STRING_BYTES_MAX`]). Every value has exactly one
//! encoding and the decoder refuses anything else (unknown tags, bytes other than 0/1, trailing
//! bytes), so the bytes hashed into the Merkle tree are a function of the record alone.

use std::fmt;

/// Longest string field, bytes.
pub const STRING_BYTES_MAX: usize = 4096;

/// A computing domain, as the audit log names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Domain {
    /// Classical (WebAssembly guests).
    K,
    /// Quantum (circuits).
    Q,
    /// Phase (coherent light in MZI meshes).
    Phi,
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Domain::K => "K",
            Domain::Q => "Q",
            Domain::Phi => "Φ",
        })
    }
}

/// What happened on an IPC channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IpcKind {
    /// The channel was opened.
    Opened,
    /// The channel was closed.
    Closed,
    /// A message was sent.
    Message,
}

/// What happened to a capability.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CapKind {
    /// It was issued (granted or attenuated).
    Issued,
    /// It was revoked.
    Revoked,
}

/// One audit entry: a logical time and what happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Logical time of the event, ns (from the core's clock, never the wall clock).
    pub time_ns: u64,
    /// What happened.
    pub event: Event,
}

/// What an entry records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A VHM was created.
    VhmCreated {
        /// The VHM.
        vhm: u32,
        /// Its parent, for a nested VHM.
        parent: Option<u32>,
        /// Its name.
        name: String,
    },
    /// A VHM stopped and its resources were reclaimed.
    VhmStopped {
        /// The VHM.
        vhm: u32,
        /// Why.
        reason: String,
    },
    /// An amount of a resource was reserved or released.
    Allocation {
        /// The VHM.
        vhm: u32,
        /// The resource.
        resource: String,
        /// The amount, in the resource's unit.
        amount: u64,
        /// True for a release.
        released: bool,
    },
    /// A cross-domain transition: a job handed from one domain to another (K→Q, K→Φ) or its
    /// result handed back (Q→K, Φ→K).
    Transition {
        /// The VHM.
        vhm: u32,
        /// The job.
        job: u64,
        /// From this domain.
        from: Domain,
        /// To this domain.
        to: Domain,
        /// What: `submitted`, `ok`, `failed N`, `expired`, `cancelled`.
        detail: String,
    },
    /// An IPC event.
    Ipc {
        /// The channel.
        channel: u32,
        /// The sending (or opening) VHM.
        from: u32,
        /// The other end.
        to: u32,
        /// What happened.
        kind: IpcKind,
        /// Message bytes (0 for open and close).
        bytes: u64,
    },
    /// A capability was issued or revoked.
    Capability {
        /// The capability.
        cap: u64,
        /// Issued or revoked.
        kind: CapKind,
        /// The capability it derives from, when issued.
        parent: Option<u64>,
        /// Its holder, when issued (`operator` or `vN`).
        holder: String,
    },
    /// An input was refused.
    Rejection {
        /// The VHM that asked, if a VHM did.
        vhm: Option<u32>,
        /// The rule that refused it.
        rule: String,
        /// The refusal's message.
        detail: String,
    },
    /// A capability-token block was revoked (its id: the BLAKE3 hash of the block's
    /// revocation id).
    TokenRevoked {
        /// The block's id.
        token: [u8; 32],
    },
}

/// Why bytes are not a canonical entry.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The bytes end inside a field.
    #[error("the entry ends inside its {field} field (byte {at}); the record is truncated")]
    Truncated {
        /// The field.
        field: &'static str,
        /// Byte offset inside the entry.
        at: usize,
    },
    /// An unknown entry tag.
    #[error("unknown entry type {0}; this log was written by a newer XDV or is corrupt")]
    UnknownTag(u8),
    /// A one-byte field holds a value other than those defined.
    #[error("field {field} holds {value} at byte {at}, not one of its defined values")]
    BadByte {
        /// The field.
        field: &'static str,
        /// The byte.
        value: u8,
        /// Byte offset inside the entry.
        at: usize,
    },
    /// A string is too long or not UTF-8.
    #[error("string field {field} at byte {at} is {detail}")]
    BadString {
        /// The field.
        field: &'static str,
        /// Byte offset inside the entry.
        at: usize,
        /// What is wrong.
        detail: String,
    },
    /// Bytes follow the last field.
    #[error("{0} bytes follow the entry's last field; the entry is not canonical")]
    Trailing(usize),
}

/// Why an entry cannot be encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("string field {field} is {len} bytes; at most {STRING_BYTES_MAX} fit in an audit entry (shorten it)")]
pub struct EncodeError {
    /// The field.
    pub field: &'static str,
    /// Its length.
    pub len: usize,
}

const TAG_VHM_CREATED: u8 = 1;
const TAG_VHM_STOPPED: u8 = 2;
const TAG_ALLOCATION: u8 = 3;
const TAG_TRANSITION: u8 = 4;
const TAG_IPC: u8 = 5;
const TAG_CAPABILITY: u8 = 6;
const TAG_REJECTION: u8 = 7;
const TAG_TOKEN_REVOKED: u8 = 8;

fn put_str(out: &mut Vec<u8>, field: &'static str, s: &str) -> Result<(), EncodeError> {
    if s.len() > STRING_BYTES_MAX {
        return Err(EncodeError {
            field,
            len: s.len(),
        });
    }
    out.extend_from_slice(&(s.len() as u32).to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

fn domain_byte(d: Domain) -> u8 {
    match d {
        Domain::K => 0,
        Domain::Q => 1,
        Domain::Phi => 2,
    }
}

impl Entry {
    /// Appends the canonical encoding to `out`; on error `out` is left as it was.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let start = out.len();
        let r = self.encode_fields(out);
        if r.is_err() {
            out.truncate(start);
        }
        r
    }

    /// The canonical encoding.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut v = Vec::with_capacity(64);
        self.encode_into(&mut v)?;
        Ok(v)
    }

    fn encode_fields(&self, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        let tag = match &self.event {
            Event::VhmCreated { .. } => TAG_VHM_CREATED,
            Event::VhmStopped { .. } => TAG_VHM_STOPPED,
            Event::Allocation { .. } => TAG_ALLOCATION,
            Event::Transition { .. } => TAG_TRANSITION,
            Event::Ipc { .. } => TAG_IPC,
            Event::Capability { .. } => TAG_CAPABILITY,
            Event::Rejection { .. } => TAG_REJECTION,
            Event::TokenRevoked { .. } => TAG_TOKEN_REVOKED,
        };
        out.push(tag);
        out.extend_from_slice(&self.time_ns.to_le_bytes());
        match &self.event {
            Event::VhmCreated { vhm, parent, name } => {
                out.extend_from_slice(&vhm.to_le_bytes());
                put_opt_u32(out, *parent);
                put_str(out, "name", name)?;
            }
            Event::VhmStopped { vhm, reason } => {
                out.extend_from_slice(&vhm.to_le_bytes());
                put_str(out, "reason", reason)?;
            }
            Event::Allocation {
                vhm,
                resource,
                amount,
                released,
            } => {
                out.extend_from_slice(&vhm.to_le_bytes());
                put_str(out, "resource", resource)?;
                out.extend_from_slice(&amount.to_le_bytes());
                out.push(u8::from(*released));
            }
            Event::Transition {
                vhm,
                job,
                from,
                to,
                detail,
            } => {
                out.extend_from_slice(&vhm.to_le_bytes());
                out.extend_from_slice(&job.to_le_bytes());
                out.push(domain_byte(*from));
                out.push(domain_byte(*to));
                put_str(out, "detail", detail)?;
            }
            Event::Ipc {
                channel,
                from,
                to,
                kind,
                bytes,
            } => {
                out.extend_from_slice(&channel.to_le_bytes());
                out.extend_from_slice(&from.to_le_bytes());
                out.extend_from_slice(&to.to_le_bytes());
                out.push(match kind {
                    IpcKind::Opened => 0,
                    IpcKind::Closed => 1,
                    IpcKind::Message => 2,
                });
                out.extend_from_slice(&bytes.to_le_bytes());
            }
            Event::Capability {
                cap,
                kind,
                parent,
                holder,
            } => {
                out.extend_from_slice(&cap.to_le_bytes());
                out.push(match kind {
                    CapKind::Issued => 0,
                    CapKind::Revoked => 1,
                });
                match parent {
                    None => out.push(0),
                    Some(p) => {
                        out.push(1);
                        out.extend_from_slice(&p.to_le_bytes());
                    }
                }
                put_str(out, "holder", holder)?;
            }
            Event::Rejection { vhm, rule, detail } => {
                put_opt_u32(out, *vhm);
                put_str(out, "rule", rule)?;
                put_str(out, "detail", detail)?;
            }
            Event::TokenRevoked { token } => out.extend_from_slice(token),
        }
        Ok(())
    }

    /// Decodes a canonical encoding that must occupy all of `bytes`.
    pub fn decode(bytes: &[u8]) -> Result<Entry, DecodeError> {
        let mut r = Reader { b: bytes, pos: 0 };
        let tag = r.u8("tag")?;
        let time_ns = r.u64("time_ns")?;
        let event = match tag {
            TAG_VHM_CREATED => Event::VhmCreated {
                vhm: r.u32("vhm")?,
                parent: r.opt_u32("parent")?,
                name: r.string("name")?,
            },
            TAG_VHM_STOPPED => Event::VhmStopped {
                vhm: r.u32("vhm")?,
                reason: r.string("reason")?,
            },
            TAG_ALLOCATION => Event::Allocation {
                vhm: r.u32("vhm")?,
                resource: r.string("resource")?,
                amount: r.u64("amount")?,
                released: r.bool("released")?,
            },
            TAG_TRANSITION => Event::Transition {
                vhm: r.u32("vhm")?,
                job: r.u64("job")?,
                from: r.domain("from")?,
                to: r.domain("to")?,
                detail: r.string("detail")?,
            },
            TAG_IPC => Event::Ipc {
                channel: r.u32("channel")?,
                from: r.u32("from")?,
                to: r.u32("to")?,
                kind: match r.byte_in("kind", 2)? {
                    0 => IpcKind::Opened,
                    1 => IpcKind::Closed,
                    _ => IpcKind::Message,
                },
                bytes: r.u64("bytes")?,
            },
            TAG_CAPABILITY => Event::Capability {
                cap: r.u64("cap")?,
                kind: if r.bool("kind")? {
                    CapKind::Revoked
                } else {
                    CapKind::Issued
                },
                parent: if r.bool("parent")? {
                    Some(r.u64("parent")?)
                } else {
                    None
                },
                holder: r.string("holder")?,
            },
            TAG_REJECTION => Event::Rejection {
                vhm: r.opt_u32("vhm")?,
                rule: r.string("rule")?,
                detail: r.string("detail")?,
            },
            TAG_TOKEN_REVOKED => Event::TokenRevoked {
                token: r.take::<32>("token")?,
            },
            t => return Err(DecodeError::UnknownTag(t)),
        };
        let rest = bytes.len() - r.pos;
        if rest != 0 {
            return Err(DecodeError::Trailing(rest));
        }
        Ok(Entry { time_ns, event })
    }

    /// The VHMs this entry concerns.
    pub fn vhms(&self) -> Vec<u32> {
        match &self.event {
            Event::VhmCreated { vhm, parent, .. } => {
                let mut v = vec![*vhm];
                v.extend(parent);
                v
            }
            Event::VhmStopped { vhm, .. }
            | Event::Allocation { vhm, .. }
            | Event::Transition { vhm, .. } => vec![*vhm],
            Event::Ipc { from, to, .. } => vec![*from, *to],
            Event::Capability { holder, .. } => holder
                .strip_prefix('v')
                .and_then(|n| n.parse().ok())
                .into_iter()
                .collect(),
            Event::Rejection { vhm, .. } => vhm.iter().copied().collect(),
            Event::TokenRevoked { .. } => Vec::new(),
        }
    }
}

fn put_opt_u32(out: &mut Vec<u8>, v: Option<u32>) {
    match v {
        None => out.push(0),
        Some(x) => {
            out.push(1);
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
}

struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], DecodeError> {
        let at = self.pos;
        let s = self
            .b
            .get(at..at.saturating_add(N))
            .ok_or(DecodeError::Truncated { field, at })?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        self.pos += N;
        Ok(a)
    }
    fn u8(&mut self, field: &'static str) -> Result<u8, DecodeError> {
        Ok(self.take::<1>(field)?[0])
    }
    fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        Ok(u32::from_le_bytes(self.take(field)?))
    }
    fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        Ok(u64::from_le_bytes(self.take(field)?))
    }
    fn byte_in(&mut self, field: &'static str, max: u8) -> Result<u8, DecodeError> {
        let at = self.pos;
        let v = self.u8(field)?;
        if v > max {
            return Err(DecodeError::BadByte {
                field,
                value: v,
                at,
            });
        }
        Ok(v)
    }
    fn bool(&mut self, field: &'static str) -> Result<bool, DecodeError> {
        Ok(self.byte_in(field, 1)? == 1)
    }
    fn opt_u32(&mut self, field: &'static str) -> Result<Option<u32>, DecodeError> {
        Ok(if self.bool(field)? {
            Some(self.u32(field)?)
        } else {
            None
        })
    }
    fn domain(&mut self, field: &'static str) -> Result<Domain, DecodeError> {
        Ok(match self.byte_in(field, 2)? {
            0 => Domain::K,
            1 => Domain::Q,
            _ => Domain::Phi,
        })
    }
    fn string(&mut self, field: &'static str) -> Result<String, DecodeError> {
        let at = self.pos;
        let len = self.u32(field)? as usize;
        if len > STRING_BYTES_MAX {
            return Err(DecodeError::BadString {
                field,
                at,
                detail: format!("{len} bytes long, more than {STRING_BYTES_MAX}"),
            });
        }
        let s = self
            .b
            .get(self.pos..self.pos + len)
            .ok_or(DecodeError::Truncated { field, at })?;
        let s = std::str::from_utf8(s).map_err(|e| DecodeError::BadString {
            field,
            at,
            detail: format!("not UTF-8 ({e})"),
        })?;
        self.pos += len;
        Ok(s.to_owned())
    }
}

impl fmt::Display for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "t={}ns ", self.time_ns)?;
        match &self.event {
            Event::VhmCreated { vhm, parent, name } => match parent {
                Some(p) => write!(f, "vhm-created v{vhm} \"{name}\" nested in v{p}"),
                None => write!(f, "vhm-created v{vhm} \"{name}\""),
            },
            Event::VhmStopped { vhm, reason } => write!(f, "vhm-stopped v{vhm} ({reason})"),
            Event::Allocation {
                vhm,
                resource,
                amount,
                released,
            } => write!(
                f,
                "{} v{vhm} {amount} {resource}",
                if *released { "released" } else { "reserved" }
            ),
            Event::Transition {
                vhm,
                job,
                from,
                to,
                detail,
            } => write!(f, "transition {from}→{to} v{vhm} job {job} {detail}"),
            Event::Ipc {
                channel,
                from,
                to,
                kind,
                bytes,
            } => match kind {
                IpcKind::Opened => write!(f, "ipc-open c{channel} v{from}↔v{to}"),
                IpcKind::Closed => write!(f, "ipc-close c{channel} v{from}↔v{to}"),
                IpcKind::Message => write!(f, "ipc-message c{channel} v{from}→v{to} {bytes} bytes"),
            },
            Event::Capability {
                cap,
                kind,
                parent,
                holder,
            } => match (kind, parent) {
                (CapKind::Issued, Some(p)) => {
                    write!(f, "cap-issued c#{cap} from c#{p} to {holder}")
                }
                (CapKind::Issued, None) => write!(f, "cap-issued c#{cap} to {holder}"),
                (CapKind::Revoked, _) => write!(f, "cap-revoked c#{cap}"),
            },
            Event::Rejection { vhm, rule, detail } => match vhm {
                Some(v) => write!(f, "rejected v{v} [{rule}] {detail}"),
                None => write!(f, "rejected [{rule}] {detail}"),
            },
            Event::TokenRevoked { token } => {
                f.write_str("token-revoked ")?;
                for b in token {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
    }
}
