//! Cuts racing their owner's reads, acknowledgements and deaths (`queue/cut.rs`): a cut between
//! the owner's read and its taking of an earlier gap, a cut just before a read, a subscriber's
//! read but unacknowledged notifications passed by a cut, and a cutter SIGKILLed halfway. In
//! every case each notification is received or counted in exactly one gap, never both, never
//! neither, and the gap comes before what follows it.
//!
//! The in-process races use the `test-hooks` read hook, which runs in every session of this
//! process: those tests take `HOOK` so that they run one at a time, and their hooks act only on
//! their own thread.

mod common;

use common::{agent_role, say, spawn_via, TempDir};
use hark::test_hooks::{set_read_hook, ReadPoint};
use hark::{AckMode, Connection, Event, Gap, Options, SubscribeOptions};
use std::sync::Mutex;
use std::time::{Duration, Instant};

static HOOK: Mutex<()> = Mutex::new(());

#[test]
fn agent() {
    let Some((role, a)) = agent_role() else { return };
    match role.as_str() {
        // fill DIR: notifies "c" under the cut policy, saying "C <i>" after each commit, until a
        // commit parks in a cut (HARK_FAULT_PARK_IN_CUT) and the test kills it.
        "fill" => {
            let mut c = Connection::with_options(&a[0], &tight()).unwrap();
            let pad = "p".repeat(200);
            for i in 0u64.. {
                c.notify("c", &format!("{i} {pad}")).unwrap();
                say(&format!("C {i}"));
            }
        }
        // stats DIR: asks for the queue's stats, which cuts the listeners past their limits,
        // parking halfway through the first cut (HARK_FAULT_PARK_IN_CUT) until killed.
        "stats" => {
            Connection::open(&a[0]).unwrap().queue().stats().unwrap();
        }
        other => panic!("unknown role {other}"),
    }
}

/// A small queue under the cut policy.
fn tight() -> Options {
    Options::new().segment_size(64 << 10).max_queue_size(512 << 10).cut_laggards(true)
}

fn events(c: &mut Connection) -> Vec<Event> {
    std::iter::from_fn(|| c.next_event().unwrap()).collect()
}

/// Splits `events` at its one gap (which must come first) into the gap and the numbers that
/// start the payloads after it.
fn one_gap_then(events: &[Event]) -> (Gap, Vec<u64>) {
    let Some(Event::Gap(gap)) = events.first() else { panic!("the gap comes first: {:?}", events.first()) };
    let rest = events[1..]
        .iter()
        .map(|e| match e {
            Event::Notification(n) => n.payload.split(' ').next().unwrap().parse().unwrap(),
            Event::Gap(g) => panic!("one gap only, got another: {g:?}"),
        })
        .collect();
    (*gap, rest)
}

fn notify_n(c: &mut Connection, from: u64, n: u64, pad: &str) {
    for i in from..from + n {
        c.notify("c", &format!("{i} {pad}")).unwrap();
    }
}

/// A listener whose lag limit is `limit`, and a notifier, on a fresh queue.
fn limited_pair(t: &TempDir, limit: u64) -> (Connection, Connection) {
    let opts = Options::new().listener_max_lag_bytes(limit);
    let q = t.queue();
    let mut l = Connection::with_options(&q, &opts).unwrap();
    l.listen("c").unwrap();
    (l, Connection::with_options(&q, &opts).unwrap())
}

