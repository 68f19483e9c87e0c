//! Reliability under abuse and bad luck (issue 12), over real TCP against
//! a real `chat-server`:
//!
//! * a client that writes and closes in one go is seen to close: it is not
//!   left online, and messages to it are stored in the log for its next
//!   login (item 2);
//! * connections that send `{` and hang up are released at once, not at
//!   the idle timeout (item 2);
//! * a chat carries its sender's real name whatever `username` it claims,
//!   and new names refuse bidi controls (item 8);
//! * a chat written one byte at a time arrives whole, and `1e309` is a bad
//!   field, not a broken stream (item 11);
//! * a connection gives a large message's input buffer back (item 11);
//! * one client flooding offline and unknown recipients is throttled
//!   (errno 12 with `retry_after`), the server's memory stays bounded, and
//!   the other users' chat gets through meanwhile (item 3).

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::client::{logged, nested};
use crate::support::{wait_until, Client, Server, Test, TestDb};

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    let mut tests = both_stores![
        a_login_written_with_the_close_logs_out,
        a_chat_written_with_the_close_logs_out,
        chats_carry_the_senders_own_name,
        a_flood_to_offline_and_unknown_users_is_throttled,
    ];
    tests.extend(tests![
        half_messages_then_close_are_released_at_once,
        bidi_override_names_are_refused,
        a_chat_in_one_byte_writes_arrives_whole,
        an_out_of_range_number_is_a_bad_field,
        input_buffers_shrink_after_a_large_message,
    ]);
    tests
}

/// Everything the server sends on `stream` until it closes, as JSON
/// values; fails the test if it has not closed within `within`.
fn read_to_eof(mut stream: TcpStream, within: Duration) -> Vec<Value> {
    let deadline = Instant::now() + within;
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(!left.is_zero(), "the server did not close the connection");
        stream.set_read_timeout(Some(left)).expect("timeout");
        match stream.read(&mut chunk) {
            Ok(0) => break, // EOF
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => break, // a reset: closed as well
        }
    }
    serde_json::Deserializer::from_slice(&bytes)
        .into_iter::<Value>()
        .map(|v| v.expect("replies are JSON"))
        .collect()
}

/// A raw connection that writes `bytes` and then sends its FIN at once.
fn write_and_shut(server: &Server, bytes: &[u8]) -> TcpStream {
    let mut s = TcpStream::connect(server.addr).expect("connect");
    s.write_all(bytes).expect("write");
    s.shutdown(Shutdown::Write).expect("shutdown");
    s
}

/// Alice (online) writes to `bob`, who must be offline; the message is
/// stored in the log and comes in the ack of bob's next login, which must
/// succeed, alone (not what bob wrote himself) and numbered `seq` in their
/// conversation.
fn offline_then_delivered(server: &Server, db: &TestDb, alice: &mut Client, bob: i64, seq: i64) {
    let before = db.chatlog_rows_from(alice.uid);
    alice.chat(bob, "while you were away");
    alice.send(&json!({"msgId": 25}));
    alice.expect(26); // read and handled
    wait_until("the message is stored in the log", || {
        db.chatlog_rows_from(alice.uid) == before + 1
    });
    let mut again = server.connect();
    let ack = again.request(json!({"msgId": 1, "uid": bob, "password": "secret"}));
    assert_eq!(ack["errno"], 0, "bob is still online: {ack}");
    let msgs = nested(&ack, "offlinemsgs");
    let texts: Vec<Value> = msgs.iter().map(|m| m["msg"].clone()).collect();
    assert_eq!(texts, vec![json!("while you were away")], "{ack}");
    assert_eq!(logged(&msgs[0]).seq, seq, "{ack}");
}

/// Item 2: `write_all(login)` then `shutdown(Write)`. Before the fix the
/// FIN, which came with the login, was never read: the server did not
/// close, and bob stayed online (errno 2 on his next login, alice's message
/// written into the dead socket).
fn a_login_written_with_the_close_logs_out(db: TestDb) {
    let server = Server::start(&db, &[]);
    let mut alice = server.user("alice");
    // Several rounds: without the fix, a FIN that happened to come with an
    // edge of its own was seen, one that came with the data was not.
    for round in 0..8 {
        let bob = server.connect().register(&format!("bob{round}"), "secret");
        let login = json!({"msgId": 1, "uid": bob, "password": "secret"}).to_string();
        let replies = read_to_eof(
            write_and_shut(&server, login.as_bytes()),
            Duration::from_secs(10),
        );
        // The close may be handled before the password check ends; then
        // the ack is not sent at all.
        assert!(
            replies.iter().all(|v| v["msgId"] == 2 && v["errno"] == 0),
            "{replies:?}"
        );
        offline_then_delivered(&server, &db, &mut alice, bob, 1);
    }
}

