//! The Φ program format, in TOML or JSON (one schema, read through serde in both cases), and
//! [`Program::from_path`], which also reads Strawberry Fields' Blackbird (`.xbb`, see
//! [`crate::blackbird`]).
//!
//! ```toml
//! modes = 4                 # spatial modes, 1 ..= 4096
//! channels = 1              # wavelength channels, 1 ..= 64 (default 1)
//! wavelengths_nm = [1550.0] # one per channel (default: the ITU 100 GHz grid from 193.1 THz)
//! input = [[1, 0], [0, 0], [0, 0], [0, 0]]   # one [re, im] amplitude per mode
//!
//! [[op]]
//! kind = "mzi"              # T(θ,φ) on modes (m, m+1)
//! modes = [0, 1]
//! theta = 0.7853981633974483
//! phi = 0.0
//!
//! [[op]]
//! kind = "unitary"          # compiled to a Clements mesh on modes 1, 2
//! modes = [1, 2]
//! matrix = [[[0, 0], [1, 0]], [[1, 0], [0, 0]]]
//!
//! [[op]]
//! kind = "delay"            # e^{−i·2π·c₀·τ/λ_w} on mode 3 in channel w
//! mode = 3
//! delay_ps = 1.5
//!
//! [[op]]
//! kind = "matvec"           # any M × N matrix via the SVD (here 2 × 1 on modes 2, 3)
//! modes = [2, 3]
//! matrix = [[[0.5, 0]], [[0, 0.5]]]
//!
//! [detect]
//! kind = "intensity"        # or "homodyne" with lo_phase
//! shot_noise = true
//! shots = 10
//! ```
//!
//! With `channels > 1`, `input` holds one such array per channel. Every operation but `delay`
//! acts identically on every channel; a delay's phase depends on the channel's wavelength, so
//! the mesh is built per channel ([`Program::mesh_for_channel`]). `docs/phi.md` lists every key,
//! its units and limits. Unknown keys are refused. Every error names `file:line:column` and the
//! key path (`op[2].modes`), with a hint.

use serde::Deserialize;

use crate::clements::{decompose, Decomposition};
pub use crate::detect::Detect;
use crate::detect::{Adc, HomodyneDetect, IntensityDetect};
use crate::mesh::{Element, Mesh};
use crate::mzi::Mzi;
use crate::svd::MatVec;
use crate::{Matrix, PhiError, C64};

/// Largest program file, in bytes.
pub const PROGRAM_FILE_BYTES_MAX: usize = 64 << 20;
/// Most spatial modes in a program.
pub const MODES_MAX: usize = 4096;
/// Most wavelength channels in a program.
pub const CHANNELS_MAX: usize = 64;
/// Most operations in a program.
pub const OPS_MAX: usize = 100_000;
/// Most modes of one `unitary` operation (its decomposition is O(N³)).
pub const UNITARY_MODES_MAX: usize = 1024;
/// Most compiled mesh elements (MZIs, splitters, phases, attenuators) in a program.
pub const ELEMENTS_MAX: usize = 4_000_000;
/// Largest |re| or |im| of an input amplitude.
pub const AMPLITUDE_ABS_MAX: f64 = 1e100;
/// Largest |θ| or |φ| of an operation, in radians.
pub const ANGLE_ABS_MAX_RAD: f64 = 1e6;
/// Largest attenuation, in dB.
pub const ATTENUATION_DB_MAX: f64 = 300.0;
/// Largest single delay, in picoseconds (1 µs, about 200 m of fibre). The delay's phase is
/// computed from c₀·τ/λ in cycles; at this limit a double's rounding is ~1e−7 rad.
pub const DELAY_PS_MAX: f64 = 1e6;
/// Shortest channel wavelength, in nanometres.
pub const WAVELENGTH_NM_MIN: f64 = 100.0;
/// Longest channel wavelength, in nanometres.
pub const WAVELENGTH_NM_MAX: f64 = 100_000.0;
/// The speed of light in vacuum, m/s (exact, SI).
pub const SPEED_OF_LIGHT_M_PER_S: f64 = 299_792_458.0;
/// The first frequency of the default channel grid, in THz (ITU-T G.694.1 anchor).
pub const GRID_ANCHOR_THZ: f64 = 193.1;
/// The spacing of the default channel grid, in THz (100 GHz).
pub const GRID_SPACING_THZ: f64 = 0.1;
/// Largest `hbar` of homodyne detection.
pub const HBAR_MAX: f64 = 1e6;
/// Largest `full_scale` of an ADC, in photons per window.
pub const FULL_SCALE_PHOTONS_MAX: f64 = 1e200;

/// The wavelength of channel `w` on the default grid, in nm: `c₀ / (193.1 THz + w · 0.1 THz)`.
pub fn grid_wavelength_nm(w: usize) -> f64 {
    SPEED_OF_LIGHT_M_PER_S / ((GRID_ANCHOR_THZ + GRID_SPACING_THZ * w as f64) * 1e12) * 1e9
}

/// The phase in radians, in (−2π, 0], that a delay of `delay_ps` gives coherent light of
/// wavelength `wavelength_nm`: `−2π · frac(c₀·τ/λ)`. XDV writes a field's time dependence as
/// `e^{+iωt}`, so a delay τ (E(t) → E(t − τ)) multiplies the amplitude by `e^{−iωτ}` with
/// `ω = 2πc₀/λ`: a delay is the phase `phase` φ = −ωτ (mod 2π), a phase lag. The fractional
/// cycles are taken before multiplying by 2π so that long delays keep their precision.
pub fn delay_phase(delay_ps: f64, wavelength_nm: f64) -> f64 {
    // c₀ τ / λ with τ in ps and λ in nm: 299 792 458 · 1e−12 / 1e−9 = 299 792.458.
    let cycles = SPEED_OF_LIGHT_M_PER_S * 1e-3 * delay_ps / wavelength_nm;
    -2.0 * std::f64::consts::PI * (cycles - cycles.floor())
}

/// A checked Φ program.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    /// Spatial modes N.
    pub modes: usize,
    /// Wavelength channels W.
    pub channels: usize,
    /// The wavelength of each channel, in nm.
    pub wavelengths_nm: Vec<f64>,
    /// The input field: `input[w][m]` is the amplitude of mode m in channel w.
    pub input: Vec<Vec<C64>>,
    /// The operations, in order.
    pub ops: Vec<Op>,
    /// The detection at the end.
    pub detect: Detect,
}

