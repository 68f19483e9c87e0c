//! Names for numbers: `chat:alice:hi` and `groupChat:team:hi` instead of
//! `chat:6:hi` and `groupChat:3:hi`.
//!
//! The server only takes ids. The login ack (2) and the refresh ack (8)
//! list the account's friends and its groups with their members, each with
//! id and name; the client keeps the last such lists in a [`Directory`]
//! and turns every [`Target::Name`] of a command into the id before the
//! request is built. A name is looked up
//!
//! 1. exactly (case and all, as the server compares names): users among the
//!    friends and the members of the groups, groups among the groups;
//! 2. failing that, ignoring ASCII case, which must then match one only.
//!
//! Between acks the directory also learns from the replies that name
//! someone: a group this session created (17), the members a
//! `groupMembers` listed (24); a group left or dismissed (20, 22) is
//! forgotten. A name found nowhere, or matching several ids only without
//! regard to case, is refused here with a message that says so; nothing
//! is sent, and under `--strict` it counts as a refused request. Someone
//! who is neither a friend nor in a group of yours has no name here (nor
//! does a group you are not in): use the number, or `refresh` after the
//! change that made them known. A name made only of digits is taken as
//! an id.
//!
//! Thread rule: a plain value, kept under the
//! [`ClientState`](super::state::ClientState)'s lock.

use std::collections::BTreeMap;

use super::command::{Command, Target};
use super::incoming::{AccountView, Member};

/// The most users (and, apart, groups) a directory keeps: the acks are
/// bounded by the server's quotas already; this bounds the copy too.
pub const MAX_NAMES: usize = 100_000;

/// Ids by name, from the last login or refresh ack.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Directory {
    users: BTreeMap<i64, String>,
    groups: BTreeMap<i64, String>,
}

impl Directory {
    /// The friends, the groups and their members of `view`.
    pub fn from_view(view: &AccountView) -> Directory {
        let mut dir = Directory::default();
        let add = |map: &mut BTreeMap<i64, String>, id: i64, name: &str| {
            if map.len() < MAX_NAMES {
                map.insert(id, name.to_owned());
            }
        };
        for f in &view.friends {
            add(&mut dir.users, f.uid, &f.name);
        }
        for g in &view.groups {
            add(&mut dir.groups, g.gid, &g.name);
            for m in &g.members {
                add(&mut dir.users, m.uid, &m.name);
            }
        }
        dir.users.remove(&view.user.uid);
        dir
    }

    /// A group this session created (its ack names it).
    pub fn learn_group(&mut self, gid: i64, name: &str) {
        if self.groups.len() < MAX_NAMES {
            self.groups.insert(gid, name.to_owned());
        }
    }

    /// The members a `groupMembers` reply listed (oneself excluded).
    pub fn learn_members(&mut self, me: Option<i64>, members: &[Member]) {
        for m in members.iter().filter(|m| Some(m.uid) != me) {
            if self.users.len() < MAX_NAMES {
                self.users.insert(m.uid, m.name.clone());
            }
        }
    }

    /// A group this session left or dismissed.
    pub fn forget_group(&mut self, gid: i64) {
        self.groups.remove(&gid);
    }

    /// The id of user `name`.
    fn user(&self, name: &str) -> Result<i64, String> {
        lookup(&self.users, name).map_err(|e| {
            e.describe(
                "user",
                name,
                "not among your friends or your groups' members",
            )
        })
    }

    /// The id of group `name`.
    fn group(&self, name: &str) -> Result<i64, String> {
        lookup(&self.groups, name).map_err(|e| e.describe("group", name, "not among your groups"))
    }
}

/// Why a name did not resolve.
enum Miss {
    Unknown,
    /// The ids and names it could mean.
    Ambiguous(Vec<(i64, String)>),
}

impl Miss {
    fn describe(self, kind: &str, name: &str, where_: &str) -> String {
        match self {
            Miss::Unknown => format!(
                "unknown {kind} \"{name}\": {where_} (refresh to update the list, or use the number)"
            ),
            Miss::Ambiguous(found) => {
                let found: Vec<String> = found
                    .iter()
                    .map(|(id, name)| format!("{name} ({id})"))
                    .collect();
                format!(
                    "ambiguous {kind} \"{name}\": it could be {}; type the name exactly or use the number",
                    found.join(", ")
                )
            }
        }
    }
}

/// The exact match, else the only match ignoring case.
fn lookup(map: &BTreeMap<i64, String>, name: &str) -> Result<i64, Miss> {
    let matching = |same: &dyn Fn(&str) -> bool| -> Vec<(i64, String)> {
        map.iter()
            .filter(|(_, n)| same(n))
            .map(|(id, n)| (*id, n.clone()))
            .collect()
    };
    let mut found = matching(&|n| n == name);
    if found.is_empty() {
        found = matching(&|n| n.eq_ignore_ascii_case(name));
    }
    match found.as_slice() {
        [] => Err(Miss::Unknown),
        [(id, _)] => Ok(*id),
        _ => Err(Miss::Ambiguous(found)),
    }
}

