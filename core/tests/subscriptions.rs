//! Durable subscriptions: a named consumer keeps its place across restarts and crashes, is told
//! of every gap, and under the cut policy never stalls the notifiers (real processes, SIGKILL and
//! SIGSTOP).

mod common;

use common::{agent_role, say, spawn, TempDir};
use hark::{AckMode, Connection, ErrorKind, Event, Options, SubscribeOptions};
use std::time::{Duration, Instant, SystemTime};

#[test]
fn agent() {
    let Some((role, a)) = agent_role() else { return };
    match role.as_str() {
        // consume DIR NAME explicit|auto: attaches and prints "R <payload>" per notification,
        // acknowledging each (explicitly, after printing "R"; or by the next receive), then
        // "A <payload>" once acknowledged explicitly. Runs until killed.
        "consume" => {
            let mut c = Connection::open(&a[0]).unwrap();
            let auto = a[2] == "auto";
            let opts = SubscribeOptions::new()
                .ack(if auto { AckMode::Auto } else { AckMode::Explicit })
                .wait(Duration::from_secs(10));
            c.subscribe(&a[1], &["work"], &opts).unwrap();
            say("READY");
            loop {
                c.wait(None).unwrap();
                while let Some(n) = c.notifies().unwrap() {
                    say(&format!("R {}", n.payload));
                    if !auto {
                        c.ack(n.position).unwrap();
                        say(&format!("A {}", n.payload));
                    }
                }
            }
        }
        // print DIR listen|subscribe: listens on "c" (or attaches subscription "s" to it) and
        // prints "N <payload>" per notification and "GAP <skipped>" per gap. Runs until killed.
        "print" => {
            let mut c = Connection::open(&a[0]).unwrap();
            if a[1] == "listen" {
                c.listen("c").unwrap();
            } else {
                c.subscribe("s", &["c"], &SubscribeOptions::new().ack(AckMode::Auto)).unwrap();
            }
            say("READY");
            loop {
                c.wait(None).unwrap();
                while let Some(e) = c.next_event().unwrap() {
                    match e {
                        Event::Notification(n) => say(&format!("N {}", n.payload)),
                        Event::Gap(g) => say(&format!("GAP {}", g.skipped)),
                    }
                }
            }
        }
        // attach DIR NAME: attaches to subscription NAME on "c" and "d" (parking halfway through
        // writing its channels under HARK_FAULT_PARK_IN_NAMES, until killed).
        "attach" => {
            let mut c = Connection::open(&a[0]).unwrap();
            c.subscribe(&a[1], &["c", "d"], &SubscribeOptions::new()).unwrap();
            say("ATTACHED");
        }
        other => panic!("unknown role {other}"),
    }
}

fn payloads(c: &mut Connection) -> Vec<String> {
    std::iter::from_fn(|| c.notifies().unwrap()).map(|n| n.payload).collect()
}

#[test]
fn a_subscription_resumes_where_it_acknowledged() {
    let t = TempDir::new("sub-resume");
    let q = t.queue();
    let mut app = Connection::open(&q).unwrap();
    let mut w = Connection::open(&q).unwrap();
    w.subscribe("mailer", &["orders"], &SubscribeOptions::new()).unwrap();
    assert_eq!(w.subscription(), Some("mailer"));
    app.notify("orders", "1").unwrap();
    app.notify("other", "x").unwrap();
    app.notify("orders", "2").unwrap();
    let got: Vec<_> = std::iter::from_fn(|| w.notifies().unwrap()).collect();
    assert_eq!(got.iter().map(|n| n.payload.as_str()).collect::<Vec<_>>(), ["1", "2"]);
    assert!(got[0].position < got[1].position && got[0].txn < got[1].txn);
    let age = SystemTime::now().duration_since(got[0].commit_time).unwrap();
    assert!(age < Duration::from_secs(60), "commit time is the commit's: {age:?}");
    w.ack(got[0].position).unwrap();
    drop(w); // a restart: "2" was received, not acknowledged
    app.notify("orders", "3").unwrap(); // committed while nobody is attached
    let mut w = Connection::open(&q).unwrap();
    w.subscribe("mailer", &["orders"], &SubscribeOptions::new()).unwrap();
    let again: Vec<_> = std::iter::from_fn(|| w.notifies().unwrap()).collect();
    assert_eq!(again.iter().map(|n| n.payload.as_str()).collect::<Vec<_>>(), ["2", "3"]);
    assert_eq!(again[0].position, got[1].position, "the same notification, at the same position");
    // Acknowledging the last acknowledges all before it; an old position is accepted.
    w.ack(again[1].position).unwrap();
    w.ack(got[0].position).unwrap();
    let e = w.ack(again[1].position + 4096).unwrap_err();
    assert_eq!((e.kind(), e.sqlstate()), (ErrorKind::InvalidArgument, "22023"));
    w.detach().unwrap();
    w.subscribe("mailer", &["orders"], &SubscribeOptions::new()).unwrap();
    assert!(payloads(&mut w).is_empty());
}

