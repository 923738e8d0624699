//! XDV's capability tokens: biscuit-auth 6 tokens signed by an operator root key, attenuated
//! offline, verified at every boundary with the request's facts, revocable by revocation id.
//!
//! A token's authority block (minted by the operator) holds the subject and its rights:
//!
//! ```text
//! subject("vhm", "tenant-a");            // or "nested-vhm", "ipc-endpoint", "api-client"
//! right("q", "submit"); right("k", "send"); …
//! check if amount($a), $a <= 1000;       // when the grant caps every amount
//! check if resource($r), $r != "shots" or amount($a), $a <= 4096;   // a cap on one resource
//! check if time_ns($t), $t < 5000000;    // when the grant expires (logical time)
//! ```
//!
//! Attenuation appends a block of checks only (domains, operations, amounts, per-resource caps,
//! expiry), so a child token can never do more than its parent: biscuit's verifier runs every
//! block's checks, and the allow policy trusts only the authority block and the verifier's own
//! facts, so a fact or rule an appended block declares grants nothing.
//!
//! The verifier supplies the request as facts: `operation(op)`, `domain(d)`, `resource(r)`,
//! `amount(n)`, `time_ns(t)`, with `r` one of [`RESOURCES`] (the unit `n` is counted in) and `t`
//! the caller's logical time; nothing here reads a clock for its decisions.
//! (biscuit's own run limit `max_time` is a wall-clock safety ceiling set far above what the
//! fact and iteration limits allow; it is never what decides.)
//!
//! This crate is kept apart from the rest of XDV because biscuit pins its own ed25519 stack.

use biscuit_auth::builder::{fact, int, string, BlockBuilder};
use biscuit_auth::error::{FailedCheck, Logic, Token as BiscuitError};
use biscuit_auth::{AuthorizerLimits, Biscuit, KeyPair, PrivateKey, PublicKey};
use std::collections::BTreeSet;
use std::fmt;

/// Largest serialised token accepted, bytes.
pub const TOKEN_BYTES_MAX: usize = 16 * 1024;
/// Most blocks (authority included) a token may have.
pub const BLOCKS_MAX: usize = 32;
/// Most facts the verifier's Datalog world may hold.
pub const FACTS_MAX: u64 = 1000;
/// Most rule iterations the verifier runs.
pub const ITERATIONS_MAX: u64 = 100;
/// Longest subject name, bytes.
pub const NAME_BYTES_MAX: usize = 64;
/// Longest base64 text of a token accepted ([`TOKEN_BYTES_MAX`] bytes, padded base64).
pub const TOKEN_TEXT_BYTES_MAX: usize = TOKEN_BYTES_MAX.div_ceil(3) * 4;

/// The resource of a request that has no amount (its amount is 0).
pub const RESOURCE_NONE: &str = "none";

/// Every resource a request may name, in the unit its amount counts: the core's resources
/// (K: `fuel_units`, `vcpu_slots`, `memory_bytes`; Q: `logical_qubits`, `shots`,
/// `error_budget_ppm`; Φ: `phi_modes`, `wavelength_channels`, `coherence_window_ns`,
/// `thermal_budget_mw`, `optical_bandwidth_mhz`), `message_bytes` (one IPC message),
/// `messages_max` (a channel's buffer, in messages) and [`RESOURCE_NONE`]. Only these names are
/// ever formatted into a check; any other is [`TokenError::UnknownResource`].
pub const RESOURCES: [&str; 14] = [
    "fuel_units",
    "vcpu_slots",
    "memory_bytes",
    "logical_qubits",
    "shots",
    "error_budget_ppm",
    "phi_modes",
    "wavelength_channels",
    "coherence_window_ns",
    "thermal_budget_mw",
    "optical_bandwidth_mhz",
    "message_bytes",
    "messages_max",
    RESOURCE_NONE,
];

/// The canonical name of the resource `name` (one of [`RESOURCES`]), or
/// [`TokenError::UnknownResource`].
pub fn resource(name: &str) -> Result<&'static str, TokenError> {
    RESOURCES
        .iter()
        .copied()
        .find(|r| *r == name)
        .ok_or_else(|| TokenError::UnknownResource(shorten(name)))
}

/// At most 64 bytes of untrusted text for an error message (cut at a character boundary).
fn shorten(text: &str) -> String {
    let mut cut = text.len().min(64);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    text[..cut].to_string()
}

