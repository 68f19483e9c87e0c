//! Several sessions per user: a second session logging in while the first
//! is online, with messages (and a self-copy) arriving in its login
//! phase; logout of one session; the limit.

use super::fake::{offline_in_ack, text, Harness, Seen};
use crate::protocol::{errno, msg_id};

/// bob is online on `first`; `second` logs in with its phase 2 held. alice
/// writes, and `first` writes to alice, during that phase: `first` gets
/// alice's message live (and nothing of its own), `second` gets both after
/// its ack, once each and in seq order.
#[test]
fn a_second_session_gets_what_arrives_during_its_login_once() {
    let h = Harness::new();
    let alice_id = h.user("alice");
    let bob_id = h.user("bob");
    h.svc.set_sessions_per_user(2);
    let alice = h.logged_in("alice");
    let first = h.logged_in("bob");

    let second = h.connect();
    h.store.hold("offline_messages");
    second.login("bob");
    h.store.wait_arrived("offline_messages", 1);
    alice.chat(bob_id, "during load");
    first.chat(alice_id, "from the first");
    h.store.release("offline_messages");
    h.settle();

    let live: Vec<String> = first
        .take_frames()
        .iter()
        .map(|f| text(f).to_owned())
        .collect();
    assert_eq!(
        live,
        ["during load"],
        "the first session: live, no self-copy back"
    );
    let frames = second.take_frames();
    assert_eq!(frames[0]["msgId"], msg_id::LOGIN_MSG_ACK);
    assert_eq!(frames[0]["errno"], errno::OK);
    // Whatever the ack carried is not sent again; the rest follows it.
    let mut got = offline_in_ack(&frames[0]);
    got.extend(frames[1..].iter().map(|f| text(f).to_owned()));
    assert_eq!(got, ["during load", "from the first"], "{frames:?}");
    let seqs: Vec<i64> = frames[1..]
        .iter()
        .filter_map(|f| f["seq"].as_i64())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    assert_eq!(alice.take_frames().len(), 1);

    // A third login is refused; a logout frees a place and leaves bob
    // online on the other session.
    let third = h.connect();
    third.login("bob");
    h.settle();
    assert_eq!(third.take_frames()[0]["errno"], errno::ALREADY_ONLINE);
    first.request(serde_json::json!({"msgId": msg_id::LOGOUT_MSG}));
    h.settle();
    assert_eq!(h.seen(bob_id), Seen::Online { peer: second.id() });
    assert!(h.store_user(bob_id).online, "still online: one session is");
    alice.chat(bob_id, "after the logout");
    h.settle();
    assert!(first
        .take_frames()
        .iter()
        .all(|f| f["msgId"] == msg_id::LOGOUT_MSG_ACK));
    assert_eq!(text(&second.take_frames()[0]), "after the logout");
    second.disconnect();
    h.settle();
    assert_eq!(h.seen(bob_id), Seen::Absent);
    assert!(
        !h.store_user(bob_id).online,
        "offline with the last session"
    );
}

/// A session's own message that reaches it past a gap (in cluster mode,
/// messages committed on two nodes cross in Redis) is not sent back to it
/// by the fill that closes the gap; the user's other session gets it, as
/// its self-copy, after the missing one.
#[test]
fn a_fill_does_not_send_a_session_its_own_message() {
    use crate::model::Conv;
    use crate::service::delivery::{self, Delivery};
    use crate::storage::{NewEntry, Store};

    let h = Harness::new();
    let alice_id = h.user("alice");
    let bob_id = h.user("bob");
    h.svc.set_sessions_per_user(2);
    let first = h.logged_in("bob");
    let second = h.logged_in("bob");
    h.settle();
    first.take_frames();
    second.take_frames();

    // Two entries in the log that nobody was pushed: alice's (seq 1),
    // then one that `first` sent (seq 2).
    let conv = Conv::direct(alice_id, bob_id).unwrap();
    let entry = |sender: i64, text: &str| NewEntry {
        conv,
        sender,
        cid: None,
        body: format!(r#"{{"msgId":9,"msg":"{text}"}}"#),
    };
    h.store
        .append(&[entry(alice_id, "missing"), entry(bob_id, "mine")])
        .unwrap();
    // The writer's push of seq 2 to its sender, past the gap at 1.
    let self_copy = br#"{"msgId":9,"msg":"mine","seq":2}"#.to_vec();
    delivery::push(
        &h.svc,
        bob_id,
        Delivery {
            conv,
            seq: 2,
            bytes: Some(std::sync::Arc::new(self_copy)),
            origin: Some(first.id()),
            received: None,
        },
    );
    h.settle();

    let texts = |frames: Vec<serde_json::Value>| -> Vec<String> {
        frames.iter().map(|f| text(f).to_owned()).collect()
    };
    assert_eq!(
        texts(first.take_frames()),
        ["missing"],
        "no own message back"
    );
    assert_eq!(texts(second.take_frames()), ["missing", "mine"]);
}
