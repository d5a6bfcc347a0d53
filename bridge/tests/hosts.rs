//! Hosts joined through one PostgreSQL 15 database: separate queue directories, each with its own
//! `hark bridge` process. Every host's listeners hear every other host's transactions exactly
//! once, whole, in each origin's commit order, and their own once (no echo); rolled-back local
//! transactions reach nobody; a psql session beside the bridges hears and is heard.

mod common;
use common::*;
use std::collections::HashMap;
use std::io::Read;
use std::time::{Duration, Instant};

const TXNS: usize = 30;

/// Commits `TXNS` transactions of three notifications on host `h` (and rolls some back).
fn commit_transactions(host: &Host, h: usize) {
    let mut c = host.connect();
    for t in 0..TXNS {
        c.begin().unwrap();
        for k in 0..3 {
            c.notify("ev", &format!("h{h}-t{t}-k{k}")).unwrap();
        }
        c.commit().unwrap();
        if t % 7 == 0 {
            c.begin().unwrap();
            c.notify("ev", &format!("h{h}-rolled-back-{t}")).unwrap();
            c.rollback().unwrap();
        }
    }
}

/// The local transactions the bridge committed, as groups of payloads (each begins with an
/// origin notification), and the payloads the host committed itself (outside any group).
fn split_by_origin(l: &Listener) -> (Vec<Vec<String>>, Vec<String>) {
    let (mut groups, mut own): (Vec<Vec<String>>, Vec<String>) = (Vec::new(), Vec::new());
    let mut in_group_txn = None;
    for (ch, p, pid) in &l.got {
        if ch == "hark.bridge.origin" {
            groups.push(Vec::new());
            in_group_txn = Some(*pid);
        } else if in_group_txn == Some(*pid) {
            groups.last_mut().unwrap().push(p.clone());
        } else {
            in_group_txn = None;
            own.push(p.clone());
        }
    }
    (groups, own)
}

fn hosts_hear_each_other(n: usize) {
    let Some(pg) = Pg::start() else { return };
    let mut hosts: Vec<Host> = (0..n).map(|i| Host::new(&format!("host{i}"))).collect();
    for h in &mut hosts {
        h.start_bridge(&pg.conninfo, &["ev"]);
    }
    for h in &hosts {
        h.wait_connected(1);
    }
    let mut psql = pg.psql_session();
    feed(&mut psql, "LISTEN ev;\nSELECT 'listening';\n");
    let mut listeners: Vec<Listener> = hosts.iter().map(|h| Listener::new(h, &["ev", "hark.bridge.origin"])).collect();
    pg.wait_psql_listening();
    std::thread::scope(|s| {
        for (i, h) in hosts.iter().enumerate() {
            s.spawn(move || commit_transactions(h, i));
        }
    });
    feed(&mut psql, "NOTIFY ev, 'from-psql';\n");
    let per_host = TXNS * 3;
    let total = n * per_host + 1;
    for (i, l) in listeners.iter_mut().enumerate() {
        let ok = l.until(60, |got| got.iter().filter(|g| g.0 == "ev").count() >= total);
        assert!(ok, "host {i} got {} of {total}; log:\n{}", l.payloads("ev").len(), hosts[i].log());
        l.until(1, |_| false); // anything more would be a duplicate or an echo
        let (groups, own) = split_by_origin(l);
        let expected_own: Vec<String> =
            (0..TXNS).flat_map(|t| (0..3).map(move |k| format!("h{i}-t{t}-k{k}"))).collect();
        assert_eq!(own, expected_own, "host {i}: its own transactions, locally, once");
        let mut next: HashMap<usize, usize> = HashMap::new();
        let mut psql_seen = 0;
        for g in &groups {
            if g == &["from-psql"] {
                psql_seen += 1;
                continue;
            }
            assert_eq!(g.len(), 3, "host {i}: a remote transaction arrives whole, as one local transaction: {g:?}");
            let (h, t): (usize, usize) = {
                let p: Vec<&str> = g[0].split('-').collect();
                (p[0][1..].parse().unwrap(), p[1][1..].parse().unwrap())
            };
            assert_ne!(h, i, "host {i} heard its own transaction back: {g:?}");
            let want = next.entry(h).or_insert(0);
            assert_eq!(t, *want, "host {i}: host {h}'s transactions exactly once, in its commit order");
            *want += 1;
            let expected: Vec<String> = (0..3).map(|k| format!("h{h}-t{t}-k{k}")).collect();
            assert_eq!(g, &expected);
        }
        assert_eq!(psql_seen, 1, "host {i}: psql's notification once");
        for h in (0..n).filter(|h| *h != i) {
            assert_eq!(next.get(&h), Some(&TXNS), "host {i}: all of host {h}'s transactions");
        }
        assert!(!l.payloads("ev").iter().any(|p| p.contains("rolled-back")));
    }
    // psql hears every host's notifications (and its own), and never a rolled-back one.
    feed(&mut psql, "SELECT pg_sleep(0.5);\n\\q\n");
    let mut out = String::new();
    psql.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    psql.wait().unwrap();
    let heard: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("Asynchronous notification \"ev\" with payload \""))
        .map(|l| l.split('"').next().unwrap())
        .collect();
    assert_eq!(heard.len(), total, "psql heard {} of {total}:\n{out}", heard.len());
    assert!(!heard.iter().any(|p| p.contains("rolled-back")));
    for i in 0..n {
        let from_i: Vec<&&str> = heard.iter().filter(|p| p.starts_with(&format!("h{i}-"))).collect();
        assert_eq!(from_i.len(), per_host);
        let mut sorted = from_i.clone();
        sorted.sort_by_key(|p| {
            let v: Vec<usize> = p.split('-').skip(1).map(|x| x[1..].parse().unwrap()).collect();
            (v[0], v[1])
        });
        assert_eq!(from_i, sorted, "psql: host {i}'s notifications in its commit order");
    }
    for h in &hosts {
        let r = h.state().unwrap();
        assert_eq!(r.get("to_pg_transactions"), TXNS.to_string(), "{}", h.name);
        assert_eq!(r.get("to_pg_notifications"), per_host.to_string());
    }
}

