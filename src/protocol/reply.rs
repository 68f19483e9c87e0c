//! Replies: builders for every server → client message except forwarded chat.
//!
//! Every ack carries `errno` (0 on success) and, on failure, `errmsg`.
//! The shapes of msgIds 2, 4, 6 and 8 are the original's, quirks included;
//! 15 to 34 are ours.
//!
//! # The message log's replies
//!
//! A chat or group chat that carried a `cid` is answered with
//! [`send_ack`] once it is stored, or [`send_failed`] for any error about
//! it (never with an error message, 27). [`sync_ok`] builds its reply as
//! bytes, splicing in the stored messages unparsed; [`convs_ok`] and
//! [`read_ok`] are ordinary acks. Conversation names are [`Conv`]'s
//! `Display` form, which clients treat as opaque.
//!
//! # The nested-string quirk
//!
//! In the login ack ([`login_ok`]) and the refresh ack ([`refresh_ok`]) the
//! original sends `offlinemsgs`, `friends` and `groups` as arrays of
//! **JSON-encoded strings**, and its client parses each string again. So the
//! friends list is
//!
//! ```text
//! "friends":["{\"state\":\"online\",\"uid\":2,\"username\":\"bob\"}"]
//! ```
//!
//! not an array of objects, and a group's `groupusers` are strings inside
//! that string. Each array is left out when empty, as the original does. The
//! group member list of our own [`group_members_ok`] is a plain array of
//! objects.

use serde_json::{json, Value};
use std::io::Write;

use super::msg_id::{self, errno};
use crate::model::{state_str, Conv, ConvState, GroupInfo, MemberInfo, UserInfo};

/// The ack of a request msgId, or `None` when the request has none (chat and
/// group chat, whose failures are reported with [`msg_id::ERROR_MSG`], or
/// with [`send_failed`] when they carry a `cid`) or the msgId is not a
/// request.
pub fn ack_id(request_msg_id: i64) -> Option<i64> {
    let ack = match request_msg_id {
        msg_id::LOGIN_MSG => msg_id::LOGIN_MSG_ACK,
        msg_id::LOGOUT_MSG => msg_id::LOGOUT_MSG_ACK,
        msg_id::REG_MSG => msg_id::REG_MSG_ACK,
        msg_id::ACOUNT_FRESH_MSG => msg_id::ACOUNT_FRESH_ACK,
        msg_id::ADD_FRIEND_MSG => msg_id::ADD_FRIEND_ACK,
        msg_id::CREATE_GROUP_MSG => msg_id::CREATE_GROUP_ACK,
        msg_id::ADD_GROUP_MSG => msg_id::ADD_GROUP_ACK,
        msg_id::DEL_FRIEND_MSG => msg_id::DEL_FRIEND_ACK,
        msg_id::QUIT_GROUP_MSG => msg_id::QUIT_GROUP_ACK,
        msg_id::DISMISS_GROUP_MSG => msg_id::DISMISS_GROUP_ACK,
        msg_id::GROUP_MEMBERS_MSG => msg_id::GROUP_MEMBERS_ACK,
        msg_id::PING_MSG => msg_id::PONG_MSG,
        msg_id::SYNC_MSG => msg_id::SYNC_ACK,
        msg_id::CONVS_MSG => msg_id::CONVS_ACK,
        msg_id::READ_MSG => msg_id::READ_ACK,
        msg_id::CHANGE_PASSWORD_MSG => msg_id::CHANGE_PASSWORD_ACK,
        _ => return None,
    };
    Some(ack)
}

/// The reply to a failed request: its own ack (see [`ack_id`]) with `errno`
/// and `errmsg`, or else an [`error_msg`] naming the request in `req`.
///
/// Every failure after the codec goes through here (bad fields, not logged
/// in, forbidden, not found, conflicts and storage errors alike), through
/// [`failure_for`] when the request may be a chat with a `cid`.
pub fn failure(request_msg_id: Option<i64>, errno: i64, errmsg: &str) -> Value {
    match request_msg_id.and_then(ack_id) {
        Some(ack) => json!({ "msgId": ack, "errno": errno, "errmsg": errmsg }),
        None => error_msg(errno, errmsg, request_msg_id),
    }
}

