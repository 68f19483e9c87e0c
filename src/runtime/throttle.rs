//! `Throttle`: "at most N of these per window, per key", with a cool-down
//! that doubles, in bounded memory.
//!
//! The service keeps several, keyed by account or by source address: failed
//! logins, registrations, accounts created (src/service/login_limits.rs). Each
//! counts *hits* of a key inside a window that opens with the key's first
//! hit and lasts [`Rule::window`]. The hit that reaches [`Rule::limit`]
//! blocks the key:
//!
//! - with a [`Cooldown`], for the cool-down's first length, doubled for
//!   each block the key had before (its *strikes*), up to the cool-down's
//!   maximum. A key quiet for a maximum cool-down after its last block
//!   ends starts again from no strikes. The window reopens when the block
//!   ends.
//! - without, until its window ends: a plain rate limit.
//!
//! ```text
//!   limit 3, window 60 s, cool-down 60 s doubling up to 15 min:
//!   hit hit hit│ blocked 60 s │hit hit hit│ blocked 120 s │ … │ blocked 900 s │
//! ```
//!
//! While a key is blocked [`Throttle::check`] says for how long still (the
//! `retry_after` of the answer) and [`Throttle::hit`] counts nothing.
//!
//! # Bounded memory
//!
//! An attacker with many accounts or addresses must not grow the map
//! without end. A throttle holds at most `capacity` keys. A new key that
//! finds it full first drops every key with nothing left to remember (no
//! block, its window over, no strikes that still count); if that frees
//! less than an eighth, it drops the keys seen longest ago, unblocked ones
//! first, down to seven eighths. Each sweep is linear, and the next comes
//! only after an eighth of the capacity has been inserted again, so a hit
//! costs O(1) amortised. A key dropped early forgets its hits: the price
//! of the bound, paid first by the keys least worth remembering.
//!
//! # Threads
//!
//! A `Throttle` is plain data, `&mut self` throughout, and takes the time
//! as an argument (the tests' clock is a variable). Its owner puts it
//! under a lock.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::{Duration, Instant};

/// The cool-down after a key reached its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cooldown {
    /// The first block's length.
    pub first: Duration,
    /// The longest block, reached by doubling.
    pub max: Duration,
}

/// What a throttle allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Hits per window that block the key; 0: never blocks.
    pub limit: u32,
    /// How long a window lasts from the key's first hit.
    pub window: Duration,
    /// The block after the limit; `None`: until the window ends.
    pub cooldown: Option<Cooldown>,
}

/// One key's record.
#[derive(Debug, Clone)]
struct Entry {
    window_start: Instant,
    hits: u32,
    /// Until when it is blocked (maybe past).
    blocked_until: Option<Instant>,
    /// Blocks so far (each doubles the next cool-down).
    strikes: u32,
    /// Its last hit or check, for eviction.
    seen: Instant,
}

/// See the [module documentation](self).
#[derive(Debug)]
pub struct Throttle<K> {
    rule: Rule,
    capacity: usize,
    entries: HashMap<K, Entry>,
}

impl<K: Hash + Eq + Clone> Throttle<K> {
    /// A throttle with `rule` that remembers at most `capacity` keys (at
    /// least 8).
    pub fn new(rule: Rule, capacity: usize) -> Throttle<K> {
        Throttle {
            rule,
            capacity: capacity.max(8),
            entries: HashMap::new(),
        }
    }

    /// Its rule.
    pub fn rule(&self) -> Rule {
        self.rule
    }

    /// `Err(retry_after)` while `key` is blocked at `now`.
    pub fn check(&mut self, key: &K, now: Instant) -> Result<(), Duration> {
        match self.entries.get_mut(key) {
            Some(e) => {
                e.seen = now;
                blocked(e, now)
            }
            None => Ok(()),
        }
    }

