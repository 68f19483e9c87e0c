//! Quotas and rate limits (issue 12, items 3 and 7) over real TCP against
//! a real `chat-server`, each limit set low so the tests run in seconds:
//!
//! * friends per user, groups created, groups joined and group size are
//!   refused with errno 13 in the request's ack, and a seat freed is a seat
//!   again; joins racing for the last seats never overfill a group;
//! * one-to-one messages waiting for an offline recipient stop at
//!   `--max-pending-per-recipient` (errno 13, 28 with the cid), and start
//!   again once the recipient has been handed them;
//! * chat and other requests beyond their rate get errno 12 with
//!   `retry_after`, and a client that waits that long gets through;
//! * requests waiting for a worker are bounded per connection (errno 12),
//!   and the connection goes on working.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::client::nested;
use crate::support::{Client, Server, Test, TestDb};

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    let mut tests = both_stores![
        friends_are_bounded_on_both_sides,
        groups_created_joined_and_size_are_bounded,
        racing_joins_never_overfill_a_group,
        messages_waiting_for_one_recipient_are_bounded,
    ];
    tests.extend(tests![
        chat_beyond_its_rate_gets_retry_after,
        other_requests_have_a_rate_of_their_own,
        requests_waiting_for_a_worker_are_bounded_per_connection,
    ]);
    tests
}

/// `--max-friends 2`: a third friend is refused for either side, nothing
/// is stored, and deleting one makes room.
fn friends_are_bounded_on_both_sides(db: TestDb) {
    let server = Server::start(&db, &["--max-friends", "2"]);
    let mut alice = server.user("alice");
    let [bob, carol, dave, erin] = ["bob", "carol", "dave", "erin"].map(|n| server.user(n));
    for f in [&bob, &carol] {
        alice.send(&json!({"msgId": 10, "fid": f.uid}));
        alice.expect_errno(16, 0);
    }
    alice.send(&json!({"msgId": 10, "fid": dave.uid}));
    let v = alice.expect_errno(16, 13);
    assert!(v["errmsg"].as_str().unwrap().contains("2 friends"), "{v}");
    // The other side full: erin may have friends, alice may not.
    let mut erin = erin;
    erin.send(&json!({"msgId": 10, "fid": alice.uid}));
    erin.expect_errno(16, 13);
    let pairs = |a: i64, b: i64| {
        db.query_i64(&format!(
            "SELECT COUNT(*) FROM friend WHERE (userid = {a} AND friendid = {b}) \
             OR (userid = {b} AND friendid = {a})"
        ))
    };
    assert_eq!(
        pairs(alice.uid, dave.uid),
        0,
        "a refused friendship is not kept"
    );
    assert_eq!(pairs(alice.uid, erin.uid), 0);
    // A friend deleted frees the place.
    alice.send(&json!({"msgId": 14, "fid": bob.uid}));
    alice.expect_errno(15, 0);
    erin.send(&json!({"msgId": 10, "fid": alice.uid}));
    erin.expect_errno(16, 0);
    alice.send(&json!({"msgId": 7}));
    assert_eq!(nested(&alice.expect_errno(8, 0), "friends").len(), 2);
}

/// `--max-groups-created 1 --max-groups-joined 2 --max-group-size 2`.
fn groups_created_joined_and_size_are_bounded(db: TestDb) {
    let server = Server::start(
        &db,
        &[
            "--max-groups-created",
            "1",
            "--max-groups-joined",
            "2",
            "--max-group-size",
            "2",
        ],
    );
    let [mut alice, mut bob, mut carol] = ["alice", "bob", "carol"].map(|n| server.user(n));
    let g1 = alice.create_group("g1", "");
    alice.send(&json!({"msgId": 11, "groupname": "g2", "groupdesc": ""}));
    let v = alice.expect_errno(17, 13);
    assert!(v["errmsg"].as_str().unwrap().contains("created 1"), "{v}");
    let g2 = bob.create_group("g2", "");
    let g3 = carol.create_group("g3", "");
    // bob: g2 and g1 make two groups; g1 is full with alice and bob.
    bob.join_group(g1);
    carol.send(&json!({"msgId": 12, "gid": g1}));
    let v = carol.expect_errno(18, 13);
    assert!(v["errmsg"].as_str().unwrap().contains("2 members"), "{v}");
    bob.send(&json!({"msgId": 12, "gid": g3}));
    let v = bob.expect_errno(18, 13);
    assert!(v["errmsg"].as_str().unwrap().contains("in 2 groups"), "{v}");
    let members = |gid: i64| {
        db.query_i64(&format!(
            "SELECT COUNT(*) FROM groupuser WHERE groupid = {gid}"
        ))
    };
    assert_eq!((members(g1), members(g2), members(g3)), (2, 1, 1));
    // Quitting frees a seat, and a membership.
    bob.send(&json!({"msgId": 19, "gid": g1}));
    bob.expect_errno(20, 0);
    carol.join_group(g1);
    bob.join_group(g3);
    // Dismissing frees a creation.
    alice.send(&json!({"msgId": 21, "gid": g1}));
    alice.expect_errno(22, 0);
    alice.create_group("g4", "");
}

