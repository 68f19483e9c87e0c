//! Reading the log, on both stores: SYNC paging in both directions over
//! 10,000 messages, who may read what (group history from the join,
//! refusals, bad fields), CONVS and READ, and retention pruning.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::client::nested;
use crate::support::log::{
    chat_with_cid, group_with_cid, one_to, seqs, sync_request, texts, Received, Side,
};
use crate::support::{wait_until, Client, Server, Test, TestDb};

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    both_stores![
        sync_paging_10000,
        group_history_from_join,
        a_late_joiner_is_handed_only_what_follows_the_join,
        sync_refusals_and_bad_fields,
        convs_and_read,
        an_empty_one_to_one_conversation,
        retention_prunes,
    ]
}

/// `n` chats from `c` to `to` with cids `{tag}{i}` and texts `{tag} {i}`;
/// returns their conversation, which they must number 1..=n.
fn post_n(c: &mut Client, to: i64, tag: &str, n: usize) -> String {
    let msgs: Vec<Value> = (0..n)
        .map(|i| chat_with_cid(to, &format!("{tag} {i}"), &format!("{tag}{i}")))
        .collect();
    let acks = c.post_acked(&msgs);
    let conv = acks[0].conv.clone();
    assert!(acks.iter().all(|a| a.conv == conv));
    assert_eq!(
        acks.iter().map(|a| a.seq).collect::<Vec<_>>(),
        one_to(n as i64)
    );
    conv
}

/// The same for group `gid`; the first seq is `from`.
fn post_group(c: &mut Client, gid: i64, tag: &str, n: usize, from: i64) -> String {
    let msgs: Vec<Value> = (0..n)
        .map(|i| group_with_cid(gid, &format!("{tag} {i}"), &format!("{tag}{i}")))
        .collect();
    let acks = c.post_acked(&msgs);
    let got: Vec<i64> = acks.iter().map(|a| a.seq).collect();
    assert_eq!(got, (from..from + n as i64).collect::<Vec<_>>());
    acks[0].conv.clone()
}

/// `lo..=hi` as a vector (empty when `lo > hi`).
fn range(lo: i64, hi: i64) -> Vec<i64> {
    (lo..=hi).collect()
}

