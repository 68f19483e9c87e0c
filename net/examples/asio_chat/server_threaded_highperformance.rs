//! The asio chat server on N I/O threads, with thread-local lists: muduo's
//! `examples/asio/chat/server_threaded_highperformance.cc`.
//!
//! What it teaches: share nothing on the hot path. Each I/O loop keeps the
//! list of *its own* connections in a thread-local (muduo's
//! `ThreadLocalSingleton`), which only that loop's thread touches, so it
//! needs no lock. A broadcast encodes the message once and queues one
//! closure into every loop (`queue_in_loop`); each loop then writes to its
//! connections from its own thread. The only shared state is the list of
//! loops, filled once as the loops start.
//!
//! ```text
//! asio_chat_server_threaded_highperformance PORT THREADS
//! ```

mod codec;
#[cfg(test)]
mod smoke;

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use codec::LengthHeaderCodec;
use net::{EventLoop, EventLoopHandle, ServerOption, TcpConnectionPtr, TcpServer};
use parking_lot::Mutex;

thread_local! {
    /// The connections of the loop running on this thread.
    static LOCAL_CONNECTIONS: RefCell<HashMap<u64, TcpConnectionPtr>> =
        RefCell::new(HashMap::new());
}

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut args = std::env::args().skip(1);
    let Some(port) = args.next().and_then(|a| a.parse::<u16>().ok()) else {
        eprintln!("Usage: asio_chat_server_threaded_highperformance PORT THREADS");
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
    // Every I/O loop, filled in as each loop thread starts.
    let loops: Arc<Mutex<Vec<EventLoopHandle>>> = Arc::default();
    let all = loops.clone();
    server.set_thread_init_callback(move |lp: &mut EventLoop| all.lock().push(lp.handle()));
    // Runs on the connection's loop: its list is this thread's.
    server.set_connection_callback(|conn| {
        log::info!(
            "{} -> {} is UP={}",
            conn.peer_addr(),
            conn.local_addr(),
            conn.connected()
        );
        LOCAL_CONNECTIONS.with(|c| {
            let mut c = c.borrow_mut();
            if conn.connected() {
                c.insert(conn.id(), conn.clone());
            } else {
                c.remove(&conn.id());
            }
        });
    });
    let codec = LengthHeaderCodec::new(Arc::new(move |_conn, message: String, _| {
        distribute(&loops.lock(), message)
    }));
    server.set_message_callback(move |conn, buf, t| codec.on_message(conn, buf, t));
    server.start(lp)?;
    Ok(server)
}

/// Queues one write of `message` into every loop, for its own connections.
fn distribute(loops: &[EventLoopHandle], message: String) {
    let framed = Arc::new(codec::encode(message.as_bytes()));
    for lp in loops {
        let framed = framed.clone();
        lp.queue_in_loop(move |_| {
            LOCAL_CONNECTIONS.with(|c| {
                for conn in c.borrow().values() {
                    conn.send(&framed);
                }
            })
        });
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn two_clients_hear_each_other() {
        super::smoke::two_clients_hear_each_other(|lp, addr| super::start(lp, addr, 2));
    }
}
