//! The gate table: every gate XDV knows, as data — name, arity, parameters, matrix, inverse,
//! decomposition and documentation — in one place that the front ends, the engines, the device
//! model and the documentation all read.
//!
//! Matrix convention (Qiskit's): a gate applied to arguments `(a0, a1, …)` has a matrix whose basis
//! index is `Σ bit(a_j) · 2^j`, so the first argument is the least significant bit. A gate with
//! `controls = c` takes its controls as the first `c` arguments; its matrix is the controlled
//! expansion of [`GateDef::target_matrix`], which acts on the remaining arguments.
//!
//! Global phases are those of Qiskit's standard gates (for example
//! `rz(λ) = diag(e^{-iλ/2}, e^{iλ/2})`, not `u1(λ)`), for OpenQASM 2's `qelib1.inc` and OpenQASM 3's
//! `stdgates.inc` alike, because that is what Qiskit computes for the same file. They agree with
//! `stdgates.inc` except for `u2` and `u3`, which `stdgates.inc` defines with an extra
//! `gphase(−(φ+λ)/2)` (and `−(φ+λ+π/2)/2` for `u2`) that Qiskit drops; the phase is observable
//! only under `ctrl @` and in `xdv q state`.
//!
//! Every decomposition is exact, global phase included, except where [`GateDef::doc`] says the gate
//! is *defined* by its decomposition (the relative-phase Toffolis `rccx`, `rc3x`).

use num_complex::Complex;
use std::f64::consts::{FRAC_1_SQRT_2, FRAC_PI_2, FRAC_PI_4, PI};

/// A complex `f64`.
pub type C64 = Complex<f64>;

const ZERO: C64 = C64::new(0.0, 0.0);
const ONE: C64 = C64::new(1.0, 0.0);

/// A dense square matrix, row-major, of dimension `dim = 2^k` for a `k`-qubit operator.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix {
    /// Rows (and columns).
    pub dim: usize,
    /// `dim * dim` entries, row-major: entry `(r, c)` is `data[r * dim + c]`.
    pub data: Vec<C64>,
}

impl Matrix {
    /// The `dim × dim` identity.
    pub fn identity(dim: usize) -> Self {
        let mut data = vec![ZERO; dim * dim];
        for i in 0..dim {
            data[i * dim + i] = ONE;
        }
        Matrix { dim, data }
    }

    /// A matrix from rows (each row `dim` long).
    pub fn from_rows(rows: &[&[C64]]) -> Self {
        let dim = rows.len();
        let mut data = Vec::with_capacity(dim * dim);
        for r in rows {
            assert_eq!(r.len(), dim, "Matrix::from_rows: ragged rows");
            data.extend_from_slice(r);
        }
        Matrix { dim, data }
    }

    /// A diagonal matrix.
    pub fn diagonal(d: &[C64]) -> Self {
        let dim = d.len();
        let mut m = Matrix {
            dim,
            data: vec![ZERO; dim * dim],
        };
        for (i, &x) in d.iter().enumerate() {
            m.data[i * dim + i] = x;
        }
        m
    }

    /// Number of qubits the matrix acts on (`log2 dim`).
    pub fn qubits(&self) -> usize {
        self.dim.trailing_zeros() as usize
    }

    /// Entry `(r, c)`.
    pub fn at(&self, r: usize, c: usize) -> C64 {
        self.data[r * self.dim + c]
    }

    /// `self · rhs` (apply `rhs` first, then `self`).
    pub fn mul(&self, rhs: &Matrix) -> Matrix {
        assert_eq!(self.dim, rhs.dim, "Matrix::mul: dimensions differ");
        let n = self.dim;
        let mut out = vec![ZERO; n * n];
        for r in 0..n {
            for k in 0..n {
                let a = self.data[r * n + k];
                if a == ZERO {
                    continue;
                }
                for c in 0..n {
                    out[r * n + c] += a * rhs.data[k * n + c];
                }
            }
        }
        Matrix { dim: n, data: out }
    }

    /// The conjugate transpose.
    pub fn adjoint(&self) -> Matrix {
        let n = self.dim;
        let mut out = vec![ZERO; n * n];
        for r in 0..n {
            for c in 0..n {
                out[c * n + r] = self.data[r * n + c].conj();
            }
        }
        Matrix { dim: n, data: out }
    }

    /// Every entry multiplied by `z`.
    pub fn scale(&self, z: C64) -> Matrix {
        Matrix {
            dim: self.dim,
            data: self.data.iter().map(|&x| x * z).collect(),
        }
    }

    /// The largest entrywise distance `|self − other|`.
    pub fn max_diff(&self, other: &Matrix) -> f64 {
        assert_eq!(self.dim, other.dim, "Matrix::max_diff: dimensions differ");
        self.data
            .iter()
            .zip(&other.data)
            .map(|(a, b)| (a - b).norm())
            .fold(0.0, f64::max)
    }

    /// Whether every off-diagonal entry is exactly zero.
    pub fn is_diagonal(&self) -> bool {
        let n = self.dim;
        (0..n).all(|r| (0..n).all(|c| r == c || self.data[r * n + c] == ZERO))
    }

    /// `max |U†U − I|`: 0 for a unitary matrix, up to rounding.
    pub fn unitarity_error(&self) -> f64 {
        self.adjoint()
            .mul(self)
            .max_diff(&Matrix::identity(self.dim))
    }

    /// The controlled expansion: `controls` control qubits taking the first `controls` argument
    /// positions (low bits), `self` on the remaining ones, applied when every control bit equals
    /// the corresponding bit of `ctrl_state`.
    pub fn controlled(&self, controls: usize, ctrl_state: u64) -> Matrix {
        if controls == 0 {
            return self.clone();
        }
        let cdim = 1usize << controls;
        let dim = self.dim * cdim;
        let want = (ctrl_state as usize) & (cdim - 1);
        let mut m = Matrix::identity(dim);
        for r in 0..self.dim {
            for c in 0..self.dim {
                let (ri, ci) = ((r << controls) | want, (c << controls) | want);
                m.data[ri * dim + ci] = self.data[r * self.dim + c];
            }
        }
        m
    }

