// error: 5:6: expected an expression, found ','
// kind: Syntax
OPENQASM 2.0;
qreg q[1];
U(0, , 0) q[0];
