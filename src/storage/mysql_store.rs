//! [`MysqlStore`]: the store for operators who run MySQL or MariaDB.
//!
//! A [`mysql::Pool`] hands each call a connection of its own, so workers
//! query in parallel and InnoDB's row locks keep them apart. Statements are
//! prepared once per connection (the crate caches up to [`STMT_CACHE`] per
//! connection) and every value is a bound parameter. For that cache to
//! survive, a connection is *not* reset when it goes back to the pool (the
//! crate's default would, with `COM_RESET_CONNECTION`: one more round trip
//! per call, and every statement prepared again at its next use, which
//! cost a fifth of the server's CPU per message in cluster mode:
//! docs/benchmarks.md section 26). Nothing here leaves session state
//! behind: no session variables, temporary tables or user locks, and a
//! transaction not committed is rolled back when it is dropped. The URL
//! may still ask for the reset (`?reset_connection=true`) or another cache
//! size (`?stmt_cache_size=N`).
//!
//! The tables are created by running `chat.sql` from the top of the
//! repository, compiled in with `include_str!`, so the file an operator
//! reads is the schema the server uses.
//!
//! The message log's [`append`](Store::append) is one transaction of a
//! few round trips, whatever the batch size, each statement one of a few
//! prepared ones reused from batch to batch: one `SELECT` of the batch's
//! cids, one multi-row upsert of the conversation counters (in key order,
//! so appends lock rows in the same order and rarely deadlock), one
//! `SELECT` of the new counters, the new one-to-one
//! conversations' cursor rows, the multi-row inserts of the entries, and
//! the commit. A `SELECT` is one per 256 keys, padded to a
//! [`sql::STATEMENT_ROWS`] size with a repeated key
//! ([`sql::padded_chunks`]); inserts and upserts are cut into powers of
//! two ([`sql::fine_chunks`]: at most eight statements for a batch under
//! 256 rows). Every round trip after the
//! counters' upsert is taken with those rows locked, and another node's
//! append into the same conversation waits for the commit. A deadlock,
//! a lock wait timeout or a `(sender, cid)` race with another node rolls
//! back and runs the transaction again.
//!
//! Pool size is set in the URL: `mysql://u:p@host/db?pool_min=2&pool_max=32`
//! (the crate's defaults are 10 and 100).

use std::collections::HashMap;
use std::time::Duration;

use mysql::prelude::{FromRow, FromValue, Queryable};
use mysql::{Params, Pool, Transaction, TxOpts, Value};

use super::append::{first_cursors, new_entries, now_ms, Plan, Range};
use super::schema::{self, OpenOptions};
use super::sql::{self, CHUNK};
use super::{
    Appended, ConvState, Count, Entry, JoinOutcome, NewEntry, Page, Store, StoreError, Stored,
    UserRecord,
};
use crate::model::Conv;
use crate::model::{state_str, GroupInfo, MemberInfo, UserInfo};

/// The MySQL schema: `chat.sql` at the top of the repository.
const SCHEMA: &str = include_str!("../../chat.sql");

/// MySQL's error number for a duplicate key (`ER_DUP_ENTRY`).
const ER_DUP_ENTRY: u16 = 1062;
/// MySQL's error number for adding a column that exists (`ER_DUP_FIELDNAME`).
const ER_DUP_FIELDNAME: u16 = 1060;

/// MySQL's error number for a deadlock (`ER_LOCK_DEADLOCK`): InnoDB rolled
/// the transaction back.
const ER_LOCK_DEADLOCK: u16 = 1213;

/// MySQL's error number for a lock wait timeout (`ER_LOCK_WAIT_TIMEOUT`).
const ER_LOCK_WAIT_TIMEOUT: u16 = 1205;

/// How many times [`Store::append`] runs its transaction again after a
/// deadlock, a lock wait timeout or a `(sender, cid)` race.
const APPEND_RETRIES: u32 = 5;

/// Most rows in one multi-row statement of an append (at most 6,000
/// placeholders, far under MySQL's 65,535): a batch of up to 1,000 entries
/// takes one statement per step.
const MAX_ROWS: usize = 1000;

/// Most message text in one multi-row insert, well under the smallest
/// default `max_allowed_packet` (4 MiB in MySQL 5.7).
const MAX_BATCH_BYTES: usize = 1 << 20;

/// A [`Store`] in a MySQL or MariaDB database.
pub struct MysqlStore {
    pool: Pool,
}

impl MysqlStore {
    /// Connects to `mysql://user:pass@host:port/dbname` and creates the
    /// tables that are missing.
    ///
    /// # Errors
    ///
    /// [`StoreError::BadUrl`] for a malformed URL or one without a database
    /// name; [`StoreError::Mysql`] when the server cannot be reached or
    /// refuses the schema.
    pub fn open(url: &str) -> Result<MysqlStore, StoreError> {
        MysqlStore::open_with(url, OpenOptions::default())
    }

