//! The example guests (built from `examples/guests` into `target/guests`) reach their known
//! answers, computed here independently, and give the same result whatever the slicing.
//!
//! These tests need the guests built; when one is missing they fail with the command that
//! builds it (`cargo xtask guests`), never skip.

use std::path::PathBuf;
use xdv_k::{EngineLimits, Exit, GuestReport, Limits, RunConfig, Sandbox};

fn guest_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/guests/wasm32-wasip1/release")
        .join(format!("{name}.wasm"))
}

fn run_guest(name: &str, fuel_per_slice: u64) -> GuestReport {
    let path = guest_path(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}\nthe example guests are not built: run `cargo xtask guests` (or: rustup target add wasm32-wasip1 && cargo build --manifest-path examples/guests/Cargo.toml --target wasm32-wasip1 --release --target-dir target/guests)",
            path.display()
        )
    });
    let sb = Sandbox::new(EngineLimits::default()).unwrap();
    let guest = sb.compile(&bytes).expect("the guest compiles");
    let cfg = RunConfig {
        limits: Limits {
            fuel_per_slice,
            ..Limits::default()
        },
        ..RunConfig::default()
    };
    let r = sb.run(&guest, &cfg).unwrap();
    assert_eq!(
        r.exit,
        Exit::Ok,
        "{name}: {:?}\nstderr: {}",
        r.trap,
        String::from_utf8_lossy(&r.stderr)
    );
    r
}

fn result_json(r: &GuestReport) -> serde_json::Value {
    let text = String::from_utf8_lossy(&r.stdout);
    let line = text.lines().last().expect("the guest printed its result");
    serde_json::from_str(line).expect("the result line is JSON")
}

/// The lowest eigenvalue of a real symmetric 4×4 matrix (cyclic Jacobi rotations).
// The rotations read as the textbook's index formulas.
#[allow(clippy::needless_range_loop)]
fn lowest_eigenvalue(mut a: [[f64; 4]; 4]) -> f64 {
    for _ in 0..100 {
        for p in 0..4 {
            for q in p + 1..4 {
                if a[p][q].abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q][q] - a[p][p]) / (2.0 * a[p][q]);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..4 {
                    let (akp, akq) = (a[k][p], a[k][q]);
                    a[k][p] = c * akp - s * akq;
                    a[k][q] = s * akp + c * akq;
                }
                for k in 0..4 {
                    let (apk, aqk) = (a[p][k], a[q][k]);
                    a[p][k] = c * apk - s * aqk;
                    a[q][k] = s * apk + c * aqk;
                }
            }
        }
    }
    (0..4).map(|i| a[i][i]).fold(f64::INFINITY, f64::min)
}

/// The H₂ Hamiltonian of the guest (parity mapping, two-qubit reduction, STO-3G, 0.735 Å) as a
/// 4×4 matrix over |q1 q0⟩, built from its Pauli terms here.
fn h2_matrix() -> [[f64; 4]; 4] {
    let (c_ii, c_iz, c_zi, c_zz, c_xx) = (
        -1.052373245772859,
        0.39793742484318045,
        -0.39793742484318045,
        -0.01128010425623538,
        0.18093119978423156,
    );
    let z = |bit: usize| if bit == 0 { 1.0 } else { -1.0 };
    let mut m = [[0.0; 4]; 4];
    for (i, row) in m.iter_mut().enumerate() {
        let (q0, q1) = (i & 1, i >> 1);
        row[i] = c_ii + c_iz * z(q0) + c_zi * z(q1) + c_zz * z(q0) * z(q1);
        // XX flips both qubits.
        row[i ^ 3] += c_xx;
    }
    m
}

#[test]
fn vqe_h2_reaches_the_ground_state_energy() {
    let r = run_guest("vqe-h2", 1_000_000);
    let doc = result_json(&r);
    let nuclear = doc["nuclear_repulsion_ha"].as_f64().unwrap();
    assert!((nuclear - 0.7199689944489797).abs() < 1e-15);
    let exact = lowest_eigenvalue(h2_matrix()) + nuclear;
    let e = doc["energy_total_ha"].as_f64().unwrap();
    // The literature value, and chemical accuracy (1.6 mHa) against the exact diagonalisation.
    assert!(
        (exact - (-1.137306)).abs() < 1e-5,
        "exact ground state {exact}"
    );
    assert!((e - exact).abs() < 1.6e-3, "VQE {e} vs exact {exact}");
    assert!((e - (-1.137)).abs() < 1.6e-3, "VQE {e} vs −1.137 Ha");
    // The variational principle: never below the exact ground state.
    assert!(e >= exact - 1e-9, "VQE {e} below the ground state {exact}");
    assert_eq!(r.jobs.len() as u64, doc["evaluations"].as_u64().unwrap());
    assert!(r.jobs.iter().all(|j| j.ok));
}

#[test]
fn vqe_h2_does_not_depend_on_slicing() {
    let a = run_guest("vqe-h2", 1_000_000);
    for slice in [10_007u64, 250_000, u64::MAX / 2] {
        let b = run_guest("vqe-h2", slice);
        assert_eq!(a.fuel_consumed, b.fuel_consumed, "slice {slice}");
        assert_eq!(a.stdout, b.stdout, "slice {slice}");
        assert_eq!(a.jobs, b.jobs, "slice {slice}");
        assert_eq!(a.log, b.log, "slice {slice}");
    }
}

/// The Max-Cut of the guest's graph by brute force over all 2⁵ partitions.
fn brute_force_max_cut(nodes: usize, edges: &[(usize, usize)]) -> usize {
    (0u32..1 << nodes)
        .map(|s| {
            edges
                .iter()
                .filter(|(i, j)| (s >> i) & 1 != (s >> j) & 1)
                .count()
        })
        .max()
        .unwrap_or(0)
}

#[test]
fn qaoa_finds_the_max_cut() {
    let r = run_guest("qaoa-maxcut", 1_000_000);
    let doc = result_json(&r);
    let nodes = doc["graph"]["nodes"].as_u64().unwrap() as usize;
    let edges: Vec<(usize, usize)> = doc["graph"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e[0].as_u64().unwrap() as usize,
                e[1].as_u64().unwrap() as usize,
            )
        })
        .collect();
    let best = brute_force_max_cut(nodes, &edges);
    assert_eq!(doc["best_cut"].as_u64().unwrap() as usize, best, "{doc}");
    // The reported bit string really cuts that many edges.
    let key = doc["best_bitstring"].as_str().unwrap();
    let bits: Vec<bool> = key.chars().rev().map(|c| c == '1').collect();
    let cut = edges.iter().filter(|(i, j)| bits[*i] != bits[*j]).count();
    assert_eq!(cut, best);
    // QAOA beats a random partition (expected cut |E|/2) and stays below the optimum.
    let expected = doc["expected_cut"].as_f64().unwrap();
    assert!(expected > edges.len() as f64 / 2.0 + 0.5, "{expected}");
    assert!(expected <= best as f64 + 1e-9);
}
