// error: 5:6: gate 'h' is already defined by qelib1.inc
// kind: Redefinition
OPENQASM 2.0;
include "qelib1.inc";
gate h a { U(pi/2, 0, pi) a; }