/// [`failure`], except that a chat or group chat that carried a `cid`
/// (see [`Request::cid`](super::Request::cid)) is answered with
/// [`send_failed`] for that cid. The server's one call for any failure of a
/// parsed request.
pub fn failure_for(
    request_msg_id: Option<i64>,
    cid: Option<&str>,
    errno: i64,
    errmsg: &str,
) -> Value {
    match cid {
        Some(cid) => send_failed(cid, errno, errmsg),
        None => failure(request_msg_id, errno, errmsg),
    }
}

/// An [`msg_id::ERROR_MSG`]: `errno`, `errmsg`, and `req` (the request's
/// msgId) when it is known.
pub fn error_msg(errno: i64, errmsg: &str, req: Option<i64>) -> Value {
    let mut v = json!({ "msgId": msg_id::ERROR_MSG, "errno": errno, "errmsg": errmsg });
    if let Some(req) = req {
        v["req"] = req.into();
    }
    v
}

/// A successful ack with no fields besides `msgId` and `errno: 0`.
pub fn ok(ack_msg_id: i64) -> Value {
    json!({ "msgId": ack_msg_id, "errno": errno::OK })
}

/// The successful login ack (msgId 2): `uid`, `username`, and, each only
/// when non-empty, `offlinemsgs` (the stored chat objects, as the JSON text
/// they were stored as), `friends` and `groups` (JSON-encoded strings, see
/// the module docs). `groups` should carry their members.
pub fn login_ok(
    uid: i64,
    username: &str,
    offline_msgs: Vec<String>,
    friends: &[UserInfo],
    groups: &[GroupInfo],
) -> Value {
    let mut v = account(msg_id::LOGIN_MSG_ACK, uid, username, friends, groups);
    // The original client prints `sysmsg` on success.
    v["sysmsg"] = "login success".into();
    if !offline_msgs.is_empty() {
        v["offlinemsgs"] = offline_msgs.into();
    }
    v
}

/// The successful refresh ack (msgId 8): as [`login_ok`] without offline
/// messages.
pub fn refresh_ok(uid: i64, username: &str, friends: &[UserInfo], groups: &[GroupInfo]) -> Value {
    account(msg_id::ACOUNT_FRESH_ACK, uid, username, friends, groups)
}

fn account(
    ack: i64,
    uid: i64,
    username: &str,
    friends: &[UserInfo],
    groups: &[GroupInfo],
) -> Value {
    let mut v = json!({ "msgId": ack, "errno": errno::OK, "uid": uid, "username": username });
    if !friends.is_empty() {
        v["friends"] = friends.iter().map(friend_string).collect();
    }
    if !groups.is_empty() {
        v["groups"] = groups.iter().map(group_string).collect();
    }
    v
}

/// `{"uid","username","state"}`, encoded as a string.
fn friend_string(u: &UserInfo) -> Value {
    json!({ "uid": u.id, "username": u.name, "state": state_str(u.online) })
        .to_string()
        .into()
}

/// `{"gid","groupname","groupdesc","groupusers":[member strings]}`, encoded
/// as a string.
fn group_string(g: &GroupInfo) -> Value {
    let users: Vec<Value> = g
        .members
        .iter()
        .map(|m| member(m).to_string().into())
        .collect();
    json!({ "gid": g.id, "groupname": g.name, "groupdesc": g.desc, "groupusers": users })
        .to_string()
        .into()
}

/// `{"uid","username","state","grouprole"}` as an object.
fn member(m: &MemberInfo) -> Value {
    json!({
        "uid": m.id,
        "username": m.name,
        "state": state_str(m.online),
        "grouprole": m.role.as_str(),
    })
}

