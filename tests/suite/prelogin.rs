//! Connections before login (issue 12, item 5): the requests held behind
//! a slow login are bounded in bytes, the anonymous connections of one
//! address are limited, and a connection that never logs in is closed.
//! And all connections of one address, logged in or not (item 7).

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{Client, Server, Test, TestDb};

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    both_stores![
        held_requests_are_bounded_in_bytes,
        anonymous_connections_per_address_are_limited,
        a_connection_that_never_logs_in_is_closed,
        a_login_under_way_outlives_the_login_timeout,
        connections_per_address_are_a_quota
    ]
}

/// Peak resident memory of process `pid` in KiB (`VmHWM`).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Connections pipelining this many requests each behind their login.
const CONNECTIONS: usize = 30;
const REQUESTS: usize = 100;
/// Text in each request.
const PAD: usize = 16 * 1024;

/// 30 connections each send a wrong login (a slow hash: one hashing
/// thread, many passes) and 100 padded pings behind it, 46 MiB in all.
/// With the default 64 KiB a connection may hold, the server's peak memory
/// grows by a few MiB (6-7 here), not by what was sent, and the pings over
/// the limit get errno 4 at once. Before the byte limits (256 requests
/// held, whatever their size) the peak grew by about what was sent (+51
/// MiB with `--login-hold-bytes 1GiB --login-hold-total 1GiB`).
fn held_requests_are_bounded_in_bytes(db: TestDb) {
    let server = Server::start(&db, &["--argon2-passes", "3000", "--hash-threads", "1"]);
    let alice = server.user("alice");
    let pad = "x".repeat(PAD);
    let ping = json!({"msgId": 25, "pad": pad}).to_string();
    let login = json!({"msgId": 1, "uid": alice.uid, "password": "wrong"}).to_string();
    let payload = format!("{login}{}", ping.repeat(REQUESTS));
    let before = peak_rss_kib(server.pid());

    let mut clients: Vec<Client> = (0..CONNECTIONS).map(|_| server.connect()).collect();
    for c in &mut clients {
        c.send_raw(payload.as_bytes());
    }
    let mut refused = 0;
    for c in &mut clients {
        let mut login_ack = false;
        for _ in 0..=REQUESTS {
            let v = c.recv();
            match v["msgId"].as_i64() {
                Some(2) => {
                    assert_eq!(v["errno"], 1, "{v}");
                    login_ack = true;
                }
                Some(26) if v["errno"] == 4 => {
                    assert!(!login_ack, "a refusal comes at once, before the login ack");
                    refused += 1;
                }
                Some(26) => assert_eq!(v["errno"], 0, "{v}"),
                _ => panic!("unexpected {v}"),
            }
        }
        assert!(login_ack);
    }
    let grown_mib = peak_rss_kib(server.pid()).saturating_sub(before) / 1024;
    let sent_mib = (CONNECTIONS * payload.len()) >> 20;
    eprintln!("held requests: {sent_mib} MiB sent, peak RSS +{grown_mib} MiB, {refused} refused");
    // At most 4 padded pings fit in 64 KiB; half of all is a margin for a
    // machine that hashes faster than the server reads.
    assert!(
        refused >= CONNECTIONS * (REQUESTS - 4) / 2,
        "{refused} refused: the pings over 64 KiB per connection get errno 4"
    );
    assert!(
        grown_mib < 16,
        "the server's peak memory grew by {grown_mib} MiB for {sent_mib} MiB sent"
    );
}

/// Pings `c`; `true` if it answered, `false` if it was refused (errno 12)
/// and closed.
fn admitted(c: &mut Client) -> bool {
    c.send(&json!({"msgId": 25}));
    let v = c.recv();
    if v["msgId"] == 27 {
        // 12: too many anonymous; 13: too many connections at all.
        assert!(v["errno"] == 12 || v["errno"] == 13, "{v}");
        c.expect_closed(Duration::from_secs(5));
        return false;
    }
    assert_eq!(v["msgId"], 26, "{v}");
    true
}

/// Sweeps free a slot within 1 s of a login.
const SWEEP: Duration = Duration::from_millis(1500);

