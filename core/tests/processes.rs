//! Real processes on one queue: delivery across processes, concurrent notifiers, and processes
//! killed with SIGKILL at random points (and inside the append, holding the writer lock).

mod common;

use common::{agent_role, say, spawn, Agent, TempDir};
use hark::{Connection, Options};
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

// ----- agents (run in child processes) --------------------------------------------------------

#[test]
fn agent() {
    let Some((role, a)) = agent_role() else { return };
    match role.as_str() {
        // listen DIR CHANNELS STOP_PAYLOAD: prints READY, then "N channel payload pid" lines
        // until a notification carries STOP_PAYLOAD.
        "listen" => {
            let mut c = Connection::open(&a[0]).unwrap();
            for ch in a[1].split(',') {
                c.listen(ch).unwrap();
            }
            say("READY");
            loop {
                assert!(c.wait(Some(Duration::from_secs(60))).unwrap(), "listener timed out");
                while let Some(n) = c.notifies().unwrap() {
                    say(&format!("N {} {} {}", n.channel, n.payload, n.pid));
                    if n.payload == a[2] {
                        std::process::exit(0);
                    }
                }
            }
        }
        // notify DIR ID TXNS PER_TXN ROLLBACK_EVERY CHANNEL: payloads "ID:t:k"; rolled-back ones
        // "rb:ID:t:k"; prints "C t" after each commit.
        "notify" => {
            let mut c = Connection::open(&a[0]).unwrap();
            let (txns, per, rb_every): (u64, u64, u64) =
                (a[2].parse().unwrap(), a[3].parse().unwrap(), a[4].parse().unwrap());
            for t in 0..txns {
                let rollback = rb_every > 0 && t % rb_every == rb_every - 1;
                c.begin().unwrap();
                for k in 0..per {
                    let p = if rollback { format!("rb:{}:{t}:{k}", a[1]) } else { format!("{}:{t}:{k}", a[1]) };
                    c.notify(&a[5], &p).unwrap();
                }
                if rollback {
                    c.rollback().unwrap();
                } else {
                    c.commit().unwrap();
                    say(&format!("C {t}"));
                }
            }
            say("DONE");
        }
        // chaos-notify DIR ID CHANNEL: commits forever (3 notifications per transaction, a
        // rolled-back savepoint inside, every 4th transaction rolled back), "C t" after commits.
        "chaos-notify" => {
            let mut c = Connection::open(&a[0]).unwrap();
            for t in 0u64.. {
                c.execute("BEGIN").unwrap();
                c.notify(&a[2], &format!("{}:{t}:0", a[1])).unwrap();
                c.execute("SAVEPOINT s").unwrap();
                c.notify(&a[2], &format!("rb:{}:{t}:sp", a[1])).unwrap();
                c.execute("ROLLBACK TO SAVEPOINT s").unwrap();
                c.notify(&a[2], &format!("{}:{t}:1", a[1])).unwrap();
                c.notify(&a[2], &format!("{}:{t}:2", a[1])).unwrap();
                if t % 4 == 3 {
                    c.notify(&a[2], &format!("rb:{}:{t}:x", a[1])).unwrap();
                    c.execute("ROLLBACK").unwrap();
                } else {
                    c.execute("COMMIT").unwrap();
                    say(&format!("C {t}"));
                }
            }
        }
        // chaos-listen DIR CHANNEL: listens and reads forever (to be killed at any point).
        "chaos-listen" => {
            let mut c = Connection::open(&a[0]).unwrap();
            c.listen(&a[1]).unwrap();
            say("READY");
            loop {
                c.wait(Some(Duration::from_millis(100))).unwrap();
                while c.notifies().unwrap().is_some() {}
            }
        }
        // sessions DIR N TAG GO_FILE: once GO_FILE exists (at once if empty), opens N sessions,
        // each notifying "c" with "TAG:k", and prints "PIDS os p0 p1 …" (all still open).
        "sessions" => {
            let deadline = Instant::now() + Duration::from_secs(30);
            while !a[3].is_empty() && !std::path::Path::new(&a[3]).exists() {
                assert!(Instant::now() < deadline, "no go file");
                std::thread::sleep(Duration::from_millis(5));
            }
            let n: usize = a[1].parse().unwrap();
            let mut all: Vec<Connection> = (0..n).map(|_| Connection::open(&a[0]).unwrap()).collect();
            let mut line = format!("PIDS {}", std::process::id());
            for (k, c) in all.iter_mut().enumerate() {
                c.notify("c", &format!("{}:{k}", a[2])).unwrap();
                line.push_str(&format!(" {}", c.backend_pid()));
            }
            say(&line);
        }
        other => panic!("unknown agent role {other}"),
    }
}