#[test]
fn automatic_acknowledgement_redelivers_only_the_notification_in_hand() {
    let t = TempDir::new("sub-auto");
    let q = t.queue();
    let mut app = Connection::open(&q).unwrap();
    let opts = SubscribeOptions::new().ack(AckMode::Auto);
    let mut w = Connection::open(&q).unwrap();
    w.subscribe("s", &["c"], &opts).unwrap();
    for i in 0..5 {
        app.notify("c", &i.to_string()).unwrap();
    }
    assert_eq!(w.notifies().unwrap().unwrap().payload, "0");
    assert_eq!(w.notifies().unwrap().unwrap().payload, "1"); // acknowledges "0"
    drop(w); // "1" in hand
    let mut w = Connection::open(&q).unwrap();
    w.subscribe("s", &["c"], &opts).unwrap();
    assert_eq!(payloads(&mut w), ["1", "2", "3", "4"]);
}

/// A wait too long to reach a deadline (`Duration::MAX`, C's `wait_ms` of 2^64-1, Python's
/// `wait=1e19`) waits for the other session, without a panic.
#[test]
fn a_wait_too_long_for_a_deadline_waits_without_a_panic() {
    let t = TempDir::new("sub-wait-max");
    let q = t.queue();
    let mut a = Connection::open(&q).unwrap();
    a.subscribe("s", &["c"], &SubscribeOptions::new()).unwrap();
    let mut b = Connection::open(&q).unwrap();
    let waiter = std::thread::spawn(move || {
        b.subscribe("s", &["c"], &SubscribeOptions::new().wait(Duration::MAX))
            .map(|()| b.subscription().map(str::to_owned))
    });
    std::thread::sleep(Duration::from_millis(100));
    drop(a);
    assert_eq!(waiter.join().expect("no panic").unwrap().as_deref(), Some("s"));
}

/// A session killed while an attach rewrites the subscription's channels (holding the tail lock)
/// leaves the subscription findable: the next attach resumes it, never creates a second one of
/// the same name (which no one could drop, and which would hold the queue back for ever).
#[test]
fn a_session_killed_inside_an_attach_leaves_one_subscription() {
    let t = TempDir::new("sub-killed-attach");
    let q = t.queue();
    let mut app = Connection::open(&q).unwrap();
    let mut w = Connection::open(&q).unwrap();
    w.subscribe("s", &["c"], &SubscribeOptions::new()).unwrap();
    w.detach().unwrap();
    app.notify("c", "while detached").unwrap();
    let marker = t.path().join("parked");
    let m = marker.clone();
    let mut attacher = common::spawn_via(&[], "attach", &[q.display().to_string(), "s".into()], move |c| {
        c.env("HARK_FAULT_PARK_IN_NAMES", &m);
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the attach never parked");
        std::thread::sleep(Duration::from_millis(5));
    }
    attacher.kill();
    w.subscribe("s", &["c"], &SubscribeOptions::new()).unwrap();
    assert_eq!(payloads(&mut w), ["while detached"], "the same subscription, at its position");
    assert_eq!(app.subscriptions().unwrap().len(), 1, "one subscription named s");
    w.unsubscribe("s").unwrap();
    assert!(app.subscriptions().unwrap().is_empty());
}

/// A consumer killed while attached leaves its wake-up socket's file behind; the next attach
/// removes it (a listener's is removed when its slot is reaped, but a subscription's slot never
/// is), so that a consumer restarted after every crash does not fill the directory.
#[test]
fn a_killed_consumers_socket_file_goes_at_the_next_attach() {
    let t = TempDir::new("sub-sockfile");
    let q = t.queue();
    let sockets = || {
        std::fs::read_dir(&q)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().starts_with("w."))
            .count()
    };
    for _ in 0..3 {
        let mut consumer = spawn("consume", &[q.display().to_string(), "s".into(), "explicit".into()]);
        consumer.expect("READY");
        consumer.kill();
    }
    let mut w = Connection::open(&q).unwrap();
    w.subscribe("s", &["work"], &SubscribeOptions::new()).unwrap();
    assert_eq!(sockets(), 1, "only the attached session's socket file is left");
}

