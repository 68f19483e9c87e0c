//! `WorkerPool`: the threads that run every blocking call (database, password
//! hashing), so that I/O threads never wait.
//!
//! # Sharding gives order
//!
//! The pool is N threads, each with its own FIFO queue (a crossbeam
//! channel). A job is submitted with a *shard key* and always runs on worker
//! `key % N`. The service uses the user id as the key for every job that
//! concerns a logged-in user — including storing an offline message *for*
//! that user — and the connection id before login. Two jobs with the same
//! key therefore run one after the other, in the order they were submitted:
//!
//! ```text
//!   submit(uid=7, store "m1" for 7) ─┐
//!   submit(uid=7, store "m2" for 7) ─┼─► worker 7 % N: m1, m2, login phase 2 of 7
//!   submit(uid=7, login phase 2)    ─┘   (phase 2 sees m1 and m2, in order)
//! ```
//!
//! That is the whole ordering argument for offline messages (see
//! `ARCHITECTURE.md`). A global queue with many consumers could not give it.
//!
//! # Priority
//!
//! A pool's threads can run at a lower scheduling [`Priority`] than the I/O
//! threads. The service keeps two kinds: the database workers (nice 5) and
//! the password hashers (a [`HashQueue`](super::HashQueue), whose queue is
//! fair between clients rather than sharded) (`--hash-priority`: by default Linux's `SCHED_IDLE`
//! class), so that on a busy machine a storm of logins, each an argon2 hash
//! of tens of milliseconds, waits for the CPU rather than the chat traffic
//! of users already logged in. (The hashers are also held back while the
//! I/O threads are busy; see [`HashGate`](super::HashGate), and the
//! [runtime docs](super) for the whole picture.)
//!
//! # Bounds: requests may be refused, internal jobs never
//!
//! The queues themselves are unbounded channels, and that is on purpose:
//! some jobs must never be refused. A login's phase 2 (its worker job is
//! queued under the online-map lock, after the password was found right),
//! the cursor writes that record what was delivered, marking a user
//! offline, pruning: dropping one of those would lose a login half done or
//! state the next login relies on. Each of them is bounded by its cause
//! instead (a login per password hash, which `--max-pending-hashes`
//! bounds; one cursor write per user per flush; one offline mark per
//! disconnect). They go in with [`WorkerPool::submit`].
//!
//! What a client can cause at will, one job per request (refresh,
//! friends, groups, history), goes in with [`WorkerPool::try_submit`],
//! which counts those jobs over the whole pool and refuses one beyond
//! [`WorkerPool::set_max_requests`] (`--worker-queue`). The service adds
//! a second bound per connection (`--max-pending-requests`; see
//! `Ctx::request_on_worker`). So the memory the queues can hold is
//! bounded by the two limits plus the internal jobs' causes.
//!
//! # Shutdown
//!
//! [`WorkerPool::shutdown`] waits until no job is queued or running (jobs may
//! submit further jobs; those are waited for too), then stops and joins the
//! threads. A job that panics is logged and does not take its worker down.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};
use parking_lot::Mutex;

use super::Priority;

/// A unit of work.
type Job = Box<dyn FnOnce() + Send>;

enum Message {
    Run(Job),
    Stop,
}

/// N worker threads with one FIFO queue each. See the [module docs](self).
pub struct WorkerPool {
    queues: Vec<Sender<Message>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Jobs submitted and not yet finished, over all queues.
    in_flight: Arc<AtomicUsize>,
    /// Of those, the jobs that came in through [`WorkerPool::try_submit`].
    requests: Arc<AtomicUsize>,
    /// The most `requests` may be ([`WorkerPool::set_max_requests`]).
    max_requests: AtomicUsize,
}

/// The default of [`WorkerPool::set_max_requests`] (`--worker-queue`).
pub const DEFAULT_MAX_REQUESTS: usize = 65_536;

/// One job of [`WorkerPool::try_submit`], queued or running: counted from
/// the submit until it is dropped (the job ended, panicked, or was dropped
/// unrun because the pool stopped).
struct RequestSlot(Arc<AtomicUsize>);

