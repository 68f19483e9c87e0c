//! `Cluster`: the handle the server holds, and the only way in.
//!
//! It owns the three threads and the queue to the publisher. Every method
//! is safe to call from any thread; the docs of each say whether it
//! *blocks* (call it on a worker) or only *queues* (fine on an I/O thread).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{bounded, unbounded, Sender};
use parking_lot::{Mutex, RwLock};

use super::barrier::{Barriers, Done};
use super::keys::Keys;
use super::publisher::{Call, ClaimReply, Op, Publisher};
use super::routes::{self, Routes};
use super::shared::{self, Counters, Shared};
use super::{heartbeat, protocol, subscriber};
use super::{Claim, ClusterConfig, ClusterError, ClusterStats, LocalNode};

/// A node's membership in the cluster. See the [module docs](super).
pub struct Cluster {
    shared: Arc<Shared>,
    /// The publisher's queue; `None` once stopped, so that nothing can be
    /// queued behind the final `Stop` (where it would be lost): calls after
    /// that are degraded on the caller's thread.
    ops: RwLock<Option<Sender<Op>>>,
    /// Dropping it wakes and stops the heartbeat.
    beat_stop: Mutex<Option<Sender<()>>>,
    threads: Mutex<Threads>,
}

#[derive(Default)]
struct Threads {
    publisher: Option<JoinHandle<()>>,
    subscriber: Option<JoinHandle<()>>,
    heartbeat: Option<JoinHandle<()>>,
}

impl Cluster {
    /// Joins the cluster: starts the publisher, subscriber and heartbeat
    /// threads and returns. Redis need not be up: the threads
    /// connect when it is, and meanwhile every call degrades (see the
    /// [module docs](super#when-redis-is-down)). The first thing the
    /// publisher does on its first connection is clear the claims a
    /// previous process with this node id left behind. Before that, if
    /// Redis answers, it checks that every other live node speaks this
    /// build's inter-node protocol (`protocol.rs`): **blocks** for that
    /// read (one `SCAN` of Redis's keys); call it from the starting thread.
    ///
    /// # Errors
    /// A bad setting or Redis URL, a node of another protocol alive under
    /// the key prefix, or a thread that cannot be spawned.
    pub fn start(
        cfg: ClusterConfig,
        node: Arc<dyn LocalNode>,
    ) -> Result<Arc<Cluster>, ClusterError> {
        cfg.validate()?;
        let client = redis::Client::open(cfg.redis_url.as_str()).map_err(ClusterError::Url)?;
        let keys = Keys::new(&cfg.key_prefix, &cfg.node_id);
        protocol::check(&client, &keys, cfg.io_timeout)?;
        let routes = Routes::new(cfg.route_cache_entries);
        let shared = Arc::new(Shared {
            keys,
            cfg,
            client,
            node,
            token: shared::process_token(),
            stop: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            connected: AtomicBool::new(false),
            subscribed: AtomicBool::new(false),
            counters: Counters::default(),
            barriers: Barriers::default(),
            routes,
            queued_publishes: AtomicUsize::new(0),
            overflowed: AtomicBool::new(false),
        });
        let (ops_tx, ops_rx) = unbounded();
        let (stop_tx, stop_rx) = bounded::<()>(0);
        let cluster = Arc::new(Cluster {
            shared: shared.clone(),
            ops: RwLock::new(Some(ops_tx.clone())),
            beat_stop: Mutex::new(Some(stop_tx)),
            threads: Mutex::new(Threads::default()),
        });
        let spawned = (|| {
            let mut t = cluster.threads.lock();
            let publisher = Publisher::new(shared.clone(), ops_rx);
            t.publisher = Some(spawn("cluster-pub", move || publisher.run())?);
            let s = shared.clone();
            let ops = ops_tx.clone();
            t.subscriber = Some(spawn("cluster-sub", move || subscriber::run(s, ops))?);
            let s = shared.clone();
            t.heartbeat = Some(spawn("cluster-beat", move || {
                heartbeat::run(s, ops_tx, stop_rx)
            })?);
            Ok(())
        })();
        match spawned {
            Ok(()) => Ok(cluster),
            Err(e) => {
                cluster.abort();
                Err(ClusterError::Spawn(e))
            }
        }
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        self.shared.keys.node_id()
    }

