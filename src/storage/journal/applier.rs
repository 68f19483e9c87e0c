//! The journal's shared state and its applier thread.
//!
//! [`Shared`] holds what the appender and the applier both see: the queue
//! of journaled operations not yet in the store, the in-memory counters
//! and cids of those entries, the sealed segments, and two condition
//! variables (`work` wakes the applier, `applied` wakes whoever waits for
//! it). Operations are numbered in queue order (`enqueued`); `applied`
//! counts those done, so "everything appended before this call is in the
//! store" is `applied >= enqueued-at-the-call` ([`Shared::barrier`]).
//!
//! The applier takes a large batch when one of these holds: [`APPLY_AT`]
//! entries wait, the oldest has waited `--journal-apply-interval`, a
//! reader waits at a barrier, or the store is stopping. It applies the
//! entries with one [`Store::apply_log`] (idempotent, so a retry after an
//! error, or a replay after a crash, is harmless), then the queued
//! delivery cursors, and only then forgets the entries' cids and wakes the
//! waiters, so a cid is always in memory or in the store.
//!
//! # Threads
//!
//! One applier thread per journal; it blocks on the store. The lock is held
//! only for queue bookkeeping, never across a store call or file I/O.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};

use super::segments;
use crate::model::Conv;
use crate::runtime::WordHash;
use crate::storage::{CidPlaces, Entry, Store, StoreError, Stored};

/// Entries waiting that make the applier start at once.
pub const APPLY_AT: usize = 8192;

/// The most entries one [`Store::apply_log`] call stores.
pub const MAX_APPLY: usize = 16_384;

/// Unapplied entries (and queued cursor moves) after which appends wait.
pub const MAX_QUEUED: usize = 262_144;

/// Unapplied bytes of message bodies after which appends wait.
pub const MAX_QUEUED_BYTES: usize = 256 << 20;

/// How long a barrier (or an append waiting for room) waits for the
/// applier before it fails.
pub const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// One journaled operation, applied in queue order.
pub enum Op {
    /// Numbered entries, as written to the journal.
    Entries(Vec<Entry>),
    /// A [`Store::set_delivered`] of one user, queued behind the entries
    /// it refers to (it needs no answer, so it does not wait).
    Delivered(i64, Vec<(Conv, i64)>),
}

impl Op {
    /// What it counts against [`MAX_QUEUED`] and [`MAX_QUEUED_BYTES`].
    fn weight(&self) -> (usize, usize) {
        match self {
            Op::Entries(e) => (e.len(), e.iter().map(|e| e.body.len()).sum()),
            Op::Delivered(_, p) => (p.len(), 0),
        }
    }
}

/// See the [module docs](self).
pub struct State {
    /// Operations not yet taken by the applier, with when they came.
    queue: VecDeque<(Instant, Op)>,
    /// Operations ever queued.
    pub enqueued: u64,
    /// Operations ever applied (a prefix of the queue order).
    pub applied: u64,
    /// Unapplied entries (including those being applied) and their bytes.
    queued: (usize, usize),
    /// Threads waiting for the applier (barriers, full appends).
    waiters: usize,
    /// The unapplied entries' `(sender, cid)` places.
    pub cids: CidPlaces,
    /// `(last_seq, last_ts)` of every conversation appended to since they
    /// were last forgotten, by key: the seq allocator. A conversation
    /// with unapplied entries is always here.
    pub heads: HashMap<i64, (i64, i64), WordHash>,
    /// Full segments, each with the last operation written to it.
    pub sealed: VecDeque<(u64, PathBuf)>,
    /// Set by the store's drop: apply what is left, then end.
    pub stopping: bool,
    /// Tests: end at once, applying nothing more (what a crash does).
    pub abandon: bool,
}

/// What the appender, the readers and the applier share.
pub struct Shared {
    pub inner: Arc<dyn Store>,
    pub state: Mutex<State>,
    work: Condvar,
    applied: Condvar,
    /// `--journal-apply-interval`.
    interval: Duration,
    /// `--log-fsync`.
    pub fsync: bool,
}

