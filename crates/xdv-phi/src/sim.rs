//! Running a program on a field buffer per wavelength channel.
//!
//! Two paths give the same result without noise (to ~1e−12, tested): the reference applies the
//! program's mesh element by element, MZI by MZI (where a noise model will act per element); the
//! fast path builds the program's transfer matrix once and multiplies each channel's field by it.
//!
//! The device is ideal for now: no noise model yet, so `predicted_fidelity` is 1.0 by definition;
//! `seed` drives only the detection at the end (`crate::detect`).

use crate::program::Program;
use crate::{PhiError, C64};

/// Largest program, in modes, that the transfer-matrix path builds (its matrix is N² complex
/// numbers: 64 MiB at 2048 modes).
pub const TRANSFER_MATRIX_MODES_MAX: usize = 2048;

/// How to run a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Path {
    /// Element by element, MZI by MZI (the reference).
    #[default]
    Reference,
    /// Through the compiled transfer matrix (the fast path for many channels or repeated runs).
    TransferMatrix,
}

/// The result of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct RunResult {
    /// Spatial modes N.
    pub modes: usize,
    /// Wavelength channels W.
    pub channels: usize,
    /// Output amplitudes, `amplitudes[w][m]`.
    pub amplitudes: Vec<Vec<C64>>,
    /// Output intensities |a|², `intensities[w][m]` (noise-free).
    pub intensities: Vec<Vec<f64>>,
    /// 10·log10(output power / input power) over all modes and channels, in dB; −∞ when all
    /// light is absorbed.
    pub transmission_db: f64,
    /// The predicted fidelity of the device's transform to the ideal one: 1.0 (ideal device; the
    /// noise model is not built yet).
    pub predicted_fidelity: f64,
    /// The program's detection of the output field (`crate::detect`), drawn from the seed.
    pub detection: crate::detect::Detection,
    /// The program's optical path delay and `matvec` scales.
    pub report: crate::program::ProgramReport,
}

impl RunResult {
    /// The result as JSON: `{"modes", "channels", "amplitudes", "intensities",
    /// "transmission_db", "predicted_fidelity"}`, amplitudes as `[re, im]`. With one channel,
    /// `amplitudes` and `intensities` are flat lists over modes; with several, one list per
    /// channel. A transmission of −∞ is written as `null`.
    pub fn to_json(&self) -> serde_json::Value {
        let amps: Vec<serde_json::Value> = self
            .amplitudes
            .iter()
            .map(|ch| {
                serde_json::Value::Array(
                    ch.iter().map(|a| serde_json::json!([a.re, a.im])).collect(),
                )
            })
            .collect();
        let ints: Vec<serde_json::Value> = self
            .intensities
            .iter()
            .map(|ch| serde_json::json!(ch))
            .collect();
        let (amplitudes, intensities) = if self.channels == 1 {
            (amps[0].clone(), ints[0].clone())
        } else {
            (
                serde_json::Value::Array(amps),
                serde_json::Value::Array(ints),
            )
        };
        let mut doc = serde_json::json!({
            "modes": self.modes,
            "channels": self.channels,
            "amplitudes": amplitudes,
            "intensities": intensities,
            "transmission_db": if self.transmission_db.is_finite() { serde_json::json!(self.transmission_db) } else { serde_json::Value::Null },
            "predicted_fidelity": self.predicted_fidelity,
        });
        doc["detection"] = self.detection.to_json();
        doc["optical_delay_ps"] = serde_json::json!(self.report.optical_delay_ps);
        doc["matvec"] = self.report.to_json()["matvec"].take();
        doc
    }
}

/// Runs a program on the reference path (element by element). `seed` drives the detection's
/// noise (the ideal device itself draws nothing).
pub fn run(program: &Program, seed: u64) -> Result<RunResult, PhiError> {
    run_with(program, seed, Path::Reference)
}

/// Runs a program on the given path.
pub fn run_with(program: &Program, seed: u64, path: Path) -> Result<RunResult, PhiError> {
    let mesh = program.mesh();
    let amplitudes: Vec<Vec<C64>> = match path {
        Path::Reference => {
            let mut out = program.input.clone();
            for (w, field) in out.iter_mut().enumerate() {
                if program.is_channel_independent() {
                    mesh.apply(field)?;
                } else {
                    program.mesh_for_channel(w).apply(field)?;
                }
            }
            out
        }
        Path::TransferMatrix => {
            if program.modes > TRANSFER_MATRIX_MODES_MAX {
                return Err(PhiError::Limit {
                    what: "the modes for the transfer-matrix path".into(),
                    value: program.modes as u64,
                    max: TRANSFER_MATRIX_MODES_MAX as u64,
                    hint: "run on the reference path".into(),
                });
            }
            let t = mesh.transfer_matrix();
            (program.input.iter().enumerate())
                .map(|(w, field)| match program.is_channel_independent() {
                    true => t.apply(field),
                    false => program.mesh_for_channel(w).transfer_matrix().apply(field),
                })
                .collect()
        }
    };
    let intensities: Vec<Vec<f64>> = amplitudes
        .iter()
        .map(|ch| ch.iter().map(|a| a.norm_sqr()).collect())
        .collect();
    let p_in: f64 = program.input.iter().flatten().map(|a| a.norm_sqr()).sum();
    let p_out: f64 = intensities.iter().flatten().sum();
    let detection = crate::detect::detect(&program.detect, &amplitudes, seed)?;
    Ok(RunResult {
        modes: program.modes,
        channels: program.channels,
        amplitudes,
        intensities,
        transmission_db: 10.0 * (p_out / p_in).log10(),
        predicted_fidelity: 1.0,
        detection,
        report: program.report(),
    })
}
