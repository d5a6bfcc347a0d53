//! One HTTP/1.1 request per connection: its head parsed by `httparse` (the parser under hyper),
//! then checked strictly, because access is decided on its headers.
//!
//! A request-target other than `/path[?query]`, a malformed head (httparse refuses folded lines,
//! spaces before a colon, bad names and versions), a header value that is not UTF-8, or a second
//! copy of a header that access depends on is refused as a bad request rather than guessed at.

use std::io::{self, Read, Write};

/// Longest request head accepted.
const MAX_HEAD: usize = 16 * 1024;
/// Most header lines accepted.
const MAX_HEADERS: usize = 64;

/// Headers that may appear once only: two `Host` lines (or two `Cookie` lines) could be read one
/// way by this server and another way by whatever sits in front of it.
const SINGLE: [&str; 7] =
    ["Host", "Origin", "Cookie", "Authorization", "Upgrade", "Sec-WebSocket-Key", "Sec-WebSocket-Version"];

#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// What follows the `?` of the target, if anything.
    pub query: Option<String>,
    headers: Vec<(String, String)>,
    /// Bytes read after the head (a WebSocket client's first frames, if it sent them early).
    pub rest: Vec<u8>,
}

impl Request {
    /// The value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Whether header `name` lists `token` (case-insensitive, comma-separated).
    pub fn header_has(&self, name: &str, token: &str) -> bool {
        self.header(name).is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }

    /// The values of query parameter `name`, undecoded.
    pub fn query_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.query
            .as_deref()
            .unwrap_or("")
            .split('&')
            .filter_map(move |kv| kv.strip_prefix(name).and_then(|rest| rest.strip_prefix('=')))
    }
}

fn bad(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Reads a request head, up to `MAX_HEAD` bytes. A malformed head is an `InvalidData` error whose
/// text says what is wrong with it.
pub fn read_request(r: &mut dyn Read) -> io::Result<Request> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        if !buf.is_empty() {
            if let Some(req) = parse(&buf)? {
                return Ok(req);
            }
        }
        if buf.len() >= MAX_HEAD {
            return Err(bad("request head too long".into()));
        }
        let n = r.read(&mut chunk[..(MAX_HEAD - buf.len()).min(1024)])?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// The request in `buf`, `None` while its head is incomplete.
fn parse(buf: &[u8]) -> io::Result<Option<Request>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(bad(format!("malformed request head: {e}"))),
    };
    let (Some(method), Some(target)) = (req.method, req.path) else {
        return Err(bad("bad request line".into()));
    };
    if !target.starts_with('/') {
        return Err(bad("bad request target".into()));
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (target.to_owned(), None),
    };
    let mut kept: Vec<(String, String)> = Vec::new();
    for h in req.headers.iter() {
        let Ok(value) = std::str::from_utf8(h.value) else {
            return Err(bad(format!("the {} header is not UTF-8", h.name)));
        };
        if SINGLE.iter().any(|s| s.eq_ignore_ascii_case(h.name))
            && kept.iter().any(|(k, _)| k.eq_ignore_ascii_case(h.name))
        {
            return Err(bad(format!("more than one {} header", h.name)));
        }
        kept.push((h.name.to_owned(), value.trim_matches([' ', '\t']).to_owned()));
    }
    Ok(Some(Request { method: method.to_owned(), path, query, headers: kept, rest: buf[len..].to_vec() }))
}

/// Writes a complete response that closes the connection, with `extra` header lines (each
/// ending in CRLF).
pub fn respond_with(w: &mut dyn Write, status: &str, content_type: &str, extra: &str, body: &[u8]) -> io::Result<()> {
    write!(
        w,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nReferrer-Policy: no-referrer\r\n{extra}Connection: close\r\n\r\n",
        body.len()
    )?;
    w.write_all(body)?;
    w.flush()
}

/// Writes a complete plain-text response that closes the connection.
pub fn respond(w: &mut dyn Write, status: &str, body: &[u8]) -> io::Result<()> {
    respond_with(w, status, "text/plain; charset=utf-8", "", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(head: &str) -> Result<Request, String> {
        match parse(head.as_bytes()) {
            Ok(Some(r)) => Ok(r),
            Ok(None) => Err("incomplete".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn a_plain_request_is_read() {
        let r =
            parse_all("GET /ws?token=ab&x=1 HTTP/1.1\r\nHost: 127.0.0.1:9\r\nUpgrade:  websocket \r\n\r\nxy").unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/ws"));
        assert_eq!(r.query_values("token").collect::<Vec<_>>(), ["ab"]);
        assert_eq!(r.query_values("x").collect::<Vec<_>>(), ["1"]);
        assert_eq!(r.header("host"), Some("127.0.0.1:9"));
        assert!(r.header_has("Upgrade", "WebSocket"));
        assert_eq!(r.rest, b"xy");
        assert_eq!(parse_all("GET / HTTP/1.1\r\nHost: a\r\n").unwrap_err(), "incomplete");
    }

    #[test]
    fn ambiguous_heads_are_refused() {
        for (head, why) in [
            ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "more than one Host header"),
            ("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", "more than one host header"),
            ("GET / HTTP/1.1\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n", "more than one Cookie header"),
            ("GET / HTTP/1.1\r\nOrigin: http://a\r\nOrigin: http://b\r\n\r\n", "more than one Origin header"),
            (
                "GET / HTTP/1.1\r\nAuthorization: Bearer a\r\nAuthorization: Bearer b\r\n\r\n",
                "more than one Authorization header",
            ),
            ("GET http://evil/ HTTP/1.1\r\n\r\n", "bad request target"),
        ] {
            assert_eq!(parse_all(head).unwrap_err(), why, "{head:?}");
        }
        for head in [
            "GET / HTTP/1.1\r\nHost : a\r\n\r\n",
            "GET / HTTP/1.1\r\nX-A: 1\r\n  Host: evil\r\n\r\n",
            "GET / HTTP/1.1\r\nnonsense\r\n\r\n",
            "GET  / HTTP/1.1\r\n\r\n",
            "GET / HTTP/2\r\n\r\n",
        ] {
            assert!(parse_all(head).unwrap_err().starts_with("malformed request head: "), "{head:?}");
        }
        assert_eq!(
            parse(b"GET / HTTP/1.1\r\nHost: \xff\r\n\r\n").map(|_| ()).unwrap_err().to_string(),
            "the Host header is not UTF-8"
        );
    }
}
