//! The cluster layer against a real Redis: two (or three) `Cluster`s in one
//! process, each with a [`TestNode`] that records what reaches it.
//!
//! The shared Redis ([`require::redis_url`]) serves every test under its
//! own key prefix, deleted afterwards; the outage test starts a private
//! `redis-server` on a free port so that it can kill it. Without a Redis
//! (or without the `redis-server` program, for the outage test) a test is
//! reported ignored, and fails under CI. Every wait is bounded.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::support::redis::{redis_con, KeyPrefix, PrivateRedis};
use crate::support::{require, wait_until, Need, Test};
use chat::cluster::{Claim, Cluster, ClusterConfig, ClusterError, LocalNode, PROTOCOL};
use parking_lot::Mutex;

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    let shared = tests![
        claim_refuses_a_second_node_until_released,
        concurrent_claims_have_one_winner,
        messages_cross_nodes_in_order,
        messages_for_absent_users_are_stored,
        a_killed_node_is_dead_after_liveness_and_clean_after_restart,
        a_restart_within_liveness_clears_the_old_claims,
        publisher_throughput,
        sessions_are_counted_per_node_up_to_the_limit,
        a_claim_elsewhere_invalidates_a_cached_route_before_its_answer,
        a_stale_route_is_forwarded_once_and_delivered_right,
        a_batch_nobody_receives_is_stored_and_its_node_forgotten,
        a_live_node_of_another_protocol_keeps_a_new_one_out,
    ];
    let private = tests![
        a_tick_sends_one_publish_per_node_in_order,
        the_route_cache_is_cleared_on_resubscribe,
        a_redis_outage_degrades_then_recovers_without_restart,
        after_a_hang_double_claims_are_settled_and_missed_routes_reported,
        a_full_publisher_queue_refuses_publishes_at_once,
    ];
    (shared.into_iter().map(|t| t.needs(&[Need::Redis])))
        .chain(private.into_iter().map(|t| t.needs(&[Need::RedisServer])))
        .collect()
}

/// Liveness in the tests: short, so that deaths are noticed quickly.
const LIVENESS: Duration = Duration::from_secs(1);

/// A real `LocalNode`: a set of connected users and logs of what arrived.
#[derive(Default)]
struct TestNode {
    users: Mutex<HashSet<i64>>,
    delivered: Mutex<Vec<(i64, Vec<u8>)>>,
    offline: Mutex<Vec<(i64, Vec<u8>)>>,
    /// Calls of `subscribed` (resubscriptions and catch-up reports).
    subscribed: AtomicUsize,
    /// Users `catch_up` was called for.
    caught_up: Mutex<Vec<i64>>,
    /// `lost_claim` calls: user and holder.
    lost: Mutex<Vec<(i64, String)>>,
}

impl LocalNode for TestNode {
    fn deliver(&self, uid: i64, payload: &[u8]) -> bool {
        if !self.users.lock().contains(&uid) {
            return false;
        }
        self.delivered.lock().push((uid, payload.to_vec()));
        true
    }

    fn store_offline(&self, uid: i64, payload: Vec<u8>) {
        self.offline.lock().push((uid, payload));
    }

    fn local_users(&self) -> Vec<(i64, usize)> {
        self.users.lock().iter().map(|&u| (u, 1)).collect()
    }

    fn subscribed(&self) {
        self.subscribed.fetch_add(1, Ordering::SeqCst);
    }

    fn catch_up(&self, uids: &[i64]) {
        self.caught_up.lock().extend_from_slice(uids);
    }

    fn lost_claim(&self, uid: i64, holder: &str) {
        self.lost.lock().push((uid, holder.to_owned()));
    }
}

impl TestNode {
    fn connect(&self, uid: i64) {
        self.users.lock().insert(uid);
    }

    fn delivered_to(&self, uid: i64) -> Vec<Vec<u8>> {
        let d = self.delivered.lock();
        d.iter()
            .filter(|(u, _)| *u == uid)
            .map(|(_, p)| p.clone())
            .collect()
    }

    fn offline_for(&self, uid: i64) -> Vec<Vec<u8>> {
        let d = self.offline.lock();
        d.iter()
            .filter(|(u, _)| *u == uid)
            .map(|(_, p)| p.clone())
            .collect()
    }
}

/// The configuration of node `node` under `prefix`.
fn config(prefix: &KeyPrefix, node: &str, liveness: Duration) -> ClusterConfig {
    ClusterConfig {
        key_prefix: prefix.name.clone(),
        liveness,
        ..ClusterConfig::new(prefix.url.clone(), node)
    }
}

