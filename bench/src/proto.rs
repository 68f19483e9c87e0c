//! The few pieces of the chat protocol the bench speaks, and the payload it
//! hides inside each chat message.
//!
//! Message ids are copied from the server's `protocol::msg_id` on purpose:
//! the bench must be able to measure any server that speaks this protocol,
//! the C++ original included, without depending on our server's crate.
//!
//! Requests are written as JSON text directly: the hot path sends millions of
//! chat messages and never needs a `serde_json::Value` for them. Strings that
//! come from the command line (names, passwords) are escaped once, up front.
//!
//! A chat message's `msg` text is `"bench RUN SEQ MICROS"` padded with `x` to
//! the requested size: the run id tells this run's messages from leftovers of
//! an earlier run (offline messages), `SEQ` numbers the stream, and `MICROS`
//! is the send time on the run's clock, so the recipient can time delivery.

use serde_json::Value;
use std::time::{SystemTime, UNIX_EPOCH};

/// `{"msgId":1,"uid","password"}`.
pub const LOGIN_MSG: i64 = 1;
/// Reply to a login.
pub const LOGIN_MSG_ACK: i64 = 2;
/// `{"msgId":3,"uid"}`.
pub const LOGOUT_MSG: i64 = 3;
/// `{"msgId":5,"username","password"}`.
pub const REG_MSG: i64 = 5;
/// Reply to a registration, with the new `uid`.
pub const REG_MSG_ACK: i64 = 6;
/// `{"msgId":7,"uid"}`: asks for the friend and group lists.
pub const ACOUNT_FRESH_MSG: i64 = 7;
/// Reply to a refresh.
pub const ACOUNT_FRESH_ACK: i64 = 8;
/// One-to-one chat.
pub const ONE_CHAT_MSG: i64 = 9;
/// `{"msgId":10,"uid","fid"}`.
pub const ADD_FRIEND_MSG: i64 = 10;
/// `{"msgId":11,"uid","groupname","groupdesc"}`.
pub const CREATE_GROUP_MSG: i64 = 11;
/// `{"msgId":12,"uid","gid"}`.
pub const ADD_GROUP_MSG: i64 = 12;
/// Group chat.
pub const GROUP_CHAT_MSG: i64 = 13;
/// `{"msgId":14,"uid","fid"}` (our server only).
pub const DEL_FRIEND_MSG: i64 = 14;
/// Reply to a friend deletion (our server only).
pub const DEL_FRIEND_ACK: i64 = 15;
/// Reply to adding a friend (our server only).
pub const ADD_FRIEND_ACK: i64 = 16;
/// Reply to creating a group, with its `gid` (our server only).
pub const CREATE_GROUP_ACK: i64 = 17;
/// Reply to joining a group (our server only).
pub const ADD_GROUP_ACK: i64 = 18;
/// An error for a request without an ack of its own (our server only).
pub const ERROR_MSG: i64 = 27;
/// The answer to a chat or group chat that carried a `cid`: stored (with
/// `conv`, `seq`, `ts`) or refused (message log servers only).
pub const SEND_ACK: i64 = 28;
/// `{"msgId":29,"conv","after"|"before","limit"}`: a page of the log.
pub const SYNC_MSG: i64 = 29;
/// Reply to a sync: `conv`, `msgs`, `more`.
pub const SYNC_ACK: i64 = 30;
/// `{"msgId":31}`: the user's conversations.
pub const CONVS_MSG: i64 = 31;
/// Reply to CONVS: `convs` with `conv`, `last_seq`, `read_seq`.
pub const CONVS_ACK: i64 = 32;
/// Most messages one sync page may hold.
pub const SYNC_PAGE_MAX: u64 = 500;

/// First word of every chat text the bench sends.
const MAGIC: &str = "bench";

/// `s` as a JSON string literal, quotes included.
pub fn quote(s: &str) -> String {
    Value::from(s).to_string()
}

