// error: 6:4: unknown name 'theta'
// kind: UnknownName
OPENQASM 3.0;
include "stdgates.inc";
qubit q;
rx(theta) q;