    /// [`MysqlStore::open`] with `options` (whether to migrate: see
    /// [`super::schema`]).
    ///
    /// # Errors
    ///
    /// As [`MysqlStore::open`], and [`StoreError::Schema`] for a database
    /// it must not use as it is.
    pub fn open_with(url: &str, options: OpenOptions) -> Result<MysqlStore, StoreError> {
        // The URL may hold a password: never repeat it in an error.
        let opts = mysql::Opts::from_url(url)
            .map_err(|e| StoreError::BadUrl(format!("invalid MySQL URL: {e}")))?;
        if opts.get_db_name().is_none_or(str::is_empty) {
            return Err(StoreError::BadUrl(
                "the MySQL URL must name a database: mysql://user:pass@host:port/dbname".into(),
            ));
        }
        let pool = Pool::new(pooled(opts, url))?;
        let mut conn = pool.get_conn()?;
        let found = schema::mysql_check(&mut conn, options)?;
        for statement in sql::statements(SCHEMA) {
            conn.query_drop(statement)?;
        }
        migrate_token_gen(&mut conn)?;
        schema::mysql_record(&mut conn, found)?;
        Ok(MysqlStore { pool })
    }

    /// Runs a query and converts its rows, failing (not panicking) on a row
    /// of unexpected types.
    fn rows<T: FromRow>(
        &self,
        query: &str,
        params: impl Into<Params>,
    ) -> Result<Vec<T>, StoreError> {
        let mut conn = self.pool.get_conn()?;
        let rows = conn.exec_opt::<T, _, _>(query, params)?;
        rows.into_iter()
            .map(|r| r.map_err(StoreError::from))
            .collect()
    }

    /// Runs a statement and returns the number of affected rows.
    fn exec(&self, query: &str, params: impl Into<Params>) -> Result<u64, StoreError> {
        let mut conn = self.pool.get_conn()?;
        conn.exec_drop(query, params)?;
        Ok(conn.affected_rows())
    }

    /// Runs a statement once per chunk of `ids`, each bound after `first`,
    /// all in one transaction, and returns the total of affected rows.
    /// One transaction makes the change all or nothing: a crash between
    /// two chunks of an offline delete must not leave half the delivered
    /// rows behind, to be delivered again.
    fn exec_chunked(
        &self,
        query: fn(usize) -> String,
        first: Option<i64>,
        ids: &[i64],
    ) -> Result<u64, StoreError> {
        let mut tx = self.pool.start_transaction(TxOpts::default())?;
        let mut affected = 0;
        for chunk in ids.chunks(CHUNK) {
            let params: Vec<Value> = first.iter().chain(chunk).map(|&v| v.into()).collect();
            tx.exec_drop(query(chunk.len()), params)?;
            affected += tx.affected_rows();
        }
        tx.commit()?;
        Ok(affected)
    }
}

fn is_duplicate(e: &mysql::Error) -> bool {
    matches!(e, mysql::Error::MySqlError(e) if e.code == ER_DUP_ENTRY)
}

/// Whether an append that failed so may simply run again: a deadlock or a
/// lock wait (another append held a row), or a duplicate key, which only
/// `(sender, cid)` can be (another process stored the same cid first: the
/// retry finds it and answers `Duplicate`).
fn is_retryable(e: &mysql::Error) -> bool {
    matches!(e, mysql::Error::MySqlError(e)
        if [ER_LOCK_DEADLOCK, ER_LOCK_WAIT_TIMEOUT, ER_DUP_ENTRY].contains(&e.code))
}

/// An auto-increment id as the `i64` the rest of the program uses. MySQL
/// reports "no id" as 0, which is never a row's id.
fn to_id(id: Option<u64>) -> Result<i64, StoreError> {
    id.filter(|&id| id > 0)
        .and_then(|id| i64::try_from(id).ok())
        .ok_or_else(|| StoreError::Data(format!("insert returned no usable id ({id:?})")))
}

/// Creates `uid`'s cursor row of group `gid`'s conversation, every
/// position at `at`; an existing row stays as it is.
fn insert_cursor(tx: &mut Transaction<'_>, uid: i64, gid: i64, at: i64) -> Result<(), StoreError> {
    tx.exec_drop(
        "INSERT INTO convcursor (userid, conv, delivered_seq, read_seq, joined_seq) \
         VALUES (?, ?, ?, ?, ?) ON DUPLICATE KEY UPDATE userid = userid",
        (uid, gid, at, at, at),
    )?;
    Ok(())
}

