//! `hark serve`: notifications on some channels, forwarded to browsers over WebSocket (`/ws`) and
//! Server-Sent Events (`/events`), with a live dashboard at `/`.
//!
//! One thread listens on the queue and hands each notification, as one JSON text shared by all,
//! to every client's bounded queue without ever blocking. Each client has a thread that writes its
//! queue to the socket. A client whose queue is full (a browser that stopped reading, or reads
//! slower than notifications arrive) is dropped at once: the listening thread stops queueing for
//! it, and its thread discards what is queued and closes the connection with a reason (WebSocket
//! close code 1013, or an SSE `close` event), so memory stays bounded by
//! `max_clients × client_queue` messages whatever the browsers do.
//!
//! Connections come from a loopback TCP port or from a Unix socket only its owner can connect to
//! (`listen.rs`). Nothing is read from the queue for a request, nor sent to it, before `auth` has
//! accepted its head: its `Host`, its `Origin`, and the secret token printed at start.

mod auth;
mod http;
mod listen;

pub use auth::read_token_file;

use crate::json;
use crate::ws;
use hark::Connection;
use listen::Conn;
use std::collections::BTreeMap;
use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

const DASHBOARD: &str = include_str!("dashboard.html");

/// How long a write to a browser may block before the connection is given up.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// SSE comment sent to an idle stream, to notice browsers that went away.
const SSE_KEEPALIVE: Duration = Duration::from_secs(15);

/// How clients prove that the user who started the server sent them.
#[derive(Debug, Clone)]
pub enum TokenSource {
    /// A fresh random token, printed in the dashboard's URL at start.
    Generate,
    /// A token the user chose; `from` says where it came from (it is not printed).
    Given { token: String, from: String },
    /// No token (`--open`): any local user can read the stream.
    Open,
}

#[derive(Debug, Clone)]
pub struct ServeConfig {
    pub dir: PathBuf,
    /// How to open (or create) the queue.
    pub options: hark::Options,
    pub addr: SocketAddr,
    /// A Unix socket to serve on instead of `addr`.
    pub unix: Option<PathBuf>,
    pub channels: Vec<String>,
    /// Notifications queued for one client before it is dropped as too slow.
    pub client_queue: usize,
    /// Browsers served at once.
    pub max_clients: usize,
    pub token: TokenSource,
    /// Host names accepted besides loopback's own (`--allow-host`).
    pub allow_hosts: Vec<String>,
}

struct Client {
    tx: SyncSender<Arc<str>>,
    /// Set when the client's queue overflowed: it is to be closed with a reason.
    overrun: Arc<AtomicBool>,
    /// Set by the client's own thread when its connection ended.
    gone: Arc<AtomicBool>,
}

/// A client's side of its registration: its queue and the two flags it shares with the hub.
struct Membership {
    rx: Receiver<Arc<str>>,
    overrun: Arc<AtomicBool>,
    gone: Arc<AtomicBool>,
}

struct Hub {
    clients: Mutex<Vec<Client>>,
    /// Notifications received per channel, for the dashboard's counters on (re)connection.
    counts: Mutex<BTreeMap<String, u64>>,
    seq: AtomicU64,
    access: auth::Access,
    cfg: ServeConfig,
}

impl Hub {
    /// Queues `msg` for every client without blocking; drops the ones that are full or gone.
    fn broadcast(&self, msg: Arc<str>) {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.retain(|c| {
            if c.gone.load(Ordering::SeqCst) {
                return false;
            }
            match c.tx.try_send(Arc::clone(&msg)) {
                Ok(()) => true,
                Err(TrySendError::Full(_)) => {
                    c.overrun.store(true, Ordering::SeqCst);
                    false
                }
                Err(TrySendError::Disconnected(_)) => false,
            }
        });
    }

