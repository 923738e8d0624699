//! Lowering: the syntax tree to the flat [`Circuit`] IR. User gates are inlined, modifiers
//! applied, loops unrolled, constants and inputs bound, conditions on constants decided, and every
//! gate given its numeric matrix from the gate table.
//!
//! Modifier conventions: `ctrl @`/`negctrl @` put their control qubits *in front of* the gate's
//! existing controls — `Gate::controls` lists the outermost modifier's controls first, then inner
//! modifiers', then the table gate's own controls (`cx`'s control, …); `ctrl_state` bit `i` is the
//! value `controls[i]` must have. `inv @` reverses a sequence and takes each matrix's adjoint (the
//! name and parameters come from the table's inverse when it has one: `inv @ s` is `sdg`).
//! `pow(k) @` repeats `|k|` times for an integer `k` (inverted for negative `k`); a non-integer `k`
//! takes the principal power (eigenvalue arguments in (−π, π]) of a one-target-qubit matrix and
//! emits it as `U(θ, φ, λ)` with the same controls, its phase `e^{iα}` going to the global phase
//! (or, under controls, to a phase gate on them); larger matrices are refused. A `gphase(γ)` under
//! `ctrl @` becomes a phase gate `p(γ)` on the last control that must be 1 (the others stay
//! controls); a `gphase` inside a classically conditioned block has no observable effect and is
//! dropped.

use super::ast::*;
use super::error::{Pos, QasmErrorKind as K, RawError, Res};
use super::{
    CLBITS_MAX, CONDITION_BITS_MAX, CONTROLS_MAX, GATE_DEPTH_MAX, GATE_EXPANSIONS_MAX,
    LOOP_ITERATIONS_MAX, OPS_MAX, QUBITS_MAX,
};
use crate::circuit::{Circuit, Condition, Gate, Op, Register};
use crate::gates::{self, Include, Matrix, C64};
use std::collections::HashMap;
use std::f64::consts::{E, PI, TAU};
use std::rc::Rc;

/// A classical value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Value {
    /// An integer.
    Int(i64),
    /// A real number (floats and angles).
    Float(f64),
    /// A boolean.
    Bool(bool),
}

impl Value {
    fn type_name(self) -> &'static str {
        match self {
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Bool(_) => "bool",
        }
    }
}

struct Reg {
    name: String,
    offset: u32,
    size: u32,
    scalar: bool,
}

/// Qubits selected by an operand: one, or a list that broadcasts.
enum Sel {
    One(u32),
    Many(Vec<u32>),
}

/// A modifier with its arguments evaluated.
#[derive(Clone, Copy)]
enum RMod {
    Ctrl { n: usize, negative: bool },
    Inv,
    Pow(f64, Pos),
}

/// A gate sequence being built: gates and barriers, and a global phase.
#[derive(Default)]
struct Seq {
    ops: Vec<Op>,
    phase: f64,
}

/// The lowering context.
pub struct Lowerer<'a> {
    version: u8,
    params: &'a [(String, f64)],
    used_params: Vec<bool>,
    qelib1: bool,
    stdgates: bool,
    qregs: Vec<Reg>,
    cregs: Vec<Reg>,
    num_qubits: u32,
    num_clbits: u32,
    physical: Option<u32>,
    scopes: Vec<HashMap<String, Value>>,
    gates: HashMap<String, Rc<GateDecl>>,
    inputs: Vec<String>,
    ops_count: usize,
    expansions: u64,
    loop_iterations: u64,
    global_phase: f64,
    cond_depth: usize,
    block_depth: usize,
}

fn err(pos: Pos, kind: K, msg: impl Into<String>) -> RawError {
    RawError::new(pos, kind, msg)
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 {
        format!("{n} {what}")
    } else {
        format!("{n} {what}s")
    }
}

const BUILTIN_CONSTANTS: &[&str] = &["pi", "π", "tau", "τ", "euler", "ℯ"];

impl<'a> Lowerer<'a> {
    /// A lowering context for a program of OpenQASM `version` with the given input values.
    pub fn new(version: u8, params: &'a [(String, f64)]) -> Self {
        Lowerer {
            version,
            params,
            used_params: vec![false; params.len()],
            qelib1: false,
            stdgates: false,
            qregs: Vec::new(),
            cregs: Vec::new(),
            num_qubits: 0,
            num_clbits: 0,
            physical: None,
            scopes: vec![HashMap::new()],
            gates: HashMap::new(),
            inputs: Vec::new(),
            ops_count: 0,
            expansions: 0,
            loop_iterations: 0,
            global_phase: 0.0,
            cond_depth: 0,
            block_depth: 0,
        }
    }

    /// Lowers a whole program.
    pub fn lower(mut self, stmts: &[Stmt]) -> Res<Circuit> {
        let start = Pos {
            file: 0,
            line: 1,
            col: 1,
        };
        for (i, (name, v)) in self.params.iter().enumerate() {
            if self.params[..i].iter().any(|(n, _)| n == name) {
                return Err(err(
                    start,
                    K::Param,
                    format!("parameter '{name}' is given twice"),
                ));
            }
            if !v.is_finite() {
                return Err(err(
                    start,
                    K::Param,
                    format!("parameter '{name}' is {v}, not a finite number"),
                ));
            }
        }
        let mut ops = Vec::new();
        for s in stmts {
            self.stmt(s, &mut ops)?;
        }
        if let Some(i) = self.used_params.iter().position(|u| !u) {
            let name = &self.params[i].0;
            let declared = if self.inputs.is_empty() {
                "the file declares no inputs".to_string()
            } else {
                format!("the file declares: {}", self.inputs.join(", "))
            };
            return Err(err(
                start,
                K::Param,
                format!(
                    "parameter '{name}' was given, but the file declares no input named '{name}'"
                ),
            )
            .hint(declared));
        }
        let (qregs, num_qubits) = match self.physical {
            Some(n) => (
                vec![Register {
                    name: "$".into(),
                    offset: 0,
                    size: n,
                }],
                n,
            ),
            None => (
                self.qregs
                    .iter()
                    .map(|r| Register {
                        name: r.name.clone(),
                        offset: r.offset,
                        size: r.size,
                    })
                    .collect(),
                self.num_qubits,
            ),
        };
        Ok(Circuit {
            num_qubits,
            num_clbits: self.num_clbits,
            qregs,
            cregs: self
                .cregs
                .iter()
                .map(|r| Register {
                    name: r.name.clone(),
                    offset: r.offset,
                    size: r.size,
                })
                .collect(),
            ops,
            global_phase: self.global_phase,
        })
    }

    // ---- names ----

    fn lookup_value(&self, name: &str, global_only: bool) -> Option<Value> {
        let scopes: &[HashMap<String, Value>] = if global_only {
            &self.scopes[..1]
        } else {
            &self.scopes
        };
        scopes.iter().rev().find_map(|s| s.get(name).copied())
    }

    fn check_new_name(&self, name: &str, pos: Pos) -> Res<()> {
        let clash = if BUILTIN_CONSTANTS.contains(&name) {
            Some("a built-in constant")
        } else if self.qregs.iter().any(|r| r.name == name) {
            Some("a quantum register")
        } else if self.cregs.iter().any(|r| r.name == name) {
            Some("a classical register")
        } else if self.gates.contains_key(name) {
            Some("a gate")
        } else if self.scopes.last().is_some_and(|s| s.contains_key(name)) {
            Some("a constant or input")
        } else {
            None
        };
        match clash {
            Some(what) => Err(err(
                pos,
                K::Redefinition,
                format!("'{name}' is already defined as {what}"),
            )
            .hint("choose another name")),
            None => Ok(()),
        }
    }

