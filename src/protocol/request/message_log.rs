//! The message log's requests and fields: a chat's `cid`, sync (29) and
//! read (33), and the fields a stored message must not bring from the
//! client.
//!
//! # Fields
//!
//! | field | in | rule | else |
//! |---|---|---|---|
//! | `cid` | 9, 13 | optional string, 1–[`MAX_CID_CHARS`] characters, no control, invisible or bidi characters | 4 |
//! | `conv` | 29, 33 | required string, the name of a conversation ([`Conv::parse`]) | 4 if not a string, 7 if no conversation has that name |
//! | `after` / `before` | 29 | exactly one, an integer ≥ 0 | 4 |
//! | `limit` | 29 | optional integer ≥ 1, default [`DEFAULT_SYNC_LIMIT`], clamped to [`MAX_SYNC_LIMIT`] | 4 |
//! | `seq` | 33 | required integer ≥ 0 | 4 |
//!
//! Every type check runs before the conversation's name is resolved, so a
//! request with a bad field gets errno 4 even when its `conv` is unknown
//! too.

use serde_json::{Map, Value};

use super::{invisible, Fields, ProtocolError, Request};
use crate::model::Conv;
use crate::protocol::msg_id::{self, errno};

/// Longest `cid`, in characters.
pub const MAX_CID_CHARS: usize = 64;
/// The messages a sync returns when it sends no `limit`.
pub const DEFAULT_SYNC_LIMIT: usize = 50;
/// The most messages one sync returns; a larger `limit` is lowered to it.
pub const MAX_SYNC_LIMIT: usize = 500;
/// The fields the server writes into every message it stores and delivers,
/// which [`strip_log_fields`] removes from what a client sent.
pub const LOG_FIELDS: [&str; 3] = ["conv", "seq", "ts"];

/// Where a sync page starts; the messages come in ascending seq order
/// either way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncFrom {
    /// `"after":N`: the first messages with seq > N (catching up).
    After(i64),
    /// `"before":N`: the last messages with seq < N (paging back through
    /// history).
    Before(i64),
}

/// Removes `conv`, `seq` and `ts` ([`LOG_FIELDS`]) from a chat object
/// before it is stored: those are the server's to write, and a client must
/// not be able to make a message look as if it sat elsewhere in the log.
pub fn strip_log_fields(obj: &mut Map<String, Value>) {
    for key in LOG_FIELDS {
        obj.remove(key);
    }
}

/// Whether `cid` passes every check [`Fields::opt_cid`] makes, for the
/// fast path of chats (`protocol::chat_frame`), which takes the general
/// path for any cid that does not.
pub fn valid_cid(cid: &str) -> bool {
    (1..=MAX_CID_CHARS).contains(&cid.chars().count())
        && !cid.chars().any(char::is_control)
        && invisible::first_refused(cid).is_none()
}

/// `{"msgId":29,"conv":…,"after"|"before":N,"limit":L}`.
pub(super) fn parse_sync(f: &Fields<'_>) -> Result<Request, ProtocolError> {
    let name = f.str("conv")?;
    let page = f.sync_from()?;
    let limit = f.sync_limit()?;
    Ok(Request::Sync {
        conv: f.conv_named(name)?,
        page,
        limit,
    })
}

/// `{"msgId":33,"conv":…,"seq":N}`.
pub(super) fn parse_read(f: &Fields<'_>) -> Result<Request, ProtocolError> {
    let name = f.str("conv")?;
    let seq = f.position("seq")?;
    Ok(Request::Read {
        conv: f.conv_named(name)?,
        seq,
    })
}

/// `{"msgId":36,"conv":…}`.
pub(super) fn parse_typing(f: &Fields<'_>) -> Result<Request, ProtocolError> {
    let name = f.str("conv")?;
    Ok(Request::Typing {
        conv: f.conv_named(name)?,
    })
}

