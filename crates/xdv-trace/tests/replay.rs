//! Replay of simulation traces: a faithful trace verifies and reproduces the simulation's state
//! hash; any altered, cut, extended or re-versioned trace is refused with an error (never a panic,
//! never `Ok`); a trace whose recorded decisions differ from the core's is a divergence.

use std::panic::{catch_unwind, AssertUnwindSafe};
use xdv_core::{Core, Event, Genesis, Input, Outcome, Rejection};
use xdv_sim::{SimConfig, SimReport};
use xdv_trace::{
    read_genesis, replay, ReplayOptions, ReplayReport, TraceError, TraceWriter, MAGIC, VERSION,
};

const SEED: u64 = 7;
const OPS: u64 = 300;
const INTERVAL: u32 = 100;

/// The genesis the simulation starts from (taken from a run of no inputs, so that it stays right
/// whatever machine and limits the simulation uses).
fn genesis(cfg: &SimConfig) -> Genesis {
    let none = SimConfig {
        ops: 0,
        ..cfg.clone()
    };
    let (_, core) = xdv_sim::run::<Vec<u8>>(&none, None).expect("a run of no inputs");
    core.genesis().clone()
}

/// Runs the simulation with a trace writer and returns the sealed trace and the report.
fn sim_trace(seed: u64, ops: u64, interval: u32) -> (Vec<u8>, SimReport) {
    let cfg = SimConfig::new(seed, ops);
    let mut w = TraceWriter::new(Vec::new(), &genesis(&cfg), interval).expect("header");
    let (rep, core) = xdv_sim::run(&cfg, Some(&mut w))
        .unwrap_or_else(|e| panic!("seed {seed}: simulation failed: {e}"));
    assert_eq!(w.inputs(), ops);
    let bytes = w.finish(&core).expect("seal");
    (bytes, rep)
}

fn strict() -> ReplayOptions {
    ReplayOptions::default()
}

fn unsealed() -> ReplayOptions {
    ReplayOptions {
        allow_unsealed: true,
        ..ReplayOptions::default()
    }
}

/// A record of the trace, found by parsing the framing independently of the crate's reader.
#[derive(Clone, Debug)]
struct Record {
    tag: u8,
    start: usize,
    end: usize,
    /// For input records, the encoded input.
    input: Option<std::ops::Range<usize>>,
}

/// The header's length and the records, per docs/trace-format.md.
fn parse(bytes: &[u8]) -> (usize, Vec<Record>) {
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap()) as usize;
    assert_eq!(&bytes[..8], MAGIC);
    let glen = u32_at(14);
    let header = 18 + glen + 32;
    let mut records = Vec::new();
    let mut pos = header;
    while pos < bytes.len() {
        let tag = bytes[pos];
        let (end, input) = match tag {
            1 => {
                let (il, ol) = (u32_at(pos + 1), u32_at(pos + 5));
                (pos + 9 + il + ol + 32, Some(pos + 9..pos + 9 + il))
            }
            2 | 3 => (pos + 1 + 8 + 32 + 32, None),
            t => panic!("unexpected tag {t} at {pos}"),
        };
        records.push(Record {
            tag,
            start: pos,
            end,
            input,
        });
        pos = end;
    }
    assert_eq!(pos, bytes.len(), "records do not tile the trace");
    (header, records)
}

fn inputs_of(bytes: &[u8]) -> Vec<Input> {
    let (_, records) = parse(bytes);
    records
        .iter()
        .filter_map(|r| r.input.clone())
        .map(|range| postcard::from_bytes(&bytes[range]).expect("recorded input decodes"))
        .collect()
}

/// Re-writes a trace from its inputs with a hook that may alter each outcome before it is recorded
/// and may choose the core whose digest is recorded.
fn rewrite(
    genesis: &Genesis,
    inputs: &[Input],
    interval: u32,
    mut tamper: impl FnMut(u64, &mut Outcome),
) -> Vec<u8> {
    let mut core = Core::new(genesis.clone());
    let mut w = TraceWriter::new(Vec::new(), genesis, interval).expect("header");
    let mut out = Outcome::default();
    for (i, input) in inputs.iter().enumerate() {
        core.apply(input, &mut out);
        let mut recorded = out.clone();
        tamper(i as u64, &mut recorded);
        w.append(input, &recorded, &core).expect("append");
    }
    w.finish(&core).expect("seal")
}

