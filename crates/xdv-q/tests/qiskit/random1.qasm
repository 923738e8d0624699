OPENQASM 2.0;
include "qelib1.inc";
gate r(param0,param1) q0 { u(param0,-pi/2 + param1,pi/2 - param1) q0; }
gate xx_minus_yy(param0,param1) q0,q1 { rz(-param1) q1; sdg q0; sx q0; s q0; s q1; cx q0,q1; ry(0.5*param0) q0; ry((-0.5)*param0) q1; cx q0,q1; sdg q1; sdg q0; sxdg q0; s q0; rz(param1) q1; }
gate ccz q0,q1,q2 { h q2; ccx q0,q1,q2; h q2; }
qreg q[5];
ccx q[3],q[0],q[4];
ch q[1],q[2];
ccx q[1],q[0],q[4];
sdg q[3];
ccx q[3],q[2],q[1];
cx q[4],q[3];
rccx q[1],q[0],q[2];
rccx q[2],q[4],q[0];
r(4.029583729416905,5.357250123160488) q[3];
cswap q[4],q[2],q[3];
rccx q[2],q[0],q[4];
xx_minus_yy(5.507445005402515,2.9650962149903926) q[1],q[3];
ccz q[4],q[3],q[0];
u2(6.054922669216448,0.9457754028680412) q[2];
