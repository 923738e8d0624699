//! The Φ device description: what a (real or imagined) programmable photonic mesh has and how
//! imperfect it is — modes, wavelength channels, per-MZI loss, splitter imbalance, phase
//! calibration residual, DAC resolution, thermal crosstalk, phase drift, laser linewidth,
//! reconfiguration time, bar-state extinction and limits — read from TOML.
//!
//! [`EXAMPLE_TOML`] is a complete, commented example (`xdv phi example-device` prints it);
//! `docs/phi.md` ("Device, noise and contracts") documents every key. Unknown keys and bad
//! values are refused with `file:line:column`, the key and a hint, like the program parser.
//! [`crate::noise`] turns a device and a seed into the physical mesh actually applied.

use serde::Deserialize;
use toml::Spanned;

use crate::PhiError;

/// Largest device file, in bytes.
pub const DEVICE_FILE_BYTES_MAX: usize = 1 << 20;
/// Most spatial modes a device may declare.
pub const DEVICE_MODES_MAX: usize = 4096;
/// Most wavelength channels a device may declare.
pub const DEVICE_CHANNELS_MAX: usize = 64;
/// Most DAC bits (a 2^32-level phase DAC is already far below any other error).
pub const DAC_BITS_MAX: u32 = 32;
/// Largest σ of any static or drift phase error accepted, in radians (beyond this the
/// second-order predictions are meaningless and the device is not a mesh one can program).
pub const PHASE_SIGMA_RAD_MAX: f64 = 1.0;
/// Longest elapsed time since calibration that the drift model covers, in nanoseconds
/// (2^40 ns ≈ 18.3 minutes; the drift path is built on this horizon, see [`crate::noise`]).
pub const ELAPSED_NS_MAX: u64 = 1 << 40;

/// The example device file: a 16-mode, 4-channel thermo-optic silicon-nitride-like mesh with
/// figures typical of published programmable meshes (0.1–0.3 dB per MZI, −25 to −35 dB bar
/// extinction, 12–16-bit DACs, mrad-level calibration residuals).
pub const EXAMPLE_TOML: &str = r#"# An XDV Φ device description (docs/phi.md, "Device, noise and contracts").
name = "example-mesh-16"
modes = 16                              # spatial modes, 1 ..= 4096
channels = 4                            # wavelength channels, 1 ..= 64
channel_wavelengths_nm = [1548.51, 1549.32, 1550.12, 1550.92]   # one per channel, ascending

mzi_loss_db = 0.2                       # insertion loss of one MZI, dB (both arms), 0 ..= 10
splitter_imbalance_rad = 0.01           # σ of each directional coupler's angle around π/4, rad
phase_calibration_residual_rad = 0.002  # σ of each shifter's static calibration error, rad
dac_bits = 14                           # phase DAC resolution; 0 = analog (no quantisation)
dac_range_rad = 6.283185307179586       # full scale of the phase DAC, rad (≥ 2π)
thermal_crosstalk = 0.001               # fraction of a shifter's phase seen by each neighbour
phase_drift_rad_per_sqrt_s = 0.001      # σ_d: drift σ_d·√t per shifter, a random walk
laser_linewidth_hz = 100e3              # Δν of the source laser (Lorentzian FWHM), Hz
arm_delay_mismatch_ps = 0.05            # residual delay between an MZI's two arms, ps
reconfiguration_time_ns = 10000         # time to load new phases (thermal settling), ns
bar_extinction_db = -30.0               # power leaking through a bar-state MZI, dB (≤ 0; -inf = none)

[limits]
mzis_max = 120                          # MZIs the mesh has (16·15/2 for a full rectangle)
window_ns_max = 1000000000              # longest coherence window granted, ns (1 s)
"#;

