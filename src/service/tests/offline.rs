//! Offline messages: kept in the order sent, handed over inside the login
//! ack in that order, and counted as delivered only once the ack has gone
//! out.

use serde_json::json;

use super::fake::{offline_in_ack, text, Client, Harness};
use crate::protocol::{errno, msg_id};
use crate::storage::Store;

#[test]
fn stored_in_order_delivered_in_the_ack_deleted_after_it() {
    let h = Harness::new();
    h.user("alice");
    let bob_id = h.user("bob");
    let alice = h.logged_in("alice");
    let sent: Vec<String> = (1..=5).map(|i| format!("m{i}")).collect();
    for m in &sent {
        alice.chat(bob_id, m);
    }
    h.settle();
    assert_eq!(h.stored(bob_id), sent);

    let bob = h.connect();
    bob.login("bob");
    // The ack is built but not handed over: all still pending.
    h.wait_for("phase 3 to be queued", || bob.pending_tasks() > 0);
    h.settle_workers();
    assert_eq!(h.stored(bob_id), sent);
    bob.run_tasks();
    h.settle();
    let frames = bob.take_frames();
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(offline_in_ack(&frames[0]), sent);
    assert!(h.stored(bob_id).is_empty());
    let account = h.store_user(bob_id);
    assert!(account.online, "the state column says online");
}

/// Stored rows carry the sender's identity, stamped by the server.
#[test]
fn stored_messages_carry_the_sender() {
    let h = Harness::new();
    let alice_id = h.user("alice");
    let bob_id = h.user("bob");
    let alice = h.logged_in("alice");
    alice.chat(bob_id, "hi");
    h.settle();
    let bob = h.connect();
    bob.login("bob");
    h.settle();
    let frames = bob.take_frames();
    let stored = frames[0]["offlinemsgs"][0].as_str().expect("one message");
    let v: serde_json::Value = serde_json::from_str(stored).expect("JSON");
    assert_eq!(v["from"], alice_id);
    assert_eq!(v["username"], "alice");
    assert_eq!(v["msgId"], msg_id::ONE_CHAT_MSG);
}

/// A message to nobody is refused, and nothing is stored.
#[test]
fn a_message_to_nobody_is_not_found() {
    let h = Harness::new();
    h.user("alice");
    let alice = h.logged_in("alice");
    alice.chat(99, "anyone?");
    h.settle();
    let frames = alice.take_frames();
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["msgId"], msg_id::ERROR_MSG);
    assert_eq!(frames[0]["errno"], errno::NOT_FOUND);
    assert!(h.stored(99).is_empty());
}

/// Online users get messages at once, with no worker involved.
#[test]
fn an_online_recipient_gets_the_message_at_once() {
    let h = Harness::new();
    h.user("alice");
    let bob_id = h.user("bob");
    let alice = h.logged_in("alice");
    let bob = h.logged_in("bob");
    alice.chat(bob_id, "now");
    let frames = bob.take_frames();
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(text(&frames[0]), "now");
}

/// Logs `client` in as `name` and returns the texts of its login ack.
fn login_offline(h: &Harness, name: &str) -> (Client, Vec<String>) {
    let client = h.connect();
    client.login(name);
    h.settle();
    let frames = client.take_frames();
    assert_eq!(frames.len(), 1, "{frames:?}");
    (client, offline_in_ack(&frames[0]))
}

/// Rows of the legacy offline table (written by an earlier version of the
/// server) are still delivered, and deleted after the ack. When that
/// delete fails (the database went away after the ack was sent), the rows
/// stay in the table, but the next login does not deliver them again;
/// once the database is back, the delete is repeated and only new
/// messages come.
#[test]
fn delivered_rows_are_not_delivered_twice_when_their_delete_failed() {
    let h = Harness::new();
    h.user("alice");
    let bob_id = h.user("bob");
    let legacy = |m: &str| {
        let text = json!({"msgId": msg_id::ONE_CHAT_MSG, "from": 1, "to": bob_id, "msg": m});
        h.store
            .push_offline(bob_id, &text.to_string())
            .expect("store");
    };
    for m in ["m1", "m2", "m3"] {
        legacy(m);
    }

    h.store.fail("delete_offline");
    let (bob, got) = login_offline(&h, "bob");
    assert_eq!(got, ["m1", "m2", "m3"]);
    assert_eq!(h.stored(bob_id).len(), 3, "the delete failed");
    bob.disconnect();
    h.settle();

    // Still failing: the rows are there, but they were delivered.
    let (bob, got) = login_offline(&h, "bob");
    assert!(got.is_empty(), "delivered again: {got:?}");
    bob.disconnect();
    legacy("m4");
    h.settle();

    h.store.heal("delete_offline");
    let (_bob, got) = login_offline(&h, "bob");
    assert_eq!(got, ["m4"]);
    assert!(h.stored(bob_id).is_empty(), "{:?}", h.stored(bob_id));
}
