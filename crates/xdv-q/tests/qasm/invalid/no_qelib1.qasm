// error: 5:1: unknown gate 'h'
// kind: UnknownName
OPENQASM 2.0;
qreg q[1];
h q[0];
