//! [`HttpContext`]: one connection's parse state (muduo's `HttpContext`).
//!
//! muduo's context walks `kExpectRequestLine → kExpectHeaders → kExpectBody
//! → kGotAll` over the connection's input buffer. Here `httparse` reads the
//! request line and the headers in one go, so two states are left: waiting
//! for the head (re-parsed as bytes arrive, bounded by
//! [`Limits::max_head`]), then waiting for `Content-Length` bytes of body.
//! Requests are taken one at a time from the front of the buffer, so
//! pipelined requests are answered in order and a request split into single
//! bytes parses the same as a whole one.
//!
//! Thread rule: a context belongs to its connection's loop thread, which
//! alone calls [`HttpContext::parse`].

use std::time::Duration;

use super::request::{HttpRequest, Version};
use crate::Buffer;

/// Size limits of a request; a request past one is answered with an error
/// status and the connection closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of request line and headers together (431 past it).
    pub max_head: usize,
    /// Number of header fields (431 past it).
    pub max_headers: usize,
    /// Bytes of body (413 past it).
    pub max_body: usize,
    /// How long a connection may speak HTTP before it is closed, requests
    /// or not (a WebSocket upgrade ends the count): idle keep-alive
    /// connections and slow senders do not pile up.
    pub lifetime: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_head: 8 * 1024,
            max_headers: 64,
            max_body: 64 * 1024,
            lifetime: Duration::from_secs(60),
        }
    }
}

/// Why a request cannot be served; each maps to the status sent back
/// before the connection closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    /// Head larger than [`Limits::max_head`] or with too many fields: 431.
    HeadTooLarge,
    /// `Content-Length` over [`Limits::max_body`]: 413.
    BodyTooLarge,
    /// Not HTTP/1.x, or a malformed head or length: 400.
    Malformed(&'static str),
}

impl ParseError {
    /// The status to answer with.
    pub fn status(&self) -> u16 {
        match self {
            ParseError::HeadTooLarge => 431,
            ParseError::BodyTooLarge => 413,
            ParseError::Malformed(_) => 400,
        }
    }
}

/// What the context waits for next.
#[derive(Debug)]
enum State {
    /// The request line and headers.
    Head,
    /// The body of `request`: `length` bytes.
    Body { request: HttpRequest, length: usize },
}

/// The parse state of one connection. See the [module docs](self).
#[derive(Debug)]
pub struct HttpContext {
    limits: Limits,
    state: State,
}

impl HttpContext {
    /// A context that expects a request line, with `limits`.
    pub fn new(limits: Limits) -> HttpContext {
        HttpContext {
            limits,
            state: State::Head,
        }
    }

    /// Takes the next complete request off the front of `buf`; `Ok(None)`
    /// while it is incomplete (the bytes stay in `buf`). After an error the
    /// connection is to be closed: the context is left in no useful state.
    ///
    /// # Errors
    /// A [`ParseError`] when the request is too large or malformed.
    pub fn parse(&mut self, buf: &mut Buffer) -> Result<Option<HttpRequest>, ParseError> {
        if let State::Head = self.state {
            let Some((request, head_len, length)) = self.parse_head(buf.peek())? else {
                return Ok(None);
            };
            buf.retrieve(head_len);
            self.state = State::Body { request, length };
        }
        let State::Body { length, .. } = &self.state else {
            return Ok(None);
        };
        if buf.readable_bytes() < *length {
            return Ok(None);
        }
        match std::mem::replace(&mut self.state, State::Head) {
            State::Body {
                mut request,
                length,
            } => {
                request.body = buf.retrieve_as_vec(length);
                Ok(Some(request))
            }
            State::Head => Ok(None),
        }
    }

    /// The head at the front of `bytes`, its length and the body's length.
    fn parse_head(&self, bytes: &[u8]) -> Result<Option<(HttpRequest, usize, usize)>, ParseError> {
        let mut fields = vec![httparse::EMPTY_HEADER; self.limits.max_headers];
        let mut req = httparse::Request::new(&mut fields);
        let parsed = match req.parse(bytes) {
            Ok(p) => p,
            Err(httparse::Error::TooManyHeaders) => return Err(ParseError::HeadTooLarge),
            Err(_) => return Err(ParseError::Malformed("malformed request")),
        };
        let head_len = match parsed {
            httparse::Status::Complete(n) if n <= self.limits.max_head => n,
            httparse::Status::Partial if bytes.len() <= self.limits.max_head => return Ok(None),
            _ => return Err(ParseError::HeadTooLarge),
        };
        let version = match req.version {
            Some(0) => Version::Http10,
            Some(1) => Version::Http11,
            _ => return Err(ParseError::Malformed("unsupported HTTP version")),
        };
        let target = req.path.unwrap_or("/");
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
            None => (target.to_owned(), None),
        };
        let mut headers = Vec::with_capacity(req.headers.len());
        for h in req.headers.iter() {
            let value = std::str::from_utf8(h.value)
                .map_err(|_| ParseError::Malformed("a header value is not UTF-8"))?;
            headers.push((h.name.to_owned(), value.trim().to_owned()));
        }
        let request = HttpRequest {
            method: req.method.unwrap_or("").to_owned(),
            path,
            query,
            version,
            headers,
            body: Vec::new(),
        };
        if request.header("transfer-encoding").is_some() {
            return Err(ParseError::Malformed("Transfer-Encoding is not accepted"));
        }
        let length = body_length(&request)?;
        if length > self.limits.max_body {
            return Err(ParseError::BodyTooLarge);
        }
        Ok(Some((request, head_len, length)))
    }
}

/// The `Content-Length` of `request`, 0 without one; every copy must agree.
fn body_length(request: &HttpRequest) -> Result<usize, ParseError> {
    let mut length = None;
    for (_, v) in request
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    {
        if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ParseError::Malformed("bad Content-Length"));
        }
        let n: usize = v.parse().map_err(|_| ParseError::BodyTooLarge)?;
        if length.is_some_and(|l| l != n) {
            return Err(ParseError::Malformed("conflicting Content-Length"));
        }
        length = Some(n);
    }
    Ok(length.unwrap_or(0))
}

#[cfg(test)]
mod tests;
