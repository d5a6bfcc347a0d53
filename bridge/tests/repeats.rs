//! A transaction a sending bridge sends twice (it was killed after PostgreSQL's COMMIT and before
//! its local acknowledgement, so its next run sends it again) reaches the other host's listeners
//! once, also when the receiving bridge restarted between the two sends; and a message of several
//! transactions that PostgreSQL refuses halfway is sent on from where it stopped.

mod common;
use common::*;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Not a test of its own: the body of a bridge process with the `test-hooks` park points, which
/// the test below starts by running this test binary again (the `hark` command has no hooks).
#[test]
fn hooked_bridge_process() {
    let (Some(dir), Some(conninfo)) =
        (std::env::var_os("HARK_BRIDGE_TEST_CHILD_DIR"), std::env::var("HARK_BRIDGE_TEST_CHILD_PG").ok())
    else {
        return;
    };
    let mut config = hark_bridge::Config::new(dir, &conninfo, ["ev"]);
    config.backoff_max = Duration::from_millis(500);
    let bridge = hark_bridge::Bridge::start(config).unwrap();
    bridge.join().unwrap();
}

/// Starts this host's bridge as a hooked process that parks at the point `hook` names (a
/// `HARK_BRIDGE_FAULT_PARK_*` variable, `src/hooks.rs`), writing `marker` there.
fn start_parking_bridge(host: &mut Host, conninfo: &str, hook: &str, marker: &std::path::Path) {
    let log = std::fs::OpenOptions::new().create(true).append(true).open(host.scratch.0.join("bridge.log")).unwrap();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "hooked_bridge_process", "--nocapture", "--test-threads=1"]);
    cmd.env("HARK_BRIDGE_TEST_CHILD_DIR", host.queue()).env("HARK_BRIDGE_TEST_CHILD_PG", conninfo).env(hook, marker);
    host.bridge = Some(cmd.stdout(Stdio::null()).stderr(log).spawn().unwrap());
}

fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn commit(host: &Host, t: usize) {
    let mut c = host.connect();
    c.begin().unwrap();
    c.notify("ev", &format!("{t}-a")).unwrap();
    c.notify("ev", &format!("{t}-b")).unwrap();
    c.commit().unwrap();
}

/// Host a sends transaction 0, and its bridge is stopped after PostgreSQL's COMMIT and before its
/// local acknowledgement; host b's bridge commits it, and is killed (when `b_parks`, before it
/// saved what it received: it must read it back from its queue) and restarted; a's bridge
/// restarts and sends transaction 0 again, then 1 to 3. b's listener hears each once, in order.
fn repeat_after_the_receiver_restarted(b_parks: bool) {
    let Some(pg) = Pg::start() else { return };
    let mut a = Host::new("replays");
    let mut b = Host::new("restarts");
    let b_marker = b.scratch.0.join("parked");
    if b_parks {
        start_parking_bridge(&mut b, &pg.conninfo, "HARK_BRIDGE_FAULT_PARK_BEFORE_ORIGINS", &b_marker);
    } else {
        b.start_bridge(&pg.conninfo, &["ev"]);
    }
    b.wait_connected(1);
    let mut l = Listener::new(&b, &["ev"]);
    let marker = a.scratch.0.join("parked");
    start_parking_bridge(&mut a, &pg.conninfo, "HARK_BRIDGE_FAULT_PARK_BEFORE_ACK", &marker);
    a.wait_connected(1);

    commit(&a, 0);
    wait_for("a's bridge to park before its acknowledgement", 30, || marker.exists());
    assert!(l.until(30, |g| g.len() >= 2), "b heard transaction 0; log of a:\n{}", a.log());
    if b_parks {
        wait_for("b's bridge to park before it saves what it received", 30, || b_marker.exists());
    }

    b.kill_bridge();
    b.start_bridge(&pg.conninfo, &["ev"]);
    b.wait_connected(2);
    a.kill_bridge();
    a.start_bridge(&pg.conninfo, &["ev"]);
    a.wait_connected(2);
    for t in 1..4 {
        commit(&a, t);
    }
    let ok = l.until(30, |g| g.len() >= 8);
    // The repeat comes before transaction 1: once 3 is in, b had it; its counter is written
    // within a second.
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline && b.state().is_none_or(|r| matches!(r.get("repeats_skipped"), "0" | "")) {
        std::thread::sleep(Duration::from_millis(20));
    }
    l.until(1, |_| false);
    let got = l.payloads("ev");
    let expected: Vec<String> = (0..4).flat_map(|t| [format!("{t}-a"), format!("{t}-b")]).collect();
    assert!(ok, "b's listener got {got:?}; log of a:\n{}\nlog of b:\n{}", a.log(), b.log());
    assert_eq!(got, expected, "every transaction once, in order; log of b:\n{}", b.log());
    assert_eq!(b.state().unwrap().get("repeats_skipped"), "1", "a sent transaction 0 again and b dropped it");
}

#[test]
fn a_repeat_sent_after_the_receiving_bridge_restarted_is_still_dropped() {
    repeat_after_the_receiver_restarted(false);
}

#[test]
fn a_repeat_is_dropped_when_the_receiver_was_killed_before_saving_what_it_received() {
    repeat_after_the_receiver_restarted(true);
}

/// PostgreSQL refuses a statement in the second transaction of a message of several: it commits
/// the first, and the bridge sends the rest again (once its retry comes), so that the other
/// host hears every transaction once, in order. The failure left the bridge's session in a
/// failed transaction block, which used to refuse every later send for ever.
#[test]
fn a_message_refused_halfway_is_sent_on_from_where_it_stopped() {
    let Some(pg) = Pg::start() else { return };
    let mut a = Host::new("refused");
    let mut b = Host::new("hears");
    b.start_bridge(&pg.conninfo, &["ev"]);
    b.wait_connected(1);
    let mut l = Listener::new(&b, &["ev"]);
    let marker = a.scratch.0.join("failed");
    start_parking_bridge(&mut a, &pg.conninfo, "HARK_BRIDGE_FAULT_FAIL_BATCH", &marker);
    a.wait_connected(1);
    // Transactions committed faster than one round trip go in messages of several.
    let total = 300;
    let mut c = a.connect();
    for t in 0..total {
        c.begin().unwrap();
        c.notify("ev", &format!("{t}")).unwrap();
        c.commit().unwrap();
    }
    let ok = l.until(60, |g| g.len() >= total);
    assert!(marker.exists(), "no message of several was sent; log of a:\n{}", a.log());
    let got = l.payloads("ev");
    assert!(ok, "b's listener got {} of {total}; log of a:\n{}", got.len(), a.log());
    l.until(1, |_| false);
    let got = l.payloads("ev");
    assert_eq!(got, (0..total).map(|t| t.to_string()).collect::<Vec<_>>(), "every transaction once, in order");
    assert!(a.log().contains("division by zero"), "the refusal is reported: {}", a.log());
}
