//! The quota on messages waiting per recipient
//! (`--max-pending-per-recipient`): a one-to-one message to a user who has
//! that many undelivered one-to-one messages already is refused with
//! errno 13 (28 with its cid, or 27).
//!
//! "Waiting" is what the store says a user has not been handed: over all
//! their one-to-one conversations, `last_seq - max(delivered_seq,
//! joined_seq)` ([`Count::PendingDirect`]). Group posts are not limited by
//! it: a group post is one stored entry for all members, however many of
//! them are offline.
//!
//! # Cheap on the hot path
//!
//! Counting in the store for every message would put a query in front of
//! each append. Instead each log writer keeps an *estimate* per recipient,
//! in its own thread ([`Estimates`]: no lock, no sharing):
//!
//! ```text
//!  message to `to` ─► online here? ──yes──► admitted, not counted
//!                        │ no
//!                        ▼
//!                 estimate known? ──no──► read the true count (one query)
//!                        │ yes
//!                        ▼
//!         estimate ≥ re-check point? ──yes──► re-read the true count
//!                        │ no                   (at the limit: refused,
//!                        ▼                       re-read at most once a second)
//!                 estimate + 1, admitted
//! ```
//!
//! The re-check point lies halfway between the count read and the limit,
//! so a recipient far below it costs a query now and then (about
//! log2(limit) queries on the way up), and one at the limit one query a
//! second however many messages are refused. Each writer counts only the
//! messages it stores; the others' (with `--log-writers` above 1) show up
//! at the next re-read, so the halving keeps their share small: a
//! recipient can go over by at most what the other writers stored since
//! this one's last read. With one writer (the SQLite default) the check
//! is exact, but for deliveries (which only lower the true count).
//!
//! The estimates are bounded: at [`MAX_ESTIMATES`] recipients the map is
//! emptied, and each recipient's count is read again when next needed.
//! A store error lets the message through (the quota protects the
//! server's storage; it is no reason to lose messages) and is logged.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::protocol::errno;
use crate::service::Service;
use crate::storage::{Count, Store, StoreError};

/// The most recipients one writer keeps an estimate for.
pub const MAX_ESTIMATES: usize = 16_384;

/// How often the true count of a recipient at the limit is read again.
const REREAD: Duration = Duration::from_secs(1);

thread_local! {
    /// This log writer's estimates (each writer is its own thread).
    static ESTIMATES: RefCell<Estimates> = RefCell::new(Estimates::default());
}

/// Whether a one-to-one message from `sender` to `to` may be stored:
/// `Err` with errno 13 and the errmsg when `to` has
/// `--max-pending-per-recipient` messages waiting. A log writer's thread
/// (it may read the store).
///
/// # Errors
/// The refusal, as the writer answers it.
pub(super) fn admit(
    svc: &Service,
    store: &dyn Store,
    sender: i64,
    to: i64,
) -> Result<(), (i64, String)> {
    let max = svc.limits().max_pending_per_recipient();
    if max == 0 || to == sender || svc.online.contains(to) {
        return Ok(());
    }
    let read = || store.count(Count::PendingDirect(to));
    let admitted = ESTIMATES.with(|e| e.borrow_mut().admit(to, max, Instant::now(), read));
    if admitted {
        return Ok(());
    }
    Err((
        errno::QUOTA,
        format!("user {to} has {max} messages waiting, the most allowed; send again once they have read some"),
    ))
}

/// One writer's estimates of its recipients' waiting messages. See the
/// [module docs](self).
#[derive(Debug, Default)]
pub struct Estimates {
    map: HashMap<i64, Estimate>,
}

#[derive(Debug, Clone, Copy)]
struct Estimate {
    /// The count read, plus the messages admitted since.
    count: u64,
    /// At this estimate the true count is read again.
    recheck_at: u64,
    /// When the true count was read.
    read_at: Instant,
}

impl Estimate {
    fn read(n: u64, max: u64, now: Instant) -> Estimate {
        let recheck_at = if n >= max {
            n
        } else {
            n + (max - n).div_ceil(2)
        };
        Estimate {
            count: n,
            recheck_at,
            read_at: now,
        }
    }
}