/// The second of two cuts lands between the owner's read (which the first cut overlapped) and
/// its taking of the first gap: what the owner read between the two cuts' floors was counted by
/// neither cutter, yet lies inside the range it drops.
#[test]
fn a_second_cut_before_the_owner_takes_the_first_counts_what_it_read_between() {
    let _h = HOOK.lock().unwrap_or_else(|e| e.into_inner());
    let t = TempDir::new("cut-hole");
    let pad = "x".repeat(60); // entries of about 100 bytes
    let (mut l, n) = limited_pair(&t, 2000);
    let n = std::sync::Arc::new(Mutex::new(n));
    let mut n0 = n.lock().unwrap();
    notify_n(&mut n0, 0, 15, &pad); // about 1,500 bytes: within the limit
    drop(n0);
    let (hook_n, hook_pad) = (n.clone(), pad.clone());
    let mut step = 0;
    let me = std::thread::current().id();
    set_read_hook(Some(Box::new(move |p| {
        if std::thread::current().id() != me {
            return; // another test's session
        }
        let mut n = hook_n.lock().unwrap();
        match (step, p) {
            // Cut 1 while the listener reads the first 15: its floor is the listener's start.
            (0, ReadPoint::Reading) => {
                notify_n(&mut n, 15, 10, &hook_pad);
                n.queue().stats().unwrap();
                step = 1;
            }
            // Cut 2 once the listener has published the end of the 15 as its position.
            (1, ReadPoint::Published) => {
                notify_n(&mut n, 25, 30, &hook_pad);
                n.queue().stats().unwrap();
                step = 2;
            }
            _ => {}
        }
    })));
    let got = events(&mut l);
    set_read_hook(None);
    let (gap, rest) = one_gap_then(&got);
    assert!(!rest.is_empty(), "the listener resumes after the gap");
    assert_eq!(gap.skipped + rest.len() as u64, 55, "every notification is received or counted: {gap:?}");
    assert_eq!(rest, (gap.skipped..55).collect::<Vec<_>>(), "then exactly the notifications after it");
    assert!(gap.first_txn <= gap.last_txn);
}

/// A cut that ends between the owner's check for gaps and the start of its read moves the floor
/// the read starts from: the gap must still come before what the read copies.
#[test]
fn a_cut_just_before_a_read_is_reported_before_what_follows_it() {
    let _h = HOOK.lock().unwrap_or_else(|e| e.into_inner());
    let t = TempDir::new("cut-before-read");
    let pad = "x".repeat(60);
    let (mut l, n) = limited_pair(&t, 2000);
    let n = std::sync::Arc::new(Mutex::new(n));
    notify_n(&mut n.lock().unwrap(), 0, 15, &pad);
    let (hook_n, hook_pad) = (n.clone(), pad.clone());
    let mut done = false;
    let me = std::thread::current().id();
    set_read_hook(Some(Box::new(move |p| {
        if p == ReadPoint::Start && !done && std::thread::current().id() == me {
            let mut n = hook_n.lock().unwrap();
            notify_n(&mut n, 15, 10, &hook_pad);
            n.queue().stats().unwrap();
            done = true;
        }
    })));
    let got = events(&mut l);
    set_read_hook(None);
    let (gap, rest) = one_gap_then(&got);
    assert_eq!(gap.skipped + rest.len() as u64, 25, "every notification is received or counted: {gap:?}");
    assert_eq!(rest, (gap.skipped..25).collect::<Vec<_>>(), "then exactly the notifications after it");
}

/// A subscriber received notifications and acknowledged some; a cut passed the rest. They can no
/// longer be delivered again, so if its session goes away without acknowledging them they are
/// the next attach's gap (exactly those still unacknowledged), never silently gone.
#[test]
fn what_a_cut_passed_unacknowledged_is_the_next_attachs_gap() {
    let t = TempDir::new("cut-owed");
    let q = t.queue();
    let pad = "x".repeat(60);
    let opts = SubscribeOptions::new().ack(AckMode::Explicit).max_lag_bytes(2000);
    let mut n = Connection::open(&q).unwrap();
    let mut w = Connection::open(&q).unwrap();
    w.subscribe("s", &["c"], &opts).unwrap();
    notify_n(&mut n, 0, 10, &pad);
    let first: Vec<_> = std::iter::from_fn(|| w.notifies().unwrap()).collect();
    assert_eq!(first.len(), 10);
    w.ack(first[2].position).unwrap(); // 0..=2 processed
    notify_n(&mut n, 10, 40, &pad); // about 4,000 bytes past the read position
    n.queue().stats().unwrap(); // the cut: 3..=9 were read, not acknowledged, and are gone
    w.ack(first[4].position).unwrap(); // 3 and 4 processed after the cut
    let (gap, rest) = one_gap_then(&events(&mut w));
    assert!(gap.skipped > 0 && !rest.is_empty());
    let resumed = rest[0];
    assert_eq!(rest, (resumed..50).collect::<Vec<_>>());
    assert_eq!(gap.skipped, resumed - 10, "the live session's gap: what it never received");
    // The session goes away without acknowledging 5..=9 nor what followed the gap.
    w.detach().unwrap();
    let mut w2 = Connection::open(&q).unwrap();
    w2.subscribe("s", &["c"], &opts).unwrap();
    let (gap2, rest2) = one_gap_then(&events(&mut w2));
    assert_eq!(rest2, (resumed..50).collect::<Vec<_>>(), "what followed the first gap is delivered again");
    assert_eq!(gap2.skipped, 5, "5..=9 were received, never acknowledged, and cut: {gap2:?}");
    assert!(gap2.first_txn <= gap2.last_txn && gap2.last_txn < first[9].txn + 1);
}

