//! Opening the connection as libpq does: each host in turn (in random order with
//! `load_balance_hosts=random`), and on each the attempts its `sslmode` asks for (`tls.rs`):
//! `allow` tries plain then TLS when the server refuses, `prefer` TLS then plain when TLS
//! fails, the others one attempt. A Unix socket never carries TLS. tokio-postgres makes each
//! attempt, on a one-host copy of the settings.

use crate::conninfo::Target;
use crate::tls::{SslMode, Tls};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio_postgres::config::{Host, LoadBalanceHosts, SslMode as PgSslMode};
use tokio_postgres::tls::{MakeTlsConnect, TlsConnect};
use tokio_postgres::{Client, Config, Socket};
use tokio_postgres_rustls::MakeRustlsConnect;

pub type TlsStream = <MakeRustlsConnect as MakeTlsConnect<Socket>>::Stream;
pub type Connection = tokio_postgres::Connection<Socket, TlsStream>;

/// Connects to the first host that takes the connection; else every host's reason.
pub async fn open(target: &Target) -> Result<(Client, Connection), String> {
    let hosts = one_per_host(&target.pg)?;
    let several = hosts.len() > 1;
    let mut errors = Vec::new();
    for one in &hosts {
        match open_host(one, &target.tls).await {
            Ok(c) => return Ok(c),
            Err(e) if several => errors.push(format!("{}: {e}", one.name)),
            Err(e) => errors.push(e),
        }
    }
    Err(errors.join("; "))
}

/// One host's attempts, as its sslmode asks.
async fn open_host(one: &OneHost, tls: &Tls) -> Result<(Client, Connection), String> {
    let OneHost { config, name, addr_only } = one;
    let (config, name) = (config, name.as_str());
    let tcp = matches!(config.get_hosts().first(), Some(Host::Tcp(_)));
    if !tcp || tls.mode == SslMode::Disable {
        return attempt(config, name, tls, Kind::Plain).await.map_err(|f| f.message);
    }
    if tls.mode == SslMode::VerifyFull && *addr_only {
        return Err("sslmode=verify-full: host name must be specified for a verified SSL connection".to_owned());
    }
    match tls.mode {
        SslMode::Allow => match attempt(config, name, tls, Kind::Plain).await {
            Err(plain) if plain.server_refused => attempt(config, name, tls, Kind::Require)
                .await
                .map_err(|t| format!("{}; then with TLS: {}", plain.message, t.message)),
            other => other.map_err(|f| f.message),
        },
        SslMode::Prefer => match attempt(config, name, tls, Kind::Prefer).await {
            Err(first) if first.tls_started => attempt(config, name, tls, Kind::Plain)
                .await
                .map_err(|p| format!("{}; then without TLS: {}", first.message, p.message)),
            other => other.map_err(|f| f.message),
        },
        _ => attempt(config, name, tls, Kind::Require).await.map_err(|f| f.message),
    }
}

/// How one attempt uses TLS.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Plain,
    /// TLS if the server has it, else plain (the server said so).
    Prefer,
    Require,
}

struct Failure {
    message: String,
    /// TLS was started (the server agreed to it) or could not be set up.
    tls_started: bool,
    /// The server answered with an error (during the startup: authentication, pg_hba).
    server_refused: bool,
}

async fn attempt(config: &Config, name: &str, tls: &Tls, kind: Kind) -> Result<(Client, Connection), Failure> {
    let mode = tls.mode.name();
    let rustls = match kind {
        Kind::Plain => None,
        Kind::Prefer | Kind::Require => Some(MakeRustlsConnect::new(tls.client_config().map_err(|e| Failure {
            message: format!("sslmode={mode}: {e}"),
            tls_started: true,
            server_refused: false,
        })?)),
    };
    let mut config = config.clone();
    config.ssl_mode(match kind {
        Kind::Plain => PgSslMode::Disable,
        Kind::Prefer => PgSslMode::Prefer,
        Kind::Require => PgSslMode::Require,
    });
    let started = Arc::new(AtomicBool::new(false));
    config.connect(Connector { rustls, started: started.clone() }).await.map_err(|e| Failure {
        message: explain(&e, name, tls),
        tls_started: started.load(Ordering::Relaxed),
        server_refused: e.as_db_error().is_some(),
    })
}

