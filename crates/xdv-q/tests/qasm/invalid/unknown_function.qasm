// error: 6:4: unknown function 'foo'
// kind: UnknownName
OPENQASM 2.0;
include "qelib1.inc";
qreg q[1];
rx(foo(1)) q[0];
