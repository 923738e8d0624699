// error: 8:1: expected '}', found end of file
// kind: Syntax
OPENQASM 3.0;
include "stdgates.inc";
qubit q;
if (true) {
  x q;
