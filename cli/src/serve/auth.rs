//! Who may read what `hark serve` streams.
//!
//! Loopback is not a boundary between the users of one machine, and a web page can reach
//! loopback too, so every request passes three checks before anything else is read or sent:
//! 1. its `Host` is one of this server's own names (`127.0.0.1:PORT`, `[::1]:PORT`,
//!    `localhost:PORT`, the bound address, and `--allow-host` names): a page on a name the
//!    attacker controls, rebound to 127.0.0.1, sends its own name and is refused (on a Unix
//!    socket, only `localhost` and `--allow-host` names, without a port);
//! 2. its `Origin`, if any, is `http://` and one of those same names (a header the page itself
//!    cannot choose, unlike `Host`, which the attacker's DNS chooses);
//! 3. it presents the secret token: as the `token` query parameter, as the cookie the dashboard
//!    page sets (HttpOnly, SameSite=Strict), or as `Authorization: Bearer TOKEN`, compared in
//!    constant time. `--open` drops this check, and only this one.

use super::http::Request;
use std::fs::File;
use std::io::{self, Read};
use std::net::SocketAddr;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// Fewest characters a token given by the user may have.
const MIN_TOKEN_LEN: usize = 16;

/// Why a request is refused; its message is all the refused client gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    NoHost,
    Host,
    Origin,
    Token,
}

impl Refusal {
    pub fn status(self) -> &'static str {
        match self {
            Refusal::NoHost => "400 Bad Request",
            _ => "403 Forbidden",
        }
    }

    pub fn message(self) -> &'static str {
        match self {
            Refusal::NoHost => "a Host header is required\n",
            Refusal::Host => "host not allowed (hark serve --allow-host NAME admits another)\n",
            Refusal::Origin => "cross-origin request refused\n",
            Refusal::Token => {
                "a token is required: open the URL hark serve printed, or send Authorization: Bearer TOKEN\n"
            }
        }
    }
}

pub struct Access {
    /// `None` when serving `--open`.
    token: Option<String>,
    /// `host:port` values accepted in `Host` (and after `http://` in `Origin`), lowercase.
    hosts: Vec<String>,
    cookie_name: String,
}

impl Access {
    /// `bound` is the TCP address served, `None` for a Unix socket (reached through `localhost`
    /// only, with no port, as `curl --unix-socket` sends it). `extra_hosts` are `--allow-host`
    /// names, accepted with the bound port.
    pub fn new(token: Option<String>, bound: Option<SocketAddr>, extra_hosts: &[String]) -> Access {
        let mut names = vec!["localhost".to_owned()];
        if bound.is_some() {
            names.extend(["127.0.0.1".to_owned(), "[::1]".to_owned()]);
        }
        names.extend(bound.map(|b| match b {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        }));
        names.extend(extra_hosts.iter().map(|h| h.to_ascii_lowercase()));
        let port = bound.map(|b| b.port());
        let mut hosts = Vec::new();
        for name in names {
            match port {
                Some(p) => hosts.push(format!("{name}:{p}")),
                None => hosts.push(name.clone()),
            }
            // A browser leaves out the default port.
            if port == Some(80) {
                hosts.push(name);
            }
        }
        hosts.dedup();
        // Cookies are not kept apart by port: the name carries it, so that two servers on one
        // machine do not overwrite each other's.
        let cookie_name = match port {
            Some(p) => format!("hark_serve_token_{p}"),
            None => "hark_serve_token_unix".to_owned(),
        };
        Access { token, hosts, cookie_name }
    }

    /// Decides on a request from its head alone, before anything is sent.
    pub fn check(&self, req: &Request) -> Result<(), Refusal> {
        let host = req.header("Host").ok_or(Refusal::NoHost)?;
        if !self.known_host(host) {
            return Err(Refusal::Host);
        }
        if let Some(origin) = req.header("Origin") {
            let known =
                origin.get(..7).is_some_and(|s| s.eq_ignore_ascii_case("http://")) && self.known_host(&origin[7..]);
            if !known {
                return Err(Refusal::Origin);
            }
        }
        match &self.token {
            None => Ok(()),
            Some(token) if self.presented(req).any(|t| same_secret(t, token)) => Ok(()),
            Some(_) => Err(Refusal::Token),
        }
    }

