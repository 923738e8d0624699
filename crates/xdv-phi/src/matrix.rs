//! A dense square complex matrix, stored flat and row-major (`data[r * n + c]`), with the few
//! operations the Φ domain needs (product, adjoint, distance, unitarity deviation) and a reader for
//! the JSON matrix format: an array of rows, each an array of `[re, im]` entries.

use crate::{PhiError, C64};

/// Largest matrix the JSON reader accepts, in modes (rows = columns).
pub const MATRIX_MODES_MAX: usize = 4096;
/// Largest matrix file the JSON reader accepts, in bytes.
pub const MATRIX_FILE_BYTES_MAX: usize = 1 << 30;

/// A dense N × N complex matrix, row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    n: usize,
    data: Vec<C64>,
}

impl Matrix {
    /// The N × N zero matrix.
    pub fn zeros(n: usize) -> Matrix {
        Matrix {
            n,
            data: vec![C64::new(0.0, 0.0); n * n],
        }
    }

    /// The N × N identity.
    pub fn identity(n: usize) -> Matrix {
        let mut m = Matrix::zeros(n);
        for k in 0..n {
            m.data[k * n + k] = C64::new(1.0, 0.0);
        }
        m
    }

    /// The unitary N-point discrete Fourier transform, `F[j][k] = e^{2πi jk/N} / √N`.
    pub fn dft(n: usize) -> Matrix {
        let mut m = Matrix::zeros(n);
        let scale = 1.0 / (n as f64).sqrt();
        for j in 0..n {
            for k in 0..n {
                // Reduce jk mod N first so that the angle stays small and exact.
                let jk = (j * k) % n;
                let angle = 2.0 * std::f64::consts::PI * jk as f64 / n as f64;
                m.data[j * n + k] = C64::from_polar(scale, angle);
            }
        }
        m
    }

    /// A matrix from its flat row-major entries; `data.len()` must be `n * n`.
    pub fn from_flat(n: usize, data: Vec<C64>) -> Result<Matrix, PhiError> {
        if data.len() != n * n {
            return Err(PhiError::Shape {
                message: format!(
                    "{} entries given for a {n} × {n} matrix ({} expected)",
                    data.len(),
                    n * n
                ),
            });
        }
        Ok(Matrix { n, data })
    }

    /// A matrix from its rows; every row must have as many entries as there are rows.
    pub fn from_rows(rows: &[Vec<C64>]) -> Result<Matrix, PhiError> {
        let n = rows.len();
        let mut data = Vec::with_capacity(n * n);
        for (r, row) in rows.iter().enumerate() {
            if row.len() != n {
                return Err(PhiError::Shape {
                    message: format!(
                        "row {r} has {} entries; a square matrix with {n} rows needs {n}",
                        row.len()
                    ),
                });
            }
            data.extend_from_slice(row);
        }
        Ok(Matrix { n, data })
    }

    /// The number of rows (= columns = modes).
    pub fn n(&self) -> usize {
        self.n
    }

    /// The flat row-major entries.
    pub fn data(&self) -> &[C64] {
        &self.data
    }

    /// The flat row-major entries, mutable.
    pub fn data_mut(&mut self) -> &mut [C64] {
        &mut self.data
    }

    /// Entry (row `r`, column `c`). Panics when out of range, like slice indexing.
    pub fn get(&self, r: usize, c: usize) -> C64 {
        self.data[r * self.n + c]
    }

    /// Sets entry (row `r`, column `c`). Panics when out of range, like slice indexing.
    pub fn set(&mut self, r: usize, c: usize, v: C64) {
        self.data[r * self.n + c] = v;
    }

    /// Row `r` as a slice.
    pub fn row(&self, r: usize) -> &[C64] {
        &self.data[r * self.n..(r + 1) * self.n]
    }

    /// The rows, each as a vector.
    pub fn to_rows(&self) -> Vec<Vec<C64>> {
        (0..self.n).map(|r| self.row(r).to_vec()).collect()
    }

    /// The conjugate transpose.
    pub fn adjoint(&self) -> Matrix {
        let n = self.n;
        let mut m = Matrix::zeros(n);
        for r in 0..n {
            for c in 0..n {
                m.data[c * n + r] = self.data[r * n + c].conj();
            }
        }
        m
    }

    /// The product `self · other` (both N × N; panics on a size mismatch, a programming error).
    pub fn mul(&self, other: &Matrix) -> Matrix {
        assert_eq!(self.n, other.n, "matrix sizes differ");
        let n = self.n;
        let mut out = Matrix::zeros(n);
        for i in 0..n {
            let out_row = &mut out.data[i * n..(i + 1) * n];
            for k in 0..n {
                let a = self.data[i * n + k];
                let b_row = &other.data[k * n..(k + 1) * n];
                for (o, b) in out_row.iter_mut().zip(b_row) {
                    *o += a * b;
                }
            }
        }
        out
    }

    /// `self · v` for a column vector `v` of length N.
    pub fn apply(&self, v: &[C64]) -> Vec<C64> {
        (0..self.n)
            .map(|r| self.row(r).iter().zip(v).map(|(a, b)| a * b).sum())
            .collect()
    }

