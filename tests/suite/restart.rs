//! Stopping the server: kill -9 then restart loses no stored data (the
//! message log included) and leaves nobody online; SIGTERM finishes queued
//! writes to the log and exits 0.

use std::time::{Duration, Instant};

use crate::support::client::{assert_gapless, nested};
use crate::support::{Server, Test, TestDb};
use serde_json::json;

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    both_stores![kill9_then_restart, sigterm_is_graceful]
}

/// Polls `f` until it returns `want` (at most 10 s); returns the last value.
fn wait_for(want: i64, f: impl Fn() -> i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let v = f();
        if v == want || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Friends, groups and the log survive a kill -9; the restart resets
/// everyone offline, and carol's five messages come at her login, in order.
fn kill9_then_restart(db: TestDb) {
    let mut server = Server::start(&db, &[]);
    let mut alice = server.user("alice");
    let mut bob = server.user("bob");
    let mut carol = server.connect();
    let c = carol.register("carol", "secret");
    let (a, b) = (alice.uid, bob.uid);
    alice.send(&json!({"msgId": 10, "fid": b}));
    alice.expect_errno(16, 0);
    let gid = alice.create_group("survivors", "after the crash");
    bob.join_group(gid);
    for i in 0..5 {
        alice.chat(c, &format!("for carol {i}"));
    }
    alice.send(&json!({"msgId": 25}));
    alice.expect(26);
    assert_eq!(wait_for(5, || db.chatlog_rows()), 5);
    assert_eq!(
        wait_for(2, || db.online_users()),
        2,
        "alice and bob marked online"
    );

    server.kill9();
    assert_eq!(
        db.online_users(),
        2,
        "a crash leaves them online in the table"
    );

    let server = Server::start(&db, &[]);
    assert_eq!(db.online_users(), 0, "reset at start");
    // Everyone can log in again (nobody is "already online"), and all is there.
    let mut alice = server.connect();
    alice.uid = a;
    let ack = alice.login_ok("secret");
    assert_eq!(nested(&ack, "friends")[0]["uid"], b);
    let groups = nested(&ack, "groups");
    assert_eq!(
        (groups[0]["gid"].as_i64(), groups[0]["groupname"].as_str()),
        (Some(gid), Some("survivors"))
    );
    assert_eq!(groups[0]["groupusers"].as_array().unwrap().len(), 2);
    let mut bob = server.connect();
    bob.uid = b;
    bob.login_ok("secret");
    let mut carol = server.connect();
    carol.uid = c;
    let msgs = nested(&carol.login_ok("secret"), "offlinemsgs");
    let texts: Vec<String> = msgs
        .iter()
        .map(|m| m["msg"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        texts,
        (0..5).map(|i| format!("for carol {i}")).collect::<Vec<_>>()
    );
    // Carol was never online: nothing was handed before the crash, so
    // exactly these, numbered 1..=5.
    assert_gapless(&msgs, 1);
    // Group chat works from the restored membership.
    bob.send(&json!({"msgId": 13, "gid": gid, "msg": "we made it"}));
    assert_eq!(alice.expect(13)["msg"], "we made it");
}

/// SIGTERM (and SIGINT): exit 0, everyone offline, all 200 chats read
/// before the signal in the log.
fn sigterm_is_graceful(db: TestDb) {
    let mut server = Server::start(&db, &[]);
    let mut alice = server.user("alice");
    let _bob = server.user("bob");
    let mut carol = server.connect();
    let c = carol.register("carol", "secret");
    drop(carol);
    // Writes queued right before the signal: read by the server (the pong
    // proves it), not necessarily stored yet.
    for i in 0..200 {
        alice.chat(c, &i.to_string());
    }
    alice.send(&json!({"msgId": 25}));
    alice.expect(26);
    assert_eq!(
        server.signal_and_wait(libc::SIGTERM, Duration::from_secs(30)),
        Some(0),
        "{}",
        server.log()
    );
    assert_eq!(db.online_users(), 0, "users marked offline at shutdown");
    assert_eq!(db.chatlog_rows(), 200, "queued writes finished");
    // Clients see the connection close.
    alice.expect_closed(Duration::from_secs(5));
    // SIGINT does the same.
    let mut server = Server::start(&db, &[]);
    let _alice = server.user("alice2");
    assert_eq!(
        server.signal_and_wait(libc::SIGINT, Duration::from_secs(30)),
        Some(0)
    );
    assert_eq!(db.online_users(), 0);
}
