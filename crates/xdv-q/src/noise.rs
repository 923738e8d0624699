//! Noise by quantum trajectories, from a [`Device`]: each trajectory applies every channel
//! stochastically (a Kraus operator chosen with its probability, then renormalised), so that the
//! average over trajectories is the noisy channel.
//!
//! # The model
//!
//! - **Schedule.** As soon as possible: every qubit has a clock (ns), starting at 0. An operation
//!   on qubits `Q` starts at `s = max_{q∈Q} clock_q`; afterwards `clock_q = s + duration` for
//!   `q ∈ Q`. A barrier sets the clocks of its qubits (all qubits when it names none) to their
//!   maximum. Classical feed-forward takes no time.
//! - **Decay (T1/T2).** Before an operation touches `q`, the decay of `q` since it was last
//!   touched (its idle gap plus the previous operation's duration) is applied: amplitude damping
//!   with `γ = 1 − e^{−t/T1}`, then pure dephasing as a Z with probability
//!   `p_z = (1 − e^{−t/T_φ})/2`, where `1/T_φ = 1/T2 − 1/(2·T1)`. Together they multiply the
//!   coherence by `e^{−t/T2}` and the excited population by `e^{−t/T1}`. Applying the decay
//!   lazily, at the next touch, is exact: a channel on `q` commutes with everything that does not
//!   touch `q`. A qubit's decay starts at its first operation (before it, it is |0⟩, on which
//!   neither channel acts); decay after its last operation is not applied (it affects nothing
//!   measured).
//! - **Amplitude damping, per trajectory:** with `p = γ·P(q = 1)` (in `f64`), apply
//!   `K1 = √γ·|0⟩⟨1|`, else `K0 = |0⟩⟨0| + √(1−γ)·|1⟩⟨1|`, and renormalise.
//! - **Gate error.** After each gate with error probability `e` (see [`crate::device`]): with
//!   probability `e`, a uniformly random non-identity Pauli on the gate's `k` qubits (each
//!   `e/(4^k − 1)`). The depolarising parameter is `λ = e·4^k/(4^k − 1)`; a Bloch vector after
//!   a noisy one-qubit identity shrinks by `1 − λ = 1 − 4e/3`.
//! - **Readout.** A measured 0 is recorded as 1 with probability `p01`, a measured 1 as 0 with
//!   probability `p10`; the state collapses to the true outcome. A reset has no readout error.
//!
//! # Predicted error
//!
//! [`predicted_error`] is `1 − Π_g (1 − e_g) · Π_q f_q · Π_m (1 − r_m)`, where `g` runs over the
//! gates, `m` over the measurements, `r_m = (p01 + p10)/2` of the measured qubit, and
//! `f_q = e^{−τ_q/T1_q} · (1 + e^{−τ_q/T_φ,q})/2` with `τ_q` the total decay time the schedule
//! above applies to qubit `q` (the probability that neither an amplitude-damping jump from |1⟩
//! nor a dephasing flip happens). Both branches of a conditional are counted, one after the other
//! (an upper bound). It is 0 on a noiseless device, and it is the figure the hypervisor charges
//! against decoherence budgets.

use crate::circuit::{Circuit, Gate, Op};
use crate::device::Device;
use crate::exec::ops;
use crate::gates::C64;
use crate::real::Real;
use crate::rng::Rng;
use crate::state::StateVec;

/// Amplitude damping of qubit `q` with `γ`, one trajectory: draws the jump with probability
/// `γ·P(q = 1)` (no draw when that is 0 or 1), applies the chosen Kraus operator and renormalises.
pub fn amplitude_damping<T: Real>(state: &mut StateVec<T>, q: u32, gamma: f64, rng: &mut Rng) {
    if gamma <= 0.0 {
        return;
    }
    let gamma = gamma.min(1.0);
    let (p0, p1) = ops::probabilities(state, q);
    let total = p0 + p1;
    if total <= 0.0 {
        return;
    }
    let z = C64::new(0.0, 0.0);
    let one = C64::new(1.0, 0.0);
    if rng.chance(gamma * p1 / total) {
        ops::apply_1q(state, q, [[z, one], [z, z]]);
    } else {
        ops::apply_1q(
            state,
            q,
            [[one, z], [z, C64::new((1.0 - gamma).sqrt(), 0.0)]],
        );
    }
    ops::renormalise(state);
}

/// Pure dephasing of qubit `q`: a Z with probability `p_z` (coherence × `1 − 2·p_z`).
pub fn phase_damping<T: Real>(state: &mut StateVec<T>, q: u32, p_z: f64, rng: &mut Rng) {
    if rng.chance(p_z) {
        ops::apply_pauli(state, 0, 1u64 << q);
    }
}

