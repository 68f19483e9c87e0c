//! `TcpConnection`: one established TCP connection, as muduo's `TcpConnection`.
//!
//! # Ownership (muduo's `shared_ptr`, `weak_ptr` and `Channel::tie`)
//!
//! muduo hands connections around as `shared_ptr<TcpConnection>` and ties
//! the channel to it so the object outlives a callback that closes it. Here:
//!
//! * users hold a [`TcpConnectionPtr`] (`Arc<TcpConnection>`): the name,
//!   addresses, state, the socket, the *output* buffer, and the context;
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
//! # Threads, and who touches the socket
//!
//! [`send`](TcpConnection::send), [`shutdown`](TcpConnection::shutdown),
//! [`force_close`](TcpConnection::force_close),
//! [`stop_read`](TcpConnection::stop_read) and
//! [`start_read`](TcpConnection::start_read), the context and the
//! accessors may be called from any thread. Registration, reading and
//! closing run on the loop thread only.
//!
//! The socket itself is behind no lock: a TCP socket may be read and
//! written at the same time (the kernel keeps the two directions apart),
//! and every operation here goes through `&TcpStream`. What needs a lock is
//! the *order of the bytes written*: the output buffer sits in a mutex, and
//! every write to the socket (a sender's, or the loop's flush) and the
//! final `shutdown(Write)` happen while holding it. Reads take no lock;
//! only the loop reads.
//!
//! # Sending from another thread: two ways
//!
//! muduo's `send` from a foreign thread copies the bytes into a closure for
//! the owning loop (`runInLoop(sendInLoop)`), which costs an eventfd
//! wake-up and a context switch per burst. This port does that only when
//! asked ([`CrossThreadSend::Queue`]). By default
//! ([`CrossThreadSend::Direct`]) `send` does muduo's `sendInLoop` on the
//! calling thread: with the output lock held, write directly when nothing
//! is queued, otherwise append to the output buffer, which the loop flushes
//! on the next writable edge. The lock makes the order the order of the
//! calls: bytes sent from one thread arrive in the order sent, and a caller
//! that sends several times while holding a lock of its own knows that no
//! sender who must take that lock first can come in between (the chat
//! server's login relies on this). The write is non-blocking, so the lock
//! is held for one short syscall. Callbacks (write complete, high-water
//! mark) run on the loop either way.
//!
//! # TLS
//!
//! A connection made with a [`TlsSession`] (see [`crate::tls`]) keeps the
//! same shape: its session sits in a second mutex, always locked after
//! the output lock. `send` hands the plaintext to rustls and writes (or
//! buffers) the ciphertext under both locks; the output buffer, the
//! high-water mark, [`output_len`](TcpConnection::output_len) and
//! [`bytes_written`](TcpConnection::bytes_written) count ciphertext. The
//! loop decrypts into the input buffer, so the message callback sees
//! plaintext. `shutdown` queues a `close_notify` once the output drains,
//! then sends the FIN; a peer's `close_notify` reads as end of stream. A
//! plain connection has no session and takes neither the second lock nor
//! a copy.
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
use std::os::unix::io::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;

use mio::{net::TcpStream, unix::SourceFd, Interest, Token};
use parking_lot::Mutex;

use crate::buffer::{Buffer, INITIAL_SIZE};
use crate::callbacks::{CloseCallback, ConnectionCallbacks};
use crate::event_loop::{EventLoop, EventLoopHandle};
use crate::tls::TlsSession;

mod channel;
mod keep_alive;
mod reading;
mod tls_io;

use channel::ConnectionChannel;
pub use keep_alive::KeepAlive;

/// How connections are shared (muduo's `TcpConnectionPtr`).
pub type TcpConnectionPtr = Arc<TcpConnection>;

/// How many reads one readable event may do before the connection yields
/// to the other channels of its loop (and asks to be called again).
const READS_PER_EVENT: usize = 8;

