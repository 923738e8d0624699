// error: 5:1: input 'theta' has no value
// kind: Param
OPENQASM 3.0;
include "stdgates.inc";
input float theta;