fn s(v: &[&dyn ToString]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// Collects an agent's lines on a thread, so that a chatty agent never blocks on its pipe.
fn collect(mut a: Agent) -> (Arc<Mutex<Vec<String>>>, JoinHandle<Agent>, u32) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let l2 = lines.clone();
    let pid = a.child.id();
    let h = std::thread::spawn(move || {
        while let Some(l) = a.line() {
            l2.lock().unwrap().push(l);
        }
        a
    });
    (lines, h, pid)
}

/// A notification as listeners print it: (channel, payload, pid).
fn parse_n(line: &str) -> Option<(String, String, i32)> {
    let rest = line.strip_prefix("N ")?;
    let mut it = rest.splitn(2, ' ');
    let ch = it.next()?.to_owned();
    let rest = it.next()?;
    let (payload, pid) = rest.rsplit_once(' ')?;
    Some((ch, payload.to_owned(), pid.parse().ok()?))
}

// ----- tests ----------------------------------------------------------------------------------

#[test]
fn delivery_between_processes_with_sender_pid() {
    let t = TempDir::new("xproc");
    let q = t.queue().display().to_string();
    let mut l = spawn("listen", &s(&[&q, &"events", &"STOP"]));
    l.expect("READY");
    let n = spawn("notify", &s(&[&q, &"n1", &5, &2, &0, &"events"]));
    let n_pid = n.child.id() as i32;
    let out = n.finish();
    assert_eq!(out.last().unwrap(), "DONE");
    Connection::open(&q).unwrap().notify("events", "STOP").unwrap();
    let got: Vec<_> = l.finish().iter().filter_map(|x| parse_n(x)).collect();
    let want: Vec<String> =
        (0..5).flat_map(|t| (0..2).map(move |k| format!("n1:{t}:{k}"))).chain(["STOP".into()]).collect();
    assert_eq!(got.iter().map(|g| g.1.clone()).collect::<Vec<_>>(), want);
    assert!(got[..10].iter().all(|g| g.0 == "events" && g.2 == n_pid));
}

