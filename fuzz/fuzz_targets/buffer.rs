//! Fuzz target: net's `Buffer`, against a model.
//!
//! [`arbitrary`] turns the input into a list of [`Op`]s: appends small and
//! large, retrieves of every kind, prepends, writes through `begin_write`
//! and `has_written`, `unwrite`, `shrink`, the big-endian integer helpers,
//! and `read_fd` from a pipe (its `readv` into the writable region and the
//! 64 KiB stack array, the one `unsafe` code in `Buffer`). Each runs on a
//! `Buffer` and on the model, a `Vec<u8>` of the readable bytes; after each,
//! every region is checked, as muduo's `Buffer_unittest.cc` does:
//!
//! - `peek()` is the model, `readable_bytes()` its length, `find_crlf()`
//!   and `find_eol()` find what a search of the model finds;
//! - the three regions fit in the vector, a buffer read to the end is back
//!   at `CHEAP_PREPEND`, `ensure_writable(n)` leaves `n` writable, `shrink(r)`
//!   leaves exactly `r`, `prepend` takes its bytes from the prependable
//!   region and `read_fd_capacity` is what its documentation says.
//!
//! A prepend longer than the prependable region and a `has_written` beyond
//! the writable one panic by contract, so the target does not ask for them.

#![no_main]

use std::os::unix::io::RawFd;
use std::sync::OnceLock;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use net::buffer::{Buffer, CHEAP_PREPEND};

/// Readable bytes beyond which the large appends (`AppendRepeat`, `ReadFd`)
/// are skipped, so that every check after every operation stays cheap. One
/// more large append still grows the vector past 64 KiB, so `read_fd` is
/// reached with more than 64 KiB writable (one `iovec`) as well as less.
const MODEL_LIMIT: usize = 16 * 1024;

/// One operation on the buffer and the model. Lengths are `u16`, so that
/// one operation can cross the 64 KiB of `read_fd`'s extra array.
#[derive(Arbitrary, Debug)]
enum Op {
    Append(Vec<u8>),
    /// `len` copies of `byte`: growth without a long input.
    AppendRepeat {
        byte: u8,
        len: u16,
    },
    Retrieve(u16),
    RetrieveAll,
    RetrieveAsVec(u16),
    RetrieveAllAsVec,
    RetrieveAllAsString,
    Prepend(Vec<u8>),
    EnsureWritable(u16),
    /// Fill `len` bytes (modulo what is writable) of `begin_write`'s region.
    Write {
        byte: u8,
        len: u16,
    },
    Unwrite(u16),
    Shrink(u16),
    Int(IntOp),
    /// `len` copies of `byte` written to a pipe, then one `read_fd`.
    ReadFd {
        byte: u8,
        len: u16,
    },
}

/// The integer helpers, one width at a time.
#[derive(Arbitrary, Debug)]
enum IntOp {
    Append8(i8),
    Append16(i16),
    Append32(i32),
    Append64(i64),
    Prepend8(i8),
    Prepend16(i16),
    Prepend32(i32),
    Prepend64(i64),
    Peek8,
    Peek16,
    Peek32,
    Peek64,
    Read8,
    Read16,
    Read32,
    Read64,
}

/// The pipe `ReadFd` goes through: created once, non-blocking, and empty
/// between operations (all that is written is read back at once).
fn pipe() -> [RawFd; 2] {
    static PIPE: OnceLock<[RawFd; 2]> = OnceLock::new();
    *PIPE.get_or_init(|| {
        let mut fds = [0; 2];
        // SAFETY: `fds` is an array of two descriptors, as pipe2 wants.
        let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) };
        assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
        fds
    })
}

/// Writes all of `data` to the pipe (at most 64 KiB - 1, which fits).
fn write_pipe(fd: RawFd, data: &[u8]) {
    let mut rest = data;
    while !rest.is_empty() {
        // SAFETY: `rest` is valid for `rest.len()` bytes.
        let n = unsafe { libc::write(fd, rest.as_ptr().cast(), rest.len()) };
        assert!(n > 0, "write to pipe: {}", std::io::Error::last_os_error());
        rest = &rest[n as usize..];
    }
}

