//! [`WsPeer`]: the service's [`Peer`] for a WebSocket connection, and
//! [`ChatSocket`], the handler that feeds its messages to the service.
//!
//! The service speaks in frames of one or more JSON lines (`encode` ends
//! each object with `\n`); over WebSocket each object is one text frame,
//! so [`WsPeer::send`] cuts a frame at its newlines (compact JSON has no
//! other) and sends one text frame per object, all in one write. Incoming
//! text frames go through the same decoder and the same
//! [`Service::handle`] as the TCP listener's lines, with the same session
//! and limits: only the line framing differs.
//!
//! A WebSocket gets the same server [`Context`] as a TCP connection, from
//! the same [`Admission`] (slots per address), and is swept by the same
//! timer (src/server/idle.rs), so limits and timeouts are the TCP
//! listener's too.
//!
//! Threads: as `TcpPeer` (src/server/peer.rs): every method from any
//! thread; the handler's on the connection's loop.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use net::websocket::{close_code, encode_frame, opcode, WebSocket, WebSocketHandler, WsEvent};

use super::super::admission::Admission;
use super::super::context::Context;
use super::super::idle;
use super::super::metrics::{self, Transport};
use crate::protocol::codec::{self, DecodeError};
use crate::protocol::{encode, reply};
use crate::service::{Peer, PeerRef, Service, Task};

/// A [`Peer`] backed by a WebSocket.
pub struct WsPeer {
    ws: WebSocket,
    name: String,
    born: Instant,
    /// Milliseconds after `born` of the last message received.
    last_active_ms: AtomicU64,
}

impl WsPeer {
    fn new(ws: WebSocket) -> WsPeer {
        let name = format!("{}-ws", ws.connection().name());
        WsPeer {
            ws,
            name,
            born: Instant::now(),
            last_active_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.born.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_active_ms.store(ms, Ordering::Relaxed);
    }

    /// `frame`'s JSON lines as text frames, in one buffer.
    fn frames(frame: &[u8]) -> Vec<u8> {
        let mut out = Vec::with_capacity(frame.len() + 16);
        for line in frame.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            encode_frame(&mut out, opcode::TEXT, line);
        }
        out
    }
}

impl Peer for WsPeer {
    fn id(&self) -> u64 {
        self.ws.connection().id()
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn connected(&self) -> bool {
        self.ws.connected()
    }

    fn send(&self, frame: Vec<u8>) {
        metrics::count_frame(&frame);
        let _ = self.ws.send_frames_counted(WsPeer::frames(&frame));
    }

    fn send_counted(&self, frame: &[u8]) -> Option<u64> {
        metrics::count_frame(frame);
        self.ws.send_frames_counted(WsPeer::frames(frame))
    }

    fn written(&self) -> u64 {
        self.ws.connection().bytes_written()
    }

    fn when_drained(&self, task: Task) {
        self.ws.connection().when_drained(task);
    }

    fn idle_for(&self) -> Duration {
        let last = Duration::from_millis(self.last_active_ms.load(Ordering::Relaxed));
        self.born.elapsed().saturating_sub(last)
    }

    fn close_with(&self, frame: Vec<u8>) {
        self.send(frame);
        self.ws.close(close_code::NORMAL, "replaced by a new login");
    }

    fn run_on_own_loop(&self, task: Task) {
        self.ws
            .connection()
            .get_loop()
            .queue_in_loop(move |_| task());
    }
}

/// One connection's peer and its server [`Context`] (peer, session,
/// address slots), made when the upgrade completes.
type Parts = (Arc<WsPeer>, Arc<Context>);

/// The handler of one `/ws` connection: its peer and context.
pub struct ChatSocket {
    svc: Arc<Service>,
    max_message: usize,
    admission: Admission,
    state: parking_lot::Mutex<Option<Parts>>,
}

impl ChatSocket {
    /// A handler for one upgrade; the peer is made in `on_open`.
    pub fn new(svc: Arc<Service>, max_message: usize, admission: Admission) -> ChatSocket {
        ChatSocket {
            svc,
            max_message,
            admission,
            state: parking_lot::Mutex::new(None),
        }
    }

    fn parts(&self) -> Option<Parts> {
        self.state.lock().clone()
    }
}

impl WebSocketHandler for ChatSocket {
    fn on_open(&self, ws: &WebSocket) {
        let conn = ws.connection();
        let ip = conn.peer_addr().ip();
        let ws_peer = Arc::new(WsPeer::new(ws.clone()));
        let peer: PeerRef = ws_peer.clone();
        log::debug!("{} up from {ip}", peer.name());
        metrics::count_connection(Transport::WebSocket, 1);
        let (cx, refusal) = self.admission.admit(peer.clone(), ip);
        idle::track_with(conn, cx.clone());
        *self.state.lock() = Some((ws_peer, cx.clone()));
        if let Some((errno, what, why)) = refusal {
            log::info!("{}: {what} ({ip}), refusing", peer.name());
            peer.send(encode(&reply::failure(None, errno, why)));
            cx.close_by_sweep();
            ws.close(close_code::POLICY, what);
        }
    }

    fn on_message(&self, ws: &WebSocket, message: WsEvent) {
        let Some((ws_peer, cx)) = self.parts() else {
            return;
        };
        if cx.discarding() {
            return;
        }
        ws_peer.touch();
        cx.touch();
        let (peer, session) = (&cx.peer, &cx.session);
        let WsEvent::Text(text) = message else {
            let e = DecodeError::Invalid("binary frames are not accepted; send text".into());
            peer.send(encode(&e.reply()));
            cx.close_by_sweep();
            ws.close(close_code::UNSUPPORTED, "text frames only");
            return;
        };
        // One clock read per frame, for the delivery latency.
        let received = (!metrics::off()).then(Instant::now);
        let mut rest = text.as_bytes();
        while !ws.closing() {
            match codec::decode(rest, self.max_message) {
                Ok(Some((obj, consumed))) => {
                    rest = rest.get(consumed..).unwrap_or_default();
                    metrics::count_request(&obj);
                    self.svc.handle_at(peer, session, obj, received);
                }
                Ok(None) if rest.iter().all(u8::is_ascii_whitespace) => return,
                Ok(None) => {
                    let e = DecodeError::Invalid("incomplete JSON object in a text frame".into());
                    fail(ws, &cx, &e);
                }
                Err(e) => match e.skip() {
                    Some(consumed) => {
                        peer.send(encode(&e.reply()));
                        rest = rest.get(consumed..).unwrap_or_default();
                    }
                    None => fail(ws, &cx, &e),
                },
            }
        }
    }

    fn on_close(&self, ws: &WebSocket) {
        let parts = self.state.lock().take();
        if let Some((_, cx)) = parts {
            log::debug!("{} down", cx.peer.name());
            metrics::count_connection(Transport::WebSocket, -1);
            idle::untrack(ws.connection());
            self.svc.disconnected(&cx.peer, &cx.session);
        }
    }
}

/// A message that ends the connection: its error reply, then a close
/// frame; the sweep closes the socket if the client does not.
fn fail(ws: &WebSocket, cx: &Context, e: &DecodeError) {
    log::info!("{}: {e}; closing", cx.peer.name());
    cx.peer.send(encode(&e.reply()));
    cx.close_by_sweep();
    ws.close(close_code::POLICY, "bad message");
}
