//! The web listener (`--http`) end to end: its HTTP routes, and the chat
//! protocol over `/ws` (one JSON object per text frame) with the same
//! service as the TCP listener: a WebSocket user and TCP users chat, in
//! groups, offline, and with the same errors.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::json;
use tungstenite::Message;

use crate::support::client::without_log;
use crate::support::cluster::Cluster;
use crate::support::redis::PrivateRedis;
use crate::support::ws::WsClient;
use crate::support::{wait_until, Env, Need, Server, Test, TestDb};

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    let mut tests = both_stores![
        ws_and_tcp_users_chat,
        offline_and_groups_over_ws,
        a_silent_websocket_is_replaced_by_a_tcp_login
    ];
    tests.push(
        Test::new(
            "web::readyz_follows_the_cluster_redis",
            readyz_follows_the_cluster_redis,
        )
        .needs(&[Need::Mysql, Need::Redis, Need::RedisServer]),
    );
    tests.extend(tests![
        http_routes,
        ws_errors_are_the_tcp_listeners,
        ws_limits_are_the_tcp_listeners,
        plain_http_connections_are_bounded_per_address,
        metrics_parse_and_move,
        readyz_is_503_from_sigterm
    ]);
    tests
}

/// Plain-HTTP connections have `--max-connections-per-address` slots per
/// address of their own: one more is answered 429 and closed, a slot comes
/// back when its connection closes, a WebSocket gives its HTTP slot back
/// at the upgrade, and chat connections are not counted against them.
fn plain_http_connections_are_bounded_per_address() {
    let server = Server::start_web(&TestDb::sqlite(), &["--max-connections-per-address", "2"]);
    let web = server.web.expect("a web listener");
    // A chat connection from the same address does not take an HTTP slot.
    let mut tcp = server.connect();
    tcp.send(&json!({"msgId": 25}));
    tcp.expect(26);
    // Two HTTP connections, held: the address's slots.
    let held: Vec<TcpStream> = (0..2).map(|_| admitted(web)).collect();
    let third = http(web, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 1);
    assert!(third.starts_with("HTTP/1.1 429"), "{third}");
    assert!(third.contains("Connection: close"), "{third}");
    // A refused client that keeps its end open is closed soon all the
    // same: the server's socket goes (its writes then meet a reset) well
    // before the HTTP lifetime of 60 s.
    let mut refused = TcpStream::connect(web).unwrap();
    refused
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut sink = Vec::new();
    let _ = refused.read_to_end(&mut sink);
    assert!(String::from_utf8_lossy(&sink).starts_with("HTTP/1.1 429"));
    let start = std::time::Instant::now();
    while refused.write_all(b"x").is_ok() {
        assert!(start.elapsed() < Duration::from_secs(10), "still open");
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(held);
    // The slots come back as the server sees the two close.
    wait_until("an HTTP slot is given back", || {
        let answer = http(
            web,
            "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            1,
        );
        answer.starts_with("HTTP/1.1 200")
    });
    // A WebSocket leaves its HTTP slot at the upgrade: with one WebSocket
    // open (and the chat connection), two HTTP connections still fit.
    let mut ws = WsClient::connect(web);
    ws.send_message(Message::text(json!({"msgId": 25}).to_string()));
    ws.expect(26);
    let held: Vec<TcpStream> = (0..2).map(|_| admitted(web)).collect();
    let again = http(web, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", 1);
    assert!(again.starts_with("HTTP/1.1 429"), "{again}");
    drop((held, ws, tcp));
}

/// An HTTP connection the server has admitted: its keep-alive request
/// was answered 200, and it stays open.
fn admitted(web: SocketAddr) -> TcpStream {
    let mut s = TcpStream::connect(web).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let mut got = Vec::new();
    let mut chunk = [0u8; 1024];
    while !complete(&got) {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
        }
    }
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    s
}

/// Sends raw `request` bytes and reads until the server closes or
/// `responses` responses have arrived; returns what came.
pub(crate) fn http(web: SocketAddr, request: &str, responses: usize) -> String {
    let mut s = TcpStream::connect(web).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s.write_all(request.as_bytes()).expect("write");
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    while String::from_utf8_lossy(&got).matches("HTTP/1.1 ").count() < responses || !complete(&got)
    {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// Whether the last response in `got` has all of its body.
fn complete(got: &[u8]) -> bool {
    let text = String::from_utf8_lossy(got);
    let Some(start) = text.rfind("HTTP/1.1 ") else {
        return false;
    };
    let last = &text[start..];
    let Some((head, body)) = last.split_once("\r\n\r\n") else {
        return false;
    };
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(0);
    body.len() >= length
}

/// `/`, its assets, `/healthz`, `/readyz`, 404, keep-alive with two
/// requests in one write.
fn http_routes() {
    let server = Server::start_web(&TestDb::sqlite(), &[]);
    let web = server.web.expect("a web listener");
    let page = http(
        web,
        "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        1,
    );
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(page.contains("text/html"), "{page}");
    assert!(page.contains("<html"), "{page}");
    for path in ["/app.js", "/style.css", "/healthz"] {
        let r = http(
            web,
            &format!("GET {path} HTTP/1.1\r\nConnection: close\r\n\r\n"),
            1,
        );
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{path}: {r}");
    }
    wait_until("/readyz answers 200", || {
        http(web, "GET /readyz HTTP/1.0\r\n\r\n", 1).starts_with("HTTP/1.1 200 ")
    });
    let inspect = http(web, "GET /inspect HTTP/1.1\r\nConnection: close\r\n\r\n", 1);
    for want in [
        "HTTP/1.1 200 OK",
        "tcp-0",
        "tcp-1",
        "web-0",
        "worker jobs: ",
    ] {
        assert!(inspect.contains(want), "{want}: {inspect}");
    }
    let missing = http(web, "GET /nope HTTP/1.1\r\nConnection: close\r\n\r\n", 1);
    assert!(missing.starts_with("HTTP/1.1 404 "), "{missing}");
    // Two requests in one write on one connection: two answers, in order.
    let two = http(
        web,
        "GET /healthz HTTP/1.1\r\n\r\nGET /nope HTTP/1.1\r\nConnection: close\r\n\r\n",
        2,
    );
    let (first, second) = two.split_once("HTTP/1.1 404").expect("two responses");
    assert!(first.starts_with("HTTP/1.1 200 OK"), "{two}");
    assert!(second.contains("Connection: close"), "{two}");
    // /ws without an upgrade: 426.
    let plain = http(web, "GET /ws HTTP/1.1\r\n\r\n", 1);
    assert!(plain.starts_with("HTTP/1.1 426 "), "{plain}");
}

/// A WebSocket user and a TCP user chat both ways.
fn ws_and_tcp_users_chat(db: TestDb) {
    let server = Server::start_web(&db, &[]);
    let web = server.web.expect("a web listener");
    let mut alice = WsClient::user(web, "alice");
    let mut bob = server.user("bob");
    let sent = json!({"msgId": 9, "from": alice.uid, "username": "alice", "to": bob.uid,
                      "msg": "from the browser 👋", "time": "2024-05-06 07:08:09"});
    alice.send(&sent);
    assert_eq!(without_log(&bob.expect(9)), sent);
    bob.chat(alice.uid, "from the terminal");
    let got = alice.expect(9);
    assert_eq!(
        (got["from"].as_i64(), got["msg"].as_str()),
        (Some(bob.uid), Some("from the terminal"))
    );
    // The same errors as over TCP: to nobody, errno 7.
    alice.chat(777_777, "void");
    assert_eq!(alice.expect_errno(27, 7)["req"], 9);
    // A ping (msgId 25) answered as over TCP.
    alice.send(&json!({"msgId": 25}));
    alice.expect(26);
}

/// Offline messages reach a user who logs in over WebSocket; group chat
/// crosses the two listeners.
fn offline_and_groups_over_ws(db: TestDb) {
    let server = Server::start_web(&db, &[]);
    let web = server.web.expect("a web listener");
    let mut bob = server.user("bob");
    let mut carol_tcp = server.connect();
    let carol = carol_tcp.register("carol", "secret");
    drop(carol_tcp);
    bob.chat(carol, "while you were away");
    std::thread::sleep(Duration::from_millis(200));
    let mut carol_ws = WsClient::connect(web);
    carol_ws.send(&json!({"msgId": 1, "uid": carol, "password": "secret"}));
    let login = carol_ws.expect_errno(2, 0);
    let offline = login["offlinemsgs"].to_string();
    let delivered_later =
        offline.contains("while you were away") || carol_ws.recv()["msg"] == "while you were away";
    assert!(delivered_later, "{login}");

    let gid = bob.create_group("g", "both listeners");
    carol_ws.send(&json!({"msgId": 12, "gid": gid}));
    carol_ws.expect_errno(18, 0);
    carol_ws.send(
        &json!({"msgId": 13, "uid": carol, "username": "carol", "gid": gid,
                          "msg": "hello group", "time": "2024-05-06 07:08:09"}),
    );
    let heard = bob.expect(13);
    assert_eq!(heard["msg"], "hello group", "{heard}");
}

/// The takeover over WebSocket: after `--login-takeover-grace` a TCP login
/// of the same account replaces a silent WebSocket, which gets the notice
/// (errno 2) and a close 1000.
fn a_silent_websocket_is_replaced_by_a_tcp_login(db: TestDb) {
    let server = Server::start_web(&db, &["--login-takeover-grace", "1s"]);
    let web = server.web.expect("a web listener");
    let mut silent = WsClient::user(web, "alice");
    std::thread::sleep(Duration::from_millis(1500));
    let mut second = server.connect();
    second.uid = silent.uid;
    second.login_ok("secret");
    let last = silent.expect_errno(27, 2);
    assert!(
        last["errmsg"]
            .as_str()
            .unwrap_or("")
            .contains("logged in elsewhere"),
        "{last}"
    );
    assert_eq!(silent.expect_close(), Some(1000));
}

/// In cluster mode `/readyz` is 503 while the node's Redis is down and 200
/// again once it is back.
fn readyz_follows_the_cluster_redis() {
    let mut redis = PrivateRedis::start();
    let env = Env::on("readyz", &redis.url());
    let cluster = Cluster::start_with(&env, 1, "2s", &["--http", "127.0.0.1:0"]);
    let web = cluster.node(1).web.expect("a web listener");
    let ready = || http(web, "GET /readyz HTTP/1.0\r\n\r\n", 1);
    wait_until("/readyz answers 200", || {
        ready().starts_with("HTTP/1.1 200 ")
    });
    redis.kill();
    wait_until("/readyz answers 503", || {
        let r = ready();
        r.starts_with("HTTP/1.1 503 ") && r.contains("Redis")
    });
    assert!(redis.restart(), "redis-server restarts");
    wait_until("/readyz answers 200 again", || {
        ready().starts_with("HTTP/1.1 200 ")
    });
}

/// Bad input over `/ws`: a text frame that is not JSON gets the TCP
/// listener's error reply, then close 1008; a binary frame close 1003.
fn ws_errors_are_the_tcp_listeners() {
    let server = Server::start_web(&TestDb::sqlite(), &[]);
    let web = server.web.expect("a web listener");
    let mut c = WsClient::connect(web);
    c.send_message(Message::text("this is not json"));
    let v = c.expect(27);
    assert_eq!(v["errno"], 11, "{v}");
    assert_eq!(c.expect_close(), Some(1008));

    let mut c = WsClient::connect(web);
    c.send_message(Message::binary(vec![1, 2, 3]));
    c.expect(27);
    assert_eq!(c.expect_close(), Some(1003));

    // An object split over two frames is not two halves of one message.
    let mut c = WsClient::connect(web);
    c.send_message(Message::text("{\"msgId\":"));
    c.expect(27);
    assert_eq!(c.expect_close(), Some(1008));
}

/// The per-address connection quota counts both listeners, and the login
/// timeout closes an anonymous WebSocket as it does a TCP connection.
fn ws_limits_are_the_tcp_listeners() {
    let server = Server::start_web(
        &TestDb::sqlite(),
        &[
            "--max-connections-per-address",
            "1",
            "--login-timeout",
            "3s",
        ],
    );
    let web = server.web.expect("a web listener");
    let mut tcp = server.connect();
    // Answered: the server has admitted it.
    tcp.send(&json!({"msgId": 25}));
    tcp.expect(26);
    // The second connection from 127.0.0.1, over WebSocket: refused.
    let mut ws = WsClient::connect(web);
    assert_eq!(ws.expect_errno(27, 13)["errno"], 13);
    assert_eq!(ws.expect_close(), Some(1008));
    // The TCP one is anonymous: the sweep closes it; then a WebSocket may
    // connect, and it is closed the same way after its second.
    tcp.expect_errno(27, 3);
    tcp.expect_closed(Duration::from_secs(10));
    drop((tcp, ws));
    // The EOF is the server's shutdown; a later sweep closes the socket
    // and gives the slot back.
    let mut tries = 0;
    let mut ws = loop {
        let mut ws = WsClient::connect(web);
        let v = ws.recv();
        tries += 1;
        if v["errno"] == 13 && tries < 200 {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        assert_eq!(
            (v["msgId"].as_i64(), v["errno"].as_i64()),
            (Some(27), Some(3)),
            "{v}"
        );
        break ws;
    };
    // Shut down after the notice, then closed by the sweep.
    let _ = ws.expect_close();
}

/// The value of the sample `series` (name and labels, exactly) in a scrape.
pub(crate) fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {series} in:\n{text}"))
}

/// `/metrics` is OpenMetrics text (every line a comment or a sample, `#
/// EOF` last), and its counters move with the traffic.
fn metrics_parse_and_move() {
    let server = Server::start_web(&TestDb::sqlite(), &[]);
    let web = server.web.expect("a web listener");
    let scrape = || {
        let r = http(web, "GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n", 1);
        assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
        assert!(
            r.contains("Content-Type: application/openmetrics-text"),
            "{r}"
        );
        let body = r.split_once("\r\n\r\n").expect("a body").1.to_owned();
        assert!(body.ends_with("# EOF\n"), "{body}");
        for line in body.lines().filter(|l| !l.starts_with('#')) {
            let (series, value) = line.rsplit_once(' ').expect("name value");
            assert!(value.parse::<f64>().is_ok(), "{line}");
            let name = series.split('{').next().unwrap_or("");
            assert!(
                !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'),
                "{line}"
            );
            assert_eq!(series.contains('{'), series.ends_with('}'), "{line}");
        }
        body
    };
    let before = scrape();
    let mut alice = WsClient::user(web, "alice");
    let mut bob = server.user("bob");
    alice.chat(bob.uid, "counted");
    bob.expect(9);
    alice.chat(777_777, "to nobody");
    alice.expect_errno(27, 7);
    let after = scrape();
    let chats = "chat_messages_total{kind=\"chat\"}";
    assert_eq!(sample(&after, chats) - sample(&before, chats), 2.0);
    assert_eq!(sample(&after, "chat_errors_total{errno=\"7\"}"), 1.0);
    assert_eq!(sample(&after, "chat_connections{transport=\"ws\"}"), 1.0);
    assert!(sample(&after, "chat_connections{transport=\"tcp\"}") >= 1.0);
    assert!(sample(&after, "process_open_fds") > 0.0 || sample(&before, "process_open_fds") == 0.0);
    wait_until("the sampler sees two users", || {
        sample(&scrape(), "chat_logged_in_users") == 2.0
    });
    let text = scrape();
    assert!(sample(&text, "process_resident_memory_bytes") > 0.0);
    // The store's calls are timed (the readiness check is one of them).
    assert!(
        text.contains("# TYPE chat_store_latency_seconds histogram\n"),
        "{text}"
    );
    let checks = "chat_store_latency_seconds_count{operation=\"user_by_id\"}";
    assert!(sample(&text, checks) >= 1.0, "{text}");
    let inf = "chat_store_latency_seconds_bucket{le=\"+Inf\",operation=\"user_by_id\"}";
    let alt = "chat_store_latency_seconds_bucket{operation=\"user_by_id\",le=\"+Inf\"}";
    let line = text
        .lines()
        .find(|l| l.starts_with(inf) || l.starts_with(alt))
        .unwrap_or_else(|| panic!("no +Inf bucket in:\n{text}"));
    // Cumulative: the +Inf bucket holds every observation.
    let last: f64 = line
        .rsplit(' ')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1.0);
    let count = sample(&text, checks);
    assert_eq!(last, count, "{line}");
}

/// From SIGTERM on `/readyz` answers 503, while the listeners still
/// accept (`--drain-grace` keeps them open).
fn readyz_is_503_from_sigterm() {
    let server = Server::start_web(&TestDb::sqlite(), &["--drain-grace", "3s"]);
    let web = server.web.expect("a web listener");
    wait_until("/readyz answers 200", || {
        http(web, "GET /readyz HTTP/1.0\r\n\r\n", 1).starts_with("HTTP/1.1 200 ")
    });
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(server.pid() as libc::pid_t, libc::SIGTERM);
    }
    wait_until("/readyz answers 503", || {
        http(web, "GET /readyz HTTP/1.0\r\n\r\n", 1).starts_with("HTTP/1.1 503 ")
    });
    // The chat listener still accepts during the grace.
    let mut c = server.connect();
    c.send(&json!({"msgId": 25}));
    c.expect(26);
}