/// `{"msgId":5,…}`.
pub fn register(name: &str, password: &str) -> String {
    format!(
        r#"{{"msgId":{REG_MSG},"username":{},"password":{}}}"#,
        quote(name),
        quote(password)
    )
}

/// `{"msgId":1,…}`.
pub fn login(uid: i64, password: &str) -> String {
    format!(
        r#"{{"msgId":{LOGIN_MSG},"uid":{uid},"password":{}}}"#,
        quote(password)
    )
}

/// `{"msgId":1,"token":…}`: a login with the resume token of an earlier
/// login ack.
pub fn login_token(token: &str) -> String {
    format!(r#"{{"msgId":{LOGIN_MSG},"token":{}}}"#, quote(token))
}

/// `{"msgId":3,…}`.
pub fn logout(uid: i64) -> String {
    format!(r#"{{"msgId":{LOGOUT_MSG},"uid":{uid}}}"#)
}

/// `{"msgId":7,…}`.
pub fn refresh(uid: i64) -> String {
    format!(r#"{{"msgId":{ACOUNT_FRESH_MSG},"uid":{uid}}}"#)
}

/// `{"msgId":10,…}` or, when `add` is false, `{"msgId":14,…}`.
pub fn friend(uid: i64, fid: i64, add: bool) -> String {
    let id = if add { ADD_FRIEND_MSG } else { DEL_FRIEND_MSG };
    format!(r#"{{"msgId":{id},"uid":{uid},"fid":{fid}}}"#)
}

/// `{"msgId":11,…}`.
pub fn create_group(uid: i64, name: &str) -> String {
    format!(
        r#"{{"msgId":{CREATE_GROUP_MSG},"uid":{uid},"groupname":{},"groupdesc":"chat-bench"}}"#,
        quote(name)
    )
}

/// `{"msgId":12,…}`.
pub fn join_group(uid: i64, gid: i64) -> String {
    format!(r#"{{"msgId":{ADD_GROUP_MSG},"uid":{uid},"gid":{gid}}}"#)
}

/// `{"msgId":9,…}`; `name_json` is the sender's name already quoted. A
/// `cid` (letters, digits and `-` only: nothing to escape) asks for a
/// SEND_ACK.
pub fn one_chat(
    from: i64,
    name_json: &str,
    to: i64,
    text: &str,
    time: &str,
    cid: Option<&str>,
) -> String {
    let cid = cid_field(cid);
    format!(
        r#"{{"msgId":{ONE_CHAT_MSG},"from":{from},"username":{name_json},"to":{to},"msg":"{text}","time":"{time}"{cid}}}"#
    )
}

/// `{"msgId":13,…}`; `name_json` is the sender's name already quoted; `cid`
/// as in [`one_chat`].
pub fn group_chat(
    uid: i64,
    name_json: &str,
    gid: i64,
    text: &str,
    time: &str,
    cid: Option<&str>,
) -> String {
    let cid = cid_field(cid);
    format!(
        r#"{{"msgId":{GROUP_CHAT_MSG},"uid":{uid},"username":{name_json},"gid":{gid},"msg":"{text}","time":"{time}"{cid}}}"#
    )
}

fn cid_field(cid: Option<&str>) -> String {
    cid.map(|c| format!(r#","cid":"{c}""#)).unwrap_or_default()
}

/// `{"msgId":29,…}`: the messages of `conv` after seq `after`.
pub fn sync_after(conv: &str, after: u64, limit: u64) -> String {
    format!(
        r#"{{"msgId":{SYNC_MSG},"conv":{},"after":{after},"limit":{limit}}}"#,
        quote(conv)
    )
}

/// `{"msgId":31}`.
pub fn convs() -> String {
    format!(r#"{{"msgId":{CONVS_MSG}}}"#)
}

/// A delivered message's place in the log: `conv` and `seq`, when present.
pub fn log_pos(v: &Value) -> Option<(&str, u64)> {
    Some((v.get("conv")?.as_str()?, v.get("seq")?.as_u64()?))
}

/// The numbers a chat text carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Payload {
    /// Which run sent it.
    pub run: u64,
    /// Position in its stream, from 0.
    pub seq: u64,
    /// Send time in microseconds on the run's clock.
    pub sent_us: u64,
}

impl Payload {
    /// The chat text, padded with `x` to at least `size` bytes. Only ASCII
    /// letters, digits and spaces: nothing to escape.
    pub fn encode(&self, size: usize) -> String {
        let mut text = format!("{MAGIC} {} {} {}", self.run, self.seq, self.sent_us);
        if text.len() < size {
            text.push(' ');
            while text.len() < size {
                text.push('x');
            }
        }
        text
    }

    /// Reads a text written by [`Payload::encode`]; `None` for any other text.
    pub fn decode(text: &str) -> Option<Payload> {
        let mut words = text.split(' ');
        if words.next()? != MAGIC {
            return None;
        }
        let mut number = || words.next()?.parse::<u64>().ok();
        Some(Payload {
            run: number()?,
            seq: number()?,
            sent_us: number()?,
        })
    }
}

/// A message's `msgId`, or `None` when it has none.
pub fn msg_id(v: &Value) -> Option<i64> {
    v.get("msgId")?.as_i64()
}

/// A reply's `errno`; a reply without one counts as 0 (success).
pub fn errno(v: &Value) -> i64 {
    v.get("errno").and_then(Value::as_i64).unwrap_or(0)
}

/// A reply's `errmsg` (or the original's `sysmsg`), for error reports.
pub fn errmsg(v: &Value) -> &str {
    v.get("errmsg")
        .or_else(|| v.get("sysmsg"))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// The current UTC time as `YYYY-MM-DD HH:MM:SS`, the `time` field's format.
pub fn wall_clock() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format_utc(secs)
}

/// Seconds since 1970 as `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trips_and_pads() {
        let p = Payload {
            run: 42,
            seq: 7,
            sent_us: 123_456,
        };
        let text = p.encode(64);
        assert_eq!(text.len(), 64);
        assert_eq!(Payload::decode(&text), Some(p));
        assert_eq!(Payload::decode(&p.encode(0)), Some(p));
        assert_eq!(Payload::decode("hello there"), None);
        assert_eq!(Payload::decode("bench 1 x 3"), None);
    }

    #[test]
    fn requests_are_valid_json_with_escaped_strings() {
        let v: Value = serde_json::from_str(&register("a\"b", "p\\w")).expect("json");
        assert_eq!(v["username"], "a\"b");
        assert_eq!(v["password"], "p\\w");
        let text = Payload {
            run: 1,
            seq: 2,
            sent_us: 3,
        }
        .encode(10);
        let v: Value =
            serde_json::from_str(&one_chat(1, &quote("n"), 2, &text, "t", None)).expect("json");
        assert_eq!(v.get("cid"), None);
        assert_eq!(
            (msg_id(&v), v["to"].as_i64()),
            (Some(ONE_CHAT_MSG), Some(2))
        );
        let v: Value =
            serde_json::from_str(&group_chat(1, &quote("n"), 5, &text, "t", Some("r1-0-7")))
                .expect("json");
        assert_eq!(v["gid"], 5);
        assert_eq!(v["cid"], "r1-0-7");
        let v: Value = serde_json::from_str(&sync_after("d1\"2", 7, 500)).expect("json");
        assert_eq!(
            (v["conv"].as_str(), v["after"].as_u64()),
            (Some("d1\"2"), Some(7))
        );
        assert_eq!(
            log_pos(&serde_json::json!({"conv": "g5", "seq": 3})),
            Some(("g5", 3))
        );
        assert_eq!(errno(&v), 0);
    }

    #[test]
    fn utc_formatting() {
        assert_eq!(format_utc(0), "1970-01-01 00:00:00");
        assert_eq!(format_utc(951_782_400), "2000-02-29 00:00:00");
        assert_eq!(format_utc(1_700_000_000), "2023-11-14 22:13:20");
    }
}