type UserRow = (i64, String, String, String, i64);

fn user_record((id, name, password_hash, state, token_gen): UserRow) -> UserRecord {
    UserRecord {
        id,
        name,
        password_hash,
        online: sql::is_online(&state),
        token_gen,
    }
}

/// Gives a `user` table made before resume tokens its `token_gen` column
/// (every account at generation 0); one that has it is left alone. Two
/// nodes starting at once may both try: the loser's duplicate-column error
/// is taken as done.
fn migrate_token_gen(conn: &mut mysql::PooledConn) -> Result<(), StoreError> {
    let found: Option<i64> = conn.query_first(
        "SELECT COUNT(*) FROM information_schema.columns WHERE table_schema = DATABASE() \
         AND table_name = 'user' AND column_name = 'token_gen'",
    )?;
    if found.unwrap_or(0) > 0 {
        return Ok(());
    }
    match conn.query_drop("ALTER TABLE user ADD COLUMN token_gen BIGINT NOT NULL DEFAULT 0") {
        Ok(()) => {
            log::info!("user: token_gen column added (resume tokens)");
            Ok(())
        }
        Err(mysql::Error::MySqlError(e)) if e.code == ER_DUP_FIELDNAME => Ok(()),
        Err(e) => Err(e.into()),
    }
}

