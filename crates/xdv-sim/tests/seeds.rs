//! The simulation over many seeds: no invariant ever breaks, every attack is refused, and a seed
//! fully determines the run.

use xdv_sim::{run, SimConfig, SimError, SimReport};

const SEEDS: std::ops::RangeInclusive<u64> = 1..=64;
const OPS: u64 = 3000;
const FULL_CHECK_EVERY: u64 = 50;

fn config(seed: u64, ops: u64) -> SimConfig {
    SimConfig {
        full_check_every: FULL_CHECK_EVERY,
        ..SimConfig::new(seed, ops)
    }
}

fn sim(seed: u64, ops: u64) -> Result<SimReport, SimError> {
    run::<Vec<u8>>(&config(seed, ops), None).map(|(rep, _)| rep)
}

/// Runs `f` over the seeds on all cores; returns the failures, each naming its seed.
fn over_seeds(seeds: &[u64], f: impl Fn(u64) -> Result<(), String> + Sync) -> Vec<String> {
    let n = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(8);
    let chunk = seeds.len().div_ceil(n).max(1);
    std::thread::scope(|s| {
        let workers: Vec<_> = seeds
            .chunks(chunk)
            .map(|c| {
                let f = &f;
                s.spawn(move || {
                    c.iter()
                        .filter_map(|&seed| f(seed).err())
                        .collect::<Vec<String>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a simulation worker panicked"))
            .collect()
    })
}

#[test]
fn many_seeds_keep_every_invariant() {
    let seeds: Vec<u64> = SEEDS.collect();
    let failures = over_seeds(&seeds, |seed| {
        let rep = std::panic::catch_unwind(|| sim(seed, OPS))
            .map_err(|_| format!("seed {seed}: the simulation panicked"))?
            .map_err(|e| format!("seed {seed}: {e}"))?;
        let fail = |what: &str| Err(format!("seed {seed}: {what}: {rep:?}"));
        if rep.seed != seed || rep.ops != OPS || rep.accepted + rep.rejected != OPS {
            return fail("the report does not account for every input");
        }
        if rep.accepted == 0 || rep.rejected == 0 {
            return fail("every input was accepted, or every one rejected");
        }
        if rep.vhms_created == 0 || rep.attacks == 0 {
            return fail("no VHM was created or no attack was generated");
        }
        if rep.vhms_stopped > rep.vhms_created {
            return fail("more VHMs stopped than were created");
        }
        if rep.rejections.values().sum::<u64>() != rep.rejected {
            return fail("rejections by rule do not add up to the rejected inputs");
        }
        Ok(())
    });
    assert!(
        failures.is_empty(),
        "{} of {} seeds failed:\n{}",
        failures.len(),
        seeds.len(),
        failures.join("\n")
    );
}

#[test]
fn the_seeds_exercise_the_whole_core() {
    // Summed over a few seeds, the simulation reaches every kind of work.
    let mut total = SimReport::default();
    for seed in 1..=4 {
        let rep = sim(seed, OPS).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        total.vhms_created += rep.vhms_created;
        total.vhms_stopped += rep.vhms_stopped;
        total.jobs_completed += rep.jobs_completed;
        total.messages += rep.messages;
        total.attacks += rep.attacks;
        total.jobs_waited += rep.jobs_waited;
        total.jobs_woken += rep.jobs_woken;
        total.tokens_revoked += rep.tokens_revoked;
        total.denials += rep.denials;
        for (k, v) in rep.rejections {
            *total.rejections.entry(k).or_insert(0) += v;
        }
    }
    assert!(total.vhms_stopped > 0, "{total:?}");
    assert!(total.jobs_completed > 0, "{total:?}");
    assert!(total.messages > 0, "{total:?}");
    assert!(total.jobs_waited > 0 && total.jobs_woken > 0, "{total:?}");
    assert!(total.tokens_revoked > 0 && total.denials > 0, "{total:?}");
    for rule in [
        "unknown_capability",
        "capability_not_held",
        "capability_revoked",
        "out_of_scope",
        "escalation",
        "quota_exceeded",
        "nested_quota_exceeded",
        "insufficient",
        "window_overlap",
    ] {
        assert!(
            total.rejections.contains_key(rule),
            "seeds 1..=4 never hit the `{rule}` rule: {:?}",
            total.rejections
        );
    }
}

#[test]
fn a_seed_determines_the_run() {
    for seed in [1u64, 17, 4242] {
        let a = sim(seed, 1500).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        let b = sim(seed, 1500).unwrap_or_else(|e| panic!("seed {seed}: {e}"));
        assert_eq!(
            a.state_hash, b.state_hash,
            "seed {seed}: state hashes differ"
        );
        assert_eq!(a, b, "seed {seed}: reports differ");
        // The full-check cadence only adds checks; it does not change the run.
        let c = run::<Vec<u8>>(&SimConfig::new(seed, 1500), None)
            .unwrap_or_else(|e| panic!("seed {seed}: {e}"))
            .0;
        assert_eq!(a, c, "seed {seed}: the check cadence changed the run");
    }
}

#[test]
fn different_seeds_give_different_runs() {
    let reports: Vec<SimReport> = (1..=8u64)
        .map(|seed| sim(seed, 1000).unwrap_or_else(|e| panic!("seed {seed}: {e}")))
        .collect();
    for (i, a) in reports.iter().enumerate() {
        for b in &reports[i + 1..] {
            assert_ne!(
                a.state_hash, b.state_hash,
                "seeds {} and {} reached the same state",
                a.seed, b.seed
            );
        }
    }
}
