//! `chat-server backup --to FILE`: a consistent copy of a SQLite store
//! while the server runs.
//!
//! SQLite's online backup API (through rusqlite) copies every page in one
//! step, inside one read transaction of the source: in WAL mode the
//! server's writers go on meanwhile, and the copy is the database as of
//! the moment that transaction began, everything committed before it
//! included. The copy is then checked (`PRAGMA quick_check`). A MySQL
//! store is backed up with MySQL's tools (docs/operations.md).

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags};

use super::StoreError;

/// What a backup copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Copied {
    /// The file written.
    pub to: PathBuf,
    /// Its pages.
    pub pages: i32,
}

/// Copies the SQLite store `db` (`sqlite:PATH`) to `to`, a file that must
/// not exist yet.
///
/// # Errors
/// A store that is not a SQLite file, a `to` that exists, or SQLite's
/// error; a copy that fails its check is removed.
pub fn sqlite_backup(db: &str, to: &Path) -> Result<Copied, StoreError> {
    let path = sqlite_path(db)?;
    if to.exists() {
        return Err(StoreError::BadUrl(format!(
            "{} exists: name a new file (a backup never overwrites)",
            to.display()
        )));
    }
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
    let check: String = dst.query_row("PRAGMA quick_check", [], |r| r.get(0))?;
    if check != "ok" {
        drop(dst);
        let _ = std::fs::remove_file(to);
        return Err(StoreError::Data(format!(
            "the copy failed its check: {check}"
        )));
    }
    Ok(Copied {
        to: to.to_owned(),
        pages,
    })
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
