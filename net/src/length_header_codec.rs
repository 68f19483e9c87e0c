//! `LengthHeaderCodec`: 4-byte length-prefixed messages, as the codec of
//! muduo's asio chat example.
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
//! Install [`LengthHeaderCodec::on_message`] as the server's message
//! callback; it calls the string-message callback once per complete message
//! and leaves a partial one in the buffer for the next read. A length that
//! is negative or above the limit is a protocol error: the connection is
//! shut down.

use std::sync::Arc;
use std::time::Instant;

use crate::buffer::Buffer;
use crate::tcp_connection::TcpConnectionPtr;

/// Receives each complete message.
pub type StringMessageCallback = Arc<dyn Fn(&TcpConnectionPtr, String, Instant) + Send + Sync>;

/// Size of the length header.
pub const HEADER_LEN: usize = 4;
/// Default largest message accepted.
pub const DEFAULT_MAX_MESSAGE: usize = 64 * 1024;

/// The length-header codec. Cheap to clone; share one across connections.
#[derive(Clone)]
pub struct LengthHeaderCodec {
    on_string_message: StringMessageCallback,
    max_message: usize,
}

impl LengthHeaderCodec {
    /// A codec delivering messages of up to [`DEFAULT_MAX_MESSAGE`] bytes.
    pub fn new(on_string_message: StringMessageCallback) -> Self {
        LengthHeaderCodec {
            on_string_message,
            max_message: DEFAULT_MAX_MESSAGE,
        }
    }

    /// Changes the largest message accepted.
    pub fn with_max_message(mut self, max: usize) -> Self {
        self.max_message = max;
        self
    }

    /// The message callback to install on the server or client.
    pub fn on_message(&self, conn: &TcpConnectionPtr, buf: &mut Buffer, receive_time: Instant) {
        while let Some(len) = buf.peek_i32() {
            if len < 0 || len as usize > self.max_message {
                log::error!("{}: invalid message length {}", conn.name(), len);
                conn.shutdown();
                break;
            }
            let len = len as usize;
            if buf.readable_bytes() < HEADER_LEN + len {
                break; // wait for the rest
            }
            buf.retrieve(HEADER_LEN);
            let message = String::from_utf8_lossy(&buf.peek()[..len]).into_owned();
            buf.retrieve(len);
            (self.on_string_message)(conn, message, receive_time);
        }
    }

    /// Frames `message` with its length and sends it; any thread.
    pub fn send(conn: &TcpConnectionPtr, message: &[u8]) {
        conn.send_vec(Self::encode(message));
    }

    /// The framed bytes of `message`.
    pub fn encode(message: &[u8]) -> Vec<u8> {
        let mut buf = Buffer::with_capacity(message.len());
        buf.append(message);
        buf.prepend_i32(message.len() as i32);
        buf.retrieve_all_as_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_prefixes_big_endian_length() {
        assert_eq!(
            LengthHeaderCodec::encode(b"hello"),
            b"\0\0\0\x05hello".to_vec()
        );
        assert_eq!(LengthHeaderCodec::encode(b""), vec![0, 0, 0, 0]);
    }
}