    fn table_visible(&self, g: &gates::GateDef) -> bool {
        match g.include {
            Include::Builtin => match g.name {
                "U" => true,
                "CX" => self.version == 2 || self.stdgates,
                "gphase" => self.version == 3,
                _ => false,
            },
            inc => (self.qelib1 && inc.in_qelib1()) || (self.stdgates && inc.in_stdgates()),
        }
    }

    fn unknown_gate(&self, name: &str, pos: Pos) -> RawError {
        let e = err(pos, K::UnknownName, format!("unknown gate '{name}'"));
        match gates::lookup(name) {
            Some(g) if g.include.in_qelib1() && self.version == 2 => {
                e.hint(format!("'{name}' is defined in qelib1.inc: add 'include \"qelib1.inc\";' after the header"))
            }
            Some(g) if g.include.in_stdgates() && self.version == 3 => {
                e.hint(format!("'{name}' is defined in stdgates.inc: add 'include \"stdgates.inc\";' after the header"))
            }
            Some(g) if g.include.in_qelib1() => e.hint(format!(
                "'{name}' is a qelib1.inc gate (OpenQASM 2): include \"qelib1.inc\" or define it with 'gate'"
            )),
            Some(g) if g.include.in_stdgates() => e.hint(format!(
                "'{name}' is a stdgates.inc gate (OpenQASM 3): define it with 'gate'"
            )),
            Some(_) => e,
            None if self.version == 2 && !self.qelib1 => {
                e.hint("only U and CX are built in; standard gates need 'include \"qelib1.inc\";'")
            }
            None => e.hint("define it with a 'gate' definition before its first use"),
        }
    }

    fn count_ops(&mut self, n: usize, pos: Pos) -> Res<()> {
        self.ops_count = self.ops_count.saturating_add(n);
        if self.ops_count > OPS_MAX {
            return Err(err(
                pos,
                K::Limit,
                format!(
                    "the circuit has more than {OPS_MAX} operations after inlining and unrolling"
                ),
            )
            .hint("reduce loop counts, pow exponents or gate nesting"));
        }
        Ok(())
    }

    /// Counts `n` user-gate expansions or `pow` repetitions against [`GATE_EXPANSIONS_MAX`].
    fn count_expansions(&mut self, n: u64, pos: Pos) -> Res<()> {
        self.expansions = self.expansions.saturating_add(n);
        if self.expansions > GATE_EXPANSIONS_MAX {
            return Err(err(
                pos,
                K::Limit,
                format!(
                    "more than {GATE_EXPANSIONS_MAX} gate expansions and pow repetitions in all"
                ),
            )
            .hint("reduce gate nesting or pow exponents (gates that emit nothing still cost their expansion)"));
        }
        Ok(())
    }

    // ---- expressions ----

    fn eval(&self, e: &Expr, locals: Option<&HashMap<String, f64>>) -> Res<Value> {
        let pos = e.pos;
        let arith = |msg: String| err(pos, K::Arithmetic, msg);
        Ok(match &e.kind {
            ExprKind::Int(n) => Value::Int(i64::try_from(*n).map_err(|_| {
                err(pos, K::Limit, format!("integer {n} does not fit in 64-bit signed arithmetic"))
            })?),
            ExprKind::Float(x) => Value::Float(*x),
            ExprKind::Bool(b) => Value::Bool(*b),
            ExprKind::Name(name) => {
                if let Some(v) = locals.and_then(|l| l.get(name)) {
                    return Ok(Value::Float(*v));
                }
                if let Some(v) = self.lookup_value(name, locals.is_some()) {
                    return Ok(v);
                }
                match name.as_str() {
                    "pi" | "π" => Value::Float(PI),
                    "tau" | "τ" if self.version == 3 => Value::Float(TAU),
                    "euler" | "ℯ" if self.version == 3 => Value::Float(E),
                    _ if self.cregs.iter().any(|r| &r.name == name) => {
                        return Err(err(
                            pos,
                            K::Unsupported,
                            format!("classical register '{name}' used in an expression: only conditions 'if ({name} == n)', 'if ({name}[i])' and 'if (!{name}[i])' may read bits"),
                        ))
                    }
                    _ if self.qregs.iter().any(|r| &r.name == name) => {
                        return Err(err(pos, K::Type, format!("quantum register '{name}' used as a number")))
                    }
                    _ => {
                        let e = err(pos, K::UnknownName, format!("unknown name '{name}' in expression"));
                        return Err(if locals.is_some() {
                            e.hint("a gate body can use its own parameters, global constants and pi")
                        } else {
                            e.hint("declare it with 'const' or 'input', or use pi")
                        });
                    }
                }
            }
            ExprKind::Index(name, _) => {
                return Err(err(
                    pos,
                    K::Unsupported,
                    format!("reading '{name}[…]' in an expression: bits may be read only in a condition such as 'if ({name}[0] == 1)'"),
                ))
            }
            ExprKind::Unary(op, x) => {
                let v = self.eval(x, locals)?;
                match (op, v) {
                    (UnOp::Plus, Value::Int(_) | Value::Float(_)) => v,
                    (UnOp::Neg, Value::Int(n)) => Value::Int(
                        n.checked_neg()
                            .ok_or_else(|| arith("integer overflow in negation".into()))?,
                    ),
                    (UnOp::Neg, Value::Float(x)) => Value::Float(-x),
                    (UnOp::Not, Value::Bool(b)) => Value::Bool(!b),
                    (UnOp::BitNot, Value::Int(n)) => Value::Int(!n),
                    _ => {
                        return Err(err(
                            pos,
                            K::Type,
                            format!("operator {op:?} cannot be applied to a {}", v.type_name()),
                        ))
                    }
                }
            }
            ExprKind::Binary(op, a, b) => {
                let (x, y) = (self.eval(a, locals)?, self.eval(b, locals)?);
                self.binary(*op, x, y, pos)?
            }
            ExprKind::Call(f, args) => {
                let vals = args
                    .iter()
                    .map(|a| self.eval(a, locals).and_then(|v| self.to_f64(v, a.pos)))
                    .collect::<Res<Vec<f64>>>()?;
                let func: fn(f64) -> f64 = match f.as_str() {
                    "sin" => f64::sin,
                    "cos" => f64::cos,
                    "tan" => f64::tan,
                    "exp" => f64::exp,
                    "ln" => f64::ln,
                    "sqrt" => f64::sqrt,
                    "asin" | "arcsin" => f64::asin,
                    "acos" | "arccos" => f64::acos,
                    "atan" | "arctan" => f64::atan,
                    "log" if self.version == 3 => f64::ln,
                    "floor" if self.version == 3 => f64::floor,
                    "ceiling" | "ceil" if self.version == 3 => f64::ceil,
                    _ => {
                        return Err(err(pos, K::UnknownName, format!("unknown function '{f}'"))
                            .hint("the functions are sin, cos, tan, asin, acos, atan, exp, ln, sqrt (and log, floor, ceiling in OpenQASM 3)"))
                    }
                };
                if vals.len() != 1 {
                    return Err(err(
                        pos,
                        K::Arity,
                        format!("function '{f}' takes 1 argument, {} given", vals.len()),
                    ));
                }
                let r = func(vals[0]);
                if !r.is_finite() {
                    return Err(arith(format!("{f}({}) is not a finite number", vals[0])));
                }
                Value::Float(r)
            }
        })
    }

