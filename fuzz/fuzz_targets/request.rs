//! Fuzz target: the request parser (`chat::protocol::parse`).
//!
//! The object to parse comes from the input in one of two ways:
//!
//! - when the bytes are a JSON object, that object (so the seed corpus is
//!   plain protocol lines, and libFuzzer's mutations of them count);
//! - otherwise [`arbitrary`] builds one: keys mostly from the protocol's
//!   field names, values of every JSON type, with the integers, lengths and
//!   characters the parser draws lines at (0, negatives, `i64::MAX + 1`,
//!   50/51 characters, control, bidi and invisible characters).
//!
//! Checked: nothing panics; an accepted request has the msgId of the
//! object, positive ids and names within their limits; a refused one has
//! errno 4 or 13 and the msgId when it was an integer, and a reply the
//! server can encode; the object survives the server's path, encoded and
//! decoded again (as serde_json reads the bytes), with the same verdict.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use chat::model::Conv;
use chat::protocol::codec::{decode, encode};
use chat::protocol::request::{
    MAX_GROUP_NAME_CHARS, MAX_PASSWORD_CHARS, MAX_SYNC_LIMIT, MAX_TOKEN_CHARS, MAX_USERNAME_CHARS,
};
use chat::protocol::{errno, parse, Request, SyncFrom};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Number, Value};

/// Field names of the protocol, so that generated objects look like requests.
const KEYS: &[&str] = &[
    "msgId",
    "uid",
    "username",
    "password",
    "to",
    "from",
    "msg",
    "time",
    "fid",
    "gid",
    "groupname",
    "groupdesc",
];

/// How deep generated values nest (serde_json's own limit is 128).
const MAX_DEPTH: u32 = 4;

/// Integers at the parser's edges: msgIds, ids, and the ends of `i64`.
const INTS: &[i64] = &[0, 1, 2, 5, 9, 13, 23, 25, 26, 27, -1, i64::MAX, i64::MIN];

/// Characters the name checks look for, besides plain ASCII.
const CHARS: &[char] = &[
    ' ',
    '\t',
    '\n',
    '\u{0}',
    '\u{7f}',
    '\u{85}',
    '\u{a0}',
    '\u{200b}',
    '\u{200d}',
    '\u{202e}',
    '\u{2066}',
    '\u{feff}',
    '\u{1f600}',
    'é',
    '你',
];

/// A string of 0..=60 characters, mostly ASCII, sometimes exactly at a
/// length limit, with the characters the name checks care about.
fn string(u: &mut Unstructured<'_>) -> arbitrary::Result<String> {
    let len = match u.int_in_range(0..=3u8)? {
        0 => MAX_USERNAME_CHARS,
        1 => MAX_USERNAME_CHARS + 1,
        _ => usize::from(u.int_in_range(0..=12u8)?),
    };
    let mut s = String::new();
    for _ in 0..len {
        let c = match u.int_in_range(0..=7u8)? {
            0 => *u.choose(CHARS)?,
            1 => char::arbitrary(u)?,
            _ => char::from(u.int_in_range(b'a'..=b'z')?),
        };
        s.push(c);
    }
    Ok(s)
}

/// A number: an edge integer, any `i64` or `u64`, or a finite double.
fn number(u: &mut Unstructured<'_>) -> arbitrary::Result<Value> {
    Ok(match u.int_in_range(0..=3u8)? {
        0 => Value::from(*u.choose(INTS)?),
        1 => Value::from(i64::arbitrary(u)?),
        2 => Value::from(u64::arbitrary(u)?),
        _ => Number::from_f64(f64::arbitrary(u)?).map_or(Value::Null, Value::Number),
    })
}

/// Any JSON value, nesting at most `depth` more levels.
fn value(u: &mut Unstructured<'_>, depth: u32) -> arbitrary::Result<Value> {
    let kinds = if depth == 0 { 4 } else { 6 };
    Ok(match u.int_in_range(0..=kinds)? {
        0 => Value::Null,
        1 => Value::Bool(bool::arbitrary(u)?),
        2 | 3 => number(u)?,
        4 => Value::String(string(u)?),
        5 => {
            let n = u.int_in_range(0..=3u8)?;
            let items = (0..n).map(|_| value(u, depth - 1));
            Value::Array(items.collect::<arbitrary::Result<_>>()?)
        }
        _ => Value::Object(object(u, depth - 1)?),
    })
}

/// An object of up to 8 fields, keys mostly the protocol's.
fn object(u: &mut Unstructured<'_>, depth: u32) -> arbitrary::Result<Map<String, Value>> {
    let mut map = Map::new();
    for _ in 0..u.int_in_range(0..=8u8)? {
        let key = if u.ratio(7, 8)? {
            (*u.choose(KEYS)?).to_owned()
        } else {
            string(u)?
        };
        map.insert(key, value(u, depth)?);
    }
    Ok(map)
}

