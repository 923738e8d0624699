//! `xdv q …`: the Q domain's embedded provider from the command line — run a circuit for counts,
//! print its final state, or compute an observable's expectation value.
//!
//! This module reads files, measures wall-clock phases and prints; parsing, simulation and
//! sampling are `xdv-q`'s.

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use serde_json::json;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use xdv_q::circuit::Circuit;
use xdv_q::device::Device;
use xdv_q::engine::Fast;
use xdv_q::exec::{self, RunOptions};
use xdv_q::pauli::Observable;
use xdv_q::qasm;
use xdv_q::Real;

/// `xdv q` subcommands.
#[derive(Subcommand)]
pub enum QCmd {
    /// Run a circuit (OpenQASM 2 or 3) and print the measurement counts.
    Run {
        #[command(flatten)]
        input: Input,
        /// Shots.
        #[arg(long, default_value_t = 1024)]
        shots: u64,
        /// Seed of the pinned generator: the same seed gives the same counts on every machine and
        /// thread count.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Device description (TOML): coupling map, native gates, errors, T1/T2, readout error.
        /// The default device is ideal and all-to-all.
        #[arg(long)]
        device: Option<PathBuf>,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Print the final state vector of a circuit without mid-circuit measurement or reset
    /// (terminal measurements are dropped, with a notice on stderr).
    State {
        #[command(flatten)]
        input: Input,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// The expectation value of a Pauli-sum observable in the circuit's final state.
    Expect {
        #[command(flatten)]
        input: Input,
        /// The observable, e.g. "0.5*ZZI + XIX - 1.2*III" (leftmost letter on the highest qubit).
        #[arg(long)]
        observable: String,
        /// Estimate from this many shots instead of computing exactly.
        #[arg(long)]
        shots: Option<u64>,
        /// Seed for the estimate.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Print the gate table (Markdown): every gate's arity, parameters, inverse, decomposition
    /// and meaning.
    Gates,
    /// Print an example device description (TOML): a five-qubit line with IBM-like figures.
    ExampleDevice,
    /// Measure the machine's read + write memory bandwidth: the floor under each pass an engine
    /// makes over a state (benchmarks report time per pass against it).
    Bandwidth {
        /// Buffer size, MiB (far larger than the caches).
        #[arg(long, default_value_t = 1024)]
        mib: u64,
        /// Threads (0: every core; at most 1024).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=1024))]
        threads: u16,
        /// Timed passes (the median is reported).
        #[arg(long, default_value_t = 9)]
        passes: usize,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
}

/// What every `xdv q` command reads and how it simulates.
#[derive(Args)]
pub struct Input {
    /// The circuit: an OpenQASM 2.0 or 3 file.
    file: PathBuf,
    /// Amplitude precision: f64 (complex128) or f32 (complex64).
    #[arg(long, value_enum, default_value_t = Precision::F64)]
    precision: Precision,
    /// Simulation threads (0: every core; at most 1024). Results do not depend on it.
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u16).range(0..=1024))]
    threads: u16,
    /// Bind an OpenQASM 3 `input` parameter: --param theta=0.25 (repeatable).
    #[arg(long = "param", value_name = "NAME=VALUE")]
    params: Vec<String>,
}

/// Amplitude precision.
#[derive(Clone, Copy, ValueEnum)]
pub enum Precision {
    /// complex64.
    F32,
    /// complex128.
    F64,
}

/// `NAME=VALUE` pairs from `--param`.
fn parse_params(raw: &[String]) -> Result<Vec<(String, f64)>> {
    let mut out: Vec<(String, f64)> = Vec::new();
    for p in raw {
        let Some((name, value)) = p.split_once('=') else {
            bail!("--param {p:?}: expected NAME=VALUE, for example --param theta=0.25");
        };
        let name = name.trim();
        let value: f64 = value.trim().parse().with_context(|| {
            format!("--param {p:?}: {value:?} is not a number (write it as a decimal, e.g. 0.7854)")
        })?;
        if !value.is_finite() {
            bail!("--param {p:?}: the value must be finite");
        }
        if out.iter().any(|(n, _)| n == name) {
            bail!("--param {name}: given twice");
        }
        out.push((name.to_string(), value));
    }
    Ok(out)
}

/// Memory a state vector may take: 90 % of what the system reports available, or 16 GiB where
/// it reports nothing.
fn memory_bytes_max() -> u64 {
    let avail = std::fs::read_to_string("/proc/meminfo").ok().and_then(|t| {
        t.lines()
            .find(|l| l.starts_with("MemAvailable:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map(|kb| kb * 1024)
    });
    avail.map(|b| b / 10 * 9).unwrap_or(16 << 30)
}

struct Loaded {
    circuit: Circuit,
    parse_s: f64,
}

/// The text of a source file, read only up to the front end's limit (a device such as
/// `/dev/zero` or a pipe would otherwise be read until memory runs out).
fn read_source(path: &Path) -> Result<String, String> {
    let max = qasm::SOURCE_BYTES_MAX as u64;
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut text = String::new();
    file.take(max + 1)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if text.len() as u64 > max {
        return Err(format!(
            "{} is larger than the {max} bytes of source XDV reads",
            path.display()
        ));
    }
    Ok(text)
}

fn load(input: &Input) -> Result<Loaded> {
    let text = read_source(&input.file).map_err(anyhow::Error::msg)?;
    let params = parse_params(&input.params)?;
    let origin = input.file.display().to_string();
    let dir = input
        .file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let resolve = move |name: &str| -> Result<String, String> { read_source(&dir.join(name)) };
    let opts = qasm::Options {
        params: &params,
        include: Some(&resolve),
    };
    let start = Instant::now();
    let circuit = qasm::parse(&text, &origin, &opts)?;
    Ok(Loaded {
        circuit,
        parse_s: start.elapsed().as_secs_f64(),
    })
}

fn load_device(path: &Path) -> Result<Device> {
    Ok(Device::load(path)?)
}

/// What the fast engine did over a command: the figures a benchmark sets against memory
/// bandwidth.
fn engine_json(engine: &Fast) -> serde_json::Value {
    let st = engine.stats_total();
    json!({
        "name": "fast", "simd": engine.simd_level().name(), "gates_in": st.gates_in,
        "gates_out": st.gates_out, "passes": st.passes, "sweeps": st.sweeps,
        "permutation_passes": st.permutation_passes,
    })
}

/// Runs an `xdv q` command.
pub fn run(cmd: QCmd) -> Result<ExitCode> {
    let precision = match &cmd {
        QCmd::Run { input, .. } | QCmd::State { input, .. } | QCmd::Expect { input, .. } => {
            input.precision
        }
        QCmd::Gates => {
            print!("{}", xdv_q::gates::markdown());
            return Ok(ExitCode::SUCCESS);
        }
        QCmd::ExampleDevice => {
            print!("{}", xdv_q::device::EXAMPLE_TOML);
            return Ok(ExitCode::SUCCESS);
        }
        QCmd::Bandwidth {
            mib,
            threads,
            passes,
            json,
        } => {
            let b =
                xdv_q::bandwidth::measure(mib.saturating_mul(1 << 20), *threads as usize, *passes)?;
            let gbs = b.bytes_per_s / 1e9;
            if *json {
                say!(
                    "{}",
                    json!({"threads": b.threads, "bytes": b.bytes, "passes": b.passes, "bytes_per_s": b.bytes_per_s, "gb_per_s": gbs})
                );
            } else {
                say!(
                    "read + write bandwidth: {gbs:.1} GB/s on {} thread{} ({} MiB buffer, median of {} passes)",
                    b.threads,
                    if b.threads == 1 { "" } else { "s" },
                    b.bytes >> 20,
                    b.passes
                );
            }
            return Ok(ExitCode::SUCCESS);
        }
    };
    match precision {
        Precision::F32 => run_in::<f32>(cmd),
        Precision::F64 => run_in::<f64>(cmd),
    }
}

fn run_in<T: Real>(cmd: QCmd) -> Result<ExitCode> {
    match cmd {
        QCmd::Run {
            input,
            shots,
            seed,
            device,
            json,
        } => {
            let loaded = load(&input)?;
            let device = device.as_deref().map(load_device).transpose()?;
            let c = &loaded.circuit;
            let engine = Fast::new(input.threads as usize);
            let opts = RunOptions {
                shots,
                seed,
                memory_bytes_max: memory_bytes_max(),
                device,
                ..RunOptions::default()
            };
            let r = exec::run::<T>(c, &engine, &opts)?;
            if json {
                say!(
                    "{}",
                    json!({
                        "qubits": c.num_qubits, "clbits": c.num_clbits, "shots": shots, "seed": seed,
                        "counts": r.counts, "predicted_error": r.predicted_error,
                        "precision": T::NAME, "threads": engine.threads(), "method": r.method.name(),
                        "timings": {"parse_s": loaded.parse_s, "simulate_s": r.simulate_s, "sample_s": r.sample_s},
                        "engine": engine_json(&engine),
                    })
                );
            } else {
                say!(
                    "{}: {} qubits, {} clbits, {} shots, seed {seed}, {} ({})",
                    input.file.display(),
                    c.num_qubits,
                    c.num_clbits,
                    shots,
                    T::NAME,
                    r.method.name()
                );
                let mut rows: Vec<(&String, &u64)> = r.counts.iter().collect();
                rows.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
                for (k, v) in rows {
                    let key = if k.is_empty() { "(no bits)" } else { k };
                    say!("  {key}  {v}");
                }
                say!("  predicted error {:.6}", r.predicted_error);
                let st = engine.stats_total();
                say!(
                    "  engine: fast ({}), {} threads, {} gates fused to {}, {} passes over the state ({} sweeps, {} permutation passes)",
                    engine.simd_level().name(),
                    engine.threads(),
                    st.gates_in,
                    st.gates_out,
                    st.passes,
                    st.sweeps,
                    st.permutation_passes
                );
                say!(
                    "  parse {:.6} s, simulate {:.6} s, sample {:.6} s",
                    loaded.parse_s,
                    r.simulate_s,
                    r.sample_s
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        QCmd::State { input, json } => {
            let loaded = load(&input)?;
            let engine = Fast::new(input.threads as usize);
            let start = Instant::now();
            let (state, dropped) =
                exec::final_state::<T>(&loaded.circuit, &engine, memory_bytes_max())?;
            let simulate_s = start.elapsed().as_secs_f64();
            if dropped > 0 {
                eprintln!(
                    "xdv q state: note: dropped {dropped} terminal measurement{} (the state is the one before measuring)",
                    if dropped == 1 { "" } else { "s" }
                );
            }
            let amps: Vec<[f64; 2]> = state
                .amplitudes()
                .iter()
                .map(|a| [a.re.to_f64(), a.im.to_f64()])
                .collect();
            if json {
                say!(
                    "{}",
                    json!({
                        "qubits": state.qubits(), "amplitudes": amps, "precision": T::NAME,
                        "timings": {"parse_s": loaded.parse_s, "simulate_s": simulate_s},
                        "engine": engine_json(&engine),
                    })
                );
            } else {
                say!(
                    "{}: {} qubits, {}",
                    input.file.display(),
                    state.qubits(),
                    T::NAME
                );
                let width = state.qubits() as usize;
                for (i, [re, im]) in amps.iter().enumerate() {
                    if re.abs() > 1e-12 || im.abs() > 1e-12 {
                        say!(
                            "  |{:0width$b}⟩  {:+.10} {:+.10}i   p = {:.10}",
                            i,
                            re,
                            im,
                            re * re + im * im
                        );
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        QCmd::Expect {
            input,
            observable,
            shots,
            seed,
            json,
        } => {
            let obs = Observable::parse(&observable)
                .with_context(|| format!("--observable {observable:?}"))?;
            let loaded = load(&input)?;
            let engine = Fast::new(input.threads as usize);
            let start = Instant::now();
            obs.check_qubits(loaded.circuit.num_qubits)
                .with_context(|| format!("--observable {observable:?}"))?;
            let (value, standard_error) = match shots {
                None => {
                    let (state, _) =
                        exec::final_state::<T>(&loaded.circuit, &engine, memory_bytes_max())?;
                    (obs.expectation(&state)?, 0.0)
                }
                Some(s) => {
                    let e =
                        obs.estimate::<T>(&loaded.circuit, &engine, s, seed, memory_bytes_max())?;
                    (e.value, e.std_error)
                }
            };
            let simulate_s = start.elapsed().as_secs_f64();
            if json {
                let mut doc = json!({
                    "expectation": value, "qubits": loaded.circuit.num_qubits,
                    "precision": T::NAME,
                    "timings": {"parse_s": loaded.parse_s, "simulate_s": simulate_s},
                });
                if let Some(s) = shots {
                    doc["shots"] = json!(s);
                    doc["seed"] = json!(seed);
                    doc["standard_error"] = json!(standard_error);
                }
                say!("{doc}");
            } else {
                match shots {
                    None => say!("⟨{observable}⟩ = {value:.12}"),
                    Some(s) => say!(
                        "⟨{observable}⟩ ≈ {value:.6} ± {standard_error:.6} (estimated from {s} shots per commuting group, seed {seed})"
                    ),
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        QCmd::Gates | QCmd::ExampleDevice | QCmd::Bandwidth { .. } => {
            unreachable!("handled before choosing a precision")
        }
    }
}
