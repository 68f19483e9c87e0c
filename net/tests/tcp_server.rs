//! TcpServer and TcpConnection over real loopback sockets.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::*;
use net::TcpConnectionPtr;
use parking_lot::Mutex;

fn echo_server(threads: usize) -> TestServer {
    start_server(threads, |s| {
        s.set_message_callback(|conn, buf, _| conn.send_buffer(buf));
    })
}

#[test]
fn echo_1000_concurrent_clients() {
    let server = echo_server(2);
    let mut clients: Vec<TcpStream> = (0..1000).map(|_| connect(server.addr)).collect();
    for (i, c) in clients.iter_mut().enumerate() {
        write_all(c, format!("client {:04} says hello\n", i).as_bytes());
    }
    for (i, c) in clients.iter_mut().enumerate() {
        let expected = format!("client {:04} says hello\n", i);
        assert_eq!(read_n(c, expected.len()), expected.as_bytes());
    }
}

#[test]
fn send_from_another_thread_preserves_order() {
    const N: u32 = 20_000;
    let server = start_server(1, |s| {
        s.set_connection_callback(|conn| {
            if conn.connected() {
                let conn = conn.clone();
                std::thread::spawn(move || {
                    for i in 0..N {
                        conn.send(&i.to_be_bytes());
                    }
                });
            }
        });
    });
    let mut c = connect(server.addr);
    let data = read_n(&mut c, 4 * N as usize);
    for (i, chunk) in data.chunks(4).enumerate() {
        let got = u32::from_be_bytes(chunk.try_into().unwrap());
        assert_eq!(got, i as u32, "message {} out of order", i);
    }
}

/// `send` from a foreign thread writes on that thread, under the socket
/// lock, instead of queueing for the loop: it arrives while the loop is
/// stuck in a long callback.
#[test]
fn a_send_from_another_thread_does_not_wait_for_the_loop() {
    let (conn_tx, conn_rx) = mpsc::channel();
    let conn_tx = Mutex::new(conn_tx);
    let server = start_server(1, move |s| {
        s.set_connection_callback(move |conn| {
            if conn.connected() {
                let _ = conn_tx.lock().send(conn.clone());
            }
        });
    });
    let mut c = connect(server.addr);
    let conn = conn_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let (busy_tx, busy_rx) = mpsc::channel();
    conn.get_loop().queue_in_loop(move |_| {
        let _ = busy_tx.send(());
        let _ = release_rx.recv_timeout(Duration::from_secs(20));
    });
    busy_rx.recv_timeout(Duration::from_secs(10)).unwrap();
    conn.send(b"while the loop is busy");
    assert_eq!(read_n(&mut c, 22), b"while the loop is busy");
    release_tx.send(()).unwrap();
}

/// Several threads send at once, more than the socket takes, so some sends
/// write directly and others append to the output buffer that the loop
/// flushes. Every message arrives whole, and each thread's in its order.
#[test]
fn concurrent_senders_never_tear_or_reorder_messages() {
    const THREADS: u8 = 4;
    const PER_THREAD: u32 = 4_000;
    const BODY: usize = 1020; // + 4-byte header = 1 KiB per message
    let server = start_server(1, |s| {
        s.set_connection_callback(|conn| {
            if !conn.connected() {
                return;
            }
            for t in 0..THREADS {
                let conn = conn.clone();
                std::thread::spawn(move || {
                    for seq in 0..PER_THREAD {
                        let mut msg = Vec::with_capacity(4 + BODY);
                        msg.push(t);
                        msg.extend_from_slice(&seq.to_be_bytes()[1..]);
                        msg.extend(std::iter::repeat_n(t.wrapping_add(seq as u8), BODY));
                        conn.send(&msg);
                    }
                });
            }
        });
    });
    let mut c = connect(server.addr);
    let mut next = [0u32; THREADS as usize];
    for _ in 0..THREADS as u32 * PER_THREAD {
        let msg = read_n(&mut c, 4 + BODY);
        let t = msg[0];
        let seq = u32::from_be_bytes([0, msg[1], msg[2], msg[3]]);
        assert!(t < THREADS, "torn message: header {:?}", &msg[..4]);
        assert_eq!(seq, next[t as usize], "thread {t} out of order");
        assert!(
            msg[4..].iter().all(|&b| b == t.wrapping_add(seq as u8)),
            "torn body in message {seq} of thread {t}"
        );
        next[t as usize] += 1;
    }
}

