//! Hostile and stale files not covered by `core/tests/files.rs`: symlinks planted in place of the
//! `slots` and `lock` files and of the next segment a commit will create, a symlink, FIFO or
//! directory in place of the spare segment it would reuse, special files in place of the control
//! file, stale files a crash leaves
//! (`control.new`, segment files past the head, a segment created but never allocated), and
//! positions that span more than a full queue. Each gives a clear error or a safe clean-up, never
//! a crash, a hang or a write through the link.

use hark::{Connection, ErrorKind, Options};
use std::fs;
use std::os::unix::fs::{symlink, FileExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use hark_hardening::TempDir;

fn small() -> Options {
    Options::new().max_queue_size(512 << 10).segment_size(64 << 10)
}

fn drain(c: &mut Connection) -> Vec<String> {
    c.consume_input().unwrap();
    std::iter::from_fn(|| c.notifies().unwrap()).map(|n| n.payload).collect()
}

/// Notifies 1000-byte payloads until the head is within 3000 bytes of its segment's end.
fn fill_segment(c: &mut Connection) -> usize {
    let seg = c.queue().segment_size();
    let mut n = 0;
    while seg - c.queue().stats().unwrap().head % seg >= 3000 {
        c.notify("c", &format!("fill{n}:{}", "f".repeat(1000))).unwrap();
        n += 1;
    }
    n
}

/// A queue with a listener on "c" and a notifier that filled the first segment to its last 3000
/// bytes; returns them with the number of notifications sent.
fn listener_and_a_full_segment(t: &TempDir) -> (PathBuf, Connection, Connection, usize) {
    let q = t.queue();
    let mut l = Connection::with_options(&q, &small()).unwrap();
    l.listen("c").unwrap();
    let mut n = Connection::open(&q).unwrap();
    let filled = fill_segment(&mut n);
    (q, l, n, filled)
}

/// A file holding "precious", outside the queue, and a symlink to it at `link`.
fn plant_link(t: &TempDir, link: &Path) -> PathBuf {
    let victim = t.0.join("victim");
    fs::write(&victim, b"precious").unwrap();
    symlink(&victim, link).unwrap();
    victim
}

#[test]
fn symlinks_in_place_of_the_slots_and_lock_files_are_refused() {
    let t = TempDir::new("links");
    let q = t.queue();
    drop(Connection::with_options(&q, &small()).unwrap());
    let victim = t.0.join("victim");
    fs::write(&victim, b"precious").unwrap();
    for name in ["slots", "lock"] {
        fs::remove_file(q.join(name)).unwrap();
        if name == "lock" {
            // The lock is taken only to create or wipe the queue: make the open need one.
            fs::remove_file(q.join("control")).unwrap();
        }
        symlink(&victim, q.join(name)).unwrap();
        let e = Connection::open(&q).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{name}: {e}");
        assert_eq!(e.message(), format!("\"{name}\" in the queue directory is a symbolic link"));
        fs::remove_file(q.join(name)).unwrap();
    }
    assert_eq!(fs::read(&victim).unwrap(), b"precious");
    // With the links gone the queue opens again and recreates what it needs.
    let mut c = Connection::open(&q).unwrap();
    c.listen("c").unwrap();
    c.notify("c", "back").unwrap();
    assert_eq!(drain(&mut c), ["back"]);
}

#[test]
fn a_symlink_planted_as_the_next_segment_fails_the_commit_and_is_never_written_through() {
    let t = TempDir::new("nextseg");
    let (q, mut l, mut n, filled) = listener_and_a_full_segment(&t);
    let victim = plant_link(&t, &q.join("000000000000001"));
    n.execute("BEGIN").unwrap();
    for i in 0..5 {
        n.notify("c", &format!("doomed{i}:{}", "d".repeat(1000))).unwrap();
    }
    let e = n.execute("COMMIT").unwrap_err();
    assert_eq!(
        (e.kind(), e.message()),
        (ErrorKind::PermissionDenied, "\"000000000000001\" in the queue directory is a symbolic link")
    );
    assert_eq!(fs::read(&victim).unwrap(), b"precious", "the commit wrote through the link");
    let got = drain(&mut l);
    assert_eq!(got.len(), filled, "the failed commit became visible: {:?}", &got[filled.min(got.len())..]);
    // Once the link is removed, the same commit goes through.
    fs::remove_file(q.join("000000000000001")).unwrap();
    n.execute("BEGIN; NOTIFY c, 'after'; NOTIFY c, 'and more'").unwrap();
    n.notify("c", &format!("big:{}", "b".repeat(3000))).unwrap();
    n.execute("COMMIT").unwrap();
    let got: Vec<String> = drain(&mut l).into_iter().map(|p| p.split(':').next().unwrap().to_owned()).collect();
    assert_eq!(got, ["after", "and more", "big"]);
}

#[test]
fn a_planted_spare_is_never_written_through_nor_trusted() {
    let t = TempDir::new("spare");
    let (q, mut l, mut n, filled) = listener_and_a_full_segment(&t);
    // A symlink as the spare: removed, never taken as the next segment nor written through.
    let victim = plant_link(&t, &q.join("spare"));
    n.notify("c", &format!("next:{}", "d".repeat(3000))).unwrap();
    assert_eq!(fs::read(&victim).unwrap(), b"precious", "the commit wrote through the link");
    assert!(fs::symlink_metadata(q.join("spare")).is_err(), "the link was left as the spare");
    assert!(fs::symlink_metadata(q.join("000000000000001")).unwrap().is_file());
    assert_eq!(drain(&mut l).len(), filled + 1);
    // A short file of garbage as the spare: allocated to full size before use, its bytes unread.
    fs::write(q.join("spare"), vec![0xa5u8; 100]).unwrap();
    for i in 0..140 {
        n.notify("c", &format!("cross{i}:{}", "x".repeat(1000))).unwrap();
    }
    let got = drain(&mut l);
    assert_eq!(got.len(), 140);
    assert!(got.iter().enumerate().all(|(i, p)| p.starts_with(&format!("cross{i}:"))));
    assert!(!q.join("spare").exists() || fs::metadata(q.join("spare")).unwrap().len() == 64 << 10);
}

/// Something other than a regular file of the queue planted as `spare` (a FIFO, a directory, a
/// symlink) is removed, or ignored when it cannot be (a directory with files in it), and never
/// renamed into a segment's name, where it would fail every commit that needs that segment.
#[test]
fn a_spare_that_is_not_a_regular_file_is_removed_or_ignored_and_commits_go_on() {
    for kind in ["fifo", "empty-dir", "full-dir", "symlink", "dangling-symlink"] {
        let t = TempDir::new(&format!("badspare-{kind}"));
        let (q, mut l, mut n, filled) = listener_and_a_full_segment(&t);
        let spare = q.join("spare");
        let victim = t.0.join("victim");
        match kind {
            "fifo" => {
                let c = std::ffi::CString::new(spare.to_str().unwrap()).unwrap();
                // SAFETY: a valid C string.
                assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
            }
            "empty-dir" => fs::create_dir(&spare).unwrap(),
            "full-dir" => {
                fs::create_dir(&spare).unwrap();
                fs::write(spare.join("inside"), b"precious").unwrap();
            }
            "symlink" => drop(plant_link(&t, &spare)),
            _ => symlink(t.0.join("nowhere"), &spare).unwrap(),
        }
        // Commits across several segment boundaries, the tail advancing behind them.
        let mut sent = 0;
        let mut got = drain(&mut l).len();
        for round in 0..4 {
            for i in 0..100 {
                n.notify("c", &format!("{kind}{round}.{i}:{}", "x".repeat(1000)))
                    .unwrap_or_else(|e| panic!("{kind}: round {round}, commit {i}: {e}"));
                sent += 1;
            }
            got += drain(&mut l).len();
        }
        assert_eq!(got, filled + sent, "{kind}");
        assert!(n.queue().stats().unwrap().head > 5 * n.queue().segment_size(), "{kind}: too few segments crossed");
        for e in fs::read_dir(&q).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().into_string().unwrap();
            if name.len() == 15 {
                assert!(
                    fs::symlink_metadata(e.path()).unwrap().is_file(),
                    "{kind}: segment {name} is not a regular file"
                );
            }
        }
        if kind == "full-dir" {
            // The first open after a reboot wipes the queue: the directory it cannot remove is
            // left, not an error that would keep the queue from being created.
            drop((l, n));
            let control = fs::OpenOptions::new().write(true).open(q.join("control")).unwrap();
            control.write_all_at(b"00000000-0000-0000-0000-000000000000", 16).unwrap();
            let mut c = Connection::open(&q).unwrap();
            assert_eq!(c.queue().stats().unwrap().head, 0, "not wiped");
            c.listen("c").unwrap();
            c.notify("c", "after the wipe").unwrap();
            assert_eq!(drain(&mut c), ["after the wipe"]);
        }
        match kind {
            "full-dir" => assert_eq!(fs::read(spare.join("inside")).unwrap(), b"precious", "ignored, untouched"),
            "symlink" => assert_eq!(fs::read(&victim).unwrap(), b"precious", "written through the link"),
            _ => {}
        }
        if kind != "full-dir" {
            // Removed; the tail may since have kept a real segment file there.
            let m = fs::symlink_metadata(&spare);
            assert!(m.as_ref().map_or(true, |m| m.is_file()), "{kind}: still planted: {m:?}");
        }
        assert!(!t.0.join("nowhere").exists());
    }
}

