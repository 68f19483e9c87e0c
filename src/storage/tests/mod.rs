//! The storage tests: one suite ([`suite`]) run against both stores.
//!
//! - SQLite: a fresh database in a temporary folder per test.
//! - MySQL: a fresh database per test on the server named by the environment
//!   variable `CHAT_TEST_MYSQL` (e.g. `mysql://root@127.0.0.1:3306`), dropped
//!   afterwards by a guard, also when the test fails. Without the variable
//!   the MySQL tests print "skipped: CHAT_TEST_MYSQL not set" and pass.
//!
//! ```text
//! CHAT_TEST_MYSQL=mysql://root@127.0.0.1:3306 cargo test -p chat --lib storage
//! ```

mod other;
mod suite;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use mysql::prelude::Queryable;

use super::Store;

/// A name no other test (in this or a concurrent test process) uses.
fn unique(prefix: &str) -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}_{}_{n}", std::process::id())
}

/// A temporary folder, removed on drop. Not created here: the store must
/// create the folders of its path itself.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        TempDir(std::env::temp_dir().join(unique("chat_t")))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A SQLite store in a new temporary folder (two levels deep).
fn sqlite() -> (TempDir, Arc<dyn Store>) {
    let dir = TempDir::new();
    let url = format!("sqlite:{}", dir.path().join("data/db/chat.db").display());
    let store = super::open(&url).unwrap();
    (dir, store)
}

/// A MySQL database created for one test, dropped with the guard.
struct MysqlDb {
    server: String,
    name: String,
}

impl MysqlDb {
    /// Creates the database, or returns `None` when `CHAT_TEST_MYSQL` is unset.
    fn create() -> Option<MysqlDb> {
        let server = match std::env::var("CHAT_TEST_MYSQL") {
            Ok(url) if !url.trim().is_empty() => url.trim().trim_end_matches('/').to_owned(),
            _ => {
                println!("skipped: CHAT_TEST_MYSQL not set");
                return None;
            }
        };
        let db = MysqlDb {
            server,
            name: unique("chat_t"),
        };
        // An identifier cannot be a bound parameter; this one is generated.
        db.admin(&format!(
            "CREATE DATABASE `{}` CHARACTER SET utf8mb4",
            db.name
        ))
        .unwrap();
        Some(db)
    }

    fn url(&self) -> String {
        format!("{}/{}?pool_min=1&pool_max=8", self.server, self.name)
    }

    /// Runs a statement on the server, outside the test database.
    fn admin(&self, statement: &str) -> Result<(), mysql::Error> {
        let mut conn = mysql::Conn::new(mysql::Opts::from_url(&self.server)?)?;
        conn.query_drop(statement)
    }
}

impl Drop for MysqlDb {
    fn drop(&mut self) {
        if let Err(e) = self.admin(&format!("DROP DATABASE IF EXISTS `{}`", self.name)) {
            eprintln!("could not drop test database {}: {e}", self.name);
        }
    }
}

/// A MySQL store in a new database, or `None` when MySQL tests are skipped.
/// Bind the guard first so the store is dropped before the database.
fn mysql() -> Option<(MysqlDb, Arc<dyn Store>)> {
    let db = MysqlDb::create()?;
    let store = super::open(&db.url()).unwrap();
    Some((db, store))
}

/// Defines each named [`suite`] function as a test once per store.
macro_rules! on_both_stores {
    ($($test:ident),* $(,)?) => {
        mod on_sqlite {
            $(
                #[test]
                fn $test() {
                    let (_dir, store) = super::sqlite();
                    super::suite::$test(&*store);
                }
            )*
        }
        mod on_mysql {
            $(
                #[test]
                fn $test() {
                    if let Some((_db, store)) = super::mysql() {
                        super::suite::$test(&*store);
                    }
                }
            )*
        }
    };
}

on_both_stores!(
    users_have_unique_names,
    online_state_and_reset,
    friendship_is_mutual_and_unique,
    groups_with_hostile_names,
    membership_is_unique,
    dismiss_removes_group_and_members,
    offline_order_and_partial_delete,
    offline_big_utf8_messages,
    offline_fan_out_in_batches,
    concurrent_registrations_and_joins,
);
