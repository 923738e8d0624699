//! The singular value decomposition (through `faer`, sequential) and the `matvec` compiler: any
//! M × N complex matrix `A` as a Clements mesh for `V†`, one attenuator per mode, and a Clements
//! mesh for `U`.
//!
//! **Construction, exactly.** With K = max(M, N), `A` is zero-padded to the K × K matrix
//! `A′ = [[A, 0], [0, 0]]` (rows M..K and columns N..K zero). Its SVD is `A′ = U Σ V†` with `U`,
//! `V` unitary and `Σ = diag(σ_0 ≥ σ_1 ≥ … ≥ σ_{K−1} ≥ 0)`. With the scale `s = σ_0` (the
//! largest singular value, the spectral norm of `A`) the optical transform is
//!
//! ```text
//! A′ / s = U · diag(σ_0/s, …, σ_{K−1}/s) · V†
//! ```
//!
//! applied as: the MZIs and output phases of `decompose(V†)`, then an attenuator with amplitude
//! factor `σ_i / s` ∈ [0, 1] on mode i, then the MZIs and output phases of `decompose(U)`. The
//! output field on the first M of the K modes is `A·x / s` for the input `x` on the first N modes;
//! light entering modes N..K is discarded (their columns are zero) and modes M..K leave dark.
//! Dividing by `s` keeps every attenuator passive: the mesh transmits the top singular direction
//! fully. The figure of merit is the *implied loss* `20·log10(s)` dB: the power of the desired
//! `A·x` over that of the optical output (positive when `A` amplifies, negative when it shrinks).

use crate::clements::{decompose, Decomposition};
use crate::mesh::{Element, Mesh};
use crate::{Matrix, PhiError, C64};

/// Largest K = max(M, N) of a `matvec` matrix, in modes (the SVD and the two decompositions are
/// O(K³)).
pub const MATVEC_MODES_MAX: usize = 1024;

/// The singular value decomposition `A = U · diag(σ) · V†` of a square matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Svd {
    /// The left singular vectors (columns), unitary.
    pub u: Matrix,
    /// The singular values σ_0 ≥ σ_1 ≥ … ≥ 0.
    pub sigma: Vec<f64>,
    /// The right singular vectors (columns), unitary.
    pub v: Matrix,
}

/// The SVD of a square matrix, computed by `faer` on one thread. Refuses a matrix with a
/// non-finite entry and reports faer's failure to converge (not expected on finite input).
pub fn svd(a: &Matrix) -> Result<Svd, PhiError> {
    let k = a.n();
    if a.data()
        .iter()
        .any(|z| !(z.re.is_finite() && z.im.is_finite()))
    {
        return Err(PhiError::Shape {
            message: "the matrix has a non-finite entry; give finite [re, im] entries".into(),
        });
    }
    let m = faer::Mat::<faer::c64>::from_fn(k, k, |i, j| {
        let z = a.get(i, j);
        faer::c64::new(z.re, z.im)
    });
    let s = m.svd().map_err(|e| PhiError::Shape {
        message: format!(
            "the singular value decomposition did not converge ({e:?}); check the matrix for \
             extreme entries"
        ),
    })?;
    let to_matrix = |r: faer::MatRef<'_, faer::c64>| {
        let mut out = Matrix::zeros(k);
        for i in 0..k {
            for j in 0..k {
                let z = r[(i, j)];
                out.set(i, j, C64::new(z.re, z.im));
            }
        }
        out
    };
    let sigma = s.S().column_vector().iter().map(|z| z.re).collect();
    Ok(Svd {
        u: to_matrix(s.U()),
        sigma,
        v: to_matrix(s.V()),
    })
}

/// The unitary nearest to `a` in the Frobenius norm (its polar factor `U V†` from the SVD
/// `a = U Σ V†`). Used by the Blackbird importer for matrices written with few digits.
pub fn nearest_unitary(a: &Matrix) -> Result<Matrix, PhiError> {
    let s = svd(a)?;
    Ok(s.u.mul(&s.v.adjoint()))
}

