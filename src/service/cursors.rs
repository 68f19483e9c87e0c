//! [`Cursors`]: what one connection has been handed, per conversation,
//! and [`Delivery`], a message on its way to one user. The data that
//! [`super::delivery`] keeps in the online map's entries; its rules (the
//! next seq only, gaps filled from the log, positions confirmed once in
//! the kernel) are explained there.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use super::early::{Early, Held, Holding, SharedBytes};
use crate::model::Conv;
use crate::runtime::WordHash;

/// A message on its way to one user.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Its conversation.
    pub conv: Conv,
    /// Its number there.
    pub seq: i64,
    /// The bytes to send; `None` for the user's own message when no other
    /// session needs a self-copy: it only moves the sending session's
    /// cursor. Shared: a group post's members (and a user's sessions) hold
    /// one copy of them.
    pub bytes: Option<SharedBytes>,
    /// For a message the user sent: the id of the peer (session) that sent
    /// it, which only moves its cursor; the user's other sessions are sent
    /// `bytes`, a self-copy ([`super::sessions`]). `None` for a message of
    /// someone else.
    pub origin: Option<u64>,
    /// When the sender's connection read it, if its live delivery is
    /// measured ([`super::latency`]).
    pub received: Option<Instant>,
}

/// The most handed-but-unconfirmed positions one connection remembers;
/// beyond, the newest is coalesced into the last (confirming it later
/// confirms all before it: the output stream is FIFO).
const MAX_UNCONFIRMED: usize = 65_536;

/// One conversation's cursor on one connection.
#[derive(Debug, Default)]
struct Position {
    /// The last seq handed over (or sent by the user): what [`push`](super::delivery::push)
    /// checks against.
    handed: i64,
    /// The last seq whose bytes are known to be in the kernel (or that the
    /// store held at login): what is written to the store.
    confirmed: i64,
    /// Handed, not yet confirmed: `(seq, end of its bytes in the peer's
    /// output stream)`, ascending.
    unconfirmed: VecDeque<(i64, u64)>,
    /// `confirmed` moved since the last [`Cursors::take_changed`].
    changed: bool,
}

/// Per conversation, the last seq a connection was handed or sent itself,
/// and the last one known to have reached the kernel. Lives in the user's
/// [`Presence::Online`](super::online::Presence::Online) entry, so every method runs under the user's shard
/// lock.
///
/// Only confirmed positions are written to the store: a message still in
/// the connection's output buffer when it closes (a slow reader cut off,
/// a connection reset) stays pending for the next login.
#[derive(Debug, Default)]
pub struct Cursors {
    /// Keyed by [`WordHash`]: three lookups per delivery, and SipHash was a
    /// third of a group delivery's instructions.
    convs: HashMap<Conv, Position, WordHash>,
    /// The end of the last frame sent through these cursors.
    last_end: u64,
    /// Entries in all `unconfirmed` queues.
    unconfirmed: usize,
    /// Messages this session sent itself that came back from the log
    /// writer past a gap (`(conv, seq)` above the cursor): the fill that
    /// closes the gap reads them from the log and must not send them to
    /// the session that sent them. At most [`MAX_OWN_AHEAD`].
    own_ahead: Vec<(Conv, i64)>,
    /// Messages past a gap, held until it closes ([`super::early`]).
    early: Early,
}

/// The most own messages one session remembers past a gap; beyond, the
/// fill sends one back (in its place, as the self-copy it would be).
const MAX_OWN_AHEAD: usize = 64;

impl Cursors {
    /// The cursors a login starts from: per conversation, the position it
    /// will have handed once its ack is out, and the position the store
    /// holds (confirmed already).
    pub fn at_login(start: impl IntoIterator<Item = (Conv, i64, i64)>) -> Cursors {
        let convs = start
            .into_iter()
            .map(|(conv, handed, stored)| {
                let p = Position {
                    handed: handed.max(stored),
                    confirmed: stored,
                    ..Position::default()
                };
                (conv, p)
            })
            .collect();
        Cursors {
            convs,
            ..Cursors::default()
        }
    }

    /// The login ack went out, ending at `end` in the output stream: every
    /// position it moved is handed, and confirmed once `end` is written.
    pub fn login_ack_sent(&mut self, end: Option<u64>, written: u64) {
        let moved: Vec<(Conv, i64)> = self
            .convs
            .iter()
            .filter(|(_, p)| p.handed > p.confirmed)
            .map(|(c, p)| (*c, p.handed))
            .collect();
        for (conv, seq) in moved {
            self.handed(conv, seq, end, written);
        }
    }

    /// The handed cursor of `conv`; 0 for a conversation this connection
    /// has not seen (one that began after the login, whose messages all
    /// come live).
    pub fn get(&self, conv: Conv) -> i64 {
        self.convs.get(&conv).map_or(0, |p| p.handed)
    }

    /// Message `seq` of `conv` was sent, ending at `end` in the output
    /// stream (`None`: not accepted; it will never count as delivered).
    pub fn handed(&mut self, conv: Conv, seq: i64, end: Option<u64>, written: u64) {
        let p = self.convs.entry(conv).or_default();
        p.handed = p.handed.max(seq);
        if let Some(end) = end {
            self.last_end = self.last_end.max(end);
            self.record(conv, seq, end, written);
        }
    }

