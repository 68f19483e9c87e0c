//! The web listener (`--http`): the browser client, `/ws`, and the
//! operator's endpoints, on net's [`HttpServer`]; and the same routes over
//! TLS (`--https`: `https:` and `wss:`), on a second listener with I/O
//! threads of its own and the chat TLS listener's acceptor (src/server/tls.rs),
//! so one SIGHUP reloads the certificate of both.
//!
//! | route | answer |
//! |---|---|
//! | `GET /`, `/app.js`, `/style.css` | the web client, embedded from `src/web/` at build time |
//! | `GET /ws` | a WebSocket speaking the chat protocol, one JSON object per text frame ([`ws_peer`]) |
//! | `GET /healthz` | 200 while the process serves |
//! | `GET /metrics` | Prometheus (OpenMetrics) text: connections by transport, requests by kind, errors by errno, users logged in, worker queue, process RSS, CPU and fds (src/server/metrics.rs) |
//! | `GET /inspect` | plain text: each I/O loop's statistics, connections, users, worker jobs ([`inspect`]) |
//! | `GET /readyz` | 200 when the store answered its last check and, in cluster mode, Redis is linked; 503 otherwise and from SIGTERM on |
//! | anything else | 404 (405 for a method other than GET/HEAD) |
//!
//! A WebSocket is admitted as a TCP connection is (the same slots per
//! address, shared by both listeners) and swept by the same timer (idle
//! and login timeouts), so a client meets the same limits on either.
//!
//! Threads: the routes run on the web listener's I/O threads and never
//! block: `/readyz` reads a flag that a checker thread refreshes every
//! second with a cheap store query ([`Readiness`]).

mod inspect;
mod readiness;
mod ws_peer;

use std::net::SocketAddr;
use std::sync::Arc;

use net::http::{
    AdmitCallback, HttpCallback, HttpRequest, HttpResponse, HttpServer, Limits, Reply, Ticket,
};
use net::websocket::WsLimits;
use net::{EventLoop, TcpConnectionPtr, TlsAcceptor};

pub use inspect::Inspector;
pub use readiness::Readiness;
use ws_peer::ChatSocket;

use super::admission::Admission;
use super::{idle, metrics};
use crate::config::Config;
use crate::service::Service;

const INDEX_HTML: &str = include_str!("../../web/index.html");
const APP_JS: &str = include_str!("../../web/app.js");
const STYLE_CSS: &str = include_str!("../../web/style.css");

/// What the web listener is given by the server.
#[derive(Clone)]
pub struct Parts {
    /// The service `/ws` feeds.
    pub svc: Arc<Service>,
    /// What `/readyz` answers.
    pub readiness: Arc<Readiness>,
    /// The slots a WebSocket takes, shared with the TCP listener.
    pub admission: Admission,
    /// What `/inspect` shows.
    pub inspector: Arc<Inspector>,
}

/// What the routes need.
struct Routes {
    svc: Arc<Service>,
    readiness: Arc<Readiness>,
    max_message: usize,
    admission: Admission,
    registry: prometheus_client::registry::Registry,
    inspector: Arc<Inspector>,
}

/// The web listeners `--http` and `--https` ask for, started, each with
/// its scheme ("http", "https"); `acceptor` is the TLS one (`Some` when
/// `--https` is set). The main loop's thread.
///
/// # Errors
/// Which listener could not start, and why.
pub fn start_all(
    lp: &mut EventLoop,
    config: &Config,
    parts: &Parts,
    acceptor: Option<&TlsAcceptor>,
) -> Result<Vec<(&'static str, HttpServer)>, String> {
    let mut started = Vec::new();
    if let Some(addr) = config.http {
        let server = start(lp, addr, config, parts.clone(), None)
            .map_err(|e| format!("--http {addr}: {e}"))?;
        started.push(("http", server));
    }
    if let (Some(addr), Some(acceptor)) = (config.https, acceptor) {
        let server = start(lp, addr, config, parts.clone(), Some(acceptor.clone()))
            .map_err(|e| format!("--https {addr}: {e}"))?;
        started.push(("https", server));
    }
    Ok(started)
}

