//! Cluster mode when things break: a node killed with SIGKILL, and a Redis
//! outage with recovery. Real processes: three (or two) `chat-server`
//! nodes, nginx, MySQL; the outage test runs a `redis-server` of its own.
//!
//! Needs MySQL, nginx, and the shared Redis or the `redis-server` program:
//! without them the tests are reported ignored, and fail under CI.

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
    // The kill test sends a message right after the SIGKILL and expects it
    // stored: on a loaded machine Redis may still count the dead node's
    // subscription when the PUBLISH arrives (the message then goes to the
    // dead node), so it runs alone.
    (killed.into_iter().map(|t| t.needs(CLUSTER).alone()))
        .chain(outage.into_iter().map(|t| t.needs(&outage_needs)))
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
