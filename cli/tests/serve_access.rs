//! Who may read what `hark serve` streams, over raw sockets: the token printed at start (in the
//! URL, the page's cookie, or a Bearer header), the Host allow-list that defeats DNS rebinding,
//! the Origin check, `--open`, tokens of the user's choosing, another Unix user of the same
//! machine connecting to the same loopback port, and `--unix` sockets.

mod common;

use common::{hark, serve, serve_with, test_user, ws_connect, ws_text, TempDir};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

const NO_TOKEN: &str = "a token is required: open the URL hark serve printed, or send Authorization: Bearer TOKEN\n";
const BAD_HOST: &str = "host not allowed (hark serve --allow-host NAME admits another)\n";
const CROSS_ORIGIN: &str = "cross-origin request refused\n";

/// Sends a request made of `lines` (request line and headers) and returns the response's head and
/// body: the body by its Content-Length, or for a stream its first event.
fn exchange(addr: SocketAddr, lines: &[&str]) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "{}\r\n\r\n", lines.join("\r\n")).unwrap();
    let mut r = BufReader::new(s);
    let mut head = String::new();
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let len = head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).map(|n| n.parse::<usize>().unwrap());
    let body = match len {
        Some(n) => {
            let mut b = vec![0; n];
            r.read_exact(&mut b).unwrap();
            String::from_utf8(b).unwrap()
        }
        None => {
            let mut event = String::new();
            while !event.ends_with("\n\n") && r.read_line(&mut event).unwrap() > 0 {}
            event
        }
    };
    (head, body)
}

fn get(addr: SocketAddr, target: &str, extra: &[&str]) -> (String, String) {
    let start = format!("GET {target} HTTP/1.1");
    let host = format!("Host: {addr}");
    let mut lines = vec![start.as_str(), host.as_str()];
    lines.extend_from_slice(extra);
    exchange(addr, &lines)
}

fn status(head: &str) -> &str {
    head.lines().next().unwrap_or("")
}

#[test]
fn without_the_right_token_nothing_is_served() {
    let dir = TempDir::new("access-token");
    let srv = serve(dir.path(), &["orders"]);
    let token = srv.token.clone().expect("hark serve prints a URL with a token");
    assert!(token.len() >= 32 && token.bytes().all(|b| b.is_ascii_hexdigit()), "{token}");
    // Something the stream would show to anyone it served.
    hark::Connection::open(dir.path()).unwrap().notify("orders", "confidential").unwrap();

    let port = srv.addr.port();
    let last = if token.ends_with('0') { '1' } else { '0' };
    let wrong = format!("{}{last}", &token[..token.len() - 1]);
    let other_port_cookie = format!("Cookie: hark_serve_token_{}={token}", port + 1);
    let wrong_cookie = format!("Cookie: hark_serve_token_{port}={wrong}");
    let wrong_bearer = format!("Authorization: Bearer {wrong}");
    let token_as_basic = format!("Authorization: Basic {token}");
    let attempts: [(&str, Vec<&str>); 7] = [
        ("", vec![]),
        ("?token=", vec![]),
        (&format!("?token={wrong}"), vec![]),
        (&format!("?tok={token}"), vec![]),
        ("", vec![&wrong_cookie, &wrong_bearer]),
        ("", vec![&other_port_cookie]),
        ("", vec![&token_as_basic]),
    ];
    for path in ["/", "/index.html", "/events", "/ws", "/nope"] {
        for (query, extra) in &attempts {
            let (head, body) = get(srv.addr, &format!("{path}{query}"), extra);
            assert_eq!(status(&head), "HTTP/1.1 403 Forbidden", "{path}{query} {extra:?}");
            assert_eq!(body, NO_TOKEN, "{path}{query} {extra:?}");
        }
    }
    assert_eq!(ws_connect(srv.addr, "/ws", "").unwrap_err(), "HTTP/1.1 403 Forbidden");
    assert_eq!(ws_connect(srv.addr, &format!("/ws?token={wrong}"), "").unwrap_err(), "HTTP/1.1 403 Forbidden");

    // The right one, in the URL, opens each of them.
    let (head, body) = get(srv.addr, &srv.path("/events"), &[]);
    assert_eq!(status(&head), "HTTP/1.1 200 OK");
    assert!(body.starts_with("event: hello\ndata: {\"type\":\"hello\",\"channels\":[\"orders\"]"), "{body}");
    assert!(ws_text(&mut ws_connect(srv.addr, &srv.path("/ws"), "").unwrap()).contains("\"counts\":{\"orders\":1}"));
}

