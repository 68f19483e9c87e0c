//! The test bench: [`FakePeer`], [`Client`] (a fake peer with its session)
//! and [`Harness`] (a service over a [`GatedStore`], and every client made
//! from it).
//!
//! The test thread is every peer's own thread: tasks the service queues
//! with [`Peer::run_on_own_loop`] wait in the peer until the test calls
//! [`Client::run_tasks`] or [`Harness::settle`].

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Value};

use super::gated_store::GatedStore;
use crate::protocol::msg_id;
use crate::runtime::{PasswordHasher, Priority};
use crate::service::{LogOptions, Peer, PeerRef, Presence, Service, Session, Task};
use crate::storage::{Store, UserRecord};

/// Every account's password.
pub const PASSWORD: &str = "secret";

/// How long [`Harness::settle`] and [`Harness::wait_for`] wait.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A peer that records frames and keeps its tasks for the test to run.
pub struct FakePeer {
    id: u64,
    name: String,
    open: AtomicBool,
    /// Every frame sent while open, as sent.
    frames: Mutex<Vec<Vec<u8>>>,
    /// Tasks queued on this peer's "own thread", oldest first.
    tasks: Mutex<VecDeque<Task>>,
    /// What [`Peer::idle_for`] answers; the test sets it.
    idle: Mutex<Duration>,
    /// Set by [`Peer::close_with`].
    closed_by_server: AtomicBool,
    /// Bytes accepted by sends, and bytes "written to the kernel": equal
    /// unless the test stalls the peer (a client that stopped reading).
    accepted: AtomicU64,
    written: AtomicU64,
    stalled: AtomicBool,
    /// Tasks waiting for a stalled peer to "drain".
    drained: Mutex<Vec<Task>>,
}

impl Peer for FakePeer {
    fn id(&self) -> u64 {
        self.id
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn connected(&self) -> bool {
        self.open.load(Ordering::Acquire)
    }

    fn send(&self, frame: Vec<u8>) {
        let _ = self.send_counted(&frame);
    }

    fn send_counted(&self, frame: &[u8]) -> Option<u64> {
        // As a closed TCP connection does: nothing.
        if !self.connected() {
            return None;
        }
        let mut frames = self.frames.lock();
        let end = self
            .accepted
            .fetch_add(frame.len() as u64, Ordering::AcqRel)
            + frame.len() as u64;
        if !self.stalled.load(Ordering::Acquire) {
            self.written.store(end, Ordering::Release);
        }
        frames.push(frame.to_vec());
        Some(end)
    }

    fn written(&self) -> u64 {
        self.written.load(Ordering::Acquire)
    }

    fn when_drained(&self, task: Task) {
        let frames = self.frames.lock();
        if !self.connected() {
            return;
        }
        if self.stalled.load(Ordering::Acquire) {
            self.drained.lock().push(task);
        } else {
            drop(frames);
            self.run_on_own_loop(task);
        }
    }

    fn idle_for(&self) -> Duration {
        *self.idle.lock()
    }

    fn close_with(&self, frame: Vec<u8>) {
        // The frame is the last one; a shut-down connection is no longer
        // `connected`. Its close callback comes later: `Client::disconnect`.
        self.send(frame);
        self.open.store(false, Ordering::Release);
        self.closed_by_server.store(true, Ordering::Release);
    }

    fn run_on_own_loop(&self, task: Task) {
        self.tasks.lock().push_back(task);
    }
}

impl FakePeer {
    /// Runs the queued tasks, and those they queue, until none is left;
    /// returns how many ran.
    fn run_tasks(&self) -> usize {
        let mut ran = 0;
        // One at a time, the lock released: a task may queue another.
        while let Some(task) = self.tasks.lock().pop_front() {
            task();
            ran += 1;
        }
        ran
    }

    fn pending(&self) -> usize {
        self.tasks.lock().len()
    }
}

/// A fake peer with its session: one client of the service.
pub struct Client {
    /// The peer.
    pub peer: Arc<FakePeer>,
    /// The same peer, as the service holds it.
    peer_ref: PeerRef,
    /// Its session.
    pub session: Arc<Session>,
    svc: Arc<Service>,
}

impl Client {
    /// The peer's id.
    pub fn id(&self) -> u64 {
        self.peer.id
    }