#[test]
fn one_session_is_attached_at_a_time_and_a_second_may_wait() {
    let t = TempDir::new("sub-busy");
    let q = t.queue();
    let mut a = Connection::open(&q).unwrap();
    a.subscribe("s", &["c"], &SubscribeOptions::new()).unwrap();
    let mut b = Connection::open(&q).unwrap();
    let e = b.subscribe("s", &["c"], &SubscribeOptions::new()).unwrap_err();
    assert_eq!((e.kind(), e.sqlstate()), (ErrorKind::InUse, "55006"));
    assert!(e.message().contains(&a.backend_pid().to_string()), "{}", e.message());
    let waiter = std::thread::spawn(move || {
        let start = Instant::now();
        b.subscribe("s", &["c"], &SubscribeOptions::new().wait(Duration::from_secs(10))).unwrap();
        start.elapsed()
    });
    std::thread::sleep(Duration::from_millis(200));
    drop(a);
    assert!(waiter.join().unwrap() >= Duration::from_millis(150));
    // Listening and subscribing exclude each other in one session.
    let mut l = Connection::open(&q).unwrap();
    l.listen("c").unwrap();
    assert_eq!(l.subscribe("t", &["c"], &SubscribeOptions::new()).unwrap_err().sqlstate(), "55000");
    let mut s = Connection::open(&q).unwrap();
    s.subscribe("t", &["c"], &SubscribeOptions::new()).unwrap();
    assert_eq!(s.listen("c").unwrap_err().sqlstate(), "55000");
    assert_eq!(s.execute("LISTEN c").unwrap_err().sqlstate(), "55000");
    assert_eq!(s.subscription(), Some("t"));
    s.notify("c", "a subscriber may notify").unwrap();
}

#[test]
fn unlisten_in_a_subscribed_session_leaves_the_subscription_alone() {
    let t = TempDir::new("sub-unlisten");
    let q = t.queue();
    let mut app = Connection::open(&q).unwrap();
    let mut w = Connection::open(&q).unwrap();
    w.listen("x").unwrap();
    w.unlisten_all().unwrap(); // the session has listened before
    w.subscribe("s", &["c"], &SubscribeOptions::new()).unwrap();
    w.execute("UNLISTEN *; UNLISTEN c").unwrap();
    w.execute("DISCARD ALL").unwrap();
    app.notify("c", "still here").unwrap();
    assert_eq!(payloads(&mut w), ["still here"]);
    assert_eq!(app.subscriptions().unwrap().len(), 1);
}

#[test]
fn unsubscribe_drops_and_bad_input_is_refused() {
    let t = TempDir::new("sub-drop");
    let q = t.queue();
    let mut app = Connection::open(&q).unwrap();
    let mut w = Connection::open(&q).unwrap();
    w.subscribe("s", &["c"], &SubscribeOptions::new()).unwrap();
    let mut other = Connection::open(&q).unwrap();
    assert_eq!(other.unsubscribe("s").unwrap_err().sqlstate(), "55006");
    let subs = app.subscriptions().unwrap();
    assert_eq!(subs.len(), 1);
    assert_eq!(subs[0].subscription.as_deref(), Some("s"));
    assert_eq!(subs[0].channel_names.as_deref(), Some(&["c".to_owned()][..]));
    w.unsubscribe("s").unwrap();
    assert!(app.subscriptions().unwrap().is_empty());
    assert_eq!(w.unsubscribe("s").unwrap_err().sqlstate(), "42704");
    let e = w.subscribe("s", &["c"], &SubscribeOptions::new().create(false)).unwrap_err();
    assert_eq!((e.sqlstate(), e.message()), ("42704", "subscription \"s\" does not exist"));
    for (name, chans) in [("", &["c"][..]), ("s", &[][..]), ("s", &[""][..]), ("n\nl", &["c"][..])] {
        assert_eq!(w.subscribe(name, chans, &SubscribeOptions::new()).unwrap_err().kind(), ErrorKind::InvalidArgument);
    }
    app.begin().unwrap();
    assert_eq!(app.subscribe("x", &["c"], &SubscribeOptions::new()).unwrap_err().sqlstate(), "25001");
}