    /// Counts one hit of `key` at `now`; the hit that reaches the limit
    /// blocks the key from now. `Err(retry_after)`, and nothing counted,
    /// when the key is blocked already. A rule with limit 0 counts nothing.
    pub fn hit(&mut self, key: K, now: Instant) -> Result<(), Duration> {
        if self.rule.limit == 0 {
            return Ok(());
        }
        if !self.entries.contains_key(&key) && self.entries.len() >= self.capacity {
            self.make_room(now);
        }
        let rule = self.rule;
        let e = self.entries.entry(key).or_insert(Entry {
            window_start: now,
            hits: 0,
            blocked_until: None,
            strikes: 0,
            seen: now,
        });
        e.seen = now;
        blocked(e, now)?;
        if now.saturating_duration_since(e.window_start) >= rule.window {
            e.window_start = now;
            e.hits = 0;
        }
        if let (Some(cd), Some(until)) = (rule.cooldown, e.blocked_until) {
            if now.saturating_duration_since(until) >= cd.max {
                e.strikes = 0;
            }
        }
        e.hits += 1;
        if e.hits >= rule.limit {
            let until = match rule.cooldown {
                Some(cd) => now + cooldown_after(cd, e.strikes),
                None => e.window_start + rule.window,
            };
            e.blocked_until = Some(until);
            e.strikes = e.strikes.saturating_add(1);
            e.hits = 0;
            e.window_start = until;
        }
        Ok(())
    }

    /// Forgets `key`'s hits (a success), but not a block in force nor its
    /// strikes.
    pub fn clear_hits(&mut self, key: &K) {
        if let Some(e) = self.entries.get_mut(key) {
            e.hits = 0;
        }
    }

    /// Keys remembered now.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// `true` when no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Makes room for a new key (see "Bounded memory" in the module docs).
    fn make_room(&mut self, now: Instant) {
        let rule = self.rule;
        self.entries.retain(|_, e| !forgettable(&rule, e, now));
        let keep = self.capacity - self.capacity / 8;
        if self.entries.len() <= keep {
            return;
        }
        // Unblocked before blocked, then the longest unseen first.
        let mut order: Vec<(bool, Instant, K)> = self
            .entries
            .iter()
            .map(|(k, e)| (blocked(e, now).is_err(), e.seen, k.clone()))
            .collect();
        let drop_n = self.entries.len() - keep;
        order.select_nth_unstable_by(drop_n - 1, |a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        for (_, _, k) in order.into_iter().take(drop_n) {
            self.entries.remove(&k);
        }
    }
}

/// `Err(retry_after)` while `e` is blocked at `now`.
fn blocked(e: &Entry, now: Instant) -> Result<(), Duration> {
    match e.blocked_until {
        Some(until) if until > now => Err(until - now),
        _ => Ok(()),
    }
}

/// The block after `strikes` earlier ones: `first` doubled that often, at
/// most `max`.
pub fn cooldown_after(cd: Cooldown, strikes: u32) -> Duration {
    let factor = 1u32.checked_shl(strikes.min(31)).unwrap_or(u32::MAX);
    cd.first.saturating_mul(factor).min(cd.max)
}

/// `true` when `e` holds nothing a later hit would need.
fn forgettable(rule: &Rule, e: &Entry, now: Instant) -> bool {
    if blocked(e, now).is_err() {
        return false;
    }
    if e.hits > 0 && now.saturating_duration_since(e.window_start) < rule.window {
        return false;
    }
    match (rule.cooldown, e.blocked_until) {
        (Some(cd), Some(until)) if e.strikes > 0 => now.saturating_duration_since(until) >= cd.max,
        _ => true,
    }
}

/// Whole seconds a client is told to wait for `d`: rounded up, at least 1.
pub fn retry_after_secs(d: Duration) -> u64 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    secs.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    fn login_rule() -> Rule {
        Rule {
            limit: 5,
            window: MIN,
            cooldown: Some(Cooldown {
                first: MIN,
                max: Duration::from_secs(15 * 60),
            }),
        }
    }

    #[test]
    fn the_limit_th_hit_blocks_for_the_cooldown() {
        let t0 = Instant::now();
        let mut t = Throttle::new(login_rule(), 100);
        for i in 0..5 {
            assert_eq!(t.check(&"alice", t0), Ok(()), "before hit {i}");
            assert_eq!(t.hit("alice", t0 + Duration::from_secs(i)), Ok(()));
        }
        let at = t0 + Duration::from_secs(4);
        assert_eq!(t.check(&"alice", at), Err(MIN));
        assert_eq!(t.hit("alice", at), Err(MIN), "a blocked key counts nothing");
        assert_eq!(t.check(&"bob", at), Ok(()), "other keys are not affected");
        assert_eq!(t.check(&"alice", at + MIN), Ok(()), "the block ends");
    }

    #[test]
    fn hits_spread_over_more_than_a_window_never_block() {
        let t0 = Instant::now();
        let mut t = Throttle::new(login_rule(), 100);
        for i in 0..50 {
            // Four per window, then the window ends.
            let now = t0 + MIN * (i / 4) + Duration::from_secs(u64::from(i % 4));
            assert_eq!(t.hit("alice", now), Ok(()));
            assert_eq!(t.check(&"alice", now), Ok(()), "hit {i}");
        }
    }