/// Item 2: a logged-in client writes a chat and drops its socket in one go.
/// The chat is delivered, and its sender is offline afterwards.
fn a_chat_written_with_the_close_logs_out(db: TestDb) {
    let server = Server::start(&db, &[]);
    let mut alice = server.user("alice");
    for round in 0..8 {
        let b = server.connect().register(&format!("bob{round}"), "secret");
        let mut raw = raw_login(&server, b);
        let chat = json!({"msgId": 9, "from": b, "to": alice.uid, "msg": "bye"});
        raw.write_all(chat.to_string().as_bytes()).expect("write");
        drop(raw); // the FIN right behind the chat
        assert_eq!(alice.recv_chat(), (b, "bye".to_owned()));
        // Seen closed: bob is offline, and what comes meanwhile waits for him.
        let online = format!("SELECT COUNT(*) FROM user WHERE id = {b} AND state = 'online'");
        wait_until("bob is offline", || db.query_i64(&online) == 0);
        // Bob's "bye" is seq 1 of the conversation: alice's reply is 2.
        offline_then_delivered(&server, &db, &mut alice, b, 2);
    }
}

/// A raw connection logged in as `uid` (password "secret"), its login ack
/// read.
fn raw_login(server: &Server, uid: i64) -> TcpStream {
    let mut s = TcpStream::connect(server.addr).expect("connect");
    let login = json!({"msgId": 1, "uid": uid, "password": "secret"});
    s.write_all(login.to_string().as_bytes()).expect("write");
    s.set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut ack = Vec::new();
    let mut byte = [0u8; 1];
    while ack.last() != Some(&b'\n') {
        let n = s.read(&mut byte).expect("login ack");
        assert_eq!(n, 1, "closed before the login ack");
        ack.push(byte[0]);
    }
    let ack: Value = serde_json::from_slice(&ack).expect("ack is JSON");
    assert_eq!(ack["errno"], 0, "{ack}");
    s
}

/// Item 2 (abuse): connect, send `{`, hang up. Before the fix each one held
/// a descriptor (and a connection) until the 300 s idle timeout.
fn half_messages_then_close_are_released_at_once() {
    let server = Server::fresh();
    let before = open_fds(&server);
    const N: usize = 200;
    for i in 0..N {
        let mut s = TcpStream::connect(server.addr).expect("connect");
        s.write_all(b"{").expect("write");
        if i % 2 == 0 {
            s.shutdown(Shutdown::Write).expect("shutdown");
        } // else: dropped, which sends the FIN as well
    }
    // Well before the idle timeout: every descriptor is given back.
    wait_until("the half-message connections are closed", || {
        open_fds(&server) <= before + 2
    });
    // And the server serves as before.
    let mut c = server.user("carol");
    c.send(&json!({"msgId": 25}));
    c.expect(26);
}

/// How many descriptors the server process has open.
fn open_fds(server: &Server) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", server.pid()))
        .map(|d| d.count())
        .unwrap_or(usize::MAX)
}

