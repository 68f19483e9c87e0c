//! The store's schema versions (recorded, migrated, refused) and
//! `chat-server backup` while the server is under load.

use std::io::Read;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::server::base_args;
use crate::support::{unique, wait_until, Need, Server, Test, TestDb};

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    let mut t = both_stores![versions_are_recorded_migrated_and_refused];
    t.extend(tests![unknown_database_is_refused, backup_while_under_load]);
    t.push(
        Test::new(
            "data_ops::the_originals_schema_is_detected".to_owned(),
            the_originals_schema_is_detected,
        )
        .needs(&[Need::Mysql]),
    );
    t
}

/// Runs `chat-server` with the base arguments plus `extra`, which must
/// exit within 20 s (a refusal); returns its code and stderr.
fn refused(db: &TestDb, extra: &[&str]) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(base_args(db))
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn chat-server");
    let deadline = Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chat-server did not refuse the database");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stderr = String::new();
    let _ = child
        .stderr
        .take()
        .expect("stderr")
        .read_to_string(&mut stderr);
    (code, stderr)
}

fn version(db: &TestDb) -> i64 {
    if db.is_mysql() {
        db.query_i64("SELECT version FROM schema_version WHERE id = 1")
    } else {
        db.query_i64("PRAGMA user_version")
    }
}

fn set_version(db: &TestDb, v: i64) {
    if db.is_mysql() {
        db.exec(&format!("UPDATE schema_version SET version = {v}"));
    } else {
        db.exec(&format!("PRAGMA user_version = {v}"));
    }
}

/// A new database gets the current version; a newer one is refused; one
/// from before versions is refused with --no-migrate and migrated without
/// it, its accounts intact.
fn versions_are_recorded_migrated_and_refused(db: TestDb) {
    let current = chat::storage::schema::CURRENT;
    let uid = Server::start(&db, &[]).user("alice").uid;
    assert_eq!(version(&db), current, "recorded at creation");

    set_version(&db, current + 1);
    let (code, stderr) = refused(&db, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("newer chat-server"), "{stderr}");

    // A database of before versions: no version recorded.
    if db.is_mysql() {
        db.exec("DROP TABLE schema_version");
    } else {
        set_version(&db, 0);
    }
    let (code, stderr) = refused(&db, &["--no-migrate"]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("--no-migrate refuses"), "{stderr}");
    let server = Server::start(&db, &[]);
    assert_eq!(version(&db), current, "migrated");
    let mut alice = server.connect();
    alice.uid = uid;
    alice.login_ok("secret");
    drop(server);
    drop(Server::start(&db, &["--no-migrate"]));
}

/// A SQLite file of another program is not touched.
fn unknown_database_is_refused() {
    let db = TestDb::sqlite();
    let path = db.url.strip_prefix("sqlite:").unwrap().to_owned();
    let conn = rusqlite::Connection::open(&path).expect("open");
    conn.execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY);")
        .expect("create");
    drop(conn);
    let (code, stderr) = refused(&db, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("not a chat-server database"), "{stderr}");
    assert!(stderr.contains("invoices"), "{stderr}");
}

/// The C++ original's chat.sql with a plaintext password: refused, with
/// where to read how to import it.
fn the_originals_schema_is_detected() {
    let db = TestDb::mysql();
    for statement in [
        "CREATE TABLE user (id INT PRIMARY KEY AUTO_INCREMENT, name VARCHAR(50) NOT NULL UNIQUE, \
         password VARCHAR(50) NOT NULL, state ENUM('online','offline') DEFAULT 'offline')",
        "CREATE TABLE friend (userid INT NOT NULL, friendid INT NOT NULL)",
        "CREATE TABLE allgroup (id INT PRIMARY KEY AUTO_INCREMENT, groupname VARCHAR(50) \
         NOT NULL UNIQUE, groupdesc VARCHAR(200) DEFAULT '')",
        "CREATE TABLE groupuser (groupid INT NOT NULL, userid INT NOT NULL, \
         grouprole ENUM('creator','normal') DEFAULT 'normal')",
        "CREATE TABLE offlinemessage (userid INT NOT NULL, message VARCHAR(500) NOT NULL)",
        "INSERT INTO user (name, password) VALUES ('zhang san', '123456')",
    ] {
        db.exec(statement);
    }
    let (code, stderr) = refused(&db, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("C++ original"), "{stderr}");
    assert!(stderr.contains("docs/operations.md"), "{stderr}");
    assert_eq!(
        db.query_i64(
            "SELECT COUNT(*) FROM information_schema.tables \
                      WHERE table_schema = DATABASE() AND table_name = 'chatlog'"
        ),
        0,
        "nothing was created"
    );
}

/// A backup taken while a client keeps chatting opens, passes its check,
/// and holds every message stored before it began.
fn backup_while_under_load() {
    let db = TestDb::sqlite();
    let server = Server::start(&db, &[]);
    let mut alice = server.user("alice");
    let bob = server.user("bob");
    let stop = Arc::new(AtomicBool::new(false));
    let stop2 = stop.clone();
    let writer = std::thread::spawn(move || {
        let mut n = 0u64;
        while !stop2.load(Ordering::Relaxed) {
            alice.chat(bob.uid, &format!("message {n}"));
            n += 1;
            std::thread::sleep(Duration::from_millis(1));
        }
        (alice, bob)
    });
    wait_until("200 messages stored", || db.chatlog_rows() >= 200);
    let before = db.chatlog_rows();
    let to = std::env::temp_dir()
        .join(unique("chat-backup"))
        .with_extension("db");
    let out = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["--db", &db.url, "backup", "--to", to.to_str().unwrap()])
        .output()
        .expect("run backup");
    stop.store(true, Ordering::Relaxed);
    let _ = writer.join();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("backed up"), "{stdout}");
    let copy = rusqlite::Connection::open(&to).expect("open the copy");
    let count = |sql: &str| -> i64 { copy.query_row(sql, [], |r| r.get(0)).expect(sql) };
    assert!(
        count("SELECT COUNT(*) FROM chatlog") >= before,
        "every message before the backup"
    );
    assert_eq!(count("SELECT COUNT(*) FROM user"), 2);
    assert_eq!(count("PRAGMA user_version"), chat::storage::schema::CURRENT);
    let check: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("check");
    assert_eq!(check, "ok");
    let again = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["--db", &db.url, "backup", "--to", to.to_str().unwrap()])
        .output()
        .expect("run backup");
    assert_eq!(again.status.code(), Some(1), "never overwrites");
    drop(copy);
    let _ = std::fs::remove_file(&to);
    drop(server);
}
