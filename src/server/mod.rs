//! The server: `net::TcpServer` callbacks → codec → [`Service`].
//!
//! ```text
//!  main thread          I/O threads (--threads)                      workers, hashers
//!  ───────────          ─────────────────────────                    ────────────────
//!  EventLoop + accept → connection callback: Context (peer, session),
//!                         idle table
//!                         (refused over --max-connections-per-address,
//!                         --max-anonymous-per-address)
//!                       message callback: decode → Service::handle ──► Store calls, argon2
//!                       high-water mark: drop slow readers        ◄── Peer::send (send_vec)
//!                       sweep timer (one per loop): idle and      ◄── Peer::run_on_own_loop
//!                         login timeouts, address slots
//!                       TCP keepalive on every accepted socket    ◄── Peer::close_with (takeover)
//! ```
//!
//! This folder is the only part of the chat server that imports net: the
//! service sees each connection as a [`Peer`](crate::service::Peer),
//! implemented here by `TcpPeer` (peer.rs), and the server keeps the peer
//! and the service's session in the connection's `Context` (context.rs).
//! The web listener (`--http`, web/) serves the page, `/ws` (a second
//! `Peer`, `WsPeer`, admitted and swept as TCP connections are:
//! admission.rs, idle.rs), `/healthz`, `/readyz` and `/metrics`
//! (metrics.rs) on its own I/O threads.
//!
//! [`run`] is the whole life of a server process: open the store, reset
//! users a crash left online, listen, join the cluster (with `--redis`),
//! serve until SIGINT or SIGTERM, then shut down gracefully (see
//! [`shutdown`]).

mod admission;
mod cluster;
mod context;
mod idle;
mod metrics;
mod peer;
mod prelogin;
pub mod shutdown;
mod timed_store;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use net::http::HttpServer;
use net::{
    Buffer, EventLoop, EventLoopHandle, KeepAlive, ServerOption, TcpConnectionPtr, TcpServer,
};

use crate::cluster::Cluster;
use crate::config::Config;
use crate::protocol::{encode, reply};
use crate::runtime::{self, BusyTime, PasswordHasher};
use crate::service::session::Rate;
use crate::service::{LimitSettings, LogOptions, Service};
use crate::storage;
use admission::Admission;
use context::Context;
use metrics::Transport;
use peer::TcpPeer;
use prelogin::AddressSlots;

/// How long shutdown waits for queued database writes.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// A failure to start (or cleanly stop) the server.
pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// Runs a chat server until SIGINT or SIGTERM; see the [module docs](self).
///
/// Prints `chat-server listening on ADDR (store: URL)` to stderr once it
/// accepts connections (with the real port when `--listen` has port 0).
///
/// # Errors
/// If the store cannot be opened, the address cannot be bound, or a thread
/// cannot be started.
pub fn run(config: &Config) -> Result<(), Error> {
    runtime::return_large_allocations_to_the_os();
    let store = timed_store::TimedStore::wrap(storage::open(&config.db)?);
    // In cluster mode the other nodes' users are in the same table: Redis's
    // claims, not the `state` column, say who is online.
    if config.redis.is_none() {
        let reset = store.reset_all_online()?;
        if reset > 0 {
            log::warn!("{reset} users were left online by an unclean stop; reset to offline");
        }
    }
    let hasher = PasswordHasher::new(config.argon2_memory_kib, config.argon2_passes)?;
    let checked_store = store.clone();
    let service = Service::new(
        store,
        config.workers,
        config.hash_threads,
        hasher,
        config.hash_max_wait,
        config.hash_priority,
        LogOptions {
            writers: config.log_writers,
            batch: config.log_batch,
            queue: config.log_queue,
            retention: config.history_retention,
        },
    )?;
    service.set_login_takeover_grace(config.login_takeover_grace);
    service.set_hold_limits(config.login_hold_bytes, config.login_hold_total);
    service.set_max_pending_hashes(config.max_pending_hashes);
    service.set_login_limits(&config.login_limits);
    service.set_limits(&limit_settings(config));
    let mut lp = EventLoop::new()?;
    let mut server = TcpServer::new(&lp, config.listen, "ChatServer", ServerOption::NoReusePort)?;
    server.set_thread_num(config.threads);
    let cluster = cluster::join(config, &service, server.listen_addr())?;
    let admission = install_callbacks(&mut server, &service, config);
    let sampled = service.clone();
    let sampled_cluster = cluster.clone();
    let sample = move || {
        let stats = sampled_cluster.as_ref().map(|c| c.stats());
        metrics::record_sample(sampled.online_users(), sampled.worker_jobs(), stats);
    };
    if !config.metrics {
        metrics::disable();
    }
    let (readiness, checker) =
        web::Readiness::start(checked_store, cluster.clone(), Box::new(sample))?;
    let inspector = Arc::new(web::Inspector::default());
    let web_parts = web::Parts {
        svc: service.clone(),
        readiness: readiness.clone(),
        admission,
        inspector: inspector.clone(),
    };
    let mut web = match config.http {
        Some(addr) => Some(
            web::start(&mut lp, addr, config, web_parts)
                .map_err(|e| format!("--http {addr}: {e}"))?,
        ),
        None => None,
    };
    server.start(&mut lp)?;
    let mut loops = busy_time_sources(&server);
    if let Some(web) = &web {
        loops.extend(web.io_loops().into_iter().map(busy_time));
    }
    service.watch_io_loops(loops);
    inspector.set_loops(named_loops(&server, web.as_ref()));
    let draining = readiness.clone();
    let stop = shutdown::on_signals(lp.handle(), config.drain_grace, move || {
        draining.set_draining()
    })?;
    if let Some(web) = &web {
        let line = format!("web client: http://{}/", web.listen_addr());
        log::info!("{line}");
        eprintln!("{line}");
    }
    announce(server.listen_addr(), &config.db, cluster.as_deref());

    lp.run();

    log::info!("shutting down: no new connections, finishing queued writes");
    readiness.set_draining();
    server.stop_accepting(&mut lp);
    if let Some(web) = web.as_mut() {
        web.stop_accepting(&mut lp);
    }
    drop(server); // closes every connection and joins the I/O threads
    drop(web); // the same for the web listener's
    readiness.stop();
    checker.thread().unpark();
    let _ = checker.join();
    if let Some(cluster) = cluster {
        // Routes what is queued (or stores it), releases this node's claims.
        cluster.shutdown();
    }
    let finished = service.shutdown(DRAIN_TIMEOUT);
    stop.close();
    if !finished {
        // The log has the counts; the exit status tells the supervisor.
        return Err("stopped with accepted work left undone (see the log)".into());
    }
    log::info!("stopped");
    Ok(())
}

