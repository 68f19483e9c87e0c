//! `LoopStats`: what a loop has been doing, readable from any thread.
//!
//! Not in muduo's `EventLoop`, though its `inspect` pages show the same
//! kind of figures. Each loop keeps a handful of counters in atomics, written
//! by the loop itself except the queue and wake-up counts (which every
//! thread that queues a closure bumps), with relaxed stores that cost the loop next to nothing;
//! [`EventLoopHandle::stats`](crate::EventLoopHandle::stats) copies them
//! into a [`LoopStats`] without taking a lock or disturbing the loop.
//!
//! # Busy time
//!
//! The loop adds up the time it spends between a poll's return and the
//! next poll (handling events, timers and queued closures). Sampled twice,
//! it says what fraction of the interval the loop was working, which lets
//! background work (password hashing, say) stay out of the way of a busy
//! server. The iteration under way counts too, up to the moment of
//! reading, so a long iteration (or a loop thread the scheduler has
//! preempted in the middle of one) shows as busy at once, not only when it
//! ends.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A snapshot of one loop's counters, from
/// [`EventLoopHandle::stats`](crate::EventLoopHandle::stats).
///
/// The loop writes them with relaxed atomic stores that cost it next to
/// nothing; a reader copies them without a lock. They are read one by one,
/// not as one atomic whole: a snapshot taken while the loop works may mix
/// two consecutive moments.
///
/// `busy_time` is what a load-aware scheduler wants: sampled twice, it
/// says what share of the interval the loop was working
/// ([`busy_share_since`](Self::busy_share_since)). Because the iteration
/// under way counts up to the moment of reading, a loop stuck in a long
/// iteration, or preempted in one, reads as busy at once.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoopStats {
    /// Total time spent handling events, timers and queued closures, as
    /// opposed to waiting in poll; the iteration under way is included up
    /// to now. Read just as an iteration ends, it can come out short by
    /// that iteration for a moment; the next read makes up for it.
    pub busy_time: Duration,
    /// Iterations begun (polls returned).
    pub iterations: u64,
    /// Wake-ups sent to the loop (writes to its `mio::Waker`).
    pub wakeups: u64,
    /// Closures queued and not yet run.
    pub pending_functors: usize,
    /// Closures run so far.
    pub functors_run: u64,
    /// Channels registered: connections, listeners, connectors.
    pub channels: usize,
    /// Timers pending, as of the end of the last iteration.
    pub timers: usize,
}

impl LoopStats {
    /// The share of `wall` the loop was busy between `earlier` and `self`,
    /// two snapshots of the same loop `wall` apart (0 when `wall` is zero).
    pub fn busy_share_since(&self, earlier: &LoopStats, wall: Duration) -> f64 {
        if wall.is_zero() {
            return 0.0;
        }
        let worked = self.busy_time.saturating_sub(earlier.busy_time);
        worked.as_secs_f64() / wall.as_secs_f64()
    }
}

/// The atomics behind [`LoopStats`]. The loop thread writes them; any
/// thread reads.
pub(crate) struct Counters {
    /// Nanoseconds spent handling finished iterations.
    busy_nanos: AtomicU64,
    /// When the iteration under way began, in nanoseconds after `clock`
    /// plus one; 0 while the loop waits in poll.
    busy_since: AtomicU64,
    /// The origin of `busy_since`.
    clock: Instant,
    iterations: AtomicU64,
    pub(crate) wakeups: AtomicU64,
    /// Kept equal to the length of the loop's queue, under its lock.
    pub(crate) pending: AtomicUsize,
    pub(crate) functors_run: AtomicU64,
    pub(crate) channels: AtomicUsize,
    pub(crate) timers: AtomicUsize,
}

impl Counters {
    pub(crate) fn new() -> Counters {
        Counters {
            busy_nanos: AtomicU64::new(0),
            busy_since: AtomicU64::new(0),
            clock: Instant::now(),
            iterations: AtomicU64::new(0),
            wakeups: AtomicU64::new(0),
            pending: AtomicUsize::new(0),
            functors_run: AtomicU64::new(0),
            channels: AtomicUsize::new(0),
            timers: AtomicUsize::new(0),
        }
    }

    /// Iterations begun so far.
    pub(crate) fn iterations(&self) -> u64 {
        self.iterations.load(Ordering::Relaxed)
    }

    /// The poll returned at `since`: an iteration's work begins.
    pub(crate) fn begin_iteration(&self, since: Instant) {
        self.iterations.fetch_add(1, Ordering::Relaxed);
        let offset = since.saturating_duration_since(self.clock);
        let nanos = u64::try_from(offset.as_nanos()).unwrap_or(u64::MAX - 1);
        self.busy_since.store(nanos + 1, Ordering::Release);
    }

    /// The iteration that began at `since` ends: its time moves from "under
    /// way" to the total. A reader in between may see neither for a moment.
    pub(crate) fn end_iteration(&self, since: Instant, timers: usize) {
        self.busy_since.store(0, Ordering::Release);
        let spent = since.elapsed();
        let nanos = u64::try_from(spent.as_nanos()).unwrap_or(u64::MAX);
        self.busy_nanos.fetch_add(nanos, Ordering::Release);
        self.timers.store(timers, Ordering::Relaxed);
    }

    /// Finished iterations' busy time plus the one under way, if any.
    fn busy_time(&self) -> Duration {
        let done = self.busy_nanos.load(Ordering::Acquire);
        let under_way = match self.busy_since.load(Ordering::Acquire) {
            0 => 0,
            start => {
                let now = self.clock.elapsed().as_nanos();
                u64::try_from(now.saturating_sub(u128::from(start - 1))).unwrap_or(u64::MAX)
            }
        };
        Duration::from_nanos(done.saturating_add(under_way))
    }

    /// Copies every counter; any thread.
    pub(crate) fn snapshot(&self) -> LoopStats {
        LoopStats {
            busy_time: self.busy_time(),
            iterations: self.iterations(),
            wakeups: self.wakeups.load(Ordering::Relaxed),
            pending_functors: self.pending.load(Ordering::Relaxed),
            functors_run: self.functors_run.load(Ordering::Relaxed),
            channels: self.channels.load(Ordering::Relaxed),
            timers: self.timers.load(Ordering::Relaxed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_time_counts_finished_and_running_iterations() {
        let c = Counters::new();
        assert_eq!(c.snapshot().busy_time, Duration::ZERO);
        let start = Instant::now();
        c.begin_iteration(start);
        std::thread::sleep(Duration::from_millis(20));
        assert!(c.snapshot().busy_time >= Duration::from_millis(20));
        c.end_iteration(start, 3);
        let s = c.snapshot();
        assert!(s.busy_time >= Duration::from_millis(20));
        assert_eq!((s.iterations, s.timers), (1, 3));
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(c.snapshot().busy_time, s.busy_time, "waiting is not busy");
    }

    #[test]
    fn busy_share_is_work_over_wall_time() {
        let a = LoopStats::default();
        let b = LoopStats {
            busy_time: Duration::from_millis(25),
            ..a
        };
        let share = b.busy_share_since(&a, Duration::from_millis(100));
        assert!((share - 0.25).abs() < 1e-9);
        assert_eq!(b.busy_share_since(&a, Duration::ZERO), 0.0);
    }
}
