//! What a phase may do with a worker's connections: [`Io`].
//!
//! A phase never touches sockets directly. It queues requests with
//! [`Io::send`] (written once per loop iteration), opens connections with
//! [`Io::connect`], and reports deliveries to their senders with
//! [`Io::ack_sender`], which the worker batches per loop iteration into one
//! message and one wake-up per other worker.

use super::worker_of;
use crate::conn::{Conn, Framing};
use crate::tls::Tls;
use mio::{Registry, Token, Waker};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::time::Instant;

/// Live figures the progress line reads; workers add to them in batches.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Operations completed (connects, replies).
    pub ok: AtomicU64,
    /// Operations failed.
    pub failed: AtomicU64,
    /// Chat messages sent.
    pub sent: AtomicU64,
    /// Deliveries owed (messages sent times recipients).
    pub expected: AtomicU64,
    /// Deliveries that arrived.
    pub delivered: AtomicU64,
    /// Error replies and closed connections (the timeline's `errors`,
    /// with `failed`).
    pub errors: AtomicU64,
    /// Whether `--timeline` asked for [`Counters::latency`].
    pub timed: std::sync::atomic::AtomicBool,
    /// Latencies since the timeline's last row (delivery, or request).
    pub latency: crate::histogram::SharedHistogram,
}

impl Counters {
    /// Records a latency for the timeline, when one is written.
    pub fn time(&self, micros: u64) {
        if self.timed.load(Ordering::Relaxed) {
            self.latency.record(micros);
        }
    }

