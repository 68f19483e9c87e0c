//! [`JournaledStore`]: a journal (redo log) in front of a [`Store`], so
//! that committing a chat message costs one append to a file instead of a
//! database transaction.
//!
//! ```text
//!  log writer ── append ──► numbers the entries in memory, writes them to
//!                           the journal in ONE write call ── acked ──►
//!                           queues them ─────► applier thread: every
//!  readers of log state ── barrier ──────────►  --journal-apply-interval,
//!  (sync, login's pending, convs, read, …)      8,192 entries, or when a
//!                                               reader waits: one big
//!                                               Store::apply_log
//! ```
//!
//! **Single node only.** The journal numbers messages in memory, which is
//! right only when this process is the log's only writer; in cluster mode
//! (`--redis`) several nodes number messages in the shared MySQL, and the
//! server uses the store directly.
//!
//! # Why the numbers stay gapless and unique
//!
//! Appends are serialised by one lock. A conversation's next seq comes
//! from its counter in memory ([`State::heads`](applier::State)), loaded
//! from the store the first time; a conversation with unapplied entries
//! always has its counter in memory, so the store's value, when it is
//! read, is the true one. At open, every whole record of the journal is
//! applied before the first append, so the store's counters include
//! every entry the journal ever acknowledged; the counters in memory
//! start from there. Records reach the journal in append order and a
//! batch is one write, so a crash leaves a *prefix* of the appended
//! entries (a torn last record is cut at open): each conversation keeps
//! a prefix of its numbers. Nothing acked is in the cut part (the ack
//! waits for the write to return).
//!
//! # Why readers see everything acked
//!
//! Every method that reads log state (or depends on it: `log_page`,
//! `pending`, `conv_state`, `conversations`, `set_read`, `count` of
//! waiting messages, `join_group`'s
//! `joined_seq`, `prune_log`, `dismiss_group`) first waits until every
//! operation queued before the call is in the store. `set_delivered`,
//! which needs no answer, is queued behind the entries instead (it would
//! otherwise force a tiny apply every few seconds per user). A cid is
//! looked up first among the unapplied entries, then in the store; the
//! applier forgets a cid only after its entry is committed to the store,
//! so that order cannot miss one. `count` waits only for the count of
//! one-to-one messages waiting (the quota's, read at its re-check points).
//!
//! # Durability
//!
//! The `write` returning is the commit point: the bytes are in the
//! kernel's page cache and survive `kill -9` of the server (what SQLite's
//! WAL with `synchronous = NORMAL` gave the direct path). An operating
//! system crash or power loss can lose the last few seconds, also with
//! MySQL (whose own commits are flushed); `--log-fsync` syncs each batch
//! (`fdatasync`) and gives machine-crash durability on both stores.
//!
//! # Threads
//!
//! Every method blocks (file writes, the store, waiting for the applier):
//! workers and log writers only, never an I/O thread.

mod applier;
mod record;
pub mod replay;
mod segments;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;

use self::applier::{Op, Shared};
use self::segments::{Dir, Segment};
use super::append::{new_entries, now_ms, Plan, Range};
use super::{
    Appended, CidPlaces, ConvState, Count, Entry, JoinOutcome, NewEntry, Page, Store, StoreError,
    UserRecord,
};
use crate::model::{Conv, GroupInfo, MemberInfo, UserInfo};
use crate::runtime::WordHash;

/// Conversations whose counters stay in memory; past this, an append
/// waits for the applier to catch up and forgets them all (they are
/// reloaded from the store as needed).
const MAX_HEADS: usize = 1 << 20;

/// Where and how the journal is kept.
#[derive(Debug, Clone)]
pub struct JournalOptions {
    /// Its directory (`--journal-dir`), created when missing.
    pub dir: PathBuf,
    /// `fdatasync` each batch (`--log-fsync`).
    pub fsync: bool,
    /// The longest an entry waits to be applied (`--journal-apply-interval`).
    pub apply_interval: Duration,
}

/// The appender's side: the directory, the segment written to, and the
/// number of the last operation written to it.
struct Writer {
    dir: Dir,
    segment: Segment,
    last_op: u64,
}

/// See the [module docs](self).
pub struct JournaledStore {
    shared: Arc<Shared>,
    /// Also the append lock: one append at a time.
    writer: Mutex<Writer>,
    applier: Mutex<Option<JoinHandle<()>>>,
}