/// An output buffer larger than this is shrunk back once it drains.
const SHRINK_OUTPUT_ABOVE: usize = 1 << 20;

/// The value of [`TcpConnection::token`] while no channel is registered.
const NO_TOKEN: usize = usize::MAX;

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

/// How a [`TcpConnection::send`] made off the connection's loop thread
/// reaches the socket. A send on the loop thread writes at once either way.
///
/// Set for a whole server with
/// [`TcpServer::set_cross_thread_send`](crate::TcpServer::set_cross_thread_send).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CrossThreadSend {
    /// Write on the calling thread, under the output buffer's lock (this
    /// port's default; see the [module documentation](self)).
    #[default]
    Direct,
    /// muduo's way: copy the bytes into a closure queued for the
    /// connection's loop (`queueInLoop(sendInLoop)`), which writes them.
    /// The sending thread never touches the socket; each burst costs a
    /// wake-up of the loop and, for `send`, a copy.
    Queue,
}

/// A TCP connection. See the [module documentation](self).
pub struct TcpConnection {
    owner: EventLoopHandle,
    id: u64,
    name: String,
    local_addr: SocketAddr,
    peer_addr: SocketAddr,
    /// The socket, behind no lock (see "Threads, and who touches the
    /// socket"). It closes when the connection is dropped.
    stream: TcpStream,
    state: AtomicU8,
    /// Bytes sent but not yet taken by the kernel. Its lock is held for
    /// every write to `stream` and for the final `shutdown(Write)`, so that
    /// bytes leave in the order they were sent.
    output: Mutex<Buffer>,
    /// Bytes ever accepted for sending (written at once or buffered), and
    /// bytes ever written to the kernel: positions in the connection's
    /// output stream. Changed only under the `output` lock; atomic so that
    /// [`bytes_written`](Self::bytes_written) needs no lock.
    accepted: AtomicU64,
    written: AtomicU64,
    /// The channel's poller token, [`NO_TOKEN`] while unregistered. Written
    /// and read on the loop thread only; atomic because the connection is
    /// shared.
    token: AtomicUsize,
    /// Whether the loop reads the socket ([`stop_read`](Self::stop_read),
    /// [`start_read`](Self::start_read)).
    reading: AtomicBool,
    /// The server's (or client's) callbacks, high-water mark included.
    callbacks: ConnectionCallbacks,
    cross_thread_send: CrossThreadSend,
    close_callback: CloseCallback,
    context: Mutex<Option<Arc<dyn Any + Send + Sync>>>,
    /// One-shot tasks waiting for the output buffer to drain
    /// ([`when_drained`](Self::when_drained)). Taken under the `output`
    /// lock, so a drain cannot slip between the check and the wait.
    drained: Mutex<Vec<DrainedTask>>,
    /// The TLS state of a TLS connection (see "TLS"), locked after
    /// `output`; `None` for a plain one, which so pays one pointer.
    tls: Option<Box<Mutex<TlsSession>>>,
}

/// A task for [`TcpConnection::when_drained`].
pub type DrainedTask = Box<dyn FnOnce() + Send>;

