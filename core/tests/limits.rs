//! The queue's size limit (I4) and PostgreSQL's half-full warning (R27, R28), and the disk
//! following the backlog (I5).

mod common;

use common::{drain, TempDir};
use hark::{Connection, ErrorKind, Notice, Options};
use std::sync::{Arc, Mutex};

fn small() -> Options {
    Options::new().max_queue_size(512 << 10).segment_size(64 << 10)
}

#[test]
fn a_full_queue_fails_the_commit_whole_and_recovers_when_listeners_catch_up() {
    let t = TempDir::new("full");
    let q = t.queue();
    let mut slow = Connection::with_options(&q, &small()).unwrap();
    slow.listen("c").unwrap();
    let mut n = Connection::open(&q).unwrap();
    let warnings = Arc::new(Mutex::new(Vec::<Notice>::new()));
    let w = warnings.clone();
    n.set_notice_handler(Some(Box::new(move |x: &Notice| w.lock().unwrap().push(x.clone()))));

    let payload = "p".repeat(1000);
    let mut committed = 0;
    let err = loop {
        match n.notify("c", &format!("{committed}:{payload}")) {
            Ok(()) => committed += 1,
            Err(e) => break e,
        }
        assert!(committed < 10_000, "the queue never filled");
    };
    assert_eq!(
        (err.kind(), err.sqlstate(), err.message()),
        (ErrorKind::QueueFull, "54000", "too many notifications in the NOTIFY queue")
    );
    assert!(committed > 400, "only {committed} fitted in 512 KiB");
    // A multi-notification transaction fails whole.
    n.execute("BEGIN").unwrap();
    for i in 0..10 {
        n.notify("c", &format!("fail-{i}:{payload}")).unwrap();
    }
    assert_eq!(n.commit().unwrap_err().kind(), ErrorKind::QueueFull);
    assert_eq!(n.transaction_status(), hark::TransactionStatus::Idle);

    // The half-full warning named the slowest listener, once (it is rate limited).
    let ws = warnings.lock().unwrap().clone();
    assert_eq!(ws.len(), 1, "{ws:?}");
    assert!(ws[0].message.starts_with("NOTIFY queue is ") && ws[0].message.ends_with("% full"), "{}", ws[0].message);
    assert_eq!(
        ws[0].detail.as_deref(),
        Some(
            format!("The server process with PID {} is among those with the oldest transactions.", slow.backend_pid())
                .as_str()
        )
    );
    assert_eq!(
        ws[0].hint.as_deref(),
        Some(
            "The NOTIFY queue cannot be emptied until that session reads its notifications (a listener that is not reading holds it back) or stops listening."
        )
    );

    // The listener catches up: it got every committed notification and nothing of the failures.
    let got = drain(&mut slow);
    assert_eq!(got.len(), committed);
    assert!(got.iter().enumerate().all(|(i, (_, p))| p.starts_with(&format!("{i}:"))));
    // Now commits succeed again, and the disk shrinks back.
    n.notify("c", "again").unwrap();
    assert_eq!(drain(&mut slow).len(), 1);
    let st = n.queue().stats().unwrap();
    assert!(st.segment_files.len() <= 2, "{:?}", st.segment_files);
}

#[test]
fn an_idle_listener_on_a_quiet_channel_does_not_pin_the_queue() {
    let t = TempDir::new("idle");
    let q = t.queue();
    let idle = {
        let mut c = Connection::with_options(&q, &small()).unwrap();
        c.listen("quiet").unwrap();
        c
    };
    let mut n = Connection::open(&q).unwrap();
    // Many times the queue's size passes by; the idle listener never reads.
    for i in 0..5000 {
        n.notify("busy", &format!("{i}:{}", "x".repeat(500))).unwrap();
    }
    let st = n.queue().stats().unwrap();
    assert_eq!(st.listeners.len(), 1);
    assert!(st.segment_files.len() <= 2, "{:?}", st.segment_files);
    assert!(st.listeners[0].lag < (64 << 10), "idle listener lags {} bytes", st.listeners[0].lag);
    drop(idle);
}

/// The format's channel bucket (core/src/layout.rs): FNV-1a 64, folded to 256 buckets.
fn bucket(channel: &str) -> usize {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in channel.as_bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let h = h ^ (h >> 32);
    ((h ^ (h >> 16)) as usize) % 256
}

