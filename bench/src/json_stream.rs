//! A reader for a byte stream of concatenated JSON values.
//!
//! The C++ original sends each JSON object with no delimiter at all, and TCP
//! is free to split one object over two reads or to deliver three objects in
//! one. So the bench never assumes "one read, one message" or "one line, one
//! message": it feeds every chunk it reads into a [`JsonReader`], which hands
//! back each complete value and keeps the unfinished tail for the next chunk.
//! Whitespace (including the newline our server puts after each object) may
//! appear between values and is skipped.
//!
//! The reader is built for many idle connections: a connection whose last
//! read ended exactly on a value boundary holds no buffer at all. Chunks are
//! parsed in place, and only the bytes of an unfinished value are copied.
//!
//! "Not enough bytes yet" is kept apart from "these bytes are not JSON": the
//! first is `Ok` with fewer values, the second is a [`StreamError`].
//!
//! ```
//! use chat_bench::json_stream::JsonReader;
//!
//! let mut reader = JsonReader::new(1 << 20);
//! let mut values = Vec::new();
//! reader.feed(br#"{"msgId":2}{"msgId""#, &mut values).unwrap();
//! assert_eq!(values.len(), 1);
//! reader.feed(b":6}\n", &mut values).unwrap();
//! assert_eq!(values[1]["msgId"], 6);
//! ```

use serde_json::Value;
use std::fmt;

/// Why a stream can no longer be read.
#[derive(Debug)]
pub enum StreamError {
    /// The bytes are not JSON.
    Invalid(serde_json::Error),
    /// An unfinished value grew past the reader's limit.
    TooLarge(usize),
}

impl fmt::Display for StreamError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamError::Invalid(e) => write!(f, "invalid JSON in stream: {e}"),
            StreamError::TooLarge(n) => write!(f, "unfinished JSON value over {n} bytes"),
        }
    }
}

impl std::error::Error for StreamError {}

/// Splits a stream of concatenated JSON values into values.
///
/// Top-level values are expected to be objects or arrays, as everything in
/// this protocol is. A bare number that ends exactly at the end of a chunk is
/// taken as complete, because nothing in the bytes can say otherwise.
#[derive(Debug)]
pub struct JsonReader {
    /// Bytes of a value that has started but not finished; empty (and
    /// unallocated) between values.
    pending: Vec<u8>,
    /// Largest unfinished value accepted before giving up on the stream.
    max_pending: usize,
}

impl JsonReader {
    /// A reader that refuses values longer than `max_value_len` bytes.
    pub fn new(max_value_len: usize) -> Self {
        JsonReader {
            pending: Vec::new(),
            max_pending: max_value_len,
        }
    }

    /// Bytes held from an unfinished value.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Feeds the next chunk of the stream and appends every value it
    /// completes to `out`, in order.
    ///
    /// # Errors
    /// [`StreamError::Invalid`] when the stream is not JSON, and
    /// [`StreamError::TooLarge`] when an unfinished value exceeds the limit.
    /// Values completed before the error are still in `out`; the stream
    /// should then be closed.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<Value>) -> Result<(), StreamError> {
        if self.pending.is_empty() {
            // Fast path: parse straight from the caller's buffer.
            let used = parse_values(chunk, out)?;
            self.keep_tail(&chunk[used..])
        } else {
            self.pending.extend_from_slice(chunk);
            let used = parse_values(&self.pending, out)?;
            if used == self.pending.len() {
                // Drop the allocation: an idle connection should cost nothing.
                self.pending = Vec::new();
            } else {
                self.pending.drain(..used);
            }
            self.check_size()
        }
    }

    fn keep_tail(&mut self, tail: &[u8]) -> Result<(), StreamError> {
        if !tail.is_empty() {
            self.pending.extend_from_slice(tail);
        }
        self.check_size()
    }

    fn check_size(&self) -> Result<(), StreamError> {
        if self.pending.len() > self.max_pending {
            Err(StreamError::TooLarge(self.max_pending))
        } else {
            Ok(())
        }
    }
}

