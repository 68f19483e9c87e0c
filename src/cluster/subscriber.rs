//! The subscriber thread: receives this node's channel and hands each
//! message to its recipient's connection.
//!
//! It holds a dedicated connection in subscribe mode (a connection that
//! has subscribed can do nothing else). The connection's read timeout is
//! short ([`POLL`]), so that the thread notices a shutdown without any
//! message arriving; a timeout is not an error, and a message split across
//! two reads is resumed by the parser, which keeps what it has read.
//!
//! A message on the channel is a frame (`envelope.rs`): a batch of items,
//! one publisher tick's worth for this node. For each recipient of each
//! item it calls [`LocalNode::deliver`](super::LocalNode::deliver), which
//! queues the bytes on the connection (`TcpConnection::send` is safe from
//! any thread and never blocks). When the recipient is not here — they
//! left after the sender looked them up, or the sender's cached route
//! was stale — `deliver` returns `false` and the item is **forwarded**
//! once: queued to this node's publisher as a publish through the
//! `route` script that skips this node and never uses the route cache;
//! a forwarded item (kind `FINAL` on the wire) is never forwarded again,
//! so nothing loops. What finds nobody goes to
//! [`LocalNode::store_offline`](super::LocalNode::store_offline): that
//! closes the "left meanwhile" hole of pub/sub.
//!
//! It also listens on `{prefix}:presence`: each event (a claim, release
//! or sync changed a user's hash) makes the route cache forget the user,
//! and a claim's event is then confirmed to the claiming node, whose
//! login waits for every node's confirmation (`barrier.rs`). After every
//! (re)subscribe and catch-up report the whole route cache is cleared:
//! events may have been missed.
//!
//! When the connection fails the thread reconnects with back-off and
//! subscribes again. Messages published while it was away had no
//! subscriber: their publishers saw `0` receivers, and after subscribing
//! again the thread calls [`LocalNode::subscribed`](super::LocalNode::subscribed),
//! whose server catches its connected users up from the message log.
//!
//! A Redis that *hangs* (`SIGSTOP`, a long `DEBUG SLEEP`, a stalled host)
//! may leave this connection open and subscribed throughout: the thread
//! then sees only read timeouts and never resubscribes, while the senders'
//! publishers, whose commands timed out, stored what they had for this
//! node. So the thread also listens on the cluster's catch-up channel
//! (`{prefix}:catchup`), where a publisher whose link returns says that it
//! could not route messages; for each such report from another node it
//! calls `subscribed` too.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::{Connection, RedisResult};

use crossbeam_channel::Sender;

use super::barrier::SEEN_UID;
use super::envelope::{self, Item};
use super::link::{self, Backoff, Health};
use super::publisher::{Call, Op};
use super::shared::{Counters, Shared};

/// Read timeout while waiting for messages: how quickly a shutdown is seen.
pub(crate) const POLL: Duration = Duration::from_millis(200);

/// The thread's body: until the cluster stops.
pub(crate) fn run(shared: Arc<Shared>, ops: Sender<Op>) {
    let cfg = &shared.cfg;
    let mut backoff = Backoff::new(cfg.reconnect_min, cfg.reconnect_max);
    let mut health = Health::new(shared.keys.node_id(), "subscriber");
    while !shared.stopping() {
        let result = link::connect(&shared.client, cfg.io_timeout, None)
            .and_then(|mut con| listen(&shared, &ops, &mut con, &mut health, &mut backoff));
        shared.subscribed.store(false, Ordering::Release);
        // Unsubscribed: presence events are missed from now on, and the
        // other nodes' claims no longer wait for this node.
        shared.routes.clear();
        if let Err(e) = result {
            health.down(&e);
        }
        nap(&shared, backoff.next_delay());
    }
}

