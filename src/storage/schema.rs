//! Schema versions: which layout a database has, and the numbered
//! migrations that bring an older one to [`CURRENT`].
//!
//! SQLite keeps the version in `PRAGMA user_version`; MySQL in the one-row
//! table `schema_version` (`id` always 1). A database without a version is
//! either new (no tables: the store creates them and records [`CURRENT`]),
//! one made by this server before versions were recorded (a `user` table
//! with the port's columns: migration 1), the C++ original's (its `user`
//! table with plaintext passwords: refused, with the way to import it), or
//! something else (refused). The original's is imported by `chat-server
//! migrate-legacy` ([`super::legacy`]) into a new database. A version above [`CURRENT`] was written by a
//! newer server and is refused: an older binary must not guess at it.
//!
//! Migrations run at open, in order, before the server serves; with
//! `--no-migrate` ([`OpenOptions::migrate`] false) a database that needs
//! one is refused instead, so an operator can back it up first.
//!
//! | version | what it is |
//! |---|---|
//! | 0 | no version recorded: made before versions (any earlier layout) |
//! | 1 | the message log's appended layout, `user.token_gen`; the version recorded |
//!
//! Adding a migration: raise [`CURRENT`], add its row to [`MIGRATIONS`]
//! and the table above, and its step to `sqlite_store`'s and
//! `mysql_store`'s open (each runs the steps above the version it read).

use rusqlite::Connection;

use super::StoreError;

/// The schema version this server writes.
pub const CURRENT: i64 = 1;

/// Each migration: the version it brings a database to, and what it does.
pub const MIGRATIONS: &[(i64, &str)] = &[(
    1,
    "the message log's appended layout, user.token_gen, the version recorded",
)];

/// How a store may treat the database it opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenOptions {
    /// Apply the migrations a database needs (`false`: `--no-migrate`,
    /// refuse it).
    pub migrate: bool,
}

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions { migrate: true }
    }
}

/// What the store found, before creating or migrating anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// No tables: create them.
    Empty,
    /// At this version (below or at [`CURRENT`]).
    Version(i64),
}

/// The tables a chat-server database has (a subset is enough to know it).
const OURS: &[&str] = &["user", "friend", "allgroup", "groupuser", "offlinemessage"];

/// Decides from the version and the tables what to do, or refuses.
///
/// `tables` are the database's table names, `version` the recorded one
/// (`None`: none), `legacy` whether the `user` table is the C++
/// original's (plaintext passwords).
///
/// # Errors
/// [`StoreError::Schema`] with the reason and what to do.
pub fn decide(
    what: &str,
    tables: &[String],
    version: Option<i64>,
    legacy: bool,
    options: OpenOptions,
) -> Result<Found, StoreError> {
    let refuse = |why: String| Err(StoreError::Schema(format!("{what}: {why}")));
    let found = match version {
        Some(v) if v > CURRENT => {
            return refuse(format!(
                "schema version {v} was written by a newer chat-server (this one knows up \
                 to {CURRENT}); run the newer version, or restore a backup made before the upgrade"
            ))
        }
        Some(v) if v > 0 => Found::Version(v),
        _ if tables.is_empty() => return Ok(Found::Empty),
        _ if !tables.iter().any(|t| t == "user") => {
            let shown: Vec<&str> = tables.iter().take(5).map(String::as_str).collect();
            return refuse(format!(
                "not a chat-server database (its tables: {}; a chat-server database has {}); \
                 point --db at another database",
                shown.join(", "),
                OURS.join(", ")
            ));
        }
        _ if legacy => {
            return refuse(
                "these are the C++ original's tables (plaintext passwords in user.password), \
                 which this server does not use as they are: import them into a new database \
                 with `chat-server --db NEW migrate-legacy --from THIS-DATABASE-URL` \
                 (docs/operations.md, \"From the C++ original\")"
                    .into(),
            )
        }
        _ => Found::Version(0),
    };
    if let Found::Version(v) = found {
        if v < CURRENT && !options.migrate {
            let steps: Vec<String> = MIGRATIONS
                .iter()
                .filter(|(to, _)| *to > v)
                .map(|(to, what)| format!("{to}: {what}"))
                .collect();
            return refuse(format!(
                "schema version {v} needs migrations ({}) and --no-migrate refuses them; \
                 back it up (chat-server backup) and start without --no-migrate",
                steps.join("; ")
            ));
        }
    }
    Ok(found)
}

