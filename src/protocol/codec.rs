//! Framing: turning the byte stream of a connection into JSON objects, and
//! replies back into bytes.
//!
//! # The wire format
//!
//! The C++ original sends every message as one bare JSON object with no
//! delimiter and no length prefix, and assumes one `read()` returns exactly
//! one object. TCP promises no such thing: two messages can arrive in one
//! read, or one message across several. This codec therefore treats the input
//! as a *stream of concatenated JSON values*: whitespace (including newlines)
//! may separate them but is not required, so both the original client and
//! newline-delimited clients work:
//!
//! ```text
//!   {"msgId":1,"uid":1,"password":"x"}{"msgId":25}\n  {"msgId":7}\n
//!   └────────────── value ────────────┘└── value ─┘   └─ value ─┘
//! ```
//!
//! Our own output is one compact object per line ([`encode`]).
//!
//! # How the server uses it
//!
//! The codec works on plain byte slices and keeps no state, so it can sit
//! between `net::Buffer` and the business code the way muduo's
//! `LengthHeaderCodec` does in its chat example:
//!
//! ```
//! use chat::protocol::codec::{decode, DecodeError};
//!
//! let mut input: Vec<u8> = br#"{"msgId":25} {"msgId":7"#.to_vec(); // stands in for Buffer
//! let mut requests = Vec::new();
//! loop {
//!     match decode(&input, 64 * 1024) {
//!         Ok(Some((object, consumed))) => {
//!             requests.push(object);
//!             input.drain(..consumed); // Buffer::retrieve(consumed)
//!         }
//!         Ok(None) => break, // incomplete: wait for more bytes
//!         Err(e) => panic!("send e.reply() and close the connection: {e}"),
//!     }
//! }
//! assert_eq!(requests.len(), 1);
//! assert_eq!(input, br#"{"msgId":7"#); // kept for the next read
//! ```
//!
//! # Incomplete versus invalid
//!
//! As in mini-redis's `Connection`, "not enough bytes yet" (`Ok(None)`) is
//! kept apart from "these bytes can never become a message" ([`DecodeError`]).
//! serde_json reports the first kind as an error whose
//! [`is_eof`](serde_json::Error::is_eof) is true: every prefix of a valid JSON
//! text fails with an end-of-input error, and anything else is a syntax error.
//!
//! # Cost
//!
//! The common case, a whole message in the buffer, is parsed exactly once.
//! A message split across reads is parsed again from its start on each read
//! until it completes; the parse is limited to `max_message` bytes, so a peer
//! that trickles bytes costs at most `max_message` bytes of parsing per read
//! (and the idle timeout bounds how long it can keep that up).

use serde_json::{Deserializer, Map, Value};
use std::fmt;

use super::msg_id::{errno, ERROR_MSG};
use super::reply;

/// Why the bytes at the front of a buffer can never be decoded. Either way the
/// server answers with [`DecodeError::reply`] and closes the connection, since
/// it cannot find where the next message would start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// A value, or the bytes pending without a complete value, exceed the
    /// maximum message size.
    TooLarge,
    /// The bytes are not JSON, or the top-level value is not an object. The
    /// text says what is wrong and where.
    Invalid(String),
}

impl DecodeError {
    /// The `errno` for this error: [`errno::TOO_LARGE`] or [`errno::INVALID_JSON`].
    pub fn errno(&self) -> i64 {
        match self {
            DecodeError::TooLarge => errno::TOO_LARGE,
            DecodeError::Invalid(_) => errno::INVALID_JSON,
        }
    }

