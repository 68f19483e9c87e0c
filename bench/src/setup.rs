//! Accounts and groups: naming them, the request scripts that create them,
//! reading their ids from replies, and the state file that lets a later run
//! reuse them.
//!
//! By default every run registers its own accounts under a fresh prefix
//! (`b<pid>t<time>_u0`, `…_u1`, …), so it needs an empty server and nothing
//! else. `--setup-only` stops after setting up and saves the accounts' uids
//! and the groups' gids to a state file; `--reuse FILE` starts from that file,
//! so the measured run does no setup and the same run can be pointed at our
//! server or at the C++ original.

use crate::phases::requests::{Expect, Step};
use crate::proto;
use serde_json::{json, Value};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// An account the run uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    /// Login name.
    pub name: String,
    /// Account id, once registered.
    pub uid: Option<i64>,
}

/// A group the run uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Group {
    /// Group name (unique on the server).
    pub name: String,
    /// Group id, once created.
    pub gid: Option<i64>,
    /// Member user indices; the first one creates the group.
    pub members: Vec<usize>,
}

/// Everything a run sets up before it measures.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Setup {
    /// Prefix of every name.
    pub prefix: String,
    /// Password of every account.
    pub password: String,
    /// The accounts, by user index.
    pub accounts: Vec<Account>,
    /// The groups.
    pub groups: Vec<Group>,
}

/// A prefix no earlier run has used: process id and time.
pub fn fresh_prefix() -> String {
    let millis = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("b{}t{}_", std::process::id(), millis % 100_000_000)
}

impl Setup {
    /// `users` unregistered accounts named after `prefix`.
    pub fn new(prefix: &str, password: &str, users: usize) -> Setup {
        Setup {
            prefix: prefix.to_string(),
            password: password.to_string(),
            accounts: (0..users)
                .map(|i| Account {
                    name: format!("{prefix}u{i}"),
                    uid: None,
                })
                .collect(),
            groups: Vec::new(),
        }
    }

    /// Splits users `0..users` into groups of `size` (a last group of one is
    /// left out: nobody would receive its messages).
    pub fn add_groups(&mut self, users: usize, size: usize) {
        let size = size.max(2);
        for (k, start) in (0..users).step_by(size).enumerate() {
            let members: Vec<usize> = (start..(start + size).min(users)).collect();
            if members.len() >= 2 {
                self.groups.push(Group {
                    name: format!("{}g{k}", self.prefix),
                    gid: None,
                    members,
                });
            }
        }
    }

    /// The uid of every account, or the index of the first without one.
    pub fn uids(&self) -> Result<Vec<i64>, usize> {
        self.accounts
            .iter()
            .enumerate()
            .map(|(i, a)| a.uid.ok_or(i))
            .collect()
    }

    /// The state file's JSON.
    pub fn to_json(&self) -> Value {
        json!({
            "prefix": self.prefix,
            "password": self.password,
            "users": self.accounts.iter().map(|a| json!({"name": a.name, "uid": a.uid})).collect::<Vec<_>>(),
            "groups": self.groups.iter().map(|g| json!({"name": g.name, "gid": g.gid, "members": g.members})).collect::<Vec<_>>(),
        })
    }

