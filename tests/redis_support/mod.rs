//! Redis helpers shared by the cluster test binaries: a connection with
//! timeouts, and the clean-up of a test's key prefix.

#![allow(dead_code)]

use std::time::Duration;

/// A Redis connection with timeouts that answers PING, or `None`.
pub fn redis_con(url: &str) -> Option<redis::Connection> {
    let client = redis::Client::open(url).ok()?;
    let mut con = client
        .get_connection_with_timeout(Duration::from_secs(1))
        .ok()?;
    con.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    redis::cmd("PING").query::<String>(&mut con).ok()?;
    Some(con)
}

/// Deletes every key under `prefix:`; best effort (used from `Drop`).
pub fn delete_prefix(url: &str, prefix: &str) {
    let Some(mut con) = redis_con(url) else {
        return;
    };
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{prefix}:*"))
        .query(&mut con)
        .unwrap_or_default();
    if !keys.is_empty() {
        let _ = redis::cmd("DEL").arg(keys).query::<i64>(&mut con);
    }
}
