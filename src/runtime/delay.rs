//! [`Delay`]: run a short job a little later, on a thread of its own.
//!
//! The service uses it for one thing: a message that reached a connection
//! past a gap is held for a moment, and only if the gap is still open then
//! is it filled from the database ([`crate::service`]'s delivery). The job
//! itself must be short (the one in the service only queues work on a
//! worker): every delayed job runs on the one thread, in deadline order.
//!
//! The queue is bounded ([`MAX_DELAYED`]): a job past the bound runs at
//! once, on the caller's thread, which is what the caller would have done
//! without the delay. Jobs still waiting when the `Delay` is dropped are
//! dropped with it, not run.
//!
//! # Threads
//!
//! [`Delay::after`] from any thread; it never blocks beyond the queue's
//! lock (held for a heap push). The thread sleeps on a condition variable
//! until the earliest deadline.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

/// The most jobs waiting at once; beyond, [`Delay::after`] runs the job at
/// once.
pub const MAX_DELAYED: usize = 1 << 20;

type Job = Box<dyn FnOnce() + Send>;

/// A job and when it is due; ordered so that the heap's top is the
/// earliest (and, at one instant, the first scheduled).
struct Due {
    at: Instant,
    n: u64,
    job: Job,
}

impl PartialEq for Due {
    fn eq(&self, other: &Due) -> bool {
        (self.at, self.n) == (other.at, other.n)
    }
}

impl Eq for Due {}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Due) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Due {
    fn cmp(&self, other: &Due) -> Ordering {
        (other.at, other.n).cmp(&(self.at, self.n))
    }
}

#[derive(Default)]
struct Queue {
    heap: BinaryHeap<Due>,
    scheduled: u64,
    /// Jobs taken off the heap and not yet returned.
    running: usize,
    stopping: bool,
}

#[derive(Default)]
struct Inner {
    queue: Mutex<Queue>,
    wake: Condvar,
}

/// See the [module docs](self).
pub struct Delay {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

impl Delay {
    /// Starts the thread, named `name`.
    ///
    /// # Errors
    /// The thread could not be spawned.
    pub fn new(name: &str) -> std::io::Result<Delay> {
        let inner = Arc::new(Inner::default());
        let run = inner.clone();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || run_loop(&run))?;
        Ok(Delay {
            inner,
            thread: Some(thread),
        })
    }

    /// Runs `job` on the delay thread once `wait` has passed (at once, on
    /// this thread, when [`MAX_DELAYED`] jobs wait already). Any thread.
    pub fn after(&self, wait: Duration, job: impl FnOnce() + Send + 'static) {
        let mut q = self.inner.queue.lock();
        if q.stopping || q.heap.len() >= MAX_DELAYED {
            drop(q);
            job();
            return;
        }
        let at = Instant::now() + wait;
        let earliest = q.heap.peek().is_none_or(|d| at < d.at);
        q.scheduled += 1;
        let n = q.scheduled;
        q.heap.push(Due {
            at,
            n,
            job: Box::new(job),
        });
        if earliest {
            self.inner.wake.notify_one();
        }
    }

    /// Jobs waiting or running; any thread. A job counts until it has
    /// returned, so whatever it queued elsewhere is queued by then.
    pub fn waiting(&self) -> usize {
        let q = self.inner.queue.lock();
        q.heap.len() + q.running
    }
}

impl Drop for Delay {
    fn drop(&mut self) {
        self.inner.queue.lock().stopping = true;
        self.inner.wake.notify_one();
        if let Some(t) = self.thread.take() {
            // Dropped by one of its own jobs (it held the last reference):
            // the thread ends by itself once the job returns.
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
    }
}

/// The thread: sleeps until the earliest deadline, runs what is due.
fn run_loop(inner: &Inner) {
    let mut q = inner.queue.lock();
    loop {
        if q.stopping {
            return;
        }
        let Some(at) = q.heap.peek().map(|d| d.at) else {
            inner.wake.wait(&mut q);
            continue;
        };
        if at > Instant::now() {
            let _ = inner.wake.wait_until(&mut q, at);
            continue;
        }
        if let Some(due) = q.heap.pop() {
            // Run it unlocked: a job may schedule another.
            q.running += 1;
            drop(q);
            (due.job)();
            q = inner.queue.lock();
            q.running -= 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossbeam_channel::unbounded;

    #[test]
    fn jobs_run_after_their_wait_in_deadline_order() {
        let delay = Delay::new("test-delay").unwrap();
        let (tx, rx) = unbounded();
        let start = Instant::now();
        for (name, ms) in [("c", 60u64), ("a", 20), ("b", 40)] {
            let tx = tx.clone();
            delay.after(Duration::from_millis(ms), move || {
                let _ = tx.send((name, start.elapsed()));
            });
        }
        let got: Vec<_> = (0..3)
            .map(|_| rx.recv_timeout(Duration::from_secs(5)).unwrap())
            .collect();
        let names: Vec<&str> = got.iter().map(|g| g.0).collect();
        assert_eq!(names, ["a", "b", "c"]);
        for ((_, at), ms) in got.iter().zip([20u64, 40, 60]) {
            assert!(*at >= Duration::from_millis(ms), "{at:?} < {ms} ms");
        }
        // The last job counts until it returns, a moment after its send.
        let end = Instant::now() + Duration::from_secs(5);
        while delay.waiting() != 0 {
            assert!(Instant::now() < end, "a finished job still counts");
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    #[test]
    fn a_job_may_schedule_another_and_dropping_skips_the_rest() {
        let delay = Arc::new(Delay::new("test-delay").unwrap());
        let (tx, rx) = unbounded();
        let again = delay.clone();
        let tx2 = tx.clone();
        delay.after(Duration::from_millis(5), move || {
            again.after(Duration::from_millis(5), move || {
                let _ = tx2.send("second");
            });
        });
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), "second");
        let delay = Arc::try_unwrap(delay).ok().unwrap();
        delay.after(Duration::from_secs(60), move || {
            let _ = tx.send("never");
        });
        drop(delay);
        assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
    }
}
