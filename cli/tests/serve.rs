//! `hark serve` over raw sockets: WebSocket and Server-Sent Events delivery, and back-pressure (a
//! client that stops reading is dropped with a close reason while the server's memory stays
//! bounded). Who may connect (token, Host, Origin, another user) is in `serve_access.rs`.

mod common;

use common::{serve, ws_connect, ws_text, TempDir};
use hark_cli::ws;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

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
    let first = format!("{{\"type\":\"notification\",\"seq\":1,\"channel\":\"orders\",\"payload\":\"{{\\\"id\\\": 42}}\",\"pid\":{pid}}}");
    let second =
        format!("{{\"type\":\"notification\",\"seq\":2,\"channel\":\"metrics\",\"payload\":\"\",\"pid\":{pid}}}");
    assert_eq!(ws_text(&mut wsock), first);
    assert_eq!(ws_text(&mut wsock), second);
    let mut data = Vec::new();
    while data.len() < 2 {
        line.clear();
        assert!(sse.read_line(&mut line).unwrap() > 0, "SSE stream ended");
        if let Some(d) = line.strip_prefix("data: ") {
            data.push(d.trim_end().to_owned());
        }
    }
    assert_eq!(data, [first, second]);

    // The browser's close is answered with a close.
    ws::write_frame(&mut wsock, ws::OP_CLOSE, &ws::close_payload(ws::CLOSE_NORMAL, "bye"), Some([9, 8, 7, 6])).unwrap();
    let f = ws::read_frame(&mut wsock, 1024).unwrap();
    assert_eq!(f.opcode, ws::OP_CLOSE);
    assert_eq!(ws::parse_close(&f.payload).unwrap().0, ws::CLOSE_NORMAL);
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
    slow.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut texts = 0;
    let close = loop {
        let f =
            ws::read_frame(&mut slow, 1 << 20).unwrap_or_else(|e| panic!("after {texts} frames, no close frame: {e}"));
        match f.opcode {
            ws::OP_TEXT => {
                texts += 1;
                let text = String::from_utf8(f.payload).unwrap();
                assert!(text.contains(&format!("\"seq\":{texts},")), "frame {texts} out of order");
            }
            ws::OP_CLOSE => break ws::parse_close(&f.payload).expect("a close code"),
            op => panic!("unexpected opcode {op:#x}"),
        }
    };
    assert_eq!(close.0, ws::CLOSE_TRY_AGAIN_LATER);
    assert_eq!(close.1, "too slow: more than 16 notifications waiting; reconnect to resume");
    assert!(texts < total, "the slow client was sent everything ({texts})");
    let mut rest = Vec::new();
    let _ = slow.read_to_end(&mut rest);
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
