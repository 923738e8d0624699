OPENQASM 2.0;
include "qelib1.inc";
gate rzx(param0) q0,q1 { h q1; cx q0,q1; rz(param0) q1; cx q0,q1; h q1; }
gate cs q0,q1 { t q0; cx q0,q1; tdg q1; cx q0,q1; t q1; }
gate xx_plus_yy(param0,param1) q0,q1 { rz(param1) q0; sdg q1; sx q1; s q1; s q0; cx q1,q0; ry((-0.5)*param0) q1; ry((-0.5)*param0) q0; cx q1,q0; sdg q0; sdg q1; sxdg q1; s q1; rz(-param1) q0; }
gate ecr q0,q1 { s q0; sx q1; cx q0,q1; x q0; }
gate dcx q0,q1 { cx q0,q1; cx q1,q0; }
qreg q[5];
id q[3];
rzx(3.415696558991173) q[2],q[0];
cs q[1],q[4];
xx_plus_yy(3.402101183476623,1.8831453470115125) q[1],q[0];
sx q[3];
rxx(2.6558221377616955) q[2],q[4];
cy q[3],q[1];
cu3(4.3073873243438365,4.086956167564611,4.325638382299154) q[4],q[2];
u2(2.4436653767928673,0.8488363754081273) q[0];
cp(2.0223650288392) q[2],q[1];
ecr q[3],q[0];
p(3.7340972178071192) q[4];
cs q[0],q[3];
sxdg q[4];
cu1(4.945484520918815) q[1],q[2];
x q[1];
u2(1.4491677387649573,0.32685947450826425) q[4];
rx(2.5418741759590953) q[0];
ch q[3],q[2];
csx q[0],q[4];
u1(2.2940548446177735) q[1];
cy q[3],q[2];
dcx q[3],q[2];
swap q[4],q[1];
y q[0];
