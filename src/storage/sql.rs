//! The SQL both stores share, and turning its rows into [model](crate::model)
//! types.
//!
//! SQLite and MySQL agree on plain `SELECT`, `UPDATE` and `DELETE` with `?`
//! placeholders, so those statements live here once. Inserts differ (how
//! each ignores a duplicate key) and stay in each store's own module.

use std::collections::BTreeMap;

use super::{ConvState, Entry, StoreError, Stored};
use crate::model::{state_str, Conv, GroupInfo, MemberInfo, Role, UserInfo};

/// Most values bound in one statement built by [`placeholders`]; well below
/// SQLite's and MySQL's limits, and large enough to make round trips rare.
pub(super) const CHUNK: usize = 500;

pub(super) const USER_BY_ID: &str =
    "SELECT id, name, password, state, token_gen FROM user WHERE id = ?";
pub(super) const USER_BY_NAME: &str =
    "SELECT id, name, password, state, token_gen FROM user WHERE name = ?";

/// Binds: new hash, uid.
pub(super) const SET_PASSWORD: &str =
    "UPDATE user SET password = ?, token_gen = token_gen + 1 WHERE id = ?";
/// Binds: uid.
pub(super) const REVOKE_TOKENS: &str = "UPDATE user SET token_gen = token_gen + 1 WHERE id = ?";

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

// ----- Quotas -----

/// The statement of a [`Count`](super::Count) and the one value it binds.
/// Every one is a `COUNT` or `SUM` over an index's range; the result is
/// cast to an integer so that MySQL's `SUM` (a decimal) reads as one.
pub(super) fn count_query(what: super::Count) -> (&'static str, i64) {
    use super::Count;
    match what {
        Count::Friends(uid) => ("SELECT COUNT(*) FROM friend WHERE userid = ?", uid),
        Count::GroupsJoined(uid) => ("SELECT COUNT(*) FROM groupuser WHERE userid = ?", uid),
        Count::GroupsCreated(uid) => (
            "SELECT COUNT(*) FROM groupuser WHERE userid = ? AND grouprole = 'creator'",
            uid,
        ),
        Count::GroupSize(gid) => ("SELECT COUNT(*) FROM groupuser WHERE groupid = ?", gid),
        // One-to-one keys are `low << 32 | high`, so at least 2^32; group
        // keys are below.
        Count::PendingDirect(uid) => (
            "SELECT CAST(COALESCE(SUM(v.last_seq - \
             CASE WHEN c.delivered_seq > c.joined_seq THEN c.delivered_seq ELSE c.joined_seq END), \
             0) AS SIGNED) \
             FROM convcursor c JOIN conversation v ON v.id = c.conv \
             WHERE c.userid = ? AND c.conv >= 4294967296 \
             AND v.last_seq > c.delivered_seq AND v.last_seq > c.joined_seq",
            uid,
        ),
    }
}

// ----- The message log -----

/// Binds: sender, cid. Where an entry with this `(sender, cid)` is.
pub(super) const CID_PLACE: &str = "SELECT conv, seq, ts FROM chatlog WHERE sender = ? AND cid = ?";

/// Binds: conv, lower bound (exclusive), limit.
pub(super) const PAGE_AFTER: &str = "SELECT conv, seq, sender, ts, cid, body FROM chatlog \
     WHERE conv = ? AND seq > ? ORDER BY seq LIMIT ?";
/// Binds: conv, upper bound (exclusive), floor (exclusive), limit. Newest first.
pub(super) const PAGE_BEFORE: &str = "SELECT conv, seq, sender, ts, cid, body FROM chatlog \
     WHERE conv = ? AND seq < ? AND seq > ? ORDER BY seq DESC LIMIT ?";

/// The columns of a [`ConvState`] row, see [`conv_state`].
const CONV_STATE_COLUMNS: &str = "SELECT c.conv, COALESCE(v.last_seq, 0), c.read_seq, \
     c.delivered_seq, c.joined_seq FROM convcursor c LEFT JOIN conversation v ON v.id = c.conv";
/// Binds: uid, conv.
pub(super) fn conv_state_of() -> String {
    format!("{CONV_STATE_COLUMNS} WHERE c.userid = ? AND c.conv = ?")
}
/// Binds: uid.
pub(super) fn conv_states() -> String {
    format!("{CONV_STATE_COLUMNS} WHERE c.userid = ? ORDER BY c.conv")
}

