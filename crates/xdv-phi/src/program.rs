//! The Φ program format, in TOML or JSON (one schema, read through serde in both cases).
//!
//! ```toml
//! modes = 4                 # spatial modes, 1 ..= 4096
//! channels = 1              # wavelength channels, 1 ..= 64 (default 1)
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
//! [detect]
//! kind = "intensity"
//! ```
//!
//! With `channels > 1`, `input` holds one such array per channel. Operations act identically on
//! every channel (the model is wavelength-independent for now). `docs/phi.md` lists every key,
//! its units and limits. Unknown keys are refused. Every error names `file:line:column` and the
//! key path (`op[2].modes`), with a hint.

use serde::Deserialize;

use crate::clements::{decompose, Decomposition};
use crate::mesh::{Element, Mesh};
use crate::mzi::Mzi;
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

/// A checked Φ program.
#[derive(Clone, Debug, PartialEq)]
pub struct Program {
    /// Spatial modes N.
    pub modes: usize,
    /// Wavelength channels W.
    pub channels: usize,
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
}

/// The detection at the end of a program.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Detect {
    /// Noise-free intensities |a|² per mode and channel.
    #[default]
    Intensity,
}

// ----- the schema, as serde reads it -----

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProgram {
    modes: i64,
    channels: Option<i64>,
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDetect {
    kind: String,
    shot_noise: Option<bool>,
    adc_bits: Option<i64>,
    lo_phase: Option<f64>,
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

    /// The program's operations as one mesh of elements (unitaries expanded into their MZIs and
    /// output phases), in application order.
    pub fn mesh(&self) -> Mesh {
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
            };
            debug_assert!(
                pushed.is_ok(),
                "a checked op did not fit its mesh: {pushed:?}"
            );
        }
        mesh
    }
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
                let mut data = Vec::with_capacity(k * k);
                for (r, row) in matrix.iter().enumerate() {
                    if row.len() != k {
                        return Err(issue(
                            vec![Seg::Key("op"), Seg::Idx(i), Seg::Key("matrix"), Seg::Idx(r)],
                            format!("row {r} has {} entries, {k} expected", row.len()),
                            "the matrix is k × k for k listed modes",
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
        };
        elements += match &checked {
            Op::Unitary { decomposition, .. } => {
                decomposition.mzis.len() + decomposition.output_phases.len()
            }
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
        None => Detect::Intensity,
        Some(d) => {
            let at = |k: &'static str| vec![Seg::Key("detect"), Seg::Key(k)];
            match d.kind.as_str() {
                "intensity" => {}
                "homodyne" => {
                    return Err(issue(
                        at("kind"),
                        "homodyne detection is not supported yet",
                        "use kind = \"intensity\" (noise-free |a|² per mode)",
                    ))
                }
                other => {
                    return Err(issue(
                        at("kind"),
                        format!("unknown detection kind `{other}`"),
                        "use kind = \"intensity\"",
                    ))
                }
            }
            if d.shot_noise == Some(true) {
                return Err(issue(
                    at("shot_noise"),
                    "shot noise is not supported yet",
                    "remove shot_noise (intensities are noise-free for now)",
                ));
            }
            if d.adc_bits.is_some() {
                return Err(issue(
                    at("adc_bits"),
                    "ADC quantisation is not supported yet",
                    "remove adc_bits",
                ));
            }
            if d.lo_phase.is_some() {
                return Err(issue(at("lo_phase"), "a local-oscillator phase belongs to homodyne detection, which is not supported yet", "remove lo_phase"));
            }
            Detect::Intensity
        }
    };
    Ok(Program {
        modes,
        channels,
        input,
        ops,
        detect,
    })
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
        "kind", "mode", "modes", "theta", "phi", "eta", "db", "matrix",
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
            "theta" | "phi" | "eta" | "db" => v.is_float() || v.is_integer(),
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
        return "an [[op]] kind is phase, mzi, bs, attenuate or unitary (delay and matvec are not supported yet); detection is the top-level [detect] table".into();
    }
    match top {
        "modes" => "modes is a whole number of modes (1 ..= 4096), or in an op a list of mode numbers like [0, 1]".into(),
        "channels" => "channels is a whole number of wavelength channels (1 ..= 64)".into(),
        "input" => "input is an array of [re, im] pairs, one per mode; with channels > 1, one such array per channel".into(),
        "matrix" => "matrix is an array of rows of [re, im] pairs".into(),
        "op" => "phase takes mode, phi; mzi takes modes = [m, m + 1], theta, phi; bs takes modes, theta; attenuate takes mode and eta or db; unitary takes modes and matrix; angles are numbers in radians, modes whole numbers".into(),
        "theta" | "phi" | "eta" | "db" | "mode" => format!("{top} is a number"),
        _ => "see docs/phi.md for the program format".into(),
    }
}

/// 1-based line and column (in characters) of byte `offset` of `text`.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
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
fn key_on_line(text: &str, line: usize) -> Option<String> {
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