/// Eight users join a group with two seats left, all at once, on four
/// workers: however the joins interleave, the group ends with at most
/// three members, and exactly the acknowledged joins are in it. (Joins
/// racing for the last seat may all be refused; none overfills.)
fn racing_joins_never_overfill_a_group(db: TestDb) {
    let server = Server::start(&db, &["--max-group-size", "3"]);
    let mut owner = server.user("owner");
    let gid = owner.create_group("seats", "");
    let mut joiners: Vec<Client> = (0..8).map(|i| server.user(&format!("j{i}"))).collect();
    for j in &mut joiners {
        j.send(&json!({"msgId": 12, "gid": gid}));
    }
    let mut joined = 0;
    for j in &mut joiners {
        let v = j.expect(18);
        match v["errno"].as_i64() {
            Some(0) => joined += 1,
            Some(13) => {}
            _ => panic!("unexpected join ack {v}"),
        }
    }
    let members = db.query_i64(&format!(
        "SELECT COUNT(*) FROM groupuser WHERE groupid = {gid}"
    ));
    assert!(members <= 3, "{members} members in a group of at most 3");
    assert_eq!(
        members,
        1 + joined,
        "the group holds exactly the acknowledged joins"
    );
}

/// Sends a one-to-one chat with a cid and returns its 28.
fn chat_with_cid(c: &mut Client, to: i64, cid: &str) -> Value {
    c.send(&json!({"msgId": 9, "from": c.uid, "to": to, "msg": cid, "cid": cid}));
    c.expect(28)
}

