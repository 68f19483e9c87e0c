//! A request as it reaches the service: a parsed object (the general
//! path, every request) or a chat read straight from its bytes (the fast
//! path, [`chat_frame`]), which gives the same request and the same body.

use serde_json::{Map, Value};

use super::Me;
use crate::protocol::chat_frame::{self, ChatFrame};
use crate::protocol::{parse, ProtocolError, Request};

/// One request, in whichever form it was read; it lives for one call of
/// [`Service::handle_incoming`](super::Service::handle_incoming), on the
/// thread that read it.
#[derive(Debug)]
pub enum Incoming<'a> {
    /// The general path: the decoder's serde_json object.
    Object(Map<String, Value>),
    /// The fast path: a chat or group chat, borrowed from the input buffer
    /// (and by reference: a frame is a few hundred bytes, not worth copying
    /// at every call on the way).
    Chat(&'a ChatFrame<'a>),
}

impl Incoming<'_> {
    /// The typed request, or what is wrong with it (only an object can be
    /// wrong: the fast path takes valid chats only).
    pub(super) fn request(&self) -> Result<Request, ProtocolError> {
        match self {
            Incoming::Object(obj) => parse(obj),
            Incoming::Chat(frame) => Ok(frame.request().clone()),
        }
    }

    /// The request's `msgId`, when it has an integer one, for an answer
    /// that does not parse it.
    pub(super) fn msg_id(&self) -> Option<i64> {
        match self {
            Incoming::Object(obj) => obj.get("msgId").and_then(Value::as_i64),
            Incoming::Chat(frame) => Some(frame.request().msg_id()),
        }
    }

    /// The request as an object, to be held while a login is under way;
    /// `None` only if a fast-path chat could not be turned back into one,
    /// which its checks rule out.
    pub(super) fn into_object(self) -> Option<Map<String, Value>> {
        match self {
            Incoming::Object(obj) => Some(obj),
            Incoming::Chat(frame) => frame.to_object(),
        }
    }

    /// A chat's body for the log, stamped with the sender's identity in
    /// `id_field` (`from` or `uid`) and `username`: the same bytes on
    /// either path.
    pub(super) fn stamped(self, id_field: &str, me: &Me) -> String {
        match self {
            Incoming::Object(obj) => chat_frame::stamp_object(obj, id_field, me.uid, &me.name),
            Incoming::Chat(frame) => frame.stamped(id_field, me.uid, &me.name),
        }
    }
}
