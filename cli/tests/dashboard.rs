//! The dashboard in a real browser: headless Chromium opens `hark serve`'s page, notifications
//! are sent, and the test reads the page (over the DevTools protocol) until they appear, then
//! keeps a screenshot in `target/test-artifacts/dashboard.png`.
//!
//! `make test-cli` installs Debian's `chromium` first; where it cannot be installed this test says
//! so and skips. `HARK_CHROMIUM` names another binary.

mod common;

use common::{serve, ws_connect, Reaper, TempDir};
use hark_cli::ws;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn chromium() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("HARK_CHROMIUM") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("chromium")).find(|p| p.is_file())
}

fn artifacts_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    target.join("test-artifacts")
}

/// Decodes the JSON string literal that starts at `s` (just after its opening quote).
fn json_string_at(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return out,
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('b') => out.push('\u{8}'),
                Some('f') => out.push('\u{c}'),
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).collect();
                    let code = u32::from_str_radix(&hex, 16).unwrap();
                    out.push(char::from_u32(code).unwrap_or('\u{fffd}'));
                }
                Some(other) => out.push(other),
                None => break,
            },
            c => out.push(c),
        }
    }
    panic!("unterminated JSON string");
}

/// A DevTools protocol session on one page.
struct Cdp {
    sock: TcpStream,
    next_id: u64,
}

impl Cdp {
    /// Sends one command and returns the raw text of its response.
    fn call(&mut self, method: &str, params: &str) -> String {
        self.next_id += 1;
        let id = self.next_id;
        let msg = format!("{{\"id\":{id},\"method\":\"{method}\",\"params\":{params}}}");
        ws::write_frame(&mut self.sock, ws::OP_TEXT, msg.as_bytes(), Some([0x5a, 0x17, 0x3c, 0x99])).unwrap();
        let prefix = format!("{{\"id\":{id},");
        loop {
            let f = ws::read_frame(&mut self.sock, 64 << 20).expect("a DevTools message");
            let text = String::from_utf8_lossy(&f.payload).into_owned();
            if text.starts_with(&prefix) {
                assert!(!text.contains("\"error\":"), "{method} failed: {text}");
                return text;
            }
        }
    }

    /// Evaluates a JavaScript expression whose value is a string.
    fn eval(&mut self, expr: &str) -> String {
        let params = format!("{{\"expression\":{},\"returnByValue\":true}}", hark_cli::json::string(expr));
        let r = self.call("Runtime.evaluate", &params);
        let i = r.find("\"value\":\"").unwrap_or_else(|| panic!("no string value in {r}"));
        json_string_at(&r[i + 9..])
    }

    fn eval_until(&mut self, what: &str, expr: &str, done: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.eval(expr);
            if done(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}; the page shows:\n{v}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn http_get(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    // DevTools keeps the connection open: read the head, then Content-Length bytes.
    let mut r = BufReader::new(s);
    let mut len = 0;
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        if line.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap();
            }
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    String::from_utf8(body).unwrap()
}

/// Starts Chromium on `url` and returns it with its DevTools address.
fn start_browser(binary: &Path, profile: &Path, url: &str) -> (Reaper, SocketAddr) {
    let mut child = Reaper(
        Command::new(binary)
            .args([
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--window-size=1000,720",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg(url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium"),
    );
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if let Some(rest) = line.strip_prefix("DevTools listening on ws://") {
                let _ = tx.send(rest.split('/').next().unwrap_or("").to_owned());
            }
        }
    });
    let addr = rx.recv_timeout(Duration::from_secs(60)).expect("Chromium's DevTools address");
    (child, addr.parse().unwrap())
}

