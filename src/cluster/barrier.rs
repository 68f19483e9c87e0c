//! `Barriers`: a change of a group's members on this node is acked only
//! once every other node has forgotten the group; a claim (a login) is
//! answered only once every node has forgotten the user's cached route.
//!
//! ```text
//!  node A (join)                 Redis                       node B
//!  register token ──► PUBLISH groups "gid A token" ──► subscriber: forget gid,
//!  reply: n subscribers  ◄──┘                              publisher: PUBLISH node:A ⟨…, SEEN token, …⟩
//!  expect n − 1 confirmations ◄───────────────────────────────┘
//!  all seen (or the deadline) ──► the ack
//! ```
//!
//! A confirmation can arrive before the PUBLISH reply that says how many to
//! expect (B is quick, A's publisher busy), so a barrier counts what it has
//! seen from its registration on and is released when the count reaches
//! the expectation, whichever comes second. A node that never confirms (it
//! hangs, or died after it subscribed) costs the ack the deadline, not
//! more. Every barrier's `done` runs exactly once: released, expired, or
//! dropped with the cluster.
//!
//! A claim's barrier works the same way over `{prefix}:presence`: the
//! claim script publishes `"{uid} {node} {token}"` and answers how many
//! nodes are subscribed; each confirms after forgetting the route
//! (`subscriber.rs`), this node's own subscriber directly with
//! [`Barriers::seen`], so a claim expects all `n`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use parking_lot::Mutex;

/// The uid of a confirmation item on a node's channel: no user has it.
pub(crate) const SEEN_UID: i64 = i64::MIN;

/// A callback run exactly once: by [`Done::run`], or when dropped.
pub(crate) struct Done(Option<Box<dyn FnOnce() + Send>>);

impl Done {
    /// A callback that runs `f`.
    pub(crate) fn new(f: impl FnOnce() + Send + 'static) -> Done {
        Done(Some(Box::new(f)))
    }

    /// Runs it now.
    pub(crate) fn run(mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

impl Drop for Done {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

struct Waiting {
    seen: u64,
    expected: Option<u64>,
    done: Done,
    deadline: Instant,
}

/// The barriers of one node; any thread.
#[derive(Default)]
pub(crate) struct Barriers {
    waiting: Mutex<HashMap<u64, Waiting>>,
    next: AtomicU64,
}

impl Barriers {
    /// A new barrier that runs `done` when released, or at `deadline`.
    pub(crate) fn register(&self, done: Done, deadline: Instant) -> u64 {
        let token = self.next.fetch_add(1, Ordering::Relaxed);
        let w = Waiting {
            seen: 0,
            expected: None,
            done,
            deadline,
        };
        self.waiting.lock().insert(token, w);
        token
    }

    /// `token` waits for `n` confirmations in all (those seen count).
    pub(crate) fn expect(&self, token: u64, n: u64) {
        let mut map = self.waiting.lock();
        let ready = map.get_mut(&token).is_some_and(|w| {
            w.expected = Some(n);
            w.seen >= n
        });
        let done = ready.then(|| map.remove(&token)).flatten();
        drop(map);
        if let Some(w) = done {
            w.done.run();
        }
    }

    /// One confirmation of `token` arrived (an unknown token: late, ignored).
    pub(crate) fn seen(&self, token: u64) {
        let mut map = self.waiting.lock();
        let ready = map.get_mut(&token).is_some_and(|w| {
            w.seen += 1;
            w.expected.is_some_and(|n| w.seen >= n)
        });
        let done = ready.then(|| map.remove(&token)).flatten();
        drop(map);
        if let Some(w) = done {
            w.done.run();
        }
    }

    /// Releases `token` now (its notice could not be sent).
    pub(crate) fn release(&self, token: u64) {
        let w = self.waiting.lock().remove(&token);
        if let Some(w) = w {
            w.done.run();
        }
    }

    /// Releases every barrier past its deadline; the next deadline.
    pub(crate) fn expire(&self, now: Instant) -> Option<Instant> {
        let mut map = self.waiting.lock();
        let late: Vec<u64> = (map.iter())
            .filter(|(_, w)| w.deadline <= now)
            .map(|(&t, _)| t)
            .collect();
        let done: Vec<Waiting> = late.iter().filter_map(|t| map.remove(t)).collect();
        let next = map.values().map(|w| w.deadline).min();
        drop(map);
        if !done.is_empty() {
            log::warn!(
                "cluster: {} group change(s) or claim(s) answered without every node's confirmation",
                done.len()
            );
        }
        done.into_iter().for_each(|w| w.done.run());
        next
    }
}

#[cfg(test)]
mod tests {
    use super::{Barriers, Done};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    fn counter() -> (Arc<AtomicUsize>, impl Fn() -> Done) {
        let n = Arc::new(AtomicUsize::new(0));
        let m = n.clone();
        (n, move || {
            let m = m.clone();
            Done::new(move || {
                m.fetch_add(1, Ordering::SeqCst);
            })
        })
    }

    #[test]
    fn released_when_seen_and_expected_in_either_order() {
        let b = Barriers::default();
        let (n, done) = counter();
        let later = Instant::now() + Duration::from_secs(60);
        let t = b.register(done(), later);
        b.seen(t);
        assert_eq!(n.load(Ordering::SeqCst), 0, "not yet expected");
        b.expect(t, 2);
        b.seen(t);
        assert_eq!(n.load(Ordering::SeqCst), 1);
        let t = b.register(done(), later);
        b.expect(t, 0);
        assert_eq!(n.load(Ordering::SeqCst), 2, "nobody to wait for");
        let t = b.register(done(), later);
        b.release(t);
        b.seen(t);
        assert_eq!(n.load(Ordering::SeqCst), 3, "once only");
        let t = b.register(done(), Instant::now());
        assert_eq!(b.expire(Instant::now()), None);
        b.expect(t, 1);
        assert_eq!(n.load(Ordering::SeqCst), 4, "expired");
        let _ = b.register(done(), later);
        drop(b);
        assert_eq!(n.load(Ordering::SeqCst), 5, "dropped");
    }
}
