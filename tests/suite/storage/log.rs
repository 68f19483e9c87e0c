//! The message log's conformance tests (issue 11): what every `Store`'s
//! `append`, readers, cursors and pruning must do. Each takes a fresh,
//! empty store, except the `two_stores_*` ones, which open one database
//! twice, like two server nodes.

use std::collections::BTreeSet;
use std::sync::Barrier;

use chat::model::{Conv, ConvState};
use chat::storage::{Appended, Entry, NewEntry, Page, Store, Stored};

use super::conformance::user;
use super::open;
use crate::support::TestDb;

fn entry(conv: Conv, sender: i64, cid: Option<&str>, text: &str) -> NewEntry {
    let body = serde_json::json!({"msgId": 9, "from": sender, "msg": text}).to_string();
    NewEntry {
        conv,
        sender,
        cid: cid.map(str::to_owned),
        body,
    }
}

fn direct(a: i64, b: i64) -> Conv {
    Conv::direct(a, b).unwrap()
}

fn group(gid: i64) -> Conv {
    Conv::group(gid).unwrap()
}

fn new(a: &Appended) -> Stored {
    match a {
        Appended::New(s) => *s,
        Appended::Duplicate(s) => panic!("expected New, got Duplicate({s:?})"),
    }
}

/// The whole log of `conv`, ascending.
fn all(s: &dyn Store, conv: Conv) -> Vec<Entry> {
    let (entries, more) = s.log_page(conv, Page::After(0), 0, 100_000).unwrap();
    assert!(!more);
    entries
}

fn seqs(entries: &[Entry]) -> Vec<i64> {
    entries.iter().map(|e| e.seq).collect()
}

fn state(s: &dyn Store, uid: i64, conv: Conv) -> ConvState {
    s.conv_state(uid, conv).unwrap().expect("a cursor row")
}

pub fn log_seqs_are_gapless_per_conversation(s: &dyn Store) {
    let (a, b, c) = (user(s, "a"), user(s, "b"), user(s, "c"));
    let g = s.create_group(a, "g", "").unwrap().unwrap();
    let (ab, ac, gg) = (direct(a, b), direct(c, a), group(g));
    let mut expected = [0i64; 3];
    for round in 0..5 {
        let mut batch = Vec::new();
        for i in 0..(round + 2) {
            let (conv, k) = [(ab, 0), (ac, 1), (gg, 2)][(i + round) % 3];
            batch.push((k, entry(conv, a, None, &format!("r{round} i{i}"))));
        }
        let entries: Vec<NewEntry> = batch.iter().map(|(_, e)| e.clone()).collect();
        let out = s.append(&entries).unwrap();
        assert_eq!(out.len(), entries.len());
        for ((k, e), got) in batch.iter().zip(&out) {
            expected[*k] += 1;
            let at = new(got);
            assert_eq!((at.conv, at.seq), (e.conv, expected[*k]), "{e:?}");
        }
    }
    for (conv, n) in [(ab, expected[0]), (ac, expected[1]), (gg, expected[2])] {
        let log = all(s, conv);
        assert_eq!(seqs(&log), (1..=n).collect::<Vec<_>>(), "{conv}");
        assert!(
            log.windows(2).all(|w| w[0].ts <= w[1].ts),
            "ts never goes back"
        );
        assert!(log.iter().all(|e| e.conv == conv && e.sender == a));
        assert_eq!(state(s, a, conv).last_seq, n);
    }
    // The bodies come back as stored, in order.
    let first = &all(s, ab)[0];
    assert_eq!(first.body, entry(ab, a, None, "r0 i0").body);
    assert_eq!(first.cid, None);
    assert!(s.append(&[]).unwrap().is_empty());
}

pub fn log_direct_conversations_create_cursors(s: &dyn Store) {
    let (a, b) = (user(s, "a"), user(s, "b"));
    assert_eq!(
        s.conv_state(a, direct(a, b)).unwrap(),
        None,
        "no message yet"
    );
    s.append(&[entry(direct(b, a), b, None, "hi")]).unwrap();
    for uid in [a, b] {
        let st = state(s, uid, direct(a, b));
        assert_eq!(
            (st.last_seq, st.read_seq, st.delivered_seq, st.joined_seq),
            (1, 0, 0, 0)
        );
    }
    // A conversation with oneself has one participant.
    s.append(&[entry(direct(a, a), a, None, "note to self")])
        .unwrap();
    let g = s.create_group(b, "g", "").unwrap().unwrap();
    s.join_group(g, a).unwrap();
    let convs: Vec<(Conv, i64)> = s
        .conversations(a)
        .unwrap()
        .iter()
        .map(|c| (c.conv, c.last_seq))
        .collect();
    let mut want = vec![(direct(a, a), 1), (direct(a, b), 1), (group(g), 0)];
    want.sort_by_key(|(c, _)| c.key());
    assert_eq!(convs, want, "ordered by key, last_seq 0 without messages");
    assert_eq!(s.conversations(b).unwrap().len(), 2);
    assert!(s.conversations(user(s, "c")).unwrap().is_empty());
}

