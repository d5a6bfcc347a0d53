//! PostgreSQL to local: what PostgreSQL clients commit reaches every bridged host's listeners
//! once, in order, a PostgreSQL transaction never split; reconnection after PostgreSQL restarts,
//! and the gap signal after a reconnection or a restart of the bridge. Real PostgreSQL 15, real
//! `hark bridge` processes.

mod common;
use common::*;
use std::process::Command;

/// Groups what a listener on the data channel and `hark.bridge.origin` received into the local
/// transactions the bridge committed (each begins with an origin notification).
fn local_transactions(l: &Listener) -> Vec<Vec<String>> {
    let mut groups: Vec<Vec<String>> = Vec::new();
    for (ch, payload, _) in &l.got {
        if ch == "hark.bridge.origin" {
            groups.push(Vec::new());
        } else if ch != "hark.bridge.gap" {
            groups.last_mut().expect("a bridged notification outside a bridge transaction").push(payload.clone());
        }
    }
    groups
}

#[test]
fn psql_transactions_reach_every_host_once_in_order_and_never_split() {
    let Some(pg) = Pg::start() else { return };
    let mut hosts: Vec<Host> = (0..2).map(|i| Host::new(&format!("h{i}"))).collect();
    for h in &mut hosts {
        h.start_bridge(&pg.conninfo, &["orders", "Mixed Case"]);
    }
    for h in &hosts {
        h.wait_connected(1);
    }
    let mut listeners: Vec<Listener> =
        hosts.iter().map(|h| Listener::new(h, &["orders", "Mixed Case", "hark.bridge.origin"])).collect();
    let mut script = String::new();
    for t in 0..20 {
        script.push_str(&format!("BEGIN; NOTIFY orders, 't{t}-a'; NOTIFY orders, 't{t}-b'; COMMIT;\n"));
        if t % 5 == 0 {
            script.push_str(&format!("BEGIN; NOTIFY orders, 'rolled-back-{t}'; ROLLBACK;\n"));
            // The same payload again in the next transaction: hark must not fold it.
            script.push_str(&format!("NOTIFY orders, 't{t}-a';\n"));
        }
    }
    script.push_str("SELECT pg_notify('Mixed Case', 'verbatim ''quoted'' \\ name');\n");
    pg.psql(&script);
    let mut expected = Vec::new();
    for t in 0..20 {
        expected.push(format!("t{t}-a"));
        expected.push(format!("t{t}-b"));
        if t % 5 == 0 {
            expected.push(format!("t{t}-a"));
        }
    }
    for (h, l) in hosts.iter().zip(&mut listeners) {
        let n = expected.len();
        assert!(
            l.until(20, |got| got.iter().filter(|g| g.0 == "orders").count() >= n
                && got.iter().any(|g| g.0 == "Mixed Case")),
            "host {} got {:?}; log:\n{}",
            h.name,
            l.got,
            h.log()
        );
        l.until(1, |_| false);
        assert_eq!(l.payloads("orders"), expected, "host {}: every committed notification once, in order", h.name);
        assert_eq!(l.payloads("Mixed Case"), vec!["verbatim 'quoted' \\ name"]);
        for group in local_transactions(l) {
            for t in 0..20 {
                let (a, b) = (format!("t{t}-a"), format!("t{t}-b"));
                if let Some(i) = group.iter().position(|p| *p == a) {
                    if group.get(i + 1) != Some(&b) && group.contains(&b) {
                        panic!("t{t} split or reordered in {group:?}");
                    }
                }
                assert!(!group.contains(&b) || group.contains(&a), "t{t} split across local transactions: {group:?}");
            }
        }
    }
}

