"""Regenerates the MQT Bench circuits in this directory.

MQT Bench (Munich Quantum Toolkit, Technical University of Munich; MIT licence, see NOTICE) builds
standard benchmark circuits; each is taken at its target-independent level, written out by Qiskit's
OpenQASM 2 and 3 exporters after Qiskit's transpiler has lowered its composite blocks to standard
gates (optimisation level 0, so the circuit's structure is kept), and stored with the final state Qiskit computes for it (terminal
measurements removed, global phase included) in `NAME.json`.

    python3 -m venv venv && venv/bin/pip install 'mqt.bench==2.3.0' 'qiskit==2.6.2' 'qiskit-qasm3-import==0.6.0'
    venv/bin/python generate.py
"""

import json
from pathlib import Path

import qiskit
from mqt.bench import BenchmarkLevel, get_benchmark
from qiskit import qasm2, qasm3, transpile
from qiskit.quantum_info import Statevector


def state(qc):
    sv = Statevector(qc.remove_final_measurements(inplace=False))
    return [[float(a.real), float(a.imag)] for a in sv.data]

HERE = Path(__file__).parent
BASIS = ["u", "u1", "u2", "u3", "p", "cx", "h", "x", "y", "z", "s", "sdg", "t", "tdg", "sx", "sxdg",
         "rx", "ry", "rz", "cz", "cy", "ch", "cp", "crx", "cry", "crz", "cu", "swap", "ccx", "cswap",
         "rxx", "rzz", "ryy",]
BENCHMARKS = [
    ("ae", 4), ("bv", 5), ("dj", 5), ("ghz", 6), ("graphstate", 5), ("grover", 4),
    ("qft", 5), ("qftentangled", 5), ("qpeexact", 5), ("qwalk", 4), ("wstate", 5),
    ("vqe_su2", 4), ("qnn", 4), ("half_adder", 5), ("randomcircuit", 5),
]

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

for name, size in BENCHMARKS:
    qc = transpile(get_benchmark(name, BenchmarkLevel.INDEP, size), basis_gates=BASIS,
                   optimization_level=0, seed_transpiler=1)
    write(f"{name}_{size}", qc)
print("wrote", len(BENCHMARKS), "benchmarks")
