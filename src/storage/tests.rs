//! The store's unit tests: opening stores by URL, SQLite data across a
//! reopening, and the SQL helpers. The conformance suite that every
//! `Store` must pass, on SQLite and on MySQL, is an integration test
//! (`tests/suite/storage/`), where a MySQL server that does not answer
//! makes its tests ignored rather than silently passed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use std::collections::HashMap;

use super::append::{first_cursors, Plan};
use super::sql::{
    batches, batches_by, fine_chunks, fixed_chunks, limit_plus_one, new_read_seq, padded_chunks,
    placeholders, statements, CHUNK, STATEMENT_ROWS,
};
use super::{open, Appended, MysqlStore, NewEntry, Page, SqliteStore, Store, StoreError, Stored};
use crate::model::Conv;

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
fn chat_sql_is_eight_tables_and_the_cursor_migration() {
    let script = include_str!("../../chat.sql");
    let mut stmts = statements(script);
    let migration = stmts.pop().unwrap();
    assert!(migration.starts_with("INSERT INTO convcursor (userid, conv) SELECT"));
    assert!(migration.contains("ON DUPLICATE KEY UPDATE"), "idempotent");
    let tables: Vec<&str> = stmts
        .iter()
        .map(|s| {
            let rest = s.strip_prefix("CREATE TABLE IF NOT EXISTS ").expect(s);
            rest.split_whitespace().next().unwrap()
        })
        .collect();
    assert_eq!(
        tables,
        [
            "user",
            "friend",
            "allgroup",
            "groupuser",
            "offlinemessage",
            "conversation",
            "chatlog",
            "convcursor"
        ]
    );
    assert!(stmts
        .iter()
        .all(|s| s.contains("ENGINE = InnoDB") && s.contains("utf8mb4")));
}

#[test]
fn sqlite_migration_gives_members_cursors_once() {
    let (dir, store) = sqlite();
    let a = store.create_user("a", "h").unwrap().unwrap();
    let b = store.create_user("b", "h").unwrap().unwrap();
    let g = store.create_group(a, "g", "").unwrap().unwrap();
    store.join_group(g, b).unwrap();
    let ab = Conv::direct(a, b).unwrap();
    store
        .append(&[entry(Conv::group(g).unwrap(), a, "1")])
        .unwrap();
    store.append(&[entry(ab, a, "1")]).unwrap();
    drop(store);
    let path = dir.path().join("data/db/chat.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    // An older database: memberships, no cursors (and b's is deleted).
    conn.execute("DELETE FROM convcursor WHERE conv = ?", [g])
        .unwrap();
    drop(conn);
    for _ in 0..2 {
        let store = SqliteStore::open(&path).unwrap();
        for uid in [a, b] {
            let st = store
                .conv_state(uid, Conv::group(g).unwrap())
                .unwrap()
                .unwrap();
            assert_eq!((st.last_seq, st.joined_seq, st.delivered_seq), (1, 0, 0));
        }
        assert_eq!(store.conversations(b).unwrap().len(), 2);
        // The numbering survives the reopening.
        let next = store.append(&[entry(ab, b, "more")]).unwrap();
        assert!(next[0].stored().seq >= 2);
    }
}

#[test]
fn sqlite_keyed_chatlog_moves_to_the_appended_layout() {
    let (dir, store) = sqlite();
    let a = store.create_user("a", "h").unwrap().unwrap();
    let b = store.create_user("b", "h").unwrap().unwrap();
    let ab = Conv::direct(a, b).unwrap();
    drop(store);
    let path = dir.path().join("data/db/chat.db");
    // The first layout of the log: keyed by (conv, seq), WITHOUT ROWID,
    // holding three entries (one with a cid), written out of time order.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TABLE chatlog;
         CREATE TABLE chatlog (conv INTEGER NOT NULL, seq INTEGER NOT NULL,
             sender INTEGER NOT NULL, ts INTEGER NOT NULL, cid TEXT, body TEXT NOT NULL,
             PRIMARY KEY (conv, seq)) WITHOUT ROWID;
         CREATE UNIQUE INDEX chatlog_sender_cid ON chatlog (sender, cid) WHERE cid IS NOT NULL;
         CREATE INDEX chatlog_ts ON chatlog (ts);",
    )
    .unwrap();
    for (seq, ts, cid) in [(2, 20, None), (1, 10, Some("c1")), (3, 30, None)] {
        conn.execute(
            "INSERT INTO chatlog VALUES (?, ?, ?, ?, ?, ?)",
            rusqlite::params![ab.key(), seq, a, ts, cid, format!("m{seq}")],
        )
        .unwrap();
    }
    conn.execute(
        "INSERT INTO conversation (id, last_seq, last_ts) VALUES (?, 3, 30)",
        [ab.key()],
    )
    .unwrap();
    drop(conn);
    for _ in 0..2 {
        let store = SqliteStore::open(&path).unwrap();
        let (page, more) = store.log_page(ab, Page::After(0), 0, 10).unwrap();
        let got: Vec<(i64, i64, &str)> = page
            .iter()
            .map(|e| (e.seq, e.ts, e.body.as_str()))
            .collect();
        assert_eq!(got, [(1, 10, "m1"), (2, 20, "m2"), (3, 30, "m3")]);
        assert!(!more);
        // The cid is still known, and numbering goes on after the copy.
        let again = store.append(&[with_cid(ab, a, "c1")]).unwrap();
        assert!(matches!(
            again[0],
            Appended::Duplicate(Stored { seq: 1, .. })
        ));
        let next = store.append(&[entry(ab, b, "m4")]).unwrap();
        assert_eq!(next[0].stored().seq, 4);
        drop(store);
        // Appended layout: a rowid table, in time order.
        let conn = rusqlite::Connection::open(&path).unwrap();
        let sql: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'chatlog'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(!sql.to_ascii_uppercase().contains("WITHOUT ROWID"), "{sql}");
        let order: Vec<i64> = conn
            .prepare("SELECT seq FROM chatlog ORDER BY id LIMIT 3")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(order, [1, 2, 3]);
        let old: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name = 'chatlog_keyed'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(old, 0);
        // The second round reopens the migrated file: nothing changes.
        conn.execute("DELETE FROM chatlog WHERE seq = 4", [])
            .unwrap();
        conn.execute("UPDATE conversation SET last_seq = 3", [])
            .unwrap();
    }
}

