//! Resume tokens and password changes over real TCP: a login hands out a
//! token, a later login may show it instead of the password, and a
//! password change or a revoking logout makes every earlier token fail.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::cluster::{Cluster, Env};
use crate::support::redis::KeyPrefix;
use crate::support::{require, Client, Need, Server, Test, TestDb};

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    let mut tests = both_stores![
        token_login_and_revoking,
        the_token_column_is_added_to_an_older_database
    ];
    tests.extend(tests![
        tokens_expire,
        a_token_of_another_key_fails,
        bad_tokens_count_as_failed_logins_of_the_address,
        a_token_gets_in_while_the_password_is_brute_forced
    ]);
    tests.extend(
        tests![
            a_token_of_one_node_works_on_another,
            bad_tokens_count_against_the_address_across_the_cluster
        ]
        .into_iter()
        .map(|t| t.needs(&[Need::Mysql, Need::Redis])),
    );
    tests
}

/// The token of a successful ack (2 or 38).
fn token_of(ack: &Value) -> String {
    ack["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token: {ack}"))
        .to_owned()
}

fn token_login(c: &mut Client, token: &str) -> Value {
    let v = c.request(json!({"msgId": 1, "token": token}));
    assert_eq!(v["msgId"], 2, "{v}");
    v
}

/// `token` with its character at `i` replaced by another of the alphabet.
fn flipped(token: &str, i: usize) -> String {
    token
        .char_indices()
        .map(|(k, c)| match (k == i, c) {
            (false, c) => c,
            (true, 'A') => 'B',
            (true, _) => 'A',
        })
        .collect()
}

/// Password login hands out a token (the original's fields unchanged); the
/// token logs in on a new connection, with a fresh token; tampered ones
/// and garbage get errno 1; a password change (wrong `old`: errno 1)
/// revokes every token and hands out one that works; a logout with
/// `revoke` revokes that one too, while a plain logout does not.
fn token_login_and_revoking(db: TestDb) {
    let server = Server::start(&db, &[]);
    let mut a = server.connect();
    let uid = a.register("alice", "first");
    let ack = a.login_ok("first");
    // What the original's client reads is all there; `token` is extra.
    assert_eq!(
        (&ack["uid"], &ack["username"], &ack["sysmsg"]),
        (&json!(uid), &json!("alice"), &json!("login success")),
        "{ack}"
    );
    let first = token_of(&ack);
    a.send(&json!({"msgId": 3}));
    a.expect_errno(4, 0);

    let mut b = server.connect();
    let ack = token_login(&mut b, &first);
    assert_eq!(
        (ack["errno"].as_i64(), ack["uid"].as_i64()),
        (Some(0), Some(uid)),
        "{ack}"
    );
    assert_eq!(ack["username"], "alice");
    let second = token_of(&ack);
    // Logged in by token: the session acts as alice.
    b.send(&json!({"msgId": 7}));
    b.expect_errno(8, 0);
    b.send(&json!({"msgId": 3}));
    b.expect_errno(4, 0);

    let mut c = server.connect();
    for i in [0, first.len() / 2, first.len() - 1] {
        let v = token_login(&mut c, &flipped(&first, i));
        assert_eq!(v["errno"], 1, "byte {i} flipped: {v}");
    }
    for garbage in ["x", "not a token at all", &first[1..]] {
        assert_eq!(token_login(&mut c, garbage)["errno"], 1, "{garbage:?}");
    }
    // The connection is still usable, and a plain logout revoked nothing.
    assert_eq!(token_login(&mut c, &first)["errno"], 0);

    // Change password: wrong old, then right.
    let v = c.request(json!({"msgId": 37, "old": "nope", "new": "second"}));
    assert_eq!(
        (v["msgId"].as_i64(), v["errno"].as_i64()),
        (Some(38), Some(1)),
        "{v}"
    );
    let v = c.request(json!({"msgId": 37, "old": "first", "new": "second"}));
    assert_eq!(
        (v["msgId"].as_i64(), v["errno"].as_i64()),
        (Some(38), Some(0)),
        "{v}"
    );
    let third = token_of(&v);
    // Still connected and logged in after the change.
    c.send(&json!({"msgId": 7}));
    c.expect_errno(8, 0);
    c.send(&json!({"msgId": 3}));
    c.expect_errno(4, 0);
    let mut d = server.connect();
    d.uid = uid;
    for old in [&first, &second] {
        assert_eq!(
            token_login(&mut d, old)["errno"],
            1,
            "revoked by the change"
        );
    }
    let v = d.request(json!({"msgId": 1, "uid": uid, "password": "first"}));
    assert_eq!(v["errno"], 1, "the old password: {v}");
    d.login_ok("second");
    d.send(&json!({"msgId": 3}));
    d.expect_errno(4, 0);
    let ack = token_login(&mut d, &third);
    assert_eq!(ack["errno"], 0, "the change's token: {ack}");
    let fourth = token_of(&ack);

    // Logout with revoke: neither token works afterwards.
    d.send(&json!({"msgId": 3, "revoke": true}));
    d.expect_errno(4, 0);
    for old in [&third, &fourth] {
        assert_eq!(
            token_login(&mut d, old)["errno"],
            1,
            "revoked by the logout"
        );
    }
    // A change password needs a login.
    let v = d.request(json!({"msgId": 37, "old": "second", "new": "third"}));
    assert_eq!(
        (v["msgId"].as_i64(), v["errno"].as_i64()),
        (Some(38), Some(3)),
        "{v}"
    );
}

