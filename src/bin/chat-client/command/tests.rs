//! Tests of [`command::parse`](super::parse) and
//! [`request::build`](crate::request::build).

use serde_json::json;

use super::{parse, Account, Command, CommandError, Target};
use crate::request::{build, User};

fn ok(line: &str) -> Command {
    match parse(line) {
        Ok(Some(c)) => c,
        other => panic!("{line:?} should parse, got {other:?}"),
    }
}

fn err(line: &str) -> String {
    match parse(line) {
        Err(e) => e.to_string(),
        other => panic!("{line:?} should fail, got {other:?}"),
    }
}

#[test]
fn messages_keep_their_colons() {
    assert_eq!(
        ok("chat:6:see you at 10:30"),
        Command::Chat {
            to: Target::Id(6),
            text: "see you at 10:30".into()
        }
    );
    assert_eq!(
        ok("groupChat:3:a:b:c"),
        Command::GroupChat {
            gid: Target::Id(3),
            text: "a:b:c".into()
        }
    );
    assert_eq!(
        ok("createGroup:team:the: team"),
        Command::CreateGroup {
            name: "team".into(),
            desc: "the: team".into()
        }
    );
}

#[test]
fn login_by_id_or_name_with_or_without_password() {
    assert_eq!(
        ok("login:5:pa:ss"),
        Command::Login {
            account: Account::Id(5),
            password: Some("pa:ss".into())
        }
    );
    assert_eq!(
        ok("login:alice"),
        Command::Login {
            account: Account::Name("alice".into()),
            password: None
        }
    );
    assert_eq!(
        ok("register:bob:"),
        Command::Register {
            name: "bob".into(),
            password: None
        }
    );
}

#[test]
fn names_ignore_case_and_aliases_work() {
    assert_eq!(ok("ADDFRIEND:7"), Command::AddFriend { fid: Target::Id(7) });
    assert_eq!(ok("addgroup:2"), Command::JoinGroup { gid: Target::Id(2) });
    assert_eq!(ok("loginout"), Command::Logout);
    assert_eq!(ok("  quit  "), Command::Quit);
    assert_eq!(
        ok("dismissGroup:4"),
        Command::DismissGroup { gid: Target::Id(4) }
    );
}

#[test]
fn users_and_groups_by_name() {
    assert_eq!(
        ok("chat:alice:hi: there"),
        Command::Chat {
            to: Target::Name("alice".into()),
            text: "hi: there".into()
        }
    );
    assert_eq!(
        ok("groupchat: team :yo"),
        Command::GroupChat {
            gid: Target::Name("team".into()),
            text: "yo".into()
        }
    );
    assert_eq!(
        ok("addFriend:bob"),
        Command::AddFriend {
            fid: Target::Name("bob".into())
        }
    );
    assert_eq!(
        ok("joinGroup:7a"),
        Command::JoinGroup {
            gid: Target::Name("7a".into())
        }
    );
    let me = User {
        uid: 5,
        name: "me".into(),
    };
    assert_eq!(
        build(&ok("chat:alice:hi"), Some(&me), None),
        None,
        "a name is resolved before a request is built"
    );
}

#[test]
fn blank_lines_and_comments_are_nothing() {
    assert_eq!(parse("   "), Ok(None));
    assert_eq!(parse("# a comment"), Ok(None));
}

#[test]
fn errors_say_what_is_wrong_and_show_the_syntax() {
    assert_eq!(
        err("frobnicate"),
        "unknown command \"frobnicate\" (type help for the list)"
    );
    assert_eq!(
        err("chat:0:hi"),
        "fid must be a positive number or a name, not \"0\" (usage: chat:fid:message)"
    );
    assert_eq!(
        err("chat:5"),
        "the message is empty (usage: chat:fid:message)"
    );
    assert_eq!(
        err("addFriend"),
        "addFriend needs a fid (usage: addFriend:fid)"
    );
    assert!(matches!(
        parse("joinGroup:-1"),
        Err(CommandError::Usage { .. })
    ));
    assert!(matches!(parse("login:"), Err(CommandError::Usage { .. })));
}