/// A Φ device: modes, channels, imperfections and limits. Build one with
/// [`PhiDevice::from_toml`] (checked) or [`PhiDevice::ideal`]; [`PhiDevice::check`] validates one
/// built by hand.
#[derive(Clone, Debug, PartialEq)]
pub struct PhiDevice {
    /// The device's name, used in messages.
    pub name: String,
    /// Spatial modes the device has.
    pub modes: usize,
    /// Wavelength channels the device has.
    pub channels: usize,
    /// The centre wavelength of each channel, in nm (descriptive: the model is
    /// wavelength-independent).
    pub channel_wavelengths_nm: Vec<f64>,
    /// Insertion loss of one MZI in dB, the same on both arms (a power factor 10^(−L/10)).
    pub mzi_loss_db: f64,
    /// σ of every directional coupler's angle error around its nominal value, in radians; each
    /// coupler's error is static, drawn once from the seed.
    pub splitter_imbalance_rad: f64,
    /// σ of every phase shifter's static calibration residual, in radians, drawn once per
    /// shifter from the seed.
    pub phase_calibration_residual_rad: f64,
    /// Phase DAC resolution in bits; 0 means an analog drive (no quantisation).
    pub dac_bits: u32,
    /// Full scale of the phase DAC in radians (≥ 2π): one LSB is `dac_range_rad / 2^dac_bits`.
    pub dac_range_rad: f64,
    /// Fraction κ of a shifter's (wrapped) phase that appears on each of its neighbours.
    pub thermal_crosstalk: f64,
    /// σ_d in rad/√s: each shifter's phase performs a random walk with σ_d·√t after calibration.
    pub phase_drift_rad_per_sqrt_s: f64,
    /// The laser's linewidth Δν in Hz (Lorentzian full width at half maximum).
    pub laser_linewidth_hz: f64,
    /// The residual delay τ between an MZI's two arms in picoseconds; with the linewidth it gives
    /// the internal phase a random error of variance 2π·Δν·τ per run.
    pub arm_delay_mismatch_ps: f64,
    /// Time to load a new set of phases (thermal settling), in nanoseconds; a contract's window
    /// starts after it.
    pub reconfiguration_time_ns: u64,
    /// Power leaking through an MZI held in the bar state, in dB (≤ 0; −∞ for none): the
    /// specified worst case used by [`crate::isolation`] for the MZIs between tenants' regions.
    pub bar_extinction_db: f64,
    /// The device's limits.
    pub limits: DeviceLimits,
}

/// A device's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceLimits {
    /// MZIs the device's mesh has: a program with more cannot be mapped onto it.
    pub mzis_max: usize,
    /// The longest coherence window the device grants, in nanoseconds.
    pub window_ns_max: u64,
}

impl PhiDevice {
    /// A perfect device with `modes` modes and `channels` channels: no loss, no imbalance, no
    /// phase errors of any kind, perfect extinction, an analog drive; a full rectangular mesh's
    /// MZIs (N(N−1)/2, at least one) and windows up to [`ELAPSED_NS_MAX`].
    pub fn ideal(modes: usize, channels: usize) -> PhiDevice {
        PhiDevice {
            name: "ideal".into(),
            modes,
            channels,
            channel_wavelengths_nm: (0..channels).map(|w| 1550.0 + 0.8 * w as f64).collect(),
            mzi_loss_db: 0.0,
            splitter_imbalance_rad: 0.0,
            phase_calibration_residual_rad: 0.0,
            dac_bits: 0,
            dac_range_rad: std::f64::consts::TAU,
            thermal_crosstalk: 0.0,
            phase_drift_rad_per_sqrt_s: 0.0,
            laser_linewidth_hz: 0.0,
            arm_delay_mismatch_ps: 0.0,
            reconfiguration_time_ns: 0,
            bar_extinction_db: f64::NEG_INFINITY,
            limits: DeviceLimits {
                mzis_max: (modes.saturating_mul(modes.saturating_sub(1)) / 2).max(1),
                window_ns_max: ELAPSED_NS_MAX,
            },
        }
    }

    /// The example device ([`EXAMPLE_TOML`]).
    pub fn example() -> PhiDevice {
        match PhiDevice::from_toml(EXAMPLE_TOML, "EXAMPLE_TOML") {
            Ok(d) => d,
            // The embedded example is tested to parse; this arm is unreachable in practice.
            Err(e) => unreachable!("the embedded example device does not parse: {e}"),
        }
    }

