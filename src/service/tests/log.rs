//! The message log: numbers, acks after the commit, cid retries, errors as
//! 28, gap fills, and cursors that keep a login from handing a message
//! twice.

use serde_json::{json, Value};

use super::fake::{offline_in_ack, text, Harness};
use crate::model::Conv;
use crate::protocol::{errno, msg_id};
use crate::service::cluster_node;
use crate::storage::{NewEntry, Page, Store};

/// The frames of msgId `id` among `frames`.
fn of(frames: &[Value], id: i64) -> Vec<&Value> {
    frames.iter().filter(|f| f["msgId"] == id).collect()
}

#[test]
fn the_ack_comes_after_the_commit_and_names_the_place() {
    let h = Harness::new();
    let alice_id = h.user("alice");
    let bob_id = h.user("bob");
    let alice = h.logged_in("alice");
    let bob = h.logged_in("bob");
    h.store.hold("append");
    alice.request(json!({"msgId": msg_id::ONE_CHAT_MSG, "to": bob_id, "msg": "hi", "cid": "c1"}));
    h.store.wait_arrived("append", 1);
    assert!(alice.take_frames().is_empty(), "no ack before the commit");
    assert!(
        bob.take_frames().is_empty(),
        "no delivery before the commit"
    );
    h.store.release("append");
    alice.wait_log();

    let acks = alice.take_frames();
    assert_eq!(acks.len(), 1, "{acks:?}");
    let conv = Conv::direct(alice_id, bob_id).unwrap().to_string();
    assert_eq!(acks[0]["msgId"], msg_id::SEND_ACK);
    assert_eq!(acks[0]["errno"], errno::OK);
    assert_eq!(acks[0]["cid"], "c1");
    assert_eq!(acks[0]["conv"], conv);
    assert_eq!(acks[0]["seq"], 1);
    assert!(acks[0]["ts"].as_i64().unwrap() > 1_700_000_000_000);
    let got = bob.take_frames();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(text(&got[0]), "hi");
    for field in ["conv", "seq", "ts"] {
        assert_eq!(got[0][field], acks[0][field], "{field}");
    }
}

#[test]
fn a_failed_append_is_refused_with_28_or_27_and_leaves_no_gap() {
    let h = Harness::new();
    h.user("alice");
    let bob_id = h.user("bob");
    let alice = h.logged_in("alice");
    let bob = h.logged_in("bob");
    h.store.fail("append");
    alice.chat_cid(bob_id, "lost 1", "c1");
    alice.chat(bob_id, "lost 2");
    let frames = alice.take_frames();
    assert_eq!(frames.len(), 2, "{frames:?}");
    assert_eq!(frames[0]["msgId"], msg_id::SEND_ACK);
    assert_eq!(frames[0]["cid"], "c1");
    assert_eq!(frames[0]["errno"], errno::SERVER_ERROR);
    assert_eq!(frames[1]["msgId"], msg_id::ERROR_MSG);
    assert_eq!(frames[1]["errno"], errno::SERVER_ERROR);
    assert!(bob.take_frames().is_empty());

    h.store.heal("append");
    alice.chat_cid(bob_id, "kept", "c1");
    assert_eq!(
        alice.take_frames()[0]["seq"],
        1,
        "the failure used no number"
    );
    assert_eq!(bob.take_frames()[0]["seq"], 1);
}