/// Replays without letting a panic escape: `Err` describes the panic.
fn try_replay(
    bytes: &[u8],
    opts: ReplayOptions,
) -> Result<Result<ReplayReport, TraceError>, String> {
    catch_unwind(AssertUnwindSafe(|| replay(bytes, opts).map(|(rep, _)| rep))).map_err(|p| {
        p.downcast_ref::<String>()
            .cloned()
            .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default()
    })
}

/// Runs `f` over `items` on all cores and collects what it reports (failures).
fn parallel<T: Sync, R: Send>(items: &[T], f: impl Fn(&T) -> Option<R> + Sync) -> Vec<R> {
    let n = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(8);
    let chunk = items.len().div_ceil(n).max(1);
    std::thread::scope(|s| {
        let workers: Vec<_> = items
            .chunks(chunk)
            .map(|c| s.spawn(|| c.iter().filter_map(&f).collect::<Vec<R>>()))
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a worker panicked outside replay"))
            .collect()
    })
}

#[test]
fn replay_verifies_and_reproduces_the_simulation() {
    let (bytes, sim) = sim_trace(SEED, OPS, INTERVAL);
    let (rep, core) = replay(&bytes, strict()).expect("a faithful trace verifies");
    assert_eq!(rep.inputs, OPS);
    assert_eq!(rep.accepted, sim.accepted);
    assert_eq!(rep.rejected, sim.rejected);
    assert!(rep.accepted > 0 && rep.rejected > 0, "{rep:?}");
    assert!(rep.sealed);
    // A digest record every INTERVAL inputs, and the seal.
    assert_eq!(rep.digests, OPS / u64::from(INTERVAL) + 1);
    let (_, records) = parse(&bytes);
    assert_eq!(
        records.iter().filter(|r| r.tag == 2).count() as u64,
        OPS / u64::from(INTERVAL)
    );
    assert_eq!(records.last().map(|r| r.tag), Some(3));
    assert_eq!(rep.state_hash, sim.state_hash);
    assert_eq!(core.state_digest(), sim.state_hash);
    assert_eq!(
        read_genesis(&bytes).expect("genesis"),
        genesis(&SimConfig::new(SEED, OPS))
    );
    // The full invariant checker agrees with every recorded step.
    let opts = ReplayOptions {
        check_invariants: true,
        ..ReplayOptions::default()
    };
    let (rep2, _) = replay(&bytes, opts).expect("invariants hold on replay");
    assert_eq!(rep2, rep);
    // The writer is deterministic: the same inputs give the same bytes.
    let again = rewrite(
        &read_genesis(&bytes).expect("genesis"),
        &inputs_of(&bytes),
        INTERVAL,
        |_, _| {},
    );
    assert!(
        again == bytes,
        "re-writing the same inputs gave different bytes"
    );
}

