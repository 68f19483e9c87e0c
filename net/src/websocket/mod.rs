//! WebSocket (RFC 6455) on [`crate::http::HttpServer`]: a request the
//! application answers with [`crate::http::Reply::Upgrade`] becomes a
//! WebSocket connection, served by the application's [`WebSocketHandler`].
//!
//! muduo has no WebSocket; this follows its shape: the HTTP server's
//! message callback keeps parsing the same input buffer, now with a
//! [`FrameReader`] instead of an `HttpContext`, and answers pings, close
//! frames and broken rules itself, so a handler sees only whole messages.
//!
//! # Threads
//!
//! The handler's methods run on the connection's loop thread. A
//! [`WebSocket`] handle is `Send + Sync` and its sends work from any
//! thread, like `TcpConnection::send`: a server frame is unmasked, so
//! encoding one per send is a header and a copy, and it goes out under the
//! connection's output lock in the order of the calls.

mod frame;
pub mod handshake;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub use frame::{close_code, close_payload, encode_frame, opcode, FrameReader, WsEvent, WsLimits};

use crate::TcpConnectionPtr;

/// What the application does with an upgraded connection. Its methods run
/// on the connection's loop thread.
pub trait WebSocketHandler: Send + Sync {
    /// The upgrade's `101` has been sent.
    fn on_open(&self, _ws: &WebSocket) {}

    /// A whole text or binary message arrived ([`WsEvent::Text`] or
    /// [`WsEvent::Binary`]).
    fn on_message(&self, ws: &WebSocket, message: WsEvent);

    /// The connection closed (for whatever reason); called once.
    fn on_close(&self, _ws: &WebSocket) {}
}

/// A handle on one WebSocket connection; clone it freely, use it from any
/// thread.
#[derive(Clone)]
pub struct WebSocket {
    inner: Arc<Shared>,
}

struct Shared {
    conn: TcpConnectionPtr,
    /// A close frame has been sent: nothing more may be.
    closing: AtomicBool,
}

impl WebSocket {
    /// The handle of `conn`, just upgraded.
    pub(crate) fn new(conn: TcpConnectionPtr) -> WebSocket {
        WebSocket {
            inner: Arc::new(Shared {
                conn,
                closing: AtomicBool::new(false),
            }),
        }
    }

    /// The TCP connection underneath.
    pub fn connection(&self) -> &TcpConnectionPtr {
        &self.inner.conn
    }

    /// `true` while open and no close frame has been sent.
    pub fn connected(&self) -> bool {
        !self.inner.closing.load(Ordering::Acquire) && self.inner.conn.connected()
    }

    /// Sends one text message.
    pub fn send_text(&self, text: &str) {
        let _ = self.send_text_counted(text);
    }

    /// Sends one text message and returns where it ends in the output
    /// stream (as `TcpConnection::send_vec_counted`), or `None` once closing.
    pub fn send_text_counted(&self, text: &str) -> Option<u64> {
        let mut out = Vec::with_capacity(text.len() + 10);
        encode_frame(&mut out, opcode::TEXT, text.as_bytes());
        self.send_frames_counted(out)
    }

    /// Sends frames already encoded with [`encode_frame`] (several in one
    /// write, say), or nothing once closing; as `send_vec_counted`.
    pub fn send_frames_counted(&self, frames: Vec<u8>) -> Option<u64> {
        if self.inner.closing.load(Ordering::Acquire) {
            return None;
        }
        self.inner.conn.send_vec_counted(frames)
    }

    /// Sends a close frame with `code` and `reason`, then shuts the
    /// connection down once it is written; later sends do nothing. The
    /// first call only counts.
    pub fn close(&self, code: u16, reason: &str) {
        if self.inner.closing.swap(true, Ordering::AcqRel) {
            return;
        }
        let mut out = Vec::new();
        encode_frame(&mut out, opcode::CLOSE, &close_payload(code, reason));
        self.inner.conn.send_vec(out);
        self.inner.conn.shutdown();
    }

    /// `true` once [`WebSocket::close`] was called (or the server closed).
    pub fn closing(&self) -> bool {
        self.inner.closing.load(Ordering::Acquire)
    }

    /// Sends a control frame (a pong) unless closing; loop thread.
    pub(crate) fn send_control(&self, op: u8, payload: &[u8]) {
        let mut out = Vec::with_capacity(payload.len() + 2);
        encode_frame(&mut out, op, payload);
        let _ = self.send_frames_counted(out);
    }
}