    /// Hands `request` to the service, as the server's message callback does.
    pub fn request(&self, request: Value) {
        let Value::Object(obj) = request else {
            panic!("a request is an object");
        };
        self.svc.handle(&self.peer_ref, &self.session, obj);
    }

    /// Sends a login by name, with the right password.
    pub fn login(&self, name: &str) {
        self.request(json!({"msgId": msg_id::LOGIN_MSG, "username": name, "password": PASSWORD}));
    }

    /// Sends a one-to-one message and waits until the log writers have
    /// handled it (committed and handed on, or refused).
    pub fn chat(&self, to: i64, text: &str) {
        self.request(json!({"msgId": msg_id::ONE_CHAT_MSG, "to": to, "msg": text}));
        self.wait_log();
    }

    /// Sends a one-to-one message with a client id, and waits as
    /// [`chat`](Self::chat) does.
    pub fn chat_cid(&self, to: i64, text: &str, cid: &str) {
        self.request(json!({"msgId": msg_id::ONE_CHAT_MSG, "to": to, "msg": text, "cid": cid}));
        self.wait_log();
    }

    /// Sends a group message and waits as [`chat`](Self::chat) does.
    pub fn group_chat(&self, gid: i64, text: &str) {
        self.request(json!({"msgId": msg_id::GROUP_CHAT_MSG, "gid": gid, "msg": text}));
        self.wait_log();
    }

    /// Waits until no post is queued or being written; panics after a
    /// timeout (an `append` left held).
    pub fn wait_log(&self) {
        let deadline = Instant::now() + TIMEOUT;
        while self.svc.log.in_flight() > 0 {
            assert!(Instant::now() < deadline, "the log writers did not finish");
            std::thread::sleep(Duration::from_micros(100));
        }
    }

    /// The peer has received nothing for `idle` (what `Peer::idle_for`
    /// answers from now on).
    pub fn set_idle_for(&self, idle: Duration) {
        *self.peer.idle.lock() = idle;
    }

    /// Stops (or resumes) "writing to the kernel": while stalled, frames
    /// are recorded but [`Peer::written`] stays where it was, as for a
    /// client that does not read; resuming writes everything.
    pub fn set_stalled(&self, stalled: bool) {
        let frames = self.peer.frames.lock();
        self.peer.stalled.store(stalled, Ordering::Release);
        if !stalled {
            let accepted = self.peer.accepted.load(Ordering::Acquire);
            self.peer.written.store(accepted, Ordering::Release);
        }
        drop(frames);
        if !stalled {
            for task in std::mem::take(&mut *self.peer.drained.lock()) {
                self.peer.run_on_own_loop(task);
            }
        }
    }

    /// `true` once the service closed this peer with `Peer::close_with`.
    pub fn closed_by_server(&self) -> bool {
        self.peer.closed_by_server.load(Ordering::Acquire)
    }

    /// Runs this peer's queued tasks; returns how many ran.
    pub fn run_tasks(&self) -> usize {
        self.peer.run_tasks()
    }

    /// Tasks waiting for this peer's own thread.
    pub fn pending_tasks(&self) -> usize {
        self.peer.pending()
    }

    /// Removes and returns the frames received so far, each checked to be
    /// one JSON object and a newline.
    pub fn take_frames(&self) -> Vec<Value> {
        let frames = std::mem::take(&mut *self.peer.frames.lock());
        frames.iter().map(|f| parse_frame(f)).collect()
    }

