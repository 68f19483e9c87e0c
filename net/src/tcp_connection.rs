//! `TcpConnection`: one established TCP connection, as muduo's `TcpConnection`.
//!
//! # Ownership (muduo's `shared_ptr`, `weak_ptr` and `Channel::tie`)
//!
//! muduo hands connections around as `shared_ptr<TcpConnection>` and ties
//! the channel to it so the object outlives a callback that closes it. Here:
//!
//! * users hold a [`TcpConnectionPtr`] (`Arc<TcpConnection>`): the name,
//!   addresses, state, the socket with its *output* buffer, and the context;
//! * the connection's loop owns a `ConnectionChannel` in its poller's slab,
//!   which holds another `Arc` plus the *input* buffer (only that loop reads);
//! * closing removes the channel from the slab. The loop stops delivering
//!   events at once, and the socket closes when the last `Arc` is dropped.
//!
//! # States
//!
//! `Connecting → Connected → Disconnecting → Disconnected`, as in muduo.
//! `Disconnecting` means "shut down (or close) once the output has drained".
//!
//! # Threads
//!
//! [`send`](TcpConnection::send), [`shutdown`](TcpConnection::shutdown),
//! [`force_close`](TcpConnection::force_close), the context and the
//! accessors may be called from any thread. Registration, reading and
//! closing run on the loop thread only.
//!
//! `send` is where this port parts from muduo. muduo's `send` from a
//! foreign thread copies the bytes into a closure for the owning loop
//! (`runInLoop(sendInLoop)`), which costs an eventfd wake-up and a context
//! switch per burst. Here the socket and its output buffer sit behind one
//! mutex, so `send` does muduo's `sendInLoop` on the calling thread: with
//! the lock held, write directly when nothing is queued, otherwise append
//! to the output buffer, which the loop flushes on the next writable edge.
//! The lock makes the order the order of the calls: bytes sent from one
//! thread arrive in the order sent, and a caller that sends several times
//! while holding a lock of its own knows that no sender who must take that
//! lock first can come in between (the chat server's login relies on
//! this). The write is non-blocking, so the lock is held for one short
//! syscall.
//! Callbacks (write complete, high-water mark) still run on the loop.
//!
//! # Edge-triggered I/O
//!
//! mio is edge-triggered where muduo's pollers are level-triggered, so a
//! read event is drained until the socket is empty (a read shorter than
//! the space offered proves it), and writes continue until `WouldBlock`.
//! The socket is registered for both reading and writing once, for its
//! whole life: a writable edge with nothing to write costs a no-op call,
//! where muduo's `enableWriting`/`disableWriting` cost an `epoll_ctl` each.

use std::any::Any;
use std::io::{self, Write};
use std::net::{Shutdown, SocketAddr};
use std::os::unix::io::{AsRawFd, RawFd};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::Instant;

use mio::{net::TcpStream, Interest, Token};
use parking_lot::Mutex;

use crate::buffer::{Buffer, INITIAL_SIZE};
use crate::callbacks::{CloseCallback, ConnectionCallbacks, HighWaterMarkCallback};
use crate::channel::{ChannelHandler, Ready};
use crate::event_loop::{EventLoop, EventLoopHandle};

/// How connections are shared (muduo's `TcpConnectionPtr`).
pub type TcpConnectionPtr = Arc<TcpConnection>;

/// How many reads one readable event may do before the connection yields
/// to the other channels of its loop (and asks to be called again).
const READS_PER_EVENT: usize = 8;

/// An output buffer larger than this is shrunk back once it drains.
const SHRINK_OUTPUT_ABOVE: usize = 1 << 20;

/// The life of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    /// Closed; nothing more is read or written.
    Disconnected = 0,
    /// Accepted or connected, not yet registered with its loop.
    Connecting = 1,
    /// Registered and open.
    Connected = 2,
    /// `shutdown` or `force_close` was asked for and is under way.
    Disconnecting = 3,
}

impl State {
    fn from_u8(v: u8) -> State {
        match v {
            1 => State::Connecting,
            2 => State::Connected,
            3 => State::Disconnecting,
            _ => State::Disconnected,
        }
    }
}

