// error: 4:9: cannot include "other.inc"
// kind: Include
OPENQASM 2.0;
include "other.inc";
