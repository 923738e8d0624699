//! Realising a mesh on a device: from a compiled [`Mesh`] (what was programmed), a
//! [`PhiDevice`], a seed and the time elapsed since calibration, the physical mesh actually
//! applied ([`PhysMesh`]), element by element.
//!
//! # The physical MZI
//!
//! The Clements MZI `T(θ, φ)` is realised as an external phase shifter, a directional coupler,
//! an internal phase shifter on the upper arm, a second coupler and a fixed output screen:
//!
//! ```text
//! T(θ, φ) = S(θ) · C(π/4 + δ₂) · diag(e^{iα}, 1) · C(π/4 + δ₁) · diag(e^{iφ′}, 1) · √η
//! C(x) = [[cos x, i sin x], [i sin x, cos x]],   α = 2θ + π (programmed),  φ′ = φ (programmed)
//! S(θ) = −e^{−iθ} · diag(1, −1)
//! ```
//!
//! With δ₁ = δ₂ = 0, exact phases and η = 1 this product is exactly `T(θ, φ)`; `S(θ)` is the
//! bookkeeping screen that maps the symmetric physical MZI onto the Clements convention (on a chip
//! it is absorbed into the next column's shifters) and is applied noise-free. δ₁, δ₂ are the
//! couplers' angle errors (static, σ = `splitter_imbalance_rad`), so a bar-state MZI leaks
//! sin²(δ₂ − δ₁) of the power: the transfer matrix is no longer ideal-extinction unitary.
//! η = 10^(−mzi_loss_db/10) on both arms.
//!
//! # The phases actually applied
//!
//! Every shifter (an MZI's internal and external ones, a `phase` element) holds its programmed
//! phase wrapped into [0, 2π) and then:
//!
//! 1. **DAC quantisation**: rounded to the nearest multiple of one LSB = `dac_range_rad / 2^bits`
//!    (error ≤ LSB/2; none with `dac_bits = 0`);
//! 2. **calibration residual**: a static offset N(0, σ_cal²) per shifter from the seed;
//! 3. **thermal crosstalk**: κ times the (quantised, wrapped) phase of each neighbour — the
//!    nearest shifter of the same kind in the same column, above and below, at most 2 modes away
//!    (columns are the elements' as-soon-as-possible layers); systematic, no randomness;
//! 4. **drift**: a Brownian path W(t) per shifter with σ_d·√t at elapsed time t (see below);
//! 5. **laser phase diffusion** (internal shifters only): the two arms of an MZI sample the laser
//!    phase τ = `arm_delay_mismatch_ps` apart, so their relative phase carries an error
//!    N(0, 2π·Δν·τ) (Lorentzian linewidth Δν, valid for τ ≪ 1/(πΔν)), drawn per run. Laser phase
//!    noise common to all paths is a global phase and changes nothing here; delays between
//!    different paths (a `delay` element) are not modelled.
//!
//! Beam splitters (`bs`) get a static angle error N(0, σ_split²); attenuators are ideal.
//!
//! # Determinism
//!
//! Every draw comes from one `ChaCha8Rng::seed_from_u64(seed)` key (rand_chacha 0.9), one stream
//! per purpose: stream `1 << 56` calibration (normal number i, for shifter i, at word 4i),
//! `2 << 56` couplers (coupler i), `4 << 56` laser (shifter i), and for the drift one stream per
//! shifter, `(3 << 56) | i`; a normal from two u64 words by Box–Muller. The same seed gives the
//! same realisation bit for bit, and a shifter's draws do not depend on the others'.
//!
//! The drift path is a Lévy (midpoint) construction on the horizon T = 2^40 ns: W(T) = √T·z₀,
//! and the midpoint of an interval [a, b] is (W(a) + W(b))/2 + √((b − a)/4)·z_k, z_k read at a
//! fixed position of the shifter's stream (word 4k). At whole nanoseconds it is exact, and one
//! seed gives one consistent path: the drift at t₁ < t₂ is the same walk seen at two times.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

use crate::device::{PhiDevice, ELAPSED_NS_MAX};
use crate::mesh::{Element, Mesh};
use crate::{Matrix, PhiError, C64};

