//! `chat-server migrate-legacy --from mysql://…`: imports the C++
//! original's database into this server's schema.
//!
//! The original's tables (its `chat.sql`) have this server's names but
//! not its meaning: `user.password` is the password itself, `friend` and
//! `groupuser` may hold the same row many times, and `offlinemessage` has
//! no order. The import reads them all from the source database and
//! writes, in one transaction of the target store (`--db`, SQLite or
//! MySQL, a new or empty one):
//!
//! | original | here |
//! |---|---|
//! | `user` (id, name, password) | the same ids and names; the password as a *legacy credential* ([`legacy_credential`]), hashed at the user's first login; every account offline |
//! | `friend` | each friendship once in each direction (the original's client may have written one only); rows naming a missing user or the user itself are skipped |
//! | `allgroup`, `groupuser` | the same group ids, names, descriptions; each membership once, its role kept (`creator` wins over `normal`), plus the member's cursor of the group's (empty) conversation |
//! | `offlinemessage` | the legacy offline table, delivered (and deleted) at the user's next login, in the source's row order; skipped: a group message filed under its own sender (the original's defect: it never reached the other members) and a row that is not a JSON object |
//!
//! Ids are kept because the original's clients address users and groups
//! by number. The target must hold no accounts, groups or messages: a
//! second run is refused, not doubled.
//!
//! # Passwords
//!
//! Hashing every account's password with argon2 at import would take tens
//! of milliseconds each (hours for a large user base), so the import
//! stores `$legacy-plain$PASSWORD` instead: no worse than the source it
//! came from, which the operator deletes afterwards. A login compares it in
//! constant time on the hashing thread and, when it matches, stores the
//! argon2 hash in its place (`service::account`, `rehash_legacy`).
//!
//! # Threads
//!
//! A command-line tool: it runs before (and without) the server, and
//! blocks on both databases.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use mysql::prelude::Queryable;

use super::{OpenOptions, StoreError};
use crate::runtime::password::legacy_credential;

/// What an import wrote, and what it left out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Imported {
    /// Accounts.
    pub users: usize,
    /// Friendships (each counted once, stored in both directions).
    pub friendships: usize,
    /// Groups.
    pub groups: usize,
    /// Group memberships.
    pub members: usize,
    /// Offline messages.
    pub offline: usize,
    /// Rows skipped, each with why.
    pub skipped: BTreeMap<&'static str, usize>,
}

impl std::fmt::Display for Imported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} users, {} friendships, {} groups with {} members, {} offline messages",
            self.users, self.friendships, self.groups, self.members, self.offline
        )?;
        for (why, n) in &self.skipped {
            write!(f, "; skipped {n} {why}")?;
        }
        Ok(())
    }
}

/// The original's rows, read and cleaned up, ready to write.
#[derive(Debug, Default)]
struct Rows {
    /// (id, name, stored password).
    users: Vec<(i64, String, String)>,
    /// (a, b) with a < b: a friendship.
    friends: BTreeSet<(i64, i64)>,
    /// (id, name, description).
    groups: Vec<(i64, String, String)>,
    /// (group, user) → creator?
    members: BTreeMap<(i64, i64), bool>,
    /// (user, message) in the source's order.
    offline: Vec<(i64, String)>,
    skipped: BTreeMap<&'static str, usize>,
}

/// The original's tables; all must be there.
const TABLES: &[&str] = &["user", "friend", "allgroup", "groupuser", "offlinemessage"];

/// Imports the original's MySQL database `from` into the store `to`
/// (created or migrated first, as the server would, with `options`).
///
/// # Errors
/// A source that is not the original's (a table missing, or this server's
/// own database), a target that already holds data, or either database's
/// error; nothing is written to the target then but its empty tables.
pub fn migrate_legacy(from: &str, to: &str, options: OpenOptions) -> Result<Imported, StoreError> {
    let rows = read_source(from)?;
    // Creates the schema and records the version, or refuses the target.
    drop(super::open_with(to, options)?);
    let imported = Imported {
        users: rows.users.len(),
        friendships: rows.friends.len(),
        groups: rows.groups.len(),
        members: rows.members.len(),
        offline: rows.offline.len(),
        skipped: rows.skipped.clone(),
    };
    if to.starts_with("mysql://") {
        write_mysql(to, &rows)?;
    } else {
        write_sqlite(to, &rows)?;
    }
    Ok(imported)
}

fn refuse(why: String) -> StoreError {
    StoreError::Schema(format!("migrate-legacy: {why}"))
}