/// With `--max-anonymous-per-address 5`, the sixth anonymous connection from
/// 127.0.0.1 gets errno 12 and is closed, while logged-in users chat on; a
/// close or a login frees a slot.
fn anonymous_connections_per_address_are_limited(db: TestDb) {
    let server = Server::start(&db, &["--max-anonymous-per-address", "5"]);
    let mut alice = server.user("alice");
    let mut bob = server.user("bob");
    std::thread::sleep(SWEEP); // their slots are freed by their logins
    let mut anonymous: Vec<Client> = (0..5).map(|_| server.connect()).collect();
    for c in &mut anonymous {
        assert!(admitted(c));
    }
    let mut sixth = server.connect();
    assert!(!admitted(&mut sixth), "the sixth is refused");
    alice.chat(bob.uid, "still here");
    assert_eq!(bob.recv_chat().1, "still here");

    // A close gives its slot back.
    drop(anonymous.pop());
    crate::support::wait_until("a closed connection frees its slot", || {
        admitted(&mut server.connect())
    });
    // So does a login (at the next sweep), and a new account's login.
    let mut carol = anonymous.pop().expect("five were open");
    carol.register("carol", "secret");
    carol.login_ok("secret");
    std::thread::sleep(SWEEP);
    let mut seventh = server.connect();
    assert!(admitted(&mut seventh), "carol's login freed her slot");
    alice.chat(carol.uid, "welcome");
    assert_eq!(carol.recv_chat().1, "welcome");
}

/// With `--login-timeout 1s`, a connection that stays anonymous gets an
/// ERROR_MSG with errno 3 and is closed (even though it pings); a logged-in
/// one stays.
fn a_connection_that_never_logs_in_is_closed(db: TestDb) {
    let server = Server::start(&db, &["--login-timeout", "1s"]);
    let mut alice = server.user("alice");
    let mut lurker = server.connect();
    let start = Instant::now();
    let v = loop {
        lurker.send(&json!({"msgId": 25}));
        let v = lurker.recv();
        if v["msgId"] != 26 {
            break v;
        }
        assert!(start.elapsed() < Duration::from_secs(5), "never closed");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(v["msgId"], 27, "{v}");
    assert_eq!(v["errno"], 3, "{v}");
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}"
    );
    lurker.expect_closed(Duration::from_secs(3));
    // The logged-in user is well past the timeout and still served.
    alice.send(&json!({"msgId": 25}));
    alice.expect_errno(26, 0);
}

/// A login that waits longer than `--login-timeout` behind other logins'
/// password checks (one hashing thread, a queue of wrong logins in front
/// of it) is not closed for it: the timeout is for connections that never
/// try. The queue is sized from the measured time of one login, so that
/// the last login waits a few times the timeout.
fn a_login_under_way_outlives_the_login_timeout(db: TestDb) {
    let timeout = Duration::from_secs(1);
    let server = Server::start(
        &db,
        &[
            "--login-timeout",
            "1s",
            "--hash-threads",
            "1",
            "--argon2-passes",
            "300",
        ],
    );
    let mut bob = server.connect();
    bob.register("bob", "secret");
    let mut bob_again = server.connect();
    bob_again.uid = bob.uid;
    let start = Instant::now();
    bob_again.login_ok("secret");
    let one = start.elapsed().max(Duration::from_millis(1));
    let ahead = ((3 * timeout).as_secs_f64() / one.as_secs_f64()).ceil() as usize;
    let ahead = ahead.clamp(1, 600);

    let mut alice = server.connect();
    alice.register("alice", "secret");
    let wrong = json!({"msgId": 1, "uid": bob.uid, "password": "wrong"});
    let mut queue: Vec<Client> = (0..ahead).map(|_| server.connect()).collect();
    for c in &mut queue {
        c.send(&wrong);
    }
    let start = Instant::now();
    alice.send(&json!({"msgId": 1, "uid": alice.uid, "password": "secret"}));
    let v = alice
        .try_recv(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("alice's login after {:?}: {e:?}", start.elapsed()));
    let waited = start.elapsed();
    assert_eq!(v["msgId"], 2, "after {waited:?}: {v}");
    assert_eq!(v["errno"], 0, "after {waited:?}: {v}");
    eprintln!("one login {one:?}, {ahead} ahead: the last waited {waited:?}");
}

/// With `--max-connections-per-address 3`, the fourth connection from
/// 127.0.0.1 (one logged in, two anonymous) gets an ERROR_MSG with errno
/// 13 and is closed; another address connects meanwhile; a close frees a
/// place.
fn connections_per_address_are_a_quota(db: TestDb) {
    let server = Server::start(&db, &["--max-connections-per-address", "3"]);
    let mut alice = server.user("alice");
    let mut anonymous: Vec<Client> = (0..2).map(|_| server.connect()).collect();
    for c in &mut anonymous {
        assert!(admitted(c));
    }
    let mut fourth = server.connect();
    let v = fourth.recv();
    assert_eq!(v["msgId"], 27, "{v}");
    assert_eq!(v["errno"], 13, "{v}");
    fourth.expect_closed(Duration::from_secs(5));
    let mut elsewhere = Client::connect_from(server.addr, std::net::Ipv4Addr::new(127, 0, 0, 2));
    assert!(admitted(&mut elsewhere), "another address has its own");
    alice.send(&json!({"msgId": 25}));
    alice.expect_errno(26, 0);

    drop(anonymous.pop());
    crate::support::wait_until("a closed connection frees its place", || {
        admitted(&mut server.connect())
    });
}