#[test]
fn the_page_sets_a_cookie_that_opens_its_own_streams() {
    let dir = TempDir::new("access-cookie");
    let srv = serve(dir.path(), &["orders"]);
    let token = srv.token.clone().unwrap();
    let port = srv.addr.port();

    let (head, body) = get(srv.addr, &srv.path("/"), &[]);
    assert_eq!(status(&head), "HTTP/1.1 200 OK");
    assert!(body.contains("const CHANNELS = [\"orders\"];"));
    let set = head.lines().find_map(|l| l.strip_prefix("Set-Cookie: ")).expect("a Set-Cookie header");
    assert_eq!(set, format!("hark_serve_token_{port}={token}; HttpOnly; SameSite=Strict; Path=/"));
    let cookie = format!("Cookie: theme=dark; {}", set.split(';').next().unwrap());

    // As the browser sends it with the page's own requests (same origin, no token in the URL).
    let origin = format!("Origin: http://{}", srv.addr);
    let mut wsock = ws_connect(srv.addr, "/ws", &format!("{cookie}\r\n{origin}\r\n")).expect("/ws with the cookie");
    assert!(ws_text(&mut wsock).starts_with("{\"type\":\"hello\""));
    let (head, body) = get(srv.addr, "/events", &[&cookie, &origin]);
    assert_eq!(status(&head), "HTTP/1.1 200 OK");
    assert!(body.starts_with("event: hello\n"), "{body}");
    assert_eq!(status(&get(srv.addr, "/", &[&cookie]).0), "HTTP/1.1 200 OK");

    // Scripts may send it as a Bearer token instead.
    let bearer = format!("Authorization: Bearer {token}");
    assert_eq!(status(&get(srv.addr, "/events", &[&bearer]).0), "HTTP/1.1 200 OK");

    // A cookie left by an earlier run on this port does not hide the token in the URL.
    let stale = format!("Cookie: hark_serve_token_{port}={}", "0".repeat(64));
    let (head, _) = get(srv.addr, &srv.path("/"), &[&stale]);
    assert_eq!(status(&head), "HTTP/1.1 200 OK");
    assert!(head.contains(&format!("Set-Cookie: hark_serve_token_{port}={token};")));
    assert_eq!(status(&get(srv.addr, "/", &[&stale]).0), "HTTP/1.1 403 Forbidden");
}

