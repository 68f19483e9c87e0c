//! `HashQueue`: the password hashers' threads and their queue, fair
//! between source addresses and between connections.
//!
//! # Why not a [`WorkerPool`](super::WorkerPool)
//!
//! A worker pool runs each thread's jobs first come, first served. For the
//! database that is what we want (jobs of one user in order); for argon2
//! it is not: a hash costs tens of milliseconds, so one connection that
//! queued a few hundred registrations (or a few hundred connections of one
//! attacker that queued four each) put every other client's login behind
//! seconds of hashing. Here no client waits behind another's backlog.
//!
//! # The rotation
//!
//! Jobs are filed by source address, then by connection, then in the order
//! they came:
//!
//! ```text
//!   ring of addresses     each address: a ring of      each connection:
//!   with work ready       its connections with work    its jobs, in order
//!   ┌────┬────┬────┐      ┌──────┬──────┐              ┌────┬────┬────┐
//!   │ A  │ B  │ C  │ ──►  │ A:17 │ A:42 │      ──►     │ j1 │ j2 │ j3 │
//!   └────┴────┴────┘      └──────┴──────┘              └────┴────┴────┘
//! ```
//!
//! A free thread takes the address at the front of the ring, that
//! address's first connection and that connection's first job. The address
//! goes to the back of the ring at once (if it has another connection
//! ready); the connection leaves the rotation while its job runs, and goes
//! back to the end of its address's ring when the job has ended, if it has
//! more. So:
//!
//! - **A connection's jobs run one at a time, in order**, whichever thread
//!   runs them: a register and the login pipelined behind it stay in
//!   order, as on the shard of a worker pool.
//! - **Addresses take turns.** A job at the front of its connection's queue
//!   waits for at most one job of each other address with work (plus those
//!   running), however many jobs or connections those addresses have
//!   queued; within an address, connections take turns the same way.
//!
//! What is queued is bounded by the callers: the service lets one
//! connection, and one address, have only a few hashes pending
//! (`--max-pending-hashes`, `--max-pending-hashes-per-address`).
//!
//! # Threads
//!
//! [`HashQueue::submit`] is for any thread and never blocks (one short
//! lock). The queue's own threads run at the [`Priority`] given; they wait
//! on a condition variable when there is nothing to do. Shutdown is as the
//! worker pool's: [`HashQueue::shutdown`] waits until nothing is queued or
//! running, then stops and joins the threads. A job that panics is logged,
//! and its thread goes on.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use super::Priority;

/// A unit of work.
type Job = Box<dyn FnOnce() + Send>;

/// See the [module documentation](self).
pub struct HashQueue {
    shared: Arc<Shared>,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

/// What the submitters and the threads share.
struct Shared {
    state: Mutex<State>,
    /// Signalled when a job becomes ready, and at shutdown.
    ready: Condvar,
}

/// The rotation (see the module docs). Every connection in `conns` with
/// jobs and no job running is in exactly one address's ring, and every
/// address with a ring is in `ring` exactly once.
#[derive(Default)]
struct State {
    conns: HashMap<u64, ConnJobs>,
    /// Per address, its connections with a job ready, in turn.
    addrs: HashMap<IpAddr, VecDeque<u64>>,
    /// The addresses with a connection ready, in turn.
    ring: VecDeque<IpAddr>,
    /// Jobs queued or running.
    in_flight: usize,
    /// Set by shutdown: threads stop at their next look.
    stopping: bool,
}

/// One connection's jobs.
struct ConnJobs {
    addr: IpAddr,
    jobs: VecDeque<Job>,
    /// A thread runs one of its jobs now: it is out of the rotation.
    running: bool,
}

impl State {
    /// Puts `conn` (of `addr`) at the end of its address's ring, and the
    /// address at the end of the ring if it was not in it.
    fn make_ready(&mut self, addr: IpAddr, conn: u64) {
        let turns = self.addrs.entry(addr).or_default();
        if turns.is_empty() {
            self.ring.push_back(addr);
        }
        turns.push_back(conn);
    }