/// One checked operation.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// `a_mode ← e^{iφ} a_mode`.
    Phase {
        /// The mode.
        mode: usize,
        /// φ in radians.
        phi: f64,
    },
    /// An MZI `T(θ, φ)` on modes `(m, m+1)`.
    Mzi(Mzi),
    /// A beam splitter `B(θ) = [[cos θ, i sin θ], [i sin θ, cos θ]]` on modes `(m, m+1)`.
    Bs {
        /// The two adjacent modes `[m, m+1]`.
        modes: [usize; 2],
        /// θ in radians.
        theta: f64,
    },
    /// Power transmission η on one mode: `a_mode ← √η · a_mode`.
    Attenuate {
        /// The mode.
        mode: usize,
        /// The power transmission η in [0, 1] (from `eta`, or `10^(−db/10)` from `db`).
        eta: f64,
    },
    /// A unitary on the contiguous modes `first_mode .. first_mode + matrix.n()`, compiled to a
    /// Clements mesh.
    Unitary {
        /// The lowest of its modes.
        first_mode: usize,
        /// The matrix as given.
        matrix: Matrix,
        /// Its Clements decomposition (on modes `0..n`, shifted by `first_mode` when applied).
        decomposition: Decomposition,
    },
    /// A delay τ on one mode: `a_mode ← e^{−i·2π·c₀·τ/λ_w} a_mode` in channel w (see
    /// [`delay_phase`]); τ counts toward the program's optical path delay.
    Delay {
        /// The mode.
        mode: usize,
        /// τ in picoseconds, ≥ 0.
        delay_ps: f64,
    },
    /// Any M × N matrix `A` on the contiguous modes `first_mode .. first_mode + max(M, N)`,
    /// through its SVD: the output on the first M modes is `A·x / s` (see [`crate::svd`]).
    Matvec {
        /// The lowest of its modes.
        first_mode: usize,
        /// The compiled matrix (meshes for U and V†, attenuators, the scale s).
        matvec: MatVec,
    },
}

/// What a program reports about itself besides its output field.
#[derive(Clone, Debug, PartialEq)]
pub struct ProgramReport {
    /// The sum of all `delay` operations, in picoseconds: the program's optical path budget.
    pub optical_delay_ps: f64,
    /// One entry per `matvec`, in program order.
    pub matvec: Vec<MatvecReport>,
}

/// The figures of one `matvec` operation.
#[derive(Clone, Debug, PartialEq)]
pub struct MatvecReport {
    /// Its index among the program's operations.
    pub op: usize,
    /// M × N.
    pub shape: [usize; 2],
    /// The scale s = σ_max: the mesh outputs `A·x / s`.
    pub scale: f64,
    /// `20·log10(s)` dB, the power of `A·x` over that of the optical output.
    pub implied_loss_db: f64,
    /// The singular values, largest first (of the zero-padded K × K matrix).
    pub singular_values: Vec<f64>,
}

impl ProgramReport {
    /// As JSON: `{"optical_delay_ps", "matvec": [{"op", "shape", "scale", "implied_loss_db",
    /// "singular_values"}, ...]}`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "optical_delay_ps": self.optical_delay_ps,
            "matvec": self.matvec.iter().map(|m| serde_json::json!({
                "op": m.op,
                "shape": m.shape,
                "scale": m.scale,
                "implied_loss_db": m.implied_loss_db,
                "singular_values": m.singular_values,
            })).collect::<Vec<_>>(),
        })
    }
}