#[test]
fn concurrent_notifiers_exactly_once_in_one_commit_order() {
    let t = TempDir::new("conc");
    let qp = t.queue();
    // Small segments so that the run crosses many of them and truncation runs concurrently.
    drop(Connection::with_options(&qp, &Options::new().segment_size(64 << 10).max_queue_size(64 << 20)).unwrap());
    let q = qp.display().to_string();
    let mut listeners: Vec<Agent> = (0..2).map(|_| spawn("listen", &s(&[&q, &"c", &"STOP"]))).collect();
    for l in &mut listeners {
        l.expect("READY");
    }
    let (txns, per) = (400, 4);
    let notifiers: Vec<Agent> =
        (0..4).map(|i| spawn("notify", &s(&[&q, &format!("n{i}"), &txns, &per, &5, &"c"]))).collect();
    let mut committed: HashMap<String, HashSet<u64>> = HashMap::new();
    for (i, n) in notifiers.into_iter().enumerate() {
        let out = n.finish();
        let set = out.iter().filter_map(|l| l.strip_prefix("C ")).map(|t| t.parse().unwrap()).collect();
        committed.insert(format!("n{i}"), set);
    }
    Connection::open(&q).unwrap().notify("c", "STOP").unwrap();
    let streams: Vec<Vec<String>> =
        listeners.into_iter().map(|l| l.finish().iter().filter_map(|x| parse_n(x)).map(|n| n.1).collect()).collect();
    assert_eq!(streams[0], streams[1], "listeners disagree on the global order");
    let stream = &streams[0];
    assert_eq!(stream.last().unwrap(), "STOP");
    let mut seen: HashMap<String, Vec<(u64, u64)>> = HashMap::new();
    for (idx, p) in stream[..stream.len() - 1].iter().enumerate() {
        assert!(!p.starts_with("rb:"), "rolled-back notification delivered: {p}");
        let f: Vec<&str> = p.split(':').collect();
        let (t, k): (u64, u64) = (f[1].parse().unwrap(), f[2].parse().unwrap());
        // A transaction's notifications are contiguous in the stream, in send order.
        if k > 0 {
            assert_eq!(stream[idx - 1], format!("{}:{t}:{}", f[0], k - 1));
        }
        seen.entry(f[0].to_owned()).or_default().push((t, k));
    }
    for (id, ts) in &committed {
        assert_eq!(ts.len(), txns as usize - txns as usize / 5);
        let got = &seen[id];
        let want: Vec<(u64, u64)> =
            (0..txns).filter(|t| ts.contains(t)).flat_map(|t| (0..per).map(move |k| (t, k))).collect();
        assert_eq!(got, &want, "notifier {id}: lost, duplicated or reordered");
    }
}

