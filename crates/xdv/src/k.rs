//! `xdv k …`: the K domain from the command line — run WebAssembly guests (`.wasm` or `.wat`) in
//! the deterministic sandbox, with their Q and Φ jobs on the embedded simulators.
//!
//! This module reads files and prints; compiling, metering, scheduling and the ABI are
//! `xdv-k`'s.

use anyhow::{bail, Context, Result};
use clap::Subcommand;
use serde_json::json;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use xdv_k::sandbox::MODULE_BYTES_MAX;
use xdv_k::{Channel, EngineLimits, Exit, Limits, RunConfig, Sandbox};

/// `xdv k` subcommands.
#[derive(Subcommand)]
pub enum KCmd {
    /// Run guests to their end and report how each ended, its fuel, slices, output and jobs.
    /// Several guests run at once, round-robin, one fuel slice each in turn; guest i is seeded
    /// with SEED + i. Exits 0 when every guest ended ok, 1 when one trapped.
    Run {
        /// The guests: WebAssembly modules, binary (.wasm) or text (.wat).
        #[arg(required = true)]
        guests: Vec<PathBuf>,
        /// Fuel units each guest may consume in all (about one per instruction).
        #[arg(long, default_value_t = Limits::default().fuel_max)]
        fuel: u64,
        /// Fuel units of one slice, after which a guest is preempted.
        #[arg(long, default_value_t = Limits::default().fuel_per_slice)]
        fuel_per_slice: u64,
        /// Linear memory each guest may have, MiB.
        #[arg(long, default_value_t = Limits::default().memory_bytes_max >> 20)]
        memory_mib: u64,
        /// The seed of the guests' WASI randomness and of their jobs' seeds.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Connect guests I and J (numbered from 0 in the order given) with a channel:
        /// --channel 0:1 (repeatable; each guest's ends get handles 0, 1, … in this order).
        #[arg(long = "channel", value_name = "I:J")]
        channels: Vec<String>,
        /// Print one JSON document (one guest: its report; several: {"guests": [...]}).
        #[arg(long)]
        json: bool,
    },
}

fn read_module(path: &Path) -> Result<Vec<u8>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut bytes = Vec::new();
    file.take(MODULE_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() as u64 > MODULE_BYTES_MAX {
        bail!(
            "{} is larger than the {MODULE_BYTES_MAX} bytes of module XDV reads",
            path.display()
        );
    }
    Ok(bytes)
}

fn parse_channel(s: &str) -> Result<Channel> {
    let parsed = s
        .split_once(':')
        .and_then(|(a, b)| Some((a.trim().parse().ok()?, b.trim().parse().ok()?)));
    match parsed {
        Some((a, b)) => Ok(Channel { a, b }),
        None => bail!("--channel {s:?}: expected I:J, two guest numbers such as 0:1"),
    }
}

/// Runs an `xdv k` command.
pub fn run(cmd: KCmd) -> Result<ExitCode> {
    match cmd {
        KCmd::Run {
            guests,
            fuel,
            fuel_per_slice,
            memory_mib,
            seed,
            channels,
            json,
        } => {
            let channels = channels
                .iter()
                .map(|s| parse_channel(s))
                .collect::<Result<Vec<_>>>()?;
            let memory_bytes_max = memory_mib
                .checked_mul(1 << 20)
                .context("--memory-mib is too large")?;
            let sandbox = Sandbox::new(EngineLimits::default())?;
            let mut compiled = Vec::new();
            for path in &guests {
                let bytes = read_module(path)?;
                compiled.push(sandbox.compile(&bytes));
            }
            let limits = Limits {
                fuel_max: fuel,
                fuel_per_slice,
                memory_bytes_max,
                ..Limits::default()
            };
            // Malformed modules get their report without running; the others run together.
            let runnable: Vec<(usize, &xdv_k::Guest)> = compiled
                .iter()
                .enumerate()
                .filter_map(|(i, c)| c.as_ref().ok().map(|g| (i, g)))
                .collect();
            let specs: Vec<(&xdv_k::Guest, RunConfig)> = runnable
                .iter()
                .map(|(i, g)| {
                    let cfg = RunConfig {
                        seed: seed.wrapping_add(*i as u64),
                        limits,
                        args: vec![guests[*i]
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_else(|| "guest".into())],
                        stdin: Vec::new(),
                        jobs: xdv_k::JobMode::Inline,
                    };
                    (*g, cfg)
                })
                .collect();
            if runnable.len() < guests.len() && !channels.is_empty() {
                bail!("a guest that does not compile cannot be connected by --channel");
            }
            let mut ran = sandbox.run_many(&specs, &channels)?.into_iter();
            let reports: Vec<xdv_k::GuestReport> = compiled
                .iter()
                .map(|c| match c {
                    Ok(_) => ran.next().unwrap_or_else(|| {
                        xdv_k::GuestReport::not_run(xdv_k::TrapKind::Host, "no report".into())
                    }),
                    Err(t) => xdv_k::GuestReport::not_run(t.kind, t.message.clone()),
                })
                .collect();
            let all_ok = reports.iter().all(|r| r.exit == Exit::Ok);
            if json {
                let doc = if reports.len() == 1 {
                    reports[0].to_json()
                } else {
                    json!({"guests": reports.iter().map(|r| r.to_json()).collect::<Vec<_>>()})
                };
                say!("{doc}");
            } else {
                for (path, r) in guests.iter().zip(&reports) {
                    match &r.trap {
                        None => say!("{}: ok", path.display()),
                        Some(t) => say!("{}: trap {}: {}", path.display(), t.kind, t.message),
                    }
                    say!(
                        "  fuel {} in {} slice{} ({} yields), {} job{}, {} stdout bytes, {} stderr bytes",
                        r.fuel_consumed,
                        r.slices,
                        if r.slices == 1 { "" } else { "s" },
                        r.yields,
                        r.jobs.len(),
                        if r.jobs.len() == 1 { "" } else { "s" },
                        r.stdout.len(),
                        r.stderr.len()
                    );
                    for line in String::from_utf8_lossy(&r.stdout).lines() {
                        say!("  | {line}");
                    }
                    for line in String::from_utf8_lossy(&r.stderr).lines() {
                        say!("  ! {line}");
                    }
                }
            }
            Ok(if all_ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
