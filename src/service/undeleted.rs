//! `Undeleted`: offline rows a login ack has delivered but the database
//! did not delete (the delete failed: the database went away, or crashed
//! and came back), so that the user's next login neither delivers them
//! again nor forgets to delete them.
//!
//! A login reads the user's offline rows in phase 2 and deletes exactly
//! those ids after the ack went out (src/service/account.rs). Deleting by
//! id is safe to repeat: ids already gone are skipped, and rows stored
//! meanwhile have other ids. So when the delete fails the ids wait here;
//! the next login of the user first repeats the delete, and whatever is
//! still undeleted it leaves out of its ack. Both steps run on the user's
//! worker, in order with every other offline job of that user.
//!
//! The set lives in memory: a server that stops while the database is
//! down forgets it, and those rows are delivered once more after the
//! restart (at least once, never lost).

use std::collections::HashMap;

use parking_lot::Mutex;

/// Delivered-but-undeleted offline row ids, by user. Every method is safe
/// on any thread and holds the lock only for a map operation; the service
/// calls them on the user's worker.
#[derive(Default)]
pub struct Undeleted {
    by_user: Mutex<HashMap<i64, Vec<i64>>>,
}

impl Undeleted {
    /// Remembers that the rows `ids` of `uid` were delivered and still
    /// need deleting.
    pub fn remember(&self, uid: i64, ids: &[i64]) {
        if ids.is_empty() {
            return;
        }
        let mut map = self.by_user.lock();
        let pending = map.entry(uid).or_default();
        pending.extend_from_slice(ids);
        pending.sort_unstable();
        pending.dedup();
    }

    /// Takes the ids remembered for `uid`, ascending (empty when none).
    pub fn take(&self, uid: i64) -> Vec<i64> {
        self.by_user.lock().remove(&uid).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::Undeleted;

    #[test]
    fn remembers_sorted_and_unique_until_taken() {
        let u = Undeleted::default();
        u.remember(1, &[5, 3]);
        u.remember(1, &[3, 4]);
        u.remember(2, &[]);
        assert_eq!(u.take(1), [3, 4, 5]);
        assert!(u.take(1).is_empty());
        assert!(u.take(2).is_empty());
    }
}
