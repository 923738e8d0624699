// error: 4:12: unterminated block comment
// kind: Syntax
OPENQASM 2.0;
qreg q[1]; /* never
closed
