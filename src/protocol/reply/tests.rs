//! Tests of [`reply`](super): the exact shapes of every reply.

use serde_json::{json, Value};

use crate::model::{Conv, ConvState, GroupInfo, MemberInfo, Role, UserInfo};
use crate::protocol::msg_id::{self, errno};
use crate::protocol::reply;

/// Parses one element of a nested-string array, as the original's client does.
fn reparse(v: &Value) -> Value {
    serde_json::from_str(v.as_str().expect("a JSON-encoded string")).unwrap()
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

fn sample_friends() -> Vec<UserInfo> {
    vec![
        UserInfo {
            id: 2,
            name: "bob".into(),
            online: true,
        },
        UserInfo {
            id: 3,
            name: "卡尔 \"the\" 😀".into(),
            online: false,
        },
    ]
}

fn sample_groups() -> Vec<GroupInfo> {
    vec![GroupInfo {
        id: 7,
        name: "g'; DROP TABLE user; --".into(),
        desc: "desc".into(),
        members: vec![
            MemberInfo {
                id: 1,
                name: "alice".into(),
                online: true,
                role: Role::Creator,
            },
            MemberInfo {
                id: 2,
                name: "bob".into(),
                online: false,
                role: Role::Normal,
            },
        ],
    }]
}

#[test]
fn login_ack_with_nested_strings() {
    let offline = vec![json!({"msgId": 9, "from": 2, "to": 1, "msg": "hi"}).to_string()];
    let v = reply::login_ok(
        1,
        "alice",
        offline.clone(),
        &sample_friends(),
        &sample_groups(),
    );
    assert_eq!(
        keys(&v),
        [
            "errno",
            "friends",
            "groups",
            "msgId",
            "offlinemsgs",
            "sysmsg",
            "uid",
            "username"
        ]
    );
    assert_eq!(v["msgId"], msg_id::LOGIN_MSG_ACK);
    assert_eq!((v["errno"].as_i64(), v["uid"].as_i64()), (Some(0), Some(1)));
    assert_eq!(v["username"], "alice");
    assert_eq!(v["offlinemsgs"], json!(offline));
    assert_eq!(reparse(&v["offlinemsgs"][0])["msg"], "hi");

    let friends = v["friends"].as_array().unwrap();
    assert_eq!(friends.len(), 2);
    assert_eq!(
        reparse(&friends[0]),
        json!({"uid": 2, "username": "bob", "state": "online"})
    );
    assert_eq!(
        reparse(&friends[1]),
        json!({"uid": 3, "username": "卡尔 \"the\" 😀", "state": "offline"})
    );

    let group = reparse(&v["groups"][0]);
    assert_eq!(
        keys(&group),
        ["gid", "groupdesc", "groupname", "groupusers"]
    );
    assert_eq!(group["gid"], 7);
    assert_eq!(group["groupname"], "g'; DROP TABLE user; --");
    assert_eq!(group["groupdesc"], "desc");
    let users = group["groupusers"].as_array().unwrap();
    assert_eq!(
        reparse(&users[0]),
        json!({"uid": 1, "username": "alice", "state": "online", "grouprole": "creator"})
    );
    assert_eq!(
        reparse(&users[1]),
        json!({"uid": 2, "username": "bob", "state": "offline", "grouprole": "normal"})
    );
}

#[test]
fn login_ack_leaves_out_empty_lists() {
    let v = reply::login_ok(5, "new", Vec::new(), &[], &[]);
    assert_eq!(
        v,
        json!({"msgId": 2, "errno": 0, "uid": 5, "username": "new", "sysmsg": "login success"})
    );
}

#[test]
fn refresh_ack() {
    let v = reply::refresh_ok(1, "alice", &sample_friends(), &sample_groups());
    assert_eq!(
        keys(&v),
        ["errno", "friends", "groups", "msgId", "uid", "username"]
    );
    assert_eq!(v["msgId"], msg_id::ACOUNT_FRESH_ACK);
    assert_eq!(reparse(&v["friends"][0])["username"], "bob");
    let v = reply::refresh_ok(1, "alice", &[], &[]);
    assert_eq!(
        v,
        json!({"msgId": 8, "errno": 0, "uid": 1, "username": "alice"})
    );
}

#[test]
fn simple_acks() {
    assert_eq!(
        reply::register_ok(4, "dave"),
        json!({"msgId": 6, "errno": 0, "uid": 4, "username": "dave", "sysmsg": "dave registered"})
    );
    assert_eq!(reply::logout_ok(), json!({"msgId": 4, "errno": 0}));
    assert_eq!(
        reply::del_friend_ok(2),
        json!({"msgId": 15, "errno": 0, "fid": 2})
    );
    assert_eq!(
        reply::add_friend_ok(2),
        json!({"msgId": 16, "errno": 0, "fid": 2})
    );
    assert_eq!(
        reply::create_group_ok(7, "g"),
        json!({"msgId": 17, "errno": 0, "gid": 7, "groupname": "g"})
    );
    assert_eq!(
        reply::join_group_ok(7),
        json!({"msgId": 18, "errno": 0, "gid": 7})
    );
    assert_eq!(
        reply::quit_group_ok(7),
        json!({"msgId": 20, "errno": 0, "gid": 7})
    );
    assert_eq!(
        reply::dismiss_group_ok(7),
        json!({"msgId": 22, "errno": 0, "gid": 7})
    );
    assert_eq!(reply::pong(), json!({"msgId": 26, "errno": 0}));
}

#[test]
fn group_members_are_objects() {
    let members = &sample_groups()[0].members;
    let v = reply::group_members_ok(7, members);
    assert_eq!(v["msgId"], msg_id::GROUP_MEMBERS_ACK);
    assert_eq!((v["errno"].as_i64(), v["gid"].as_i64()), (Some(0), Some(7)));
    assert_eq!(
        v["members"],
        json!([
            {"uid": 1, "username": "alice", "state": "online", "grouprole": "creator"},
            {"uid": 2, "username": "bob", "state": "offline", "grouprole": "normal"},
        ])
    );
    assert_eq!(reply::group_members_ok(7, &[])["members"], json!([]));
}

#[test]
fn failures_use_the_ack_when_there_is_one() {
    assert_eq!(
        reply::failure(Some(msg_id::LOGIN_MSG), errno::FAILED, "wrong password"),
        json!({"msgId": 2, "errno": 1, "errmsg": "wrong password"})
    );
    assert_eq!(
        reply::failure(
            Some(msg_id::DISMISS_GROUP_MSG),
            errno::FORBIDDEN,
            "not the creator"
        ),
        json!({"msgId": 22, "errno": 6, "errmsg": "not the creator"})
    );
    assert_eq!(
        reply::failure(
            Some(msg_id::GROUP_CHAT_MSG),
            errno::FORBIDDEN,
            "not a member"
        ),
        json!({"msgId": 27, "errno": 6, "errmsg": "not a member", "req": 13})
    );
    assert_eq!(
        reply::failure(None, errno::BAD_REQUEST, "missing field `msgId`"),
        json!({"msgId": 27, "errno": 4, "errmsg": "missing field `msgId`"})
    );
}

#[test]
fn every_request_has_an_ack_except_chat() {
    for req in 1..=27 {
        let ack = reply::ack_id(req);
        match req {
            1 | 3 | 5 | 7 | 10 | 11 | 12 | 14 | 19 | 21 | 23 | 25 => {
                assert!(ack.is_some(), "{req}")
            }
            _ => assert_eq!(ack, None, "{req}"),
        }
    }
    assert_eq!(
        reply::ack_id(msg_id::ADD_GROUP_MSG),
        Some(msg_id::ADD_GROUP_ACK)
    );
}

fn conv(s: &str) -> Conv {
    Conv::parse(s).unwrap()
}

#[test]
fn send_ack_and_send_failed() {
    let v = reply::send_ack("c1", conv("d2-7"), 17, 1_733_030_000_123);
    assert_eq!(
        v,
        json!({"msgId": 28, "errno": 0, "cid": "c1", "conv": "d2-7", "seq": 17,
               "ts": 1_733_030_000_123_i64})
    );
    let v = reply::send_ack("\"q\" 😀", conv("g5"), 1, 0);
    assert_eq!((&v["cid"], &v["conv"]), (&json!("\"q\" 😀"), &json!("g5")));
    let v = reply::send_failed("c1", errno::FORBIDDEN, "not a member of group 5");
    assert_eq!(
        v,
        json!({"msgId": 28, "errno": 6, "errmsg": "not a member of group 5", "cid": "c1"})
    );
    assert_eq!(msg_id::SEND_ACK, 28);
}

/// Stored messages as the service holds them: encoded, one ending in the
/// codec's newline, one with text that needs escaping.
fn stored() -> Vec<Value> {
    vec![
        json!({"msgId": 9, "from": 2, "to": 7, "msg": "hi", "conv": "d2-7", "seq": 1, "ts": 5}),
        json!({"msgId": 9, "from": 7, "to": 2, "msg": "a \"quote\",\n] 😀",
               "conv": "d2-7", "seq": 2, "ts": 6}),
        json!({"msgId": 9, "from": 2, "to": 7, "msg": "", "cid": "c9",
               "conv": "d2-7", "seq": 3, "ts": 7}),
    ]
}

#[test]
fn sync_ack_splices_the_stored_bytes() {
    let objects = stored();
    let msgs: Vec<Vec<u8>> = objects
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let mut bytes = serde_json::to_vec(m).unwrap();
            if i != 1 {
                bytes.push(b'\n'); // as encoded for delivery
            }
            bytes
        })
        .collect();
    let out = reply::sync_ok(conv("d2-7"), &msgs, true);
    assert_eq!(out.last(), Some(&b'\n'), "one line, like codec::encode");
    assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        v,
        json!({"msgId": 30, "errno": 0, "conv": "d2-7", "msgs": objects, "more": true})
    );
    // Byte for byte what encoding the whole reply would give.
    let whole = json!({"msgId": 30, "errno": 0, "conv": "d2-7", "msgs": objects, "more": true});
    assert_eq!(out, crate::protocol::encode(&whole));
    // The messages' bytes appear verbatim: spliced, not re-encoded.
    let text = std::str::from_utf8(&out).unwrap();
    for m in &msgs {
        let m = std::str::from_utf8(m).unwrap().trim_end();
        assert!(text.contains(m), "{m}");
    }
}