    /// Claims `uid` for this node at login, and calls `done` with the
    /// answer. Only **queues**: no thread waits for Redis. `done` is
    /// called exactly once: with Redis's answer, on the publisher or the
    /// subscriber thread, once every node subscribed has confirmed that it
    /// forgot the user's cached route (the claim's presence event, see
    /// "Route cache" in ARCHITECTURE.md; at most `io_timeout` after the
    /// claim's reply when a node never confirms), or at once on this
    /// thread with [`Claim::Unavailable`] while the publisher has no
    /// connection. It must only queue (submit the rest of the login to a
    /// worker).
    ///
    /// * [`Claim::Claimed`]: the user is now this node's, also when this
    ///   node already held the claim, or when the holder was a dead node.
    /// * [`Claim::OnlineElsewhere`]: a live node holds the user; refuse the
    ///   login (errno 2).
    /// * [`Claim::Unavailable`]: Redis cannot be asked; let the user log in
    ///   here. The login is *unconfirmed*: the presence sync claims it
    ///   when Redis returns, catches the user up from the log, and if
    ///   another live node holds the user then (and still after
    ///   [`ClusterConfig`]'s recheck delay), ends the session here through
    ///   [`LocalNode::lost_claim`].
    ///
    /// Duplicate logins *on this node* are not seen here (the claim is
    /// already this node's): the server checks its own map first.
    pub fn claim_then(&self, uid: i64, done: impl FnOnce(Claim) + Send + 'static) {
        let reply = ClaimReply::new(done);
        if !self.is_connected() {
            return reply.send(Claim::Unavailable);
        }
        let _ = self.enqueue(Call::Claim { uid, reply });
    }

    /// [`claim_then`](Self::claim_then), waiting for the answer: **blocks**
    /// (at most four `io_timeout`s). For tests and tools; the server's
    /// login uses `claim_then`, which holds no worker.
    pub fn claim(&self, uid: i64) -> Claim {
        let (tx, rx) = bounded(1);
        self.claim_then(uid, move |c| {
            let _ = tx.send(c);
        });
        rx.recv_timeout(self.shared.cfg.answer_timeout())
            .unwrap_or(Claim::Unavailable)
    }

    /// Gives up one of this node's sessions of `uid` (logout, disconnect):
    /// with one session per user, the claim. Only **queues**: safe on an
    /// I/O thread. Applied after every call queued before it, so a later
    /// `claim` of the same user on this node is not undone by it. Another
    /// node's sessions of the user are not touched.
    pub fn release(&self, uid: i64) {
        let _ = self.enqueue(Call::Release { uid, done: None });
    }

    /// [`release`](Self::release), then `done`, once Redis has applied the
    /// release: a login of the user on another node is no longer refused
    /// because of this session (a logout's answer waits for it). When
    /// Redis cannot be asked, `done` runs at once (the next presence sync
    /// releases the user). Runs on the publisher thread, or on the
    /// caller's: it must only queue or send.
    pub fn release_then(&self, uid: i64, done: impl FnOnce() + Send + 'static) {
        let done = Some(Done::new(done));
        let _ = self.enqueue(Call::Release { uid, done });
    }

    /// Sends `payload` (the exact bytes for the recipient's connection) to
    /// `uid` on whichever node holds the user. Only **queues**: safe on an
    /// I/O thread. Messages queued by one thread leave in order. When the
    /// user is on no live node, or the node does not receive it, or Redis
    /// is down, the payload goes to [`LocalNode::store_offline`] — on the
    /// publisher thread, or on this thread once the cluster has stopped.
    pub fn send_to_user(&self, uid: i64, payload: Vec<u8>) {
        let _ = self.enqueue(Call::Publish {
            uid,
            payload,
            others: false,
            forwarded: false,
        });
    }

    /// [`send_to_user`](Self::send_to_user) for each of `uids` with one
    /// `payload` (a group post to its members not on this node): one call
    /// in the queue, and one item per destination node on the wire for the
    /// users whose route is cached, each node then delivering to its
    /// members. Only **queues**.
    pub fn send_to_users(&self, uids: Vec<i64>, payload: Vec<u8>) {
        match *uids.as_slice() {
            [] => {}
            [uid] => self.send_to_user(uid, payload),
            _ => {
                let _ = self.enqueue(Call::PublishMany { uids, payload });
            }
        }
    }

    /// Tells every other node that the members of group `gid` changed here
    /// (they drop it from their membership caches), then calls `done`: once
    /// every node subscribed has confirmed that it forgot the group
    /// (`barrier.rs`), at most `io_timeout` after it was asked, or as
    /// soon as it is clear that the notice cannot be sent (no link: the
    /// publisher then says so on the catch-up channel when the link
    /// returns, and every node forgets all its groups). Only **queues**;
    /// `done` runs on a cluster thread and must only queue too.
    pub fn group_changed_then(&self, gid: i64, done: impl FnOnce() + Send + 'static) {
        let deadline = std::time::Instant::now() + self.shared.cfg.io_timeout;
        let token = self.shared.barriers.register(Done::new(done), deadline);
        let _ = self.enqueue(Call::Group { gid, token });
    }