    /// Embeds this `k`-qubit matrix, acting on `positions` (argument `j` on qubit `positions[j]`),
    /// into an `n`-qubit operator.
    pub fn embed(&self, positions: &[usize], n: usize) -> Matrix {
        let k = positions.len();
        assert_eq!(1usize << k, self.dim, "Matrix::embed: arity differs");
        let dim = 1usize << n;
        let mask: usize = positions.iter().map(|&p| 1usize << p).sum();
        let mut out = vec![ZERO; dim * dim];
        let sub = |i: usize| -> usize {
            positions
                .iter()
                .enumerate()
                .map(|(j, &p)| ((i >> p) & 1) << j)
                .sum()
        };
        for col in 0..dim {
            let cs = sub(col);
            let rest = col & !mask;
            for rs in 0..self.dim {
                let mut row = rest;
                for (j, &p) in positions.iter().enumerate() {
                    row |= ((rs >> j) & 1) << p;
                }
                out[row * dim + col] = self.data[rs * self.dim + cs];
            }
        }
        Matrix { dim, data: out }
    }
}

/// A call of a table gate: a step of a decomposition, or an inverse.
#[derive(Clone, Debug, PartialEq)]
pub struct GateCall {
    /// The table gate's name.
    pub name: &'static str,
    /// Its parameters.
    pub params: Vec<f64>,
    /// Argument positions of the decomposed gate this step acts on (empty for `gphase`).
    pub args: Vec<usize>,
}

fn call(name: &'static str, params: &[f64], args: &[usize]) -> GateCall {
    GateCall {
        name,
        params: params.to_vec(),
        args: args.to_vec(),
    }
}

/// Which standard include makes a gate visible to OpenQASM source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Include {
    /// Built into the language (`U`, `CX` in OpenQASM 2; `U`, `gphase` in OpenQASM 3).
    Builtin,
    /// `qelib1.inc` only (OpenQASM 2).
    Qelib1,
    /// `stdgates.inc` only (OpenQASM 3).
    Stdgates,
    /// Both `qelib1.inc` and `stdgates.inc`.
    Both,
}

impl Include {
    /// Whether the gate is visible after including `qelib1.inc`.
    pub fn in_qelib1(self) -> bool {
        matches!(self, Include::Qelib1 | Include::Both)
    }
    /// Whether the gate is visible after including `stdgates.inc`.
    pub fn in_stdgates(self) -> bool {
        matches!(self, Include::Stdgates | Include::Both)
    }
}

/// One gate of the table.
pub struct GateDef {
    /// The name as OpenQASM spells it.
    pub name: &'static str,
    /// Number of qubit arguments, controls included.
    pub qubits: usize,
    /// Number of the leading arguments that are controls (on value 1).
    pub controls: usize,
    /// Number of angle parameters.
    pub params: usize,
    /// Which include defines it.
    pub include: Include,
    /// One line of documentation.
    pub doc: &'static str,
    /// The matrix on the target arguments (`qubits - controls` of them), for the given parameters.
    pub target_matrix: fn(&[f64]) -> Matrix,
    /// The inverse as a table gate on the same arguments, where one exists.
    pub inverse: fn(&[f64]) -> Option<GateCall>,
    /// The decomposition into other table gates (empty for the primitives `U`, `CX`, `gphase`).
    pub decomposition: fn(&[f64]) -> Vec<GateCall>,
}

impl GateDef {
    /// The full matrix on all arguments (controls expanded).
    pub fn matrix(&self, params: &[f64]) -> Matrix {
        (self.target_matrix)(params).controlled(self.controls, u64::MAX)
    }

    /// Whether the gate is one of the primitives every decomposition ends in.
    pub fn is_primitive(&self) -> bool {
        matches!(self.name, "U" | "CX" | "gphase")
    }
}

/// Looks a gate up by name.
pub fn lookup(name: &str) -> Option<&'static GateDef> {
    TABLE.iter().find(|g| g.name == name)
}

/// The whole table, in documentation order.
pub fn table() -> &'static [GateDef] {
    TABLE
}

fn e(phi: f64) -> C64 {
    C64::from_polar(1.0, phi)
}

/// `U(θ, φ, λ) = [[cos θ/2, −e^{iλ} sin θ/2], [e^{iφ} sin θ/2, e^{i(φ+λ)} cos θ/2]]`.
pub fn u_matrix(theta: f64, phi: f64, lambda: f64) -> Matrix {
    let (s, c) = (theta / 2.0).sin_cos();
    Matrix::from_rows(&[
        &[C64::new(c, 0.0), -e(lambda) * s],
        &[e(phi) * s, e(phi + lambda) * c],
    ])
}

fn phase_matrix(l: f64) -> Matrix {
    Matrix::diagonal(&[ONE, e(l)])
}

