// error: 6:10: qubit q[1] is used twice
// kind: DuplicateQubit
OPENQASM 3.0;
include "stdgates.inc";
qubit[3] q;
cx q[1], q[1];
