//! Connection settings as libpq reads them: a `key=value` string or a `postgresql://` URI (parsed
//! by tokio-postgres), then the `PG*` environment variables for whatever the string left unset,
//! then libpq's defaults, and a password from the password file (`PGPASSFILE`, else
//! `~/.pgpass`) when none was given. The precedence is libpq's: string, environment, defaults.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::Config;

/// The directory of the server's Unix socket when neither the string nor `PGHOST` names a host:
/// Debian's libpq looks in `/var/run/postgresql`, upstream's in `/tmp`.
pub fn default_socket_dir() -> PathBuf {
    let debian = Path::new("/var/run/postgresql");
    if debian.is_dir() {
        debian.to_owned()
    } else {
        PathBuf::from("/tmp")
    }
}

/// Reads `conninfo` with the process's environment (see [`resolve_with`]).
pub fn resolve(conninfo: &str) -> Result<Config, String> {
    resolve_with(conninfo, &|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

/// Reads `conninfo`, then fills what it left unset from `env` (the `PG*` variables) and libpq's
/// defaults, and looks the password up in the password file when there is still none.
pub fn resolve_with(conninfo: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, String> {
    let mut c: Config = if conninfo.trim().is_empty() {
        Config::new()
    } else {
        conninfo.parse().map_err(|e| format!("invalid connection string \"{}\": {e}", redact(conninfo)))?
    };
    if c.get_hosts().is_empty() {
        let hosts = env("PGHOST").unwrap_or_else(|| default_socket_dir().display().to_string());
        for h in hosts.split(',') {
            if h.starts_with('/') {
                c.host_path(h);
            } else {
                c.host(h);
            }
        }
    }
    if c.get_ports().is_empty() {
        if let Some(ports) = env("PGPORT") {
            for p in ports.split(',') {
                let port = p.trim().parse().map_err(|_| format!("invalid port number: \"{p}\""))?;
                c.port(port);
            }
        }
    }
    if c.get_user().is_none() {
        let user = env("PGUSER").or_else(os_user_name).ok_or("could not look up the local user name")?;
        c.user(user);
    }
    if c.get_dbname().is_none() {
        let db = env("PGDATABASE").unwrap_or_else(|| c.get_user().unwrap_or_default().to_owned());
        c.dbname(db);
    }
    if c.get_options().is_none() {
        if let Some(o) = env("PGOPTIONS") {
            c.options(o);
        }
    }
    if c.get_application_name().is_none() {
        c.application_name(env("PGAPPNAME").unwrap_or_else(|| "hark bridge".to_owned()));
    }
    if c.get_connect_timeout().is_none() {
        if let Some(t) = env("PGCONNECT_TIMEOUT") {
            let secs: u64 = t.trim().parse().map_err(|_| format!("invalid connect_timeout value: \"{t}\""))?;
            if secs > 0 {
                c.connect_timeout(Duration::from_secs(secs.max(2)));
            }
        }
    }
    if !mentions(conninfo, "sslmode") {
        if let Some(m) = env("PGSSLMODE") {
            c.ssl_mode(match m.as_str() {
                "disable" | "allow" => SslMode::Disable,
                "prefer" => SslMode::Prefer,
                other => return Err(no_tls(other)),
            });
        }
    }
    if c.get_ssl_mode() == SslMode::Require {
        return Err(no_tls("require"));
    }
    // A bridge mostly waits on an idle connection: notice a vanished server (a partition, a
    // crashed host) within about 25 s instead of the kernel's two hours, unless told otherwise.
    if !mentions(conninfo, "keepalives_idle") {
        c.keepalives_idle(Duration::from_secs(10));
    }
    if !mentions(conninfo, "keepalives_interval") {
        c.keepalives_interval(Duration::from_secs(5));
    }
    if !mentions(conninfo, "keepalives_retries") {
        c.keepalives_retries(3);
    }
    if c.get_password().is_none() {
        if let Some(pw) = env("PGPASSWORD") {
            c.password(pw);
        } else if let Some(pw) = password_from_file(&c, env) {
            c.password(pw);
        }
    }
    Ok(c)
}

fn no_tls(mode: &str) -> String {
    format!(
        "sslmode \"{mode}\" is not supported: this build of the bridge connects without TLS (use sslmode=disable or \
         prefer, over a Unix socket, a private network or an SSH tunnel)"
    )
}

/// Whether the string sets `key`, as `key=` or as a URI query parameter.
fn mentions(conninfo: &str, key: &str) -> bool {
    conninfo
        .split(|c: char| c.is_whitespace() || c == '?' || c == '&')
        .any(|w| w.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with('=')))
        || conninfo.contains(&format!("{key} ="))
}

/// The connection string with any password replaced, for messages.
pub fn redact(conninfo: &str) -> String {
    let mut out = String::new();
    for (i, w) in conninfo.split(' ').enumerate() {
        if i > 0 {
            out.push(' ');
        }
        if w.starts_with("password=") {
            out.push_str("password=…");
        } else if let Some(rest) = w.strip_prefix("postgresql://").or_else(|| w.strip_prefix("postgres://")) {
            let scheme = &w[..w.len() - rest.len()];
            match (rest.find('@'), rest.find(':')) {
                (Some(at), Some(colon)) if colon < at => {
                    out.push_str(&format!("{scheme}{}:…{}", &rest[..colon], &rest[at..]));
                }
                _ => out.push_str(w),
            }
        } else {
            out.push_str(w);
        }
    }
    out
}

/// A short description of where a config points (no password), for logs and `hark stat`.
pub fn describe(c: &Config) -> String {
    let hosts: Vec<String> = c
        .get_hosts()
        .iter()
        .map(|h| match h {
            Host::Tcp(name) => name.clone(),
            Host::Unix(path) => path.display().to_string(),
        })
        .collect();
    let port = c.get_ports().first().copied().unwrap_or(5432);
    format!(
        "host={} port={port} user={} dbname={}",
        hosts.join(","),
        c.get_user().unwrap_or_default(),
        c.get_dbname().unwrap_or_default()
    )
}

fn os_user_name() -> Option<String> {
    // SAFETY: getpwuid_r writes into our buffer and record only; the returned pointer, when not
    // null, points at `pw`, whose strings point into `buf`, both alive while we read them.
    unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut buf = vec![0 as libc::c_char; 4096];
        let mut out: *mut libc::passwd = std::ptr::null_mut();
        let rc = libc::getpwuid_r(libc::geteuid(), &mut pw, buf.as_mut_ptr(), buf.len(), &mut out);
        if rc != 0 || out.is_null() || pw.pw_name.is_null() {
            return None;
        }
        Some(std::ffi::CStr::from_ptr(pw.pw_name).to_string_lossy().into_owned())
    }
}

fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME").map(PathBuf::from).filter(|p| !p.as_os_str().is_empty())
}

