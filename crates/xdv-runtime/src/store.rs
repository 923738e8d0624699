//! The durable state directory of a run: one redb database holding the manifest and every file it
//! names, the orchestration trace (the byte stream of `xdv-trace`, in chunks of whole records) and
//! each job's provider result.
//!
//! Writes go into one open write transaction and become durable when the runtime commits it
//! (`commit(true)`: fsync); `commit(false)` makes them visible without syncing. redb commits are
//! atomic, so after a crash the database holds exactly what the last durable commit held: a prefix
//! of the trace made of whole records, and the results committed with it.

use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file name of the database inside a state directory.
pub const DB_FILE: &str = "xdv.redb";
/// The state-directory format this build writes and reads.
pub const FORMAT: u32 = 1;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const FILES: TableDefinition<&str, &[u8]> = TableDefinition::new("files");
const TRACE: TableDefinition<u64, &[u8]> = TableDefinition::new("trace");
const RESULTS: TableDefinition<u64, &[u8]> = TableDefinition::new("results");

/// Why the state directory could not be used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory could not be created or read.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The database refused an operation.
    #[error("{path}: the state database failed: {message}")]
    Db {
        /// The database file.
        path: PathBuf,
        /// What redb said.
        message: String,
    },
    /// The database was written by a build with another format.
    #[error("{path}: state directory format {found} is not supported (this build reads format {FORMAT}); use the XDV release that wrote it or a new directory")]
    Format {
        /// The database file.
        path: PathBuf,
        /// The format found.
        found: String,
    },
}

/// Everything a state directory held when it was opened.
#[derive(Clone, Debug, Default)]
pub struct Loaded {
    /// Metadata entries.
    pub meta: BTreeMap<String, Vec<u8>>,
    /// Files by the name the manifest used.
    pub files: BTreeMap<String, Vec<u8>>,
    /// The trace bytes: every chunk, in order.
    pub trace: Vec<u8>,
    /// Number of trace chunks.
    pub trace_chunks: u64,
    /// Job results by job id.
    pub results: BTreeMap<u64, Vec<u8>>,
}

/// An open state directory.
pub struct Store {
    path: PathBuf,
    db: Database,
    txn: Option<WriteTransaction>,
    next_chunk: u64,
    dirty: bool,
}