/// Runs one command behind the cluster's back.
fn admin(url: &str, words: &[&str]) {
    let Some(mut con) = redis_con(url) else {
        panic!("cannot connect to {url}")
    };
    if let Err(e) = redis::cmd(words[0]).arg(&words[1..]).query::<()>(&mut con) {
        panic!("{words:?}: {e}");
    }
}

/// A key prefix of the test's own on the shared Redis.
fn shared_redis(test: &str) -> KeyPrefix {
    KeyPrefix::new(&require::redis_url(), test)
}

/// A node: its cluster handle and its recording `LocalNode`.
fn node(prefix: &KeyPrefix, id: &str) -> (Arc<Cluster>, Arc<TestNode>) {
    node_with(prefix, id, LIVENESS)
}

fn node_with(prefix: &KeyPrefix, id: &str, liveness: Duration) -> (Arc<Cluster>, Arc<TestNode>) {
    start_node(config(prefix, id, liveness))
}

/// Starts a node with `cfg` and waits until it is connected and subscribed.
fn start_node(cfg: ClusterConfig) -> (Arc<Cluster>, Arc<TestNode>) {
    let _ = env_logger::builder().is_test(true).try_init();
    let id = cfg.node_id.clone();
    let local = Arc::new(TestNode::default());
    let cluster = match Cluster::start(cfg, local.clone()) {
        Ok(c) => c,
        Err(e) => panic!("start {id}: {e}"),
    };
    wait_until("the node is connected and subscribed", || {
        cluster.is_connected() && cluster.is_subscribed()
    });
    (cluster, local)
}

/// With three sessions per user: claims count each node's sessions of a
/// user against the limit over every node, a release takes one away, a
/// message reaches every node holding sessions (`send_to_other_nodes`
/// skips the sender's own, and stores nothing when there is no other),
/// and `is_online` holds while any live node holds one.
fn sessions_are_counted_per_node_up_to_the_limit() {
    let p = shared_redis("counted");
    let three = |id: &str| {
        start_node(ClusterConfig {
            sessions_per_user: 3,
            ..config(&p, id, LIVENESS)
        })
    };
    let ((a, la), (b, lb), (c, _lc)) = (three("a"), three("b"), three("c"));
    login(&a, &la, 80);
    login(&a, &la, 80);
    login(&b, &lb, 80);
    assert_eq!(p.holders(80), [("a".to_owned(), 2), ("b".to_owned(), 1)]);
    assert!(
        matches!(c.claim(80), Claim::OnlineElsewhere(_)),
        "the fourth"
    );
    assert_eq!(a.claim(80), Claim::OnlineElsewhere("b".into()));
    assert_eq!(c.is_online(&[80, 81]), [true, false]);

    c.send_to_user(80, b"to all\n".to_vec());
    wait_until("both nodes got it", || {
        la.delivered_to(80) == [b"to all\n"] && lb.delivered_to(80) == [b"to all\n"]
    });
    a.send_to_other_nodes(80, b"to b\n".to_vec());
    wait_until("b got it", || lb.delivered_to(80).len() == 2);
    assert_eq!(la.delivered_to(80).len(), 1, "not to the sender's node");
    a.send_to_other_nodes(81, b"nobody\n".to_vec());
    login(&a, &la, 82);
    a.send_to_other_nodes(82, b"only a\n".to_vec());

    b.release(80);
    wait_until("b's count goes", || p.holders(80) == [("a".to_owned(), 2)]);
    a.release(80);
    wait_until("a's count drops", || p.holders(80) == [("a".to_owned(), 1)]);
    assert_eq!(c.claim(80), Claim::Claimed);
    assert_eq!(c.claim(80), Claim::Claimed);
    assert!(
        matches!(b.claim(80), Claim::OnlineElsewhere(_)),
        "1 + 2 = 3"
    );
    assert!(la.offline_for(81).is_empty() && la.offline_for(82).is_empty());
    assert!(lb.delivered_to(82).is_empty());
    // A claim left as a string by a version before the hash is replaced.
    admin(&p.url, &["SET", &format!("{}:user:90", p.name), "old-node"]);
    assert_eq!(b.claim(90), Claim::Claimed);
    assert_eq!(p.holders(90), [("b".to_owned(), 1)]);
    a.shutdown();
    assert_eq!(
        p.holders(80),
        [("c".to_owned(), 2)],
        "a's shutdown clears a only"
    );
    assert_eq!(b.is_online(&[80]), [true]);
    c.shutdown();
    assert_eq!(b.is_online(&[80]), [false]);
    b.shutdown();
}

