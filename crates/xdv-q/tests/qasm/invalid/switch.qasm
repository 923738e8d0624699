// error: 5:1: 'switch' statements
// kind: Unsupported
OPENQASM 3.0;
bit[2] c;
switch (c) { }