impl Drop for RequestSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl WorkerPool {
    /// Starts `n` threads (at least one) named `<name><i>`, each at
    /// `priority`. Any thread; the server builds its pools once, at start.
    ///
    /// # Errors
    /// If a thread cannot be spawned.
    pub fn new(n: usize, name: &str, priority: Priority) -> std::io::Result<WorkerPool> {
        let n = n.max(1);
        let in_flight = Arc::new(AtomicUsize::new(0));
        let mut queues = Vec::with_capacity(n);
        let mut threads = Vec::with_capacity(n);
        for i in 0..n {
            let (tx, rx) = unbounded();
            let in_flight = in_flight.clone();
            let t = std::thread::Builder::new()
                .name(format!("{name}{i}"))
                .spawn(move || {
                    priority.apply();
                    run_worker(&rx, &in_flight);
                })?;
            queues.push(tx);
            threads.push(t);
        }
        Ok(WorkerPool {
            queues,
            threads: Mutex::new(threads),
            in_flight,
            requests: Arc::new(AtomicUsize::new(0)),
            max_requests: AtomicUsize::new(DEFAULT_MAX_REQUESTS),
        })
    }

    /// Sets how many [`try_submit`](Self::try_submit) jobs may be queued or
    /// running at once, over all the pool's threads (at least 1). Any
    /// thread; the server sets it once, at start.
    pub fn set_max_requests(&self, n: usize) {
        self.max_requests.store(n.max(1), Ordering::Relaxed);
    }

    /// Queues `job` like [`submit`](Self::submit), unless the pool holds
    /// [`set_max_requests`](Self::set_max_requests) such jobs already: then
    /// the job is given back, unrun, for the caller to refuse. For the jobs
    /// a client can ask for at will; any thread, never blocks.
    ///
    /// # Errors
    /// The job itself, when the pool is full.
    pub fn try_submit<F: FnOnce() + Send + 'static>(&self, key: u64, job: F) -> Result<(), F> {
        let max = self.max_requests.load(Ordering::Relaxed);
        if self.requests.fetch_add(1, Ordering::AcqRel) >= max {
            self.requests.fetch_sub(1, Ordering::AcqRel);
            return Err(job);
        }
        let slot = RequestSlot(self.requests.clone());
        self.submit(key, move || {
            let _slot = slot;
            job();
        });
        Ok(())
    }

    /// The [`try_submit`](Self::try_submit) jobs queued or running; any
    /// thread.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::Acquire)
    }

    /// The worker that runs jobs submitted with `key`; any thread.
    fn shard_of(&self, key: u64) -> usize {
        (key % self.queues.len() as u64) as usize
    }

    /// Queues `job` on worker `key % N`; any thread, never blocks. Jobs with
    /// the same key run in submission order. After [`shutdown`](Self::shutdown)
    /// the job is dropped (and logged).
    pub fn submit<F: FnOnce() + Send + 'static>(&self, key: u64, job: F) {
        let queue = &self.queues[self.shard_of(key)];
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        if queue.send(Message::Run(Box::new(job))).is_err() {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            log::warn!("worker pool stopped; job for shard key {key} dropped");
        }
    }

    /// Jobs queued or running; any thread.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Waits (at most `timeout`) until no job is queued or running, jobs
    /// submitted meanwhile included; `false` if the timeout expired first.
    /// The workers go on. Any thread but the pool's own workers.
    pub fn wait_idle(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.in_flight() > 0 {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        true
    }

    /// Waits (at most `timeout`) until every queued job, and every job those
    /// submit, has run; then stops and joins the workers. Returns `false` if
    /// the timeout expired with jobs left (they are abandoned). Any thread
    /// but the pool's own workers (a worker would wait for itself).
    pub fn shutdown(&self, timeout: Duration) -> bool {
        let drained = self.wait_idle(timeout);
        if !drained {
            log::error!("worker pool: {} jobs left at shutdown", self.in_flight());
        }
        for q in &self.queues {
            let _ = q.send(Message::Stop);
        }
        let threads = std::mem::take(&mut *self.threads.lock());
        if drained {
            for t in threads {
                if t.join().is_err() {
                    log::error!("a worker thread panicked");
                }
            }
        }
        drained
    }
}