/// `command` with its named user or group replaced by the id.
///
/// # Errors
/// An unknown or ambiguous name, in words for the user.
pub fn resolve(command: &Command, dir: &Directory) -> Result<Command, String> {
    let user = |t: &Target| -> Result<Target, String> {
        match t {
            Target::Name(name) => dir.user(name).map(Target::Id),
            Target::Id(_) => Ok(t.clone()),
        }
    };
    let group = |t: &Target| -> Result<Target, String> {
        match t {
            Target::Name(name) => dir.group(name).map(Target::Id),
            Target::Id(_) => Ok(t.clone()),
        }
    };
    Ok(match command {
        Command::Chat { to, text } => Command::Chat {
            to: user(to)?,
            text: text.clone(),
        },
        Command::AddFriend { fid } => Command::AddFriend { fid: user(fid)? },
        Command::DelFriend { fid } => Command::DelFriend { fid: user(fid)? },
        Command::GroupChat { gid, text } => Command::GroupChat {
            gid: group(gid)?,
            text: text.clone(),
        },
        Command::JoinGroup { gid } => Command::JoinGroup { gid: group(gid)? },
        Command::QuitGroup { gid } => Command::QuitGroup { gid: group(gid)? },
        Command::DismissGroup { gid } => Command::DismissGroup { gid: group(gid)? },
        Command::GroupMembers { gid } => Command::GroupMembers { gid: group(gid)? },
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::incoming::{Friend, Group};
    use crate::request::User;

    fn member(uid: i64, name: &str) -> Member {
        Member {
            uid,
            name: name.into(),
            online: false,
            role: "normal".into(),
        }
    }

    fn directory() -> Directory {
        let view = AccountView {
            user: User {
                uid: 1,
                name: "me".into(),
            },
            offline: Vec::new(),
            friends: vec![
                Friend {
                    uid: 6,
                    name: "alice".into(),
                    online: true,
                },
                Friend {
                    uid: 7,
                    name: "Bob".into(),
                    online: false,
                },
            ],
            groups: vec![Group {
                gid: 3,
                name: "team".into(),
                desc: String::new(),
                members: vec![member(1, "me"), member(8, "BOB"), member(9, "carol")],
            }],
            token: None,
        };
        Directory::from_view(&view)
    }

    fn chat(to: Target) -> Command {
        Command::Chat {
            to,
            text: "hi".into(),
        }
    }

    #[test]
    fn names_of_friends_members_and_groups_resolve() {
        let dir = directory();
        let name = |n: &str| Target::Name(n.into());
        assert_eq!(resolve(&chat(name("alice")), &dir), Ok(chat(Target::Id(6))));
        assert_eq!(resolve(&chat(name("ALICE")), &dir), Ok(chat(Target::Id(6))));
        assert_eq!(resolve(&chat(name("carol")), &dir), Ok(chat(Target::Id(9))));
        assert_eq!(
            resolve(&chat(name("Bob")), &dir),
            Ok(chat(Target::Id(7))),
            "exact"
        );
        assert_eq!(
            resolve(&chat(Target::Id(42)), &dir),
            Ok(chat(Target::Id(42)))
        );
        let group = Command::GroupChat {
            gid: name("Team"),
            text: "yo".into(),
        };
        assert_eq!(
            resolve(&group, &dir),
            Ok(Command::GroupChat {
                gid: Target::Id(3),
                text: "yo".into()
            })
        );
        assert_eq!(
            resolve(&Command::GroupMembers { gid: name("team") }, &dir),
            Ok(Command::GroupMembers { gid: Target::Id(3) })
        );
        assert_eq!(resolve(&Command::Ping, &dir), Ok(Command::Ping));
    }

    #[test]
    fn replies_between_acks_teach_and_unteach_names() {
        let mut dir = directory();
        let chat_to = |n: &str| chat(Target::Name(n.into()));
        assert!(resolve(&chat_to("dave"), &dir).is_err());
        dir.learn_members(Some(1), &[member(1, "me"), member(12, "dave")]);
        assert_eq!(resolve(&chat_to("dave"), &dir), Ok(chat(Target::Id(12))));
        assert!(resolve(&chat_to("me"), &dir).is_err(), "not oneself");
        let members = |n: &str| Command::GroupMembers {
            gid: Target::Name(n.into()),
        };
        dir.learn_group(4, "new team");
        assert_eq!(
            resolve(&members("new team"), &dir),
            Ok(Command::GroupMembers { gid: Target::Id(4) })
        );
        dir.forget_group(4);
        assert!(resolve(&members("new team"), &dir).is_err());
    }

    #[test]
    fn unknown_and_ambiguous_names_are_refused() {
        let dir = directory();
        let e = resolve(&chat(Target::Name("dave".into())), &dir).unwrap_err();
        assert!(e.starts_with("unknown user \"dave\""), "{e}");
        let e = resolve(&chat(Target::Name("bob".into())), &dir).unwrap_err();
        assert!(e.contains("ambiguous user \"bob\""), "{e}");
        assert!(e.contains("Bob (7)") && e.contains("BOB (8)"), "{e}");
        let e = resolve(&chat(Target::Name("me".into())), &dir).unwrap_err();
        assert!(e.starts_with("unknown user"), "oneself is not listed: {e}");
        let e = resolve(
            &Command::JoinGroup {
                gid: Target::Name("alice".into()),
            },
            &dir,
        )
        .unwrap_err();
        assert!(
            e.starts_with("unknown group \"alice\""),
            "users are no groups: {e}"
        );
        assert_eq!(
            resolve(&chat(Target::Name("x".into())), &Directory::default())
                .unwrap_err()
                .split(':')
                .next(),
            Some("unknown user \"x\"")
        );
    }
}
