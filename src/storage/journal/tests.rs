//! The journal against a real SQLite store (in memory; the journal's
//! files in a temporary folder): numbering, barriers, cids, crash replay,
//! torn tails, idempotent replay, queued cursor moves.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use super::{JournalOptions, JournaledStore};
use crate::model::Conv;
use crate::storage::{Appended, NewEntry, Page, SqliteStore, Store};

/// A folder removed on drop.
struct Folder(PathBuf);

impl Folder {
    fn new(name: &str) -> Folder {
        let dir = std::env::temp_dir().join(format!("journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        Folder(dir)
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn options(dir: &Path) -> JournalOptions {
    JournalOptions {
        dir: dir.to_owned(),
        fsync: false,
        // Nothing is applied unless a reader waits or the store stops.
        apply_interval: Duration::from_secs(3600),
    }
}

fn inner() -> Arc<dyn Store> {
    let store = SqliteStore::open_in_memory().unwrap();
    for name in ["ann", "bob", "cat"] {
        store.create_user(name, "x").unwrap();
    }
    Arc::new(store)
}

fn msg(from: i64, to: i64, cid: Option<&str>, text: &str) -> NewEntry {
    NewEntry {
        conv: Conv::direct(from, to).unwrap(),
        sender: from,
        cid: cid.map(str::to_owned),
        body: format!(r#"{{"msgId":9,"msg":"{text}"}}"#),
    }
}

fn seqs(store: &dyn Store, conv: Conv) -> Vec<(i64, String)> {
    let (entries, _) = store.log_page(conv, Page::After(0), 0, 500).unwrap();
    entries.into_iter().map(|e| (e.seq, e.body)).collect()
}

fn seq_of(a: &Appended) -> i64 {
    a.stored().seq
}

#[test]
fn numbers_are_gapless_and_reads_wait_for_the_applier() {
    let dir = Folder::new("gapless");
    let store = JournaledStore::open(inner(), &options(&dir.0)).unwrap();
    let ab = Conv::direct(1, 2).unwrap();
    let out = store
        .append(&[
            msg(1, 2, None, "a"),
            msg(2, 1, None, "b"),
            msg(1, 3, None, "c"),
        ])
        .unwrap();
    assert_eq!(out.iter().map(seq_of).collect::<Vec<_>>(), [1, 2, 1]);
    let out = store.append(&[msg(1, 2, None, "d")]).unwrap();
    assert_eq!(seq_of(&out[0]), 3);
    // Not applied yet (the interval is an hour): the inner store is empty,
    // but a read through the journal waits for the applier.
    assert!(store
        .inner()
        .log_page(ab, Page::After(0), 0, 10)
        .unwrap()
        .0
        .is_empty());
    let got = seqs(&store, ab);
    assert_eq!(got.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [1, 2, 3]);
    // The first append created both cursors; conv_state sees last_seq.
    let state = store.conv_state(2, ab).unwrap().expect("bob's cursor");
    assert_eq!(state.last_seq, 3);
}

#[test]
fn cids_are_found_before_and_after_they_are_applied() {
    let dir = Folder::new("cids");
    let store = JournaledStore::open(inner(), &options(&dir.0)).unwrap();
    let first = store.append(&[msg(1, 2, Some("c1"), "a")]).unwrap();
    assert!(matches!(first[0], Appended::New(_)));
    // Unapplied: found in memory, also twice in one call.
    let again = store
        .append(&[
            msg(1, 2, Some("c1"), "a"),
            msg(1, 2, Some("c2"), "b"),
            msg(1, 2, Some("c2"), "b"),
        ])
        .unwrap();
    assert_eq!(again[0], Appended::Duplicate(first[0].stored()));
    assert!(matches!(again[1], Appended::New(s) if s.seq == 2));
    assert!(matches!(again[2], Appended::Duplicate(s) if s.seq == 2));
    // Applied (a read waits for it): found in the store.
    seqs(&store, Conv::direct(1, 2).unwrap());
    assert!(store.shared.state.lock().cids.is_empty());
    let late = store.append(&[msg(1, 2, Some("c1"), "a")]).unwrap();
    assert_eq!(late[0], Appended::Duplicate(first[0].stored()));
}

#[test]
fn a_crash_before_the_apply_is_replayed_and_numbering_goes_on() {
    let dir = Folder::new("crash");
    let inner = inner();
    let ab = Conv::direct(1, 2).unwrap();
    let store = JournaledStore::open(inner.clone(), &options(&dir.0)).unwrap();
    for i in 0..10 {
        store
            .append(&[msg(1, 2, Some(&format!("c{i}")), &format!("m{i}"))])
            .unwrap();
    }
    store.crash();
    assert!(inner
        .log_page(ab, Page::After(0), 0, 10)
        .unwrap()
        .0
        .is_empty());
    let store = JournaledStore::open(inner.clone(), &options(&dir.0)).unwrap();
    // Replayed at open, before anything else.
    assert_eq!(
        inner.log_page(ab, Page::After(0), 0, 50).unwrap().0.len(),
        10
    );
    let retry = store.append(&[msg(1, 2, Some("c9"), "m9")]).unwrap();
    assert!(matches!(retry[0], Appended::Duplicate(s) if s.seq == 10));
    let next = store.append(&[msg(2, 1, None, "after")]).unwrap();
    assert_eq!(seq_of(&next[0]), 11);
    let got = seqs(&store, ab);
    assert_eq!(
        got.iter().map(|(s, _)| *s).collect::<Vec<_>>(),
        (1..=11).collect::<Vec<_>>()
    );
}

#[test]
fn a_torn_tail_is_cut_and_what_came_before_is_kept() {
    let dir = Folder::new("torn");
    let inner = inner();
    let ab = Conv::direct(1, 2).unwrap();
    let store = JournaledStore::open(inner.clone(), &options(&dir.0)).unwrap();
    store
        .append(&[msg(1, 2, None, "one"), msg(1, 2, None, "two")])
        .unwrap();
    store.append(&[msg(1, 2, None, "three")]).unwrap();
    let segment = store.segment_paths().pop().expect("a segment");
    store.crash();
    // The last record loses its last 5 bytes, as if the write was cut.
    let len = std::fs::metadata(&segment).unwrap().len();
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&segment)
        .unwrap();
    file.set_len(len - 5).unwrap();
    drop(file);
    let store = JournaledStore::open(inner.clone(), &options(&dir.0)).unwrap();
    let got = seqs(&store, ab);
    assert_eq!(got.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [1, 2]);
    // The cut number is given again: no gap.
    let next = store.append(&[msg(1, 2, None, "three again")]).unwrap();
    assert_eq!(seq_of(&next[0]), 3);
}

#[test]
fn replay_is_idempotent() {
    let dir = Folder::new("twice");
    let inner = inner();
    let ab = Conv::direct(1, 2).unwrap();
    let store = JournaledStore::open(inner.clone(), &options(&dir.0)).unwrap();
    store
        .append(&[msg(1, 2, Some("a"), "a"), msg(2, 1, Some("b"), "b")])
        .unwrap();
    // Half of it reaches the store (a crash in the middle of applying).
    seqs(&store, ab);
    store.append(&[msg(1, 2, Some("c"), "c")]).unwrap();
    let segment = store.segment_paths().pop().expect("a segment");
    let copy = std::fs::read(&segment).unwrap();
    store.crash();
    // Replayed once (the journal holds all three), then again from a copy.
    drop(JournaledStore::open(inner.clone(), &options(&dir.0)).unwrap());
    std::fs::write(&segment, &copy).unwrap();
    let store = JournaledStore::open(inner.clone(), &options(&dir.0)).unwrap();
    let got = seqs(&store, ab);
    assert_eq!(got.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [1, 2, 3]);
    let state = store.conv_state(1, ab).unwrap().unwrap();
    assert_eq!(state.last_seq, 3);
    assert_eq!(
        seq_of(&store.append(&[msg(1, 2, None, "d")]).unwrap()[0]),
        4
    );
}

#[test]
fn delivered_cursors_queue_behind_their_entries() {
    let dir = Folder::new("cursor");
    let store = JournaledStore::open(inner(), &options(&dir.0)).unwrap();
    let ab = Conv::direct(1, 2).unwrap();
    store
        .append(&[msg(1, 2, None, "a"), msg(1, 2, None, "b")])
        .unwrap();
    // Bob's cursor row does not exist in the store yet; the move waits in
    // the queue behind the entries that create it, and does not block.
    store.set_delivered(2, &[(ab, 1)]).unwrap();
    assert!(store.inner().conv_state(2, ab).unwrap().is_none());
    let pending = store.pending(2, 10).unwrap();
    assert_eq!(pending.iter().map(|e| e.seq).collect::<Vec<_>>(), [2]);
}

#[test]
fn a_clean_stop_applies_everything_and_leaves_no_segment() {
    let dir = Folder::new("stop");
    let inner = inner();
    let store = JournaledStore::open(inner.clone(), &options(&dir.0)).unwrap();
    store.append(&[msg(1, 2, None, "a")]).unwrap();
    drop(store);
    let ab = Conv::direct(1, 2).unwrap();
    assert_eq!(
        inner.log_page(ab, Page::After(0), 0, 10).unwrap().0.len(),
        1
    );
    let left: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with("journal-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn a_second_process_cannot_share_the_journal() {
    let dir = Folder::new("lock");
    let _store = JournaledStore::open(inner(), &options(&dir.0)).unwrap();
    let second = JournaledStore::open(inner(), &options(&dir.0));
    assert!(second.is_err());
}

#[test]
fn entries_are_applied_after_the_interval_without_a_reader() {
    let dir = Folder::new("interval");
    let inner = inner();
    let mut opts = options(&dir.0);
    opts.apply_interval = Duration::from_millis(20);
    let store = JournaledStore::open(inner.clone(), &opts).unwrap();
    store.append(&[msg(1, 2, None, "a")]).unwrap();
    let ab = Conv::direct(1, 2).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while inner
        .log_page(ab, Page::After(0), 0, 10)
        .unwrap()
        .0
        .is_empty()
    {
        assert!(std::time::Instant::now() < deadline, "never applied");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn a_replay_brings_back_neither_pruned_nor_dismissed_entries() {
    let dir = Folder::new("deleted");
    let inner = inner();
    let gid = inner.create_group(1, "team", "").unwrap().expect("a group");
    let (ab, team) = (Conv::direct(1, 2).unwrap(), Conv::group(gid).unwrap());
    let store = JournaledStore::open(inner.clone(), &options(&dir.0)).unwrap();
    let post = |text: &str| NewEntry {
        conv: team,
        sender: 1,
        cid: None,
        body: format!(r#"{{"msgId":13,"msg":"{text}"}}"#),
    };
    store
        .append(&[msg(1, 2, None, "a"), msg(2, 1, None, "b"), post("p")])
        .unwrap();
    // Applied (a reader waits), then deleted while their records stay
    // in the journal's segment.
    assert_eq!(seqs(&store, ab).len(), 2);
    assert_eq!(store.prune_log(i64::MAX, 100).unwrap(), 3);
    assert!(store.dismiss_group(gid).unwrap());
    store.crash();
    let store = JournaledStore::open(inner.clone(), &options(&dir.0)).unwrap();
    assert!(seqs(&store, ab).is_empty(), "a pruned entry came back");
    assert!(
        inner
            .log_page(team, Page::After(0), 0, 10)
            .unwrap()
            .0
            .is_empty(),
        "a dismissed group's entry came back"
    );
    assert!(inner.log_heads(&[team]).unwrap().is_empty());
    // Numbering goes on after the pruned entries.
    let next = store.append(&[msg(1, 2, None, "c")]).unwrap();
    assert_eq!(seq_of(&next[0]), 3);
}

#[test]
fn a_replay_stores_what_the_store_lacks_and_only_that() {
    let dir = Folder::new("partial");
    let inner = inner();
    let ab = Conv::direct(1, 2).unwrap();
    let store = JournaledStore::open(inner.clone(), &options(&dir.0)).unwrap();
    store
        .append(&[msg(1, 2, None, "a"), msg(2, 1, None, "b")])
        .unwrap();
    seqs(&store, ab);
    store.append(&[msg(1, 2, None, "c")]).unwrap();
    // What a running server's journal holds, read beside it.
    let held = super::replay::read_dir(&dir.0).unwrap();
    assert_eq!(held.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
    store.crash();
    // A copy of the store taken now lacks entry 3.
    let copy = self::inner();
    copy.apply_log(&inner.log_page(ab, Page::After(0), 0, 10).unwrap().0)
        .unwrap();
    assert_eq!(super::replay::replay(&*copy, held).unwrap(), 1);
    let got = seqs(&*copy, ab);
    assert_eq!(got.iter().map(|(s, _)| *s).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(copy.conv_state(1, ab).unwrap().unwrap().last_seq, 3);
}
