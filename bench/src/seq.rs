//! Sequence accounting for one stream of messages: lost, duplicated, reordered.
//!
//! Every message the bench sends carries a sequence number that counts from 0
//! per *stream*: one sender to one recipient, or one sender to one group. The
//! recipient keeps a [`SeqTracker`] per stream and shows it every sequence
//! number that arrives. Definitions, per stream:
//!
//! - **duplicated**: a sequence number that had already arrived.
//! - **reordered**: a message that arrives after one with a higher sequence
//!   number (so `0 2 1 3` has one reordered message, `1`, and `0 3 1 2` two).
//! - **lost**: sent but never arrived, `sent - distinct()` once the run has
//!   drained; only the sender knows `sent`, so the sum happens in
//!   [`crate::ledger`].
//!
//! Memory stays flat when messages arrive in order: everything below `floor`
//! has arrived, and what arrived ahead of a gap is remembered as runs of
//! consecutive numbers, so a gap that never fills (a message lost, or one
//! the server refused) costs one run however many messages follow it.

use std::collections::BTreeMap;

/// What one arrival was.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arrival {
    /// First arrival of this number, after every lower one it has seen.
    InOrder,
    /// First arrival, but a higher number arrived before it.
    Reordered,
    /// This number had already arrived.
    Duplicate,
}

/// The receiving side of one stream.
#[derive(Clone, Debug, Default)]
pub struct SeqTracker {
    /// Every sequence number below this has arrived.
    floor: u64,
    /// Numbers above `floor` that have arrived (those past a gap), as
    /// disjoint, non-adjacent runs `start → end` (`end` excluded).
    ahead: BTreeMap<u64, u64>,
    /// How many numbers `ahead` holds.
    ahead_count: u64,
    /// Highest number seen plus one; 0 before the first arrival.
    high: u64,
    duplicated: u64,
    reordered: u64,
}

impl SeqTracker {
    /// A tracker that has seen nothing.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the arrival of `seq` and says what it was.
    pub fn record(&mut self, seq: u64) -> Arrival {
        if self.has(seq) {
            self.duplicated += 1;
            return Arrival::Duplicate;
        }
        if seq == self.floor {
            self.floor += 1;
            // The run that starts right above it, if any, joins the floor.
            if let Some(end) = self.ahead.remove(&self.floor) {
                self.ahead_count -= end - self.floor;
                self.floor = end;
            }
        } else {
            self.add_ahead(seq);
        }
        let next = seq.saturating_add(1);
        if next < self.high {
            self.reordered += 1;
            Arrival::Reordered
        } else {
            self.high = next;
            Arrival::InOrder
        }
    }

    /// Puts `seq` (above `floor`, not there yet) into the runs, joining
    /// the run that ends at it and the one that starts after it.
    fn add_ahead(&mut self, seq: u64) {
        let next = seq.saturating_add(1);
        let end = match self.ahead.remove(&next) {
            Some(end) => end,
            None => next,
        };
        let before = self.ahead.range(..seq).next_back().map(|(&s, &e)| (s, e));
        match before {
            Some((start, e)) if e == seq => {
                self.ahead.insert(start, end);
            }
            _ => {
                self.ahead.insert(seq, end);
            }
        }
        self.ahead_count += 1;
    }

    /// Whether `seq` arrived.
    pub fn has(&self, seq: u64) -> bool {
        seq < self.floor
            || (self.ahead.range(..=seq).next_back()).is_some_and(|(_, &end)| seq < end)
    }

    /// Number of different sequence numbers that arrived.
    pub fn distinct(&self) -> u64 {
        self.floor + self.ahead_count
    }

    /// Arrivals of a number that had already arrived.
    pub fn duplicated(&self) -> u64 {
        self.duplicated
    }

    /// Arrivals after a higher number.
    pub fn reordered(&self) -> u64 {
        self.reordered
    }

    /// Highest sequence number seen plus one (0 when nothing arrived).
    pub fn high(&self) -> u64 {
        self.high
    }

