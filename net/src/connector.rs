//! `Connector`: an active, non-blocking connect with retries, as muduo's
//! `Connector`.
//!
//! `connect(2)` on a non-blocking socket returns at once ("in progress");
//! the socket becomes writable when the handshake ends, with success or an
//! error waiting in `SO_ERROR`. The connector registers the socket for
//! writability, then checks `take_error`, that the socket really has a peer,
//! and that it did not connect to itself (a loopback port can, when the
//! server is down and the kernel picks the same ephemeral port). On failure
//! it retries after a delay that doubles from [`INIT_RETRY_DELAY`] up to
//! [`MAX_RETRY_DELAY`].
//!
//! Threads: [`Connector::start`] and [`Connector::stop`] may be called from
//! any thread; everything else runs on the connector's loop.

use std::io;
use std::net::SocketAddr;
use std::os::unix::io::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{net::TcpStream, unix::SourceFd, Interest, Token};
use parking_lot::Mutex;

use crate::channel::ChannelHandler;
use crate::event_loop::{EventLoop, EventLoopHandle};
use crate::timer_queue::TimerId;

/// First retry delay.
pub const INIT_RETRY_DELAY: Duration = Duration::from_millis(500);
/// Longest retry delay.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(30);

/// Receives the connected socket, on the loop thread.
pub type ConnectedCallback = Arc<dyn Fn(&mut EventLoop, TcpStream) + Send + Sync>;

/// Loop-side state of a connector.
struct LoopState {
    retry_delay: Duration,
    /// The channel of a connect in progress.
    in_progress: Option<(Token, RawFd)>,
    retry_timer: Option<TimerId>,
}

/// A connect-with-retry to one address. See the [module documentation](self).
pub struct Connector {
    owner: EventLoopHandle,
    server_addr: SocketAddr,
    /// Whether the user wants a connection (cleared by `stop`).
    connect: AtomicBool,
    on_connected: Mutex<Option<ConnectedCallback>>,
    state: Mutex<LoopState>,
}

impl Connector {
    /// A connector to `server_addr` driven by `owner`.
    pub fn new(owner: EventLoopHandle, server_addr: SocketAddr) -> Arc<Connector> {
        Arc::new(Connector {
            owner,
            server_addr,
            connect: AtomicBool::new(false),
            on_connected: Mutex::new(None),
            state: Mutex::new(LoopState {
                retry_delay: INIT_RETRY_DELAY,
                in_progress: None,
                retry_timer: None,
            }),
        })
    }

    /// The address connected to.
    pub fn server_addr(&self) -> SocketAddr {
        self.server_addr
    }

    /// Sets what receives the connected socket.
    pub fn set_new_connection_callback(&self, cb: ConnectedCallback) {
        *self.on_connected.lock() = Some(cb);
    }

    /// Starts connecting; any thread.
    pub fn start(self: &Arc<Self>) {
        self.connect.store(true, Ordering::Release);
        let me = self.clone();
        self.owner.queue_in_loop(move |lp| me.connect_now(lp));
    }

    /// Starts again from the initial delay. Loop thread only.
    pub fn restart(self: &Arc<Self>, lp: &mut EventLoop) {
        self.state.lock().retry_delay = INIT_RETRY_DELAY;
        self.connect.store(true, Ordering::Release);
        self.connect_now(lp);
    }

    /// Stops connecting or retrying; any thread. An established connection
    /// is not affected.
    pub fn stop(self: &Arc<Self>) {
        self.connect.store(false, Ordering::Release);
        let me = self.clone();
        self.owner.queue_in_loop(move |lp| {
            let (timer, in_progress) = {
                let mut st = me.state.lock();
                (st.retry_timer.take(), st.in_progress.take())
            };
            if let Some(id) = timer {
                lp.cancel(id);
            }
            if let Some((token, fd)) = in_progress {
                lp.remove_channel(&mut SourceFd(&fd), token);
            }
        });
    }

    fn connect_now(self: &Arc<Self>, lp: &mut EventLoop) {
        if !self.connect.load(Ordering::Acquire) || self.state.lock().in_progress.is_some() {
            return;
        }
        match TcpStream::connect(self.server_addr) {
            Ok(stream) => {
                // The handler owns the socket; mio needs only its descriptor.
                let fd = stream.as_raw_fd();
                let handler = Box::new(ConnectorChannel {
                    connector: self.clone(),
                    stream: Some(stream),
                });
                match lp.add_channel(&mut SourceFd(&fd), Interest::WRITABLE, handler) {
                    Ok(token) => self.state.lock().in_progress = Some((token, fd)),
                    Err(e) => {
                        log::error!("Connector register: {}", e);
                        self.retry(lp);
                    }
                }
            }
            Err(e) => {
                log::warn!("Connector connect {}: {}", self.server_addr, e);
                self.retry(lp);
            }
        }
    }

    /// The handshake ended: check it and hand over the socket, or retry.
    fn finish(self: &Arc<Self>, lp: &mut EventLoop, token: Token, stream: TcpStream) {
        lp.remove_channel(&mut SourceFd(&stream.as_raw_fd()), token);
        self.state.lock().in_progress = None;
        if let Err(e) = check_connected(&stream) {
            log::warn!("Connector {}: {}", self.server_addr, e);
            return self.retry(lp);
        }
        if !self.connect.load(Ordering::Acquire) {
            return; // stopped meanwhile: drop the socket
        }
        let cb = self.on_connected.lock().clone();
        if let Some(cb) = cb {
            cb(lp, stream);
        }
    }

    fn retry(self: &Arc<Self>, lp: &mut EventLoop) {
        if !self.connect.load(Ordering::Acquire) {
            return;
        }
        let delay = {
            let mut st = self.state.lock();
            let d = st.retry_delay;
            st.retry_delay = (d * 2).min(MAX_RETRY_DELAY);
            d
        };
        log::info!(
            "Connector retry connecting to {} in {:?}",
            self.server_addr,
            delay
        );
        let me = self.clone();
        let id = lp.run_after(delay, move |lp| {
            me.state.lock().retry_timer = None;
            me.connect_now(lp);
        });
        self.state.lock().retry_timer = Some(id);
    }
}

/// Verifies that a socket reported writable after `connect` is connected
/// to someone other than itself.
fn check_connected(stream: &TcpStream) -> io::Result<()> {
    if let Some(e) = stream.take_error()? {
        return Err(e);
    }
    let peer = stream.peer_addr()?;
    if stream.local_addr()? == peer {
        return Err(io::Error::other("self connect"));
    }
    Ok(())
}

struct ConnectorChannel {
    connector: Arc<Connector>,
    stream: Option<TcpStream>,
}

impl ConnectorChannel {
    fn done(&mut self, lp: &mut EventLoop, token: Token) {
        if let Some(stream) = self.stream.take() {
            self.connector.finish(lp, token, stream);
        }
    }
}

impl ChannelHandler for ConnectorChannel {
    fn handle_read(&mut self, lp: &mut EventLoop, token: Token, _t: Instant) {
        self.done(lp, token);
    }
    fn handle_write(&mut self, lp: &mut EventLoop, token: Token) {
        self.done(lp, token);
    }
    fn handle_close(&mut self, lp: &mut EventLoop, token: Token) {
        self.done(lp, token);
    }
    fn handle_error(&mut self, lp: &mut EventLoop, token: Token) {
        self.done(lp, token);
    }
}