/// 10,000 messages, paged forward with `after` and back with `before`
/// (limit 500, and an odd limit), with the default and clamped limits:
/// every page's seqs and `more` flag exact, bodies in order.
fn sync_paging_10000(db: TestDb) {
    const N: i64 = 10_000;
    const L: i64 = 500;
    // 10,000 posts as fast as the acks come: above one user's chat rate.
    let server = Server::start(&db, &["--chat-rate", "0"]);
    let mut alice = server.user("alice");
    let b = server.connect().register("bob", "secret");
    let conv = post_n(&mut alice, b, "m", N as usize);

    // Forward, 500 at a time: 20 pages, `more` until the last.
    let mut after = 0;
    let mut pages = 0;
    let mut all = Vec::new();
    loop {
        let page = alice.sync(&conv, Side::After(after), Some(L));
        pages += 1;
        let want = range(after + 1, (after + L).min(N));
        assert_eq!(page.seqs(), want, "page {pages} after {after}");
        assert_eq!(page.more, after + L < N, "more of page {pages}");
        after += L;
        all.extend(page.msgs.clone());
        if !page.more {
            break;
        }
        assert!(pages < 100, "runaway paging");
    }
    assert_eq!(pages, 20);
    assert_eq!(
        texts(&all),
        (0..N).map(|i| format!("m {i}")).collect::<Vec<_>>()
    );
    let end = alice.sync(&conv, Side::After(N), Some(L));
    assert!(end.msgs.is_empty() && !end.more, "{:?}", end.seqs());

    // Back, 500 at a time: the newest first, each page ascending.
    let mut before = N + 1;
    let mut back = Vec::new();
    pages = 0;
    loop {
        let page = alice.sync(&conv, Side::Before(before), Some(L));
        pages += 1;
        assert_eq!(
            page.seqs(),
            range((before - L).max(1), before - 1),
            "before {before}"
        );
        assert_eq!(page.more, before - L > 1, "more before {before}");
        before -= L;
        back.splice(0..0, page.msgs.clone());
        if !page.more {
            break;
        }
        assert!(pages < 100, "runaway paging");
    }
    assert_eq!(pages, 20);
    assert_eq!(back, all, "the same messages both ways");
    let start = alice.sync(&conv, Side::Before(1), Some(L));
    assert!(start.msgs.is_empty() && !start.more);

    // An odd limit: 30 full pages of 333 and one of 10.
    let (mut after, mut pages) = (0, 0);
    loop {
        let page = alice.sync(&conv, Side::After(after), Some(333));
        pages += 1;
        assert_eq!(page.seqs(), range(after + 1, (after + 333).min(N)));
        after += 333;
        if !page.more {
            break;
        }
        assert!(pages < 100, "runaway paging");
    }
    assert_eq!(pages, 31);

    // Default 50; clamped to 500; pages from the middle.
    let p = alice.sync(&conv, Side::After(0), None);
    assert_eq!((p.seqs(), p.more), (one_to(50), true));
    let p = alice.sync(&conv, Side::After(N - 10), None);
    assert_eq!((p.seqs(), p.more), (range(N - 9, N), false));
    let p = alice.sync(&conv, Side::Before(N + 1), None);
    assert_eq!((p.seqs(), p.more), (range(N - 49, N), true));
    for huge in [501, 1_000, 1_000_000_000] {
        let p = alice.sync(&conv, Side::After(0), Some(huge));
        assert_eq!((p.seqs(), p.more), (one_to(500), true), "limit {huge}");
    }
    let p = alice.sync(&conv, Side::Before(5_000), Some(3));
    assert_eq!((p.seqs(), p.more), (range(4_997, 4_999), true));
    let p = alice.sync(&conv, Side::After(4_990), Some(20));
    assert_eq!((p.seqs(), p.more), (range(4_991, 5_010), true));
    let p = alice.sync(&conv, Side::Before(3), Some(10));
    assert_eq!((p.seqs(), p.more), (range(1, 2), false));
    let p = alice.sync(&conv, Side::After(N + 50), Some(10));
    assert_eq!((p.seqs(), p.more), (vec![], false));
    let p = alice.sync(&conv, Side::Before(0), Some(10));
    assert_eq!((p.seqs(), p.more), (vec![], false));
}

