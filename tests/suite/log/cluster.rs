//! The message log in cluster mode: real `chat-server` nodes on one MySQL
//! database, Redis and nginx (see [`crate::support::cluster`]).
//!
//! * a cid sent on one node and retried on another gets the original ack
//!   and is delivered once;
//! * two nodes posting into one group at once number it gapless and
//!   unique, and every member on either node sees the same order;
//! * Redis killed and restarted (empty) mid-stream, users connected on
//!   two nodes: every message reaches them live, in order, once, without a
//!   new login, and SYNC agrees.
//!
//! Needs MySQL, nginx and the shared Redis (or, for the outage, the
//! `redis-server` program): without them the tests are reported ignored,
//! and fail under CI.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::joined;
use super::order::{check_acks, check_poster_views, check_view, post_and_listen};
use crate::cluster::CLUSTER;
use crate::support::log::{
    chat_with_cid, group_with_cid, login_again, login_as, one_to, seqs, texts, Received,
};
use crate::support::redis::PrivateRedis;
use crate::support::{wait_until, Client, Cluster, Env, Need, Test};

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    let shared = tests![cid_retry_across_nodes, two_nodes_post_into_one_group];
    let outage = tests![redis_restart_mid_stream_loses_nothing];
    let outage_needs = [Need::Mysql, Need::RedisServer, Need::Nginx];
    (shared.into_iter().map(|t| t.needs(CLUSTER)))
        .chain(outage.into_iter().map(|t| t.needs(&outage_needs)))
        .collect()
}

/// The window of the concurrent posters: small, so that the two nodes'
/// messages alternate in the conversation and cross in Redis on their way
/// to the readers (which the receiving node must put back in seq order).
const ALTERNATE: usize = 4;

/// Logs `c` out and waits until Redis no longer names its node, so that
/// another node may log the account in.
fn logout_everywhere(env: &Env, c: &mut Client) {
    c.send(&json!({"msgId": 3}));
    c.expect_errno(4, 0);
    let uid = c.uid;
    wait_until("the claim is released", || env.holder(uid).is_none());
}

/// alice sends 20 chats and a group chat with cids on node 1; logged in on
/// node 2 she retries every cid: the original acks, nothing delivered
/// twice, each message once in SYNC. And back on node 1, once more. Then a
/// burst on node 1 whose connection drops before any ack, retried on node
/// 2: each stored and delivered once.
fn cid_retry_across_nodes() {
    const N: usize = 20;
    let env = Env::get("log-retry");
    let cluster = Cluster::start(&env, 2, "2s");
    let mut alice = cluster.user_on(1, "alice");
    let mut bob = cluster.user_on(2, "bob");
    let (a, b) = (alice.uid, bob.uid);
    let gid = alice.create_group("retry", "");
    bob.join_group(gid);
    let mut msgs: Vec<Value> = (0..N)
        .map(|i| chat_with_cid(b, &format!("once {i}"), &format!("x{i}")))
        .collect();
    msgs.push(group_with_cid(gid, "group once", "xg"));
    let first = alice.post_acked(&msgs);
    let conv = first[0].conv.clone();
    let got: Vec<i64> = first[..N].iter().map(|a| a.seq).collect();
    assert_eq!(got, one_to(N as i64));
    assert_eq!(first[N].seq, 1);
    // Two conversations: their relative order is not promised.
    let live = bob.recv_live(N + 1);
    let (d, g): (Vec<Value>, Vec<Value>) = live.into_iter().partition(|m| m["conv"] == conv);
    assert_eq!(texts(&d), texts(&msgs[..N]));
    assert_eq!(texts(&g), ["group once"]);

    for node in [2, 1] {
        logout_everywhere(&env, &mut alice);
        let (again, _) = login_as(cluster.node(node).addr, a, "alice");
        alice = again;
        assert_eq!(alice.post_acked(&msgs), first, "retried on node {node}");
        bob.expect_silence(Duration::from_millis(500));
    }
    let all = bob.sync_all(&conv);
    assert_eq!(seqs(&all), one_to(N as i64));
    assert_eq!(texts(&all), texts(&msgs[..N]));
    assert_eq!(texts(&bob.sync_all(&first[N].conv)), ["group once"]);

    // A burst on node 1 and the connection dropped before any ack; the
    // same cids again on node 2: numbered N+1.. in order, delivered once.
    let more: Vec<Value> = (0..N)
        .map(|i| chat_with_cid(b, &format!("dropped {i}"), &format!("y{i}")))
        .collect();
    let burst: String = more.iter().map(Value::to_string).collect();
    alice.send_raw(burst.as_bytes());
    drop(alice);
    let mut alice = login_again(cluster.node(2).addr, a, "alice");
    let acks = alice.post_acked(&more);
    let want: Vec<i64> = (N as i64 + 1..=2 * N as i64).collect();
    assert_eq!(acks.iter().map(|a| a.seq).collect::<Vec<_>>(), want);
    let live = bob.recv_live(N);
    assert_eq!(texts(&live), texts(&more));
    bob.expect_silence(Duration::from_millis(500));
    assert_eq!(seqs(&bob.sync_all(&conv)), one_to(2 * N as i64));
}

