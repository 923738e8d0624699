// error: 5:1: 'q' is already defined as a quantum register
// kind: Redefinition
OPENQASM 2.0;
qreg q[2];
qreg q[3];