    fn binary(&self, op: BinOp, x: Value, y: Value, pos: Pos) -> Res<Value> {
        use BinOp::*;
        let arith = |msg: &str| err(pos, K::Arithmetic, msg.to_string());
        let overflow = || arith("integer overflow");
        let type_err = || {
            err(
                pos,
                K::Type,
                format!(
                    "operator {op:?} cannot be applied to {} and {}",
                    x.type_name(),
                    y.type_name()
                ),
            )
        };
        Ok(match (x, y) {
            (Value::Int(a), Value::Int(b)) => match op {
                Add => Value::Int(a.checked_add(b).ok_or_else(overflow)?),
                Sub => Value::Int(a.checked_sub(b).ok_or_else(overflow)?),
                Mul => Value::Int(a.checked_mul(b).ok_or_else(overflow)?),
                Div if b == 0 => return Err(arith("division by zero")),
                Div if self.version == 2 => Value::Float(a as f64 / b as f64),
                Div => Value::Int(a.checked_div(b).ok_or_else(overflow)?),
                Rem if b == 0 => return Err(arith("remainder by zero")),
                Rem => Value::Int(a.checked_rem(b).ok_or_else(overflow)?),
                Pow if b >= 0 => Value::Int(
                    u32::try_from(b)
                        .ok()
                        .and_then(|b| a.checked_pow(b))
                        .ok_or_else(overflow)?,
                ),
                Pow => Value::Float((a as f64).powf(b as f64)),
                Eq => Value::Bool(a == b),
                Ne => Value::Bool(a != b),
                Lt => Value::Bool(a < b),
                Le => Value::Bool(a <= b),
                Gt => Value::Bool(a > b),
                Ge => Value::Bool(a >= b),
                BitAnd => Value::Int(a & b),
                BitOr => Value::Int(a | b),
                BitXor => Value::Int(a ^ b),
                Shl | Shr => {
                    let s = u32::try_from(b)
                        .ok()
                        .filter(|s| *s < 64)
                        .ok_or_else(|| arith("shift amount out of range 0..64"))?;
                    Value::Int(if op == Shl { a << s } else { a >> s })
                }
                And | Or => return Err(type_err()),
            },
            (Value::Bool(a), Value::Bool(b)) => match op {
                And => Value::Bool(a && b),
                Or => Value::Bool(a || b),
                Eq => Value::Bool(a == b),
                Ne => Value::Bool(a != b),
                _ => return Err(type_err()),
            },
            (Value::Bool(_), _) | (_, Value::Bool(_)) => return Err(type_err()),
            _ => {
                let a = self.to_f64(x, pos)?;
                let b = self.to_f64(y, pos)?;
                let r = match op {
                    Add => a + b,
                    Sub => a - b,
                    Mul => a * b,
                    Div if b == 0.0 => return Err(arith("division by zero")),
                    Div => a / b,
                    Rem if b == 0.0 => return Err(arith("remainder by zero")),
                    Rem => a % b,
                    Pow => a.powf(b),
                    Eq => return Ok(Value::Bool(a == b)),
                    Ne => return Ok(Value::Bool(a != b)),
                    Lt => return Ok(Value::Bool(a < b)),
                    Le => return Ok(Value::Bool(a <= b)),
                    Gt => return Ok(Value::Bool(a > b)),
                    Ge => return Ok(Value::Bool(a >= b)),
                    _ => return Err(type_err()),
                };
                if !r.is_finite() {
                    return Err(arith("the result is not a finite number"));
                }
                Value::Float(r)
            }
        })
    }

    fn to_f64(&self, v: Value, pos: Pos) -> Res<f64> {
        match v {
            Value::Int(n) => Ok(n as f64),
            Value::Float(x) if x.is_finite() => Ok(x),
            Value::Float(x) => Err(err(
                pos,
                K::Arithmetic,
                format!("{x} is not a finite number"),
            )),
            Value::Bool(_) => Err(err(pos, K::Type, "expected a number, found a bool")),
        }
    }

    fn to_int(&self, v: Value, pos: Pos, what: &str) -> Res<i64> {
        match v {
            Value::Int(n) => Ok(n),
            other => Err(err(
                pos,
                K::Type,
                format!("{what} must be an integer, found a {}", other.type_name()),
            )),
        }
    }

    fn num(&self, e: &Expr, locals: Option<&HashMap<String, f64>>) -> Res<f64> {
        let v = self.eval(e, locals)?;
        self.to_f64(v, e.pos)
    }

    fn int(&self, e: &Expr, what: &str) -> Res<i64> {
        let v = self.eval(e, None)?;
        self.to_int(v, e.pos, what)
    }

    fn range(&mut self, r: &RangeExpr, pos: Pos) -> Res<Vec<i64>> {
        let start = self.int(&r.start, "a range start")?;
        let end = self.int(&r.end, "a range end")?;
        let step = match &r.step {
            Some(s) => self.int(s, "a range step")?,
            None => 1,
        };
        if step == 0 {
            return Err(err(pos, K::Arithmetic, "a range step cannot be 0"));
        }
        let span = if step > 0 {
            (end as i128) - (start as i128)
        } else {
            (start as i128) - (end as i128)
        };
        let count = if span < 0 {
            0
        } else {
            span / (step as i128).abs() + 1
        };
        if count > LOOP_ITERATIONS_MAX as i128 {
            return Err(err(
                pos,
                K::Limit,
                format!(
                    "the range has {count} elements, more than the limit of {LOOP_ITERATIONS_MAX}"
                ),
            ));
        }
        // Every element lies between start and end, but `k · step` alone may not fit in i64.
        Ok((0..count)
            .map(|k| (start as i128 + k * step as i128) as i64)
            .collect())
    }

    // ---- operands ----

    fn qubit_label(&self, q: u32) -> String {
        if self.physical.is_some() {
            return format!("${q}");
        }
        match self
            .qregs
            .iter()
            .find(|r| q >= r.offset && q < r.offset + r.size)
        {
            Some(r) if r.scalar => r.name.clone(),
            Some(r) => format!("{}[{}]", r.name, q - r.offset),
            None => format!("qubit {q}"),
        }
    }

    fn index_list(&mut self, sel: &IndexSel, size: u32, name: &str) -> Res<Sel> {
        let check = |i: i64, pos: Pos| -> Res<u32> {
            let j = if i < 0 { i + size as i64 } else { i };
            if j < 0 || j >= size as i64 {
                return Err(err(
                    pos,
                    K::Range,
                    format!("index {i} is out of range for register '{name}' of size {size}"),
                )
                .hint(format!("valid indices are 0 to {}", size.saturating_sub(1))));
            }
            Ok(j as u32)
        };
        Ok(match sel {
            IndexSel::One(e) => Sel::One(check(self.int(e, "an index")?, e.pos)?),
            IndexSel::Range(r) => {
                let vals = self.range(r, r.start.pos)?;
                Sel::Many(
                    vals.iter()
                        .map(|&i| check(i, r.start.pos))
                        .collect::<Res<_>>()?,
                )
            }
            IndexSel::Set(es) => Sel::Many(
                es.iter()
                    .map(|e| check(self.int(e, "an index")?, e.pos))
                    .collect::<Res<_>>()?,
            ),
        })
    }

    /// The elements of a register (offset, size, whether declared as a single element) that an
    /// operand's index selects: all of them without an index, as absolute indices.
    fn select(
        &mut self,
        offset: u32,
        size: u32,
        scalar: bool,
        index: Option<&IndexSel>,
        name: &str,
    ) -> Res<Sel> {
        Ok(match index {
            None if scalar => Sel::One(offset),
            None => Sel::Many((offset..offset + size).collect()),
            Some(sel) => match self.index_list(sel, size, name)? {
                Sel::One(i) => Sel::One(offset + i),
                Sel::Many(v) => Sel::Many(v.into_iter().map(|i| offset + i).collect()),
            },
        })
    }

