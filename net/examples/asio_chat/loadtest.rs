//! A load test for the asio chat servers, after muduo's
//! `examples/asio/chat/loadtest.cc`: CLIENTS connections spread over
//! THREADS loops; once all are connected, the first client sends MESSAGES
//! messages, each carrying its send time, and every client records how
//! long each broadcast took to reach it. Prints the fan-out latency
//! percentiles.
//!
//! What it teaches: many `TcpClient`s on an `EventLoopThreadPool`, the
//! client-side twin of a server's I/O threads; and measuring latency
//! against one clock shared by the process.
//!
//! ```text
//! asio_chat_loadtest HOST PORT THREADS CLIENTS [MESSAGES]
//! ```

mod codec;

use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use codec::LengthHeaderCodec;
use net::{EventLoop, EventLoopHandle, EventLoopThreadPool, TcpClient};
use parking_lot::Mutex;

/// The clock all latencies are measured against.
static EPOCH: OnceLock<Instant> = OnceLock::new();

fn nanos_now() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

struct Shared {
    clients: usize,
    expected: usize,
    connected: AtomicUsize,
    received: AtomicUsize,
    latencies_ns: Mutex<Vec<u64>>,
    main_loop: EventLoopHandle,
}

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 5 {
        eprintln!("Usage: asio_chat_loadtest HOST PORT THREADS CLIENTS [MESSAGES]");
        std::process::exit(2);
    }
    let bad = |what: &str| -> std::io::Error { std::io::Error::other(format!("invalid {}", what)) };
    let ip: IpAddr = args[1].parse().map_err(|_| bad("host"))?;
    let port: u16 = args[2].parse().map_err(|_| bad("port"))?;
    let threads: usize = args[3].parse().map_err(|_| bad("threads"))?;
    let clients: usize = args[4].parse().map_err(|_| bad("clients"))?;
    let messages: usize = args.get(5).and_then(|m| m.parse().ok()).unwrap_or(10);
    let addr = SocketAddr::new(ip, port);
    nanos_now();

    let mut lp = EventLoop::new()?;
    let mut pool = EventLoopThreadPool::new(lp.handle(), "loadtest");
    pool.set_thread_num(threads);
    pool.start(None)?;
    let shared = Arc::new(Shared {
        clients,
        expected: clients * messages,
        connected: AtomicUsize::new(0),
        received: AtomicUsize::new(0),
        latencies_ns: Mutex::new(Vec::with_capacity(clients * messages)),
        main_loop: lp.handle(),
    });
    let all: Vec<TcpClient> = (0..clients)
        .map(|i| new_client(&pool.get_next_loop(), addr, i, &shared))
        .collect();
    for c in &all {
        c.connect();
    }
    // Start sending once everyone is connected.
    let all = Rc::new(all);
    let first = all.clone();
    let s = shared.clone();
    let mut sent = false;
    lp.run_every(Duration::from_millis(10), move |_| {
        if sent || s.connected.load(Ordering::Acquire) < s.clients {
            return;
        }
        if let Some(conn) = first.first().and_then(|c| c.connection()) {
            for _ in 0..messages {
                LengthHeaderCodec::send(&conn, nanos_now().to_string().as_bytes());
            }
            sent = true;
        }
    });
    lp.run_after(Duration::from_secs(60), |lp| {
        eprintln!("timed out");
        lp.quit();
    });
    lp.run();
    report(&shared);
    Ok(())
}

fn new_client(lp: &EventLoopHandle, addr: SocketAddr, i: usize, shared: &Arc<Shared>) -> TcpClient {
    let client = TcpClient::new(lp, addr, format!("load{}", i));
    let s = shared.clone();
    client.set_connection_callback(move |conn| {
        if conn.connected() {
            s.connected.fetch_add(1, Ordering::AcqRel);
        }
    });
    let s = shared.clone();
    let codec = LengthHeaderCodec::new(Arc::new(move |_conn, msg: String, _| {
        if let Ok(sent) = msg.parse::<u64>() {
            s.latencies_ns.lock().push(nanos_now().saturating_sub(sent));
        }
        if s.received.fetch_add(1, Ordering::AcqRel) + 1 == s.expected {
            s.main_loop.quit();
        }
    }));
    client.set_message_callback(move |conn, buf, t| codec.on_message(conn, buf, t));
    client
}

fn report(shared: &Shared) {
    let mut lat = shared.latencies_ns.lock().clone();
    lat.sort_unstable();
    let pct = |p: f64| -> f64 {
        if lat.is_empty() {
            return 0.0;
        }
        let idx = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        lat[idx] as f64 / 1000.0
    };
    println!(
        "{} clients, {} of {} messages received",
        shared.clients,
        lat.len(),
        shared.expected
    );
    println!(
        "fan-out latency us: p50 {:.0}  p90 {:.0}  p99 {:.0}  max {:.0}",
        pct(0.5),
        pct(0.9),
        pct(0.99),
        pct(1.0)
    );
}
