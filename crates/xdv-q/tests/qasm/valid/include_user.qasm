// expect: qubits=2 clbits=0 gates=3
OPENQASM 2.0;
include "qelib1.inc";
include "mygates.inc";
qreg q[2];
bell q[0], q[1];
flip q[1];
