//! Tests of the message log's requests: `cid`, sync, conversations, read,
//! the 28-or-27 choice for a malformed chat, and [`strip_log_fields`].

use serde_json::{json, Map, Value};

use crate::model::Conv;
use crate::protocol::msg_id::{self, errno};
use crate::protocol::request::{
    parse, strip_log_fields, ProtocolError, Request, SyncFrom, DEFAULT_SYNC_LIMIT, MAX_SYNC_LIMIT,
};

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn p(v: Value) -> Result<Request, ProtocolError> {
    parse(&obj(v))
}

/// The error of `v`, which must fail with `errno` and an errmsg that
/// contains `needle`.
fn err(v: Value, errno: i64, needle: &str) -> ProtocolError {
    let text = v.to_string();
    match p(v) {
        Err(e) => {
            assert_eq!(e.errno, errno, "{text}: {e}");
            assert!(
                e.errmsg.contains(needle),
                "{text}: {e} should mention {needle}"
            );
            e
        }
        Ok(r) => panic!("{text}: expected errno {errno}, got {r:?}"),
    }
}

/// A BAD_REQUEST naming `field` in backquotes.
fn bad(v: Value, field: &str) -> ProtocolError {
    err(v, errno::BAD_REQUEST, &format!("`{field}`"))
}

fn d2_7() -> Conv {
    Conv::direct(2, 7).unwrap()
}

#[test]
fn msg_ids_and_acks() {
    use crate::protocol::reply::ack_id;
    assert_eq!(
        [
            msg_id::SEND_ACK,
            msg_id::SYNC_MSG,
            msg_id::SYNC_ACK,
            msg_id::CONVS_MSG,
            msg_id::CONVS_ACK,
            msg_id::READ_MSG,
            msg_id::READ_ACK
        ],
        [28, 29, 30, 31, 32, 33, 34]
    );
    assert_eq!(ack_id(29), Some(30));
    assert_eq!(ack_id(31), Some(32));
    assert_eq!(ack_id(33), Some(34));
    // Chats still have no ack of their own: 28 is chosen by the cid.
    assert_eq!(ack_id(9), None);
    assert_eq!(ack_id(13), None);
    for id in [28, 30, 32, 34] {
        assert_eq!(ack_id(id), None, "{id} is not a request");
        err(json!({"msgId": id}), errno::UNKNOWN_MSG, &id.to_string());
    }
}

#[test]
fn chats_carry_an_optional_cid() {
    let r = p(json!({"msgId": 9, "from": 1, "to": 2, "msg": "hi", "cid": "c1"})).unwrap();
    assert_eq!(
        r,
        Request::OneChat {
            from: Some(1),
            to: 2,
            cid: Some("c1".into())
        }
    );
    assert_eq!(r.cid(), Some("c1"));
    let r = p(json!({"msgId": 13, "gid": 5, "msg": "hi", "cid": "é😀 x"})).unwrap();
    assert_eq!(
        r,
        Request::GroupChat {
            uid: None,
            gid: 5,
            cid: Some("é😀 x".into())
        }
    );
    assert_eq!(r.cid(), Some("é😀 x"));
    // Absent or null: no cid, and nothing changes for the original client.
    assert_eq!(
        p(json!({"msgId": 9, "to": 2, "msg": "x"})).unwrap().cid(),
        None
    );
    assert_eq!(
        p(json!({"msgId": 13, "gid": 5, "msg": "x", "cid": null}))
            .unwrap()
            .cid(),
        None
    );
    // Other requests have no cid, even when they send one.
    assert_eq!(p(json!({"msgId": 25, "cid": "c"})).unwrap().cid(), None);
}

#[test]
fn cid_length_is_counted_in_characters() {
    let longest = "界".repeat(64);
    let r = p(json!({"msgId": 9, "to": 2, "msg": "x", "cid": longest})).unwrap();
    assert_eq!(r.cid(), Some(longest.as_str()));
    bad(json!({"msgId": 9, "to": 2, "msg": "x", "cid": ""}), "cid");
    let e = bad(
        json!({"msgId": 9, "to": 2, "msg": "x", "cid": "a".repeat(65)}),
        "cid",
    );
    assert!(e.errmsg.contains("65"), "{e}");
}

