//! The device model: what a (real or imagined) quantum processor can run and how noisy it is —
//! qubit count, coupling map, native gates, gate errors, gate durations, T1/T2 and readout error —
//! read from a TOML file, checked against circuits, and used by [`crate::noise`] to simulate it.
//!
//! # The device file
//!
//! Every key is listed here; any other key is refused. Times carry their unit in the key name.
//!
//! ```toml
//! name = "line5"                  # required: the device's name, used in messages
//! qubits = 5                      # required: number of physical qubits (1 ..= 100000)
//! coupling = [[0, 1], [1, 2]]     # undirected pairs that a multi-qubit gate may act on
//! # all_to_all = true             # instead of `coupling`: every pair is coupled
//! native_gates = ["rz", "sx", "x", "cx"]   # table gate names; omitted or ["*"] = every gate
//!
//! [gate_error]                    # error probability e of each gate (see below); default 0
//! one_qubit = 2.5e-4              # every gate on one qubit
//! two_qubit = 7.5e-3              # every gate on two or more qubits
//! [gate_error.by_name]            # per gate name; wins over everything else
//! rz = 0.0
//!
//! [duration_ns]                   # gate durations in nanoseconds (≥ 0); default 0
//! one_qubit = 36
//! two_qubit = 320
//! measure = 1400
//! reset = 1400                    # default: `measure`
//! [duration_ns.by_name]           # per gate name; wins over everything else
//! rz = 0
//!
//! [readout]                       # readout error; default 0
//! p01 = 0.010                     # P(read 1 | qubit was 0)
//! p10 = 0.016                     # P(read 0 | qubit was 1)
//! # error = 0.013                 # instead of p01/p10: symmetric
//!
//! [coherence]                     # default T1/T2 of every qubit; omitted = no decay
//! t1_us = 220                     # or t1_ns
//! t2_us = 140                     # or t2_ns; must be ≤ 2·T1; omitted = 2·T1 (no pure dephasing)
//!
//! [[qubit]]                       # per-qubit overrides, every key but `index` optional
//! index = 2
//! t1_us = 110                     # or t1_ns
//! t2_us = 70                      # or t2_ns
//! one_qubit_error = 4e-4          # e of one-qubit gates on this qubit (unless set by name)
//! readout_p01 = 0.02
//! readout_p10 = 0.03              # or readout_error (symmetric)
//!
//! [[pair]]                        # per-pair overrides of two-qubit gates
//! qubits = [3, 4]                 # must be coupled
//! error = 1.1e-2                  # e of two-qubit gates on this pair (unless set by name)
//! duration_ns = 400               # their duration (unless set by name)
//! ```
//!
//! Precedence: a `by_name` entry wins; then a `[[qubit]]`/`[[pair]]` override for a gate on that
//! qubit/pair; then the `one_qubit`/`two_qubit` default. A gate on three or more qubits uses the
//! two-qubit defaults and must have every pair of its qubits coupled.
//!
//! *Gate error* `e` is the probability that the gate is followed by a uniformly random
//! non-identity Pauli on its `k` qubits (each of the `4^k − 1` with probability `e/(4^k − 1)`):
//! the process infidelity of the gate. The depolarising parameter `λ` of
//! `ρ → (1 − λ)ρ + λ·I/d` (`d = 2^k`) is `λ = e·d²/(d² − 1)`, and the average gate infidelity is
//! `e·d/(d + 1)`.
//!
//! The coupling map is undirected: `[0, 1]` allows `cx q[0], q[1]` and `cx q[1], q[0]`.
//! Values are validated: probabilities in `[0, 1]`, durations finite and `≥ 0`, T1 and T2 finite
//! and `> 0`, `T2 ≤ 2·T1`, qubit indices in range, pairs distinct qubits, gate names in the table.
//! Errors name the file, line, column and key.
//!
//! [`Device::ideal`] is the default: all-to-all, every gate native, no noise. [`EXAMPLE_TOML`] is
//! the example above in full (a five-qubit line with IBM-like figures), [`Device::example`] parses
//! it. [`Device::restrict`] gives the sub-device on a partition of the qubits (renumbered from 0),
//! which [`crate::route::route`] routes a tenant's circuit onto.

use crate::circuit::{Circuit, Gate, Op};
use crate::gates;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use thiserror::Error;
use toml::Spanned;

/// The largest number of qubits a device may declare.
pub const DEVICE_QUBITS_MAX: u32 = 100_000;
/// The largest device file read.
pub const DEVICE_FILE_BYTES_MAX: u64 = 1 << 20;
/// The example device description (a five-qubit line), embedded.
pub const EXAMPLE_TOML: &str = include_str!("default_device.toml");