/// alice on node 1 and bob on node 2 post 500 group messages each at once;
/// carol (node 1) and dave (node 2) only read. Seq 1..1000 once each; each
/// member's live view is in seq order; SYNC on either node agrees. Then
/// carol and dave post 500 each into their one-to-one conversation at
/// once, from the two nodes: the same.
fn two_nodes_post_into_one_group() {
    const EACH: usize = 500;
    const N: usize = 2 * EACH;
    let env = Env::get("log-posters");
    let cluster = Cluster::start(&env, 2, "2s");
    let mut alice = cluster.user_on(1, "alice");
    let mut bob = cluster.user_on(2, "bob");
    let mut carol = cluster.user_on(1, "carol");
    let mut dave = cluster.user_on(2, "dave");
    let gid = alice.create_group("two nodes", "");
    for c in [&mut bob, &mut carol, &mut dave] {
        c.join_group(gid);
    }
    let readers: Vec<_> = [carol, dave]
        .into_iter()
        .map(|mut c| {
            thread::spawn(move || {
                let live = c.recv_live(N);
                (c, live)
            })
        })
        .collect();
    let posters: Vec<_> = [alice, bob]
        .into_iter()
        .enumerate()
        .map(|(k, c)| {
            let msgs: Vec<Value> = (0..EACH)
                .map(|i| group_with_cid(gid, &format!("n{k} {i}"), &format!("n{k}-{i}")))
                .collect();
            thread::spawn(move || {
                let (_c, got) = post_and_listen(c, msgs.clone(), ALTERNATE, EACH);
                (msgs, got)
            })
        })
        .collect();
    let results: Vec<(Vec<Value>, Received)> = posters.into_iter().map(joined).collect();
    let conv = results[0].1.acks[0].conv.clone();
    let by_seq = check_acks(&results, &conv, N);
    check_poster_views(&results, &by_seq);
    let readers: Vec<Client> = readers
        .into_iter()
        .enumerate()
        .map(|(k, h)| {
            let (mut c, live) = joined(h);
            check_view(&format!("reader {k}"), &live, &by_seq);
            assert_eq!(c.sync_all(&conv), live, "reader {k}: SYNC as delivered");
            c
        })
        .collect();

    // And carol (node 1) and dave (node 2) into their one-to-one
    // conversation, at once.
    let mut readers = readers.into_iter();
    let (Some(carol), Some(dave)) = (readers.next(), readers.next()) else {
        panic!("two readers")
    };
    let (c, d) = (carol.uid, dave.uid);
    let side = |me: Client, to: i64, tag: &'static str| {
        let msgs: Vec<Value> = (0..EACH)
            .map(|i| chat_with_cid(to, &format!("{tag} {i}"), &format!("{tag}{i}")))
            .collect();
        thread::spawn(move || {
            let (me, got) = post_and_listen(me, msgs.clone(), ALTERNATE, EACH);
            (me, msgs, got)
        })
    };
    let (hc, hd) = (side(carol, d, "c"), side(dave, c, "d"));
    let (mut carol, mc, gc) = joined(hc);
    let (_dave, md, gd) = joined(hd);
    let conv = gc.acks[0].conv.clone();
    let results = [(mc, gc), (md, gd)];
    let by_seq = check_acks(&results, &conv, 2 * EACH);
    check_poster_views(&results, &by_seq);
    assert_eq!(
        texts(&carol.sync_all(&conv)),
        by_seq.into_values().collect::<Vec<_>>()
    );
}