/// The successful register ack (msgId 6), with the new account's `uid`.
///
/// Carries `sysmsg`: the original client reads it as a string on success and
/// aborts when it is missing.
pub fn register_ok(uid: i64, username: &str) -> Value {
    json!({
        "msgId": msg_id::REG_MSG_ACK,
        "errno": errno::OK,
        "uid": uid,
        "username": username,
        "sysmsg": format!("{username} registered"),
    })
}

/// `ack` with the resume token `token`, when there is one (a server
/// without a token key issues none): the successful login ack (2) and
/// change-password ack (38) carry it.
pub fn with_token(mut ack: Value, token: Option<String>) -> Value {
    if let Some(token) = token {
        ack["token"] = token.into();
    }
    ack
}

/// The successful change-password ack (msgId 38).
pub fn password_changed() -> Value {
    ok(msg_id::CHANGE_PASSWORD_ACK)
}

/// The successful logout ack (msgId 4).
pub fn logout_ok() -> Value {
    ok(msg_id::LOGOUT_MSG_ACK)
}

/// The successful delete-friend ack (msgId 15), naming the former friend.
pub fn del_friend_ok(fid: i64) -> Value {
    json!({ "msgId": msg_id::DEL_FRIEND_ACK, "errno": errno::OK, "fid": fid })
}

/// The successful add-friend ack (msgId 16), naming the new friend.
pub fn add_friend_ok(fid: i64) -> Value {
    json!({ "msgId": msg_id::ADD_FRIEND_ACK, "errno": errno::OK, "fid": fid })
}

/// The successful create-group ack (msgId 17), with the new group's `gid`.
pub fn create_group_ok(gid: i64, groupname: &str) -> Value {
    json!({
        "msgId": msg_id::CREATE_GROUP_ACK,
        "errno": errno::OK,
        "gid": gid,
        "groupname": groupname,
    })
}

/// The successful join-group ack (msgId 18).
pub fn join_group_ok(gid: i64) -> Value {
    gid_ack(msg_id::ADD_GROUP_ACK, gid)
}

/// The successful quit-group ack (msgId 20).
pub fn quit_group_ok(gid: i64) -> Value {
    gid_ack(msg_id::QUIT_GROUP_ACK, gid)
}

/// The successful dismiss-group ack (msgId 22).
pub fn dismiss_group_ok(gid: i64) -> Value {
    gid_ack(msg_id::DISMISS_GROUP_ACK, gid)
}

fn gid_ack(ack: i64, gid: i64) -> Value {
    json!({ "msgId": ack, "errno": errno::OK, "gid": gid })
}

/// The group-members ack (msgId 24): `gid` and `members`, an array of
/// `{"uid","username","state","grouprole"}` objects (not strings).
pub fn group_members_ok(gid: i64, members: &[MemberInfo]) -> Value {
    let members: Vec<Value> = members.iter().map(member).collect();
    json!({
        "msgId": msg_id::GROUP_MEMBERS_ACK,
        "errno": errno::OK,
        "gid": gid,
        "members": members,
    })
}

/// The reply to a ping (msgId 26).
pub fn pong() -> Value {
    ok(msg_id::PONG_MSG)
}

/// The send ack (msgId 28) of a stored chat or group chat: the client's
/// `cid`, and where the message sits in the log (`conv`, `seq`) with the
/// server's time of storing it (`ts`, ms since the Unix epoch). A retry
/// of the same cid gets the same three values again.
pub fn send_ack(cid: &str, conv: Conv, seq: i64, ts: i64) -> Value {
    json!({
        "msgId": msg_id::SEND_ACK,
        "errno": errno::OK,
        "cid": cid,
        "conv": conv.to_string(),
        "seq": seq,
        "ts": ts,
    })
}

/// A failed send (msgId 28): any error about a chat or group chat that
/// carried `cid`, in place of the [`msg_id::ERROR_MSG`] a chat without a
/// cid gets.
pub fn send_failed(cid: &str, errno: i64, errmsg: &str) -> Value {
    json!({ "msgId": msg_id::SEND_ACK, "errno": errno, "errmsg": errmsg, "cid": cid })
}