#[test]
fn sqlite_append_that_finds_its_place_taken_stores_nothing() {
    let (dir, store) = sqlite();
    let a = store.create_user("a", "h").unwrap().unwrap();
    let b = store.create_user("b", "h").unwrap().unwrap();
    let ab = Conv::direct(a, b).unwrap();
    store.append(&[entry(ab, a, "one")]).unwrap();
    // Damage the counter, so the next append numbers from 1 again.
    let conn = rusqlite::Connection::open(dir.path().join("data/db/chat.db")).unwrap();
    conn.execute("UPDATE conversation SET last_seq = 0", [])
        .unwrap();
    let err = store
        .append(&[entry(ab, b, "two"), entry(ab, a, "three")])
        .unwrap_err();
    assert!(matches!(err, StoreError::Data(_)), "{err}");
    // Rolled back whole: the old entry alone, the counter as it was.
    let (page, _) = store.log_page(ab, Page::After(0), 0, 10).unwrap();
    let bodies: Vec<&str> = page.iter().map(|e| e.body.as_str()).collect();
    assert_eq!(bodies, ["one"]);
    let last: i64 = conn
        .query_row("SELECT last_seq FROM conversation", [], |r| r.get(0))
        .unwrap();
    assert_eq!(last, 0);
}

/// Every read of a SQLite file goes through its reader, so a long write
/// transaction (the journal's applier commits thousands of entries at a
/// time) holds up no login, sync or counter lookup.
#[test]
fn sqlite_reads_do_not_wait_for_the_writer() {
    let dir = TempDir::new();
    let store = Arc::new(SqliteStore::open(dir.path().join("chat.db")).unwrap());
    let a = store.create_user("a", "h").unwrap().unwrap();
    let b = store.create_user("b", "h").unwrap().unwrap();
    let ab = Conv::direct(a, b).unwrap();
    store
        .append(&[entry(ab, a, "one"), with_cid(ab, b, "c1")])
        .unwrap();
    let writer = store.lock_writer();
    let (done, result) = std::sync::mpsc::channel();
    let reading = Arc::clone(&store);
    std::thread::spawn(move || {
        let s = &reading;
        let heads = s.log_heads(&[ab]).unwrap();
        let page = s.log_page(ab, Page::After(0), 0, 10).unwrap().0.len();
        let pending = s.pending(b, 10).unwrap().len();
        let convs = s.conversations(a).unwrap().len();
        let user = s.user_by_name("b").unwrap().map(|u| u.id);
        let cids = s.find_cids(&[with_cid(ab, b, "c1")]).unwrap().len();
        let _ = done.send((
            heads.get(&ab.key()).map(|h| h.0),
            page,
            pending,
            convs,
            user,
            cids,
        ));
    });
    let got = result.recv_timeout(std::time::Duration::from_secs(30));
    drop(writer);
    let got = got.expect("the reads waited for the writer");
    assert_eq!(got, (Some(2), 2, 1, 1, Some(b), 1));
}

