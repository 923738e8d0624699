//! The importer for Blackbird (`.xbb`), the program format of Strawberry Fields (SF), restricted
//! to its passive linear subset: what coherent classical light through a mesh can do.
//!
//! **Accepted.**
//! - Header lines `name NAME`, `version 1.x`, and an optional `target NAME (key=value, …)`; a
//!   target's `shots = S` becomes the detection's shot count.
//! - Declarations of scalars (`float alpha = 0.3`, also `complex`, `int`) and typed arrays
//!   (`complex array U[4, 4] =` followed by one indented line per row, entries separated by
//!   commas, as SF writes them; the shape is optional and checked when given).
//! - Expressions: numbers (`1`, `0.5`, `1e-3`), imaginary literals (`0.2j`), `pi`, declared
//!   scalars, `+ − * / **` (and `^`), parentheses, and `sqrt exp log sin cos tan arcsin arccos
//!   arctan sinh cosh tanh`. Complex literals such as `0.5+0.2j` are sums. Gate parameters must
//!   come out real.
//! - Modes written `0`, `q[0]`, `[0, 1]`, `(q[0], q[1])`; the program has max index + 1 modes.
//! - Operations, converted exactly from SF's conventions (SF 0.23 `strawberryfields/ops.py`; SF's
//!   gates act on the annihilation operators, so a coherent amplitude vector transforms by the same
//!   matrix):
//!   - `Coherent(r, phi)`: the input amplitude `α = r·e^{iφ}` (SF's `Coherent(r=0, phi=0)`);
//!     `Vacuum()`: amplitude 0. A preparation must come before every gate on its mode.
//!   - `Rgate(phi)`: `a ← e^{iφ} a`, XDV's `phase`.
//!   - `BSgate(theta=π/4, phi=0) | (a, b)`: `B = [[cos θ, −e^{−iφ} sin θ], [e^{iφ} sin θ, cos θ]]`
//!     on `(a, b)` (SF: `t = cos θ`, `r = e^{iφ} sin θ`, `a → t·a − r*·b`, `b → r·a + t·b`).
//!   - `MZgate(phi_in, phi_ex) | (a, b)`: `BS(π/4, π/2) · R_a(φ_in) · BS(π/4, π/2) · R_a(φ_ex)`,
//!     the external phase on mode a first (SF's `MZgate._decompose`).
//!   - `Interferometer(U) | [m_0, …, m_{k−1}]`: `U` on the listed modes (in that order), compiled
//!     through Clements. SF writes matrices with about 8 digits; a matrix within
//!     [`BLACKBIRD_UNITARITY_TOLERANCE`] of unitary is replaced by its nearest unitary (the polar
//!     factor from the SVD), which differs from the written one by about the deviation.
//!   - `LossChannel(T)`: power transmission T ∈ [0, 1], XDV's `attenuate` with η = T.
//!   - `MeasureHomodyne(phi=0)`, `MeasureX` (φ = 0), `MeasureP` (φ = π/2): homodyne detection of
//!     the mode with the local-oscillator phase φ, ħ = 2 as SF's default (see [`crate::detect`]).
//!     No gate may touch a mode after its measurement; with no measurement the detection is
//!     XDV's default (noise-free intensities).
//!
//! Two-mode gates and interferometers on modes that are not adjacent and ascending are embedded in
//! a unitary on the contiguous range they span (identity on the modes between), so every gate is
//! exact whatever its modes.
//!
//! **Refused**, with the name, `line:column` and why: every non-passive or quantum operation
//! (`Squeezed`, `Sgate`, `S2gate`, `Kgate`, `Vgate`, `Fock`, `MeasureFock`, `Catstate`, `GKP`,
//! …: squeezing and non-Gaussian operations belong to the Q domain), displacements (`Dgate`,
//! `Xgate`, `Zgate`: affine, not linear; write a `Coherent` input), post-selection (`select=`),
//! TDM programs (`type tdm`), loops, includes and free template parameters. Syntax errors name
//! `file:line:column`.

use std::collections::BTreeMap;
use std::f64::consts::PI;

use crate::clements::decompose;
use crate::detect::{Detect, HomodyneDetect};
use crate::program::{
    grid_wavelength_nm, Op, Program, ELEMENTS_MAX, MODES_MAX, OPS_MAX, PROGRAM_FILE_BYTES_MAX,
    UNITARY_MODES_MAX,
};
use crate::svd::nearest_unitary;
use crate::{Matrix, PhiError, C64, UNITARITY_TOLERANCE};

/// The largest max |U†U − I| of an `Interferometer` matrix that the importer accepts (and
/// replaces by its nearest unitary when above [`UNITARITY_TOLERANCE`]).
pub const BLACKBIRD_UNITARITY_TOLERANCE: f64 = 1e-6;
/// Most entries of one declared array.
pub const ARRAY_ENTRIES_MAX: usize = 1 << 22;
/// Deepest nesting of parentheses in an expression.
pub const EXPR_DEPTH_MAX: usize = 64;

