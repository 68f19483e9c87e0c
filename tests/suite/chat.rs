//! One-to-one chat, offline messages and their order, over real TCP.
//!
//! Every delivered chat is the sender's object plus the message log's
//! `conv`, `seq` and `ts`: compared without them, and then they are
//! checked on their own (one conv for both directions, seq from 1 with no
//! gap). "Offline" messages are log rows past the recipient's delivered
//! position.

use std::time::Duration;

use crate::support::client::{assert_gapless, logged, nested, without_log};
use crate::support::{Client, Server, Test, TestDb};
use serde_json::json;

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    both_stores![
        one_to_one,
        offline_messages_are_stored_and_delivered_once,
        order_across_login,
        fast_and_general_paths_store_the_same_bytes
    ]
}

/// Live chat both ways, to nobody and to oneself; each delivered object is
/// the sender's plus conv/seq/ts, and only accepted messages are logged.
fn one_to_one(db: TestDb) {
    let server = Server::start(&db, &[]);
    let mut alice = server.user("alice");
    let mut bob = server.user("bob");
    let (a, b) = (alice.uid, bob.uid);

    // Forwarded as received (the original client's fields intact).
    let sent = json!({"msgId": 9, "from": a, "username": "alice", "to": b,
                      "msg": "héllo 你好 👋", "time": "2024-05-06 07:08:09"});
    alice.send(&sent);
    let first = bob.expect(9);
    assert_eq!(without_log(&first), sent);
    bob.chat(a, "back");
    let second = alice.expect(9);
    assert_eq!(
        (second["from"].as_i64(), second["msg"].as_str()),
        (Some(b), Some("back"))
    );
    // One conversation for both directions, numbered from 1 without a gap.
    let conv = assert_gapless(&[first.clone(), second.clone()], 1);
    assert!(logged(&first).ts <= logged(&second).ts, "{first} {second}");

    // To nobody: an error (27, req 9, errno 7), connection open.
    alice.chat(777_777, "void");
    assert_eq!(alice.expect_errno(27, 7)["req"], 9);
    // Online delivery never touches the legacy offline table; the log
    // holds the two delivered messages and not the refused one.
    assert_eq!(db.query_i64("SELECT COUNT(*) FROM offlinemessage"), 0);
    assert_eq!(db.chatlog_rows(), 2);
    // To oneself works like to anyone, in a conversation of its own.
    alice.chat(a, "note to self");
    let note = alice.expect(9);
    assert_eq!(
        (note["from"].as_i64(), note["msg"].as_str()),
        (Some(a), Some("note to self"))
    );
    let own = assert_gapless(&[note], 1);
    assert_ne!(own, conv);
}