#[test]
fn patterns_receive_matching_channels_only() {
    let t = TempDir::new("sub-patterns");
    let q = t.queue();
    let mut app = Connection::open(&q).unwrap();
    let mut w = Connection::open(&q).unwrap();
    w.subscribe("p", &["orders.*", "exact"], &SubscribeOptions::new()).unwrap();
    let mut all = Connection::open(&q).unwrap();
    all.subscribe("all", &["*"], &SubscribeOptions::new()).unwrap();
    for (c, p) in [("orders.paid", "1"), ("orders", "no"), ("users.new", "no"), ("exact", "2"), ("orders.x", "3")] {
        app.notify(c, p).unwrap();
    }
    // Woken through the prefix bucket, not by polling.
    assert!(w.wait(Some(Duration::from_secs(5))).unwrap());
    assert_eq!(payloads(&mut w), ["1", "2", "3"]);
    assert_eq!(payloads(&mut all).len(), 5);
    // A plain LISTEN on a name with '*' stays an exact channel.
    let mut l = Connection::open(&q).unwrap();
    l.listen("orders.*").unwrap();
    app.notify("orders.y", "no").unwrap();
    app.notify("orders.*", "literal").unwrap();
    assert_eq!(payloads(&mut l), ["literal"]);
}

#[test]
fn a_subscription_past_its_lag_limit_gets_one_gap_then_what_follows() {
    let t = TempDir::new("sub-gap");
    let q = t.queue();
    let opts = Options::new().segment_size(64 << 10).max_queue_size(4 << 20);
    let mut app = Connection::with_options(&q, &opts).unwrap();
    let limit = 100_000u64;
    let sub_opts = SubscribeOptions::new().max_lag_bytes(limit);
    let mut w = Connection::open(&q).unwrap();
    w.subscribe("g", &["c"], &sub_opts).unwrap();
    w.detach().unwrap();
    let payload = "x".repeat(200);
    let total = 2000; // ~480 KB: far past the limit, crossing several segments
    for i in 0..total {
        app.begin().unwrap();
        app.notify("c", &format!("{i} {payload}")).unwrap();
        app.notify("noise", "n").unwrap();
        app.commit().unwrap();
    }
    let mut w = Connection::open(&q).unwrap();
    w.subscribe("g", &["c"], &sub_opts).unwrap();
    let mut events = Vec::new();
    while let Some(e) = w.next_event().unwrap() {
        events.push(e);
    }
    let Event::Gap(gap) = &events[0] else { panic!("first comes the gap: {:?}", events.first()) };
    let rest: Vec<u64> = events[1..]
        .iter()
        .map(|e| match e {
            Event::Notification(n) => n.payload.split(' ').next().unwrap().parse().unwrap(),
            Event::Gap(g) => panic!("one gap only, got another {g:?}"),
        })
        .collect();
    assert_eq!(gap.skipped + rest.len() as u64, total, "every notification is received or counted");
    let first_after = gap.skipped;
    assert_eq!(rest, (first_after..total).collect::<Vec<_>>(), "then exactly the notifications after it");
    assert!(gap.last_txn >= gap.first_txn);
    assert!((rest.len() as u64) * 240 <= limit + (64 << 10), "cut to within the limit (plus a segment)");
}

#[test]
fn notifications_carry_position_commit_order_and_time() {
    let t = TempDir::new("sub-meta");
    let q = t.queue();
    let mut app = Connection::open(&q).unwrap();
    let mut l = Connection::open(&q).unwrap();
    l.listen("c").unwrap();
    let before = SystemTime::now();
    app.begin().unwrap();
    app.notify("c", "a").unwrap();
    app.notify("c", "b").unwrap();
    app.commit().unwrap();
    app.notify("c", "c").unwrap();
    let n: Vec<_> = std::iter::from_fn(|| l.notifies().unwrap()).collect();
    assert_eq!(n[0].txn, n[1].txn, "one transaction, one commit number");
    assert_eq!(n[2].txn, n[1].txn + 1);
    assert!(n[0].position < n[1].position && n[1].position < n[2].position);
    assert_eq!(n[0].commit_time, n[1].commit_time);
    assert!(n[0].commit_time >= before - Duration::from_millis(5) && n[2].commit_time <= SystemTime::now());
    let stats = app.queue().stats().unwrap();
    let me = stats.listeners.iter().find(|s| s.pid == l.backend_pid()).unwrap();
    assert_eq!((me.lag_notifications, me.channel_names.clone()), (0, Some(vec!["c".to_owned()])));
}

