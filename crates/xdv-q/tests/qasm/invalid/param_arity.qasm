// error: 6:1: gate 'rx' takes 1 parameter, 0 given
// kind: Arity
OPENQASM 3;
include "stdgates.inc";
qubit q;
rx q;
