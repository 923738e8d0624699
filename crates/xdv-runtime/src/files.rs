//! Reading every file a manifest names — guests, circuits, programs, capability tokens,
//! revocation lists, the machine description and the device descriptions the machine names —
//! relative to the manifest's directory, with a size limit. The run loop itself takes the bytes
//! and reads nothing.

use crate::manifest::{Manifest, StepDecl};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use xdv_core::Machine;

/// Largest file a manifest may name, bytes.
pub const FILE_BYTES_MAX: u64 = 64 << 20;

/// A file named by a manifest could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The file could not be read.
    #[error("{key}: cannot read {path}: {source}")]
    Io {
        /// The manifest key that names it (`vhm[0].step[1].circuit`, `machine`).
        key: String,
        /// The path tried.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is larger than [`FILE_BYTES_MAX`].
    #[error("{key}: {path}: {bytes} bytes is more than a manifest's file may have ({FILE_BYTES_MAX}); use a smaller file")]
    TooLarge {
        /// The manifest key.
        key: String,
        /// The path.
        path: PathBuf,
        /// Its size.
        bytes: u64,
    },
}

fn read(base: &Path, rel: &str, key: &str) -> Result<Vec<u8>, FileError> {
    let path = base.join(rel);
    let io = |source| FileError::Io {
        key: key.to_string(),
        path: path.clone(),
        source,
    };
    let meta = std::fs::metadata(&path).map_err(io)?;
    if meta.len() > FILE_BYTES_MAX {
        return Err(FileError::TooLarge {
            key: key.to_string(),
            path,
            bytes: meta.len(),
        });
    }
    std::fs::read(&path).map_err(io)
}

/// Every file `m` names, keyed by the path as written, read relative to `base` (the manifest's
/// directory). A machine description that does not parse is read but not followed (the run
/// reports its error with its position).
pub fn load(m: &Manifest, base: &Path) -> Result<BTreeMap<String, Vec<u8>>, FileError> {
    let mut files = BTreeMap::new();
    if let Some(mach) = &m.machine {
        let bytes = read(base, &mach.value, &mach.key)?;
        if let Ok(machine) = Machine::from_toml(&String::from_utf8_lossy(&bytes), &mach.value) {
            let q = machine.q.iter().filter_map(|c| c.device.clone());
            for d in q.chain(machine.phi.iter().filter_map(|c| c.device.clone())) {
                let b = read(base, &d, "machine device")?;
                files.insert(d, b);
            }
        }
        files.insert(mach.value.clone(), bytes);
    }
    for v in m.all_vhms() {
        if let Some(g) = v.k.as_ref().and_then(|k| k.guest.as_ref()) {
            let b = read(base, &g.value, &g.key)?;
            files.insert(g.value.clone(), b);
        }
        for s in &v.steps {
            let p = match s {
                StepDecl::K { guest, .. } => guest,
                StepDecl::Q { circuit, .. } => circuit,
                StepDecl::Phi { program } => program,
            };
            if !files.contains_key(&p.value) {
                let b = read(base, &p.value, &p.key)?;
                files.insert(p.value.clone(), b);
            }
        }
        if let Some(t) = &v.token {
            if !files.contains_key(&t.value) {
                let b = read(base, &t.value, &t.key)?;
                files.insert(t.value.clone(), b);
            }
        }
    }
    for r in &m.revokes {
        if let crate::manifest::RevokeSource::List(l) = &r.source {
            if !files.contains_key(&l.value) {
                let b = read(base, &l.value, &l.key)?;
                files.insert(l.value.clone(), b);
            }
        }
    }
    Ok(files)
}

/// The machine a manifest runs on: its `machine` file (taken from `files`) or the embedded
/// default.
pub fn machine(m: &Manifest, files: &BTreeMap<String, Vec<u8>>) -> Result<Machine, String> {
    match &m.machine {
        None => Ok(Machine::default_machine()),
        Some(p) => {
            let bytes = files
                .get(&p.value)
                .ok_or_else(|| format!("{}: the machine {:?} was not loaded", p.key, p.value))?;
            let text = std::str::from_utf8(bytes)
                .map_err(|_| format!("{}: {}: not UTF-8 text", p.key, p.value))?;
            Machine::from_toml(text, &p.value).map_err(|e| e.to_string())
        }
    }
}
