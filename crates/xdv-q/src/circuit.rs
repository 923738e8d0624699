//! The circuit IR: what every front end (OpenQASM 2, OpenQASM 3) lowers to and every engine
//! executes. It is flat and concrete — user gate definitions are inlined, modifiers applied, loops
//! unrolled and parameters bound — so an engine sees only gates with numeric matrices, measurements,
//! resets, barriers and classically conditioned blocks.

use crate::gates::Matrix;

/// A named register: a contiguous range of qubits or classical bits.
#[derive(Clone, Debug, PartialEq)]
pub struct Register {
    /// The register's name in the source.
    pub name: String,
    /// Index of its first element among all qubits (or all clbits).
    pub offset: u32,
    /// Number of elements.
    pub size: u32,
}

/// A gate application: a matrix on `targets`, applied when every control has its required value.
#[derive(Clone, Debug, PartialEq)]
pub struct Gate {
    /// The gate's name: a table gate (`h`, `cx`, …), or the user gate it was inlined from is not
    /// kept — modified gates keep the base gate's name (`ctrl @ x` is `x` with one control).
    pub name: String,
    /// The angle parameters it was instantiated with (for the device model and the docs).
    pub params: Vec<f64>,
    /// The qubits the matrix acts on: matrix basis bit `j` is qubit `targets[j]`.
    pub targets: Vec<u32>,
    /// Control qubits (disjoint from `targets`).
    pub controls: Vec<u32>,
    /// Bit `i` is the value `controls[i]` must have (1 for `ctrl @`, 0 for `negctrl @`).
    pub ctrl_state: u64,
    /// The `2^targets.len()`-dimensional unitary on the targets.
    pub matrix: Matrix,
}

impl Gate {
    /// The table gate `name` on `qubits` (all its arguments, controls included, in the table's
    /// order), its matrix expanded over every argument; `None` when the table has no such gate or
    /// the parameter or qubit count differs from its arity.
    pub fn table(name: &str, params: &[f64], qubits: &[u32]) -> Option<Gate> {
        let def = crate::gates::lookup(name)?;
        if def.params != params.len() || def.qubits != qubits.len() {
            return None;
        }
        Some(Gate {
            name: name.into(),
            params: params.to_vec(),
            targets: qubits.to_vec(),
            controls: vec![],
            ctrl_state: 0,
            matrix: def.matrix(params),
        })
    }

    /// Every qubit the gate touches, controls first.
    pub fn qubits(&self) -> impl Iterator<Item = u32> + '_ {
        self.controls.iter().chain(self.targets.iter()).copied()
    }
}

/// A classical condition: the classical bits `clbits` (`clbits[0]` the least significant), read
/// as an unsigned integer, equal `value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    /// The bits compared, least significant first.
    pub clbits: Vec<u32>,
    /// The value they must equal.
    pub value: u64,
}

/// One operation of a circuit.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// A unitary gate.
    Gate(Gate),
    /// Measure `qubit` in the computational basis into `clbit`.
    Measure {
        /// The measured qubit.
        qubit: u32,
        /// The classical bit written.
        clbit: u32,
    },
    /// Reset `qubit` to |0⟩.
    Reset {
        /// The qubit reset.
        qubit: u32,
    },
    /// A scheduling barrier over `qubits`; no effect on the state, but fusion never crosses it.
    Barrier {
        /// The qubits it spans.
        qubits: Vec<u32>,
    },
    /// Classically controlled blocks.
    If {
        /// The condition.
        cond: Condition,
        /// Run when the condition holds.
        then_ops: Vec<Op>,
        /// Run otherwise.
        else_ops: Vec<Op>,
    },
}

/// A whole circuit.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Circuit {
    /// Number of qubits.
    pub num_qubits: u32,
    /// Number of classical bits.
    pub num_clbits: u32,
    /// Quantum registers in declaration order.
    pub qregs: Vec<Register>,
    /// Classical registers in declaration order.
    pub cregs: Vec<Register>,
    /// The operations, in program order.
    pub ops: Vec<Op>,
    /// Accumulated global phase (radians) from top-level `gphase` and phase conventions.
    pub global_phase: f64,
}

impl Circuit {
    /// Whether the circuit has no measurement, reset or conditional — a pure unitary.
    pub fn is_unitary(&self) -> bool {
        self.ops
            .iter()
            .all(|o| matches!(o, Op::Gate(_) | Op::Barrier { .. }))
    }

    /// The top-level measurements as `(qubit, clbit)` pairs, in program order (not those inside
    /// conditionals).
    pub fn measurements(&self) -> Vec<(u32, u32)> {
        self.ops
            .iter()
            .filter_map(|o| match o {
                Op::Measure { qubit, clbit } => Some((*qubit, *clbit)),
                _ => None,
            })
            .collect()
    }

    /// Number of gate applications, counting those inside conditionals.
    pub fn gate_count(&self) -> usize {
        fn count(ops: &[Op]) -> usize {
            ops.iter()
                .map(|o| match o {
                    Op::Gate(_) => 1,
                    Op::If {
                        then_ops, else_ops, ..
                    } => count(then_ops) + count(else_ops),
                    _ => 0,
                })
                .sum()
        }
        count(&self.ops)
    }
}
