//! `--cid`: every chat carries a client id, and the server answers each
//! with 28 SEND_ACK once the message is durable. [`Acks`] makes the ids,
//! remembers when each message left, and on its SEND_ACK books the
//! send→ack latency, or the error.
//!
//! A cid is `RUN-WORKER-N` in hex (at most 40 characters): the run id keeps
//! ids unique across runs (the server deduplicates by sender and cid, and
//! would answer a repeated cid with the original message's place), the
//! worker number keeps them unique across the worker threads, and `N`
//! counts. The SEND_ACK comes back on the sender's own connection, so it is
//! always handled by the worker that sent the message: no locks.

use super::delivery::Tally;
use super::Outcome;
use crate::ledger::{Ledger, StreamKey};
use crate::proto;
use serde_json::Value;
use std::collections::HashMap;

/// Messages whose SEND_ACK is awaited, at most; past that, further sends
/// are not timed (their acks are still counted).
const MAX_IN_FLIGHT: usize = 1 << 22;

/// A message sent with a cid, awaiting its SEND_ACK.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InFlight {
    /// The sender's user index.
    pub user: usize,
    /// Send time on the run's clock, µs.
    pub sent_us: u64,
    /// The caller's tag: the message's number in its stream.
    pub tag: u64,
    /// The stream it belongs to in the run's ledger, if it keeps one: a
    /// refused message is then owed to nobody ([`crate::ledger::Ledger::refuse`]).
    pub key: Option<StreamKey>,
    /// Deliveries it is owed to (its recipients' sessions), for the
    /// phase's live tally.
    pub owed: u64,
}

/// What a SEND_ACK said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AckEvent {
    /// The message is stored at `(conv, seq)`; `sent` is what we recorded
    /// for it, when we did.
    Stored {
        sent: Option<InFlight>,
        conv: String,
        seq: u64,
    },
    /// The server refused it.
    Refused { sent: Option<InFlight>, errno: i64 },
}

impl AckEvent {
    /// Books a refusal of a message that `ledger` counted: nobody is owed
    /// it ([`Ledger::refuse`]); returns what was sent, so that the phase
    /// can free its window slot and its live tally too. Anything else
    /// (errno 0 without a place is a malformed ack: the message may be
    /// stored) leaves the books alone.
    pub fn book_refusal(&self, ledger: &mut Ledger) -> Option<InFlight> {
        let AckEvent::Refused {
            sent: Some(sent),
            errno,
        } = self
        else {
            return None;
        };
        let key = sent.key.filter(|_| *errno != 0)?;
        ledger.refuse(key, sent.tag);
        Some(*sent)
    }
}

/// A traffic phase's first look at a message: when it is a SEND_ACK (and
/// the phase sends cids), books it, a refusal off the ledger and off the
/// live tally too, and returns `Some`, holding the refused message if it
/// was a refusal. `None`: not an ack, for the phase to handle.
pub(crate) fn take_ack(
    acks: Option<&mut Acks>,
    msg: &Value,
    now_us: u64,
    outcome: &mut Outcome,
    tally: &mut Tally,
) -> Option<Option<InFlight>> {
    let event = acks?.on_message(msg, now_us, outcome)?;
    let refused = event.book_refusal(&mut outcome.ledger);
    if let Some(sent) = refused {
        tally.expected = tally.expected.saturating_sub(sent.owed);
    }
    Some(refused)
}

/// One worker's cids and messages in flight.
#[derive(Debug)]
pub(crate) struct Acks {
    /// `RUN-WORKER-`.
    prefix: String,
    next: u64,
    in_flight: HashMap<u64, InFlight>,
}

impl Acks {
    /// Cids for worker `worker` of run `run`.
    pub fn new(run: u64, worker: usize) -> Acks {
        Acks {
            prefix: format!("{run:x}-{worker:x}-"),
            next: 0,
            in_flight: HashMap::new(),
        }
    }