fn m_id(_: &[f64]) -> Matrix {
    Matrix::identity(2)
}
fn m_u(p: &[f64]) -> Matrix {
    u_matrix(p[0], p[1], p[2])
}
fn m_u2(p: &[f64]) -> Matrix {
    u_matrix(FRAC_PI_2, p[0], p[1])
}
fn m_p(p: &[f64]) -> Matrix {
    phase_matrix(p[0])
}
fn m_gphase(p: &[f64]) -> Matrix {
    Matrix::diagonal(&[e(p[0])])
}
fn m_x(_: &[f64]) -> Matrix {
    Matrix::from_rows(&[&[ZERO, ONE], &[ONE, ZERO]])
}
fn m_y(_: &[f64]) -> Matrix {
    let i = C64::i();
    Matrix::from_rows(&[&[ZERO, -i], &[i, ZERO]])
}
fn m_z(_: &[f64]) -> Matrix {
    phase_matrix(PI)
}
fn m_h(_: &[f64]) -> Matrix {
    let h = C64::new(FRAC_1_SQRT_2, 0.0);
    Matrix::from_rows(&[&[h, h], &[h, -h]])
}
fn m_s(_: &[f64]) -> Matrix {
    Matrix::diagonal(&[ONE, C64::i()])
}
fn m_sdg(_: &[f64]) -> Matrix {
    Matrix::diagonal(&[ONE, -C64::i()])
}
fn m_t(_: &[f64]) -> Matrix {
    phase_matrix(FRAC_PI_4)
}
fn m_tdg(_: &[f64]) -> Matrix {
    phase_matrix(-FRAC_PI_4)
}
fn m_sx(_: &[f64]) -> Matrix {
    let (a, b) = (C64::new(0.5, 0.5), C64::new(0.5, -0.5));
    Matrix::from_rows(&[&[a, b], &[b, a]])
}
fn m_sxdg(_: &[f64]) -> Matrix {
    let (a, b) = (C64::new(0.5, -0.5), C64::new(0.5, 0.5));
    Matrix::from_rows(&[&[a, b], &[b, a]])
}
fn m_rx(p: &[f64]) -> Matrix {
    let (s, c) = (p[0] / 2.0).sin_cos();
    let (c, s) = (C64::new(c, 0.0), C64::new(0.0, -s));
    Matrix::from_rows(&[&[c, s], &[s, c]])
}
fn m_ry(p: &[f64]) -> Matrix {
    let (s, c) = (p[0] / 2.0).sin_cos();
    Matrix::from_rows(&[
        &[C64::new(c, 0.0), C64::new(-s, 0.0)],
        &[C64::new(s, 0.0), C64::new(c, 0.0)],
    ])
}
fn m_rz(p: &[f64]) -> Matrix {
    Matrix::diagonal(&[e(-p[0] / 2.0), e(p[0] / 2.0)])
}
fn m_cu(p: &[f64]) -> Matrix {
    u_matrix(p[0], p[1], p[2]).scale(e(p[3]))
}
fn m_swap(_: &[f64]) -> Matrix {
    let mut m = Matrix::identity(4);
    m.data = vec![ZERO; 16];
    for (r, c) in [(0, 0), (1, 2), (2, 1), (3, 3)] {
        m.data[r * 4 + c] = ONE;
    }
    m
}
fn m_rxx(p: &[f64]) -> Matrix {
    let (s, c) = (p[0] / 2.0).sin_cos();
    let (c, s) = (C64::new(c, 0.0), C64::new(0.0, -s));
    Matrix::from_rows(&[
        &[c, ZERO, ZERO, s],
        &[ZERO, c, s, ZERO],
        &[ZERO, s, c, ZERO],
        &[s, ZERO, ZERO, c],
    ])
}
fn m_rzz(p: &[f64]) -> Matrix {
    let (a, b) = (e(-p[0] / 2.0), e(p[0] / 2.0));
    Matrix::diagonal(&[a, b, b, a])
}
/// The matrix of a gate defined by its decomposition.
fn by_decomposition(
    decomposition: fn(&[f64]) -> Vec<GateCall>,
    qubits: usize,
    p: &[f64],
) -> Matrix {
    compose(&decomposition(p), qubits)
}
fn m_rccx(p: &[f64]) -> Matrix {
    by_decomposition(d_rccx, 3, p)
}
fn m_rc3x(p: &[f64]) -> Matrix {
    by_decomposition(d_rc3x, 4, p)
}

/// The product of a sequence of table-gate calls on `n` qubits (calls applied in order).
pub fn compose(calls: &[GateCall], n: usize) -> Matrix {
    let mut acc = Matrix::identity(1 << n);
    for c in calls {
        let g = lookup(c.name).expect("compose: unknown gate in a decomposition");
        let m = g.matrix(&c.params);
        let full = if c.args.is_empty() {
            Matrix::identity(1 << n).scale(m.data[0])
        } else {
            m.embed(&c.args, n)
        };
        acc = full.mul(&acc);
    }
    acc
}

fn none(_: &[f64]) -> Option<GateCall> {
    None
}
fn inv_same(name: &'static str, qubits: usize, params: Vec<f64>) -> Option<GateCall> {
    Some(GateCall {
        name,
        params,
        args: (0..qubits).collect(),
    })
}
fn neg(p: &[f64]) -> Vec<f64> {
    p.iter().map(|x| -x).collect()
}