/// Binds a web listener on `addr` with `--threads` I/O threads (one at
/// least) and the TCP listener's keepalive and high-water mark, over TLS
/// with `tls`, serving until it is dropped; the main loop's thread.
///
/// # Errors
/// When the address cannot be bound (in use, say) or a thread not started.
fn start(
    lp: &mut EventLoop,
    addr: SocketAddr,
    config: &Config,
    parts: Parts,
    tls: Option<TlsAcceptor>,
) -> std::io::Result<HttpServer> {
    let admission = parts.admission.clone();
    let routes = Routes {
        svc: parts.svc,
        readiness: parts.readiness,
        max_message: config.max_message,
        admission: parts.admission,
        registry: metrics::registry(),
        inspector: parts.inspector,
    };
    let callback: HttpCallback = Arc::new(move |req, _conn| routes.route(req));
    // A text frame holds one message (and the frame header).
    let ws_limits = WsLimits {
        max_frame: config.max_message + 16,
        max_message: config.max_message + 16,
    };
    let name = if tls.is_some() {
        "ChatWebTLS"
    } else {
        "ChatWeb"
    };
    let mut server =
        HttpServer::with_limits(lp, addr, name, callback, Limits::default(), ws_limits)?;
    server.set_thread_num(config.threads.max(1));
    if let Some(acceptor) = tls {
        server.set_tls(acceptor);
    }
    server.set_admission(http_admission(admission.clone()));
    let tcp = server.tcp_server();
    // The same sweep as the TCP listener's loops (idle and login timeouts),
    // over this listener's WebSockets.
    let rules = admission.rules.clone();
    tcp.set_thread_init_callback(move |lp: &mut EventLoop| idle::install(lp, rules.clone()));
    // The TCP listener's bounds on what a client can make the server hold.
    super::listener::set_connection_bounds(tcp, config);
    server.start(lp)?;
    Ok(server)
}

/// Admits a plain-HTTP connection with a slot of its address
/// ([`Admission::admit_http`]), or refuses it with 429.
fn http_admission(admission: Admission) -> AdmitCallback {
    Arc::new(move |conn: &TcpConnectionPtr| {
        let ip = conn.peer_addr().ip();
        match admission.admit_http(ip) {
            Some(slot) => Ok(Box::new(slot) as Ticket),
            None => {
                log::info!(
                    "{}: too many HTTP connections ({ip}), refusing",
                    conn.name()
                );
                let mut r = HttpResponse::text(429, "too many connections from your address\n");
                r.add_header("Retry-After", "10");
                Err(r)
            }
        }
    })
}

impl Routes {
    fn route(&self, req: &HttpRequest) -> Reply {
        if req.method != "GET" && req.method != "HEAD" {
            let mut r = HttpResponse::text(405, "GET only\n");
            r.add_header("Allow", "GET, HEAD");
            return Reply::Respond(r);
        }
        let page = |ty: &str, body: &str| {
            let mut r = HttpResponse::with_body(200, ty, body);
            r.add_header("Cache-Control", "no-cache");
            Reply::Respond(r)
        };
        let reply = match req.path.as_str() {
            "/" | "/index.html" => page("text/html; charset=utf-8", INDEX_HTML),
            "/app.js" => page("text/javascript; charset=utf-8", APP_JS),
            "/style.css" => page("text/css; charset=utf-8", STYLE_CSS),
            "/ws" => Reply::Upgrade(Arc::new(ChatSocket::new(
                self.svc.clone(),
                self.max_message,
                self.admission.clone(),
            ))),
            "/healthz" => Reply::Respond(HttpResponse::text(200, "ok\n")),
            "/inspect" => Reply::Respond(HttpResponse::text(200, &self.inspector.page())),
            "/metrics" => Reply::Respond(HttpResponse::with_body(
                200,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                metrics::scrape(&self.registry),
            )),
            "/readyz" => Reply::Respond(match self.readiness.why_not() {
                None => HttpResponse::text(200, "ready\n"),
                Some(why) => HttpResponse::text(503, &format!("not ready: {why}\n")),
            }),
            _ => Reply::Respond(HttpResponse::text(404, "not found\n")),
        };
        match reply {
            Reply::Respond(mut r) if req.method == "HEAD" => {
                r.body.clear();
                Reply::Respond(r)
            }
            other => other,
        }
    }
}
