// error: 6:1: pow(100000000) would repeat the gate
// kind: Limit
OPENQASM 3.0;
include "stdgates.inc";
qubit q;
pow(100000000) @ x q;