impl Store {
    /// Opens (creating when needed) the state directory `dir` and loads what it holds.
    pub fn open(dir: &Path) -> Result<(Store, Loaded), StoreError> {
        std::fs::create_dir_all(dir).map_err(|source| StoreError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
        let path = dir.join(DB_FILE);
        let db_err = |e: &dyn std::fmt::Display| StoreError::Db {
            path: path.clone(),
            message: e.to_string(),
        };
        if !path.exists() {
            // A process killed while redb writes a new file's header would leave a file that
            // is not a database; build it under a temporary name and rename it into place, so
            // the real name only ever holds a complete database.
            let tmp = dir.join(format!("{DB_FILE}.creating"));
            let _ = std::fs::remove_file(&tmp);
            drop(Database::create(&tmp).map_err(|e| db_err(&e))?);
            std::fs::File::open(&tmp)
                .and_then(|f| f.sync_all())
                .map_err(|source| StoreError::Io {
                    path: tmp.clone(),
                    source,
                })?;
            std::fs::rename(&tmp, &path).map_err(|source| StoreError::Io {
                path: path.clone(),
                source,
            })?;
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        let db = Database::create(&path).map_err(|e| db_err(&e))?;
        let mut loaded = Loaded::default();
        {
            let r = db.begin_read().map_err(|e| db_err(&e))?;
            let read = |name: TableDefinition<&str, &[u8]>,
                        out: &mut BTreeMap<String, Vec<u8>>|
             -> Result<(), StoreError> {
                match r.open_table(name) {
                    Ok(t) => {
                        for e in t.iter().map_err(|e| db_err(&e))? {
                            let (k, v) = e.map_err(|e| db_err(&e))?;
                            out.insert(k.value().to_string(), v.value().to_vec());
                        }
                        Ok(())
                    }
                    Err(redb::TableError::TableDoesNotExist(_)) => Ok(()),
                    Err(e) => Err(db_err(&e)),
                }
            };
            read(META, &mut loaded.meta)?;
            read(FILES, &mut loaded.files)?;
            match r.open_table(TRACE) {
                Ok(t) => {
                    for e in t.iter().map_err(|e| db_err(&e))? {
                        let (k, v) = e.map_err(|e| db_err(&e))?;
                        if k.value() != loaded.trace_chunks {
                            return Err(db_err(&format!(
                                "trace chunk {} follows chunk {}: the trace table has a gap",
                                k.value(),
                                loaded.trace_chunks.wrapping_sub(1)
                            )));
                        }
                        loaded.trace.extend_from_slice(v.value());
                        loaded.trace_chunks += 1;
                    }
                }
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(db_err(&e)),
            }
            match r.open_table(RESULTS) {
                Ok(t) => {
                    for e in t.iter().map_err(|e| db_err(&e))? {
                        let (k, v) = e.map_err(|e| db_err(&e))?;
                        loaded.results.insert(k.value(), v.value().to_vec());
                    }
                }
                Err(redb::TableError::TableDoesNotExist(_)) => {}
                Err(e) => return Err(db_err(&e)),
            }
        }
        match loaded.meta.get("format") {
            None if loaded.meta.is_empty() => {}
            Some(f) if f.as_slice() == FORMAT.to_string().as_bytes() => {}
            other => {
                return Err(StoreError::Format {
                    path,
                    found: other
                        .map(|f| String::from_utf8_lossy(f).into_owned())
                        .unwrap_or_else(|| "(none)".into()),
                })
            }
        }
        let next_chunk = loaded.trace_chunks;
        let mut store = Store {
            path,
            db,
            txn: None,
            next_chunk,
            dirty: false,
        };
        if loaded.meta.is_empty() {
            store.put_meta("format", FORMAT.to_string().as_bytes())?;
        }
        Ok((store, loaded))
    }

    fn err(&self, e: &dyn std::fmt::Display) -> StoreError {
        StoreError::Db {
            path: self.path.clone(),
            message: e.to_string(),
        }
    }

    fn txn(&mut self) -> Result<&mut WriteTransaction, StoreError> {
        if self.txn.is_none() {
            let t = self.db.begin_write().map_err(|e| self.err(&e))?;
            self.txn = Some(t);
        }
        self.dirty = true;
        Ok(self.txn.as_mut().expect("just begun"))
    }

    /// Sets a metadata entry.
    pub fn put_meta(&mut self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let t = self.txn()?;
        let mut table = t.open_table(META).map_err(|e| db(&path, &e))?;
        table.insert(key, value).map_err(|e| db(&path, &e))?;
        Ok(())
    }

    /// Stores a file under the name the manifest used.
    pub fn put_file(&mut self, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let t = self.txn()?;
        let mut table = t.open_table(FILES).map_err(|e| db(&path, &e))?;
        table.insert(name, bytes).map_err(|e| db(&path, &e))?;
        Ok(())
    }

    /// Appends a chunk of trace bytes (whole records).
    pub fn append_trace(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        if bytes.is_empty() {
            return Ok(());
        }
        let path = self.path.clone();
        let chunk = self.next_chunk;
        let t = self.txn()?;
        let mut table = t.open_table(TRACE).map_err(|e| db(&path, &e))?;
        table.insert(chunk, bytes).map_err(|e| db(&path, &e))?;
        drop(table);
        self.next_chunk += 1;
        Ok(())
    }

    /// Stores a job's result.
    pub fn put_result(&mut self, job: u64, bytes: &[u8]) -> Result<(), StoreError> {
        let path = self.path.clone();
        let t = self.txn()?;
        let mut table = t.open_table(RESULTS).map_err(|e| db(&path, &e))?;
        table.insert(job, bytes).map_err(|e| db(&path, &e))?;
        Ok(())
    }

    /// True when writes are waiting for a commit.
    pub fn dirty(&self) -> bool {
        self.dirty
    }

    /// Commits what was written; with `durable` it is on disk (fsync) when this returns.
    pub fn commit(&mut self, durable: bool) -> Result<(), StoreError> {
        let Some(mut t) = self.txn.take() else {
            return Ok(());
        };
        t.set_durability(if durable {
            Durability::Immediate
        } else {
            Durability::None
        })
        .map_err(|e| self.err(&e))?;
        t.commit().map_err(|e| self.err(&e))?;
        self.dirty = false;
        Ok(())
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn db(path: &Path, e: &dyn std::fmt::Display) -> StoreError {
    StoreError::Db {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

/// Reads a state directory without opening it for writing (for `xdv replay DIR`).
pub fn read(dir: &Path) -> Result<Loaded, StoreError> {
    let path = dir.join(DB_FILE);
    if !path.exists() {
        return Err(StoreError::Io {
            path,
            source: std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no state database here (is this a directory written by `xdv run --state-dir`?)",
            ),
        });
    }
    let (store, loaded) = Store::open(dir)?;
    drop(store);
    Ok(loaded)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("xdv-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    #[test]
    fn what_is_committed_is_loaded_again_and_uncommitted_writes_are_not() {
        let dir = tmp("commit");
        {
            let (mut s, l) = Store::open(&dir).unwrap();
            assert!(l.trace.is_empty());
            s.put_file("g.wat", b"(module)").unwrap();
            s.append_trace(b"abc").unwrap();
            s.append_trace(b"def").unwrap();
            s.put_result(7, b"{}").unwrap();
            s.commit(true).unwrap();
            s.append_trace(b"lost").unwrap();
            // Dropped without a commit: the last chunk is not kept.
        }
        let (mut s, l) = Store::open(&dir).unwrap();
        assert_eq!(l.trace, b"abcdef");
        assert_eq!(l.trace_chunks, 2);
        assert_eq!(l.files["g.wat"], b"(module)");
        assert_eq!(l.results[&7], b"{}");
        s.append_trace(b"ghi").unwrap();
        s.commit(false).unwrap();
        drop(s);
        assert_eq!(read(&dir).unwrap().trace, b"abcdefghi");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_foreign_format_is_refused() {
        let dir = tmp("format");
        {
            let (mut s, _) = Store::open(&dir).unwrap();
            s.put_meta("format", b"999").unwrap();
            s.commit(true).unwrap();
        }
        let e = Store::open(&dir).err().expect("refused");
        assert!(e.to_string().contains("format 999"), "{e}");
        assert!(read(&tmp("missing")).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
