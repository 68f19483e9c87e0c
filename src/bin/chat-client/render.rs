//! Rendering: every [`Incoming`] message as lines of text.
//!
//! One format serves people and scripts. Each line starts with a fixed word
//! or two that says what it is, ids come before names, and text from the
//! network is [`clean`]ed so one message is always one line:
//!
//! ```text
//! registered uid=5 name=alice
//! logged in uid=5 name=alice
//! offline message from 6 (bob) at 2026-05-01 09:30:00: are you there?
//! offline group 3 message from 6 (bob) at 2026-05-01 09:31:00: standup at 10
//! friends: 1
//! friend 6 bob online
//! groups: 1
//! group 3 name=team desc=the team
//! group 3 member 5 alice online creator
//! message from 6 (bob) at 2026-05-01 09:32:00: hello: with a colon
//! group 3 message from 6 (bob) at 2026-05-01 09:33:00: hi all
//! added friend 6
//! error: chat: no such user or group (errno 7): user 99 does not exist
//! sent message to 6 (d5-6 #18): see you
//! history d5-6: 2 messages
//! history d5-6 #17 message from 6 (bob) at 2026-05-01 09:32:00: hello
//! caught up d5-6 #19 message from 6 (bob) at 2026-05-01 09:40:00: still there?
//! conversations: 1
//! conv d5-6 with user 6: last 19, read 17, unread 2
//! ```
//!
//! `docs/client.md` lists every line.

use super::incoming::{
    AccountView, ChatMessage, ConvInfo, ConvPeer, Failure, Friend, Group, GroupMessage, Incoming,
    LogPos, Member, Offline, Reply, Sent, SyncPage, SyncPurpose,
};
use super::request::command_name;
use super::style::{clean, Style};
use chat::protocol::{errno, msg_id};

/// The lines that show `message`.
pub fn render(message: &Incoming, style: &Style) -> Vec<String> {
    match message {
        Incoming::Ack {
            outcome: Ok(reply), ..
        } => reply_lines(reply, style),
        Incoming::Ack {
            outcome: Err(failure),
            ..
        }
        | Incoming::Error(failure) => vec![failure_line(failure, style)],
        Incoming::Chat(m) => vec![chat_line(m, "", style)],
        Incoming::GroupChat(m) => vec![group_line(m, "", style)],
        Incoming::SendAck { cid, outcome, sent } => vec![send_ack_line(cid, outcome, sent, style)],
        Incoming::Receipt { conv, uid, seq } => {
            vec![style.dim(&format!("{uid} has read {} up to {seq}", clean(conv)))]
        }
        Incoming::Typing { conv, uid } => {
            vec![style.dim(&format!("{uid} is typing in {}", clean(conv)))]
        }
        Incoming::Unknown(v) => {
            vec![style.dim(&format!("unrecognised message: {}", clean(&v.to_string())))]
        }
    }
}

fn reply_lines(reply: &Reply, style: &Style) -> Vec<String> {
    let id = |what: &str, id: &Option<i64>| match id {
        Some(id) => format!("{what} {id}"),
        None => what.to_owned(),
    };
    let line = match reply {
        Reply::LoggedIn(view) => return account_lines("logged in", view, style),
        Reply::Refreshed(view) => return account_lines("refreshed", view, style),
        Reply::Members { gid, members } => {
            let mut lines = vec![format!("group {gid} members: {}", members.len())];
            lines.extend(members.iter().map(|m| member_line(*gid, m, style)));
            return lines;
        }
        Reply::Registered(user) => {
            format!("registered uid={} name={}", user.uid, clean(&user.name))
        }
        Reply::LoggedOut => "logged out".to_owned(),
        Reply::PasswordChanged { .. } => {
            "password changed; the saved logins of your other devices are revoked".to_owned()
        }
        Reply::FriendAdded { fid } => id("added friend", fid),
        Reply::FriendDeleted { fid } => id("deleted friend", fid),
        Reply::GroupCreated { gid, name } => format!("created group {gid} name={}", clean(name)),
        Reply::GroupJoined { gid } => id("joined group", gid),
        Reply::GroupQuit { gid } => id("left group", gid),
        Reply::GroupDismissed { gid } => id("dismissed group", gid),
        Reply::Pong => "pong".to_owned(),
        Reply::Synced(page) => return page_lines(page, style),
        Reply::Convs(convs) => {
            let mut lines = vec![style.bold(&format!("conversations: {}", convs.len()))];
            lines.extend(convs.iter().map(conv_line));
            return lines;
        }
        Reply::Read { conv, seq } => format!("read {} up to #{seq}", clean(conv)),
    };
    vec![style.ok(&line)]
}

