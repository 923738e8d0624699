//! Capabilities as data, and the one seam where every command is authorised.
//!
//! A capability names a holder, a target (the machine, a VHM and everything nested in it, or an
//! IPC channel), a set of rights and an expiry. Capabilities form a derivation tree: every derived
//! capability is at most as wide as its parent, and revoking one revokes its subtree.
//! [`authorize`] is the single check every command passes through; cryptographic tokens will
//! replace the table lookup behind it without changing its callers.

use crate::input::{Principal, Rejection};
use crate::model::{CapId, ChannelId, VhmId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;

/// A set of rights, one bit each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Rights(pub u16);

impl Rights {
    /// Create root VHMs (machine only).
    pub const CREATE: Rights = Rights(1 << 0);
    /// Create nested VHMs.
    pub const NEST: Rights = Rights(1 << 1);
    /// Reserve and release resources and windows.
    pub const RESERVE: Rights = Rights(1 << 2);
    /// Submit jobs.
    pub const SUBMIT: Rights = Rights(1 << 3);
    /// Open and close IPC channels; send on an endpoint.
    pub const IPC: Rights = Rights(1 << 4);
    /// Fault or terminate.
    pub const CONTROL: Rights = Rights(1 << 5);
    /// Derive capabilities for other principals.
    pub const GRANT: Rights = Rights(1 << 6);
    /// Revoke derived capabilities.
    pub const REVOKE: Rights = Rights(1 << 7);
    /// Establish window-sharing contracts.
    pub const SHARE: Rights = Rights(1 << 8);
    /// Every right.
    pub const ALL: Rights = Rights((1 << 9) - 1);
    /// Every right a VHM holds over itself (all but CREATE).
    pub const VHM_ALL: Rights = Rights(Rights::ALL.0 & !Rights::CREATE.0);
    /// An IPC endpoint's rights.
    pub const ENDPOINT: Rights = Rights(Rights::IPC.0);

    const NAMES: [&'static str; 9] = [
        "create", "nest", "reserve", "submit", "ipc", "control", "grant", "revoke", "share",
    ];

    /// True when every right in `other` is in `self`.
    pub fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }

    /// Intersection.
    pub fn and(self, other: Rights) -> Rights {
        Rights(self.0 & other.0)
    }

    /// Parses a comma-separated list of right names.
    pub fn parse(list: &str) -> Option<Rights> {
        let mut r = 0u16;
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let i = Rights::NAMES.iter().position(|n| *n == name)?;
            r |= 1 << i;
        }
        Some(Rights(r))
    }
}

impl fmt::Display for Rights {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (i, n) in Rights::NAMES.iter().enumerate() {
            if self.0 & (1 << i) != 0 {
                if !first {
                    f.write_str(",")?;
                }
                f.write_str(n)?;
                first = false;
            }
        }
        if first {
            f.write_str("none")?;
        }
        Ok(())
    }
}

/// What a capability reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Target {
    /// The whole machine: every VHM and channel.
    Machine,
    /// A VHM and every VHM nested in it.
    Vhm(VhmId),
    /// One IPC channel endpoint.
    Channel(ChannelId),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Machine => f.write_str("the machine"),
            Target::Vhm(v) => write!(f, "{v}"),
            Target::Channel(c) => write!(f, "{c}"),
        }
    }
}

/// A capability.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Capability {
    /// Its id.
    pub id: CapId,
    /// Who may present it.
    pub holder: Principal,
    /// What it reaches.
    pub target: Target,
    /// What it allows.
    pub rights: Rights,
    /// The tick from which it is expired; `u64::MAX` for never.
    pub expires_tick: u64,
    /// The capability it was derived from (`None` only for the operator's root).
    pub parent: Option<CapId>,
    /// Capabilities derived from it, ascending.
    pub children: Vec<CapId>,
}

/// The parts of a capability an authorisation decision depends on (cheap to copy and record).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapView {
    /// Its id.
    pub id: CapId,
    /// Who may present it.
    pub holder: Principal,
    /// What it reaches.
    pub target: Target,
    /// What it allows.
    pub rights: Rights,
    /// The tick from which it is expired.
    pub expires_tick: u64,
}

impl Capability {
    /// The decision-relevant parts.
    pub fn view(&self) -> CapView {
        CapView {
            id: self.id,
            holder: self.holder,
            target: self.target,
            rights: self.rights,
            expires_tick: self.expires_tick,
        }
    }
}

/// The capability table.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapTable {
    /// Live capabilities by id.
    pub caps: BTreeMap<CapId, Capability>,
    /// The next id to issue; every id below it was issued once.
    pub next_id: u64,
}

/// The id of the operator's root capability, issued at genesis.
pub const ROOT_CAP: CapId = CapId(0);

impl CapTable {
    /// A table holding only the operator's root capability.
    pub fn genesis() -> CapTable {
        let mut t = CapTable::default();
        t.caps.insert(
            ROOT_CAP,
            Capability {
                id: ROOT_CAP,
                holder: Principal::Operator,
                target: Target::Machine,
                rights: Rights::ALL,
                expires_tick: u64::MAX,
                parent: None,
                children: Vec::new(),
            },
        );
        t.next_id = 1;
        t
    }

