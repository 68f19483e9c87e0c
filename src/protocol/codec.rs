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
//! The codec works on plain byte slices and sits between `net::Buffer` and
//! the business code the way muduo's `LengthHeaderCodec` does in its chat
//! example. Each connection keeps one [`Decoder`], which remembers how far
//! it has scanned an incomplete message, so the next read goes on from
//! there:
//!
//! ```
//! use chat::protocol::codec::{DecodeError, Decoder};
//!
//! let mut decoder = Decoder::new(); // one per connection
//! let mut input: Vec<u8> = br#"{"msgId":25} {"msgId":7"#.to_vec(); // stands in for Buffer
//! let mut requests = Vec::new();
//! loop {
//!     match decoder.decode(&input, 64 * 1024) {
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
//! input.extend_from_slice(b"}\n"); // the next read; scanning resumes at `}`
//! let (object, consumed) = decoder.decode(&input, 64 * 1024).unwrap().unwrap();
//! assert_eq!((object["msgId"].as_i64(), consumed), (Some(7), input.len()));
//! ```
//!
//! [`decode`] is the same without the memory, for a caller that has a
//! whole buffer at once.
//!
//! # Incomplete versus invalid
//!
//! As in mini-redis's `Connection`, "not enough bytes yet" (`Ok(None)`) is
//! kept apart from "these bytes can never become a message" ([`DecodeError`]).
//! Finding where an object ends is the scanner's job (`codec/scanner.rs`:
//! bracket depth, in-string and escape state); it also refuses at once the
//! bytes that can never be JSON (a bracket of the wrong kind, a control
//! character in a string, a byte no JSON token contains). serde_json then
//! parses the complete object, once, and reports whatever else is wrong
//! with it. So an object that is broken in a subtler way (`{"a" 1`) is
//! reported invalid when it is complete, or too large when it never is.
//!
//! # One rule for whitespace and numbers
//!
//! The same bytes get the same verdict however the reads fall, and the
//! same as the request parser gives to the same kind of value:
//!
//! - **Whitespace** between messages is JSON's own (space, tab, CR, LF);
//!   anything else where a message should start (a BOM, a form feed, a
//!   no-break space) is invalid. At most `max_message` bytes of it may
//!   precede a message, whether the message arrives in the same read or a
//!   later one, and whether the whitespace came with the previous message
//!   (consumed with it) or after it; error texts name no buffer offset
//!   (which would depend on the split).
//! - **Numbers** are read as serde_json reads them: integers that fit
//!   `i64`/`u64` exactly, anything else as a double (rounded, underflow to
//!   0). A number beyond a double's range (`1e309`) cannot be held at all;
//!   like any other unusable field value it costs only its message, errno
//!   4 ([`DecodeError::NumberOutOfRange`]), and the connection stays open,
//!   as it does for `"to": 1e308`. Only bytes that are not JSON close it.
//!
//! # Cost
//!
//! Every byte is scanned once and, when its object is complete, parsed
//! once, however the message was split across reads (a chat's bytes are
//! read once by the fast path instead, `codec/flat.rs`; one whose text
//! holds a `}` is read up to there, then scanned and read: three passes): a 1 MiB message that
//! trickles in one byte per read costs about 2 MiB of work in total, not
//! half a million parses. The scan stops at `max_message` bytes, so an
//! object that never ends costs at most that much before it is refused.

use serde_json::{Map, Value};
use std::fmt;

use scanner::{Scan, Scanner};

use super::msg_id::{errno, ERROR_MSG};
use super::reply;

/// Why the bytes at the front of a buffer cannot be decoded. The server
/// answers with [`DecodeError::reply`]; then, unless [`DecodeError::skip`]
/// says how to step over one bad message, it closes the connection, since
/// it cannot find where the next message would start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    /// A value, or the bytes pending without a complete value, exceed the
    /// maximum message size.
    TooLarge,
    /// The bytes are not JSON, or the top-level value is not an object. The
    /// text says what is wrong and where.
    Invalid(String),
    /// A complete object, JSON by the grammar, with a number too large
    /// for a double (`1e309`), which serde_json cannot hold. As for any
    /// other unusable field value, only this message is refused (errno 4):
    /// remove `consumed` bytes and go on.
    NumberOutOfRange {
        /// The bytes the message took, counted as for a decoded one.
        consumed: usize,
    },
}

