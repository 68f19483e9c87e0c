//! The wire protocol: what goes over a connection, and nothing about sockets
//! or storage.
//!
//! One message travels through this module like this:
//!
//! ```text
//!  bytes ─▶ codec::Decoder ▶ JSON object ─▶ request::parse ─▶ Request ─▶ service
//!                                                                         │
//!  bytes ◀─ codec::encode ◀─ JSON Value  ◀─ reply::*  ◀───────────────────┘
//! ```
//!
//! | module | what it holds |
//! |---|---|
//! | [`msg_id`] | the msgIds and errno codes (ids 1–13 are the original's, 28–34 the message log's) |
//! | [`chat_frame`] | the fast path of a chat: read and stamped from its bytes, exactly as the general path would |
//! | [`codec`] | framing: a stream of concatenated JSON objects in, one object per line out |
//! | [`request`] | [`Request`], the typed form of a client message, and its validation |
//! | [`reply`] | builders for every ack, in the exact shapes the original's client expects |
//!
//! One request skips the `Map`: a chat or group chat in the common form
//! ([`chat_frame`]) is checked and stamped straight from its bytes, with
//! the same result as the general path, which takes every other object.
//!
//! One reply skips the `Value`: [`reply::sync_ok`] splices the stored
//! messages' bytes into its output as they are, so a page of 500 messages
//! is not parsed and encoded again.
//!
//! The users and groups that replies carry are the [model](crate::model)'s
//! types; this module only gives them their wire forms.
//!
//! `docs/protocol.md` describes every message from a client's point of view;
//! `../shared/reference/legacy-protocol.md` records the original's.

pub mod chat_frame;
pub mod codec;
pub mod msg_id;
pub mod reply;
pub mod request;

pub use codec::{decode, encode, encode_into, DecodeError, Decoded, Decoder, Frame};
pub use msg_id::errno;
pub use request::{parse, strip_log_fields, ProtocolError, Request, SyncFrom, LOG_FIELDS};
