//! Accounts over real TCP: register, login, logout, refresh, friends, and
//! every way of acting as someone else.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::support::client::nested;
use crate::support::redis::KeyPrefix;
use crate::support::{require, Client, Need, Server, Test, TestDb};
use serde_json::json;

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    let mut tests = both_stores![
        register_login_logout,
        passwords_are_hashed,
        impersonation_is_refused,
        friends,
        failed_logins_are_throttled_per_account,
        failed_logins_are_throttled_per_address,
        registrations_are_limited_per_address,
        accounts_per_address_are_a_quota
    ];
    tests.extend(tests![hash_priority_reaches_the_hashing_threads]);
    tests.extend(
        tests![
            failed_logins_are_throttled_across_the_cluster,
            failed_logins_of_an_address_add_up_across_the_cluster
        ]
        .into_iter()
        .map(|t| t.needs(&[Need::Mysql, Need::Redis])),
    );
    tests
}

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

/// `--hash-priority` reaches the server's hashing threads, and only them:
/// the scheduling class and nice value of each thread, read from `/proc`.
fn hash_priority_reaches_the_hashing_threads() {
    for flag in ["idle", "7"] {
        let db = TestDb::sqlite();
        let server = Server::start(&db, &["--hash-priority", flag, "--hash-threads", "2"]);
        // Each pool thread sets its own priority when it starts, which may
        // be a moment after the server listens: look again until it shows.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let threads = loop {
            let threads = threads_of(server.pid());
            if wrong_priorities(&threads, flag).is_empty() || std::time::Instant::now() > deadline {
                break threads;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        let hashers = threads.iter().filter(|t| t.name.starts_with("chat-hash"));
        assert_eq!(hashers.count(), 2, "{flag}: {threads:?}");
        let wrong = wrong_priorities(&threads, flag);
        assert!(wrong.is_empty(), "{flag}: wrong priority: {wrong:?}");
    }
}

/// The threads whose class or nice value is not what `--hash-priority
/// flag` should give: hashing threads as the flag says, database workers
/// nice +5, log writers and their deliverers nice +2, every other thread (the I/O threads among them) as the server's
/// main thread, whose nice value is the base (the test may run niced).
fn wrong_priorities<'a>(threads: &'a [ThreadInfo], flag: &str) -> Vec<&'a ThreadInfo> {
    const SCHED_OTHER: u32 = 0;
    const SCHED_IDLE: u32 = 5;
    let base = threads[0].nice;
    let lowered = |by: i64| (base + by).min(19);
    let expected = |name: &str| match name {
        n if n.starts_with("chat-hash") && flag == "idle" => (SCHED_IDLE, base),
        n if n.starts_with("chat-hash") => (SCHED_OTHER, lowered(7)),
        n if n.starts_with("chat-worker") => (SCHED_OTHER, lowered(5)),
        n if n.starts_with("chat-log") || n.starts_with("chat-deliver") => {
            (SCHED_OTHER, lowered(2))
        }
        _ => (SCHED_OTHER, base),
    };
    threads
        .iter()
        .filter(|t| (t.class, t.nice) != expected(&t.name))
        .collect()
}

#[derive(Debug)]
struct ThreadInfo {
    name: String,
    nice: i64,
    class: u32,
}

/// Every thread of `pid`, the main thread first: its name, nice value and
/// scheduling class, from `/proc/PID/task/TID/stat` (fields 19 and 41).
fn threads_of(pid: u32) -> Vec<ThreadInfo> {
    let dir = format!("/proc/{pid}/task");
    let mut tids: Vec<u32> = std::fs::read_dir(&dir)
        .expect("read /proc task list")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    tids.sort_unstable_by_key(|&tid| tid != pid);
    let mut out = Vec::new();
    for tid in tids {
        let Ok(stat) = std::fs::read_to_string(format!("{dir}/{tid}/stat")) else {
            continue; // the thread ended meanwhile
        };
        let (open, close) = (stat.find('(').unwrap(), stat.rfind(')').unwrap());
        let fields: Vec<&str> = stat[close + 2..].split_whitespace().collect();
        // The name may hold spaces, so count from the `)` after it:
        // `fields[0]` is field 3 (state), field N is `fields[N - 3]`.
        out.push(ThreadInfo {
            name: stat[open + 1..close].to_string(),
            nice: fields[19 - 3].parse().unwrap(),
            class: fields[41 - 3].parse().unwrap(),
        });
    }
    out
}

/// A second client address (see [`Client::connect_from`]).
const ELSEWHERE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// A login of `uid` with `password` on `c`; the ack.
fn login(c: &mut Client, uid: i64, password: &str) -> serde_json::Value {
    let v = c.request(json!({"msgId": 1, "uid": uid, "password": password}));
    assert_eq!(v["msgId"], 2, "{v}");
    v
}

