//! Chat: one-to-one (9) and group (13) messages.
//!
//! # The path of a message
//!
//! The sender's I/O thread stamps the sender's identity (id and name) into
//! the object, removes any `conv`/`seq`/`ts` the client wrote, encodes it
//! once and queues it as a [`Post`] on the log writer of its conversation
//! ([`super::msglog`]). No database, no global lock, no blocking: a full
//! queue refuses the message at once (errno 12).
//!
//! The writer checks the recipient (a one-to-one recipient must exist; a
//! group poster must be a member), commits the message to the log with its
//! seq, and then hands it on ([`super::delivery`]): to the recipients'
//! connections here, or in cluster mode through
//! [`Cluster::send_to_user`](crate::cluster::Cluster::send_to_user) to the
//! node that holds them. A recipient who is on no node needs nothing more:
//! the log keeps the message, and their next login reads it. A message
//! with a `cid` is acknowledged (28) after the commit.
//!
//! # Order
//!
//! All messages of one conversation go through one writer, which takes
//! them in the order the I/O threads queued them and hands them on in seq
//! order: one sender's messages arrive in the order sent, and every reader
//! of a conversation sees the same order.
//!
//! [`deliver_here`] and [`deliver_if_here`] are the cluster's way in (see
//! [`super::cluster_node`]).

use std::sync::Arc;

use serde_json::{Map, Value};

use super::delivery::{self, Delivery};
use super::group_cache::Members;
use super::msglog::Post;
use super::{Ctx, Me, Service};
use crate::model::Conv;
use crate::protocol::{errno, reply};
use crate::storage::{Store, StoreError};

/// ONE_CHAT_MSG (9): store the object in the log of the conversation with
/// `to` and hand it on. Failures come back as error messages (27) with
/// `req: 9`, or as 28 when the message carries a `cid`. The sender's own
/// thread.
pub fn one_chat(ctx: Ctx, me: Me, to: i64, cid: Option<String>, obj: Map<String, Value>) {
    let Some(conv) = Conv::direct(me.uid, to) else {
        return refuse(
            &ctx,
            cid.as_deref(),
            errno::NOT_FOUND,
            &format!("no user {to}"),
        );
    };
    let body = stamp(obj, "from", &me);
    submit(ctx, me, conv, Some(to), cid, body);
}

/// GROUP_CHAT_MSG (13): store the object in group `gid`'s log and hand it
/// to every other member; only members may post. The sender's own thread.
pub fn group_chat(ctx: Ctx, me: Me, gid: i64, cid: Option<String>, obj: Map<String, Value>) {
    let Some(conv) = Conv::group(gid) else {
        return refuse(&ctx, cid.as_deref(), errno::NOT_FOUND, "no such group");
    };
    let body = stamp(obj, "uid", &me);
    submit(ctx, me, conv, None, cid, body);
}

/// Queues a post on its conversation's log writer, refusing it with
/// errno 12 when that writer's queue is full.
fn submit(ctx: Ctx, me: Me, conv: Conv, to: Option<i64>, cid: Option<String>, body: String) {
    let svc = ctx.svc.clone();
    let post = Post {
        ctx,
        me,
        conv,
        to,
        cid,
        body,
    };
    if let Err(post) = svc.log.submit(post) {
        refuse(
            &post.ctx,
            post.cid.as_deref(),
            errno::TOO_MANY,
            "the server is busy; send the message again later",
        );
    }
}

/// Answers a chat message that was not accepted: 28 with its cid, or the
/// error message 27 (`req` 9 or 13). Any thread.
pub fn refuse(ctx: &Ctx, cid: Option<&str>, errno: i64, errmsg: &str) {
    ctx.send(&reply::failure_for(Some(ctx.req), cid, errno, errmsg));
}

/// The members of `gid`, ascending; `None`: no such group. From the cache
/// on a single node; in cluster mode always from the shared store, since
/// members join and quit on every node and each node's cache sees only
/// its own changes. Blocks: a log writer or a worker only.
pub fn members(svc: &Service, store: &dyn Store, gid: i64) -> Result<Option<Members>, StoreError> {
    if svc.cluster().is_none() {
        if let Some(m) = svc.groups.get(gid) {
            return Ok(Some(m));
        }
    }
    let generation = svc.groups.generation(gid);
    let mut ids = store.group_member_ids(gid)?;
    if ids.is_empty() && store.group(gid)?.is_none() {
        return Ok(None);
    }
    if svc.cluster().is_none() {
        svc.groups.insert_loaded(gid, generation, ids.clone());
    }
    ids.sort_unstable();
    Ok(Some(Arc::new(ids)))
}

/// Puts the sender's identity into a chat object and encodes it for the
/// log: `from` (or `uid`) and `username` are the logged-in account's,
/// replacing whatever the client wrote, so that nobody can post under
/// another's name; `conv`, `seq` and `ts` are the server's to add.
fn stamp(mut obj: Map<String, Value>, id_field: &str, me: &Me) -> String {
    for field in ["conv", "seq", "ts"] {
        obj.remove(field);
    }
    obj.insert(id_field.to_owned(), me.uid.into());
    obj.insert("username".to_owned(), me.name.clone().into());
    Value::Object(obj).to_string()
}

/// The text stored in the legacy offline table: the encoded object without
/// its trailing newline. Any thread.
pub fn stored_text(bytes: &[u8]) -> String {
    let text = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    String::from_utf8_lossy(text).into_owned()
}

/// Cluster → here (subscriber thread): hands message `seq` of the
/// conversation with key `conv` to `to`, if `to` is on this node. `false`
/// when they are not (any more).
pub fn deliver_here(svc: &Arc<Service>, to: i64, conv: i64, seq: i64, bytes: &[u8]) -> bool {
    let Some(conv) = Conv::from_key(conv) else {
        log::warn!("cluster: a message for {to} names no conversation ({conv})");
        return true;
    };
    let d = Delivery {
        conv,
        seq,
        bytes: Some(bytes.to_vec()),
    };
    delivery::push(svc, to, d).is_none()
}

/// Cluster → here (publisher or subscriber thread): no node took the
/// message for `to`. Delivers it if `to` arrived here meanwhile; otherwise
/// nothing is needed, as the log keeps it for their next login.
pub fn deliver_if_here(svc: &Arc<Service>, to: i64, conv: i64, seq: i64, bytes: Vec<u8>) {
    let Some(conv) = Conv::from_key(conv) else {
        return;
    };
    let d = Delivery {
        conv,
        seq,
        bytes: Some(bytes),
    };
    let _ = delivery::push(svc, to, d);
}