pub fn log_cid_duplicates_are_not_stored(s: &dyn Store) {
    let (a, b) = (user(s, "a"), user(s, "b"));
    let ab = direct(a, b);
    let first = new(&s.append(&[entry(ab, a, Some("c1"), "one")]).unwrap()[0]);
    // A retry in a later call, then twice in one call with a new cid.
    let out = s
        .append(&[
            entry(ab, a, Some("c2"), "two"),
            entry(ab, a, Some("c1"), "one again"),
            entry(ab, a, Some("c2"), "two again"),
            entry(ab, b, Some("c1"), "b's own c1"),
            entry(ab, a, None, "no cid"),
            entry(ab, a, None, "no cid"),
        ])
        .unwrap();
    let two = new(&out[0]);
    assert_eq!(two.seq, 2);
    assert_eq!(out[1], Appended::Duplicate(first));
    assert_eq!(out[2], Appended::Duplicate(two));
    assert_eq!(new(&out[3]).seq, 3, "cids are per sender");
    assert_eq!((new(&out[4]).seq, new(&out[5]).seq), (4, 5));
    // Only duplicates: nothing changes, the original places come back.
    let again = s
        .append(&[entry(ab, a, Some("c2"), "x"), entry(ab, b, Some("c1"), "y")])
        .unwrap();
    assert_eq!(
        again,
        [Appended::Duplicate(two), Appended::Duplicate(new(&out[3]))]
    );
    let log = all(s, ab);
    assert_eq!(seqs(&log), [1, 2, 3, 4, 5]);
    assert_eq!(log[0].cid.as_deref(), Some("c1"));
    assert!(log[0].body.contains("\"one\""), "the first one is kept");
    assert_eq!(state(s, a, ab).last_seq, 5);
}

pub fn log_concurrent_appends_into_one_conversation(s: &dyn Store) {
    let creator = user(s, "creator");
    let g = s.create_group(creator, "busy", "").unwrap().unwrap();
    let senders: Vec<i64> = (0..8).map(|i| user(s, &format!("s{i}"))).collect();
    let seqs = hammer(&[s; 8], &senders, group(g));
    assert_gapless(seqs, all(s, group(g)));
}

