//! The dashboard in a real browser: headless Chromium opens `hark serve`'s page, notifications
//! are sent, and the test reads the page (over the DevTools protocol) until they appear, works its
//! controls (expanding a JSON payload, filters, pause and resume, clear, adding a channel), runs
//! the seed articles' plain WebSocket code in it, and keeps a screenshot in
//! `target/test-artifacts/dashboard.png`.
//!
//! `make test-cli` installs Debian's `chromium` first; where it cannot be installed this test says
//! so and skips. `HARK_CHROMIUM` names another binary.

mod common;

use base64::Engine as _;
use common::{serve, ws_connect, Reaper, TempDir, Ws};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tungstenite::Message;

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

/// A DevTools protocol session on one page.
struct Cdp {
    sock: Ws,
    next_id: u64,
}

impl Cdp {
    /// Sends one command and returns the raw text of its response.
    fn call(&mut self, method: &str, params: serde_json::Value) -> serde_json::Value {
        self.next_id += 1;
        let id = self.next_id;
        let msg = serde_json::json!({ "id": id, "method": method, "params": params });
        self.sock.send(Message::text(msg.to_string())).unwrap();
        loop {
            let Message::Text(text) = self.sock.read().expect("a DevTools message") else { continue };
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            if v["id"].as_u64() == Some(id) {
                assert!(v.get("error").is_none(), "{method} failed: {text}");
                return v;
            }
        }
    }

