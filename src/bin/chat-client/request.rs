//! Requests: the JSON object each [`Command`] sends.
//!
//! The objects carry the same fields the original client writes, `uid`,
//! `from`, `username` and `time` included, so a server that still trusts
//! them (the original) works too. Ours takes the identity from the login on
//! the connection and only checks that these fields agree with it.

use serde_json::{json, Value};

use super::clock;
use super::command::{Account, Command};
use chat::protocol::msg_id;

/// The account logged in on this connection, as the login ack named it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The account id.
    pub uid: i64,
    /// The account name.
    pub name: String,
}

/// The request for `command`, or `None` for commands that send nothing
/// (`help`, `quit`) and for a login or register whose password is missing.
///
/// `user` fills the sender fields; before login they are left out.
pub fn build(command: &Command, user: Option<&User>) -> Option<Value> {
    let uid = user.map(|u| u.uid);
    let name = user.map(|u| u.name.as_str());
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
        Command::Refresh => with_uid(json!({ "msgId": msg_id::ACOUNT_FRESH_MSG }), uid),
        Command::Chat { to, text } => {
            let mut v = json!({
                "msgId": msg_id::ONE_CHAT_MSG,
                "to": to,
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
                "gid": gid,
                "msg": text,
                "time": clock::now_local(),
            });
            if let Some(name) = name {
                v["username"] = name.into();
            }
            with_uid(v, uid)
        }
        Command::AddFriend { fid } => {
            with_uid(json!({ "msgId": msg_id::ADD_FRIEND_MSG, "fid": fid }), uid)
        }
        Command::DelFriend { fid } => {
            with_uid(json!({ "msgId": msg_id::DEL_FRIEND_MSG, "fid": fid }), uid)
        }
        Command::CreateGroup { name, desc } => with_uid(
            json!({ "msgId": msg_id::CREATE_GROUP_MSG, "groupname": name, "groupdesc": desc }),
            uid,
        ),
        Command::JoinGroup { gid } => {
            with_uid(json!({ "msgId": msg_id::ADD_GROUP_MSG, "gid": gid }), uid)
        }
        Command::QuitGroup { gid } => {
            with_uid(json!({ "msgId": msg_id::QUIT_GROUP_MSG, "gid": gid }), uid)
        }
        Command::DismissGroup { gid } => with_uid(
            json!({ "msgId": msg_id::DISMISS_GROUP_MSG, "gid": gid }),
            uid,
        ),
        Command::GroupMembers { gid } => with_uid(
            json!({ "msgId": msg_id::GROUP_MEMBERS_MSG, "gid": gid }),
            uid,
        ),
        Command::Ping => json!({ "msgId": msg_id::PING_MSG }),
    };
    Some(v)
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
        _ => "request",
    }
}
