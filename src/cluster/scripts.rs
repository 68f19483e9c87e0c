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

/// `ROUTE(KEYS[1] = user key; ARGV = alive prefix, channel prefix,
/// frame, node to skip)` → `{code, node...}`: `code` is the number of
/// subscribers that received the frame over every live node holding
/// sessions of the user (0: those nodes are alive but not subscribed),
/// `-1` when the user is on no node (other than the one to skip), `-2`
/// when every such node is dead; the nodes are every live node holding
/// sessions of the user, the skipped one included: what the route cache
/// (`routes.rs`) keeps. The node to skip is the sender's own, when it
/// delivered there itself, or a node forwarding what it could not deliver
/// (an empty string skips none).
const ROUTE: &str = r"
local h = redis.call('HGETALL', KEYS[1])
local reached, nodes, live, found = 0, 0, 0, {0}
for i = 1, #h, 2 do
  local node = h[i]
  local up = redis.call('EXISTS', ARGV[1] .. node) == 1
  if up then found[#found + 1] = node end
  if node ~= ARGV[4] then
    nodes = nodes + 1
    if up then
      live = live + 1
      reached = reached + redis.call('PUBLISH', ARGV[2] .. node, ARGV[3])
    end
  end
end
if nodes == 0 then found[1] = -1 elseif live == 0 then found[1] = -2 else found[1] = reached end
return found
";

/// The presence event of the scripts that change a user's hash:
/// `tell(channel, token)` publishes `"{uid} {node} {token}"` (`ARGV[2]`,
/// `ARGV[1]`; `token` a claim's barrier token, or empty) and answers the
/// number of nodes subscribed, each of which forgets the user's route. A
/// script runs atomically, so where in it the event is published does not
/// matter: whatever a node sends after seeing it runs after the script.
const TELL: &str = r"
local function tell(channel, token)
  return redis.call('PUBLISH', channel, ARGV[2] .. ' ' .. ARGV[1] .. ' ' .. token)
end
";

/// The Lua shared by `CLAIM` and `SET`: sums the session counts of the
/// live nodes in the user hash `KEYS[1]` other than `ARGV[1]` (this node),
/// deletes the fields of dead nodes (and the user from their `members`
/// sets, `ARGV[4]` being the members prefix, `ARGV[2]` the uid), and
/// leaves in `others` the sum, in `holder` one live other node, in `dead`
/// one dead node whose field it removed, and in `own` this node's count.
/// A user key that is still a string (the one-node claim of a version
/// before the hash) is deleted first, so that a node started after such
/// a version can sync; `RELEASE` leaves one alone.
const TALLY: &str = r"
if redis.call('TYPE', KEYS[1]).ok == 'string' then redis.call('DEL', KEYS[1]) end
local h = redis.call('HGETALL', KEYS[1])
local others, own, holder, dead = 0, 0, nil, nil
for i = 1, #h, 2 do
  local node, n = h[i], tonumber(h[i + 1]) or 0
  if node == ARGV[1] then
    own = n
  elseif redis.call('EXISTS', ARGV[3] .. node) == 1 then
    others = others + n
    holder = node
  else
    redis.call('HDEL', KEYS[1], node)
    redis.call('SREM', ARGV[4] .. node, ARGV[2])
    dead = node
  end
end
";

/// `CLAIM(KEYS = user key, own members set; ARGV = node id, uid, alive
/// prefix, members prefix, sessions per user, presence channel, barrier
/// token)`: one more session of the user on this node, counted against
/// the limit over every live node → `{1, "", n}` claimed (its count went
/// up by one; with a limit of 1, also when this node held the user
/// already: then nothing changes), `{2, old, n}` claimed after removing
/// the dead node `old`'s sessions, `{0, holder, n}` refused: the limit is
/// reached (`holder`: a live node with sessions of the user, this node's
/// own id when it holds them all). Every answer has told the presence
/// channel (`n`: the nodes subscribed to it), whose nodes confirm to the
/// token's barrier.
const CLAIM_BODY: &str = r"
local limit = tonumber(ARGV[5]) or 1
local n = tell(ARGV[6], ARGV[7])
if limit == 1 and own > 0 then
  redis.call('SADD', KEYS[2], ARGV[2])
  return {1, '', n}
end
if others + own >= limit then return {0, holder or ARGV[1], n} end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('SADD', KEYS[2], ARGV[2])
if dead then return {2, dead, n} end
return {1, '', n}
";

/// `SET(KEYS = user key, own members set; ARGV = node id, uid, alive
/// prefix, members prefix, sessions per user, count, presence channel)`:
/// the presence sync's absolute form of `CLAIM` — this node holds `count`
/// sessions of the user (0: none, the field goes). Answers as `CLAIM`
/// (and tells the presence channel, with no token); refused
/// (`{0, holder, n}`, nothing written) when another live node holds
/// sessions and the total would pass the limit.
const SET_BODY: &str = r"
local limit, count = tonumber(ARGV[5]) or 1, tonumber(ARGV[6]) or 0
local n = tell(ARGV[7], '')
if count <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('SREM', KEYS[2], ARGV[2])
  return {1, '', n}
end
if others > 0 and others + count > limit then return {0, holder, n} end
redis.call('HSET', KEYS[1], ARGV[1], count)
redis.call('SADD', KEYS[2], ARGV[2])
if dead then return {2, dead, n} end
return {1, '', n}
";

/// `RELEASE(KEYS = user key, own members set; ARGV = node id, uid,
/// presence channel)`: one session of the user on this node fewer; at 0
/// the field goes (and the user from this node's members set), and the
/// presence channel is told. Nothing when this node holds no count for
/// the user (it was never claimed, or a sync removed it).
const RELEASE: &str = r"
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
local n = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
if not n then return 0 end
if n <= 1 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('SREM', KEYS[2], ARGV[2])
  tell(ARGV[3], '')
  return 0
end
return redis.call('HINCRBY', KEYS[1], ARGV[1], -1)
";

/// `ONLINE(KEYS = user keys; ARGV[1] = alive prefix)` → one 0/1 per key:
/// 1 when some live node holds a session of the user. Each node's
/// liveness is read once.
const ONLINE: &str = r"
local out, alive = {}, {}
for i, k in ipairs(KEYS) do
  local h = redis.call('HGETALL', k)
  local up = 0
  for j = 1, #h, 2 do
    local node = h[j]
    if alive[node] == nil then alive[node] = redis.call('EXISTS', ARGV[1] .. node) end
    if alive[node] == 1 and (tonumber(h[j + 1]) or 0) > 0 then up = 1 end
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
    set: String,
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
            claim: load(&format!("{TELL}{TALLY}{CLAIM_BODY}"))?,
            set: load(&format!("{TELL}{TALLY}{SET_BODY}"))?,
            release: load(&format!("{TELL}{RELEASE}"))?,
            online: load(ONLINE)?,
        })
    }

    /// Publishes `frame` to every live node holding a session of `uid`,
    /// except `skip` (`""`: none).
    pub(crate) fn route(&self, keys: &Keys, uid: i64, frame: &[u8], skip: &str) -> Cmd {
        let mut c = evalsha(&self.route, &[keys.user(uid)]);
        c.arg(keys.alive_prefix())
            .arg(keys.channel_prefix())
            .arg(frame)
            .arg(skip);
        c
    }

    /// Claims one more session of `uid` for this node, at most `limit`
    /// over the cluster; the presence event names barrier `token`.
    pub(crate) fn claim(&self, keys: &Keys, uid: i64, limit: u32, token: u64) -> Cmd {
        let mut c = evalsha(&self.claim, &[keys.user(uid), keys.members()]);
        c.arg(keys.node_id())
            .arg(uid)
            .arg(keys.alive_prefix())
            .arg(keys.members_prefix())
            .arg(limit)
            .arg(keys.presence_channel())
            .arg(token);
        c
    }

    /// Sets this node's count of `uid`'s sessions to `count` (0: none).
    pub(crate) fn set(&self, keys: &Keys, uid: i64, limit: u32, count: usize) -> Cmd {
        let mut c = evalsha(&self.set, &[keys.user(uid), keys.members()]);
        c.arg(keys.node_id())
            .arg(uid)
            .arg(keys.alive_prefix())
            .arg(keys.members_prefix())
            .arg(limit)
            .arg(count)
            .arg(keys.presence_channel());
        c
    }

    /// Releases one of this node's sessions of `uid`.
    pub(crate) fn release(&self, keys: &Keys, uid: i64) -> Cmd {
        let mut c = evalsha(&self.release, &[keys.user(uid), keys.members()]);
        c.arg(keys.node_id()).arg(uid).arg(keys.presence_channel());
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