#[test]
fn two_hosts_hear_each_other_exactly_once_whole_and_in_order() {
    hosts_hear_each_other(2);
}

#[test]
fn four_hosts_and_psql_hear_each_other_exactly_once_whole_and_in_order() {
    hosts_hear_each_other(4);
}

/// Host 0 commits a numbered transaction every few milliseconds until `stop`; what host 1 hears.
fn stream(queue: &std::path::Path, stop: &std::sync::atomic::AtomicBool) -> usize {
    let mut c = hark::Connection::open(queue).unwrap();
    let mut t = 0;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) {
        c.begin().unwrap();
        c.notify("ev", &format!("{t}-a")).unwrap();
        c.notify("ev", &format!("{t}-b")).unwrap();
        c.commit().unwrap();
        t += 1;
        std::thread::sleep(Duration::from_millis(3));
    }
    t
}

/// Runs `during` while a thread streams transactions into `queue` (see [`stream`]); returns how
/// many it committed.
fn stream_while(queue: std::path::PathBuf, during: impl FnOnce()) -> usize {
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        let sender = s.spawn(|| stream(&queue, &stop));
        during();
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        sender.join().unwrap()
    })
}

/// Two hosts named `a` and `b`, each with its bridge on `ev`, both connected.
fn bridged_pair(pg: &Pg, a: &str, b: &str) -> (Host, Host) {
    let (mut a, mut b) = (Host::new(a), Host::new(b));
    a.start_bridge(&pg.conninfo, &["ev"]);
    b.start_bridge(&pg.conninfo, &["ev"]);
    a.wait_connected(1);
    b.wait_connected(1);
    (a, b)
}

