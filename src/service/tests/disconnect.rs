//! A disconnect during each phase of a login: no entry may be left in the
//! online map, and every message for the user, stored before or buffered
//! during the login, must stay (or become) an offline message, in order.

use super::fake::{Harness, Seen};
use crate::service::Login;

/// Bob has one stored message ("before") when he starts to log in; Alice
/// writes during the phase under test and again after Bob is gone.
fn setup() -> (Harness, super::fake::Client, super::fake::Client, i64) {
    let h = Harness::new();
    h.user("alice");
    let bob_id = h.user("bob");
    let alice = h.logged_in("alice");
    alice.chat(bob_id, "before");
    h.settle();
    let bob = h.connect();
    (h, alice, bob, bob_id)
}

/// The end state every case must reach.
fn assert_logged_out(h: &Harness, bob: &super::fake::Client, bob_id: i64, stored: &[&str]) {
    assert_eq!(h.seen(bob_id), Seen::Absent);
    assert_eq!(bob.session.state().login, Login::Anonymous);
    assert!(bob.take_frames().is_empty(), "a closed peer gets nothing");
    assert_eq!(h.stored(bob_id), stored);
    let account = h.store_user(bob_id);
    assert!(!account.online, "the state column says offline");
}

#[test]
fn during_verify() {
    let (h, alice, bob, bob_id) = setup();
    h.store.hold("user_by_name");
    bob.login("bob");
    h.store.wait_arrived("user_by_name", 1);
    alice.chat(bob_id, "during");
    bob.disconnect();
    // The claim finds the session closed and inserts nothing.
    h.store.release("user_by_name");
    h.settle();
    alice.chat(bob_id, "after");
    h.settle();
    assert_logged_out(&h, &bob, bob_id, &["before", "during", "after"]);
}

#[test]
fn during_load() {
    let (h, alice, bob, bob_id) = setup();
    h.store.hold("offline_messages");
    bob.login("bob");
    h.store.wait_arrived("offline_messages", 1);
    alice.chat(bob_id, "during");
    assert_eq!(
        h.seen(bob_id),
        Seen::LoggingIn {
            peer: bob.id(),
            buffered: 1
        }
    );
    // The buffered message is stored, queued behind the held phase 2.
    bob.disconnect();
    assert_eq!(h.seen(bob_id), Seen::Absent);
    alice.chat(bob_id, "after");
    h.store.release("offline_messages");
    h.settle();
    assert_logged_out(&h, &bob, bob_id, &["before", "during", "after"]);
}

#[test]
fn during_delivery() {
    let (h, alice, bob, bob_id) = setup();
    bob.login("bob");
    h.wait_for("phase 3 to be queued", || bob.pending_tasks() > 0);
    alice.chat(bob_id, "during");
    bob.disconnect();
    alice.chat(bob_id, "after");
    // Phase 3 finds the session closed: no ack, and "before", which the
    // ack carried, is not deleted.
    h.settle();
    assert_logged_out(&h, &bob, bob_id, &["before", "during", "after"]);
}

/// After any of these, the user can log in again and gets everything.
#[test]
fn a_new_login_after_a_broken_one_gets_everything() {
    let (h, alice, bob, bob_id) = setup();
    h.store.hold("offline_messages");
    bob.login("bob");
    h.store.wait_arrived("offline_messages", 1);
    alice.chat(bob_id, "during");
    bob.disconnect();
    h.store.release("offline_messages");
    h.settle();
    let again = h.connect();
    again.login("bob");
    h.settle();
    let frames = again.take_frames();
    assert_eq!(
        super::fake::offline_in_ack(&frames[0]),
        ["before", "during"]
    );
    assert_eq!(h.seen(bob_id), Seen::Online { peer: again.id() });
}