/// `read_fd` of `len` bytes that were just written to the pipe.
fn read_fd(buf: &mut Buffer, model: &mut Vec<u8>, byte: u8, len: u16) {
    let [read_end, write_end] = pipe();
    let data = vec![byte; usize::from(len)];
    let capacity = buf.read_fd_capacity();
    write_pipe(write_end, &data);
    match buf.read_fd(read_end) {
        Ok(n) => {
            // The pipe holds less than one call can take: all of it comes.
            assert!(n <= capacity, "read {n} beyond capacity {capacity}");
            assert_eq!(n, data.len(), "short read_fd from a pipe");
            model.extend_from_slice(&data);
        }
        Err(e) => {
            assert!(data.is_empty(), "read_fd failed with data waiting: {e}");
            assert_eq!(e.kind(), std::io::ErrorKind::WouldBlock);
        }
    }
}

/// Runs one integer helper on both sides.
fn int_op(buf: &mut Buffer, model: &mut Vec<u8>, op: IntOp) {
    /// The model's view of a big-endian integer at the front.
    fn front<const N: usize>(model: &[u8]) -> Option<[u8; N]> {
        model.get(..N)?.try_into().ok()
    }
    fn prepend(buf: &mut Buffer, model: &mut Vec<u8>, bytes: &[u8], op: impl FnOnce(&mut Buffer)) {
        if bytes.len() <= buf.prependable_bytes() {
            op(buf);
            model.splice(..0, bytes.iter().copied());
        }
    }
    fn read(model: &mut Vec<u8>, got: Option<Vec<u8>>, n: usize) {
        let expected = model.get(..n).map(<[u8]>::to_vec);
        assert_eq!(got, expected);
        if expected.is_some() {
            model.drain(..n);
        }
    }
    match op {
        IntOp::Append8(x) => {
            buf.append_i8(x);
            model.extend(x.to_be_bytes());
        }
        IntOp::Append16(x) => {
            buf.append_i16(x);
            model.extend(x.to_be_bytes());
        }
        IntOp::Append32(x) => {
            buf.append_i32(x);
            model.extend(x.to_be_bytes());
        }
        IntOp::Append64(x) => {
            buf.append_i64(x);
            model.extend(x.to_be_bytes());
        }
        IntOp::Prepend8(x) => prepend(buf, model, &x.to_be_bytes(), |b| b.prepend_i8(x)),
        IntOp::Prepend16(x) => prepend(buf, model, &x.to_be_bytes(), |b| b.prepend_i16(x)),
        IntOp::Prepend32(x) => prepend(buf, model, &x.to_be_bytes(), |b| b.prepend_i32(x)),
        IntOp::Prepend64(x) => prepend(buf, model, &x.to_be_bytes(), |b| b.prepend_i64(x)),
        IntOp::Peek8 => assert_eq!(buf.peek_i8(), front(model).map(i8::from_be_bytes)),
        IntOp::Peek16 => assert_eq!(buf.peek_i16(), front(model).map(i16::from_be_bytes)),
        IntOp::Peek32 => assert_eq!(buf.peek_i32(), front(model).map(i32::from_be_bytes)),
        IntOp::Peek64 => assert_eq!(buf.peek_i64(), front(model).map(i64::from_be_bytes)),
        IntOp::Read8 => {
            let got = buf.read_i8().map(|x| x.to_be_bytes().to_vec());
            read(model, got, 1)
        }
        IntOp::Read16 => {
            let got = buf.read_i16().map(|x| x.to_be_bytes().to_vec());
            read(model, got, 2)
        }
        IntOp::Read32 => {
            let got = buf.read_i32().map(|x| x.to_be_bytes().to_vec());
            read(model, got, 4)
        }
        IntOp::Read64 => {
            let got = buf.read_i64().map(|x| x.to_be_bytes().to_vec());
            read(model, got, 8)
        }
    }
}

