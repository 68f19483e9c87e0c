//! Tests of [`request`](super): every request kind, and the errors.

use serde_json::{json, Value};

use super::{parse, ProtocolError, Request, MAX_TOKEN_CHARS};
use crate::protocol::msg_id::{self, errno};

fn p(v: Value) -> Result<Request, ProtocolError> {
    match v {
        Value::Object(m) => parse(&m),
        other => panic!("not an object: {other}"),
    }
}

/// Asserts a BAD_REQUEST whose message names `field`.
fn bad(v: Value, field: &str) {
    let id = v["msgId"].as_i64();
    match p(v) {
        Err(e) => {
            assert_eq!(e.errno, errno::BAD_REQUEST, "{e}");
            assert!(
                e.errmsg.contains(&format!("`{field}`")),
                "{e} should name {field}"
            );
            assert_eq!(e.msg_id, id);
        }
        Ok(r) => panic!("expected an error naming {field}, got {r:?}"),
    }
}

#[test]
fn login_by_uid_as_the_original_client_sends_it() {
    let r = p(json!({"msgId": 1, "uid": 13, "password": "123456"})).unwrap();
    assert_eq!(
        r,
        Request::Login {
            uid: Some(13),
            username: None,
            password: "123456".into()
        }
    );
    assert_eq!(r.msg_id(), msg_id::LOGIN_MSG);
    assert_eq!(
        r.claimed_uid(),
        None,
        "a login's uid is not a claim of identity"
    );
}

#[test]
fn login_by_username() {
    let r = p(json!({"msgId": 1, "username": "zhang san", "password": "pw"})).unwrap();
    assert_eq!(
        r,
        Request::Login {
            uid: None,
            username: Some("zhang san".into()),
            password: "pw".into()
        }
    );
}

#[test]
fn login_errors() {
    bad(json!({"msgId": 1, "password": "pw"}), "uid");
    bad(
        json!({"msgId": 1, "uid": 1, "username": "a", "password": "pw"}),
        "username",
    );
    bad(json!({"msgId": 1, "uid": "13", "password": "pw"}), "uid");
    bad(json!({"msgId": 1, "uid": 1.5, "password": "pw"}), "uid");
    bad(json!({"msgId": 1, "uid": 0, "password": "pw"}), "uid");
    bad(json!({"msgId": 1, "uid": -3, "password": "pw"}), "uid");
    bad(json!({"msgId": 1, "uid": 1}), "password");
    bad(
        json!({"msgId": 1, "uid": 1, "password": 123456}),
        "password",
    );
    bad(json!({"msgId": 1, "uid": 1, "password": ""}), "password");
    bad(
        json!({"msgId": 1, "uid": 1, "password": "x".repeat(129)}),
        "password",
    );
}

#[test]
fn register_and_name_rules() {
    let r = p(json!({"msgId": 5, "username": "李雷😀", "password": "x".repeat(128)})).unwrap();
    assert_eq!(
        r,
        Request::Register {
            username: "李雷😀".into(),
            password: "x".repeat(128)
        }
    );
    // 50 characters (not bytes) is the limit.
    assert!(p(json!({"msgId": 5, "username": "界".repeat(50), "password": "p"})).is_ok());
    bad(
        json!({"msgId": 5, "username": "界".repeat(51), "password": "p"}),
        "username",
    );
    bad(
        json!({"msgId": 5, "username": "", "password": "p"}),
        "username",
    );
    bad(
        json!({"msgId": 5, "username": "a\nb", "password": "p"}),
        "username",
    );
    bad(
        json!({"msgId": 5, "username": "a\u{0}", "password": "p"}),
        "username",
    );
    bad(
        json!({"msgId": 5, "username": " a", "password": "p"}),
        "username",
    );
    bad(
        json!({"msgId": 5, "username": "a ", "password": "p"}),
        "username",
    );
    bad(
        json!({"msgId": 5, "username": ["a"], "password": "p"}),
        "username",
    );
    bad(json!({"msgId": 5, "password": "p"}), "username");
    bad(json!({"msgId": 5, "username": "a"}), "password");
}

