//! The heartbeat thread: keeps `{prefix}:alive:{node}` alive.
//!
//! Every `liveness / 3` it sets the key again with a TTL of `liveness`, so
//! two beats can be missed before the key expires. A node that dies —
//! `SIGKILL`, a power cut, a network partition — stops beating; at most
//! `liveness` later its key is gone and the other nodes' scripts treat its
//! users as offline: messages to them are stored, their logins elsewhere
//! take the claim over.
//!
//! The key holds a token unique to this process. The beat script reports
//! when the key had vanished or held another token, which means Redis lost
//! this node's state (restart, flush) or the node was considered dead for a
//! while (a pause longer than `liveness`): then the thread asks the
//! publisher to re-sync presence, since other nodes may have acted on the
//! node's absence. A foreign token on *every* beat means two running
//! processes share a node id; that is logged once.

use std::sync::Arc;

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use redis::{Connection, RedisResult};

use super::link::{self, Health};
use super::publisher::Op;
use super::shared::Shared;

/// The thread's body: beats until `stop` is dropped (or the cluster aborts).
pub(crate) fn run(shared: Arc<Shared>, ops: Sender<Op>, stop: Receiver<()>) {
    let mut health = Health::new(shared.keys.node_id(), "heartbeat");
    let mut con: Option<Connection> = None;
    let mut first = true;
    let mut foreign = 0u32;
    loop {
        if shared.aborted() {
            return;
        }
        match beat(&shared, &mut con) {
            Ok(state) => {
                health.up();
                match state {
                    1 => foreign = 0,
                    2 if first => log::info!(
                        "cluster: node id {} had a live heartbeat: this node's previous \
                         process, or another process with the same id",
                        shared.keys.node_id()
                    ),
                    2 => {
                        foreign += 1;
                        if foreign == 2 {
                            log::warn!(
                                "cluster: another process is beating as node {}: node ids \
                                 must be unique",
                                shared.keys.node_id()
                            );
                        }
                    }
                    _ => {}
                }
                if state != 1 && !first {
                    let _ = ops.send(Op::Resync);
                }
                first = false;
            }
            Err(e) => {
                con = None;
                health.down(&e);
            }
        }
        match stop.recv_timeout(shared.cfg.beat_interval()) {
            Err(RecvTimeoutError::Timeout) => {}
            _ => return,
        }
    }
}

/// One beat: 1 refreshed, 0 the key had vanished, 2 it held another token.
fn beat(shared: &Shared, con: &mut Option<Connection>) -> RedisResult<i64> {
    let c = match con {
        Some(c) => c,
        None => con.insert(link::connect(&shared.client, shared.cfg.io_timeout, None)?),
    };
    shared.beat_command().query(c)
}
