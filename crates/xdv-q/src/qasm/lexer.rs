//! The lexer: source text to tokens, each with its line and column (columns count characters).
//! Comments (`//` to end of line, `/* … */`) and whitespace are skipped.

use super::error::{Pos, QasmErrorKind, RawError, Res};
use std::fmt;

/// A token's content.
#[derive(Clone, Debug, PartialEq)]
pub enum Tok {
    /// A name or keyword.
    Ident(String),
    /// An integer literal (decimal, or `0b`/`0o`/`0x` in OpenQASM 3).
    Int(u64),
    /// A floating-point literal.
    Float(f64),
    /// A string literal (the text between the quotes).
    Str(String),
    /// A literal XDV does not support (a duration `100ns`, an imaginary `2im`), with what it is.
    Unsupported(String, &'static str),
    /// A physical qubit `$n`.
    Hardware(u64),
    /// Punctuation or an operator.
    Punct(&'static str),
    /// End of input.
    Eof,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) => write!(f, "'{s}'"),
            Tok::Int(n) => write!(f, "'{n}'"),
            Tok::Float(x) => write!(f, "'{x}'"),
            Tok::Str(s) => write!(f, "\"{s}\""),
            Tok::Unsupported(s, _) => write!(f, "'{s}'"),
            Tok::Hardware(n) => write!(f, "'${n}'"),
            Tok::Punct(p) => write!(f, "'{p}'"),
            Tok::Eof => write!(f, "end of file"),
        }
    }
}

/// A token and where it starts.
#[derive(Clone, Debug, PartialEq)]
pub struct Token {
    /// The content.
    pub tok: Tok,
    /// The position of its first character.
    pub pos: Pos,
}

/// Operators and punctuation, longest first so that `->` wins over `-`.
const PUNCT: &[&str] = &[
    "->", "==", "!=", "<=", ">=", "&&", "||", "<<", ">>", "**", "+=", "-=", "*=", "/=", "++", ";",
    ",", "(", ")", "[", "]", "{", "}", ":", "=", "+", "-", "*", "/", "^", "%", "!", "~", "&", "|",
    "<", ">", "@", ".", "#",
];

struct Cursor<'a> {
    chars: Vec<char>,
    i: usize,
    line: u32,
    col: u32,
    file: u32,
    _text: &'a str,
}

impl Cursor<'_> {
    fn peek(&self, k: usize) -> Option<char> {
        self.chars.get(self.i + k).copied()
    }
    fn bump(&mut self) -> Option<char> {
        let c = self.chars.get(self.i).copied()?;
        self.i += 1;
        if c == '\n' {
            self.line = self.line.saturating_add(1);
            self.col = 1;
        } else {
            self.col = self.col.saturating_add(1);
        }
        Some(c)
    }
    fn pos(&self) -> Pos {
        Pos {
            file: self.file,
            line: self.line,
            col: self.col,
        }
    }
    fn starts_with(&self, s: &str) -> bool {
        s.chars().enumerate().all(|(k, c)| self.peek(k) == Some(c))
    }
}

fn syntax(pos: Pos, msg: impl Into<String>) -> RawError {
    RawError::new(pos, QasmErrorKind::Syntax, msg)
}

