//! [`SqliteStore`]: the embedded default store, one SQLite file.
//!
//! One connection behind a mutex serves every worker. SQLite allows a single
//! writer at a time anyway, and every call here is a few index lookups, so
//! more connections would mostly add lock contention inside SQLite. The file
//! is in WAL mode: another process (say, the `sqlite3` shell) can read it
//! while the server writes, and a busy timeout makes the server wait rather
//! than fail when such a process holds a lock.
//!
//! Durability: `synchronous = NORMAL` in WAL mode keeps every committed
//! transaction across a crash or `kill -9` of the server; only an operating
//! system crash or power loss can lose the last few.

use std::fs;
use std::path::Path;
use std::time::Duration;

use log::warn;
use parking_lot::Mutex;
use rusqlite::{params, params_from_iter, Connection, OptionalExtension, Row, TransactionBehavior};

use super::sql::{self, CHUNK};
use super::{
    Appended, ConvState, Entry, JoinOutcome, NewEntry, Page, Store, StoreError, UserRecord,
};
use crate::model::Conv;
use crate::model::{state_str, GroupInfo, MemberInfo, UserInfo};

/// The schema, run at every open (it only creates what is missing).
const SCHEMA: &str = include_str!("sqlite_schema.sql");

/// How long a statement waits for a lock held by another process.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A [`Store`] in a SQLite database file.
pub struct SqliteStore {
    /// The only connection; see the module docs for why one is enough.
    conn: Mutex<Connection>,
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
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        let conn = Connection::open(path)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        let mode: String =
            conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            warn!("{}: WAL mode unavailable, using {mode}", path.display());
        }
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        SqliteStore::init(conn)
    }

    /// Opens a private database in memory, gone when the store is dropped.
    /// For tests.
    ///
    /// # Errors
    ///
    /// [`StoreError::Sqlite`] if SQLite cannot allocate it.
    pub fn open_in_memory() -> Result<SqliteStore, StoreError> {
        SqliteStore::init(Connection::open_in_memory()?)
    }

    fn init(conn: Connection) -> Result<SqliteStore, StoreError> {
        conn.execute_batch(SCHEMA)?;
        // Room for every statement of this module in the statement cache.
        conn.set_prepared_statement_cache_capacity(64);
        Ok(SqliteStore {
            conn: Mutex::new(conn),
        })
    }

    /// Runs `f` with the connection locked.
    fn with<T>(
        &self,
        f: impl FnOnce(&mut Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        f(&mut self.conn.lock())
    }

    fn user_where(
        &self,
        query: &str,
        key: &dyn rusqlite::ToSql,
    ) -> Result<Option<UserRecord>, StoreError> {
        self.with(|c| {
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
        self.with(|c| {
            let mut stmt = c.prepare_cached(query)?;
            let rows = stmt.query_map([key], row)?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }
}

fn user_record(r: &Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        password_hash: r.get(2)?,
        online: sql::is_online(&r.get::<_, String>(3)?),
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
            Ok(c.prepare_cached(sql::QUIT_GROUP)?
                .execute(params![gid, uid])?
                > 0)
        })
    }

    fn dismiss_group(&self, gid: i64) -> Result<bool, StoreError> {
        self.with(|c| {
            let tx = c.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let deleted = tx.execute(sql::DELETE_GROUP, [gid])?;
            tx.execute(sql::DELETE_GROUP_MEMBERS, [gid])?;
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

    // Stubs until the log lands (issue 11).
    fn append(&self, _: &[NewEntry]) -> Result<Vec<Appended>, StoreError> {
        Err(StoreError::Data(
            "the message log is not implemented yet".into(),
        ))
    }
    fn log_page(
        &self,
        _: Conv,
        _: Page,
        _: i64,
        _: usize,
    ) -> Result<(Vec<Entry>, bool), StoreError> {
        Err(StoreError::Data(
            "the message log is not implemented yet".into(),
        ))
    }
    fn conv_state(&self, _: i64, _: Conv) -> Result<Option<ConvState>, StoreError> {
        Err(StoreError::Data(
            "the message log is not implemented yet".into(),
        ))
    }
    fn conversations(&self, _: i64) -> Result<Vec<ConvState>, StoreError> {
        Err(StoreError::Data(
            "the message log is not implemented yet".into(),
        ))
    }
    fn pending(&self, _: i64, _: usize) -> Result<Vec<Entry>, StoreError> {
        Ok(Vec::new())
    }
    fn set_delivered(&self, _: i64, _: &[(Conv, i64)]) -> Result<(), StoreError> {
        Ok(())
    }
    fn set_read(&self, _: i64, _: Conv, _: i64) -> Result<Option<i64>, StoreError> {
        Err(StoreError::Data(
            "the message log is not implemented yet".into(),
        ))
    }
    fn prune_log(&self, _: i64, _: usize) -> Result<u64, StoreError> {
        Ok(0)
    }
}
