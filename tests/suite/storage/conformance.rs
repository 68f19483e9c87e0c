//! The store-independent tests: what every `Store` must do, whatever the
//! database. Each takes a fresh, empty store.

use chat::model::{GroupInfo, MemberInfo, Role, UserInfo};
use chat::storage::{JoinOutcome, Store};

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo";

/// A new account named `name`.
pub fn user(s: &dyn Store, name: &str) -> i64 {
    s.create_user(name, HASH).unwrap().expect("a new name")
}

fn names(members: &[MemberInfo]) -> Vec<(&str, Role)> {
    members.iter().map(|m| (m.name.as_str(), m.role)).collect()
}

pub fn users_have_unique_names(s: &dyn Store) {
    let alice = user(s, "alice");
    assert!(alice > 0);
    assert_eq!(s.create_user("alice", "other").unwrap(), None);
    // Exact comparison: case, and a name that is a prefix, are different.
    let upper = user(s, "Alice");
    let longer = user(s, "alice2");
    let emoji = user(s, "éloïse 😀 李");
    let ids = [alice, upper, longer, emoji];
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    let rec = s.user_by_name("alice").unwrap().unwrap();
    assert_eq!(
        (rec.id, rec.name.as_str(), rec.password_hash.as_str()),
        (alice, "alice", HASH)
    );
    assert!(!rec.online);
    assert_eq!(s.user_by_id(emoji).unwrap().unwrap().name, "éloïse 😀 李");
    assert_eq!(s.user_by_name("éloïse 😀 李").unwrap().unwrap().id, emoji);
    assert_eq!(s.user_by_id(9_999_999).unwrap(), None);
    assert_eq!(s.user_by_name("nobody").unwrap(), None);
    assert_eq!(s.user_by_name("ALICE").unwrap(), None);
}

pub fn password_change_and_revoke_move_the_token_generation(s: &dyn Store) {
    let a = user(s, "a");
    let b = user(s, "b");
    let gen = |u: i64| s.user_by_id(u).unwrap().unwrap().token_gen;
    assert_eq!((gen(a), gen(b)), (0, 0), "a new account is at generation 0");
    assert!(s.set_password(a, "$argon2id$new").unwrap());
    let rec = s.user_by_id(a).unwrap().unwrap();
    assert_eq!(
        (rec.password_hash.as_str(), rec.token_gen),
        ("$argon2id$new", 1)
    );
    assert!(s.revoke_tokens(a).unwrap());
    assert!(s.revoke_tokens(a).unwrap());
    assert_eq!(gen(a), 3);
    assert_eq!(s.user_by_name("a").unwrap().unwrap().token_gen, 3);
    assert_eq!(gen(b), 0, "another account is untouched");
    assert_eq!(s.user_by_id(b).unwrap().unwrap().password_hash, HASH);
    assert!(!s.set_password(9_999_999, "x").unwrap(), "no such user");
    assert!(!s.revoke_tokens(9_999_999).unwrap(), "no such user");
}

pub fn online_state_and_reset(s: &dyn Store) {
    let a = user(s, "a");
    let b = user(s, "b");
    let c = user(s, "c");
    assert!(s.set_online(a, true).unwrap(), "offline -> online");
    assert!(
        !s.set_online(a, true).unwrap(),
        "a second login loses the race"
    );
    assert!(s.user_by_id(a).unwrap().unwrap().online);
    assert!(s.set_online(a, false).unwrap());
    assert!(!s.set_online(a, false).unwrap());
    assert!(!s.set_online(12345, true).unwrap(), "no such user");

    for u in [a, b, c] {
        assert!(s.set_online(u, true).unwrap());
    }
    assert_eq!(s.set_offline_many(&[a, b, 777]).unwrap(), 2);
    assert!(!s.user_by_id(a).unwrap().unwrap().online);
    assert!(s.user_by_id(c).unwrap().unwrap().online);
    assert_eq!(s.set_offline_many(&[]).unwrap(), 0);

    assert!(s.set_online(b, true).unwrap());
    assert_eq!(s.reset_all_online().unwrap(), 2, "b and c were online");
    assert_eq!(s.reset_all_online().unwrap(), 0);
    for u in [a, b, c] {
        assert!(!s.user_by_id(u).unwrap().unwrap().online);
    }
    // Many ids: more than one chunk of the IN list.
    let many: Vec<i64> = (0..1200).map(|i| user(s, &format!("m{i}"))).collect();
    for &u in many.iter().step_by(3) {
        s.set_online(u, true).unwrap();
    }
    assert_eq!(s.set_offline_many(&many).unwrap(), 400);
}