#[test]
fn requests_carry_the_original_clients_fields() {
    let alice = User {
        uid: 5,
        name: "alice".into(),
    };
    let chat = build(&ok("chat:6:hi"), Some(&alice), None).unwrap();
    assert_eq!(chat["msgId"], 9);
    assert_eq!(chat["from"], 5);
    assert_eq!(chat["username"], "alice");
    assert_eq!(chat["to"], 6);
    assert_eq!(chat["msg"], "hi");
    assert_eq!(chat["time"].as_str().map(str::len), Some(19));

    let group = build(&ok("groupChat:3:yo"), Some(&alice), None).unwrap();
    assert_eq!(
        (
            group["msgId"].clone(),
            group["uid"].clone(),
            group["gid"].clone()
        ),
        (json!(13), json!(5), json!(3))
    );

    assert_eq!(
        build(&ok("login:alice:pw"), None, None),
        Some(json!({"msgId": 1, "username": "alice", "password": "pw"}))
    );
    assert_eq!(
        build(&ok("login:5"), None, None),
        None,
        "no password, no request"
    );
    assert_eq!(
        build(&ok("addFriend:6"), Some(&alice), None),
        Some(json!({"msgId": 10, "uid": 5, "fid": 6}))
    );
    assert_eq!(
        build(&ok("createGroup:g:d"), Some(&alice), None),
        Some(json!({"msgId": 11, "uid": 5, "groupname": "g", "groupdesc": "d"}))
    );
    for (line, id) in [
        ("delFriend:6", 14),
        ("quitGroup:3", 19),
        ("dismissGroup:3", 21),
        ("groupMembers:3", 23),
    ] {
        assert_eq!(
            build(&ok(line), Some(&alice), None).unwrap()["msgId"],
            id,
            "{line}"
        );
    }
    assert_eq!(
        build(&ok("ping"), Some(&alice), None),
        Some(json!({"msgId": 25}))
    );
    assert_eq!(build(&ok("help"), Some(&alice), None), None);
}

#[test]
fn history_and_convs_parse() {
    assert_eq!(
        ok("history:d2-7"),
        Command::History {
            conv: "d2-7".into(),
            before: None
        }
    );
    assert_eq!(
        ok("History: g5 :120"),
        Command::History {
            conv: "g5".into(),
            before: Some(120)
        }
    );
    assert_eq!(ok("convs"), Command::Convs);
    assert!(err("history").contains("usage: history:conv[:before]"));
    assert!(err("history::3").contains("the conversation is empty"));
    assert!(err("history:g5:soon").contains("before must be a positive number"));
}

#[test]
fn chats_carry_their_cid_and_the_log_requests_their_fields() {
    let alice = User {
        uid: 5,
        name: "alice".into(),
    };
    let chat = build(&ok("chat:6:hi"), Some(&alice), Some("c1")).unwrap();
    assert_eq!(chat["cid"], "c1");
    let group = build(&ok("groupChat:3:yo"), Some(&alice), Some("c2")).unwrap();
    assert_eq!(group["cid"], "c2");
    let ping = build(&ok("ping"), Some(&alice), Some("c3")).unwrap();
    assert_eq!(ping.get("cid"), None, "only chats carry a cid");
    let latest = build(&ok("history:g3"), Some(&alice), None).unwrap();
    assert_eq!(
        (
            latest["msgId"].clone(),
            latest["conv"].clone(),
            latest["limit"].clone()
        ),
        (json!(29), json!("g3"), json!(50))
    );
    assert!(
        latest["before"].as_u64() > Some(1 << 62),
        "no seq is that high: the latest page"
    );
    let older = build(&ok("history:g3:40"), Some(&alice), None).unwrap();
    assert_eq!(older["before"], 40);
    assert_eq!(
        build(&ok("convs"), Some(&alice), None),
        Some(json!({"msgId": 31}))
    );
    assert_eq!(
        crate::request::sync_after("d5-6", 17),
        json!({"msgId": 29, "conv": "d5-6", "after": 17, "limit": 500})
    );
}

#[test]
fn cids_are_unique_printable_and_short() {
    let cids = crate::request::CidGen::new();
    let a = cids.next();
    let b = cids.next();
    assert_ne!(a, b);
    for cid in [a, b] {
        assert!((1..=64).contains(&cid.len()), "{cid}");
        assert!(cid.chars().all(|c| c.is_ascii_graphic()), "{cid}");
    }
    assert_ne!(
        crate::request::CidGen::new()
            .next()
            .rsplit_once('-')
            .map(|p| p.0.to_owned()),
        None
    );
}
