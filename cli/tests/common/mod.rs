//! Helpers shared by the CLI's integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A fresh directory under the system's temporary directory, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("hark-cli-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Replaces every `PID <digits>` with `PID N`.
pub fn normalize_pids(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find("PID ") {
        out.push_str(&rest[..i + 4]);
        rest = &rest[i + 4..];
        let digits = rest.bytes().take_while(|b| b.is_ascii_digit()).count();
        if digits > 0 {
            out.push('N');
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

/// The uid and gid of `name`, creating it first as the project's tests do.
pub fn test_user(name: &str) -> (u32, u32) {
    let _ =
        Command::new("useradd").args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name]).output();
    let id = |flag: &str| {
        let out = Command::new("id").args([flag, name]).output().unwrap();
        assert!(out.status.success(), "no user {name}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap().trim().parse().unwrap()
    };
    (id("-u"), id("-g"))
}

pub fn hark() -> Command {
    Command::new(env!("CARGO_BIN_EXE_hark"))
}

/// Kills and reaps a child when dropped, so that a failing test leaves no process behind.
pub struct Reaper(pub Child);

impl Drop for Reaper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Number of listeners registered on the queue in `dir` (0 while it does not exist yet).
pub fn listeners(dir: &Path) -> usize {
    if !dir.join("control").exists() {
        return 0;
    }
    hark::Queue::open(dir, &hark::Options::default()).and_then(|q| q.stats()).map(|s| s.listeners.len()).unwrap_or(0)
}

/// Waits up to ten seconds for `cond`.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub fn piped(cmd: &mut Command) -> Reaper {
    Reaper(cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("spawn hark"))
}

/// A `hark serve` child, the address it serves on, and the token it printed.
pub struct Server {
    pub child: Reaper,
    pub addr: std::net::SocketAddr,
    /// The token in the URL it printed (`None` when it printed none: `--open` or a given token).
    pub token: Option<String>,
    /// Everything it wrote to standard error so far.
    pub stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Server {
    /// `path` with the printed token as its `token` query parameter.
    pub fn path(&self, path: &str) -> String {
        let token = self.token.as_deref().expect("a printed token");
        format!("{path}{}token={token}", if path.contains('?') { '&' } else { '?' })
    }
}

/// Starts `hark serve --dir DIR --addr 127.0.0.1:0 ARGS…` and reads the address it bound.
pub fn serve(dir: &Path, args: &[&str]) -> Server {
    serve_with(dir, args, &mut hark())
}

/// As `serve`, from a prepared command (environment, user).
pub fn serve_with(dir: &Path, args: &[&str], cmd: &mut Command) -> Server {
    use std::io::BufRead;
    let mut child = Reaper(
        cmd.arg("serve")
            .arg("--dir")
            .arg(dir)
            .args(["--addr", "127.0.0.1:0"])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn hark serve"),
    );
    let mut stderr = std::io::BufReader::new(child.0.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let url = line
        .strip_prefix("hark serve: http://")
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("unexpected first line from hark serve: {line:?}"));
    let (addr, rest) = url.split_once('/').unwrap();
    // `localhost:PORT` for 127.0.0.1 (what these tests bind), else the address itself.
    let addr = match addr.strip_prefix("localhost:") {
        Some(port) => std::net::SocketAddr::from(([127, 0, 0, 1], port.parse().unwrap())),
        None => addr.parse().unwrap(),
    };
    let token = rest.strip_prefix("?token=").map(str::to_owned);
    let seen = std::sync::Arc::new(std::sync::Mutex::new(line));
    // Keep draining its standard error so that it never blocks on it.
    let keep = std::sync::Arc::clone(&seen);
    std::thread::spawn(move || {
        let mut sink = String::new();
        while stderr.read_line(&mut sink).map(|n| n > 0).unwrap_or(false) {
            eprint!("serve: {sink}");
            keep.lock().unwrap().push_str(&sink);
            sink.clear();
        }
    });
    Server { child, addr, token, stderr: seen }
}

/// A WebSocket client over TCP (tungstenite's).
pub type Ws = tungstenite::WebSocket<std::net::TcpStream>;

/// Opens a WebSocket to `addr` + `path` (sending `extra` header lines), returning it after the
/// handshake, or the HTTP status line when the server refused. The handshake is written by hand
/// so that a test can send any header it likes.
pub fn ws_connect(addr: std::net::SocketAddr, path: &str, extra: &str) -> Result<Ws, String> {
    use std::io::Write;
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n{extra}\r\n"
    )
    .unwrap();
    // Read the response head byte by byte so that no frame is consumed with it.
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if std::io::Read::read(&mut s, &mut b).unwrap() == 0 {
            break;
        }
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let status = head.lines().next().unwrap_or("").to_owned();
    if !status.starts_with("HTTP/1.1 101") {
        return Err(status);
    }
    let accept = head.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Accept: ")).unwrap_or("");
    assert_eq!(accept, tungstenite::handshake::derive_accept_key(key.as_bytes()));
    Ok(tungstenite::WebSocket::from_raw_socket(s, tungstenite::protocol::Role::Client, None))
}

/// The next text message (skipping pings and pongs).
#[track_caller]
pub fn ws_text(s: &mut Ws) -> String {
    loop {
        match s.read().expect("read a message") {
            tungstenite::Message::Text(t) => return t.as_str().to_owned(),
            tungstenite::Message::Ping(_) | tungstenite::Message::Pong(_) => {}
            m => panic!("unexpected message {m:?}"),
        }
    }
}

/// A JSON message's value.
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}
