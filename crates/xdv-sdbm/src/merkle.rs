//! RFC 6962 Merkle tree hashing (§2.1): leaf hash `SHA-256(0x00 ‖ d)`, node hash
//! `SHA-256(0x01 ‖ l ‖ r)`, the empty tree `SHA-256("")`, and for n > 1 leaves the split at the
//! largest power of two smaller than n. Audit paths (§2.1.1) and consistency proofs (§2.1.2) are
//! generated from leaf hashes; their verifiers follow RFC 9162 §2.1.3.2 and §2.1.4.2.

use sha2::{Digest, Sha256};

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// `SHA-256(0x00 ‖ data)`: the hash of one leaf.
pub fn leaf_hash(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(data);
    h.finalize().into()
}

/// `SHA-256(0x01 ‖ left ‖ right)`: the hash of an interior node.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    buf[0] = 1;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    Sha256::digest(buf).into()
}

/// The Merkle tree hash of the empty tree, `SHA-256("")`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two strictly smaller than `n` (`n >= 2`).
fn split(n: usize) -> usize {
    debug_assert!(n >= 2);
    1usize << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// The Merkle tree hash (MTH) of a list of leaf hashes.
pub fn root(leaves: &[Hash]) -> Hash {
    let mut acc = Accumulator::default();
    for l in leaves {
        acc.push(*l);
    }
    acc.root()
}

/// A streaming MTH: holds one subtree root per set bit of the size, so appending is amortised
/// O(1) and the root is O(log n). Its root equals [`root`] of the same leaves.
#[derive(Clone, Debug, Default)]
pub struct Accumulator {
    /// Roots of complete subtrees, largest (leftmost) first.
    stack: Vec<Hash>,
    size: u64,
}

impl Accumulator {
    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut h = leaf;
        let mut s = self.size;
        while s & 1 == 1 {
            // A set low bit means a complete subtree of the same height waits on the stack.
            if let Some(left) = self.stack.pop() {
                h = node_hash(&left, &h);
            }
            s >>= 1;
        }
        self.stack.push(h);
        self.size += 1;
    }

    /// Leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The MTH of the leaves appended so far.
    pub fn root(&self) -> Hash {
        let mut it = self.stack.iter().rev();
        let Some(last) = it.next() else {
            return empty_root();
        };
        it.fold(*last, |r, left| node_hash(left, &r))
    }
}

/// Errors from proof generation and verification.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The leaf index is not in the tree.
    #[error("leaf {index} is not in a tree of {size} leaves; choose an index below {size}")]
    IndexOutOfRange {
        /// The index asked for.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// The sizes of a consistency proof are not `from <= to <= tree size`.
    #[error("a consistency proof needs 0 <= from ({from}) <= to ({to}) <= the tree size ({size})")]
    BadRange {
        /// The older size.
        from: u64,
        /// The newer size.
        to: u64,
        /// The tree size.
        size: u64,
    },
    /// The proof does not lead to the expected root.
    #[error("the proof does not verify: {0}")]
    Invalid(&'static str),
}

/// The audit path for leaf `index` in the tree of `leaves` (RFC 6962 §2.1.1).
pub fn inclusion_proof(leaves: &[Hash], index: u64) -> Result<Vec<Hash>, ProofError> {
    let size = leaves.len() as u64;
    let m = usize::try_from(index)
        .ok()
        .filter(|&m| m < leaves.len())
        .ok_or(ProofError::IndexOutOfRange { index, size })?;
    let mut out = Vec::new();
    path(m, leaves, &mut out);
    Ok(out)
}

fn path(m: usize, d: &[Hash], out: &mut Vec<Hash>) {
    let n = d.len();
    if n <= 1 {
        return;
    }
    let k = split(n);
    if m < k {
        path(m, &d[..k], out);
        out.push(root(&d[k..]));
    } else {
        path(m - k, &d[k..], out);
        out.push(root(&d[..k]));
    }
}

/// The consistency proof between the first `from` leaves and the first `to` leaves
/// (RFC 6962 §2.1.2); empty when `from` is 0 or equals `to`.
pub fn consistency_proof(leaves: &[Hash], from: u64, to: u64) -> Result<Vec<Hash>, ProofError> {
    let size = leaves.len() as u64;
    if from > to || to > size {
        return Err(ProofError::BadRange { from, to, size });
    }
    let mut out = Vec::new();
    if from == 0 || from == to {
        return Ok(out);
    }
    // Both fit in usize: they are at most leaves.len().
    let (m, n) = (from as usize, to as usize);
    subproof(m, &leaves[..n], true, &mut out);
    Ok(out)
}

fn subproof(m: usize, d: &[Hash], complete: bool, out: &mut Vec<Hash>) {
    let n = d.len();
    if m == n {
        if !complete {
            out.push(root(d));
        }
        return;
    }
    let k = split(n);
    if m <= k {
        subproof(m, &d[..k], complete, out);
        out.push(root(&d[k..]));
    } else {
        subproof(m - k, &d[k..], false, out);
        out.push(root(&d[..k]));
    }
}

/// Verifies an audit path (RFC 9162 §2.1.3.2): leaf `index` with hash `leaf` is in the tree of
/// `size` leaves whose root is `root`.
pub fn verify_inclusion(
    leaf: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(ProofError::Invalid(
                "the path is longer than the tree is deep",
            ));
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::Invalid(
            "the path is shorter than the tree is deep",
        ));
    }
    if &r != root {
        return Err(ProofError::Invalid("the path leads to a different root"));
    }
    Ok(())
}

/// Verifies a consistency proof (RFC 9162 §2.1.4.2): the tree of `from` leaves with root
/// `from_root` is a prefix of the tree of `to` leaves with root `to_root`.
pub fn verify_consistency(
    from: u64,
    to: u64,
    from_root: &Hash,
    to_root: &Hash,
    proof: &[Hash],
) -> Result<(), ProofError> {
    if from > to {
        return Err(ProofError::BadRange { from, to, size: to });
    }
    if from == to {
        if !proof.is_empty() {
            return Err(ProofError::Invalid("equal sizes take an empty proof"));
        }
        if from_root != to_root {
            return Err(ProofError::Invalid("equal sizes with different roots"));
        }
        return Ok(());
    }
    if from == 0 {
        // Every tree extends the empty tree.
        if !proof.is_empty() {
            return Err(ProofError::Invalid("a proof from the empty tree is empty"));
        }
        return Ok(());
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if from.is_power_of_two() {
        path.push(*from_root);
    }
    path.extend_from_slice(proof);
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::Invalid("the proof is empty"));
    };
    let (mut fnode, mut snode) = (from - 1, to - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (*first, *first);
    for c in rest {
        if snode == 0 {
            return Err(ProofError::Invalid(
                "the proof is longer than the tree is deep",
            ));
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::Invalid(
            "the proof is shorter than the tree is deep",
        ));
    }
    if &fr != from_root {
        return Err(ProofError::Invalid(
            "the proof does not lead to the older root",
        ));
    }
    if &sr != to_root {
        return Err(ProofError::Invalid(
            "the proof does not lead to the newer root",
        ));
    }
    Ok(())
}