#[test]
fn shutdown_after_large_send_delivers_everything_then_eof() {
    const SIZE: usize = 10 * 1024 * 1024;
    let server = start_server(2, |s| {
        s.set_connection_callback(|conn| {
            if conn.connected() {
                let data: Vec<u8> = (0..SIZE).map(|i| (i % 251) as u8).collect();
                conn.send(&data);
                conn.shutdown();
            }
        });
    });
    let mut c = connect(server.addr);
    let mut got = Vec::with_capacity(SIZE);
    c.read_to_end(&mut got).unwrap(); // returns at EOF
    assert_eq!(got.len(), SIZE);
    assert!(got.iter().enumerate().all(|(i, &b)| b == (i % 251) as u8));
}

#[test]
fn high_water_mark_fires_for_a_reader_that_does_not_read() {
    const MARK: usize = 1024 * 1024;
    let (tx, rx) = mpsc::channel::<usize>();
    let tx = Mutex::new(tx);
    let server = start_server(1, move |s| {
        s.set_high_water_mark_callback(
            move |_conn, len| {
                let _ = tx.lock().send(len);
            },
            MARK,
        );
        s.set_connection_callback(|conn| {
            if conn.connected() {
                let chunk = vec![7u8; 64 * 1024];
                for _ in 0..128 {
                    conn.send(&chunk); // 8 MiB, far more than the socket buffers
                }
            }
        });
    });
    let _c = connect(server.addr); // never reads
    let len = rx
        .recv_timeout(IO_TIMEOUT)
        .expect("high-water mark callback");
    assert!(len >= MARK, "reported {} bytes queued", len);
}

#[test]
fn peer_reset_closes_cleanly_and_server_keeps_serving() {
    let downs = Arc::new(AtomicUsize::new(0));
    let d = downs.clone();
    let server = start_server(2, move |s| {
        s.set_connection_callback(move |conn| {
            if !conn.connected() {
                d.fetch_add(1, Ordering::SeqCst);
            }
        });
        s.set_message_callback(|conn, buf, _| conn.send_buffer(buf));
    });
    for _ in 0..10 {
        let mut c = connect(server.addr);
        write_all(&mut c, b"ping");
        assert_eq!(read_n(&mut c, 4), b"ping");
        // SO_LINGER 0 turns close() into a RST.
        socket2::SockRef::from(&c)
            .set_linger(Some(Duration::ZERO))
            .unwrap();
        drop(c);
    }
    assert!(wait_until(|| downs.load(Ordering::SeqCst) == 10));
    let mut c = connect(server.addr);
    write_all(&mut c, b"still here");
    assert_eq!(read_n(&mut c, 10), b"still here");
}

#[test]
fn connections_land_round_robin_across_sub_loops() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let server = start_server(4, move |s| {
        s.set_connection_callback(move |conn| {
            if conn.connected() {
                s2.lock().push(conn.get_loop().id());
                conn.send(b"k");
            }
        });
    });
    let io_ids: Vec<u64> = server.io_loops.iter().map(|l| l.id()).collect();
    assert_eq!(io_ids.len(), 4);
    let mut keep = Vec::new();
    for _ in 0..8 {
        let mut c = connect(server.addr);
        assert_eq!(read_n(&mut c, 1), b"k"); // established before the next one
        keep.push(c);
    }
    let seen = seen.lock().clone();
    let expected: Vec<u64> = io_ids.iter().chain(io_ids.iter()).copied().collect();
    assert_eq!(
        seen, expected,
        "the main loop hands out connections in turn"
    );
    assert!(!io_ids.contains(&server.main_loop.id()));
}

#[test]
fn zero_threads_means_everything_on_the_main_loop() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let server = start_server(0, move |s| {
        s.set_connection_callback(move |conn| {
            if conn.connected() {
                s2.lock().push(conn.get_loop().id());
            }
        });
        s.set_message_callback(|conn, buf, _| conn.send_buffer(buf));
    });
    let mut c = connect(server.addr);
    write_all(&mut c, b"abc");
    assert_eq!(read_n(&mut c, 3), b"abc");
    assert_eq!(*seen.lock(), vec![server.main_loop.id()]);
}

