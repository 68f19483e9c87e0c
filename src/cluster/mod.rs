//! # Cluster mode: many nodes, one Redis between them
//!
//! Several `chat-server` processes ("nodes") share one MySQL store and one
//! Redis; nginx spreads the clients over them. A user is connected to one
//! node, and a message for a user on another node crosses Redis:
//!
//! ```text
//!                 clients ── nginx (stream, least_conn) ──┬──────────┐
//!                                                         ▼          ▼
//!   node a: I/O thread ─send_to_user─► publisher        node b: subscriber ─deliver─► connection of 7
//!                                      │ route cache: 7 → [b]        ▲
//!                                      ▼                             │ SUBSCRIBE chat:node:b
//!   Redis, hit:  PUBLISH chat:node:b <frame: this tick's messages for b> → 1
//!          miss: EVALSHA route(7, frame): HGETALL chat:user:7 = {b: 1}; EXISTS chat:alive:b;
//!                PUBLISH chat:node:b <frame> → 1; answers {1, "b"}, which fills the cache
//! ```
//!
//! A message to a user whose node this node's route cache knows
//! (`routes.rs`, kept by presence events) joins that node's batch: one
//! `PUBLISH` per destination node per publisher tick (`publisher/tick.rs`),
//! a frame of length-prefixed items (`envelope.rs`); a group post is one
//! item per node. Others go through the `route` script, whose answer fills
//! the cache. A stale route is safe: a login's claim is answered only
//! once every node has forgotten the user's route (the claim's presence
//! event and the barrier, `barrier.rs`), and a node that receives an item
//! for a user not there forwards it once through the script.
//!
//! Redis holds three things (named in `keys.rs`): who is on which
//! node, with how many sessions (`user:{uid}`, a hash node → count: with
//! `sessions_per_user` above 1 a user may be on several), which nodes are alive (`alive:{node}`, a key with a
//! TTL that the node's heartbeat refreshes), and one pub/sub channel per
//! node (`node:{node}`), besides three every node listens to (`catchup`;
//! `groups`, on which a node announces a change of a group's members
//! so that every node's membership cache forgets it; and `presence`, on
//! which the claim, release and set scripts announce a change of a user's
//! nodes so that every node's route cache forgets it). Routing, claiming a user and asking who is online
//! are each one Lua script (`scripts.rs`), so each decision is
//! atomic in Redis and costs no extra round trip.
//!
//! ## The server's side: [`LocalNode`] and [`Cluster`]
//!
//! The server implements [`LocalNode`] (deliver to a local connection, store
//! offline, list local users) and calls [`Cluster`]:
//!
//! | when | call | thread |
//! |---|---|---|
//! | login, after the local duplicate check | [`claim_then`](Cluster::claim_then) → refuse with errno 2 on `OnlineElsewhere` | worker (queues; the answer is a callback) |
//! | logout, disconnect | [`release`](Cluster::release) | any (queues) |
//! | chat to a user not in the local map | [`send_to_user`](Cluster::send_to_user) | I/O thread (queues) |
//! | group post, to the members not in the local map | [`send_to_users`](Cluster::send_to_users) | log writer (queues) |
//! | chat to a user here who may have sessions on other nodes too | [`send_to_other_nodes`](Cluster::send_to_other_nodes) | I/O thread (queues) |
//! | friend and member lists | [`is_online`](Cluster::is_online) for the users not local | worker (blocks, at most `ask_timeout`) |
//! | join, quit, dismissal of a group, before the ack | [`group_changed_then`](Cluster::group_changed_then) | worker (queues; the ack is a callback) |
//! | SIGTERM | [`shutdown`](Cluster::shutdown) | main (blocks) |
//!
//! No Redis call ever runs on an I/O thread: calls that do not wait for an
//! answer are queued to the publisher thread; the subscriber thread hands
//! messages to connections with `TcpConnection::send`, which only queues.
//!
//! | thread | connection | does | calls on the server |
//! |---|---|---|---|
//! | `cluster-pub` (`publisher.rs`) | commands | every call above, in queue order, batched | `store_offline`, `local_users` |
//! | `cluster-sub` (`subscriber.rs`) | subscribed | this node's channel → connections (a stale route's item forwarded); catch-up reports, group changes, presence events | `deliver`, `store_offline`, `subscribed`, `group_changed` |
//! | `cluster-beat` (`heartbeat.rs`) | commands | the alive key, every `liveness / 3` | — |
//!
//! ## Delivery guarantee
//!
//! Redis pub/sub is **at most once**: `PUBLISH` hands the message to the
//! subscribers connected at that instant and keeps nothing. Its reply, the
//! number of subscribers reached, is what the fallbacks build on. Every way
//! a message can miss its recipient that a node can *see* ends in offline
//! storage, from which the recipient gets it at the next login:
//!
//! | what happened | who sees it | then |
//! |---|---|---|
//! | the user is on no node (`user:{uid}` absent) | route script: `-1`, or a negative cached route | the sender's node stores it |
//! | the user's nodes are dead (their alive keys expired) | route script: `-2` | the sender's node stores it |
//! | the node is alive but not subscribed (restarting, reconnecting) | `PUBLISH` → `0` | the sender's node stores it (and forgets the cached routes naming the node) |
//! | the user left the node after the lookup, or the cached route was stale | `deliver` → `false` | the receiving node forwards it once through the script; stores it if nobody takes it |
//! | Redis is down, or the connection broke during the batch | no reply | the sender's node stores it (maybe a duplicate) |
//!
//! What remains are the holes no node sees, where a message is lost:
//!
//! * the receiving node crashes after `PUBLISH` counted it and before the
//!   subscriber handed it on (in Redis's output buffer, in the socket, in
//!   the connection's output buffer) — the same loss as a single node
//!   crashing with unsent output;
//! * Redis drops a subscriber that falls behind by more than its pub/sub
//!   output limit (default 32 MB, or 8 MB for 60 s); the subscriber only
//!   queues, so this takes a node stalled for seconds under load.
//!
//! (The server's message log closes these holes too: what a node does not
//! deliver, the recipient's next message of the conversation, the node's
//! reconcile or the next login fetches from the log.) A node paused longer
//! than `liveness` (`SIGSTOP`, swap) is dead to the others while its users
//! are still connected; when it runs again its heartbeat finds its alive
//! key gone, and the re-sync catches its users up.
//!
//! **Order.** Messages from one sender to one recipient arrive in the order
//! sent while both stay where they are: one I/O thread queues them, one
//! publisher thread sends them in that order (within a tick all of a
//! recipient's messages take one path, the batch or the script:
//! `publisher/tick.rs`), and Redis delivers a channel's messages in
//! publish order. The order can break when the
//! recipient moves (logs out and in on another node) while messages are in
//! flight, and across an outage; the server's delivery cursors restore the
//! order within each conversation (a newer message fills the gap from the
//! log first).
//!
//! ## A node that dies
//!
//! A node killed with `SIGKILL` leaves its claims and its alive key. At once
//! its subscription is gone, so messages to its users are stored
//! (`PUBLISH` → 0); at most `liveness` later (default 10 s) its alive key
//! expires, `is_online` reports its users offline and a login elsewhere
//! takes their claim over. When it restarts with the same node id, its
//! first connection syncs presence (`presence.rs`): it releases every
//! claim its previous process left (none of its users stays "online").
//!
//! ## When Redis is down
//!
//! Each node keeps serving its own users. Every call degrades at once, with
//! nothing logged per message: `send_to_user` stores offline, `claim` says
//! `Unavailable` (the server logs the user in locally, unconfirmed),
//! `is_online` says `false`. A Redis that *hangs* instead costs each thread
//! one `io_timeout` per attempt, never a worker: a claim is answered through
//! a callback, and `is_online` waits at most `ask_timeout`. Each thread
//! reconnects with back-off (100 ms doubling to 5 s by default) and logs
//! once when Redis goes and once when it comes back. On
//! reconnection the subscriber subscribes again, and the publisher loads
//! the scripts and syncs presence from [`LocalNode::local_users`] —
//! claiming users who logged in meanwhile, releasing those who left —
//! before it sends anything else; users it claims only then are caught up
//! ([`LocalNode::catch_up`]). If it had to store messages meanwhile, it says
//! so on the catch-up channel, and the other nodes — whose subscriptions
//! may have survived a hang unnoticed — catch their users up from the log
//! ([`LocalNode::subscribed`]). Two nodes that both let the same user log
//! in during the outage: the first to hold the claim keeps it, and the
//! other, when its claim still fails at the recheck (the `presence.rs`
//! docs), ends its session ([`LocalNode::lost_claim`]).
//!
//! ## Files
//!
//! | file | what |
//! |---|---|
//! | `handle.rs` | [`Cluster`]: start, the calls, shutdown |
//! | `config.rs` | [`ClusterConfig`], [`ClusterError`], [`default_node_id`] |
//! | `publisher.rs` | the publisher thread: queue, batches, degradation |
//! | `publisher/call.rs` | a call of the queue: its command, its degraded answer |
//! | `publisher/tick.rs` | one tick: cached routes into per-node frames, misses through the script, claims' barriers |
//! | `routes.rs` | the route cache: uid → nodes, generations, bounds |
//! | `subscriber.rs` | the subscriber thread |
//! | `heartbeat.rs` | the heartbeat thread |
//! | `presence.rs` | reconciling Redis's claims with the local users |
//! | `scripts.rs` | the Lua scripts |
//! | `keys.rs` | key and channel names |
//! | `envelope.rs` | the frame on a node's channel: a batch of items |
//! | `link.rs` | connections with timeouts, back-off, health logging |
//! | `shared.rs` | state shared by the threads; the beat command the heartbeat and the publisher both send |
//! | `barrier.rs` | a group change's ack, and a claim's answer, wait for every other node's confirmation |
//! | `protocol.rs` | the inter-node protocol's version, in each heartbeat token; the start's check that every live node speaks it |
//!
//! Imports point one way: `handle.rs` starts the threads; of the threads'
//! modules only `heartbeat.rs` and `subscriber.rs` import another
//! (`publisher.rs`, for the queue they ask for a re-sync or a group
//! change's confirmation on); everything they share is in
//! `shared.rs`, `link.rs`, `scripts.rs`, `keys.rs`, `routes.rs`,
//! `envelope.rs` and `protocol.rs`, which import no thread's module.