/// What the sender of the outage test does: one chat to bob and one group
/// chat per step, every 10 ms, until told to stop and then 50 steps more.
fn outage_sender(
    mut alice: Client,
    bob: i64,
    gid: i64,
    stop: Arc<AtomicBool>,
) -> (Client, Vec<Value>) {
    let mut sent = Vec::new();
    let mut extra = 0;
    let mut i = 0;
    while extra < 50 {
        if stop.load(Ordering::Acquire) {
            extra += 1;
        }
        let pair = [
            chat_with_cid(bob, &format!("d{i}"), &format!("d{i}")),
            group_with_cid(gid, &format!("g{i}"), &format!("g{i}")),
        ];
        alice.post_acked(&pair);
        sent.extend(pair);
        i += 1;
        assert!(i < 5_000, "the outage never ended");
        thread::sleep(Duration::from_millis(10));
    }
    (alice, sent)
}

/// Reads `c` until it holds `want` messages of each of `convs`, at most
/// `within`; returns what came, in order.
fn collect_live(c: &mut Client, want: usize, convs: &[&str], within: Duration) -> Vec<Value> {
    let end = Instant::now() + within;
    let mut live: Vec<Value> = Vec::new();
    let done = |live: &[Value]| {
        convs
            .iter()
            .all(|cv| live.iter().filter(|m| m["conv"] == *cv).count() >= want)
    };
    while !done(&live) {
        assert!(
            Instant::now() < end,
            "{}: only {} messages",
            c.name,
            live.len()
        );
        match c.try_recv(Duration::from_millis(500)) {
            Ok(v) if v["msgId"] == 9 || v["msgId"] == 13 => live.push(v),
            Ok(v) => panic!("{}: unexpected {v}", c.name),
            Err(_) => {} // a quiet spell (the outage); the deadline decides
        }
    }
    live
}

/// The live view of `conv` in `live`: `n` seqs from `from` on, in order,
/// once each.
fn check_conv_view(who: &str, live: &[Value], conv: &str, from: i64, n: usize) {
    let got: Vec<Value> = live.iter().filter(|m| m["conv"] == conv).cloned().collect();
    let want: Vec<i64> = (from..from + n as i64).collect();
    assert_eq!(seqs(&got), want, "{who}'s live view of {conv}");
}

/// Restarts `redis` and waits until the cluster is whole again: `uid`'s
/// presence republished by node 2, both nodes subscribed.
fn redis_back(redis: &mut PrivateRedis, env: &Env, cluster: &Cluster, uid: i64) {
    assert!(redis.restart(), "redis-server restarts");
    wait_until("presence is republished", || {
        env.holder(uid).as_deref() == Some("node2")
    });
    cluster.wait_subscribed(env, 1);
    cluster.wait_subscribed(env, 2);
}

