//! A mesh: an ordered list of optical elements on N modes, applied to a field vector one element
//! after the other (element 0 first). Each element is stored with its coefficients precomputed
//! (cos θ, sin θ, e^{iφ}), so that applying an MZI costs one complex and four real-by-complex
//! multiplications, O(1) per element on a field vector and O(N) per element on a matrix.
//!
//! The transfer matrix `M` of a mesh with elements `E_0, E_1, …, E_{k−1}` is
//! `M = E_{k−1} ⋯ E_1 · E_0`: the output field is `M · input`.

use crate::clements::Decomposition;
use crate::mzi::Mzi;
use crate::{Matrix, PhiError, C64};

/// One element of a mesh, with precomputed coefficients.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Element {
    /// An MZI `T(θ, φ)` on modes `(mode, mode+1)`: `c = cos θ`, `s = sin θ`, `e = e^{iφ}`.
    Mzi {
        /// The first of its two modes.
        mode: usize,
        /// cos θ.
        c: f64,
        /// sin θ.
        s: f64,
        /// e^{iφ}.
        e: C64,
    },
    /// A beam splitter `B(θ)` on modes `(mode, mode+1)`: `c = cos θ`, `s = sin θ`.
    Bs {
        /// The first of its two modes.
        mode: usize,
        /// cos θ.
        c: f64,
        /// sin θ.
        s: f64,
    },
    /// A phase shifter: `a_mode ← phasor · a_mode`, `phasor = e^{iφ}`.
    Phase {
        /// Its mode.
        mode: usize,
        /// e^{iφ}.
        phasor: C64,
    },
    /// An attenuator: `a_mode ← factor · a_mode`, `factor = √η` (η the power transmission).
    Scale {
        /// Its mode.
        mode: usize,
        /// The amplitude factor √η, in [0, 1].
        factor: f64,
    },
}

impl Element {
    /// The MZI element for `mzi`.
    pub fn mzi(mzi: &Mzi) -> Element {
        let (s, c) = mzi.theta.sin_cos();
        Element::Mzi {
            mode: mzi.modes[0],
            c,
            s,
            e: C64::from_polar(1.0, mzi.phi),
        }
    }

    /// The beam splitter `B(theta)` on modes `(mode, mode+1)`.
    pub fn bs(mode: usize, theta: f64) -> Element {
        let (s, c) = theta.sin_cos();
        Element::Bs { mode, c, s }
    }

    /// The phase shifter `e^{i phi}` on `mode`.
    pub fn phase(mode: usize, phi: f64) -> Element {
        Element::Phase {
            mode,
            phasor: C64::from_polar(1.0, phi),
        }
    }

    /// The highest mode it touches.
    pub fn top_mode(&self) -> usize {
        match *self {
            Element::Mzi { mode, .. } | Element::Bs { mode, .. } => mode + 1,
            Element::Phase { mode, .. } | Element::Scale { mode, .. } => mode,
        }
    }

    /// Applies it to a strided pair or single entry of `v`: the amplitudes of mode `k` are
    /// `v[k * stride + j]` for `j` in `0..stride` (stride 1 for a field vector, N for a matrix's
    /// rows).
    #[inline(always)]
    fn apply_strided(&self, v: &mut [C64], stride: usize) {
        match *self {
            Element::Mzi { mode, c, s, e } => {
                let (lo, hi) = v[mode * stride..(mode + 2) * stride].split_at_mut(stride);
                for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                    let t = e * *x;
                    let yy = *y;
                    *x = t * c - yy * s;
                    *y = t * s + yy * c;
                }
            }
            Element::Bs { mode, c, s } => {
                let (lo, hi) = v[mode * stride..(mode + 2) * stride].split_at_mut(stride);
                for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                    let (xx, yy) = (*x, *y);
                    // i·s·z = (−s·z.im, s·z.re)
                    *x = C64::new(c * xx.re - s * yy.im, c * xx.im + s * yy.re);
                    *y = C64::new(c * yy.re - s * xx.im, c * yy.im + s * xx.re);
                }
            }
            Element::Phase { mode, phasor } => {
                for x in &mut v[mode * stride..(mode + 1) * stride] {
                    *x *= phasor;
                }
            }
            Element::Scale { mode, factor } => {
                for x in &mut v[mode * stride..(mode + 1) * stride] {
                    *x *= factor;
                }
            }
        }
    }
}

