//! Running a program on a field buffer per wavelength channel.
//!
//! Two paths give the same result without noise (to ~1e−12, tested): the reference applies the
//! program's mesh element by element, MZI by MZI (where a noise model will act per element); the
//! fast path builds the program's transfer matrix once and multiplies each channel's field by it.
//!
//! [`run`] and [`run_with`] run on the ideal device: `predicted_fidelity` is 1.0 by definition and
//! `seed` drives only the detection at the end (`crate::detect`). [`run_on_device`] realises the
//! program's mesh on a [`PhiDevice`] with a seed at a time after calibration ([`crate::noise`]),
//! applies it element by element, and reports the predicted fidelity of that device for that
//! mesh ([`crate::contract::predict`]).

use crate::contract::{predict, PREDICT_MODES_MAX};
use crate::device::PhiDevice;
use crate::mesh::Element;
use crate::noise::realise;
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
    /// The predicted fidelity of the device's transform to the ideal one: 1.0 on the ideal
    /// device, the model's prediction ([`crate::contract::predict`]) from [`run_on_device`].
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
    result(program, amplitudes, 1.0, seed)
}

fn result(
    program: &Program,
    amplitudes: Vec<Vec<C64>>,
    predicted_fidelity: f64,
    seed: u64,
) -> Result<RunResult, PhiError> {
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
        predicted_fidelity,
        detection,
        report: program.report(),
    })
}

/// Runs a program on `device` with `seed`, `elapsed_ns` after the device's calibration: the
/// program's mesh is realised with the device's errors ([`crate::noise::realise`]) and applied
/// to each channel's field MZI by MZI; `transmission_db` is the run's, `predicted_fidelity` the
/// model's for this mesh at this time. Refuses a program with more modes, channels or MZIs than
/// the device has, and (on a device that is not ideal) one above
/// [`crate::contract::PREDICT_MODES_MAX`] modes. On an ideal device the result equals [`run`]'s
/// bit for bit.
pub fn run_on_device(
    program: &Program,
    device: &PhiDevice,
    seed: u64,
    elapsed_ns: u64,
) -> Result<RunResult, PhiError> {
    let fits = |what: &str, value: usize, max: usize| {
        if value > max {
            Err(PhiError::Limit {
                what: format!("the program's {what}"),
                value: value as u64,
                max: max as u64,
                hint: format!(
                    "the device `{}` has {max}; use a larger device or a smaller program",
                    device.name
                ),
            })
        } else {
            Ok(())
        }
    };
    fits("modes", program.modes, device.modes)?;
    fits("wavelength channels", program.channels, device.channels)?;
    let mesh = program.mesh();
    let mzis = mesh
        .elements()
        .iter()
        .filter(|e| matches!(e, Element::Mzi { .. }))
        .count();
    fits("MZIs", mzis, device.limits.mzis_max)?;
    // One realisation per distinct channel mesh (delays make channels differ), from the same
    // seed: the static errors belong to the chip, not to the wavelength.
    let realised = realise(&mesh, device, seed, elapsed_ns)?;
    let mut amplitudes = program.input.clone();
    for (w, field) in amplitudes.iter_mut().enumerate() {
        if program.is_channel_independent() {
            realised.mesh.apply(field)?;
        } else {
            realise(&program.mesh_for_channel(w), device, seed, elapsed_ns)?
                .mesh
                .apply(field)?;
        }
    }
    let predicted_fidelity = if device.is_ideal() {
        1.0
    } else {
        if program.modes > PREDICT_MODES_MAX {
            fits(
                "modes (for a prediction on a noisy device)",
                program.modes,
                PREDICT_MODES_MAX,
            )?;
        }
        predict(&mesh, device, elapsed_ns)?.fidelity
    };
    result(program, amplitudes, predicted_fidelity, seed)
}