/// Checks that `got` holds transactions 0..sent, each whole and once, in order.
fn check_stream(got: &[String], sent: usize) {
    let expected: Vec<String> = (0..sent).flat_map(|t| [format!("{t}-a"), format!("{t}-b")]).collect();
    if got != expected {
        let first = got.iter().zip(&expected).position(|(a, b)| a != b).unwrap_or(got.len().min(expected.len()));
        panic!(
            "received {} of {} notifications; first difference at {first}: {:?} vs {:?}",
            got.len(),
            expected.len(),
            got.get(first),
            expected.get(first)
        );
    }
}

#[test]
fn a_bridge_sigkilled_in_a_loop_loses_nothing_and_running_bridges_drop_its_repeats() {
    let Some(pg) = Pg::start() else { return };
    let (mut a, b) = bridged_pair(&pg, "killed", "steady");
    let mut l = Listener::new(&b, &["ev"]);
    let sent = stream_while(a.queue(), || {
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        for round in 0..10 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            std::thread::sleep(Duration::from_millis(150 + rng % 350));
            a.kill_bridge();
            a.start_bridge(&pg.conninfo, &["ev"]);
            if round % 3 == 0 {
                a.wait_connected(round + 2);
            }
        }
        std::thread::sleep(Duration::from_millis(300));
    });
    assert!(sent > 100, "the stream ran ({sent} transactions)");
    let ok = l.until(60, |g| g.len() >= sent * 2);
    l.until(1, |_| false);
    let got = l.payloads("ev");
    assert!(ok, "host b got {} of {}; log of a:\n{}", got.len(), sent * 2, a.log());
    check_stream(&got, sent);
    eprintln!("host b skipped {} repeated transactions", b.state().unwrap().get("repeats_skipped"));
}

#[test]
fn postgresql_restarted_mid_stream_what_was_committed_meanwhile_is_sent_when_it_is_back() {
    let Some(pg) = Pg::start() else { return };
    let (a, b) = bridged_pair(&pg, "sender", "receiver");
    let mut l = Listener::new(&b, &["ev", "hark.bridge.gap"]);
    let sent = stream_while(a.queue(), || {
        std::thread::sleep(Duration::from_millis(500));
        pg.stop_server("fast");
        std::thread::sleep(Duration::from_millis(800));
        pg.start_server();
        b.wait_connected(2);
        a.wait_connected(2);
        std::thread::sleep(Duration::from_millis(500));
    });
    // Everything host a committed, PostgreSQL's outage included, reached PostgreSQL.
    let deadline = Instant::now() + Duration::from_secs(30);
    while a.state().unwrap().get("to_pg_transactions") != sent.to_string() {
        assert!(Instant::now() < deadline, "host a sent {} of {sent}", a.state().unwrap().get("to_pg_transactions"));
        std::thread::sleep(Duration::from_millis(50));
    }
    l.until(3, |_| false);
    // Host b: what it heard is in order, each transaction whole, nothing twice; what was lost
    // while its own bridge was disconnected is announced by one gap, where it happened; and
    // everything committed after both bridges were back arrived.
    let gap_at = l.got.iter().position(|g| g.0 == "hark.bridge.gap").expect("a gap signal");
    assert_eq!(l.got.iter().filter(|g| g.0 == "hark.bridge.gap").count(), 1);
    let before: Vec<String> = l.got[..gap_at].iter().map(|g| g.1.clone()).collect();
    let after: Vec<String> = l.got[gap_at + 1..].iter().map(|g| g.1.clone()).collect();
    let number = |p: &String| p.split('-').next().unwrap().parse::<usize>().unwrap();
    check_stream(&before, before.len() / 2);
    let first_after = number(&after[0]);
    assert!(after[0].ends_with("-a"), "{after:?}");
    let expected: Vec<String> = (first_after..sent).flat_map(|t| [format!("{t}-a"), format!("{t}-b")]).collect();
    assert_eq!(after, expected, "after the gap: every transaction, whole, once, in order, to the last");
    assert!(first_after >= before.len() / 2);
}