/// A database made before tokens (no `token_gen` column) gains the column
/// when the server opens it; its accounts log in by password and by token.
fn the_token_column_is_added_to_an_older_database(db: TestDb) {
    let uid = {
        let server = Server::start(&db, &[]);
        server.connect().register("old", "secret")
    };
    db.exec("ALTER TABLE user DROP COLUMN token_gen");
    let columns = "SELECT COUNT(*) FROM information_schema.columns \
                   WHERE table_schema = DATABASE() AND table_name = 'user' \
                   AND column_name = 'token_gen'";
    let sqlite_columns = "SELECT COUNT(*) FROM pragma_table_info('user') WHERE name = 'token_gen'";
    let count = || {
        db.query_i64(if db.is_mysql() {
            columns
        } else {
            sqlite_columns
        })
    };
    assert_eq!(count(), 0, "the column is gone");

    let server = Server::start(&db, &[]);
    assert_eq!(count(), 1, "the column is back");
    let mut c = server.connect();
    c.uid = uid;
    let token = token_of(&c.login_ok("secret"));
    c.send(&json!({"msgId": 3}));
    c.expect_errno(4, 0);
    assert_eq!(token_login(&mut server.connect(), &token)["errno"], 0);
}

/// With `--token-ttl 1s`, a token fails once its second is over.
fn tokens_expire() {
    let server = Server::fresh_with(&["--token-ttl", "1s"]);
    let mut c = server.connect();
    c.register("brief", "secret");
    let token = token_of(&c.login_ok("secret"));
    drop(c);
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(token_login(&mut server.connect(), &token)["errno"], 1);
}

/// A token signed with one key file fails on a server with another; the
/// password still works there.
fn a_token_of_another_key_fails() {
    let db = TestDb::sqlite();
    let (uid, token) = {
        let server = Server::start(&db, &[]);
        let mut c = server.connect();
        let uid = c.register("alice", "secret");
        (uid, token_of(&c.login_ok("secret")))
    };
    let other = std::env::temp_dir().join(crate::support::unique("other.key"));
    let other_flag = other.display().to_string();
    let server = Server::start(&db, &["--token-key-file", &other_flag]);
    assert_eq!(token_login(&mut server.connect(), &token)["errno"], 1);
    let mut c = server.connect();
    c.uid = uid;
    c.login_ok("secret");
    let _ = std::fs::remove_file(other);
}

