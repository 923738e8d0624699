//! Errors of the OpenQASM front end: every one carries the file, line and column of the offending
//! token, what was wrong, and — where it helps — a hint on how to fix it.

use std::fmt;

/// What kind of problem an error reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QasmErrorKind {
    /// The text does not follow the grammar (a missing `;`, an unexpected token, a bad literal).
    Syntax,
    /// A name that is not declared (a register, gate, constant or function).
    UnknownName,
    /// A construct of the language that XDV does not support (named in the message).
    Unsupported,
    /// Wrong number of arguments or parameters, or registers of different sizes broadcast together.
    Arity,
    /// A value of the wrong type (a float where an integer index is needed, a register where a
    /// qubit is needed, …).
    Type,
    /// A limit of the front end was exceeded (operations, qubits, loop iterations, nesting, …).
    Limit,
    /// A problem with the `input` parameters (missing, undeclared, or of the wrong type).
    Param,
    /// An `include` that could not be resolved.
    Include,
    /// A name declared twice.
    Redefinition,
    /// An index outside its register.
    Range,
    /// The same qubit used twice in one operation.
    DuplicateQubit,
    /// A missing or unsupported `OPENQASM` version header.
    Version,
    /// An arithmetic error in a constant expression (division by zero, overflow, a domain error).
    Arithmetic,
}

/// An error of [`parse`](super::parse), pointing at a position in a source file.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub struct QasmError {
    /// The file the error is in (the origin given to `parse`, or an included file's name).
    pub origin: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, counted in characters.
    pub column: u32,
    /// What is wrong.
    pub message: String,
    /// How to fix it, where there is something useful to say.
    pub hint: Option<String>,
    /// The category of the problem.
    pub kind: QasmErrorKind,
}

impl fmt::Display for QasmError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.origin, self.line, self.column, self.message
        )?;
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// A position in one of the source files of a parse: the file's index among the files read, and
/// the 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Pos {
    /// Index into the list of files read (0 is the main file).
    pub file: u32,
    /// 1-based line.
    pub line: u32,
    /// 1-based column, in characters.
    pub col: u32,
}

/// An error before it is attached to a file name: a position, a kind, a message and a hint.
#[derive(Clone, Debug, PartialEq)]
pub struct RawError {
    /// Where.
    pub pos: Pos,
    /// What kind.
    pub kind: QasmErrorKind,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: Option<String>,
}

impl RawError {
    /// An error without a hint.
    pub fn new(pos: Pos, kind: QasmErrorKind, message: impl Into<String>) -> Self {
        RawError {
            pos,
            kind,
            message: message.into(),
            hint: None,
        }
    }

    /// Adds a hint.
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Attaches the file name.
    pub fn into_error(self, files: &[String]) -> QasmError {
        QasmError {
            origin: files
                .get(self.pos.file as usize)
                .cloned()
                .unwrap_or_else(|| "<unknown>".to_string()),
            line: self.pos.line,
            column: self.pos.col,
            message: self.message,
            hint: self.hint,
            kind: self.kind,
        }
    }
}

/// Results inside the front end.
pub type Res<T> = Result<T, RawError>;