macro_rules! self_inverse {
    ($f:ident, $name:literal, $q:expr) => {
        fn $f(_: &[f64]) -> Option<GateCall> {
            inv_same($name, $q, vec![])
        }
    };
}
macro_rules! negated_inverse {
    ($f:ident, $name:literal, $q:expr) => {
        fn $f(p: &[f64]) -> Option<GateCall> {
            inv_same($name, $q, neg(p))
        }
    };
}
macro_rules! named_inverse {
    ($f:ident, $name:literal, $q:expr) => {
        fn $f(_: &[f64]) -> Option<GateCall> {
            inv_same($name, $q, vec![])
        }
    };
}
self_inverse!(i_id, "id", 1);
self_inverse!(i_x, "x", 1);
self_inverse!(i_y, "y", 1);
self_inverse!(i_z, "z", 1);
self_inverse!(i_h, "h", 1);
self_inverse!(i_cx, "cx", 2);
self_inverse!(i_cx_up, "CX", 2);
self_inverse!(i_cy, "cy", 2);
self_inverse!(i_cz, "cz", 2);
self_inverse!(i_ch, "ch", 2);
self_inverse!(i_swap, "swap", 2);
self_inverse!(i_ccx, "ccx", 3);
self_inverse!(i_cswap, "cswap", 3);
self_inverse!(i_c3x, "c3x", 4);
self_inverse!(i_c4x, "c4x", 5);
named_inverse!(i_s, "sdg", 1);
named_inverse!(i_sdg, "s", 1);
named_inverse!(i_t, "tdg", 1);
named_inverse!(i_tdg, "t", 1);
named_inverse!(i_sx, "sxdg", 1);
named_inverse!(i_sxdg, "sx", 1);
negated_inverse!(i_gphase, "gphase", 0);
negated_inverse!(i_p, "p", 1);
negated_inverse!(i_phase, "phase", 1);
negated_inverse!(i_u1, "u1", 1);
negated_inverse!(i_rx, "rx", 1);
negated_inverse!(i_ry, "ry", 1);
negated_inverse!(i_rz, "rz", 1);
negated_inverse!(i_crx, "crx", 2);
negated_inverse!(i_cry, "cry", 2);
negated_inverse!(i_crz, "crz", 2);
negated_inverse!(i_cu1, "cu1", 2);
negated_inverse!(i_cp, "cp", 2);
negated_inverse!(i_cphase, "cphase", 2);
negated_inverse!(i_rxx, "rxx", 2);
negated_inverse!(i_rzz, "rzz", 2);
fn i_u_named(name: &'static str, p: &[f64]) -> Option<GateCall> {
    inv_same(name, 1, vec![-p[0], -p[2], -p[1]])
}
fn i_big_u(p: &[f64]) -> Option<GateCall> {
    i_u_named("U", p)
}
fn i_u3(p: &[f64]) -> Option<GateCall> {
    i_u_named("u3", p)
}
fn i_u(p: &[f64]) -> Option<GateCall> {
    i_u_named("u", p)
}
fn i_u2(p: &[f64]) -> Option<GateCall> {
    inv_same("u3", 1, vec![-FRAC_PI_2, -p[1], -p[0]])
}
fn i_cu3(p: &[f64]) -> Option<GateCall> {
    inv_same("cu3", 2, vec![-p[0], -p[2], -p[1]])
}
fn i_cu(p: &[f64]) -> Option<GateCall> {
    inv_same("cu", 2, vec![-p[0], -p[2], -p[1], -p[3]])
}

