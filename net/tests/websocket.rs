//! WebSocket over `HttpServer`, with frames written by hand: the
//! handshake, masked-frame rule (1002), fragmentation, ping/pong, close
//! codes, an oversized frame (1009), and sends from another thread.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;

use common::{connect, read_to_close, start_http};
use net::http::{HttpCallback, HttpResponse, Limits, Reply};
use net::websocket::{WebSocket, WebSocketHandler, WsEvent, WsLimits};

/// Echoes text upper-cased, from a fresh thread (a send from any thread).
struct Echo;

impl WebSocketHandler for Echo {
    fn on_message(&self, ws: &WebSocket, message: WsEvent) {
        if let WsEvent::Text(t) = message {
            let ws = ws.clone();
            std::thread::spawn(move || ws.send_text(&t.to_uppercase()))
                .join()
                .unwrap();
        }
    }
}

fn server() -> common::TestServer {
    let callback: HttpCallback = Arc::new(|req, _conn| match req.path.as_str() {
        "/ws" => Reply::Upgrade(Arc::new(Echo)),
        _ => Reply::Respond(HttpResponse::text(404, "no")),
    });
    let ws_limits = WsLimits {
        max_frame: 1000,
        max_message: 1500,
    };
    start_http(1, callback, Limits::default(), ws_limits)
}

/// Connects and completes the handshake of RFC 6455's example key.
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
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    // The accept key of the RFC's own example (section 1.3).
    assert!(
        head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"),
        "{head}"
    );
    s
}

/// A client frame: `fin`, `opcode`, masked unless `mask` is `None`.
fn frame(fin: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![if fin { 0x80 } else { 0 } | opcode];
    let bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(bit | n as u8),
        n if n < 65536 => {
            out.push(bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(m) => {
            out.extend_from_slice(&m);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ m[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

const MASK: Option<[u8; 4]> = Some([0x37, 0xfa, 0x21, 0x3d]);

/// Reads one server frame: (fin, opcode, payload); the server never masks.
fn read_frame(s: &mut TcpStream) -> (bool, u8, Vec<u8>) {
    let mut two = [0u8; 2];
    s.read_exact(&mut two).unwrap();
    assert_eq!(two[1] & 0x80, 0, "server frames are not masked");
    let len = match two[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            s.read_exact(&mut b).unwrap();
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            s.read_exact(&mut b).unwrap();
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0; len];
    s.read_exact(&mut payload).unwrap();
    (two[0] & 0x80 != 0, two[0] & 0x0f, payload)
}

/// The server's close frame's code, then EOF.
fn expect_close(s: &mut TcpStream, code: u16) {
    let (_, op, payload) = read_frame(s);
    assert_eq!(op, 0x8, "a close frame");
    assert_eq!(u16::from_be_bytes([payload[0], payload[1]]), code);
    // Nothing after the close frame; the server shuts down.
    assert!(read_to_close(s).is_empty());
}

#[test]
fn text_echo_fragmented_and_ping() {
    let server = server();
    let mut s = open(&server);
    s.write_all(&frame(true, 0x1, b"hello", MASK)).unwrap();
    assert_eq!(read_frame(&mut s), (true, 0x1, b"HELLO".to_vec()));
    // Three fragments with a ping between them: the pong first, then one message.
    let mut bytes = frame(false, 0x1, b"frag", MASK);
    bytes.extend(frame(true, 0x9, b"are you there", MASK));
    bytes.extend(frame(false, 0x0, b"men", MASK));
    bytes.extend(frame(true, 0x0, "ted ✓".as_bytes(), MASK));
    s.write_all(&bytes).unwrap();
    assert_eq!(read_frame(&mut s), (true, 0xA, b"are you there".to_vec()));
    assert_eq!(
        read_frame(&mut s),
        (true, 0x1, "FRAGMENTED ✓".as_bytes().to_vec())
    );
    // A 300-byte message (16-bit length) in single bytes.
    let long = "x".repeat(300);
    for b in frame(true, 0x1, long.as_bytes(), MASK) {
        s.write_all(&[b]).unwrap();
    }
    assert_eq!(
        read_frame(&mut s),
        (true, 0x1, long.to_uppercase().into_bytes())
    );
    // Our close (1000, "bye") is echoed, then the connection ends.
    s.write_all(&frame(true, 0x8, &[0x03, 0xe8, b'b', b'y', b'e'], MASK))
        .unwrap();
    expect_close(&mut s, 1000);
}

#[test]
fn protocol_violations_close_with_their_codes() {
    let server = server();
    let two_kb = vec![b'a'; 2000];
    let cases: Vec<(Vec<u8>, u16)> = vec![
        // Unmasked client frame.
        (frame(true, 0x1, b"hi", None), 1002),
        // Reserved opcode.
        (frame(true, 0x3, b"", MASK), 1002),
        // Continuation without a start.
        (frame(true, 0x0, b"x", MASK), 1002),
        // A fragmented control frame.
        (frame(false, 0x9, b"", MASK), 1002),
        // Over the frame limit (1000).
        (frame(true, 0x1, &two_kb, MASK), 1009),
        // Over the message limit (1500) in two frames of 800.
        (
            [
                frame(false, 0x1, &two_kb[..800], MASK),
                frame(true, 0x0, &two_kb[..800], MASK),
            ]
            .concat(),
            1009,
        ),
        // Text that is not UTF-8.
        (frame(true, 0x1, &[0xff, 0xfe], MASK), 1007),
        // A close with a code that may not be sent: echoed as 1002.
        (frame(true, 0x8, &[0x03, 0xed], MASK), 1002),
    ];
    for (bytes, code) in cases {
        let mut s = open(&server);
        s.write_all(&bytes).unwrap();
        expect_close(&mut s, code);
    }
}

#[test]
fn a_plain_get_of_the_socket_path_is_refused() {
    let server = server();
    let mut s = connect(server.addr);
    s.write_all(b"GET /ws HTTP/1.1\r\n\r\n").unwrap();
    let got = String::from_utf8_lossy(&read_to_close(&mut s)).into_owned();
    assert!(got.starts_with("HTTP/1.1 426 "), "{got}");
    let mut s = connect(server.addr);
    s.write_all(b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\nSec-WebSocket-Version: 8\r\nSec-WebSocket-Key: x\r\n\r\n").unwrap();
    let got = String::from_utf8_lossy(&read_to_close(&mut s)).into_owned();
    assert!(got.contains("Sec-WebSocket-Version: 13"), "{got}");
}