impl Store for MysqlStore {
    fn create_user(&self, name: &str, password_hash: &str) -> Result<Option<i64>, StoreError> {
        let mut conn = self.pool.get_conn()?;
        let insert = "INSERT INTO user (name, password) VALUES (?, ?)";
        match conn.exec_drop(insert, (name, password_hash)) {
            Ok(()) => Ok(Some(to_id(Some(conn.last_insert_id()))?)),
            Err(e) if is_duplicate(&e) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    fn user_by_id(&self, uid: i64) -> Result<Option<UserRecord>, StoreError> {
        let row = self.rows(sql::USER_BY_ID, (uid,))?.pop();
        Ok(row.map(user_record))
    }

    fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        let row = self.rows(sql::USER_BY_NAME, (name,))?.pop();
        Ok(row.map(user_record))
    }

    fn set_password(&self, uid: i64, password_hash: &str) -> Result<bool, StoreError> {
        Ok(self.exec(sql::SET_PASSWORD, (password_hash, uid))? > 0)
    }

    fn revoke_tokens(&self, uid: i64) -> Result<bool, StoreError> {
        Ok(self.exec(sql::REVOKE_TOKENS, (uid,))? > 0)
    }

    fn set_online(&self, uid: i64, online: bool) -> Result<bool, StoreError> {
        let state = state_str(online);
        Ok(self.exec(sql::SET_STATE, (state, uid, state))? > 0)
    }

    fn reset_all_online(&self) -> Result<u64, StoreError> {
        self.exec(sql::RESET_ALL_ONLINE, ())
    }

    fn set_offline_many(&self, uids: &[i64]) -> Result<u64, StoreError> {
        self.exec_chunked(sql::set_offline_in, None, uids)
    }

    fn add_friend(&self, a: i64, b: i64) -> Result<bool, StoreError> {
        // A duplicate row is "updated" to its own values: 0 affected rows.
        let insert = "INSERT INTO friend (userid, friendid) VALUES (?, ?), (?, ?) \
                      ON DUPLICATE KEY UPDATE userid = userid";
        Ok(self.exec(insert, (a, b, b, a))? > 0)
    }

    fn delete_friend(&self, a: i64, b: i64) -> Result<bool, StoreError> {
        Ok(self.exec(sql::DELETE_FRIEND, (a, b, b, a))? > 0)
    }

    fn friends(&self, uid: i64) -> Result<Vec<UserInfo>, StoreError> {
        let rows = self.rows(sql::FRIENDS, (uid,))?;
        Ok(rows.into_iter().map(sql::user_info).collect())
    }

    fn create_group(
        &self,
        creator: i64,
        name: &str,
        desc: &str,
    ) -> Result<Option<i64>, StoreError> {
        let mut tx = self.pool.start_transaction(TxOpts::default())?;
        let insert = "INSERT INTO allgroup (groupname, groupdesc) VALUES (?, ?)";
        match tx.exec_drop(insert, (name, desc)) {
            Ok(()) => {}
            Err(e) if is_duplicate(&e) => return Ok(None), // dropping `tx` rolls back
            Err(e) => return Err(e.into()),
        }
        let gid = to_id(tx.last_insert_id())?;
        tx.exec_drop(
            "INSERT INTO groupuser (groupid, userid, grouprole) VALUES (?, ?, 'creator')",
            (gid, creator),
        )?;
        insert_cursor(&mut tx, creator, gid, 0)?;
        tx.commit()?;
        Ok(Some(gid))
    }

    fn join_group(&self, gid: i64, uid: i64) -> Result<JoinOutcome, StoreError> {
        let mut tx = self.pool.start_transaction(TxOpts::default())?;
        // Locking the group row orders this join with a concurrent dismiss
        // (which deletes that row first): no membership outlives its group.
        let group = tx.exec_first_opt::<i64, _, _>(
            "SELECT id FROM allgroup WHERE id = ? FOR UPDATE",
            (gid,),
        )?;
        if group.transpose()?.is_none() {
            return Ok(JoinOutcome::NoSuchGroup);
        }
        tx.exec_drop(
            "INSERT INTO groupuser (groupid, userid, grouprole) VALUES (?, ?, 'normal') \
             ON DUPLICATE KEY UPDATE grouprole = grouprole",
            (gid, uid),
        )?;
        let inserted = tx.affected_rows() > 0;
        if inserted {
            // A new member reads what is posted from now on. (Read without
            // a lock: an append committing meanwhile is after the join.)
            let last = first::<i64>(&mut tx, sql::LAST_SEQ, (gid,))?.unwrap_or(0);
            insert_cursor(&mut tx, uid, gid, last)?;
        }
        tx.commit()?;
        Ok(if inserted {
            JoinOutcome::Joined
        } else {
            JoinOutcome::AlreadyMember
        })
    }

    fn quit_group(&self, gid: i64, uid: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool.start_transaction(TxOpts::default())?;
        tx.exec_drop(sql::QUIT_GROUP, (gid, uid))?;
        let deleted = tx.affected_rows() > 0;
        tx.exec_drop(sql::DELETE_CURSOR, (uid, gid))?;
        tx.commit()?;
        Ok(deleted)
    }

    fn dismiss_group(&self, gid: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool.start_transaction(TxOpts::default())?;
        tx.exec_drop(sql::DELETE_GROUP, (gid,))?;
        let deleted = tx.affected_rows() > 0;
        tx.exec_drop(sql::DELETE_GROUP_MEMBERS, (gid,))?;
        for delete in sql::DELETE_CONVERSATION {
            tx.exec_drop(delete, (gid,))?;
        }
        tx.commit()?;
        Ok(deleted)
    }

    fn group(&self, gid: i64) -> Result<Option<(GroupInfo, Option<i64>)>, StoreError> {
        let row = self.rows::<(i64, String, String, Option<i64>)>(sql::GROUP, (gid,))?;
        Ok(row.into_iter().next().map(|(id, name, desc, creator)| {
            let group = GroupInfo {
                id,
                name,
                desc,
                members: Vec::new(),
            };
            (group, creator)
        }))
    }

    fn group_members(&self, gid: i64) -> Result<Vec<MemberInfo>, StoreError> {
        let rows = self.rows(sql::GROUP_MEMBERS, (gid,))?;
        rows.into_iter().map(sql::member_info).collect()
    }

    fn group_member_ids(&self, gid: i64) -> Result<Vec<i64>, StoreError> {
        self.rows(sql::GROUP_MEMBER_IDS, (gid,))
    }

    fn user_groups(&self, uid: i64) -> Result<Vec<GroupInfo>, StoreError> {
        sql::fold_groups(self.rows(sql::USER_GROUPS, (uid,))?)
    }

    fn push_offline(&self, uid: i64, message: &str) -> Result<(), StoreError> {
        self.exec(sql::PUSH_OFFLINE, (uid, message))?;
        Ok(())
    }

    fn push_offline_many(&self, messages: &[(i64, String)]) -> Result<(), StoreError> {
        let mut tx = self.pool.start_transaction(TxOpts::default())?;
        for batch in sql::batches(messages, MAX_BATCH_BYTES) {
            let rows = vec!["(?, ?)"; batch.len()].join(", ");
            let insert = format!("INSERT INTO offlinemessage (userid, message) VALUES {rows}");
            let mut params: Vec<Value> = Vec::with_capacity(batch.len() * 2);
            for (uid, message) in batch {
                params.push((*uid).into());
                params.push(message.as_str().into());
            }
            tx.exec_drop(insert, params)?;
        }
        tx.commit()?;
        Ok(())
    }

    fn offline_messages(&self, uid: i64) -> Result<Vec<(i64, String)>, StoreError> {
        self.rows(sql::OFFLINE_MESSAGES, (uid,))
    }

    fn delete_offline(&self, uid: i64, ids: &[i64]) -> Result<u64, StoreError> {
        self.exec_chunked(sql::delete_offline_in, Some(uid), ids)
    }

    fn append(&self, entries: &[NewEntry]) -> Result<Vec<Appended>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut attempt = 0;
        loop {
            match self.try_append(entries) {
                Err(StoreError::Mysql(e)) if is_retryable(&e) && attempt < APPEND_RETRIES => {
                    attempt += 1;
                    // 1, 2, 4, 8 ms: the other transaction is usually done.
                    std::thread::sleep(Duration::from_millis(1 << (attempt - 1)));
                }
                result => return result,
            }
        }
    }

