//! `hark shell` on a terminal: a pseudo-terminal stands in for the user, who types each line only
//! after the prompt has appeared, as a person would.

mod common;

use common::{hark, Reaper, TempDir};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;
use std::sync::mpsc::{channel, Receiver};
use std::time::{Duration, Instant};

struct Terminal {
    input: File,
    output: Receiver<u8>,
    seen: String,
}

impl Terminal {
    /// Reads the screen until `text` appears after everything seen so far; returns what came
    /// before it.
    fn expect(&mut self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut bytes = Vec::new();
        loop {
            let got = String::from_utf8_lossy(&bytes).into_owned();
            if let Some(i) = got.find(text) {
                self.seen.push_str(&got);
                return got[..i].to_owned();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.output.recv_timeout(left) {
                Ok(b) => bytes.push(b),
                Err(_) => panic!("{text:?} did not appear; the terminal shows:\n{}{got}", self.seen),
            }
        }
    }

    fn type_line(&mut self, line: &str) {
        self.input.write_all(format!("{line}\r").as_bytes()).unwrap();
        self.input.flush().unwrap();
    }
}

fn open_terminal() -> (OwnedFd, OwnedFd) {
    let (mut master, mut slave) = (0, 0);
    // SAFETY: openpty writes two descriptors into the integers given; the name, termios and
    // window size arguments may be null.
    let rc =
        unsafe { libc::openpty(&mut master, &mut slave, std::ptr::null_mut(), std::ptr::null(), std::ptr::null()) };
    assert_eq!(rc, 0, "openpty: {}", std::io::Error::last_os_error());
    // SAFETY: both descriptors were just opened and are owned by nobody else.
    unsafe { (OwnedFd::from_raw_fd(master), OwnedFd::from_raw_fd(slave)) }
}

#[test]
fn prompts_follow_the_transaction_state() {
    let dir = TempDir::new("interactive");
    let (master, slave) = open_terminal();
    let child = hark()
        .args(["shell", dir.path().to_str().unwrap()])
        .env("TERM", "xterm")
        .stdin(Stdio::from(slave.try_clone().unwrap()))
        .stdout(Stdio::from(slave.try_clone().unwrap()))
        .stderr(Stdio::from(slave))
        .spawn()
        .unwrap();
    let mut child = Reaper(child);
    let reader = File::from(master.try_clone().unwrap());
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for b in std::io::BufReader::new(reader).bytes() {
            let Ok(b) = b else { break };
            if tx.send(b).is_err() {
                break;
            }
        }
    });
    let mut t = Terminal { input: File::from(master), output: rx, seen: String::new() };

    let banner = t.expect("hark=> ");
    assert!(banner.contains(&format!("hark ({}) on ", env!("CARGO_PKG_VERSION"))), "{banner}");
    t.type_line("LISTEN a;");
    assert!(t.expect("hark=> ").contains("LISTEN"));
    t.type_line("BEGIN;");
    t.expect("hark=*> ");
    // An unfinished statement gets the continuation prompt.
    t.type_line("NOTIFY a,");
    t.expect("hark-> ");
    t.type_line("'typed';");
    t.expect("hark=*> ");
    t.type_line("NOTIFY a 'oops';");
    let err = t.expect("hark=!> ");
    assert!(err.contains("ERROR:  syntax error at or near \"'oops'\""), "{err}");
    t.type_line("ROLLBACK;");
    t.expect("hark=> ");
    t.type_line("NOTIFY a, 'after the rollback';");
    let out = t.expect("hark=> ");
    assert!(
        out.contains(
            "Asynchronous notification \"a\" with payload \"after the rollback\" received from server process with PID"
        ),
        "{out}"
    );
    assert!(!out.contains("typed") && !t.seen.contains("payload \"typed\""), "a rolled-back notification arrived");
    // Line editing: a backspace takes back the character before it.
    t.type_line("SELECT 12\x7f3 AS n;");
    // (rustyline repaints the prompt while editing, so wait for the result instead.)
    let out = t.expect("(1 row)");
    assert!(out.ends_with(" n  \r\n----\r\n 13\r\n"), "{out:?}");
    t.expect("hark=> ");
    t.type_line("\\nosuch");
    assert!(t.expect("hark=> ").contains("Try \\? for help."));
    t.type_line("\\q");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            assert!(status.success(), "hark shell exited with {status}");
            break;
        }
        assert!(Instant::now() < deadline, "\\q did not end the shell");
        std::thread::sleep(Duration::from_millis(20));
    }
}