/// A computing domain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Domain {
    /// Classical (WebAssembly guests).
    K,
    /// Quantum (circuits).
    Q,
    /// Phase (coherent light).
    Phi,
}

impl Domain {
    /// Every domain.
    pub const ALL: [Domain; 3] = [Domain::K, Domain::Q, Domain::Phi];

    /// Its name in tokens.
    pub fn name(self) -> &'static str {
        match self {
            Domain::K => "k",
            Domain::Q => "q",
            Domain::Phi => "phi",
        }
    }

    /// The domain named `name` ([`Domain::name`]).
    pub fn from_name(name: &str) -> Option<Domain> {
        Domain::ALL.into_iter().find(|d| d.name() == name)
    }
}

/// An operation a token may allow: one per boundary crossing XDV checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Operation {
    /// Create a VHM.
    Create,
    /// Create a nested VHM.
    Nest,
    /// Reserve an amount of a resource.
    Reserve,
    /// Submit a job.
    Submit,
    /// Open an IPC channel.
    Open,
    /// Send on an IPC channel.
    Send,
    /// Receive on an IPC channel.
    Receive,
    /// Terminate a VHM.
    Terminate,
    /// Read state (tables, traces, audit).
    Read,
}

impl Operation {
    /// Every operation.
    pub const ALL: [Operation; 9] = [
        Operation::Create,
        Operation::Nest,
        Operation::Reserve,
        Operation::Submit,
        Operation::Open,
        Operation::Send,
        Operation::Receive,
        Operation::Terminate,
        Operation::Read,
    ];

    /// Its name in tokens.
    pub fn name(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Nest => "nest",
            Operation::Reserve => "reserve",
            Operation::Submit => "submit",
            Operation::Open => "open",
            Operation::Send => "send",
            Operation::Receive => "receive",
            Operation::Terminate => "terminate",
            Operation::Read => "read",
        }
    }

    /// The operation named `name` ([`Operation::name`]).
    pub fn from_name(name: &str) -> Option<Operation> {
        Operation::ALL.into_iter().find(|o| o.name() == name)
    }
}

/// Who a token is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Subject {
    /// A root VHM.
    Vhm(String),
    /// A nested VHM, named by its path (`parent/child`).
    NestedVhm(String),
    /// One end of an IPC channel.
    IpcEndpoint(String),
    /// A client of the (future) API.
    ApiClient(String),
}

impl Subject {
    /// Every subject kind, as [`Subject::kind`] names it.
    pub const KINDS: [&'static str; 4] = ["vhm", "nested-vhm", "ipc-endpoint", "api-client"];

    /// The subject of kind `kind` (one of [`Subject::KINDS`]) named `name`; `None` for an
    /// unknown kind (the name is checked when minting).
    pub fn new(kind: &str, name: &str) -> Option<Subject> {
        let name = name.to_string();
        Some(match kind {
            "vhm" => Subject::Vhm(name),
            "nested-vhm" => Subject::NestedVhm(name),
            "ipc-endpoint" => Subject::IpcEndpoint(name),
            "api-client" => Subject::ApiClient(name),
            _ => return None,
        })
    }

    /// Its kind in tokens: `vhm`, `nested-vhm`, `ipc-endpoint` or `api-client`.
    pub fn kind(&self) -> &'static str {
        match self {
            Subject::Vhm(_) => "vhm",
            Subject::NestedVhm(_) => "nested-vhm",
            Subject::IpcEndpoint(_) => "ipc-endpoint",
            Subject::ApiClient(_) => "api-client",
        }
    }
    /// Its name.
    pub fn name(&self) -> &str {
        match self {
            Subject::Vhm(n)
            | Subject::NestedVhm(n)
            | Subject::IpcEndpoint(n)
            | Subject::ApiClient(n) => n,
        }
    }
}

/// What a restriction (or a grant) limits; `None`, or an empty `resources_max`, leaves that
/// dimension as the parent had it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Restriction {
    /// Only these domains.
    pub domains: Option<Vec<Domain>>,
    /// Only these operations.
    pub operations: Option<Vec<Operation>>,
    /// Amounts at most this, whatever the resource.
    pub amount_max: Option<u64>,
    /// Per-resource caps: `(resource, max)` limits the amount of requests naming that resource
    /// (one of [`RESOURCES`]) to `max`; other resources are not limited by it.
    pub resources_max: Vec<(String, u64)>,
    /// Valid only at logical times strictly before this, ns.
    pub expires_ns: Option<u64>,
}