/// A segment file the tail has passed but that cannot be removed (here a directory planted in its
/// place) is a warning for whoever advances the tail, never an error: the commit that crossed into
/// a new segment did commit, and the read that passed it did read.
#[test]
fn a_segment_that_cannot_be_removed_is_a_warning_not_a_failed_commit_or_read() {
    let t = TempDir::new("unremovable");
    let q = t.queue();
    let mut l = Connection::with_options(&q, &small()).unwrap();
    l.listen("c").unwrap();
    let mut n = Connection::open(&q).unwrap();
    let warned = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    for c in [&mut l, &mut n] {
        let w = warned.clone();
        c.set_notice_handler(Some(Box::new(move |x: &hark::Notice| w.lock().unwrap().push(x.message.clone()))));
    }
    n.notify("c", "first").unwrap();
    assert_eq!(drain(&mut l), ["first"]);
    // Both sessions keep segment 0 mapped; its name now holds a non-empty directory, and a spare
    // exists, so the tail must remove it rather than keep it.
    fs::rename(q.join("000000000000000"), t.0.join("old-segment")).unwrap();
    fs::create_dir(q.join("000000000000000")).unwrap();
    fs::write(q.join("000000000000000").join("keep"), b"x").unwrap();
    fs::write(q.join("spare"), vec![0u8; 64 << 10]).unwrap();
    let mut sent = 0;
    while n.queue().stats().unwrap().head < 70 << 10 {
        n.notify("c", &format!("{sent}:{}", "p".repeat(1000))).unwrap();
        sent += 1;
    }
    let got = drain(&mut l);
    assert_eq!(got.len(), sent, "the read that passed the segment lost notifications");
    // And the next commit that crosses a segment tries again, warns again, and commits.
    while n.queue().stats().unwrap().head < 140 << 10 {
        n.notify("c", &format!("{sent}:{}", "p".repeat(1000))).unwrap();
        sent += 1;
    }
    assert_eq!(drain(&mut l).len() + got.len(), sent);
    let w = warned.lock().unwrap().clone();
    assert!(w.len() >= 2, "{w:?}");
    assert!(
        w.iter().all(|m| m.starts_with("could not truncate the NOTIFY queue: could not remove \"000000000000000\"")),
        "{w:?}"
    );
}

