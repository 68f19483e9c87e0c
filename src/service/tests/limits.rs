//! The limits on one connection's requests (src/service/limits.rs): worker
//! jobs in flight per connection and in total (errno 12, nothing done),
//! internal jobs never refused, and the rate limit's `retry_after`.

use serde_json::json;

use super::fake::Harness;
use crate::protocol::{errno, msg_id};
use crate::service::session::Rate;
use crate::service::LimitSettings;

fn refresh() -> serde_json::Value {
    json!({"msgId": msg_id::ACOUNT_FRESH_MSG})
}

/// `--max-pending-requests 2`: with one refresh held in the store and one
/// queued behind it, a third is answered at once with errno 12 and never
/// reaches the store; once they are done the connection may ask again.
#[test]
fn a_connection_s_worker_jobs_are_bounded() {
    let h = Harness::new();
    h.user("alice");
    h.svc.set_limits(&LimitSettings {
        max_pending_requests: 2,
        ..LimitSettings::default()
    });
    let c = h.logged_in("alice");
    let before = h.store.calls("friends"); // the login's
    h.store.hold("friends");
    c.request(refresh());
    h.store.wait_arrived("friends", 1);
    c.request(refresh());
    assert_eq!(c.session.pending_requests(), 2);
    c.request(refresh());
    let refused = c.take_frames();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["msgId"], msg_id::ACOUNT_FRESH_ACK);
    assert_eq!(refused[0]["errno"], errno::TOO_MANY);

    h.store.release("friends");
    h.settle();
    assert_eq!(c.session.pending_requests(), 0, "every count given back");
    assert_eq!(
        h.store.calls("friends"),
        before + 2,
        "the refused one never ran"
    );
    let done = c.take_frames();
    assert_eq!(done.len(), 2, "{done:?}");
    assert!(done.iter().all(|f| f["errno"] == 0), "{done:?}");
    c.request(refresh());
    h.settle();
    assert_eq!(c.take_frames()[0]["errno"], 0);
}

/// `--worker-queue 2`: two connections' requests fill the pool; a third
/// connection's request is refused with errno 12, while a login (whose
/// worker jobs are the service's own) still goes through.
#[test]
fn the_pool_s_request_jobs_are_bounded_but_a_login_is_not() {
    let h = Harness::new();
    for name in ["a", "b", "c", "d"] {
        h.user(name);
    }
    h.svc.set_limits(&LimitSettings {
        worker_queue: 2,
        ..LimitSettings::default()
    });
    let [a, b, c] = ["a", "b", "c"].map(|n| h.logged_in(n));
    h.store.hold("friends");
    a.request(refresh());
    b.request(refresh());
    h.wait_for("two requests in the pool", || h.svc.workers.requests() == 2);
    c.request(refresh());
    let refused = c.take_frames();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["errno"], errno::TOO_MANY, "{}", refused[0]);

    let d = h.connect();
    d.login("d");
    h.store.release("friends");
    h.settle();
    let ack = d.take_frames();
    assert_eq!(ack.len(), 1, "{ack:?}");
    assert_eq!(ack[0]["msgId"], msg_id::LOGIN_MSG_ACK);
    assert_eq!(ack[0]["errno"], 0, "{}", ack[0]);
    assert_eq!(h.svc.workers.requests(), 0);
}

/// `--request-rate 1 --request-burst 2`: the third ping in a row gets its
/// pong with errno 12 and a `retry_after` of about a second; a malformed
/// request draws on the same bucket.
#[test]
fn requests_beyond_their_rate_get_retry_after() {
    let h = Harness::new();
    h.svc.set_limits(&LimitSettings {
        request: Rate {
            per_second: 1,
            burst: 2,
        },
        ..LimitSettings::default()
    });
    let c = h.connect();
    for _ in 0..3 {
        c.request(json!({"msgId": msg_id::PING_MSG}));
    }
    c.request(json!({"msgId": msg_id::ADD_FRIEND_MSG}));
    let frames = c.take_frames();
    assert_eq!(frames.len(), 4, "{frames:?}");
    assert_eq!(frames[0]["errno"], 0);
    assert_eq!(frames[1]["errno"], 0);
    assert_eq!(frames[2]["msgId"], msg_id::PONG_MSG);
    assert_eq!(frames[2]["errno"], errno::TOO_MANY);
    let retry = frames[2]["retry_after"].as_f64().expect("retry_after");
    assert!(retry > 0.9 && retry <= 1.0, "{retry}");
    assert_eq!(frames[3]["msgId"], msg_id::ADD_FRIEND_ACK, "{}", frames[3]);
    assert_eq!(frames[3]["errno"], errno::TOO_MANY, "not the parse error");
}
