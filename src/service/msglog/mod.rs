//! The log writers: every chat message is committed to the message log,
//! numbered, before anyone is handed it.
//!
//! ```text
//!  I/O thread         log writer k (conv key % writers)     its deliverer          recipients
//!  ──────────         ─────────────────────────────────     ─────────────          ──────────
//!  9/13 parsed, ─Post─► take a batch (≤ --log-batch posts)
//!  stamped              check recipients / group members
//!                       Store::append: one transaction
//!                       ── committed ── ─────────batch────► for each post, in seq order:
//!                       (takes the next batch)               push to every recipient ─► connection
//!                                                            28 SEND_ACK to the sender (with a cid)
//! ```
//!
//! On a single node the store is a [`JournaledStore`](crate::storage::JournaledStore):
//! "committed" then means one write to its journal (redo log), and an
//! applier thread moves the entries into the database in large batches.
//!
//! A conversation always goes to the same writer (its key modulo the
//! number of writers), which takes posts in the order the I/O threads
//! queued them; its deliverer hands each committed batch on, batches in
//! commit order and messages in seq order. So within a conversation every
//! reader sees the seq order, and one sender's messages keep the order
//! they were sent in. Batching is group commit: under load a batch holds
//! hundreds of posts and costs one transaction; when idle, a post is a
//! batch of one. The deliverer lets the writer commit the next batch while
//! this one's bytes go out (at most a few batches wait between them).
//!
//! A writer is a dedicated thread, not a database worker: the workers'
//! queues may be long with logins, and chat must not wait behind them.
//! Each writer's queue is bounded (`--log-queue`); a post that finds it
//! full is refused at once with errno 12, so a flood cannot grow the
//! server's memory.
//!
//! # Threads
//!
//! [`LogWriter::submit`] is called from I/O threads and never blocks. The
//! writer threads block on the store. Writers hold no reference to the
//! service between batches (each post carries its [`Ctx`]), so the
//! service can be dropped.

mod batch;
mod quota;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender};
use parking_lot::Mutex;

use super::{Ctx, Me};
use crate::model::Conv;
use crate::protocol::reply;
use crate::runtime::Priority;

/// Default `--log-batch`: the most posts one transaction commits.
pub const DEFAULT_BATCH: usize = 512;

/// Default `--log-queue`: posts one writer may have queued.
pub const DEFAULT_QUEUE: usize = 65_536;

/// A chat message on its way into the log.
pub struct Post {
    /// The sender's request context: where acks and errors go.
    pub ctx: Ctx,
    /// The sender.
    pub me: Me,
    /// Its conversation.
    pub conv: Conv,
    /// The recipient of a one-to-one message (`None`: a group post).
    pub to: Option<i64>,
    /// The sender's client id, if it sent one.
    pub cid: Option<String>,
    /// The stamped message object, encoded, without `conv`/`seq`/`ts`.
    pub body: String,
}

enum Message {
    Post(Box<Post>),
    Stop,
}

/// The log writer threads. See the [module docs](self).
pub struct LogWriter {
    queues: Vec<Sender<Message>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    /// Posts queued or being written, over all writers.
    in_flight: Arc<AtomicUsize>,
}

impl LogWriter {
    /// Starts `writers` threads (at least one), each committing at most
    /// `batch` posts per transaction and queueing at most `queue`. Any
    /// thread.
    ///
    /// # Errors
    /// If a thread cannot be spawned.
    pub fn new(writers: usize, batch: usize, queue: usize) -> std::io::Result<LogWriter> {
        let writers = writers.max(1);
        let batch = batch.max(1);
        let in_flight = Arc::new(AtomicUsize::new(0));
        let mut queues = Vec::with_capacity(writers);
        let mut threads = Vec::with_capacity(writers);
        for i in 0..writers {
            let (tx, rx) = bounded(queue.max(1));
            // A few committed batches may wait for the deliverer; more, and
            // the writer waits (its own queue then fills, and refuses).
            let (done_tx, done_rx) = bounded::<Done>(DELIVERY_QUEUE);
            let writer_in_flight = in_flight.clone();
            let deliverer_in_flight = in_flight.clone();
            let writer = std::thread::Builder::new()
                .name(format!("chat-log{i}"))
                .spawn(move || {
                    // Below the I/O threads, like the database workers.
                    Priority::Nice(2).apply();
                    run_writer(&rx, batch, &done_tx, &writer_in_flight);
                })?;
            let deliverer = std::thread::Builder::new()
                .name(format!("chat-deliver{i}"))
                .spawn(move || {
                    Priority::Nice(2).apply();
                    run_deliverer(&done_rx, &deliverer_in_flight);
                })?;
            queues.push(tx);
            threads.push(writer);
            threads.push(deliverer);
        }
        Ok(LogWriter {
            queues,
            threads: Mutex::new(threads),
            in_flight,
        })
    }

