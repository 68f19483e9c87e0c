//! The envelope: what travels on a node's channel.
//!
//! ```text
//!   0               8                                  8 + n
//!   +---------------+----------------------------------+
//!   | recipient uid |  payload: n bytes, as given to   |
//!   | i64, big end. |  Cluster::send_to_user           |
//!   +---------------+----------------------------------+
//! ```
//!
//! The payload is opaque here: the server passes the bytes its recipient's
//! connection should receive (one JSON object and its `\n`), and the
//! receiving node hands exactly those bytes to `LocalNode::deliver`, or to
//! `LocalNode::store_offline`. A fixed-size binary header, rather than a JSON
//! wrapper, means the payload is neither parsed nor escaped on the way: the
//! cluster costs one copy per message on each side.

/// Bytes before the payload.
pub(crate) const HEADER: usize = 8;

/// Builds the envelope for `uid` and `payload`.
pub(crate) fn encode(uid: i64, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER + payload.len());
    out.extend_from_slice(&uid.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// Splits an envelope into the recipient and the payload; `None` when it is
/// too short to hold the header (not written by a node of this cluster).
pub(crate) fn decode(bytes: &[u8]) -> Option<(i64, &[u8])> {
    let (head, payload) = bytes.split_at_checked(HEADER)?;
    let uid = i64::from_be_bytes(head.try_into().ok()?);
    Some((uid, payload))
}

#[cfg(test)]
mod tests {
    use super::{decode, encode, HEADER};

    #[test]
    fn round_trip() {
        let e = encode(7, b"{\"msgId\":9}\n");
        assert_eq!(e.len(), HEADER + 12);
        assert_eq!(&e[..HEADER], &[0, 0, 0, 0, 0, 0, 0, 7]);
        assert_eq!(decode(&e), Some((7, &b"{\"msgId\":9}\n"[..])));
    }

    #[test]
    fn negative_uid_and_empty_payload() {
        assert_eq!(decode(&encode(-3, b"")), Some((-3, &b""[..])));
        assert_eq!(decode(&encode(i64::MAX, b"x")), Some((i64::MAX, &b"x"[..])));
    }

    #[test]
    fn short_input_is_refused() {
        assert_eq!(decode(b""), None);
        assert_eq!(decode(b"1234567"), None);
        assert_eq!(decode(b"12345678"), Some((0x3132333435363738, &b""[..])));
    }
}
