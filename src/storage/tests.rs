//! The store's unit tests: opening stores by URL, SQLite data across a
//! reopening, and the SQL helpers. The conformance suite that every
//! `Store` must pass, on SQLite and on MySQL, is an integration test
//! (`tests/suite/storage/`), where a MySQL server that does not answer
//! makes its tests ignored rather than silently passed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use super::sql::{batches, placeholders, statements, CHUNK};
use super::{open, MysqlStore, SqliteStore, Store, StoreError};

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
    let store = open(&url).unwrap();
    (dir, store)
}

#[test]
fn stores_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<SqliteStore>();
    check::<MysqlStore>();
    check::<StoreError>();
}

#[test]
fn url_schemes() {
    let dir = TempDir::new();
    let plain = dir.path().join("plain/chat.db");
    open(plain.to_str().unwrap()).unwrap();
    assert!(
        plain.exists(),
        "a plain path is a SQLite file, folder created"
    );
    let slashes = format!("sqlite://{}", dir.path().join("slashes.db").display());
    open(&slashes).unwrap();
    assert!(dir.path().join("slashes.db").exists());
    open("sqlite::memory:")
        .unwrap()
        .create_user("x", "h")
        .unwrap();

    for bad in [
        "postgres://localhost/chat",
        "sqlite:",
        "mysql://root@127.0.0.1:3306",
    ] {
        match open(bad) {
            Err(StoreError::BadUrl(_)) => {}
            Err(e) => panic!("{bad}: expected BadUrl, got {e}"),
            Ok(_) => panic!("{bad}: expected BadUrl, got a store"),
        }
    }
}

#[test]
fn sqlite_data_survives_reopening() {
    let (dir, store) = sqlite();
    let a = store.create_user("a", "h").unwrap().unwrap();
    store.set_online(a, true).unwrap();
    store.push_offline(a, "kept").unwrap();
    drop(store); // like a crash: nobody reset the state
    let path = dir.path().join("data/db/chat.db");
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.reset_all_online().unwrap(), 1);
    assert_eq!(store.offline_messages(a).unwrap()[0].1, "kept");
    let b = store.create_user("b", "h").unwrap().unwrap();
    assert!(b > a);
}

#[test]
fn mysql_unreachable_is_an_error_not_a_panic() {
    // Port 1 on localhost: nothing listens there, so no server is needed.
    let url = format!("mysql://root@127.0.0.1:1/{}", unique("chat_t"));
    assert!(matches!(MysqlStore::open(&url), Err(StoreError::Mysql(_))));
}

#[test]
fn chat_sql_is_five_create_table_statements() {
    let script = include_str!("../../chat.sql");
    let stmts = statements(script);
    let tables: Vec<&str> = stmts
        .iter()
        .map(|s| {
            let rest = s.strip_prefix("CREATE TABLE IF NOT EXISTS ").expect(s);
            rest.split_whitespace().next().unwrap()
        })
        .collect();
    assert_eq!(
        tables,
        ["user", "friend", "allgroup", "groupuser", "offlinemessage"]
    );
    assert!(stmts
        .iter()
        .all(|s| s.contains("ENGINE = InnoDB") && s.contains("utf8mb4")));
}

#[test]
fn statement_splitting_ignores_comment_lines() {
    let script = "-- a comment; with a semicolon\nCREATE TABLE a (x INT);\n  -- indented;\n\nCREATE TABLE b (y INT);\n";
    assert_eq!(
        statements(script),
        ["CREATE TABLE a (x INT)", "CREATE TABLE b (y INT)"]
    );
}

#[test]
fn placeholder_lists() {
    assert_eq!(placeholders(0), "");
    assert_eq!(placeholders(1), "?");
    assert_eq!(placeholders(3), "?, ?, ?");
}

#[test]
fn batches_respect_rows_and_bytes() {
    let small: Vec<(i64, String)> = (0..(CHUNK as i64 * 2 + 1))
        .map(|i| (i, "x".into()))
        .collect();
    let sizes: Vec<usize> = batches(&small, 1 << 20).iter().map(|b| b.len()).collect();
    assert_eq!(sizes, [CHUNK, CHUNK, 1]);

    let big: Vec<(i64, String)> = (0..5).map(|i| (i, "y".repeat(400))).collect();
    let sizes: Vec<usize> = batches(&big, 1000).iter().map(|b| b.len()).collect();
    assert_eq!(sizes, [2, 2, 1]);
    // A message larger than the limit goes alone.
    let huge = vec![(1, "z".repeat(5000)), (2, "z".into())];
    let sizes: Vec<usize> = batches(&huge, 1000).iter().map(|b| b.len()).collect();
    assert_eq!(sizes, [1, 1]);
    assert!(batches(&[], 1000).is_empty());
}
