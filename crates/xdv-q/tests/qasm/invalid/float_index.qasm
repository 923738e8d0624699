// error: 6:5: an index must be an integer, found a float
// kind: Type
OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q;
x q[0.5];