/// Subscribes and delivers until the connection fails or the cluster stops.
fn listen(
    shared: &Shared,
    ops: &Sender<Op>,
    con: &mut Connection,
    health: &mut Health,
    backoff: &mut Backoff,
) -> RedisResult<()> {
    let mut sub = con.as_pubsub();
    let catch_up = shared.keys.catch_up_channel();
    let groups = shared.keys.groups_channel();
    let presence = shared.keys.presence_channel();
    sub.subscribe(shared.keys.channel())?;
    sub.subscribe(&catch_up)?;
    sub.subscribe(&groups)?;
    sub.subscribe(&presence)?;
    sub.set_read_timeout(Some(POLL))?;
    // Presence events may have been missed while not subscribed.
    shared.routes.clear();
    shared.subscribed.store(true, Ordering::Release);
    health.up();
    backoff.reset();
    shared.node.subscribed();
    while !shared.stopping() {
        match sub.get_message() {
            Ok(msg) if msg.get_channel_name() == presence => presence_changed(shared, ops, &msg),
            Ok(msg) if msg.get_channel_name() == catch_up => caught_up(shared, &msg),
            Ok(msg) if msg.get_channel_name() == groups => group_changed(shared, ops, &msg),
            Ok(msg) => handle(shared, ops, msg.get_payload_bytes()),
            Err(e) if e.is_timeout() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Another node (its id is the payload) could not route messages while its
/// link was down: catch the local users up from the log.
fn caught_up(shared: &Shared, msg: &redis::Msg) {
    if msg.get_payload_bytes() == shared.keys.node_id().as_bytes() {
        return; // ours: our own users got their messages locally
    }
    shared.routes.clear(); // its presence changes may not have been told
    log::info!(
        "cluster: node {}: node {} could not route messages while its link was down",
        shared.keys.node_id(),
        String::from_utf8_lossy(msg.get_payload_bytes())
    );
    shared.node.subscribed();
}

/// A group's members changed on another node (`"{gid} {node} {token}"`):
/// forget it, then confirm to that node (through the publisher), whose ack
/// waits for it.
fn group_changed(shared: &Shared, ops: &Sender<Op>, msg: &redis::Msg) {
    let text = String::from_utf8_lossy(msg.get_payload_bytes());
    let mut words = text.split(' ');
    let gid = words.next().and_then(|g| g.parse::<i64>().ok());
    let (node, token) = (words.next(), words.next().and_then(|t| t.parse().ok()));
    match (gid, node, token) {
        (Some(_), Some(node), _) if node == shared.keys.node_id() => {} // ours: applied already
        (Some(gid), Some(node), Some(token)) => {
            shared.node.group_changed(gid);
            let node = node.to_owned();
            let _ = ops.send(Op::Call(Call::Seen { node, token }));
        }
        _ => log::warn!("cluster: a group change that names no group: {text:?}"),
    }
}

/// A user's presence changed (`"{uid} {node} {token}"`, from the claim,
/// release and set scripts): forget their route, then confirm a claim's
/// token — to our own barrier directly, to another node through the
/// publisher — whose login waits for it.
fn presence_changed(shared: &Shared, ops: &Sender<Op>, msg: &redis::Msg) {
    let text = String::from_utf8_lossy(msg.get_payload_bytes());
    let mut words = text.split(' ');
    let Some(uid) = words.next().and_then(|u| u.parse::<i64>().ok()) else {
        log::warn!("cluster: a presence event that names no user: {text:?}");
        return;
    };
    shared.routes.forget(uid);
    let (node, token) = (words.next(), words.next().and_then(|t| t.parse().ok()));
    match (node, token) {
        (Some(node), Some(token)) if node == shared.keys.node_id() => shared.barriers.seen(token),
        (Some(node), Some(token)) => {
            let node = node.to_owned();
            let _ = ops.send(Op::Call(Call::Seen { node, token }));
        }
        _ => {} // a release or a sync: nobody waits
    }
}

/// Delivers each item of a frame; what is not for a user here is
/// forwarded once (`forward`) or stored.
fn handle(shared: &Shared, ops: &Sender<Op>, frame: &[u8]) {
    for item in envelope::items(frame) {
        match item {
            Ok(Item::User {
                uid: SEEN_UID,
                payload,
                ..
            }) => {
                // Another node applied one of our changes.
                if let Ok(token) = <[u8; 8]>::try_from(payload) {
                    shared.barriers.seen(u64::from_be_bytes(token));
                }
            }
            Ok(Item::User {
                uid,
                payload,
                forward,
            }) => deliver(shared, ops, uid, payload, forward),
            Ok(Item::Group { uids, payload }) => {
                let uids: Vec<i64> = envelope::group_uids(uids).collect();
                let missed = shared.node.deliver_all(&uids, payload);
                let here = (uids.len() - missed.len()) as u64;
                shared.counters.delivered.fetch_add(here, Ordering::Relaxed);
                for uid in missed {
                    not_here(shared, ops, uid, payload, true);
                }
            }
            Err(()) => log::warn!(
                "cluster: dropped the rest of a {}-byte message on {} that is not a frame",
                frame.len(),
                shared.keys.channel()
            ),
        }
    }
}

/// Delivers one message; when its recipient is not here, [`not_here`].
fn deliver(shared: &Shared, ops: &Sender<Op>, uid: i64, payload: &[u8], forward: bool) {
    if shared.node.deliver(uid, payload) {
        Counters::bump(&shared.counters.delivered);
        return;
    }
    not_here(shared, ops, uid, payload, forward);
}

/// A message whose recipient is not here: forwards it through the `route`
/// script (the sender's cached route was stale), or stores it when it may
/// not be forwarded (a forward already, a copy for a user's other nodes)
/// or the publisher's queue is full.
fn not_here(shared: &Shared, ops: &Sender<Op>, uid: i64, payload: &[u8], forward: bool) {
    if forward && shared.take_publish_room() {
        let call = Call::Publish {
            uid,
            payload: payload.to_vec(),
            others: false,
            forwarded: true,
        };
        match ops.send(Op::Call(call)) {
            Ok(()) => return,
            Err(_) => {
                // The publisher has stopped.
                shared.queued_publishes.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }
    Counters::bump(&shared.counters.stored_by_receiver);
    shared.node.store_offline(uid, payload.to_vec());
}

/// Sleeps `d`, waking early when the cluster stops.
fn nap(shared: &Shared, d: Duration) {
    let end = Instant::now() + d;
    while !shared.stopping() {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
}
