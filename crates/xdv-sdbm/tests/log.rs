//! The audit log file: round trip, and every kind of damage detected and located.

mod common;

use common::{sample, scratch};
use xdv_sdbm::entry::Entry;
use xdv_sdbm::keys::MasterSecret;
use xdv_sdbm::log::{verify, AuditWriter, LogError, VerifyOptions, WriterOptions};
use xdv_sdbm::merkle::{leaf_hash, root};
use xdv_sdbm::sign::Signer;

fn signer(b: u8) -> Signer {
    Signer::from_master(&MasterSecret([b; 32]))
}

/// Writes `n` sample entries with a checkpoint every `every` entries, sealed unless `seal` is
/// false; returns the bytes and the frame offsets (start, end) in order.
fn write_log(name: &str, n: u64, every: u64, seal: bool, batch: usize) -> (Vec<u8>, Vec<u8>) {
    let dir = scratch(name);
    let path = dir.join("audit.log");
    let mut w = AuditWriter::create(
        &path,
        signer(7),
        WriterOptions {
            batch_entries_max: batch,
        },
    )
    .unwrap();
    let mut encoded = Vec::new();
    for i in 0..n {
        let e = sample(i);
        encoded.push(e.encode().unwrap());
        assert_eq!(w.append(&e).unwrap(), i);
        if every > 0 && (i + 1) % every == 0 {
            w.checkpoint(e.time_ns + 1).unwrap();
        }
    }
    if seal {
        w.finish(u64::MAX / 2).unwrap();
    } else {
        w.commit().unwrap();
    }
    let bytes = std::fs::read(&path).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    (bytes, encoded.concat())
}

/// Frame boundaries (start, end) of a well-formed log.
fn frames(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 16;
    while pos < bytes.len() {
        let len = u32::from_le_bytes(bytes[pos..pos + 4].try_into().unwrap()) as usize;
        out.push((pos, pos + len + 9));
        pos += len + 9;
    }
    out
}

/// The byte ranges of every signature body in checkpoint frames.
fn signature_ranges(bytes: &[u8], fr: &[(usize, usize)]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (s, e) in fr {
        if bytes[s + 4] != 3 {
            continue;
        }
        // payload: size 8, root 32, time 8, flags 1, count 1, then (alg 2, len 4, bytes)*
        let mut p = s + 5 + 50;
        while p < e - 4 {
            let len = u32::from_le_bytes(bytes[p + 2..p + 6].try_into().unwrap()) as usize;
            out.push((p + 6, p + 6 + len));
            p += 6 + len;
        }
    }
    out
}

fn opts() -> VerifyOptions {
    VerifyOptions::default()
}

#[test]
fn round_trip_recomputes_the_same_tree() {
    let (bytes, _) = write_log("round", 50, 16, true, 7);
    let v = verify(
        &bytes,
        &VerifyOptions {
            keep_entries: true,
            ..opts()
        },
    )
    .unwrap();
    assert_eq!(v.entries.len(), 50);
    assert!(v.sealed);
    assert_eq!(v.checkpoints.len(), 50 / 16 + 1);
    let expect: Vec<Entry> = (0..50).map(sample).collect();
    assert_eq!(v.entries, expect);
    let leaves: Vec<_> = expect
        .iter()
        .map(|e| leaf_hash(&e.encode().unwrap()))
        .collect();
    assert_eq!(v.root, root(&leaves));
    for c in &v.checkpoints {
        let s = c.checkpoint.tree_size as usize;
        assert_eq!(c.checkpoint.root, root(&leaves[..s]));
        assert_eq!(c.checkpoint.signatures.len(), 2);
    }
}

#[test]
fn entries_round_trip_through_the_canonical_encoding() {
    for i in 0..200 {
        let e = sample(i);
        let b = e.encode().unwrap();
        assert_eq!(Entry::decode(&b).unwrap(), e, "entry {i}");
        // Every strict prefix is refused, and so is a trailing byte.
        for cut in 0..b.len() {
            assert!(Entry::decode(&b[..cut]).is_err(), "entry {i} cut at {cut}");
        }
        let mut longer = b.clone();
        longer.push(0);
        assert!(Entry::decode(&longer).is_err());
    }
}

#[test]
fn flipping_any_byte_is_detected_and_located_in_its_frame() {
    let (bytes, _) = write_log("flip", 12, 5, true, 3);
    let fr = frames(&bytes);
    // Every byte outside signature bodies, and every 7th byte (plus the first and last 16)
    // inside them: each flip re-verifies the checkpoints before it.
    let sig_ranges = signature_ranges(&bytes, &fr);
    let in_sig = |p: usize| {
        sig_ranges
            .iter()
            .any(|(s, e)| *s + 16 <= p && p + 16 < *e && !(p - s).is_multiple_of(7))
    };
    for pos in (0..bytes.len()).filter(|p| !in_sig(*p)) {
        for bit in [0x01u8, 0x80] {
            let mut b = bytes.clone();
            b[pos] ^= bit;
            let err = match verify(&b, &opts()) {
                Ok(_) => panic!("flipping bit {bit:#x} of byte {pos} went unnoticed"),
                Err(e) => e,
            };
            if pos < 16 {
                assert!(matches!(err, LogError::Header(_)), "byte {pos}: {err}");
                continue;
            }
            let (start, _) = *fr.iter().find(|(s, e)| *s <= pos && pos < *e).unwrap();
            let at = err
                .location()
                .unwrap_or_else(|| panic!("byte {pos}: error without location: {err}"));
            assert_eq!(at.offset as usize, start, "byte {pos}: {err}");
        }
    }
}

