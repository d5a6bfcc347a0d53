//! Running out of things: disk space while a commit allocates a segment, file descriptors while
//! opening a session or a segment, and listener slots. Each failure must be a clear error that
//! leaves the queue usable, with nothing of the failed transaction visible (I4, I9).
//!
//! Resource limits are set in a child process (this test binary re-executed as an agent), so the
//! test runner itself is never limited.

use hark::{Connection, ErrorKind, Options};
use std::path::{Path, PathBuf};
use std::process::Command;

fn small() -> Options {
    Options::new().max_queue_size(512 << 10).segment_size(64 << 10)
}

use hark_hardening::TempDir;

/// Runs `role` in a child process on `dir`; returns its `@` lines, asserting that it succeeded.
fn run_agent(role: &str, dir: &Path) -> Vec<String> {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["agent", "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env("HARK_LIMITS_AGENT", role)
        .env("HARK_LIMITS_DIR", dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "agent {role} failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout.lines().filter_map(|l| l.strip_prefix('@')).map(str::to_owned).collect()
}

fn say(s: &str) {
    println!("@{s}");
}

fn set_limit(resource: libc::__rlimit_resource_t, soft: u64) {
    // SAFETY: plain system calls on a local struct.
    unsafe {
        let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        assert_eq!(libc::getrlimit(resource, &mut r), 0);
        r.rlim_cur = soft.min(r.rlim_max);
        if soft > r.rlim_max {
            r.rlim_max = soft; // root may raise the hard limit
            r.rlim_cur = soft;
        }
        assert_eq!(libc::setrlimit(resource, &r), 0, "setrlimit: {}", std::io::Error::last_os_error());
    }
}

fn restore_limit(resource: libc::__rlimit_resource_t) {
    unsafe {
        let mut r = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
        assert_eq!(libc::getrlimit(resource, &mut r), 0);
        r.rlim_cur = r.rlim_max;
        assert_eq!(libc::setrlimit(resource, &r), 0);
    }
}

/// The lowest descriptor number not in use: with RLIMIT_NOFILE set to it, no new one can open.
fn lowest_free_fd() -> u64 {
    // SAFETY: F_DUPFD returns the lowest free descriptor, which is closed again at once.
    unsafe {
        let fd = libc::fcntl(0, libc::F_DUPFD, 0);
        assert!(fd >= 0);
        libc::close(fd);
        fd as u64
    }
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Notifies 1000-byte payloads until the head is within `margin` bytes of the end of its segment.
fn fill_segment(c: &mut Connection, tag: &str, margin: u64) -> usize {
    let seg = c.queue().segment_size();
    let mut n = 0;
    loop {
        let head = c.queue().stats().unwrap().head;
        if seg - head % seg < margin {
            return n;
        }
        c.notify("c", &format!("{tag}{n}:{}", "f".repeat(1000))).unwrap();
        n += 1;
    }
}

#[test]
fn agent() {
    let Ok(role) = std::env::var("HARK_LIMITS_AGENT") else { return };
    let dir = PathBuf::from(std::env::var("HARK_LIMITS_DIR").unwrap());
    match role.as_str() {
        "disk_full" => {
            let mut c = Connection::open(&dir).unwrap();
            fill_segment(&mut c, "before", 3000);
            // A file-size limit below the segment size: allocating the next segment fails, as on
            // a full file system, without the default SIGXFSZ killing the process.
            unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
            set_limit(libc::RLIMIT_FSIZE, 16 << 10);
            c.execute("BEGIN").unwrap();
            for i in 0..10 {
                c.notify("c", &format!("doomed{i}:{}", "d".repeat(1000))).unwrap();
            }
            let e = c.execute("COMMIT").unwrap_err();
            say(&format!("commit {:?} {} {}", e.kind(), e.sqlstate(), e.message()));
            let next = dir.join("000000000000001");
            say(&format!("next segment exists {}", next.exists()));
            // The queue goes on: a commit that fits in the current segment succeeds at once.
            c.notify("c", "fits").unwrap();
            let e = c.notify("c", &format!("doomed-single:{}", "d".repeat(3000))).unwrap_err();
            say(&format!("single {:?}", e.kind()));
            // Space is back: the same transaction now commits.
            restore_limit(libc::RLIMIT_FSIZE);
            c.execute("BEGIN").unwrap();
            for i in 0..10 {
                c.notify("c", &format!("after{i}:{}", "a".repeat(1000))).unwrap();
            }
            c.execute("COMMIT").unwrap();
            say("done");
        }
        "disk_full_spanning" => {
            let mut c = Connection::open(&dir).unwrap();
            // No listener yet: crossing into segment 1 passes segment 0, kept as the spare.
            fill_segment(&mut c, "a", 3000);
            c.notify("c", &format!("cross:{}", "f".repeat(3000))).unwrap();
            fill_segment(&mut c, "b", 3000);
            let mut l = Connection::open(&dir).unwrap();
            l.listen("c").unwrap();
            say(&format!("spare {}", dir.join("spare").is_file()));
            let head = c.queue().stats().unwrap().head;
            // Segment 2 comes from the spare (allocated already); allocating segment 3 fails.
            unsafe { libc::signal(libc::SIGXFSZ, libc::SIG_IGN) };
            set_limit(libc::RLIMIT_FSIZE, 16 << 10);
            c.execute("BEGIN").unwrap();
            for i in 0..100 {
                c.notify("c", &format!("doomed{i}:{}", "d".repeat(1000))).unwrap();
            }
            let e = c.execute("COMMIT").unwrap_err();
            say(&format!("commit {:?} {}", e.kind(), e.message()));
            restore_limit(libc::RLIMIT_FSIZE);
            say(&format!("head moved {}", c.queue().stats().unwrap().head != head));
            let files = |dir: &Path| {
                use std::os::unix::fs::MetadataExt;
                let mut v: Vec<String> = std::fs::read_dir(dir)
                    .unwrap()
                    .map(|e| e.unwrap())
                    .filter(|e| e.file_name().len() == 15 || e.file_name() == "spare")
                    .map(|e| {
                        format!(
                            "{}:{}:{}",
                            e.file_name().to_str().unwrap(),
                            e.metadata().unwrap().len(),
                            e.metadata().unwrap().ino()
                        )
                    })
                    .collect();
                v.sort();
                v
            };
            let left = files(&dir);
            say(&format!("files {}", left.iter().map(|f| f.rsplit_once(':').unwrap().0).collect::<Vec<_>>().join(" ")));
            c.execute("BEGIN").unwrap();
            for i in 0..100 {
                c.notify("c", &format!("after{i}:{}", "a".repeat(1000))).unwrap();
            }
            c.execute("COMMIT").unwrap();
            let seg2 = |v: &[String]| v.iter().find(|f| f.starts_with("000000000000002:")).cloned();
            say(&format!("segment 2 reused {}", seg2(&left).is_some() && seg2(&left) == seg2(&files(&dir))));
            l.consume_input().unwrap();
            let mut got = Vec::new();
            while let Some(n) = l.notifies().unwrap() {
                got.push(n.payload.split(':').next().unwrap().trim_end_matches(char::is_numeric).to_owned());
            }
            got.dedup();
            say(&format!("received {}", got.join(" ")));
        }
        "emfile_open" => {
            let before = open_fds();
            set_limit(libc::RLIMIT_NOFILE, lowest_free_fd());
            let e = Connection::open(&dir).unwrap_err();
            say(&format!("open {:?} {}", e.kind(), e.message()));
            let e = Connection::with_options(&dir, &Options::new()).unwrap_err();
            say(&format!("open again {:?}", e.kind()));
            restore_limit(libc::RLIMIT_NOFILE);
            say(&format!("fds leaked {}", open_fds() as i64 - before as i64));
            let mut c = Connection::open(&dir).unwrap();
            c.notify("c", "opened after EMFILE").unwrap();
            say("done");
        }
        "emfile_segment" => {
            let mut c = Connection::open(&dir).unwrap();
            fill_segment(&mut c, "before", 3000);
            let before = open_fds();
            set_limit(libc::RLIMIT_NOFILE, lowest_free_fd());
            c.execute("BEGIN").unwrap();
            for i in 0..10 {
                c.notify("c", &format!("doomed{i}:{}", "d".repeat(1000))).unwrap();
            }
            let e = c.execute("COMMIT").unwrap_err();
            say(&format!("commit {:?} {}", e.kind(), e.message()));
            c.notify("c", "fits").unwrap();
            restore_limit(libc::RLIMIT_NOFILE);
            say(&format!("fds leaked {}", open_fds() as i64 - before as i64));
            c.execute("BEGIN").unwrap();
            for i in 0..10 {
                c.notify("c", &format!("after{i}:{}", "a".repeat(1000))).unwrap();
            }
            c.execute("COMMIT").unwrap();
            say("done");
        }
        "hold_all_slots" => {
            set_limit(libc::RLIMIT_NOFILE, 16384);
            let q = hark::Queue::open(&dir, &Options::default()).unwrap();
            let mut held = Vec::new();
            for i in 0..4096 {
                let mut c = Connection::on(q.clone()).unwrap();
                c.listen("c").unwrap_or_else(|e| panic!("listener {i}: {e}"));
                held.push(c);
            }
            say("holding");
            // Die without closing: the slots must come back through reaping.
            unsafe { libc::_exit(0) };
        }
        r => panic!("unknown agent role {r}"),
    }
}

fn drain_payloads(l: &mut Connection) -> Vec<String> {
    l.consume_input().unwrap();
    let mut v = Vec::new();
    while let Some(n) = l.notifies().unwrap() {
        v.push(n.payload.split(':').next().unwrap().to_owned());
    }
    v
}

#[test]
fn a_commit_that_cannot_allocate_a_segment_fails_with_disk_full_and_the_queue_goes_on() {
    let t = TempDir::new("diskfull");
    let q = t.queue();
    let mut l = Connection::with_options(&q, &small()).unwrap();
    l.listen("c").unwrap();
    let said = run_agent("disk_full", &q);
    assert_eq!(
        said[0],
        "commit DiskFull 53100 could not allocate segment file \"000000000000001\": File too large (os error 27)"
    );
    assert_eq!(said[1], "next segment exists false", "a failed allocation leaves no segment file behind");
    assert_eq!(said[2], "single DiskFull");
    assert_eq!(said[3], "done");
    let got = drain_payloads(&mut l);
    assert!(!got.iter().any(|p| p.starts_with("doomed")), "a failed commit became visible: {got:?}");
    let before = got.iter().filter(|p| p.starts_with("before")).count();
    let want: Vec<String> = (0..before)
        .map(|i| format!("before{i}"))
        .chain(["fits".to_owned()])
        .chain((0..10).map(|i| format!("after{i}")))
        .collect();
    assert!(before > 50);
    assert_eq!(got, want);
    assert_eq!(
        l.queue().stats().unwrap().segment_files,
        ["000000000000001"],
        "the tail moved on and the first segment went"
    );
}

/// A transaction that fails on a full file system after taking or allocating some of the segments
/// it spans leaves those files past the head (the README's disk-full row says so): nothing of it
/// is visible, and the next commits that reach them reuse them.
#[test]
fn a_failed_commit_leaves_the_segments_it_allocated_for_the_next_to_reuse() {
    let t = TempDir::new("diskfull-spanning");
    let q = t.queue();
    drop(Connection::with_options(&q, &small()).unwrap());
    let said = run_agent("disk_full_spanning", &q);
    assert_eq!(
        said,
        [
            "spare true",
            "commit DiskFull could not allocate segment file \"000000000000003\": File too large (os error 27)",
            "head moved false",
            "files 000000000000001:65536 000000000000002:65536",
            "segment 2 reused true",
            "received after",
        ]
    );
}

#[test]
fn running_out_of_descriptors_when_opening_a_session_is_a_clear_error() {
    let t = TempDir::new("emfile-open");
    let q = t.queue();
    let mut l = Connection::with_options(&q, &small()).unwrap();
    l.listen("c").unwrap();
    let said = run_agent("emfile_open", &q);
    assert!(said[0].starts_with("open Io could not "), "{}", said[0]);
    assert!(said[0].ends_with("Too many open files (os error 24)"), "{}", said[0]);
    assert_eq!(said[1], "open again Io");
    assert_eq!(said[2], "fds leaked 0");
    assert_eq!(said[3], "done");
    assert_eq!(drain_payloads(&mut l), ["opened after EMFILE"]);
}

#[test]
fn running_out_of_descriptors_when_a_commit_needs_a_segment_fails_it_whole() {
    let t = TempDir::new("emfile-seg");
    let q = t.queue();
    let mut l = Connection::with_options(&q, &small()).unwrap();
    l.listen("c").unwrap();
    let said = run_agent("emfile_segment", &q);
    assert_eq!(said[0], "commit Io could not open \"000000000000001\": Too many open files (os error 24)");
    assert_eq!(said[1], "fds leaked 0");
    assert_eq!(said[2], "done");
    let got = drain_payloads(&mut l);
    assert!(!got.iter().any(|p| p.starts_with("doomed")), "a failed commit became visible: {got:?}");
    assert_eq!(&got[got.len() - 11..got.len() - 10], ["fits"]);
    assert_eq!(got[got.len() - 10..], (0..10).map(|i| format!("after{i}")).collect::<Vec<_>>());
}

#[test]
fn the_4097th_listener_is_refused_and_slots_come_back() {
    let t = TempDir::new("slots");
    let q = t.queue();
    Connection::open(&q).unwrap();
    // A process takes every slot and dies without closing.
    assert_eq!(run_agent("hold_all_slots", &q), ["holding"]);
    let queue = hark::Queue::open(&q, &Options::default()).unwrap();
    assert_eq!(queue.stats().unwrap().listeners.len(), 0, "the dead process's 4096 slots were not reaped");

    set_limit(libc::RLIMIT_NOFILE, 16384);
    let mut all = Vec::new();
    for _ in 0..4096 {
        let mut c = Connection::on(queue.clone()).unwrap();
        c.listen("c").unwrap();
        all.push(c);
    }
    let mut extra = Connection::on(queue.clone()).unwrap();
    extra.execute("BEGIN; LISTEN c; NOTIFY c, 'with the refused LISTEN'").unwrap();
    let e = extra.execute("COMMIT").unwrap_err();
    assert_eq!((e.kind(), e.sqlstate()), (ErrorKind::TooManyListeners, "53300"));
    assert_eq!(e.message(), "too many listeners on the queue (at most 4096 sessions may listen or subscribe at once)");
    assert!(extra.listening_channels().is_empty());
    let e = extra.listen("c").unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TooManyListeners);
    // The refused transaction's NOTIFY was not committed; one from a full house still is.
    all[0].notify("c", "to everyone").unwrap();
    for c in all.iter_mut().step_by(512) {
        assert_eq!(drain_payloads(c), ["to everyone"]);
    }
    // One session closes: its slot is free for the next listener.
    all.pop().unwrap().close();
    extra.listen("c").unwrap();
    assert_eq!(queue.stats().unwrap().listeners.len(), 4096);
    drop(all);
    drop(extra);
    assert_eq!(queue.stats().unwrap().listeners.len(), 0);
    restore_limit(libc::RLIMIT_NOFILE);
}