const PURPOSE_CALIBRATION: u64 = 1;
const PURPOSE_COUPLER: u64 = 2;
const PURPOSE_DRIFT: u64 = 3;
const PURPOSE_LASER: u64 = 4;

/// The drift path's horizon, in ns.
const DRIFT_HORIZON_NS: u64 = ELAPSED_NS_MAX;

/// One element of a physical mesh.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PhysElement {
    /// An ideal MZI `T(θ, φ)` on `(mode, mode+1)` with the same arithmetic as
    /// [`Element::Mzi`]: emitted when every error of the MZI is exactly zero.
    Mzi {
        /// The first of its two modes.
        mode: usize,
        /// cos θ.
        c: f64,
        /// sin θ.
        s: f64,
        /// e^{iφ}.
        e: C64,
    },
    /// A beam splitter `B(θ)` with `c = cos θ`, `s = sin θ` (as [`Element::Bs`]).
    Bs {
        /// The first of its two modes.
        mode: usize,
        /// cos θ.
        c: f64,
        /// sin θ.
        s: f64,
    },
    /// `a_mode ← phasor · a_mode`.
    Phase {
        /// Its mode.
        mode: usize,
        /// The complex factor (unit modulus).
        phasor: C64,
    },
    /// `a_mode ← factor · a_mode` (an attenuator).
    Scale {
        /// Its mode.
        mode: usize,
        /// The amplitude factor.
        factor: f64,
    },
    /// A general 2 × 2 transfer matrix `m` on `(mode, mode+1)`.
    Pair {
        /// The first of its two modes.
        mode: usize,
        /// The matrix, `m[row][column]`.
        m: [[C64; 2]; 2],
    },
}

impl PhysElement {
    #[inline(always)]
    fn apply_strided(&self, v: &mut [C64], stride: usize) {
        match *self {
            PhysElement::Mzi { mode, c, s, e } => {
                let (lo, hi) = v[mode * stride..(mode + 2) * stride].split_at_mut(stride);
                for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                    let t = e * *x;
                    let yy = *y;
                    *x = t * c - yy * s;
                    *y = t * s + yy * c;
                }
            }
            PhysElement::Bs { mode, c, s } => {
                let (lo, hi) = v[mode * stride..(mode + 2) * stride].split_at_mut(stride);
                for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                    let (xx, yy) = (*x, *y);
                    *x = C64::new(c * xx.re - s * yy.im, c * xx.im + s * yy.re);
                    *y = C64::new(c * yy.re - s * xx.im, c * yy.im + s * xx.re);
                }
            }
            PhysElement::Phase { mode, phasor } => {
                for x in &mut v[mode * stride..(mode + 1) * stride] {
                    *x *= phasor;
                }
            }
            PhysElement::Scale { mode, factor } => {
                for x in &mut v[mode * stride..(mode + 1) * stride] {
                    *x *= factor;
                }
            }
            PhysElement::Pair { mode, m } => {
                let (lo, hi) = v[mode * stride..(mode + 2) * stride].split_at_mut(stride);
                for (x, y) in lo.iter_mut().zip(hi.iter_mut()) {
                    let (xx, yy) = (*x, *y);
                    *x = m[0][0] * xx + m[0][1] * yy;
                    *y = m[1][0] * xx + m[1][1] * yy;
                }
            }
        }
    }

    /// The ideal physical element of a mesh element (the same arithmetic).
    pub fn from_element(e: &Element) -> PhysElement {
        match *e {
            Element::Mzi { mode, c, s, e } => PhysElement::Mzi { mode, c, s, e },
            Element::Bs { mode, c, s } => PhysElement::Bs { mode, c, s },
            Element::Phase { mode, phasor } => PhysElement::Phase { mode, phasor },
            Element::Scale { mode, factor } => PhysElement::Scale { mode, factor },
        }
    }

    /// The lowest mode it touches.
    pub fn mode(&self) -> usize {
        match *self {
            PhysElement::Mzi { mode, .. }
            | PhysElement::Bs { mode, .. }
            | PhysElement::Phase { mode, .. }
            | PhysElement::Scale { mode, .. }
            | PhysElement::Pair { mode, .. } => mode,
        }
    }

    /// Whether it acts on two modes `(mode, mode+1)`.
    pub fn is_pair(&self) -> bool {
        matches!(
            self,
            PhysElement::Mzi { .. } | PhysElement::Bs { .. } | PhysElement::Pair { .. }
        )
    }

    /// With its modes shifted up by `offset`.
    pub fn shifted(mut self, offset: usize) -> PhysElement {
        match &mut self {
            PhysElement::Mzi { mode, .. }
            | PhysElement::Bs { mode, .. }
            | PhysElement::Phase { mode, .. }
            | PhysElement::Scale { mode, .. }
            | PhysElement::Pair { mode, .. } => *mode += offset,
        }
        self
    }
}

