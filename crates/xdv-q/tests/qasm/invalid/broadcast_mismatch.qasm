// error: 7:7: registers of different sizes
// kind: Arity
OPENQASM 2.0;
include "qelib1.inc";
qreg a[2];
qreg b[3];
cx a, b;
