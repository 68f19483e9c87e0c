//! `Call`: one Redis call of the node, as queued for the publisher; what
//! it does when Redis cannot be asked ([`Call::degrade`]), and the
//! command that does it. `ClaimReply`: where a claim's answer goes.

use crossbeam_channel::Sender;
use redis::Cmd;

use crate::cluster::barrier::{Done, SEEN_UID};
use crate::cluster::envelope;
use crate::cluster::keys::Keys;
use crate::cluster::scripts::Scripts;
use crate::cluster::shared::Shared;
use crate::cluster::Claim;

/// One Redis call of the node.
pub(crate) enum Call {
    /// Route `payload` to the nodes holding `uid`'s sessions (or to
    /// offline storage): from the route cache when it knows them (the
    /// node's batch), else through the `route` script. With `others`, to
    /// the nodes other than this one only, and nothing more when there
    /// are none: this node delivered to its own sessions of the user
    /// already. With `forwarded`, a message this node received for a user
    /// not here: through the script (never the cache), skipping this node,
    /// and stored here when nobody takes it.
    Publish {
        uid: i64,
        payload: Vec<u8>,
        others: bool,
        forwarded: bool,
    },
    /// Route `payload` to each of `uids` (a group post's remote members):
    /// one group item per destination node for the cached ones, the
    /// script for each of the others.
    PublishMany { uids: Vec<i64>, payload: Vec<u8> },
    /// Claim `uid` for this node; the answer goes to `reply` once every
    /// node has forgotten the user's route (`tick.rs`).
    Claim { uid: i64, reply: ClaimReply },
    /// Drop this node's claim on `uid`; `done` runs when the call is
    /// dropped: after Redis answered it, or unsent (Redis could not be
    /// asked; the next presence sync releases the user then).
    Release { uid: i64, done: Option<Done> },
    /// Tell every node that group `gid`'s members changed here; barrier
    /// `token` waits for their confirmations.
    Group { gid: i64, token: u64 },
    /// Confirm to `node` that its change `token` (a group's, or a claim's
    /// presence event) was applied here.
    Seen { node: String, token: u64 },
    /// Which of `uids` are on a live node; the answer goes to `reply`.
    Online {
        uids: Vec<i64>,
        reply: Sender<Vec<bool>>,
    },
}

impl Call {
    /// A publish counted in `Shared::queued_publishes`.
    pub(crate) fn is_publish(&self) -> bool {
        matches!(self, Call::Publish { .. } | Call::PublishMany { .. })
    }

    /// Answers as if Redis were unreachable.
    pub(crate) fn degrade(self, shared: &Shared) {
        match self {
            Call::Publish {
                uid,
                payload,
                others: false,
                forwarded,
            } => shared.store_unrouted(uid, payload, forwarded),
            // Delivered here; the other nodes catch their users up when
            // the link returns (the catch-up report).
            Call::Publish { others: true, .. } => {}
            Call::PublishMany { uids, payload } => {
                for uid in uids {
                    shared.store_by_sender(uid, payload.clone());
                }
            }
            Call::Claim { reply, .. } => reply.send(Claim::Unavailable),
            // The next presence sync releases it; nobody waits for that.
            Call::Release { done, .. } => drop(done),
            Call::Group { token, .. } => shared.barriers.release(token),
            Call::Seen { .. } => {} // the other node's barrier expires
            Call::Online { uids, reply } => {
                let _ = reply.send(vec![false; uids.len()]);
            }
        }
    }

    /// The command that does it; `token`: a claim's barrier. Not for a
    /// `PublishMany`, which a tick splits (`tick.rs`).
    pub(super) fn command(&self, scripts: &Scripts, keys: &Keys, limit: u32, token: u64) -> Cmd {
        match self {
            Call::Publish {
                uid,
                payload,
                others,
                forwarded,
            } => {
                let last = *others || *forwarded;
                let skip = if last { keys.node_id() } else { "" };
                scripts.route(keys, *uid, &envelope::single(*uid, payload, last), skip)
            }
            Call::PublishMany { .. } => redis::cmd("PING"), // never sent: split by the tick
            Call::Claim { uid, .. } => scripts.claim(keys, *uid, limit, token),
            Call::Release { uid, .. } => scripts.release(keys, *uid),
            Call::Group { gid, token } => {
                let mut c = redis::cmd("PUBLISH");
                c.arg(keys.groups_channel())
                    .arg(format!("{gid} {} {token}", keys.node_id()));
                c
            }
            Call::Seen { node, token } => {
                let mut c = redis::cmd("PUBLISH");
                c.arg(format!("{}{node}", keys.channel_prefix()))
                    .arg(envelope::single(SEEN_UID, &token.to_be_bytes(), true));
                c
            }
            Call::Online { uids, .. } => scripts.online(keys, uids),
        }
    }
}

/// Where the answer to a claim goes: a function called exactly once, with
/// Redis's answer, or with [`Claim::Unavailable`] when the call is degraded
/// — or dropped unanswered (a crash simulated with `abort`), so that a
/// login never waits forever.
///
/// A tick moves it into the claim's barrier (`tick.rs`), which runs it
/// once every node has confirmed the claim's presence event: on the
/// publisher thread (the last confirmation came first, or the deadline),
/// on the subscriber thread (the last confirmation arrived there),
/// or on the caller's when the call is degraded there. So it must only
/// queue: a job on a worker, a send.
pub(crate) struct ClaimReply(Option<Box<dyn FnOnce(Claim) + Send>>);

impl ClaimReply {
    /// A reply that calls `done`.
    pub(crate) fn new(done: impl FnOnce(Claim) + Send + 'static) -> ClaimReply {
        ClaimReply(Some(Box::new(done)))
    }

    /// Moves the callback out into a new reply, leaving this one empty
    /// (dropping it then answers nothing).
    pub(crate) fn take(&mut self) -> ClaimReply {
        ClaimReply(self.0.take())
    }

    /// Answers with `claim`.
    pub(crate) fn send(mut self, claim: Claim) {
        if let Some(done) = self.0.take() {
            done(claim);
        }
    }
}

impl Drop for ClaimReply {
    fn drop(&mut self) {
        if let Some(done) = self.0.take() {
            done(Claim::Unavailable);
        }
    }
}