    #[test]
    fn the_cooldown_doubles_up_to_its_maximum_and_resets_after_quiet() {
        let t0 = Instant::now();
        let mut t = Throttle::new(login_rule(), 100);
        let mut now = t0;
        let mut blocks = Vec::new();
        for _ in 0..6 {
            for _ in 0..5 {
                assert_eq!(t.hit("alice", now), Ok(()));
            }
            let Err(block) = t.check(&"alice", now) else {
                panic!("not blocked");
            };
            blocks.push(block.as_secs() / 60);
            now += block; // right when the block ends
        }
        assert_eq!(blocks, [1, 2, 4, 8, 15, 15]);
        // Quiet for a maximum cool-down after the last block: back to one minute.
        now += Duration::from_secs(15 * 60);
        for _ in 0..5 {
            assert_eq!(t.hit("alice", now), Ok(()));
        }
        assert_eq!(t.check(&"alice", now), Err(MIN));
        assert_eq!(
            cooldown_after(login_rule().cooldown.unwrap(), 40),
            Duration::from_secs(900)
        );
    }

    #[test]
    fn without_a_cooldown_it_is_a_rate_per_window() {
        let t0 = Instant::now();
        let rule = Rule {
            limit: 3,
            window: MIN,
            cooldown: None,
        };
        let mut t = Throttle::new(rule, 100);
        let ten = Duration::from_secs(10);
        assert_eq!(t.hit("10.0.0.1", t0), Ok(()));
        assert_eq!(t.hit("10.0.0.1", t0 + ten), Ok(()));
        assert_eq!(t.hit("10.0.0.1", t0 + ten * 2), Ok(()));
        // Blocked until the window that opened at t0 ends.
        assert_eq!(t.hit("10.0.0.1", t0 + ten * 3), Err(ten * 3));
        assert_eq!(t.hit("10.0.0.1", t0 + MIN), Ok(()), "a new window");
        // A limit of 0 never blocks.
        let mut off = Throttle::new(Rule { limit: 0, ..rule }, 8);
        for _ in 0..100 {
            assert_eq!(off.hit("x", t0), Ok(()));
        }
        assert!(off.is_empty());
    }

    #[test]
    fn a_success_clears_the_hits_but_not_the_block() {
        let t0 = Instant::now();
        let mut t = Throttle::new(login_rule(), 100);
        for _ in 0..4 {
            t.hit("alice", t0).unwrap();
        }
        t.clear_hits(&"alice");
        for _ in 0..4 {
            t.hit("alice", t0).unwrap();
        }
        assert_eq!(
            t.check(&"alice", t0),
            Ok(()),
            "4 + 4 with a success between"
        );
        t.hit("alice", t0).unwrap();
        t.clear_hits(&"alice");
        assert_eq!(t.check(&"alice", t0), Err(MIN));
    }

    #[test]
    fn memory_stays_bounded_and_blocked_keys_are_kept_first() {
        let t0 = Instant::now();
        let mut t = Throttle::new(login_rule(), 64);
        // Eight keys blocked.
        for k in 0..8u32 {
            for _ in 0..5 {
                t.hit(k, t0).unwrap();
            }
        }
        // An attacker's many keys, one hit each, all inside the window.
        for k in 1000..51_000u32 {
            t.hit(k, t0 + Duration::from_millis(u64::from(k - 1000)))
                .unwrap();
            assert!(t.len() <= 64, "{} keys remembered", t.len());
        }
        let now = t0 + Duration::from_secs(50);
        for k in 0..8u32 {
            assert!(t.check(&k, now).is_err(), "blocked key {k} was forgotten");
        }
        // Past every window and block, the next sweep (within an eighth of
        // the capacity of new keys) forgets everything idle.
        let later = t0 + Duration::from_secs(3600);
        for k in 0..9u32 {
            t.hit(5_000_000 + k, later).unwrap();
        }
        assert!(t.len() <= 9, "{} keys remembered", t.len());
    }

    #[test]
    fn retry_after_rounds_up() {
        assert_eq!(retry_after_secs(Duration::from_millis(1)), 1);
        assert_eq!(retry_after_secs(Duration::from_millis(59_001)), 60);
        assert_eq!(retry_after_secs(Duration::from_secs(60)), 60);
        assert_eq!(retry_after_secs(Duration::ZERO), 1);
    }
}