#[test]
fn flipping_any_sampled_byte_is_detected() {
    let (bytes, _) = sim_trace(SEED, OPS, INTERVAL);
    let (header, _) = parse(&bytes);
    // Every 7th byte across the header and the records, and the last byte; alternately every bit
    // of the byte and only its lowest bit.
    let mut offsets: Vec<usize> = (0..bytes.len()).step_by(7).collect();
    offsets.push(bytes.len() - 1);
    assert!(
        offsets.len() > 1000,
        "trace too small: {} bytes",
        bytes.len()
    );
    assert!(offsets.iter().any(|&o| o < header));
    let failures = parallel(&offsets, |&o| {
        let mask = if o % 2 == 0 { 0xff } else { 0x01 };
        let mut t = bytes.clone();
        t[o] ^= mask;
        match try_replay(&t, strict()) {
            Ok(Err(_)) => None,
            Ok(Ok(rep)) => Some(format!("byte {o} ^ {mask:#04x}: verified {rep:?}")),
            Err(p) => Some(format!("byte {o} ^ {mask:#04x}: replay panicked: {p}")),
        }
    });
    assert!(
        failures.is_empty(),
        "{} altered traces were not refused:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every byte of the header, set to every other value, must be refused: the header is as much a
/// part of the trace as the records.
#[test]
fn every_value_of_every_header_byte_is_detected() {
    let (bytes, _) = sim_trace(SEED, OPS, INTERVAL);
    let (header, _) = parse(&bytes);
    let offsets: Vec<usize> = (0..header).collect();
    let failures = parallel(&offsets, |&o| {
        let mut bad = Vec::new();
        for mask in 1..=255u8 {
            let mut t = bytes.clone();
            t[o] ^= mask;
            match try_replay(&t, strict()) {
                Ok(Err(_)) => {}
                Ok(Ok(_)) => bad.push(format!("byte {o} = {} verified", t[o])),
                Err(p) => bad.push(format!("byte {o} = {}: replay panicked: {p}", t[o])),
            }
        }
        (!bad.is_empty()).then(|| bad.join("; "))
    });
    assert!(
        failures.is_empty(),
        "header alterations were not refused:\n{}",
        failures.join("\n")
    );
}

#[test]
fn specific_header_faults_are_named() {
    let (bytes, _) = sim_trace(SEED, 20, INTERVAL);
    let mut t = bytes.clone();
    t[0] = b'Y';
    assert!(matches!(replay(&t, strict()), Err(TraceError::BadMagic)));
    assert!(matches!(
        replay(b"not a trace at all", strict()),
        Err(TraceError::BadMagic)
    ));
    let mut t = bytes.clone();
    t[8..10].copy_from_slice(&(VERSION + 1).to_le_bytes());
    assert!(matches!(
        replay(&t, strict()),
        Err(TraceError::UnsupportedVersion { found }) if found == VERSION + 1
    ));
    t[8..10].copy_from_slice(&0u16.to_le_bytes());
    assert!(matches!(
        replay(&t, strict()),
        Err(TraceError::UnsupportedVersion { found: 0 })
    ));
    let mut t = bytes.clone();
    t[10..14].copy_from_slice(&0u32.to_le_bytes());
    assert!(matches!(
        replay(&t, strict()),
        Err(TraceError::Corrupt { offset: 10, .. })
    ));
    let mut t = bytes.clone();
    t[14..18].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        replay(&t, strict()),
        Err(TraceError::Corrupt { offset: 14, .. })
    ));
    // A genesis byte altered: the seed no longer matches, or the genesis no longer decodes.
    let mut t = bytes.clone();
    t[40] ^= 0x10;
    let e = replay(&t, strict())
        .map(|r| r.0)
        .expect_err("altered genesis");
    assert!(
        matches!(
            e,
            TraceError::ChainMismatch { .. } | TraceError::Corrupt { .. }
        ),
        "{e}"
    );
    assert!(read_genesis(&t).is_err());
}

#[test]
fn appended_garbage_is_trailing_data() {
    let (bytes, _) = sim_trace(SEED, 50, 10);
    for extra in [
        &[0u8][..],
        &[3],
        &[1, 2, 3, 4],
        &bytes[..100],
        &bytes[bytes.len() - 73..],
    ] {
        let mut t = bytes.clone();
        t.extend_from_slice(extra);
        match replay(&t, strict()) {
            Err(TraceError::TrailingData { offset }) => assert_eq!(offset, bytes.len() as u64),
            other => panic!("{} extra bytes: {:?}", extra.len(), other.map(|r| r.0)),
        }
    }
}

/// `allow_unsealed` accepts a trace that stops before its seal; a trace that has a seal is complete,
/// so bytes after it are still extra data, not a torn last record.
#[test]
fn appended_garbage_after_a_seal_is_refused_even_when_unsealed_traces_are_allowed() {
    let (bytes, _) = sim_trace(SEED, 50, 10);
    for extra in [
        &[0u8][..],
        &[1, 2, 3, 4],
        &bytes[bytes.len() - 73..bytes.len() - 1],
    ] {
        let mut t = bytes.clone();
        t.extend_from_slice(extra);
        let r = replay(&t, unsealed()).map(|r| r.0);
        assert!(
            matches!(r, Err(TraceError::TrailingData { .. })),
            "{} bytes after the seal with allow_unsealed: {r:?}",
            extra.len()
        );
    }
}

