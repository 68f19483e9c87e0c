//! Tests of [`ClientState`](super::ClientState): what the reader thread's
//! bookkeeping shows, drops and answers.

use serde_json::{json, Value};
use std::time::Duration;

use super::{ClientState, Wait};
use crate::incoming::{parse, Incoming, Reply, Sent, SyncPurpose};

fn incoming(v: Value) -> Incoming {
    let Value::Object(obj) = v else {
        panic!("not an object: {v}")
    };
    parse(obj)
}

fn chat(seq: u64) -> Value {
    json!({"msgId": 9, "from": 6, "to": 5, "msg": format!("m{seq}"), "conv": "d5-6", "seq": seq})
}

fn login(offline: &[Value]) -> Value {
    let offline: Vec<String> = offline.iter().map(Value::to_string).collect();
    json!({"msgId": 2, "errno": 0, "uid": 5, "username": "alice", "offlinemsgs": offline, "friends": [], "groups": []})
}

#[test]
fn a_message_delivered_twice_is_shown_once() {
    let state = ClientState::new();
    assert!(state.on_message(&mut incoming(login(&[chat(1)]))));
    assert!(
        !state.on_message(&mut incoming(chat(1))),
        "came in the login ack already"
    );
    assert!(state.on_message(&mut incoming(chat(2))));
    assert!(!state.on_message(&mut incoming(chat(2))));
    // The same duplicate inside a later login ack is dropped from it.
    let mut again = incoming(login(&[chat(2), chat(3)]));
    state.on_message(&mut again);
    let Incoming::Ack {
        outcome: Ok(Reply::LoggedIn(view)),
        ..
    } = again
    else {
        panic!("a login ack")
    };
    assert_eq!(view.offline.len(), 1);
}

#[test]
fn a_send_ack_answers_its_cid_and_names_the_message() {
    let state = ClientState::new();
    let sent = Sent {
        request: 9,
        to: 6,
        text: "hi".into(),
    };
    state.expect_cid("c1", sent.clone(), json!({"msgId": 9}));
    assert_eq!(state.pending(), 1);
    let mut other =
        incoming(json!({"msgId": 28, "errno": 0, "cid": "c0", "conv": "d5-6", "seq": 3}));
    state.on_message(&mut other);
    assert_eq!(
        state.wait_reply(Duration::ZERO),
        Wait::TimedOut,
        "another cid answers nothing"
    );
    state.expect_cid("c1", sent.clone(), json!({"msgId": 9}));
    let mut ack = incoming(json!({"msgId": 28, "errno": 0, "cid": "c1", "conv": "d5-6", "seq": 4}));
    state.on_message(&mut ack);
    assert_eq!(state.wait_reply(Duration::ZERO), Wait::Answered);
    assert_eq!(state.pending(), 0);
    let Incoming::SendAck { sent: named, .. } = ack else {
        panic!("a send ack")
    };
    assert_eq!(named, Some(sent));
    // Our own message is held: it is not new when a sync brings it.
    assert!(!state.on_message(&mut incoming(
        json!({"msgId": 9, "from": 5, "to": 6, "msg": "hi", "conv": "d5-6", "seq": 4})
    )));
}

#[test]
fn a_server_without_the_log_is_noticed_quietly() {
    let state = ClientState::new();
    assert!(!state.no_log());
    state.expect(31);
    // Today's server: an error 27 naming the request.
    let mut unknown =
        incoming(json!({"msgId": 27, "errno": 5, "errmsg": "unknown msgId", "req": 31}));
    assert!(!state.on_message(&mut unknown), "not shown");
    assert_eq!(state.wait_reply(Duration::ZERO), Wait::Answered);
    assert!(state.no_log());
    // Or a refusal in the ack's shape.
    let state = ClientState::new();
    let mut refused = incoming(json!({"msgId": 32, "errno": 5, "errmsg": "unknown msgId"}));
    assert!(!state.on_message(&mut refused));
    assert!(state.no_log());
}

