//! Shared test harness: a `TcpServer` running on its own thread, and small
//! blocking-client helpers. Every read has a timeout, so a broken server
//! fails a test instead of hanging it.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use net::{EventLoop, EventLoopHandle, ServerOption, TcpServer};

/// How long any single read in a test may wait.
pub const IO_TIMEOUT: Duration = Duration::from_secs(20);

/// A server and the thread running its main loop; stopped on drop.
pub struct TestServer {
    pub main_loop: EventLoopHandle,
    pub addr: SocketAddr,
    pub io_loops: Vec<EventLoopHandle>,
    thread: Option<JoinHandle<()>>,
}

/// Starts a server on 127.0.0.1:0 with `threads` I/O threads; `configure`
/// sets its callbacks (it runs on the server's thread).
pub fn start_server<F>(threads: usize, configure: F) -> TestServer
where
    F: FnOnce(&mut TcpServer) + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut lp = EventLoop::new().unwrap();
        let addr = "127.0.0.1:0".parse().unwrap();
        let mut server = TcpServer::new(&lp, addr, "test", ServerOption::NoReusePort).unwrap();
        server.set_thread_num(threads);
        configure(&mut server);
        server.start(&mut lp).unwrap();
        tx.send((lp.handle(), server.listen_addr(), server.io_loops()))
            .unwrap();
        lp.run();
        drop(server);
    });
    let (main_loop, addr, io_loops) = rx.recv_timeout(IO_TIMEOUT).unwrap();
    TestServer {
        main_loop,
        addr,
        io_loops,
        thread: Some(thread),
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.main_loop.quit();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// A blocking client socket with read and write timeouts.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    s
}

/// Reads exactly `n` bytes.
pub fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut buf = vec![0; n];
    s.read_exact(&mut buf).unwrap();
    buf
}

/// Writes all of `data`.
pub fn write_all(s: &mut TcpStream, data: &[u8]) {
    s.write_all(data).unwrap();
}

/// Polls `cond` every 10 ms for up to `IO_TIMEOUT`; true if it became true.
pub fn wait_until(mut cond: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + IO_TIMEOUT;
    while std::time::Instant::now() < deadline {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

/// An [`net::http::HttpServer`] on 127.0.0.1:0 with `threads` I/O threads,
/// answering with `callback` and the given limits; stopped on drop.
pub fn start_http(
    threads: usize,
    callback: net::http::HttpCallback,
    limits: net::http::Limits,
    ws_limits: net::websocket::WsLimits,
) -> TestServer {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut lp = EventLoop::new().unwrap();
        let addr = "127.0.0.1:0".parse().unwrap();
        let mut server =
            net::http::HttpServer::with_limits(&lp, addr, "http", callback, limits, ws_limits)
                .unwrap();
        server.set_thread_num(threads);
        server.start(&mut lp).unwrap();
        tx.send((lp.handle(), server.listen_addr(), server.io_loops()))
            .unwrap();
        lp.run();
        drop(server);
    });
    let (main_loop, addr, io_loops) = rx.recv_timeout(IO_TIMEOUT).unwrap();
    TestServer {
        main_loop,
        addr,
        io_loops,
        thread: Some(thread),
    }
}

/// Reads until the peer closes (or the timeout); what arrived.
pub fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}