impl Shared {
    pub fn new(inner: Arc<dyn Store>, interval: Duration, fsync: bool) -> Shared {
        Shared {
            inner,
            state: Mutex::new(State {
                queue: VecDeque::new(),
                enqueued: 0,
                applied: 0,
                queued: (0, 0),
                waiters: 0,
                cids: HashMap::new(),
                heads: HashMap::default(),
                sealed: VecDeque::new(),
                stopping: false,
                abandon: false,
            }),
            work: Condvar::new(),
            applied: Condvar::new(),
            interval,
            fsync,
        }
    }

    /// Queues `op` (the journal holds it already, or it needs none) and
    /// returns its number. Wakes the applier when a batch is ready.
    pub fn push(&self, st: &mut MutexGuard<'_, State>, op: Op) -> u64 {
        let (n, bytes) = op.weight();
        st.queued.0 += n;
        st.queued.1 += bytes;
        st.queue.push_back((Instant::now(), op));
        st.enqueued += 1;
        // The first one starts the applier's interval; a full batch, at once.
        if st.queue.len() == 1 || st.queued.0 >= APPLY_AT {
            self.work.notify_one();
        }
        st.enqueued
    }

    /// Wakes the applier (a segment was sealed, or the store stops).
    pub fn wake(&self) {
        self.work.notify_one();
    }

    /// Waits until every operation queued before the call is applied:
    /// what a reader of log state calls first, so it sees everything that
    /// was acknowledged before it asked.
    ///
    /// # Errors
    /// [`StoreError::Journal`] when the applier has not caught up within
    /// [`WAIT_LIMIT`] (the store keeps failing).
    pub fn barrier(&self) -> Result<(), StoreError> {
        let mut st = self.state.lock();
        let target = st.enqueued;
        self.wait_until(&mut st, |st| st.applied >= target)
    }

    /// Waits until the unapplied tail is under its bounds (appends and
    /// queued cursor moves call it first).
    ///
    /// # Errors
    /// As [`barrier`](Shared::barrier).
    pub fn wait_for_room(&self) -> Result<(), StoreError> {
        let mut st = self.state.lock();
        self.wait_until(&mut st, |st| {
            st.queued.0 < MAX_QUEUED && st.queued.1 < MAX_QUEUED_BYTES
        })
    }

    fn wait_until(
        &self,
        st: &mut MutexGuard<'_, State>,
        done: impl Fn(&State) -> bool,
    ) -> Result<(), StoreError> {
        if done(st) {
            return Ok(());
        }
        st.waiters += 1;
        self.work.notify_one();
        let deadline = Instant::now() + WAIT_LIMIT;
        while !done(st) && !self.applied.wait_until(st, deadline).timed_out() {}
        st.waiters -= 1;
        if done(st) {
            Ok(())
        } else {
            Err(StoreError::Journal(
                "the applier has not caught up in a minute (is the store failing?)".into(),
            ))
        }
    }

    /// Takes the next batch of operations, waiting until one is due;
    /// `None` when the store stops and nothing is left.
    fn next_batch(&self) -> Option<Batch> {
        let mut st = self.state.lock();
        loop {
            if st.abandon {
                return None;
            }
            let oldest = match st.queue.front() {
                Some((at, _)) => *at,
                None if st.stopping => return None,
                None => {
                    self.work.wait(&mut st);
                    continue;
                }
            };
            let waited = oldest.elapsed();
            let due =
                st.stopping || st.waiters > 0 || st.queued.0 >= APPLY_AT || waited >= self.interval;
            if due {
                break;
            }
            let _ = self.work.wait_for(&mut st, self.interval - waited);
        }
        let mut batch = Batch::default();
        while let Some((_, op)) = st.queue.front() {
            let n = op.weight().0;
            if batch.ops > 0 && batch.entries.len() + n > MAX_APPLY {
                break;
            }
            let Some((_, op)) = st.queue.pop_front() else {
                break;
            };
            batch.ops += 1;
            match op {
                Op::Entries(mut e) => batch.entries.append(&mut e),
                Op::Delivered(uid, p) => batch.cursors.push((uid, p)),
            }
        }
        Some(batch)
    }

