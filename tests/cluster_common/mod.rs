//! Harness of the cluster tests (`tests/cluster*.rs`): real `chat-server`
//! nodes on one MySQL database, a Redis key prefix of their own, and nginx
//! (the stream module) in front, everything killed on drop.
//!
//! * [`Env::get`]: the MySQL server (`CHAT_TEST_MYSQL`) and the shared Redis
//!   (127.0.0.1:6379). When one is missing the test prints "skipped" and
//!   passes, except under CI (`CI` set), where it fails.
//! * [`Cluster::start`]: N nodes `node1`.. with `--liveness`, then nginx,
//!   then waits until every node is subscribed to its channel.
//! * `redis_support::PrivateRedis` (tests/redis_support): a `redis-server`
//!   of the test's own, to kill and restart.
//!
//! Every wait is bounded ([`PATIENCE`]).

#![allow(dead_code)] // each test binary uses a different part

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::common::client::nested;
use crate::common::{unique, Client, Server, TestDb};
pub use crate::redis_support::{delete_prefix, redis_con};

/// The Redis most tests share, each under its own key prefix.
pub const SHARED_REDIS: &str = "redis://127.0.0.1:6379";
/// The nginx of Debian's packages, and its stream module.
pub const NGINX: &str = "/usr/sbin/nginx";
const STREAM_MODULE: &str = "/usr/lib/nginx/modules/ngx_stream_module.so";
/// Upper bound of every wait.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// Notes a skipped test; under CI a skip is a failure.
pub fn skip(what: &str) {
    assert!(std::env::var_os("CI").is_none(), "CI cannot skip: {what}");
    eprintln!("skipped: {what}");
}

/// Waits until `cond` holds, at most [`PATIENCE`].
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + PATIENCE;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// A free loopback port (free when asked; the caller binds it soon after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// What a cluster test needs: a fresh MySQL database and a Redis with a
/// key prefix of the test's own (its keys are deleted on drop).
pub struct Env {
    /// The shared store.
    pub db: TestDb,
    /// The Redis URL.
    pub redis: String,
    /// The key prefix.
    pub prefix: String,
}

impl Env {
    /// The environment on the shared Redis, or `None` (skipped).
    pub fn get(test: &str) -> Option<Env> {
        Env::on(test, SHARED_REDIS)
    }

    /// The environment on the Redis at `redis`, or `None` (skipped).
    pub fn on(test: &str, redis: &str) -> Option<Env> {
        let Some(db) = TestDb::mysql() else {
            skip(&format!("{test}: CHAT_TEST_MYSQL not set"));
            return None;
        };
        if redis_con(redis).is_none() {
            skip(&format!("{test}: no Redis at {redis}"));
            return None;
        }
        Some(Env {
            db,
            redis: redis.to_owned(),
            prefix: unique(&format!("chat-test:{test}")).replace('_', "-"),
        })
    }

    /// The node holding `uid`'s claim, read straight from Redis.
    pub fn holder(&self, uid: i64) -> Option<String> {
        let mut con = redis_con(&self.redis)?;
        redis::cmd("GET")
            .arg(format!("{}:user:{uid}", self.prefix))
            .query(&mut con)
            .ok()?
    }

    /// Subscribers of `node`'s channel (0 when Redis cannot be asked).
    pub fn subscribers(&self, node: &str) -> i64 {
        let Some(mut con) = redis_con(&self.redis) else {
            return 0;
        };
        let channel = format!("{}:node:{node}", self.prefix);
        let reply: Result<(String, i64), _> = redis::cmd("PUBSUB")
            .arg("NUMSUB")
            .arg(&channel)
            .query(&mut con);
        reply.map_or(0, |(_, n)| n)
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        delete_prefix(&self.redis, &self.prefix);
    }
}

/// N nodes and nginx. Nodes are `None` once killed.
pub struct Cluster {
    /// `nodes[k]` is `node{k+1}`.
    pub nodes: Vec<Option<Server>>,
    /// nginx in front of the nodes started first.
    pub nginx: Nginx,
    liveness: String,
}

impl Cluster {
    /// Starts `n` nodes with `--liveness liveness` and nginx in front, and
    /// waits until each node listens on its Redis channel.
    pub fn start(env: &Env, n: usize, liveness: &str) -> Cluster {
        let nodes: Vec<Option<Server>> = (1..=n)
            .map(|k| Some(start_node(env, k, liveness)))
            .collect();
        let addrs: Vec<SocketAddr> = nodes.iter().flatten().map(|s| s.addr).collect();
        let nginx = Nginx::start(&addrs);
        let c = Cluster {
            nodes,
            nginx,
            liveness: liveness.to_owned(),
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
        self.nodes[k - 1] = Some(start_node(env, k, &self.liveness));
        self.wait_subscribed(env, k);
    }

    /// A new connection through nginx.
    pub fn connect(&self) -> Client {
        Client::connect(self.nginx.addr)
    }

    /// A new account registered through nginx and logged in on node `k`.
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

fn start_node(env: &Env, k: usize, liveness: &str) -> Server {
    let id = format!("node{k}");
    Server::start(
        &env.db,
        &[
            "--redis",
            &env.redis,
            "--redis-prefix",
            &env.prefix,
            "--node-id",
            &id,
            "--liveness",
            liveness,
        ],
    )
}

/// nginx (stream module) in front of some nodes, in the foreground with a
/// private prefix directory; killed on drop.
pub struct Nginx {
    child: Child,
    dir: PathBuf,
    /// Where clients connect.
    pub addr: SocketAddr,
}

impl Nginx {
    /// nginx with deploy/nginx.conf's configuration, rewritten for `nodes`,
    /// a free port and one process.
    pub fn start(nodes: &[SocketAddr]) -> Nginx {
        let dir = std::env::temp_dir().join(unique("chat-nginx"));
        std::fs::create_dir_all(dir.join("logs")).expect("nginx dir");
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, nginx_conf(nodes, addr)).expect("write nginx.conf");
        let child = Command::new(NGINX)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.join("logs/error.log"))
            .args(["-g", "daemon off; master_process off;"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn nginx (apt-get install nginx libnginx-mod-stream)");
        let mut n = Nginx { child, dir, addr };
        let end = Instant::now() + PATIENCE;
        while TcpStream::connect(addr).is_err() {
            let exited = matches!(n.child.try_wait(), Ok(Some(_)));
            if exited || Instant::now() > end {
                let log = std::fs::read_to_string(n.dir.join("logs/error.log"));
                panic!("nginx did not start: {}", log.unwrap_or_default());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        n
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// deploy/nginx.conf with the `server` lines of `nodes` between its
/// `BEGIN nodes` / `END nodes` markers and `listen` on `addr`.
fn nginx_conf(nodes: &[SocketAddr], addr: SocketAddr) -> String {
    let template = include_str!("../../deploy/nginx.conf");
    let mut out = String::new();
    let mut skipping = false;
    for line in template.lines() {
        let t = line.trim_start();
        if t.starts_with("load_module") {
            out.push_str(&format!("load_module {STREAM_MODULE};\n"));
        } else if t.starts_with("# BEGIN nodes") {
            out.push_str(line);
            out.push('\n');
            for n in nodes {
                out.push_str(&format!(
                    "        server {n} max_fails=1 fail_timeout=5s;\n"
                ));
            }
            skipping = true;
        } else if t.starts_with("# END nodes") {
            skipping = false;
            out.push_str(line);
            out.push('\n');
        } else if skipping {
        } else if t.starts_with("listen ") {
            out.push_str(&format!("        listen {addr} backlog=4096;\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
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
