// error: 6:1: pow(0.5) with a non-integer exponent on 'swap'
// kind: Unsupported
OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q;
pow(0.5) @ swap q[0], q[1];
