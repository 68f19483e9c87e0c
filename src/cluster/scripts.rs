//! The Lua scripts: each presence decision is one atomic step inside Redis.
//!
//! "Read the user's node, check that node is alive, then publish" done as
//! three commands from a client could interleave with a login or a node's
//! death on another node. As a script it cannot, and it costs one round
//! trip instead of three — fewer still, since the publisher sends a whole
//! batch of them in one write.
//!
//! The scripts are loaded (`SCRIPT LOAD`) on every new connection and then
//! called by SHA (`EVALSHA`). A Redis that restarted has forgotten them, but
//! a restart also breaks the connection, so the reconnection loads them
//! again. Names built inside the scripts (`alive` and `members` keys of
//! *other* nodes) are not declared in `KEYS`: fine for one Redis server,
//! not for Redis Cluster, which this design does not target.

use redis::{Cmd, Connection, RedisResult};

use super::keys::Keys;

/// `ROUTE(KEYS[1] = user key; ARGV = alive prefix, channel prefix, envelope)`
/// → the number of subscribers that received the envelope (0: the node is
/// alive but not subscribed), `-1` when the user is on no node, `-2` when
/// the user's node is dead.
const ROUTE: &str = r"
local node = redis.call('GET', KEYS[1])
if not node then return -1 end
if redis.call('EXISTS', ARGV[1] .. node) == 0 then return -2 end
return redis.call('PUBLISH', ARGV[2] .. node, ARGV[3])
";

/// `CLAIM(KEYS = user key, own members set; ARGV = node id, uid, alive
/// prefix, members prefix)` → `{1}` claimed (or already ours), `{2, old}`
/// taken over from the dead node `old`, `{0, holder}` refused: the user is
/// on the live node `holder`.
const CLAIM: &str = r"
local cur = redis.call('GET', KEYS[1])
if cur == ARGV[1] then
  redis.call('SADD', KEYS[2], ARGV[2])
  return {1}
end
if cur and redis.call('EXISTS', ARGV[3] .. cur) == 1 then
  return {0, cur}
end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
if cur then
  redis.call('SREM', ARGV[4] .. cur, ARGV[2])
  return {2, cur}
end
return {1}
";

/// `RELEASE(KEYS = user key, own members set; ARGV = node id, uid)`:
/// deletes the user key only while it still names this node (the user may
/// have been taken over meanwhile), and forgets the claim.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
redis.call('SREM', KEYS[2], ARGV[2])
return 1
";

/// `ONLINE(KEYS = user keys; ARGV[1] = alive prefix)` → one 0/1 per key:
/// 1 when the user is on a live node. Each node's liveness is read once.
const ONLINE: &str = r"
local out, alive = {}, {}
for i, k in ipairs(KEYS) do
  local node = redis.call('GET', k)
  local up = 0
  if node then
    if alive[node] == nil then alive[node] = redis.call('EXISTS', ARGV[1] .. node) end
    up = alive[node]
  end
  out[i] = up
end
return out
";

/// `BEAT(KEYS[1] = own alive key; ARGV = token, ttl in ms)` → 1 when the key
/// still held this process's token, 0 when it was missing (expired,
/// flushed, a Redis restart, or the first beat), 2 when another process's
/// token was there (this node's previous life, or a duplicate node id).
/// Called with `EVAL`: a beat every few seconds does not need a cached SHA.
pub(crate) const BEAT: &str = r"
local had = redis.call('GET', KEYS[1])
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
if had == ARGV[1] then return 1 end
if had then return 2 end
return 0
";

/// The SHAs of the scripts on one connection, and the commands that call them.
#[derive(Debug, Clone)]
pub(crate) struct Scripts {
    route: String,
    claim: String,
    release: String,
    online: String,
}

impl Scripts {
    /// Loads every script on `con`.
    ///
    /// # Errors
    /// A failed `SCRIPT LOAD`.
    pub(crate) fn load(con: &mut Connection) -> RedisResult<Scripts> {
        let mut load = |src: &str| -> RedisResult<String> {
            redis::cmd("SCRIPT").arg("LOAD").arg(src).query(con)
        };
        Ok(Scripts {
            route: load(ROUTE)?,
            claim: load(CLAIM)?,
            release: load(RELEASE)?,
            online: load(ONLINE)?,
        })
    }

    /// Publishes `envelope` to the node of `uid`, if it is on a live node.
    pub(crate) fn route(&self, keys: &Keys, uid: i64, envelope: &[u8]) -> Cmd {
        let mut c = evalsha(&self.route, &[keys.user(uid)]);
        c.arg(keys.alive_prefix())
            .arg(keys.channel_prefix())
            .arg(envelope);
        c
    }

    /// Claims `uid` for this node.
    pub(crate) fn claim(&self, keys: &Keys, uid: i64) -> Cmd {
        let mut c = evalsha(&self.claim, &[keys.user(uid), keys.members()]);
        c.arg(keys.node_id())
            .arg(uid)
            .arg(keys.alive_prefix())
            .arg(keys.members_prefix());
        c
    }

    /// Releases this node's claim on `uid`.
    pub(crate) fn release(&self, keys: &Keys, uid: i64) -> Cmd {
        let mut c = evalsha(&self.release, &[keys.user(uid), keys.members()]);
        c.arg(keys.node_id()).arg(uid);
        c
    }

    /// Asks which of `uids` are on a live node.
    pub(crate) fn online(&self, keys: &Keys, uids: &[i64]) -> Cmd {
        let user_keys: Vec<String> = uids.iter().map(|&u| keys.user(u)).collect();
        let mut c = evalsha(&self.online, &user_keys);
        c.arg(keys.alive_prefix());
        c
    }
}

/// `EVALSHA sha numkeys key...`; the caller appends the `ARGV`.
fn evalsha(sha: &str, keys: &[String]) -> Cmd {
    let mut c = redis::cmd("EVALSHA");
    c.arg(sha).arg(keys.len()).arg(keys);
    c
}
