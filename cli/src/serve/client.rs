//! One browser's connection once `auth` has let it in: a WebSocket (framing by `tungstenite`) or
//! a Server-Sent Events stream, fed from its bounded queue in the hub.
//!
//! A WebSocket at `/ws` carries the dashboard's JSON messages (a hello with the recent history,
//! then notifications) and takes the page's requests to listen on more channels. A WebSocket at
//! `/` is plain: each notification's payload as it was sent, nothing else, so that code written
//! for a bare LISTEN-to-WebSocket bridge (`socket.onmessage = (e) => console.log(e.data)`) works.

use super::http::{self, Request};
use super::hub::{Hub, Membership};
use super::listen::Conn;
use serde::Deserialize;
use std::io;
use std::net::Shutdown;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, RecvTimeoutError};
use std::sync::Arc;
use std::thread;
use std::time::Duration;
use tungstenite::protocol::frame::coding::CloseCode;
use tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tungstenite::{Message, WebSocket};

/// How long a write to a browser may block before the connection is given up.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// SSE comment sent to an idle stream, to notice browsers that went away.
const SSE_KEEPALIVE: Duration = Duration::from_secs(15);
/// How often a client's thread looks at its socket when no notification comes.
const TICK: Duration = Duration::from_millis(250);
/// Largest message a browser may send (a request to listen on a channel).
const MAX_INCOMING: usize = 4096;

/// What a page may ask over its WebSocket.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Command {
    Listen { channel: String },
}

/// Marks a client gone when its connection's thread ends, however it ends.
struct Leave(Arc<AtomicBool>);

impl Drop for Leave {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

pub fn serve_websocket<S: Conn>(mut stream: S, req: Request, hub: &Hub, plain: bool) -> io::Result<()> {
    let Some(key) = req.header("Sec-WebSocket-Key") else {
        return http::respond(&mut stream, "400 Bad Request", b"missing Sec-WebSocket-Key\n");
    };
    if req.header("Sec-WebSocket-Version") != Some("13") {
        return http::respond_with(
            &mut stream,
            "426 Upgrade Required",
            "text/plain; charset=utf-8",
            "Sec-WebSocket-Version: 13\r\n",
            b"WebSocket version 13 only\n",
        );
    }
    let Some(Membership { rx, overrun, gone, hello }) = hub.join() else {
        return http::respond(&mut stream, "503 Service Unavailable", b"too many clients\n");
    };
    let _leave = Leave(gone);
    write!(
        stream,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        tungstenite::handshake::derive_accept_key(key.as_bytes())
    )?;
    stream.set_read_timeout(None)?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let config = WebSocketConfig::default().max_message_size(Some(MAX_INCOMING)).max_frame_size(Some(MAX_INCOMING));
    let mut ws = WebSocket::from_partially_read(stream, req.rest, Role::Server, Some(config));
    if !plain && ws.send(Message::text(hello)).is_err() {
        return Ok(());
    }
    loop {
        if overrun.load(Ordering::SeqCst) {
            let reason = hub.too_slow_reason();
            let _ = ws.close(Some(CloseFrame { code: CloseCode::Again, reason: reason.into() }));
            let _ = ws.flush();
            break;
        }
        match rx.recv_timeout(TICK) {
            Ok(item) => {
                // Checked again: what is queued after an overrun is discarded, not sent.
                if overrun.load(Ordering::SeqCst) {
                    continue;
                }
                let text = match (plain, &item.payload) {
                    (false, _) => item.json.get().to_owned(),
                    (true, Some(p)) => p.clone(),
                    (true, None) => continue,
                };
                if ws.send(Message::text(text)).is_err() {
                    break;
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                if !overrun.load(Ordering::SeqCst) {
                    break;
                }
            }
        }
        if !read_pending(&mut ws, hub, plain) {
            break;
        }
    }
    let stream = ws.get_ref();
    let _ = stream.shutdown(Shutdown::Write);
    // Give the browser a moment to read the close frame before the socket goes.
    thread::sleep(Duration::from_millis(100));
    let _ = stream.shutdown(Shutdown::Both);
    Ok(())
}

/// Reads what the browser sent without waiting: pings (answered by tungstenite), its close, and
/// the page's requests. Returns whether the connection goes on.
fn read_pending<S: Conn>(ws: &mut WebSocket<S>, hub: &Hub, plain: bool) -> bool {
    if ws.get_ref().set_nonblocking(true).is_err() {
        return false;
    }
    let mut go_on = true;
    let mut requests = Vec::new();
    loop {
        match ws.read() {
            Ok(Message::Text(t)) if !plain => requests.push(t.as_str().to_owned()),
            Ok(Message::Close(_)) => {
                go_on = false;
                break;
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(tungstenite::Error::Capacity(_)) => {
                let _ = ws.get_ref().set_nonblocking(false);
                let close = CloseFrame { code: CloseCode::Size, reason: "message too big".into() };
                let _ = ws.close(Some(close));
                let _ = ws.flush();
                return false;
            }
            Err(_) => return false,
        }
    }
    if ws.get_ref().set_nonblocking(false).is_err() {
        return false;
    }
    // Sends the answer to a close, or a pong, that tungstenite queued.
    let _ = ws.flush();
    for text in requests {
        let answer = match serde_json::from_str::<Command>(&text) {
            Ok(Command::Listen { channel }) => request_listen(hub, channel),
            Err(e) => Err(format!("not a request this server understands: {e}")),
        };
        if let Err(message) = answer {
            let msg = serde_json::json!({ "type": "error", "message": message }).to_string();
            if ws.send(Message::text(msg)).is_err() {
                return false;
            }
        }
    }
    go_on
}

/// Asks the listening thread to listen on `channel` too, and waits for its answer.
fn request_listen(hub: &Hub, channel: String) -> Result<(), String> {
    if !hub.can_listen() {
        return Err("this server was started with --open: it serves only the channels it was given".into());
    }
    let (reply, answer) = sync_channel(1);
    hub.requests.lock().unwrap_or_else(|e| e.into_inner()).push(super::hub::ListenRequest { channel, reply });
    answer.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| Err("the server did not answer".into()))
}

pub fn serve_sse<S: Conn>(mut stream: S, hub: &Hub) -> io::Result<()> {
    let Some(Membership { rx, overrun, gone, hello }) = hub.join() else {
        return http::respond(&mut stream, "503 Service Unavailable", b"too many clients\n");
    };
    let _leave = Leave(gone);
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
    )?;
    write!(stream, "event: hello\ndata: {hello}\n\n")?;
    stream.flush()?;
    let mut idle = Duration::ZERO;
    loop {
        if overrun.load(Ordering::SeqCst) {
            let reason = serde_json::to_string(&hub.too_slow_reason()).expect("JSON of a string");
            let _ = write!(stream, "event: close\ndata: {reason}\n\n");
            break;
        }
        match rx.recv_timeout(TICK) {
            Ok(item) => {
                idle = Duration::ZERO;
                if !overrun.load(Ordering::SeqCst) {
                    write!(stream, "data: {}\n\n", item.json.get())?;
                    stream.flush()?;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                idle += TICK;
                if idle >= SSE_KEEPALIVE {
                    idle = Duration::ZERO;
                    stream.write_all(b": keep-alive\n\n")?;
                }
            }
            Err(RecvTimeoutError::Disconnected) => {
                if !overrun.load(Ordering::SeqCst) {
                    break;
                }
            }
        }
    }
    let _ = stream.flush();
    let _ = stream.shutdown(Shutdown::Both);
    Ok(())
}
