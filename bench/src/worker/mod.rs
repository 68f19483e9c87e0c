//! A client thread: one `mio::Poll`, the connections of its share of the
//! users, and the phase it is running.
//!
//! Users are dealt to workers in pairs ([`worker_of`]): user `2p` and user
//! `2p + 1` chat with each other in the `chat` scenario, and keeping them on
//! one thread means a delivery can open the sender's window without crossing
//! threads. When a delivery does belong to a sender on another worker (group
//! chat), the recipient's worker batches such acknowledgements during one
//! loop iteration and then sends each other worker one list through a
//! channel and one `mio::Waker` wake-up, not one per message.
//!
//! The loop, per iteration: take new commands, poll (bounded by what the
//! phase asks for and by [`MAX_WAIT`]), dispatch events, hand feedback to the
//! phase, call [`Phase::tick`], then flush every connection that queued
//! output, so all requests queued in one iteration leave in one `write`.

mod io;

pub(crate) use io::{Counters, Io, Peer};

use crate::conn::Framing;
use crate::phases::{Outcome, Phase};
use mio::{Events, Poll, Token};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Token of each worker's waker; connection tokens are slot numbers.
pub(crate) const WAKER: Token = Token(usize::MAX);
/// Longest a worker sleeps in `poll`, so that deadlines and the other
/// workers' progress are noticed even when nothing arrives.
const MAX_WAIT: Duration = Duration::from_millis(20);
/// Most messages kept between two phases.
const MAX_PARKED: usize = 1 << 20;
/// Size of the read buffer shared by a worker's connections.
const SCRATCH: usize = 64 << 10;

/// The worker that serves user `user` when there are `threads` workers.
pub(crate) fn worker_of(user: usize, threads: usize) -> usize {
    (user / 2) % threads
}

/// What the main thread asks of a worker.
pub(crate) enum Command {
    /// Run this phase for the worker's users.
    Run(Box<dyn Phase>),
    /// Close everything and end the thread.
    Stop,
}

/// The channels a worker listens and answers on.
pub(crate) struct Channels {
    /// Phases to run, from the main thread.
    pub commands: Receiver<Command>,
    /// Delivery acknowledgements from the other workers.
    pub feedback: Receiver<Vec<usize>>,
    /// Where finished phases' outcomes go.
    pub results: Sender<(usize, Outcome)>,
}

/// A worker thread's state; [`Worker::run`] is its body.
pub(crate) struct Worker {
    poll: Poll,
    io: Io,
    commands: Receiver<Command>,
    feedback: Receiver<Vec<usize>>,
    results: Sender<(usize, Outcome)>,
    /// Messages that arrived while no phase was running.
    parked: Vec<(usize, Value)>,
}

impl Worker {
    /// A worker numbered `id` of `threads`, around a `Poll` whose waker is
    /// already in `peers[id]`.
    pub fn new(
        id: usize,
        poll: Poll,
        peers: Arc<Vec<Peer>>,
        counters: Arc<Counters>,
        channels: Channels,
    ) -> std::io::Result<Worker> {
        let registry = poll.registry().try_clone()?;
        let threads = peers.len();
        Ok(Worker {
            poll,
            io: Io {
                id,
                threads,
                now: Instant::now(),
                framing: Framing::Lines,
                counters,
                registry,
                sessions: Vec::new(),
                by_user: HashMap::new(),
                dirty: Vec::new(),
                resumed: Vec::new(),
                closed: Vec::new(),
                local_feedback: Vec::new(),
                remote_feedback: vec![Vec::new(); threads],
                peers,
            },
            commands: channels.commands,
            feedback: channels.feedback,
            results: channels.results,
            parked: Vec::new(),
        })
    }

    /// Sets how requests are framed.
    pub fn set_framing(&mut self, framing: Framing) {
        self.io.framing = framing;
    }

