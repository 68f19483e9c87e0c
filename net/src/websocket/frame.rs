//! RFC 6455 framing: [`FrameReader`] cuts a connection's input into
//! messages, [`encode_frame`] makes the server's frames.
//!
//! The header's bit layout is `tungstenite`'s (`FrameHeader::parse` and
//! `format`); the rules a server must enforce are here: client frames are
//! masked (section 5.1), no reserved bits without an extension, control
//! frames are final and at most 125 bytes (5.5), continuation frames only
//! inside a fragmented message and data frames never inside one (5.4),
//! text is UTF-8 (8.1), and the size limits. A violation is a
//! [`CloseCode`] for the server to close with.
//!
//! Thread rule: a reader belongs to its connection's loop thread;
//! [`encode_frame`] is a pure function, for any thread.

use std::io::Cursor;

use tungstenite::protocol::frame::coding::{Control, Data, OpCode};
use tungstenite::protocol::frame::FrameHeader;

use crate::Buffer;

/// The close codes the server sends (RFC 6455, section 7.4.1).
pub mod close_code {
    /// Normal closure.
    pub const NORMAL: u16 = 1000;
    /// The server is going away (shutting down).
    pub const GOING_AWAY: u16 = 1001;
    /// A protocol error: an unmasked frame, a bad opcode, …
    pub const PROTOCOL: u16 = 1002;
    /// Text that is not UTF-8.
    pub const INVALID_DATA: u16 = 1007;
    /// A data type the endpoint does not accept (binary on a text API).
    pub const UNSUPPORTED: u16 = 1003;
    /// A policy violation (the application refuses the message).
    pub const POLICY: u16 = 1008;
    /// A frame or message larger than the limits.
    pub const TOO_BIG: u16 = 1009;
}

/// Size limits of incoming frames and messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsLimits {
    /// Payload bytes of one frame.
    pub max_frame: usize,
    /// Payload bytes of one message, all its fragments together.
    pub max_message: usize,
}

impl Default for WsLimits {
    fn default() -> WsLimits {
        WsLimits {
            max_frame: 64 * 1024,
            max_message: 64 * 1024,
        }
    }
}

/// What one complete frame or message means for the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WsEvent {
    /// A whole text message (fragments joined).
    Text(String),
    /// A whole binary message.
    Binary(Vec<u8>),
    /// A ping, with its payload (to be echoed in a pong).
    Ping(Vec<u8>),
    /// A pong.
    Pong,
    /// The peer's close frame: its code and reason, if it gave one.
    Close(Option<(u16, String)>),
}

/// A frame header's opcode as one of ours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Binary,
}

/// The incoming half of a WebSocket connection. See the [module docs](self).
#[derive(Debug)]
pub struct FrameReader {
    limits: WsLimits,
    /// The fragmented message under way: its kind and payload so far.
    partial: Option<(Kind, Vec<u8>)>,
}

impl FrameReader {
    /// A reader with `limits`, between messages.
    pub fn new(limits: WsLimits) -> FrameReader {
        FrameReader {
            limits,
            partial: None,
        }
    }

    /// Takes frames off the front of `buf` until one completes a message or
    /// is a control frame; `Ok(None)` when more bytes are needed.
    ///
    /// # Errors
    /// The close code to close with when the peer broke a rule (see the
    /// [module docs](self)); the connection cannot go on.
    pub fn next_event(&mut self, buf: &mut Buffer) -> Result<Option<WsEvent>, u16> {
        loop {
            let mut cursor = Cursor::new(buf.peek());
            let (header, length) = match FrameHeader::parse(&mut cursor) {
                Ok(Some(parsed)) => parsed,
                Ok(None) => return Ok(None),
                Err(_) => return Err(close_code::PROTOCOL),
            };
            let header_len =
                usize::try_from(cursor.position()).map_err(|_| close_code::PROTOCOL)?;
            self.check_header(&header, length)?;
            let length = usize::try_from(length).map_err(|_| close_code::TOO_BIG)?;
            if buf.readable_bytes() < header_len + length {
                return Ok(None);
            }
            buf.retrieve(header_len);
            let mut payload = buf.retrieve_as_vec(length);
            if let Some(mask) = header.mask {
                for (i, b) in payload.iter_mut().enumerate() {
                    *b ^= mask[i % 4];
                }
            }
            if let Some(event) = self.take(&header, payload)? {
                return Ok(Some(event));
            }
        }
    }

