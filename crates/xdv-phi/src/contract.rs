//! Transform execution contracts: the coherence window, the Φ envelope, the predicted fidelity
//! and transmission of a mesh on a device, and admission.
//!
//! # Predicted fidelity
//!
//! The fidelity of the device's transfer matrix `U′` to the ideal `U` is
//! `F = |Tr(U†U′)|² / (N · Tr(U′†U′))`. The prediction splits the errors in two:
//!
//! - **systematic** (the same on every run, no seed): DAC quantisation, thermal crosstalk and
//!   per-MZI loss. Their realisation `U_s` is built exactly and `F_s` computed from it;
//! - **random** (drawn from the seed): calibration residuals, drift, laser phase diffusion and
//!   coupler errors. Each is a small unitary `exp(iεG)` at a point of the mesh, G Hermitian
//!   (written in the frame before its element), ε of variance σ². Expanding to second order,
//!   `E[F] = 1 − Σ σ² (Tr G² / N − (Tr G)² / N²)`: a phase error (G a rank-one projector) costs
//!   `σ²(N − 1)/N²` wherever it is, a coupler error (G ≅ σ_x on two modes) `2σ²/N`.
//!
//! and predicts `F = F_s · (1 − Σ …)` (the two agree with the joint expansion to second order).
//! The variances are σ_cal² + σ_d²·t per shifter (t the elapsed time in s), plus 2π·Δν·τ on
//! internal shifters, and σ_split² per coupler. Tests compare it with Monte Carlo over seeds.
//!
//! The **transmission** is the mean over input modes, `Tr(U_s†U_s)/N`, in dB (phase and coupler
//! errors are unitary and do not change it).
//!
//! # Coherence window
//!
//! The rms phase error of one shifter at time t after calibration is
//! `σ(t) = √(σ₀² + σ_d²·t)`, `σ₀² = σ_cal² + LSB²/12 + 2π·Δν·τ` (the DAC's rounding error taken
//! as uniform on ±LSB/2). The coherence window for a tolerance ε is the longest t with
//! `σ(t) ≤ ε`: `t_w = (ε² − σ₀²)/σ_d²` — unbounded without drift, zero when σ₀ ≥ ε.
//!
//! # Φ envelope
//!
//! For the program's input field x (channel 0; the model is wavelength-independent), the
//! predicted rms error of each output amplitude is `√(|Δ_i|² + Σ σ² |(V_k G f_k)_i|²)`: Δ the
//! systematic deviation (after removing the mean loss, which is the loss budget's business), the
//! sum the first-order random one (f_k the field before element k, V_k the product of elements
//! k.. to the output). Relative to the output field's norm it is the **amplitude error**; divided
//! by |a_i| (an upper bound on the phase's first-order error) it is the **phase error**, given
//! for modes carrying at least [`BRIGHT_FRACTION_MIN`] of the output power. Both are checked at
//! the window's end, where drift is largest.

use serde::Deserialize;
use thiserror::Error;
use toml::Spanned;

use crate::device::{toml_error, PhiDevice};
use crate::mesh::{Element, Mesh};
use crate::noise::{coupler, mul2, realise, upper_phase};
use crate::program::line_col;
use crate::program::Program;
use crate::sim::TRANSFER_MATRIX_MODES_MAX;
use crate::{PhiError, C64};

/// Most modes a prediction (which builds N × N transfer matrices) covers.
pub const PREDICT_MODES_MAX: usize = TRANSFER_MATRIX_MODES_MAX;
/// Least share of the output power for which a mode's phase error is checked.
pub const BRIGHT_FRACTION_MIN: f64 = 1e-3;
/// Largest contract file, in bytes.
pub const CONTRACT_FILE_BYTES_MAX: usize = 1 << 20;

/// The variance of one shifter's phase error from everything but drift, in rad²:
/// σ_cal² + LSB²/12 + 2π·Δν·τ.
pub fn static_phase_variance_rad2(device: &PhiDevice) -> f64 {
    let lsb = device.dac_lsb_rad();
    device.phase_calibration_residual_rad.powi(2)
        + lsb * lsb / 12.0
        + device.laser_phase_variance_rad2()
}

