//! `Buffer`: muduo's application-level byte buffer.
//!
//! A TCP stream has no message boundaries, so every connection keeps an
//! input buffer (bytes read but not yet consumed by the codec) and an output
//! buffer (bytes the application sent but the kernel has not yet taken).
//! Both are a `Buffer`: one contiguous `Vec<u8>` cut into three regions by
//! two indices.
//!
//! ```text
//! +-------------------+------------------+------------------+
//! | prependable bytes |  readable bytes  |  writable bytes  |
//! |                   |     (CONTENT)    |                  |
//! +-------------------+------------------+------------------+
//! |                   |                  |                  |
//! 0      <=      reader_index   <=   writer_index   <=    len
//! ```
//!
//! * Reading (`retrieve`) moves `reader_index` right; when everything has
//!   been read both indices jump back to [`CHEAP_PREPEND`].
//! * Writing (`append`) fills the writable region and moves `writer_index`.
//!   When it is too small the buffer first slides its content left over the
//!   space freed by earlier reads, and only grows the vector when that is not
//!   enough.
//! * The first [`CHEAP_PREPEND`] bytes are kept free so a codec can put a
//!   length header in front of a message it has already appended
//!   ([`Buffer::prepend`]) without moving the message.
//!
//! [`Buffer::read_fd`] is muduo's `readFd`: a single `readv` into the
//! writable region plus a 64 KiB array on the stack, so a connection's buffer
//! can start small and still take a large burst in one system call.

use std::io;
use std::mem::MaybeUninit;
use std::os::unix::io::RawFd;

/// Bytes kept free in front of the content for [`Buffer::prepend`].
pub const CHEAP_PREPEND: usize = 8;
/// Initial size of the writable region.
pub const INITIAL_SIZE: usize = 1024;
/// Size of the stack array `read_fd` reads into when the buffer is short.
const EXTRA_BUF: usize = 65536;

/// A growable byte buffer with cheap prepend, as muduo's `net::Buffer`.
///
/// Not thread-safe by itself. A connection's input buffer is used only on
/// its loop thread; its output buffer sits behind the connection's output
/// lock, which sending threads take too (see `TcpConnection`).
#[derive(Debug, Clone)]
pub struct Buffer {
    buf: Vec<u8>,
    reader_index: usize,
    writer_index: usize,
}

impl Default for Buffer {
    fn default() -> Self {
        Self::new()
    }
}

impl Buffer {
    /// An empty buffer with [`INITIAL_SIZE`] writable bytes.
    pub fn new() -> Self {
        Self::with_capacity(INITIAL_SIZE)
    }

    /// An empty buffer with `initial` writable bytes.
    pub fn with_capacity(initial: usize) -> Self {
        Buffer {
            buf: vec![0; CHEAP_PREPEND + initial],
            reader_index: CHEAP_PREPEND,
            writer_index: CHEAP_PREPEND,
        }
    }

    /// Bytes appended and not yet retrieved.
    pub fn readable_bytes(&self) -> usize {
        self.writer_index - self.reader_index
    }

    /// Bytes that can be appended without moving or growing.
    pub fn writable_bytes(&self) -> usize {
        self.buf.len() - self.writer_index
    }

    /// Bytes in front of the content (at least [`CHEAP_PREPEND`] after a reset).
    pub fn prependable_bytes(&self) -> usize {
        self.reader_index
    }

    /// `true` when there is nothing to read.
    pub fn is_empty(&self) -> bool {
        self.readable_bytes() == 0
    }

    /// The readable bytes, without consuming them.
    pub fn peek(&self) -> &[u8] {
        &self.buf[self.reader_index..self.writer_index]
    }

    /// Consumes `len` readable bytes (all of them if `len` is larger).
    pub fn retrieve(&mut self, len: usize) {
        if len < self.readable_bytes() {
            self.reader_index += len;
        } else {
            self.retrieve_all();
        }
    }

    /// Consumes everything; both indices return to [`CHEAP_PREPEND`].
    pub fn retrieve_all(&mut self) {
        self.reader_index = CHEAP_PREPEND;
        self.writer_index = CHEAP_PREPEND;
    }

