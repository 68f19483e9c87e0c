//! [`GatedStore`]: a [`Store`] that can hold chosen calls until the test
//! lets them go, to pin a login (or any job) in the middle of a phase.
//!
//! `hold("offline_messages")` arms a gate: from then on every call of that
//! method blocks on entry, on whichever worker made it, until
//! `release("offline_messages")`. [`GatedStore::wait_arrived`] waits until
//! a number of calls are blocked there, so the test knows the job got that
//! far. `fail("delete_offline")` makes every later call of that method
//! (only the methods that check, see [`GatedStore::injected`]) fail as a
//! database that went away would, until `heal`. Every other method goes
//! straight through to the inner store.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::model::{Conv, GroupInfo, MemberInfo, UserInfo};
use crate::storage::{
    Appended, ConvState, Entry, JoinOutcome, NewEntry, Page, SqliteStore, Store, StoreError,
    UserRecord,
};

/// How long a test waits for a call to reach a gate.
const ARRIVAL_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Gates {
    /// Methods whose calls block on entry.
    held: HashSet<&'static str>,
    /// Calls blocked now, by method.
    waiting: HashMap<&'static str, usize>,
    /// Methods whose calls fail.
    failing: HashSet<&'static str>,
    /// Calls made so far, by method (held or not).
    calls: HashMap<&'static str, usize>,
}

/// An in-memory SQLite store behind gates. See the [module docs](self).
pub struct GatedStore {
    inner: SqliteStore,
    gates: Mutex<Gates>,
    changed: Condvar,
}

impl GatedStore {
    /// A fresh in-memory database with every gate open.
    pub fn new() -> GatedStore {
        GatedStore {
            inner: SqliteStore::open_in_memory().expect("in-memory SQLite"),
            gates: Mutex::new(Gates::default()),
            changed: Condvar::new(),
        }
    }

    /// Makes every later call of `method` block until [`release`](Self::release).
    pub fn hold(&self, method: &'static str) {
        self.gates.lock().held.insert(method);
    }

    /// Lets the calls blocked at `method` (and later ones) through.
    pub fn release(&self, method: &'static str) {
        self.gates.lock().held.remove(method);
        self.changed.notify_all();
    }

    /// Makes every later call of `method` fail until [`heal`](Self::heal).
    pub fn fail(&self, method: &'static str) {
        self.gates.lock().failing.insert(method);
    }

    /// Lets calls of `method` succeed again.
    pub fn heal(&self, method: &'static str) {
        self.gates.lock().failing.remove(method);
    }

    /// The injected failure of `method`, when [`fail`](Self::fail) armed it.
    fn injected(&self, method: &'static str) -> Result<(), StoreError> {
        if self.gates.lock().failing.contains(method) {
            return Err(StoreError::Data(format!("{method}: injected failure")));
        }
        Ok(())
    }

    /// Opens every gate.
    pub fn release_all(&self) {
        self.gates.lock().held.clear();
        self.changed.notify_all();
    }

    /// Waits until `n` calls are blocked at `method`'s gate; panics after
    /// [`ARRIVAL_TIMEOUT`].
    pub fn wait_arrived(&self, method: &'static str, n: usize) {
        let deadline = Instant::now() + ARRIVAL_TIMEOUT;
        let mut gates = self.gates.lock();
        while gates.waiting.get(method).copied().unwrap_or(0) < n {
            assert!(
                !self.changed.wait_until(&mut gates, deadline).timed_out(),
                "{n} calls of {method} never arrived at its gate"
            );
        }
    }

    /// How many calls of `method` were made so far.
    pub fn calls(&self, method: &'static str) -> usize {
        self.gates.lock().calls.get(method).copied().unwrap_or(0)
    }

    /// The entry of every method: counts the call, then blocks while
    /// `method` is held.
    fn enter(&self, method: &'static str) {
        let mut gates = self.gates.lock();
        *gates.calls.entry(method).or_default() += 1;
        if !gates.held.contains(method) {
            return;
        }
        *gates.waiting.entry(method).or_default() += 1;
        self.changed.notify_all();
        while gates.held.contains(method) {
            self.changed.wait(&mut gates);
        }
        *gates.waiting.entry(method).or_default() -= 1;
    }
}

impl Store for GatedStore {
    fn create_user(&self, name: &str, password_hash: &str) -> Result<Option<i64>, StoreError> {
        self.enter("create_user");
        self.inner.create_user(name, password_hash)
    }

    fn user_by_id(&self, uid: i64) -> Result<Option<UserRecord>, StoreError> {
        self.enter("user_by_id");
        self.inner.user_by_id(uid)
    }

    fn user_by_name(&self, name: &str) -> Result<Option<UserRecord>, StoreError> {
        self.enter("user_by_name");
        self.inner.user_by_name(name)
    }

    fn set_password(&self, uid: i64, password_hash: &str) -> Result<bool, StoreError> {
        self.enter("set_password");
        self.inner.set_password(uid, password_hash)
    }

    fn revoke_tokens(&self, uid: i64) -> Result<bool, StoreError> {
        self.enter("revoke_tokens");
        self.inner.revoke_tokens(uid)
    }

