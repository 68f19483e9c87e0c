//! Durability and idempotence of the message log, on both stores:
//!
//! * an acked message survives `kill -9` the instant after its ack;
//! * a retried cid gets the original conv/seq/ts and is neither stored nor
//!   delivered again (same connection, after a reconnect, in another
//!   conversation), and errors about a cid'd message come as 28;
//! * offline messages carry conv/seq/ts, oldest first, and are not handed
//!   again at the next login;
//! * what was delivered live is not handed again after a graceful restart,
//!   and after `kill -9` at most handed again, never lost.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::client::nested;
use crate::support::log::{
    chat_with_cid, group_with_cid, login_again, login_as, one_to, seqs, texts, Ack,
};
use crate::support::{Client, Server, Test, TestDb};

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    both_stores![
        ack_after_commit_survives_kill9,
        cid_retry_is_idempotent,
        retry_after_a_dropped_connection,
        errors_about_a_cid_come_as_send_acks,
        offline_messages_carry_seq_and_are_not_repeated,
        live_delivery_across_restarts,
    ]
}

/// Logs `c` out (3) and waits for the ack, so that its next login is not
/// refused as a duplicate.
fn logout(c: &mut Client) {
    c.send(&json!({"msgId": 3}));
    c.expect_errno(4, 0);
}

/// All acks name one conversation and number it `1..=n`, with
/// non-decreasing timestamps; returns the conversation.
fn one_conv_numbered_from_1(acks: &[Ack]) -> String {
    let conv = acks.first().expect("some acks").conv.clone();
    assert!(acks.iter().all(|a| a.conv == conv), "{acks:?}");
    let got: Vec<i64> = acks.iter().map(|a| a.seq).collect();
    assert_eq!(got, one_to(acks.len() as i64));
    assert!(acks.windows(2).all(|w| w[0].ts <= w[1].ts), "ts went back");
    conv
}

/// 1,000 messages with a cid (and 200 group messages among them), every
/// ack read, then `kill -9` at once: after the restart every one of them is
/// in the log, numbered 1..1000 (1..200) with no gap, bodies and timestamps
/// as acked, for both participants; and seq goes on from there.
fn ack_after_commit_survives_kill9(db: TestDb) {
    const N: usize = 1_000;
    let mut server = Server::start(&db, &[]);
    let mut alice = server.user("alice");
    let a = alice.uid;
    let b = server.connect().register("bob", "secret");
    let gid = alice.create_group("durable", "");
    // 1,000 chats to bob and, between them, 200 group chats.
    let mut msgs: Vec<Value> = Vec::new();
    for i in 0..N {
        msgs.push(chat_with_cid(b, &format!("durable {i}"), &format!("k{i}")));
        if i % 5 == 0 {
            msgs.push(group_with_cid(gid, &format!("g {i}"), &format!("g{i}")));
        }
    }
    let all_acks = alice.post_acked(&msgs);
    server.kill9(); // the instant the last ack is read
    let (acks, group_acks): (Vec<Ack>, Vec<Ack>) =
        all_acks.into_iter().partition(|a| a.cid.starts_with('k'));
    let conv = one_conv_numbered_from_1(&acks);
    let gconv = one_conv_numbered_from_1(&group_acks);

    let server = Server::start(&db, &[]);
    let (mut alice, _) = login_as(server.addr, a, "alice");
    let entry = alice.conv_entry(&conv);
    assert_eq!(
        (&entry["kind"], &entry["peer"], &entry["last_seq"]),
        (&json!("user"), &json!(b), &json!(N)),
        "{entry}"
    );
    let all = alice.sync_all(&conv);
    assert_eq!(seqs(&all), one_to(N as i64));
    for (i, (m, ack)) in all.iter().zip(&acks).enumerate() {
        assert_eq!(m["msg"], format!("durable {i}"), "{m}");
        assert_eq!(
            (&m["msgId"], &m["from"], &m["to"]),
            (&json!(9), &json!(a), &json!(b)),
            "{m}"
        );
        assert_eq!(
            (&m["conv"], &m["ts"]),
            (&json!(conv), &json!(ack.ts)),
            "{m}"
        );
    }

    let group = alice.sync_all(&gconv);
    assert_eq!(seqs(&group), one_to(N as i64 / 5));
    let want: Vec<String> = (0..N).step_by(5).map(|i| format!("g {i}")).collect();
    assert_eq!(texts(&group), want);
    for (m, ack) in group.iter().zip(&group_acks) {
        assert_eq!((&m["gid"], &m["ts"]), (&json!(gid), &json!(ack.ts)), "{m}");
    }

    // bob, who was never online, is handed all of it, in order: his login
    // ack, then the backlog that follows it; his own SYNC has all of it.
    let (mut bob, ack) = login_as(server.addr, b, "bob");
    let mut handed = nested(&ack, "offlinemsgs");
    assert!(!handed.is_empty(), "no offline messages for bob");
    let mut backlog = Vec::new();
    let bobs = bob.sync_all_amid(&conv, 0, &mut backlog);
    assert_eq!(bobs, all, "both participants read the same log");
    handed.extend(backlog);
    handed.extend(bob.recv_live(N.saturating_sub(handed.len())));
    assert_eq!(handed, all, "handed once each, in order, as stored");

    // Seq goes on after the restart: no reuse, no gap.
    let next = alice.send_acked(&chat_with_cid(b, "after the restart", "k-after"));
    assert_eq!(
        (next.conv.as_str(), next.seq),
        (conv.as_str(), N as i64 + 1)
    );
    let live = bob.recv_live(1);
    assert_eq!(
        (&live[0]["msg"], &live[0]["seq"]),
        (&json!("after the restart"), &json!(N + 1))
    );
}