    fn apply_log(&self, entries: &[Entry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut attempt = 0;
        loop {
            let result = (|| {
                let mut tx = self.pool.start_transaction(TxOpts::default())?;
                apply_heads(&mut tx, entries)?;
                apply_entries(&mut tx, entries)?;
                tx.commit()?;
                Ok(())
            })();
            match result {
                Err(StoreError::Mysql(e)) if is_retryable(&e) && attempt < APPEND_RETRIES => {
                    attempt += 1;
                    std::thread::sleep(Duration::from_millis(1 << (attempt - 1)));
                }
                result => return result,
            }
        }
    }

    fn log_heads(&self, convs: &[Conv]) -> Result<HashMap<i64, Range>, StoreError> {
        let mut heads = HashMap::with_capacity(convs.len());
        let mut conn = self.pool.get_conn()?;
        for chunk in sql::padded_chunks(convs) {
            let query = format!(
                "SELECT id, last_seq, last_ts FROM conversation WHERE id IN ({})",
                sql::placeholders(chunk.len())
            );
            let params: Vec<Value> = chunk.iter().map(|c| c.key().into()).collect();
            for row in conn.exec_opt::<(i64, i64, i64), _, _>(query, params)? {
                let (key, last_seq, last_ts) = row?;
                heads.insert(key, (last_seq, last_ts));
            }
        }
        Ok(heads)
    }

    fn find_cids(&self, entries: &[NewEntry]) -> Result<super::CidPlaces, StoreError> {
        let mut tx = self.pool.start_transaction(TxOpts::default())?;
        let known = stored_cids(&mut tx, entries)?;
        tx.commit()?;
        Ok(known)
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
        let rows: Vec<sql::EntryRow> = match page {
            Page::After(after) => self.rows(sql::PAGE_AFTER, (key, after.max(floor), n))?,
            Page::Before(before) => self.rows(sql::PAGE_BEFORE, (key, before, floor, n))?,
        };
        let rows = rows.into_iter().map(sql::entry).collect::<Result<_, _>>()?;
        Ok(sql::page(rows, limit, matches!(page, Page::Before(_))))
    }

    fn conv_state(&self, uid: i64, conv: Conv) -> Result<Option<ConvState>, StoreError> {
        let row = self.rows(&sql::conv_state_of(), (uid, conv.key()))?.pop();
        row.map(sql::conv_state).transpose()
    }

    fn conversations(&self, uid: i64) -> Result<Vec<ConvState>, StoreError> {
        let rows = self.rows(&sql::conv_states(), (uid,))?;
        rows.into_iter().map(sql::conv_state).collect()
    }

    fn pending(&self, uid: i64, limit: usize) -> Result<Vec<Entry>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let n = i64::try_from(limit).unwrap_or(i64::MAX);
        // One snapshot (REPEATABLE READ) for both steps.
        let mut tx = self.pool.start_transaction(TxOpts::default())?;
        let convs: Vec<(i64, i64)> = tx
            .exec_opt(sql::PENDING_CONVS, (uid,))?
            .into_iter()
            .collect::<Result<_, _>>()?;
        let mut all = Vec::new();
        for chunk in convs.chunks(CHUNK / 4) {
            let mut params: Vec<Value> = Vec::with_capacity(chunk.len() * 4);
            for &(key, from) in chunk {
                params.extend([key.into(), from.into(), uid.into(), n.into()]);
            }
            for row in tx.exec_opt::<sql::EntryRow, _, _>(sql::pending_from(chunk.len()), params)? {
                all.push(sql::entry(row?)?);
            }
        }
        tx.commit()?;
        Ok(sql::oldest_first(all, limit))
    }

    fn set_delivered(&self, uid: i64, positions: &[(Conv, i64)]) -> Result<(), StoreError> {
        self.set_delivered_many(&[(uid, positions.to_vec())])
    }

