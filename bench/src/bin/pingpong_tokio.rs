//! muduo's pingpong benchmark written on tokio: the comparator a Rust user
//! would reach for, measured the same way as the `net` crate's pingpong.
//!
//! ```text
//! pingpong_tokio server ADDRESS PORT THREADS
//! pingpong_tokio client HOST PORT THREADS BLOCKSIZE SESSIONS SECONDS
//! ```
//!
//! The server echoes everything it receives. Each client session sends one
//! block of BLOCKSIZE bytes when it connects and then echoes back whatever
//! it reads, so SESSIONS blocks bounce between client and server for
//! SECONDS. The client then prints the bytes it read and, last,
//! `N MiB/s throughput` = bytes read / SECONDS / 1 MiB, as muduo's client
//! computes it. Both sides use a multi-threaded runtime with THREADS worker
//! threads and set `TCP_NODELAY`, as muduo's pingpong does.
//!
//! The code is what a tokio user would write: one task per connection, read
//! into a buffer, `write_all` it back.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Read buffer per connection, as large as muduo's extra read buffer.
const READ_BUFFER: usize = 64 * 1024;

const USAGE: &str = "usage:
    pingpong_tokio server ADDRESS PORT THREADS
    pingpong_tokio client HOST PORT THREADS BLOCKSIZE SESSIONS SECONDS";

/// What the command line asks for.
enum Mode {
    Server {
        addr: SocketAddr,
        threads: usize,
    },
    Client {
        addr: SocketAddr,
        threads: usize,
        block: usize,
        sessions: usize,
        seconds: u64,
    },
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = match parse(&args) {
        Ok(mode) => mode,
        Err(why) => {
            eprintln!("pingpong_tokio: {why}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let threads = match mode {
        Mode::Server { threads, .. } | Mode::Client { threads, .. } => threads,
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("pingpong_tokio: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async move {
        match mode {
            Mode::Server { addr, .. } => server(addr).await,
            Mode::Client {
                addr,
                block,
                sessions,
                seconds,
                ..
            } => client(addr, block, sessions, seconds).await,
        }
    });
    // Sessions still running are dropped with the runtime, without waiting.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("pingpong_tokio: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse(args: &[String]) -> Result<Mode, String> {
    let number = |i: usize, what: &str| -> Result<usize, String> {
        let text = args.get(i).ok_or_else(|| format!("missing {what}"))?;
        text.parse()
            .map_err(|_| format!("{what}: {text:?} is not a number"))
    };
    let addr = || -> Result<SocketAddr, String> {
        let host = args.get(1).ok_or("missing address")?;
        let port = number(2, "port")?;
        let text = format!("{host}:{port}");
        text.parse()
            .map_err(|_| format!("{text} is not an IP address and port"))
    };
    match args.first().map(String::as_str) {
        Some("server") if args.len() == 4 => Ok(Mode::Server {
            addr: addr()?,
            threads: number(3, "threads")?.max(1),
        }),
        Some("client") if args.len() == 7 => Ok(Mode::Client {
            addr: addr()?,
            threads: number(3, "threads")?.max(1),
            block: number(4, "blocksize")?.max(1),
            sessions: number(5, "sessions")?,
            seconds: number(6, "seconds")? as u64,
        }),
        _ => Err("wrong arguments".into()),
    }
}

/// Accepts forever; each connection echoes in its own task.
async fn server(addr: SocketAddr) -> std::io::Result<()> {
    // As muduo's Acceptor: SO_REUSEADDR and a long listen backlog.
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    let listener = socket.listen(4096)?;
    eprintln!("pingpong_tokio server listening on {addr}");
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            // A peer that resets the connection just ends its task.
            let _ = echo(stream).await;
        });
    }
}

/// Writes back everything read until the peer closes.
async fn echo(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buf = vec![0u8; READ_BUFFER];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n]).await?;
    }
}

/// What one session has read so far; only its own task writes it.
#[derive(Default)]
struct Stats {
    bytes: AtomicU64,
    messages: AtomicU64,
}

/// Runs `sessions` sessions for `seconds` and prints the throughput.
async fn client(
    addr: SocketAddr,
    block: usize,
    sessions: usize,
    seconds: u64,
) -> std::io::Result<()> {
    let counters: Vec<Arc<Stats>> = (0..sessions).map(|_| Arc::default()).collect();
    let message: Arc<[u8]> = (0..block).map(|i| (i % 128) as u8).collect();
    let mut failures = 0;
    let mut tasks = Vec::with_capacity(sessions);
    for stats in &counters {
        let (stats, message) = (Arc::clone(stats), Arc::clone(&message));
        tasks.push(tokio::spawn(session(addr, message, stats)));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    for task in tasks {
        if task.is_finished() && matches!(task.await, Ok(Err(_)) | Err(_)) {
            failures += 1;
        }
    }
    let total: u64 = counters
        .iter()
        .map(|c| c.bytes.load(Ordering::Relaxed))
        .sum();
    let messages: u64 = counters
        .iter()
        .map(|c| c.messages.load(Ordering::Relaxed))
        .sum();
    if failures > 0 {
        eprintln!("{failures} sessions failed");
    }
    let secs = seconds.max(1) as f64;
    println!("{total} total bytes read");
    println!("{messages} total messages read");
    println!(
        "{} average message size",
        total as f64 / messages.max(1) as f64
    );
    println!(
        "{} MiB/s throughput",
        total as f64 / secs / (1024.0 * 1024.0)
    );
    Ok(())
}

/// One session: send a block, then echo back whatever arrives, counting
/// what it reads in `stats`.
async fn session(addr: SocketAddr, message: Arc<[u8]>, stats: Arc<Stats>) -> std::io::Result<()> {
    let mut stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    stream.write_all(&message).await?;
    let mut buf = vec![0u8; READ_BUFFER];
    let (mut bytes, mut messages) = (0u64, 0u64);
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        bytes += n as u64;
        messages += 1;
        stats.bytes.store(bytes, Ordering::Relaxed);
        stats.messages.store(messages, Ordering::Relaxed);
        stream.write_all(&buf[..n]).await?;
    }
}
