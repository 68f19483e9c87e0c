//! The inter-node protocol's version, and the check that keeps two
//! versions out of one cluster.
//!
//! What nodes say to each other through Redis — the [frames](super::envelope)
//! on their channels, the presence and group events with their barrier
//! tokens, the scripts and the layout of the keys they run on — changes
//! between releases now and then. A node of one version would misread
//! another's frames (so their users' messages would only reach them from
//! the log, at the next gap or login) and never confirm its claims (so
//! every login would wait out `io_timeout`). So the version rides in each
//! node's heartbeat token (`{pid}-{nanos}-p{PROTOCOL}`, see
//! `shared::process_token`), and a node that finds another node alive
//! under its key prefix with another version (or with a token from before
//! versions were numbered) refuses to start. The way through such a
//! release is to stop every node, then start the new ones; a node killed
//! without a clean stop keeps its heartbeat key until it expires, at most
//! `--liveness` later.
//!
//! The check runs once, in [`super::Cluster::start`], on the starting
//! thread. If Redis cannot be reached then, it is skipped with a warning:
//! a node must be able to start while Redis is down (see the module docs
//! of [`super`]).

use std::time::Duration;

use super::keys::Keys;
use super::link;
use super::ClusterError;

/// The inter-node protocol this build speaks. Raise it with any change
/// that a node of the previous version would misread.
pub const PROTOCOL: u32 = 1;

/// The suffix of a heartbeat token that names its protocol.
const MARK: &str = "-p";

/// The protocol named by a heartbeat token: `None` for one from before
/// versions were numbered (or one that is not a number).
pub(crate) fn of_token(token: &str) -> Option<u32> {
    let (_, version) = token.rsplit_once(MARK)?;
    version.parse().ok()
}

/// `token` with this build's protocol appended.
pub(crate) fn mark(token: &str) -> String {
    format!("{token}{MARK}{PROTOCOL}")
}

/// Refuses to join a cluster where another live node speaks another
/// protocol. **Blocks** on Redis: one `SCAN` over its keys, a round trip
/// per 1,000 keys (about one key per online user, plus whatever else the
/// Redis holds), each within `io_timeout`; call it from the starting
/// thread only.
///
/// # Errors
/// [`ClusterError::Protocol`] naming the first such node.
pub(crate) fn check(
    client: &redis::Client,
    keys: &Keys,
    io_timeout: Duration,
) -> Result<(), ClusterError> {
    match live_protocols(client, keys, io_timeout) {
        Ok(nodes) => match nodes.into_iter().find(|(_, p)| *p != Some(PROTOCOL)) {
            Some((node, found)) => Err(ClusterError::Protocol { node, found }),
            None => Ok(()),
        },
        Err(e) => {
            log::warn!(
                "cluster: cannot read the other nodes' heartbeats at start ({e}): \
                 their inter-node protocol is not checked"
            );
            Ok(())
        }
    }
}

/// Every other node with a heartbeat key, and the protocol its token names.
fn live_protocols(
    client: &redis::Client,
    keys: &Keys,
    io_timeout: Duration,
) -> redis::RedisResult<Vec<(String, Option<u32>)>> {
    let mut con = link::connect(client, io_timeout, None)?;
    let prefix = keys.alive_prefix();
    let pattern = format!("{prefix}*");
    let mut found = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, names): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(&pattern)
            .arg("COUNT")
            .arg(1000)
            .query(&mut con)?;
        for name in names {
            let Some(node) = name.strip_prefix(&prefix) else {
                continue;
            };
            // A node id has no `:`; such a name is another cluster's whose
            // prefix starts with ours (`chat:alive:x:…`). And this node's
            // previous process is being replaced.
            if node.contains(':') || node == keys.node_id() {
                continue;
            }
            // Gone between SCAN and GET (that node is dead), or not a
            // string (not a heartbeat): nothing to check.
            let token: Option<String> = redis::cmd("GET").arg(&name).query(&mut con).ok().flatten();
            if let Some(token) = token {
                found.push((node.to_owned(), of_token(&token)));
            }
        }
        if next == 0 {
            return Ok(found);
        }
        cursor = next;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_protocol() {
        let token = mark("123-456");
        assert_eq!(token, format!("123-456-p{PROTOCOL}"));
        assert_eq!(of_token(&token), Some(PROTOCOL));
        assert_eq!(of_token("123-456"), None, "from before the numbers");
        assert_eq!(of_token("123-456-p7"), Some(7));
        assert_eq!(of_token("123-456-px"), None);
        assert_eq!(of_token(""), None);
    }
}
