OPENQASM 3.0;
include "stdgates.inc";
// A GHZ state with its first qubit tilted by ry(π/3): P(000) = 3/4, P(111) = 1/4.
qubit[3] q;
bit[3] c;
ry(pi/3) q[0];
cx q[0], q[1];
cx q[1], q[2];
c = measure q;
