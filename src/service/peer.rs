//! `Peer`: one connected client, as the service sees it.
//!
//! The service never touches a socket or an event loop. What it needs from
//! a connection fits in this trait: a stable id (for the online map and the
//! worker shard key before login), a name for logs, whether it is still
//! open, how long it has been silent, a way to send it bytes, a way to
//! close it with a last word, and a way to get back onto the thread that
//! serves it. The server implements it for net's `TcpConnection`
//! (src/server/peer.rs); the service's unit tests implement it with a fake
//! that records frames and lets the test decide when queued tasks run.
//!
//! # Threads
//!
//! Every peer is served by one *own* thread (an I/O thread in the server):
//! the one that decoded its requests and handed them to
//! [`Service::handle`](super::Service::handle). Handlers start there, go to a
//! worker for anything that blocks, and come back with
//! [`Peer::run_on_own_loop`] when the rest of their work must run in order
//! with the peer's requests (a login's last step, the replay of held requests). Sending
//! needs no hop: [`Peer::send`] is safe from any thread.
//!
//! # Order
//!
//! Two sends reach the client in the order of the calls whenever the calls
//! themselves are ordered: made by one thread, or one after the other under
//! a lock that both callers take (an online-map shard, in the login's last
//! step). The service's ordering arguments (ARCHITECTURE.md, "Bob logs in")
//! rest on exactly this.

use std::sync::Arc;
use std::time::Duration;

/// A closure queued to run on a peer's own thread.
pub type Task = Box<dyn FnOnce() + Send>;

/// How the service holds a peer: shared by the session's handlers, the
/// online map and worker jobs.
pub type PeerRef = Arc<dyn Peer>;

/// One connected client. See the [module docs](self) for the thread rules.
pub trait Peer: Send + Sync {
    /// A number unique among this process's peers for its whole life; any
    /// thread. The online map tells a user's connections apart by it.
    fn id(&self) -> u64;

    /// A short name for log lines; any thread.
    fn name(&self) -> &str;

    /// `true` while the peer is open and not shutting down; any thread. A
    /// peer never becomes connected again once this returned `false`.
    fn connected(&self) -> bool;

    /// Sends one encoded frame; any thread, never blocks on the network.
    /// Does nothing once the peer is no longer connected. Ordered calls
    /// give ordered frames (see the [module docs](self)).
    fn send(&self, frame: Vec<u8>);

    /// Sends `frame` like [`send`](Self::send) and returns where it ends
    /// in the peer's output stream (bytes ever accepted for it, these
    /// included), or `None` when it was not accepted (the peer is closing)
    /// or the position cannot be known. Compared with
    /// [`written`](Self::written), it tells when the frame has reached the
    /// kernel: what the delivery cursors count as delivered. Borrowed: one
    /// message's bytes are shared by every recipient (a group's members),
    /// and a connection copies them into its output anyway. Any thread.
    fn send_counted(&self, frame: &[u8]) -> Option<u64>;

    /// Bytes of the peer's output stream written to the kernel so far
    /// (what a closed peer never wrote stays uncounted); any thread.
    fn written(&self) -> u64;

    /// Runs `task` on the peer's own thread once everything sent to it so
    /// far is in the kernel; never, if the peer closes first. Any thread.
    /// A large backlog goes out in steps this way, each after the last
    /// has drained.
    fn when_drained(&self, task: Task);

    /// How long since bytes last arrived from the peer (since it connected,
    /// if none ever did); any thread. A login may replace a connection that
    /// has been silent longer than `--login-takeover-grace` (see
    /// [`super::account`]).
    fn idle_for(&self) -> Duration;

    /// Sends `frame` as the peer's last, then closes it: whatever the peer
    /// sends from now on is ignored, and the connection is shut down once
    /// the frame is written; any thread, never blocks. [`Peer::connected`]
    /// is `false` from the call on, so later sends do nothing. Used when a
    /// new login replaces this peer's.
    fn close_with(&self, frame: Vec<u8>);

    /// Queues `task` to run on the peer's own thread, after what that
    /// thread is doing now; any thread. Tasks queued by one thread run in
    /// the order queued. A task still runs when the peer has closed in the
    /// meantime (it must check for itself); once the thread itself has
    /// stopped (at shutdown), a task queued to it never runs.
    fn run_on_own_loop(&self, task: Task);
}
