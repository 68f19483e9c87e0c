//! Cluster mode's batched paths end to end: three `chat-server` nodes on
//! one MySQL database and one Redis, nginx in front. Once a sender's node
//! has a recipient's route cached, its messages cross Redis in one batch
//! per destination node and publisher tick, and a group post as one item
//! per node; nothing may be lost, doubled or reordered, and a user who
//! moves to another node between two messages gets both.
//!
//! Needs MySQL, the shared Redis and nginx ([`CLUSTER`]): without them
//! the tests are reported ignored, and fail under CI.

use std::collections::HashMap;
use std::time::Duration;

use crate::cluster::CLUSTER;
use crate::support::client::{logged, nested};
use crate::support::{wait_until, Client, Cluster, Env, Test};
use serde_json::json;

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    tests![
        batched_traffic_across_three_nodes_in_order,
        a_user_who_moves_between_two_messages_gets_both
    ]
    .into_iter()
    .map(|t| t.needs(CLUSTER))
    .collect()
}

/// Users per node.
const PER_NODE: usize = 4;
const USERS: usize = 3 * PER_NODE;
/// Messages each user sends to each of its two peers.
const PER_PEER: usize = 25;
/// Posts of each poster (users 0, 4 and 8: one per node).
const POSTS: usize = 15;

/// User `i`'s peers: one on each other node.
fn peers(i: usize) -> [usize; 2] {
    [(i + PER_NODE) % USERS, (i + 2 * PER_NODE) % USERS]
}

fn is_poster(i: usize) -> bool {
    i.is_multiple_of(PER_NODE)
}

/// Twelve users, four per node, each sending numbered messages to one user
/// on each other node while one user per node posts into a group of all
/// twelve: every recipient gets every message once, each sender's in
/// order, and the group's posts in seq order with no gap.
fn batched_traffic_across_three_nodes_in_order() {
    let env = Env::get("batch");
    let cluster = Cluster::start(&env, 3, "2s");
    let mut users: Vec<Client> = (0..USERS)
        .map(|i| cluster.user_on(i / PER_NODE + 1, &format!("u{i}")))
        .collect();
    let uids: Vec<i64> = users.iter().map(|c| c.uid).collect();
    let index: HashMap<i64, usize> = uids.iter().enumerate().map(|(i, &u)| (u, i)).collect();
    let gid = users[0].create_group("all", "three nodes");
    for u in users.iter_mut().skip(1) {
        u.join_group(gid);
    }

    for n in 0..PER_PEER.max(POSTS) {
        for (i, u) in users.iter_mut().enumerate() {
            if n < PER_PEER {
                for p in peers(i) {
                    u.chat(uids[p], &format!("{i}:{n}"));
                }
            }
            if is_poster(i) && n < POSTS {
                u.send(&json!({"msgId": 13, "uid": u.uid, "gid": gid, "msg": format!("{i}:{n}")}));
            }
        }
    }

    for (i, u) in users.iter_mut().enumerate() {
        let posts = if is_poster(i) { 2 * POSTS } else { 3 * POSTS };
        let mut next: HashMap<usize, usize> = HashMap::new();
        let mut next_post: HashMap<usize, usize> = HashMap::new();
        let mut seqs = Vec::new();
        for _ in 0..2 * PER_PEER + posts {
            let v = u.recv();
            let (who, n) = numbered(&v);
            let want = match v["msgId"].as_i64() {
                Some(9) => {
                    assert_eq!(v["from"].as_i64().map(|f| index[&f]), Some(who), "{v}");
                    next.entry(who).or_insert(0)
                }
                Some(13) => {
                    seqs.push(logged(&v).seq);
                    next_post.entry(who).or_insert(0)
                }
                _ => panic!("u{i}: unexpected {v}"),
            };
            assert_eq!(n, *want, "u{i}: from u{who}: {v}");
            *want += 1;
        }
        assert!(next.values().all(|&n| n == PER_PEER), "u{i}: {next:?}");
        assert_eq!(next.len(), 2, "u{i}: {next:?}");
        assert!(
            next_post.values().all(|&n| n == POSTS),
            "u{i}: {next_post:?}"
        );
        // The group's seqs in order, each once (a poster's own are not
        // sent to it).
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "u{i}: {seqs:?}");
        if !is_poster(i) {
            assert_eq!(seqs, (1..=(3 * POSTS) as i64).collect::<Vec<_>>(), "u{i}");
        }
    }
    for u in users.iter_mut() {
        u.expect_silence(Duration::from_millis(100));
    }
}

/// `"{sender index}:{n}"` of a numbered message.
fn numbered(v: &serde_json::Value) -> (usize, usize) {
    let text = v["msg"].as_str().unwrap_or("");
    let parsed = text
        .split_once(':')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
    parsed.unwrap_or_else(|| panic!("not a numbered message: {v}"))
}

/// Bob moves node1 → node2 → node3 → node1 while alice, on node1, keeps
/// writing to him: once her node has his route cached, each move makes
/// it stale. A message sent right after his login on the new node, and
/// one sent while he was logged out, both reach him exactly once, in
/// order.
fn a_user_who_moves_between_two_messages_gets_both() {
    let env = Env::get("move");
    let cluster = Cluster::start(&env, 3, "2s");
    let mut alice = cluster.user_on(1, "alice");
    let mut bob = cluster.user_on(2, "bob");
    let mut got: Vec<String> = Vec::new();
    let mut n = 0;
    let bob_uid = bob.uid;
    let send = |alice: &mut Client, n: &mut usize| {
        alice.chat(bob_uid, &format!("m{n}"));
        *n += 1;
    };
    send(&mut alice, &mut n);
    got.push(bob.recv_chat().1);
    send(&mut alice, &mut n); // cached now
    got.push(bob.recv_chat().1);
    for to in [3, 1, 2] {
        // Away: logged out, one message waits in the log.
        bob.send(&json!({"msgId": 3}));
        bob.expect_errno(4, 0);
        wait_until("bob's claim is released", || env.holder(bob.uid).is_none());
        send(&mut alice, &mut n);
        let mut moved = cluster.node(to).connect();
        moved.uid = bob.uid;
        moved.name = "bob".into();
        let ack = moved.login_ok("secret");
        let away = nested(&ack, "offlinemsgs");
        got.extend(
            away.iter()
                .map(|m| m["msg"].as_str().unwrap_or("").to_owned()),
        );
        bob = moved;
        // Right after the login: alice's node may still hold a route
        // to where he was.
        send(&mut alice, &mut n);
        got.push(bob.recv_chat().1);
    }
    let want: Vec<String> = (0..n).map(|i| format!("m{i}")).collect();
    assert_eq!(got, want);
    bob.expect_silence(Duration::from_millis(300));
}