#[test]
fn cid_must_be_a_printable_string() {
    for cid in [json!(1), json!(true), json!(["c1"]), json!({"c": 1})] {
        let e = bad(json!({"msgId": 9, "to": 2, "msg": "x", "cid": cid}), "cid");
        assert!(e.errmsg.contains("string"), "{e}");
    }
    for cid in ["a\nb", "\u{0}", "tab\there", "\u{7F}", "\u{85}"] {
        let e = bad(
            json!({"msgId": 13, "gid": 1, "msg": "x", "cid": cid}),
            "cid",
        );
        assert!(e.errmsg.contains("control"), "{cid:?}: {e}");
    }
    for c in ['\u{202E}', '\u{200B}', '\u{2066}', '\u{FEFF}', '\u{2028}'] {
        let cid = format!("c{c}1");
        let e = bad(json!({"msgId": 9, "to": 2, "msg": "x", "cid": cid}), "cid");
        assert!(e.errmsg.contains(&format!("U+{:04X}", c as u32)), "{e}");
    }
}

/// A malformed chat whose cid is valid is answered as 28 with that cid; one
/// whose cid is invalid (or absent) as 27, as before.
#[test]
fn chat_errors_with_a_valid_cid_come_as_send_ack() {
    for v in [
        json!({"msgId": 9, "to": 2, "cid": "c1"}),
        json!({"msgId": 9, "to": "2", "msg": "x", "cid": "c1"}),
        json!({"msgId": 9, "from": "me", "to": 2, "msg": "x", "cid": "c1"}),
        json!({"msgId": 9, "to": 2, "msg": "x", "time": 5, "cid": "c1"}),
        json!({"msgId": 13, "msg": "x", "cid": "c1"}),
        json!({"msgId": 13, "gid": 0, "msg": "x", "cid": "c1"}),
        json!({"msgId": 13, "gid": 3, "msg": ["x"], "cid": "c1"}),
    ] {
        let text = v.to_string();
        let e = p(v).unwrap_err();
        assert_eq!(e.cid.as_deref(), Some("c1"), "{text}");
        let r = e.reply();
        assert_eq!(
            r,
            json!({"msgId": 28, "errno": errno::BAD_REQUEST, "errmsg": e.errmsg, "cid": "c1"}),
            "{text}"
        );
    }
    for v in [
        json!({"msgId": 9, "to": 2}),
        json!({"msgId": 9, "to": 2, "cid": ""}),
        json!({"msgId": 9, "to": 2, "cid": 7}),
        json!({"msgId": 13, "gid": 1, "msg": "x", "cid": "a\u{202E}b"}),
        json!({"msgId": 9, "to": 2, "msg": "x", "cid": "x".repeat(65)}),
    ] {
        let text = v.to_string();
        let e = p(v).unwrap_err();
        assert_eq!(e.cid, None, "{text}");
        let r = e.reply();
        assert_eq!(r["msgId"], msg_id::ERROR_MSG, "{text}");
        assert!(r["req"] == 9 || r["req"] == 13, "{text}");
        assert!(r.get("cid").is_none(), "{text}");
    }
    // A cid on anything but a chat does not turn its errors into 28s.
    let e = bad(json!({"msgId": 10, "cid": "c1"}), "fid");
    assert_eq!(e.cid, None);
    assert_eq!(e.reply()["msgId"], msg_id::ADD_FRIEND_ACK);
}

