//! `WebSocketHandler::on_close` is called exactly once however a WebSocket
//! ends: the client's close frame (what a browser sends when its page is
//! closed or reloaded), a frame that breaks the rules, or the TCP
//! connection dropping without a close frame. chat-server logs the account
//! out in `on_close`, so a missed call leaves it online.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use common::{connect, read_to_close, start_http, wait_until};
use net::http::{HttpCallback, HttpResponse, Limits, Reply};
use net::websocket::{WebSocket, WebSocketHandler, WsEvent, WsLimits};

/// Counts the `on_close` calls of every socket it serves.
struct Counter(Arc<AtomicUsize>);

impl WebSocketHandler for Counter {
    fn on_message(&self, _ws: &WebSocket, _message: WsEvent) {}

    fn on_close(&self, _ws: &WebSocket) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

fn server(closes: &Arc<AtomicUsize>) -> common::TestServer {
    let closes = closes.clone();
    let callback: HttpCallback = Arc::new(move |req, _conn| match req.path.as_str() {
        "/ws" => Reply::Upgrade(Arc::new(Counter(closes.clone()))),
        _ => Reply::Respond(HttpResponse::text(404, "no")),
    });
    start_http(1, callback, Limits::default(), WsLimits::default())
}

/// Connects and reads the 101 answer to the upgrade.
fn open(server: &common::TestServer) -> TcpStream {
    let mut s = connect(server.addr);
    s.write_all(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).unwrap();
        head.push(byte[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101 "));
    s
}

/// A short final client frame, masked or not.
fn frame(opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    assert!(payload.len() < 126);
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut out = vec![0x80 | opcode];
    if masked {
        out.push(0x80 | payload.len() as u8);
        out.extend_from_slice(&mask);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    } else {
        out.push(payload.len() as u8);
        out.extend_from_slice(payload);
    }
    out
}

/// After `end` ends one socket, `on_close` has run once, and stays at once.
fn closes_once(end: impl FnOnce(TcpStream)) {
    let closes = Arc::new(AtomicUsize::new(0));
    let server = server(&closes);
    end(open(&server));
    assert!(
        wait_until(|| closes.load(Ordering::SeqCst) >= 1),
        "on_close was not called"
    );
    // A second call would come with the connection's teardown, which the
    // server has finished once a new connection is served.
    drop(open(&server));
    assert!(wait_until(|| closes.load(Ordering::SeqCst) >= 2));
    assert_eq!(
        closes.load(Ordering::SeqCst),
        2,
        "on_close ran twice for one socket"
    );
}

#[test]
fn a_close_frame_calls_on_close_once() {
    closes_once(|mut s| {
        let mut payload = 1001u16.to_be_bytes().to_vec();
        payload.extend_from_slice(b"page closed");
        s.write_all(&frame(0x8, &payload, true)).unwrap();
        // The server echoes the close and shuts the connection.
        let rest = read_to_close(&mut s);
        assert_eq!(rest.first(), Some(&0x88), "{rest:?}");
    });
}

#[test]
fn a_bad_frame_calls_on_close_once() {
    closes_once(|mut s| {
        // Unmasked: a protocol error (1002).
        s.write_all(&frame(0x1, b"hi", false)).unwrap();
        let rest = read_to_close(&mut s);
        assert_eq!(rest.first(), Some(&0x88), "{rest:?}");
    });
}

#[test]
fn a_dropped_connection_calls_on_close_once() {
    closes_once(drop);
}