#[test]
fn special_files_in_place_of_the_control_file_are_errors_not_hangs() {
    let t = TempDir::new("special");
    let q = t.queue();
    drop(Connection::open(&q).unwrap());
    fs::remove_file(q.join("control")).unwrap();
    let fifo = std::ffi::CString::new(q.join("control").into_os_string().into_encoded_bytes()).unwrap();
    // SAFETY: a valid C string.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
    let started = Instant::now();
    let e = Connection::open(&q).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "opening a FIFO control file blocked");
    assert_eq!(
        (e.kind(), e.message()),
        (ErrorKind::PermissionDenied, "\"control\" in the queue directory is not a regular file")
    );
    fs::remove_file(q.join("control")).unwrap();
    fs::create_dir(q.join("control")).unwrap();
    let e = Connection::open(&q).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io, "{e}");
    assert!(e.message().starts_with("could not open \"control\""), "{}", e.message());
}

#[test]
fn stale_files_of_a_crash_are_cleaned_or_overwritten_never_trusted() {
    let t = TempDir::new("stale");
    let q = t.queue();
    let mut l = Connection::with_options(&q, &small()).unwrap();
    l.listen("c").unwrap();
    let mut n = Connection::open(&q).unwrap();
    n.notify("c", "first").unwrap();
    // A writer died after creating the next segment but before allocating it (empty file), and
    // another left garbage in the one after: both lie past the head, so they are reused.
    fs::write(q.join("000000000000001"), b"").unwrap();
    fs::write(q.join("000000000000002"), vec![0xa5u8; 64 << 10]).unwrap();
    let filled = fill_segment(&mut n);
    for i in 0..140 {
        n.notify("c", &format!("cross{i}:{}", "x".repeat(1000))).unwrap();
    }
    let got = drain(&mut l);
    assert_eq!(got.len(), 1 + filled + 140);
    assert!(got.iter().skip(1 + filled).enumerate().all(|(i, p)| p.starts_with(&format!("cross{i}:"))));
    drop((l, n));

    // A crash while creating a queue leaves `control.new`; the next creation replaces it.
    let q2 = t.0.join("q2");
    fs::create_dir(&q2).unwrap();
    fs::set_permissions(&q2, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    fs::write(q2.join("control.new"), vec![0x5au8; 4096]).unwrap();
    fs::write(q2.join("000000000000007"), vec![0x5au8; 100]).unwrap();
    let mut c = Connection::open(&q2).unwrap();
    c.listen("c").unwrap();
    c.notify("c", "fresh").unwrap();
    assert_eq!(drain(&mut c), ["fresh"]);
    assert!(!q2.join("control.new").exists());
    assert!(!q2.join("000000000000007").exists(), "a stale segment of no queue was kept");
}

fn write_word(path: &Path, offset: u64, v: u64) {
    fs::OpenOptions::new().write(true).open(path).unwrap().write_all_at(&v.to_ne_bytes(), offset).unwrap();
}

#[test]
fn positions_spanning_more_than_a_full_queue_are_refused_at_open() {
    let t = TempDir::new("span");
    let q = t.queue();
    drop(Connection::with_options(&q, &small()).unwrap());
    let control = q.join("control");
    let good = fs::read(&control).unwrap();
    // A head billions of segments past the tail: the first tail advance would unlink forever.
    write_word(&control, hark_hardening::HEAD_OFFSET, 17_626_817_101_568);
    let started = Instant::now();
    let e = Connection::open(&q).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(e.kind(), ErrorKind::Corrupted);
    assert!(e.message().contains("is corrupted (head 17626817101568, tail 0, first segment 0)"), "{}", e.message());
    // A tail far ahead of the oldest segment file, with the head beside it: refused as well.
    fs::write(&control, &good).unwrap();
    let far = 1u64 << 40;
    write_word(&control, hark_hardening::HEAD_OFFSET, far);
    write_word(&control, hark_hardening::TAIL_OFFSET, far);
    assert_eq!(Connection::open(&q).unwrap_err().kind(), ErrorKind::Corrupted);
    // The largest span a real queue can have is accepted.
    fs::write(&control, &good).unwrap();
    let max = (512 << 10) + (64 << 10);
    write_word(&control, hark_hardening::HEAD_OFFSET, max);
    write_word(&control, hark_hardening::TAIL_OFFSET, 0);
    let c = Connection::open(&q);
    assert!(c.is_ok(), "{:?}", c.err());
}

/// Where listener slot 0's position lies in the control file (`layout.rs`: the slots follow the
/// 256-byte `Shared` at 512; `pos` is at 16 in a slot). The test checks it against the queue.
const SLOT0_POS_OFFSET: u64 = 512 + 256 + 16;

fn read_word(path: &Path, offset: u64) -> u64 {
    let mut b = [0u8; 8];
    fs::File::open(path).unwrap().read_exact_at(&mut b, offset).unwrap();
    u64::from_ne_bytes(b)
}

#[test]
fn a_head_moved_backwards_under_live_sessions_is_refused_not_written_over() {
    let t = TempDir::new("backwards");
    let q = t.queue();
    let mut l = Connection::with_options(&q, &small()).unwrap();
    l.listen("c").unwrap();
    let mut n = Connection::open(&q).unwrap();
    for i in 0..3 {
        n.notify("c", &format!("n{i}")).unwrap();
    }
    assert_eq!(drain(&mut l), ["n0", "n1", "n2"]);
    let head = n.queue().stats().unwrap().head;
    write_word(&q.join("control"), hark_hardening::HEAD_OFFSET, 8);
    // The notifier would append over committed entries; the listener would read them again.
    let e = n.notify("c", "over").unwrap_err();
    assert_eq!((e.kind(), e.sqlstate()), (ErrorKind::Corrupted, "XX001"));
    assert!(e.message().ends_with(&format!("is corrupted (head 8, after {head})")), "{}", e.message());
    let e = l.notifies().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");
    // Put back, both go on.
    write_word(&q.join("control"), hark_hardening::HEAD_OFFSET, head);
    n.notify("c", "after").unwrap();
    assert_eq!(drain(&mut l), ["after"]);
}

#[test]
fn a_listener_position_behind_the_tail_is_refused_not_walked() {
    let t = TempDir::new("slotpos");
    let q = t.queue();
    let mut l = Connection::with_options(&q, &small()).unwrap();
    l.listen("c").unwrap();
    let mut n = Connection::open(&q).unwrap();
    for i in 0..200 {
        n.notify("c", &format!("{i}:{}", "x".repeat(1000))).unwrap();
    }
    assert_eq!(drain(&mut l).len(), 200);
    let st = n.queue().stats().unwrap();
    assert!(st.tail > 128 << 10, "the tail moved past two segments: {st:?}");
    let control = q.join("control");
    assert_eq!(read_word(&control, SLOT0_POS_OFFSET), st.listeners[0].position, "slot 0's offset");
    write_word(&control, SLOT0_POS_OFFSET, 0);
    let e = n.queue().stats().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupted, "{e}");
    assert!(
        e.message().ends_with(&format!("is corrupted (listener 0 at 0, behind the tail {})", st.tail)),
        "{}",
        e.message()
    );
}