#[test]
fn pending_chats_are_bounded() {
    let state = ClientState::new();
    for i in 0..super::MAX_PENDING + 5 {
        let sent = Sent {
            request: 13,
            to: 3,
            text: format!("{i}"),
        };
        state.expect_cid(&format!("c{i}"), sent, json!({"msgId": 13, "cid": i}));
    }
    assert_eq!(state.pending(), super::MAX_PENDING);
    let unacked = state.take_unacked();
    assert_eq!(unacked.len(), super::MAX_PENDING);
    assert_eq!(unacked[0].0, "c5", "the oldest were forgotten");
    assert_eq!(unacked[0].2["cid"], 5, "with the request to send again");
    assert_eq!(state.pending(), 0);
}

#[test]
fn a_reopened_state_keeps_the_books_and_the_unacked() {
    let state = ClientState::new();
    state.on_message(&mut incoming(login(&[chat(1)])));
    let sent = Sent {
        request: 9,
        to: 6,
        text: "hi".into(),
    };
    state.expect_cid("c1", sent, json!({"msgId": 9}));
    assert!(state.on_closed());
    state.reopen();
    state.wait_open();
    assert_eq!(state.user(), None, "a new connection is not logged in");
    assert_eq!(state.pending(), 1);
    assert!(
        !state.on_message(&mut incoming(chat(1))),
        "still shown once"
    );
}

#[test]
fn a_catch_up_page_keeps_only_the_new_and_reports_its_end() {
    let state = ClientState::new();
    state.on_message(&mut incoming(login(&[])));
    state.expect_quiet_convs();
    let shown = state.on_message(&mut incoming(json!({"msgId": 32, "errno": 0, "convs": [
        {"conv": "d5-6", "kind": "user", "peer": 6, "last_seq": 2, "read_seq": 0}]})));
    assert!(!shown, "the catch-up's CONVS is not shown");
    assert!(
        state.behind().is_empty(),
        "the first login starts at last_seq"
    );
    state.on_message(&mut incoming(chat(4)));
    assert!(
        state.on_message(&mut incoming(json!({"msgId": 32, "errno": 0, "convs": [
        {"conv": "d5-6", "kind": "user", "peer": 6, "last_seq": 5, "read_seq": 0}]}))),
        "a typed convs is"
    );
    assert_eq!(state.behind(), vec![("d5-6".to_owned(), 2)]);
    state.expect_sync(SyncPurpose::CatchUp);
    let mut page = incoming(
        json!({"msgId": 30, "errno": 0, "conv": "d5-6", "more": false,
        "msgs": [chat(3), chat(4), chat(5)]}),
    );
    state.on_message(&mut page);
    let Incoming::Ack {
        outcome: Ok(Reply::Synced(p)),
        ..
    } = &page
    else {
        panic!("a sync page")
    };
    assert_eq!(p.purpose, SyncPurpose::CatchUp);
    assert_eq!(p.msgs.len(), 2, "4 was shown live");
    let end = state.take_page_end().expect("the page's end");
    assert_eq!((end.last, end.more, end.shown), (Some(5), false, 2));
    assert!(state.take_page_end().is_none(), "taken once");
    assert!(state.behind().is_empty());
}

#[test]
fn a_reply_is_shown_before_its_waiter_wakes() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let state = Arc::new(ClientState::new());
    let shown = Arc::new(AtomicBool::new(false));
    state.expect(25);
    let waiter = {
        let (state, shown) = (state.clone(), shown.clone());
        std::thread::spawn(move || {
            let wait = state.wait_reply(Duration::from_secs(5));
            (wait, shown.load(Ordering::SeqCst))
        })
    };
    let mut pong = incoming(json!({"msgId": 26, "errno": 0}));
    state.on_message_then(&mut pong, |_| {
        std::thread::sleep(Duration::from_millis(50));
        shown.store(true, Ordering::SeqCst);
    });
    let (wait, was_shown) = waiter.join().expect("the waiter");
    assert_eq!(wait, Wait::Answered);
    assert!(was_shown, "the waiter woke before the reply was printed");
}
