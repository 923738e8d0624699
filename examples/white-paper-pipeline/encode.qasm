OPENQASM 3.0;
include "stdgates.inc";
// Amplitude encoding of a normalised 4-vector (a, b, c, d) on two qubits (index = 2·q1 + q0):
// ry(theta0) on q1 splits the weight between (a, b) and (c, d); rotations of q0 controlled by q1
// (negated for q1 = 0) set each half. The angles come from the classical step's `params`.
input float theta0;
input float theta1;
input float theta2;
qubit[2] q;
bit[2] c;
ry(theta0) q[1];
negctrl @ ry(theta1) q[1], q[0];
ctrl @ ry(theta2) q[1], q[0];
c = measure q;
