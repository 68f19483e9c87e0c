//! The echo server of `echo.rs`, over TLS: the one example that goes
//! beyond muduo (see net/README.md, "TLS: where the port goes beyond
//! muduo"). The message callback is the same line; only `set_tls` differs.
//!
//! ```text
//! cargo run -p net --example tls_echo -- CERT.pem KEY.pem [PORT] [THREADS]   # default 2008 0
//! ```
//!
//! A self-signed pair for a test, with openssl:
//!
//! ```text
//! openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
//!     -keyout key.pem -out cert.pem -days 30 -subj /CN=localhost \
//!     -addext subjectAltName=DNS:localhost
//! openssl s_client -connect 127.0.0.1:2008 -CAfile cert.pem -servername localhost
//! ```
//!
//! Sending the process SIGHUP is not wired here; the chat server shows a
//! reload (`TlsAcceptor::reload`) done on its signal thread.

use std::net::SocketAddr;
use std::path::PathBuf;

use net::{EventLoop, ServerOption, TcpServer, TlsAcceptor};

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut args = std::env::args().skip(1);
    let (Some(cert), Some(key)) = (args.next(), args.next()) else {
        eprintln!("usage: tls_echo CERT.pem KEY.pem [PORT] [THREADS]");
        std::process::exit(2);
    };
    let port: u16 = args.next().and_then(|a| a.parse().ok()).unwrap_or(2008);
    let threads: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(0);

    // Reads the files: here, before the loop runs, never on it.
    let acceptor = TlsAcceptor::from_pem_files(&PathBuf::from(cert), &PathBuf::from(key))?;
    let mut lp = EventLoop::new()?;
    let addr = SocketAddr::from(([0, 0, 0, 0], port));
    let mut server = TcpServer::new(&lp, addr, "TlsEchoServer", ServerOption::NoReusePort)?;
    server.set_thread_num(threads);
    server.set_tls(acceptor);
    server.set_connection_callback(|conn| {
        log::info!(
            "TlsEchoServer - {} -> {} is {}",
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