/// The predicted rms phase error of one shifter at `elapsed_ns` after calibration, in rad.
pub fn rms_phase_error_rad(device: &PhiDevice, elapsed_ns: f64) -> f64 {
    (static_phase_variance_rad2(device)
        + device.phase_drift_rad_per_sqrt_s.powi(2) * elapsed_ns * 1e-9)
        .sqrt()
}

/// The coherence window for a tolerance `tolerance_rad` on the rms phase error, in ns:
/// `(ε² − σ₀²)/σ_d²`; `f64::INFINITY` without drift (when σ₀ ≤ ε), 0 when σ₀ ≥ ε.
pub fn coherence_window_ns(device: &PhiDevice, tolerance_rad: f64) -> f64 {
    let s0 = static_phase_variance_rad2(device);
    let eps2 = tolerance_rad * tolerance_rad;
    if s0 >= eps2 {
        return 0.0;
    }
    let sd2 = device.phase_drift_rad_per_sqrt_s.powi(2);
    if sd2 == 0.0 {
        return f64::INFINITY;
    }
    (eps2 - s0) / sd2 * 1e9
}

/// A random error's generator, in the frame before its element.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Generator {
    Single(usize),
    Pair(usize, [[C64; 2]; 2]),
}

/// One random error: at element `element`, `exp(iεG)` with Var ε = `variance`.
#[derive(Clone, Copy, Debug)]
struct Term {
    element: usize,
    generator: Generator,
    variance: f64,
}

fn adjoint2(a: &[[C64; 2]; 2]) -> [[C64; 2]; 2] {
    [
        [a[0][0].conj(), a[1][0].conj()],
        [a[0][1].conj(), a[1][1].conj()],
    ]
}

fn conjugated(w: &[[C64; 2]; 2], g: &[[C64; 2]; 2]) -> [[C64; 2]; 2] {
    mul2(&adjoint2(w), &mul2(g, w))
}

const SIGMA_X: [[C64; 2]; 2] = [
    [C64::new(0.0, 0.0), C64::new(1.0, 0.0)],
    [C64::new(1.0, 0.0), C64::new(0.0, 0.0)],
];
const PROJ_0: [[C64; 2]; 2] = [
    [C64::new(1.0, 0.0), C64::new(0.0, 0.0)],
    [C64::new(0.0, 0.0), C64::new(0.0, 0.0)],
];

/// The random error terms of `mesh` on `device` at `elapsed_ns`.
fn random_terms(mesh: &Mesh, device: &PhiDevice, elapsed_ns: u64) -> Vec<Term> {
    let drift = device.phase_drift_rad_per_sqrt_s.powi(2) * elapsed_ns as f64 * 1e-9;
    let phase = device.phase_calibration_residual_rad.powi(2) + drift;
    let internal = phase + device.laser_phase_variance_rad2();
    let split = device.splitter_imbalance_rad.powi(2);
    let mut terms = Vec::new();
    for (k, e) in mesh.elements().iter().enumerate() {
        let mut push = |generator, variance: f64| {
            if variance > 0.0 {
                terms.push(Term {
                    element: k,
                    generator,
                    variance,
                });
            }
        };
        match *e {
            Element::Mzi { mode, c, s, e } => {
                let p_ext = upper_phase(e.arg());
                let c1 = mul2(&coupler(std::f64::consts::FRAC_PI_4), &p_ext);
                let int = mul2(&upper_phase(2.0 * s.atan2(c) + std::f64::consts::PI), &c1);
                push(Generator::Pair(mode, PROJ_0), phase);
                push(Generator::Pair(mode, conjugated(&p_ext, &SIGMA_X)), split);
                push(Generator::Pair(mode, conjugated(&c1, &PROJ_0)), internal);
                push(Generator::Pair(mode, conjugated(&int, &SIGMA_X)), split);
            }
            Element::Bs { mode, .. } => push(Generator::Pair(mode, SIGMA_X), split),
            Element::Phase { mode, .. } => push(Generator::Single(mode), phase),
            Element::Scale { .. } => {}
        }
    }
    terms
}

