//! Plain data about users and groups, shared by the storage layer (which
//! loads it) and the reply builders (which put it on the wire).
//!
//! These structs carry no behaviour and no database or JSON types, so any
//! layer can build or read them. Their wire forms are written by
//! [`reply`](super::reply).

use std::fmt;

/// A user as others see them: in a friend list or a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    /// The account id (`uid` on the wire).
    pub id: i64,
    /// The account name (`username` on the wire).
    pub name: String,
    /// Whether the user is logged in (`state` on the wire, see [`state_str`]).
    pub online: bool,
}

/// A group, with its members when the context needs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    /// The group id (`gid` on the wire).
    pub id: i64,
    /// The unique group name (`groupname`).
    pub name: String,
    /// The free-text description (`groupdesc`), possibly empty.
    pub desc: String,
    /// The members, ordered by user id; empty where the caller asked for the
    /// group alone.
    pub members: Vec<MemberInfo>,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// The member's account id (`uid`).
    pub id: i64,
    /// The member's account name (`username`).
    pub name: String,
    /// Whether the member is logged in (`state`).
    pub online: bool,
    /// The member's role in this group (`grouprole`).
    pub role: Role,
}

/// A member's role in a group, stored and sent as `"creator"` or `"normal"`
/// (the original's `grouprole` enum).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Created the group; the only member who may dismiss it.
    Creator,
    /// Joined the group.
    Normal,
}

impl Role {
    /// The role's name on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Creator => "creator",
            Role::Normal => "normal",
        }
    }

    /// Parses [`Role::as_str`]'s output; `None` for anything else.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "creator" => Some(Role::Creator),
            "normal" => Some(Role::Normal),
            _ => None,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `state` string of the wire and of the `user` table: `"online"` or
/// `"offline"`.
pub fn state_str(online: bool) -> &'static str {
    if online {
        "online"
    } else {
        "offline"
    }
}