fn run_worker(rx: &Receiver<Message>, in_flight: &AtomicUsize) {
    while let Ok(Message::Run(job)) = rx.recv() {
        if catch_unwind(AssertUnwindSafe(job)).is_err() {
            log::error!("a worker job panicked; the worker goes on");
        }
        in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_runs_in_order_and_shutdown_drains() {
        let pool = Arc::new(WorkerPool::new(3, "test-worker", Priority::Nice(0)).unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        for i in 0..1000u64 {
            let seen = seen.clone();
            let pool2 = pool.clone();
            pool.submit(7, move || {
                seen.lock().push(i);
                if i == 999 {
                    // A job that submits another: shutdown waits for it too.
                    let seen = seen.clone();
                    pool2.submit(7, move || seen.lock().push(1000));
                }
            });
        }
        assert!(pool.shutdown(Duration::from_secs(10)));
        let seen = seen.lock();
        assert_eq!(*seen, (0..=1000).collect::<Vec<_>>());
    }

    #[test]
    fn a_panicking_job_does_not_kill_its_worker() {
        let pool = WorkerPool::new(1, "test-worker", Priority::Nice(5)).unwrap();
        pool.submit(0, || panic!("boom"));
        let (tx, rx) = crossbeam_channel::bounded(1);
        pool.submit(0, move || tx.send(42).unwrap());
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(42));
        assert!(pool.shutdown(Duration::from_secs(5)));
    }

    #[test]
    fn try_submit_refuses_beyond_the_limit_and_submit_never_does() {
        let pool = WorkerPool::new(1, "test-worker", Priority::Nice(0)).unwrap();
        pool.set_max_requests(2);
        // Hold the only worker so that jobs stay queued.
        let (release, held) = crossbeam_channel::bounded::<()>(0);
        pool.submit(0, move || {
            let _ = held.recv();
        });
        let ran = Arc::new(AtomicUsize::new(0));
        let job = |ran: &Arc<AtomicUsize>| {
            let ran = ran.clone();
            move || {
                ran.fetch_add(1, Ordering::AcqRel);
            }
        };
        assert!(pool.try_submit(1, job(&ran)).is_ok());
        assert!(pool.try_submit(2, job(&ran)).is_ok());
        assert!(
            pool.try_submit(3, job(&ran)).is_err(),
            "the third is refused"
        );
        assert_eq!(pool.requests(), 2);
        // Internal jobs go in whatever the count.
        pool.submit(4, job(&ran));
        release.send(()).unwrap();
        assert!(pool.shutdown(Duration::from_secs(5)));
        assert_eq!(ran.load(Ordering::Acquire), 3);
        assert_eq!(pool.requests(), 0, "every slot was given back");
    }

    #[test]
    fn a_panicking_request_gives_its_slot_back() {
        let pool = WorkerPool::new(1, "test-worker", Priority::Nice(0)).unwrap();
        pool.set_max_requests(1);
        assert!(pool.try_submit(0, || panic!("boom")).is_ok());
        let deadline = Instant::now() + Duration::from_secs(5);
        while pool.requests() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        assert_eq!(pool.requests(), 0);
        let (tx, rx) = crossbeam_channel::bounded(1);
        assert!(pool.try_submit(0, move || tx.send(7).unwrap()).is_ok());
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)), Ok(7));
        assert!(pool.shutdown(Duration::from_secs(5)));
    }

    /// What each thread of a pool reports about its own scheduling.
    fn policy_and_nice_of(priority: Priority) -> (i32, i32) {
        let pool = WorkerPool::new(1, "test-worker", priority).unwrap();
        let (tx, rx) = crossbeam_channel::bounded(1);
        pool.submit(0, move || {
            // SAFETY: queries about the calling thread only.
            let seen = unsafe {
                let tid = libc::gettid() as libc::id_t;
                (
                    libc::sched_getscheduler(0),
                    libc::getpriority(libc::PRIO_PROCESS, tid),
                )
            };
            tx.send(seen).unwrap();
        });
        let seen = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert!(pool.shutdown(Duration::from_secs(5)));
        seen
    }

    #[test]
    fn priorities_reach_the_worker_threads_only() {
        // SAFETY: a query about the calling thread.
        let own_nice =
            unsafe { libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t) };
        let (policy, _) = policy_and_nice_of(Priority::Idle);
        assert_eq!(policy, libc::SCHED_IDLE);
        let (policy, nice) = policy_and_nice_of(Priority::Nice(5));
        assert_eq!(policy, libc::SCHED_OTHER);
        assert_eq!(nice, (own_nice + 5).min(19));
        // The test's own thread kept its class.
        assert_eq!(unsafe { libc::sched_getscheduler(0) }, libc::SCHED_OTHER);
    }
}
