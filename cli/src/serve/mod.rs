//! `hark serve`: notifications on some channels, forwarded to browsers over WebSocket (`/ws`) and
//! Server-Sent Events (`/events`), with a live dashboard at `/`, and as bare payloads over a
//! WebSocket at `/` (plain mode).
//!
//! One thread listens on the queue and hands each notification, as one JSON text shared by all,
//! to every client's bounded queue without ever blocking (`hub.rs`), keeping the last ones for
//! pages that open later. Each client has a thread that writes its queue to the socket
//! (`client.rs`). A client whose queue is full (a browser that stopped reading, or reads slower
//! than notifications arrive) is dropped at once: the listening thread stops queueing for it, and
//! its thread discards what is queued and closes the connection with a reason (WebSocket close
//! code 1013, or an SSE `close` event), so memory stays bounded by `max_clients × client_queue`
//! messages and the history's bound, whatever the browsers do.
//!
//! Connections come from a loopback TCP port or from a Unix socket only its owner can connect to
//! (`listen.rs`). Request heads are parsed by httparse (`http.rs`), WebSocket frames by
//! tungstenite, JSON by serde_json. Nothing is read from the queue for a request, nor sent to it,
//! before `auth` has accepted its head: its `Host`, its `Origin`, and the secret token printed at
//! start.

mod auth;
mod client;
mod http;
mod hub;
mod listen;
mod patterns;

pub use auth::read_token_file;

use hark::Connection;
use hub::Hub;
use listen::Conn;
use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread;
use std::time::Duration;

const DASHBOARD: &str = include_str!("dashboard.html");

/// How often the listening thread looks for channels added from a page while no notification
/// comes.
const LISTEN_POLL: Duration = Duration::from_millis(100);

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
    /// Notifications kept for pages that open later.
    pub history: usize,
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
    patterns::sweep(&mut conn)?;
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
        // Named `localhost` when it is 127.0.0.1 or ::1: the page's cookie then also goes with
        // code that opens `ws://localhost:PORT` from its console, as the PostgreSQL articles do.
        Listener::Tcp(_, a) if a.ip() == std::net::Ipv4Addr::LOCALHOST || a.ip() == std::net::Ipv6Addr::LOCALHOST => {
            (Some(*a), format!("http://localhost:{}/", a.port()), a.to_string(), String::new())
        }
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
    let can_listen = token.is_some();
    let queue = cfg.dir.display().to_string();
    let hub = Hub::new(queue, cfg.channels.clone(), cfg.client_queue, cfg.max_clients, cfg.history, can_listen);
    let server = Arc::new(Server { hub: Arc::new(hub), access: auth::Access::new(token, local, &cfg.allow_hosts) });
    {
        let hub = Arc::clone(&server.hub);
        let (dir, options) = (cfg.dir.clone(), cfg.options.clone());
        thread::Builder::new()
            .name("hark-listen".into())
            .spawn(move || forward(conn, &hub, &dir, &options))
            .map_err(|e| e.to_string())?;
    }
    match listener {
        Listener::Tcp(l, _) => accept(l.incoming(), &server),
        Listener::Unix(l, _) => accept(l.incoming(), &server),
    }
    Ok(())
}

struct Server {
    hub: Arc<Hub>,
    access: auth::Access,
}

enum Listener {
    Tcp(TcpListener, SocketAddr),
    Unix(UnixListener, PathBuf),
}

/// Gives each connection its own thread, for ever.
fn accept<S: Conn>(incoming: impl Iterator<Item = io::Result<S>>, server: &Arc<Server>) {
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
        let server = Arc::clone(server);
        let _ = thread::Builder::new().name("hark-client".into()).spawn(move || {
            let _ = serve_connection(stream, &server);
        });
    }
}

/// The listening thread: waits on the session, hands each notification to the hub, and listens
/// on the channels pages ask for (a pattern on a subscription of its own: `patterns.rs`).
fn forward(mut conn: Connection, hub: &Arc<Hub>, dir: &std::path::Path, options: &hark::Options) {
    let fatal = |e: hark::Error| -> ! {
        eprintln!("hark serve: error: {e}");
        std::process::exit(1);
    };
    loop {
        let requests = std::mem::take(&mut *hub.requests.lock().unwrap_or_else(|e| e.into_inner()));
        for r in requests {
            let answer = if patterns::is_pattern(&r.channel) {
                patterns::follow(dir, options, &r.channel, Arc::clone(hub))
            } else {
                conn.listen(&r.channel).map_err(|e| e.to_string())
            };
            if answer.is_ok() {
                hub.add_channel(&r.channel);
            }
            let _ = r.reply.try_send(answer);
        }
        if let Err(e) = conn.wait(Some(LISTEN_POLL)) {
            fatal(e);
        }
        loop {
            match conn.notifies_ref() {
                Ok(Some(n)) => hub.notification(n.channel, n.payload, n.pid, n.commit_time, n.position),
                Ok(None) => break,
                Err(e) => fatal(e),
            }
        }
    }
}

fn serve_connection<S: Conn>(mut stream: S, server: &Server) -> io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let req = match http::read_request(&mut stream) {
        Ok(req) => req,
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            let body = format!("bad request: {e}\n");
            return http::respond(&mut stream, "400 Bad Request", body.as_bytes());
        }
        Err(e) => return Err(e),
    };
    if let Err(refusal) = server.access.check(&req) {
        return http::respond(&mut stream, refusal.status(), refusal.message().as_bytes());
    }
    if req.method != "GET" {
        return http::respond(&mut stream, "405 Method Not Allowed", b"only GET\n");
    }
    let upgrade = req.header_has("Upgrade", "websocket");
    match req.path.as_str() {
        "/" if upgrade => client::serve_websocket(stream, req, &server.hub, true),
        "/" | "/index.html" => {
            let channels = serde_json::to_string(&server.hub.channels()).expect("JSON of strings");
            let page = DASHBOARD.replace("/*CHANNELS*/[]", &channels.replace("</", "<\\/"));
            let cookie = server.access.cookie_header();
            http::respond_with(&mut stream, "200 OK", "text/html; charset=utf-8", &cookie, page.as_bytes())
        }
        "/ws" if upgrade => client::serve_websocket(stream, req, &server.hub, false),
        "/ws" => http::respond(&mut stream, "426 Upgrade Required", b"WebSocket only\n"),
        "/events" => client::serve_sse(stream, &server.hub),
        _ => http::respond(&mut stream, "404 Not Found", b"not found\n"),
    }
}
