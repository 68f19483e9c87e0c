//! The journal (redo log) in front of the store, on both stores, against
//! real servers killed with `kill -9`:
//!
//! * every acked message is journaled and none applied (the apply interval
//!   is an hour), `kill -9`: after the restart every one is in sync with
//!   its acked seq and ts, nothing doubled, a retried cid gets its original
//!   place, and numbering goes on without a gap;
//! * a torn record at the journal's tail is cut, the server starts, and
//!   everything before it is there;
//! * `chat-server backup` of a running SQLite server copies the acked
//!   messages that only the journal holds yet.

use std::io::Write;
use std::path::PathBuf;

use serde_json::json;

use crate::support::log::{chat_with_cid, login_as, one_to, seqs, Ack};
use crate::support::{unique, Server, Test, TestDb};

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    let mut t = both_stores![kill9_with_everything_unapplied, a_torn_tail_is_cut_at_start];
    t.extend(tests![a_backup_holds_what_only_the_journal_holds]);
    t
}

/// A journal folder of the test's own, beside its token key.
fn journal_dir(db: &TestDb) -> PathBuf {
    let key = db.token_key_file();
    let name = key.file_name().map(|n| n.to_string_lossy().into_owned());
    key.with_file_name(format!("{}.redo-test", name.unwrap_or_default()))
}

/// Removes the journal folder on drop (a MySQL test's is in the
/// temporary folder, outside the store's own).
struct Removed(PathBuf);

impl Drop for Removed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn flags(dir: &str, interval: &'static str) -> Vec<String> {
    vec![
        "--journal-dir".into(),
        dir.into(),
        "--journal-apply-interval".into(),
        interval.into(),
    ]
}

fn start(db: &TestDb, dir: &str, interval: &'static str) -> Server {
    let flags = flags(dir, interval);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    Server::start(db, &flags)
}

/// N messages with cids, all acked, none applied; `kill -9`; restart.
fn kill9_with_everything_unapplied(db: TestDb) {
    const N: usize = 500;
    let dir = journal_dir(&db);
    let _removed = Removed(dir.clone());
    let dir_s = dir.display().to_string();
    let mut server = start(&db, &dir_s, "1h");
    let mut alice = server.user("alice");
    let a = alice.uid;
    let b = server.connect().register("bob", "secret");
    let msgs: Vec<_> = (0..N)
        .map(|i| chat_with_cid(b, &format!("journaled {i}"), &format!("j{i}")))
        .collect();
    let acks: Vec<Ack> = alice.post_acked(&msgs);
    // Acked from the journal alone: the store holds none of them yet.
    assert_eq!(db.chatlog_rows(), 0, "applied before the interval");
    server.kill9();
    let conv = acks[0].conv.clone();
    assert_eq!(
        acks.iter().map(|a| a.seq).collect::<Vec<_>>(),
        one_to(N as i64)
    );

    let server = start(&db, &dir_s, "200ms");
    // Replayed at the start, before the server listens.
    assert_eq!(
        db.chatlog_rows(),
        N as i64,
        "replayed once, nothing doubled"
    );
    let (mut alice, _) = login_as(server.addr, a, "alice");
    let all = alice.sync_all(&conv);
    assert_eq!(seqs(&all), one_to(N as i64));
    for (i, (m, ack)) in all.iter().zip(&acks).enumerate() {
        assert_eq!(m["msg"], format!("journaled {i}"), "{m}");
        assert_eq!(
            (&m["seq"], &m["ts"]),
            (&json!(ack.seq), &json!(ack.ts)),
            "{m}"
        );
    }
    // A retry finds the original place; the next message goes on.
    let retry = alice.send_acked(&chat_with_cid(b, "journaled 7", "j7"));
    assert_eq!((retry.seq, retry.ts), (acks[7].seq, acks[7].ts));
    let next = alice.send_acked(&chat_with_cid(b, "after", "j-after"));
    assert_eq!(
        (next.conv.as_str(), next.seq),
        (conv.as_str(), N as i64 + 1)
    );
    let all = alice.sync_all(&conv);
    assert_eq!(seqs(&all), one_to(N as i64 + 1));
    assert_eq!(db.chatlog_rows(), N as i64 + 1);
}

