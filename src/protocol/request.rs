//! Requests: the typed form of a decoded JSON object, with precise errors.
//!
//! [`parse`] reads the `msgId`, checks that the fields of that message are
//! present, have the right JSON type and sensible sizes, and returns a
//! [`Request`]. It borrows the object, so the caller keeps it: chat messages
//! are forwarded as received, which the original's client expects.
//!
//! # Identity
//!
//! The original trusted the `uid`/`from` a client wrote, so any connection
//! could act as any account. Here those fields are optional: the server takes
//! the identity from the login on the connection, and [`Request::claimed_uid`]
//! returns a `uid`/`from` that was sent anyway, for the server to reject when
//! it names another account. The original's client always sends them, and
//! always truthfully.
//!
//! # Names
//!
//! A name being created (register's `username`, a group's name) may not
//! contain invisible or bidirectional control characters (the `invisible`
//! submodule lists them), so that it cannot be made to look like another
//! name. Login accepts them: it only looks a name up.
//!
//! # The message log
//!
//! Chats (9, 13) may carry a client id, `cid`, which asks for a
//! [`msg_id::SEND_ACK`]; sync (29), conversations (31) and read (33) work on
//! the log. Their fields, [`SyncFrom`] and [`strip_log_fields`] live in the
//! `message_log` submodule.
//!
//! # Errors
//!
//! A [`ProtocolError`] carries the `errno` ([`errno::BAD_REQUEST`] for a
//! missing, mistyped or invalid field, [`errno::UNKNOWN_MSG`] for a msgId that
//! is not a request, [`errno::NOT_FOUND`] for a `conv` that names no
//! conversation), an `errmsg` naming the field, and the msgId when it was
//! readable. [`ProtocolError::reply`] turns it into the request's own ack (or
//! an error message), and the connection stays open. A malformed chat whose
//! `cid` is itself valid is answered with a [`msg_id::SEND_ACK`] carrying
//! that cid, so that a client waiting for the ack of that cid hears about it.

use serde_json::{Map, Value};
use std::fmt;

use super::msg_id::{self, errno};
use super::reply;
use crate::model::Conv;

mod invisible;
mod message_log;

pub use message_log::{
    strip_log_fields, valid_cid, SyncFrom, DEFAULT_SYNC_LIMIT, LOG_FIELDS, MAX_CID_CHARS,
    MAX_SYNC_LIMIT,
};

/// Longest user name, in characters (the `user.name` column is `VARCHAR(50)`).
pub const MAX_USERNAME_CHARS: usize = 50;
/// Longest password, in characters (it is hashed, so the column size does not
/// limit it; the bound keeps hashing cheap).
pub const MAX_PASSWORD_CHARS: usize = 128;
/// Longest resume token accepted, in characters (the server's own are
/// shorter; the bound keeps garbage cheap to refuse).
pub const MAX_TOKEN_CHARS: usize = 256;
/// Longest group name, in characters (`allgroup.groupname` is `VARCHAR(50)`).
pub const MAX_GROUP_NAME_CHARS: usize = 50;
/// Longest group description, in characters (`allgroup.groupdesc` is `VARCHAR(200)`).
pub const MAX_GROUP_DESC_CHARS: usize = 200;

