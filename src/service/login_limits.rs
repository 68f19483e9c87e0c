//! Limits on registers and logins, by source address and by account
//! (issue 12, items 6 and 7): what keeps one client, or one address, from
//! taking the password hasher for itself, guessing passwords quickly, or
//! creating accounts without end.
//!
//! | limit | counted | over it |
//! |---|---|---|
//! | pending hashes per address (`--max-pending-hashes-per-address`) | registers and logins queued or running, all connections of the address | errno 12 in the ack, nothing hashed |
//! | failed logins per account (`--login-failures-per-account`) | wrong password or no such account, per account named | errno 12 + `retry_after` in the login ack, nothing hashed |
//! | failed logins per address (`--login-failures-per-address`) | the same, per source address | the same |
//! | registrations per address (`--registrations-per-address`) | registers that reach the hasher | errno 12 + `retry_after` in the register ack |
//! | accounts per address (`--accounts-per-address`) | accounts created | errno 13 + `retry_after` in the register ack |
//!
//! The failed-login limits block for a cool-down (`--login-cooldown`)
//! that doubles with each block, up to `--login-cooldown-max`; the others
//! are a count per window. The arithmetic is [`Throttle`]'s (src/runtime/
//! throttle.rs), which also bounds each map to [`THROTTLE_KEYS`] keys.
//! All counts are kept in memory, and a restart forgets them. In cluster
//! mode the failed logins are also counted cluster-wide in Redis
//! ([`SharedThrottle`](crate::cluster::SharedThrottle), on the hashing
//! threads); the other limits are each node's own.
//!
//! A session without an address (the service's unit tests' peers) has
//! only the per-connection limit and the per-account throttle.
//!
//! # Threads
//!
//! Each map is under its own lock, held for one map operation. The
//! hashing threads run in the idle scheduling class and may be preempted
//! for long while holding a lock, so a lock they take is one no I/O thread
//! takes: the per-account throttle is checked and counted on the hashing
//! threads only (where the account is looked up). The per-address maps are
//! the I/O threads' alone (the request's arrival, the answer's departure);
//! a pending hash is given back with an atomic decrement, from any thread.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::runtime::throttle::{Cooldown, Rule, Throttle};

/// The most keys each throttle remembers (about 100 bytes each).
pub const THROTTLE_KEYS: usize = 100_000;

/// The limits' settings (`--max-pending-hashes-per-address`,
/// `--login-failures-per-account`, …; see the README). A count of 0 turns
/// its limit off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginLimits {
    /// Registers and logins one address may have queued or running.
    pub pending_per_address: u32,
    /// Failed logins per account within `window` that block it.
    pub failures_per_account: u32,
    /// Failed logins per address within `window` that block it.
    pub failures_per_address: u32,
    /// The window of the failed-login and registration counts.
    pub window: Duration,
    /// The first block after too many failed logins; each next doubles.
    pub cooldown: Duration,
    /// The longest block.
    pub cooldown_max: Duration,
    /// Registrations per address within `window`.
    pub registrations_per_address: u32,
    /// Accounts created per address within `accounts_window`.
    pub accounts_per_address: u32,
    /// The window of the accounts count.
    pub accounts_window: Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            pending_per_address: 16,
            failures_per_account: 5,
            failures_per_address: 20,
            window: Duration::from_secs(60),
            cooldown: Duration::from_secs(60),
            cooldown_max: Duration::from_secs(15 * 60),
            registrations_per_address: 20,
            accounts_per_address: 100,
            accounts_window: Duration::from_secs(24 * 3600),
        }
    }
}

/// An account as a failed login names it: an existing account by its id
/// (however the login named it), one that does not exist as it was named,
/// so that the answers do not tell which names exist.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AccountKey {
    /// An account id.
    Id(i64),
    /// A user name with no account.
    Name(String),
}

impl AccountKey {
    /// Its name in the cluster-wide counts.
    pub fn shared_name(&self) -> String {
        match self {
            AccountKey::Id(uid) => format!("acct:id:{uid}"),
            AccountKey::Name(name) => format!("acct:name:{name}"),
        }
    }
}

/// An address's name in the cluster-wide counts.
pub fn shared_address(ip: IpAddr) -> String {
    format!("addr:{ip}")
}

/// The limits' state; see the [module documentation](self).
pub struct LoginThrottles {
    /// Pending hashes per address.
    pub pending: PendingByAddress,
    /// Failed logins per account; hashing threads only.
    pub account_failures: Mutex<Throttle<AccountKey>>,
    /// Failed logins per address; I/O threads only.
    pub address_failures: Mutex<Throttle<IpAddr>>,
    /// Registrations per address; I/O threads only.
    pub registrations: Mutex<Throttle<IpAddr>>,
    /// Accounts created per address; I/O threads only.
    pub accounts: Mutex<Throttle<IpAddr>>,
    /// The rules of the failed-login throttles, for the cluster-wide
    /// counts: per account, per address.
    pub failure_rules: (Rule, Rule),
}

