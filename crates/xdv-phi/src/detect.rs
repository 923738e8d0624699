//! Detection at the end of a program: intensity (photon counting, with optional shot noise and
//! ADC quantisation) or homodyne (a quadrature against a local oscillator, with vacuum noise).
//!
//! **The field's units.** An output amplitude `a` is a coherent-state amplitude per detection
//! window: `|a|²` is the mean photon number a detector collects in one window. A passive linear
//! mesh maps coherent states to coherent states, so the statistics below are exact for the
//! simulated light, not approximations.
//!
//! - **Intensity.** Noise-free expectation `n̄ = |a|²`. With `shot_noise`, each shot's count is
//!   Poisson(n̄) (variance n̄). With `adc_bits = b` and `full_scale = F` (photons), a reading `n`
//!   is quantised to the code `clamp(round(n / q), 0, 2^b − 1)` with `q = F / (2^b − 1)` and
//!   reported as `code · q` photons (the codes are returned too).
//! - **Homodyne.** With the local-oscillator phase φ on a mode, the quadrature is
//!   `x_φ = √(ħ/2) (a e^{−iφ} + a† e^{iφ})`, so `E[x_φ] = √(2ħ) · Re(a · e^{−iφ})` and, for a
//!   coherent state, `Var[x_φ] = ħ/2` (vacuum noise). XDV's default is **ħ = 2**, the default of
//!   Strawberry Fields (`sf.hbar = 2`): then `E[x_φ] = 2 Re(a e^{−iφ})` and the vacuum variance is
//!   1, so φ = 0 gives SF's `x` (`MeasureX`) and φ = π/2 its `p` (`MeasureP`). With ħ = 1 the
//!   same light gives `√2 Re(a e^{−iφ})` with variance 1/2. A program may set `hbar`.
//!
//! **Determinism.** Every draw comes from `ChaCha8Rng::seed_from_u64(seed)` (rand_chacha 0.9) on
//! a stream of its own per purpose ([`STREAM_SHOT_NOISE`], [`STREAM_HOMODYNE`]), so detection never
//! shares random numbers with anything else that draws from the same seed. Samples are drawn in
//! the order shot, channel, listed mode. Poisson counts use Hörmann's PTRS transformed rejection
//! (the algorithm numpy uses) for means ≥ 10 and multiplication of uniforms below; above a mean
//! of 1e10 photons the count is drawn from the normal approximation N(n̄, n̄) rounded to a whole
//! number (the Poisson's skewness there is below 1e−5). Normals come from Box–Muller.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::{PhiError, C64};

/// The ChaCha8 stream of shot-noise draws ("det-shot").
pub const STREAM_SHOT_NOISE: u64 = u64::from_be_bytes(*b"det-shot");
/// The ChaCha8 stream of homodyne vacuum-noise draws ("det-homo").
pub const STREAM_HOMODYNE: u64 = u64::from_be_bytes(*b"det-homo");
/// Most shots (detection windows) of one detection.
pub const SHOTS_MAX: usize = 1_000_000;
/// Most samples (shots × channels × detected modes) of one detection.
pub const SAMPLES_MAX: usize = 10_000_000;
/// Most ADC bits.
pub const ADC_BITS_MAX: u32 = 24;
/// Above this mean photon number a count is drawn from the normal approximation.
pub const POISSON_EXACT_MEAN_MAX: f64 = 1e10;
/// Strawberry Fields' default ħ, XDV's default for homodyne detection.
pub const HBAR_DEFAULT: f64 = 2.0;

/// ADC quantisation of intensity readings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Adc {
    /// Bits b (1 ..= 24): codes 0 ..= 2^b − 1.
    pub bits: u32,
    /// The reading of the top code, in photons per window (positive, finite).
    pub full_scale: f64,
}

