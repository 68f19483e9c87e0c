//! `TimerQueue`: the loop's timers, as muduo's `TimerQueue`.
//!
//! muduo keeps its timers in a `std::set<pair<Timestamp, Timer*>>` and arms
//! one `timerfd` with the earliest expiration. Here the ordered set is a
//! `BTreeMap` keyed by `(deadline, sequence)` and there is no timerfd: the
//! earliest deadline becomes the timeout of the next `poll` call
//! (`TimerQueue::next_timeout`), and the loop runs whatever has expired
//! after each poll.
//!
//! Thread affinity: a `TimerQueue` belongs to one `EventLoop` and is used
//! only on its thread. Other threads add or cancel timers through
//! `EventLoopHandle`, which queues the change into the loop.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::event_loop::EventLoop;

/// Identifies a timer for [`EventLoop::cancel`]; its sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimerId(pub(crate) u64);

/// What a timer runs. Called on the loop thread with the loop itself.
pub type TimerCallback = Box<dyn FnMut(&mut EventLoop)>;

struct Timer {
    callback: TimerCallback,
    /// `Some` for a repeating timer (`run_every`).
    interval: Option<Duration>,
}

/// The ordered set of pending timers of one loop.
#[derive(Default)]
pub(crate) struct TimerQueue {
    /// Pending timers in expiration order; the sequence breaks ties.
    timers: BTreeMap<(Instant, u64), Timer>,
    /// Deadline of every pending timer, so `cancel` can find it by id.
    deadlines: HashMap<u64, Instant>,
    /// Timers cancelled while their own expiry was running; a repeating one
    /// among them must not be re-armed (muduo's `cancelingTimers_`).
    cancelled_while_running: HashSet<u64>,
    running_expired: bool,
}

/// Expired timers taken out of the queue, to be run by the loop.
pub(crate) struct Expired(Vec<(u64, Timer)>);

impl TimerQueue {
    /// Adds a timer that fires at `when`, then every `interval` if given.
    pub(crate) fn add(
        &mut self,
        id: TimerId,
        when: Instant,
        interval: Option<Duration>,
        callback: TimerCallback,
    ) {
        self.timers
            .insert((when, id.0), Timer { callback, interval });
        self.deadlines.insert(id.0, when);
    }

    /// Cancels a timer. Cancelling one that has fired (and does not repeat)
    /// or was already cancelled does nothing.
    pub(crate) fn cancel(&mut self, id: TimerId) {
        if let Some(when) = self.deadlines.remove(&id.0) {
            self.timers.remove(&(when, id.0));
        } else if self.running_expired {
            self.cancelled_while_running.insert(id.0);
        }
    }

    /// How long `poll` may sleep: until the earliest deadline, or forever
    /// (`None`) when there is no timer.
    pub(crate) fn next_timeout(&self, now: Instant) -> Option<Duration> {
        self.timers
            .keys()
            .next()
            .map(|(when, _)| when.saturating_duration_since(now))
    }

    /// Number of pending timers.
    pub(crate) fn len(&self) -> usize {
        self.timers.len()
    }

    /// Removes and returns every timer whose deadline is at or before `now`.
    pub(crate) fn take_expired(&mut self, now: Instant) -> Expired {
        let mut expired = Vec::new();
        while let Some(entry) = self.timers.first_entry() {
            let (when, id) = *entry.key();
            if when > now {
                break;
            }
            expired.push((id, entry.remove()));
            self.deadlines.remove(&id);
        }
        self.running_expired = !expired.is_empty();
        Expired(expired)
    }

    /// Re-arms the repeating timers among `done` (unless cancelled while they
    /// ran), relative to `now` as muduo's `restart` does.
    fn restart(&mut self, done: Vec<(u64, Timer)>, now: Instant) {
        for (id, timer) in done {
            if let Some(interval) = timer.interval {
                if !self.cancelled_while_running.contains(&id) {
                    self.add(TimerId(id), now + interval, Some(interval), timer.callback);
                }
            }
        }
        self.cancelled_while_running.clear();
        self.running_expired = false;
    }
}

impl Expired {
    /// Runs the expired timers on `lp`, then re-arms the repeating ones.
    pub(crate) fn run(self, lp: &mut EventLoop) {
        if self.0.is_empty() {
            return;
        }
        let mut done = self.0;
        for (_, timer) in done.iter_mut() {
            (timer.callback)(lp);
        }
        let now = Instant::now();
        lp.timer_queue_mut().restart(done, now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noop() -> TimerCallback {
        Box::new(|_| {})
    }

    #[test]
    fn earliest_deadline_sets_the_timeout() {
        let now = Instant::now();
        let mut q = TimerQueue::default();
        assert_eq!(q.next_timeout(now), None);
        q.add(TimerId(1), now + Duration::from_millis(50), None, noop());
        q.add(TimerId(2), now + Duration::from_millis(10), None, noop());
        assert_eq!(q.next_timeout(now), Some(Duration::from_millis(10)));
        // A deadline in the past means "do not sleep".
        assert_eq!(
            q.next_timeout(now + Duration::from_secs(1)),
            Some(Duration::ZERO)
        );
    }

    #[test]
    fn take_expired_in_order_and_cancel() {
        let now = Instant::now();
        let mut q = TimerQueue::default();
        for (id, ms) in [(1, 30), (2, 10), (3, 20), (4, 100)] {
            q.add(TimerId(id), now + Duration::from_millis(ms), None, noop());
        }
        q.cancel(TimerId(3));
        q.cancel(TimerId(3)); // twice is harmless
        let expired = q.take_expired(now + Duration::from_millis(50));
        let ids: Vec<u64> = expired.0.iter().map(|(id, _)| *id).collect();
        assert_eq!(ids, vec![2, 1]);
        assert_eq!(q.len(), 1);
        q.restart(expired.0, now);
        assert_eq!(q.len(), 1, "one-shot timers are not re-armed");
    }

    #[test]
    fn repeating_timer_is_rearmed_unless_cancelled_while_running() {
        let now = Instant::now();
        let mut q = TimerQueue::default();
        let every = Some(Duration::from_millis(10));
        q.add(TimerId(1), now, every, noop());
        q.add(TimerId(2), now, every, noop());
        let expired = q.take_expired(now);
        assert_eq!(q.len(), 0);
        q.cancel(TimerId(2)); // as if timer 1's callback cancelled timer 2
        q.restart(expired.0, now);
        assert_eq!(q.len(), 1);
        assert_eq!(q.next_timeout(now), Some(Duration::from_millis(10)));
    }
}
