//! Requests held behind a login: bounded by bytes per session and across
//! the process, refused beyond with errno 4, and their bytes given back
//! when the login ends or the peer goes.

use serde_json::{json, Map, Value};

use super::fake::{Client, Harness};
use crate::protocol::{errno, msg_id};
use crate::service::session::footprint;

/// A ping padded to about `bytes` of text (the server ignores the extra
/// field).
fn padded_ping(bytes: usize) -> Value {
    json!({"msgId": msg_id::PING_MSG, "pad": "x".repeat(bytes)})
}

fn size_of(v: &Value) -> usize {
    let Value::Object(obj) = v else {
        panic!("a request is an object")
    };
    footprint(obj)
}

/// `client` starts a login whose password check waits at its account
/// read.
fn start_held_login(h: &Harness, client: &Client, name: &str, arrived: usize) {
    client.login(name);
    h.store.wait_arrived("user_by_name", arrived);
}

/// The errnos of the frames, in order.
fn errnos(frames: &[Value]) -> Vec<i64> {
    frames.iter().filter_map(|f| f["errno"].as_i64()).collect()
}

#[test]
fn a_session_holds_up_to_its_bytes_then_refuses_with_errno_4() {
    let h = Harness::new();
    h.user("bob");
    let one = size_of(&padded_ping(1000));
    h.svc.set_hold_limits(3 * one, 1 << 30);
    let bob = h.connect();
    h.store.hold("user_by_name");
    start_held_login(&h, &bob, "bob", 1);
    for _ in 0..4 {
        bob.request(padded_ping(1000));
    }
    assert_eq!(bob.session.state().held.len(), 3);
    assert_eq!(h.svc.held_bytes(), 3 * one);
    let refused = bob.take_frames();
    assert_eq!(refused.len(), 1, "{refused:?}");
    // A ping's failure comes in its ack, the pong.
    assert_eq!(refused[0]["msgId"], msg_id::PONG_MSG);
    assert_eq!(refused[0]["errno"], errno::BAD_REQUEST);
    assert_eq!(refused[0]["errmsg"], "too many requests while logging in");

    h.store.release("user_by_name");
    h.settle();
    let frames = bob.take_frames();
    let ids: Vec<i64> = frames.iter().filter_map(|f| f["msgId"].as_i64()).collect();
    assert_eq!(
        ids,
        [
            msg_id::LOGIN_MSG_ACK,
            msg_id::PONG_MSG,
            msg_id::PONG_MSG,
            msg_id::PONG_MSG
        ]
    );
    assert_eq!(
        errnos(&frames),
        [errno::OK, errno::OK, errno::OK, errno::OK]
    );
    assert_eq!(h.svc.held_bytes(), 0, "replayed: the bytes are given back");
}

#[test]
fn many_small_values_are_charged_more_than_their_text() {
    // `[0,0,0,…]`: 2 bytes of JSON per value, a 32-byte slot once parsed.
    let text = format!(r#"{{"msgId":25,"pad":[{}0]}}"#, "0,".repeat(999));
    let obj: Map<String, Value> = serde_json::from_str(&text).unwrap();
    assert!(footprint(&obj) > 10 * text.len(), "{}", footprint(&obj));
}

#[test]
fn the_process_total_bounds_every_session_together() {
    let h = Harness::new();
    h.user("alice");
    h.user("bob");
    let one = size_of(&padded_ping(1000));
    h.svc.set_hold_limits(10 * one, 3 * one);
    let alice = h.connect();
    let bob = h.connect();
    h.store.hold("user_by_name");
    start_held_login(&h, &alice, "alice", 1);
    start_held_login(&h, &bob, "bob", 2);
    alice.request(padded_ping(1000));
    alice.request(padded_ping(1000));
    bob.request(padded_ping(1000));
    bob.request(padded_ping(1000));
    assert_eq!(h.svc.held_bytes(), 3 * one);
    assert!(alice.take_frames().is_empty());
    assert_eq!(errnos(&bob.take_frames()), [errno::BAD_REQUEST]);
    h.store.release("user_by_name");
    h.settle();
    assert_eq!(h.svc.held_bytes(), 0);
}

#[test]
fn a_disconnect_gives_the_bytes_back() {
    let h = Harness::new();
    h.user("bob");
    let bob = h.connect();
    h.store.hold("user_by_name");
    start_held_login(&h, &bob, "bob", 1);
    bob.request(padded_ping(1000));
    assert!(h.svc.held_bytes() > 1000);
    bob.disconnect();
    assert_eq!(h.svc.held_bytes(), 0);
    h.store.release("user_by_name");
    h.settle();
}

#[test]
fn a_failed_login_replays_and_gives_the_bytes_back() {
    let h = Harness::new();
    h.user("bob");
    let bob = h.connect();
    h.store.hold("user_by_name");
    bob.request(json!({"msgId": msg_id::LOGIN_MSG, "username": "bob", "password": "wrong"}));
    h.store.wait_arrived("user_by_name", 1);
    bob.request(padded_ping(100));
    assert!(h.svc.held_bytes() > 100);
    h.store.release("user_by_name");
    h.settle();
    let frames = bob.take_frames();
    assert_eq!(errnos(&frames), [errno::FAILED, errno::OK]);
    assert_eq!(h.svc.held_bytes(), 0);
}
