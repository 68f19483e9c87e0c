//! Several sessions per user (issue 14), over real TCP: `--sessions-per-user`,
//! self-copies, 35 read receipts, `unread` in CONVS, 36 typing, per-user
//! presence and logout of one session. The default of one session (errno 2
//! on a second login) is checked here too; every other area runs with it.

use std::time::Duration;

use serde_json::{json, Value};

use crate::cluster::CLUSTER;
use crate::support::cluster::wait_friend_state;
use crate::support::log::{chat_with_cid, group_with_cid, login_as, seqs, texts};
use crate::support::{Client, Cluster, Env, Server, Test};

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    let mut all = tests![
        one_session_by_default,
        every_session_gets_every_message_and_self_copy,
        read_receipts_and_unread,
        presence_lasts_until_the_last_session,
        typing_is_relayed_once_a_second
    ];
    let cluster = tests![sessions_in_a_cluster];
    all.extend(cluster.into_iter().map(|t| t.needs(CLUSTER)));
    all
}

/// `alice` (registered on `server`) logged in on `n` connections.
fn sessions_of(server: &Server, alice: &Client, n: usize) -> Vec<Client> {
    (0..n)
        .map(|_| login_as(server.addr, alice.uid, &alice.name).0)
        .collect()
}

/// The next message of `c` that is not a 28 SEND_ACK, 35 or 36.
fn next_chat(c: &mut Client) -> Value {
    loop {
        let v = c.recv();
        match v["msgId"].as_i64() {
            Some(28 | 35 | 36) => continue,
            _ => return v,
        }
    }
}

/// The conversations of a CONVS answer, by name: `(last_seq, read_seq, unread)`.
fn convs(c: &mut Client) -> Vec<(String, i64, i64, i64)> {
    c.send(&json!({"msgId": 31}));
    let v = c.expect_errno(32, 0);
    let mut out: Vec<_> = v["convs"]
        .as_array()
        .expect("convs")
        .iter()
        .map(|e| {
            let n = |k: &str| e[k].as_i64().unwrap_or(-1);
            let name = e["conv"].as_str().unwrap_or("").to_owned();
            (name, n("last_seq"), n("read_seq"), n("unread"))
        })
        .collect();
    out.sort();
    out
}

/// Without the flag a second login gets errno 2, as the original's.
fn one_session_by_default() {
    let server = Server::fresh();
    let alice = server.user("alice");
    let mut again = server.connect();
    let v = again.request(json!({"msgId": 1, "uid": alice.uid, "password": "secret"}));
    assert_eq!(
        (v["msgId"].as_i64(), v["errno"].as_i64()),
        (Some(2), Some(2)),
        "{v}"
    );
}

/// Three sessions of alice: each gets bob's messages, and each of the
/// two others gets a self-copy (same conv/seq) of what one sends, one-to-one
/// and in a group; the sender gets only its SEND_ACK. A fourth login gets
/// errno 2; a logout ends that session only.
fn every_session_gets_every_message_and_self_copy() {
    let server = Server::fresh_with(&["--sessions-per-user", "3"]);
    let alice = server.user("alice");
    let mut bob = server.user("bob");
    let mut s = sessions_of(&server, &alice, 2);
    s.insert(0, alice);
    let (a, b) = (s[0].uid, bob.uid);

    let mut fourth = server.connect();
    let v = fourth.request(json!({"msgId": 1, "uid": a, "password": "secret"}));
    assert_eq!(v["errno"], 2, "the fourth login: {v}");

    // bob → alice, then each of alice's sessions in turn → bob; after each
    // send every other session gets its copy.
    bob.send(&chat_with_cid(a, "b0", "b0"));
    bob.expect_errno(28, 0);
    let mut got: Vec<Vec<Value>> = s.iter_mut().map(|c| vec![c.expect(9)]).collect();
    for sender in 0..3 {
        let cid = format!("a{sender}");
        s[sender].send(&chat_with_cid(b, &cid, &cid));
        let ack = s[sender].expect_errno(28, 0);
        assert_eq!(ack["seq"], sender as i64 + 2, "{ack}");
        for other in (0..3).filter(|&o| o != sender) {
            got[other].push(s[other].expect(9));
        }
    }
    let bob_got: Vec<Value> = (0..3).map(|_| bob.expect(9)).collect();
    assert_eq!(texts(&bob_got), ["a0", "a1", "a2"]);
    for (i, got) in got.iter().enumerate() {
        // Its own message is not among them: only the others' self-copies.
        let want: Vec<String> = ["b0", "a0", "a1", "a2"]
            .iter()
            .filter(|t| **t != format!("a{i}"))
            .map(|t| (*t).to_owned())
            .collect();
        assert_eq!(texts(got), want, "session {i}");
        let conv = got[0]["conv"].clone();
        assert!(got.iter().all(|m| m["conv"] == conv), "one conv: {got:?}");
        let mut want_seqs = vec![1, 2, 3, 4];
        want_seqs.remove(i + 1);
        assert_eq!(seqs(got), want_seqs, "session {i} in seq order");
        assert_eq!(got[1]["from"], a, "a self-copy names its sender");
    }
    for session in s.iter_mut() {
        session.expect_silence(Duration::from_millis(100));
    }

    // A group: a self-copy for the poster's other sessions too.
    let gid = s[0].create_group("g", "d");
    bob.join_group(gid);
    s[1].send(&group_with_cid(gid, "to the group", "g1"));
    s[1].expect_errno(28, 0);
    assert_eq!(bob.expect(13)["msg"], "to the group");
    for k in [0, 2] {
        let v = s[k].expect(13);
        assert_eq!(
            (v["msg"].as_str(), v["seq"].as_i64()),
            (Some("to the group"), Some(1))
        );
    }
    s[1].expect_silence(Duration::from_millis(200));

    // Logout ends that session only: the others still get messages, and
    // the freed place takes a new login.
    s[2].send(&json!({"msgId": 3}));
    s[2].expect(4);
    bob.chat(a, "after logout");
    for k in [0, 1] {
        assert_eq!(next_chat(&mut s[k])["msg"], "after logout");
    }
    s[2].expect_silence(Duration::from_millis(200));
    let v = fourth.request(json!({"msgId": 1, "uid": a, "password": "secret"}));
    assert_eq!(v["errno"], 0, "a login in the freed place: {v}");
}

