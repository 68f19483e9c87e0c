//! [`SqliteStore`]: the embedded default store, one SQLite file.
//!
//! Two connections, each behind a mutex, serve every thread: the **writer**
//! runs everything that changes the database, the **reader** every call
//! that only reads. SQLite allows a single writer at a time anyway, and
//! every call here is a few index lookups, so more connections would
//! mostly add lock contention inside SQLite. The reader exists so that a
//! read never waits behind a long write: the journal's applier commits
//! batches of thousands of messages (tens of milliseconds each), and with
//! one connection every login, sync, and every first message of a
//! conversation (its counter, `log_heads`) queued behind it. The file is
//! in WAL mode, where a reader sees the last committed state and neither
//! blocks the writer nor waits for it; each read call starts after the
//! commits that returned before it was made, so it sees them (one
//! snapshot per call: a call of several statements runs them in one read
//! transaction). A database in memory has the writer only. Another
//! process (say, the `sqlite3` shell) can read the file while the server
//! writes, and a busy timeout makes the server wait rather than fail when
//! such a process holds a lock.
//!
//! The message log's [`append`](Store::append) is one `IMMEDIATE`
//! transaction of cached statements: a lookup per cid, an upsert and a
//! read per conversation (its new `last_seq`), multi-row inserts of the
//! entries, which the `chatlog` table stores in the order they were
//! appended (the schema file says why).
//!
//! Durability: `synchronous = NORMAL` in WAL mode keeps every committed
//! transaction across a crash or `kill -9` of the server; only an operating
//! system crash or power loss can lose the last few.

use std::collections::HashMap;
use std::fs;
use std::path::Path;
use std::time::Duration;

use log::warn;
use parking_lot::Mutex;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row, TransactionBehavior};

use super::append::{first_cursors, new_entries, now_ms, Plan, Range};
use super::checkpoint::Checkpointer;
use super::schema::{self, OpenOptions};
use super::sql::{self, CHUNK};
use super::{
    Appended, ConvState, Count, Entry, JoinOutcome, NewEntry, Page, Store, StoreError, Stored,
    UserRecord,
};
use crate::model::Conv;
use crate::model::{state_str, GroupInfo, MemberInfo, UserInfo};
use crate::runtime::WordHash;

/// The schema, run at every open (it only creates what is missing).
const SCHEMA: &str = include_str!("sqlite_schema.sql");

/// WAL pages after which a commit copies the WAL back into the database
/// itself (SQLite's default is 1,000): only a bound, since the
/// [`Checkpointer`] does it every half second; 100,000 pages of 4 KiB,
/// 400 MB.
const WAL_CHECKPOINT_PAGES: i64 = 100_000;

/// The page size of a new database file, in bytes: SQLite's default. A
/// commit writes every page it touched whole into the WAL, with a write
/// call for each page and one for its frame header, so what costs is the
/// number of pages rather than their size. Measured with
/// examples/log_bytes.rs on the appended layout (docs/benchmarks.md, "The
/// message log's cost"): 4 KiB pages take about 3.1 write calls and 15 µs
/// of CPU per message, 1 KiB pages 6.6 calls and 19 µs. (For the first,
/// keyed layout, 1 KiB had been the better choice; a database keeps the
/// page size it was made with.)
const PAGE_SIZE: i64 = 4096;

/// The page cache of the connection, in KiB (SQLite's default is 2 MiB):
/// a batch of the log dirties a page per conversation, and a cache that
/// cannot hold them spills them to the WAL in the middle of the batch.
const CACHE_KIB: i64 = 64 * 1024;

/// How long a statement waits for a lock held by another process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The read connection's page cache, in KiB: a read touches a few pages
/// of each index it uses.
const READER_CACHE_KIB: i64 = 16 * 1024;

/// A [`Store`] in a SQLite database file.
pub struct SqliteStore {
    /// The writer; see the module docs for why two connections are enough.
    conn: Mutex<Connection>,
    /// The reader (`None` in memory, where the writer reads too).
    reader: Option<Mutex<Connection>>,
    /// Copies the WAL back on a thread of its own (file databases only).
    _checkpointer: Option<Checkpointer>,
    /// The database file (`None` in memory), for [`Store::sync_log`].
    path: Option<std::path::PathBuf>,
}

