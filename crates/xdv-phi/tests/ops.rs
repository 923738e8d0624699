//! `delay` and `matvec`: the delay's phase against the closed form e^{−i·2π·c₀·τ/λ} per channel
//! and against `phase`; the SVD and the compiled matvec against direct multiplication on random,
//! rank-deficient and non-square matrices.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use std::f64::consts::PI;
use xdv_phi::program::{delay_phase, grid_wavelength_nm};
use xdv_phi::{run, run_with, svd, MatVec, Matrix, Path, Program, C64};

fn c(re: f64, im: f64) -> C64 {
    C64::new(re, im)
}

/// A uniform complex entry with re, im in [−1, 1).
fn entry(rng: &mut ChaCha8Rng) -> C64 {
    let u = |r: &mut ChaCha8Rng| (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0;
    c(u(rng), u(rng))
}

#[test]
fn delay_phase_is_the_closed_form_per_channel() {
    // τ = 1.5 ps at 1550 nm: c₀τ/λ = 299792458 · 1.5e−12 / 1550e−9 cycles.
    let cases = [
        (1.5, 1550.0),
        (0.0, 1550.0),
        (1000.0, 1310.0),
        (0.25, 780.0),
    ];
    for (tau_ps, lambda_nm) in cases {
        let cycles = 299_792_458.0 * tau_ps * 1e-12 / (lambda_nm * 1e-9);
        let want = C64::from_polar(1.0, -2.0 * PI * cycles);
        let got = C64::from_polar(1.0, delay_phase(tau_ps, lambda_nm));
        assert!(
            (got - want).norm() < 1e-9,
            "τ = {tau_ps} ps, λ = {lambda_nm} nm: {got} vs {want}"
        );
    }
}

#[test]
fn delay_in_a_program_differs_per_channel_and_equals_phase() {
    let text = "modes = 2\nchannels = 2\nwavelengths_nm = [1550.0, 1310.0]\ninput = [[[1, 0], [0, 0.5]], [[0.3, 0], [1, 0]]]\n[[op]]\nkind = \"bs\"\nmodes = [0, 1]\ntheta = 0.3\n[[op]]\nkind = \"delay\"\nmode = 1\ndelay_ns = 0.0012\n[[op]]\nkind = \"bs\"\nmodes = [0, 1]\ntheta = 0.7\n";
    let p = Program::from_toml(text, "d.toml").unwrap();
    assert_eq!(p.report().optical_delay_ps, 1.2);
    for path in [Path::Reference, Path::TransferMatrix] {
        let r = run_with(&p, 1, path).unwrap();
        for (w, lambda) in [(0usize, 1550.0), (1, 1310.0)] {
            // The same program with the delay written as a phase of −ωτ.
            let phi = -2.0 * PI * (299_792_458.0 * 1.2e-12 / (lambda * 1e-9));
            let input = if w == 0 {
                "[[1, 0], [0, 0.5]]"
            } else {
                "[[0.3, 0], [1, 0]]"
            };
            let q = format!("modes = 2\ninput = {input}\n[[op]]\nkind = \"bs\"\nmodes = [0, 1]\ntheta = 0.3\n[[op]]\nkind = \"phase\"\nmode = 1\nphi = {phi:?}\n[[op]]\nkind = \"bs\"\nmodes = [0, 1]\ntheta = 0.7\n");
            let want = run(&Program::from_toml(&q, "q.toml").unwrap(), 1).unwrap();
            for m in 0..2 {
                let d = (r.amplitudes[w][m] - want.amplitudes[0][m]).norm();
                assert!(d < 1e-9, "{path:?} channel {w} mode {m}: {d}");
            }
        }
        // The two wavelengths really give different outputs.
        let i0 = r.intensities[0][0] / (1.0 + 0.25);
        let i1 = r.intensities[1][0] / (0.09 + 1.0);
        assert!((i0 - i1).abs() > 1e-3, "{i0} {i1}");
    }
}

#[test]
fn default_wavelengths_are_the_100_ghz_grid() {
    let p = Program::from_toml(
        "modes = 1\nchannels = 3\ninput = [[[1, 0]], [[1, 0]], [[1, 0]]]\n",
        "g.toml",
    )
    .unwrap();
    for (w, l) in p.wavelengths_nm.iter().enumerate() {
        let f_thz = 193.1 + 0.1 * w as f64;
        assert!((l - 299_792.458 / f_thz).abs() < 1e-9, "{w}: {l}");
        assert_eq!(*l, grid_wavelength_nm(w));
    }
}

/// Checks U diag(σ) V† = A, U and V unitary, σ sorted and non-negative.
fn check_svd(a: &Matrix, label: &str) {
    let s = svd(a).unwrap();
    let n = a.n();
    let mut sd = Matrix::zeros(n);
    for (i, &x) in s.sigma.iter().enumerate() {
        sd.set(i, i, c(x, 0.0));
    }
    let back = s.u.mul(&sd).mul(&s.v.adjoint());
    let scale = s.sigma.first().copied().unwrap_or(0.0).max(1.0);
    assert!(
        back.max_abs_diff(a) < 1e-12 * scale * n as f64,
        "{label}: {}",
        back.max_abs_diff(a)
    );
    assert!(s.u.unitarity_deviation() < 1e-12, "{label}");
    assert!(s.v.unitarity_deviation() < 1e-12, "{label}");
    assert!(
        s.sigma.windows(2).all(|w| w[0] >= w[1]) && s.sigma.iter().all(|&x| x >= 0.0),
        "{label}"
    );
}

/// A random M × N matrix of rank at most `rank` (a product of M × r and r × N factors).
fn random_matrix(rows: usize, cols: usize, rank: usize, seed: u64) -> Vec<C64> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let l: Vec<C64> = (0..rows * rank).map(|_| entry(&mut rng)).collect();
    let r: Vec<C64> = (0..rank * cols).map(|_| entry(&mut rng)).collect();
    let mut a = vec![c(0.0, 0.0); rows * cols];
    for i in 0..rows {
        for j in 0..cols {
            a[i * cols + j] = (0..rank).map(|k| l[i * rank + k] * r[k * cols + j]).sum();
        }
    }
    a
}

