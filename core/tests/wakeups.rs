//! The pollable descriptor (I8), wake-ups only for listeners that care (I7), and fork safety.

mod common;

use common::{agent_role, say, TempDir};
use hark::{Connection, ErrorKind};
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

fn readable(fd: RawFd, ms: i32) -> bool {
    let mut p = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd.
    unsafe { libc::poll(&mut p, 1, ms) == 1 }
}

#[test]
fn agent() {
    let Some((role, a)) = agent_role() else { return };
    match role.as_str() {
        // notify-on-line DIR CHANNEL: for each line on stdin, one notification (payload = line).
        "notify-on-line" => {
            let mut c = Connection::open(&a[0]).unwrap();
            say("READY");
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).unwrap() > 0 {
                c.notify(&a[1], line.trim()).unwrap();
                say("SENT");
                line.clear();
            }
        }
        other => panic!("unknown role {other}"),
    }
}

#[test]
fn the_descriptor_becomes_readable_on_commit_and_clears_on_consume() {
    let t = TempDir::new("fd");
    let q = t.queue();
    let mut l = Connection::open(&q).unwrap();
    let mut n = Connection::open(&q).unwrap();
    l.listen("c").unwrap();
    let fd = l.as_raw_fd();
    assert!(!readable(fd, 0));
    n.begin().unwrap();
    n.notify("c", "x").unwrap();
    assert!(!readable(fd, 20), "readable before commit");
    n.commit().unwrap();
    assert!(readable(fd, 1000), "not readable after commit");
    l.consume_input().unwrap();
    assert!(!readable(fd, 0), "still readable after consume_input");
    assert_eq!(l.notifies().unwrap().unwrap().payload, "x");
    assert!(l.notifies().unwrap().is_none());
    // The descriptor stays the same for the session's life (asyncio and libuv register it once).
    l.unlisten_all().unwrap();
    l.listen("c").unwrap();
    assert_eq!(l.as_raw_fd(), fd);
}

#[test]
fn only_interested_listeners_are_woken_and_a_pending_wakeup_costs_nothing() {
    let t = TempDir::new("wakeonly");
    let q = t.queue();
    let mut a = Connection::open(&q).unwrap();
    let mut b = Connection::open(&q).unwrap();
    let mut n = Connection::open(&q).unwrap();
    a.listen("alpha").unwrap();
    b.listen("beta").unwrap();
    n.notify("alpha", "1").unwrap();
    assert!(readable(a.as_raw_fd(), 1000));
    assert!(!readable(b.as_raw_fd(), 20), "uninterested listener woken");
    // Further commits while a wake-up is pending send no more datagrams: one read drains it.
    for i in 0..100 {
        n.notify("alpha", &i.to_string()).unwrap();
    }
    let mut buf = [0u8; 16];
    // SAFETY: reading datagrams from our own socket into a local buffer.
    let got = unsafe { libc::recv(a.as_raw_fd(), buf.as_mut_ptr().cast(), 16, libc::MSG_DONTWAIT) };
    assert_eq!(got, 1);
    let again = unsafe { libc::recv(a.as_raw_fd(), buf.as_mut_ptr().cast(), 16, libc::MSG_DONTWAIT) };
    assert_eq!(again, -1, "a second datagram was sent while a wake-up was pending");
    // A sender never wakes itself by datagram; its self-notifies are read after its commit.
    a.notify("alpha", "self").unwrap();
    assert_eq!(a.pending(), 102);
}

#[test]
fn a_transaction_on_many_channels_wakes_the_listener_of_each() {
    // 48 channels land in buckets across the whole bucket map (256 buckets, hashed names): the
    // commit wakes each bucket it touched, whichever word of the map holds its bit.
    let t = TempDir::new("wakemany");
    let q = t.queue();
    let mut listeners: Vec<Connection> = (0..48)
        .map(|i| {
            let mut l = Connection::open(&q).unwrap();
            l.listen(&format!("channel {i}")).unwrap();
            l
        })
        .collect();
    let mut n = Connection::open(&q).unwrap();
    n.begin().unwrap();
    for i in 0..48 {
        n.notify(&format!("channel {i}"), "x").unwrap();
    }
    n.commit().unwrap();
    for (i, l) in listeners.iter_mut().enumerate() {
        assert!(readable(l.as_raw_fd(), 1000), "the listener of channel {i} was not woken");
        assert_eq!(l.notifies().unwrap().unwrap().channel, format!("channel {i}"));
    }
}

