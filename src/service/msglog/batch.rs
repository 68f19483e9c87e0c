//! One batch of a log writer: check every post, append them all in one
//! transaction, then hand each committed message on, in seq order.

use std::collections::HashMap;
use std::sync::Arc;

use super::Post;
use crate::model::Conv;
use crate::protocol::{errno, reply};
use crate::service::cluster_node::{routed, spreads, to_other_nodes};
use crate::service::delivery::{self, Delivery};
use crate::service::early::SharedBytes;
use crate::service::group_cache::{is_member, Members};
use crate::service::Service;
use crate::storage::{delivered, Appended, NewEntry, Store, StoreError, Stored};

/// Who receives a post.
enum Recipients {
    /// A one-to-one message's recipient.
    User(i64),
    /// A group's members (the sender among them), ascending.
    Members(Members),
}

/// A post refused before the append: errno and errmsg.
type Refusal = (i64, String);

/// A committed batch on its way to the deliverer: the posts that were
/// stored (or found stored), their entries and places.
pub(super) struct Committed {
    svc: Arc<Service>,
    accepted: Vec<(Post, Recipients)>,
    entries: Vec<NewEntry>,
    results: Vec<Appended>,
}

/// Writes `posts` (at least one) to the log; what was committed is
/// returned for [`hand_on_all`]. Posts that cannot be stored are refused
/// here. The writer's thread.
pub(super) fn commit(posts: Vec<Post>) -> Option<Committed> {
    let svc = posts.first().map(|p| p.ctx.svc.clone())?;
    let store = svc.store.clone();
    // Group member lists, read once per batch.
    let mut groups: HashMap<i64, Result<Option<Members>, ()>> = HashMap::new();
    let mut accepted: Vec<(Post, Recipients)> = Vec::with_capacity(posts.len());
    for post in posts {
        match recipients(&svc, &*store, &post, &mut groups) {
            Ok(r) => accepted.push((post, r)),
            Err((errno, errmsg)) => refuse(&post, errno, &errmsg),
        }
    }
    if accepted.is_empty() {
        return None;
    }
    let entries: Vec<NewEntry> = accepted
        .iter_mut()
        .map(|(p, _)| NewEntry {
            conv: p.conv,
            sender: p.me.uid,
            cid: p.cid.clone(),
            body: std::mem::take(&mut p.body),
        })
        .collect();
    let results = match store.append(&entries) {
        Ok(r) if r.len() == entries.len() => r,
        Ok(r) => {
            log::error!("log: {} results for {} entries", r.len(), entries.len());
            refuse_all(&accepted);
            return None;
        }
        Err(e) => {
            log::error!("log: appending {} messages: {e}", entries.len());
            refuse_all(&accepted);
            return None;
        }
    };
    Some(Committed {
        svc,
        accepted,
        entries,
        results,
    })
}

/// Hands every message of a committed batch on, in seq order, and
/// acknowledges the posts that carry a cid. The deliverer's thread.
pub(super) fn hand_on_all(batch: Committed) {
    let Committed {
        svc,
        accepted,
        entries,
        results,
    } = batch;
    for (((post, to), entry), appended) in accepted.iter().zip(&entries).zip(results) {
        if let Appended::New(at) = appended {
            hand_on(&svc, post, to, &entry.body, at);
        }
        if let Some(cid) = &post.cid {
            let at = appended.stored();
            post.ctx.send(&reply::send_ack(cid, at.conv, at.seq, at.ts));
        }
    }
}

/// Checks that a post may be stored, and finds who receives it.
fn recipients(
    svc: &Service,
    store: &dyn Store,
    post: &Post,
    groups: &mut HashMap<i64, Result<Option<Members>, ()>>,
) -> Result<Recipients, Refusal> {
    let server_error = || (errno::SERVER_ERROR, SERVER_ERROR.to_owned());
    match (post.to, post.conv) {
        (Some(to), _) => match user_exists(svc, store, to) {
            Ok(true) => {
                super::quota::admit(svc, store, post.me.uid, to).map(|()| Recipients::User(to))
            }
            Ok(false) => Err((errno::NOT_FOUND, format!("no user {to}"))),
            Err(e) => {
                log::error!("log: looking up user {to}: {e}");
                Err(server_error())
            }
        },
        (None, Conv::Group(gid)) => {
            let members = groups
                .entry(gid)
                .or_insert_with(|| {
                    members(svc, store, gid).map_err(|e| {
                        log::error!("log: loading the members of group {gid}: {e}");
                    })
                })
                .clone();
            match members {
                Ok(Some(m)) if is_member(&m, post.me.uid) => Ok(Recipients::Members(m)),
                Ok(Some(_)) => Err((
                    errno::FORBIDDEN,
                    format!("you are not a member of group {gid}"),
                )),
                Ok(None) => Err((errno::NOT_FOUND, "no such group".to_owned())),
                Err(()) => Err(server_error()),
            }
        }
        (None, Conv::Direct { .. }) => Err((errno::BAD_REQUEST, "no recipient".to_owned())),
    }
}