    /// The next job in the rotation, and its connection, which leaves the
    /// rotation until [`State::finished`].
    fn next(&mut self) -> Option<(u64, Job)> {
        loop {
            let addr = self.ring.pop_front()?;
            let Some(turns) = self.addrs.get_mut(&addr) else {
                continue;
            };
            let Some(conn) = turns.pop_front() else {
                self.addrs.remove(&addr);
                continue;
            };
            if turns.is_empty() {
                self.addrs.remove(&addr);
            } else {
                self.ring.push_back(addr);
            }
            let Some(entry) = self.conns.get_mut(&conn) else {
                continue;
            };
            if let Some(job) = entry.jobs.pop_front() {
                entry.running = true;
                return Some((conn, job));
            }
        }
    }

    /// `conn`'s running job ended: back into the rotation if it has more,
    /// forgotten if not.
    fn finished(&mut self, conn: u64) {
        self.in_flight = self.in_flight.saturating_sub(1);
        let Some(entry) = self.conns.get_mut(&conn) else {
            return;
        };
        entry.running = false;
        if entry.jobs.is_empty() {
            self.conns.remove(&conn);
        } else {
            let addr = entry.addr;
            self.make_ready(addr, conn);
        }
    }
}

impl HashQueue {
    /// Starts `n` threads (at least one) named `<name><i>`, each at
    /// `priority`. Any thread; the service builds its queue once, at start.
    ///
    /// # Errors
    /// If a thread cannot be spawned.
    pub fn new(n: usize, name: &str, priority: Priority) -> std::io::Result<HashQueue> {
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            ready: Condvar::new(),
        });
        let mut threads = Vec::new();
        for i in 0..n.max(1) {
            let shared = shared.clone();
            let t = std::thread::Builder::new()
                .name(format!("{name}{i}"))
                .spawn(move || {
                    priority.apply();
                    run_thread(&shared);
                })?;
            threads.push(t);
        }
        Ok(HashQueue {
            shared,
            threads: Mutex::new(threads),
        })
    }

    /// Queues `job` for connection `conn` from `addr`; any thread, never
    /// blocks. The jobs of one connection run one at a time, in the order
    /// submitted. After [`shutdown`](Self::shutdown) the job is dropped
    /// (and logged).
    pub fn submit<F: FnOnce() + Send + 'static>(&self, addr: IpAddr, conn: u64, job: F) {
        let mut state = self.shared.state.lock();
        if state.stopping {
            drop(state);
            log::warn!("hashing stopped; a job of connection {conn} dropped");
            return;
        }
        state.in_flight += 1;
        let entry = state.conns.entry(conn).or_insert_with(|| ConnJobs {
            addr,
            jobs: VecDeque::new(),
            running: false,
        });
        entry.jobs.push_back(Box::new(job));
        let newly_ready = !entry.running && entry.jobs.len() == 1;
        let addr = entry.addr;
        if newly_ready {
            state.make_ready(addr, conn);
        }
        drop(state);
        if newly_ready {
            self.shared.ready.notify_one();
        }
    }

    /// Jobs queued or running; any thread.
    pub fn in_flight(&self) -> usize {
        self.shared.state.lock().in_flight
    }

    /// Waits (at most `timeout`) until every queued job has run, then stops
    /// and joins the threads. Returns `false` if the timeout expired with
    /// jobs left (they are abandoned, the threads left to end). Any thread
    /// but the queue's own.
    pub fn shutdown(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut drained = true;
        loop {
            let left = self.in_flight();
            if left == 0 {
                break;
            }
            if Instant::now() >= deadline {
                log::error!("hashing: {left} jobs left at shutdown");
                drained = false;
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        self.shared.state.lock().stopping = true;
        self.shared.ready.notify_all();
        let threads = std::mem::take(&mut *self.threads.lock());
        if drained {
            for t in threads {
                if t.join().is_err() {
                    log::error!("a hashing thread panicked");
                }
            }
        }
        drained
    }
}

/// One thread: the next job in the rotation, run with the lock released,
/// until shutdown.
fn run_thread(shared: &Shared) {
    let mut state = shared.state.lock();
    loop {
        if state.stopping {
            return;
        }
        let Some((conn, job)) = state.next() else {
            shared.ready.wait(&mut state);
            continue;
        };
        drop(state);
        if catch_unwind(AssertUnwindSafe(job)).is_err() {
            log::error!("a hashing job panicked; the thread goes on");
        }
        state = shared.state.lock();
        state.finished(conn);
        // The connection may be ready again, for this thread or another.
        if !state.ring.is_empty() {
            shared.ready.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    /// A queue whose only thread is held inside a first job until the
    /// returned sender is used (or dropped): everything submitted meanwhile
    /// waits, so the order it then runs in is the rotation's alone.
    fn held_queue(threads: usize) -> (HashQueue, crossbeam_channel::Sender<()>) {
        let q = HashQueue::new(threads, "test-hash", Priority::Nice(0)).unwrap();
        let (go, wait) = crossbeam_channel::bounded::<()>(0);
        let (started, running) = crossbeam_channel::bounded::<()>(threads);
        for t in 0..threads {
            let wait = wait.clone();
            let started = started.clone();
            q.submit(ip(250), 1_000_000 + t as u64, move || {
                started.send(()).unwrap();
                let _ = wait.recv();
            });
        }
        for _ in 0..threads {
            running.recv_timeout(Duration::from_secs(5)).unwrap();
        }
        (q, go)
    }

    #[test]
    fn one_connection_s_backlog_does_not_delay_another_s_job() {
        let (q, go) = held_queue(1);
        let order = Arc::new(Mutex::new(Vec::new()));
        for i in 0..100 {
            let order = order.clone();
            q.submit(ip(1), 1, move || order.lock().push(("flood", i)));
        }
        let o = order.clone();
        q.submit(ip(1), 2, move || o.lock().push(("login", 0)));
        drop(go);
        assert!(q.shutdown(Duration::from_secs(10)));
        let order = order.lock();
        let at = order.iter().position(|e| e.0 == "login").unwrap();
        assert!(at <= 1, "the single job ran after {at} of the backlog");
        // The backlog itself ran complete and in order.
        let flood: Vec<i32> = order
            .iter()
            .filter(|e| e.0 == "flood")
            .map(|e| e.1)
            .collect();
        assert_eq!(flood, (0..100).collect::<Vec<_>>());
    }

    #[test]
    fn addresses_take_turns_whatever_their_connections() {
        let (q, go) = held_queue(1);
        let order = Arc::new(Mutex::new(Vec::new()));
        // Address 1: 50 connections with 10 jobs each.
        for conn in 0..50u64 {
            for _ in 0..10 {
                let order = order.clone();
                q.submit(ip(1), conn, move || order.lock().push(1u8));
            }
        }
        let o = order.clone();
        q.submit(ip(2), 999, move || o.lock().push(2u8));
        drop(go);
        assert!(q.shutdown(Duration::from_secs(10)));
        let order = order.lock();
        assert_eq!(order.len(), 501);
        let at = order.iter().position(|&a| a == 2).unwrap();
        assert!(at <= 1, "address 2 waited for {at} jobs of address 1");
    }

    #[test]
    fn a_connection_s_jobs_run_one_at_a_time_in_order_on_many_threads() {
        let q = HashQueue::new(3, "test-hash", Priority::Nice(0)).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for i in 0..300u64 {
            let seen = seen.clone();
            let running = running.clone();
            q.submit(ip(1), 7, move || {
                use std::sync::atomic::Ordering::SeqCst;
                assert_eq!(
                    running.fetch_add(1, SeqCst),
                    0,
                    "two jobs of one connection at once"
                );
                std::thread::yield_now();
                seen.lock().push(i);
                running.fetch_sub(1, SeqCst);
            });
            // Other connections keep the other threads busy meanwhile.
            q.submit(ip(2), 8 + i % 5, std::thread::yield_now);
        }
        assert!(q.shutdown(Duration::from_secs(10)));
        assert_eq!(*seen.lock(), (0..300).collect::<Vec<_>>());
        assert_eq!(q.in_flight(), 0);
        assert!(q.shared.state.lock().conns.is_empty(), "nothing left filed");
    }

    #[test]
    fn a_panicking_job_does_not_stop_its_thread_and_late_jobs_are_dropped() {
        let q = HashQueue::new(1, "test-hash", Priority::Nice(0)).unwrap();
        q.submit(ip(1), 1, || panic!("boom"));
        let (tx, rx) = crossbeam_channel::bounded(1);
        q.submit(ip(1), 1, move || tx.send(42).unwrap());
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(42));
        assert!(q.shutdown(Duration::from_secs(5)));
        q.submit(ip(1), 1, || panic!("must not run"));
        assert_eq!(q.in_flight(), 0);
    }
}
