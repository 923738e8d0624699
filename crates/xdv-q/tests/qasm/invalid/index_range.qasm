// error: 6:5: index 3 is out of range for register 'q' of size 3
// kind: Range
OPENQASM 3.0;
include "stdgates.inc";
qubit[3] q;
x q[3];
