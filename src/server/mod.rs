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
//! The chat port's callbacks are in listener.rs, one set for the plain and
//! the TLS listener (`--tls-listen`, tls.rs).
//!
//! This folder is the only part of the chat server that imports net: the
//! service sees each connection as a [`Peer`](crate::service::Peer),
//! implemented here by `TcpPeer` (peer.rs), and the server keeps the peer
//! and the service's session in the connection's `Context` (context.rs).
//! The web listener (`--http`, web/) serves the page, `/ws` (a second
//! `Peer`, `WsPeer`, admitted and swept as TCP connections are:
//! admission.rs, idle.rs), `/healthz`, `/readyz` and `/metrics`
//! (metrics.rs) on its own I/O threads; `--https` serves the same routes
//! over TLS on a second one, with the TLS chat listener's acceptor.
//!
//! [`run`] is the whole life of a server process: open the store, reset
//! users a crash left online, listen, join the cluster (with `--redis`),
//! serve until SIGINT or SIGTERM, then shut down gracefully (see
//! [`shutdown`]).

mod admission;
mod cluster;
mod context;
mod idle;
mod listener;
mod metrics;
mod notify;
mod peer;
mod prelogin;
pub mod shutdown;
mod startup;
mod timed_store;
mod tls;
mod web;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use net::http::HttpServer;
use net::{EventLoop, EventLoopHandle, ServerOption, TcpServer};

use crate::cluster::Cluster;
use crate::config::Config;
use crate::runtime::{self, BusyTime, PasswordHasher};
use crate::service::session::Rate;
use crate::service::{LimitSettings, LogOptions, Service};
use crate::storage;
use admission::Admission;

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
    let store = startup::open_store(&config.db, config.migrate)?;
    // Single node: the journal in front of the store (storage::journal).
    let store: Arc<dyn storage::Store> = match config.journal_dir() {
        Some(dir) => {
            let options = storage::JournalOptions {
                dir,
                fsync: config.log_fsync,
                apply_interval: config.journal_apply_interval,
            };
            Arc::new(storage::JournaledStore::open(store, &options)?)
        }
        None => store,
    };
    let store = timed_store::TimedStore::wrap(store, config.metrics);
    // In cluster mode the other nodes' users are in the same table: Redis's
    // claims, not the `state` column, say who is online.
    if config.redis.is_none() {
        let reset = store.reset_all_online()?;
        if reset > 0 {
            log::warn!("{reset} users were left online by an unclean stop; reset to offline");
        }
    }
    let flushed_store = store.clone();
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
    service.set_sessions_per_user(config.sessions_per_user);
    service.set_hold_limits(config.login_hold_bytes, config.login_hold_total);
    service.set_max_pending_hashes(config.max_pending_hashes);
    service.set_login_limits(&config.login_limits);
    let key_path = config.token_key_path();
    let key = runtime::TokenKey::load_or_create(&key_path, config.token_ttl)
        .map_err(|e| format!("token key {}: {e}", key_path.display()))?;
    service.set_token_key(key);
    service.set_limits(&limit_settings(config));
    let mut lp = EventLoop::new()?;
    let mut server = TcpServer::new(&lp, config.listen, "ChatServer", ServerOption::NoReusePort)
        .map_err(|e| startup::bind_error("--listen", config.listen, e))?;
    server.set_thread_num(config.threads);
    let acceptor = tls::acceptor(config)?;
    let tls = tls::listener(&lp, config, acceptor.as_ref())?;
    let cluster = cluster::join(config, &service, server.listen_addr())?;
    let admission = Admission::new(config);
    listener::install_callbacks(&mut server, &service, config, &admission);
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
        admission: admission.clone(),
        inspector: inspector.clone(),
    };
    let mut webs = web::start_all(&mut lp, config, &web_parts, acceptor.as_ref())?;
    server.start(&mut lp)?;
    let mut loops = busy_time_sources(&server);
    let mut tls_server = None;
    if let Some(mut s) = tls {
        listener::install_callbacks(&mut s, &service, config, &admission);
        s.start(&mut lp)?;
        loops.extend(busy_time_sources(&s));
        announce_tls(config, s.listen_addr());
        tls_server = Some(s);
    }
    let reload = match (acceptor, &config.tls_cert, &config.tls_key) {
        (Some(a), Some(cert), Some(key)) => Some(tls::reloader(a, cert.clone(), key.clone())),
        _ => None,
    };
    for (_, web) in &webs {
        loops.extend(web.io_loops().into_iter().map(busy_time));
    }
    service.watch_io_loops(loops);
    inspector.set_loops(named_loops(&server, tls_server.as_ref(), &webs));
    let draining = readiness.clone();
    let on_first = move || draining.set_draining();
    let stop = shutdown::on_signals(lp.handle(), config.drain_grace, on_first, reload)?;
    for (scheme, web) in &webs {
        let line = format!("web client: {scheme}://{}/", web.listen_addr());
        startup::announce_line(config, &line);
    }
    announce(config, server.listen_addr(), cluster.as_deref());
    notify::ready();

    lp.run();

    notify::stopping();
    log::info!("shutting down: no new connections, finishing queued writes");
    readiness.set_draining();
    server.stop_accepting(&mut lp);
    if let Some(s) = tls_server.as_mut() {
        s.stop_accepting(&mut lp);
    }
    for (_, web) in &mut webs {
        web.stop_accepting(&mut lp);
    }
    drop(tls_server);
    drop(server); // closes every connection and joins the I/O threads
    drop(webs); // the same for the web listeners'
    readiness.stop();
    checker.thread().unpark();
    let _ = checker.join();
    if let Some(cluster) = cluster {
        // The closed sessions' cursors into the store before their claims
        // go: a user reconnecting to another node reads them there.
        service.settle_sessions(DRAIN_TIMEOUT);
        // Routes what is queued (or stores it), releases this node's claims.
        cluster.shutdown();
    }
    let finished = service.shutdown(DRAIN_TIMEOUT);
    // The journal's last entries and cursor moves into the store itself.
    if let Err(e) = flushed_store.flush() {
        log::error!("shutdown: applying the journal: {e}");
    }
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
fn named_loops(
    server: &TcpServer,
    tls: Option<&TcpServer>,
    webs: &[(&'static str, HttpServer)],
) -> Vec<(String, EventLoopHandle)> {
    let name = |kind: &'static str, loops: Vec<EventLoopHandle>| {
        let named = loops.into_iter().enumerate();
        named.map(move |(i, lp)| (format!("{kind}-{i}"), lp))
    };
    let tls = tls.map(TcpServer::io_loops).unwrap_or_default();
    let webs = webs.iter().flat_map(|(scheme, web)| {
        let kind = if *scheme == "https" { "web-tls" } else { "web" };
        name(kind, web.io_loops())
    });
    name("tcp", server.io_loops())
        .chain(name("tls", tls))
        .chain(webs)
        .collect()
}

fn busy_time(lp: EventLoopHandle) -> BusyTime {
    Box::new(move || lp.stats().busy_time)
}

/// The TLS listener's line, printed before [`announce`]'s.
fn announce_tls(config: &Config, addr: SocketAddr) {
    startup::announce_line(config, &format!("chat-server TLS listening on {addr}"));
}

/// The readiness line tests and operators wait for.
fn announce(config: &Config, addr: SocketAddr, cluster: Option<&Cluster>) {
    let node = cluster.map_or_else(String::new, |c| format!(", cluster node: {}", c.node_id()));
    let line = format!(
        "chat-server listening on {addr} (store: {}{node})",
        describe_store(&config.db)
    );
    startup::announce_line(config, &line);
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
