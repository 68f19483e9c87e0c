//! The asio chat server on N I/O threads, with copy-on-write: muduo's
//! `examples/asio/chat/server_threaded_efficient.cc`.
//!
//! What it teaches: shrink the critical section. The connection set is an
//! `Arc<HashMap>` behind the mutex. A broadcast only clones the `Arc` under
//! the lock (one atomic increment) and sends with the lock released. A
//! connection going up or down changes the set with `Arc::make_mut`, which
//! copies it first if a broadcast still holds the old one (muduo checks
//! `connections_.unique()` and copies by hand). Broadcasts no longer wait
//! for each other; only the rare change of membership pays for a copy.
//!
//! The broadcast sends from the sender's loop to connections on every
//! other loop, so it is also where the two cross-thread send paths differ
//! (see net's README, "Thread rules"): the optional third argument picks
//! `direct` (the default: write under the connection's output lock) or
//! `queue` (muduo's: a closure for the connection's loop).
//!
//! ```text
//! asio_chat_server_threaded_efficient PORT THREADS [direct|queue]
//! ```

mod codec;
#[cfg(test)]
mod smoke;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use codec::LengthHeaderCodec;
use net::{CrossThreadSend, EventLoop, ServerOption, TcpConnectionPtr, TcpServer};
use parking_lot::Mutex;

/// The open connections, by id, shared copy-on-write.
type ConnectionSet = Arc<Mutex<Arc<HashMap<u64, TcpConnectionPtr>>>>;

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut args = std::env::args().skip(1);
    let Some(port) = args.next().and_then(|a| a.parse::<u16>().ok()) else {
        eprintln!("Usage: asio_chat_server_threaded_efficient PORT THREADS [direct|queue]");
        std::process::exit(2);
    };
    let threads: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);
    let mode = match args.next().as_deref() {
        None | Some("direct") => CrossThreadSend::Direct,
        Some("queue") => CrossThreadSend::Queue,
        Some(other) => {
            eprintln!("unknown send mode {other:?}: direct or queue");
            std::process::exit(2);
        }
    };
    let mut lp = EventLoop::new()?;
    let addr = SocketAddr::from(([0, 0, 0, 0], port));
    let _server = start(&mut lp, addr, threads, mode)?;
    lp.run();
    Ok(())
}

/// Builds the chat server on `lp` with `threads` I/O threads and starts
/// accepting.
fn start(
    lp: &mut EventLoop,
    addr: SocketAddr,
    threads: usize,
    mode: CrossThreadSend,
) -> std::io::Result<TcpServer> {
    let mut server = TcpServer::new(lp, addr, "ChatServer", ServerOption::NoReusePort)?;
    server.set_thread_num(threads);
    server.set_cross_thread_send(mode);
    let connections = ConnectionSet::default();
    let set = connections.clone();
    server.set_connection_callback(move |conn| {
        log::info!(
            "{} -> {} is UP={}",
            conn.peer_addr(),
            conn.local_addr(),
            conn.connected()
        );
        let mut guard = set.lock();
        // Copies the map only if a broadcast is reading the current one.
        let map = Arc::make_mut(&mut guard);
        if conn.connected() {
            map.insert(conn.id(), conn.clone());
        } else {
            map.remove(&conn.id());
        }
    });
    let codec = LengthHeaderCodec::new(Arc::new(move |_conn, message: String, _| {
        let framed = codec::encode(message.as_bytes());
        // A snapshot of the set: the lock is held for one clone of an Arc.
        let snapshot = connections.lock().clone();
        for conn in snapshot.values() {
            conn.send(&framed);
        }
    }));
    server.set_message_callback(move |conn, buf, t| codec.on_message(conn, buf, t));
    server.start(lp)?;
    Ok(server)
}

#[cfg(test)]
mod tests {
    use net::CrossThreadSend;

    #[test]
    fn two_clients_hear_each_other() {
        super::smoke::two_clients_hear_each_other(|lp, addr| {
            super::start(lp, addr, 2, CrossThreadSend::Direct)
        });
    }

    #[test]
    fn two_clients_hear_each_other_with_queued_sends() {
        super::smoke::two_clients_hear_each_other(|lp, addr| {
            super::start(lp, addr, 2, CrossThreadSend::Queue)
        });
    }
}