/// The socket side, touched only on the loop thread.
struct Io {
    stream: TcpStream,
    output: Buffer,
    token: Option<Token>,
}

/// A TCP connection. See the [module documentation](self).
pub struct TcpConnection {
    owner: EventLoopHandle,
    id: u64,
    name: String,
    local_addr: SocketAddr,
    peer_addr: SocketAddr,
    fd: RawFd,
    state: AtomicU8,
    io: Mutex<Io>,
    callbacks: ConnectionCallbacks,
    high_water_mark: Mutex<Option<(HighWaterMarkCallback, usize)>>,
    close_callback: CloseCallback,
    context: Mutex<Option<Arc<dyn Any + Send + Sync>>>,
}

impl TcpConnection {
    pub(crate) fn new(
        owner: EventLoopHandle,
        id: u64,
        name: String,
        stream: TcpStream,
        peer_addr: SocketAddr,
        callbacks: ConnectionCallbacks,
        close_callback: CloseCallback,
    ) -> TcpConnectionPtr {
        let local_addr = stream.local_addr().unwrap_or(peer_addr);
        let fd = stream.as_raw_fd();
        log::debug!("TcpConnection {} fd={} created", name, fd);
        Arc::new(TcpConnection {
            owner,
            id,
            name,
            local_addr,
            peer_addr,
            fd,
            state: AtomicU8::new(State::Connecting as u8),
            io: Mutex::new(Io {
                stream,
                // Empty until a write is partial: most sends go straight
                // to the socket, and an idle connection should cost little.
                output: Buffer::with_capacity(0),
                token: None,
            }),
            high_water_mark: Mutex::new(callbacks.high_water_mark.clone()),
            callbacks,
            close_callback,
            context: Mutex::new(None),
        })
    }

    /// A number unique among this process's connections.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// `"<server name>-<listen address>#<id>"`, as muduo names connections.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Our end's address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }

    /// The loop that owns this connection's I/O.
    pub fn get_loop(&self) -> &EventLoopHandle {
        &self.owner
    }

