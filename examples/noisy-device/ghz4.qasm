// A 4-qubit GHZ state written without regard to the device: a chain of CNOTs 0-1, 1-2, 2-3. The
// tenant's partition is not a chain in that order (qubits [0, 1, 2, 11] of the ring, logical
// qubit i on the i-th), so the router inserts swaps; `h` is not native and is translated.
OPENQASM 2.0;
include "qelib1.inc";
qreg q[4];
creg c[4];
h q[0];
cx q[0], q[1];
cx q[1], q[2];
cx q[2], q[3];
measure q -> c;
