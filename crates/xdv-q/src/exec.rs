//! Execution: from a lowered [`Circuit`] to counts ([`run`]) or a final state ([`final_state`]).
//!
//! # Methods
//!
//! - **Final sampling** ([`Method::FinalSampling`]): when the run is noiseless (no device, or a
//!   device without noise) and every measurement is terminal — no gate or reset touches a qubit
//!   after it was measured, and there is no conditional — the circuit is simulated once and every
//!   shot is drawn from the final distribution (see [`sample_state`]). A reset of a qubit no
//!   operation has touched yet is a no-op and allowed.
//! - **Trajectories** ([`Method::Trajectories`]): otherwise, one trajectory per shot. A
//!   measurement collapses the state with the probability it computes (in `f64`); a reset is a
//!   measurement without readout error followed by an X on outcome 1; a conditional evaluates the
//!   classical bits; noise channels from [`crate::noise`] are applied stochastically. Without
//!   noise, the gates before the first measurement, reset or conditional are simulated once and
//!   the result copied into each trajectory when two states fit in the memory limit.
//!
//! Consecutive gates go to [`Engine::apply_gates`] in one call (split at barriers, measurements,
//! resets and conditionals; with noise, one gate per call, since noise follows every gate).
//!
//! # Counts keys
//!
//! A key lists every classical bit of the circuit, highest index leftmost (registers
//! concatenated in declaration order, no spaces); bits never written read 0. A circuit without
//! classical bits gives the single key `""` with all the shots (as Qiskit does).
//!
//! # Determinism
//!
//! All randomness comes from [`crate::rng`], drawn here in a fixed order: final sampling uses
//! stream `(Sampling, k)` for the `k`-th chunk of [`SAMPLE_CHUNK`] shots; trajectory `s` uses
//! stream `(Trajectory, s)`, drawing in program order: for each gate, the decay draws of its
//! qubits then the depolarising draws; for each measurement, the decay draws, one uniform for the
//! outcome, one for the readout flip; for each reset, the decay draws and one uniform. A draw is
//! skipped when its probability is exactly 0 (noise) — never for a measurement outcome. The
//! same seed gives the same counts whatever the engine and its thread count. Timings
//! ([`RunResult::simulate_s`], [`RunResult::sample_s`]) are measured and reported, never used.

pub mod ops;

use crate::circuit::{Circuit, Condition, Gate, Op};
use crate::device::{Device, DeviceCheckError};
use crate::engine::Engine;
use crate::noise::{predicted_error, Trajectory};
use crate::pauli::PauliError;
use crate::real::Real;
use crate::rng::{Purpose, Rng};
use crate::state::{state_bytes, StateError, StateVec};
use std::collections::BTreeMap;
use std::time::Instant;
use thiserror::Error;

/// The default shot limit.
pub const SHOTS_MAX: u64 = 1_000_000_000;
/// The default limit on trajectory work, in amplitude-operations (`shots · 2^n · (ops + 1)`).
pub const TRAJECTORY_WORK_MAX: u64 = 1 << 42;
/// The largest number of classical bits a circuit may have here (the length of a counts key).
pub const CLBITS_MAX: u32 = 1 << 16;
/// The deepest nesting of conditionals accepted.
pub const IF_DEPTH_MAX: usize = 64;
/// Shots drawn per sorted chunk in final sampling.
pub const SAMPLE_CHUNK: u64 = 1 << 22;

/// How a run was carried out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Simulated once; shots drawn from the final distribution.
    FinalSampling,
    /// One quantum trajectory per shot.
    Trajectories,
}

impl Method {
    /// The method's name in reports (`final-sampling`, `trajectories`).
    pub fn name(self) -> &'static str {
        match self {
            Method::FinalSampling => "final-sampling",
            Method::Trajectories => "trajectories",
        }
    }
}

/// What [`run`] is asked to do.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Number of shots (at least 1).
    pub shots: u64,
    /// The seed of every random choice.
    pub seed: u64,
    /// The memory the state vector(s) may take, in bytes.
    pub memory_bytes_max: u64,
    /// The device to simulate; `None` = ideal.
    pub device: Option<Device>,
    /// The most shots accepted.
    pub shots_max: u64,
    /// The most trajectory work accepted (`shots · 2^n · (ops + 1)`).
    pub trajectory_work_max: u64,
    /// Run trajectories even where final sampling would do (for tests and comparisons).
    pub force_trajectories: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            shots: 1024,
            seed: 0,
            memory_bytes_max: 16 << 30,
            device: None,
            shots_max: SHOTS_MAX,
            trajectory_work_max: TRAJECTORY_WORK_MAX,
            force_trajectories: false,
        }
    }
}

