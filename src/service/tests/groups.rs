//! Group chat: fan-out to online and offline members, and the order of
//! posts that wait behind a member list being loaded.

use serde_json::json;

use super::fake::{offline_in_ack, text, texts, Client, Harness};
use crate::protocol::{errno, msg_id};
use crate::storage::Store;

/// Alice (creator), Bob and Carol in one group, created in the store
/// directly so that the member list is not cached; Alice and Bob online.
struct Group {
    h: Harness,
    gid: i64,
    alice: Client,
    bob: Client,
    bob_id: i64,
    carol_id: i64,
}

fn group() -> Group {
    let h = Harness::new();
    let alice_id = h.user("alice");
    let bob_id = h.user("bob");
    let carol_id = h.user("carol");
    let gid = h
        .store
        .create_group(alice_id, "g", "a group")
        .expect("store")
        .expect("a new group");
    h.store.join_group(gid, bob_id).expect("store");
    h.store.join_group(gid, carol_id).expect("store");
    let alice = h.logged_in("alice");
    let bob = h.logged_in("bob");
    Group {
        h,
        gid,
        alice,
        bob,
        bob_id,
        carol_id,
    }
}

#[test]
fn a_post_reaches_online_members_at_once_and_offline_members_at_login() {
    let g = group();
    g.alice.group_chat(g.gid, "hello");
    g.h.settle();

    let frames = g.bob.take_frames();
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["msgId"], msg_id::GROUP_CHAT_MSG);
    assert_eq!(frames[0]["gid"], g.gid);
    assert_eq!(text(&frames[0]), "hello");
    assert!(g.alice.take_frames().is_empty(), "not echoed to the sender");
    assert_eq!(g.h.stored(g.carol_id), ["hello"]);

    let carol = g.h.connect();
    carol.login("carol");
    g.h.settle();
    assert_eq!(offline_in_ack(&carol.take_frames()[0]), ["hello"]);
    assert!(g.h.stored(g.carol_id).is_empty());
}

#[test]
fn a_non_member_may_not_post() {
    let g = group();
    g.h.user("dave");
    let dave = g.h.logged_in("dave");
    dave.group_chat(g.gid, "let me in");
    g.h.settle();
    let frames = dave.take_frames();
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(frames[0]["errno"], errno::FORBIDDEN);
    assert!(g.bob.take_frames().is_empty());
    assert!(g.h.stored(g.carol_id).is_empty());
}

/// The first post loads the member list in the log writer. Posts queued
/// behind it wait, and then arrive in order with consecutive seqs.
#[test]
fn posts_behind_a_loading_member_list_wait_and_keep_their_order() {
    let g = group();
    g.h.store.hold("group_member_ids");
    g.alice
        .request(json!({"msgId": msg_id::GROUP_CHAT_MSG, "gid": g.gid, "msg": "group 1"}));
    g.h.store.wait_arrived("group_member_ids", 1);
    g.alice
        .request(json!({"msgId": msg_id::GROUP_CHAT_MSG, "gid": g.gid, "msg": "group 2"}));
    assert!(g.bob.take_frames().is_empty(), "nothing before the commit");
    g.h.store.release("group_member_ids");
    g.h.settle();
    let frames = g.bob.take_frames();
    let got: Vec<(&str, i64)> = frames
        .iter()
        .map(|f| (text(f), f["seq"].as_i64().expect("a seq")))
        .collect();
    assert_eq!(got, [("group 1", 1), ("group 2", 2)]);
    assert_eq!(frames[0]["conv"], format!("g{}", g.gid));
    assert_eq!(g.h.stored(g.carol_id), ["group 1", "group 2"]);
}

/// Once the list is cached, posts need no member read.
#[test]
fn a_cached_member_list_takes_the_fast_path() {
    let g = group();
    g.alice.group_chat(g.gid, "loads the list");
    g.h.settle();
    g.bob.take_frames();
    let reads = g.h.store.calls("group_member_ids");
    g.alice.group_chat(g.gid, "cached");
    g.alice.chat(g.bob_id, "direct");
    assert_eq!(texts(&g.bob), ["cached", "direct"]);
    assert_eq!(g.h.store.calls("group_member_ids"), reads);
}

/// A join updates the cached list before its ack: the new member's first
/// post, sent after the ack, is accepted and reaches everyone.
#[test]
fn a_join_updates_the_cached_list() {
    let g = group();
    g.alice.group_chat(g.gid, "loads the list");
    g.h.settle();
    g.bob.take_frames();
    g.h.user("dave");
    let dave = g.h.logged_in("dave");
    dave.request(json!({"msgId": msg_id::ADD_GROUP_MSG, "gid": g.gid}));
    g.h.settle();
    assert_eq!(dave.take_frames()[0]["errno"], errno::OK);
    dave.group_chat(g.gid, "hi all");
    assert_eq!(texts(&g.bob), ["hi all"]);
    assert_eq!(texts(&g.alice), ["hi all"]);
    g.h.settle();
    assert_eq!(g.h.stored(g.carol_id), ["loads the list", "hi all"]);
}