/// Operations that belong to the Q domain, with the reason.
const QUANTUM: &[(&str, &str)] = &[
    (
        "Squeezed",
        "a squeezed state is a non-classical (Gaussian, non-passive) state",
    ),
    (
        "DisplacedSqueezed",
        "a squeezed state is a non-classical (Gaussian, non-passive) state",
    ),
    ("Sgate", "squeezing is a non-passive Gaussian operation"),
    (
        "S2gate",
        "two-mode squeezing is a non-passive Gaussian operation",
    ),
    (
        "Pgate",
        "the quadratic phase gate is a non-passive Gaussian operation",
    ),
    (
        "CXgate",
        "the controlled-X (quadrature) gate is a non-passive Gaussian operation",
    ),
    (
        "CZgate",
        "the controlled-Z (quadrature) gate is a non-passive Gaussian operation",
    ),
    (
        "Gaussian",
        "a general Gaussian state is non-classical in general",
    ),
    (
        "GaussianTransform",
        "a symplectic transform is non-passive in general",
    ),
    ("Thermal", "a thermal state is not a coherent field"),
    (
        "ThermalLossChannel",
        "thermal noise adds photons: it is not passive",
    ),
    (
        "BipartiteGraphEmbed",
        "graph embedding prepares squeezed light",
    ),
    ("GraphEmbed", "graph embedding prepares squeezed light"),
    ("Kgate", "the Kerr gate is non-Gaussian"),
    ("CKgate", "the cross-Kerr gate is non-Gaussian"),
    ("Vgate", "the cubic phase gate is non-Gaussian"),
    ("Fock", "a Fock state is non-Gaussian"),
    ("Catstate", "a cat state is non-Gaussian"),
    ("GKP", "a GKP state is non-Gaussian"),
    ("Ket", "a state vector is quantum"),
    ("DensityMatrix", "a density matrix is quantum"),
    (
        "MeasureFock",
        "photon-number-resolving measurement of quantum light is non-Gaussian",
    ),
    (
        "MeasureThreshold",
        "threshold detection of quantum light is non-Gaussian",
    ),
    ("MeasureHD", "heterodyne measurement of a quantum state"),
    (
        "MeasureHeterodyne",
        "heterodyne measurement of a quantum state",
    ),
];

/// Displacements: Gaussian, but affine on the field rather than linear.
const DISPLACEMENTS: &[&str] = &["Dgate", "Xgate", "Zgate"];

/// A syntax or semantic error at a position.
struct BbError {
    line: usize,
    col: usize,
    key: String,
    message: String,
    hint: String,
}

fn err(
    line: usize,
    col: usize,
    key: impl Into<String>,
    message: impl Into<String>,
    hint: impl Into<String>,
) -> BbError {
    BbError {
        line,
        col,
        key: key.into(),
        message: message.into(),
        hint: hint.into(),
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Num(f64),
    Imag(f64),
    Ident(String),
    Sym(&'static str),
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    col: usize,
}

/// Splits one line (without its comment) into tokens; `col` is 1-based in characters.
fn lex(line: &str, line_no: usize) -> Result<Vec<Token>, BbError> {
    let chars: Vec<char> = line.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_digit() || (c == '.' && chars.get(i + 1).is_some_and(|d| d.is_ascii_digit()))
        {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                i += 1;
            }
            if i < chars.len() && (chars[i] == 'e' || chars[i] == 'E') {
                let save = i;
                i += 1;
                if i < chars.len() && (chars[i] == '+' || chars[i] == '-') {
                    i += 1;
                }
                if i < chars.len() && chars[i].is_ascii_digit() {
                    while i < chars.len() && chars[i].is_ascii_digit() {
                        i += 1;
                    }
                } else {
                    i = save;
                }
            }
            let text: String = chars[start..i].iter().collect();
            let v: f64 = text.parse().map_err(|_| {
                err(
                    line_no,
                    col,
                    "(syntax)",
                    format!("`{text}` is not a number"),
                    "write numbers like 0.5, 2, 1e-3",
                )
            })?;
            if i < chars.len() && chars[i] == 'j' {
                i += 1;
                out.push(Token {
                    tok: Tok::Imag(v),
                    col,
                });
            } else {
                out.push(Token {
                    tok: Tok::Num(v),
                    col,
                });
            }
            continue;
        }
        if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Ident(chars[start..i].iter().collect()),
                col,
            });
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let sym: &'static str = match (two.as_str(), c) {
            ("**", _) => "**",
            (_, '+') => "+",
            (_, '-') => "-",
            (_, '*') => "*",
            (_, '/') => "/",
            (_, '^') => "**",
            (_, '(') => "(",
            (_, ')') => ")",
            (_, '[') => "[",
            (_, ']') => "]",
            (_, ',') => ",",
            (_, '|') => "|",
            (_, '=') => "=",
            (_, '{') => {
                return Err(err(
                    line_no,
                    col,
                    "(syntax)",
                    "a free template parameter `{…}`",
                    "give the parameter a value in the file",
                ))
            }
            _ => {
                return Err(err(
                    line_no,
                    col,
                    "(syntax)",
                    format!("unexpected character `{c}`"),
                    "see docs/phi.md for the Blackbird subset XDV reads",
                ))
            }
        };
        i += sym.len().min(if two == "**" { 2 } else { 1 });
        out.push(Token {
            tok: Tok::Sym(sym),
            col,
        });
    }
    Ok(out)
}

/// A cursor over one line's tokens.
struct Cursor<'a> {
    toks: &'a [Token],
    pos: usize,
    line: usize,
    /// The column just after the line's last character (for errors at the end).
    end_col: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<&'a Tok> {
        self.toks.get(self.pos).map(|t| &t.tok)
    }
    fn col(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end_col, |t| t.col)
    }
    fn next(&mut self) -> Option<&'a Tok> {
        let t = self.toks.get(self.pos).map(|t| &t.tok);
        self.pos += 1;
        t
    }
    fn eat(&mut self, s: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Sym(x)) if *x == s) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, s: &str, what: &str) -> Result<(), BbError> {
        if self.eat(s) {
            Ok(())
        } else {
            Err(err(
                self.line,
                self.col(),
                "(syntax)",
                format!("expected `{s}` {what}, found {}", describe(self.peek())),
                "see docs/phi.md for the Blackbird subset XDV reads",
            ))
        }
    }
    fn done(&self) -> bool {
        self.pos >= self.toks.len()
    }
}

fn describe(t: Option<&Tok>) -> String {
    match t {
        None => "the end of the line".into(),
        Some(Tok::Num(v)) => format!("the number {v}"),
        Some(Tok::Imag(v)) => format!("the number {v}j"),
        Some(Tok::Ident(s)) => format!("`{s}`"),
        Some(Tok::Sym(s)) => format!("`{s}`"),
    }
}