    /// Looks up a presented capability and checks it is live, held by `principal` and unexpired.
    pub fn presented(
        &self,
        principal: Principal,
        cap: CapId,
        now_tick: u64,
    ) -> Result<&Capability, Rejection> {
        let Some(c) = self.caps.get(&cap) else {
            return Err(if cap.0 < self.next_id {
                Rejection::CapabilityRevoked { cap }
            } else {
                Rejection::UnknownCapability { cap }
            });
        };
        if c.holder != principal {
            return Err(Rejection::CapabilityNotHeld {
                cap,
                holder: c.holder,
                principal,
            });
        }
        if now_tick >= c.expires_tick {
            return Err(Rejection::CapabilityExpired {
                cap,
                expired_tick: c.expires_tick,
            });
        }
        Ok(c)
    }

    /// Issues a capability derived from `parent`. The caller has checked that it is narrower.
    pub fn issue(
        &mut self,
        parent: CapId,
        holder: Principal,
        target: Target,
        rights: Rights,
        expires_tick: u64,
    ) -> CapId {
        let id = CapId(self.next_id);
        self.next_id += 1;
        self.caps.insert(
            id,
            Capability {
                id,
                holder,
                target,
                rights,
                expires_tick,
                parent: Some(parent),
                children: Vec::new(),
            },
        );
        if let Some(p) = self.caps.get_mut(&parent) {
            p.children.push(id);
        }
        id
    }

    /// Revokes a capability and its derivation subtree, appending the revoked ids and their
    /// targets in order (pre-order, children ascending).
    pub fn revoke(&mut self, cap: CapId, revoked: &mut Vec<(CapId, Target)>) {
        let Some(c) = self.caps.remove(&cap) else {
            return;
        };
        if let Some(p) = c.parent.and_then(|p| self.caps.get_mut(&p)) {
            p.children.retain(|x| *x != cap);
        }
        let mut stack: Vec<CapId> = c.children.iter().rev().copied().collect();
        revoked.push((cap, c.target));
        while let Some(id) = stack.pop() {
            if let Some(c) = self.caps.remove(&id) {
                revoked.push((id, c.target));
                stack.extend(c.children.iter().rev().copied());
            }
        }
    }

    /// True when `ancestor` is `cap` or one of the capabilities it was derived from.
    pub fn derives_from(&self, cap: CapId, ancestor: CapId) -> bool {
        let mut cur = Some(cap);
        while let Some(c) = cur {
            if c == ancestor {
                return true;
            }
            cur = self.caps.get(&c).and_then(|x| x.parent);
        }
        false
    }
}

/// Answers whether a target lies within another (for VHMs: is nested in or equal to it).
pub trait Scope {
    /// True when `inner` is `outer` or lies inside it.
    fn within(&self, inner: Target, outer: Target) -> bool;
}

/// The one authorisation seam: checks that `principal` presents a live capability `cap` that
/// reaches `target` with `needed` rights, and returns it.
pub fn authorize(
    table: &CapTable,
    scope: &impl Scope,
    principal: Principal,
    cap: CapId,
    now_tick: u64,
    target: Target,
    needed: Rights,
) -> Result<CapView, Rejection> {
    let c = table.presented(principal, cap, now_tick)?;
    if !scope.within(target, c.target) {
        return Err(Rejection::OutOfScope {
            cap,
            covers: c.target,
            target,
        });
    }
    if !c.rights.contains(needed) {
        return Err(Rejection::MissingRight {
            cap,
            needed,
            held: c.rights,
        });
    }
    Ok(c.view())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_parse_and_print() {
        let r = Rights::parse("nest, submit").unwrap();
        assert_eq!(r, Rights(Rights::NEST.0 | Rights::SUBMIT.0));
        assert_eq!(r.to_string(), "nest,submit");
        assert_eq!(Rights::parse("fly"), None);
        assert!(Rights::ALL.contains(r));
        assert!(!r.contains(Rights::GRANT));
    }

    #[test]
    fn revocation_takes_the_subtree_in_order() {
        let mut t = CapTable::genesis();
        let a = t.issue(
            ROOT_CAP,
            Principal::Operator,
            Target::Machine,
            Rights::ALL,
            u64::MAX,
        );
        let b = t.issue(
            a,
            Principal::Operator,
            Target::Machine,
            Rights::ALL,
            u64::MAX,
        );
        let c = t.issue(
            a,
            Principal::Operator,
            Target::Machine,
            Rights::ALL,
            u64::MAX,
        );
        let d = t.issue(
            b,
            Principal::Operator,
            Target::Machine,
            Rights::ALL,
            u64::MAX,
        );
        assert!(t.derives_from(d, a));
        assert!(!t.derives_from(a, d));
        let mut out = Vec::new();
        t.revoke(a, &mut out);
        let ids: Vec<CapId> = out.iter().map(|x| x.0).collect();
        assert_eq!(ids, vec![a, b, d, c]);
        assert_eq!(t.caps.len(), 1);
        assert_eq!(
            t.presented(Principal::Operator, b, 0).unwrap_err(),
            Rejection::CapabilityRevoked { cap: b }
        );
        assert_eq!(
            t.presented(Principal::Operator, CapId(99), 0).unwrap_err(),
            Rejection::UnknownCapability { cap: CapId(99) }
        );
    }
}
