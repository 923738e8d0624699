//! XDV's OpenQASM front end: OpenQASM 2.0 and OpenQASM 3 source text to the flat
//! [`Circuit`](crate::circuit::Circuit) IR, by a hand-written lexer ([`lexer`]), a
//! recursive-descent parser ([`parser`], building [`ast`]) and a lowering pass ([`lower`]) that
//! inlines user gates, applies modifiers, unrolls loops, binds constants and `input` parameters,
//! and takes every matrix from the gate table [`crate::gates`].
//!
//! The version comes from the `OPENQASM` header (a file without one is read as OpenQASM 3). The
//! standard includes `qelib1.inc` and `stdgates.inc` are built in (the table's gates marked for
//! them) and never read from disk; other includes go through [`Options::include`].
//!
//! Every error is a [`QasmError`] with the file, line and column of the offending token; no input
//! makes the front end panic, and every resource it spends is bounded by the `*_MAX` limits below.

pub mod ast;
pub mod error;
pub mod lexer;
pub mod lower;
pub mod parser;

pub use error::{QasmError, QasmErrorKind};

use crate::circuit::Circuit;

/// Largest source accepted, main file and includes together, in bytes.
pub const SOURCE_BYTES_MAX: usize = 64 << 20;
/// Most operations (gates, measurements, resets, barriers, conditionals) after inlining and
/// unrolling; a barrier counts once per qubit it spans, since it holds their list.
pub const OPS_MAX: usize = 10_000_000;
/// Most qubits a program may declare (the simulator separately refuses states that do not fit in
/// memory).
pub const QUBITS_MAX: u32 = 1_000_000;
/// Most classical bits a program may declare: what execution accepts
/// ([`crate::exec::CLBITS_MAX`]), so that a larger program is refused here, with its position.
pub const CLBITS_MAX: u32 = crate::exec::CLBITS_MAX;
/// Most `for` loop iterations, all loops together.
pub const LOOP_ITERATIONS_MAX: u64 = 10_000_000;
/// Deepest nesting of user gate calls inside gate definitions.
pub const GATE_DEPTH_MAX: usize = 64;
/// Deepest nesting of non-standard includes.
pub const INCLUDE_DEPTH_MAX: usize = 16;
/// Deepest nesting of expressions and blocks, in levels.
pub const NESTING_DEPTH_MAX: usize = 64;
/// Most controls on one gate (`Gate::ctrl_state` is a `u64`).
pub const CONTROLS_MAX: usize = 63;
/// Most classical bits one condition may compare (`Condition::value` is a `u64`).
pub const CONDITION_BITS_MAX: usize = 64;
/// Most binary operators in one expression (its parenthesised parts and arguments included), so
/// that a long flat chain like `1 + 1 + … + 1` cannot build a tree too deep to evaluate.
pub const EXPR_OPERATORS_MAX: usize = 512;
/// Most expansions of user gates and `pow` repetitions, all together: bounds the work of
/// inlining gates whose bodies emit few or no operations (`gate g1 a { g0 a; g0 a; }`, …).
pub const GATE_EXPANSIONS_MAX: u64 = 10_000_000;

/// How to parse: values for `input` parameters, and how to resolve non-standard includes.
#[derive(Clone, Copy, Default)]
pub struct Options<'a> {
    /// Values for OpenQASM 3 `input float`/`input angle` parameters (from `--param NAME=VALUE`).
    pub params: &'a [(String, f64)],
    /// Resolves `include "file";` for files other than the built-in qelib1.inc / stdgates.inc:
    /// given the name as written, returns the file's text or an error message. None: such
    /// includes are refused.
    #[allow(clippy::type_complexity)]
    pub include: Option<&'a dyn Fn(&str) -> Result<String, String>>,
}

/// Parses OpenQASM 2.0 or 3 source `text` (named `origin` in errors) and lowers it to a flat
/// circuit.
pub fn parse(text: &str, origin: &str, opts: &Options) -> Result<Circuit, QasmError> {
    let mut files = parser::Files {
        names: vec![origin.to_string()],
        bytes: 0,
        resolver: opts.include,
    };
    let program =
        parser::parse_program(text, &mut files).map_err(|e| e.into_error(&files.names))?;
    lower::Lowerer::new(program.version, opts.params)
        .lower(&program.stmts)
        .map_err(|e| e.into_error(&files.names))
}
