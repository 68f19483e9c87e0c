//! Message ids (`"msgId"`) and error numbers (`"errno"`) of the wire protocol.
//!
//! Ids 1–13 are the C++ original's and keep its numbering and names, so the
//! original's client works unchanged. Ids from 14 up are ours: the original
//! client ignores ids it does not know, so adding them is safe. 28–34 are
//! the message log's (send acks, sync, conversations, read positions),
//! 35 and 36 read receipts and typing (several sessions per user).
//! `docs/protocol.md` describes every message and its fields.

/// `{"msgId":1,"uid":…,"password":…}` (or `"username"` instead of `"uid"`),
/// or `{"msgId":1,"token":…}` with a resume token of an earlier login.
pub const LOGIN_MSG: i64 = 1;
/// Reply to [`LOGIN_MSG`]; on success it carries a resume `token`.
pub const LOGIN_MSG_ACK: i64 = 2;
/// `{"msgId":3}`; a `uid`, when present, must be the logged-in account;
/// `"revoke":true` also revokes every resume token of the account.
pub const LOGOUT_MSG: i64 = 3;
/// Reply to [`LOGOUT_MSG`] (declared but never sent by the original).
pub const LOGOUT_MSG_ACK: i64 = 4;
/// `{"msgId":5,"username":…,"password":…}`.
pub const REG_MSG: i64 = 5;
/// Reply to [`REG_MSG`], with the new `uid`.
pub const REG_MSG_ACK: i64 = 6;
/// `{"msgId":7}`: asks for the current friend and group lists.
pub const ACOUNT_FRESH_MSG: i64 = 7;
/// Reply to [`ACOUNT_FRESH_MSG`].
pub const ACOUNT_FRESH_ACK: i64 = 8;
/// One-to-one chat, forwarded to `to` as received.
pub const ONE_CHAT_MSG: i64 = 9;
/// `{"msgId":10,"fid":…}`; answered by [`ADD_FRIEND_ACK`].
pub const ADD_FRIEND_MSG: i64 = 10;
/// `{"msgId":11,"groupname":…,"groupdesc":…}`; answered by [`CREATE_GROUP_ACK`].
pub const CREATE_GROUP_MSG: i64 = 11;
/// `{"msgId":12,"gid":…}`; answered by [`ADD_GROUP_ACK`].
pub const ADD_GROUP_MSG: i64 = 12;
/// Group chat, forwarded to every other member of `gid`.
pub const GROUP_CHAT_MSG: i64 = 13;

/// `{"msgId":14,"fid":…}`: ends a friendship (both directions).
pub const DEL_FRIEND_MSG: i64 = 14;
/// Reply to [`DEL_FRIEND_MSG`].
pub const DEL_FRIEND_ACK: i64 = 15;
/// Reply to [`ADD_FRIEND_MSG`] (the original sent none).
pub const ADD_FRIEND_ACK: i64 = 16;
/// Reply to [`CREATE_GROUP_MSG`], with the new group's `gid`.
pub const CREATE_GROUP_ACK: i64 = 17;
/// Reply to [`ADD_GROUP_MSG`].
pub const ADD_GROUP_ACK: i64 = 18;
/// `{"msgId":19,"gid":…}`: leaves a group (the creator must dismiss instead).
pub const QUIT_GROUP_MSG: i64 = 19;
/// Reply to [`QUIT_GROUP_MSG`].
pub const QUIT_GROUP_ACK: i64 = 20;
/// `{"msgId":21,"gid":…}`: deletes a group; creator only.
pub const DISMISS_GROUP_MSG: i64 = 21;
/// Reply to [`DISMISS_GROUP_MSG`].
pub const DISMISS_GROUP_ACK: i64 = 22;
/// `{"msgId":23,"gid":…}`: lists a group's members; members only.
pub const GROUP_MEMBERS_MSG: i64 = 23;
/// Reply to [`GROUP_MEMBERS_MSG`].
pub const GROUP_MEMBERS_ACK: i64 = 24;
/// Keep-alive request; resets the idle timer.
pub const PING_MSG: i64 = 25;
/// Reply to [`PING_MSG`].
pub const PONG_MSG: i64 = 26;
/// An error for a request that has no ack of its own (chat, group chat, an
/// unknown msgId), or for input that closes the connection (too large, not
/// JSON). Carries `errno`, `errmsg` and, when known, `req` (the msgId).
pub const ERROR_MSG: i64 = 27;

