//! [`HttpRequest`]: one parsed request (muduo's `HttpRequest`).
//!
//! Plain owned data, made by [`super::HttpContext`] on the connection's
//! loop and handed to the server's callback there; any thread may keep it.

/// The request's HTTP version: muduo's `Version`, `kHttp10` or `kHttp11`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0: the connection closes after the reply unless asked not to.
    Http10,
    /// HTTP/1.1: the connection stays open unless asked to close.
    Http11,
}

/// One request: method, path and query, version, headers, body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET`, `POST`, … as sent (methods are case-sensitive).
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// What followed `?`, if anything did.
    pub query: Option<String>,
    /// HTTP/1.0 or HTTP/1.1.
    pub version: Version,
    /// The header fields in the order received, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body (`Content-Length` bytes; empty without one).
    pub body: Vec<u8>,
}

impl HttpRequest {
    /// The first header named `name` (compared without case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// `true` when a header named `name` lists `token` among its
    /// comma-separated values (compared without case): `Connection:
    /// keep-alive, Upgrade` has `upgrade`.
    pub fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// Whether the connection stays open after the reply: HTTP/1.1 unless
    /// `Connection: close`, HTTP/1.0 only with `Connection: keep-alive`.
    pub fn keep_alive(&self) -> bool {
        match self.version {
            Version::Http11 => !self.header_has_token("connection", "close"),
            Version::Http10 => self.header_has_token("connection", "keep-alive"),
        }
    }
}