    fn qubits_of(&mut self, op: &Operand) -> Res<Sel> {
        match op {
            Operand::Hardware { index, pos } => {
                if !self.qregs.is_empty() {
                    return Err(err(
                        *pos,
                        K::Type,
                        format!("physical qubit ${index} used in a program that declares qubit registers"),
                    )
                    .hint("use either declared qubits or physical qubits $0, $1, …, not both"));
                }
                if *index >= QUBITS_MAX as u64 {
                    return Err(err(
                        *pos,
                        K::Limit,
                        format!(
                            "physical qubit ${index} is beyond the limit of {QUBITS_MAX} qubits"
                        ),
                    ));
                }
                let n = *index as u32 + 1;
                self.physical = Some(self.physical.map_or(n, |m| m.max(n)));
                Ok(Sel::One(*index as u32))
            }
            Operand::Named { name, index, pos } => {
                let Some(r) = self.qregs.iter().find(|r| &r.name == name) else {
                    let e = err(
                        *pos,
                        K::UnknownName,
                        format!("unknown quantum register '{name}'"),
                    );
                    return Err(if self.cregs.iter().any(|r| &r.name == name) {
                        e.hint(format!(
                            "'{name}' is a classical register; gates act on qubits"
                        ))
                    } else {
                        e.hint("declare it with 'qreg' or 'qubit' before its use")
                    });
                };
                let (offset, size, scalar) = (r.offset, r.size, r.scalar);
                self.select(offset, size, scalar, index.as_deref(), name)
            }
        }
    }

    fn bits_of(&mut self, op: &Operand) -> Res<Sel> {
        match op {
            Operand::Hardware { pos, .. } => Err(err(
                *pos,
                K::Type,
                "a physical qubit cannot be used where a classical bit is expected",
            )),
            Operand::Named { name, index, pos } => {
                let Some(r) = self.cregs.iter().find(|r| &r.name == name) else {
                    let e = err(
                        *pos,
                        K::UnknownName,
                        format!("unknown classical register '{name}'"),
                    );
                    return Err(if self.qregs.iter().any(|r| &r.name == name) {
                        e.hint(format!("'{name}' is a quantum register; measurement results go to a 'creg' or 'bit' register"))
                    } else {
                        e.hint("declare it with 'creg' or 'bit' before its use")
                    });
                };
                let (offset, size, scalar) = (r.offset, r.size, r.scalar);
                self.select(offset, size, scalar, index.as_deref(), name)
            }
        }
    }

    /// Broadcasts operand selections: `n` instances, each one qubit per operand.
    fn broadcast(&self, sels: &[Sel], ops: &[Operand], what: &str) -> Res<Vec<Vec<u32>>> {
        let mut size: Option<(usize, usize)> = None;
        for (k, s) in sels.iter().enumerate() {
            if let Sel::Many(v) = s {
                match size {
                    None => size = Some((v.len(), k)),
                    Some((n, first)) if n != v.len() => {
                        return Err(err(
                            ops[k].pos(),
                            K::Arity,
                            format!(
                                "registers of different sizes in one {what}: argument {} has {}, argument {} has {}",
                                first + 1,
                                plural(n, "element"),
                                k + 1,
                                plural(v.len(), "element")
                            ),
                        )
                        .hint("broadcasting over registers needs registers of equal size; index single qubits instead"))
                    }
                    _ => {}
                }
            }
        }
        let n = size.map_or(1, |(n, _)| n);
        Ok((0..n)
            .map(|i| {
                sels.iter()
                    .map(|s| match s {
                        Sel::One(q) => *q,
                        Sel::Many(v) => v[i],
                    })
                    .collect()
            })
            .collect())
    }

    // ---- statements ----

    fn lower_block(&mut self, stmts: &[Stmt], out: &mut Vec<Op>) -> Res<()> {
        self.scopes.push(HashMap::new());
        self.block_depth += 1;
        let r = stmts.iter().try_for_each(|s| self.stmt(s, out));
        self.block_depth -= 1;
        self.scopes.pop();
        r
    }

    fn top_level_only(&self, pos: Pos, what: &str) -> Res<()> {
        if self.block_depth > 0 {
            return Err(err(
                pos,
                K::Unsupported,
                format!("{what} inside a block, loop or branch are not supported"),
            )
            .hint("move the declaration to the top level of the program"));
        }
        Ok(())
    }

    fn reg_size(&self, size: &Option<Expr>, name: &str) -> Res<(u32, bool)> {
        match size {
            None => Ok((1, true)),
            Some(e) => {
                let n = self.int(e, "a register size")?;
                if n < 1 {
                    return Err(err(
                        e.pos,
                        K::Type,
                        format!("register '{name}' has size {n}; sizes must be at least 1"),
                    ));
                }
                Ok((u32::try_from(n).unwrap_or(u32::MAX), false))
            }
        }
    }