/// Messages to an offline user are log rows (not `offlinemessage` rows),
/// come in the next login ack in order, numbered 1..=32, and only once.
fn offline_messages_are_stored_and_delivered_once(db: TestDb) {
    let server = Server::start(&db, &[]);
    let mut alice = server.user("alice");
    let mut bob = server.connect();
    let b = bob.register("bob", "secret");
    // 2 KiB of multi-byte text (crashed the original) and ordinary messages.
    let big: String = "ß漢".repeat(2048 / 5);
    alice.chat(b, "first");
    alice.chat(b, &big);
    for i in 0..30 {
        alice.chat(b, &format!("m{i}"));
    }
    alice.send(&json!({"msgId": 25}));
    alice.expect(26); // all read and queued
    let mut stored = 0;
    for _ in 0..200 {
        stored = db.chatlog_rows();
        if stored == 32 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(stored, 32);
    // The legacy table is read, no longer written.
    assert_eq!(db.query_i64("SELECT COUNT(*) FROM offlinemessage"), 0);

    let ack = bob.login_ok("secret");
    let msgs = nested(&ack, "offlinemsgs");
    let texts: Vec<&str> = msgs.iter().map(|m| m["msg"].as_str().unwrap()).collect();
    let mut want = vec!["first".to_owned(), big.clone()];
    want.extend((0..30).map(|i| format!("m{i}")));
    assert_eq!(texts, want);
    assert!(msgs
        .iter()
        .all(|m| m["msgId"] == 9 && m["from"] == alice.uid && m["to"] == b));
    // One fresh conversation: 1..=32 in the order sent.
    assert_gapless(&msgs, 1);

    // Delivered once: the position handed in the ack is written (after
    // the ack, and at the logout at the latest), and the next login has none.
    let mut gone = false;
    let cursor = format!("SELECT MAX(delivered_seq) FROM convcursor WHERE userid = {b}");
    for _ in 0..200 {
        if db.query_i64(&cursor) == 32 {
            gone = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(gone, "the delivered position is written");
    bob.send(&json!({"msgId": 3}));
    bob.expect_errno(4, 0);
    let ack = bob.login_ok("secret");
    assert!(ack.get("offlinemsgs").is_none(), "{ack}");
    // The log keeps them (sync reads them again).
    assert_eq!(db.chatlog_rows(), 32);
}

/// A sender keeps writing while the recipient logs in: every message
/// arrives exactly once, in order, part in the login ack and part live.
fn order_across_login(db: TestDb) {
    let server = Server::start(&db, &[]);
    let mut bob = server.connect();
    let b = bob.register("bob", "secret");
    let mut senders: Vec<Client> = (0..3).map(|i| server.user(&format!("sender{i}"))).collect();
    let uids: Vec<i64> = senders.iter().map(|c| c.uid).collect();
    const N: usize = 300;
    // Paced below what a database can store, so that the login lands in
    // the middle of the stream: some messages offline, the rest buffered
    // during the login or delivered live.
    let writer = std::thread::spawn(move || {
        for i in 0..N {
            for s in senders.iter_mut() {
                s.chat(b, &i.to_string());
            }
            std::thread::sleep(Duration::from_millis(4));
        }
        for s in senders.iter_mut() {
            s.send(&json!({"msgId": 25}));
            s.expect(26);
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    bob.send(&json!({"msgId": 1, "uid": b, "password": "secret"}));
    let ack = bob.expect_errno(2, 0);
    let mut got: Vec<(i64, usize)> = nested(&ack, "offlinemsgs")
        .iter()
        .map(|m| {
            (
                m["from"].as_i64().unwrap(),
                m["msg"].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    let offline = got.len();
    eprintln!("{offline} of {} messages came in the login ack", 3 * N);
    while got.len() < 3 * N {
        let (from, text) = bob.recv_chat();
        got.push((from, text.parse().unwrap()));
    }
    writer.join().unwrap();
    bob.expect_silence(Duration::from_millis(100));
    for uid in uids {
        let seq: Vec<usize> = got
            .iter()
            .filter(|(f, _)| *f == uid)
            .map(|(_, n)| *n)
            .collect();
        assert_eq!(
            seq,
            (0..N).collect::<Vec<_>>(),
            "from {uid} ({offline} came offline)"
        );
    }
}

/// The same chat in four spellings, two that the fast path reads from the
/// bytes (src/protocol/chat_frame.rs) and two that it leaves to serde_json
/// (a `\u` escape; a nested value elsewhere would do too): one body in the
/// log, byte for byte, and the same object delivered four times.
fn fast_and_general_paths_store_the_same_bytes(db: TestDb) {
    let server = Server::start(&db, &[]);
    let mut alice = server.user("alice");
    let mut bob = server.user("bob");
    let (a, b) = (alice.uid, bob.uid);
    let spellings = [
        // Fast: fields in any order, duplicate keys (the last counts).
        format!(r#"{{"to":{b},"msgId":9,"msg":"é \"q\"","x":1}}"#),
        format!(r#"{{"msgId":9,"msg":"no","to":{b},"msg":"é \"q\"","x":1}}"#),
        // General: an escape serde_json does not write; a forged name and
        // a seq, which the server replaces and removes.
        format!(r#"{{"msgId":9,"x":1,"msg":"\u00e9 \"q\"","to":{b}}}"#),
        format!(
            r#" {{ "msgId" : 9 , "seq":5, "username":"mallory", "to":{b}, "msg":"\u00e9 \"q\"", "x":1 }}"#
        ),
    ];
    let mut seen = Vec::new();
    for text in &spellings {
        alice.send_raw(format!("{text}\n").as_bytes());
        seen.push(without_log(&bob.expect(9)));
    }
    let expected = json!({"msgId": 9, "from": a, "username": "alice", "to": b,
                          "msg": "é \"q\"", "x": 1});
    assert!(seen.iter().all(|v| *v == expected), "{seen:?}");
    assert_eq!(db.chatlog_rows(), 4);
    assert_eq!(db.query_i64("SELECT COUNT(DISTINCT body) FROM chatlog"), 1);
}
