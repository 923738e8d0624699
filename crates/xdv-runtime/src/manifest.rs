//! VHM manifests: the TOML a user writes to run Virtual Hybrid Machines with `xdv run`.
//!
//! Parsing is pure: text in, a validated [`Manifest`] out, with every error naming the key, the
//! `file:line:column` and how to fix it. Paths in the manifest are kept as written and resolved
//! against the manifest's directory by the caller; reading those files is the runtime's job.
//! The complete reference is `docs/manifest.md`.

use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;
use xdv_core::{KSpec, PhiSpec, Policy, QSpec, Resource, ResourceVector, VhmSpec};

/// Most VHMs (roots and nested, all together) one manifest may declare.
pub const VHMS_MAX: usize = 256;
/// Most pipeline steps of one VHM.
pub const STEPS_MAX: usize = 64;
/// Most channels one manifest may declare.
pub const CHANNELS_MAX: usize = 1024;
/// Largest manifest text accepted, bytes.
pub const MANIFEST_BYTES_MAX: usize = 1 << 20;
/// Most messages a channel may buffer for its receiver.
pub const CHANNEL_MESSAGES_MAX: u32 = 65_536;
/// Most scheduled token revocations one manifest may declare.
pub const REVOKES_MAX: usize = 1024;

/// A manifest that could not be read: where, what, and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{origin}:{line}:{column}: {key}: {message}\n  hint: {hint}")]
pub struct ManifestError {
    /// The file (or other origin) of the text.
    pub origin: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The key, as a path (`vhm[1].q.qubits`), or `manifest` for the whole text.
    pub key: String,
    /// What is wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// A validated manifest.
#[derive(Clone, Debug, PartialEq)]
pub struct Manifest {
    /// The run's name.
    pub name: String,
    /// The run's seed: every job's seed derives from it (see `docs/manifest.md`).
    pub seed: u64,
    /// A provider capacity description to use instead of the embedded default machine.
    pub machine: Option<Located<String>>,
    /// Logical ticks after which the run stops, finished or not.
    pub max_ticks: u64,
    /// Root VHMs, in declaration order (their nested VHMs inside).
    pub vhms: Vec<VhmDecl>,
    /// IPC channels, in declaration order.
    pub channels: Vec<ChannelDecl>,
    /// Token revocations the operator schedules, in declaration order.
    pub revokes: Vec<RevokeDecl>,
}

/// A token revocation scheduled by the operator: from logical tick `at_tick` on, every token
/// containing the block is refused (recorded in the trace as `RevokeToken`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RevokeDecl {
    /// The revocation ids (as `xdv token inspect` prints them), given inline or read from a
    /// revocation list file.
    pub source: RevokeSource,
    /// The tick from which the revocation applies (0: before any VHM is created).
    pub at_tick: u64,
    /// The key path (`revoke[0]`).
    pub key: String,
}

/// Where a scheduled revocation's ids come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RevokeSource {
    /// One revocation id, written in the manifest.
    Id(String),
    /// A revocation list file (one id per line, as `xdv token revoke` writes it).
    List(Located<String>),
}

/// A value with the place it was written, for errors found after parsing (a missing file).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located<T> {
    /// The value.
    pub value: T,
    /// The key path.
    pub key: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

/// One declared VHM.
#[derive(Clone, Debug, PartialEq)]
pub struct VhmDecl {
    /// Its name, unique among its siblings.
    pub name: String,
    /// Its path from the root (`alice/worker`), unique in the manifest.
    pub path: String,
    /// Its key path in the manifest (`vhm[0].vhm[1]`).
    pub key: String,
    /// Line and column of its name in the manifest.
    pub at: (usize, usize),
    /// Its seed, if set; otherwise derived from the run's seed and its path.
    pub seed: Option<u64>,
    /// V_K.
    pub k: Option<KDecl>,
    /// V_Q.
    pub q: Option<QDecl>,
    /// V_Φ.
    pub phi: Option<PhiDecl>,
    /// V_Policy.
    pub policy: Policy,
    /// Nested VHMs.
    pub children: Vec<VhmDecl>,
    /// A pipeline of steps, for a VHM without a guest.
    pub steps: Vec<StepDecl>,
    /// A capability token file presented for this VHM (checked when the run enforces tokens).
    pub token: Option<Located<String>>,
}