fn d_none(_: &[f64]) -> Vec<GateCall> {
    vec![]
}
fn d_u(p: &[f64]) -> Vec<GateCall> {
    vec![call("U", p, &[0])]
}
fn d_u2(p: &[f64]) -> Vec<GateCall> {
    vec![call("U", &[FRAC_PI_2, p[0], p[1]], &[0])]
}
fn d_p(p: &[f64]) -> Vec<GateCall> {
    vec![call("U", &[0.0, 0.0, p[0]], &[0])]
}
fn d_x(_: &[f64]) -> Vec<GateCall> {
    vec![call("U", &[PI, 0.0, PI], &[0])]
}
fn d_y(_: &[f64]) -> Vec<GateCall> {
    vec![call("U", &[PI, FRAC_PI_2, FRAC_PI_2], &[0])]
}
fn d_z(_: &[f64]) -> Vec<GateCall> {
    vec![call("p", &[PI], &[0])]
}
fn d_h(_: &[f64]) -> Vec<GateCall> {
    vec![call("U", &[FRAC_PI_2, 0.0, PI], &[0])]
}
fn d_s(_: &[f64]) -> Vec<GateCall> {
    vec![call("p", &[FRAC_PI_2], &[0])]
}
fn d_sdg(_: &[f64]) -> Vec<GateCall> {
    vec![call("p", &[-FRAC_PI_2], &[0])]
}
fn d_t(_: &[f64]) -> Vec<GateCall> {
    vec![call("p", &[FRAC_PI_4], &[0])]
}
fn d_tdg(_: &[f64]) -> Vec<GateCall> {
    vec![call("p", &[-FRAC_PI_4], &[0])]
}
fn d_sx(_: &[f64]) -> Vec<GateCall> {
    vec![
        call("gphase", &[FRAC_PI_4], &[]),
        call("sdg", &[], &[0]),
        call("h", &[], &[0]),
        call("sdg", &[], &[0]),
    ]
}
fn d_sxdg(_: &[f64]) -> Vec<GateCall> {
    vec![
        call("gphase", &[-FRAC_PI_4], &[]),
        call("s", &[], &[0]),
        call("h", &[], &[0]),
        call("s", &[], &[0]),
    ]
}
fn d_rx(p: &[f64]) -> Vec<GateCall> {
    vec![call("U", &[p[0], -FRAC_PI_2, FRAC_PI_2], &[0])]
}
fn d_ry(p: &[f64]) -> Vec<GateCall> {
    vec![call("U", &[p[0], 0.0, 0.0], &[0])]
}
fn d_rz(p: &[f64]) -> Vec<GateCall> {
    vec![
        call("gphase", &[-p[0] / 2.0], &[]),
        call("U", &[0.0, 0.0, p[0]], &[0]),
    ]
}
fn d_cx(_: &[f64]) -> Vec<GateCall> {
    vec![call("CX", &[], &[0, 1])]
}
fn d_cy(_: &[f64]) -> Vec<GateCall> {
    vec![
        call("sdg", &[], &[1]),
        call("cx", &[], &[0, 1]),
        call("s", &[], &[1]),
    ]
}
fn d_cz(_: &[f64]) -> Vec<GateCall> {
    vec![
        call("h", &[], &[1]),
        call("cx", &[], &[0, 1]),
        call("h", &[], &[1]),
    ]
}
fn d_ch(_: &[f64]) -> Vec<GateCall> {
    // H = Ry(π/4) · X · Ry(−π/4) up to nothing: controlled on a, the target sees ry(-π/4), then
    // x, then ry(π/4); when a = 0 the rotations cancel.
    vec![
        call("ry", &[-FRAC_PI_4], &[1]),
        call("cz", &[], &[0, 1]),
        call("ry", &[FRAC_PI_4], &[1]),
    ]
}
fn d_swap(_: &[f64]) -> Vec<GateCall> {
    vec![
        call("cx", &[], &[0, 1]),
        call("cx", &[], &[1, 0]),
        call("cx", &[], &[0, 1]),
    ]
}
fn d_crx(p: &[f64]) -> Vec<GateCall> {
    vec![
        call("p", &[FRAC_PI_2], &[1]),
        call("cx", &[], &[0, 1]),
        call("u3", &[-p[0] / 2.0, 0.0, 0.0], &[1]),
        call("cx", &[], &[0, 1]),
        call("u3", &[p[0] / 2.0, -FRAC_PI_2, 0.0], &[1]),
    ]
}
fn d_cry(p: &[f64]) -> Vec<GateCall> {
    vec![
        call("ry", &[p[0] / 2.0], &[1]),
        call("cx", &[], &[0, 1]),
        call("ry", &[-p[0] / 2.0], &[1]),
        call("cx", &[], &[0, 1]),
    ]
}
fn d_crz(p: &[f64]) -> Vec<GateCall> {
    vec![
        call("rz", &[p[0] / 2.0], &[1]),
        call("cx", &[], &[0, 1]),
        call("rz", &[-p[0] / 2.0], &[1]),
        call("cx", &[], &[0, 1]),
    ]
}
fn d_cp(p: &[f64]) -> Vec<GateCall> {
    vec![
        call("p", &[p[0] / 2.0], &[0]),
        call("cx", &[], &[0, 1]),
        call("p", &[-p[0] / 2.0], &[1]),
        call("cx", &[], &[0, 1]),
        call("p", &[p[0] / 2.0], &[1]),
    ]
}
fn d_cu3(p: &[f64]) -> Vec<GateCall> {
    let (t, f, l) = (p[0], p[1], p[2]);
    vec![
        call("p", &[(l + f) / 2.0], &[0]),
        call("p", &[(l - f) / 2.0], &[1]),
        call("cx", &[], &[0, 1]),
        call("u3", &[-t / 2.0, 0.0, -(f + l) / 2.0], &[1]),
        call("cx", &[], &[0, 1]),
        call("u3", &[t / 2.0, f, 0.0], &[1]),
    ]
}
fn d_cu(p: &[f64]) -> Vec<GateCall> {
    vec![call("p", &[p[3]], &[0]), call("cu3", &p[..3], &[0, 1])]
}
fn d_csx(_: &[f64]) -> Vec<GateCall> {
    vec![
        call("h", &[], &[1]),
        call("cp", &[FRAC_PI_2], &[0, 1]),
        call("h", &[], &[1]),
    ]
}
fn d_rxx(p: &[f64]) -> Vec<GateCall> {
    vec![
        call("h", &[], &[0]),
        call("h", &[], &[1]),
        call("cx", &[], &[0, 1]),
        call("rz", &[p[0]], &[1]),
        call("cx", &[], &[0, 1]),
        call("h", &[], &[0]),
        call("h", &[], &[1]),
    ]
}
fn d_rzz(p: &[f64]) -> Vec<GateCall> {
    vec![
        call("cx", &[], &[0, 1]),
        call("rz", &[p[0]], &[1]),
        call("cx", &[], &[0, 1]),
    ]
}
fn d_ccx(_: &[f64]) -> Vec<GateCall> {
    let (a, b, c) = (0, 1, 2);
    vec![
        call("h", &[], &[c]),
        call("cx", &[], &[b, c]),
        call("tdg", &[], &[c]),
        call("cx", &[], &[a, c]),
        call("t", &[], &[c]),
        call("cx", &[], &[b, c]),
        call("tdg", &[], &[c]),
        call("cx", &[], &[a, c]),
        call("t", &[], &[b]),
        call("t", &[], &[c]),
        call("h", &[], &[c]),
        call("cx", &[], &[a, b]),
        call("t", &[], &[a]),
        call("tdg", &[], &[b]),
        call("cx", &[], &[a, b]),
    ]
}
fn d_cswap(_: &[f64]) -> Vec<GateCall> {
    vec![
        call("cx", &[], &[2, 1]),
        call("ccx", &[], &[0, 1, 2]),
        call("cx", &[], &[2, 1]),
    ]
}
/// A phase `e^{iλ}` on the states where all of `args` are 1, exactly, from `p` and `cx` gates:
/// `x_1 ⋯ x_m = 2^{1−m} Σ_{S ≠ ∅} (−1)^{|S|−1} ⊕_{i∈S} x_i`, each parity computed into the
/// subset's last qubit with `cx`, phased, and uncomputed.
fn multi_controlled_phase(lambda: f64, args: &[usize]) -> Vec<GateCall> {
    let m = args.len();
    let scale = lambda / (1u64 << (m - 1)) as f64;
    let mut out = Vec::new();
    for set in 1u32..(1 << m) {
        let members: Vec<usize> = (0..m)
            .filter(|i| set >> i & 1 == 1)
            .map(|i| args[i])
            .collect();
        let (&last, rest) = members.split_last().expect("non-empty subset");
        let sign = if members.len() % 2 == 1 { 1.0 } else { -1.0 };
        for &q in rest {
            out.push(call("cx", &[], &[q, last]));
        }
        out.push(call("p", &[sign * scale], &[last]));
        for &q in rest.iter().rev() {
            out.push(call("cx", &[], &[q, last]));
        }
    }
    out
}
fn hadamard_sandwich(target: usize, middle: Vec<GateCall>) -> Vec<GateCall> {
    let mut out = vec![call("h", &[], &[target])];
    out.extend(middle);
    out.push(call("h", &[], &[target]));
    out
}
fn d_c3x(_: &[f64]) -> Vec<GateCall> {
    hadamard_sandwich(3, multi_controlled_phase(PI, &[0, 1, 2, 3]))
}
fn d_c4x(_: &[f64]) -> Vec<GateCall> {
    hadamard_sandwich(4, multi_controlled_phase(PI, &[0, 1, 2, 3, 4]))
}
fn d_c3sqrtx(_: &[f64]) -> Vec<GateCall> {
    // sx = H · S · H exactly, so C³(sx) = H · C³(p(π/2)) · H on the target.
    hadamard_sandwich(3, multi_controlled_phase(FRAC_PI_2, &[0, 1, 2, 3]))
}
fn d_rccx(_: &[f64]) -> Vec<GateCall> {
    let (a, b, c) = (0, 1, 2);
    vec![
        call("u2", &[0.0, PI], &[c]),
        call("u1", &[FRAC_PI_4], &[c]),
        call("cx", &[], &[b, c]),
        call("u1", &[-FRAC_PI_4], &[c]),
        call("cx", &[], &[a, c]),
        call("u1", &[FRAC_PI_4], &[c]),
        call("cx", &[], &[b, c]),
        call("u1", &[-FRAC_PI_4], &[c]),
        call("u2", &[0.0, PI], &[c]),
    ]
}
fn d_rc3x(_: &[f64]) -> Vec<GateCall> {
    let (a, b, c, d) = (0, 1, 2, 3);
    let u2 = |q| call("u2", &[0.0, PI], &[q]);
    let u1 = |l, q| call("u1", &[l], &[q]);
    let cx = |x, y| call("cx", &[], &[x, y]);
    vec![
        u2(d),
        u1(FRAC_PI_4, d),
        cx(c, d),
        u1(-FRAC_PI_4, d),
        u2(d),
        cx(a, d),
        u1(FRAC_PI_4, d),
        cx(b, d),
        u1(-FRAC_PI_4, d),
        cx(a, d),
        u1(FRAC_PI_4, d),
        cx(b, d),
        u1(-FRAC_PI_4, d),
        u2(d),
        u1(FRAC_PI_4, d),
        cx(c, d),
        u1(-FRAC_PI_4, d),
        u2(d),
    ]
}
fn d_alias_u(p: &[f64]) -> Vec<GateCall> {
    vec![call("U", p, &[0])]
}
fn d_alias_p(p: &[f64]) -> Vec<GateCall> {
    vec![call("p", p, &[0])]
}
fn d_alias_cp(p: &[f64]) -> Vec<GateCall> {
    vec![call("cp", p, &[0, 1])]
}
fn d_id(_: &[f64]) -> Vec<GateCall> {
    vec![call("U", &[0.0, 0.0, 0.0], &[0])]
}

