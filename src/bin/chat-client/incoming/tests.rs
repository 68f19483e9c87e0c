//! Tests of [`incoming::parse`](super::parse) and
//! [`render`](crate::render::render), fed with replies built by the server's
//! own `protocol::reply` builders so the two sides cannot drift apart.

use serde_json::{json, Value};

use super::{parse, Incoming};
use crate::render::render;
use crate::style::Style;
use chat::model::{Conv, ConvState, GroupInfo, MemberInfo, Role, UserInfo};
use chat::protocol::{errno, reply};

fn lines(v: Value) -> Vec<String> {
    let Value::Object(obj) = v else {
        panic!("not an object: {v}")
    };
    render(&parse(obj), &Style::plain())
}

fn user(id: i64, name: &str, online: bool) -> UserInfo {
    UserInfo {
        id,
        name: name.into(),
        online,
    }
}

#[test]
fn login_ack_shows_offline_messages_then_friends_and_groups() {
    let offline = vec![
        json!({"msgId": 9, "from": 6, "username": "bob", "to": 5, "msg": "are you there?", "time": "2026-05-01 09:30:00"}).to_string(),
        json!({"msgId": 13, "uid": 6, "username": "bob", "gid": 3, "msg": "standup", "time": "2026-05-01 09:31:00"}).to_string(),
    ];
    let group = GroupInfo {
        id: 3,
        name: "team".into(),
        desc: "the team".into(),
        members: vec![MemberInfo {
            id: 5,
            name: "alice".into(),
            online: true,
            role: Role::Creator,
        }],
    };
    let ack = reply::login_ok(5, "alice", offline, &[user(6, "bob", false)], &[group]);
    assert_eq!(
        lines(ack),
        [
            "logged in uid=5 name=alice",
            "offline message from 6 (bob) at 2026-05-01 09:30:00: are you there?",
            "offline group 3 message from 6 (bob) at 2026-05-01 09:31:00: standup",
            "friends: 1",
            "friend 6 bob offline",
            "groups: 1",
            "group 3 name=team desc=the team",
            "group 3 member 5 alice online creator",
        ]
    );
}

#[test]
fn every_ack_has_a_line() {
    let cases = [
        (
            reply::register_ok(5, "alice"),
            "registered uid=5 name=alice",
        ),
        (reply::logout_ok(), "logged out"),
        (reply::add_friend_ok(6), "added friend 6"),
        (reply::del_friend_ok(6), "deleted friend 6"),
        (
            reply::create_group_ok(3, "team"),
            "created group 3 name=team",
        ),
        (reply::join_group_ok(3), "joined group 3"),
        (reply::quit_group_ok(3), "left group 3"),
        (reply::dismiss_group_ok(3), "dismissed group 3"),
        (reply::pong(), "pong"),
        (
            reply::refresh_ok(5, "alice", &[], &[]),
            "refreshed uid=5 name=alice",
        ),
    ];
    for (ack, want) in cases {
        assert_eq!(lines(ack)[0], want);
    }
    let members = [MemberInfo {
        id: 6,
        name: "bob".into(),
        online: false,
        role: Role::Normal,
    }];
    assert_eq!(
        lines(reply::group_members_ok(3, &members)),
        ["group 3 members: 1", "group 3 member 6 bob offline normal"]
    );
}

#[test]
fn chat_messages_are_one_clean_line() {
    let chat = json!({"msgId": 9, "from": 6, "username": "bob", "to": 5, "msg": "hi: there\n\x1b[2J", "time": "2026-05-01 09:32:00"});
    assert_eq!(
        lines(chat),
        ["message from 6 (bob) at 2026-05-01 09:32:00: hi: there\\n\\u{1b}[2J"]
    );
    let group = json!({"msgId": 13, "uid": 6, "gid": 3, "msg": "yo"});
    assert_eq!(lines(group), ["group 3 message from 6: yo"]);
}

#[test]
fn failures_are_plain_words_with_the_servers_reason() {
    let login = reply::failure(Some(1), errno::FAILED, "wrong password");
    assert_eq!(
        lines(login),
        ["error: login: no such account or wrong password (errno 1): wrong password"]
    );
    let chat = reply::failure(Some(9), errno::NOT_FOUND, "user 99 does not exist");
    assert_eq!(
        lines(chat),
        ["error: chat: no such user (errno 7): user 99 does not exist"]
    );
    let garbage = reply::error_msg(errno::INVALID_JSON, "invalid JSON", None);
    assert_eq!(
        lines(garbage),
        ["error: the server could not read what we sent (errno 11): invalid JSON"]
    );
    // The original's sysmsg spelling.
    let original = json!({"msgId": 6, "errno": 1, "errmsg": "", "sysmsg": "name taken"});
    assert_eq!(
        lines(original),
        ["error: register: that user name is taken (errno 1): name taken"]
    );
}

