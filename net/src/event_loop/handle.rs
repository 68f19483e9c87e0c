//! `EventLoopHandle`: what other threads hold of an [`EventLoop`].
//!
//! A handle is an `Arc` of the loop's shared part: its queue of closures,
//! its waker, its quit flag and its statistics. It is `Send + Sync` and
//! cheap to clone; every method may be called from any thread.

use std::cell::Cell;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{new_timer_id, EventLoop, LoopStats, Shared, LOOP_IN_THIS_THREAD};
use crate::timer_queue::TimerId;

/// A thread-safe reference to an [`EventLoop`].
///
/// Every method may be called from any thread.
#[derive(Clone)]
pub struct EventLoopHandle {
    pub(super) shared: Arc<Shared>,
}

impl EventLoopHandle {
    /// A number unique to this loop in the process.
    pub fn id(&self) -> u64 {
        self.shared.id
    }

    /// `true` on the thread that runs this loop.
    pub fn is_in_loop_thread(&self) -> bool {
        LOOP_IN_THIS_THREAD.with(Cell::get) == self.shared.id
    }

    /// Panics off the loop thread (muduo's `assertInLoopThread`).
    pub fn assert_in_loop_thread(&self) {
        assert!(
            self.is_in_loop_thread(),
            "EventLoop {} used from another thread",
            self.shared.id
        );
    }

    /// Queues `f` to run on the loop thread, waking the loop if needed;
    /// any thread (muduo's `queueInLoop`).
    ///
    /// Closures run in the order they were queued, after the events and
    /// timers of the loop's current iteration, and receive the loop. This
    /// never runs `f` before returning, even on the loop thread; see
    /// [`run_in_loop`](Self::run_in_loop) for that.
    pub fn queue_in_loop<F: FnOnce(&mut EventLoop) + Send + 'static>(&self, f: F) {
        let was_empty = {
            let mut pending = self.shared.pending.lock();
            pending.push(Box::new(f));
            let counters = &self.shared.counters;
            counters.pending.store(pending.len(), Ordering::Relaxed);
            pending.len() == 1
        };
        let from_outside = !self.is_in_loop_thread();
        if (was_empty && from_outside) || self.shared.calling_pending.load(Ordering::Acquire) {
            self.wakeup();
        }
    }

    /// muduo's `runInLoop`; any thread. On the loop's own thread `f` runs
    /// now, before this returns; from any other thread it is queued as by
    /// [`queue_in_loop`](Self::queue_in_loop).
    ///
    /// `f` gets no loop (a handle has none to give); code that needs the
    /// loop queues, or, holding it, calls [`EventLoop::run_in_loop`]. On
    /// the loop thread `f` runs inside the caller, so it must not take a
    /// lock the caller holds.
    pub fn run_in_loop<F: FnOnce() + Send + 'static>(&self, f: F) {
        if self.is_in_loop_thread() {
            f();
        } else {
            self.queue_in_loop(move |_| f());
        }
    }

    /// Makes the loop return from `run` after its current iteration.
    pub fn quit(&self) {
        self.shared.quit.store(true, Ordering::Release);
        if !self.is_in_loop_thread() {
            self.wakeup();
        }
    }

    /// What the loop has been doing: busy time (the iteration under way
    /// included), iterations, wake-ups, closures, channels and timers; any
    /// thread. Lock-free: a few atomic loads. See [`LoopStats`].
    pub fn stats(&self) -> LoopStats {
        self.shared.counters.snapshot()
    }

    /// Interrupts the loop's poll; any thread.
    pub fn wakeup(&self) {
        let counters = &self.shared.counters;
        counters.wakeups.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.shared.waker.wake() {
            log::error!("EventLoop {} wakeup: {}", self.shared.id, e);
        }
    }

    /// Closures queued and not yet run; any thread.
    pub fn queue_size(&self) -> usize {
        self.shared.counters.pending.load(Ordering::Relaxed)
    }

    /// Runs `cb` once at `when`, on the loop thread.
    pub fn run_at<F: FnMut(&mut EventLoop) + Send + 'static>(
        &self,
        when: Instant,
        cb: F,
    ) -> TimerId {
        let id = new_timer_id();
        self.queue_in_loop(move |lp| lp.timers.add(id, when, None, Box::new(cb)));
        id
    }

    /// Runs `cb` once after `delay`, on the loop thread.
    pub fn run_after<F: FnMut(&mut EventLoop) + Send + 'static>(
        &self,
        delay: Duration,
        cb: F,
    ) -> TimerId {
        self.run_at(Instant::now() + delay, cb)
    }

    /// Runs `cb` every `interval`, on the loop thread.
    pub fn run_every<F: FnMut(&mut EventLoop) + Send + 'static>(
        &self,
        interval: Duration,
        cb: F,
    ) -> TimerId {
        let id = new_timer_id();
        let first = Instant::now() + interval;
        self.queue_in_loop(move |lp| lp.timers.add(id, first, Some(interval), Box::new(cb)));
        id
    }

    /// Cancels a timer from any thread.
    pub fn cancel(&self, id: TimerId) {
        self.queue_in_loop(move |lp| lp.cancel(id));
    }
}

impl std::fmt::Debug for EventLoopHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EventLoopHandle({})", self.shared.id)
    }
}
