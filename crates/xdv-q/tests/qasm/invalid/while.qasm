// error: 5:1: 'while' loops
// kind: Unsupported
OPENQASM 3.0;
qubit q;
while (true) { }