/// libpq's `passwordFromFile`: the first line `hostname:port:database:username:password` whose
/// fields match (`*` matches anything; `\:` and `\\` escape), for the first host. A Unix-socket
/// host in the default directory is looked up as `localhost`. The file is ignored, with libpq's
/// warning, when group or others may read it.
fn password_from_file(c: &Config, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let path = env("PGPASSFILE").map(PathBuf::from).or_else(|| home_dir().map(|h| h.join(".pgpass")))?;
    let meta = std::fs::metadata(&path).ok()?;
    if !meta.is_file() {
        return None;
    }
    if meta.mode() & 0o077 != 0 {
        eprintln!(
            "WARNING: password file \"{}\" has group or world access; permissions should be u=rw (0600) or less",
            path.display()
        );
        return None;
    }
    let text = std::fs::read_to_string(&path).ok()?;
    let host = match c.get_hosts().first()? {
        Host::Tcp(h) => h.clone(),
        Host::Unix(p) if *p == default_socket_dir() => "localhost".to_owned(),
        Host::Unix(p) => p.display().to_string(),
    };
    let port = c.get_ports().first().copied().unwrap_or(5432).to_string();
    let wanted = [host.as_str(), port.as_str(), c.get_dbname().unwrap_or_default(), c.get_user().unwrap_or_default()];
    password_in(&text, &wanted)
}

