//! Tests of [`reply`](super): the exact shapes of every reply.

use serde_json::{json, Value};

use crate::model::{GroupInfo, MemberInfo, Role, UserInfo};
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
