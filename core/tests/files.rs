//! Stale, foreign and damaged queue files (I6, I9, I10): a clear error or a safe clean-up, never
//! a crash.

mod common;

use common::{drain, pairs, TempDir};
use hark::{Connection, ErrorKind, Options};
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};

const BOOT_ID_OFFSET: u64 = 16;

fn write_at(path: &std::path::Path, offset: u64, bytes: &[u8]) {
    use std::os::unix::fs::FileExt;
    fs::OpenOptions::new().write(true).open(path).unwrap().write_all_at(bytes, offset).unwrap();
}

#[test]
fn created_private_whatever_the_umask() {
    let t = TempDir::new("mode");
    let q = t.queue();
    // SAFETY: umask only affects this process's later file creations.
    let old = unsafe { libc::umask(0o000) };
    let c = Connection::open(&q);
    unsafe { libc::umask(old) };
    let mut c = c.unwrap();
    c.listen("x").unwrap();
    c.notify("x", "y").unwrap();
    assert_eq!(fs::metadata(&q).unwrap().permissions().mode() & 0o777, 0o700);
    for e in fs::read_dir(&q).unwrap() {
        let e = e.unwrap();
        assert_eq!(e.metadata().unwrap().permissions().mode() & 0o777, 0o600, "{:?}", e.file_name());
    }
}

#[test]
fn a_reboot_wipes_the_queue_at_first_open() {
    let t = TempDir::new("boot");
    let q = t.queue();
    {
        let mut a =
            Connection::with_options(&q, &Options::new().segment_size(64 << 10).max_queue_size(64 << 20)).unwrap();
        let mut b = Connection::open(&q).unwrap();
        a.listen("c").unwrap();
        for i in 0..200 {
            b.notify("c", &format!("{i}:{}", "x".repeat(1000))).unwrap();
        }
        std::mem::forget(a); // as if the machine went down with a listener registered
    }
    assert!(fs::read_dir(&q).unwrap().count() > 4);
    // The control file now says it was made in another boot.
    write_at(&q.join("control"), BOOT_ID_OFFSET, b"00000000-0000-0000-0000-000000000000");
    let mut c = Connection::open(&q).unwrap();
    let st = c.queue().stats().unwrap();
    assert_eq!((st.head, st.tail, st.listeners.len()), (0, 0, 0));
    assert!(st.segment_files.is_empty(), "{:?}", st.segment_files);
    // Sizes come back to the defaults of a new queue, and it works.
    assert_eq!(st.segment_size, 16 << 20);
    c.listen("c").unwrap();
    c.notify("c", "fresh").unwrap();
    assert_eq!(drain(&mut c), pairs(&[("c", "fresh")]));
}

#[test]
fn unsafe_directories_are_refused() {
    let t = TempDir::new("perm");
    let q = t.queue();
    fs::create_dir(&q).unwrap();
    fs::set_permissions(&q, fs::Permissions::from_mode(0o777)).unwrap();
    let e = Connection::open(&q).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert!(e.message().contains("writable by every user"), "{}", e.message());
    fs::set_permissions(&q, fs::Permissions::from_mode(0o770)).unwrap();
    let e = Connection::open(&q).unwrap_err();
    assert!(e.message().contains("writable by its group"), "{}", e.message());
    // Group sharing opts in.
    let mut c = Connection::with_options(&q, &Options::new().group_shared(true)).unwrap();
    c.notify("x", "shared").unwrap();
    assert_eq!(fs::metadata(q.join("control")).unwrap().permissions().mode() & 0o777, 0o660);
    drop(c);
    fs::set_permissions(&q, fs::Permissions::from_mode(0o755)).unwrap();
    drop(Connection::with_options(&q, &Options::new().group_shared(true)).unwrap());
}

#[test]
fn a_directory_of_another_user_is_refused() {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: giving a directory to another user needs root");
        return;
    }
    let t = TempDir::new("owner");
    let q = t.queue();
    fs::create_dir(&q).unwrap();
    std::os::unix::fs::chown(&q, Some(65534), Some(65534)).unwrap();
    assert_eq!(fs::metadata(&q).unwrap().uid(), 65534);
    let e = Connection::open(&q).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert!(e.message().contains("owned by another user (uid 65534)"), "{}", e.message());
    // A file inside owned by someone else is refused too.
    std::os::unix::fs::chown(&q, Some(0), Some(0)).unwrap();
    drop(Connection::open(&q).unwrap());
    std::os::unix::fs::chown(q.join("control"), Some(65534), None).unwrap();
    let e = Connection::open(&q).unwrap_err();
    assert!(e.message().contains("\"control\" in the queue directory is owned by another user"), "{}", e.message());
}

#[test]
fn symlinks_planted_in_the_directory_are_refused() {
    let t = TempDir::new("link");
    let q = t.queue();
    let mut c = Connection::with_options(&q, &Options::new().segment_size(64 << 10).max_queue_size(64 << 20)).unwrap();
    c.listen("c").unwrap();
    c.notify("c", "x").unwrap();
    drop(c);
    let target = t.path().join("elsewhere");
    fs::write(&target, vec![0u8; 1 << 20]).unwrap();
    fs::remove_file(q.join("control")).unwrap();
    symlink(&target, q.join("control")).unwrap();
    let e = Connection::open(&q).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert_eq!(e.message(), "\"control\" in the queue directory is a symbolic link");
    // A segment replaced by a symlink: the reader reports it.
    fs::remove_file(q.join("control")).unwrap();
    let mut l = Connection::open(&q).unwrap();
    let mut n = Connection::open(&q).unwrap();
    l.listen("c").unwrap();
    n.notify("c", "one").unwrap();
    fs::remove_file(q.join("000000000000000")).unwrap();
    symlink(&target, q.join("000000000000000")).unwrap();
    let mut fresh = Connection::open(&q).unwrap();
    fresh.listen("c").unwrap();
    drop(l);
    let mut l2 = Connection::open(&q).unwrap();
    l2.listen("c").unwrap();
    n.notify("c", "two").unwrap();
    // l2's inbox is read from a new mapping: the symlink is refused, not followed.
    let e = l2.notifies().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
}