    /// A fresh cid for a message that leaves now.
    pub fn cid(&mut self, sent: InFlight) -> String {
        let n = self.next;
        self.next += 1;
        if self.in_flight.len() < MAX_IN_FLIGHT {
            self.in_flight.insert(n, sent);
        }
        format!("{}{n:x}", self.prefix)
    }

    /// Messages still awaiting their SEND_ACK.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Books `msg` when it is a SEND_ACK: latency and `acked`, or
    /// `ack_failed` and the error kind. `None` for any other message; a
    /// SEND_ACK for a cid of another run counts as stale.
    pub fn on_message(
        &mut self,
        msg: &Value,
        now_us: u64,
        outcome: &mut Outcome,
    ) -> Option<AckEvent> {
        if proto::msg_id(msg) != Some(proto::SEND_ACK) {
            return None;
        }
        let n = msg
            .get("cid")
            .and_then(Value::as_str)
            .and_then(|cid| cid.strip_prefix(self.prefix.as_str()))
            .and_then(|n| u64::from_str_radix(n, 16).ok());
        let Some(n) = n else {
            outcome.stale += 1;
            return Some(AckEvent::Refused {
                sent: None,
                errno: proto::errno(msg),
            });
        };
        let sent = self.in_flight.remove(&n);
        let errno = proto::errno(msg);
        if errno != 0 {
            outcome.ack_failed += 1;
            outcome.error(format!("send ack: errno {errno} ({})", proto::errmsg(msg)));
            return Some(AckEvent::Refused { sent, errno });
        }
        let Some((conv, seq)) = proto::log_pos(msg) else {
            outcome.ack_failed += 1;
            outcome.error("send ack without conv or seq");
            return Some(AckEvent::Refused { sent, errno });
        };
        outcome.acked += 1;
        if let Some(s) = sent {
            outcome.ack_latency.record(now_us.saturating_sub(s.sent_us));
        }
        Some(AckEvent::Stored {
            sent,
            conv: conv.to_owned(),
            seq,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sent(tag: u64) -> InFlight {
        InFlight {
            user: 3,
            sent_us: 100,
            tag,
            key: None,
            owed: 0,
        }
    }

    #[test]
    fn an_ack_is_timed_and_matched_to_its_message() {
        let mut acks = Acks::new(0xabc, 2);
        let c0 = acks.cid(sent(0));
        let c1 = acks.cid(sent(1));
        assert_eq!((c0.as_str(), c1.as_str()), ("abc-2-0", "abc-2-1"));
        assert!(c0.len() <= 64);
        let mut outcome = Outcome::default();
        let ack = json!({"msgId": 28, "errno": 0, "cid": c1, "conv": "d1-2", "seq": 5, "ts": 1});
        assert_eq!(
            acks.on_message(&ack, 350, &mut outcome),
            Some(AckEvent::Stored {
                sent: Some(sent(1)),
                conv: "d1-2".into(),
                seq: 5
            })
        );
        assert_eq!(outcome.acked, 1);
        assert_eq!(outcome.ack_latency.summary().map(|s| s.max), Some(250));
        assert_eq!(acks.in_flight(), 1);
        let busy = json!({"msgId": 28, "errno": 12, "errmsg": "busy", "cid": c0});
        assert_eq!(
            acks.on_message(&busy, 400, &mut outcome),
            Some(AckEvent::Refused {
                sent: Some(sent(0)),
                errno: 12
            })
        );
        assert_eq!((outcome.ack_failed, acks.in_flight()), (1, 0));
        assert_eq!(outcome.errors.get("send ack: errno 12 (busy)"), Some(&1));
    }

    #[test]
    fn other_messages_and_other_runs_are_not_ours() {
        let mut acks = Acks::new(1, 0);
        let mut outcome = Outcome::default();
        assert_eq!(acks.on_message(&json!({"msgId": 9}), 0, &mut outcome), None);
        let old = json!({"msgId": 28, "errno": 0, "cid": "ff-0-1", "conv": "g1", "seq": 1});
        assert!(acks.on_message(&old, 0, &mut outcome).is_some());
        assert_eq!((outcome.acked, outcome.stale), (0, 1));
    }
}
