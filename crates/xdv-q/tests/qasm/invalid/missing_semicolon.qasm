// error: 7:1: expected ';' after the statement, found 'h'
// kind: Syntax
OPENQASM 2.0;
include "qelib1.inc";
qreg q[2];
x q[0]
h q[1];
