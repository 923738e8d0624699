// error: 7:3: gate 'g' calls itself
// kind: Type
OPENQASM 3.0;
include "stdgates.inc";
gate g a {
  x a;
  g a;
}
