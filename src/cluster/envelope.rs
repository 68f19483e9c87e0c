//! The frame: what travels on a node's channel. One `PUBLISH` carries a
//! batch of items, each length-prefixed:
//!
//! ```text
//!   frame := item*                       (one or more, back to back)
//!   item  := len: u32 BE | kind: u8 | body (len − 1 bytes)
//!
//!   kind 0  user   body = uid: i64 BE | payload
//!   kind 1  final  body = uid: i64 BE | payload   (a forward or a copy for a
//!                                                   user's other nodes: never
//!                                                   forwarded again)
//!   kind 2  group  body = n: u32 BE | uid: i64 BE × n | payload
//! ```
//!
//! The payload is opaque here: the server passes the bytes its recipient's
//! connection should receive (one JSON object and its `\n`, behind the
//! message's place in the log), and the receiving node hands exactly those
//! bytes to `LocalNode::deliver`, or to `LocalNode::store_offline`. A
//! binary header, rather than a JSON wrapper, means the payload is neither
//! parsed nor escaped on the way. A group item carries one payload for
//! every member on the destination node: a group post crosses Redis once
//! per node, not once per member. A confirmation of a barrier is a user
//! item for [`SEEN_UID`](super::barrier::SEEN_UID) whose payload is the
//! token.
//!
//! The publisher appends items to one frame per destination node during a
//! tick ([`Frame`]); the `route` script publishes a frame of one item.
//! (Versions before the frame published one bare `uid | payload` per
//! message: the two cannot share a cluster.)

/// Item kinds.
pub(crate) const USER: u8 = 0;
pub(crate) const FINAL: u8 = 1;
pub(crate) const GROUP: u8 = 2;

/// One decoded item, borrowing from the frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item<'a> {
    /// For `uid`; `forward`: may be re-routed when `uid` is not here.
    User {
        uid: i64,
        payload: &'a [u8],
        forward: bool,
    },
    /// The same payload for each uid (big-endian i64s) on this node.
    Group { uids: &'a [u8], payload: &'a [u8] },
}

/// The uids of a group item.
pub(crate) fn group_uids(uids: &[u8]) -> impl Iterator<Item = i64> + '_ {
    uids.chunks_exact(8)
        .filter_map(|c| <[u8; 8]>::try_from(c).ok().map(i64::from_be_bytes))
}

/// A frame being built: items appended in order.
#[derive(Debug, Default)]
pub(crate) struct Frame {
    bytes: Vec<u8>,
    /// Recipients of its items (a group item counts each uid).
    recipients: u64,
}

impl Frame {
    /// Appends a user item (`FINAL` with `last`: never forwarded again).
    pub(crate) fn user(&mut self, uid: i64, payload: &[u8], last: bool) {
        let kind = if last { FINAL } else { USER };
        self.head(1 + 8 + payload.len(), kind);
        self.bytes.extend_from_slice(&uid.to_be_bytes());
        self.bytes.extend_from_slice(payload);
        self.recipients += 1;
    }

    /// Appends a confirmation of barrier `token` (a `FINAL` user item for
    /// [`SEEN_UID`](super::barrier::SEEN_UID)); no recipient.
    pub(crate) fn seen(&mut self, token: u64) {
        self.user(super::barrier::SEEN_UID, &token.to_be_bytes(), true);
        self.recipients -= 1;
    }

    /// Appends a group item: `payload` for each of `uids`.
    pub(crate) fn group(&mut self, uids: &[i64], payload: &[u8]) {
        self.head(1 + 4 + 8 * uids.len() + payload.len(), GROUP);
        self.bytes
            .extend_from_slice(&len32(uids.len()).to_be_bytes());
        for uid in uids {
            self.bytes.extend_from_slice(&uid.to_be_bytes());
        }
        self.bytes.extend_from_slice(payload);
        self.recipients += uids.len() as u64;
    }

    fn head(&mut self, len: usize, kind: u8) {
        self.bytes.extend_from_slice(&len32(len).to_be_bytes());
        self.bytes.push(kind);
    }

