//! `TcpServer`: accepts connections and spreads them over loop threads, as
//! muduo's `TcpServer`.
//!
//! ```text
//!            main loop (the caller's)              sub-loops (the pool)
//!   Acceptor ──accept──► new connection ──round-robin──► connect_established
//!                        (connection map)                 (reads, writes,
//!                                                          callbacks)
//!   remove from map ◄──────────── queue_in_loop ◄──────── handle_close
//! ```
//!
//! The server object belongs to the main loop's thread (it is not `Send`),
//! like the loop itself. Its connection map is touched only on that thread:
//! a connection that closes on a sub-loop hops back with `queue_in_loop` to
//! be removed, as in muduo's `removeConnection`.
//!
//! ```no_run
//! use net::{EventLoop, TcpServer, ServerOption};
//! let mut lp = EventLoop::new()?;
//! let mut server = TcpServer::new(&lp, "127.0.0.1:2007".parse().unwrap(), "echo", ServerOption::NoReusePort)?;
//! server.set_thread_num(4);
//! server.set_message_callback(|conn, buf, _time| conn.send_buffer(buf));
//! server.start(&mut lp)?;
//! lp.run();
//! # Ok::<(), std::io::Error>(())
//! ```

use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::os::unix::io::RawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use mio::{unix::SourceFd, Token};
use parking_lot::Mutex;

use crate::acceptor::{Acceptor, NewConnectionCallback};
use crate::buffer::Buffer;
use crate::callbacks::{CloseCallback, ConnectionCallbacks};
use crate::event_loop::{EventLoop, EventLoopHandle};
use crate::event_loop_thread::ThreadInitCallback;
use crate::event_loop_thread_pool::EventLoopThreadPool;
use crate::tcp_connection::{CrossThreadSend, KeepAlive, TcpConnection, TcpConnectionPtr};
use crate::tls::TlsAcceptor;

/// Process-wide connection ids (servers and clients).
pub(crate) static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// Whether the listening socket sets `SO_REUSEPORT` (muduo's `Option`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerOption {
    /// Only `SO_REUSEADDR`.
    NoReusePort,
    /// `SO_REUSEADDR` and `SO_REUSEPORT`: several processes may listen on
    /// the same port and the kernel balances between them.
    ReusePort,
}

type ConnectionMap = Arc<Mutex<HashMap<u64, TcpConnectionPtr>>>;

/// A TCP server. See the [module documentation](self).
pub struct TcpServer {
    base: EventLoopHandle,
    name: String,
    listen_addr: SocketAddr,
    /// Bound and listening, not yet accepting: until [`TcpServer::start`].
    acceptor: Option<Acceptor>,
    pool: Rc<RefCell<EventLoopThreadPool>>,
    callbacks: ConnectionCallbacks,
    cross_thread_send: CrossThreadSend,
    /// Set on every accepted socket; `None` leaves the kernel's default.
    keep_alive: Option<KeepAlive>,
    /// Every accepted connection speaks TLS with this acceptor's config.
    tls: Option<TlsAcceptor>,
    thread_init: Option<ThreadInitCallback>,
    connections: ConnectionMap,
    /// The acceptor's channel on the main loop, from `start` until
    /// `stop_accepting`.
    accepting: Option<(Token, RawFd)>,
}

impl TcpServer {
    /// Binds `addr` now (so port 0 is resolved at once, see
    /// [`TcpServer::listen_addr`]); accepting starts with [`TcpServer::start`].
    ///
    /// # Errors
    /// The bind or listen error.
    pub fn new(
        lp: &EventLoop,
        addr: SocketAddr,
        name: impl Into<String>,
        option: ServerOption,
    ) -> io::Result<TcpServer> {
        let name = name.into();
        let acceptor = Acceptor::new(addr, option == ServerOption::ReusePort)?;
        let listen_addr = acceptor.listen_addr()?;
        Ok(TcpServer {
            base: lp.handle(),
            pool: Rc::new(RefCell::new(EventLoopThreadPool::new(
                lp.handle(),
                name.clone(),
            ))),
            name,
            listen_addr,
            acceptor: Some(acceptor),
            callbacks: ConnectionCallbacks::default(),
            cross_thread_send: CrossThreadSend::default(),
            keep_alive: None,
            tls: None,
            thread_init: None,
            connections: Arc::new(Mutex::new(HashMap::new())),
            accepting: None,
        })
    }