/// The login or refresh ack: who, the offline messages, then the lists.
fn account_lines(what: &str, view: &AccountView, style: &Style) -> Vec<String> {
    let user = &view.user;
    let mut lines = vec![style.ok(&format!(
        "{what} uid={} name={}",
        user.uid,
        clean(&user.name)
    ))];
    for m in &view.offline {
        lines.push(match m {
            Offline::Chat(m) => chat_line(m, "offline ", style),
            Offline::Group(m) => group_line(m, "offline ", style),
            Offline::Other(raw) => format!("offline message: {}", clean(raw)),
        });
    }
    lines.push(style.bold(&format!("friends: {}", view.friends.len())));
    lines.extend(view.friends.iter().map(|f| friend_line(f, style)));
    lines.push(style.bold(&format!("groups: {}", view.groups.len())));
    for g in &view.groups {
        lines.push(group_head(g));
        lines.extend(g.members.iter().map(|m| member_line(g.gid, m, style)));
    }
    lines
}

/// A chat's SEND_ACK: `sent message to 6 (d5-6 #18): TEXT` once stored,
/// the error against the message otherwise.
fn send_ack_line(
    cid: &str,
    outcome: &Result<LogPos, Failure>,
    sent: &Option<Sent>,
    style: &Style,
) -> String {
    let what = match sent {
        Some(s) if s.request == msg_id::GROUP_CHAT_MSG => format!("group {} message", s.to),
        Some(s) => format!("message to {}", s.to),
        None => format!("message {}", clean(cid)),
    };
    let text = sent.as_ref().map(|s| format!(": {}", clean(&s.text)));
    match outcome {
        Ok(pos) => style.ok(&format!(
            "sent {what} ({} #{}){}",
            clean(&pos.conv),
            pos.seq,
            text.unwrap_or_default()
        )),
        Err(f) => {
            let f = Failure {
                request: sent.as_ref().map(|s| s.request),
                ..f.clone()
            };
            let line = failure_line(&f, &Style { color: false });
            style.error(&format!(
                "{line} [not sent: {what}{}]",
                text.unwrap_or_default()
            ))
        }
    }
}

/// A SYNC page: `history CONV: N messages` and each message marked
/// `history CONV #SEQ`, or, for a catch-up, only the new messages marked
/// `caught up CONV #SEQ`.
fn page_lines(page: &SyncPage, style: &Style) -> Vec<String> {
    let conv = clean(&page.conv);
    let mut lines = Vec::new();
    let mark = match page.purpose {
        SyncPurpose::History => {
            let n = page.msgs.len();
            let mut head = format!(
                "history {conv}: {n} message{}",
                if n == 1 { "" } else { "s" }
            );
            let first = page.msgs.iter().find_map(|m| m.pos().map(|p| p.seq));
            if let (true, Some(first)) = (page.more, first) {
                head.push_str(&format!(" (older: history:{conv}:{first})"));
            }
            lines.push(style.bold(&head));
            "history"
        }
        SyncPurpose::CatchUp => "caught up",
    };
    for m in &page.msgs {
        let prefix = match m.pos() {
            Some(p) => format!("{mark} {} #{} ", clean(&p.conv), p.seq),
            None => format!("{mark} {conv} "),
        };
        lines.push(match m {
            Offline::Chat(m) => chat_line(m, &prefix, style),
            Offline::Group(m) => group_line(m, &prefix, style),
            Offline::Other(raw) => format!("{prefix}message: {}", clean(raw)),
        });
    }
    lines
}

/// `conv d5-6 with user 6: last 19, read 17, unread 2`.
fn conv_line(c: &ConvInfo) -> String {
    let peer = match c.peer {
        ConvPeer::User(uid) => format!(" with user {uid}"),
        ConvPeer::Group(gid) => format!(" of group {gid}"),
        ConvPeer::Other => String::new(),
    };
    format!(
        "conv {}{peer}: last {}, read {}, unread {}",
        clean(&c.conv),
        c.last_seq,
        c.read_seq,
        c.unread()
    )
}

fn friend_line(f: &Friend, style: &Style) -> String {
    format!(
        "friend {} {} {}",
        f.uid,
        clean(&f.name),
        style.state(f.online)
    )
}

fn group_head(g: &Group) -> String {
    format!(
        "group {} name={} desc={}",
        g.gid,
        clean(&g.name),
        clean(&g.desc)
    )
}

fn member_line(gid: i64, m: &Member, style: &Style) -> String {
    format!(
        "group {gid} member {} {} {} {}",
        m.uid,
        clean(&m.name),
        style.state(m.online),
        clean(&m.role)
    )
}