#[test]
fn a_symlink_in_place_of_the_queue_directory_is_refused_and_its_target_untouched() {
    let t = TempDir::new("dirlink");
    let q = t.queue();
    // A directory of the caller's, holding files named as those a queue creation removes.
    let work = t.path().join("work");
    fs::create_dir(&work).unwrap();
    fs::set_permissions(&work, fs::Permissions::from_mode(0o700)).unwrap();
    for name in ["spare", "control.new", "000000000000000"] {
        fs::write(work.join(name), b"precious").unwrap();
    }
    symlink(&work, &q).unwrap();
    for group_shared in [false, true] {
        let e = Connection::with_options(&q, &Options::new().group_shared(group_shared)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert_eq!(
            e.message(),
            format!("queue directory \"{}\" is a symbolic link (to \"{}\")", q.display(), work.display())
        );
    }
    let mut names: Vec<_> =
        fs::read_dir(&work).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["000000000000000", "control.new", "spare"]);
    assert!(names.iter().all(|n| fs::read(work.join(n)).unwrap() == b"precious"));
    // A dangling link is not followed to create the directory either.
    fs::remove_file(&q).unwrap();
    symlink(t.path().join("nowhere"), &q).unwrap();
    let e = Connection::open(&q).unwrap_err();
    assert!(e.message().contains("is a symbolic link"), "{}", e.message());
    assert!(!t.path().join("nowhere").exists());
}

#[test]
fn damaged_control_files_give_errors_not_crashes() {
    let t = TempDir::new("damage");
    let q = t.queue();
    drop(Connection::open(&q).unwrap());
    let control = q.join("control");
    let good = fs::read(&control).unwrap();

    // Not a queue at all.
    fs::write(&control, vec![0x5au8; good.len()]).unwrap();
    let e = Connection::open(&q).unwrap_err();
    assert_eq!((e.kind(), e.message()), (ErrorKind::Corrupted, "control file is not a hark queue (bad magic number)"));
    // Truncated.
    fs::write(&control, &good[..100]).unwrap();
    assert_eq!(Connection::open(&q).unwrap_err().kind(), ErrorKind::Corrupted);
    // From a newer format version.
    let mut newer = good.clone();
    newer[8..12].copy_from_slice(&99u32.to_ne_bytes());
    fs::write(&control, &newer).unwrap();
    let e = Connection::open(&q).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Incompatible);
    assert!(e.message().contains("queue format version 99 is not supported"), "{}", e.message());
    // Sizes that do not add up.
    let mut bad = good.clone();
    bad[64..72].copy_from_slice(&12345u64.to_ne_bytes()); // segment_size
    fs::write(&control, &bad).unwrap();
    assert_eq!(Connection::open(&q).unwrap_err().kind(), ErrorKind::Corrupted);
    // Random bytes everywhere after a valid header still never crash an open.
    let mut seed = 12345u64;
    for _ in 0..50 {
        let mut junk = good.clone();
        for _ in 0..64 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let i = 512 + (seed >> 33) as usize % (good.len() - 512);
            junk[i] = (seed >> 17) as u8;
        }
        fs::write(&control, &junk).unwrap();
        if let Ok(mut c) = Connection::open(&q) {
            let _ = c.listen("c");
            let _ = c.notify("c", "x");
            let _ = c.notifies();
        }
    }
    fs::write(&control, &good).unwrap();
    drop(Connection::open(&q).unwrap());
}

#[test]
fn damaged_segments_give_errors_not_crashes() {
    let t = TempDir::new("segdamage");
    let q = t.queue();
    let opts = Options::new().segment_size(64 << 10).max_queue_size(64 << 20);
    let mut l = Connection::with_options(&q, &opts).unwrap();
    let mut n = Connection::open(&q).unwrap();
    l.listen("c").unwrap();
    n.notify("c", "good").unwrap();
    n.notify("c", "second").unwrap();
    // Overwrite the second entry's length with nonsense.
    let seg = q.join("000000000000000");
    let first_len = 32 + 1 + 4; // header + "c" + "good", rounded up to 8
    write_at(&seg, (first_len as u64).next_multiple_of(8), &0xffff_fff0u32.to_ne_bytes());
    let e = common_first_error(&mut l);
    assert_eq!(e.kind(), ErrorKind::Corrupted);
    assert!(e.message().starts_with("invalid entry in the NOTIFY queue at position 40"), "{}", e.message());
    assert_eq!(e.detail(), Some("Could not access async queue at page 0, offset 40."));
    // A truncated segment file is reported, not mapped past its end.
    let mut l2 = Connection::open(&q).unwrap();
    l2.listen("d").unwrap();
    n.notify("d", "x").unwrap();
    fs::OpenOptions::new().write(true).open(&seg).unwrap().set_len(4096).unwrap();
    let mut l3 = Connection::open(&q).unwrap();
    l3.listen("d").unwrap();
    drop(l2);
    let mut l4 = Connection::open(&q).unwrap();
    l4.listen("e").unwrap();
    n.notify("e", "y").unwrap();
    let e = l4.notifies().unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Corrupted);
    assert!(e.message().contains("is truncated"), "{}", e.message());
}

/// The first error a listener hits while draining (after the good entries).
fn common_first_error(c: &mut Connection) -> hark::Error {
    loop {
        match c.notifies() {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("no error"),
            Err(e) => return e,
        }
    }
}
