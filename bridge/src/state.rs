//! The bridge's state, as `hark stat` shows it: a small text file `bridge.NAME.state` in the queue
//! directory, rewritten in place at every change of state (and at most once a second for the
//! counters). The bridge holds an open-file-description lock on it for as long as it runs, so a
//! reader tells a running bridge from one that stopped or was killed (the kernel drops the lock at
//! death) without trusting what the file says, and a second bridge of the same name on the same
//! queue is refused.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// The file is rewritten in place, padded to this size, so that it never shrinks under a reader.
const FILE_SIZE: usize = 2048;
const LONGEST_ERROR: usize = 400;

/// Where the bridge is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Connecting,
    Connected,
    /// Lost PostgreSQL; waiting `retry_in_ms` before the next attempt.
    Disconnected,
    Stopped,
}

impl Phase {
    pub fn name(self) -> &'static str {
        match self {
            Phase::Connecting => "connecting",
            Phase::Connected => "connected",
            Phase::Disconnected => "disconnected",
            Phase::Stopped => "stopped",
        }
    }
}

/// What the bridge reports about itself.
#[derive(Clone, Debug)]
pub struct State {
    pub name: String,
    pub pid: u32,
    pub phase: Phase,
    /// Unix seconds of the last change of phase.
    pub since: u64,
    pub postgres: String,
    pub channels: Vec<String>,
    /// The bridge's listening PostgreSQL backend PID while connected.
    pub pg_backend_pid: Option<i32>,
    /// Its sending backend PID while connected.
    pub pg_sender_pid: Option<i32>,
    pub connects: u64,
    pub retry_in_ms: u64,
    pub last_error: String,
    pub to_pg_transactions: u64,
    pub to_pg_notifications: u64,
    pub from_pg_transactions: u64,
    pub from_pg_notifications: u64,
    /// Local notifications PostgreSQL cannot carry (payloads of 8,000 bytes or more).
    pub too_long: u64,
    pub gaps_signalled: u64,
    /// Marked transactions received again from an origin (its bridge crashed before it
    /// acknowledged them locally) and not committed twice.
    pub repeats_skipped: u64,
}

impl State {
    pub fn new(name: &str, postgres: String, channels: Vec<String>) -> State {
        State {
            name: name.to_owned(),
            pid: std::process::id(),
            phase: Phase::Connecting,
            since: now_secs(),
            postgres,
            channels,
            pg_backend_pid: None,
            pg_sender_pid: None,
            connects: 0,
            retry_in_ms: 0,
            last_error: String::new(),
            to_pg_transactions: 0,
            to_pg_notifications: 0,
            from_pg_transactions: 0,
            from_pg_notifications: 0,
            too_long: 0,
            gaps_signalled: 0,
            repeats_skipped: 0,
        }
    }

    fn render(&self) -> String {
        let mut err: String = self.last_error.replace('\n', " ");
        if err.len() > LONGEST_ERROR {
            let mut cut = LONGEST_ERROR;
            while !err.is_char_boundary(cut) {
                cut -= 1;
            }
            err.truncate(cut);
        }
        let mut s = format!(
            "name={}\npid={}\nstate={}\nsince={}\npostgres={}\npg_backend_pid={}\npg_sender_pid={}\nconnects={}\n\
             retry_in_ms={}\nlast_error={}\nto_pg_transactions={}\nto_pg_notifications={}\nfrom_pg_transactions={}\n\
             from_pg_notifications={}\ntoo_long={}\ngaps_signalled={}\nrepeats_skipped={}\nchannels={}\nend\n",
            self.name,
            self.pid,
            self.phase.name(),
            self.since,
            self.postgres,
            self.pg_backend_pid.map(|p| p.to_string()).unwrap_or_default(),
            self.pg_sender_pid.map(|p| p.to_string()).unwrap_or_default(),
            self.connects,
            self.retry_in_ms,
            err,
            self.to_pg_transactions,
            self.to_pg_notifications,
            self.from_pg_transactions,
            self.from_pg_notifications,
            self.too_long,
            self.gaps_signalled,
            self.repeats_skipped,
            // Last: a list too long for the file is what is cut.
            self.channels.join(","),
        );
        if s.len() > FILE_SIZE - 1 {
            let mut cut = FILE_SIZE - 5;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            s.push_str("\nend");
        }
        while s.len() < FILE_SIZE - 1 {
            s.push(' ');
        }
        s.push('\n');
        s
    }
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// The longest bridge name: its subscription, `bridge.NAME`, is at most 63 bytes.
pub const MAX_NAME_LEN: usize = 63 - "bridge.".len();

/// A bridge name is part of a file name and of the subscription's name: letters, digits, `_`,
/// `-` and `.`, at most [`MAX_NAME_LEN`] bytes.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || name.starts_with('.')
        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
    {
        return Err(format!(
            "invalid bridge name \"{name}\": use 1 to {MAX_NAME_LEN} letters, digits, '_', '-' or '.' (not first)"
        ));
    }
    Ok(())
}

