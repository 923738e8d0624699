// expect: qubits=2 clbits=2 gates=8 measures=2 ifs=5
OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q;
bit[2] c;
h q[0];
c[0] = measure q[0];
c[1] = measure q[1];
if (c == 1) {
  x q[1];
} else {
  z q[1];
  y q[0];
}
if (c[0]) x q[0];
if (!c[0]) { h q[1]; }
if (c[1] == 1) { s q[0]; } else if (c != 2) { t q[0]; }
