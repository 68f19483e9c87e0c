//! The journal's record format: one numbered log entry per record.
//!
//! ```text
//! record  = len:u32 crc:u32 payload            (little-endian)
//! payload = conv:i64 seq:i64 sender:i64 ts:i64
//!           cid_len:u16 cid                    (0xFFFF: no cid)
//!           body
//! ```
//!
//! `len` is the payload's length and `crc` its CRC-32 (IEEE). A reader
//! stops at the first record that is cut short, has an impossible length
//! or a wrong CRC: that is the *torn tail* a crash during a write leaves,
//! and everything before it is whole. Any thread; nothing here does I/O.

use crate::model::Conv;
use crate::storage::Entry;

/// Bytes before the payload: its length and CRC.
pub const HEADER: usize = 8;

/// The largest payload a reader accepts (a message is at most
/// `--max-message`, far below): a longer length is garbage.
pub const MAX_PAYLOAD: usize = 16 << 20;

/// `cid_len` of an entry without a cid.
const NO_CID: u16 = u16::MAX;

/// Appends `entry`'s record to `out`.
pub fn encode(entry: &Entry, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&[0; HEADER]);
    for n in [entry.conv.key(), entry.seq, entry.sender, entry.ts] {
        out.extend_from_slice(&n.to_le_bytes());
    }
    match entry.cid.as_deref() {
        // A cid is 1-64 characters (the protocol's rule); a longer one
        // could not be told from "none", so it is cut (never happens).
        Some(cid) => {
            let cid = &cid.as_bytes()[..cid.len().min(usize::from(NO_CID - 1))];
            out.extend_from_slice(&(cid.len() as u16).to_le_bytes());
            out.extend_from_slice(cid);
        }
        None => out.extend_from_slice(&NO_CID.to_le_bytes()),
    }
    out.extend_from_slice(entry.body.as_bytes());
    let len = (out.len() - start - HEADER) as u32;
    let crc = crc32(&out[start + HEADER..]);
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    out[start + 4..start + HEADER].copy_from_slice(&crc.to_le_bytes());
}

/// Reads the whole records at the start of `bytes`: the entries and how
/// many bytes they take (the rest, if any, is a torn or corrupt tail).
pub fn decode_all(bytes: &[u8]) -> (Vec<Entry>, usize) {
    let mut entries = Vec::new();
    let mut at = 0;
    while let Some((entry, used)) = bytes.get(at..).and_then(decode_one) {
        entries.push(entry);
        at += used;
    }
    (entries, at)
}

/// The record at the start of `bytes` and its size; `None` when it is not
/// whole and correct.
fn decode_one(bytes: &[u8]) -> Option<(Entry, usize)> {
    let len = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?) as usize;
    let crc = u32::from_le_bytes(bytes.get(4..HEADER)?.try_into().ok()?);
    if len > MAX_PAYLOAD {
        return None;
    }
    let payload = bytes.get(HEADER..HEADER + len)?;
    if crc32(payload) != crc {
        return None;
    }
    let int = |i: usize| -> Option<i64> {
        Some(i64::from_le_bytes(
            payload.get(i * 8..i * 8 + 8)?.try_into().ok()?,
        ))
    };
    let (key, seq, sender, ts) = (int(0)?, int(1)?, int(2)?, int(3)?);
    let cid_len = u16::from_le_bytes(payload.get(32..34)?.try_into().ok()?);
    let (cid, body_at) = if cid_len == NO_CID {
        (None, 34)
    } else {
        let end = 34 + usize::from(cid_len);
        let cid = std::str::from_utf8(payload.get(34..end)?).ok()?;
        (Some(cid.to_owned()), end)
    };
    let body = std::str::from_utf8(payload.get(body_at..)?)
        .ok()?
        .to_owned();
    let entry = Entry {
        conv: Conv::from_key(key)?,
        seq,
        sender,
        ts,
        cid,
        body,
    };
    Some((entry, HEADER + len))
}

/// The CRC-32 of `bytes` (IEEE 802.3, reflected, as zlib computes it), by
/// `crc32fast`: with the CPU's carry-less multiply where it has one, a
/// small fraction of the byte-at-a-time table's instructions (which was
/// 4.5 % of a message's instructions: docs/benchmarks.md, section 30).
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: i64, cid: Option<&str>) -> Entry {
        Entry {
            conv: Conv::direct(2, 7).unwrap(),
            seq,
            sender: 2,
            ts: 1_733_030_000_123,
            cid: cid.map(str::to_owned),
            body: format!(r#"{{"msgId":9,"msg":"n{seq} é"}}"#),
        }
    }

    #[test]
    fn crc32_is_zlibs() {
        assert_eq!(crc32(b""), 0);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    /// Journals written before `crc32fast` must still read: its sums (on
    /// each of its paths: byte loop, carry-less multiply from 16 bytes,
    /// the wider ones from 256 and 2,048 where the CPU has them) equal the
    /// bit-at-a-time definition the earlier table was built from.
    #[test]
    fn crc32_matches_the_bitwise_definition_at_every_length() {
        fn bitwise(bytes: &[u8]) -> u32 {
            let mut crc = !0u32;
            for &b in bytes {
                crc ^= u32::from(b);
                for _ in 0..8 {
                    crc = if crc & 1 == 1 {
                        0xEDB8_8320 ^ (crc >> 1)
                    } else {
                        crc >> 1
                    };
                }
            }
            !crc
        }
        let bytes: Vec<u8> = (0..70_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for len in (0..300).chain([511, 512, 513, 2047, 2048, 2049, 4096, 65_536, 70_000]) {
            assert_eq!(crc32(&bytes[..len]), bitwise(&bytes[..len]), "length {len}");
        }
    }

    #[test]
    fn records_round_trip() {
        let entries = vec![entry(1, Some("c1")), entry(2, None), entry(3, Some(""))];
        let mut bytes = Vec::new();
        for e in &entries {
            encode(e, &mut bytes);
        }
        let (back, used) = decode_all(&bytes);
        assert_eq!(back, entries);
        assert_eq!(used, bytes.len());
    }

    #[test]
    fn a_torn_or_corrupt_tail_is_where_reading_stops() {
        let mut bytes = Vec::new();
        encode(&entry(1, Some("c1")), &mut bytes);
        let first = bytes.len();
        encode(&entry(2, Some("c2")), &mut bytes);
        // Cut anywhere inside the second record: only the first is read.
        for cut in first..bytes.len() {
            let (back, used) = decode_all(&bytes[..cut]);
            assert_eq!((back.len(), used), (1, first), "cut at {cut}");
        }
        // A flipped bit in the second record's payload: its CRC fails.
        let mut bad = bytes.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x20;
        assert_eq!(decode_all(&bad).1, first);
        // Garbage with a huge length: refused without reading it.
        let mut huge = bytes[..first].to_vec();
        huge.extend_from_slice(&u32::MAX.to_le_bytes());
        huge.extend_from_slice(&[0; 12]);
        assert_eq!(decode_all(&huge).1, first);
        // Zeros (a hole a machine crash can leave) are not a record either.
        let mut zeros = bytes[..first].to_vec();
        zeros.extend_from_slice(&[0; 64]);
        assert_eq!(decode_all(&zeros), (vec![entry(1, Some("c1"))], first));
    }
}