    /// Messages missing when `sent` were sent: `sent - distinct()`, or 0.
    pub fn lost(&self, sent: u64) -> u64 {
        sent.saturating_sub(self.distinct())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(seqs: &[u64]) -> SeqTracker {
        let mut t = SeqTracker::new();
        for &s in seqs {
            t.record(s);
        }
        t
    }

    #[test]
    fn in_order_stream_is_clean_and_holds_no_memory() {
        let t = track(&(0..1000).collect::<Vec<_>>());
        assert_eq!((t.distinct(), t.duplicated(), t.reordered()), (1000, 0, 0));
        assert!(t.ahead.is_empty());
        assert_eq!(t.lost(1000), 0);
    }

    #[test]
    fn swapped_pair_is_one_reordered() {
        let mut t = SeqTracker::new();
        assert_eq!(t.record(0), Arrival::InOrder);
        assert_eq!(t.record(2), Arrival::InOrder);
        assert_eq!(t.record(1), Arrival::Reordered);
        assert_eq!(t.record(3), Arrival::InOrder);
        assert_eq!((t.distinct(), t.reordered(), t.lost(4)), (4, 1, 0));
        assert!(t.ahead.is_empty());
    }

    #[test]
    fn each_message_overtaken_counts() {
        let t = track(&[0, 3, 1, 2]);
        assert_eq!((t.reordered(), t.distinct()), (2, 4));
    }

    #[test]
    fn duplicates_are_counted_once_each_and_not_as_distinct() {
        let t = track(&[0, 1, 1, 2, 0, 2, 2]);
        assert_eq!((t.distinct(), t.duplicated(), t.reordered()), (3, 4, 0));
    }

    #[test]
    fn duplicate_of_a_number_past_a_gap() {
        let t = track(&[0, 5, 5]);
        assert_eq!((t.distinct(), t.duplicated()), (2, 1));
    }

    #[test]
    fn gaps_are_lost_and_late_ones_are_reordered() {
        let t = track(&[0, 1, 4, 6]);
        assert_eq!(t.lost(7), 3); // 2, 3 and 5 never came
        assert_eq!(t.reordered(), 0);
        let t = track(&[0, 1, 4, 6, 2]);
        assert_eq!((t.lost(7), t.reordered()), (2, 1));
        assert_eq!(t.high(), 7);
    }

    #[test]
    fn tail_loss_is_lost_not_reordered() {
        let t = track(&[0, 1, 2]);
        assert_eq!((t.lost(10), t.reordered()), (7, 0));
    }

    #[test]
    fn a_gap_that_never_fills_holds_one_run() {
        let mut t = track(&(1..10_000).collect::<Vec<_>>());
        assert_eq!(t.ahead.len(), 1);
        assert_eq!((t.distinct(), t.lost(10_000), t.reordered()), (9_999, 1, 0));
        assert!(t.has(1) && t.has(9_999) && !t.has(0) && !t.has(10_000));
        assert_eq!(t.record(0), Arrival::Reordered);
        assert!(t.ahead.is_empty());
        assert_eq!((t.distinct(), t.lost(10_000)), (10_000, 0));
    }

    #[test]
    fn runs_join_from_either_side_and_in_the_middle() {
        let mut t = track(&[0, 5, 3, 7, 4, 6, 9]);
        assert_eq!(
            t.ahead.iter().map(|(&s, &e)| (s, e)).collect::<Vec<_>>(),
            [(3, 8), (9, 10)]
        );
        assert_eq!((t.distinct(), t.duplicated()), (7, 0));
        assert_eq!(t.record(6), Arrival::Duplicate);
        assert_eq!(t.record(8), Arrival::Reordered);
        assert_eq!(
            t.ahead.iter().map(|(&s, &e)| (s, e)).collect::<Vec<_>>(),
            [(3, 10)]
        );
        t.record(2);
        t.record(1);
        assert!(t.ahead.is_empty());
        assert_eq!((t.distinct(), t.lost(10), t.duplicated()), (10, 0, 1));
    }

    #[test]
    fn nothing_arrived() {
        let t = SeqTracker::new();
        assert_eq!((t.distinct(), t.lost(5), t.high()), (0, 5, 0));
    }
}
