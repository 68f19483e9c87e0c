//! [`Conv`]: a conversation of the message log, and its names.
//!
//! Every one-to-one and group message belongs to exactly one conversation,
//! and each conversation numbers its messages 1, 2, 3, … (its `seq`). A
//! one-to-one conversation is shared by its two participants, whoever
//! writes first; a group is one conversation.
//!
//! A conversation has three forms:
//!
//! | form | one-to-one of users 2 and 7 | group 5 | where |
//! |---|---|---|---|
//! | [`Conv`] | `Conv::Direct { low: 2, high: 7 }` | `Conv::Group(5)` | the code |
//! | [`Conv::key`] | `2 << 32 \| 7` | `5` | the database's `conv` columns |
//! | [`Display`](fmt::Display) / [`Conv::parse`] | `"d2-7"` | `"g5"` | the wire's `conv` field |
//!
//! Clients treat the wire form as opaque; the server parses it strictly
//! (no signs, no leading zeros, nothing around it), so that one
//! conversation has exactly one name.
//!
//! Ids must lie in `1..=MAX_ID` (`2³¹ − 1`, MySQL's `INT`): that is what
//! lets a direct key hold both ids and stay apart from every group key
//! (a direct key is at least `2³²`, a group key below `2³¹`).

use std::fmt;

/// The largest user or group id a conversation can name.
pub const MAX_ID: i64 = i32::MAX as i64;

/// A conversation: one-to-one or group, named on the wire by its
/// [`Display`](fmt::Display) form and in the database by [`Conv::key`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Conv {
    /// The one-to-one conversation of two users, `low <= high` (equal for
    /// a user writing to themselves).
    Direct {
        /// The smaller user id.
        low: i64,
        /// The larger user id.
        high: i64,
    },
    /// The conversation of group `gid`.
    Group(i64),
}

impl Conv {
    /// The one-to-one conversation of `a` and `b`, in either order; `None`
    /// when an id is outside `1..=MAX_ID`.
    pub fn direct(a: i64, b: i64) -> Option<Conv> {
        if !valid_id(a) || !valid_id(b) {
            return None;
        }
        Some(Conv::Direct {
            low: a.min(b),
            high: a.max(b),
        })
    }

    /// The conversation of group `gid`; `None` when `gid` is outside
    /// `1..=MAX_ID`.
    pub fn group(gid: i64) -> Option<Conv> {
        valid_id(gid).then_some(Conv::Group(gid))
    }

    /// The database key: `gid` for a group, `low << 32 | high` for a
    /// one-to-one conversation. Distinct conversations have distinct keys.
    pub fn key(self) -> i64 {
        match self {
            Conv::Direct { low, high } => (low << 32) | high,
            Conv::Group(gid) => gid,
        }
    }

    /// The conversation of a database key; `None` for a number no
    /// conversation has.
    pub fn from_key(key: i64) -> Option<Conv> {
        if key >= 1 << 32 {
            let (low, high) = (key >> 32, key & 0xffff_ffff);
            return (valid_id(low) && valid_id(high) && low <= high)
                .then_some(Conv::Direct { low, high });
        }
        Conv::group(key)
    }

    /// Parses the wire form (`"d2-7"`, `"g5"`); `None` for anything that
    /// is not exactly the name of a conversation.
    pub fn parse(s: &str) -> Option<Conv> {
        if let Some(gid) = s.strip_prefix('g') {
            return Conv::group(parse_id(gid)?);
        }
        let (low, high) = s.strip_prefix('d')?.split_once('-')?;
        let (low, high) = (parse_id(low)?, parse_id(high)?);
        // "d7-2" names no conversation: the smaller id comes first.
        (low <= high).then_some(()).and(Conv::direct(low, high))
    }

    /// Whether user `uid` is one of the two participants of a one-to-one
    /// conversation (always `false` for a group: membership is the
    /// store's to say).
    pub fn has_participant(self, uid: i64) -> bool {
        matches!(self, Conv::Direct { low, high } if uid == low || uid == high)
    }

    /// The participant of a one-to-one conversation who is not `uid`
    /// (`uid` itself for a conversation with oneself); `None` for a
    /// group or a user who is not a participant.
    pub fn other(self, uid: i64) -> Option<i64> {
        match self {
            Conv::Direct { low, high } if uid == low => Some(high),
            Conv::Direct { low, high } if uid == high => Some(low),
            _ => None,
        }
    }

    /// Appends the conversation's name, the text [`Display`](fmt::Display)
    /// writes (`d2-7`, `g5`), to `out` without `core::fmt`: the deliverer
    /// writes one per message.
    pub fn write_name(self, out: &mut Vec<u8>) {
        let mut n = itoa::Buffer::new();
        match self {
            Conv::Direct { low, high } => {
                out.push(b'd');
                out.extend_from_slice(n.format(low).as_bytes());
                out.push(b'-');
                out.extend_from_slice(n.format(high).as_bytes());
            }
            Conv::Group(gid) => {
                out.push(b'g');
                out.extend_from_slice(n.format(gid).as_bytes());
            }
        }
    }