/// The sync ack (msgId 30), encoded and ending in `\n` like
/// [`codec::encode`](super::codec::encode)'s output, keys sorted as there:
/// `{"conv":…,"errno":0,"more":false,"msgId":30,"msgs":[m1,m2,…]}`.
///
/// Each of `msgs` is one stored message object exactly as it is delivered
/// (compact JSON, possibly ending in whitespace such as the codec's
/// `\n`, which is dropped); they are spliced in as they are, not parsed
/// again. An element that is only whitespace is skipped, as it would make
/// the array invalid. `more` tells whether the log holds further messages
/// in the direction the sync asked for.
pub fn sync_ok(conv: Conv, msgs: &[Vec<u8>], more: bool) -> Vec<u8> {
    const HEAD_BYTES: usize = 64;
    let body: usize = msgs.iter().map(|m| m.len() + 1).sum();
    let mut out = Vec::with_capacity(HEAD_BYTES + body);
    // A conversation's name is ASCII letters, digits and '-': it needs no
    // escaping. Writing to a Vec cannot fail.
    let _ = write!(
        out,
        r#"{{"conv":"{conv}","errno":{},"more":{more},"msgId":{},"msgs":["#,
        errno::OK,
        msg_id::SYNC_ACK
    );
    let mut first = true;
    for m in msgs {
        let m = m.trim_ascii();
        if m.is_empty() {
            continue;
        }
        if !first {
            out.push(b',');
        }
        out.extend_from_slice(m);
        first = false;
    }
    out.extend_from_slice(b"]}\n");
    out
}

/// The conversations ack (msgId 32) for user `me`: one entry per
/// conversation, `{"conv","kind":"user","peer","last_seq","read_seq"}` for
/// a one-to-one conversation (`peer`: the other participant, `me` in a
/// conversation with oneself) and `{"conv","kind":"group","gid",…}` for a
/// group. A one-to-one conversation `me` is not part of belongs to someone
/// else and is left out.
pub fn convs_ok(me: i64, convs: &[ConvState]) -> Value {
    let convs: Vec<Value> = convs.iter().filter_map(|c| conv_entry(me, c)).collect();
    json!({ "msgId": msg_id::CONVS_ACK, "errno": errno::OK, "convs": convs })
}

fn conv_entry(me: i64, c: &ConvState) -> Option<Value> {
    let mut v = json!({
        "conv": c.conv.to_string(),
        "kind": c.conv.kind(),
        "last_seq": c.last_seq,
        "read_seq": c.read_seq,
        "unread": unread(c),
    });
    match c.conv {
        Conv::Direct { .. } => v["peer"] = c.conv.other(me)?.into(),
        Conv::Group(gid) => v["gid"] = gid.into(),
    }
    Some(v)
}

/// The read ack (msgId 34): the user's read position in `conv` after the
/// request (it only moves forward, and never past the last message).
pub fn read_ok(conv: Conv, seq: i64) -> Value {
    json!({
        "msgId": msg_id::READ_ACK,
        "errno": errno::OK,
        "conv": conv.to_string(),
        "seq": seq,
    })
}

/// Messages of `c` after the user's read position (and their join): the
/// same in every session, as the position is the user's.
pub fn unread(c: &ConvState) -> i64 {
    (c.last_seq - c.read_seq.max(c.joined_seq)).max(0)
}

/// A read receipt (msgId 35, pushed): `uid` has read `conv` up to `seq`.
pub fn receipt(conv: Conv, uid: i64, seq: i64) -> Value {
    json!({
        "msgId": msg_id::RECEIPT_MSG,
        "conv": conv.to_string(),
        "uid": uid,
        "seq": seq,
    })
}

/// A typing notice (msgId 36, relayed): `uid` is typing in `conv`.
pub fn typing(conv: Conv, uid: i64) -> Value {
    json!({ "msgId": msg_id::TYPING_MSG, "conv": conv.to_string(), "uid": uid })
}

#[cfg(test)]
mod tests;
