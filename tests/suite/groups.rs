//! Groups over real TCP: create, join, quit, dismiss, members, group chat
//! (members only, offline members included).

use std::time::Duration;

use crate::support::client::nested;
use crate::support::{Server, Test, TestDb};
use serde_json::json;

/// The tests of this module.
pub fn tests() -> Vec<Test> {
    both_stores![
        group_life,
        offline_members_get_group_messages,
        order_when_the_member_list_loads
    ]
}

fn group_life(db: TestDb) {
    let server = Server::start(&db, &[]);
    let mut alice = server.user("alice");
    let mut bob = server.user("bob");
    let mut carol = server.user("carol");
    let (a, b) = (alice.uid, bob.uid);

    // A name with quotes and SQL in it is just a name.
    let name = r#"it's "quoted"'); DROP TABLE user; --"#;
    alice.send(&json!({"msgId": 11, "uid": a, "groupname": name, "groupdesc": "d'esc"}));
    let v = alice.expect_errno(17, 0);
    let gid = v["gid"].as_i64().unwrap();
    assert_eq!(v["groupname"], name);
    alice.send(&json!({"msgId": 11, "groupname": name, "groupdesc": ""}));
    alice.expect_errno(17, 8); // taken

    bob.send(&json!({"msgId": 12, "uid": b, "gid": gid}));
    assert_eq!(bob.expect_errno(18, 0)["gid"], gid);
    bob.send(&json!({"msgId": 12, "gid": gid}));
    bob.expect_errno(18, 8); // unique membership
    bob.send(&json!({"msgId": 12, "gid": 98_765}));
    bob.expect_errno(18, 7);
    assert_eq!(db.query_i64("SELECT COUNT(*) FROM groupuser"), 2);

    // The group list of the refresh ack: nested strings, roles, states.
    bob.send(&json!({"msgId": 7}));
    let groups = nested(&bob.expect_errno(8, 0), "groups");
    assert_eq!(groups.len(), 1);
    assert_eq!(
        (groups[0]["gid"].as_i64(), groups[0]["groupname"].as_str()),
        (Some(gid), Some(name))
    );
    assert_eq!(groups[0]["groupdesc"], "d'esc");
    let users: Vec<serde_json::Value> = groups[0]["groupusers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| serde_json::from_str(s.as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(
        users,
        vec![
            json!({"uid": a, "username": "alice", "state": "online", "grouprole": "creator"}),
            json!({"uid": b, "username": "bob", "state": "online", "grouprole": "normal"}),
        ]
    );

    // Members only: list and post.
    bob.send(&json!({"msgId": 23, "gid": gid}));
    let v = bob.expect_errno(24, 0);
    assert_eq!(v["members"].as_array().unwrap().len(), 2);
    carol.send(&json!({"msgId": 23, "gid": gid}));
    carol.expect_errno(24, 6);
    carol.send(&json!({"msgId": 13, "gid": gid, "msg": "let me in"}));
    assert_eq!(carol.expect_errno(27, 6)["req"], 13);

    // A post reaches the other members, not the sender.
    let post = json!({"msgId": 13, "uid": a, "username": "alice", "gid": gid,
                      "msg": "hello group", "time": "2024-01-01 00:00:00"});
    alice.send(&post);
    assert_eq!(bob.expect(13), post);
    alice.expect_silence(Duration::from_millis(150));

    // Joining is seen by the very next post.
    carol.join_group(gid);
    bob.send(&json!({"msgId": 13, "gid": gid, "msg": "welcome"}));
    assert_eq!(alice.expect(13)["msg"], "welcome");
    assert_eq!(carol.expect(13)["msg"], "welcome");

    // Quit: no more posts either way; the creator may not quit.
    carol.send(&json!({"msgId": 19, "gid": gid}));
    carol.expect_errno(20, 0);
    carol.send(&json!({"msgId": 19, "gid": gid}));
    carol.expect_errno(20, 7);
    carol.send(&json!({"msgId": 13, "gid": gid, "msg": "still here?"}));
    carol.expect_errno(27, 6);
    alice.send(&json!({"msgId": 13, "gid": gid, "msg": "bye carol"}));
    assert_eq!(bob.expect(13)["msg"], "bye carol");
    carol.expect_silence(Duration::from_millis(150));
    alice.send(&json!({"msgId": 19, "gid": gid}));
    alice.expect_errno(20, 6);

    // Dismiss: creator only; afterwards the group is gone.
    bob.send(&json!({"msgId": 21, "gid": gid}));
    bob.expect_errno(22, 6);
    alice.send(&json!({"msgId": 21, "gid": gid}));
    alice.expect_errno(22, 0);
    alice.send(&json!({"msgId": 21, "gid": gid}));
    alice.expect_errno(22, 7);
    bob.send(&json!({"msgId": 13, "gid": gid, "msg": "anyone?"}));
    bob.expect_errno(27, 7);
    assert_eq!(db.query_i64("SELECT COUNT(*) FROM groupuser"), 0);
}