/// Decay of qubit `q` for `t_ns` nanoseconds with the given T1 and `T_φ` (ns, `∞` = none):
/// amplitude damping with `γ = 1 − e^{−t/T1}`, then dephasing with `p_z = (1 − e^{−t/T_φ})/2`.
pub fn relax<T: Real>(
    state: &mut StateVec<T>,
    q: u32,
    t_ns: f64,
    t1_ns: f64,
    tphi_ns: f64,
    rng: &mut Rng,
) {
    if t_ns <= 0.0 {
        return;
    }
    amplitude_damping(state, q, damping_gamma(t_ns, t1_ns), rng);
    phase_damping(state, q, dephasing_pz(t_ns, tphi_ns), rng);
}

/// `γ = 1 − e^{−t/T1}` (0 for `T1 = ∞`).
pub fn damping_gamma(t_ns: f64, t1_ns: f64) -> f64 {
    if t1_ns.is_finite() && t_ns > 0.0 {
        -(-t_ns / t1_ns).exp_m1()
    } else {
        0.0
    }
}

/// `p_z = (1 − e^{−t/T_φ})/2` (0 for `T_φ = ∞`).
pub fn dephasing_pz(t_ns: f64, tphi_ns: f64) -> f64 {
    if tphi_ns.is_finite() && t_ns > 0.0 {
        -(-t_ns / tphi_ns).exp_m1() / 2.0
    } else {
        0.0
    }
}

/// Gate error on `qubits`: with probability `e`, a uniformly random non-identity Pauli string on
/// them (drawn qubit by qubit, `I X Y Z` each 1/4, redrawn while all identity).
pub fn depolarize<T: Real>(state: &mut StateVec<T>, qubits: &[u32], e: f64, rng: &mut Rng) {
    if qubits.is_empty() || !rng.chance(e) {
        return;
    }
    loop {
        let (mut x, mut z) = (0u64, 0u64);
        for &q in qubits {
            match rng.below(4) {
                1 => x |= 1 << q,
                2 => {
                    x |= 1 << q;
                    z |= 1 << q;
                }
                3 => z |= 1 << q,
                _ => {}
            }
        }
        if x | z != 0 {
            ops::apply_pauli(state, x, z);
            return;
        }
    }
}

/// The recorded bit of a measurement whose true outcome is `bit`, after readout error.
pub fn readout_flip(bit: bool, p01: f64, p10: f64, rng: &mut Rng) -> bool {
    let p = if bit { p10 } else { p01 };
    bit ^ rng.chance(p)
}

/// The ASAP schedule of the module doc, without a state.
#[derive(Clone, Debug)]
struct Schedule {
    clock_ns: Vec<f64>,
    applied_ns: Vec<f64>,
    touched: Vec<bool>,
}

impl Schedule {
    fn new(n: u32) -> Self {
        Schedule {
            clock_ns: vec![0.0; n as usize],
            applied_ns: vec![0.0; n as usize],
            touched: vec![false; n as usize],
        }
    }

    /// Starts an operation on `qs`: returns its start time, and calls `decay(q, t)` for every
    /// qubit with pending decay.
    fn start(&mut self, qs: &[u32], mut decay: impl FnMut(u32, f64)) -> f64 {
        let s = qs
            .iter()
            .map(|&q| self.clock_ns[q as usize])
            .fold(0.0, f64::max);
        for &q in qs {
            let i = q as usize;
            if self.touched[i] {
                let t = s - self.applied_ns[i];
                if t > 0.0 {
                    decay(q, t);
                }
            }
            self.touched[i] = true;
            self.applied_ns[i] = s;
        }
        s
    }

    fn finish(&mut self, qs: &[u32], end_ns: f64) {
        for &q in qs {
            self.clock_ns[q as usize] = end_ns;
        }
    }

    fn barrier(&mut self, qs: &[u32]) {
        let all: Vec<u32>;
        let qs = if qs.is_empty() {
            all = (0..self.clock_ns.len() as u32).collect();
            &all
        } else {
            qs
        };
        let m = qs
            .iter()
            .map(|&q| self.clock_ns[q as usize])
            .fold(0.0, f64::max);
        for &q in qs {
            self.clock_ns[q as usize] = m;
        }
    }
}

/// The noise state of one trajectory: the device and the schedule's clocks. Used by
/// [`crate::exec::run`] around every operation.
#[derive(Clone, Debug)]
pub struct Trajectory<'d> {
    device: &'d Device,
    sched: Schedule,
    start_ns: f64,
}