/// The declared names: scalars and arrays (rows of entries).
#[derive(Default)]
struct Scope {
    scalars: BTreeMap<String, C64>,
    arrays: BTreeMap<String, Vec<Vec<C64>>>,
}

/// expr := term (('+'|'-') term)*
fn expr(c: &mut Cursor<'_>, scope: &Scope, depth: usize) -> Result<C64, BbError> {
    if depth > EXPR_DEPTH_MAX {
        return Err(err(
            c.line,
            c.col(),
            "(syntax)",
            "the expression nests too deeply",
            format!("at most {EXPR_DEPTH_MAX} levels of parentheses"),
        ));
    }
    let mut v = term(c, scope, depth)?;
    loop {
        if c.eat("+") {
            v += term(c, scope, depth)?;
        } else if c.eat("-") {
            v -= term(c, scope, depth)?;
        } else {
            return Ok(v);
        }
    }
}

/// term := unary (('*'|'/') unary)*
fn term(c: &mut Cursor<'_>, scope: &Scope, depth: usize) -> Result<C64, BbError> {
    let mut v = unary(c, scope, depth)?;
    loop {
        if c.eat("*") {
            v *= unary(c, scope, depth)?;
        } else if c.eat("/") {
            v /= unary(c, scope, depth)?;
        } else {
            return Ok(v);
        }
    }
}

/// unary := ('-'|'+') unary | power
fn unary(c: &mut Cursor<'_>, scope: &Scope, depth: usize) -> Result<C64, BbError> {
    if c.eat("-") {
        return Ok(-unary(c, scope, depth + 1)?);
    }
    if c.eat("+") {
        return unary(c, scope, depth + 1);
    }
    power(c, scope, depth)
}

/// power := atom ('**' unary)?   (right-associative, binding tighter than unary minus on its
/// left, as in Python)
fn power(c: &mut Cursor<'_>, scope: &Scope, depth: usize) -> Result<C64, BbError> {
    let base = atom(c, scope, depth)?;
    if c.eat("**") {
        let e = unary(c, scope, depth + 1)?;
        if e.im == 0.0 && base.im == 0.0 && (base.re >= 0.0 || e.re.fract() == 0.0) {
            return Ok(C64::new(base.re.powf(e.re), 0.0));
        }
        return Ok(base.powc(e));
    }
    Ok(base)
}

fn atom(c: &mut Cursor<'_>, scope: &Scope, depth: usize) -> Result<C64, BbError> {
    let col = c.col();
    match c.next() {
        Some(Tok::Num(v)) => Ok(C64::new(*v, 0.0)),
        Some(Tok::Imag(v)) => Ok(C64::new(0.0, *v)),
        Some(Tok::Sym("(")) => {
            let v = expr(c, scope, depth + 1)?;
            c.expect(")", "to close the parenthesis")?;
            Ok(v)
        }
        Some(Tok::Ident(name)) => {
            if name == "pi" {
                return Ok(C64::new(PI, 0.0));
            }
            if let Some(v) = scope.scalars.get(name) {
                return Ok(*v);
            }
            let f: fn(C64) -> C64 = match name.as_str() {
                "sqrt" => |z| z.sqrt(),
                "exp" => |z| z.exp(),
                "log" => |z| z.ln(),
                "sin" => |z| z.sin(),
                "cos" => |z| z.cos(),
                "tan" => |z| z.tan(),
                "arcsin" => |z| z.asin(),
                "arccos" => |z| z.acos(),
                "arctan" => |z| z.atan(),
                "sinh" => |z| z.sinh(),
                "cosh" => |z| z.cosh(),
                "tanh" => |z| z.tanh(),
                _ => {
                    return Err(err(
                        c.line,
                        col,
                        name.clone(),
                        format!("`{name}` is neither a declared scalar nor a known function"),
                        "declare it first (float name = …), or use pi, sqrt, exp, log, sin, cos, tan, arcsin, arccos, arctan, sinh, cosh, tanh",
                    ))
                }
            };
            c.expect("(", &format!("after the function `{name}`"))?;
            let arg = expr(c, scope, depth + 1)?;
            c.expect(")", "to close the function's argument")?;
            // Real arguments in a real function's domain stay real (sqrt(2), log(3)).
            let v = f(arg);
            Ok(if arg.im == 0.0 && v.im.abs() <= 1e-300 {
                C64::new(v.re, 0.0)
            } else {
                v
            })
        }
        other => Err(err(
            c.line,
            col,
            "(syntax)",
            format!("expected a number, name or `(`, found {}", describe(other)),
            "write expressions like 0.5, pi/4, sqrt(2)*cos(0.3), 0.5+0.2j",
        )),
    }
}

/// A real value: refuses one with an imaginary part.
fn real(v: C64, line: usize, col: usize, gate: &str) -> Result<f64, BbError> {
    if v.im.abs() > 1e-12 * (1.0 + v.re.abs()) || !v.re.is_finite() {
        return Err(err(
            line,
            col,
            gate,
            format!(
                "the parameter {} + {}i is not a finite real number",
                v.re, v.im
            ),
            "gate parameters are real (angles in radians, magnitudes, transmissions)",
        ));
    }
    Ok(v.re)
}

/// One argument of an operation: positional or `key=value`; an expression or an array's name.
enum Arg {
    Value(C64, usize),
    Array(String, usize),
}

