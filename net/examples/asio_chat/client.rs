//! The asio chat client: muduo's `examples/asio/chat/client.cc`.
//!
//! What it teaches: the client side of the same reactor. A `TcpClient`
//! lives on a loop thread of its own (`EventLoopThread`) and prints every
//! message it receives, while the main thread blocks on standard input and
//! sends each line it reads. The send crosses threads, which
//! `TcpConnection::send` allows from any thread.
//!
//! ```text
//! asio_chat_client HOST PORT
//! ```

mod codec;

use std::io::BufRead;
use std::net::{IpAddr, SocketAddr};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use codec::LengthHeaderCodec;
use net::{EventLoopThread, TcpClient};
use parking_lot::Mutex;

/// How long to wait for the server before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(host), Some(port)) = (
        args.first().and_then(|h| h.parse::<IpAddr>().ok()),
        args.get(1).and_then(|p| p.parse::<u16>().ok()),
    ) else {
        eprintln!("Usage: asio_chat_client HOST PORT");
        std::process::exit(2);
    };

    let mut thread = EventLoopThread::new("chat-client", None);
    let lp = thread.start_loop()?;
    let client = TcpClient::new(&lp, SocketAddr::new(host, port), "ChatClient");
    let (up_tx, up) = mpsc::channel();
    let up_tx = Mutex::new(up_tx);
    client.set_connection_callback(move |conn| {
        log::info!(
            "{} -> {} is UP={}",
            conn.local_addr(),
            conn.peer_addr(),
            conn.connected()
        );
        if conn.connected() {
            let _ = up_tx.lock().send(());
        }
    });
    // Runs on the client's loop thread.
    let codec = LengthHeaderCodec::new(Arc::new(|_conn, message: String, _| {
        println!("<<< {message}");
    }));
    client.set_message_callback(move |conn, buf, t| codec.on_message(conn, buf, t));
    client.connect();
    // Wait for the connection before reading input.
    if up.recv_timeout(CONNECT_TIMEOUT).is_err() {
        eprintln!("could not connect to {host}:{port}");
        std::process::exit(1);
    }

    // The main thread: one message per line until end of input.
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        match client.connection().filter(|c| c.connected()) {
            Some(conn) => LengthHeaderCodec::send(&conn, line.as_bytes()),
            None => eprintln!("not connected"),
        }
    }
    client.disconnect();
    // Let the loop send what is queued and the FIN before it stops.
    std::thread::sleep(Duration::from_millis(100));
    Ok(())
}