/// Parses as many complete values from `bytes` as it holds and returns how
/// many bytes they (and the whitespace around them) used. Whitespace at the
/// end counts as used, so that an idle reader holds nothing.
fn parse_values(bytes: &[u8], out: &mut Vec<Value>) -> Result<usize, StreamError> {
    let mut used = 0;
    loop {
        used += leading_whitespace(&bytes[used..]);
        if used == bytes.len() {
            return Ok(used);
        }
        let mut values = serde_json::Deserializer::from_slice(&bytes[used..]).into_iter::<Value>();
        match values.next() {
            Some(Ok(value)) => {
                used += values.byte_offset();
                out.push(value);
            }
            Some(Err(e)) if e.is_eof() => return Ok(used),
            Some(Err(e)) => return Err(StreamError::Invalid(e)),
            None => return Ok(bytes.len()),
        }
    }
}

fn leading_whitespace(bytes: &[u8]) -> usize {
    bytes
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\n' | b'\r' | b'\t'))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(reader: &mut JsonReader, chunks: &[&[u8]]) -> Vec<Value> {
        let mut out = Vec::new();
        for chunk in chunks {
            reader.feed(chunk, &mut out).expect("valid stream");
        }
        out
    }

    #[test]
    fn several_values_in_one_chunk_with_and_without_delimiters() {
        let mut reader = JsonReader::new(1024);
        let out = feed_all(&mut reader, &[b"{\"a\":1}{\"a\":2} {\"a\":3}\n{\"a\":4}"]);
        let got: Vec<i64> = out.iter().map(|v| v["a"].as_i64().unwrap_or(-1)).collect();
        assert_eq!(got, [1, 2, 3, 4]);
        assert_eq!(reader.pending_len(), 0);
    }

    #[test]
    fn value_split_across_chunks_at_every_position() {
        let stream = br#"{"msgId":9,"msg":"h\u00e9 {x}","to":[1,2]}"#;
        for cut in 1..stream.len() {
            let mut reader = JsonReader::new(1024);
            let out = feed_all(&mut reader, &[&stream[..cut], &stream[cut..]]);
            assert_eq!(out.len(), 1, "cut at {cut}");
            assert_eq!(out[0]["to"][1], 2);
            assert_eq!(reader.pending_len(), 0);
        }
    }

    #[test]
    fn one_byte_at_a_time() {
        let stream = b"  {\"a\":[1,{\"b\":\"}\"}]}\r\n\t{\"a\":2}\n";
        let mut reader = JsonReader::new(1024);
        let chunks: Vec<&[u8]> = stream.chunks(1).collect();
        let out = feed_all(&mut reader, &chunks);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0]["a"][1]["b"], "}");
        assert_eq!(out[1]["a"], 2);
    }

    #[test]
    fn whitespace_only_chunks_hold_nothing() {
        let mut reader = JsonReader::new(1024);
        let out = feed_all(&mut reader, &[b"\n", b"  \r\n", b"{}", b"\n\n"]);
        assert_eq!(out.len(), 1);
        assert_eq!(reader.pending_len(), 0);
    }

    #[test]
    fn tail_is_kept_after_complete_values() {
        let mut reader = JsonReader::new(1024);
        let mut out = Vec::new();
        reader.feed(br#"{"a":1}{"a":"#, &mut out).expect("valid");
        assert_eq!(out.len(), 1);
        assert_eq!(reader.pending_len(), 5);
        reader.feed(br#"2}{"a":3}"#, &mut out).expect("valid");
        assert_eq!(out.len(), 3);
        assert_eq!(reader.pending_len(), 0);
    }

    #[test]
    fn garbage_is_an_error_after_the_good_values() {
        let mut reader = JsonReader::new(1024);
        let mut out = Vec::new();
        let err = reader.feed(br#"{"a":1} nope"#, &mut out);
        assert!(matches!(err, Err(StreamError::Invalid(_))));
        assert_eq!(out.len(), 1);
    }

    #[test]
    fn garbage_in_a_later_chunk_is_an_error() {
        let mut reader = JsonReader::new(1024);
        let mut out = Vec::new();
        reader.feed(br#"{"a":"#, &mut out).expect("valid so far");
        assert!(reader.feed(b"}", &mut out).is_err());
    }

    #[test]
    fn unfinished_value_over_the_limit_is_an_error() {
        let mut reader = JsonReader::new(16);
        let mut out = Vec::new();
        reader
            .feed(br#"{"a":"0123"#, &mut out)
            .expect("under the limit");
        let err = reader.feed(b"456789abcdef", &mut out);
        assert!(matches!(err, Err(StreamError::TooLarge(16))));
    }
}
