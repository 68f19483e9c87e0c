//! The fast path of a chat (9) or group chat (13): the request read
//! straight from its bytes, and the stored body spliced from them, with
//! no `serde_json::Map` in between.
//!
//! # Why it is exact
//!
//! The general path parses the object into a `Map` (a `BTreeMap`: keys
//! sorted, the last of duplicate keys kept), checks it ([`super::parse`]),
//! and encodes it again with the sender's identity stamped in
//! (`service::chat`). serde_json writes back a string, an integer, `true`,
//! `false` and `null` with exactly the bytes it read when those bytes are
//! already in its own form. [`read`] accepts an object only when every
//! value is:
//!
//! - a string whose escapes are the ones serde_json writes (`\"`, `\\`,
//!   `\n`, `\r`, `\t`, `\b`, `\f`; no `\/` and no `\u`);
//! - an integer `-?[1-9][0-9]*` or `0`, at most 18 digits (no `-0`, no
//!   fraction or exponent);
//! - `true`, `false` or `null`;
//!
//! every key is a string without escapes, the object holds at most
//! [`MAX_FIELDS`] fields, and the fields the request needs pass the same
//! checks as [`super::parse`] gives them. Anything else (a nested value,
//! another escape, an error of any kind) makes [`read`] return `None`, and
//! the caller takes the general path, which then gives the one answer
//! there is. The body is the fields sorted by key, one per key (the last),
//! written compactly: what serde_json writes for the `Map`. The property
//! tests (`chat_frame/tests.rs`) check both paths against each other on
//! random objects, valid and not.

use serde_json::{Map, Value};

use super::msg_id;
use super::request::{self, Request};

/// The most fields an object may have for the fast path; a larger one
/// takes the general path.
pub const MAX_FIELDS: usize = 16;

/// One field: its key (no escapes) and its value's bytes as they came.
type Field<'a> = (&'a str, &'a [u8]);

/// A chat request read by [`read`]; it borrows the bytes it came in.
#[derive(Debug, Clone)]
pub struct ChatFrame<'a> {
    /// Sorted by key, one per key: the one that came last.
    fields: [Field<'a>; MAX_FIELDS],
    count: usize,
    request: Request,
}

impl<'a> ChatFrame<'a> {
    /// The request, as [`super::parse`] gives it for the same object.
    pub fn request(&self) -> &Request {
        &self.request
    }

    /// The fields, sorted by key, one per key.
    fn fields(&self) -> &[Field<'a>] {
        self.fields.get(..self.count).unwrap_or_default()
    }

    /// The object as the general path holds it, for a request that must
    /// wait as one (a chat sent while a login is under way); `None` cannot
    /// happen for an object [`read`] accepted. Any thread.
    pub fn to_object(&self) -> Option<Map<String, Value>> {
        let mut obj = Map::new();
        for &(key, raw) in self.fields() {
            obj.insert(key.to_owned(), serde_json::from_slice(raw).ok()?);
        }
        Some(obj)
    }

    /// The body the log stores: the object without `conv`, `seq` and `ts`
    /// ([`super::LOG_FIELDS`]), with `id_field` (`from` or `uid`) set to
    /// `uid` and `username` to `name`, encoded compactly with sorted keys.
    /// Byte for byte what the general path writes; any thread.
    pub fn stamped(&self, id_field: &str, uid: i64, name: &str) -> String {
        let mut uid_text = itoa::Buffer::new();
        let uid_raw = uid_text.format(uid).as_bytes();
        let name_raw = encode_str(name);
        let stamps: [Field<'_>; 2] = if id_field < "username" {
            [(id_field, uid_raw), ("username", name_raw.as_bytes())]
        } else {
            [("username", name_raw.as_bytes()), (id_field, uid_raw)]
        };
        let own =
            self.fields().iter().copied().filter(|(k, _)| {
                *k != id_field && *k != "username" && !super::LOG_FIELDS.contains(k)
            });
        let size: usize = self
            .fields()
            .iter()
            .map(|(k, v)| k.len() + v.len() + 4)
            .sum();
        let mut out = Vec::with_capacity(size + name_raw.len() + 48);
        out.push(b'{');
        let mut stamps = stamps.iter().copied().peekable();
        let mut first = true;
        let mut put = |out: &mut Vec<u8>, (k, v): Field<'_>| {
            if !first {
                out.push(b',');
            }
            first = false;
            out.push(b'"');
            out.extend_from_slice(k.as_bytes());
            out.extend_from_slice(b"\":");
            out.extend_from_slice(v);
        };
        for field in own {
            while let Some(&stamp) = stamps.peek() {
                if stamp.0 > field.0 {
                    break;
                }
                put(&mut out, stamp);
                stamps.next();
            }
            put(&mut out, field);
        }
        for stamp in stamps {
            put(&mut out, stamp);
        }
        out.push(b'}');
        // Every piece is UTF-8: the input was checked, the stamps are ours.
        String::from_utf8(out).unwrap_or_default()
    }
}