/// Item 8: `username` is set by the server from the account, live and
/// offline; before, the text the sender wrote was kept ("bob" from alice).
fn chats_carry_the_senders_own_name(db: TestDb) {
    let server = Server::start(&db, &[]);
    let mut alice = server.user("alice");
    let mut bob = server.user("bob");
    let mut carol = server.connect();
    let c = carol.register("carol", "secret");

    // `from` must be the sender's own uid (errno 3 otherwise); the name is
    // what a spoofer could still change.
    let a = alice.uid;
    let spoof = |to: i64| json!({"msgId": 9, "from": a, "username": "bob", "to": to, "msg": "hi"});
    // Live: bob sees alice's name on alice's message.
    alice.send(&spoof(bob.uid));
    let got = bob.expect(9);
    assert_eq!(
        (got["username"].clone(), got["from"].clone()),
        (json!("alice"), json!(alice.uid))
    );
    assert_eq!(logged(&got).seq, 1);
    // Offline: stored in the log with alice's name, and so delivered.
    alice.send(&spoof(c));
    alice.send(&json!({"msgId": 25}));
    alice.expect(26);
    wait_until("the message is stored in the log", || {
        db.chatlog_rows() == 2
    });
    let ack = carol.login_ok("secret");
    let msgs = nested(&ack, "offlinemsgs");
    assert_eq!(msgs.len(), 1, "{ack}");
    assert_eq!(
        (msgs[0]["username"].clone(), msgs[0]["from"].clone()),
        (json!("alice"), json!(alice.uid))
    );
    let offline = logged(&msgs[0]);
    assert_eq!(offline.seq, 1, "{ack}");
    assert_ne!(
        offline.conv,
        logged(&got).conv,
        "alice-carol is not alice-bob"
    );
}

/// Item 8: a name that would print right to left from the override on is
/// refused with errno 4 (it was accepted), and the connection stays open.
fn bidi_override_names_are_refused() {
    let server = Server::fresh();
    let mut c = server.connect();
    let reply = c.request(json!({"msgId": 5, "username": "admin\u{202E}nimda", "password": "pw"}));
    assert_eq!(
        (reply["msgId"].clone(), reply["errno"].clone()),
        (json!(6), json!(4)),
        "{reply}"
    );
    c.register("plain_name", "pw");
}

/// Item 11: a chat cut into 1-byte writes (each its own segment, read on
/// its own) arrives whole, multi-byte characters included.
fn a_chat_in_one_byte_writes_arrives_whole() {
    let server = Server::fresh();
    let mut alice = server.user("alice");
    let mut bob = server.user("bob");
    let text = "split ✂ into 字节 one by one 👋".repeat(8);
    let chat = json!({"msgId": 9, "to": bob.uid, "msg": text, "time": "2024-01-01 00:00:00"});
    for byte in chat.to_string().as_bytes() {
        alice.send_raw(&[*byte]);
        std::thread::sleep(Duration::from_micros(200));
    }
    assert_eq!(bob.recv_chat(), (alice.uid, text));
}