#[test]
fn sigkill_at_random_points_loses_nothing_committed_and_the_queue_drains() {
    let t = TempDir::new("chaos");
    let qp = t.queue();
    drop(Connection::with_options(&qp, &Options::new().segment_size(64 << 10).max_queue_size(32 << 20)).unwrap());
    let q = qp.display().to_string();
    let secs: u64 = std::env::var("HARK_CHAOS_SECS").ok().and_then(|s| s.parse().ok()).unwrap_or(6);

    let mut survivor = spawn("listen", &s(&[&q, &"c", &"STOP"]));
    survivor.expect("READY");
    let (survivor_lines, survivor_h, _) = collect(survivor);

    struct Running {
        id: String,
        lines: Arc<Mutex<Vec<String>>>,
        h: JoinHandle<Agent>,
        pid: u32,
    }
    let mut next = 0;
    let mut start = |role: &str| {
        next += 1;
        let id = format!("{}{next}", if role == "chaos-notify" { "n" } else { "l" });
        let args = if role == "chaos-notify" { s(&[&q, &id, &"c"]) } else { s(&[&q, &"c"]) };
        let (lines, h, pid) = collect(spawn(role, &args));
        Running { id, lines, h, pid }
    };
    let mut notifiers: Vec<Running> = (0..3).map(|_| start("chaos-notify")).collect();
    let mut victims: Vec<Running> = (0..2).map(|_| start("chaos-listen")).collect();
    let mut done_notifiers = Vec::new();
    let mut kills = 0;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ std::process::id() as u64;
    let mut rand = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10 + rand(60)));
        let pick_notifier = rand(3) != 0;
        let pool = if pick_notifier { &mut notifiers } else { &mut victims };
        let r = pool.swap_remove(rand(pool.len() as u64) as usize);
        // SAFETY: plain kill(2) of our own child.
        unsafe { libc::kill(r.pid as i32, libc::SIGKILL) };
        kills += 1;
        let mut a = r.h.join().unwrap();
        let _ = a.child.wait();
        if pick_notifier {
            done_notifiers.push((r.id, r.lines));
            notifiers.push(start("chaos-notify"));
        } else {
            victims.push(start("chaos-listen"));
        }
    }
    for r in notifiers.into_iter().chain(victims) {
        unsafe { libc::kill(r.pid as i32, libc::SIGKILL) };
        let mut a = r.h.join().unwrap();
        let _ = a.child.wait();
        if r.id.starts_with('n') {
            done_notifiers.push((r.id, r.lines));
        }
    }
    // Every survivor-visible effect of the dead is in place; one more commit ends the run.
    Connection::open(&q).unwrap().notify("c", "STOP").unwrap();
    let survivor = survivor_h.join().unwrap();
    let _ = survivor.finish();
    let stream: Vec<String> = survivor_lines.lock().unwrap().iter().filter_map(|x| parse_n(x)).map(|n| n.1).collect();
    assert_eq!(stream.last().map(String::as_str), Some("STOP"));

    let mut by_id: HashMap<&str, Vec<(u64, u64)>> = HashMap::new();
    for (idx, p) in stream[..stream.len() - 1].iter().enumerate() {
        assert!(!p.starts_with("rb:"), "rolled-back notification delivered: {p}");
        let f: Vec<&str> = p.split(':').collect();
        let (t, k): (u64, u64) = (f[1].parse().unwrap(), f[2].parse().unwrap());
        if k > 0 {
            assert_eq!(stream[idx - 1], format!("{}:{t}:{}", f[0], k - 1), "transaction split");
        }
        by_id.entry(f[0]).or_default().push((t, k));
    }
    let mut checked = 0;
    let mut total_commits = 0;
    for (id, lines) in &done_notifiers {
        let confirmed: Vec<u64> =
            lines.lock().unwrap().iter().filter_map(|l| l.strip_prefix("C ")).map(|t| t.parse().unwrap()).collect();
        total_commits += confirmed.len();
        let got = by_id.remove(id.as_str()).unwrap_or_default();
        let txns: Vec<u64> = got.iter().filter(|x| x.1 == 0).map(|x| x.0).collect();
        // Whole transactions only, each once, in commit order.
        assert_eq!(got.len(), txns.len() * 3, "{id}: partial transaction delivered");
        assert!(txns.windows(2).all(|w| w[0] < w[1]), "{id}: duplicated or reordered");
        // Everything confirmed arrived; at most the one transaction in flight at the kill
        // (committed, then killed before saying so) arrived unconfirmed.
        for t in &confirmed {
            assert!(txns.contains(t), "{id}: committed transaction {t} lost");
        }
        let extra: Vec<_> = txns.iter().filter(|t| !confirmed.contains(t)).collect();
        assert!(extra.len() <= 1, "{id}: unconfirmed transactions {extra:?}");
        if let Some(&&e) = extra.first() {
            let mut next = confirmed.iter().max().map_or(0, |m| m + 1);
            if next % 4 == 3 {
                next += 1; // that one rolls back
            }
            assert_eq!(e, next, "{id}: unexpected extra transaction");
        }
        checked += got.len();
    }
    assert!(by_id.is_empty(), "notifications from unknown senders: {:?}", by_id.keys());
    assert!(kills >= secs as usize * 5, "only {kills} kills");
    assert!(total_commits > 100, "only {total_commits} commits");

    // The dead are reaped, the queue drains, and the segment files go.
    let c = Connection::open(&q).unwrap();
    let st = c.queue().stats().unwrap();
    assert!(st.listeners.is_empty(), "dead listeners still registered: {:?}", st.listeners);
    assert_eq!(st.usage, 0.0);
    assert_eq!(st.tail, st.head);
    assert!(st.segment_files.len() <= 1, "segment files left: {:?}", st.segment_files);
    eprintln!(
        "chaos: {kills} kills, {total_commits} commits, {checked} notifications checked, head at {} bytes",
        st.head
    );
}

