//! `xdv run`: reads a VHM manifest and every file it names, runs it on the embedded providers
//! through the hypervisor's run loop, and prints each VHM's results and the Resource_Table.
//!
//! With `--state-dir`, every round of the run is committed durably (redb, fsync) before its
//! effects are performed, together with the results completed in it; a run killed at any moment
//! resumes from that directory by re-deriving its inputs, checking them against the stored trace
//! and taking the stored results. The manifest and its files are stored too, so a resumed run
//! uses exactly the bytes the first one read.

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::json;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;
use xdv_runtime::run::{InjectFault, Options, Resume, Sink, VhmStatus};
use xdv_runtime::store::Store;
use xdv_runtime::Manifest;

/// `xdv run`'s arguments.
#[derive(Args)]
pub struct RunArgs {
    /// The VHM manifest (TOML; reference in docs/manifest.md).
    manifest: PathBuf,
    /// Keep the run's durable state here; an interrupted run resumes from it.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Also write the orchestration trace to this file (verify it with `xdv replay`).
    #[arg(long)]
    trace: Option<PathBuf>,
    /// Also write a signed audit log of the run here, derived from its trace (needs --keys).
    #[arg(long, requires = "keys")]
    audit: Option<PathBuf>,
    /// The key directory that signs the audit log (`xdv keys generate DIR`).
    #[arg(long, requires = "audit")]
    keys: Option<PathBuf>,
    /// Enforce capability tokens: every VHM must present one (its `token` key), checked at every
    /// boundary against the operator's token root key in this key directory
    /// (`xdv keys generate DIR`; only its public `token-root.pub` is read).
    #[arg(long)]
    token_root: Option<PathBuf>,
    /// Print one JSON document.
    #[arg(long)]
    json: bool,
    /// Testing: make provider PROVIDER fail its N-th job (0-based), as `PROVIDER:N`.
    #[arg(long, hide = true)]
    inject_fault: Option<String>,
    /// Testing: sleep this many milliseconds after each durable commit (to kill a run mid-way).
    #[arg(long, hide = true, default_value_t = 0)]
    throttle_ms: u64,
}

struct StoreSink {
    store: Store,
    throttle_ms: u64,
    trace: Vec<u8>,
    progress: bool,
    commits: u64,
}

impl Sink for StoreSink {
    fn commit(&mut self, trace: &[u8], results: &[(u64, Vec<u8>)]) -> Result<(), String> {
        if !trace.is_empty() {
            self.store.append_trace(trace).map_err(|e| e.to_string())?;
        }
        for (job, bytes) in results {
            self.store
                .put_result(*job, bytes)
                .map_err(|e| e.to_string())?;
        }
        self.store.commit(true).map_err(|e| e.to_string())?;
        self.trace.extend_from_slice(trace);
        progress(self.progress, &mut self.commits);
        if self.throttle_ms > 0 {
            std::thread::sleep(std::time::Duration::from_millis(self.throttle_ms));
        }
        Ok(())
    }
}

struct MemSink {
    trace: Vec<u8>,
    progress: bool,
    commits: u64,
}

impl Sink for MemSink {
    fn commit(&mut self, trace: &[u8], _: &[(u64, Vec<u8>)]) -> Result<(), String> {
        self.trace.extend_from_slice(trace);
        progress(self.progress, &mut self.commits);
        Ok(())
    }
}

fn progress(on: bool, commits: &mut u64) {
    *commits += 1;
    if on && (*commits).is_multiple_of(64) {
        eprint!("\rxdv run: {} rounds committed", *commits);
    }
}