/// The predicted figures of a mesh on a device.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Prediction {
    /// The predicted fidelity `F_s · (1 − infidelity_random)`.
    pub fidelity: f64,
    /// The exact fidelity of the systematic realisation (DAC, crosstalk, loss).
    pub fidelity_systematic: f64,
    /// The second-order infidelity of the random errors, `Σ σ²(Tr G²/N − (Tr G)²/N²)`.
    pub infidelity_random: f64,
    /// The mean transmission `10·log10(Tr(U_s†U_s)/N)` in dB (−∞ when everything is absorbed).
    pub transmission_db: f64,
    /// The elapsed time since calibration it was predicted for, in ns.
    pub elapsed_ns: u64,
}

fn check_predictable(modes: usize) -> Result<(), PhiError> {
    if modes > PREDICT_MODES_MAX {
        return Err(PhiError::Limit {
            what: "the modes of a predicted transform".into(),
            value: modes as u64,
            max: PREDICT_MODES_MAX as u64,
            hint: "predictions build N × N transfer matrices; split the transform into smaller regions".into(),
        });
    }
    Ok(())
}

/// The device with only its systematic imperfections (DAC, crosstalk, loss).
fn systematic(device: &PhiDevice) -> PhiDevice {
    PhiDevice {
        splitter_imbalance_rad: 0.0,
        phase_calibration_residual_rad: 0.0,
        phase_drift_rad_per_sqrt_s: 0.0,
        laser_linewidth_hz: 0.0,
        ..device.clone()
    }
}

/// `|Tr(U†V)|² / (N · Tr(V†V))` for transfer matrices `u` (ideal) and `v` (device); 0 when `v`
/// absorbs everything.
pub fn fidelity(u: &crate::Matrix, v: &crate::Matrix) -> f64 {
    let n = u.n();
    let (mut tr, mut norm) = (C64::new(0.0, 0.0), 0.0);
    for (a, b) in u.data().iter().zip(v.data()) {
        tr += a.conj() * b;
        norm += b.norm_sqr();
    }
    if norm == 0.0 {
        0.0
    } else {
        tr.norm_sqr() / (n as f64 * norm)
    }
}

/// Predicts the fidelity and transmission of `mesh` on `device` at `elapsed_ns` after
/// calibration. Refuses meshes above [`PREDICT_MODES_MAX`] modes and devices that fail
/// [`PhiDevice::check`].
pub fn predict(mesh: &Mesh, device: &PhiDevice, elapsed_ns: u64) -> Result<Prediction, PhiError> {
    check_predictable(mesh.modes())?;
    let sys = realise(mesh, &systematic(device), 0, 0)?;
    let u = mesh.transfer_matrix();
    let v = sys.mesh.transfer_matrix();
    let n = mesh.modes() as f64;
    let fidelity_systematic = fidelity(&u, &v);
    let power: f64 = v.data().iter().map(|x| x.norm_sqr()).sum();
    let infidelity_random: f64 = random_terms(mesh, device, elapsed_ns)
        .iter()
        .map(|t| {
            let (tr, tr2) = match &t.generator {
                Generator::Single(_) => (1.0, 1.0),
                Generator::Pair(_, g) => {
                    let tr = (g[0][0] + g[1][1]).re;
                    let g2 = mul2(g, g);
                    (tr, (g2[0][0] + g2[1][1]).re)
                }
            };
            t.variance * (tr2 / n - tr * tr / (n * n))
        })
        .sum();
    Ok(Prediction {
        fidelity: (fidelity_systematic * (1.0 - infidelity_random)).max(0.0),
        fidelity_systematic,
        infidelity_random,
        transmission_db: 10.0 * (power / n).log10(),
        elapsed_ns,
    })
}

/// The Φ envelope: per-mode tolerances on the output field inside a window.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    /// Largest rms error of an output amplitude, relative to the output field's norm.
    pub amplitude_tolerance: f64,
    /// Largest rms phase error of a bright output mode, in rad.
    pub phase_tolerance_rad: f64,
}

/// The predicted envelope figures of one output mode.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ModeFigure {
    /// The output mode.
    pub mode: usize,
    /// Predicted rms amplitude error relative to the output field's norm.
    pub amplitude_error: f64,
    /// Predicted rms phase error in rad; `None` for a mode with less than
    /// [`BRIGHT_FRACTION_MIN`] of the output power.
    pub phase_error_rad: Option<f64>,
}

/// The 2 × 2 matrix of an ideal element on its pair, or its scalar.
enum Local {
    Pair(usize, [[C64; 2]; 2]),
    Single(usize, C64),
}