#[test]
fn every_truncation_is_detected() {
    let (bytes, _) = write_log("trunc", 9, 4, true, 2);
    for cut in 0..bytes.len() {
        assert!(
            verify(&bytes[..cut], &opts()).is_err(),
            "truncation to {cut} of {} bytes went unnoticed",
            bytes.len()
        );
    }
    // At a frame boundary the prefix is a valid unsealed log; only the missing seal tells.
    let fr = frames(&bytes);
    let (_, end) = fr[fr.len() - 2];
    let err = verify(&bytes[..end], &opts()).unwrap_err();
    assert!(matches!(err, LogError::Unsealed { .. }), "{err}");
    let v = verify(
        &bytes[..end],
        &VerifyOptions {
            allow_unsealed: true,
            ..opts()
        },
    )
    .unwrap();
    assert!(!v.sealed);
}

#[test]
fn reordering_entries_or_checkpoints_is_detected() {
    let (bytes, _) = write_log("reorder", 10, 5, true, 4);
    let fr = frames(&bytes);
    // Frames: keys, e0..e4, cp0, e5..e9, cp1(seal).
    for (a, b) in [(1, 2), (3, 4), (5, 6), (6, 7), (7, 8), (6, 12), (1, 7)] {
        let mut parts: Vec<&[u8]> = fr.iter().map(|(s, e)| &bytes[*s..*e]).collect();
        parts.swap(a, b);
        let mut out = bytes[..16].to_vec();
        for p in parts {
            out.extend_from_slice(p);
        }
        assert!(
            verify(&out, &opts()).is_err(),
            "swapping frames {a} and {b} went unnoticed"
        );
    }
    // Dropping one entry frame.
    let mut out = bytes[..fr[2].0].to_vec();
    out.extend_from_slice(&bytes[fr[2].1..]);
    let err = verify(&out, &opts()).unwrap_err();
    assert!(matches!(err, LogError::Checkpoint { .. }), "{err}");
}

#[test]
fn a_recomputed_checksum_does_not_hide_an_altered_entry() {
    let (bytes, _) = write_log("recrc", 8, 4, true, 8);
    let fr = frames(&bytes);
    let (s, e) = fr[2]; // entry 1
    let mut b = bytes.clone();
    b[e - 5] ^= 0x20; // the entry's last payload byte
    let c = crc32fast::hash(&b[s..e - 4]);
    b[e - 4..e].copy_from_slice(&c.to_le_bytes());
    let err = verify(&b, &opts()).unwrap_err();
    // The entry still decodes (or not); either way the checkpoint over it disagrees.
    let at = err.location().unwrap();
    assert!(
        at.offset as usize == s || at.what == "checkpoint 0",
        "{err}"
    );
}

#[test]
fn signatures_are_checked_against_trusted_keys() {
    let (bytes, _) = write_log("trusted", 6, 3, true, 8);
    let mine = signer(7).public_keys();
    verify(
        &bytes,
        &VerifyOptions {
            trusted_keys: Some(mine),
            ..opts()
        },
    )
    .unwrap();
    let theirs = signer(8).public_keys();
    let err = verify(
        &bytes,
        &VerifyOptions {
            trusted_keys: Some(theirs),
            ..opts()
        },
    )
    .unwrap_err();
    assert!(matches!(err, LogError::Untrusted { .. }), "{err}");
}

#[test]
fn appending_back_in_time_is_refused_without_writing() {
    let dir = scratch("backwards");
    let path = dir.join("a.log");
    let mut w = AuditWriter::create(&path, signer(1), WriterOptions::default()).unwrap();
    w.append(&sample(5)).unwrap();
    assert!(matches!(
        w.append(&sample(1)),
        Err(LogError::AppendTimeBackwards { .. })
    ));
    assert_eq!(w.entries(), 1);
    w.finish(0).unwrap();
    let v = verify(&std::fs::read(&path).unwrap(), &opts()).unwrap();
    assert_eq!(v.leaves.len(), 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_existing_log_is_never_overwritten() {
    let dir = scratch("exists");
    let path = dir.join("a.log");
    std::fs::write(&path, b"precious").unwrap();
    assert!(AuditWriter::create(&path, signer(1), WriterOptions::default()).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), b"precious");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_forged_signature_with_a_fixed_checksum_is_located_at_its_checkpoint() {
    let (bytes, _) = write_log("forgesig", 6, 3, true, 8);
    let fr = frames(&bytes);
    let sigs = signature_ranges(&bytes, &fr);
    assert_eq!(
        sigs.len(),
        6,
        "three checkpoints (at 3, 6 and the seal), two signatures each"
    );
    for (i, (s, e)) in sigs.iter().enumerate() {
        for pos in [*s, (s + e) / 2, e - 1] {
            let mut b = bytes.clone();
            b[pos] ^= 0x04;
            let (fs, fe) = *fr.iter().find(|(a, z)| *a <= pos && pos < *z).unwrap();
            let c = crc32fast::hash(&b[fs..fe - 4]);
            b[fe - 4..fe].copy_from_slice(&c.to_le_bytes());
            let err = verify(&b, &opts()).unwrap_err();
            assert!(
                matches!(err, LogError::Signature { .. }),
                "signature {i} byte {pos}: {err}"
            );
            assert_eq!(err.location().unwrap().offset as usize, fs);
            assert_eq!(
                err.location().unwrap().what,
                format!("checkpoint {}", i / 2)
            );
        }
    }
}
