//! `hark listen --subscription` and `hark unsubscribe` as separate processes: consumers killed
//! while notifiers commit, gaps, one consumer at a time.

mod common;

use common::{hark, piped, wait_until, Reaper, TempDir};
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn dir_arg(dir: &TempDir) -> String {
    dir.path().to_str().unwrap().to_owned()
}

/// Runs a command to completion; returns (status code, stdout, stderr).
fn run(cmd: &mut Command) -> (i32, String, String) {
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The backend PID of the session attached to subscription `name`, if one is.
fn attached(dir: &Path, name: &str) -> Option<i32> {
    let q = hark::Queue::open(dir, &hark::Options::new().create(false)).ok()?;
    let stats = q.stats().ok()?;
    stats.listeners.iter().find(|l| l.subscription.as_deref() == Some(name) && l.alive).map(|l| l.pid)
}

/// Whether process `pid` is stopped (state `T` in /proc/PID/stat).
fn stopped(pid: i32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit_once(") ").is_some_and(|(_, rest)| rest.starts_with('T'))
}

/// The payload of a psql notification line.
fn payload(line: &str) -> &str {
    line.split_once(" with payload \"").and_then(|(_, r)| r.rsplit_once("\" received from")).map_or("", |p| p.0)
}

/// The numbers a `hark listen` child printed (each payload's first word) up to `total - 1`, then,
/// once it is killed, the count of the one gap line it wrote on standard error.
fn printed_then_gap(child: &mut Reaper, total: u64) -> (Vec<u64>, u64) {
    let mut numbers = Vec::new();
    for line in BufReader::new(child.0.stdout.take().unwrap()).lines() {
        let n: u64 = payload(&line.unwrap()).split(' ').next().unwrap().parse().unwrap();
        numbers.push(n);
        if n == total - 1 {
            break;
        }
    }
    child.0.kill().unwrap();
    child.0.wait().unwrap();
    let mut stderr = String::new();
    child.0.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
    let skipped: u64 = stderr
        .strip_prefix("hark listen: gap: ")
        .and_then(|r| r.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("one gap line: {stderr:?}"));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    (numbers, skipped)
}

/// A small deterministic generator (xorshift), seeded from the clock; the seed is printed so that
/// a failing run can be replayed.
struct Rng(u64);
impl Rng {
    fn new() -> Rng {
        let seed = std::env::var("HARK_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
        });
        eprintln!("seed {seed} (HARK_TEST_SEED replays it)");
        Rng(seed)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// A `hark listen --subscription mailer 'orders.*'` SIGKILLed again and again, at random times,
/// while a notifier commits numbered notifications (some transactions with several, and noise on
/// a channel the pattern does not match): the lines all the runs printed, taken in order, are
/// every notification committed, in commit order, each once, except that a run may begin with
/// the line the killed run printed last (killed between printing and acknowledging it).
#[test]
fn killed_consumers_print_everything_committed_in_order() {
    let dir = TempDir::new("sub-kill");
    let listen = ["listen", "--dir", &dir_arg(&dir), "--subscription", "mailer", "orders.*"];
    // The subscription exists from here on (it receives what commits after it was created).
    let (code, _, err) = run(hark().args(listen).args(["--count", "0"]));
    assert_eq!((code, err.as_str()), (0, ""));
    let mut app = hark::Connection::open(dir.path()).unwrap();
    let total: u64 = 4000;
    let running = Arc::new(AtomicBool::new(true));
    let notifier = {
        let running = Arc::clone(&running);
        std::thread::spawn(move || {
            let mut i = 0u64;
            while i < total {
                app.begin().unwrap();
                for _ in 0..(1 + i % 3).min(total - i) {
                    let channel = if i % 2 == 0 { "orders.paid" } else { "orders.refunded" };
                    app.notify(channel, &i.to_string()).unwrap();
                    app.notify("stock", "noise").unwrap();
                    i += 1;
                }
                app.commit().unwrap();
                std::thread::sleep(Duration::from_micros(1500));
            }
            running.store(false, Ordering::SeqCst);
        })
    };
    let mut rng = Rng::new();
    let mut runs: Vec<Vec<String>> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let finishing = !running.load(Ordering::SeqCst);
        let mut child = Reaper(
            hark().args(listen).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap(),
        );
        let stdout = child.0.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let reader = std::thread::spawn(move || {
            let mut lines = Vec::new();
            for line in BufReader::new(stdout).lines() {
                let line = line.unwrap();
                let _ = tx.send(payload(&line).to_owned());
                lines.push(line);
            }
            lines
        });
        if finishing {
            // The notifier is done: this run drains what is left (if an earlier run printed the
            // last one, at most that one again), then is killed too.
            let last = (total - 1).to_string();
            let printed_before = runs.iter().flatten().any(|l| payload(l) == last);
            let wait = Duration::from_secs(if printed_before { 1 } else { 20 });
            loop {
                match rx.recv_timeout(wait) {
                    Ok(p) if p == last => break,
                    Ok(_) => {}
                    Err(_) if printed_before => break,
                    Err(_) => panic!("the last run did not print up to the last notification"),
                }
            }
        } else {
            std::thread::sleep(Duration::from_millis(10 + rng.below(150)));
        }
        child.0.kill().unwrap(); // SIGKILL
        child.0.wait().unwrap();
        runs.push(reader.join().unwrap());
        if finishing {
            break;
        }
        assert!(Instant::now() < deadline, "the notifier did not finish in time");
    }
    notifier.join().unwrap();

    let mut next = 0u64;
    let mut repeats = 0;
    let mut previous_last: Option<u64> = None;
    for (r, run) in runs.iter().enumerate() {
        for (k, line) in run.iter().enumerate() {
            let n: u64 = payload(line).parse().unwrap_or_else(|_| panic!("run {r}: not a notification: {line:?}"));
            let channel = if n % 2 == 0 { "orders.paid" } else { "orders.refunded" };
            assert!(line.starts_with(&format!("Asynchronous notification \"{channel}\" with payload")), "{line}");
            if n == next {
                next += 1;
            } else {
                assert!(
                    k == 0 && Some(n) == previous_last && n + 1 == next,
                    "run {r} line {k}: got {n}, expected {next} (or, first, a repeat of {previous_last:?})"
                );
                repeats += 1;
            }
        }
        if let Some(line) = run.last() {
            previous_last = Some(payload(line).parse().unwrap());
        }
    }
    assert_eq!(next, total, "every notification committed was printed, in order");
    let kills = runs.len() - 1;
    assert!(kills >= 10, "the consumer was killed {kills} times only");
    eprintln!("{kills} kills, {repeats} lines printed again");
    assert!(repeats <= kills);
}

/// A consumer with a lag limit, stopped while notifiers commit far past it, prints on SIGCONT one
/// gap (a line on standard error; a `{"gap":…}` object among the JSON lines) counting what was
/// skipped, then exactly the notifications after it.
#[test]
fn a_cut_subscription_prints_a_gap_then_what_follows() {
    let dir = TempDir::new("sub-gap");
    let opts = hark::Options::new().segment_size(64 << 10).max_queue_size(4 << 20).listener_max_lag_bytes(100_000);
    let mut app = hark::Connection::with_options(dir.path(), &opts).unwrap();
    // A plain listener of this queue has the same limit, and reports its gap the same way.
    let mut plain = piped(hark().args(["listen", "--dir", &dir_arg(&dir), "c"]));
    wait_until("the listener to register", || common::listeners(dir.path()) == 1);
    let mut consumer = piped(hark().args([
        "listen",
        "--dir",
        &dir_arg(&dir),
        "--json",
        "--subscription",
        "g",
        "--max-lag-bytes",
        "100000",
        "c",
    ]));
    wait_until("the consumer to attach", || attached(dir.path(), "g").is_some());
    let pids = [consumer.0.id() as i32, plain.0.id() as i32];
    for pid in pids {
        // SAFETY: kill(2) on our own children.
        assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
        // The signal takes effect when the process next runs: until then it could still read.
        wait_until("the process to stop", || stopped(pid));
    }
    let total = 2000u64;
    let padding = "x".repeat(200);
    for i in 0..total {
        app.begin().unwrap();
        app.notify("c", &format!("{i} {padding}")).unwrap();
        app.notify("noise", "n").unwrap();
        app.commit().unwrap();
    }
    for pid in pids {
        assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    }

    let stdout = BufReader::new(consumer.0.stdout.take().unwrap());
    let mut lines = Vec::new();
    let last = format!("\"payload\":\"{} ", total - 1);
    for line in stdout.lines() {
        let line = line.unwrap();
        let done = line.contains(&last);
        lines.push(line);
        if done {
            break;
        }
    }
    consumer.0.kill().unwrap();
    consumer.0.wait().unwrap();
    let mut stderr = String::new();
    consumer.0.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();

    let gap: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    let gap = gap.get("gap").unwrap_or_else(|| panic!("the gap comes first: {}", lines[0]));
    let field = |k: &str| gap[k].as_u64().unwrap_or_else(|| panic!("gap field {k}: {gap}"));
    let (skipped, first_txn, last_txn, resumed_at) =
        (field("skipped"), field("first_txn"), field("last_txn"), field("resumed_at"));
    assert!(skipped > 0 && last_txn >= first_txn, "{gap}");
    assert_eq!(
        stderr,
        format!(
            "hark listen: gap: {skipped} notifications were skipped (commits {first_txn} to {last_txn}); resuming at position {resumed_at}\n"
        )
    );
    let mut expected = skipped;
    let mut previous_txn = last_txn;
    for line in &lines[1..] {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert!(v.get("gap").is_none(), "one gap only: {line}");
        let n: u64 = v["payload"].as_str().unwrap().split(' ').next().unwrap().parse().unwrap();
        assert_eq!((v["channel"].as_str(), n), (Some("c"), expected), "exactly the notifications after the gap");
        assert!(v["position"].as_u64().unwrap() >= resumed_at, "{line}");
        assert!(v["txn"].as_u64().unwrap() > previous_txn, "{line}");
        previous_txn = v["txn"].as_u64().unwrap();
        assert!(v["commit_time"].as_u64().unwrap() > 1_600_000_000_000, "milliseconds since the epoch: {line}");
        expected += 1;
    }
    assert_eq!(expected, total, "every notification is printed or counted in the gap");

    let (numbers, skipped) = printed_then_gap(&mut plain, total);
    assert_eq!(numbers, (skipped..total).collect::<Vec<_>>(), "the plain listener: the gap, then what follows");
}

/// A queue created by `hark listen --cut-laggards` never fails a commit on a listener that
/// stopped reading: the listener is cut, and on SIGCONT prints the gap, then what follows. The
/// policy and limits given are the queue's, fixed at its creation.
#[test]
fn the_cut_policy_options_keep_notifiers_going_past_a_stopped_listener() {
    let dir = TempDir::new("sub-cut");
    let mut listener = piped(hark().args([
        "listen",
        "--dir",
        &dir_arg(&dir),
        "--cut-laggards",
        "--max-queue-size",
        "524288",
        "--listener-max-lag-age",
        "3600",
        "c",
    ]));
    wait_until("the listener to register", || common::listeners(dir.path()) == 1);
    let pid = listener.0.id() as i32;
    // SAFETY: kill(2) on our own child.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGSTOP) }, 0);
    wait_until("the listener to stop", || stopped(pid));
    let mut app = hark::Connection::open(dir.path()).unwrap();
    app.set_notice_handler(Some(Box::new(|_| {}))); // the warnings from half full on
    let total = 3000u64; // 3 MB through a 512 KiB queue: each commit succeeds
    for i in 0..total {
        app.notify("c", &format!("{i} {}", "x".repeat(1000))).unwrap();
    }
    assert_eq!(unsafe { libc::kill(pid, libc::SIGCONT) }, 0);
    let (numbers, skipped) = printed_then_gap(&mut listener, total);
    assert_eq!(numbers, (skipped..total).collect::<Vec<_>>(), "the gap, then what follows");

    // The queue keeps what it was created with.
    let reopen = |o: hark::Options| hark::Connection::with_options(dir.path(), &o).map(|_| ());
    reopen(hark::Options::new().cut_laggards(true).listener_max_lag_age(Duration::from_secs(3600))).unwrap();
    assert!(reopen(hark::Options::new().cut_laggards(false)).is_err());
    assert!(reopen(hark::Options::new().listener_max_lag_age(Duration::from_secs(60))).is_err());
}

/// One process at a time consumes a subscription: a second gets 55006's message and a hint,
/// `--wait` waits for the first to go; `hark unsubscribe` drops it, not while it is in use.
#[test]
fn one_consumer_at_a_time_and_unsubscribe() {
    let dir = TempDir::new("sub-busy");
    let d = dir_arg(&dir);
    let first = piped(hark().args(["listen", "--dir", &d, "--subscription", "s", "c"]));
    wait_until("the first consumer to attach", || attached(dir.path(), "s").is_some());
    let pid = attached(dir.path(), "s").unwrap();
    assert_eq!(pid, first.0.id() as i32, "its first session has its process's id");

    let (code, out, err) = run(hark().args(["listen", "--dir", &d, "--subscription", "s", "--timeout", "1", "c"]));
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(
        err,
        format!(
            "ERROR:  subscription \"s\" is in use by the session with backend PID {pid}\n\
             HINT:  One process at a time may consume a subscription. Give --wait to wait for it to let go.\n"
        )
    );
    let (code, _, err) = run(hark().args(["listen", "--dir", &d, "--subscription", "s", "--wait=0.3", "c"]));
    assert_eq!(code, 1);
    assert!(err.ends_with("HINT:  It was still attached after waiting 0.3 seconds.\n"), "{err}");
    let (code, _, err) = run(hark().args(["unsubscribe", "--dir", &d, "s"]));
    assert_eq!((code, err.starts_with("ERROR:  subscription \"s\" is in use")), (1, true), "{err}");

    // `--wait` alone waits as long as it takes: here until the first is killed.
    let mut second = piped(hark().args(["listen", "--dir", &d, "--subscription", "s", "--wait", "--count", "1", "c"]));
    std::thread::sleep(Duration::from_millis(300));
    assert!(second.0.try_wait().unwrap().is_none(), "the second waits");
    drop(first); // SIGKILL
    wait_until("the second to attach", || attached(dir.path(), "s") == Some(second.0.id() as i32));
    let mut app = hark::Connection::open(dir.path()).unwrap();
    app.notify("c", "after").unwrap();
    let mut out = String::new();
    second.0.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert!(second.0.wait().unwrap().success());
    assert!(out.starts_with("Asynchronous notification \"c\" with payload \"after\""), "{out}");

    let (code, out, err) = run(hark().args(["unsubscribe", "--dir", &d, "s"]));
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    assert_eq!(hark::Queue::open(dir.path(), &hark::Options::new()).unwrap().stats().unwrap().listeners.len(), 0);
    let (code, _, err) = run(hark().args(["unsubscribe", "--dir", &d, "s"]));
    assert_eq!((code, err.as_str()), (1, "ERROR:  subscription \"s\" does not exist\n"));
    // Nothing is created to drop from.
    let missing = TempDir::new("sub-none");
    let (code, _, _) = run(hark().args(["unsubscribe", "--dir", &dir_arg(&missing), "s"]));
    assert_eq!(code, 1);
    assert!(!missing.path().exists());
    // The subscription's options need --subscription.
    for args in [&["--wait"][..], &["--no-ack"], &["--max-lag-bytes", "1000"], &["--max-lag-age", "5"]] {
        let (code, _, err) = run(hark().args(["listen", "--dir", &d]).args(args).arg("c"));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("--subscription"), "{args:?}: {err}");
    }
    // A zero lag limit would mean none to the core: it is refused rather than taken so.
    for args in [&["--subscription", "s", "--max-lag-age", "0"][..], &["--listener-max-lag-age", "0"]] {
        let (code, _, err) = run(hark().args(["listen", "--dir", &d]).args(args).arg("c"));
        assert_eq!(code, 2, "{args:?}: {err}");
        assert!(err.contains("must be more than 0 seconds"), "{args:?}: {err}");
    }
}

