//! `xdv phi …`: the Φ domain's embedded provider from the command line — run a photonic program
//! on the coherent mesh simulator, or decompose a unitary into a Clements mesh.
//!
//! This module reads files, measures wall-clock phases and prints; parsing, compiling and
//! simulating are `xdv-phi`'s.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use xdv_phi::Program;

/// `xdv phi` subcommands.
#[derive(Subcommand)]
pub enum PhiCmd {
    /// Run a Φ program (TOML or JSON) and print the output field.
    Run {
        /// The program: `.toml` or `.json`.
        file: PathBuf,
        /// Seed (for noise and detection; the ideal simulator draws nothing).
        #[arg(long, default_value_t = 1)]
        seed: u64,
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
        PhiCmd::Run { file, seed, json } => {
            let text = read(&file)?;
            let origin = file.display().to_string();
            let t0 = Instant::now();
            let is_json = file
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("json"));
            let program = if is_json {
                Program::from_json(&text, &origin)?
            } else {
                Program::from_toml(&text, &origin)?
            };
            let parse_s = t0.elapsed().as_secs_f64();
            let t1 = Instant::now();
            let r = xdv_phi::run(&program, seed)?;
            let simulate_s = t1.elapsed().as_secs_f64();
            if json {
                let mut doc = r.to_json();
                doc["timings"] = json!({"parse_s": parse_s, "simulate_s": simulate_s});
                say!("{doc}");
            } else {
                say!(
                    "{}: {} modes × {} channel{}, transmission {:.4} dB, predicted fidelity {:.6}",
                    file.display(),
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
