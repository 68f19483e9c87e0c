//! Connections before login: at most `--max-anonymous-per-address` of them
//! from one source address, each for at most `--login-timeout`.
//!
//! (The same [`AddressSlots`] also count every connection of an address,
//! logged in or not, against `--max-connections-per-address`: there a
//! connection holds its slot for its whole life, in its `Context`, and one
//! over the quota gets errno 13 at accept.)
//!
//! [`AddressSlots`] counts the anonymous connections of each address. The
//! connection callback takes a [`Slot`] for a new connection; when the
//! address has none left, the connection gets an ERROR_MSG (errno 12,
//! `TOO_MANY`), is shut down, and is closed by the sweep (one interval at
//! least later, so the reply can leave first). The slot is
//! given back when the connection closes, or when it logs in.
//!
//! The server learns of a login from the session, so the idle sweep
//! (src/server/idle.rs) asks each connection's [`PreLogin`] every interval:
//! logged in, it gives its slot back; logged out again, it takes one
//! (without a limit: it was counted once) and its login clock restarts;
//! anonymous longer than the login timeout, it gets an ERROR_MSG (errno 3,
//! `NOT_LOGGED_IN`), is shut down and closed by a later sweep. A login
//! therefore frees its slot within one sweep interval (at most 1 s).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The anonymous connections of every source address, against a limit.
/// Shared by every I/O thread; its lock is held for one map update.
#[derive(Debug)]
pub struct AddressSlots {
    /// Slots per address; 0: no limit.
    limit: usize,
    taken: Mutex<HashMap<IpAddr, usize>>,
}

impl AddressSlots {
    /// Slots for `limit` anonymous connections per address (0: no limit);
    /// any thread.
    pub fn new(limit: usize) -> Arc<AddressSlots> {
        Arc::new(AddressSlots {
            limit,
            taken: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for a new connection from `ip`, or `None` when the address
    /// has `limit` anonymous connections already. Any thread.
    pub fn try_take(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        let ip = ip.to_canonical();
        let mut taken = self.taken.lock();
        let n = taken.entry(ip).or_insert(0);
        if self.limit != 0 && *n >= self.limit {
            return None;
        }
        *n += 1;
        Some(Slot {
            slots: self.clone(),
            ip,
        })
    }

    /// A slot for `ip` even over the limit: for a connection that logged
    /// out (it was let in once). Any thread.
    pub fn take(self: &Arc<Self>, ip: IpAddr) -> Slot {
        let ip = ip.to_canonical();
        *self.taken.lock().entry(ip).or_insert(0) += 1;
        Slot {
            slots: self.clone(),
            ip,
        }
    }

    /// The anonymous connections of `ip` now; any thread (the tests').
    #[cfg(test)]
    pub fn count(&self, ip: IpAddr) -> usize {
        let taken = self.taken.lock();
        taken.get(&ip.to_canonical()).copied().unwrap_or(0)
    }

    fn give_back(&self, ip: IpAddr) {
        let mut taken = self.taken.lock();
        if let Some(n) = taken.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                // Forgotten, so the map holds only addresses in use.
                taken.remove(&ip);
            }
        }
    }
}

/// One anonymous connection's place in its address's count, given back
/// when dropped.
#[derive(Debug)]
pub struct Slot {
    slots: Arc<AddressSlots>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.slots.give_back(self.ip);
    }
}

/// What a sweep decided about one connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Nothing to do.
    Keep,
    /// Anonymous for longer than the login timeout: tell it and close it.
    Expired,
}

/// A connection's state before login, kept in its `Context`. Only its
/// loop's thread uses it (the connection callback and the sweep).
#[derive(Debug)]
pub struct PreLogin {
    /// Its place in the address's count while anonymous.
    slot: Option<Slot>,
    /// Since when it has been anonymous; `None` while logged in.
    since: Option<Instant>,
}

impl PreLogin {
    /// A new connection, anonymous from now, holding `slot`; any thread
    /// (the connection callback's).
    pub fn new(slot: Option<Slot>) -> PreLogin {
        PreLogin {
            slot,
            since: Some(Instant::now()),
        }
    }

    /// One sweep's look at the connection, `logged_in` or not, at `now`:
    /// gives back or takes a slot from `slots` as the login changed, and
    /// says whether it has been anonymous longer than `timeout`. The
    /// connection's loop thread (the sweep).
    pub fn check(
        &mut self,
        logged_in: bool,
        now: Instant,
        timeout: Option<Duration>,
        slots: &Arc<AddressSlots>,
        ip: IpAddr,
    ) -> Verdict {
        match (logged_in, self.since) {
            (true, _) => {
                self.slot = None;
                self.since = None;
            }
            // Logged out since the last sweep: counted again, clock restarts.
            (false, None) => {
                self.slot = Some(slots.take(ip));
                self.since = Some(now);
            }
            (false, Some(since)) => {
                if timeout.is_some_and(|t| now.saturating_duration_since(since) > t) {
                    return Verdict::Expired;
                }
            }
        }
        Verdict::Keep
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IP: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    #[test]
    fn slots_are_counted_per_address_and_given_back() {
        let slots = AddressSlots::new(2);
        let a = slots.try_take(IP);
        let b = slots.try_take(IP);
        assert!(a.is_some() && b.is_some());
        assert!(slots.try_take(IP).is_none(), "the third is over the limit");
        let other = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
        assert!(
            slots.try_take(other).is_some(),
            "another address has its own"
        );
        drop(a);
        assert_eq!(slots.count(IP), 1);
        assert!(slots.try_take(IP).is_some());
    }

    #[test]
    fn an_ipv4_mapped_address_is_the_ipv4_address() {
        let slots = AddressSlots::new(1);
        let _a = slots.try_take(IP);
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        assert!(slots.try_take(mapped).is_none());
    }

    #[test]
    fn a_login_frees_the_slot_and_a_logout_takes_one() {
        let slots = AddressSlots::new(1);
        let t0 = Instant::now();
        let timeout = Some(Duration::from_secs(30));
        let mut p = PreLogin::new(slots.try_take(IP));
        assert_eq!(p.check(true, t0, timeout, &slots, IP), Verdict::Keep);
        assert_eq!(slots.count(IP), 0, "logged in: the slot is free");
        let later = t0 + Duration::from_secs(60);
        assert_eq!(p.check(false, later, timeout, &slots, IP), Verdict::Keep);
        assert_eq!(slots.count(IP), 1, "logged out: counted again");
        let expiry = later + Duration::from_secs(31);
        assert_eq!(
            p.check(false, expiry, timeout, &slots, IP),
            Verdict::Expired
        );
        drop(p);
        assert_eq!(slots.count(IP), 0);
    }

    #[test]
    fn no_timeout_never_expires() {
        let slots = AddressSlots::new(0);
        let mut p = PreLogin::new(slots.try_take(IP));
        let much_later = Instant::now() + Duration::from_secs(86_400);
        assert_eq!(p.check(false, much_later, None, &slots, IP), Verdict::Keep);
    }
}