/// Whether account `uid` exists: known (it registered or logged in since
/// the start), online here, or found in the store (then remembered).
fn user_exists(svc: &Service, store: &dyn Store, uid: i64) -> Result<bool, StoreError> {
    if svc.known.contains(uid) || svc.online.contains(uid) {
        return Ok(true);
    }
    let exists = store.user_by_id(uid)?.is_some();
    if exists {
        svc.known.insert(uid);
    }
    Ok(exists)
}

/// Hands a committed message to its recipients (here, or in cluster mode
/// on their node) and moves the sender's own cursor past it.
fn hand_on(svc: &Arc<Service>, post: &Post, to: &Recipients, body: &str, at: Stored) {
    let bytes = Arc::new(delivered(body, at));
    let sender = post.me.uid;
    let message = |bytes, origin| Delivery {
        conv: at.conv,
        seq: at.seq,
        bytes,
        origin,
        received: post.ctx.received,
    };
    // The sender's own session only moves its cursor; with several
    // sessions per user the others get a self-copy of the same bytes.
    let origin = Some(post.ctx.peer.id());
    let self_copy = |bytes: &SharedBytes| (svc.sessions_per_user() > 1).then(|| bytes.clone());
    match to {
        // Writing to oneself: the message comes back like any other.
        Recipients::User(uid) if *uid == sender => {
            send_to(svc, sender, message(Some(bytes), None));
        }
        Recipients::User(uid) => {
            let own = self_copy(&bytes);
            send_to(svc, *uid, message(Some(bytes), None));
            send_to(svc, sender, message(own, origin));
        }
        Recipients::Members(members) => {
            let own = self_copy(&bytes);
            let mut remote = Vec::new();
            for &m in members.iter().filter(|&&m| m != sender) {
                if !push_here(svc, m, message(Some(bytes.clone()), None)) {
                    remote.push(m);
                }
            }
            // One call for every member not here: one item per node.
            if let Some(cluster) = svc.cluster().filter(|_| !remote.is_empty()) {
                cluster.send_to_users(remote, routed(at.conv, at.seq, &bytes));
            }
            send_to(svc, sender, message(own, origin));
        }
    }
}

/// Pushes `d` to `uid` here or, in cluster mode, routes it to their node
/// (with several sessions per user: here *and* to their other nodes).
/// A user on no node needs nothing: the log keeps the message for their
/// next login.
fn send_to(svc: &Arc<Service>, uid: i64, d: Delivery) {
    let Some(missed) = push_and_spread(svc, uid, d) else {
        return;
    };
    if let (Some(cluster), Some(bytes)) = (svc.cluster(), missed.bytes) {
        cluster.send_to_user(uid, routed(missed.conv, missed.seq, &bytes));
    }
}

/// Pushes `d` to `uid`'s sessions here (and, when [`spreads`], to their
/// other nodes); `false` when no session of `uid` is here: the caller
/// routes it (a group post gathers those members into one call).
fn push_here(svc: &Arc<Service>, uid: i64, d: Delivery) -> bool {
    push_and_spread(svc, uid, d).is_none()
}

/// [`delivery::push`], then the copy for `uid`'s other nodes when it was
/// delivered here and [`spreads`]; what `push` gave back.
fn push_and_spread(svc: &Arc<Service>, uid: i64, d: Delivery) -> Option<Delivery> {
    let spread = (d.bytes.as_ref())
        .filter(|_| spreads(svc))
        .map(|b| routed(d.conv, d.seq, b));
    let missed = delivery::push(svc, uid, d);
    if let (None, Some(payload)) = (&missed, spread) {
        to_other_nodes(svc, uid, payload);
    }
    missed
}

const SERVER_ERROR: &str = "the server could not store the message";

fn refuse_all(accepted: &[(Post, Recipients)]) {
    for (post, _) in accepted {
        refuse(post, errno::SERVER_ERROR, SERVER_ERROR);
    }
}

/// Answers a post that was not stored ([`super::refuse`]).
fn refuse(post: &Post, errno: i64, errmsg: &str) {
    super::refuse(&post.ctx, post.cid.as_deref(), errno, errmsg);
}

/// The members of `gid`, ascending; `None`: no such group. From the cache
/// (in cluster mode kept by the other nodes' notices: "Group membership
/// cache" in ARCHITECTURE.md), else from the store. Blocks: a log writer
/// or a worker only.
fn members(svc: &Service, store: &dyn Store, gid: i64) -> Result<Option<Members>, StoreError> {
    if let Some(m) = svc.groups.get(gid) {
        return Ok(Some(m));
    }
    let generation = svc.groups.generation(gid);
    let mut ids = store.group_member_ids(gid)?;
    if ids.is_empty() && store.group(gid)?.is_none() {
        return Ok(None);
    }
    svc.groups.insert_loaded(gid, generation, ids.clone());
    ids.sort_unstable();
    Ok(Some(Arc::new(ids)))
}