/// Retrying cids: on the same connection (with another text, even), after
/// a reconnect, and in another conversation: always the original ack, and
/// the recipient receives each message once; SYNC has each once. A cid is
/// unique per sender: another sender may use the same one.
fn cid_retry_is_idempotent(db: TestDb) {
    const N: usize = 50;
    let server = Server::start(&db, &[]);
    let mut alice = server.user("alice");
    let mut bob = server.user("bob");
    let (a, b) = (alice.uid, bob.uid);
    let once: Vec<Value> = (0..N)
        .map(|i| chat_with_cid(b, &format!("once {i}"), &format!("r{i}")))
        .collect();
    let first = alice.post_acked(&once);
    let conv = one_conv_numbered_from_1(&first);
    let live = bob.recv_live(N);
    assert_eq!(seqs(&live), one_to(N as i64));
    assert_eq!(texts(&live), texts(&once));
    for (m, ack) in live.iter().zip(&first) {
        assert_eq!(
            (&m["conv"], &m["ts"]),
            (&json!(conv), &json!(ack.ts)),
            "{m}"
        );
    }

    // The same cids again on the same connection, with other texts.
    let twice: Vec<Value> = (0..N)
        .map(|i| chat_with_cid(b, &format!("twice {i}"), &format!("r{i}")))
        .collect();
    assert_eq!(alice.post_acked(&twice), first, "same connection");
    bob.expect_silence(Duration::from_millis(300));

    // After a reconnect.
    logout(&mut alice);
    drop(alice);
    let (mut alice, ack) = login_as(server.addr, a, "alice");
    assert!(
        nested(&ack, "offlinemsgs").is_empty(),
        "her own messages: {ack}"
    );
    assert_eq!(alice.post_acked(&once), first, "after a reconnect");
    bob.expect_silence(Duration::from_millis(300));

    // In a group chat: the cid names alice's first message, wherever.
    let gid = alice.create_group("retries", "");
    bob.join_group(gid);
    let r0 = alice.send_acked(&group_with_cid(gid, "not again", "r0"));
    assert_eq!(
        r0, first[0],
        "a cid is unique per sender, across conversations"
    );
    bob.expect_silence(Duration::from_millis(300));
    let g = alice.send_acked(&group_with_cid(gid, "group once", "g1"));
    assert_ne!(g.conv, conv);
    assert_eq!(g.seq, 1);
    assert_eq!(
        alice.send_acked(&group_with_cid(gid, "group twice", "g1")),
        g
    );
    let got = bob.recv_live(1);
    assert_eq!(
        (&got[0]["msg"], &got[0]["seq"]),
        (&json!("group once"), &json!(1))
    );
    bob.expect_silence(Duration::from_millis(300));

    // Each message once in the log, with its first text.
    let all = bob.sync_all(&conv);
    assert_eq!(seqs(&all), one_to(N as i64));
    assert_eq!(texts(&all), texts(&once));
    assert_eq!(texts(&bob.sync_all(&g.conv)), ["group once"]);

    // bob's "r0" is not alice's.
    let mine = bob.send_acked(&chat_with_cid(a, "bob's own r0", "r0"));
    assert_eq!(
        (mine.conv.as_str(), mine.seq),
        (conv.as_str(), N as i64 + 1)
    );
    let got = alice.recv_live(1);
    assert_eq!(
        (&got[0]["msg"], &got[0]["seq"]),
        (&json!("bob's own r0"), &json!(N + 1))
    );
}