/// What a freshly minted token allows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Grant {
    /// The domains.
    pub domains: Vec<Domain>,
    /// The operations, in every granted domain.
    pub operations: Vec<Operation>,
    /// Amounts at most this, whatever the resource.
    pub amount_max: Option<u64>,
    /// Per-resource caps: `(resource, max)` limits the amount of requests naming that resource
    /// (one of [`RESOURCES`]) to `max`.
    pub resources_max: Vec<(String, u64)>,
    /// Valid only at logical times strictly before this, ns.
    pub expires_ns: Option<u64>,
}

/// One request at a boundary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Request {
    /// What is asked.
    pub operation: Operation,
    /// In which domain.
    pub domain: Domain,
    /// The resource the amount is counted in: one of [`RESOURCES`] ([`RESOURCE_NONE`] when the
    /// operation has no amount). Any other name is refused with [`TokenError::UnknownResource`].
    pub resource: &'static str,
    /// How much, in `resource`'s unit (0 when the operation has no amount).
    pub amount: u64,
    /// The caller's logical time, ns.
    pub time_ns: u64,
}

/// Why a token was refused or could not be made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Too large to parse.
    #[error("the token is {len} bytes; at most {TOKEN_BYTES_MAX} are accepted")]
    TooLarge {
        /// Its length.
        len: usize,
    },
    /// Too many blocks.
    #[error("the token has {blocks} blocks; at most {BLOCKS_MAX} are accepted (re-mint instead of attenuating further)")]
    TooManyBlocks {
        /// Its block count.
        blocks: usize,
    },
    /// Not signed by the operator root key, altered, or not a token at all.
    #[error("forged or corrupt token: {detail}; only tokens minted with this operator's root key (and attenuated from them) are accepted")]
    Forged {
        /// What biscuit found.
        detail: String,
    },
    /// A block of the token was revoked.
    #[error("the token is revoked: block {block} has revocation id {id}")]
    Revoked {
        /// The block.
        block: usize,
        /// Its revocation id (hex).
        id: String,
    },
    /// The token expired at the request's logical time.
    #[error("the token expired: check {check} of block {block} failed at logical time {time_ns} ns: `{rule}`")]
    Expired {
        /// The block holding the check.
        block: u32,
        /// The check's index.
        check: u32,
        /// The check's source.
        rule: String,
        /// The request's time.
        time_ns: u64,
    },
    /// A check (restriction) failed.
    #[error(
        "check {check} of block {block} failed: `{rule}`; the token does not allow this request"
    )]
    CheckFailed {
        /// The block holding the check.
        block: u32,
        /// The check's index.
        check: u32,
        /// The check's source.
        rule: String,
    },
    /// The verifier's own check failed.
    #[error("the verifier's check {check} failed: `{rule}`")]
    VerifierCheckFailed {
        /// The check's index.
        check: u32,
        /// The check's source.
        rule: String,
    },
    /// No right covers the request.
    #[error("insufficient rights: the token grants no right(\"{domain}\", \"{operation}\")")]
    Insufficient {
        /// The operation asked.
        operation: &'static str,
        /// The domain asked.
        domain: &'static str,
    },
    /// A subject name is unusable.
    #[error("subject name {0:?} must be 1..={NAME_BYTES_MAX} bytes of [A-Za-z0-9_./-]")]
    BadName(String),
    /// An amount or time does not fit Datalog's signed 64-bit integers.
    #[error("{what} {value} exceeds {max}, the largest integer a token can hold", max = i64::MAX)]
    OutOfRange {
        /// What.
        what: &'static str,
        /// The value.
        value: u64,
    },
    /// A resource name that is not one of [`RESOURCES`] (at most 64 bytes of it).
    #[error("unknown resource {0:?}; the resources are {list}", list = RESOURCES.join(", "))]
    UnknownResource(String),
    /// A restriction restricts nothing.
    #[error("the restriction is empty; name at least one of domains, operations, amount_max, resources_max, expires_ns")]
    EmptyRestriction,
    /// Another biscuit error (a run limit, an encoding failure).
    #[error("token processing failed: {0}")]
    Other(String),
}

