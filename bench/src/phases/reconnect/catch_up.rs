//! The way back after a drop: the login ack (its offline messages), CONVS,
//! and SYNC after the held seq of each conversation that is ahead, page by
//! page; then the user is online again and sends.

use super::{ReconnectPhase, State, LOGIN_RETRY, MAX_LOGIN_TRIES};
use crate::phases::delivery::offline_messages;
use crate::phases::inbox::Via;
use crate::proto;
use crate::worker::Io;
use serde_json::Value;
use std::time::Duration;

impl ReconnectPhase {
    pub(super) fn on_login_ack(&mut self, io: &mut Io, i: usize, msg: &Value) {
        let errno = proto::errno(msg);
        if std::mem::take(&mut self.people[i].wrong_pending) {
            if errno == 0 {
                self.outcome.reconnect.wrong_password_accepted += 1;
            } else {
                // Refused, as it must be: now the right one.
                self.count("wrong password refused");
                return self.login(io, i);
            }
        } else if errno == 12 || (errno == 2 && self.people[i].login_tries < MAX_LOGIN_TRIES) {
            // 2: the server has not seen the old connection go yet; 12:
            // too many logins at once or a cool-down: wait as long as the
            // server asks (the phase's deadline bounds the waiting, not a
            // count: a user given up on here would go unchecked).
            let after = msg
                .get("retry_after")
                .and_then(Value::as_f64)
                .filter(|s| s.is_finite())
                .map_or(LOGIN_RETRY, |s| {
                    Duration::from_secs_f64(s.clamp(0.0, 3600.0))
                });
            self.people[i].wake = Some(io.now + after.max(LOGIN_RETRY));
            self.count("login retry");
            return;
        }
        if errno != 0 {
            self.outcome
                .error(format!("re-login: errno {errno} ({})", proto::errmsg(msg)));
            self.people[i].state = State::Failed;
            return;
        }
        self.count("login");
        self.people[i].inbox.new_session();
        for m in offline_messages(msg) {
            self.book(io, i, &m, Via::Offline);
        }
        self.people[i].state = State::CatchingUp;
        io.send(self.people[i].slot, &proto::convs());
    }

    pub(super) fn on_convs(&mut self, io: &mut Io, i: usize, msg: &Value) {
        let verifying = self.verifying;
        let p = &mut self.people[i];
        let convs = msg.get("convs").and_then(Value::as_array);
        // A catch-up cut short by a close may have left a position behind.
        p.after = 0;
        if verifying {
            p.verify = super::Verify::Started;
            p.last_seqs = last_seqs(msg);
        }
        p.catch_up = convs
            .into_iter()
            .flatten()
            .filter_map(|c| {
                let conv = c.get("conv")?.as_str()?;
                let last = c.get("last_seq")?.as_u64()?;
                (last > p.inbox.held(conv)).then(|| conv.to_owned())
            })
            .collect();
        self.next_page(io, i);
    }

    /// Asks for the next catch-up page, or goes back online.
    pub(super) fn next_page(&mut self, io: &mut Io, i: usize) {
        let p = &mut self.people[i];
        match p.catch_up.front() {
            Some(conv) => {
                p.after = p.after.max(p.inbox.held(conv));
                let page = proto::sync_after(conv, p.after, proto::SYNC_PAGE_MAX);
                io.send(p.slot, &page);
            }
            None if p.verify == super::Verify::Started => self.verified(i),
            None => {
                p.state = State::Online;
                p.login_tries = 0;
                let dropper = p.dropper;
                let at = self.next_drop(io.now);
                self.people[i].wake = dropper.then_some(at);
                self.count("caught up");
                if self.verifying {
                    self.verify(io, i);
                } else {
                    self.pump(io, i);
                }
            }
        }
    }

    pub(super) fn on_page(&mut self, io: &mut Io, i: usize, msg: &Value) {
        self.outcome.pages += 1;
        let mut last = self.people[i].after;
        for m in msg
            .get("msgs")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            self.outcome.fetched += 1;
            match proto::log_pos(m) {
                Some((_, seq)) if seq > last => last = seq,
                _ => self.outcome.seq_reordered += 1,
            }
            self.book(io, i, m, Via::Sync);
        }
        let more = msg.get("more").and_then(Value::as_bool).unwrap_or(false);
        let p = &mut self.people[i];
        if more && last > p.after {
            p.after = last;
        } else {
            p.catch_up.pop_front();
            p.after = 0;
        }
        self.next_page(io, i);
    }
}

/// Every conversation of a CONVS_ACK with its `last_seq`.
fn last_seqs(msg: &Value) -> Vec<(String, u64)> {
    msg.get("convs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| {
            let conv = c.get("conv")?.as_str()?;
            Some((conv.to_owned(), c.get("last_seq")?.as_u64()?))
        })
        .collect()
}