#[test]
fn context_holds_per_connection_state() {
    struct Counter(AtomicUsize);
    let server = start_server(1, |s| {
        s.set_connection_callback(|conn| {
            if conn.connected() {
                conn.set_context(Arc::new(Counter(AtomicUsize::new(0))));
            }
        });
        s.set_message_callback(|conn, buf, _| {
            let n = buf.readable_bytes();
            buf.retrieve_all();
            if let Some(c) = conn.context::<Counter>() {
                let total = c.0.fetch_add(n, Ordering::SeqCst) + n;
                conn.send(format!("{}\n", total).as_bytes());
            }
        });
    });
    let mut c = connect(server.addr);
    let mut totals = HashMap::new();
    for (i, msg) in [&b"aaa"[..], b"bb", b"c"].iter().enumerate() {
        write_all(&mut c, msg);
        let mut line = Vec::new();
        let mut byte = [0u8; 1];
        while byte[0] != b'\n' {
            c.read_exact(&mut byte).unwrap();
            line.push(byte[0]);
        }
        totals.insert(i, String::from_utf8(line).unwrap());
    }
    assert_eq!(totals[&0], "3\n");
    assert_eq!(totals[&1], "5\n");
    assert_eq!(totals[&2], "6\n");
}

#[test]
fn force_close_from_another_thread() {
    let server = start_server(1, |s| {
        s.set_message_callback(|conn, buf, _| {
            buf.retrieve_all();
            let conn = conn.clone();
            std::thread::spawn(move || conn.force_close());
        });
    });
    let mut c = connect(server.addr);
    c.write_all(b"bye").unwrap();
    let mut rest = Vec::new();
    assert_eq!(c.read_to_end(&mut rest).unwrap(), 0, "closed by the server");
}

#[test]
fn a_flooding_peer_does_not_starve_the_others_on_its_loop() {
    use std::sync::atomic::AtomicBool;
    // One loop for everyone. Flood bytes cost the server 1 ms per read, and
    // its input buffer is kept small, so each read takes at most 64 KiB and
    // the flooder can keep its socket full for as long as it writes.
    let server = start_server(0, |s| {
        s.set_message_callback(|conn, buf, _| {
            if buf.peek().starts_with(b"ping") {
                conn.send_buffer(buf);
            } else {
                std::thread::sleep(Duration::from_millis(1));
                buf.retrieve_all();
                buf.shrink(0);
            }
        });
    });
    let flooding = Arc::new(AtomicBool::new(true));
    let stop = Arc::new(AtomicBool::new(false));
    let mut flooder = connect(server.addr);
    let (f, st) = (flooding.clone(), stop.clone());
    let flood = std::thread::spawn(move || {
        let chunk = vec![b'x'; 64 * 1024];
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !st.load(Ordering::SeqCst)
            && std::time::Instant::now() < deadline
            && flooder.write_all(&chunk).is_ok()
        {}
        f.store(false, Ordering::SeqCst);
    });
    std::thread::sleep(Duration::from_millis(300)); // the flood is under way
    let mut c = connect(server.addr);
    write_all(&mut c, b"ping");
    assert_eq!(read_n(&mut c, 4), b"ping");
    assert!(
        flooding.load(Ordering::SeqCst),
        "the echo had to wait for the flood to end"
    );
    stop.store(true, Ordering::SeqCst);
    flood.join().unwrap();
}

/// Data and FIN that arrive together (a client that writes and closes in
/// one go) come as one edge: the server must read past the data to the
/// EOF and see the close, not wait for an edge that never comes.
#[test]
fn a_client_that_writes_and_closes_at_once_is_seen_to_close() {
    let received = Arc::new(Mutex::new(Vec::new()));
    let downs = Arc::new(AtomicUsize::new(0));
    let (r, d) = (received.clone(), downs.clone());
    let server = start_server(1, move |s| {
        s.set_connection_callback(move |conn| {
            if !conn.connected() {
                d.fetch_add(1, Ordering::SeqCst);
            }
        });
        s.set_message_callback(move |_conn, buf, _| {
            r.lock().extend_from_slice(buf.peek());
            buf.retrieve_all();
        });
    });
    const CLIENTS: usize = 20;
    for i in 0..CLIENTS {
        let mut c = connect(server.addr);
        // One write and the FIN right behind it, before the server looks.
        write_all(&mut c, format!("m{i:02};").as_bytes());
        c.shutdown(std::net::Shutdown::Write).unwrap();
        drop(c);
    }
    assert!(
        wait_until(|| downs.load(Ordering::SeqCst) == CLIENTS),
        "{} of {CLIENTS} closes seen",
        downs.load(Ordering::SeqCst)
    );
    let text = String::from_utf8(received.lock().clone()).unwrap();
    for i in 0..CLIENTS {
        assert!(
            text.contains(&format!("m{i:02};")),
            "message {i} lost: {text}"
        );
    }
}

