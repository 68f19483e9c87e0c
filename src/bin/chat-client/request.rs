//! Requests: the JSON object each [`Command`] sends.
//!
//! The objects carry the same fields the original client writes, `uid`,
//! `from`, `username` and `time` included, so a server that still trusts
//! them (the original) works too. Ours takes the identity from the login on
//! the connection and only checks that these fields agree with it.

use serde_json::{json, Value};

use super::clock;
use super::command::{Account, Command, Target};
use chat::protocol::msg_id;

/// The account logged in on this connection, as the login ack named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The account id.
    pub uid: i64,
    /// The account name.
    pub name: String,
}

/// Messages per page of `history`: the server's default.
pub const HISTORY_PAGE: u64 = 50;
/// Messages per page when catching up: the server's maximum.
pub const CATCH_UP_PAGE: u64 = 500;

/// The request for `command`, or `None` for commands that send nothing
/// (`help`, `quit`), for a login or register whose password is missing, and
/// for a [`Target`] still a name ([`crate::names::resolve`] comes first).
///
/// `user` fills the sender fields; before login they are left out. `cid`,
/// when given, goes into a chat or group chat, which the server then
/// answers with 28 SEND_ACK.
pub fn build(command: &Command, user: Option<&User>, cid: Option<&str>) -> Option<Value> {
    let uid = user.map(|u| u.uid);
    let name = user.map(|u| u.name.as_str());
    let id = |t: &Target| t.id();
    let v = match command {
        Command::Help | Command::Quit => return None,
        Command::Register { name, password } => json!({
            "msgId": msg_id::REG_MSG,
            "username": name,
            "password": password.as_deref()?,
        }),
        Command::Login { account, password } => {
            let mut v = json!({ "msgId": msg_id::LOGIN_MSG, "password": password.as_deref()? });
            match account {
                Account::Id(id) => v["uid"] = (*id).into(),
                Account::Name(name) => v["username"] = name.as_str().into(),
            }
            v
        }
        Command::Logout => with_uid(json!({ "msgId": msg_id::LOGOUT_MSG }), uid),
        Command::ChangePassword { old, new } => {
            json!({ "msgId": msg_id::CHANGE_PASSWORD_MSG, "old": old, "new": new })
        }
        Command::Refresh => with_uid(json!({ "msgId": msg_id::ACOUNT_FRESH_MSG }), uid),
        Command::Chat { to, text } => {
            let mut v = json!({
                "msgId": msg_id::ONE_CHAT_MSG,
                "to": id(to)?,
                "msg": text,
                "time": clock::now_local(),
            });
            if let (Some(uid), Some(name)) = (uid, name) {
                v["from"] = uid.into();
                v["username"] = name.into();
            }
            v
        }
        Command::GroupChat { gid, text } => {
            let mut v = json!({
                "msgId": msg_id::GROUP_CHAT_MSG,
                "gid": id(gid)?,
                "msg": text,
                "time": clock::now_local(),
            });
            if let Some(name) = name {
                v["username"] = name.into();
            }
            with_uid(v, uid)
        }
        Command::AddFriend { fid } => with_uid(
            json!({ "msgId": msg_id::ADD_FRIEND_MSG, "fid": id(fid)? }),
            uid,
        ),
        Command::DelFriend { fid } => with_uid(
            json!({ "msgId": msg_id::DEL_FRIEND_MSG, "fid": id(fid)? }),
            uid,
        ),
        Command::CreateGroup { name, desc } => with_uid(
            json!({ "msgId": msg_id::CREATE_GROUP_MSG, "groupname": name, "groupdesc": desc }),
            uid,
        ),
        Command::JoinGroup { gid } => with_uid(
            json!({ "msgId": msg_id::ADD_GROUP_MSG, "gid": id(gid)? }),
            uid,
        ),
        Command::QuitGroup { gid } => with_uid(
            json!({ "msgId": msg_id::QUIT_GROUP_MSG, "gid": id(gid)? }),
            uid,
        ),
        Command::DismissGroup { gid } => with_uid(
            json!({ "msgId": msg_id::DISMISS_GROUP_MSG, "gid": id(gid)? }),
            uid,
        ),
        Command::GroupMembers { gid } => with_uid(
            json!({ "msgId": msg_id::GROUP_MEMBERS_MSG, "gid": id(gid)? }),
            uid,
        ),
        Command::Ping => json!({ "msgId": msg_id::PING_MSG }),
        Command::Convs => json!({ "msgId": msg_id::CONVS_MSG }),
        Command::History { conv, before } => sync_before(conv, *before),
    };
    Some(with_cid(v, cid))
}

