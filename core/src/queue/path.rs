//! What may be a queue directory: not a PostgreSQL connection string or URL, and, for a queue to
//! be created in it, a missing or empty directory (or one holding only hark's own files, left by a
//! creation that was interrupted), never a populated directory that is not a queue.

use super::{is_segment_name, CONTROL, CONTROL_NEW, LOCK, SLOTS, SPARE};
use crate::error::{Error, ErrorKind, Result};
use crate::sys::fs::Dir;
use std::path::Path;

/// libpq's connection keywords (and hark's own `dir` of `hark_connect_params`): `KEYWORD=` at
/// the start of the string or after a space marks a connection string.
const CONNINFO_KEYWORDS: &[&str] = &[
    "application_name",
    "channel_binding",
    "client_encoding",
    "connect_timeout",
    "dbname",
    "dir",
    "fallback_application_name",
    "gssdelegation",
    "gssencmode",
    "gsslib",
    "host",
    "hostaddr",
    "keepalives",
    "keepalives_count",
    "keepalives_idle",
    "keepalives_interval",
    "krbsrvname",
    "load_balance_hosts",
    "options",
    "passfile",
    "password",
    "port",
    "replication",
    "require_auth",
    "requirepeer",
    "requiressl",
    "service",
    "ssl_max_protocol_version",
    "ssl_min_protocol_version",
    "sslcert",
    "sslcertmode",
    "sslcompression",
    "sslcrl",
    "sslcrldir",
    "sslkey",
    "sslmode",
    "sslnegotiation",
    "sslpassword",
    "sslrootcert",
    "sslsni",
    "target_session_attrs",
    "tcp_user_timeout",
    "user",
];

/// Refuses a path that is a connection string (`dbname=app host=db`) or a URL
/// (`postgresql://db/app`): hark would otherwise create a queue directory of that name, and the
/// program would talk to a queue nobody else uses.
pub(crate) fn refuse_server_address(path: &Path) -> Result<()> {
    let s = String::from_utf8_lossy(path.as_os_str().as_encoded_bytes());
    let what = if is_url(&s) {
        "a URL"
    } else if is_conninfo(&s) {
        "a connection string"
    } else {
        return Ok(());
    };
    Err(Error::invalid(format!("queue directory \"{s}\" looks like {what}, not a directory")).with_hint(format!(
        "hark has no server: give the path of a queue directory (created if missing), or none for the \
         default ($HARK_DIR, else /dev/shm/hark-<uid>). A directory really named so can be given as \"./{s}\"."
    )))
}

/// `scheme://…`, as `postgresql://`, `postgres://` or any other.
fn is_url(s: &str) -> bool {
    let Some((scheme, _)) = s.split_once("://") else { return false };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c))
}

/// A libpq keyword followed by `=` (spaces allowed between, as libpq allows), at the start of
/// the string or after white space.
fn is_conninfo(s: &str) -> bool {
    let b = s.as_bytes();
    (0..b.len()).filter(|&i| i == 0 || b[i - 1].is_ascii_whitespace()).any(|i| {
        let word = b[i..].iter().take_while(|c| c.is_ascii_alphanumeric() || **c == b'_').count();
        let after = b[i + word..].iter().find(|c| !c.is_ascii_whitespace());
        after == Some(&b'=') && std::str::from_utf8(&b[i..i + word]).is_ok_and(|w| CONNINFO_KEYWORDS.contains(&w))
    })
}

/// Whether `name` is one of the files a queue directory holds.
fn is_queue_file_name(name: &str) -> bool {
    [CONTROL, CONTROL_NEW, LOCK, SLOTS, SPARE].contains(&name)
        || is_segment_name(name)
        || crate::sys::wake::parse_socket_name(name).is_some()
}

/// Checks that a queue may be created in `dir`, which has no control file: `create` is set, and
/// the directory holds nothing but hark's own files (none, or those of an interrupted creation).
pub(crate) fn check_creatable(dir: &Dir, path: &Path, create: bool) -> Result<()> {
    let shown = path.display();
    if !create {
        return Err(
            no_queue(path).with_detail(format!("The directory \"{shown}\" holds no hark queue (no file \"control\")."))
        );
    }
    let names = dir.list()?;
    let mut foreign = names.iter().filter(|n| !is_queue_file_name(n));
    let Some(first) = foreign.next() else { return Ok(()) };
    let others = foreign.count();
    let detail = match others {
        0 => format!("It holds \"{first}\", and no hark queue."),
        n => format!("It holds \"{first}\" and {n} other entr{}, and no hark queue.", if n == 1 { "y" } else { "ies" }),
    };
    // initdb's words for the same mistake.
    Err(Error::new(ErrorKind::PermissionDenied, "55000", format!("directory \"{shown}\" exists but is not empty"))
        .with_detail(detail)
        .with_hint(
            "hark creates a queue only in a missing or empty directory, and never writes into one that holds \
             other files. Give a path that does not exist yet (hark creates it), or an empty directory.",
        ))
}

/// `queue "…" does not exist`: PostgreSQL's `database "…" does not exist`, for an open that
/// must not create the queue.
pub(crate) fn no_queue(path: &Path) -> Error {
    Error::new(ErrorKind::Io, "3D000", format!("queue \"{}\" does not exist", path.display())).with_hint(
        "This connection opens only an existing queue (create is off); the queue is created by a connection \
         that may create it, or check the path.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_strings_and_urls_are_recognised() {
        for s in [
            "dbname=app",
            "host=localhost dbname=app",
            "  user = me",
            "dbname =app",
            "port=5432",
            "service=prod",
            "dir=/tmp/q",
            "postgresql://db/app",
            "postgres://user@localhost:5432/app",
            "postgresql:///app?host=/run/postgresql",
            "file:///tmp/q",
        ] {
            assert!(refuse_server_address(Path::new(s)).is_err(), "{s:?} was accepted");
        }
        for s in [
            "/tmp/q",
            "q",
            "./dbname=app",
            "/srv/queues/dbname=app",
            "my queue",
            "a=b",
            "weird=dir",
            "/tmp/x:/y",
            "hosted=1",
            "1host=2",
            "./postgres://x",
        ] {
            assert!(refuse_server_address(Path::new(s)).is_ok(), "{s:?} was refused");
        }
        let e = refuse_server_address(Path::new("dbname=app")).unwrap_err();
        assert_eq!((e.kind(), e.sqlstate()), (ErrorKind::InvalidArgument, "22023"));
        assert_eq!(e.message(), "queue directory \"dbname=app\" looks like a connection string, not a directory");
        assert!(e.hint().unwrap().contains("\"./dbname=app\""), "{:?}", e.hint());
        let e = refuse_server_address(Path::new("postgres://h/db")).unwrap_err();
        assert_eq!(e.message(), "queue directory \"postgres://h/db\" looks like a URL, not a directory");
    }
}