fn offline_members_get_group_messages(db: TestDb) {
    let server = Server::start(&db, &[]);
    let mut alice = server.user("alice");
    let mut bob = server.user("bob");
    let gid = alice.create_group("g", "");
    bob.join_group(gid);
    bob.send(&json!({"msgId": 3}));
    bob.expect_errno(4, 0);

    for i in 0..20 {
        alice.send(&json!({"msgId": 13, "gid": gid, "msg": format!("g{i}")}));
    }
    alice.send(&json!({"msgId": 25}));
    alice.expect(26);
    // Stored under the *member's* id (the original used the sender's).
    let mut stored = 0;
    for _ in 0..200 {
        stored = db.query_i64(&format!(
            "SELECT COUNT(*) FROM offlinemessage WHERE userid = {}",
            bob.uid
        ));
        if stored == 20 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(stored, 20);
    assert_eq!(
        db.query_i64(&format!(
            "SELECT COUNT(*) FROM offlinemessage WHERE userid = {}",
            alice.uid
        )),
        0
    );

    let ack = bob.login_ok("secret");
    let texts: Vec<String> = nested(&ack, "offlinemsgs")
        .iter()
        .map(|m| {
            assert_eq!(
                (m["msgId"].as_i64(), m["gid"].as_i64()),
                (Some(13), Some(gid))
            );
            m["msg"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(texts, (0..20).map(|i| format!("g{i}")).collect::<Vec<_>>());
}

/// After a restart the group cache is empty: the first post waits for its
/// member list, and everything the sender sends meanwhile, group or
/// one-to-one, must still arrive in the order sent.
fn order_when_the_member_list_loads(db: TestDb) {
    let (a, b, gid) = {
        let server = Server::start(&db, &[]);
        let mut alice = server.user("alice");
        let mut bob = server.user("bob");
        let gid = alice.create_group("g", "");
        bob.join_group(gid);
        (alice.uid, bob.uid, gid)
    };
    let server = Server::start(&db, &[]);
    let mut alice = server.connect();
    alice.uid = a;
    alice.login_ok("secret");
    let mut bob = server.connect();
    bob.uid = b;
    bob.login_ok("secret");
    let mut burst = String::new();
    for i in 0..100 {
        let m = if i % 3 == 0 {
            json!({"msgId": 13, "gid": gid, "msg": i.to_string()})
        } else {
            json!({"msgId": 9, "to": b, "msg": i.to_string()})
        };
        burst.push_str(&m.to_string());
    }
    alice.send_raw(burst.as_bytes());
    for i in 0..100 {
        let v = bob.recv();
        assert_eq!(v["msg"], i.to_string(), "{v}");
        assert_eq!(v["msgId"], if i % 3 == 0 { 13 } else { 9 });
    }
}