/// Intensity detection.
#[derive(Clone, Debug, PartialEq)]
pub struct IntensityDetect {
    /// The detected modes, ascending (all modes by default).
    pub modes: Vec<usize>,
    /// Poisson shot noise on each count.
    pub shot_noise: bool,
    /// ADC quantisation, if any.
    pub adc: Option<Adc>,
    /// Detection windows sampled.
    pub shots: usize,
}

/// Homodyne detection.
#[derive(Clone, Debug, PartialEq)]
pub struct HomodyneDetect {
    /// The detected modes, ascending (all modes by default).
    pub modes: Vec<usize>,
    /// The local-oscillator phase φ in radians, one per detected mode.
    pub lo_phase: Vec<f64>,
    /// ħ of the quadrature convention (default 2, as Strawberry Fields).
    pub hbar: f64,
    /// Detection windows sampled.
    pub shots: usize,
}

/// The detection at the end of a program.
#[derive(Clone, Debug, PartialEq)]
pub enum Detect {
    /// Photon counting: |a|² per mode and channel, optionally with shot noise and an ADC.
    Intensity(IntensityDetect),
    /// A quadrature per mode against a local oscillator, with vacuum noise.
    Homodyne(HomodyneDetect),
}

impl Detect {
    /// Noise-free intensity detection of every one of `modes` modes, one shot (the default).
    pub fn intensity_all(modes: usize) -> Detect {
        Detect::Intensity(IntensityDetect {
            modes: (0..modes).collect(),
            shot_noise: false,
            adc: None,
            shots: 1,
        })
    }

    /// The detected modes.
    pub fn modes(&self) -> &[usize] {
        match self {
            Detect::Intensity(d) => &d.modes,
            Detect::Homodyne(d) => &d.modes,
        }
    }
}

/// What a detection measured.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// `"intensity"` or `"homodyne"`.
    pub kind: &'static str,
    /// The detected modes.
    pub modes: Vec<usize>,
    /// Shots sampled.
    pub shots: usize,
    /// Noise-free expectation per channel and detected mode, `expected[w][i]`: mean photons
    /// (intensity) or `E[x_φ]` (homodyne).
    pub expected: Vec<Vec<f64>>,
    /// The closed-form variance of one raw sample (before any ADC), `variance[w][i]`: n̄ with shot
    /// noise and 0 without (intensity), ħ/2 (homodyne).
    pub variance: Vec<Vec<f64>>,
    /// The readings, `samples[shot][w][i]` (photons, or quadrature values).
    pub samples: Vec<Vec<Vec<f64>>>,
    /// The ADC codes, `codes[shot][w][i]`, when an ADC is configured.
    pub codes: Option<Vec<Vec<Vec<u32>>>>,
}

impl Detection {
    /// The detection as JSON: `{"kind", "modes", "shots", "expected", "variance", "samples"}`
    /// plus `"codes"` with an ADC; arrays indexed `[channel][i]` (`samples`: `[shot][channel][i]`).
    pub fn to_json(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "kind": self.kind,
            "modes": self.modes,
            "shots": self.shots,
            "expected": self.expected,
            "variance": self.variance,
            "samples": self.samples,
        });
        if let Some(c) = &self.codes {
            v["codes"] = serde_json::json!(c);
        }
        v
    }
}

