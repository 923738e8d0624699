//! The Φ domain's errors: each says what is wrong, where, and how to fix it.

use thiserror::Error;

/// Everything that can go wrong in the Φ domain.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum PhiError {
    /// A program (TOML or JSON) that cannot be read or does not satisfy the schema or its limits.
    /// `position` is the 1-based (line, column in characters) of the offending key or value;
    /// `None` only where it cannot be told.
    #[error("{file}{}: `{key}`: {message}; {hint}", position.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default())]
    Program {
        /// The file (or origin) named by the caller.
        file: String,
        /// 1-based (line, column), where known.
        position: Option<(usize, usize)>,
        /// The key (a dotted path such as `op[2].theta`), or `(document)` when none applies.
        key: String,
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: String,
    },
    /// A matrix file (JSON, an array of rows of `[re, im]`) that cannot be read.
    #[error("{file}{}: {message}; {hint}", match (row, column) {
        (Some(r), Some(c)) => format!(": row {r}, column {c} (0-based)"),
        (Some(r), None) => format!(": row {r} (0-based)"),
        _ => String::new(),
    })]
    Matrix {
        /// The file (or origin) named by the caller.
        file: String,
        /// 0-based row, where the problem is in one row.
        row: Option<usize>,
        /// 0-based column, where the problem is in one entry.
        column: Option<usize>,
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: String,
    },
    /// A matrix given where a unitary is needed is not unitary within the tolerance.
    #[error(
        "the matrix is not unitary: max |U†U − I| = {deviation:.3e} exceeds the tolerance \
         {tolerance:.1e}; give a unitary (entries to full double precision), or use `matvec` for \
         a general matrix"
    )]
    NotUnitary {
        /// max over entries of |U†U − I|.
        deviation: f64,
        /// The tolerance it was compared with ([`crate::UNITARITY_TOLERANCE`]).
        tolerance: f64,
    },
    /// A size or count beyond one of the documented limits.
    #[error("{what} is {value}, above the limit {max}; {hint}")]
    Limit {
        /// What was counted (with its unit).
        what: String,
        /// Its value.
        value: u64,
        /// The limit.
        max: u64,
        /// How to fix it.
        hint: String,
    },
    /// An operand of the wrong shape (matrix size against modes, field length against modes).
    #[error("{message}")]
    Shape {
        /// What is wrong.
        message: String,
    },
}
