//! [`WordHash`]: a keyed hasher for maps whose keys are a few integers
//! (a conversation, a user id), cheaper than the standard library's
//! SipHash-1-3 for such keys.
//!
//! The standard `RandomState` costs about 130 instructions per `i64`
//! written and as much again to finish; a delivery looks its recipient's
//! cursor up three times, so SipHash was a third of a group delivery's
//! instructions (docs/benchmarks.md section 22). This one multiplies each
//! word into the state with a 128-bit product folded to 64 bits (the
//! mixing of wyhash and similar functions) and starts from a seed drawn
//! once per process from the operating system, so a client that chooses
//! its keys (the users it writes to) cannot aim them at one bucket
//! without knowing the seed. It is not a cryptographic hash, and nothing
//! leaks it: hash values never leave the process.
//!
//! Any thread; the seed is read once per map.

use std::hash::{BuildHasher, Hasher};
use std::sync::OnceLock;

/// The odd constants of the mixing steps (digits of π and of e).
const P0: u64 = 0x243f_6a88_85a3_08d3;
const P1: u64 = 0xb7e1_5162_8aed_2a6b;

/// The process's seed: random, drawn at first use; a fixed value if the
/// operating system has no randomness to give (never seen on Linux).
fn seed() -> u64 {
    static SEED: OnceLock<u64> = OnceLock::new();
    *SEED.get_or_init(|| {
        let mut bytes = [0u8; 8];
        match getrandom::getrandom(&mut bytes) {
            Ok(()) => u64::from_ne_bytes(bytes),
            Err(_) => P1,
        }
    })
}

/// `a * b` as a 128-bit product, its halves xored.
fn fold(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// Builds [`WordHasher`]s from the process's seed: the `S` of a
/// `HashMap<K, V, WordHash>`.
#[derive(Debug, Clone, Copy)]
pub struct WordHash {
    seed: u64,
}

impl Default for WordHash {
    fn default() -> WordHash {
        WordHash { seed: seed() }
    }
}

impl BuildHasher for WordHash {
    type Hasher = WordHasher;

    fn build_hasher(&self) -> WordHasher {
        WordHasher { state: self.seed }
    }
}

/// The hasher [`WordHash`] builds.
#[derive(Debug, Clone)]
pub struct WordHasher {
    state: u64,
}

impl Hasher for WordHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Keys of other shapes still hash correctly, a word at a time.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.write_u64(u64::from_le_bytes(word));
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.state = fold(self.state ^ n, P0);
    }

    fn write_i64(&mut self, n: i64) {
        self.write_u64(n as u64);
    }

    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }

    fn write_isize(&mut self, n: isize) {
        self.write_u64(n as u64);
    }

    fn write_usize(&mut self, n: usize) {
        self.write_u64(n as u64);
    }

    fn finish(&self) -> u64 {
        fold(self.state, P1)
    }
}

#[cfg(test)]
mod tests {
    use super::WordHash;
    use std::collections::{HashMap, HashSet};
    use std::hash::BuildHasher;

    #[test]
    fn equal_keys_hash_alike_and_a_map_works() {
        let s = WordHash::default();
        assert_eq!(s.hash_one((3i64, 9i64)), s.hash_one((3i64, 9i64)));
        assert_ne!(s.hash_one((3i64, 9i64)), s.hash_one((9i64, 3i64)));
        let mut m: HashMap<i64, i64, WordHash> = HashMap::default();
        for i in 0..10_000 {
            m.insert(i, i * 2);
        }
        assert!((0..10_000).all(|i| m.get(&i) == Some(&(i * 2))));
    }

    #[test]
    fn consecutive_ids_spread_over_the_low_bits() {
        // hashbrown picks the bucket from the low bits: ids 1..=4096 must
        // not crowd into a few of 4096 buckets.
        let s = WordHash::default();
        let buckets: HashSet<u64> = (1..=4096i64).map(|i| s.hash_one(i) & 4095).collect();
        assert!(buckets.len() > 2000, "{} buckets", buckets.len());
    }
}
