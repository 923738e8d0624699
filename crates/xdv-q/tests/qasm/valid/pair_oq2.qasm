// expect: qubits=3 clbits=2 gates=10 measures=2 barriers=1 resets=1 ifs=1
OPENQASM 2.0;
include "qelib1.inc";
gate ent(theta) a, b { h a; crx(theta) a, b; }
qreg q[3];
creg c[2];
ent(pi/3) q[0], q[1];
ent(-0.25) q[1], q[2];
u3(0.1, 0.2, 0.3) q[2];
barrier q;
cx q[0], q[2];
measure q[0] -> c[0];
measure q[2] -> c[1];
reset q[0];
if (c == 2) u1(pi/8) q[1];
x q;