/// A request from a client, one variant per client → server msgId.
///
/// `uid`/`from` fields are what the client wrote, if anything; see
/// [`Request::claimed_uid`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// [`msg_id::LOGIN_MSG`]. Exactly one of `uid` and `username` is `Some`.
    Login {
        uid: Option<i64>,
        username: Option<String>,
        password: String,
    },
    /// [`msg_id::LOGIN_MSG`] with a resume token instead of a password.
    TokenLogin { token: String },
    /// [`msg_id::LOGOUT_MSG`]; `revoke` (`"revoke":true`) also revokes the
    /// account's resume tokens.
    Logout { uid: Option<i64>, revoke: bool },
    /// [`msg_id::CHANGE_PASSWORD_MSG`].
    ChangePassword { old: String, new: String },
    /// [`msg_id::REG_MSG`].
    Register { username: String, password: String },
    /// [`msg_id::ACOUNT_FRESH_MSG`].
    Refresh { uid: Option<i64> },
    /// [`msg_id::ONE_CHAT_MSG`]. The text (`msg`, a string) and the optional
    /// `username` and `time` strings stay in the object, which is forwarded.
    /// `cid`, when sent, asks for a [`msg_id::SEND_ACK`] (see [`Request::cid`]).
    OneChat {
        from: Option<i64>,
        to: i64,
        cid: Option<String>,
    },
    /// [`msg_id::ADD_FRIEND_MSG`].
    AddFriend { uid: Option<i64>, fid: i64 },
    /// [`msg_id::CREATE_GROUP_MSG`]; `desc` is empty when `groupdesc` is absent.
    CreateGroup {
        uid: Option<i64>,
        name: String,
        desc: String,
    },
    /// [`msg_id::ADD_GROUP_MSG`].
    JoinGroup { uid: Option<i64>, gid: i64 },
    /// [`msg_id::GROUP_CHAT_MSG`]; like [`Request::OneChat`], the object is
    /// forwarded, and `cid` asks for a [`msg_id::SEND_ACK`].
    GroupChat {
        uid: Option<i64>,
        gid: i64,
        cid: Option<String>,
    },
    /// [`msg_id::DEL_FRIEND_MSG`].
    DelFriend { uid: Option<i64>, fid: i64 },
    /// [`msg_id::QUIT_GROUP_MSG`].
    QuitGroup { uid: Option<i64>, gid: i64 },
    /// [`msg_id::DISMISS_GROUP_MSG`].
    DismissGroup { uid: Option<i64>, gid: i64 },
    /// [`msg_id::GROUP_MEMBERS_MSG`].
    GroupMembers { uid: Option<i64>, gid: i64 },
    /// [`msg_id::PING_MSG`].
    Ping,
    /// [`msg_id::SYNC_MSG`]: up to `limit` messages of `conv` on one side
    /// of a seq (see [`SyncFrom`]); `limit` is already defaulted
    /// ([`DEFAULT_SYNC_LIMIT`]) and clamped ([`MAX_SYNC_LIMIT`]), so it is
    /// in `1..=MAX_SYNC_LIMIT`.
    Sync {
        conv: Conv,
        page: SyncFrom,
        limit: usize,
    },
    /// [`msg_id::CONVS_MSG`]: the user's conversations.
    Convs,
    /// [`msg_id::READ_MSG`]: the user has read `conv` up to `seq` (≥ 0).
    Read { conv: Conv, seq: i64 },
    /// [`msg_id::TYPING_MSG`]: the user is typing in `conv`.
    Typing { conv: Conv },
}

impl Request {
    /// The msgId this request arrived with.
    pub fn msg_id(&self) -> i64 {
        match self {
            Request::Login { .. } | Request::TokenLogin { .. } => msg_id::LOGIN_MSG,
            Request::ChangePassword { .. } => msg_id::CHANGE_PASSWORD_MSG,
            Request::Logout { .. } => msg_id::LOGOUT_MSG,
            Request::Register { .. } => msg_id::REG_MSG,
            Request::Refresh { .. } => msg_id::ACOUNT_FRESH_MSG,
            Request::OneChat { .. } => msg_id::ONE_CHAT_MSG,
            Request::AddFriend { .. } => msg_id::ADD_FRIEND_MSG,
            Request::CreateGroup { .. } => msg_id::CREATE_GROUP_MSG,
            Request::JoinGroup { .. } => msg_id::ADD_GROUP_MSG,
            Request::GroupChat { .. } => msg_id::GROUP_CHAT_MSG,
            Request::DelFriend { .. } => msg_id::DEL_FRIEND_MSG,
            Request::QuitGroup { .. } => msg_id::QUIT_GROUP_MSG,
            Request::DismissGroup { .. } => msg_id::DISMISS_GROUP_MSG,
            Request::GroupMembers { .. } => msg_id::GROUP_MEMBERS_MSG,
            Request::Ping => msg_id::PING_MSG,
            Request::Sync { .. } => msg_id::SYNC_MSG,
            Request::Convs => msg_id::CONVS_MSG,
            Request::Read { .. } => msg_id::READ_MSG,
            Request::Typing { .. } => msg_id::TYPING_MSG,
        }
    }