/// Why a device description was refused.
#[derive(Debug, Error, PartialEq)]
pub enum DeviceError {
    /// The file could not be read.
    #[error("{file}: cannot read the device file: {message}")]
    Read {
        /// The file.
        file: String,
        /// The system's message.
        message: String,
    },
    /// The file is larger than [`DEVICE_FILE_BYTES_MAX`].
    #[error("{file}: the device file is {bytes} bytes or more, more than the {max} allowed")]
    TooLarge {
        /// The file.
        file: String,
        /// Its size (for a device or pipe, which tells none, the bytes read before stopping).
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// Not valid TOML, an unknown key, or a value of the wrong type.
    #[error("{file}:{line}:{column}: {message}{}", key.as_ref().map(|k| format!(" (key `{k}`)")).unwrap_or_default())]
    Parse {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column (characters).
        column: usize,
        /// The key on that line, where one can be told.
        key: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// A value out of range or inconsistent with another.
    #[error("{file}:{line}:{column}: `{key}`: {message}; {hint}")]
    Invalid {
        /// The file.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column (characters).
        column: usize,
        /// The key, dotted (`coherence.t2_us`, `qubit[2].readout_p01`).
        key: String,
        /// What is wrong.
        message: String,
        /// How to fix it.
        hint: String,
    },
}

/// Why a circuit cannot run on a device.
#[derive(Debug, Error, PartialEq)]
pub enum DeviceCheckError {
    /// The circuit has more qubits than the device.
    #[error("the circuit uses {circuit} qubits but device '{device}' has {available}; use a larger device or fewer qubits")]
    TooManyQubits {
        /// The circuit's qubits.
        circuit: u32,
        /// The device's qubits.
        available: u32,
        /// The device.
        device: String,
    },
    /// A multi-qubit gate on a pair that is not coupled.
    #[error("{gate} ({position}): qubits {a} and {b} are not coupled on device '{device}'; couplings of {a}: {}; route the circuit (insert swaps) or choose coupled qubits", if neighbours.is_empty() { "none".to_string() } else { neighbours.iter().map(|q| q.to_string()).collect::<Vec<_>>().join(", ") })]
    NotCoupled {
        /// The gate as written (`cx q[0], q[3]`).
        gate: String,
        /// Where it is (`op 4`).
        position: String,
        /// First qubit of the uncoupled pair.
        a: u32,
        /// Second qubit.
        b: u32,
        /// The device.
        device: String,
        /// The qubits coupled to `a`.
        neighbours: Vec<u32>,
    },
    /// A gate the device does not run natively.
    #[error("{gate} ({position}): `{name}` is not a native gate of device '{device}' (native: {}); decompose it into native gates first", native.join(", "))]
    NotNative {
        /// The gate as written.
        gate: String,
        /// Where it is.
        position: String,
        /// Its name (`ctrl(1) @ h` for a controlled gate outside the table).
        name: String,
        /// The device.
        device: String,
        /// The native set.
        native: Vec<String>,
    },
}

/// Why [`Device::restrict`] refused a list of qubits.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum RestrictError {
    /// The list is empty.
    #[error("cannot restrict device '{device}' to no qubits; name at least one qubit")]
    Empty {
        /// The device.
        device: String,
    },
    /// A qubit the device does not have.
    #[error("cannot restrict device '{device}' to qubit {qubit}: it has {qubits} qubits, numbered 0 to {}", qubits.saturating_sub(1))]
    OutOfRange {
        /// The qubit named.
        qubit: u32,
        /// The device's qubit count.
        qubits: u32,
        /// The device.
        device: String,
    },
    /// A qubit named twice.
    #[error("cannot restrict device '{device}': qubit {qubit} is named twice")]
    Duplicate {
        /// The qubit named twice.
        qubit: u32,
        /// The device.
        device: String,
    },
}

/// A device: qubits, connectivity, native gates and noise figures.
#[derive(Clone, Debug, PartialEq)]
pub struct Device {
    name: String,
    qubits: u32,
    all_to_all: bool,
    coupling: BTreeSet<(u32, u32)>,
    native: Option<BTreeSet<String>>,
    err_1q: f64,
    err_2q: f64,
    err_by_name: BTreeMap<String, f64>,
    err_by_qubit: BTreeMap<u32, f64>,
    err_by_pair: BTreeMap<(u32, u32), f64>,
    dur_1q_ns: f64,
    dur_2q_ns: f64,
    dur_measure_ns: f64,
    dur_reset_ns: f64,
    dur_by_name: BTreeMap<String, f64>,
    dur_by_pair: BTreeMap<(u32, u32), f64>,
    t1_ns: Vec<f64>,
    t2_ns: Vec<f64>,
    readout: Vec<(f64, f64)>,
}

fn pair(a: u32, b: u32) -> (u32, u32) {
    (a.min(b), a.max(b))
}

impl Device {
    /// The ideal device on `n` qubits: all-to-all, every gate native, no noise, zero durations.
    pub fn ideal(n: u32) -> Device {
        Device {
            name: "ideal".into(),
            qubits: n,
            all_to_all: true,
            coupling: BTreeSet::new(),
            native: None,
            err_1q: 0.0,
            err_2q: 0.0,
            err_by_name: BTreeMap::new(),
            err_by_qubit: BTreeMap::new(),
            err_by_pair: BTreeMap::new(),
            dur_1q_ns: 0.0,
            dur_2q_ns: 0.0,
            dur_measure_ns: 0.0,
            dur_reset_ns: 0.0,
            dur_by_name: BTreeMap::new(),
            dur_by_pair: BTreeMap::new(),
            t1_ns: vec![f64::INFINITY; n as usize],
            t2_ns: vec![f64::INFINITY; n as usize],
            readout: vec![(0.0, 0.0); n as usize],
        }
    }

