//! TcpClient with Connector, over loopback.

mod common;

use std::net::TcpListener;
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use common::*;
use net::{EventLoopThread, TcpClient};
use parking_lot::Mutex;

#[test]
fn client_talks_to_a_server_and_sees_its_replies() {
    let server = start_server(1, |s| {
        s.set_message_callback(|conn, buf, _| {
            let upper = buf.retrieve_all_as_string().to_uppercase();
            conn.send(upper.as_bytes());
        });
    });

    let mut thread = EventLoopThread::new("client", None);
    let lp = thread.start_loop().unwrap();
    let client = TcpClient::new(&lp, server.addr, "echo-client");
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    client.set_message_callback(move |_conn, buf, _| {
        let _ = tx.lock().send(buf.retrieve_all_as_string());
    });
    client.set_connection_callback(|conn| {
        if conn.connected() {
            conn.send(b"one ");
            conn.send(b"two");
        }
    });
    client.connect();
    let mut got = String::new();
    while got.len() < "ONE TWO".len() {
        got.push_str(&rx.recv_timeout(IO_TIMEOUT).unwrap());
    }
    assert_eq!(got, "ONE TWO");
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
