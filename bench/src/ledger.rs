//! Who sent what to whom, and what arrived: the books a traffic run keeps.
//!
//! Senders count messages per stream ([`StreamKey`]: a sender and a target,
//! which is a user or a group); recipients keep a [`SeqTracker`] per stream.
//! Each worker thread keeps its own [`Ledger`] without locks, the run merges
//! them at the end, and [`Ledger::totals`] closes the books: a message to a
//! group is owed to every member but its sender, so a group of `M` members
//! owes `M - 1` deliveries per message. A message the server refused (a
//! SEND_ACK with an errno, such as 12 when its queues are full) was never
//! stored and is owed to nobody: [`Ledger::refuse`] takes it off the
//! books, and should it arrive all the same it counts as unexpected.

use crate::seq::SeqTracker;
use std::collections::HashMap;

/// Where a message was addressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    /// One-to-one chat to this uid.
    User(i64),
    /// Group chat in this gid.
    Group(i64),
}

/// One stream of numbered messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    /// Sender's uid.
    pub sender: i64,
    /// Recipient uid or group.
    pub target: Target,
}

/// Sums over all streams, once the run has drained.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    /// Deliveries owed: messages sent times recipients per message.
    pub expected: u64,
    /// Distinct expected deliveries that arrived.
    pub delivered: u64,
    /// Expected deliveries that never arrived.
    pub lost: u64,
    /// Arrivals of a message that had already arrived.
    pub duplicated: u64,
    /// Arrivals after a later message of the same stream.
    pub reordered: u64,
    /// Distinct arrivals nobody owed this recipient (for example a group
    /// message delivered back to its own sender).
    pub unexpected: u64,
}

/// Sent counts and arrival trackers of one worker, or of a whole run.
#[derive(Debug, Default)]
pub struct Ledger {
    sent: HashMap<StreamKey, u64>,
    received: HashMap<(i64, StreamKey), SeqTracker>,
    /// Sequence numbers the server refused, by stream (each once).
    refused: HashMap<StreamKey, Vec<u64>>,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counts one message sent on `key` and returns its sequence number.
    pub fn next_seq(&mut self, key: StreamKey) -> u64 {
        let n = self.sent.entry(key).or_insert(0);
        *n += 1;
        *n - 1
    }

    /// Message `seq` of `key` was refused by the server: nobody is owed it.
    pub fn refuse(&mut self, key: StreamKey, seq: u64) {
        self.refused.entry(key).or_default().push(seq);
    }

    /// The tracker for what `recipient` receives on `key`.
    pub fn tracker(&mut self, recipient: i64, key: StreamKey) -> &mut SeqTracker {
        self.received.entry((recipient, key)).or_default()
    }

    /// Messages sent so far on all streams.
    pub fn sent_total(&self) -> u64 {
        self.sent.values().sum()
    }

    /// Adds `other`'s books to these. Each recipient is served by one worker,
    /// so trackers never collide; if they do, the larger one is kept.
    pub fn merge(&mut self, other: Ledger) {
        for (key, n) in other.sent {
            *self.sent.entry(key).or_insert(0) += n;
        }
        for (key, seqs) in other.refused {
            self.refused.entry(key).or_default().extend(seqs);
        }
        for (key, tracker) in other.received {
            match self.received.get(&key) {
                Some(mine) if mine.distinct() >= tracker.distinct() => {}
                _ => {
                    self.received.insert(key, tracker);
                }
            }
        }
    }

    /// Closes the books. `members` lists each group's member uids.
    pub fn totals(&self, members: &HashMap<i64, Vec<i64>>) -> Totals {
        self.totals_for(members, 1)
    }

