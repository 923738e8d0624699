//! The mesh compiler and the mesh: Clements reconstruction on Haar-random unitaries of many sizes,
//! closed forms (balanced MZI, DFT, identity), element-by-element application against the
//! transfer matrix and against products of explicit 2 × 2 blocks, and unitarity refusal.

use num_complex::Complex;
use std::f64::consts::PI;
use xdv_phi::clements::{decompose, Decomposition, UNITARITY_TOLERANCE};
use xdv_phi::haar::haar_unitary;
use xdv_phi::mesh::{Element, Mesh};
use xdv_phi::mzi::{bs_matrix, mzi_matrix, Mzi};
use xdv_phi::{Matrix, PhiError, C64};

fn c(re: f64, im: f64) -> C64 {
    Complex::new(re, im)
}

/// The N × N matrix of a 2 × 2 block on modes (m, m+1), built independently of the mesh code.
fn embed(n: usize, m: usize, b: [[C64; 2]; 2]) -> Matrix {
    let mut e = Matrix::identity(n);
    e.set(m, m, b[0][0]);
    e.set(m, m + 1, b[0][1]);
    e.set(m + 1, m, b[1][0]);
    e.set(m + 1, m + 1, b[1][1]);
    e
}

/// D · T_{K−1} ⋯ T_0 by explicit dense products (the documented composition).
fn compose_dense(d: &Decomposition) -> Matrix {
    let n = d.modes;
    let mut u = Matrix::identity(n);
    for z in &d.mzis {
        u = embed(n, z.modes[0], mzi_matrix(z.theta, z.phi)).mul(&u);
    }
    let mut dm = Matrix::zeros(n);
    for (k, p) in d.output_phases.iter().enumerate() {
        dm.set(k, k, C64::from_polar(1.0, *p));
    }
    dm.mul(&u)
}

fn check_decomposition(u: &Matrix, tol: f64) -> Decomposition {
    let n = u.n();
    let d = decompose(u).expect("a unitary decomposes");
    assert_eq!(d.modes, n);
    assert_eq!(d.mzis.len(), n * (n - 1) / 2, "N(N−1)/2 MZIs");
    assert_eq!(d.output_phases.len(), n);
    for z in &d.mzis {
        assert_eq!(z.modes[1], z.modes[0] + 1);
        assert!(z.modes[1] < n);
        assert!(z.theta.is_finite() && z.phi.is_finite());
    }
    let err = d.reconstruct().max_abs_diff(u);
    assert!(
        err <= tol,
        "N = {n}: reconstruction error {err:e} > {tol:e}"
    );
    d
}

#[test]
fn haar_unitaries_are_unitary_and_seeded() {
    for n in [1, 2, 5, 64] {
        let u = haar_unitary(n, 7);
        assert!(
            u.unitarity_deviation() < 1e-13,
            "N = {n}: {}",
            u.unitarity_deviation()
        );
        assert_eq!(u, haar_unitary(n, 7), "same seed, same matrix");
        if n > 1 {
            assert_ne!(u, haar_unitary(n, 8), "another seed, another matrix");
        }
    }
}

#[test]
fn haar_statistics_look_haar() {
    // For Haar U (N × N), E|U_ij|² = 1/N and E|U_ij|⁴ = 2/(N(N+1)).
    let n = 4;
    let (mut m2, mut m4) = (0.0, 0.0);
    let trials = 2000;
    for seed in 0..trials {
        let u = haar_unitary(n, seed);
        let p = u.get(1, 2).norm_sqr();
        m2 += p;
        m4 += p * p;
    }
    m2 /= trials as f64;
    m4 /= trials as f64;
    assert!((m2 - 0.25).abs() < 0.02, "E|U|² = {m2}");
    assert!((m4 - 0.1).abs() < 0.015, "E|U|⁴ = {m4}");
}

#[test]
fn reconstruction_on_haar_unitaries_of_many_sizes() {
    for (n, seed) in [
        (1, 1),
        (2, 2),
        (3, 3),
        (4, 4),
        (5, 5),
        (7, 7),
        (8, 8),
        (16, 16),
        (33, 33),
        (64, 64),
        (256, 256),
    ] {
        let u = haar_unitary(n, seed);
        let d = check_decomposition(&u, 1e-12);
        if n <= 16 {
            // The documented composition, by dense products independent of the mesh code.
            let err = compose_dense(&d).max_abs_diff(&u);
            assert!(err < 1e-12, "N = {n}: dense composition differs by {err:e}");
        }
    }
}

#[test]
fn dft_decomposes_and_reconstructs() {
    for n in [2, 3, 4, 6, 8, 16, 31] {
        check_decomposition(&Matrix::dft(n), 1e-12);
    }
}

#[test]
fn identity_gives_an_identity_mesh() {
    for n in [1, 2, 5, 10] {
        let d = check_decomposition(&Matrix::identity(n), 1e-14);
        // Every MZI in the bar state (θ = 0), so the mesh permutes nothing.
        for z in &d.mzis {
            assert!(z.theta.abs() < 1e-14, "θ = {}", z.theta);
        }
        let mut field: Vec<C64> = (0..n).map(|k| c(k as f64 + 1.0, -(k as f64))).collect();
        let before = field.clone();
        d.mesh().apply(&mut field).unwrap();
        for (a, b) in field.iter().zip(&before) {
            assert!((a - b).norm() < 1e-14);
        }
    }
}