/// The general path's body, which [`ChatFrame::stamped`] matches: `obj`
/// without `conv`, `seq` and `ts`, with `id_field` set to `uid` and
/// `username` to `name`, encoded by serde_json. Any thread.
pub fn stamp_object(mut obj: Map<String, Value>, id_field: &str, uid: i64, name: &str) -> String {
    super::strip_log_fields(&mut obj);
    obj.insert(id_field.to_owned(), uid.into());
    obj.insert("username".to_owned(), name.into());
    Value::Object(obj).to_string()
}

/// A string as serde_json writes it.
fn encode_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

/// Reads a chat or group chat straight from the bytes of one complete
/// object (as [`super::codec::Frame::bytes`] gives them). `None`: not a
/// chat, or not one the fast path is sure of; take the general path.
/// Any thread.
pub fn read(bytes: &[u8]) -> Option<ChatFrame<'_>> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut fields: [Field<'_>; MAX_FIELDS] = [("", b""); MAX_FIELDS];
    let count = Lexer { text, at: 0 }.object(&mut fields)?;
    let list = fields.get_mut(..count)?;
    // Sorted, and of equal keys only the last: what a `BTreeMap` keeps.
    list.sort_by(|a, b| a.0.cmp(b.0));
    let count = dedup_keep_last(list);
    let mut frame = ChatFrame {
        fields,
        count,
        request: Request::Ping,
    };
    frame.request = chat_request(frame.fields())?;
    Some(frame)
}