impl JournaledStore {
    /// Opens the journal in front of `inner`: locks the directory, applies
    /// every whole record in it that `inner` lacks (cutting a torn tail;
    /// [`replay`] tells what it leaves out), deletes the replayed
    /// segments, and starts the applier.
    ///
    /// # Errors
    /// When the directory cannot be used (or another process has it), a
    /// segment cannot be read, `inner` cannot be journaled, or applying
    /// the replayed entries fails.
    pub fn open(
        inner: Arc<dyn Store>,
        options: &JournalOptions,
    ) -> Result<JournaledStore, StoreError> {
        inner.log_heads(&[])?; // refuses for a store that cannot be journaled
        let dir = Dir::open(&options.dir)?;
        let old = dir.segments()?;
        let mut replayed = 0;
        for (_, path) in &old {
            replayed += replay::replay(&*inner, dir.replay(path)?)?;
        }
        if !old.is_empty() {
            if options.fsync {
                inner.sync_log()?;
            }
            log::info!(
                "journal {}: replayed {} segments, storing the {replayed} entries the store lacked",
                options.dir.display(),
                old.len()
            );
            for (_, path) in &old {
                segments::remove(path);
            }
        }
        let next = old.last().map_or(1, |(n, _)| n + 1);
        let segment = dir.create(next, options.fsync)?;
        let shared = Arc::new(Shared::new(inner, options.apply_interval, options.fsync));
        let for_thread = shared.clone();
        let thread = std::thread::Builder::new()
            .name("chat-journal".into())
            .spawn(move || applier::run(&for_thread))
            .map_err(|e| StoreError::Journal(format!("starting the applier: {e}")))?;
        Ok(JournaledStore {
            shared,
            writer: Mutex::new(Writer {
                dir,
                segment,
                last_op: 0,
            }),
            applier: Mutex::new(Some(thread)),
        })
    }

    fn inner(&self) -> &dyn Store {
        &*self.shared.inner
    }

    /// Where `entries`' cids are: among the unapplied entries first, then
    /// in the store (see the module docs for why this order).
    fn cid_places(&self, entries: &[NewEntry]) -> Result<CidPlaces, StoreError> {
        let mut known = CidPlaces::new();
        let mut ask = Vec::new();
        {
            let st = self.shared.state.lock();
            for e in entries {
                let Some(cid) = e.cid.as_deref() else {
                    continue;
                };
                match st.cids.get(&e.sender).and_then(|m| m.get(cid)) {
                    Some(at) => {
                        known
                            .entry(e.sender)
                            .or_default()
                            .insert(cid.to_owned(), *at);
                    }
                    None => ask.push(NewEntry {
                        conv: e.conv,
                        sender: e.sender,
                        cid: Some(cid.to_owned()),
                        body: String::new(),
                    }),
                }
            }
        }
        if !ask.is_empty() {
            for (sender, places) in self.inner().find_cids(&ask)? {
                known.entry(sender).or_default().extend(places);
            }
        }
        Ok(known)
    }

    /// Each conversation's range after the increment: its counter (from
    /// memory, or the store on a miss) plus its count; `ts` is now or the
    /// counter's, if later.
    fn ranges(&self, convs: &[(Conv, i64)]) -> Result<HashMap<i64, Range, WordHash>, StoreError> {
        let missing: Vec<Conv> = {
            let st = self.shared.state.lock();
            convs
                .iter()
                .filter(|(c, _)| !st.heads.contains_key(&c.key()))
                .map(|&(c, _)| c)
                .collect()
        };
        let loaded = if missing.is_empty() {
            HashMap::new()
        } else {
            self.inner().log_heads(&missing)?
        };
        let now = now_ms();
        let st = self.shared.state.lock();
        Ok(convs
            .iter()
            .map(|&(c, n)| {
                let key = c.key();
                let (seq, ts) = st
                    .heads
                    .get(&key)
                    .or_else(|| loaded.get(&key))
                    .copied()
                    .unwrap_or((0, 0));
                (key, (seq + n, ts.max(now)))
            })
            .collect())
    }

    /// Forgets the in-memory counters once there are too many, after the
    /// applier has caught up (then the store's are the true ones).
    fn trim_heads(&self) -> Result<(), StoreError> {
        if self.shared.state.lock().heads.len() <= MAX_HEADS {
            return Ok(());
        }
        self.shared.barrier()?;
        self.shared.state.lock().heads.clear();
        Ok(())
    }