pub fn friendship_is_mutual_and_unique(s: &dyn Store) {
    let a = user(s, "a");
    let b = user(s, "b");
    let c = user(s, "c");
    assert!(s.add_friend(a, b).unwrap());
    assert!(!s.add_friend(a, b).unwrap(), "already friends");
    assert!(
        !s.add_friend(b, a).unwrap(),
        "already friends, other way round"
    );
    assert!(s.add_friend(c, a).unwrap());
    s.set_online(c, true).unwrap();

    let fa = s.friends(a).unwrap();
    assert_eq!(
        fa,
        vec![
            UserInfo {
                id: b,
                name: "b".into(),
                online: false
            },
            UserInfo {
                id: c,
                name: "c".into(),
                online: true
            },
        ]
    );
    assert_eq!(
        s.friends(b)
            .unwrap()
            .iter()
            .map(|u| u.id)
            .collect::<Vec<_>>(),
        [a]
    );
    assert_eq!(
        s.friends(c)
            .unwrap()
            .iter()
            .map(|u| u.id)
            .collect::<Vec<_>>(),
        [a]
    );

    assert!(s.delete_friend(b, a).unwrap());
    assert!(!s.delete_friend(a, b).unwrap(), "gone in both directions");
    assert!(s.friends(b).unwrap().is_empty());
    assert_eq!(s.friends(a).unwrap().len(), 1);
    assert!(s.add_friend(a, b).unwrap(), "can be friends again");
}

pub fn groups_with_hostile_names(s: &dyn Store) {
    let a = user(s, "o'brien \"the\" 😀");
    let hostile = "'; DROP TABLE user; --";
    let quoted = r#"it's "quoted" \ back"#;
    let g1 = s
        .create_group(a, hostile, "desc with ' and \" and ;")
        .unwrap()
        .unwrap();
    let g2 = s.create_group(a, quoted, "").unwrap().unwrap();
    assert_ne!(g1, g2);
    assert_eq!(
        s.create_group(a, hostile, "again").unwrap(),
        None,
        "name taken"
    );

    let (g, creator) = s.group(g1).unwrap().unwrap();
    assert_eq!(
        g,
        GroupInfo {
            id: g1,
            name: hostile.into(),
            desc: "desc with ' and \" and ;".into(),
            members: Vec::new(),
        }
    );
    assert_eq!(creator, Some(a));
    assert_eq!(s.group(g2).unwrap().unwrap().0.name, quoted);
    assert_eq!(s.group(g2 + 100).unwrap(), None);
    // The user table is still there, and so is its row.
    assert_eq!(s.user_by_name("o'brien \"the\" 😀").unwrap().unwrap().id, a);
    assert_eq!(
        names(&s.group_members(g1).unwrap()),
        [("o'brien \"the\" 😀", Role::Creator)]
    );
}

pub fn membership_is_unique(s: &dyn Store) {
    let a = user(s, "a");
    let b = user(s, "b");
    let c = user(s, "c");
    let g = s.create_group(b, "g", "d").unwrap().unwrap();
    assert_eq!(s.join_group(g, a).unwrap(), JoinOutcome::Joined);
    assert_eq!(s.join_group(g, a).unwrap(), JoinOutcome::AlreadyMember);
    assert_eq!(
        s.join_group(g, b).unwrap(),
        JoinOutcome::AlreadyMember,
        "the creator"
    );
    assert_eq!(s.join_group(g + 1, a).unwrap(), JoinOutcome::NoSuchGroup);
    assert_eq!(s.join_group(g, c).unwrap(), JoinOutcome::Joined);
    s.set_online(c, true).unwrap();

    let members = s.group_members(g).unwrap();
    assert_eq!(
        members,
        vec![
            MemberInfo {
                id: a,
                name: "a".into(),
                online: false,
                role: Role::Normal
            },
            MemberInfo {
                id: b,
                name: "b".into(),
                online: false,
                role: Role::Creator
            },
            MemberInfo {
                id: c,
                name: "c".into(),
                online: true,
                role: Role::Normal
            },
        ]
    );
    assert_eq!(s.group_member_ids(g).unwrap(), [a, b, c]);

    let h = s.create_group(a, "h", "").unwrap().unwrap();
    let groups = s.user_groups(a).unwrap();
    assert_eq!(groups.iter().map(|g| g.id).collect::<Vec<_>>(), [g, h]);
    assert_eq!(
        (groups[0].name.as_str(), groups[0].desc.as_str()),
        ("g", "d")
    );
    assert_eq!(groups[0].members, members);
    assert_eq!(names(&groups[1].members), [("a", Role::Creator)]);
    assert_eq!(s.user_groups(c).unwrap().len(), 1);

    assert!(s.quit_group(g, a).unwrap());
    assert!(!s.quit_group(g, a).unwrap());
    assert_eq!(s.group_member_ids(g).unwrap(), [b, c]);
    assert_eq!(
        s.user_groups(a)
            .unwrap()
            .iter()
            .map(|g| g.id)
            .collect::<Vec<_>>(),
        [h]
    );
    assert!(s.user_groups(user(s, "loner")).unwrap().is_empty());
}

