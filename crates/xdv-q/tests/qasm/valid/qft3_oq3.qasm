// expect: qubits=3 clbits=0 gates=9
// QFT of the basis state |5> (x on qubits 0 and 2), textbook circuit with final swaps.
OPENQASM 3.0;
include "stdgates.inc";
const int n = 3;
qubit[n] q;
x q[0];
x q[2];
for int j in [n - 1:-1:0] {
  h q[j];
  for int k in [0:j - 1] {
    cp(pi / 2 ** (j - k)) q[k], q[j];
  }
}
for int i in [0:n / 2 - 1] {
  swap q[i], q[n - 1 - i];
}
