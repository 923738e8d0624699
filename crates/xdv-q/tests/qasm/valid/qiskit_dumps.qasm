// expect: qubits=3 clbits=3 gates=6 measures=3
// params: theta=0.7 phi=-1.25
OPENQASM 3.0;
include "stdgates.inc";
input float[64] theta;
input angle phi;
gate my_gate(_gate_p_0, _gate_p_1) _gate_q_0, _gate_q_1 {
  rx(_gate_p_0) _gate_q_0;
  cx _gate_q_0, _gate_q_1;
  rz(_gate_p_1) _gate_q_1;
}
bit[3] c;
qubit[3] q;
h q[0];
my_gate(theta, phi) q[0], q[1];
ry(theta / 2) q[2];
cx q[1], q[2];
barrier q[0], q[1], q[2];
c[0] = measure q[0];
c[1] = measure q[1];
c[2] = measure q[2];