/// alice writes 200 chats with cids in one burst and drops her connection
/// at once, reading no ack (some may be stored, some not); logged in
/// again, she resends all 200 with the same cids: the acks number them
/// 1..200 in request order, bob receives each exactly once, in order, and
/// the log holds each once.
fn retry_after_a_dropped_connection(db: TestDb) {
    const N: usize = 200;
    let server = Server::start(&db, &[]);
    let mut alice = server.user("alice");
    let mut bob = server.user("bob");
    let (a, b) = (alice.uid, bob.uid);
    let msgs: Vec<Value> = (0..N)
        .map(|i| chat_with_cid(b, &format!("maybe {i}"), &format!("m{i}")))
        .collect();
    let burst: String = msgs.iter().map(Value::to_string).collect();
    alice.send_raw(burst.as_bytes());
    drop(alice); // no ack read

    let mut alice = login_again(server.addr, a, "alice");
    let acks = alice.post_acked(&msgs);
    let conv = one_conv_numbered_from_1(&acks);
    let live = bob.recv_live(N);
    assert_eq!(seqs(&live), one_to(N as i64));
    assert_eq!(texts(&live), texts(&msgs));
    bob.expect_silence(Duration::from_millis(300));
    assert_eq!(texts(&bob.sync_all(&conv)), texts(&msgs));
}

