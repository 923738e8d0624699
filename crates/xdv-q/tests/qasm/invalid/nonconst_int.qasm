// error: 4:1: classical variables that are not 'const'
// kind: Unsupported
OPENQASM 3.0;
int x = 3;