pub fn dismiss_removes_group_and_members(s: &dyn Store) {
    let a = user(s, "a");
    let b = user(s, "b");
    let g = s.create_group(a, "doomed", "").unwrap().unwrap();
    let keep = s.create_group(b, "kept", "").unwrap().unwrap();
    s.join_group(g, b).unwrap();
    s.join_group(keep, a).unwrap();

    assert!(s.dismiss_group(g).unwrap());
    assert!(!s.dismiss_group(g).unwrap());
    assert_eq!(s.group(g).unwrap(), None);
    assert!(s.group_members(g).unwrap().is_empty());
    assert!(s.group_member_ids(g).unwrap().is_empty());
    assert_eq!(s.join_group(g, b).unwrap(), JoinOutcome::NoSuchGroup);
    assert_eq!(
        s.user_groups(b)
            .unwrap()
            .iter()
            .map(|g| g.id)
            .collect::<Vec<_>>(),
        [keep]
    );
    assert_eq!(s.group_member_ids(keep).unwrap(), [a, b]);
    // The name is free again, and the new group gets a new id.
    let again = s.create_group(b, "doomed", "").unwrap().unwrap();
    assert!(again > keep, "ids are not reused: {again}");
}

pub fn offline_order_and_partial_delete(s: &dyn Store) {
    let a = user(s, "a");
    let b = user(s, "b");
    for i in 0..5 {
        s.push_offline(a, &format!("a{i}")).unwrap();
        s.push_offline(b, &format!("b{i}")).unwrap();
    }
    let batch: Vec<(i64, String)> = (5..8).map(|i| (a, format!("a{i}"))).collect();
    s.push_offline_many(&batch).unwrap();
    s.push_offline_many(&[]).unwrap();

    let msgs = s.offline_messages(a).unwrap();
    let texts: Vec<&str> = msgs.iter().map(|(_, m)| m.as_str()).collect();
    assert_eq!(texts, ["a0", "a1", "a2", "a3", "a4", "a5", "a6", "a7"]);
    assert!(msgs.windows(2).all(|w| w[0].0 < w[1].0), "ordered by id");

    // Deliver the first three; a late message arrives meanwhile.
    let delivered: Vec<i64> = msgs[..3].iter().map(|(id, _)| *id).collect();
    s.push_offline(a, "a8").unwrap();
    assert_eq!(s.delete_offline(a, &delivered).unwrap(), 3);
    assert_eq!(s.delete_offline(a, &delivered).unwrap(), 0);
    let rest: Vec<String> = s
        .offline_messages(a)
        .unwrap()
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    assert_eq!(rest, ["a3", "a4", "a5", "a6", "a7", "a8"]);

    // Ids of another user's messages delete nothing.
    let b_ids: Vec<i64> = s
        .offline_messages(b)
        .unwrap()
        .iter()
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(s.delete_offline(a, &b_ids).unwrap(), 0);
    assert_eq!(s.offline_messages(b).unwrap().len(), 5);
    assert_eq!(s.delete_offline(b, &b_ids).unwrap(), 5);
    assert!(s.offline_messages(b).unwrap().is_empty());
    assert!(s.offline_messages(user(s, "c")).unwrap().is_empty());
}

pub fn offline_big_utf8_messages(s: &dyn Store) {
    let a = user(s, "a");
    // 60 KiB of four-byte emoji, three-byte CJK and JSON-escaped quotes.
    let unit = "😀中\"\\n'";
    let text: String = unit.repeat(60 * 1024 / unit.len());
    assert!(text.len() >= 60 * 1024 - unit.len());
    let message = serde_json::json!({"msgId": 9, "from": a, "to": a, "msg": text}).to_string();
    s.push_offline(a, &message).unwrap();
    s.push_offline(a, "").unwrap();
    let got = s.offline_messages(a).unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].1, message);
    assert_eq!(got[1].1, "");
}