impl Fields<'_> {
    /// A chat's optional `cid`: see the [module docs](self).
    pub(super) fn opt_cid(&self) -> Result<Option<String>, ProtocolError> {
        let Some(cid) = self.opt_str("cid")? else {
            return Ok(None);
        };
        self.check_len("cid", cid, 1, MAX_CID_CHARS)?;
        if cid.chars().any(char::is_control) {
            return Err(self.error("field `cid` must not contain control characters".into()));
        }
        if let Some(c) = invisible::first_refused(cid) {
            return Err(self.error(format!(
                "field `cid` must not contain invisible or bidirectional \
                 control characters (found U+{:04X})",
                c as u32
            )));
        }
        Ok(Some(cid.to_owned()))
    }

    /// Gives a chat's error the chat's `cid` when that is valid, so that
    /// it is answered as a [`msg_id::SEND_ACK`]; other errors pass as
    /// they are.
    pub(super) fn with_chat_cid(&self, mut e: ProtocolError) -> ProtocolError {
        let chat = matches!(self.msg_id, msg_id::ONE_CHAT_MSG | msg_id::GROUP_CHAT_MSG);
        if chat && e.cid.is_none() {
            e.cid = self.opt_cid().ok().flatten();
        }
        e
    }

    /// The conversation a `conv` string names, or [`errno::NOT_FOUND`].
    fn conv_named(&self, name: &str) -> Result<Conv, ProtocolError> {
        Conv::parse(name).ok_or_else(|| {
            ProtocolError::new(
                errno::NOT_FOUND,
                Some(self.msg_id),
                format!("no conversation named {}", echo(name)),
            )
        })
    }

    /// Exactly one of `after` and `before`.
    fn sync_from(&self) -> Result<SyncFrom, ProtocolError> {
        match (self.opt_position("after")?, self.opt_position("before")?) {
            (Some(n), None) => Ok(SyncFrom::After(n)),
            (None, Some(n)) => Ok(SyncFrom::Before(n)),
            (Some(_), Some(_)) => {
                Err(self.error("sync takes one of `after` and `before`, not both".into()))
            }
            (None, None) => Err(self.error("sync needs one of `after` and `before`".into())),
        }
    }

    /// `limit`, defaulted and clamped. Any integer ≥ 1 is accepted, also
    /// one too large for an `i64`.
    fn sync_limit(&self) -> Result<usize, ProtocolError> {
        let Some(v) = self.get("limit") else {
            return Ok(DEFAULT_SYNC_LIMIT);
        };
        match v.as_u64() {
            Some(n) if n >= 1 => Ok(usize::try_from(n)
                .unwrap_or(MAX_SYNC_LIMIT)
                .min(MAX_SYNC_LIMIT)),
            _ => Err(self.error("field `limit` must be an integer of at least 1".into())),
        }
    }

    /// A required seq: an integer ≥ 0.
    fn position(&self, key: &str) -> Result<i64, ProtocolError> {
        self.opt_position(key)?
            .ok_or_else(|| self.error(format!("missing field `{key}`")))
    }

    fn opt_position(&self, key: &str) -> Result<Option<i64>, ProtocolError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => match v.as_i64() {
                Some(n) if n >= 0 => Ok(Some(n)),
                _ => Err(self.error(format!("field `{key}` must be an integer of at least 0"))),
            },
        }
    }
}

/// Longest client text an error message repeats, in characters.
const MAX_ECHO_CHARS: usize = 32;

/// `s` as a quoted, escaped literal for an error message, cut after
/// [`MAX_ECHO_CHARS`] characters (marked with `…`): the client's text is
/// shown, but it can neither break the line nor make the reply large.
fn echo(s: &str) -> String {
    match s.char_indices().nth(MAX_ECHO_CHARS) {
        Some((cut, _)) => format!("{:?}…", s.get(..cut).unwrap_or_default()),
        None => format!("{s:?}"),
    }
}

#[cfg(test)]
mod tests;