#[test]
fn a_writer_killed_inside_the_append_holding_the_lock_wedges_nothing() {
    let t = TempDir::new("park");
    let q = t.queue();
    let mut l = Connection::open(&q).unwrap();
    l.listen("c").unwrap();
    let marker = t.path().join("parked");
    let mut parked = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["agent", "--exact", "--nocapture", "--test-threads=1", "-q"])
        .env("HARK_AGENT", "notify")
        .env("HARK_AGENT_ARGS", s(&[&q.display(), &"dead", &1, &3, &0, &"c"]).join("\u{1f}"))
        .env("HARK_FAULT_PARK_IN_APPEND", &marker)
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the writer never reached the append");
        std::thread::sleep(Duration::from_millis(5));
    }
    parked.kill().unwrap();
    parked.wait().unwrap();
    // The lock is recovered at once, and the dead writer's bytes are overwritten unseen.
    let started = Instant::now();
    let mut n = Connection::open(&q).unwrap();
    n.notify("c", "after").unwrap();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(common::drain(&mut l), common::pairs(&[("c", "after")]));
}

/// The PIDs an agent of role `sessions` printed: its process id, then its sessions'.
fn session_pids(mut a: Agent) -> (i32, Vec<i32>) {
    let line = a.line().expect("PIDS line");
    a.finish();
    let v: Vec<i32> = line.strip_prefix("PIDS ").unwrap().split(' ').map(|p| p.parse().unwrap()).collect();
    (v[0], v[1..].to_vec())
}

#[test]
fn backend_pids_are_unique_across_processes_even_when_a_process_id_is_taken() {
    let t = TempDir::new("pids-xproc");
    let q = t.queue();
    let mut l = Connection::open(&q).unwrap();
    let other = Connection::open(&q).unwrap();
    l.listen("c").unwrap();
    let mine = [l.backend_pid(), other.backend_pid()];
    let qs = q.display().to_string();

    // A process whose id a live session of the queue already holds as its backend PID (one in
    // another PID namespace, say; here, this test holds that PID's byte lock on `slots` as such
    // a session would) gets synthetic PIDs for all its sessions.
    let go = t.path().join("go");
    let taken = spawn("sessions", &s(&[&qs, &3, &"taken", &go.display()]));
    let slots = std::fs::OpenOptions::new().read(true).write(true).open(q.join("slots")).unwrap();
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as i16;
    lock.l_whence = libc::SEEK_SET as i16;
    lock.l_start = ((1u64 << 32) + taken.child.id() as u64) as libc::off_t; // layout::PID_LOCK_BASE + pid
    lock.l_len = 1;
    // SAFETY: a valid descriptor and flock structure.
    assert_eq!(unsafe { libc::fcntl(std::os::fd::AsRawFd::as_raw_fd(&slots), libc::F_OFD_SETLK, &lock) }, 0);
    std::fs::write(&go, "").unwrap();
    let (os1, pids1) = session_pids(taken);
    assert!(pids1.iter().all(|&p| p >= 1 << 22), "{pids1:?} (process {os1})");
    drop(slots);

    // Another process: its first session has its own id, the others synthetic ones.
    let (os2, pids2) = session_pids(spawn("sessions", &s(&[&qs, &2, &"free", &""])));
    assert_eq!(pids2[0], os2);
    assert!(pids2[1] >= 1 << 22);

    let all: Vec<i32> = mine.iter().chain(&pids1).chain(&pids2).copied().collect();
    assert_eq!(all.iter().collect::<HashSet<_>>().len(), all.len(), "{all:?}");
    // Each notification carries the backend PID of the session that sent it.
    let got = common::collect_until(&mut l, 30, |g| g.len() == 5);
    let sent: HashMap<String, i32> = pids1
        .iter()
        .enumerate()
        .map(|(k, &p)| (format!("taken:{k}"), p))
        .chain(pids2.iter().enumerate().map(|(k, &p)| (format!("free:{k}"), p)))
        .collect();
    for n in got {
        assert_eq!(Some(&n.pid), sent.get(&n.payload), "{n:?}");
    }
}