macro_rules! gate {
    ($name:literal, $q:expr, $c:expr, $p:expr, $inc:ident, $m:expr, $inv:expr, $dec:expr, $doc:literal) => {
        GateDef {
            name: $name,
            qubits: $q,
            controls: $c,
            params: $p,
            include: Include::$inc,
            doc: $doc,
            target_matrix: $m,
            inverse: $inv,
            decomposition: $dec,
        }
    };
}

static TABLE: &[GateDef] = &[
    gate!("U", 1, 0, 3, Builtin, m_u, i_big_u, d_none, "U(θ,φ,λ) = [[cos θ/2, −e^{iλ} sin θ/2], [e^{iφ} sin θ/2, e^{i(φ+λ)} cos θ/2]]; the built-in single-qubit gate"),
    gate!("CX", 2, 1, 0, Builtin, m_x, i_cx_up, d_none, "controlled-NOT, built in: flips the second argument when the first is 1"),
    gate!("gphase", 0, 0, 1, Builtin, m_gphase, i_gphase, d_none, "global phase e^{iγ} (OpenQASM 3); observable only under ctrl @"),
    gate!("id", 1, 0, 0, Both, m_id, i_id, d_id, "identity"),
    gate!("u3", 1, 0, 3, Both, m_u, i_u3, d_u, "u3(θ,φ,λ) = U(θ,φ,λ)"),
    gate!("u", 1, 0, 3, Qelib1, m_u, i_u, d_alias_u, "u(θ,φ,λ) = U(θ,φ,λ) (Qiskit's qelib1.inc)"),
    gate!("u2", 1, 0, 2, Both, m_u2, i_u2, d_u2, "u2(φ,λ) = U(π/2,φ,λ)"),
    gate!("u1", 1, 0, 1, Both, m_p, i_u1, d_p, "u1(λ) = diag(1, e^{iλ}) = U(0,0,λ)"),
    gate!("p", 1, 0, 1, Both, m_p, i_p, d_p, "phase p(λ) = diag(1, e^{iλ})"),
    gate!("phase", 1, 0, 1, Stdgates, m_p, i_phase, d_alias_p, "phase(λ) = p(λ) (stdgates.inc alias)"),
    gate!("u0", 1, 0, 1, Qelib1, m_id, none, d_id, "u0(γ): identity for the duration of γ idle units (qelib1.inc); simulated as identity"),
    gate!("x", 1, 0, 0, Both, m_x, i_x, d_x, "Pauli X (NOT)"),
    gate!("y", 1, 0, 0, Both, m_y, i_y, d_y, "Pauli Y = [[0, −i], [i, 0]]"),
    gate!("z", 1, 0, 0, Both, m_z, i_z, d_z, "Pauli Z = diag(1, −1)"),
    gate!("h", 1, 0, 0, Both, m_h, i_h, d_h, "Hadamard (X+Z)/√2"),
    gate!("s", 1, 0, 0, Both, m_s, i_s, d_s, "S = diag(1, i) = √Z"),
    gate!("sdg", 1, 0, 0, Both, m_sdg, i_sdg, d_sdg, "S† = diag(1, −i)"),
    gate!("t", 1, 0, 0, Both, m_t, i_t, d_t, "T = diag(1, e^{iπ/4})"),
    gate!("tdg", 1, 0, 0, Both, m_tdg, i_tdg, d_tdg, "T† = diag(1, e^{−iπ/4})"),
    gate!("sx", 1, 0, 0, Both, m_sx, i_sx, d_sx, "√X = ½[[1+i, 1−i], [1−i, 1+i]]"),
    gate!("sxdg", 1, 0, 0, Qelib1, m_sxdg, i_sxdg, d_sxdg, "√X† = ½[[1−i, 1+i], [1+i, 1−i]]"),
    gate!("rx", 1, 0, 1, Both, m_rx, i_rx, d_rx, "rx(θ) = exp(−iθX/2)"),
    gate!("ry", 1, 0, 1, Both, m_ry, i_ry, d_ry, "ry(θ) = exp(−iθY/2)"),
    gate!("rz", 1, 0, 1, Both, m_rz, i_rz, d_rz, "rz(λ) = exp(−iλZ/2) = diag(e^{−iλ/2}, e^{iλ/2})"),
    gate!("cx", 2, 1, 0, Both, m_x, i_cx, d_cx, "controlled-NOT: cx control, target"),
    gate!("cy", 2, 1, 0, Both, m_y, i_cy, d_cy, "controlled-Y"),
    gate!("cz", 2, 1, 0, Both, m_z, i_cz, d_cz, "controlled-Z"),
    gate!("ch", 2, 1, 0, Both, m_h, i_ch, d_ch, "controlled-Hadamard"),
    gate!("swap", 2, 0, 0, Both, m_swap, i_swap, d_swap, "exchanges two qubits"),
    gate!("crx", 2, 1, 1, Both, m_rx, i_crx, d_crx, "controlled rx(θ)"),
    gate!("cry", 2, 1, 1, Both, m_ry, i_cry, d_cry, "controlled ry(θ)"),
    gate!("crz", 2, 1, 1, Both, m_rz, i_crz, d_crz, "controlled rz(λ)"),
    gate!("cu1", 2, 1, 1, Qelib1, m_p, i_cu1, d_cp, "controlled u1(λ) = diag(1, 1, 1, e^{iλ})"),
    gate!("cp", 2, 1, 1, Both, m_p, i_cp, d_cp, "controlled phase cp(λ) = diag(1, 1, 1, e^{iλ})"),
    gate!("cphase", 2, 1, 1, Stdgates, m_p, i_cphase, d_alias_cp, "cphase(λ) = cp(λ) (stdgates.inc alias)"),
    gate!("cu3", 2, 1, 3, Qelib1, m_u, i_cu3, d_cu3, "controlled u3(θ,φ,λ)"),
    gate!("cu", 2, 1, 4, Both, m_cu, i_cu, d_cu, "cu(θ,φ,λ,γ): controlled e^{iγ}·U(θ,φ,λ)"),
    gate!("csx", 2, 1, 0, Qelib1, m_sx, none, d_csx, "controlled √X"),
    gate!("rxx", 2, 0, 1, Qelib1, m_rxx, i_rxx, d_rxx, "rxx(θ) = exp(−iθ X⊗X/2)"),
    gate!("rzz", 2, 0, 1, Qelib1, m_rzz, i_rzz, d_rzz, "rzz(θ) = exp(−iθ Z⊗Z/2)"),
    gate!("ccx", 3, 2, 0, Both, m_x, i_ccx, d_ccx, "Toffoli: flips the third argument when the first two are 1"),
    gate!("cswap", 3, 1, 0, Both, m_swap, i_cswap, d_cswap, "Fredkin: swaps the last two arguments when the first is 1"),
    gate!("rccx", 3, 0, 0, Qelib1, m_rccx, none, d_rccx, "relative-phase Toffoli (Margolus), defined by its qelib1.inc decomposition; equals ccx up to phases on the computational basis"),
    gate!("c3x", 4, 3, 0, Qelib1, m_x, i_c3x, d_c3x, "triple-controlled X"),
    gate!("c3sqrtx", 4, 3, 0, Qelib1, m_sx, none, d_c3sqrtx, "triple-controlled √X"),
    gate!("rc3x", 4, 0, 0, Qelib1, m_rc3x, none, d_rc3x, "relative-phase triple-controlled X, defined by its qelib1.inc decomposition"),
    gate!("c4x", 5, 4, 0, Qelib1, m_x, i_c4x, d_c4x, "quadruple-controlled X"),
];

