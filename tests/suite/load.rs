//! Many clients at once, over real TCP: 1,000 users chatting, 200 logins,
//! 10,000 connections closing together, and a slow reader.
//!
//! The scenarios of this file run alone ([`Test::alone`]): each already
//! loads the two cores of a small machine on its own.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::support::{raise_fd_limit, Client, Server, Test, TestDb};
use serde_json::json;

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    let mut tests = both_stores![
        thousand_users_chat,
        two_hundred_logins_at_once,
        ten_thousand_connections_close,
        slow_reader
    ];
    tests.extend(tests![memory_stays_bounded_across_logins]);
    tests.into_iter().map(Test::alone).collect()
}

/// Registers `n` accounts named `<prefix><i>` (password "pw"), pipelined
/// over a few connections, at most [`IN_FLIGHT`] at a time on each, and
/// returns their uids in order.
fn register_many(server: &Server, prefix: &str, n: usize) -> Vec<i64> {
    let mut conns: Vec<Client> = (0..8).map(|_| server.connect()).collect();
    let k = conns.len();
    let mut uids = vec![0; n];
    // Round r sends requests r*k*IN_FLIGHT.. on every connection, then
    // reads their answers: connection i % k answers its requests in order.
    for round in (0..n).step_by(k * IN_FLIGHT) {
        let ids: Vec<usize> = (round..n.min(round + k * IN_FLIGHT)).collect();
        let mut batches: Vec<String> = vec![String::new(); k];
        for &i in &ids {
            let req = json!({"msgId": 5, "username": format!("{prefix}{i}"), "password": "pw"});
            batches[i % k].push_str(&req.to_string());
        }
        for (c, batch) in conns.iter_mut().zip(&batches) {
            c.send_raw(batch.as_bytes());
        }
        for &i in &ids {
            let v = conns[i % k].expect_errno(6, 0);
            assert_eq!(v["username"], format!("{prefix}{i}"));
            uids[i] = v["uid"].as_i64().unwrap();
        }
    }
    uids
}

/// Registrations one connection may have in flight: the server's default
/// `--max-pending-hashes`.
const IN_FLIGHT: usize = 4;

/// One logged-in connection per uid: all logins sent first, then all acks read.
fn login_all(server: &Server, uids: &[i64]) -> Vec<Client> {
    let mut clients: Vec<Client> = uids.iter().map(|_| server.connect()).collect();
    for (c, &uid) in clients.iter_mut().zip(uids) {
        c.uid = uid;
        c.send(&json!({"msgId": 1, "uid": uid, "password": "pw"}));
    }
    for c in &mut clients {
        let v = c.expect_errno(2, 0);
        c.name = v["username"].as_str().unwrap().to_owned();
    }
    clients
}

fn thousand_users_chat(db: TestDb) {
    raise_fd_limit();
    const USERS: usize = 1000;
    const ROUNDS: usize = 10;
    let server = Server::start(&db, &[]);
    let uids = register_many(&server, "user", USERS);
    let mut clients = login_all(&server, &uids);
    let started = Instant::now();
    // Everyone sends ROUNDS numbered messages to two others, all at once.
    let targets = |i: usize| [uids[(i + 1) % USERS], uids[(i + USERS / 2) % USERS]];
    std::thread::scope(|s| {
        for (chunk_no, chunk) in clients.chunks_mut(50).enumerate() {
            s.spawn(move || {
                for round in 0..ROUNDS {
                    for (k, c) in chunk.iter_mut().enumerate() {
                        for to in targets(chunk_no * 50 + k) {
                            c.chat(to, &round.to_string());
                        }
                    }
                }
            });
        }
    });
    std::thread::scope(|s| {
        for chunk in clients.chunks_mut(50) {
            s.spawn(move || {
                for c in chunk.iter_mut() {
                    let mut next: HashMap<i64, usize> = HashMap::new();
                    for _ in 0..2 * ROUNDS {
                        let (from, text) = c.recv_chat();
                        let expected = next.entry(from).or_insert(0);
                        assert_eq!(
                            text,
                            expected.to_string(),
                            "user {} from {from}: out of order",
                            c.uid
                        );
                        *expected += 1;
                    }
                    assert_eq!(next.len(), 2);
                }
            });
        }
    });
    eprintln!(
        "{} messages delivered in {:?}",
        USERS * 2 * ROUNDS,
        started.elapsed()
    );
    clients[0].expect_silence(Duration::from_millis(100));
    assert_eq!(db.query_i64("SELECT COUNT(*) FROM offlinemessage"), 0);
}

