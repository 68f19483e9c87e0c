//! `chat_delivery_latency_seconds` end to end: one-to-one and group
//! messages, over TCP and WebSocket, each live delivery observed once;
//! nothing with `--metrics off`.

use std::net::SocketAddr;

use serde_json::json;

use crate::support::ws::WsClient;
use crate::support::{wait_until, Client, Server, Test, TestDb};
use crate::web::{http, sample};

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    both_stores![live_deliveries_are_timed, nothing_is_timed_with_metrics_off]
}

const COUNT: &str = "chat_delivery_latency_seconds_count";

/// The body of one `/metrics` scrape.
fn scrape(web: SocketAddr) -> String {
    let r = http(web, "GET /metrics HTTP/1.1\r\nConnection: close\r\n\r\n", 1);
    assert!(r.starts_with("HTTP/1.1 200 OK\r\n"), "{r}");
    r.split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_owned())
}

/// `alice` on WebSocket, `bob` and `carol` on TCP, in one group; returns
/// the group's id.
fn three_in_a_group(server: &Server, web: SocketAddr) -> (WsClient, Client, Client, i64) {
    let mut alice = WsClient::user(web, "alice");
    let mut bob = server.user("bob");
    let mut carol = server.user("carol");
    let gid = bob.create_group("g", "timed");
    carol.join_group(gid);
    alice.send(&json!({"msgId": 12, "gid": gid}));
    alice.expect_errno(18, 0);
    (alice, bob, carol, gid)
}

/// A one-to-one message each way (read on TCP, on WebSocket) and a group
/// message to two other members: four live deliveries, four observations,
/// and the histogram's `+Inf` bucket holds them all.
fn live_deliveries_are_timed(db: TestDb) {
    let server = Server::start_web(&db, &[]);
    let web = server.web.expect("a web listener");
    let (mut alice, mut bob, mut carol, gid) = three_in_a_group(&server, web);
    let before = sample(&scrape(web), COUNT);
    bob.chat(alice.uid, "tcp to ws");
    alice.expect(9);
    alice.chat(bob.uid, "ws to tcp");
    bob.expect(9);
    bob.send(&json!({"msgId": 13, "uid": bob.uid, "gid": gid, "msg": "to the group"}));
    carol.expect(13);
    alice.expect(13);
    wait_until("four deliveries are observed", || {
        sample(&scrape(web), COUNT) - before == 4.0
    });
    let text = scrape(web);
    assert!(
        text.contains("# TYPE chat_delivery_latency_seconds histogram\n"),
        "{text}"
    );
    let inf = "chat_delivery_latency_seconds_bucket{le=\"+Inf\"}";
    assert_eq!(sample(&text, inf), sample(&text, COUNT), "{text}");
    assert!(
        sample(&text, "chat_delivery_latency_seconds_sum") > 0.0,
        "{text}"
    );
    // An offline recipient's message is not a live delivery.
    drop(carol);
    wait_until("carol is gone", || {
        sample(&scrape(web), "chat_logged_in_users") == 2.0
    });
    bob.send(&json!({"msgId": 13, "uid": bob.uid, "gid": gid, "msg": "carol is away"}));
    alice.expect(13);
    wait_until("the fifth delivery is observed", || {
        sample(&scrape(web), COUNT) - before >= 5.0
    });
    let later = scrape(web);
    assert_eq!(sample(&later, COUNT) - before, 5.0, "{later}");
}

/// With `--metrics off` the histogram stays empty.
fn nothing_is_timed_with_metrics_off(db: TestDb) {
    let server = Server::start_web(&db, &["--metrics", "off"]);
    let web = server.web.expect("a web listener");
    let (mut alice, mut bob, mut carol, gid) = three_in_a_group(&server, web);
    bob.chat(alice.uid, "untimed");
    alice.expect(9);
    bob.send(&json!({"msgId": 13, "uid": bob.uid, "gid": gid, "msg": "untimed"}));
    carol.expect(13);
    alice.expect(13);
    let text = scrape(web);
    assert_eq!(sample(&text, COUNT), 0.0, "{text}");
}
