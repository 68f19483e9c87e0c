//! Bytes on disk and appends per second of the message log, on either
//! store (docs/benchmarks.md, "Message log: bytes on disk").
//!
//! ```sh
//! cargo run --release --example log_bytes -- sqlite
//! cargo run --release --example log_bytes -- mysql mysql://root@127.0.0.1:3306
//! ```
//!
//! Flags after the store: `--no-cid` (messages without a client id),
//! `--no-ts-index` (drops the pruner's `ts` index first, to see its cost),
//! `--batch N` (messages per append call; default 500), `--journal`
//! (SQLite only: appends go through the journal, `JournaledStore`, and the
//! measured CPU includes applying them to the store; the journal's folder
//! is beside the database).
//!
//! The load: 1,000 users, user `i` writing to user `i + 1` (1,000
//! one-to-one conversations), one message after the other round the
//! users, appended in batches of 500 (so a batch touches 500
//! conversations, as in the 1,000-user benchmark; `--batch 4096` shows the
//! cost per message when each batch touches every conversation several
//! times, as the journal's applier does). Each message is a chat
//! (9) body of about 120 bytes whose `msg` is 32 characters. A warm-up of
//! 100,000 messages creates every conversation and its cursors; then the
//! growth over the next 100,000 is measured: the SQLite file after a
//! checkpoint, or InnoDB's `data_length + index_length` of the three log
//! tables after `ANALYZE TABLE` (which counts whole 16 KiB pages). One
//! thread, so the appends/s are only context. Also printed, for the same
//! 100,000: this process's CPU time, write calls and bytes written per
//! message (for SQLite: the WAL, and the checkpointer copying it back; for
//! MySQL only the client's side, the server's work is in `mariadbd`).

use std::time::Instant;

use chat::model::Conv;
use chat::storage::{JournalOptions, JournaledStore, MysqlStore, NewEntry, SqliteStore, Store};
use mysql::prelude::Queryable;

const USERS: i64 = 1000;
const BATCH: usize = 500;
const MESSAGES: usize = 100_000;
const DB: &str = "chat_log_bytes";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    let (with_cid, ts_index) = (!flag("--no-cid"), !flag("--no-ts-index"));
    let batch = match args.iter().position(|a| a == "--batch") {
        Some(i) => args
            .get(i + 1)
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|&n| n > 0)
            .ok_or("--batch needs a positive number")?,
        None => BATCH,
    };
    let mut db: Box<dyn Measured> = match args.first().map(String::as_str) {
        Some("sqlite") => Box::new(Sqlite::new(flag("--journal"))?),
        Some("mysql") => {
            let admin = args.get(1).ok_or("mysql needs the server's URL")?;
            Box::new(Mysql::new(admin)?)
        }
        _ => {
            return Err(
                "usage: log_bytes sqlite|mysql [URL] [--no-cid] [--no-ts-index] [--batch N] [--journal]".into(),
            )
        }
    };
    if !ts_index {
        db.drop_ts_index()?;
    }
    let mut next = 0usize;
    run(db.store(), &mut next, with_cid, batch)?;
    let before = db.bytes()?;
    let (cpu0, io0) = (cpu_secs(), io());
    let started = Instant::now();
    run(db.store(), &mut next, with_cid, batch)?;
    let secs = started.elapsed().as_secs_f64();
    let (cpu1, io1) = (cpu_secs(), io());
    let after = db.bytes()?;
    let sample = message(0, with_cid);
    println!(
        "{}{}: batch {batch}, body {} bytes, cid {}, ts index {}: {:.1} bytes/message, {:.0} appends/s",
        db.name(),
        if flag("--journal") { " (journal)" } else { "" },
        sample.body.len(),
        if with_cid { "yes" } else { "no" },
        if ts_index { "yes" } else { "no" },
        (after - before) as f64 / MESSAGES as f64,
        MESSAGES as f64 / secs,
    );
    let per = |x: f64| x / MESSAGES as f64;
    println!(
        "  this process, per message: {:.2} µs CPU, {:.2} write calls, {:.0} bytes written",
        per(cpu1 - cpu0) * 1e6,
        per((io1.0 - io0.0) as f64),
        per((io1.1 - io0.1) as f64),
    );
    db.clean_up()
}

/// The CPU time (user + system) of this process so far, in seconds: the
/// store's writing thread and, for SQLite, its checkpointer.
fn cpu_secs() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) } != 0 {
        return 0.0;
    }
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// Write system calls and bytes written by this process so far
/// (`syscw` and `wchar` of /proc/self/io; zeros where it is missing).
fn io() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/self/io").unwrap_or_default();
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    (field("syscw:"), field("wchar:"))
}