    /// Registers a client; `None` when `max_clients` are already served.
    fn join(&self) -> Option<Membership> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        clients.retain(|c| !c.gone.load(Ordering::SeqCst));
        if clients.len() >= self.cfg.max_clients {
            return None;
        }
        let (tx, rx) = sync_channel(self.cfg.client_queue);
        let overrun = Arc::new(AtomicBool::new(false));
        let gone = Arc::new(AtomicBool::new(false));
        clients.push(Client { tx, overrun: Arc::clone(&overrun), gone: Arc::clone(&gone) });
        Some(Membership { rx, overrun, gone })
    }

    fn too_slow_reason(&self) -> String {
        format!("too slow: more than {} notifications waiting; reconnect to resume", self.cfg.client_queue)
    }

    fn hello(&self) -> String {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let counts: Vec<String> = counts.iter().map(|(k, v)| format!("{}:{}", json::string(k), v)).collect();
        let channels: Vec<String> = self.cfg.channels.iter().map(|c| json::string(c)).collect();
        format!(
            "{{\"type\":\"hello\",\"channels\":[{}],\"counts\":{{{}}},\"queue\":{}}}",
            channels.join(","),
            counts.join(","),
            json::string(&self.cfg.dir.display().to_string())
        )
    }
}

/// Binds, listens on the channels, and serves until the process is stopped.
pub fn run(cfg: ServeConfig) -> Result<(), String> {
    if cfg.unix.is_none() && !cfg.addr.ip().is_loopback() {
        return Err(format!(
            "{} is not a loopback address: hark serve speaks plain HTTP, which anyone on the network could read, so it only binds 127.0.0.1 or ::1",
            cfg.addr.ip()
        ));
    }
    if cfg.channels.is_empty() {
        return Err("no channel given".into());
    }
    for h in &cfg.allow_hosts {
        if h.is_empty() || h.contains([':', '/', '@']) || h.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("--allow-host takes a host name without port or scheme, not {h:?}"));
        }
    }
    let token = match &cfg.token {
        TokenSource::Generate => {
            Some(auth::generate_token().map_err(|e| format!("could not read random bytes for the token: {e}"))?)
        }
        TokenSource::Given { token, .. } => {
            auth::validate_token(token)?;
            Some(token.clone())
        }
        TokenSource::Open => None,
    };
    let mut conn = Connection::with_options(&cfg.dir, &cfg.options)
        .map_err(|e| format!("could not open the queue in {}: {e}", cfg.dir.display()))?;
    for ch in &cfg.channels {
        conn.listen(ch).map_err(|e| e.to_string())?;
    }
    let listener = match &cfg.unix {
        None => {
            let l = TcpListener::bind(cfg.addr).map_err(|e| format!("could not bind {}: {e}", cfg.addr))?;
            let local = l.local_addr().map_err(|e| e.to_string())?;
            Listener::Tcp(l, local)
        }
        Some(path) => Listener::Unix(listen::bind_unix(path)?, path.clone()),
    };
    // What a client asks for, and where (`curl --unix-socket PATH URL` for a Unix socket).
    let (local, base, place, on) = match &listener {
        Listener::Tcp(_, a) => (Some(*a), format!("http://{a}/"), a.to_string(), String::new()),
        Listener::Unix(_, p) => {
            let place = format!("unix:{}", p.display());
            (None, "http://localhost/".to_owned(), place.clone(), format!(" on {place}"))
        }
    };
    let channels = cfg.channels.join(", ");
    match (&cfg.token, &token) {
        (TokenSource::Generate, Some(t)) => eprintln!("hark serve: {base}?token={t}{on} (channels: {channels})"),
        (TokenSource::Given { from, .. }, _) => {
            eprintln!("hark serve: {base}{on} (channels: {channels}; token from {from})")
        }
        _ => {
            eprintln!("hark serve: {base}{on} (channels: {channels})");
            eprintln!(
                "hark serve: WARNING: --open: no token is required, so any user of this machine, and any program or web page able to reach {place}, can read the notifications on these channels"
            );
        }
    }
    let hub = Arc::new(Hub {
        clients: Mutex::new(Vec::new()),
        counts: Mutex::new(cfg.channels.iter().map(|c| (c.clone(), 0)).collect()),
        seq: AtomicU64::new(0),
        access: auth::Access::new(token, local, &cfg.allow_hosts),
        cfg,
    });
    {
        let hub = Arc::clone(&hub);
        thread::Builder::new()
            .name("hark-listen".into())
            .spawn(move || forward(conn, &hub))
            .map_err(|e| e.to_string())?;
    }
    match listener {
        Listener::Tcp(l, _) => accept(l.incoming(), &hub),
        Listener::Unix(l, _) => accept(l.incoming(), &hub),
    }
    Ok(())
}

