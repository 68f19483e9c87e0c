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
    t.push(
        Test::new(
            "data_ops::migrate_legacy_imports_the_original".to_owned(),
            migrate_legacy_imports_the_original,
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

/// The C++ original's chat.sql, in a new MySQL database.
fn the_originals_tables() -> TestDb {
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
    ] {
        db.exec(statement);
    }
    db
}

/// The C++ original's chat.sql with a plaintext password: refused, with
/// the command that imports it.
fn the_originals_schema_is_detected() {
    let db = the_originals_tables();
    db.exec("INSERT INTO user (name, password) VALUES ('zhang san', '123456')");
    let (code, stderr) = refused(&db, &[]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("C++ original"), "{stderr}");
    assert!(stderr.contains("migrate-legacy --from"), "{stderr}");
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

/// `chat-server migrate-legacy`: runs `chat-server --db TARGET
/// migrate-legacy --from SOURCE`; its code, stdout and stderr.
fn migrate(target: &TestDb, source: &TestDb) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["--db", &target.url, "migrate-legacy", "--from", &source.url])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run migrate-legacy");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

/// The stored password of `uid`, straight from the database.
fn stored_password(db: &TestDb, uid: i64) -> String {
    let sql = format!("SELECT password FROM user WHERE id = {uid}");
    if db.is_mysql() {
        use mysql::prelude::Queryable;
        let pool = mysql::Pool::new(db.url.as_str()).expect("pool");
        let mut conn = pool.get_conn().expect("conn");
        conn.query_first::<String, _>(sql)
            .expect("query")
            .expect("row")
    } else {
        let path = db.url.strip_prefix("sqlite:").unwrap();
        let conn = rusqlite::Connection::open(path).expect("open");
        conn.query_row(&sql, [], |r| r.get(0)).expect("query")
    }
}

/// The original's database with users, friends (one direction, a
/// duplicate, a dangling one), a group with its creator, a member (twice)
/// and offline messages, imported into a new SQLite and a new MySQL store:
/// a second run is refused; the old passwords log in (by id and by name)
/// and are hashed at that first login; a wrong one fails; the friends,
/// the group with its roles and the offline message are in the login ack;
/// the group chat works; the hash logs in after a restart.
fn migrate_legacy_imports_the_original() {
    let source = the_originals_tables();
    let hello = r#"{"msgId":9,"from":1,"username":"zhang san","to":2,"msg":"hello li si","time":"2020-01-01 10:00:00"}"#;
    let misfiled = r#"{"msgId":13,"uid":1,"username":"zhang san","gid":7,"msg":"to the team","time":"2020-01-01 10:01:00"}"#;
    for statement in [
        "INSERT INTO user (id, name, password, state) VALUES (1, 'zhang san', '123456', 'online'), \
         (2, 'li si', '666666', 'offline'), (5, 'wang wu', 'pass''word', 'offline')".to_owned(),
        "INSERT INTO friend VALUES (1, 2), (1, 2), (2, 5), (1, 99)".to_owned(),
        "INSERT INTO allgroup VALUES (7, 'team', 'the team')".to_owned(),
        "INSERT INTO groupuser VALUES (7, 1, 'creator'), (7, 2, 'normal'), (7, 2, 'normal')"
            .to_owned(),
        format!("INSERT INTO offlinemessage VALUES (2, '{hello}'), (1, '{misfiled}'), (2, 'not json')"),
    ] {
        source.exec(&statement);
    }
    for target in [TestDb::sqlite(), TestDb::mysql()] {
        let (code, stdout, stderr) = migrate(&target, &source);
        assert_eq!(code, Some(0), "{stdout}{stderr}");
        assert!(
            stdout.contains("3 users, 2 friendships, 1 groups with 2 members, 1 offline messages"),
            "{stdout}"
        );
        assert!(stdout.contains("skipped 1 group messages"), "{stdout}");
        let (code, _, stderr) = migrate(&target, &source);
        assert_eq!(code, Some(1), "run twice: {stderr}");
        assert!(stderr.contains("not empty"), "{stderr}");
        assert_eq!(
            target.query_i64("SELECT COUNT(*) FROM user"),
            3,
            "not doubled"
        );
        assert!(stored_password(&target, 2).starts_with("$legacy-plain$"));

        let server = Server::start(&target, &[]);
        let mut li = server.connect();
        li.uid = 2;
        li.name = "li si".into();
        let wrong = li.request(serde_json::json!({"msgId": 1, "uid": 2, "password": "66666"}));
        assert_eq!(wrong["errno"], 1, "{wrong}");
        assert!(stored_password(&target, 2).starts_with("$legacy-plain$"));
        let ack = li.login_ok("666666");
        assert!(
            stored_password(&target, 2).starts_with("$argon2id$"),
            "rehashed"
        );
        let token = ack["token"].as_str().expect("a resume token").to_owned();
        let friends: Vec<i64> = support_nested(&ack, "friends")
            .iter()
            .map(|f| f["uid"].as_i64().unwrap())
            .collect();
        assert_eq!(friends.len(), 2, "{ack}");
        assert!(friends.contains(&1) && friends.contains(&5), "{ack}");
        let groups = support_nested(&ack, "groups");
        assert_eq!(groups.len(), 1, "{ack}");
        assert_eq!(groups[0]["gid"], 7);
        assert_eq!(groups[0]["groupname"], "team");
        let roles: Vec<(i64, String)> = groups[0]["groupusers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                let m: serde_json::Value = serde_json::from_str(m.as_str().unwrap()).unwrap();
                (
                    m["uid"].as_i64().unwrap(),
                    m["grouprole"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert!(roles.contains(&(1, "creator".into())), "{roles:?}");
        assert!(roles.contains(&(2, "normal".into())), "{roles:?}");
        let offline = support_nested(&ack, "offlinemsgs");
        assert_eq!(offline.len(), 1, "{ack}");
        assert_eq!(offline[0]["msg"], "hello li si");

        // By name, a password with a quote; then the group chat reaches li si.
        let mut zhang = server.connect();
        let v = zhang.request(
            serde_json::json!({"msgId": 1, "username": "zhang san", "password": "123456"}),
        );
        assert_eq!(v["errno"], 0, "{v}");
        assert!(
            support_nested(&v, "offlinemsgs").is_empty(),
            "the misfiled one: {v}"
        );
        zhang.uid = 1;
        let mut wang = server.connect();
        let v = wang.request(serde_json::json!({"msgId": 1, "uid": 5, "password": "pass'word"}));
        assert_eq!(v["errno"], 0, "{v}");
        zhang.send(&serde_json::json!({"msgId": 13, "uid": 1, "gid": 7, "msg": "imported team", "time": "2024-01-01 00:00:00"}));
        let got = li.expect(13);
        assert_eq!(got["msg"], "imported team", "{got}");
        // New accounts and groups get ids above the imported ones.
        let mut newcomer = server.connect();
        assert!(newcomer.register("newcomer", "pw") > 5, "no id reused");
        newcomer.login_ok("pw");
        assert!(newcomer.create_group("new team", "") > 7, "no gid reused");
        drop((li, zhang, wang, newcomer));
        drop(server);

        let server = Server::start(&target, &["--sessions-per-user", "2"]);
        // The first login's token is of the generation the new hash set.
        let mut device = server.connect();
        let v = device.request(serde_json::json!({"msgId": 1, "token": token}));
        assert_eq!(v["errno"], 0, "{v}");
        let mut li = server.connect();
        li.uid = 2;
        li.login_ok("666666");
        let mut wrong = server.connect();
        let v = wrong.request(serde_json::json!({"msgId": 1, "uid": 2, "password": "123456"}));
        assert_eq!(v["errno"], 1, "{v}");
    }
}

fn support_nested(v: &serde_json::Value, field: &str) -> Vec<serde_json::Value> {
    crate::support::client::nested(v, field)
}
