//! Haar-random unitaries (Mezzadri, "How to generate random matrices from the classical compact
//! groups", Notices AMS 54 (2007)): a complex Ginibre matrix (independent standard complex normal
//! entries), then its QR decomposition with the phases of R's diagonal divided out of Q.
//!
//! The normals come from Box–Muller on a seeded ChaCha8 (`rand_chacha` 0.9,
//! `ChaCha8Rng::seed_from_u64`), so a seed gives the same matrix forever. The QR is modified
//! Gram–Schmidt over the columns with one re-orthogonalisation pass (for unitarity to ~1e−15 at
//! N in the thousands). Gram–Schmidt makes every diagonal entry of R real and positive, which is
//! exactly the normalisation Mezzadri's recipe asks for: dividing out R's diagonal phases is then
//! multiplying by 1, and Q itself is Haar-distributed.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::{Matrix, C64};

/// A standard complex normal (E|z|² = 1) from two uniforms by Box–Muller.
fn complex_normal(rng: &mut ChaCha8Rng) -> C64 {
    // u1 in (0, 1] (so that ln u1 is finite), u2 in [0, 1), both with 53 random bits.
    let u1 = ((rng.next_u64() >> 11) + 1) as f64 * (1.0 / (1u64 << 53) as f64);
    let u2 = (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
    let radius = (-2.0 * u1.ln()).sqrt();
    let angle = 2.0 * std::f64::consts::PI * u2;
    // Two independent N(0, 1) reals; each scaled by 1/√2 for unit complex variance.
    C64::new(radius * angle.cos(), radius * angle.sin()) * std::f64::consts::FRAC_1_SQRT_2
}

/// A Haar-random N × N unitary from `seed`.
pub fn haar_unitary(n: usize, seed: u64) -> Matrix {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    haar_unitary_with(n, &mut rng)
}

/// A Haar-random N × N unitary drawn from `rng`.
pub fn haar_unitary_with(n: usize, rng: &mut ChaCha8Rng) -> Matrix {
    // Columns stored contiguously: cols[j][i] = G[i][j]. Ginibre entries in row-major order.
    let mut g = vec![C64::new(0.0, 0.0); n * n];
    for i in 0..n {
        for j in 0..n {
            g[j * n + i] = complex_normal(rng);
        }
    }
    // Modified Gram–Schmidt, two passes against the previous columns.
    for j in 0..n {
        let (done, rest) = g.split_at_mut(j * n);
        let v = &mut rest[..n];
        for _pass in 0..2 {
            for k in 0..j {
                let q = &done[k * n..(k + 1) * n];
                let proj: C64 = q.iter().zip(v.iter()).map(|(a, b)| a.conj() * b).sum();
                for (x, a) in v.iter_mut().zip(q) {
                    *x -= proj * a;
                }
            }
        }
        let norm = v.iter().map(|z| z.norm_sqr()).sum::<f64>().sqrt();
        // r_jj = norm > 0 (almost surely): its phase is 1, Mezzadri's correction is the identity.
        let inv = 1.0 / norm;
        for x in v.iter_mut() {
            *x *= inv;
        }
    }
    let mut u = Matrix::zeros(n);
    for i in 0..n {
        for j in 0..n {
            u.set(i, j, g[j * n + i]);
        }
    }
    u
}