/// A subscriber that acknowledges everything it received after a cut owes nothing: the next
/// attach has no gap.
#[test]
fn acknowledging_everything_after_a_cut_leaves_nothing_owed() {
    let t = TempDir::new("cut-owed-paid");
    let q = t.queue();
    let pad = "x".repeat(60);
    for ack in [AckMode::Explicit, AckMode::Auto] {
        let name = format!("s{ack:?}");
        let opts = SubscribeOptions::new().ack(ack).max_lag_bytes(2000);
        let mut n = Connection::open(&q).unwrap();
        let mut w = Connection::open(&q).unwrap();
        w.subscribe(&name, &["c"], &opts).unwrap();
        notify_n(&mut n, 0, 10, &pad);
        let first: Vec<_> = std::iter::from_fn(|| w.notifies().unwrap()).collect();
        notify_n(&mut n, 10, 40, &pad);
        n.queue().stats().unwrap();
        if ack == AckMode::Explicit {
            w.ack(first[9].position).unwrap();
        }
        let (gap, rest) = one_gap_then(&events(&mut w));
        assert_eq!(gap.skipped + 10 + rest.len() as u64, 50, "{ack:?}: {gap:?}");
        // Leave: explicit acknowledgement left what followed the gap unacknowledged (delivered
        // again, not owed: the queue still holds it); automatic acknowledges it by asking for more.
        if ack == AckMode::Explicit {
            w.detach().unwrap();
            let mut again = Connection::open(&q).unwrap();
            again.subscribe(&name, &["c"], &opts).unwrap();
            let got = events(&mut again);
            assert!(
                got.iter().all(|e| matches!(e, Event::Notification(_))),
                "{ack:?}: no gap owed after acknowledging what the cut passed: {:?}",
                got.first()
            );
        } else {
            w.detach().unwrap();
            let mut again = Connection::open(&q).unwrap();
            again.subscribe(&name, &["c"], &opts).unwrap();
            let got: Vec<_> = std::iter::from_fn(|| again.notifies().unwrap()).map(|n| n.payload).collect();
            let last = format!("49 {pad}");
            assert_eq!(got, [last], "{ack:?}: no gap, only the notification in hand again");
        }
    }
}

/// A cutter SIGKILLed halfway through recording a cut (the count stored, the floor not): the
/// next process to take the tail lock finishes the cut from its journal, so the listener's gap
/// counts exactly what it does not receive.
#[test]
fn a_cutter_killed_halfway_is_finished_by_the_next() {
    let t = TempDir::new("cut-killed");
    let q = t.queue();
    let mut l = Connection::with_options(&q, &tight()).unwrap();
    l.listen("c").unwrap();
    let marker = q.parent().unwrap().join("parked");
    let m = marker.clone();
    let mut filler = spawn_via(&[], "fill", &[q.display().to_string()], move |c| {
        c.env("HARK_FAULT_PARK_IN_CUT", &m);
    });
    let mut committed = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the filler never cut the listener");
        std::thread::sleep(Duration::from_millis(5));
    }
    filler.kill();
    while let Some(l) = filler.line() {
        committed = l[2..].parse::<u64>().unwrap() + 1;
    }
    assert!(committed > 500, "the queue filled first ({committed})");
    let mut n = Connection::with_options(&q, &tight()).unwrap();
    n.notify("c", &format!("{committed} last")).unwrap();
    let total = committed + 1;
    let (gap, rest) = one_gap_then(&events(&mut l));
    assert_eq!(gap.skipped + rest.len() as u64, total, "received or counted, not both: {gap:?}");
    assert_eq!(rest, (gap.skipped..total).collect::<Vec<_>>());
}

