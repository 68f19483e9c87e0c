//! [`HttpServer`]: HTTP/1.1 on a [`TcpServer`] (muduo's `HttpServer`).
//!
//! As in muduo, each connection gets an [`HttpContext`] in its context
//! slot, the message callback parses requests off the input buffer and
//! hands each to the user's callback, and the response is written at once.
//! Unlike muduo's, the callback may answer [`Reply::Upgrade`]: the server
//! then completes a WebSocket handshake and the connection's input is read
//! as frames from then on (see [`crate::websocket`]). A request that cannot
//! be parsed gets its status (400, 413, 431) and the connection is closed;
//! input after that is dropped.
//!
//! An optional [`AdmitCallback`] sees every new connection first: it
//! answers with a ticket the connection keeps while it speaks HTTP (a
//! per-address slot, say, given back when the ticket is dropped: at close,
//! or at a WebSocket upgrade, whose handler admits the socket itself), or
//! with a response to send before the connection is closed.
//!
//! Thread rules: as [`TcpServer`]: built, configured and started on the
//! main loop's thread; the callback runs on the connection's loop thread.

use std::any::Any;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::context::{HttpContext, Limits};
use super::request::HttpRequest;
use super::response::HttpResponse;
use crate::websocket::{
    close_code, handshake, opcode, FrameReader, WebSocket, WebSocketHandler, WsEvent, WsLimits,
};
use crate::{
    Buffer, EventLoop, EventLoopHandle, ServerOption, TcpConnectionPtr, TcpServer, TlsAcceptor,
};

/// What the callback answers a request with.
pub enum Reply {
    /// This response.
    Respond(HttpResponse),
    /// Accept a WebSocket upgrade and serve it with this handler (a request
    /// that is no valid upgrade gets 400 or 426 instead).
    Upgrade(Arc<dyn WebSocketHandler>),
}

/// The user's callback: a request in, a reply out; the connection's loop.
pub type HttpCallback = Arc<dyn Fn(&HttpRequest, &TcpConnectionPtr) -> Reply + Send + Sync>;

/// How long a refused connection may stay open for its response to be
/// read, at most.
const REFUSED_LINGER: Duration = Duration::from_secs(2);

/// What an admitted connection keeps while it speaks HTTP; dropped when it
/// closes or becomes a WebSocket.
pub type Ticket = Box<dyn Any + Send>;

/// Sees each new connection before it is read, on the connection's loop
/// thread: `Ok` admits it with a [`Ticket`], `Err` refuses it with the
/// response to send (the connection is closed after it).
pub type AdmitCallback =
    Arc<dyn Fn(&TcpConnectionPtr) -> Result<Ticket, HttpResponse> + Send + Sync>;

/// The phase of one connection, in its context slot; locked by its loop
/// thread only (uncontended).
enum Phase {
    Http(HttpContext),
    WebSocket {
        reader: FrameReader,
        ws: WebSocket,
        handler: Arc<dyn WebSocketHandler>,
    },
    /// A fatal error was answered: the rest of the input is dropped.
    Closing,
}

struct ConnState {
    phase: Mutex<Phase>,
    /// The admission's ticket, held until close or upgrade.
    ticket: Mutex<Option<Ticket>>,
}

/// An HTTP server. See the [module docs](self).
pub struct HttpServer {
    server: TcpServer,
    /// Set once, before `start`, by [`HttpServer::set_admission`].
    admission: Arc<OnceLock<AdmitCallback>>,
}

impl HttpServer {
    /// A server listening on `addr` (port 0 picks one), answering with
    /// `callback`; it serves once [`HttpServer::start`]ed.
    ///
    /// # Errors
    /// The bind or listen error.
    pub fn new(
        lp: &EventLoop,
        addr: SocketAddr,
        name: &str,
        callback: HttpCallback,
    ) -> io::Result<HttpServer> {
        HttpServer::with_limits(
            lp,
            addr,
            name,
            callback,
            Limits::default(),
            WsLimits::default(),
        )
    }

