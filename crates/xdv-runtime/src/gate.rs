//! The Secure Domain Boundary Manager at the hypervisor's edge: every request a VHM makes across a
//! boundary — creating it, nesting, reserving, submitting (its pipeline steps, its guest, its
//! guest's own Q and Φ jobs), opening a channel, sending on one — is checked against the
//! capability token the VHM presents before the request reaches the core.
//!
//! Tokens are biscuits (`xdv-token`) chained to the operator's token root key. The gate checks
//! signatures, revocation and every block's checks with the request's facts (operation, domain,
//! resource, amount, the core's logical time); the core holds no keys and runs no Datalog.
//! Revocations are the core's: a revoked block is a `TokenId` (the BLAKE3 hash of its revocation
//! id) in `State::revoked_tokens`, put there by `Command::RevokeToken`, so replay reproduces when
//! each took effect. A refusal becomes `Command::Deny` in the trace (see `run.rs`).
//!
//! The gate is pure: the same token, request and revoked set give the same answer.

use std::collections::BTreeSet;
use xdv_core::{DeniedOp, DenyReason, Domain, TokenId};
use xdv_token::{Operation, Request, RevocationSet, Token, TokenError, Verifier};

/// The core's id of a revoked token block: the BLAKE3 hash of its revocation id's text.
pub fn token_id(revocation_id: &str) -> TokenId {
    TokenId(*blake3::hash(revocation_id.as_bytes()).as_bytes())
}

/// Why the gate refused a request: the reason the trace records and a message for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The reason, as `Command::Deny` records it.
    pub reason: DenyReason,
    /// What failed (the token library's message names the failing check).
    pub message: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "token {}: {}", self.reason.name(), self.message)
    }
}

/// One request at a boundary, in the core's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ask {
    /// What is asked.
    pub operation: DeniedOp,
    /// In which domain.
    pub domain: Domain,
    /// The resource the amount is counted in (one of `xdv_token::RESOURCES`).
    pub resource: &'static str,
    /// How much.
    pub amount: u64,
}

/// The gate: the operator's token root key.
pub struct Gate {
    root: Vec<u8>,
    verifier: Verifier,
}

fn domain(d: Domain) -> xdv_token::Domain {
    match d {
        Domain::K => xdv_token::Domain::K,
        Domain::Q => xdv_token::Domain::Q,
        Domain::Phi => xdv_token::Domain::Phi,
    }
}

fn operation(op: DeniedOp) -> Operation {
    match op {
        DeniedOp::Create => Operation::Create,
        DeniedOp::Nest => Operation::Nest,
        DeniedOp::Reserve => Operation::Reserve,
        DeniedOp::Submit => Operation::Submit,
        DeniedOp::Open => Operation::Open,
        DeniedOp::Send => Operation::Send,
        DeniedOp::Receive => Operation::Receive,
        // Holding is not a token operation: a held VHM is refused only by revocation.
        DeniedOp::Hold => Operation::Read,
    }
}

fn refusal(e: &TokenError) -> Refusal {
    let reason = match e.reason() {
        "revoked" => DenyReason::Revoked,
        "expired" => DenyReason::Expired,
        "insufficient" => DenyReason::Insufficient,
        _ => DenyReason::Forged,
    };
    Refusal {
        reason,
        message: e.to_string(),
    }
}

impl Gate {
    /// A gate for the operator's token root public key (32 bytes).
    pub fn new(root_public_key: &[u8]) -> Result<Gate, String> {
        let verifier = Verifier::new(root_public_key).map_err(|e| e.to_string())?;
        Ok(Gate {
            root: root_public_key.to_vec(),
            verifier,
        })
    }

    /// Parses a token file's bytes (the base64 text `xdv token mint` writes, or raw biscuit
    /// bytes) and checks its signature chain.
    pub fn parse(&self, bytes: &[u8]) -> Result<Token, Refusal> {
        let parsed = match std::str::from_utf8(bytes) {
            Ok(text) => Token::from_base64(text.trim(), &self.root),
            Err(_) => Token::from_bytes(bytes, &self.root),
        };
        parsed.map_err(|e| Refusal {
            reason: DenyReason::Forged,
            message: e.to_string(),
        })
    }

    /// The token's blocks, as the core's revocation ids.
    pub fn ids(token: &Token) -> Vec<TokenId> {
        token.revocation_ids().iter().map(|i| token_id(i)).collect()
    }

    /// The first block of `token` that `revoked` holds, if any.
    pub fn revoked_block(token: &Token, revoked: &BTreeSet<TokenId>) -> Option<(usize, String)> {
        token
            .revocation_ids()
            .into_iter()
            .enumerate()
            .find(|(_, id)| revoked.contains(&token_id(id)))
    }

    /// Authorises `ask` at logical time `time_ns` with `token`, given the core's revoked blocks.
    pub fn check(
        &self,
        token: &Token,
        ask: Ask,
        time_ns: u64,
        revoked: &BTreeSet<TokenId>,
    ) -> Result<(), Refusal> {
        if let Some((block, id)) = Gate::revoked_block(token, revoked) {
            return Err(Refusal {
                reason: DenyReason::Revoked,
                message: format!("the token is revoked: block {block} has revocation id {id}"),
            });
        }
        let req = Request {
            operation: operation(ask.operation),
            domain: domain(ask.domain),
            resource: ask.resource,
            amount: ask.amount,
            time_ns,
        };
        self.verifier
            .authorize(token, &req, &RevocationSet::default())
            .map(|_| ())
            .map_err(|e| refusal(&e))
    }
}
