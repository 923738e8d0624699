// error: 5:3: physical qubit $5000000 is beyond the limit
// kind: Limit
OPENQASM 3.0;
include "stdgates.inc";
x $5000000;