/// Runs `xdv run`.
pub fn run(a: RunArgs) -> Result<ExitCode> {
    let origin = a.manifest.display().to_string();
    let text =
        std::fs::read_to_string(&a.manifest).with_context(|| format!("cannot read {origin}"))?;
    let base = a
        .manifest
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let inject_fault = match &a.inject_fault {
        None => None,
        Some(s) => {
            let (p, n) = s
                .rsplit_once(':')
                .context("--inject-fault takes PROVIDER:N")?;
            Some(InjectFault {
                provider: p.to_string(),
                nth: n.parse().context("--inject-fault takes PROVIDER:N")?,
            })
        }
    };
    let token_root = match &a.token_root {
        Some(dir) => Some(crate::token::load_root(dir)?),
        None => None,
    };
    let opts = Options {
        inject_fault,
        token_root,
        warm: None,
    };
    if let Some(k) = &a.keys {
        // Fail before the run, not after it.
        crate::audit::load_signer(k)?;
    }
    let show_progress = !a.json && std::io::stdout().is_terminal();
    let start = Instant::now();
    let (report, trace_bytes) = match &a.state_dir {
        Some(dir) => {
            let (mut store, loaded) = Store::open(dir)?;
            let (text, files) = match loaded.meta.get("manifest") {
                Some(stored) => {
                    if stored.as_slice() != text.as_bytes() {
                        bail!("{}: the state directory holds the run of another manifest (or an edited copy of this one); use a new --state-dir", dir.display());
                    }
                    (text, loaded.files.clone())
                }
                None => {
                    let m = Manifest::from_toml(&text, &origin)?;
                    let files = xdv_runtime::files::load(&m, &base)?;
                    store.put_meta("manifest", text.as_bytes())?;
                    for (k, v) in &files {
                        store.put_file(k, v)?;
                    }
                    store.commit(true)?;
                    (text, files)
                }
            };
            let m = Manifest::from_toml(&text, &origin)?;
            let machine = xdv_runtime::files::machine(&m, &files).map_err(anyhow::Error::msg)?;
            let resume = Resume {
                trace: loaded.trace.clone(),
                results: loaded.results.clone(),
            };
            let mut sink = StoreSink {
                store,
                throttle_ms: a.throttle_ms,
                trace: loaded.trace,
                progress: show_progress,
                commits: 0,
            };
            let r = xdv_runtime::run(&m, &files, machine, &opts, resume, &mut sink)?;
            (r, sink.trace)
        }
        None => {
            let m = Manifest::from_toml(&text, &origin)?;
            let files = xdv_runtime::files::load(&m, &base)?;
            let machine = xdv_runtime::files::machine(&m, &files).map_err(anyhow::Error::msg)?;
            let mut sink = MemSink {
                trace: Vec::new(),
                progress: show_progress,
                commits: 0,
            };
            let r = xdv_runtime::run(&m, &files, machine, &opts, Resume::default(), &mut sink)?;
            (r, sink.trace)
        }
    };
    let run_s = start.elapsed().as_secs_f64();
    if show_progress {
        eprintln!();
    }
    if let Some(t) = &a.trace {
        std::fs::write(t, &trace_bytes).with_context(|| format!("cannot write {}", t.display()))?;
    }
    let audit = match (&a.audit, &a.keys) {
        (Some(path), Some(keys)) => Some(crate::audit::write_from_trace(
            &trace_bytes,
            path,
            keys,
            crate::audit::CHECKPOINT_EVERY_DEFAULT,
        )?),
        _ => None,
    };
    let all_ok = report.vhms.iter().all(|v| v.status == VhmStatus::Finished);
    if a.json {
        let mut doc = report.to_json();
        doc["timings"] = json!({"run_s": run_s});
        doc["jobs_executed"] = json!(report.jobs_executed);
        doc["jobs_resumed"] = json!(report.jobs_resumed);
        if let Some(w) = &audit {
            doc["audit"] = json!({"entries": w.entries, "checkpoints": w.checkpoints,
                "root": xdv_trace::hex(&w.root)});
        }
        say!("{doc}");
    } else {
        say!(
            "run {}: {} VHMs, {} ticks, {} inputs, {:.3} s",
            report.name,
            report.vhms.len(),
            report.ticks,
            report.inputs,
            run_s
        );
        for v in &report.vhms {
            let status = match &v.status {
                VhmStatus::Finished => "finished".to_string(),
                VhmStatus::Faulted(m) => format!("FAULTED: {m}"),
                VhmStatus::Unfinished => "unfinished (max_ticks reached)".to_string(),
            };
            say!(
                "  {} [{}]: {status}",
                v.path,
                v.id.map(|i| i.to_string()).unwrap_or_else(|| "-".into())
            );
            let mut placed = Vec::new();
            if !v.qubits.is_empty() {
                placed.push(format!("qubits {:?}", v.qubits));
            }
            if let Some(r) = v.region {
                placed.push(format!(
                    "modes {}..{} × channels {}..{}",
                    r.mode_start,
                    r.mode_start + r.modes,
                    r.channel_start,
                    r.channel_start + r.channels
                ));
            }
            if !placed.is_empty() {
                say!("    placed on {}", placed.join(", "));
            }
            for (i, r) in v.results.iter().enumerate() {
                say!("    step {i}: {}", summarize(r));
            }
        }
        say!("Resource_Table:");
        say!(
            "  {:<16} {:<4} {:<16} {:<22} {:>12} {:>12} {:>22} {:>6}",
            "vhm",
            "dom",
            "provider",
            "resource",
            "amount",
            "consumed",
            "interval_ns",
            "cap"
        );
        for r in &report.resource_table {
            let interval = match r.interval.end_ns {
                Some(e) => format!("{}..{}", r.interval.start_ns, e),
                None => format!("{}..", r.interval.start_ns),
            };
            say!(
                "  {:<16} {:<4} {:<16} {:<22} {:>12} {:>12} {:>22} {:>6}",
                r.name,
                r.domain.name(),
                r.provider.clone().unwrap_or_else(|| "-".into()),
                r.resource.name(),
                r.amount,
                r.consumed,
                interval,
                r.capability.0
            );
        }
        say!("state hash {}", xdv_trace::hex(&report.state_hash));
        if let (Some(p), Some(w)) = (&a.audit, &audit) {
            say!(
                "audit log written to {}: {} entries, {} checkpoints, root {}",
                p.display(),
                w.entries,
                w.checkpoints,
                xdv_trace::hex(&w.root)
            );
        }
    }
    Ok(if all_ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One line about a step's result.
fn summarize(r: &serde_json::Value) -> String {
    if let (Some(exit), Some(fuel)) = (r.get("exit"), r.get("fuel_consumed")) {
        let jobs = r.get("jobs").and_then(|j| j.as_array()).map_or(0, Vec::len);
        let out = r
            .get("stdout")
            .and_then(|s| s.as_str())
            .unwrap_or("")
            .trim();
        let cut: String = out.chars().take(200).collect();
        let more = if out.chars().count() > 200 {
            " …"
        } else {
            ""
        };
        return format!(
            "guest exit {}, {fuel} fuel units, {jobs} jobs; stdout: {cut}{more}",
            exit.as_str().unwrap_or("?")
        );
    }
    if let Some(c) = r.get("counts").and_then(|c| c.as_object()) {
        let mut top: Vec<(&String, u64)> = c
            .iter()
            .filter_map(|(k, v)| Some((k, v.as_u64()?)))
            .collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        let s: Vec<String> = top
            .iter()
            .take(4)
            .map(|(k, n)| format!("{k}:{n}"))
            .collect();
        let mut line = format!(
            "counts {}{}",
            s.join(" "),
            if top.len() > 4 { " …" } else { "" }
        );
        if let Some(e) = r.get("expectations").and_then(|e| e.as_array()) {
            for x in e {
                line.push_str(&format!(
                    "; ⟨{}⟩ = {:.6}",
                    x["observable"].as_str().unwrap_or("?"),
                    x["value"].as_f64().unwrap_or(f64::NAN)
                ));
            }
        }
        if let Some(rt) = r.get("routing") {
            line.push_str(&format!(
                "; on {} with {} swaps, predicted error {:.4}",
                rt["device"].as_str().unwrap_or("?"),
                rt["swaps"].as_u64().unwrap_or(0),
                r["predicted_error"].as_f64().unwrap_or(f64::NAN)
            ));
        }
        return line;
    }
    if let Some(e) = r.get("expectations").and_then(|e| e.as_array()) {
        return e
            .iter()
            .map(|x| {
                format!(
                    "⟨{}⟩ = {:.6}",
                    x["observable"].as_str().unwrap_or("?"),
                    x["value"].as_f64().unwrap_or(f64::NAN)
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
    }
    if let Some(i) = r.get("intensities").and_then(|i| i.as_array()) {
        let s: Vec<String> = i
            .iter()
            .take(8)
            .map(|x| format!("{:.4}", x.as_f64().unwrap_or(f64::NAN)))
            .collect();
        return format!(
            "intensities [{}{}]",
            s.join(", "),
            if i.len() > 8 { ", …" } else { "" }
        );
    }
    r.to_string()
}