impl DecodeError {
    /// The `errno` for this error: [`errno::TOO_LARGE`],
    /// [`errno::INVALID_JSON`], or [`errno::BAD_REQUEST`] for a number out
    /// of range; any thread.
    pub fn errno(&self) -> i64 {
        match self {
            DecodeError::TooLarge => errno::TOO_LARGE,
            DecodeError::Invalid(_) => errno::INVALID_JSON,
            DecodeError::NumberOutOfRange { .. } => errno::BAD_REQUEST,
        }
    }

    /// How many bytes to remove to go on with the next message, when the
    /// error concerns one message only ([`DecodeError::NumberOutOfRange`]);
    /// `None` when the connection cannot go on. Any thread.
    pub fn skip(&self) -> Option<usize> {
        match self {
            DecodeError::NumberOutOfRange { consumed } => Some(*consumed),
            DecodeError::TooLarge | DecodeError::Invalid(_) => None,
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
            DecodeError::NumberOutOfRange { .. } => {
                f.write_str("a number in the message is out of range (beyond ±1.8e308)")
            }
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

/// Decodes the first JSON object at the front of `buf`, from scratch: a
/// [`Decoder`] used once. For a connection, keep a [`Decoder`] instead, so
/// that a message split across reads is not scanned again from its start.
///
/// # Errors
///
/// As [`Decoder::decode`].
pub fn decode(buf: &[u8], max_message: usize) -> Result<Option<Decoded>, DecodeError> {
    Decoder::new().decode(buf, max_message)
}

/// A resumable decoder: what one connection's input has shown so far of
/// the object at the front of its buffer. See the [module docs](self).
///
/// It holds offsets into the caller's buffer, so the caller must keep to
/// one rule: between calls, only *append* to the buffer, except that after
/// `Ok(Some((_, consumed)))` it removes exactly `consumed` bytes from the
/// front, as it does the [`DecodeError::skip`] bytes after that error (the
/// decoder starts on the next message then, remembering only how much
/// whitespace it consumed after the last object). After any other error
/// it may do anything: the decoder starts afresh. [`Decoder::reset`]
/// starts afresh on demand (a buffer that was cleared).
#[derive(Debug, Clone, Default)]
pub struct Decoder {
    /// Whitespace bytes skipped at the front of the buffer, before the
    /// object's `{` (or before whatever comes next).
    skipped: usize,
    /// The scan through the object, once its `{` was found at `skipped`.
    object: Option<Scanner>,
    /// Whitespace consumed together with the previous object (after its
    /// `}`). It precedes the next message as much as `skipped` does, so it
    /// counts toward the same limit: otherwise `{}`, many spaces and `{}`
    /// would pass in one read and be too large when the spaces came later.
    carried: usize,
    /// Bytes looked at over the decoder's life, so that tests can check
    /// that a split message costs the same as a whole one.
    work: u64,
}

impl Decoder {
    /// A decoder at the start of a stream; any thread.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Forgets any partial scan, for a buffer that was emptied or changed
    /// otherwise than by appending; the thread that owns the decoder.
    pub fn reset(&mut self) {
        self.carried = 0;
        self.next_message();
    }

    /// Starts on the next message at the front of the buffer, keeping what
    /// the previous one left behind (`carried`).
    fn next_message(&mut self) {
        self.skipped = 0;
        self.object = None;
    }

    /// Bytes looked at by every call so far (scanning, then parsing a
    /// complete object once); the thread that owns the decoder.
    pub fn work(&self) -> u64 {
        self.work
    }

    /// Decodes the first JSON object at the front of `buf`, going on from
    /// where the previous call on the same buffer stopped; the thread that
    /// owns the decoder (the connection's I/O thread in the server).
    ///
    /// Returns:
    /// - `Ok(Some((object, consumed)))`: a complete object. `consumed`
    ///   counts the whitespace before it, the object itself and the
    ///   whitespace after it that is already in `buf`, so a
    ///   newline-terminated message leaves nothing behind. Remove `consumed`
    ///   bytes and call again: more may follow.
    /// - `Ok(None)`: incomplete (including empty or whitespace only); keep
    ///   the bytes and call again when more arrive. Whitespace is consumed
    ///   together with the next object.
    ///
    /// `max_message` limits the size of one object, and separately the
    /// whitespace before it (see the module docs' one rule for
    /// whitespace).
    ///
    /// # Errors
    ///
    /// - [`DecodeError::TooLarge`] when the object is longer than
    ///   `max_message` bytes, when an incomplete object already is, or when
    ///   more than `max_message` bytes of whitespace precede it, whether or
    ///   not it has started to arrive (so whitespace cannot grow a buffer
    ///   without bound).
    /// - [`DecodeError::Invalid`] when the bytes are not JSON, or the
    ///   top-level value is not an object.
    /// - [`DecodeError::NumberOutOfRange`] for a complete object that is
    ///   JSON but holds a number a double cannot hold; the only error after
    ///   which the stream goes on ([`DecodeError::skip`]).
    pub fn decode(
        &mut self,
        buf: &[u8],
        max_message: usize,
    ) -> Result<Option<Decoded>, DecodeError> {
        let result = self.step(buf, max_message);
        // Whatever was found, the next call starts on a new message unless
        // this one is waiting for more bytes; after a fatal error, afresh.
        match &result {
            Ok(None) => {}
            Ok(Some(_)) | Err(DecodeError::NumberOutOfRange { .. }) => self.next_message(),
            Err(_) => self.reset(),
        }
        result
    }

    /// Finds the first complete object at the front of `buf`, going on
    /// from where the previous call stopped, without parsing it: the fast
    /// paths ([`super::chat_frame`]) read a chat straight from its bytes,
    /// and [`Frame::parse`] is the general path. The same rule for the
    /// buffer as [`Decoder::decode`], whose results and errors this gives
    /// too, except those that only the parse finds (an object that is not
    /// JSON in a subtler way than the scanner sees, a number out of range):
    /// [`Frame::parse`] reports those. The thread that owns the decoder.
    ///
    /// # Errors
    ///
    /// As [`Decoder::decode`], less the parse's.
    pub fn next_frame(
        &mut self,
        buf: &[u8],
        max_message: usize,
    ) -> Result<Option<Frame>, DecodeError> {
        let result = self.scan(buf, max_message);
        match &result {
            Ok(None) => {}
            Ok(Some(_)) => self.next_message(),
            Err(_) => self.reset(),
        }
        result
    }

    /// One call of [`Decoder::decode`], leaving the state to it.
    fn step(&mut self, buf: &[u8], max_message: usize) -> Result<Option<Decoded>, DecodeError> {
        match self.scan(buf, max_message)? {
            Some(frame) => {
                // 3. Parse the whole object, once.
                self.work += frame.len as u64;
                frame.parse(buf).map(Some)
            }
            None => Ok(None),
        }
    }

    /// Steps 1 and 2 of [`Decoder::step`]: skips the whitespace and scans
    /// to the end of the object, leaving the state to the caller.
    fn scan(&mut self, buf: &[u8], max_message: usize) -> Result<Option<Frame>, DecodeError> {
        let resume = self.skipped + self.object.as_ref().map_or(0, Scanner::scanned);
        if buf.len() < resume {
            // The caller broke the rule (the buffer shrank): start again.
            self.reset();
        }
        // 1. Skip whitespace, from where the last call stopped.
        if self.object.is_none() {
            let rest = buf.get(self.skipped..).unwrap_or_default();
            let ws = rest.iter().take_while(|&&b| is_json_whitespace(b)).count();
            self.work += ws as u64;
            self.skipped += ws;
            // One rule, however the bytes were split into reads: more than
            // `max_message` bytes of whitespace before a message are too
            // much, whether or not the message has started arriving.
            if self.carried + self.skipped > max_message {
                return Err(DecodeError::TooLarge);
            }
            let Some(&first) = rest.get(ws) else {
                return Ok(None);
            };
            // Checking the first byte rejects `[…]`, `"…"`, numbers and
            // garbage at once, without waiting for the whole value. (No
            // offset in the text: how much whitespace is still in the
            // buffer depends on how the reads fell.)
            if first != b'{' {
                return Err(DecodeError::Invalid(format!(
                    "expected a JSON object, found {}",
                    describe_byte(first),
                )));
            }
            self.object = Some(Scanner::default());
        }
        let start = self.skipped;
        let object = buf.get(start..).unwrap_or_default();
        // 2. Scan on to the object's end, within `max_message` bytes: an
        // object that does not end inside this window is too large,
        // however long the peer keeps sending.
        let window = &object[..object.len().min(max_message)];
        let scanner = self.object.get_or_insert_with(Scanner::default);
        let before = scanner.scanned();
        let scan = scanner.scan(window);
        self.work += (scanner.scanned() - before) as u64;
        match scan {
            Scan::Complete(len) => Ok(Some(self.complete(buf, start, len))),
            Scan::Incomplete if object.len() > max_message => Err(DecodeError::TooLarge),
            Scan::Incomplete => Ok(None),
            // serde_json names what is wrong with the bytes up to the one
            // the scanner refused.
            Scan::Invalid(at) => Err(match parse_object(&window[..=at]) {
                Err(e) => e,
                Ok(_) => DecodeError::Invalid(format!("unexpected {}", describe_byte(window[at]))),
            }),
        }
    }
}

impl Decoder {
    /// The object of `len` bytes at `start` is whole: takes the whitespace
    /// after it (counted, and carried toward the next message's limit)
    /// and gives its frame. The scan's end, and the flat shortcut's.
    fn complete(&mut self, buf: &[u8], start: usize, len: usize) -> Frame {
        let end = start + len;
        let trailing = buf
            .get(end..)
            .unwrap_or_default()
            .iter()
            .take_while(|&&b| is_json_whitespace(b))
            .count();
        self.work += trailing as u64;
        self.carried = trailing;
        Frame {
            start,
            len,
            consumed: end + trailing,
        }
    }
}

/// Where a complete object lies in the buffer [`Decoder::next_frame`]
/// scanned: its bytes are `buf[start..start + len]`, from `{` to `}`, and
/// `consumed` counts them with the whitespace around them, as
/// [`Decoder::decode`] does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    start: usize,
    len: usize,
    /// The bytes to remove from the front of the buffer once the object
    /// is handled.
    pub consumed: usize,
}

impl Frame {
    /// The object's bytes in the buffer it was found in (empty for
    /// another buffer that is too short); any thread.
    pub fn bytes<'a>(&self, buf: &'a [u8]) -> &'a [u8] {
        buf.get(self.start..self.start + self.len)
            .unwrap_or_default()
    }

