OPENQASM 2.0;
include "qelib1.inc";
gate ryy(param0) q0,q1 { sxdg q0; sxdg q1; cx q0,q1; rz(param0) q1; cx q0,q1; sx q0; sx q1; }
gate rzx(param0) q0,q1 { h q1; cx q0,q1; rz(param0) q1; cx q0,q1; h q1; }
gate iswap q0,q1 { s q0; s q1; h q0; cx q0,q1; cx q1,q0; h q1; }
gate ecr q0,q1 { s q0; sx q1; cx q0,q1; x q0; }
gate dcx q0,q1 { cx q0,q1; cx q1,q0; }
gate mcx q0,q1,q2,q3 { h q3; p(pi/8) q0; p(pi/8) q1; p(pi/8) q2; p(pi/8) q3; cx q0,q1; p(-pi/8) q1; cx q0,q1; cx q1,q2; p(-pi/8) q2; cx q0,q2; p(pi/8) q2; cx q1,q2; p(-pi/8) q2; cx q0,q2; cx q2,q3; p(-pi/8) q3; cx q1,q3; p(pi/8) q3; cx q2,q3; p(-pi/8) q3; cx q0,q3; p(pi/8) q3; cx q2,q3; p(-pi/8) q3; cx q1,q3; p(pi/8) q3; cx q2,q3; p(-pi/8) q3; cx q0,q3; h q3; }
qreg q[4];
h q[0];
x q[1];
y q[2];
z q[3];
s q[0];
sdg q[1];
t q[2];
tdg q[3];
sx q[0];
sxdg q[1];
rx(0.3) q[0];
ry(-1.1) q[1];
rz(2.2) q[2];
p(0.7) q[3];
u(0.1,0.2,0.3) q[0];
cx q[0],q[1];
cy q[1],q[2];
cz q[2],q[3];
ch q[3],q[0];
swap q[0],q[2];
crx(0.4) q[1],q[3];
cry(0.5) q[2],q[0];
crz(0.6) q[3],q[1];
cp(0.8) q[0],q[3];
cu(0.9,1.0,1.1,1.2) q[1],q[2];
csx q[2],q[1];
rxx(0.35) q[0],q[1];
rzz(0.45) q[2],q[3];
ryy(0.55) q[1],q[3];
rzx(0.65) q[0],q[2];
ccx q[0],q[1],q[2];
cswap q[3],q[0],q[1];
iswap q[1],q[2];
ecr q[0],q[3];
dcx q[2],q[0];
mcx q[0],q[1],q[2],q[3];