    fn known_host(&self, host: &str) -> bool {
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// Every token the request carries, wherever it carries it. Each is tried: a cookie left by
    /// an earlier run on the same port must not hide the token in the URL.
    fn presented<'a>(&'a self, req: &'a Request) -> impl Iterator<Item = &'a str> + 'a {
        let from_query = req.query_values("token");
        let from_cookie = req.header("Cookie").into_iter().flat_map(move |c| {
            c.split(';').filter_map(move |kv| {
                let (k, v) = kv.trim().split_once('=')?;
                (k == self.cookie_name).then_some(v)
            })
        });
        let from_bearer = req.header("Authorization").and_then(|a| {
            let (scheme, value) = a.split_once(' ')?;
            scheme.eq_ignore_ascii_case("Bearer").then(|| value.trim())
        });
        from_query.chain(from_cookie).chain(from_bearer)
    }

    /// The `Set-Cookie` header line (CRLF-terminated) for an authorised page load, so that the
    /// page's own `/ws` and `/events` requests carry the token without it being in their URLs.
    pub fn cookie_header(&self) -> String {
        match &self.token {
            Some(t) => format!("Set-Cookie: {}={t}; HttpOnly; SameSite=Strict; Path=/\r\n", self.cookie_name),
            None => String::new(),
        }
    }
}

/// Compares a presented token with the secret in time that depends on their lengths only.
fn same_secret(given: &str, secret: &str) -> bool {
    let (a, b) = (given.as_bytes(), secret.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// A fresh token: 256 bits from the system's random source, in hex.
pub fn generate_token() -> io::Result<String> {
    let mut bytes = [0u8; 32];
    File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Checks a token given by the user: long enough, and made of characters that go in a URL, a
/// cookie and a header as they are.
pub fn validate_token(token: &str) -> Result<(), String> {
    if token.len() < MIN_TOKEN_LEN {
        return Err(format!("the token must have at least {MIN_TOKEN_LEN} characters"));
    }
    if let Some(c) = token.chars().find(|c| !(c.is_ascii_alphanumeric() || "-._~".contains(*c))) {
        return Err(format!("the token may contain only letters, digits and - . _ ~, not {c:?}"));
    }
    Ok(())
}

/// Reads a token from the first line of `path`, which must belong to this user and be closed to
/// everyone else (as ssh insists for a private key).
pub fn read_token_file(path: &Path) -> Result<String, String> {
    let shown = path.display();
    // Non-blocking, so that a FIFO in its place is refused rather than waited on.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| format!("could not open the token file {shown}: {e}"))?;
    let meta = file.metadata().map_err(|e| format!("{shown}: {e}"))?;
    if !meta.is_file() {
        return Err(format!("the token file {shown} is not a regular file"));
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        return Err(format!("the token file {shown} belongs to uid {}, not to this user (uid {me})", meta.uid()));
    }
    if meta.mode() & 0o077 != 0 {
        return Err(format!(
            "the token file {shown} is open to other users (mode {:04o}); chmod 600 it",
            meta.mode() & 0o7777
        ));
    }
    let mut text = String::new();
    file.take(4096).read_to_string(&mut text).map_err(|e| format!("could not read the token file {shown}: {e}"))?;
    let token = text.lines().next().unwrap_or("").trim().to_owned();
    validate_token(&token).map_err(|e| format!("{shown}: {e}"))?;
    Ok(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_compare_equal_only_when_equal() {
        assert!(same_secret("abcdef", "abcdef"));
        assert!(!same_secret("abcdeg", "abcdef"));
        assert!(!same_secret("abcde", "abcdef"));
        assert!(!same_secret("", "abcdef"));
    }

    #[test]
    fn generated_tokens_are_long_fresh_and_url_safe() {
        let (a, b) = (generate_token().unwrap(), generate_token().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        validate_token(&a).unwrap();
    }

    #[test]
    fn user_tokens_must_be_long_and_plain() {
        assert!(validate_token("0123456789abcdef").is_ok());
        assert_eq!(validate_token("short").unwrap_err(), "the token must have at least 16 characters");
        assert!(validate_token("0123456789abcdef;x").unwrap_err().contains("';'"));
    }
}
