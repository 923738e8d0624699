//! `xdv token …`: mint capability tokens from a key directory, attenuate them offline, inspect,
//! verify a request against them and revoke them (format and semantics in `docs/tokens.md`).
//!
//! A token file is the token's URL-safe base64 text and a newline, mode 0600: a token is a
//! bearer credential. Minting needs the key directory's master secret; everything else needs
//! only its public `token-root.pub`. Minting and attenuating draw the key that seals the new
//! block from the operating system (the one other place XDV draws entropy, besides key
//! generation); nothing here reads a clock: `--time-ns` is the caller's logical time.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde_json::json;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use xdv_sdbm::keys;
use xdv_token::{
    Authority, Domain, Grant, Operation, Request, Restriction, RevocationSet, Subject, Token,
    Verifier,
};

use crate::audit::{TOKEN_PUBLIC_FILE, TOKEN_ROOT_LABEL};

/// Largest token or revocation list file read, bytes (a token's text is far smaller; the limit
/// only keeps a wrong path from being read whole).
const FILE_BYTES_MAX: u64 = 1 << 20;
/// The context label of blocks `xdv token attenuate` appends.
const ATTENUATE_CONTEXT: &str = "xdv token attenuate";

/// `xdv token` subcommands.
#[derive(Subcommand)]
pub enum TokenCmd {
    /// Mint a token with the key directory's token root key (needs its master secret).
    Mint {
        /// The key directory (`xdv keys generate DIR`).
        #[arg(long)]
        keys: PathBuf,
        /// Who the token is for: KIND:NAME, KIND one of vhm, nested-vhm, ipc-endpoint,
        /// api-client; NAME 1 to 64 bytes of [A-Za-z0-9_./-].
        #[arg(long, value_name = "KIND:NAME")]
        subject: String,
        /// The domains granted, comma-separated: k, q, phi.
        #[arg(long, value_delimiter = ',', required = true, num_args = 1..)]
        domains: Vec<String>,
        /// The operations granted in every granted domain, comma-separated: create, nest,
        /// reserve, submit, open, send, receive, terminate, read.
        #[arg(long, value_delimiter = ',', required = true, num_args = 1..)]
        operations: Vec<String>,
        /// Cap every request's amount, whatever its resource.
        #[arg(long, value_name = "N")]
        amount_max: Option<u64>,
        /// Cap the amount of requests for one resource (repeatable), e.g. `--max shots=1000`.
        #[arg(long = "max", value_name = "RESOURCE=N")]
        max: Vec<String>,
        /// Valid only at logical times strictly before this, ns.
        #[arg(long, value_name = "T")]
        expires_ns: Option<u64>,
        /// The token file to create (mode 0600; never overwritten).
        #[arg(long)]
        out: PathBuf,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Narrow a token offline: append a block of checks (it can only narrow).
    Attenuate {
        /// The token file.
        token: PathBuf,
        /// The key directory whose `token-root.pub` the token must verify against.
        #[arg(long)]
        root: PathBuf,
        /// Only these domains, comma-separated.
        #[arg(long, value_delimiter = ',', num_args = 1..)]
        domains: Option<Vec<String>>,
        /// Only these operations, comma-separated.
        #[arg(long, value_delimiter = ',', num_args = 1..)]
        operations: Option<Vec<String>>,
        /// Cap every request's amount.
        #[arg(long, value_name = "N")]
        amount_max: Option<u64>,
        /// Cap the amount of requests for one resource (repeatable).
        #[arg(long = "max", value_name = "RESOURCE=N")]
        max: Vec<String>,
        /// Valid only at logical times strictly before this, ns.
        #[arg(long, value_name = "T")]
        expires_ns: Option<u64>,
        /// The token file to create (mode 0600; never overwritten).
        #[arg(long)]
        out: PathBuf,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Show a token's subject and blocks (revocation id, Datalog) and whether its signature
    /// chain verifies (exit 1 when it does not).
    Inspect {
        /// The token file.
        token: PathBuf,
        /// The key directory whose `token-root.pub` the token is checked against.
        #[arg(long)]
        root: PathBuf,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Authorise one request: exit 0 when the token allows it, 1 when it is refused (the
    /// failing check is printed), 2 on a usage or file error.
    Verify {
        /// The token file.
        token: PathBuf,
        /// The key directory whose `token-root.pub` the token must verify against.
        #[arg(long)]
        root: PathBuf,
        /// The operation asked.
        #[arg(long)]
        operation: String,
        /// The domain asked: k, q or phi.
        #[arg(long)]
        domain: String,
        /// The resource the amount is counted in (`none` for a request without an amount).
        #[arg(long, default_value = xdv_token::RESOURCE_NONE)]
        resource: String,
        /// The amount asked, in the resource's unit.
        #[arg(long, default_value_t = 0)]
        amount: u64,
        /// The caller's logical time, ns.
        #[arg(long, default_value_t = 0)]
        time_ns: u64,
        /// A revocation list file (one hex revocation id a line).
        #[arg(long, value_name = "LIST")]
        revoked: Option<PathBuf>,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Add a block's revocation id to a revocation list file (created when missing). Block 0
    /// revokes the token and every token attenuated from it; block N only the tokens that carry
    /// that block.
    Revoke {
        /// The token file.
        token: PathBuf,
        /// The key directory whose `token-root.pub` the token must verify against.
        #[arg(long)]
        root: PathBuf,
        /// The block whose id is revoked.
        #[arg(long, default_value_t = 0)]
        block: usize,
        /// The revocation list file.
        #[arg(long, value_name = "LIST_FILE")]
        list: PathBuf,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `xdv token …`.
pub fn run(cmd: TokenCmd) -> Result<ExitCode> {
    match cmd {
        TokenCmd::Mint {
            keys: dir,
            subject,
            domains,
            operations,
            amount_max,
            max,
            expires_ns,
            out,
            json,
        } => {
            let (kind, name) = subject.split_once(':').with_context(|| {
                format!(
                    "--subject {subject:?} must be KIND:NAME, KIND one of {}",
                    Subject::KINDS.join(", ")
                )
            })?;
            let Some(subj) = Subject::new(kind, name) else {
                bail!(
                    "unknown subject kind {kind:?}; the kinds are {}",
                    Subject::KINDS.join(", ")
                );
            };
            let grant = Grant {
                domains: parse_domains(&domains)?,
                operations: parse_operations(&operations)?,
                amount_max,
                resources_max: parse_maxes(&max)?,
                expires_ns,
            };
            let authority = load_authority(&dir)?;
            let token = authority.mint(&subj, &grant, &fresh_seed()?)?;
            write_token(&out, &token)?;
            report_written("minted", &out, &token, json);
            Ok(ExitCode::SUCCESS)
        }
        TokenCmd::Attenuate {
            token: path,
            root,
            domains,
            operations,
            amount_max,
            max,
            expires_ns,
            out,
            json,
        } => {
            let restriction = Restriction {
                domains: domains.as_deref().map(parse_domains).transpose()?,
                operations: operations.as_deref().map(parse_operations).transpose()?,
                amount_max,
                resources_max: parse_maxes(&max)?,
                expires_ns,
            };
            let root_key = load_root(&root)?;
            let parent =
                Token::from_base64(&read_limited(&path)?, &root_key).with_context(|| {
                    format!(
                        "{} does not verify against {}",
                        path.display(),
                        root.join(TOKEN_PUBLIC_FILE).display()
                    )
                })?;
            let child = parent.attenuate(&restriction, ATTENUATE_CONTEXT, &fresh_seed()?)?;
            write_token(&out, &child)?;
            report_written("attenuated", &out, &child, json);
            Ok(ExitCode::SUCCESS)
        }
        TokenCmd::Inspect {
            token: path,
            root,
            json,
        } => {
            let root_key = load_root(&root)?;
            let text = read_limited(&path)?;
            match Token::from_base64(&text, &root_key) {
                Ok(t) => {
                    let views = t.block_views();
                    let subject = t.subject();
                    if json {
                        say!(
                            "{}",
                            json!({
                                "verified": true,
                                "subject": subject.map(|(k, n)| json!({"kind": k, "name": n})),
                                "block_count": views.len(),
                                "blocks": blocks_json(&views),
                            })
                        );
                    } else {
                        say!(
                            "{}: signature chain verifies against {}",
                            path.display(),
                            root.join(TOKEN_PUBLIC_FILE).display()
                        );
                        match subject {
                            Some((k, n)) => say!("  subject {k} {n:?}"),
                            None => say!("  subject: none (the authority block names none)"),
                        }
                        print_blocks(&views);
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("xdv token inspect: {}: {e}", path.display());
                    // Show what the file claims, marked as unverified.
                    let views = xdv_token::inspect_unverified(&text).ok();
                    if json {
                        say!(
                            "{}",
                            json!({
                                "verified": false, "reason": e.reason(), "error": e.to_string(),
                                "block_count": views.as_ref().map(Vec::len),
                                "blocks": views.as_deref().map(blocks_json),
                            })
                        );
                    } else {
                        say!(
                            "{}: signature chain does NOT verify against {}: {e}",
                            path.display(),
                            root.join(TOKEN_PUBLIC_FILE).display()
                        );
                        if let Some(v) = &views {
                            say!("  UNVERIFIED content (trust none of it):");
                            print_blocks(v);
                        }
                    }
                    Ok(ExitCode::from(1))
                }
            }
        }
        TokenCmd::Verify {
            token: path,
            root,
            operation,
            domain,
            resource,
            amount,
            time_ns,
            revoked,
            json,
        } => {
            let req = Request {
                operation: parse_operations(&[operation])?[0],
                domain: parse_domains(&[domain])?[0],
                resource: xdv_token::resource(&resource)?,
                amount,
                time_ns,
            };
            let root_key = load_root(&root)?;
            let revoked = match &revoked {
                Some(p) => load_list(p)?,
                None => RevocationSet::default(),
            };
            let text = read_limited(&path)?;
            let verdict = Token::from_base64(&text, &root_key).and_then(|t| {
                Verifier::new(&root_key)?
                    .authorize(&t, &req, &revoked)
                    .map(|a| (t, a))
            });
            match verdict {
                Ok((t, a)) => {
                    let subject = t.subject();
                    if json {
                        say!(
                            "{}",
                            json!({
                                "authorized": true, "blocks": a.blocks,
                                "subject": subject.map(|(k, n)| json!({"kind": k, "name": n})),
                            })
                        );
                    } else {
                        say!(
                            "{}: authorised: {} in {} ({} {} at logical time {} ns) for {} ({} blocks)",
                            path.display(),
                            req.operation.name(),
                            req.domain.name(),
                            req.amount,
                            req.resource,
                            req.time_ns,
                            subject.map_or("no subject".into(), |(k, n)| format!("{k} {n:?}")),
                            a.blocks
                        );
                    }
                    Ok(ExitCode::SUCCESS)
                }
                // A request XDV cannot express (an amount or time beyond Datalog's integers)
                // is a usage error, not a refusal.
                Err(e) if e.reason() == "invalid" => Err(e.into()),
                Err(e) => {
                    eprintln!("xdv token verify: {}: refused: {e}", path.display());
                    if json {
                        say!(
                            "{}",
                            json!({"authorized": false, "reason": e.reason(), "error": e.to_string()})
                        );
                    }
                    Ok(ExitCode::from(1))
                }
            }
        }
        TokenCmd::Revoke {
            token: path,
            root,
            block,
            list,
            json,
        } => {
            let root_key = load_root(&root)?;
            let t = Token::from_base64(&read_limited(&path)?, &root_key).with_context(|| {
                format!(
                    "{} does not verify against {}; only this root's tokens can be revoked here",
                    path.display(),
                    root.join(TOKEN_PUBLIC_FILE).display()
                )
            })?;
            let ids = t.revocation_ids();
            let Some(id) = ids.get(block) else {
                bail!(
                    "--block {block}: {} has {} blocks (0..={})",
                    path.display(),
                    ids.len(),
                    ids.len() - 1
                );
            };
            let (mut set, existing) = if list.exists() {
                let text = read_limited(&list)?;
                (parse_list(&list, &text)?, Some(text))
            } else {
                (RevocationSet::default(), None)
            };
            let new = set.revoke(id);
            if new {
                append_id(&list, id, existing.as_deref())?;
            }
            if json {
                say!(
                    "{}",
                    json!({
                        "list": list.display().to_string(), "block": block, "revocation_id": id,
                        "newly_revoked": new, "revoked_count": set.len(),
                    })
                );
            } else {
                say!(
                    "{}: block {block} of {} (revocation id {id}) {}; {} id{} in the list",
                    list.display(),
                    path.display(),
                    if new {
                        "revoked"
                    } else {
                        "was already revoked"
                    },
                    set.len(),
                    if set.len() == 1 { "" } else { "s" }
                );
                if block == 0 {
                    say!("  the token and every token attenuated from it are revoked");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn parse_domains(names: &[String]) -> Result<Vec<Domain>> {
    let mut out = Vec::new();
    for n in names {
        let d = Domain::from_name(n.trim()).with_context(|| {
            let all: Vec<_> = Domain::ALL.iter().map(|d| d.name()).collect();
            format!("unknown domain {n:?}; the domains are {}", all.join(", "))
        })?;
        if !out.contains(&d) {
            out.push(d);
        }
    }
    Ok(out)
}

fn parse_operations(names: &[String]) -> Result<Vec<Operation>> {
    let mut out = Vec::new();
    for n in names {
        let o = Operation::from_name(n.trim()).with_context(|| {
            let all: Vec<_> = Operation::ALL.iter().map(|o| o.name()).collect();
            format!(
                "unknown operation {n:?}; the operations are {}",
                all.join(", ")
            )
        })?;
        if !out.contains(&o) {
            out.push(o);
        }
    }
    Ok(out)
}

/// `RESOURCE=N` pairs, the resource checked against the token crate's list.
fn parse_maxes(items: &[String]) -> Result<Vec<(String, u64)>> {
    items
        .iter()
        .map(|item| {
            let (r, n) = item
                .split_once('=')
                .with_context(|| format!("--max {item:?} must be RESOURCE=N"))?;
            let r = xdv_token::resource(r.trim())?;
            let n = n
                .trim()
                .parse::<u64>()
                .with_context(|| format!("--max {item:?}: {n:?} is not a non-negative integer"))?;
            Ok((r.to_string(), n))
        })
        .collect()
}

/// 32 fresh bytes from the operating system: the key that seals a new block.
fn fresh_seed() -> Result<[u8; 32]> {
    let mut s = [0u8; 32];
    getrandom::fill(&mut s).map_err(|e| anyhow::anyhow!("no entropy: {e}"))?;
    Ok(s)
}

/// The token authority of a key directory (its master secret, which must be mode 0600), checked
/// against the directory's `token-root.pub` when that file exists.
fn load_authority(dir: &Path) -> Result<Authority> {
    let master = keys::read_secret(&dir.join(keys::MASTER_FILE))?;
    let a = Authority::from_secret(&keys::derive_key(&master, TOKEN_ROOT_LABEL))?;
    if dir.join(TOKEN_PUBLIC_FILE).exists() && load_root(dir)? != a.public_key() {
        bail!(
            "{} does not match the token root key derived from {}; the key directory is inconsistent",
            dir.join(TOKEN_PUBLIC_FILE).display(),
            dir.join(keys::MASTER_FILE).display()
        );
    }
    Ok(a)
}

/// The operator's 32-byte token root public key, read from `DIR/token-root.pub` (hex; a key
/// directory made by `xdv keys generate`).
pub fn load_root(dir: &Path) -> Result<Vec<u8>> {
    let path = dir.join(TOKEN_PUBLIC_FILE);
    let text = read_limited(&path)?;
    match xdv_sdbm::unhex(&text) {
        Some(k) if k.len() == 32 => Ok(k),
        _ => bail!(
            "{}: not a token root public key (64 hex digits); it is written by `xdv keys generate`",
            path.display()
        ),
    }
}

fn read_limited(path: &Path) -> Result<String> {
    let f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut bytes = Vec::new();
    f.take(FILE_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > FILE_BYTES_MAX {
        bail!(
            "{} is over {FILE_BYTES_MAX} bytes; it is not a token, key or revocation list file",
            path.display()
        );
    }
    // Invalid UTF-8 is left to the parsers to refuse (it is not base64 or hex either).
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn parse_list(path: &Path, text: &str) -> Result<RevocationSet> {
    RevocationSet::from_text(text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

fn load_list(path: &Path) -> Result<RevocationSet> {
    parse_list(path, &read_limited(path)?)
}

/// Creates `path` (mode 0600, never overwriting) holding the token's text and a newline.
fn write_token(path: &Path, t: &Token) -> Result<()> {
    let text = t.to_base64()?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        opts.mode(0o600);
    }
    let mut f = opts.open(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists {
            anyhow::anyhow!(
                "{} exists; token files are never overwritten (choose another --out or remove it)",
                path.display()
            )
        } else {
            anyhow::anyhow!("cannot create {}: {e}", path.display())
        }
    })?;
    f.write_all(format!("{text}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

/// Appends `id` as a line to the list at `path` (created when missing), after a newline when the
/// existing text does not end with one.
fn append_id(path: &Path, id: &str, existing: Option<&str>) -> Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    let sep = match existing {
        Some(t) if !t.is_empty() && !t.ends_with('\n') => "\n",
        _ => "",
    };
    f.write_all(format!("{sep}{id}\n").as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot write {}", path.display()))
}

fn report_written(what: &str, out: &Path, t: &Token, json: bool) {
    let ids = t.revocation_ids();
    let subject = t.subject();
    if json {
        say!(
            "{}",
            json!({
                "out": out.display().to_string(),
                "subject": subject.map(|(k, n)| json!({"kind": k, "name": n})),
                "blocks": t.blocks(), "revocation_ids": ids,
            })
        );
    } else {
        say!(
            "{}: {what} token for {} ({} block{}, mode 0600)",
            out.display(),
            subject.map_or("no subject".into(), |(k, n)| format!("{k} {n:?}")),
            t.blocks(),
            if t.blocks() == 1 { "" } else { "s" }
        );
        for (i, id) in ids.iter().enumerate() {
            say!("  block {i} revocation id {id}");
        }
    }
}

fn blocks_json(views: &[xdv_token::BlockView]) -> serde_json::Value {
    views
        .iter()
        .enumerate()
        .map(|(i, b)| {
            json!({
                "index": i, "revocation_id": b.revocation_id, "context": b.context,
                "datalog": b.source,
            })
        })
        .collect()
}

fn print_blocks(views: &[xdv_token::BlockView]) {
    say!(
        "  {} block{}",
        views.len(),
        if views.len() == 1 { "" } else { "s" }
    );
    for (i, b) in views.iter().enumerate() {
        match &b.context {
            Some(c) => say!("  block {i} ({c:?}), revocation id {}", b.revocation_id),
            None => say!("  block {i}, revocation id {}", b.revocation_id),
        }
        for line in b.source.lines() {
            say!("    {line}");
        }
    }
}