mod barrier;
mod config;
mod envelope;
mod handle;
mod heartbeat;
mod keys;
mod link;
mod presence;
mod protocol;
mod publisher;
mod routes;
mod scripts;
mod shared;
mod subscriber;
mod throttle;

pub use config::{
    default_node_id, ClusterConfig, ClusterError, MAX_QUEUED_PUBLISHES, ROUTE_CACHE_ENTRIES,
};
pub use handle::Cluster;
pub use protocol::PROTOCOL;
pub use throttle::SharedThrottle;

/// What the cluster needs from the server: implemented by the server,
/// called by the cluster's threads.
///
/// No method may block for long (they run on the cluster's threads, whose
/// delay delays every message of the node), and none may call
/// [`Cluster::claim`] or [`Cluster::is_online`]: the publisher thread that
/// would answer is the one waiting. Queuing work elsewhere (a
/// `TcpConnection::send`, a job on the worker pool) is the intended use.
pub trait LocalNode: Send + Sync + 'static {
    /// Hands `payload` to the local connection of `uid`, as is. Returns
    /// `false` when `uid` is not connected here (it left after the sender
    /// looked it up); the cluster then calls [`store_offline`](Self::store_offline).
    /// A user still logging in counts as here (the server buffers).
    ///
    /// Called on the subscriber thread.
    fn deliver(&self, uid: i64, payload: &[u8]) -> bool;

    /// [`deliver`](Self::deliver) of one payload to each of `uids` (a
    /// group post's members on this node, sent as one item); returns those
    /// not here, in order. A node can build what it delivers once for
    /// all of them; by default it is delivered to each in turn.
    ///
    /// Called on the subscriber thread.
    fn deliver_all(&self, uids: &[i64], payload: &[u8]) -> Vec<i64> {
        uids.iter()
            .copied()
            .filter(|&uid| !self.deliver(uid, payload))
            .collect()
    }

    /// No node took `payload` (the bytes given to [`Cluster::send_to_user`])
    /// for `uid`: the server keeps it for the user's next login (it has it
    /// in its message log already), or delivers it if the user arrived
    /// here meanwhile.
    ///
    /// Called on the publisher or the subscriber thread; after
    /// [`Cluster::shutdown`], on the thread calling `send_to_user`.
    fn store_offline(&self, uid: i64, payload: Vec<u8>);

    /// Every user logged in (or logging in) on this node, each with their
    /// number of sessions here (at least 1), to republish presence after
    /// Redis returns and to clear stale claims at start.
    ///
    /// Called on the publisher thread.
    fn local_users(&self) -> Vec<(i64, usize)>;

    /// Messages for this node's users may have reached nobody: the
    /// subscriber has (re)subscribed to this node's channel (what was
    /// published while it was away reached nobody here), another node
    /// reports on the catch-up channel that its link was down while it had
    /// messages to route, or this node's alive key had expired. The server
    /// reconciles its connected users with the shared message log.
    ///
    /// Called on the subscriber thread (after every successful subscribe,
    /// and for each catch-up report of another node) or on the publisher
    /// thread (after a re-sync for an expired alive key).
    fn subscribed(&self) {}

    /// The members of group `gid` changed on another node (a join, a quit,
    /// a dismissal): the server drops the group from its membership cache.
    /// (After a (re)subscribe and a catch-up report, when changes may have
    /// been missed, [`subscribed`](Self::subscribed) is called instead.)
    ///
    /// Called on the subscriber thread.
    fn group_changed(&self, gid: i64) {
        let _ = gid;
    }

    /// These users became this node's in Redis only now (a presence sync
    /// claimed them after their login could not): messages routed to them
    /// before found no holder, so the server catches each of them up from
    /// the log.
    ///
    /// Called on the publisher thread.
    fn catch_up(&self, uids: &[i64]) {
        let _ = uids;
    }

    /// Another live node, `holder`, holds `uid`, whom this node let log in
    /// while Redis could not be asked, and still held them when the claim
    /// was tried again ([`ClusterConfig`]'s recheck delay later): messages
    /// for `uid` go to `holder`, so the server ends its session here
    /// (errno 2) rather than keep one that receives nothing from other
    /// nodes.
    ///
    /// Called on the publisher thread.
    fn lost_claim(&self, uid: i64, holder: &str) {
        let _ = (uid, holder);
    }
}

