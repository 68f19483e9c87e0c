//! The echo server, muduo's `examples/simple/echo`: every byte received is
//! sent back.
//!
//! ```text
//! cargo run -p net --example echo -- [PORT] [THREADS]     # default 2007 0
//! ```

use std::net::SocketAddr;

use net::{EventLoop, ServerOption, TcpServer};

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2007);
    let threads: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);

    let mut lp = EventLoop::new()?;
    let addr = SocketAddr::from(([0, 0, 0, 0], port));
    let mut server = TcpServer::new(&lp, addr, "EchoServer", ServerOption::NoReusePort)?;
    server.set_thread_num(threads);
    server.set_connection_callback(|conn| {
        log::info!(
            "EchoServer - {} -> {} is {}",
            conn.peer_addr(),
            conn.local_addr(),
            if conn.connected() { "UP" } else { "DOWN" }
        );
    });
    server.set_message_callback(|conn, buf, _time| conn.send_buffer(buf));
    server.start(&mut lp)?;
    lp.run();
    Ok(())
}
