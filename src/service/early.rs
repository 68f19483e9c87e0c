//! [`Early`]: messages that reached a connection past a gap at its
//! cursor, held until the gap closes.
//!
//! In cluster mode two nodes post into one conversation, and a message
//! committed on the other node is usually still on its way through Redis
//! when the next one, committed here, is pushed: the push finds a gap
//! (seq 12 arrives, the cursor is at 10, 11 is in flight). Filling it from
//! the database at once costs two queries for a message that arrives a
//! few milliseconds later by itself. So the push holds 12 here instead,
//! and [`super::delivery`] asks for a fill only after
//! [`GAP_GRACE`](super::delivery::GAP_GRACE), if the gap is still open
//! then; when 11 arrives first, it is sent, then 12 from here, in order.
//!
//! Held messages are not delivered: they count nowhere, and a connection
//! that closes with some held simply loses the copies (the log has them;
//! the stored cursor is behind them). Bounded per connection
//! ([`MAX_EARLY`], [`MAX_EARLY_BYTES`]): past the bounds a gap is filled at
//! once, as without holding.
//!
//! [`GAPS`] counts what happens to gaps, for `/metrics` (the server's
//! collector reads it; the service imports nothing of the server's).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::model::Conv;
use crate::runtime::WordHash;

/// The most messages one connection holds past gaps.
pub const MAX_EARLY: usize = 256;

/// The most bytes of held messages one connection keeps.
pub const MAX_EARLY_BYTES: usize = 1 << 20;

/// One message's bytes as every recipient is sent them: built once, read
/// by each recipient's connection (which copies them into its output),
/// freed with the last holder.
pub type SharedBytes = Arc<Vec<u8>>;

/// Gaps at connections' cursors, over the process's life: the
/// `chat_gap_*` counters of `/metrics`.
#[derive(Debug, Default)]
pub struct GapCounts {
    /// Messages held past a gap.
    pub held: AtomicU64,
    /// Held gaps that closed by themselves within the grace (no query).
    pub closed: AtomicU64,
    /// Gaps filled from the log: still open after the grace, or met with
    /// nothing to hold (a full hold, a message only the log has).
    pub filled: AtomicU64,
}

impl GapCounts {
    /// Adds one to `counter` (one of this struct's).
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// See [`GapCounts`].
pub static GAPS: GapCounts = GapCounts {
    held: AtomicU64::new(0),
    closed: AtomicU64::new(0),
    filled: AtomicU64::new(0),
};

/// One held message: what [`super::delivery`] would have sent (and how it
/// hands any message on).
#[derive(Debug)]
pub struct Held {
    /// The bytes for this connection; `None` for its own message.
    pub bytes: Option<SharedBytes>,
    /// This connection sent it: only its cursor moves.
    pub own: bool,
    /// When the sender's connection read it ([`super::latency`]).
    pub received: Option<Instant>,
}

/// See the [module docs](self).
#[derive(Debug, Default)]
pub struct Early {
    by_conv: HashMap<Conv, BTreeMap<i64, Held>, WordHash>,
    count: usize,
    bytes: usize,
}

/// What [`Early::hold`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Holding {
    /// Held; the first for its conversation (a fill check is due).
    First,
    /// Held behind others of its conversation (a check is due already).
    More,
    /// Full: not held; the caller fills the gap at once.
    Full,
}

impl Early {
    /// Holds message `seq` of `conv` (past the cursor by more than one).
    pub fn hold(&mut self, conv: Conv, seq: i64, held: Held) -> Holding {
        let size = held.bytes.as_ref().map_or(0, |b| b.len());
        if self.count >= MAX_EARLY || self.bytes + size > MAX_EARLY_BYTES {
            return Holding::Full;
        }
        let of_conv = self.by_conv.entry(conv).or_default();
        let first = of_conv.is_empty();
        if let Some(old) = of_conv.insert(seq, held) {
            // The same message twice (a retry through Redis): keep one.
            self.bytes -= old.bytes.as_ref().map_or(0, |b| b.len());
            self.count -= 1;
        }
        self.count += 1;
        self.bytes += size;
        if first {
            Holding::First
        } else {
            Holding::More
        }
    }

