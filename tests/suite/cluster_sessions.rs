//! Several sessions per user on several nodes (issue 14): two `chat-server`
//! nodes on one MySQL database and one Redis key prefix, clients connected
//! straight to the node each test picks, `--sessions-per-user` above 1.
//!
//! Redis counts each node's sessions of a user (`{prefix}:user:{uid}`, a
//! hash node → count); what a node delivers to its sessions of a user it
//! also routes to the user's other nodes. These tests check it end to end:
//! every session gets every message and self-copy in seq order, a READ
//! reaches the sessions on the other node, presence lasts until the last
//! session anywhere (also past a SIGKILL), the limit holds across nodes,
//! and typing is rate-limited per session across nodes.
//!
//! Needs MySQL and the shared Redis; without them the tests are reported
//! ignored, and fail under CI.

use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::cluster::wait_friend_state;
use crate::support::log::{chat_with_cid, group_with_cid, login_as, seqs, texts};
use crate::support::{wait_until, Client, Cluster, Env, Need, Test};

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    tests![
        sessions_on_two_nodes_get_every_message_and_self_copy,
        a_read_on_one_node_reaches_the_sessions_on_the_other,
        presence_lasts_until_the_last_session_on_any_node,
        a_dead_nodes_sessions_stop_counting,
        typing_is_rate_limited_per_session_across_nodes
    ]
    .into_iter()
    .map(|t| t.needs(&[Need::Mysql, Need::Redis]))
    .collect()
}

/// Liveness of the nodes: short, so that a killed node is dead soon.
const LIVENESS: &str = "2s";