/// A member who joined late reads only what was posted after the join, in
/// both directions; a member who quit, and anyone else, is refused (6); a
/// new member starts at the join; both participants of a one-to-one
/// conversation read all of it, a third user is refused. A dismissed
/// group's conversation is gone.
fn group_history_from_join(db: TestDb) {
    let server = Server::start(&db, &[]);
    let mut alice = server.user("alice");
    let mut bob = server.user("bob");
    let mut carol = server.user("carol");
    let gid = alice.create_group("history", "");
    let gconv = post_group(&mut alice, gid, "early", 5, 1);

    bob.join_group(gid);
    post_group(&mut alice, gid, "late", 5, 6);
    let live = bob.recv_live(5);
    assert_eq!(seqs(&live), range(6, 10));
    let mine = bob.sync_all(&gconv);
    assert_eq!(mine, live, "bob reads from his join on, as delivered");
    let p = bob.sync(&gconv, Side::Before(6), None);
    assert_eq!(
        (p.seqs(), p.more),
        (vec![], false),
        "nothing before the join"
    );
    let p = bob.sync(&gconv, Side::Before(11), Some(3));
    assert_eq!((p.seqs(), p.more), (range(8, 10), true));
    let p = bob.sync(&gconv, Side::Before(8), Some(50));
    assert_eq!(
        (p.seqs(), p.more),
        (range(6, 7), false),
        "more stops at the join"
    );
    let p = bob.sync(&gconv, Side::After(0), Some(2));
    assert_eq!((p.seqs(), p.more), (range(6, 7), true));
    assert_eq!(
        seqs(&alice.sync_all(&gconv)),
        one_to(10),
        "the creator reads all"
    );

    // Not a member: refused, and nothing leaks.
    let v = carol.sync_refused(sync_request(&gconv, Side::After(0), None), 6);
    assert!(v.get("msgs").is_none(), "{v}");
    carol.sync_refused(sync_request(&gconv, Side::Before(11), None), 6);

    // A member who quits is refused from then on.
    bob.send(&json!({"msgId": 19, "gid": gid}));
    bob.expect_errno(20, 0);
    bob.sync_refused(sync_request(&gconv, Side::After(0), None), 6);

    // carol joins now: she reads from seq 11 on.
    carol.join_group(gid);
    let p = carol.sync(&gconv, Side::After(0), None);
    assert_eq!((p.seqs(), p.more), (vec![], false));
    post_group(&mut alice, gid, "for carol", 1, 11);
    assert_eq!(carol.recv_live(1)[0]["seq"], 11);
    assert_eq!(seqs(&carol.sync_all(&gconv)), [11]);
    // bob, back after quitting, reads from his new join on.
    bob.join_group(gid);
    post_group(&mut alice, gid, "welcome back", 1, 12);
    assert_eq!(bob.recv_live(1)[0]["seq"], 12);
    assert_eq!(carol.recv_live(1)[0]["seq"], 12);
    assert_eq!(seqs(&bob.sync_all(&gconv)), [12]);

    // One-to-one: the sender and the recipient read all, nobody else.
    let dconv = post_n(&mut alice, bob.uid, "to bob", 3);
    assert_eq!(seqs(&bob.recv_live(3)), one_to(3));
    assert_eq!(
        texts(&bob.sync_all(&dconv)),
        ["to bob 0", "to bob 1", "to bob 2"]
    );
    assert_eq!(bob.sync_all(&dconv), alice.sync_all(&dconv));
    carol.sync_refused(sync_request(&dconv, Side::After(0), None), 6);
    carol.send(&json!({"msgId": 33, "conv": dconv, "seq": 1}));
    carol.expect_errno(34, 6);

    // A dismissed group is gone: its conversation is unknown (7) to all,
    // and no longer listed.
    alice.send(&json!({"msgId": 21, "gid": gid}));
    alice.expect_errno(22, 0);
    for c in [&mut alice, &mut bob, &mut carol] {
        c.sync_refused(sync_request(&gconv, Side::After(0), None), 7);
        assert!(c.convs().iter().all(|e| e["conv"] != gconv.as_str()));
    }
}

/// bob joins a group after 5 posts and logs out; 3 more come: his next
/// login ack hands him those 3 (seq 6..8) and nothing from before the
/// join; alice's own posts are never handed to her.
fn a_late_joiner_is_handed_only_what_follows_the_join(db: TestDb) {
    let server = Server::start(&db, &[]);
    let mut alice = server.user("alice");
    let mut bob = server.user("bob");
    let gid = alice.create_group("late", "");
    let gconv = post_group(&mut alice, gid, "before", 5, 1);
    bob.join_group(gid);
    bob.send(&json!({"msgId": 3}));
    bob.expect_errno(4, 0);
    post_group(&mut alice, gid, "after", 3, 6);
    let ack = bob.login_ok("secret");
    let offline = nested(&ack, "offlinemsgs");
    assert_eq!(seqs(&offline), [6, 7, 8]);
    assert_eq!(texts(&offline), ["after 0", "after 1", "after 2"]);
    assert!(offline.iter().all(|m| m["conv"] == gconv.as_str()));
    alice.send(&json!({"msgId": 3}));
    alice.expect_errno(4, 0);
    let mine = alice.login_ok("secret");
    assert!(nested(&mine, "offlinemsgs").is_empty(), "{mine}");
}

