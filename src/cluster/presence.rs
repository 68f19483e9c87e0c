//! Reconciling this node's claims in Redis with who is really connected.
//!
//! Redis and the node can disagree about who is on the node:
//!
//! * after a crash, Redis still holds the claims of the dead process;
//! * after a Redis restart, Redis has forgotten every claim;
//! * during an outage, users logged in (their claim answered `Unavailable`)
//!   and out (their release could not be sent).
//!
//! [`sync`] settles all three the same way: it takes the node's own list of
//! connected users with their numbers of sessions
//! ([`LocalNode::local_users`](super::LocalNode::local_users)) and this
//! node's `members` set from Redis, releases every claim of a user who is
//! not here any more and sets this node's count of every user who is (the
//! `SET` script: absolute, where a login's `CLAIM` adds one and a
//! session's `RELEASE` takes one away). The publisher
//! thread runs it on each (re)connection, when the heartbeat finds that its
//! alive key had vanished, and — with an empty list — at shutdown.
//!
//! A user here whom another live node holds — with one session per user;
//! with several, whose sessions here would pass the limit together with
//! those of the other live nodes — was let in twice while Redis could not
//! be asked (or left that node during the outage, and that node has not
//! synced yet). The sync reports them; the publisher claims them
//! again [`recheck_after`](super::ClusterConfig) later, when every node
//! has had time to sync, and a user still held elsewhere then loses their
//! session here ([`LocalNode::lost_claim`](super::LocalNode::lost_claim)):
//! the session that holds the claim is the one messages reach.
//!
//! It runs on the publisher thread, between batches, so it is ordered with
//! the node's own `claim` and `release` calls: a logout queued after the
//! sync's snapshot is applied after it.

use std::collections::{HashMap, HashSet};

use redis::{Connection, RedisResult, Value};

use super::link;
use super::scripts::Scripts;
use super::shared::Shared;
use super::Claim;

/// Commands per pipeline write while syncing.
const CHUNK: usize = 1000;

/// What a sync changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Synced {
    /// Users claimed (or confirmed) for this node.
    pub(crate) claimed: usize,
    /// Claims released: users no longer here.
    pub(crate) released: usize,
    /// Users here whom another live node holds (a double login that an
    /// outage allowed, or a claim a user left behind on a node that has
    /// not synced yet): the publisher claims them again later and gives
    /// the local session up if the other node still holds them.
    pub(crate) held_elsewhere: Vec<i64>,
    /// Users claimed now who were not in this node's `members` set: they
    /// logged in while Redis could not be asked, and messages routed to
    /// them until now found no holder.
    pub(crate) newly_claimed: Vec<i64>,
}

/// Makes Redis agree with `local` (each user here with their number of
/// sessions): this node's counts become exactly those of `local`, for
/// every user whom the limit allows (see [`set_all`]).
///
/// # Errors
/// The first Redis error; the connection should then be dropped.
pub(crate) fn sync(
    con: &mut Connection,
    scripts: &Scripts,
    shared: &Shared,
    local: &HashMap<i64, usize>,
) -> RedisResult<Synced> {
    let keys = &shared.keys;
    let members: Vec<String> = redis::cmd("SMEMBERS").arg(keys.members()).query(con)?;
    let members: HashSet<i64> = members.iter().filter_map(|m| m.parse().ok()).collect();
    let stale: Vec<(i64, usize)> = members
        .iter()
        .filter(|uid| !local.contains_key(uid))
        .map(|&uid| (uid, 0))
        .collect();
    let mut out = Synced {
        released: stale.len(),
        ..Synced::default()
    };
    set_all(con, scripts, shared, &stale)?;
    let here: Vec<(i64, usize)> = local.iter().map(|(&u, &n)| (u, n)).collect();
    for (uid, claim) in set_all(con, scripts, shared, &here)? {
        match claim {
            Some(Claim::Claimed) => {
                out.claimed += 1;
                if !members.contains(&uid) {
                    out.newly_claimed.push(uid);
                }
            }
            Some(Claim::OnlineElsewhere(_)) => out.held_elsewhere.push(uid),
            // Not an answer the script gives: the next sync tries again.
            Some(Claim::Unavailable) | None => {}
        }
    }
    Ok(out)
}