    fn stmt(&mut self, s: &Stmt, out: &mut Vec<Op>) -> Res<()> {
        let pos = s.pos;
        match &s.kind {
            StmtKind::IncludeStd(inc) => {
                match inc {
                    StdInclude::Qelib1 => self.qelib1 = true,
                    StdInclude::Stdgates => self.stdgates = true,
                }
                Ok(())
            }
            StmtKind::QReg { name, size } => {
                self.top_level_only(pos, "qubit declarations")?;
                if let Some(n) = self.physical {
                    return Err(err(
                        pos,
                        K::Type,
                        format!("qubit register '{name}' declared after physical qubits (up to ${}) were used", n - 1),
                    )
                    .hint("use either declared qubits or physical qubits $0, $1, …, not both"));
                }
                self.check_new_name(name, pos)?;
                let (size, scalar) = self.reg_size(size, name)?;
                let total = self.num_qubits as u64 + size as u64;
                if total > QUBITS_MAX as u64 {
                    return Err(err(
                        pos,
                        K::Limit,
                        format!("{total} qubits declared, more than the limit of {QUBITS_MAX}"),
                    ));
                }
                self.qregs.push(Reg {
                    name: name.clone(),
                    offset: self.num_qubits,
                    size,
                    scalar,
                });
                self.num_qubits = total as u32;
                Ok(())
            }
            StmtKind::CReg { name, size } => {
                self.top_level_only(pos, "bit declarations")?;
                self.check_new_name(name, pos)?;
                let (size, scalar) = self.reg_size(size, name)?;
                let total = self.num_clbits as u64 + size as u64;
                if total > CLBITS_MAX as u64 {
                    return Err(err(
                        pos,
                        K::Limit,
                        format!(
                            "{total} classical bits declared, more than the limit of {CLBITS_MAX}"
                        ),
                    ));
                }
                self.cregs.push(Reg {
                    name: name.clone(),
                    offset: self.num_clbits,
                    size,
                    scalar,
                });
                self.num_clbits = total as u32;
                Ok(())
            }
            StmtKind::Const { ty, name, value } => {
                self.check_new_name(name, pos)?;
                let v = self.eval(value, None)?;
                let v = self.cast(*ty, v, value.pos, name)?;
                if let Some(scope) = self.scopes.last_mut() {
                    scope.insert(name.clone(), v);
                }
                Ok(())
            }
            StmtKind::Input { ty, name } => {
                self.top_level_only(pos, "input declarations")?;
                self.check_new_name(name, pos)?;
                self.inputs.push(name.clone());
                let Some(i) = self.params.iter().position(|(n, _)| n == name) else {
                    return Err(err(pos, K::Param, format!("input '{name}' has no value"))
                        .hint(format!("give it a value with --param {name}=VALUE")));
                };
                self.used_params[i] = true;
                let raw = self.params[i].1;
                let v = match ty {
                    ScalarType::Float | ScalarType::Angle => Value::Float(raw),
                    ScalarType::Bool if raw == 0.0 || raw == 1.0 => Value::Bool(raw == 1.0),
                    ScalarType::Int | ScalarType::Uint
                        if raw.fract() == 0.0
                            && raw.abs() < 9.0e15
                            && (*ty == ScalarType::Int || raw >= 0.0) =>
                    {
                        Value::Int(raw as i64)
                    }
                    _ => {
                        return Err(err(
                            pos,
                            K::Param,
                            format!(
                                "input '{name}' is declared {}, but its value is {raw}",
                                ty.name()
                            ),
                        ))
                    }
                };
                self.scopes[0].insert(name.clone(), v);
                Ok(())
            }
            StmtKind::Gate(decl) => self.define_gate(decl),
            StmtKind::Call(call) => self.top_call(call, out),
            StmtKind::Measure { qubit, bit } => {
                let qs = self.qubits_of(qubit)?;
                let bs = self.bits_of(bit)?;
                let pairs: Vec<(u32, u32)> = match (qs, bs) {
                    (Sel::One(q), Sel::One(b)) => vec![(q, b)],
                    (Sel::Many(q), Sel::Many(b)) if q.len() == b.len() => {
                        q.into_iter().zip(b).collect()
                    }
                    // A single qubit and a one-element register (either way round) match.
                    (Sel::One(q), Sel::Many(b)) if b.len() == 1 => vec![(q, b[0])],
                    (Sel::Many(q), Sel::One(b)) if q.len() == 1 => vec![(q[0], b)],
                    (q, b) => {
                        let n = |s: &Sel| match s {
                            Sel::One(_) => 1,
                            Sel::Many(v) => v.len(),
                        };
                        return Err(err(
                            bit.pos(),
                            K::Arity,
                            format!(
                                "measurement of {} into {}: the sizes must match",
                                plural(n(&q), "qubit"),
                                plural(n(&b), "bit")
                            ),
                        ));
                    }
                };
                self.count_ops(pairs.len(), pos)?;
                out.extend(
                    pairs
                        .into_iter()
                        .map(|(qubit, clbit)| Op::Measure { qubit, clbit }),
                );
                Ok(())
            }
            StmtKind::Reset(args) => {
                for a in args {
                    let qs = match self.qubits_of(a)? {
                        Sel::One(q) => vec![q],
                        Sel::Many(v) => v,
                    };
                    self.count_ops(qs.len(), pos)?;
                    out.extend(qs.into_iter().map(|qubit| Op::Reset { qubit }));
                }
                Ok(())
            }
            StmtKind::Barrier(args) => {
                let mut qubits = Vec::new();
                if args.is_empty() {
                    qubits = (0..self.physical.unwrap_or(self.num_qubits)).collect();
                }
                for a in args {
                    match self.qubits_of(a)? {
                        Sel::One(q) => qubits.push(q),
                        Sel::Many(v) => qubits.extend(v),
                    }
                }
                let mut seen = std::collections::HashSet::new();
                qubits.retain(|q| seen.insert(*q));
                self.count_ops(qubits.len().max(1), pos)?;
                out.push(Op::Barrier { qubits });
                Ok(())
            }
            StmtKind::If {
                cond,
                then_body,
                else_body,
            } => match self.condition(cond)? {
                Cond::Static(b) => {
                    let body = if b { then_body } else { else_body };
                    self.lower_block(body, out)
                }
                Cond::Dynamic(c, negate) => {
                    let (mut t, mut f) = (Vec::new(), Vec::new());
                    self.cond_depth += 1;
                    let r = self
                        .lower_block(then_body, &mut t)
                        .and_then(|_| self.lower_block(else_body, &mut f));
                    self.cond_depth -= 1;
                    r?;
                    if negate {
                        std::mem::swap(&mut t, &mut f);
                    }
                    self.count_ops(1, pos)?;
                    out.push(Op::If {
                        cond: c,
                        then_ops: t,
                        else_ops: f,
                    });
                    Ok(())
                }
            },
            StmtKind::For { ty, var, set, body } => {
                if self.qregs.iter().chain(&self.cregs).any(|r| &r.name == var)
                    || self.gates.contains_key(var)
                    || BUILTIN_CONSTANTS.contains(&var.as_str())
                {
                    return Err(err(
                        pos,
                        K::Redefinition,
                        format!("loop variable '{var}' would hide a register, gate or constant of the same name"),
                    ));
                }
                let values: Vec<(Value, Pos)> = match set {
                    LoopSet::Range(r) => self
                        .range(r, pos)?
                        .into_iter()
                        .map(|i| (Value::Int(i), r.start.pos))
                        .collect(),
                    LoopSet::Set(es) => es
                        .iter()
                        .map(|e| Ok((self.eval(e, None)?, e.pos)))
                        .collect::<Res<_>>()?,
                };
                // A typed loop variable holds values of its type, as a constant would.
                let values: Vec<Value> = values
                    .into_iter()
                    .map(|(v, vpos)| match ty {
                        Some(ty) => self.cast(*ty, v, vpos, var),
                        None => Ok(v),
                    })
                    .collect::<Res<_>>()?;
                self.loop_iterations = self.loop_iterations.saturating_add(values.len() as u64);
                if self.loop_iterations > LOOP_ITERATIONS_MAX {
                    return Err(err(
                        pos,
                        K::Limit,
                        format!("more than {LOOP_ITERATIONS_MAX} loop iterations in all"),
                    ));
                }
                for v in values {
                    let mut scope = HashMap::new();
                    scope.insert(var.clone(), v);
                    self.scopes.push(scope);
                    let r = self.lower_block(body, out);
                    self.scopes.pop();
                    r?;
                }
                Ok(())
            }
            StmtKind::Block(b) => self.lower_block(b, out),
        }
    }

    fn cast(&self, ty: ScalarType, v: Value, pos: Pos, name: &str) -> Res<Value> {
        let bad = || {
            err(
                pos,
                K::Type,
                format!(
                    "'{name}' is declared {}, but its value is a {}",
                    ty.name(),
                    v.type_name()
                ),
            )
        };
        Ok(match (ty, v) {
            (ScalarType::Int, Value::Int(_)) => v,
            (ScalarType::Uint, Value::Int(n)) if n >= 0 => v,
            (ScalarType::Uint, Value::Int(n)) => {
                return Err(err(
                    pos,
                    K::Type,
                    format!("'{name}' is declared uint, but its value is {n}"),
                ))
            }
            (ScalarType::Float | ScalarType::Angle, Value::Int(n)) => Value::Float(n as f64),
            (ScalarType::Float | ScalarType::Angle, Value::Float(_)) => v,
            (ScalarType::Bool, Value::Bool(_)) => v,
            _ => return Err(bad()),
        })
    }

    // ---- conditions ----

    fn bit_ref(&mut self, e: &Expr) -> Res<Option<Vec<u32>>> {
        let op = match &e.kind {
            ExprKind::Name(n) if self.cregs.iter().any(|r| &r.name == n) => Operand::Named {
                name: n.clone(),
                index: None,
                pos: e.pos,
            },
            ExprKind::Index(n, i) => Operand::Named {
                name: n.clone(),
                index: Some(Box::new(IndexSel::One((**i).clone()))),
                pos: e.pos,
            },
            _ => return Ok(None),
        };
        let bits = match self.bits_of(&op)? {
            Sel::One(b) => vec![b],
            Sel::Many(v) => v,
        };
        if bits.len() > CONDITION_BITS_MAX {
            return Err(err(
                e.pos,
                K::Limit,
                format!(
                    "a condition reads {} bits; at most {CONDITION_BITS_MAX} can be compared",
                    bits.len()
                ),
            )
            .hint("compare single bits, or a register of at most 64 bits"));
        }
        Ok(Some(bits))
    }