/// `--max-pending-per-recipient 5`: bob, offline, has five waiting; the
/// sixth is refused with 13 (28 with the cid, 27 without); carol is not
/// affected; after bob's login has handed him the five, he takes more.
fn messages_waiting_for_one_recipient_are_bounded(db: TestDb) {
    let server = Server::start(&db, &["--max-pending-per-recipient", "5"]);
    let mut alice = server.user("alice");
    let bob = server.connect().register("bob", "secret");
    let carol = server.connect().register("carol", "secret");
    for i in 0..5 {
        let v = chat_with_cid(&mut alice, bob, &format!("m{i}"));
        assert_eq!(v["errno"], 0, "{v}");
    }
    let v = chat_with_cid(&mut alice, bob, "m5");
    assert_eq!(v["errno"], 13, "{v}");
    assert_eq!(v["cid"], "m5");
    alice.chat(bob, "no cid");
    let v = alice.expect_errno(27, 13);
    assert_eq!(v["req"], 9);
    assert_eq!(
        chat_with_cid(&mut alice, carol, "c0")["errno"],
        0,
        "another recipient"
    );
    assert_eq!(
        db.chatlog_rows_from(alice.uid),
        6,
        "refused messages are not stored"
    );

    // bob logs in: handed the five, he is online (not counted) and then
    // offline with nothing waiting.
    let mut b = server.connect();
    b.uid = bob;
    let ack = b.login_ok("secret");
    assert_eq!(nested(&ack, "offlinemsgs").len(), 5, "{ack}");
    assert_eq!(chat_with_cid(&mut alice, bob, "online")["errno"], 0);
    assert_eq!(b.expect(9)["msg"], "online");
    drop(b);
    // Once his cursors are written and the writer reads them again
    // (within about a second), messages to him are taken again.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut n = 0;
    loop {
        n += 1;
        let v = chat_with_cid(&mut alice, bob, &format!("later{n}"));
        if v["errno"] == 0 {
            break;
        }
        assert_eq!(v["errno"], 13, "{v}");
        assert!(Instant::now() < deadline, "bob's quota never came back");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `--chat-rate 20 --chat-burst 10`: of 30 chats sent at once, the first
/// ten are taken and most of the rest refused with 12 and a `retry_after`
/// below a second; waiting that long is enough.
fn chat_beyond_its_rate_gets_retry_after() {
    let server = Server::fresh_with(&["--chat-rate", "20", "--chat-burst", "10"]);
    let mut alice = server.user("alice");
    let bob = server.user("bob");
    let mut burst = String::new();
    for i in 0..30 {
        burst.push_str(
            &json!({"msgId": 9, "from": alice.uid, "to": bob.uid, "msg": format!("m{i}"), "cid": format!("c{i}")})
                .to_string(),
        );
    }
    alice.send_raw(burst.as_bytes());
    let acks: Vec<Value> = (0..30).map(|_| alice.expect(28)).collect();
    let ok = acks.iter().filter(|v| v["errno"] == 0).count();
    let refused: Vec<&Value> = acks.iter().filter(|v| v["errno"] == 12).collect();
    assert_eq!(ok + refused.len(), 30, "{acks:?}");
    assert!((10..=13).contains(&ok), "{ok} taken: {acks:?}");
    let retry = refused[0]["retry_after"].as_f64().expect("retry_after");
    assert!(retry > 0.0 && retry <= 0.05 + 1e-9, "retry_after {retry}");
    std::thread::sleep(Duration::from_secs_f64(retry));
    assert_eq!(chat_with_cid(&mut alice, bob.uid, "after")["errno"], 0);
    // Without a cid the refusal is a 27 naming the request.
    for i in 0..20 {
        alice.chat(bob.uid, &format!("x{i}"));
    }
    // (Those taken are not answered: no cid, no ack.)
    let mut refused = 0;
    while let Ok(v) = alice.try_recv(Duration::from_millis(500)) {
        assert_eq!(v["msgId"], 27, "{v}");
        assert_eq!(
            (v["errno"].as_i64(), v["req"].as_i64()),
            (Some(12), Some(9)),
            "{v}"
        );
        assert!(v["retry_after"].as_f64().is_some(), "{v}");
        refused += 1;
    }
    assert!(
        refused >= 5,
        "twenty chats at once must exceed a burst of ten: {refused}"
    );
}

/// `--request-rate 5 --request-burst 3`: pings and refreshes share a bucket
/// of their own; chat is not affected by it.
fn other_requests_have_a_rate_of_their_own() {
    let server = Server::fresh_with(&["--request-rate", "5", "--request-burst", "3"]);
    let mut alice = server.user("alice");
    let bob = server.user("bob");
    let burst: String = (0..6).map(|_| json!({"msgId": 25}).to_string()).collect();
    alice.send_raw(burst.as_bytes());
    let pongs: Vec<Value> = (0..6).map(|_| alice.expect(26)).collect();
    let refused = pongs.iter().filter(|v| v["errno"] == 12).count();
    assert!((2..=3).contains(&refused), "{pongs:?}");
    assert!(
        pongs[5]["retry_after"].as_f64().is_some_and(|r| r > 0.0),
        "{pongs:?}"
    );
    alice.send(&json!({"msgId": 7}));
    let v = alice.expect(8);
    assert_eq!(v["errno"], 12, "the bucket is empty: {v}");
    // Chat draws on the other bucket.
    assert_eq!(chat_with_cid(&mut alice, bob.uid, "chat")["errno"], 0);
}

/// `--max-pending-requests 2 --workers 1`: of 300 refreshes written at
/// once, those beyond two waiting are answered at once with errno 12; all
/// are answered, in order, and the connection keeps working.
fn requests_waiting_for_a_worker_are_bounded_per_connection() {
    let server = Server::fresh_with(&["--max-pending-requests", "2", "--workers", "1"]);
    let mut alice = server.user("alice");
    let burst: String = (0..300).map(|_| json!({"msgId": 7}).to_string()).collect();
    alice.send_raw(burst.as_bytes());
    let acks: Vec<Value> = (0..300).map(|_| alice.expect(8)).collect();
    let ok = acks.iter().filter(|v| v["errno"] == 0).count();
    let busy = acks.iter().filter(|v| v["errno"] == 12).count();
    assert_eq!(ok + busy, 300);
    assert!(ok >= 2, "{ok} answered");
    assert!(
        busy > 0,
        "300 refreshes at once never had more than two waiting"
    );
    alice.send(&json!({"msgId": 7}));
    alice.expect_errno(8, 0);
}