/// Bad tokens count as failed logins of the address: after three, the
/// address's next login (a good password too) gets errno 12.
fn bad_tokens_count_as_failed_logins_of_the_address() {
    let server = Server::fresh_with(&[
        "--login-failures-per-address",
        "3",
        "--login-cooldown",
        "30s",
    ]);
    let mut c = server.connect();
    let uid = c.register("carol", "secret");
    for i in 0..3 {
        assert_eq!(token_login(&mut c, &format!("forged{i}"))["errno"], 1);
    }
    let v = c.request(json!({"msgId": 1, "uid": uid, "password": "secret"}));
    assert_eq!(v["errno"], 12, "{v}");
}

/// A brute-force run against alice's password blocks her password logins;
/// her token still gets her in, and bob logs in during the run.
fn a_token_gets_in_while_the_password_is_brute_forced() {
    let server = Server::fresh_with(&[
        "--login-failures-per-account",
        "3",
        "--login-cooldown",
        "30s",
    ]);
    let mut alice = server.connect();
    let alice_id = alice.register("alice", "right");
    let token = token_of(&alice.login_ok("right"));
    drop(alice);
    let mut bob = server.connect();
    let bob_id = bob.register("bob", "secret");
    let mut attacker = server.connect();
    for _ in 0..4 {
        attacker.send(&json!({"msgId": 1, "uid": alice_id, "password": "guess"}));
    }
    let v = bob.request(json!({"msgId": 1, "uid": bob_id, "password": "secret"}));
    assert_eq!(v["errno"], 0, "bob during the run: {v}");
    let answers: Vec<i64> = (0..4)
        .map(|_| attacker.expect(2)["errno"].as_i64().unwrap_or(-1))
        .collect();
    assert_eq!(answers, [1, 1, 1, 12]);
    let v = server
        .connect()
        .request(json!({"msgId": 1, "uid": alice_id, "password": "right"}));
    assert_eq!(v["errno"], 12, "her password is blocked: {v}");
    assert_eq!(token_login(&mut server.connect(), &token)["errno"], 0);
}

/// Two nodes sharing the store and the key file: a token that node 1
/// handed out logs in on node 2.
fn a_token_of_one_node_works_on_another() {
    let env = Env::get("tokens");
    let cluster = Cluster::start_with(&env, 2, "2s", &[]);
    let mut a = cluster.node(1).connect();
    a.register("roamer", "secret");
    let token = token_of(&a.login_ok("secret"));
    a.send(&json!({"msgId": 3}));
    a.expect_errno(4, 0);
    let ack = token_login(&mut cluster.node(2).connect(), &token);
    assert_eq!(ack["errno"], 0, "{ack}");
}

/// Bad tokens count against the address on every node: four on node a
/// block a good password login from the same address on node b.
fn bad_tokens_count_against_the_address_across_the_cluster() {
    let db = TestDb::mysql();
    let url = require::redis_url();
    let prefix = KeyPrefix::new(&url, "token-throttle");
    let node = |id: &str| {
        let args = [
            "--redis",
            &url,
            "--redis-prefix",
            &prefix.name,
            "--node-id",
            id,
            "--login-failures-per-address",
            "4",
        ];
        Server::start(&db, &args)
    };
    let (a, b) = (node("a"), node("b"));
    let carol_id = a.connect().register("carol", "secret");
    let mut on_a = a.connect();
    for i in 0..4 {
        let v = token_login(&mut on_a, &format!("forged{i}"));
        assert_eq!(v["errno"], 1, "failure {i}: {v}");
    }
    let v = b
        .connect()
        .request(json!({"msgId": 1, "uid": carol_id, "password": "secret"}));
    assert_eq!(v["errno"], 12, "{v}");
}