/// Reads and checks the source; nothing is written to it.
fn read_source(from: &str) -> Result<Rows, StoreError> {
    if !from.starts_with("mysql://") {
        return Err(refuse(format!(
            "--from {from:?}: the original's database is MySQL: mysql://user:pass@host:port/db"
        )));
    }
    let opts = mysql::Opts::from_url(from)
        .map_err(|e| StoreError::BadUrl(format!("invalid --from URL: {e}")))?;
    let mut conn = mysql::Conn::new(opts)?;
    let tables: HashSet<String> = conn
        .query::<String, _>(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE()",
        )?
        .into_iter()
        .collect();
    if tables.contains("schema_version") || tables.contains("chatlog") {
        return Err(refuse(
            "--from is a chat-server database already, not the C++ original's".into(),
        ));
    }
    let missing: Vec<&str> = TABLES
        .iter()
        .copied()
        .filter(|t| !tables.contains(*t))
        .collect();
    if !missing.is_empty() {
        return Err(refuse(format!(
            "--from has no table {}: not the C++ original's database",
            missing.join(", ")
        )));
    }
    let mut rows = Rows::default();
    read_users(&mut conn, &mut rows)?;
    read_friends(&mut conn, &mut rows)?;
    read_groups(&mut conn, &mut rows)?;
    read_offline(&mut conn, &mut rows)?;
    Ok(rows)
}

fn skip(rows: &mut Rows, why: &'static str) {
    *rows.skipped.entry(why).or_insert(0) += 1;
}

fn read_users(conn: &mut mysql::Conn, rows: &mut Rows) -> Result<(), StoreError> {
    let users: Vec<(i64, String, Option<String>)> =
        conn.query("SELECT id, name, password FROM user ORDER BY id")?;
    for (id, name, password) in users {
        let password = password.unwrap_or_default();
        // An account whose password is a hash already keeps it.
        let stored = if password.starts_with("$argon2") {
            password
        } else {
            legacy_credential(&password)
        };
        rows.users.push((id, name, stored));
    }
    Ok(())
}

fn read_friends(conn: &mut mysql::Conn, rows: &mut Rows) -> Result<(), StoreError> {
    let known: HashSet<i64> = rows.users.iter().map(|u| u.0).collect();
    let pairs: Vec<(Option<i64>, Option<i64>)> =
        conn.query("SELECT userid, friendid FROM friend")?;
    for pair in pairs {
        match pair {
            (Some(a), Some(b)) if a != b && known.contains(&a) && known.contains(&b) => {
                rows.friends.insert((a.min(b), a.max(b)));
            }
            _ => skip(rows, "friend rows naming no user or the user itself"),
        }
    }
    Ok(())
}

fn read_groups(conn: &mut mysql::Conn, rows: &mut Rows) -> Result<(), StoreError> {
    let users: HashSet<i64> = rows.users.iter().map(|u| u.0).collect();
    let groups: Vec<(i64, String, Option<String>)> =
        conn.query("SELECT id, groupname, groupdesc FROM allgroup ORDER BY id")?;
    let ids: HashSet<i64> = groups.iter().map(|g| g.0).collect();
    rows.groups = groups
        .into_iter()
        .map(|(id, name, desc)| (id, name, desc.unwrap_or_default()))
        .collect();
    let members: Vec<(Option<i64>, Option<i64>, Option<String>)> =
        conn.query("SELECT groupid, userid, CAST(grouprole AS CHAR) FROM groupuser")?;
    for member in members {
        match member {
            (Some(g), Some(u), role) if ids.contains(&g) && users.contains(&u) => {
                let creator = role.as_deref() == Some("creator");
                *rows.members.entry((g, u)).or_insert(false) |= creator;
            }
            _ => skip(rows, "groupuser rows naming no group or no user"),
        }
    }
    Ok(())
}

fn read_offline(conn: &mut mysql::Conn, rows: &mut Rows) -> Result<(), StoreError> {
    let users: HashSet<i64> = rows.users.iter().map(|u| u.0).collect();
    let messages: Vec<(Option<i64>, Option<String>)> =
        conn.query("SELECT userid, message FROM offlinemessage")?;
    for (uid, message) in messages {
        let (Some(uid), Some(message)) = (uid, message) else {
            skip(rows, "offline messages naming no user");
            continue;
        };
        if !users.contains(&uid) {
            skip(rows, "offline messages naming no user");
            continue;
        }
        let Ok(serde_json::Value::Object(object)) = serde_json::from_str(&message) else {
            skip(rows, "offline messages that are not a JSON object");
            continue;
        };
        let field = |name: &str| object.get(name).and_then(serde_json::Value::as_i64);
        // GROUP_CHAT_MSG (13) filed under its sender `uid`: the original's
        // defect; the sender has it, the members never got it.
        if field("msgId") == Some(13) && field("uid") == Some(uid) {
            skip(rows, "group messages the original filed under their sender");
            continue;
        }
        rows.offline.push((uid, message));
    }
    Ok(())
}

