//! A throwaway PostgreSQL 15 cluster (as `bench/pg_cluster.sh` starts one: a Unix socket only,
//! fsync off; as root, the server runs as the `postgres` user), queue directories standing for
//! hosts, and `hark bridge` processes.
#![allow(dead_code)]

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const PG_BIN: &str = "/usr/lib/postgresql/15/bin";
static NEXT: AtomicU32 = AtomicU32::new(0);

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A directory removed at drop, readable by the `postgres` user.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(what: &str) -> Scratch {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("hark-bridge-{what}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `hark` command, built beside this test (`make test-bridge` builds it first).
pub fn hark_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("hark");
    assert!(bin.exists(), "{} is missing: build it first (cargo build --release -p hark-cli)", bin.display());
    bin
}

pub struct Pg {
    pub scratch: Scratch,
    pub conninfo: String,
    /// The port of its socket; with `start_tcp`, also on 127.0.0.1.
    pub port: u16,
    server_opts: String,
}

/// Gives a file to the server's owner (when root, the server runs as `postgres`).
pub fn give_to_server(path: &Path) {
    if is_root() {
        let ok = Command::new("chown").arg("postgres:").arg(path).status().unwrap().success();
        assert!(ok, "chown postgres {}", path.display());
    }
}

/// A TCP port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

impl Pg {
    /// Starts a cluster, or `None` (with the reason printed) where PostgreSQL 15 is missing.
    pub fn start() -> Option<Pg> {
        Self::start_with(false, |_| String::new())
    }

    /// A cluster that also listens on 127.0.0.1 (`self.port`), with the server settings that
    /// `setup` returns (`-c name=value …`); `setup` gets the cluster's directory, to put files
    /// in before the server starts.
    pub fn start_tcp(setup: impl FnOnce(&Path) -> String) -> Option<Pg> {
        Self::start_with(true, setup)
    }

    fn start_with(tcp: bool, setup: impl FnOnce(&Path) -> String) -> Option<Pg> {
        if !Path::new(PG_BIN).join("postgres").exists() {
            eprintln!("skipped: PostgreSQL 15 is not installed ({PG_BIN}); make test-bridge installs it");
            return None;
        }
        let scratch = Scratch::new("pg");
        let dir = scratch.0.clone();
        if is_root() {
            let ok = Command::new("chown").arg("postgres:").arg(&dir).status().unwrap().success();
            assert!(ok, "chown postgres {}", dir.display());
        }
        let out = Self::as_owner(&format!("{PG_BIN}/initdb"))
            .args(["-D", dir.join("data").to_str().unwrap(), "-A", "trust", "-U", "postgres", "--no-sync"])
            .output()
            .unwrap();
        assert!(out.status.success(), "initdb: {}", String::from_utf8_lossy(&out.stderr));
        let port = if tcp { free_port() } else { 5432 };
        let conninfo = format!("host={} port={port} user=postgres dbname=postgres", dir.display());
        let listen = if tcp { "127.0.0.1" } else { "''" };
        let server_opts = format!("-c listen_addresses={listen} -c port={port} {}", setup(&dir));
        let pg = Pg { scratch, conninfo, port, server_opts };
        pg.start_server();
        Some(pg)
    }

    fn as_owner(program: &str) -> Command {
        if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--", program]);
            c
        } else {
            Command::new(program)
        }
    }

    pub fn dir(&self) -> &Path {
        &self.scratch.0
    }

    pub fn start_server(&self) {
        let dir = self.dir();
        let opts = format!(
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off \
             -c unix_socket_directories={} -c max_connections=40 -c shared_buffers=16MB {}",
            dir.display(),
            self.server_opts
        );
        let st = Self::as_owner(&format!("{PG_BIN}/pg_ctl"))
            .args(["-D", dir.join("data").to_str().unwrap(), "-l", dir.join("server.log").to_str().unwrap(), "-w"])
            .args(["start", "-o", &opts])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "pg_ctl start; see {}", dir.join("server.log").display());
    }

    /// `mode`: fast (disconnects clients), immediate (as a crash).
    pub fn stop_server(&self, mode: &str) {
        let _ = Self::as_owner(&format!("{PG_BIN}/pg_ctl"))
            .args(["-D", self.dir().join("data").to_str().unwrap(), "-m", mode, "-w", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// Runs SQL through psql; its standard output (unaligned, tuples only).
    pub fn psql(&self, sql: &str) -> String {
        let out = Command::new("psql")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", &self.conninfo, "-c", sql])
            .output()
            .unwrap();
        assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the psql session of this cluster fed `… SELECT 'listening';` has run that
    /// statement, so that the LISTENs before it have committed (a fixed sleep was too short on
    /// a loaded machine: notifications sent meanwhile never reached psql).
    pub fn wait_psql_listening(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let sql = "SELECT count(*) FROM pg_stat_activity WHERE state = 'idle' AND query LIKE 'SELECT ''listening''%'";
        while self.psql(sql).trim() == "0" {
            assert!(Instant::now() < deadline, "psql did not run its LISTEN in 30 s");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A psql session reading a script from its standard input.
    pub fn psql_session(&self) -> Child {
        Command::new("psql")
            .args(["-X", "-q", "-d", &self.conninfo])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }
}

impl Drop for Pg {
    fn drop(&mut self) {
        self.stop_server("immediate");
    }
}

/// A "host": a queue directory of its own, and its bridge process.
pub struct Host {
    pub name: String,
    pub scratch: Scratch,
    pub bridge: Option<Child>,
}

impl Host {
    pub fn new(name: &str) -> Host {
        Host { name: name.to_owned(), scratch: Scratch::new(name), bridge: None }
    }

    pub fn queue(&self) -> PathBuf {
        self.scratch.0.join("q")
    }

    pub fn connect(&self) -> hark::Connection {
        hark::Connection::open(self.queue()).unwrap()
    }

    /// Starts `hark bridge` on this host's queue; its standard error goes to `bridge.log`.
    pub fn start_bridge(&mut self, conninfo: &str, channels: &[&str]) {
        self.start_bridge_with(conninfo, channels, &[]);
    }

    /// The same, with these environment variables (and no PG* variable of the test's own).
    pub fn start_bridge_with(&mut self, conninfo: &str, channels: &[&str], env: &[(&str, &str)]) {
        self.start_bridge_args(conninfo, channels, env, &[]);
    }

    /// The same, with more arguments for `hark bridge`.
    pub fn start_bridge_args(&mut self, conninfo: &str, channels: &[&str], env: &[(&str, &str)], args: &[&str]) {
        let log =
            std::fs::OpenOptions::new().create(true).append(true).open(self.scratch.0.join("bridge.log")).unwrap();
        let mut cmd = Command::new(hark_bin());
        cmd.arg("bridge").arg(self.queue()).args(args);
        cmd.args(["--postgres", conninfo, "--max-backoff", "0.5", "--channel"]);
        cmd.args(channels);
        for (k, _) in std::env::vars() {
            if k.starts_with("PG") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(env.iter().copied());
        let child = cmd.stdout(Stdio::null()).stderr(log).spawn().unwrap();
        self.bridge = Some(child);
    }

    pub fn kill_bridge(&mut self) {
        if let Some(mut c) = self.bridge.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops the bridge with SIGTERM and waits for it.
    pub fn stop_bridge(&mut self) -> std::process::ExitStatus {
        let mut c = self.bridge.take().expect("a bridge");
        // SAFETY: kill on our own child's pid.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        c.wait().unwrap()
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.scratch.0.join("bridge.log")).unwrap_or_default()
    }

    /// The bridge's state file as `hark stat` reads it.
    pub fn state(&self) -> Option<hark_bridge::state::Report> {
        hark_bridge::state::read_all(&self.queue()).into_iter().next()
    }

    /// Waits until the bridge says it is connected (and it holds its lock), with `connects` at
    /// least `connects`.
    pub fn wait_connected(&self, connects: u64) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(r) = self.state() {
                if r.running
                    && r.get("state") == "connected"
                    && r.get("connects").parse::<u64>().unwrap_or(0) >= connects
                {
                    return;
                }
            }
            assert!(Instant::now() < deadline, "bridge {} never connected; log:\n{}", self.name, self.log());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill_bridge();
    }
}

/// A local listener on a host's queue, collecting (channel, payload, pid).
pub struct Listener {
    pub conn: hark::Connection,
    pub got: Vec<(String, String, i32)>,
}

impl Listener {
    pub fn new(host: &Host, channels: &[&str]) -> Listener {
        let mut conn = host.connect();
        for c in channels {
            conn.listen(c).unwrap();
        }
        Listener { conn, got: Vec::new() }
    }

    /// Receives until `done` holds of what was received, or the deadline passes.
    pub fn until(&mut self, secs: u64, done: impl Fn(&[(String, String, i32)]) -> bool) -> bool {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            while let Some(n) = self.conn.notifies().unwrap() {
                self.got.push((n.channel, n.payload, n.pid));
            }
            if done(&self.got) {
                return true;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            self.conn.wait(Some(left.min(Duration::from_millis(100)))).unwrap();
        }
    }

    pub fn payloads(&self, channel: &str) -> Vec<String> {
        self.got.iter().filter(|g| g.0 == channel).map(|g| g.1.clone()).collect()
    }
}

/// Writes a script to a psql session.
pub fn feed(child: &mut Child, script: &str) {
    child.stdin.as_mut().unwrap().write_all(script.as_bytes()).unwrap();
    child.stdin.as_mut().unwrap().flush().unwrap();
}