/// A database in memory, however the URL spells it, is one database: no
/// reader of its own (it would open another, empty one).
#[test]
fn sqlite_in_memory_urls_read_what_they_wrote() {
    for url in ["sqlite::memory:", "sqlite://:memory:", "file::memory:"] {
        let store = open(url).unwrap();
        let a = store.create_user("a", "h").unwrap().unwrap();
        assert_eq!(
            store.user_by_name("a").unwrap().map(|u| u.id),
            Some(a),
            "{url}"
        );
    }
}

/// The reader sees every write that returned before the read began.
#[test]
fn sqlite_reader_sees_each_commit_at_once() {
    let dir = TempDir::new();
    let store = SqliteStore::open(dir.path().join("chat.db")).unwrap();
    let a = store.create_user("a", "h").unwrap().unwrap();
    let b = store.create_user("b", "h").unwrap().unwrap();
    let ab = Conv::direct(a, b).unwrap();
    for n in 1..=50_i64 {
        let name = format!("u{n}");
        let uid = store.create_user(&name, "h").unwrap().unwrap();
        assert_eq!(store.user_by_name(&name).unwrap().map(|u| u.id), Some(uid));
        store.append(&[entry(ab, a, "x")]).unwrap();
        assert_eq!(store.log_heads(&[ab]).unwrap()[&ab.key()].0, n);
        assert_eq!(store.pending(b, 100).unwrap().len() as i64, n);
    }
    // A write sent to the reader by mistake fails instead of racing.
    let err = store.read(|c| Ok(c.execute("DELETE FROM user", [])?));
    assert!(err.is_err());
    assert!(store.user_by_id(a).unwrap().is_some());
}

fn entry(conv: Conv, sender: i64, body: &str) -> NewEntry {
    NewEntry {
        conv,
        sender,
        cid: None,
        body: body.into(),
    }
}

fn with_cid(conv: Conv, sender: i64, cid: &str) -> NewEntry {
    NewEntry {
        cid: Some(cid.into()),
        ..entry(conv, sender, "{}")
    }
}

#[test]
fn plan_counts_new_entries_per_conversation_in_key_order() {
    let (g, d) = (Conv::group(9).unwrap(), Conv::direct(1, 2).unwrap());
    let entries = [entry(d, 1, "a"), entry(g, 1, "b"), entry(d, 2, "c")];
    let plan = Plan::new(&entries, |_, _| None);
    assert_eq!(plan.convs(), [(g, 1), (d, 2)], "sorted by key: g9 < d1-2");
    assert!(!plan.nothing_new());
    // d went from 5 to 7, g from 0 to 1.
    let ranges = HashMap::from([(d.key(), (7, 100)), (g.key(), (1, 90))]);
    let out = plan.finish(&ranges).unwrap();
    let places: Vec<(Conv, i64, i64)> = out
        .iter()
        .map(|a| match a {
            Appended::New(s) => (s.conv, s.seq, s.ts),
            Appended::Duplicate(s) => panic!("duplicate {s:?}"),
        })
        .collect();
    assert_eq!(places, [(d, 6, 100), (g, 1, 90), (d, 7, 100)]);
    // A range the database did not return is an error, not a panic.
    assert!(matches!(
        plan.finish(&HashMap::new()),
        Err(StoreError::Data(_))
    ));
}

