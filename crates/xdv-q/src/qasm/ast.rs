//! The syntax tree the parser builds and the lowering walks. Every node keeps the position of the
//! token it starts at, so that lowering errors point into the source (included files too).

use super::error::Pos;

/// A unary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnOp {
    /// `-x`
    Neg,
    /// `+x`
    Plus,
    /// `!x`
    Not,
    /// `~x`
    BitNot,
}

/// A binary operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BinOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Rem,
    /// `^` in OpenQASM 2, `**` in OpenQASM 3.
    Pow,
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `&&`
    And,
    /// `||`
    Or,
    /// `&`
    BitAnd,
    /// `|`
    BitOr,
    /// `^` in OpenQASM 3.
    BitXor,
    /// `<<`
    Shl,
    /// `>>`
    Shr,
}

/// An expression.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    /// What it is.
    pub kind: ExprKind,
    /// Where it starts.
    pub pos: Pos,
}

/// The forms of an expression.
#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    /// An integer literal.
    Int(u64),
    /// A floating-point literal.
    Float(f64),
    /// `true` / `false`.
    Bool(bool),
    /// A name: a constant, a parameter, a loop variable, `pi`, or a classical register.
    Name(String),
    /// `name[index]`: a bit of a classical register (in conditions).
    Index(String, Box<Expr>),
    /// A unary operation.
    Unary(UnOp, Box<Expr>),
    /// A binary operation.
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// A function call `f(args)`.
    Call(String, Vec<Expr>),
}

/// What selects elements of a register in an operand.
#[derive(Clone, Debug, PartialEq)]
pub enum IndexSel {
    /// `[i]`
    One(Expr),
    /// `[a:b]` or `[a:step:b]`, inclusive.
    Range(RangeExpr),
    /// `[{i, j, …}]`
    Set(Vec<Expr>),
}

/// An inclusive range `[start:step:end]`.
#[derive(Clone, Debug, PartialEq)]
pub struct RangeExpr {
    /// First value.
    pub start: Expr,
    /// Step (1 when omitted).
    pub step: Option<Expr>,
    /// Last value (inclusive).
    pub end: Expr,
}

/// A qubit or bit operand: a register name with an optional index, or a physical qubit.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    /// `name` or `name[…]`.
    Named {
        /// The register (or gate argument) name.
        name: String,
        /// The index, if any.
        index: Option<Box<IndexSel>>,
        /// Where the operand starts.
        pos: Pos,
    },
    /// `$n`.
    Hardware {
        /// The physical qubit number.
        index: u64,
        /// Where it is written.
        pos: Pos,
    },
}

impl Operand {
    /// Where the operand starts.
    pub fn pos(&self) -> Pos {
        match self {
            Operand::Named { pos, .. } | Operand::Hardware { pos, .. } => *pos,
        }
    }
}

/// A gate modifier.
#[derive(Clone, Debug, PartialEq)]
pub enum Modifier {
    /// `ctrl @` / `ctrl(n) @` (`negative` for `negctrl`).
    Ctrl {
        /// How many controls.
        count: Option<Expr>,
        /// Whether the controls act on |0⟩ (`negctrl`).
        negative: bool,
        /// Where the modifier is written.
        pos: Pos,
    },
    /// `inv @`.
    Inv,
    /// `pow(k) @`.
    Pow(Expr, Pos),
}

/// A gate call, with its modifiers.
#[derive(Clone, Debug, PartialEq)]
pub struct GateCall {
    /// Modifiers, outermost (leftmost) first.
    pub modifiers: Vec<Modifier>,
    /// The gate's name.
    pub name: String,
    /// Where the name is written.
    pub name_pos: Pos,
    /// Angle arguments.
    pub params: Vec<Expr>,
    /// Qubit arguments.
    pub args: Vec<Operand>,
    /// Where the call starts (the first modifier or the name).
    pub pos: Pos,
}

/// A classical type in a declaration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScalarType {
    /// `int`, `int[n]`.
    Int,
    /// `uint`, `uint[n]`.
    Uint,
    /// `float`, `float[n]`.
    Float,
    /// `angle`, `angle[n]`.
    Angle,
    /// `bool`.
    Bool,
}

impl ScalarType {
    /// The keyword.
    pub fn name(self) -> &'static str {
        match self {
            ScalarType::Int => "int",
            ScalarType::Uint => "uint",
            ScalarType::Float => "float",
            ScalarType::Angle => "angle",
            ScalarType::Bool => "bool",
        }
    }
}

/// What a `for` loop iterates over.
#[derive(Clone, Debug, PartialEq)]
pub enum LoopSet {
    /// `[a:b]`, `[a:step:b]`.
    Range(RangeExpr),
    /// `{a, b, …}`.
    Set(Vec<Expr>),
}

/// A user gate definition.
#[derive(Clone, Debug, PartialEq)]
pub struct GateDecl {
    /// The name.
    pub name: String,
    /// The angle parameter names.
    pub params: Vec<String>,
    /// The qubit argument names.
    pub args: Vec<String>,
    /// The body.
    pub body: Vec<Stmt>,
    /// Where the name is written.
    pub pos: Pos,
}

/// A statement.
#[derive(Clone, Debug, PartialEq)]
pub struct Stmt {
    /// What it is.
    pub kind: StmtKind,
    /// Where it starts.
    pub pos: Pos,
}

/// The forms of a statement.
#[derive(Clone, Debug, PartialEq)]
pub enum StmtKind {
    /// `include "qelib1.inc";` or `include "stdgates.inc";` (other includes are spliced in).
    IncludeStd(StdInclude),
    /// A quantum register: `qreg q[n];`, `qubit[n] q;`, `qubit q;` (`size` None: one qubit).
    QReg {
        /// Name.
        name: String,
        /// Size (`None` for a single `qubit q;`).
        size: Option<Expr>,
    },
    /// A classical register: `creg c[n];`, `bit[n] c;`, `bit c;`.
    CReg {
        /// Name.
        name: String,
        /// Size (`None` for a single `bit c;`).
        size: Option<Expr>,
    },
    /// `const T name = value;`
    Const {
        /// Declared type.
        ty: ScalarType,
        /// Name.
        name: String,
        /// Value.
        value: Expr,
    },
    /// `input T name;`
    Input {
        /// Declared type.
        ty: ScalarType,
        /// Name.
        name: String,
    },
    /// A user gate definition.
    Gate(Box<GateDecl>),
    /// A gate call.
    Call(GateCall),
    /// `measure q -> c;` or `c = measure q;`.
    Measure {
        /// Measured qubits.
        qubit: Operand,
        /// Bits written.
        bit: Operand,
    },
    /// `reset q;`.
    Reset(Vec<Operand>),
    /// `barrier …;` (empty: every qubit).
    Barrier(Vec<Operand>),
    /// `if (cond) … else …`.
    If {
        /// The condition.
        cond: Expr,
        /// Then branch.
        then_body: Vec<Stmt>,
        /// Else branch.
        else_body: Vec<Stmt>,
    },
    /// `for T v in set { … }`.
    For {
        /// The loop variable's declared type (`None` for the untyped `for v in …`).
        ty: Option<ScalarType>,
        /// The loop variable.
        var: String,
        /// What it iterates over.
        set: LoopSet,
        /// The body.
        body: Vec<Stmt>,
    },
    /// `{ … }`: a scope.
    Block(Vec<Stmt>),
}

/// A built-in standard include.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StdInclude {
    /// `qelib1.inc` (OpenQASM 2).
    Qelib1,
    /// `stdgates.inc` (OpenQASM 3).
    Stdgates,
}