/// A lag limit holds at the reader's next receive even when nothing advanced the tail (all the
/// traffic fits in one segment, nobody asked for stats): bytes at once, age within a millisecond.
#[test]
fn limits_hold_at_the_next_read_without_a_tail_advance() {
    let t = TempDir::new("limits-at-read");
    let q = t.queue();
    let pad = "x".repeat(60);
    let mut n = Connection::open(&q).unwrap();
    let mut w = Connection::open(&q).unwrap();
    w.subscribe("bytes", &["c"], &SubscribeOptions::new().max_lag_bytes(2000)).unwrap();
    notify_n(&mut n, 0, 50, &pad); // about 5,000 bytes, in the first segment
    let (gap, rest) = one_gap_then(&events(&mut w));
    assert_eq!(gap.skipped + rest.len() as u64, 50, "{gap:?}");
    assert_eq!(rest, (gap.skipped..50).collect::<Vec<_>>());
    assert!(rest.len() < 25, "cut to within the limit: {} kept", rest.len());

    let mut a = Connection::open(&q).unwrap();
    a.subscribe("age", &["d"], &SubscribeOptions::new().max_lag_age(Duration::from_millis(50))).unwrap();
    for i in 0..10 {
        n.notify("d", &format!("{i} old")).unwrap();
    }
    std::thread::sleep(Duration::from_millis(120));
    n.notify("d", "10 new").unwrap();
    let (gap, rest) = one_gap_then(&events(&mut a));
    assert_eq!((gap.skipped, rest), (10, vec![10]), "the old ones are a gap, the new one comes");
}

/// A listener past its limit again behind a cut it has not taken yet, while another process
/// holds the tail lock (there, a cutter parked halfway and then killed; in life, another
/// listener taking its own gap at the same instant): it waits for the lock, and receives one gap
/// counting what both cuts skip, then only what is within its limit. (It used to give up its own
/// cut when the lock was busy, take the first gap alone, and either read a backlog past its
/// limit or be cut again at once: two gaps in a row.)
#[test]
fn a_listener_past_its_limit_behind_a_pending_cut_gets_one_gap() {
    let t = TempDir::new("cut-pending-and-past");
    let q = t.queue();
    let pad = "x".repeat(60);
    let (mut l, mut n) = limited_pair(&t, 2000);
    notify_n(&mut n, 0, 50, &pad); // about 5,000 bytes: past the limit
    let marker = q.parent().unwrap().join("parked");
    let m = marker.clone();
    let mut cutter = spawn_via(&[], "stats", &[q.display().to_string()], move |c| {
        c.env("HARK_FAULT_PARK_IN_CUT", &m);
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the cutter never parked");
        std::thread::sleep(Duration::from_millis(5));
    }
    notify_n(&mut n, 50, 50, &pad); // past the limit again, behind the parked cut
    let killer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(200));
        cutter.kill();
    });
    let got = events(&mut l);
    killer.join().unwrap();
    let (gap, rest) = one_gap_then(&got);
    assert_eq!(gap.skipped + rest.len() as u64, 100, "every notification is received or counted: {gap:?}");
    assert_eq!(rest, (gap.skipped..100).collect::<Vec<_>>(), "then exactly the notifications after it");
    assert!(rest.len() < 25, "cut to within the limit: {} kept", rest.len());
}
