//! Joining the cluster at start (cluster mode: `--redis`).
//!
//! The node id defaults to `cluster::default_node_id` of the port actually
//! bound, so this runs after the listening socket exists and before the
//! first connection is accepted: no handler ever sees a half-attached
//! service.

use std::net::SocketAddr;
use std::sync::Arc;

use crate::cluster::{
    default_node_id, Cluster, ClusterConfig, ClusterError, SharedThrottle, PROTOCOL,
};
use crate::config::Config;
use crate::service::{ClusterNode, Service};

/// Starts the cluster layer and attaches it to `service`; `None` on a
/// single node (no `--redis`).
///
/// # Errors
/// A bad node id, key prefix, liveness or Redis URL. Redis being down is
/// not an error: the node serves its own users and joins when Redis answers.
pub fn join(
    config: &Config,
    service: &Arc<Service>,
    bound: SocketAddr,
) -> Result<Option<Arc<Cluster>>, ClusterError> {
    let Some(url) = &config.redis else {
        return Ok(None);
    };
    let node_id = config
        .node_id
        .clone()
        .unwrap_or_else(|| default_node_id(bound.port()));
    let cfg = ClusterConfig {
        key_prefix: config.redis_prefix.clone(),
        liveness: config.liveness,
        sessions_per_user: config.sessions_per_user.max(1),
        ..ClusterConfig::new(url.clone(), node_id)
    };
    // Failed logins are counted cluster-wide too, with the cluster's
    // prefix and timeouts.
    let shared =
        SharedThrottle::new(url, &cfg.key_prefix, cfg.io_timeout).map_err(ClusterError::Url)?;
    service.share_login_failures(shared);
    let cluster = Cluster::start(cfg, Arc::new(ClusterNode::new(service)))?;
    service.attach_cluster(cluster.clone());
    log::info!(
        "cluster mode: node {} via {} (liveness {:?}, inter-node protocol {})",
        cluster.node_id(),
        describe_redis(url),
        config.liveness,
        PROTOCOL
    );
    Ok(Some(cluster))
}

/// The Redis URL without a password.
pub fn describe_redis(url: &str) -> String {
    match url
        .split_once("://")
        .and_then(|(s, rest)| Some((s, rest.split_once('@')?)))
    {
        Some((scheme, (_, host))) => format!("{scheme}://***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::describe_redis;

    #[test]
    fn hides_passwords() {
        assert_eq!(
            describe_redis("redis://127.0.0.1:6379"),
            "redis://127.0.0.1:6379"
        );
        assert_eq!(describe_redis("redis://:pw@h:1/2"), "redis://***@h:1/2");
    }
}
