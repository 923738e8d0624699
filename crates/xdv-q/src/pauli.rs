//! Pauli observables: a real-weighted sum of Pauli strings, parsed from text like
//! `0.5*ZZI + XIX - 1.2*III`, evaluated exactly on a state ([`Observable::expectation`]) or
//! estimated from shots ([`Observable::estimate`]).
//!
//! # Syntax
//!
//! A sum of terms separated by `+` or `-`; the first may carry a sign. A term is an optional real
//! coefficient (`0.5`, `2`, `.5`, `1e-3`, `1.2E+3`), optionally followed by `*` or spaces, then a
//! Pauli label of the letters `I X Y Z` — upper case only (a lower-case letter is refused with a
//! hint). Spaces may appear anywhere between tokens. Every label has the same length, the number
//! of qubits; the leftmost letter acts on the highest qubit (`ZI` is Z on qubit 1). Examples:
//! `0.5*ZZI`, `0.5 ZZI`, `-ZZ`, `+ 1e-3*XY`.
//!
//! # Exact expectation
//!
//! A string `P` is `X^x · Z^z` times `i^{#Y}` per qubit (`Y = i·X·Z`), with `x` the mask of X
//! and Y letters and `z` the mask of Z and Y letters, so
//! `⟨ψ|P|ψ⟩ = i^{#Y} Σ_i conj(a_{i⊕x}) (−1)^{|i∧z|} a_i`: one pass over the amplitudes per term,
//! accumulated in `f64`.
//!
//! # Estimation from shots
//!
//! Terms are grouped greedily into qubit-wise commuting groups (on every qubit, the non-identity
//! letters of a group agree), in the order given. For each group, a copy of the final state is
//! rotated into the group's basis (H for X, S†·H for Y) and `shots` shots are sampled from it
//! (stream `(Estimate, g·2^32)` of the seed, see [`crate::exec::sample_state`]). A shot with
//! outcome `b` gives the group value `v = Σ_{k∈g} c_k (−1)^{|b ∧ support_k|}`; the estimate is
//! the sum over groups of the mean of `v`, plus the identity terms' coefficients exactly. It is
//! unbiased; its variance is `Σ_g Var(v_g)/shots`, with
//! `Var(v_g) = Σ_{k,l∈g} c_k c_l (⟨P_k P_l⟩ − ⟨P_k⟩⟨P_l⟩)` (for a single term,
//! `c²(1 − ⟨P⟩²)/shots`). [`Estimate::std_error`] is that standard deviation estimated from the
//! samples' own variance.

use crate::circuit::{Circuit, Gate};
use crate::engine::Engine;
use crate::exec::{final_state, sample_state, ExecError, SHOTS_MAX};
use crate::gates::{Matrix, C64};
use crate::real::Real;
use crate::rng::Purpose;
use crate::state::{state_bytes, StateVec};
use std::fmt;
use thiserror::Error;

/// The most qubits an observable may have.
pub const OBSERVABLE_QUBITS_MAX: u32 = 64;
/// The most terms an observable may have.
pub const OBSERVABLE_TERMS_MAX: usize = 1 << 16;
/// The longest observable text accepted, in bytes.
pub const OBSERVABLE_TEXT_BYTES_MAX: usize = 1 << 20;

/// What kind of mistake an observable has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PauliErrorKind {
    /// Nothing but spaces.
    Empty,
    /// A term (coefficient or label) was expected.
    ExpectedTerm,
    /// A `+` or `-` was expected between terms.
    ExpectedOperator,
    /// A coefficient that is not a finite number.
    BadNumber,
    /// A lower-case Pauli letter.
    LowerCase,
    /// A character that is not a Pauli letter.
    BadLetter,
    /// A label of a different length from the first.
    LengthMismatch,
    /// Longer labels or more terms or text than allowed.
    TooLarge,
    /// The observable's qubit count differs from the circuit's or state's.
    QubitCount,
}

/// An observable that does not parse or does not fit.
#[derive(Clone, Debug, Error, PartialEq)]
pub struct PauliError {
    /// The kind.
    pub kind: PauliErrorKind,
    /// 1-based column (characters) in the text; 0 when not about a position.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

impl fmt::Display for PauliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.column > 0 {
            write!(f, "observable, column {}: ", self.column)?;
        } else {
            write!(f, "observable: ")?;
        }
        write!(f, "{}; {}", self.message, self.hint)
    }
}

fn err(kind: PauliErrorKind, column: usize, message: String, hint: &str) -> PauliError {
    PauliError {
        kind,
        column,
        message,
        hint: hint.into(),
    }
}

