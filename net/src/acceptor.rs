//! `Acceptor`: the listening socket and its accept loop, as muduo's `Acceptor`.
//!
//! The acceptor lives on the server's main loop. When its socket is
//! readable it accepts every pending connection (mio is edge-triggered, so
//! it keeps going until `WouldBlock`) and hands each one to the
//! new-connection callback, which `TcpServer` uses to pick a sub-loop.
//!
//! # Running out of file descriptors
//!
//! When the process hits its descriptor limit, `accept` fails with `EMFILE`
//! and the connection stays in the kernel's queue. muduo keeps a spare
//! descriptor (`idleFd_`, open on `/dev/null`) for this moment: close it,
//! accept the connection, close that at once (the client sees a clean close
//! rather than a hang), and reopen the spare. The same is done here, with
//! two changes that an edge-triggered accept loop needs:
//!
//! - `accept` reports `EMFILE` before it looks at the queue, so a full
//!   table says nothing about whether a connection is waiting. When the
//!   spare's slot turns up an empty queue, the loop stops there; looping on
//!   would spin for as long as the table stays full.
//! - Descriptors may have been freed by another thread between the
//!   `EMFILE` and the accept through the spare's slot. If the spare can be
//!   reopened with the accepted connection still open, there was room after
//!   all, and the connection is served instead of shed.
//!
//! If even the spare cannot be had, an edge-triggered poller will not
//! report the queued connections again, so the acceptor retries from a
//! timer (every [`EMFILE_RETRY`]) instead of spinning.
//!
//! Thread affinity: created on its loop's thread (it is not `Send`); once
//! [`Acceptor::listen`] has run it is owned by that loop's poller.

use std::fs::File;
use std::io;
use std::net::SocketAddr;
use std::os::unix::io::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use mio::{net::TcpListener, net::TcpStream, unix::SourceFd, Interest, Token};
use socket2::{Domain, Protocol, Socket, Type};

use crate::channel::{ChannelHandler, Ready};
use crate::event_loop::EventLoop;

/// Called on the loop thread for each accepted connection.
pub type NewConnectionCallback = Box<dyn FnMut(&mut EventLoop, TcpStream, SocketAddr)>;

/// How long to wait before accepting again when no descriptor is free.
pub const EMFILE_RETRY: Duration = Duration::from_millis(100);

/// The kernel caps this at `net.core.somaxconn`.
const BACKLOG: i32 = 4096;

/// A listening socket and its accept loop.
///
/// Shaped as muduo's: [`Acceptor::new`] binds, the new-connection callback
/// is set with [`Acceptor::set_new_connection_callback`], and
/// [`Acceptor::listen`] starts accepting on a loop. One difference: the
/// socket already listens (`listen(2)`) when `new` returns, so a client
/// that connects before `listen` waits in the kernel's backlog instead of
/// being refused, and port 0 is resolved at once.
pub struct Acceptor {
    listener: TcpListener,
    /// muduo's `idleFd_`: a descriptor held in reserve for `EMFILE`.
    idle_fd: Option<File>,
    /// Without one, accepted connections are closed (as muduo does).
    new_connection: Option<NewConnectionCallback>,
    /// A retry timer is set (see [`EMFILE_RETRY`]).
    retry_pending: bool,
}