    fn set_delivered_many(&self, moves: &[(i64, Vec<(Conv, i64)>)]) -> Result<(), StoreError> {
        if moves.iter().all(|(_, p)| p.is_empty()) {
            return Ok(());
        }
        let mut tx = self.pool.start_transaction(TxOpts::default())?;
        for (uid, positions) in moves {
            for &(conv, seq) in positions {
                tx.exec_drop(sql::SET_DELIVERED, (seq, *uid, conv.key(), seq))?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn set_read(&self, uid: i64, conv: Conv, seq: i64) -> Result<Option<i64>, StoreError> {
        let key = conv.key();
        let mut tx = self.pool.start_transaction(TxOpts::default())?;
        // Locks the cursor row (not the conversation's: appends go on).
        let old = first::<i64>(
            &mut tx,
            &format!("{} FOR UPDATE", sql::READ_SEQ),
            (uid, key),
        )?;
        let Some(old) = old else {
            return Ok(None);
        };
        // `last_seq` only grows, so a value read without a lock is a safe bound.
        let last = first::<i64>(&mut tx, sql::LAST_SEQ, (key,))?.unwrap_or(0);
        let new = sql::new_read_seq(old, seq, last);
        if new != old {
            tx.exec_drop(sql::SET_READ, (new, uid, key))?;
        }
        tx.commit()?;
        Ok(Some(new))
    }

    fn prune_log(&self, cutoff_ms: i64, limit: usize) -> Result<u64, StoreError> {
        let n = u64::try_from(limit).unwrap_or(u64::MAX);
        // Walks the ts key from its oldest end.
        self.exec(
            "DELETE FROM chatlog WHERE ts < ? ORDER BY ts, conv, seq LIMIT ?",
            (cutoff_ms, n),
        )
    }

    fn count(&self, what: Count) -> Result<u64, StoreError> {
        let (query, key) = sql::count_query(what);
        let rows: Vec<i64> = self.rows(query, (key,))?;
        Ok(rows.first().map_or(0, |&n| u64::try_from(n).unwrap_or(0)))
    }
}

impl MysqlStore {
    /// One attempt of [`Store::append`]: the transaction of the module
    /// [`append`](super::append)'s four steps, in a constant number of
    /// round trips (one statement per step for up to [`MAX_ROWS`] rows).
    fn try_append(&self, entries: &[NewEntry]) -> Result<Vec<Appended>, StoreError> {
        let mut tx = self.pool.start_transaction(TxOpts::default())?;
        let known = stored_cids(&mut tx, entries)?;
        let plan = Plan::new(entries, |sender, cid| {
            known.get(&sender).and_then(|m| m.get(cid)).copied()
        });
        if plan.nothing_new() {
            return plan.finish(&HashMap::new()); // dropping `tx` rolls back: nothing to undo
        }
        bump_counters(&mut tx, plan.convs())?;
        let ranges = read_counters(&mut tx, plan.convs())?;
        create_first_cursors(&mut tx, plan.convs(), &ranges)?;
        let out = plan.finish(&ranges)?;
        insert_entries(&mut tx, entries, &out)?;
        tx.commit()?;
        Ok(out)
    }
}

/// Prepared statements cached per connection: the log's steps in their
/// [`sql::STATEMENT_ROWS`] sizes and every other statement fit. (The
/// server's total is bounded by MySQL's `max_prepared_stmt_count`, 16,382
/// by default: this times the pool's connections times the nodes.)
pub const STMT_CACHE: usize = 64;

/// `opts` with connections kept as they are between calls (no reset, so
/// their prepared statements stay) and a [`STMT_CACHE`]-sized statement
/// cache, unless `url` sets either itself.
fn pooled(opts: mysql::Opts, url: &str) -> mysql::Opts {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    let set = |key: &str| query.split('&').any(|p| p.split('=').next() == Some(key));
    let mut b = mysql::OptsBuilder::from_opts(opts.clone());
    if !set("reset_connection") {
        b = b.pool_opts(opts.get_pool_opts().clone().with_reset_connection(false));
    }
    if !set("stmt_cache_size") {
        b = b.stmt_cache_size(STMT_CACHE);
    }
    b.into()
}

/// Where the entries' `(sender, cid)` pairs already are: sender → cid →
/// place, in one query per [`MAX_ROWS`] pairs. (An `OR` of `(sender = ?
/// AND cid = ?)` terms: a range per pair on the unique key.)
fn stored_cids(
    tx: &mut Transaction<'_>,
    entries: &[NewEntry],
) -> Result<HashMap<i64, HashMap<String, Stored>>, StoreError> {
    let pairs: Vec<(i64, &str)> = entries
        .iter()
        .filter_map(|e| Some((e.sender, e.cid.as_deref()?)))
        .collect();
    let mut known: HashMap<i64, HashMap<String, Stored>> = HashMap::new();
    for chunk in sql::padded_chunks(&pairs) {
        let terms = vec!["(sender = ? AND cid = ?)"; chunk.len()].join(" OR ");
        let query = format!("SELECT sender, cid, conv, seq, ts FROM chatlog WHERE {terms}");
        let mut params: Vec<Value> = Vec::with_capacity(chunk.len() * 2);
        for &(sender, cid) in &chunk {
            params.push(sender.into());
            params.push(cid.into());
        }
        let rows = tx.exec_opt::<(i64, String, i64, i64, i64), _, _>(query, params)?;
        for row in rows {
            let (sender, cid, key, seq, ts) = row?;
            let at = sql::stored((key, seq, ts))?;
            known.entry(sender).or_default().insert(cid, at);
        }
    }
    Ok(known)
}

/// Raises each conversation's counter by its count, creating missing rows,
/// in key order (the lock order of every append). `last_ts` becomes the
/// later of its old value and now.
fn bump_counters(tx: &mut Transaction<'_>, convs: &[(Conv, i64)]) -> Result<(), StoreError> {
    let now = now_ms();
    for chunk in sql::fine_chunks(convs) {
        let rows = vec!["(?, ?, ?)"; chunk.len()].join(", ");
        let query = format!(
            "INSERT INTO conversation (id, last_seq, last_ts) VALUES {rows} \
             ON DUPLICATE KEY UPDATE last_seq = last_seq + VALUES(last_seq), \
             last_ts = GREATEST(last_ts, VALUES(last_ts))"
        );
        let mut params: Vec<Value> = Vec::with_capacity(chunk.len() * 3);
        for (conv, count) in chunk {
            params.extend([conv.key().into(), count.into(), now.into()]);
        }
        tx.exec_drop(query, params)?;
    }
    Ok(())
}

/// The counters of `convs` after [`bump_counters`], by key. The rows are
/// ours (locked by the upsert) until the commit, so these are the final
/// values, and a plain read sees them: a transaction's reads see its own
/// changes. Not `FOR UPDATE`: a locking read of an `IN` list long against
/// the table may be run as a range scan that locks every row and gap it
/// passes, other writers' conversations too, and two log writers then
/// deadlock (measured: docs/benchmarks.md section 26).
fn read_counters(
    tx: &mut Transaction<'_>,
    convs: &[(Conv, i64)],
) -> Result<HashMap<i64, Range>, StoreError> {
    let mut ranges = HashMap::with_capacity(convs.len());
    for chunk in sql::padded_chunks(convs) {
        let query = format!(
            "SELECT id, last_seq, last_ts FROM conversation WHERE id IN ({})",
            sql::placeholders(chunk.len())
        );
        let params: Vec<Value> = chunk.iter().map(|(c, _)| c.key().into()).collect();
        for row in tx.exec_opt::<(i64, i64, i64), _, _>(query, params)? {
            let (key, last_seq, last_ts) = row?;
            ranges.insert(key, (last_seq, last_ts));
        }
    }
    Ok(ranges)
}

/// The cursor rows of the one-to-one conversations whose first messages
/// these are (their range starts at 1).
fn create_first_cursors(
    tx: &mut Transaction<'_>,
    convs: &[(Conv, i64)],
    ranges: &HashMap<i64, Range>,
) -> Result<(), StoreError> {
    let fresh: Vec<(i64, i64)> = convs
        .iter()
        .filter(|(c, count)| ranges.get(&c.key()).is_some_and(|r| r.0 == *count))
        .flat_map(|&(c, _)| first_cursors(c))
        .collect();
    insert_cursors(tx, &fresh)
}

/// Inserts `(userid, conv)` cursor rows that do not exist yet (an
/// existing one keeps its positions).
fn insert_cursors(tx: &mut Transaction<'_>, fresh: &[(i64, i64)]) -> Result<(), StoreError> {
    for chunk in sql::fine_chunks(fresh) {
        let rows = vec!["(?, ?)"; chunk.len()].join(", ");
        let query = format!(
            "INSERT INTO convcursor (userid, conv) VALUES {rows} \
             ON DUPLICATE KEY UPDATE userid = userid"
        );
        let params: Vec<Value> = chunk
            .iter()
            .flat_map(|&(uid, key)| [uid.into(), key.into()])
            .collect();
        tx.exec_drop(query, params)?;
    }
    Ok(())
}

/// Inserts the entries that `out` says are new, at their places: one
/// multi-row insert per [`MAX_ROWS`] rows or [`MAX_BATCH_BYTES`] of text.
fn insert_entries(
    tx: &mut Transaction<'_>,
    entries: &[NewEntry],
    out: &[Appended],
) -> Result<(), StoreError> {
    let new = new_entries(entries, out);
    let batches = sql::batches_by(&new, MAX_ROWS, MAX_BATCH_BYTES, |(e, _)| e.body.len());
    for batch in batches.iter().flat_map(|b| sql::fine_chunks(b)) {
        let rows = vec!["(?, ?, ?, ?, ?, ?)"; batch.len()].join(", ");
        let query = format!("INSERT INTO chatlog (conv, seq, sender, ts, cid, body) VALUES {rows}");
        let mut params: Vec<Value> = Vec::with_capacity(batch.len() * 6);
        for (e, at) in batch {
            params.extend([
                at.conv.key().into(),
                at.seq.into(),
                e.sender.into(),
                at.ts.into(),
                e.cid.as_deref().into(),
                e.body.as_str().into(),
            ]);
        }
        tx.exec_drop(query, params)?;
    }
    Ok(())
}

/// [`Store::apply_log`]'s counters: each conversation's `last_seq` and
/// `last_ts` raised to its entries' largest (rows in key order, the lock
/// order of every append), and the cursor rows of the one-to-one
/// conversations that start here (an entry with seq 1).
fn apply_heads(tx: &mut Transaction<'_>, entries: &[Entry]) -> Result<(), StoreError> {
    let mut heads: std::collections::BTreeMap<i64, (Conv, i64, i64, bool)> = Default::default();
    for e in entries {
        let h = heads.entry(e.conv.key()).or_insert((e.conv, 0, 0, false));
        h.1 = h.1.max(e.seq);
        h.2 = h.2.max(e.ts);
        h.3 |= e.seq == 1;
    }
    let heads: Vec<(i64, (Conv, i64, i64, bool))> = heads.into_iter().collect();
    for chunk in sql::fine_chunks(&heads) {
        let rows = vec!["(?, ?, ?)"; chunk.len()].join(", ");
        let query = format!(
            "INSERT INTO conversation (id, last_seq, last_ts) VALUES {rows} \
             ON DUPLICATE KEY UPDATE last_seq = GREATEST(last_seq, VALUES(last_seq)), \
             last_ts = GREATEST(last_ts, VALUES(last_ts))"
        );
        let params: Vec<Value> = chunk
            .iter()
            .flat_map(|&(key, (_, seq, ts, _))| [key.into(), seq.into(), ts.into()])
            .collect();
        tx.exec_drop(query, params)?;
    }
    let fresh: Vec<(i64, i64)> = heads
        .iter()
        .filter(|(_, h)| h.3)
        .flat_map(|(_, h)| first_cursors(h.0))
        .collect();
    insert_cursors(tx, &fresh)
}

/// [`Store::apply_log`]'s rows: multi-row `INSERT IGNORE`s, so that an
/// entry stored already (a replay) is skipped.
fn apply_entries(tx: &mut Transaction<'_>, entries: &[Entry]) -> Result<(), StoreError> {
    let batches = sql::batches_by(entries, MAX_ROWS, MAX_BATCH_BYTES, |e| e.body.len());
    for batch in batches.iter().flat_map(|b| sql::fine_chunks(b)) {
        let rows = vec!["(?, ?, ?, ?, ?, ?)"; batch.len()].join(", ");
        let query =
            format!("INSERT IGNORE INTO chatlog (conv, seq, sender, ts, cid, body) VALUES {rows}");
        let mut params: Vec<Value> = Vec::with_capacity(batch.len() * 6);
        for e in batch {
            params.extend([
                e.conv.key().into(),
                e.seq.into(),
                e.sender.into(),
                e.ts.into(),
                e.cid.as_deref().into(),
                e.body.as_str().into(),
            ]);
        }
        tx.exec_drop(query, params)?;
    }
    Ok(())
}

/// The first column of the first row of a query, if any.
fn first<T: FromValue>(
    tx: &mut Transaction<'_>,
    query: &str,
    params: impl Into<Params>,
) -> Result<Option<T>, StoreError> {
    match tx.exec_first_opt::<T, _, _>(query, params)? {
        Some(row) => Ok(Some(row?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(url: &str) -> mysql::Opts {
        pooled(mysql::Opts::from_url(url).unwrap(), url)
    }

    #[test]
    fn connections_keep_their_statements_unless_the_url_says_otherwise() {
        let o = opts("mysql://u@h:3306/chat");
        assert!(!o.get_pool_opts().reset_connection());
        assert_eq!(o.get_stmt_cache_size(), STMT_CACHE);
        let o = opts("mysql://u@h:3306/chat?reset_connection=true&stmt_cache_size=8");
        assert!(o.get_pool_opts().reset_connection());
        assert_eq!(o.get_stmt_cache_size(), 8);
        // Other parameters stay as the URL set them.
        let o = opts("mysql://u@h:3306/chat?pool_min=2&pool_max=7");
        assert_eq!(o.get_pool_opts().constraints().max(), 7);
        assert!(!o.get_pool_opts().reset_connection());
    }
}
