//! `xdv audit …` and `xdv keys …`: verify, prove and show audit logs, generate key directories,
//! and derive an audit log from an orchestration trace (what `xdv sim --audit` does).
//!
//! Deriving a log is the edge's job: the trace's inputs are re-applied to a fresh core (the pure
//! decision function), and each outcome's events and rejection become typed audit entries.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde_json::json;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use xdv_core::{Command, Core, Event, Input, Outcome, Principal};
use xdv_sdbm::entry::{CapKind, Domain, Entry, Event as AEvent, IpcKind};
use xdv_sdbm::hex;
use xdv_sdbm::keys::{self, MasterSecret};
use xdv_sdbm::log::{self, AuditWriter, LogError, Verified, VerifyOptions, WriterOptions};
use xdv_sdbm::merkle;
use xdv_sdbm::sign::Signer;

/// Largest audit log read, bytes.
const AUDIT_FILE_BYTES_MAX: u64 = 8 << 30;
/// Largest trace read to derive a log, bytes.
const TRACE_FILE_BYTES_MAX: u64 = 8 << 30;
/// Entries between checkpoints when deriving a log from a trace.
pub const CHECKPOINT_EVERY_DEFAULT: u64 = 65_536;
/// HKDF label of the capability-token root key.
pub const TOKEN_ROOT_LABEL: &str = "xdv/token/root/v1";
/// Name of the token root public key in a key directory.
pub const TOKEN_PUBLIC_FILE: &str = "token-root.pub";