/// Adds `cid` to a chat or group chat.
fn with_cid(mut v: Value, cid: Option<&str>) -> Value {
    let id = v["msgId"].as_i64();
    if let Some(cid) =
        cid.filter(|_| matches!(id, Some(msg_id::ONE_CHAT_MSG | msg_id::GROUP_CHAT_MSG)))
    {
        v["cid"] = cid.into();
    }
    v
}

/// SYNC: the latest page of `conv` before seq `before`, or the latest page
/// of all when `before` is `None`.
pub fn sync_before(conv: &str, before: Option<u64>) -> Value {
    // "Before a seq no message can have" is the latest page.
    let before = before.unwrap_or(i64::MAX.unsigned_abs());
    json!({ "msgId": msg_id::SYNC_MSG, "conv": conv, "before": before, "limit": HISTORY_PAGE })
}

/// SYNC: the messages of `conv` after seq `after`, a catch-up page.
pub fn sync_after(conv: &str, after: u64) -> Value {
    json!({ "msgId": msg_id::SYNC_MSG, "conv": conv, "after": after, "limit": CATCH_UP_PAGE })
}

/// READ: we have read `conv` up to `seq`.
pub fn read(conv: &str, seq: u64) -> Value {
    json!({ "msgId": msg_id::READ_MSG, "conv": conv, "seq": seq })
}

/// CONVS: every conversation, with its last and read seq.
pub fn convs() -> Value {
    json!({ "msgId": msg_id::CONVS_MSG })
}

/// Client ids for chats: a prefix unique to this process and moment, then a
/// counter, e.g. `m3k2x9-4f1a-17`. The server wants a cid unique per
/// sender; a process never repeats one, and two processes of one user
/// differ in the prefix (start time in ms and process id).
#[derive(Debug)]
pub struct CidGen {
    prefix: String,
    next: std::sync::atomic::AtomicU64,
}

impl CidGen {
    /// A generator with a fresh prefix.
    pub fn new() -> CidGen {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        CidGen {
            prefix: format!("{millis:x}-{:x}", std::process::id()),
            next: std::sync::atomic::AtomicU64::new(1),
        }
    }

    /// The next cid (at most 64 printable ASCII characters).
    pub fn next(&self) -> String {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("{}-{n:x}", self.prefix)
    }
}

/// Adds the sender's `uid` when logged in.
fn with_uid(mut v: Value, uid: Option<i64>) -> Value {
    if let Some(uid) = uid {
        v["uid"] = uid.into();
    }
    v
}

/// The name of a request msgId as the user types it, for error messages.
pub fn command_name(request_msg_id: i64) -> &'static str {
    match request_msg_id {
        msg_id::LOGIN_MSG => "login",
        msg_id::LOGOUT_MSG => "logout",
        msg_id::REG_MSG => "register",
        msg_id::ACOUNT_FRESH_MSG => "refresh",
        msg_id::ONE_CHAT_MSG => "chat",
        msg_id::ADD_FRIEND_MSG => "addFriend",
        msg_id::CREATE_GROUP_MSG => "createGroup",
        msg_id::ADD_GROUP_MSG => "joinGroup",
        msg_id::GROUP_CHAT_MSG => "groupChat",
        msg_id::DEL_FRIEND_MSG => "delFriend",
        msg_id::QUIT_GROUP_MSG => "quitGroup",
        msg_id::DISMISS_GROUP_MSG => "dismissGroup",
        msg_id::GROUP_MEMBERS_MSG => "groupMembers",
        msg_id::PING_MSG => "ping",
        msg_id::SYNC_MSG => "history",
        msg_id::CONVS_MSG => "convs",
        msg_id::READ_MSG => "read",
        _ => "request",
    }
}