    /// Reads what [`Setup::to_json`] wrote.
    ///
    /// # Errors
    /// A description of the first missing or mistyped field.
    pub fn from_json(v: &Value) -> Result<Setup, String> {
        let text = |v: &Value, field: &str| -> Result<String, String> {
            v.get(field)
                .and_then(Value::as_str)
                .map(str::to_string)
                .ok_or_else(|| format!("state file: missing {field}"))
        };
        let list = |field: &str| -> Result<Vec<Value>, String> {
            Ok(v.get(field)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default())
        };
        let accounts = list("users")?
            .iter()
            .map(|u| {
                Ok(Account {
                    name: text(u, "name")?,
                    uid: u.get("uid").and_then(Value::as_i64),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        let groups = list("groups")?
            .iter()
            .map(|g| {
                let members = g.get("members").and_then(Value::as_array);
                Ok(Group {
                    name: text(g, "name")?,
                    gid: g.get("gid").and_then(Value::as_i64),
                    members: members
                        .map(|m| {
                            m.iter()
                                .filter_map(Value::as_u64)
                                .map(|i| i as usize)
                                .collect()
                        })
                        .unwrap_or_default(),
                })
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok(Setup {
            prefix: text(v, "prefix")?,
            password: text(v, "password")?,
            accounts,
            groups,
        })
    }

    /// Writes the state file.
    ///
    /// # Errors
    /// The file could not be written.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        std::fs::write(path, format!("{:#}\n", self.to_json()))
    }

    /// Reads a state file.
    ///
    /// # Errors
    /// The file cannot be read or is not a state file.
    pub fn load(path: &Path) -> Result<Setup, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let v: Value =
            serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        Setup::from_json(&v)
    }
}

/// A step that our server answers with `ack` and the original does not
/// answer at all.
fn acked(label: &'static str, text: String, ack: i64, legacy: Option<Duration>) -> Step {
    Step {
        label,
        text,
        expect: legacy.map_or(Expect::Reply(ack), Expect::Pause),
        keep: legacy.is_none(),
        retry_online: false,
    }
}

/// Registration of `name`; the reply is kept for its uid.
pub(crate) fn register_step(name: &str, password: &str) -> Step {
    Step {
        label: "register",
        text: proto::register(name, password),
        expect: Expect::Reply(proto::REG_MSG_ACK),
        keep: true,
        retry_online: false,
    }
}

/// Login of `uid`; `keep` keeps the ack (for its offline messages).
pub(crate) fn login_step(uid: i64, password: &str, keep: bool) -> Step {
    Step {
        label: "login",
        text: proto::login(uid, password),
        expect: Expect::Reply(proto::LOGIN_MSG_ACK),
        keep,
        retry_online: true,
    }
}

/// A refresh, whose ack proves that the requests before it on the same
/// connection were processed (the original answers nothing else).
fn refresh_step(uid: i64, keep: bool) -> Step {
    Step {
        label: "refresh",
        text: proto::refresh(uid),
        expect: Expect::Reply(proto::ACOUNT_FRESH_ACK),
        keep,
        retry_online: false,
    }
}

/// Creating a group. With `legacy` (the pause to use) the original sends no
/// reply, so a refresh follows and its ack, kept, lists the new group.
pub(crate) fn create_group_steps(uid: i64, name: &str, legacy: Option<Duration>) -> Vec<Step> {
    let create = acked(
        "create group",
        proto::create_group(uid, name),
        proto::CREATE_GROUP_ACK,
        legacy,
    );
    match legacy {
        None => vec![create],
        Some(_) => vec![create, refresh_step(uid, true)],
    }
}

/// Joining group `gid`; with `legacy`, followed by a refresh so that the
/// join is known to be done before any message is sent to the group.
pub(crate) fn join_group_steps(uid: i64, gid: i64, legacy: Option<Duration>) -> Vec<Step> {
    let join = acked(
        "join group",
        proto::join_group(uid, gid),
        proto::ADD_GROUP_ACK,
        legacy,
    );
    match legacy {
        None => vec![join],
        Some(_) => vec![join, refresh_step(uid, false)],
    }
}

/// The gid of group `name` in a create-group ack (`gid`) or in a login or
/// refresh ack (`groups`: JSON-encoded strings or objects with `groupname`).
pub fn gid_in_reply(reply: &Value, name: &str) -> Option<i64> {
    if proto::msg_id(reply) == Some(proto::CREATE_GROUP_ACK) {
        return reply.get("gid").and_then(Value::as_i64);
    }
    reply.get("groups")?.as_array()?.iter().find_map(|g| {
        let parsed;
        let group = match g {
            Value::String(s) => {
                parsed = serde_json::from_str::<Value>(s).ok()?;
                &parsed
            }
            other => other,
        };
        (group.get("groupname")?.as_str()? == name).then(|| group.get("gid")?.as_i64())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_split_users_and_skip_a_lonely_last_member() {
        let mut s = Setup::new("p_", "pw", 7);
        s.add_groups(7, 3);
        let sizes: Vec<usize> = s.groups.iter().map(|g| g.members.len()).collect();
        assert_eq!(sizes, [3, 3]);
        assert_eq!(s.groups[1].name, "p_g1");
        assert_eq!(s.accounts[6].name, "p_u6");
    }

    #[test]
    fn state_round_trips() {
        let mut s = Setup::new("p_", "pw", 3);
        s.accounts[0].uid = Some(10);
        s.add_groups(3, 3);
        s.groups[0].gid = Some(4);
        let back = Setup::from_json(&s.to_json()).expect("valid");
        assert_eq!(back, s);
        assert_eq!(back.uids(), Err(1));
    }

    #[test]
    fn gid_from_our_ack_and_from_the_originals_refresh() {
        let ours = json!({"msgId": 17, "errno": 0, "gid": 12});
        assert_eq!(gid_in_reply(&ours, "x"), Some(12));
        let original = json!({"msgId": 8, "groups": [
            r#"{"gid":3,"groupname":"other","groupdesc":"","groupusers":[]}"#,
            r#"{"gid":5,"groupname":"p_g0","groupdesc":"","groupusers":[]}"#,
        ]});
        assert_eq!(gid_in_reply(&original, "p_g0"), Some(5));
        assert_eq!(gid_in_reply(&original, "missing"), None);
        let objects = json!({"msgId": 2, "groups": [{"gid": 9, "groupname": "g"}]});
        assert_eq!(gid_in_reply(&objects, "g"), Some(9));
    }
}
