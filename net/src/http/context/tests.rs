//! The parser's states over a real `Buffer`: whole, split, pipelined,
//! bodies, and each error.

use super::*;

fn buf(bytes: &[u8]) -> Buffer {
    let mut b = Buffer::new();
    b.append(bytes);
    b
}

#[test]
fn a_whole_request() {
    let mut cx = HttpContext::new(Limits::default());
    let mut b = buf(b"GET /a/b?x=1&y HTTP/1.1\r\nHost: h\r\nX-Two: 2\r\n\r\n");
    let r = cx.parse(&mut b).expect("valid").expect("complete");
    assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/a/b"));
    assert_eq!(r.query.as_deref(), Some("x=1&y"));
    assert_eq!(r.version, Version::Http11);
    assert_eq!(r.header("host"), Some("h"));
    assert_eq!(r.header("x-two"), Some("2"));
    assert!(r.keep_alive());
    assert_eq!(b.readable_bytes(), 0);
}

#[test]
fn byte_by_byte_is_the_same_request() {
    let raw = b"POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello";
    let mut cx = HttpContext::new(Limits::default());
    let mut b = Buffer::new();
    let mut got = None;
    for (i, byte) in raw.iter().enumerate() {
        b.append(&[*byte]);
        let r = cx.parse(&mut b).expect("valid");
        if i + 1 < raw.len() {
            assert!(r.is_none(), "complete at byte {i}");
        } else {
            got = r;
        }
    }
    let r = got.expect("complete at the last byte");
    assert_eq!(r.body, b"hello");
}

#[test]
fn pipelined_requests_come_out_in_order() {
    let mut cx = HttpContext::new(Limits::default());
    let mut b = buf(b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.0\r\n\r\nGET /3 HT");
    let one = cx.parse(&mut b).expect("valid").expect("first");
    let two = cx.parse(&mut b).expect("valid").expect("second");
    assert_eq!((one.path.as_str(), two.path.as_str()), ("/1", "/2"));
    assert!(!two.keep_alive(), "HTTP/1.0 closes by default");
    assert!(cx.parse(&mut b).expect("valid so far").is_none());
    b.append(b"TP/1.1\r\nConnection: close\r\n\r\n");
    let three = cx.parse(&mut b).expect("valid").expect("third");
    assert!(!three.keep_alive());
}

#[test]
fn limits_and_garbage_are_errors() {
    let small = Limits {
        max_head: 64,
        max_headers: 4,
        max_body: 8,
        ..Limits::default()
    };
    let long = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(100));
    let cases: [(&[u8], u16); 6] = [
        (long.as_bytes(), 431),
        (&[b'G'; 65], 431),
        (
            b"GET / HTTP/1.1\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\n\r\n",
            431,
        ),
        (b"POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\n", 413),
        (b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 400),
    ];
    for (raw, status) in cases {
        let mut cx = HttpContext::new(small);
        let e = cx.parse(&mut buf(raw)).expect_err("refused");
        assert_eq!(e.status(), status, "{:?}", String::from_utf8_lossy(raw));
    }
    let mut cx = HttpContext::new(small);
    let chunked = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
    assert_eq!(
        cx.parse(&mut buf(chunked)).map_err(|e| e.status()),
        Err(400)
    );
}
