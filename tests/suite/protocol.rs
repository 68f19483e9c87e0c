//! The wire protocol's edges over real TCP: framing, malformed input, ping
//! and the idle timeout.

use std::time::{Duration, Instant};

use crate::support::{Server, Test, TestDb};
use serde_json::json;

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    both_stores![
        framing,
        malformed_input_closes,
        wrong_requests_keep_the_connection,
        idle_timeout_and_ping
    ]
}

fn framing(db: TestDb) {
    let server = Server::start(&db, &[]);
    // Two requests in one write (the original server threw on this).
    let mut c = server.connect();
    c.send_raw(br#"{"msgId":5,"username":"alice","password":"pw"}{"msgId":5,"username":"bob","password":"pw"}"#);
    assert_eq!(c.expect_errno(6, 0)["username"], "alice");
    assert_eq!(c.expect_errno(6, 0)["username"], "bob");

    // Register and log in to the new account in one write: the login finds
    // the account, and the answers come in the order asked.
    let mut dave = server.connect();
    dave.send_raw(br#"{"msgId":5,"username":"dave","password":"pw"}{"msgId":1,"username":"dave","password":"pw"}"#);
    assert_eq!(dave.expect_errno(6, 0)["username"], "dave");
    dave.expect_errno(2, 0);

    // Login and a first message in one write: the message waits for the login.
    let mut bob = server.connect();
    bob.send_raw(br#"{"msgId":1,"username":"bob","password":"pw"}"#);
    let b = bob.expect_errno(2, 0)["uid"].as_i64().unwrap();
    let both = format!(
        r#"{{"msgId":1,"username":"alice","password":"pw"}} {{"msgId":9,"to":{b},"msg":"early"}}"#
    );
    c.send_raw(both.as_bytes());
    c.expect_errno(2, 0);
    assert_eq!(bob.recv_chat().1, "early");

    // One byte at a time, with whitespace and newlines between values.
    let mut slow = server.connect();
    let text =
        "\n {\"msgId\" : 25}\r\n\t{\"msgId\":5,\"username\":\"ca\\u0072ol\",\"password\":\"pw\"}  ";
    for byte in text.as_bytes() {
        slow.send_raw(&[*byte]);
        std::thread::sleep(Duration::from_micros(300));
    }
    slow.expect_errno(26, 0);
    assert_eq!(slow.expect_errno(6, 0)["username"], "carol");
}

fn malformed_input_closes(db: TestDb) {
    let server = Server::start(&db, &[]);
    // 100 KiB message (over the 64 KiB default; crashed the original).
    let mut c = server.user("alice");
    let big = "x".repeat(100 * 1024);
    c.try_send_raw(
        json!({"msgId": 9, "to": c.uid, "msg": big})
            .to_string()
            .as_bytes(),
    );
    let v = c.expect_errno(27, 10);
    assert!(v.get("req").is_none());
    c.expect_closed(Duration::from_secs(5));

    // Not JSON, JSON that is not an object, broken JSON after a good value.
    for bad in [
        &b"hello"[..],
        b"[1,2,3]",
        b"42",
        b"{\"msgId\":25}{\"msgId\":,}",
        b"{\"a\":\xff}",
    ] {
        let mut c = server.connect();
        c.send_raw(bad);
        let mut v = c.recv();
        if v["msgId"] == 26 {
            v = c.recv(); // the good value before the bad one is answered
        }
        assert_eq!(
            (v["msgId"].as_i64(), v["errno"].as_i64()),
            (Some(27), Some(11)),
            "{v}"
        );
        c.expect_closed(Duration::from_secs(5));
    }
    // The server goes on.
    let mut c = server.connect();
    c.send(&json!({"msgId": 25}));
    c.expect_errno(26, 0);
}

fn wrong_requests_keep_the_connection(db: TestDb) {
    let server = Server::start(&db, &[]);
    let mut c = server.connect();
    let cases = [
        (json!({"msgId": 99}), 27, 5),         // unknown msgId
        (json!({"msgId": 4}), 27, 5),          // an ack is not a request
        (json!({"nomsgid": 1}), 27, 4),        // missing msgId
        (json!({"msgId": "1"}), 27, 4),        // mistyped msgId
        (json!({"msgId": 1, "uid": 1}), 2, 4), // missing password
        (json!({"msgId": 1, "uid": "one", "password": "x"}), 2, 4), // mistyped uid
        (json!({"msgId": 5, "username": "", "password": "x"}), 6, 4), // empty name
        (json!({"msgId": 5, "username": 7, "password": "x"}), 6, 4), // mistyped name
        (json!({"msgId": 9, "to": 1}), 27, 4), // missing msg
        (json!({"msgId": 9, "to": "bob", "msg": "x"}), 27, 4), // mistyped to
        (json!({"msgId": 12, "gid": -3}), 18, 4), // invalid id
        (json!({"msgId": 10, "fid": 2}), 16, 3), // not logged in
        (json!({"msgId": 11, "groupname": "g"}), 17, 3),
        (json!({"msgId": 13, "gid": 1, "msg": "x"}), 27, 3),
        (json!({"msgId": 3}), 4, 3),
    ];
    for (request, ack, errno) in cases {
        c.send(&request);
        let v = c.expect_errno(ack, errno);
        if ack == 27 && request["msgId"].is_i64() {
            assert_eq!(v["req"], request["msgId"], "{v}");
        }
    }
    c.send(&json!({"msgId": 25}));
    c.expect_errno(26, 0);
}

fn idle_timeout_and_ping(db: TestDb) {
    let server = Server::start(&db, &["--idle-timeout", "1s"]);
    let mut idle = server.connect();
    let mut pinger = server.user("pinger");
    let start = Instant::now();
    // The pinger stays for 2.5 s, well past the timeout.
    while start.elapsed() < Duration::from_millis(2500) {
        pinger.send(&json!({"msgId": 25}));
        pinger.expect_errno(26, 0);
        std::thread::sleep(Duration::from_millis(300));
    }
    idle.expect_closed(Duration::from_secs(1));
    // Once silent, it goes too; and its account is logged out.
    let silent = Instant::now();
    pinger.expect_closed(Duration::from_secs(5));
    assert!(
        silent.elapsed() >= Duration::from_millis(700),
        "closed too early"
    );
    let mut again = server.connect();
    again.uid = pinger.uid;
    again.login_ok("secret");
}