    /// Queues `post` on its conversation's writer; any thread, never
    /// blocks. Gives the post back when that writer's queue is full (or
    /// the writers have stopped): the caller refuses it.
    pub fn submit(&self, post: Post) -> Result<(), Box<Post>> {
        let n = self.queues.len() as u64;
        let Some(queue) = self
            .queues
            .get((post.conv.key().unsigned_abs() % n) as usize)
        else {
            return Err(Box::new(post));
        };
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        match queue.try_send(Message::Post(Box::new(post))) {
            Ok(()) => Ok(()),
            Err(e) => {
                self.in_flight.fetch_sub(1, Ordering::AcqRel);
                match e.into_inner() {
                    Message::Post(p) => Err(p),
                    Message::Stop => Ok(()),
                }
            }
        }
    }

    /// Posts queued or being written; any thread.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Acquire)
    }

    /// Waits (at most `timeout`) until every queued post is written and
    /// handed on, then stops and joins the writers. Returns the number of
    /// posts abandoned (0 when drained). Any thread but a writer's.
    pub fn shutdown(&self, timeout: Duration) -> usize {
        let deadline = Instant::now() + timeout;
        while self.in_flight() > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        let left = self.in_flight();
        for q in &self.queues {
            // A full queue cannot take the stop; dropping the senders (below,
            // with the writer) ends the thread after its queue anyway.
            let _ = q.try_send(Message::Stop);
        }
        let threads = std::mem::take(&mut *self.threads.lock());
        if left == 0 {
            for t in threads {
                if t.join().is_err() {
                    log::error!("a log writer thread panicked");
                }
            }
        }
        left
    }
}

/// Answers a chat message that was not stored: 28 with its cid, or the
/// error message 27 (`req` 9 or 13) the original client knows. Any thread.
pub fn refuse(ctx: &Ctx, cid: Option<&str>, errno: i64, errmsg: &str) {
    ctx.send(&reply::failure_for(Some(ctx.req), cid, errno, errmsg));
}

/// Committed batches one writer's deliverer may have waiting.
const DELIVERY_QUEUE: usize = 4;

/// What a writer passes its deliverer: a committed batch (if any of its
/// posts was stored) and how many posts it held.
struct Done {
    batch: Option<batch::Committed>,
    posts: usize,
}

/// One writer thread: a blocking receive, then whatever else is queued,
/// up to `batch` posts, committed as one batch and passed to the
/// deliverer, so that the next batch is written while this one is handed
/// on.
fn run_writer(rx: &Receiver<Message>, batch: usize, done: &Sender<Done>, in_flight: &AtomicUsize) {
    let mut posts = Vec::with_capacity(batch);
    while let Ok(first) = rx.recv() {
        let Message::Post(first) = first else {
            return;
        };
        posts.push(*first);
        let mut stop = false;
        while posts.len() < batch {
            match rx.try_recv() {
                Ok(Message::Post(p)) => posts.push(*p),
                Ok(Message::Stop) => {
                    stop = true;
                    break;
                }
                Err(_) => break,
            }
        }
        let n = posts.len();
        let committed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            batch::commit(std::mem::take(&mut posts))
        }));
        let committed = committed.unwrap_or_else(|_| {
            log::error!("log writer: a batch of {n} posts panicked");
            None
        });
        let message = Done {
            batch: committed,
            posts: n,
        };
        if done.send(message).is_err() {
            in_flight.fetch_sub(n, Ordering::AcqRel);
        }
        if stop {
            return;
        }
    }
}

/// One deliverer thread: hands committed batches on in the order their
/// writer committed them.
fn run_deliverer(rx: &Receiver<Done>, in_flight: &AtomicUsize) {
    while let Ok(done) = rx.recv() {
        if let Some(batch) = done.batch {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                batch::hand_on_all(batch);
            }));
            if result.is_err() {
                log::error!("log deliverer: a batch of {} posts panicked", done.posts);
            }
        }
        in_flight.fetch_sub(done.posts, Ordering::AcqRel);
    }
}