/// What [`run`] produced.
#[derive(Clone, Debug, PartialEq)]
pub struct RunResult {
    /// Shots per outcome key (see the module doc for the key's format).
    pub counts: BTreeMap<String, u64>,
    /// How the shots were produced.
    pub method: Method,
    /// [`predicted_error`] of the circuit on the device (0 without one).
    pub predicted_error: f64,
    /// Seconds spent simulating (reported only).
    pub simulate_s: f64,
    /// Seconds spent sampling (reported only).
    pub sample_s: f64,
    /// Trajectories run (0 for final sampling).
    pub trajectories: u64,
}

/// Why a circuit could not be executed.
#[derive(Debug, Error, PartialEq)]
pub enum ExecError {
    /// The state does not fit.
    #[error(transparent)]
    State(#[from] StateError),
    /// The circuit does not fit the device.
    #[error(transparent)]
    Device(#[from] DeviceCheckError),
    /// An observable does not parse or does not fit the circuit.
    #[error(transparent)]
    Observable(#[from] PauliError),
    /// Zero shots.
    #[error("0 shots requested; ask for at least 1")]
    NoShots,
    /// Too many shots.
    #[error("{shots} shots is more than the {max} allowed; ask for fewer shots")]
    TooManyShots {
        /// Requested.
        shots: u64,
        /// The limit.
        max: u64,
    },
    /// Trajectory simulation would take too long.
    #[error("{shots} trajectories of a {qubits}-qubit circuit with {ops} operations is about {work} amplitude updates, more than the {max} allowed; use fewer shots, fewer qubits, or drop the noise and mid-circuit measurements so that shots can be sampled from one simulation")]
    TooMuchWork {
        /// Shots.
        shots: u64,
        /// Qubits.
        qubits: u32,
        /// Operations (counting inside conditionals).
        ops: usize,
        /// `shots · 2^n · (ops + 1)`.
        work: u64,
        /// The limit.
        max: u64,
    },
    /// A final state was asked of a circuit that is not unitary up to terminal measurements.
    #[error("`{op}` ({position}) {why}, so the circuit has no single final state; use `xdv q run` to sample it shot by shot")]
    NotUnitary {
        /// The operation as written.
        op: String,
        /// Where (`op 3`).
        position: String,
        /// What makes it non-unitary.
        why: String,
    },
    /// The circuit is malformed (an index out of range, a matrix of the wrong size, …).
    #[error("invalid circuit at {position}: {message}")]
    InvalidCircuit {
        /// Where.
        position: String,
        /// What is wrong.
        message: String,
    },
    /// The simulated state lost its norm (a non-finite gate entry).
    #[error("the simulated state has squared norm {norm_sqr}, not 1; a gate matrix has non-finite or non-unitary entries")]
    BadNorm {
        /// The squared norm found.
        norm_sqr: f64,
    },
}

// ---------------------------------------------------------------------------------------------
// Naming operations in messages.

fn reg_name(regs: &[crate::circuit::Register], i: u32, default: &str) -> String {
    regs.iter()
        .find(|r| i >= r.offset && i - r.offset < r.size)
        .map(|r| format!("{}[{}]", r.name, i - r.offset))
        .unwrap_or_else(|| format!("{default}[{i}]"))
}

/// The name of qubit `q` in `c` (`q[3]`, `anc[0]`).
pub fn qubit_name(c: &Circuit, q: u32) -> String {
    reg_name(&c.qregs, q, "q")
}

/// The name of classical bit `b` in `c`.
pub fn clbit_name(c: &Circuit, b: u32) -> String {
    reg_name(&c.cregs, b, "c")
}

/// A gate as OpenQASM would write it: `cx q[0], q[3]`, `rz(0.5) q[1]`.
pub fn describe_gate(c: &Circuit, g: &Gate) -> String {
    let params = if g.params.is_empty() {
        String::new()
    } else {
        let p: Vec<String> = g.params.iter().map(|x| format!("{x}")).collect();
        format!("({})", p.join(", "))
    };
    let qs: Vec<String> = g.qubits().map(|q| qubit_name(c, q)).collect();
    format!("{}{params} {}", g.name, qs.join(", "))
}

fn describe_cond(c: &Circuit, cond: &Condition) -> String {
    if let Some(r) = c.cregs.iter().find(|r| {
        r.size as usize == cond.clbits.len()
            && cond
                .clbits
                .iter()
                .enumerate()
                .all(|(i, &b)| b == r.offset + i as u32)
    }) {
        return format!("{} == {}", r.name, cond.value);
    }
    let bits: Vec<String> = cond.clbits.iter().map(|&b| clbit_name(c, b)).collect();
    format!("[{}] == {}", bits.join(", "), cond.value)
}

/// An operation as OpenQASM would write it (a conditional shows its condition only).
pub fn describe_op(c: &Circuit, op: &Op) -> String {
    match op {
        Op::Gate(g) => describe_gate(c, g),
        Op::Measure { qubit, clbit } => format!(
            "measure {} -> {}",
            qubit_name(c, *qubit),
            clbit_name(c, *clbit)
        ),
        Op::Reset { qubit } => format!("reset {}", qubit_name(c, *qubit)),
        Op::Barrier { qubits } => {
            let qs: Vec<String> = qubits.iter().map(|&q| qubit_name(c, q)).collect();
            format!("barrier {}", qs.join(", "))
        }
        Op::If { cond, .. } => format!("if ({})", describe_cond(c, cond)),
    }
}

// ---------------------------------------------------------------------------------------------
// Validation.

/// Checks that every index and matrix of `c` is consistent, so that nothing downstream panics.
pub fn validate(c: &Circuit) -> Result<(), ExecError> {
    if c.num_clbits > CLBITS_MAX {
        return Err(ExecError::InvalidCircuit {
            position: "the circuit".into(),
            message: format!(
                "{} classical bits is more than the {CLBITS_MAX} supported",
                c.num_clbits
            ),
        });
    }
    validate_ops(c, &c.ops, "", 0)
}

fn validate_ops(c: &Circuit, ops: &[Op], prefix: &str, depth: usize) -> Result<(), ExecError> {
    let bad = |position: &str, message: String| ExecError::InvalidCircuit {
        position: position.into(),
        message,
    };
    let qubit_ok = |q: u32| q < c.num_qubits;
    for (i, op) in ops.iter().enumerate() {
        let pos = format!("{prefix}op {i}");
        match op {
            Op::Gate(g) => {
                let qs: Vec<u32> = g.qubits().collect();
                if let Some(&q) = qs.iter().find(|&&q| !qubit_ok(q)) {
                    return Err(bad(
                        &pos,
                        format!(
                            "gate {} acts on qubit {q} of a {}-qubit circuit",
                            g.name, c.num_qubits
                        ),
                    ));
                }
                for (j, a) in qs.iter().enumerate() {
                    if qs[j + 1..].contains(a) {
                        return Err(bad(&pos, format!("gate {} uses qubit {a} twice", g.name)));
                    }
                }
                if g.controls.len() > 64 {
                    return Err(bad(
                        &pos,
                        format!("gate {} has more than 64 controls", g.name),
                    ));
                }
                let k = g.targets.len();
                if k >= 32
                    || g.matrix.dim != 1usize << k
                    || g.matrix.data.len() != g.matrix.dim * g.matrix.dim
                {
                    return Err(bad(
                        &pos,
                        format!(
                            "gate {} has {k} targets but a {}-dimensional matrix",
                            g.name, g.matrix.dim
                        ),
                    ));
                }
                if g.matrix
                    .data
                    .iter()
                    .any(|z| !(z.re.is_finite() && z.im.is_finite()))
                {
                    return Err(bad(
                        &pos,
                        format!(
                            "gate {} has a non-finite matrix entry (a NaN or infinite parameter?)",
                            g.name
                        ),
                    ));
                }
            }
            Op::Measure { qubit, clbit } => {
                if !qubit_ok(*qubit) || *clbit >= c.num_clbits {
                    return Err(bad(
                        &pos,
                        format!(
                            "measure of qubit {qubit} into bit {clbit} with {} qubits and {} bits",
                            c.num_qubits, c.num_clbits
                        ),
                    ));
                }
            }
            Op::Reset { qubit } => {
                if !qubit_ok(*qubit) {
                    return Err(bad(
                        &pos,
                        format!("reset of qubit {qubit} of a {}-qubit circuit", c.num_qubits),
                    ));
                }
            }
            Op::Barrier { qubits } => {
                if let Some(q) = qubits.iter().find(|&&q| !qubit_ok(q)) {
                    return Err(bad(
                        &pos,
                        format!("barrier on qubit {q} of a {}-qubit circuit", c.num_qubits),
                    ));
                }
            }
            Op::If {
                cond,
                then_ops,
                else_ops,
            } => {
                if depth >= IF_DEPTH_MAX {
                    return Err(bad(
                        &pos,
                        format!("conditionals nested deeper than {IF_DEPTH_MAX}"),
                    ));
                }
                if cond.clbits.len() > 64 || cond.clbits.iter().any(|&b| b >= c.num_clbits) {
                    return Err(bad(
                        &pos,
                        format!(
                            "condition on bits {:?} of {} (at most 64 bits, each in range)",
                            cond.clbits, c.num_clbits
                        ),
                    ));
                }
                validate_ops(c, then_ops, &format!("{pos}, then-branch "), depth + 1)?;
                validate_ops(c, else_ops, &format!("{pos}, else-branch "), depth + 1)?;
            }
        }
    }
    Ok(())
}

fn count_ops(ops: &[Op]) -> usize {
    ops.iter()
        .map(|o| match o {
            Op::If {
                then_ops, else_ops, ..
            } => 1 + count_ops(then_ops) + count_ops(else_ops),
            _ => 1,
        })
        .sum()
}

// ---------------------------------------------------------------------------------------------
// Terminal-measurement analysis.

/// The first operation that prevents sampling from one final state, with why.
fn first_non_terminal(c: &Circuit) -> Option<(usize, String)> {
    let n = c.num_qubits as usize;
    // The op index of the measurement of each measured qubit, and whether it was touched.
    let mut measured: Vec<Option<usize>> = vec![None; n];
    let mut touched = vec![false; n];
    for (i, op) in c.ops.iter().enumerate() {
        match op {
            Op::Gate(g) => {
                if let Some(q) = g.qubits().find(|&q| measured[q as usize].is_some()) {
                    let j = measured[q as usize].unwrap_or(0);
                    return Some((
                        i,
                        format!(
                            "acts on {} after the mid-circuit measurement `{}` (op {j})",
                            qubit_name(c, q),
                            describe_op(c, &c.ops[j])
                        ),
                    ));
                }
                for q in g.qubits() {
                    touched[q as usize] = true;
                }
            }
            Op::Reset { qubit } => {
                let q = *qubit as usize;
                if touched[q] {
                    let after = match measured[q] {
                        Some(j) => format!(
                            " after the measurement `{}` (op {j})",
                            describe_op(c, &c.ops[j])
                        ),
                        None => String::new(),
                    };
                    return Some((i, format!("resets a qubit that is no longer in |0⟩{after}")));
                }
            }
            Op::Measure { qubit, .. } => {
                let q = *qubit as usize;
                measured[q].get_or_insert(i);
                touched[q] = true;
            }
            Op::Barrier { .. } => {}
            Op::If { .. } => return Some((i, "is a classically conditioned block".into())),
        }
    }
    None
}

/// Whether every measurement of `c` is terminal and it has no conditional (final sampling
/// applies when the run is also noiseless).
pub fn measurements_are_terminal(c: &Circuit) -> bool {
    validate(c).is_ok() && first_non_terminal(c).is_none()
}

// ---------------------------------------------------------------------------------------------
// Final state.

fn apply_segments<T: Real>(c: &Circuit, engine: &dyn Engine<T>, state: &mut StateVec<T>) -> usize {
    let mut seg: Vec<Gate> = Vec::new();
    let mut dropped = 0;
    for op in &c.ops {
        match op {
            Op::Gate(g) => seg.push(g.clone()),
            other => {
                if !seg.is_empty() {
                    engine.apply_gates(state, &seg);
                    seg.clear();
                }
                if matches!(other, Op::Measure { .. }) {
                    dropped += 1;
                }
            }
        }
    }
    if !seg.is_empty() {
        engine.apply_gates(state, &seg);
    }
    dropped
}

/// The state of `c` just before its terminal measurements, with the circuit's global phase
/// applied, and the number of terminal measurements dropped. A mid-circuit measurement, a reset
/// of a qubit already used, or a conditional is refused with the operation and its position.
pub fn final_state<T: Real>(
    c: &Circuit,
    engine: &dyn Engine<T>,
    memory_bytes_max: u64,
) -> Result<(StateVec<T>, usize), ExecError> {
    validate(c)?;
    if let Some((i, why)) = first_non_terminal(c) {
        return Err(ExecError::NotUnitary {
            op: describe_op(c, &c.ops[i]),
            position: format!("op {i}"),
            why,
        });
    }
    let mut state = StateVec::<T>::zero(c.num_qubits, memory_bytes_max)?;
    let dropped = apply_segments(c, engine, &mut state);
    if c.global_phase != 0.0 {
        ops::global_phase(&mut state, c.global_phase);
    }
    Ok((state, dropped))
}

// ---------------------------------------------------------------------------------------------
// Sampling from a final distribution.

/// Draws `shots` basis indices from `|a_i|² / Σ|a|²`, returning `(index, count)` ascending by
/// index (indices of probability 0 never appear).
///
/// Method: the shots are drawn in chunks of [`SAMPLE_CHUNK`]; chunk `k` uses stream
/// `(purpose, base_index + k)` of `seed`. In a chunk, `m` integers `u` uniform in `[0, 2^53)` are
/// drawn and sorted; one pass over the amplitudes accumulates the cumulative probability `F_i` in
/// `f64` and assigns each `u` to the smallest `i` with `u·2^-53·Σ|a|² < F_i`. Cost
/// `O(2^n · ⌈shots / chunk⌉ + shots · log chunk)`, memory `8 · chunk` bytes. Only additions,
/// multiplications and comparisons are involved, so the result is bitwise the same on every
/// IEEE-754 machine.
pub fn sample_state<T: Real>(
    state: &StateVec<T>,
    shots: u64,
    seed: u64,
    purpose: Purpose,
    base_index: u64,
) -> Result<Vec<(u64, u64)>, ExecError> {
    let total = state.norm_sqr();
    if !(total.is_finite() && total > 0.0) {
        return Err(ExecError::BadNorm { norm_sqr: total });
    }
    let amps = state.amplitudes();
    let p = |i: usize| {
        let a = amps[i];
        let (r, m) = (a.re.to_f64(), a.im.to_f64());
        r * r + m * m
    };
    let mut counts: BTreeMap<u64, u64> = BTreeMap::new();
    let mut left = shots;
    let mut chunk = 0u64;
    while left > 0 {
        let m = left.min(SAMPLE_CHUNK);
        let mut rng = Rng::new(seed, purpose, base_index.wrapping_add(chunk));
        let mut us: Vec<u64> = (0..m).map(|_| rng.next_u53()).collect();
        us.sort_unstable();
        let (mut i, mut acc) = (0usize, p(0));
        let mut last_nonzero = (acc > 0.0).then_some(0usize);
        let mut run: Option<(usize, u64)> = None;
        for u in us {
            let x = u as f64 * (1.0 / (1u64 << 53) as f64) * total;
            while x >= acc && i + 1 < amps.len() {
                i += 1;
                let pi = p(i);
                acc += pi;
                if pi > 0.0 {
                    last_nonzero = Some(i);
                }
            }
            // Rounding can leave x at the very top; it belongs to the last possible outcome.
            let idx = if x < acc && p(i) > 0.0 {
                i
            } else {
                match last_nonzero {
                    Some(j) => j,
                    None => return Err(ExecError::BadNorm { norm_sqr: total }),
                }
            };
            match &mut run {
                Some((j, k)) if *j == idx => *k += 1,
                _ => {
                    if let Some((j, k)) = run.take() {
                        *counts.entry(j as u64).or_insert(0) += k;
                    }
                    run = Some((idx, 1));
                }
            }
        }
        if let Some((j, k)) = run {
            *counts.entry(j as u64).or_insert(0) += k;
        }
        left -= m;
        chunk += 1;
    }
    Ok(counts.into_iter().collect())
}

/// The counts key of classical bits `bits` (`bits[0]` = bit 0): highest index leftmost.
pub fn counts_key(bits: &[bool]) -> String {
    bits.iter()
        .rev()
        .map(|&b| if b { '1' } else { '0' })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Trajectories.

/// A compiled step of a trajectory.
enum Step {
    Gates(Vec<Gate>),
    Measure {
        qubit: u32,
        clbit: u32,
    },
    Reset {
        qubit: u32,
    },
    Barrier(Vec<u32>),
    If {
        cond: Condition,
        then_steps: Vec<Step>,
        else_steps: Vec<Step>,
    },
}

fn compile(ops: &[Op], one_gate_per_step: bool) -> Vec<Step> {
    let mut out: Vec<Step> = Vec::new();
    for op in ops {
        match op {
            Op::Gate(g) => match out.last_mut() {
                Some(Step::Gates(v)) if !one_gate_per_step => v.push(g.clone()),
                _ => out.push(Step::Gates(vec![g.clone()])),
            },
            Op::Measure { qubit, clbit } => out.push(Step::Measure {
                qubit: *qubit,
                clbit: *clbit,
            }),
            Op::Reset { qubit } => out.push(Step::Reset { qubit: *qubit }),
            Op::Barrier { qubits } => out.push(Step::Barrier(qubits.clone())),
            Op::If {
                cond,
                then_ops,
                else_ops,
            } => out.push(Step::If {
                cond: cond.clone(),
                then_steps: compile(then_ops, one_gate_per_step),
                else_steps: compile(else_ops, one_gate_per_step),
            }),
        }
    }
    out
}

/// Evaluates a condition on the classical bits.
pub fn condition_holds(cond: &Condition, bits: &[bool]) -> bool {
    let v = cond.clbits.iter().enumerate().fold(0u64, |v, (i, &b)| {
        v | (u64::from(bits.get(b as usize).copied().unwrap_or(false)) << i)
    });
    v == cond.value
}

struct Shot<'a, T: Real> {
    engine: &'a dyn Engine<T>,
    state: &'a mut StateVec<T>,
    bits: Vec<bool>,
    rng: Rng,
    noise: Option<Trajectory<'a>>,
}

impl<T: Real> Shot<'_, T> {
    fn measure(&mut self, q: u32) -> bool {
        let (p0, p1) = ops::probabilities(self.state, q);
        let u = self.rng.uniform();
        let outcome = u * (p0 + p1) < p1;
        ops::collapse(self.state, q, outcome, if outcome { p1 } else { p0 });
        outcome
    }

    fn exec(&mut self, steps: &[Step]) {
        for s in steps {
            match s {
                Step::Gates(gs) => match &mut self.noise {
                    None => self.engine.apply_gates(self.state, gs),
                    Some(nz) => {
                        for g in gs {
                            nz.before(self.state, g.qubits(), &mut self.rng);
                            self.engine.apply_gates(self.state, std::slice::from_ref(g));
                            nz.after_gate(self.state, g, &mut self.rng);
                        }
                    }
                },
                Step::Measure { qubit, clbit } => {
                    if let Some(nz) = &mut self.noise {
                        nz.before(self.state, std::iter::once(*qubit), &mut self.rng);
                    }
                    let mut b = self.measure(*qubit);
                    if let Some(nz) = &mut self.noise {
                        b = nz.after_measure(*qubit, b, &mut self.rng);
                    }
                    if let Some(slot) = self.bits.get_mut(*clbit as usize) {
                        *slot = b;
                    }
                }
                Step::Reset { qubit } => {
                    if let Some(nz) = &mut self.noise {
                        nz.before(self.state, std::iter::once(*qubit), &mut self.rng);
                    }
                    if self.measure(*qubit) {
                        ops::apply_pauli(self.state, 1u64 << qubit, 0);
                    }
                    if let Some(nz) = &mut self.noise {
                        nz.after_reset(*qubit);
                    }
                }
                Step::Barrier(qs) => {
                    if let Some(nz) = &mut self.noise {
                        nz.barrier(qs);
                    }
                }
                Step::If {
                    cond,
                    then_steps,
                    else_steps,
                } => {
                    if condition_holds(cond, &self.bits) {
                        self.exec(then_steps);
                    } else {
                        self.exec(else_steps);
                    }
                }
            }
        }
    }
}

/// Runs `c` for `opts.shots` shots (see the module doc for the method, the keys and the
/// determinism guarantees). The circuit is checked against the device, and the state against
/// the memory limit, before anything is allocated.
pub fn run<T: Real>(
    c: &Circuit,
    engine: &dyn Engine<T>,
    opts: &RunOptions,
) -> Result<RunResult, ExecError> {
    validate(c)?;
    if opts.shots == 0 {
        return Err(ExecError::NoShots);
    }
    if opts.shots > opts.shots_max {
        return Err(ExecError::TooManyShots {
            shots: opts.shots,
            max: opts.shots_max,
        });
    }
    let device = opts.device.as_ref();
    if let Some(d) = device {
        d.check(c)?;
    }
    StateVec::<T>::check(c.num_qubits, opts.memory_bytes_max)?;
    let noisy = device.is_some_and(|d| !d.is_noiseless());
    let predicted = device.map_or(0.0, |d| predicted_error(c, d));
    let nbits = c.num_clbits as usize;

    if !noisy && !opts.force_trajectories && first_non_terminal(c).is_none() {
        let t0 = Instant::now();
        let mut state = StateVec::<T>::zero(c.num_qubits, opts.memory_bytes_max)?;
        apply_segments(c, engine, &mut state);
        let simulate_s = t0.elapsed().as_secs_f64();
        let t1 = Instant::now();
        let measures = c.measurements();
        let mut counts = BTreeMap::new();
        for (index, k) in sample_state(&state, opts.shots, opts.seed, Purpose::Sampling, 0)? {
            let mut bits = vec![false; nbits];
            for &(q, b) in &measures {
                bits[b as usize] = index >> q & 1 == 1;
            }
            *counts.entry(counts_key(&bits)).or_insert(0) += k;
        }
        return Ok(RunResult {
            counts,
            method: Method::FinalSampling,
            predicted_error: predicted,
            simulate_s,
            sample_s: t1.elapsed().as_secs_f64(),
            trajectories: 0,
        });
    }

    let nops = count_ops(&c.ops);
    let work = opts
        .shots
        .saturating_mul(1u64 << c.num_qubits.min(63))
        .saturating_mul(nops as u64 + 1);
    if work > opts.trajectory_work_max {
        return Err(ExecError::TooMuchWork {
            shots: opts.shots,
            qubits: c.num_qubits,
            ops: nops,
            work,
            max: opts.trajectory_work_max,
        });
    }
    let t0 = Instant::now();
    let steps = compile(&c.ops, noisy);
    // Without noise, the gates before the first measurement, reset or conditional are the same in
    // every trajectory: simulate them once when a second state fits.
    let prefix_len = if noisy {
        0
    } else {
        steps
            .iter()
            .take_while(|s| matches!(s, Step::Gates(_) | Step::Barrier(_)))
            .count()
    };
    let two_fit = state_bytes::<T>(c.num_qubits)
        .checked_mul(2)
        .is_some_and(|b| b <= opts.memory_bytes_max);
    let mut start = StateVec::<T>::zero(c.num_qubits, opts.memory_bytes_max)?;
    let (cached, rest) = if prefix_len > 0 && two_fit {
        for s in &steps[..prefix_len] {
            if let Step::Gates(gs) = s {
                engine.apply_gates(&mut start, gs);
            }
        }
        (Some(start.clone()), &steps[prefix_len..])
    } else {
        (None, &steps[..])
    };
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut state = start;
    for shot in 0..opts.shots {
        match &cached {
            Some(s0) => state.amplitudes_mut().copy_from_slice(s0.amplitudes()),
            None => ops::set_zero(&mut state),
        }
        let mut sh = Shot {
            engine,
            state: &mut state,
            bits: vec![false; nbits],
            rng: Rng::new(opts.seed, Purpose::Trajectory, shot),
            noise: device
                .filter(|_| noisy)
                .map(|d| Trajectory::new(d, c.num_qubits)),
        };
        sh.exec(rest);
        let key = counts_key(&sh.bits);
        *counts.entry(key).or_insert(0) += 1;
    }
    Ok(RunResult {
        counts,
        method: Method::Trajectories,
        predicted_error: predicted,
        simulate_s: t0.elapsed().as_secs_f64(),
        sample_s: 0.0,
        trajectories: opts.shots,
    })
}
