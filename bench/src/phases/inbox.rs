//! [`Inbox`]: what one receiver of the `reconnect` scenario got, by its
//! place in the message log, and what that says against what its partner
//! had acked.
//!
//! Every message arrives one of three ways: pushed live, inside a login
//! ack (offline), or fetched by a catch-up SYNC. The inbox books each by
//! `(conv, seq)`:
//!
//! - a pushed message whose `(conv, seq)` was already booked is
//!   **duplicated** (delivery is at-least-once; a client hides it);
//! - a fetched one already booked is only **refetched** (a catch-up asks for
//!   everything after the contiguous part it holds, so it overlaps);
//! - within one connection, pushed messages of a conversation must come in
//!   increasing seq; a new one below the last is **reordered**. (Fetched
//!   messages fill holes and are older by nature; within a page they must
//!   ascend, which the page check counts.)
//!
//! The sender's uid and message number (`tag`, from the bench payload) are
//! booked too, with the seq they arrived at, so that at the end
//! [`Inbox::lost`] finds the acked messages that never arrived by any way,
//! and a message found at two different seqs (stored twice: the receiver
//! would show it twice) counts as **doubled**.
//!
//! [`Inbox::held`] is where a catch-up starts: the highest seq up to which
//! the conversation is contiguous, counting the receiver's own messages,
//! which its SEND_ACKs placed.

use std::collections::{BTreeSet, HashMap};

/// How a message reached the receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Via {
    /// Pushed on the open connection.
    Live,
    /// Inside the login ack.
    Offline,
    /// Fetched by SYNC.
    Sync,
}

/// What booking one arrival found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Booked {
    /// First time.
    New,
    /// Pushed again.
    Duplicate,
    /// Fetched again (not an error).
    Refetched,
    /// New, but pushed below a later one of this connection.
    Reordered,
}

#[derive(Debug, Default)]
struct ConvBook {
    /// Contiguous up to here.
    base: u64,
    /// Held above `base`.
    above: BTreeSet<u64>,
    /// The highest seq pushed on the current connection.
    session_last: u64,
}

impl ConvBook {
    fn insert(&mut self, seq: u64) -> bool {
        if seq <= self.base || !self.above.insert(seq) {
            return false;
        }
        while self.above.first() == Some(&(self.base + 1)) {
            self.above.pop_first();
            self.base += 1;
        }
        true
    }
}

/// One receiver's books; see the module docs.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    convs: HashMap<String, ConvBook>,
    /// `(sender uid, tag)` of every message that arrived, and its seq.
    tags: HashMap<(i64, u64), u64>,
    /// Counts, for the report.
    pub delivered: u64,
    pub duplicated: u64,
    pub refetched: u64,
    pub reordered: u64,
    pub offline: u64,
    pub synced: u64,
    /// Messages found at a second seq of their conversation.
    pub doubled: u64,
}

impl Inbox {
    /// Books a message from uid `from` at `(conv, seq)` numbered `tag`.
    pub fn receive(&mut self, conv: &str, seq: u64, from: i64, tag: u64, via: Via) -> Booked {
        let book = self.convs.entry(conv.to_owned()).or_default();
        let new = book.insert(seq);
        let pushed = via != Via::Sync;
        let out_of_order = pushed && seq < book.session_last;
        if pushed {
            book.session_last = book.session_last.max(seq);
        }
        if !new {
            return if pushed {
                self.duplicated += 1;
                Booked::Duplicate
            } else {
                self.refetched += 1;
                Booked::Refetched
            };
        }
        if let Some(&first) = self.tags.get(&(from, tag)) {
            if first != seq {
                self.doubled += 1;
            }
        } else {
            self.tags.insert((from, tag), seq);
        }
        self.delivered += 1;
        match via {
            Via::Offline => self.offline += 1,
            Via::Sync => self.synced += 1,
            Via::Live => {}
        }
        if out_of_order {
            self.reordered += 1;
            return Booked::Reordered;
        }
        Booked::New
    }

    /// Books one of the receiver's own messages (its SEND_ACK, or a SYNC
    /// that brought it): it is held, not received.
    pub fn own(&mut self, conv: &str, seq: u64) {
        self.convs.entry(conv.to_owned()).or_default().insert(seq);
    }

    /// A new connection: the order check starts again.
    pub fn new_session(&mut self) {
        for book in self.convs.values_mut() {
            book.session_last = 0;
        }
    }

    /// Where a catch-up of `conv` starts: contiguous up to here.
    pub fn held(&self, conv: &str) -> u64 {
        self.convs.get(conv).map_or(0, |b| b.base)
    }

    /// The message numbers `from` had acked (`acked`) that never arrived.
    pub fn lost<'a>(&self, from: i64, acked: impl IntoIterator<Item = &'a u64>) -> u64 {
        acked
            .into_iter()
            .filter(|&&t| !self.tags.contains_key(&(from, t)))
            .count() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_refetches_and_order() {
        let mut inbox = Inbox::default();
        assert_eq!(inbox.receive("d1-2", 1, 7, 0, Via::Live), Booked::New);
        assert_eq!(inbox.receive("d1-2", 1, 7, 0, Via::Live), Booked::Duplicate);
        assert_eq!(inbox.receive("d1-2", 3, 7, 2, Via::Live), Booked::New);
        assert_eq!(
            inbox.receive("d1-2", 2, 7, 1, Via::Live),
            Booked::Reordered,
            "pushed below a later push on the same connection"
        );
        inbox.new_session();
        assert_eq!(inbox.receive("d1-2", 5, 7, 4, Via::Offline), Booked::New);
        assert_eq!(
            inbox.receive("d1-2", 4, 7, 3, Via::Sync),
            Booked::New,
            "a catch-up fills the hole: older, not reordered"
        );
        assert_eq!(inbox.receive("d1-2", 5, 7, 4, Via::Sync), Booked::Refetched);
        assert_eq!(
            (
                inbox.delivered,
                inbox.duplicated,
                inbox.refetched,
                inbox.reordered
            ),
            (5, 1, 1, 1)
        );
        assert_eq!((inbox.offline, inbox.synced), (1, 1));
    }

    #[test]
    fn held_counts_own_messages_and_stops_at_a_hole() {
        let mut inbox = Inbox::default();
        inbox.receive("d1-2", 1, 7, 0, Via::Live);
        inbox.own("d1-2", 2);
        inbox.receive("d1-2", 4, 7, 1, Via::Live);
        assert_eq!(inbox.held("d1-2"), 2, "3 is missing");
        assert_eq!(inbox.held("g9"), 0);
    }

    #[test]
    fn a_message_at_two_seqs_is_doubled() {
        let mut inbox = Inbox::default();
        inbox.receive("g5", 1, 7, 0, Via::Live);
        inbox.receive("g5", 2, 8, 0, Via::Live);
        assert_eq!(inbox.doubled, 0, "same tag, other sender");
        inbox.receive("g5", 3, 7, 0, Via::Sync);
        assert_eq!(inbox.doubled, 1, "7's message 0 stored twice");
    }

    #[test]
    fn lost_is_acked_and_never_arrived() {
        let mut inbox = Inbox::default();
        inbox.receive("d1-2", 1, 7, 0, Via::Live);
        inbox.receive("d1-2", 3, 7, 2, Via::Sync);
        assert_eq!(inbox.lost(7, &[0, 1, 2, 3]), 2);
        assert_eq!(inbox.lost(8, &[0]), 1, "another sender's 0 did not arrive");
    }
}