/// Two nodes with `--sessions-per-user n`, no nginx.
fn two_nodes(env: &Env, n: usize) -> Cluster {
    Cluster::start_with(env, 2, LIVENESS, &["--sessions-per-user", &n.to_string()])
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

/// `n` chat messages (9) and `acks` SEND_ACKs (28) of `c`, in any mix: the
/// messages, and the seqs the acks gave `c`'s own messages.
fn collect(c: &mut Client, n: usize, acks: usize) -> (Vec<Value>, Vec<i64>) {
    let (mut got, mut own) = (Vec::new(), Vec::new());
    while got.len() < n || own.len() < acks {
        let v = c.recv();
        match v["msgId"].as_i64() {
            Some(28) => own.push(v["seq"].as_i64().unwrap_or(-1)),
            Some(9) => got.push(v),
            _ => panic!("{}: unexpected {v}", c.name),
        }
    }
    (got, own)
}

/// A login of `uid` on `addr` that must be refused with errno 2.
fn refused(addr: std::net::SocketAddr, uid: i64) {
    let mut c = Client::connect(addr);
    let v = c.request(json!({"msgId": 1, "uid": uid, "password": "secret"}));
    assert_eq!(
        (v["msgId"].as_i64(), v["errno"].as_i64()),
        (Some(2), Some(2)),
        "a login past the limit: {v}"
    );
}

/// `{prefix}:user:{uid}` becomes `want` (node id, count), in order.
fn wait_counts(env: &Env, uid: i64, want: &[(&str, i64)]) {
    let want: Vec<(String, i64)> = want.iter().map(|(n, c)| ((*n).to_owned(), *c)).collect();
    wait_until(&format!("{uid}'s sessions are counted as {want:?}"), || {
        env.redis.holders(uid) == want
    });
}

/// Three sessions of alice, two on node 1 and one on node 2, and bob on
/// node 2: bob's messages, each session's messages (self-copies for the
/// other two) and a group's posts reach every session once, in seq order,
/// whichever node they were sent on. The fourth login is refused on
/// either node; a logout frees a place for a login on the other node.
fn sessions_on_two_nodes_get_every_message_and_self_copy() {
    let env = Env::get("sessions-two");
    let cluster = two_nodes(&env, 3);
    let s0 = cluster.user_on(1, "alice");
    let mut bob = cluster.user_on(2, "bob");
    let (a, b) = (s0.uid, bob.uid);
    let (s1, _) = login_as(cluster.node(1).addr, a, "alice");
    let (s2, _) = login_as(cluster.node(2).addr, a, "alice");
    let mut s = [s0, s1, s2];
    wait_counts(&env, a, &[("node1", 2), ("node2", 1)]);
    refused(cluster.node(1).addr, a);
    refused(cluster.node(2).addr, a);

    // Interleaved: bob, then each session in turn, five rounds. Every
    // session must see every message but its own, in seq order.
    let rounds = 5;
    let mut sent_by: Vec<Vec<String>> = vec![Vec::new(); 3];
    for r in 0..rounds {
        let t = format!("b{r}");
        bob.send(&chat_with_cid(a, &t, &t));
        for (k, session) in s.iter_mut().enumerate() {
            let t = format!("s{k}-{r}");
            session.send(&chat_with_cid(b, &t, &t));
            sent_by[k].push(t);
        }
    }
    let total = rounds * 4;
    for (k, session) in s.iter_mut().enumerate() {
        let (got, own) = collect(session, total - rounds, rounds);
        let mut all: Vec<i64> = seqs(&got).into_iter().chain(own).collect();
        assert!(
            seqs(&got).windows(2).all(|w| w[0] < w[1]),
            "session {k}: in seq order: {:?}",
            seqs(&got)
        );
        all.sort_unstable();
        assert_eq!(
            all,
            (1..=total as i64).collect::<Vec<_>>(),
            "session {k}: every seq once"
        );
        let texts = texts(&got);
        assert!(
            sent_by[k].iter().all(|t| !texts.contains(t)),
            "session {k} got its own message back: {texts:?}"
        );
        let conv = got[0]["conv"].clone();
        assert!(got.iter().all(|m| m["conv"] == conv), "one conversation");
        session.expect_silence(Duration::from_millis(200));
    }
    let (to_bob, _) = collect(&mut bob, rounds * 3, rounds);
    assert!(
        seqs(&to_bob).windows(2).all(|w| w[0] < w[1]),
        "bob: in seq order"
    );

    // A group: bob's post (node 2) reaches all three; s2's (node 2)
    // reaches s0 and s1 on node 1 as self-copies.
    let gid = s[0].create_group("g", "d");
    bob.join_group(gid);
    bob.send(&group_with_cid(gid, "from bob", "g1"));
    bob.expect_errno(28, 0);
    for session in s.iter_mut() {
        let v = session.expect(13);
        assert_eq!(
            (v["msg"].as_str(), v["seq"].as_i64()),
            (Some("from bob"), Some(1))
        );
    }
    s[2].send(&group_with_cid(gid, "from s2", "g2"));
    s[2].expect_errno(28, 0);
    assert_eq!(bob.expect(13)["seq"], 2);
    for k in [0, 1] {
        let v = s[k].expect(13);
        assert_eq!(
            (v["msg"].as_str(), v["seq"].as_i64()),
            (Some("from s2"), Some(2))
        );
    }
    s[2].expect_silence(Duration::from_millis(200));

    // A logout on node 1 frees a place, taken on node 2.
    s[0].send(&json!({"msgId": 3}));
    s[0].expect(4);
    wait_counts(&env, a, &[("node1", 1), ("node2", 1)]);
    let (mut s3, _) = login_as(cluster.node(2).addr, a, "alice");
    wait_counts(&env, a, &[("node1", 1), ("node2", 2)]);
    refused(cluster.node(1).addr, a);
    bob.chat(a, "to three again");
    for c in s.iter_mut().skip(1).chain([&mut s3]) {
        assert_eq!(next_chat(c)["msg"], "to three again");
    }
    s[0].expect_silence(Duration::from_millis(200));
}

/// A READ on node 2: alice's sessions on node 1 get 35 RECEIPT within a
/// second, bob too; CONVS shows `unread` 0 on every session.
fn a_read_on_one_node_reaches_the_sessions_on_the_other() {
    let env = Env::get("sessions-read");
    let cluster = two_nodes(&env, 3);
    let s0 = cluster.user_on(1, "alice");
    let mut bob = cluster.user_on(1, "bob");
    let a = s0.uid;
    let (s1, _) = login_as(cluster.node(1).addr, a, "alice");
    let (s2, _) = login_as(cluster.node(2).addr, a, "alice");
    let mut s = [s0, s1, s2];
    wait_counts(&env, a, &[("node1", 2), ("node2", 1)]);
    for i in 0..3 {
        bob.chat(a, &format!("m{i}"));
    }
    let mut conv = String::new();
    for session in s.iter_mut() {
        for _ in 0..3 {
            conv = session.expect(9)["conv"].as_str().expect("conv").to_owned();
        }
        assert_eq!(unread(session, &conv), 3);
    }

    s[2].send(&json!({"msgId": 33, "conv": conv, "seq": 3}));
    assert_eq!(s[2].expect_errno(34, 0)["seq"], 3);
    let pushed = Instant::now();
    let want = json!({"msgId": 35, "conv": conv, "uid": a, "seq": 3});
    for k in [0, 1] {
        let got = s[k].try_recv(Duration::from_secs(1));
        assert_eq!(
            got.ok(),
            Some(want.clone()),
            "session {k} on node 1, within a second"
        );
    }
    assert!(pushed.elapsed() < Duration::from_secs(2));
    assert_eq!(bob.expect(35), want, "the other participant");
    s[2].expect_silence(Duration::from_millis(200));
    for session in s.iter_mut() {
        assert_eq!(unread(session, &conv), 0);
    }
}

/// `unread` of `conv` in `c`'s CONVS answer (-1: not listed).
fn unread(c: &mut Client, conv: &str) -> i64 {
    c.send(&json!({"msgId": 31}));
    let v = c.expect_errno(32, 0);
    v["convs"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|e| e["conv"] == conv)
        .and_then(|e| e["unread"].as_i64())
        .unwrap_or(-1)
}

/// bob (node 1) sees alice online while any of her sessions is, on nodes
/// 2 and 3: her session on node 2 logs out, node 3's keeps her online; a
/// new one on node 2 keeps her online through node 3's SIGKILL (past its
/// liveness, so node 3's count no longer counts); when that one closes
/// she is offline, although the dead node's count is still in Redis.
fn presence_lasts_until_the_last_session_on_any_node() {
    let env = Env::get("sessions-presence");
    let mut cluster = Cluster::start_with(&env, 3, LIVENESS, &["--sessions-per-user", "2"]);
    let mut s2 = cluster.user_on(2, "alice");
    let mut bob = cluster.user_on(1, "bob");
    let a = s2.uid;
    s2.send(&json!({"msgId": 10, "fid": bob.uid}));
    s2.expect_errno(16, 0);
    let (_s3, _) = login_as(cluster.node(3).addr, a, "alice");
    wait_counts(&env, a, &[("node2", 1), ("node3", 1)]);
    wait_friend_state(&mut bob, a, "online");

    s2.send(&json!({"msgId": 3}));
    s2.expect(4);
    wait_counts(&env, a, &[("node3", 1)]);
    assert_eq!(friend_state(&mut bob, a), "online", "her session on node 3");

    let (again, _) = login_as(cluster.node(2).addr, a, "alice");
    cluster.kill(3);
    // Past node 3's liveness: its session is gone, node 2's remains.
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(friend_state(&mut bob, a), "online", "her session on node 2");
    drop(again);
    wait_friend_state(&mut bob, a, "offline");
    assert_eq!(
        env.redis.holders(a),
        [("node3".to_owned(), 1)],
        "the dead node's count stays until a claim meets it, and counts for nothing"
    );
}

/// A node's SIGKILL frees its sessions' places once its alive key has
/// expired: the next logins elsewhere count only the live nodes (and
/// remove the dead node's count); a restart under the same id clears it too.
fn a_dead_nodes_sessions_stop_counting() {
    let env = Env::get("sessions-dead");
    let mut cluster = two_nodes(&env, 2);
    let s1 = cluster.user_on(1, "alice");
    let a = s1.uid;
    let (_s2, _) = login_as(cluster.node(2).addr, a, "alice");
    wait_counts(&env, a, &[("node1", 1), ("node2", 1)]);
    refused(cluster.node(1).addr, a);
    cluster.kill(2);
    let mut again = None;
    wait_until("a place frees once node 2 is dead", || {
        let mut c = Client::connect(cluster.node(1).addr);
        c.uid = a;
        c.name = "alice".to_owned();
        let v = c.request(json!({"msgId": 1, "uid": a, "password": "secret"}));
        assert!(v["errno"] == 0 || v["errno"] == 2, "{v}");
        if v["errno"] == 0 {
            again = Some(c);
        }
        again.is_some()
    });
    wait_counts(&env, a, &[("node1", 2)]);
    refused(cluster.node(1).addr, a);
    drop(s1);
    wait_counts(&env, a, &[("node1", 1)]);
    cluster.restart(&env, 2);
    let (_s3, _) = login_as(cluster.node(2).addr, a, "alice");
    wait_counts(&env, a, &[("node1", 1), ("node2", 1)]);
}

/// Typing in a conversation: from alice's session on node 1 to bob's two
/// sessions on nodes 1 and 2, at most one notice a second per session;
/// alice's session on node 2 has an allowance of its own and gets none of
/// her own notices.
fn typing_is_rate_limited_per_session_across_nodes() {
    let env = Env::get("sessions-typing");
    let cluster = two_nodes(&env, 2);
    let mut a1 = cluster.user_on(1, "alice");
    let mut b1 = cluster.user_on(1, "bob");
    let a = a1.uid;
    let (mut a2, _) = login_as(cluster.node(2).addr, a, "alice");
    let (mut b2, _) = login_as(cluster.node(2).addr, b1.uid, "bob");
    wait_counts(&env, b1.uid, &[("node1", 1), ("node2", 1)]);
    b1.chat(a, "hi");
    let conv = a1.expect(9)["conv"].as_str().expect("conv").to_owned();
    a2.expect(9);
    assert_eq!(b2.expect(9)["msg"], "hi", "bob's self-copy on node 2");

    for _ in 0..5 {
        a1.send(&json!({"msgId": 36, "conv": conv}));
    }
    let want = json!({"msgId": 36, "conv": conv, "uid": a});
    for b in [&mut b1, &mut b2] {
        assert_eq!(b.expect(36), want);
        b.expect_silence(Duration::from_millis(300));
    }
    a2.send(&json!({"msgId": 36, "conv": conv}));
    for b in [&mut b1, &mut b2] {
        assert_eq!(b.expect(36), want, "the other session's allowance");
        b.expect_silence(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(1100));
    a1.send(&json!({"msgId": 36, "conv": conv}));
    for b in [&mut b1, &mut b2] {
        assert_eq!(b.expect(36), want, "a second later");
    }
    a1.expect_silence(Duration::from_millis(100));
    a2.expect_silence(Duration::from_millis(100));
}

/// bob's refresh: alice's `state`.
fn friend_state(c: &mut Client, fid: i64) -> String {
    crate::support::cluster::refresh_friends(c)
        .into_iter()
        .find(|(id, _)| *id == fid)
        .map(|(_, s)| s)
        .unwrap_or_default()
}