/// A refusal by a throttle: errno 12 with a `retry_after` of 1 to `max`
/// seconds.
fn assert_throttled(v: &serde_json::Value, max: u64) {
    assert_eq!(v["errno"], 12, "{v}");
    let after = v["retry_after"].as_u64().unwrap_or(0);
    assert!((1..=max).contains(&after), "retry_after {after}: {v}");
}

/// Five wrong passwords for alice within the window (by id and by name:
/// one account either way) block her logins for the cool-down, the right
/// password too, and without hashing; bob, from the same address, logs in
/// meanwhile. After the cool-down she gets in; five more failures block
/// her for twice as long.
fn failed_logins_are_throttled_per_account(db: TestDb) {
    let server = Server::start(
        &db,
        &[
            "--login-failures-per-account",
            "5",
            "--login-cooldown",
            "2s",
            "--login-cooldown-max",
            "8s",
        ],
    );
    let mut alice = server.connect();
    let alice_id = alice.register("alice", "right");
    let mut bob = server.connect();
    let bob_id = bob.register("bob", "secret");
    let mut attacker = server.connect();
    for i in 0..5 {
        let v = if i % 2 == 0 {
            login(&mut attacker, alice_id, "wrong")
        } else {
            attacker.request(json!({"msgId": 1, "username": "alice", "password": "wrong"}))
        };
        assert_eq!(v["errno"], 1, "failure {i}: {v}");
    }
    let v = login(&mut attacker, alice_id, "wrong");
    assert_throttled(&v, 2);
    let v = login(&mut server.connect(), alice_id, "right");
    assert_throttled(&v, 2);
    // Another account, same address: unaffected.
    assert_eq!(login(&mut bob, bob_id, "secret")["errno"], 0);

    std::thread::sleep(Duration::from_millis(2100));
    let mut c = server.connect();
    assert_eq!(
        login(&mut c, alice_id, "right")["errno"],
        0,
        "the cool-down is over"
    );
    drop(c);
    // The success cleared her count; five more failures: a second block, 4 s.
    for _ in 0..5 {
        assert_eq!(login(&mut attacker, alice_id, "wrong")["errno"], 1);
    }
    let v = login(&mut attacker, alice_id, "wrong");
    assert_throttled(&v, 4);
    assert!(
        v["retry_after"].as_u64() > Some(2),
        "the cool-down doubled: {v}"
    );
}

/// Twenty failed logins from one address, against many names, block that
/// address's logins (carol's right password too); carol from another
/// address logs in during the attack.
fn failed_logins_are_throttled_per_address(db: TestDb) {
    let server = Server::start(
        &db,
        &[
            "--login-failures-per-address",
            "20",
            "--login-cooldown",
            "30s",
        ],
    );
    let mut carol = server.connect();
    let carol_id = carol.register("carol", "secret");
    drop(carol);
    let mut attacker = server.connect();
    for i in 0..20 {
        let name = format!("nobody{i}");
        let v = attacker.request(json!({"msgId": 1, "username": name, "password": "guess"}));
        assert_eq!(v["errno"], 1, "failure {i}: {v}");
    }
    let start = Instant::now();
    let v = attacker.request(json!({"msgId": 1, "username": "nobody99", "password": "guess"}));
    assert_throttled(&v, 30);
    let v = login(&mut server.connect(), carol_id, "secret");
    assert_throttled(&v, 30);
    assert!(start.elapsed() < Duration::from_secs(5), "answered at once");
    let mut carol = Client::connect_from(server.addr, ELSEWHERE);
    assert_eq!(login(&mut carol, carol_id, "secret")["errno"], 0);
}

/// Three registrations per window from one address; the fourth gets errno
/// 12 with `retry_after`, another address registers meanwhile, and the
/// next window lets the first address in again.
fn registrations_are_limited_per_address(db: TestDb) {
    let server = Server::start(
        &db,
        &["--registrations-per-address", "3", "--login-window", "2s"],
    );
    let mut c = server.connect();
    for i in 0..3 {
        c.register(&format!("user{i}"), "secret");
    }
    let v = c.request(json!({"msgId": 5, "username": "user3", "password": "secret"}));
    assert_eq!(v["msgId"], 6, "{v}");
    assert_throttled(&v, 2);
    Client::connect_from(server.addr, ELSEWHERE).register("elsewhere", "secret");
    std::thread::sleep(Duration::from_millis(2100));
    c.register("user3", "secret");
    let created = db.query_i64("SELECT COUNT(*) FROM user");
    assert_eq!(created, 5);
}