pub fn log_concurrent_appends_across_conversations(s: &dyn Store) {
    // Eight threads, each batch over the same four conversations in an
    // order of its own: without one lock order these deadlock on MySQL.
    let creator = user(s, "creator");
    let convs: Vec<Conv> = (0..4)
        .map(|i| {
            group(
                s.create_group(creator, &format!("g{i}"), "")
                    .unwrap()
                    .unwrap(),
            )
        })
        .collect();
    let senders: Vec<i64> = (0..8).map(|i| user(s, &format!("s{i}"))).collect();
    let handed: Vec<Vec<Stored>> = std::thread::scope(|scope| {
        let threads: Vec<_> = senders
            .iter()
            .enumerate()
            .map(|(t, &sender)| {
                let convs = &convs;
                scope.spawn(move || {
                    let mut got = Vec::new();
                    for i in 0..30 {
                        let batch: Vec<NewEntry> = (0..4)
                            .map(|k| convs[(k * (t + 1) + i) % 4])
                            .map(|c| entry(c, sender, None, "m"))
                            .collect();
                        got.extend(s.append(&batch).unwrap().iter().map(new));
                    }
                    got
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let handed: Vec<Stored> = handed.into_iter().flatten().collect();
    for &c in &convs {
        let seqs: Vec<i64> = handed
            .iter()
            .filter(|h| h.conv == c)
            .map(|h| h.seq)
            .collect();
        assert_gapless(seqs, all(s, c));
    }
}

pub fn log_pages(s: &dyn Store) {
    let (a, b) = (user(s, "a"), user(s, "b"));
    let ab = direct(a, b);
    let batch: Vec<NewEntry> = (1..=10)
        .map(|i| entry(ab, a, None, &format!("m{i}")))
        .collect();
    s.append(&batch).unwrap();
    let page = |p: Page, floor: i64, limit: usize| {
        let (entries, more) = s.log_page(ab, p, floor, limit).unwrap();
        (seqs(&entries), more)
    };
    assert_eq!(page(Page::After(0), 0, 3), (vec![1, 2, 3], true));
    assert_eq!(page(Page::After(7), 0, 3), (vec![8, 9, 10], false));
    assert_eq!(page(Page::After(8), 0, 3), (vec![9, 10], false));
    assert_eq!(page(Page::After(10), 0, 3), (vec![], false));
    assert_eq!(page(Page::Before(11), 0, 3), (vec![8, 9, 10], true));
    assert_eq!(page(Page::Before(i64::MAX), 0, 2), (vec![9, 10], true));
    assert_eq!(page(Page::Before(4), 0, 3), (vec![1, 2, 3], false));
    assert_eq!(page(Page::Before(3), 0, 5), (vec![1, 2], false));
    assert_eq!(page(Page::Before(1), 0, 5), (vec![], false));
    // The floor is an exclusive lower bound in both directions.
    assert_eq!(page(Page::After(0), 6, 3), (vec![7, 8, 9], true));
    assert_eq!(page(Page::After(2), 6, 10), (vec![7, 8, 9, 10], false));
    assert_eq!(page(Page::Before(9), 6, 5), (vec![7, 8], false));
    assert_eq!(page(Page::Before(9), 6, 1), (vec![8], true));
    // Limit 0 reads nothing but still says whether there is more.
    assert_eq!(page(Page::After(0), 0, 0), (vec![], true));
    assert_eq!(page(Page::After(10), 0, 0), (vec![], false));
    // Other conversations are not mixed in.
    s.append(&[entry(direct(a, a), a, None, "x")]).unwrap();
    assert_eq!(all(s, ab).len(), 10);
    assert!(all(s, group(77)).is_empty());
}

pub fn log_pending_order_and_exclusions(s: &dyn Store) {
    let (a, b, c) = (user(s, "a"), user(s, "b"), user(s, "c"));
    let (ab, bc) = (direct(a, b), direct(b, c));
    s.append(&[entry(ab, a, None, "a1"), entry(bc, c, None, "c1")])
        .unwrap();
    s.append(&[entry(ab, b, None, "b's own"), entry(ab, a, None, "a2")])
        .unwrap();
    s.append(&[entry(bc, c, None, "c2"), entry(ab, a, None, "a3")])
        .unwrap();
    let pending = s.pending(b, 100).unwrap();
    assert!(pending.iter().all(|e| e.sender != b), "never one's own");
    assert_eq!(pending.len(), 5);
    let keys: Vec<(i64, i64, i64)> = pending
        .iter()
        .map(|e| (e.ts, e.conv.key(), e.seq))
        .collect();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(keys, sorted, "ordered by (ts, conv, seq)");
    let of = |conv: Conv, p: &[Entry]| -> Vec<i64> {
        p.iter().filter(|e| e.conv == conv).map(|e| e.seq).collect()
    };
    assert_eq!(of(ab, &pending), [1, 3, 4]);
    assert_eq!(of(bc, &pending), [1, 2]);
    assert_eq!(s.pending(b, 2).unwrap(), pending[..2], "limit");
    // Handed: only what is after delivered_seq stays pending.
    s.set_delivered(b, &[(ab, 3), (bc, 2)]).unwrap();
    assert_eq!(seqs(&s.pending(b, 100).unwrap()), [4]);
    assert_eq!(s.pending(a, 100).unwrap().len(), 1, "b's one message");
    assert!(s.pending(user(s, "d"), 100).unwrap().is_empty());

    // A member who joins reads only what comes after.
    let g = s.create_group(a, "g", "").unwrap().unwrap();
    s.append(&[entry(group(g), a, None, "before c joined")])
        .unwrap();
    s.join_group(g, c).unwrap();
    s.append(&[entry(group(g), a, None, "after")]).unwrap();
    let mine: Vec<(Conv, i64)> = s
        .pending(c, 100)
        .unwrap()
        .iter()
        .map(|e| (e.conv, e.seq))
        .collect();
    assert_eq!(mine, [(group(g), 2)]);
}

pub fn log_set_delivered_moves_forward_only(s: &dyn Store) {
    let (a, b) = (user(s, "a"), user(s, "b"));
    let ab = direct(a, b);
    let batch: Vec<NewEntry> = (0..6).map(|i| entry(ab, a, None, &i.to_string())).collect();
    s.append(&batch).unwrap();
    s.set_delivered(b, &[(ab, 5)]).unwrap();
    assert_eq!(state(s, b, ab).delivered_seq, 5);
    s.set_delivered(b, &[(ab, 3), (ab, 4)]).unwrap();
    assert_eq!(state(s, b, ab).delivered_seq, 5, "never back");
    // Conversations without a row are skipped, and get none.
    let stranger = direct(b, user(s, "c"));
    s.set_delivered(b, &[(stranger, 9), (ab, 6)]).unwrap();
    assert_eq!(state(s, b, ab).delivered_seq, 6);
    assert_eq!(s.conv_state(b, stranger).unwrap(), None);
    assert_eq!(state(s, a, ab).delivered_seq, 0, "a's own row is apart");
    s.set_delivered(b, &[]).unwrap();
}

/// Several users' cursors in one call (the journal applier's): each moves
/// forward only, rows that do not exist are skipped, the rest untouched.
pub fn log_set_delivered_many_moves_each_user_forward_only(s: &dyn Store) {
    let (a, b, c) = (user(s, "a"), user(s, "b"), user(s, "c"));
    let (ab, ac) = (direct(a, b), direct(a, c));
    let mut batch: Vec<NewEntry> = (0..4).map(|i| entry(ab, a, None, &i.to_string())).collect();
    batch.extend((0..3).map(|i| entry(ac, a, None, &i.to_string())));
    s.append(&batch).unwrap();
    s.set_delivered_many(&[(b, vec![(ab, 3)]), (c, vec![(ac, 2)])])
        .unwrap();
    assert_eq!(state(s, b, ab).delivered_seq, 3);
    assert_eq!(state(s, c, ac).delivered_seq, 2);
    let stranger = direct(b, c);
    s.set_delivered_many(&[
        (b, vec![(ab, 1), (stranger, 5)]),
        (c, vec![(ac, 3)]),
        (a, vec![]),
    ])
    .unwrap();
    assert_eq!(state(s, b, ab).delivered_seq, 3, "never back");
    assert_eq!(state(s, c, ac).delivered_seq, 3);
    assert_eq!(s.conv_state(b, stranger).unwrap(), None);
    assert_eq!(state(s, a, ab).delivered_seq, 0, "a's own rows are apart");
    s.set_delivered_many(&[]).unwrap();
}

pub fn log_set_read_clamps_and_refuses_strangers(s: &dyn Store) {
    let (a, b, c) = (user(s, "a"), user(s, "b"), user(s, "c"));
    let ab = direct(a, b);
    let batch: Vec<NewEntry> = (0..4).map(|i| entry(ab, a, None, &i.to_string())).collect();
    s.append(&batch).unwrap();
    assert_eq!(s.set_read(b, ab, 2).unwrap(), Some(2));
    assert_eq!(s.set_read(b, ab, 1).unwrap(), Some(2), "forward only");
    assert_eq!(
        s.set_read(b, ab, 99).unwrap(),
        Some(4),
        "clamped to last_seq"
    );
    assert_eq!(s.set_read(b, ab, -5).unwrap(), Some(4));
    assert_eq!(state(s, b, ab).read_seq, 4);
    assert_eq!(state(s, a, ab).read_seq, 0);
    assert_eq!(s.set_read(c, ab, 1).unwrap(), None, "not a participant");
    assert_eq!(s.conv_state(c, ab).unwrap(), None);
    let g = s.create_group(a, "g", "").unwrap().unwrap();
    assert_eq!(
        s.set_read(a, group(g), 3).unwrap(),
        Some(0),
        "no message yet"
    );
    assert_eq!(s.set_read(b, group(g), 3).unwrap(), None, "not a member");
}

pub fn log_join_mid_conversation_and_quit(s: &dyn Store) {
    let (a, b) = (user(s, "a"), user(s, "b"));
    let g = s.create_group(a, "g", "").unwrap().unwrap();
    let gg = group(g);
    let creator = state(s, a, gg);
    assert_eq!((creator.last_seq, creator.joined_seq), (0, 0));
    let batch: Vec<NewEntry> = (0..3).map(|i| entry(gg, a, None, &i.to_string())).collect();
    s.append(&batch).unwrap();
    s.join_group(g, b).unwrap();
    let joined = state(s, b, gg);
    assert_eq!(
        (
            joined.last_seq,
            joined.read_seq,
            joined.delivered_seq,
            joined.joined_seq
        ),
        (3, 3, 3, 3)
    );
    // Joining again changes nothing.
    s.append(&[entry(gg, a, None, "3")]).unwrap();
    s.join_group(g, b).unwrap();
    assert_eq!(state(s, b, gg).joined_seq, 3);
    assert_eq!(state(s, a, gg).joined_seq, 0);

    assert!(s.quit_group(g, b).unwrap());
    assert_eq!(s.conv_state(b, gg).unwrap(), None, "the cursor goes too");
    assert!(s.conversations(b).unwrap().is_empty());
    // Back again: from the current end.
    s.join_group(g, b).unwrap();
    assert_eq!(state(s, b, gg).joined_seq, 4);
}

pub fn log_dismiss_removes_the_conversation(s: &dyn Store) {
    let (a, b) = (user(s, "a"), user(s, "b"));
    let g = s.create_group(a, "doomed", "").unwrap().unwrap();
    let keep = s.create_group(a, "kept", "").unwrap().unwrap();
    s.join_group(g, b).unwrap();
    s.append(&[
        entry(group(g), a, Some("x"), "1"),
        entry(group(keep), a, None, "1"),
        entry(group(g), b, None, "2"),
    ])
    .unwrap();
    assert!(s.dismiss_group(g).unwrap());
    assert!(all(s, group(g)).is_empty());
    assert_eq!(s.conv_state(a, group(g)).unwrap(), None);
    assert_eq!(s.conv_state(b, group(g)).unwrap(), None);
    assert!(s.pending(b, 10).unwrap().is_empty());
    assert_eq!(seqs(&all(s, group(keep))), [1]);
    assert_eq!(state(s, a, group(keep)).last_seq, 1);
    // The log's cid went with it: "x" is a new message now.
    let again = s.append(&[entry(group(keep), a, Some("x"), "3")]).unwrap();
    assert_eq!(new(&again[0]).seq, 2);
}

pub fn log_prune_keeps_counters(s: &dyn Store) {
    let (a, b) = (user(s, "a"), user(s, "b"));
    let g = s.create_group(a, "g", "").unwrap().unwrap();
    let (ab, gg) = (direct(a, b), group(g));
    let batch: Vec<NewEntry> = (0..3)
        .flat_map(|i| {
            [
                entry(ab, a, None, &i.to_string()),
                entry(gg, a, None, &i.to_string()),
            ]
        })
        .collect();
    s.append(&batch).unwrap();
    assert_eq!(s.prune_log(0, 100).unwrap(), 0, "nothing is that old");
    let future = i64::MAX;
    assert_eq!(s.prune_log(future, 0).unwrap(), 0);
    assert_eq!(s.prune_log(future, 4).unwrap(), 4);
    // Oldest first: each conversation loses a prefix of its log.
    let mut left = 0;
    for c in [ab, gg] {
        let rest = seqs(&all(s, c));
        let from = 4 - rest.len() as i64;
        assert_eq!(rest, (from..=3).collect::<Vec<_>>(), "{c}");
        left += rest.len();
    }
    assert_eq!(left, 2);
    assert_eq!(s.prune_log(future, 100).unwrap(), 2);
    assert_eq!(s.prune_log(future, 100).unwrap(), 0);
    assert!(all(s, ab).is_empty());
    // The numbering goes on; cursors stay.
    assert_eq!(state(s, b, ab).last_seq, 3);
    let next = s.append(&[entry(ab, b, None, "after the prune")]).unwrap();
    assert_eq!(new(&next[0]).seq, 4);
    assert_eq!(seqs(&all(s, ab)), [4]);
    assert_eq!(state(s, a, gg).last_seq, 3);
}

pub fn log_big_utf8_bodies(s: &dyn Store) {
    let (a, b) = (user(s, "a"), user(s, "b"));
    let ab = direct(a, b);
    let unit = "😀中\"\\n'é\u{0}\u{1}\t\u{2028}";
    let text = unit.repeat(64 * 1024 / unit.len() + 1);
    let big = entry(ab, a, Some("big 😀"), &text);
    assert!(big.body.len() >= 64 * 1024, "{}", big.body.len());
    // Several in one call: more text than one MySQL insert carries.
    let many: Vec<NewEntry> = (0..20)
        .map(|i| entry(ab, a, None, &format!("{i}{text}")))
        .collect();
    s.append(std::slice::from_ref(&big)).unwrap();
    s.append(&many).unwrap();
    let log = all(s, ab);
    assert_eq!(log.len(), 21);
    assert_eq!(log[0].body, big.body);
    assert_eq!(log[0].cid.as_deref(), Some("big 😀"));
    assert_eq!(log[20].body, many[19].body);
    let pending = s.pending(b, 1).unwrap();
    assert_eq!(pending[0].body, big.body);
    let wire: serde_json::Value = serde_json::from_slice(&pending[0].delivered()).unwrap();
    assert_eq!(wire["msg"], text.as_str());
    assert_eq!(wire["seq"], 1);
}

/// Two stores on one database (two nodes): appends from both into one
/// conversation stay gapless and unique.
pub fn two_stores_append_into_one_conversation(db: TestDb) {
    let (one, two) = (open(&db), open(&db));
    let creator = user(&*one, "creator");
    let g = one.create_group(creator, "shared", "").unwrap().unwrap();
    let senders: Vec<i64> = (0..8).map(|i| user(&*one, &format!("s{i}"))).collect();
    let stores: Vec<&dyn Store> = (0..8)
        .map(|i| if i % 2 == 0 { &*one } else { &*two })
        .collect();
    let seqs = hammer(&stores, &senders, group(g));
    assert_gapless(seqs, all(&*two, group(g)));
}

/// The same cid sent through both stores at once: one is stored, the
/// other answered with its place.
pub fn two_stores_race_on_one_cid(db: TestDb) {
    let (one, two) = (open(&db), open(&db));
    let (a, b) = (user(&*one, "a"), user(&*one, "b"));
    let ab = direct(a, b);
    const ROUNDS: usize = 30;
    let barrier = Barrier::new(2);
    let results: Vec<Vec<Appended>> = std::thread::scope(|scope| {
        let threads: Vec<_> = [&*one, &*two]
            .into_iter()
            .map(|store| {
                let barrier = &barrier;
                scope.spawn(move || {
                    (0..ROUNDS)
                        .map(|r| {
                            barrier.wait();
                            let cid = format!("race{r}");
                            store.append(&[entry(ab, a, Some(&cid), "x")]).unwrap()[0]
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for (r, (&x, &y)) in results[0].iter().zip(&results[1]).enumerate() {
        assert_eq!(x.stored(), y.stored(), "round {r}: one place");
        let news = [x, y]
            .iter()
            .filter(|a| matches!(a, Appended::New(_)))
            .count();
        assert_eq!(news, 1, "round {r}: {x:?} {y:?}");
    }
    let log = all(&*one, ab);
    assert_eq!(seqs(&log), (1..=ROUNDS as i64).collect::<Vec<_>>());
}

/// Eight threads (on the stores given, one each) append batches into
/// `conv`, each as one of `senders`; returns every seq they were given.
fn hammer(stores: &[&dyn Store], senders: &[i64], conv: Conv) -> Vec<i64> {
    const CALLS: usize = 40;
    std::thread::scope(|scope| {
        let threads: Vec<_> = stores
            .iter()
            .zip(senders)
            .map(|(&store, &sender)| {
                scope.spawn(move || {
                    let mut got = Vec::new();
                    for i in 0..CALLS {
                        let n = 1 + i % 3;
                        let batch: Vec<NewEntry> = (0..n)
                            .map(|k| {
                                let cid = format!("{i}.{k}");
                                entry(conv, sender, Some(&cid), "m")
                            })
                            .collect();
                        let out = store.append(&batch).unwrap();
                        let seqs: Vec<i64> = out.iter().map(|a| new(a).seq).collect();
                        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
                        got.extend(seqs);
                    }
                    got
                })
            })
            .collect();
        threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect()
    })
}

/// Every seq handed out once, 1..=N, and the log holds exactly those.
fn assert_gapless(mut handed: Vec<i64>, log: Vec<Entry>) {
    handed.sort_unstable();
    let n = handed.len() as i64;
    assert_eq!(handed, (1..=n).collect::<Vec<_>>());
    assert_eq!(seqs(&log), handed);
    let cids: Vec<(i64, String)> = log
        .iter()
        .filter_map(|e| Some((e.sender, e.cid.clone()?)))
        .collect();
    let unique: BTreeSet<&(i64, String)> = cids.iter().collect();
    assert_eq!(unique.len(), cids.len());
}
