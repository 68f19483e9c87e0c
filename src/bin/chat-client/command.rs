//! Commands: a line the user typed, parsed into a [`Command`].
//!
//! The syntax is the original client's: a command name, then its fields,
//! separated by `:`.
//!
//! ```text
//!   chat:6:see you at 10:30      →  Chat { to: Id(6), text: "see you at 10:30" }
//!   └┬─┘ └┤ └──────┬─────────┘
//!   name  fid    message (the rest of the line, ':' included)
//! ```
//!
//! A user or group may be named instead of numbered (`chat:alice:hi`,
//! `groupChat:team:hi`): see [`Target`].
//!
//! Only the leading fields are split off, so the last field (a message, a
//! password, a group description) may itself contain `:`. Command names are
//! matched without regard to case, and the original's spellings `addgroup`
//! and `loginout` are accepted as aliases of `joinGroup` and `logout`.
//!
//! [`COMMANDS`] lists every command once; `help`, tab completion and the
//! error messages are all generated from it.

use std::fmt;

/// How a login names the account: by id (the original) or by name (ours).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Account {
    /// `login:5:…`: a field made only of digits is an account id.
    Id(i64),
    /// `login:alice:…`: anything else is an account name.
    Name(String),
}

/// Whom a command addresses: a user or a group, by number (the original's
/// way) or by name. A field made only of digits is a number; anything else
/// is a name, which the client turns into the number before sending
/// ([`crate::names`]), from the friends and groups the login and refresh
/// acks listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `chat:6:…`: the id itself.
    Id(i64),
    /// `chat:alice:…`: a name to look up.
    Name(String),
}

impl Target {
    /// The id, once it is one.
    pub fn id(&self) -> Option<i64> {
        match self {
            Target::Id(id) => Some(*id),
            Target::Name(_) => None,
        }
    }
}

/// One thing the user asked for.
///
/// A `password` is `None` when the user left it out: the interactive client
/// then asks for it without echo, the non-interactive one reports an error.
/// Each variant names the request it sends; see [`COMMANDS`] for the syntax.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `help`: answered by the client itself.
    Help,
    /// `quit`: log out if logged in, then leave.
    Quit,
    /// `register:name:password` (msgId 5).
    Register {
        name: String,
        password: Option<String>,
    },
    /// `login:id-or-name:password` (msgId 1).
    Login {
        account: Account,
        password: Option<String>,
    },
    /// `logout` (msgId 3).
    Logout,
    /// `passwd:old:new` (msgId 37): change the password.
    ChangePassword { old: String, new: String },
    /// `refresh` (msgId 7).
    Refresh,
    /// `chat:fid:message` (msgId 9); `fid` a user's id or name, as in
    /// every command below that names a user (`gid`: a group's).
    Chat { to: Target, text: String },
    /// `addFriend:fid` (msgId 10).
    AddFriend { fid: Target },
    /// `delFriend:fid` (msgId 14).
    DelFriend { fid: Target },
    /// `createGroup:name:desc` (msgId 11); `desc` may be empty.
    CreateGroup { name: String, desc: String },
    /// `joinGroup:gid` (msgId 12).
    JoinGroup { gid: Target },
    /// `quitGroup:gid` (msgId 19).
    QuitGroup { gid: Target },
    /// `dismissGroup:gid` (msgId 21).
    DismissGroup { gid: Target },
    /// `groupMembers:gid` (msgId 23).
    GroupMembers { gid: Target },
    /// `groupChat:gid:message` (msgId 13).
    GroupChat { gid: Target, text: String },
    /// `ping` (msgId 25).
    Ping,
    /// `history:conv[:before]` (msgId 29, then 33): a page of a
    /// conversation's log, the latest or the one before seq `before`.
    History { conv: String, before: Option<u64> },
    /// `convs` (msgId 31): the conversations, with unread counts.
    Convs,
}

impl Command {
    /// Whether the command only makes sense once logged in.
    pub fn needs_login(&self) -> bool {
        !matches!(
            self,
            Command::Help
                | Command::Quit
                | Command::Ping
                | Command::Register { .. }
                | Command::Login { .. }
        )
    }
}

/// One entry of the command table: its name, the fields after the name, and
/// a one-line description for `help`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spec {
    /// The name as shown in `help` (matching ignores case).
    pub name: &'static str,
    /// The fields, as the user types them after the name.
    pub args: &'static str,
    /// What the command does, in a few words.
    pub about: &'static str,
    /// Usable before login (`false`) or only after (`true`).
    pub after_login: bool,
}