    fn condition(&mut self, e: &Expr) -> Res<Cond> {
        match &e.kind {
            ExprKind::Binary(op @ (BinOp::Eq | BinOp::Ne), a, b) => {
                let (bits, value) = match self.bit_ref(a)? {
                    Some(bits) => (Some(bits), b),
                    None => (self.bit_ref(b)?, a),
                };
                if let Some(clbits) = bits {
                    let v = self.eval(value, None)?;
                    let n = match v {
                        Value::Int(n) => n,
                        Value::Bool(b) => b as i64,
                        Value::Float(_) => {
                            return Err(err(
                                value.pos,
                                K::Type,
                                "a bit or register can be compared only with an integer",
                            ))
                        }
                    };
                    let width = clbits.len();
                    if n < 0 || (width < 64 && (n as u64) >> width != 0) {
                        return Err(err(
                            value.pos,
                            K::Type,
                            format!("value {n} does not fit in {}", plural(width, "bit")),
                        )
                        .hint("the condition could never hold"));
                    }
                    return Ok(Cond::Dynamic(
                        Condition {
                            clbits,
                            value: n as u64,
                        },
                        *op == BinOp::Ne,
                    ));
                }
            }
            ExprKind::Unary(UnOp::Not, x) => {
                if let Some(clbits) = self.bit_ref(x)? {
                    return Ok(Cond::Dynamic(Condition { clbits, value: 0 }, false));
                }
            }
            _ => {
                if let Some(clbits) = self.bit_ref(e)? {
                    return Ok(Cond::Dynamic(Condition { clbits, value: 0 }, true));
                }
            }
        }
        match self.eval(e, None)? {
            Value::Bool(b) => Ok(Cond::Static(b)),
            v => Err(err(
                e.pos,
                K::Type,
                format!("a condition must be a bool, found a {}", v.type_name()),
            )),
        }
    }

    // ---- gates ----

    fn define_gate(&mut self, decl: &GateDecl) -> Res<()> {
        let pos = decl.pos;
        self.top_level_only(pos, "gate definitions")?;
        if let Some(g) = gates::lookup(&decl.name).filter(|g| self.table_visible(g)) {
            return Err(err(
                pos,
                K::Redefinition,
                format!(
                    "gate '{}' is already defined{}",
                    g.name,
                    match g.include {
                        Include::Builtin => " (built in)",
                        _ if self.version == 2 => " by qelib1.inc",
                        _ => " by the standard library",
                    }
                ),
            )
            .hint("remove the definition or rename the gate"));
        }
        self.check_new_name(&decl.name, pos)?;
        let mut names: Vec<&String> = Vec::new();
        for n in decl.params.iter().chain(&decl.args) {
            if names.contains(&n) {
                return Err(err(
                    pos,
                    K::Redefinition,
                    format!(
                        "'{n}' appears twice among the parameters and arguments of gate '{}'",
                        decl.name
                    ),
                ));
            }
            names.push(n);
        }
        for s in &decl.body {
            let operands: &[Operand] = match &s.kind {
                StmtKind::Call(c) => {
                    if c.name == decl.name {
                        return Err(err(
                            c.name_pos,
                            K::Type,
                            format!("gate '{}' calls itself; recursive gate definitions are not allowed", decl.name),
                        ));
                    }
                    let known = self.gates.contains_key(&c.name)
                        || gates::lookup(&c.name).is_some_and(|g| self.table_visible(g));
                    if !known {
                        return Err(self.unknown_gate(&c.name, c.name_pos));
                    }
                    &c.args
                }
                StmtKind::Barrier(a) => a,
                _ => {
                    return Err(err(
                        s.pos,
                        K::Syntax,
                        "only gate calls, gphase and barrier are allowed inside a gate definition",
                    ))
                }
            };
            for o in operands {
                match o {
                    Operand::Named {
                        name, index: None, ..
                    } if decl.args.contains(name) => {}
                    Operand::Named {
                        name,
                        index: Some(_),
                        pos,
                    } if decl.args.contains(name) => {
                        return Err(err(
                            *pos,
                            K::Type,
                            format!(
                                "gate argument '{name}' is a single qubit and cannot be indexed"
                            ),
                        ))
                    }
                    Operand::Named { name, pos, .. } => {
                        return Err(err(
                            *pos,
                            K::UnknownName,
                            format!("'{name}' is not a qubit argument of gate '{}'", decl.name),
                        )
                        .hint("a gate body can act only on the gate's own qubit arguments"))
                    }
                    Operand::Hardware { index, pos } => {
                        return Err(err(
                            *pos,
                            K::Type,
                            format!("physical qubit ${index} inside gate '{}'", decl.name),
                        )
                        .hint("a gate body can act only on the gate's own qubit arguments"))
                    }
                }
            }
        }
        self.gates.insert(decl.name.clone(), Rc::new(decl.clone()));
        Ok(())
    }

    fn eval_mods(&self, call: &GateCall, locals: Option<&HashMap<String, f64>>) -> Res<Vec<RMod>> {
        call.modifiers
            .iter()
            .map(|m| {
                Ok(match m {
                    Modifier::Inv => RMod::Inv,
                    Modifier::Pow(e, pos) => RMod::Pow(self.num(e, locals)?, *pos),
                    Modifier::Ctrl { count, negative, pos } => {
                        let n = match count {
                            None => 1,
                            Some(e) => {
                                let v = self.eval(e, locals)?;
                                let n = match v {
                                    Value::Int(n) => n,
                                    Value::Float(x) if x.fract() == 0.0 && x.abs() < 1e9 => x as i64,
                                    _ => {
                                        return Err(err(e.pos, K::Type, "the number of controls must be an integer"))
                                    }
                                };
                                if n < 1 || n > CONTROLS_MAX as i64 {
                                    return Err(err(
                                        *pos,
                                        K::Limit,
                                        format!("{n} controls: the number must be between 1 and {CONTROLS_MAX}"),
                                    ));
                                }
                                n as usize
                            }
                        };
                        RMod::Ctrl { n, negative: *negative }
                    }
                })
            })
            .collect()
    }

    fn top_call(&mut self, call: &GateCall, out: &mut Vec<Op>) -> Res<()> {
        let params = call
            .params
            .iter()
            .map(|e| self.num(e, None))
            .collect::<Res<Vec<f64>>>()?;
        let mods = self.eval_mods(call, None)?;
        let sels = call
            .args
            .iter()
            .map(|a| self.qubits_of(a))
            .collect::<Res<Vec<Sel>>>()?;
        let instances = self.broadcast(&sels, &call.args, "gate call")?;
        for qubits in instances {
            let seq = self.expand(call, &mods, &params, &qubits, &call.args, 0)?;
            if self.cond_depth == 0 {
                self.global_phase += seq.phase;
            }
            out.extend(seq.ops);
        }
        Ok(())
    }

    /// Expands one gate call (modifiers, parameters and qubits resolved) into a sequence.
    fn expand(
        &mut self,
        call: &GateCall,
        mods: &[RMod],
        params: &[f64],
        qubits: &[u32],
        operands: &[Operand],
        depth: usize,
    ) -> Res<Seq> {
        for (i, q) in qubits.iter().enumerate() {
            if qubits[..i].contains(q) {
                let pos = operands.get(i).map_or(call.pos, |o| o.pos());
                return Err(err(
                    pos,
                    K::DuplicateQubit,
                    format!(
                        "qubit {} is used twice in this call of '{}'",
                        self.qubit_label(*q),
                        call.name
                    ),
                )
                .hint("every argument of a gate must be a different qubit"));
            }
        }
        let ncontrols: usize = mods
            .iter()
            .map(|m| match m {
                RMod::Ctrl { n, .. } => *n,
                _ => 0,
            })
            .sum();
        if ncontrols > qubits.len() {
            return Err(err(
                call.pos,
                K::Arity,
                format!(
                    "the modifiers need {} but the call has {}",
                    plural(ncontrols, "control qubit"),
                    plural(qubits.len(), "qubit argument")
                ),
            ));
        }
        let mut seq = self.base_gate(call, params, &qubits[ncontrols..], depth)?;
        // Modifiers apply innermost (rightmost) first; each ctrl takes its qubits from the front.
        let mut offsets = Vec::with_capacity(mods.len());
        let mut off = 0;
        for m in mods {
            offsets.push(off);
            if let RMod::Ctrl { n, .. } = m {
                off += n;
            }
        }
        for (m, &off) in mods.iter().zip(&offsets).rev() {
            match *m {
                RMod::Inv => seq = invert(seq),
                RMod::Pow(k, pos) => seq = self.power(seq, k, pos, &call.name)?,
                RMod::Ctrl { n, negative } => {
                    seq = self.control(seq, &qubits[off..off + n], negative, call.pos)?
                }
            }
        }
        Ok(seq)
    }