    /// The server's name, the prefix of its connections' names.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The address actually listened on.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listen_addr
    }

    /// The main loop.
    pub fn get_loop(&self) -> &EventLoopHandle {
        &self.base
    }

    /// Number of I/O threads; 0 (the default) does all I/O on the main loop,
    /// `n` spreads connections round-robin over `n` threads. Before `start`.
    pub fn set_thread_num(&mut self, n: usize) {
        self.pool.borrow_mut().set_thread_num(n);
    }

    /// Runs on each I/O loop's thread before it starts. Before `start`.
    pub fn set_thread_init_callback<F: Fn(&mut EventLoop) + Send + Sync + 'static>(
        &mut self,
        cb: F,
    ) {
        self.thread_init = Some(Arc::new(cb));
    }

    /// A connection went up or down. Before `start`.
    pub fn set_connection_callback<F>(&mut self, cb: F)
    where
        F: Fn(&TcpConnectionPtr) + Send + Sync + 'static,
    {
        self.callbacks.connection = Arc::new(cb);
    }

    /// Bytes arrived on a connection. Before `start`.
    pub fn set_message_callback<F>(&mut self, cb: F)
    where
        F: Fn(&TcpConnectionPtr, &mut Buffer, Instant) + Send + Sync + 'static,
    {
        self.callbacks.message = Arc::new(cb);
    }

    /// A connection's output buffer drained. Before `start`.
    pub fn set_write_complete_callback<F>(&mut self, cb: F)
    where
        F: Fn(&TcpConnectionPtr) + Send + Sync + 'static,
    {
        self.callbacks.write_complete = Some(Arc::new(cb));
    }

    /// A connection's output buffer grew past `mark` bytes. Before `start`.
    pub fn set_high_water_mark_callback<F>(&mut self, cb: F, mark: usize)
    where
        F: Fn(&TcpConnectionPtr, usize) + Send + Sync + 'static,
    {
        self.callbacks.high_water_mark = Some((Arc::new(cb), mark));
    }

    /// How `send` from a thread other than the connection's loop reaches
    /// the socket, for every connection of this server (default
    /// [`CrossThreadSend::Direct`]). Before `start`.
    pub fn set_cross_thread_send(&mut self, mode: CrossThreadSend) {
        self.cross_thread_send = mode;
    }

    /// Turns TCP keepalive on, with these timers, for every connection
    /// accepted from now on (see [`KeepAlive`]); by default the kernel's
    /// own setting (off on Linux) is left alone. A connection whose socket
    /// refuses it is kept, and the error logged. Before `start`.
    pub fn set_keep_alive(&mut self, keep_alive: KeepAlive) {
        self.keep_alive = Some(keep_alive);
    }

    /// Makes every connection accepted from now on speak TLS, with the
    /// configuration `acceptor` holds when it is accepted (keep a clone to
    /// [`reload`](TlsAcceptor::reload) it). The callbacks see plaintext;
    /// see [`crate::tls`]. Before `start`.
    pub fn set_tls(&mut self, acceptor: TlsAcceptor) {
        self.tls = Some(acceptor);
    }

    /// Starts the I/O threads and begins accepting on `lp`, the main loop.
    /// Calling it again does nothing.
    ///
    /// # Errors
    /// If a thread cannot start or the listener cannot be registered.
    pub fn start(&mut self, lp: &mut EventLoop) -> io::Result<()> {
        let Some(mut acceptor) = self.acceptor.take() else {
            return Ok(());
        };
        self.pool.borrow_mut().start(self.thread_init.clone())?;
        if self.pool.borrow().get_all_loops()[0].id() == lp.id() {
            if let Some(init) = &self.thread_init {
                init(lp);
            }
        }
        acceptor.set_new_connection_callback(self.new_connection_callback());
        let fd = acceptor.fd();
        let token = acceptor.listen(lp)?;
        self.accepting = Some((token, fd));
        log::debug!("TcpServer {} listening on {}", self.name, self.listen_addr);
        Ok(())
    }

    /// Stops accepting, now: deregisters and closes the listening socket;
    /// existing connections go on. `lp` is the main loop, so this runs on
    /// its thread. Connections still in the kernel's backlog are reset.
    ///
    /// # Panics
    /// If `lp` is not the loop the server was created on.
    pub fn stop_accepting(&mut self, lp: &mut EventLoop) {
        assert_eq!(lp.id(), self.base.id(), "stop_accepting on another loop");
        // Never started: dropping the acceptor closes the socket.
        self.acceptor = None;
        if let Some((token, fd)) = self.accepting.take() {
            // The channel owns the acceptor: removing it closes the socket.
            lp.remove_channel(&mut SourceFd(&fd), token);
        }
    }

    /// Number of open connections.
    pub fn connection_count(&self) -> usize {
        self.connections.lock().len()
    }

    /// The loops that serve connections (the pool, or the main loop).
    pub fn io_loops(&self) -> Vec<EventLoopHandle> {
        self.pool.borrow().get_all_loops()
    }

    /// Accepted connections go to the next loop of the pool.
    fn new_connection_callback(&self) -> NewConnectionCallback {
        let pool = self.pool.clone();
        let callbacks = self.callbacks.clone();
        let connections = self.connections.clone();
        let cross_thread_send = self.cross_thread_send;
        let keep_alive = self.keep_alive;
        let tls = self.tls.clone();
        let close_callback = self.remove_connection_callback();
        let prefix = format!("{}-{}#", self.name, self.listen_addr);
        Box::new(move |lp, stream, peer| {
            let session = match tls.as_ref().map(TlsAcceptor::new_session).transpose() {
                Ok(session) => session,
                Err(e) => {
                    log::error!("TcpServer TLS session for {}: {}", peer, e);
                    return; // dropping the stream closes it
                }
            };
            let io_loop = pool.borrow_mut().get_next_loop();
            let id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
            log::debug!("TcpServer new connection {}{} from {}", prefix, id, peer);
            let conn = TcpConnection::new(
                io_loop.clone(),
                id,
                format!("{}{}", prefix, id),
                stream,
                peer,
                callbacks.clone(),
                cross_thread_send,
                close_callback.clone(),
                session,
            );
            if let Some(ka) = keep_alive {
                // Before the connection callback, which may read it back.
                if let Err(e) = conn.set_keep_alive(Some(ka)) {
                    log::warn!("{}: SO_KEEPALIVE: {e}", conn.name());
                }
            }
            connections.lock().insert(id, conn.clone());
            if io_loop.id() == lp.id() {
                conn.connect_established(lp);
            } else {
                io_loop.queue_in_loop(move |lp| conn.connect_established(lp));
            }
        })
    }

    /// Called on the connection's loop when it closes; hops to the main
    /// loop to drop it from the map (muduo's `removeConnection`).
    fn remove_connection_callback(&self) -> CloseCallback {
        let base = self.base.clone();
        let connections = self.connections.clone();
        Arc::new(move |conn: &TcpConnectionPtr| {
            let id = conn.id();
            let connections = connections.clone();
            base.queue_in_loop(move |_| {
                connections.lock().remove(&id);
            });
        })
    }
}

impl Drop for TcpServer {
    /// Stops accepting, closes every connection and joins the I/O threads.
    ///
    /// Without the loop at hand, a server dropped while still accepting
    /// queues the listener's removal for the main loop's next run (or its
    /// drop); call [`TcpServer::stop_accepting`] first to close it now.
    fn drop(&mut self) {
        if let Some((token, fd)) = self.accepting.take() {
            self.base
                .queue_in_loop(move |lp| lp.remove_channel(&mut SourceFd(&fd), token));
        }
        let conns: Vec<TcpConnectionPtr> = self.connections.lock().values().cloned().collect();
        for conn in conns {
            conn.force_close();
        }
        self.pool.borrow_mut().stop();
    }
}
