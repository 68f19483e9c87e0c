//! Incoming messages: a JSON object from the server, read into an [`Incoming`].
//!
//! Reading is lenient, as a client should be: a field of the wrong type or a
//! message of an unknown msgId never stops the client; what cannot be
//! understood becomes [`Incoming::Unknown`] and is shown as it came.
//!
//! The login and refresh acks carry their lists as arrays of JSON-encoded
//! strings (the original's shape, see `protocol::reply`); each element is
//! parsed again here, and a plain object is accepted as well.
//!
//! The message log (issue 11) adds: a [`LogPos`] (`conv`, `seq`, `ts`) on
//! every delivered chat and group message; 28 SEND_ACK, read into
//! [`Incoming::SendAck`] (it answers a chat by its `cid`, not by msgId); and
//! the acks of 29 SYNC, 31 CONVS and 33 READ, read into [`Reply`] like every
//! other ack.

use serde_json::{Map, Value};

use super::request::User;
use chat::protocol::{errno, msg_id, reply};

/// One message from the server.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    /// The answer to one of our requests: `request` is the request's msgId.
    Ack {
        request: i64,
        outcome: Result<Reply, Failure>,
    },
    /// An error with no ack of its own (msgId 27): a failed chat, or input
    /// the server could not read, after which it closes the connection.
    Error(Failure),
    /// A one-to-one message for us.
    Chat(ChatMessage),
    /// A message to a group we belong to.
    GroupChat(GroupMessage),
    /// 28 SEND_ACK: the chat or group chat sent with `cid` is stored (its
    /// place in the log), or was refused. `sent` is filled in by
    /// [`ClientState`](super::state::ClientState) with what we sent under
    /// that cid, when it still knows.
    SendAck {
        cid: String,
        outcome: Result<LogPos, Failure>,
        sent: Option<Sent>,
    },
    /// 35 RECEIPT: user `uid` (we, on another device, or someone we talk
    /// with) has read `conv` up to `seq`.
    Receipt { conv: String, uid: i64, seq: i64 },
    /// 36 TYPING: user `uid` is typing in `conv`.
    Typing { conv: String, uid: i64 },
    /// Anything else, kept as it came.
    Unknown(Value),
}

impl Incoming {
    /// Whether the server refused a request with this (an ack with an
    /// errno, an error message, a refused SEND_ACK).
    pub fn refused(&self) -> bool {
        matches!(
            self,
            Incoming::Ack {
                outcome: Err(_),
                ..
            } | Incoming::Error(_)
                | Incoming::SendAck {
                    outcome: Err(_),
                    ..
                }
        )
    }

    /// The msgId of the request this message answers, if it answers one.
    pub fn answers(&self) -> Option<i64> {
        match self {
            Incoming::Ack { request, .. } => Some(*request),
            Incoming::Error(f) => f.request,
            _ => None,
        }
    }
}

/// A successful reply, by request. Ids the server did not send are `None`.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// msgId 2: the account, offline messages, friends and groups.
    LoggedIn(AccountView),
    /// msgId 6: the new account.
    Registered(User),
    /// msgId 4.
    LoggedOut,
    /// msgId 38: the password is changed; a resume token of the new
    /// generation (the earlier ones are revoked).
    PasswordChanged { token: Option<String> },
    /// msgId 8: as [`Reply::LoggedIn`], without offline messages.
    Refreshed(AccountView),
    /// msgId 16.
    FriendAdded { fid: Option<i64> },
    /// msgId 15.
    FriendDeleted { fid: Option<i64> },
    /// msgId 17: the new group's id and name.
    GroupCreated { gid: i64, name: String },
    /// msgId 18.
    GroupJoined { gid: Option<i64> },
    /// msgId 20.
    GroupQuit { gid: Option<i64> },
    /// msgId 22.
    GroupDismissed { gid: Option<i64> },
    /// msgId 24: the members, in the server's order.
    Members { gid: i64, members: Vec<Member> },
    /// msgId 26.
    Pong,
    /// msgId 30: one page of a conversation's log, ascending.
    Synced(SyncPage),
    /// msgId 32: every conversation we have messages in or belong to.
    Convs(Vec<ConvInfo>),
    /// msgId 34: the conversation's read position is now `seq`.
    Read { conv: String, seq: u64 },
}

