//! The chat server of muduo's asio examples, in its "threaded, high
//! performance" variant (`server_threaded_highperformance.cc`).
//!
//! Clients send length-prefixed messages ([`LengthHeaderCodec`]); each one
//! is broadcast to every connected client. Each I/O loop keeps the list of
//! *its own* connections in a thread-local, so a broadcast takes no global
//! lock per connection: the message is encoded once and one closure is
//! queued into every loop, which writes it to its connections.
//!
//! ```text
//! asio_chat_server PORT [THREADS]
//! ```

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;

use net::{
    EventLoop, EventLoopHandle, LengthHeaderCodec, ServerOption, TcpConnectionPtr, TcpServer,
};
use parking_lot::Mutex;

thread_local! {
    /// The connections of the loop running on this thread.
    static LOCAL_CONNECTIONS: RefCell<HashMap<u64, TcpConnectionPtr>> = RefCell::new(HashMap::new());
}

/// Every I/O loop, filled in as each loop thread starts.
static LOOPS: Mutex<Vec<EventLoopHandle>> = Mutex::new(Vec::new());

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut args = std::env::args().skip(1);
    let Some(port) = args.next().and_then(|a| a.parse::<u16>().ok()) else {
        eprintln!("Usage: asio_chat_server PORT [THREADS]");
        std::process::exit(2);
    };
    let threads: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);

    let mut lp = EventLoop::new()?;
    let mut server = TcpServer::new(
        &lp,
        SocketAddr::from(([0, 0, 0, 0], port)),
        "ChatServer",
        ServerOption::NoReusePort,
    )?;
    server.set_thread_num(threads);
    server.set_thread_init_callback(|lp: &mut EventLoop| LOOPS.lock().push(lp.handle()));
    server.set_connection_callback(|conn| {
        log::info!(
            "{} -> {} is {}",
            conn.local_addr(),
            conn.peer_addr(),
            if conn.connected() { "UP" } else { "DOWN" }
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
    let codec = LengthHeaderCodec::new(Arc::new(|_conn, message: String, _| distribute(message)));
    server.set_message_callback(move |conn, buf, t| codec.on_message(conn, buf, t));
    server.start(&mut lp)?;
    lp.run();
    Ok(())
}

/// Queues one write of `message` into every loop.
fn distribute(message: String) {
    let framed = Arc::new(LengthHeaderCodec::encode(message.as_bytes()));
    let loops = LOOPS.lock().clone();
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
