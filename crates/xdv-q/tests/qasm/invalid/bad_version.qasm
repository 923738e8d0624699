// error: 3:10: OpenQASM version 4 is not supported
// kind: Version
OPENQASM 4.0;
