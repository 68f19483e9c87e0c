//! [`Plan`]: the store-independent half of [`Store::append`](super::Store::append).
//!
//! Both stores append in the same four steps, inside one transaction:
//!
//! 1. look up the entries' `(sender, cid)` pairs already in the log;
//! 2. [`Plan::new`] sorts the entries into duplicates (of a stored entry,
//!    or of an earlier entry of the same call) and new ones, and counts the
//!    new ones per conversation ([`Plan::convs`], sorted by key: the order
//!    in which MySQL locks the conversation rows, the same in every
//!    transaction, so two appends never wait for each other in a circle);
//! 3. the store raises each conversation's `last_seq` by its count and
//!    reads back the new `last_seq` and `last_ts` (the rows stay locked);
//! 4. [`Plan::finish`] numbers the new entries from those ranges: the `n`
//!    new entries of a conversation whose `last_seq` became `L` get
//!    `L - n + 1 ..= L`, in the order of the call.
//!
//! Nothing here touches a database, so the numbering rules are unit-tested
//! without one (`tests.rs`). Any thread.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;

use super::{Appended, NewEntry, StoreError, Stored};
use crate::model::Conv;
use crate::runtime::WordHash;

/// What happens to one entry of the call.
#[derive(Debug, Clone, Copy)]
enum Slot {
    /// Stored now: the `nth` (from 0) new entry of conversation `conv`.
    New { conv: Conv, nth: i64 },
    /// Its `(sender, cid)` is the one of entry `index`, earlier in the call.
    SameAs(usize),
    /// Its `(sender, cid)` is in the log already, here.
    Stored(Stored),
}

/// The new and duplicate entries of one append call; see the module docs.
#[derive(Debug)]
pub(super) struct Plan {
    /// One per entry, in the call's order.
    slots: Vec<Slot>,
    /// Each conversation with new entries and how many, sorted by key.
    convs: Vec<(Conv, i64)>,
}

/// A conversation's counters after the increment: `(last_seq, last_ts)`.
pub(super) type Range = (i64, i64);

impl Plan {
    /// Sorts `entries` into new ones and duplicates. `stored(sender, cid)`
    /// says where a pair already in the log is (step 1's answer).
    pub(super) fn new(entries: &[NewEntry], stored: impl Fn(i64, &str) -> Option<Stored>) -> Plan {
        let mut first_of: HashMap<(i64, &str), usize, WordHash> = HashMap::default();
        let mut counts: BTreeMap<i64, (Conv, i64)> = BTreeMap::new();
        let mut slots = Vec::with_capacity(entries.len());
        for (i, e) in entries.iter().enumerate() {
            if let Some(cid) = e.cid.as_deref() {
                if let Some(at) = stored(e.sender, cid) {
                    slots.push(Slot::Stored(at));
                    continue;
                }
                if let Some(&earlier) = first_of.get(&(e.sender, cid)) {
                    slots.push(Slot::SameAs(earlier));
                    continue;
                }
                first_of.insert((e.sender, cid), i);
            }
            let count = &mut counts.entry(e.conv.key()).or_insert((e.conv, 0)).1;
            slots.push(Slot::New {
                conv: e.conv,
                nth: *count,
            });
            *count += 1;
        }
        Plan {
            slots,
            convs: counts.into_values().collect(),
        }
    }

    /// The conversations that get new entries, with how many each, sorted
    /// by key.
    pub(super) fn convs(&self) -> &[(Conv, i64)] {
        &self.convs
    }

    /// Whether no entry is new (every one is a duplicate).
    pub(super) fn nothing_new(&self) -> bool {
        self.convs.is_empty()
    }

    /// The place of every entry, given each conversation's range after the
    /// increment (keyed by [`Conv::key`]).
    ///
    /// # Errors
    ///
    /// [`StoreError::Data`] when a conversation of [`convs`](Plan::convs)
    /// has no range: the database did not return the row it just wrote.
    pub(super) fn finish<S: BuildHasher>(
        &self,
        ranges: &HashMap<i64, Range, S>,
    ) -> Result<Vec<Appended>, StoreError> {
        // Keyed by WordHash, as the journal's ranges: SipHash was two
        // hashes of a few dozen instructions for each message appended.
        let counts: HashMap<i64, i64, WordHash> =
            self.convs.iter().map(|&(c, n)| (c.key(), n)).collect();
        let mut out: Vec<Appended> = Vec::with_capacity(self.slots.len());
        for slot in &self.slots {
            let appended = match *slot {
                Slot::New { conv, nth } => {
                    let (last_seq, ts) = ranges.get(&conv.key()).copied().ok_or_else(|| {
                        StoreError::Data(format!("no counter row for conversation {conv}"))
                    })?;
                    let count = counts.get(&conv.key()).copied().unwrap_or(0);
                    let seq = last_seq - count + 1 + nth;
                    Appended::New(Stored { conv, seq, ts })
                }
                Slot::SameAs(earlier) => {
                    // `earlier` < this index, so it is in `out` already.
                    let at = out
                        .get(earlier)
                        .map(Appended::stored)
                        .ok_or_else(|| StoreError::Data("a duplicate cid refers forward".into()))?;
                    Appended::Duplicate(at)
                }
                Slot::Stored(at) => Appended::Duplicate(at),
            };
            out.push(appended);
        }
        Ok(out)
    }
}

/// The entries `out` says are new, with their places: what the insert
/// writes.
pub(super) fn new_entries<'a>(
    entries: &'a [NewEntry],
    out: &[Appended],
) -> Vec<(&'a NewEntry, Stored)> {
    entries
        .iter()
        .zip(out)
        .filter_map(|(e, a)| match a {
            Appended::New(at) => Some((e, *at)),
            Appended::Duplicate(_) => None,
        })
        .collect()
}

/// The cursor rows a first append to `conv` creates: both participants of
/// a one-to-one conversation (one for a conversation with oneself), none
/// for a group (members get theirs when they join).
pub(super) fn first_cursors(conv: Conv) -> Vec<(i64, i64)> {
    match conv {
        Conv::Direct { low, high } if low == high => vec![(low, conv.key())],
        Conv::Direct { low, high } => vec![(low, conv.key()), (high, conv.key())],
        Conv::Group(_) => Vec::new(),
    }
}

/// Now, in milliseconds since the Unix epoch (0 for a clock before 1970).
pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
