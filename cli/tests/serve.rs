//! `hark serve` over raw sockets: WebSocket and Server-Sent Events delivery, and back-pressure (a
//! client that stops reading is dropped with a close reason while the server's memory stays
//! bounded). Who may connect (token, Host, Origin, another user) is in `serve_access.rs`.

mod common;

use common::{json, serve, ws_connect, ws_text, TempDir};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::Message;

fn http_get(addr: std::net::SocketAddr, path: &str, extra: &str) -> String {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{extra}\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn websocket_and_sse_receive_notifications() {
    let dir = TempDir::new("serve");
    let srv = serve(dir.path(), &["orders", "metrics"]);
    let mut conn = hark::Connection::open(dir.path()).unwrap();

    let mut wsock = ws_connect(srv.addr, &srv.path("/ws"), "").unwrap();
    let hello = ws_text(&mut wsock);
    assert!(hello.starts_with("{\"type\":\"hello\",\"channels\":[\"orders\",\"metrics\"],\"counts\":{"), "{hello}");

    let mut sse = TcpStream::connect(srv.addr).unwrap();
    sse.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(sse, "GET {} HTTP/1.1\r\nHost: {}\r\nAccept: text/event-stream\r\n\r\n", srv.path("/events"), srv.addr)
        .unwrap();
    let mut sse = BufReader::new(sse);
    let mut line = String::new();
    while line != "event: hello\n" {
        line.clear();
        assert!(sse.read_line(&mut line).unwrap() > 0, "SSE stream ended");
    }
    line.clear();
    sse.read_line(&mut line).unwrap();
    assert!(line.starts_with("data: {\"type\":\"hello\","), "{line}");

    conn.execute("BEGIN; NOTIFY orders, '{\"id\": 42}'; NOTIFY elsewhere, 'not forwarded'; NOTIFY metrics; COMMIT")
        .unwrap();
    let pid = conn.backend_pid();
    let check = |text: &str, seq: u64, channel: &str, payload: &str| {
        let v = json(text);
        assert_eq!(v["type"], "notification", "{text}");
        assert_eq!(
            (v["seq"].as_u64(), v["channel"].as_str(), v["payload"].as_str()),
            (Some(seq), Some(channel), Some(payload))
        );
        assert_eq!(v["pid"].as_i64(), Some(pid as i64));
        // When the server received it, in milliseconds since the epoch: within the last minute.
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
        let received = v["received"].as_u64().expect("received");
        assert!(received <= now && now - received < 60_000, "{text}");
        // When it committed, from the queue: before it was received.
        let committed = v["commit_time"].as_u64().expect("commit_time");
        assert!(committed <= received && received - committed < 60_000, "{text}");
    };
    let (first, second) = (ws_text(&mut wsock), ws_text(&mut wsock));
    check(&first, 1, "orders", "{\"id\": 42}");
    check(&second, 2, "metrics", "");
    let mut data = Vec::new();
    while data.len() < 2 {
        line.clear();
        assert!(sse.read_line(&mut line).unwrap() > 0, "SSE stream ended");
        if let Some(d) = line.strip_prefix("data: ") {
            data.push(d.trim_end().to_owned());
        }
    }
    assert_eq!(data, [first, second]);

    // A page opened now gets them in its hello, oldest first, as they were sent.
    let hello = json(&ws_text(&mut ws_connect(srv.addr, &srv.path("/ws"), "").unwrap()));
    assert_eq!(hello["history"], serde_json::Value::Array(vec![json(&data[0]), json(&data[1])]));
    assert_eq!(hello["counts"], json(r#"{"orders":1,"metrics":1}"#));

    // The browser's close is answered with a close.
    wsock.close(None).unwrap();
    match wsock.read() {
        Ok(Message::Close(_)) | Err(tungstenite::Error::ConnectionClosed) => {}
        Ok(m) => panic!("unexpected message {m:?}"),
        Err(e) => panic!("no close frame: {e}"),
    }
}

/// A WebSocket at `/` sends each payload as it is, and nothing else, so that browser code written
/// for a bare LISTEN bridge (`socket.onmessage = (e) => console.log(e.data)`) works unchanged.
#[test]
fn plain_websocket_at_the_root_sends_payloads_as_they_are() {
    let dir = TempDir::new("serve-plain");
    let srv = serve(dir.path(), &["orders", "--history", "5"]);
    let mut conn = hark::Connection::open(dir.path()).unwrap();
    conn.notify("orders", "before it connected").unwrap();
    // Once the server has it, a dashboard's socket gets it in its hello; a plain one does not.
    common::wait_until("the server to receive it", || {
        let mut dash = ws_connect(srv.addr, &srv.path("/ws"), "").unwrap();
        json(&ws_text(&mut dash))["history"][0]["payload"] == "before it connected"
    });
    let mut plain = ws_connect(srv.addr, &srv.path("/"), "").unwrap();
    conn.notify("orders", "{\"id\": 1}").unwrap();
    conn.notify("orders", "").unwrap();
    conn.notify("orders", "línea <b>3</b>").unwrap();
    assert_eq!(ws_text(&mut plain), "{\"id\": 1}");
    assert_eq!(ws_text(&mut plain), "");
    assert_eq!(ws_text(&mut plain), "línea <b>3</b>");
    // Text a page sends on it is ignored; the socket goes on.
    plain.send(Message::text("{\"type\":\"listen\",\"channel\":\"secret\"}")).unwrap();
    conn.notify("orders", "4").unwrap();
    assert_eq!(ws_text(&mut plain), "4");
    // Behind the same access control as the rest.
    assert_eq!(ws_connect(srv.addr, "/", "").unwrap_err(), "HTTP/1.1 403 Forbidden");
    let other = "Origin: http://evil.example\r\n";
    assert_eq!(ws_connect(srv.addr, &srv.path("/"), other).unwrap_err(), "HTTP/1.1 403 Forbidden");
}

/// A page adds a channel, or a pattern, over its WebSocket; every page is told, and its
/// notifications follow. Served `--open`, the server refuses: anyone could then read any channel.
#[test]
fn a_page_adds_a_channel() {
    let dir = TempDir::new("serve-add");
    let srv = serve(dir.path(), &["orders"]);
    let mut conn = hark::Connection::open(dir.path()).unwrap();
    let mut a = ws_connect(srv.addr, &srv.path("/ws"), "").unwrap();
    let mut b = ws_connect(srv.addr, &srv.path("/ws"), "").unwrap();
    assert_eq!(json(&ws_text(&mut a))["can_listen"], true);
    ws_text(&mut b);
    a.send(Message::text(r#"{"type":"listen","channel":"late"}"#)).unwrap();
    for s in [&mut a, &mut b] {
        assert_eq!(ws_text(s), r#"{"type":"channels","channels":["orders","late"]}"#);
    }
    conn.notify("late", "now seen").unwrap();
    for s in [&mut a, &mut b] {
        assert_eq!(json(&ws_text(s))["payload"], "now seen");
    }
    a.send(Message::text(r#"{"type":"listen","channel":""}"#)).unwrap();
    let err = json(&ws_text(&mut a));
    assert_eq!(err["type"], "error");
    assert!(err["message"].as_str().unwrap().contains("channel name cannot be empty"), "{err}");
    a.send(Message::text("nonsense")).unwrap();
    assert_eq!(json(&ws_text(&mut a))["type"], "error");

    // A pattern: its matching channels follow, and a notification the server also gets as a
    // listener ('orders') is shown once.
    a.send(Message::text(r#"{"type":"listen","channel":"ord*"}"#)).unwrap();
    assert_eq!(ws_text(&mut a), r#"{"type":"channels","channels":["orders","late","ord*"]}"#);
    ws_text(&mut b);
    conn.notify("orders", "both ways").unwrap();
    conn.notify("ordinal", "by the pattern").unwrap();
    conn.notify("other", "neither").unwrap();
    conn.notify("late", "after").unwrap();
    for s in [&mut a, &mut b] {
        // Two sessions receive them, so those of the pattern may come before or after the others.
        let mut got: Vec<String> = (0..3).map(|_| json(&ws_text(s))["payload"].as_str().unwrap().to_owned()).collect();
        got.sort();
        assert_eq!(got, ["after", "both ways", "by the pattern"]);
    }
    // It is a durable subscription of the server's, dropped by the next server once this one is
    // gone.
    let subscriptions = || {
        let stats = hark::Queue::open(dir.path(), &hark::Options::default()).unwrap().stats().unwrap();
        stats.listeners.into_iter().filter_map(|l| l.subscription).collect::<Vec<_>>()
    };
    assert_eq!(subscriptions(), [format!("hark-serve.{}.0", srv.child.0.id())]);
    drop((a, b));
    drop(srv);
    let _next = serve(dir.path(), &["orders"]);
    assert!(subscriptions().is_empty(), "{:?}", subscriptions());

    let open = serve(dir.path(), &["orders", "--open"]);
    let mut c = ws_connect(open.addr, "/ws", "").unwrap();
    assert_eq!(json(&ws_text(&mut c))["can_listen"], false);
    c.send(Message::text(r#"{"type":"listen","channel":"late"}"#)).unwrap();
    let err = json(&ws_text(&mut c));
    assert!(err["message"].as_str().unwrap().contains("--open"), "{err}");
}

#[test]
fn dashboard_page_and_refusals() {
    let dir = TempDir::new("serve-http");
    let srv = serve(dir.path(), &["a</script>b"]);
    let page = http_get(srv.addr, &srv.path("/"), "");
    assert!(page.starts_with("HTTP/1.1 200 OK\r\n"), "{page}");
    assert!(page.contains("Content-Type: text/html; charset=utf-8\r\n"));
    // Channel names are data in the page, never markup.
    assert!(page.contains("const CHANNELS = [\"a<\\/script>b\"];"), "{page}");
    assert!(http_get(srv.addr, &srv.path("/nope"), "").starts_with("HTTP/1.1 404 "));
    assert!(http_get(srv.addr, &srv.path("/ws"), "").starts_with("HTTP/1.1 426 "));
    // Another site's page may not subscribe through the visitor's browser.
    let refused = ws_connect(srv.addr, &srv.path("/ws"), "Origin: http://evil.example\r\n").unwrap_err();
    assert!(refused.starts_with("HTTP/1.1 403 "), "{refused}");
    let same = format!("Origin: http://{}\r\n", srv.addr);
    assert!(ws_connect(srv.addr, &srv.path("/ws"), &same).is_ok());

    let out = common::hark()
        .args(["serve", "--dir", dir.path().to_str().unwrap(), "--addr", "0.0.0.0:0", "x"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a loopback address"));
}

fn rss_anon_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("RssAnon:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_client_that_stops_reading_is_dropped_with_a_reason() {
    let dir = TempDir::new("serve-slow");
    let srv = serve(dir.path(), &["firehose", "--client-queue", "16"]);
    let mut slow = ws_connect(srv.addr, &srv.path("/ws"), "").unwrap();
    ws_text(&mut slow); // hello; then this client reads nothing for a while
                        // An SSE client that stops reading after its hello, likewise.
    let mut slow_sse = TcpStream::connect(srv.addr).unwrap();
    write!(slow_sse, "GET {} HTTP/1.1\r\nHost: {}\r\n\r\n", srv.path("/events"), srv.addr).unwrap();
    let mut head = [0u8; 64];
    let n = slow_sse.read(&mut head).unwrap();
    assert!(head[..n].starts_with(b"HTTP/1.1 200 OK\r\n"));

    // 80 MB of notifications: far more than the socket buffers between the server and the slow
    // client hold, so the server has to either queue them without bound or drop the client.
    let mut conn = hark::Connection::open(dir.path()).unwrap();
    let payload = "p".repeat(4000);
    let total = 20_000;
    let baseline = rss_anon_kib(srv.child.0.id());
    let mut peak = baseline;
    for batch in 0..total / 100 {
        conn.begin().unwrap();
        for i in 0..100 {
            // Distinct payloads: equal ones in one transaction would be folded into one.
            conn.notify("firehose", &format!("{batch}.{i} {payload}")).unwrap();
        }
        conn.commit().unwrap();
        peak = peak.max(rss_anon_kib(srv.child.0.id()));
    }
    peak = peak.max(rss_anon_kib(srv.child.0.id()));
    // The session's inbox holds up to 4096 notifications read from the queue (16 MB here), the
    // client queues 16 each; anything near the 80 MB sent means unbounded queueing.
    assert!(peak < baseline + 32 * 1024, "anonymous memory grew from {baseline} KiB to {peak} KiB");

    // Now the slow client reads: what the buffers held, in order, then the close frame with its
    // reason.
    slow.get_mut().set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut texts = 0;
    let close = loop {
        match slow.read().unwrap_or_else(|e| panic!("after {texts} frames, no close frame: {e}")) {
            Message::Text(text) => {
                texts += 1;
                assert!(text.contains(&format!("\"seq\":{texts},")), "frame {texts} out of order");
            }
            Message::Close(close) => break close.expect("a close code"),
            m => panic!("unexpected message {m:?}"),
        }
    };
    assert_eq!(close.code, CloseCode::Again);
    assert_eq!(close.reason.as_str(), "too slow: more than 16 notifications waiting; reconnect to resume");
    assert!(texts < total, "the slow client was sent everything ({texts})");
    let mut rest = Vec::new();
    let _ = slow.get_mut().read_to_end(&mut rest);
    assert!(rest.is_empty(), "data after the close frame");

    // The SSE client gets what the buffers held, then a close event with the reason.
    slow_sse.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut stream = Vec::new();
    slow_sse.read_to_end(&mut stream).expect("the SSE stream, up to its end");
    let stream = String::from_utf8_lossy(&stream);
    let events: Vec<&str> = stream.split("\n\n").filter(|e| !e.is_empty()).collect();
    assert_eq!(
        events.last().copied(),
        Some("event: close\ndata: \"too slow: more than 16 notifications waiting; reconnect to resume\"")
    );
    assert!(events.len() < total, "the slow SSE client was sent everything");

    // The server goes on serving new clients once it has caught up with the firehose (a client
    // that joined while it was catching up may well have been dropped in its turn).
    let want = format!("\"counts\":{{\"firehose\":{total}}}");
    common::wait_until("hark serve to forward every notification", || {
        let mut s = ws_connect(srv.addr, &srv.path("/ws"), "").unwrap();
        ws_text(&mut s).contains(&want)
    });
    let mut again = ws_connect(srv.addr, &srv.path("/ws"), "").unwrap();
    assert!(ws_text(&mut again).contains(&want));
    conn.notify("firehose", "after").unwrap();
    assert!(ws_text(&mut again).contains("\"payload\":\"after\""));
}

/// A browser may send only short requests: a longer message closes its socket with code 1009.
#[test]
fn a_long_message_from_a_browser_closes_its_socket() {
    let dir = TempDir::new("serve-big");
    let srv = serve(dir.path(), &["orders"]);
    let mut s = ws_connect(srv.addr, &srv.path("/ws"), "").unwrap();
    ws_text(&mut s);
    s.send(Message::text("x".repeat(5000))).unwrap();
    match s.read().expect("a close frame") {
        Message::Close(Some(close)) => {
            assert_eq!(close.code, CloseCode::Size);
            assert_eq!(close.reason.as_str(), "message too big");
        }
        m => panic!("unexpected message {m:?}"),
    }
}