/// Detects the output `amplitudes[w][m]` as `spec` says, drawing from `seed`. Refuses a spec
/// whose modes lie outside the field (a programming error: programs are checked when read).
pub fn detect(spec: &Detect, amplitudes: &[Vec<C64>], seed: u64) -> Result<Detection, PhiError> {
    let modes = spec.modes();
    for field in amplitudes {
        if let Some(&m) = modes.iter().find(|&&m| m >= field.len()) {
            return Err(PhiError::Shape {
                message: format!("detection of mode {m} on a field of {} modes", field.len()),
            });
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    match spec {
        Detect::Intensity(d) => {
            rng.set_stream(STREAM_SHOT_NOISE);
            let expected: Vec<Vec<f64>> = amplitudes
                .iter()
                .map(|f| d.modes.iter().map(|&m| f[m].norm_sqr()).collect())
                .collect();
            let variance = expected
                .iter()
                .map(|ch| {
                    ch.iter()
                        .map(|&n| if d.shot_noise { n } else { 0.0 })
                        .collect()
                })
                .collect();
            let mut samples = Vec::with_capacity(d.shots);
            let mut codes = d.adc.map(|_| Vec::with_capacity(d.shots));
            for _ in 0..d.shots {
                let mut shot = Vec::with_capacity(expected.len());
                let mut shot_codes = Vec::with_capacity(expected.len());
                for ch in &expected {
                    let mut row = Vec::with_capacity(ch.len());
                    let mut row_codes = Vec::with_capacity(ch.len());
                    for &mean in ch {
                        let n = if d.shot_noise {
                            poisson(&mut rng, mean)
                        } else {
                            mean
                        };
                        match d.adc {
                            Some(adc) => {
                                let (code, reading) = quantise(n, adc);
                                row_codes.push(code);
                                row.push(reading);
                            }
                            None => row.push(n),
                        }
                    }
                    shot.push(row);
                    shot_codes.push(row_codes);
                }
                samples.push(shot);
                if let Some(c) = codes.as_mut() {
                    c.push(shot_codes);
                }
            }
            Ok(Detection {
                kind: "intensity",
                modes: d.modes.clone(),
                shots: d.shots,
                expected,
                variance,
                samples,
                codes,
            })
        }
        Detect::Homodyne(d) => {
            rng.set_stream(STREAM_HOMODYNE);
            let gain = (2.0 * d.hbar).sqrt();
            let sd = (d.hbar / 2.0).sqrt();
            let expected: Vec<Vec<f64>> = amplitudes
                .iter()
                .map(|f| {
                    d.modes
                        .iter()
                        .zip(&d.lo_phase)
                        .map(|(&m, &phi)| gain * (f[m] * C64::from_polar(1.0, -phi)).re)
                        .collect()
                })
                .collect();
            let variance = expected
                .iter()
                .map(|ch| vec![d.hbar / 2.0; ch.len()])
                .collect();
            let samples = (0..d.shots)
                .map(|_| {
                    expected
                        .iter()
                        .map(|ch| {
                            ch.iter()
                                .map(|&mean| mean + sd * normal(&mut rng))
                                .collect()
                        })
                        .collect()
                })
                .collect();
            Ok(Detection {
                kind: "homodyne",
                modes: d.modes.clone(),
                shots: d.shots,
                expected,
                variance,
                samples,
                codes: None,
            })
        }
    }
}

/// An ADC code and its reading in photons.
fn quantise(n: f64, adc: Adc) -> (u32, f64) {
    let top = ((1u64 << adc.bits) - 1) as f64;
    let q = adc.full_scale / top;
    let code = (n / q).round().clamp(0.0, top);
    (code as u32, code * q)
}

/// A uniform in [0, 1) with 53 random bits.
fn uniform(rng: &mut ChaCha8Rng) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// A standard normal by Box–Muller (one of the pair; the other is discarded for simplicity of
/// the stream's layout: one normal, two uniforms).
fn normal(rng: &mut ChaCha8Rng) -> f64 {
    let u1 = 1.0 - uniform(rng); // (0, 1]
    let u2 = uniform(rng);
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// A Poisson(mean) count as a float (counts can exceed any integer type at extreme powers).
pub fn poisson(rng: &mut ChaCha8Rng, mean: f64) -> f64 {
    if mean.is_nan() || mean <= 0.0 {
        0.0
    } else if mean < 10.0 {
        // Knuth: multiply uniforms until the product drops below e^{−mean}.
        let limit = (-mean).exp();
        let mut k = 0.0;
        let mut p = uniform(rng);
        while p > limit {
            k += 1.0;
            p *= uniform(rng);
        }
        k
    } else if mean <= POISSON_EXACT_MEAN_MAX {
        ptrs(rng, mean)
    } else {
        (mean + mean.sqrt() * normal(rng)).round().max(0.0)
    }
}

/// Hörmann, "The transformed rejection method for generating Poisson random variables",
/// Insurance: Mathematics and Economics 12 (1993): PTRS, for mean ≥ 10.
fn ptrs(rng: &mut ChaCha8Rng, lam: f64) -> f64 {
    let slam = lam.sqrt();
    let loglam = lam.ln();
    let b = 0.931 + 2.53 * slam;
    let a = -0.059 + 0.02483 * b;
    let invalpha = 1.1239 + 1.1328 / (b - 3.4);
    let vr = 0.9277 - 3.6224 / (b - 2.0);
    loop {
        let u = uniform(rng) - 0.5;
        let v = uniform(rng);
        let us = 0.5 - u.abs();
        let k = ((2.0 * a / us + b) * u + lam + 0.43).floor();
        if us >= 0.07 && v <= vr {
            return k;
        }
        if k < 0.0 || (us < 0.013 && v > us) {
            continue;
        }
        if v.ln() + invalpha.ln() - (a / (us * us) + b).ln()
            <= -lam + k * loglam - ln_gamma(k + 1.0)
        {
            return k;
        }
    }
}

/// ln Γ(x) for x ≥ 1 by the Stirling series with ten Bernoulli terms, shifted up to x ≥ 7 (the
/// evaluation numpy's generator uses; accurate to ~1e−15 relative).
fn ln_gamma(x: f64) -> f64 {
    // B_{2k} / (2k (2k − 1)) for k = 1..=10.
    const A: [f64; 10] = [
        1.0 / 12.0,
        -1.0 / 360.0,
        1.0 / 1260.0,
        -1.0 / 1680.0,
        1.0 / 1188.0,
        -691.0 / 360360.0,
        1.0 / 156.0,
        -3617.0 / 122400.0,
        43867.0 / 244188.0,
        -174611.0 / 125400.0,
    ];
    if x == 1.0 || x == 2.0 {
        return 0.0;
    }
    let n = if x < 7.0 { (7.0 - x).floor() as i32 } else { 0 };
    let mut x0 = x + n as f64;
    let x2 = 1.0 / (x0 * x0);
    let mut gl0 = A[9];
    for k in (0..9).rev() {
        gl0 = gl0 * x2 + A[k];
    }
    let mut gl = gl0 / x0 + 0.5 * (2.0 * std::f64::consts::PI).ln() + (x0 - 0.5) * x0.ln() - x0;
    for _ in 0..n {
        x0 -= 1.0;
        gl -= x0.ln();
    }
    gl
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_gamma_matches_log_factorials() {
        let mut f = 0.0f64;
        for k in 1..60u32 {
            f += (k as f64).ln();
            // ln Γ(k + 1) = ln k!
            let g = ln_gamma(k as f64 + 1.0);
            assert!((g - f).abs() <= 1e-12 * f.max(1.0), "k = {k}: {g} vs {f}");
        }
        // Γ(1/2)… not needed; Γ(3.5) = 15√π / 8.
        let want = (15.0 * std::f64::consts::PI.sqrt() / 8.0).ln();
        assert!((ln_gamma(3.5) - want).abs() < 1e-13);
    }

    #[test]
    fn quantise_rounds_and_clamps() {
        let adc = Adc {
            bits: 2,
            full_scale: 3.0,
        };
        assert_eq!(quantise(-1.0, adc), (0, 0.0));
        assert_eq!(quantise(1.4, adc), (1, 1.0));
        assert_eq!(quantise(1.6, adc), (2, 2.0));
        assert_eq!(quantise(100.0, adc), (3, 3.0));
    }
}