impl TokenError {
    /// A short name for the kind of failure. A refused request gives the name of the core's
    /// `DenyReason` (and of the audit rule `token_<reason>`): `forged` (unparsable, too large,
    /// too many blocks, bad signature), `revoked`, `expired` or `insufficient` (a failed check or
    /// no right); a request or restriction that cannot be expressed (an unknown resource, a bad
    /// subject name, an integer out of range, an empty restriction) gives `invalid`; any other
    /// failure (a run limit, an encoding error) `error`.
    pub fn reason(&self) -> &'static str {
        match self {
            TokenError::TooLarge { .. }
            | TokenError::TooManyBlocks { .. }
            | TokenError::Forged { .. } => "forged",
            TokenError::Revoked { .. } => "revoked",
            TokenError::Expired { .. } => "expired",
            TokenError::CheckFailed { .. }
            | TokenError::VerifierCheckFailed { .. }
            | TokenError::Insufficient { .. } => "insufficient",
            TokenError::BadName(_)
            | TokenError::OutOfRange { .. }
            | TokenError::UnknownResource(_)
            | TokenError::EmptyRestriction => "invalid",
            TokenError::Other(_) => "error",
        }
    }
}

fn other(e: BiscuitError) -> TokenError {
    TokenError::Other(e.to_string())
}

fn to_i64(what: &'static str, value: u64) -> Result<i64, TokenError> {
    i64::try_from(value).map_err(|_| TokenError::OutOfRange { what, value })
}

fn root_key(root: &[u8]) -> Result<PublicKey, TokenError> {
    PublicKey::from_bytes(root, biscuit_auth::Algorithm::Ed25519).map_err(|e| TokenError::Forged {
        detail: format!("the root public key is unusable ({e})"),
    })
}

fn key_pair(seed: &[u8; 32]) -> Result<KeyPair, TokenError> {
    let sk = PrivateKey::from_bytes(seed, biscuit_auth::Algorithm::Ed25519)
        .map_err(|e| TokenError::Other(e.to_string()))?;
    Ok(KeyPair::from(&sk))
}

/// `check if time_ns($t), $t < N` etc. as Datalog source; only enum names and integers appear,
/// never user text.
fn checks(r: &Restriction) -> Result<Vec<String>, TokenError> {
    let mut out = Vec::new();
    if let Some(ds) = &r.domains {
        let alts: Vec<String> = ds
            .iter()
            .map(|d| format!("domain(\"{}\")", d.name()))
            .collect();
        out.push(if alts.is_empty() {
            "check if false".to_string()
        } else {
            format!("check if {}", alts.join(" or "))
        });
    }
    if let Some(os) = &r.operations {
        let alts: Vec<String> = os
            .iter()
            .map(|o| format!("operation(\"{}\")", o.name()))
            .collect();
        out.push(if alts.is_empty() {
            "check if false".to_string()
        } else {
            format!("check if {}", alts.join(" or "))
        });
    }
    if let Some(a) = r.amount_max {
        out.push(format!(
            "check if amount($a), $a <= {}",
            to_i64("amount_max", a)?
        ));
    }
    for (name, max) in &r.resources_max {
        // The name formatted into the source is the list's own string, never the caller's.
        let name = resource(name)?;
        out.push(format!(
            "check if resource($r), $r != \"{name}\" or amount($a), $a <= {}",
            to_i64("resources_max", *max)?
        ));
    }
    if let Some(t) = r.expires_ns {
        out.push(format!(
            "check if time_ns($t), $t < {}",
            to_i64("expires_ns", t)?
        ));
    }
    Ok(out)
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= NAME_BYTES_MAX
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_./-".contains(&b))
}

/// The operator's root key: mints tokens.
pub struct Authority {
    root: KeyPair,
}

impl Authority {
    /// The authority whose Ed25519 root private key is `secret` (derive it with HKDF from the
    /// node's master secret; never use raw entropy twice).
    pub fn from_secret(secret: &[u8; 32]) -> Result<Authority, TokenError> {
        Ok(Authority {
            root: key_pair(secret)?,
        })
    }

    /// The root public key (32 bytes) that verifiers need.
    pub fn public_key(&self) -> Vec<u8> {
        self.root.public().to_bytes()
    }

    /// The verifier for this authority's tokens.
    pub fn verifier(&self) -> Verifier {
        Verifier {
            root: self.root.public(),
        }
    }

