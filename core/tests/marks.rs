//! Publication marks (`Connection::publish_marked`): numbered items of an outside source are
//! published once, whoever publishes them and wherever a publisher is killed.

mod common;

use common::{agent_role, drain, pairs, spawn_via, TempDir};
use hark::{Connection, ErrorKind};
use std::time::{Duration, Instant};

#[test]
fn agent() {
    let Some((role, a)) = agent_role() else { return };
    match role.as_str() {
        // publish DIR KEY FROM TO: publishes items FROM..=TO on channel "c", payload the number.
        "publish" => {
            let mut c = Connection::open(&a[0]).unwrap();
            let (from, to): (u64, u64) = (a[2].parse().unwrap(), a[3].parse().unwrap());
            let texts: Vec<String> = (from..=to).map(|i| i.to_string()).collect();
            let items: Vec<(u64, &str, &str)> = (from..=to).zip(&texts).map(|(i, t)| (i, "c", t.as_str())).collect();
            c.publish_marked(a[1].parse().unwrap(), &items).unwrap();
        }
        other => panic!("unknown role {other}"),
    }
}

fn items(texts: &[(u64, String)]) -> Vec<(u64, &str, &str)> {
    texts.iter().map(|(i, t)| (*i, "c", t.as_str())).collect()
}

fn numbered(from: u64, to: u64) -> Vec<(u64, String)> {
    (from..=to).map(|i| (i, i.to_string())).collect()
}

#[test]
fn items_at_or_below_the_mark_are_never_published_again() {
    let t = TempDir::new("marks");
    let q = t.queue();
    let mut l = Connection::open(&q).unwrap();
    l.listen("c").unwrap();
    let mut p = Connection::open(&q).unwrap();
    assert_eq!(p.published_mark(7).unwrap(), 0);
    assert_eq!(p.publish_marked(7, &items(&numbered(1, 3))).unwrap(), 3);
    assert_eq!(p.published_mark(7).unwrap(), 3);
    // A repeated publication, and one overlapping it: only the new items go out.
    assert_eq!(p.publish_marked(7, &items(&numbered(1, 3))).unwrap(), 0);
    assert_eq!(p.publish_marked(7, &items(&numbered(2, 5))).unwrap(), 2);
    // Another key has a mark of its own.
    assert_eq!(p.publish_marked(8, &items(&numbered(1, 1))).unwrap(), 1);
    assert_eq!(drain(&mut l), pairs(&[("c", "1"), ("c", "2"), ("c", "3"), ("c", "4"), ("c", "5"), ("c", "1")]));
    // Another session of another open sees the same marks.
    let mut p2 = Connection::open(&q).unwrap();
    assert_eq!(p2.publish_marked(7, &items(&numbered(4, 6))).unwrap(), 1);
    assert_eq!(drain(&mut l), pairs(&[("c", "6")]));
}

#[test]
fn publish_marked_refuses_a_block_key_zero_and_disordered_items() {
    let t = TempDir::new("marks-refuse");
    let mut p = Connection::open(t.queue()).unwrap();
    p.begin().unwrap();
    assert_eq!(p.publish_marked(1, &items(&numbered(1, 1))).unwrap_err().kind(), ErrorKind::TransactionState);
    p.rollback().unwrap();
    assert_eq!(p.publish_marked(0, &items(&numbered(1, 1))).unwrap_err().kind(), ErrorKind::InvalidArgument);
    let backwards = vec![(2, "c", "a"), (1, "c", "b")];
    assert_eq!(p.publish_marked(1, &backwards).unwrap_err().kind(), ErrorKind::InvalidArgument);
    assert_eq!(p.published_mark(1).unwrap(), 0);
}

/// Starts a publisher of items 1..=3 under key 5 that parks at `point`, waits for it, kills it.
fn kill_publisher_at(t: &TempDir, point: &str) {
    let marker = t.path().join(format!("parked-{point}"));
    let mut a =
        spawn_via(&[], "publish", &[t.queue().display().to_string(), "5".into(), "1".into(), "3".into()], |c| {
            c.env(point, &marker);
        });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !marker.exists() {
        assert!(Instant::now() < deadline, "the publisher never reached {point}");
        std::thread::sleep(Duration::from_millis(5));
    }
    a.kill();
}

#[test]
fn a_publisher_killed_before_its_head_store_published_nothing_and_the_next_publishes_all() {
    for point in ["HARK_FAULT_PARK_IN_APPEND", "HARK_FAULT_PARK_IN_MARK"] {
        let t = TempDir::new("marks-kill-before");
        let mut l = Connection::open(t.queue()).unwrap();
        l.listen("c").unwrap();
        kill_publisher_at(&t, point);
        assert_eq!(drain(&mut l), vec![], "{point}");
        let mut p = Connection::open(t.queue()).unwrap();
        assert_eq!(p.published_mark(5).unwrap(), 0, "{point}");
        assert_eq!(p.publish_marked(5, &items(&numbered(1, 3))).unwrap(), 3, "{point}");
        assert_eq!(drain(&mut l), pairs(&[("c", "1"), ("c", "2"), ("c", "3")]), "{point}");
    }
}

#[test]
fn a_publisher_killed_after_its_head_store_is_never_repeated() {
    let t = TempDir::new("marks-kill-after");
    let mut l = Connection::open(t.queue()).unwrap();
    l.listen("c").unwrap();
    kill_publisher_at(&t, "HARK_FAULT_PARK_AFTER_HEAD");
    assert_eq!(drain(&mut l), pairs(&[("c", "1"), ("c", "2"), ("c", "3")]));
    let mut p = Connection::open(t.queue()).unwrap();
    // The lock-free reading may lag (the committed value was not yet stored) ...
    assert!(p.published_mark(5).unwrap() <= 3);
    // ... but the publication under the lock knows: nothing again, then only what is new.
    assert_eq!(p.publish_marked(5, &items(&numbered(1, 3))).unwrap(), 0);
    assert_eq!(p.publish_marked(5, &items(&numbered(1, 4))).unwrap(), 1);
    assert_eq!(p.published_mark(5).unwrap(), 4);
    assert_eq!(drain(&mut l), pairs(&[("c", "4")]));
}