/// V_K of a declared VHM.
#[derive(Clone, Debug, PartialEq)]
pub struct KDecl {
    /// The guest module (`.wasm` or `.wat`), if the VHM runs one.
    pub guest: Option<Located<String>>,
    /// Arguments passed to the guest (WASI `args`, after the program name).
    pub args: Vec<String>,
    /// Virtual CPUs.
    pub vcpus: u32,
    /// Linear-memory limit, bytes.
    pub memory_bytes: u64,
    /// Fuel budget, fuel units.
    pub fuel_units: u64,
}

/// V_Q of a declared VHM.
#[derive(Clone, Debug, PartialEq)]
pub struct QDecl {
    /// The Q provider, by name.
    pub provider: Option<String>,
    /// Logical qubits.
    pub qubits: u32,
    /// Shot budget.
    pub shots: u64,
    /// Decoherence budget, ppm of predicted error summed over jobs.
    pub error_budget_ppm: u64,
}

/// V_Φ of a declared VHM.
#[derive(Clone, Debug, PartialEq)]
pub struct PhiDecl {
    /// The Φ provider, by name.
    pub provider: Option<String>,
    /// Spatial modes.
    pub modes: u32,
    /// Wavelength channels.
    pub channels: u32,
    /// Coherence-window budget, ns.
    pub coherence_window_ns: u64,
    /// Phase-error tolerance that bounds each window, radians.
    pub tolerance_rad: f64,
    /// Minimum predicted fidelity a transform must reach to be admitted.
    pub min_fidelity: f64,
    /// Largest predicted loss a transform may have, dB.
    pub loss_budget_db: f64,
    /// Heater power, mW.
    pub thermal_budget_mw: u64,
    /// Optical bandwidth, MHz.
    pub optical_bandwidth_mhz: u64,
}

/// One pipeline step.
#[derive(Clone, Debug, PartialEq)]
pub enum StepDecl {
    /// A classical step: a guest that reads the previous step's output as JSON on stdin and writes
    /// its own on stdout.
    K {
        /// The guest module.
        guest: Located<String>,
        /// Fuel for this step.
        fuel_units: u64,
    },
    /// A quantum step: a circuit sampled (or its observables evaluated) with parameters bound
    /// from the previous step's `params`.
    Q {
        /// The OpenQASM file.
        circuit: Located<String>,
        /// Shots.
        shots: u64,
        /// Pauli-sum observables to evaluate exactly, if any.
        observables: Vec<String>,
    },
    /// A phase step: a Φ program whose input field may come from the previous step.
    Phi {
        /// The Φ program file (native TOML/JSON or Blackbird).
        program: Located<String>,
    },
}

/// One IPC channel between two declared VHMs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelDecl {
    /// One end (a VHM path).
    pub a: String,
    /// The other end.
    pub b: String,
    /// Messages buffered for a receiver before a send fails.
    pub messages_max: u32,
    /// The key path (`channel[0]`).
    pub key: String,
}

