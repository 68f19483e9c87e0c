//! `SharedThrottle`: the failed-login counts of every node of a cluster
//! together, in Redis.
//!
//! On a single node the failed-login throttles are maps in memory
//! (src/service/login_limits.rs). In cluster mode a guesser could spread its
//! attempts over the nodes, so each failure is also counted here, under
//! the cluster's key prefix, and each login also looks here for a block:
//!
//! | name | type | value |
//! |---|---|---|
//! | `{prefix}:fails:{what}` | counter with a TTL of the window | failures in the window that began with the first |
//! | `{prefix}:block:{what}` | string with a TTL of the block | present while `what` is blocked |
//! | `{prefix}:strikes:{what}` | counter with a TTL of the block plus the longest cool-down | blocks so far (each doubles the next) |
//!
//! `what` is `acct:id:{uid}`, `acct:name:{name}` or `addr:{ip}`. A failure
//! is one script (INCR, then PEXPIRE on the first; at the limit INCR the
//! strikes and SET the block with its TTL), so no counter is ever left
//! without a TTL. The arithmetic is the node-local throttle's: the same
//! window, limit and doubling cool-down.
//!
//! # Threads
//!
//! Every call **blocks** on Redis, at most about two `io_timeout`s (the
//! cluster's, src/cluster/link.rs): hashing threads or workers only, never
//! an I/O thread. They share one connection under a lock that only they
//! take. When Redis cannot be asked the calls answer `None` and the
//! caller keeps to its node-local counts; after a failure no new
//! connection is tried for [`RETRY`], so that logins do not each wait for
//! a timeout while Redis is down.

use std::time::{Duration, Instant};

use parking_lot::Mutex;
use redis::{Client, Connection, RedisResult, Script};

use super::link;
use crate::runtime::throttle::Rule;

/// How long after a Redis error the throttle does not try again.
pub const RETRY: Duration = Duration::from_secs(1);

/// KEYS: fails, block, strikes. ARGV: window ms, limit, first block ms,
/// longest block ms. Returns the block's length in ms, or 0.
const FAIL: &str = r"
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
if n < tonumber(ARGV[2]) then return 0 end
local s = redis.call('INCR', KEYS[3])
if s > 32 then s = 32 end
local block = math.floor(math.min(tonumber(ARGV[3]) * 2 ^ (s - 1), tonumber(ARGV[4])))
redis.call('PEXPIRE', KEYS[3], block + tonumber(ARGV[4]))
redis.call('SET', KEYS[2], '1', 'PX', block)
redis.call('DEL', KEYS[1])
return block
";

/// See the [module documentation](self).
pub struct SharedThrottle {
    client: Client,
    /// `{prefix}:`.
    prefix: String,
    io_timeout: Duration,
    con: Mutex<Link>,
    fail: Script,
}

/// The connection, or when the next may be tried.
enum Link {
    Up(Connection),
    Down { retry_at: Instant },
}

impl SharedThrottle {
    /// A throttle on the Redis at `url`, under `prefix` (the cluster's
    /// `--redis-prefix`), each command bounded by `io_timeout`. Connects
    /// on first use. Any thread.
    ///
    /// # Errors
    /// A URL the Redis client does not accept.
    pub fn new(url: &str, prefix: &str, io_timeout: Duration) -> RedisResult<SharedThrottle> {
        Ok(SharedThrottle {
            client: Client::open(url)?,
            prefix: format!("{prefix}:"),
            io_timeout,
            con: Mutex::new(Link::Down {
                retry_at: Instant::now(),
            }),
            fail: Script::new(FAIL),
        })
    }

    /// `Some(Err(retry_after))` while `what` is blocked cluster-wide,
    /// `Some(Ok(()))` when not, `None` when Redis cannot be asked.
    /// **Blocks**: hashing threads or workers.
    pub fn check(&self, what: &str) -> Option<Result<(), Duration>> {
        let key = format!("{}block:{what}", self.prefix);
        let ttl: i64 = self.with_con(|con| redis::cmd("PTTL").arg(&key).query(con))?;
        match u64::try_from(ttl) {
            Ok(ms) if ms > 0 => Some(Err(Duration::from_millis(ms))),
            _ => Some(Ok(())),
        }
    }

    /// Counts one failure of `what` under `rule` (its limit, window and
    /// cool-down); `Some(Err(block))` when this one blocked it, `None` when
    /// Redis cannot be asked. A rule with limit 0 counts nothing.
    /// **Blocks**: hashing threads or workers.
    pub fn fail(&self, what: &str, rule: Rule) -> Option<Result<(), Duration>> {
        if rule.limit == 0 {
            return Some(Ok(()));
        }
        let ms = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1);
        let (first, max) = match rule.cooldown {
            Some(cd) => (ms(cd.first), ms(cd.max.max(cd.first))),
            None => (ms(rule.window), ms(rule.window)),
        };
        let block: u64 = self.with_con(|con| {
            self.fail
                .key(format!("{}fails:{what}", self.prefix))
                .key(format!("{}block:{what}", self.prefix))
                .key(format!("{}strikes:{what}", self.prefix))
                .arg(ms(rule.window))
                .arg(rule.limit)
                .arg(first)
                .arg(max)
                .invoke(con)
        })?;
        Some(match block {
            0 => Ok(()),
            ms => Err(Duration::from_millis(ms)),
        })
    }

    /// Forgets `what`'s failures (a successful login), not a block in
    /// force. **Blocks**: hashing threads or workers.
    pub fn clear(&self, what: &str) {
        let key = format!("{}fails:{what}", self.prefix);
        let _: Option<i64> = self.with_con(|con| redis::cmd("DEL").arg(&key).query(con));
    }

    /// Runs `f` on the connection, connecting first if it is time to;
    /// `None` (and the connection dropped) on any error.
    fn with_con<T>(&self, f: impl FnOnce(&mut Connection) -> RedisResult<T>) -> Option<T> {
        let mut con = self.con.lock();
        if let Link::Down { retry_at } = &*con {
            if Instant::now() < *retry_at {
                return None;
            }
            match link::connect(&self.client, self.io_timeout, None) {
                Ok(c) => *con = Link::Up(c),
                Err(e) => {
                    log::warn!(
                        "login throttle: Redis unavailable ({e}); counting on this node only"
                    );
                    *con = Link::Down {
                        retry_at: Instant::now() + RETRY,
                    };
                    return None;
                }
            }
        }
        let Link::Up(c) = &mut *con else {
            return None;
        };
        match f(c) {
            Ok(v) => Some(v),
            Err(e) => {
                log::warn!("login throttle: Redis failed ({e}); counting on this node only");
                *con = Link::Down {
                    retry_at: Instant::now() + RETRY,
                };
                None
            }
        }
    }
}
