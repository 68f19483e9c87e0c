//! Groups over real TCP: create, join, quit, dismiss, members, group chat
//! (members only, offline members included). A group is one conversation
//! of the message log: every post carries its `conv`, `seq` and `ts`.

use std::time::Duration;

use crate::support::client::{assert_gapless, logged, nested, without_log};
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

/// Create, join, list, post, quit and dismiss, with members-only checks;
/// posts are numbered in the group's conversation, refused ones not.
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
    let first = bob.expect(13);
    assert_eq!(without_log(&first), post);
    let conv = assert_gapless(&[first], 1);
    alice.expect_silence(Duration::from_millis(150));

    // Joining is seen by the very next post, the group's second.
    carol.join_group(gid);
    bob.send(&json!({"msgId": 13, "gid": gid, "msg": "welcome"}));
    for member in [&mut alice, &mut carol] {
        let v = member.expect(13);
        assert_eq!(v["msg"], "welcome");
        assert_eq!((logged(&v).conv, logged(&v).seq), (conv.clone(), 2));
    }

    // Quit: no more posts either way; the creator may not quit.
    carol.send(&json!({"msgId": 19, "gid": gid}));
    carol.expect_errno(20, 0);
    carol.send(&json!({"msgId": 19, "gid": gid}));
    carol.expect_errno(20, 7);
    carol.send(&json!({"msgId": 13, "gid": gid, "msg": "still here?"}));
    carol.expect_errno(27, 6);
    alice.send(&json!({"msgId": 13, "gid": gid, "msg": "bye carol"}));
    let bye = bob.expect(13);
    assert_eq!(bye["msg"], "bye carol");
    // The refused posts took no number.
    assert_eq!((logged(&bye).conv, logged(&bye).seq), (conv, 3));
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

/// Posts while a member is logged out are log rows of the group, handed in
/// the member's next login ack in order, numbered from 1.
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
    // Stored once in the group's log (not once per member, and not in the
    // legacy table), and waiting for bob.
    let mut stored = 0;
    for _ in 0..200 {
        stored = db.chatlog_rows_from(alice.uid);
        if stored == 20 {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(stored, 20);
    assert_eq!(db.chatlog_rows(), 20);
    assert_eq!(db.query_i64("SELECT COUNT(*) FROM offlinemessage"), 0);

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
    assert_gapless(&nested(&ack, "offlinemsgs"), 1);
}

/// After a restart the group cache is empty: the first post waits for its
/// member list, and everything the sender sends meanwhile must still
/// arrive in the order sent within each conversation (the group's and the
/// one-to-one one), each numbered from 1 without a gap. Across the two
/// conversations the order is not promised.
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
    let got: Vec<serde_json::Value> = (0..100).map(|_| bob.recv()).collect();
    bob.expect_silence(Duration::from_millis(100));
    // Every third was a group post (13), the rest one-to-one (9).
    for (msg_id, group) in [(13, true), (9, false)] {
        let of: Vec<serde_json::Value> = got
            .iter()
            .filter(|v| v["msgId"] == msg_id)
            .cloned()
            .collect();
        let texts: Vec<&str> = of.iter().map(|v| v["msg"].as_str().unwrap_or("")).collect();
        let want: Vec<String> = (0..100)
            .filter(|i| (i % 3 == 0) == group)
            .map(|i: i32| i.to_string())
            .collect();
        assert_eq!(texts, want, "msgId {msg_id}: {got:?}");
        assert_gapless(&of, 1);
    }
}
