//! Gaps at a connection's cursor: a message past one is held
//! (`service::early`) and sent as soon as the missing one arrives, with no
//! read of the log; a gap still open after `GAP_GRACE` is filled from the
//! log.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::fake::{texts, Client, Harness};
use crate::model::Conv;
use crate::service::delivery::{self, Delivery};
use crate::service::early::GAPS;
use crate::storage::{NewEntry, Store};

/// A `/metrics` gap counter now. They are the process's, shared with the
/// tests running beside: a test checks that its own events were counted
/// (at least so many more).
fn now(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// A push as the log writer (or the cluster's subscriber) makes it.
fn pushed(conv: Conv, seq: i64, text: &str) -> Delivery {
    Delivery {
        conv,
        seq,
        bytes: Some(Arc::new(
            format!("{{\"msgId\":9,\"msg\":\"{text}\",\"seq\":{seq}}}\n").into_bytes(),
        )),
        origin: None,
        received: None,
    }
}

/// alice and bob, and their conversation.
fn alice_and_bob(h: &Harness) -> (i64, i64, Conv) {
    let alice_id = h.user("alice");
    let bob_id = h.user("bob");
    (alice_id, bob_id, Conv::direct(alice_id, bob_id).unwrap())
}

/// A session of `name`, logged in, its login frames taken.
fn quiet_session(h: &Harness, name: &str) -> Client {
    let client = h.logged_in(name);
    h.settle();
    client.take_frames();
    client
}

/// 3 and 2 arrive before 1 (messages crossing between nodes): nothing is
/// sent until 1 comes, then 1, 2, 3 in order, and the log is never read.
/// (The log does not even hold them: a fill would find nothing to send.)
#[test]
fn messages_past_a_gap_wait_for_the_missing_one_without_a_query() {
    let h = Harness::new();
    let (_, bob_id, conv) = alice_and_bob(&h);
    let bob = quiet_session(&h, "bob");
    let pages = h.store.calls("log_page");
    let (held, closed) = (now(&GAPS.held), now(&GAPS.closed));

    delivery::push(&h.svc, bob_id, pushed(conv, 3, "three"));
    delivery::push(&h.svc, bob_id, pushed(conv, 2, "two"));
    assert!(texts(&bob).is_empty(), "held past the gap");
    assert!(now(&GAPS.held) >= held + 2, "both held, and counted");
    delivery::push(&h.svc, bob_id, pushed(conv, 1, "one"));
    assert_eq!(texts(&bob), ["one", "two", "three"]);
    h.settle(); // the check after the grace: the gap is closed
    assert!(texts(&bob).is_empty());
    assert_eq!(h.store.calls("log_page"), pages, "no read of the log");
    assert!(now(&GAPS.closed) > closed, "closed by itself, and counted");

    // And the cursor moved: 3 again is old, 4 is next.
    delivery::push(&h.svc, bob_id, pushed(conv, 3, "three again"));
    delivery::push(&h.svc, bob_id, pushed(conv, 4, "four"));
    assert_eq!(texts(&bob), ["four"]);
}

/// The missing message never comes (Redis dropped it): after the grace
/// the fill reads it, and the held one after it, from the log.
#[test]
fn a_gap_still_open_after_the_grace_is_filled_from_the_log() {
    let h = Harness::new();
    let (alice_id, bob_id, conv) = alice_and_bob(&h);
    let bob = quiet_session(&h, "bob");
    let entry = |text: &str| NewEntry {
        conv,
        sender: alice_id,
        cid: None,
        body: format!(r#"{{"msgId":9,"msg":"{text}"}}"#),
    };
    h.store.append(&[entry("lost"), entry("arrived")]).unwrap();

    let filled = now(&GAPS.filled);
    delivery::push(&h.svc, bob_id, pushed(conv, 2, "arrived"));
    assert!(texts(&bob).is_empty(), "held");
    h.settle();
    assert_eq!(texts(&bob), ["lost", "arrived"], "once each, in order");
    assert!(now(&GAPS.filled) > filled, "filled, and counted");
    delivery::push(&h.svc, bob_id, pushed(conv, 3, "next"));
    assert_eq!(texts(&bob), ["next"]);
}

/// A session's own message that comes back past a gap is held too: when
/// the missing one arrives, the session gets only that one, and the
/// user's other session both, in order.
#[test]
fn an_own_message_past_a_gap_is_not_sent_back_when_the_gap_closes() {
    let h = Harness::new();
    let (_, bob_id, conv) = alice_and_bob(&h);
    h.svc.set_sessions_per_user(2);
    let first = h.logged_in("bob");
    let second = h.logged_in("bob");
    h.settle();
    first.take_frames();
    second.take_frames();

    let mine = Delivery {
        origin: Some(first.id()),
        ..pushed(conv, 2, "mine")
    };
    delivery::push(&h.svc, bob_id, mine);
    delivery::push(&h.svc, bob_id, pushed(conv, 1, "theirs"));
    h.settle();
    assert_eq!(texts(&first), ["theirs"], "no own message back");
    assert_eq!(texts(&second), ["theirs", "mine"]);
}
