//! VQE for the hydrogen molecule, run as an XDV K guest.
//!
//! The Hamiltonian is H₂ in the STO-3G basis at a bond length of 0.735 Å, fermions mapped to
//! qubits by the parity mapping with the two-qubit reduction (two qubits left), as in Qiskit's VQE
//! tutorials (Qiskit Nature, `ParityMapper(num_particles=(1, 1))` on the PySCF driver's
//! `H 0 0 0; H 0 0 0.735`, STO-3G). Its electronic part is
//!
//! ```text
//! H = −1.052373245772859 II + 0.39793742484318045 IZ − 0.39793742484318045 ZI
//!     − 0.01128010425623538 ZZ + 0.18093119978423156 XX            (Hartree)
//! ```
//!
//! and the nuclear repulsion energy, added separately, is 0.7199689944489797 Ha. The exact
//! ground state of H is −1.857275030202 Ha electronic, −1.137306035753 Ha in total.
//!
//! The ansatz is hardware-efficient (Qiskit's `RealAmplitudes`, two qubits, one repetition):
//! RY on each qubit, a CX, RY on each qubit again — four parameters. Each energy is one exact
//! expectation-value job on the Q domain (like Qiskit's Estimator); the Nelder–Mead minimiser
//! runs here in the guest. The guest prints one JSON line with the result.

use serde_json::json;
use xdv_guest::{log, optim, q_expectation, JobError, Level};

/// The electronic Hamiltonian (see the module doc), leftmost letter on qubit 1.
const HAMILTONIAN: &str = "-1.052373245772859*II + 0.39793742484318045*IZ - 0.39793742484318045*ZI - 0.01128010425623538*ZZ + 0.18093119978423156*XX";

/// Nuclear repulsion energy at 0.735 Å, Hartree.
const NUCLEAR_REPULSION_HA: f64 = 0.7199689944489797;

/// The ansatz, its four angles bound as OpenQASM 3 inputs.
const ANSATZ: &str = "OPENQASM 3.0;
include \"stdgates.inc\";
input float t0; input float t1; input float t2; input float t3;
qubit[2] q;
ry(t0) q[0];
ry(t1) q[1];
cx q[0], q[1];
ry(t2) q[0];
ry(t3) q[1];
";

fn energy(t: &[f64]) -> Result<f64, JobError> {
    let params = [("t0", t[0]), ("t1", t[1]), ("t2", t[2]), ("t3", t[3])];
    q_expectation(ANSATZ, HAMILTONIAN, &params)
}

fn main() {
    log(
        Level::Info,
        "vqe-h2: STO-3G H2 at 0.735 Å, RealAmplitudes(2 qubits, 1 rep), Nelder–Mead",
    );
    let start = [0.1, -0.2, 0.3, 0.05];
    match optim::nelder_mead(energy, &start, 0.5, 1e-10, 2000) {
        Ok(m) => {
            let total = m.value + NUCLEAR_REPULSION_HA;
            log(
                Level::Info,
                &format!("converged after {} evaluations", m.evaluations),
            );
            println!(
                "{}",
                json!({
                    "molecule": "H2", "basis": "sto-3g", "bond_length_angstrom": 0.735,
                    "energy_electronic_ha": m.value, "nuclear_repulsion_ha": NUCLEAR_REPULSION_HA,
                    "energy_total_ha": total, "parameters": m.x, "evaluations": m.evaluations,
                })
            );
        }
        Err(e) => {
            eprintln!("vqe-h2: {e}");
            std::process::exit(1);
        }
    }
}
