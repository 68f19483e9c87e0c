//! The asio chat server on N I/O threads, with a mutex: muduo's
//! `examples/asio/chat/server_threaded.cc`.
//!
//! What it teaches: the step from one loop to many. Connections now live
//! on different threads, so the shared connection set needs its lock for
//! real. The broadcast holds it while it sends to every connection, which
//! is simple and correct but makes each message wait for the whole
//! fan-out of the one before: `server_threaded_efficient.rs` shortens that.
//!
//! ```text
//! asio_chat_server_threaded PORT THREADS
//! ```

mod codec;
#[cfg(test)]
mod smoke;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use codec::LengthHeaderCodec;
use net::{EventLoop, ServerOption, TcpConnectionPtr, TcpServer};
use parking_lot::Mutex;

/// The open connections of every I/O thread, by id.
type ConnectionSet = Arc<Mutex<HashMap<u64, TcpConnectionPtr>>>;

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut args = std::env::args().skip(1);
    let Some(port) = args.next().and_then(|a| a.parse::<u16>().ok()) else {
        eprintln!("Usage: asio_chat_server_threaded PORT THREADS");
        std::process::exit(2);
    };
    let threads: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let mut lp = EventLoop::new()?;
    let _server = start(&mut lp, SocketAddr::from(([0, 0, 0, 0], port)), threads)?;
    lp.run();
    Ok(())
}

/// Builds the chat server on `lp` with `threads` I/O threads and starts
/// accepting.
fn start(lp: &mut EventLoop, addr: SocketAddr, threads: usize) -> std::io::Result<TcpServer> {
    let mut server = TcpServer::new(lp, addr, "ChatServer", ServerOption::NoReusePort)?;
    server.set_thread_num(threads);
    let connections = ConnectionSet::default();
    let set = connections.clone();
    // Runs on the connection's own I/O thread: the lock is what makes
    // insert and remove from different threads safe.
    server.set_connection_callback(move |conn| {
        log::info!(
            "{} -> {} is UP={}",
            conn.peer_addr(),
            conn.local_addr(),
            conn.connected()
        );
        if conn.connected() {
            set.lock().insert(conn.id(), conn.clone());
        } else {
            set.lock().remove(&conn.id());
        }
    });
    let codec = LengthHeaderCodec::new(Arc::new(move |_conn, message: String, _| {
        let framed = codec::encode(message.as_bytes());
        // Held for the whole fan-out: every other message and every
        // connection going up or down waits meanwhile.
        let set = connections.lock();
        for conn in set.values() {
            conn.send(&framed);
        }
    }));
    server.set_message_callback(move |conn, buf, t| codec.on_message(conn, buf, t));
    server.start(lp)?;
    Ok(server)
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_clients_hear_each_other() {
        super::smoke::two_clients_hear_each_other(|lp, addr| super::start(lp, addr, 2));
    }
}