/// One weighted Pauli string.
#[derive(Clone, Debug, PartialEq)]
pub struct PauliTerm {
    /// The real coefficient.
    pub coeff: f64,
    /// The label as written (leftmost letter on the highest qubit).
    pub label: String,
    /// Qubits with X or Y.
    pub x_mask: u64,
    /// Qubits with Z or Y.
    pub z_mask: u64,
    /// Number of Y letters.
    pub y_count: u32,
}

impl PauliTerm {
    /// Qubits with a non-identity letter.
    pub fn support(&self) -> u64 {
        self.x_mask | self.z_mask
    }
}

/// A sum of weighted Pauli strings on a fixed number of qubits.
#[derive(Clone, Debug, PartialEq)]
pub struct Observable {
    /// The terms, in the order written.
    pub terms: Vec<PauliTerm>,
    /// The number of qubits (the labels' length).
    pub qubits: u32,
}

/// An estimate of an expectation value from shots.
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    /// The estimate.
    pub value: f64,
    /// Its standard error, from the samples' variance.
    pub std_error: f64,
    /// The number of measured groups (each sampled `shots` times).
    pub groups: usize,
    /// Shots per group.
    pub shots_per_group: u64,
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    _text: &'a str,
}

impl Lexer<'_> {
    fn skip_ws(&mut self) {
        while self.pos < self.chars.len() && self.chars[self.pos].is_whitespace() {
            self.pos += 1;
        }
    }
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }
    fn col(&self) -> usize {
        self.pos + 1
    }
}

impl Observable {
    /// Parses an observable (syntax in the module doc).
    pub fn parse(text: &str) -> Result<Observable, PauliError> {
        use PauliErrorKind as K;
        if text.len() > OBSERVABLE_TEXT_BYTES_MAX {
            return Err(err(
                K::TooLarge,
                0,
                format!("{} bytes of text", text.len()),
                &format!("an observable is at most {OBSERVABLE_TEXT_BYTES_MAX} bytes"),
            ));
        }
        let mut lx = Lexer {
            chars: text.chars().collect(),
            pos: 0,
            _text: text,
        };
        let mut terms: Vec<PauliTerm> = Vec::new();
        let mut qubits: Option<(u32, usize)> = None;
        lx.skip_ws();
        if lx.peek().is_none() {
            return Err(err(
                K::Empty,
                1,
                "the observable is empty".into(),
                "write a sum of Pauli strings such as `0.5*ZZ + XX`",
            ));
        }
        let mut first = true;
        loop {
            lx.skip_ws();
            let mut sign = 1.0;
            match lx.peek() {
                Some('+') => lx.pos += 1,
                Some('-') => {
                    sign = -1.0;
                    lx.pos += 1
                }
                Some(c) if !first => {
                    return Err(err(
                        K::ExpectedOperator,
                        lx.col(),
                        format!("`{c}` where `+` or `-` was expected"),
                        "separate terms with + or -",
                    ))
                }
                _ => {}
            }
            first = false;
            lx.skip_ws();
            let term_col = lx.col();
            let mut coeff = 1.0;
            if let Some(c) = lx.peek() {
                if c.is_ascii_digit() || c == '.' {
                    let start = lx.pos;
                    let digits = |lx: &mut Lexer| {
                        while lx.peek().is_some_and(|c| c.is_ascii_digit()) {
                            lx.pos += 1;
                        }
                    };
                    digits(&mut lx);
                    if lx.peek() == Some('.') {
                        lx.pos += 1;
                        digits(&mut lx);
                    }
                    if matches!(lx.peek(), Some('e' | 'E')) {
                        lx.pos += 1;
                        if matches!(lx.peek(), Some('+' | '-')) {
                            lx.pos += 1;
                        }
                        digits(&mut lx);
                    }
                    let s: String = lx.chars[start..lx.pos].iter().collect();
                    coeff = match s.parse::<f64>() {
                        Ok(v) if v.is_finite() => v,
                        _ => {
                            return Err(err(
                                K::BadNumber,
                                start + 1,
                                format!("`{s}` is not a finite number"),
                                "write a coefficient like 0.5, 2, .5 or 1e-3",
                            ))
                        }
                    };
                    lx.skip_ws();
                    if lx.peek() == Some('*') {
                        lx.pos += 1;
                        lx.skip_ws();
                    }
                }
            }
            let label_start = lx.pos;
            while lx.peek().is_some_and(|c| c.is_alphanumeric()) {
                lx.pos += 1;
            }
            let label: String = lx.chars[label_start..lx.pos].iter().collect();
            if label.is_empty() {
                return Err(match lx.peek() {
                    None => err(
                        K::ExpectedTerm,
                        lx.col(),
                        "the observable ends where a Pauli label was expected".into(),
                        "finish the term with a label such as ZZ",
                    ),
                    Some(c) => err(
                        K::ExpectedTerm,
                        lx.col(),
                        format!("`{c}` where a Pauli label was expected"),
                        "a term is [coefficient [*]] label, e.g. 0.5*ZZ",
                    ),
                });
            }
            let n = label.chars().count();
            let (mut x, mut z, mut ny) = (0u64, 0u64, 0u32);
            for (j, ch) in label.chars().enumerate() {
                let col = label_start + j + 1;
                if n > OBSERVABLE_QUBITS_MAX as usize {
                    return Err(err(
                        K::TooLarge,
                        label_start + 1,
                        format!("a {n}-letter label"),
                        &format!("labels have at most {OBSERVABLE_QUBITS_MAX} letters"),
                    ));
                }
                let q = (n - 1 - j) as u32;
                match ch {
                    'I' => {}
                    'X' => x |= 1 << q,
                    'Z' => z |= 1 << q,
                    'Y' => {
                        x |= 1 << q;
                        z |= 1 << q;
                        ny += 1
                    }
                    'i' | 'x' | 'y' | 'z' => {
                        return Err(err(
                            K::LowerCase,
                            col,
                            format!("lower-case Pauli letter `{ch}`"),
                            &format!(
                                "Pauli letters are upper case: write `{}`",
                                ch.to_ascii_uppercase()
                            ),
                        ))
                    }
                    _ => {
                        return Err(err(
                            K::BadLetter,
                            col,
                            format!("`{ch}` is not a Pauli letter"),
                            "a label uses only I, X, Y and Z",
                        ))
                    }
                }
            }
            match qubits {
                None => qubits = Some((n as u32, term_col)),
                Some((m, c0)) if m as usize != n => {
                    return Err(err(
                        K::LengthMismatch,
                        label_start + 1,
                        format!(
                            "label `{label}` has {n} letters but the first (column {c0}) has {m}"
                        ),
                        "every label names every qubit; pad with I",
                    ))
                }
                _ => {}
            }
            if terms.len() >= OBSERVABLE_TERMS_MAX {
                return Err(err(
                    K::TooLarge,
                    term_col,
                    format!("more than {OBSERVABLE_TERMS_MAX} terms"),
                    "split the observable",
                ));
            }
            terms.push(PauliTerm {
                coeff: sign * coeff,
                label,
                x_mask: x,
                z_mask: z,
                y_count: ny,
            });
            lx.skip_ws();
            if lx.peek().is_none() {
                break;
            }
        }
        Ok(Observable {
            terms,
            qubits: qubits.map_or(0, |(m, _)| m),
        })
    }