    /// Consumes `len` bytes and returns them.
    pub fn retrieve_as_vec(&mut self, len: usize) -> Vec<u8> {
        let len = len.min(self.readable_bytes());
        let out = self.peek()[..len].to_vec();
        self.retrieve(len);
        out
    }

    /// Consumes everything and returns it.
    pub fn retrieve_all_as_vec(&mut self) -> Vec<u8> {
        self.retrieve_as_vec(self.readable_bytes())
    }

    /// Consumes everything and returns it as text (invalid UTF-8 is replaced).
    pub fn retrieve_all_as_string(&mut self) -> String {
        let s = String::from_utf8_lossy(self.peek()).into_owned();
        self.retrieve_all();
        s
    }

    /// Appends `data` after the readable bytes.
    pub fn append(&mut self, data: &[u8]) {
        self.ensure_writable(data.len());
        self.buf[self.writer_index..self.writer_index + data.len()].copy_from_slice(data);
        self.writer_index += data.len();
    }

    /// Makes room for at least `len` writable bytes.
    pub fn ensure_writable(&mut self, len: usize) {
        if self.writable_bytes() < len {
            self.make_space(len);
        }
    }

    /// The writable region, to fill before calling [`Buffer::has_written`].
    pub fn begin_write(&mut self) -> &mut [u8] {
        &mut self.buf[self.writer_index..]
    }

    /// Marks `len` bytes of the writable region as readable.
    ///
    /// # Panics
    /// If `len` exceeds [`Buffer::writable_bytes`].
    pub fn has_written(&mut self, len: usize) {
        assert!(len <= self.writable_bytes());
        self.writer_index += len;
    }

    /// Removes the last `len` readable bytes.
    pub fn unwrite(&mut self, len: usize) {
        let len = len.min(self.readable_bytes());
        self.writer_index -= len;
    }

    /// Puts `data` in front of the readable bytes.
    ///
    /// # Panics
    /// If `data` is longer than [`Buffer::prependable_bytes`].
    pub fn prepend(&mut self, data: &[u8]) {
        assert!(data.len() <= self.prependable_bytes());
        self.reader_index -= data.len();
        self.buf[self.reader_index..self.reader_index + data.len()].copy_from_slice(data);
    }

    /// Releases memory beyond the content plus `reserve` writable bytes, as
    /// muduo's `Buffer::shrink(reserve)`: the readable bytes move into a new
    /// vector of exactly `CHEAP_PREPEND + readable + reserve` bytes and the
    /// old one is freed. A connection calls it on its input buffer after a
    /// large message has been consumed, and on its output buffer after a
    /// large backlog has drained.
    pub fn shrink(&mut self, reserve: usize) {
        let content = self.readable_bytes();
        let mut fresh = Vec::with_capacity(CHEAP_PREPEND + content + reserve);
        fresh.resize(CHEAP_PREPEND, 0);
        fresh.extend_from_slice(self.peek());
        fresh.resize(CHEAP_PREPEND + content + reserve, 0);
        self.buf = fresh;
        self.reader_index = CHEAP_PREPEND;
        self.writer_index = CHEAP_PREPEND + content;
    }

    /// Size of the underlying vector, for tests and memory accounting.
    pub fn internal_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Position (relative to [`Buffer::peek`]) of the first `"\r\n"`.
    pub fn find_crlf(&self) -> Option<usize> {
        self.peek().windows(2).position(|w| w == b"\r\n")
    }

    /// Position (relative to [`Buffer::peek`]) of the first `'\n'`.
    pub fn find_eol(&self) -> Option<usize> {
        self.peek().iter().position(|&b| b == b'\n')
    }

    fn make_space(&mut self, len: usize) {
        if self.writable_bytes() + self.prependable_bytes() < len + CHEAP_PREPEND {
            // Not enough even after sliding: grow.
            self.buf.resize(self.writer_index + len, 0);
        } else {
            // Slide the content to the front, reusing what reads freed.
            let readable = self.readable_bytes();
            self.buf
                .copy_within(self.reader_index..self.writer_index, CHEAP_PREPEND);
            self.reader_index = CHEAP_PREPEND;
            self.writer_index = CHEAP_PREPEND + readable;
        }
    }

