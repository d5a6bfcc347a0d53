//! Just enough HTTP/1.1 for the dashboard: one request per connection, read with a size limit.
//!
//! The head is parsed strictly, because access is decided on its headers: a request line other
//! than `METHOD /path[?query] HTTP/1.x`, a header line without a name, a folded line, or a second
//! copy of a header that access depends on is refused as a bad request rather than guessed at.

use std::io::{self, Read, Write};

/// Longest request head accepted.
const MAX_HEAD: usize = 16 * 1024;

/// Headers that may appear once only: two `Host` lines (or two `Cookie` lines) could be read one
/// way by this parser and another way by whatever sits in front of it.
const SINGLE: [&str; 6] = ["Host", "Origin", "Cookie", "Authorization", "Upgrade", "Sec-WebSocket-Key"];

#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// What follows the `?` of the target, if anything.
    pub query: Option<String>,
    headers: Vec<(String, String)>,
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

/// Reads a request head byte by byte (so nothing after it is consumed) up to the blank line.
/// A malformed head is an `InvalidData` error whose text says what is wrong with it.
pub fn read_request(r: &mut dyn Read) -> io::Result<Request> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && !head.ends_with(b"\n\n") {
        if head.len() >= MAX_HEAD {
            return Err(bad("request head too long".into()));
        }
        if r.read(&mut byte)? == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "connection closed"));
        }
        head.push(byte[0]);
    }
    parse_head(&head)
}

fn parse_head(head: &[u8]) -> io::Result<Request> {
    let text = std::str::from_utf8(head).map_err(|_| bad("request head is not UTF-8".into()))?;
    let mut lines = text.lines();
    let request_line = lines.next().unwrap_or("");
    let parts: Vec<&str> = request_line.split(' ').collect();
    let [method, target, version] = parts[..] else {
        return Err(bad("bad request line".into()));
    };
    if method.is_empty() || !method.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(bad("bad request method".into()));
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err(bad("only HTTP/1.0 and HTTP/1.1".into()));
    }
    if !target.starts_with('/') || target.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err(bad("bad request target".into()));
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (target.to_owned(), None),
    };
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        if line.starts_with([' ', '\t']) {
            return Err(bad("folded header lines are not accepted".into()));
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(bad("header line without a colon".into()));
        };
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(bad(format!("bad header name {name:?}")));
        }
        if SINGLE.iter().any(|s| s.eq_ignore_ascii_case(name))
            && headers.iter().any(|(k, _)| k.eq_ignore_ascii_case(name))
        {
            return Err(bad(format!("more than one {name} header")));
        }
        headers.push((name.to_owned(), value.trim_matches([' ', '\t']).to_owned()));
    }
    Ok(Request { method: method.to_owned(), path, query, headers })
}

/// RFC 9110's `tchar`: what a header name is made of (no spaces, so `Host : x` is refused).
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
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

/// Writes a complete response that closes the connection.
pub fn respond(w: &mut dyn Write, status: &str, content_type: &str, body: &[u8]) -> io::Result<()> {
    respond_with(w, status, content_type, "", body)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(head: &str) -> Result<Request, String> {
        parse_head(head.as_bytes()).map_err(|e| e.to_string())
    }

    #[test]
    fn a_plain_request_is_read() {
        let r = parse("GET /ws?token=ab&x=1 HTTP/1.1\r\nHost: 127.0.0.1:9\r\nUpgrade:  websocket \r\n\r\n").unwrap();
        assert_eq!((r.method.as_str(), r.path.as_str()), ("GET", "/ws"));
        assert_eq!(r.query_values("token").collect::<Vec<_>>(), ["ab"]);
        assert_eq!(r.query_values("x").collect::<Vec<_>>(), ["1"]);
        assert_eq!(r.header("host"), Some("127.0.0.1:9"));
        assert!(r.header_has("Upgrade", "WebSocket"));
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
            ("GET / HTTP/1.1\r\nHost : a\r\n\r\n", "bad header name \"Host \""),
            ("GET / HTTP/1.1\r\nX-A: 1\r\n  Host: evil\r\n\r\n", "folded header lines are not accepted"),
            ("GET / HTTP/1.1\r\nnonsense\r\n\r\n", "header line without a colon"),
            ("GET http://evil/ HTTP/1.1\r\n\r\n", "bad request target"),
            ("GET  / HTTP/1.1\r\n\r\n", "bad request line"),
            ("GET / HTTP/2\r\n\r\n", "only HTTP/1.0 and HTTP/1.1"),
        ] {
            assert_eq!(parse(head).unwrap_err(), why, "{head:?}");
        }
        assert_eq!(
            parse_head(b"GET / HTTP/1.1\r\nHost: \xff\r\n\r\n").unwrap_err().to_string(),
            "request head is not UTF-8"
        );
    }
}