impl TcpConnection {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        owner: EventLoopHandle,
        id: u64,
        name: String,
        stream: TcpStream,
        peer_addr: SocketAddr,
        callbacks: ConnectionCallbacks,
        cross_thread_send: CrossThreadSend,
        close_callback: CloseCallback,
        tls: Option<TlsSession>,
    ) -> TcpConnectionPtr {
        let local_addr = stream.local_addr().unwrap_or(peer_addr);
        log::debug!("TcpConnection {} fd={} created", name, stream.as_raw_fd());
        Arc::new(TcpConnection {
            owner,
            id,
            name,
            local_addr,
            peer_addr,
            stream,
            state: AtomicU8::new(State::Connecting as u8),
            // Empty until a write is partial: most sends go straight to the
            // socket, and an idle connection should cost little.
            output: Mutex::new(Buffer::with_capacity(0)),
            accepted: AtomicU64::new(0),
            written: AtomicU64::new(0),
            token: AtomicUsize::new(NO_TOKEN),
            reading: AtomicBool::new(true),
            callbacks,
            cross_thread_send,
            close_callback,
            context: Mutex::new(None),
            drained: Mutex::new(Vec::new()),
            tls: tls.map(|s| Box::new(Mutex::new(s))),
        })
    }

    /// A number unique among this process's connections; any thread.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// `"<server name>-<listen address>#<id>"`, as muduo names connections;
    /// any thread.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Our end's address; any thread.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The peer's address; any thread.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }

    /// The loop that owns this connection's I/O; any thread.
    pub fn get_loop(&self) -> &EventLoopHandle {
        &self.owner
    }

    /// How sends from other threads reach the socket; any thread.
    pub fn cross_thread_send(&self) -> CrossThreadSend {
        self.cross_thread_send
    }

    /// `true` for a TLS connection; any thread.
    pub fn is_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The current state; any thread.
    pub fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Acquire))
    }

    /// `true` while the connection is open and not shutting down; any thread.
    pub fn connected(&self) -> bool {
        self.state() == State::Connected
    }

    /// `true` once the connection is closed; any thread.
    pub fn disconnected(&self) -> bool {
        self.state() == State::Disconnected
    }

    fn set_state(&self, s: State) {
        self.state.store(s as u8, Ordering::Release);
    }

    /// Sends `data`; any thread. Does nothing unless connected.
    ///
    /// On the loop thread, and from any thread with
    /// [`CrossThreadSend::Direct`], this writes at once under the output
    /// lock; whatever the kernel does not take now is written by the loop
    /// when the socket turns writable. With [`CrossThreadSend::Queue`] a
    /// foreign thread copies `data` into a closure for the loop instead.
    pub fn send(self: &Arc<Self>, data: &[u8]) {
        if !self.connected() {
            return;
        }
        if self.queues_sends_from_here() {
            self.queue_send(data.to_vec());
        } else {
            let _ = self.send_in_loop(data);
        }
    }

    /// Sends an owned vector; any thread. The same as [`send`](Self::send),
    /// but where `send` would copy the bytes into the loop's closure
    /// ([`CrossThreadSend::Queue`] from another thread), the vector itself
    /// moves there.
    pub fn send_vec(self: &Arc<Self>, data: Vec<u8>) {
        if !self.connected() {
            return;
        }
        if self.queues_sends_from_here() {
            self.queue_send(data);
        } else {
            let _ = self.send_in_loop(&data);
        }
    }

    /// Sends an owned vector like [`send_vec`](Self::send_vec), and returns
    /// where it ends in the connection's output stream: the number of
    /// bytes ever accepted for sending, these included. Once
    /// [`bytes_written`](Self::bytes_written) reaches that number, every
    /// byte of `data` is in the kernel. `None` when nothing was accepted
    /// (the connection is closed or closing), and with
    /// [`CrossThreadSend::Queue`] from another thread, where the position
    /// is only known when the loop writes. Any thread.
    pub fn send_vec_counted(self: &Arc<Self>, data: Vec<u8>) -> Option<u64> {
        if !self.connected() {
            return None;
        }
        if self.queues_sends_from_here() {
            self.queue_send(data);
            return None;
        }
        self.send_in_loop(&data)
    }

    /// [`send_vec_counted`](Self::send_vec_counted) for borrowed bytes:
    /// the same position, and a copy only where [`send`](Self::send)
    /// makes one (the queued cross-thread send). Any thread.
    pub fn send_counted(self: &Arc<Self>, data: &[u8]) -> Option<u64> {
        if !self.connected() {
            return None;
        }
        if self.queues_sends_from_here() {
            self.queue_send(data.to_vec());
            return None;
        }
        self.send_in_loop(data)
    }

    /// Bytes of the output stream written to the kernel so far; any
    /// thread. After the connection closed, what it never wrote (its
    /// output buffer at the close) stays uncounted.
    pub fn bytes_written(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    /// Runs `task` on the connection's loop once every byte sent so far is
    /// in the kernel: at once (queued) when the output buffer is empty,
    /// otherwise when the loop drains it. A task waiting when the
    /// connection closes is dropped unrun. Any thread.
    ///
    /// Unlike the write-complete callback, which every completed send
    /// queues, this costs nothing unless asked for: the way to send a
    /// large backlog in steps that keep the buffer small (muduo's
    /// examples do that with the write-complete callback).
    pub fn when_drained(self: &Arc<Self>, task: DrainedTask) {
        let output = self.output.lock();
        if self.disconnected() {
            return;
        }
        if output.is_empty() {
            drop(output);
            self.owner.queue_in_loop(move |_| task());
        } else {
            self.drained.lock().push(task);
        }
    }

    /// Sends the readable bytes of `buf` and empties it; any thread.
    pub fn send_buffer(self: &Arc<Self>, buf: &mut Buffer) {
        self.send(buf.peek());
        buf.retrieve_all();
    }

    /// `true` when a send from the calling thread goes through the loop's
    /// queue (muduo's `runInLoop`: queue unless on the loop thread).
    fn queues_sends_from_here(&self) -> bool {
        self.cross_thread_send == CrossThreadSend::Queue && !self.owner.is_in_loop_thread()
    }

    /// muduo's `queueInLoop(std::bind(&TcpConnection::sendInLoop, ...))`.
    fn queue_send(self: &Arc<Self>, data: Vec<u8>) {
        let conn = self.clone();
        self.owner.queue_in_loop(move |_| {
            let _ = conn.send_in_loop(&data);
        });
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
        self.stream.set_nodelay(on)
    }

    /// Turns TCP keepalive on with `keep_alive`'s timers, or off with
    /// `None` (muduo's `setKeepAlive`); any thread. A server sets it on
    /// every connection it accepts with
    /// [`TcpServer::set_keep_alive`](crate::TcpServer::set_keep_alive).
    ///
    /// # Errors
    /// The `setsockopt` error.
    pub fn set_keep_alive(&self, keep_alive: Option<KeepAlive>) -> io::Result<()> {
        keep_alive::apply(socket2::SockRef::from(&self.stream), keep_alive)
    }

    /// The socket's keepalive timers as the kernel has them (`None`: off);
    /// any thread.
    ///
    /// # Errors
    /// The `getsockopt` error.
    pub fn keep_alive(&self) -> io::Result<Option<KeepAlive>> {
        keep_alive::read(socket2::SockRef::from(&self.stream))
    }

    /// Bytes sent but not yet taken by the kernel; any thread.
    pub fn output_len(&self) -> usize {
        self.output.lock().readable_bytes()
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
        // mio needs only the descriptor; the connection keeps the socket.
        let fd = self.stream.as_raw_fd();
        let interest = Interest::READABLE | Interest::WRITABLE;
        match lp.add_channel(&mut SourceFd(&fd), interest, handler) {
            Ok(token) => {
                self.token.store(token.0, Ordering::Relaxed);
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

    /// muduo's `sendInLoop`. It runs on the loop thread, or, with
    /// [`CrossThreadSend::Direct`], on whichever thread sends: the output
    /// lock orders this write against every other send and against the
    /// loop's flush in `handle_write`. Returns the end of `data` in the
    /// output stream, or `None` when it was dropped.
    fn send_in_loop(self: &Arc<Self>, data: &[u8]) -> Option<u64> {
        let mut output = self.output.lock();
        // A send that races with the close may still write once: harmless,
        // since the sender's `Arc` keeps the socket (and so its fd) open,
        // and the peer has gone.
        if self.disconnected() {
            log::debug!("TcpConnection {} closed, give up writing", self.name);
            return None;
        }
        if let Some(tls) = &self.tls {
            return self.send_tls(&mut output, tls, data);
        }
        let mut written = 0;
        // Bytes already waiting must leave first: then we may only append.
        if output.is_empty() {
            match write_until_blocked(&self.stream, data) {
                Ok(n) => written = n,
                Err(e) => {
                    // The peer is gone; the read side will see it and close.
                    log::debug!("TcpConnection {} write: {}", self.name, e);
                    return None;
                }
            }
            self.written.fetch_add(written as u64, Ordering::AcqRel);
        }
        let end = self.accepted.fetch_add(data.len() as u64, Ordering::AcqRel) + data.len() as u64;
        if written == data.len() {
            self.queue_write_complete();
            return Some(end);
        }
        // The kernel's buffer is full: keep the rest for the writable edge.
        let old_len = output.readable_bytes();
        output.append(&data[written..]);
        self.check_high_water_mark(old_len, output.readable_bytes());
        Some(end)
    }

    /// Tells the user, on the loop, when the output buffer crosses the mark.
    fn check_high_water_mark(self: &Arc<Self>, old_len: usize, new_len: usize) {
        if let Some((cb, mark)) = &self.callbacks.high_water_mark {
            if old_len < *mark && new_len >= *mark {
                let (cb, conn) = (cb.clone(), self.clone());
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
        let mut output = self.output.lock();
        if output.is_empty() {
            self.shutdown_write(&mut output);
        }
        // Otherwise `handle_write` shuts down once the output drains.
    }

    /// Sends our FIN; the caller holds the output lock (`output`). A send
    /// that raced with `shutdown` and comes after this fails with `EPIPE`
    /// and is dropped. A TLS connection first sends its `close_notify`
    /// (the FIN follows once that has drained).
    fn shutdown_write(&self, output: &mut Buffer) {
        if let Some(tls) = &self.tls {
            if !self.tls_close_notify(output, tls) {
                return;
            }
        }
        if let Err(e) = self.stream.shutdown(Shutdown::Write) {
            log::debug!("TcpConnection {} shutdown: {}", self.name, e);
        }
    }

    /// The socket is writable: flush the output buffer. Loop thread only.
    fn handle_write(self: &Arc<Self>) {
        let mut output = self.output.lock();
        if output.is_empty() || self.disconnected() {
            return; // a writable edge with nothing queued
        }
        match write_until_blocked(&self.stream, output.peek()) {
            Ok(n) => {
                output.retrieve(n);
                self.written.fetch_add(n as u64, Ordering::AcqRel);
            }
            Err(e) => {
                log::debug!("TcpConnection {} write: {}", self.name, e);
                return;
            }
        }
        if !output.is_empty() {
            return; // the next writable edge continues
        }
        // Drained: give a burst's memory back, tell the user, and finish a
        // shutdown that was waiting for the output.
        if output.internal_capacity() > SHRINK_OUTPUT_ABOVE {
            output.shrink(INITIAL_SIZE);
        }
        self.queue_write_complete();
        for task in std::mem::take(&mut *self.drained.lock()) {
            self.owner.queue_in_loop(move |_| task());
        }
        if self.state() == State::Disconnecting {
            self.shutdown_write(&mut output);
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
        self.drained.lock().clear();
        let token = self.token.swap(NO_TOKEN, Ordering::Relaxed);
        if token != NO_TOKEN {
            let fd = self.stream.as_raw_fd();
            lp.remove_channel(&mut SourceFd(&fd), Token(token));
        }
        (self.callbacks.connection)(self);
        (self.close_callback)(self);
    }
}

impl Drop for TcpConnection {
    fn drop(&mut self) {
        let fd = self.stream.as_raw_fd();
        log::debug!("TcpConnection {} fd={} dropped", self.name, fd);
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
fn write_until_blocked(mut stream: &TcpStream, data: &[u8]) -> io::Result<usize> {
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