impl LoginThrottles {
    /// The state for `config`, empty; any thread.
    pub fn new(config: &LoginLimits) -> LoginThrottles {
        let cooldown = Some(Cooldown {
            first: config.cooldown,
            max: config.cooldown_max.max(config.cooldown),
        });
        let failures = |limit| Rule {
            limit,
            window: config.window,
            cooldown,
        };
        let rate = |limit, window| Rule {
            limit,
            window,
            cooldown: None,
        };
        LoginThrottles {
            pending: PendingByAddress::new(config.pending_per_address),
            account_failures: Mutex::new(Throttle::new(
                failures(config.failures_per_account),
                THROTTLE_KEYS,
            )),
            address_failures: Mutex::new(Throttle::new(
                failures(config.failures_per_address),
                THROTTLE_KEYS,
            )),
            registrations: Mutex::new(Throttle::new(
                rate(config.registrations_per_address, config.window),
                THROTTLE_KEYS,
            )),
            accounts: Mutex::new(Throttle::new(
                rate(config.accounts_per_address, config.accounts_window),
                THROTTLE_KEYS,
            )),
            failure_rules: (
                failures(config.failures_per_account),
                failures(config.failures_per_address),
            ),
        }
    }
}

/// The hashing jobs queued or running per source address, against a
/// limit. An address's count is an atomic that its
/// [`PendingHash`](super::PendingHash)es decrement when they end, from any
/// thread, without the map's lock; the map forgets addresses at zero now
/// and then.
pub struct PendingByAddress {
    /// 0: no limit.
    limit: u32,
    counts: Mutex<Counts>,
}

struct Counts {
    map: HashMap<IpAddr, Arc<AtomicU32>>,
    /// Sweep for addresses at zero when the map grows past this.
    sweep_above: usize,
}

/// A pending hash's place in its address's count.
pub type AddressCount = Arc<AtomicU32>;

impl PendingByAddress {
    /// Counts against `limit` per address (0: no limit, nothing counted).
    pub fn new(limit: u32) -> PendingByAddress {
        PendingByAddress {
            limit,
            counts: Mutex::new(Counts {
                map: HashMap::new(),
                sweep_above: 64,
            }),
        }
    }

    /// One more pending hash for `ip`: `Ok(Some(count))` to decrement when
    /// it ends, `Ok(None)` when nothing is counted (no limit), `Err(())`
    /// when the address has `limit` pending already. I/O threads.
    #[allow(clippy::result_unit_err)]
    pub fn take(&self, ip: IpAddr) -> Result<Option<AddressCount>, ()> {
        if self.limit == 0 {
            return Ok(None);
        }
        let mut counts = self.counts.lock();
        if counts.map.len() > counts.sweep_above {
            counts.map.retain(|_, n| n.load(Ordering::Acquire) > 0);
            counts.sweep_above = (counts.map.len() * 2).max(64);
        }
        let n = counts.map.entry(ip).or_default();
        // Only I/O threads add, under this lock: the check holds.
        if n.load(Ordering::Acquire) >= self.limit {
            return Err(());
        }
        n.fetch_add(1, Ordering::AcqRel);
        Ok(Some(n.clone()))
    }

    /// The hashes pending for `ip` now; any thread (the tests').
    #[cfg(test)]
    pub fn count(&self, ip: IpAddr) -> u32 {
        let counts = self.counts.lock();
        counts.map.get(&ip).map_or(0, |n| n.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn pending_hashes_are_counted_per_address_and_given_back() {
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
        let b = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));
        let p = PendingByAddress::new(2);
        let one = p.take(a).unwrap().unwrap();
        let _two = p.take(a).unwrap().unwrap();
        assert!(p.take(a).is_err(), "the third is over the limit");
        assert!(p.take(b).is_ok(), "another address has its own");
        one.fetch_sub(1, Ordering::AcqRel);
        assert_eq!(p.count(a), 1);
        assert!(p.take(a).is_ok());
        assert!(
            matches!(PendingByAddress::new(0).take(a), Ok(None)),
            "0: no limit"
        );
    }

    #[test]
    fn addresses_at_zero_are_forgotten() {
        let p = PendingByAddress::new(1);
        for i in 0..10_000u32 {
            let ip = IpAddr::V4(Ipv4Addr::from(i));
            let n = p.take(ip).unwrap().unwrap();
            n.fetch_sub(1, Ordering::AcqRel);
        }
        assert!(
            p.counts.lock().map.len() <= 129,
            "the map kept idle addresses"
        );
    }
}