impl SqliteStore {
    /// Opens (or creates) the database at `path`, creating its folder and
    /// its tables when missing.
    ///
    /// # Errors
    ///
    /// [`StoreError::CreateDir`] when the folder cannot be created,
    /// [`StoreError::Sqlite`] when the file cannot be opened or is not a
    /// database.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        SqliteStore::open_with(path, OpenOptions::default())
    }

    /// [`SqliteStore::open`] with `options` (whether to migrate: see
    /// [`super::schema`]).
    ///
    /// # Errors
    ///
    /// As [`SqliteStore::open`], and [`StoreError::Schema`] for a database
    /// it must not use as it is.
    pub fn open_with(
        path: impl AsRef<Path>,
        options: OpenOptions,
    ) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // Before anything is created (a database keeps the page size it was
        // made with): see PAGE_SIZE.
        conn.pragma_update(None, "page_size", PAGE_SIZE)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            warn!("{}: WAL mode unavailable, using {mode}", path.display());
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // The log's commits dirty one page per conversation they touch;
        // a larger WAL checkpoints each hot page once for several commits
        // (docs/benchmarks.md, "Message log: bytes on disk").
        conn.pragma_update(None, "wal_autocheckpoint", WAL_CHECKPOINT_PAGES)?;
        // A database in memory (a URI filename can name one) is private to
        // its connection: a reader would open another, empty one.
        let file: String = conn.query_row("PRAGMA database_list", [], |r| r.get(2))?;
        let mut store = SqliteStore::init(conn, options)?;
        if !file.is_empty() {
            store.reader = Some(Mutex::new(open_reader(path)?));
        }
        store.path = Some(path.to_owned());
        match Checkpointer::start(path, BUSY_TIMEOUT) {
            Ok(c) => store._checkpointer = Some(c),
            Err(e) => warn!(
                "{}: no checkpoint thread ({e}); commits checkpoint",
                path.display()
            ),
        }
        Ok(store)
    }

    /// Opens a private database in memory, gone when the store is dropped.
    /// For tests.
    ///
    /// # Errors
    ///
    /// [`StoreError::Sqlite`] if SQLite cannot allocate it.
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        SqliteStore::init(Connection::open_in_memory()?, OpenOptions::default())
    }

    fn init(mut conn: Connection, options: OpenOptions) -> Result<SqliteStore, StoreError> {
        let found = schema::sqlite_check(&conn, options)?;
        migrate_chatlog(&mut conn)?;
        conn.execute_batch(SCHEMA)?;
        migrate_token_gen(&conn)?;
        schema::sqlite_record(&conn, found)?;
        conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
        // Room for every statement of this module in the statement cache.
        conn.set_prepared_statement_cache_capacity(64);
        Ok(SqliteStore {
            conn: Mutex::new(conn),
            reader: None,
            _checkpointer: None,
            path: None,
        })
    }

    /// Runs `f` with the writer locked.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        f(&mut self.conn.lock())
    }

    /// Runs `f`, which only reads, with the reader locked (the writer in
    /// memory). `f` must not write: the reader is `query_only`.
    pub(super) fn read<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        match &self.reader {
            Some(reader) => f(&mut reader.lock()),
            None => self.with(f),
        }
    }

    /// Tests: holds the writer, as a long write transaction does.
    #[cfg(test)]
    pub(super) fn lock_writer(&self) -> parking_lot::MutexGuard<'_, Connection> {
        self.conn.lock()
    }

    fn user_where(
        &self,
        query: &str,
        key: &dyn rusqlite::ToSql,
    ) -> Result<Option<UserRecord>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(query)?;
            Ok(stmt.query_row([key], user_record).optional()?)
        })
    }

    /// Runs a one-parameter query and collects its rows.
    fn rows<T>(
        &self,
        query: &str,
        key: i64,
        row: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(query)?;
            let rows = stmt.query_map([key], row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}

/// Creates `uid`'s cursor row of group `gid`'s conversation, every
/// position at `at`; an existing row stays as it is.
fn insert_cursor(tx: &Connection, uid: i64, gid: i64, at: i64) -> Result<(), StoreError> {
    tx.prepare_cached(
        "INSERT INTO convcursor (userid, conv, delivered_seq, read_seq, joined_seq) \
         VALUES (?1, ?2, ?3, ?3, ?3) ON CONFLICT DO NOTHING",
    )?
    .execute(params![uid, gid, at])?;
    Ok(())
}

fn user_record(r: &Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        password_hash: r.get(2)?,
        online: sql::is_online(&r.get::<_, String>(3)?),
        token_gen: r.get(4)?,
    })
}

