OPENQASM 2.0;
include "qelib1.inc";
gate ccz q0,q1,q2 { h q2; ccx q0,q1,q2; h q2; }
gate dcx q0,q1 { cx q0,q1; cx q1,q0; }
gate xx_plus_yy(param0,param1) q0,q1 { rz(param1) q0; sdg q1; sx q1; s q1; s q0; cx q1,q0; ry((-0.5)*param0) q1; ry((-0.5)*param0) q0; cx q1,q0; sdg q0; sdg q1; sxdg q1; s q1; rz(-param1) q0; }
qreg q[5];
sxdg q[2];
x q[1];
u1(0.30635373165265484) q[4];
u2(6.278008685461637,4.098956016787445) q[3];
sx q[0];
ccz q[3],q[4],q[0];
u1(3.4909133585623207) q[2];
ccx q[1],q[4],q[2];
dcx q[3],q[0];
id q[1];
dcx q[2],q[4];
u3(5.065600322332046,1.9883271060062027,0.9364370382608953) q[3];
ry(4.388880274456779) q[0];
s q[2];
tdg q[3];
cswap q[4],q[1],q[0];
rccx q[1],q[0],q[2];
rz(2.5096629348683193) q[4];
s q[0];
ccx q[4],q[2],q[1];
ccx q[2],q[0],q[3];
xx_plus_yy(2.453325710231145,5.013566469225512) q[4],q[1];