/// Waits until process `pid` is stopped (a signal is delivered asynchronously).
fn wait_stopped(pid: u32) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let state = stat.rsplit(')').next().unwrap().split_whitespace().next().unwrap();
        if state == "T" {
            return;
        }
        assert!(Instant::now() < deadline, "process {pid} did not stop");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Payload numbers of the `tag` lines an agent printed.
fn numbers(lines: &[String], tag: &str) -> Vec<u64> {
    lines.iter().filter_map(|l| l.strip_prefix(tag)).map(|n| n.trim().parse().unwrap()).collect()
}

fn soak_secs() -> u64 {
    std::env::var("HARK_SOAK_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(6)
}

/// Starts a consumer of subscription "k" and a thread that passes its lines on as they come (a
/// consumer blocked on a full pipe would fall behind) and waits for it once its output ends.
fn consumer(qs: &str, mode: &str) -> (i32, std::sync::mpsc::Receiver<String>, std::thread::JoinHandle<()>) {
    let mut agent = spawn("consume", &[qs.into(), "k".into(), mode.into()]);
    agent.expect("READY");
    let pid = agent.child.id() as i32;
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        while let Some(l) = agent.line() {
            if tx.send(l).is_err() {
                break;
            }
        }
        let _ = agent.child.wait();
    });
    (pid, rx, reader)
}

/// Kills a consumer at random moments while a notifier commits: each restart resumes at or
/// after the last acknowledged notification and at or before the first one not received, so
/// the union of what was received is everything, in order, and duplicates are bounded.
fn kill_loop(mode: &str) {
    let t = TempDir::new(&format!("sub-kill-{mode}"));
    let q = t.queue();
    let qs = q.display().to_string();
    let mut app = Connection::open(&q).unwrap();
    let mut setup = Connection::open(&q).unwrap();
    setup.subscribe("k", &["work"], &SubscribeOptions::new()).unwrap();
    drop(setup);
    let total = Instant::now() + Duration::from_secs(soak_secs());
    let mut sent = 0u64;
    let mut runs: Vec<Vec<String>> = Vec::new();
    let mut seed = 0x9e37_79b9u64;
    while Instant::now() < total {
        let (pid, lines, reader) = consumer(&qs, mode);
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
        let life = Duration::from_millis(20 + (seed >> 33) % 200);
        let until = Instant::now() + life;
        while Instant::now() < until {
            // Paced, so that consumers keep up and are killed amid a stream, not a backlog.
            for _ in 0..20 {
                app.notify("work", &sent.to_string()).unwrap();
                sent += 1;
            }
            std::thread::sleep(Duration::from_micros(500));
        }
        // SAFETY: kill has no memory-safety preconditions; the reader waits for the child, so
        // its pid is not reused before this.
        unsafe { libc::kill(pid, libc::SIGKILL) };
        reader.join().unwrap();
        runs.push(lines.iter().collect());
    }
    // A last consumer drains the rest (its lines read by a thread, so that a consumer that
    // stops short fails the test with what it got instead of hanging it). One more notification
    // gives it something to receive when the killed ones acknowledged everything.
    app.notify("work", &sent.to_string()).unwrap();
    sent += 1;
    let (pid, rx, reader) = consumer(&qs, mode);
    let mut last = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while numbers(&last, "R ").last() != Some(&(sent - 1)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => last.push(l),
            Err(_) => panic!(
                "the last consumer did not drain the queue: sent {sent}, got {:?}, stats {:?}",
                last.iter().rev().take(3).collect::<Vec<_>>(),
                app.subscriptions()
            ),
        }
    }
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    drop(rx);
    reader.join().unwrap();
    runs.push(last);

    let mut next = 0u64; // everything before it was received by some run
    let mut acked = 0u64; // everything before it was acknowledged
    let mut duplicates = 0u64;
    for (k, run) in runs.iter().enumerate() {
        let got = numbers(run, "R ");
        let Some(&first) = got.first() else { continue };
        assert!(first <= next, "run {k} started at {first}: notifications {next}..{first} were lost");
        assert!(first >= acked, "run {k} started at {first}, before the acknowledged {acked}");
        assert!(got.windows(2).all(|w| w[1] == w[0] + 1), "run {k}: out of order or holes: {got:?}");
        duplicates += next - first;
        if mode == "auto" {
            assert!(next - first <= 1, "auto: only the notification in hand comes again ({first} after {next})");
        }
        next = next.max(got.last().unwrap() + 1);
        acked = match numbers(run, "A ").last() {
            Some(&a) => a + 1,
            None if mode == "auto" => first, // the next receive acknowledged up to its predecessor
            None => acked,
        }
        .max(acked);
    }
    assert_eq!(next, sent, "everything committed was received");
    eprintln!("{mode}: {sent} notifications, {} consumer runs killed, {duplicates} received twice", runs.len() - 1);
}