#[test]
fn only_this_machines_names_are_answered() {
    let dir = TempDir::new("access-host");
    let srv = serve(dir.path(), &["orders", "--allow-host", "Dash.Internal"]);
    let port = srv.addr.port();
    let with_host = |target: &str, host: &str, extra: &[&str]| {
        let start = format!("GET {} HTTP/1.1", srv.path(target));
        let mut lines = vec![start.as_str(), host];
        lines.extend_from_slice(extra);
        exchange(srv.addr, &lines)
    };

    // DNS rebinding: a page of evil.example, its name now resolving to 127.0.0.1, sends its own
    // name as Host and as Origin. Even with the token, it is refused before anything is sent.
    let evil_host = format!("Host: evil.example:{port}");
    let evil_origin = format!("Origin: http://evil.example:{port}");
    for target in ["/", "/events", "/ws"] {
        for extra in [&[][..], &[evil_origin.as_str()][..]] {
            let (head, body) = with_host(target, &evil_host, extra);
            assert_eq!((status(&head), body.as_str()), ("HTTP/1.1 403 Forbidden", BAD_HOST), "{target} {extra:?}");
        }
    }
    let wrong_port = format!("Host: 127.0.0.1:{}", port + 1);
    assert_eq!(status(&with_host("/", &wrong_port, &[]).0), "HTTP/1.1 403 Forbidden");
    assert_eq!(status(&with_host("/", "Host: localhost", &[]).0), "HTTP/1.1 403 Forbidden");

    // This machine's names, in any case, and the one given with --allow-host.
    for host in ["127.0.0.1", "localhost", "LocalHost", "[::1]", "dash.internal", "DASH.internal"] {
        let (head, _) = with_host("/events", &format!("Host: {host}:{port}"), &[]);
        assert_eq!(status(&head), "HTTP/1.1 200 OK", "{host}");
    }

    // Origin is checked against the same names, never against Host.
    let loopback_host = format!("Host: 127.0.0.1:{port}");
    for origin in [
        "Origin: http://evil.example".to_owned(),
        format!("Origin: https://127.0.0.1:{port}"),
        format!("Origin: http://127.0.0.1:{}", port + 1),
        "Origin: null".to_owned(),
    ] {
        let (head, body) = with_host("/events", &loopback_host, &[&origin]);
        assert_eq!((status(&head), body.as_str()), ("HTTP/1.1 403 Forbidden", CROSS_ORIGIN), "{origin}");
    }
    for origin in [format!("Origin: http://localhost:{port}"), format!("Origin: http://dash.internal:{port}")] {
        assert_eq!(status(&with_host("/events", &loopback_host, &[&origin]).0), "HTTP/1.1 200 OK", "{origin}");
    }

    // One Host only, and one is needed: no guessing which of two a proxy in front would use.
    let (head, body) = with_host("/events", &loopback_host, &[&evil_host]);
    assert_eq!(
        (status(&head), body.as_str()),
        ("HTTP/1.1 400 Bad Request", "bad request: more than one Host header\n")
    );
    let start = format!("GET {} HTTP/1.1", srv.path("/events"));
    assert_eq!(status(&exchange(srv.addr, &[&start]).0), "HTTP/1.1 400 Bad Request");
    let folded = format!("GET {} HTTP/1.1\r\n{loopback_host}\r\nX-A: 1\r\n {evil_host}", srv.path("/events"));
    assert_eq!(status(&exchange(srv.addr, &[&folded]).0), "HTTP/1.1 400 Bad Request");

    for bad in ["evil.example:80", "http://x", ""] {
        let out = hark()
            .args(["serve", "--dir", dir.path().to_str().unwrap(), "--addr", "127.0.0.1:0", "--allow-host", bad, "x"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{bad}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-host takes a host name without port or scheme"));
    }
}

#[test]
fn open_serves_without_a_token_and_warns() {
    let dir = TempDir::new("access-open");
    let srv = serve(dir.path(), &["orders", "--open"]);
    assert_eq!(srv.token, None);
    common::wait_until("the --open warning", || srv.stderr.lock().unwrap().contains("WARNING"));
    let warning = format!(
        "hark serve: WARNING: --open: no token is required, so any user of this machine, and any program or web page able to reach {}, can read the notifications on these channels\n",
        srv.addr
    );
    assert!(srv.stderr.lock().unwrap().contains(&warning), "{}", srv.stderr.lock().unwrap());

    let (head, body) = get(srv.addr, "/", &[]);
    assert_eq!(status(&head), "HTTP/1.1 200 OK");
    assert!(!head.contains("Set-Cookie"), "{head}");
    assert!(body.contains("const CHANNELS"));
    assert!(ws_text(&mut ws_connect(srv.addr, "/ws", "").unwrap()).starts_with("{\"type\":\"hello\""));
    // The Host and Origin checks still hold.
    let start = "GET /events HTTP/1.1";
    let evil = format!("Host: evil.example:{}", srv.addr.port());
    assert_eq!(status(&exchange(srv.addr, &[start, &evil]).0), "HTTP/1.1 403 Forbidden");
    assert_eq!(status(&get(srv.addr, "/events", &["Origin: http://evil.example"]).0), "HTTP/1.1 403 Forbidden");

    // --open does not combine with a token.
    let d = dir.path().to_str().unwrap();
    let out =
        hark().args(["serve", "--dir", d, "--open", "x"]).env("HARK_SERVE_TOKEN", "0123456789abcdef").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("HARK_SERVE_TOKEN is set but --open serves without a token"));
    let out = hark().args(["serve", "--dir", d, "--open", "--token-file", "/nonexistent", "x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn a_token_of_the_users_choosing() {
    let dir = TempDir::new("access-given");
    let files = TempDir::new("access-given-files");
    std::fs::create_dir_all(files.path()).unwrap();
    let file = files.path().join("token");
    let chosen = "Sc1ipt-s3cret_token.of~mine";
    std::fs::write(&file, format!("{chosen}\n")).unwrap();
    let d = dir.path().to_str().unwrap();

    // A file others can read is refused, as ssh refuses such a key.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = hark()
        .args(["serve", "--dir", d, "--addr", "127.0.0.1:0", "--token-file"])
        .arg(&file)
        .arg("x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!("the token file {} is open to other users (mode 0644); chmod 600 it", file.display())),
        "{err}"
    );

    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let file_arg = file.to_str().unwrap();
    let srv = serve(dir.path(), &["orders", "--token-file", file_arg]);
    // The chosen token is not printed.
    assert_eq!(srv.token, None);
    let line = srv.stderr.lock().unwrap().clone();
    assert!(line.contains(&format!("; token from {file_arg})")) && !line.contains(chosen), "{line}");
    assert_eq!(status(&get(srv.addr, "/events", &[]).0), "HTTP/1.1 403 Forbidden");
    assert_eq!(status(&get(srv.addr, &format!("/events?token={chosen}"), &[]).0), "HTTP/1.1 200 OK");
    drop(srv);

    let srv = serve_with(dir.path(), &["orders"], hark().env("HARK_SERVE_TOKEN", chosen));
    assert_eq!(srv.token, None);
    assert!(srv.stderr.lock().unwrap().contains("; token from HARK_SERVE_TOKEN)"));
    let bearer = format!("Authorization: Bearer {chosen}");
    assert_eq!(status(&get(srv.addr, "/events", &[&bearer]).0), "HTTP/1.1 200 OK");
    assert_eq!(status(&get(srv.addr, "/events", &[]).0), "HTTP/1.1 403 Forbidden");
    drop(srv);

    // Weak or awkward tokens are refused at start.
    for (token, why) in
        [("short", "at least 16 characters"), ("0123456789abcdef;x", "may contain only letters, digits")]
    {
        let out = hark()
            .args(["serve", "--dir", d, "--addr", "127.0.0.1:0", "x"])
            .env("HARK_SERVE_TOKEN", token)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{token}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(why), "{token}");
    }
}

#[test]
fn another_user_of_the_machine_cannot_read_the_stream() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "skipped: another_user_of_the_machine_cannot_read_the_stream needs root to run as harktest1 and harktest2"
        );
        return;
    }
    let (uid1, gid1) = test_user("harktest1");
    let (uid2, gid2) = test_user("harktest2");
    let dir = TempDir::new("access-users");
    let srv = serve_with(dir.path(), &["orders"], hark().uid(uid1).gid(gid1));
    let port = srv.addr.port().to_string();

    // A small HTTP client run as harktest2, connecting to the same loopback port.
    let as_harktest2 = |target: &str| {
        let script = r#"id -un; exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\n\r\n' "$2" "$1" >&3
timeout 2 cat <&3"#;
        let out =
            Command::new("bash").args(["-c", script, "client", &port, target]).uid(uid2).gid(gid2).output().unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for target in ["/", "/events", "/ws"] {
        let got = as_harktest2(target);
        assert!(got.starts_with("harktest2\nHTTP/1.1 403 Forbidden\r\n"), "{target}: {got}");
        assert!(got.ends_with(NO_TOKEN) && !got.contains("hello"), "{target}: {got}");
    }
    // The same client, given the token that only harktest1's terminal saw, is served: the refusal
    // above is the token's doing, not the client's.
    let got = as_harktest2(&srv.path("/events"));
    assert!(got.starts_with("harktest2\nHTTP/1.1 200 OK\r\n") && got.contains("event: hello\n"), "{got}");
}