/// The error in words: a TLS failure names the mode and the reason.
fn explain(e: &tokio_postgres::Error, name: &str, tls: &Tls) -> String {
    let mode = tls.mode.name();
    let source = std::error::Error::source(e);
    let rustls_error = source
        .and_then(|s| s.downcast_ref::<io::Error>())
        .and_then(|io| io.get_ref())
        .and_then(|inner| inner.downcast_ref::<rustls::Error>());
    if let Some(r) = rustls_error {
        return format!("sslmode={mode}: TLS with {name} failed: {}", crate::tls::explain(r, name, tls));
    }
    if e.as_db_error().is_none() && e.to_string().contains("TLS") {
        let why = source.map(ToString::to_string).unwrap_or_default();
        if why == "server does not support TLS" {
            return format!("sslmode={mode}: the server at {name} does not support SSL, but SSL was required");
        }
        return format!("sslmode={mode}: TLS with {name} failed: {why}");
    }
    crate::pg::describe_error(e)
}

/// One host's settings.
struct OneHost {
    config: Config,
    /// The host's name, for messages and for TLS.
    name: String,
    /// Only an address was given (`hostaddr` without `host`).
    addr_only: bool,
}

/// The settings once per host (tokio-postgres's hosts, `hostaddr`s and ports read as it reads
/// them).
fn one_per_host(c: &Config) -> Result<Vec<OneHost>, String> {
    let (hosts, addrs, ports) = (c.get_hosts(), c.get_hostaddrs(), c.get_ports());
    let n = hosts.len().max(addrs.len());
    if !hosts.is_empty() && !addrs.is_empty() && hosts.len() != addrs.len() {
        return Err(format!("could not match {} host names to {} hostaddr values", hosts.len(), addrs.len()));
    }
    if ports.len() > 1 && ports.len() != n {
        return Err(format!("could not match {} port numbers to {n} hosts", ports.len()));
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let mut one = without_hosts(c);
        let name = match (hosts.get(i), addrs.get(i)) {
            (Some(Host::Tcp(h)), _) => {
                one.host(h);
                h.clone()
            }
            (Some(Host::Unix(p)), _) => {
                one.host_path(p);
                p.display().to_string()
            }
            // An address alone: TLS checks the certificate against the address.
            (None, Some(a)) => {
                one.host(a.to_string());
                a.to_string()
            }
            (None, None) => continue,
        };
        if let Some(a) = addrs.get(i) {
            one.hostaddr(*a);
        }
        one.port(ports.get(i).or(ports.first()).copied().unwrap_or(5432));
        out.push(OneHost { config: one, name, addr_only: hosts.get(i).is_none() });
    }
    if c.get_load_balance_hosts() == LoadBalanceHosts::Random {
        shuffle(&mut out);
    }
    Ok(out)
}

/// A copy of the settings without hosts, addresses and ports.
fn without_hosts(c: &Config) -> Config {
    let mut o = Config::new();
    if let Some(v) = c.get_user() {
        o.user(v);
    }
    if let Some(v) = c.get_password() {
        o.password(v);
    }
    if let Some(v) = c.get_dbname() {
        o.dbname(v);
    }
    if let Some(v) = c.get_options() {
        o.options(v);
    }
    if let Some(v) = c.get_application_name() {
        o.application_name(v);
    }
    if let Some(v) = c.get_connect_timeout() {
        o.connect_timeout(*v);
    }
    if let Some(v) = c.get_tcp_user_timeout() {
        o.tcp_user_timeout(*v);
    }
    if let Some(v) = c.get_keepalives_interval() {
        o.keepalives_interval(v);
    }
    if let Some(v) = c.get_keepalives_retries() {
        o.keepalives_retries(v);
    }
    o.ssl_mode(c.get_ssl_mode())
        .ssl_negotiation(c.get_ssl_negotiation())
        .keepalives(c.get_keepalives())
        .keepalives_idle(c.get_keepalives_idle())
        .target_session_attrs(c.get_target_session_attrs())
        .channel_binding(c.get_channel_binding())
        .load_balance_hosts(c.get_load_balance_hosts());
    o
}