fn local(e: &Element) -> Local {
    match *e {
        Element::Mzi { mode, c, s, e } => Local::Pair(
            mode,
            [[e * c, C64::new(-s, 0.0)], [e * s, C64::new(c, 0.0)]],
        ),
        Element::Bs { mode, c, s } => Local::Pair(
            mode,
            [
                [C64::new(c, 0.0), C64::new(0.0, s)],
                [C64::new(0.0, s), C64::new(c, 0.0)],
            ],
        ),
        Element::Phase { mode, phasor } => Local::Single(mode, phasor),
        Element::Scale { mode, factor } => Local::Single(mode, C64::new(factor, 0.0)),
    }
}

/// Predicts the per-mode envelope figures of `mesh` on `device` at `elapsed_ns` for the input
/// field `input` (one amplitude per mode, not all zero).
pub fn predict_envelope(
    mesh: &Mesh,
    device: &PhiDevice,
    elapsed_ns: u64,
    input: &[C64],
) -> Result<Vec<ModeFigure>, PhiError> {
    let n = mesh.modes();
    check_predictable(n)?;
    if input.len() != n || input.iter().all(|a| a.norm_sqr() == 0.0) {
        return Err(PhiError::Shape {
            message: format!(
                "the envelope needs an input field of {n} amplitudes, not all zero ({} given)",
                input.len()
            ),
        });
    }
    // Forward: the ideal field before every element.
    let mut field = input.to_vec();
    let mut before: Vec<[C64; 2]> = Vec::with_capacity(mesh.elements().len());
    for e in mesh.elements() {
        match local(e) {
            Local::Pair(m, b) => {
                let (x, y) = (field[m], field[m + 1]);
                before.push([x, y]);
                field[m] = b[0][0] * x + b[0][1] * y;
                field[m + 1] = b[1][0] * x + b[1][1] * y;
            }
            Local::Single(m, z) => {
                before.push([field[m], C64::new(0.0, 0.0)]);
                field[m] *= z;
            }
        }
    }
    let ideal = field;
    let mut sys = input.to_vec();
    realise(mesh, &systematic(device), 0, 0)?
        .mesh
        .apply(&mut sys)?;
    let p_ideal: f64 = ideal.iter().map(|a| a.norm_sqr()).sum();
    let p_sys: f64 = sys.iter().map(|a| a.norm_sqr()).sum();
    let scale = if p_sys > 0.0 {
        (p_ideal / p_sys).sqrt()
    } else {
        0.0
    };
    let mut var: Vec<f64> = ideal
        .iter()
        .zip(&sys)
        .map(|(a, b)| (b * scale - a).norm_sqr())
        .collect();
    // Backward: V_k = E_{K−1} ⋯ E_k, by right-multiplying columns, and the random terms.
    let terms = random_terms(mesh, device, elapsed_ns);
    let mut v = crate::Matrix::identity(n);
    let mut t = terms.len();
    for (k, e) in mesh.elements().iter().enumerate().rev() {
        let d = v.data_mut();
        match local(e) {
            Local::Pair(m, b) => {
                for r in 0..n {
                    let (x, y) = (d[r * n + m], d[r * n + m + 1]);
                    d[r * n + m] = x * b[0][0] + y * b[1][0];
                    d[r * n + m + 1] = x * b[0][1] + y * b[1][1];
                }
            }
            Local::Single(m, z) => {
                for r in 0..n {
                    d[r * n + m] *= z;
                }
            }
        }
        while t > 0 && terms[t - 1].element == k {
            t -= 1;
            let term = &terms[t];
            let f = before[k];
            let d = v.data();
            for (r, out) in var.iter_mut().enumerate() {
                let j = match term.generator {
                    Generator::Single(m) => d[r * n + m] * f[0],
                    Generator::Pair(m, g) => {
                        let g0 = g[0][0] * f[0] + g[0][1] * f[1];
                        let g1 = g[1][0] * f[0] + g[1][1] * f[1];
                        d[r * n + m] * g0 + d[r * n + m + 1] * g1
                    }
                };
                *out += term.variance * j.norm_sqr();
            }
        }
    }
    let norm = p_ideal.sqrt();
    Ok(var
        .iter()
        .zip(&ideal)
        .enumerate()
        .map(|(mode, (v, a))| ModeFigure {
            mode,
            amplitude_error: v.sqrt() / norm,
            phase_error_rad: (a.norm_sqr() >= BRIGHT_FRACTION_MIN * p_ideal)
                .then(|| v.sqrt() / a.norm()),
        })
        .collect())
}