impl<'d> Trajectory<'d> {
    /// A fresh trajectory on `n` qubits (all clocks at 0).
    pub fn new(device: &'d Device, n: u32) -> Self {
        Trajectory {
            device,
            sched: Schedule::new(n),
            start_ns: 0.0,
        }
    }

    /// Before an operation on `qubits`: applies their pending decay and fixes the start time.
    pub fn before<T: Real>(
        &mut self,
        state: &mut StateVec<T>,
        qubits: impl Iterator<Item = u32>,
        rng: &mut Rng,
    ) {
        let qs: Vec<u32> = qubits.collect();
        let d = self.device;
        self.start_ns = self.sched.start(&qs, |q, t| {
            relax(state, q, t, d.t1_ns(q), d.tphi_ns(q), rng);
        });
    }

    /// After gate `g`: its gate error, and its qubits' clocks advanced by its duration.
    pub fn after_gate<T: Real>(&mut self, state: &mut StateVec<T>, g: &Gate, rng: &mut Rng) {
        let qs: Vec<u32> = g.qubits().collect();
        depolarize(state, &qs, self.device.gate_error(g), rng);
        self.sched
            .finish(&qs, self.start_ns + self.device.gate_duration_ns(g));
    }

    /// After measuring `q` with true outcome `bit`: the recorded bit (readout error), and `q`'s
    /// clock advanced by the measurement's duration.
    pub fn after_measure(&mut self, q: u32, bit: bool, rng: &mut Rng) -> bool {
        let (p01, p10) = self.device.readout(q);
        self.sched
            .finish(&[q], self.start_ns + self.device.measure_duration_ns());
        readout_flip(bit, p01, p10, rng)
    }

    /// After resetting `q`: its clock advanced by the reset's duration.
    pub fn after_reset(&mut self, q: u32) {
        self.sched
            .finish(&[q], self.start_ns + self.device.reset_duration_ns());
    }

    /// A barrier over `qubits` (all when empty): their clocks aligned.
    pub fn barrier(&mut self, qubits: &[u32]) {
        self.sched.barrier(qubits);
    }
}

/// The predicted error of `c` on `d` (formula in the module doc); 0 on a noiseless device.
pub fn predicted_error(c: &Circuit, d: &Device) -> f64 {
    struct P<'a> {
        d: &'a Device,
        sched: Schedule,
        tau_ns: Vec<f64>,
        gates: f64,
        readout: f64,
    }
    impl P<'_> {
        fn walk(&mut self, ops: &[Op]) {
            for op in ops {
                let tau = &mut self.tau_ns;
                let mut add = |q: u32, t: f64| {
                    if let Some(x) = tau.get_mut(q as usize) {
                        *x += t;
                    }
                };
                match op {
                    Op::Gate(g) => {
                        let qs: Vec<u32> = g.qubits().collect();
                        let s = self.sched.start(&qs, &mut add);
                        self.gates *= 1.0 - self.d.gate_error(g);
                        self.sched.finish(&qs, s + self.d.gate_duration_ns(g));
                    }
                    Op::Measure { qubit, .. } => {
                        let s = self.sched.start(&[*qubit], &mut add);
                        let (p01, p10) = self.d.readout(*qubit);
                        self.readout *= 1.0 - (p01 + p10) / 2.0;
                        self.sched
                            .finish(&[*qubit], s + self.d.measure_duration_ns());
                    }
                    Op::Reset { qubit } => {
                        let s = self.sched.start(&[*qubit], &mut add);
                        self.sched.finish(&[*qubit], s + self.d.reset_duration_ns());
                    }
                    Op::Barrier { qubits } => self.sched.barrier(qubits),
                    Op::If {
                        then_ops, else_ops, ..
                    } => {
                        self.walk(then_ops);
                        self.walk(else_ops);
                    }
                }
            }
        }
    }
    let n = c.num_qubits.min(d.qubits());
    let mut p = P {
        d,
        sched: Schedule::new(c.num_qubits),
        tau_ns: vec![0.0; n as usize],
        gates: 1.0,
        readout: 1.0,
    };
    if crate::exec::validate(c).is_err() {
        return 1.0;
    }
    p.walk(&c.ops);
    let decay: f64 = (0..n)
        .map(|q| {
            let t = p.tau_ns[q as usize];
            (1.0 - damping_gamma(t, d.t1_ns(q))) * (1.0 - dephasing_pz(t, d.tphi_ns(q)))
        })
        .product();
    (1.0 - p.gates * decay * p.readout).clamp(0.0, 1.0)
}