    /// Writes the numbered entries as one batch, starting a new segment
    /// first when this one is full. The append lock is held.
    fn write(&self, w: &mut Writer, new: &[Entry]) -> Result<(), StoreError> {
        if w.segment.broken {
            return Err(StoreError::Journal(
                "an earlier write failed and could not be undone; restart the server".into(),
            ));
        }
        if w.segment.is_full() {
            let next = w.dir.create(w.segment.number + 1, false)?;
            let full = std::mem::replace(&mut w.segment, next);
            self.shared
                .state
                .lock()
                .sealed
                .push_back((w.last_op, full.path));
            self.shared.wake();
        }
        let mut bytes = Vec::with_capacity(new.iter().map(|e| e.body.len() + 64).sum());
        for e in new {
            record::encode(e, &mut bytes);
        }
        let before = w.segment.len;
        w.segment
            .write(&bytes)
            .inspect_err(|e| log::error!("{e} (at byte {before})"))
    }

    /// Stops the applier after it has applied everything, and deletes the
    /// journal's files when nothing is left in them.
    fn stop(&self) {
        self.shared.state.lock().stopping = true;
        self.shared.wake();
        if let Some(t) = self.applier.lock().take() {
            if t.join().is_err() {
                log::error!("the journal's applier panicked");
            }
        }
        let st = self.shared.state.lock();
        if st.abandon {
            return;
        }
        if st.applied < st.enqueued {
            log::warn!("journal: stopped with entries unapplied; the next start replays them");
            return;
        }
        let sealed: Vec<PathBuf> = st.sealed.iter().map(|(_, p)| p.clone()).collect();
        drop(st);
        if self.shared.fsync && self.inner().sync_log().is_err() {
            return;
        }
        for path in sealed {
            segments::remove(&path);
        }
        let w = self.writer.lock();
        segments::remove(&w.segment.path);
    }
}

#[cfg(test)]
impl JournaledStore {
    /// Ends the store as a crash would: the applier stops at once and
    /// nothing more is applied or deleted (the journal stays as it is).
    fn crash(self) {
        self.shared.state.lock().abandon = true;
    }

    /// The journal's segment files, oldest first.
    fn segment_paths(&self) -> Vec<PathBuf> {
        let w = self.writer.lock();
        w.dir
            .segments()
            .unwrap_or_default()
            .into_iter()
            .map(|(_, p)| p)
            .collect()
    }
}

impl Drop for JournaledStore {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Store for JournaledStore {
    fn append(&self, entries: &[NewEntry]) -> Result<Vec<Appended>, StoreError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        let mut w = self.writer.lock();
        self.shared.wait_for_room()?;
        self.trim_heads()?;
        let known = self.cid_places(entries)?;
        let plan = Plan::new(entries, |sender, cid| {
            known.get(&sender).and_then(|m| m.get(cid)).copied()
        });
        if plan.nothing_new() {
            return plan.finish(&HashMap::new());
        }
        let ranges = self.ranges(plan.convs())?;
        let out = plan.finish(&ranges)?;
        let new: Vec<Entry> = new_entries(entries, &out)
            .into_iter()
            .map(|(e, at)| Entry {
                conv: at.conv,
                seq: at.seq,
                sender: e.sender,
                ts: at.ts,
                cid: e.cid.clone(),
                body: e.body.clone(),
            })
            .collect();
        self.write(&mut w, &new)?;
        // Committed: now the counters, the cids, and the applier's queue.
        let mut st = self.shared.state.lock();
        st.heads.extend(ranges);
        for e in &new {
            if let Some(cid) = &e.cid {
                let at = super::Stored {
                    conv: e.conv,
                    seq: e.seq,
                    ts: e.ts,
                };
                st.cids.entry(e.sender).or_default().insert(cid.clone(), at);
            }
        }
        w.last_op = self.shared.push(&mut st, Op::Entries(new));
        Ok(out)
    }

    fn set_delivered(&self, uid: i64, positions: &[(Conv, i64)]) -> Result<(), StoreError> {
        if positions.is_empty() {
            return Ok(());
        }
        self.shared.wait_for_room()?;
        let mut st = self.shared.state.lock();
        self.shared
            .push(&mut st, Op::Delivered(uid, positions.to_vec()));
        Ok(())
    }

    fn log_page(
        &self,
        conv: Conv,
        page: Page,
        floor: i64,
        limit: usize,
    ) -> Result<(Vec<Entry>, bool), StoreError> {
        self.shared.barrier()?;
        self.inner().log_page(conv, page, floor, limit)
    }

    fn conv_state(&self, uid: i64, conv: Conv) -> Result<Option<ConvState>, StoreError> {
        self.shared.barrier()?;
        self.inner().conv_state(uid, conv)
    }

    fn conversations(&self, uid: i64) -> Result<Vec<ConvState>, StoreError> {
        self.shared.barrier()?;
        self.inner().conversations(uid)
    }