/// A physical mesh: the elements actually applied, in order, on `modes` modes. Every element
/// lies inside the modes (checked when it is built).
#[derive(Clone, Debug, PartialEq)]
pub struct PhysMesh {
    modes: usize,
    elements: Vec<PhysElement>,
}

impl PhysMesh {
    /// An empty physical mesh (the identity) on `modes` modes.
    pub fn new(modes: usize) -> PhysMesh {
        PhysMesh {
            modes,
            elements: Vec::new(),
        }
    }

    /// The ideal physical mesh of `mesh` (the same arithmetic, element by element).
    pub fn ideal(mesh: &Mesh) -> PhysMesh {
        PhysMesh {
            modes: mesh.modes(),
            elements: mesh
                .elements()
                .iter()
                .map(PhysElement::from_element)
                .collect(),
        }
    }

    /// Appends an element; refuses one outside the modes.
    pub fn push(&mut self, e: PhysElement) -> Result<(), PhiError> {
        let top = e.mode() + usize::from(e.is_pair());
        if top >= self.modes {
            return Err(PhiError::Shape {
                message: format!(
                    "element {e:?} touches mode {top} of a {}-mode physical mesh",
                    self.modes
                ),
            });
        }
        self.elements.push(e);
        Ok(())
    }

    /// The number of modes.
    pub fn modes(&self) -> usize {
        self.modes
    }

    /// The elements, in application order.
    pub fn elements(&self) -> &[PhysElement] {
        &self.elements
    }

    /// Applies the mesh to a field in place, element by element; refuses a field of the wrong
    /// length.
    pub fn apply(&self, field: &mut [C64]) -> Result<(), PhiError> {
        if field.len() != self.modes {
            return Err(PhiError::Shape {
                message: format!(
                    "a field of {} amplitudes given to a {}-mode mesh",
                    field.len(),
                    self.modes
                ),
            });
        }
        for e in &self.elements {
            e.apply_strided(field, 1);
        }
        Ok(())
    }

    /// The transfer matrix (the product of the elements, the last on the left).
    pub fn transfer_matrix(&self) -> Matrix {
        let mut m = Matrix::identity(self.modes);
        let n = self.modes;
        let data = m.data_mut();
        for e in &self.elements {
            e.apply_strided(data, n);
        }
        m
    }
}

/// Which shifter of an element.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ShifterKind {
    /// An MZI's internal shifter (programmed phase α = 2θ + π, on the upper arm).
    Internal,
    /// An MZI's external shifter (programmed phase φ, on mode `m`).
    External,
    /// A lone phase shifter (a `phase` element or an output phase).
    Single,
}

/// One phase shifter of a realisation and every contribution to its error, in radians.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Shifter {
    /// The index of its element in the mesh.
    pub element: usize,
    /// Which shifter of the element.
    pub kind: ShifterKind,
    /// The mode its arm lies on.
    pub mode: usize,
    /// Its column (the element's as-soon-as-possible layer).
    pub column: usize,
    /// The programmed phase wrapped into [0, 2π).
    pub programmed_rad: f64,
    /// The DAC's value: `programmed_rad` rounded to the nearest LSB.
    pub quantised_rad: f64,
    /// The static calibration residual.
    pub calibration_rad: f64,
    /// The thermal crosstalk from its neighbours.
    pub crosstalk_rad: f64,
    /// The drift at the elapsed time.
    pub drift_rad: f64,
    /// The laser phase-diffusion error (internal shifters only).
    pub laser_rad: f64,
}

