//! [`Held`]: the requests a session keeps while its login is under way,
//! and [`HoldBudget`], the bytes every session together may keep.
//!
//! A held request is charged its [`footprint`], an estimate of the memory
//! its parsed `Map` occupies (for text, about its JSON length; for many
//! small values, more). A request is held only if its session stays within
//! the per-session bytes and the count, and the process within the total;
//! the charge is given back when the requests are taken for replay,
//! cleared, or dropped with the session.

use std::collections::VecDeque;
use std::mem::size_of;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde_json::{Map, Value};

/// Requests held during one login, at most, whatever their size; more are
/// refused with `BAD_REQUEST`.
pub const MAX_HELD: usize = 256;

/// The limits on held requests and the bytes held across the process now.
/// The service owns one and every session's [`Held`] charges it. Its
/// methods are safe from any thread (atomics).
#[derive(Debug)]
pub struct HoldBudget {
    /// Bytes one session may hold (`--login-hold-bytes`).
    per_session: AtomicUsize,
    /// Bytes all sessions together may hold (`--login-hold-total`).
    total_limit: AtomicUsize,
    /// Bytes held now, across all sessions.
    total: AtomicUsize,
}

impl HoldBudget {
    /// A budget of `per_session` bytes per session and `total` in all;
    /// any thread.
    pub fn new(per_session: usize, total: usize) -> HoldBudget {
        HoldBudget {
            per_session: AtomicUsize::new(per_session),
            total_limit: AtomicUsize::new(total),
            total: AtomicUsize::new(0),
        }
    }

    /// Changes both limits; requests held already stay. Any thread (set
    /// once, before the server accepts connections).
    pub fn set_limits(&self, per_session: usize, total: usize) {
        self.per_session.store(per_session, Ordering::Relaxed);
        self.total_limit.store(total, Ordering::Relaxed);
    }

    /// Bytes held now by every session together; any thread.
    pub fn held_bytes(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    /// Takes `bytes` from the total if it stays within its limit; any thread.
    fn reserve(&self, bytes: usize) -> bool {
        let limit = self.total_limit.load(Ordering::Relaxed);
        // A compare-and-swap loop: the total never exceeds the limit, even
        // for a moment, whatever the other threads do.
        self.total
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(bytes).filter(|&sum| sum <= limit)
            })
            .is_ok()
    }

    fn release(&self, bytes: usize) {
        self.total.fetch_sub(bytes, Ordering::AcqRel);
    }
}

impl Default for HoldBudget {
    /// 64 KiB per session, 16 MiB in all: the defaults of the flags.
    fn default() -> HoldBudget {
        HoldBudget::new(64 * 1024, 16 * 1024 * 1024)
    }
}

/// A held request and the bytes it is charged.
type Entry = (Map<String, Value>, usize);

/// The requests one session holds while its login is under way, oldest
/// first, each with the bytes it is charged. Lives in the session's state,
/// so every method runs under the session's mutex.
#[derive(Debug, Default)]
pub struct Held {
    queue: VecDeque<Entry>,
    /// The sum of the charges in `queue`.
    bytes: usize,
    /// The budget the charges were taken from (set by the first push).
    budget: Option<Arc<HoldBudget>>,
}

impl Held {
    /// Holds `obj`, charged its [`footprint`] against `budget`, or gives it
    /// back when it would take this session over the count or its bytes,
    /// or the process over its total.
    ///
    /// Any thread, under the session's lock (the peer's own thread, from
    /// `Service::handle`).
    ///
    /// # Errors
    /// The request itself, not held, for the caller to refuse.
    pub fn push(
        &mut self,
        obj: Map<String, Value>,
        budget: &Arc<HoldBudget>,
    ) -> Result<(), Map<String, Value>> {
        let bytes = footprint(&obj);
        let per_session = budget.per_session.load(Ordering::Relaxed);
        let fits = self.queue.len() < MAX_HELD
            && self.bytes.saturating_add(bytes) <= per_session
            && budget.reserve(bytes);
        if !fits {
            return Err(obj);
        }
        self.budget.get_or_insert_with(|| budget.clone());
        self.bytes += bytes;
        self.queue.push_back((obj, bytes));
        Ok(())
    }

    /// How many requests are held; any thread, under the session's lock.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// `true` when nothing is held; any thread, under the session's lock.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// The bytes this session's held requests are charged; any thread,
    /// under the session's lock.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Drops every held request and gives their bytes back; any thread,
    /// under the session's lock.
    pub fn clear(&mut self) {
        self.queue.clear();
        self.give_back();
    }

    fn give_back(&mut self) {
        if let Some(budget) = &self.budget {
            budget.release(self.bytes);
        }
        self.bytes = 0;
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.give_back();
    }
}

impl IntoIterator for Held {
    type Item = Map<String, Value>;
    type IntoIter =
        std::iter::Map<std::collections::vec_deque::IntoIter<Entry>, fn(Entry) -> Self::Item>;

    /// The held requests in order, for replay; their bytes are given back
    /// at once (a replayed request that is held again is charged again).
    fn into_iter(mut self) -> Self::IntoIter {
        let queue = std::mem::take(&mut self.queue);
        self.give_back();
        let first: fn(Entry) -> Map<String, Value> = |(obj, _)| obj;
        queue.into_iter().map(first)
    }
}

/// An estimate of the heap bytes a parsed request occupies: every value's
/// slot, every key and string's bytes, and each map entry's key slot. The
/// request's nesting is bounded by the decoder (127), so the recursion is
/// too. Cheap: one walk, no allocation. Any thread.
pub fn footprint(obj: &Map<String, Value>) -> usize {
    size_of::<Map<String, Value>>() + map_footprint(obj)
}

fn map_footprint(map: &Map<String, Value>) -> usize {
    map.iter()
        .map(|(k, v)| size_of::<String>() + k.len() + size_of::<Value>() + value_footprint(v))
        .sum()
}

/// The heap bytes below `v`, not counting `v`'s own slot.
fn value_footprint(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(_) | Value::Number(_) => 0,
        Value::String(s) => s.len(),
        Value::Array(items) => items
            .iter()
            .map(|x| size_of::<Value>() + value_footprint(x))
            .sum(),
        Value::Object(m) => map_footprint(m),
    }
}