impl Acceptor {
    /// Binds and listens on `addr` with `SO_REUSEADDR` (and `SO_REUSEPORT`
    /// when `reuse_port`), non-blocking and close-on-exec. An `Acceptor` is
    /// not `Send` (its callback need not be): create it on the thread of
    /// the loop that will run it.
    ///
    /// # Errors
    /// Socket creation, bind or listen errors (address in use, permission).
    pub fn new(addr: SocketAddr, reuse_port: bool) -> io::Result<Acceptor> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        if reuse_port {
            socket.set_reuse_port(true)?;
        }
        socket.set_nonblocking(true)?;
        socket.set_cloexec(true)?;
        socket.bind(&addr.into())?;
        socket.listen(BACKLOG)?;
        Ok(Acceptor {
            listener: TcpListener::from_std(socket.into()),
            idle_fd: File::open("/dev/null").ok(),
            new_connection: None,
            retry_pending: false,
        })
    }

    /// The address actually bound (the real port when `addr` had port 0).
    ///
    /// # Errors
    /// The `getsockname` error.
    pub fn listen_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Sets what is done with each accepted connection; before
    /// [`listen`](Self::listen). The callback runs on the loop thread.
    pub fn set_new_connection_callback(&mut self, cb: NewConnectionCallback) {
        self.new_connection = Some(cb);
    }

    /// Starts accepting: registers the socket with `lp`, which from then on
    /// owns the acceptor. Returns the channel's token, for
    /// [`EventLoop::remove_channel`] with the listener's descriptor (see
    /// [`TcpServer::stop_accepting`](crate::TcpServer::stop_accepting)).
    /// Loop thread only (it takes the loop itself).
    ///
    /// # Errors
    /// The registration error.
    pub fn listen(self, lp: &mut EventLoop) -> io::Result<Token> {
        // The handler owns the listener; mio needs only its descriptor.
        let fd = self.listener.as_raw_fd();
        lp.add_channel(&mut SourceFd(&fd), Interest::READABLE, Box::new(self))
    }

    /// The listening socket's descriptor.
    pub fn fd(&self) -> RawFd {
        self.listener.as_raw_fd()
    }

    /// Hands one accepted connection to the callback, or closes it.
    fn deliver(&mut self, lp: &mut EventLoop, stream: TcpStream, peer: SocketAddr) {
        match self.new_connection.as_mut() {
            Some(cb) => cb(lp, stream, peer),
            None => drop(stream),
        }
    }

    /// Accepts until the queue is empty.
    fn accept_all(&mut self, lp: &mut EventLoop, token: Token) {
        // Edge-triggered: one event may stand for many queued connections,
        // and none of them will be reported again, so take them all.
        loop {
            match self.listener.accept() {
                Ok((stream, peer)) => self.deliver(lp, stream, peer),
                // The queue is empty: the next connection raises a new edge.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                // The client gave up before we got to it, or a signal: next.
                Err(e) if is_transient(&e) => continue,
                // No descriptor for the connection: muduo's spare-fd trick.
                Err(e) if is_out_of_fds(&e) => match self.accept_with_spare() {
                    // Descriptors were freed meanwhile: serve it after all.
                    Spare::Served(stream, peer) => self.deliver(lp, stream, peer),
                    // One connection shed; others may be queued behind it.
                    Spare::Shed => continue,
                    // The table is full but nothing waits: stop, or we spin.
                    Spare::QueueEmpty => return,
                    // Not even the spare: try again from a timer.
                    Spare::Gone => {
                        self.schedule_retry(lp, token);
                        return;
                    }
                },
                Err(e) => {
                    log::error!("Acceptor accept: {}", e);
                    return;
                }
            }
        }
    }

    /// muduo's idle-fd trick: gives the spare's slot to `accept`, then
    /// takes the spare back.
    fn accept_with_spare(&mut self) -> Spare {
        // Closing the spare frees exactly one slot in the table...
        if self.idle_fd.take().is_none() {
            return Spare::Gone;
        }
        // ...which the queued connection takes...
        let accepted = self.listener.accept();
        // ...and the spare is reopened at once, if a slot is still free.
        self.idle_fd = File::open("/dev/null").ok();
        match accepted {
            // Both fit: another thread closed descriptors in between.
            Ok((stream, peer)) if self.idle_fd.is_some() => Spare::Served(stream, peer),
            // Only one fits: close the connection (the client sees a clean
            // close, not a hang) and take its slot back for the spare.
            Ok((stream, peer)) => {
                log::warn!("Acceptor: out of file descriptors, closed {}", peer);
                drop(stream);
                self.idle_fd = File::open("/dev/null").ok();
                if self.idle_fd.is_some() {
                    Spare::Shed
                } else {
                    Spare::Gone
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Spare::QueueEmpty,
            Err(e) if is_transient(&e) => Spare::Shed,
            Err(e) => {
                log::warn!("Acceptor: out of file descriptors: {}", e);
                Spare::QueueEmpty
            }
        }
    }

    fn schedule_retry(&mut self, lp: &mut EventLoop, token: Token) {
        if self.retry_pending {
            return;
        }
        self.retry_pending = true;
        log::warn!(
            "Acceptor: out of file descriptors; retrying in {:?}",
            EMFILE_RETRY
        );
        lp.run_after(EMFILE_RETRY, move |lp| {
            lp.fire_channel(token, Ready::READABLE)
        });
    }
}

impl ChannelHandler for Acceptor {
    fn handle_read(&mut self, lp: &mut EventLoop, token: Token, _t: Instant) {
        self.retry_pending = false;
        if self.idle_fd.is_none() {
            self.idle_fd = File::open("/dev/null").ok();
        }
        self.accept_all(lp, token);
    }
}

/// What accepting through the spare descriptor's slot came to.
enum Spare {
    /// The spare came back with the connection still open: descriptors
    /// were freed meanwhile, so the connection is served.
    Served(TcpStream, SocketAddr),
    /// A connection was accepted and closed (or aborted before it could
    /// be); more may be queued.
    Shed,
    /// Nothing was queued: the `EMFILE` came from the full table alone.
    QueueEmpty,
    /// No spare to give up: retry from a timer.
    Gone,
}

/// Errors after which the next `accept` may well succeed.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINTR) | Some(libc::ECONNABORTED) | Some(libc::EPROTO) | Some(libc::EPERM)
    )
}

fn is_out_of_fds(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
    )
}