/// Reads an SQLite database's version and tables, and decides.
///
/// # Errors
/// As [`decide`], or SQLite's.
pub fn sqlite_check(conn: &Connection, options: OpenOptions) -> Result<Found, StoreError> {
    let version: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    let mut stmt = conn.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' \
         ORDER BY name",
    )?;
    let tables: Vec<String> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    // The C++ original had no SQLite store: nothing legacy to find here.
    decide(
        "the SQLite database",
        &tables,
        Some(version),
        false,
        options,
    )
}

/// Records [`CURRENT`] in an SQLite database, after its migrations.
///
/// # Errors
/// SQLite's.
pub fn sqlite_record(conn: &Connection, found: Found) -> Result<(), StoreError> {
    conn.pragma_update(None, "user_version", CURRENT)?;
    log_outcome("SQLite", found);
    Ok(())
}

/// Reads a MySQL database's version and tables, and decides.
///
/// # Errors
/// As [`decide`], or MySQL's.
pub fn mysql_check(
    conn: &mut mysql::PooledConn,
    options: OpenOptions,
) -> Result<Found, StoreError> {
    use mysql::prelude::Queryable;
    let tables: Vec<String> = conn.query(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() \
         ORDER BY table_name",
    )?;
    let version: Option<i64> = if tables.iter().any(|t| t == "schema_version") {
        conn.query_first("SELECT version FROM schema_version WHERE id = 1")?
    } else {
        None
    };
    let legacy = version.is_none() && tables.iter().any(|t| t == "user") && mysql_legacy(conn)?;
    let tables: Vec<String> = tables
        .into_iter()
        .filter(|t| t != "schema_version")
        .collect();
    decide("the MySQL database", &tables, version, legacy, options)
}

/// The original's `user.password` is `VARCHAR(50)` holding the password
/// itself; the port's is `VARCHAR(255)` holding an argon2 hash (or, after
/// `migrate-legacy`, a marked plain text, but such a database has its
/// version recorded and is not asked).
fn mysql_legacy(conn: &mut mysql::PooledConn) -> Result<bool, StoreError> {
    use mysql::prelude::Queryable;
    let plaintext: Option<i64> =
        conn.query_first("SELECT COUNT(*) FROM user WHERE password NOT LIKE '$argon2%'")?;
    Ok(plaintext.unwrap_or(0) > 0)
}

/// Records [`CURRENT`] in a MySQL database, after its migrations; nodes
/// starting at once may all write it.
///
/// # Errors
/// MySQL's.
pub fn mysql_record(conn: &mut mysql::PooledConn, found: Found) -> Result<(), StoreError> {
    use mysql::prelude::Queryable;
    conn.query_drop(
        "CREATE TABLE IF NOT EXISTS schema_version (id TINYINT NOT NULL PRIMARY KEY, \
         version INT NOT NULL) ENGINE=InnoDB",
    )?;
    conn.exec_drop(
        "INSERT INTO schema_version (id, version) VALUES (1, ?) \
         ON DUPLICATE KEY UPDATE version = GREATEST(version, VALUES(version))",
        (CURRENT,),
    )?;
    log_outcome("MySQL", found);
    Ok(())
}

fn log_outcome(store: &str, found: Found) {
    match found {
        Found::Empty => log::info!("{store}: new database, schema version {CURRENT}"),
        Found::Version(v) if v < CURRENT => {
            log::info!("{store}: migrated from schema version {v} to {CURRENT}")
        }
        Found::Version(_) => {}
    }
}