/// `modes` := item | '[' item (',' item)* ']' | '(' … ')';  item := INT | 'q' '[' INT ']'
fn modes(c: &mut Cursor<'_>) -> Result<Vec<(usize, usize)>, BbError> {
    let mut out = Vec::new();
    let close = if c.eat("[") {
        Some("]")
    } else if c.eat("(") {
        Some(")")
    } else {
        None
    };
    loop {
        let col = c.col();
        let m = match c.next() {
            Some(Tok::Num(v)) if v.fract() == 0.0 && *v >= 0.0 => *v,
            Some(Tok::Ident(q)) if q == "q" => {
                c.expect("[", "after q")?;
                let col2 = c.col();
                let v = match c.next() {
                    Some(Tok::Num(v)) if v.fract() == 0.0 && *v >= 0.0 => *v,
                    other => {
                        return Err(err(
                            c.line,
                            col2,
                            "(syntax)",
                            format!("expected a mode number, found {}", describe(other)),
                            "write q[0], q[1], …",
                        ))
                    }
                };
                c.expect("]", "after the mode number")?;
                v
            }
            other => {
                return Err(err(
                    c.line,
                    col,
                    "(syntax)",
                    format!(
                        "expected a mode (a whole number or q[i]), found {}",
                        describe(other)
                    ),
                    "write modes as 0, q[0], [0, 1] or (q[0], q[1])",
                ))
            }
        };
        if m >= MODES_MAX as f64 {
            return Err(err(
                c.line,
                col,
                "(modes)",
                format!("mode {m} is beyond the limit of {MODES_MAX} modes"),
                "number modes from 0",
            ));
        }
        out.push((m as usize, col));
        match close {
            None => break,
            Some(cl) => {
                if c.eat(",") {
                    continue;
                }
                c.expect(cl, "to close the list of modes")?;
                break;
            }
        }
    }
    Ok(out)
}

/// An operation read from one line, before conversion.
struct Statement {
    name: String,
    col: usize,
    /// (keyword, column of the argument's start, value).
    args: Vec<(Option<String>, usize, Arg)>,
    modes: Vec<(usize, usize)>,
}

fn statement(c: &mut Cursor<'_>, scope: &Scope) -> Result<Statement, BbError> {
    let col = c.col();
    let name = match c.next() {
        Some(Tok::Ident(n)) => n.clone(),
        other => {
            return Err(err(
                c.line,
                col,
                "(syntax)",
                format!("expected an operation name, found {}", describe(other)),
                "write an operation as Name(arguments) | modes",
            ))
        }
    };
    let mut args = Vec::new();
    if c.eat("(") && !c.eat(")") {
        loop {
            let acol = c.col();
            let mut key = None;
            if let (
                Some(Tok::Ident(k)),
                Some(Token {
                    tok: Tok::Sym("="), ..
                }),
            ) = (c.peek(), c.toks.get(c.pos + 1))
            {
                key = Some(k.clone());
                c.pos += 2;
            }
            let vcol = c.col();
            let arg = match (c.peek(), c.toks.get(c.pos + 1).map(|t| &t.tok)) {
                (Some(Tok::Ident(n)), Some(Tok::Sym(")" | ",")))
                    if scope.arrays.contains_key(n) =>
                {
                    c.pos += 1;
                    Arg::Array(n.clone(), vcol)
                }
                _ => Arg::Value(expr(c, scope, 0)?, vcol),
            };
            args.push((key, acol, arg));
            if c.eat(",") {
                continue;
            }
            c.expect(")", "to close the arguments")?;
            break;
        }
    }
    c.expect(
        "|",
        &format!("after `{name}(…)`: an operation is applied to modes with `|`"),
    )?;
    let modes = modes(c)?;
    if !c.done() {
        return Err(err(
            c.line,
            c.col(),
            "(syntax)",
            format!("unexpected {} after the modes", describe(c.peek())),
            "one operation per line",
        ));
    }
    Ok(Statement {
        name,
        col,
        args,
        modes,
    })
}