    /// One DAC LSB in radians (0 for an analog drive).
    pub fn dac_lsb_rad(&self) -> f64 {
        if self.dac_bits == 0 {
            0.0
        } else {
            self.dac_range_rad / 2f64.powi(self.dac_bits as i32)
        }
    }

    /// The power leakage ℓ = 10^(bar_extinction_db/10) through a bar-state MZI (0 for −∞ dB).
    pub fn bar_leakage(&self) -> f64 {
        10f64.powf(self.bar_extinction_db / 10.0)
    }

    /// The variance of the internal phase error from laser phase diffusion, in rad²:
    /// 2π·Δν·τ with τ the arm delay mismatch.
    pub fn laser_phase_variance_rad2(&self) -> f64 {
        std::f64::consts::TAU * self.laser_linewidth_hz * self.arm_delay_mismatch_ps * 1e-12
    }

    /// Whether the device has no imperfection at all: runs on it equal ideal runs bit for bit.
    pub fn is_ideal(&self) -> bool {
        self.mzi_loss_db == 0.0
            && self.splitter_imbalance_rad == 0.0
            && self.phase_calibration_residual_rad == 0.0
            && self.dac_bits == 0
            && self.thermal_crosstalk == 0.0
            && self.phase_drift_rad_per_sqrt_s == 0.0
            && self.laser_phase_variance_rad2() == 0.0
    }

    /// Checks every value against its rule (the same rules as the file reader), for a device
    /// built by hand.
    pub fn check(&self) -> Result<(), PhiError> {
        let v = Validator {
            text: "",
            file: "(device)",
        };
        let s = |_: &str| 0..0;
        let mut d = self.clone();
        v.fill(
            &mut d,
            &RawFields {
                modes: Some(spanned(self.modes as i64, s("modes"))),
                channels: Some(spanned(self.channels as i64, s("channels"))),
                channel_wavelengths_nm: Some(spanned(self.channel_wavelengths_nm.clone(), 0..0)),
                mzi_loss_db: Some(spanned(self.mzi_loss_db, 0..0)),
                splitter_imbalance_rad: Some(spanned(self.splitter_imbalance_rad, 0..0)),
                phase_calibration_residual_rad: Some(spanned(
                    self.phase_calibration_residual_rad,
                    0..0,
                )),
                dac_bits: Some(spanned(self.dac_bits as i64, 0..0)),
                dac_range_rad: Some(spanned(self.dac_range_rad, 0..0)),
                thermal_crosstalk: Some(spanned(self.thermal_crosstalk, 0..0)),
                phase_drift_rad_per_sqrt_s: Some(spanned(self.phase_drift_rad_per_sqrt_s, 0..0)),
                laser_linewidth_hz: Some(spanned(self.laser_linewidth_hz, 0..0)),
                arm_delay_mismatch_ps: Some(spanned(self.arm_delay_mismatch_ps, 0..0)),
                reconfiguration_time_ns: Some(spanned(
                    i64::try_from(self.reconfiguration_time_ns).unwrap_or(i64::MAX),
                    0..0,
                )),
                bar_extinction_db: Some(spanned(self.bar_extinction_db, 0..0)),
                mzis_max: Some(spanned(
                    i64::try_from(self.limits.mzis_max).unwrap_or(i64::MAX),
                    0..0,
                )),
                window_ns_max: Some(spanned(
                    i64::try_from(self.limits.window_ns_max).unwrap_or(i64::MAX),
                    0..0,
                )),
            },
        )
    }

