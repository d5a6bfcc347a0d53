//! The C ABI driven from Rust: separate connections on separate threads, a connection handed from
//! one thread to another, and the notice processor's argument.

use hark_ffi::*;
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_void};
use std::path::PathBuf;

fn scratch(name: &str) -> (PathBuf, CString) {
    let dir = std::env::temp_dir().join(format!("hark-ffi-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let c = CString::new(dir.to_str().unwrap()).unwrap();
    (dir, c)
}

fn cstr(s: &str) -> CString {
    CString::new(s).unwrap()
}

/// A connection pointer crossing threads, as hark_conn's documentation allows.
struct Handed(*mut hark_conn);
unsafe impl Send for Handed {}

#[test]
fn connections_on_many_threads_deliver_every_notification_once_in_order() {
    let (dir, cdir) = scratch("threads");
    const THREADS: usize = 4;
    const EACH: usize = 50;
    unsafe {
        let listener = hark_connect(cdir.as_ptr());
        assert_eq!(hark_status(listener), hark_result::HARK_OK);
        assert_eq!(hark_listen(listener, cstr("work").as_ptr()), hark_result::HARK_OK);

        let senders: Vec<_> = (0..THREADS)
            .map(|t| {
                let cdir = cdir.clone();
                std::thread::spawn(move || {
                    let conn = hark_connect(cdir.as_ptr());
                    assert_eq!(hark_status(conn), hark_result::HARK_OK);
                    for batch in 0..EACH / 5 {
                        assert_eq!(hark_begin(conn), hark_result::HARK_OK);
                        for k in 0..5 {
                            let p = cstr(&format!("t{t}-{}", batch * 5 + k));
                            assert_eq!(hark_notify(conn, cstr("work").as_ptr(), p.as_ptr()), hark_result::HARK_OK);
                        }
                        assert_eq!(hark_commit(conn), hark_result::HARK_OK);
                    }
                    let pid = hark_backend_pid(conn);
                    hark_finish(conn);
                    pid
                })
            })
            .collect();

        // Receive on another thread than the one that opened the connection.
        let handed = Handed(listener);
        let receiver = std::thread::spawn(move || {
            let handed = handed;
            let conn = handed.0;
            let mut next = [0usize; THREADS];
            let mut senders = [0; THREADS];
            let mut got = 0;
            while got < THREADS * EACH {
                assert_eq!(hark_wait(conn, 10_000), 1, "timed out after {got}");
                loop {
                    let n = hark_notifies(conn);
                    if n.is_null() {
                        break;
                    }
                    assert_eq!(CStr::from_ptr((*n).relname).to_str().unwrap(), "work");
                    let pid = (*n).be_pid;
                    let payload = CStr::from_ptr((*n).extra).to_str().unwrap().to_owned();
                    hark_freemem(n.cast());
                    let (t, k) = payload[1..].split_once('-').unwrap();
                    let (t, k): (usize, usize) = (t.parse().unwrap(), k.parse().unwrap());
                    // Every notification of a connection carries that connection's backend PID.
                    assert!(senders[t] == 0 || senders[t] == pid, "thread {t}: {pid} after {}", senders[t]);
                    senders[t] = pid;
                    assert_eq!(k, next[t], "thread {t}'s notifications out of order");
                    next[t] += 1;
                    got += 1;
                }
            }
            assert_eq!(hark_wait(conn, 50), 0, "more than was sent");
            hark_finish(conn);
            (next, senders)
        });
        let sent: Vec<i32> = senders.into_iter().map(|s| s.join().unwrap()).collect();
        let (next, seen) = receiver.join().unwrap();
        assert_eq!(next, [EACH; THREADS]);
        assert_eq!(seen.to_vec(), sent, "each notification names the connection that sent it");
        let mut distinct = sent.clone();
        distinct.sort();
        distinct.dedup();
        assert_eq!(distinct.len(), THREADS, "each connection has its own backend PID: {sent:?}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

unsafe extern "C" fn collect(arg: *mut c_void, message: *const c_char) {
    let seen = &mut *arg.cast::<Vec<String>>();
    seen.push(CStr::from_ptr(message).to_str().unwrap().to_owned());
}

#[test]
fn the_notice_processor_gets_its_argument_and_libpq_formatted_messages() {
    let (dir, cdir) = scratch("notices");
    let mut seen: Vec<String> = Vec::new();
    unsafe {
        let conn = hark_connect(cdir.as_ptr());
        let arg = (&mut seen as *mut Vec<String>).cast::<c_void>();
        let previous = hark_set_notice_processor(conn, Some(collect), arg);
        assert_eq!(
            previous.map(|f| f as usize),
            Some(hark_default_notice_processor as unsafe extern "C" fn(*mut c_void, *const c_char) as usize)
        );
        assert_eq!(hark_rollback(conn), hark_result::HARK_OK);
        let q = hark_exec(conn, cstr("BEGIN; BEGIN").as_ptr());
        assert_eq!(hark_query_status(q), hark_result::HARK_OK);
        hark_query_clear(q);
        hark_finish(conn);
    }
    assert_eq!(
        seen,
        ["WARNING:  there is no transaction in progress\n", "WARNING:  there is already a transaction in progress\n"]
    );
    std::fs::remove_dir_all(dir).unwrap();
}