/// A consumer that exits after `--count` resumes, at the next run, after the last line it
/// printed; `--no-ack` prints without moving the subscription.
#[test]
fn a_subscription_resumes_after_what_was_printed() {
    let dir = TempDir::new("sub-resume");
    let d = dir_arg(&dir);
    let listen = |extra: &[&str]| {
        let (code, out, err) = run(hark()
            .args(["listen", "--dir", &d, "--subscription", "r", "--timeout", "5"])
            .args(extra)
            .arg("jobs.*"));
        assert_eq!((code, err.as_str()), (0, ""));
        out.lines().map(|l| payload(l).to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(listen(&["--count", "0"]), Vec::<String>::new()); // creates it
    let mut app = hark::Connection::open(dir.path()).unwrap();
    for i in 0..5 {
        app.notify(&format!("jobs.{i}"), &i.to_string()).unwrap();
    }
    app.notify("other", "x").unwrap();
    assert_eq!(listen(&["--count", "2", "--no-ack"]), ["0", "1"]);
    assert_eq!(listen(&["--count", "2"]), ["0", "1"], "--no-ack acknowledged nothing");
    assert_eq!(listen(&["--count", "3"]), ["2", "3", "4"], "resumes after what was printed");
    let (code, out, _) = run(hark().args(["listen", "--dir", &d, "--subscription", "r", "--timeout", "0.3", "jobs.*"]));
    assert_eq!((code, out.as_str()), (0, ""), "nothing is printed twice");
}

#[test]
fn stat_shows_control_characters_in_names_escaped() {
    // Channel and subscription names may hold control characters; the text report must not pass
    // an escape sequence or a bell from them to the terminal (`--json` keeps them exact).
    let dir = TempDir::new("stat-names");
    let mut c = hark::Connection::open(dir.path()).unwrap();
    c.subscribe("sub\u{1b}[2J", &["red\u{1b}[31m", "bell\u{7}"], &hark::SubscribeOptions::new()).unwrap();
    c.detach().unwrap();
    let (code, text, err) = run(hark().args(["stat", &dir_arg(&dir)]));
    assert_eq!(code, 0, "{err}");
    assert!(!text.contains('\u{1b}') && !text.contains('\u{7}'), "{text:?}");
    assert!(text.contains("subscription sub\\u{1b}[2J: "), "{text}");
    assert!(text.contains("red\\u{1b}[31m") && text.contains("bell\\u{7}"), "{text}");
    let (code, json, _) = run(hark().args(["stat", &dir_arg(&dir), "--json"]));
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(json.lines().last().unwrap()).unwrap();
    assert!(v.to_string().contains("red\\u001b[31m"), "{json}");
}