enum Listener {
    Tcp(TcpListener, SocketAddr),
    Unix(UnixListener, PathBuf),
}

/// Gives each connection its own thread, for ever.
fn accept<S: Conn>(incoming: impl Iterator<Item = io::Result<S>>, hub: &Arc<Hub>) {
    for stream in incoming {
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                // Out of descriptors, for example: wait for some to be freed rather than spin.
                eprintln!("hark serve: accept: {e}");
                thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let hub = Arc::clone(hub);
        let _ = thread::Builder::new().name("hark-client".into()).spawn(move || {
            let _ = serve_connection(stream, &hub);
        });
    }
}

/// The listening thread: waits on the session, turns each notification into one JSON text and
/// queues it for every client.
fn forward(mut conn: Connection, hub: &Hub) {
    loop {
        match conn.wait(None) {
            Ok(_) => {}
            Err(e) => {
                eprintln!("hark serve: error: {e}");
                std::process::exit(1);
            }
        }
        loop {
            let n = match conn.notifies_ref() {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(e) => {
                    eprintln!("hark serve: error: {e}");
                    std::process::exit(1);
                }
            };
            let seq = hub.seq.fetch_add(1, Ordering::SeqCst) + 1;
            // The served channels are counted from the start: a key is copied only for another.
            let mut counts = hub.counts.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(c) = counts.get_mut(n.channel) {
                *c += 1;
            } else {
                counts.insert(n.channel.to_owned(), 1);
            }
            drop(counts);
            let body = json::notification(&n);
            let msg = format!("{{\"type\":\"notification\",\"seq\":{seq},{}", &body[1..]);
            hub.broadcast(Arc::from(msg));
        }
    }
}

fn serve_connection<S: Conn>(mut stream: S, hub: &Hub) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let req = match http::read_request(&mut stream) {
        Ok(req) => req,
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            let body = format!("bad request: {e}\n");
            return http::respond(&mut stream, "400 Bad Request", "text/plain; charset=utf-8", body.as_bytes());
        }
        Err(e) => return Err(e),
    };
    if let Err(refusal) = hub.access.check(&req) {
        return http::respond(&mut stream, refusal.status(), "text/plain; charset=utf-8", refusal.message().as_bytes());
    }
    if req.method != "GET" {
        return http::respond(&mut stream, "405 Method Not Allowed", "text/plain; charset=utf-8", b"only GET\n");
    }
    match req.path.as_str() {
        "/" | "/index.html" => {
            let channels: Vec<String> = hub.cfg.channels.iter().map(|c| json::string(c)).collect();
            let page = DASHBOARD.replace("/*CHANNELS*/[]", &format!("[{}]", channels.join(",")).replace("</", "<\\/"));
            let cookie = hub.access.cookie_header();
            http::respond_with(&mut stream, "200 OK", "text/html; charset=utf-8", &cookie, page.as_bytes())
        }
        "/ws" if req.header_has("Upgrade", "websocket") => serve_websocket(stream, &req, hub),
        "/ws" => http::respond(&mut stream, "426 Upgrade Required", "text/plain; charset=utf-8", b"WebSocket only\n"),
        "/events" => serve_sse(stream, hub),
        _ => http::respond(&mut stream, "404 Not Found", "text/plain; charset=utf-8", b"not found\n"),
    }
}

