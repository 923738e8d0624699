// error: 6:1: gate 'cx' takes 2 qubits, 1 given
// kind: Arity
OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
cx q[0];