/// The ack of a chat (9) or group chat (13) that carries a `cid`: sent once
/// the message is durable, with its `conv`, `seq` and `ts`, or with a
/// non-zero `errno` for any error about that message (instead of
/// [`ERROR_MSG`]). Never a request: it answers 9 and 13.
pub const SEND_ACK: i64 = 28;
/// `{"msgId":29,"conv":…,"after":N}` or `…"before":N`, with an optional
/// `limit`: a page of one conversation's log.
pub const SYNC_MSG: i64 = 29;
/// Reply to [`SYNC_MSG`]: `conv`, `msgs` (the messages, ascending) and `more`.
pub const SYNC_ACK: i64 = 30;
/// `{"msgId":31}`: lists the user's conversations.
pub const CONVS_MSG: i64 = 31;
/// Reply to [`CONVS_MSG`]: `convs`, each with its `last_seq` and `read_seq`.
pub const CONVS_ACK: i64 = 32;
/// `{"msgId":33,"conv":…,"seq":N}`: moves the user's read position.
pub const READ_MSG: i64 = 33;
/// Reply to [`READ_MSG`], with the new read position.
pub const READ_ACK: i64 = 34;
/// Pushed `{"msgId":35,"conv":…,"uid":U,"seq":N}`: user `U` has read `conv`
/// up to `seq` (sent to `U`'s other sessions and the other participants).
pub const RECEIPT_MSG: i64 = 35;
/// `{"msgId":36,"conv":…}`: the user is typing in `conv`; relayed to the
/// other participants with the typist's `uid`, never stored, at most once
/// a second per session and conversation.
pub const TYPING_MSG: i64 = 36;

/// `{"msgId":37,"old":…,"new":…}`: changes the logged-in account's
/// password and revokes every resume token it had.
pub const CHANGE_PASSWORD_MSG: i64 = 37;
/// Reply to [`CHANGE_PASSWORD_MSG`]; on success with a fresh `token`.
pub const CHANGE_PASSWORD_ACK: i64 = 38;

/// Error numbers carried in `errno`. 1 and 2 keep the original's meaning.
pub mod errno {
    /// Success.
    pub const OK: i64 = 0;
    /// Login: unknown account or wrong password. Register: name taken.
    pub const FAILED: i64 = 1;
    /// Login: the account is already logged in (on any node).
    pub const ALREADY_ONLINE: i64 = 2;
    /// The request needs a logged-in connection.
    pub const NOT_LOGGED_IN: i64 = 3;
    /// A field is missing, has the wrong type or an invalid value.
    pub const BAD_REQUEST: i64 = 4;
    /// The msgId is not one this server knows.
    pub const UNKNOWN_MSG: i64 = 5;
    /// Not allowed: a `uid`/`from` that is not the logged-in account, posting
    /// to a group one is not a member of, dismissing a group one did not
    /// create, reading a conversation one is not part of.
    pub const FORBIDDEN: i64 = 6;
    /// No such user, group or conversation.
    pub const NOT_FOUND: i64 = 7;
    /// Already friends, already a member, group name taken, login while logged in.
    pub const CONFLICT: i64 = 8;
    /// The server could not complete the request (storage failure).
    pub const SERVER_ERROR: i64 = 9;
    /// The message exceeds the maximum message size; the connection is closed.
    pub const TOO_LARGE: i64 = 10;
    /// The bytes are not JSON (or not a JSON object); the connection is closed.
    pub const INVALID_JSON: i64 = 11;
    /// A limit was reached; try again later. On one source address (too
    /// many connections not logged in): the connection is closed. On one
    /// connection (too many registers and logins waiting for the password
    /// hasher): the request's ack carries it and the connection stays open.
    pub const TOO_MANY: i64 = 12;
    /// A quota was reached: a stored amount (friends, groups, members,
    /// messages waiting for one recipient, accounts or connections of one
    /// address) is at its configured maximum. Unlike 12 it does not pass
    /// with time alone: something must be removed first.
    pub const QUOTA: i64 = 13;
}