    /// Reads and checks a device description in TOML; `origin` (a file name) names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<PhiDevice, PhiError> {
        if text.len() > DEVICE_FILE_BYTES_MAX {
            return Err(PhiError::Limit {
                what: "the device file size in bytes".into(),
                value: text.len() as u64,
                max: DEVICE_FILE_BYTES_MAX as u64,
                hint: "a device description is a few dozen lines; is this the right file?".into(),
            });
        }
        let raw: RawDevice = toml::from_str(text).map_err(|e| toml_error(text, origin, &e))?;
        let v = Validator { text, file: origin };
        let name = raw.name.get_ref().trim().to_string();
        if name.is_empty() {
            return Err(v.err(
                raw.name.span(),
                "name",
                "the name is empty".into(),
                "give the device a name, e.g. name = \"mesh-16\"",
            ));
        }
        let mut d = PhiDevice::ideal(1, 1);
        d.name = name;
        let limits = raw.limits.unwrap_or_default();
        v.fill(
            &mut d,
            &RawFields {
                modes: Some(raw.modes),
                channels: raw.channels,
                channel_wavelengths_nm: raw.channel_wavelengths_nm,
                mzi_loss_db: raw.mzi_loss_db,
                splitter_imbalance_rad: raw.splitter_imbalance_rad,
                phase_calibration_residual_rad: raw.phase_calibration_residual_rad,
                dac_bits: raw.dac_bits,
                dac_range_rad: raw.dac_range_rad,
                thermal_crosstalk: raw.thermal_crosstalk,
                phase_drift_rad_per_sqrt_s: raw.phase_drift_rad_per_sqrt_s,
                laser_linewidth_hz: raw.laser_linewidth_hz,
                arm_delay_mismatch_ps: raw.arm_delay_mismatch_ps,
                reconfiguration_time_ns: raw.reconfiguration_time_ns,
                bar_extinction_db: raw.bar_extinction_db,
                mzis_max: limits.mzis_max,
                window_ns_max: limits.window_ns_max,
            },
        )?;
        Ok(d)
    }
}

fn spanned<T>(v: T, span: std::ops::Range<usize>) -> Spanned<T> {
    Spanned::new(span, v)
}

/// A TOML syntax or schema error as a located [`PhiError::Program`].
pub(crate) fn toml_error(text: &str, origin: &str, e: &toml::de::Error) -> PhiError {
    let message = e.message().trim().to_string();
    let start = e.span().map_or(0, |s| s.start);
    let (line, column) = line_col(text, start);
    let field = ["unknown field `", "missing field `", "duplicate key `"]
        .iter()
        .find_map(|p| message.find(p).map(|i| &message[i + p.len()..]))
        .and_then(|rest| rest.split('`').next())
        .map(str::to_string);
    let key = field
        .or_else(|| key_on_line(text, line))
        .unwrap_or_else(|| "(document)".into());
    let hint = if message.contains("unknown field") {
        "remove or correct the key; docs/phi.md lists every key".to_string()
    } else if message.contains("missing field") {
        format!("add `{key} = …`; docs/phi.md lists every key")
    } else {
        "see docs/phi.md for the keys, their types and units".to_string()
    };
    PhiError::Program {
        file: origin.into(),
        position: Some((line, column)),
        key,
        message,
        hint,
    }
}

use crate::program::{key_on_line, line_col};

type SF = Option<Spanned<f64>>;
type SI = Option<Spanned<i64>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    name: Spanned<String>,
    modes: Spanned<i64>,
    channels: SI,
    channel_wavelengths_nm: Option<Spanned<Vec<f64>>>,
    mzi_loss_db: SF,
    splitter_imbalance_rad: SF,
    phase_calibration_residual_rad: SF,
    dac_bits: SI,
    dac_range_rad: SF,
    thermal_crosstalk: SF,
    phase_drift_rad_per_sqrt_s: SF,
    laser_linewidth_hz: SF,
    arm_delay_mismatch_ps: SF,
    reconfiguration_time_ns: SI,
    bar_extinction_db: SF,
    limits: Option<RawLimits>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawLimits {
    mzis_max: SI,
    window_ns_max: SI,
}

/// Every value, spanned where it came from a file (an empty span when built by hand).
struct RawFields {
    modes: SI,
    channels: SI,
    channel_wavelengths_nm: Option<Spanned<Vec<f64>>>,
    mzi_loss_db: SF,
    splitter_imbalance_rad: SF,
    phase_calibration_residual_rad: SF,
    dac_bits: SI,
    dac_range_rad: SF,
    thermal_crosstalk: SF,
    phase_drift_rad_per_sqrt_s: SF,
    laser_linewidth_hz: SF,
    arm_delay_mismatch_ps: SF,
    reconfiguration_time_ns: SI,
    bar_extinction_db: SF,
    mzis_max: SI,
    window_ns_max: SI,
}

