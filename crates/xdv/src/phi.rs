//! `xdv phi …`: the Φ domain's embedded provider from the command line — run a photonic program
//! on the coherent mesh simulator (ideal, or on a device with its noise), decompose a unitary
//! into a Clements mesh, print an example device, or admit a transform execution contract.
//!
//! This module reads files, measures wall-clock phases and prints; parsing, compiling and
//! simulating are `xdv-phi`'s.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use xdv_phi::{Contract, PhiDevice, Program};

/// `xdv phi` subcommands.
#[derive(Subcommand)]
pub enum PhiCmd {
    /// Run a Φ program (TOML or JSON) and print the output field.
    Run {
        /// The program: `.toml` or `.json`.
        file: PathBuf,
        /// Seed of the device's noise realisation (the ideal simulator draws nothing).
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// A device description (TOML, see `xdv phi example-device`): run with its noise.
        #[arg(long)]
        device: Option<PathBuf>,
        /// Time since the device's calibration, in ns (its phases drift with it).
        #[arg(long, default_value_t = 0)]
        elapsed_ns: u64,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Print an example device description (TOML), every key commented.
    ExampleDevice,
    /// Admit a transform execution contract (TOML) on a device, or refuse it with the reason and
    /// the predicted figures (exit 1).
    Admit {
        /// The contract file; its `program` is read relative to it.
        contract: PathBuf,
        /// The device description (TOML).
        #[arg(long)]
        device: PathBuf,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Decompose an N×N unitary (JSON: an array of rows of [re, im]) into a rectangular Clements
    /// mesh of MZIs and output phases.
    Decompose {
        /// The matrix file.
        matrix: PathBuf,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
}

/// The largest program or matrix file read.
const FILE_BYTES_MAX: u64 = 256 << 20;

fn read_program(file: &Path) -> Result<Program> {
    let text = read(file)?;
    let origin = file.display().to_string();
    // `.json` and `.xbb` by their extension; anything else is read as TOML.
    let kind = Program::format_of(&origin).unwrap_or("toml");
    Ok(Program::from_text(&text, &origin, kind)?)
}

fn read_device(file: &Path) -> Result<PhiDevice> {
    let text = read(file)?;
    Ok(PhiDevice::from_toml(&text, &file.display().to_string())?)
}

/// A float as JSON, with ±∞ and NaN as `null`.
fn finite(x: f64) -> serde_json::Value {
    if x.is_finite() {
        json!(x)
    } else {
        serde_json::Value::Null
    }
}

fn read(path: &Path) -> Result<String> {
    use std::io::Read as _;
    let f = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut text = String::new();
    f.take(FILE_BYTES_MAX + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if text.len() as u64 > FILE_BYTES_MAX {
        bail!(
            "{}: larger than {} bytes; this is not a Φ program or matrix",
            path.display(),
            FILE_BYTES_MAX
        );
    }
    Ok(text)
}

/// Runs an `xdv phi` command.
pub fn run(cmd: PhiCmd) -> Result<ExitCode> {
    match cmd {
        PhiCmd::Run {
            file,
            seed,
            device,
            elapsed_ns,
            json,
        } => {
            let t0 = Instant::now();
            let program = read_program(&file)?;
            let device = device.as_deref().map(read_device).transpose()?;
            let parse_s = t0.elapsed().as_secs_f64();
            let t1 = Instant::now();
            let r = match &device {
                Some(d) => xdv_phi::run_on_device(&program, d, seed, elapsed_ns)?,
                None => xdv_phi::run(&program, seed)?,
            };
            let simulate_s = t1.elapsed().as_secs_f64();
            if json {
                let mut doc = r.to_json();
                doc["device"] = device
                    .as_ref()
                    .map_or(serde_json::Value::Null, |d| json!(d.name));
                doc["seed"] = json!(seed);
                doc["elapsed_ns"] = json!(elapsed_ns);
                doc["timings"] = json!({"parse_s": parse_s, "simulate_s": simulate_s});
                say!("{doc}");
            } else {
                say!(
                    "{}{}: {} modes × {} channel{}, transmission {:.4} dB, predicted fidelity {:.6}",
                    file.display(),
                    device.as_ref().map_or(String::new(), |d| format!(
                        " on {} (seed {seed}, {elapsed_ns} ns after calibration)",
                        d.name
                    )),
                    r.modes,
                    r.channels,
                    if r.channels == 1 { "" } else { "s" },
                    r.transmission_db,
                    r.predicted_fidelity
                );
                for (c, ch) in r.amplitudes.iter().enumerate() {
                    for (m, a) in ch.iter().enumerate() {
                        say!(
                            "  ch {c} mode {m:>4}  {:+.10} {:+.10}i   I = {:.10}",
                            a.re,
                            a.im,
                            r.intensities[c][m]
                        );
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        PhiCmd::ExampleDevice => {
            say!("{}", xdv_phi::EXAMPLE_TOML.trim_end());
            Ok(ExitCode::SUCCESS)
        }
        PhiCmd::Admit {
            contract,
            device,
            json,
        } => {
            let text = read(&contract)?;
            let c = Contract::from_toml(&text, &contract.display().to_string())?;
            let program_path = contract
                .parent()
                .unwrap_or_else(|| Path::new("."))
                .join(&c.program);
            let program = read_program(&program_path)?;
            let dev = read_device(&device)?;
            let t0 = Instant::now();
            let outcome = xdv_phi::admit(&c, &program, &dev);
            let admit_s = t0.elapsed().as_secs_f64();
            match outcome {
                Ok(a) => {
                    let envelope: Vec<serde_json::Value> = a
                        .envelope
                        .iter()
                        .map(|f| {
                            json!({"mode": f.mode, "amplitude_error": f.amplitude_error,
                                   "phase_error_rad": f.phase_error_rad})
                        })
                        .collect();
                    if json {
                        say!(
                            "{}",
                            json!({
                                "admitted": true,
                                "device": dev.name,
                                "predicted_fidelity": a.prediction.fidelity,
                                "fidelity_systematic": a.prediction.fidelity_systematic,
                                "infidelity_random": a.prediction.infidelity_random,
                                "transmission_db": finite(a.prediction.transmission_db),
                                "coherence_window_ns": finite(a.coherence_window_ns),
                                "window_end_ns": a.window_end_ns,
                                "envelope": envelope,
                                "timings": {"admit_s": admit_s},
                            })
                        );
                    } else {
                        say!(
                            "{}: admitted on {}: predicted fidelity {:.6} (required {}), transmission {:.4} dB (budget −{} dB), window ends {} ns after calibration (coherence window {})",
                            contract.display(),
                            dev.name,
                            a.prediction.fidelity,
                            c.fidelity_min,
                            a.prediction.transmission_db,
                            c.loss_budget_db,
                            a.window_end_ns,
                            if a.coherence_window_ns.is_finite() {
                                format!("{:.0} ns", a.coherence_window_ns)
                            } else {
                                "unbounded".into()
                            }
                        );
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(r) => {
                    if json {
                        say!(
                            "{}",
                            json!({
                                "admitted": false,
                                "device": dev.name,
                                "reason": r.kind(),
                                "message": r.to_string(),
                                "figures": r.figures(),
                                "timings": {"admit_s": admit_s},
                            })
                        );
                    } else {
                        eprintln!("xdv: refused: {}: {r}", contract.display());
                    }
                    Ok(ExitCode::from(1))
                }
            }
        }
        PhiCmd::Decompose { matrix, json } => {
            let text = read(&matrix)?;
            let origin = matrix.display().to_string();
            let m = xdv_phi::Matrix::from_json(&text, &origin)?;
            let t0 = Instant::now();
            let d = xdv_phi::clements::decompose(&m)?;
            let decompose_s = t0.elapsed().as_secs_f64();
            let error = d.reconstruct().max_abs_diff(&m);
            if json {
                let mut doc = serde_json::to_value(&d)?;
                doc["reconstruction_error"] = json!(error);
                doc["timings"] = json!({"decompose_s": decompose_s});
                say!("{doc}");
            } else {
                say!(
                    "{}: {} modes, {} MZIs, reconstruction error {error:.3e}, {decompose_s:.6} s",
                    matrix.display(),
                    d.modes,
                    d.mzis.len()
                );
                for (i, z) in d.mzis.iter().enumerate() {
                    say!(
                        "  {i:>6}: modes {}–{}  θ = {:+.12}  φ = {:+.12}",
                        z.modes[0],
                        z.modes[1],
                        z.theta,
                        z.phi
                    );
                }
                let phases: Vec<String> = d
                    .output_phases
                    .iter()
                    .map(|p| format!("{p:+.12}"))
                    .collect();
                say!("  output phases: {}", phases.join(" "));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