    /// The sub-device on `qubits` (physical qubits of this device): its qubit `i` is
    /// `qubits[i]`. It keeps the coupling edges among those qubits (renumbered; all-to-all stays
    /// all-to-all), every per-qubit figure (T1, T2, one-qubit error, readout) and per-pair
    /// override under the new numbering, and the same native gates, defaults, by-name entries
    /// and measure/reset durations. Its name is `"{name}[3,4,7]"`. The list is usually
    /// ascending (a partition), but any order of distinct qubits is accepted.
    ///
    /// A circuit on the sub-device behaves (predicted error, noise) as the same circuit written
    /// on the physical qubits `qubits[i]` of this device.
    pub fn restrict(&self, qubits: &[u32]) -> Result<Device, RestrictError> {
        if qubits.is_empty() {
            return Err(RestrictError::Empty {
                device: self.name.clone(),
            });
        }
        let mut index: BTreeMap<u32, u32> = BTreeMap::new();
        for (i, &q) in qubits.iter().enumerate() {
            if q >= self.qubits {
                return Err(RestrictError::OutOfRange {
                    qubit: q,
                    qubits: self.qubits,
                    device: self.name.clone(),
                });
            }
            if index.insert(q, i as u32).is_some() {
                return Err(RestrictError::Duplicate {
                    qubit: q,
                    device: self.name.clone(),
                });
            }
        }
        let renumber = |&(a, b): &(u32, u32)| -> Option<(u32, u32)> {
            Some(pair(*index.get(&a)?, *index.get(&b)?))
        };
        let names: Vec<String> = qubits.iter().map(|q| q.to_string()).collect();
        let per_qubit = |v: &[f64], default: f64| -> Vec<f64> {
            qubits
                .iter()
                .map(|&q| v.get(q as usize).copied().unwrap_or(default))
                .collect()
        };
        Ok(Device {
            name: format!("{}[{}]", self.name, names.join(",")),
            qubits: qubits.len() as u32,
            all_to_all: self.all_to_all,
            coupling: self.coupling.iter().filter_map(renumber).collect(),
            native: self.native.clone(),
            err_1q: self.err_1q,
            err_2q: self.err_2q,
            err_by_name: self.err_by_name.clone(),
            err_by_qubit: self
                .err_by_qubit
                .iter()
                .filter_map(|(q, &e)| Some((*index.get(q)?, e)))
                .collect(),
            err_by_pair: self
                .err_by_pair
                .iter()
                .filter_map(|(p, &e)| Some((renumber(p)?, e)))
                .collect(),
            dur_1q_ns: self.dur_1q_ns,
            dur_2q_ns: self.dur_2q_ns,
            dur_measure_ns: self.dur_measure_ns,
            dur_reset_ns: self.dur_reset_ns,
            dur_by_name: self.dur_by_name.clone(),
            dur_by_pair: self
                .dur_by_pair
                .iter()
                .filter_map(|(p, &d)| Some((renumber(p)?, d)))
                .collect(),
            t1_ns: per_qubit(&self.t1_ns, f64::INFINITY),
            t2_ns: per_qubit(&self.t2_ns, f64::INFINITY),
            readout: qubits
                .iter()
                .map(|&q| self.readout.get(q as usize).copied().unwrap_or((0.0, 0.0)))
                .collect(),
        })
    }

