//! The opening handshake (RFC 6455, section 4.2): whether a request asks
//! for a WebSocket, and the `101 Switching Protocols` that accepts it.
//!
//! The accept key (SHA-1 of the client's key and the RFC's GUID, in
//! base64) is `tungstenite`'s `derive_accept_key`. Pure functions, any
//! thread.

use tungstenite::handshake::derive_accept_key;

use crate::http::{HttpRequest, HttpResponse};

/// Why a request is not a valid WebSocket upgrade.
pub type Refusal = &'static str;

/// The `101` response accepting `request`'s upgrade, or why it is refused
/// (answered with 400, or 426 for a wrong version).
///
/// # Errors
/// The status and reason when the request is not a WebSocket upgrade.
pub fn accept(request: &HttpRequest) -> Result<HttpResponse, (u16, Refusal)> {
    if request.method != "GET" {
        return Err((400, "a WebSocket upgrade is a GET"));
    }
    if !request.header_has_token("upgrade", "websocket")
        || !request.header_has_token("connection", "upgrade")
    {
        return Err((426, "this path speaks WebSocket only"));
    }
    if request.header("sec-websocket-version") != Some("13") {
        return Err((426, "WebSocket version 13 only"));
    }
    let Some(key) = request.header("sec-websocket-key") else {
        return Err((400, "no Sec-WebSocket-Key"));
    };
    let mut response = HttpResponse::new(101);
    response.add_header("Upgrade", "websocket");
    response.add_header("Connection", "Upgrade");
    response.add_header("Sec-WebSocket-Accept", &derive_accept_key(key.as_bytes()));
    if request.version == crate::http::Version::Http10 {
        return Err((400, "a WebSocket upgrade needs HTTP/1.1"));
    }
    Ok(response)
}