struct Validator<'a> {
    text: &'a str,
    file: &'a str,
}

impl Validator<'_> {
    fn err(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        message: String,
        hint: &str,
    ) -> PhiError {
        PhiError::Program {
            file: self.file.into(),
            position: (!self.text.is_empty()).then(|| line_col(self.text, span.start)),
            key: key.into(),
            message,
            hint: hint.into(),
        }
    }

    fn int(
        &self,
        v: &Spanned<i64>,
        key: &str,
        lo: i64,
        hi: i64,
        what: &str,
    ) -> Result<i64, PhiError> {
        let x = *v.get_ref();
        if x < lo || x > hi {
            return Err(self.err(
                v.span(),
                key,
                format!("{key} = {x} is outside {lo} ..= {hi}"),
                &format!("give {what} from {lo} to {hi}"),
            ));
        }
        Ok(x)
    }

    fn real(
        &self,
        v: &SF,
        key: &str,
        lo: f64,
        hi: f64,
        what: &str,
    ) -> Result<Option<f64>, PhiError> {
        let Some(v) = v else { return Ok(None) };
        let x = *v.get_ref();
        if !(x >= lo && x <= hi) {
            return Err(self.err(
                v.span(),
                key,
                format!("{key} = {x} is outside {lo} ..= {hi}"),
                &format!("give {what}"),
            ));
        }
        Ok(Some(x))
    }

    fn fill(&self, d: &mut PhiDevice, r: &RawFields) -> Result<(), PhiError> {
        if let Some(m) = &r.modes {
            d.modes = self.int(
                m,
                "modes",
                1,
                DEVICE_MODES_MAX as i64,
                "a whole number of modes",
            )? as usize;
        }
        let channels_span = r.channels.as_ref().map_or(0..0, |c| c.span());
        if let Some(c) = &r.channels {
            d.channels = self.int(
                c,
                "channels",
                1,
                DEVICE_CHANNELS_MAX as i64,
                "a whole number of wavelength channels",
            )? as usize;
        }
        match &r.channel_wavelengths_nm {
            Some(w) => {
                let l = w.get_ref();
                if l.len() != d.channels {
                    return Err(self.err(
                        w.span(),
                        "channel_wavelengths_nm",
                        format!("{} wavelengths given for {} channels", l.len(), d.channels),
                        "give one wavelength in nm per channel",
                    ));
                }
                if let Some(bad) = l.iter().find(|x| !(**x >= 100.0 && **x <= 20_000.0)) {
                    return Err(self.err(
                        w.span(),
                        "channel_wavelengths_nm",
                        format!("the wavelength {bad} nm is outside 100 ..= 20000 nm"),
                        "give wavelengths in nanometres, e.g. 1550.12",
                    ));
                }
                if l.windows(2).any(|p| p[1] <= p[0]) {
                    return Err(self.err(
                        w.span(),
                        "channel_wavelengths_nm",
                        "the wavelengths are not strictly ascending".into(),
                        "list the channels' wavelengths in ascending order, each once",
                    ));
                }
                d.channel_wavelengths_nm = l.clone();
            }
            None => {
                if d.channel_wavelengths_nm.len() != d.channels {
                    if d.channels == 1 {
                        d.channel_wavelengths_nm = vec![1550.0];
                    } else {
                        return Err(self.err(
                            channels_span,
                            "channel_wavelengths_nm",
                            format!(
                                "channel_wavelengths_nm is missing for {} channels",
                                d.channels
                            ),
                            "add channel_wavelengths_nm = [..], one wavelength in nm per channel",
                        ));
                    }
                }
            }
        }
        let sigma = |x: &SF, k: &str| {
            self.real(
                x,
                k,
                0.0,
                PHASE_SIGMA_RAD_MAX,
                &format!("a standard deviation in radians from 0 to {PHASE_SIGMA_RAD_MAX}"),
            )
        };
        if let Some(x) = self.real(
            &r.mzi_loss_db,
            "mzi_loss_db",
            0.0,
            10.0,
            "a loss in dB from 0 to 10 (0.1–0.5 dB is typical)",
        )? {
            d.mzi_loss_db = x;
        }
        if let Some(x) = sigma(&r.splitter_imbalance_rad, "splitter_imbalance_rad")? {
            d.splitter_imbalance_rad = x;
        }
        if let Some(x) = sigma(
            &r.phase_calibration_residual_rad,
            "phase_calibration_residual_rad",
        )? {
            d.phase_calibration_residual_rad = x;
        }
        if let Some(b) = &r.dac_bits {
            d.dac_bits = self.int(
                b,
                "dac_bits",
                0,
                DAC_BITS_MAX as i64,
                "a whole number of bits (0 for an analog drive)",
            )? as u32;
        }
        if let Some(x) = self.real(
            &r.dac_range_rad,
            "dac_range_rad",
            std::f64::consts::TAU,
            8.0 * std::f64::consts::PI,
            "a full scale in radians from 2π (6.283185307179586) to 8π",
        )? {
            d.dac_range_rad = x;
        }
        if let Some(x) = self.real(
            &r.thermal_crosstalk,
            "thermal_crosstalk",
            0.0,
            0.5,
            "a fraction from 0 to 0.5 (0.001–0.05 is typical)",
        )? {
            d.thermal_crosstalk = x;
        }
        if let Some(x) = sigma(&r.phase_drift_rad_per_sqrt_s, "phase_drift_rad_per_sqrt_s")? {
            d.phase_drift_rad_per_sqrt_s = x;
        }
        if let Some(x) = self.real(
            &r.laser_linewidth_hz,
            "laser_linewidth_hz",
            0.0,
            1e12,
            "a linewidth in Hz from 0 to 1e12",
        )? {
            d.laser_linewidth_hz = x;
        }
        if let Some(x) = self.real(
            &r.arm_delay_mismatch_ps,
            "arm_delay_mismatch_ps",
            0.0,
            1e6,
            "a delay in ps from 0 to 1e6",
        )? {
            d.arm_delay_mismatch_ps = x;
        }
        let laser_key = r
            .laser_linewidth_hz
            .as_ref()
            .or(r.arm_delay_mismatch_ps.as_ref())
            .map_or(0..0, |s| s.span());
        if d.laser_phase_variance_rad2() > PHASE_SIGMA_RAD_MAX * PHASE_SIGMA_RAD_MAX {
            return Err(self.err(
                laser_key,
                "laser_linewidth_hz",
                format!(
                    "2π·Δν·τ = {:.3e} rad² exceeds {PHASE_SIGMA_RAD_MAX} rad²: the MZIs would not interfere",
                    d.laser_phase_variance_rad2()
                ),
                "a coherent mesh needs 2π·Δν·τ ≪ 1; lower the linewidth or the arm delay mismatch",
            ));
        }
        if let Some(t) = &r.reconfiguration_time_ns {
            d.reconfiguration_time_ns = self.int(
                t,
                "reconfiguration_time_ns",
                0,
                ELAPSED_NS_MAX as i64,
                "a time in whole nanoseconds",
            )? as u64;
        }
        if let Some(e) = &r.bar_extinction_db {
            let x = *e.get_ref();
            if !(x == f64::NEG_INFINITY || (-400.0..=0.0).contains(&x)) {
                return Err(self.err(
                    e.span(),
                    "bar_extinction_db",
                    format!("bar_extinction_db = {x} is not a leakage in dB at or below 0"),
                    "give the leakage through a bar-state MZI as a negative number of dB, e.g. -30.0, or -inf for none",
                ));
            }
            d.bar_extinction_db = x;
        }
        if let Some(m) = &r.mzis_max {
            d.limits.mzis_max =
                self.int(m, "limits.mzis_max", 1, 1 << 40, "a whole number of MZIs")? as usize;
        } else if r.modes.is_some() && !self.text.is_empty() {
            d.limits.mzis_max = (d.modes * d.modes.saturating_sub(1) / 2).max(1);
        }
        if let Some(w) = &r.window_ns_max {
            d.limits.window_ns_max = self.int(
                w,
                "limits.window_ns_max",
                1,
                ELAPSED_NS_MAX as i64,
                "a time in whole nanoseconds",
            )? as u64;
        }
        Ok(())
    }
}
