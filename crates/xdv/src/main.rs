//! `xdv`, the command-line front end of the Cross-Domain Virtualizer.
//!
//! This is the edge: it reads files, measures wall-clock rates and prints. Every decision is made
//! by the pure core in `xdv-core`.

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use serde_json::json;
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use xdv_core::table::resource_table;
use xdv_core::Machine;
use xdv_sim::{SimConfig, SimError};
use xdv_trace::{hex, replay, ReplayOptions, TraceWriter, DEFAULT_DIGEST_INTERVAL};

// The core allocates many small, short-lived objects (events, effects, capability entries);
// mimalloc is markedly faster at that than the system allocator.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "xdv",
    version,
    about = "XDV, the Cross-Domain Virtualizer: a domain hypervisor for K, Q and Φ"
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Run the Virtual Hybrid Machines of a manifest on the embedded providers (XDV's main job).
    Run(runner::RunArgs),
    /// Deterministic simulation: a seeded stream of valid and invalid inputs, every invariant
    /// checked after every step.
    Sim {
        /// The seed.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Inputs to generate.
        #[arg(long, default_value_t = 1_000_000)]
        ops: u64,
        /// Write the orchestration trace here.
        #[arg(long)]
        trace: Option<PathBuf>,
        /// Provider capacity description (TOML); the embedded simulation machine by default.
        #[arg(long)]
        machine: Option<PathBuf>,
        /// Also run the full (non-incremental) invariant check every N steps (0: only at the end).
        #[arg(long, default_value_t = 4096)]
        full_check_every: u64,
        /// Also write a signed audit log here, derived from the run's trace (needs --keys).
        #[arg(long, requires = "keys")]
        audit: Option<PathBuf>,
        /// The key directory that signs the audit log (`xdv keys generate DIR`).
        #[arg(long, requires = "audit")]
        keys: Option<PathBuf>,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Re-apply a trace, verifying every chain hash, decision and state digest.
    Replay {
        /// The trace file, or a state directory written by `xdv run --state-dir` (whose trace is
        /// accepted unsealed while its run is unfinished).
        trace: PathBuf,
        /// Accept a trace without a seal record (verify its complete prefix).
        #[arg(long)]
        allow_unsealed: bool,
        /// Run the full invariant checker after every input (slow).
        #[arg(long)]
        check_invariants: bool,
        /// Verify only the hash chain (integrity and completeness), without re-applying inputs.
        #[arg(long, conflicts_with_all = ["allow_unsealed", "check_invariants"])]
        chain_only: bool,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Print the Resource_Table at the end of a trace (after verifying it).
    Table {
        /// The trace file, or a state directory written by `xdv run --state-dir`.
        trace: PathBuf,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// The Q domain's embedded provider: run OpenQASM circuits, print states, expectation values.
    Q {
        #[command(subcommand)]
        command: q::QCmd,
    },
    /// The Φ domain's embedded provider: run photonic mesh programs, decompose unitaries into
    /// Clements meshes.
    Phi {
        #[command(subcommand)]
        command: phi::PhiCmd,
    },
    /// The K domain's sandbox: run WebAssembly guests (fuel-metered, memory-limited,
    /// deterministic) whose Q and Φ jobs reach the embedded simulators.
    K {
        #[command(subcommand)]
        command: k::KCmd,
    },
    /// The tamper-evident audit log: verify, prove inclusion and consistency, show entries.
    Audit {
        #[command(subcommand)]
        command: audit::AuditCmd,
    },
    /// Key directories: master secret and the public keys derived from it.
    Keys {
        #[command(subcommand)]
        command: audit::KeysCmd,
    },
    /// Capability tokens: mint, attenuate offline, inspect, verify a request, revoke.
    Token {
        #[command(subcommand)]
        command: token::TokenCmd,
    },
    /// Provider capacity descriptions.
    Machine {
        #[command(subcommand)]
        command: MachineCmd,
    },
}

#[derive(Subcommand)]
enum MachineCmd {
    /// Check a description and print what it describes.
    Check {
        /// The TOML file.
        file: PathBuf,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Print the embedded default description.
    Default,
}

/// Prints a line to stdout; a closed pipe (`xdv … | head`) ends the program quietly instead of
/// panicking.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut out = std::io::stdout().lock();
        if let Err(e) = writeln!(out, $($arg)*) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
            eprintln!("xdv: cannot write to stdout: {e}");
            std::process::exit(2);
        }
    }};
}

