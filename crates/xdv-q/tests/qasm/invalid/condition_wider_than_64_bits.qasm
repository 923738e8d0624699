// error: 7:5: a condition reads 70 bits
// kind: Limit
OPENQASM 2.0;
include "qelib1.inc";
qreg q[1];
creg c[70];
if (c == 1) x q[0];