    /// The user sent message `seq` of `conv` themselves: nothing to hand
    /// over, but it counts as theirs once what was sent before it is out.
    pub fn own(&mut self, conv: Conv, seq: i64, written: u64) {
        let p = self.convs.entry(conv).or_default();
        p.handed = p.handed.max(seq);
        let end = self.last_end;
        self.record(conv, seq, end, written);
    }

    /// Remembers that this session sent message `seq` of `conv`, which
    /// is past a gap at its cursor (the fill that closes the gap skips it).
    pub fn own_ahead(&mut self, conv: Conv, seq: i64) {
        let convs = &self.convs;
        self.own_ahead
            .retain(|&(c, s)| s > convs.get(&c).map_or(0, |p| p.handed));
        if self.own_ahead.len() < MAX_OWN_AHEAD {
            self.own_ahead.push((conv, seq));
        }
    }

    /// Whether this session sent message `seq` of `conv` past a gap
    /// ([`own_ahead`](Self::own_ahead)); forgets it.
    pub fn take_own_ahead(&mut self, conv: Conv, seq: i64) -> bool {
        match self.own_ahead.iter().position(|&e| e == (conv, seq)) {
            Some(i) => {
                self.own_ahead.swap_remove(i);
                true
            }
            None => false,
        }
    }

    /// Holds message `seq` of `conv`, past a gap at the cursor, until the
    /// gap closes ([`super::early`]).
    pub fn hold(&mut self, conv: Conv, seq: i64, held: Held) -> Holding {
        self.early.hold(conv, seq, held)
    }

    /// The held message that comes next in `conv` (the cursor + 1), with
    /// its seq; held ones the cursor passed meanwhile are forgotten.
    pub fn next_held(&mut self, conv: Conv) -> Option<(i64, Held)> {
        if self.early.is_empty() {
            return None; // the common case: no lookup
        }
        let next = self.get(conv) + 1;
        self.early.next(conv, next - 1).map(|h| (next, h))
    }

    /// The highest seq held past a gap in `conv`.
    pub fn highest_held(&self, conv: Conv) -> Option<i64> {
        self.early.highest(conv)
    }

    /// Whether `seq` of `conv` is held as this session's own message.
    pub fn held_own(&self, conv: Conv, seq: i64) -> bool {
        self.early.is_own(conv, seq)
    }

    /// Forgets what is held in `conv` (a fill failed: the next gap
    /// starts over).
    pub fn forget_held(&mut self, conv: Conv) {
        if let Some(top) = self.early.highest(conv) {
            // Takes (and drops) every one at or below the top.
            self.early.next(conv, top);
        }
    }

    /// Raises the cursor of `conv` to at least `seq`, confirmed, not
    /// marked changed (a group joined: the store wrote the position).
    pub fn start_at(&mut self, conv: Conv, seq: i64) {
        let p = self.convs.entry(conv).or_default();
        p.handed = p.handed.max(seq);
        p.confirmed = p.confirmed.max(seq);
    }

    fn record(&mut self, conv: Conv, seq: i64, end: u64, written: u64) {
        let Some(p) = self.convs.get_mut(&conv) else {
            return;
        };
        if end <= written && p.unconfirmed.is_empty() {
            if seq > p.confirmed {
                p.confirmed = seq;
                p.changed = true;
            }
            return;
        }
        if self.unconfirmed >= MAX_UNCONFIRMED {
            if let Some(last) = p.unconfirmed.back_mut() {
                *last = (seq, end);
                return;
            }
        }
        p.unconfirmed.push_back((seq, end));
        self.unconfirmed += 1;
    }

    /// Confirms every position whose bytes are within `written`.
    fn settle(&mut self, written: u64) {
        for p in self.convs.values_mut() {
            while let Some(&(seq, end)) = p.unconfirmed.front() {
                if end > written {
                    break;
                }
                p.unconfirmed.pop_front();
                self.unconfirmed -= 1;
                if seq > p.confirmed {
                    p.confirmed = seq;
                    p.changed = true;
                }
            }
        }
    }

    /// The confirmed positions changed since the last
    /// [`take_changed`](Self::take_changed), left marked: they are written
    /// again later (the store ignores a position that is not ahead), so a
    /// write that failed is repeated.
    pub fn changed(&mut self, written: u64) -> Vec<(Conv, i64)> {
        self.settle(written);
        self.convs
            .iter()
            .filter(|(_, p)| p.changed)
            .map(|(conv, p)| (*conv, p.confirmed))
            .collect()
    }

    /// The confirmed positions changed since the last call, marking them
    /// written.
    pub fn take_changed(&mut self, written: u64) -> Vec<(Conv, i64)> {
        self.settle(written);
        let mut out = Vec::new();
        for (conv, p) in &mut self.convs {
            if std::mem::take(&mut p.changed) {
                out.push((*conv, p.confirmed));
            }
        }
        out
    }
}