/// Appends [`MESSAGES`] messages, from message number `next` on.
fn run(
    store: &dyn Store,
    next: &mut usize,
    with_cid: bool,
    batch: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let mut left = MESSAGES;
    while left > 0 {
        let n = batch.min(left);
        let entries: Vec<NewEntry> = (*next..*next + n).map(|k| message(k, with_cid)).collect();
        *next += n;
        left -= n;
        store.append(&entries)?;
    }
    Ok(())
}

/// Message number `k`: from user `k mod 1000 + 1` to the next user.
fn message(k: usize, with_cid: bool) -> NewEntry {
    let from = (k as i64) % USERS + 1;
    let to = from % USERS + 1;
    let msg = format!("message {k:>10} of the log ..");
    debug_assert_eq!(msg.len(), 32);
    let body = format!(
        r#"{{"msgId":9,"from":{from},"username":"user{from}","to":{to},"msg":"{msg}","time":"2026-12-01 10:42:32"}}"#
    );
    NewEntry {
        conv: Conv::direct(from, to).expect("ids in range"),
        sender: from,
        cid: with_cid.then(|| format!("c{k}")),
        body,
    }
}

/// A store under measurement and how to read its size.
trait Measured {
    fn name(&self) -> &'static str;
    fn store(&self) -> &dyn Store;
    /// Bytes the log's data takes now.
    fn bytes(&mut self) -> Result<u64, Box<dyn std::error::Error>>;
    fn drop_ts_index(&mut self) -> Result<(), Box<dyn std::error::Error>>;
    fn clean_up(&mut self) -> Result<(), Box<dyn std::error::Error>>;
}

struct Sqlite {
    dir: std::path::PathBuf,
    store: std::sync::Arc<dyn Store>,
    side: rusqlite::Connection,
}

impl Sqlite {
    fn new(journal: bool) -> Result<Sqlite, Box<dyn std::error::Error>> {
        let dir = std::env::temp_dir().join(format!("log_bytes_{}", std::process::id()));
        let path = dir.join("chat.db");
        let mut store: std::sync::Arc<dyn Store> = std::sync::Arc::new(SqliteStore::open(&path)?);
        if journal {
            let options = JournalOptions {
                dir: dir.join("chat.db.redo"),
                fsync: false,
                apply_interval: std::time::Duration::from_millis(200),
            };
            store = std::sync::Arc::new(JournaledStore::open(store, &options)?);
        }
        let side = rusqlite::Connection::open(&path)?;
        Ok(Sqlite { dir, store, side })
    }
}

impl Measured for Sqlite {
    fn name(&self) -> &'static str {
        "sqlite"
    }
    fn store(&self) -> &dyn Store {
        &*self.store
    }
    fn bytes(&mut self) -> Result<u64, Box<dyn std::error::Error>> {
        self.side
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(std::fs::metadata(self.dir.join("chat.db"))?.len())
    }
    fn drop_ts_index(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        self.side.execute_batch("DROP INDEX chatlog_ts")?;
        Ok(())
    }
    fn clean_up(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        if std::env::var_os("KEEP").is_some() {
            println!("kept {}", self.dir.display());
            return Ok(());
        }
        Ok(std::fs::remove_dir_all(&self.dir)?)
    }
}

struct Mysql {
    admin: mysql::Conn,
    store: MysqlStore,
}

impl Mysql {
    fn new(admin_url: &str) -> Result<Mysql, Box<dyn std::error::Error>> {
        let mut admin = mysql::Conn::new(mysql::Opts::from_url(admin_url)?)?;
        admin.query_drop(format!("DROP DATABASE IF EXISTS {DB}"))?;
        admin.query_drop(format!("CREATE DATABASE {DB}"))?;
        let store = MysqlStore::open(&format!("{admin_url}/{DB}"))?;
        Ok(Mysql { admin, store })
    }
}

impl Measured for Mysql {
    fn name(&self) -> &'static str {
        "mysql"
    }
    fn store(&self) -> &dyn Store {
        &self.store
    }
    fn bytes(&mut self) -> Result<u64, Box<dyn std::error::Error>> {
        let tables = "chatlog, conversation, convcursor";
        self.admin.query_drop(format!(
            "ANALYZE TABLE {DB}.chatlog, {DB}.conversation, {DB}.convcursor"
        ))?;
        let total: Option<u64> = self.admin.query_first(format!(
            "SELECT SUM(data_length + index_length) FROM information_schema.tables \
             WHERE table_schema = '{DB}' AND FIND_IN_SET(table_name, REPLACE('{tables}', ' ', ''))"
        ))?;
        Ok(total.unwrap_or(0))
    }
    fn drop_ts_index(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        self.admin
            .query_drop(format!("ALTER TABLE {DB}.chatlog DROP KEY ts"))?;
        Ok(())
    }
    fn clean_up(&mut self) -> Result<(), Box<dyn std::error::Error>> {
        Ok(self.admin.query_drop(format!("DROP DATABASE {DB}"))?)
    }
}