/// Runs one operation on both sides and checks what is particular to it.
fn apply(buf: &mut Buffer, model: &mut Vec<u8>, op: Op) {
    match op {
        Op::Append(data) => {
            buf.append(&data);
            model.extend_from_slice(&data);
        }
        Op::AppendRepeat { byte, len } => {
            if model.len() < MODEL_LIMIT {
                let data = vec![byte; usize::from(len)];
                buf.append(&data);
                model.extend_from_slice(&data);
            }
        }
        Op::Retrieve(n) => {
            buf.retrieve(usize::from(n));
            model.drain(..usize::from(n).min(model.len()));
            if model.is_empty() {
                // Reading everything puts both indices back at the start.
                assert_eq!(buf.prependable_bytes(), CHEAP_PREPEND);
            }
        }
        Op::RetrieveAll => {
            buf.retrieve_all();
            model.clear();
            assert_eq!(buf.prependable_bytes(), CHEAP_PREPEND);
        }
        Op::RetrieveAsVec(n) => {
            let n = usize::from(n).min(model.len());
            assert_eq!(buf.retrieve_as_vec(n), model.drain(..n).collect::<Vec<_>>());
        }
        Op::RetrieveAllAsVec => assert_eq!(buf.retrieve_all_as_vec(), std::mem::take(model)),
        Op::RetrieveAllAsString => {
            let expected = String::from_utf8_lossy(model).into_owned();
            assert_eq!(buf.retrieve_all_as_string(), expected);
            model.clear();
        }
        Op::Prepend(data) => {
            let before = buf.prependable_bytes();
            if data.len() <= before {
                buf.prepend(&data);
                model.splice(..0, data.iter().copied());
                assert_eq!(buf.prependable_bytes(), before - data.len());
            }
        }
        Op::EnsureWritable(n) => {
            buf.ensure_writable(usize::from(n));
            assert!(buf.writable_bytes() >= usize::from(n));
        }
        Op::Write { byte, len } => {
            let region = buf.begin_write();
            assert_eq!(region.len(), buf.writable_bytes());
            let n = usize::from(len) % (buf.writable_bytes() + 1);
            buf.begin_write()[..n].fill(byte);
            buf.has_written(n);
            model.extend(std::iter::repeat_n(byte, n));
        }
        Op::Unwrite(n) => {
            buf.unwrite(usize::from(n));
            model.truncate(model.len().saturating_sub(usize::from(n)));
        }
        Op::Shrink(reserve) => {
            buf.shrink(usize::from(reserve));
            assert_eq!(buf.writable_bytes(), usize::from(reserve));
            assert_eq!(buf.prependable_bytes(), CHEAP_PREPEND);
        }
        Op::Int(op) => int_op(buf, model, op),
        Op::ReadFd { byte, len } => {
            if model.len() < MODEL_LIMIT {
                read_fd(buf, model, byte, len);
            }
        }
    }
}

/// Checks every region of the buffer against the model.
fn check_regions(buf: &Buffer, model: &[u8]) {
    assert_eq!(buf.peek(), model);
    assert_eq!(buf.readable_bytes(), model.len());
    assert_eq!(buf.is_empty(), model.is_empty());
    let regions = buf.prependable_bytes() + buf.readable_bytes() + buf.writable_bytes();
    assert!(
        regions <= buf.internal_capacity(),
        "{regions} bytes of regions"
    );
    let crlf = model.windows(2).position(|w| w == b"\r\n");
    assert_eq!(buf.find_crlf(), crlf);
    assert_eq!(buf.find_eol(), model.iter().position(|&b| b == b'\n'));
    let writable = buf.writable_bytes();
    let extra = if writable < 65536 { 65536 } else { 0 };
    assert_eq!(buf.read_fd_capacity(), writable + extra);
}

fuzz_target!(|input: (u16, Vec<Op>)| {
    let (initial, ops) = input;
    let mut buf = Buffer::with_capacity(usize::from(initial % 4096));
    let mut model = Vec::new();
    check_regions(&buf, &model);
    for op in ops {
        apply(&mut buf, &mut model, op);
        check_regions(&buf, &model);
    }
});