/// Logs `uid` in on a node: claims it and marks it connected.
fn login(cluster: &Cluster, local: &TestNode, uid: i64) {
    assert_eq!(cluster.claim(uid), Claim::Claimed, "claim of {uid}");
    local.connect(uid);
}

/// Nodes of two inter-node protocols cannot share a cluster: a node
/// refuses to start while another node's heartbeat under its prefix names
/// another protocol, or none (a version from before the numbers), and
/// starts beside nodes of its own.
fn a_live_node_of_another_protocol_keeps_a_new_one_out() {
    let p = shared_redis("protocol");
    let (a, _la) = node(&p, "a");
    let old = format!("{}:alive:old", p.name);
    let refused = |found: Option<u32>| {
        let local = Arc::new(TestNode::default());
        match Cluster::start(config(&p, "b", LIVENESS), local) {
            Ok(_) => panic!("b started beside a node of protocol {found:?}"),
            Err(ClusterError::Protocol { node, found: f }) => {
                assert_eq!((node.as_str(), f), ("old", found));
            }
            Err(e) => panic!("b: {e}"),
        }
    };
    admin(&p.url, &["SET", &old, "4242-17", "PX", "60000"]);
    refused(None);
    let next = format!("4242-17-p{}", PROTOCOL + 1);
    admin(&p.url, &["SET", &old, &next, "PX", "60000"]);
    refused(Some(PROTOCOL + 1));
    let message = ClusterError::Protocol {
        node: "old".into(),
        found: None,
    }
    .to_string();
    assert!(message.contains("stop every node"), "{message}");
    // Gone (its heartbeat expired): b joins a, both of this protocol.
    admin(&p.url, &["DEL", &old]);
    let (b, _lb) = node(&p, "b");
    assert!(b.is_connected());
    b.shutdown();
    a.shutdown();
}

fn claim_refuses_a_second_node_until_released() {
    let p = shared_redis("claim");
    let (a, la) = node(&p, "a");
    let (b, _lb) = node(&p, "b");
    login(&a, &la, 1);
    assert_eq!(b.claim(1), Claim::OnlineElsewhere("a".into()));
    assert_eq!(
        a.claim(1),
        Claim::Claimed,
        "a node may claim its own user again"
    );
    assert_eq!(p.holder(1).as_deref(), Some("a"));
    assert_eq!(b.is_online(&[1, 2]), [true, false]);
    assert_eq!(a.is_online(&[]), Vec::<bool>::new());

    a.release(1); // queued: applied by a's publisher one round trip later
    wait_until("a's release is applied", || p.holder(1).is_none());
    assert_eq!(
        b.claim(1),
        Claim::Claimed,
        "released users can log in elsewhere"
    );
    assert_eq!(p.holder(1).as_deref(), Some("b"));
    a.release(1); // a late release by the old node must not undo b's claim
    assert_eq!(a.is_online(&[1]), [true]);
    assert_eq!(p.holder(1).as_deref(), Some("b"));

    a.shutdown();
    b.shutdown();
    assert_eq!(p.holder(1), None, "shutdown releases the node's users");
}

fn concurrent_claims_have_one_winner() {
    let p = shared_redis("race");
    let (a, _la) = node(&p, "a");
    let (b, _lb) = node(&p, "b");
    let uids: Vec<i64> = (100..200).collect();
    let claim_all = |c: Arc<Cluster>, uids: Vec<i64>| {
        std::thread::spawn(move || uids.iter().map(|&u| c.claim(u)).collect::<Vec<_>>())
    };
    let ta = claim_all(a.clone(), uids.clone());
    let tb = claim_all(b.clone(), uids.clone());
    let (ra, rb) = match (ta.join(), tb.join()) {
        (Ok(ra), Ok(rb)) => (ra, rb),
        _ => panic!("a claiming thread panicked"),
    };
    for (i, uid) in uids.iter().enumerate() {
        match (&ra[i], &rb[i]) {
            (Claim::Claimed, Claim::OnlineElsewhere(n)) => assert_eq!(n, "a"),
            (Claim::OnlineElsewhere(n), Claim::Claimed) => assert_eq!(n, "b"),
            other => panic!("user {uid}: {other:?}"),
        }
    }
}

