//! The acceptor survives running out of file descriptors (`EMFILE`) without
//! spinning, and accepts again once descriptors are free.
//!
//! Runs in its own test binary (its own process) because it lowers the
//! process's descriptor limit.

mod common;

use std::fs::File;
use std::net::TcpStream;
use std::time::Duration;

use common::*;

fn set_fd_limit(n: u64) {
    let lim = libc::rlimit {
        rlim_cur: n,
        rlim_max: n.max(current_hard_limit()),
    };
    // SAFETY: setrlimit reads a plain struct we own.
    assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
}

fn current_hard_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into a plain struct we own.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    lim.rlim_max
}

#[test]
fn acceptor_survives_emfile() {
    let server = start_server(0, |s| {
        s.set_message_callback(|conn, buf, _| conn.send_buffer(buf));
    });
    // Fill the descriptor table with files, leaving no room to accept.
    set_fd_limit(256);
    let mut hogs = Vec::new();
    while let Ok(f) = File::open("/dev/null") {
        hogs.push(f);
    }
    // Free one slot for the client's own socket, then connect: the server
    // (in this same process) has no descriptor left, so it must shed the
    // connection with the spare-fd trick, not leave it hanging or spin.
    hogs.truncate(hogs.len() - 1);
    let mut shed = TcpStream::connect(server.addr).unwrap();
    shed.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = [0u8; 1];
    let n = std::io::Read::read(&mut shed, &mut buf);
    let closed = match &n {
        Ok(0) => true,
        Err(e) => e.kind() == std::io::ErrorKind::ConnectionReset,
        Ok(_) => false,
    };
    assert!(closed, "the shed connection is closed at once, got {:?}", n);

    // The table is still full, so every `accept` now fails with EMFILE,
    // queue or no queue. The loop must not keep trying: it answers a task.
    let (tx, rx) = std::sync::mpsc::channel();
    server.main_loop.run_in_loop(move || {
        let _ = tx.send(());
    });
    assert!(
        rx.recv_timeout(IO_TIMEOUT).is_ok(),
        "the main loop is stuck in its accept loop while descriptors are exhausted"
    );
    drop(shed);

    // Descriptors free again: the server accepts and serves as before.
    hogs.clear();
    let mut c = connect(server.addr);
    write_all(&mut c, b"back");
    assert_eq!(read_n(&mut c, 4), b"back");
}
