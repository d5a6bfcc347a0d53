//! Two real Unix users (I10): the default directory taken by another user is refused, never
//! followed, and a group-shared queue works for every member of its group and for no one else.
//! These need root, to create the users `harktest1` and `harktest2` and run agents as them;
//! otherwise they are skipped with a reason.

mod common;

use common::{agent_role, say, spawn_via, Agent, TempDir};
use hark::{Connection, Options};
use std::fs;
use std::os::unix::fs::{chown, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const GROUP: &str = "harktestg";

#[test]
fn agent() {
    let Some((role, a)) = agent_role() else { return };
    let shared = Options::new().group_shared(true);
    let report = |e: hark::Error| say(&format!("ERR {}|{}", e.message(), e.hint().unwrap_or("")));
    match role.as_str() {
        // open-default: opens the default queue directory; prints "OK <dir>" or "ERR msg|hint".
        "open-default" => match hark::connect(None) {
            Ok(c) => say(&format!("OK {}", c.queue().path().display())),
            Err(e) => report(e),
        },
        // create DIR: creates a group-shared queue of small segments.
        "create" => {
            match Connection::with_options(&a[0], &shared.clone().segment_size(64 << 10).max_queue_size(512 << 10)) {
                Ok(_) => say("OK"),
                Err(e) => report(e),
            }
        }
        // listen DIR CHANNEL COUNT: prints READY, then "N payload" for COUNT notifications.
        "listen" => {
            let mut c = match Connection::with_options(&a[0], &shared).and_then(|mut c| c.listen(&a[1]).map(|_| c)) {
                Ok(c) => c,
                Err(e) => return report(e),
            };
            say("READY");
            let count: usize = a[2].parse().unwrap();
            let mut got = 0;
            while got < count {
                match c.wait(Some(Duration::from_secs(30))) {
                    Ok(true) => {}
                    Ok(false) => return say("TIMEOUT"),
                    Err(e) => return report(e),
                }
                loop {
                    match c.notifies() {
                        Ok(Some(n)) => {
                            say(&format!("N {}", n.payload.split(':').next().unwrap()));
                            got += 1;
                        }
                        Ok(None) => break,
                        Err(e) => return report(e),
                    }
                }
            }
        }
        // notify DIR CHANNEL PREFIX COUNT SIZE: payloads "PREFIX-i:" and SIZE bytes; prints SENT.
        "notify" => {
            let (count, size): (usize, usize) = (a[3].parse().unwrap(), a[4].parse().unwrap());
            let mut c = match Connection::with_options(&a[0], &shared) {
                Ok(c) => c,
                Err(e) => return report(e),
            };
            for i in 0..count {
                if let Err(e) = c.notify(&a[1], &format!("{}-{i}:{}", a[2], "x".repeat(size))) {
                    return report(e);
                }
            }
            say("SENT");
        }
        other => panic!("unknown role {other}"),
    }
}

/// Runs `cmd` (retrying briefly: other tests may be editing the user database at the same time)
/// until `done` holds.
fn until(done: impl Fn() -> bool, cmd: &[&str]) {
    for _ in 0..50 {
        if done() {
            return;
        }
        let _ = Command::new(cmd[0]).args(&cmd[1..]).status();
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(done(), "{cmd:?} did not take effect");
}

fn id_of(flag: &str, name: &str) -> Option<u32> {
    let out = Command::new("id").args([flag, name]).output().ok()?;
    String::from_utf8(out.stdout).ok()?.trim().parse().ok().filter(|_| out.status.success())
}

fn gid_of_group(name: &str) -> Option<u32> {
    let out = Command::new("getent").args(["group", name]).output().ok()?;
    String::from_utf8(out.stdout).ok()?.split(':').nth(2)?.trim().parse().ok()
}

fn in_group(user: &str, group: &str) -> bool {
    let out = Command::new("id").args(["-nG", user]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).split_whitespace().any(|g| g == group)
}

/// Creates the test users (and with `group`, the group `harktestg` holding both) when root;
/// returns None with a printed reason otherwise.
fn users(group: bool) -> Option<()> {
    // SAFETY: geteuid cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: two real users need root (to create harktest1 and harktest2)");
        return None;
    }
    for u in ["harktest1", "harktest2"] {
        until(
            || id_of("-u", u).is_some(),
            &["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", u],
        );
    }
    if group {
        until(|| gid_of_group(GROUP).is_some(), &["groupadd", "--system", GROUP]);
        for u in ["harktest1", "harktest2"] {
            until(|| in_group(u, GROUP), &["usermod", "-aG", GROUP, u]);
        }
    }
    Some(())
}

/// `setpriv` options to run as `user` with its own groups (from the group database), or as the
/// user `nobody` in no group at all.
fn as_user(user: &str) -> Vec<String> {
    if user == "nobody" {
        return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"].map(String::from).to_vec();
    }
    vec!["setpriv".into(), format!("--reuid={user}"), format!("--regid={user}"), "--init-groups".into()]
}

fn spawn_as(user: &str, role: &str, args: &[&str], setup: impl FnOnce(&mut Command)) -> Agent {
    let prefix = as_user(user);
    let prefix: Vec<&str> = prefix.iter().map(String::as_str).collect();
    let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    spawn_via(&prefix, role, &args, setup)
}

/// The only line an agent prints.
fn one_line(a: Agent) -> String {
    let lines = a.finish();
    assert_eq!(lines.len(), 1, "{lines:?}");
    lines.into_iter().next().unwrap()
}

fn run_as(user: &str, cmd: &[&str]) {
    let prefix = as_user(user);
    let st = Command::new(&prefix[0]).args(&prefix[1..]).args(cmd).status().unwrap();
    assert!(st.success(), "{user}: {cmd:?}: {st:?}");
}

/// What sits at `path` is removed on drop (a link, or a directory and what it holds).
struct RemoveOnDrop(PathBuf);
impl RemoveOnDrop {
    fn now(&self) {
        if fs::remove_file(&self.0).is_err() {
            let _ = fs::remove_dir_all(&self.0);
        }
    }
}
impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        self.now();
    }
}