    /// The embedded example device ([`EXAMPLE_TOML`]).
    pub fn example() -> Device {
        match Device::from_toml(EXAMPLE_TOML, "default_device.toml") {
            Ok(d) => d,
            Err(e) => unreachable!("the embedded example device is valid: {e}"),
        }
    }

    /// Reads and parses a device file (at most [`DEVICE_FILE_BYTES_MAX`] bytes).
    pub fn load(path: &std::path::Path) -> Result<Device, DeviceError> {
        let file = path.display().to_string();
        let read_err = |e: std::io::Error| DeviceError::Read {
            file: file.clone(),
            message: e.to_string(),
        };
        let bytes = std::fs::metadata(path).map_err(read_err)?.len();
        if bytes > DEVICE_FILE_BYTES_MAX {
            return Err(DeviceError::TooLarge {
                file,
                bytes,
                max: DEVICE_FILE_BYTES_MAX,
            });
        }
        // A device or pipe reports no size: never read more than one byte past the limit.
        let mut text = String::new();
        std::fs::File::open(path)
            .map_err(read_err)?
            .take(DEVICE_FILE_BYTES_MAX + 1)
            .read_to_string(&mut text)
            .map_err(read_err)?;
        Device::from_toml(&text, &file)
    }

    /// Parses a device description; `file` names it in errors.
    pub fn from_toml(text: &str, file: &str) -> Result<Device, DeviceError> {
        if text.len() as u64 > DEVICE_FILE_BYTES_MAX {
            return Err(DeviceError::TooLarge {
                file: file.into(),
                bytes: text.len() as u64,
                max: DEVICE_FILE_BYTES_MAX,
            });
        }
        let raw: Raw = toml::from_str(text).map_err(|e| {
            let (line, column) = line_col(text, e.span().map_or(0, |s| s.start));
            DeviceError::Parse {
                file: file.into(),
                line,
                column,
                key: key_on_line(text, line),
                message: e.message().trim().to_string(),
            }
        })?;
        Validator { text, file }.build(raw)
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of physical qubits.
    pub fn qubits(&self) -> u32 {
        self.qubits
    }

    /// Whether every pair of qubits is coupled.
    pub fn is_all_to_all(&self) -> bool {
        self.all_to_all
    }

    /// Whether the device has no noise at all (every error, readout error and decay zero) —
    /// circuits then run exactly as on [`Device::ideal`].
    pub fn is_noiseless(&self) -> bool {
        self.err_1q == 0.0
            && self.err_2q == 0.0
            && self.err_by_name.values().all(|&e| e == 0.0)
            && self.err_by_qubit.values().all(|&e| e == 0.0)
            && self.err_by_pair.values().all(|&e| e == 0.0)
            && self.t1_ns.iter().all(|t| t.is_infinite())
            && self.t2_ns.iter().all(|t| t.is_infinite())
            && self.readout.iter().all(|&(a, b)| a == 0.0 && b == 0.0)
    }

    /// Whether `a` and `b` (distinct) may share a gate.
    pub fn coupled(&self, a: u32, b: u32) -> bool {
        a != b
            && a < self.qubits
            && b < self.qubits
            && (self.all_to_all || self.coupling.contains(&pair(a, b)))
    }

    /// The qubits coupled to `q`, ascending.
    pub fn neighbours(&self, q: u32) -> Vec<u32> {
        (0..self.qubits).filter(|&b| self.coupled(q, b)).collect()
    }

    /// The coupling map's pairs `(a, b)` with `a < b` (empty when all-to-all).
    pub fn coupling(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.coupling.iter().copied()
    }

    /// The native gate names, or `None` when every table gate is native.
    pub fn native_gates(&self) -> Option<&BTreeSet<String>> {
        self.native.as_ref()
    }

    /// The error probability `e` of `g` (see the module doc for its meaning and precedence).
    pub fn gate_error(&self, g: &Gate) -> f64 {
        if let Some(&e) = self.err_by_name.get(&g.name) {
            return e;
        }
        let qs: Vec<u32> = g.qubits().collect();
        match qs.as_slice() {
            [q] => self.err_by_qubit.get(q).copied().unwrap_or(self.err_1q),
            [a, b] => self
                .err_by_pair
                .get(&pair(*a, *b))
                .copied()
                .unwrap_or(self.err_2q),
            [] => 0.0,
            _ => self.err_2q,
        }
    }

    /// The duration of `g` in nanoseconds.
    pub fn gate_duration_ns(&self, g: &Gate) -> f64 {
        if let Some(&d) = self.dur_by_name.get(&g.name) {
            return d;
        }
        let qs: Vec<u32> = g.qubits().collect();
        match qs.as_slice() {
            [_] => self.dur_1q_ns,
            [a, b] => self
                .dur_by_pair
                .get(&pair(*a, *b))
                .copied()
                .unwrap_or(self.dur_2q_ns),
            [] => 0.0,
            _ => self.dur_2q_ns,
        }
    }

    /// The duration of a measurement, in nanoseconds.
    pub fn measure_duration_ns(&self) -> f64 {
        self.dur_measure_ns
    }

    /// The duration of a reset, in nanoseconds.
    pub fn reset_duration_ns(&self) -> f64 {
        self.dur_reset_ns
    }

    /// T1 of qubit `q` in nanoseconds (`∞` when it does not decay, or `q` is out of range).
    pub fn t1_ns(&self, q: u32) -> f64 {
        self.t1_ns.get(q as usize).copied().unwrap_or(f64::INFINITY)
    }

    /// T2 of qubit `q` in nanoseconds (`∞` when it does not dephase).
    pub fn t2_ns(&self, q: u32) -> f64 {
        self.t2_ns.get(q as usize).copied().unwrap_or(f64::INFINITY)
    }

    /// The pure-dephasing time `T_φ` of `q` in nanoseconds: `1/T_φ = 1/T2 − 1/(2·T1)`
    /// (`∞` when `T2 = 2·T1`).
    pub fn tphi_ns(&self, q: u32) -> f64 {
        let rate = 1.0 / self.t2_ns(q) - 0.5 / self.t1_ns(q);
        if rate <= 0.0 {
            f64::INFINITY
        } else {
            1.0 / rate
        }
    }

    /// The readout error of `q`: `(p01, p10)` = (P(read 1 | 0), P(read 0 | 1)).
    pub fn readout(&self, q: u32) -> (f64, f64) {
        self.readout.get(q as usize).copied().unwrap_or((0.0, 0.0))
    }

    /// Checks that `c` can run on this device: no more qubits than the device, every gate native,
    /// every multi-qubit gate on coupled qubits. Gates inside conditionals are checked too.
    pub fn check(&self, c: &Circuit) -> Result<(), DeviceCheckError> {
        if c.num_qubits > self.qubits {
            return Err(DeviceCheckError::TooManyQubits {
                circuit: c.num_qubits,
                available: self.qubits,
                device: self.name.clone(),
            });
        }
        self.check_ops(c, &c.ops, "")
    }

    fn check_ops(&self, c: &Circuit, ops: &[Op], prefix: &str) -> Result<(), DeviceCheckError> {
        for (i, op) in ops.iter().enumerate() {
            let position = format!("{prefix}op {i}");
            match op {
                Op::Gate(g) => self.check_gate(c, g, &position)?,
                Op::If {
                    then_ops, else_ops, ..
                } => {
                    self.check_ops(c, then_ops, &format!("{position}, then-branch "))?;
                    self.check_ops(c, else_ops, &format!("{position}, else-branch "))?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn check_gate(&self, c: &Circuit, g: &Gate, position: &str) -> Result<(), DeviceCheckError> {
        let qs: Vec<u32> = g.qubits().collect();
        if let Some(native) = &self.native {
            let table_arity = gates::lookup(&g.name).map(|d| d.qubits);
            let ok = native.contains(&g.name) && table_arity == Some(qs.len());
            if !ok {
                let name = match table_arity {
                    Some(k) if k < qs.len() => format!("ctrl({}) @ {}", qs.len() - k, g.name),
                    _ => g.name.clone(),
                };
                return Err(DeviceCheckError::NotNative {
                    gate: crate::exec::describe_gate(c, g),
                    position: position.into(),
                    name,
                    device: self.name.clone(),
                    native: native.iter().cloned().collect(),
                });
            }
        }
        for (i, &a) in qs.iter().enumerate() {
            for &b in &qs[i + 1..] {
                if !self.coupled(a, b) {
                    return Err(DeviceCheckError::NotCoupled {
                        gate: crate::exec::describe_gate(c, g),
                        position: position.into(),
                        a,
                        b,
                        device: self.name.clone(),
                        neighbours: self.neighbours(a),
                    });
                }
            }
        }
        Ok(())
    }
}

/// 1-based line and column (in characters) of byte `offset` of `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

/// The key assigned on `line` (`key = …`), or the table named by a `[header]` there.
fn key_on_line(text: &str, line: usize) -> Option<String> {
    let l = text.lines().nth(line.checked_sub(1)?)?.trim();
    if let Some(h) = l.strip_prefix('[') {
        let h = h.trim_start_matches('[');
        let end = h.find(']').unwrap_or(h.len());
        return Some(h[..end].trim().to_string());
    }
    let eq = l.find('=')?;
    let k = l[..eq].trim().trim_matches('"');
    (!k.is_empty()).then(|| k.to_string())
}

// ---------------------------------------------------------------------------------------------
// The raw file, as serde reads it.

type F = Option<Spanned<f64>>;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: Spanned<String>,
    qubits: Spanned<u32>,
    #[serde(default)]
    coupling: Option<Spanned<Vec<Spanned<Vec<u32>>>>>,
    #[serde(default)]
    all_to_all: Option<Spanned<bool>>,
    #[serde(default)]
    native_gates: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    gate_error: RawGateError,
    #[serde(default)]
    duration_ns: RawDurations,
    #[serde(default)]
    readout: RawReadout,
    #[serde(default)]
    coherence: RawCoherence,
    #[serde(default)]
    qubit: Vec<Spanned<RawQubit>>,
    #[serde(default)]
    pair: Vec<Spanned<RawPair>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawGateError {
    one_qubit: F,
    two_qubit: F,
    #[serde(default)]
    by_name: BTreeMap<String, Spanned<f64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawDurations {
    one_qubit: F,
    two_qubit: F,
    measure: F,
    reset: F,
    #[serde(default)]
    by_name: BTreeMap<String, Spanned<f64>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawReadout {
    p01: F,
    p10: F,
    error: F,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCoherence {
    t1_us: F,
    t1_ns: F,
    t2_us: F,
    t2_ns: F,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQubit {
    index: Spanned<u32>,
    t1_us: F,
    t1_ns: F,
    t2_us: F,
    t2_ns: F,
    one_qubit_error: F,
    readout_p01: F,
    readout_p10: F,
    readout_error: F,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPair {
    qubits: Spanned<Vec<u32>>,
    error: F,
    duration_ns: F,
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
    ) -> DeviceError {
        let (line, column) = line_col(self.text, span.start);
        DeviceError::Invalid {
            file: self.file.into(),
            line,
            column,
            key: key.into(),
            message,
            hint: hint.into(),
        }
    }

    fn prob(&self, v: &Spanned<f64>, key: &str) -> Result<f64, DeviceError> {
        let x = *v.get_ref();
        if !(0.0..=1.0).contains(&x) {
            return Err(self.err(
                v.span(),
                key,
                format!("{x} is not a probability"),
                "give a value between 0 and 1",
            ));
        }
        Ok(x)
    }

    fn duration(&self, v: &Spanned<f64>, key: &str) -> Result<f64, DeviceError> {
        let x = *v.get_ref();
        if !(x.is_finite() && x >= 0.0) {
            return Err(self.err(
                v.span(),
                key,
                format!("{x} is not a duration"),
                "give a finite number of nanoseconds, 0 or more",
            ));
        }
        Ok(x)
    }

    /// A time given in µs or ns (not both), in ns.
    fn time(&self, us: &F, ns: &F, key: &str) -> Result<Option<f64>, DeviceError> {
        let (v, scale, unit) = match (us, ns) {
            (Some(a), Some(_)) => {
                return Err(self.err(
                    a.span(),
                    &format!("{key}_us"),
                    format!("both {key}_us and {key}_ns are given"),
                    "keep one of them",
                ))
            }
            (Some(v), None) => (v, 1000.0, "us"),
            (None, Some(v)) => (v, 1.0, "ns"),
            (None, None) => return Ok(None),
        };
        let x = *v.get_ref();
        if !(x.is_finite() && x > 0.0) {
            return Err(self.err(
                v.span(),
                &format!("{key}_{unit}"),
                format!("{x} is not a coherence time"),
                "give a finite time greater than 0 (omit the key for a qubit that does not decay)",
            ));
        }
        Ok(Some(x * scale))
    }

    fn gate_name(
        &self,
        name: &str,
        span: std::ops::Range<usize>,
        key: &str,
    ) -> Result<(), DeviceError> {
        if gates::lookup(name).is_none() {
            return Err(self.err(
                span,
                key,
                format!("`{name}` is not a gate XDV knows"),
                "use a gate name from the gate table (`xdv q gates`), such as rz, sx, x, cx",
            ));
        }
        Ok(())
    }

    fn qubit_index(&self, q: &Spanned<u32>, n: u32, key: &str) -> Result<u32, DeviceError> {
        let x = *q.get_ref();
        if x >= n {
            return Err(self.err(
                q.span(),
                key,
                format!("qubit {x} does not exist on a {n}-qubit device"),
                &format!("qubits are numbered 0 to {}", n.saturating_sub(1)),
            ));
        }
        Ok(x)
    }

    fn build(&self, raw: Raw) -> Result<Device, DeviceError> {
        let n = *raw.qubits.get_ref();
        if n == 0 || n > DEVICE_QUBITS_MAX {
            return Err(self.err(
                raw.qubits.span(),
                "qubits",
                format!("{n} qubits"),
                &format!("a device has 1 to {DEVICE_QUBITS_MAX} qubits"),
            ));
        }
        let mut d = Device::ideal(n);
        d.name = raw.name.get_ref().clone();
        d.all_to_all = false;

        match (&raw.coupling, &raw.all_to_all) {
            (Some(c), Some(_)) => {
                return Err(self.err(
                    c.span(),
                    "coupling",
                    "both `coupling` and `all_to_all` are given".into(),
                    "keep one of them",
                ))
            }
            (None, None) if n > 1 => {
                return Err(self.err(
                    raw.qubits.span(),
                    "coupling",
                    "the device has no coupling map".into(),
                    "give `coupling = [[a, b], …]` or `all_to_all = true`",
                ))
            }
            (None, Some(a)) => d.all_to_all = *a.get_ref(),
            _ => {}
        }
        if let Some(c) = &raw.coupling {
            for p in c.get_ref() {
                let [a, b] = self.two(p, "coupling")?;
                for q in [a, b] {
                    if q >= n {
                        return Err(self.err(
                            p.span(),
                            "coupling",
                            format!("pair [{a}, {b}] names qubit {q}, which does not exist on a {n}-qubit device"),
                            &format!("qubits are numbered 0 to {}", n - 1),
                        ));
                    }
                }
                if a == b {
                    return Err(self.err(
                        p.span(),
                        "coupling",
                        format!("pair [{a}, {b}] couples a qubit to itself"),
                        "a pair names two different qubits",
                    ));
                }
                d.coupling.insert(pair(a, b));
            }
        }

        if let Some(names) = &raw.native_gates {
            if !names.iter().any(|s| s.get_ref() == "*") {
                let mut set = BTreeSet::new();
                for s in names {
                    self.gate_name(s.get_ref(), s.span(), "native_gates")?;
                    set.insert(s.get_ref().clone());
                }
                d.native = Some(set);
            }
        }

        let ge = &raw.gate_error;
        if let Some(v) = &ge.one_qubit {
            d.err_1q = self.prob(v, "gate_error.one_qubit")?;
        }
        if let Some(v) = &ge.two_qubit {
            d.err_2q = self.prob(v, "gate_error.two_qubit")?;
        }
        for (name, v) in &ge.by_name {
            let key = format!("gate_error.by_name.{name}");
            self.gate_name(name, v.span(), &key)?;
            d.err_by_name.insert(name.clone(), self.prob(v, &key)?);
        }

        let du = &raw.duration_ns;
        if let Some(v) = &du.one_qubit {
            d.dur_1q_ns = self.duration(v, "duration_ns.one_qubit")?;
        }
        if let Some(v) = &du.two_qubit {
            d.dur_2q_ns = self.duration(v, "duration_ns.two_qubit")?;
        }
        if let Some(v) = &du.measure {
            d.dur_measure_ns = self.duration(v, "duration_ns.measure")?;
        }
        d.dur_reset_ns = match &du.reset {
            Some(v) => self.duration(v, "duration_ns.reset")?,
            None => d.dur_measure_ns,
        };
        for (name, v) in &du.by_name {
            let key = format!("duration_ns.by_name.{name}");
            self.gate_name(name, v.span(), &key)?;
            d.dur_by_name.insert(name.clone(), self.duration(v, &key)?);
        }

        let ro = self.readout_pair(
            &raw.readout.p01,
            &raw.readout.p10,
            &raw.readout.error,
            "readout.",
            "",
        )?;
        d.readout = vec![ro.unwrap_or((0.0, 0.0)); n as usize];

        let co = &raw.coherence;
        let t1 = self.time(&co.t1_us, &co.t1_ns, "coherence.t1")?;
        let t2 = self.time(&co.t2_us, &co.t2_ns, "coherence.t2")?;
        let t2_span = co.t2_us.as_ref().or(co.t2_ns.as_ref()).map(|s| s.span());
        let mut t2_spans = vec![t2_span; n as usize];
        d.t1_ns = vec![t1.unwrap_or(f64::INFINITY); n as usize];
        d.t2_ns = vec![t2.unwrap_or(f64::INFINITY); n as usize];

        let mut seen = BTreeSet::new();
        for entry in &raw.qubit {
            let e = entry.get_ref();
            let q = self.qubit_index(&e.index, n, "qubit.index")?;
            if !seen.insert(q) {
                return Err(self.err(
                    e.index.span(),
                    "qubit.index",
                    format!("qubit {q} has two [[qubit]] entries"),
                    "merge them into one",
                ));
            }
            let base = format!("qubit[{q}].");
            if let Some(t) = self.time(&e.t1_us, &e.t1_ns, &format!("{base}t1"))? {
                d.t1_ns[q as usize] = t;
            }
            if let Some(t) = self.time(&e.t2_us, &e.t2_ns, &format!("{base}t2"))? {
                d.t2_ns[q as usize] = t;
                t2_spans[q as usize] = e.t2_us.as_ref().or(e.t2_ns.as_ref()).map(|s| s.span());
            }
            if let Some(v) = &e.one_qubit_error {
                d.err_by_qubit
                    .insert(q, self.prob(v, &format!("{base}one_qubit_error"))?);
            }
            if let Some(ro) = self.readout_pair(
                &e.readout_p01,
                &e.readout_p10,
                &e.readout_error,
                &base,
                "readout_",
            )? {
                d.readout[q as usize] = ro;
            }
        }

        for entry in &raw.pair {
            let e = entry.get_ref();
            let [a, b] = self.two(&e.qubits, "pair.qubits")?;
            let span = e.qubits.span();
            if a >= n || b >= n || a == b || !d.coupled(a, b) {
                return Err(self.err(
                    span,
                    "pair.qubits",
                    format!("[{a}, {b}] is not a coupled pair of this device"),
                    "name two coupled qubits from `coupling`",
                ));
            }
            let base = format!("pair[{a}, {b}].");
            if let Some(v) = &e.error {
                d.err_by_pair
                    .insert(pair(a, b), self.prob(v, &format!("{base}error"))?);
            }
            if let Some(v) = &e.duration_ns {
                d.dur_by_pair
                    .insert(pair(a, b), self.duration(v, &format!("{base}duration_ns"))?);
            }
        }

        for (q, span) in t2_spans.iter().enumerate() {
            if d.t2_ns[q].is_finite() && d.t2_ns[q] > 2.0 * d.t1_ns[q] * (1.0 + 1e-12) {
                let span = span.clone().unwrap_or(0..0);
                return Err(self.err(
                    span,
                    &format!("qubit[{q}].t2"),
                    format!(
                        "T2 = {} ns exceeds 2·T1 = {} ns on qubit {q}",
                        d.t2_ns[q],
                        2.0 * d.t1_ns[q]
                    ),
                    "physically T2 ≤ 2·T1; check the units (t2_us vs t2_ns)",
                ));
            }
        }
        Ok(d)
    }

    /// A pair `[a, b]`: exactly two qubit indices.
    fn two(&self, v: &Spanned<Vec<u32>>, key: &str) -> Result<[u32; 2], DeviceError> {
        match v.get_ref().as_slice() {
            &[a, b] => Ok([a, b]),
            other => Err(self.err(
                v.span(),
                key,
                format!("a pair has length 2, this one has length {}", other.len()),
                "write a pair as [a, b]",
            )),
        }
    }

    fn readout_pair(
        &self,
        p01: &F,
        p10: &F,
        sym: &F,
        base: &str,
        prefix: &str,
    ) -> Result<Option<(f64, f64)>, DeviceError> {
        let k = |s: &str| format!("{base}{prefix}{s}");
        match (p01, p10, sym) {
            (None, None, None) => Ok(None),
            (a, b, None) => Ok(Some((
                a.as_ref().map_or(Ok(0.0), |v| self.prob(v, &k("p01")))?,
                b.as_ref().map_or(Ok(0.0), |v| self.prob(v, &k("p10")))?,
            ))),
            (None, None, Some(s)) => {
                let p = self.prob(s, &k("error"))?;
                Ok(Some((p, p)))
            }
            (_, _, Some(s)) => Err(self.err(
                s.span(),
                &k("error"),
                "both a symmetric readout error and p01/p10 are given".into(),
                "give either `error` or `p01`/`p10`",
            )),
        }
    }
}