fn messages_cross_nodes_in_order() {
    let p = shared_redis("order");
    let (a, _la) = node(&p, "a");
    let (b, lb) = node(&p, "b");
    login(&b, &lb, 20);
    const N: usize = 1000;
    for i in 0..N {
        a.send_to_user(
            20,
            format!("{{\"msgId\":9,\"msg\":\"{i}\"}}\n").into_bytes(),
        );
    }
    wait_until("all messages reached b", || lb.delivered_to(20).len() == N);
    let got: Vec<String> = lb
        .delivered_to(20)
        .into_iter()
        .map(|m| String::from_utf8_lossy(&m).into_owned())
        .collect();
    for (i, m) in got.iter().enumerate() {
        assert_eq!(
            *m,
            format!("{{\"msgId\":9,\"msg\":\"{i}\"}}\n"),
            "message {i}"
        );
    }
    // a counts a message when the reply to its PUBLISH arrives, which may
    // be after b delivered it.
    wait_until("a counted them", || a.stats().published == N as u64);
    assert_eq!(a.stats().stored_by_sender, 0);
    wait_until("b counted them", || b.stats().delivered == N as u64);

    // A message to a user on the sender's own node goes through its own channel.
    let (c, lc) = node(&p, "c");
    login(&c, &lc, 21);
    c.send_to_user(21, b"self\n".to_vec());
    wait_until("c delivered to itself", || {
        lc.delivered_to(21) == [b"self\n"]
    });
}

fn messages_for_absent_users_are_stored() {
    let p = shared_redis("offline");
    let (a, la) = node(&p, "a");
    let (b, lb) = node(&p, "b");

    // On no node: the sender stores it.
    a.send_to_user(30, b"to nobody\n".to_vec());
    wait_until("a stored it", || la.offline_for(30) == [b"to nobody\n"]);

    // Claimed on b but gone from b's connections: b stores it.
    assert_eq!(b.claim(31), Claim::Claimed);
    a.send_to_user(31, b"left meanwhile\n".to_vec());
    wait_until("b stored it", || {
        lb.offline_for(31) == [b"left meanwhile\n"]
    });
    assert!(la.offline_for(31).is_empty());
    assert_eq!(b.stats().stored_by_receiver, 1);

    // After b's shutdown, its users are nobody's.
    lb.connect(31);
    b.shutdown();
    a.send_to_user(31, b"after shutdown\n".to_vec());
    wait_until("a stored it", || {
        la.offline_for(31) == [b"after shutdown\n"]
    });
    b.send_to_user(32, b"from a stopped node\n".to_vec());
    assert_eq!(lb.offline_for(32), [b"from a stopped node\n"]);
    assert_eq!(b.claim(32), Claim::Unavailable);
}

fn a_killed_node_is_dead_after_liveness_and_clean_after_restart() {
    let p = shared_redis("kill");
    // Long enough that the checks made before the expiry have time to run.
    let liveness = Duration::from_secs(3);
    let (a, la) = node_with(&p, "a", liveness);
    let (b, lb) = node_with(&p, "b", liveness);
    login(&b, &lb, 40);
    login(&b, &lb, 41);
    b.abort(); // like SIGKILL: no release, no unsubscribe message, no cleanup

    // Its subscription is gone at once: messages are stored, not lost.
    a.send_to_user(40, b"m1\n".to_vec());
    wait_until("a stored m1", || la.offline_for(40) == [b"m1\n"]);
    // Its claims hold until its alive key expires, then a login takes over.
    let killed = Instant::now();
    assert_eq!(a.claim(40), Claim::OnlineElsewhere("b".into()));
    wait_until("b's users are offline", || {
        a.is_online(&[40, 41]) == [false, false]
    });
    assert!(killed.elapsed() <= liveness + Duration::from_secs(2));
    assert_eq!(
        a.claim(40),
        Claim::Claimed,
        "takeover of a dead node's user"
    );
    assert_eq!(p.holder(40).as_deref(), Some("a"));
    a.send_to_user(41, b"m2\n".to_vec());
    wait_until("a stored m2", || la.offline_for(41) == [b"m2\n"]);

    // b restarts with the same id and no users: its stale claim on 41 is
    // cleared; 40, which a took over, stays a's.
    let (b2, lb2) = node_with(&p, "b", liveness);
    assert_eq!(p.holder(41), None);
    assert_eq!(p.holder(40).as_deref(), Some("a"));
    login(&b2, &lb2, 41);
    a.send_to_user(41, b"m3\n".to_vec());
    wait_until("b2 got m3", || lb2.delivered_to(41) == [b"m3\n"]);
}