    fn base_gate(
        &mut self,
        call: &GateCall,
        params: &[f64],
        qubits: &[u32],
        depth: usize,
    ) -> Res<Seq> {
        let name = call.name.as_str();
        let pos = call.name_pos;
        let arity = |what: &str, want: usize, got: usize| {
            err(
                pos,
                K::Arity,
                format!("gate '{name}' takes {}, {got} given", plural(want, what)),
            )
        };
        if let Some(decl) = self.gates.get(name).cloned() {
            self.count_expansions(1, pos)?;
            if params.len() != decl.params.len() {
                return Err(arity("parameter", decl.params.len(), params.len()));
            }
            if qubits.len() != decl.args.len() {
                return Err(arity("qubit", decl.args.len(), qubits.len()));
            }
            if depth + 1 > GATE_DEPTH_MAX {
                return Err(err(
                    pos,
                    K::Limit,
                    format!("gate definitions nested deeper than {GATE_DEPTH_MAX} levels"),
                ));
            }
            let locals: HashMap<String, f64> = decl
                .params
                .iter()
                .cloned()
                .zip(params.iter().copied())
                .collect();
            let args: HashMap<&str, u32> = decl
                .args
                .iter()
                .map(|s| s.as_str())
                .zip(qubits.iter().copied())
                .collect();
            let map = |o: &Operand| match o {
                Operand::Named { name, .. } => args.get(name.as_str()).copied().unwrap_or(0),
                Operand::Hardware { .. } => 0,
            };
            let mut seq = Seq::default();
            for s in &decl.body {
                match &s.kind {
                    StmtKind::Call(c) => {
                        let p = c
                            .params
                            .iter()
                            .map(|e| self.num(e, Some(&locals)))
                            .collect::<Res<Vec<f64>>>()?;
                        let mods = self.eval_mods(c, Some(&locals))?;
                        let qs: Vec<u32> = c.args.iter().map(map).collect();
                        let sub = self.expand(c, &mods, &p, &qs, &c.args, depth + 1)?;
                        seq.ops.extend(sub.ops);
                        seq.phase += sub.phase;
                    }
                    StmtKind::Barrier(a) => {
                        let qubits = if a.is_empty() {
                            qubits.to_vec()
                        } else {
                            a.iter().map(map).collect()
                        };
                        self.count_ops(qubits.len().max(1), s.pos)?;
                        seq.ops.push(Op::Barrier { qubits });
                    }
                    _ => {}
                }
            }
            return Ok(seq);
        }
        let Some(g) = gates::lookup(name).filter(|g| self.table_visible(g)) else {
            return Err(self.unknown_gate(name, pos));
        };
        if params.len() != g.params {
            return Err(arity("parameter", g.params, params.len()));
        }
        if qubits.len() != g.qubits {
            return Err(arity("qubit", g.qubits, qubits.len()));
        }
        if g.qubits == 0 {
            return Ok(Seq {
                ops: Vec::new(),
                phase: params.first().copied().unwrap_or(0.0),
            });
        }
        self.count_ops(1, pos)?;
        Ok(Seq {
            ops: vec![Op::Gate(Gate {
                name: g.name.to_string(),
                params: params.to_vec(),
                targets: qubits[g.controls..].to_vec(),
                controls: qubits[..g.controls].to_vec(),
                ctrl_state: (1u64 << g.controls) - 1,
                matrix: (g.target_matrix)(params),
            })],
            phase: 0.0,
        })
    }

    fn control(&mut self, seq: Seq, cs: &[u32], negative: bool, pos: Pos) -> Res<Seq> {
        let n = cs.len();
        let own: u64 = if negative { 0 } else { (1u64 << n) - 1 };
        let mut ops = Vec::with_capacity(seq.ops.len() + 1);
        if seq.phase != 0.0 {
            self.count_ops(1, pos)?;
            ops.extend(
                phase_on_controls(cs, own, seq.phase)
                    .into_iter()
                    .map(Op::Gate),
            );
        }
        for op in seq.ops {
            ops.push(match op {
                Op::Gate(mut g) => {
                    if g.controls.len() + n > CONTROLS_MAX {
                        return Err(err(
                            pos,
                            K::Limit,
                            format!("more than {CONTROLS_MAX} controls on one gate"),
                        ));
                    }
                    let mut controls = cs.to_vec();
                    controls.extend(&g.controls);
                    g.ctrl_state = own | (g.ctrl_state << n);
                    g.controls = controls;
                    Op::Gate(g)
                }
                Op::Barrier { mut qubits } => {
                    qubits.extend(
                        cs.iter()
                            .filter(|c| !qubits.contains(c))
                            .collect::<Vec<_>>(),
                    );
                    Op::Barrier { qubits }
                }
                other => other,
            });
        }
        Ok(Seq { ops, phase: 0.0 })
    }

    fn power(&mut self, seq: Seq, k: f64, pos: Pos, name: &str) -> Res<Seq> {
        if k.fract() == 0.0 {
            let reps = k.abs();
            let gates = seq.ops.len() as f64;
            if gates * reps > OPS_MAX as f64 || reps > LOOP_ITERATIONS_MAX as f64 {
                return Err(err(
                    pos,
                    K::Limit,
                    format!("pow({k}) would repeat the gate more times than the limit of {OPS_MAX} operations"),
                ));
            }
            let reps = reps as usize;
            self.count_expansions(reps as u64, pos)?;
            let base = if k < 0.0 { invert(seq) } else { seq };
            let weight: usize = base.ops.iter().map(op_weight).sum();
            self.count_ops(weight.saturating_mul(reps.saturating_sub(1)), pos)?;
            let mut ops = Vec::with_capacity(base.ops.len() * reps);
            for _ in 0..reps {
                ops.extend(base.ops.iter().cloned());
            }
            return Ok(Seq {
                ops,
                phase: base.phase * reps as f64,
            });
        }
        let refuse = |why: String| {
            err(
                pos,
                K::Unsupported,
                format!("pow({k}) with a non-integer exponent on '{name}': {why}"),
            )
            .hint("non-integer powers are supported for gates on one target qubit; use an integer exponent")
        };
        let gates: Vec<&Gate> = seq
            .ops
            .iter()
            .filter_map(|o| match o {
                Op::Gate(g) => Some(g),
                _ => None,
            })
            .collect();
        if gates.len() != seq.ops.len() {
            return Err(refuse("its definition contains a barrier".into()));
        }
        let wrap = |x: f64| {
            let y = x.rem_euclid(TAU);
            if y > PI {
                y - TAU
            } else {
                y
            }
        };
        match gates.as_slice() {
            [] => Ok(Seq {
                ops: Vec::new(),
                phase: wrap(seq.phase) * k,
            }),
            [g] if g.targets.len() == 1 && (g.controls.is_empty() || seq.phase == 0.0) => {
                let m = g.matrix.scale(C64::from_polar(1.0, seq.phase));
                self.powered_u(&m, k, g.targets[0], &g.controls, g.ctrl_state, pos)
            }
            gs if gs.iter().all(|g| {
                g.controls.is_empty() && g.targets.len() == 1 && g.targets[0] == gs[0].targets[0]
            }) =>
            {
                let mut m = Matrix::identity(2).scale(C64::from_polar(1.0, seq.phase));
                for g in gs {
                    m = g.matrix.mul(&m);
                }
                self.powered_u(&m, k, gs[0].targets[0], &[], 0, pos)
            }
            [g] => Err(refuse(format!(
                "it acts on {} target qubits (with {} controls), and XDV takes principal powers only of one-target-qubit matrices",
                g.targets.len(),
                g.controls.len()
            ))),
            _ => Err(refuse(
                "its definition acts on more than one qubit, and XDV takes principal powers only of one-qubit matrices".into(),
            )),
        }
    }
}