    /// The rules a header must meet before its payload is read.
    fn check_header(&self, header: &FrameHeader, length: u64) -> Result<(), u16> {
        if header.mask.is_none() || header.rsv1 || header.rsv2 || header.rsv3 {
            return Err(close_code::PROTOCOL);
        }
        match header.opcode {
            OpCode::Control(Control::Reserved(_)) | OpCode::Data(Data::Reserved(_)) => {
                Err(close_code::PROTOCOL)
            }
            OpCode::Control(_) if !header.is_final || length > 125 => Err(close_code::PROTOCOL),
            _ if length > self.limits.max_frame as u64 => Err(close_code::TOO_BIG),
            _ => Ok(()),
        }
    }

    /// One frame's payload: an event, or `None` inside a fragmented message.
    fn take(&mut self, header: &FrameHeader, payload: Vec<u8>) -> Result<Option<WsEvent>, u16> {
        let kind = match header.opcode {
            OpCode::Control(Control::Ping) => return Ok(Some(WsEvent::Ping(payload))),
            OpCode::Control(Control::Pong) => return Ok(Some(WsEvent::Pong)),
            OpCode::Control(_) => return close_event(&payload).map(Some),
            OpCode::Data(Data::Continue) => None,
            OpCode::Data(Data::Text) => Some(Kind::Text),
            OpCode::Data(_) => Some(Kind::Binary),
        };
        let (kind, mut data) = match (kind, self.partial.take()) {
            (Some(kind), None) => (kind, payload),
            (None, Some((kind, mut data))) => {
                data.extend_from_slice(&payload);
                (kind, data)
            }
            // A new message inside a fragmented one, or a continuation of nothing.
            _ => return Err(close_code::PROTOCOL),
        };
        if data.len() > self.limits.max_message {
            return Err(close_code::TOO_BIG);
        }
        if !header.is_final {
            self.partial = Some((kind, data));
            return Ok(None);
        }
        match kind {
            Kind::Text => String::from_utf8(std::mem::take(&mut data))
                .map(|s| Some(WsEvent::Text(s)))
                .map_err(|_| close_code::INVALID_DATA),
            Kind::Binary => Ok(Some(WsEvent::Binary(data))),
        }
    }
}

/// A close frame's payload: nothing, or a code and a UTF-8 reason.
fn close_event(payload: &[u8]) -> Result<WsEvent, u16> {
    match payload {
        [] => Ok(WsEvent::Close(None)),
        [hi, lo, reason @ ..] => {
            let code = u16::from_be_bytes([*hi, *lo]);
            let reason = std::str::from_utf8(reason).map_err(|_| close_code::INVALID_DATA)?;
            Ok(WsEvent::Close(Some((code, reason.to_owned()))))
        }
        [_] => Err(close_code::PROTOCOL),
    }
}

/// Opcode numbers for [`encode_frame`].
pub mod opcode {
    /// A text frame.
    pub const TEXT: u8 = 0x1;
    /// A binary frame.
    pub const BINARY: u8 = 0x2;
    /// A close frame.
    pub const CLOSE: u8 = 0x8;
    /// A ping.
    pub const PING: u8 = 0x9;
    /// A pong.
    pub const PONG: u8 = 0xA;
}

/// Appends one final, unmasked frame (the server's kind) of `opcode` with
/// `payload` to `out`; any thread.
pub fn encode_frame(out: &mut Vec<u8>, opcode: u8, payload: &[u8]) {
    let header = FrameHeader {
        is_final: true,
        rsv1: false,
        rsv2: false,
        rsv3: false,
        opcode: OpCode::from(opcode),
        mask: None,
    };
    out.reserve(header.len(payload.len() as u64) + payload.len());
    // Writing to a `Vec` cannot fail.
    let _ = header.format(payload.len() as u64, out);
    out.extend_from_slice(payload);
}

/// A close frame's payload: `code`, then `reason` cut to fit 125 bytes.
pub fn close_payload(code: u16, reason: &str) -> Vec<u8> {
    let mut out = code.to_be_bytes().to_vec();
    let mut end = reason.len().min(123);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    out.extend_from_slice(&reason.as_bytes()[..end]);
    out
}
