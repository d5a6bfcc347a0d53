//! Shared test support: a fresh queue directory per test, and child processes.
//!
//! A test binary re-executes itself to run an *agent* in a child process: the child runs only the
//! test named `agent`, which reads its role from the environment and exits. Agents print their
//! observations as lines starting with `@`, so libtest's own output is easy to skip.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

/// A directory removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let p = std::env::temp_dir().join(format!("hark-test-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
    /// The queue directory inside (not yet created).
    pub fn queue(&self) -> PathBuf {
        std::fs::create_dir_all(&self.0).unwrap();
        self.0.join("q")
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Starts this test binary as an agent playing `role` with `args`.
pub fn spawn(role: &str, args: &[String]) -> Agent {
    spawn_via(&[], role, args, |_| {})
}

/// Starts this test binary as an agent through a launcher (`prefix`, such as `setpriv` and its
/// options, may be empty), after `setup` adjusts the command (its environment, say).
pub fn spawn_via(prefix: &[&str], role: &str, args: &[String], setup: impl FnOnce(&mut Command)) -> Agent {
    let exe = std::env::current_exe().unwrap();
    let mut cmd = match prefix.split_first() {
        Some((launcher, opts)) => {
            let mut c = Command::new(launcher);
            c.args(opts).arg(exe);
            c
        }
        None => Command::new(exe),
    };
    cmd.args(["agent", "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env("HARK_AGENT", role)
        .env("HARK_AGENT_ARGS", args.join("\u{1f}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped());
    setup(&mut cmd);
    Agent::new(cmd.spawn().expect("spawn agent"))
}

pub struct Agent {
    pub child: Child,
    out: BufReader<ChildStdout>,
}

impl Agent {
    fn new(mut child: Child) -> Agent {
        let out = BufReader::new(child.stdout.take().unwrap());
        Agent { child, out }
    }

    /// The next `@` line (without the `@`), or None at end of output.
    pub fn line(&mut self) -> Option<String> {
        let mut s = String::new();
        loop {
            s.clear();
            if self.out.read_line(&mut s).ok()? == 0 {
                return None;
            }
            if let Some(rest) = s.strip_prefix('@') {
                return Some(rest.trim_end_matches('\n').to_owned());
            }
        }
    }

    /// Waits for an `@` line equal to `want`, panicking on end of output.
    pub fn expect(&mut self, want: &str) {
        match self.line() {
            Some(l) if l == want => {}
            other => panic!("agent said {other:?}, expected {want:?}"),
        }
    }

    /// All remaining `@` lines, then the exit status (which must be success).
    pub fn finish(mut self) -> Vec<String> {
        let mut v = Vec::new();
        while let Some(l) = self.line() {
            v.push(l);
        }
        let st = self.child.wait().unwrap();
        assert!(st.success(), "agent failed: {st:?}; its last lines: {:?}", v.iter().rev().take(5).collect::<Vec<_>>());
        v
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The role and arguments when this process is an agent.
pub fn agent_role() -> Option<(String, Vec<String>)> {
    let role = std::env::var("HARK_AGENT").ok()?;
    let args = std::env::var("HARK_AGENT_ARGS").unwrap_or_default();
    Some((role, args.split('\u{1f}').map(str::to_owned).collect()))
}

/// Prints an observation for the parent and flushes.
pub fn say(line: &str) {
    let out = std::io::stdout();
    let mut out = out.lock();
    writeln!(out, "@{line}").unwrap();
    out.flush().unwrap();
}

/// Waits on `conn` until `pred` holds for the collected notifications, or panics after `secs`.
pub fn collect_until(
    conn: &mut hark::Connection,
    secs: u64,
    mut done: impl FnMut(&[hark::Notification]) -> bool,
) -> Vec<hark::Notification> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut got = Vec::new();
    while !done(&got) {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "timed out; got {} notifications: {:?}",
            got.len(),
            got.iter().rev().take(3).collect::<Vec<_>>()
        );
        conn.wait(Some(left)).unwrap();
        while let Some(n) = conn.notifies().unwrap() {
            got.push(n);
        }
    }
    got
}

/// Drains what is deliverable now (no waiting).
pub fn drain(conn: &mut hark::Connection) -> Vec<(String, String)> {
    conn.consume_input().unwrap();
    let mut v = Vec::new();
    while let Some(n) = conn.notifies().unwrap() {
        v.push((n.channel, n.payload));
    }
    v
}

pub fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

/// A second Unix user for tests of what other users can do: `harktest2`, created if missing.
/// Only root can create users and switch to them; otherwise the test is skipped, saying why.
pub fn other_user() -> Option<(u32, u32)> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to run a process as another user");
        return None;
    }
    Some(test_user("harktest2"))
}

/// The uid and gid of the test user `name`, created (system user, no home, no shell) if missing.
/// Other tests may create it at the same time, so "already exists" is fine.
pub fn test_user(name: &str) -> (u32, u32) {
    let lookup = || {
        let out = Command::new("id").args(["-u", name]).output().ok()?;
        let uid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
        let out = Command::new("id").args(["-g", name]).output().ok()?;
        let gid: u32 = String::from_utf8_lossy(&out.stdout).trim().parse().ok()?;
        Some((uid, gid))
    };
    if let Some(ids) = lookup() {
        return ids;
    }
    let _ = Command::new("useradd")
        .args(["--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name])
        .stderr(Stdio::null())
        .status();
    lookup().unwrap_or_else(|| panic!("could not create the test user {name}"))
}