impl Store for SqliteStore {
    fn create_user(&self, name: &str, password_hash: &str) -> Result<Option<i64>, StoreError> {
        self.with(|c| {
            let inserted = c
                .prepare_cached(
                    "INSERT INTO user (name, password) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                )?
                .execute(params![name, password_hash])?;
            Ok((inserted == 1).then(|| c.last_insert_rowid()))
        })
    }

    fn user_by_id(&self, uid: i64) -> Result<Option<UserRecord>, StoreError> {
        self.user_where(sql::USER_BY_ID, &uid)
    }

    fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        self.user_where(sql::USER_BY_NAME, &name)
    }

    fn set_password(&self, uid: i64, password_hash: &str) -> Result<bool, StoreError> {
        self.with(|c| {
            let changed = c
                .prepare_cached(sql::SET_PASSWORD)?
                .execute(params![password_hash, uid])?;
            Ok(changed > 0)
        })
    }

    fn revoke_tokens(&self, uid: i64) -> Result<bool, StoreError> {
        self.with(|c| Ok(c.prepare_cached(sql::REVOKE_TOKENS)?.execute([uid])? > 0))
    }

    fn set_online(&self, uid: i64, online: bool) -> Result<bool, StoreError> {
        let state = state_str(online);
        self.with(|c| {
            let changed = c
                .prepare_cached(sql::SET_STATE)?
                .execute(params![state, uid, state])?;
            Ok(changed > 0)
        })
    }

    fn reset_all_online(&self) -> Result<u64, StoreError> {
        self.with(|c| Ok(c.execute(sql::RESET_ALL_ONLINE, [])? as u64))
    }

