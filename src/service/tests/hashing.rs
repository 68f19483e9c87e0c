//! The hashing pool's protections: a closed connection's register or login
//! is dropped before it hashes or touches the store, and one connection
//! may have only `--max-pending-hashes` of them queued or running.

use serde_json::json;

use super::fake::{Harness, PASSWORD};
use crate::protocol::{errno, msg_id};
use crate::service::Login;
use crate::storage::Store;

fn register(name: &str) -> serde_json::Value {
    json!({"msgId": msg_id::REG_MSG, "username": name, "password": PASSWORD})
}

/// Work for a connection that closed before its job's turn: no hash, no
/// store call, no account, no answer. The harness has two hashing
/// threads; two blockers' registers hold both in `create_user` while the
/// ghost queues its requests and closes, so the ghost's job can only run
/// after its connection closed.
#[test]
fn a_closed_connection_s_hashing_jobs_are_dropped() {
    let h = Harness::new();
    h.user("known");
    let blockers = [h.connect(), h.connect()];
    let ghost = h.connect();
    h.store.hold("create_user");
    blockers[0].request(register("blocker0"));
    blockers[1].request(register("blocker1"));
    h.store.wait_arrived("create_user", 2);

    ghost.request(register("ghost"));
    ghost.login("known");
    ghost.disconnect();
    h.store.release("create_user");
    h.settle();

    assert_eq!(h.store.calls("create_user"), 3, "`known` and the blockers");
    assert_eq!(h.store.calls("user_by_name"), 0, "the login never ran");
    assert_eq!(h.store.user_by_name("ghost").expect("store"), None);
    assert!(ghost.take_frames().is_empty());
    for blocker in &blockers {
        let frames = blocker.take_frames();
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert_eq!(frames[0]["errno"], 0, "{}", frames[0]);
    }
}

/// `--max-pending-hashes`: with two registers queued or running on a
/// connection, a third register and a login are answered at once with
/// errno 12 and hash nothing; once the two are done the connection may
/// register again.
#[test]
fn a_connection_s_pending_hashes_are_bounded() {
    let h = Harness::new();
    h.user("known");
    h.svc.set_max_pending_hashes(2);
    let c = h.connect();
    h.store.hold("create_user");
    c.request(register("one"));
    h.store.wait_arrived("create_user", 1);
    c.request(register("two"));
    assert_eq!(c.session.pending_hashes(), 2);

    c.request(register("three"));
    c.login("known");
    let refused = c.take_frames();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert_eq!(refused[0]["msgId"], msg_id::REG_MSG_ACK);
    assert_eq!(refused[1]["msgId"], msg_id::LOGIN_MSG_ACK);
    for frame in &refused {
        assert_eq!(frame["errno"], errno::TOO_MANY, "{frame}");
    }
    assert_eq!(c.session.state().login, Login::Anonymous);

    h.store.release("create_user");
    h.settle();
    assert_eq!(c.session.pending_hashes(), 0);
    let done = c.take_frames();
    assert_eq!(done.len(), 2, "{done:?}");
    assert!(done.iter().all(|f| f["errno"] == 0), "{done:?}");
    assert_eq!(h.store.calls("user_by_name"), 0, "the login never ran");
    assert_eq!(h.store.user_by_name("three").expect("store"), None);

    c.request(register("three"));
    h.settle();
    let again = c.take_frames();
    assert_eq!(again.len(), 1, "{again:?}");
    assert_eq!(again[0]["errno"], 0, "{}", again[0]);
}