    /// Checks that the observable has `n` qubits.
    pub fn check_qubits(&self, n: u32) -> Result<(), PauliError> {
        if self.qubits != n {
            return Err(err(
                PauliErrorKind::QubitCount,
                0,
                format!(
                    "the observable's labels have {} letters but the circuit has {n} qubits",
                    self.qubits
                ),
                "write one letter per qubit (pad with I), highest qubit leftmost",
            ));
        }
        Ok(())
    }

    /// The exact expectation value on `state` (which need not be normalised: the result is
    /// divided by its squared norm), accumulated in `f64`.
    pub fn expectation<T: Real>(&self, state: &StateVec<T>) -> Result<f64, PauliError> {
        self.check_qubits(state.qubits())?;
        let amps = state.amplitudes();
        let norm = state.norm_sqr();
        let mut total = 0.0;
        for t in &self.terms {
            let x = t.x_mask as usize;
            let (mut re, mut im) = (0.0f64, 0.0f64);
            for (i, a) in amps.iter().enumerate() {
                let b = amps[i ^ x];
                let (ar, ai, br, bi) = (a.re.to_f64(), a.im.to_f64(), b.re.to_f64(), b.im.to_f64());
                // conj(b) · a
                let (pr, pi) = (br * ar + bi * ai, br * ai - bi * ar);
                if (i as u64 & t.z_mask).count_ones() & 1 == 1 {
                    re -= pr;
                    im -= pi;
                } else {
                    re += pr;
                    im += pi;
                }
            }
            // Multiply by i^{#Y} and keep the real part.
            let v = match t.y_count % 4 {
                0 => re,
                1 => -im,
                2 => -re,
                _ => im,
            };
            total += t.coeff * v;
        }
        Ok(if norm > 0.0 { total / norm } else { total })
    }