#[test]
fn a_retried_cid_gets_the_original_place_and_is_delivered_once() {
    let h = Harness::new();
    let alice_id = h.user("alice");
    let bob_id = h.user("bob");
    let alice = h.logged_in("alice");
    let bob = h.logged_in("bob");
    alice.chat_cid(bob_id, "once", "c7");
    alice.chat_cid(bob_id, "once", "c7");
    alice.disconnect();
    let alice = h.logged_in("alice");
    alice.chat_cid(bob_id, "once", "c7");
    alice.chat_cid(bob_id, "twice", "c8");

    let acks = alice.take_frames();
    let seqs: Vec<i64> = acks.iter().map(|a| a["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, [1, 2]);
    let got = bob.take_frames();
    let texts: Vec<&str> = got.iter().map(text).collect();
    assert_eq!(texts, ["once", "twice"]);
    let conv = Conv::direct(alice_id, bob_id).unwrap();
    let (entries, more) = h.store.log_page(conv, Page::After(0), 0, 10).unwrap();
    assert_eq!(entries.len(), 2);
    assert!(!more);
}

#[test]
fn seqs_are_gapless_per_conversation_and_both_directions_share_one() {
    let h = Harness::new();
    let alice_id = h.user("alice");
    let bob_id = h.user("bob");
    let carol_id = h.user("carol");
    let alice = h.logged_in("alice");
    let bob = h.logged_in("bob");
    let carol = h.logged_in("carol");
    for i in 0..3 {
        alice.chat(bob_id, &format!("a{i}"));
    }
    for i in 0..2 {
        bob.chat(alice_id, &format!("b{i}"));
    }
    alice.chat(carol_id, "c0");
    h.settle();
    let seqs = |frames: Vec<Value>| -> Vec<i64> {
        frames.iter().map(|f| f["seq"].as_i64().unwrap()).collect()
    };
    assert_eq!(seqs(bob.take_frames()), [1, 2, 3]);
    assert_eq!(seqs(alice.take_frames()), [4, 5]);
    assert_eq!(seqs(carol.take_frames()), [1]);
}

/// Messages committed elsewhere (another node) and a late arrival: the
/// recipient gets the missing ones from the log first, in order, and the
/// late copy is dropped.
#[test]
fn a_gap_is_filled_from_the_log_in_order() {
    let h = Harness::new();
    let alice_id = h.user("alice");
    let bob_id = h.user("bob");
    let bob = h.logged_in("bob");
    let conv = Conv::direct(alice_id, bob_id).unwrap();
    let entry = |n: i64| NewEntry {
        conv,
        sender: alice_id,
        cid: None,
        body: json!({"msgId": 9, "from": alice_id, "to": bob_id, "msg": format!("m{n}")})
            .to_string(),
    };
    let placed = h.store.append(&[entry(1), entry(2), entry(3)]).unwrap();
    assert_eq!(placed.len(), 3);
    let third = crate::storage::delivered(&entry(3).body, placed[2].stored());
    assert!(cluster_node::deliver_here(
        &h.svc,
        bob_id,
        conv.key(),
        3,
        &third
    ));
    h.settle();
    let got: Vec<String> = bob
        .take_frames()
        .iter()
        .map(|f| text(f).to_owned())
        .collect();
    assert_eq!(got, ["m1", "m2", "m3"]);
    // The late copy of 2 is not handed again.
    let second = crate::storage::delivered(&entry(2).body, placed[1].stored());
    assert!(cluster_node::deliver_here(
        &h.svc,
        bob_id,
        conv.key(),
        2,
        &second
    ));
    h.settle();
    assert!(bob.take_frames().is_empty());
}

/// What a connection was handed live is not handed again at the next
/// login; what came while it was away is, in the ack, once.
#[test]
fn live_messages_are_not_handed_again_at_the_next_login() {
    let h = Harness::new();
    h.user("alice");
    let bob_id = h.user("bob");
    let alice = h.logged_in("alice");
    let bob = h.logged_in("bob");
    alice.chat(bob_id, "live 1");
    alice.chat(bob_id, "live 2");
    assert_eq!(bob.take_frames().len(), 2);
    bob.disconnect();
    alice.chat(bob_id, "while away");
    h.settle();
    let bob = h.connect();
    bob.login("bob");
    h.settle();
    let frames = bob.take_frames();
    assert_eq!(offline_in_ack(&frames[0]), ["while away"]);
    let stored: Value =
        serde_json::from_str(frames[0]["offlinemsgs"][0].as_str().unwrap()).unwrap();
    assert_eq!(stored["seq"], 3);
    bob.disconnect();
    let bob = h.connect();
    bob.login("bob");
    h.settle();
    assert!(offline_in_ack(&bob.take_frames()[0]).is_empty());
}

/// A message to a user that does not exist is refused before it is
/// stored: no conversation, no number used.
#[test]
fn a_message_to_nobody_is_refused_before_the_log() {
    let h = Harness::new();
    h.user("alice");
    let alice = h.logged_in("alice");
    alice.chat_cid(99, "anyone?", "c1");
    let frames = alice.take_frames();
    assert_eq!(of(&frames, msg_id::SEND_ACK).len(), 1, "{frames:?}");
    assert_eq!(frames[0]["errno"], errno::NOT_FOUND);
    assert_eq!(h.store.calls("append"), 0);
}

/// The write of what a login ack delivered fails: the positions stay
/// pending in the connection's cursors and are written again when it
/// closes, so the login after that hands nothing twice.
#[test]
fn a_failed_cursor_write_is_repeated_when_the_connection_closes() {
    let h = Harness::new();
    h.user("alice");
    let bob_id = h.user("bob");
    let alice = h.logged_in("alice");
    for m in ["m1", "m2", "m3"] {
        alice.chat(bob_id, m);
    }
    h.store.fail("set_delivered");
    let bob = h.connect();
    bob.login("bob");
    h.settle();
    assert_eq!(offline_in_ack(&bob.take_frames()[0]), ["m1", "m2", "m3"]);
    assert_eq!(h.stored(bob_id).len(), 3, "the write failed");
    h.store.heal("set_delivered");
    bob.disconnect();
    h.settle();
    assert!(h.stored(bob_id).is_empty(), "{:?}", h.stored(bob_id));
    let bob = h.connect();
    bob.login("bob");
    h.settle();
    assert!(offline_in_ack(&bob.take_frames()[0]).is_empty());
}

/// A client that stops reading: the messages handed to its connection
/// but not yet taken by the kernel when it closes stay pending, and the
/// next login hands them (issue 12: a slow reader's queue is not lost).
#[test]
fn messages_still_queued_at_the_close_stay_pending() {
    let h = Harness::new();
    h.user("alice");
    let bob_id = h.user("bob");
    let alice = h.logged_in("alice");
    let bob = h.logged_in("bob");
    alice.chat(bob_id, "read");
    bob.set_stalled(true);
    alice.chat(bob_id, "queued 1");
    alice.chat(bob_id, "queued 2");
    assert_eq!(bob.take_frames().len(), 3, "all three were handed over");
    bob.disconnect();
    h.settle();
    let bob = h.connect();
    bob.login("bob");
    h.settle();
    assert_eq!(
        offline_in_ack(&bob.take_frames()[0]),
        ["queued 1", "queued 2"]
    );
}

/// The same for a login ack that never reached the kernel: what it
/// carried stays pending.
#[test]
fn an_ack_still_queued_at_the_close_delivers_nothing() {
    let h = Harness::new();
    h.user("alice");
    let bob_id = h.user("bob");
    let alice = h.logged_in("alice");
    alice.chat(bob_id, "m1");
    alice.chat(bob_id, "m2");
    let bob = h.connect();
    bob.set_stalled(true);
    bob.login("bob");
    h.settle();
    assert_eq!(offline_in_ack(&bob.take_frames()[0]), ["m1", "m2"]);
    bob.disconnect();
    h.settle();
    assert_eq!(h.stored(bob_id), ["m1", "m2"]);
    let bob = h.connect();
    bob.login("bob");
    h.settle();
    assert_eq!(offline_in_ack(&bob.take_frames()[0]), ["m1", "m2"]);
}

/// A backlog bigger than one login ack: the ack carries the oldest
/// [`MAX_ACK_MESSAGES`](crate::service::account::MAX_ACK_MESSAGES), the
/// rest follows in steps, each once the last has drained; in order, once.
#[test]
fn a_backlog_bigger_than_the_ack_follows_it_in_steps_after_each_drain() {
    const N: i64 = 1500;
    let h = Harness::new();
    let alice_id = h.user("alice");
    let bob_id = h.user("bob");
    let conv = Conv::direct(alice_id, bob_id).unwrap();
    let entries: Vec<NewEntry> = (1..=N)
        .map(|n| NewEntry {
            conv,
            sender: alice_id,
            cid: None,
            body: json!({"msgId": 9, "from": alice_id, "to": bob_id, "msg": format!("m{n}")})
                .to_string(),
        })
        .collect();
    for chunk in entries.chunks(500) {
        h.store.append(chunk).unwrap();
    }
    let bob = h.connect();
    bob.set_stalled(true);
    bob.login("bob");
    h.settle();
    let frames = bob.take_frames();
    assert_eq!(frames.len(), 1, "nothing more before the ack drained");
    let in_ack = offline_in_ack(&frames[0]);
    assert_eq!(in_ack.len(), crate::service::account::MAX_ACK_MESSAGES);
    bob.set_stalled(false);
    h.settle();
    let rest: Vec<String> = bob
        .take_frames()
        .iter()
        .map(|f| text(f).to_owned())
        .collect();
    let all: Vec<String> = in_ack.into_iter().chain(rest).collect();
    let want: Vec<String> = (1..=N).map(|n| format!("m{n}")).collect();
    assert_eq!(all, want);
    bob.disconnect();
    h.settle();
    assert!(h.stored(bob_id).is_empty());
}

/// A graceful stop that cannot finish what it accepted says so: the
/// messages a log writer could not commit within the timeout make
/// `shutdown` return `false` (the server then exits with a failure
/// status); one that drains returns `true`.
#[test]
fn a_stop_that_leaves_messages_unstored_says_so() {
    let h = Harness::new();
    h.user("alice");
    let bob_id = h.user("bob");
    let alice = h.logged_in("alice");
    alice.chat(bob_id, "stored");
    h.store.hold("append");
    alice.request(json!({"msgId": msg_id::ONE_CHAT_MSG, "to": bob_id, "msg": "stuck"}));
    h.store.wait_arrived("append", 1);
    assert!(!h.svc.shutdown(std::time::Duration::from_millis(100)));
    h.store.release("append");

    let clean = Harness::new();
    clean.user("carol");
    let dave_id = clean.user("dave");
    clean.logged_in("carol").chat(dave_id, "stored");
    assert!(clean.svc.shutdown(std::time::Duration::from_secs(5)));
}

/// A group post that reached this node as one item for its members here
/// (`LocalNode::deliver_all`): each member here is handed it once, from
/// one shared copy, and the member not here is given back.
#[test]
fn a_group_item_is_handed_to_each_member_here() {
    let h = Harness::new();
    let alice_id = h.user("alice");
    let bob_id = h.user("bob");
    let cat_id = h.user("cat");
    let dan_id = h.user("dan");
    let gid = h.store.create_group(alice_id, "team", "").unwrap().unwrap();
    for uid in [bob_id, cat_id, dan_id] {
        h.store.join_group(gid, uid).unwrap();
    }
    let (bob, cat) = (h.logged_in("bob"), h.logged_in("cat"));
    h.settle();
    bob.take_frames();
    cat.take_frames();
    let conv = Conv::group(gid).unwrap();
    let post = NewEntry {
        conv,
        sender: alice_id,
        cid: None,
        body: json!({"msgId": 13, "from": alice_id, "groupid": gid, "msg": "all"}).to_string(),
    };
    let placed = h.store.append(std::slice::from_ref(&post)).unwrap();
    let bytes = crate::storage::delivered(&post.body, placed[0].stored());
    let missed =
        cluster_node::deliver_here_all(&h.svc, &[bob_id, dan_id, cat_id], conv.key(), 1, &bytes);
    assert_eq!(missed, [dan_id], "dan is not here");
    h.settle();
    for member in [&bob, &cat] {
        let got: Vec<String> = member
            .take_frames()
            .iter()
            .map(|f| text(f).to_owned())
            .collect();
        assert_eq!(got, ["all"]);
    }
}