/// Sets this node's count of each user's sessions (the `SET` script, in
/// pipelines of [`CHUNK`]; 0 removes the user from this node); each user
/// with the script's answer (`None`: not one it gives). A count is refused
/// (`OnlineElsewhere`, nothing written) when another live node holds
/// sessions of the user and the total would pass the sessions-per-user
/// limit: with one session per user, whenever another live node holds
/// the user.
///
/// # Errors
/// The first Redis error.
pub(crate) fn set_all(
    con: &mut Connection,
    scripts: &Scripts,
    shared: &Shared,
    counts: &[(i64, usize)],
) -> RedisResult<Vec<(i64, Option<Claim>)>> {
    let limit = shared.cfg.sessions_per_user;
    let mut out = Vec::with_capacity(counts.len());
    for chunk in counts.chunks(CHUNK) {
        let mut pipe = redis::pipe();
        for &(uid, n) in chunk {
            pipe.add_command(scripts.set(&shared.keys, uid, limit, n));
        }
        let replies = run(con, &pipe, chunk.len())?;
        out.extend(
            chunk
                .iter()
                .zip(&replies)
                .map(|(&(u, _), r)| (u, claim_reply(r))),
        );
    }
    Ok(out)
}

/// Releases every claim of this node and deletes its alive key: the node
/// leaves the cluster cleanly.
///
/// # Errors
/// The first Redis error.
pub(crate) fn leave(
    con: &mut Connection,
    scripts: &Scripts,
    shared: &Shared,
) -> RedisResult<usize> {
    let synced = sync(con, scripts, shared, &HashMap::new())?;
    redis::cmd("DEL")
        .arg(shared.keys.members())
        .arg(shared.keys.alive())
        .query::<i64>(con)?;
    Ok(synced.released)
}

/// Runs a pipeline; a command's own error fails the sync too.
fn run(con: &mut Connection, pipe: &redis::Pipeline, count: usize) -> RedisResult<Vec<Value>> {
    let mut replies = Vec::with_capacity(count);
    link::exec(con, &pipe.get_packed_pipeline(), count, &mut replies)?;
    for r in &replies {
        if let Value::ServerError(e) = r {
            return Err(e.clone().into());
        }
    }
    Ok(replies)
}

/// The number of nodes a `CLAIM` (or `SET`) reply says its presence
/// event reached (0 when the reply has none).
pub(crate) fn claim_told(v: &Value) -> u64 {
    match v {
        Value::Array(items) => match items.get(2) {
            Some(Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
            _ => 0,
        },
        _ => 0,
    }
}

/// Reads a `CLAIM` reply: `Claimed` (also after taking the user over from a
/// dead node), `OnlineElsewhere(holder)` when a live node holds the user,
/// `None` when the reply is not one the script gives.
pub(crate) fn claim_reply(v: &Value) -> Option<Claim> {
    let Value::Array(items) = v else { return None };
    let code = match items.first() {
        Some(Value::Int(c)) => *c,
        _ => return None,
    };
    let node = match items.get(1) {
        Some(Value::BulkString(b)) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    };
    match code {
        1 => Some(Claim::Claimed),
        2 => {
            log::info!("cluster: took a user over from the dead node {node}");
            Some(Claim::Claimed)
        }
        0 if !node.is_empty() => Some(Claim::OnlineElsewhere(node)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::{claim_reply, claim_told};
    use crate::cluster::Claim;
    use redis::Value;

    #[test]
    fn claim_replies() {
        let arr = |v: Vec<Value>| Value::Array(v);
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        assert_eq!(claim_reply(&arr(vec![Value::Int(1)])), Some(Claim::Claimed));
        assert_eq!(
            claim_reply(&arr(vec![Value::Int(2), bulk("old")])),
            Some(Claim::Claimed)
        );
        assert_eq!(
            claim_reply(&arr(vec![Value::Int(0), bulk("n2")])),
            Some(Claim::OnlineElsewhere("n2".to_owned()))
        );
        assert_eq!(claim_reply(&arr(vec![Value::Int(0)])), None);
        assert_eq!(claim_reply(&Value::Int(1)), None);
        assert_eq!(claim_reply(&arr(vec![])), None);
        let told = arr(vec![Value::Int(1), bulk(""), Value::Int(3)]);
        assert_eq!(claim_reply(&told), Some(Claim::Claimed));
        assert_eq!((claim_told(&told), claim_told(&Value::Nil)), (3, 0));
    }
}