// ----- the schema, as serde reads it -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProgram {
    modes: i64,
    channels: Option<i64>,
    wavelengths_nm: Option<Vec<f64>>,
    input: RawInput,
    #[serde(default)]
    op: Vec<RawOp>,
    detect: Option<RawDetect>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawInput {
    Single(Vec<[f64; 2]>),
    PerChannel(Vec<Vec<[f64; 2]>>),
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
enum RawOp {
    Phase {
        mode: i64,
        phi: f64,
    },
    Mzi {
        modes: Vec<i64>,
        theta: f64,
        phi: f64,
    },
    Bs {
        modes: Vec<i64>,
        theta: f64,
    },
    Attenuate {
        mode: i64,
        eta: Option<f64>,
        db: Option<f64>,
    },
    Unitary {
        modes: Vec<i64>,
        matrix: Vec<Vec<[f64; 2]>>,
    },
    Delay {
        mode: i64,
        delay_ps: Option<f64>,
        delay_ns: Option<f64>,
    },
    Matvec {
        modes: Vec<i64>,
        matrix: Vec<Vec<[f64; 2]>>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDetect {
    kind: String,
    modes: Option<Vec<i64>>,
    shots: Option<i64>,
    shot_noise: Option<bool>,
    adc_bits: Option<i64>,
    full_scale: Option<f64>,
    lo_phase: Option<RawPhases>,
    hbar: Option<f64>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawPhases {
    One(f64),
    PerMode(Vec<f64>),
}

/// One step of a key path.
#[derive(Clone, Debug)]
enum Seg {
    Key(&'static str),
    Idx(usize),
}

fn path_string(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) if s.is_empty() => s.push_str(k),
            Seg::Key(k) => {
                s.push('.');
                s.push_str(k);
            }
            Seg::Idx(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// A value error found after the schema was read, with the path of the offending key.
struct Issue {
    path: Vec<Seg>,
    message: String,
    hint: String,
}

fn issue(path: Vec<Seg>, message: impl Into<String>, hint: impl Into<String>) -> Issue {
    Issue {
        path,
        message: message.into(),
        hint: hint.into(),
    }
}

#[derive(Clone, Copy)]
enum Format {
    Toml,
    Json,
}

impl Program {
    /// Reads and checks a program in TOML; `origin` (a file name) names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Program, PhiError> {
        Self::parse(text, origin, Format::Toml)
    }

    /// Reads and checks a program in JSON (the same schema as TOML: `"op"` is an array of
    /// objects); `origin` names it in errors.
    pub fn from_json(text: &str, origin: &str) -> Result<Program, PhiError> {
        Self::parse(text, origin, Format::Json)
    }

    fn parse(text: &str, origin: &str, format: Format) -> Result<Program, PhiError> {
        if text.len() > PROGRAM_FILE_BYTES_MAX {
            return Err(PhiError::Limit {
                what: "the program file size in bytes".into(),
                value: text.len() as u64,
                max: PROGRAM_FILE_BYTES_MAX as u64,
                hint: "split the program, or give large unitaries as smaller blocks".into(),
            });
        }
        let raw: RawProgram = match format {
            Format::Toml => toml::from_str(text).map_err(|e| {
                let start = e.span().map_or(0, |s| s.start);
                let message = e.message().trim().to_string();
                let (mut line, mut column) = line_col(text, start);
                let field = field_in_message(&message);
                // An unknown key inside a table: point at the key itself, not the table.
                if let Some(f) = field
                    .as_deref()
                    .filter(|_| message.starts_with("unknown field"))
                {
                    if let Some((l, c)) = key_line_after(text, start, f) {
                        (line, column) = (l, c);
                    }
                }
                let mut key = field
                    .clone()
                    .or_else(|| key_on_line(text, line))
                    .unwrap_or_else(|| "(document)".into());
                if toml_op_index(text, start).is_some() {
                    // serde reads an [[op]] table as a whole (its `kind` picks the shape), so its
                    // errors point at the table, or at the whole array: find the op, and the key.
                    if let Some((i, k)) = failing_op(text) {
                        let unknown = message.starts_with("unknown field");
                        let name = k.or(field.as_deref().and_then(static_key));
                        let mut path = vec![Seg::Key("op"), Seg::Idx(i)];
                        path.extend(name.map(Seg::Key));
                        if unknown {
                            // Keep the position of the unknown key found above.
                            key = format!(
                                "{}.{}",
                                path_string(&path),
                                field.as_deref().unwrap_or("?")
                            );
                        } else {
                            if let Some((l, c)) = toml_position(text, &path) {
                                (line, column) = (l, c);
                            }
                            key = path_string(&path);
                        }
                    }
                }
                PhiError::Program {
                    file: origin.into(),
                    position: Some((line, column)),
                    hint: hint_for(&key, &message),
                    key,
                    message: untagged_message(message),
                }
            })?,
            Format::Json => serde_json::from_str(text).map_err(|e| {
                let message = e.to_string();
                // serde_json's message ends with " at line L column C"; keep the reason only.
                let message = message
                    .split(" at line ")
                    .next()
                    .unwrap_or(&message)
                    .to_string();
                let key = field_in_message(&message)
                    .or_else(|| json_key_before(text, e.line(), e.column()))
                    .unwrap_or_else(|| "(document)".into());
                PhiError::Program {
                    file: origin.into(),
                    position: Some((e.line(), e.column())),
                    hint: hint_for(&key, &message),
                    key,
                    message: untagged_message(message),
                }
            })?,
        };
        check(raw).map_err(|i| {
            let position = match format {
                Format::Toml => toml_position(text, &i.path),
                Format::Json => json_position(text, &i.path),
            };
            PhiError::Program {
                file: origin.into(),
                position,
                key: path_string(&i.path),
                message: i.message,
                hint: i.hint,
            }
        })
    }

    /// Reads a program from a file, choosing the reader by the extension: `.toml`, `.json`, or
    /// `.xbb` (Blackbird, [`crate::blackbird`]); the path names the program in errors. Refuses
    /// other extensions and files above [`PROGRAM_FILE_BYTES_MAX`].
    pub fn from_path(path: &std::path::Path) -> Result<Program, PhiError> {
        use std::io::Read as _;
        let origin = path.display().to_string();
        let io_err = |e: std::io::Error| PhiError::Program {
            file: origin.clone(),
            position: None,
            key: "(document)".into(),
            message: format!("cannot read the file: {e}"),
            hint: "check the path and its permissions".into(),
        };
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let kind =
            match ext.as_deref() {
                Some(k @ ("toml" | "json" | "xbb")) => k.to_string(),
                other => return Err(PhiError::Program {
                    file: origin.clone(),
                    position: None,
                    key: "(document)".into(),
                    message: format!(
                        "the extension {} names no Φ program format",
                        other.map_or("(none)".to_string(), |e| format!("`.{e}`"))
                    ),
                    hint: "name the file .toml or .json (XDV's program format) or .xbb (Blackbird)"
                        .into(),
                }),
            };
        let file = std::fs::File::open(path).map_err(io_err)?;
        let mut text = String::new();
        file.take(PROGRAM_FILE_BYTES_MAX as u64 + 1)
            .read_to_string(&mut text)
            .map_err(io_err)?;
        Program::from_text(&text, &origin, &kind)
    }

    /// Reads a program from its text in the format `kind` names: `"toml"`, `"json"` or `"xbb"`
    /// (Blackbird), as [`Program::format_of`] gives it for a file name.
    pub fn from_text(text: &str, origin: &str, kind: &str) -> Result<Program, PhiError> {
        match kind {
            "json" => Program::from_json(text, origin),
            "xbb" => crate::blackbird::from_blackbird(text, origin),
            _ => Program::from_toml(text, origin),
        }
    }

    /// The format of a program file by its extension: `"toml"`, `"json"` or `"xbb"`; `None` for
    /// any other extension.
    pub fn format_of(name: &str) -> Option<&'static str> {
        let ext = std::path::Path::new(name)
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase)?;
        match ext.as_str() {
            "toml" => Some("toml"),
            "json" => Some("json"),
            "xbb" => Some("xbb"),
            _ => None,
        }
    }

    /// The program's operations as one mesh of elements, for channel 0 (see
    /// [`Program::mesh_for_channel`]; the two are the same on every channel unless the program
    /// has a `delay`).
    pub fn mesh(&self) -> Mesh {
        self.mesh_for_channel(0)
    }

    /// Whether every channel sees the same mesh (no `delay`, or a single channel).
    pub fn is_channel_independent(&self) -> bool {
        self.channels == 1 || !self.ops.iter().any(|op| matches!(op, Op::Delay { .. }))
    }

    /// What the program reports besides its field: the optical path delay and each `matvec`'s
    /// scale.
    pub fn report(&self) -> ProgramReport {
        let mut optical_delay_ps = 0.0;
        let mut matvec = Vec::new();
        for (i, op) in self.ops.iter().enumerate() {
            match op {
                Op::Delay { delay_ps, .. } => optical_delay_ps += delay_ps,
                Op::Matvec { matvec: mv, .. } => matvec.push(MatvecReport {
                    op: i,
                    shape: [mv.rows, mv.cols],
                    scale: mv.scale,
                    implied_loss_db: mv.implied_loss_db(),
                    singular_values: mv.singular_values.clone(),
                }),
                _ => {}
            }
        }
        ProgramReport {
            optical_delay_ps,
            matvec,
        }
    }

    /// The program's operations as one mesh of elements for channel `channel` (unitaries expanded
    /// into their MZIs and output phases, matvecs into two meshes and attenuators, delays into
    /// the phase they give at the channel's wavelength), in application order. A channel out of
    /// range is read as channel 0.
    pub fn mesh_for_channel(&self, channel: usize) -> Mesh {
        let wavelength_nm = self
            .wavelengths_nm
            .get(channel)
            .or(self.wavelengths_nm.first())
            .copied()
            .unwrap_or_else(|| grid_wavelength_nm(0));
        let mut mesh = Mesh::new(self.modes);
        for op in &self.ops {
            // Every op was checked against `modes` when the program was read, so these pushes
            // cannot fail; a failure would be a bug, reported rather than ignored.
            let pushed = match op {
                Op::Phase { mode, phi } => mesh.push(Element::phase(*mode, *phi)),
                Op::Mzi(z) => mesh.push(Element::mzi(z)),
                Op::Bs { modes, theta } => mesh.push(Element::bs(modes[0], *theta)),
                Op::Attenuate { mode, eta } => mesh.push(Element::Scale {
                    mode: *mode,
                    factor: eta.sqrt(),
                }),
                Op::Unitary {
                    first_mode,
                    decomposition,
                    ..
                } => mesh.push_decomposition(decomposition, *first_mode),
                Op::Delay { mode, delay_ps } => {
                    mesh.push(Element::phase(*mode, delay_phase(*delay_ps, wavelength_nm)))
                }
                Op::Matvec { first_mode, matvec } => matvec.push_to(&mut mesh, *first_mode),
            };
            debug_assert!(
                pushed.is_ok(),
                "a checked op did not fit its mesh: {pushed:?}"
            );
        }
        mesh
    }
}

/// The entries of op `i`'s `matrix`, row-major, each row `cols` long (`mismatch(row, len)` gives
/// the message and hint for one that is not) and every entry finite.
fn matrix_entries(
    i: usize,
    matrix: &[Vec<[f64; 2]>],
    cols: usize,
    mismatch: impl Fn(usize, usize) -> (String, &'static str),
) -> Result<Vec<C64>, Issue> {
    let mut data = Vec::with_capacity(matrix.len() * cols);
    for (r, row) in matrix.iter().enumerate() {
        if row.len() != cols {
            let (message, hint) = mismatch(r, row.len());
            return Err(issue(
                vec![Seg::Key("op"), Seg::Idx(i), Seg::Key("matrix"), Seg::Idx(r)],
                message,
                hint,
            ));
        }
        for (col, [re, im]) in row.iter().enumerate() {
            if !(re.is_finite() && im.is_finite()) {
                return Err(issue(
                    vec![
                        Seg::Key("op"),
                        Seg::Idx(i),
                        Seg::Key("matrix"),
                        Seg::Idx(r),
                        Seg::Idx(col),
                    ],
                    format!("entry [{re}, {im}] is not finite"),
                    "entries are [re, im] with finite numbers",
                ));
            }
            data.push(C64::new(*re, *im));
        }
    }
    Ok(data)
}

fn finite_angle(v: f64, path: Vec<Seg>) -> Result<f64, Issue> {
    if v.is_finite() && v.abs() <= ANGLE_ABS_MAX_RAD {
        Ok(v)
    } else {
        Err(issue(
            path,
            format!(
                "the angle {v} is not a finite number of radians within ±{ANGLE_ABS_MAX_RAD:e}"
            ),
            "give the angle in radians, e.g. 0.785398 for π/4",
        ))
    }
}

fn mode_in_range(m: i64, modes: usize, path: Vec<Seg>) -> Result<usize, Issue> {
    if m >= 0 && (m as u64) < modes as u64 {
        Ok(m as usize)
    } else {
        Err(issue(
            path,
            format!("mode {m} is outside 0 ..= {}", modes - 1),
            format!("modes are numbered from 0; this program declares modes = {modes}"),
        ))
    }
}

fn adjacent_pair(v: &[i64], modes: usize, path: Vec<Seg>) -> Result<[usize; 2], Issue> {
    if v.len() != 2 {
        return Err(issue(
            path,
            format!("{} modes given, 2 expected", v.len()),
            "write modes = [m, m + 1]",
        ));
    }
    let a = mode_in_range(v[0], modes, path.clone())?;
    let b = mode_in_range(v[1], modes, path.clone())?;
    if b != a + 1 {
        return Err(issue(
            path,
            format!("modes [{a}, {b}] are not adjacent and ascending"),
            "a two-mode element couples modes [m, m + 1]; route other pairs through a unitary",
        ));
    }
    Ok([a, b])
}

fn amplitudes(v: &[[f64; 2]], modes: usize, path: Vec<Seg>) -> Result<Vec<C64>, Issue> {
    if v.len() != modes {
        return Err(issue(
            path,
            format!("{} amplitudes given for {modes} modes", v.len()),
            "give one [re, im] amplitude per mode",
        ));
    }
    v.iter()
        .enumerate()
        .map(|(m, [re, im])| {
            if re.is_finite()
                && im.is_finite()
                && re.abs() <= AMPLITUDE_ABS_MAX
                && im.abs() <= AMPLITUDE_ABS_MAX
            {
                Ok(C64::new(*re, *im))
            } else {
                let mut p = path.clone();
                p.push(Seg::Idx(m));
                Err(issue(
                    p,
                    format!(
                        "the amplitude [{re}, {im}] is not finite or exceeds {AMPLITUDE_ABS_MAX:e}"
                    ),
                    "give [re, im] with finite numbers",
                ))
            }
        })
        .collect()
}

fn count(v: i64, what: &'static str, max: usize) -> Result<usize, Issue> {
    if v >= 1 && v as u64 <= max as u64 {
        Ok(v as usize)
    } else {
        Err(issue(
            vec![Seg::Key(what)],
            format!("{what} = {v} is outside 1 ..= {max}"),
            format!("give a whole number of {what} from 1 to {max}"),
        ))
    }
}

/// Checks a program read by serde against the values' rules and limits, compiling unitaries.
fn check(raw: RawProgram) -> Result<Program, Issue> {
    let modes = count(raw.modes, "modes", MODES_MAX)?;
    let channels = count(raw.channels.unwrap_or(1), "channels", CHANNELS_MAX)?;
    let wavelengths_nm = match raw.wavelengths_nm {
        None => (0..channels).map(grid_wavelength_nm).collect(),
        Some(v) => {
            if v.len() != channels {
                return Err(issue(
                    vec![Seg::Key("wavelengths_nm")],
                    format!("{} wavelengths given for {channels} channels", v.len()),
                    "give one wavelength in nm per channel, or leave the key out for the 100 GHz grid",
                ));
            }
            for (w, &l) in v.iter().enumerate() {
                if !(WAVELENGTH_NM_MIN..=WAVELENGTH_NM_MAX).contains(&l) {
                    return Err(issue(
                        vec![Seg::Key("wavelengths_nm"), Seg::Idx(w)],
                        format!("the wavelength {l} nm is outside [{WAVELENGTH_NM_MIN}, {WAVELENGTH_NM_MAX}] nm"),
                        "give the channel's vacuum wavelength in nm, e.g. 1550.12",
                    ));
                }
            }
            v
        }
    };
    let input = match raw.input {
        RawInput::Single(v) => {
            if channels != 1 {
                return Err(issue(
                    vec![Seg::Key("input")],
                    format!("one array of amplitudes given for {channels} channels"),
                    "with channels > 1 write input = [[[re, im], ...], ...], one array per channel",
                ));
            }
            vec![amplitudes(&v, modes, vec![Seg::Key("input")])?]
        }
        RawInput::PerChannel(vs) => {
            if vs.len() != channels {
                return Err(issue(
                    vec![Seg::Key("input")],
                    format!(
                        "{} channels of amplitudes given, {channels} declared",
                        vs.len()
                    ),
                    "give one array of [re, im] amplitudes per channel",
                ));
            }
            vs.iter()
                .enumerate()
                .map(|(w, v)| amplitudes(v, modes, vec![Seg::Key("input"), Seg::Idx(w)]))
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    let power: f64 = input.iter().flatten().map(|a| a.norm_sqr()).sum();
    if power <= 0.0 || !power.is_finite() {
        return Err(issue(vec![Seg::Key("input")], format!("the input carries no usable light (total power {power})"), "give at least one non-zero amplitude (the transmission is relative to the input power)"));
    }
    if raw.op.len() > OPS_MAX {
        return Err(issue(
            vec![Seg::Key("op")],
            format!("{} operations, more than {OPS_MAX}", raw.op.len()),
            "split the program",
        ));
    }
    let mut ops = Vec::with_capacity(raw.op.len());
    let mut elements = 0usize;
    for (i, op) in raw.op.into_iter().enumerate() {
        let at = |k: &'static str| vec![Seg::Key("op"), Seg::Idx(i), Seg::Key(k)];
        let checked = match op {
            RawOp::Phase { mode, phi } => Op::Phase {
                mode: mode_in_range(mode, modes, at("mode"))?,
                phi: finite_angle(phi, at("phi"))?,
            },
            RawOp::Mzi {
                modes: v,
                theta,
                phi,
            } => {
                let [m, _] = adjacent_pair(&v, modes, at("modes"))?;
                Op::Mzi(Mzi::new(
                    m,
                    finite_angle(theta, at("theta"))?,
                    finite_angle(phi, at("phi"))?,
                ))
            }
            RawOp::Bs { modes: v, theta } => Op::Bs {
                modes: adjacent_pair(&v, modes, at("modes"))?,
                theta: finite_angle(theta, at("theta"))?,
            },
            RawOp::Attenuate { mode, eta, db } => {
                let mode = mode_in_range(mode, modes, at("mode"))?;
                let eta = match (eta, db) {
                    (Some(e), None) if (0.0..=1.0).contains(&e) => e,
                    (Some(e), None) => {
                        return Err(issue(
                            at("eta"),
                            format!("eta = {e} is outside [0, 1]"),
                            "eta is the power transmission: 1 is lossless, 0 blocks the mode",
                        ))
                    }
                    (None, Some(d)) if (0.0..=ATTENUATION_DB_MAX).contains(&d) => {
                        10f64.powf(-d / 10.0)
                    }
                    (None, Some(d)) => {
                        return Err(issue(
                            at("db"),
                            format!("db = {d} is outside [0, {ATTENUATION_DB_MAX}]"),
                            "db is the loss in dB, positive: 3 halves the power",
                        ))
                    }
                    (Some(_), Some(_)) => {
                        return Err(issue(
                            at("db"),
                            "both eta and db given",
                            "give one of eta (power transmission) or db (loss in dB)",
                        ))
                    }
                    (None, None) => {
                        return Err(issue(
                            vec![Seg::Key("op"), Seg::Idx(i)],
                            "attenuate needs eta or db",
                            "add eta = 0.5 (power transmission) or db = 3.0 (loss)",
                        ))
                    }
                };
                Op::Attenuate { mode, eta }
            }
            RawOp::Unitary { modes: v, matrix } => {
                if v.is_empty() || v.len() > UNITARY_MODES_MAX {
                    return Err(issue(
                        at("modes"),
                        format!(
                            "{} modes listed; a unitary acts on 1 ..= {UNITARY_MODES_MAX}",
                            v.len()
                        ),
                        "list the modes it acts on, e.g. modes = [2, 3, 4]",
                    ));
                }
                let first = mode_in_range(v[0], modes, at("modes"))?;
                for (k, &m) in v.iter().enumerate() {
                    let m = mode_in_range(m, modes, at("modes"))?;
                    if m != first + k {
                        return Err(issue(at("modes"), format!("the modes are not contiguous and ascending (position {k} holds {m}, {} expected)", first + k), "a unitary acts on a contiguous range [m, m + 1, ..., m + k − 1]; permute modes with MZIs in the cross state (θ = π/2) first"));
                    }
                }
                let k = v.len();
                if matrix.len() != k {
                    return Err(issue(
                        at("matrix"),
                        format!("{} rows for {k} modes", matrix.len()),
                        "the matrix is k × k for k listed modes",
                    ));
                }
                let data = matrix_entries(i, &matrix, k, |r, len| {
                    (
                        format!("row {r} has {len} entries, {k} expected"),
                        "the matrix is k × k for k listed modes",
                    )
                })?;
                let matrix = Matrix::from_flat(k, data)
                    .map_err(|e| issue(at("matrix"), e.to_string(), "the matrix is k × k"))?;
                let decomposition = decompose(&matrix).map_err(|e| {
                    issue(
                        at("matrix"),
                        e.to_string(),
                        "a unitary op needs a unitary matrix to full double precision",
                    )
                })?;
                Op::Unitary {
                    first_mode: first,
                    matrix,
                    decomposition,
                }
            }
            RawOp::Delay {
                mode,
                delay_ps,
                delay_ns,
            } => {
                let mode = mode_in_range(mode, modes, at("mode"))?;
                let (key, tau_ps) = match (delay_ps, delay_ns) {
                    (Some(p), None) => ("delay_ps", p),
                    (None, Some(n)) => ("delay_ns", n * 1e3),
                    (Some(_), Some(_)) => {
                        return Err(issue(
                            at("delay_ns"),
                            "both delay_ps and delay_ns given",
                            "give one of delay_ps or delay_ns",
                        ))
                    }
                    (None, None) => {
                        return Err(issue(
                            vec![Seg::Key("op"), Seg::Idx(i)],
                            "delay needs delay_ps or delay_ns",
                            "add delay_ps = 1.0 (picoseconds) or delay_ns = 0.001",
                        ))
                    }
                };
                if !(tau_ps.is_finite() && (0.0..=DELAY_PS_MAX).contains(&tau_ps)) {
                    return Err(issue(
                        at(key),
                        format!("the delay {tau_ps} ps is outside [0, {DELAY_PS_MAX:e}] ps"),
                        "a delay is a non-negative extra path, at most 1 µs",
                    ));
                }
                Op::Delay {
                    mode,
                    delay_ps: tau_ps,
                }
            }
            RawOp::Matvec { modes: v, matrix } => {
                let rows = matrix.len();
                let cols = matrix.first().map_or(0, Vec::len);
                if rows == 0 || cols == 0 {
                    return Err(issue(
                        at("matrix"),
                        "the matrix is empty",
                        "give M rows of N [re, im] entries",
                    ));
                }
                let k = rows.max(cols);
                if k > crate::svd::MATVEC_MODES_MAX {
                    return Err(issue(
                        at("matrix"),
                        format!(
                            "a {rows} × {cols} matrix spans {k} modes, more than {}",
                            crate::svd::MATVEC_MODES_MAX
                        ),
                        "split the matrix into blocks",
                    ));
                }
                if v.len() != k {
                    return Err(issue(
                        at("modes"),
                        format!("{} modes listed for a {rows} × {cols} matrix", v.len()),
                        format!("a matvec lists max(rows, columns) = {k} contiguous modes: inputs on the first {cols}, outputs on the first {rows}"),
                    ));
                }
                let first = mode_in_range(v[0], modes, at("modes"))?;
                for (j, &m) in v.iter().enumerate() {
                    let m = mode_in_range(m, modes, at("modes"))?;
                    if m != first + j {
                        return Err(issue(at("modes"), format!("the modes are not contiguous and ascending (position {j} holds {m}, {} expected)", first + j), "a matvec acts on a contiguous range [m, m + 1, ..., m + k − 1]"));
                    }
                }
                let data = matrix_entries(i, &matrix, cols, |r, len| {
                    (
                        format!("row {r} has {len} entries, row 0 has {cols}"),
                        "every row of the matrix has the same number of entries",
                    )
                })?;
                let matvec = MatVec::new(rows, cols, data).map_err(|e| {
                    issue(
                        at("matrix"),
                        e.to_string(),
                        "a matvec takes any finite, not all-zero M × N matrix",
                    )
                })?;
                Op::Matvec {
                    first_mode: first,
                    matvec,
                }
            }
        };
        elements += match &checked {
            Op::Unitary { decomposition, .. } => {
                decomposition.mzis.len() + decomposition.output_phases.len()
            }
            Op::Matvec { matvec, .. } => matvec.element_count(),
            _ => 1,
        };
        if elements > ELEMENTS_MAX {
            return Err(issue(
                vec![Seg::Key("op"), Seg::Idx(i)],
                format!("the program compiles to more than {ELEMENTS_MAX} mesh elements"),
                "use fewer or smaller unitaries",
            ));
        }
        ops.push(checked);
    }
    let detect = match raw.detect {
        None => Detect::intensity_all(modes),
        Some(d) => check_detect(d, modes, channels)?,
    };
    Ok(Program {
        modes,
        channels,
        wavelengths_nm,
        input,
        ops,
        detect,
    })
}

/// Checks the `[detect]` table.
fn check_detect(d: RawDetect, modes: usize, channels: usize) -> Result<Detect, Issue> {
    let at = |k: &'static str| vec![Seg::Key("detect"), Seg::Key(k)];
    let detected: Vec<usize> = match &d.modes {
        None => (0..modes).collect(),
        Some(v) => {
            if v.is_empty() {
                return Err(issue(
                    at("modes"),
                    "no modes listed",
                    "list the detected modes, or leave the key out to detect all",
                ));
            }
            let mut out = Vec::with_capacity(v.len());
            for &m in v {
                let m = mode_in_range(m, modes, at("modes"))?;
                if out.last().is_some_and(|&p| p >= m) {
                    return Err(issue(
                        at("modes"),
                        format!("mode {m} is not above the one before it"),
                        "list the detected modes once each, ascending",
                    ));
                }
                out.push(m);
            }
            out
        }
    };
    let shots = match d.shots {
        None => 1,
        Some(s) if s >= 1 && s as u64 <= crate::detect::SHOTS_MAX as u64 => s as usize,
        Some(s) => {
            return Err(issue(
                at("shots"),
                format!("shots = {s} is outside 1 ..= {}", crate::detect::SHOTS_MAX),
                "shots is the number of detection windows sampled",
            ))
        }
    };
    let samples = shots as u128 * channels as u128 * detected.len() as u128;
    if samples > crate::detect::SAMPLES_MAX as u128 {
        return Err(issue(
            at("shots"),
            format!(
                "{shots} shots × {channels} channels × {} modes = {samples} samples, more than {}",
                detected.len(),
                crate::detect::SAMPLES_MAX
            ),
            "take fewer shots or detect fewer modes",
        ));
    }
    match d.kind.as_str() {
        "intensity" => {
            if d.lo_phase.is_some() {
                return Err(issue(
                    at("lo_phase"),
                    "a local-oscillator phase belongs to homodyne detection",
                    "remove lo_phase, or write kind = \"homodyne\"",
                ));
            }
            if d.hbar.is_some() {
                return Err(issue(
                    at("hbar"),
                    "hbar belongs to homodyne detection",
                    "remove hbar, or write kind = \"homodyne\"",
                ));
            }
            let adc = match (d.adc_bits, d.full_scale) {
                (None, None) => None,
                (None, Some(_)) => {
                    return Err(issue(
                        at("full_scale"),
                        "full_scale without adc_bits",
                        "add adc_bits (1 ..= 24), or remove full_scale",
                    ))
                }
                (Some(_), None) => {
                    return Err(issue(
                        at("adc_bits"),
                        "adc_bits without full_scale",
                        "add full_scale, the reading of the top code in photons per window",
                    ))
                }
                (Some(b), Some(f)) => {
                    if !(1..=crate::detect::ADC_BITS_MAX as i64).contains(&b) {
                        return Err(issue(
                            at("adc_bits"),
                            format!(
                                "adc_bits = {b} is outside 1 ..= {}",
                                crate::detect::ADC_BITS_MAX
                            ),
                            "give the ADC's resolution in bits",
                        ));
                    }
                    if !(f.is_finite() && f > 0.0 && f <= FULL_SCALE_PHOTONS_MAX) {
                        return Err(issue(
                            at("full_scale"),
                            format!("full_scale = {f} is not a positive number of photons up to {FULL_SCALE_PHOTONS_MAX:e}"),
                            "give the reading of the top code in photons per window",
                        ));
                    }
                    Some(Adc {
                        bits: b as u32,
                        full_scale: f,
                    })
                }
            };
            Ok(Detect::Intensity(IntensityDetect {
                modes: detected,
                shot_noise: d.shot_noise.unwrap_or(false),
                adc,
                shots,
            }))
        }
        "homodyne" => {
            for (present, key) in [
                (d.shot_noise.is_some(), "shot_noise"),
                (d.adc_bits.is_some(), "adc_bits"),
                (d.full_scale.is_some(), "full_scale"),
            ] {
                if present {
                    return Err(issue(
                        at(key),
                        format!("{key} belongs to intensity detection"),
                        "homodyne detection always carries vacuum noise; remove the key",
                    ));
                }
            }
            let lo_phase = match d.lo_phase {
                None => vec![0.0; detected.len()],
                Some(RawPhases::One(p)) => vec![finite_angle(p, at("lo_phase"))?; detected.len()],
                Some(RawPhases::PerMode(v)) => {
                    if v.len() != detected.len() {
                        return Err(issue(
                            at("lo_phase"),
                            format!("{} phases for {} detected modes", v.len(), detected.len()),
                            "give one phase (for every mode) or one per detected mode",
                        ));
                    }
                    v.iter()
                        .enumerate()
                        .map(|(k, &p)| {
                            finite_angle(
                                p,
                                vec![Seg::Key("detect"), Seg::Key("lo_phase"), Seg::Idx(k)],
                            )
                        })
                        .collect::<Result<Vec<_>, _>>()?
                }
            };
            let hbar = d.hbar.unwrap_or(crate::detect::HBAR_DEFAULT);
            if !(hbar.is_finite() && hbar > 0.0 && hbar <= HBAR_MAX) {
                return Err(issue(
                    at("hbar"),
                    format!("hbar = {hbar} is not a positive number up to {HBAR_MAX:e}"),
                    "hbar is the quadrature convention's ħ: 2 (Strawberry Fields' default) or 1",
                ));
            }
            Ok(Detect::Homodyne(HomodyneDetect {
                modes: detected,
                lo_phase,
                hbar,
                shots,
            }))
        }
        other => Err(issue(
            at("kind"),
            format!("unknown detection kind `{other}`"),
            "use kind = \"intensity\" or kind = \"homodyne\"",
        )),
    }
}

/// The key named in a serde message such as "unknown field `x`, expected …".
fn field_in_message(message: &str) -> Option<String> {
    for prefix in [
        "unknown field `",
        "missing field `",
        "duplicate field `",
        "duplicate key `",
    ] {
        if let Some(rest) = message.find(prefix).map(|i| &message[i + prefix.len()..]) {
            return rest.split('`').next().map(str::to_string);
        }
    }
    None
}

/// serde's message for a value matching no shape of `input`, in the program's words.
fn untagged_message(message: String) -> String {
    if message.contains("untagged enum RawInput") {
        "the value is neither an array of [re, im] pairs (one per mode) nor an array of such arrays (one per channel)".into()
    } else {
        message
    }
}

/// Line and column of the first `key = …` at or after byte `from`.
fn key_line_after(text: &str, from: usize, key: &str) -> Option<(usize, usize)> {
    let (first_line, _) = line_col(text, from);
    for (i, l) in text.lines().enumerate().skip(first_line - 1) {
        let trimmed = l.trim_start();
        if let Some((k, _)) = trimmed.split_once('=') {
            if k.trim().trim_matches('"') == key {
                return Some((i + 1, l.len() - trimmed.len() + 1));
            }
        }
    }
    None
}

/// The op keys, as static strings (for key paths).
fn static_key(k: &str) -> Option<&'static str> {
    [
        "kind", "mode", "modes", "theta", "phi", "eta", "db", "matrix", "delay_ps", "delay_ns",
    ]
    .into_iter()
    .find(|s| *s == k)
}

/// The first `[[op]]` table that does not read as an op, and the key in it whose value has the
/// wrong type, where one can be told.
fn failing_op(text: &str) -> Option<(usize, Option<&'static str>)> {
    let doc: toml::Table = text.parse().ok()?;
    let ops = doc.get("op")?.as_array()?;
    let i = ops
        .iter()
        .position(|v| v.clone().try_into::<RawOp>().is_err())?;
    let table = ops[i].as_table()?;
    let wrong = table.iter().find_map(|(k, v)| {
        let ok = match k.as_str() {
            "kind" => v.is_str(),
            "mode" => v.is_integer(),
            "theta" | "phi" | "eta" | "db" | "delay_ps" | "delay_ns" => {
                v.is_float() || v.is_integer()
            }
            "modes" => v
                .as_array()
                .is_some_and(|a| a.iter().all(|m| m.is_integer())),
            "matrix" => v.as_array().is_some_and(|rows| {
                rows.iter().all(|r| {
                    r.as_array().is_some_and(|r| {
                        r.iter().all(|z| {
                            z.as_array().is_some_and(|z| {
                                z.len() == 2 && z.iter().all(|x| x.is_float() || x.is_integer())
                            })
                        })
                    })
                })
            }),
            _ => true,
        };
        if ok {
            None
        } else {
            static_key(k)
        }
    });
    Some((i, wrong))
}

/// When byte `offset` lies inside the n-th `[[op]]` table (0-based), n.
fn toml_op_index(text: &str, offset: usize) -> Option<usize> {
    let (line, _) = line_col(text, offset);
    let mut index = None;
    let mut count = 0usize;
    for l in text.lines().take(line) {
        let t = l.trim();
        if t.starts_with("[[op]]") {
            index = Some(count);
            count += 1;
        } else if t.starts_with('[') {
            index = None;
        }
    }
    index
}

/// A hint for a schema error at `key`.
fn hint_for(key: &str, message: &str) -> String {
    let top = key
        .rsplit('.')
        .next()
        .unwrap_or(key)
        .split('[')
        .next()
        .unwrap_or(key);
    if message.contains("unknown field") {
        return "remove or correct the key; docs/phi.md lists every key".into();
    }
    if message.contains("unknown variant") || top == "kind" {
        return "an [[op]] kind is phase, mzi, bs, attenuate, delay, unitary or matvec; detection is the top-level [detect] table".into();
    }
    match top {
        "modes" => "modes is a whole number of modes (1 ..= 4096), or in an op a list of mode numbers like [0, 1]".into(),
        "channels" => "channels is a whole number of wavelength channels (1 ..= 64)".into(),
        "input" => "input is an array of [re, im] pairs, one per mode; with channels > 1, one such array per channel".into(),
        "matrix" => "matrix is an array of rows of [re, im] pairs".into(),
        "op" => "phase takes mode, phi; mzi takes modes = [m, m + 1], theta, phi; bs takes modes, theta; attenuate takes mode and eta or db; delay takes mode and delay_ps or delay_ns; unitary and matvec take modes and matrix; angles are numbers in radians, modes whole numbers".into(),
        "theta" | "phi" | "eta" | "db" | "mode" | "delay_ps" | "delay_ns" => format!("{top} is a number"),
        "wavelengths_nm" => "wavelengths_nm is an array of numbers in nm, one per channel".into(),
        "detect" | "lo_phase" | "shots" | "adc_bits" | "full_scale" | "hbar" | "shot_noise" => "see the [detect] table in docs/phi.md: kind, modes, shots, shot_noise, adc_bits, full_scale, lo_phase, hbar".into(),
        _ => "see docs/phi.md for the program format".into(),
    }
}

/// 1-based line and column (in characters) of byte `offset` of `text`.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

/// The key assigned on `line` (`key = …`), or the table named by a `[header]` there.
pub(crate) fn key_on_line(text: &str, line: usize) -> Option<String> {
    let l = text.lines().nth(line.checked_sub(1)?)?.trim();
    if let Some(h) = l.strip_prefix('[') {
        let name = h.trim_start_matches('[').split(']').next()?.trim();
        return (!name.is_empty()).then(|| name.to_string());
    }
    let (k, _) = l.split_once('=')?;
    let k = k.trim().trim_matches('"');
    (!k.is_empty()).then(|| k.to_string())
}

/// The nearest `"key":` at or before (line, column) of a JSON text.
fn json_key_before(text: &str, line: usize, column: usize) -> Option<String> {
    let mut offset = 0usize;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            offset += l.char_indices().nth(column).map_or(l.len(), |(b, _)| b);
            break;
        }
        offset += l.len();
    }
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let mut search = before;
    while let Some(colon) = search.rfind(':') {
        let head = search[..colon].trim_end();
        if let Some(stripped) = head.strip_suffix('"') {
            if let Some(open) = stripped.rfind('"') {
                return Some(stripped[open + 1..].to_string());
            }
        }
        search = &search[..colon];
    }
    None
}

/// The position of the value at `path` in a JSON text (which already parsed once): a small
/// scanner that follows the path and skips everything else.
fn json_position(text: &str, path: &[Seg]) -> Option<(usize, usize)> {
    let b = text.as_bytes();
    let ws = |mut i: usize| {
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        i
    };
    // The end (exclusive) of the string starting at the quote at i.
    let string_end = |mut i: usize| {
        i += 1;
        while i < b.len() {
            match b[i] {
                b'\\' => i += 2,
                b'"' => return Some(i + 1),
                _ => i += 1,
            }
        }
        None
    };
    // The end (exclusive) of the value starting at i.
    let value_end = |i: usize| -> Option<usize> {
        match *b.get(i)? {
            b'"' => string_end(i),
            b'{' | b'[' => {
                let mut depth = 0usize;
                let mut j = i;
                while j < b.len() {
                    match b[j] {
                        b'"' => {
                            j = string_end(j)?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                return Some(j + 1);
                            }
                        }
                        _ => {}
                    }
                    j += 1;
                }
                None
            }
            _ => {
                let mut j = i;
                while j < b.len()
                    && !matches!(b[j], b',' | b']' | b'}')
                    && !b[j].is_ascii_whitespace()
                {
                    j += 1;
                }
                Some(j)
            }
        }
    };
    let mut at = ws(0);
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if b.get(at) != Some(&b'{') {
                    break;
                }
                let mut i = ws(at + 1);
                let mut found = None;
                while b.get(i) == Some(&b'"') {
                    let end = string_end(i)?;
                    let name = &text[i + 1..end - 1];
                    let colon = ws(end);
                    let v = ws(colon + 1);
                    if name == *k {
                        found = Some(v);
                        break;
                    }
                    i = ws(value_end(v)?);
                    if b.get(i) == Some(&b',') {
                        i = ws(i + 1);
                    }
                }
                match found {
                    Some(v) => at = v,
                    None => break,
                }
            }
            Seg::Idx(n) => {
                if b.get(at) != Some(&b'[') {
                    break;
                }
                let mut i = ws(at + 1);
                let mut k = 0usize;
                while k < *n && i < b.len() && b[i] != b']' {
                    i = ws(value_end(i)?);
                    if b.get(i) == Some(&b',') {
                        i = ws(i + 1);
                    }
                    k += 1;
                }
                if k != *n || b.get(i).is_none_or(|c| *c == b']') {
                    break;
                }
                at = i;
            }
        }
    }
    Some(line_col(text, at))
}

/// The position of the value at `path` in a TOML text (which already parsed once).
fn toml_position(text: &str, path: &[Seg]) -> Option<(usize, usize)> {
    use toml::de::{DeTable, DeValue};
    let doc = DeTable::parse(text).ok()?;
    let mut span = doc.span();
    let mut value: Option<&DeValue<'_>> = None;
    let root = doc.get_ref();
    for seg in path {
        let next = match (seg, value) {
            (Seg::Key(k), None) => root
                .iter()
                .find(|(key, _)| key.get_ref().as_ref() == *k)
                .map(|(_, v)| v),
            (Seg::Key(k), Some(DeValue::Table(t))) => t
                .iter()
                .find(|(key, _)| key.get_ref().as_ref() == *k)
                .map(|(_, v)| v),
            (Seg::Idx(i), Some(DeValue::Array(a))) => a.get(*i),
            _ => None,
        };
        match next {
            Some(v) => {
                span = v.span();
                value = Some(v.get_ref());
            }
            None => break,
        }
    }
    Some(line_col(text, span.start))
}