    /// The client id of a chat or group chat, when it carried one: its
    /// success and every failure are then answered with a
    /// [`msg_id::SEND_ACK`] naming it ([`reply::send_ack`],
    /// [`reply::send_failed`]) instead of nothing or an
    /// [`msg_id::ERROR_MSG`]. `None` for every other request.
    pub fn cid(&self) -> Option<&str> {
        match self {
            Request::OneChat { cid, .. } | Request::GroupChat { cid, .. } => cid.as_deref(),
            _ => None,
        }
    }

    /// The account the client says it acts as (`uid`, or `from` for a chat),
    /// when it said so. The server must reject the request with
    /// [`errno::FORBIDDEN`] when this is not the account logged in on the
    /// connection. Always `None` for login (whose `uid` names the account to
    /// log in to), register, ping, sync, conversations and read (the last
    /// three have no such field; they still need a login).
    pub fn claimed_uid(&self) -> Option<i64> {
        match self {
            Request::Login { .. }
            | Request::TokenLogin { .. }
            | Request::ChangePassword { .. }
            | Request::Register { .. }
            | Request::Ping
            | Request::Sync { .. }
            | Request::Convs
            | Request::Read { .. }
            | Request::Typing { .. } => None,
            Request::OneChat { from, .. } => *from,
            Request::Logout { uid, .. }
            | Request::Refresh { uid }
            | Request::AddFriend { uid, .. }
            | Request::CreateGroup { uid, .. }
            | Request::JoinGroup { uid, .. }
            | Request::GroupChat { uid, .. }
            | Request::DelFriend { uid, .. }
            | Request::QuitGroup { uid, .. }
            | Request::DismissGroup { uid, .. }
            | Request::GroupMembers { uid, .. } => *uid,
        }
    }
}

/// A well-formed JSON object that is not a valid request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolError {
    /// [`errno::BAD_REQUEST`], [`errno::UNKNOWN_MSG`] or (a `conv` naming
    /// no conversation) [`errno::NOT_FOUND`].
    pub errno: i64,
    /// What is wrong, naming the field, e.g. "missing field `to`".
    pub errmsg: String,
    /// The request's msgId, when it was an integer.
    pub msg_id: Option<i64>,
    /// The `cid` of a chat or group chat that is malformed in another
    /// field, when the cid itself is valid: the error then goes out as a
    /// [`msg_id::SEND_ACK`] for that cid.
    pub cid: Option<String>,
}

impl ProtocolError {
    fn new(errno: i64, msg_id: Option<i64>, errmsg: String) -> ProtocolError {
        ProtocolError {
            errno,
            errmsg,
            msg_id,
            cid: None,
        }
    }

    fn bad(msg_id: i64, errmsg: String) -> ProtocolError {
        ProtocolError::new(errno::BAD_REQUEST, Some(msg_id), errmsg)
    }

    /// The reply to send: a [`msg_id::SEND_ACK`] when the error is about a
    /// chat with a valid [`cid`](ProtocolError::cid); else the request's own
    /// ack with this `errno` and `errmsg`, or an [`msg_id::ERROR_MSG`] when
    /// it has no ack (see [`reply::failure`]).
    pub fn reply(&self) -> Value {
        reply::failure_for(self.msg_id, self.cid.as_deref(), self.errno, &self.errmsg)
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.errmsg)
    }
}

impl std::error::Error for ProtocolError {}

/// Parses a decoded object into a [`Request`].
///
/// # Errors
///
/// [`errno::BAD_REQUEST`] when `msgId` or a field of the message is missing,
/// has the wrong JSON type or an invalid value (ids must be positive integers;
/// see the `MAX_*` constants for sizes); [`errno::UNKNOWN_MSG`] when the
/// msgId is not a client → server message; [`errno::NOT_FOUND`] when a
/// well-formed request's `conv` names no conversation. A chat's error
/// carries its `cid` when that is valid (see [`ProtocolError::cid`]).
pub fn parse(obj: &Map<String, Value>) -> Result<Request, ProtocolError> {
    let id = match obj.get("msgId") {
        Some(v) => v.as_i64().ok_or_else(|| {
            ProtocolError::new(
                errno::BAD_REQUEST,
                None,
                "field `msgId` must be an integer".into(),
            )
        })?,
        None => {
            return Err(ProtocolError::new(
                errno::BAD_REQUEST,
                None,
                "missing field `msgId`".into(),
            ))
        }
    };
    let f = Fields { obj, msg_id: id };
    parse_fields(&f).map_err(|e| f.with_chat_cid(e))
}

