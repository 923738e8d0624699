// error: 5:10: a measurement without a target bit
// kind: Unsupported
OPENQASM 3.0;
qubit q;
measure q;