    /// As [`send_to_user`](Self::send_to_user), to the nodes *other than
    /// this one* that hold sessions of `uid` (several sessions per user:
    /// this node has delivered to its own already). Nothing happens when
    /// there are none: no offline storage. Only **queues**.
    pub fn send_to_other_nodes(&self, uid: i64, payload: Vec<u8>) {
        let _ = self.enqueue(Call::Publish {
            uid,
            payload,
            others: true,
            forwarded: false,
        });
    }

    /// Puts a route in this node's cache as if the `route` script had
    /// found `uid` on `nodes`: a test's way to make a route stale on
    /// purpose. Not for the server.
    #[doc(hidden)]
    pub fn debug_set_route(&self, uid: i64, nodes: &[&str]) {
        let r = &self.shared.routes;
        r.fill(uid, r.generation(uid), routes::nodes(nodes));
    }

    /// Which of `uids` are logged in on a live node, this one included,
    /// as Redis knows it. **Blocks**, at most [`ClusterConfig::ask_timeout`]
    /// (500 ms by default): call it on a worker. When Redis cannot be asked
    /// — the publisher has no connection (answered at once), or no answer
    /// within the timeout (a hung Redis) — every answer is `false`, so
    /// combine the result with the server's own map of local users.
    pub fn is_online(&self, uids: &[i64]) -> Vec<bool> {
        if uids.is_empty() {
            return Vec::new();
        }
        if !self.is_connected() {
            return vec![false; uids.len()];
        }
        let (tx, rx) = bounded(1);
        let call = Call::Online {
            uids: uids.to_vec(),
            reply: tx,
        };
        if self.enqueue(call).is_err() {
            return vec![false; uids.len()];
        }
        rx.recv_timeout(self.shared.cfg.ask_timeout)
            .unwrap_or_else(|_| vec![false; uids.len()])
    }

    /// `true` while the publisher has a working Redis connection (with
    /// presence synced); messages are then routed, not stored.
    pub fn is_connected(&self) -> bool {
        self.shared.connected.load(Ordering::Acquire)
    }

    /// `true` while the subscriber listens on this node's channel.
    pub fn is_subscribed(&self) -> bool {
        self.shared.subscribed.load(Ordering::Acquire)
    }

    /// Counters since start.
    pub fn stats(&self) -> ClusterStats {
        self.shared.counters.snapshot()
    }

    /// Leaves the cluster: stops the heartbeat, lets the publisher finish
    /// what is queued, releases every claim of this node and deletes its
    /// alive key, then stops the subscriber. **Blocks** until the threads
    /// have ended (about `io_timeout` at worst per step). Idempotent; also
    /// run on drop.
    pub fn shutdown(&self) {
        self.stop(true);
    }

    /// Simulates a crash, for tests: the threads end at once, closing their
    /// connections, and nothing is cleaned up — the claims and the alive
    /// key stay in Redis until the key expires, as after `SIGKILL`. Queued
    /// calls are dropped. Blocks until the threads have ended.
    pub fn abort(&self) {
        self.shared.abort.store(true, Ordering::Release);
        self.stop(false);
    }

    fn stop(&self, cleanup: bool) {
        drop(self.beat_stop.lock().take());
        let mut t = self.threads.lock();
        join(t.heartbeat.take());
        if let Some(tx) = self.ops.write().take() {
            let _ = tx.send(Op::Stop { cleanup });
        }
        join(t.publisher.take());
        self.shared.stop.store(true, Ordering::Release);
        join(t.subscriber.take());
    }

    /// Queues a call; after a stop, or for a publish that finds the queue
    /// full, degrades it here instead (as when Redis is down).
    fn enqueue(&self, call: Call) -> Result<(), ()> {
        let publish = call.is_publish();
        if publish && !self.shared.take_publish_room() {
            call.degrade(&self.shared);
            return Err(());
        }
        let refused = match &*self.ops.read() {
            Some(tx) => match tx.send(Op::Call(call)) {
                Ok(()) => return Ok(()),
                Err(e) => e.0,
            },
            None => Op::Call(call),
        };
        if publish {
            self.shared.queued_publishes.fetch_sub(1, Ordering::AcqRel);
        }
        if let Op::Call(c) = refused {
            c.degrade(&self.shared);
        }
        Err(())
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop(true);
    }
}

fn spawn(name: &str, f: impl FnOnce() + Send + 'static) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name.to_owned()).spawn(f)
}

/// Joins a thread, unless it is the calling thread (the last handle dropped
/// inside a `LocalNode` callback): that one ends by itself.
fn join(h: Option<JoinHandle<()>>) {
    if let Some(h) = h {
        if h.thread().id() == std::thread::current().id() {
            return;
        }
        if h.join().is_err() {
            log::error!("cluster: a thread panicked");
        }
    }
}
