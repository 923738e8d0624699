// error: 5:1: unknown gate 'gphase'
// kind: UnknownName
OPENQASM 2.0;
qreg q[1];
gphase(pi) q[0];