fn a_restart_within_liveness_clears_the_old_claims() {
    let p = shared_redis("restart");
    let (a, _la) = node(&p, "a");
    let (b, lb) = node(&p, "b");
    login(&b, &lb, 50);
    b.abort();
    let (_b2, _lb2) = node(&p, "b"); // before the old alive key expired
    assert_eq!(
        p.holder(50),
        None,
        "the restarted node cleared its stale claim"
    );
    assert_eq!(a.claim(50), Claim::Claimed);
}

fn a_redis_outage_degrades_then_recovers_without_restart() {
    let mut redis = PrivateRedis::start();
    let p = KeyPrefix::new(&redis.url(), "outage");
    let (a, la) = node(&p, "a");
    let (b, lb) = node(&p, "b");
    login(&a, &la, 60);
    login(&b, &lb, 61);
    a.send_to_user(61, b"before\n".to_vec());
    wait_until("b got it", || lb.delivered_to(61) == [b"before\n"]);

    redis.kill();
    wait_until("a noticed", || {
        a.send_to_user(61, b"during\n".to_vec());
        !la.offline_for(61).is_empty()
    });
    assert!(la.offline_for(61).iter().all(|m| m == b"during\n"));
    assert_eq!(a.claim(62), Claim::Unavailable);
    assert_eq!(a.is_online(&[61]), [false]);
    // Logins and logouts during the outage.
    lb.connect(63);
    assert_eq!(b.claim(63), Claim::Unavailable);
    la.users.lock().remove(&60);
    a.release(60);

    // A fresh, empty Redis on the same port: presence must be republished.
    assert!(redis.restart(), "redis-server restarts");
    wait_until("presence republished", || {
        p.holder(61).as_deref() == Some("b") && p.holder(63).as_deref() == Some("b")
    });
    assert_eq!(p.holder(60), None, "logged out during the outage");
    wait_until("both nodes back", || {
        a.is_connected() && a.is_subscribed() && b.is_connected() && b.is_subscribed()
    });
    let offline_before = la.offline_for(63).len();
    a.send_to_user(63, b"after\n".to_vec());
    wait_until("b resubscribed and got it", || {
        lb.delivered_to(63) == [b"after\n"] || la.offline_for(63).len() > offline_before
    });
    assert_eq!(lb.delivered_to(63), [b"after\n"], "routed, not stored");
    assert_eq!(a.is_online(&[61, 63, 60]), [true, true, false]);
    assert!(a.stats().reconnects >= 1);

    // Redis keeps running but forgets everything: the heartbeat notices its
    // alive key gone and the presence is republished.
    admin(&redis.url(), &["FLUSHALL"]);
    wait_until("presence republished after FLUSHALL", || {
        p.holder(61).as_deref() == Some("b") && p.holder(63).as_deref() == Some("b")
    });

    // The scripts vanish: the publisher reloads them and routes again.
    admin(&redis.url(), &["SCRIPT", "FLUSH"]);
    wait_until("routing works after SCRIPT FLUSH", || {
        a.send_to_user(61, b"again\n".to_vec());
        lb.delivered_to(61).iter().any(|m| m == b"again\n")
    });
    a.shutdown();
    b.shutdown();
}