/// One busy-time source per I/O loop, for the hash gate
/// ([`runtime::HashGate`]), which does not know about event loops.
/// The service's limits ([`crate::service::limits`]) as configured.
fn limit_settings(config: &Config) -> LimitSettings {
    let rate = |(per_second, burst)| Rate { per_second, burst };
    LimitSettings {
        max_pending_requests: config.max_pending_requests,
        worker_queue: config.worker_queue,
        chat: rate(config.chat_rate),
        request: rate(config.request_rate),
        max_friends: config.max_friends,
        max_groups_created: config.max_groups_created,
        max_groups_joined: config.max_groups_joined,
        max_group_size: config.max_group_size,
        max_pending_per_recipient: config.max_pending_per_recipient,
    }
}

fn busy_time_sources(server: &TcpServer) -> Vec<BusyTime> {
    server.io_loops().into_iter().map(busy_time).collect()
}

/// Every I/O loop, named by listener, for `/inspect`.
fn named_loops(server: &TcpServer, web: Option<&HttpServer>) -> Vec<(String, EventLoopHandle)> {
    let tcp = server.io_loops().into_iter();
    let tcp = tcp.enumerate().map(|(i, lp)| (format!("tcp-{i}"), lp));
    let web = web
        .map(HttpServer::io_loops)
        .unwrap_or_default()
        .into_iter();
    let web = web.enumerate().map(|(i, lp)| (format!("web-{i}"), lp));
    tcp.chain(web).collect()
}

fn busy_time(lp: EventLoopHandle) -> BusyTime {
    Box::new(move || lp.stats().busy_time)
}

/// The readiness line tests and operators wait for.
fn announce(addr: SocketAddr, db: &str, cluster: Option<&Cluster>) {
    let node = cluster.map_or_else(String::new, |c| format!(", cluster node: {}", c.node_id()));
    let line = format!(
        "chat-server listening on {addr} (store: {}{node})",
        describe_store(db)
    );
    log::info!("{line}");
    eprintln!("{line}");
}

/// The store URL without a password, and a SQLite file's absolute path.
fn describe_store(db: &str) -> String {
    if let Some(rest) = db.strip_prefix("mysql://") {
        if let Some((creds, host)) = rest.split_once('@') {
            let user = creds.split(':').next().unwrap_or("");
            return format!("mysql://{user}:***@{host}");
        }
        return db.to_owned();
    }
    let path = db.strip_prefix("sqlite:").unwrap_or(db);
    let path = path.strip_prefix("//").unwrap_or(path);
    if path == ":memory:" {
        return db.to_owned();
    }
    match std::env::current_dir() {
        Ok(dir) => format!("sqlite:{}", dir.join(path).display()),
        Err(_) => db.to_owned(),
    }
}