    /// Bytes so far.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Recipients so far.
    pub(crate) fn recipients(&self) -> u64 {
        self.recipients
    }

    /// The bytes to publish.
    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// A frame of one user item.
pub(crate) fn single(uid: i64, payload: &[u8], last: bool) -> Vec<u8> {
    let mut f = Frame::default();
    f.user(uid, payload, last);
    f.into_bytes()
}

/// Lengths above 4 GiB cannot be framed; Redis refuses values past 512 MB
/// anyway, so saturate (the receiver then drops the malformed rest).
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The items of a frame, in order. Stops at the first malformed item (not
/// written by a node of this cluster), after yielding `Err(())` once.
pub(crate) fn items(frame: &[u8]) -> impl Iterator<Item = Result<Item<'_>, ()>> {
    let mut rest = Some(frame);
    std::iter::from_fn(move || {
        let r = rest.take()?;
        if r.is_empty() {
            return None;
        }
        match split_item(r) {
            Some((item, tail)) => {
                rest = Some(tail);
                Some(Ok(item))
            }
            None => Some(Err(())),
        }
    })
}

/// The first item of `r` and what follows it.
fn split_item(r: &[u8]) -> Option<(Item<'_>, &[u8])> {
    let (len, r) = r.split_at_checked(4)?;
    let len = u32::from_be_bytes(len.try_into().ok()?) as usize;
    let (body, tail) = r.split_at_checked(len)?;
    let (&kind, body) = body.split_first()?;
    let item = match kind {
        USER | FINAL => {
            let (uid, payload) = body.split_at_checked(8)?;
            Item::User {
                uid: i64::from_be_bytes(uid.try_into().ok()?),
                payload,
                forward: kind == USER,
            }
        }
        GROUP => {
            let (n, body) = body.split_at_checked(4)?;
            let n = u32::from_be_bytes(n.try_into().ok()?) as usize;
            let (uids, payload) = body.split_at_checked(n.checked_mul(8)?)?;
            Item::Group { uids, payload }
        }
        _ => return None,
    };
    Some((item, tail))
}

#[cfg(test)]
mod tests {
    use super::{group_uids, items, single, Frame, Item};

    fn user(uid: i64, payload: &[u8], forward: bool) -> Result<Item<'_>, ()> {
        Ok(Item::User {
            uid,
            payload,
            forward,
        })
    }

    #[test]
    fn a_batch_round_trips_in_order() {
        let mut f = Frame::default();
        f.user(7, b"{\"msgId\":9}\n", false);
        f.group(&[1, -2, i64::MAX], b"g\n");
        f.user(-3, b"", true);
        assert_eq!(f.recipients(), 5);
        let bytes = f.into_bytes();
        assert_eq!(&bytes[..5], &[0, 0, 0, 21, 0], "len 1 + 8 + 12, kind 0");
        let got: Vec<_> = items(&bytes).collect();
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], user(7, b"{\"msgId\":9}\n", true));
        let Ok(Item::Group { uids, payload }) = got[1] else {
            panic!("{:?}", got[1]);
        };
        assert_eq!(group_uids(uids).collect::<Vec<_>>(), [1, -2, i64::MAX]);
        assert_eq!(payload, b"g\n");
        assert_eq!(got[2], user(-3, b"", false));
        assert_eq!(
            items(&single(5, b"x", false)).collect::<Vec<_>>(),
            [user(5, b"x", true)]
        );
    }

    #[test]
    fn malformed_input_stops_after_one_error() {
        assert_eq!(items(b"").count(), 0);
        let short: Vec<_> = items(b"\0\0\0\x09\0abc").collect();
        assert_eq!(short, [Err(())]);
        let mut bytes = single(1, b"ok", false);
        bytes.extend_from_slice(&[0, 0, 0, 2, 9, 9]); // unknown kind 9
        let got: Vec<_> = items(&bytes).collect();
        assert_eq!(got, [user(1, b"ok", true), Err(())]);
        let huge_group = [0, 0, 0, 5, 2, 255, 255, 255, 255];
        assert_eq!(items(&huge_group).collect::<Vec<_>>(), [Err(())]);
    }
}
