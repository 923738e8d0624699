// error: 6:3: 'opaque' gates are not supported
// kind: Unsupported
OPENQASM 2.0;
include "qelib1.inc";
qreg q[1];
  opaque mygate q;