/// A request the server refused, or an error it reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The msgId of the failed request, when known.
    pub request: Option<i64>,
    /// The server's `errno` (see `protocol::errno`).
    pub errno: i64,
    /// The server's own words (`errmsg`, or the original's `sysmsg`).
    pub errmsg: String,
}

/// What the login and refresh acks tell about the account.
#[derive(Debug, Clone, PartialEq)]
pub struct AccountView {
    /// The logged-in account.
    pub user: User,
    /// Messages that arrived while we were away, oldest first (login only).
    pub offline: Vec<Offline>,
    /// The friends, each online or not.
    pub friends: Vec<Friend>,
    /// The groups, with their members.
    pub groups: Vec<Group>,
    /// The resume token of a login ack, for logging in again without the
    /// password (a server before tokens sends none).
    pub token: Option<String>,
}

/// One stored message: delivered at login, or in a SYNC page.
#[derive(Debug, Clone, PartialEq)]
pub enum Offline {
    Chat(ChatMessage),
    Group(GroupMessage),
    /// A stored object of another kind, or text that is not JSON.
    Other(String),
}

impl Offline {
    /// The message's place in the log, when the server gave one.
    pub fn pos(&self) -> Option<&LogPos> {
        match self {
            Offline::Chat(m) => m.pos.as_ref(),
            Offline::Group(m) => m.pos.as_ref(),
            Offline::Other(_) => None,
        }
    }
}

/// A one-to-one chat message (msgId 9). Only the text is required; the
/// other fields are whatever the sending client wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatMessage {
    /// The sender's id (`from`).
    pub from: Option<i64>,
    /// The sender's name (`username`).
    pub name: Option<String>,
    /// The message (`msg`).
    pub text: String,
    /// When the sender's client sent it (`time`, its local time).
    pub time: Option<String>,
    /// Its place in the message log, from a server that keeps one.
    pub pos: Option<LogPos>,
}

/// A group chat message (msgId 13).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMessage {
    /// The group (`gid`).
    pub gid: i64,
    /// The sender's id (`uid`); the other fields as in [`ChatMessage`].
    pub from: Option<i64>,
    pub name: Option<String>,
    pub text: String,
    pub time: Option<String>,
    pub pos: Option<LogPos>,
}

/// A friend in the login or refresh ack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Friend {
    pub uid: i64,
    pub name: String,
    pub online: bool,
}

/// A group in the login or refresh ack.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub gid: i64,
    pub name: String,
    pub desc: String,
    pub members: Vec<Member>,
}

/// A member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub uid: i64,
    pub name: String,
    pub online: bool,
    /// `"creator"` or `"normal"`.
    pub role: String,
}

/// Reads one message from the server.
pub fn parse(obj: Map<String, Value>) -> Incoming {
    let id = int(&obj, "msgId");
    let read = match id {
        Some(msg_id::ONE_CHAT_MSG) => chat(&obj).map(Incoming::Chat),
        Some(msg_id::GROUP_CHAT_MSG) => group_chat(&obj).map(Incoming::GroupChat),
        Some(msg_id::ERROR_MSG) => Some(Incoming::Error(failure(&obj, int(&obj, "req")))),
        Some(msg_id::SEND_ACK) => send_ack(&obj),
        Some(msg_id::RECEIPT_MSG) => receipt(&obj),
        Some(msg_id::TYPING_MSG) => typing(&obj),
        Some(ack) => request_of(ack).and_then(|request| {
            let outcome = match int(&obj, "errno").unwrap_or(errno::OK) {
                errno::OK => Ok(success(request, &obj)?),
                _ => Err(failure(&obj, Some(request))),
            };
            Some(Incoming::Ack { request, outcome })
        }),
        None => None,
    };
    read.unwrap_or(Incoming::Unknown(Value::Object(obj)))
}