    fn set_offline_many(&self, uids: &[i64]) -> Result<u64, StoreError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut changed = 0;
            for chunk in uids.chunks(CHUNK) {
                let query = sql::set_offline_in(chunk.len());
                changed += tx.execute(&query, params_from_iter(chunk))? as u64;
            }
            tx.commit()?;
            Ok(changed)
        })
    }

    fn add_friend(&self, a: i64, b: i64) -> Result<bool, StoreError> {
        self.with(|c| {
            let inserted = c
                .prepare_cached(
                    "INSERT INTO friend (userid, friendid) VALUES (?1, ?2), (?2, ?1) \
                     ON CONFLICT DO NOTHING",
                )?
                .execute(params![a, b])?;
            Ok(inserted > 0)
        })
    }

    fn delete_friend(&self, a: i64, b: i64) -> Result<bool, StoreError> {
        self.with(|c| {
            let deleted = c
                .prepare_cached(sql::DELETE_FRIEND)?
                .execute(params![a, b, b, a])?;
            Ok(deleted > 0)
        })
    }

    fn friends(&self, uid: i64) -> Result<Vec<UserInfo>, StoreError> {
        let rows = self.rows(sql::FRIENDS, uid, |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.into_iter().map(sql::user_info).collect())
    }

    fn create_group(
        &self,
        creator: i64,
        name: &str,
        desc: &str,
    ) -> Result<Option<i64>, StoreError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO allgroup (groupname, groupdesc) VALUES (?, ?) \
                     ON CONFLICT (groupname) DO NOTHING",
                )?
                .execute(params![name, desc])?;
            if inserted == 0 {
                return Ok(None); // dropping `tx` rolls back (there is nothing to undo)
            }
            let gid = tx.last_insert_rowid();
            tx.prepare_cached(
                "INSERT INTO groupuser (groupid, userid, grouprole) VALUES (?, ?, 'creator')",
            )?
            .execute(params![gid, creator])?;
            insert_cursor(&tx, creator, gid, 0)?;
            tx.commit()?;
            Ok(Some(gid))
        })
    }

    fn join_group(&self, gid: i64, uid: i64) -> Result<JoinOutcome, StoreError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let exists = tx
                .prepare_cached("SELECT 1 FROM allgroup WHERE id = ?")?
                .exists([gid])?;
            if !exists {
                return Ok(JoinOutcome::NoSuchGroup);
            }
            let inserted = tx
                .prepare_cached(
                    "INSERT INTO groupuser (groupid, userid, grouprole) VALUES (?, ?, 'normal') \
                     ON CONFLICT DO NOTHING",
                )?
                .execute(params![gid, uid])?;
            if inserted > 0 {
                // A new member reads what is posted from now on.
                let last: i64 = tx
                    .prepare_cached(sql::LAST_SEQ)?
                    .query_row([gid], |r| r.get(0))
                    .optional()?
                    .unwrap_or(0);
                insert_cursor(&tx, uid, gid, last)?;
            }
            tx.commit()?;
            Ok(if inserted == 0 {
                JoinOutcome::AlreadyMember
            } else {
                JoinOutcome::Joined
            })
        })
    }

    fn quit_group(&self, gid: i64, uid: i64) -> Result<bool, StoreError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let deleted = tx
                .prepare_cached(sql::QUIT_GROUP)?
                .execute(params![gid, uid])?;
            tx.prepare_cached(sql::DELETE_CURSOR)?
                .execute(params![uid, gid])?;
            tx.commit()?;
            Ok(deleted > 0)
        })
    }

    fn dismiss_group(&self, gid: i64) -> Result<bool, StoreError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let deleted = tx.execute(sql::DELETE_GROUP, [gid])?;
            tx.execute(sql::DELETE_GROUP_MEMBERS, [gid])?;
            for delete in sql::DELETE_CONVERSATION {
                tx.execute(delete, [gid])?;
            }
            tx.commit()?;
            Ok(deleted > 0)
        })
    }

    fn group(&self, gid: i64) -> Result<Option<(GroupInfo, Option<i64>)>, StoreError> {
        let mut rows = self.rows(sql::GROUP, gid, |r| {
            let group = GroupInfo {
                id: r.get(0)?,
                name: r.get(1)?,
                desc: r.get(2)?,
                members: Vec::new(),
            };
            Ok((group, r.get(3)?))
        })?;
        Ok(rows.pop())
    }

    fn group_members(&self, gid: i64) -> Result<Vec<MemberInfo>, StoreError> {
        let rows = self.rows(sql::GROUP_MEMBERS, gid, |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;
        rows.into_iter().map(sql::member_info).collect()
    }

    fn group_member_ids(&self, gid: i64) -> Result<Vec<i64>, StoreError> {
        self.rows(sql::GROUP_MEMBER_IDS, gid, |r| r.get(0))
    }

    fn user_groups(&self, uid: i64) -> Result<Vec<GroupInfo>, StoreError> {
        let rows = self.rows(sql::USER_GROUPS, uid, |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
                r.get(6)?,
            ))
        })?;
        sql::fold_groups(rows)
    }

    fn push_offline(&self, uid: i64, message: &str) -> Result<(), StoreError> {
        self.with(|c| {
            c.prepare_cached(sql::PUSH_OFFLINE)?
                .execute(params![uid, message])?;
            Ok(())
        })
    }

    fn push_offline_many(&self, messages: &[(i64, String)]) -> Result<(), StoreError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                let mut insert = tx.prepare_cached(sql::PUSH_OFFLINE)?;
                for (uid, message) in messages {
                    insert.execute(params![uid, message])?;
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn offline_messages(&self, uid: i64) -> Result<Vec<(i64, String)>, StoreError> {
        self.rows(sql::OFFLINE_MESSAGES, uid, |r| Ok((r.get(0)?, r.get(1)?)))
    }

    fn delete_offline(&self, uid: i64, ids: &[i64]) -> Result<u64, StoreError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let mut deleted = 0;
            for chunk in ids.chunks(CHUNK) {
                let query = sql::delete_offline_in(chunk.len());
                let args = std::iter::once(&uid).chain(chunk);
                deleted += tx.execute(&query, params_from_iter(args))? as u64;
            }
            tx.commit()?;
            Ok(deleted)
        })
    }

    fn append(&self, entries: &[NewEntry]) -> Result<Vec<Appended>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let known = stored_cids(&tx, entries)?;
            let plan = Plan::new(entries, |sender, cid| {
                known.get(&sender).and_then(|m| m.get(cid)).copied()
            });
            if plan.nothing_new() {
                return plan.finish(&HashMap::new()); // dropping `tx`: nothing to undo
            }
            let ranges = bump_counters(&tx, plan.convs())?;
            let out = plan.finish(&ranges)?;
            insert_entries(&tx, entries, &out)?;
            tx.commit()?;
            Ok(out)
        })
    }

    fn apply_log(&self, entries: &[Entry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            apply_heads(&tx, entries)?;
            apply_entries(&tx, entries)?;
            tx.commit()?;
            Ok(())
        })
    }

    fn log_heads(&self, convs: &[Conv]) -> Result<HashMap<i64, Range>, StoreError> {
        self.read(|c| {
            let tx = c.transaction()?; // one snapshot for every conversation
            let mut read =
                tx.prepare_cached("SELECT last_seq, last_ts FROM conversation WHERE id = ?")?;
            let mut heads = HashMap::with_capacity(convs.len());
            for conv in convs {
                let head: Option<Range> = read
                    .query_row(params![conv.key()], |r| Ok((r.get(0)?, r.get(1)?)))
                    .optional()?;
                if let Some(head) = head {
                    heads.insert(conv.key(), head);
                }
            }
            Ok(heads)
        })
    }

    fn find_cids(&self, entries: &[NewEntry]) -> Result<super::CidPlaces, StoreError> {
        self.read(|c| {
            let tx = c.transaction()?; // one snapshot for every cid
            stored_cids(&tx, entries)
        })
    }

    fn sync_log(&self) -> Result<(), StoreError> {
        let Some(path) = &self.path else {
            return Ok(());
        };
        // An fsync of any descriptor of a file flushes all of it. The WAL
        // first (it holds the newest commits), then the database file (a
        // checkpoint may have moved commits there and reset the WAL).
        let mut wal = path.clone().into_os_string();
        wal.push("-wal");
        for file in [std::path::PathBuf::from(wal), path.clone()] {
            match fs::File::open(&file).and_then(|f| f.sync_data()) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(StoreError::Journal(format!("sync {}: {e}", file.display()))),
            }
        }
        Ok(())
    }

    fn log_page(
        &self,
        conv: Conv,
        page: Page,
        floor: i64,
        limit: usize,
    ) -> Result<(Vec<Entry>, bool), StoreError> {
        let key = conv.key();
        let n = sql::limit_plus_one(limit);
        let rows = self.read(|c| match page {
            Page::After(after) => {
                let mut stmt = c.prepare_cached(sql::PAGE_AFTER)?;
                query_entries(&mut stmt, params![key, after.max(floor), n])
            }
            Page::Before(before) => {
                let mut stmt = c.prepare_cached(sql::PAGE_BEFORE)?;
                query_entries(&mut stmt, params![key, before, floor, n])
            }
        })?;
        Ok(sql::page(rows, limit, matches!(page, Page::Before(_))))
    }

    fn conv_state(&self, uid: i64, conv: Conv) -> Result<Option<ConvState>, StoreError> {
        let row = self.read(|c| {
            let mut stmt = c.prepare_cached(&sql::conv_state_of())?;
            Ok(stmt
                .query_row(params![uid, conv.key()], conv_state_row)
                .optional()?)
        })?;
        row.map(sql::conv_state).transpose()
    }

    fn conversations(&self, uid: i64) -> Result<Vec<ConvState>, StoreError> {
        let rows = self.rows(&sql::conv_states(), uid, conv_state_row)?;
        rows.into_iter().map(sql::conv_state).collect()
    }

    fn pending(&self, uid: i64, limit: usize) -> Result<Vec<Entry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let n = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(|c| {
            let tx = c.transaction()?; // one snapshot for both steps
            let convs: Vec<(i64, i64)> = {
                let mut stmt = tx.prepare_cached(sql::PENDING_CONVS)?;
                let rows = stmt.query_map([uid], |r| Ok((r.get(0)?, r.get(1)?)))?;
                rows.collect::<Result<_, _>>()?
            };
            let mut stmt = tx.prepare_cached(sql::PENDING_IN)?;
            let mut all = Vec::new();
            for (key, from) in convs {
                all.extend(query_entries(&mut stmt, params![key, from, uid, n])?);
            }
            Ok(sql::oldest_first(all, limit))
        })
    }

    fn set_delivered(&self, uid: i64, positions: &[(Conv, i64)]) -> Result<(), StoreError> {
        self.set_delivered_many(&[(uid, positions.to_vec())])
    }

    fn set_delivered_many(&self, moves: &[(i64, Vec<(Conv, i64)>)]) -> Result<(), StoreError> {
        if moves.iter().all(|(_, p)| p.is_empty()) {
            return Ok(());
        }
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            {
                let mut update = tx.prepare_cached(sql::SET_DELIVERED)?;
                for (uid, positions) in moves {
                    for &(conv, seq) in positions {
                        update.execute(params![seq, uid, conv.key(), seq])?;
                    }
                }
            }
            tx.commit()?;
            Ok(())
        })
    }

    fn set_read(&self, uid: i64, conv: Conv, seq: i64) -> Result<Option<i64>, StoreError> {
        let key = conv.key();
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let old: Option<i64> = tx
                .prepare_cached(sql::READ_SEQ)?
                .query_row(params![uid, key], |r| r.get(0))
                .optional()?;
            let Some(old) = old else {
                return Ok(None);
            };
            let last: i64 = tx
                .prepare_cached(sql::LAST_SEQ)?
                .query_row([key], |r| r.get(0))
                .optional()?
                .unwrap_or(0);
            let new = sql::new_read_seq(old, seq, last);
            if new != old {
                tx.prepare_cached(sql::SET_READ)?
                    .execute(params![new, uid, key])?;
            }
            tx.commit()?;
            Ok(Some(new))
        })
    }

    fn prune_log(&self, cutoff_ms: i64, limit: usize) -> Result<u64, StoreError> {
        let n = i64::try_from(limit).unwrap_or(i64::MAX);
        self.with(|c| {
            let deleted = c
                .prepare_cached(
                    "DELETE FROM chatlog WHERE id IN (SELECT id FROM chatlog \
                     WHERE ts < ? ORDER BY ts, id LIMIT ?)",
                )?
                .execute(params![cutoff_ms, n])?;
            Ok(deleted as u64)
        })
    }

    fn count(&self, what: Count) -> Result<u64, StoreError> {
        let (query, key) = sql::count_query(what);
        let n: i64 =
            self.read(|c| Ok(c.prepare_cached(query)?.query_row([key], |r| r.get(0))?))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// Opens the read connection of the database at `path` (made and migrated
/// by the writer already): `query_only`, so that a write sent to it by
/// mistake fails instead of racing the writer.
fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    let reader = Connection::open(path)?;
    reader.busy_timeout(BUSY_TIMEOUT)?;
    reader.pragma_update(None, "query_only", true)?;
    reader.pragma_update(None, "cache_size", -READER_CACHE_KIB)?;
    reader.set_prepared_statement_cache_capacity(64);
    Ok(reader)
}