/// A transform execution contract: run `program`'s transform on `modes` × `channels` inside a
/// window of `window_ns` with at least `fidelity_min` and at most `loss_budget_db` of loss,
/// with the rms phase error of every shifter within `coherence_tolerance_rad` throughout, and
/// optionally inside a Φ envelope.
#[derive(Clone, Debug, PartialEq)]
pub struct Contract {
    /// The program file holding the transform (a path relative to the contract file).
    pub program: String,
    /// Spatial modes requested.
    pub modes: usize,
    /// Wavelength channels requested.
    pub channels: usize,
    /// The window's length, in ns (after the device's reconfiguration time).
    pub window_ns: u64,
    /// The least fidelity accepted, in [0, 1].
    pub fidelity_min: f64,
    /// The most loss accepted, in dB (≥ 0).
    pub loss_budget_db: f64,
    /// The tolerance ε on every shifter's rms phase error, in rad, that defines the coherence
    /// window.
    pub coherence_tolerance_rad: f64,
    /// The Φ envelope, if any.
    pub envelope: Option<Envelope>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContract {
    program: Spanned<String>,
    modes: Spanned<i64>,
    channels: Option<Spanned<i64>>,
    window_ns: Spanned<i64>,
    fidelity_min: Spanned<f64>,
    loss_budget_db: Spanned<f64>,
    coherence_tolerance_rad: Spanned<f64>,
    envelope: Option<Spanned<Envelope>>,
}

impl Contract {
    /// Reads and checks a contract in TOML; `origin` names it in errors (`file:line:column`).
    pub fn from_toml(text: &str, origin: &str) -> Result<Contract, PhiError> {
        if text.len() > CONTRACT_FILE_BYTES_MAX {
            return Err(PhiError::Limit {
                what: "the contract file size in bytes".into(),
                value: text.len() as u64,
                max: CONTRACT_FILE_BYTES_MAX as u64,
                hint: "a contract is a few lines; is this the right file?".into(),
            });
        }
        let raw: RawContract = toml::from_str(text).map_err(|e| toml_error(text, origin, &e))?;
        let err = |span: std::ops::Range<usize>, key: &str, message: String, hint: &str| {
            PhiError::Program {
                file: origin.into(),
                position: Some(line_col(text, span.start)),
                key: key.into(),
                message,
                hint: hint.into(),
            }
        };
        let count = |v: &Spanned<i64>, key: &str, max: i64| {
            let x = *v.get_ref();
            if (1..=max).contains(&x) {
                Ok(x as usize)
            } else {
                Err(err(
                    v.span(),
                    key,
                    format!("{key} = {x} is outside 1 ..= {max}"),
                    &format!("give a whole number of {key} from 1 to {max}"),
                ))
            }
        };
        let modes = count(&raw.modes, "modes", crate::device::DEVICE_MODES_MAX as i64)?;
        let channels = match &raw.channels {
            Some(c) => count(c, "channels", crate::device::DEVICE_CHANNELS_MAX as i64)?,
            None => 1,
        };
        let w = *raw.window_ns.get_ref();
        if !(1..=crate::device::ELAPSED_NS_MAX as i64).contains(&w) {
            return Err(err(
                raw.window_ns.span(),
                "window_ns",
                format!(
                    "window_ns = {w} is outside 1 ..= {}",
                    crate::device::ELAPSED_NS_MAX
                ),
                "give the window's length in whole nanoseconds",
            ));
        }
        let f = *raw.fidelity_min.get_ref();
        if !(0.0..=1.0).contains(&f) {
            return Err(err(
                raw.fidelity_min.span(),
                "fidelity_min",
                format!("fidelity_min = {f} is not in [0, 1]"),
                "give the least acceptable fidelity, e.g. 0.99",
            ));
        }
        let l = *raw.loss_budget_db.get_ref();
        if !(0.0..=1000.0).contains(&l) {
            return Err(err(
                raw.loss_budget_db.span(),
                "loss_budget_db",
                format!("loss_budget_db = {l} is not a loss in dB from 0 to 1000"),
                "give the most acceptable loss as a positive number of dB, e.g. 3.0",
            ));
        }
        let eps = *raw.coherence_tolerance_rad.get_ref();
        if !(eps > 0.0 && eps <= std::f64::consts::PI) {
            return Err(err(
                raw.coherence_tolerance_rad.span(),
                "coherence_tolerance_rad",
                format!("coherence_tolerance_rad = {eps} is not in (0, π]"),
                "give the tolerated rms phase error in radians, e.g. 0.05",
            ));
        }
        let envelope = match &raw.envelope {
            Some(e) => {
                let env = *e.get_ref();
                if !(env.amplitude_tolerance > 0.0 && env.amplitude_tolerance.is_finite()) {
                    return Err(err(
                        e.span(),
                        "envelope.amplitude_tolerance",
                        format!(
                            "amplitude_tolerance = {} is not a positive number",
                            env.amplitude_tolerance
                        ),
                        "give the tolerated relative amplitude error, e.g. 0.01",
                    ));
                }
                if !(env.phase_tolerance_rad > 0.0
                    && env.phase_tolerance_rad <= std::f64::consts::PI)
                {
                    return Err(err(
                        e.span(),
                        "envelope.phase_tolerance_rad",
                        format!(
                            "phase_tolerance_rad = {} is not in (0, π]",
                            env.phase_tolerance_rad
                        ),
                        "give the tolerated rms phase error in radians, e.g. 0.05",
                    ));
                }
                Some(env)
            }
            None => None,
        };
        let program = raw.program.get_ref().clone();
        if program.trim().is_empty() {
            return Err(err(
                raw.program.span(),
                "program",
                "the program path is empty".into(),
                "name the program file (TOML or JSON), relative to this contract",
            ));
        }
        Ok(Contract {
            program,
            modes,
            channels,
            window_ns: w as u64,
            fidelity_min: f,
            loss_budget_db: l,
            coherence_tolerance_rad: eps,
            envelope,
        })
    }
}

/// An admitted contract and its predicted figures.
#[derive(Clone, Debug, PartialEq)]
pub struct Admission {
    /// The fidelity and transmission predicted at the window's end.
    pub prediction: Prediction,
    /// The device's coherence window for the contract's tolerance, in ns (∞ without drift).
    pub coherence_window_ns: f64,
    /// The window's end after calibration: reconfiguration time + window, in ns.
    pub window_end_ns: u64,
    /// The predicted envelope figures per output mode (empty without an envelope).
    pub envelope: Vec<ModeFigure>,
}

/// Why a contract was refused; each carries the predicted and the required figures.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum Refusal {
    /// More modes than the device has.
    #[error("the contract asks for {requested} modes; the device has {available}; ask for fewer modes or use a larger device")]
    ModesExceedDevice {
        /// Modes asked for.
        requested: usize,
        /// Modes the device has.
        available: usize,
    },
    /// More channels than the device has.
    #[error("the contract asks for {requested} wavelength channels; the device has {available}; ask for fewer channels")]
    ChannelsExceedDevice {
        /// Channels asked for.
        requested: usize,
        /// Channels the device has.
        available: usize,
    },
    /// The program does not have the contract's modes and channels.
    #[error("the program has {program_modes} modes × {program_channels} channels but the contract declares {modes} × {channels}; make them agree")]
    ProgramMismatch {
        /// The program's modes.
        program_modes: usize,
        /// The program's channels.
        program_channels: usize,
        /// The contract's modes.
        modes: usize,
        /// The contract's channels.
        channels: usize,
    },
    /// The program needs more MZIs than the device's mesh has.
    #[error("the program uses {required} MZIs; the device's mesh has {available}; simplify the transform")]
    MzisExceedDevice {
        /// MZIs the program uses.
        required: usize,
        /// MZIs the device has.
        available: usize,
    },
    /// The window is longer than the device grants at all.
    #[error("the window of {window_ns} ns is longer than the device's limit of {window_ns_max} ns; ask for a shorter window")]
    WindowAboveDeviceLimit {
        /// The window asked for.
        window_ns: u64,
        /// The device's limit.
        window_ns_max: u64,
    },
    /// The window is longer than the coherence window for the contract's tolerance.
    #[error("the window of {window_ns} ns (ending {window_end_ns} ns after calibration, with the reconfiguration time) is longer than the coherence window of {coherence_window_ns:.0} ns for a tolerance of {tolerance_rad} rad; shorten the window or loosen the tolerance")]
    WindowExceedsCoherence {
        /// The window asked for.
        window_ns: u64,
        /// Reconfiguration time + window.
        window_end_ns: u64,
        /// The predicted coherence window.
        coherence_window_ns: f64,
        /// The contract's tolerance.
        tolerance_rad: f64,
    },
    /// The predicted fidelity is below the minimum.
    #[error("the predicted fidelity {predicted:.6} is below the required {required}; loosen fidelity_min, shorten the window or use a better device")]
    FidelityBelowMinimum {
        /// The predicted fidelity.
        predicted: f64,
        /// The contract's minimum.
        required: f64,
    },
    /// The predicted loss exceeds the budget.
    #[error("the predicted loss {predicted_loss_db:.4} dB exceeds the budget of {budget_db} dB; raise loss_budget_db or use a device with less loss per MZI")]
    LossOverBudget {
        /// The predicted loss (−transmission), in dB.
        predicted_loss_db: f64,
        /// The contract's budget.
        budget_db: f64,
    },
    /// An output mode would leave the envelope.
    #[error("output mode {mode}: the predicted {quantity} error {predicted:.4e} exceeds the envelope's tolerance {tolerance}; loosen the envelope or shorten the window")]
    EnvelopeViolated {
        /// The output mode.
        mode: usize,
        /// `"amplitude"` or `"phase"`.
        quantity: &'static str,
        /// The predicted rms error.
        predicted: f64,
        /// The envelope's tolerance.
        tolerance: f64,
    },
    /// The figures could not be predicted (too large, or a bad device).
    #[error("the contract cannot be assessed: {0}")]
    Unpredictable(PhiError),
}

