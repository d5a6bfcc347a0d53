//! Misuse of the Rust API: calls after close, one session shared by threads through a Mutex,
//! strings hark cannot carry, hostile SQL, and fork(). Each gives a clear error or works.

use hark::{Connection, ErrorKind, Options};
use std::sync::{Arc, Mutex};
use std::time::Duration;

struct TempDir(std::path::PathBuf);
impl TempDir {
    fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("hark-test-misuse-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        TempDir(p)
    }
}
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn every_call_after_close_is_a_closed_error_and_close_is_idempotent() {
    let t = TempDir::new("closed");
    let mut c = Connection::open(&t.0).unwrap();
    c.listen("c").unwrap();
    c.begin().unwrap();
    c.notify("c", "never").unwrap();
    let fd = c.as_raw_fd();
    c.close();
    c.close();
    assert!(c.is_closed());
    let closed = |r: hark::Result<()>, what: &str| {
        let e = r.expect_err(what);
        assert_eq!(
            (e.kind(), e.sqlstate(), e.message()),
            (ErrorKind::Closed, "08003", "connection is closed"),
            "{what}"
        );
    };
    closed(c.execute("SELECT 1").map(drop), "execute");
    closed(c.listen("c"), "listen");
    closed(c.unlisten("c"), "unlisten");
    closed(c.unlisten_all(), "unlisten_all");
    closed(c.notify("c", "x"), "notify");
    closed(c.begin(), "begin");
    closed(c.commit(), "commit");
    closed(c.rollback(), "rollback");
    closed(c.savepoint("s"), "savepoint");
    closed(c.release("s"), "release");
    closed(c.rollback_to("s"), "rollback_to");
    closed(c.consume_input(), "consume_input");
    closed(c.notifies().map(drop), "notifies");
    closed(c.wait(Some(Duration::from_millis(1))).map(drop), "wait");
    closed(c.queue_usage().map(drop), "queue_usage");
    // Harmless accessors still answer; the closed session's slot and transaction are gone.
    assert!(fd >= 0);
    let st = c.queue().stats().unwrap();
    assert!(st.listeners.is_empty(), "a closed session still holds a listener slot");
    let mut l = Connection::open(&t.0).unwrap();
    l.listen("c").unwrap();
    l.notify("c", "alive").unwrap();
    assert_eq!(l.notifies().unwrap().unwrap().payload, "alive");
    assert!(l.notifies().unwrap().is_none(), "the closed session's open transaction leaked");
}

#[test]
fn a_session_shared_by_threads_through_a_mutex_delivers_each_notification_once() {
    fn is_send<T: Send>() {}
    is_send::<Connection>();
    let t = TempDir::new("threads");
    let mut l = Connection::open(&t.0).unwrap();
    l.listen("c").unwrap();
    let shared = Arc::new(Mutex::new(Connection::open(&t.0).unwrap()));
    let threads: Vec<_> = (0..4)
        .map(|k| {
            let s = shared.clone();
            std::thread::spawn(move || {
                for i in 0..250 {
                    let mut c = s.lock().unwrap();
                    if i % 5 == 0 {
                        c.execute(&format!("BEGIN; NOTIFY c, '{k}.{i}'; NOTIFY c, '{k}.{i}'; COMMIT")).unwrap();
                    } else {
                        c.notify("c", &format!("{k}.{i}")).unwrap();
                    }
                }
            })
        })
        .collect();
    // Meanwhile another thread takes the listener through its own Mutex.
    let listener = Arc::new(Mutex::new(l));
    let reader = {
        let l = listener.clone();
        std::thread::spawn(move || {
            let mut got = Vec::new();
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while got.len() < 1000 && std::time::Instant::now() < deadline {
                let mut l = l.lock().unwrap();
                l.wait(Some(Duration::from_millis(20))).unwrap();
                while let Some(n) = l.notifies().unwrap() {
                    got.push(n.payload);
                }
            }
            got
        })
    };
    for th in threads {
        th.join().unwrap();
    }
    let got = reader.join().unwrap();
    assert_eq!(got.len(), 1000, "duplicates folded within a transaction, everything else once");
    for k in 0..4 {
        let mine: Vec<usize> =
            got.iter().filter_map(|p| p.strip_prefix(&format!("{k}."))).map(|i| i.parse().unwrap()).collect();
        assert_eq!(mine, (0..250).collect::<Vec<_>>(), "thread {k}'s notifications out of order or missing");
    }
}