/// The answer to [`Cluster::claim`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The user is this node's now (one more of their sessions is counted
    /// here): log them in.
    Claimed,
    /// The user is logged in on the live node named here (with several
    /// sessions per user: the live nodes hold all of them; this node's own
    /// id when it holds them all): refuse the login (errno 2, "already
    /// logged in").
    OnlineElsewhere(String),
    /// Redis cannot be asked: log the user in locally; presence is
    /// published when Redis returns.
    Unavailable,
}

/// Counters of a node's cluster traffic since [`Cluster::start`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ClusterStats {
    /// Messages published to a node that received them.
    pub published: u64,
    /// Messages this node stored instead of publishing (no live holder,
    /// no subscriber, Redis down).
    pub stored_by_sender: u64,
    /// Messages from the channel handed to a local connection.
    pub delivered: u64,
    /// Messages from the channel whose recipient had left: stored.
    pub stored_by_receiver: u64,
    /// Reconnections of the publisher to Redis after a loss.
    pub reconnects: u64,
    /// Messages not queued for Redis because the publisher's queue was
    /// full ([`ClusterConfig::max_queued_publishes`]); each was handled as
    /// if Redis were down.
    pub publish_overflows: u64,
    /// Recipients routed from the route cache (no script of their own).
    pub route_hits: u64,
    /// Recipients routed through the `route` script (not cached).
    pub route_misses: u64,
    /// Items this node received for a user not here and re-routed once
    /// through the script (a stale cached route at the sender).
    pub forwarded: u64,
    /// `PUBLISH`es of a batch frame to one node that reached it (each
    /// carries every cached message of one publisher tick for that node).
    pub batch_publishes: u64,
}
