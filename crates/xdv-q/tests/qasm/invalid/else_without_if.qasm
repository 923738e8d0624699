// error: 4:1: 'else' without a matching 'if'
// kind: Syntax
OPENQASM 3.0;
else { }
