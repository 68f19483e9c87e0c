//! `LengthHeaderCodec`: 4-byte length-prefixed messages, the codec every
//! asio chat example shares (muduo's `examples/asio/chat/codec.h`).
//!
//! TCP delivers a byte stream; a codec sits between the connection's
//! [`Buffer`] and the application and cuts the stream into messages. Each
//! message here is a big-endian `i32` length followed by that many bytes:
//!
//! ```text
//! +--------+-------------------+--------+-----
//! | len=5  | h  e  l  l  o     | len=3  | ...
//! +--------+-------------------+--------+-----
//! ```
//!
//! Install [`LengthHeaderCodec::on_message`] as the server's (or client's)
//! message callback; it calls the string-message callback once per complete
//! message and leaves a partial one in the buffer for the next read. A
//! length that is negative or above the limit is a protocol error: the
//! connection is shut down. [`decode`] keeps the two cases apart: "not
//! enough bytes yet" is `Ok(None)`, a bad length is `Err`.
//!
//! Each example includes this file as its module `codec` and uses only
//! part of it.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Instant;

use net::{Buffer, TcpConnectionPtr};

/// Receives each complete message.
pub type StringMessageCallback = Arc<dyn Fn(&TcpConnectionPtr, String, Instant) + Send + Sync>;

/// Size of the length header.
pub const HEADER_LEN: usize = 4;
/// Largest message accepted, as in muduo's codec.
pub const MAX_MESSAGE: usize = 64 * 1024;

/// A length header that no message may have.
#[derive(Debug, PartialEq, Eq)]
pub struct InvalidLength(pub i32);

/// Takes the next complete message out of `buf`: `Ok(None)` while it is
/// incomplete (nothing is consumed), `Err` for a length no message may have.
pub fn decode(buf: &mut Buffer) -> Result<Option<String>, InvalidLength> {
    let Some(len) = buf.peek_i32() else {
        return Ok(None); // not even a header yet
    };
    let size = usize::try_from(len)
        .ok()
        .filter(|&n| n <= MAX_MESSAGE)
        .ok_or(InvalidLength(len))?;
    let Some(body) = buf.peek().get(HEADER_LEN..HEADER_LEN + size) else {
        return Ok(None); // wait for the rest
    };
    let message = String::from_utf8_lossy(body).into_owned();
    buf.retrieve(HEADER_LEN + size);
    Ok(Some(message))
}

/// The framed bytes of `message`.
pub fn encode(message: &[u8]) -> Vec<u8> {
    let mut buf = Buffer::with_capacity(message.len());
    buf.append(message);
    // The cheap prepend region takes the header without moving the body.
    buf.prepend_i32(i32::try_from(message.len()).unwrap_or(i32::MAX));
    buf.retrieve_all_as_vec()
}

/// The length-header codec. Cheap to clone; share one across connections.
#[derive(Clone)]
pub struct LengthHeaderCodec {
    on_string_message: StringMessageCallback,
}

impl LengthHeaderCodec {
    /// A codec delivering each complete message to `on_string_message`.
    pub fn new(on_string_message: StringMessageCallback) -> Self {
        LengthHeaderCodec { on_string_message }
    }

    /// The message callback to install on the server or client; runs on
    /// the connection's loop.
    pub fn on_message(&self, conn: &TcpConnectionPtr, buf: &mut Buffer, receive_time: Instant) {
        loop {
            match decode(buf) {
                Ok(Some(message)) => (self.on_string_message)(conn, message, receive_time),
                Ok(None) => return,
                Err(InvalidLength(len)) => {
                    log::error!("{}: invalid message length {}", conn.name(), len);
                    conn.shutdown();
                    return;
                }
            }
        }
    }

    /// Frames `message` with its length and sends it; any thread.
    pub fn send(conn: &TcpConnectionPtr, message: &[u8]) {
        conn.send_vec(encode(message));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_prefixes_big_endian_length() {
        assert_eq!(encode(b"hello"), b"\0\0\0\x05hello".to_vec());
        assert_eq!(encode(b""), vec![0, 0, 0, 0]);
    }

    #[test]
    fn decode_waits_for_whole_messages_and_keeps_the_rest() {
        let mut buf = Buffer::new();
        let third = encode(b"three");
        buf.append(&encode(b"one"));
        buf.append(&encode("twö".as_bytes()));
        buf.append(&third[..5]);
        assert_eq!(decode(&mut buf), Ok(Some("one".to_owned())));
        assert_eq!(decode(&mut buf), Ok(Some("twö".to_owned())));
        assert_eq!(decode(&mut buf), Ok(None));
        assert_eq!(buf.readable_bytes(), 5, "the partial message stays");
        buf.append(&third[5..]);
        assert_eq!(decode(&mut buf), Ok(Some("three".to_owned())));
        assert_eq!(decode(&mut buf), Ok(None));
    }

    #[test]
    fn decode_rejects_negative_and_oversized_lengths() {
        let mut buf = Buffer::new();
        buf.append_i32(-1);
        assert_eq!(decode(&mut buf), Err(InvalidLength(-1)));
        let mut buf = Buffer::new();
        buf.append_i32(MAX_MESSAGE as i32 + 1);
        assert_eq!(decode(&mut buf), Err(InvalidLength(MAX_MESSAGE as i32 + 1)));
    }
}