#[test]
fn strings_hark_cannot_carry_are_refused_clearly() {
    let t = TempDir::new("strings");
    let mut c = Connection::open(&t.0).unwrap();
    c.listen("c").unwrap();
    let nul = |e: hark::Error| {
        assert_eq!(
            (e.kind(), e.sqlstate(), e.message()),
            (ErrorKind::InvalidArgument, "22021", "invalid byte sequence for encoding \"UTF8\": 0x00")
        );
    };
    nul(c.notify("c", "a\0b").unwrap_err());
    nul(c.notify("c\0", "x").unwrap_err());
    nul(c.listen("a\0").unwrap_err());
    // Through SQL: an escape that makes a NUL, or bytes that are not UTF-8, never reach the queue.
    for sql in [
        r"NOTIFY c, E'a\000b'",
        r"NOTIFY c, E'\x00'",
        r"NOTIFY c, U&'\0000'",
        r"NOTIFY c, E'\xff\xfe'",
        r"SELECT pg_notify('c', E'\xc3')",
    ] {
        let e = c.execute(sql).unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::InvalidArgument | ErrorKind::Syntax), "{sql}: {e:?}");
        assert!(!e.message().is_empty());
    }
    let e = c.execute(r"NOTIFY c, E'ok\xff'").unwrap_err();
    assert_eq!((e.sqlstate(), e.message()), ("22021", "invalid byte sequence for encoding \"UTF8\": 0xff"));
    // Valid multi-byte text goes through unchanged, and the session is still usable. As in
    // PostgreSQL, `\x` escapes are bytes: two of them can make one character.
    c.notify("c", "é€𝄞 \u{1}\u{7f}").unwrap();
    c.execute(r"NOTIFY c, E'\u00e9\U0001D11E'").unwrap();
    c.execute(r"NOTIFY c, E'\xc3\xa9\303\251'").unwrap();
    let got: Vec<String> = std::iter::from_fn(|| c.notifies().unwrap()).map(|n| n.payload).collect();
    assert_eq!(got, ["é€𝄞 \u{1}\u{7f}", "é𝄞", "éé"]);
}

#[test]
fn numeric_literals_with_absurd_exponents_are_errors_not_allocations() {
    let t = TempDir::new("numeric");
    let mut c = Connection::open(&t.0).unwrap();
    for sql in
        ["SELECT 1e777777777777777", "SELECT 1.5e-99999999999", "SELECT 1e1001", "SELECT 2e99999999999999999999999"]
    {
        let e = c.execute(sql).unwrap_err();
        assert_eq!((e.kind(), e.sqlstate()), (ErrorKind::InvalidArgument, "22P02"), "{sql}");
        assert!(e.message().starts_with("invalid input syntax for type numeric: \""), "{}", e.message());
    }
    let r = c.execute("SELECT 1e1000, 1e-1000").unwrap();
    assert_eq!(r.rows[0][0].as_deref().map(str::len), Some(1001));
    assert_eq!(r.rows[0][1].as_deref().map(str::len), Some(1002));
}

#[test]
fn a_forked_child_is_refused_everything_on_its_parents_sessions_and_leaves_them_working() {
    let t = TempDir::new("fork");
    let opts = Options::new();
    let mut l = Connection::with_options(&t.0, &opts).unwrap();
    l.listen("c").unwrap();
    let mut n = Connection::open(&t.0).unwrap();
    n.begin().unwrap();
    n.notify("c", "parent's").unwrap();
    // SAFETY: the child only calls into hark and then _exit()s without unwinding into the harness.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let refused = |r: hark::Result<()>| matches!(r, Err(e) if e.kind() == ErrorKind::Closed);
        let all = refused(n.commit())
            && refused(n.notify("c", "child via parent's session"))
            && refused(n.execute("COMMIT").map(drop))
            && refused(l.consume_input())
            && refused(l.unlisten_all())
            && refused(l.wait(Some(Duration::from_millis(1))).map(drop))
            && refused(l.queue_usage().map(drop));
        // Dropping them must touch nothing of the parent's; a fresh session works.
        drop(n);
        drop(l);
        let fresh = Connection::open(&t.0).and_then(|mut c| c.notify("c", "child's own"));
        unsafe {
            libc::_exit(if !all {
                1
            } else if fresh.is_err() {
                2
            } else {
                0
            })
        };
    }
    let mut status = 0;
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status), "child crashed: {status}");
    assert_eq!(libc::WEXITSTATUS(status), 0, "1: a call was not refused; 2: a fresh session failed");
    // The parent's open transaction survived the child and commits once.
    n.commit().unwrap();
    let mut got = Vec::new();
    while got.len() < 2 {
        assert!(l.wait(Some(Duration::from_secs(5))).unwrap(), "got only {got:?}");
        while let Some(x) = l.notifies().unwrap() {
            got.push((x.payload, x.pid));
        }
    }
    // Each notification names its sending session: the child's first session has the child's
    // process id; `n`, the parent's second session, its own backend PID.
    assert_eq!(got, [("child's own".to_owned(), pid), ("parent's".to_owned(), n.backend_pid())]);
    assert_eq!(l.queue().stats().unwrap().listeners.len(), 1);
}