impl Estimates {
    /// Whether one more message to `uid` stays within `max`, reading the
    /// true count with `read` when the estimate is missing or at its
    /// re-check point; counts the message when it is admitted. The
    /// writer's thread.
    pub fn admit(
        &mut self,
        uid: i64,
        max: u64,
        now: Instant,
        read: impl FnOnce() -> Result<u64, StoreError>,
    ) -> bool {
        let mut read = Some(read);
        let mut reread = || match read.take().map(|f| f()) {
            Some(Ok(n)) => Some(n),
            Some(Err(e)) => {
                log::warn!("log: counting the messages waiting for {uid}: {e}");
                None
            }
            None => None,
        };
        if !self.map.contains_key(&uid) {
            if self.map.len() >= MAX_ESTIMATES {
                self.map.clear();
            }
            let Some(n) = reread() else {
                return true;
            };
            self.map.insert(uid, Estimate::read(n, max, now));
        }
        let Some(e) = self.map.get_mut(&uid) else {
            return true;
        };
        if e.count >= e.recheck_at {
            let recent = now.saturating_duration_since(e.read_at) < REREAD;
            if e.count >= max && recent {
                return false;
            }
            match reread() {
                // Read just now, at insertion: the estimate stands.
                None if e.read_at == now => {}
                None => return true,
                Some(n) => *e = Estimate::read(n, max, now),
            }
            if e.count >= max {
                return false;
            }
        }
        e.count += 1;
        true
    }

    /// Recipients with an estimate.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    /// A store's count that the test moves, and how often it was read.
    struct Truth {
        n: Cell<u64>,
        reads: Cell<u32>,
    }

    impl Truth {
        fn new(n: u64) -> Truth {
            Truth {
                n: Cell::new(n),
                reads: Cell::new(0),
            }
        }
        fn read(&self) -> impl FnOnce() -> Result<u64, StoreError> + '_ {
            move || {
                self.reads.set(self.reads.get() + 1);
                Ok(self.n.get())
            }
        }
    }

    #[test]
    fn admits_up_to_the_limit_with_few_reads_then_refuses() {
        let truth = Truth::new(0);
        let mut e = Estimates::default();
        let now = Instant::now();
        let max = 1000;
        for i in 0..max {
            assert!(e.admit(7, max, now, truth.read()), "message {i}");
            truth.n.set(truth.n.get() + 1);
        }
        assert!(truth.reads.get() <= 12, "{} reads", truth.reads.get());
        let reads = truth.reads.get();
        for _ in 0..100 {
            assert!(!e.admit(7, max, now, truth.read()));
        }
        assert!(
            truth.reads.get() <= reads + 1,
            "at the limit: one read a second"
        );
    }

    #[test]
    fn a_recipient_who_read_their_messages_is_admitted_again() {
        let truth = Truth::new(5);
        let mut e = Estimates::default();
        let t0 = Instant::now();
        assert!(!e.admit(7, 5, t0, truth.read()));
        truth.n.set(0); // they logged in and were handed everything
        assert!(
            !e.admit(7, 5, t0, truth.read()),
            "not re-read within a second"
        );
        assert!(e.admit(7, 5, t0 + REREAD, truth.read()));
    }

    #[test]
    fn other_writers_messages_are_seen_at_the_next_read() {
        let truth = Truth::new(0);
        let mut e = Estimates::default();
        let now = Instant::now();
        // Another writer stores 40 meanwhile; this one's estimate says 1.
        assert!(e.admit(7, 100, now, truth.read()));
        truth.n.set(41);
        let mut admitted = 0;
        while e.admit(7, 100, now, truth.read()) {
            admitted += 1;
            truth.n.set(truth.n.get() + 1);
            assert!(admitted < 100, "never refused");
        }
        // Over by at most what the other writer stored since the read.
        assert!(truth.n.get() <= 100 + 40, "went over: {}", truth.n.get());
        assert!(truth.n.get() >= 100);
    }

    #[test]
    fn the_map_is_bounded() {
        let truth = Truth::new(0);
        let mut e = Estimates::default();
        let now = Instant::now();
        for uid in 0..(MAX_ESTIMATES as i64 + 10) {
            assert!(e.admit(uid, 10, now, truth.read()));
        }
        assert!(e.len() <= MAX_ESTIMATES);
    }

    #[test]
    fn a_failing_count_lets_the_message_through() {
        let mut e = Estimates::default();
        let failing = || Err(StoreError::BadUrl("test".into()));
        assert!(e.admit(7, 1, Instant::now(), failing));
    }
}