    /// The peer closes: the service hears of it as the server's
    /// connection callback tells it.
    pub fn disconnect(&self) {
        self.peer.open.store(false, Ordering::Release);
        self.svc.disconnected(&self.peer_ref, &self.session);
    }
}

fn parse_frame(frame: &[u8]) -> Value {
    let Some(json) = frame.strip_suffix(b"\n") else {
        panic!(
            "a frame without its newline: {:?}",
            String::from_utf8_lossy(frame)
        );
    };
    let v: Value = serde_json::from_slice(json).expect("a frame is JSON");
    assert!(v.is_object(), "a frame is an object: {v}");
    v
}

/// What the online map holds for a user, for assertions.
#[derive(Debug, PartialEq, Eq)]
pub enum Seen {
    /// No entry.
    Absent,
    /// A login of `peer` is under way, with `buffered` messages held.
    LoggingIn {
        /// The peer logging in.
        peer: u64,
        /// Messages waiting for its ack.
        buffered: usize,
    },
    /// Logged in on `peer`.
    Online {
        /// The peer.
        peer: u64,
    },
}

/// A service over a gated in-memory store, and its clients.
pub struct Harness {
    /// The service under test.
    pub svc: Arc<Service>,
    /// Its store.
    pub store: Arc<GatedStore>,
    hasher: PasswordHasher,
    peers: Mutex<Vec<Arc<FakePeer>>>,
    next_id: AtomicU64,
}

impl Harness {
    /// Two database workers and two hashing threads at normal priority,
    /// the cheapest argon2 costs, no hash gate.
    pub fn new() -> Harness {
        let store = Arc::new(GatedStore::new());
        let hasher = PasswordHasher::new(8, 1).expect("argon2 costs");
        let svc = Service::new(
            store.clone(),
            2,
            2,
            hasher.clone(),
            Duration::ZERO,
            Priority::Nice(0),
            LogOptions::default(),
        )
        .expect("service threads");
        Harness {
            svc,
            store,
            hasher,
            peers: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(100),
        }
    }

    /// Creates the account `name` (password [`PASSWORD`]) and returns its id.
    pub fn user(&self, name: &str) -> i64 {
        let hash = self.hasher.hash(PASSWORD).expect("hash");
        self.store
            .create_user(name, &hash)
            .expect("store")
            .expect("a new name")
    }

    /// A new client; ids count up from 100, so consecutive clients use
    /// different hashing threads.
    pub fn connect(&self) -> Client {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let peer = Arc::new(FakePeer {
            id,
            name: format!("fake#{id}"),
            open: AtomicBool::new(true),
            frames: Mutex::new(Vec::new()),
            tasks: Mutex::new(VecDeque::new()),
            idle: Mutex::new(Duration::ZERO),
            closed_by_server: AtomicBool::new(false),
            accepted: AtomicU64::new(0),
            written: AtomicU64::new(0),
            stalled: AtomicBool::new(false),
            drained: Mutex::new(Vec::new()),
        });
        self.peers.lock().push(peer.clone());
        Client {
            peer_ref: peer.clone(),
            peer,
            session: Arc::new(Session::new(id)),
            svc: self.svc.clone(),
        }
    }

    /// A new client logged in as `name`, its login ack taken.
    pub fn logged_in(&self, name: &str) -> Client {
        let client = self.connect();
        client.login(name);
        self.settle();
        let frames = client.take_frames();
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert_eq!(frames[0]["msgId"], msg_id::LOGIN_MSG_ACK);
        assert_eq!(frames[0]["errno"], 0, "{}", frames[0]);
        client
    }

    /// Runs every peer's tasks and waits for the pools, until nothing is
    /// queued anywhere. Panics after a timeout (a gate left held).
    pub fn settle(&self) {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let peers = self.peers.lock().clone();
            let ran: usize = peers.iter().map(|p| p.run_tasks()).sum();
            if ran == 0 && self.idle(&peers) {
                return;
            }
            assert!(Instant::now() < deadline, "the service did not settle");
            if ran == 0 {
                std::thread::sleep(Duration::from_micros(200));
            }
        }
    }

