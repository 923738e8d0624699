// expect: qubits=5 clbits=5 gates=33 measures=5 barriers=2 resets=1 ifs=1
// A QASMBench-style OpenQASM 2.0 file exercising many qelib1.inc gates.
OPENQASM 2.0;
include "qelib1.inc";
gate majority a,b,c
{
  cx c,b;
  cx c,a;
  ccx a,b,c;
}
gate rot(theta, phi) a
{
  u3(theta, phi, -phi) a;
  u1(theta/2) a;
}
qreg q[5];
creg c[5];
u3(0.1,0.2,0.3) q[0];
u2(pi/4,-pi/8) q[1];
u1(1.5e-1) q[2];
rx(-pi/3) q[3];
ry(2*pi/5) q[4];
rz(pi^2/10) q[0];
s q[1]; sdg q[2]; t q[3]; tdg q[4];
sx q[0]; sxdg q[1];
x q[2]; y q[3]; z q[4];
id q[0];
barrier q;
cz q[0],q[1];
cy q[1],q[2];
ch q[2],q[3];
swap q[3],q[4];
crz(sin(pi/6)) q[0],q[2];
cu1(sqrt(2)) q[1],q[3];
cu3(0.3,-0.2,ln(2)) q[2],q[4];
rxx(0.25) q[0],q[4];
rzz(exp(-1)) q[1],q[2];
cswap q[0],q[1],q[2];
majority q[0],q[1],q[2];
rot(0.4, cos(0.5)) q[3];
barrier q[0],q[1];
c3x q[0],q[1],q[2],q[3];
measure q -> c;
reset q[4];
if(c==3) x q[4];