    /// The current state.
    pub fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Acquire))
    }

    /// `true` while the connection is open and not shutting down.
    pub fn connected(&self) -> bool {
        self.state() == State::Connected
    }

    /// `true` once the connection is closed.
    pub fn disconnected(&self) -> bool {
        self.state() == State::Disconnected
    }

    fn set_state(&self, s: State) {
        self.state.store(s as u8, Ordering::Release);
    }

    /// Sends `data`; any thread. Does nothing unless connected.
    ///
    /// Writes on the calling thread under the socket lock (see the
    /// [module documentation](self)); whatever the kernel does not take
    /// now is written by the loop when the socket turns writable.
    pub fn send(self: &Arc<Self>, data: &[u8]) {
        if self.connected() {
            self.send_locked(data);
        }
    }

    /// Sends an owned vector; any thread. The same as [`send`](Self::send),
    /// kept so callers that build a `Vec` need not think about borrowing.
    pub fn send_vec(self: &Arc<Self>, data: Vec<u8>) {
        self.send(&data);
    }

    /// Sends the readable bytes of `buf` and empties it; any thread.
    pub fn send_buffer(self: &Arc<Self>, buf: &mut Buffer) {
        self.send(buf.peek());
        buf.retrieve_all();
    }

    /// Closes our writing half once everything queued has been written;
    /// any thread. The peer reads EOF; we keep reading until it closes.
    pub fn shutdown(self: &Arc<Self>) {
        if self
            .state
            .compare_exchange(
                State::Connected as u8,
                State::Disconnecting as u8,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
        {
            let conn = self.clone();
            self.owner.queue_in_loop(move |_| conn.shutdown_in_loop());
        }
    }

    /// Closes the connection now, dropping unsent output; any thread.
    pub fn force_close(self: &Arc<Self>) {
        let s = self.state();
        if s == State::Connected || s == State::Disconnecting {
            self.set_state(State::Disconnecting);
            let conn = self.clone();
            self.owner.queue_in_loop(move |lp| {
                if !conn.disconnected() {
                    conn.handle_close(lp);
                }
            });
        }
    }

    /// Sets `TCP_NODELAY` (disables Nagle's algorithm); any thread.
    ///
    /// # Errors
    /// The `setsockopt` error.
    pub fn set_tcp_no_delay(&self, on: bool) -> io::Result<()> {
        self.io.lock().stream.set_nodelay(on)
    }

    /// Calls `cb` whenever the output buffer grows past `mark` bytes; any
    /// thread. Replaces the server-wide setting for this connection.
    pub fn set_high_water_mark_callback(&self, cb: HighWaterMarkCallback, mark: usize) {
        *self.high_water_mark.lock() = Some((cb, mark));
    }

    /// Bytes sent but not yet taken by the kernel; any thread.
    pub fn output_len(&self) -> usize {
        self.io.lock().output.readable_bytes()
    }

    /// Stores the application's per-connection state (muduo's `boost::any`
    /// context); any thread.
    pub fn set_context<T: Any + Send + Sync>(&self, value: Arc<T>) {
        *self.context.lock() = Some(value);
    }

    /// The context, if one of type `T` is set; any thread.
    pub fn context<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let ctx = self.context.lock().clone()?;
        ctx.downcast::<T>().ok()
    }

    /// Removes the context; any thread.
    pub fn clear_context(&self) {
        *self.context.lock() = None;
    }

    // ----- loop thread only -----

    /// Registers the socket with its loop and reports the connection up.
    /// Loop thread only (muduo's `connectEstablished`).
    pub(crate) fn connect_established(self: &Arc<Self>, lp: &mut EventLoop) {
        self.owner.assert_in_loop_thread();
        let handler = Box::new(ConnectionChannel {
            conn: self.clone(),
            input: Buffer::new(),
        });
        let registered = {
            let mut io = self.io.lock();
            let r = lp.add_channel(
                &mut io.stream,
                Interest::READABLE | Interest::WRITABLE,
                handler,
            );
            if let Ok(token) = r {
                io.token = Some(token);
            }
            r
        };
        match registered {
            Ok(_) => {
                self.set_state(State::Connected);
                (self.callbacks.connection)(self);
            }
            Err(e) => {
                log::error!("TcpConnection {} register: {}", self.name, e);
                self.set_state(State::Disconnected);
                (self.close_callback)(self);
            }
        }
    }

    /// muduo's `sendInLoop`, on the calling thread: the socket lock
    /// orders this write against every other `send` and against the
    /// loop's flush in `handle_write`.
    fn send_locked(self: &Arc<Self>, data: &[u8]) {
        let mut guard = self.io.lock();
        let io = &mut *guard;
        if self.disconnected() {
            log::debug!("TcpConnection {} closed, give up writing", self.name);
            return;
        }
        let mut written = 0;
        if io.output.is_empty() {
            match write_until_blocked(&mut io.stream, data) {
                Ok(n) => written = n,
                Err(e) => {
                    // The peer is gone; the read side will see it and close.
                    log::debug!("TcpConnection {} write: {}", self.name, e);
                    return;
                }
            }
            if written == data.len() {
                self.queue_write_complete();
                return;
            }
        }
        let remaining = &data[written..];
        let old_len = io.output.readable_bytes();
        io.output.append(remaining);
        self.check_high_water_mark(old_len, io.output.readable_bytes());
    }

    fn check_high_water_mark(self: &Arc<Self>, old_len: usize, new_len: usize) {
        let hwm = self.high_water_mark.lock().clone();
        if let Some((cb, mark)) = hwm {
            if old_len < mark && new_len >= mark {
                let conn = self.clone();
                self.owner.queue_in_loop(move |_| cb(&conn, new_len));
            }
        }
    }

    fn queue_write_complete(self: &Arc<Self>) {
        if let Some(cb) = self.callbacks.write_complete.clone() {
            let conn = self.clone();
            self.owner.queue_in_loop(move |_| cb(&conn));
        }
    }

    fn shutdown_in_loop(&self) {
        let io = self.io.lock();
        if io.output.is_empty() {
            self.shutdown_write(&io);
        }
    }

    /// Sends our FIN; the socket lock is held. A send that raced with
    /// `shutdown` and comes after this fails with `EPIPE` and is dropped.
    fn shutdown_write(&self, io: &Io) {
        if let Err(e) = io.stream.shutdown(Shutdown::Write) {
            log::debug!("TcpConnection {} shutdown: {}", self.name, e);
        }
    }

    /// The socket is writable: flush the output buffer.
    fn handle_write(self: &Arc<Self>) {
        let mut guard = self.io.lock();
        let io = &mut *guard;
        if io.output.is_empty() || self.disconnected() {
            return; // a writable edge with nothing queued
        }
        match write_until_blocked(&mut io.stream, io.output.peek()) {
            Ok(n) => io.output.retrieve(n),
            Err(e) => {
                log::debug!("TcpConnection {} write: {}", self.name, e);
                return;
            }
        }
        if !io.output.is_empty() {
            return; // the next writable edge continues
        }
        if io.output.internal_capacity() > SHRINK_OUTPUT_ABOVE {
            io.output.shrink(INITIAL_SIZE);
        }
        self.queue_write_complete();
        if self.state() == State::Disconnecting {
            self.shutdown_write(io);
        }
    }

    /// Deregisters, reports the connection down and tells the owner to
    /// forget it. Loop thread only (muduo's `handleClose`).
    pub(crate) fn handle_close(self: &Arc<Self>, lp: &mut EventLoop) {
        self.owner.assert_in_loop_thread();
        if self.disconnected() {
            return;
        }
        log::trace!("TcpConnection {} closing", self.name);
        self.set_state(State::Disconnected);
        {
            let mut io = self.io.lock();
            if let Some(token) = io.token.take() {
                lp.remove_channel(&mut io.stream, token);
            }
        }
        (self.callbacks.connection)(self);
        (self.close_callback)(self);
    }
}