/// Two accounts per window from one address: the third registration gets
/// errno 13 (`QUOTA`) with `retry_after`; a registration that created
/// nothing (a name taken) does not count; another address is not affected.
fn accounts_per_address_are_a_quota(db: TestDb) {
    let server = Server::start(
        &db,
        &["--accounts-per-address", "2", "--accounts-window", "1h"],
    );
    let mut c = server.connect();
    c.register("first", "secret");
    let v = c.request(json!({"msgId": 5, "username": "first", "password": "x"}));
    assert_eq!(v["errno"], 1, "taken: {v}");
    c.register("second", "secret");
    let v = c.request(json!({"msgId": 5, "username": "third", "password": "secret"}));
    assert_eq!(v["msgId"], 6, "{v}");
    assert_eq!(v["errno"], 13, "{v}");
    let after = v["retry_after"].as_u64().unwrap_or(0);
    assert!((3000..=3600).contains(&after), "retry_after {after}: {v}");
    // Logins are not limited by it.
    c.login_ok("secret");
    Client::connect_from(server.addr, ELSEWHERE).register("third", "secret");
    assert_eq!(db.query_i64("SELECT COUNT(*) FROM user"), 3);
}

/// Two nodes of a cluster (one MySQL database, one Redis, no proxy): three
/// wrong passwords for alice on node a and two on node b block her on
/// both, which neither node's own count would (5 each); bob logs in on b
/// meanwhile. The next block, after five more failures, is twice as long:
/// the strikes are shared too.
fn failed_logins_are_throttled_across_the_cluster() {
    let db = TestDb::mysql();
    let url = require::redis_url();
    let prefix = KeyPrefix::new(&url, "login-throttle");
    let node = |id: &str| {
        Server::start(
            &db,
            &[
                "--redis",
                &url,
                "--redis-prefix",
                &prefix.name,
                "--node-id",
                id,
                "--login-failures-per-account",
                "5",
                "--login-cooldown",
                "1s",
                "--login-cooldown-max",
                "4s",
            ],
        )
    };
    let (a, b) = (node("a"), node("b"));
    let alice_id = a.connect().register("alice", "right");
    let bob_id = b.connect().register("bob", "secret");
    let (mut on_a, mut on_b) = (a.connect(), b.connect());
    for i in 0..5 {
        let c = if i < 3 { &mut on_a } else { &mut on_b };
        assert_eq!(login(c, alice_id, "wrong")["errno"], 1, "failure {i}");
    }
    assert_throttled(&login(&mut on_b, alice_id, "wrong"), 1);
    assert_throttled(&login(&mut on_a, alice_id, "right"), 1);
    assert_eq!(login(&mut b.connect(), bob_id, "secret")["errno"], 0);

    std::thread::sleep(Duration::from_millis(1100));
    for i in 0..5 {
        let c = if i % 2 == 0 { &mut on_a } else { &mut on_b };
        assert_eq!(login(c, alice_id, "wrong")["errno"], 1, "failure {i}");
    }
    let v = login(&mut on_a, alice_id, "right");
    assert_throttled(&v, 2);
    assert_eq!(
        v["retry_after"], 2,
        "the second block is twice the first: {v}"
    );
}

/// Two nodes of a cluster with `--login-failures-per-address 4`: two failed
/// logins from 127.0.0.1 on each node block that address on both, while
/// 127.0.0.2 logs in.
fn failed_logins_of_an_address_add_up_across_the_cluster() {
    let db = TestDb::mysql();
    let url = require::redis_url();
    let prefix = KeyPrefix::new(&url, "address-throttle");
    let node = |id: &str| {
        let args = [
            "--redis",
            &url,
            "--redis-prefix",
            &prefix.name,
            "--node-id",
            id,
            "--login-failures-per-address",
            "4",
        ];
        Server::start(&db, &args)
    };
    let (a, b) = (node("a"), node("b"));
    let carol_id = a.connect().register("carol", "secret");
    let (mut on_a, mut on_b) = (a.connect(), b.connect());
    for i in 0..4 {
        let c = if i % 2 == 0 { &mut on_a } else { &mut on_b };
        let v = c.request(json!({"msgId": 1, "username": format!("nobody{i}"), "password": "x"}));
        assert_eq!(v["errno"], 1, "failure {i}: {v}");
    }
    assert_throttled(&login(&mut on_b, carol_id, "secret"), 60);
    assert_throttled(&login(&mut on_a, carol_id, "secret"), 60);
    let mut elsewhere = Client::connect_from(b.addr, ELSEWHERE);
    assert_eq!(login(&mut elsewhere, carol_id, "secret")["errno"], 0);
}
