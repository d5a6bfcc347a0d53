//! Connection settings as libpq reads them: a `key=value` string or a `postgresql://` URI (parsed
//! by tokio-postgres, but for the TLS settings, read here: `tls.rs`), then the `PG*` environment
//! variables for whatever the string left unset, then libpq's defaults, and a password from the
//! password file (`PGPASSFILE`, else `~/.pgpass`) when none was given. The precedence is
//! libpq's: string, environment, defaults.

use crate::tls::{RootCert, SslMode, Tls};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_postgres::config::Host;
use tokio_postgres::Config;

/// Where and how to connect: tokio-postgres's settings, and the TLS ones.
#[derive(Clone, Debug)]
pub struct Target {
    pub pg: Config,
    pub tls: Tls,
}

/// The TLS settings the bridge reads itself (tokio-postgres knows only some of `sslmode`'s
/// values and none of the files), with their environment variables. `sslcompression` is
/// accepted and ignored, as libpq has since PostgreSQL 14.
const TLS_KEYS: [(&str, &str); 6] = [
    ("sslmode", "PGSSLMODE"),
    ("sslrootcert", "PGSSLROOTCERT"),
    ("sslcert", "PGSSLCERT"),
    ("sslkey", "PGSSLKEY"),
    ("sslsni", "PGSSLSNI"),
    ("sslcompression", "PGSSLCOMPRESSION"),
];

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
pub fn resolve(conninfo: &str) -> Result<Target, String> {
    resolve_with(conninfo, &|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

/// Reads `conninfo`, then fills what it left unset from `env` (the `PG*` variables, and `HOME`
/// for libpq's files) and libpq's defaults, and looks the password up in the password file when
/// there is still none.
pub fn resolve_with(conninfo: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Target, String> {
    let (rest, tls_params) = take_tls_params(conninfo);
    let mut c: Config = if rest.trim().is_empty() {
        Config::new()
    } else {
        rest.parse().map_err(|e: tokio_postgres::Error| {
            let why = std::error::Error::source(&e).map_or_else(|| e.to_string(), ToString::to_string);
            format!("invalid connection string \"{}\": {why}", redact(conninfo))
        })?
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
    let tls = tls_settings(&tls_params, env)?;
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
    Ok(Target { pg: c, tls })
}

/// The TLS settings: the string's, else the environment's, else libpq's defaults (files in
/// `~/.postgresql`).
fn tls_settings(params: &[(String, String)], env: &dyn Fn(&str) -> Option<String>) -> Result<Tls, String> {
    let get = |key: &str| {
        let var = TLS_KEYS.iter().find(|(k, _)| *k == key).map(|(_, v)| *v).unwrap_or_default();
        params.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone()).or_else(|| env(var))
    };
    // Settings whose string forms tokio-postgres refuses by name; their variables would be
    // ignored without a word, leaving a check the user asked for undone.
    for var in ["PGSSLCRL", "PGSSLCRLDIR", "PGSSLMINPROTOCOLVERSION", "PGSSLMAXPROTOCOLVERSION"] {
        if env(var).is_some() {
            return Err(format!(
                "{var} is set, but the bridge does not support it (see \"Several machines\" in README)"
            ));
        }
    }
    let home = env("HOME").map(PathBuf::from);
    let file = |key: &str, default: &str| {
        get(key).map(PathBuf::from).or_else(|| home.as_ref().map(|h| h.join(".postgresql").join(default)))
    };
    let mode = get("sslmode").map(|m| SslMode::parse(&m)).transpose()?;
    let root_cert = match get("sslrootcert") {
        Some(s) if s == "system" => RootCert::System,
        _ => RootCert::File(file("sslrootcert", "root.crt")),
    };
    let sni = match get("sslsni").as_deref() {
        None => true,
        Some(v) => v.trim().parse::<i64>().map_err(|_| format!("invalid sslsni value: \"{v}\""))? != 0,
    };
    Tls::new(mode, root_cert, file("sslcert", "postgresql.crt"), file("sslkey", "postgresql.key"), sni)
}

/// Splits the TLS settings (`TLS_KEYS`) off a connection string: the rest, for tokio-postgres,
/// and the settings, decoded. A string this cannot read is returned whole, for tokio-postgres
/// to say what is wrong with it.
fn take_tls_params(conninfo: &str) -> (String, Vec<(String, String)>) {
    let is_tls = |k: &str| TLS_KEYS.iter().any(|(key, _)| *key == k);
    let mut taken = Vec::new();
    let uri = conninfo.trim_start();
    if uri.starts_with("postgresql://") || uri.starts_with("postgres://") {
        let Some((base, query)) = uri.split_once('?') else { return (conninfo.to_owned(), taken) };
        let mut kept = Vec::new();
        for pair in query.split('&') {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            match (percent_decode(k), percent_decode(v)) {
                (Some(k), Some(v)) if is_tls(&k) => taken.push((k, v)),
                _ => kept.push(pair),
            }
        }
        let rest = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
        return (rest, taken);
    }
    // key = value pairs: a value is bare (up to white space) or quoted in '…'; a backslash
    // escapes the next character in either.
    let b = conninfo.as_bytes();
    let mut rest = String::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let key_start = i;
        while i < b.len() && !b[i].is_ascii_whitespace() && b[i] != b'=' {
            i += 1;
        }
        let key = &conninfo[key_start..i];
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        if key.is_empty() && i >= b.len() {
            rest.push_str(&conninfo[start..]);
            break;
        }
        if i >= b.len() || b[i] != b'=' {
            return (conninfo.to_owned(), Vec::new());
        }
        i += 1;
        while i < b.len() && b[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = Vec::new();
        let quoted = i < b.len() && b[i] == b'\'';
        if quoted {
            i += 1;
        }
        loop {
            if i >= b.len() {
                if quoted {
                    return (conninfo.to_owned(), Vec::new());
                }
                break;
            }
            match b[i] {
                b'\\' if i + 1 < b.len() => {
                    value.push(b[i + 1]);
                    i += 2;
                }
                b'\'' if quoted => {
                    i += 1;
                    break;
                }
                c if !quoted && c.is_ascii_whitespace() => break,
                c => {
                    value.push(c);
                    i += 1;
                }
            }
        }
        if is_tls(key) {
            taken.push((key.to_owned(), String::from_utf8_lossy(&value).into_owned()));
        } else {
            rest.push_str(&conninfo[start..i]);
        }
    }
    (rest, taken)
}

/// `%XX` decoding of a URI's query part (`None`: malformed).
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
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
        if let Some(key) = ["password=", "sslpassword="].into_iter().find(|k| w.starts_with(k)) {
            out.push_str(key);
            out.push('…');
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
pub fn describe(t: &Target) -> String {
    let c = &t.pg;
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
        "host={} port={port} user={} dbname={} sslmode={}",
        hosts.join(","),
        c.get_user().unwrap_or_default(),
        c.get_dbname().unwrap_or_default(),
        t.tls.mode.name()
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

/// libpq's `passwordFromFile`: the first line `hostname:port:database:username:password` whose
/// fields match (`*` matches anything; `\:` and `\\` escape), for the first host. A Unix-socket
/// host in the default directory is looked up as `localhost`. The file is ignored, with libpq's
/// warning, when group or others may read it.
fn password_from_file(c: &Config, env: &dyn Fn(&str) -> Option<String>) -> Option<String> {
    let path =
        env("PGPASSFILE").map(PathBuf::from).or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".pgpass")))?;
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
        let c = resolve_with("user=bob", &env).unwrap().pg;
        assert_eq!(c.get_user(), Some("bob"));
        assert_eq!(c.get_dbname(), Some("shop"));
        assert_eq!(c.get_ports(), &[5433]);
        assert!(matches!(&c.get_hosts()[0], Host::Unix(p) if p == Path::new("/run/pg")));
        let c = resolve_with("postgresql://carol@db.example:6000/orders", &env).unwrap().pg;
        assert_eq!((c.get_user(), c.get_dbname(), c.get_ports()), (Some("carol"), Some("orders"), &[6000u16][..]));
        assert!(matches!(&c.get_hosts()[0], Host::Tcp(h) if h == "db.example"));
    }

    #[test]
    fn an_idle_connection_is_watched_by_keepalives_unless_the_string_says_otherwise() {
        let c = resolve_with("host=/x", &env_of(&[])).unwrap().pg;
        assert_eq!(c.get_keepalives_idle(), Duration::from_secs(10));
        assert_eq!(c.get_keepalives_retries(), Some(3));
        let c = resolve_with("host=/x keepalives_idle=600", &env_of(&[])).unwrap().pg;
        assert_eq!(c.get_keepalives_idle(), Duration::from_secs(600));
    }

    #[test]
    fn the_database_defaults_to_the_user_name() {
        let c = resolve_with("", &env_of(&[("PGUSER", "dave"), ("PGHOST", "/x")])).unwrap().pg;
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
    fn tls_settings_come_from_the_string_the_uri_the_environment_or_home() {
        let env = env_of(&[("HOME", "/home/ann"), ("PGSSLMODE", "verify-ca")]);
        // The string's sslmode wins; the files default to ~/.postgresql; the rest goes on to
        // tokio-postgres, quoting and escapes included.
        let t = resolve_with("host=db sslmode = 'verify-full' application_name='a b\\'c'", &env).unwrap();
        assert_eq!(t.tls.mode, SslMode::VerifyFull);
        assert_eq!(t.tls.root_cert, RootCert::File(Some("/home/ann/.postgresql/root.crt".into())));
        assert_eq!(t.tls.cert.as_deref(), Some(Path::new("/home/ann/.postgresql/postgresql.crt")));
        assert_eq!(t.tls.key.as_deref(), Some(Path::new("/home/ann/.postgresql/postgresql.key")));
        assert_eq!(t.pg.get_application_name(), Some("a b'c"));
        assert!(describe(&t).ends_with("sslmode=verify-full"), "{}", describe(&t));
        // The environment's when the string says nothing; libpq's default, prefer, without either.
        assert_eq!(resolve_with("host=db", &env).unwrap().tls.mode, SslMode::VerifyCa);
        assert_eq!(resolve_with("host=db", &env_of(&[])).unwrap().tls.mode, SslMode::Prefer);
        assert_eq!(resolve_with("host=db", &env_of(&[])).unwrap().tls.root_cert, RootCert::File(None));
        // A URI's query, percent-encoded; its other parameters stay.
        let t = resolve_with(
            "postgresql://u@db:6000/app?sslmode=require&application_name=x&sslrootcert=%2Fetc%2Fca%20s.crt&sslkey=/k",
            &env,
        )
        .unwrap();
        assert_eq!(t.tls.mode, SslMode::Require);
        assert_eq!(t.tls.root_cert, RootCert::File(Some("/etc/ca s.crt".into())));
        assert_eq!(t.tls.key.as_deref(), Some(Path::new("/k")));
        assert_eq!((t.pg.get_application_name(), t.pg.get_ports()), (Some("x"), &[6000u16][..]));
        let env = env_of(&[("PGSSLROOTCERT", "/r.crt"), ("PGSSLCERT", "/c.crt"), ("PGSSLSNI", "0")]);
        let t = resolve_with("host=db sslcompression=0", &env).unwrap();
        assert_eq!(
            (t.tls.root_cert, t.tls.cert, t.tls.sni),
            (RootCert::File(Some("/r.crt".into())), Some("/c.crt".into()), false)
        );
    }

    #[test]
    fn the_system_roots_mean_verify_full_and_a_wrong_mode_is_refused() {
        let t = resolve_with("host=db sslrootcert=system", &env_of(&[])).unwrap();
        assert_eq!((t.tls.mode, t.tls.root_cert), (SslMode::VerifyFull, RootCert::System));
        let e = resolve_with("host=db sslrootcert=system sslmode=require", &env_of(&[])).unwrap_err();
        assert!(e.contains("weak sslmode \"require\" may not be used with sslrootcert=system"), "{e}");
        let e = resolve_with("host=db sslmode=sometimes", &env_of(&[])).unwrap_err();
        assert_eq!(e, "invalid sslmode value: \"sometimes\"");
        let e = resolve_with("host=/x", &env_of(&[("PGSSLMODE", "on")])).unwrap_err();
        assert_eq!(e, "invalid sslmode value: \"on\"");
        for unsupported in ["sslcrl=/c", "sslpassword=p", "ssl_min_protocol_version=TLSv1.3"] {
            let e = resolve_with(&format!("host=db {unsupported}"), &env_of(&[])).unwrap_err();
            let name = unsupported.split('=').next().unwrap();
            assert!(e.contains(&format!("unknown option `{name}`")), "{e}");
        }
        let e = resolve_with("host=db", &env_of(&[("PGSSLCRL", "/c")])).unwrap_err();
        assert!(e.starts_with("PGSSLCRL is set, but the bridge does not support it"), "{e}");
    }

    #[test]
    fn passwords_never_appear_in_messages() {
        assert_eq!(redact("host=a password=secret user=u"), "host=a password=… user=u");
        assert_eq!(redact("host=a sslpassword=secret"), "host=a sslpassword=…");
        assert_eq!(redact("postgresql://u:secret@h/db"), "postgresql://u:…@h/db");
    }
}