impl Drop for TcpConnection {
    fn drop(&mut self) {
        log::debug!("TcpConnection {} fd={} dropped", self.name, self.fd);
    }
}

impl std::fmt::Debug for TcpConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TcpConnection")
            .field("name", &self.name)
            .field("state", &self.state())
            .finish()
    }
}

/// Writes as much of `data` as the socket takes. `WouldBlock` ends the
/// attempt with the count so far; other errors are returned.
fn write_until_blocked(stream: &mut TcpStream, data: &[u8]) -> io::Result<usize> {
    let mut written = 0;
    while written < data.len() {
        match stream.write(&data[written..]) {
            Ok(0) => break,
            Ok(n) => written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(written)
}

/// The loop-side half of a connection: its channel handler and input buffer.
struct ConnectionChannel {
    conn: TcpConnectionPtr,
    input: Buffer,
}

impl ChannelHandler for ConnectionChannel {
    /// Reads until the socket is drained, handing each chunk to the message
    /// callback; 0 bytes means the peer closed. A peer that keeps the socket
    /// full gets [`READS_PER_EVENT`] reads, then the loop serves the others
    /// and comes back (fairness: one flooding client cannot starve its loop).
    fn handle_read(&mut self, lp: &mut EventLoop, token: Token, receive_time: Instant) {
        let conn = &self.conn;
        for _ in 0..READS_PER_EVENT {
            if conn.disconnected() {
                return; // a callback closed it
            }
            let offered = self.input.read_fd_capacity();
            match self.input.read_fd(conn.fd) {
                Ok(0) => return conn.handle_close(lp),
                Ok(n) => {
                    (conn.callbacks.message)(conn, &mut self.input, receive_time);
                    if n < offered {
                        return; // drained: the next arrival raises a new edge
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    log::debug!("TcpConnection {} read: {}", conn.name, e);
                    return conn.handle_close(lp);
                }
            }
        }
        lp.defer_event(token, Ready::READABLE);
    }

    fn handle_write(&mut self, _lp: &mut EventLoop, _token: Token) {
        self.conn.handle_write();
    }

    fn handle_close(&mut self, lp: &mut EventLoop, _token: Token) {
        self.conn.handle_close(lp);
    }

    fn handle_error(&mut self, _lp: &mut EventLoop, _token: Token) {
        let err = self.conn.io.lock().stream.take_error();
        log::debug!("TcpConnection {} error: {:?}", self.conn.name, err);
    }
}