#[test]
fn sigkilled_explicit_consumers_lose_nothing() {
    kill_loop("explicit");
}

#[test]
fn sigkilled_auto_consumers_lose_nothing_and_repeat_at_most_one() {
    kill_loop("auto");
}

/// Under the cut policy a stopped listener and a stopped subscriber never stall notifiers: the
/// queue fills, they are cut, commits go on; once continued, each receives exactly one gap, with
/// the right count, then what followed.
#[test]
fn stopped_readers_are_cut_instead_of_stalling_notifiers() {
    let t = TempDir::new("sub-cut");
    let q = t.queue();
    let qs = q.display().to_string();
    let opts = Options::new().segment_size(64 << 10).max_queue_size(512 << 10).cut_laggards(true);
    let mut app = Connection::with_options(&q, &opts).unwrap();
    let mut readers: Vec<_> = ["listen", "subscribe"]
        .iter()
        .map(|how| {
            let mut a = spawn("print", &[qs.clone(), (*how).into()]);
            a.expect("READY");
            a
        })
        .collect();
    let before = 50u64;
    for i in 0..before {
        app.notify("c", &i.to_string()).unwrap();
    }
    // Let them read those, then stop them.
    let mut seen: Vec<Vec<String>> = vec![Vec::new(), Vec::new()];
    for (r, s) in readers.iter_mut().zip(seen.iter_mut()) {
        while numbers(s, "N ").len() < before as usize {
            s.push(r.line().unwrap());
        }
        // SAFETY: kill has no memory-safety preconditions.
        unsafe { libc::kill(r.child.id() as i32, libc::SIGSTOP) };
        wait_stopped(r.child.id());
    }
    // Six times the queue's size: without the cut, COMMIT would fail with 54000.
    let pad = "p".repeat(100);
    let total = 20_000u64;
    for i in before..total {
        app.notify("c", &format!("{i} {pad}")).unwrap();
    }
    for r in &readers {
        // SAFETY: as above.
        unsafe { libc::kill(r.child.id() as i32, libc::SIGCONT) };
    }
    app.notify("c", &format!("{total} last")).unwrap();
    for (k, (r, s)) in readers.iter_mut().zip(seen.iter_mut()).enumerate() {
        loop {
            let l = r.line().unwrap();
            let done = l.ends_with(" last");
            s.push(l);
            if done {
                break;
            }
        }
        r.kill();
        let gaps: Vec<u64> = numbers(s, "GAP ");
        assert_eq!(gaps.len(), 1, "reader {k}: exactly one gap: {:?}", &s[..s.len().min(5)]);
        let gap_at = s.iter().position(|l| l.starts_with("GAP")).unwrap();
        let after: Vec<u64> = s[gap_at + 1..]
            .iter()
            .map(|l| l[2..].split(' ').next().unwrap().parse().unwrap_or_else(|_| panic!("reader {k}: line {l:?}")))
            .collect();
        let resumed = after[0];
        assert_eq!(numbers(&s[..gap_at], "N "), (0..before).collect::<Vec<_>>(), "reader {k}: what came before");
        assert_eq!(gaps[0], resumed - before, "reader {k}: the gap counts exactly what was skipped");
        assert_eq!(after, (resumed..=total).collect::<Vec<_>>(), "reader {k}: then everything after it");
    }
}
