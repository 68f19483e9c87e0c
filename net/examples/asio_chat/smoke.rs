//! The smoke test every chat server variant runs (`cargo test -p net`):
//! the variant's own server code on 127.0.0.1:0, two clients, and a
//! broadcast each way.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::time::Duration;

use net::{EventLoop, TcpServer};

use crate::codec;

/// How long any one read may wait.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Builds and starts a variant's server on `lp`, listening on the address.
pub type Start = fn(&mut EventLoop, SocketAddr) -> std::io::Result<TcpServer>;

/// Starts the server on its own thread; two clients join, and each hears
/// the other's message (and its own: the chat broadcasts to everyone).
pub fn two_clients_hear_each_other(start: Start) {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut lp = EventLoop::new().unwrap();
        let server = start(&mut lp, "127.0.0.1:0".parse().unwrap()).unwrap();
        tx.send((lp.handle(), server.listen_addr())).unwrap();
        lp.run();
        drop(server);
    });
    let (main_loop, addr) = rx.recv_timeout(TIMEOUT).unwrap();
    // Hearing its own message proves a client is in the server's lists;
    // `b` joins only after `a`'s first message has gone out to everyone.
    let mut a = connect(addr);
    send(&mut a, "from a");
    assert_eq!(receive(&mut a), "from a");
    let mut b = connect(addr);
    send(&mut b, "from b");
    assert_eq!(receive(&mut b), "from b");
    assert_eq!(receive(&mut a), "from b");
    send(&mut a, "hello");
    assert_eq!(receive(&mut a), "hello");
    assert_eq!(receive(&mut b), "hello");
    main_loop.quit();
    thread.join().unwrap();
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s
}

fn send(s: &mut TcpStream, message: &str) {
    s.write_all(&codec::encode(message.as_bytes())).unwrap();
}

fn receive(s: &mut TcpStream) -> String {
    let mut header = [0u8; codec::HEADER_LEN];
    s.read_exact(&mut header).unwrap();
    let mut body = vec![0u8; u32::from_be_bytes(header) as usize];
    s.read_exact(&mut body).unwrap();
    String::from_utf8(body).unwrap()
}
