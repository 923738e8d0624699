//! RFC 6962 hashing and proofs against an independent, naive recursive MTH written here.

use sha2::{Digest, Sha256};
use xdv_sdbm::merkle::*;

/// MTH straight from RFC 6962 §2.1, over raw leaf data.
fn naive_mth(d: &[Vec<u8>]) -> [u8; 32] {
    match d.len() {
        0 => Sha256::digest([]).into(),
        1 => {
            let mut h = Sha256::new();
            h.update([0u8]);
            h.update(&d[0]);
            h.finalize().into()
        }
        n => {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            let mut h = Sha256::new();
            h.update([1u8]);
            h.update(naive_mth(&d[..k]));
            h.update(naive_mth(&d[k..]));
            h.finalize().into()
        }
    }
}

/// PATH(m, D[n]) from RFC 6962 §2.1.1, over raw data, using only `naive_mth`.
fn naive_path(m: usize, d: &[Vec<u8>]) -> Vec<[u8; 32]> {
    let n = d.len();
    if n <= 1 {
        return vec![];
    }
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    if m < k {
        let mut p = naive_path(m, &d[..k]);
        p.push(naive_mth(&d[k..]));
        p
    } else {
        let mut p = naive_path(m - k, &d[k..]);
        p.push(naive_mth(&d[..k]));
        p
    }
}

/// SUBPROOF from RFC 6962 §2.1.2.
fn naive_subproof(m: usize, d: &[Vec<u8>], b: bool) -> Vec<[u8; 32]> {
    let n = d.len();
    if m == n {
        return if b { vec![] } else { vec![naive_mth(d)] };
    }
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    if m <= k {
        let mut p = naive_subproof(m, &d[..k], b);
        p.push(naive_mth(&d[k..]));
        p
    } else {
        let mut p = naive_subproof(m - k, &d[k..], false);
        p.push(naive_mth(&d[..k]));
        p
    }
}

fn data(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("leaf {i}").into_bytes()).collect()
}

#[test]
fn roots_match_the_naive_mth_for_every_size_to_70() {
    for n in 0..=70 {
        let d = data(n);
        let leaves: Vec<_> = d.iter().map(|x| leaf_hash(x)).collect();
        assert_eq!(root(&leaves), naive_mth(&d), "size {n}");
        let mut acc = Accumulator::default();
        for l in &leaves {
            acc.push(*l);
        }
        assert_eq!(acc.root(), naive_mth(&d), "accumulator, size {n}");
    }
}

#[test]
fn rfc6962_empty_tree_and_single_leaf() {
    // Known values: SHA-256 of the empty string, and of 0x00 (the leaf hash of an empty entry).
    assert_eq!(
        xdv_sdbm::hex(&empty_root()),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        xdv_sdbm::hex(&leaf_hash(b"")),
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
    );
}

#[test]
fn inclusion_proofs_match_rfc_paths_and_verify() {
    for n in 1..=40 {
        let d = data(n);
        let leaves: Vec<_> = d.iter().map(|x| leaf_hash(x)).collect();
        let r = naive_mth(&d);
        for m in 0..n {
            let p = inclusion_proof(&leaves, m as u64).unwrap();
            assert_eq!(p, naive_path(m, &d), "size {n} leaf {m}");
            verify_inclusion(&leaves[m], m as u64, n as u64, &p, &r).unwrap();
            // The wrong leaf, index, size or a damaged path must not verify.
            let other = leaf_hash(b"not in the tree");
            assert!(verify_inclusion(&other, m as u64, n as u64, &p, &r).is_err());
            if n > 1 {
                let wrong = (m + 1) % n;
                if leaves[wrong] != leaves[m] {
                    assert!(
                        verify_inclusion(&leaves[m], wrong as u64, n as u64, &p, &r).is_err(),
                        "size {n} leaf {m} at {wrong}"
                    );
                }
                let mut bad = p.clone();
                bad[0][0] ^= 1;
                assert!(verify_inclusion(&leaves[m], m as u64, n as u64, &bad, &r).is_err());
                assert!(
                    verify_inclusion(&leaves[m], m as u64, n as u64, &p[..p.len() - 1], &r)
                        .is_err()
                );
            }
            // Against the next tree's root the old path does not verify.
            let mut bigger = d.clone();
            bigger.push(b"one more".to_vec());
            let r2 = naive_mth(&bigger);
            assert!(verify_inclusion(&leaves[m], m as u64, n as u64 + 1, &p, &r2).is_err());
        }
        assert!(inclusion_proof(&leaves, n as u64).is_err());
    }
}

#[test]
fn consistency_proofs_match_rfc_subproofs_and_verify() {
    for n in 1..=40 {
        let d = data(n);
        let leaves: Vec<_> = d.iter().map(|x| leaf_hash(x)).collect();
        let rn = naive_mth(&d);
        for m in 1..=n {
            let rm = naive_mth(&d[..m]);
            let p = consistency_proof(&leaves, m as u64, n as u64).unwrap();
            let expect = if m == n {
                vec![]
            } else {
                naive_subproof(m, &d, true)
            };
            assert_eq!(p, expect, "from {m} to {n}");
            verify_consistency(m as u64, n as u64, &rm, &rn, &p).unwrap();
            if m < n {
                let mut bad = p.clone();
                let last = bad.len() - 1;
                bad[last][31] ^= 0x80;
                assert!(
                    verify_consistency(m as u64, n as u64, &rm, &rn, &bad).is_err(),
                    "{m}->{n}"
                );
                let wrong_old = naive_mth(&data(m + 1)[1..]);
                assert!(verify_consistency(m as u64, n as u64, &wrong_old, &rn, &p).is_err());
                assert!(verify_consistency(m as u64, n as u64, &rm, &rm, &p).is_err() || rm == rn);
            }
        }
    }
    let leaves: Vec<_> = data(5).iter().map(|x| leaf_hash(x)).collect();
    assert!(consistency_proof(&leaves, 3, 6).is_err());
    assert!(consistency_proof(&leaves, 4, 3).is_err());
}