#[test]
fn svd_reconstructs_random_and_rank_deficient_matrices() {
    for (n, rank, seed) in [
        (1, 1, 1),
        (2, 2, 2),
        (5, 5, 3),
        (8, 3, 4),
        (16, 1, 5),
        (40, 40, 6),
        (64, 20, 7),
    ] {
        let data = random_matrix(n, n, rank, seed);
        let a = Matrix::from_flat(n, data).unwrap();
        check_svd(&a, &format!("n = {n}, rank {rank}, seed {seed}"));
        let s = svd(&a).unwrap();
        // Rank r: σ_r.. vanish relative to σ_0.
        if rank < n {
            assert!(
                s.sigma[rank] < 1e-12 * s.sigma[0],
                "seed {seed}: σ_{rank} = {}",
                s.sigma[rank]
            );
        }
    }
}

/// Matvec through the compiled mesh equals A·x / s, on the first M of the K modes, for square,
/// wide, tall and rank-deficient matrices, on both simulator paths.
#[test]
fn matvec_mesh_equals_direct_multiplication() {
    let cases = [
        (1, 1, 1),
        (3, 3, 3),
        (2, 5, 2),
        (5, 2, 2),
        (7, 7, 2),
        (16, 9, 9),
        (9, 16, 4),
        (32, 32, 32),
    ];
    for (k, &(rows, cols, rank)) in cases.iter().enumerate() {
        let seed = 100 + k as u64;
        let a = random_matrix(rows, cols, rank, seed);
        let mv = MatVec::new(rows, cols, a.clone()).unwrap();
        let kk = rows.max(cols);
        // Program: one spare mode below, the matvec on modes 1 ..= K.
        let modes = kk + 1;
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xff);
        let x: Vec<C64> = (0..modes).map(|_| entry(&mut rng)).collect();
        let fmt = |z: &C64| format!("[{:?}, {:?}]", z.re, z.im);
        let matrix: Vec<String> = (0..rows)
            .map(|r| {
                format!(
                    "[{}]",
                    (0..cols)
                        .map(|c| fmt(&a[r * cols + c]))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })
            .collect();
        let text = format!(
            "modes = {modes}\ninput = [{}]\n[[op]]\nkind = \"matvec\"\nmodes = [{}]\nmatrix = [{}]\n",
            x.iter().map(fmt).collect::<Vec<_>>().join(", "),
            (1..=kk).map(|m| m.to_string()).collect::<Vec<_>>().join(", "),
            matrix.join(", ")
        );
        let p = Program::from_toml(&text, "mv.toml").unwrap();
        let want = mv.apply_direct(&x[1..=cols]);
        // The scale is σ_max, and is reported.
        let rep = p.report();
        assert_eq!(rep.matvec.len(), 1);
        assert!((rep.matvec[0].scale - mv.scale).abs() < 1e-12 * mv.scale);
        assert!((rep.matvec[0].implied_loss_db - 20.0 * mv.scale.log10()).abs() < 1e-12);
        for path in [Path::Reference, Path::TransferMatrix] {
            let r = run_with(&p, 0, path).unwrap();
            let out = &r.amplitudes[0];
            assert!(
                (out[0] - x[0]).norm() < 1e-12,
                "seed {seed}: the spare mode changed"
            );
            for i in 0..rows {
                let d = (out[1 + i] - want[i]).norm();
                assert!(
                    d < 1e-11,
                    "seed {seed} {rows}×{cols} rank {rank} {path:?}: row {i} off by {d}"
                );
            }
            for i in rows..kk {
                assert!(
                    out[1 + i].norm() < 1e-11,
                    "seed {seed}: padding mode {i} carries {}",
                    out[1 + i]
                );
            }
        }
    }
}

#[test]
fn matvec_scale_is_the_spectral_norm() {
    // diag(3, 1): σ_max = 3, the mesh realises diag(1, 1/3).
    let mv = MatVec::new(
        2,
        2,
        vec![c(3.0, 0.0), c(0.0, 0.0), c(0.0, 0.0), c(1.0, 0.0)],
    )
    .unwrap();
    assert!((mv.scale - 3.0).abs() < 1e-14);
    assert!((mv.implied_loss_db() - 20.0 * 3f64.log10()).abs() < 1e-12);
    let y = mv.apply_direct(&[c(1.0, 0.0), c(1.0, 0.0)]);
    assert!((y[0] - c(1.0, 0.0)).norm() < 1e-14 && (y[1] - c(1.0 / 3.0, 0.0)).norm() < 1e-14);
    // A rank-1 outer product u v† has σ_max = |u| |v|.
    let u = [c(1.0, 1.0), c(0.5, 0.0), c(0.0, -2.0)];
    let v = [c(0.3, 0.1), c(-1.0, 0.2)];
    let a: Vec<C64> = u
        .iter()
        .flat_map(|ui| v.iter().map(move |vj| ui * vj.conj()))
        .collect();
    let mv = MatVec::new(3, 2, a).unwrap();
    let norm = |z: &[C64]| z.iter().map(|x| x.norm_sqr()).sum::<f64>().sqrt();
    assert!((mv.scale - norm(&u) * norm(&v)).abs() < 1e-12);
    assert!(mv.singular_values[1] < 1e-12);
}
