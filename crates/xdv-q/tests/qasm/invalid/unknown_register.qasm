// error: 6:3: unknown quantum register 'r'
// kind: UnknownName
OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
h r[0];