    /// Takes the held message right after `cursor` in `conv`, forgetting
    /// any at or below it (handed meanwhile, by a fill).
    pub fn next(&mut self, conv: Conv, cursor: i64) -> Option<Held> {
        if self.count == 0 {
            return None;
        }
        let of_conv = self.by_conv.get_mut(&conv)?;
        let mut found = None;
        while let Some(entry) = of_conv.first_entry() {
            let seq = *entry.key();
            if seq > cursor + 1 {
                break;
            }
            let held = entry.remove();
            self.count -= 1;
            self.bytes -= held.bytes.as_ref().map_or(0, |b| b.len());
            if seq == cursor + 1 {
                found = Some(held);
                break;
            }
        }
        if of_conv.is_empty() {
            self.by_conv.remove(&conv);
        }
        found
    }

    /// The highest seq held in `conv`: how far a fill must read.
    pub fn highest(&self, conv: Conv) -> Option<i64> {
        self.by_conv
            .get(&conv)
            .and_then(|m| m.last_key_value().map(|(s, _)| *s))
    }

    /// Whether `seq` of `conv` is held as this connection's own message.
    pub fn is_own(&self, conv: Conv, seq: i64) -> bool {
        self.by_conv
            .get(&conv)
            .and_then(|m| m.get(&seq))
            .is_some_and(|h| h.own)
    }

    /// Messages held, over every conversation.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Nothing held.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(b: &str) -> Held {
        Held {
            bytes: Some(Arc::new(b.as_bytes().to_vec())),
            own: false,
            received: None,
        }
    }

    #[test]
    fn held_messages_come_out_in_order_once_the_gap_closes() {
        let conv = Conv::direct(1, 2).unwrap();
        let mut e = Early::default();
        assert_eq!(e.hold(conv, 13, msg("13")), Holding::First);
        assert_eq!(e.hold(conv, 12, msg("12")), Holding::More);
        assert!(e.next(conv, 10).is_none(), "11 is still missing");
        assert_eq!(e.highest(conv), Some(13));
        assert_eq!(e.next(conv, 11).unwrap().bytes.unwrap()[..], b"12"[..]);
        assert_eq!(e.next(conv, 12).unwrap().bytes.unwrap()[..], b"13"[..]);
        assert!(e.next(conv, 13).is_none());
        assert!(e.is_empty());
        assert_eq!(e.highest(conv), None);
    }

    #[test]
    fn a_fill_past_held_ones_forgets_them() {
        let conv = Conv::direct(1, 2).unwrap();
        let mut e = Early::default();
        e.hold(conv, 5, msg("5"));
        e.hold(conv, 6, msg("6"));
        e.hold(conv, 9, msg("9"));
        // A fill handed up to 6: 5 and 6 go, 9 waits for 7 and 8.
        assert!(e.next(conv, 6).is_none());
        assert_eq!(e.len(), 1);
        assert_eq!(e.highest(conv), Some(9));
    }

    #[test]
    fn bounded_by_count_and_bytes() {
        let conv = Conv::direct(1, 2).unwrap();
        let mut e = Early::default();
        for seq in 0..MAX_EARLY as i64 {
            assert_ne!(e.hold(conv, seq + 10, msg("x")), Holding::Full);
        }
        assert_eq!(e.hold(conv, 1_000, msg("x")), Holding::Full);
        let mut e = Early::default();
        let big = Held {
            bytes: Some(Arc::new(vec![0; MAX_EARLY_BYTES])),
            own: false,
            received: None,
        };
        assert_eq!(e.hold(conv, 10, big), Holding::First);
        assert_eq!(e.hold(conv, 11, msg("x")), Holding::Full);
        // The same message twice counts once.
        let mut e = Early::default();
        e.hold(conv, 10, msg("x"));
        e.hold(conv, 10, msg("x"));
        assert_eq!(e.len(), 1);
    }
}