    /// Mints a token for `subject` with `grant`. `next_key_seed` (32 fresh secret bytes) becomes
    /// the key that seals the token's last block; the caller draws it.
    pub fn mint(
        &self,
        subject: &Subject,
        grant: &Grant,
        next_key_seed: &[u8; 32],
    ) -> Result<Token, TokenError> {
        if !valid_name(subject.name()) {
            return Err(TokenError::BadName(subject.name().to_string()));
        }
        let mut b = Biscuit::builder()
            .fact(fact(
                "subject",
                &[string(subject.kind()), string(subject.name())],
            ))
            .map_err(other)?;
        for d in &grant.domains {
            for o in &grant.operations {
                b = b
                    .fact(fact("right", &[string(d.name()), string(o.name())]))
                    .map_err(other)?;
            }
        }
        let r = Restriction {
            domains: None,
            operations: None,
            amount_max: grant.amount_max,
            resources_max: grant.resources_max.clone(),
            expires_ns: grant.expires_ns,
        };
        for c in checks(&r)? {
            b = b.code(c).map_err(other)?;
        }
        let next = key_pair(next_key_seed)?;
        let t = b
            .build_with_key_pair(
                &self.root,
                biscuit_auth::datalog::SymbolTable::default(),
                &next,
            )
            .map_err(other)?;
        Ok(Token(t))
    }
}

/// A verified-signature token (parsed against a root key).
#[derive(Clone)]
pub struct Token(Biscuit);

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Token({} blocks)", self.0.block_count())
    }
}

impl Token {
    /// Parses and checks every block's signature against `root` (32-byte Ed25519 public key).
    pub fn from_bytes(bytes: &[u8], root: &[u8]) -> Result<Token, TokenError> {
        if bytes.len() > TOKEN_BYTES_MAX {
            return Err(TokenError::TooLarge { len: bytes.len() });
        }
        let root = root_key(root)?;
        let t = Biscuit::from(bytes, root).map_err(|e| TokenError::Forged {
            detail: e.to_string(),
        })?;
        Token::checked(t)
    }

    fn checked(t: Biscuit) -> Result<Token, TokenError> {
        if t.block_count() > BLOCKS_MAX {
            return Err(TokenError::TooManyBlocks {
                blocks: t.block_count(),
            });
        }
        Ok(Token(t))
    }

    /// The serialised token.
    pub fn to_bytes(&self) -> Result<Vec<u8>, TokenError> {
        self.0.to_vec().map_err(other)
    }

    /// The token as text: biscuit's URL-safe base64 of [`Token::to_bytes`] (what token files
    /// hold).
    pub fn to_base64(&self) -> Result<String, TokenError> {
        self.0.to_base64().map_err(other)
    }

    /// Parses the text [`Token::to_base64`] gives (surrounding whitespace, such as a file's last
    /// newline, is ignored) and checks every block's signature against `root` (32-byte Ed25519
    /// public key), as [`Token::from_bytes`] does.
    pub fn from_base64(text: &str, root: &[u8]) -> Result<Token, TokenError> {
        let text = token_text(text)?;
        let root = root_key(root)?;
        let t = Biscuit::from_base64(text, root).map_err(|e| TokenError::Forged {
            detail: e.to_string(),
        })?;
        Token::checked(t)
    }

    /// The subject `(kind, name)` the authority block names (`("vhm", "tenant-a")`), or `None`
    /// when it does not name exactly one. Only the authority block is read: a `subject` fact an
    /// appended block declares is ignored.
    pub fn subject(&self) -> Option<(String, String)> {
        let mut a = biscuit_auth::AuthorizerBuilder::new()
            .set_limits(limits())
            .build(&self.0)
            .ok()?;
        let mut found: Vec<(String, String)> = a.query("s($k, $n) <- subject($k, $n)").ok()?;
        if found.len() == 1 {
            found.pop()
        } else {
            None
        }
    }

    /// True when `parent`'s blocks are a prefix of this token's (their revocation ids, which are
    /// the blocks' signatures, are equal): this token is `parent` or was attenuated from it.
    pub fn extends(&self, parent: &Token) -> bool {
        let (mine, theirs) = (
            self.0.revocation_identifiers(),
            parent.0.revocation_identifiers(),
        );
        theirs.len() <= mine.len() && mine.iter().zip(&theirs).all(|(a, b)| a == b)
    }