/// A READ on one session: its other sessions and the other participant get
/// 35 RECEIPT; CONVS shows `unread` 0 on every session (before, the count).
fn read_receipts_and_unread() {
    let server = Server::fresh_with(&["--sessions-per-user", "2"]);
    let alice = server.user("alice");
    let mut bob = server.user("bob");
    let mut s = sessions_of(&server, &alice, 1);
    s.insert(0, alice);
    let a = s[0].uid;
    for i in 0..3 {
        bob.chat(a, &format!("m{i}"));
    }
    let mut conv = String::new();
    for session in s.iter_mut() {
        for _ in 0..3 {
            conv = session.expect(9)["conv"].as_str().expect("conv").to_owned();
        }
    }
    for session in s.iter_mut() {
        assert_eq!(convs(session), [(conv.clone(), 3, 0, 3)]);
    }
    assert_eq!(
        convs(&mut bob),
        [(conv.clone(), 3, 0, 3)],
        "bob's own reads count"
    );

    s[0].send(&json!({"msgId": 33, "conv": conv, "seq": 3}));
    assert_eq!(s[0].expect_errno(34, 0)["seq"], 3);
    let want = json!({"msgId": 35, "conv": conv, "uid": a, "seq": 3});
    assert_eq!(s[1].expect(35), want, "the other session");
    assert_eq!(bob.expect(35), want, "the other participant");
    s[0].expect_silence(Duration::from_millis(200));
    for session in s.iter_mut() {
        assert_eq!(convs(session), [(conv.clone(), 3, 3, 0)]);
    }
}

/// bob sees alice online while any of her sessions is, offline once the
/// last has closed (one logs out, one disconnects).
fn presence_lasts_until_the_last_session() {
    let server = Server::fresh_with(&["--sessions-per-user", "2"]);
    let mut alice = server.user("alice");
    let mut bob = server.user("bob");
    alice.send(&json!({"msgId": 10, "fid": bob.uid}));
    alice.expect_errno(16, 0);
    let a = alice.uid;
    let mut second = sessions_of(&server, &alice, 1).remove(0);
    wait_friend_state(&mut bob, a, "online");
    drop(alice);
    // Seen closed by the server: the place is free again.
    let (third, _) = wait_login(&server, a, "alice");
    wait_friend_state(&mut bob, a, "online");
    second.send(&json!({"msgId": 3}));
    second.expect(4);
    wait_friend_state(&mut bob, a, "online");
    drop(third);
    wait_friend_state(&mut bob, a, "offline");
}

/// Logs `uid` in, retrying while errno 2 says every place is still taken.
fn wait_login(server: &Server, uid: i64, name: &str) -> (Client, Value) {
    let mut done = None;
    crate::support::wait_until("a place is free", || {
        let mut c = server.connect();
        c.uid = uid;
        c.name = name.to_owned();
        let v = c.request(json!({"msgId": 1, "uid": uid, "password": "secret"}));
        assert!(v["errno"] == 0 || v["errno"] == 2, "{v}");
        if v["errno"] == 0 {
            done = Some((c, v));
        }
        done.is_some()
    });
    done.expect("logged in")
}

