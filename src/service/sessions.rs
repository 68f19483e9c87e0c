//! Several sessions per user (`--sessions-per-user N`): what one session
//! tells the user's others and the other participants — read receipts
//! (35) and typing notices (36) — and the rules that make a user's
//! sessions see one conversation.
//!
//! # Sessions
//!
//! With `N = 1` (the default) a second login gets errno 2, as the
//! original's. With `N > 1` a user may be logged in on up to `N`
//! connections at once — in cluster mode on any nodes: Redis counts each
//! node's sessions of the user, and the `N + 1`-th login anywhere gets
//! errno 2 (`src/cluster/scripts.rs`, `CLAIM`). Whatever one node delivers
//! to its sessions of a user it also routes to the user's other nodes
//! ([`super::cluster_node::to_other_nodes`]), unless it holds all `N`.
//! The online map's entry of a user is the list of their sessions, each
//! with its own [`Cursors`](super::cursors::Cursors):
//!
//! * a message of someone else is offered to every session, each checking
//!   it against its own cursor ([`super::delivery::push`]);
//! * a message the user sent from session A is a *self-copy* for the
//!   others: the same bytes with the same `conv`/`seq`, so every device has
//!   the whole conversation in order; A itself only gets its SEND_ACK and
//!   moves its cursor;
//! * a session that finds a gap is filled from the log alone
//!   ([`super::backfill`]), the others are not disturbed.
//!
//! The stored `delivered_seq` stays the user's (the furthest position
//! any session confirmed): a new session's login ack carries what no
//! session was handed, and SYNC (29) gives it the history before.
//! Presence is the user's: online while any session is, offline when the
//! last one ends ([`super::delivery::unclaim`] says which it was).
//!
//! # Receipts and typing
//!
//! With `N > 1`, a READ (33) that stores a read position pushes
//! `{"msgId":35,"conv","uid","seq"}` to the user's other sessions and to
//! the other participants (every member, for a group); with `N = 1` no
//! receipt is pushed, so the original's protocol sees no change. TYPING (36) is
//! relayed to the other participants as `{"msgId":36,"conv","uid"}`,
//! never stored, and at most once per [`TYPING_INTERVAL`] per session and
//! conversation ([`TypingGate`]); extra notices are dropped silently.
//! Neither is a message of the log: no cursor, no retry. A participant on
//! no node misses it; one on another node of a cluster gets it through
//! [`Cluster::send_to_user`](crate::cluster::Cluster::send_to_user) as a
//! notice ([`NOTICE_SEQ`]), and so do the user's own sessions and the
//! participants' on other nodes.
//!
//! # Threads
//!
//! [`typing`] starts on the peer's own thread (a one-to-one conversation
//! needs nothing more); a group's members are read on the user's worker.
//! [`receipt`] runs on the user's worker, after the READ's store write.
//! Sending is [`Peer::send`](super::Peer::send), safe anywhere.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::cluster_node::{routed, spreads, to_other_nodes, NOTICE_SEQ};
use super::{user_key, Ctx, Me, Service};
use crate::model::{Conv, ConvState};
use crate::protocol::{encode, errno, reply};
use crate::storage::{Entry, Page, Store, StoreError};

/// The least time between two typing notices of one session in one
/// conversation that are relayed.
pub const TYPING_INTERVAL: Duration = Duration::from_secs(1);

/// Conversations one session's [`TypingGate`] remembers; a notice that
/// finds it full of recent ones is dropped.
const TYPING_CONVS: usize = 64;

/// When a session last had a typing notice relayed, per conversation.
/// Only the peer's own thread uses it (behind the session's lock).
#[derive(Debug, Default)]
pub struct TypingGate {
    last: HashMap<Conv, Instant>,
}

impl TypingGate {
    /// Whether a notice in `conv` at `now` may be relayed; if so it is
    /// counted. Bounded: at most [`TYPING_CONVS`] conversations, stale
    /// ones forgotten first.
    pub fn admit(&mut self, conv: Conv, now: Instant) -> bool {
        let recent = |at: &Instant| now.saturating_duration_since(*at) < TYPING_INTERVAL;
        if self.last.get(&conv).is_some_and(recent) {
            return false;
        }
        if self.last.len() >= TYPING_CONVS && !self.last.contains_key(&conv) {
            self.last.retain(|_, at| recent(at));
            if self.last.len() >= TYPING_CONVS {
                return false;
            }
        }
        self.last.insert(conv, now);
        true
    }
}