    /// Adds `n` to `counter` (a relaxed add: these are statistics).
    pub fn add(counter: &AtomicU64, n: u64) {
        if n > 0 {
            counter.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// How to reach a worker from another thread.
pub(crate) struct Peer {
    /// Delivery acknowledgements for the worker's senders.
    pub feedback: Sender<Vec<usize>>,
    /// Wakes the worker's `poll`.
    pub waker: Arc<Waker>,
}

/// A user's connection, in the slot (= token) the worker gave it.
pub(crate) struct Session {
    /// Global user index.
    pub user: usize,
    pub(super) conn: Option<Conn>,
}

/// The worker's connections and services, lent to the running phase.
pub(crate) struct Io {
    /// This worker's number.
    pub id: usize,
    /// Number of workers.
    pub threads: usize,
    /// Time at the start of the current iteration.
    pub now: Instant,
    /// How requests are framed: lines (our server), bare (`--legacy`) or
    /// WebSocket frames (`--transport ws`).
    pub framing: Framing,
    /// `--tls`: every connection speaks TLS with these settings.
    pub(super) tls: Option<Tls>,
    /// Shared progress figures.
    pub counters: Arc<Counters>,
    pub(super) registry: Registry,
    pub(super) sessions: Vec<Session>,
    pub(super) by_user: HashMap<usize, usize>,
    pub(super) dirty: Vec<usize>,
    /// Slots whose reading was resumed, to read at once.
    pub(super) resumed: Vec<usize>,
    /// Connections that failed, to report to the phase.
    pub(super) closed: Vec<(usize, String)>,
    /// Deliveries to this worker's own senders.
    pub(super) local_feedback: Vec<usize>,
    /// Deliveries to each other worker's senders, sent once per iteration.
    pub(super) remote_feedback: Vec<Vec<usize>>,
    pub(super) peers: Arc<Vec<Peer>>,
}

impl Io {
    /// Starts connecting user `user` to `addr`; returns its slot.
    ///
    /// # Errors
    /// The socket could not be created, bound or registered.
    pub fn connect(
        &mut self,
        user: usize,
        addr: SocketAddr,
        source: Option<IpAddr>,
    ) -> io::Result<usize> {
        let mut conn = Conn::connect(addr, source, self.framing, self.tls.as_ref())?;
        let slot = self.sessions.len();
        self.registry
            .register(conn.source(), Token(slot), Conn::INITIAL_INTEREST)?;
        self.sessions.push(Session {
            user,
            conn: Some(conn),
        });
        self.by_user.insert(user, slot);
        Ok(slot)
    }

    /// The slot of user `user`, when it has a connection on this worker.
    pub fn slot_of(&self, user: usize) -> Option<usize> {
        self.by_user.get(&user).copied()
    }

    /// The user on `slot`.
    pub fn user_of(&self, slot: usize) -> usize {
        self.sessions[slot].user
    }

    /// All slots whose connection is open, in order.
    pub fn open_slots(&self) -> Vec<usize> {
        (0..self.sessions.len())
            .filter(|&s| self.is_open(s))
            .collect()
    }

    /// Whether `slot` holds an open, connected connection.
    pub fn is_open(&self, slot: usize) -> bool {
        self.sessions
            .get(slot)
            .and_then(|s| s.conn.as_ref())
            .is_some_and(Conn::is_connected)
    }

    /// Queues a request on `slot`; it is written at the end of the iteration.
    /// Does nothing when the connection is gone.
    pub fn send(&mut self, slot: usize, text: &str) {
        if let Some(conn) = self.sessions.get_mut(slot).and_then(|s| s.conn.as_mut()) {
            conn.queue(text);
            self.dirty.push(slot);
        }
    }

    /// Closes `slot` without telling the phase (it asked for it).
    pub fn close(&mut self, slot: usize) {
        if let Some(mut conn) = self.sessions.get_mut(slot).and_then(|s| s.conn.take()) {
            // Deregistering a socket that is about to be dropped cannot
            // matter to the run; the drop closes it either way.
            let _ = self.registry.deregister(conn.source());
        }
    }

    /// Closes `slot` abortively (a reset, unread input discarded), without
    /// telling the phase: a client that vanished.
    pub fn reset(&mut self, slot: usize) {
        if let Some(conn) = self.conn_mut(slot) {
            conn.abort_on_close();
        }
        self.close(slot);
    }

    /// Stops reading `slot` (a slow reader): what the server sends waits in
    /// the kernel's buffers, then in the server's output queue.
    pub fn pause_reading(&mut self, slot: usize) {
        if let Some(conn) = self.conn_mut(slot) {
            conn.set_paused(true);
        }
    }

    /// Reads `slot` again, starting with what piled up meanwhile.
    pub fn resume_reading(&mut self, slot: usize) {
        if let Some(conn) = self.conn_mut(slot) {
            if conn.is_paused() {
                conn.set_paused(false);
                self.resumed.push(slot);
            }
        }
    }

    /// Tells the worker serving sender `user` that one of its messages was
    /// delivered.
    pub fn ack_sender(&mut self, user: usize) {
        let worker = worker_of(user, self.threads);
        if worker == self.id {
            self.local_feedback.push(user);
        } else {
            self.remote_feedback[worker].push(user);
        }
    }

    pub(super) fn conn_mut(&mut self, slot: usize) -> Option<&mut Conn> {
        self.sessions.get_mut(slot).and_then(|s| s.conn.as_mut())
    }

    /// Closes a connection that failed and remembers why, for the phase.
    pub(super) fn fail(&mut self, slot: usize, reason: String) {
        self.close(slot);
        self.closed.push((slot, reason));
    }

    pub(super) fn flush_dirty(&mut self) {
        while let Some(slot) = self.dirty.pop() {
            self.flush(slot);
        }
    }

    /// Writes what `slot` has queued, then registers writable interest if
    /// output is left over, or drops it once it is no longer needed.
    pub(super) fn flush(&mut self, slot: usize) {
        let Some(conn) = self.sessions.get_mut(slot).and_then(|s| s.conn.as_mut()) else {
            return;
        };
        if let Err(e) = conn.flush() {
            return self.fail(slot, format!("write: {e}"));
        }
        if let Some(interest) = conn.interest_change() {
            match self
                .registry
                .reregister(conn.source(), Token(slot), interest)
            {
                Ok(()) => conn.set_registered(interest),
                Err(e) => self.fail(slot, format!("reregister: {e}")),
            }
        }
    }

    pub(super) fn send_remote_feedback(&mut self) {
        for (worker, list) in self.remote_feedback.iter_mut().enumerate() {
            if list.is_empty() {
                continue;
            }
            let peer = &self.peers[worker];
            // A worker that is gone has nobody left to tell.
            if peer.feedback.send(std::mem::take(list)).is_ok() {
                let _ = peer.waker.wake();
            }
        }
    }
}