#[test]
fn logout_and_refresh_with_and_without_uid() {
    assert_eq!(
        p(json!({"msgId": 3})).unwrap(),
        Request::Logout {
            uid: None,
            revoke: false
        }
    );
    let r = p(json!({"msgId": 3, "uid": 4})).unwrap();
    assert_eq!(
        r,
        Request::Logout {
            uid: Some(4),
            revoke: false
        }
    );
    assert_eq!(r.claimed_uid(), Some(4));
    assert_eq!(
        p(json!({"msgId": 7, "uid": 4})).unwrap(),
        Request::Refresh { uid: Some(4) }
    );
    assert_eq!(
        p(json!({"msgId": 7, "uid": null})).unwrap(),
        Request::Refresh { uid: None }
    );
    bad(json!({"msgId": 7, "uid": "4"}), "uid");
}

#[test]
fn one_chat() {
    let m = json!({"msgId": 9, "from": 1, "username": "a", "to": 2, "msg": "hi 😀",
                   "time": "2024-01-02 03:04:05"});
    let r = p(m).unwrap();
    assert_eq!(
        r,
        Request::OneChat {
            from: Some(1),
            to: 2,
            cid: None
        }
    );
    assert_eq!(r.claimed_uid(), Some(1));
    assert_eq!(
        p(json!({"msgId": 9, "to": 2, "msg": ""})).unwrap(),
        Request::OneChat {
            from: None,
            to: 2,
            cid: None
        }
    );
    bad(json!({"msgId": 9, "to": 2}), "msg");
    bad(json!({"msgId": 9, "to": 2, "msg": 5}), "msg");
    bad(json!({"msgId": 9, "to": 2, "msg": {"text": "x"}}), "msg");
    bad(json!({"msgId": 9, "msg": "x"}), "to");
    bad(json!({"msgId": 9, "to": "2", "msg": "x"}), "to");
    bad(
        json!({"msgId": 9, "from": "me", "to": 2, "msg": "x"}),
        "from",
    );
    bad(json!({"msgId": 9, "to": 2, "msg": "x", "time": 0}), "time");
    bad(
        json!({"msgId": 9, "to": 2, "msg": "x", "username": false}),
        "username",
    );
}

#[test]
fn friends() {
    let r = p(json!({"msgId": 10, "uid": 1, "fid": 2})).unwrap();
    assert_eq!(
        r,
        Request::AddFriend {
            uid: Some(1),
            fid: 2
        }
    );
    assert_eq!(r.claimed_uid(), Some(1));
    assert_eq!(
        p(json!({"msgId": 14, "fid": 2})).unwrap(),
        Request::DelFriend { uid: None, fid: 2 }
    );
    bad(json!({"msgId": 10, "uid": 1}), "fid");
    bad(json!({"msgId": 14, "fid": [2]}), "fid");
}

#[test]
fn create_group() {
    let r = p(json!({"msgId": 11, "uid": 1, "groupname": "it's \"ours\"", "groupdesc": "d"}));
    assert_eq!(
        r.unwrap(),
        Request::CreateGroup {
            uid: Some(1),
            name: "it's \"ours\"".into(),
            desc: "d".into()
        }
    );
    let r = p(json!({"msgId": 11, "groupname": "g"})).unwrap();
    assert_eq!(
        r,
        Request::CreateGroup {
            uid: None,
            name: "g".into(),
            desc: String::new()
        }
    );
    assert!(p(json!({"msgId": 11, "groupname": "g", "groupdesc": "é".repeat(200)})).is_ok());
    bad(
        json!({"msgId": 11, "groupname": "g", "groupdesc": "é".repeat(201)}),
        "groupdesc",
    );
    bad(
        json!({"msgId": 11, "groupname": "g", "groupdesc": 1}),
        "groupdesc",
    );
    bad(
        json!({"msgId": 11, "groupname": "g".repeat(51)}),
        "groupname",
    );
    bad(json!({"msgId": 11, "groupname": ""}), "groupname");
    bad(json!({"msgId": 11, "groupname": "a\tb"}), "groupname");
    bad(json!({"msgId": 11, "groupdesc": "d"}), "groupname");
}