pub fn path_of(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("bridge.{name}.state"))
}

/// The running bridge's claim on its state file.
#[derive(Debug)]
pub struct StateFile {
    file: File,
}

impl StateFile {
    /// Creates or opens the state file and locks it; fails when a bridge of that name runs on
    /// this queue.
    pub fn claim(dir: &Path, name: &str) -> Result<StateFile, String> {
        let path = path_of(dir, name);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&path)
            .map_err(|e| format!("could not open {}: {e}", path.display()))?;
        let mut lock = whole_file_lock(libc::F_WRLCK);
        // SAFETY: fcntl on a descriptor we own with a valid flock record.
        let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &mut lock) };
        if rc != 0 {
            return Err(format!("a bridge named \"{name}\" is already running on this queue ({})", path.display()));
        }
        Ok(StateFile { file })
    }

    pub fn write(&mut self, s: &State) {
        let text = s.render();
        // Best effort: the state file is a report; the bridge's work does not depend on it.
        let _ = self.file.seek(SeekFrom::Start(0)).and_then(|_| self.file.write_all(text.as_bytes()));
    }
}

/// A bridge's state as read by another process.
#[derive(Clone, Debug)]
pub struct Report {
    pub name: String,
    /// Whether the bridge holds its lock (it is running).
    pub running: bool,
    /// The file's `key=value` fields in order.
    pub fields: Vec<(String, String)>,
}

impl Report {
    pub fn get(&self, key: &str) -> &str {
        self.fields.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str()).unwrap_or("")
    }
}

/// Every bridge state file in `dir`, sorted by name.
pub fn read_all(dir: &Path) -> Vec<Report> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut out: Vec<Report> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let file_name = e.file_name().into_string().ok()?;
            let name = file_name.strip_prefix("bridge.")?.strip_suffix(".state")?.to_owned();
            read_one(&e.path(), name)
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

fn read_one(path: &Path, name: String) -> Option<Report> {
    let mut file = OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC).open(path).ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut lock = whole_file_lock(libc::F_WRLCK);
    // SAFETY: fcntl on a descriptor we own with a valid flock record; GETLK only reports.
    let rc = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut lock) };
    let running = rc == 0 && lock.l_type != libc::F_UNLCK as libc::c_short;
    // A rewrite may be under way: read until the text ends with its `end` line.
    for _ in 0..20 {
        let mut text = String::new();
        file.seek(SeekFrom::Start(0)).ok()?;
        Read::by_ref(&mut file).take(FILE_SIZE as u64 * 2).read_to_string(&mut text).ok()?;
        let fields: Vec<(String, String)> = text
            .lines()
            .take_while(|l| *l != "end")
            .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
            .collect();
        if text.lines().any(|l| l == "end") {
            return Some(Report { name, running, fields });
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    Some(Report { name, running, fields: Vec::new() })
}

fn whole_file_lock(kind: i32) -> libc::flock {
    // SAFETY: flock is plain data; zero is a valid value for every field.
    let mut l: libc::flock = unsafe { std::mem::zeroed() };
    l.l_type = kind as libc::c_short;
    l.l_whence = libc::SEEK_SET as libc::c_short;
    l
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_could_escape_the_directory_are_refused() {
        for bad in ["", "../x", "a/b", ".hidden", "a b", &"x".repeat(64)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        check_name("host-1.orders_2").unwrap();
    }

    #[test]
    fn a_state_reads_back_and_shows_whether_its_bridge_runs() {
        let dir = std::env::temp_dir().join(format!("hark-bridge-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut s = State::new("b1", "host=/x".into(), vec!["a".into(), "b".into()]);
        s.phase = Phase::Connected;
        s.last_error = "line1\nline2".into();
        {
            let mut f = StateFile::claim(&dir, "b1").unwrap();
            f.write(&s);
            assert!(StateFile::claim(&dir, "b1").unwrap_err().contains("already running"));
            let r = &read_all(&dir)[0];
            assert!(r.running);
            assert_eq!((r.get("state"), r.get("channels"), r.get("last_error")), ("connected", "a,b", "line1 line2"));
        }
        let r = &read_all(&dir)[0];
        assert!(!r.running, "the lock goes with the file");
        assert_eq!(r.get("state"), "connected");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
