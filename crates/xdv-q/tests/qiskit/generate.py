"""Regenerates the Qiskit-written test circuits in this directory.

Each case is a circuit built with Qiskit, written out by Qiskit's own OpenQASM 2 and 3 exporters
(`qiskit.qasm2.dumps`, `qiskit.qasm3.dumps`), with the final state Qiskit computes for each file
as Qiskit reads it back (`qiskit.qasm2.loads`, `qiskit.qasm3.loads`, then
`qiskit.quantum_info.Statevector`, global phase included) in `NAME.json`. (The exporters drop a
circuit's own global phase, so the state of the file, not of the original circuit, is the one to
match.) XDV's tests parse both files and compare the state they simulate with Qiskit's.

    python3 -m venv venv && venv/bin/pip install 'qiskit==2.6.2' 'qiskit-qasm3-import==0.6.0'
    venv/bin/python generate.py
"""

import json
import math
from pathlib import Path

import qiskit
from qiskit import QuantumCircuit, qasm2, qasm3
from qiskit.circuit.library import QFTGate
from qiskit.circuit.random import random_circuit
from qiskit.quantum_info import Statevector


def state(qc):
    sv = Statevector(qc.remove_final_measurements(inplace=False))
    return [[float(a.real), float(a.imag)] for a in sv.data]

HERE = Path(__file__).parent


def qft(n):
    qc = QuantumCircuit(n)
    for q in range(n):
        if q % 2 == 0:
            qc.x(q)
    qc.append(QFTGate(n), range(n))
    return qc.decompose(reps=2)


def ghz(n):
    qc = QuantumCircuit(n)
    qc.h(0)
    for q in range(n - 1):
        qc.cx(q, q + 1)
    return qc


def standard_gates():
    qc = QuantumCircuit(4)
    qc.h(0); qc.x(1); qc.y(2); qc.z(3)
    qc.s(0); qc.sdg(1); qc.t(2); qc.tdg(3)
    qc.sx(0); qc.sxdg(1)
    qc.rx(0.3, 0); qc.ry(-1.1, 1); qc.rz(2.2, 2); qc.p(0.7, 3)
    qc.u(0.1, 0.2, 0.3, 0)
    qc.cx(0, 1); qc.cy(1, 2); qc.cz(2, 3); qc.ch(3, 0)
    qc.swap(0, 2); qc.crx(0.4, 1, 3); qc.cry(0.5, 2, 0); qc.crz(0.6, 3, 1)
    qc.cp(0.8, 0, 3); qc.cu(0.9, 1.0, 1.1, 1.2, 1, 2)
    qc.csx(2, 1)
    qc.rxx(0.35, 0, 1); qc.rzz(0.45, 2, 3); qc.ryy(0.55, 1, 3); qc.rzx(0.65, 0, 2)
    qc.ccx(0, 1, 2); qc.cswap(3, 0, 1)
    qc.iswap(1, 2); qc.ecr(0, 3); qc.dcx(2, 0)
    qc.mcx([0, 1, 2], 3)
    return qc


CASES = {
    "ghz5": ghz(5),
    "qft5": qft(5),
    "standard_gates": standard_gates(),
}
for seed in range(6):
    CASES[f"random{seed}"] = random_circuit(5, 8, max_operands=3, seed=seed)


def write(stem, qc):
    text2, text3 = qasm2.dumps(qc) + "\n", qasm3.dumps(qc) + "\n"
    (HERE / f"{stem}.qasm").write_text(text2)
    (HERE / f"{stem}.qasm3").write_text(text3)
    back2 = qasm2.loads(text2, custom_instructions=qasm2.LEGACY_CUSTOM_INSTRUCTIONS)
    back3 = qasm3.loads(text3)
    (HERE / f"{stem}.json").write_text(
        json.dumps({"qiskit": qiskit.__version__, "qubits": qc.num_qubits,
                    "qasm": state(back2), "qasm3": state(back3)}) + "\n"
    )

for name, qc in CASES.items():
    write(name, qc)
print("wrote", len(CASES), "cases")
