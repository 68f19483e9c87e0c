//! The service's side of cluster mode: [`ClusterNode`], the
//! [`LocalNode`] the cluster layer delivers into, and the presence
//! questions the handlers ask.
//!
//! The cluster's threads hold a [`ClusterNode`], which holds the service
//! only weakly: the service owns the [`Cluster`](crate::cluster::Cluster)
//! handle, so a strong reference back would be a cycle that keeps both
//! alive forever.
//!
//! ```text
//!  Service ──owns──► Arc<Cluster> ──owns──► Arc<ClusterNode> ──Weak──► Service
//! ```
//!
//! What travels between nodes is a committed message of the log: the
//! payload this node gives [`Cluster::send_to_user`](crate::cluster::Cluster::send_to_user)
//! starts with the message's place in the log, so the receiving node can
//! push it through the recipient's cursors ([`super::delivery`]) and fill
//! any gap from the shared log:
//!
//! ```text
//!   0              8              16                       16 + n
//!   +--------------+--------------+------------------------+
//!   | Conv::key    | seq          | the message, as        |
//!   | i64, big end.| i64, big end.| delivered (n bytes)    |
//!   +--------------+--------------+------------------------+
//! ```
//!
//! A message that no node takes needs nothing: the log keeps it for the
//! recipient's next login.

use std::sync::{Arc, Weak};

use super::delivery::{self, Delivery};
use super::{PeerRef, Presence, Service};
use crate::cluster::LocalNode;
use crate::model::Conv;
use crate::protocol::{encode, errno, reply};

/// What a session gets before it is closed because another node holds its
/// account (a second login let in while Redis could not be asked).
pub const HELD_BY_ANOTHER_NODE: &str =
    "logged in on another server of the cluster, which keeps the account; closing";

/// Bytes of the place-in-the-log header of a routed payload.
const ROUTED_HEADER: usize = 16;

/// The payload routed to another node for message `seq` of `conv`.
pub fn routed(conv: Conv, seq: i64, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ROUTED_HEADER + bytes.len());
    out.extend_from_slice(&conv.key().to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out.extend_from_slice(bytes);
    out
}

/// Splits a routed payload into conversation key, seq and message; `None`
/// when it is too short (not written by this version of the server).
fn unroute(payload: &[u8]) -> Option<(i64, i64, &[u8])> {
    let (conv, rest) = payload.split_at_checked(8)?;
    let (seq, bytes) = rest.split_at_checked(8)?;
    Some((
        i64::from_be_bytes(conv.try_into().ok()?),
        i64::from_be_bytes(seq.try_into().ok()?),
        bytes,
    ))
}

/// The [`LocalNode`] of this process. See the [module docs](self).
pub struct ClusterNode {
    svc: Weak<Service>,
}

impl ClusterNode {
    /// A node delivering into `svc`; any thread.
    pub fn new(svc: &Arc<Service>) -> ClusterNode {
        ClusterNode {
            svc: Arc::downgrade(svc),
        }
    }
}

impl LocalNode for ClusterNode {
    /// Subscriber thread: hand the message to the user's peer (or
    /// login buffer); `false` when the user is not here (any more).
    fn deliver(&self, uid: i64, payload: &[u8]) -> bool {
        let (Some(svc), Some((conv, seq, bytes))) = (self.svc.upgrade(), unroute(payload)) else {
            // Gone, or garbage on our channel: nobody to tell.
            return true;
        };
        deliver_here(&svc, uid, conv, seq, bytes)
    }

    /// Subscriber thread: a group post's members here, sent one copy of
    /// the bytes between them.
    fn deliver_all(&self, uids: &[i64], payload: &[u8]) -> Vec<i64> {
        let (Some(svc), Some((conv, seq, bytes))) = (self.svc.upgrade(), unroute(payload)) else {
            return Vec::new();
        };
        deliver_here_all(&svc, uids, conv, seq, bytes)
    }

    /// Publisher or subscriber thread: the user is on no node (or Redis
    /// could not be asked): deliver if they arrived here meanwhile; else
    /// the log keeps the message for their next login.
    fn store_offline(&self, uid: i64, payload: Vec<u8>) {
        let (Some(svc), Some((conv, seq, bytes))) = (self.svc.upgrade(), unroute(&payload)) else {
            return;
        };
        deliver_if_here(&svc, uid, conv, seq, bytes.to_vec());
    }

    /// Subscriber thread: catch every local user up from the log (on their
    /// workers), since messages published while the link was down reached
    /// nobody here, and forget every cached group.
    fn subscribed(&self) {
        if let Some(svc) = self.svc.upgrade() {
            // Group changes may have been missed too.
            svc.groups.forget_all();
            delivery::schedule_reconcile_all(&svc);
        }
    }

    /// Subscriber thread: another node changed `gid`'s members.
    fn group_changed(&self, gid: i64) {
        if let Some(svc) = self.svc.upgrade() {
            svc.groups.forget(gid);
        }
    }

    /// Publisher thread: catch these users up from the log (on their
    /// workers): the presence sync claimed them only now.
    fn catch_up(&self, uids: &[i64]) {
        if let Some(svc) = self.svc.upgrade() {
            delivery::schedule_reconcile(&svc, uids);
        }
    }

    /// Publisher thread: another live node holds `uid`, let in here too
    /// while Redis could not be asked: end the session here.
    fn lost_claim(&self, uid: i64, holder: &str) {
        if let Some(svc) = self.svc.upgrade() {
            end_unconfirmed(&svc, uid, holder);
        }
    }

    /// Publisher thread: everyone in the online map, with their sessions.
    fn local_users(&self) -> Vec<(i64, usize)> {
        self.svc
            .upgrade()
            .map_or_else(Vec::new, |s| s.online.session_counts())
    }
}

