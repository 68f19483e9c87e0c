//! [`HttpResponse`]: what a callback answers (muduo's `HttpResponse`).
//!
//! Built by the callback, turned into bytes by [`HttpResponse::to_bytes`]
//! on the connection's loop; `Content-Length` and `Connection` are always
//! written by the server, so a callback cannot get them wrong.

/// A response: status, headers, body, and whether to close after it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code, `200`, `404`, …
    pub status: u16,
    /// The reason phrase, `OK`, `Not Found`, …
    pub reason: &'static str,
    /// Extra header fields (not `Content-Length` nor `Connection`).
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
    /// Close the connection once the response is written.
    pub close: bool,
}

impl HttpResponse {
    /// A response with `status` and its usual reason phrase, no body.
    pub fn new(status: u16) -> HttpResponse {
        HttpResponse {
            status,
            reason: reason_phrase(status),
            headers: Vec::new(),
            body: Vec::new(),
            close: false,
        }
    }

    /// A response with a body of `content_type`.
    pub fn with_body(status: u16, content_type: &str, body: impl Into<Vec<u8>>) -> HttpResponse {
        let mut r = HttpResponse::new(status);
        r.add_header("Content-Type", content_type);
        r.body = body.into();
        r
    }

    /// A short `text/plain` response.
    pub fn text(status: u16, body: &str) -> HttpResponse {
        HttpResponse::with_body(status, "text/plain; charset=utf-8", body)
    }

    /// Adds a header field.
    pub fn add_header(&mut self, name: &str, value: &str) {
        self.headers.push((name.to_owned(), value.to_owned()));
    }

    /// The response as it goes on the wire (HTTP/1.1).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128 + self.body.len());
        out.extend_from_slice(format!("HTTP/1.1 {} {}\r\n", self.status, self.reason).as_bytes());
        for (name, value) in &self.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        if self.status != 101 {
            out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes());
            let connection = if self.close { "close" } else { "keep-alive" };
            out.extend_from_slice(format!("Connection: {connection}\r\n").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(&self.body);
        out
    }
}

/// The usual reason phrase of the codes this crate and its users send.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        204 => "No Content",
        301 => "Moved Permanently",
        304 => "Not Modified",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Content Too Large",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        503 => "Service Unavailable",
        _ => "Unknown",
    }
}