// After `say!`, so that `xdv k`, `xdv q` and `xdv phi` print through the same macro.
mod k;
mod phi;
mod q;
mod runner;
// `xdv audit` and `xdv keys`, and the audit log that `xdv sim --audit` writes.
mod audit;
// `xdv token`: capability tokens.
mod token;

/// The trace bytes at `path`: a trace file, or the trace a state directory (`xdv run --state-dir`)
/// holds. The flag is true for a state directory, whose trace is unsealed while its run is
/// unfinished.
fn load_trace(path: &Path) -> Result<(Vec<u8>, bool)> {
    if path.is_dir() {
        let loaded = xdv_runtime::store::read(path)?;
        return Ok((loaded.trace, true));
    }
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok((bytes, false))
}

fn load_machine(path: &Path) -> Result<Machine> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(Machine::from_toml(&text, &path.display().to_string())?)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xdv: error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Cmd::Sim {
            seed,
            ops,
            trace,
            machine,
            full_check_every,
            audit: audit_path,
            keys,
            json,
        } => {
            if let Some(k) = &keys {
                // Fail before the run, not after it.
                audit::load_signer(k)?;
            }
            let mut audit_trace: Option<Vec<u8>> = None;
            let mut cfg = SimConfig::new(seed, ops);
            cfg.full_check_every = full_check_every;
            if let Some(m) = machine {
                cfg.machine = load_machine(&m)?;
            }
            let start = Instant::now();
            let result = match &trace {
                Some(path) => {
                    let f = std::fs::File::create(path)
                        .with_context(|| format!("cannot create {}", path.display()))?;
                    let genesis = cfg.genesis();
                    let mut w = TraceWriter::new(
                        BufWriter::with_capacity(1 << 20, f),
                        &genesis,
                        DEFAULT_DIGEST_INTERVAL,
                    )?;
                    let r = xdv_sim::run(&cfg, Some(&mut w));
                    if let Ok((_, core)) = &r {
                        w.finish(core)?;
                    }
                    r
                }
                None if audit_path.is_some() => {
                    let genesis = cfg.genesis();
                    let mut w = TraceWriter::new(Vec::new(), &genesis, DEFAULT_DIGEST_INTERVAL)?;
                    let r = xdv_sim::run(&cfg, Some(&mut w));
                    if let Ok((_, core)) = &r {
                        audit_trace = Some(w.finish(core)?);
                    }
                    r
                }
                None => xdv_sim::run::<std::io::Sink>(&cfg, None),
            };
            let audit_written = match (&audit_path, &keys, &result) {
                (Some(a), Some(k), Ok(_)) => {
                    let bytes = match audit_trace.take() {
                        Some(b) => b,
                        None => std::fs::read(trace.as_deref().context("a trace path")?)?,
                    };
                    Some(audit::write_from_trace(
                        &bytes,
                        a,
                        k,
                        audit::CHECKPOINT_EVERY_DEFAULT,
                    )?)
                }
                _ => None,
            };
            let secs = start.elapsed().as_secs_f64();
            match result {
                Ok((rep, _)) => {
                    let rate = rep.ops as f64 / secs.max(1e-9);
                    if json {
                        let mut doc = json!({
                            "seed": rep.seed, "ops": rep.ops, "accepted": rep.accepted, "rejected": rep.rejected,
                            "invariant_violations": 0, "state_hash": hex(&rep.state_hash), "ops_per_sec": rate,
                            "attacks_refused": rep.attacks, "vhms_created": rep.vhms_created,
                            "vhms_stopped": rep.vhms_stopped, "jobs_completed": rep.jobs_completed,
                            "jobs_waited": rep.jobs_waited, "jobs_woken": rep.jobs_woken,
                            "tokens_revoked": rep.tokens_revoked, "denials": rep.denials,
                            "messages": rep.messages, "rejections": rep.rejections,
                        });
                        if let Some(w) = &audit_written {
                            doc["audit"] = json!({"entries": w.entries, "checkpoints": w.checkpoints, "root": hex(&w.root)});
                        }
                        say!("{doc}");
                    } else {
                        say!(
                            "seed {}: {} inputs, {} accepted, {} rejected, 0 invariant violations",
                            rep.seed,
                            rep.ops,
                            rep.accepted,
                            rep.rejected
                        );
                        say!("  {} VHMs created, {} stopped; {} jobs completed; {} messages; {} attacks refused", rep.vhms_created, rep.vhms_stopped, rep.jobs_completed, rep.messages, rep.attacks);
                        let by_rule: Vec<String> = rep
                            .rejections
                            .iter()
                            .map(|(k, v)| format!("{k} {v}"))
                            .collect();
                        say!("  rejections by rule: {}", by_rule.join(", "));
                        say!("  state hash {}", hex(&rep.state_hash));
                        say!("  {:.0} inputs/s ({:.3} s)", rate, secs);
                        if let Some(t) = trace {
                            say!("  trace written to {}", t.display());
                        }
                        if let (Some(a), Some(w)) = (&audit_path, &audit_written) {
                            say!(
                                "  audit log written to {}: {} entries, {} checkpoints, root {}",
                                a.display(),
                                w.entries,
                                w.checkpoints,
                                hex(&w.root)
                            );
                        }
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(SimError::Violation {
                    seed,
                    step,
                    input,
                    violation,
                }) => {
                    eprintln!("xdv sim: INVARIANT VIOLATION at seed {seed}, step {step}: {violation}\n  input: {input}\n  reproduce with: xdv sim --seed {seed} --ops {}", step + 1);
                    if json {
                        say!(
                            "{}",
                            json!({"seed": seed, "step": step, "invariant_violations": 1, "violation": violation.to_string(), "input": input})
                        );
                    }
                    Ok(ExitCode::from(1))
                }
                Err(e) => Err(e.into()),
            }
        }
        Cmd::Replay {
            trace,
            chain_only: true,
            json,
            ..
        } => {
            let (bytes, _) = load_trace(&trace)?;
            let start = Instant::now();
            let r = xdv_trace::verify_chain(&bytes);
            let secs = start.elapsed().as_secs_f64();
            match r {
                Ok((inputs, chain)) => {
                    let rate = inputs as f64 / secs.max(1e-9);
                    if json {
                        say!(
                            "{}",
                            json!({"inputs": inputs, "chain_hash": hex(&chain), "chain_verified": true, "inputs_per_sec": rate})
                        );
                    } else {
                        say!("{}: hash chain of {inputs} inputs intact and sealed (decisions not re-applied)", trace.display());
                        say!("  chain hash {}", hex(&chain));
                        say!("  {rate:.0} inputs/s ({secs:.3} s)");
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("xdv replay: {}: {e}", trace.display());
                    if json {
                        say!(
                            "{}",
                            json!({"chain_verified": false, "error": e.to_string()})
                        );
                    }
                    Ok(ExitCode::from(1))
                }
            }
        }
        Cmd::Replay {
            trace,
            allow_unsealed,
            check_invariants,
            json,
            ..
        } => {
            let (bytes, state_dir) = load_trace(&trace)?;
            let start = Instant::now();
            let r = replay(
                &bytes,
                ReplayOptions {
                    allow_unsealed: allow_unsealed || state_dir,
                    check_invariants,
                },
            );
            let secs = start.elapsed().as_secs_f64();
            match r {
                Ok((rep, _)) => {
                    let rate = rep.inputs as f64 / secs.max(1e-9);
                    if json {
                        say!(
                            "{}",
                            json!({
                                "inputs": rep.inputs, "state_hash": hex(&rep.state_hash), "verified": true,
                                "inputs_per_sec": rate, "accepted": rep.accepted, "rejected": rep.rejected,
                                "digests": rep.digests, "sealed": rep.sealed, "chain_hash": hex(&rep.chain_hash),
                                "torn_tail_bytes": rep.torn_tail_bytes,
                            })
                        );
                    } else {
                        say!(
                            "{}: verified {} inputs ({} accepted, {} rejected), {} state digests{}",
                            trace.display(),
                            rep.inputs,
                            rep.accepted,
                            rep.rejected,
                            rep.digests,
                            if rep.sealed {
                                ", sealed"
                            } else {
                                ", NOT sealed"
                            }
                        );
                        if rep.torn_tail_bytes > 0 {
                            say!(
                                "  ignored a partly written last record ({} bytes)",
                                rep.torn_tail_bytes
                            );
                        }
                        say!("  state hash {}", hex(&rep.state_hash));
                        say!("  {:.0} inputs/s ({:.3} s)", rate, secs);
                    }
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => {
                    eprintln!("xdv replay: {}: {e}", trace.display());
                    if json {
                        say!("{}", json!({"verified": false, "error": e.to_string()}));
                    }
                    Ok(ExitCode::from(1))
                }
            }
        }
        Cmd::Table { trace, json } => {
            let (bytes, state_dir) = load_trace(&trace)?;
            let opts = ReplayOptions {
                allow_unsealed: state_dir,
                ..ReplayOptions::default()
            };
            let core = match replay(&bytes, opts) {
                Ok((_, core)) => core,
                Err(e) => {
                    eprintln!("xdv table: {}: {e}", trace.display());
                    return Ok(ExitCode::from(1));
                }
            };
            let rows = resource_table(&core);
            if json {
                say!("{}", serde_json::to_string(&rows)?);
            } else {
                say!(
                    "{:<8} {:<12} {:<3} {:<16} {:<22} {:>16} {:>16} {:>24} {:>8}",
                    "vhm",
                    "name",
                    "dom",
                    "provider",
                    "resource",
                    "amount",
                    "consumed",
                    "interval_ns",
                    "cap"
                );
                for r in rows {
                    let iv = match r.interval.end_ns {
                        Some(e) => format!("{}..{}", r.interval.start_ns, e),
                        None => format!("{}..", r.interval.start_ns),
                    };
                    say!(
                        "{:<8} {:<12} {:<3} {:<16} {:<22} {:>16} {:>16} {:>24} {:>8}",
                        r.vhm.to_string(),
                        r.name,
                        r.domain.to_string(),
                        r.provider.as_deref().unwrap_or("-"),
                        r.resource.name(),
                        r.amount,
                        r.consumed,
                        iv,
                        r.capability.to_string()
                    );
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Cmd::Run(args) => runner::run(args),
        Cmd::Q { command } => q::run(command),
        Cmd::Audit { command } => audit::run(command),
        Cmd::Keys { command } => audit::run_keys(command),
        Cmd::Token { command } => token::run(command),
        Cmd::Phi { command } => phi::run(command),
        Cmd::K { command } => k::run(command),
        Cmd::Machine { command } => match command {
            MachineCmd::Check { file, json } => {
                let m = load_machine(&file)?;
                if json {
                    say!("{}", serde_json::to_string(&m)?);
                } else {
                    say!("{}: valid", file.display());
                    say!("  tick: {} ns", m.tick_ns);
                    say!(
                        "  K: {} vCPU slots, {} fuel units per slice, {} memory bytes",
                        m.k.vcpu_slots,
                        m.k.fuel_per_slice,
                        m.k.memory_bytes
                    );
                    if m.q.is_empty() {
                        say!("  Q: none");
                    }
                    for q in &m.q {
                        say!(
                            "  Q: {} ({} qubits, {}, guard qubits {}, {} jobs in flight{})",
                            q.provider,
                            q.qubits,
                            q.topology,
                            if q.guard_qubits { "on" } else { "off" },
                            q.max_inflight_jobs,
                            q.device
                                .as_ref()
                                .map(|d| format!(", device {d}"))
                                .unwrap_or_default()
                        );
                    }
                    if m.phi.is_empty() {
                        say!("  Φ: none");
                    }
                    for p in &m.phi {
                        say!(
                            "  Φ: {} ({} modes × {} wavelength channels, {} mW thermal, {} MHz optical, {} jobs in flight{})",
                            p.provider,
                            p.modes,
                            p.wavelength_channels,
                            p.thermal_budget_mw,
                            p.optical_bandwidth_mhz,
                            p.max_inflight_jobs,
                            p.device
                                .as_ref()
                                .map(|d| format!(", device {d}"))
                                .unwrap_or_default()
                        );
                    }
                }
                Ok(ExitCode::SUCCESS)
            }
            MachineCmd::Default => {
                say!("{}", xdv_core::machine::DEFAULT_MACHINE_TOML.trim_end());
                Ok(ExitCode::SUCCESS)
            }
        },
    }
}
