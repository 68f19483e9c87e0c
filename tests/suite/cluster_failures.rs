//! Cluster mode when things break: a node killed with SIGKILL, a Redis
//! outage with recovery, and a Redis that hangs (`SIGSTOP`, `DEBUG SLEEP`)
//! and then answers again. Real processes: three (or two) `chat-server`
//! nodes, nginx, MySQL; the outage and hang tests run a `redis-server` of
//! their own.
//!
//! Needs MySQL, nginx (not the hang tests, which pick each client's node),
//! and the shared Redis or the `redis-server` program: without them the
//! tests are reported ignored, and fail under CI.

use std::time::{Duration, Instant};

use crate::cluster::CLUSTER;
use crate::support::client::{assert_gapless, logged, nested, RecvError};
use crate::support::cluster::{offline_texts, refresh_friends, wait_friend_state};
use crate::support::redis::PrivateRedis;
use crate::support::{wait_until, Client, Cluster, Env, Need, Server, Test};
use serde_json::json;

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    let killed = tests![a_killed_node_s_users_go_offline];
    let outage = tests![a_redis_outage_degrades_to_offline_storage];
    let outage_needs = [Need::Mysql, Need::RedisServer, Need::Nginx];
    // The hang tests choose each client's node: no nginx.
    let hung = tests![
        a_login_during_a_hung_redis_holds_no_worker,
        a_message_during_a_hung_redis_arrives_without_a_new_login,
        messages_during_a_hung_redis_arrive_once_each_in_order,
        a_double_login_during_a_hung_redis_is_resolved,
    ];
    let hung_needs = [Need::Mysql, Need::RedisServer];
    // The kill test sends a message right after the SIGKILL and expects it
    // stored: on a loaded machine Redis may still count the dead node's
    // subscription when the PUBLISH arrives (the message then goes to the
    // dead node), so it runs alone.
    (killed.into_iter().map(|t| t.needs(CLUSTER).alone()))
        .chain(outage.into_iter().map(|t| t.needs(&outage_needs)))
        .chain(hung.into_iter().map(|t| t.needs(&hung_needs)))
        .collect()
}

fn befriend(a: &mut Client, fid: i64) {
    a.send(&json!({"msgId": 10, "fid": fid}));
    a.expect_errno(16, 0);
}

/// Logs `uid` in on a new connection to `node`; returns the ack too.
fn login_on(node: &Server, uid: i64, name: &str) -> (Client, serde_json::Value) {
    let mut c = node.connect();
    c.uid = uid;
    c.name = name.to_owned();
    let ack = c.login_ok("secret");
    (c, ack)
}

/// A node killed with SIGKILL: its users go offline within the liveness,
/// messages to them wait in the log for their next login elsewhere, and
/// the node serves again after a restart.
fn a_killed_node_s_users_go_offline() {
    let env = Env::get("kill");
    let mut cluster = Cluster::start(&env, 3, "1s");
    let mut a = cluster.user_on(1, "alice");
    let b = cluster.user_on(2, "bob");
    let e = cluster.user_on(2, "erin");
    let (bid, eid) = (b.uid, e.uid);
    befriend(&mut a, bid);
    befriend(&mut a, eid);
    wait_friend_state(&mut a, bid, "online");

    cluster.kill(2);
    drop((b, e));
    // At once: node 2's subscription is gone, so messages are stored.
    a.chat(bid, "after the kill 1");
    // Within the liveness (1 s), node 2's users are offline everywhere.
    let t = Instant::now();
    wait_friend_state(&mut a, bid, "offline");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    a.chat(bid, "after the kill 2");
    wait_until("both messages are stored", || {
        env.db.chatlog_rows_from(a.uid) == 2
    });

    // bob logs in on node 3 (taking the dead node's claim over) and gets
    // both, in order, as seq 1 and 2 of alice and bob's conversation;
    // then chats live again (seq 3).
    let (mut b3, ack) = login_on(cluster.node(3), bid, "bob");
    assert_eq!(
        offline_texts(&ack),
        ["after the kill 1", "after the kill 2"]
    );
    let conv = assert_gapless(&nested(&ack, "offlinemsgs"), 1);
    assert_eq!(env.holder(bid).as_deref(), Some("node3"));
    a.chat(bid, "live again");
    let live = b3.expect(9);
    assert_eq!(
        (live["from"].as_i64(), live["msg"].as_str()),
        (Some(a.uid), Some("live again"))
    );
    assert_eq!((logged(&live).conv, logged(&live).seq), (conv, 3));

    // node 2 comes back under its id: its old claims (erin's) are cleared,
    // nobody of it stays online, and it serves again.
    cluster.restart(&env, 2);
    wait_until("erin's stale claim is gone", || env.holder(eid).is_none());
    assert!(refresh_friends(&mut a).contains(&(eid, "offline".to_owned())));
    let (mut e2, _) = login_on(cluster.node(2), eid, "erin");
    a.chat(eid, "welcome back");
    assert_eq!(e2.recv_chat(), (a.uid, "welcome back".to_owned()));
}