#[test]
fn plan_finds_duplicates_stored_and_in_the_call() {
    let d = Conv::direct(1, 2).unwrap();
    let old = Stored {
        conv: d,
        seq: 3,
        ts: 50,
    };
    let entries = [
        with_cid(d, 1, "old"),
        with_cid(d, 1, "x"),
        with_cid(d, 2, "x"),
        with_cid(d, 1, "x"),
        entry(d, 1, "no cid"),
        with_cid(d, 1, "old"),
    ];
    let plan = Plan::new(&entries, |sender, cid| {
        (sender == 1 && cid == "old").then_some(old)
    });
    assert_eq!(plan.convs(), [(d, 3)]);
    let out = plan.finish(&HashMap::from([(d.key(), (6, 60))])).unwrap();
    let at = |seq| Stored {
        conv: d,
        seq,
        ts: 60,
    };
    assert_eq!(
        out,
        [
            Appended::Duplicate(old),
            Appended::New(at(4)),
            Appended::New(at(5)),
            Appended::Duplicate(at(4)),
            Appended::New(at(6)),
            Appended::Duplicate(old),
        ]
    );
    let only_old = Plan::new(&entries[..1], |_, _| Some(old));
    assert!(only_old.nothing_new());
    assert_eq!(
        only_old.finish(&HashMap::new()).unwrap(),
        [Appended::Duplicate(old)]
    );
}

#[test]
fn first_cursors_are_the_participants() {
    let d = Conv::direct(3, 8).unwrap();
    assert_eq!(first_cursors(d), [(3, d.key()), (8, d.key())]);
    let me = Conv::direct(4, 4).unwrap();
    assert_eq!(first_cursors(me), [(4, me.key())]);
    assert!(first_cursors(Conv::group(4).unwrap()).is_empty());
}

#[test]
fn read_positions_and_pages() {
    assert_eq!(new_read_seq(2, 5, 10), 5);
    assert_eq!(new_read_seq(7, 5, 10), 7, "forward only");
    assert_eq!(new_read_seq(2, 50, 10), 10, "clamped");
    assert_eq!(new_read_seq(0, -3, 10), 0);
    assert_eq!(limit_plus_one(0), 1);
    assert_eq!(limit_plus_one(usize::MAX), i64::MAX);
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
    // Any rows limit, any item type.
    let sizes: Vec<usize> = batches_by(&[1usize; 7], 3, 100, |&n| n)
        .iter()
        .map(|b| b.len())
        .collect();
    assert_eq!(sizes, [3, 3, 1]);
}

#[test]
fn statement_pieces_cover_every_row_once_in_order() {
    for n in [0usize, 1, 3, 55, 256, 300, 1000] {
        let items: Vec<usize> = (0..n).collect();
        for pieces in [fixed_chunks(&items), fine_chunks(&items)] {
            assert_eq!(pieces.concat(), items, "n = {n}");
        }
        // Powers of two: one piece per set bit below 256.
        let fine = fine_chunks(&items).len();
        assert_eq!(fine, n / 256 + (n % 256).count_ones() as usize, "n = {n}");
        // Padded: one statement per 256 rows, each of a STATEMENT_ROWS
        // size, the rows in order, the padding after them.
        let padded = padded_chunks(&items);
        assert_eq!(padded.len(), n.div_ceil(256), "n = {n}");
        let mut rows = Vec::new();
        for piece in &padded {
            assert!(STATEMENT_ROWS.contains(&piece.len()), "{}", piece.len());
            // The piece's own rows, then its last one repeated.
            let own = piece.iter().position(|&i| Some(&i) == piece.last());
            let own = own.map_or(0, |at| at + 1);
            assert!(piece[own..].iter().all(|i| Some(i) == piece.last()));
            rows.extend_from_slice(&piece[..own]);
        }
        assert_eq!(rows, items, "n = {n}");
    }
    // 55 rows: 16 + 16 + 16 + 4 + 1 + 1 + 1 fixed, 32 + 16 + 4 + 2 + 1 fine,
    // one padded 64.
    let items = [0u8; 55];
    assert_eq!(fixed_chunks(&items).len(), 7);
    assert_eq!(fine_chunks(&items).len(), 5);
    assert_eq!(padded_chunks(&items)[0].len(), 64);
}
