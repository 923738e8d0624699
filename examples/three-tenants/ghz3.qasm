OPENQASM 3.0;
include "stdgates.inc";
// A 3-qubit GHZ state: counts 000 and 111 only.
qubit[3] q;
bit[3] c;
h q[0];
cx q[0], q[1];
cx q[1], q[2];
c = measure q;
