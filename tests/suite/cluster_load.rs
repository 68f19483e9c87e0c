//! Cluster mode under load: 300 users on three nodes (100 each), every
//! user sending numbered messages to one user on another node and one on
//! its own node at once. Every message must arrive, and each sender's
//! numbers must arrive in order.
//!
//! Needs MySQL, the shared Redis and nginx: without them the test is
//! reported ignored, and fails under CI. It runs alone ([`Test::alone`]).

use std::collections::HashMap;
use std::thread;

use crate::cluster::CLUSTER;
use crate::support::{raise_fd_limit, Client, Cluster, Env, Test};

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    tests![order_under_load_across_three_nodes]
        .into_iter()
        .map(|t| t.needs(CLUSTER).alone())
        .collect()
}

const USERS: usize = 300;
const NODES: usize = 3;
/// Messages each user sends to each of its two peers.
const PER_PEER: usize = 40;
/// Client threads (each drives `USERS / THREADS` connections).
const THREADS: usize = 6;

/// User `i`'s two recipients: `i + 100` (always on the next node, as user
/// `i` is on node `i / 100`) and `i + 1` (mostly on the same node).
fn peers(i: usize) -> [usize; 2] {
    [(i + USERS / NODES) % USERS, (i + 1) % USERS]
}

fn order_under_load_across_three_nodes() {
    raise_fd_limit();
    let env = Env::get("load");
    let cluster = Cluster::start(&env, NODES, "2s");
    let per_thread = USERS / THREADS;

    // Register and log in, user i on node i / 100, in parallel.
    let mut clients: Vec<Client> = thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let cluster = &cluster;
                s.spawn(move || {
                    (t * per_thread..(t + 1) * per_thread)
                        .map(|i| cluster.user_on(i / (USERS / NODES) + 1, &format!("u{i}")))
                        .collect::<Vec<Client>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|_| panic!("login thread")))
            .collect()
    });
    let uids: Vec<i64> = clients.iter().map(|c| c.uid).collect();
    let index: HashMap<i64, usize> = uids.iter().enumerate().map(|(i, &u)| (u, i)).collect();

    // Send: each thread interleaves its users' messages.
    thread::scope(|s| {
        for chunk in clients.chunks_mut(per_thread) {
            let uids = &uids;
            s.spawn(move || {
                for seq in 0..PER_PEER {
                    for c in chunk.iter_mut() {
                        let i = c.name[1..].parse::<usize>().unwrap_or(0);
                        for p in peers(i) {
                            c.chat(uids[p], &format!("{i}:{seq}"));
                        }
                    }
                }
            });
        }
    });

    // Receive: every user gets PER_PEER from each of its two senders, in
    // order per sender.
    thread::scope(|s| {
        for chunk in clients.chunks_mut(per_thread) {
            let index = &index;
            s.spawn(move || {
                for c in chunk.iter_mut() {
                    let mut next: HashMap<usize, usize> = HashMap::new();
                    for _ in 0..2 * PER_PEER {
                        let (from, text) = c.recv_chat();
                        let sender = index[&from];
                        let (who, seq) = text.split_once(':').unwrap_or(("", ""));
                        assert_eq!(who.parse::<usize>().ok(), Some(sender), "{text}");
                        let want = next.entry(sender).or_insert(0);
                        assert_eq!(
                            seq.parse::<usize>().ok(),
                            Some(*want),
                            "{} from u{sender}",
                            c.name
                        );
                        *want += 1;
                    }
                    assert!(
                        next.values().all(|&n| n == PER_PEER),
                        "{}: {next:?}",
                        c.name
                    );
                }
            });
        }
    });
    assert_eq!(
        env.db.query_i64("SELECT COUNT(*) FROM offlinemessage"),
        0,
        "nothing was stored: everyone was online"
    );
}