/// TYPING (36): relays the notice to the other participants of `conv`.
/// The peer's own thread; a group's members are read on the worker.
pub fn typing(ctx: Ctx, me: Me, conv: Conv) {
    match conv {
        Conv::Direct { .. } => {
            let Some(other) = conv.other(me.uid) else {
                return ctx.fail(errno::FORBIDDEN, &format!("you are not in {conv}"));
            };
            if !ctx.session.typing_admits(conv, Instant::now()) {
                return;
            }
            if other != me.uid {
                notify(&ctx.svc, other, conv, encode(&reply::typing(conv, me.uid)));
            }
        }
        Conv::Group(gid) => {
            if !ctx.session.typing_admits(conv, Instant::now()) {
                return;
            }
            ctx.request_on_worker(user_key(me.uid), move |ctx, store| {
                match members(&ctx.svc, store, gid) {
                    Ok(m) if m.binary_search(&me.uid).is_ok() => {
                        let frame = encode(&reply::typing(conv, me.uid));
                        for &uid in m.iter().filter(|&&u| u != me.uid) {
                            notify(&ctx.svc, uid, conv, frame.clone());
                        }
                    }
                    Ok(_) => ctx.fail(errno::FORBIDDEN, &format!("you are not in {conv}")),
                    Err(e) => ctx.store_failed(&e),
                }
            });
        }
    }
}

/// After a READ stored `read` as `me`'s position in `conv`: pushes the
/// receipt to `me`'s sessions other than the peer `from` and to the other
/// participants. The user's worker.
pub fn receipt(svc: &Service, store: &dyn Store, me: i64, from: u64, conv: Conv, read: i64) {
    let frame = encode(&reply::receipt(conv, me, read));
    for peer in svc.online.peers(me) {
        if peer.id() != from {
            peer.send(frame.clone());
        }
    }
    if spreads(svc) {
        // The user's sessions on other nodes (`from` is here).
        to_other_nodes(svc, me, routed(conv, NOTICE_SEQ, &frame));
    }
    let others = match conv {
        Conv::Direct { .. } => conv.other(me).into_iter().collect(),
        Conv::Group(gid) => match members(svc, store, gid) {
            Ok(m) => m,
            Err(e) => {
                log::error!("receipt of {me} in {conv}: reading the members: {e}");
                return;
            }
        },
    };
    for uid in others.into_iter().filter(|&u| u != me) {
        notify(svc, uid, conv, frame.clone());
    }
}

/// Sends `frame` to each of `uid`'s sessions here and, in cluster mode,
/// routes it as a notice to their node when they have none here (with
/// several sessions per user: to their other nodes as well). Any thread.
fn notify(svc: &Service, uid: i64, conv: Conv, frame: Vec<u8>) {
    let peers = svc.online.peers(uid);
    if peers.is_empty() {
        if let Some(cluster) = svc.cluster() {
            cluster.send_to_user(uid, routed(conv, NOTICE_SEQ, &frame));
        }
        return;
    }
    for peer in &peers {
        peer.send(frame.clone());
    }
    if spreads(svc) {
        to_other_nodes(svc, uid, routed(conv, NOTICE_SEQ, &frame));
    }
}

/// With several sessions per user, the log entries a login ack carries:
/// per conversation, in seq order, every entry after the user's stored
/// position, **the user's own included** ([`Store::pending`] leaves those
/// out: a sole session sent them itself, but a new session has not seen
/// what another one sent, also during this login, before its cursors
/// start at `last_seq`). At most `limit`; `true` when more are left.
/// `convs` must be read before, as [`Store::pending`]'s caller reads them.
/// The user's worker.
pub fn pending_with_own(
    store: &dyn Store,
    convs: &[ConvState],
    limit: usize,
) -> Result<(Vec<Entry>, bool), StoreError> {
    let mut out = Vec::new();
    let mut more_left = false;
    for c in convs {
        let from = c.delivered_seq.max(c.joined_seq);
        if c.last_seq <= from {
            continue;
        }
        let room = limit.saturating_sub(out.len());
        if room == 0 {
            more_left = true;
            break;
        }
        let (entries, more) = store.log_page(c.conv, Page::After(from), c.joined_seq, room)?;
        more_left |= more;
        out.extend(entries);
    }
    Ok((out, more_left))
}

/// The members of `gid`, ascending (empty: no such group): from the
/// cache, else from the store. Worker only.
fn members(svc: &Service, store: &dyn Store, gid: i64) -> Result<Vec<i64>, StoreError> {
    if let Some(m) = svc.groups.get(gid) {
        return Ok(m.to_vec());
    }
    let mut ids = store.group_member_ids(gid)?;
    ids.sort_unstable();
    Ok(ids)
}
