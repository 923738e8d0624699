//! The recursive-descent parser: tokens to a syntax tree. Non-standard includes are resolved here
//! and their statements spliced in, so that every later error points into the file it comes from.

use super::ast::*;
use super::error::{Pos, QasmErrorKind as K, RawError, Res};
use super::lexer::{lex, Tok, Token};
use super::{EXPR_OPERATORS_MAX, INCLUDE_DEPTH_MAX, NESTING_DEPTH_MAX, SOURCE_BYTES_MAX};

/// Resolves a non-standard include to its text.
pub type Resolver<'a> = Option<&'a dyn Fn(&str) -> Result<String, String>>;

/// Shared state of one parse across the main file and its includes.
pub struct Files<'a> {
    /// The names of the files read, main file first; [`Pos::file`] indexes it.
    pub names: Vec<String>,
    /// Bytes of source read so far, includes counted.
    pub bytes: usize,
    /// The include resolver.
    pub resolver: Resolver<'a>,
}

/// A parsed program.
pub struct Program {
    /// 2 or 3.
    pub version: u8,
    /// The statements, includes spliced.
    pub stmts: Vec<Stmt>,
}

/// Statements that may not appear inside a gate body.
const NOT_IN_GATE: &[&str] = &[
    "measure", "reset", "qreg", "creg", "qubit", "bit", "if", "for", "gate", "const", "input",
    "include", "opaque", "OPENQASM",
];

/// Keywords XDV recognises but does not support, with what to call them in the error.
const UNSUPPORTED: &[(&str, &str)] = &[
    ("def", "subroutine definitions ('def')"),
    ("while", "'while' loops"),
    ("delay", "'delay'"),
    ("box", "'box'"),
    ("extern", "'extern' functions"),
    ("cal", "pulse-level 'cal' blocks"),
    ("defcal", "pulse-level 'defcal' definitions"),
    ("defcalgrammar", "'defcalgrammar'"),
    ("switch", "'switch' statements"),
    ("return", "'return'"),
    ("break", "'break'"),
    ("continue", "'continue'"),
    ("let", "'let' aliases"),
    ("output", "'output' declarations"),
    ("end", "'end'"),
    ("pragma", "'pragma'"),
    ("int", "classical variables that are not 'const' ('int')"),
    ("uint", "classical variables that are not 'const' ('uint')"),
    (
        "float",
        "classical variables that are not 'const' ('float')",
    ),
    (
        "angle",
        "classical variables that are not 'const' ('angle')",
    ),
    ("bool", "classical variables that are not 'const' ('bool')"),
    ("complex", "'complex' variables"),
    ("duration", "'duration' variables"),
    ("stretch", "'stretch' variables"),
    ("array", "'array' variables"),
    ("durationof", "'durationof'"),
];

struct Parser<'f, 'a> {
    toks: Vec<Token>,
    i: usize,
    version: u8,
    files: &'f mut Files<'a>,
    include_depth: usize,
    depth: usize,
    /// How many `expr` calls are open (0 outside expressions).
    expr_open: usize,
    /// Binary operators read in the outermost open expression.
    expr_operators: usize,
}

/// Parses the main file.
pub fn parse_program(text: &str, files: &mut Files<'_>) -> Res<Program> {
    files.bytes = files.bytes.saturating_add(text.len());
    check_size(
        files.bytes,
        Pos {
            file: 0,
            line: 1,
            col: 1,
        },
    )?;
    let toks = lex(text, 0)?;
    let mut p = Parser {
        toks,
        i: 0,
        version: 3,
        files,
        include_depth: 0,
        depth: 0,
        expr_open: 0,
        expr_operators: 0,
    };
    p.header()?;
    let stmts = p.statements_to_eof()?;
    Ok(Program {
        version: p.version,
        stmts,
    })
}

fn check_size(bytes: usize, pos: Pos) -> Res<()> {
    if bytes > SOURCE_BYTES_MAX {
        return Err(RawError::new(
            pos,
            K::Limit,
            format!("source is {bytes} bytes, more than the limit of {SOURCE_BYTES_MAX} bytes"),
        ));
    }
    Ok(())
}