#[test]
fn sync_ack_edges() {
    let out = reply::sync_ok(conv("g5"), &[], false);
    // The keys come sorted, as in every other reply.
    assert_eq!(
        out,
        b"{\"conv\":\"g5\",\"errno\":0,\"more\":false,\"msgId\":30,\"msgs\":[]}\n"
    );
    let one = vec![b"{\"seq\":1}\r\n".to_vec()];
    let v: Value = serde_json::from_slice(&reply::sync_ok(conv("g5"), &one, false)).unwrap();
    assert_eq!(v["msgs"], json!([{"seq": 1}]));
    // An element that is only whitespace would break the array: skipped.
    let gaps = vec![
        b"\n".to_vec(),
        b"{\"seq\":1}".to_vec(),
        Vec::new(),
        b"{\"seq\":2}\n".to_vec(),
        b"  ".to_vec(),
    ];
    let v: Value = serde_json::from_slice(&reply::sync_ok(conv("g5"), &gaps, true)).unwrap();
    assert_eq!(v["msgs"], json!([{"seq": 1}, {"seq": 2}]));
    assert_eq!(v["more"], true);
}

fn state(c: &str, last_seq: i64, read_seq: i64) -> ConvState {
    ConvState {
        conv: conv(c),
        last_seq,
        read_seq,
        delivered_seq: last_seq,
        joined_seq: 0,
    }
}

