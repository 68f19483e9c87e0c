//! The pingpong server, muduo's `examples/pingpong/server.cc`: an echo
//! server tuned for throughput tests (TCP_NODELAY, N I/O threads).
//!
//! What it teaches: the least a server can do per message, and so what
//! the reactor itself costs (see `bench/pingpong.sh` at the top of the
//! repository for the comparison with muduo and tokio).
//!
//! Not in muduo: with a fourth argument, `direct` or `queue`, every reply
//! is sent from *another* I/O loop than the connection's (the next one),
//! so each send crosses threads and takes the chosen path of
//! `CrossThreadSend` (see net's README, "Thread rules"): `direct` writes
//! from that loop under the output lock, `queue` hops back to the
//! connection's loop as muduo's `send` does. `net/bench/cross_thread_send.sh`
//! compares the two.
//!
//! ```text
//! pingpong_server ADDRESS PORT THREADS [direct|queue]
//! ```

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use net::{CrossThreadSend, EventLoop, EventLoopHandle, ServerOption, TcpServer};

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("Usage: pingpong_server ADDRESS PORT THREADS [direct|queue]");
        std::process::exit(2);
    }
    let ip: IpAddr = args[1].parse().map_err(std::io::Error::other)?;
    let port: u16 = args[2].parse().map_err(std::io::Error::other)?;
    let threads: usize = args[3].parse().map_err(std::io::Error::other)?;
    let cross = match args.get(4).map(String::as_str) {
        None => None,
        Some("direct") => Some(CrossThreadSend::Direct),
        Some("queue") => Some(CrossThreadSend::Queue),
        Some(other) => {
            eprintln!("unknown send path {other:?}: direct or queue");
            std::process::exit(2);
        }
    };

    let mut lp = EventLoop::new()?;
    let mut server = TcpServer::new(
        &lp,
        SocketAddr::new(ip, port),
        "PingPong",
        ServerOption::NoReusePort,
    )?;
    server.set_thread_num(threads);
    server.set_connection_callback(|conn| {
        if conn.connected() {
            let _ = conn.set_tcp_no_delay(true);
        }
    });
    // The I/O loops, known once the server has started them.
    let loops: Arc<OnceLock<Vec<EventLoopHandle>>> = Arc::default();
    match cross {
        None => server.set_message_callback(|conn, buf, _time| conn.send_buffer(buf)),
        Some(mode) => {
            server.set_cross_thread_send(mode);
            let loops = loops.clone();
            server.set_message_callback(move |conn, buf, _time| {
                let data = buf.retrieve_all_as_vec();
                let conn = conn.clone();
                match loops.get().and_then(|all| next_loop(all, conn.get_loop())) {
                    Some(other) => other.queue_in_loop(move |_| conn.send_vec(data)),
                    None => conn.send_vec(data),
                }
            });
        }
    }
    eprintln!(
        "pingpong_server: {} with {} threads",
        server.listen_addr(),
        threads
    );
    server.start(&mut lp)?;
    let _ = loops.set(server.io_loops());
    lp.run();
    Ok(())
}

/// The loop after `current` in `all`, round the ring.
fn next_loop<'a>(
    all: &'a [EventLoopHandle],
    current: &EventLoopHandle,
) -> Option<&'a EventLoopHandle> {
    let at = all.iter().position(|l| l.id() == current.id())?;
    all.get((at + 1) % all.len())
}