#[test]
fn an_idle_listener_whose_channel_shares_a_bucket_with_a_busy_one_does_not_pin_the_queue() {
    let t = TempDir::new("collide");
    let q = t.queue();
    let quiet = (0..).map(|n| format!("quiet-{n}")).find(|c| bucket(c) == bucket("busy")).unwrap();
    let mut idle = Connection::with_options(&q, &small()).unwrap();
    idle.listen(&quiet).unwrap();
    // A listener on more channels than the exact list holds is matched by its buckets (none of
    // them the busy channel's here).
    let mut wide = Connection::open(&q).unwrap();
    let wide_channels: Vec<String> =
        (0..).map(|n| format!("wide-{n}")).filter(|c| bucket(c) != bucket("busy")).take(20).collect();
    for c in &wide_channels {
        wide.listen(c).unwrap();
    }
    let mut n = Connection::open(&q).unwrap();
    // Ten times the queue's maximum size passes by: any listener pinning it would fill it.
    for i in 0..10_000 {
        n.notify("busy", &format!("{i}:{}", "x".repeat(500))).unwrap();
    }
    let st = n.queue().stats().unwrap();
    assert_eq!(st.listeners.len(), 2);
    for l in &st.listeners {
        assert!(l.lag < (64 << 10), "a listener lags {} bytes", l.lag);
    }
    assert!(st.segment_files.len() <= 2, "{:?}", st.segment_files);
    // Both still get what is theirs.
    n.notify(&wide_channels[7], "owed").unwrap();
    n.notify(&quiet, "for the idle one").unwrap();
    assert_eq!(drain(&mut wide), [(wide_channels[7].clone(), "owed".to_owned())]);
    assert_eq!(drain(&mut idle), [(quiet.clone(), "for the idle one".to_owned())]);
}

/// Segment files the tail passes are recycled: one is kept as `spare` and renamed into the next
/// segment (no fresh allocation), the rest are deleted; their old bytes never reach a listener.
#[test]
fn passed_segments_are_recycled_and_their_old_bytes_never_read() {
    use std::os::unix::fs::MetadataExt;
    let t = TempDir::new("recycle");
    let q = t.queue();
    let mut l = Connection::with_options(&q, &small()).unwrap();
    l.listen("c").unwrap();
    let mut n = Connection::open(&q).unwrap();
    let mut reused = 0;
    let mut sent = 0u64;
    let mut got = 0u64;
    for round in 0..40u64 {
        // Entry sizes change from round to round, so a recycled file's old entry boundaries
        // never line up with the new ones: reading stale bytes would break the check below.
        let spare = std::fs::metadata(q.join("spare")).ok().map(|m| m.ino());
        let filler = "x".repeat((round as usize * 37) % 700);
        n.execute("BEGIN").unwrap();
        for _ in 0..150 {
            n.notify("c", &format!("{sent}:{filler}")).unwrap();
            sent += 1;
        }
        n.commit().unwrap();
        let segs: Vec<u64> = n
            .queue()
            .stats()
            .unwrap()
            .segment_files
            .iter()
            .map(|f| std::fs::metadata(q.join(f)).unwrap().ino())
            .collect();
        if spare.is_some_and(|i| segs.contains(&i)) {
            reused += 1;
        }
        while let Some(x) = l.notifies_ref().unwrap() {
            assert_eq!(x.payload, format!("{got}:{filler}"));
            got += 1;
        }
        let st = n.queue().stats().unwrap();
        assert!(st.segment_files.len() <= 2, "round {round}: {:?}", st.segment_files);
        let names: Vec<String> =
            std::fs::read_dir(&q).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        assert!(names.iter().filter(|n| n.as_str() == "spare").count() <= 1);
    }
    assert_eq!(got, sent);
    assert!(reused >= 10, "the spare became the next segment only {reused} times");
    let st = n.queue().stats().unwrap();
    assert!(st.spare_file, "no spare kept after the tail moved");
}

#[test]
fn bad_options_are_refused_clearly() {
    let t = TempDir::new("opts");
    let q = t.queue();
    for (o, msg) in [
        (Options::new().max_queue_size(1000), "max_queue_size must be between"),
        (Options::new().max_payload(0), "max_payload must be between"),
        (Options::new().max_payload((1 << 20) + 1), "max_payload must be between"),
        (Options::new().segment_size(100_000), "segment_size must be a power of two"),
    ] {
        let e = Connection::with_options(&q, &o).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidArgument);
        assert!(e.message().starts_with(msg), "{}", e.message());
    }
}
