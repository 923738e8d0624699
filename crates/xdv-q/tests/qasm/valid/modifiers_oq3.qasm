// expect: qubits=3 clbits=0 gates=10
OPENQASM 3.0;
include "stdgates.inc";
gate rot(a) t { rx(a) t; rz(a / 2) t; }
qubit[3] q;
ctrl @ x q[0], q[1];
negctrl @ rot(0.3) q[1], q[2];
ctrl(2) @ h q[0], q[1], q[2];
inv @ rot(0.5) q[0];
pow(2) @ t q[1];
pow(0.5) @ x q[2];
ctrl @ inv @ s q[2], q[0];