    /// The general path: parses the object with serde_json, with the
    /// results and errors of [`Decoder::decode`]; any thread.
    ///
    /// # Errors
    ///
    /// [`DecodeError::Invalid`] and [`DecodeError::NumberOutOfRange`], as
    /// [`Decoder::decode`].
    pub fn parse(&self, buf: &[u8]) -> Result<Decoded, DecodeError> {
        let bytes = self.bytes(buf);
        match parse_object(bytes) {
            Ok(object) => Ok((object, self.consumed)),
            Err(_) if only_huge_numbers(bytes) => Err(DecodeError::NumberOutOfRange {
                consumed: self.consumed,
            }),
            Err(e) => Err(e),
        }
    }
}

/// Whether a complete object that serde_json refused would be fine but for
/// numbers out of a double's range. Runs only on that error path.
fn only_huge_numbers(object: &[u8]) -> bool {
    scanner::without_huge_numbers(object).is_some_and(|fixed| parse_object(&fixed).is_ok())
}

/// Parses the bytes of exactly one object with serde_json.
fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, DecodeError> {
    serde_json::from_slice(bytes).map_err(|e| DecodeError::Invalid(e.to_string()))
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

mod flat;
mod scanner;

pub use flat::Flat;

#[cfg(test)]
mod tests;