/// The request msgId whose ack is `ack` (the inverse of `reply::ack_id`).
fn request_of(ack: i64) -> Option<i64> {
    const REQUESTS: [i64; 16] = [
        msg_id::LOGIN_MSG,
        msg_id::LOGOUT_MSG,
        msg_id::REG_MSG,
        msg_id::ACOUNT_FRESH_MSG,
        msg_id::ADD_FRIEND_MSG,
        msg_id::CREATE_GROUP_MSG,
        msg_id::ADD_GROUP_MSG,
        msg_id::DEL_FRIEND_MSG,
        msg_id::QUIT_GROUP_MSG,
        msg_id::DISMISS_GROUP_MSG,
        msg_id::GROUP_MEMBERS_MSG,
        msg_id::PING_MSG,
        msg_id::SYNC_MSG,
        msg_id::CONVS_MSG,
        msg_id::READ_MSG,
        msg_id::CHANGE_PASSWORD_MSG,
    ];
    REQUESTS
        .into_iter()
        .find(|&r| reply::ack_id(r) == Some(ack))
}

/// The body of a successful ack; `None` when a required field is missing.
fn success(request: i64, obj: &Map<String, Value>) -> Option<Reply> {
    let fid = int(obj, "fid");
    let gid = int(obj, "gid");
    Some(match request {
        msg_id::LOGIN_MSG => Reply::LoggedIn(account(obj)?),
        msg_id::ACOUNT_FRESH_MSG => Reply::Refreshed(account(obj)?),
        msg_id::REG_MSG => Reply::Registered(user(obj)?),
        msg_id::LOGOUT_MSG => Reply::LoggedOut,
        msg_id::CHANGE_PASSWORD_MSG => Reply::PasswordChanged {
            token: text(obj, "token"),
        },
        msg_id::ADD_FRIEND_MSG => Reply::FriendAdded { fid },
        msg_id::DEL_FRIEND_MSG => Reply::FriendDeleted { fid },
        msg_id::CREATE_GROUP_MSG => Reply::GroupCreated {
            gid: gid?,
            name: text(obj, "groupname").unwrap_or_default(),
        },
        msg_id::ADD_GROUP_MSG => Reply::GroupJoined { gid },
        msg_id::QUIT_GROUP_MSG => Reply::GroupQuit { gid },
        msg_id::DISMISS_GROUP_MSG => Reply::GroupDismissed { gid },
        msg_id::GROUP_MEMBERS_MSG => Reply::Members {
            gid: gid?,
            members: list(obj, "members").filter_map(|m| member(&m)).collect(),
        },
        msg_id::PING_MSG => Reply::Pong,
        msg_id::SYNC_MSG => Reply::Synced(SyncPage {
            conv: text(obj, "conv")?,
            msgs: list(obj, "msgs").map(offline).collect(),
            more: obj.get("more").and_then(Value::as_bool).unwrap_or(false),
            purpose: SyncPurpose::default(),
        }),
        msg_id::CONVS_MSG => {
            Reply::Convs(list(obj, "convs").filter_map(|c| conv_info(&c)).collect())
        }
        msg_id::READ_MSG => Reply::Read {
            conv: text(obj, "conv")?,
            seq: seq(obj, "seq")?,
        },
        _ => return None,
    })
}

fn failure(obj: &Map<String, Value>, request: Option<i64>) -> Failure {
    Failure {
        request,
        errno: int(obj, "errno").unwrap_or(-1),
        errmsg: text(obj, "errmsg")
            .filter(|m| !m.is_empty())
            .or_else(|| text(obj, "sysmsg"))
            .unwrap_or_default(),
    }
}

fn user(obj: &Map<String, Value>) -> Option<User> {
    Some(User {
        uid: int(obj, "uid")?,
        name: text(obj, "username").unwrap_or_default(),
    })
}

