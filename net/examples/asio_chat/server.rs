//! The asio chat server, single-threaded: muduo's
//! `examples/asio/chat/server.cc`.
//!
//! What it teaches: a codec between the byte stream and the application
//! (`codec.rs`), and a broadcast to every connection. Everything runs on
//! one loop, so nothing here is ever touched by two threads at once; the
//! connection set still sits in a `Mutex` because a `TcpServer`'s callbacks
//! must be `Send + Sync` whatever the thread count. Here it is never
//! contended; `server_threaded.rs` shows what changes when it is.
//!
//! ```text
//! asio_chat_server PORT
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

/// The open connections, by id.
type ConnectionSet = Arc<Mutex<HashMap<u64, TcpConnectionPtr>>>;

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let Some(port) = std::env::args().nth(1).and_then(|a| a.parse::<u16>().ok()) else {
        eprintln!("Usage: asio_chat_server PORT");
        std::process::exit(2);
    };
    let mut lp = EventLoop::new()?;
    let _server = start(&mut lp, SocketAddr::from(([0, 0, 0, 0], port)))?;
    lp.run();
    Ok(())
}

/// Builds the chat server on `lp` and starts accepting.
fn start(lp: &mut EventLoop, addr: SocketAddr) -> std::io::Result<TcpServer> {
    let mut server = TcpServer::new(lp, addr, "ChatServer", ServerOption::NoReusePort)?;
    let connections = ConnectionSet::default();
    let set = connections.clone();
    server.set_connection_callback(move |conn| {
        log::info!(
            "{} -> {} is {}",
            conn.peer_addr(),
            conn.local_addr(),
            up_down(conn)
        );
        if conn.connected() {
            set.lock().insert(conn.id(), conn.clone());
        } else {
            set.lock().remove(&conn.id());
        }
    });
    let codec = LengthHeaderCodec::new(Arc::new(move |_conn, message: String, _| {
        // Encode once, send the same bytes to everyone.
        let framed = codec::encode(message.as_bytes());
        for conn in connections.lock().values() {
            conn.send(&framed);
        }
    }));
    server.set_message_callback(move |conn, buf, t| codec.on_message(conn, buf, t));
    server.start(lp)?;
    Ok(server)
}

fn up_down(conn: &TcpConnectionPtr) -> &'static str {
    if conn.connected() {
        "UP"
    } else {
        "DOWN"
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_clients_hear_each_other() {
        super::smoke::two_clients_hear_each_other(super::start);
    }
}
