//! The message log end to end (issue 11), against real `chat-server`
//! processes on both stores and, for the cluster, real MySQL, Redis and
//! nginx:
//!
//! | file | what |
//! |---|---|
//! | [`durability`] | ack after commit (kill -9), idempotent cid retries (also after a dropped connection), errors as 28, offline messages carrying seq, live delivery across restarts |
//! | [`order`] | concurrent posters into one conversation, a login mid-stream, a slow reader cut off that catches up, a backlog longer than one login ack |
//! | [`history`] | SYNC paging over 10,000 messages, group history from the join, refusals and bad fields, CONVS and READ, retention |
//! | [`journal`] | the journal in front of the store: `kill -9` with every message journaled and none applied, a torn tail record cut at the restart |
//! | [`cluster`] | cid retries across nodes, two nodes posting into one conversation, Redis restarted mid-stream |
//!
//! Tests learn conversation names from acks and CONVS, never build them
//! (except to name conversations that do not exist). Every wait is bounded
//! and every count exact. Run them with `cargo test --test suite log::`.

mod cluster;
mod durability;
mod history;
mod journal;
mod order;

use std::thread::JoinHandle;

use crate::support::Test;

/// The result of the thread `h`; a panic in it goes on in the caller, with
/// its own message (a test's assertion made in a helper thread).
fn joined<T>(h: JoinHandle<T>) -> T {
    h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// The tests of this area.
pub fn tests() -> Vec<Test> {
    [
        durability::tests(),
        order::tests(),
        history::tests(),
        journal::tests(),
        cluster::tests(),
    ]
    .into_iter()
    .flatten()
    .collect()
}