    /// Reads once from `fd` with `readv` into the writable region and, when
    /// that is shorter than 64 KiB, a 64 KiB stack array whose bytes are then
    /// appended. Returns the byte count (0 means end of stream).
    ///
    /// One call reads at most `writable_bytes() + 64 KiB`; a result shorter
    /// than that means the socket had no more data for now, which matters on
    /// an edge-triggered poller (see `TcpConnection`).
    ///
    /// # Errors
    /// The `readv` error, including `WouldBlock` on a non-blocking socket.
    pub fn read_fd(&mut self, fd: RawFd) -> io::Result<usize> {
        let mut extra: [MaybeUninit<u8>; EXTRA_BUF] = [MaybeUninit::uninit(); EXTRA_BUF];
        let writable = self.writable_bytes();
        let iov = [
            libc::iovec {
                iov_base: self.buf[self.writer_index..].as_mut_ptr().cast(),
                iov_len: writable,
            },
            libc::iovec {
                iov_base: extra.as_mut_ptr().cast(),
                iov_len: EXTRA_BUF,
            },
        ];
        // When the buffer already offers 64 KiB, the extra array is not used,
        // as in muduo: one read never takes more than that anyway.
        let iovcnt = if writable < EXTRA_BUF { 2 } else { 1 };
        // SAFETY: both iovecs point at memory we own for the duration of the
        // call (the vector's writable tail and the stack array), with their
        // exact lengths; readv writes at most that much and returns how much.
        let n = unsafe { libc::readv(fd, iov.as_ptr(), iovcnt) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = n as usize;
        if n <= writable {
            self.writer_index += n;
        } else {
            self.writer_index = self.buf.len();
            // SAFETY: readv initialised the first `n - writable` bytes of `extra`.
            let tail =
                unsafe { std::slice::from_raw_parts(extra.as_ptr().cast::<u8>(), n - writable) };
            self.append(tail);
        }
        Ok(n)
    }

    /// Upper bound of what one [`Buffer::read_fd`] call can read right now.
    pub fn read_fd_capacity(&self) -> usize {
        let writable = self.writable_bytes();
        if writable < EXTRA_BUF {
            writable + EXTRA_BUF
        } else {
            writable
        }
    }
}

/// Big-endian integer helpers (network byte order), as muduo's
/// `appendInt32`/`peekInt32`/`readInt32`/`prependInt32` family.
macro_rules! int_helpers {
    ($t:ty, $append:ident, $prepend:ident, $peek:ident, $read:ident) => {
        impl Buffer {
            /// Appends the integer in network byte order.
            pub fn $append(&mut self, x: $t) {
                self.append(&x.to_be_bytes());
            }
            /// Prepends the integer in network byte order.
            pub fn $prepend(&mut self, x: $t) {
                self.prepend(&x.to_be_bytes());
            }
            /// Reads the integer at the front without consuming it;
            /// `None` when fewer bytes are readable.
            pub fn $peek(&self) -> Option<$t> {
                const N: usize = std::mem::size_of::<$t>();
                let bytes: [u8; N] = self.peek().get(..N)?.try_into().ok()?;
                Some(<$t>::from_be_bytes(bytes))
            }
            /// Reads and consumes the integer at the front.
            pub fn $read(&mut self) -> Option<$t> {
                let x = self.$peek()?;
                self.retrieve(std::mem::size_of::<$t>());
                Some(x)
            }
        }
    };
}
int_helpers!(i8, append_i8, prepend_i8, peek_i8, read_i8);
int_helpers!(i16, append_i16, prepend_i16, peek_i16, read_i16);
int_helpers!(i32, append_i32, prepend_i32, peek_i32, read_i32);
int_helpers!(i64, append_i64, prepend_i64, peek_i64, read_i64);

#[cfg(test)]
mod tests;
