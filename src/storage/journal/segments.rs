//! The journal's files: a directory of numbered, append-only segments
//! (`journal-0000000000000001.log`, …) and a `LOCK` file.
//!
//! The appender writes each batch to the newest segment with **one**
//! `write` call and, past [`SEGMENT_BYTES`], starts a new one; the
//! applier deletes old segments once every entry in them is in the store.
//! At open, [`Dir::open`] locks the directory (two servers on one journal
//! would number the same conversation twice) and [`Dir::replay`] reads
//! every segment back, cutting a torn tail off.
//!
//! # Threads
//!
//! [`Segment`] belongs to the appender (behind its lock); deleting sealed
//! segments ([`remove`]) is the applier's. Everything here blocks on the
//! file system, so neither runs on an I/O thread.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};

use super::record;
use crate::storage::{Entry, StoreError};

/// Past this size the appender starts a new segment.
pub const SEGMENT_BYTES: u64 = 16 << 20;

fn err(what: &str, path: &Path, e: std::io::Error) -> StoreError {
    StoreError::Journal(format!("{what} {}: {e}", path.display()))
}

/// The journal directory, locked for this process as long as it lives.
pub struct Dir {
    path: PathBuf,
    /// Holds the `flock` on `LOCK`.
    _lock: File,
}

impl Dir {
    /// Creates (when missing) and locks the directory.
    ///
    /// # Errors
    /// When it cannot be created, or another process holds it.
    pub fn open(path: &Path) -> Result<Dir, StoreError> {
        fs::create_dir_all(path).map_err(|e| err("create", path, e))?;
        let lock_path = path.join("LOCK");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| err("open", &lock_path, e))?;
        // SAFETY: flock on a descriptor this function owns.
        if unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            return Err(StoreError::Journal(format!(
                "{} is in use by another process (one journal per server)",
                path.display()
            )));
        }
        Ok(Dir {
            path: path.to_owned(),
            _lock: lock,
        })
    }

    /// The segments present, oldest first, as `(number, path)`.
    pub fn segments(&self) -> Result<Vec<(u64, PathBuf)>, StoreError> {
        list(&self.path)
    }

    /// Reads segment `path` back: its whole records, in order. A torn or
    /// corrupt tail is cut off the file (logged), so that what is written
    /// after it is readable.
    pub fn replay(&self, path: &Path) -> Result<Vec<Entry>, StoreError> {
        let bytes = fs::read(path).map_err(|e| err("read", path, e))?;
        let (entries, whole) = record::decode_all(&bytes);
        if whole < bytes.len() {
            log::warn!(
                "journal {}: cut a torn or corrupt tail of {} bytes after {} whole records",
                path.display(),
                bytes.len() - whole,
                entries.len()
            );
            let file = OpenOptions::new()
                .write(true)
                .open(path)
                .map_err(|e| err("open", path, e))?;
            file.set_len(whole as u64)
                .map_err(|e| err("truncate", path, e))?;
        }
        Ok(entries)
    }

    /// Creates segment `number` (empty) to append to.
    pub fn create(&self, number: u64, fsync: bool) -> Result<Segment, StoreError> {
        let path = self.path.join(format!("journal-{number:016}.log"));
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| err("create", &path, e))?;
        let len = file.metadata().map_err(|e| err("stat", &path, e))?.len();
        if fsync {
            // The new name must survive a machine crash too.
            File::open(&self.path)
                .and_then(|d| d.sync_all())
                .map_err(|e| err("sync", &self.path, e))?;
        }
        Ok(Segment {
            number,
            path,
            file,
            len,
            fsync,
            broken: false,
        })
    }
}

/// The segments in the journal directory `path`, oldest first, as
/// `(number, path)`. Needs no lock: [`Dir::segments`] for the server, and
/// `chat-server backup` reading a running server's journal.
pub fn list(path: &Path) -> Result<Vec<(u64, PathBuf)>, StoreError> {
    let mut out = Vec::new();
    for item in fs::read_dir(path).map_err(|e| err("list", path, e))? {
        let item = item.map_err(|e| err("list", path, e))?;
        let name = item.file_name();
        let number = name
            .to_str()
            .and_then(|n| n.strip_prefix("journal-"))
            .and_then(|n| n.strip_suffix(".log"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(n) = number {
            out.push((n, item.path()));
        }
    }
    out.sort_unstable();
    Ok(out)
}

/// The segment being appended to.
pub struct Segment {
    /// Its number (the next one is `number + 1`).
    pub number: u64,
    /// Its file.
    pub path: PathBuf,
    file: File,
    /// Bytes in it.
    pub len: u64,
    /// Whether each batch is `fdatasync`ed (`--log-fsync`).
    fsync: bool,
    /// A write failed and the file could not be cut back: it must not be
    /// written again.
    pub broken: bool,
}

impl Segment {
    /// Appends `bytes` (whole records) in one `write` call (more only if
    /// the kernel takes part of it) and, with `--log-fsync`, syncs them.
    /// When this returns `Ok`, the records survive `kill -9` of the
    /// server (they are in the kernel's page cache); with `--log-fsync`
    /// also a machine crash.
    ///
    /// On failure the file is cut back to where it was, so that no torn
    /// record sits before later ones; if even that fails, the error says
    /// so and the journal must not be written again (the caller stops).
    pub fn write(&mut self, bytes: &[u8]) -> Result<(), StoreError> {
        let written = self.file.write_all(bytes).and_then(|()| {
            if self.fsync {
                self.file.sync_data()
            } else {
                Ok(())
            }
        });
        match written {
            Ok(()) => {
                self.len += bytes.len() as u64;
                Ok(())
            }
            Err(e) => {
                let cut = self.file.set_len(self.len);
                self.broken = cut.is_err();
                Err(StoreError::Journal(format!(
                    "write {}: {e}{}",
                    self.path.display(),
                    if cut.is_err() {
                        " (and cutting it back failed: the journal is stopped)"
                    } else {
                        ""
                    }
                )))
            }
        }
    }

    /// Whether the segment is full and the next batch goes to a new one.
    pub fn is_full(&self) -> bool {
        self.len >= SEGMENT_BYTES
    }
}

/// Deletes a segment whose entries are all in the store. The applier's
/// thread.
pub fn remove(path: &Path) {
    if let Err(e) = fs::remove_file(path) {
        log::warn!("journal: removing {}: {e}", path.display());
    }
}