#[test]
fn a_blocked_wait_returns_promptly_after_a_commit_in_another_process() {
    let t = TempDir::new("latency");
    let q = t.queue();
    let mut l = Connection::open(&q).unwrap();
    l.listen("c").unwrap();
    let mut n = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["agent", "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env("HARK_AGENT", "notify-on-line")
        .env("HARK_AGENT_ARGS", format!("{}\u{1f}c", q.display()))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    use std::io::Write;
    let mut stdin = n.stdin.take().unwrap();
    for i in 0..20 {
        writeln!(stdin, "{i}").unwrap();
        stdin.flush().unwrap();
        // Correctness, not speed: the wait returns with the notification (timing is benchmarked).
        assert!(l.wait(Some(Duration::from_secs(10))).unwrap(), "wake-up lost");
        assert_eq!(l.notifies().unwrap().unwrap().payload, i.to_string());
    }
    drop(stdin);
    assert!(n.wait().unwrap().success());
}

#[test]
fn wait_times_out_without_notifications() {
    let t = TempDir::new("timeout");
    let mut l = Connection::open(t.queue()).unwrap();
    l.listen("c").unwrap();
    let s = Instant::now();
    assert!(!l.wait(Some(Duration::from_millis(50))).unwrap());
    assert!(s.elapsed() >= Duration::from_millis(50));
}

#[test]
fn a_forked_child_cannot_use_its_parents_session() {
    let t = TempDir::new("fork");
    let q = t.queue();
    let mut l = Connection::open(&q).unwrap();
    l.listen("c").unwrap();
    // SAFETY: the child only calls into hark and then _exit()s, without returning into the
    // test harness.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        let code = match l.notifies() {
            Err(e) if e.kind() == ErrorKind::Closed => {
                // A new session in the child works.
                match Connection::open(&q).and_then(|mut c| c.notify("c", "from child")) {
                    Ok(()) => 0,
                    Err(_) => 2,
                }
            }
            _ => 1,
        };
        drop(l); // must leave the parent's slot alone
        unsafe { libc::_exit(code) };
    }
    let mut status = 0;
    unsafe { libc::waitpid(pid, &mut status, 0) };
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child status {status}");
    assert!(l.wait(Some(Duration::from_secs(5))).unwrap());
    let n = l.notifies().unwrap().unwrap();
    assert_eq!((n.payload.as_str(), n.pid), ("from child", pid));
    assert_eq!(l.queue().stats().unwrap().listeners.len(), 1, "the child's drop unregistered the parent");
}

/// Wakes every listener on `ch` once: each one's descriptor must turn readable, and each takes
/// exactly the one notification.
fn wake_all(n: &mut Connection, ls: &mut [Connection], round: usize) {
    n.notify("ch", &round.to_string()).unwrap();
    for (i, l) in ls.iter_mut().enumerate() {
        assert!(readable(l.as_raw_fd(), 5000), "round {round}: listener {i} of {} was not woken", ls.len());
        l.consume_input().unwrap();
        assert_eq!(l.notifies().unwrap().map(|x| x.payload), Some(round.to_string()));
        assert!(l.notifies().unwrap().is_none());
        assert!(!readable(l.as_raw_fd(), 0), "round {round}: listener {i} left readable");
    }
}

#[test]
fn a_notifier_wakes_every_listener_of_a_broadcast_larger_than_its_socket_cache() {
    // A notifier keeps connected sockets to the first listeners it wakes and reaches the rest by
    // path; listeners come and go, and the ones that replace them are woken too.
    let t = TempDir::new("wakemany");
    let q = t.queue();
    let mut n = Connection::open(&q).unwrap();
    let open = |k: usize| -> Vec<Connection> {
        (0..k)
            .map(|_| {
                let mut l = Connection::open(&q).unwrap();
                l.listen("ch").unwrap();
                l
            })
            .collect()
    };
    let mut ls = open(100);
    for round in 0..3 {
        wake_all(&mut n, &mut ls, round);
    }
    // The first half leaves (among them every listener the notifier holds a socket to); as many
    // new ones come, and enough rounds pass for the notifier to renew its cached sockets.
    ls.drain(..50);
    ls.extend(open(50));
    for round in 3..80 {
        wake_all(&mut n, &mut ls, round);
    }
}

#[test]
fn listeners_in_any_word_of_the_slot_bitmaps_are_woken_and_no_others() {
    // A notifier looks only at the bitmap words that ever held a listener of the channel's
    // bucket (or pattern prefix): listeners registered after 200 others on other channels sit
    // in later words and must be woken all the same, whichever way they came to listen.
    let t = TempDir::new("wakewords");
    let q = t.queue();
    let mut n = Connection::open(&q).unwrap();
    let mut others: Vec<Connection> = (0..200)
        .map(|i| {
            let mut c = Connection::open(&q).unwrap();
            c.listen(&format!("other{i}")).unwrap();
            c
        })
        .collect();
    // One listening from the start, one adding the channel to a slot it already has, one
    // pattern subscription.
    let mut late = Connection::open(&q).unwrap();
    late.listen("orders").unwrap();
    let mut added = Connection::open(&q).unwrap();
    added.listen("unrelated").unwrap();
    added.listen("orders").unwrap();
    let mut pattern = Connection::open(&q).unwrap();
    pattern.subscribe("orders-audit", &["ord*"], &hark::SubscribeOptions::new()).unwrap();
    for round in 0..3 {
        n.notify("orders", &round.to_string()).unwrap();
        for (name, l) in [("late", &mut late), ("added", &mut added), ("pattern", &mut pattern)] {
            assert!(readable(l.as_raw_fd(), 5000), "round {round}: the {name} listener was not woken");
            l.consume_input().unwrap();
            assert_eq!(l.notifies().unwrap().map(|x| x.payload), Some(round.to_string()), "{name}");
            assert!(l.notifies().unwrap().is_none());
        }
    }
    for (i, o) in others.iter_mut().enumerate() {
        assert!(!readable(o.as_raw_fd(), 0), "listener {i} on another channel was woken");
    }
}
