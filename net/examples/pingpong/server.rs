//! The pingpong server, muduo's `examples/pingpong/server.cc`: an echo
//! server tuned for throughput tests (TCP_NODELAY, N I/O threads).
//!
//! ```text
//! pingpong_server ADDRESS PORT THREADS
//! ```

use std::net::{IpAddr, SocketAddr};

use net::{EventLoop, ServerOption, TcpServer};

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 4 {
        eprintln!("Usage: pingpong_server ADDRESS PORT THREADS");
        std::process::exit(2);
    }
    let ip: IpAddr = args[1].parse().map_err(std::io::Error::other)?;
    let port: u16 = args[2].parse().map_err(std::io::Error::other)?;
    let threads: usize = args[3].parse().map_err(std::io::Error::other)?;

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
    server.set_message_callback(|conn, buf, _time| conn.send_buffer(buf));
    eprintln!(
        "pingpong_server: {} with {} threads",
        server.listen_addr(),
        threads
    );
    server.start(&mut lp)?;
    lp.run();
    Ok(())
}