/// `xdv audit` subcommands.
#[derive(Subcommand)]
pub enum AuditCmd {
    /// Recompute the whole tree and check every checkpoint and signature with public keys alone.
    Verify {
        /// The audit log.
        path: PathBuf,
        /// Check that the log is signed by the keys in this directory's `audit.pub` (without it,
        /// signatures are checked against the keys the log names, and the output says so).
        #[arg(long)]
        keys: Option<PathBuf>,
        /// Accept a log whose writer stopped before sealing it.
        #[arg(long)]
        allow_unsealed: bool,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Print the inclusion proof of one entry against the latest checkpoint covering it.
    Prove {
        /// The audit log.
        path: PathBuf,
        /// The entry's index (0-based).
        #[arg(long)]
        entry: u64,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Print the consistency proof between two checkpoints, named by their tree sizes.
    Consistency {
        /// The audit log.
        path: PathBuf,
        /// The older checkpoint's tree size.
        #[arg(long)]
        from: u64,
        /// The newer checkpoint's tree size.
        #[arg(long)]
        to: u64,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Print the entries (after verifying the log), optionally those of one VHM.
    Show {
        /// The audit log.
        path: PathBuf,
        /// Only entries concerning VHMs of this name (or `vN` for a VHM id).
        #[arg(long)]
        vhm: Option<String>,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Derive an audit log from an orchestration trace (re-applying its inputs to a fresh core).
    FromTrace {
        /// The trace.
        trace: PathBuf,
        /// The audit log to create.
        #[arg(long)]
        out: PathBuf,
        /// The key directory (`xdv keys generate`).
        #[arg(long)]
        keys: PathBuf,
        /// Entries between checkpoints.
        #[arg(long, default_value_t = CHECKPOINT_EVERY_DEFAULT)]
        checkpoint_every: u64,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
}

/// `xdv keys` subcommands.
#[derive(Subcommand)]
pub enum KeysCmd {
    /// Create a key directory: a fresh 256-bit master secret (mode 0600) and the public keys
    /// derived from it (audit checkpoint keys, token root key).
    Generate {
        /// The directory (created; existing key files are never overwritten).
        dir: PathBuf,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
}

fn fingerprint(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    hex(&sha2::Sha256::digest(bytes)[..8])
}

/// Loads the checkpoint signer from a key directory.
pub fn load_signer(dir: &Path) -> Result<Signer> {
    let m = keys::read_secret(&dir.join(keys::MASTER_FILE))?;
    Ok(Signer::from_master(&m))
}

/// Runs `xdv keys …`.
pub fn run_keys(cmd: KeysCmd) -> Result<ExitCode> {
    match cmd {
        KeysCmd::Generate { dir, json } => {
            // Key generation is the one place XDV draws operating-system entropy.
            let mut s = [0u8; 32];
            getrandom::fill(&mut s).map_err(|e| anyhow::anyhow!("no entropy: {e}"))?;
            let master = MasterSecret(s);
            let public = keys::generate(&dir, &master)?;
            let token =
                xdv_token::Authority::from_secret(&keys::derive_key(&master, TOKEN_ROOT_LABEL))?;
            let token_pub = dir.join(TOKEN_PUBLIC_FILE);
            std::fs::write(&token_pub, format!("{}\n", hex(&token.public_key())))
                .with_context(|| format!("cannot write {}", token_pub.display()))?;
            if json {
                let ks: Vec<_> = public
                    .iter()
                    .map(|k| json!({"alg": k.alg.name(), "fingerprint": fingerprint(&k.bytes)}))
                    .collect();
                say!(
                    "{}",
                    json!({"dir": dir.display().to_string(), "audit_keys": ks, "token_root": hex(&token.public_key())})
                );
            } else {
                say!(
                    "{}: new master secret in {} (mode 0600)",
                    dir.display(),
                    keys::MASTER_FILE
                );
                for k in &public {
                    say!(
                        "  audit {} key {} ({} bytes)",
                        k.alg,
                        fingerprint(&k.bytes),
                        k.bytes.len()
                    );
                }
                say!("  token root key {}", hex(&token.public_key()));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn load(path: &Path, opts: &VerifyOptions) -> Result<std::result::Result<Verified, LogError>> {
    let bytes = log::read_file(path, AUDIT_FILE_BYTES_MAX)?;
    Ok(log::verify(&bytes, opts))
}

fn fail(cmd: &str, path: &Path, e: &LogError, json: bool) -> ExitCode {
    eprintln!("xdv audit {cmd}: {}: {e}", path.display());
    if json {
        let at = e.location();
        say!(
            "{}",
            json!({
                "verified": false, "error": e.to_string(),
                "offset": at.map(|a| a.offset), "frame": at.map(|a| a.frame),
                "what": at.map(|a| a.what.clone()),
            })
        );
    }
    ExitCode::from(1)
}

/// Runs `xdv audit …`.
pub fn run(cmd: AuditCmd) -> Result<ExitCode> {
    match cmd {
        AuditCmd::Verify {
            path,
            keys: key_dir,
            allow_unsealed,
            json,
        } => {
            let trusted = match &key_dir {
                Some(d) => Some(keys::read_public(&d.join(keys::AUDIT_PUBLIC_FILE))?),
                None => None,
            };
            let opts = VerifyOptions {
                allow_unsealed,
                trusted_keys: trusted,
                keep_entries: false,
            };
            let v = match load(&path, &opts)? {
                Ok(v) => v,
                Err(e) => return Ok(fail("verify", &path, &e, json)),
            };
            if json {
                let ks: Vec<_> = v
                    .keys
                    .iter()
                    .map(|k| json!({"alg": k.alg.name(), "fingerprint": fingerprint(&k.bytes)}))
                    .collect();
                say!(
                    "{}",
                    json!({
                        "entries": v.leaves.len(), "checkpoints": v.checkpoints.len(), "root": hex(&v.root),
                        "verified": true, "sealed": v.sealed, "keys": ks, "keys_trusted": key_dir.is_some(),
                    })
                );
            } else {
                say!(
                    "{}: verified {} entries, {} checkpoints{}",
                    path.display(),
                    v.leaves.len(),
                    v.checkpoints.len(),
                    if v.sealed { ", sealed" } else { ", NOT sealed" }
                );
                say!("  root {}", hex(&v.root));
                for k in &v.keys {
                    say!("  {} key {}", k.alg, fingerprint(&k.bytes));
                }
                if key_dir.is_none() {
                    say!("  signatures checked against the log's own keys; pass --keys DIR to pin them");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCmd::Prove { path, entry, json } => {
            let v = match load(&path, &VerifyOptions::default())? {
                Ok(v) => v,
                Err(e) => return Ok(fail("prove", &path, &e, json)),
            };
            let Some((ci, cp)) = v
                .checkpoints
                .iter()
                .enumerate()
                .rev()
                .find(|(_, c)| c.checkpoint.tree_size > entry)
            else {
                bail!(
                    "{}: no checkpoint covers entry {entry} (the log has {} entries); choose an entry below {}",
                    path.display(),
                    v.leaves.len(),
                    v.checkpoints.last().map_or(0, |c| c.checkpoint.tree_size)
                );
            };
            let size = cp.checkpoint.tree_size;
            let leaves = v
                .leaves
                .get(..size as usize)
                .context("checkpoint beyond the leaves")?;
            let proof = merkle::inclusion_proof(leaves, entry)?;
            let leaf = leaves
                .get(entry as usize)
                .context("entry beyond the leaves")?;
            merkle::verify_inclusion(leaf, entry, size, &proof, &cp.checkpoint.root)?;
            let hexes: Vec<String> = proof.iter().map(|h| hex(h)).collect();
            if json {
                say!(
                    "{}",
                    json!({
                        "entry": entry, "leaf_hash": hex(leaf), "tree_size": size, "checkpoint": ci,
                        "root": hex(&cp.checkpoint.root), "proof": hexes, "verified": true,
                    })
                );
            } else {
                say!(
                    "entry {entry} is in checkpoint {ci} (tree size {size}, root {})",
                    hex(&cp.checkpoint.root)
                );
                say!("  leaf hash {}", hex(leaf));
                for (i, h) in hexes.iter().enumerate() {
                    say!("  path[{i}] {h}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCmd::Consistency {
            path,
            from,
            to,
            json,
        } => {
            let v = match load(&path, &VerifyOptions::default())? {
                Ok(v) => v,
                Err(e) => return Ok(fail("consistency", &path, &e, json)),
            };
            let root_of = |size: u64| {
                v.checkpoints
                    .iter()
                    .find(|c| c.checkpoint.tree_size == size)
                    .map(|c| c.checkpoint.root)
            };
            let sizes: Vec<u64> = v
                .checkpoints
                .iter()
                .map(|c| c.checkpoint.tree_size)
                .collect();
            let (Some(r1), Some(r2)) = (root_of(from), root_of(to)) else {
                bail!(
                    "{}: --from and --to must be tree sizes of checkpoints in the log; its checkpoints have sizes {sizes:?}",
                    path.display()
                );
            };
            if from > to {
                bail!("--from ({from}) must not exceed --to ({to})");
            }
            let proof = merkle::consistency_proof(&v.leaves, from, to)?;
            merkle::verify_consistency(from, to, &r1, &r2, &proof)?;
            let hexes: Vec<String> = proof.iter().map(|h| hex(h)).collect();
            if json {
                say!(
                    "{}",
                    json!({"from": from, "to": to, "from_root": hex(&r1), "to_root": hex(&r2), "proof": hexes, "verified": true})
                );
            } else {
                say!("the tree of {from} entries (root {}) is a prefix of the tree of {to} (root {})", hex(&r1), hex(&r2));
                for (i, h) in hexes.iter().enumerate() {
                    say!("  proof[{i}] {h}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCmd::Show { path, vhm, json } => {
            let opts = VerifyOptions {
                allow_unsealed: true,
                keep_entries: true,
                ..VerifyOptions::default()
            };
            let v = match load(&path, &opts)? {
                Ok(v) => v,
                Err(e) => return Ok(fail("show", &path, &e, json)),
            };
            let wanted: Option<Vec<u32>> = vhm.as_ref().map(|name| {
                let mut ids: Vec<u32> = v
                    .entries
                    .iter()
                    .filter_map(|e| match &e.event {
                        AEvent::VhmCreated { vhm, name: n, .. } if n == name => Some(*vhm),
                        _ => None,
                    })
                    .collect();
                if let Some(id) = name.strip_prefix('v').and_then(|n| n.parse().ok()) {
                    ids.push(id);
                }
                ids
            });
            let mut rows = Vec::new();
            for (i, e) in v.entries.iter().enumerate() {
                if let Some(w) = &wanted {
                    if !e.vhms().iter().any(|x| w.contains(x)) {
                        continue;
                    }
                }
                if json {
                    rows.push(json!({"index": i, "time_ns": e.time_ns, "vhms": e.vhms(), "text": e.to_string()}));
                } else {
                    say!("#{i} {e}");
                }
            }
            if json {
                say!("{}", serde_json::Value::Array(rows));
            }
            Ok(ExitCode::SUCCESS)
        }
        AuditCmd::FromTrace {
            trace,
            out,
            keys: key_dir,
            checkpoint_every,
            json,
        } => {
            let bytes = log::read_file(&trace, TRACE_FILE_BYTES_MAX)?;
            let s = write_from_trace(&bytes, &out, &key_dir, checkpoint_every)?;
            if json {
                say!(
                    "{}",
                    json!({"entries": s.entries, "checkpoints": s.checkpoints, "root": hex(&s.root)})
                );
            } else {
                say!(
                    "{}: {} entries, {} checkpoints, root {}",
                    out.display(),
                    s.entries,
                    s.checkpoints,
                    hex(&s.root)
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// What [`write_from_trace`] wrote.
pub struct Written {
    /// Entries.
    pub entries: u64,
    /// Checkpoints (the seal included).
    pub checkpoints: u64,
    /// The final root.
    pub root: merkle::Hash,
}

/// Derives an audit log at `out` from the trace `bytes`, signing with the keys in `key_dir`.
pub fn write_from_trace(
    bytes: &[u8],
    out: &Path,
    key_dir: &Path,
    checkpoint_every: u64,
) -> Result<Written> {
    xdv_trace::verify_chain(bytes)
        .context("the trace does not verify; derive audit logs only from intact traces")?;
    let signer = load_signer(key_dir)?;
    let genesis = xdv_trace::read_genesis(bytes)?;
    let inputs = trace_inputs(bytes)?;
    let mut core = Core::new(genesis);
    let mut outcome = Outcome::default();
    let mut w = AuditWriter::create(out, signer, WriterOptions::default())?;
    let mut m = Mapper::default();
    let mut checkpoints = 0u64;
    let mut since = 0u64;
    let every = checkpoint_every.max(1);
    for raw in inputs {
        let input: Input = postcard::from_bytes(raw).context("an input record does not decode")?;
        core.apply(&input, &mut outcome);
        let t = core.now_ns();
        for e in m.entries(&input, &outcome, t) {
            w.append(&e)?;
            since += 1;
            if since >= every {
                w.checkpoint(t)?;
                checkpoints += 1;
                since = 0;
            }
        }
    }
    let entries = w.entries();
    let root = w.root();
    w.finish(core.now_ns())?;
    Ok(Written {
        entries,
        checkpoints: checkpoints + 1,
        root,
    })
}

/// The encoded inputs of a trace (format in `docs/trace-format.md`): header `XDVTRACE` ‖ version
/// u16 ‖ digest interval u32 ‖ genesis length u32 ‖ genesis ‖ chain hash; then records, tag 1
/// (`input length u32 ‖ outcome length u32 ‖ input ‖ outcome`) or tags 2 and 3 (41 bytes), each
/// followed by its 32-byte chain hash.
fn trace_inputs(b: &[u8]) -> Result<Vec<&[u8]>> {
    let u32_at = |p: usize| -> Result<usize> {
        let s = b
            .get(p..p + 4)
            .context("the trace ends inside a length field")?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]) as usize)
    };
    let glen = u32_at(14)?;
    let mut pos = 18 + glen + 32;
    let mut out = Vec::new();
    while pos < b.len() {
        match b[pos] {
            1 => {
                let il = u32_at(pos + 1)?;
                let ol = u32_at(pos + 5)?;
                let start = pos + 9;
                out.push(
                    b.get(start..start + il)
                        .context("the trace ends inside an input")?,
                );
                pos = start + il + ol + 32;
            }
            2 | 3 => pos += 41 + 32,
            t => bail!("unknown trace record tag {t} at byte {pos}"),
        }
    }
    Ok(out)
}

/// Turns the core's outcomes into audit entries, remembering what later events need (job
/// domains, channel ends, VHM names).
#[derive(Default)]
struct Mapper {
    jobs: HashMap<u64, (u32, xdv_core::Domain)>,
    channels: HashMap<u32, (u32, u32)>,
}

fn domain(d: xdv_core::Domain) -> Domain {
    match d {
        xdv_core::Domain::K => Domain::K,
        xdv_core::Domain::Q => Domain::Q,
        xdv_core::Domain::Phi => Domain::Phi,
    }
}

impl Mapper {
    fn entries(&mut self, input: &Input, out: &Outcome, time_ns: u64) -> Vec<Entry> {
        let mut v = Vec::new();
        let mut push = |event| v.push(Entry { time_ns, event });
        let (asker, command) = match input {
            Input::Command {
                principal, command, ..
            } => (
                match principal {
                    Principal::Vhm(id) => Some(id.0),
                    Principal::Operator => None,
                },
                Some(command),
            ),
            _ => (None, None),
        };
        if let Some(r) = &out.rejection {
            push(AEvent::Rejection {
                vhm: asker,
                rule: r.rule().to_string(),
                detail: truncate(r.to_string()),
            });
            return v;
        }
        for e in &out.events {
            match e {
                Event::VhmCreated { vhm, parent, .. } => {
                    let name = match command {
                        Some(Command::CreateVhm { spec })
                        | Some(Command::CreateNested { spec, .. }) => spec.name.clone(),
                        _ => format!("v{}", vhm.0),
                    };
                    push(AEvent::VhmCreated {
                        vhm: vhm.0,
                        parent: parent.map(|p| p.0),
                        name: truncate(name),
                    });
                }
                Event::VhmStopped { vhm, reason } => push(AEvent::VhmStopped {
                    vhm: vhm.0,
                    reason: format!("{reason:?}"),
                }),
                Event::Reserved {
                    vhm,
                    resource,
                    amount,
                    released,
                } => push(AEvent::Allocation {
                    vhm: vhm.0,
                    resource: resource.to_string(),
                    amount: *amount,
                    released: *released,
                }),
                Event::WindowReserved {
                    window,
                    vhm,
                    start_ns,
                    end_ns,
                } => push(AEvent::Allocation {
                    vhm: vhm.0,
                    resource: format!("coherence window w{} [{start_ns}, {end_ns}) ns", window.0),
                    amount: end_ns.saturating_sub(*start_ns),
                    released: false,
                }),
                Event::JobQueued {
                    job,
                    vhm,
                    domain: d,
                } => {
                    self.jobs.insert(job.0, (vhm.0, *d));
                    if *d != xdv_core::Domain::K {
                        push(AEvent::Transition {
                            vhm: vhm.0,
                            job: job.0,
                            from: Domain::K,
                            to: domain(*d),
                            detail: "submitted".into(),
                        });
                    }
                }
                Event::JobCompleted { job, status } => {
                    let detail = match status {
                        xdv_core::JobStatus::Ok => "ok".to_string(),
                        xdv_core::JobStatus::Failed(c) => format!("failed {c}"),
                    };
                    self.result(job.0, detail, &mut push);
                }
                Event::JobExpired { job } => self.result(job.0, "expired".into(), &mut push),
                Event::JobCancelled { job } => self.result(job.0, "cancelled".into(), &mut push),
                Event::ChannelOpened { channel, a, b, .. } => {
                    self.channels.insert(channel.0, (a.0, b.0));
                    push(AEvent::Ipc {
                        channel: channel.0,
                        from: a.0,
                        to: b.0,
                        kind: IpcKind::Opened,
                        bytes: 0,
                    });
                }
                Event::ChannelClosed { channel } => {
                    let (a, b) = self
                        .channels
                        .remove(&channel.0)
                        .unwrap_or((u32::MAX, u32::MAX));
                    push(AEvent::Ipc {
                        channel: channel.0,
                        from: a,
                        to: b,
                        kind: IpcKind::Closed,
                        bytes: 0,
                    });
                }
                Event::CapIssued {
                    cap,
                    parent,
                    holder,
                } => push(AEvent::Capability {
                    cap: cap.0,
                    kind: CapKind::Issued,
                    parent: Some(parent.0),
                    holder: match holder {
                        Principal::Operator => "operator".into(),
                        Principal::Vhm(v) => format!("v{}", v.0),
                    },
                }),
                Event::CapRevoked { cap } => push(AEvent::Capability {
                    cap: cap.0,
                    kind: CapKind::Revoked,
                    parent: None,
                    holder: String::new(),
                }),
                Event::TokenRevoked { token } => push(AEvent::TokenRevoked { token: token.0 }),
                Event::Denied { vhm, denial } => push(AEvent::Rejection {
                    vhm: vhm.map(|v| v.0),
                    rule: format!("token_{}", denial.reason.name()),
                    detail: truncate(format!(
                        "the boundary manager refused {} in {} (amount {}): token {}",
                        denial.operation.name(),
                        denial.domain,
                        denial.amount,
                        denial.reason.name()
                    )),
                }),
                Event::JobDispatched { .. }
                | Event::JobWaiting { .. }
                | Event::JobWoken { .. }
                | Event::WindowsShared { .. }
                | Event::Ticked { .. } => {}
            }
        }
        if let (Some(from), Some(Command::Send { channel, payload })) = (asker, command) {
            let to = match self.channels.get(&channel.0) {
                Some((a, b)) if *a == from => *b,
                Some((a, _)) => *a,
                None => u32::MAX,
            };
            push(AEvent::Ipc {
                channel: channel.0,
                from,
                to,
                kind: IpcKind::Message,
                bytes: payload.len() as u64,
            });
        }
        v
    }

    fn result(&mut self, job: u64, detail: String, push: &mut impl FnMut(AEvent)) {
        if let Some((vhm, d)) = self.jobs.remove(&job) {
            if d != xdv_core::Domain::K {
                push(AEvent::Transition {
                    vhm,
                    job,
                    from: domain(d),
                    to: Domain::K,
                    detail,
                });
            }
        }
    }
}

fn truncate(mut s: String) -> String {
    if s.len() > xdv_sdbm::entry::STRING_BYTES_MAX {
        let mut cut = xdv_sdbm::entry::STRING_BYTES_MAX;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
    s
}
