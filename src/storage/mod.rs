//! Storage: accounts, friendships, groups, and the message log with its
//! per-user cursors (plus the legacy offline messages).
//!
//! The service layer sees one trait, [`Store`], and [`open`] picks the
//! implementation from a URL:
//!
//! | URL | store |
//! |---|---|
//! | `sqlite:data/chat.db`, `sqlite:///abs/chat.db`, or a plain path | [`SqliteStore`], the embedded default; the folder is created |
//! | `sqlite::memory:` | a private in-memory [`SqliteStore`] (tests) |
//! | `mysql://user:pass@host:3306/dbname` | [`MysqlStore`], a connection pool |
//!
//! Both create their tables when missing, with the original's table and
//! column names (`user`, `friend`, `allgroup`, `groupuser`, `offlinemessage`)
//! plus the log's (`conversation`, `chatlog`, `convcursor`, see [`log`]),
//! minus the original's defects: passwords hold argon2 hashes, friendships and
//! memberships have primary keys so they are unique, offline messages have
//! an id that orders them and a text column that holds any UTF-8 message.
//! `chat.sql` at the top of the repository is the MySQL schema; `MysqlStore`
//! runs that very file.
//!
//! # Threads
//!
//! Every method blocks until the database answers, so the server calls them
//! from its worker pool, never from an I/O thread. A store is `Send + Sync`
//! and is shared as an `Arc<dyn Store>`.
//!
//! # Safety of the SQL
//!
//! Every value is passed as a bound parameter; no SQL text is built from
//! client data. (Placeholder lists such as `(?, ?), (?, ?)` are built from
//! counts only.)

mod append;
pub mod backup;
mod checkpoint;
mod error;
pub mod journal;
pub mod legacy;
pub mod log;
mod mysql_store;
pub mod schema;
mod sql;
mod sqlite_store;

#[cfg(test)]
mod tests;

use std::sync::Arc;

pub use self::error::StoreError;
pub use self::journal::{JournalOptions, JournaledStore};
pub use self::log::{delivered, Appended, Entry, NewEntry, Page, Stored};
pub use self::mysql_store::MysqlStore;
pub use self::schema::OpenOptions;
pub use self::sqlite_store::SqliteStore;
pub use crate::model::ConvState;
use crate::model::{Conv, GroupInfo, MemberInfo, UserInfo};

/// An account as stored, including what only the service may see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The account id (`uid`), assigned at registration.
    pub id: i64,
    /// The unique account name.
    pub name: String,
    /// The argon2 hash in PHC string form (`$argon2id$v=19$…`), or an
    /// imported plain-text password ([`legacy`]) until its first login.
    pub password_hash: String,
    /// Whether the `state` column says `online`.
    pub online: bool,
    /// The `token_gen` column: resume tokens issued at another generation
    /// are revoked. Moved on by [`Store::set_password`] and
    /// [`Store::revoke_tokens`].
    pub token_gen: i64,
}

/// The outcome of [`Store::join_group`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinOutcome {
    /// The user is now a member, with role `normal`.
    Joined,
    /// The user was a member already; nothing changed.
    AlreadyMember,
    /// There is no group with that id.
    NoSuchGroup,
}

/// A stored amount that a quota bounds, for [`Store::count`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    /// The friends of a user.
    Friends(i64),
    /// The groups a user is a member of (the ones they created included).
    GroupsJoined(i64),
    /// The groups a user created that still exist.
    GroupsCreated(i64),
    /// The members of a group.
    GroupSize(i64),
    /// The one-to-one messages a user has not been handed: over all their
    /// one-to-one conversations, `last_seq - max(delivered_seq,
    /// joined_seq)` (group conversations are not counted).
    PendingDirect(i64),
}

/// The persistent state of the chat service.
///
/// Ids are the database's: users and groups get them from an auto-increment
/// column, starting at 1. Methods that change nothing when the change would
/// be a duplicate say so in their result (`None`, `false`) rather than fail;
/// [`StoreError`] is reserved for the database failing.
pub trait Store: Send + Sync {
    /// Creates an account and returns its new id, or `None` when the name is
    /// taken. Names are compared exactly (case and all).
    fn create_user(&self, name: &str, password_hash: &str) -> Result<Option<i64>, StoreError>;

    /// The account with this id.
    fn user_by_id(&self, uid: i64) -> Result<Option<UserRecord>, StoreError>;