/// `stop_accepting` closes the listener at once, without the loop running
/// again: a new client is refused.
#[test]
fn stop_accepting_closes_the_listener_at_once() {
    let mut lp = net::EventLoop::new().unwrap();
    let addr = "127.0.0.1:0".parse().unwrap();
    let mut server =
        net::TcpServer::new(&lp, addr, "stop", net::ServerOption::NoReusePort).unwrap();
    server.start(&mut lp).unwrap();
    let addr = server.listen_addr();
    assert!(TcpStream::connect(addr).is_ok(), "listening after start");
    server.stop_accepting(&mut lp);
    let refused = TcpStream::connect(addr);
    assert!(
        matches!(&refused, Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused),
        "got {refused:?}"
    );
}

#[test]
fn keep_alive_is_set_on_every_accepted_socket() {
    let ka = net::KeepAlive {
        idle: Duration::from_secs(7),
        interval: Duration::from_secs(2),
        probes: 4,
    };
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let server = start_server(1, move |s| {
        s.set_keep_alive(ka);
        s.set_connection_callback(move |conn| {
            if conn.connected() {
                // Read back from the kernel, on the server's side.
                let _ = tx.lock().send(conn.keep_alive().ok());
            }
        });
    });
    let _a = connect(server.addr);
    let _b = connect(server.addr);
    for _ in 0..2 {
        let seen = rx.recv_timeout(Duration::from_secs(5)).unwrap();
        assert_eq!(seen, Some(Some(ka)), "SO_KEEPALIVE on, TCP_KEEPIDLE 7 s");
    }
}

#[test]
fn keep_alive_stays_off_unless_asked_for() {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let server = start_server(1, move |s| {
        s.set_connection_callback(move |conn| {
            if conn.connected() {
                let _ = tx.lock().send(conn.keep_alive().ok());
            }
        });
    });
    let _a = connect(server.addr);
    let seen = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(seen, Some(None));
}

/// `send_vec_counted` (and `send_counted`) tells where each frame ends in the output stream,
/// and `bytes_written` reaches that position only once the kernel took
/// the bytes: not while the reader does not read, and never for what was
/// still queued when the connection closed.
#[test]
fn counted_sends_tell_when_bytes_reach_the_kernel() {
    const CHUNK: usize = 64 * 1024;
    let (tx, rx) = mpsc::channel::<TcpConnectionPtr>();
    let tx = Mutex::new(tx);
    let server = start_server(1, move |s| {
        s.set_connection_callback(move |conn| {
            if conn.connected() {
                let _ = tx.lock().send(conn.clone());
            }
        });
    });
    let mut c = connect(server.addr);
    let conn = rx.recv_timeout(IO_TIMEOUT).expect("a connection");
    assert_eq!(conn.send_vec_counted(b"hello".to_vec()), Some(5));
    // Borrowed bytes count the same way.
    assert_eq!(conn.send_counted(b", you"), Some(10));
    assert!(wait_until(|| conn.bytes_written() == 10));
    assert_eq!(read_n(&mut c, 10), b"hello, you");
    // The client stops reading: the kernel's buffers fill up.
    let mut end = 10;
    for _ in 0..128 {
        end = conn.send_vec_counted(vec![1u8; CHUNK]).expect("accepted");
    }
    assert_eq!(end, 10 + 128 * CHUNK as u64);
    assert!(
        conn.bytes_written() < end,
        "8 MiB cannot all be in the kernel"
    );
    // Reading it all lets the loop write the rest.
    let mut got = 0;
    while got < 128 * CHUNK {
        got += read_n(&mut c, CHUNK).len();
    }
    assert!(wait_until(|| conn.bytes_written() == end));
    // A closed connection accepts nothing more.
    conn.force_close();
    assert!(wait_until(|| !conn.connected()));
    assert_eq!(conn.send_vec_counted(b"late".to_vec()), None);
    assert_eq!(conn.send_counted(b"late"), None);
    assert_eq!(conn.bytes_written(), end);
}

