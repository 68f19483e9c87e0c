//! [`Readiness`]: what `/readyz` answers, kept fresh off the I/O threads.
//!
//! A checker thread (`chat-readyz`) runs a cheap store query (an indexed
//! lookup of a user that does not exist) once a second and reads whether
//! the cluster's Redis link is up (publisher connected and subscriber
//! listening); the HTTP threads only read the result,
//! so a hung database never blocks a loop. From SIGTERM on the answer is
//! 503 whatever the checks say ([`Readiness::set_draining`]). The same
//! thread samples what `/metrics` reads but is too dear for an I/O
//! thread (`/proc`, the online map's shards).

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::cluster::Cluster;
use crate::storage::Store;

const STORE_DOWN: u8 = 1;
const REDIS_DOWN: u8 = 2;
const NOT_CHECKED: u8 = 4;

/// The readiness flags. See the [module docs](self).
#[derive(Default)]
pub struct Readiness {
    /// Failed checks (bits above); any thread.
    failing: AtomicU8,
    draining: AtomicBool,
    stop: AtomicBool,
}

impl Readiness {
    /// Starts the checker on `store` (and `cluster`'s link, if any), which
    /// also calls `sample` each round (the `/metrics` sampler).
    ///
    /// # Errors
    /// If the thread cannot be started.
    pub fn start(
        store: Arc<dyn Store>,
        cluster: Option<Arc<Cluster>>,
        sample: Box<dyn Fn() + Send>,
    ) -> std::io::Result<(Arc<Readiness>, JoinHandle<()>)> {
        let me = Arc::new(Readiness {
            failing: AtomicU8::new(NOT_CHECKED),
            ..Readiness::default()
        });
        let r = me.clone();
        let thread = std::thread::Builder::new()
            .name("chat-readyz".into())
            .spawn(move || {
                while !r.stop.load(Ordering::Acquire) {
                    let mut failing = 0;
                    if store.user_by_id(0).is_err() {
                        failing |= STORE_DOWN;
                    }
                    if cluster
                        .as_ref()
                        .is_some_and(|c| !c.is_connected() || !c.is_subscribed())
                    {
                        failing |= REDIS_DOWN;
                    }
                    r.failing.store(failing, Ordering::Release);
                    sample();
                    std::thread::park_timeout(Duration::from_secs(1));
                }
            })?;
        Ok((me, thread))
    }

    /// `None` when ready, else why not; any thread, never blocks.
    pub fn why_not(&self) -> Option<&'static str> {
        if self.draining.load(Ordering::Acquire) {
            return Some("shutting down");
        }
        let failing = self.failing.load(Ordering::Acquire);
        if failing & NOT_CHECKED != 0 {
            Some("starting")
        } else if failing & STORE_DOWN != 0 {
            Some("the store does not answer")
        } else if failing & REDIS_DOWN != 0 {
            Some("the cluster's Redis is not linked")
        } else {
            None
        }
    }

    /// From now on `/readyz` answers 503; any thread.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    /// Asks the checker to stop (then join its thread, after unparking it).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::Release);
    }
}