/// With a valid cid, every error about the message is a 28 carrying it;
/// a cid that is itself invalid is a bad field (27, errno 4). 64 printable
/// characters are a valid cid. (`"cid": null` is an absent cid, as null is
/// for every optional field.)
fn errors_about_a_cid_come_as_send_acks(db: TestDb) {
    let server = Server::start(&db, &[]);
    let mut alice = server.user("alice");
    let mut bob = server.user("bob");
    let mut carol = server.user("carol");
    let gid = alice.create_group("members only", "");
    bob.join_group(gid);

    let refused = |c: &mut Client, msg: Value, errno: i64| {
        let cid = msg["cid"].clone();
        c.send(&msg);
        let v = c.expect_errno(28, errno);
        assert_eq!(v["cid"], cid, "{v}");
    };
    refused(&mut alice, chat_with_cid(987_654, "nobody", "e1"), 7);
    refused(&mut carol, group_with_cid(gid, "let me in", "e2"), 6);
    refused(&mut alice, group_with_cid(876_543, "no group", "e3"), 7);
    refused(
        &mut alice,
        json!({"msgId": 9, "to": "bob", "msg": "x", "cid": "e4"}),
        4,
    );
    refused(
        &mut alice,
        json!({"msgId": 13, "gid": gid, "msg": 5, "cid": "e5"}),
        4,
    );
    refused(
        &mut alice,
        json!({"msgId": 9, "from": bob.uid, "to": bob.uid, "msg": "spoof", "cid": "e6"}),
        6,
    );

    let long = "x".repeat(65);
    for bad in [
        json!(""),
        json!(long),
        json!(5),
        json!("tab\there"),
        json!("bidi\u{202E}"),
    ] {
        alice.send(&json!({"msgId": 9, "to": bob.uid, "msg": "bad cid", "cid": bad}));
        let v = alice.expect_errno(27, 4);
        assert_eq!(v["req"], 9, "cid {bad}: {v}");
    }
    bob.expect_silence(Duration::from_millis(300));

    let longest = "~".repeat(64);
    let ack = alice.send_acked(&chat_with_cid(bob.uid, "fine", &longest));
    assert_eq!(ack.seq, 1, "none of the refused ones was stored");
    assert_eq!(bob.recv_live(1)[0]["msg"], "fine");
    // Without a cid: no ack, as before, and the message carries its place.
    alice.chat(bob.uid, "no cid");
    let got = bob.recv_live(1);
    assert_eq!(
        (&got[0]["conv"], &got[0]["seq"]),
        (&json!(ack.conv), &json!(2))
    );
    assert!(
        got[0]["ts"].as_i64().is_some_and(|t| t >= ack.ts),
        "{}",
        got[0]
    );
    alice.expect_silence(Duration::from_millis(300));
}

/// Messages to an offline user, one-to-one and group, with and without a
/// cid, come in the login ack oldest first, each with conv/seq/ts; the next
/// login does not repeat them (nor the ones delivered live), and SYNC still
/// has them all.
fn offline_messages_carry_seq_and_are_not_repeated(db: TestDb) {
    let server = Server::start(&db, &[]);
    let mut alice = server.user("alice");
    let mut bob = server.user("bob");
    let b = bob.uid;
    let gid = alice.create_group("while away", "");
    bob.join_group(gid);
    logout(&mut bob);

    let direct: Vec<Value> = (0..10)
        .map(|i| chat_with_cid(b, &format!("d{i}"), &format!("d{i}")))
        .collect();
    let mut acks = alice.post_acked(&direct);
    for i in 10..15 {
        alice.chat(b, &format!("d{i}"));
    }
    let group: Vec<Value> = (0..6)
        .map(|i| group_with_cid(gid, &format!("g{i}"), &format!("g{i}")))
        .collect();
    let group_acks = alice.post_acked(&group);
    // Acked after the five without a cid: those are stored too (seq 11..15).
    let last = alice.send_acked(&chat_with_cid(b, "d15", "d15"));
    assert_eq!(last.seq, 16);
    acks.push(last);
    let (dconv, gconv) = (acks[0].conv.clone(), group_acks[0].conv.clone());
    assert_eq!(one_conv_numbered_from_1(&group_acks), gconv);

    let ack = bob.login_ok("secret");
    let offline = nested(&ack, "offlinemsgs");
    assert_eq!(offline.len(), 22, "{ack}");
    let ts: Vec<i64> = offline
        .iter()
        .map(|m| m["ts"].as_i64().expect("ts"))
        .collect();
    assert!(ts.windows(2).all(|w| w[0] <= w[1]), "oldest first: {ts:?}");
    let of = |conv: &str| -> Vec<Value> {
        offline
            .iter()
            .filter(|m| m["conv"] == conv)
            .cloned()
            .collect()
    };
    let (d, g) = (of(&dconv), of(&gconv));
    assert_eq!(seqs(&d), one_to(16));
    assert_eq!(
        texts(&d),
        (0..16).map(|i| format!("d{i}")).collect::<Vec<_>>()
    );
    assert_eq!(seqs(&g), one_to(6));
    assert_eq!(texts(&g), texts(&group));
    assert!(d.iter().all(|m| m["msgId"] == 9) && g.iter().all(|m| m["msgId"] == 13));
    for ack in acks.iter().chain(&group_acks) {
        let m = offline
            .iter()
            .find(|m| m["conv"] == ack.conv && m["seq"] == ack.seq)
            .expect("acked message offline");
        assert_eq!(m["ts"], ack.ts, "{m}");
    }

    // Live ones too are not handed again.
    alice.chat(b, "live 1");
    alice.send(&group_with_cid(gid, "live 2", "live-2"));
    // Two conversations: their relative order is not promised.
    let mut live: Vec<(String, i64)> = bob
        .recv_live(2)
        .iter()
        .map(|m| {
            (
                m["conv"].as_str().unwrap_or("").to_owned(),
                m["seq"].as_i64().unwrap_or(0),
            )
        })
        .collect();
    live.sort();
    let mut want = vec![(dconv.clone(), 17), (gconv.clone(), 7)];
    want.sort();
    assert_eq!(live, want);
    assert_eq!(alice.expect(28)["seq"], 7);

    logout(&mut bob);
    let again = bob.login_ok("secret");
    assert!(
        nested(&again, "offlinemsgs").is_empty(),
        "repeated: {again}"
    );
    assert_eq!(seqs(&bob.sync_all(&dconv)), one_to(17));
    assert_eq!(seqs(&bob.sync_all(&gconv)), one_to(7));
}

