// error: 4:1: subroutine definitions ('def')
// kind: Unsupported
OPENQASM 3.0;
def f(qubit a) { }