#[test]
fn acks_answer_their_requests_and_the_unknown_is_kept() {
    let Value::Object(ack) = reply::join_group_ok(3) else {
        unreachable!()
    };
    assert_eq!(parse(ack).answers(), Some(12));
    let Value::Object(err) = reply::failure(Some(9), errno::FORBIDDEN, "no") else {
        unreachable!()
    };
    assert_eq!(parse(err).answers(), Some(9));
    let Value::Object(odd) = json!({"msgId": 99, "x": 1}) else {
        unreachable!()
    };
    let odd = parse(odd);
    assert!(matches!(odd, Incoming::Unknown(_)));
    assert_eq!(
        render(&odd, &Style::plain()),
        [r#"unrecognised message: {"msgId":99,"x":1}"#]
    );
}

fn parsed(v: Value) -> Incoming {
    let Value::Object(obj) = v else {
        panic!("not an object: {v}")
    };
    parse(obj)
}

#[test]
fn delivered_messages_carry_their_place_in_the_log() {
    let Incoming::Chat(m) = parsed(
        json!({"msgId": 9, "from": 6, "to": 5, "msg": "hi", "conv": "d5-6", "seq": 17, "ts": 1_733_030_000_123_i64}),
    ) else {
        panic!("a chat")
    };
    assert_eq!(
        m.pos,
        Some(super::LogPos {
            conv: "d5-6".into(),
            seq: 17,
            ts: Some(1_733_030_000_123)
        })
    );
    let Incoming::GroupChat(g) = parsed(json!({"msgId": 13, "uid": 6, "gid": 3, "msg": "yo"}))
    else {
        panic!("a group chat")
    };
    assert_eq!(g.pos, None, "a server without the log");
}

fn d56() -> Conv {
    Conv::direct(5, 6).expect("a conversation")
}

#[test]
fn send_acks_show_the_message_stored_or_refused() {
    let ok = reply::send_ack("c1", d56(), 18, 1);
    assert_eq!(lines(ok.clone()), ["sent message c1 (d5-6 #18)"]);
    let Incoming::SendAck { outcome, .. } = parsed(ok) else {
        panic!("a send ack")
    };
    assert_eq!(outcome.map(|p| p.seq), Ok(18));
    let busy = reply::send_failed("c2", errno::TOO_MANY, "log queue full");
    let mut message = parsed(busy);
    if let Incoming::SendAck { sent, .. } = &mut message {
        *sent = Some(super::Sent {
            request: 9,
            to: 6,
            text: "see you".into(),
        });
    }
    assert_eq!(
        render(&message, &Style::plain()),
        ["error: chat: too many messages waiting to be stored; send it again in a moment (errno 12): log queue full [not sent: message to 6: see you]"]
    );
    assert!(matches!(
        parsed(json!({"msgId": 28, "errno": 0})),
        Incoming::Unknown(_)
    ));
}

#[test]
fn sync_convs_and_read_replies_have_lines() {
    let msgs = [
        json!({"msgId": 9, "from": 6, "username": "bob", "to": 5, "msg": "hello", "conv": "d5-6", "seq": 17}),
        json!({"msgId": 9, "from": 5, "to": 6, "msg": "hi", "conv": "d5-6", "seq": 18}),
    ]
    .map(|m| m.to_string().into_bytes());
    let page: Value =
        serde_json::from_slice(&reply::sync_ok(d56(), &msgs, true)).expect("the server's JSON");
    assert_eq!(parsed(page.clone()).answers(), Some(29));
    assert_eq!(
        lines(page),
        [
            "history d5-6: 2 messages (older: history:d5-6:17)",
            "history d5-6 #17 message from 6 (bob): hello",
            "history d5-6 #18 message from 5: hi",
        ]
    );
    let state = |conv, last_seq, read_seq| ConvState {
        conv,
        last_seq,
        read_seq,
        delivered_seq: last_seq,
        joined_seq: 0,
    };
    let g3 = Conv::group(3).expect("a group");
    let convs = reply::convs_ok(5, &[state(d56(), 19, 17), state(g3, 40, 40)]);
    assert_eq!(
        lines(convs),
        [
            "conversations: 2",
            "conv d5-6 with user 6: last 19, read 17, unread 2",
            "conv g3 of group 3: last 40, read 40, unread 0",
        ]
    );
    assert_eq!(lines(reply::read_ok(g3, 40)), ["read g3 up to #40"]);
    assert_eq!(
        lines(reply::failure(Some(29), errno::FORBIDDEN, "not a member")),
        ["error: history: you are not allowed to do that (errno 6): not a member"]
    );
}

#[test]
fn receipts_and_typing_are_shown() {
    let receipt = parsed(json!({"msgId": 35, "conv": "d5-6", "uid": 6, "seq": 17}));
    assert_eq!(
        receipt,
        Incoming::Receipt {
            conv: "d5-6".into(),
            uid: 6,
            seq: 17
        }
    );
    assert_eq!(
        render(&receipt, &Style::plain()),
        ["6 has read d5-6 up to 17"]
    );
    let typing = parsed(json!({"msgId": 36, "conv": "g3", "uid": 5}));
    assert_eq!(render(&typing, &Style::plain()), ["5 is typing in g3"]);
    // Missing a field: shown as it came.
    assert!(matches!(
        parsed(json!({"msgId": 35, "conv": "g3"})),
        Incoming::Unknown(_)
    ));
}
