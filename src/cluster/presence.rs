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
//! connected users ([`LocalNode::local_users`](super::LocalNode::local_users))
//! and this node's `members` set from Redis, releases every claim of a user
//! who is not here any more and claims every user who is. The publisher
//! thread runs it on each (re)connection, when the heartbeat finds that its
//! alive key had vanished, and — with an empty list — at shutdown.
//!
//! It runs on the publisher thread, between batches, so it is ordered with
//! the node's own `claim` and `release` calls: a logout queued after the
//! sync's snapshot is applied after it.

use std::collections::HashSet;

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
    /// outage allowed); the other node keeps them.
    pub(crate) held_elsewhere: usize,
}

/// Makes Redis agree with `local`: this node's claims become exactly the
/// users of `local` that no other live node holds.
///
/// # Errors
/// The first Redis error; the connection should then be dropped.
pub(crate) fn sync(
    con: &mut Connection,
    scripts: &Scripts,
    shared: &Shared,
    local: &HashSet<i64>,
) -> RedisResult<Synced> {
    let keys = &shared.keys;
    let members: Vec<String> = redis::cmd("SMEMBERS").arg(keys.members()).query(con)?;
    let stale: Vec<i64> = members
        .iter()
        .filter_map(|m| m.parse().ok())
        .filter(|uid| !local.contains(uid))
        .collect();
    let mut out = Synced {
        released: stale.len(),
        ..Synced::default()
    };
    for chunk in stale.chunks(CHUNK) {
        let mut pipe = redis::pipe();
        for &uid in chunk {
            pipe.add_command(scripts.release(keys, uid));
        }
        run(con, &pipe, chunk.len())?;
    }
    let here: Vec<i64> = local.iter().copied().collect();
    for chunk in here.chunks(CHUNK) {
        let mut pipe = redis::pipe();
        for &uid in chunk {
            pipe.add_command(scripts.claim(keys, uid));
        }
        for reply in run(con, &pipe, chunk.len())? {
            match claim_reply(&reply) {
                Some(Claim::Claimed) => out.claimed += 1,
                _ => out.held_elsewhere += 1,
            }
        }
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
    let synced = sync(con, scripts, shared, &HashSet::new())?;
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
    use super::claim_reply;
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
    }
}