#[test]
fn permutations_and_phases_decompose() {
    // A reversal (anti-identity) with phases, and a diagonal of phases.
    let n = 6;
    let mut p = Matrix::zeros(n);
    let mut dg = Matrix::zeros(n);
    for k in 0..n {
        p.set(k, n - 1 - k, C64::from_polar(1.0, 0.3 * k as f64));
        dg.set(k, k, C64::from_polar(1.0, -1.1 * k as f64));
    }
    check_decomposition(&p, 1e-13);
    check_decomposition(&dg, 1e-13);
}

#[test]
fn balanced_mzi_splits_power_equally() {
    for phi in [0.0, 0.7, -2.0, PI] {
        let mesh_in = |a: C64, b: C64| {
            let mut f = vec![a, b];
            Mzi::new(0, PI / 4.0, phi).apply(&mut f);
            f
        };
        for f in [
            mesh_in(c(1.0, 0.0), c(0.0, 0.0)),
            mesh_in(c(0.0, 0.0), c(0.0, 1.0)),
        ] {
            assert!(
                (f[0].norm_sqr() - 0.5).abs() < 1e-15 && (f[1].norm_sqr() - 0.5).abs() < 1e-15,
                "{f:?}"
            );
        }
    }
    // The 50:50 beam splitter too.
    let b = bs_matrix(PI / 4.0);
    assert!((b[0][0].norm_sqr() - 0.5).abs() < 1e-15 && (b[1][0].norm_sqr() - 0.5).abs() < 1e-15);
}

#[test]
fn mzi_matches_its_closed_form() {
    let (theta, phi) = (0.37, -1.2);
    let t = mzi_matrix(theta, phi);
    let e = C64::from_polar(1.0, phi);
    let expect = [
        [e * theta.cos(), c(-theta.sin(), 0.0)],
        [e * theta.sin(), c(theta.cos(), 0.0)],
    ];
    for r in 0..2 {
        for k in 0..2 {
            assert!((t[r][k] - expect[r][k]).norm() < 1e-15);
        }
    }
    // Cross state θ = π/2 swaps the modes (with a sign).
    let mut f = vec![c(1.0, 0.0), c(0.0, 0.0)];
    Mzi::new(0, PI / 2.0, 0.0).apply(&mut f);
    assert!(f[0].norm() < 1e-15 && (f[1].norm() - 1.0).abs() < 1e-15);
}