/// Binds: uid. The user's conversations with messages after their
/// position (the larger of delivered and joined), and that position.
/// [`pending_from`] then reads each one's range.
pub(super) const PENDING_CONVS: &str = "SELECT c.conv, \
     CASE WHEN c.delivered_seq > c.joined_seq THEN c.delivered_seq ELSE c.joined_seq END \
     FROM convcursor c JOIN conversation v ON v.id = c.conv \
     WHERE c.userid = ? AND v.last_seq > c.delivered_seq AND v.last_seq > c.joined_seq";

/// Binds: conv, position, uid, limit. The first `limit` messages after the
/// position that others sent: one range of the log's primary key. (A
/// single join of cursors and log would not do: MariaDB reads the whole
/// log of the conversation for it, and both databases read every pending
/// message before sorting and cutting.)
pub(super) const PENDING_IN: &str = "SELECT conv, seq, sender, ts, cid, body FROM chatlog \
     WHERE conv = ? AND seq > ? AND sender <> ? ORDER BY seq LIMIT ?";

/// [`PENDING_IN`] for `n` conversations in one statement (binds: its four
/// values per conversation). Rows come in no particular order; see
/// [`oldest_first`].
pub(super) fn pending_from(n: usize) -> String {
    (0..n)
        .map(|i| format!("SELECT * FROM ({PENDING_IN}) AS p{i}"))
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

/// The pending entries of several conversations merged: ordered by `(ts,
/// conv, seq)`, at most `limit`.
pub(super) fn oldest_first(mut entries: Vec<Entry>, limit: usize) -> Vec<Entry> {
    entries.sort_unstable_by_key(|e| (e.ts, e.conv.key(), e.seq));
    entries.truncate(limit);
    entries
}

/// Binds: seq, uid, conv, seq. Forward only; a missing row matches nothing.
pub(super) const SET_DELIVERED: &str =
    "UPDATE convcursor SET delivered_seq = ? WHERE userid = ? AND conv = ? AND delivered_seq < ?";
/// Binds: uid, conv. (MySQL appends `FOR UPDATE`.)
pub(super) const READ_SEQ: &str = "SELECT read_seq FROM convcursor WHERE userid = ? AND conv = ?";
/// Binds: seq, uid, conv.
pub(super) const SET_READ: &str =
    "UPDATE convcursor SET read_seq = ? WHERE userid = ? AND conv = ?";
/// Binds: conv.
pub(super) const LAST_SEQ: &str = "SELECT last_seq FROM conversation WHERE id = ?";

/// Binds: uid, conv.
pub(super) const DELETE_CURSOR: &str = "DELETE FROM convcursor WHERE userid = ? AND conv = ?";
/// Binds: conv. The three deletes of a conversation (dismissing a group).
pub(super) const DELETE_CONVERSATION: [&str; 3] = [
    "DELETE FROM conversation WHERE id = ?",
    "DELETE FROM chatlog WHERE conv = ?",
    "DELETE FROM convcursor WHERE conv = ?",
];

/// Where a read-back read position lands: forward only, never past
/// `last_seq`, never below where it was.
pub(super) fn new_read_seq(old: i64, wanted: i64, last_seq: i64) -> i64 {
    old.max(wanted.min(last_seq))
}

/// A conversation key read from the database as a [`Conv`].
pub(super) fn conv(key: i64) -> Result<Conv, StoreError> {
    Conv::from_key(key).ok_or_else(|| StoreError::Data(format!("no conversation has key {key}")))
}

/// One row of [`CID_PLACE`].
pub(super) fn stored((key, seq, ts): (i64, i64, i64)) -> Result<Stored, StoreError> {
    Ok(Stored {
        conv: conv(key)?,
        seq,
        ts,
    })
}

/// One row of the log: conv, seq, sender, ts, cid, body.
pub(super) type EntryRow = (i64, i64, i64, i64, Option<String>, String);

/// One row of [`PAGE_AFTER`], [`PAGE_BEFORE`] or [`PENDING_IN`].
pub(super) fn entry((key, seq, sender, ts, cid, body): EntryRow) -> Result<Entry, StoreError> {
    Ok(Entry {
        conv: conv(key)?,
        seq,
        sender,
        ts,
        cid,
        body,
    })
}

/// One row of [`conv_state_of`] or [`conv_states`].
pub(super) fn conv_state(
    (key, last_seq, read_seq, delivered_seq, joined_seq): (i64, i64, i64, i64, i64),
) -> Result<ConvState, StoreError> {
    Ok(ConvState {
        conv: conv(key)?,
        last_seq,
        read_seq,
        delivered_seq,
        joined_seq,
    })
}

/// The rows of one page: `limit + 1` were asked for, so a row beyond
/// `limit` says there are more; a [`Before`](super::Page::Before) page
/// came newest first and is turned around.
pub(super) fn page(mut rows: Vec<Entry>, limit: usize, newest_first: bool) -> (Vec<Entry>, bool) {
    let more = rows.len() > limit;
    rows.truncate(limit);
    if newest_first {
        rows.reverse();
    }
    (rows, more)
}

/// A `usize` limit as SQL's `LIMIT` value, plus one (to learn whether
/// there are more).
pub(super) fn limit_plus_one(limit: usize) -> i64 {
    i64::try_from(limit).map_or(i64::MAX, |l| l.saturating_add(1))
}

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
    batches_by(messages, CHUNK, max_bytes, |(_, text)| text.len())
}