/// Admits `contract` for `program` on `device`, or refuses it with the first reason in this
/// order: modes, channels, program shape, MZIs, window limit, coherence window, fidelity, loss,
/// envelope. Figures are predicted at the window's end (reconfiguration time + window).
pub fn admit(
    contract: &Contract,
    program: &Program,
    device: &PhiDevice,
) -> Result<Admission, Refusal> {
    if contract.modes > device.modes {
        return Err(Refusal::ModesExceedDevice {
            requested: contract.modes,
            available: device.modes,
        });
    }
    if contract.channels > device.channels {
        return Err(Refusal::ChannelsExceedDevice {
            requested: contract.channels,
            available: device.channels,
        });
    }
    if program.modes != contract.modes || program.channels != contract.channels {
        return Err(Refusal::ProgramMismatch {
            program_modes: program.modes,
            program_channels: program.channels,
            modes: contract.modes,
            channels: contract.channels,
        });
    }
    let mesh = program.mesh();
    let mzis = mesh
        .elements()
        .iter()
        .filter(|e| matches!(e, Element::Mzi { .. }))
        .count();
    if mzis > device.limits.mzis_max {
        return Err(Refusal::MzisExceedDevice {
            required: mzis,
            available: device.limits.mzis_max,
        });
    }
    if contract.window_ns > device.limits.window_ns_max {
        return Err(Refusal::WindowAboveDeviceLimit {
            window_ns: contract.window_ns,
            window_ns_max: device.limits.window_ns_max,
        });
    }
    let window_end_ns = device
        .reconfiguration_time_ns
        .saturating_add(contract.window_ns);
    let cw = coherence_window_ns(device, contract.coherence_tolerance_rad);
    if window_end_ns as f64 > cw {
        return Err(Refusal::WindowExceedsCoherence {
            window_ns: contract.window_ns,
            window_end_ns,
            coherence_window_ns: cw,
            tolerance_rad: contract.coherence_tolerance_rad,
        });
    }
    let prediction = predict(&mesh, device, window_end_ns).map_err(Refusal::Unpredictable)?;
    if prediction.fidelity.is_nan() || prediction.fidelity < contract.fidelity_min {
        return Err(Refusal::FidelityBelowMinimum {
            predicted: prediction.fidelity,
            required: contract.fidelity_min,
        });
    }
    let loss = -prediction.transmission_db;
    if loss.is_nan() || loss > contract.loss_budget_db {
        return Err(Refusal::LossOverBudget {
            predicted_loss_db: loss,
            budget_db: contract.loss_budget_db,
        });
    }
    let mut envelope = Vec::new();
    if let Some(env) = &contract.envelope {
        let input = program.input.first().map(Vec::as_slice).unwrap_or(&[]);
        envelope = predict_envelope(&mesh, device, window_end_ns, input)
            .map_err(Refusal::Unpredictable)?;
        for f in &envelope {
            if f.amplitude_error > env.amplitude_tolerance {
                return Err(Refusal::EnvelopeViolated {
                    mode: f.mode,
                    quantity: "amplitude",
                    predicted: f.amplitude_error,
                    tolerance: env.amplitude_tolerance,
                });
            }
            if let Some(p) = f.phase_error_rad.filter(|p| *p > env.phase_tolerance_rad) {
                return Err(Refusal::EnvelopeViolated {
                    mode: f.mode,
                    quantity: "phase",
                    predicted: p,
                    tolerance: env.phase_tolerance_rad,
                });
            }
        }
    }
    Ok(Admission {
        prediction,
        coherence_window_ns: cw,
        window_end_ns,
        envelope,
    })
}