    fn pending(&self, uid: i64, limit: usize) -> Result<Vec<Entry>, StoreError> {
        self.shared.barrier()?;
        self.inner().pending(uid, limit)
    }

    fn set_read(&self, uid: i64, conv: Conv, seq: i64) -> Result<Option<i64>, StoreError> {
        self.shared.barrier()?;
        self.inner().set_read(uid, conv, seq)
    }

    fn prune_log(&self, cutoff_ms: i64, limit: usize) -> Result<u64, StoreError> {
        self.shared.barrier()?;
        self.inner().prune_log(cutoff_ms, limit)
    }

    fn join_group(&self, gid: i64, uid: i64) -> Result<JoinOutcome, StoreError> {
        self.shared.barrier()?;
        self.inner().join_group(gid, uid)
    }

    fn dismiss_group(&self, gid: i64) -> Result<bool, StoreError> {
        self.shared.barrier()?;
        self.inner().dismiss_group(gid)
    }

    fn count(&self, what: Count) -> Result<u64, StoreError> {
        // Only the waiting one-to-one messages depend on the log (the
        // quota reads them rarely: at its re-check points).
        if matches!(what, Count::PendingDirect(_)) {
            self.shared.barrier()?;
        }
        self.inner().count(what)
    }

    fn sync_log(&self) -> Result<(), StoreError> {
        self.inner().sync_log()
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.shared.barrier()
    }

    // ----- The rest is not the log's: straight to the store -----

    fn create_user(&self, name: &str, password_hash: &str) -> Result<Option<i64>, StoreError> {
        self.inner().create_user(name, password_hash)
    }
    fn user_by_id(&self, uid: i64) -> Result<Option<UserRecord>, StoreError> {
        self.inner().user_by_id(uid)
    }
    fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        self.inner().user_by_name(name)
    }
    fn set_password(&self, uid: i64, password_hash: &str) -> Result<bool, StoreError> {
        self.inner().set_password(uid, password_hash)
    }
    fn revoke_tokens(&self, uid: i64) -> Result<bool, StoreError> {
        self.inner().revoke_tokens(uid)
    }
    fn set_online(&self, uid: i64, online: bool) -> Result<bool, StoreError> {
        self.inner().set_online(uid, online)
    }
    fn reset_all_online(&self) -> Result<u64, StoreError> {
        self.inner().reset_all_online()
    }
    fn set_offline_many(&self, uids: &[i64]) -> Result<u64, StoreError> {
        self.inner().set_offline_many(uids)
    }
    fn add_friend(&self, a: i64, b: i64) -> Result<bool, StoreError> {
        self.inner().add_friend(a, b)
    }
    fn delete_friend(&self, a: i64, b: i64) -> Result<bool, StoreError> {
        self.inner().delete_friend(a, b)
    }
    fn friends(&self, uid: i64) -> Result<Vec<UserInfo>, StoreError> {
        self.inner().friends(uid)
    }
    fn create_group(
        &self,
        creator: i64,
        name: &str,
        desc: &str,
    ) -> Result<Option<i64>, StoreError> {
        self.inner().create_group(creator, name, desc)
    }
    fn quit_group(&self, gid: i64, uid: i64) -> Result<bool, StoreError> {
        self.inner().quit_group(gid, uid)
    }
    fn group(&self, gid: i64) -> Result<Option<(GroupInfo, Option<i64>)>, StoreError> {
        self.inner().group(gid)
    }
    fn group_members(&self, gid: i64) -> Result<Vec<MemberInfo>, StoreError> {
        self.inner().group_members(gid)
    }
    fn group_member_ids(&self, gid: i64) -> Result<Vec<i64>, StoreError> {
        self.inner().group_member_ids(gid)
    }
    fn user_groups(&self, uid: i64) -> Result<Vec<GroupInfo>, StoreError> {
        self.inner().user_groups(uid)
    }
    fn push_offline(&self, uid: i64, message: &str) -> Result<(), StoreError> {
        self.inner().push_offline(uid, message)
    }
    fn push_offline_many(&self, messages: &[(i64, String)]) -> Result<(), StoreError> {
        self.inner().push_offline_many(messages)
    }
    fn offline_messages(&self, uid: i64) -> Result<Vec<(i64, String)>, StoreError> {
        self.inner().offline_messages(uid)
    }
    fn delete_offline(&self, uid: i64, ids: &[i64]) -> Result<u64, StoreError> {
        self.inner().delete_offline(uid, ids)
    }
}

#[cfg(test)]
mod tests;
