//! [`StoreError`]: why a storage call failed.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// A storage failure. Expected outcomes (a taken name, an existing
/// friendship) are not errors; see [`Store`](super::Store).
#[derive(Debug)]
pub enum StoreError {
    /// The store URL is malformed or names an unsupported store.
    BadUrl(String),
    /// The folder for a SQLite database could not be created.
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// Why not.
        source: io::Error,
    },
    /// SQLite failed.
    Sqlite(rusqlite::Error),
    /// MySQL failed (connection, query or server error).
    Mysql(mysql::Error),
    /// A value read from the database is not one the schema allows, such as
    /// an unknown `grouprole` or a column of an unexpected type.
    Data(String),
    /// The message log's journal (the redo log in front of the store,
    /// [`JournaledStore`](super::JournaledStore)) could not be read or
    /// written, or its applier is too far behind.
    Journal(String),
    /// The database's schema is not one this server may use as it is (a
    /// newer version, an unknown database, the C++ original's tables, or
    /// migrations refused with `--no-migrate`); the text says what to do.
    Schema(String),
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::BadUrl(why) => write!(f, "bad store URL: {why}"),
            StoreError::CreateDir { path, source } => {
                write!(f, "cannot create folder {}: {source}", path.display())
            }
            StoreError::Sqlite(e) => write!(f, "sqlite: {e}"),
            StoreError::Mysql(e) => write!(f, "mysql: {e}"),
            StoreError::Data(why) => write!(f, "unexpected data in the database: {why}"),
            StoreError::Journal(why) => write!(f, "journal: {why}"),
            StoreError::Schema(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for StoreError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StoreError::CreateDir { source, .. } => Some(source),
            StoreError::Sqlite(e) => Some(e),
            StoreError::Mysql(e) => Some(e),
            StoreError::BadUrl(_)
            | StoreError::Data(_)
            | StoreError::Journal(_)
            | StoreError::Schema(_) => None,
        }
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Sqlite(e)
    }
}

impl From<mysql::Error> for StoreError {
    fn from(e: mysql::Error) -> StoreError {
        StoreError::Mysql(e)
    }
}

impl From<mysql::FromRowError> for StoreError {
    /// Names the columns but not the values (they may be private messages).
    fn from(e: mysql::FromRowError) -> StoreError {
        let columns: Vec<String> =
            e.0.columns_ref()
                .iter()
                .map(|c| c.name_str().into_owned())
                .collect();
        StoreError::Data(format!(
            "a row of columns {columns:?} has values of unexpected types"
        ))
    }
}
