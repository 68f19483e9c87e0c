//! Fuzz target: the stream decoder (`chat::protocol::codec::Decoder`).
//!
//! The input is a little header, then the bytes a client sends:
//!
//! ```text
//!   byte 0      the maximum message size: 1..=128 bytes when below 0x80
//!               (so that "too large" is reached), else the server's 64 KiB
//!   byte 1      k = byte 1 % 8, the number of chunk lengths that follow
//!   k bytes     the chunk lengths (0..=255; a 0 is a read that brought
//!               nothing new), used in turn, round and round
//!   the rest    the stream
//! ```
//!
//! A header shorter than that takes what there is (no chunk lengths means
//! one chunk). The stream is fed to a connection-like driver twice: in one
//! read, and cut into the chunks the header describes. Checked:
//!
//! - nothing panics;
//! - both feeds give the same objects and the same errors in the same order,
//!   and leave the same bytes pending (up to the whitespace in front, which
//!   a split may leave in the buffer rather than consume with an object);
//! - at every call of the resumed decoder, the same decoder as it was when
//!   the message began (before any partial scan) gives the same answer on
//!   the same buffer: resuming changes nothing but the cost;
//! - `consumed` is never zero nor beyond the buffer, every object encodes
//!   and decodes again as serde_json reads it, and the work stays linear (at most two looks at
//!   each byte, as the codec's documentation promises);
//! - the chat port's way (`Decoder::next_frame_or` with the chat fast
//!   path's reader, then `Frame::parse`) gives the same objects and errors
//!   as `decode`, in both feeds, and a frame the reader took parses.

#![no_main]

use chat::protocol::chat_frame;
use chat::protocol::codec::{decode, encode, DecodeError, Decoded, Decoder, Flat};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};

/// The server's own maximum message size.
const SERVER_MAX: usize = 64 * 1024;

/// What the connection saw, in order: the part of a decode result that
/// does not depend on how the stream was split.
#[derive(Debug, PartialEq)]
enum Event {
    /// A decoded object.
    Object(Map<String, Value>),
    /// An error. `NumberOutOfRange`'s `consumed` counts trailing whitespace
    /// that a split may not have delivered yet, so it is left out.
    Error(DecodeError),
}

/// The end of one feed: what was seen, what was left pending, the work.
#[derive(Debug)]
struct Outcome {
    events: Vec<Event>,
    /// The unconsumed bytes when the stream ended open, without leading
    /// whitespace; `None` when a fatal error closed the connection.
    pending: Option<Vec<u8>>,
    /// `Decoder::work` over the whole feed.
    work: u64,
}

/// Parses the header: the maximum message size, the chunk lengths, the stream.
fn split_input(data: &[u8]) -> (usize, Vec<usize>, &[u8]) {
    let max = match data.first() {
        Some(&b) if b < 0x80 => usize::from(b) + 1,
        _ => SERVER_MAX,
    };
    let k = data.get(1).map_or(0, |&b| usize::from(b % 8));
    let header = (2 + k).min(data.len());
    let lengths = data.get(2..header).unwrap_or_default();
    let lengths = lengths.iter().map(|&b| usize::from(b)).collect();
    (max, lengths, data.get(header..).unwrap_or_default())
}