/// Unknown conversations get 7, malformed requests 4 (SYNC and READ), a
/// connection that is not logged in 3; the connection stays usable.
fn sync_refusals_and_bad_fields(db: TestDb) {
    let server = Server::start(&db, &[]);
    let mut alice = server.user("alice");
    let b = server.connect().register("bob", "secret");
    let conv = post_n(&mut alice, b, "x", 2);

    for unknown in [
        "nonsense",
        "g",
        "g0",
        "g-1",
        "g01",
        "d1",
        "x5",
        "g2147483648",
    ] {
        let v = alice.sync_refused(sync_request(unknown, Side::After(0), None), 7);
        assert!(v.get("msgs").is_none(), "{unknown}: {v}");
        alice.send(&json!({"msgId": 33, "conv": unknown, "seq": 1}));
        alice.expect_errno(34, 7);
    }
    // A group that does not exist (its name is well formed).
    alice.sync_refused(sync_request("g987654", Side::After(0), None), 7);

    let bad = [
        json!({"msgId": 29}),
        json!({"msgId": 29, "conv": 5, "after": 0}),
        json!({"msgId": 29, "conv": null, "after": 0}),
        json!({"msgId": 29, "conv": conv}),
        json!({"msgId": 29, "conv": conv, "after": 0, "before": 5}),
        json!({"msgId": 29, "conv": conv, "after": -1}),
        json!({"msgId": 29, "conv": conv, "after": "1"}),
        json!({"msgId": 29, "conv": conv, "after": 1.5}),
        json!({"msgId": 29, "conv": conv, "before": -3}),
        json!({"msgId": 29, "conv": conv, "before": [1]}),
        json!({"msgId": 29, "conv": conv, "after": 0, "limit": 0}),
        json!({"msgId": 29, "conv": conv, "after": 0, "limit": -5}),
        json!({"msgId": 29, "conv": conv, "after": 0, "limit": "10"}),
        json!({"msgId": 29, "conv": conv, "after": 0, "limit": 2.5}),
    ];
    for req in bad {
        alice.send(&req);
        let v = alice.expect_errno(30, 4);
        assert!(v.get("msgs").is_none(), "{req}: {v}");
    }
    let bad_reads = [
        json!({"msgId": 33}),
        json!({"msgId": 33, "seq": 1}),
        json!({"msgId": 33, "conv": 7, "seq": 1}),
        json!({"msgId": 33, "conv": conv}),
        json!({"msgId": 33, "conv": conv, "seq": "1"}),
        json!({"msgId": 33, "conv": conv, "seq": -1}),
        json!({"msgId": 33, "conv": conv, "seq": 0.5}),
    ];
    for req in bad_reads {
        alice.send(&req);
        alice.expect_errno(34, 4);
    }
    // Still fine afterwards.
    assert_eq!(seqs(&alice.sync_all(&conv)), one_to(2));

    // Before login: 3, in each request's own ack.
    let mut anon = server.connect();
    anon.send(&sync_request(&conv, Side::After(0), None));
    anon.expect_errno(30, 3);
    anon.send(&json!({"msgId": 31}));
    anon.expect_errno(32, 3);
    anon.send(&json!({"msgId": 33, "conv": conv, "seq": 1}));
    anon.expect_errno(34, 3);
}

/// `(conv, kind, peer or gid, last_seq, read_seq)` of a CONVS entry.
fn entry(e: &Value) -> (String, String, i64, i64, i64) {
    let kind = e["kind"].as_str().unwrap_or_default().to_owned();
    let who = if kind == "group" {
        &e["gid"]
    } else {
        &e["peer"]
    };
    (
        e["conv"].as_str().unwrap_or_default().to_owned(),
        kind,
        who.as_i64().unwrap_or(-1),
        e["last_seq"].as_i64().unwrap_or(-1),
        e["read_seq"].as_i64().unwrap_or(-1),
    )
}

