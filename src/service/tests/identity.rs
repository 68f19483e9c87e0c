//! The sender's identity on a chat is the server's word, not the client's:
//! `from`/`uid` and `username` come from the account logged in on the
//! connection, whatever the object said.

use serde_json::json;

use super::fake::Harness;
use crate::protocol::msg_id;
use crate::storage::Store;

/// A one-to-one message that names someone else as its sender arrives with
/// the real sender's name, live and offline.
#[test]
fn a_chat_carries_the_senders_real_name() {
    let h = Harness::new();
    let mallory_id = h.user("mallory");
    let bob_id = h.user("bob");
    let carol_id = h.user("carol");
    let mallory = h.logged_in("mallory");
    let bob = h.logged_in("bob");
    let spoof = |to: i64| {
        mallory.request(json!({
            "msgId": msg_id::ONE_CHAT_MSG, "to": to, "msg": "pay me", "username": "alice",
        }));
    };
    spoof(bob_id);
    spoof(carol_id); // offline: stored
    h.settle();

    let frames = bob.take_frames();
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["username"], "mallory");
    assert_eq!(frames[0]["from"], mallory_id);

    let stored = h.store.pending(carol_id, 10).expect("store");
    assert_eq!(stored.len(), 1, "{stored:?}");
    let v: serde_json::Value = serde_json::from_str(&stored[0].body).expect("JSON");
    assert_eq!(v["username"], "mallory");
}

/// The same for a group post; a `username` that is not a string is still a
/// bad request, as before.
#[test]
fn a_group_post_carries_the_senders_real_name() {
    let h = Harness::new();
    let mallory_id = h.user("mallory");
    let bob_id = h.user("bob");
    let gid = h
        .store
        .create_group(mallory_id, "g", "")
        .expect("store")
        .expect("a new group");
    h.store.join_group(gid, bob_id).expect("store");
    let mallory = h.logged_in("mallory");
    let bob = h.logged_in("bob");
    mallory.request(json!({
        "msgId": msg_id::GROUP_CHAT_MSG, "gid": gid, "msg": "hi", "username": "bob",
    }));
    h.settle();
    let frames = bob.take_frames();
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["username"], "mallory");
    assert_eq!(frames[0]["uid"], mallory_id);

    mallory.request(json!({
        "msgId": msg_id::GROUP_CHAT_MSG, "gid": gid, "msg": "hi", "username": 7,
    }));
    h.settle();
    let frames = mallory.take_frames();
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["msgId"], msg_id::ERROR_MSG);
    assert!(bob.take_frames().is_empty());
}