impl Lowerer<'_> {
    /// `m^k` (principal power) on `target` under `controls`, as a `U` gate plus a phase: a global
    /// phase when uncontrolled, a phase gate on the controls otherwise.
    fn powered_u(
        &mut self,
        m: &Matrix,
        k: f64,
        target: u32,
        controls: &[u32],
        ctrl_state: u64,
        pos: Pos,
    ) -> Res<Seq> {
        let (theta, phi, lambda, alpha) = euler_u(&principal_power_2x2(m, k));
        let mut seq = Seq::default();
        if !controls.is_empty() && alpha != 0.0 {
            self.count_ops(1, pos)?;
            seq.ops.extend(
                phase_on_controls(controls, ctrl_state, alpha)
                    .into_iter()
                    .map(Op::Gate),
            );
        } else {
            seq.phase = alpha;
        }
        seq.ops.push(Op::Gate(Gate {
            name: "U".into(),
            params: vec![theta, phi, lambda],
            targets: vec![target],
            controls: controls.to_vec(),
            ctrl_state,
            matrix: gates::u_matrix(theta, phi, lambda),
        }));
        Ok(seq)
    }
}

/// A phase `e^{iγ}` applied when `controls` have the values of `ctrl_state`: a `p(γ)` gate on
/// the last control that must be 1, the other controls remaining controls; if all must be 0, the
/// last one is flipped around the `p(γ)` (`x`, `p(γ)`, `x`), so every gate keeps the table's name
/// and matrix.
fn phase_on_controls(controls: &[u32], ctrl_state: u64, gamma: f64) -> Vec<Gate> {
    let n = controls.len();
    let t = (0..n)
        .rev()
        .find(|i| ctrl_state >> i & 1 == 1)
        .unwrap_or(n.saturating_sub(1));
    let on_one = ctrl_state >> t & 1 == 1;
    let mut rest = Vec::with_capacity(n.saturating_sub(1));
    let mut rest_state = 0u64;
    for (i, &c) in controls.iter().enumerate() {
        if i != t {
            if ctrl_state >> i & 1 == 1 {
                rest_state |= 1 << rest.len();
            }
            rest.push(c);
        }
    }
    let target = controls.get(t).copied().unwrap_or(0);
    let table = |name: &str, params: &[f64]| {
        gates::lookup(name)
            .map(|g| (g.target_matrix)(params))
            .unwrap_or_else(|| Matrix::identity(2))
    };
    let flip = || Gate {
        name: "x".into(),
        params: vec![],
        targets: vec![target],
        controls: vec![],
        ctrl_state: 0,
        matrix: table("x", &[]),
    };
    let phase = Gate {
        name: "p".into(),
        params: vec![gamma],
        targets: vec![target],
        controls: rest,
        ctrl_state: rest_state,
        matrix: table("p", &[gamma]),
    };
    if on_one {
        vec![phase]
    } else {
        vec![flip(), phase, flip()]
    }
}

/// Angles `(θ, φ, λ, α)` with `m = e^{iα} · U(θ, φ, λ)` for a 2×2 unitary `m`.
pub fn euler_u(m: &Matrix) -> (f64, f64, f64, f64) {
    const EPS: f64 = 1e-12;
    let (m00, m01, m10, m11) = (m.at(0, 0), m.at(0, 1), m.at(1, 0), m.at(1, 1));
    let theta = 2.0 * m10.norm().atan2(m00.norm());
    if m00.norm() > EPS {
        let alpha = m00.arg();
        if m10.norm() > EPS {
            let phi = m10.arg() - alpha;
            let lambda = (-m01).arg() - alpha;
            (theta, phi, lambda, alpha)
        } else {
            (theta, 0.0, m11.arg() - alpha, alpha)
        }
    } else {
        let alpha = m10.arg();
        (theta, 0.0, (-m01).arg() - alpha, alpha)
    }
}

/// What an operation of a gate sequence counts against [`OPS_MAX`]: one, or one per qubit of a
/// barrier.
fn op_weight(op: &Op) -> usize {
    match op {
        Op::Barrier { qubits } => qubits.len().max(1),
        _ => 1,
    }
}

enum Cond {
    Static(bool),
    /// The condition, and whether it is negated (the branches swap).
    Dynamic(Condition, bool),
}

/// The inverse of a sequence: reversed, each gate's matrix replaced by its adjoint.
fn invert(seq: Seq) -> Seq {
    let ops = seq
        .ops
        .into_iter()
        .rev()
        .map(|op| match op {
            Op::Gate(mut g) => {
                g.matrix = g.matrix.adjoint();
                let inv = gates::lookup(&g.name).and_then(|d| {
                    let inv = (d.inverse)(&g.params)?;
                    let di = gates::lookup(inv.name)?;
                    (di.params == inv.params.len()
                        && di.qubits == d.qubits
                        && di.controls == d.controls)
                        .then_some(inv)
                });
                if let Some(inv) = inv {
                    g.name = inv.name.to_string();
                    g.params = inv.params;
                }
                Op::Gate(g)
            }
            other => other,
        })
        .collect();
    Seq {
        ops,
        phase: -seq.phase,
    }
}

/// The principal power `m^k` of a 2×2 unitary, from its eigen-decomposition in closed form.
pub fn principal_power_2x2(m: &Matrix, k: f64) -> Matrix {
    let (a, b, c, d) = (m.at(0, 0), m.at(0, 1), m.at(1, 0), m.at(1, 1));
    let half_tr = (a + d) * 0.5;
    let det = a * d - b * c;
    let disc = (half_tr * half_tr - det).sqrt();
    let (l1, l2) = (half_tr + disc, half_tr - disc);
    let pw = |l: C64| C64::from_polar(l.norm().powf(k), l.arg() * k);
    if (l1 - l2).norm() < 1e-9 {
        // A normal matrix with a repeated eigenvalue is that eigenvalue times the identity.
        return Matrix::identity(2).scale(pw(half_tr));
    }
    // m = l1·P1 + l2·P2 with P1 = (m − l2 I)/(l1 − l2), P2 = (m − l1 I)/(l2 − l1).
    let id = Matrix::identity(2);
    let p1 = Matrix {
        dim: 2,
        data: m
            .data
            .iter()
            .zip(&id.data)
            .map(|(x, i)| (x - l2 * i) / (l1 - l2))
            .collect(),
    };
    let p2 = Matrix {
        dim: 2,
        data: m
            .data
            .iter()
            .zip(&id.data)
            .map(|(x, i)| (x - l1 * i) / (l2 - l1))
            .collect(),
    };
    let (w1, w2) = (pw(l1), pw(l2));
    Matrix {
        dim: 2,
        data: p1
            .data
            .iter()
            .zip(&p2.data)
            .map(|(x, y)| x * w1 + y * w2)
            .collect(),
    }
}