/// Users on two nodes, a stream of chats and group chats from node 1 to
/// node 2; Redis is killed mid-stream and restarted empty. bob and carol
/// (node 2) stay connected and receive every message live, in seq order,
/// once, without logging in again. Then Redis goes down again while
/// messages are sent and comes back with no message after: they arrive
/// all the same. SYNC then agrees.
fn redis_restart_mid_stream_loses_nothing() {
    let mut redis = PrivateRedis::start();
    let env = Env::on("log-outage", &redis.url());
    let cluster = Cluster::start(&env, 2, "2s");
    let mut alice = cluster.user_on(1, "alice");
    let mut bob = cluster.user_on(2, "bob");
    let mut carol = cluster.user_on(2, "carol");
    let gid = alice.create_group("outage", "");
    bob.join_group(gid);
    carol.join_group(gid);
    let b = bob.uid;
    // Learn the two conversations from the first acks.
    let first = alice.post_acked(&[
        chat_with_cid(b, "first", "first-d"),
        group_with_cid(gid, "first g", "first-g"),
    ]);
    let (dconv, gconv) = (first[0].conv.clone(), first[1].conv.clone());
    assert_eq!(bob.recv_live(2).len(), 2);
    assert_eq!(carol.recv_live(1).len(), 1);

    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let stop = stop.clone();
        thread::spawn(move || outage_sender(alice, b, gid, stop))
    };
    thread::sleep(Duration::from_millis(800));
    redis.kill();
    thread::sleep(Duration::from_millis(1_500));
    redis_back(&mut redis, &env, &cluster, b);
    stop.store(true, Ordering::Release);
    let (mut alice, mut sent) = joined(sender);
    let steps = sent.len() / 2;
    eprintln!("{steps} chats and {steps} group chats across the outage");

    let within = Duration::from_secs(30);
    let bobs = collect_live(&mut bob, steps, &[&dconv, &gconv], within);
    let carols = collect_live(&mut carol, steps, &[&gconv], within);
    bob.expect_silence(Duration::from_millis(300));
    carol.expect_silence(Duration::from_millis(300));
    // Seq 1 of each conversation came before the outage.
    check_conv_view("bob", &bobs, &dconv, 2, steps);
    check_conv_view("bob", &bobs, &gconv, 2, steps);
    check_conv_view("carol", &carols, &gconv, 2, steps);

    // Messages sent only while Redis is down, none after: no later message
    // reveals the gap, so only the reconciliation after the link is back
    // can bring them.
    const QUIET: usize = 20;
    redis.kill();
    let quiet: Vec<Value> = (0..QUIET)
        .flat_map(|i| {
            [
                chat_with_cid(b, &format!("quiet d{i}"), &format!("qd{i}")),
                group_with_cid(gid, &format!("quiet g{i}"), &format!("qg{i}")),
            ]
        })
        .collect();
    alice.post_acked(&quiet);
    redis_back(&mut redis, &env, &cluster, b);
    let bobs = collect_live(&mut bob, QUIET, &[&dconv, &gconv], within);
    let carols = collect_live(&mut carol, QUIET, &[&gconv], within);
    let from = steps as i64 + 2;
    check_conv_view("bob", &bobs, &dconv, from, QUIET);
    check_conv_view("bob", &bobs, &gconv, from, QUIET);
    check_conv_view("carol", &carols, &gconv, from, QUIET);
    bob.expect_silence(Duration::from_millis(300));
    sent.extend(quiet);

    let total = (steps + 1 + QUIET) as i64;
    let d = bob.sync_all(&dconv);
    let g = carol.sync_all(&gconv);
    assert_eq!(seqs(&d), one_to(total));
    assert_eq!(seqs(&g), one_to(total));
    let sent_d: Vec<Value> = sent.iter().step_by(2).cloned().collect();
    let sent_g: Vec<Value> = sent.iter().skip(1).step_by(2).cloned().collect();
    assert_eq!(texts(&d[1..]), texts(&sent_d));
    assert_eq!(texts(&g[1..]), texts(&sent_g));
}
