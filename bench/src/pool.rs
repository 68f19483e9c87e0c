//! The worker threads, and the main thread's side of running a phase.
//!
//! [`Pool::run`] gives every worker its part of a phase, then waits for all
//! of them, printing a progress line on standard error every second. Workers
//! end their phases by their own deadlines, so the wait always ends; if a
//! worker thread dies, the run stops with an error instead of hanging.

use crate::conn::Framing;
use crate::phases::{Outcome, Phase};
use crate::timeline::Timeline;
use crate::worker::{Channels, Command, Counters, Peer, Worker, WAKER};
use mio::{Poll, Waker};
use std::io;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Worker threads that keep their connections from phase to phase.
pub(crate) struct Pool {
    commands: Vec<Sender<Command>>,
    peers: Arc<Vec<Peer>>,
    threads: Vec<JoinHandle<()>>,
    results: Receiver<(usize, Outcome)>,
    /// Live figures for the progress line.
    pub counters: Arc<Counters>,
    progress: bool,
    /// `--timeline`: the per-second rows, written here.
    timeline: Option<std::cell::RefCell<Timeline>>,
}

impl Pool {
    /// Starts `threads` workers. `framing` frames each request (a line, a
    /// bare object for `--legacy`, a WebSocket frame for `--transport ws`);
    /// `progress` prints a line per second on standard error during phases;
    /// `tls` makes every connection TLS (`--tls`); `timeline` is the
    /// `--timeline` file to write.
    ///
    /// # Errors
    /// A `Poll` or `Waker` could not be created, a thread not spawned, or
    /// the timeline file not created.
    pub fn new(
        threads: usize,
        framing: Framing,
        progress: bool,
        tls: Option<crate::tls::Tls>,
        timeline: Option<&std::path::Path>,
    ) -> io::Result<Pool> {
        let threads = threads.max(1);
        let counters = Arc::new(Counters::default());
        let timeline = match timeline {
            Some(path) => {
                let file = Timeline::create(path).map_err(|e| {
                    io::Error::new(e.kind(), format!("--timeline {}: {e}", path.display()))
                })?;
                counters.timed.store(true, Ordering::Relaxed);
                Some(std::cell::RefCell::new(file))
            }
            None => None,
        };
        let mut polls = Vec::with_capacity(threads);
        let mut peers = Vec::with_capacity(threads);
        let mut feedback_rx = Vec::with_capacity(threads);
        for _ in 0..threads {
            let poll = Poll::new()?;
            let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
            let (tx, rx) = mpsc::channel();
            peers.push(Peer {
                feedback: tx,
                waker,
            });
            feedback_rx.push(rx);
            polls.push(poll);
        }
        let peers = Arc::new(peers);
        let (results_tx, results) = mpsc::channel();
        let mut commands = Vec::with_capacity(threads);
        let mut handles = Vec::with_capacity(threads);
        for (id, (poll, feedback)) in polls.into_iter().zip(feedback_rx).enumerate() {
            let (tx, rx) = mpsc::channel();
            commands.push(tx);
            let mut worker = Worker::new(
                id,
                poll,
                Arc::clone(&peers),
                Arc::clone(&counters),
                Channels {
                    commands: rx,
                    feedback,
                    results: results_tx.clone(),
                },
            )?;
            worker.set_framing(framing);
            worker.set_tls(tls.clone());
            let handle = std::thread::Builder::new()
                .name(format!("bench-worker-{id}"))
                .spawn(move || worker.run())?;
            handles.push(handle);
        }
        Ok(Pool {
            commands,
            peers,
            threads: handles,
            results,
            counters,
            progress,
            timeline,
        })
    }

    /// Number of workers.
    pub fn size(&self) -> usize {
        self.commands.len()
    }

    /// Runs one phase part per worker (`parts[i]` on worker `i`) and returns
    /// the merged outcome. `label` names the phase in progress lines.
    ///
    /// # Errors
    /// A worker thread died.
    pub fn run(&self, label: &str, parts: Vec<Box<dyn Phase>>) -> io::Result<Outcome> {
        let started = Instant::now();
        self.reset_counters();
        if let Some(t) = &self.timeline {
            t.borrow_mut().phase_started(started, &self.counters);
        }
        let mut pending = 0;
        for (i, part) in parts.into_iter().enumerate() {
            self.command(i, Command::Run(part))?;
            pending += 1;
        }
        let mut merged = Outcome::default();
        let mut next_line = started + Duration::from_secs(1);
        while pending > 0 {
            let wait = next_line.saturating_duration_since(Instant::now());
            match self.results.recv_timeout(wait) {
                Ok((_, outcome)) => {
                    merged.merge(outcome);
                    pending -= 1;
                }
                Err(RecvTimeoutError::Timeout) => {
                    if self.progress {
                        eprintln!("{}", self.progress_line(label, started.elapsed()));
                    }
                    self.timeline_row(label)?;
                    next_line += Duration::from_secs(1);
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(io::Error::other("a worker thread died"));
                }
            }
        }
        self.timeline_row(label)?;
        Ok(merged)
    }

    /// A `--timeline` row for the second just ended, if one is written.
    fn timeline_row(&self, label: &str) -> io::Result<()> {
        match &self.timeline {
            Some(t) => t.borrow_mut().row(Instant::now(), label, &self.counters),
            None => Ok(()),
        }
    }

    fn command(&self, worker: usize, command: Command) -> io::Result<()> {
        self.commands[worker]
            .send(command)
            .map_err(|_| io::Error::other("a worker thread died"))?;
        self.peers[worker].waker.wake()
    }

    fn reset_counters(&self) {
        let c = &self.counters;
        for counter in [
            &c.ok,
            &c.failed,
            &c.sent,
            &c.expected,
            &c.delivered,
            &c.errors,
        ] {
            counter.store(0, Ordering::Relaxed);
        }
    }

    fn progress_line(&self, label: &str, elapsed: Duration) -> String {
        let c = &self.counters;
        let get = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
        let secs = elapsed.as_secs_f64().max(1e-9);
        let sent = get(&c.sent);
        if sent > 0 {
            let delivered = get(&c.delivered);
            format!(
                "[{label}] {:.0}s sent {sent} delivered {delivered} ({:.0}/s) in flight {}",
                secs,
                delivered as f64 / secs,
                get(&c.expected).saturating_sub(delivered),
            )
        } else if get(&c.ok) == 0 && get(&c.failed) == 0 {
            format!("[{label}] {secs:.0}s")
        } else {
            let ok = get(&c.ok);
            format!(
                "[{label}] {:.0}s done {ok} ({:.0}/s) failed {}",
                secs,
                ok as f64 / secs,
                get(&c.failed),
            )
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for i in 0..self.commands.len() {
            // A worker that already ended needs no stop.
            let _ = self.command(i, Command::Stop);
        }
        for handle in self.threads.drain(..) {
            if handle.join().is_err() {
                log::error!("a bench worker panicked");
            }
        }
    }
}