/// [`parse`] once the msgId is known.
fn parse_fields(f: &Fields<'_>) -> Result<Request, ProtocolError> {
    let request = match f.msg_id {
        msg_id::LOGIN_MSG => parse_login(f)?,
        msg_id::LOGOUT_MSG => Request::Logout {
            uid: f.opt_id("uid")?,
            revoke: f.opt_bool("revoke")?.unwrap_or(false),
        },
        msg_id::CHANGE_PASSWORD_MSG => Request::ChangePassword {
            old: f.password_in("old")?,
            new: f.password_in("new")?,
        },
        msg_id::REG_MSG => Request::Register {
            username: f.new_name("username", MAX_USERNAME_CHARS)?,
            password: f.password()?,
        },
        msg_id::ACOUNT_FRESH_MSG => Request::Refresh {
            uid: f.opt_id("uid")?,
        },
        msg_id::ONE_CHAT_MSG => {
            let request = Request::OneChat {
                from: f.opt_id("from")?,
                to: f.id("to")?,
                cid: f.opt_cid()?,
            };
            f.chat_text()?;
            request
        }
        msg_id::ADD_FRIEND_MSG => Request::AddFriend {
            uid: f.opt_id("uid")?,
            fid: f.id("fid")?,
        },
        msg_id::CREATE_GROUP_MSG => Request::CreateGroup {
            uid: f.opt_id("uid")?,
            name: f.new_name("groupname", MAX_GROUP_NAME_CHARS)?,
            desc: f.desc()?,
        },
        msg_id::ADD_GROUP_MSG => Request::JoinGroup {
            uid: f.opt_id("uid")?,
            gid: f.id("gid")?,
        },
        msg_id::GROUP_CHAT_MSG => {
            let request = Request::GroupChat {
                uid: f.opt_id("uid")?,
                gid: f.id("gid")?,
                cid: f.opt_cid()?,
            };
            f.chat_text()?;
            request
        }
        msg_id::DEL_FRIEND_MSG => Request::DelFriend {
            uid: f.opt_id("uid")?,
            fid: f.id("fid")?,
        },
        msg_id::QUIT_GROUP_MSG => Request::QuitGroup {
            uid: f.opt_id("uid")?,
            gid: f.id("gid")?,
        },
        msg_id::DISMISS_GROUP_MSG => Request::DismissGroup {
            uid: f.opt_id("uid")?,
            gid: f.id("gid")?,
        },
        msg_id::GROUP_MEMBERS_MSG => Request::GroupMembers {
            uid: f.opt_id("uid")?,
            gid: f.id("gid")?,
        },
        msg_id::PING_MSG => Request::Ping,
        msg_id::SYNC_MSG => message_log::parse_sync(f)?,
        msg_id::CONVS_MSG => Request::Convs,
        msg_id::READ_MSG => message_log::parse_read(f)?,
        msg_id::TYPING_MSG => message_log::parse_typing(f)?,
        other => {
            return Err(ProtocolError::new(
                errno::UNKNOWN_MSG,
                Some(other),
                format!("msgId {other} is not a request this server knows"),
            ))
        }
    };
    Ok(request)
}

fn parse_login(f: &Fields<'_>) -> Result<Request, ProtocolError> {
    if let Some(token) = f.opt_str("token")? {
        if ["uid", "username", "password"]
            .iter()
            .any(|k| f.get(k).is_some())
        {
            return Err(
                f.error("a login with a `token` takes no `uid`, `username` or `password`".into())
            );
        }
        f.check_len("token", token, 1, MAX_TOKEN_CHARS)?;
        return Ok(Request::TokenLogin {
            token: token.to_owned(),
        });
    }
    let uid = f.opt_id("uid")?;
    let username = match f.opt_str("username")? {
        Some(_) => Some(f.name("username", MAX_USERNAME_CHARS)?),
        None => None,
    };
    if uid.is_some() == username.is_some() {
        return Err(f.error("login needs exactly one of `uid` and `username`".into()));
    }
    Ok(Request::Login {
        uid,
        username,
        password: f.password()?,
    })
}