impl Shifter {
    /// The total error: applied phase minus programmed phase.
    pub fn error_rad(&self) -> f64 {
        (self.quantised_rad - self.programmed_rad)
            + self.calibration_rad
            + self.crosstalk_rad
            + self.drift_rad
            + self.laser_rad
    }
}

/// A realisation: the physical mesh and the record of every shifter and coupler error.
#[derive(Clone, Debug, PartialEq)]
pub struct Realisation {
    /// The physical mesh applied.
    pub mesh: PhysMesh,
    /// Every phase shifter, in element order (internal before external within an MZI).
    pub shifters: Vec<Shifter>,
    /// Every directional coupler's angle error δ in radians: two per MZI (δ₁, δ₂), one per
    /// beam splitter, in element order.
    pub couplers_rad: Vec<f64>,
}

/// A standard normal from the next two 64-bit words of `r`, by Box–Muller (uniforms in (0, 1]
/// and [0, 1) from 53-bit mantissas).
fn box_muller(r: &mut ChaCha8Rng) -> f64 {
    let u1 = ((r.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64;
    let u2 = (r.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// One purpose's draws: normal number `index` is read at word `4·index` of stream
/// `purpose << 56`; reading in increasing order needs no seek.
struct Stream {
    rng: ChaCha8Rng,
    next: u64,
}

impl Stream {
    fn new(seed: u64, purpose: u64) -> Stream {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(purpose << 56);
        Stream { rng, next: 0 }
    }

    fn normal(&mut self, index: u64) -> f64 {
        if index != self.next {
            self.rng.set_word_pos(u128::from(index) * 4);
        }
        self.next = index + 1;
        box_muller(&mut self.rng)
    }
}

/// Shifter `index`'s Brownian path W(t) (Var W(t) = t, t in ns) at whole nanoseconds: stream
/// `(3 << 56) | index`, the normal of node k at word 4k.
fn brownian(seed: u64, index: u64, t: u64) -> f64 {
    if t == 0 {
        return 0.0;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream((PURPOSE_DRIFT << 56) | (index & ((1 << 56) - 1)));
    let mut z = |node: u64| {
        rng.set_word_pos(u128::from(node) * 4);
        box_muller(&mut rng)
    };
    let (mut lo, mut hi) = (0u64, DRIFT_HORIZON_NS);
    let (mut w_lo, mut w_hi) = (0.0, (hi as f64).sqrt() * z(0));
    let mut node = 1u64;
    while t != hi {
        let mid = lo + (hi - lo) / 2;
        let w_mid = 0.5 * (w_lo + w_hi) + ((hi - lo) as f64 / 4.0).sqrt() * z(node);
        if t <= mid {
            (hi, w_hi, node) = (mid, w_mid, 2 * node);
        } else {
            (lo, w_lo, node) = (mid, w_mid, 2 * node + 1);
        }
    }
    w_hi
}

/// The 2 × 2 product `a · b`.
pub fn mul2(a: &[[C64; 2]; 2], b: &[[C64; 2]; 2]) -> [[C64; 2]; 2] {
    let mut r = [[C64::new(0.0, 0.0); 2]; 2];
    for (i, row) in r.iter_mut().enumerate() {
        for (j, x) in row.iter_mut().enumerate() {
            *x = a[i][0] * b[0][j] + a[i][1] * b[1][j];
        }
    }
    r
}

/// The directional coupler `C(x) = [[cos x, i sin x], [i sin x, cos x]]`.
pub fn coupler(x: f64) -> [[C64; 2]; 2] {
    let (s, c) = x.sin_cos();
    [
        [C64::new(c, 0.0), C64::new(0.0, s)],
        [C64::new(0.0, s), C64::new(c, 0.0)],
    ]
}

/// `diag(e^{iα}, 1)`.
pub fn upper_phase(alpha: f64) -> [[C64; 2]; 2] {
    [
        [C64::from_polar(1.0, alpha), C64::new(0.0, 0.0)],
        [C64::new(0.0, 0.0), C64::new(1.0, 0.0)],
    ]
}

/// The physical MZI `S(θ)·C(π/4+δ₂)·diag(e^{iα},1)·C(π/4+δ₁)·diag(e^{iφ},1)` with the screen
/// `S(θ) = −e^{−iθ}·diag(1, −1)` of the programmed θ and the actual phases α, φ.
pub fn physical_mzi(theta: f64, alpha: f64, phi: f64, delta1: f64, delta2: f64) -> [[C64; 2]; 2] {
    let q = std::f64::consts::FRAC_PI_4;
    let inner = mul2(
        &coupler(q + delta2),
        &mul2(
            &upper_phase(alpha),
            &mul2(&coupler(q + delta1), &upper_phase(phi)),
        ),
    );
    let g = -C64::from_polar(1.0, -theta);
    [
        [g * inner[0][0], g * inner[0][1]],
        [-g * inner[1][0], -g * inner[1][1]],
    ]
}

/// The as-soon-as-possible column of every element: one more than the latest column on any of
/// its modes.
pub fn columns(mesh: &Mesh) -> Vec<usize> {
    let mut last = vec![0usize; mesh.modes()];
    mesh.elements()
        .iter()
        .map(|e| {
            let (m, pair) = match *e {
                Element::Mzi { mode, .. } | Element::Bs { mode, .. } => (mode, true),
                Element::Phase { mode, .. } | Element::Scale { mode, .. } => (mode, false),
            };
            let c = if pair {
                last[m].max(last[m + 1])
            } else {
                last[m]
            };
            last[m] = c + 1;
            if pair {
                last[m + 1] = c + 1;
            }
            c
        })
        .collect()
}

/// Wraps a phase into [0, 2π).
fn wrap(x: f64) -> f64 {
    let w = x.rem_euclid(std::f64::consts::TAU);
    if w >= std::f64::consts::TAU {
        0.0
    } else {
        w
    }
}

/// Realises `mesh` on `device` with `seed` at `elapsed_ns` after calibration: the physical mesh
/// and the record of every error. Refuses a device that does not pass [`PhiDevice::check`] and an
/// elapsed time beyond [`ELAPSED_NS_MAX`]. A device with no imperfection
/// ([`PhiDevice::is_ideal`]) gives the ideal mesh, element for element.
pub fn realise(
    mesh: &Mesh,
    device: &PhiDevice,
    seed: u64,
    elapsed_ns: u64,
) -> Result<Realisation, PhiError> {
    device.check()?;
    if elapsed_ns > ELAPSED_NS_MAX {
        return Err(PhiError::Limit {
            what: "the elapsed time since calibration in ns".into(),
            value: elapsed_ns,
            max: ELAPSED_NS_MAX,
            hint: "recalibrate: the drift model covers 2^40 ns (about 18 minutes)".into(),
        });
    }
    let cols = columns(mesh);
    let lsb = device.dac_lsb_rad();
    let quantise = |w: f64| {
        if lsb > 0.0 {
            (w / lsb).round() * lsb
        } else {
            w
        }
    };

    // 1. The shifters: programmed, quantised, calibration, drift and laser terms.
    let mut shifters = Vec::new();
    for (k, e) in mesh.elements().iter().enumerate() {
        let mut add = |kind, mode, programmed: f64| {
            let w = wrap(programmed);
            shifters.push(Shifter {
                element: k,
                kind,
                mode,
                column: cols[k],
                programmed_rad: w,
                quantised_rad: quantise(w),
                calibration_rad: 0.0,
                crosstalk_rad: 0.0,
                drift_rad: 0.0,
                laser_rad: 0.0,
            });
        };
        match *e {
            Element::Mzi { mode, c, s, e } => {
                let theta = s.atan2(c);
                add(
                    ShifterKind::Internal,
                    mode,
                    2.0 * theta + std::f64::consts::PI,
                );
                add(ShifterKind::External, mode, e.arg());
            }
            Element::Phase { mode, phasor } => add(ShifterKind::Single, mode, phasor.arg()),
            Element::Bs { .. } | Element::Scale { .. } => {}
        }
    }
    let sigma_cal = device.phase_calibration_residual_rad;
    let drift_scale = device.phase_drift_rad_per_sqrt_s * 1e-9f64.sqrt();
    let sigma_laser = device.laser_phase_variance_rad2().sqrt();
    let mut calibration = Stream::new(seed, PURPOSE_CALIBRATION);
    let mut laser = Stream::new(seed, PURPOSE_LASER);
    for (i, sh) in shifters.iter_mut().enumerate() {
        let i = i as u64;
        if sigma_cal > 0.0 {
            sh.calibration_rad = sigma_cal * calibration.normal(i);
        }
        if drift_scale > 0.0 && elapsed_ns > 0 {
            sh.drift_rad = drift_scale * brownian(seed, i, elapsed_ns);
        }
        if sigma_laser > 0.0 && sh.kind == ShifterKind::Internal {
            sh.laser_rad = sigma_laser * laser.normal(i);
        }
    }
    // 2. Thermal crosstalk: neighbours of the same kind in the same column, at most 2 modes away.
    let kappa = device.thermal_crosstalk;
    if kappa > 0.0 {
        let mut order: Vec<usize> = (0..shifters.len()).collect();
        order.sort_by_key(|&i| (shifters[i].column, shifters[i].kind, shifters[i].mode));
        let mut add = vec![0.0; shifters.len()];
        for w in order.windows(2) {
            let (a, b) = (&shifters[w[0]], &shifters[w[1]]);
            if a.column == b.column && a.kind == b.kind && b.mode - a.mode <= 2 {
                add[w[0]] += kappa * b.quantised_rad;
                add[w[1]] += kappa * a.quantised_rad;
            }
        }
        for (sh, x) in shifters.iter_mut().zip(add) {
            sh.crosstalk_rad = x;
        }
    }
    // 3. The elements.
    let sigma_split = device.splitter_imbalance_rad;
    let eta_amp = 10f64.powf(-device.mzi_loss_db / 20.0);
    let mut couplers_rad = Vec::new();
    let mut coupler_stream = Stream::new(seed, PURPOSE_COUPLER);
    let mut coupler = || {
        let d = if sigma_split > 0.0 {
            sigma_split * coupler_stream.normal(couplers_rad.len() as u64)
        } else {
            0.0
        };
        couplers_rad.push(d);
        d
    };
    let mut out = PhysMesh::new(mesh.modes());
    let mut next_shifter = 0usize;
    for e in mesh.elements() {
        let phys = match *e {
            Element::Mzi { mode, c, s, e } => {
                let (int, ext) = (&shifters[next_shifter], &shifters[next_shifter + 1]);
                next_shifter += 2;
                let (d1, d2) = (coupler(), coupler());
                let (ei, ee) = (int.error_rad(), ext.error_rad());
                if d1 == 0.0 && d2 == 0.0 && ei == 0.0 && ee == 0.0 && eta_amp == 1.0 {
                    PhysElement::Mzi { mode, c, s, e }
                } else {
                    let theta = s.atan2(c);
                    let alpha = 2.0 * theta + std::f64::consts::PI + ei;
                    let m = physical_mzi(theta, alpha, e.arg() + ee, d1, d2);
                    PhysElement::Pair {
                        mode,
                        m: m.map(|row| row.map(|x| x * eta_amp)),
                    }
                }
            }
            Element::Bs { mode, c, s } => {
                let d = coupler();
                if d == 0.0 {
                    PhysElement::Bs { mode, c, s }
                } else {
                    let (s2, c2) = (s.atan2(c) + d).sin_cos();
                    PhysElement::Bs { mode, c: c2, s: s2 }
                }
            }
            Element::Phase { mode, phasor } => {
                let err = shifters[next_shifter].error_rad();
                next_shifter += 1;
                if err == 0.0 {
                    PhysElement::Phase { mode, phasor }
                } else {
                    PhysElement::Phase {
                        mode,
                        phasor: phasor * C64::from_polar(1.0, err),
                    }
                }
            }
            Element::Scale { mode, factor } => PhysElement::Scale { mode, factor },
        };
        out.push(phys)?;
    }
    Ok(Realisation {
        mesh: out,
        shifters,
        couplers_rad,
    })
}
