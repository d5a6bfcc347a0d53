//! Damage done to the files of a live queue by another of its members (the same user, or any
//! member of a `group_shared` queue): a listener process and a notifier process are attached when
//! a third process truncates the control file, truncates the segment they use, or writes a huge
//! head into the control file. Each member must get an error (XX001) from its next operation:
//! never die by SIGBUS, never spin or hang.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::FileExt;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hark_hardening::TempDir;

/// A member process (`src/bin/member.rs`) and the lines it printed so far.
struct Member {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    name: &'static str,
}

impl Member {
    fn spawn(mode: &'static str, q: &Path, channel: &str) -> Member {
        let m = Member::start(mode, q, channel);
        m.wait_for("READY", || m.count("READY") > 0);
        m
    }

    /// Starts it without waiting for it to be ready.
    fn start(mode: &'static str, q: &Path, channel: &str) -> Member {
        let mut child = Command::new(env!("CARGO_BIN_EXE_member"))
            .args([mode, q.to_str().unwrap(), channel])
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn a member");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let l = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { break };
                l.lock().unwrap().push(line);
            }
        });
        Member { child, lines, name: mode }
    }

    fn count(&self, prefix: &str) -> usize {
        self.lines.lock().unwrap().iter().filter(|l| l.starts_with(prefix)).count()
    }

    /// Waits (20 s at most) until `done()`.
    fn wait_for(&self, what: &str, done: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(Instant::now() < deadline, "{}: no {what} in {:?}", self.name, self.lines.lock().unwrap());
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    fn signal(&self, sig: libc::c_int) {
        // SAFETY: kill has no memory preconditions; the child is ours and not yet reaped.
        assert_eq!(unsafe { libc::kill(self.child.id() as libc::pid_t, sig) }, 0);
    }

    /// Its exit status once it ends, or `None` (after killing it) when it is still running at the
    /// deadline.
    fn end(&mut self, deadline: Instant) -> Option<ExitStatus> {
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                // Let the reader thread take the last lines.
                std::thread::sleep(Duration::from_millis(50));
                return Some(st);
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Asserts that it ended within `limit` by an error whose message contains `message`.
    fn ends_with_error(&mut self, since: Instant, limit: Duration, message: &str) {
        let st = self.end(since + limit);
        let lines = self.lines.lock().unwrap().clone();
        let tail = &lines[lines.len().saturating_sub(3)..];
        let Some(st) = st else {
            panic!("{}: still running {limit:?} after the damage (spinning or hung); last lines {tail:?}", self.name)
        };
        assert_eq!(
            st.signal(),
            None,
            "{}: killed by signal {:?} (7 is SIGBUS); last lines {tail:?}",
            self.name,
            st.signal()
        );
        assert_eq!(st.code(), Some(3), "{}: {st}; last lines {tail:?}", self.name);
        let err = lines.iter().find(|l| l.starts_with("ERROR ")).expect("an ERROR line");
        assert!(err.starts_with("ERROR XX001 "), "{}: {err}", self.name);
        assert!(err.contains(message), "{}: {err}", self.name);
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A queue with a listener and a notifier process attached, the listener having received at least
/// three notifications (so it has mapped the segment).
fn live_queue(t: &TempDir) -> (PathBuf, Member, Member) {
    let q = t.queue();
    drop(hark::Connection::open(&q).unwrap());
    let listener = Member::spawn("listen", &q, "c");
    let notifier = Member::spawn("notify", &q, "c");
    listener.wait_for("three notifications", || listener.count("GOT ") >= 3);
    (q, listener, notifier)
}

const DAMAGED: &str = "queue file was truncated or damaged while mapped";

#[test]
fn truncating_the_control_file_gives_both_members_an_error_not_a_sigbus() {
    let t = TempDir::new("control");
    let (q, mut listener, mut notifier) = live_queue(&t);
    std::fs::OpenOptions::new().write(true).open(q.join("control")).unwrap().set_len(0).unwrap();
    let at = Instant::now();
    notifier.ends_with_error(at, Duration::from_secs(10), DAMAGED);
    listener.ends_with_error(at, Duration::from_secs(10), DAMAGED);
}

#[test]
fn truncating_the_segment_in_use_gives_both_members_an_error_not_a_sigbus() {
    let t = TempDir::new("segment");
    let (q, mut listener, mut notifier) = live_queue(&t);
    // Stop the listener so that it has notifications to read from the segment once it goes on.
    listener.signal(libc::SIGSTOP);
    let sent = notifier.count("SENT ");
    notifier.wait_for("more commits", || notifier.count("SENT ") >= sent + 5);
    std::fs::OpenOptions::new().write(true).open(q.join("000000000000000")).unwrap().set_len(0).unwrap();
    let at = Instant::now();
    listener.signal(libc::SIGCONT);
    notifier.ends_with_error(at, Duration::from_secs(10), DAMAGED);
    listener.ends_with_error(at, Duration::from_secs(10), DAMAGED);
}

/// The head far in the future: a tail advance would examine (and unlink) segments up to it, one
/// by one, for as long as a listener on a quiet channel lets it go on.
#[test]
fn a_huge_head_written_into_a_live_queue_is_an_error_within_a_bounded_time() {
    let t = TempDir::new("head");
    let (q, mut listener, mut notifier) = live_queue(&t);
    let mut idle = Member::spawn("listen", &q, "quiet");
    let control = std::fs::OpenOptions::new().write(true).open(q.join("control")).unwrap();
    let huge = 1u64 << 60;
    let at = Instant::now();
    // Written again until all have ended: a commit in flight may overwrite it once with its own.
    let deadline = at + Duration::from_secs(10);
    while Instant::now() < deadline
        && [&mut notifier, &mut listener, &mut idle].iter_mut().any(|m| m.child.try_wait().unwrap().is_none())
    {
        control.write_all_at(&huge.to_ne_bytes(), hark_hardening::HEAD_OFFSET).unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
    notifier.ends_with_error(at, Duration::from_secs(10), &format!("is corrupted (head {huge}"));
    listener.ends_with_error(at, Duration::from_secs(10), "is corrupted");
    idle.ends_with_error(at, Duration::from_secs(10), "is corrupted");
}

/// hark's SIGBUS handler takes only faults on its own mappings: another fault still reaches the
/// handler the program installed before hark's, or kills the process as it would without hark.
#[test]
fn a_sigbus_outside_the_queue_goes_to_the_previous_handler_or_kills() {
    let t = TempDir::new("foreign");
    let q = t.queue();
    drop(hark::Connection::open(&q).unwrap());
    let run = |own: bool| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_member"));
        cmd.args(["sigbus", q.to_str().unwrap()]);
        if own {
            cmd.arg("own");
        }
        cmd.output().unwrap()
    };
    let out = run(false);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.signal(), Some(libc::SIGBUS), "{}: {stdout}", out.status);
    assert_eq!(stdout, "TOUCHING\n");
    let out = run(true);
    assert!(out.status.success(), "{}", out.status);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "TOUCHING\nCHAINED 0\n");
}

/// A notifier asleep in the kernel on the writer lock when the control file is truncated: the
/// holder's unlock (or its death) then goes to pages that are no longer the file's and wakes
/// nobody. The sleeper must find out by itself, and fail rather than sleep for ever.
#[test]
fn a_notifier_asleep_on_the_writer_lock_when_control_is_truncated_gets_an_error() {
    let t = TempDir::new("asleep");
    let q = t.queue();
    drop(hark::Connection::open(&q).unwrap());
    let parked = t.0.join("parked");
    // A writer parked inside its append, holding the writer lock (the crash tests' fault point).
    let mut holder = Command::new(env!("CARGO_BIN_EXE_member"))
        .args(["notify", q.to_str().unwrap(), "c"])
        .env("HARK_FAULT_PARK_IN_APPEND", &parked)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while !parked.exists() {
        assert!(Instant::now() < deadline, "the writer never parked");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut waiter = Member::start("notify", &q, "c");
    std::thread::sleep(Duration::from_millis(500)); // past its polls: asleep on the lock
    assert_eq!(waiter.count("SENT "), 0, "the waiter committed past a held writer lock");
    std::fs::OpenOptions::new().write(true).open(q.join("control")).unwrap().set_len(0).unwrap();
    holder.kill().unwrap();
    holder.wait().unwrap();
    waiter.ends_with_error(Instant::now(), Duration::from_secs(10), DAMAGED);
}

/// A commit that spans more segments than a session keeps mapped drops the mapping of its first
/// segment before it ends: the damage found there must still fail it, before anything is published.
#[test]
fn a_commit_spanning_segments_past_a_truncated_one_fails_unpublished() {
    let t = TempDir::new("spanning");
    let q = t.queue();
    let opts = hark::Options::new().max_queue_size(512 << 10).segment_size(64 << 10);
    let mut n = hark::Connection::with_options(&q, &opts).unwrap();
    n.set_notice_handler(Some(Box::new(|_| {})));
    n.notify("c", "first").unwrap(); // maps segment 0
    let head = n.queue().stats().unwrap().head;
    std::fs::OpenOptions::new().write(true).open(q.join("000000000000000")).unwrap().set_len(0).unwrap();
    n.begin().unwrap();
    for i in 0..200 {
        n.notify("c", &format!("{i}:{}", "x".repeat(1000))).unwrap(); // four segments' worth
    }
    let e = n.commit().unwrap_err();
    assert_eq!((e.sqlstate(), e.message().contains(DAMAGED)), ("XX001", true), "{e}");
    assert_eq!(hark::Queue::open(&q, &hark::Options::new()).unwrap().stats().unwrap().head, head, "published");
    // And the queue keeps failing in this process.
    let e = n.notify("c", "again").unwrap_err();
    assert!(e.message().contains(DAMAGED), "{e}");
}
