OPENQASM 2.0;
include "qelib1.inc";
gate ccz q0,q1,q2 { h q2; ccx q0,q1,q2; h q2; }
gate xx_plus_yy(param0,param1) q0,q1 { rz(param1) q0; sdg q1; sx q1; s q1; s q0; cx q1,q0; ry((-0.5)*param0) q1; ry((-0.5)*param0) q0; cx q1,q0; sdg q0; sdg q1; sxdg q1; s q1; rz(-param1) q0; }
gate rzx(param0) q0,q1 { h q1; cx q0,q1; rz(param0) q1; cx q0,q1; h q1; }
qreg q[5];
cswap q[2],q[4],q[3];
crx(4.615484364724211) q[1],q[0];
ccx q[2],q[3],q[1];
p(4.374454120901312) q[4];
rccx q[2],q[4],q[3];
cry(4.85864274540521) q[1],q[0];
cp(1.8734139503619862) q[2],q[1];
ccz q[3],q[0],q[4];
xx_plus_yy(2.692802975343379,4.767087006005499) q[0],q[2];
rccx q[3],q[4],q[1];
rccx q[3],q[2],q[0];
cswap q[3],q[2],q[4];
rzx(3.5624270502584503) q[0],q[1];
cz q[1],q[2];
rccx q[4],q[0],q[3];