/// The TCP listener's callbacks; returns what admits connections, for the
/// web listener's to share.
fn install_callbacks(server: &mut TcpServer, service: &Arc<Service>, config: &Config) -> Admission {
    // Peers gone without a FIN are reset by the kernel, then close as any
    // connection does (and leave the online map).
    if let Some(ka) = config.keepalive {
        server.set_keep_alive(KeepAlive {
            idle: ka.idle,
            interval: ka.interval,
            probes: ka.probes,
        });
    }
    let rules = Arc::new(idle::Rules {
        idle_timeout: config.idle_timeout,
        login_timeout: config.login_timeout,
        slots: AddressSlots::new(config.max_anonymous_per_address),
    });
    let admission = Admission {
        rules: rules.clone(),
        connections: AddressSlots::new(config.max_connections_per_address),
    };
    let sweep_rules = rules.clone();
    server.set_thread_init_callback(move |lp: &mut EventLoop| {
        idle::install(lp, sweep_rules.clone());
    });

    let svc = service.clone();
    let admits = admission.clone();
    server.set_connection_callback(move |conn: &TcpConnectionPtr| {
        if conn.connected() {
            metrics::count_connection(Transport::Tcp, 1);
            connection_up(conn, &admits);
        } else {
            log::debug!("{} down", conn.name());
            metrics::count_connection(Transport::Tcp, -1);
            idle::untrack(conn);
            if let Some(cx) = conn.context::<Context>() {
                svc.disconnected(&cx.peer, &cx.session);
            }
            // Breaks the cycle connection → context → peer → connection;
            // gives back the address slot with the context.
            conn.clear_context();
        }
    });

    let svc = service.clone();
    let max_message = config.max_message;
    server.set_message_callback(
        move |conn: &TcpConnectionPtr, buf: &mut Buffer, _: Instant| {
            on_message(&svc, conn, buf, max_message);
        },
    );

    server.set_high_water_mark_callback(
        |conn: &TcpConnectionPtr, queued: usize| {
            log::warn!(
                "{}: {queued} bytes unsent (slow reader), closing",
                conn.name()
            );
            conn.force_close();
        },
        config.high_water_mark,
    );
    admission
}

/// A new connection: its context ([`Admission::admit`]); one refused is
/// told why, shut down, and closed by a sweep. Its loop thread.
fn connection_up(conn: &TcpConnectionPtr, admission: &Admission) {
    log::debug!("{} up from {}", conn.name(), conn.peer_addr());
    if let Err(e) = conn.set_tcp_no_delay(true) {
        log::debug!("{}: TCP_NODELAY: {e}", conn.name());
    }
    let ip = conn.peer_addr().ip();
    let (cx, refusal) = admission.admit(TcpPeer::new_ref(conn), ip);
    conn.set_context(cx.clone());
    idle::track(conn);
    if let Some((errno, what, why)) = refusal {
        log::info!("{}: {what} ({ip}), refusing", conn.name());
        conn.send_vec(encode(&reply::failure(None, errno, why)));
        cx.close_by_sweep();
        conn.shutdown();
    }
}

/// Decodes every complete message in `buf` and hands it to the service.
/// A message with a number out of range gets an error reply and is
/// skipped. Bytes that can never be a message get an error reply; then
/// the connection is shut down and the rest of its input ignored.
fn on_message(svc: &Arc<Service>, conn: &TcpConnectionPtr, buf: &mut Buffer, max_message: usize) {
    let Some(cx) = conn.context::<Context>() else {
        buf.retrieve_all();
        return;
    };
    if cx.discarding() {
        buf.retrieve_all();
        return;
    }
    cx.touch();
    // Every complete object, in order; a partial one waits for more bytes.
    loop {
        // Again before each object: a takeover may close the connection
        // (from a worker) while this read is being handled.
        if cx.discarding() {
            buf.retrieve_all();
            return;
        }
        // The lock is the connection's own and held for one decode only.
        let decoded = cx.decoder.lock().decode(buf.peek(), max_message);
        match decoded {
            Ok(Some((obj, consumed))) => {
                buf.retrieve(consumed);
                metrics::count_request(&obj);
                svc.handle(&cx.peer, &cx.session, obj);
            }
            Ok(None) => return,
            Err(e) => {
                // One bad message (a number out of range): refuse it, go on.
                if let Some(consumed) = e.skip() {
                    log::debug!("{}: {e}", conn.name());
                    buf.retrieve(consumed);
                    cx.peer.send(encode(&e.reply()));
                    continue;
                }
                log::info!("{}: {e}; closing", conn.name());
                cx.peer.send(encode(&e.reply()));
                cx.start_discarding();
                buf.retrieve_all();
                conn.shutdown();
                return;
            }
        }
    }
}