#[test]
fn a_restarted_postgresql_is_reconnected_and_the_gap_is_signalled() {
    let Some(pg) = Pg::start() else { return };
    let mut h = Host::new("restart");
    h.start_bridge(&pg.conninfo, &["ev"]);
    h.wait_connected(1);
    let mut l = Listener::new(&h, &["ev", "hark.bridge.gap"]);
    pg.psql("NOTIFY ev, 'before'");
    assert!(l.until(10, |g| g.len() == 1), "{:?}", l.got);

    pg.stop_server("fast");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while h.state().map(|r| r.get("state").to_owned()).as_deref() == Some("connected") {
        assert!(std::time::Instant::now() < deadline, "the bridge did not notice; log:\n{}", h.log());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let stat = Command::new(hark_bin()).arg("stat").arg(h.queue()).output().unwrap();
    let stat = String::from_utf8_lossy(&stat.stdout);
    assert!(
        stat.contains("bridge       default: disconnected") || stat.contains("bridge       default: connecting"),
        "hark stat shows the bridge waiting for PostgreSQL:\n{stat}"
    );
    assert!(stat.contains("last error"), "{stat}");

    pg.start_server();
    h.wait_connected(2);
    pg.psql("NOTIFY ev, 'after'");
    assert!(l.until(10, |g| g.iter().any(|n| n.1 == "after")), "{:?}; log:\n{}", l.got, h.log());
    let channels: Vec<&str> = l.got.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(channels, ["ev", "hark.bridge.gap", "ev"], "the gap is signalled before what follows it");
    let gap = &l.got[1].1;
    assert!(gap.contains("\"bridge\":\"default\"") && gap.contains("\"reason\":\"reconnected\""), "{gap}");
    let stat = Command::new(hark_bin()).arg("stat").arg(h.queue()).output().unwrap();
    let stat = String::from_utf8_lossy(&stat.stdout);
    assert!(stat.contains("bridge       default: connected"), "{stat}");
    assert!(stat.contains("1 gaps signalled"), "{stat}");
    let json = Command::new(hark_bin()).args(["stat", "--json"]).arg(h.queue()).output().unwrap();
    let json = String::from_utf8_lossy(&json.stdout);
    assert!(json.contains("\"bridges\":[{") && json.contains("\"running\":true"), "{json}");
    assert!(json.contains("\"name\":\"default\""), "{json}");
    assert!(json.contains("\"state\":\"connected\"") && json.contains("\"connects\":\"2\""), "{json}");
}

#[test]
fn a_bridge_killed_and_restarted_signals_the_gap_and_hark_stat_tells_it_is_not_running() {
    let Some(pg) = Pg::start() else { return };
    let mut h = Host::new("killed");
    h.start_bridge(&pg.conninfo, &["ev"]);
    h.wait_connected(1);
    let mut l = Listener::new(&h, &["ev", "hark.bridge.gap"]);
    h.kill_bridge();
    let stat = Command::new(hark_bin()).arg("stat").arg(h.queue()).output().unwrap();
    let stat = String::from_utf8_lossy(&stat.stdout);
    assert!(stat.contains("bridge       default: not running (last: connected)"), "{stat}");
    pg.psql("NOTIFY ev, 'while the bridge was dead'");

    h.start_bridge(&pg.conninfo, &["ev"]);
    h.wait_connected(2);
    pg.psql("NOTIFY ev, 'after'");
    assert!(l.until(10, |g| g.iter().any(|n| n.1 == "after")), "{:?}", l.got);
    let got: Vec<(&str, &str)> = l.got.iter().map(|g| (g.0.as_str(), g.1.as_str())).collect();
    assert_eq!(got.len(), 2, "what PostgreSQL delivered to nobody is lost, and said to be: {got:?}");
    assert_eq!(got[0].0, "hark.bridge.gap");
    assert!(got[0].1.contains("\"reason\":\"restarted\""), "{}", got[0].1);
    assert_eq!(got[1], ("ev", "after"));
    assert!(h.stop_bridge().success());
    assert_eq!(h.state().unwrap().get("state"), "stopped");
}

#[test]
fn a_second_bridge_of_the_same_name_on_a_queue_is_refused_and_reserved_channels_too() {
    let Some(pg) = Pg::start() else { return };
    let mut h = Host::new("twice");
    h.start_bridge(&pg.conninfo, &["ev"]);
    h.wait_connected(1);
    let out = Command::new(hark_bin())
        .arg("bridge")
        .arg(h.queue())
        .args(["--postgres", &pg.conninfo, "--channel", "ev"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a bridge named \"default\" is already running"));
    let out = Command::new(hark_bin())
        .arg("bridge")
        .arg(h.queue())
        .args(["--name", "other", "--postgres", &pg.conninfo, "--channel", "hark.bridge.gap"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is reserved"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_plain_client_that_sent_an_end_mark_is_still_heard() {
    // A backend PID taken for a bridge's (it sent an end mark: a bridge that has since gone,
    // whose PID PostgreSQL gave to a new client, or a client writing on the mark channel) must
    // not hold that client's notifications back until some other backend notifies.
    let Some(pg) = Pg::start() else { return };
    let mut h = Host::new("mark");
    h.start_bridge(&pg.conninfo, &["ev"]);
    h.wait_connected(1);
    let mut l = Listener::new(&h, &["ev"]);
    let mut psql = pg.psql_session();
    feed(&mut psql, "NOTIFY \"hark.bridge\", 'end someone@elsewhere#1 1';\nNOTIFY ev, 'after the mark';\n");
    assert!(
        l.until(10, |g| g.iter().any(|n| n.1 == "after the mark")),
        "never committed: {:?}; log:\n{}",
        l.got,
        h.log()
    );
    feed(&mut psql, "BEGIN; NOTIFY ev, 'a'; NOTIFY ev, 'b'; COMMIT;\n");
    assert!(l.until(10, |g| g.len() == 3), "{:?}", l.got);
    assert_eq!(l.payloads("ev"), ["after the mark", "a", "b"]);
    feed(&mut psql, "\\q\n");
    let _ = psql.wait();
}

#[test]
fn a_payload_longer_than_the_local_queue_takes_is_announced_and_the_bridge_goes_on() {
    // A queue created with a max_payload below PostgreSQL's: a longer payload from PostgreSQL
    // cannot be committed. It must not end the bridge; the rest of its transaction arrives, and
    // `hark.bridge.dropped` says what was left out.
    let Some(pg) = Pg::start() else { return };
    let mut h = Host::new("small");
    drop(hark::Connection::with_options(h.queue(), &hark::Options::new().max_payload(100)).unwrap());
    h.start_bridge(&pg.conninfo, &["ev"]);
    h.wait_connected(1);
    let mut l = Listener::new(&h, &["ev", "hark.bridge.dropped"]);
    pg.psql("BEGIN; NOTIFY ev, 'before'; SELECT pg_notify('ev', repeat('x', 200)); NOTIFY ev, 'after'; COMMIT;");
    pg.psql("NOTIFY ev, 'next'");
    assert!(l.until(10, |g| g.iter().any(|n| n.1 == "next")), "{:?}; log:\n{}", l.got, h.log());
    let got: Vec<(&str, &str)> = l.got.iter().map(|g| (g.0.as_str(), g.1.as_str())).collect();
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[0], ("ev", "before"));
    assert_eq!(got[1].0, "hark.bridge.dropped");
    assert!(got[1].1.contains("\"channel\":\"ev\"") && got[1].1.contains("\"bytes\":200"), "{}", got[1].1);
    assert_eq!(&got[2..], [("ev", "after"), ("ev", "next")]);
    assert!(h.log().contains("200 bytes"), "said on standard error: {}", h.log());
}

#[test]
fn two_bridges_on_one_queue_and_database_do_not_send_each_others_commits_back_and_forth() {
    // Two bridges of different names on one queue, on the same channel of one database: what
    // one commits from PostgreSQL must not be sent back by the other (which the first would
    // then receive and commit, and so on, for ever).
    let Some(pg) = Pg::start() else { return };
    let mut h = Host::new("two");
    h.start_bridge(&pg.conninfo, &["ev"]);
    h.wait_connected(1);
    let log = std::fs::File::create(h.scratch.0.join("second.log")).unwrap();
    let mut second = Command::new(hark_bin())
        .arg("bridge")
        .arg(h.queue())
        .args(["--name", "second", "--postgres", &pg.conninfo, "--channel", "ev"])
        .stdout(std::process::Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let connected = |name: &str| {
        hark_bridge::state::read_all(&h.queue())
            .iter()
            .any(|r| r.name == name && r.running && r.get("state") == "connected")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !connected("second") {
        assert!(std::time::Instant::now() < deadline, "the second bridge never connected");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let mut l = Listener::new(&h, &["ev"]);
    pg.psql("NOTIFY ev, 'once'");
    l.until(3, |_| false);
    let _ = second.kill();
    let _ = second.wait();
    let sent: Vec<String> =
        hark_bridge::state::read_all(&h.queue()).iter().map(|r| r.get("to_pg_transactions").to_owned()).collect();
    assert_eq!(l.got.len(), 2, "one commit by each bridge, nothing sent back and forth: {} received", l.got.len());
    assert_eq!(sent, ["0", "0"], "neither bridge sends what a bridge committed from PostgreSQL");
}

#[test]
fn a_bridge_of_many_channels_still_signals_the_gap_after_a_restart_and_shows_its_state() {
    // The state file has a fixed size: a long list of channels must not push out what follows
    // it (the connection count, by which a restarted bridge knows it listened before, and the
    // last error and counters `hark stat` shows).
    let Some(pg) = Pg::start() else { return };
    let mut h = Host::new("many");
    let names: Vec<String> = (0..150).map(|i| format!("orders.region-{i:03}")).collect();
    let channels: Vec<&str> = names.iter().map(String::as_str).collect();
    h.start_bridge(&pg.conninfo, &channels);
    h.wait_connected(1);
    let mut l = Listener::new(&h, &["orders.region-149", "hark.bridge.gap"]);
    h.kill_bridge();
    h.start_bridge(&pg.conninfo, &channels);
    h.wait_connected(2);
    pg.psql("NOTIFY \"orders.region-149\", 'after'");
    assert!(l.until(10, |g| g.iter().any(|n| n.1 == "after")), "{:?}; log:\n{}", l.got, h.log());
    let got: Vec<&str> = l.got.iter().map(|g| g.0.as_str()).collect();
    assert_eq!(got, ["hark.bridge.gap", "orders.region-149"], "the restart is signalled");
    let r = h.state().unwrap();
    assert!(r.get("channels").starts_with("orders.region-000,orders.region-001,"), "{:?}", r.fields);
}

#[test]
fn a_bridge_name_too_long_for_its_subscription_is_refused_by_name_and_leaves_nothing_behind() {
    // The subscription is `bridge.NAME`, at most 63 bytes like any hark name.
    let q = Scratch::new("longname");
    let run = |name: &str| {
        Command::new(hark_bin())
            .arg("bridge")
            .arg(q.0.join("q"))
            .args(["--name", name, "--postgres", "host=/nonexistent", "--max-backoff", "0.1", "--channel", "ev"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let out = run(&"n".repeat(57)).wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("invalid bridge name"), "{err}");
    let left: Vec<_> = std::fs::read_dir(q.0.join("q"))
        .map(|d| d.filter_map(|e| e.ok()).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(!left.iter().any(|f| f.to_string_lossy().starts_with("bridge.")), "{left:?}");
    // The longest name that fits runs.
    let mut ok = run(&"n".repeat(56));
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert!(ok.try_wait().unwrap().is_none(), "the bridge of a 56-byte name runs");
    // SAFETY: kill on our own child's pid.
    unsafe { libc::kill(ok.id() as i32, libc::SIGTERM) };
    assert!(ok.wait().unwrap().success());
}

#[test]
fn an_end_mark_too_long_for_the_local_queue_does_not_end_the_bridge() {
    // The origin of an end mark goes into the local transaction's first notification: a client
    // writing a mark whose origin is too long for the queue's payloads must not stop the bridge.
    let Some(pg) = Pg::start() else { return };
    let mut h = Host::new("longmark");
    h.start_bridge(&pg.conninfo, &["ev"]);
    h.wait_connected(1);
    let mut l = Listener::new(&h, &["ev"]);
    pg.psql("BEGIN; NOTIFY ev, 'with the mark'; SELECT pg_notify('hark.bridge', 'end ' || repeat('o', 7990) || ' 1'); COMMIT;");
    pg.psql("NOTIFY ev, 'next'");
    assert!(l.until(10, |g| g.iter().any(|n| n.1 == "next")), "{:?}; log:\n{}", l.got, h.log());
    assert_eq!(l.payloads("ev"), ["with the mark", "next"]);
}

#[test]
fn a_postgresql_transaction_larger_than_the_local_queue_does_not_wedge_the_bridge() {
    // It can never be committed whole: the bridge would wait for room for ever, committing
    // nothing more from PostgreSQL. It is left out, and a gap says so.
    let Some(pg) = Pg::start() else { return };
    let mut h = Host::new("tiny");
    let options = hark::Options { max_queue_size: Some(1 << 20), ..hark::Options::new() }.segment_size(64 << 10);
    drop(hark::Connection::with_options(h.queue(), &options).unwrap());
    h.start_bridge(&pg.conninfo, &["ev"]);
    h.wait_connected(1);
    let mut l = Listener::new(&h, &["ev", "hark.bridge.gap"]);
    // Ended by an end mark (its backend made a bridge's by an earlier mark), so that it is
    // grouped whole, whatever pauses its delivery has.
    pg.psql(
        "BEGIN; NOTIFY \"hark.bridge\", 'end big@test#1 1'; COMMIT; \
         BEGIN; SELECT count(pg_notify('ev', i || repeat('x', 7000))) FROM generate_series(1, 300) i; \
         NOTIFY \"hark.bridge\", 'end big@test#1 2'; COMMIT;",
    );
    pg.psql("NOTIFY ev, 'next'");
    let ok = l.until(10, |g| g.iter().any(|n| n.1 == "next"));
    let out = Command::new(hark_bin()).arg("stat").arg(h.queue()).output().unwrap();
    assert!(ok, "{} received; log:\n{}\n{}", l.got.len(), h.log(), String::from_utf8_lossy(&out.stdout));
    let got: Vec<(&str, &str)> = l.got.iter().map(|g| (g.0.as_str(), g.1.as_str())).collect();
    assert_eq!(got.len(), 2, "{:?}", got.iter().map(|g| (g.0, &g.1[..g.1.len().min(80)])).collect::<Vec<_>>());
    assert_eq!(got[0].0, "hark.bridge.gap");
    assert!(got[0].1.contains("\"reason\":\"too_large\",\"notifications\":300,"), "{}", got[0].1);
    assert_eq!(got[1], ("ev", "next"));
}