    /// Records that `ops` are in the store: forgets their cids, wakes the
    /// waiters, and returns the sealed segments that may now go.
    fn finish(&self, batch: &Batch) -> Vec<PathBuf> {
        let mut st = self.state.lock();
        let n = batch.entries.len() + batch.cursors.iter().map(|(_, p)| p.len()).sum::<usize>();
        let bytes: usize = batch.entries.iter().map(|e| e.body.len()).sum();
        st.queued.0 -= n.min(st.queued.0);
        st.queued.1 -= bytes.min(st.queued.1);
        for e in &batch.entries {
            forget_cid(&mut st.cids, e);
        }
        st.applied += batch.ops as u64;
        self.applied.notify_all();
        let mut done = Vec::new();
        while st
            .sealed
            .front()
            .is_some_and(|(last, _)| *last <= st.applied)
        {
            if let Some((_, path)) = st.sealed.pop_front() {
                done.push(path);
            }
        }
        done
    }
}

/// Operations taken off the queue together: their entries in queue
/// order, their cursor moves, and how many operations they were.
#[derive(Default)]
struct Batch {
    entries: Vec<Entry>,
    cursors: Vec<(i64, Vec<(Conv, i64)>)>,
    ops: usize,
}

/// Removes `e`'s cid from the unapplied ones (it is in the store now).
fn forget_cid(cids: &mut CidPlaces, e: &Entry) {
    let Some(cid) = e.cid.as_deref() else {
        return;
    };
    if let Some(of_sender) = cids.get_mut(&e.sender) {
        let at = Stored {
            conv: e.conv,
            seq: e.seq,
            ts: e.ts,
        };
        if of_sender.get(cid) == Some(&at) {
            of_sender.remove(cid);
        }
        if of_sender.is_empty() {
            cids.remove(&e.sender);
        }
    }
}

/// The applier thread: batches until the store stops. See the
/// [module docs](self).
pub fn run(shared: &Shared) {
    while let Some(batch) = shared.next_batch() {
        let mut attempt: u32 = 0;
        while let Err(e) = apply(&*shared.inner, &batch) {
            attempt += 1;
            log::error!(
                "journal: applying {} entries (attempt {attempt}): {e}",
                batch.entries.len()
            );
            if shared.state.lock().stopping && attempt >= 3 {
                // Left in the journal: the next start replays it.
                return;
            }
            std::thread::sleep(Duration::from_millis(50u64 << attempt.min(5)));
        }
        let done = shared.finish(&batch);
        if done.is_empty() {
            continue;
        }
        if shared.fsync {
            if let Err(e) = shared.inner.sync_log() {
                // Keep them: a machine crash could lose what they hold.
                log::error!("journal: syncing the store before dropping segments: {e}");
                continue;
            }
        }
        for path in done {
            segments::remove(&path);
        }
    }
}

/// Applies one batch: its entries in [`MAX_APPLY`] pieces, then the
/// cursor moves, merged per user, in one [`Store::set_delivered_many`].
/// Idempotent: a failed batch is simply applied again.
fn apply(store: &dyn Store, batch: &Batch) -> Result<(), StoreError> {
    for chunk in batch.entries.chunks(MAX_APPLY) {
        store.apply_log(chunk)?;
    }
    // Merged per user and conversation, in (user, conversation) order: the
    // transaction locks the rows in the order any other multi-row change
    // would.
    let mut cursors: BTreeMap<i64, BTreeMap<i64, (Conv, i64)>> = BTreeMap::new();
    for (uid, positions) in &batch.cursors {
        let of_user = cursors.entry(*uid).or_default();
        for &(conv, seq) in positions {
            let at = of_user.entry(conv.key()).or_insert((conv, seq));
            at.1 = at.1.max(seq);
        }
    }
    let moves: Vec<(i64, Vec<(Conv, i64)>)> = cursors
        .into_iter()
        .map(|(uid, positions)| (uid, positions.into_values().collect()))
        .collect();
    // At most about MAX_APPLY rows a transaction, as for the entries.
    let mut from = 0;
    let mut rows = 0;
    for (i, (_, positions)) in moves.iter().enumerate() {
        rows += positions.len();
        if rows >= MAX_APPLY {
            store.set_delivered_many(&moves[from..=i])?;
            (from, rows) = (i + 1, 0);
        }
    }
    store.set_delivered_many(&moves[from..])
}