fn syntax(pos: Pos, msg: impl Into<String>) -> RawError {
    RawError::new(pos, K::Syntax, msg)
}

fn unsupported(pos: Pos, what: &str) -> RawError {
    RawError::new(
        pos,
        K::Unsupported,
        format!("{what} are not supported by XDV"),
    )
}

impl Parser<'_, '_> {
    fn peek(&self) -> &Tok {
        self.peek_at(0)
    }
    fn peek_at(&self, k: usize) -> &Tok {
        let last = self.toks.len().saturating_sub(1);
        self.toks
            .get((self.i + k).min(last))
            .map(|t| &t.tok)
            .unwrap_or(&Tok::Eof)
    }
    fn pos(&self) -> Pos {
        let last = self.toks.len().saturating_sub(1);
        self.toks
            .get(self.i.min(last))
            .map(|t| t.pos)
            .unwrap_or_default()
    }
    fn bump(&mut self) -> Tok {
        let t = self.peek().clone();
        if self.i + 1 < self.toks.len() {
            self.i += 1;
        }
        t
    }
    fn is_punct(&self, p: &str) -> bool {
        matches!(self.peek(), Tok::Punct(q) if *q == p)
    }
    fn is_ident(&self, s: &str) -> bool {
        matches!(self.peek(), Tok::Ident(q) if q == s)
    }
    fn eat(&mut self, p: &str) -> bool {
        if self.is_punct(p) {
            self.bump();
            true
        } else {
            false
        }
    }
    fn expect(&mut self, p: &str, context: &str) -> Res<Pos> {
        let pos = self.pos();
        if self.eat(p) {
            Ok(pos)
        } else {
            Err(syntax(
                pos,
                format!("expected '{p}' {context}, found {}", self.peek()),
            ))
        }
    }
    fn ident(&mut self, what: &str) -> Res<(String, Pos)> {
        let pos = self.pos();
        match self.peek().clone() {
            Tok::Ident(s) => {
                self.bump();
                Ok((s, pos))
            }
            t => Err(syntax(pos, format!("expected {what}, found {t}"))),
        }
    }
    fn enter(&mut self) -> Res<()> {
        self.depth += 1;
        if self.depth > NESTING_DEPTH_MAX {
            return Err(RawError::new(
                self.pos(),
                K::Limit,
                format!("nesting deeper than {NESTING_DEPTH_MAX} levels"),
            )
            .hint("simplify the expression or flatten the blocks"));
        }
        Ok(())
    }
    fn leave(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    fn header(&mut self) -> Res<()> {
        if !self.is_ident("OPENQASM") {
            return Ok(());
        }
        self.bump();
        let pos = self.pos();
        let v = match self.bump() {
            Tok::Int(n) => n as f64,
            Tok::Float(x) => x,
            t => {
                return Err(RawError::new(
                    pos,
                    K::Version,
                    format!("expected a version number after 'OPENQASM', found {t}"),
                )
                .hint("write 'OPENQASM 2.0;' or 'OPENQASM 3.0;'"))
            }
        };
        self.version = if (2.0..3.0).contains(&v) {
            2
        } else if (3.0..4.0).contains(&v) {
            3
        } else {
            return Err(RawError::new(
                pos,
                K::Version,
                format!("OpenQASM version {v} is not supported"),
            )
            .hint("XDV reads OpenQASM 2.0 and 3.x"));
        };
        self.expect(";", "after the OPENQASM version")?;
        Ok(())
    }

    fn statements_to_eof(&mut self) -> Res<Vec<Stmt>> {
        let mut out = Vec::new();
        while *self.peek() != Tok::Eof {
            out.extend(self.statement(true)?);
        }
        Ok(out)
    }

    fn block(&mut self, in_gate: bool) -> Res<Vec<Stmt>> {
        let open = self.expect("{", "to open a block")?;
        self.enter()?;
        let mut out = Vec::new();
        loop {
            if self.eat("}") {
                break;
            }
            if *self.peek() == Tok::Eof {
                return Err(
                    syntax(self.pos(), "expected '}', found end of file").hint(format!(
                        "the block opened at {}:{} is not closed",
                        open.line, open.col
                    )),
                );
            }
            if in_gate {
                if let Tok::Ident(s) = self.peek() {
                    if NOT_IN_GATE.contains(&s.as_str()) {
                        return Err(syntax(
                            self.pos(),
                            format!("'{s}' is not allowed inside a gate definition"),
                        )
                        .hint("a gate body contains only gate calls, gphase and barrier"));
                    }
                }
            }
            out.extend(self.statement(false)?);
        }
        self.leave();
        Ok(out)
    }

    /// A block or a single statement (the body of `if`, `else` and `for`).
    fn body(&mut self) -> Res<Vec<Stmt>> {
        if self.is_punct("{") {
            self.block(false)
        } else {
            self.enter()?;
            let s = self.statement(false)?;
            self.leave();
            Ok(s)
        }
    }

    fn end(&mut self) -> Res<()> {
        if self.eat(";") {
            return Ok(());
        }
        Err(self.missing_semicolon())
    }

    /// The error for a statement not ended by `;`, at the token found instead.
    fn missing_semicolon(&self) -> RawError {
        syntax(
            self.pos(),
            format!("expected ';' after the statement, found {}", self.peek()),
        )
        .hint("end the previous statement with ';'")
    }

    fn statement(&mut self, top: bool) -> Res<Vec<Stmt>> {
        let pos = self.pos();
        let one = |kind| Ok(vec![Stmt { kind, pos }]);
        let word = match self.peek().clone() {
            Tok::Ident(s) => s,
            Tok::Punct("{") if self.version == 3 => {
                let b = self.block(false)?;
                return one(StmtKind::Block(b));
            }
            Tok::Punct("#") => return Err(unsupported(pos, "pragmas ('#pragma')")),
            Tok::Punct("@") => return Err(unsupported(pos, "annotations ('@…')")),
            t => return Err(syntax(pos, format!("expected a statement, found {t}"))),
        };
        if let Some((_, what)) = UNSUPPORTED.iter().find(|(k, _)| *k == word) {
            return Err(unsupported(pos, what));
        }
        match word.as_str() {
            "OPENQASM" => Err(syntax(
                pos,
                "the 'OPENQASM' header must be the first statement of the main file",
            )),
            "include" => {
                self.bump();
                if !top {
                    return Err(syntax(pos, "'include' is allowed only at the top level"));
                }
                let spos = self.pos();
                let name = match self.bump() {
                    Tok::Str(s) => s,
                    t => {
                        return Err(syntax(
                            spos,
                            format!("expected a file name in quotes after 'include', found {t}"),
                        ))
                    }
                };
                self.end()?;
                match name.as_str() {
                    "qelib1.inc" => one(StmtKind::IncludeStd(StdInclude::Qelib1)),
                    "stdgates.inc" => one(StmtKind::IncludeStd(StdInclude::Stdgates)),
                    _ => self.include_file(&name, spos),
                }
            }
            "qreg" | "creg" => {
                self.bump();
                let (name, _) = self.ident("a register name")?;
                self.expect("[", &format!("after the register name in '{word}'"))?;
                let size = self.expr()?;
                self.expect("]", "after the register size")?;
                self.end()?;
                if word == "qreg" {
                    one(StmtKind::QReg {
                        name,
                        size: Some(size),
                    })
                } else {
                    one(StmtKind::CReg {
                        name,
                        size: Some(size),
                    })
                }
            }
            "qubit" | "bit" => {
                self.bump();
                let size = if self.eat("[") {
                    let e = self.expr()?;
                    self.expect("]", "after the register size")?;
                    Some(e)
                } else {
                    None
                };
                let (name, _) = self.ident("a register name")?;
                if self.is_punct("=") {
                    return Err(unsupported(self.pos(), "initialised bit declarations"));
                }
                self.end()?;
                if word == "qubit" {
                    one(StmtKind::QReg { name, size })
                } else {
                    one(StmtKind::CReg { name, size })
                }
            }
            "const" => {
                self.bump();
                let ty = self.scalar_type()?;
                let (name, _) = self.ident("a constant name")?;
                self.expect("=", "after the constant's name")?;
                let value = self.expr()?;
                self.end()?;
                one(StmtKind::Const { ty, name, value })
            }
            "input" => {
                self.bump();
                let ty = self.scalar_type()?;
                let (name, _) = self.ident("an input name")?;
                self.end()?;
                one(StmtKind::Input { ty, name })
            }
            "opaque" => Err(RawError::new(
                pos,
                K::Unsupported,
                "'opaque' gates are not supported: XDV needs every gate's definition to simulate it",
            )
            .hint("replace the opaque declaration by a 'gate' definition with a body")),
            "gate" => {
                self.bump();
                if !top {
                    return Err(syntax(pos, "gate definitions are allowed only at the top level"));
                }
                let (name, npos) = self.ident("a gate name")?;
                let mut params = Vec::new();
                if self.eat("(") && !self.eat(")") {
                    loop {
                        params.push(self.ident("a parameter name")?.0);
                        if self.eat(")") {
                            break;
                        }
                        self.expect(",", "or ')' in the parameter list")?;
                    }
                }
                let mut args = Vec::new();
                if !self.is_punct("{") {
                    loop {
                        args.push(self.ident("a qubit argument name")?.0);
                        if !self.eat(",") {
                            break;
                        }
                    }
                }
                let body = self.block(true)?;
                one(StmtKind::Gate(Box::new(GateDecl {
                    name,
                    params,
                    args,
                    body,
                    pos: npos,
                })))
            }
            "measure" => {
                self.bump();
                let qubit = self.operand()?;
                if !self.eat("->") {
                    if self.is_punct(";") {
                        return Err(RawError::new(
                            self.pos(),
                            K::Unsupported,
                            "a measurement without a target bit is not supported",
                        )
                        .hint("write 'c = measure q;' or 'measure q -> c;'"));
                    }
                    return Err(syntax(
                        self.pos(),
                        format!("expected '->' after the measured qubit, found {}", self.peek()),
                    ));
                }
                let bit = self.operand()?;
                self.end()?;
                one(StmtKind::Measure { qubit, bit })
            }
            "reset" => {
                self.bump();
                let args = self.operands()?;
                if args.is_empty() {
                    return Err(syntax(self.pos(), "expected a qubit after 'reset'"));
                }
                self.end()?;
                one(StmtKind::Reset(args))
            }
            "barrier" => {
                self.bump();
                let args = self.operands()?;
                self.end()?;
                one(StmtKind::Barrier(args))
            }
            "if" => {
                self.bump();
                self.expect("(", "after 'if'")?;
                let cond = self.expr()?;
                self.expect(")", "after the condition")?;
                let then_body = self.body()?;
                let else_body = if self.is_ident("else") {
                    self.bump();
                    self.body()?
                } else {
                    Vec::new()
                };
                one(StmtKind::If {
                    cond,
                    then_body,
                    else_body,
                })
            }
            "for" => {
                self.bump();
                let ty = if matches!(self.peek_at(1), Tok::Ident(s) if s == "in") {
                    None
                } else {
                    Some(self.scalar_type()?)
                };
                let (var, _) = self.ident("a loop variable")?;
                if !self.is_ident("in") {
                    return Err(syntax(
                        self.pos(),
                        format!("expected 'in' after the loop variable, found {}", self.peek()),
                    ));
                }
                self.bump();
                let set = if self.eat("[") {
                    let r = self.range_after_bracket()?;
                    LoopSet::Range(r)
                } else if self.is_punct("{") {
                    LoopSet::Set(self.set()?)
                } else {
                    return Err(syntax(
                        self.pos(),
                        format!("expected a range '[a:b]' or a set '{{a, b}}' to loop over, found {}", self.peek()),
                    ));
                };
                let body = self.body()?;
                one(StmtKind::For {
                    ty,
                    var,
                    set,
                    body,
                })
            }
            "else" => Err(syntax(pos, "'else' without a matching 'if'")),
            _ => {
                // An assignment (only `c = measure q;` is supported) or a gate call.
                if matches!(self.peek_at(1), Tok::Punct("=" | "[" | "+=" | "-=" | "*=" | "/=" | "++")) {
                    let bit = self.operand()?;
                    let apos = self.pos();
                    if !self.eat("=") {
                        if matches!(self.peek(), Tok::Punct("+=" | "-=" | "*=" | "/=" | "++")) {
                            return Err(unsupported(apos, "classical assignments"));
                        }
                        return Err(syntax(
                            apos,
                            format!("expected '=' or a gate call, found {}", self.peek()),
                        ));
                    }
                    if !self.is_ident("measure") {
                        return Err(RawError::new(
                            self.pos(),
                            K::Unsupported,
                            "classical assignments other than 'bit = measure qubit' are not supported",
                        ));
                    }
                    self.bump();
                    let qubit = self.operand()?;
                    self.end()?;
                    return one(StmtKind::Measure { qubit, bit });
                }
                let call = self.gate_call()?;
                one(StmtKind::Call(call))
            }
        }
    }

    fn include_file(&mut self, name: &str, pos: Pos) -> Res<Vec<Stmt>> {
        let Some(resolver) = self.files.resolver else {
            return Err(RawError::new(
                pos,
                K::Include,
                format!("cannot include \"{name}\": only the built-in \"qelib1.inc\" and \"stdgates.inc\" may be included here"),
            )
            .hint("inline the file's gate definitions, or allow includes in the caller"));
        };
        if self.include_depth >= INCLUDE_DEPTH_MAX {
            return Err(RawError::new(
                pos,
                K::Limit,
                format!("includes nested deeper than {INCLUDE_DEPTH_MAX} files (\"{name}\")"),
            )
            .hint("an included file may be including itself"));
        }
        let text = resolver(name).map_err(|e| {
            RawError::new(pos, K::Include, format!("cannot include \"{name}\": {e}"))
        })?;
        self.files.bytes = self.files.bytes.saturating_add(text.len());
        check_size(self.files.bytes, pos)?;
        let file = self.files.names.len() as u32;
        self.files.names.push(name.to_string());
        let toks = lex(&text, file)?;
        let mut sub = Parser {
            toks,
            i: 0,
            version: self.version,
            files: &mut *self.files,
            include_depth: self.include_depth + 1,
            depth: 0,
            expr_open: 0,
            expr_operators: 0,
        };
        if sub.is_ident("OPENQASM") {
            return Err(syntax(
                sub.pos(),
                "an included file cannot have an 'OPENQASM' header",
            ));
        }
        sub.statements_to_eof()
    }

    fn scalar_type(&mut self) -> Res<ScalarType> {
        let pos = self.pos();
        let (name, _) = self.ident("a type (int, uint, float, angle, bool)")?;
        let ty = match name.as_str() {
            "int" => ScalarType::Int,
            "uint" => ScalarType::Uint,
            "float" => ScalarType::Float,
            "angle" => ScalarType::Angle,
            "bool" => ScalarType::Bool,
            "bit" | "complex" | "duration" | "stretch" | "array" | "qubit" => {
                return Err(unsupported(pos, &format!("'{name}' constants and inputs")))
            }
            _ => {
                return Err(syntax(
                    pos,
                    format!("expected a type (int, uint, float, angle, bool), found '{name}'"),
                ))
            }
        };
        if self.eat("[") {
            self.expr()?;
            self.expect("]", "after the type's width")?;
        }
        Ok(ty)
    }

    fn gate_call(&mut self) -> Res<GateCall> {
        let pos = self.pos();
        let mut modifiers = Vec::new();
        while self.version == 3 {
            let mpos = self.pos();
            let Tok::Ident(w) = self.peek().clone() else {
                break;
            };
            if !matches!(w.as_str(), "ctrl" | "negctrl" | "inv" | "pow")
                || !matches!(self.peek_at(1), Tok::Punct("@" | "("))
            {
                break;
            }
            self.bump();
            let m = match w.as_str() {
                "inv" => Modifier::Inv,
                "pow" => {
                    self.expect("(", "after 'pow'")?;
                    let e = self.expr()?;
                    self.expect(")", "after the exponent")?;
                    Modifier::Pow(e, mpos)
                }
                _ => {
                    let count = if self.eat("(") {
                        let e = self.expr()?;
                        self.expect(")", "after the number of controls")?;
                        Some(e)
                    } else {
                        None
                    };
                    Modifier::Ctrl {
                        count,
                        negative: w == "negctrl",
                        pos: mpos,
                    }
                }
            };
            self.expect("@", &format!("after the '{w}' modifier"))?;
            modifiers.push(m);
            if modifiers.len() > NESTING_DEPTH_MAX {
                return Err(RawError::new(
                    mpos,
                    K::Limit,
                    format!("more than {NESTING_DEPTH_MAX} modifiers on one gate call"),
                ));
            }
        }
        let (name, name_pos) = self.ident("a gate name")?;
        let mut params = Vec::new();
        if self.eat("(") && !self.eat(")") {
            loop {
                params.push(self.expr()?);
                if self.eat(")") {
                    break;
                }
                self.expect(",", "or ')' in the gate's parameter list")?;
            }
        }
        let args = self.operands()?;
        self.end()?;
        Ok(GateCall {
            modifiers,
            name,
            name_pos,
            params,
            args,
            pos,
        })
    }

    /// A possibly empty comma-separated operand list, up to (not including) `;`.
    fn operands(&mut self) -> Res<Vec<Operand>> {
        let mut out = Vec::new();
        if self.is_punct(";") {
            return Ok(out);
        }
        loop {
            out.push(self.operand()?);
            if !self.eat(",") {
                break;
            }
        }
        Ok(out)
    }

    fn operand(&mut self) -> Res<Operand> {
        let pos = self.pos();
        match self.peek().clone() {
            Tok::Hardware(index) => {
                self.bump();
                Ok(Operand::Hardware { index, pos })
            }
            Tok::Ident(name) => {
                self.bump();
                let index = if self.eat("[") {
                    let sel = if self.is_punct("{") {
                        IndexSel::Set(self.set()?)
                    } else {
                        let first = self.expr()?;
                        if self.eat(":") {
                            IndexSel::Range(self.range_rest(first)?)
                        } else {
                            self.expect("]", "after the index")?;
                            IndexSel::One(first)
                        }
                    };
                    if let IndexSel::Set(_) = sel {
                        self.expect("]", "after the index set")?;
                    }
                    Some(Box::new(sel))
                } else {
                    None
                };
                Ok(Operand::Named { name, index, pos })
            }
            t => Err(syntax(
                pos,
                format!("expected a qubit or bit operand, found {t}"),
            )),
        }
    }

    /// `a:b]` or `a:s:b]` after the opening `[`.
    fn range_after_bracket(&mut self) -> Res<RangeExpr> {
        let first = self.expr()?;
        self.expect(":", "in the range")?;
        self.range_rest(first)
    }

    /// The rest of a range after `start:`, through the closing `]`.
    fn range_rest(&mut self, start: Expr) -> Res<RangeExpr> {
        let second = self.expr()?;
        let r = if self.eat(":") {
            let end = self.expr()?;
            RangeExpr {
                start,
                step: Some(second),
                end,
            }
        } else {
            RangeExpr {
                start,
                step: None,
                end: second,
            }
        };
        self.expect("]", "to close the range")?;
        Ok(r)
    }

    fn set(&mut self) -> Res<Vec<Expr>> {
        self.expect("{", "to open a set")?;
        let mut out = Vec::new();
        if self.eat("}") {
            return Ok(out);
        }
        loop {
            out.push(self.expr()?);
            if self.eat("}") {
                return Ok(out);
            }
            self.expect(",", "or '}' in the set")?;
        }
    }

    // ---- expressions ----

    /// An expression.
    pub fn expr(&mut self) -> Res<Expr> {
        if self.expr_open == 0 {
            self.expr_operators = 0;
        }
        self.enter()?;
        self.expr_open += 1;
        let e = self.binary(0);
        self.expr_open -= 1;
        self.leave();
        e
    }

    fn binop_at(&self, level: usize) -> Option<BinOp> {
        let Tok::Punct(p) = self.peek() else {
            return None;
        };
        let v3 = self.version == 3;
        let op = match (level, *p) {
            (0, "||") => BinOp::Or,
            (1, "&&") => BinOp::And,
            (2, "|") => BinOp::BitOr,
            (3, "^") if v3 => BinOp::BitXor,
            (4, "&") => BinOp::BitAnd,
            (5, "==") => BinOp::Eq,
            (5, "!=") => BinOp::Ne,
            (6, "<") => BinOp::Lt,
            (6, "<=") => BinOp::Le,
            (6, ">") => BinOp::Gt,
            (6, ">=") => BinOp::Ge,
            (7, "<<") => BinOp::Shl,
            (7, ">>") => BinOp::Shr,
            (8, "+") => BinOp::Add,
            (8, "-") => BinOp::Sub,
            (9, "*") => BinOp::Mul,
            (9, "/") => BinOp::Div,
            (9, "%") => BinOp::Rem,
            _ => return None,
        };
        Some(op)
    }

    fn binary(&mut self, level: usize) -> Res<Expr> {
        if level > 9 {
            return self.unary();
        }
        let mut lhs = self.binary(level + 1)?;
        while let Some(op) = self.binop_at(level) {
            self.expr_operators += 1;
            if self.expr_operators > EXPR_OPERATORS_MAX {
                return Err(RawError::new(
                    self.pos(),
                    K::Limit,
                    format!("more than {EXPR_OPERATORS_MAX} operators in one expression"),
                )
                .hint("split it into smaller expressions (in OpenQASM 3, 'const' declarations)"));
            }
            self.bump();
            self.enter()?;
            let rhs = self.binary(level + 1);
            self.leave();
            lhs = Expr {
                pos: lhs.pos,
                kind: ExprKind::Binary(op, Box::new(lhs), Box::new(rhs?)),
            };
        }
        Ok(lhs)
    }

    fn unary(&mut self) -> Res<Expr> {
        let pos = self.pos();
        let op = match self.peek() {
            Tok::Punct("-") => Some(UnOp::Neg),
            Tok::Punct("+") => Some(UnOp::Plus),
            Tok::Punct("!") => Some(UnOp::Not),
            Tok::Punct("~") => Some(UnOp::BitNot),
            _ => None,
        };
        if let Some(op) = op {
            self.bump();
            self.enter()?;
            let e = self.unary();
            self.leave();
            return Ok(Expr {
                kind: ExprKind::Unary(op, Box::new(e?)),
                pos,
            });
        }
        let base = self.primary()?;
        let is_pow = match self.peek() {
            Tok::Punct("**") => true,
            Tok::Punct("^") => self.version == 2,
            _ => false,
        };
        if is_pow {
            self.bump();
            self.enter()?;
            let e = self.unary();
            self.leave();
            return Ok(Expr {
                kind: ExprKind::Binary(BinOp::Pow, Box::new(base), Box::new(e?)),
                pos,
            });
        }
        Ok(base)
    }

    fn primary(&mut self) -> Res<Expr> {
        let pos = self.pos();
        let kind = match self.peek().clone() {
            Tok::Int(n) => {
                self.bump();
                ExprKind::Int(n)
            }
            Tok::Float(x) => {
                self.bump();
                ExprKind::Float(x)
            }
            Tok::Punct("(") => {
                self.bump();
                let e = self.expr()?;
                self.expect(")", "to close the parenthesis")?;
                return Ok(Expr { kind: e.kind, pos });
            }
            Tok::Ident(name) => {
                self.bump();
                match name.as_str() {
                    "true" => ExprKind::Bool(true),
                    "false" => ExprKind::Bool(false),
                    _ if self.is_punct("(") => {
                        self.bump();
                        let mut args = Vec::new();
                        if !self.eat(")") {
                            loop {
                                args.push(self.expr()?);
                                if self.eat(")") {
                                    break;
                                }
                                self.expect(",", "or ')' in the function's arguments")?;
                            }
                        }
                        ExprKind::Call(name, args)
                    }
                    _ if self.is_punct("[") => {
                        self.bump();
                        let i = self.expr()?;
                        self.expect("]", "after the index")?;
                        ExprKind::Index(name, Box::new(i))
                    }
                    _ => ExprKind::Name(name),
                }
            }
            Tok::Unsupported(text, what) => {
                return Err(unsupported(pos, &format!("{what} ('{text}')")))
            }
            t => return Err(syntax(pos, format!("expected an expression, found {t}"))),
        };
        Ok(Expr { kind, pos })
    }
}