/// The positional-or-keyword parameters of a gate, with defaults.
fn params(st: &Statement, line: usize, names: &[(&str, Option<f64>)]) -> Result<Vec<f64>, BbError> {
    let mut vals: Vec<Option<f64>> = names.iter().map(|(_, d)| *d).collect();
    let mut positional = 0usize;
    let mut seen_key = false;
    for (key, kcol, arg) in &st.args {
        let (v, col) = match arg {
            Arg::Value(v, col) => (*v, *col),
            Arg::Array(n, col) => {
                return Err(err(
                    line,
                    *col,
                    st.name.clone(),
                    format!("the array `{n}` given where a number is expected"),
                    "pass a number or an expression",
                ))
            }
        };
        let idx = match key {
            None => {
                if seen_key {
                    return Err(err(
                        line,
                        col,
                        st.name.clone(),
                        "a positional argument after a keyword argument",
                        "write positional arguments first",
                    ));
                }
                positional += 1;
                positional - 1
            }
            Some(k) => {
                seen_key = true;
                match names.iter().position(|(n, _)| n == k) {
                    Some(i) => i,
                    None if k == "select" => {
                        return Err(err(line, *kcol, st.name.clone(), "post-selection (`select=`) conditions a quantum state on a measurement outcome", "remove select: XDV's detection samples the coherent field"))
                    }
                    None => {
                        return Err(err(line, *kcol, st.name.clone(), format!("`{}` has no parameter `{k}`", st.name), format!("its parameters are {}", names.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "))))
                    }
                }
            }
        };
        if idx >= names.len() {
            return Err(err(
                line,
                col,
                st.name.clone(),
                format!("`{}` takes at most {} parameters", st.name, names.len()),
                format!(
                    "its parameters are {}",
                    names.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        vals[idx] = Some(real(v, line, col, &st.name)?);
    }
    vals.iter()
        .zip(names)
        .map(|(v, (n, _))| {
            v.ok_or_else(|| {
                err(
                    line,
                    st.col,
                    st.name.clone(),
                    format!("missing parameter `{n}`"),
                    format!(
                        "write {}({})",
                        st.name,
                        names.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
                    ),
                )
            })
        })
        .collect()
}

/// A k × k unitary on the listed modes (in that order), embedded in the contiguous range they
/// span; returns (first mode, matrix).
fn embed(u: &Matrix, modes: &[usize]) -> (usize, Matrix) {
    let lo = modes.iter().copied().min().unwrap_or(0);
    let hi = modes.iter().copied().max().unwrap_or(0);
    let n = hi - lo + 1;
    let mut w = Matrix::identity(n);
    for &m in modes {
        w.set(m - lo, m - lo, C64::new(0.0, 0.0));
    }
    for (i, &mi) in modes.iter().enumerate() {
        for (j, &mj) in modes.iter().enumerate() {
            w.set(mi - lo, mj - lo, u.get(i, j));
        }
    }
    (lo, w)
}

fn mat2(m: [[C64; 2]; 2]) -> Matrix {
    let mut out = Matrix::zeros(2);
    for (i, row) in m.iter().enumerate() {
        for (j, &v) in row.iter().enumerate() {
            out.set(i, j, v);
        }
    }
    out
}

/// SF's beam splitter `[[cos θ, −e^{−iφ} sin θ], [e^{iφ} sin θ, cos θ]]`.
pub fn sf_bsgate(theta: f64, phi: f64) -> [[C64; 2]; 2] {
    let (s, c) = theta.sin_cos();
    [
        [C64::new(c, 0.0), -C64::from_polar(s, -phi)],
        [C64::from_polar(s, phi), C64::new(c, 0.0)],
    ]
}

/// SF's Mach–Zehnder gate `BS(π/4, π/2) · R_0(φ_in) · BS(π/4, π/2) · R_0(φ_ex)`.
pub fn sf_mzgate(phi_in: f64, phi_ex: f64) -> [[C64; 2]; 2] {
    let bs = sf_bsgate(PI / 4.0, PI / 2.0);
    let r = |p: f64| {
        [
            [C64::from_polar(1.0, p), C64::new(0.0, 0.0)],
            [C64::new(0.0, 0.0), C64::new(1.0, 0.0)],
        ]
    };
    let mul = |a: [[C64; 2]; 2], b: [[C64; 2]; 2]| {
        let mut o = [[C64::new(0.0, 0.0); 2]; 2];
        for i in 0..2 {
            for j in 0..2 {
                o[i][j] = a[i][0] * b[0][j] + a[i][1] * b[1][j];
            }
        }
        o
    };
    mul(bs, mul(r(phi_in), mul(bs, r(phi_ex))))
}

/// Reads a Blackbird program (the passive linear subset; see the module docs) into a checked
/// [`Program`]; `origin` names the file in errors.
pub fn from_blackbird(text: &str, origin: &str) -> Result<Program, PhiError> {
    if text.len() > PROGRAM_FILE_BYTES_MAX {
        return Err(PhiError::Limit {
            what: "the program file size in bytes".into(),
            value: text.len() as u64,
            max: PROGRAM_FILE_BYTES_MAX as u64,
            hint: "split the program".into(),
        });
    }
    parse(text).map_err(|e| PhiError::Program {
        file: origin.to_string(),
        position: Some((e.line, e.col)),
        key: e.key,
        message: e.message,
        hint: e.hint,
    })
}

/// An operation waiting for the program's mode count, with the line it came from.
enum Pending {
    Op(Op),
    /// A unitary on a contiguous range; compiled after reading (its matrix is final).
    Unitary(usize, Matrix, usize, usize, String),
}

fn parse(text: &str) -> Result<Program, BbError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut scope = Scope::default();
    let mut pending: Vec<Pending> = Vec::new();
    let mut inputs: BTreeMap<usize, C64> = BTreeMap::new();
    let mut touched: BTreeMap<usize, (usize, usize)> = BTreeMap::new();
    let mut measured: BTreeMap<usize, (f64, usize, usize)> = BTreeMap::new();
    let mut max_mode: Option<usize> = None;
    let mut shots = 1usize;
    let mut i = 0usize;
    while i < lines.len() {
        let line_no = i + 1;
        let raw = lines[i];
        let body = raw.split('#').next().unwrap_or("");
        i += 1;
        // A program's name may hold any characters: the line is not lexed.
        let first_word = body.split_whitespace().next().unwrap_or("");
        if first_word == "name" {
            continue;
        }
        let toks = lex(body, line_no)?;
        if toks.is_empty() {
            continue;
        }
        let mut c = Cursor {
            toks: &toks,
            pos: 0,
            line: line_no,
            end_col: body.chars().count() + 1,
        };
        let Some(Tok::Ident(head)) = c.peek() else {
            return Err(err(
                line_no,
                c.col(),
                "(syntax)",
                format!("a line starts with {}", describe(c.peek())),
                "a line is a header (name, version, target), a declaration or an operation",
            ));
        };
        let head = head.clone();
        match head.as_str() {
            "version" => {
                c.next();
                let col = c.col();
                match c.next() {
                    Some(Tok::Num(v)) if (1.0..2.0).contains(v) => {}
                    other => {
                        return Err(err(
                            line_no,
                            col,
                            "version",
                            format!("version {} is not a Blackbird 1.x version", describe(other)),
                            "write version 1.0",
                        ))
                    }
                }
            }
            "target" => {
                c.next();
                match c.next() {
                    Some(Tok::Ident(_)) => {}
                    other => {
                        return Err(err(
                            line_no,
                            c.col(),
                            "target",
                            format!("expected a target name, found {}", describe(other)),
                            "write target gaussian (shots=10), or leave the line out",
                        ))
                    }
                }
                if c.eat("(") && !c.eat(")") {
                    loop {
                        let kcol = c.col();
                        let key = match c.next() {
                            Some(Tok::Ident(k)) => k.clone(),
                            other => {
                                return Err(err(
                                    line_no,
                                    kcol,
                                    "target",
                                    format!("expected an option name, found {}", describe(other)),
                                    "write options as key=value",
                                ))
                            }
                        };
                        c.expect("=", "after the option name")?;
                        let vcol = c.col();
                        let v = expr(&mut c, &scope, 0)?;
                        if key == "shots" {
                            let s = real(v, line_no, vcol, "target")?;
                            if !(s >= 1.0
                                && s <= crate::detect::SHOTS_MAX as f64
                                && s.fract() == 0.0)
                            {
                                return Err(err(
                                    line_no,
                                    vcol,
                                    "shots",
                                    format!(
                                        "shots = {s} is not a whole number in 1 ..= {}",
                                        crate::detect::SHOTS_MAX
                                    ),
                                    "give the number of detection windows",
                                ));
                            }
                            shots = s as usize;
                        }
                        if c.eat(",") {
                            continue;
                        }
                        c.expect(")", "to close the target's options")?;
                        break;
                    }
                }
            }
            "type" => {
                return Err(err(
                    line_no,
                    c.col(),
                    "type",
                    "typed (time-domain, TDM) programs are not part of the passive linear subset",
                    "remove the type line; XDV reads spatial-mode programs",
                ));
            }
            "include" | "for" | "def" => {
                return Err(err(
                    line_no,
                    c.col(),
                    head.clone(),
                    format!("`{head}` is not supported by XDV's Blackbird importer"),
                    "write the program out without includes, loops or definitions",
                ));
            }
            "float" | "complex" | "int" | "bool" | "str" => {
                c.next();
                let is_array = matches!(c.peek(), Some(Tok::Ident(a)) if a == "array");
                if is_array {
                    c.next();
                }
                let ncol = c.col();
                let name = match c.next() {
                    Some(Tok::Ident(n)) if n != "pi" && n != "q" => n.clone(),
                    other => {
                        return Err(err(
                            line_no,
                            ncol,
                            "(syntax)",
                            format!("expected a variable name, found {}", describe(other)),
                            "write float alpha = 0.5 or complex array U[2, 2] =",
                        ))
                    }
                };
                if is_array {
                    let mut shape: Option<(usize, usize, usize)> = None;
                    if c.eat("[") {
                        let scol = c.col();
                        let mut dims = Vec::new();
                        loop {
                            match c.next() {
                                Some(Tok::Num(v))
                                    if v.fract() == 0.0
                                        && *v >= 1.0
                                        && *v <= ARRAY_ENTRIES_MAX as f64 =>
                                {
                                    dims.push(*v as usize)
                                }
                                other => {
                                    return Err(err(
                                        line_no,
                                        c.col(),
                                        "(syntax)",
                                        format!(
                                            "expected an array dimension, found {}",
                                            describe(other)
                                        ),
                                        "write the shape as [rows, columns]",
                                    ))
                                }
                            }
                            if c.eat(",") {
                                continue;
                            }
                            c.expect("]", "to close the shape")?;
                            break;
                        }
                        match dims.as_slice() {
                            [r, k] => shape = Some((*r, *k, scol)),
                            [k] => shape = Some((1, *k, scol)),
                            _ => {
                                return Err(err(
                                    line_no,
                                    scol,
                                    name.clone(),
                                    "an array has one or two dimensions",
                                    "write [rows, columns]",
                                ))
                            }
                        }
                    }
                    c.expect("=", "after the array's name and shape")?;
                    if !c.done() {
                        return Err(err(
                            line_no,
                            c.col(),
                            name.clone(),
                            "the array's rows go on the following, indented lines",
                            "write `complex array U[2, 2] =` and then one indented line per row",
                        ));
                    }
                    let mut rows: Vec<Vec<C64>> = Vec::new();
                    let mut entries = 0usize;
                    while i < lines.len() {
                        let row_line = lines[i];
                        let row_body = row_line.split('#').next().unwrap_or("");
                        if row_body.trim().is_empty() || !row_line.starts_with([' ', '\t']) {
                            break;
                        }
                        let rno = i + 1;
                        i += 1;
                        let rt = lex(row_body, rno)?;
                        let mut rc = Cursor {
                            toks: &rt,
                            pos: 0,
                            line: rno,
                            end_col: row_body.chars().count() + 1,
                        };
                        let mut row = Vec::new();
                        loop {
                            row.push(expr(&mut rc, &scope, 0)?);
                            entries += 1;
                            if entries > ARRAY_ENTRIES_MAX {
                                return Err(err(
                                    rno,
                                    rc.col(),
                                    name.clone(),
                                    format!("the array has more than {ARRAY_ENTRIES_MAX} entries"),
                                    "split it",
                                ));
                            }
                            if rc.eat(",") {
                                if rc.done() {
                                    break;
                                }
                                continue;
                            }
                            if !rc.done() {
                                return Err(err(
                                    rno,
                                    rc.col(),
                                    name.clone(),
                                    format!(
                                        "expected `,` between entries, found {}",
                                        describe(rc.peek())
                                    ),
                                    "separate a row's entries with commas",
                                ));
                            }
                            break;
                        }
                        if let Some(first) = rows.first() {
                            if first.len() != row.len() {
                                return Err(err(
                                    rno,
                                    1,
                                    name.clone(),
                                    format!(
                                        "this row has {} entries, the first row {}",
                                        row.len(),
                                        first.len()
                                    ),
                                    "every row has the same number of entries",
                                ));
                            }
                        }
                        rows.push(row);
                    }
                    if rows.is_empty() {
                        return Err(err(
                            line_no,
                            c.end_col,
                            name.clone(),
                            "the array has no rows",
                            "put its rows on the following lines, indented",
                        ));
                    }
                    if let Some((r, k, scol)) = shape {
                        if rows.len() != r || rows[0].len() != k {
                            return Err(err(
                                line_no,
                                scol,
                                name.clone(),
                                format!(
                                    "declared {r} × {k}, but {} rows of {} entries follow",
                                    rows.len(),
                                    rows[0].len()
                                ),
                                "make the shape and the rows agree",
                            ));
                        }
                    }
                    scope.arrays.insert(name, rows);
                } else {
                    c.expect("=", "after the variable's name")?;
                    let v = expr(&mut c, &scope, 0)?;
                    if !c.done() {
                        return Err(err(
                            line_no,
                            c.col(),
                            name.clone(),
                            format!("unexpected {} after the value", describe(c.peek())),
                            "one declaration per line",
                        ));
                    }
                    scope.scalars.insert(name, v);
                }
            }
            _ => {
                let st = statement(&mut c, &scope)?;
                convert(
                    &st,
                    line_no,
                    &scope,
                    &mut pending,
                    &mut inputs,
                    &mut touched,
                    &mut measured,
                    &mut max_mode,
                )?;
                if pending.len() > OPS_MAX {
                    return Err(err(
                        line_no,
                        st.col,
                        st.name.clone(),
                        format!("more than {OPS_MAX} operations"),
                        "split the program",
                    ));
                }
            }
        }
    }
    let Some(max_mode) = max_mode else {
        return Err(err(
            1,
            1,
            "(document)",
            "the program applies nothing to any mode",
            "add a Coherent input and operations, e.g. Coherent(1.0, 0) | 0",
        ));
    };
    let modes = max_mode + 1;
    let mut input = vec![C64::new(0.0, 0.0); modes];
    for (&m, &a) in &inputs {
        input[m] = a;
    }
    if input.iter().all(|a| a.norm_sqr() == 0.0) {
        return Err(err(
            1,
            1,
            "Coherent",
            "no mode carries light: every input is vacuum",
            "prepare at least one mode with Coherent(r, phi), r > 0",
        ));
    }
    let mut ops = Vec::with_capacity(pending.len());
    let mut elements = 0usize;
    for p in pending {
        let op = match p {
            Pending::Op(op) => op,
            Pending::Unitary(first, matrix, line, col, name) => {
                let decomposition = decompose(&matrix).map_err(|e| {
                    err(
                        line,
                        col,
                        name.clone(),
                        e.to_string(),
                        "give a unitary matrix",
                    )
                })?;
                Op::Unitary {
                    first_mode: first,
                    matrix,
                    decomposition,
                }
            }
        };
        elements += match &op {
            Op::Unitary { decomposition, .. } => {
                decomposition.mzis.len() + decomposition.output_phases.len()
            }
            _ => 1,
        };
        if elements > ELEMENTS_MAX {
            return Err(err(
                1,
                1,
                "(document)",
                format!("the program compiles to more than {ELEMENTS_MAX} mesh elements"),
                "use fewer or smaller interferometers",
            ));
        }
        ops.push(op);
    }
    let detect = if measured.is_empty() {
        Detect::intensity_all(modes)
    } else {
        Detect::Homodyne(HomodyneDetect {
            modes: measured.keys().copied().collect(),
            lo_phase: measured.values().map(|(p, _, _)| *p).collect(),
            hbar: crate::detect::HBAR_DEFAULT,
            shots,
        })
    };
    Ok(Program {
        modes,
        channels: 1,
        wavelengths_nm: vec![grid_wavelength_nm(0)],
        input: vec![input],
        ops,
        detect,
    })
}

/// Converts one operation, recording inputs, touched and measured modes.
#[allow(clippy::too_many_arguments)]
fn convert(
    st: &Statement,
    line: usize,
    scope: &Scope,
    pending: &mut Vec<Pending>,
    inputs: &mut BTreeMap<usize, C64>,
    touched: &mut BTreeMap<usize, (usize, usize)>,
    measured: &mut BTreeMap<usize, (f64, usize, usize)>,
    max_mode: &mut Option<usize>,
) -> Result<(), BbError> {
    let name = st.name.as_str();
    if let Some((_, why)) = QUANTUM.iter().find(|(n, _)| *n == name) {
        return Err(err(line, st.col, name, format!("{why}: `{name}` belongs to the Q domain, not to the Φ domain's coherent passive linear optics"), "run it on a quantum (Gaussian or Fock) simulator; XDV's Φ domain imports only Coherent inputs, Rgate, BSgate, MZgate, Interferometer, LossChannel and homodyne measurements"));
    }
    if DISPLACEMENTS.contains(&name) {
        return Err(err(
            line,
            st.col,
            name,
            format!("`{name}` is a displacement: affine on the field, not a linear transform"),
            "displace the input instead: write Coherent(r, phi) before the mode's first gate",
        ));
    }
    let modes: Vec<usize> = st.modes.iter().map(|(m, _)| *m).collect();
    for (k, &(m, col)) in st.modes.iter().enumerate() {
        if modes[..k].contains(&m) {
            return Err(err(
                line,
                col,
                name,
                format!("mode {m} is listed twice"),
                "list each mode once",
            ));
        }
        if let Some(&(_, ml, mc)) = measured.get(&m) {
            return Err(err(
                line,
                col,
                name,
                format!("mode {m} was measured at {ml}:{mc}; nothing may act on it afterwards"),
                "move the measurement after every gate on its mode",
            ));
        }
    }
    let arity = |n: usize| -> Result<(), BbError> {
        if st.modes.len() != n {
            return Err(err(
                line,
                st.modes.first().map_or(st.col, |m| m.1),
                name,
                format!(
                    "`{name}` acts on {n} mode{}, {} given",
                    if n == 1 { "" } else { "s" },
                    st.modes.len()
                ),
                format!(
                    "write {name}(…) | {}",
                    if n == 1 { "q[0]" } else { "(q[0], q[1])" }
                ),
            ));
        }
        Ok(())
    };
    let gate_on = |modes: &[usize], touched: &mut BTreeMap<usize, (usize, usize)>| {
        for &m in modes {
            touched.entry(m).or_insert((line, st.col));
        }
    };
    match name {
        "Coherent" | "Vacuum" => {
            arity(1)?;
            let m = modes[0];
            let a = if name == "Coherent" {
                let p = params(st, line, &[("r", Some(0.0)), ("phi", Some(0.0))])?;
                C64::from_polar(p[0], p[1])
            } else {
                params(st, line, &[])?;
                C64::new(0.0, 0.0)
            };
            if !(a.re.is_finite() && a.im.is_finite())
                || a.norm() > crate::program::AMPLITUDE_ABS_MAX
            {
                return Err(err(
                    line,
                    st.col,
                    name,
                    format!("the amplitude {a} is not finite or too large"),
                    "give a finite r",
                ));
            }
            if let Some(&(gl, gc)) = touched.get(&m) {
                return Err(err(
                    line,
                    st.col,
                    name,
                    format!("mode {m} is prepared after a gate acted on it at {gl}:{gc}"),
                    "XDV's input field is set before every operation: move the preparation up",
                ));
            }
            if inputs.insert(m, a).is_some() {
                return Err(err(
                    line,
                    st.col,
                    name,
                    format!("mode {m} is prepared twice"),
                    "prepare each mode once",
                ));
            }
        }
        "Rgate" => {
            arity(1)?;
            let p = params(st, line, &[("phi", None)])?;
            pending.push(Pending::Op(Op::Phase {
                mode: modes[0],
                phi: p[0],
            }));
            gate_on(&modes, touched);
        }
        "LossChannel" => {
            arity(1)?;
            let p = params(st, line, &[("T", None)])?;
            if !(0.0..=1.0).contains(&p[0]) {
                return Err(err(
                    line,
                    st.col,
                    name,
                    format!("the transmission T = {} is outside [0, 1]", p[0]),
                    "T is the power transmission: 1 is lossless",
                ));
            }
            pending.push(Pending::Op(Op::Attenuate {
                mode: modes[0],
                eta: p[0],
            }));
            gate_on(&modes, touched);
        }
        "BSgate" | "MZgate" => {
            arity(2)?;
            let m = if name == "BSgate" {
                let p = params(st, line, &[("theta", Some(PI / 4.0)), ("phi", Some(0.0))])?;
                sf_bsgate(p[0], p[1])
            } else {
                let p = params(st, line, &[("phi_in", None), ("phi_ex", None)])?;
                sf_mzgate(p[0], p[1])
            };
            let (first, w) = embed(&mat2(m), &modes);
            check_span(w.n(), line, st.col, name)?;
            pending.push(Pending::Unitary(first, w, line, st.col, name.to_string()));
            gate_on(&modes, touched);
        }
        "Interferometer" => {
            let (array, acol) =
                match st.args.as_slice() {
                    [(_, _, Arg::Array(n, col))] => (n.clone(), *col),
                    [(_, _, Arg::Value(_, col))] => return Err(err(
                        line,
                        *col,
                        name,
                        "Interferometer takes the name of a declared matrix",
                        "declare complex array U[k, k] = … and write Interferometer(U) | [modes]",
                    )),
                    _ => {
                        return Err(err(
                            line,
                            st.col,
                            name,
                            "Interferometer takes one argument, a declared matrix",
                            "write Interferometer(U) | [q[0], q[1], …]",
                        ))
                    }
                };
            let rows = scope.arrays.get(&array).ok_or_else(|| {
                err(
                    line,
                    acol,
                    name,
                    format!("no array named `{array}`"),
                    "declare it before use",
                )
            })?;
            let k = modes.len();
            if rows.len() != k || rows.iter().any(|r| r.len() != k) {
                return Err(err(
                    line,
                    acol,
                    name,
                    format!(
                        "`{array}` is {} × {}, but {k} modes are listed",
                        rows.len(),
                        rows.first().map_or(0, Vec::len)
                    ),
                    "an interferometer's matrix is k × k for k modes",
                ));
            }
            let mut u = Matrix::from_rows(rows)
                .map_err(|e| err(line, acol, name, e.to_string(), "give a square matrix"))?;
            let dev = u.unitarity_deviation();
            if dev > BLACKBIRD_UNITARITY_TOLERANCE {
                return Err(err(line, acol, name, format!("`{array}` is not unitary: max |U†U − I| = {dev:.3e} exceeds {BLACKBIRD_UNITARITY_TOLERANCE:.0e}"), "an interferometer's matrix is unitary; give its entries to at least 7 digits"));
            }
            if dev > UNITARITY_TOLERANCE {
                u = nearest_unitary(&u)
                    .map_err(|e| err(line, acol, name, e.to_string(), "give a unitary matrix"))?;
            }
            let (first, w) = embed(&u, &modes);
            check_span(w.n(), line, st.col, name)?;
            pending.push(Pending::Unitary(first, w, line, st.col, name.to_string()));
            gate_on(&modes, touched);
        }
        "MeasureHomodyne" | "MeasureX" | "MeasureP" => {
            let phi = match name {
                "MeasureHomodyne" => params(st, line, &[("phi", Some(0.0))])?[0],
                "MeasureX" => {
                    params(st, line, &[])?;
                    0.0
                }
                _ => {
                    params(st, line, &[])?;
                    PI / 2.0
                }
            };
            for &(m, col) in &st.modes {
                measured.insert(m, (phi, line, col));
            }
        }
        _ => {
            return Err(err(line, st.col, name, format!("unknown operation `{name}`"), "XDV imports Coherent, Vacuum, Rgate, BSgate, MZgate, Interferometer, LossChannel, MeasureHomodyne, MeasureX and MeasureP"));
        }
    }
    for &m in &modes {
        *max_mode = Some(max_mode.map_or(m, |x| x.max(m)));
    }
    Ok(())
}

fn check_span(n: usize, line: usize, col: usize, name: &str) -> Result<(), BbError> {
    if n > UNITARY_MODES_MAX {
        return Err(err(
            line,
            col,
            name,
            format!("its modes span {n} modes, more than {UNITARY_MODES_MAX}"),
            "use modes closer together",
        ));
    }
    Ok(())
}
