//! The reference engine: for each gate, for every assignment of the non-target qubits that
//! satisfies the controls, gathers the `2^k` amplitudes of the targets, multiplies by the matrix
//! in `f64` and scatters them back. Slow, obviously correct, and the oracle for the fast engine.

use super::Engine;
use crate::circuit::Gate;
use crate::real::Real;
use crate::state::StateVec;
use num_complex::Complex;

/// The scalar reference engine.
#[derive(Clone, Copy, Debug, Default)]
pub struct Reference;

impl<T: Real> Engine<T> for Reference {
    fn name(&self) -> &'static str {
        "reference"
    }

    fn apply_gates(&self, state: &mut StateVec<T>, gates: &[Gate]) {
        for g in gates {
            apply_gate(state, g);
        }
    }
}

/// Applies one gate, straight from the definition.
pub fn apply_gate<T: Real>(state: &mut StateVec<T>, g: &Gate) {
    let amps = state.amplitudes_mut();
    let k = g.targets.len();
    let dim = 1usize << k;
    assert_eq!(g.matrix.dim, dim, "gate {}: matrix dimension", g.name);
    let tmask: usize = g.targets.iter().map(|&q| 1usize << q).sum();
    let (mut cmask, mut cval) = (0usize, 0usize);
    for (i, &c) in g.controls.iter().enumerate() {
        cmask |= 1 << c;
        if g.ctrl_state >> i & 1 == 1 {
            cval |= 1 << c;
        }
    }
    let offset = |sub: usize| -> usize {
        g.targets
            .iter()
            .enumerate()
            .map(|(j, &q)| ((sub >> j) & 1) << q)
            .sum()
    };
    let offsets: Vec<usize> = (0..dim).map(offset).collect();
    let mut buf = vec![Complex::new(0.0f64, 0.0); dim];
    for base in 0..amps.len() {
        if base & tmask != 0 || base & cmask != cval {
            continue;
        }
        for (s, b) in buf.iter_mut().enumerate() {
            let a = amps[base | offsets[s]];
            *b = Complex::new(a.re.to_f64(), a.im.to_f64());
        }
        for r in 0..dim {
            let mut acc = Complex::new(0.0f64, 0.0);
            for (c, b) in buf.iter().enumerate() {
                acc += g.matrix.data[r * dim + c] * b;
            }
            amps[base | offsets[r]] = T::c(acc);
        }
    }
}
