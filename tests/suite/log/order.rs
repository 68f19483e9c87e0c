//! Order and completeness under load, on both stores:
//!
//! * several connections posting into one conversation at once: seq is
//!   gapless and unique, and every reader sees the same order, live and
//!   in SYNC;
//! * a recipient that does not read is cut off at the high-water mark; after
//!   it reconnects, CONVS and SYNC give it every message its senders had
//!   acked.

use std::collections::{BTreeMap, HashMap};
use std::thread;
use std::time::Duration;

use serde_json::{json, Value};

use super::joined;
use crate::support::client::{nested, RecvError, TIMEOUT};
use crate::support::log::{
    chat_with_cid, group_with_cid, login_as, one_to, seqs, texts, Ack, Received, WINDOW,
};
use crate::support::{wait_until, Client, Server, Test, TestDb};

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    both_stores![
        concurrent_posters_one_conversation,
        two_connections_one_direct_conversation,
        login_mid_stream_is_gapless,
        slow_reader_cut_off_catches_up,
        a_long_backlog_follows_the_login_ack,
    ]
}

/// Posts `msgs` on `c`, at most `window` unacknowledged, and keeps
/// reading until `others` messages of the other posters have arrived too;
/// returns the client and what it got.
pub(super) fn post_and_listen(
    mut c: Client,
    msgs: Vec<Value>,
    window: usize,
    others: usize,
) -> (Client, Received) {
    let mut got = Received::default();
    c.post_window(&msgs, window, &mut got);
    while got.live.len() < others {
        c.pump(&mut got);
    }
    (c, got)
}

/// Every ack of `posters` names `conv`, each poster's in ascending seq; all
/// together they are 1..=n, once each. Returns seq → text.
pub(super) fn check_acks(
    posters: &[(Vec<Value>, Received)],
    conv: &str,
    n: usize,
) -> BTreeMap<i64, String> {
    let mut by_seq = BTreeMap::new();
    for (msgs, got) in posters {
        let s: Vec<i64> = got.acks.iter().map(|a| a.seq).collect();
        assert!(
            s.windows(2).all(|w| w[0] < w[1]),
            "one poster's acks ascend: {s:?}"
        );
        for (ack, m) in got.acks.iter().zip(msgs) {
            assert_eq!(ack.conv, conv);
            let text = m["msg"].as_str().unwrap_or_default().to_owned();
            assert!(
                by_seq.insert(ack.seq, text).is_none(),
                "seq {} twice",
                ack.seq
            );
        }
    }
    let all: Vec<i64> = by_seq.keys().copied().collect();
    assert_eq!(all, one_to(n as i64), "gapless and unique");
    by_seq
}

