//! [`MysqlStore`]: the store for operators who run MySQL or MariaDB.
//!
//! A [`mysql::Pool`] hands each call a connection of its own, so workers
//! query in parallel and InnoDB's row locks keep them apart. Statements are
//! prepared once per connection (the crate caches them) and every value is a
//! bound parameter.
//!
//! The tables are created by running `chat.sql` from the top of the
//! repository, compiled in with `include_str!`, so the file an operator
//! reads is the schema the server uses.
//!
//! Pool size is set in the URL: `mysql://u:p@host/db?pool_min=2&pool_max=32`
//! (the crate's defaults are 10 and 100).

use mysql::prelude::{FromRow, Queryable};
use mysql::{Params, Pool, TxOpts, Value};

use super::sql::{self, CHUNK};
use super::{
    Appended, ConvState, Entry, JoinOutcome, NewEntry, Page, Store, StoreError, UserRecord,
};
use crate::model::Conv;
use crate::model::{state_str, GroupInfo, MemberInfo, UserInfo};

/// The MySQL schema: `chat.sql` at the top of the repository.
const SCHEMA: &str = include_str!("../../chat.sql");

/// MySQL's error number for a duplicate key (`ER_DUP_ENTRY`).
const ER_DUP_ENTRY: u16 = 1062;

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
        // The URL may hold a password: never repeat it in an error.
        let opts = mysql::Opts::from_url(url)
            .map_err(|e| StoreError::BadUrl(format!("invalid MySQL URL: {e}")))?;
        if opts.get_db_name().is_none_or(str::is_empty) {
            return Err(StoreError::BadUrl(
                "the MySQL URL must name a database: mysql://user:pass@host:port/dbname".into(),
            ));
        }
        let pool = Pool::new(opts)?;
        let mut conn = pool.get_conn()?;
        for statement in sql::statements(SCHEMA) {
            conn.query_drop(statement)?;
        }
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

/// An auto-increment id as the `i64` the rest of the program uses. MySQL
/// reports "no id" as 0, which is never a row's id.
fn to_id(id: Option<u64>) -> Result<i64, StoreError> {
    id.filter(|&id| id > 0)
        .and_then(|id| i64::try_from(id).ok())
        .ok_or_else(|| StoreError::Data(format!("insert returned no usable id ({id:?})")))
}

fn user_record((id, name, password_hash, state): (i64, String, String, String)) -> UserRecord {
    UserRecord {
        id,
        name,
        password_hash,
        online: sql::is_online(&state),
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
        tx.commit()?;
        Ok(if inserted {
            JoinOutcome::Joined
        } else {
            JoinOutcome::AlreadyMember
        })
    }

    fn quit_group(&self, gid: i64, uid: i64) -> Result<bool, StoreError> {
        Ok(self.exec(sql::QUIT_GROUP, (gid, uid))? > 0)
    }

    fn dismiss_group(&self, gid: i64) -> Result<bool, StoreError> {
        let mut tx = self.pool.start_transaction(TxOpts::default())?;
        tx.exec_drop(sql::DELETE_GROUP, (gid,))?;
        let deleted = tx.affected_rows() > 0;
        tx.exec_drop(sql::DELETE_GROUP_MEMBERS, (gid,))?;
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
