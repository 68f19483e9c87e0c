//! `Keys`: the names of every Redis key and channel the cluster uses.
//!
//! All names start with the configured prefix (`chat` by default), so that
//! several clusters, or several tests, can share one Redis without meeting:
//!
//! | name | type | value | written by |
//! |---|---|---|---|
//! | `{prefix}:user:{uid}` | hash | node id → how many sessions of the user that node holds | `claim` (HINCRBY +1), `release` (−1, HDEL at 0), the presence sync (HSET/HDEL); a dead node's field is deleted by the next claim or sync that meets it |
//! | `{prefix}:members:{node}` | set | the user ids `node` claimed | `claim` (SADD), `release` (SREM) |
//! | `{prefix}:alive:{node}` | string with a TTL | a token of the running process, ending in its inter-node protocol (`-p1`: `protocol.rs`) | the heartbeat, every `liveness / 3` |
//! | `{prefix}:node:{node}` | pub/sub channel | [frames](super::envelope) (batches of items) for users on `node` | every node's publisher, and the `route` script |
//! | `{prefix}:catchup` | pub/sub channel | the id of a node that could not route messages (or announce a group change) while its link was down | that node's publisher, once back |
//! | `{prefix}:groups` | pub/sub channel | `"{gid} {node} {token}"`: the members of `gid` changed on `node` | that node's publisher, before the change's ack |
//! | `{prefix}:presence` | pub/sub channel | `"{uid} {node} {token}"`: `uid`'s hash changed (a claim, release or sync on `node`; `token`: a claim's barrier, or empty) | the `claim`, `release` and `set` scripts |
//!
//! Versions before several sessions per user kept `user:{uid}` as a string
//! naming one node: nodes of both kinds cannot share a Redis (restart
//! them together); a string such a version left is deleted by the next
//! claim or sync of that user.
//!
//! The `members` set is what lets a node find its own claims again without
//! scanning the key space: after a crash (to clear them) and after a Redis
//! outage (to reconcile them with who is really connected).

/// Builds key and channel names for one prefix and one node.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    /// `{prefix}:`, kept with its colon so that names are one `format!`.
    prefix: String,
    /// This node's id.
    node_id: String,
}

impl Keys {
    /// Names for node `node_id` under `prefix`.
    pub(crate) fn new(prefix: &str, node_id: &str) -> Keys {
        Keys {
            prefix: format!("{prefix}:"),
            node_id: node_id.to_owned(),
        }
    }

    /// This node's id.
    pub(crate) fn node_id(&self) -> &str {
        &self.node_id
    }

    /// `{prefix}:user:{uid}`: on which nodes `uid` is logged in, and how
    /// many times on each.
    pub(crate) fn user(&self, uid: i64) -> String {
        format!("{}user:{uid}", self.prefix)
    }

    /// `{prefix}:alive:`: the scripts append a node id to it.
    pub(crate) fn alive_prefix(&self) -> String {
        format!("{}alive:", self.prefix)
    }

    /// `{prefix}:alive:{this node}`.
    pub(crate) fn alive(&self) -> String {
        format!("{}alive:{}", self.prefix, self.node_id)
    }

    /// `{prefix}:members:`: the scripts append a node id to it.
    pub(crate) fn members_prefix(&self) -> String {
        format!("{}members:", self.prefix)
    }

    /// `{prefix}:members:{this node}`.
    pub(crate) fn members(&self) -> String {
        format!("{}members:{}", self.prefix, self.node_id)
    }

    /// `{prefix}:node:`: the scripts append a node id to it.
    pub(crate) fn channel_prefix(&self) -> String {
        format!("{}node:", self.prefix)
    }

    /// `{prefix}:catchup`: every node subscribes to it; a node whose link
    /// came back after messages could not be routed publishes its id
    /// there, and every other node catches its users up from the log.
    pub(crate) fn catch_up_channel(&self) -> String {
        format!("{}catchup", self.prefix)
    }

    /// `{prefix}:groups`: every node subscribes to it; a node where a
    /// group's members changed publishes `"{gid} {node}"` there, and every
    /// other node drops the group from its membership cache.
    pub(crate) fn groups_channel(&self) -> String {
        format!("{}groups", self.prefix)
    }

    /// `{prefix}:presence`: every node subscribes to it; the scripts that
    /// change a user's hash publish `"{uid} {node} {token}"` there, and
    /// every node forgets the user's cached route (`routes.rs`).
    pub(crate) fn presence_channel(&self) -> String {
        format!("{}presence", self.prefix)
    }

    /// `{prefix}:node:{this node}`: the channel this node subscribes to.
    pub(crate) fn channel(&self) -> String {
        format!("{}node:{}", self.prefix, self.node_id)
    }
}

#[cfg(test)]
mod tests {
    use super::Keys;

    #[test]
    fn names_follow_the_table() {
        let k = Keys::new("chat", "n1");
        assert_eq!(k.node_id(), "n1");
        assert_eq!(k.user(42), "chat:user:42");
        assert_eq!(k.user(-1), "chat:user:-1");
        assert_eq!(k.alive(), "chat:alive:n1");
        assert_eq!(k.alive_prefix() + "n1", k.alive());
        assert_eq!(k.members(), "chat:members:n1");
        assert_eq!(k.members_prefix() + "n1", k.members());
        assert_eq!(k.channel(), "chat:node:n1");
        assert_eq!(k.channel_prefix() + "n1", k.channel());
        assert_eq!(k.catch_up_channel(), "chat:catchup");
        assert_eq!(k.presence_channel(), "chat:presence");
    }
}
