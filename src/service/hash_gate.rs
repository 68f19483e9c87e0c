//! `HashGate`: password hashing waits for a quiet moment on the I/O threads.
//!
//! # Why a gate on top of the idle scheduling class
//!
//! By default the hashing threads already run in Linux's `SCHED_IDLE`
//! class ([`Priority::Idle`](super::Priority), `--hash-priority idle`): they get only CPU that nothing
//! else wants, and yield it the moment an I/O thread wakes. That is not
//! enough on a small machine. A server that answers chat traffic within
//! milliseconds still leaves short idle gaps on its cores, the hashing
//! thread fills them, and each argon2 hash (19 MiB written and read back at
//! the default cost) pushes the I/O threads' data out of the CPU caches.
//! Measured on 2 cores (docs/benchmarks.md §2.8): with the idle class alone
//! a storm of 250 new accounts still raised the p99 of 1,000 chatting users
//! by about 13 %.
//!
//! So before each hash the hashing thread looks at how busy the I/O loops
//! have been (the busy time of [`EventLoopHandle::stats`], summed over the
//! loops): while they worked more than [`BUSY_ABOVE`] of the time, it
//! waits, re-checking every [`RECHECK`], for at most `max_wait` (`--hash-max-wait`). The bound
//! keeps logins moving when the server is busy for a long time: at least
//! one hash per `max_wait` per hashing thread. On a quiet server the check
//! costs two clock reads and nothing else.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use net::EventLoopHandle;
use parking_lot::Mutex;

/// The share of the time the I/O loops may be busy for a hash to start at
/// once.
pub const BUSY_ABOVE: f64 = 0.25;

/// How long a waiting hash sleeps between two looks at the loops, and the
/// shortest interval a look measures.
pub const RECHECK: Duration = Duration::from_millis(10);

/// See the [module documentation](self).
pub struct HashGate {
    loops: OnceLock<Vec<EventLoopHandle>>,
    max_wait: Duration,
    last: Mutex<Sample>,
}

/// The loops' total busy time, read at `at`, and the share of the
/// interval before it they were busy.
struct Sample {
    at: Instant,
    busy: Duration,
    share: f64,
}

impl HashGate {
    /// A gate that lets a hash wait at most `max_wait`; zero never waits.
    /// It lets everything through until [`watch`](Self::watch) is called.
    pub fn new(max_wait: Duration) -> HashGate {
        HashGate {
            loops: OnceLock::new(),
            max_wait,
            last: Mutex::new(Sample {
                at: Instant::now(),
                busy: Duration::ZERO,
                share: 0.0,
            }),
        }
    }

    /// Starts watching the server's I/O loops; once, after the server has
    /// started them. Later calls are ignored.
    pub fn watch(&self, loops: Vec<EventLoopHandle>) {
        let busy = total_busy(&loops);
        *self.last.lock() = Sample {
            at: Instant::now(),
            busy,
            share: 0.0,
        };
        let _ = self.loops.set(loops);
    }

    /// Hashing thread, before a hash: returns once the I/O loops were less
    /// than [`BUSY_ABOVE`] busy since the last look, or after `max_wait`.
    /// Returns how long it waited: zero when it let the hash through at
    /// once.
    pub fn wait(&self) -> Duration {
        let Some(loops) = self.loops.get().filter(|l| !l.is_empty()) else {
            return Duration::ZERO;
        };
        if self.max_wait.is_zero() || self.busy_share(loops) < BUSY_ABOVE {
            return Duration::ZERO;
        }
        let start = Instant::now();
        loop {
            let waited = start.elapsed();
            if waited >= self.max_wait {
                log::trace!("a password hash waited {waited:?}, the longest allowed");
                return waited;
            }
            std::thread::sleep(RECHECK.min(self.max_wait - waited));
            if self.busy_share(loops) < BUSY_ABOVE {
                let waited = start.elapsed();
                log::trace!("a password hash waited {waited:?} for the I/O loops");
                return waited;
            }
        }
    }

    /// The share of the time the loops were busy since the last look. A
    /// look less than [`RECHECK`] after the previous one repeats its answer:
    /// a shorter interval says too little (cheap hashes, in tests, come
    /// hundreds per second).
    fn busy_share(&self, loops: &[EventLoopHandle]) -> f64 {
        let mut last = self.last.lock();
        let now = Instant::now();
        let since = now.duration_since(last.at);
        if since < RECHECK {
            return last.share;
        }
        let busy = total_busy(loops);
        let wall = since.as_secs_f64() * loops.len() as f64;
        let worked = busy.saturating_sub(last.busy).as_secs_f64();
        let share = worked / wall;
        *last = Sample {
            at: now,
            busy,
            share,
        };
        share
    }
}

fn total_busy(loops: &[EventLoopHandle]) -> Duration {
    loops.iter().map(|l| l.stats().busy_time).sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use net::EventLoopThread;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    /// Keeps `handle`'s loop working until `stop` is set: a closure that
    /// spins for 5 ms and queues itself again.
    fn keep_busy(handle: EventLoopHandle, stop: Arc<AtomicBool>) {
        let again = handle.clone();
        handle.queue_in_loop(move |_| {
            let start = Instant::now();
            while start.elapsed() < Duration::from_millis(5) {
                std::hint::spin_loop();
            }
            if !stop.load(Ordering::Relaxed) {
                keep_busy(again, stop);
            }
        });
    }

    #[test]
    fn waits_for_a_busy_loop_but_not_longer_than_max_wait() {
        let mut thread = EventLoopThread::new("gate-test", None);
        let handle = thread.start_loop().unwrap();
        let gate = HashGate::new(Duration::from_millis(400));
        gate.watch(vec![handle.clone()]);

        // Idle loop: no wait at all, however often it is asked.
        std::thread::sleep(Duration::from_millis(50));
        for _ in 0..100 {
            assert_eq!(gate.wait(), Duration::ZERO);
        }

        let stop = Arc::new(AtomicBool::new(false));
        keep_busy(handle.clone(), stop.clone());
        std::thread::sleep(Duration::from_millis(50));
        let waited = gate.wait();
        stop.store(true, Ordering::Relaxed);
        assert!(
            waited >= Duration::from_millis(400),
            "waited only {waited:?}"
        );
        assert!(waited < Duration::from_secs(10), "waited {waited:?}");
    }

    #[test]
    fn an_unwatched_or_disabled_gate_never_waits() {
        assert_eq!(HashGate::new(Duration::from_secs(5)).wait(), Duration::ZERO);
        let mut thread = EventLoopThread::new("gate-test", None);
        let handle = thread.start_loop().unwrap();
        let gate = HashGate::new(Duration::ZERO);
        gate.watch(vec![handle.clone()]);
        let stop = Arc::new(AtomicBool::new(false));
        keep_busy(handle, stop.clone());
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(gate.wait(), Duration::ZERO);
        stop.store(true, Ordering::Relaxed);
    }
}