/// Splits `text` (file number `file`) into tokens, ending with [`Tok::Eof`].
pub fn lex(text: &str, file: u32) -> Res<Vec<Token>> {
    let mut c = Cursor {
        chars: text.chars().collect(),
        i: 0,
        line: 1,
        col: 1,
        file,
        _text: text,
    };
    let mut out = Vec::new();
    loop {
        // Whitespace and comments.
        loop {
            match c.peek(0) {
                Some(ch) if ch.is_whitespace() => {
                    c.bump();
                }
                Some('/') if c.peek(1) == Some('/') => {
                    while let Some(ch) = c.peek(0) {
                        if ch == '\n' {
                            break;
                        }
                        c.bump();
                    }
                }
                Some('/') if c.peek(1) == Some('*') => {
                    let start = c.pos();
                    c.bump();
                    c.bump();
                    loop {
                        if c.starts_with("*/") {
                            c.bump();
                            c.bump();
                            break;
                        }
                        if c.bump().is_none() {
                            return Err(syntax(start, "unterminated block comment '/*'")
                                .hint("close the comment with '*/'"));
                        }
                    }
                }
                _ => break,
            }
        }
        let pos = c.pos();
        let Some(ch) = c.peek(0) else {
            out.push(Token { tok: Tok::Eof, pos });
            return Ok(out);
        };
        let tok = if ch.is_alphabetic() || ch == '_' {
            let mut s = String::new();
            while let Some(ch) = c.peek(0) {
                if ch.is_alphanumeric() || ch == '_' {
                    s.push(ch);
                    c.bump();
                } else {
                    break;
                }
            }
            Tok::Ident(s)
        } else if ch.is_ascii_digit()
            || (ch == '.' && c.peek(1).is_some_and(|d| d.is_ascii_digit()))
        {
            number(&mut c, pos)?
        } else if ch == '"' || ch == '\'' {
            c.bump();
            let mut s = String::new();
            loop {
                match c.bump() {
                    Some(q) if q == ch => break,
                    Some('\n') | None => {
                        return Err(syntax(pos, "unterminated string literal")
                            .hint(format!("close the string with {ch} on the same line")))
                    }
                    Some(x) => s.push(x),
                }
            }
            Tok::Str(s)
        } else if ch == '$' {
            c.bump();
            let mut digits = String::new();
            while let Some(d) = c.peek(0).filter(|d| d.is_ascii_digit()) {
                digits.push(d);
                c.bump();
            }
            if digits.is_empty() {
                return Err(syntax(pos, "expected a physical qubit number after '$'")
                    .hint("physical qubits are written $0, $1, …"));
            }
            match digits.parse::<u64>() {
                Ok(n) => Tok::Hardware(n),
                Err(_) => {
                    return Err(syntax(
                        pos,
                        format!("physical qubit ${digits} is too large"),
                    ))
                }
            }
        } else if let Some(p) = PUNCT.iter().find(|p| c.starts_with(p)) {
            for _ in 0..p.chars().count() {
                c.bump();
            }
            Tok::Punct(p)
        } else {
            return Err(syntax(pos, format!("unexpected character {ch:?}")));
        };
        out.push(Token { tok, pos });
    }
}

fn number(c: &mut Cursor<'_>, pos: Pos) -> Res<Tok> {
    // Prefixed integers: 0b, 0o, 0x.
    if c.peek(0) == Some('0') {
        let radix = match c.peek(1) {
            Some('b' | 'B') => Some(2),
            Some('o' | 'O') => Some(8),
            Some('x' | 'X') => Some(16),
            _ => None,
        };
        if let Some(radix) = radix {
            c.bump();
            c.bump();
            let mut digits = String::new();
            while let Some(d) = c.peek(0).filter(|d| d.is_ascii_alphanumeric() || *d == '_') {
                if d != '_' {
                    digits.push(d);
                }
                c.bump();
            }
            return u64::from_str_radix(&digits, radix)
                .map(Tok::Int)
                .map_err(|_| {
                    syntax(
                        pos,
                        format!("malformed or too large integer literal in base {radix}"),
                    )
                });
        }
    }
    let mut s = String::new();
    let mut is_float = false;
    let digits = |c: &mut Cursor<'_>, s: &mut String| {
        while let Some(d) = c.peek(0).filter(|d| d.is_ascii_digit() || *d == '_') {
            if d != '_' {
                s.push(d);
            }
            c.bump();
        }
    };
    digits(c, &mut s);
    if c.peek(0) == Some('.') && c.peek(1) != Some('.') {
        is_float = true;
        s.push('.');
        c.bump();
        digits(c, &mut s);
    }
    if matches!(c.peek(0), Some('e' | 'E')) {
        let sign = matches!(c.peek(1), Some('+' | '-'));
        let d = if sign { c.peek(2) } else { c.peek(1) };
        if d.is_some_and(|d| d.is_ascii_digit()) {
            is_float = true;
            s.push('e');
            c.bump();
            if sign {
                s.push(c.bump().unwrap_or('+'));
            }
            digits(c, &mut s);
        }
    }
    if c.peek(0).is_some_and(|d| d.is_alphabetic() || d == '_') {
        let mut suffix = String::new();
        while let Some(d) = c.peek(0).filter(|d| d.is_alphanumeric() || *d == '_') {
            suffix.push(d);
            c.bump();
        }
        let what = match suffix.as_str() {
            "ns" | "us" | "µs" | "ms" | "s" | "dt" => "duration literals",
            "im" => "imaginary literals",
            _ => "",
        };
        if !what.is_empty() {
            return Ok(Tok::Unsupported(format!("{s}{suffix}"), what));
        }
        return Err(syntax(pos, format!("malformed number '{s}{suffix}'")));
    }
    if is_float {
        s.parse::<f64>()
            .map(Tok::Float)
            .map_err(|_| syntax(pos, format!("malformed number '{s}'")))
    } else {
        s.parse::<u64>().map(Tok::Int).map_err(|_| {
            RawError::new(
                pos,
                QasmErrorKind::Limit,
                format!("integer literal '{s}' is too large"),
            )
            .hint("integers must fit in 64 bits")
        })
    }
}
