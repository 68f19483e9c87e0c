//! Accounts over real TCP: register, login, logout, refresh, friends, and
//! every way of acting as someone else.

mod common;

use std::time::Duration;

use common::client::nested;
use common::{Server, TestDb};
use serde_json::json;

both_stores!(
    register_login_logout,
    passwords_are_hashed,
    impersonation_is_refused,
    friends
);

fn register_login_logout(db: TestDb) {
    let server = Server::start(&db, &[]);
    let mut a = server.connect();
    let uid = a.register("alice", "pässwörd");
    assert!(uid > 0);
    // The same name again: the original's errno 1.
    let v = server
        .connect()
        .request(json!({"msgId": 5, "username": "alice", "password": "x"}));
    assert_eq!(
        (v["msgId"].as_i64(), v["errno"].as_i64()),
        (Some(6), Some(1)),
        "{v}"
    );

    // Wrong password, unknown account: errno 1, and the connection stays usable.
    a.send(&json!({"msgId": 1, "uid": uid, "password": "wrong"}));
    a.expect_errno(2, 1);
    a.send(&json!({"msgId": 1, "uid": 999_999, "password": "pässwörd"}));
    a.expect_errno(2, 1);
    a.send(&json!({"msgId": 1, "username": "nobody", "password": "x"}));
    a.expect_errno(2, 1);

    // By username; the ack has the original's fields.
    a.send(&json!({"msgId": 1, "username": "alice", "password": "pässwörd"}));
    let ack = a.expect_errno(2, 0);
    assert_eq!(ack["uid"], uid);
    assert_eq!(ack["username"], "alice");
    assert!(
        ack.get("offlinemsgs").is_none() && ack.get("friends").is_none(),
        "{ack}"
    );

    // Logged in twice on one connection, or from a second connection.
    a.send(&json!({"msgId": 1, "uid": uid, "password": "pässwörd"}));
    a.expect_errno(2, 8);
    let mut other = server.connect();
    other.send(&json!({"msgId": 1, "uid": uid, "password": "pässwörd"}));
    other.expect_errno(2, 2);

    // Logout (the original's client sends its uid); the connection stays open.
    a.send(&json!({"msgId": 3, "uid": uid}));
    a.expect_errno(4, 0);
    a.send(&json!({"msgId": 7}));
    a.expect_errno(8, 3);
    a.send(&json!({"msgId": 9, "to": uid, "msg": "hi"}));
    let err = a.expect_errno(27, 3);
    assert_eq!(err["req"], 9);
    // Now the other connection may log in, and the first one again after it leaves.
    other.send(&json!({"msgId": 1, "uid": uid, "password": "pässwörd"}));
    other.expect_errno(2, 0);
    drop(other);
    let mut ok = false;
    for _ in 0..100 {
        a.send(&json!({"msgId": 1, "uid": uid, "password": "pässwörd"}));
        if a.expect(2)["errno"] == 0 {
            ok = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(ok, "login after the other connection closed");
}

fn passwords_are_hashed(db: TestDb) {
    let server = Server::start(&db, &[]);
    server.user("u1");
    server.user("u2");
    assert_eq!(
        db.query_i64("SELECT COUNT(*) FROM user WHERE password LIKE '$argon2id$%'"),
        2
    );
    assert_eq!(
        db.query_i64("SELECT COUNT(*) FROM user WHERE password LIKE '%secret%'"),
        0
    );
}

fn impersonation_is_refused(db: TestDb) {
    let server = Server::start(&db, &[]);
    let mut alice = server.user("alice");
    let mut bob = server.user("bob");
    let (a, b) = (alice.uid, bob.uid);

    alice.send(&json!({"msgId": 9, "from": b, "username": "bob", "to": a, "msg": "I am bob"}));
    assert_eq!(alice.expect_errno(27, 6)["req"], 9);
    alice.send(&json!({"msgId": 10, "uid": b, "fid": a}));
    alice.expect_errno(16, 6);
    alice.send(&json!({"msgId": 11, "uid": b, "groupname": "g", "groupdesc": ""}));
    alice.expect_errno(17, 6);
    alice.send(&json!({"msgId": 13, "uid": b, "gid": 1, "msg": "x"}));
    alice.expect_errno(27, 6);
    alice.send(&json!({"msgId": 7, "uid": b}));
    alice.expect_errno(8, 6);
    // Logging bob out from alice's connection does not work...
    alice.send(&json!({"msgId": 3, "uid": b}));
    alice.expect_errno(4, 6);
    // ...so bob is still logged in and reachable, and received nothing forged.
    alice.chat(b, "real alice");
    let (from, text) = bob.recv_chat();
    assert_eq!((from, text.as_str()), (a, "real alice"));
    bob.expect_silence(Duration::from_millis(200));
    // A chat without `from` is stamped with the sender's identity.
    alice.send(&json!({"msgId": 9, "to": b, "msg": "no from"}));
    let v = bob.expect(9);
    assert_eq!(
        (v["from"].as_i64(), v["username"].as_str()),
        (Some(a), Some("alice"))
    );
}

fn friends(db: TestDb) {
    let server = Server::start(&db, &[]);
    let mut alice = server.user("alice");
    let mut bob = server.user("bob");
    let (a, b) = (alice.uid, bob.uid);

    alice.send(&json!({"msgId": 10, "uid": a, "fid": b}));
    assert_eq!(alice.expect_errno(16, 0)["fid"], b);
    alice.send(&json!({"msgId": 10, "fid": b}));
    alice.expect_errno(16, 8); // already friends: unique
    bob.send(&json!({"msgId": 10, "fid": a}));
    bob.expect_errno(16, 8); // both directions
    alice.send(&json!({"msgId": 10, "fid": a}));
    alice.expect_errno(16, 4);
    alice.send(&json!({"msgId": 10, "fid": 424_242}));
    alice.expect_errno(16, 7);
    assert_eq!(db.query_i64("SELECT COUNT(*) FROM friend"), 2);

    // Refresh: the original's nested strings, with live state.
    alice.send(&json!({"msgId": 7, "uid": a}));
    let v = alice.expect_errno(8, 0);
    assert_eq!(v["uid"], a);
    let friends = nested(&v, "friends");
    assert_eq!(
        friends,
        vec![json!({"uid": b, "username": "bob", "state": "online"})]
    );
    drop(bob);
    let mut state = String::new();
    for _ in 0..100 {
        alice.send(&json!({"msgId": 7}));
        state = nested(&alice.expect_errno(8, 0), "friends")[0]["state"]
            .as_str()
            .unwrap()
            .to_owned();
        if state == "offline" {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(state, "offline");

    // The login ack lists friends the same way.
    let mut bob = server.connect();
    bob.uid = b;
    let ack = bob.login_ok("secret");
    assert_eq!(
        nested(&ack, "friends"),
        vec![json!({"uid": a, "username": "alice", "state": "online"})]
    );

    bob.send(&json!({"msgId": 14, "fid": a}));
    assert_eq!(bob.expect_errno(15, 0)["fid"], a);
    bob.send(&json!({"msgId": 14, "fid": a}));
    bob.expect_errno(15, 7);
    alice.send(&json!({"msgId": 7}));
    assert!(alice.expect_errno(8, 0).get("friends").is_none());
}