    /// Closes the books of a run with `sessions` sessions per user, whose
    /// senders and recipients are session ids (`uid · sessions + session`,
    /// see `Roster::session_id`): a one-to-one message is owed to every
    /// session of its recipient and, as a self-copy, to every other session
    /// of its sender; a group message to every session of every member
    /// but the sending one. With one session this is [`totals`](Self::totals).
    pub fn totals_for(&self, members: &HashMap<i64, Vec<i64>>, sessions: i64) -> Totals {
        let k = sessions.max(1);
        let mut t = Totals::default();
        let no_members = Vec::new();
        let all = |uid: i64| (0..k).map(move |j| uid * k + j);
        let recipients_of = |key: &StreamKey| -> Vec<i64> {
            let own = all(key.sender.div_euclid(k)).filter(|&s| s != key.sender);
            match key.target {
                Target::User(uid) if uid == key.sender.div_euclid(k) => all(uid).collect(),
                Target::User(uid) => all(uid).chain(own).collect(),
                Target::Group(gid) => members
                    .get(&gid)
                    .unwrap_or(&no_members)
                    .iter()
                    .flat_map(|&uid| all(uid))
                    .filter(|&s| s != key.sender)
                    .collect(),
            }
        };
        for (key, &sent) in &self.sent {
            let refused = self.refused.get(key).map_or(&[][..], Vec::as_slice);
            let owed = sent.saturating_sub(refused.len() as u64);
            for recipient in recipients_of(key) {
                t.expected += owed;
                match self.received.get(&(recipient, *key)) {
                    Some(tracker) => {
                        // A refused message that arrived was owed to nobody.
                        let stray = refused.iter().filter(|&&s| tracker.has(s)).count() as u64;
                        let distinct = tracker.distinct() - stray;
                        t.lost += owed.saturating_sub(distinct);
                        t.delivered += distinct.min(owed);
                        t.unexpected += distinct.saturating_sub(owed) + stray;
                    }
                    None => t.lost += owed,
                }
            }
        }
        for ((recipient, key), tracker) in &self.received {
            t.duplicated += tracker.duplicated();
            t.reordered += tracker.reordered();
            let owed = self.sent.contains_key(key) && recipients_of(key).contains(recipient);
            if !owed {
                t.unexpected += tracker.distinct();
            }
        }
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(sender: i64, target: Target) -> StreamKey {
        StreamKey { sender, target }
    }

    #[test]
    fn a_refused_message_is_owed_to_nobody() {
        let mut ledger = Ledger::new();
        let ab = key(1, Target::User(2));
        for _ in 0..4 {
            ledger.next_seq(ab);
        }
        ledger.refuse(ab, 1);
        for seq in [0, 2, 3] {
            ledger.tracker(2, ab).record(seq);
        }
        let t = ledger.totals(&HashMap::new());
        assert_eq!(
            (t.expected, t.delivered, t.lost, t.unexpected),
            (3, 3, 0, 0)
        );
        // Delivered although refused: a server that lies about storing.
        ledger.tracker(2, ab).record(1);
        let t = ledger.totals(&HashMap::new());
        assert_eq!(
            (t.expected, t.delivered, t.lost, t.unexpected),
            (3, 3, 0, 1)
        );
        // Refused, and another message lost: still counted.
        let mut other = Ledger::new();
        for _ in 0..3 {
            other.next_seq(ab);
        }
        other.refuse(ab, 0);
        other.tracker(2, ab).record(2);
        let t = other.totals(&HashMap::new());
        assert_eq!((t.expected, t.delivered, t.lost), (2, 1, 1));
    }

    #[test]
    fn pair_chat_books_balance() {
        let mut ledger = Ledger::new();
        let ab = key(1, Target::User(2));
        let ba = key(2, Target::User(1));
        for _ in 0..3 {
            ledger.next_seq(ab);
        }
        assert_eq!(ledger.next_seq(ba), 0);
        for seq in [0, 2, 1, 1] {
            ledger.tracker(2, ab).record(seq);
        }
        let t = ledger.totals(&HashMap::new());
        assert_eq!(t.expected, 4);
        assert_eq!(t.delivered, 3);
        assert_eq!(
            (t.lost, t.duplicated, t.reordered, t.unexpected),
            (1, 1, 1, 0)
        );
    }

    #[test]
    fn group_owes_every_member_but_the_sender() {
        let members = HashMap::from([(7, vec![1, 2, 3])]);
        let mut ledger = Ledger::new();
        let k = key(1, Target::Group(7));
        ledger.next_seq(k);
        ledger.next_seq(k);
        for seq in [0, 1] {
            ledger.tracker(2, k).record(seq);
        }
        ledger.tracker(3, k).record(1);
        ledger.tracker(1, k).record(0); // echoed to its sender
        let t = ledger.totals(&members);
        assert_eq!(
            (t.expected, t.delivered, t.lost, t.unexpected),
            (4, 3, 1, 1)
        );
    }

    #[test]
    fn merge_adds_sent_counts_and_keeps_trackers() {
        let k = key(1, Target::User(2));
        let mut a = Ledger::new();
        a.next_seq(k);
        let mut b = Ledger::new();
        b.tracker(2, k).record(0);
        b.next_seq(key(3, Target::User(4)));
        a.merge(b);
        assert_eq!(a.sent_total(), 2);
        let t = a.totals(&HashMap::new());
        assert_eq!((t.expected, t.delivered, t.lost), (2, 1, 1));
    }
}
