//! [`LogBook`]: which messages of each conversation this client has shown,
//! so that a message delivered twice is shown once, and where to resume
//! after a reconnect.
//!
//! Delivery is at-least-once: after a server crash, or when a catch-up SYNC
//! overlaps what arrived live, one message can come twice. Every message
//! from a server with a message log names its place, `(conv, seq)`, and seq
//! is gapless per conversation, so per conversation the book keeps
//!
//! ```text
//!   seq:   1 2 3 … base | base+1  base+2  base+3  base+4 …
//!          └── shown ───┘   ·       shown    ·      shown     ← `above`
//! ```
//!
//! a `base` (every seq up to it counts as shown) and the set `above` of the
//! seqs shown beyond it. When `base + 1` is shown, `base` moves up and the
//! set shrinks, so in the steady state the set is empty. A catch-up asks for
//! everything after `base`: what fills a hole is new, what is already in the
//! set is a duplicate and dropped.
//!
//! Where a catch-up starts: on the first login of an account in this
//! process the book knows nothing, and the conversations' earlier messages
//! were shown (or not) by another session; `history` is there to look
//! back. So the CONVS reply of that login sets each conversation's `floor`
//! to its `last_seq`, and a catch-up asks for what comes after the floor
//! (or after the base, when that is higher). The floor is no claim that
//! anything was shown: a message at or below it that is pushed late (it
//! was stored before the CONVS reply was written, and pushed after it) is
//! still new. Once `floor + 1` has been shown, every earlier push of the
//! conversation has arrived (a connection gets a conversation's pushes in
//! seq order), and `base` jumps to the floor. After a later login of the
//! same account (a reconnect) a conversation the book does not know yet
//! has no floor: all of it is new.
//!
//! Bounds: at most [`MAX_ABOVE`] seqs per conversation wait above `base`
//! (more means a hole that never filled; `base` then jumps over it, and
//! `history` still shows those messages), and at most [`MAX_CONVS`]
//! conversations are tracked (past that, messages of further ones are shown
//! without deduplication).
//!
//! Thread rule: a plain value; [`ClientState`](super::state::ClientState)
//! keeps it under its lock.

use std::collections::{BTreeSet, HashMap};

/// Seqs kept above a conversation's base before the base jumps.
pub const MAX_ABOVE: usize = 4096;
/// Conversations tracked.
pub const MAX_CONVS: usize = 100_000;

/// What one conversation has shown; see the module docs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Conv {
    /// Every seq up to here counts as shown.
    base: u64,
    /// Seqs above `base` that were shown.
    above: BTreeSet<u64>,
    /// Where a catch-up may start at the earliest: the log's end when this
    /// session first learnt of the conversation (see the module docs).
    floor: u64,
    /// The highest seq known to exist (from CONVS or from a message).
    last_seq: u64,
}

impl Conv {
    fn note(&mut self, seq: u64) -> bool {
        self.last_seq = self.last_seq.max(seq);
        if self.is_shown(seq) {
            return false;
        }
        self.above.insert(seq);
        self.compact();
        true
    }

    fn is_shown(&self, seq: u64) -> bool {
        seq <= self.base || self.above.contains(&seq)
    }

    /// Moves `base` to the floor once the message after it is shown, over
    /// what is contiguous, and over holes when the set is full.
    fn compact(&mut self) {
        if self.base < self.floor && self.above.contains(&(self.floor + 1)) {
            self.raise_base(self.floor);
        }
        while self.above.len() > MAX_ABOVE {
            if let Some(first) = self.above.pop_first() {
                self.base = first;
            }
        }
        while self.above.first() == Some(&(self.base + 1)) {
            self.above.pop_first();
            self.base += 1;
        }
    }

    fn raise_base(&mut self, to: u64) {
        if to > self.base {
            self.base = to;
            self.above = self.above.split_off(&(to + 1));
            self.compact();
        }
        self.last_seq = self.last_seq.max(to);
    }

    /// The seq a catch-up asks for messages after: the floor or the base,
    /// whichever is higher, and then over what was shown after it.
    fn resume_after(&self) -> u64 {
        let mut from = self.base.max(self.floor);
        while self.above.contains(&(from + 1)) {
            from += 1;
        }
        from
    }
}

/// The shown messages of every conversation of one account.
#[derive(Debug, Default)]
pub struct LogBook {
    /// The account the book is about; another account's login clears it.
    uid: Option<i64>,
    /// Whether a CONVS reply has set the bases for this account already.
    anchored: bool,
    convs: HashMap<String, Conv>,
}

impl LogBook {
    /// A login of `uid` succeeded: a different account starts a new book.
    pub fn logged_in(&mut self, uid: i64) {
        if self.uid != Some(uid) {
            *self = LogBook {
                uid: Some(uid),
                ..LogBook::default()
            };
        }
    }

    fn conv(&mut self, conv: &str) -> Option<&mut Conv> {
        if !self.convs.contains_key(conv) && self.convs.len() >= MAX_CONVS {
            return None;
        }
        Some(self.convs.entry(conv.to_owned()).or_default())
    }

    /// Notes that message `(conv, seq)` is shown now or was sent by us;
    /// returns `false` when it had been already (a duplicate).
    pub fn note(&mut self, conv: &str, seq: u64) -> bool {
        self.conv(conv).is_none_or(|c| c.note(seq))
    }

    /// Whether `(conv, seq)` has been shown.
    #[cfg(test)]
    pub fn has(&self, conv: &str, seq: u64) -> bool {
        self.convs.get(conv).is_some_and(|c| c.is_shown(seq))
    }

    /// A CONVS reply: `(conv, last_seq)` of each conversation. On the
    /// account's first one, every conversation's floor becomes its
    /// `last_seq` (see the module docs); afterwards only `last_seq` is
    /// learnt.
    pub fn convs<'a>(&mut self, convs: impl IntoIterator<Item = (&'a str, u64)>) {
        let first = !self.anchored;
        self.anchored = true;
        for (conv, last_seq) in convs {
            if let Some(c) = self.conv(conv) {
                if first {
                    c.floor = c.floor.max(last_seq);
                }
                c.last_seq = c.last_seq.max(last_seq);
                c.compact();
            }
        }
    }

    /// The conversations that have messages this client has not seen, each
    /// with the seq to sync after, in name order.
    pub fn behind(&self) -> Vec<(String, u64)> {
        let mut behind: Vec<(String, u64)> = self
            .convs
            .iter()
            .map(|(name, c)| (name, c, c.resume_after()))
            .filter(|(_, c, from)| c.last_seq > *from)
            .map(|(name, _, from)| (name.clone(), from))
            .collect();
        behind.sort();
        behind
    }

    /// A catch-up of `conv` ended (the last page said `more: false`) having
    /// seen up to `up_to`: what it asked for is all there is (a missing seq
    /// was pruned, or is not ours to read). When it started at the base,
    /// the base moves there; when it started at the floor, the floor does
    /// (what lies below the floor was never asked for).
    pub fn caught_up(&mut self, conv: &str, up_to: u64) {
        if let Some(c) = self.conv(conv) {
            let to = up_to.max(c.last_seq);
            if c.base >= c.floor {
                c.raise_base(to);
            } else {
                c.floor = c.floor.max(to);
                c.compact();
            }
        }
    }
}

#[cfg(test)]
mod tests;