#[test]
fn group_requests() {
    let cases = [
        (
            12,
            Request::JoinGroup {
                uid: Some(3),
                gid: 9,
            },
        ),
        (
            19,
            Request::QuitGroup {
                uid: Some(3),
                gid: 9,
            },
        ),
        (
            21,
            Request::DismissGroup {
                uid: Some(3),
                gid: 9,
            },
        ),
        (
            23,
            Request::GroupMembers {
                uid: Some(3),
                gid: 9,
            },
        ),
    ];
    for (id, expected) in cases {
        let r = p(json!({"msgId": id, "uid": 3, "gid": 9})).unwrap();
        assert_eq!(r, expected);
        assert_eq!(r.msg_id(), id);
        assert_eq!(r.claimed_uid(), Some(3));
        assert!(p(json!({"msgId": id, "gid": 9}))
            .unwrap()
            .claimed_uid()
            .is_none());
        bad(json!({"msgId": id, "uid": 3}), "gid");
        bad(json!({"msgId": id, "gid": true}), "gid");
    }
    let r = p(json!({"msgId": 13, "uid": 3, "gid": 9, "msg": "hello all"})).unwrap();
    assert_eq!(
        r,
        Request::GroupChat {
            uid: Some(3),
            gid: 9,
            cid: None
        }
    );
    bad(json!({"msgId": 13, "gid": 9}), "msg");
    bad(json!({"msgId": 13, "msg": "x"}), "gid");
}

#[test]
fn ping() {
    let r = p(json!({"msgId": 25})).unwrap();
    assert_eq!(r, Request::Ping);
    assert_eq!(r.msg_id(), msg_id::PING_MSG);
}

#[test]
fn msg_id_errors() {
    let e = p(json!({"uid": 1})).unwrap_err();
    assert_eq!((e.errno, e.msg_id), (errno::BAD_REQUEST, None));
    assert!(e.errmsg.contains("`msgId`"));
    for v in [
        json!({"msgId": "1"}),
        json!({"msgId": 1.0}),
        json!({"msgId": null}),
    ] {
        let e = p(v).unwrap_err();
        assert_eq!(e.errno, errno::BAD_REQUEST);
        assert!(e.errmsg.contains("`msgId`"), "{e}");
    }
    // Unknown ids, including server → client ones, carry the id for `req`.
    for id in [0, 2, 4, 26, 27, 99, -1] {
        let e = p(json!({"msgId": id})).unwrap_err();
        assert_eq!((e.errno, e.msg_id), (errno::UNKNOWN_MSG, Some(id)), "{id}");
    }
}

#[test]
fn errors_become_the_requests_own_ack_or_an_error_message() {
    let e = p(json!({"msgId": 1, "uid": 1})).unwrap_err();
    let r = e.reply();
    assert_eq!(r["msgId"], msg_id::LOGIN_MSG_ACK);
    assert_eq!(r["errno"], errno::BAD_REQUEST);
    assert_eq!(r["errmsg"], e.errmsg.as_str());

    let r = p(json!({"msgId": 9, "to": 2})).unwrap_err().reply();
    assert_eq!(r["msgId"], msg_id::ERROR_MSG);
    assert_eq!(r["req"], msg_id::ONE_CHAT_MSG);

    let r = p(json!({"msgId": 99})).unwrap_err().reply();
    assert_eq!(
        (r["msgId"].as_i64(), r["req"].as_i64()),
        (Some(msg_id::ERROR_MSG), Some(99))
    );
    assert_eq!(r["errno"], errno::UNKNOWN_MSG);

    let r = p(json!({})).unwrap_err().reply();
    assert_eq!(r["msgId"], msg_id::ERROR_MSG);
    assert!(r.get("req").is_none());
}