    /// Runs commands until told to stop or until the main thread is gone.
    pub fn run(mut self) {
        let mut events = Events::with_capacity(1024);
        let mut scratch = vec![0u8; SCRATCH];
        let mut values = Vec::new();
        let mut phase: Option<Box<dyn Phase>> = None;
        loop {
            loop {
                match self.commands.try_recv() {
                    Ok(Command::Run(mut next)) => {
                        self.io.now = Instant::now();
                        next.start(&mut self.io);
                        for (slot, value) in std::mem::take(&mut self.parked) {
                            next.on_message(&mut self.io, slot, value);
                        }
                        phase = Some(next);
                    }
                    Ok(Command::Stop) | Err(std::sync::mpsc::TryRecvError::Disconnected) => return,
                    Err(std::sync::mpsc::TryRecvError::Empty) => break,
                }
            }
            let mut wait = MAX_WAIT;
            if let Some(p) = phase.as_mut() {
                let wanted = p.tick(&mut self.io);
                self.io.flush_dirty();
                self.io.send_remote_feedback();
                if let Some(at) = wanted {
                    wait = wait.min(at.saturating_duration_since(Instant::now()));
                }
                if p.is_done(&self.io) {
                    if let Some(done) = phase.take() {
                        let outcome = done.finish(&mut self.io);
                        self.io.flush_dirty();
                        if self.results.send((self.io.id, outcome)).is_err() {
                            return;
                        }
                    }
                    continue;
                }
            } else {
                wait = Duration::from_millis(200);
            }
            if let Err(e) = self.poll.poll(&mut events, Some(wait)) {
                if e.kind() != std::io::ErrorKind::Interrupted {
                    log::error!("worker {}: poll failed: {e}", self.io.id);
                    return;
                }
            }
            self.io.now = Instant::now();
            for event in events.iter() {
                if event.token() == WAKER {
                    continue;
                }
                let slot = event.token().0;
                self.handle(slot, event, &mut scratch, &mut values, &mut phase);
            }
            // Resumed readers: their bytes came with an edge already spent.
            for slot in std::mem::take(&mut self.io.resumed) {
                self.read(slot, false, &mut scratch, &mut values, &mut phase);
            }
            self.after_events(&mut phase);
        }
    }

    /// Connect completion, reads and writes for one event on `slot`.
    fn handle(
        &mut self,
        slot: usize,
        event: &mio::event::Event,
        scratch: &mut [u8],
        values: &mut Vec<Value>,
        phase: &mut Option<Box<dyn Phase>>,
    ) {
        let Some(conn) = self.io.conn_mut(slot) else {
            return;
        };
        if !conn.is_connected() {
            match conn.finish_connect() {
                Ok(false) => return,
                Ok(true) => {
                    if let Some(p) = phase.as_mut() {
                        p.on_connected(&mut self.io, slot);
                    }
                }
                Err(e) => return self.io.fail(slot, format!("connect: {e}")),
            }
        }
        let readable = event.is_readable() || event.is_read_closed() || event.is_error();
        if readable && self.io.conn_mut(slot).is_some_and(|c| c.is_paused()) {
            // A slow reader: leave it unread, write what is queued.
            return self.io.flush(slot);
        }
        if readable {
            self.read(slot, event.is_read_closed(), scratch, values, phase);
        } else {
            self.io.flush(slot);
        }
    }

    /// Reads what `slot` holds and hands it to the phase (or parks it),
    /// then writes what is left or reports the close.
    fn read(
        &mut self,
        slot: usize,
        read_closed: bool,
        scratch: &mut [u8],
        values: &mut Vec<Value>,
        phase: &mut Option<Box<dyn Phase>>,
    ) {
        let Some(conn) = self.io.conn_mut(slot) else {
            return;
        };
        let closed = match conn.read(scratch, values, read_closed) {
            Ok(true) => None,
            Ok(false) => Some("closed by server".to_string()),
            Err(reason) => Some(reason),
        };
        match phase.as_mut() {
            Some(p) => {
                for value in values.drain(..) {
                    p.on_message(&mut self.io, slot, value);
                }
            }
            None => self.park(slot, values),
        }
        match closed {
            Some(reason) => self.io.fail(slot, reason),
            // Writes what is left (after a writable edge) and keeps the
            // registered interest in line with the output buffer.
            None => self.io.flush(slot),
        }
    }

    /// Keeps messages that arrive between phases for the next phase: the
    /// workers start a phase at slightly different moments, and a message
    /// sent by a worker that started first must not be lost by one that
    /// has not started yet.
    fn park(&mut self, slot: usize, values: &mut Vec<Value>) {
        if self.parked.len() + values.len() > MAX_PARKED {
            log::warn!(
                "worker {}: dropping messages that arrived between phases",
                self.io.id
            );
            values.clear();
            return;
        }
        self.parked.extend(values.drain(..).map(|v| (slot, v)));
    }

    /// Reports closed connections and delivery feedback to the phase.
    fn after_events(&mut self, phase: &mut Option<Box<dyn Phase>>) {
        let mut feedback = std::mem::take(&mut self.io.local_feedback);
        while let Ok(list) = self.feedback.try_recv() {
            feedback.extend(list);
        }
        let closed = std::mem::take(&mut self.io.closed);
        if let Some(p) = phase.as_mut() {
            for (slot, reason) in closed {
                p.on_closed(&mut self.io, slot, reason);
            }
            if !feedback.is_empty() {
                p.on_feedback(&mut self.io, &feedback);
            }
        }
        feedback.clear();
        if self.io.local_feedback.is_empty() {
            self.io.local_feedback = feedback;
        }
    }
}
