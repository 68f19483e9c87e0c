//! The message log's part of [`incoming`](super): a message's place in the
//! log, 28 SEND_ACK, and the bodies of the SYNC and CONVS replies.

use serde_json::{Map, Value};

use super::{failure, int, text, Incoming, Offline};
use chat::protocol::errno;

/// A message's place in the message log: its conversation, its number in
/// it (gapless, from 1) and the server's time (ms since the epoch).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LogPos {
    /// The conversation, an opaque string (`d2-7`, `g5`, …).
    pub conv: String,
    /// The message's number in the conversation.
    pub seq: u64,
    /// When the server stored it, when it said.
    pub ts: Option<i64>,
}

/// A chat or group chat we sent with a cid and have no SEND_ACK for yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The request's msgId: 9 (chat) or 13 (group chat).
    pub request: i64,
    /// The recipient's uid or the group's gid.
    pub to: i64,
    /// What we wrote.
    pub text: String,
}

/// A SYNC reply: messages of one conversation and whether more exist in the
/// direction asked for.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncPage {
    /// The conversation.
    pub conv: String,
    /// The stored messages, ascending by seq.
    pub msgs: Vec<Offline>,
    /// Further messages exist in that direction.
    pub more: bool,
    /// How to show the page; set by the state from the request it answers
    /// (the reply itself does not say).
    pub purpose: SyncPurpose,
}

/// Why a SYNC was sent, which decides how its page is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SyncPurpose {
    /// `history:conv`: shown whole, marked as history.
    #[default]
    History,
    /// Catching up after a (re)login: only what was not shown yet.
    CatchUp,
}

/// One entry of a CONVS reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConvInfo {
    /// The conversation.
    pub conv: String,
    /// `user` with the peer's uid, or `group` with the gid.
    pub peer: ConvPeer,
    /// The highest seq stored in it.
    pub last_seq: u64,
    /// How far we have read.
    pub read_seq: u64,
}

impl ConvInfo {
    /// Messages not read yet.
    pub fn unread(&self) -> u64 {
        self.last_seq.saturating_sub(self.read_seq)
    }
}

/// Whom a conversation is with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConvPeer {
    /// A one-to-one conversation with this uid.
    User(i64),
    /// A group's conversation.
    Group(i64),
    /// A kind this client does not know.
    Other,
}

/// 28 SEND_ACK; `None` (shown as unrecognised) without a cid.
pub(super) fn send_ack(obj: &Map<String, Value>) -> Option<Incoming> {
    let cid = text(obj, "cid")?;
    let outcome = match int(obj, "errno").unwrap_or(errno::OK) {
        errno::OK => Ok(log_pos(obj)?),
        _ => Err(failure(obj, None)),
    };
    Some(Incoming::SendAck {
        cid,
        outcome,
        sent: None,
    })
}

/// `conv`, `seq` and `ts`, when the object has the first two.
pub(super) fn log_pos(obj: &Map<String, Value>) -> Option<LogPos> {
    Some(LogPos {
        conv: text(obj, "conv")?,
        seq: seq(obj, "seq")?,
        ts: int(obj, "ts"),
    })
}

pub(super) fn conv_info(c: &Map<String, Value>) -> Option<ConvInfo> {
    let peer = match text(c, "kind").as_deref() {
        Some("user") => int(c, "peer").map_or(ConvPeer::Other, ConvPeer::User),
        Some("group") => int(c, "gid").map_or(ConvPeer::Other, ConvPeer::Group),
        _ => ConvPeer::Other,
    };
    Some(ConvInfo {
        conv: text(c, "conv")?,
        peer,
        last_seq: seq(c, "last_seq").unwrap_or(0),
        read_seq: seq(c, "read_seq").unwrap_or(0),
    })
}

/// A sequence number: a non-negative integer.
pub(super) fn seq(obj: &Map<String, Value>, key: &str) -> Option<u64> {
    int(obj, key).and_then(|n| u64::try_from(n).ok())
}