#[test]
fn sync_after_and_before() {
    let r = p(json!({"msgId": 29, "conv": "d2-7", "after": 0})).unwrap();
    assert_eq!(
        r,
        Request::Sync {
            conv: d2_7(),
            page: SyncFrom::After(0),
            limit: DEFAULT_SYNC_LIMIT
        }
    );
    assert_eq!(r.msg_id(), msg_id::SYNC_MSG);
    assert_eq!(r.claimed_uid(), None);
    assert_eq!(r.cid(), None);
    let r = p(json!({"msgId": 29, "conv": "g5", "before": 41, "limit": 20})).unwrap();
    assert_eq!(
        r,
        Request::Sync {
            conv: Conv::Group(5),
            page: SyncFrom::Before(41),
            limit: 20
        }
    );
    // A null counts as absent, as for every other field.
    let r = p(json!({"msgId": 29, "conv": "g5", "after": 3, "before": null})).unwrap();
    assert!(matches!(
        r,
        Request::Sync {
            page: SyncFrom::After(3),
            ..
        }
    ));
    let r = p(json!({"msgId": 29, "conv": "g5", "after": i64::MAX})).unwrap();
    assert!(matches!(
        r,
        Request::Sync {
            page: SyncFrom::After(i64::MAX),
            ..
        }
    ));
}

#[test]
fn sync_needs_exactly_one_non_negative_position() {
    let e = bad(json!({"msgId": 29, "conv": "g5"}), "after");
    assert!(e.errmsg.contains("`before`"), "{e}");
    let e = bad(
        json!({"msgId": 29, "conv": "g5", "after": 1, "before": 9}),
        "after",
    );
    assert!(e.errmsg.contains("both"), "{e}");
    for key in ["after", "before"] {
        for n in [
            json!(-1),
            json!("3"),
            json!(1.5),
            json!(2.0),
            json!([1]),
            json!(u64::MAX),
        ] {
            let e = bad(json!({"msgId": 29, "conv": "g5", key: n}), key);
            assert_eq!(e.msg_id, Some(29));
            assert_eq!(e.reply()["msgId"], msg_id::SYNC_ACK);
        }
    }
}

#[test]
fn sync_limit_defaults_and_clamps() {
    let limit = |l: Value| match p(json!({"msgId": 29, "conv": "g5", "after": 0, "limit": l})) {
        Ok(Request::Sync { limit, .. }) => Ok(limit),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e),
    };
    assert_eq!(limit(Value::Null).unwrap(), DEFAULT_SYNC_LIMIT);
    assert_eq!((DEFAULT_SYNC_LIMIT, MAX_SYNC_LIMIT), (50, 500));
    assert_eq!(limit(json!(1)).unwrap(), 1);
    assert_eq!(limit(json!(499)).unwrap(), 499);
    assert_eq!(limit(json!(500)).unwrap(), 500);
    assert_eq!(limit(json!(501)).unwrap(), MAX_SYNC_LIMIT);
    assert_eq!(limit(json!(i64::MAX)).unwrap(), MAX_SYNC_LIMIT);
    assert_eq!(limit(json!(u64::MAX)).unwrap(), MAX_SYNC_LIMIT);
    for l in [
        json!(0),
        json!(-1),
        json!(i64::MIN),
        json!("10"),
        json!(10.0),
        json!(true),
    ] {
        let e = limit(l.clone()).unwrap_err();
        assert_eq!(e.errno, errno::BAD_REQUEST, "{l}");
        assert!(e.errmsg.contains("`limit`"), "{l}: {e}");
    }
}

#[test]
fn conv_must_be_a_string_naming_a_conversation() {
    for id in [29, 33] {
        let base = |conv: Value| json!({"msgId": id, "conv": conv, "after": 0, "seq": 0});
        bad(json!({"msgId": id, "after": 0, "seq": 0}), "conv");
        bad(base(json!(5)), "conv");
        bad(base(json!(["g5"])), "conv");
        for name in ["", "g0", "d7-2", "G5", "g5 ", "x", "g2147483648"] {
            let e = err(base(json!(name)), errno::NOT_FOUND, "no conversation named");
            assert_eq!(e.msg_id, Some(id));
            let r = e.reply();
            assert_eq!(r["msgId"], id + 1, "{name:?}: its own ack");
            assert_eq!(r["errno"], errno::NOT_FOUND);
        }
    }
}

