//! TcpClient with Connector, and the LengthHeaderCodec, over loopback.

mod common;

use std::net::TcpListener;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::*;
use net::{EventLoopThread, LengthHeaderCodec, TcpClient};
use parking_lot::Mutex;

#[test]
fn client_talks_to_server_through_the_length_header_codec() {
    let server = start_server(1, |s| {
        let codec = LengthHeaderCodec::new(Arc::new(|conn, msg: String, _| {
            LengthHeaderCodec::send(conn, msg.to_uppercase().as_bytes());
        }));
        s.set_message_callback(move |conn, buf, t| codec.on_message(conn, buf, t));
    });

    let mut thread = EventLoopThread::new("client", None);
    let lp = thread.start_loop().unwrap();
    let client = TcpClient::new(&lp, server.addr, "codec-client");
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let codec = LengthHeaderCodec::new(Arc::new(move |_conn, msg: String, _| {
        let _ = tx.lock().send(msg);
    }));
    client.set_message_callback(move |conn, buf, t| codec.on_message(conn, buf, t));
    client.set_connection_callback(|conn| {
        if conn.connected() {
            // Three messages in one write, the last split across two sends.
            let mut bytes = LengthHeaderCodec::encode(b"one");
            bytes.extend(LengthHeaderCodec::encode("twö".as_bytes()));
            let third = LengthHeaderCodec::encode(b"three");
            bytes.extend_from_slice(&third[..5]);
            conn.send(&bytes);
            conn.send(&third[5..]);
        }
    });
    client.connect();
    let got: Vec<String> = (0..3)
        .map(|_| rx.recv_timeout(IO_TIMEOUT).unwrap())
        .collect();
    assert_eq!(got, vec!["ONE", "TWÖ", "THREE"]);
}

#[test]
fn connector_retries_until_the_server_appears() {
    // Find a free port, then leave it closed for a while.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{}", port).parse().unwrap();

    let mut thread = EventLoopThread::new("retry-client", None);
    let lp = thread.start_loop().unwrap();
    let client = TcpClient::new(&lp, addr, "retry");
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    client.set_connection_callback(move |conn| {
        if conn.connected() {
            let _ = tx.lock().send(Instant::now());
        }
    });
    let started = Instant::now();
    client.connect(); // refused: retries after 0.5 s, 1 s, ...
    std::thread::sleep(Duration::from_millis(700));
    let listener = TcpListener::bind(addr).unwrap();
    let up = rx
        .recv_timeout(IO_TIMEOUT)
        .expect("client connected after retrying");
    assert!(up - started >= Duration::from_millis(700));
    let (_peer, _) = listener.accept().unwrap();
    assert!(client.connection().is_some());
}

#[test]
fn client_reconnects_when_retry_is_enabled() {
    let ups = Arc::new(Mutex::new(0));
    let server = start_server(1, |s| {
        s.set_message_callback(|conn, buf, _| {
            buf.retrieve_all();
            conn.force_close(); // drop whoever talks to us
        });
    });
    let mut thread = EventLoopThread::new("reconnect-client", None);
    let lp = thread.start_loop().unwrap();
    let client = TcpClient::new(&lp, server.addr, "reconnect");
    client.enable_retry();
    let u = ups.clone();
    client.set_connection_callback(move |conn| {
        if conn.connected() {
            *u.lock() += 1;
            conn.send(b"x");
        }
    });
    client.connect();
    assert!(
        wait_until(|| *ups.lock() >= 3),
        "reconnected after each close"
    );
    client.stop();
}
