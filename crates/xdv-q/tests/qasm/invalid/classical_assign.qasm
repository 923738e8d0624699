// error: 6:5: classical assignments other than
// kind: Unsupported
OPENQASM 3.0;
const int n = 2;
bit c;
c = 1;