/// Every message one node's publisher routes reaches the other node, and
/// none is stored instead; it prints the rate. A check with 5,000 messages
/// in the suite, and a measurement by hand with more:
/// `CHAT_PUBLISHER_MESSAGES=200000 cargo test --release --test suite -- publisher_throughput`
/// (the rate is printed, never asserted).
fn publisher_throughput() {
    let p = shared_redis("throughput");
    let (a, _la) = node(&p, "a");
    let (b, lb) = node(&p, "b");
    const USERS: i64 = 100;
    let n: usize = std::env::var("CHAT_PUBLISHER_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5_000);
    for uid in 0..USERS {
        login(&b, &lb, uid);
    }
    let payload = br#"{"msgId":9,"from":1,"username":"alice","to":2,"msg":"hello there","time":"2026-01-01 12:00:00"}"#;
    let start = Instant::now();
    for i in 0..n {
        let mut m = payload.to_vec();
        m.push(b'\n');
        a.send_to_user(i as i64 % USERS, m);
    }
    let queued = start.elapsed();
    wait_until("all delivered", || b.stats().delivered == n as u64);
    let took = start.elapsed();
    println!(
        "{n} messages of {} bytes, node a -> node b: queued in {:.0} ms, delivered in {:.0} ms: {:.0} msg/s",
        payload.len() + 1,
        queued.as_secs_f64() * 1e3,
        took.as_secs_f64() * 1e3,
        n as f64 / took.as_secs_f64()
    );
    assert_eq!(a.stats().stored_by_sender, 0);
}

/// A Redis that hangs (`SIGSTOP`) and answers again, without losing its
/// data. During the hang b lets in 70, whom a holds, and 72, whom nobody
/// holds, and cannot route a message. Afterwards: b claims 72 and catches
/// it up; 70 stays a's, and after the recheck delay b is told to end its
/// session of 70; a is told to catch its users up (b's report on the
/// catch-up channel), though a never lost its subscription.
fn after_a_hang_double_claims_are_settled_and_missed_routes_reported() {
    let redis = PrivateRedis::start();
    let p = KeyPrefix::new(&redis.url(), "hang");
    let fast = |id: &str| ClusterConfig {
        io_timeout: Duration::from_millis(500),
        reconnect_max: Duration::from_millis(500),
        ..config(&p, id, Duration::from_secs(10))
    };
    let start = |id: &str| start_node(fast(id));
    let (a, la) = start("a");
    let (b, lb) = start("b");
    login(&a, &la, 70);
    login(&a, &la, 71);
    let subscribed_before = la.subscribed.load(Ordering::SeqCst);

    redis.pause();
    b.send_to_user(71, b"during\n".to_vec());
    wait_until("b stored it", || lb.offline_for(71) == [b"during\n"]);
    let t = Instant::now();
    assert_eq!(b.claim(70), Claim::Unavailable);
    assert_eq!(b.claim(72), Claim::Unavailable);
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    lb.connect(70);
    lb.connect(72);
    redis.resume();

    wait_until("72 is b's and caught up", || {
        p.holder(72).as_deref() == Some("b") && lb.caught_up.lock().contains(&72)
    });
    wait_until("a was told to catch up", || {
        la.subscribed.load(Ordering::SeqCst) > subscribed_before
    });
    assert!(a.is_subscribed());
    wait_until("b ends its session of 70", || {
        *lb.lost.lock() == [(70, "a".to_owned())]
    });
    assert_eq!(p.holder(70).as_deref(), Some("a"));
    assert!(la.lost.lock().is_empty());
    assert!(!lb.caught_up.lock().contains(&70));
    a.shutdown();
    b.shutdown();
}

/// The publisher's queue is bounded: while Redis hangs and the publisher
/// waits out its I/O timeout, messages past `max_queued_publishes` are
/// not queued but handled at once, on the sending thread, as when Redis is
/// down (stored by the sender: the log keeps them); none vanishes, and the
/// other node is told to catch its users up.
fn a_full_publisher_queue_refuses_publishes_at_once() {
    let redis = PrivateRedis::start();
    let p = KeyPrefix::new(&redis.url(), "full");
    let cfg = |id: &str| ClusterConfig {
        io_timeout: Duration::from_millis(800),
        reconnect_max: Duration::from_millis(500),
        max_queued_publishes: 16,
        ..config(&p, id, Duration::from_secs(10))
    };
    let start = |id: &str| start_node(cfg(id));
    let (a, la) = start("a");
    let (b, lb) = start("b");
    login(&a, &la, 80);
    b.send_to_user(80, b"before\n".to_vec());
    wait_until("the first message crossed", || {
        la.delivered_to(80) == [b"before\n"]
    });
    let subscribed_before = la.subscribed.load(Ordering::SeqCst);

    redis.pause();
    // The publisher takes this one and waits for Redis (up to 800 ms)...
    b.send_to_user(80, b"stuck\n".to_vec());
    std::thread::sleep(Duration::from_millis(100));
    // ...so 16 of these wait in the queue, and the rest are refused now.
    for i in 0..200 {
        b.send_to_user(80, format!("m{i}\n").into_bytes());
    }
    let refused_now = lb.offline_for(80).len();
    let overflows = b.stats().publish_overflows;
    assert!(
        (150..=184).contains(&refused_now),
        "{refused_now} of 200 handled at once (16 may wait)"
    );
    assert_eq!(overflows, refused_now as u64);
    redis.resume();

    // Every message is accounted for: delivered, or stored by the sender.
    wait_until("all 201 delivered or stored", || {
        let delivered = la.delivered_to(80).len() - 1;
        delivered + lb.offline_for(80).len() == 201
    });
    wait_until("a was told to catch up", || {
        la.subscribed.load(Ordering::SeqCst) > subscribed_before
    });
    a.shutdown();
    b.shutdown();
}

/// The texts `uid` received on a node, in order.
fn texts(local: &TestNode, uid: i64) -> Vec<String> {
    (local.delivered_to(uid).into_iter())
        .map(|m| String::from_utf8_lossy(&m).into_owned())
        .collect()
}

/// Messages queued while the publisher waits for Redis are one tick: with
/// their routes cached, one `PUBLISH` per destination node carries them
/// all, and each recipient gets them in order.
fn a_tick_sends_one_publish_per_node_in_order() {
    let redis = PrivateRedis::start();
    let p = KeyPrefix::new(&redis.url(), "tick");
    let start = |id: &str| start_node(config(&p, id, Duration::from_secs(10)));
    let ((a, _la), (b, lb), (c, lc)) = (start("a"), start("b"), start("c"));
    login(&b, &lb, 40);
    login(&c, &lc, 41);
    a.send_to_user(40, b"w\n".to_vec());
    a.send_to_user(41, b"w\n".to_vec());
    wait_until("the first messages crossed", || {
        texts(&lb, 40).len() == 1 && texts(&lc, 41).len() == 1
    });
    let before = a.stats();
    assert_eq!(before.route_misses, 2, "{before:?}");

    redis.pause();
    // The publisher sends this one (a hit: one frame for b) and waits...
    a.send_to_user(40, b"stuck\n".to_vec());
    std::thread::sleep(Duration::from_millis(100));
    // ...while these 400 queue up: the next tick takes them all.
    for i in 0..200 {
        a.send_to_user(40, format!("m{i}\n").into_bytes());
        a.send_to_user(41, format!("m{i}\n").into_bytes());
    }
    redis.resume();

    let want = |first: &[&str]| -> Vec<String> {
        let rest = (0..200).map(|i| format!("m{i}\n"));
        first.iter().map(|s| s.to_string()).chain(rest).collect()
    };
    wait_until("b and c got everything", || {
        texts(&lb, 40).len() == 202 && texts(&lc, 41).len() == 201
    });
    assert_eq!(texts(&lb, 40), want(&["w\n", "stuck\n"]), "b: in order");
    assert_eq!(texts(&lc, 41), want(&["w\n"]), "c: in order");
    wait_until("a counted them", || a.stats().published == 403);
    let after = a.stats();
    assert_eq!(after.route_hits - before.route_hits, 401, "{after:?}");
    assert_eq!(after.route_misses, before.route_misses, "{after:?}");
    assert_eq!(
        after.batch_publishes - before.batch_publishes,
        3,
        "one for the stuck message, then one per node: {after:?}"
    );
    assert_eq!(after.stored_by_sender, 0);
    assert_eq!((b.stats().forwarded, c.stats().forwarded), (0, 0));
    a.shutdown();
    b.shutdown();
    c.shutdown();
}

/// A cached "on no node" is forgotten on every node before a claim
/// elsewhere is answered: the message sent right after the login reaches
/// the new session directly. (Without the claim's barrier the sender
/// could still hit its stale entry and store the message.)
fn a_claim_elsewhere_invalidates_a_cached_route_before_its_answer() {
    let p = shared_redis("invalidate");
    let ((a, la), (b, _lb), (c, lc)) = (node(&p, "a"), node(&p, "b"), node(&p, "c"));
    for round in 0..20 {
        let uid = 500 + round;
        a.send_to_user(uid, b"before\n".to_vec());
        wait_until("stored: on no node", || la.offline_for(uid).len() == 1);
        a.send_to_user(uid, b"cached\n".to_vec());
        wait_until("stored from the negative entry", || {
            la.offline_for(uid).len() == 2
        });
        login(&c, &lc, uid);
        a.send_to_user(uid, b"after\n".to_vec());
        wait_until("c got it", || texts(&lc, uid) == ["after\n"]);
        assert_eq!(la.offline_for(uid).len(), 2, "round {round}");
    }
    let s = a.stats();
    assert!(s.route_hits >= 20 && s.route_misses >= 40, "{s:?}");
    assert_eq!(c.stats().forwarded, 0);
    a.shutdown();
    b.shutdown();
    c.shutdown();
}

/// A route put in the cache on purpose names b, where the user is not:
/// b forwards the message once through the script, to c, where the user
/// is; a user on no node is stored by b; nothing loops.
fn a_stale_route_is_forwarded_once_and_delivered_right() {
    let p = shared_redis("forward");
    let ((a, la), (b, lb), (c, lc)) = (node(&p, "a"), node(&p, "b"), node(&p, "c"));
    login(&c, &lc, 60);
    a.debug_set_route(60, &["b"]);
    a.send_to_user(60, b"moved\n".to_vec());
    wait_until("c got it through b", || texts(&lc, 60) == ["moved\n"]);
    assert_eq!(b.stats().forwarded, 1);
    assert!(lb.offline_for(60).is_empty() && la.offline_for(60).is_empty());

    a.debug_set_route(61, &["b"]);
    a.send_to_user(61, b"nobody\n".to_vec());
    wait_until("b stored it", || lb.offline_for(61) == [b"nobody\n"]);
    assert_eq!(b.stats().stored_by_receiver, 1);
    assert_eq!(b.stats().forwarded, 1, "nobody took it");

    // A group post: one item for b with both members; b forwards 60.
    login(&b, &lb, 62);
    a.debug_set_route(62, &["b"]);
    a.debug_set_route(60, &["b"]);
    a.send_to_users(vec![60, 62], b"group\n".to_vec());
    wait_until("both got the post", || {
        texts(&lb, 62) == ["group\n"] && texts(&lc, 60) == ["moved\n", "group\n"]
    });
    assert_eq!(b.stats().forwarded, 2);
    a.shutdown();
    b.shutdown();
    c.shutdown();
}

/// Presence changes made behind the cluster's back (no event) leave a
/// stale entry; a resubscription clears the cache, and the next message
/// goes through the script again.
fn the_route_cache_is_cleared_on_resubscribe() {
    let redis = PrivateRedis::start();
    let p = KeyPrefix::new(&redis.url(), "resub");
    let start = |id: &str| start_node(config(&p, id, Duration::from_secs(10)));
    let ((a, la), (b, lb)) = (start("a"), start("b"));
    a.send_to_user(70, b"1\n".to_vec());
    wait_until("stored: on no node", || la.offline_for(70).len() == 1);
    // 70 appears on b without a claim, so without a presence event.
    admin(&p.url, &["HSET", &format!("{}:user:70", p.name), "b", "1"]);
    lb.connect(70);
    a.send_to_user(70, b"2\n".to_vec());
    wait_until("stored from the stale entry", || {
        la.offline_for(70).len() == 2
    });
    let resubscribed = la.subscribed.load(Ordering::SeqCst);
    admin(&p.url, &["CLIENT", "KILL", "TYPE", "pubsub"]);
    wait_until("a subscribed again", || {
        la.subscribed.load(Ordering::SeqCst) > resubscribed && a.is_subscribed()
    });
    wait_until("b subscribed again", || b.is_subscribed());
    a.send_to_user(70, b"3\n".to_vec());
    wait_until("b got it", || texts(&lb, 70) == ["3\n"]);
    assert_eq!(la.offline_for(70).len(), 2);
    a.shutdown();
    b.shutdown();
}

/// A cached route to a node that crashed (its subscription gone, its
/// claims and alive key still there): the batch reaches nobody, so the
/// sender stores its message and forgets the routes naming that node; the
/// next message goes through the script again.
fn a_batch_nobody_receives_is_stored_and_its_node_forgotten() {
    let p = shared_redis("unsent");
    let ((a, la), (b, lb)) = (node(&p, "a"), node(&p, "b"));
    login(&b, &lb, 90);
    a.send_to_user(90, b"1\n".to_vec());
    wait_until("b got it", || texts(&lb, 90) == ["1\n"]);
    a.send_to_user(90, b"2\n".to_vec());
    wait_until("b got the cached one", || texts(&lb, 90).len() == 2);
    let before = a.stats();
    assert_eq!(
        (before.route_misses, before.route_hits),
        (1, 1),
        "{before:?}"
    );
    b.abort();
    wait_until("b's subscription is gone", || p.subscribers("b") == 0);
    a.send_to_user(90, b"3\n".to_vec());
    wait_until("a stored it", || la.offline_for(90) == [b"3\n"]);
    a.send_to_user(90, b"4\n".to_vec());
    wait_until("a stored that too", || la.offline_for(90).len() == 2);
    let after = a.stats();
    assert_eq!(after.route_hits, 2, "{after:?}");
    assert_eq!(
        after.route_misses, 2,
        "the route naming b was forgotten: {after:?}"
    );
    a.shutdown();
}