#[test]
fn an_unknown_conv_is_echoed_escaped_and_cut() {
    let e = err(
        json!({"msgId": 33, "conv": "g\"5\n\u{202E}", "seq": 1}),
        errno::NOT_FOUND,
        "no conversation named",
    );
    assert!(
        !e.errmsg.contains('\n') && !e.errmsg.contains('\u{202E}'),
        "{e}"
    );
    assert!(e.errmsg.contains(r#""g\"5\n"#), "{e}");
    let long = "x".repeat(10_000);
    let e = err(
        json!({"msgId": 29, "conv": long, "before": 5}),
        errno::NOT_FOUND,
        "no conversation named",
    );
    assert!(e.errmsg.len() < 80, "{e}");
    assert!(e.errmsg.ends_with('…'), "{e}");
    // Cut between characters, never inside one.
    let e = err(
        json!({"msgId": 29, "conv": "界".repeat(100), "before": 5}),
        errno::NOT_FOUND,
        "界",
    );
    assert_eq!(e.errmsg.matches('界').count(), 32, "{e}");
}

/// A request that is wrong in a field and names no conversation gets 4:
/// the types are checked first.
#[test]
fn bad_fields_win_over_an_unknown_conv() {
    bad(json!({"msgId": 29, "conv": "nope"}), "after");
    bad(
        json!({"msgId": 29, "conv": "nope", "after": 1, "limit": 0}),
        "limit",
    );
    bad(json!({"msgId": 33, "conv": "nope"}), "seq");
    bad(json!({"msgId": 33, "conv": "nope", "seq": -1}), "seq");
}

#[test]
fn convs_takes_no_fields() {
    let r = p(json!({"msgId": 31})).unwrap();
    assert_eq!(r, Request::Convs);
    assert_eq!(r.msg_id(), msg_id::CONVS_MSG);
    assert_eq!(r.claimed_uid(), None);
    assert_eq!(
        p(json!({"msgId": 31, "uid": "ignored"})).unwrap(),
        Request::Convs
    );
}

#[test]
fn read() {
    let r = p(json!({"msgId": 33, "conv": "d2-7", "seq": 12})).unwrap();
    assert_eq!(
        r,
        Request::Read {
            conv: d2_7(),
            seq: 12
        }
    );
    assert_eq!(r.msg_id(), msg_id::READ_MSG);
    assert_eq!(r.claimed_uid(), None);
    assert_eq!(
        p(json!({"msgId": 33, "conv": "g1", "seq": 0})).unwrap(),
        Request::Read {
            conv: Conv::Group(1),
            seq: 0
        }
    );
    bad(json!({"msgId": 33, "conv": "g1"}), "seq");
    for seq in [
        json!(-1),
        json!("1"),
        json!(1.5),
        json!(u64::MAX),
        json!({}),
    ] {
        let e = bad(json!({"msgId": 33, "conv": "g1", "seq": seq}), "seq");
        assert_eq!(e.reply()["msgId"], msg_id::READ_ACK);
    }
}

#[test]
fn strip_removes_only_the_servers_fields() {
    let mut m = obj(json!({
        "msgId": 9, "from": 1, "to": 2, "msg": "hi", "cid": "c1",
        "conv": "d1-99", "seq": 1, "ts": 0, "time": "now"
    }));
    strip_log_fields(&mut m);
    assert_eq!(
        Value::Object(m.clone()),
        json!({"msgId": 9, "from": 1, "to": 2, "msg": "hi", "cid": "c1", "time": "now"})
    );
    strip_log_fields(&mut m);
    assert_eq!(m.len(), 6, "stripping twice changes nothing");
    // The object parses the same with or without them.
    let with = obj(json!({"msgId": 13, "gid": 4, "msg": "x", "seq": "bogus"}));
    let mut without = with.clone();
    strip_log_fields(&mut without);
    assert_eq!(parse(&with), parse(&without));
}
