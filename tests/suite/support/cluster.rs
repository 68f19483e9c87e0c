//! The cluster tests' harness: real `chat-server` nodes on one MySQL
//! database, a Redis key prefix of their own, and nginx (its stream
//! module) in front, everything killed on drop.
//!
//! * [`Env::get`]: a fresh MySQL database and a key prefix on the shared
//!   Redis; [`Env::on`] the same on another Redis (a
//!   [`PrivateRedis`](super::redis::PrivateRedis)). Tests that use them
//!   [need](super::Need) `mysql`, `redis` (or `redis-server`) and `nginx`.
//! * [`Cluster::start`]: N nodes `node1`.. with `--liveness`, then nginx,
//!   then waits until every node is subscribed to its channel.
//!
//! Every wait is bounded ([`PATIENCE`](super::PATIENCE)).

use std::net::SocketAddr;

use serde_json::{json, Value};

use super::client::nested;
use super::nginx::Nginx;
use super::redis::KeyPrefix;
use super::{require, wait_until, Client, Server, TestDb};

/// What a cluster test needs: a fresh MySQL database and a Redis with a
/// key prefix of the test's own (its keys are deleted on drop).
pub struct Env {
    /// The shared store.
    pub db: TestDb,
    /// The Redis and the key prefix.
    pub redis: KeyPrefix,
}

impl Env {
    /// The environment on the shared Redis ([`require::redis_url`]).
    pub fn get(test: &str) -> Env {
        Env::on(test, &require::redis_url())
    }

    /// The environment on the Redis at `redis`.
    pub fn on(test: &str, redis: &str) -> Env {
        Env {
            db: TestDb::mysql(),
            redis: KeyPrefix::new(redis, test),
        }
    }

    /// The node holding `uid`'s claim, read straight from Redis.
    pub fn holder(&self, uid: i64) -> Option<String> {
        self.redis.holder(uid)
    }

    /// Subscribers of `node`'s channel (0 when Redis cannot be asked).
    pub fn subscribers(&self, node: &str) -> i64 {
        self.redis.subscribers(node)
    }
}

/// N nodes and nginx. Nodes are `None` once killed.
pub struct Cluster {
    /// `nodes[k]` is `node{k+1}`.
    pub nodes: Vec<Option<Server>>,
    /// nginx in front of the nodes started first (`None`: started with
    /// [`start_with`](Cluster::start_with), clients connect to the nodes).
    pub nginx: Option<Nginx>,
    liveness: String,
    /// More arguments for every node (`--workers 1`, ...).
    extra: Vec<String>,
}

impl Cluster {
    /// Starts `n` nodes with `--liveness liveness` and nginx in front, and
    /// waits until each node listens on its Redis channel.
    pub fn start(env: &Env, n: usize, liveness: &str) -> Cluster {
        Cluster::launch(env, n, liveness, &[], true)
    }

    /// `n` nodes as [`start`](Self::start) does, with `extra` arguments for
    /// every node, and without nginx: for the tests that pick each
    /// client's node themselves (they need no `nginx` program).
    pub fn start_with(env: &Env, n: usize, liveness: &str, extra: &[&str]) -> Cluster {
        Cluster::launch(env, n, liveness, extra, false)
    }

    fn launch(env: &Env, n: usize, liveness: &str, extra: &[&str], proxy: bool) -> Cluster {
        let extra: Vec<String> = extra.iter().map(|s| (*s).to_owned()).collect();
        let nodes: Vec<Option<Server>> = (1..=n)
            .map(|k| Some(start_node(env, k, liveness, &extra)))
            .collect();
        let addrs: Vec<SocketAddr> = nodes.iter().flatten().map(|s| s.addr).collect();
        let nginx = proxy.then(|| Nginx::start(&addrs));
        let c = Cluster {
            nodes,
            nginx,
            liveness: liveness.to_owned(),
            extra,
        };
        for k in 1..=n {
            c.wait_subscribed(env, k);
        }
        c
    }

    /// Node `k` (1-based).
    pub fn node(&self, k: usize) -> &Server {
        self.nodes[k - 1].as_ref().expect("the node runs")
    }

    /// Waits until node `k` is subscribed to its channel.
    pub fn wait_subscribed(&self, env: &Env, k: usize) {
        let id = format!("node{k}");
        wait_until(&format!("{id} subscribes"), || env.subscribers(&id) == 1);
    }

    /// SIGKILL node `k`.
    pub fn kill(&mut self, k: usize) {
        if let Some(mut s) = self.nodes[k - 1].take() {
            s.kill9();
        }
    }

    /// Starts node `k` again with the same id (on a new port, not behind
    /// nginx) and waits until it is subscribed.
    pub fn restart(&mut self, env: &Env, k: usize) {
        self.kill(k);
        self.nodes[k - 1] = Some(start_node(env, k, &self.liveness, &self.extra));
        self.wait_subscribed(env, k);
    }

    /// A new connection through nginx (to node 1 without nginx).
    pub fn connect(&self) -> Client {
        match &self.nginx {
            Some(nginx) => Client::connect(nginx.addr),
            None => self.node(1).connect(),
        }
    }

    /// A new account registered through nginx (or node 1) and logged in on
    /// node `k`.
    pub fn user_on(&self, k: usize, name: &str) -> Client {
        let mut c = self.connect();
        c.register(name, "secret");
        let mut on = self.node(k).connect();
        on.uid = c.uid;
        on.name = c.name.clone();
        on.login_ok("secret");
        on
    }
}

fn start_node(env: &Env, k: usize, liveness: &str, extra: &[String]) -> Server {
    let id = format!("node{k}");
    let mut args = vec![
        "--redis",
        &env.redis.url,
        "--redis-prefix",
        &env.redis.name,
        "--node-id",
        &id,
        "--liveness",
        liveness,
    ];
    args.extend(extra.iter().map(String::as_str));
    Server::start(&env.db, &args)
}

/// The `state` of each friend in a login or refresh ack, by uid.
pub fn friend_states(ack: &Value) -> Vec<(i64, String)> {
    let mut v: Vec<(i64, String)> = nested(ack, "friends")
        .iter()
        .map(|f| {
            (
                f["uid"].as_i64().unwrap_or(0),
                f["state"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    v.sort();
    v
}

/// Refreshes `c`'s account and returns its friends' states.
pub fn refresh_friends(c: &mut Client) -> Vec<(i64, String)> {
    c.send(&json!({"msgId": 7}));
    friend_states(&c.expect_errno(8, 0))
}

/// Waits until `c`'s refresh shows friend `fid` as `state`.
pub fn wait_friend_state(c: &mut Client, fid: i64, state: &str) {
    wait_until(&format!("{} sees {fid} {state}", c.name), || {
        refresh_friends(c)
            .iter()
            .any(|(id, s)| *id == fid && s == state)
    });
}

/// The `msg` texts of the offline messages in a login ack.
pub fn offline_texts(ack: &Value) -> Vec<String> {
    nested(ack, "offlinemsgs")
        .iter()
        .map(|m| m["msg"].as_str().unwrap_or("").to_owned())
        .collect()
}
