//! `HttpServer` over real loopback sockets: keep-alive, pipelining, a
//! request split into single bytes, the 431/413/400 answers (then the
//! close), and a thousand clients at once.

mod common;

use std::io::{Read, Write};
use std::sync::Arc;

use common::{connect, read_to_close, start_http, IO_TIMEOUT};
use net::http::{HttpCallback, HttpResponse, Limits, Reply};
use net::websocket::WsLimits;

/// Echoes the path and the body's length.
fn echo() -> HttpCallback {
    Arc::new(|req, _conn| {
        Reply::Respond(HttpResponse::text(
            200,
            &format!("{} {}", req.path, req.body.len()),
        ))
    })
}

/// Reads one response (head and `Content-Length` body) off `s`.
fn read_response(s: &mut std::net::TcpStream, pending: &mut Vec<u8>) -> String {
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(pending).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("Content-Length: "))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            if pending.len() >= end + 4 + length {
                let response: Vec<u8> = pending.drain(..end + 4 + length).collect();
                return String::from_utf8_lossy(&response).into_owned();
            }
        }
        let n = s.read(&mut chunk).expect("read a response");
        assert!(n > 0, "closed before a whole response: {text:?}");
        pending.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn keep_alive_and_pipelining() {
    let server = start_http(2, echo(), Limits::default(), WsLimits::default());
    let mut s = connect(server.addr);
    let mut pending = Vec::new();
    // Keep-alive: two requests, one after the other, one connection.
    s.write_all(b"GET /one HTTP/1.1\r\n\r\n").unwrap();
    let first = read_response(&mut s, &mut pending);
    assert!(first.starts_with("HTTP/1.1 200 OK\r\n"), "{first}");
    assert!(first.contains("Connection: keep-alive"), "{first}");
    assert!(first.ends_with("/one 0"), "{first}");
    // Pipelined: three in one write, a body among them; answered in order.
    s.write_all(b"GET /a HTTP/1.1\r\n\r\nPOST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyzGET /c HTTP/1.1\r\nConnection: close\r\n\r\n").unwrap();
    for want in ["/a 0", "/b 3", "/c 0"] {
        let r = read_response(&mut s, &mut pending);
        assert!(r.ends_with(want), "{want}: {r}");
    }
    // The last asked to close: EOF.
    assert!(read_to_close(&mut s).is_empty());
}

#[test]
fn a_request_in_single_bytes() {
    let server = start_http(1, echo(), Limits::default(), WsLimits::default());
    let mut s = connect(server.addr);
    s.set_nodelay(true).unwrap();
    for b in b"POST /slow HTTP/1.1\r\nContent-Length: 2\r\n\r\nok" {
        s.write_all(&[*b]).unwrap();
    }
    let r = read_response(&mut s, &mut Vec::new());
    assert!(r.ends_with("/slow 2"), "{r}");
}

#[test]
fn oversized_and_garbage_are_answered_then_closed() {
    let limits = Limits {
        max_head: 1024,
        max_headers: 16,
        max_body: 100,
        ..Limits::default()
    };
    let server = start_http(1, echo(), limits, WsLimits::default());
    let big_header = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(2000));
    let cases: [(&[u8], &str); 3] = [
        (big_header.as_bytes(), "HTTP/1.1 431 "),
        (
            b"POST / HTTP/1.1\r\nContent-Length: 101\r\n\r\n",
            "HTTP/1.1 413 ",
        ),
        (b"\x00\x01garbage\r\n\r\n", "HTTP/1.1 400 "),
    ];
    for (raw, want) in cases {
        let mut s = connect(server.addr);
        s.write_all(raw).unwrap();
        let got = String::from_utf8_lossy(&read_to_close(&mut s)).into_owned();
        assert!(got.starts_with(want), "{want}: {got:?}");
        assert!(got.contains("Connection: close"), "{got}");
    }
    // Headers that never end are cut off at the limit, not buffered.
    let mut s = connect(server.addr);
    s.write_all(b"GET / HTTP/1.1\r\n").unwrap();
    let mut closed = false;
    for _ in 0..100 {
        if s.write_all(b"X-More: 0123456789012345678901234567890\r\n")
            .is_err()
        {
            closed = true;
            break;
        }
    }
    let got = String::from_utf8_lossy(&read_to_close(&mut s)).into_owned();
    assert!(closed || got.starts_with("HTTP/1.1 431 "), "{got:?}");
}

#[test]
fn an_idle_keep_alive_connection_is_closed_after_its_lifetime() {
    let limits = Limits {
        lifetime: std::time::Duration::from_millis(300),
        ..Limits::default()
    };
    let server = start_http(1, echo(), limits, WsLimits::default());
    let mut s = connect(server.addr);
    s.write_all(b"GET /a HTTP/1.1\r\n\r\n").unwrap();
    let r = read_response(&mut s, &mut Vec::new());
    assert!(r.ends_with("/a 0"), "{r}");
    // Kept alive, then closed by the server.
    assert!(read_to_close(&mut s).is_empty());
}

#[test]
fn a_thousand_clients_at_once() {
    let server = start_http(4, echo(), Limits::default(), WsLimits::default());
    let mut clients: Vec<_> = (0..1000).map(|_| connect(server.addr)).collect();
    for (i, s) in clients.iter_mut().enumerate() {
        s.write_all(format!("GET /{i} HTTP/1.1\r\n\r\n").as_bytes())
            .unwrap();
    }
    for (i, s) in clients.iter_mut().enumerate() {
        s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        let r = read_response(s, &mut Vec::new());
        assert!(r.ends_with(&format!("/{i} 0")), "{i}: {r}");
    }
}