fn serve_websocket<S: Conn>(stream: S, req: &http::Request, hub: &Hub) -> io::Result<()> {
    let mut stream = stream;
    let Some(key) = req.header("Sec-WebSocket-Key") else {
        return http::respond(
            &mut stream,
            "400 Bad Request",
            "text/plain; charset=utf-8",
            b"missing Sec-WebSocket-Key\n",
        );
    };
    let Some(Membership { rx, overrun, gone }) = hub.join() else {
        return http::respond(
            &mut stream,
            "503 Service Unavailable",
            "text/plain; charset=utf-8",
            b"too many clients\n",
        );
    };
    let _leave = Leave(Arc::clone(&gone));
    write!(
        stream,
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {}\r\n\r\n",
        ws::accept_key(key)
    )?;
    stream.set_read_timeout(None)?;
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    let writer = Arc::new(Mutex::new(stream.try_clone()?));
    send(&writer, ws::OP_TEXT, hub.hello().as_bytes())?;

    // The reader answers pings and notices the browser's close; the writer below does the rest.
    let closed_by_peer = Arc::new(AtomicBool::new(false));
    {
        let writer = Arc::clone(&writer);
        let closed = Arc::clone(&closed_by_peer);
        let mut reader = stream.try_clone()?;
        thread::spawn(move || {
            loop {
                match ws::read_frame(&mut reader, 4096) {
                    Ok(f) if f.opcode == ws::OP_PING => {
                        let _ = send(&writer, ws::OP_PONG, &f.payload);
                    }
                    Ok(f) if f.opcode == ws::OP_CLOSE => {
                        let _ = send(&writer, ws::OP_CLOSE, f.payload.get(..2).unwrap_or(&[]));
                        break;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if e.kind() == io::ErrorKind::InvalidData {
                            let _ =
                                send(&writer, ws::OP_CLOSE, &ws::close_payload(ws::CLOSE_TOO_BIG, "message too big"));
                        }
                        break;
                    }
                }
            }
            closed.store(true, Ordering::SeqCst);
        });
    }
    loop {
        if overrun.load(Ordering::SeqCst) {
            let reason = hub.too_slow_reason();
            let _ = send(&writer, ws::OP_CLOSE, &ws::close_payload(ws::CLOSE_TRY_AGAIN_LATER, &reason));
            break;
        }
        if closed_by_peer.load(Ordering::SeqCst) {
            break;
        }
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(msg) => {
                // Checked again: what is queued after an overrun is discarded, not sent.
                if !overrun.load(Ordering::SeqCst) && send(&writer, ws::OP_TEXT, msg.as_bytes()).is_err() {
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
    }
    let _ = stream.shutdown(Shutdown::Write);
    // Give the browser a moment to read the close frame before the socket goes.
    thread::sleep(Duration::from_millis(100));
    let _ = stream.shutdown(Shutdown::Both);
    Ok(())
}

fn send<S: Conn>(writer: &Mutex<S>, opcode: u8, payload: &[u8]) -> io::Result<()> {
    let mut w = writer.lock().unwrap_or_else(|e| e.into_inner());
    ws::write_frame(&mut *w, opcode, payload, None)
}

/// Marks a client gone when its connection's thread ends, however it ends.
struct Leave(Arc<AtomicBool>);

impl Drop for Leave {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

fn serve_sse<S: Conn>(mut stream: S, hub: &Hub) -> io::Result<()> {
    let Some(Membership { rx, overrun, gone }) = hub.join() else {
        return http::respond(
            &mut stream,
            "503 Service Unavailable",
            "text/plain; charset=utf-8",
            b"too many clients\n",
        );
    };
    let _leave = Leave(gone);
    stream.set_write_timeout(Some(WRITE_TIMEOUT))?;
    write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
    )?;
    write!(stream, "event: hello\ndata: {}\n\n", hub.hello())?;
    stream.flush()?;
    let mut idle = Duration::ZERO;
    loop {
        if overrun.load(Ordering::SeqCst) {
            let reason = hub.too_slow_reason();
            let _ = write!(stream, "event: close\ndata: {}\n\n", json::string(&reason));
            break;
        }
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(msg) => {
                idle = Duration::ZERO;
                if !overrun.load(Ordering::SeqCst) {
                    write!(stream, "data: {msg}\n\n")?;
                    stream.flush()?;
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                idle += Duration::from_millis(250);
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