/// A live view `live` is ascending, and holds exactly the messages of
/// `want` (seq → text).
pub(super) fn check_view(who: &str, live: &[Value], want: &BTreeMap<i64, String>) {
    let got: Vec<(i64, String)> = live
        .iter()
        .map(|m| {
            (
                m["seq"].as_i64().unwrap_or(-1),
                m["msg"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    let want: Vec<(i64, String)> = want.iter().map(|(s, t)| (*s, t.clone())).collect();
    assert_eq!(got, want, "{who}'s live view");
}

/// Each poster received exactly the others' messages of `by_seq`, in
/// seq order.
pub(super) fn check_poster_views(
    posters: &[(Vec<Value>, Received)],
    by_seq: &BTreeMap<i64, String>,
) {
    for (k, (_, got)) in posters.iter().enumerate() {
        let own: Vec<i64> = got.acks.iter().map(|a| a.seq).collect();
        let mut others = by_seq.clone();
        others.retain(|s, _| !own.contains(s));
        check_view(&format!("poster {k}"), &got.live, &others);
    }
}

/// Four members post 500 group messages each at once; a fifth only reads.
/// The acks number the conversation 1..2000 once each; the reader receives
/// exactly that, in seq order; each poster receives the others' messages
/// in seq order; SYNC returns the very objects the reader received.
fn concurrent_posters_one_conversation(db: TestDb) {
    const POSTERS: usize = 4;
    const EACH: usize = 500;
    const N: usize = POSTERS * EACH;
    let server = Server::start(&db, &[]);
    let mut posters: Vec<Client> = (0..POSTERS)
        .map(|k| server.user(&format!("poster{k}")))
        .collect();
    let mut reader = server.user("reader");
    let gid = posters[0].create_group("busy", "");
    for p in posters.iter_mut().skip(1) {
        p.join_group(gid);
    }
    reader.join_group(gid);

    let listen = thread::spawn(move || {
        let live = reader.recv_live(N);
        (reader, live)
    });
    let handles: Vec<_> = posters
        .into_iter()
        .enumerate()
        .map(|(k, c)| {
            let msgs: Vec<Value> = (0..EACH)
                .map(|i| group_with_cid(gid, &format!("p{k} {i}"), &format!("p{k}-{i}")))
                .collect();
            thread::spawn(move || {
                let (c, got) = post_and_listen(c, msgs.clone(), WINDOW, N - EACH);
                (c, msgs, got)
            })
        })
        .collect();
    let mut results = Vec::new();
    for h in handles {
        let (_c, msgs, got) = joined(h);
        results.push((msgs, got));
    }
    let (mut reader, live) = joined(listen);
    let conv = results[0].1.acks[0].conv.clone();
    let by_seq = check_acks(&results, &conv, N);

    check_view("the reader", &live, &by_seq);
    assert!(live.iter().all(|m| m["conv"] == conv && m["gid"] == gid));
    check_poster_views(&results, &by_seq);
    let all = reader.sync_all(&conv);
    assert_eq!(all, live, "SYNC returns the messages as delivered");
}

/// Both participants of one conversation post 500 each at once: the acks
/// number it 1..1000 once each, and each receives the other's in seq order.
fn two_connections_one_direct_conversation(db: TestDb) {
    const EACH: usize = 500;
    let server = Server::start(&db, &[]);
    let alice = server.user("alice");
    let bob = server.user("bob");
    let (a, b) = (alice.uid, bob.uid);
    let side = |c: Client, to: i64, tag: &'static str| {
        let msgs: Vec<Value> = (0..EACH)
            .map(|i| chat_with_cid(to, &format!("{tag} {i}"), &format!("{tag}{i}")))
            .collect();
        thread::spawn(move || {
            let (c, got) = post_and_listen(c, msgs.clone(), WINDOW, EACH);
            (c, msgs, got)
        })
    };
    let ha = side(alice, b, "a");
    let hb = side(bob, a, "b");
    let (mut alice, ma, ga) = joined(ha);
    let (_bob, mb, gb) = joined(hb);
    let conv = ga.acks[0].conv.clone();
    let results = [(ma, ga), (mb, gb)];
    let by_seq = check_acks(&results, &conv, 2 * EACH);
    check_poster_views(&results, &by_seq);
    let texts: Vec<String> = alice
        .sync_all(&conv)
        .iter()
        .map(|m| m["msg"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(texts, by_seq.into_values().collect::<Vec<_>>());
}

/// Three senders keep writing to bob (with cids, paced) while he logs in:
/// per conversation, the login ack's messages and the live ones after it
/// are seq 1..N exactly once, in order, with the texts as acked.
fn login_mid_stream_is_gapless(db: TestDb) {
    const N: usize = 200;
    let server = Server::start(&db, &[]);
    let mut bob = server.connect();
    let b = bob.register("bob", "secret");
    let senders: Vec<Client> = (0..3).map(|k| server.user(&format!("s{k}"))).collect();
    let writers: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(k, mut s)| {
            thread::spawn(move || {
                let mut sent = Sent::new();
                for i in 0..N {
                    let m = chat_with_cid(b, &format!("s{k} {i}"), &format!("s{k}-{i}"));
                    let ack = s.send_acked(&m);
                    file_sent(&mut sent, &[m], &[ack]);
                    thread::sleep(Duration::from_millis(3));
                }
                sent
            })
        })
        .collect();
    thread::sleep(Duration::from_millis(250));
    let ack = bob.login_ok("secret");
    let mut got: Vec<Value> = nested(&ack, "offlinemsgs");
    let offline = got.len();
    while got.len() < 3 * N {
        got.extend(bob.recv_live(1));
    }
    let mut sent = Sent::new();
    for w in writers {
        sent.extend(joined(w));
    }
    bob.expect_silence(Duration::from_millis(200));
    eprintln!("{offline} of {} in the login ack", 3 * N);
    assert_eq!(sent.len(), 3);
    for (conv, want) in sent {
        let view: Vec<(i64, String)> = got
            .iter()
            .filter(|m| m["conv"] == conv.as_str())
            .map(|m| {
                (
                    m["seq"].as_i64().unwrap_or(-1),
                    m["msg"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        let want: Vec<(i64, String)> = want.into_iter().collect();
        assert_eq!(view, want, "{conv}: ack then live, each once, in order");
    }
}

/// What each sender of the slow-reader test sent: conv → seq → text.
type Sent = HashMap<String, BTreeMap<i64, String>>;

/// Files `acks` of `msgs` under their conversation.
fn file_sent(sent: &mut Sent, msgs: &[Value], acks: &[Ack]) {
    for (m, a) in msgs.iter().zip(acks) {
        let text = m["msg"].as_str().unwrap_or_default().to_owned();
        sent.entry(a.conv.clone()).or_default().insert(a.seq, text);
    }
}

/// Reads `c` until the server closes it; fails if it does not within
/// [`TIMEOUT`] of the last message. Returns the chats it got.
fn drain_until_closed(c: &mut Client) -> Vec<Value> {
    let mut live = Vec::new();
    loop {
        match c.try_recv(TIMEOUT) {
            Ok(v) if v["msgId"] == 9 => live.push(v),
            Ok(v) => panic!("unexpected {v}"),
            Err(RecvError::Closed) => return live,
            Err(RecvError::Timeout) => panic!("the slow reader was not cut off"),
        }
    }
}

/// bob does not read while two senders push megabytes at him: the server
/// cuts him off at the high-water mark (1 MiB). He then reads what had
/// reached his socket, logs in again (the login ack hands him what came
/// after the cut), asks CONVS, and SYNCs from his first gap: in the end he
/// holds every acked message of both conversations, each as sent.
fn slow_reader_cut_off_catches_up(db: TestDb) {
    const BATCH: usize = 50;
    const MAX_ROUNDS: usize = 80; // 2 × 80 × 50 × 4 KiB: 32 MiB at most
    let server = Server::start(&db, &["--high-water-mark", "1MiB"]);
    let mut senders = [server.user("sender1"), server.user("sender2")];
    let mut bob = server.user("bob");
    let b = bob.uid;
    let online = format!("SELECT COUNT(*) FROM user WHERE id = {b} AND state = 'online'");
    // The login marks him online on a worker, after its ack.
    wait_until("bob is online", || db.query_i64(&online) == 1);
    let pad = "x".repeat(4096);
    let mut sent = Sent::new();
    let mut cut_at = None;
    for round in 0..MAX_ROUNDS {
        for (k, s) in senders.iter_mut().enumerate() {
            let msgs: Vec<Value> = (0..BATCH)
                .map(|i| {
                    let tag = format!("s{k} r{round} m{i}");
                    chat_with_cid(b, &format!("{tag} {pad}"), &tag)
                })
                .collect();
            let acks = s.post_acked(&msgs);
            file_sent(&mut sent, &msgs, &acks);
        }
        if cut_at.is_some() {
            break; // one more round after the cut: some wait for his login
        }
        if db.query_i64(&online) == 0 {
            cut_at = Some(round);
        }
    }
    let cut_at = cut_at.expect("bob was not cut off (still online after 32 MiB)");
    let total: usize = sent.values().map(BTreeMap::len).sum();
    eprintln!("bob cut off after round {cut_at}; {total} messages sent");
    assert_eq!(sent.len(), 2, "two conversations");

    // Before the cut, each message once; afterwards the login ack, its
    // backlog and SYNC may overlap (the client drops a (conv, seq) it has).
    let mut held: HashMap<String, BTreeMap<i64, Value>> = HashMap::new();
    for m in drain_until_closed(&mut bob) {
        let seq = m["seq"].as_i64().expect("seq");
        let slot = held
            .entry(m["conv"].as_str().expect("conv").to_owned())
            .or_default();
        assert!(
            slot.insert(seq, m).is_none(),
            "seq {seq} twice before the cut"
        );
    }
    let hold = |held: &mut HashMap<String, BTreeMap<i64, Value>>, msgs: Vec<Value>| {
        for m in msgs {
            let seq = m["seq"].as_i64().expect("seq");
            let conv = m["conv"].as_str().expect("conv").to_owned();
            held.entry(conv).or_default().insert(seq, m);
        }
    };
    let (mut bob, ack) = login_as(server.addr, b, "bob");
    let offline = nested(&ack, "offlinemsgs");
    eprintln!("{} in bob's login ack", offline.len());
    hold(&mut held, offline);
    // Catch up: CONVS, then SYNC each conversation from its first gap; the
    // rest of the backlog may arrive meanwhile, and is read to the end.
    let mut live = Vec::new();
    let convs = bob.convs_amid(&mut live);
    assert_eq!(convs.len(), 2, "{convs:?}");
    for entry in &convs {
        let conv = entry["conv"].as_str().expect("conv").to_owned();
        let want = sent.get(&conv).expect("a conversation bob was sent");
        assert_eq!(entry["last_seq"], json!(want.len()), "{entry}");
        hold(&mut held, std::mem::take(&mut live));
        let have = held.entry(conv.clone()).or_default();
        let gap = (1..=want.len() as i64)
            .find(|s| !have.contains_key(s))
            .unwrap_or(want.len() as i64 + 1);
        let synced = bob.sync_all_amid(&conv, gap - 1, &mut live);
        assert_eq!(seqs(&synced), (gap..=want.len() as i64).collect::<Vec<_>>());
        eprintln!("{conv}: {} by SYNC from seq {gap}", synced.len());
        hold(&mut held, synced);
    }
    while let Ok(v) = bob.try_recv(Duration::from_millis(500)) {
        assert!(v["msgId"] == 9, "unexpected {v}");
        live.push(v);
    }
    hold(&mut held, live);
    for (conv, want) in &sent {
        let have = held.get(conv).expect("bob holds the conversation");
        let got: Vec<(i64, String)> = have
            .iter()
            .map(|(s, m)| (*s, m["msg"].as_str().unwrap_or_default().to_owned()))
            .collect();
        let want: Vec<(i64, String)> = want.iter().map(|(s, t)| (*s, t.clone())).collect();
        assert_eq!(got.len(), want.len(), "{conv}: every message, once");
        assert!(
            got == want,
            "{conv}: bob's messages differ from the acked ones"
        );
    }
    wait_until("bob is online again", || db.query_i64(&online) == 1);
}

/// A backlog longer than one login ack, in count (1,500 small messages)
/// and in bytes (2,000 of 4 KiB, 8 MiB, with a high-water mark of 1 MiB):
/// the ack carries at most 1,000 and about 1 MiB, oldest first, and the
/// rest follows it live, in order, each once; the reader, who reads, is
/// not cut off, and the next login hands none of it again.
fn a_long_backlog_follows_the_login_ack(db: TestDb) {
    // Alice posts 3,500 messages at once: beyond the default chat rate's
    // burst, which this test is not about.
    let server = Server::start(&db, &["--high-water-mark", "1MiB", "--chat-rate", "0"]);
    let mut alice = server.user("alice");
    let pad = "y".repeat(4096);
    for (k, (n, text)) in [(1_500, ""), (2_000, pad.as_str())].into_iter().enumerate() {
        let name = format!("bob{k}");
        let b = server.connect().register(&name, "secret");
        let msgs: Vec<Value> = (0..n)
            .map(|i| chat_with_cid(b, &format!("{i} {text}"), &format!("b{k}-{i}")))
            .collect();
        alice.post_acked(&msgs);
        let (mut bob, ack) = login_as(server.addr, b, &name);
        let offline = nested(&ack, "offlinemsgs");
        let size = ack.to_string().len();
        eprintln!(
            "{name}: {} messages, {size} bytes in the login ack",
            offline.len()
        );
        assert!(
            (1..=1_000).contains(&offline.len()),
            "{} in the ack",
            offline.len()
        );
        assert!(size < 2 << 20, "a login ack of {size} bytes");
        let mut all = offline;
        all.extend(bob.recv_live(n - all.len()));
        assert_eq!(seqs(&all), one_to(n as i64));
        assert_eq!(texts(&all), texts(&msgs));
        bob.expect_silence(Duration::from_millis(300));
        bob.send(&json!({"msgId": 3}));
        bob.expect_errno(4, 0);
        let again = bob.login_ok("secret");
        assert!(nested(&again, "offlinemsgs").is_empty(), "handed again");
        bob.expect_silence(Duration::from_millis(300));
    }
}
