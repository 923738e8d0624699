//! Isolation: overlapping regions are refused naming both tenants and the overlap; leakage
//! between placed programs is zero with perfect extinction, positive and within the modelled
//! bound (d·√ℓ)² otherwise, and shows up in the neighbour's field buffer.

use std::collections::BTreeSet;
use xdv_phi::haar::haar_unitary;
use xdv_phi::isolation::{IsolationError, Partition, Region};
use xdv_phi::{Decomposition, Mesh, C64};

fn region(tenant: &str, modes: std::ops::Range<usize>, channels: &[usize]) -> Region {
    Region {
        tenant: tenant.into(),
        modes,
        channels: channels.iter().copied().collect::<BTreeSet<_>>(),
    }
}

fn haar_mesh(n: usize, seed: u64) -> Mesh {
    let d: Decomposition = xdv_phi::decompose(&haar_unitary(n, seed)).unwrap();
    Mesh::from_decomposition(&d)
}

#[test]
fn overlapping_regions_are_refused_with_both_tenants_and_the_overlap() {
    // (regions, expected error or None).
    let cases: Vec<(Vec<Region>, Option<IsolationError>)> = vec![
        (vec![region("a", 0..4, &[0]), region("b", 4..8, &[0])], None),
        (
            vec![region("a", 0..8, &[0, 1]), region("b", 0..8, &[2])],
            None,
        ),
        (
            vec![region("a", 0..5, &[0, 1]), region("b", 3..8, &[1, 2])],
            Some(IsolationError::Overlap {
                first: "a".into(),
                second: "b".into(),
                modes: 3..5,
                channels: vec![1],
            }),
        ),
        (
            vec![
                region("a", 0..2, &[0]),
                region("b", 2..4, &[0]),
                region("c", 1..3, &[0]),
            ],
            Some(IsolationError::Overlap {
                first: "a".into(),
                second: "c".into(),
                modes: 1..2,
                channels: vec![0],
            }),
        ),
        (
            vec![region("a", 0..9, &[0])],
            Some(IsolationError::OutsideDevice {
                tenant: "a".into(),
                start: 0,
                end: 9,
                channel_max: 0,
                modes: 8,
                channels: 4,
            }),
        ),
        (
            vec![region("a", 0..2, &[0]), region("a", 2..4, &[0])],
            Some(IsolationError::DuplicateTenant("a".into())),
        ),
        (
            vec![region("a", 2..2, &[0])],
            Some(IsolationError::Empty {
                tenant: "a".into(),
                start: 2,
                end: 2,
                channels: 1,
            }),
        ),
    ];
    for (regions, want) in cases {
        let got = Partition::new(8, 4, regions.clone()).err();
        assert_eq!(got, want, "{regions:?}");
    }
    let e = Partition::new(
        8,
        4,
        vec![region("alice", 0..5, &[0]), region("bob", 3..8, &[0])],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("alice") && e.contains("bob") && e.contains("3..5"),
        "{e}"
    );
}

#[test]
fn leakage_is_zero_with_perfect_extinction_and_bounded_otherwise() {
    let part = Partition::new(
        12,
        1,
        vec![
            region("a", 0..4, &[0]),
            region("b", 4..9, &[0]),
            region("c", 9..12, &[0]),
        ],
    )
    .unwrap();
    let (ma, mb, mc) = (haar_mesh(4, 1), haar_mesh(5, 2), haar_mesh(3, 3));
    let programs = [(0, &ma), (1, &mb), (2, &mc)];
    let perfect = part.place(&programs, 0.0).unwrap();
    for i in 0..3 {
        for j in 0..3 {
            if i != j {
                assert_eq!(perfect.leakage(i, j), 0.0, "{i} → {j}");
            }
        }
    }
    for ext_db in [-20.0f64, -30.0, -40.0] {
        let l = 10f64.powf(ext_db / 10.0);
        let placed = part.place(&programs, l).unwrap();
        for i in 0..3 {
            let bound = placed.leakage_bound(i);
            assert!(placed.boundary_mzis(i) > 0);
            assert!(bound < 1.0, "the bound is not vacuous at {ext_db} dB");
            for j in 0..3 {
                if i == j {
                    continue;
                }
                let leak = placed.leakage(i, j);
                eprintln!("{ext_db} dB: leakage {i} → {j} = {leak:.3e}, bound {bound:.3e} ({} boundary MZIs)", placed.boundary_mzis(i));
                assert!(
                    leak <= bound,
                    "{ext_db} dB, {i} → {j}: {leak:e} > {bound:e}"
                );
                if i.abs_diff(j) == 1 {
                    assert!(leak > 0.0, "adjacent regions leak at {ext_db} dB");
                }
            }
        }
    }
}

#[test]
fn leaked_light_appears_in_the_neighbours_buffer_and_nowhere_without_it() {
    let part = Partition::new(
        6,
        2,
        vec![region("a", 0..3, &[0, 1]), region("b", 3..6, &[0, 1])],
    )
    .unwrap();
    let (ma, mb) = (haar_mesh(3, 7), haar_mesh(3, 8));
    let l = 1e-3;
    let placed = part.place(&[(0, &ma), (1, &mb)], l).unwrap();
    let mut bufs = part.buffers();
    // Light only in tenant a, channel 1.
    bufs[0].amplitudes[1] = vec![C64::new(0.6, 0.0), C64::new(0.0, 0.8), C64::new(0.0, 0.0)];
    let before = bufs[0].power();
    placed.run(&mut bufs).unwrap();
    let leaked = bufs[1].power();
    assert!(
        leaked > 0.0 && leaked <= placed.leakage_bound(0) * before,
        "{leaked:e}"
    );
    assert!(
        ((bufs[0].power() + leaked) - before).abs() < 1e-12,
        "the mesh is lossless"
    );
    assert!(
        bufs[1].amplitudes[0].iter().all(|a| a.norm() == 0.0),
        "channel 0 stays dark"
    );
    // The placed mesh restricted to tenant a, with perfect extinction, is a's own transform.
    let perfect = part.place(&[(0, &ma), (1, &mb)], 0.0).unwrap();
    let mut solo = vec![C64::new(0.6, 0.0), C64::new(0.0, 0.8), C64::new(0.0, 0.0)];
    ma.apply(&mut solo).unwrap();
    let mut bufs = part.buffers();
    bufs[0].amplitudes[1] = vec![C64::new(0.6, 0.0), C64::new(0.0, 0.8), C64::new(0.0, 0.0)];
    perfect.run(&mut bufs).unwrap();
    for (a, b) in bufs[0].amplitudes[1].iter().zip(&solo) {
        assert!((a - b).norm() < 1e-14);
    }
    assert_eq!(bufs[1].power(), 0.0);
}

#[test]
fn programs_cannot_share_modes_or_miss_their_region() {
    let part =
        Partition::new(4, 2, vec![region("a", 0..4, &[0]), region("b", 0..4, &[1])]).unwrap();
    let m = haar_mesh(4, 1);
    let e = part.place(&[(0, &m), (1, &m)], 1e-3).unwrap_err();
    assert!(matches!(e, IsolationError::SharedModes { .. }), "{e}");
    let small = haar_mesh(3, 1);
    let e = part.place(&[(0, &small)], 1e-3).unwrap_err();
    assert!(matches!(e, IsolationError::ProgramShape { .. }), "{e}");
    assert_eq!(
        part.place(&[(5, &m)], 1e-3).unwrap_err(),
        IsolationError::NoSuchRegion(5)
    );
    // One program alone on shared-mode, channel-separated regions is fine.
    assert!(part.place(&[(0, &m)], 1e-3).is_ok());
}
