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
//! The cluster's way in is [`super::cluster_node`].

use super::msglog::{self, Post};
use super::{Ctx, Incoming, Me};
use crate::model::Conv;
use crate::protocol::errno;

/// ONE_CHAT_MSG (9): store the object in the log of the conversation with
/// `to` and hand it on. Failures come back as error messages (27) with
/// `req: 9`, or as 28 when the message carries a `cid`. The sender's own
/// thread.
pub fn one_chat(ctx: Ctx, me: Me, to: i64, cid: Option<String>, obj: Incoming<'_>) {
    let Some(conv) = Conv::direct(me.uid, to) else {
        return msglog::refuse(
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
pub fn group_chat(ctx: Ctx, me: Me, gid: i64, cid: Option<String>, obj: Incoming<'_>) {
    let Some(conv) = Conv::group(gid) else {
        return msglog::refuse(&ctx, cid.as_deref(), errno::NOT_FOUND, "no such group");
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
        msglog::refuse(
            &post.ctx,
            post.cid.as_deref(),
            errno::TOO_MANY,
            "the server is busy; send the message again later",
        );
    }
}

/// Puts the sender's identity into a chat object and encodes it for the
/// log: `from` (or `uid`) and `username` are the logged-in account's,
/// replacing whatever the client wrote, so that nobody can post under
/// another's name; `conv`, `seq` and `ts` are the server's to add. The
/// same bytes whether the chat came as an object or on the fast path
/// ([`crate::protocol::chat_frame`]).
fn stamp(obj: Incoming<'_>, id_field: &str, me: &Me) -> String {
    obj.stamped(id_field, me)
}

/// The text stored in the legacy offline table: the encoded object without
/// its trailing newline. Any thread.
pub fn stored_text(bytes: &[u8]) -> String {
    let text = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    String::from_utf8_lossy(text).into_owned()
}
