//! What one process, or another user, can do to the others: a forked child does not keep a dead
//! parent's listener alive, a process stopped while holding the tail lock delays no open, close,
//! usage or stat, and only users with access to the queue directory can wake its listeners.

mod common;

use common::{agent_role, say, spawn, TempDir};
use hark::{Connection, Options};
use std::os::fd::RawFd;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[test]
fn agent() {
    let Some((role, a)) = agent_role() else { return };
    match role.as_str() {
        // listen-and-fork DIR: LISTENs, forks a child that never uses hark and sleeps, prints
        // "CHILD <pid>", then waits to be killed.
        "listen-and-fork" => {
            let mut c = Connection::open(&a[0]).unwrap();
            c.listen("c").unwrap();
            // SAFETY: the child only sleeps and exits, never returning into the test harness.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                unsafe {
                    libc::sleep(60);
                    libc::_exit(0);
                }
            }
            say(&format!("CHILD {pid}"));
            std::thread::sleep(Duration::from_secs(60));
        }
        // listen-and-sleep DIR listening|unlistened: LISTENs (then UNLISTENs all, if asked),
        // prints READY and waits to be killed.
        "listen-and-sleep" => {
            let mut c = Connection::open(&a[0]).unwrap();
            c.listen("c").unwrap();
            if a[1] == "unlistened" {
                c.unlisten_all().unwrap();
            }
            say("READY");
            std::thread::sleep(Duration::from_secs(60));
        }
        // park-in-tail DIR: a full tail advance that parks holding the tail lock (the test hook
        // HARK_FAULT_PARK_IN_TAIL, set by the test).
        "park-in-tail" => {
            let c = Connection::open(&a[0]).unwrap();
            let _ = c.queue_usage();
            unreachable!("the tail advance should have parked");
        }
        // send-to-sockets ADDR…: tries one datagram to each Unix socket address (a path, or an
        // abstract name written as @name) and prints how many were accepted.
        "send-to-sockets" => {
            let sent = a.iter().filter(|addr| !addr.is_empty() && send_datagram(addr)).count();
            say(&format!("ACCEPTED {sent}"));
        }
        other => panic!("unknown role {other}"),
    }
}

fn readable(fd: RawFd, ms: i32) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, ms) == 1 }
}

fn small() -> Options {
    Options { max_queue_size: Some(512 * 1024), segment_size: Some(64 * 1024), ..Options::default() }
}

#[test]
fn a_forked_child_does_not_keep_its_dead_parents_listener_alive() {
    let t = TempDir::new("forkslot");
    let q = t.queue();
    drop(Connection::with_options(&q, &small()).unwrap());
    let mut parent = spawn("listen-and-fork", &[q.display().to_string()]);
    let child: i32 = parent.line().unwrap().strip_prefix("CHILD ").unwrap().parse().unwrap();
    parent.kill();
    // The child that never used hark is still running...
    assert_eq!(unsafe { libc::kill(child, 0) }, 0, "the forked child should still be alive");
    // ...yet the dead parent's slot is reaped, so the queue drains instead of filling up.
    // (The child lets go as the first thing it runs, which on a busy machine can come a moment
    // after the parent's death: allow it that moment.)
    let mut n = Connection::open(&q).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let st = n.queue().stats().unwrap();
        if st.listeners.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "the dead parent's slot is still held: {:?}", st.listeners);
        std::thread::sleep(Duration::from_millis(10));
    }
    for i in 0..4000 {
        n.notify("c", &format!("{i:0>200}")).unwrap_or_else(|e| panic!("commit {i} failed: {e}"));
    }
    unsafe { libc::kill(child, libc::SIGKILL) };
    unsafe { libc::waitpid(child, std::ptr::null_mut(), 0) };
}

/// Runs `f` on a thread and fails the test if it has not returned within `secs`.
fn within<T: Send + 'static>(secs: u64, what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs)).unwrap_or_else(|_| panic!("{what} waited for the stopped process"))
}