    fn set_online(&self, uid: i64, online: bool) -> Result<bool, StoreError> {
        self.enter("set_online");
        self.inner.set_online(uid, online)
    }

    fn reset_all_online(&self) -> Result<u64, StoreError> {
        self.enter("reset_all_online");
        self.inner.reset_all_online()
    }

    fn set_offline_many(&self, uids: &[i64]) -> Result<u64, StoreError> {
        self.enter("set_offline_many");
        self.inner.set_offline_many(uids)
    }

    fn add_friend(&self, a: i64, b: i64) -> Result<bool, StoreError> {
        self.enter("add_friend");
        self.inner.add_friend(a, b)
    }

    fn delete_friend(&self, a: i64, b: i64) -> Result<bool, StoreError> {
        self.enter("delete_friend");
        self.inner.delete_friend(a, b)
    }

    fn friends(&self, uid: i64) -> Result<Vec<UserInfo>, StoreError> {
        self.enter("friends");
        self.inner.friends(uid)
    }

    fn create_group(
        &self,
        creator: i64,
        name: &str,
        desc: &str,
    ) -> Result<Option<i64>, StoreError> {
        self.enter("create_group");
        self.inner.create_group(creator, name, desc)
    }

    fn join_group(&self, gid: i64, uid: i64) -> Result<JoinOutcome, StoreError> {
        self.enter("join_group");
        self.inner.join_group(gid, uid)
    }

    fn quit_group(&self, gid: i64, uid: i64) -> Result<bool, StoreError> {
        self.enter("quit_group");
        self.inner.quit_group(gid, uid)
    }

    fn dismiss_group(&self, gid: i64) -> Result<bool, StoreError> {
        self.enter("dismiss_group");
        self.inner.dismiss_group(gid)
    }

    fn group(&self, gid: i64) -> Result<Option<(GroupInfo, Option<i64>)>, StoreError> {
        self.enter("group");
        self.inner.group(gid)
    }

    fn group_members(&self, gid: i64) -> Result<Vec<MemberInfo>, StoreError> {
        self.enter("group_members");
        self.inner.group_members(gid)
    }

    fn group_member_ids(&self, gid: i64) -> Result<Vec<i64>, StoreError> {
        self.enter("group_member_ids");
        self.inner.group_member_ids(gid)
    }

    fn user_groups(&self, uid: i64) -> Result<Vec<GroupInfo>, StoreError> {
        self.enter("user_groups");
        self.inner.user_groups(uid)
    }

    fn push_offline(&self, uid: i64, message: &str) -> Result<(), StoreError> {
        self.enter("push_offline");
        self.inner.push_offline(uid, message)
    }

    fn push_offline_many(&self, messages: &[(i64, String)]) -> Result<(), StoreError> {
        self.enter("push_offline_many");
        self.inner.push_offline_many(messages)
    }

    fn offline_messages(&self, uid: i64) -> Result<Vec<(i64, String)>, StoreError> {
        self.enter("offline_messages");
        self.injected("offline_messages")?;
        self.inner.offline_messages(uid)
    }

    fn delete_offline(&self, uid: i64, ids: &[i64]) -> Result<u64, StoreError> {
        self.enter("delete_offline");
        self.injected("delete_offline")?;
        self.inner.delete_offline(uid, ids)
    }
    fn append(&self, entries: &[NewEntry]) -> Result<Vec<Appended>, StoreError> {
        self.enter("append");
        self.injected("append")?;
        self.inner.append(entries)
    }

    fn log_page(
        &self,
        conv: Conv,
        page: Page,
        floor: i64,
        limit: usize,
    ) -> Result<(Vec<Entry>, bool), StoreError> {
        self.enter("log_page");
        self.inner.log_page(conv, page, floor, limit)
    }

    fn conv_state(&self, uid: i64, conv: Conv) -> Result<Option<ConvState>, StoreError> {
        self.enter("conv_state");
        self.inner.conv_state(uid, conv)
    }

    fn conversations(&self, uid: i64) -> Result<Vec<ConvState>, StoreError> {
        self.enter("conversations");
        self.inner.conversations(uid)
    }

    fn pending(&self, uid: i64, limit: usize) -> Result<Vec<Entry>, StoreError> {
        self.enter("pending");
        self.injected("pending")?;
        self.inner.pending(uid, limit)
    }

    fn set_delivered(&self, uid: i64, positions: &[(Conv, i64)]) -> Result<(), StoreError> {
        self.enter("set_delivered");
        self.injected("set_delivered")?;
        self.inner.set_delivered(uid, positions)
    }

    fn set_read(&self, uid: i64, conv: Conv, seq: i64) -> Result<Option<i64>, StoreError> {
        self.enter("set_read");
        self.inner.set_read(uid, conv, seq)
    }

    fn prune_log(&self, cutoff_ms: i64, limit: usize) -> Result<u64, StoreError> {
        self.enter("prune_log");
        self.inner.prune_log(cutoff_ms, limit)
    }

    fn count(&self, what: crate::storage::Count) -> Result<u64, StoreError> {
        self.enter("count");
        self.inner.count(what)
    }
}