#[test]
fn dashboard_shows_notifications_in_a_real_browser() {
    let Some(binary) = chromium() else {
        eprintln!(
            "SKIPPED dashboard_shows_notifications_in_a_real_browser: no `chromium` on PATH \
             (make test-cli installs Debian's chromium; it could not here)"
        );
        return;
    };
    let dir = TempDir::new("dashboard");
    let profile = TempDir::new("chromium-profile");
    std::fs::create_dir_all(profile.path()).unwrap();
    let srv = serve(dir.path(), &["orders", "metrics"]);
    // The URL hark serve printed, with its token.
    let page_url = format!("http://{}{}", srv.addr, srv.path("/"));
    let (_browser, devtools) = start_browser(&binary, profile.path(), &page_url);

    // The page's own DevTools target (its URL loses the token once the page has loaded).
    let origin = format!("\"url\": \"http://{}/", srv.addr);
    let deadline = Instant::now() + Duration::from_secs(30);
    let ws_path = loop {
        let list = http_get(devtools, "/json/list");
        let target = list.split('}').find(|t| t.contains("\"type\": \"page\"") && t.contains(&origin));
        if let Some(p) = target.and_then(|t| t.split("\"webSocketDebuggerUrl\": \"ws://").nth(1)) {
            break p[p.find('/').unwrap()..p.find('"').unwrap()].to_owned();
        }
        assert!(Instant::now() < deadline, "no DevTools target for {page_url}:\n{list}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let sock = ws_connect(devtools, &ws_path, "").expect("DevTools WebSocket");
    sock.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut cdp = Cdp { sock, next_id: 0 };

    let status = "String((document.getElementById('status') || {}).textContent)";
    cdp.eval_until("the page to connect", status, |s| s == "live");
    // The token has left the address bar; the page's HttpOnly cookie carries it, unseen by
    // scripts, to its own WebSocket, and to the page itself when reloaded without it.
    assert_eq!(cdp.eval("location.href"), format!("http://{}/", srv.addr));
    assert_eq!(cdp.eval("document.cookie"), "");
    cdp.eval("(window.beforeReload = 'yes', location.reload(), 'reloading')");
    let reloaded = format!("String(window.beforeReload) + ' ' + {status}");
    cdp.eval_until("the reloaded page to connect", &reloaded, |s| s == "undefined live");

    let mut conn = hark::Connection::open(dir.path()).unwrap();
    conn.execute("NOTIFY orders, '{\"order\": 42, \"paid\": true}'").unwrap();
    conn.execute("NOTIFY metrics, 'cpu 0.93 <b>not markup</b>'").unwrap();
    conn.execute("NOTIFY orders, 'second order'").unwrap();

    let expr = "Array.from(document.querySelectorAll('#events .event')).map(e => \
        e.dataset.channel + ' ' + (e.querySelector('.payload').classList.contains('json') ? 'json' : 'text') + \
        ' [' + e.querySelector('.payload').textContent + ']').join('\\n') + \
        '\\ncounts orders=' + document.getElementById('count-orders').textContent + \
        ' metrics=' + document.getElementById('count-metrics').textContent + \
        ' bold=' + document.querySelectorAll('#events b').length";
    let shown = cdp.eval_until("three events on the page", expr, |s| s.contains("counts orders=2 metrics=1"));
    // Newest first; JSON pretty-printed, text as it is (markup in it stays text).
    assert_eq!(
        shown,
        "orders text [second order]\n\
         metrics text [cpu 0.93 <b>not markup</b>]\n\
         orders json [{\n  \"order\": 42,\n  \"paid\": true\n}]\n\
         counts orders=2 metrics=1 bold=0"
    );

    let shot = cdp.call("Page.captureScreenshot", "{\"format\":\"png\"}");
    let data = &shot[shot.find("\"data\":\"").expect("screenshot data") + 8..];
    let png = ws::base64_decode(&data[..data.find('"').unwrap()]).expect("base64 PNG");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 2000, "not a PNG screenshot");
    let out = artifacts_dir();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("dashboard.png"), &png).unwrap();
    eprintln!("dashboard screenshot: {}", out.join("dashboard.png").display());
}
