// expect: qubits=4 clbits=2 gates=3 measures=2
OPENQASM 3.0;
include "stdgates.inc";
bit[2] c;
h $0;
cx $0, $3;
x $1;
c[0] = measure $0;
c[1] = measure $3;