#[test]
fn truncation_is_detected_and_boundaries_verify_the_prefix() {
    const OPS_T: u64 = 150;
    let (bytes, _) = sim_trace(SEED, OPS_T, 50);
    let (header, records) = parse(&bytes);
    let boundaries: Vec<usize> = std::iter::once(header)
        .chain(records.iter().map(|r| r.end))
        .collect();
    // Inputs in the complete records before a cut.
    let inputs_before = |cut: usize| {
        records
            .iter()
            .filter(|r| r.tag == 1 && r.end <= cut)
            .count() as u64
    };
    let mut cuts: Vec<usize> = (0..bytes.len()).step_by(7).collect();
    cuts.extend(boundaries.iter().copied());
    cuts.extend(
        records
            .iter()
            .step_by(5)
            .flat_map(|r| [r.start + 1, r.start + 9, r.end - 32, r.end - 1]),
    );
    cuts.sort_unstable();
    cuts.dedup();
    cuts.retain(|&c| c < bytes.len());
    let failures = parallel(&cuts, |&cut| {
        let t = &bytes[..cut];
        let at_boundary = boundaries.contains(&cut);
        let strict_r = match try_replay(t, strict()) {
            Err(p) => return Some(format!("cut at {cut}: replay panicked: {p}")),
            Ok(r) => r,
        };
        match &strict_r {
            Err(TraceError::Unsealed { inputs, offset })
                if at_boundary && *inputs == inputs_before(cut) && *offset == cut as u64 => {}
            Err(TraceError::Truncated { offset: 0, .. }) if cut < header => {}
            Err(TraceError::Truncated { .. }) | Err(TraceError::ChainMismatch { .. })
                if !at_boundary && cut >= header => {}
            other => {
                return Some(format!(
                    "cut at {cut} (boundary: {at_boundary}): {:?}",
                    other.as_ref().map(|r| r.inputs)
                ))
            }
        }
        let r = match try_replay(t, unsealed()) {
            Err(p) => return Some(format!("cut at {cut}, unsealed: replay panicked: {p}")),
            Ok(r) => r,
        };
        match r {
            // A header cut short is never acceptable.
            Err(TraceError::Truncated { offset: 0, .. }) if cut < header => None,
            // A cut inside a record: refused, or the complete records before it verified.
            Err(TraceError::Truncated { .. }) if !at_boundary && cut >= header => None,
            Ok(rep) if cut >= header && rep.inputs == inputs_before(cut) && !rep.sealed => None,
            other => Some(format!(
                "cut at {cut} (boundary: {at_boundary}), unsealed: {:?}",
                other.map(|r| r.inputs)
            )),
        }
    });
    assert!(
        failures.is_empty(),
        "{} truncations misjudged:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // A verified prefix is the state the simulation reached after as many inputs.
    for &k in &[0u64, 1, 49, 50, 101] {
        let cut = *boundaries
            .iter()
            .find(|&&b| inputs_before(b) == k)
            .expect("a boundary after k inputs");
        let rep = replay(&bytes[..cut], unsealed())
            .expect("a prefix verifies")
            .0;
        assert_eq!(rep.inputs, k);
        let cfg = SimConfig::new(SEED, k);
        let expected = if k == 0 {
            Core::new(genesis(&cfg)).state_digest()
        } else {
            xdv_sim::run::<Vec<u8>>(&cfg, None)
                .expect("prefix simulation")
                .0
                .state_hash
        };
        assert_eq!(rep.state_hash, expected, "prefix of {k} inputs");
    }
}

#[test]
fn a_recorded_outcome_that_differs_is_a_divergence() {
    let (bytes, _) = sim_trace(SEED, OPS, INTERVAL);
    let g = read_genesis(&bytes).expect("genesis");
    let inputs = inputs_of(&bytes);
    // Kinds of difference: an extra event, a missing event, a rejection of an accepted input, an
    // acceptance of a rejected one, a different rejection.
    for at in [0u64, 1, 42, 150, OPS - 1] {
        let t = rewrite(&g, &inputs, INTERVAL, |i, out| {
            if i == at {
                out.events.push(Event::Ticked { tick: 12_345 });
            }
        });
        match replay(&t, strict()) {
            Err(TraceError::Divergence {
                seq,
                recorded,
                replayed,
                ..
            }) => {
                assert_eq!(seq, at);
                assert!(recorded.contains("12345"), "{recorded}");
                assert!(!replayed.contains("12345"), "{replayed}");
            }
            other => panic!("tampered outcome {at}: {:?}", other.map(|r| r.0)),
        }
    }
    let flip = |out: &mut Outcome| {
        if out.accepted() {
            out.effects.clear();
            out.events.clear();
            out.rejection = Some(Rejection::SameVhm);
        } else if out.rejection == Some(Rejection::SameVhm) {
            out.rejection = Some(Rejection::TicksOutOfRange { ticks: 0, max: 0 });
        } else {
            out.rejection = None;
        }
    };
    for at in [3u64, 77, 200] {
        let t = rewrite(&g, &inputs, INTERVAL, |i, out| {
            if i == at {
                flip(out);
            }
        });
        assert!(
            matches!(replay(&t, strict()), Err(TraceError::Divergence { seq, .. }) if seq == at),
            "decision flipped at {at}"
        );
    }
    // An outcome with its events reordered.
    let at = inputs
        .iter()
        .enumerate()
        .find(|(_, i)| matches!(i, Input::Command { .. }))
        .map(|(i, _)| i as u64)
        .expect("a command");
    let t = rewrite(&g, &inputs, INTERVAL, |i, out| {
        if i >= at && out.events.len() >= 2 && out.events[0] != out.events[1] {
            out.events.swap(0, 1);
        }
    });
    assert!(matches!(
        replay(&t, strict()),
        Err(TraceError::Divergence { .. })
    ));
}

#[test]
fn a_recorded_digest_that_differs_is_a_digest_mismatch() {
    let (bytes, _) = sim_trace(SEED, 120, 50);
    let g = read_genesis(&bytes).expect("genesis");
    let inputs = inputs_of(&bytes);
    // Record the digests of a core that has seen one extra tick.
    let mut core = Core::new(g.clone());
    let mut other = Core::new(g.clone());
    let mut out = Outcome::default();
    other.apply(&Input::Tick { ticks: 1 }, &mut out);
    let mut w = TraceWriter::new(Vec::new(), &g, 50).expect("header");
    for input in &inputs {
        core.apply(input, &mut out);
        let recorded = out.clone();
        other.apply(input, &mut out);
        w.append(input, &recorded, &other).expect("append");
    }
    let t = w.finish(&other).expect("seal");
    match replay(&t, strict()) {
        Err(TraceError::DigestMismatch {
            seq,
            recorded,
            replayed,
            ..
        }) => {
            assert_eq!(seq, 50);
            assert_ne!(recorded, replayed);
        }
        other => panic!("{:?}", other.map(|r| r.0)),
    }
}

#[test]
fn removed_or_reordered_records_break_the_chain() {
    let (bytes, _) = sim_trace(SEED, 60, 20);
    let (header, records) = parse(&bytes);
    // Remove one record (input, digest).
    for r in [&records[5], &records[20], &records[records.len() - 2]] {
        let mut t = bytes[..r.start].to_vec();
        t.extend_from_slice(&bytes[r.end..]);
        let e = replay(&t, strict())
            .map(|r| r.0)
            .expect_err("removal detected");
        assert!(
            matches!(e, TraceError::ChainMismatch { .. }),
            "removing the record at {}: {e}",
            r.start
        );
    }
    // Swap two adjacent input records.
    let (a, b) = (&records[3], &records[4]);
    assert_eq!((a.tag, b.tag), (1, 1));
    let mut t = bytes[..a.start].to_vec();
    t.extend_from_slice(&bytes[b.start..b.end]);
    t.extend_from_slice(&bytes[a.start..a.end]);
    t.extend_from_slice(&bytes[b.end..]);
    assert!(matches!(
        replay(&t, strict()).map(|r| r.0),
        Err(TraceError::ChainMismatch { seq: 3, .. })
    ));
    // A record from another trace with the same genesis does not splice in.
    let (other, _) = sim_trace(SEED + 1, 60, 20);
    let (oh, orecs) = parse(&other);
    assert_eq!(oh, header);
    // Splice right after the first record where the two traces differ: the other trace's next
    // record is chained to a history this trace does not have.
    let i = records
        .iter()
        .zip(&orecs)
        .position(|(a, b)| bytes[a.start..a.end] != other[b.start..b.end])
        .expect("two seeds give different traces");
    let mut t = bytes[..records[i].end].to_vec();
    t.extend_from_slice(&other[orecs[i + 1].start..]);
    let e = replay(&t, strict())
        .map(|r| r.0)
        .expect_err("a spliced trace");
    assert!(matches!(e, TraceError::ChainMismatch { .. }), "{e}");
}

#[test]
fn many_seeds_replay_to_the_simulations_hash() {
    for seed in 1..=6u64 {
        let (bytes, sim) = sim_trace(seed, 150, 25);
        let rep = replay(&bytes, strict())
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"))
            .0;
        assert_eq!(rep.state_hash, sim.state_hash, "seed {seed}");
        assert_eq!(rep.digests, 150 / 25 + 1, "seed {seed}");
    }
}
