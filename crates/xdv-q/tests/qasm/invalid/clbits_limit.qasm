// error: 4:1: 70000 classical bits declared, more than the limit of 65536
// kind: Limit
OPENQASM 3.0;
bit[70000] c;