/// An ordered list of elements on `modes` modes.
#[derive(Clone, Debug, PartialEq)]
pub struct Mesh {
    modes: usize,
    elements: Vec<Element>,
}

impl Mesh {
    /// An empty mesh (the identity) on `modes` modes.
    pub fn new(modes: usize) -> Mesh {
        Mesh {
            modes,
            elements: Vec::new(),
        }
    }

    /// The mesh of a decomposition: its MZIs in the listed order, then its output phases.
    pub fn from_decomposition(d: &Decomposition) -> Mesh {
        let mut mesh = Mesh::new(d.modes);
        // In range by construction: a decomposition's MZIs lie inside its modes.
        mesh.extend_decomposition(d, 0);
        mesh
    }

    /// Appends the elements of `d` with its modes shifted up by `offset`. Refuses (and leaves the
    /// mesh unchanged) when they would not fit.
    pub fn push_decomposition(&mut self, d: &Decomposition, offset: usize) -> Result<(), PhiError> {
        if offset + d.modes > self.modes {
            return Err(PhiError::Shape {
                message: format!(
                    "a {}-mode decomposition at mode {offset} does not fit in a {}-mode mesh",
                    d.modes, self.modes
                ),
            });
        }
        self.extend_decomposition(d, offset);
        Ok(())
    }

    fn extend_decomposition(&mut self, d: &Decomposition, offset: usize) {
        self.elements.reserve(d.mzis.len() + d.output_phases.len());
        for z in &d.mzis {
            let mut z = *z;
            z.modes = [z.modes[0] + offset, z.modes[1] + offset];
            self.elements.push(Element::mzi(&z));
        }
        for (k, &p) in d.output_phases.iter().enumerate() {
            self.elements.push(Element::phase(k + offset, p));
        }
    }

    /// Appends one element; refuses one that touches a mode outside the mesh.
    pub fn push(&mut self, e: Element) -> Result<(), PhiError> {
        if e.top_mode() >= self.modes {
            return Err(PhiError::Shape {
                message: format!(
                    "element {e:?} touches mode {} of a {}-mode mesh",
                    e.top_mode(),
                    self.modes
                ),
            });
        }
        self.elements.push(e);
        Ok(())
    }

    /// The number of modes.
    pub fn modes(&self) -> usize {
        self.modes
    }

    /// The elements, in application order.
    pub fn elements(&self) -> &[Element] {
        &self.elements
    }

    /// Applies the mesh to a field vector in place, element by element. Refuses a field whose
    /// length is not the number of modes.
    pub fn apply(&self, field: &mut [C64]) -> Result<(), PhiError> {
        if field.len() != self.modes {
            return Err(PhiError::Shape {
                message: format!(
                    "a field of {} amplitudes given to a {}-mode mesh",
                    field.len(),
                    self.modes
                ),
            });
        }
        for e in &self.elements {
            e.apply_strided(field, 1);
        }
        Ok(())
    }

    /// The transfer matrix `E_{k−1} ⋯ E_0`, built by applying each element to the rows of the
    /// identity (O(N) per element).
    pub fn transfer_matrix(&self) -> Matrix {
        let mut m = Matrix::identity(self.modes);
        self.apply_to_matrix(&mut m);
        m
    }

    /// Left-multiplies `m` by the mesh's transfer matrix in place (`m ← M · m`). Panics if the
    /// sizes differ (a programming error).
    pub fn apply_to_matrix(&self, m: &mut Matrix) {
        assert_eq!(m.n(), self.modes, "matrix and mesh sizes differ");
        let n = self.modes;
        let data = m.data_mut();
        for e in &self.elements {
            e.apply_strided(data, n);
        }
    }
}