    /// The qubit-wise commuting groups (indices into `terms`), identity terms excluded, and the
    /// basis of each group per qubit (`b'X'`, `b'Y'`, `b'Z'` or 0).
    pub fn groups(&self) -> Vec<(Vec<usize>, Vec<u8>)> {
        let n = self.qubits as usize;
        let letter = |t: &PauliTerm, q: usize| -> u8 {
            match ((t.x_mask >> q) & 1, (t.z_mask >> q) & 1) {
                (1, 0) => b'X',
                (1, 1) => b'Y',
                (0, 1) => b'Z',
                _ => 0,
            }
        };
        let mut groups: Vec<(Vec<usize>, Vec<u8>)> = Vec::new();
        for (k, t) in self.terms.iter().enumerate() {
            if t.support() == 0 {
                continue;
            }
            let fits = |basis: &Vec<u8>| {
                (0..n).all(|q| {
                    let l = letter(t, q);
                    l == 0 || basis[q] == 0 || basis[q] == l
                })
            };
            match groups.iter_mut().find(|(_, b)| fits(b)) {
                Some((members, basis)) => {
                    members.push(k);
                    for (q, b) in basis.iter_mut().enumerate() {
                        let l = letter(t, q);
                        if l != 0 {
                            *b = l;
                        }
                    }
                }
                None => groups.push((vec![k], (0..n).map(|q| letter(t, q)).collect())),
            }
        }
        groups
    }

    /// Estimates the expectation value on the final state of `c` from `shots` shots per
    /// qubit-wise commuting group (estimator and variance in the module doc). The circuit must
    /// be unitary up to terminal measurements, which are dropped.
    pub fn estimate<T: Real>(
        &self,
        c: &Circuit,
        engine: &dyn Engine<T>,
        shots: u64,
        seed: u64,
        memory_bytes_max: u64,
    ) -> Result<Estimate, ExecError> {
        self.check_qubits(c.num_qubits)?;
        if shots == 0 {
            return Err(ExecError::NoShots);
        }
        if shots > SHOTS_MAX {
            return Err(ExecError::TooManyShots {
                shots,
                max: SHOTS_MAX,
            });
        }
        let (state, _) = final_state(c, engine, memory_bytes_max)?;
        let copy_fits = state_bytes::<T>(c.num_qubits)
            .checked_mul(2)
            .is_some_and(|b| b <= memory_bytes_max);
        let identity: f64 = self
            .terms
            .iter()
            .filter(|t| t.support() == 0)
            .map(|t| t.coeff)
            .sum();
        let groups = self.groups();
        let s = std::f64::consts::FRAC_1_SQRT_2;
        let h = Matrix::from_rows(&[
            &[C64::new(s, 0.0), C64::new(s, 0.0)],
            &[C64::new(s, 0.0), C64::new(-s, 0.0)],
        ]);
        let sdg = Matrix::diagonal(&[C64::new(1.0, 0.0), C64::new(0.0, -1.0)]);
        let gate = |name: &str, m: &Matrix, q: usize| Gate {
            name: name.into(),
            params: vec![],
            targets: vec![q as u32],
            controls: vec![],
            ctrl_state: 0,
            matrix: m.clone(),
        };
        let (mut value, mut var) = (identity, 0.0);
        let mut state = Some(state);
        for (g, (members, basis)) in groups.iter().enumerate() {
            let mut rotated = match (&state, copy_fits) {
                (Some(s0), true) => s0.clone(),
                _ => {
                    state = None;
                    final_state(c, engine, memory_bytes_max)?.0
                }
            };
            let mut rot = Vec::new();
            for (q, &b) in basis.iter().enumerate() {
                match b {
                    b'X' => rot.push(gate("h", &h, q)),
                    b'Y' => {
                        rot.push(gate("sdg", &sdg, q));
                        rot.push(gate("h", &h, q));
                    }
                    _ => {}
                }
            }
            engine.apply_gates(&mut rotated, &rot);
            let samples = sample_state(&rotated, shots, seed, Purpose::Estimate, (g as u64) << 32)?;
            let (mut sum, mut sum2) = (0.0f64, 0.0f64);
            for (index, k) in samples {
                let v: f64 = members
                    .iter()
                    .map(|&m| {
                        let t = &self.terms[m];
                        if (index & t.support()).count_ones() & 1 == 1 {
                            -t.coeff
                        } else {
                            t.coeff
                        }
                    })
                    .sum();
                sum += k as f64 * v;
                sum2 += k as f64 * v * v;
            }
            let n = shots as f64;
            let mean = sum / n;
            value += mean;
            if shots > 1 {
                let sample_var = ((sum2 / n - mean * mean) * n / (n - 1.0)).max(0.0);
                var += sample_var / n;
            }
        }
        Ok(Estimate {
            value,
            std_error: var.sqrt(),
            groups: groups.len(),
            shots_per_group: shots,
        })
    }
}