fn account(obj: &Map<String, Value>) -> Option<AccountView> {
    Some(AccountView {
        user: user(obj)?,
        offline: list(obj, "offlinemsgs").map(offline).collect(),
        friends: list(obj, "friends").filter_map(|f| friend(&f)).collect(),
        groups: list(obj, "groups").filter_map(|g| group(&g)).collect(),
        token: text(obj, "token"),
    })
}

fn offline(m: Map<String, Value>) -> Offline {
    match int(&m, "msgId") {
        Some(msg_id::ONE_CHAT_MSG) => chat(&m).map(Offline::Chat),
        Some(msg_id::GROUP_CHAT_MSG) => group_chat(&m).map(Offline::Group),
        _ => None,
    }
    .unwrap_or_else(|| Offline::Other(Value::Object(m).to_string()))
}

fn chat(obj: &Map<String, Value>) -> Option<ChatMessage> {
    Some(ChatMessage {
        from: int(obj, "from").or_else(|| int(obj, "uid")),
        name: text(obj, "username"),
        text: text(obj, "msg")?,
        time: text(obj, "time"),
        pos: log_pos(obj),
    })
}

fn group_chat(obj: &Map<String, Value>) -> Option<GroupMessage> {
    Some(GroupMessage {
        gid: int(obj, "gid")?,
        from: int(obj, "uid").or_else(|| int(obj, "from")),
        name: text(obj, "username"),
        text: text(obj, "msg")?,
        time: text(obj, "time"),
        pos: log_pos(obj),
    })
}

fn friend(f: &Map<String, Value>) -> Option<Friend> {
    Some(Friend {
        uid: int(f, "uid")?,
        name: text(f, "username").unwrap_or_default(),
        online: online(f),
    })
}

fn group(g: &Map<String, Value>) -> Option<Group> {
    Some(Group {
        gid: int(g, "gid")?,
        name: text(g, "groupname").unwrap_or_default(),
        desc: text(g, "groupdesc").unwrap_or_default(),
        members: list(g, "groupusers").filter_map(|m| member(&m)).collect(),
    })
}

fn member(m: &Map<String, Value>) -> Option<Member> {
    Some(Member {
        uid: int(m, "uid")?,
        name: text(m, "username").unwrap_or_default(),
        online: online(m),
        role: text(m, "grouprole").unwrap_or_default(),
    })
}

fn online(obj: &Map<String, Value>) -> bool {
    text(obj, "state").as_deref() == Some("online")
}

/// An integer field; a string of digits is accepted too.
/// A 35 RECEIPT with every field.
fn receipt(obj: &Map<String, Value>) -> Option<Incoming> {
    Some(Incoming::Receipt {
        conv: text(obj, "conv")?,
        uid: int(obj, "uid")?,
        seq: int(obj, "seq")?,
    })
}

/// A 36 TYPING with every field.
fn typing(obj: &Map<String, Value>) -> Option<Incoming> {
    Some(Incoming::Typing {
        conv: text(obj, "conv")?,
        uid: int(obj, "uid")?,
    })
}

fn int(obj: &Map<String, Value>, key: &str) -> Option<i64> {
    match obj.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn text(obj: &Map<String, Value>, key: &str) -> Option<String> {
    match obj.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Null => None,
        other => Some(other.to_string()),
    }
}

/// The objects of an array field, each either an object or a string that
/// holds a JSON object (the original's nested-string shape). Elements that
/// are neither are skipped; a string that is not an object becomes `{"msg": s}`
/// so that no stored message is silently dropped.
fn list<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
) -> impl Iterator<Item = Map<String, Value>> + 'a {
    let items = match obj.get(key) {
        Some(Value::Array(items)) => items.as_slice(),
        _ => &[],
    };
    items.iter().filter_map(|item| match item {
        Value::Object(m) => Some(m.clone()),
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(m)) => Some(m),
            _ => Some(Map::from_iter([(
                "msg".to_owned(),
                Value::String(s.clone()),
            )])),
        },
        _ => None,
    })
}

mod log;
use log::{conv_info, log_pos, send_ack, seq};
pub use log::{ConvInfo, ConvPeer, LogPos, Sent, SyncPage, SyncPurpose};

#[cfg(test)]
mod tests;