    /// Every block, authority block first, as [`BlockView`]s.
    pub fn block_views(&self) -> Vec<BlockView> {
        let contexts = self.0.context();
        self.revocation_ids()
            .into_iter()
            .enumerate()
            .map(|(i, revocation_id)| BlockView {
                revocation_id,
                context: contexts.get(i).cloned().flatten(),
                source: self
                    .0
                    .print_block_source(i)
                    .unwrap_or_else(|e| format!("// unprintable: {e}")),
            })
            .collect()
    }

    /// Blocks, the authority block included.
    pub fn blocks(&self) -> usize {
        self.0.block_count()
    }

    /// Each block's revocation id (hex), authority block first. Revoking a block's id revokes
    /// every token attenuated from it.
    pub fn revocation_ids(&self) -> Vec<String> {
        self.0
            .revocation_identifiers()
            .iter()
            .map(|id| hex(id))
            .collect()
    }

    /// A child token: this one plus a block of `restriction`'s checks (offline; no key but the
    /// token itself is needed). `context` labels the block (e.g. the nested VHM's path);
    /// `next_key_seed` (32 fresh secret bytes) seals it.
    pub fn attenuate(
        &self,
        restriction: &Restriction,
        context: &str,
        next_key_seed: &[u8; 32],
    ) -> Result<Token, TokenError> {
        let cs = checks(restriction)?;
        if cs.is_empty() {
            return Err(TokenError::EmptyRestriction);
        }
        if self.0.block_count() >= BLOCKS_MAX {
            return Err(TokenError::TooManyBlocks {
                blocks: self.0.block_count() + 1,
            });
        }
        let mut b = BlockBuilder::new().context(context.to_string());
        for c in cs {
            b = b.code(c).map_err(other)?;
        }
        let kp = key_pair(next_key_seed)?;
        Ok(Token(self.0.append_with_keypair(&kp, b).map_err(other)?))
    }

    /// The Datalog of every block, for humans.
    pub fn print(&self) -> String {
        self.0.print()
    }

    /// The underlying biscuit (for tests that build hostile blocks).
    pub fn biscuit(&self) -> &Biscuit {
        &self.0
    }

    /// Wraps a biscuit.
    pub fn from_biscuit(b: Biscuit) -> Token {
        Token(b)
    }
}

/// One block of a token, for people (`xdv token inspect`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockView {
    /// Its revocation id (hex).
    pub revocation_id: String,
    /// The free-text context the block was labelled with when attenuated (only known for a
    /// token whose signatures verified).
    pub context: Option<String>,
    /// Its facts, rules and checks as Datalog source.
    pub source: String,
}

/// Reads the blocks of the token text `text` WITHOUT checking any signature, so that a token that
/// does not verify can still be shown. Nothing read this way may be trusted or authorised; use
/// [`Token::from_base64`] for that. The size limits of [`Token::from_bytes`] apply.
pub fn inspect_unverified(text: &str) -> Result<Vec<BlockView>, TokenError> {
    let text = token_text(text)?;
    let t = biscuit_auth::UnverifiedBiscuit::from_base64(text).map_err(|e| TokenError::Forged {
        detail: e.to_string(),
    })?;
    if t.block_count() > BLOCKS_MAX {
        return Err(TokenError::TooManyBlocks {
            blocks: t.block_count(),
        });
    }
    Ok(t.revocation_identifiers()
        .iter()
        .enumerate()
        .map(|(i, id)| BlockView {
            revocation_id: hex(id),
            context: None,
            source: t
                .print_block_source(i)
                .unwrap_or_else(|e| format!("// unprintable: {e}")),
        })
        .collect())
}

/// The trimmed token text, refused when longer than [`TOKEN_TEXT_BYTES_MAX`] (before decoding).
fn token_text(text: &str) -> Result<&str, TokenError> {
    let text = text.trim();
    if text.len() > TOKEN_TEXT_BYTES_MAX {
        return Err(TokenError::TooLarge {
            len: text.len() / 4 * 3,
        });
    }
    Ok(text)
}

/// The verifier's run limits.
fn limits() -> AuthorizerLimits {
    AuthorizerLimits {
        max_facts: FACTS_MAX,
        max_iterations: ITERATIONS_MAX,
        // A wall-clock safety ceiling only: the fact and iteration limits bind first.
        max_time: std::time::Duration::from_secs(5),
    }
}

/// Revoked revocation ids. The caller persists it and records every revocation in the trace.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RevocationSet {
    ids: BTreeSet<String>,
}

