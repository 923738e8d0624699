"""Runs one peer simulator on one OpenQASM 2 circuit and prints one JSON line with the time of the
simulation alone: `{"sim": ..., "simulate_s": t, "precision": ..., "threads": T}`.

Used by `cargo xtask bench q`, which runs each simulator in a fresh process per measurement (so the
thread settings take effect and no state is cached between runs) and alternates the order.

    python peers.py SIM FILE THREADS        SIM: qsim | qulacs | aer

The circuits are the benchmark's own generated files (rx/ry/rz/h/cx/cu1/swap on one register
`q`), so this script reads them with a small line parser and builds each peer's native circuit;
building is not timed, only the state evolution from |0...0>.
"""

import json
import math
import os
import re
import sys
import time

GATE = re.compile(r"^(\w+)(?:\(([^)]*)\))?\s+(.*);$")
QUBIT = re.compile(r"q\[(\d+)\]")


def read(path):
    n, ops = 0, []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith(("OPENQASM", "include", "//", "creg")):
                continue
            if line.startswith("qreg"):
                n = int(QUBIT.search(line.replace("qreg ", "")).group(1))
                continue
            m = GATE.match(line)
            if not m:
                raise SystemExit(f"{path}: cannot read {line!r}")
            name, params, args = m.group(1), m.group(2), m.group(3)
            angle = eval(params, {"pi": math.pi}) if params else None  # our own generated files
            qubits = [int(x) for x in QUBIT.findall(args)]
            ops.append((name, angle, qubits))
    return n, ops


def run_qsim(n, ops, threads):
    import cirq
    import qsimcirq

    q = cirq.LineQubit.range(n)
    gates = {
        "rx": lambda a, t: cirq.rx(a).on(q[t[0]]),
        "ry": lambda a, t: cirq.ry(a).on(q[t[0]]),
        "rz": lambda a, t: cirq.rz(a).on(q[t[0]]),
        "h": lambda a, t: cirq.H(q[t[0]]),
        "cx": lambda a, t: cirq.CNOT(q[t[0]], q[t[1]]),
        "cu1": lambda a, t: cirq.CZPowGate(exponent=a / math.pi).on(q[t[0]], q[t[1]]),
        "swap": lambda a, t: cirq.SWAP(q[t[0]], q[t[1]]),
    }
    circuit = cirq.Circuit([gates[name](a, t) for name, a, t in ops])
    sim = qsimcirq.QSimSimulator(qsimcirq.QSimOptions(cpu_threads=threads, max_fused_gate_size=2))
    start = time.perf_counter()
    sim.simulate(circuit)
    return time.perf_counter() - start, "f32"


def run_qulacs(n, ops, threads):
    import numpy as np
    import qulacs
    from qulacs import gate

    c = qulacs.QuantumCircuit(n)
    for name, a, t in ops:
        if name == "rx":
            c.add_RX_gate(t[0], -a)  # qulacs rotates by exp(+i a X / 2)
        elif name == "ry":
            c.add_RY_gate(t[0], -a)
        elif name == "rz":
            c.add_RZ_gate(t[0], -a)
        elif name == "h":
            c.add_H_gate(t[0])
        elif name == "cx":
            c.add_CNOT_gate(t[0], t[1])
        elif name == "swap":
            c.add_SWAP_gate(t[0], t[1])
        elif name == "cu1":
            g = gate.DenseMatrix(t[1], np.diag([1, np.exp(1j * a)]))
            g.add_control_qubit(t[0], 1)
            c.add_gate(g)
        else:
            raise SystemExit(f"qulacs: no mapping for {name}")
    state = qulacs.QuantumState(n)
    start = time.perf_counter()
    c.update_quantum_state(state)
    return time.perf_counter() - start, "f64"


def run_aer(path, threads):
    from qiskit import QuantumCircuit
    from qiskit_aer import AerSimulator

    qc = QuantumCircuit.from_qasm_file(path)
    qc.save_statevector()
    sim = AerSimulator(method="statevector", precision="double", max_parallel_threads=threads,
                       fusion_enable=True)
    start = time.perf_counter()
    result = sim.run(qc, shots=1).result()
    wall = time.perf_counter() - start
    taken = result.results[0].time_taken  # the simulation itself, as Aer measures it
    return (taken if taken and taken > 0 else wall), "f64"


def main():
    sim, path, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if sim == "aer":
        secs, precision = run_aer(path, threads)
    else:
        n, ops = read(path)
        if sim == "qsim":
            secs, precision = run_qsim(n, ops, threads)
        elif sim == "qulacs":
            if os.environ.get("OMP_NUM_THREADS") != str(threads):
                raise SystemExit("qulacs: set OMP_NUM_THREADS to the thread count before starting")
            secs, precision = run_qulacs(n, ops, threads)
        else:
            raise SystemExit(f"unknown simulator {sim}")
    print(json.dumps({"sim": sim, "simulate_s": secs, "precision": precision, "threads": threads}))


if __name__ == "__main__":
    main()