/// `from 6 (bob) at TIME`, leaving out what the sender did not write.
fn sender(
    from: Option<i64>,
    name: &Option<String>,
    time: &Option<String>,
    style: &Style,
) -> String {
    let mut s = match from {
        Some(uid) => format!("from {uid}"),
        None => "from ?".to_owned(),
    };
    if let Some(name) = name {
        s.push_str(&format!(" ({})", clean(name)));
    }
    if let Some(time) = time {
        s.push_str(&style.dim(&format!(" at {}", clean(time))));
    }
    s
}

fn chat_line(m: &ChatMessage, prefix: &str, style: &Style) -> String {
    let head = format!(
        "{prefix}message {}:",
        sender(m.from, &m.name, &m.time, style)
    );
    format!("{} {}", style.chat(&head), clean(&m.text))
}

fn group_line(m: &GroupMessage, prefix: &str, style: &Style) -> String {
    let head = format!(
        "{prefix}group {} message {}:",
        m.gid,
        sender(m.from, &m.name, &m.time, style)
    );
    format!("{} {}", style.group(&head), clean(&m.text))
}

/// `error: REQUEST: PLAIN WORDS (errno N): SERVER'S WORDS`.
pub fn failure_line(f: &Failure, style: &Style) -> String {
    let mut line = String::from("error: ");
    if let Some(request) = f.request {
        line.push_str(command_name(request));
        line.push_str(": ");
    }
    line.push_str(&format!(
        "{} (errno {})",
        errno_text(f.request, f.errno),
        f.errno
    ));
    if !f.errmsg.is_empty() {
        line.push_str(": ");
        line.push_str(&clean(&f.errmsg));
    }
    style.error(&line)
}

/// What an `errno` means, in plain words, for the request that failed.
pub fn errno_text(request: Option<i64>, code: i64) -> &'static str {
    match (request, code) {
        (Some(msg_id::LOGIN_MSG), errno::FAILED) => "no such account or wrong password",
        (Some(msg_id::REG_MSG), errno::FAILED) => "that user name is taken",
        (_, errno::FAILED) => "the request failed",
        (_, errno::ALREADY_ONLINE) => "that account is already logged in elsewhere",
        (Some(msg_id::LOGIN_MSG), errno::CONFLICT) => "you are already logged in",
        (Some(msg_id::ADD_FRIEND_MSG), errno::CONFLICT) => "you are already friends",
        (Some(msg_id::ADD_GROUP_MSG), errno::CONFLICT) => "you are already a member",
        (Some(msg_id::CREATE_GROUP_MSG), errno::CONFLICT) => "a group with that name exists",
        (_, errno::CONFLICT) => "that is already done",
        (_, errno::NOT_LOGGED_IN) => "you are not logged in",
        (_, errno::BAD_REQUEST) => "the server rejected the request's fields",
        (_, errno::UNKNOWN_MSG) => "the server does not support this request",
        (Some(msg_id::DISMISS_GROUP_MSG), errno::FORBIDDEN) => {
            "only the group's creator may dismiss it"
        }
        (Some(msg_id::QUIT_GROUP_MSG), errno::FORBIDDEN) => {
            "the creator cannot leave the group (dismiss it instead)"
        }
        (Some(msg_id::GROUP_CHAT_MSG | msg_id::GROUP_MEMBERS_MSG), errno::FORBIDDEN) => {
            "you are not a member of that group"
        }
        (_, errno::FORBIDDEN) => "you are not allowed to do that",
        (
            Some(msg_id::ADD_FRIEND_MSG | msg_id::DEL_FRIEND_MSG | msg_id::ONE_CHAT_MSG),
            errno::NOT_FOUND,
        ) => "no such user",
        (
            Some(
                msg_id::ADD_GROUP_MSG
                | msg_id::QUIT_GROUP_MSG
                | msg_id::DISMISS_GROUP_MSG
                | msg_id::GROUP_MEMBERS_MSG
                | msg_id::GROUP_CHAT_MSG,
            ),
            errno::NOT_FOUND,
        ) => "no such group",
        (_, errno::NOT_FOUND) => "no such user or group",
        (_, errno::SERVER_ERROR) => "the server could not complete the request",
        (_, errno::TOO_LARGE) => "the message is too large for the server",
        (_, errno::INVALID_JSON) => "the server could not read what we sent",
        (Some(msg_id::ONE_CHAT_MSG | msg_id::GROUP_CHAT_MSG), errno::TOO_MANY) => {
            "too many messages waiting to be stored; send it again in a moment"
        }
        (_, errno::TOO_MANY) => "too many requests at once; try again in a moment",
        _ => "unknown error",
    }
}