    /// Evaluates a JavaScript expression whose value is a string.
    fn eval(&mut self, expr: &str) -> String {
        let r = self.call("Runtime.evaluate", serde_json::json!({ "expression": expr, "returnByValue": true }));
        let value = &r["result"]["result"]["value"];
        value.as_str().unwrap_or_else(|| panic!("no string value in {r}")).to_owned()
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
    let mut conn = hark::Connection::open(dir.path()).unwrap();
    // Sent before any page is open: the page shows it from the server's history.
    conn.execute("NOTIFY orders, 'before the page'").unwrap();
    // The URL hark serve printed, with its token, under the name `localhost` that the seed
    // articles' browser code uses, so that the page's cookie goes with that code's socket too.
    let host = format!("localhost:{}", srv.addr.port());
    let page_url = format!("http://{host}{}", srv.path("/"));
    let printed = srv.stderr.lock().unwrap().lines().next().unwrap_or("").to_owned();
    assert!(printed.starts_with(&format!("hark serve: {page_url} ")), "{printed}");
    let (_browser, devtools) = start_browser(&binary, profile.path(), &page_url);

    // The page's own DevTools target (its URL loses the token once the page has loaded).
    let origin = format!("\"url\": \"http://{host}/");
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
    sock.get_ref().set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut cdp = Cdp { sock, next_id: 0 };

    let status = "String((document.getElementById('status') || {}).textContent)";
    cdp.eval_until("the page to connect", status, |s| s == "live");
    // The token has left the address bar; the page's HttpOnly cookie carries it, unseen by
    // scripts, to its own WebSocket, and to the page itself when reloaded without it.
    assert_eq!(cdp.eval("location.href"), format!("http://{host}/"));
    assert_eq!(cdp.eval("document.cookie"), "");
    cdp.eval("(window.beforeReload = 'yes', location.reload(), 'reloading')");
    let reloaded = format!("String(window.beforeReload) + ' ' + {status}");
    cdp.eval_until("the reloaded page to connect", &reloaded, |s| s == "undefined live");

    // The seed articles' browser code, unchanged but for the port: a plain WebSocket at the root
    // whose messages are the payloads as sent.
    let seed = format!(
        "(window.logged = [], socket = new WebSocket(\"ws://localhost:{}\"), \
         socket.onmessage = (event) => window.logged.push(event.data), \
         socket.onopen = () => window.seedOpen = 'open', 'started')",
        srv.addr.port()
    );
    cdp.eval(&seed);
    cdp.eval_until("the seed's socket to open", "String(window.seedOpen)", |s| s == "open");

    conn.execute("NOTIFY orders, '{\"order\": 42, \"paid\": true}'").unwrap();
    conn.execute("NOTIFY metrics, 'cpu 0.93 <b>not markup</b>'").unwrap();
    conn.execute("NOTIFY orders, 'second order'").unwrap();

    // What the list shows: each visible row's channel, kind and one-line payload.
    let rows = "Array.from(document.querySelectorAll('#events .event')).filter(e => !e.hidden).map(e => \
        e.dataset.channel + ' ' + (e.classList.contains('json') ? 'json' : 'text') + \
        ' [' + e.querySelector('.payload').textContent + ']').join('\\n')";
    let counts = format!(
        "{rows} + '\\ncounts orders=' + document.getElementById('count-orders').textContent + \
         ' metrics=' + document.getElementById('count-metrics').textContent + \
         ' bold=' + document.querySelectorAll('#events b').length"
    );
    let shown = cdp.eval_until("four events on the page", &counts, |s| s.contains("counts orders=3 metrics=1"));
    // Newest first, one line each; markup in a payload stays text.
    assert_eq!(
        shown,
        "orders text [second order]\n\
         metrics text [cpu 0.93 <b>not markup</b>]\n\
         orders json [{\"order\": 42, \"paid\": true}]\n\
         orders text [before the page]\n\
         counts orders=3 metrics=1 bold=0"
    );
    // One line each: a row is as tall as a line of text.
    let height = cdp.eval("String(document.querySelector('#events .event.json').getBoundingClientRect().height)");
    assert!(height.parse::<f64>().unwrap() < 30.0, "a compact row is {height} px tall");
    let logged = "JSON.stringify(window.logged)";
    let seed_saw = cdp.eval_until("the seed's socket to log 3 payloads", logged, |s| s.matches("\",\"").count() == 2);
    assert_eq!(seed_saw, r#"["{\"order\": 42, \"paid\": true}","cpu 0.93 <b>not markup</b>","second order"]"#);

    // Its time is its commit time, to the millisecond, in the browser's time zone.
    let time = cdp.eval("document.querySelector('#events .event time').textContent");
    assert!(time.len() == 12 && time.as_bytes()[2] == b':' && time.as_bytes()[8] == b'.', "{time}");
    let iso = cdp.eval("document.querySelector('#events .event time').dateTime");
    let shown_ms = cdp.eval(&format!("String(Date.parse('{iso}'))")).parse::<u64>().unwrap();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    assert!(shown_ms <= now && now - shown_ms < 60_000, "{iso}");

    // A JSON payload opens indented on a click, and closes on another.
    let detail = "String((document.querySelector('#events .event.json .detail') || {}).textContent)";
    cdp.eval("(document.querySelector('#events .event.json .row').click(), 'clicked')");
    assert_eq!(cdp.eval(detail), "{\n  \"order\": 42,\n  \"paid\": true\n}");
    let shot = screenshot(&mut cdp);

    // Filters: by channel (the select, or a click on its counter), by text, both.
    let set_channel = |cdp: &mut Cdp, ch: &str| {
        cdp.eval(&format!(
            "(document.getElementById('channel-filter').value = '{ch}', \
             document.getElementById('channel-filter').dispatchEvent(new Event('change')), 'set')"
        ));
    };
    let set_text = |cdp: &mut Cdp, t: &str| {
        cdp.eval(&format!(
            "(document.getElementById('text-filter').value = '{t}', \
             document.getElementById('text-filter').dispatchEvent(new Event('input')), 'set')"
        ));
    };
    set_channel(&mut cdp, "metrics");
    assert_eq!(cdp.eval(rows), "metrics text [cpu 0.93 <b>not markup</b>]");
    set_channel(&mut cdp, "");
    cdp.eval("(document.querySelector('.counter[data-channel=\"orders\"]').click(), 'clicked')");
    assert_eq!(cdp.eval(rows).lines().count(), 3);
    set_text(&mut cdp, "cpu");
    assert_eq!(cdp.eval(rows), "");
    set_text(&mut cdp, "PAID");
    assert_eq!(cdp.eval(rows), "orders json [{\"order\": 42, \"paid\": true}]");
    set_channel(&mut cdp, "");
    set_text(&mut cdp, "");
    assert_eq!(cdp.eval(rows).lines().count(), 4);

    // Pause holds new notifications back (and says how many); resume shows them.
    cdp.eval("(document.getElementById('pause').click(), 'paused')");
    conn.execute("NOTIFY metrics, 'while paused'").unwrap();
    cdp.eval_until("the held count", status, |s| s == "paused · 1 new");
    assert_eq!(cdp.eval(rows).lines().count(), 4);
    assert_eq!(cdp.eval("document.getElementById('count-metrics').textContent"), "2");
    cdp.eval("(document.getElementById('pause').click(), 'resumed')");
    assert_eq!(cdp.eval(status), "live");
    assert_eq!(cdp.eval(rows).lines().next(), Some("metrics text [while paused]"));

    // Clear empties the list; what comes next shows.
    cdp.eval("(document.getElementById('clear').click(), 'cleared')");
    assert_eq!(cdp.eval(rows), "");

    // A channel added from the page: the server listens on it, and its notifications show.
    cdp.eval(
        "(document.getElementById('listen-channel').value = 'late', \
         document.getElementById('listen-form').requestSubmit(), 'asked')",
    );
    cdp.eval_until("the new channel's counter", "String(!!document.getElementById('count-late'))", |s| s == "true");
    conn.execute("NOTIFY late, 'added from the page'").unwrap();
    cdp.eval_until("the added channel's notification", rows, |s| s == "late text [added from the page]");
    // And a pattern.
    cdp.eval(
        "(document.getElementById('listen-channel').value = 'sensor.*', \
         document.getElementById('listen-form').requestSubmit(), 'asked')",
    );
    cdp.eval_until("the pattern's entry", "String(!!document.getElementById('count-sensor.*'))", |s| s == "true");
    conn.execute("NOTIFY \"sensor.7\", '21.5'").unwrap();
    cdp.eval_until("the pattern's notification", rows, |s| s.starts_with("sensor.7 text [21.5]\n"));

    let out = artifacts_dir();
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("dashboard.png"), &shot).unwrap();
    eprintln!("dashboard screenshot: {}", out.join("dashboard.png").display());
}

/// A PNG of the page as it is.
fn screenshot(cdp: &mut Cdp) -> Vec<u8> {
    let shot = cdp.call("Page.captureScreenshot", serde_json::json!({ "format": "png" }));
    let data = shot["result"]["data"].as_str().expect("screenshot data");
    let png = base64::engine::general_purpose::STANDARD.decode(data).expect("base64 PNG");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n") && png.len() > 2000, "not a PNG screenshot");
    png
}
