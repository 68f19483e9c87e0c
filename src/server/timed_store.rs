//! [`TimedStore`]: the store with a stopwatch, for `/metrics`'s
//! `chat_store_latency_seconds{operation}` histogram.
//!
//! Every [`Store`] call goes through [`timed`], which adds the call's
//! duration to its operation's [`Histogram`] (atomic buckets, no lock),
//! then returns what the store returned; with `--metrics off` it reads no
//! clock. The calls run where they always did (workers, the log writers),
//! so the clock reads cost nothing on an I/O thread.

use std::sync::Arc;
use std::time::Instant;

use crate::model::{Conv, ConvState, GroupInfo, MemberInfo, UserInfo};
use crate::runtime::histogram::Histogram;
use crate::storage::{
    Appended, Count, Entry, JoinOutcome, NewEntry, Page, Store, StoreError, UserRecord,
};

/// The operations, in the order of the `Store` trait (later additions at
/// the end).
const OPERATIONS: [&str; 32] = [
    "create_user",
    "user_by_id",
    "user_by_name",
    "set_online",
    "reset_all_online",
    "set_offline_many",
    "add_friend",
    "delete_friend",
    "friends",
    "create_group",
    "join_group",
    "quit_group",
    "dismiss_group",
    "group",
    "group_members",
    "group_member_ids",
    "user_groups",
    "push_offline",
    "push_offline_many",
    "offline_messages",
    "delete_offline",
    "append",
    "log_page",
    "conv_state",
    "conversations",
    "pending",
    "set_delivered",
    "set_read",
    "prune_log",
    "count",
    "set_password",
    "revoke_tokens",
];

/// The buckets' upper bounds, in seconds: 100 µs to 10 s.
static BOUNDS: [f64; 12] = [
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.05,
    0.25,
    1.0,
    10.0,
    f64::INFINITY,
];

/// A store call's histogram.
pub type StoreHistogram = Histogram<{ BOUNDS.len() }>;

/// One histogram per operation.
static LATENCY: [StoreHistogram; OPERATIONS.len()] =
    [const { Histogram::new(&BOUNDS) }; OPERATIONS.len()];

/// Each operation's name and histogram, for the scrape.
pub fn latencies() -> impl Iterator<Item = (&'static str, &'static StoreHistogram)> {
    OPERATIONS.into_iter().zip(LATENCY.iter())
}

fn timed<T>(op: usize, call: impl FnOnce() -> T) -> T {
    let start = Instant::now();
    let out = call();
    if let Some(h) = LATENCY.get(op) {
        h.observe(start.elapsed());
    }
    out
}

/// A [`Store`] that times every call of the one it wraps.
pub struct TimedStore {
    inner: Arc<dyn Store>,
}

impl TimedStore {
    /// `inner`, timed; with `timing` off (`--metrics off`) `inner` itself,
    /// so that no call reads a clock.
    pub fn wrap(inner: Arc<dyn Store>, timing: bool) -> Arc<dyn Store> {
        if !timing {
            return inner;
        }
        Arc::new(TimedStore { inner })
    }
}

impl Store for TimedStore {
    fn create_user(&self, name: &str, password_hash: &str) -> Result<Option<i64>, StoreError> {
        timed(0, || self.inner.create_user(name, password_hash))
    }

    fn user_by_id(&self, uid: i64) -> Result<Option<UserRecord>, StoreError> {
        timed(1, || self.inner.user_by_id(uid))
    }

    fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        timed(2, || self.inner.user_by_name(name))
    }

    fn set_online(&self, uid: i64, online: bool) -> Result<bool, StoreError> {
        timed(3, || self.inner.set_online(uid, online))
    }

    fn reset_all_online(&self) -> Result<u64, StoreError> {
        timed(4, || self.inner.reset_all_online())
    }

    fn set_offline_many(&self, uids: &[i64]) -> Result<u64, StoreError> {
        timed(5, || self.inner.set_offline_many(uids))
    }

    fn add_friend(&self, a: i64, b: i64) -> Result<bool, StoreError> {
        timed(6, || self.inner.add_friend(a, b))
    }

    fn delete_friend(&self, a: i64, b: i64) -> Result<bool, StoreError> {
        timed(7, || self.inner.delete_friend(a, b))
    }

    fn friends(&self, uid: i64) -> Result<Vec<UserInfo>, StoreError> {
        timed(8, || self.inner.friends(uid))
    }

    fn create_group(
        &self,
        creator: i64,
        name: &str,
        desc: &str,
    ) -> Result<Option<i64>, StoreError> {
        timed(9, || self.inner.create_group(creator, name, desc))
    }

    fn join_group(&self, gid: i64, uid: i64) -> Result<JoinOutcome, StoreError> {
        timed(10, || self.inner.join_group(gid, uid))
    }

    fn quit_group(&self, gid: i64, uid: i64) -> Result<bool, StoreError> {
        timed(11, || self.inner.quit_group(gid, uid))
    }

    fn dismiss_group(&self, gid: i64) -> Result<bool, StoreError> {
        timed(12, || self.inner.dismiss_group(gid))
    }

    fn group(&self, gid: i64) -> Result<Option<(GroupInfo, Option<i64>)>, StoreError> {
        timed(13, || self.inner.group(gid))
    }

    fn group_members(&self, gid: i64) -> Result<Vec<MemberInfo>, StoreError> {
        timed(14, || self.inner.group_members(gid))
    }

    fn group_member_ids(&self, gid: i64) -> Result<Vec<i64>, StoreError> {
        timed(15, || self.inner.group_member_ids(gid))
    }

    fn user_groups(&self, uid: i64) -> Result<Vec<GroupInfo>, StoreError> {
        timed(16, || self.inner.user_groups(uid))
    }

    fn push_offline(&self, uid: i64, message: &str) -> Result<(), StoreError> {
        timed(17, || self.inner.push_offline(uid, message))
    }

    fn push_offline_many(&self, messages: &[(i64, String)]) -> Result<(), StoreError> {
        timed(18, || self.inner.push_offline_many(messages))
    }

    fn offline_messages(&self, uid: i64) -> Result<Vec<(i64, String)>, StoreError> {
        timed(19, || self.inner.offline_messages(uid))
    }

    fn delete_offline(&self, uid: i64, ids: &[i64]) -> Result<u64, StoreError> {
        timed(20, || self.inner.delete_offline(uid, ids))
    }

    fn append(&self, entries: &[NewEntry]) -> Result<Vec<Appended>, StoreError> {
        timed(21, || self.inner.append(entries))
    }

    fn log_page(
        &self,
        conv: Conv,
        page: Page,
        floor: i64,
        limit: usize,
    ) -> Result<(Vec<Entry>, bool), StoreError> {
        timed(22, || self.inner.log_page(conv, page, floor, limit))
    }

    fn conv_state(&self, uid: i64, conv: Conv) -> Result<Option<ConvState>, StoreError> {
        timed(23, || self.inner.conv_state(uid, conv))
    }

    fn conversations(&self, uid: i64) -> Result<Vec<ConvState>, StoreError> {
        timed(24, || self.inner.conversations(uid))
    }

    fn pending(&self, uid: i64, limit: usize) -> Result<Vec<Entry>, StoreError> {
        timed(25, || self.inner.pending(uid, limit))
    }

    fn set_delivered(&self, uid: i64, positions: &[(Conv, i64)]) -> Result<(), StoreError> {
        timed(26, || self.inner.set_delivered(uid, positions))
    }

    fn set_read(&self, uid: i64, conv: Conv, seq: i64) -> Result<Option<i64>, StoreError> {
        timed(27, || self.inner.set_read(uid, conv, seq))
    }

    fn prune_log(&self, cutoff_ms: i64, limit: usize) -> Result<u64, StoreError> {
        timed(28, || self.inner.prune_log(cutoff_ms, limit))
    }

    fn count(&self, what: Count) -> Result<u64, StoreError> {
        timed(29, || self.inner.count(what))
    }

    // The journal's calls and the stop's flush: passed on, not timed.

    fn apply_log(&self, entries: &[Entry]) -> Result<(), StoreError> {
        self.inner.apply_log(entries)
    }

    fn log_heads(
        &self,
        convs: &[Conv],
    ) -> Result<std::collections::HashMap<i64, (i64, i64)>, StoreError> {
        self.inner.log_heads(convs)
    }

    fn find_cids(&self, entries: &[NewEntry]) -> Result<crate::storage::CidPlaces, StoreError> {
        self.inner.find_cids(entries)
    }

    fn sync_log(&self) -> Result<(), StoreError> {
        self.inner.sync_log()
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush()
    }

    fn set_password(&self, uid: i64, password_hash: &str) -> Result<bool, StoreError> {
        timed(30, || self.inner.set_password(uid, password_hash))
    }

    fn revoke_tokens(&self, uid: i64) -> Result<bool, StoreError> {
        timed(31, || self.inner.revoke_tokens(uid))
    }
}