/// Cuts `stream` into chunks of the given lengths, used in turn; one chunk
/// when there are none. An all-zero list still makes progress: a zero is
/// an empty read, followed by the rest of the stream.
fn chunks<'a>(stream: &'a [u8], lengths: &[usize]) -> Vec<&'a [u8]> {
    if lengths.is_empty() || lengths.iter().all(|&n| n == 0) {
        let mut out: Vec<&[u8]> = lengths.iter().map(|_| &stream[..0]).collect();
        out.push(stream);
        return out;
    }
    let mut out = Vec::new();
    let mut rest = stream;
    for &n in lengths.iter().cycle() {
        if rest.is_empty() {
            break;
        }
        let (head, tail) = rest.split_at(n.min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}

/// The decode result with what depends on the split taken out.
fn event_of(result: &Result<Option<Decoded>, DecodeError>) -> Option<Event> {
    match result {
        Ok(None) => None,
        Ok(Some((object, _))) => Some(Event::Object(object.clone())),
        Err(DecodeError::NumberOutOfRange { .. }) => {
            Some(Event::Error(DecodeError::NumberOutOfRange { consumed: 0 }))
        }
        Err(e) => Some(Event::Error(e.clone())),
    }
}

/// Checks what holds for any one answer on `buf`.
fn check_answer(buf: &[u8], result: &Result<Option<Decoded>, DecodeError>) {
    match result {
        Ok(Some((object, consumed))) => {
            assert!(
                *consumed > 0 && *consumed <= buf.len(),
                "consumed {consumed}"
            );
            // What the server would send on decodes as serde_json reads it
            // (not always to `object` itself: serde_json's default float
            // parsing may move a double by one unit in the last place).
            let bytes = encode(&Value::Object(object.clone()));
            let expected = serde_json::from_slice::<Map<String, Value>>(&bytes);
            let expected = expected.map(|again| Some((again, bytes.len())));
            let again = decode(&bytes, usize::MAX).map_err(|e| e.to_string());
            assert_eq!(again, expected.map_err(|e| e.to_string()));
        }
        Err(e) => {
            if let Some(skip) = e.skip() {
                assert!(skip > 0 && skip <= buf.len(), "skip {skip}");
            }
            // The reply is always something the server can send.
            let _ = encode(&e.reply());
        }
        Ok(None) => {}
    }
}

/// Feeds the chunks to one buffer and one decoder, as a connection does:
/// decode until incomplete, remove what was consumed, step over a message
/// the error allows skipping, stop at any other error.
fn feed(pieces: &[&[u8]], max: usize) -> Outcome {
    let mut decoder = Decoder::new();
    // The decoder at the start of the message at the front of `buf`.
    let mut at_start = decoder.clone();
    let mut buf: Vec<u8> = Vec::new();
    let mut events = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            let result = decoder.decode(&buf, max);
            // Resuming must not change the answer, only its cost.
            let restarted = at_start.clone().decode(&buf, max);
            assert_eq!(result, restarted, "resumed vs restarted on {buf:?}");
            check_answer(&buf, &result);
            let event = event_of(&result);
            if !matches!(result, Ok(None)) {
                // A message ended (or a fatal error ends the feed below).
                at_start = decoder.clone();
            }
            match result {
                Ok(None) => break,
                Ok(Some((_, consumed))) => drop(buf.drain(..consumed)),
                Err(e) => match e.skip() {
                    Some(skip) => drop(buf.drain(..skip)),
                    None => {
                        events.extend(event);
                        return Outcome {
                            events,
                            pending: None,
                            work: decoder.work(),
                        };
                    }
                },
            }
            events.extend(event);
        }
    }
    let start = buf
        .iter()
        .position(|b| !b" \t\r\n".contains(b))
        .unwrap_or(buf.len());
    Outcome {
        events,
        pending: Some(buf.split_off(start)),
        work: decoder.work(),
    }
}

/// Feeds the chunks as the chat port's listener does: frames found with
/// the flat shortcut (`next_frame_or`, the chat reader), each then parsed
/// as the general path would (so that the events compare with `decode`'s).
fn feed_frames(pieces: &[&[u8]], max: usize) -> Vec<Event> {
    let mut decoder = Decoder::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut events = Vec::new();
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            let found = decoder.next_frame_or(&buf, max, chat_frame::read);
            let (frame, flat) = match found {
                Ok(Some(found)) => found,
                Ok(None) => break,
                Err(e) => {
                    events.extend(event_of(&Err(e)));
                    return events;
                }
            };
            let took = matches!(flat, Flat::Read(_));
            let result = frame.parse(&buf).map(Some);
            assert!(
                !took || result.is_ok(),
                "the reader took what does not parse"
            );
            if let Ok(Some((_, consumed))) = &result {
                assert_eq!(*consumed, frame.consumed);
            }
            let event = event_of(&result);
            match result {
                Ok(Some((_, consumed))) => drop(buf.drain(..consumed)),
                Ok(None) => unreachable!("a frame always parses to an answer"),
                Err(e) => match e.skip() {
                    Some(skip) => drop(buf.drain(..skip)),
                    None => {
                        events.extend(event);
                        return events;
                    }
                },
            }
            events.extend(event);
        }
    }
    events
}

fuzz_target!(|data: &[u8]| {
    let (max, lengths, stream) = split_input(data);
    let whole = feed(&[stream], max);
    let split = feed(&chunks(stream, &lengths), max);
    assert_eq!(whole.events, split.events, "objects and errors differ");
    assert_eq!(whole.pending, split.pending, "pending bytes differ");
    assert_eq!(
        feed_frames(&[stream], max),
        whole.events,
        "the listener's way, one read"
    );
    let pieces = chunks(stream, &lengths);
    assert_eq!(
        feed_frames(&pieces, max),
        split.events,
        "the listener's way, split"
    );
    let bound = 2 * stream.len() as u64;
    assert!(whole.work <= bound, "work {} for {bound}", whole.work);
    assert!(split.work <= bound, "work {} for {bound}", split.work);
});