/// bob, online, receives 50 messages live; a graceful stop (SIGTERM)
/// writes his delivery positions, so his next login hands none again.
/// Then 30 more, live, and `kill -9` at once: his next login may hand some
/// of those again (delivery is at least once across a crash), only the
/// newest ones and in order, and nothing is missing.
fn live_delivery_across_restarts(db: TestDb) {
    let mut server = Server::start(&db, &[]);
    let mut alice = server.user("alice");
    let mut bob = server.user("bob");
    let (a, b) = (alice.uid, bob.uid);
    let conv = post_n_to(&mut alice, b, "before", 50, 1);
    assert_eq!(seqs(&bob.recv_live(50)), one_to(50));
    assert_eq!(
        server.signal_and_wait(libc::SIGTERM, Duration::from_secs(30)),
        Some(0),
        "{}",
        server.log()
    );

    let mut server = Server::start(&db, &[]);
    let (mut alice, _) = login_as(server.addr, a, "alice");
    let (mut bob, ack) = login_as(server.addr, b, "bob");
    assert!(
        nested(&ack, "offlinemsgs").is_empty(),
        "handed again: {ack}"
    );
    assert_eq!(post_n_to(&mut alice, b, "live", 30, 51), conv);
    let live = bob.recv_live(30);
    assert_eq!(seqs(&live), (51..=80).collect::<Vec<_>>());
    server.kill9();

    let server = Server::start(&db, &[]);
    let (mut bob, ack) = login_as(server.addr, b, "bob");
    let again = seqs(&nested(&ack, "offlinemsgs"));
    eprintln!("{} of 30 handed again after kill -9", again.len());
    let from = 81 - again.len() as i64;
    assert_eq!(
        again,
        (from..=80).collect::<Vec<_>>(),
        "only the newest, in order"
    );
    assert_eq!(bob.conv_entry(&conv)["last_seq"], 80);
    assert_eq!(seqs(&bob.sync_all(&conv)), one_to(80), "nothing lost");
}

/// `n` chats with cids from `c` to `to`, which must be numbered from
/// `first` on in one conversation; returns it.
fn post_n_to(c: &mut Client, to: i64, tag: &str, n: usize, first: i64) -> String {
    let msgs: Vec<Value> = (0..n)
        .map(|i| chat_with_cid(to, &format!("{tag} {i}"), &format!("{tag}{i}")))
        .collect();
    let acks = c.post_acked(&msgs);
    let conv = acks[0].conv.clone();
    assert!(acks.iter().all(|a| a.conv == conv), "{acks:?}");
    let got: Vec<i64> = acks.iter().map(|a| a.seq).collect();
    assert_eq!(got, (first..first + n as i64).collect::<Vec<_>>());
    conv
}