/// Keeps, of each run of equal keys in a stably sorted list, its last
/// element, moved to the front; returns how many are kept.
fn dedup_keep_last(list: &mut [Field<'_>]) -> usize {
    let mut kept = 0;
    for i in 0..list.len() {
        let last_of_run = list.get(i + 1).is_none_or(|next| next.0 != list[i].0);
        if last_of_run {
            list.swap(kept, i);
            kept += 1;
        }
    }
    kept
}

/// The request a chat's fields make, with the checks of [`super::parse`];
/// `None` for any other msgId, and for any error (the general path
/// reports it).
fn chat_request(fields: &[Field<'_>]) -> Option<Request> {
    let get = |key: &str| {
        fields
            .binary_search_by(|f| f.0.cmp(key))
            .ok()
            .and_then(|i| fields.get(i))
            .map(|f| f.1)
            .filter(|raw| *raw != b"null")
    };
    let msg_id = integer(get("msgId")?)?;
    // The text fields: `msg` a string, `username` and `time` strings if
    // present.
    let text = |raw: Option<&[u8]>| raw.is_none_or(|r| r.first() == Some(&b'"'));
    if get("msg").is_none() || !text(get("msg")) || !text(get("username")) || !text(get("time")) {
        return None;
    }
    let cid = match get("cid") {
        None => None,
        Some(raw) => Some(
            plain_string(raw)
                .filter(|s| request::valid_cid(s))?
                .to_owned(),
        ),
    };
    match msg_id {
        msg_id::ONE_CHAT_MSG => Some(Request::OneChat {
            from: opt_id(get("from"))?,
            to: opt_id(get("to"))??,
            cid,
        }),
        msg_id::GROUP_CHAT_MSG => Some(Request::GroupChat {
            uid: opt_id(get("uid"))?,
            gid: opt_id(get("gid"))??,
            cid,
        }),
        _ => None,
    }
}

/// An optional id: `Some(None)` when absent, `Some(Some(id))` for a
/// positive integer, `None` (an error) for anything else.
fn opt_id(raw: Option<&[u8]>) -> Option<Option<i64>> {
    match raw {
        None => Some(None),
        Some(raw) => integer(raw).filter(|&id| id > 0).map(Some),
    }
}

/// An integer value's bytes as a number (only the form [`read`] accepts).
fn integer(raw: &[u8]) -> Option<i64> {
    std::str::from_utf8(raw).ok()?.parse().ok()
}

/// A string value without escapes, unquoted; `None` for anything else.
fn plain_string(raw: &[u8]) -> Option<&str> {
    let inner = raw.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if inner.contains(&b'\\') {
        return None;
    }
    std::str::from_utf8(inner).ok()
}

/// The grammar of one flat JSON object, over text already known to be
/// UTF-8; every method returns `None` for what the fast path does not
/// take.
struct Lexer<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Lexer<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, b: u8) -> Option<()> {
        self.skip_ws();
        (self.peek() == Some(b)).then(|| self.at += 1)
    }

    /// The whole text is one object of flat fields; returns their count.
    fn object(mut self, fields: &mut [Field<'a>; MAX_FIELDS]) -> Option<usize> {
        self.eat(b'{')?;
        let mut count = 0;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.at += 1;
        } else {
            loop {
                self.skip_ws();
                let key = self.string()?;
                let key = key.get(1..key.len() - 1)?;
                if key.contains('\\') {
                    return None;
                }
                self.eat(b':')?;
                self.skip_ws();
                let value = self.value()?;
                *fields.get_mut(count)? = (key, value.as_bytes());
                count += 1;
                self.skip_ws();
                match self.peek()? {
                    b',' => self.at += 1,
                    b'}' => {
                        self.at += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.skip_ws();
        (self.at == self.text.len()).then_some(count)
    }

    /// A value in serde_json's own form, as its text.
    fn value(&mut self) -> Option<&'a str> {
        match self.peek()? {
            b'"' => self.string(),
            b't' => self.word("true"),
            b'f' => self.word("false"),
            b'n' => self.word("null"),
            b'-' | b'0'..=b'9' => self.integer(),
            _ => None,
        }
    }

    fn word(&mut self, word: &str) -> Option<&'a str> {
        let rest = self.text.get(self.at..)?;
        rest.starts_with(word).then(|| {
            self.at += word.len();
            self.text
                .get(self.at - word.len()..self.at)
                .unwrap_or_default()
        })
    }

    /// `-?(0|[1-9][0-9]*)`, at most 18 digits, not `-0`, not followed by
    /// a fraction or an exponent.
    fn integer(&mut self) -> Option<&'a str> {
        let start = self.at;
        let bytes = self.text.as_bytes();
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        let digits = self.at;
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.at += 1;
        }
        let n = self.at - digits;
        let lead = bytes.get(digits).copied();
        let negative = digits > start;
        if n == 0 || n > 18 || (lead == Some(b'0') && (n > 1 || negative)) {
            return None;
        }
        if matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        self.text.get(start..self.at)
    }

    /// A string with only the escapes serde_json writes, quotes included.
    fn string(&mut self) -> Option<&'a str> {
        let start = self.at;
        if self.peek() != Some(b'"') {
            return None;
        }
        self.at += 1;
        loop {
            match self.peek()? {
                b'"' => {
                    self.at += 1;
                    return self.text.get(start..self.at);
                }
                b'\\' => {
                    let escaped = self.text.as_bytes().get(self.at + 1).copied()?;
                    if !matches!(escaped, b'"' | b'\\' | b'n' | b'r' | b't' | b'b' | b'f') {
                        return None;
                    }
                    self.at += 2;
                }
                0x00..=0x1f => return None,
                _ => self.at += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests;
