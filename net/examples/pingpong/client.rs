//! The pingpong client, muduo's `examples/pingpong/client.cc`.
//!
//! SESSIONS connections, spread round-robin over THREADS loop threads, each
//! send one BLOCKSIZE block and then echo back whatever they receive. After
//! SECONDS every session shuts down; when all are closed the client prints
//! the bytes and messages read and the throughput, as muduo's does:
//!
//! ```text
//! pingpong_client HOST PORT THREADS BLOCKSIZE SESSIONS SECONDS
//! ```

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use net::{EventLoop, EventLoopHandle, EventLoopThreadPool, TcpClient};

/// Counters of one session.
#[derive(Default)]
struct Session {
    bytes_read: AtomicU64,
    messages_read: AtomicU64,
}

fn parse<T: std::str::FromStr>(s: &str, what: &str) -> T {
    s.parse().unwrap_or_else(|_| {
        eprintln!("invalid {}: {}", what, s);
        std::process::exit(2)
    })
}

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 7 {
        eprintln!("Usage: pingpong_client HOST PORT THREADS BLOCKSIZE SESSIONS SECONDS");
        std::process::exit(2);
    }
    let ip: IpAddr = parse(&args[1], "host");
    let port: u16 = parse(&args[2], "port");
    let threads: usize = parse(&args[3], "threads");
    let block_size: usize = parse(&args[4], "block size");
    let session_count: usize = parse(&args[5], "sessions");
    let seconds: u64 = parse(&args[6], "seconds");
    let addr = SocketAddr::new(ip, port);

    let mut lp = EventLoop::new()?;
    let main_loop = lp.handle();
    let mut pool = EventLoopThreadPool::new(lp.handle(), "pingpong-client");
    pool.set_thread_num(threads);
    pool.start(None)?;

    let message: Arc<Vec<u8>> = Arc::new((0..block_size).map(|i| (i % 128) as u8).collect());
    let connected = Arc::new(AtomicUsize::new(0));
    let sessions: Vec<Arc<Session>> = (0..session_count).map(|_| Arc::default()).collect();
    let clients: Vec<TcpClient> = sessions
        .iter()
        .enumerate()
        .map(|(i, s)| {
            new_session(
                &pool.get_next_loop(),
                addr,
                i,
                s,
                &message,
                &connected,
                session_count,
                &main_loop,
            )
        })
        .collect();
    for c in &clients {
        c.connect();
    }

    lp.run_after(Duration::from_secs(seconds), move |_| {
        log::warn!("stop");
        for c in &clients {
            c.disconnect();
        }
    });
    lp.run();

    let total_bytes: u64 = sessions
        .iter()
        .map(|s| s.bytes_read.load(Ordering::Relaxed))
        .sum();
    let total_messages: u64 = sessions
        .iter()
        .map(|s| s.messages_read.load(Ordering::Relaxed))
        .sum();
    println!("{} total bytes read", total_bytes);
    println!("{} total messages read", total_messages);
    if let Some(avg) = total_bytes.checked_div(total_messages) {
        println!("{} average message size", avg);
    }
    println!(
        "{} MiB/s throughput",
        total_bytes as f64 / (seconds as f64 * 1024.0 * 1024.0)
    );
    Ok(())
}

/// One session: connect, send the block, echo, and count what is read.
#[allow(clippy::too_many_arguments)]
fn new_session(
    lp: &EventLoopHandle,
    addr: SocketAddr,
    index: usize,
    session: &Arc<Session>,
    message: &Arc<Vec<u8>>,
    connected: &Arc<AtomicUsize>,
    session_count: usize,
    main_loop: &EventLoopHandle,
) -> TcpClient {
    let client = TcpClient::new(lp, addr, format!("C{:05}", index));
    let (message, connected, main_loop) = (message.clone(), connected.clone(), main_loop.clone());
    client.set_connection_callback(move |conn| {
        if conn.connected() {
            let _ = conn.set_tcp_no_delay(true);
            conn.send(&message);
            if connected.fetch_add(1, Ordering::AcqRel) + 1 == session_count {
                log::warn!("all connected");
            }
        } else if connected.fetch_sub(1, Ordering::AcqRel) == 1 {
            log::warn!("all disconnected");
            main_loop.quit();
        }
    });
    let session = session.clone();
    client.set_message_callback(move |conn, buf, _| {
        session.messages_read.fetch_add(1, Ordering::Relaxed);
        session
            .bytes_read
            .fetch_add(buf.readable_bytes() as u64, Ordering::Relaxed);
        conn.send_buffer(buf);
    });
    client
}