/// 50 acked messages, `kill -9`, half a record appended to the journal's
/// last segment (a write cut short): the server starts, cuts it, and all
/// 50 are there; the next message is number 51.
fn a_torn_tail_is_cut_at_start(db: TestDb) {
    const N: usize = 50;
    let dir = journal_dir(&db);
    let _removed = Removed(dir.clone());
    let dir_s = dir.display().to_string();
    let mut server = start(&db, &dir_s, "1h");
    let mut alice = server.user("alice");
    let a = alice.uid;
    let b = server.connect().register("bob", "secret");
    let msgs: Vec<_> = (0..N)
        .map(|i| chat_with_cid(b, &format!("torn {i}"), &format!("t{i}")))
        .collect();
    let acks = alice.post_acked(&msgs);
    server.kill9();
    let mut segments: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("the journal folder")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    segments.sort();
    let last = segments.pop().expect("a journal segment");
    let mut file = std::fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .unwrap();
    // A length of 100 bytes, a CRC, and only 10 of the bytes.
    file.write_all(&100u32.to_le_bytes()).unwrap();
    file.write_all(&[7u8; 14]).unwrap();
    drop(file);

    let server = start(&db, &dir_s, "200ms");
    let (mut alice, _) = login_as(server.addr, a, "alice");
    let conv = acks[0].conv.clone();
    assert_eq!(seqs(&alice.sync_all(&conv)), one_to(N as i64));
    let next = alice.send_acked(&chat_with_cid(b, "after", "t-after"));
    assert_eq!(next.seq, N as i64 + 1);
}

/// N acked messages that only the journal holds (the apply interval is an
/// hour), then `chat-server backup` beside the running server: the copy
/// holds all N at their acked places, and the server goes on numbering.
fn a_backup_holds_what_only_the_journal_holds() {
    const N: usize = 300;
    let db = TestDb::sqlite();
    let dir = journal_dir(&db);
    let _removed = Removed(dir.clone());
    let dir_s = dir.display().to_string();
    let server = start(&db, &dir_s, "1h");
    let mut alice = server.user("alice");
    let b = server.connect().register("bob", "secret");
    let msgs: Vec<_> = (0..N)
        .map(|i| chat_with_cid(b, &format!("kept {i}"), &format!("k{i}")))
        .collect();
    let acks = alice.post_acked(&msgs);
    assert_eq!(db.chatlog_rows(), 0, "applied before the interval");
    let to = std::env::temp_dir()
        .join(unique("chat-backup-journal"))
        .with_extension("db");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_chat-server"))
        .args(["--db", &db.url, "--journal-dir", &dir_s, "backup", "--to"])
        .arg(&to)
        .output()
        .expect("run backup");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(&format!("and {N} messages from the journal")),
        "{stdout}"
    );
    let copy = rusqlite::Connection::open(&to).expect("open the copy");
    let rows: Vec<(i64, i64, String)> = copy
        .prepare("SELECT seq, ts, body FROM chatlog ORDER BY seq")
        .and_then(|mut q| {
            q.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect()
        })
        .expect("read the copy");
    assert_eq!(
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        one_to(N as i64)
    );
    for ((seq, ts, body), (i, ack)) in rows.iter().zip(acks.iter().enumerate()) {
        assert_eq!((*seq, *ts), (ack.seq, ack.ts));
        assert!(body.contains(&format!("kept {i}\"")), "{body}");
    }
    let last: i64 = copy
        .query_row("SELECT MAX(last_seq) FROM conversation", [], |r| r.get(0))
        .expect("the counter");
    assert_eq!(last, N as i64);
    let check: String = copy
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .expect("check");
    assert_eq!(check, "ok");
    drop(copy);
    for suffix in ["", "-wal", "-shm"] {
        let mut file = to.clone().into_os_string();
        file.push(suffix);
        let _ = std::fs::remove_file(file);
    }
    // The server's own journal is untouched: the next message is N + 1.
    let next = alice.send_acked(&chat_with_cid(b, "after", "k-after"));
    assert_eq!(next.seq, N as i64 + 1);
}