/// Connects to the Unix socket at `path` from a child process running as `uid`/`gid`; the error is
/// the one `connect` gave there.
fn connect_as(path: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    // SAFETY: a sockaddr_un of zeros is valid (an empty path), filled in below.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    let bytes = path.as_os_str().as_bytes();
    assert!(bytes.len() < addr.sun_path.len(), "socket path too long");
    for (d, s) in addr.sun_path.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    let mut cmd = Command::new("true");
    cmd.uid(uid).gid(gid);
    // SAFETY: between fork and exec the closure makes only system calls (socket, connect), which
    // are async-signal-safe, on memory prepared before the fork; it allocates nothing.
    unsafe {
        cmd.pre_exec(move || {
            let fd = libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0);
            let len = std::mem::size_of::<libc::sockaddr_un>() as libc::socklen_t;
            if fd < 0 || libc::connect(fd, &addr as *const libc::sockaddr_un as *const libc::sockaddr, len) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    cmd.status().map(|_| ())
}

/// Starts `hark serve` on a Unix socket and returns it with the token it printed.
fn serve_unix(cmd: &mut Command, dir: &Path, sock: &Path) -> (common::Reaper, String) {
    let mut child = common::Reaper(
        cmd.arg("serve")
            .arg("--dir")
            .arg(dir)
            .arg("--unix")
            .arg(sock)
            .arg("orders")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    BufReader::new(child.0.stderr.take().unwrap()).read_line(&mut line).unwrap();
    let want = format!(" on unix:{} (channels: orders)\n", sock.display());
    let token = line
        .strip_prefix("hark serve: http://localhost/?token=")
        .and_then(|r| r.strip_suffix(&want))
        .unwrap_or_else(|| panic!("unexpected first line: {line:?}"));
    (child, token.to_owned())
}

fn unix_get(sock: &Path, lines: &str) -> String {
    let mut s = UnixStream::connect(sock).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "{lines}\r\n\r\n").unwrap();
    // Up to the end of a refusal, or of a stream's first event.
    let mut got = String::new();
    let mut r = BufReader::new(s);
    while !got.contains("event: hello\n") || !got.ends_with("\n\n") {
        if r.read_line(&mut got).unwrap() == 0 {
            break;
        }
    }
    got
}

#[test]
fn a_unix_socket_answers_its_owner_only() {
    let dir = TempDir::new("access-unix");
    let socks = TempDir::new("access-unix-socks");
    std::fs::create_dir_all(socks.path()).unwrap();
    std::fs::set_permissions(socks.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let sock = socks.path().join("hark.sock");

    let (_srv, token) = serve_unix(&mut hark(), dir.path(), &sock);
    let meta = std::fs::symlink_metadata(&sock).unwrap();
    assert_eq!(meta.permissions().mode() & 0o7777, 0o600, "the socket file's mode");
    // Over the socket, the token is still needed, and the Host is `localhost`.
    let refused = unix_get(&sock, "GET /events HTTP/1.1\r\nHost: localhost");
    assert!(refused.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{refused}");
    let served = unix_get(&sock, &format!("GET /events?token={token} HTTP/1.1\r\nHost: localhost"));
    assert!(served.starts_with("HTTP/1.1 200 OK\r\n") && served.contains("event: hello\n"), "{served}");
    let elsewhere = format!("GET /events?token={token} HTTP/1.1\r\nHost: evil.example");
    assert!(unix_get(&sock, &elsewhere).starts_with("HTTP/1.1 403 Forbidden\r\n"));

    // A live socket is not taken over; a directory others may write is refused.
    let out = hark().arg("serve").arg("--dir").arg(dir.path()).arg("--unix").arg(&sock).arg("x").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is in use by another server"));
    std::fs::set_permissions(socks.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = hark()
        .arg("serve")
        .arg("--dir")
        .arg(dir.path())
        .arg("--unix")
        .arg(socks.path().join("b.sock"))
        .arg("x")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be yours and writable by you only"));
    std::fs::set_permissions(socks.path(), std::fs::Permissions::from_mode(0o755)).unwrap();

    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: the second half of a_unix_socket_answers_its_owner_only needs root to run as harktest1 and harktest2");
        return;
    }
    let (uid1, gid1) = test_user("harktest1");
    let (uid2, gid2) = test_user("harktest2");
    let theirs = TempDir::new("access-unix-harktest1");
    std::fs::create_dir_all(theirs.path()).unwrap();
    std::os::unix::fs::chown(theirs.path(), Some(uid1), Some(gid1)).unwrap();
    std::fs::set_permissions(theirs.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let sock = theirs.path().join("hark.sock");
    let queue = TempDir::new("access-unix-queue");
    let (_srv, _) = serve_unix(hark().uid(uid1).gid(gid1), queue.path(), &sock);
    assert_eq!(std::fs::symlink_metadata(&sock).unwrap().uid(), uid1);
    // harktest2 can reach the file (its directory is open to all) but not connect to it.
    let refused = connect_as(&sock, uid2, gid2).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::PermissionDenied, "{refused}");
    connect_as(&sock, uid1, gid1).expect("its owner connects");
}