    /// As [`HttpServer::new`], with request and WebSocket size limits.
    ///
    /// # Errors
    /// The bind or listen error.
    pub fn with_limits(
        lp: &EventLoop,
        addr: SocketAddr,
        name: &str,
        callback: HttpCallback,
        limits: Limits,
        ws_limits: WsLimits,
    ) -> io::Result<HttpServer> {
        let mut server = TcpServer::new(lp, addr, name, ServerOption::NoReusePort)?;
        let admission: Arc<OnceLock<AdmitCallback>> = Arc::new(OnceLock::new());
        let admit = admission.clone();
        server.set_connection_callback(move |conn: &TcpConnectionPtr| {
            if conn.connected() {
                on_up(conn, limits, admit.get());
            } else {
                on_down(conn);
            }
        });
        server.set_message_callback(
            move |conn: &TcpConnectionPtr, buf: &mut Buffer, _: Instant| {
                on_message(conn, buf, &callback, ws_limits);
            },
        );
        Ok(HttpServer { server, admission })
    }

    /// Admits or refuses each new connection with `admit` (see the module
    /// docs). Before `start`; a second call is ignored.
    pub fn set_admission(&mut self, admit: AdmitCallback) {
        let _ = self.admission.set(admit);
    }

    /// The I/O threads (0: the main loop does the I/O too). Before `start`.
    pub fn set_thread_num(&mut self, n: usize) {
        self.server.set_thread_num(n);
    }

    /// Serves HTTPS (and `wss:` upgrades): every connection is TLS with
    /// `acceptor`'s configuration, as [`TcpServer::set_tls`]; the routes see
    /// the plaintext. A client that does not speak TLS is closed after the
    /// handshake fails. Before `start`.
    pub fn set_tls(&mut self, acceptor: TlsAcceptor) {
        self.server.set_tls(acceptor);
    }

    /// The TCP server underneath, for its other settings. Before `start`.
    pub fn tcp_server(&mut self) -> &mut TcpServer {
        &mut self.server
    }

    /// Starts the I/O threads and accepting on `lp`.
    ///
    /// # Errors
    /// If a thread cannot be started or the listener registered.
    pub fn start(&mut self, lp: &mut EventLoop) -> io::Result<()> {
        self.server.start(lp)
    }

    /// The bound address.
    pub fn listen_addr(&self) -> SocketAddr {
        self.server.listen_addr()
    }

    /// Stops accepting; open connections stay.
    pub fn stop_accepting(&mut self, lp: &mut EventLoop) {
        self.server.stop_accepting(lp);
    }

    /// The I/O loops.
    pub fn io_loops(&self) -> Vec<EventLoopHandle> {
        self.server.io_loops()
    }
}

/// A new connection: refused with the admission's response, or given its
/// HTTP state (with the ticket); either way closed after its lifetime.
fn on_up(conn: &TcpConnectionPtr, limits: Limits, admit: Option<&AdmitCallback>) {
    let http = || Phase::Http(HttpContext::new(limits));
    let (phase, ticket, lifetime) = match admit.map(|admit| admit(conn)) {
        None => (http(), None, limits.lifetime),
        Some(Ok(ticket)) => (http(), Some(ticket), limits.lifetime),
        Some(Err(mut refusal)) => {
            refusal.close = true;
            conn.send_vec(refusal.to_bytes());
            conn.shutdown();
            // A refused client that keeps its end open must not hold the
            // descriptor for a whole lifetime: that is what refusing saves.
            (Phase::Closing, None, limits.lifetime.min(REFUSED_LINGER))
        }
    };
    conn.set_context(Arc::new(ConnState {
        phase: Mutex::new(phase),
        ticket: Mutex::new(ticket),
    }));
    close_after(conn, lifetime);
}

/// Closes `conn` after `lifetime` unless it has become a WebSocket.
fn close_after(conn: &TcpConnectionPtr, lifetime: Duration) {
    let weak = Arc::downgrade(conn);
    conn.get_loop().run_after(lifetime, move |_| {
        let Some(conn) = weak.upgrade() else {
            return;
        };
        let http = conn
            .context::<ConnState>()
            .is_some_and(|s| !matches!(*s.phase.lock(), Phase::WebSocket { .. }));
        if http {
            log::debug!(
                "{}: HTTP for longer than {lifetime:?}, closing",
                conn.name()
            );
            conn.force_close();
        }
    });
}

fn on_down(conn: &TcpConnectionPtr) {
    if let Some(state) = conn.context::<ConnState>() {
        let phase = std::mem::replace(&mut *state.phase.lock(), Phase::Closing);
        if let Phase::WebSocket { ws, handler, .. } = phase {
            handler.on_close(&ws);
        }
    }
    // The handler may hold the connection: break the cycle.
    conn.clear_context();
}