/// The statements of the import, the same text for both stores.
const INSERT_USER: &str =
    "INSERT INTO user (id, name, password, state) VALUES (?, ?, ?, 'offline')";
const INSERT_FRIEND: &str = "INSERT INTO friend (userid, friendid) VALUES (?, ?)";
const INSERT_GROUP: &str = "INSERT INTO allgroup (id, groupname, groupdesc) VALUES (?, ?, ?)";
const INSERT_MEMBER: &str = "INSERT INTO groupuser (groupid, userid, grouprole) VALUES (?, ?, ?)";
const INSERT_CURSOR: &str = "INSERT INTO convcursor (userid, conv) VALUES (?, ?)";
const INSERT_OFFLINE: &str = "INSERT INTO offlinemessage (userid, message) VALUES (?, ?)";
/// What the target may not hold: any row here means it is in use.
const HOLDS: &str = "SELECT (SELECT COUNT(*) FROM user) + (SELECT COUNT(*) FROM allgroup) \
                     + (SELECT COUNT(*) FROM offlinemessage) + (SELECT COUNT(*) FROM chatlog)";

fn not_empty(rows: i64) -> StoreError {
    refuse(format!(
        "the target store (--db) is not empty ({rows} accounts, groups and messages): \
         migrate-legacy imports into a new database only (was it run already?)"
    ))
}

fn role(creator: bool) -> &'static str {
    if creator {
        "creator"
    } else {
        "normal"
    }
}

fn write_sqlite(to: &str, rows: &Rows) -> Result<(), StoreError> {
    let path = to.strip_prefix("sqlite:").unwrap_or(to);
    let path = path.strip_prefix("//").unwrap_or(path);
    if path.starts_with(':') {
        return Err(refuse(
            "an in-memory store keeps nothing: name a file".into(),
        ));
    }
    let mut conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let held: i64 = tx.query_row(HOLDS, [], |r| r.get(0))?;
    if held > 0 {
        return Err(not_empty(held));
    }
    for (id, name, password) in &rows.users {
        tx.execute(INSERT_USER, rusqlite::params![id, name, password])?;
    }
    for (a, b) in &rows.friends {
        tx.execute(INSERT_FRIEND, [a, b])?;
        tx.execute(INSERT_FRIEND, [b, a])?;
    }
    for (id, name, desc) in &rows.groups {
        tx.execute(INSERT_GROUP, rusqlite::params![id, name, desc])?;
    }
    for ((gid, uid), creator) in &rows.members {
        tx.execute(INSERT_MEMBER, rusqlite::params![gid, uid, role(*creator)])?;
        tx.execute(INSERT_CURSOR, [uid, gid])?;
    }
    for (uid, message) in &rows.offline {
        tx.execute(INSERT_OFFLINE, rusqlite::params![uid, message])?;
    }
    tx.commit()?;
    Ok(())
}

fn write_mysql(to: &str, rows: &Rows) -> Result<(), StoreError> {
    let opts = mysql::Opts::from_url(to)
        .map_err(|e| StoreError::BadUrl(format!("invalid MySQL URL: {e}")))?;
    let mut conn = mysql::Conn::new(opts)?;
    let mut tx = conn.start_transaction(mysql::TxOpts::default())?;
    // Two imports at once: the second fails on the first's user ids.
    let held: Option<i64> = tx.query_first(HOLDS)?;
    let held = held.unwrap_or(0);
    if held > 0 {
        return Err(not_empty(held));
    }
    tx.exec_batch(
        INSERT_USER,
        rows.users
            .iter()
            .map(|(id, name, pw)| (*id, name.as_str(), pw.as_str())),
    )?;
    tx.exec_batch(
        INSERT_FRIEND,
        rows.friends.iter().flat_map(|&(a, b)| [(a, b), (b, a)]),
    )?;
    tx.exec_batch(
        INSERT_GROUP,
        rows.groups
            .iter()
            .map(|(id, name, desc)| (*id, name.as_str(), desc.as_str())),
    )?;
    tx.exec_batch(
        INSERT_MEMBER,
        rows.members
            .iter()
            .map(|(&(gid, uid), &creator)| (gid, uid, role(creator))),
    )?;
    tx.exec_batch(
        INSERT_CURSOR,
        rows.members.keys().map(|&(gid, uid)| (uid, gid)),
    )?;
    tx.exec_batch(
        INSERT_OFFLINE,
        rows.offline.iter().map(|(uid, m)| (*uid, m.as_str())),
    )?;
    tx.commit()?;
    Ok(())
}