/// A general M × N matrix compiled for the mesh: see the module docs for the construction.
#[derive(Clone, Debug, PartialEq)]
pub struct MatVec {
    /// M, the rows of `A` (output modes).
    pub rows: usize,
    /// N, the columns of `A` (input modes).
    pub cols: usize,
    /// `A` as given, row-major (`rows × cols` entries).
    pub entries: Vec<C64>,
    /// The scale `s = σ_max`; the mesh realises `A / s`.
    pub scale: f64,
    /// All K singular values of the padded matrix, largest first.
    pub singular_values: Vec<f64>,
    /// The Clements decomposition of `V†` (acts first).
    pub v_dagger: Decomposition,
    /// The Clements decomposition of `U` (acts last).
    pub u: Decomposition,
}

impl MatVec {
    /// Compiles an M × N matrix given row-major (`entries.len() == rows * cols`). Refuses an
    /// empty, oversized, non-finite or all-zero matrix.
    pub fn new(rows: usize, cols: usize, entries: Vec<C64>) -> Result<MatVec, PhiError> {
        if rows == 0 || cols == 0 {
            return Err(PhiError::Shape {
                message: format!("a {rows} × {cols} matrix is empty; give at least one entry"),
            });
        }
        if entries.len() != rows * cols {
            return Err(PhiError::Shape {
                message: format!(
                    "{} entries given for a {rows} × {cols} matrix ({} expected)",
                    entries.len(),
                    rows * cols
                ),
            });
        }
        let k = rows.max(cols);
        if k > MATVEC_MODES_MAX {
            return Err(PhiError::Limit {
                what: "max(rows, columns) of a matvec matrix, in modes".into(),
                value: k as u64,
                max: MATVEC_MODES_MAX as u64,
                hint: "split the matrix into blocks".into(),
            });
        }
        let mut padded = Matrix::zeros(k);
        for r in 0..rows {
            for c in 0..cols {
                padded.set(r, c, entries[r * cols + c]);
            }
        }
        let s = svd(&padded)?;
        let scale = s.sigma.first().copied().unwrap_or(0.0);
        if scale <= 0.0 || !scale.is_finite() {
            return Err(PhiError::Shape {
                message: format!(
                    "the matrix has no usable singular value (largest {scale}): an all-zero \
                     matrix blocks every mode; use attenuate with eta = 0 instead"
                ),
            });
        }
        let v_dagger = decompose(&s.v.adjoint())?;
        let u = decompose(&s.u)?;
        Ok(MatVec {
            rows,
            cols,
            entries,
            scale,
            singular_values: s.sigma,
            v_dagger,
            u,
        })
    }

    /// K = max(M, N), the modes the compiled mesh spans.
    pub fn modes(&self) -> usize {
        self.rows.max(self.cols)
    }

    /// `20·log10(s)` dB: the power of `A·x` over that of the optical output `A·x / s`.
    pub fn implied_loss_db(&self) -> f64 {
        20.0 * self.scale.log10()
    }

    /// The number of mesh elements it compiles to: two meshes and K attenuators.
    pub fn element_count(&self) -> usize {
        let k = self.modes();
        self.v_dagger.mzis.len() + self.u.mzis.len() + 3 * k
    }

    /// Appends its elements to `mesh` with its modes shifted up by `offset`; refuses (leaving the
    /// mesh unchanged) when they would not fit.
    pub fn push_to(&self, mesh: &mut Mesh, offset: usize) -> Result<(), PhiError> {
        let k = self.modes();
        if offset + k > mesh.modes() {
            return Err(PhiError::Shape {
                message: format!(
                    "a {k}-mode matvec at mode {offset} does not fit in a {}-mode mesh",
                    mesh.modes()
                ),
            });
        }
        mesh.push_decomposition(&self.v_dagger, offset)?;
        for (i, sigma) in self.singular_values.iter().enumerate() {
            mesh.push(Element::Scale {
                mode: offset + i,
                factor: (sigma / self.scale).clamp(0.0, 1.0),
            })?;
        }
        mesh.push_decomposition(&self.u, offset)
    }

    /// `A·x / s` computed directly (the reference the mesh is tested against): `x` has N
    /// entries, the result M.
    pub fn apply_direct(&self, x: &[C64]) -> Vec<C64> {
        (0..self.rows)
            .map(|r| {
                self.entries[r * self.cols..(r + 1) * self.cols]
                    .iter()
                    .zip(x)
                    .map(|(a, b)| a * b)
                    .sum::<C64>()
                    / self.scale
            })
            .collect()
    }
}
