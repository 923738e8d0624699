// error: 5:1: more than the limit of 10000000
// kind: Limit
OPENQASM 3.0;
qubit q;
for int i in [0:100000000] { }