    /// The [`ERROR_MSG`] to send before closing the connection. There is no
    /// `req` field: the request's msgId was never read.
    pub fn reply(&self) -> Value {
        reply::error_msg(self.errno(), &self.to_string(), None)
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooLarge => f.write_str("message exceeds the maximum message size"),
            DecodeError::Invalid(why) => write!(f, "invalid JSON: {why}"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A decoded object, and how many bytes of the buffer it used up (whitespace
/// around it included): what [`decode`] returns for a complete message.
pub type Decoded = (Map<String, Value>, usize);

/// The whitespace JSON allows between values (RFC 8259, section 2).
fn is_json_whitespace(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// Decodes the first JSON object at the front of `buf`.
///
/// Returns:
/// - `Ok(Some((object, consumed)))`: a complete object. `consumed` counts the
///   whitespace before it, the object itself and the whitespace after it that
///   is already in `buf`, so a newline-terminated message leaves nothing
///   behind. Remove `consumed` bytes and call again: more may follow.
/// - `Ok(None)`: incomplete (including empty or whitespace only); keep the
///   bytes and call again when more arrive. Whitespace is consumed together
///   with the next object.
///
/// `max_message` limits the size of one object (its whitespace not counted).
///
/// # Errors
///
/// - [`DecodeError::TooLarge`] when the object is longer than `max_message`
///   bytes, when an incomplete object already is, or when more than
///   `max_message` bytes of whitespace are pending (so whitespace cannot
///   grow a buffer without bound).
/// - [`DecodeError::Invalid`] when the bytes are not JSON, or the top-level
///   value is not an object.
pub fn decode(buf: &[u8], max_message: usize) -> Result<Option<Decoded>, DecodeError> {
    let Some(start) = buf.iter().position(|&b| !is_json_whitespace(b)) else {
        return if buf.len() > max_message {
            Err(DecodeError::TooLarge)
        } else {
            Ok(None)
        };
    };
    let rest = &buf[start..];
    // Checking the first byte rejects `[…]`, `"…"`, numbers and garbage at
    // once, without waiting for (or parsing) the whole value.
    if rest[0] != b'{' {
        return Err(DecodeError::Invalid(format!(
            "expected a JSON object, found {} at byte {start}",
            describe_byte(rest[0])
        )));
    }
    // Parse at most `max_message` bytes: a value that does not end inside
    // this window is too large, however long the peer keeps sending.
    let window = &rest[..rest.len().min(max_message)];
    let mut values = Deserializer::from_slice(window).into_iter::<Map<String, Value>>();
    match values.next() {
        Some(Ok(object)) => {
            let end = start + values.byte_offset();
            let trailing = buf[end..]
                .iter()
                .take_while(|&&b| is_json_whitespace(b))
                .count();
            Ok(Some((object, end + trailing)))
        }
        Some(Err(e)) if e.is_eof() => {
            if rest.len() > max_message {
                Err(DecodeError::TooLarge)
            } else {
                Ok(None)
            }
        }
        Some(Err(e)) => Err(DecodeError::Invalid(e.to_string())),
        // Unreachable: the window starts with `{`. Treat it as "need more".
        None => Ok(None),
    }
}

/// A byte as a reader would want to see it in an error message.
fn describe_byte(b: u8) -> String {
    if b.is_ascii_graphic() {
        format!("'{}'", b as char)
    } else {
        format!("byte 0x{b:02x}")
    }
}

/// Encodes one outgoing message: compact JSON followed by `\n`.
///
/// The original's client parses whatever one `recv` returned and accepts the
/// trailing newline; line-oriented clients can split on it.
pub fn encode(v: &Value) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    encode_into(v, &mut out);
    out
}

/// Appends the encoding of `v` (compact JSON and `\n`) to `out`, to build one
/// write out of several messages without an intermediate `Vec` for each.
pub fn encode_into(v: &Value, out: &mut Vec<u8>) {
    let mark = out.len();
    if serde_json::to_writer(&mut *out, v).is_err() {
        // Unreachable in practice: a `Value` has only string keys and a `Vec`
        // never fails to grow. Never send half an object, though.
        out.truncate(mark);
        let fallback = format!(
            r#"{{"msgId":{ERROR_MSG},"errno":{},"errmsg":"cannot encode reply"}}"#,
            errno::SERVER_ERROR
        );
        out.extend_from_slice(fallback.as_bytes());
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests;