/// New names may not hide text: Unicode format characters (category Cf:
/// bidi overrides and isolates, zero-width characters, the BOM, ...) and
/// line or paragraph separators are refused in register's `username` and
/// create group's `groupname`, with the usual bad-field errno.
#[test]
fn new_names_reject_invisible_and_bidi_characters() {
    for c in [
        '\u{202A}',
        '\u{202B}',
        '\u{202C}',
        '\u{202D}',
        '\u{202E}', // embeddings, overrides
        '\u{2066}',
        '\u{2067}',
        '\u{2068}',
        '\u{2069}', // isolates
        '\u{200E}',
        '\u{200F}',
        '\u{061C}', // marks
        '\u{200B}',
        '\u{200C}',
        '\u{200D}',
        '\u{2060}',
        '\u{FEFF}', // zero width
        '\u{00AD}',
        '\u{2062}',
        '\u{FFF9}',
        '\u{E0041}',
        '\u{1D173}', // other Cf
        '\u{2028}',
        '\u{2029}', // line and paragraph separators
    ] {
        let name = format!("al{c}ice");
        bad(
            json!({"msgId": 5, "username": name, "password": "p"}),
            "username",
        );
        bad(json!({"msgId": 11, "groupname": name}), "groupname");
        let Err(e) = p(json!({"msgId": 5, "username": name, "password": "p"})) else {
            unreachable!("checked above");
        };
        assert!(
            e.errmsg.contains(&format!("U+{:04X}", c as u32)),
            "the errmsg names the character: {e}"
        );
    }
    // Visible text around them is still fine, in any script.
    for ok in ["alice", "李雷", "שלום", "مرحبا", "a.b-c_d e", "😀👍🏽"] {
        assert!(
            p(json!({"msgId": 5, "username": ok, "password": "p"})).is_ok(),
            "{ok}"
        );
        assert!(p(json!({"msgId": 11, "groupname": ok})).is_ok(), "{ok}");
    }
    // Login looks a name up and creates nothing: an old account whose name
    // has such a character can still log in by name.
    assert!(p(json!({"msgId": 1, "username": "al\u{202E}ice", "password": "p"})).is_ok());
}

#[test]
fn login_with_a_token_alone() {
    let r = p(json!({"msgId": 1, "token": "abc"})).unwrap();
    assert_eq!(
        r,
        Request::TokenLogin {
            token: "abc".into()
        }
    );
    assert_eq!(r.msg_id(), msg_id::LOGIN_MSG);
    bad(
        json!({"msgId": 1, "token": "abc", "password": "pw"}),
        "token",
    );
    bad(json!({"msgId": 1, "token": "abc", "uid": 1}), "token");
    bad(json!({"msgId": 1, "token": 5}), "token");
    bad(json!({"msgId": 1, "token": ""}), "token");
    bad(
        json!({"msgId": 1, "token": "a".repeat(MAX_TOKEN_CHARS + 1)}),
        "token",
    );
}

#[test]
fn logout_revoke_and_change_password() {
    let r = p(json!({"msgId": 3, "revoke": true})).unwrap();
    assert_eq!(
        r,
        Request::Logout {
            uid: None,
            revoke: true
        }
    );
    bad(json!({"msgId": 3, "revoke": "yes"}), "revoke");
    let r = p(json!({"msgId": 37, "old": "a", "new": "b"})).unwrap();
    assert_eq!(
        r,
        Request::ChangePassword {
            old: "a".into(),
            new: "b".into()
        }
    );
    assert_eq!(r.msg_id(), msg_id::CHANGE_PASSWORD_MSG);
    assert_eq!(r.claimed_uid(), None);
    bad(json!({"msgId": 37, "old": "a"}), "new");
    bad(json!({"msgId": 37, "new": "b", "old": ""}), "old");
}