/// `fs.protected_symlinks` off for the test's duration when it can be (the kernel then follows a
/// link another user planted in a sticky directory, as on systems that turn it off), restored
/// after.
struct SymlinksUnprotected(Option<String>);
impl SymlinksUnprotected {
    fn new() -> SymlinksUnprotected {
        const P: &str = "/proc/sys/fs/protected_symlinks";
        match fs::read_to_string(P) {
            Ok(v) if v.trim() != "0" => {
                if fs::write(P, "0").is_ok() {
                    return SymlinksUnprotected(Some(v));
                }
                eprintln!(
                    "note: {P} is {} and cannot be changed here; the kernel would refuse the link anyway",
                    v.trim()
                );
                SymlinksUnprotected(None)
            }
            _ => SymlinksUnprotected(None),
        }
    }
}
impl Drop for SymlinksUnprotected {
    fn drop(&mut self) {
        if let Some(v) = &self.0 {
            let _ = fs::write("/proc/sys/fs/protected_symlinks", v);
        }
    }
}

fn names_and_contents(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().into_string().unwrap(), fs::read(e.path()).unwrap())
        })
        .collect();
    v.sort();
    v
}

#[test]
fn the_default_directory_taken_by_another_user_is_refused_never_followed() {
    let Some(()) = users(false) else { return };
    let (uid1, gid1) = (id_of("-u", "harktest1").unwrap(), id_of("-g", "harktest1").unwrap());
    let uid2 = id_of("-u", "harktest2").unwrap();
    // Where harktest1's default queue goes without $HARK_DIR.
    let base = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { PathBuf::from("/tmp") };
    let default = base.join(format!("hark-{uid1}"));
    let planted = RemoveOnDrop(default.clone());
    planted.now();
    let _unprotected = SymlinksUnprotected::new();
    let t = TempDir::new("users-default");
    fs::create_dir_all(t.path()).unwrap();
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
    // harktest1's own work directory, holding files with the names a queue creation removes.
    let work = t.path().join("work");
    fs::create_dir(&work).unwrap();
    for name in ["spare", "control.new", "000000000000000"] {
        fs::write(work.join(name), b"precious").unwrap();
        chown(work.join(name), Some(uid1), Some(gid1)).unwrap();
    }
    chown(&work, Some(uid1), Some(gid1)).unwrap();
    fs::set_permissions(&work, fs::Permissions::from_mode(0o700)).unwrap();
    let before = names_and_contents(&work);

    let open_default = |env: Option<&Path>| {
        one_line(spawn_as("harktest1", "open-default", &[], |c| {
            c.env_remove("HARK_DIR").env_remove("XDG_RUNTIME_DIR");
            if let Some(d) = env {
                c.env("HARK_DIR", d);
            }
        }))
    };

    // harktest2 plants a link to harktest1's work directory at harktest1's default path.
    run_as("harktest2", &["ln", "-s", work.to_str().unwrap(), default.to_str().unwrap()]);
    assert_eq!(fs::symlink_metadata(&default).unwrap().uid(), uid2);
    let out = open_default(None);
    let want = format!("ERR queue directory \"{}\" is a symbolic link (to \"{}\")|", default.display(), work.display());
    assert!(out.starts_with(&want), "{out}");
    assert!(out.contains("set $HARK_DIR"), "the hint says what to do: {out}");
    assert_eq!(names_and_contents(&work), before, "files in the link's target were touched");

    // A directory of harktest2's in its place.
    planted.now();
    run_as("harktest2", &["mkdir", "-m", "0700", default.to_str().unwrap()]);
    let out = open_default(None);
    let want = format!("ERR queue directory \"{}\" is owned by another user (uid {uid2})|", default.display());
    assert!(out.starts_with(&want) && out.contains("set $HARK_DIR"), "{out}");

    // What the hint says works.
    let own = t.path().join("own");
    fs::create_dir(&own).unwrap();
    chown(&own, Some(uid1), Some(gid1)).unwrap();
    assert_eq!(open_default(Some(&own)), format!("OK {}", own.display()));

    // Once the impostor is gone, the default is harktest1's; its own mistakes get no such hint.
    planted.now();
    assert_eq!(open_default(None), format!("OK {}", default.display()));
    assert_eq!(fs::metadata(&default).unwrap().uid(), uid1);
    fs::set_permissions(&default, fs::Permissions::from_mode(0o777)).unwrap();
    let out = open_default(None);
    assert_eq!(out, format!("ERR queue directory \"{}\" is writable by every user (mode 0777)|", default.display()));
}