/// `when_drained` runs its task at once when nothing is queued, after the
/// drain when the reader is slow, and never when the connection closes
/// with output still queued.
#[test]
fn when_drained_waits_for_the_output_to_reach_the_kernel() {
    const CHUNK: usize = 64 * 1024;
    let (tx, rx) = mpsc::channel::<TcpConnectionPtr>();
    let tx = Mutex::new(tx);
    let server = start_server(1, move |s| {
        s.set_connection_callback(move |conn| {
            if conn.connected() {
                let _ = tx.lock().send(conn.clone());
            }
        });
    });
    let ran = Arc::new(AtomicUsize::new(0));
    let task = |ran: &Arc<AtomicUsize>| {
        let ran = ran.clone();
        Box::new(move || {
            ran.fetch_add(1, Ordering::SeqCst);
        })
    };
    let mut c = connect(server.addr);
    let conn = rx.recv_timeout(IO_TIMEOUT).expect("a connection");
    conn.when_drained(task(&ran));
    assert!(wait_until(|| ran.load(Ordering::SeqCst) == 1), "at once");
    for _ in 0..128 {
        conn.send(&[2u8; CHUNK]);
    }
    conn.when_drained(task(&ran));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        ran.load(Ordering::SeqCst),
        1,
        "8 MiB are not in the kernel yet"
    );
    let mut got = 0;
    while got < 128 * CHUNK {
        got += read_n(&mut c, CHUNK).len();
    }
    assert!(
        wait_until(|| ran.load(Ordering::SeqCst) == 2),
        "after the drain"
    );

    // A second client that never reads, closed with its output queued.
    let _c2 = connect(server.addr);
    let conn2 = rx.recv_timeout(IO_TIMEOUT).expect("a connection");
    for _ in 0..128 {
        conn2.send(&[3u8; CHUNK]);
    }
    conn2.when_drained(task(&ran));
    conn2.force_close();
    assert!(wait_until(|| conn2.disconnected()));
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(ran.load(Ordering::SeqCst), 2, "dropped with the connection");
}

/// `stop_read` leaves the peer's bytes in the kernel, and its close too,
/// until `start_read`, which reads what came meanwhile without waiting for
/// more (muduo's `stopRead` / `startRead`).
#[test]
fn stopped_reads_wait_in_the_kernel_until_start_read() {
    let (tx, rx) = mpsc::channel::<TcpConnectionPtr>();
    let tx = Mutex::new(tx);
    let got = Arc::new(AtomicUsize::new(0));
    let closed = Arc::new(AtomicUsize::new(0));
    let (got2, closed2) = (got.clone(), closed.clone());
    let server = start_server(1, move |s| {
        s.set_connection_callback(move |conn| {
            if conn.connected() {
                conn.stop_read();
                let _ = tx.lock().send(conn.clone());
            } else {
                closed2.fetch_add(1, Ordering::SeqCst);
            }
        });
        s.set_message_callback(move |_, buf, _| {
            got2.fetch_add(buf.readable_bytes(), Ordering::SeqCst);
            buf.retrieve_all();
        });
    });
    let mut c = connect(server.addr);
    let conn = rx.recv_timeout(IO_TIMEOUT).expect("a connection");
    assert!(!conn.is_reading());
    write_all(&mut c, b"hello");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(got.load(Ordering::SeqCst), 0, "read while stopped");
    conn.start_read();
    assert!(conn.is_reading());
    assert!(wait_until(|| got.load(Ordering::SeqCst) == 5));
    // Stopped again: more bytes and the close wait, then both are seen.
    conn.stop_read();
    write_all(&mut c, b"more");
    drop(c);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(got.load(Ordering::SeqCst), 5, "read while stopped");
    assert!(conn.connected(), "the close was seen while stopped");
    conn.start_read();
    assert!(wait_until(
        || got.load(Ordering::SeqCst) == 9 && closed.load(Ordering::SeqCst) == 1
    ));
}