/// The object the input stands for (see the module docs).
fn input_object(data: &[u8]) -> Option<Map<String, Value>> {
    if let Ok(map) = serde_json::from_slice::<Map<String, Value>>(data) {
        return Some(map);
    }
    object(&mut Unstructured::new(data), MAX_DEPTH).ok()
}

/// A name as the parser accepts it: within its length, no control
/// characters, no whitespace at either end.
fn check_name(name: &str, max: usize) {
    let n = name.chars().count();
    assert!((1..=max).contains(&n), "name of {n} characters");
    assert!(!name.chars().any(char::is_control), "control in {name:?}");
    assert_eq!(name.trim(), name, "whitespace around {name:?}");
}

/// What holds for every request the parser accepts.
fn check_request(request: &Request, obj: &Map<String, Value>) {
    assert_eq!(
        Some(request.msg_id()),
        obj.get("msgId").and_then(Value::as_i64)
    );
    if let Some(uid) = request.claimed_uid() {
        assert!(uid > 0, "claimed uid {uid}");
    }
    match request {
        Request::Login {
            uid,
            username,
            password,
        } => {
            assert_ne!(uid.is_some(), username.is_some());
            if let Some(name) = username {
                check_name(name, MAX_USERNAME_CHARS);
            }
            assert!((1..=MAX_PASSWORD_CHARS).contains(&password.chars().count()));
        }
        Request::TokenLogin { token } => {
            assert!((1..=MAX_TOKEN_CHARS).contains(&token.chars().count()));
        }
        Request::ChangePassword { old, new } => {
            for p in [old, new] {
                assert!((1..=MAX_PASSWORD_CHARS).contains(&p.chars().count()));
            }
        }
        Request::Register { username, password } => {
            check_name(username, MAX_USERNAME_CHARS);
            assert!((1..=MAX_PASSWORD_CHARS).contains(&password.chars().count()));
        }
        Request::CreateGroup { name, .. } => check_name(name, MAX_GROUP_NAME_CHARS),
        Request::OneChat { to: id, .. }
        | Request::AddFriend { fid: id, .. }
        | Request::DelFriend { fid: id, .. }
        | Request::JoinGroup { gid: id, .. }
        | Request::GroupChat { gid: id, .. }
        | Request::QuitGroup { gid: id, .. }
        | Request::DismissGroup { gid: id, .. }
        | Request::GroupMembers { gid: id, .. } => assert!(*id > 0, "id {id}"),
        Request::Sync { conv, page, limit } => {
            // The name parsed back names the same conversation.
            assert_eq!(Conv::parse(&conv.to_string()), Some(*conv));
            let at = match page {
                SyncFrom::After(n) | SyncFrom::Before(n) => *n,
            };
            assert!(at >= 0, "sync position {at}");
            assert!((1..=MAX_SYNC_LIMIT).contains(limit), "limit {limit}");
        }
        Request::Typing { conv } => {
            assert_eq!(Conv::parse(&conv.to_string()), Some(*conv));
        }
        Request::Read { conv, seq } => {
            assert_eq!(Conv::parse(&conv.to_string()), Some(*conv));
            assert!(*seq >= 0, "read position {seq}");
        }
        Request::Logout { .. } | Request::Refresh { .. } | Request::Ping | Request::Convs => {}
    }
    // A cid, when accepted, is 1-64 characters, none of them a control.
    if let Some(cid) = request.cid() {
        let n = cid.chars().count();
        assert!((1..=64).contains(&n), "cid of {n} characters");
        assert!(!cid.chars().any(char::is_control), "control in cid {cid:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let Some(obj) = input_object(data) else {
        return;
    };
    let verdict = parse(&obj);
    match &verdict {
        Ok(request) => check_request(request, &obj),
        Err(e) => {
            assert!(
                e.errno == errno::BAD_REQUEST || e.errno == errno::UNKNOWN_MSG,
                "errno {}",
                e.errno
            );
            assert_eq!(e.msg_id, obj.get("msgId").and_then(Value::as_i64));
            assert!(!e.errmsg.is_empty());
            let _ = encode(&e.reply());
        }
    }
    // The server's path: the object as bytes, decoded, then parsed.
    let bytes = encode(&Value::Object(obj.clone()));
    let decoded = decode(&bytes, usize::MAX).map_err(|e| e.to_string());
    let expected = serde_json::from_slice::<Map<String, Value>>(&bytes);
    // serde_json's own reading, which may move a double by one unit in the
    // last place (its default float parsing is not exact).
    let expected = expected.map(|again| Some((again, bytes.len())));
    assert_eq!(decoded, expected.map_err(|e| e.to_string()));
    if let Ok(Some((again, _))) = decoded {
        assert_eq!(parse(&again), verdict);
    }
});