    /// `"user"` or `"group"`: the `kind` of a CONVS entry.
    pub fn kind(self) -> &'static str {
        match self {
            Conv::Direct { .. } => "user",
            Conv::Group(_) => "group",
        }
    }
}

impl fmt::Display for Conv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Conv::Direct { low, high } => write!(f, "d{low}-{high}"),
            Conv::Group(gid) => write!(f, "g{gid}"),
        }
    }
}

/// One conversation of a user, as CONVS (31) lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvState {
    /// The conversation.
    pub conv: Conv,
    /// Its newest message's number (0: none yet).
    pub last_seq: i64,
    /// The user's read position.
    pub read_seq: i64,
    /// The last message the server handed to the user (or that the user
    /// sent).
    pub delivered_seq: i64,
    /// The user reads messages after this one only (a group's `last_seq`
    /// when they joined; 0 otherwise).
    pub joined_seq: i64,
}

fn valid_id(id: i64) -> bool {
    (1..=MAX_ID).contains(&id)
}

/// A decimal id without sign or leading zeros.
fn parse_id(s: &str) -> Option<i64> {
    let canonical = !s.is_empty()
        && s.len() <= 10
        && s.bytes().all(|b| b.is_ascii_digit())
        && !s.starts_with('0');
    canonical.then(|| s.parse().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::{Conv, MAX_ID};

    #[test]
    fn direct_is_the_same_both_ways() {
        assert_eq!(Conv::direct(7, 2), Conv::direct(2, 7));
        let c = Conv::direct(7, 2).unwrap();
        assert_eq!(c.to_string(), "d2-7");
        assert_eq!(c.other(2), Some(7));
        assert_eq!(c.other(7), Some(2));
        assert_eq!(c.other(3), None);
        assert!(c.has_participant(7) && !c.has_participant(3));
        assert_eq!(Conv::direct(4, 4).unwrap().other(4), Some(4));
    }

    #[test]
    fn write_name_writes_what_display_does() {
        let convs = [
            Conv::direct(2, 7).unwrap(),
            Conv::direct(MAX_ID, 1).unwrap(),
            Conv::Group(5),
            Conv::Group(0),
            Conv::Direct {
                low: i64::MIN,
                high: i64::MAX,
            },
            Conv::Group(i64::MIN),
        ];
        for c in convs {
            let mut out = b"x".to_vec();
            c.write_name(&mut out);
            assert_eq!(out, format!("x{c}").into_bytes(), "{c:?}");
        }
    }

    #[test]
    fn keys_round_trip_and_never_collide() {
        let convs = [
            Conv::direct(1, 1).unwrap(),
            Conv::direct(1, 2).unwrap(),
            Conv::direct(2, 1 << 20).unwrap(),
            Conv::direct(MAX_ID, MAX_ID).unwrap(),
            Conv::group(1).unwrap(),
            Conv::group(MAX_ID).unwrap(),
        ];
        for c in convs {
            assert_eq!(Conv::from_key(c.key()), Some(c), "{c}");
            assert_eq!(Conv::parse(&c.to_string()), Some(c), "{c}");
            assert!(c.key() > 0);
        }
        let mut keys: Vec<i64> = convs.iter().map(|c| c.key()).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), convs.len());
        assert_eq!(Conv::from_key(0), None);
        assert_eq!(Conv::from_key(-5), None);
        assert_eq!(Conv::from_key((5 << 32) | 2), None, "low > high");
    }

    #[test]
    fn ids_out_of_range_make_no_conversation() {
        assert_eq!(Conv::direct(0, 2), None);
        assert_eq!(Conv::direct(2, MAX_ID + 1), None);
        assert_eq!(Conv::group(-1), None);
        assert_eq!(Conv::group(MAX_ID + 1), None);
    }

    #[test]
    fn only_canonical_names_parse() {
        assert_eq!(Conv::parse("g5"), Conv::group(5));
        assert_eq!(Conv::parse("d2-7"), Conv::direct(2, 7));
        for bad in [
            "",
            "g",
            "d",
            "g0",
            "g05",
            "g+5",
            "g-5",
            "G5",
            " g5",
            "g5 ",
            "d7-2",
            "d2-",
            "d-7",
            "d2_7",
            "d02-7",
            "d2-7-9",
            "g99999999999",
            "g2147483648",
            "x5",
            "g5\n",
            "g٥",
        ] {
            assert_eq!(Conv::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Conv::parse("g2147483647"), Conv::group(MAX_ID));
    }
}