fn shuffle<T>(v: &mut [T]) {
    use std::hash::{BuildHasher, Hasher};
    let mut seed = std::collections::hash_map::RandomState::new().build_hasher().finish() | 1;
    for i in (1..v.len()).rev() {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        v.swap(i, (seed % (i as u64 + 1)) as usize);
    }
}

/// rustls for tokio-postgres, when the attempt uses TLS, and whether the handshake started
/// (the server said yes to TLS): `prefer` falls back to plain only then, as libpq.
struct Connector {
    rustls: Option<MakeRustlsConnect>,
    started: Arc<AtomicBool>,
}

type RustlsConnect = <MakeRustlsConnect as MakeTlsConnect<Socket>>::TlsConnect;

impl MakeTlsConnect<Socket> for Connector {
    type Stream = TlsStream;
    type TlsConnect = Connect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, host: &str) -> Result<Connect, io::Error> {
        let inner =
            self.rustls.as_mut().map(|m| {
                match <MakeRustlsConnect as MakeTlsConnect<Socket>>::make_tls_connect(m, host) {
                    Ok(c) => c,
                    Err(never) => match never {},
                }
            });
        Ok(Connect { inner, started: self.started.clone() })
    }
}

struct Connect {
    inner: Option<RustlsConnect>,
    started: Arc<AtomicBool>,
}

impl TlsConnect<Socket> for Connect {
    type Stream = TlsStream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<TlsStream>> + Send>>;

    fn connect(self, stream: Socket) -> Self::Future {
        self.started.store(true, Ordering::Relaxed);
        match self.inner {
            Some(c) => Box::pin(c.connect(stream)),
            // Not reached: a plain attempt asks tokio-postgres for no TLS at all.
            None => Box::pin(async { Err(io::Error::other("TLS was not set up for this attempt")) }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_one_host_copy_keeps_every_other_setting() {
        let c: Config = "host=db1 hostaddr=10.0.0.1 port=6000 user=u password=p dbname=d options=-cx=1 \
                         application_name=a connect_timeout=7 tcp_user_timeout=9 keepalives=0 keepalives_idle=11 \
                         keepalives_interval=12 keepalives_retries=13 target_session_attrs=read-write \
                         channel_binding=require load_balance_hosts=disable sslmode=require sslnegotiation=direct"
            .parse()
            .unwrap();
        let one = one_per_host(&c).unwrap().remove(0);
        assert_eq!((one.name.as_str(), one.addr_only), ("db1", false));
        assert_eq!(format!("{:?}", one.config), format!("{c:?}"));
    }

    #[test]
    fn each_host_gets_its_port_or_the_only_one() {
        let c: Config = "host=a,/run/pg,b port=1,2,3".parse().unwrap();
        let hosts = one_per_host(&c).unwrap();
        let got: Vec<(String, u16)> = hosts.iter().map(|h| (h.name.clone(), h.config.get_ports()[0])).collect();
        assert_eq!(got, [("a".to_owned(), 1), ("/run/pg".to_owned(), 2), ("b".to_owned(), 3)]);
        let c: Config = "host=a,b port=7".parse().unwrap();
        assert!(one_per_host(&c).unwrap().iter().all(|h| h.config.get_ports() == [7]));
        let c: Config = "hostaddr=127.0.0.1".parse().unwrap();
        let one = one_per_host(&c).unwrap().remove(0);
        assert_eq!((one.name.as_str(), one.addr_only, one.config.get_hostaddrs().len()), ("127.0.0.1", true, 1));
    }
}