    /// max over entries of |self − other| (infinite when the sizes differ).
    pub fn max_abs_diff(&self, other: &Matrix) -> f64 {
        if self.n != other.n {
            return f64::INFINITY;
        }
        self.data
            .iter()
            .zip(&other.data)
            .map(|(a, b)| (a - b).norm())
            .fold(0.0, f64::max)
    }

    /// max over entries of |U†U − I|: 0 for a unitary. O(N³), computing only the upper triangle of
    /// the Hermitian U†U, row by row (cache-friendly on the row-major storage).
    pub fn unitarity_deviation(&self) -> f64 {
        let n = self.n;
        // g[i][j] for j ≥ i, accumulated as Σ_k conj(U[k][i]) U[k][j].
        let mut g = vec![C64::new(0.0, 0.0); n * n];
        for k in 0..n {
            let row = &self.data[k * n..(k + 1) * n];
            for i in 0..n {
                let a = row[i].conj();
                let g_row = &mut g[i * n + i..(i + 1) * n];
                for (gij, u) in g_row.iter_mut().zip(&row[i..]) {
                    // Written out in reals: LLVM vectorises this better than Complex's Mul.
                    let re = a.re * u.re - a.im * u.im;
                    let im = a.re * u.im + a.im * u.re;
                    gij.re += re;
                    gij.im += im;
                }
            }
        }
        let mut worst = 0.0f64;
        for i in 0..n {
            for j in i..n {
                let target = if i == j { 1.0 } else { 0.0 };
                let d = (g[i * n + j] - C64::new(target, 0.0)).norm();
                if d.is_nan() {
                    // A NaN or infinite entry: not unitary at all.
                    return f64::INFINITY;
                }
                worst = worst.max(d);
            }
        }
        worst
    }

    /// Reads a matrix from JSON: an array of rows, each an array of `[re, im]` entries, square.
    /// `file` names the origin in errors, which give the 0-based row and column of a bad entry.
    pub fn from_json(text: &str, file: &str) -> Result<Matrix, PhiError> {
        let err = |row: Option<usize>, column: Option<usize>, message: String, hint: &str| {
            PhiError::Matrix {
                file: file.to_string(),
                row,
                column,
                message,
                hint: hint.to_string(),
            }
        };
        if text.len() > MATRIX_FILE_BYTES_MAX {
            return Err(PhiError::Limit {
                what: "the matrix file size in bytes".into(),
                value: text.len() as u64,
                max: MATRIX_FILE_BYTES_MAX as u64,
                hint: "give a smaller matrix".into(),
            });
        }
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| PhiError::Matrix {
                file: format!("{file}:{}:{}", e.line(), e.column()),
                row: None,
                column: None,
                message: format!("not valid JSON: {e}"),
                hint: "the file must hold an array of rows, each an array of [re, im] pairs".into(),
            })?;
        let rows = value.as_array().ok_or_else(|| {
            err(
                None,
                None,
                "the document is not an array".into(),
                "write the matrix as [[[re, im], ...], ...]",
            )
        })?;
        let n = rows.len();
        if n == 0 {
            return Err(err(
                None,
                None,
                "the matrix has no rows".into(),
                "give at least a 1 × 1 matrix",
            ));
        }
        if n > MATRIX_MODES_MAX {
            return Err(PhiError::Limit {
                what: "the matrix size in modes".into(),
                value: n as u64,
                max: MATRIX_MODES_MAX as u64,
                hint: "split the transform into smaller blocks".into(),
            });
        }
        let mut data = Vec::with_capacity(n * n);
        for (r, row) in rows.iter().enumerate() {
            let entries = row.as_array().ok_or_else(|| {
                err(
                    Some(r),
                    None,
                    "the row is not an array".into(),
                    "each row is an array of [re, im] pairs",
                )
            })?;
            if entries.len() != n {
                return Err(err(
                    Some(r),
                    None,
                    format!(
                        "the row has {} entries but the matrix has {n} rows",
                        entries.len()
                    ),
                    "the matrix must be square",
                ));
            }
            for (c, entry) in entries.iter().enumerate() {
                data.push(complex_from_json(entry).map_err(|m| {
                    err(
                        Some(r),
                        Some(c),
                        m,
                        "an entry is [re, im] with two finite numbers",
                    )
                })?);
            }
        }
        Ok(Matrix { n, data })
    }

    /// The matrix as JSON rows of `[re, im]` entries (the format [`Matrix::from_json`] reads).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Array(
            (0..self.n)
                .map(|r| {
                    serde_json::Value::Array(
                        self.row(r)
                            .iter()
                            .map(|z| serde_json::json!([z.re, z.im]))
                            .collect(),
                    )
                })
                .collect(),
        )
    }
}

/// One `[re, im]` entry from JSON.
fn complex_from_json(v: &serde_json::Value) -> Result<C64, String> {
    let pair = v
        .as_array()
        .ok_or_else(|| format!("the entry `{v}` is not a [re, im] pair"))?;
    if pair.len() != 2 {
        return Err(format!("the entry has {} numbers, not 2", pair.len()));
    }
    let num = |x: &serde_json::Value| x.as_f64().filter(|f| f.is_finite());
    match (num(&pair[0]), num(&pair[1])) {
        (Some(re), Some(im)) => Ok(C64::new(re, im)),
        _ => Err(format!("the entry `{v}` does not hold two finite numbers")),
    }
}
