//! `chat-server backup --to FILE`: a consistent copy of a SQLite store
//! while the server runs, holding every message acked before it began.
//!
//! Three steps, in this order:
//!
//! 1. **Read the journal** (`--journal-dir`): every whole record of the
//!    running server's segments, without its lock.
//! 2. **Copy the database** with SQLite's online backup API (through
//!    rusqlite): every page in one step, inside one read transaction of
//!    the source. In WAL mode the server's writers go on meanwhile, and
//!    the copy is the database as of the moment that transaction began.
//! 3. **Replay** onto the copy the entries of step 1 that it lacks
//!    ([`replay`](super::journal::replay)), then check the copy (`PRAGMA
//!    quick_check`).
//!
//! Why nothing acked is missing: a message acked before the backup began
//! was in the journal before step 1. If its segment was still there at
//! step 1, step 3 adds it; if the applier had deleted the segment, every
//! entry in it was committed to the database first, so before step 2's
//! transaction began. Reading the journal *after* the copy would lose
//! exactly those applied (and their segment deleted) in between. A MySQL
//! store is backed up with MySQL's tools (docs/operations.md).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::journal::replay;
use super::{SqliteStore, StoreError};

/// What a backup copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// The file written.
    pub to: PathBuf,
    /// Its pages, as copied from the database.
    pub pages: i32,
    /// Entries the journal held and the database did not yet, added to
    /// the copy.
    pub journaled: usize,
}

/// Copies the SQLite store `db` (`sqlite:PATH`), with what its server's
/// journal `journal` holds (the server's `--journal-dir`; `None` when it
/// runs without one), to `to`, a file that must not exist yet.
///
/// # Errors
/// A store that is not a SQLite file, a `to` that exists, a journal that
/// cannot be read, or SQLite's error; a copy that fails is removed.
pub fn sqlite_backup(db: &str, journal: Option<&Path>, to: &Path) -> Result<Copied, StoreError> {
    let path = sqlite_path(db)?;
    if to.exists() {
        return Err(StoreError::BadUrl(format!(
            "{} exists: name a new file (a backup never overwrites)",
            to.display()
        )));
    }
    // Step 1, before the copy (see the module docs for why).
    let entries = match journal {
        Some(dir) if dir.exists() => replay::read_dir(dir)?,
        _ => Vec::new(),
    };
    let copied = copy_and_replay(path, entries, to);
    if copied.is_err() {
        for suffix in ["", "-wal", "-shm"] {
            let mut file = to.as_os_str().to_owned();
            file.push(suffix);
            let _ = std::fs::remove_file(file);
        }
    }
    copied
}

/// Steps 2 and 3 of the module docs.
fn copy_and_replay(
    path: &str,
    entries: Vec<super::Entry>,
    to: &Path,
) -> Result<Copied, StoreError> {
    let pages = copy(path, to)?;
    let journaled = if entries.is_empty() {
        0
    } else {
        // Opened as the server opens it (WAL); dropped, it checkpoints
        // and closes, leaving one file.
        let store = SqliteStore::open(to)?;
        replay::replay(&store, entries)?
    };
    let dst = Connection::open(to)?;
    let check: String = dst.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if check != "ok" {
        return Err(StoreError::Data(format!(
            "the copy failed its check: {check}"
        )));
    }
    Ok(Copied {
        to: to.to_owned(),
        pages,
        journaled,
    })
}

/// Copies the database file `path` to `to` in one read transaction; its
/// pages.
fn copy(path: &str, to: &Path) -> Result<i32, StoreError> {
    let src = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    src.busy_timeout(Duration::from_secs(10))?;
    let mut dst = Connection::open(to)?;
    let pages = {
        let backup = Backup::new(&src, &mut dst)?;
        // -1: every page in one step, so one read transaction.
        loop {
            match backup.step(-1)? {
                StepResult::Done => break,
                StepResult::More | StepResult::Busy | StepResult::Locked => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
        backup.progress().pagecount
    };
    Ok(pages)
}

/// The file of a `sqlite:` store URL.
fn sqlite_path(db: &str) -> Result<&str, StoreError> {
    if db.starts_with("mysql://") {
        return Err(StoreError::BadUrl(
            "backup copies a SQLite store; for MySQL use mysqldump --single-transaction \
             (docs/operations.md, \"Back up and restore\")"
                .into(),
        ));
    }
    let path = db.strip_prefix("sqlite:").unwrap_or(db);
    let path = path.strip_prefix("//").unwrap_or(path);
    if path.is_empty() || path.starts_with(':') {
        return Err(StoreError::BadUrl(format!(
            "{db}: an in-memory store has nothing to back up"
        )));
    }
    Ok(path)
}