    /// The account with this name.
    fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>, StoreError>;

    /// Replaces the account's password hash and moves its token generation
    /// on (every resume token it had is revoked). `false`: no such account.
    fn set_password(&self, uid: i64, password_hash: &str) -> Result<bool, StoreError>;

    /// Moves the account's token generation on. `false`: no such account.
    fn revoke_tokens(&self, uid: i64) -> Result<bool, StoreError>;

    /// Sets the `state` of an account. Returns whether it changed: `false`
    /// when it already had that state or there is no such account. Setting
    /// `online` is therefore an atomic test-and-set: of two logins racing
    /// (on this node or another), only one sees `true`.
    fn set_online(&self, uid: i64, online: bool) -> Result<bool, StoreError>;

    /// Sets every account offline and returns how many were online. Run at
    /// start-up: after a crash, nobody is logged in.
    fn reset_all_online(&self) -> Result<u64, StoreError>;

    /// Sets these accounts offline (at shutdown, this node's users) and
    /// returns how many were online.
    fn set_offline_many(&self, uids: &[i64]) -> Result<u64, StoreError>;

    /// Makes `a` and `b` friends, in both directions. Returns `false` when
    /// they already were. The caller checks that both accounts exist and
    /// that `a != b`.
    fn add_friend(&self, a: i64, b: i64) -> Result<bool, StoreError>;

    /// Ends the friendship of `a` and `b`, both directions. Returns `false`
    /// when they were not friends.
    fn delete_friend(&self, a: i64, b: i64) -> Result<bool, StoreError>;

    /// The friends of `uid`, ordered by id.
    fn friends(&self, uid: i64) -> Result<Vec<UserInfo>, StoreError>;

    /// Creates a group with `creator` as its first member (role `creator`)
    /// and the creator's cursor row of the group's conversation, in one
    /// transaction. Returns the new group id, or `None` when the name
    /// is taken.
    fn create_group(&self, creator: i64, name: &str, desc: &str)
        -> Result<Option<i64>, StoreError>;

    /// Adds `uid` to group `gid` with role `normal`, and their cursor row
    /// with every position at the group's current `last_seq` (a new member
    /// reads what is posted from now on), in one transaction.
    fn join_group(&self, gid: i64, uid: i64) -> Result<JoinOutcome, StoreError>;

    /// Removes `uid` from group `gid`. Returns `false` when it was not a
    /// member. Their cursor row goes with the membership. (Whether a
    /// creator may leave is the service's rule.)
    fn quit_group(&self, gid: i64, uid: i64) -> Result<bool, StoreError>;

    /// Deletes group `gid`, all its memberships, and its conversation (log
    /// entries, counter, cursors), in one transaction.
    /// Returns `false` when there was no such group.
    fn dismiss_group(&self, gid: i64) -> Result<bool, StoreError>;

    /// The group (with empty `members`) and its creator's id (`None` only
    /// for data that has lost its creator row).
    fn group(&self, gid: i64) -> Result<Option<(GroupInfo, Option<i64>)>, StoreError>;

    /// The members of `gid` with their names, states and roles, ordered by id.
    fn group_members(&self, gid: i64) -> Result<Vec<MemberInfo>, StoreError>;

    /// The ids of the members of `gid`, ascending: what group fan-out needs.
    fn group_member_ids(&self, gid: i64) -> Result<Vec<i64>, StoreError>;

    /// The groups `uid` belongs to, ordered by id, each with its members.
    fn user_groups(&self, uid: i64) -> Result<Vec<GroupInfo>, StoreError>;

    /// Stores a message (the JSON text to deliver) for offline user `uid`.
    fn push_offline(&self, uid: i64, message: &str) -> Result<(), StoreError>;

    /// Stores many `(uid, message)` pairs in one transaction, in the order
    /// given (so [`offline_messages`](Store::offline_messages) returns one
    /// user's in that order). The service uses it for the messages buffered
    /// during a login that did not complete; a group post stores each
    /// offline member's copy with [`push_offline`](Store::push_offline),
    /// on that member's worker.
    fn push_offline_many(&self, messages: &[(i64, String)]) -> Result<(), StoreError>;

    /// The stored messages of `uid` as `(id, message)`, oldest first.
    fn offline_messages(&self, uid: i64) -> Result<Vec<(i64, String)>, StoreError>;