// ----- raw (serde) form ------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: Spanned<String>,
    seed: Option<Spanned<u64>>,
    machine: Option<Spanned<String>>,
    max_ticks: Option<Spanned<u64>>,
    #[serde(default)]
    vhm: Vec<Spanned<RawVhm>>,
    #[serde(default)]
    channel: Vec<Spanned<RawChannel>>,
    #[serde(default)]
    revoke: Vec<Spanned<RawRevoke>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRevoke {
    id: Option<Spanned<String>>,
    list: Option<Spanned<String>>,
    at_tick: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVhm {
    name: Spanned<String>,
    seed: Option<u64>,
    k: Option<Spanned<RawK>>,
    q: Option<Spanned<RawQ>>,
    phi: Option<Spanned<RawPhi>>,
    policy: Option<Spanned<RawPolicy>>,
    #[serde(default)]
    vhm: Vec<Spanned<RawVhm>>,
    #[serde(default)]
    step: Vec<Spanned<RawStep>>,
    token: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawK {
    guest: Option<Spanned<String>>,
    #[serde(default)]
    args: Vec<String>,
    vcpus: Option<Spanned<u32>>,
    memory_bytes: Option<Spanned<u64>>,
    memory_mib: Option<Spanned<u64>>,
    fuel_units: Spanned<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQ {
    provider: Option<String>,
    qubits: Spanned<u32>,
    shots: Spanned<u64>,
    error_budget_ppm: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPhi {
    provider: Option<String>,
    modes: Spanned<u32>,
    channels: Option<Spanned<u32>>,
    coherence_window_ns: Spanned<u64>,
    tolerance_rad: Option<Spanned<f64>>,
    min_fidelity: Option<Spanned<f64>>,
    loss_budget_db: Option<Spanned<f64>>,
    thermal_budget_mw: Option<u64>,
    optical_bandwidth_mhz: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    priority: Option<Spanned<u32>>,
    deadline_tick: Option<u64>,
    quotas: Option<Spanned<BTreeMap<String, Spanned<u64>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    domain: Spanned<String>,
    guest: Option<Spanned<String>>,
    fuel_units: Option<u64>,
    circuit: Option<Spanned<String>>,
    shots: Option<Spanned<u64>>,
    #[serde(default)]
    observables: Vec<String>,
    program: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawChannel {
    between: Spanned<Vec<String>>,
    messages_max: Option<Spanned<u32>>,
}

// ----- parsing ---------------------------------------------------------------------------------

/// Defaults of optional keys.
pub mod defaults {
    /// `max_ticks`.
    pub const MAX_TICKS: u64 = 1_000_000;
    /// `k.vcpus`.
    pub const VCPUS: u32 = 1;
    /// `k.memory_bytes` (64 MiB).
    pub const MEMORY_BYTES: u64 = 64 << 20;
    /// `phi.channels`.
    pub const CHANNELS: u32 = 1;
    /// `phi.tolerance_rad`.
    pub const TOLERANCE_RAD: f64 = 0.1;
    /// `phi.min_fidelity`.
    pub const MIN_FIDELITY: f64 = 0.9;
    /// `phi.loss_budget_db`.
    pub const LOSS_BUDGET_DB: f64 = 10.0;
    /// `phi.thermal_budget_mw`.
    pub const THERMAL_BUDGET_MW: u64 = 100;
    /// `phi.optical_bandwidth_mhz`.
    pub const OPTICAL_BANDWIDTH_MHZ: u64 = 1000;
    /// `channel.messages_max`.
    pub const MESSAGES_MAX: u32 = 64;
    /// A pipeline K step's `fuel_units`.
    pub const STEP_FUEL_UNITS: u64 = 100_000_000;
}

struct Ctx<'a> {
    text: &'a str,
    origin: &'a str,
    count: usize,
}

impl Ctx<'_> {
    fn err(
        &self,
        span: std::ops::Range<usize>,
        key: &str,
        message: impl Into<String>,
        hint: &str,
    ) -> ManifestError {
        let (line, column) = xdv_core::machine::line_col(self.text, span.start);
        ManifestError {
            origin: self.origin.to_string(),
            line,
            column,
            key: key.to_string(),
            message: message.into(),
            hint: hint.to_string(),
        }
    }

    fn located<T>(&self, v: Spanned<T>, key: String) -> Located<T> {
        let (line, column) = xdv_core::machine::line_col(self.text, v.span().start);
        Located {
            value: v.into_inner(),
            key,
            line,
            column,
        }
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
}

impl Manifest {
    /// Parses and validates a manifest; `origin` names the text in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Manifest, ManifestError> {
        let mut cx = Ctx {
            text,
            origin,
            count: 0,
        };
        if text.len() > MANIFEST_BYTES_MAX {
            return Err(cx.err(
                0..0,
                "manifest",
                format!(
                    "the manifest is {} bytes; at most {MANIFEST_BYTES_MAX} are accepted",
                    text.len()
                ),
                "split the run into several manifests",
            ));
        }
        let raw: RawManifest = toml::from_str(text).map_err(|e| {
            cx.err(
                e.span().unwrap_or(0..0),
                "manifest",
                e.message().trim(),
                "see docs/manifest.md for the keys of a VHM manifest",
            )
        })?;
        if !valid_name(raw.name.get_ref()) {
            return Err(cx.err(
                raw.name.span(),
                "name",
                format!("{:?} is not a valid run name", raw.name.get_ref()),
                "a name is 1 to 64 characters of A-Z, a-z, 0-9, '_', '-' and '.'",
            ));
        }
        let max_ticks = match &raw.max_ticks {
            Some(t) if *t.get_ref() == 0 => {
                return Err(cx.err(
                    t.span(),
                    "max_ticks",
                    "max_ticks must be positive",
                    "omit it for the default of 1000000 ticks",
                ))
            }
            Some(t) => *t.get_ref(),
            None => defaults::MAX_TICKS,
        };
        let mut vhms = Vec::with_capacity(raw.vhm.len());
        for (i, v) in raw.vhm.into_iter().enumerate() {
            let d = vhm(&mut cx, v, format!("vhm[{i}]"), "")?;
            if vhms.iter().any(|o: &VhmDecl| o.name == d.name) {
                return Err(dup_name(&cx, &d));
            }
            vhms.push(d);
        }
        if raw.channel.len() > CHANNELS_MAX {
            return Err(cx.err(
                0..0,
                "channel",
                format!("{} channels; at most {CHANNELS_MAX}", raw.channel.len()),
                "declare fewer channels",
            ));
        }
        let mut paths = Vec::new();
        for v in &vhms {
            collect_paths(v, &mut paths);
        }
        let mut channels = Vec::with_capacity(raw.channel.len());
        for (i, c) in raw.channel.into_iter().enumerate() {
            let key = format!("channel[{i}]");
            let c = c.into_inner();
            let ends = c.between.get_ref();
            if ends.len() != 2 {
                return Err(cx.err(
                    c.between.span(),
                    &format!("{key}.between"),
                    format!("names {} VHMs; a channel joins exactly two", ends.len()),
                    "write between = [\"a\", \"b\"] with two VHM paths",
                ));
            }
            for e in ends {
                if !paths.contains(e) {
                    return Err(cx.err(
                        c.between.span(),
                        &format!("{key}.between"),
                        format!("no VHM has the path {e:?}"),
                        "name a declared VHM; nested ones as parent/child",
                    ));
                }
            }
            if ends[0] == ends[1] {
                return Err(cx.err(
                    c.between.span(),
                    &format!("{key}.between"),
                    "a channel joins two different VHMs",
                    "name two different VHMs",
                ));
            }
            let messages_max = match &c.messages_max {
                Some(m) if *m.get_ref() == 0 || *m.get_ref() > CHANNEL_MESSAGES_MAX => {
                    return Err(cx.err(
                        m.span(),
                        &format!("{key}.messages_max"),
                        format!("{} is out of range 1..={CHANNEL_MESSAGES_MAX}", m.get_ref()),
                        "omit it for the default of 64 messages",
                    ))
                }
                Some(m) => *m.get_ref(),
                None => defaults::MESSAGES_MAX,
            };
            channels.push(ChannelDecl {
                a: ends[0].clone(),
                b: ends[1].clone(),
                messages_max,
                key,
            });
        }
        if raw.revoke.len() > REVOKES_MAX {
            return Err(cx.err(
                0..0,
                "revoke",
                format!("{} revocations; at most {REVOKES_MAX}", raw.revoke.len()),
                "put the ids in a revocation list file and name it with `list`",
            ));
        }
        let mut revokes = Vec::with_capacity(raw.revoke.len());
        for (i, r) in raw.revoke.into_iter().enumerate() {
            let key = format!("revoke[{i}]");
            let span = r.span();
            let r = r.into_inner();
            let source = match (r.id, r.list) {
                (Some(id), None) => {
                    let text = id.get_ref().trim();
                    if text.is_empty()
                        || text.len() > 1024
                        || !text.bytes().all(|b| b.is_ascii_hexdigit())
                    {
                        return Err(cx.err(
                            id.span(),
                            &format!("{key}.id"),
                            "a revocation id is the hexadecimal text `xdv token inspect` prints",
                            "copy the block's revocation id, or name a list file with `list`",
                        ));
                    }
                    RevokeSource::Id(text.to_ascii_lowercase())
                }
                (None, Some(list)) => RevokeSource::List(cx.located(list, format!("{key}.list"))),
                _ => {
                    return Err(cx.err(
                        span,
                        &key,
                        "a revocation names exactly one of `id` and `list`",
                        "write id = \"<revocation id>\" or list = \"revoked.txt\"",
                    ))
                }
            };
            revokes.push(RevokeDecl {
                source,
                at_tick: r.at_tick.unwrap_or(0),
                key,
            });
        }
        Ok(Manifest {
            name: raw.name.into_inner(),
            seed: raw.seed.map_or(0, |s| *s.get_ref()),
            machine: raw.machine.map(|m| cx.located(m, "machine".into())),
            max_ticks,
            vhms,
            channels,
            revokes,
        })
    }

    /// Every declared VHM, parents before children, in declaration order.
    pub fn all_vhms(&self) -> Vec<&VhmDecl> {
        fn walk<'a>(v: &'a VhmDecl, out: &mut Vec<&'a VhmDecl>) {
            out.push(v);
            for c in &v.children {
                walk(c, out);
            }
        }
        let mut out = Vec::new();
        for v in &self.vhms {
            walk(v, &mut out);
        }
        out
    }
}

fn collect_paths(v: &VhmDecl, out: &mut Vec<String>) {
    out.push(v.path.clone());
    for c in &v.children {
        collect_paths(c, out);
    }
}

fn dup_name(cx: &Ctx<'_>, d: &VhmDecl) -> ManifestError {
    ManifestError {
        origin: cx.origin.to_string(),
        line: d.at.0,
        column: d.at.1,
        key: format!("{}.name", d.key),
        message: format!("a sibling VHM is already named {:?}", d.name),
        hint: "give sibling VHMs different names".into(),
    }
}

fn vhm(
    cx: &mut Ctx<'_>,
    raw: Spanned<RawVhm>,
    key: String,
    parent_path: &str,
) -> Result<VhmDecl, ManifestError> {
    cx.count += 1;
    if cx.count > VHMS_MAX {
        return Err(cx.err(
            raw.span(),
            &key,
            format!("more than {VHMS_MAX} VHMs in one manifest"),
            "split the run into several manifests",
        ));
    }
    let raw = raw.into_inner();
    let name = raw.name.get_ref().clone();
    if !valid_name(&name) {
        return Err(cx.err(
            raw.name.span(),
            &format!("{key}.name"),
            format!("{name:?} is not a valid VHM name"),
            "a name is 1 to 64 characters of A-Z, a-z, 0-9, '_', '-' and '.'",
        ));
    }
    let path = if parent_path.is_empty() {
        name.clone()
    } else {
        format!("{parent_path}/{name}")
    };
    let k = match raw.k {
        None => None,
        Some(k) => {
            let kkey = format!("{key}.k");
            let k = k.into_inner();
            let vcpus = match &k.vcpus {
                Some(v) if *v.get_ref() == 0 => {
                    return Err(cx.err(
                        v.span(),
                        &format!("{kkey}.vcpus"),
                        "a K part needs at least one vCPU",
                        "set vcpus = 1 or more",
                    ))
                }
                Some(v) => *v.get_ref(),
                None => defaults::VCPUS,
            };
            let memory_bytes = match (&k.memory_bytes, &k.memory_mib) {
                (Some(b), Some(_)) => {
                    return Err(cx.err(
                        b.span(),
                        &format!("{kkey}.memory_bytes"),
                        "both memory_bytes and memory_mib are set",
                        "set one of them",
                    ))
                }
                (Some(b), None) => *b.get_ref(),
                (None, Some(m)) => m.get_ref().checked_mul(1 << 20).ok_or_else(|| {
                    cx.err(
                        m.span(),
                        &format!("{kkey}.memory_mib"),
                        "too large",
                        "memory_mib is mebibytes: 64 is 64 MiB",
                    )
                })?,
                (None, None) => defaults::MEMORY_BYTES,
            };
            if *k.fuel_units.get_ref() == 0 {
                return Err(cx.err(
                    k.fuel_units.span(),
                    &format!("{kkey}.fuel_units"),
                    "a K part needs a positive fuel budget",
                    "fuel_units = 1000000000 runs about a second of guest code",
                ));
            }
            Some(KDecl {
                guest: k.guest.map(|g| cx.located(g, format!("{kkey}.guest"))),
                args: k.args,
                vcpus,
                memory_bytes,
                fuel_units: *k.fuel_units.get_ref(),
            })
        }
    };
    let q = match raw.q {
        None => None,
        Some(q) => {
            let qkey = format!("{key}.q");
            let q = q.into_inner();
            if *q.qubits.get_ref() == 0 {
                return Err(cx.err(
                    q.qubits.span(),
                    &format!("{qkey}.qubits"),
                    "a Q part needs at least one logical qubit",
                    "set qubits = 1 or more",
                ));
            }
            if *q.shots.get_ref() == 0 {
                return Err(cx.err(
                    q.shots.span(),
                    &format!("{qkey}.shots"),
                    "a Q part needs a positive shot budget",
                    "shots is the total over all the VHM's jobs, e.g. 100000",
                ));
            }
            Some(QDecl {
                provider: q.provider,
                qubits: *q.qubits.get_ref(),
                shots: *q.shots.get_ref(),
                error_budget_ppm: q.error_budget_ppm.map_or(1_000_000, |e| *e.get_ref()),
            })
        }
    };
    let phi = match raw.phi {
        None => None,
        Some(p) => {
            let pkey = format!("{key}.phi");
            let p = p.into_inner();
            if *p.modes.get_ref() == 0 {
                return Err(cx.err(
                    p.modes.span(),
                    &format!("{pkey}.modes"),
                    "a Φ part needs at least one mode",
                    "set modes = 1 or more",
                ));
            }
            let channels = match &p.channels {
                Some(c) if *c.get_ref() == 0 => {
                    return Err(cx.err(
                        c.span(),
                        &format!("{pkey}.channels"),
                        "a Φ part needs at least one wavelength channel",
                        "set channels = 1 or more, or omit it for 1",
                    ))
                }
                Some(c) => *c.get_ref(),
                None => defaults::CHANNELS,
            };
            let unit = |v: &Option<Spanned<f64>>, k: &str, lo: f64, hi: f64, def: f64| match v {
                Some(x) if !(lo..=hi).contains(x.get_ref()) => Err(cx.err(
                    x.span(),
                    &format!("{pkey}.{k}"),
                    format!("{} is out of range {lo}..={hi}", x.get_ref()),
                    &format!("set {k} between {lo} and {hi}, or omit it for {def}"),
                )),
                Some(x) => Ok(*x.get_ref()),
                None => Ok(def),
            };
            let tolerance_rad = unit(
                &p.tolerance_rad,
                "tolerance_rad",
                1e-9,
                std::f64::consts::PI,
                defaults::TOLERANCE_RAD,
            )?;
            let min_fidelity = unit(
                &p.min_fidelity,
                "min_fidelity",
                0.0,
                1.0,
                defaults::MIN_FIDELITY,
            )?;
            let loss_budget_db = unit(
                &p.loss_budget_db,
                "loss_budget_db",
                0.0,
                1000.0,
                defaults::LOSS_BUDGET_DB,
            )?;
            Some(PhiDecl {
                provider: p.provider,
                modes: *p.modes.get_ref(),
                channels,
                coherence_window_ns: *p.coherence_window_ns.get_ref(),
                tolerance_rad,
                min_fidelity,
                loss_budget_db,
                thermal_budget_mw: p.thermal_budget_mw.unwrap_or(defaults::THERMAL_BUDGET_MW),
                optical_bandwidth_mhz: p
                    .optical_bandwidth_mhz
                    .unwrap_or(defaults::OPTICAL_BANDWIDTH_MHZ),
            })
        }
    };
    let policy = match raw.policy {
        None => Policy::default(),
        Some(p) => {
            let pkey = format!("{key}.policy");
            let p = p.into_inner();
            let priority = match &p.priority {
                Some(x) if *x.get_ref() > 255 => {
                    return Err(cx.err(
                        x.span(),
                        &format!("{pkey}.priority"),
                        format!("{} is out of range 0..=255", x.get_ref()),
                        "higher runs first; the default is 0",
                    ))
                }
                Some(x) => *x.get_ref() as u8,
                None => 0,
            };
            let quotas = match p.quotas {
                None => None,
                Some(q) => {
                    let mut v = ResourceVector::ZERO;
                    for (name, amount) in q.into_inner() {
                        let Some(r) = Resource::from_name(&name) else {
                            return Err(cx.err(
                                amount.span(),
                                &format!("{pkey}.quotas.{name}"),
                                format!("{name:?} is not a resource"),
                                "resources: fuel_units, vcpu_slots, memory_bytes, logical_qubits, shots, error_budget_ppm, phi_modes, wavelength_channels, coherence_window_ns, thermal_budget_mw, optical_bandwidth_mhz",
                            ));
                        };
                        v.set(r, *amount.get_ref());
                    }
                    Some(v)
                }
            };
            Policy {
                priority,
                deadline_tick: p.deadline_tick,
                quotas,
            }
        }
    };
    let mut steps = Vec::with_capacity(raw.step.len());
    if raw.step.len() > STEPS_MAX {
        return Err(cx.err(
            raw.name.span(),
            &format!("{key}.step"),
            format!("{} steps; at most {STEPS_MAX}", raw.step.len()),
            "split the pipeline",
        ));
    }
    let has_guest = k.as_ref().is_some_and(|k| k.guest.is_some());
    for (i, s) in raw.step.into_iter().enumerate() {
        let skey = format!("{key}.step[{i}]");
        let s = s.into_inner();
        let need = |field: Option<Spanned<String>>, what: &str| {
            field.ok_or_else(|| {
                cx.err(
                    s.domain.span(),
                    &format!("{skey}.{what}"),
                    format!("a {} step needs {what}", s.domain.get_ref()),
                    &format!("add {what} = \"path\""),
                )
            })
        };
        let (domain_ok, step) = match s.domain.get_ref().as_str() {
            "k" => {
                let g = need(s.guest.clone(), "guest")?;
                (
                    k.is_some(),
                    StepDecl::K {
                        guest: cx.located(g, format!("{skey}.guest")),
                        fuel_units: s.fuel_units.unwrap_or(defaults::STEP_FUEL_UNITS),
                    },
                )
            }
            "q" => {
                let c = need(s.circuit.clone(), "circuit")?;
                let shots = match &s.shots {
                    Some(x) if *x.get_ref() == 0 => {
                        return Err(cx.err(
                            x.span(),
                            &format!("{skey}.shots"),
                            "shots must be positive",
                            "set shots = 1000, for example",
                        ))
                    }
                    Some(x) => *x.get_ref(),
                    None => 1000,
                };
                (
                    q.is_some(),
                    StepDecl::Q {
                        circuit: cx.located(c, format!("{skey}.circuit")),
                        shots,
                        observables: s.observables.clone(),
                    },
                )
            }
            "phi" => {
                let p = need(s.program.clone(), "program")?;
                (
                    phi.is_some(),
                    StepDecl::Phi {
                        program: cx.located(p, format!("{skey}.program")),
                    },
                )
            }
            other => {
                return Err(cx.err(
                    s.domain.span(),
                    &format!("{skey}.domain"),
                    format!("unknown domain {other:?}"),
                    "a step's domain is \"k\", \"q\" or \"phi\"",
                ))
            }
        };
        if !domain_ok {
            return Err(cx.err(
                s.domain.span(),
                &format!("{skey}.domain"),
                format!(
                    "a {} step needs the VHM to hold that domain",
                    s.domain.get_ref()
                ),
                &format!("add a [{}] part to the VHM", s.domain.get_ref()),
            ));
        }
        steps.push(step);
    }
    if has_guest && !steps.is_empty() {
        return Err(cx.err(
            raw.name.span(),
            &format!("{key}.step"),
            "a VHM runs a guest or a pipeline of steps, not both",
            "drop k.guest, or move the steps into another VHM",
        ));
    }
    let mut children = Vec::with_capacity(raw.vhm.len());
    for (i, c) in raw.vhm.into_iter().enumerate() {
        let d = vhm(cx, c, format!("{key}.vhm[{i}]"), &path)?;
        if children.iter().any(|o: &VhmDecl| o.name == d.name) {
            return Err(dup_name(cx, &d));
        }
        children.push(d);
    }
    let token = raw.token.map(|t| cx.located(t, format!("{key}.token")));
    Ok(VhmDecl {
        token,
        at: xdv_core::machine::line_col(cx.text, raw.name.span().start),
        name,
        path,
        key,
        seed: raw.seed,
        k,
        q,
        phi,
        policy,
        children,
        steps,
    })
}

impl VhmDecl {
    /// The core's specification of this VHM.
    pub fn spec(&self) -> VhmSpec {
        VhmSpec {
            name: self.name.clone(),
            k: self.k.as_ref().map(|k| KSpec {
                vcpus: k.vcpus,
                memory_bytes: k.memory_bytes,
                fuel_units: k.fuel_units,
            }),
            q: self.q.as_ref().map(|q| QSpec {
                provider: q.provider.clone(),
                logical_qubits: q.qubits,
                shots: q.shots,
                error_budget_ppm: q.error_budget_ppm,
            }),
            phi: self.phi.as_ref().map(|p| PhiSpec {
                provider: p.provider.clone(),
                modes: p.modes,
                wavelength_channels: p.channels,
                coherence_window_ns: p.coherence_window_ns,
                thermal_budget_mw: p.thermal_budget_mw,
                optical_bandwidth_mhz: p.optical_bandwidth_mhz,
            }),
            policy: self.policy.clone(),
        }
    }
}
