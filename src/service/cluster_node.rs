//! The service's side of cluster mode: [`ClusterNode`], the
//! [`LocalNode`] the cluster layer delivers into, and the presence
//! questions the handlers ask.
//!
//! The cluster's threads hold a [`ClusterNode`], which holds the service
//! only weakly: the service owns the [`Cluster`](crate::cluster::Cluster)
//! handle, so a strong reference back would be a cycle that keeps both
//! alive forever.
//!
//! ```text
//!  Service ──owns──► Arc<Cluster> ──owns──► Arc<ClusterNode> ──Weak──► Service
//! ```
//!
//! Both entry points keep the lock rule of [`super::online`]: look the user
//! up under their shard lock and, when storing offline, submit the job to
//! the user's worker before unlocking, so a login's phase 2 on the same
//! worker sees the message (or the login's `LoggingIn` entry buffers it).

use std::sync::{Arc, Weak};

use super::{chat, Service};
use crate::cluster::LocalNode;

/// The [`LocalNode`] of this process. See the [module docs](self).
pub struct ClusterNode {
    svc: Weak<Service>,
}

impl ClusterNode {
    /// A node delivering into `svc`; any thread.
    pub fn new(svc: &Arc<Service>) -> ClusterNode {
        ClusterNode {
            svc: Arc::downgrade(svc),
        }
    }
}

impl LocalNode for ClusterNode {
    /// Subscriber thread: hand the message to the user's peer (or
    /// login buffer); `false` when the user is not here (any more).
    fn deliver(&self, uid: i64, payload: &[u8]) -> bool {
        match self.svc.upgrade() {
            Some(svc) => chat::deliver_here(&svc, uid, payload),
            None => false,
        }
    }

    /// Publisher or subscriber thread: the user is on no node (or Redis
    /// could not be asked): deliver if they arrived here meanwhile, else
    /// store on their worker.
    fn store_offline(&self, uid: i64, payload: Vec<u8>) {
        match self.svc.upgrade() {
            Some(svc) => chat::deliver_or_store_here(&svc, uid, payload),
            None => log::error!("cluster: a message for {uid} arrived after the service ended"),
        }
    }

    /// Publisher thread: everyone in the online map.
    fn local_users(&self) -> Vec<i64> {
        self.svc
            .upgrade()
            .map_or_else(Vec::new, |s| s.online.uids())
    }
}

impl Service {
    /// Which of `uids` are online: in this node's map, or (cluster mode)
    /// claimed by a live node. **Blocks** in cluster mode: worker only.
    pub fn are_online(&self, uids: &[i64]) -> Vec<bool> {
        let mut online: Vec<bool> = uids.iter().map(|&u| self.online.contains(u)).collect();
        let Some(cluster) = self.cluster() else {
            return online;
        };
        let remote: Vec<i64> = uids
            .iter()
            .zip(&online)
            .filter(|(_, &here)| !here)
            .map(|(&u, _)| u)
            .collect();
        if remote.is_empty() {
            return online;
        }
        let mut answers = cluster.is_online(&remote).into_iter();
        for flag in online.iter_mut().filter(|f| !**f) {
            *flag = answers.next().unwrap_or(false);
        }
        online
    }
}
