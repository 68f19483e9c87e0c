//! The group-membership cache in cluster mode (issue 18): joins, quits and
//! dismissals on one node reach the other nodes' caches before their ack,
//! so a post sent on another node right after the ack sees the change.
//! Two `chat-server` nodes on one MySQL database and one Redis key prefix,
//! clients connected straight to the node each test picks.
//!
//! Needs MySQL and the shared Redis; without them the tests are reported
//! ignored, and fail under CI.

use std::time::Duration;

use serde_json::json;

use crate::support::log::group_with_cid;
use crate::support::{Cluster, Env, Need, Test};

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    tests![group_changes_reach_the_other_node_before_their_ack]
        .into_iter()
        .map(|t| t.needs(&[Need::Mysql, Need::Redis]))
        .collect()
}

/// The owner and a member on node 1, a poster on node 2, whose cache holds
/// the group (it has posted into it). Five times over: the member joins
/// on node 1 and the poster's very next post on node 2 reaches them; the
/// member quits on node 1 and the next post does not. Then the owner
/// dismisses the group on node 1, and a post on node 2 finds no group.
fn group_changes_reach_the_other_node_before_their_ack() {
    let env = Env::get("groups-cache");
    let cluster = Cluster::start_with(&env, 2, "2s", &[]);
    let mut owner = cluster.user_on(1, "owner");
    let mut member = cluster.user_on(1, "member");
    let mut poster = cluster.user_on(2, "poster");
    let gid = owner.create_group("g", "d");
    poster.join_group(gid);
    let mut post = |text: &str| {
        poster.send(&group_with_cid(gid, text, text));
        poster.expect_errno(28, 0);
        assert_eq!(owner.expect(13)["msg"], text, "the owner on node 1");
    };
    post("warm the cache of node 2");
    for round in 0..5 {
        member.join_group(gid);
        let text = format!("in {round}");
        post(&text);
        assert_eq!(
            member.expect(13)["msg"],
            text.as_str(),
            "right after the join"
        );
        member.send(&json!({"msgId": 19, "gid": gid}));
        member.expect_errno(20, 0);
        post(&format!("out {round}"));
        member.expect_silence(Duration::from_millis(150));
    }
    owner.send(&json!({"msgId": 21, "gid": gid}));
    owner.expect_errno(22, 0);
    poster.send(&json!({"msgId": 13, "gid": gid, "msg": "anyone?"}));
    let v = poster.recv();
    assert_eq!(
        (v["msgId"].as_i64(), v["errno"].as_i64()),
        (Some(27), Some(7)),
        "{v}"
    );
}