#[test]
fn convs_ack_names_the_peer_or_the_group() {
    let convs = [
        state("d2-7", 17, 12),
        state("g5", 40, 40),
        state("d7-7", 1, 0),
    ];
    let v = reply::convs_ok(7, &convs);
    assert_eq!(
        v,
        json!({"msgId": 32, "errno": 0, "convs": [
            {"conv": "d2-7", "kind": "user", "peer": 2, "last_seq": 17, "read_seq": 12, "unread": 5},
            {"conv": "g5", "kind": "group", "gid": 5, "last_seq": 40, "read_seq": 40, "unread": 0},
            {"conv": "d7-7", "kind": "user", "peer": 7, "last_seq": 1, "read_seq": 0, "unread": 1},
        ]})
    );
    // A member who joined late counts from the join.
    let late = ConvState {
        joined_seq: 30,
        ..state("g5", 40, 0)
    };
    assert_eq!(reply::unread(&late), 10);
    // From the other side, the peer is the other participant.
    assert_eq!(reply::convs_ok(2, &convs[..1])["convs"][0]["peer"], 7);
    // Someone else's one-to-one conversation is not listed; groups are.
    let v = reply::convs_ok(3, &convs);
    assert_eq!(v["convs"].as_array().unwrap().len(), 1);
    assert_eq!(v["convs"][0]["conv"], "g5");
    assert_eq!(
        reply::convs_ok(1, &[]),
        json!({"msgId": 32, "errno": 0, "convs": []})
    );
}

#[test]
fn read_ack() {
    assert_eq!(
        reply::read_ok(conv("g5"), 40),
        json!({"msgId": 34, "errno": 0, "conv": "g5", "seq": 40})
    );
}

#[test]
fn failures_of_the_log_requests_use_their_acks() {
    for (req, ack) in [(29, 30), (31, 32), (33, 34)] {
        let v = reply::failure(Some(req), errno::FORBIDDEN, "not yours");
        assert_eq!(v, json!({"msgId": ack, "errno": 6, "errmsg": "not yours"}));
    }
}

#[test]
fn failure_for_answers_a_cid_with_send_ack() {
    assert_eq!(
        reply::failure_for(Some(9), Some("c1"), errno::NOT_FOUND, "no user 99"),
        json!({"msgId": 28, "errno": 7, "errmsg": "no user 99", "cid": "c1"})
    );
    assert_eq!(
        reply::failure_for(Some(13), None, errno::FORBIDDEN, "no"),
        reply::failure(Some(13), errno::FORBIDDEN, "no")
    );
    assert_eq!(reply::failure_for(Some(13), None, 6, "no")["msgId"], 27);
    assert_eq!(reply::failure_for(Some(29), None, 7, "?")["msgId"], 30);
}