    /// Deletes the messages of `uid` with these ids (those it has been
    /// handed), and returns how many were deleted.
    ///
    /// All or nothing (one transaction, however many ids), and safe to
    /// repeat: ids already deleted are skipped, so a delete that failed, or
    /// whose outcome is unknown, can simply be run again (the service does,
    /// at the user's next login).
    ///
    /// This takes ids rather than "everything up to id N": with MySQL two
    /// concurrent inserts can commit out of id order, so a message with a
    /// smaller id than the last one read may appear after the read, and
    /// must survive until it is delivered.
    fn delete_offline(&self, uid: i64, ids: &[i64]) -> Result<u64, StoreError>;

    // ----- The message log (see the [`log`] module for its tables) -----

    /// Appends `entries` to the log in **one transaction**, in the order
    /// given, and returns one [`Appended`] per entry, in the same order.
    ///
    /// Each new entry gets the next number of its conversation: numbers
    /// are gapless and unique also when several processes append to one
    /// conversation at once (the conversation's row is locked from its
    /// increment to the commit). All entries of one conversation in one
    /// call get the same `ts`: the current time, or the conversation's
    /// previous `ts` if that is later. An entry whose `(sender, cid)` is
    /// stored already (or appears earlier in `entries`) is not stored
    /// again: [`Appended::Duplicate`] says where the first one is. The
    /// first append to a one-to-one conversation creates both
    /// participants' cursor rows (all positions 0).
    ///
    /// All or nothing: on an error nothing was stored, and the call may
    /// simply be repeated. (MySQL deadlocks, lock wait timeouts and
    /// `(sender, cid)` races with another process are retried inside, a
    /// few times.) One exception: when the connection to MySQL breaks
    /// during the commit, the outcome is unknown; a repeat then finds the
    /// entries that have a cid (as duplicates) but stores those without
    /// one a second time.
    fn append(&self, entries: &[NewEntry]) -> Result<Vec<Appended>, StoreError>;

    /// One page of `conv`'s log, **ascending** by seq, with at most `limit`
    /// entries, and whether more exist beyond it in that direction
    /// ([`Page::After`]: newer; [`Page::Before`]: older). Only entries with
    /// `seq > floor` are read (a group member's `joined_seq`; 0 for all).
    fn log_page(
        &self,
        conv: Conv,
        page: Page,
        floor: i64,
        limit: usize,
    ) -> Result<(Vec<Entry>, bool), StoreError>;

    /// `uid`'s cursor row of `conv` with the conversation's `last_seq`;
    /// `None` when `uid` is no participant (no row).
    fn conv_state(&self, uid: i64, conv: Conv) -> Result<Option<ConvState>, StoreError>;

    /// Every conversation `uid` has a cursor row in, ordered by key.
    fn conversations(&self, uid: i64) -> Result<Vec<ConvState>, StoreError>;

    /// What `uid` has not been handed yet: the entries of their
    /// conversations with `seq > max(delivered_seq, joined_seq)` that
    /// others sent, ordered by `(ts, conv, seq)` (oldest first; each
    /// conversation in seq order), at most `limit`.
    fn pending(&self, uid: i64, limit: usize) -> Result<Vec<Entry>, StoreError>;

    /// Moves `uid`'s `delivered_seq` of each listed conversation forward
    /// to the seq given (never back), in one transaction. Conversations
    /// without a cursor row for `uid` are skipped.
    fn set_delivered(&self, uid: i64, positions: &[(Conv, i64)]) -> Result<(), StoreError>;

    /// [`set_delivered`](Store::set_delivered) for several users at once:
    /// the journal's applier moves every cursor a batch queued, and on the
    /// stores one transaction (one commit) for all is far cheaper than one
    /// per user. This default makes one call per user.
    fn set_delivered_many(&self, moves: &[(i64, Vec<(Conv, i64)>)]) -> Result<(), StoreError> {
        for (uid, positions) in moves {
            self.set_delivered(*uid, positions)?;
        }
        Ok(())
    }

    /// Moves `uid`'s `read_seq` of `conv` forward to `seq`, clamped to the
    /// conversation's `last_seq`, and returns the new read position;
    /// `None` when `uid` is no participant.
    fn set_read(&self, uid: i64, conv: Conv, seq: i64) -> Result<Option<i64>, StoreError>;