/// CONVS lists every one-to-one conversation a user has messages in and
/// every group they are a member of, with last_seq and read_seq; READ only
/// moves forward and stops at last_seq, and the position persists.
fn convs_and_read(db: TestDb) {
    let server = Server::start(&db, &[]);
    let mut alice = server.user("alice");
    let mut bob = server.user("bob");
    let mut carol = server.user("carol");
    let mut dave = server.user("dave");
    let (a, b, c) = (alice.uid, bob.uid, carol.uid);
    assert_eq!(dave.convs(), Vec::<Value>::new(), "nothing yet");
    let gid = alice.create_group("convs", "");
    bob.join_group(gid);
    let gconv = post_group(&mut alice, gid, "g", 4, 1);
    assert_eq!(bob.recv_live(4).len(), 4);
    let ab = post_n(&mut alice, b, "ab", 3);
    assert_eq!(bob.recv_live(3).len(), 3);
    let ac = post_n(&mut carol, a, "ca", 2);
    assert_eq!(alice.recv_live(2).len(), 2);

    let alices: Vec<_> = alice.convs().iter().map(entry).collect();
    let kinds: Vec<(String, String, i64, i64)> = alices
        .iter()
        .map(|(cv, k, w, l, _)| (cv.clone(), k.clone(), *w, *l))
        .collect();
    let mut want = vec![
        (ab.clone(), "user".to_owned(), b, 3),
        (ac.clone(), "user".to_owned(), c, 2),
        (gconv.clone(), "group".to_owned(), gid, 4),
    ];
    want.sort();
    assert_eq!(kinds, want);
    assert!(
        alices.iter().all(|e| (0..=e.3).contains(&e.4)),
        "{alices:?}"
    );
    let unread = |who: &mut Client, conv: &str| entry(&who.conv_entry(conv)).4;
    assert_eq!(
        unread(&mut alice, &ac),
        0,
        "alice has read nothing of carol's"
    );
    let mut bobs: Vec<_> = bob.convs().iter().map(entry).collect();
    bobs.sort();
    let mut want = vec![
        (ab.clone(), "user".to_owned(), a, 3, 0),
        (gconv.clone(), "group".to_owned(), gid, 4, 0),
    ];
    want.sort();
    assert_eq!(bobs, want);
    let carols: Vec<_> = carol.convs().iter().map(entry).collect();
    assert_eq!(carols.len(), 1);
    assert_eq!((&carols[0].0, carols[0].2, carols[0].3), (&ac, a, 2));
    // A member with no message yet: listed, read up to the join.
    dave.join_group(gid);
    assert_eq!(
        dave.convs().iter().map(entry).collect::<Vec<_>>(),
        [(gconv.clone(), "group".to_owned(), gid, 4, 4)]
    );

    // READ: forward only, clamped to last_seq.
    assert_eq!(alice.read_up_to(&ac, 1), 1);
    assert_eq!(alice.read_up_to(&ac, 0), 1, "never backwards");
    assert_eq!(alice.read_up_to(&ac, 2), 2);
    assert_eq!(alice.read_up_to(&ac, 99), 2, "never past last_seq");
    assert_eq!(bob.read_up_to(&gconv, 3), 3);
    assert_eq!(bob.read_up_to(&gconv, 1), 3);
    assert_eq!(unread(&mut alice, &ac), 2);
    assert_eq!(unread(&mut bob, &gconv), 3);
    assert_eq!(unread(&mut carol, &ac), 0, "alice's READ is hers alone");
    // A new message raises last_seq, not read_seq; then READ reaches it.
    post_group(&mut alice, gid, "more", 1, 5);
    assert_eq!(bob.recv_live(1)[0]["seq"], 5);
    assert_eq!(
        entry(&bob.conv_entry(&gconv)),
        (gconv.clone(), "group".to_owned(), gid, 5, 3)
    );
    assert_eq!(bob.read_up_to(&gconv, 1_000), 5);
    assert_eq!(dave.recv_live(1)[0]["seq"], 5);

    // It persists across a reconnect.
    bob.send(&json!({"msgId": 3}));
    bob.expect_errno(4, 0);
    bob.login_ok("secret");
    assert_eq!(unread(&mut bob, &gconv), 5);
    assert_eq!(unread(&mut bob, &ab), 0);

    // A conversation with oneself: peer is oneself; the sender gets the
    // message and the ack.
    alice.send(&chat_with_cid(a, "note to self", "self1"));
    let mut got = Received::default();
    while got.acks.len() + got.live.len() < 2 {
        alice.pump(&mut got);
    }
    assert_eq!((got.acks.len(), got.live.len()), (1, 1));
    let me = got.acks[0].conv.clone();
    assert_eq!(got.live[0]["conv"], me);
    let e = entry(&alice.conv_entry(&me));
    assert_eq!((e.1.as_str(), e.2, e.3), ("user", a, 1));
    assert_eq!(alice.convs().len(), 4);
    alice.expect_silence(Duration::from_millis(200));
}

