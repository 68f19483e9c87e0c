//! The domain model: users, groups and their members, as the service
//! thinks of them.
//!
//! These structs carry no behaviour and no database, JSON or socket types,
//! so every layer can build or read them: [`storage`](crate::storage)
//! loads them from its tables, the service fills in who is online, and
//! [`protocol::reply`](crate::protocol::reply) writes their wire forms.
//! The model depends on nothing in this crate; storage and protocol both
//! depend on it, and not on each other.
//!
//! | item | what it is | on the wire | in the database |
//! |---|---|---|---|
//! | [`UserInfo`] | an account as others see it | `uid`, `username`, `state` | `user` |
//! | [`GroupInfo`] | a group, with its members when asked | `gid`, `groupname`, `groupdesc`, `groupusers` | `allgroup` |
//! | [`MemberInfo`] | one member of a group | a user plus `grouprole` | `groupuser` |
//! | [`Role`] | creator or normal member | `grouprole` | `groupuser.grouprole` |
//! | [`state_str`] | the online flag as text | `state` | `user.state` |
//! | [`Conv`] | a conversation of the message log | `conv` (`"d2-7"`, `"g5"`) | `conv` columns ([`Conv::key`]) |

use std::fmt;

mod conv;

pub use conv::{Conv, ConvState, MAX_ID};

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

#[cfg(test)]
mod tests {
    use super::{state_str, Role};

    #[test]
    fn roles_and_states() {
        assert_eq!(Role::parse("creator"), Some(Role::Creator));
        assert_eq!(Role::parse(Role::Normal.as_str()), Some(Role::Normal));
        assert_eq!(Role::parse("admin"), None);
        assert_eq!(Role::Creator.to_string(), "creator");
        assert_eq!(state_str(true), "online");
        assert_eq!(state_str(false), "offline");
    }
}