pub fn offline_fan_out_in_batches(s: &dyn Store) {
    // A 60 KiB group message for 120 offline members: about 7 MiB, more than
    // one multi-row insert can carry.
    let members: Vec<i64> = (0..120).map(|i| user(s, &format!("u{i}"))).collect();
    let text = "群".repeat(20 * 1024);
    let fan_out: Vec<(i64, String)> = members
        .iter()
        .map(|&u| (u, format!("{u}:{text}")))
        .collect();
    s.push_offline_many(&fan_out).unwrap();
    // And many small ones: more rows than one batch holds.
    let small: Vec<(i64, String)> = (0..1100).map(|i| (members[0], format!("s{i}"))).collect();
    s.push_offline_many(&small).unwrap();
    for &u in &members[1..] {
        let got = s.offline_messages(u).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].1, format!("{u}:{text}"));
    }
    let first = s.offline_messages(members[0]).unwrap();
    assert_eq!(first.len(), 1101);
    assert!(first[0].1.starts_with(&format!("{}:", members[0])));
    assert_eq!(first[1100].1, "s1099");
    let ids: Vec<i64> = first.iter().map(|(id, _)| *id).collect();
    assert_eq!(s.delete_offline(members[0], &ids).unwrap(), 1101);
}

pub fn concurrent_registrations_and_joins(s: &dyn Store) {
    let creator = user(s, "creator");
    let g = s.create_group(creator, "busy", "").unwrap().unwrap();
    // Eight threads race to register the same 20 names and join the group.
    let winners: Vec<Vec<i64>> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let mut won = Vec::new();
                    for i in 0..20 {
                        if let Some(id) = s.create_user(&format!("racer{i}"), HASH).unwrap() {
                            won.push(id);
                        }
                        let id = s.user_by_name(&format!("racer{i}")).unwrap().unwrap().id;
                        s.join_group(g, id).unwrap();
                    }
                    won
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let mut all: Vec<i64> = winners.into_iter().flatten().collect();
    all.sort_unstable();
    assert_eq!(all.len(), 20, "each name registered exactly once");
    all.dedup();
    assert_eq!(all.len(), 20);
    assert_eq!(s.group_member_ids(g).unwrap().len(), 21, "each member once");
}

/// `Store::count`, the quotas' counts: friends, groups joined and
/// created, group size, and one-to-one messages not yet handed (after
/// `max(delivered_seq, joined_seq)`, group conversations not counted).
pub fn quota_counts(s: &dyn Store) {
    use chat::model::Conv;
    use chat::storage::{Count, NewEntry};
    let [a, b, c] = ["a", "b", "c"].map(|n| user(s, n));
    for what in [
        Count::Friends(a),
        Count::GroupsJoined(a),
        Count::GroupsCreated(a),
        Count::GroupSize(77),
        Count::PendingDirect(a),
    ] {
        assert_eq!(s.count(what).unwrap(), 0, "{what:?}");
    }
    s.add_friend(a, b).unwrap();
    s.add_friend(a, c).unwrap();
    assert_eq!(s.count(Count::Friends(a)).unwrap(), 2);
    assert_eq!(s.count(Count::Friends(b)).unwrap(), 1, "both directions");
    let g1 = s.create_group(a, "g1", "").unwrap().unwrap();
    let g2 = s.create_group(b, "g2", "").unwrap().unwrap();
    s.join_group(g2, a).unwrap();
    s.join_group(g2, c).unwrap();
    assert_eq!(s.count(Count::GroupsJoined(a)).unwrap(), 2);
    assert_eq!(s.count(Count::GroupsCreated(a)).unwrap(), 1);
    assert_eq!(s.count(Count::GroupsCreated(c)).unwrap(), 0);
    assert_eq!(s.count(Count::GroupSize(g2)).unwrap(), 3);
    assert_eq!(s.count(Count::GroupSize(g1)).unwrap(), 1);

    let entry = |conv, sender, text: &str| NewEntry {
        conv,
        sender,
        cid: None,
        body: format!("{{\"msg\":\"{text}\"}}"),
    };
    let ab = Conv::direct(a, b).unwrap();
    let cb = Conv::direct(c, b).unwrap();
    let group = Conv::group(g2).unwrap();
    let posts = [
        entry(ab, a, "1"),
        entry(ab, a, "2"),
        entry(cb, c, "3"),
        entry(group, a, "in the group"),
    ];
    s.append(&posts).unwrap();
    assert_eq!(
        s.count(Count::PendingDirect(b)).unwrap(),
        3,
        "groups not counted"
    );
    s.set_delivered(b, &[(ab, 1)]).unwrap();
    assert_eq!(s.count(Count::PendingDirect(b)).unwrap(), 2);
    s.set_delivered(b, &[(ab, 2), (cb, 1)]).unwrap();
    assert_eq!(s.count(Count::PendingDirect(b)).unwrap(), 0);
    s.dismiss_group(g1).unwrap();
    assert_eq!(s.count(Count::GroupsCreated(a)).unwrap(), 0);
}