/// During a Redis outage each node serves its own users and cross-node
/// messages are only stored in the log; once Redis is back, the next live
/// message's gap is filled, so the recipient gets the stored ones first,
/// in order, and not again at the next login.
fn a_redis_outage_degrades_to_offline_storage() {
    let mut redis = PrivateRedis::start();
    let env = Env::on("outage", &redis.url());
    let cluster = Cluster::start(&env, 2, "2s");
    let mut a = cluster.user_on(1, "alice");
    let mut a1 = cluster.user_on(1, "ann"); // alice's node
    let mut b = cluster.user_on(2, "bob");
    befriend(&mut a, b.uid);
    a.chat(b.uid, "before");
    assert_eq!(b.recv_chat(), (a.uid, "before".to_owned()));

    redis.kill();
    // Each node keeps serving its own users...
    a.chat(a1.uid, "local");
    assert_eq!(a1.recv_chat(), (a.uid, "local".to_owned()));
    // ...and cross-node messages go to the log, not into the void
    // ("before", "local" and these two).
    a.chat(b.uid, "during 1");
    a.chat(b.uid, "during 2");
    wait_until("the outage messages are stored", || {
        env.db.chatlog_rows_from(a.uid) == 4
    });
    assert_eq!(
        b.try_recv(Duration::from_millis(300)),
        Err(RecvError::Timeout)
    );
    // A new login during the outage works (locally).
    let carol = {
        let mut c = cluster.node(2).connect();
        c.register("carol", "secret");
        c.login_ok("secret");
        c
    };

    // Redis returns (empty): nodes reconnect by themselves, resubscribe,
    // republish presence, and cross-node delivery resumes.
    assert!(redis.restart(), "redis-server restarts");
    wait_until("presence is republished", || {
        env.holder(a.uid).as_deref() == Some("node1")
            && env.holder(b.uid).as_deref() == Some("node2")
            && env.holder(carol.uid).as_deref() == Some("node2")
    });
    cluster.wait_subscribed(&env, 1);
    cluster.wait_subscribed(&env, 2);
    wait_friend_state(&mut a, b.uid, "online");
    a.chat(b.uid, "after");
    // "after" is seq 4 of the conversation, bob was handed seq 1: the gap
    // is filled from the log, so the stored ones come first, in order.
    let got: Vec<serde_json::Value> = (0..3).map(|_| b.expect(9)).collect();
    let texts: Vec<&str> = got
        .iter()
        .map(|m| m["msg"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(texts, ["during 1", "during 2", "after"], "{got:?}");
    assert_gapless(&got, 2);
    b.expect_silence(Duration::from_millis(300));

    // Handed once: bob's next login has none of them again.
    b.send(&json!({"msgId": 3}));
    b.expect_errno(4, 0);
    wait_until("bob's claim is released", || env.holder(b.uid).is_none());
    let (_, ack) = login_on(cluster.node(1), b.uid, "bob");
    assert_eq!(offline_texts(&ack), Vec::<String>::new(), "{ack}");
}

/// Sends `req` and returns the reply and how long it took.
fn timed(c: &mut Client, req: serde_json::Value, reply: i64) -> (serde_json::Value, Duration) {
    let t = Instant::now();
    c.send(&req);
    let v = c.expect(reply);
    (v, t.elapsed())
}

/// A login while Redis hangs (`SIGSTOP`: connections are accepted, nothing
/// is answered) holds no database worker: with one worker per node, other
/// users' requests are answered meanwhile; the login itself is admitted
/// locally, friend lists answer at once (remote friends offline), and when
/// Redis answers again presence is reconciled: the new login is claimed
/// for its node, a logout of the hang is released.
fn a_login_during_a_hung_redis_holds_no_worker() {
    let redis = PrivateRedis::start();
    let env = Env::on("hung-login", &redis.url());
    let cluster = Cluster::start_with(&env, 2, "10s", &["--workers", "1"]);
    let mut a = cluster.user_on(1, "alice");
    let mut b = cluster.user_on(2, "bob");
    let mut e = cluster.user_on(2, "erin");
    befriend(&mut a, b.uid);
    let mut d = cluster.connect();
    let did = d.register("dave", "secret");
    let mut d = cluster.node(1).connect();
    d.uid = did;
    d.name = "dave".into();

    redis.pause();
    // dave's login needs a claim that cannot be answered; alice, on the
    // same (only) worker of node 1, keeps being served meanwhile.
    d.send(&json!({"msgId": 1, "uid": did, "password": "secret"}));
    let mut slowest = Duration::ZERO;
    let end = Instant::now() + Duration::from_secs(4);
    while Instant::now() < end {
        let (_, took) = timed(&mut a, json!({"msgId": 31}), 32);
        slowest = slowest.max(took);
        std::thread::sleep(Duration::from_millis(100));
    }
    // (A blocked worker would hold it for seconds: the claim's timeout.)
    assert!(
        slowest < Duration::from_millis(1500),
        "a CONVS took {slowest:?}"
    );
    // Admitted locally, within a few seconds.
    let ack = d.expect(2);
    assert_eq!(ack["errno"], 0, "{ack}");
    // The friend list does not wait for Redis either: bob shows offline.
    let (v, took) = timed(&mut a, json!({"msgId": 7}), 8);
    assert!(
        took < Duration::from_millis(1500),
        "a refresh took {took:?}"
    );
    assert!(
        crate::support::cluster::friend_states(&v).contains(&(b.uid, "offline".to_owned())),
        "{v}"
    );
    // erin logs out during the hang: her release cannot be sent.
    e.send(&json!({"msgId": 3}));
    e.expect_errno(4, 0);

    redis.resume();
    wait_until("presence is reconciled", || {
        env.holder(did).as_deref() == Some("node1")
            && env.holder(e.uid).is_none()
            && env.holder(b.uid).as_deref() == Some("node2")
    });
    wait_friend_state(&mut a, b.uid, "online");
    // Both ways work again.
    d.chat(b.uid, "hello from dave");
    assert_eq!(b.recv_chat(), (did, "hello from dave".to_owned()));
}

/// A message to a user online on another node, sent while Redis hangs
/// (`DEBUG SLEEP`, longer than the liveness, so that every node's alive
/// key has expired when Redis wakes), reaches that user once Redis answers
/// again, without a new login and without a later message to fill the gap.
fn a_message_during_a_hung_redis_arrives_without_a_new_login() {
    across_a_hang("hung-msg", &[]);
}

/// As above with messages sent after the sender's node noticed the hang
/// (stored, not routed, while its link is down): all of them arrive by
/// themselves, once each, in order.
fn messages_during_a_hung_redis_arrive_once_each_in_order() {
    across_a_hang("hung-msgs", &["during 2", "during 3"]);
}

/// alice (node 1) sends bob (node 2) "during 1" as Redis falls asleep for
/// 5 s (its route times out after 2 s; Redis may still run it when it
/// wakes, and find bob's node dead then), and `later` 2.5 s into the hang;
/// bob must get them all once Redis wakes, in order, once each.
fn across_a_hang(test: &str, later: &[&str]) {
    let redis = PrivateRedis::with_debug();
    let env = Env::on(test, &redis.url());
    let cluster = Cluster::start_with(&env, 2, "2s", &[]);
    let mut a = cluster.user_on(1, "alice");
    let mut b = cluster.user_on(2, "bob");
    befriend(&mut a, b.uid);
    a.chat(b.uid, "before");
    assert_eq!(b.recv_chat(), (a.uid, "before".to_owned()));

    let hang = Duration::from_secs(5);
    let hung_at = Instant::now();
    assert!(redis.debug_sleep(hang), "DEBUG SLEEP has started");
    a.chat(b.uid, "during 1");
    if !later.is_empty() {
        std::thread::sleep(Duration::from_millis(2500).saturating_sub(hung_at.elapsed()));
    }
    for text in later {
        a.chat(b.uid, text);
    }
    let sent = 1 + later.len();
    wait_until("the hang's messages are committed", || {
        env.db.chatlog_rows_from(a.uid) == 1 + sent as i64
    });
    // Nothing can cross while Redis sleeps (until shortly before it wakes).
    let left = hang.saturating_sub(hung_at.elapsed() + Duration::from_millis(500));
    assert_eq!(b.try_recv(left), Err(RecvError::Timeout));

    // Redis answers again: bob is caught up by itself.
    let got: Vec<serde_json::Value> = (0..sent).map(|_| b.expect(9)).collect();
    let texts: Vec<&str> = got
        .iter()
        .map(|m| m["msg"].as_str().unwrap_or(""))
        .collect();
    let want: Vec<&str> = std::iter::once("during 1")
        .chain(later.iter().copied())
        .collect();
    assert_eq!(texts, want, "{got:?}");
    assert_gapless(&got, 2);
    b.expect_silence(Duration::from_millis(500));
    a.chat(b.uid, "after");
    let after = b.expect(9);
    assert_eq!(after["msg"], "after", "{after}");
    assert_eq!(logged(&after).seq, 2 + sent as i64);
}

/// A second login of an account on another node while Redis hangs is
/// admitted (presence cannot be checked); when Redis answers again, the
/// session that holds the claim wins and the other one gets errno 2 and is
/// closed, so no session is left that receives nothing. The winner keeps
/// receiving from every node.
fn a_double_login_during_a_hung_redis_is_resolved() {
    let redis = PrivateRedis::start();
    let env = Env::on("hung-double", &redis.url());
    let cluster = Cluster::start_with(&env, 3, "10s", &[]);
    let mut b2 = cluster.user_on(2, "bob");
    let bid = b2.uid;
    let mut c = cluster.user_on(3, "carol");
    befriend(&mut c, bid);

    redis.pause();
    let mut b1 = cluster.node(1).connect();
    let ack = b1.request(json!({"msgId": 1, "uid": bid, "password": "secret"}));
    assert_eq!(
        (ack["msgId"].as_i64(), ack["errno"].as_i64()),
        (Some(2), Some(0)),
        "{ack}"
    );
    redis.resume();

    // node 1 finds node 2 holding bob: its session is told and closed.
    let last = b1.expect(27);
    assert_eq!(last["errno"], 2, "{last}");
    b1.expect_closed(Duration::from_secs(5));
    assert_eq!(env.holder(bid).as_deref(), Some("node2"));
    // node 2's session, the one that holds the claim, receives.
    c.chat(bid, "to the winner");
    assert_eq!(b2.recv_chat(), (c.uid, "to the winner".to_owned()));
    // And bob can log in again once he logs out there.
    b2.send(&json!({"msgId": 3}));
    b2.expect_errno(4, 0);
    wait_until("bob's claim is released", || env.holder(bid).is_none());
    let (mut b1, _) = login_on(cluster.node(1), bid, "bob");
    assert_eq!(env.holder(bid).as_deref(), Some("node1"));
    c.chat(bid, "on node 1");
    assert_eq!(b1.recv_chat(), (c.uid, "on node 1".to_owned()));
}
