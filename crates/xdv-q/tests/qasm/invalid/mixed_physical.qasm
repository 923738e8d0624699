// error: 6:3: physical qubit $0 used in a program that declares
// kind: Type
OPENQASM 3.0;
include "stdgates.inc";
qubit[2] q;
h $0;