impl Spec {
    /// The full syntax, e.g. `chat:fid:message`.
    pub fn usage(&self) -> String {
        format!("{}{}", self.name, self.args)
    }
}

const fn spec(
    name: &'static str,
    args: &'static str,
    about: &'static str,
    after_login: bool,
) -> Spec {
    Spec {
        name,
        args,
        about,
        after_login,
    }
}

/// Every command, in the order `help` shows them.
pub const COMMANDS: &[Spec] = &[
    spec(
        "register",
        ":name:password",
        "create an account (prints its id)",
        false,
    ),
    spec(
        "login",
        ":id-or-name:password",
        "log in (leave out the password to be asked for it)",
        false,
    ),
    spec("help", "", "show this list", false),
    spec(
        "passwd",
        ":old:new",
        "change your password (revokes the saved logins of your other devices)",
        true,
    ),
    spec("quit", "", "log out and leave", false),
    spec("chat", ":fid:message", "send a message to a user", true),
    spec("addFriend", ":fid", "make a user your friend", true),
    spec("delFriend", ":fid", "end a friendship", true),
    spec(
        "createGroup",
        ":name:desc",
        "create a group (you are its creator)",
        true,
    ),
    spec("joinGroup", ":gid", "join a group", true),
    spec(
        "groupChat",
        ":gid:message",
        "send a message to a group",
        true,
    ),
    spec(
        "groupMembers",
        ":gid",
        "list a group's members and who is online",
        true,
    ),
    spec("quitGroup", ":gid", "leave a group", true),
    spec("dismissGroup", ":gid", "delete a group you created", true),
    spec(
        "history",
        ":conv[:before]",
        "show a conversation's messages (the latest, or those before seq)",
        true,
    ),
    spec(
        "convs",
        "",
        "list your conversations and their unread messages",
        true,
    ),
    spec("refresh", "", "show your friends and groups again", true),
    spec("ping", "", "check that the server answers", true),
    spec("logout", "", "log out and return to the menu", true),
];

/// The original client's spellings, mapped to ours.
const ALIASES: &[(&str, &str)] = &[("addgroup", "joinGroup"), ("loginout", "logout")];

/// Finds a command's table entry by name or alias, ignoring case.
pub fn lookup(name: &str) -> Option<&'static Spec> {
    let name = ALIASES
        .iter()
        .find(|(alias, _)| alias.eq_ignore_ascii_case(name))
        .map_or(name, |(_, real)| real);
    COMMANDS.iter().find(|s| s.name.eq_ignore_ascii_case(name))
}

/// Why a line is not a command. Its `Display` text is meant for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandError {
    /// The name matches no command.
    Unknown(String),
    /// A known command with missing or malformed fields.
    Usage {
        /// The command's table entry, for its syntax.
        spec: &'static Spec,
        /// What is wrong, e.g. "fid must be a positive number, not \"x\"".
        why: String,
    },
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::Unknown(name) => {
                write!(f, "unknown command \"{name}\" (type help for the list)")
            }
            CommandError::Usage { spec, why } => write!(f, "{why} (usage: {})", spec.usage()),
        }
    }
}

impl std::error::Error for CommandError {}