#[test]
fn mesh_application_equals_transfer_matrix_and_dense_products() {
    let n = 9;
    let mut mesh = Mesh::new(n);
    let mut dense = Matrix::identity(n);
    let mut seed = 12345u64;
    let mut next = || {
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    for k in 0..60 {
        let m = (next() * (n - 1) as f64) as usize;
        let (a, b) = (next() * 2.0 * PI, next() * 2.0 * PI);
        let (el, block) = match k % 4 {
            0 => (
                Element::mzi(&Mzi::new(m, a, b)),
                embed(n, m, mzi_matrix(a, b)),
            ),
            1 => (Element::bs(m, a), embed(n, m, bs_matrix(a))),
            2 => {
                let mut d = Matrix::identity(n);
                d.set(m, m, C64::from_polar(1.0, a));
                (Element::phase(m, a), d)
            }
            _ => {
                let f = next();
                let mut d = Matrix::identity(n);
                d.set(m, m, c(f, 0.0));
                (Element::Scale { mode: m, factor: f }, d)
            }
        };
        mesh.push(el).unwrap();
        dense = block.mul(&dense);
    }
    let t = mesh.transfer_matrix();
    assert!(t.max_abs_diff(&dense) < 1e-13);
    let input: Vec<C64> = (0..n)
        .map(|k| c((k as f64).sin(), (k as f64 * 0.5).cos()))
        .collect();
    let mut field = input.clone();
    mesh.apply(&mut field).unwrap();
    for (a, b) in field.iter().zip(t.apply(&input)) {
        assert!((a - b).norm() < 1e-13);
    }
    assert!(
        mesh.apply(&mut [c(0.0, 0.0); 3]).is_err(),
        "wrong field length refused"
    );
    assert!(
        mesh.push(Element::bs(n - 1, 0.1)).is_err(),
        "element past the last mode refused"
    );
}

#[test]
fn non_unitary_matrices_are_refused_with_their_deviation() {
    let mut u = haar_unitary(8, 3);
    let v = u.get(2, 5);
    u.set(2, 5, v + c(1e-6, 0.0));
    let dev = u.unitarity_deviation();
    assert!(dev > 1e-7 && dev < 1e-5, "{dev}");
    match decompose(&u) {
        Err(PhiError::NotUnitary {
            deviation,
            tolerance,
        }) => {
            assert_eq!(deviation, dev);
            assert_eq!(tolerance, UNITARITY_TOLERANCE);
        }
        other => panic!("expected NotUnitary, got {other:?}"),
    }
    let mut twice = Matrix::identity(3);
    twice.set(0, 0, c(2.0, 0.0));
    let err = decompose(&twice).unwrap_err();
    assert!(err.to_string().contains("3.000e0"), "{err}");
    // A NaN entry is never unitary.
    let mut nan = Matrix::identity(2);
    nan.set(1, 0, c(f64::NAN, 0.0));
    assert!(matches!(decompose(&nan), Err(PhiError::NotUnitary { .. })));
    // Just inside the tolerance is accepted.
    let mut close = Matrix::identity(4);
    close.set(0, 0, c(1.0 + 1e-11, 0.0));
    assert!(decompose(&close).is_ok());
}

#[test]
fn matrix_json_reader_names_rows_and_columns() {
    let good = "[[[1, 0], [0, 0]], [[0, 0], [0, 1.5]]]";
    let m = Matrix::from_json(good, "m.json").unwrap();
    assert_eq!(m.get(1, 1), c(0.0, 1.5));
    assert_eq!(Matrix::from_json(&m.to_json().to_string(), "x").unwrap(), m);
    let cases: &[(&str, &str)] = &[
        (
            "[[[1, 0], [0, 0]], [[0, 0], [0, \"a\"]]]",
            "m.json: row 1, column 1",
        ),
        ("[[[1, 0], [0, 0]], [[0, 0]]]", "m.json: row 1 (0-based)"),
        (
            "[[[1, 0, 3], [0, 0]], [[0, 0], [0, 1]]]",
            "m.json: row 0, column 0",
        ),
        ("[[[1, 0], [0, 0]], 5]", "m.json: row 1 (0-based)"),
        ("[]", "no rows"),
        ("{\"a\": 1}", "not an array"),
        ("[[[1, 0]]", "m.json:1:"),
    ];
    for (text, expect) in cases {
        let e = Matrix::from_json(text, "m.json").unwrap_err().to_string();
        assert!(e.contains(expect), "{text}: `{e}` lacks `{expect}`");
    }
}

#[test]
fn decomposition_serialises_in_the_cli_shape_and_back() {
    let d = decompose(&haar_unitary(3, 5)).unwrap();
    let j = serde_json::to_value(&d).unwrap();
    assert_eq!(j["modes"], 3);
    assert_eq!(
        j["mzis"][0]["modes"],
        serde_json::json!([d.mzis[0].modes[0], d.mzis[0].modes[0] + 1])
    );
    assert!(j["mzis"][0]["theta"].is_f64() && j["mzis"][0]["phi"].is_f64());
    assert_eq!(j["output_phases"].as_array().unwrap().len(), 3);
    let back: Decomposition = serde_json::from_value(j).unwrap();
    assert_eq!(back, d);
}

#[test]
fn large_dft_reconstructs() {
    check_decomposition(&Matrix::dft(128), 1e-12);
}

/// The rectangular arrangement: scheduled as soon as possible, the N(N−1)/2 MZIs form N columns
/// (optical depth N), column k holding only pairs (m, m+1) with m of k's parity, as in the
/// rectangular mesh of Clements et al.
#[test]
fn the_mesh_is_rectangular_with_depth_n() {
    for n in [2, 3, 4, 5, 8, 9, 16] {
        let d = decompose(&haar_unitary(n, 40 + n as u64)).unwrap();
        let mut depth_at = vec![0usize; n];
        let mut columns: Vec<Vec<usize>> = Vec::new();
        for z in &d.mzis {
            let m = z.modes[0];
            let layer = depth_at[m].max(depth_at[m + 1]);
            depth_at[m] = layer + 1;
            depth_at[m + 1] = layer + 1;
            if columns.len() <= layer {
                columns.push(Vec::new());
            }
            columns[layer].push(m);
        }
        // N columns (for N = 2 the second column of a rectangle is empty).
        let expect = if n == 2 { 1 } else { n };
        assert_eq!(
            columns.len(),
            expect,
            "N = {n}: depth {} (columns {columns:?})",
            columns.len()
        );
        for (k, col) in columns.iter().enumerate() {
            assert!(
                col.iter().all(|m| m % 2 == k % 2),
                "N = {n}: column {k} mixes parities: {col:?}"
            );
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, ..Default::default() })]
    #[test]
    fn random_unitaries_reconstruct(n in 1usize..24, seed in proptest::prelude::any::<u64>()) {
        let u = haar_unitary(n, seed);
        let d = decompose(&u).unwrap();
        proptest::prop_assert!(d.reconstruct().max_abs_diff(&u) < 1e-12);
        let field: Vec<C64> = (0..n).map(|k| c((k as f64 * 0.7).cos(), (seed % 97) as f64 * 0.01 - k as f64 * 0.1)).collect();
        let mut f = field.clone();
        d.mesh().apply(&mut f).unwrap();
        for (a, b) in f.iter().zip(u.apply(&field)) {
            proptest::prop_assert!((a - b).norm() < 1e-12);
        }
    }
}
