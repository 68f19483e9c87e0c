//! The hashing pool's protections: a closed connection's register or login
//! is dropped before it hashes or touches the store.

use serde_json::json;

use super::fake::{Harness, PASSWORD};
use crate::protocol::msg_id;
use crate::storage::Store;

fn register(name: &str) -> serde_json::Value {
    json!({"msgId": msg_id::REG_MSG, "username": name, "password": PASSWORD})
}

/// Work for a connection that closed before its job's turn: no hash, no
/// store call, no account, no answer. Client ids 100 and 102 share a
/// hashing thread (two threads, `id % 2`); the blocker's register holds it
/// in `create_user` while the ghost queues its requests and closes.
#[test]
fn a_closed_connection_s_hashing_jobs_are_dropped() {
    let h = Harness::new();
    h.user("known");
    let blocker = h.connect();
    let _other = h.connect();
    let ghost = h.connect();
    assert_eq!(blocker.id() % 2, ghost.id() % 2, "one hashing thread");
    h.store.hold("create_user");
    blocker.request(register("blocker"));
    h.store.wait_arrived("create_user", 1);

    ghost.request(register("ghost"));
    ghost.login("known");
    ghost.disconnect();
    h.store.release("create_user");
    h.settle();

    assert_eq!(h.store.calls("create_user"), 2, "`known` and the blocker");
    assert_eq!(h.store.calls("user_by_name"), 0, "the login never ran");
    assert_eq!(h.store.user_by_name("ghost").expect("store"), None);
    assert!(ghost.take_frames().is_empty());
    let frames = blocker.take_frames();
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["errno"], 0, "{}", frames[0]);
}