impl Service {
    /// Which of `uids` are online: in this node's map, or (cluster mode)
    /// claimed by a live node. **Blocks** in cluster mode: worker only.
    pub fn are_online(&self, uids: &[i64]) -> Vec<bool> {
        let mut online: Vec<bool> = uids.iter().map(|&u| self.online.contains(u)).collect();
        let Some(cluster) = self.cluster() else {
            return online;
        };
        let remote: Vec<i64> = uids
            .iter()
            .zip(&online)
            .filter(|(_, &here)| !here)
            .map(|(&u, _)| u)
            .collect();
        if remote.is_empty() {
            return online;
        }
        let mut answers = cluster.is_online(&remote).into_iter();
        for flag in online.iter_mut().filter(|f| !**f) {
            *flag = answers.next().unwrap_or(false);
        }
        online
    }
}

/// Whether this node routes what it delivers to a user's sessions here to
/// their other nodes too: cluster mode with several sessions per user,
/// where one user's sessions may be on several nodes.
pub fn spreads(svc: &Service) -> bool {
    svc.cluster().is_some() && svc.sessions_per_user() > 1
}

/// Routes `payload` (a [`routed`] message or notice) to the nodes other
/// than this one holding sessions of `uid` — unless this node holds all
/// `--sessions-per-user` of them, so that no other node can. Only queues:
/// any thread. Call it after delivering here, and only when [`spreads`].
pub fn to_other_nodes(svc: &Service, uid: i64, payload: Vec<u8>) {
    let Some(cluster) = svc.cluster() else {
        return;
    };
    if svc.online.session_count(uid) < svc.sessions_per_user() {
        cluster.send_to_other_nodes(uid, payload);
    }
}

/// The seq of a routed *notice* (a read receipt, a typing notice): no
/// message of the log, so no cursor; every session of the user here is
/// sent it, and one that finds nobody is dropped ([`super::sessions`]).
pub const NOTICE_SEQ: i64 = 0;

/// Cluster → here (subscriber thread): hands message `seq` of the
/// conversation with key `conv` to `to`, if `to` is on this node. `false`
/// when they are not (any more). A notice ([`NOTICE_SEQ`]) goes to each
/// of `to`'s sessions here, or nowhere.
pub fn deliver_here(svc: &Arc<Service>, to: i64, conv: i64, seq: i64, bytes: &[u8]) -> bool {
    deliver_here_all(svc, &[to], conv, seq, bytes).is_empty()
}

/// [`deliver_here`] to each of `to`, with one copy of `bytes` shared by
/// them all; returns those not here.
pub fn deliver_here_all(
    svc: &Arc<Service>,
    to: &[i64],
    conv: i64,
    seq: i64,
    bytes: &[u8],
) -> Vec<i64> {
    if seq == NOTICE_SEQ {
        for &uid in to {
            for peer in svc.online.peers(uid) {
                peer.send(bytes.to_vec());
            }
        }
        return Vec::new();
    }
    let Some(conv) = Conv::from_key(conv) else {
        log::warn!("cluster: a message for {to:?} names no conversation ({conv})");
        return Vec::new();
    };
    let shared = Arc::new(bytes.to_vec());
    let missed = |&uid: &i64| {
        let d = Delivery {
            conv,
            seq,
            bytes: Some(shared.clone()),
            origin: None,
            received: None, // read on another node: not measured
        };
        delivery::push(svc, uid, d).is_some()
    };
    to.iter().copied().filter(|uid| missed(uid)).collect()
}

/// Cluster → here (publisher or subscriber thread): no node took the
/// message for `to`. Delivers it if `to` arrived here meanwhile; otherwise
/// nothing is needed, as the log keeps it for their next login.
fn deliver_if_here(svc: &Arc<Service>, to: i64, conv: i64, seq: i64, bytes: Vec<u8>) {
    let Some(conv) = Conv::from_key(conv).filter(|_| seq != NOTICE_SEQ) else {
        return; // garbage, or a notice: those are never kept
    };
    let d = Delivery {
        conv,
        seq,
        bytes: Some(Arc::new(bytes)),
        origin: None,
        received: None,
    };
    let _ = delivery::push(svc, to, d);
}

/// Publisher thread: ends `uid`'s session here (errno 2, then closed): the
/// live node `holder` holds the account, so messages from other nodes go
/// there. The entry leaves the online map at once (a client that keeps
/// its half of the connection open must not keep the account here) and
/// the release that queues leaves `holder`'s claim alone. A login still
/// under way is left to the next sync (it has just claimed, or will).
fn end_unconfirmed(svc: &Arc<Service>, uid: i64, holder: &str) {
    let peers: Vec<PeerRef> = match svc.online.lock(uid).get(&uid) {
        Some(sessions) => sessions
            .iter()
            .filter_map(|p| match p {
                Presence::Online { peer, .. } => Some(peer.clone()),
                Presence::LoggingIn { .. } => None,
            })
            .collect(),
        None => Vec::new(),
    };
    // Every session here: with one session per user the other node holds
    // the user; with several, this node's sessions would pass the limit
    // together with the other nodes' (which kept theirs through the
    // outage, or synced first).
    for peer in peers {
        if delivery::unclaim(svc, uid, peer.id()) == delivery::Unclaimed::NotHere {
            continue; // it left, or logged in again, meanwhile
        }
        log::info!(
            "{}: {uid} is held by node {holder}; closing this second session",
            peer.name()
        );
        let last = reply::error_msg(errno::ALREADY_ONLINE, HELD_BY_ANOTHER_NODE, None);
        peer.close_with(encode(&last));
    }
}
