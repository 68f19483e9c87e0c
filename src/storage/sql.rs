//! The SQL both stores share, and turning its rows into [model](crate::model)
//! types.
//!
//! SQLite and MySQL agree on plain `SELECT`, `UPDATE` and `DELETE` with `?`
//! placeholders, so those statements live here once. Inserts differ (how
//! each ignores a duplicate key) and stay in each store's own module.

use std::collections::BTreeMap;

use super::StoreError;
use crate::model::{state_str, GroupInfo, MemberInfo, Role, UserInfo};

/// Most values bound in one statement built by [`placeholders`]; well below
/// SQLite's and MySQL's limits, and large enough to make round trips rare.
pub(super) const CHUNK: usize = 500;

pub(super) const USER_BY_ID: &str = "SELECT id, name, password, state FROM user WHERE id = ?";
pub(super) const USER_BY_NAME: &str = "SELECT id, name, password, state FROM user WHERE name = ?";

/// Binds: new state, uid, new state. Matches only when the state changes,
/// so the affected-row count says whether it did (in both databases).
pub(super) const SET_STATE: &str = "UPDATE user SET state = ? WHERE id = ? AND state <> ?";
pub(super) const RESET_ALL_ONLINE: &str =
    "UPDATE user SET state = 'offline' WHERE state = 'online'";

/// Binds: a, b, b, a.
pub(super) const DELETE_FRIEND: &str =
    "DELETE FROM friend WHERE (userid = ? AND friendid = ?) OR (userid = ? AND friendid = ?)";
pub(super) const FRIENDS: &str = "SELECT u.id, u.name, u.state FROM friend f \
     JOIN user u ON u.id = f.friendid WHERE f.userid = ? ORDER BY u.id";

pub(super) const GROUP: &str = "SELECT g.id, g.groupname, g.groupdesc, \
     (SELECT MIN(c.userid) FROM groupuser c WHERE c.groupid = g.id AND c.grouprole = 'creator') \
     FROM allgroup g WHERE g.id = ?";
pub(super) const GROUP_MEMBERS: &str = "SELECT u.id, u.name, u.state, m.grouprole \
     FROM groupuser m JOIN user u ON u.id = m.userid WHERE m.groupid = ? ORDER BY u.id";
pub(super) const GROUP_MEMBER_IDS: &str =
    "SELECT userid FROM groupuser WHERE groupid = ? ORDER BY userid";
/// One row per (group of the user, member of that group); see [`fold_groups`].
pub(super) const USER_GROUPS: &str =
    "SELECT g.id, g.groupname, g.groupdesc, u.id, u.name, u.state, m.grouprole \
     FROM groupuser me \
     JOIN allgroup g ON g.id = me.groupid \
     JOIN groupuser m ON m.groupid = g.id \
     JOIN user u ON u.id = m.userid \
     WHERE me.userid = ? ORDER BY g.id, u.id";
pub(super) const QUIT_GROUP: &str = "DELETE FROM groupuser WHERE groupid = ? AND userid = ?";
pub(super) const DELETE_GROUP: &str = "DELETE FROM allgroup WHERE id = ?";
pub(super) const DELETE_GROUP_MEMBERS: &str = "DELETE FROM groupuser WHERE groupid = ?";

pub(super) const PUSH_OFFLINE: &str = "INSERT INTO offlinemessage (userid, message) VALUES (?, ?)";
pub(super) const OFFLINE_MESSAGES: &str =
    "SELECT id, message FROM offlinemessage WHERE userid = ? ORDER BY id";

/// `"?, ?, ?"`: `n` placeholders for an `IN (…)` list.
pub(super) fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 3);
    for i in 0..n {
        s.push_str(if i == 0 { "?" } else { ", ?" });
    }
    s
}

/// Binds: the ids.
pub(super) fn set_offline_in(n: usize) -> String {
    format!(
        "UPDATE user SET state = 'offline' WHERE state = 'online' AND id IN ({})",
        placeholders(n)
    )
}

/// Binds: uid, then the message ids.
pub(super) fn delete_offline_in(n: usize) -> String {
    format!(
        "DELETE FROM offlinemessage WHERE userid = ? AND id IN ({})",
        placeholders(n)
    )
}

/// Whether a `state` column value means online.
pub(super) fn is_online(state: &str) -> bool {
    state == state_str(true)
}

/// A `grouprole` column value as a [`Role`].
pub(super) fn role(s: &str) -> Result<Role, StoreError> {
    Role::parse(s).ok_or_else(|| StoreError::Data(format!("unknown grouprole {s:?}")))
}

/// One row of [`FRIENDS`].
pub(super) fn user_info((id, name, state): (i64, String, String)) -> UserInfo {
    UserInfo {
        id,
        name,
        online: is_online(&state),
    }
}

/// One row of [`GROUP_MEMBERS`].
pub(super) fn member_info(
    (id, name, state, grouprole): (i64, String, String, String),
) -> Result<MemberInfo, StoreError> {
    Ok(MemberInfo {
        id,
        name,
        online: is_online(&state),
        role: role(&grouprole)?,
    })
}

/// One row of [`USER_GROUPS`]: the group's columns, then the member's.
pub(super) type GroupMemberRow = (i64, String, String, i64, String, String, String);

/// Folds [`USER_GROUPS`] rows into groups with their members, keeping the
/// order of the rows (by group id, then member id).
pub(super) fn fold_groups(rows: Vec<GroupMemberRow>) -> Result<Vec<GroupInfo>, StoreError> {
    let mut groups: BTreeMap<i64, GroupInfo> = BTreeMap::new();
    for (gid, name, desc, uid, uname, state, grouprole) in rows {
        let member = member_info((uid, uname, state, grouprole))?;
        groups
            .entry(gid)
            .or_insert_with(|| GroupInfo {
                id: gid,
                name,
                desc,
                members: Vec::new(),
            })
            .members
            .push(member);
    }
    Ok(groups.into_values().collect())
}

/// `(uid, message)` pairs cut into batches for multi-row inserts: at most
/// [`CHUNK`] rows and about `max_bytes` of text each (a single larger
/// message goes alone), so a statement stays under the server's packet limit.
pub(super) fn batches(messages: &[(i64, String)], max_bytes: usize) -> Vec<&[(i64, String)]> {
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, (_, text)) in messages.iter().enumerate() {
        let full = i - start == CHUNK || (i > start && bytes + text.len() > max_bytes);
        if full {
            out.push(&messages[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += text.len();
    }
    if start < messages.len() {
        out.push(&messages[start..]);
    }
    out
}

/// The statements of a schema script: `;`-terminated, with `--` comments on
/// lines of their own (the convention `chat.sql` follows).
pub(super) fn statements(script: &str) -> Vec<String> {
    let code: String = script
        .lines()
        .filter(|line| !line.trim_start().starts_with("--"))
        .map(|line| format!("{line}\n"))
        .collect();
    code.split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}
