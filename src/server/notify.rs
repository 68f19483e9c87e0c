//! systemd's readiness protocol (`Type=notify`): `READY=1` once the
//! listeners accept, `STOPPING=1` when the shutdown begins, `RELOADING=1`
//! is not sent (SIGHUP only reloads the certificate).
//!
//! systemd names a datagram socket in `NOTIFY_SOCKET` (a path, or an
//! abstract name with a leading `@`); without it (not under systemd) these
//! calls do nothing. Each sends one short datagram from the main thread at
//! start or stop: never from an I/O thread.

use std::os::unix::net::UnixDatagram;

/// Tells systemd the server is ready (deploy/chat-server.service).
pub fn ready() {
    send("READY=1\nSTATUS=accepting connections\n");
}

/// Tells systemd the server is stopping.
pub fn stopping() {
    send("STOPPING=1\n");
}

fn send(message: &str) {
    let Some(target) = std::env::var_os("NOTIFY_SOCKET") else {
        return;
    };
    let target = target.to_string_lossy().into_owned();
    if let Err(e) = send_to(&target, message) {
        log::warn!("systemd notification to {target} failed: {e}");
    }
}

fn send_to(target: &str, message: &str) -> std::io::Result<()> {
    let socket = UnixDatagram::unbound()?;
    if let Some(name) = target.strip_prefix('@') {
        use std::os::linux::net::SocketAddrExt;
        let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())?;
        socket.send_to_addr(message.as_bytes(), &addr)?;
    } else {
        socket.send_to(message.as_bytes(), target)?;
    }
    Ok(())
}
