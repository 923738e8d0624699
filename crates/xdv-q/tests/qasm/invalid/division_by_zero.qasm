// error: 6:4: division by zero
// kind: Arithmetic
OPENQASM 2.0;
include "qelib1.inc";
qreg q[1];
rx(pi/0) q[0];