/// `items` cut into runs of at most `max_rows` items and about `max_bytes`
/// (by `bytes`) each; a single larger item goes alone.
pub(super) fn batches_by<T>(
    items: &[T],
    max_rows: usize,
    max_bytes: usize,
    bytes: impl Fn(&T) -> usize,
) -> Vec<&[T]> {
    let mut out = Vec::new();
    let (mut start, mut total) = (0, 0);
    for (i, item) in items.iter().enumerate() {
        let size = bytes(item);
        let full = i - start == max_rows || (i > start && total + size > max_bytes);
        if full {
            out.extend(items.get(start..i));
            (start, total) = (i, 0);
        }
        total += size;
    }
    out.extend(items.get(start..).filter(|rest| !rest.is_empty()));
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

/// Rows per multi-row statement of the log's append. A batch is cut into
/// pieces of these sizes, largest first, so that only a handful of distinct
/// statements exist: each is prepared once per connection and then found
/// in the prepared-statement cache, which is keyed by the SQL text. (A
/// statement built for every batch's exact size is prepared anew, a round
/// trip and a parse of hundreds of placeholders, at every batch.)
pub const STATEMENT_ROWS: [usize; 5] = [256, 64, 16, 4, 1];

/// `items` cut into pieces of the [`STATEMENT_ROWS`] sizes, largest first.
pub fn fixed_chunks<T>(items: &[T]) -> Vec<&[T]> {
    pieces(items, &STATEMENT_ROWS)
}

/// `items` cut into pieces of `sizes` (largest first, ending with 1), as
/// many of each as fit before the next smaller size.
fn pieces<'a, T>(items: &'a [T], sizes: &[usize]) -> Vec<&'a [T]> {
    let mut out = Vec::new();
    let mut rest = items;
    for &size in sizes {
        while rest.len() >= size {
            let (piece, tail) = rest.split_at(size);
            out.push(piece);
            rest = tail;
        }
    }
    out
}

/// Rows per statement of [`fine_chunks`]: the powers of two up to 256.
pub const FINE_ROWS: [usize; 9] = [256, 128, 64, 32, 16, 8, 4, 2, 1];

/// `items` cut into pieces of the [`FINE_ROWS`] sizes, largest first: at
/// most one piece of each size below 256, so a batch of n rows is at most
/// `n / 256 + 8` statements (against up to `n / 256 + 12` of
/// [`fixed_chunks`]), for MySQL, where each statement is a round trip,
/// taken with the conversations' row locks held. For inserts and upserts;
/// a `SELECT`'s keys are [`padded_chunks`].
pub fn fine_chunks<T>(items: &[T]) -> Vec<&[T]> {
    pieces(items, &FINE_ROWS)
}

/// `items` cut into pieces of at most 256, each padded to the smallest
/// [`STATEMENT_ROWS`] size that holds it by repeating its last item: one
/// statement per 256 rows, from the same few prepared statements as
/// [`fixed_chunks`]. Only for the terms of a `SELECT` (an `IN (…)` or an
/// `OR` of keys), which a repeated term does not change, and only for a
/// read that locks nothing (a long list may be run as a range scan,
/// which in a locking read locks every row it passes). Never for an
/// insert or upsert: a key met twice in one `INSERT … ON DUPLICATE KEY
/// UPDATE` is locked again, with the gap before it.
pub fn padded_chunks<T: Copy>(items: &[T]) -> Vec<Vec<T>> {
    items
        .chunks(STATEMENT_ROWS[0])
        .map(|piece| {
            let size = (STATEMENT_ROWS.iter().rev())
                .copied()
                .find(|&s| s >= piece.len())
                .unwrap_or(piece.len());
            let mut v = piece.to_vec();
            if let Some(&last) = piece.last() {
                v.resize(size, last);
            }
            v
        })
        .collect()
}