/// The gate table as a Markdown document (`docs/q-gates.md` is this text; `xdv q gates`
/// prints it).
pub fn markdown() -> String {
    let mut out = String::from(
        "# Q gate table\n\nGenerated from `crates/xdv-q/src/gates.rs` by `xdv q gates`; a test keeps this file equal to\nthe table. Arguments: controls first, then targets; the matrix convention is in\n[q.md](q.md).\n\n| gate | qubits | controls | params | include | inverse | decomposes into | meaning |\n|---|---:|---:|---:|---|---|---|---|\n",
    );
    for g in TABLE {
        let p = sample_params(g.params, 1);
        let inverse = match (g.inverse)(&p) {
            Some(c) if c.name == g.name && g.params == 0 => "itself".to_string(),
            Some(c) => format!("`{}`", c.name),
            None => "adjoint matrix".to_string(),
        };
        let mut parts: Vec<&str> = (g.decomposition)(&p).iter().map(|c| c.name).collect();
        parts.dedup();
        let mut seen = Vec::new();
        parts.retain(|n| {
            let new = !seen.contains(n);
            seen.push(*n);
            new
        });
        let dec = if parts.is_empty() {
            "primitive".to_string()
        } else {
            parts
                .iter()
                .map(|n| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let include = match g.include {
            Include::Builtin => "built in",
            Include::Qelib1 => "qelib1.inc",
            Include::Stdgates => "stdgates.inc",
            Include::Both => "qelib1.inc, stdgates.inc",
        };
        out += &format!(
            "| `{}` | {} | {} | {} | {} | {} | {} | {} |\n",
            g.name, g.qubits, g.controls, g.params, include, inverse, dec, g.doc
        );
    }
    out
}

/// Parameters the self-consistency checks use for a gate with `n` parameters.
pub fn sample_params(n: usize, seed: u64) -> Vec<f64> {
    (0..n)
        .map(|i| {
            let x = ((seed.wrapping_mul(6364136223846793005).wrapping_add(
                1442695040888963407u64.wrapping_add((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)),
            )) >> 11) as f64
                / (1u64 << 53) as f64;
            (x - 0.5) * 4.0 * PI
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOL: f64 = 1e-12;

    #[test]
    fn names_are_unique() {
        for (i, g) in TABLE.iter().enumerate() {
            assert!(
                TABLE[..i].iter().all(|h| h.name != g.name),
                "{} listed twice",
                g.name
            );
        }
    }

    #[test]
    fn every_matrix_is_unitary_with_the_declared_arity() {
        for g in TABLE {
            for seed in 0..5 {
                let p = sample_params(g.params, seed);
                let m = g.matrix(&p);
                assert_eq!(m.dim, 1 << g.qubits, "{}: dimension", g.name);
                assert!(
                    m.unitarity_error() < TOL,
                    "{}({p:?}) is not unitary",
                    g.name
                );
                assert!(g.controls <= g.qubits);
            }
        }
    }

    #[test]
    fn every_decomposition_multiplies_to_the_matrix() {
        for g in TABLE {
            if g.is_primitive() {
                assert!((g.decomposition)(&[0.0; 4][..g.params]).is_empty());
                continue;
            }
            for seed in 0..5 {
                let p = sample_params(g.params, seed);
                let steps = (g.decomposition)(&p);
                assert!(!steps.is_empty(), "{} has no decomposition", g.name);
                for s in &steps {
                    let d = lookup(s.name)
                        .unwrap_or_else(|| panic!("{}: unknown step {}", g.name, s.name));
                    assert_eq!(
                        d.params,
                        s.params.len(),
                        "{}: step {} params",
                        g.name,
                        s.name
                    );
                    assert_eq!(d.qubits, s.args.len(), "{}: step {} args", g.name, s.name);
                }
                let composed = compose(&steps, g.qubits);
                let d = composed.max_diff(&g.matrix(&p));
                assert!(d < 1e-10, "{}({p:?}): decomposition differs by {d}", g.name);
            }
        }
    }

    #[test]
    fn every_inverse_is_the_adjoint() {
        for g in TABLE {
            for seed in 0..5 {
                let p = sample_params(g.params, seed);
                if let Some(inv) = (g.inverse)(&p) {
                    let d = lookup(inv.name).expect("inverse is a table gate");
                    assert_eq!(d.qubits, g.qubits);
                    let m = d.matrix(&inv.params);
                    let diff = m.max_diff(&g.matrix(&p).adjoint());
                    assert!(
                        diff < TOL,
                        "{}: inverse {} differs by {diff}",
                        g.name,
                        inv.name
                    );
                }
            }
        }
    }

    #[test]
    fn relative_phase_toffolis_match_their_exact_gates_in_magnitude() {
        for (rel, exact) in [("rccx", "ccx"), ("rc3x", "c3x")] {
            let a = lookup(rel).unwrap().matrix(&[]);
            let b = lookup(exact).unwrap().matrix(&[]);
            for (x, y) in a.data.iter().zip(&b.data) {
                assert!((x.norm() - y.norm()).abs() < TOL, "{rel} vs {exact}");
            }
        }
    }

    #[test]
    fn closed_forms() {
        let x = lookup("x").unwrap().matrix(&[]);
        let h = lookup("h").unwrap().matrix(&[]);
        let z = lookup("z").unwrap().matrix(&[]);
        assert!(h.mul(&z).mul(&h).max_diff(&x) < TOL, "HZH = X");
        let cx = lookup("cx").unwrap().matrix(&[]);
        // |control=1, target=0> (index 1) -> |1,1> (index 3)
        assert_eq!(cx.at(3, 1), ONE);
        assert_eq!(cx.at(0, 0), ONE);
        let sx = lookup("sx").unwrap().matrix(&[]);
        assert!(sx.mul(&sx).max_diff(&x) < TOL, "sx² = x");
        let rz = lookup("rz").unwrap().matrix(&[PI]);
        assert!(rz.max_diff(&z.scale(e(-FRAC_PI_2))) < TOL, "rz(π) = −i Z");
    }

    #[test]
    fn includes_match_the_standard_headers() {
        let qelib1 = [
            "u3", "u2", "u1", "cx", "id", "u0", "u", "p", "x", "y", "z", "h", "s", "sdg", "t",
            "tdg", "rx", "ry", "rz", "sx", "sxdg", "cz", "cy", "swap", "ch", "ccx", "cswap", "crx",
            "cry", "crz", "cu1", "cp", "cu3", "csx", "cu", "rxx", "rzz", "rccx", "rc3x", "c3x",
            "c3sqrtx", "c4x",
        ];
        let stdgates = [
            "p", "x", "y", "z", "h", "s", "sdg", "t", "tdg", "sx", "rx", "ry", "rz", "cx", "cy",
            "cz", "cp", "crx", "cry", "crz", "ch", "swap", "ccx", "cswap", "cu", "phase", "cphase",
            "id", "u1", "u2", "u3",
        ];
        for g in TABLE {
            assert_eq!(
                g.include.in_qelib1(),
                qelib1.contains(&g.name),
                "{} in qelib1",
                g.name
            );
            assert_eq!(
                g.include.in_stdgates(),
                stdgates.contains(&g.name),
                "{} in stdgates",
                g.name
            );
        }
    }

    #[test]
    fn the_documented_table_is_the_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/q-gates.md");
        let doc = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            doc == markdown(),
            "docs/q-gates.md is not the gate table; regenerate it with `cargo run -q -- q gates > docs/q-gates.md`"
        );
    }

    #[test]
    fn embed_places_arguments_on_qubits() {
        // cx with control on qubit 2 and target on qubit 0, in 3 qubits: |100> -> |101>
        let cx = lookup("cx").unwrap().matrix(&[]);
        let m = cx.embed(&[2, 0], 3);
        assert_eq!(m.at(0b101, 0b100), ONE);
        assert_eq!(m.at(0b001, 0b001), ONE);
        assert!(m.unitarity_error() < TOL);
    }
}