#[test]
fn a_group_shared_queue_works_for_every_member_and_refuses_others() {
    let Some(()) = users(true) else { return };
    let gid = gid_of_group(GROUP).unwrap();
    let uid2 = id_of("-u", "harktest2").unwrap();
    let t = TempDir::new("users-group");
    fs::create_dir_all(t.path()).unwrap();
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
    // The group's parent directory: setgid, so that a directory made in it gets the group.
    let parent = t.path().join("shared");
    fs::create_dir(&parent).unwrap();
    chown(&parent, Some(0), Some(gid)).unwrap();
    fs::set_permissions(&parent, fs::Permissions::from_mode(0o2775)).unwrap();
    let q = parent.join("q");
    let qs = q.to_str().unwrap();

    assert_eq!(one_line(spawn_as("harktest1", "create", &[qs,], |_| {})), "OK");
    let m = fs::metadata(&q).unwrap();
    assert_eq!((m.gid(), m.mode() & 0o7777), (gid, 0o2770), "the directory keeps its group and setgid bit");

    // harktest2 listens, harktest1 notifies.
    let mut l2 = spawn_as("harktest2", "listen", &[qs, "c", "3"], |_| {});
    l2.expect("READY");
    assert_eq!(one_line(spawn_as("harktest1", "notify", &[qs, "c", "one", "3", "10"], |_| {})), "SENT");
    assert_eq!(l2.finish(), ["N one-0", "N one-1", "N one-2"]);

    // harktest1 listens, harktest2 notifies across segments, creating segment files that
    // harktest1 must read: with the directory's setgid bit lost (as an older hark cleared it),
    // each file is given the directory's group explicitly.
    let mut l1 = spawn_as("harktest1", "listen", &[qs, "c", "150"], |_| {});
    l1.expect("READY");
    fs::set_permissions(&q, fs::Permissions::from_mode(0o770)).unwrap();
    assert_eq!(one_line(spawn_as("harktest2", "notify", &[qs, "c", "two", "150", "1000"], |_| {})), "SENT");
    let got = l1.finish();
    assert_eq!(got, (0..150).map(|i| format!("N two-{i}")).collect::<Vec<_>>());

    let mut by_harktest2 = 0;
    for e in fs::read_dir(&q).unwrap() {
        let (name, m) = (e.as_ref().unwrap().file_name(), e.unwrap().metadata().unwrap());
        assert_eq!((m.gid(), m.mode() & 0o777), (gid, 0o660), "{name:?}");
        by_harktest2 += (m.uid() == uid2) as usize;
    }
    assert!(by_harktest2 > 0, "harktest2 created no file: the test did not cross a segment");

    // A user outside the group cannot use it.
    let out = one_line(spawn_as("nobody", "notify", &[qs, "c", "intruder", "1", "1"], |_| {}));
    let uid1 = id_of("-u", "harktest1").unwrap();
    assert!(out.starts_with(&format!("ERR queue directory \"{qs}\" is owned by another user (uid {uid1})")), "{out}");
}
