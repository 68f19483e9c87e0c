//! The message log's types: what [`Store::append`](super::Store::append)
//! takes and returns, and what the log's readers get back.
//!
//! # The tables
//!
//! | table | one row per | key | what it holds |
//! |---|---|---|---|
//! | `conversation` | conversation with at least one message | `id` ([`Conv::key`]) | `last_seq`, `last_ts`: the newest message's number and time |
//! | `chatlog` | stored message | `(conv, seq)`; unique `(sender, cid)` (SQLite: rows in append order, both keys unique indexes) | sender, server time, the sender's cid, the message |
//! | `convcursor` | participant of a conversation | `(userid, conv)` | `delivered_seq`, `read_seq`, `joined_seq` |
//!
//! `conversation.last_seq` is the only counter: [`append`](super::Store::append)
//! raises it and inserts the messages it numbered in one transaction, with
//! the row locked, so numbers are gapless and unique whichever process
//! appends, and never go back (pruning old messages leaves the row alone).
//!
//! A `convcursor` row exists for each participant: both users of a
//! one-to-one conversation (created by its first append) and every member
//! of a group (created by `create_group` and `join_group`, deleted by
//! `quit_group` and `dismiss_group`). `joined_seq` is the group's
//! `last_seq` when the member joined: a member reads only what came after
//! (0 for one-to-one conversations and group creators).

use crate::model::Conv;

/// A message to append to the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEntry {
    /// Its conversation.
    pub conv: Conv,
    /// The sender's user id.
    pub sender: i64,
    /// The sender's client id, when the client sent one: a retry with the
    /// same `(sender, cid)` is not appended twice.
    pub cid: Option<String>,
    /// The message as delivered, a JSON object, *without* `conv`, `seq` and
    /// `ts` (the reader adds them; see [`Entry::delivered`]).
    pub body: String,
}

/// Where the log put an entry: its number and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stored {
    /// The conversation.
    pub conv: Conv,
    /// Its number in the conversation, from 1.
    pub seq: i64,
    /// The server's time for it, in milliseconds since the Unix epoch.
    /// Never less than the conversation's previous message's.
    pub ts: i64,
}

/// The outcome of one [`NewEntry`] in [`Store::append`](super::Store::append).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Stored now, under this number.
    New(Stored),
    /// Its `(sender, cid)` was stored before (by an earlier append, or by
    /// an earlier entry of this one): nothing was stored, and this is where
    /// the first one is.
    Duplicate(Stored),
}

impl Appended {
    /// Where the message is, new or not.
    pub fn stored(&self) -> Stored {
        match *self {
            Appended::New(s) | Appended::Duplicate(s) => s,
        }
    }
}

/// A message read back from the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its conversation.
    pub conv: Conv,
    /// Its number in the conversation.
    pub seq: i64,
    /// The sender's user id.
    pub sender: i64,
    /// The server's time, ms since the epoch.
    pub ts: i64,
    /// The sender's client id, if any.
    pub cid: Option<String>,
    /// The stored JSON object, without `conv`, `seq`, `ts`.
    pub body: String,
}

impl Entry {
    /// The message as a recipient receives it: the body with `conv`, `seq`
    /// and `ts` added, and the wire's trailing newline.
    pub fn delivered(&self) -> Vec<u8> {
        delivered(
            &self.body,
            Stored {
                conv: self.conv,
                seq: self.seq,
                ts: self.ts,
            },
        )
    }
}

/// The body of a message with its place in the log added: `{…}` becomes
/// `{…,"conv":"d2-7","seq":17,"ts":1733030000123}\n`. The body is a JSON
/// object the server encoded itself (so it ends with `}`) and holds none of
/// the three fields. Any thread.
pub fn delivered(body: &str, at: Stored) -> Vec<u8> {
    let body = body.trim_end();
    let open = body.strip_suffix('}').unwrap_or(body);
    // One allocation: the tail is written into the room left for it, piece
    // by piece (no `core::fmt`: this runs once per delivered message).
    let mut out = Vec::with_capacity(open.len() + TAIL_ROOM);
    out.extend_from_slice(open.as_bytes());
    // `{}` gets no separating comma.
    if open.trim_end() != "{" {
        out.push(b',');
    }
    let mut n = itoa::Buffer::new();
    out.extend_from_slice(b"\"conv\":\"");
    at.conv.write_name(&mut out);
    out.extend_from_slice(b"\",\"seq\":");
    out.extend_from_slice(n.format(at.seq).as_bytes());
    out.extend_from_slice(b",\"ts\":");
    out.extend_from_slice(n.format(at.ts).as_bytes());
    out.extend_from_slice(b"}\n");
    out
}

/// The longest tail [`delivered`] adds: `,"conv":"` (9), a conversation
/// of two 20-character numbers (42), `","seq":` (8), a 20-character seq,
/// `,"ts":` (6), a 20-character ts, `}` and the newline (2): 107.
const TAIL_ROOM: usize = 107;

/// Which page [`Store::log_page`](super::Store::log_page) reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    /// The oldest `limit` messages with `seq > after`.
    After(i64),
    /// The newest `limit` messages with `seq < before`.
    Before(i64),
}

#[cfg(test)]
mod tests {
    use super::{delivered, Stored};
    use crate::model::Conv;

    #[test]
    fn delivered_adds_the_place_in_the_log() {
        let at = Stored {
            conv: Conv::direct(2, 7).unwrap(),
            seq: 17,
            ts: 1733030000123,
        };
        let out = delivered(r#"{"msgId":9,"msg":"hi"}"#, at);
        assert_eq!(
            out,
            b"{\"msgId\":9,\"msg\":\"hi\",\"conv\":\"d2-7\",\"seq\":17,\"ts\":1733030000123}\n"
        );
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["seq"], 17);
        assert_eq!(
            delivered("{}", at),
            b"{\"conv\":\"d2-7\",\"seq\":17,\"ts\":1733030000123}\n"
        );
    }

    #[test]
    fn the_longest_tail_fits_the_room_kept_for_it() {
        let at = Stored {
            conv: Conv::Direct {
                low: i64::MIN,
                high: i64::MIN,
            },
            seq: i64::MIN,
            ts: i64::MIN,
        };
        let out = delivered("{\"a\":1}", at);
        assert_eq!(out.len() - "{\"a\":1".len(), super::TAIL_ROOM);
        assert_eq!(out.capacity(), out.len(), "one allocation, never grown");
    }
}
