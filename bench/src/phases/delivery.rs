//! The receiving side of chat traffic, shared by the `traffic` and `mixed`
//! phases: recognise a chat message the bench sent, time it, book it in the
//! ledger and tell its sender's worker that it arrived.

use super::Outcome;
use crate::ledger::{StreamKey, Target};
use crate::proto::{self, Payload};
use crate::seq::Arrival;
use crate::worker::{Counters, Io};
use serde_json::Value;
use std::collections::HashMap;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// What every worker knows about the users of a run.
#[derive(Debug)]
pub(crate) struct Roster {
    /// This run's id, carried in every chat text.
    pub run: u64,
    /// The run's clock: send and receive times are microseconds since this.
    pub clock: Instant,
    /// uid of each user index.
    pub uids: Vec<i64>,
    /// Each user's name as a JSON string literal.
    pub names_json: Vec<String>,
    /// Users' password.
    pub password: String,
    /// User index of each uid.
    pub index_of: HashMap<i64, usize>,
    /// Chat text length in bytes.
    pub size: usize,
    /// Sessions per user (`mixed --sessions-per-user`, else 1): user index
    /// `u` is session `u % sessions` of its account. The books then name
    /// sessions, not users: see [`Roster::session_id`].
    pub sessions: u64,
}

impl Roster {
    /// Microseconds on the run's clock at `at`.
    pub fn micros(&self, at: Instant) -> u64 {
        at.saturating_duration_since(self.clock).as_micros() as u64
    }

    /// The id the ledger knows user index `user` by: its uid with one
    /// session per user (so nothing changes then), else `uid · sessions +
    /// its session number`, one id per connection.
    pub fn session_id(&self, user: usize) -> i64 {
        let k = self.sessions.max(1);
        self.uids[user] * k as i64 + (user as u64 % k) as i64
    }

    /// The seq written into the chat text of stream message `seq` sent by
    /// user index `user`: `seq · sessions + its session number`, so that a
    /// recipient can tell which session of the sender sent it
    /// ([`Roster::sender_of`]).
    pub fn wire_seq(&self, user: usize, seq: u64) -> u64 {
        let k = self.sessions.max(1);
        seq * k + user as u64 % k
    }

    /// The sender's ledger id and the stream seq of a message from `uid`
    /// whose text carries `wire` ([`Roster::wire_seq`]).
    pub fn sender_of(&self, uid: i64, wire: u64) -> (i64, u64) {
        let k = self.sessions.max(1);
        (uid * k as i64 + (wire % k) as i64, wire / k)
    }

    /// The chat text for message `seq`, stamped with the time now.
    pub fn text(&self, seq: u64) -> String {
        Payload {
            run: self.run,
            seq,
            sent_us: self.micros(Instant::now()),
        }
        .encode(self.size)
    }
}

/// Counts kept per loop iteration and then added to the shared
/// [`Counters`] in one go, so workers do not contend on every message.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Messages sent.
    pub sent: u64,
    /// Deliveries owed by those messages.
    pub expected: u64,
    /// Deliveries that arrived.
    pub delivered: u64,
}

impl Tally {
    /// Adds the batch to `counters` and starts a new one.
    pub fn publish(&mut self, counters: &Counters) {
        Counters::add(&counters.sent, self.sent);
        Counters::add(&counters.expected, self.expected);
        Counters::add(&counters.delivered, self.delivered);
        *self = Tally::default();
    }
}

/// Caches the `time` field (`YYYY-MM-DD HH:MM:SS`), formatted once a second.
#[derive(Debug, Default)]
pub(crate) struct WallClock {
    second: u64,
    text: String,
}

impl WallClock {
    /// The current time, formatting it only when the second changed.
    pub fn now(&mut self) -> &str {
        let second = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        if second != self.second || self.text.is_empty() {
            self.second = second;
            self.text = proto::format_utc(second);
        }
        &self.text
    }
}

/// Books `msg` if it is a chat message for `recipient` (a user index).
/// `offline` marks messages that came inside a login ack: they count as
/// delivered but are not timed. Returns whether `msg` was a chat message.
pub(crate) fn receive(
    roster: &Roster,
    io: &mut Io,
    outcome: &mut Outcome,
    tally: &mut Tally,
    recipient: usize,
    msg: &Value,
    offline: bool,
) -> bool {
    let id = proto::msg_id(msg);
    let (sender, target) = match id {
        Some(proto::ONE_CHAT_MSG) => (msg.get("from"), msg.get("to").and_then(Value::as_i64)),
        Some(proto::GROUP_CHAT_MSG) => (msg.get("uid"), msg.get("gid").and_then(Value::as_i64)),
        _ => return false,
    };
    let (Some(sender), Some(target)) = (sender.and_then(Value::as_i64), target) else {
        outcome.error("chat message without sender or target");
        return true;
    };
    let Some(payload) = msg
        .get("msg")
        .and_then(Value::as_str)
        .and_then(Payload::decode)
    else {
        outcome.error("chat message not written by chat-bench");
        return true;
    };
    if payload.run != roster.run {
        outcome.stale += 1;
        return true;
    }
    let me = roster.uids[recipient];
    let target = if id == Some(proto::ONE_CHAT_MSG) {
        // With several sessions, a session gets its user's own messages
        // sent from the others: self-copies, addressed to someone else.
        let self_copy = roster.sessions > 1 && sender == me;
        if target != me && !self_copy {
            outcome.error("one-to-one message delivered to the wrong user");
            return true;
        }
        Target::User(target)
    } else {
        Target::Group(target)
    };
    let (sender_id, seq) = roster.sender_of(sender, payload.seq);
    let key = StreamKey {
        sender: sender_id,
        target,
    };
    let tracker = outcome.ledger.tracker(roster.session_id(recipient), key);
    if tracker.record(seq) == Arrival::Duplicate {
        return true;
    }
    tally.delivered += 1;
    outcome.last_arrival = Some(io.now);
    if offline {
        outcome.offline_delivered += 1;
    } else {
        let latency = roster.micros(io.now).saturating_sub(payload.sent_us);
        io.counters.time(latency);
        match target {
            Target::User(_) => outcome.latency.record(latency),
            Target::Group(_) => outcome.group_latency.record(latency),
        }
    }
    if let Some(&user) = roster.index_of.get(&sender) {
        io.ack_sender(user);
    }
    true
}

/// The messages inside a login (or refresh) ack's `offlinemsgs`: the
/// original stores each as a JSON-encoded string; objects are accepted too.
pub(crate) fn offline_messages(ack: &Value) -> Vec<Value> {
    let Some(list) = ack.get("offlinemsgs").and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|item| match item {
            Value::String(s) => serde_json::from_str(s).ok(),
            Value::Object(_) => Some(item.clone()),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_messages_accept_strings_and_objects() {
        let ack = serde_json::json!({
            "msgId": 2,
            "offlinemsgs": [r#"{"msgId":9,"from":1}"#, {"msgId":13}, "not json", 5]
        });
        let got = offline_messages(&ack);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0]["from"], 1);
        assert!(offline_messages(&serde_json::json!({"msgId":2})).is_empty());
    }

    #[test]
    fn wall_clock_is_formatted() {
        let mut clock = WallClock::default();
        assert_eq!(clock.now().len(), "2024-01-01 00:00:00".len());
    }
}