impl Refusal {
    /// The reason's name (the variant), e.g. `"FidelityBelowMinimum"`.
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::ModesExceedDevice { .. } => "ModesExceedDevice",
            Refusal::ChannelsExceedDevice { .. } => "ChannelsExceedDevice",
            Refusal::ProgramMismatch { .. } => "ProgramMismatch",
            Refusal::MzisExceedDevice { .. } => "MzisExceedDevice",
            Refusal::WindowAboveDeviceLimit { .. } => "WindowAboveDeviceLimit",
            Refusal::WindowExceedsCoherence { .. } => "WindowExceedsCoherence",
            Refusal::FidelityBelowMinimum { .. } => "FidelityBelowMinimum",
            Refusal::LossOverBudget { .. } => "LossOverBudget",
            Refusal::EnvelopeViolated { .. } => "EnvelopeViolated",
            Refusal::Unpredictable(_) => "Unpredictable",
        }
    }

    /// The reason's figures as a JSON object (the variant's fields; an infinite coherence
    /// window is `null`).
    pub fn figures(&self) -> serde_json::Value {
        use serde_json::json;
        let finite = |x: f64| {
            if x.is_finite() {
                json!(x)
            } else {
                serde_json::Value::Null
            }
        };
        match self {
            Refusal::ModesExceedDevice {
                requested,
                available,
            }
            | Refusal::ChannelsExceedDevice {
                requested,
                available,
            } => json!({"requested": requested, "available": available}),
            Refusal::ProgramMismatch {
                program_modes,
                program_channels,
                modes,
                channels,
            } => json!({"program_modes": program_modes, "program_channels": program_channels,
                        "modes": modes, "channels": channels}),
            Refusal::MzisExceedDevice {
                required,
                available,
            } => json!({"required": required, "available": available}),
            Refusal::WindowAboveDeviceLimit {
                window_ns,
                window_ns_max,
            } => json!({"window_ns": window_ns, "window_ns_max": window_ns_max}),
            Refusal::WindowExceedsCoherence {
                window_ns,
                window_end_ns,
                coherence_window_ns,
                tolerance_rad,
            } => json!({"window_ns": window_ns, "window_end_ns": window_end_ns,
                        "coherence_window_ns": finite(*coherence_window_ns),
                        "tolerance_rad": tolerance_rad}),
            Refusal::FidelityBelowMinimum {
                predicted,
                required,
            } => json!({"predicted": finite(*predicted), "required": required}),
            Refusal::LossOverBudget {
                predicted_loss_db,
                budget_db,
            } => json!({"predicted_loss_db": finite(*predicted_loss_db), "budget_db": budget_db}),
            Refusal::EnvelopeViolated {
                mode,
                quantity,
                predicted,
                tolerance,
            } => json!({"mode": mode, "quantity": quantity, "predicted": finite(*predicted),
                        "tolerance": tolerance}),
            Refusal::Unpredictable(e) => json!({"error": e.to_string()}),
        }
    }
}