    /// Nothing queued or running anywhere. The order of the reads matters:
    /// a delayed gap check submits its worker job, a hashing job its
    /// worker job, a log batch its worker jobs (gap fills, cursor writes)
    /// and delayed checks, and a worker job queues its peer task, before
    /// it stops counting as in flight, so reading the delay, the hashers,
    /// the log writers, the workers, the peers, then the delay again
    /// misses nothing (a check delayed after the first read still waits
    /// its grace at the second). Worker jobs never submit hashing jobs or
    /// posts; peer tasks may, and then they count as having run.
    fn idle(&self, peers: &[Arc<FakePeer>]) -> bool {
        self.svc.delay.waiting() == 0
            && self.svc.hashers.in_flight() == 0
            && self.svc.log.in_flight() == 0
            && self.svc.workers.in_flight() == 0
            && peers.iter().all(|p| p.pending() == 0)
            // Again: a log batch or worker job read as idle above may have
            // delayed a check before it finished (it waits GAP_GRACE).
            && self.svc.delay.waiting() == 0
    }

    /// Waits until the pools are idle, running no peer's tasks.
    pub fn settle_workers(&self) {
        self.wait_for("the pools to be idle", || {
            self.svc.delay.waiting() == 0
                && self.svc.hashers.in_flight() == 0
                && self.svc.log.in_flight() == 0
                && self.svc.workers.in_flight() == 0
        });
    }

    /// The account `uid` as stored.
    pub fn store_user(&self, uid: i64) -> UserRecord {
        self.store
            .user_by_id(uid)
            .expect("store")
            .expect("an account")
    }

    /// Waits until `cond` holds; panics after a timeout.
    pub fn wait_for(&self, what: &str, cond: impl Fn() -> bool) {
        let deadline = Instant::now() + TIMEOUT;
        while !cond() {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    /// What the online map holds for `uid` (their first session).
    pub fn seen(&self, uid: i64) -> Seen {
        match self.svc.online.lock(uid).get(&uid).and_then(|s| s.first()) {
            None => Seen::Absent,
            Some(Presence::LoggingIn { peer_id, buffered }) => Seen::LoggingIn {
                peer: *peer_id,
                buffered: buffered.len(),
            },
            Some(Presence::Online { peer, .. }) => Seen::Online { peer: peer.id() },
        }
    }

    /// The `msg` of each message `uid` has not been handed (legacy offline
    /// rows, then pending log entries), oldest first.
    pub fn stored(&self, uid: i64) -> Vec<String> {
        let rows = self.store.offline_messages(uid).expect("store");
        let mut out: Vec<String> = rows.iter().map(|(_, text)| text_of_stored(text)).collect();
        let pending = self.store.pending(uid, 100_000).expect("store");
        out.extend(pending.iter().map(|e| text_of_stored(&e.body)));
        out
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // A failed test may leave a gate held: open them all, join the
        // threads, and clear the tasks to break the cycles
        // service → online map → peer → task → service.
        self.store.release_all();
        self.svc.shutdown(Duration::from_secs(5));
        for peer in self.peers.lock().iter() {
            peer.tasks.lock().clear();
        }
    }
}

/// The `msg` of a stored offline message (its JSON text).
pub fn text_of_stored(text: &str) -> String {
    let v: Value = serde_json::from_str(text).expect("stored JSON");
    v["msg"].as_str().expect("a msg").to_owned()
}

/// The `msg` of each offline message inside a login ack.
pub fn offline_in_ack(ack: &Value) -> Vec<String> {
    assert_eq!(ack["msgId"], msg_id::LOGIN_MSG_ACK, "{ack}");
    match ack.get("offlinemsgs") {
        None => Vec::new(),
        Some(list) => list
            .as_array()
            .expect("offlinemsgs is a list")
            .iter()
            .map(|t| text_of_stored(t.as_str().expect("a string")))
            .collect(),
    }
}

/// The `msg` of a chat frame (msgId 9 or 13).
pub fn text(frame: &Value) -> &str {
    frame["msg"]
        .as_str()
        .unwrap_or_else(|| panic!("no msg in {frame}"))
}

/// The texts of the frames `client` received since the last take.
pub fn texts(client: &Client) -> Vec<String> {
    client
        .take_frames()
        .iter()
        .map(|f| text(f).to_owned())
        .collect()
}
