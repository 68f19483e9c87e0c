//! Buffer unit tests: after every operation, all three regions are checked,
//! as muduo's `Buffer_unittest.cc` does.

use super::*;
use std::io::Write;
use std::os::unix::io::AsRawFd;
use std::os::unix::net::UnixStream;

/// Asserts (readable, writable, prependable).
fn regions(b: &Buffer, readable: usize, writable: usize, prependable: usize) {
    assert_eq!(b.readable_bytes(), readable, "readable");
    assert_eq!(b.writable_bytes(), writable, "writable");
    assert_eq!(b.prependable_bytes(), prependable, "prependable");
}

#[test]
fn append_and_retrieve() {
    let mut b = Buffer::new();
    regions(&b, 0, INITIAL_SIZE, CHEAP_PREPEND);

    let s = vec![b'x'; 200];
    b.append(&s);
    regions(&b, 200, INITIAL_SIZE - 200, CHEAP_PREPEND);

    let got = b.retrieve_as_vec(50);
    assert_eq!(got.len(), 50);
    regions(&b, 150, INITIAL_SIZE - 200, CHEAP_PREPEND + 50);

    b.append(&s);
    regions(&b, 350, INITIAL_SIZE - 400, CHEAP_PREPEND + 50);

    assert_eq!(b.retrieve_all_as_vec().len(), 350);
    regions(&b, 0, INITIAL_SIZE, CHEAP_PREPEND);
}

#[test]
fn grow() {
    let mut b = Buffer::new();
    b.append(&[b'y'; 400]);
    regions(&b, 400, INITIAL_SIZE - 400, CHEAP_PREPEND);
    b.retrieve(50);
    regions(&b, 350, INITIAL_SIZE - 400, CHEAP_PREPEND + 50);
    b.append(&[b'z'; 1000]);
    // Not enough room even after sliding: the vector grows exactly enough.
    regions(&b, 1350, 0, CHEAP_PREPEND + 50);
    b.retrieve_all();
    regions(&b, 0, 1400, CHEAP_PREPEND);
}

#[test]
fn inside_grow_slides_instead_of_growing() {
    let mut b = Buffer::new();
    b.append(&[b'y'; 800]);
    regions(&b, 800, INITIAL_SIZE - 800, CHEAP_PREPEND);
    b.retrieve(500);
    regions(&b, 300, INITIAL_SIZE - 800, CHEAP_PREPEND + 500);
    b.append(&[b'z'; 300]);
    regions(&b, 600, INITIAL_SIZE - 600, CHEAP_PREPEND);
    assert_eq!(&b.peek()[..300], &[b'y'; 300][..]);
    assert_eq!(&b.peek()[300..], &[b'z'; 300][..]);
}

#[test]
fn shrink() {
    let mut b = Buffer::new();
    b.append(&[b'y'; 2000]);
    regions(&b, 2000, 0, CHEAP_PREPEND);
    b.retrieve(1500);
    regions(&b, 500, 0, CHEAP_PREPEND + 1500);
    b.shrink(0);
    regions(&b, 500, 0, CHEAP_PREPEND);
    assert_eq!(b.retrieve_all_as_vec(), vec![b'y'; 500]);
    regions(&b, 0, 500, CHEAP_PREPEND);
}

#[test]
fn shrink_gives_a_large_message_back() {
    let mut b = Buffer::new();
    b.append(&vec![b'm'; 1 << 20]);
    assert!(b.internal_capacity() >= CHEAP_PREPEND + (1 << 20));
    b.retrieve((1 << 20) - 3);
    regions(&b, 3, 0, CHEAP_PREPEND + (1 << 20) - 3);
    b.shrink(INITIAL_SIZE);
    regions(&b, 3, INITIAL_SIZE, CHEAP_PREPEND);
    assert_eq!(b.internal_capacity(), CHEAP_PREPEND + 3 + INITIAL_SIZE);
    assert_eq!(b.peek(), b"mmm");
    // It grows again as before.
    b.append(&[b'n'; 2 * INITIAL_SIZE]);
    regions(&b, 3 + 2 * INITIAL_SIZE, 0, CHEAP_PREPEND);
}

#[test]
fn prepend() {
    let mut b = Buffer::new();
    b.append(&[b'y'; 200]);
    regions(&b, 200, INITIAL_SIZE - 200, CHEAP_PREPEND);
    b.prepend_i32(200);
    regions(&b, 204, INITIAL_SIZE - 200, CHEAP_PREPEND - 4);
    assert_eq!(b.read_i32(), Some(200));
    regions(&b, 200, INITIAL_SIZE - 200, CHEAP_PREPEND);
}

#[test]
fn integers_round_trip_big_endian() {
    let mut b = Buffer::new();
    b.append_i8(-2);
    b.append_i16(-300);
    b.append_i32(0x0102_0304);
    b.append_i64(-5_000_000_000);
    regions(&b, 15, INITIAL_SIZE - 15, CHEAP_PREPEND);
    assert_eq!(&b.peek()[3..7], &[1, 2, 3, 4]);
    assert_eq!(b.peek_i8(), Some(-2));
    assert_eq!(b.read_i8(), Some(-2));
    assert_eq!(b.read_i16(), Some(-300));
    assert_eq!(b.read_i32(), Some(0x0102_0304));
    assert_eq!(b.peek_i64(), Some(-5_000_000_000));
    assert_eq!(b.read_i64(), Some(-5_000_000_000));
    regions(&b, 0, INITIAL_SIZE, CHEAP_PREPEND);
    assert_eq!(b.read_i32(), None, "nothing left to read");
}

#[test]
fn find_eol_and_crlf() {
    let mut b = Buffer::new();
    b.append(b"GET / HTTP/1.1\r\nHost: x\n");
    assert_eq!(b.find_crlf(), Some(14));
    assert_eq!(b.find_eol(), Some(15));
    b.retrieve(16);
    assert_eq!(b.find_crlf(), None);
    assert_eq!(b.find_eol(), Some(7));
}

#[test]
fn begin_write_and_unwrite() {
    let mut b = Buffer::new();
    b.begin_write()[..5].copy_from_slice(b"hello");
    b.has_written(5);
    regions(&b, 5, INITIAL_SIZE - 5, CHEAP_PREPEND);
    b.unwrite(2);
    assert_eq!(b.peek(), b"hel");
    regions(&b, 3, INITIAL_SIZE - 3, CHEAP_PREPEND);
}

#[test]
fn read_fd_small_and_into_extra_buffer() {
    let (mut tx, rx) = UnixStream::pair().unwrap();
    let mut b = Buffer::new();

    tx.write_all(b"hello").unwrap();
    assert_eq!(b.read_fd(rx.as_raw_fd()).unwrap(), 5);
    regions(&b, 5, INITIAL_SIZE - 5, CHEAP_PREPEND);

    // More than the writable region: the rest lands in the stack array and
    // is appended, growing the buffer.
    let big: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
    tx.write_all(&big).unwrap();
    let mut got = 0;
    while got < big.len() {
        got += b.read_fd(rx.as_raw_fd()).unwrap();
    }
    assert_eq!(b.readable_bytes(), 5005);
    assert_eq!(&b.peek()[..5], b"hello");
    assert_eq!(&b.peek()[5..], &big[..]);

    drop(tx);
    assert_eq!(b.read_fd(rx.as_raw_fd()).unwrap(), 0, "EOF reads zero");
}