/// A one-to-one conversation without messages yet (its name is built
/// here: no ack or CONVS can name it): its participants read nothing of
/// it, their read position is 0 and stays there (never past last_seq,
/// which is 0), and it is not listed; to anyone else it is refused.
fn an_empty_one_to_one_conversation(db: TestDb) {
    let server = Server::start(&db, &[]);
    let mut alice = server.user("alice");
    let mut dave = server.user("dave");
    let mut erin = server.user("erin");
    let (a, d) = (alice.uid, dave.uid);
    let ad = format!("d{}-{}", a.min(d), a.max(d));
    for c in [&mut alice, &mut dave] {
        let p = c.sync(&ad, Side::After(0), None);
        assert_eq!((p.seqs(), p.more), (vec![], false));
        assert_eq!(c.read_up_to(&ad, 5), 0);
        assert_eq!(c.convs(), Vec::<Value>::new());
    }
    erin.sync_refused(sync_request(&ad, Side::After(0), None), 6);
    erin.send(&json!({"msgId": 33, "conv": ad, "seq": 1}));
    erin.expect_errno(34, 6);
}

/// With `--history-retention 2s`, old messages vanish from SYNC once
/// pruned (CONVS keeps last_seq), and from the login ack of a member who
/// was away; new ones stay, and seq goes on from where it was, also after
/// a restart: never reused.
fn retention_prunes(db: TestDb) {
    let retention = ["--history-retention", "2s"];
    let mut server = Server::start(&db, &retention);
    let mut alice = server.user("alice");
    let mut bob = server.user("bob");
    let (a, b) = (alice.uid, bob.uid);
    let gid = alice.create_group("short memory", "");
    bob.join_group(gid);
    // carol is a member who is away while the old messages come and go.
    let mut carol = server.user("carol");
    carol.join_group(gid);
    carol.send(&json!({"msgId": 3}));
    carol.expect_errno(4, 0);
    let dconv = post_n(&mut alice, b, "old", 5);
    let gconv = post_group(&mut alice, gid, "old g", 3, 1);
    assert_eq!(bob.recv_live(8).len(), 8);
    assert_eq!(seqs(&bob.sync_all(&dconv)), one_to(5), "kept for now");

    wait_until("the old messages are pruned", || {
        bob.sync_all(&dconv).is_empty() && bob.sync_all(&gconv).is_empty()
    });
    let p = bob.sync(&dconv, Side::Before(6), None);
    assert_eq!((p.seqs(), p.more), (vec![], false));
    // Pruned before carol came back: not in her login ack either.
    let ack = carol.login_ok("secret");
    assert!(nested(&ack, "offlinemsgs").is_empty(), "{ack}");
    assert_eq!(entry(&carol.conv_entry(&gconv)).3, 3);
    assert_eq!(
        entry(&bob.conv_entry(&dconv)).3,
        5,
        "last_seq survives the prune"
    );

    let msgs: Vec<Value> = (0..3)
        .map(|i| chat_with_cid(b, &format!("new {i}"), &format!("new{i}")))
        .collect();
    let acks = alice.post_acked(&msgs);
    assert_eq!(acks.iter().map(|a| a.seq).collect::<Vec<_>>(), [6, 7, 8]);
    assert_eq!(seqs(&bob.recv_live(3)), [6, 7, 8]);
    assert_eq!(seqs(&bob.sync_all(&dconv)), [6, 7, 8], "new ones stay");

    // After a restart, seq still goes on from the conversation's last.
    server.kill9();
    let server = Server::start(&db, &retention);
    let mut alice = server.connect();
    alice.uid = a;
    alice.login_ok("secret");
    let next = alice.send_acked(&chat_with_cid(b, "after restart", "after"));
    assert_eq!((next.conv.as_str(), next.seq), (dconv.as_str(), 9));
    let g = alice.send_acked(&group_with_cid(gid, "after restart g", "after-g"));
    assert_eq!((g.conv.as_str(), g.seq), (gconv.as_str(), 4));
}
