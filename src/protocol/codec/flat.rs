//! A shortcut past the scanner for a flat object that a fast path reads
//! anyway.
//!
//! A chat in the common form is a flat object: strings and numbers, no
//! nested value. Its end is its first `}` outside a string, and the chat
//! fast path's lexer ([`crate::protocol::chat_frame::read`]) checks every
//! byte up to there itself: a string it accepts holds no unescaped `"`, so
//! a `}` inside a string cuts the candidate short and the lexer refuses it.
//! Handing the lexer the bytes up to the first `}` (found with `memchr`)
//! therefore finds the same frame the scanner would, without the scan: a
//! candidate the reader takes is a whole, valid object that ends at that
//! `}`. Anything the reader refuses goes the scanner's way, as before, from
//! the same state; a message split across reads always does (the shortcut
//! runs only at the start of a message, with nothing scanned).

use super::{is_json_whitespace, DecodeError, Decoder, Frame};

/// What the shortcut of [`Decoder::next_frame_or`] made of a frame.
#[derive(Debug)]
pub enum Flat<T> {
    /// The reader took the frame's bytes.
    Read(T),
    /// The reader was given exactly these bytes and refused them: no need
    /// to try it again.
    Refused,
    /// The reader did not see these bytes (the frame is longer than the
    /// candidate, or the shortcut did not run).
    NotTried,
}

impl Decoder {
    /// [`Decoder::next_frame`], with a shortcut: at the start of a message,
    /// `read` is tried first on the bytes from the object's `{` to the
    /// first `}` (see the [module docs](self)). When it takes them, that
    /// is the frame, with the same `consumed` and the same decoder state
    /// the scanner would have given; otherwise the scanner finds the frame
    /// and [`Flat`] says whether `read` already refused exactly its bytes.
    /// `read` must accept only a complete, valid JSON object without
    /// nested values (as the chat fast path's lexer does). The thread that
    /// owns the decoder.
    ///
    /// # Errors
    ///
    /// As [`Decoder::next_frame`].
    pub fn next_frame_or<'a, T>(
        &mut self,
        buf: &'a [u8],
        max_message: usize,
        read: impl FnOnce(&'a [u8]) -> Option<T>,
    ) -> Result<Option<(Frame, Flat<T>)>, DecodeError> {
        let tried = match self.candidate(buf, max_message) {
            Some((start, bytes)) => match read(bytes) {
                Some(t) => return Ok(Some((self.take(buf, start, bytes.len()), Flat::Read(t)))),
                None => Some((start, bytes.len())),
            },
            None => None,
        };
        let frame = self.next_frame(buf, max_message)?;
        Ok(frame.map(|f| {
            let same = tried == Some((f.start, f.len));
            (f, if same { Flat::Refused } else { Flat::NotTried })
        }))
    }

    /// Where the candidate lies: after the leading whitespace, from `{` to
    /// the first `}`, within `max_message` bytes. `None` when a message is
    /// half scanned already, or the bytes are anything else (the scanner
    /// then gives its verdict).
    fn candidate<'a>(&self, buf: &'a [u8], max_message: usize) -> Option<(usize, &'a [u8])> {
        if self.skipped != 0 || self.object.is_some() {
            return None;
        }
        let start = buf.iter().take_while(|&&b| is_json_whitespace(b)).count();
        if self.carried + start > max_message {
            return None;
        }
        let object = buf.get(start..)?;
        if object.first() != Some(&b'{') {
            return None;
        }
        let window = object.get(..object.len().min(max_message))?;
        let end = memchr::memchr(b'}', window)?;
        Some((start, window.get(..=end)?))
    }

    /// Takes the object of `len` bytes at `start` that the reader took:
    /// the frame and the state a complete scan leaves (the bytes up to its
    /// end counted as the scan would have counted them).
    fn take(&mut self, buf: &[u8], start: usize, len: usize) -> Frame {
        self.work += (start + len) as u64;
        let frame = self.complete(buf, start, len);
        self.next_message();
        frame
    }
}
