// error: 7:10: value 8 does not fit in 3 bits
// kind: Type
OPENQASM 2.0;
include "qelib1.inc";
qreg q[1];
creg c[3];
if (c == 8) x q[0];