impl RevocationSet {
    /// The revoked ids, in ascending order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.ids.iter().map(String::as_str)
    }

    /// Revokes an id (hex, as [`Token::revocation_ids`] gives it); true if it was new.
    pub fn revoke(&mut self, id: &str) -> bool {
        self.ids.insert(id.to_ascii_lowercase())
    }

    /// True if `id` is revoked.
    pub fn contains(&self, id: &str) -> bool {
        self.ids.contains(id)
    }

    /// One id per line, sorted: the persisted form.
    pub fn to_text(&self) -> String {
        self.ids.iter().map(|i| format!("{i}\n")).collect()
    }

    /// Parses [`RevocationSet::to_text`]; blank lines and `#` comments are skipped.
    pub fn from_text(text: &str) -> Result<RevocationSet, String> {
        let mut s = RevocationSet::default();
        for (n, line) in text.lines().enumerate() {
            let l = line.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            if l.len() > 256 || !l.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(format!("line {}: {l:?} is not a hex revocation id", n + 1));
            }
            s.revoke(l);
        }
        Ok(s)
    }

    /// Ids revoked.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when nothing is revoked.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// Checks tokens against one operator root key.
#[derive(Clone)]
pub struct Verifier {
    root: PublicKey,
}

/// What a successful verification established.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authorized {
    /// The blocks checked.
    pub blocks: usize,
}

impl Verifier {
    /// A verifier for the root public key (32 bytes).
    pub fn new(root: &[u8]) -> Result<Verifier, TokenError> {
        Ok(Verifier {
            root: root_key(root)?,
        })
    }

    /// Parses `bytes` and authorises `req`: signatures, revocation, then every check of every
    /// block and a right covering the request. The first failure is returned, naming the check.
    pub fn verify(
        &self,
        bytes: &[u8],
        req: &Request,
        revoked: &RevocationSet,
    ) -> Result<Authorized, TokenError> {
        let t = Token::from_bytes(bytes, &self.root.to_bytes())?;
        self.authorize(&t, req, revoked)
    }

    /// Authorises `req` with a parsed token.
    pub fn authorize(
        &self,
        t: &Token,
        req: &Request,
        revoked: &RevocationSet,
    ) -> Result<Authorized, TokenError> {
        if t.0.block_count() > BLOCKS_MAX {
            return Err(TokenError::TooManyBlocks {
                blocks: t.0.block_count(),
            });
        }
        for (block, id) in t.revocation_ids().into_iter().enumerate() {
            if revoked.contains(&id) {
                return Err(TokenError::Revoked { block, id });
            }
        }
        let resource = resource(req.resource)?;
        let mut a = biscuit_auth::AuthorizerBuilder::new()
            .set_limits(limits())
            .fact(fact("operation", &[string(req.operation.name())]))
            .map_err(other)?
            .fact(fact("domain", &[string(req.domain.name())]))
            .map_err(other)?
            .fact(fact("resource", &[string(resource)]))
            .map_err(other)?
            .fact(fact("amount", &[int(to_i64("amount", req.amount)?)]))
            .map_err(other)?
            .fact(fact("time_ns", &[int(to_i64("time_ns", req.time_ns)?)]))
            .map_err(other)?
            .code("allow if right($d, $op), domain($d), operation($op)")
            .map_err(other)?
            .build(&t.0)
            .map_err(other)?;
        match a.authorize() {
            Ok(_) => Ok(Authorized {
                blocks: t.0.block_count(),
            }),
            Err(BiscuitError::FailedLogic(
                Logic::Unauthorized { checks, .. } | Logic::NoMatchingPolicy { checks },
            )) => Err(match checks.into_iter().next() {
                Some(FailedCheck::Block(c)) if c.rule.contains("time_ns(") => TokenError::Expired {
                    block: c.block_id,
                    check: c.check_id,
                    rule: c.rule,
                    time_ns: req.time_ns,
                },
                Some(FailedCheck::Block(c)) => TokenError::CheckFailed {
                    block: c.block_id,
                    check: c.check_id,
                    rule: c.rule,
                },
                Some(FailedCheck::Authorizer(c)) => TokenError::VerifierCheckFailed {
                    check: c.check_id,
                    rule: c.rule,
                },
                None => TokenError::Insufficient {
                    operation: req.operation.name(),
                    domain: req.domain.name(),
                },
            }),
            Err(e) => Err(other(e)),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
