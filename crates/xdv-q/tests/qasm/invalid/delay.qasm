// error: 5:3: 'delay'
// kind: Unsupported
OPENQASM 3.0;
qubit q;
  delay[100ns] q;