fn two_hundred_logins_at_once(db: TestDb) {
    raise_fd_limit();
    let server = Server::start(&db, &[]);
    let uids = register_many(&server, "u", 200);
    let start = Instant::now();
    let clients = login_all(&server, &uids);
    eprintln!("200 logins in {:?}", start.elapsed());
    assert_eq!(clients.len(), 200);

    // Twenty connections racing for one account: exactly one wins.
    let mut racers: Vec<Client> = (0..20).map(|_| server.connect()).collect();
    let target = register_many(&server, "contested", 1)[0];
    for c in &mut racers {
        c.send(&json!({"msgId": 1, "uid": target, "password": "pw"}));
    }
    let errnos: Vec<i64> = racers
        .iter_mut()
        .map(|c| c.expect(2)["errno"].as_i64().unwrap())
        .collect();
    assert_eq!(errnos.iter().filter(|&&e| e == 0).count(), 1, "{errnos:?}");
    assert_eq!(errnos.iter().filter(|&&e| e == 2).count(), 19, "{errnos:?}");
}

fn ten_thousand_connections_close(db: TestDb) {
    let limit = raise_fd_limit();
    let n = 10_000.min((limit as usize).saturating_sub(200) / 2);
    let server = Server::start(&db, &[]);
    let mut alice = server.user("alice");
    let bob_uid = register_many(&server, "bob", 1)[0];
    let crowd_uids = register_many(&server, "crowd", 100);
    let mut logged_in = login_all(&server, &crowd_uids);
    let mut conns: Vec<std::net::TcpStream> = Vec::with_capacity(n);
    for _ in 0..n - logged_in.len() {
        conns.push(std::net::TcpStream::connect(server.addr).expect("connect"));
    }
    // Make sure the server has them all before they go.
    alice.send(&json!({"msgId": 25}));
    alice.expect(26);
    let fds = || std::fs::read_dir(format!("/proc/{}/fd", server.pid())).map_or(0, |d| d.count());
    let deadline = Instant::now() + Duration::from_secs(30);
    while fds() < n && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        fds() >= n,
        "server has {} descriptors, expected {n}+",
        fds()
    );

    // All close at the same moment.
    drop(conns);
    logged_in.clear();

    // The server keeps serving while it tears them down.
    let mut bob = server.connect();
    bob.uid = bob_uid;
    bob.login_ok("pw");
    alice.chat(bob_uid, "still here");
    assert_eq!(bob.recv_chat().1, "still here");
    let deadline = Instant::now() + Duration::from_secs(30);
    while fds() > 100 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(fds() <= 100, "descriptors left: {}", fds());
    let mut crowd = server.connect();
    crowd.uid = crowd_uids[0]; // its connection closed: logged out
    crowd.login_ok("pw");
}

fn slow_reader(db: TestDb) {
    let server = Server::start(&db, &["--high-water-mark", "1MiB"]);
    let mut slow = server.user("slow");
    let mut flooder = server.user("flooder");
    let mut carol = server.user("carol");
    let mut dave = server.user("dave");
    let (slow_uid, dave_uid, carol_uid) = (slow.uid, dave.uid, carol.uid);
    let chunk = "z".repeat(8 * 1024);
    let worst = std::thread::scope(|s| {
        let pair = s.spawn(move || {
            let mut worst = Duration::ZERO;
            for i in 0..100 {
                let t = Instant::now();
                carol.chat(dave_uid, &i.to_string());
                assert_eq!(dave.recv_chat().1, i.to_string());
                dave.chat(carol_uid, &i.to_string());
                assert_eq!(carol.recv_chat().1, i.to_string());
                worst = worst.max(t.elapsed());
            }
            worst
        });
        // 16 MiB for a reader that never reads.
        for _ in 0..2000 {
            flooder.chat(slow_uid, &chunk);
        }
        flooder.send(&json!({"msgId": 25}));
        flooder.expect(26);
        pair.join().unwrap()
    });
    eprintln!("worst round trip of the others during the flood: {worst:?}");
    assert!(worst < Duration::from_secs(2), "{worst:?}");
    // The server dropped the slow reader: reading what the kernel held ends in EOF.
    let mut drained = 0usize;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        assert!(Instant::now() < deadline, "slow reader not disconnected");
        match slow.try_recv(Duration::from_secs(5)) {
            Ok(_) => drained += 1,
            Err(_) => break,
        }
    }
    eprintln!("the slow reader got {drained} of 2000 messages before being dropped");
    assert!(
        drained < 2000,
        "the slow reader got everything: nothing bounded it"
    );
    assert!(server.log().contains("slow reader"), "{}", server.log());
    let rss = server.rss_kib();
    assert!(rss < 128 * 1024, "server RSS {rss} KiB");
}

/// Password hashing at the default memory cost (19 MiB per argon2 hash) must
/// not make the server's memory grow with every login: 200 hashes would
/// otherwise leave several GB behind (glibc keeping each aligned block).
fn memory_stays_bounded_across_logins() {
    let db = TestDb::sqlite();
    let server = Server::start(&db, &["--argon2-memory", "19MiB", "--argon2-passes", "1"]);
    let uids = register_many(&server, "mem", 100);
    let clients = login_all(&server, &uids);
    drop(clients);
    let rss_mib = server.rss_kib() / 1024;
    // Four workers hash at once: 4 × 19 MiB plus the server itself.
    assert!(
        rss_mib < 400,
        "server holds {rss_mib} MiB after 200 password hashes"
    );
}