/// Item 11: `1e309` (beyond a double) is a bad value like any other: errno
/// 4 and the connection goes on. It was "invalid JSON", errno 11, closed.
fn an_out_of_range_number_is_a_bad_field() {
    let server = Server::fresh();
    let mut alice = server.user("alice");
    let mut bob = server.user("bob");
    let bad = format!(r#"{{"msgId":9,"to":{},"msg":"x","time":1e309}}"#, bob.uid);
    alice.send_raw(bad.as_bytes());
    alice.expect_errno(27, 4);
    alice.chat(bob.uid, "still here");
    assert_eq!(bob.recv_chat(), (alice.uid, "still here".to_owned()));
}

/// Item 11: after a 1 MiB message has been consumed, the connection's input
/// buffer goes back to its initial size. Measured as the server's resident
/// memory per connection, with every connection still open; the figure is
/// printed (`--nocapture`). `CHAT_SHRINK_CONNECTIONS` sets the count (200
/// by default; 1,000 for the figure measured by hand: 2.3 KiB per
/// connection with the shrink, 1,029 KiB without).
fn input_buffers_shrink_after_a_large_message() {
    let n: usize = std::env::var("CHAT_SHRINK_CONNECTIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    crate::support::raise_fd_limit();
    let db = TestDb::sqlite();
    let server = Server::start(&db, &["--max-message", "2MiB"]);
    // A ping padded to 1 MiB: it asks for nothing but a small answer.
    let big = json!({"msgId": 25, "pad": "p".repeat(1 << 20)}).to_string();
    let mut conns: Vec<_> = (0..n).map(|_| server.connect()).collect();
    for c in conns.iter_mut() {
        c.send(&json!({"msgId": 25}));
        c.expect(26);
    }
    let before = server.rss_kib();
    for c in conns.iter_mut() {
        c.send_raw(big.as_bytes());
        c.expect(26);
    }
    let after = server.rss_kib();
    let per_conn = after.saturating_sub(before) as f64 / n as f64;
    eprintln!(
        "RSS {before} KiB -> {after} KiB after one 1 MiB message on each of {n} connections: \
         {per_conn:.1} KiB per connection"
    );
    // Without the shrink every connection keeps its megabyte.
    assert!(per_conn < 256.0, "{per_conn:.1} KiB kept per connection");
}

/// Item 3: one logged-in client writes chats to a user that does not
/// exist and to one that is offline, as fast as it can, for two seconds.
/// Before the fix nothing slowed it: every message was a job for the
/// store. Now its chat rate (`--chat-rate 500` here) refuses most with
/// errno 12 and a `retry_after`; the server's resident memory grows by
/// less than 64 MiB; and two other users' chat goes through meanwhile,
/// every message acknowledged and delivered.
fn a_flood_to_offline_and_unknown_users_is_throttled(db: TestDb) {
    let server = Server::start(&db, &["--chat-rate", "500", "--chat-burst", "500"]);
    let offline = server.connect().register("offline", "secret");
    let mut carol = server.user("carol");
    let mut dave = server.user("dave");
    let flooder = server.connect().register("flooder", "secret");
    let rss_before = server.rss_kib();

    let mut out = raw_login(&server, flooder);
    let mut replies = out.try_clone().expect("clone");
    let reader = std::thread::spawn(move || {
        // (errno 12 with retry_after, any other reply)
        let (mut throttled, mut other) = (0u64, 0u64);
        let mut pending = Vec::new();
        let mut chunk = [0u8; 65536];
        replies
            .set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        while let Ok(n) = replies.read(&mut chunk) {
            if n == 0 {
                break;
            }
            pending.extend_from_slice(&chunk[..n]);
            let mut start = 0;
            while let Some(len) = pending[start..].iter().position(|&b| b == b'\n') {
                let v: Value = serde_json::from_slice(&pending[start..start + len]).expect("JSON");
                start += len + 1;
                if v["errno"] == 12 && v["retry_after"].as_f64().is_some_and(|r| r > 0.0) {
                    throttled += 1;
                } else {
                    other += 1;
                }
            }
            pending.drain(..start);
        }
        (throttled, other)
    });
    let writer = std::thread::spawn(move || {
        let mut batch = String::new();
        for i in 0..100 {
            let to = if i % 2 == 0 { 999_999 } else { offline };
            batch.push_str(&json!({"msgId": 9, "to": to, "msg": "flood"}).to_string());
        }
        let (start, mut sent) = (Instant::now(), 0u64);
        while start.elapsed() < Duration::from_secs(2) {
            if out.write_all(batch.as_bytes()).is_err() {
                break;
            }
            sent += 100;
        }
        sent
    });

    // Meanwhile, carol and dave talk: every message is acknowledged and
    // delivered. (Each refusal still costs the flooder's I/O thread a
    // parse and an answer, so a round trip on that thread may wait for
    // its turn: in a debug build on a busy machine, up to a second or so.)
    let (talk, mut worst) = (Instant::now(), Duration::ZERO);
    for i in 0..20 {
        let cid = format!("c{i}");
        let t = Instant::now();
        carol.send(&json!({"msgId": 9, "to": dave.uid, "msg": cid, "cid": cid}));
        assert_eq!(carol.expect(28)["errno"], 0);
        assert_eq!(dave.expect(9)["msg"], cid);
        worst = worst.max(t.elapsed());
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "chat during the flood: 20 round trips in {:?}, the worst {worst:?}",
        talk.elapsed()
    );
    assert!(
        talk.elapsed() < Duration::from_secs(30),
        "chat slowed to {:?}",
        talk.elapsed()
    );
    let sent = writer.join().expect("writer");
    let (throttled, other) = reader.join().expect("reader");
    let rss_after = server.rss_kib();
    assert!(
        throttled > 0,
        "the flooder was never throttled ({sent} sent, {other} other replies)"
    );
    // What got past the rate: 500 at once, then 500 a second for the two
    // seconds of the flood and the draining of what it wrote (a few
    // seconds at most). Half went to the unknown user (errno 7), half
    // into the log.
    let stored = db.chatlog_rows_from(flooder);
    assert!(
        stored < 3_000 && other < 3_000,
        "the rate let through {stored} stored and {other} answered of {sent}"
    );
    assert!(
        rss_after < rss_before + 64 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    // The server is still well.
    carol.send(&json!({"msgId": 25}));
    carol.expect(26);
}
