//! Which directory a queue lives in: the default rule, a queue made only in a missing or empty
//! directory, `create: false` opening only an existing queue, and connection strings refused.

mod common;

use common::{agent_role, say, spawn_via, TempDir};
use hark::{Connection, ErrorKind, Options, Queue};
use std::fs;
use std::path::{Path, PathBuf};

#[test]
fn agent() {
    let Some((role, _)) = agent_role() else { return };
    match role.as_str() {
        // default-dir: prints the default queue directory.
        "default-dir" => say(&hark::default_dir().display().to_string()),
        other => panic!("unknown agent role {other}"),
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> =
        fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    v.sort();
    v
}

#[test]
fn the_default_directory_depends_on_the_user_alone_unless_hark_dir_is_set() {
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    let base = if Path::new("/dev/shm").is_dir() { "/dev/shm" } else { "/tmp" };
    let want = PathBuf::from(base).join(format!("hark-{uid}"));
    let default_with = |env: &[(&str, Option<&str>)]| {
        let mut a = spawn_via(&[], "default-dir", &[], |c| {
            for (k, v) in env {
                match v {
                    Some(v) => c.env(k, v),
                    None => c.env_remove(k),
                };
            }
        });
        let line = a.line().expect("a directory");
        a.finish();
        PathBuf::from(line)
    };
    // A login shell, a systemd service without a runtime directory, one with another: one queue.
    let shell =
        default_with(&[("HARK_DIR", None), ("XDG_RUNTIME_DIR", Some("/run/user/1000")), ("TMPDIR", Some("/var/tmp"))]);
    let service = default_with(&[("HARK_DIR", None), ("XDG_RUNTIME_DIR", None), ("TMPDIR", None)]);
    let other = default_with(&[("HARK_DIR", None), ("XDG_RUNTIME_DIR", Some("/run/app")), ("TMPDIR", Some("/tmp/x"))]);
    assert_eq!((&shell, &service, &other), (&want, &want, &want));
    // $HARK_DIR, when set and not empty, is the one way to choose another.
    assert_eq!(
        default_with(&[("HARK_DIR", Some("/srv/q")), ("XDG_RUNTIME_DIR", Some("/run/user/1000"))]),
        PathBuf::from("/srv/q")
    );
    assert_eq!(default_with(&[("HARK_DIR", Some("")), ("XDG_RUNTIME_DIR", Some("/run/user/1000"))]), want);
}

#[test]
fn a_queue_is_created_only_in_a_missing_or_empty_directory() {
    let t = TempDir::new("dirs-populated");
    // A directory holding anything else (as /etc would) is refused, and nothing is written.
    let populated = t.queue();
    fs::create_dir(&populated).unwrap();
    fs::write(populated.join("notes.txt"), b"mine").unwrap();
    fs::create_dir(populated.join("sub")).unwrap();
    let e = Connection::open(&populated).unwrap_err();
    assert_eq!((e.kind(), e.sqlstate()), (ErrorKind::PermissionDenied, "55000"));
    assert_eq!(e.message(), format!("directory \"{}\" exists but is not empty", populated.display()));
    assert!(e.detail().unwrap().contains("and 1 other entry, and no hark queue"), "{:?}", e.detail());
    assert!(e.hint().unwrap().contains("only in a missing or empty directory"), "{:?}", e.hint());
    assert_eq!(names(&populated), ["notes.txt", "sub"]);
    let e = Queue::open(&populated, &Options::new()).err().expect("refused");
    assert_eq!(e.sqlstate(), "55000");
    assert_eq!(names(&populated), ["notes.txt", "sub"]);

    // An empty directory takes a queue; so does one holding only what an interrupted creation
    // leaves (the lock file and a half-written control file).
    let empty = t.path().join("empty");
    fs::create_dir(&empty).unwrap();
    Connection::open(&empty).unwrap().notify("c", "x").unwrap();
    let interrupted = t.path().join("interrupted");
    fs::create_dir(&interrupted).unwrap();
    fs::write(interrupted.join("lock"), b"").unwrap();
    fs::write(interrupted.join("control.new"), b"half").unwrap();
    Connection::open(&interrupted).unwrap();
    assert!(interrupted.join("control").exists() && !interrupted.join("control.new").exists());

    // A queue, of course, reopens whatever else appears in it later.
    fs::write(empty.join("README"), b"a note beside the queue").unwrap();
    Connection::open(&empty).unwrap();
}

#[test]
fn create_false_opens_only_an_existing_queue() {
    let t = TempDir::new("dirs-existing");
    let q = t.queue();
    let existing = Options::new().create(false);
    let e = Connection::with_options(&q, &existing).unwrap_err();
    assert_eq!((e.kind(), e.sqlstate()), (ErrorKind::Io, "3D000"));
    assert_eq!(e.message(), format!("queue \"{}\" does not exist", q.display()));
    assert_eq!(e.detail(), Some(format!("There is no directory \"{}\".", q.display()).as_str()));
    assert!(!q.exists(), "nothing was created");
    fs::create_dir(&q).unwrap();
    let e = Connection::with_options(&q, &existing).unwrap_err();
    assert_eq!(
        (e.sqlstate(), e.detail()),
        (
            "3D000",
            Some(format!("The directory \"{}\" holds no hark queue (no file \"control\").", q.display()).as_str())
        )
    );
    assert!(names(&q).is_empty(), "nothing was written: {:?}", names(&q));
    let e = Queue::open(&q, &existing).err().expect("refused");
    assert_eq!(e.sqlstate(), "3D000");

    let mut creator = Connection::open(&q).unwrap();
    let mut joiner = Connection::with_options(&q, &existing).unwrap();
    joiner.listen("c").unwrap();
    creator.notify("c", "hello").unwrap();
    assert_eq!(common::drain(&mut joiner), common::pairs(&[("c", "hello")]));
}

#[test]
fn connection_strings_and_urls_are_refused_with_a_hint() {
    // Relative, as a program ported from libpq would pass them: nothing may appear in the
    // current directory.
    for (s, what) in [
        ("dbname=app", "a connection string"),
        ("host=localhost port=5432 dbname=app user=me", "a connection string"),
        ("postgresql://localhost/app", "a URL"),
        ("postgres://me@db:5432/app?sslmode=require", "a URL"),
    ] {
        for options in [Options::new(), Options::new().create(false)] {
            let e = Connection::with_options(s, &options).unwrap_err();
            assert_eq!((e.kind(), e.sqlstate()), (ErrorKind::InvalidArgument, "22023"), "{s}");
            assert_eq!(e.message(), format!("queue directory \"{s}\" looks like {what}, not a directory"));
            assert!(e.hint().unwrap().contains("give the path of a queue directory"), "{:?}", e.hint());
        }
        assert!(!Path::new(s).exists() && !Path::new("postgresql:").exists() && !Path::new("postgres:").exists());
    }
    // A directory really named like one is reached through a path that says so.
    let t = TempDir::new("dirs-conninfo");
    let odd = t.queue().with_file_name("dbname=app");
    Connection::open(&odd).unwrap();
}