    /// Deletes up to `limit` log entries with `ts < cutoff_ms`, oldest
    /// first (by `(ts, conv, seq)`, so each conversation only ever loses
    /// the start of its log), and returns how many went. Counters
    /// (`last_seq`) and cursors stay as they are. Run it again until it
    /// returns less than `limit`.
    fn prune_log(&self, cutoff_ms: i64, limit: usize) -> Result<u64, StoreError>;

    /// How many of `what` are stored now (one indexed count; the quotas'
    /// check). 0 for an unknown user or group.
    fn count(&self, what: Count) -> Result<u64, StoreError>;

    // ----- What the journal needs (see [`journal`]) -----
    //
    // A store that cannot do these cannot be journaled: the defaults
    // refuse, and `JournaledStore::open` fails with their error.

    /// Stores entries that already have their places (the journal numbered
    /// them), in one transaction, **idempotently**: an entry whose
    /// `(conv, seq)` is stored already is skipped; each conversation's
    /// `last_seq` and `last_ts` become the larger of theirs and the
    /// entries'; a one-to-one conversation's entry with seq 1 creates both
    /// participants' cursor rows (when missing). So replaying a journal
    /// that was partly applied changes nothing that is there.
    fn apply_log(&self, entries: &[Entry]) -> Result<(), StoreError> {
        let _ = entries;
        Err(StoreError::Journal("this store cannot be journaled".into()))
    }

    /// `(last_seq, last_ts)` of each of `convs` that has a counter row,
    /// by [`Conv::key`]; missing conversations are absent (they are at 0).
    fn log_heads(
        &self,
        convs: &[Conv],
    ) -> Result<std::collections::HashMap<i64, (i64, i64)>, StoreError> {
        let _ = convs;
        Err(StoreError::Journal("this store cannot be journaled".into()))
    }

    /// Where the `(sender, cid)` pairs of `entries` are stored, sender →
    /// cid → place (pairs not stored are absent).
    fn find_cids(&self, entries: &[NewEntry]) -> Result<CidPlaces, StoreError> {
        let _ = entries;
        Err(StoreError::Journal("this store cannot be journaled".into()))
    }

    /// Makes every committed transaction survive an operating system
    /// crash (the journal calls it before it deletes a segment, with
    /// `--log-fsync`). SQLite: syncs its WAL and database file; MySQL:
    /// nothing (InnoDB flushes its redo log at each commit by default).
    fn sync_log(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Waits until every write accepted so far is in the database itself
    /// (a [`JournaledStore`] applies its journal and queued cursor moves;
    /// other stores have nothing to wait for). The server calls it at a
    /// graceful stop, after the service has drained.
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

/// What [`Store::find_cids`] returns: sender → cid → place.
pub type CidPlaces = std::collections::HashMap<i64, std::collections::HashMap<String, Stored>>;

/// Opens the store a URL names (see the module docs), creating its tables
/// when missing.
///
/// # Errors
///
/// [`StoreError::BadUrl`] for a scheme other than `sqlite:` or `mysql://`,
/// or a MySQL URL without a database name; otherwise whatever opening the
/// database or creating its tables fails with.
pub fn open(url: &str) -> Result<Arc<dyn Store>, StoreError> {
    open_with(url, OpenOptions::default())
}

/// [`open`] with `options` (whether to migrate: see [`schema`]).
///
/// # Errors
///
/// As [`open`], and [`StoreError::Schema`] for a database the store must
/// not use as it is.
pub fn open_with(url: &str, options: OpenOptions) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("mysql://") {
        return Ok(Arc::new(MysqlStore::open_with(url, options)?));
    }
    let path = match url.strip_prefix("sqlite:") {
        // `sqlite://relative` and `sqlite:///absolute` name the path after `//`.
        Some(rest) => rest.strip_prefix("//").unwrap_or(rest),
        None if url.contains("://") => {
            return Err(StoreError::BadUrl(format!(
                "{url}: the store URL must start with sqlite: or mysql://"
            )))
        }
        None => url,
    };
    if path.is_empty() {
        return Err(StoreError::BadUrl(format!("{url}: no database path")));
    }
    if path == ":memory:" {
        // `sqlite::memory:` and `sqlite://:memory:`
        return Ok(Arc::new(SqliteStore::open_in_memory()?));
    }
    Ok(Arc::new(SqliteStore::open_with(path, options)?))
}