/// The fields of one request object, with typed accessors whose errors name
/// the field. A `null` field counts as absent.
struct Fields<'a> {
    obj: &'a Map<String, Value>,
    msg_id: i64,
}

impl Fields<'_> {
    fn error(&self, errmsg: String) -> ProtocolError {
        ProtocolError::bad(self.msg_id, errmsg)
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.obj.get(key).filter(|v| !v.is_null())
    }

    /// A required id: a positive integer.
    fn id(&self, key: &str) -> Result<i64, ProtocolError> {
        self.opt_id(key)?
            .ok_or_else(|| self.error(format!("missing field `{key}`")))
    }

    fn opt_id(&self, key: &str) -> Result<Option<i64>, ProtocolError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_i64() {
                Some(id) if id > 0 => Ok(Some(id)),
                _ => Err(self.error(format!("field `{key}` must be a positive integer"))),
            },
        }
    }

    fn str(&self, key: &str) -> Result<&str, ProtocolError> {
        self.opt_str(key)?
            .ok_or_else(|| self.error(format!("missing field `{key}`")))
    }

    fn opt_str(&self, key: &str) -> Result<Option<&str>, ProtocolError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.error(format!("field `{key}` must be a string"))),
        }
    }

    fn check_len(&self, key: &str, s: &str, min: usize, max: usize) -> Result<(), ProtocolError> {
        let n = s.chars().count();
        if n < min || n > max {
            return Err(self.error(format!(
                "field `{key}` must be {min} to {max} characters, not {n}"
            )));
        }
        Ok(())
    }

    /// A user or group name: 1..=max characters, no control characters and
    /// no leading or trailing whitespace (MySQL compares names ignoring
    /// trailing spaces, SQLite does not; forbidding them keeps both alike).
    fn name(&self, key: &str, max: usize) -> Result<String, ProtocolError> {
        let s = self.str(key)?;
        self.check_len(key, s, 1, max)?;
        if s.chars().any(char::is_control) {
            return Err(self.error(format!("field `{key}` must not contain control characters")));
        }
        if s.trim() != s {
            return Err(self.error(format!(
                "field `{key}` must not start or end with whitespace"
            )));
        }
        Ok(s.to_owned())
    }

    /// A name being created (register's `username`, a group's name): a
    /// [`name`](Fields::name) that also has no invisible or bidirectional
    /// control characters (see [`invisible`]), so that it cannot pass for
    /// another. Login only looks names up, so it uses `name`.
    fn new_name(&self, key: &str, max: usize) -> Result<String, ProtocolError> {
        let s = self.name(key, max)?;
        if let Some(c) = invisible::first_refused(&s) {
            return Err(self.error(format!(
                "field `{key}` must not contain invisible or bidirectional \
                 control characters (found U+{:04X})",
                c as u32
            )));
        }
        Ok(s)
    }

    fn password(&self) -> Result<String, ProtocolError> {
        self.password_in("password")
    }

    /// A password in the field `key`: 1..=[`MAX_PASSWORD_CHARS`] characters.
    fn password_in(&self, key: &str) -> Result<String, ProtocolError> {
        let s = self.str(key)?;
        self.check_len(key, s, 1, MAX_PASSWORD_CHARS)?;
        Ok(s.to_owned())
    }

    fn opt_bool(&self, key: &str) -> Result<Option<bool>, ProtocolError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(_) => Err(self.error(format!("field `{key}` must be true or false"))),
        }
    }

    fn desc(&self) -> Result<String, ProtocolError> {
        let s = self.opt_str("groupdesc")?.unwrap_or("");
        self.check_len("groupdesc", s, 0, MAX_GROUP_DESC_CHARS)?;
        Ok(s.to_owned())
    }

    /// Checks a chat message's text fields; the object itself is forwarded.
    fn chat_text(&self) -> Result<(), ProtocolError> {
        self.str("msg")?;
        self.opt_str("username")?;
        self.opt_str("time")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