/// Typing notices reach the other participant (not the typist's other
/// session) as `{"msgId":36,"conv","uid"}`, at most one per second per
/// session and conversation, and are never stored.
fn typing_is_relayed_once_a_second() {
    let server = Server::fresh_with(&["--sessions-per-user", "2"]);
    let alice = server.user("alice");
    let mut bob = server.user("bob");
    let mut s = sessions_of(&server, &alice, 1);
    s.insert(0, alice);
    let a = s[0].uid;
    bob.chat(a, "hi");
    let conv = s[0].expect(9)["conv"].as_str().expect("conv").to_owned();
    s[1].expect(9);

    for _ in 0..5 {
        s[0].send(&json!({"msgId": 36, "conv": conv}));
    }
    let want = json!({"msgId": 36, "conv": conv, "uid": a});
    assert_eq!(bob.expect(36), want);
    bob.expect_silence(Duration::from_millis(300));
    // Another session has its own allowance.
    s[1].send(&json!({"msgId": 36, "conv": conv}));
    assert_eq!(bob.expect(36), want);
    std::thread::sleep(Duration::from_millis(1100));
    s[0].send(&json!({"msgId": 36, "conv": conv}));
    assert_eq!(bob.expect(36), want, "a second later");
    for session in s.iter_mut() {
        session.expect_silence(Duration::from_millis(100));
    }
    // Not stored: the conversation still holds one message.
    assert_eq!(convs(&mut bob), [(conv.clone(), 1, 0, 1)]);
    // Not in the conversation: errno 6.
    let other = server.user("carol");
    let theirs = format!("d{}-{}", bob.uid.min(other.uid), bob.uid.max(other.uid));
    s[0].send(&json!({"msgId": 36, "conv": theirs}));
    let v = s[0].recv();
    assert_eq!(v["errno"], 6, "{v}");
}

/// Two nodes, `--sessions-per-user 3`: alice's two sessions on node 1 and
/// one on node 2 get bob's messages from node 2 and each other's
/// self-copies; a fourth login gets errno 2; her receipt reaches her other
/// sessions and bob, her typing bob; when her node-2 session has closed
/// and node 1 is SIGKILLed, bob sees her offline.
fn sessions_in_a_cluster() {
    let env = Env::get("sessions");
    let mut cluster = Cluster::start_with(&env, 2, "2s", &["--sessions-per-user", "3"]);
    let mut s0 = cluster.user_on(1, "alice");
    let mut bob = cluster.user_on(2, "bob");
    let (a, b) = (s0.uid, bob.uid);
    s0.send(&json!({"msgId": 10, "fid": b}));
    s0.expect_errno(16, 0);
    let (mut s1, _) = login_as(cluster.node(1).addr, a, "alice");
    // A third session on the other node (tests/suite/cluster_sessions.rs
    // checks more of it); the fourth is refused there.
    let (mut elsewhere, _) = login_as(cluster.node(2).addr, a, "alice");
    let mut fourth = cluster.node(2).connect();
    let v = fourth.request(json!({"msgId": 1, "uid": a, "password": "secret"}));
    assert_eq!(v["errno"], 2, "a fourth session: {v}");
    wait_friend_state(&mut bob, a, "online");

    bob.chat(a, "from node 2");
    for s in [&mut s0, &mut s1, &mut elsewhere] {
        let v = s.expect(9);
        assert_eq!(
            (v["msg"].as_str(), v["seq"].as_i64()),
            (Some("from node 2"), Some(1))
        );
    }
    s0.send(&chat_with_cid(b, "from node 1", "c1"));
    assert_eq!(s0.expect_errno(28, 0)["seq"], 2);
    let copy = s1.expect(9);
    assert_eq!(
        (copy["msg"].as_str(), copy["seq"].as_i64()),
        (Some("from node 1"), Some(2))
    );
    assert_eq!(elsewhere.expect(9)["seq"], 2, "a self-copy on node 2");
    assert_eq!(bob.expect(9)["seq"], 2);
    let conv = copy["conv"].as_str().expect("conv").to_owned();

    s0.send(&json!({"msgId": 33, "conv": conv, "seq": 2}));
    s0.expect_errno(34, 0);
    let want = json!({"msgId": 35, "conv": conv, "uid": a, "seq": 2});
    assert_eq!(s1.expect(35), want);
    assert_eq!(elsewhere.expect(35), want, "her session on node 2");
    assert_eq!(bob.expect(35), want, "a receipt across nodes");
    s1.send(&json!({"msgId": 36, "conv": conv}));
    assert_eq!(bob.expect(36), json!({"msgId": 36, "conv": conv, "uid": a}));

    drop(elsewhere);
    cluster.kill(1);
    wait_friend_state(&mut bob, a, "offline");
}