/// Parses one line. Blank lines and lines starting with `#` are `Ok(None)`,
/// so scripts can hold comments.
///
/// # Errors
///
/// [`CommandError::Unknown`] for a name that is no command,
/// [`CommandError::Usage`] for missing or malformed fields.
pub fn parse(line: &str) -> Result<Option<Command>, CommandError> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let (name, rest) = match line.split_once(':') {
        Some((name, rest)) => (name.trim(), Some(rest)),
        None => (line, None),
    };
    let spec = lookup(name).ok_or_else(|| CommandError::Unknown(name.to_owned()))?;
    let args = Args { spec, rest };
    let command = match spec.name {
        "help" => Command::Help,
        "quit" => Command::Quit,
        "logout" => Command::Logout,
        "refresh" => Command::Refresh,
        "ping" => Command::Ping,
        "convs" => Command::Convs,
        "history" => {
            let (conv, before) = args.two("a conversation (see convs)")?;
            Command::History {
                conv: args.nonempty(conv, "the conversation")?,
                before: before
                    .map(|b| args.parse_id(b, "before"))
                    .transpose()?
                    .map(i64::unsigned_abs),
            }
        }
        "register" => {
            let (name, password) = args.two("a user name")?;
            Command::Register {
                name: args.nonempty(name, "the user name")?,
                password: password.filter(|p| !p.is_empty()).map(str::to_owned),
            }
        }
        "passwd" => {
            let (old, new) = args.two("the current password")?;
            Command::ChangePassword {
                old: args.nonempty(old, "the current password")?,
                new: args.nonempty(new.unwrap_or(""), "the new password")?,
            }
        }
        "login" => {
            let (account, password) = args.two("an account id or name")?;
            let account = args.nonempty(account, "the account")?;
            Command::Login {
                account: match account.parse::<i64>() {
                    Ok(id) if id > 0 => Account::Id(id),
                    _ => Account::Name(account),
                },
                password: password.filter(|p| !p.is_empty()).map(str::to_owned),
            }
        }
        "chat" => {
            let (to, text) = args.target_and_text("fid")?;
            Command::Chat { to, text }
        }
        "groupChat" => {
            let (gid, text) = args.target_and_text("gid")?;
            Command::GroupChat { gid, text }
        }
        "createGroup" => {
            let (name, desc) = args.two("a group name")?;
            Command::CreateGroup {
                name: args.nonempty(name, "the group name")?,
                desc: desc.unwrap_or("").trim().to_owned(),
            }
        }
        "addFriend" => Command::AddFriend {
            fid: args.target("fid")?,
        },
        "delFriend" => Command::DelFriend {
            fid: args.target("fid")?,
        },
        "joinGroup" => Command::JoinGroup {
            gid: args.target("gid")?,
        },
        "quitGroup" => Command::QuitGroup {
            gid: args.target("gid")?,
        },
        "dismissGroup" => Command::DismissGroup {
            gid: args.target("gid")?,
        },
        "groupMembers" => Command::GroupMembers {
            gid: args.target("gid")?,
        },
        other => return Err(CommandError::Unknown(other.to_owned())),
    };
    Ok(Some(command))
}

/// The text after a command's name, with field accessors whose errors name
/// the field and show the command's syntax.
struct Args<'a> {
    spec: &'static Spec,
    /// Everything after the first `:`, or `None` when there was no `:`.
    rest: Option<&'a str>,
}

impl<'a> Args<'a> {
    fn error(&self, why: String) -> CommandError {
        CommandError::Usage {
            spec: self.spec,
            why,
        }
    }

    /// The first field and, when present, the rest of the line.
    fn two(&self, first: &str) -> Result<(&'a str, Option<&'a str>), CommandError> {
        let rest = self
            .rest
            .ok_or_else(|| self.error(format!("{} needs {first}", self.spec.name)))?;
        Ok(match rest.split_once(':') {
            Some((a, b)) => (a, Some(b)),
            None => (rest, None),
        })
    }

    fn nonempty(&self, field: &str, what: &str) -> Result<String, CommandError> {
        let field = field.trim();
        if field.is_empty() {
            return Err(self.error(format!("{what} is empty")));
        }
        Ok(field.to_owned())
    }

    fn parse_id(&self, field: &str, what: &str) -> Result<i64, CommandError> {
        match field.trim().parse::<i64>() {
            Ok(id) if id > 0 => Ok(id),
            _ => Err(self.error(format!("{what} must be a positive number, not \"{field}\""))),
        }
    }

    /// A [`Target`]: a positive number, or a name (not a number at all).
    fn parse_target(&self, field: &str, what: &str) -> Result<Target, CommandError> {
        let field = field.trim();
        if field.is_empty() {
            return Err(self.error(format!("{what} is empty")));
        }
        let numeric = field.strip_prefix(['-', '+']).unwrap_or(field);
        if !numeric.bytes().all(|b| b.is_ascii_digit()) {
            return Ok(Target::Name(field.to_owned()));
        }
        match field.parse::<i64>() {
            Ok(id) if id > 0 => Ok(Target::Id(id)),
            _ => Err(self.error(format!(
                "{what} must be a positive number or a name, not \"{field}\""
            ))),
        }
    }

    /// The only field: a user or group.
    fn target(&self, what: &str) -> Result<Target, CommandError> {
        let rest = self
            .rest
            .ok_or_else(|| self.error(format!("{} needs a {what}", self.spec.name)))?;
        self.parse_target(rest, what)
    }

    /// A user or group, then a message that may contain `:`.
    fn target_and_text(&self, what: &str) -> Result<(Target, String), CommandError> {
        let (id, text) = self.two(&format!("a {what} and a message"))?;
        let id = self.parse_target(id, what)?;
        match text {
            Some(text) if !text.trim().is_empty() => Ok((id, text.to_owned())),
            _ => Err(self.error("the message is empty".to_owned())),
        }
    }
}

#[cfg(test)]
mod tests;
