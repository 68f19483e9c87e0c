//! Login takeover: a login replaces the account's connection when that
//! connection has been silent longer than the grace, and only then.

use std::time::Duration;

use super::fake::{offline_in_ack, text, Harness, Seen};
use crate::protocol::{errno, msg_id};
use crate::service::account::LOGGED_IN_ELSEWHERE;
use crate::service::Login;

const GRACE: Duration = Duration::from_secs(1);
const SILENT: Duration = Duration::from_secs(60);

fn harness(grace: Option<Duration>) -> Harness {
    let h = Harness::new();
    h.svc.set_login_takeover_grace(grace);
    h
}

/// Alice writes to Bob before, during each phase of, and after a login
/// that takes over Bob's silent connection. What was routed before the
/// swap went to the old connection, followed by its last error message,
/// and, since a silent connection most likely never read it, comes again
/// in the new ack (at least once: the old cursors are not written);
/// everything after follows the new ack, in order, and the old
/// connection's close leaves the new entry alone.
#[test]
fn a_takeover_keeps_every_message_in_order_on_one_side_of_the_swap() {
    let h = harness(Some(GRACE));
    h.user("alice");
    let bob_id = h.user("bob");
    let alice = h.logged_in("alice");
    let old = h.logged_in("bob");
    old.set_idle_for(SILENT);
    let new = h.connect();

    alice.chat(bob_id, "before");
    // Verify: the old entry is still there, and still gets messages.
    h.store.hold("user_by_name");
    new.login("bob");
    h.store.wait_arrived("user_by_name", 1);
    alice.chat(bob_id, "during verify");
    // The swap: phase 2 is held at its offline read.
    h.store.hold("offline_messages");
    h.store.release("user_by_name");
    h.store.wait_arrived("offline_messages", 1);
    assert!(matches!(new.session.state().login, Login::Claimed { .. }));
    h.wait_for("the old connection to be closed", || old.closed_by_server());
    alice.chat(bob_id, "during load");
    // The old connection's close callback comes while the new login loads.
    old.disconnect();
    assert_eq!(
        h.seen(bob_id),
        Seen::LoggingIn {
            peer: new.id(),
            buffered: 1
        }
    );
    h.store.release("offline_messages");
    h.wait_for("phase 3 to be queued", || new.pending_tasks() > 0);
    alice.chat(bob_id, "before delivery");
    new.run_tasks();
    assert_eq!(h.seen(bob_id), Seen::Online { peer: new.id() });
    alice.chat(bob_id, "after");
    h.settle();

    let frames = new.take_frames();
    assert_eq!(frames.len(), 3, "{frames:?}");
    assert_eq!(frames[0]["errno"], errno::OK);
    assert_eq!(
        offline_in_ack(&frames[0]),
        ["before", "during verify", "during load"]
    );
    let live: Vec<&str> = frames[1..].iter().map(text).collect();
    assert_eq!(live, ["before delivery", "after"]);

    let frames = old.take_frames();
    assert_eq!(frames.len(), 3, "{frames:?}");
    assert_eq!(text(&frames[0]), "before");
    assert_eq!(text(&frames[1]), "during verify");
    assert_eq!(frames[2]["msgId"], msg_id::ERROR_MSG);
    assert_eq!(frames[2]["errno"], errno::ALREADY_ONLINE);
    assert_eq!(frames[2]["errmsg"], LOGGED_IN_ELSEWHERE);

    // Once the new connection's cursors are written, nothing is pending.
    crate::service::delivery::flush_all(&h.svc, false);
    h.settle();
    assert!(h.stored(bob_id).is_empty(), "{:?}", h.stored(bob_id));
    assert!(h.store_user(bob_id).online, "the old close left it online");
    assert!(alice.take_frames().is_empty(), "no errors for Alice");
}

/// A connection with recent activity wins: errno 2, as without takeover.
#[test]
fn a_connection_silent_for_less_than_the_grace_keeps_the_account() {
    let h = harness(Some(GRACE));
    let bob_id = h.user("bob");
    let first = h.logged_in("bob");
    first.set_idle_for(GRACE / 2);
    let second = h.connect();
    second.login("bob");
    h.settle();

    let refused = second.take_frames();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["errno"], errno::ALREADY_ONLINE);
    assert_eq!(second.session.state().login, Login::Anonymous);
    assert!(!first.closed_by_server());
    assert!(first.take_frames().is_empty());
    assert_eq!(h.seen(bob_id), Seen::Online { peer: first.id() });
}

/// With the grace off (the default of a new service), however long the
/// connection has been silent, the new login gets errno 2.
#[test]
fn no_takeover_when_the_grace_is_off() {
    let h = harness(None);
    let bob_id = h.user("bob");
    let first = h.logged_in("bob");
    first.set_idle_for(SILENT);
    let second = h.connect();
    second.login("bob");
    h.settle();

    assert_eq!(second.take_frames()[0]["errno"], errno::ALREADY_ONLINE);
    assert!(!first.closed_by_server());
    assert_eq!(h.seen(bob_id), Seen::Online { peer: first.id() });
}

/// A login still under way is never replaced, however quiet its peer.
#[test]
fn a_login_under_way_is_never_taken_over() {
    let h = harness(Some(GRACE));
    let bob_id = h.user("bob");
    let first = h.connect();
    first.set_idle_for(SILENT);
    let second = h.connect();
    h.store.hold("offline_messages");
    first.login("bob");
    h.store.wait_arrived("offline_messages", 1);
    second.login("bob");
    // The second claim queues behind the first's phase 2 on Bob's worker;
    // it runs before the first's phase 3, which waits for this thread.
    h.store.release("offline_messages");
    h.settle_workers();
    assert_eq!(
        h.seen(bob_id),
        Seen::LoggingIn {
            peer: first.id(),
            buffered: 0
        }
    );
    h.settle();

    assert_eq!(first.take_frames()[0]["errno"], errno::OK);
    assert_eq!(second.take_frames()[0]["errno"], errno::ALREADY_ONLINE);
    assert!(!first.closed_by_server());
    assert_eq!(h.seen(bob_id), Seen::Online { peer: first.id() });
}

/// The replaced session can still log out or close without touching the
/// new login's entry.
#[test]
fn the_replaced_session_cannot_undo_the_new_login() {
    let h = harness(Some(GRACE));
    let bob_id = h.user("bob");
    let old = h.logged_in("bob");
    old.set_idle_for(SILENT);
    let new = h.logged_in("bob");
    assert!(old.closed_by_server());
    // A logout that was on its way before the close.
    old.request(serde_json::json!({"msgId": msg_id::LOGOUT_MSG, "uid": bob_id}));
    h.settle();
    old.disconnect();
    h.settle();

    assert_eq!(h.seen(bob_id), Seen::Online { peer: new.id() });
    assert!(h.store_user(bob_id).online);
    assert!(new.take_frames().is_empty());
}
