// expect: qubits=3 clbits=0 gates=8
OPENQASM 3.0;
include "stdgates.inc";
const int n = 3;
const uint m = 2;
const float half = pi / 2;
const angle quarter = half / 2;
const bool flag = n > m;
qubit[n] q;
for i in {0, 2} {
  rx(half * i) q[i];
}
for uint k in [0:2:2] {
  ry(quarter) q[k];
}
if (flag) { h q[1]; } else { x q[1]; }
if (n == 4) { x q[0]; }
for int k in [2:-1:0] {
  rz(k * quarter) q[k];
}