/// Moves a `chatlog` of the first layout (keyed by `(conv, seq)`, `WITHOUT
/// ROWID`) into the appended one of the schema: renamed aside, its indexes
/// dropped, the schema run (it creates the new table and indexes), the rows
/// copied in time order, the old table dropped; one transaction, so an
/// interrupted migration leaves the old layout, and the next open starts
/// again. Any other database is left alone. Runs at open, before anything
/// else uses the connection.
fn migrate_chatlog(conn: &mut Connection) -> Result<(), StoreError> {
    let table: Option<String> = conn
        .query_row(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'chatlog'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    let keyed = table.is_some_and(|sql| sql.to_ascii_uppercase().contains("WITHOUT ROWID"));
    if !keyed {
        return Ok(());
    }
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    tx.execute_batch(
        "ALTER TABLE chatlog RENAME TO chatlog_keyed; \
         DROP INDEX IF EXISTS chatlog_sender_cid; \
         DROP INDEX IF EXISTS chatlog_ts;",
    )?;
    tx.execute_batch(SCHEMA)?;
    let moved = tx.execute(
        "INSERT INTO chatlog (conv, seq, sender, ts, cid, body) \
         SELECT conv, seq, sender, ts, cid, body FROM chatlog_keyed ORDER BY ts, conv, seq",
        [],
    )?;
    tx.execute_batch("DROP TABLE chatlog_keyed")?;
    tx.commit()?;
    log::info!("message log: {moved} entries moved to the appended layout");
    Ok(())
}

/// Gives a `user` table made before resume tokens its `token_gen` column
/// (every account at generation 0); a table that has it is left alone.
/// Runs at open, after the schema (which creates the column in a new
/// database).
fn migrate_token_gen(conn: &Connection) -> Result<(), StoreError> {
    let has: bool = conn.query_row(
        "SELECT count(*) > 0 FROM pragma_table_info('user') WHERE name = 'token_gen'",
        [],
        |r| r.get(0),
    )?;
    if !has {
        conn.execute_batch("ALTER TABLE user ADD COLUMN token_gen INTEGER NOT NULL DEFAULT 0")?;
        log::info!("user: token_gen column added (resume tokens)");
    }
    Ok(())
}

/// Where the entries' `(sender, cid)` pairs already are: sender → cid →
/// place. One indexed lookup per entry with a cid.
fn stored_cids(
    tx: &Connection,
    entries: &[NewEntry],
) -> Result<HashMap<i64, HashMap<String, Stored>>, StoreError> {
    let mut known: HashMap<i64, HashMap<String, Stored>> = HashMap::new();
    let mut lookup = tx.prepare_cached(sql::CID_PLACE)?;
    for e in entries {
        let Some(cid) = e.cid.as_deref() else {
            continue;
        };
        let row = lookup
            .query_row(params![e.sender, cid], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .optional()?;
        if let Some(row) = row {
            known
                .entry(e.sender)
                .or_default()
                .insert(cid.to_owned(), sql::stored(row)?);
        }
    }
    Ok(known)
}

/// Raises each conversation's counter by its count (creating the row, and
/// a one-to-one conversation's cursor rows, on its first message) and
/// returns the counters after the increment, by key.
fn bump_counters(
    tx: &Connection,
    convs: &[(Conv, i64)],
) -> Result<HashMap<i64, Range>, StoreError> {
    let now = now_ms();
    // Two statements rather than one with RETURNING, which builds (and
    // frees) a temporary table on every execution.
    let mut bump = tx.prepare_cached(
        "INSERT INTO conversation (id, last_seq, last_ts) VALUES (?1, ?2, ?3) \
         ON CONFLICT (id) DO UPDATE SET last_seq = last_seq + excluded.last_seq, \
         last_ts = MAX(last_ts, excluded.last_ts)",
    )?;
    let mut read = tx.prepare_cached("SELECT last_seq, last_ts FROM conversation WHERE id = ?")?;
    let mut cursor =
        tx.prepare_cached("INSERT OR IGNORE INTO convcursor (userid, conv) VALUES (?, ?)")?;
    let mut ranges = HashMap::with_capacity(convs.len());
    for &(conv, count) in convs {
        bump.execute(params![conv.key(), count, now])?;
        let range: Range = read.query_row(params![conv.key()], |r| Ok((r.get(0)?, r.get(1)?)))?;
        if range.0 == count {
            for (uid, key) in first_cursors(conv) {
                cursor.execute(params![uid, key])?;
            }
        }
        ranges.insert(conv.key(), range);
    }
    Ok(ranges)
}

/// Inserts the entries that `out` says are new, at their places: one
/// multi-row statement per [`sql::STATEMENT_ROWS`] piece.
fn insert_entries(
    tx: &Connection,
    entries: &[NewEntry],
    out: &[Appended],
) -> Result<(), StoreError> {
    let new = new_entries(entries, out);
    for chunk in sql::fixed_chunks(&new) {
        let rows = vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        // `OR IGNORE`, and the count checked below: a statement that may
        // abort half-way through several rows makes SQLite save every page
        // it touches to a statement journal first (a temporary file, once it
        // outgrows memory), so that the rows before the failure can be
        // undone; that was a third of the log writer's time. No row can
        // conflict (places come from the counters under the write lock, cids
        // were looked up above), and if one did, the count would be short
        // and the whole transaction is rolled back.
        let mut insert = tx.prepare_cached(&format!(
            "INSERT OR IGNORE INTO chatlog (conv, seq, sender, ts, cid, body) VALUES {rows}"
        ))?;
        let mut params: Vec<rusqlite::types::Value> = Vec::with_capacity(chunk.len() * 6);
        for (e, at) in chunk {
            params.extend([
                at.conv.key().into(),
                at.seq.into(),
                e.sender.into(),
                at.ts.into(),
                e.cid.clone().into(),
                e.body.clone().into(),
            ]);
        }
        let inserted = insert.execute(params_from_iter(params))?;
        if inserted != chunk.len() {
            return Err(StoreError::Data(format!(
                "the log took {inserted} of {} entries: a place or cid was taken",
                chunk.len()
            )));
        }
    }
    Ok(())
}

/// [`Store::apply_log`]'s counters: each conversation's `last_seq` and
/// `last_ts` raised to its entries' largest, and the cursor rows of the
/// one-to-one conversations that start here (an entry with seq 1).
fn apply_heads(tx: &Connection, entries: &[Entry]) -> Result<(), StoreError> {
    let mut heads: HashMap<i64, (Conv, Range, bool), WordHash> = HashMap::default();
    for e in entries {
        let h = heads.entry(e.conv.key()).or_insert((e.conv, (0, 0), false));
        h.1 = (h.1 .0.max(e.seq), h.1 .1.max(e.ts));
        h.2 |= e.seq == 1;
    }
    let mut raise = tx.prepare_cached(
        "INSERT INTO conversation (id, last_seq, last_ts) VALUES (?1, ?2, ?3) \
         ON CONFLICT (id) DO UPDATE SET last_seq = MAX(last_seq, excluded.last_seq), \
         last_ts = MAX(last_ts, excluded.last_ts)",
    )?;
    let mut cursor =
        tx.prepare_cached("INSERT OR IGNORE INTO convcursor (userid, conv) VALUES (?, ?)")?;
    for (key, (conv, (seq, ts), first)) in heads {
        raise.execute(params![key, seq, ts])?;
        if first {
            for (uid, key) in first_cursors(conv) {
                cursor.execute(params![uid, key])?;
            }
        }
    }
    Ok(())
}

/// [`Store::apply_log`]'s rows: multi-row `INSERT OR IGNORE`s, so that an
/// entry stored already (a replay) is skipped. (`OR IGNORE` also spares
/// the statement journal; see [`insert_entries`].)
fn apply_entries(tx: &Connection, entries: &[Entry]) -> Result<(), StoreError> {
    for chunk in sql::fixed_chunks(entries) {
        let rows = vec!["(?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let mut insert = tx.prepare_cached(&format!(
            "INSERT OR IGNORE INTO chatlog (conv, seq, sender, ts, cid, body) VALUES {rows}"
        ))?;
        use rusqlite::types::{ToSqlOutput, ValueRef};
        let int = |n: i64| ToSqlOutput::Borrowed(ValueRef::Integer(n));
        fn text(t: &str) -> ToSqlOutput<'_> {
            ToSqlOutput::Borrowed(ValueRef::Text(t.as_bytes()))
        }
        let mut params: Vec<ToSqlOutput<'_>> = Vec::with_capacity(chunk.len() * 6);
        for e in chunk {
            params.extend([
                int(e.conv.key()),
                int(e.seq),
                int(e.sender),
                int(e.ts),
                e.cid
                    .as_deref()
                    .map_or(ToSqlOutput::Borrowed(ValueRef::Null), text),
                text(&e.body),
            ]);
        }
        insert.execute(params_from_iter(params))?;
    }
    Ok(())
}

/// Runs a query of log rows (conv, seq, sender, ts, cid, body) and reads
/// them as entries.
fn query_entries(
    stmt: &mut rusqlite::Statement<'_>,
    params: impl rusqlite::Params,
) -> Result<Vec<Entry>, StoreError> {
    let mut rows = stmt.query(params)?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let row: sql::EntryRow = (
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        );
        out.push(sql::entry(row)?);
    }
    Ok(out)
}

fn conv_state_row(r: &Row<'_>) -> rusqlite::Result<(i64, i64, i64, i64, i64)> {
    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
}