/// The password of the first line of a password file matching `wanted` (host, port, database,
/// user).
pub fn password_in(text: &str, wanted: &[&str; 4]) -> Option<String> {
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let fields = split_pgpass_line(line);
        if fields.len() < 5 {
            continue;
        }
        if fields[..4].iter().zip(wanted).all(|(f, w)| f == "*" || f == w) {
            return Some(fields[4..].join(":"));
        }
    }
    None
}

fn split_pgpass_line(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(ch) = chars.next() {
        match ch {
            '\\' => {
                if let Some(next) = chars.next() {
                    fields.last_mut().unwrap().push(next);
                }
            }
            ':' if fields.len() < 5 => fields.push(String::new()),
            _ => fields.last_mut().unwrap().push(ch),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
    }

    #[test]
    fn the_string_wins_over_the_environment_which_wins_over_defaults() {
        let env = env_of(&[("PGHOST", "/run/pg"), ("PGPORT", "5433"), ("PGUSER", "alice"), ("PGDATABASE", "shop")]);
        let c = resolve_with("user=bob", &env).unwrap();
        assert_eq!(c.get_user(), Some("bob"));
        assert_eq!(c.get_dbname(), Some("shop"));
        assert_eq!(c.get_ports(), &[5433]);
        assert!(matches!(&c.get_hosts()[0], Host::Unix(p) if p == Path::new("/run/pg")));
        let c = resolve_with("postgresql://carol@db.example:6000/orders", &env).unwrap();
        assert_eq!((c.get_user(), c.get_dbname(), c.get_ports()), (Some("carol"), Some("orders"), &[6000u16][..]));
        assert!(matches!(&c.get_hosts()[0], Host::Tcp(h) if h == "db.example"));
    }

    #[test]
    fn an_idle_connection_is_watched_by_keepalives_unless_the_string_says_otherwise() {
        let c = resolve_with("host=/x", &env_of(&[])).unwrap();
        assert_eq!(c.get_keepalives_idle(), Duration::from_secs(10));
        assert_eq!(c.get_keepalives_retries(), Some(3));
        let c = resolve_with("host=/x keepalives_idle=600", &env_of(&[])).unwrap();
        assert_eq!(c.get_keepalives_idle(), Duration::from_secs(600));
    }

    #[test]
    fn the_database_defaults_to_the_user_name() {
        let c = resolve_with("", &env_of(&[("PGUSER", "dave"), ("PGHOST", "/x")])).unwrap();
        assert_eq!(c.get_dbname(), Some("dave"));
    }

    #[test]
    fn pgpass_lines_match_field_by_field_with_wildcards_and_escapes() {
        let text = "# comment\nother:5432:*:u:nope\nlocalhost:5432:db\\:1:u:p\\:w\\\\d\n*:*:*:u:fallback\n";
        assert_eq!(password_in(text, &["localhost", "5432", "db:1", "u"]).as_deref(), Some("p:w\\d"));
        assert_eq!(password_in(text, &["elsewhere", "1", "x", "u"]).as_deref(), Some("fallback"));
        assert_eq!(password_in(text, &["elsewhere", "1", "x", "v"]), None);
    }

    #[test]
    fn tls_modes_that_need_tls_are_refused_with_a_reason() {
        let e = resolve_with("host=/x sslmode=require", &env_of(&[])).unwrap_err();
        assert!(e.contains("sslmode \"require\" is not supported"), "{e}");
        let e = resolve_with("host=/x", &env_of(&[("PGSSLMODE", "verify-full")])).unwrap_err();
        assert!(e.contains("verify-full"), "{e}");
    }

    #[test]
    fn passwords_never_appear_in_messages() {
        assert_eq!(redact("host=a password=secret user=u"), "host=a password=… user=u");
        assert_eq!(redact("postgresql://u:secret@h/db"), "postgresql://u:…@h/db");
    }
}
