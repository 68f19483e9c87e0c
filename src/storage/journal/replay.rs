//! Replaying journal entries onto a store: at open, when a crash left
//! entries unapplied, and in `chat-server backup`, whose copy gets the
//! entries that a running server's journal holds and its database does
//! not hold yet.
//!
//! # What a replay leaves out
//!
//! A segment keeps its entries after they are applied (it is deleted only
//! once it is full and all of it is in the store), so a replay meets
//! entries that are stored already, and entries whose rows were deleted
//! since: pruned by `--history-retention`, or posted to a group that was
//! then dismissed. Storing those again would bring back what a prune or a
//! dismissal removed, so [`replay`] skips them:
//!
//! - an entry numbered at or below its conversation's counter is stored,
//!   or was deleted: a counter and the rows under it are committed in one
//!   transaction, and nothing lowers a counter;
//! - a group's entry whose conversation has no counter and whose group is
//!   gone belongs to a dismissed group (a dismissal deletes the counter
//!   with the rows).
//!
//! Everything else is new to the store and goes in through
//! [`Store::apply_log`], which is idempotent besides.
//!
//! # Threads
//!
//! Blocks on files and on the store: the server's start, or the backup
//! command; never an I/O thread.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use super::applier::MAX_APPLY;
use super::{record, segments};
use crate::model::Conv;
use crate::storage::{Entry, Store, StoreError};

/// The whole records of every segment in the journal directory `dir`,
/// oldest first, read without taking the journal's lock and without
/// changing any file: what a running server's journal holds at this
/// moment. A torn tail is a write still in progress (not acked yet) and is
/// left out. A segment deleted between the listing and the read is
/// skipped: the applier deletes a segment only when all of it is in the
/// store.
///
/// # Errors
/// When the directory cannot be listed or a segment cannot be read.
pub fn read_dir(dir: &Path) -> Result<Vec<Entry>, StoreError> {
    let mut entries = Vec::new();
    for (_, path) in segments::list(dir)? {
        match std::fs::read(&path) {
            Ok(bytes) => entries.extend(record::decode_all(&bytes).0),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::Journal(format!("read {}: {e}", path.display()))),
        }
    }
    Ok(entries)
}

/// Stores those of `entries` that `store` neither holds nor deleted (see
/// the [module docs](self)), in pieces of at most [`MAX_APPLY`]; returns
/// how many it stored.
///
/// # Errors
/// The store's.
pub fn replay(store: &dyn Store, entries: Vec<Entry>) -> Result<usize, StoreError> {
    let new = unapplied(store, entries)?;
    for chunk in new.chunks(MAX_APPLY) {
        store.apply_log(chunk)?;
    }
    Ok(new.len())
}

/// `entries` without those the store holds or deleted.
fn unapplied(store: &dyn Store, mut entries: Vec<Entry>) -> Result<Vec<Entry>, StoreError> {
    if entries.is_empty() {
        return Ok(entries);
    }
    let mut convs: Vec<Conv> = entries.iter().map(|e| e.conv).collect();
    convs.sort_unstable();
    convs.dedup();
    let heads: HashMap<i64, (i64, i64)> = store.log_heads(&convs)?;
    let mut dismissed = HashSet::new();
    for conv in convs {
        if let Conv::Group(gid) = conv {
            if !heads.contains_key(&conv.key()) && store.group(gid)?.is_none() {
                dismissed.insert(conv.key());
            }
        }
    }
    entries.retain(|e| {
        let key = e.conv.key();
        let stored = heads.get(&key).is_some_and(|&(last, _)| e.seq <= last);
        !stored && !dismissed.contains(&key)
    });
    Ok(entries)
}