#[test]
fn payloads_postgresql_cannot_carry_are_counted_announced_and_the_rest_is_sent() {
    let Some(pg) = Pg::start() else { return };
    let mut a = Host::new("big");
    let mut b = Host::new("small");
    // Host a's queue takes payloads PostgreSQL cannot.
    let options = hark::Options { max_payload: Some(20000), ..hark::Options::new() };
    drop(hark::Connection::with_options(a.queue(), &options).unwrap());
    a.start_bridge(&pg.conninfo, &["ev"]);
    b.start_bridge(&pg.conninfo, &["ev"]);
    a.wait_connected(1);
    b.wait_connected(1);
    let mut psql = pg.psql_session();
    feed(&mut psql, "LISTEN \"hark.bridge.dropped\";\nSELECT 'listening';\n");
    pg.wait_psql_listening();
    let mut l = Listener::new(&b, &["ev"]);
    let mut c = a.connect();
    c.begin().unwrap();
    c.notify("ev", "before").unwrap();
    c.notify("ev", &"x".repeat(8000)).unwrap();
    c.notify("ev", &"y".repeat(7999)).unwrap();
    c.notify("ev", "after").unwrap();
    c.commit().unwrap();
    assert!(l.until(20, |g| g.len() >= 3), "{:?}", l.got.len());
    l.until(1, |_| false);
    let got = l.payloads("ev");
    assert_eq!(got, ["before".to_owned(), "y".repeat(7999), "after".to_owned()]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.state().unwrap().get("too_long") != "1" {
        assert!(Instant::now() < deadline, "the state counts it");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(a.log().contains("not sent to PostgreSQL: a payload of 8000 bytes on channel \"ev\""), "{}", a.log());
    let stat = std::process::Command::new(hark_bin()).arg("stat").arg(a.queue()).output().unwrap();
    let stat = String::from_utf8_lossy(&stat.stdout);
    assert!(stat.contains("1 too long for it"), "{stat}");
    feed(&mut psql, "SELECT pg_sleep(0.3);\n\\q\n");
    let mut out = String::new();
    psql.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    psql.wait().unwrap();
    assert!(
        out.contains("Asynchronous notification \"hark.bridge.dropped\" with payload \"{\"origin\":\"default@")
            && out.contains("\"channel\":\"ev\",\"bytes\":8000,"),
        "{out}"
    );
}

#[test]
fn what_the_local_queue_skipped_past_the_lag_limit_is_announced_on_postgresql() {
    let Some(pg) = Pg::start() else { return };
    let mut a = Host::new("lagging");
    let options = hark::Options { max_queue_size: Some(64 << 20), ..hark::Options::new() }.segment_size(64 << 10);
    drop(hark::Connection::with_options(a.queue(), &options).unwrap());
    a.start_bridge_args(&pg.conninfo, &["ev"], &[], &["--max-lag-bytes", "131072"]);
    a.wait_connected(1);
    let mut psql = pg.psql_session();
    feed(&mut psql, "LISTEN \"hark.bridge.gap\"; LISTEN ev;\nSELECT 'listening';\n");
    pg.wait_psql_listening();
    // The bridge stops reading (SIGSTOP) while the queue moves on well past its lag limit.
    let pid = a.bridge.as_ref().unwrap().id() as i32;
    // SAFETY: signals to our own child.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let mut c = a.connect();
    let payload = "p".repeat(1000);
    for _ in 0..600 {
        c.notify("ev", &payload).unwrap();
    }
    c.notify("ev", "last").unwrap();
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let deadline = Instant::now() + Duration::from_secs(20);
    while a.state().unwrap().get("to_pg_notifications").parse::<u64>().unwrap_or(0) == 0 {
        assert!(Instant::now() < deadline, "nothing sent; log:\n{}", a.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    // Everything after the gap is in PostgreSQL once the bridge acknowledged it all (on a busy
    // machine that takes longer than psql's second below).
    let caught_up = || {
        let stats = hark::Queue::open(a.queue(), &hark::Options::new().create(false)).unwrap().stats().unwrap();
        stats
            .listeners
            .iter()
            .any(|l| l.subscription.as_deref().is_some_and(|s| s.starts_with("bridge.")) && l.lag == 0)
    };
    while !caught_up() {
        assert!(Instant::now() < deadline, "the bridge never caught up; log:\n{}", a.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    feed(&mut psql, "SELECT pg_sleep(1);\n\\q\n");
    let mut out = String::new();
    psql.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    psql.wait().unwrap();
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("Asynchronous notification")).collect();
    let gap = lines.iter().position(|l| l.contains("\"hark.bridge.gap\"")).unwrap_or_else(|| panic!("no gap:\n{out}"));
    assert!(lines[gap].contains("\"skipped\":"), "{}", lines[gap]);
    // The bridge may be cut again while it catches up (its acknowledged position stays behind
    // until PostgreSQL commits): each cut is one more gap, never a silent loss.
    let gaps = lines.iter().filter(|l| l.contains("\"hark.bridge.gap\"")).count();
    assert!(lines.last().unwrap().contains("with payload \"last\""), "what follows the gap is sent: {lines:?}");
    let sent = lines.len() - gaps;
    assert!(sent < 601, "the skipped notifications were not sent: {sent} of 601 arrived");
    assert!(a.log().contains("the local queue skipped"), "{}", a.log());
}

/// Channel names and payloads reach PostgreSQL verbatim whichever way the bridge sends them: a
/// short transaction alone (NOTIFY statements), a long one alone (the prepared statement), and
/// several pending at once (one message, each between BEGIN and COMMIT).
#[test]
fn names_and_payloads_arrive_verbatim_alone_long_and_batched() {
    let Some(pg) = Pg::start() else { return };
    let mut a = Host::new("verbatim-a");
    let mut b = Host::new("verbatim-b");
    let odd = "Mixed \"Case\" ch;";
    let payloads =
        ["it's", "back\\slash", "E'x'", "ünïcödé ✓", "two\nlines", "$$dollar$$", "'; NOTIFY ev, 'injected", ""];
    let txn = |c: &mut hark::Connection, tag: &str, n: usize| {
        c.begin().unwrap();
        for k in 0..n {
            c.notify(odd, &format!("{tag}{k}{}", payloads[k % payloads.len()])).unwrap();
        }
        c.notify("ev", tag).unwrap();
        c.commit().unwrap();
    };
    // Committed while a's bridge is stopped (its subscription stays): when it starts again it
    // finds them all pending and sends them as one batch.
    a.start_bridge(&pg.conninfo, &[odd, "ev"]);
    a.wait_connected(1);
    assert!(a.stop_bridge().success());
    let mut c = a.connect();
    for t in 0..5 {
        txn(&mut c, &format!("batched{t}-"), payloads.len());
    }
    b.start_bridge(&pg.conninfo, &[odd, "ev"]);
    b.wait_connected(1);
    let mut l = Listener::new(&b, &[odd, "ev", "hark.bridge.origin"]);
    a.start_bridge(&pg.conninfo, &[odd, "ev"]);
    a.wait_connected(2);
    assert!(l.until(20, |g| g.iter().filter(|n| n.0 == "ev").count() >= 5), "{}", a.log());
    txn(&mut c, "short-", 3);
    assert!(l.until(20, |g| g.iter().filter(|n| n.0 == "ev").count() >= 6), "{}", a.log());
    txn(&mut c, "long-", 40);
    assert!(l.until(20, |g| g.iter().filter(|n| n.0 == "ev").count() >= 7), "{}", a.log());
    l.until(1, |_| false);
    let mut expected = Vec::new();
    let mut add = |tag: &str, n: usize| {
        expected.push(("hark.bridge.origin".to_owned(), String::new()));
        for k in 0..n {
            expected.push((odd.to_owned(), format!("{tag}{k}{}", payloads[k % payloads.len()])));
        }
        expected.push(("ev".to_owned(), tag.to_owned()));
    };
    for t in 0..5 {
        add(&format!("batched{t}-"), payloads.len());
    }
    add("short-", 3);
    add("long-", 40);
    let got: Vec<(String, String)> = l
        .got
        .iter()
        .map(|(ch, p, _)| (ch.clone(), if ch == "hark.bridge.origin" { String::new() } else { p.clone() }))
        .collect();
    // Each behind its own origin notification: one local transaction each.
    assert_eq!(got, expected, "each transaction whole, in order, names and payloads verbatim");
}

/// What a bridge commits from PostgreSQL wakes nobody in the bridge (its commits and its
/// subscription share a session): it still reads those transactions back and acknowledges
/// them, so its subscription holds nothing of the queue back once the stream has passed, also
/// when the stream never pauses.
#[test]
fn a_bridge_acknowledges_what_it_committed_from_postgresql() {
    let Some(pg) = Pg::start() else { return };
    let (a, b) = bridged_pair(&pg, "ack-a", "ack-b");
    let mut l = Listener::new(&b, &["ev"]);
    let mut c = a.connect();
    let total = 3000;
    for t in 0..total {
        c.notify("ev", &t.to_string()).unwrap();
    }
    assert!(l.until(60, |g| g.len() >= total), "host b got {} of {total}", l.got.len());
    let subscription_lag = || {
        let stats = b.connect().subscriptions().unwrap();
        let s = stats
            .iter()
            .find(|s| s.subscription.as_deref() == Some("bridge.default"))
            .expect("the bridge's subscription");
        s.lag_notifications
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while subscription_lag() > 0 {
        assert!(
            Instant::now() < deadline,
            "host b's bridge left {} of its own notifications unacknowledged",
            subscription_lag()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Received once, in order.
    let got = l.payloads("ev");
    assert_eq!(got, (0..total).map(|t| t.to_string()).collect::<Vec<_>>());
}

/// PostgreSQL is away while local processes commit until the local queue is full (the bridge's
/// subscription holds everything it could not send). When PostgreSQL is back, the bridge must
/// not wait for room to commit its own gap signal before it sends: it sends what the queue
/// holds, which makes the room.
#[test]
fn a_local_queue_filled_while_postgresql_was_away_is_drained_when_it_is_back() {
    let Some(pg) = Pg::start() else { return };
    let mut a = Host::new("filled");
    let options = hark::Options { max_queue_size: Some(1 << 20), ..hark::Options::new() }.segment_size(64 << 10);
    drop(hark::Connection::with_options(a.queue(), &options).unwrap());
    a.start_bridge(&pg.conninfo, &["ev"]);
    a.wait_connected(1);
    pg.stop_server("fast");
    let deadline = Instant::now() + Duration::from_secs(30);
    while a.state().is_none_or(|r| r.get("state") == "connected") {
        assert!(Instant::now() < deadline, "the bridge never saw PostgreSQL go; log:\n{}", a.log());
        std::thread::sleep(Duration::from_millis(20));
    }
    let mut c = a.connect();
    let payload = "p".repeat(1000);
    let mut committed = 0u64;
    loop {
        match c.notify("ev", &format!("{committed} {payload}")) {
            Ok(()) => committed += 1,
            Err(e) if e.kind() == hark::ErrorKind::QueueFull => break,
            Err(e) => panic!("{e}"),
        }
    }
    assert!(committed > 100, "the queue filled after {committed}");
    pg.start_server();
    a.wait_connected(2);
    while a.state().unwrap().get("to_pg_transactions") != committed.to_string() {
        assert!(
            Instant::now() < deadline + Duration::from_secs(30),
            "sent {} of {committed}; log:\n{}",
            a.state().unwrap().get("to_pg_transactions"),
            a.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    c.notify("ev", "room again").unwrap();
}

#[test]
fn a_sending_connection_terminated_mid_stream_is_reopened_and_the_other_host_misses_nothing() {
    // The bridge sends through a second connection, which listens to nothing: when its backend
    // ends (here pg_terminate_backend), the whole link is reopened, and what was not
    // acknowledged is sent again; the receiving host, connected all along, gets every
    // transaction once, whole, in order, with no gap.
    let Some(pg) = Pg::start() else { return };
    let (a, b) = bridged_pair(&pg, "sender", "receiver");
    let (listening, sending) = {
        let r = a.state().unwrap();
        (r.get("pg_backend_pid").to_owned(), r.get("pg_sender_pid").to_owned())
    };
    assert!(!sending.is_empty() && sending != listening, "two backends: {listening} and {sending}");
    let mut l = Listener::new(&b, &["ev", "hark.bridge.gap"]);
    let sent = stream_while(a.queue(), || {
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(pg.psql(&format!("SELECT pg_terminate_backend({sending})")).trim(), "t");
        a.wait_connected(2);
        std::thread::sleep(Duration::from_millis(500));
    });
    assert_ne!(a.state().unwrap().get("pg_sender_pid"), sending);
    let all = |g: &[(String, String, i32)]| g.iter().filter(|n| n.0 == "ev").count() >= 2 * sent;
    assert!(l.until(30, all), "host b received {} of {}", l.payloads("ev").len(), 2 * sent);
    l.until(1, |_| false);
    assert!(l.payloads("hark.bridge.gap").is_empty(), "host b's bridge never disconnected: {:?}", l.got);
    check_stream(&l.payloads("ev"), sent);
    assert_eq!(b.state().unwrap().get("connects"), "1");
}

#[test]
fn a_bridge_stopped_by_sigterm_mid_stream_sends_nothing_twice() {
    // A clean stop is not a crash: what PostgreSQL committed is acknowledged before the bridge
    // ends, so a plain PostgreSQL listener gets each transaction once across stops and starts.
    let Some(pg) = Pg::start() else { return };
    let mut a = Host::new("stopped");
    a.start_bridge(&pg.conninfo, &["ev"]);
    a.wait_connected(1);
    let mut psql = pg.psql_session();
    feed(&mut psql, "LISTEN ev;\nSELECT 'listening';\n");
    pg.wait_psql_listening();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let queue = a.queue();
    let sent = std::thread::scope(|s| {
        let sender = s.spawn(|| {
            let mut c = hark::Connection::open(&queue).unwrap();
            let mut t = 0usize;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                c.notify("ev", &t.to_string()).unwrap();
                t += 1;
                if t.is_multiple_of(50) {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
            t
        });
        for round in 0..8 {
            std::thread::sleep(Duration::from_millis(200));
            assert!(a.stop_bridge().success(), "log:\n{}", a.log());
            a.start_bridge(&pg.conninfo, &["ev"]);
            a.wait_connected(round + 2);
        }
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        sender.join().unwrap()
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    // Every transaction acknowledged: the subscription is empty once the last was sent.
    let stat = loop {
        let out = std::process::Command::new(hark_bin()).arg("stat").arg(a.queue()).output().unwrap();
        let stat = String::from_utf8_lossy(&out.stdout).into_owned();
        let line = stat.lines().find(|l| l.contains("subscription bridge.default")).unwrap_or("").to_owned();
        if line.split_whitespace().nth(5) == Some("0") || Instant::now() > deadline {
            break stat;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    feed(&mut psql, "SELECT 'done';\n\\q\n");
    let mut out = String::new();
    psql.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    let _ = psql.wait();
    let got: Vec<usize> = out
        .lines()
        .filter_map(|l| l.strip_prefix("Asynchronous notification \"ev\" with payload \""))
        .map(|l| l.split('"').next().unwrap().parse().unwrap())
        .collect();
    let mut counts: HashMap<usize, usize> = HashMap::new();
    for t in &got {
        *counts.entry(*t).or_default() += 1;
    }
    let twice: Vec<usize> = (0..sent).filter(|t| counts.get(t).copied().unwrap_or(0) > 1).collect();
    let missing: Vec<usize> = (0..sent).filter(|t| !counts.contains_key(t)).collect();
    assert!(
        missing.is_empty(),
        "{} of {sent} never reached PostgreSQL: {:?}…\n{stat}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert!(
        twice.is_empty(),
        "{} of {sent} sent twice across clean stops: {:?}",
        twice.len(),
        &twice[..twice.len().min(10)]
    );
}

#[test]
fn a_transaction_a_killed_bridges_backend_commits_late_is_not_echoed_after_the_restart() {
    // The bridge is killed while its sending backend has a transaction it has not run yet (the
    // backend is stopped); the restarted bridge listens before that backend runs it. PostgreSQL
    // then delivers the bridge's own transaction under a PID that is no longer the bridge's: its
    // end mark still names this bridge's origin, and it must not come back to the host.
    let Some(pg) = Pg::start() else { return };
    let mut a = Host::new("late");
    a.start_bridge(&pg.conninfo, &["ev"]);
    a.wait_connected(1);
    let sender: i32 = a.state().unwrap().get("pg_sender_pid").parse().unwrap();
    let mut l = Listener::new(&a, &["ev"]);
    // SAFETY: signals to a PostgreSQL backend process of this test's own cluster.
    unsafe { libc::kill(sender, libc::SIGSTOP) };
    a.connect().notify("ev", "ping").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    a.kill_bridge();
    a.start_bridge(&pg.conninfo, &["ev"]);
    a.wait_connected(2);
    unsafe { libc::kill(sender, libc::SIGCONT) };
    l.until(3, |_| false);
    assert_eq!(l.payloads("ev"), ["ping"], "the host's own transaction, once; log:\n{}", a.log());
}

#[test]
fn a_queue_removed_and_created_anew_is_not_taken_for_the_old_one_by_other_hosts() {
    // A queue's commit numbers start again with a new queue. Removed and created anew at the same
    // path (ext4 gives its control file the same inode number again), the new queue must not be
    // taken for the old one, whose numbers the other hosts' bridges remember: they would drop
    // its transactions as repeats.
    let Some(pg) = Pg::start() else { return };
    let (mut a, b) = bridged_pair(&pg, "renewed", "hearing");
    let mut l = Listener::new(&b, &["ev"]);
    let mut c = a.connect();
    for t in 0..5 {
        c.notify("ev", &format!("old-{t}")).unwrap();
    }
    assert!(l.until(10, |g| g.len() == 5), "{:?}; log:\n{}", l.got, a.log());
    drop(c);
    let inode =
        |q: &std::path::Path| std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(q.join("control")).unwrap());
    let before = inode(&a.queue());
    assert!(a.stop_bridge().success());
    std::fs::remove_dir_all(a.queue()).unwrap();
    a.start_bridge(&pg.conninfo, &["ev"]);
    a.wait_connected(1);
    if inode(&a.queue()) != before {
        eprintln!("note: the new control file has another inode number here; the old origin would not match anyway");
    }
    let mut c = a.connect();
    for t in 0..3 {
        c.notify("ev", &format!("new-{t}")).unwrap();
    }
    assert!(l.until(10, |g| g.len() == 8), "{:?}; log of b:\n{}", l.got, b.log());
    assert_eq!(l.payloads("ev")[5..], ["new-0", "new-1", "new-2"]);
}

#[test]
fn a_plain_clients_notification_is_committed_while_the_host_streams_without_pause() {
    // A group of a plain PostgreSQL client ends when nothing more came for a moment; a busy local
    // stream (each commit wakes the bridge) must not keep that moment from ever coming.
    let Some(pg) = Pg::start() else { return };
    let mut a = Host::new("busy");
    a.start_bridge(&pg.conninfo, &["ev", "from-psql"]);
    a.wait_connected(1);
    let mut l = Listener::new(&a, &["from-psql"]);
    let stop = std::sync::atomic::AtomicBool::new(false);
    let queue = a.queue();
    let heard = std::thread::scope(|s| {
        s.spawn(|| {
            let mut c = hark::Connection::open(&queue).unwrap();
            let mut t = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                c.notify("ev", &t.to_string()).unwrap();
                t += 1;
                if t.is_multiple_of(4) {
                    std::thread::sleep(Duration::from_micros(50));
                }
            }
        });
        std::thread::sleep(Duration::from_millis(300));
        pg.psql("NOTIFY \"from-psql\", 'hello'");
        let heard = l.until(5, |g| !g.is_empty());
        stop.store(true, std::sync::atomic::Ordering::SeqCst);
        heard
    });
    assert!(heard, "the psql notification waited for the stream to pause; log:\n{}", a.log());
}