#[test]
fn a_process_stopped_holding_the_tail_lock_delays_no_open_close_usage_or_stat() {
    let t = TempDir::new("tailpark");
    let q = t.queue();
    let mut listener = Connection::open(&q).unwrap();
    listener.listen("c").unwrap();
    let mut closing = Connection::open(&q).unwrap();
    closing.listen("d").unwrap();
    let marker = t.path().join("parked");
    let mut parked = Command::new(std::env::current_exe().unwrap())
        .args(["agent", "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env("HARK_AGENT", "park-in-tail")
        .env("HARK_AGENT_ARGS", q.display().to_string())
        .env("HARK_FAULT_PARK_IN_TAIL", &marker)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the agent never reached the tail advance");
        std::thread::sleep(Duration::from_millis(5));
    }
    // Stopped as well as parked: a debugger or SIGSTOP holds it the same way.
    unsafe { libc::kill(parked.id() as i32, libc::SIGSTOP) };

    let q2 = q.clone();
    let (usage, listeners) = within(5, "open, usage and stat", move || {
        let c = Connection::open(&q2).unwrap();
        let usage = c.queue_usage().unwrap();
        let st = c.queue().stats().unwrap();
        (usage, st.listeners.len())
    });
    assert_eq!(usage, 0.0);
    assert_eq!(listeners, 2);
    // Notifying and receiving go on (the commit takes only the writer lock).
    let q3 = q.clone();
    within(5, "a commit", move || Connection::open(&q3).unwrap().notify("c", "meanwhile").unwrap());
    assert_eq!(common::drain(&mut listener), common::pairs(&[("c", "meanwhile")]));
    // UNLISTEN of the last channel and close give the slot back without the tail lock.
    let (tx, rx) = mpsc::channel();
    let mut listener = within(5, "UNLISTEN and close", move || {
        listener.unlisten("c").unwrap();
        drop(closing);
        listener
    });
    // A LISTEN's registration is part of its commit, and like a commit it may wait for a process
    // stopped inside a queue lock (here the tail lock); it completes once that process is gone.
    let q5 = q.clone();
    std::thread::spawn(move || {
        let mut late = Connection::open(&q5).unwrap();
        late.listen("e").unwrap();
        let _ = tx.send(late);
    });
    parked.kill().unwrap();
    parked.wait().unwrap();
    let late = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(late.listening_channels(), ["e"]);
    listener.listen("c").unwrap();
    assert_eq!(listener.queue().stats().unwrap().listeners.len(), 2);
}

#[test]
fn only_the_queues_users_can_wake_its_listeners() {
    let Some(other) = common::other_user() else { return };
    let t = TempDir::new("wakeperm");
    let q = t.queue();
    let mut l = Connection::open(&q).unwrap();
    l.listen("c").unwrap();
    // Every Unix socket of the machine another user can see, plus the socket files of the queue
    // (whose names it could not list, but might guess).
    let mut addrs: Vec<String> =
        unix_socket_addresses().into_iter().filter(|a| a.starts_with("@hark.") || a.contains("/w.")).collect();
    let files: Vec<String> = std::fs::read_dir(&q)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("w."))
        .map(|p| p.display().to_string())
        .collect();
    assert_eq!(files.len(), 1, "the listener's socket file");
    addrs.extend(files.iter().cloned());
    while readable(l.as_raw_fd(), 0) {
        l.consume_input().unwrap();
    }
    let mut intruder = Command::new(std::env::current_exe().unwrap());
    intruder
        .args(["agent", "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env("HARK_AGENT", "send-to-sockets")
        .env("HARK_AGENT_ARGS", addrs.join("\u{1f}"))
        .uid(other.0)
        .gid(other.1)
        .stdout(Stdio::piped());
    let out = intruder.output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "intruder failed: {text}");
    assert!(!readable(l.as_raw_fd(), 200), "another user woke the listener");
    // The queue's own user still can (the same addresses, from this process).
    assert!(send_datagram(&files[0]), "the owner could not send either");
    assert!(readable(l.as_raw_fd(), 1000));
}

#[test]
fn socket_files_of_dead_sessions_are_removed() {
    let t = TempDir::new("sockfiles");
    let q = t.queue();
    let sockets = |q: &Path| -> usize {
        std::fs::read_dir(q)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("w."))
            .count()
    };
    let mut a = Connection::open(&q).unwrap();
    assert_eq!(sockets(&q), 0, "a session that never listened has no file");
    a.listen("c").unwrap();
    assert_eq!(sockets(&q), 1);
    a.unlisten_all().unwrap();
    assert_eq!(sockets(&q), 1, "kept for the next LISTEN, which must reach the same descriptor");
    drop(a);
    assert_eq!(sockets(&q), 0, "close removes it");
    // A killed listener's file goes when its slot is reaped (stat reaps), and the file of a
    // session killed after its last UNLISTEN when stat sweeps the directory.
    for unlisten in ["listening", "unlistened"] {
        let mut agent = spawn("listen-and-sleep", &[q.display().to_string(), unlisten.to_owned()]);
        agent.expect("READY");
        assert_eq!(sockets(&q), 1);
        agent.kill();
        let c = Connection::open(&q).unwrap();
        let st = c.queue().stats().unwrap();
        assert_eq!(sockets(&q), 0, "the socket file of a session killed while {unlisten} is still there: {st:?}");
        assert!(st.listeners.is_empty());
    }
}

/// Addresses of the machine's Unix sockets as /proc/net/unix lists them (abstract ones as @name).
fn unix_socket_addresses() -> Vec<String> {
    let text = std::fs::read_to_string("/proc/net/unix").unwrap_or_default();
    text.lines().skip(1).filter_map(|l| l.split_whitespace().nth(7).map(str::to_owned)).collect()
}

fn send_datagram(addr: &str) -> bool {
    // SAFETY: plain socket calls on a local buffer and address.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        let mut sa: libc::sockaddr_un = std::mem::zeroed();
        sa.sun_family = libc::AF_UNIX as libc::sa_family_t;
        let bytes = addr.as_bytes();
        let (name, abstract_) = match bytes.strip_prefix(b"@") {
            Some(rest) => (rest, true),
            None => (bytes, false),
        };
        if name.len() + 2 > sa.sun_path.len() {
            libc::close(fd);
            return false;
        }
        let off = usize::from(abstract_);
        for (i, b) in name.iter().enumerate() {
            sa.sun_path[off + i] = *b as libc::c_char;
        }
        let len = std::mem::size_of::<libc::sa_family_t>() + off + name.len() + usize::from(!abstract_);
        let r = libc::sendto(
            fd,
            b"x".as_ptr() as *const libc::c_void,
            1,
            libc::MSG_DONTWAIT,
            &sa as *const _ as *const libc::sockaddr,
            len as libc::socklen_t,
        );
        libc::close(fd);
        r == 1
    }
}
