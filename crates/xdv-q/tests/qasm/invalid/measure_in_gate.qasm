// error: 7:3: 'measure' is not allowed inside a gate definition
// kind: Syntax
OPENQASM 2.0;
include "qelib1.inc";
gate g a {
  x a;
  measure a -> c[0];
}
