//! The subscriber thread: receives this node's channel and hands each
//! message to its recipient's connection.
//!
//! It holds a dedicated connection in subscribe mode (a connection that
//! has subscribed can do nothing else). The connection's read timeout is
//! short ([`POLL`]), so that the thread notices a shutdown without any
//! message arriving; a timeout is not an error, and a message split across
//! two reads is resumed by the parser, which keeps what it has read.
//!
//! For each envelope it calls [`LocalNode::deliver`](super::LocalNode::deliver),
//! which queues the bytes on the connection (`TcpConnection::send` is safe
//! from any thread and never blocks). When the recipient left this node
//! after the sender looked it up, `deliver` returns `false` and the
//! message goes to [`LocalNode::store_offline`](super::LocalNode::store_offline)
//! instead: that closes the "left meanwhile" hole of pub/sub.
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
use super::envelope;
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
    sub.subscribe(shared.keys.channel())?;
    sub.subscribe(&catch_up)?;
    sub.subscribe(&groups)?;
    sub.set_read_timeout(Some(POLL))?;
    shared.subscribed.store(true, Ordering::Release);
    health.up();
    backoff.reset();
    shared.node.subscribed();
    while !shared.stopping() {
        match sub.get_message() {
            Ok(msg) if msg.get_channel_name() == catch_up => caught_up(shared, &msg),
            Ok(msg) if msg.get_channel_name() == groups => group_changed(shared, ops, &msg),
            Ok(msg) => handle(shared, msg.get_payload_bytes()),
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

/// Delivers one envelope, or stores it when its recipient is not here.
fn handle(shared: &Shared, bytes: &[u8]) {
    let Some((uid, payload)) = envelope::decode(bytes) else {
        log::warn!(
            "cluster: dropped a {}-byte message on {} that is not an envelope",
            bytes.len(),
            shared.keys.channel()
        );
        return;
    };
    if uid == SEEN_UID {
        // Another node applied one of our group changes.
        if let Ok(token) = <[u8; 8]>::try_from(payload) {
            shared.barriers.seen(u64::from_be_bytes(token));
        }
        return;
    }
    if shared.node.deliver(uid, payload) {
        Counters::bump(&shared.counters.delivered);
    } else {
        Counters::bump(&shared.counters.stored_by_receiver);
        shared.node.store_offline(uid, payload.to_vec());
    }
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
