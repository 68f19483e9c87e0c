//! Half-open peers (issue 12, item 9): a client that goes silent without
//! closing. After `--login-takeover-grace` a new login of its account
//! replaces its connection; before, the new login gets errno 2. And every
//! accepted connection has TCP keepalive on (checked at the net level, in
//! net/tests/tcp_server.rs: the kernel's side cannot be seen from here).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::client::{assert_gapless, logged, nested};
use crate::support::{Client, Server, Test, TestDb};

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    both_stores![
        a_silent_connection_is_replaced_after_the_grace,
        a_pinging_connection_keeps_its_account
    ]
}

const GRACE: Duration = Duration::from_secs(1);

fn login(c: &mut Client, uid: i64) {
    c.send(&json!({"msgId": 1, "uid": uid, "password": "secret"}));
}

/// Within the grace a second login gets errno 2; after it, the second
/// login replaces the silent connection and its ack carries again what
/// the old connection was sent (seq 1); the old one reads that too, then
/// its last word, then EOF.
fn a_silent_connection_is_replaced_after_the_grace(db: TestDb) {
    let server = Server::start(&db, &["--login-takeover-grace", "1s"]);
    let mut bob = server.user("bob");
    let mut silent = server.user("alice");
    let uid = silent.uid;
    // From here on `silent` neither reads nor writes, and keeps its socket.
    let quiet_since = Instant::now();

    // Within the grace the first connection wins, as always.
    let mut second = server.connect();
    login(&mut second, uid);
    second.expect_errno(2, 2);
    assert!(
        quiet_since.elapsed() < GRACE,
        "the machine is too slow for this test's grace"
    );

    // A message routed to the first connection while it is still the
    // account's: it belongs to that connection.
    bob.chat(uid, "to the old connection");
    std::thread::sleep(GRACE + Duration::from_millis(300));

    // After the grace the new login replaces it.
    login(&mut second, uid);
    let ack = second.expect_errno(2, 0);
    assert_eq!(ack["uid"], uid);
    // What the silent connection was sent may never have reached its
    // client: the takeover hands it again (at least once), as the first
    // message of the conversation.
    let again = nested(&ack, "offlinemsgs");
    let texts: Vec<&str> = again
        .iter()
        .map(|m| m["msg"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(texts, ["to the old connection"], "{ack}");
    let conv = assert_gapless(&again, 1);
    // The new connection is the account's now.
    bob.chat(uid, "to the new connection");
    let v = second.expect(9);
    assert_eq!(
        (v["from"].as_i64(), v["msg"].as_str()),
        (Some(bob.uid), Some("to the new connection"))
    );
    assert_eq!((logged(&v).conv, logged(&v).seq), (conv.clone(), 2));

    // The old one reads what it was sent, its last word, then EOF.
    let old = silent.expect(9);
    assert_eq!(old["msg"], "to the old connection");
    assert_eq!((logged(&old).conv, logged(&old).seq), (conv, 1));
    let last = silent.expect_errno(27, 2);
    let errmsg = last["errmsg"].as_str().unwrap_or_default();
    assert!(errmsg.contains("logged in elsewhere"), "{last}");
    silent.expect_closed(Duration::from_secs(5));
    // Half closed by the server, whose reading end ignores it now: the
    // replaced session can no longer act as the account.
    let forged = json!({"msgId": 9, "to": bob.uid, "msg": "from the replaced connection"});
    if silent.try_send_raw(forged.to_string().as_bytes()) {
        bob.expect_silence(Duration::from_millis(300));
    }

    // The old connection's close left the new login alone.
    bob.chat(uid, "still there");
    assert_eq!(second.recv_chat().1, "still there");
    let mut third = server.connect();
    login(&mut third, uid);
    third.expect_errno(2, 2);
}

fn a_pinging_connection_keeps_its_account(db: TestDb) {
    let server = Server::start(&db, &["--login-takeover-grace", "1s"]);
    let mut first = server.user("alice");
    let uid = first.uid;
    let mut second = server.connect();
    let until = Instant::now() + GRACE * 2;
    while Instant::now() < until {
        // A sign of life every 300 ms: never silent for the grace.
        first.send(&json!({"msgId": 25}));
        first.expect(26);
        std::thread::sleep(Duration::from_millis(300));
    }
    login(&mut second, uid);
    second.expect_errno(2, 2);
    first.send(&json!({"msgId": 25}));
    first.expect(26);
}