fn on_message(
    conn: &TcpConnectionPtr,
    buf: &mut Buffer,
    callback: &HttpCallback,
    ws_limits: WsLimits,
) {
    let Some(state) = conn.context::<ConnState>() else {
        buf.retrieve_all();
        return;
    };
    let mut phase = state.phase.lock();
    loop {
        match &mut *phase {
            Phase::Closing => {
                buf.retrieve_all();
                return;
            }
            Phase::Http(context) => match context.parse(buf) {
                Ok(None) => return,
                Ok(Some(request)) => {
                    if let Some(next) = serve(conn, &request, callback, ws_limits, &state.ticket) {
                        *phase = next;
                    }
                }
                Err(e) => {
                    let mut response = HttpResponse::text(e.status(), "");
                    response.body = response.reason.as_bytes().to_vec();
                    response.close = true;
                    conn.send_vec(response.to_bytes());
                    conn.shutdown();
                    *phase = Phase::Closing;
                }
            },
            Phase::WebSocket {
                reader,
                ws,
                handler,
            } => match reader.next_event(buf) {
                Ok(None) => return,
                Ok(Some(event)) => {
                    let (ws, handler) = (ws.clone(), handler.clone());
                    if let Some(next) = websocket_event(&ws, handler.as_ref(), event) {
                        *phase = next;
                    }
                }
                Err(code) => {
                    ws.close(code, "");
                    // Leaving the WebSocket phase: `on_down` will not see
                    // the handler any more, so it hears of the end now.
                    handler.on_close(ws);
                    *phase = Phase::Closing;
                }
            },
        }
    }
}

/// Answers one request; the connection's next phase if it changes. An
/// upgrade gives the admission's `ticket` back before the handler opens
/// (which admits the WebSocket itself).
fn serve(
    conn: &TcpConnectionPtr,
    request: &HttpRequest,
    callback: &HttpCallback,
    ws_limits: WsLimits,
    ticket: &Mutex<Option<Ticket>>,
) -> Option<Phase> {
    match callback(request, conn) {
        Reply::Respond(mut response) => {
            let close = response.close || !request.keep_alive();
            response.close = close;
            conn.send_vec(response.to_bytes());
            if close {
                conn.shutdown();
                return Some(Phase::Closing);
            }
            None
        }
        Reply::Upgrade(handler) => match handshake::accept(request) {
            Ok(response) => {
                conn.send_vec(response.to_bytes());
                drop(ticket.lock().take());
                let ws = WebSocket::new(conn.clone());
                handler.on_open(&ws);
                Some(Phase::WebSocket {
                    reader: FrameReader::new(ws_limits),
                    ws,
                    handler,
                })
            }
            Err((status, why)) => {
                let mut response = HttpResponse::text(status, why);
                if status == 426 {
                    response.add_header("Upgrade", "websocket");
                    response.add_header("Sec-WebSocket-Version", "13");
                }
                response.close = true;
                conn.send_vec(response.to_bytes());
                conn.shutdown();
                Some(Phase::Closing)
            }
        },
    }
}

/// The server's part of a WebSocket event; the next phase if it changes.
/// Called with the phase locked: the handler must not re-enter this
/// connection's message callback (it cannot: that is this very thread).
fn websocket_event(
    ws: &WebSocket,
    handler: &dyn WebSocketHandler,
    event: WsEvent,
) -> Option<Phase> {
    match event {
        WsEvent::Ping(payload) => ws.send_control(opcode::PONG, &payload),
        WsEvent::Pong => {}
        WsEvent::Close(code) => {
            // Echo the peer's code (RFC 6455, 5.5.1), then drop the rest.
            let code = code.map_or(close_code::NORMAL, |(c, _)| c);
            let code = if matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
                code
            } else {
                close_code::PROTOCOL
            };
            ws.close(code, "");
            // The handler hears of the end here: once the phase is
            // `Closing`, `on_down` no longer holds it.
            handler.on_close(ws);
            return Some(Phase::Closing);
        }
        message => {
            if !ws.closing() {
                handler.on_message(ws, message);
            }
        }
    }
    None
}
