//! The chaos soak (`make soak`): notifier and listener processes on one queue, a killer that
//! SIGKILLs random ones (writers parked inside the append among them) and starts replacements,
//! and a checker that proves, from every process's log and an auditor that hears everything, that
//! nothing committed was lost, duplicated or reordered and nothing uncommitted was seen.
//!
//! ```text
//! soak --seconds S --notifiers N --listeners M [--seed X]
//! ```
//!
//! How the checker knows the truth:
//! * Every payload is unique: `<uid>.<t>.<k>~<len>~<pad>`, where `uid` names one process (never
//!   reused), `t` its transaction (or, for a listener, its listen epoch), `k` the item; the pad has
//!   a length and a letter fixed by the key, so a damaged payload is caught.
//! * A notifier logs each transaction (`T`: the notifications it expects to become visible, and
//!   those a `ROLLBACK TO` dropped) before it commits, then `C` (committed), `R` (rolled back) or
//!   `F` (queue full). A process killed in between leaves a transaction of unknown outcome.
//! * The auditor, a session of the driver that is never killed, listens on every channel from
//!   before the first process starts to after the last one ends. Its stream is the global commit
//!   order. It is itself checked against the logs: every committed transaction appears whole and
//!   contiguous, in its notifier's order; no rolled-back, dropped or unlogged notification appears;
//!   a transaction of unknown outcome appears whole or not at all.
//! * A listener lifetime (an epoch) starts with one transaction `LISTEN <channels>; LISTEN m;
//!   NOTIFY m, <start marker>` and, unless killed, ends by notifying an end marker, reading up to
//!   it, then `UNLISTEN *`. What it received must be one contiguous run of the auditor's stream
//!   filtered to its channels, starting at or before its start marker (nothing after its LISTEN
//!   missed) and, for a lifetime that ended cleanly, reaching its end marker.

use hark::{Connection, ErrorKind, Options};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Data channels; `m` carries the listeners' lifetime markers.
const CHANNELS: [&str; 7] = ["c0", "c1", "c2", "c3", "c4", "c5", "m"];
const MARKER: u8 = 6;
/// Mean time between kills.
const KILL_MEAN_MS: f64 = 200.0;
/// Share of notifier processes started with the fault hook that parks them inside their first
/// append, holding the writer lock, until they are killed.
const PARK_PERCENT: u64 = 12;

fn options() -> Options {
    // Small segments, so that the run crosses hundreds of segment boundaries and the tail advance,
    // reaping of dead listeners and file deletion are exercised all the time.
    Options::new().max_queue_size(64 << 20).segment_size(256 << 10)
}

// ----- small helpers ---------------------------------------------------------------------------

/// xorshift64*: enough randomness for choosing actions, no dependency.
struct Rng(u64);
impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    t ^ ((std::process::id() as u64) << 32)
}

fn key(uid: u64, t: u64, k: u64) -> u64 {
    assert!(uid < 1 << 24 && t < 1 << 24 && k < 1 << 16);
    uid << 40 | t << 16 | k
}
fn key_uid(key: u64) -> u64 {
    key >> 40
}

fn payload(uid: u64, t: u64, k: u64, pad: usize) -> String {
    let letter = (b'a' + (key(uid, t, k) % 26) as u8) as char;
    let mut p = format!("{uid}.{t}.{k}~{pad}~");
    p.extend(std::iter::repeat(letter).take(pad));
    p
}

/// The key of a payload, if it is well-formed (including its pad).
fn parse_payload(p: &str) -> Option<u64> {
    let (head, rest) = p.split_once('~')?;
    let (len, pad) = rest.split_once('~')?;
    let mut it = head.split('.').map(|x| x.parse::<u64>().ok());
    let (uid, t, k) = (it.next()??, it.next()??, it.next()??);
    if it.next().is_some() || uid >= 1 << 24 || t >= 1 << 24 || k >= 1 << 16 {
        return None;
    }
    let key = key(uid, t, k);
    let letter = b'a' + (key % 26) as u8;
    (len.parse::<usize>().ok()? == pad.len() && pad.bytes().all(|b| b == letter)).then_some(key)
}

fn channel_index(c: &str) -> Option<u8> {
    CHANNELS.iter().position(|x| *x == c).map(|i| i as u8)
}

/// A log written line by line with `O_APPEND`; a process killed mid-line leaves a partial last
/// line, which the reader drops.
struct Log(File);
impl Log {
    fn create(path: &Path) -> Log {
        Log(OpenOptions::new().create(true).append(true).open(path).expect("open log"))
    }
    fn write(&mut self, s: &str) {
        self.0.write_all(s.as_bytes()).expect("write log");
    }
}

fn read_log(path: &Path) -> Vec<String> {
    let Ok(f) = File::open(path) else { return Vec::new() };
    let mut lines = Vec::new();
    let mut r = BufReader::new(f);
    let mut s = String::new();
    while r.read_line(&mut s).unwrap_or(0) > 0 {
        if !s.ends_with('\n') {
            break; // cut by a kill
        }
        lines.push(s.trim_end().to_owned());
        s.clear();
    }
    lines
}

fn die(msg: impl std::fmt::Display) -> ! {
    eprintln!("soak child {}: {msg}", std::process::id());
    std::process::exit(1)
}

// ----- the children ----------------------------------------------------------------------------

/// A notifier: transactions of 1–12 notifications (sometimes up to 60) with random payload sizes,
/// savepoints released or rolled back to, duplicates (folded), whole rollbacks, autocommit and
/// multi-statement (implicit block) commits.
fn notifier(dir: &Path, run: &Path, uid: u64, log: &Path) {
    let mut log = Log::create(log);
    log.write(&format!("P {}\n", std::process::id()));
    let mut rng = Rng::new(seed() ^ uid);
    let mut c = Connection::open(dir).unwrap_or_else(|e| die(e));
    c.set_notice_handler(Some(Box::new(|_| {})));
    let stop = run.join("stop");
    let mut t = 0;
    while !stop.exists() {
        t += 1;
        let mode = rng.below(100);
        let n = if rng.chance(5) { 13 + rng.below(48) } else { 1 + rng.below(12) };
        let mut kept: Vec<(String, String)> = Vec::new();
        let mut dropped: Vec<String> = Vec::new();
        let mut next_k = 0;
        let mut item = |rng: &mut Rng| {
            let ch = CHANNELS[rng.below(6) as usize].to_owned();
            let pad = if rng.chance(3) { rng.below(3000) } else { rng.below(40) } as usize;
            next_k += 1;
            (ch, payload(uid, t, next_k - 1, pad))
        };
        let line = |tag: &str, kept: &[(String, String)], dropped: &[String]| {
            let mut s = format!("T {t} {tag}");
            for (ch, p) in kept {
                let _ = write!(s, " {}:{}", channel_index(ch).unwrap(), parse_payload(p).unwrap());
            }
            s.push_str(" |");
            for p in dropped {
                let _ = write!(s, " {}", parse_payload(p).unwrap());
            }
            s.push('\n');
            s
        };
        if mode < 15 {
            // Autocommit: one NOTIFY, or several statements in one call (an implicit block).
            let items: Vec<(String, String)> = (0..n.min(4)).map(|_| item(&mut rng)).collect();
            log.write(&line("a", &items, &[]));
            let sql: Vec<String> = items.iter().map(|(c, p)| format!("NOTIFY {c}, '{p}'")).collect();
            match c.execute(&sql.join("; ")) {
                Ok(_) => log.write(&format!("C {t}\n")),
                Err(e) if e.kind() == ErrorKind::QueueFull => log.write(&format!("F {t}\n")),
                Err(e) => die(format_args!("autocommit: {e}")),
            }
        } else {
            c.execute("BEGIN").unwrap_or_else(|e| die(e));
            let mut savepoint: Option<usize> = None;
            for i in 0..n {
                if savepoint.is_none() && i > 0 && rng.chance(10) {
                    c.execute("SAVEPOINT s").unwrap_or_else(|e| die(e));
                    savepoint = Some(kept.len());
                }
                let (ch, p) = if !kept.is_empty() && rng.chance(8) {
                    kept[rng.below(kept.len() as u64) as usize].clone() // folded at commit
                } else {
                    item(&mut rng)
                };
                if rng.chance(50) {
                    c.notify(&ch, &p).unwrap_or_else(|e| die(e));
                } else {
                    c.execute(&format!("SELECT pg_notify('{ch}', '{p}')")).unwrap_or_else(|e| die(e));
                }
                if !kept.contains(&(ch.clone(), p.clone())) {
                    kept.push((ch, p));
                }
                if let Some(mark) = savepoint {
                    if rng.chance(15) {
                        if rng.chance(50) {
                            c.execute("ROLLBACK TO SAVEPOINT s").unwrap_or_else(|e| die(e));
                            dropped.extend(kept.drain(mark..).map(|(_, p)| p));
                        } else {
                            c.execute("RELEASE SAVEPOINT s").unwrap_or_else(|e| die(e));
                        }
                        savepoint = None;
                    }
                }
            }
            if mode < 30 {
                log.write(&line("r", &kept, &dropped));
                c.execute("ROLLBACK").unwrap_or_else(|e| die(e));
                log.write(&format!("R {t}\n"));
            } else {
                log.write(&line("c", &kept, &dropped));
                match c.execute("COMMIT") {
                    Ok(_) => log.write(&format!("C {t}\n")),
                    Err(e) if e.kind() == ErrorKind::QueueFull => log.write(&format!("F {t}\n")),
                    Err(e) => die(format_args!("commit: {e}")),
                }
            }
        }
        if rng.chance(70) {
            std::thread::sleep(Duration::from_micros(rng.below(3000)));
        }
    }
    log.write("D\n");
}

/// A listener: epochs of LISTEN on a random set of channels, reading for a while, then a clean
/// end (end marker, read up to it, UNLISTEN *). Between epochs it sometimes rolls back a LISTEN,
/// which must change nothing.
fn listener(dir: &Path, run: &Path, uid: u64, log: &Path) {
    let mut log = Log::create(log);
    log.write(&format!("P {}\n", std::process::id()));
    let mut rng = Rng::new(seed() ^ uid);
    let mut c = Connection::open(dir).unwrap_or_else(|e| die(e));
    c.set_notice_handler(Some(Box::new(|_| {})));
    let stop = run.join("stop");
    let mut buf = String::new();
    let take = |c: &mut Connection, buf: &mut String, want: Option<u64>| -> bool {
        let mut seen = false;
        while let Some(n) = c.notifies().unwrap_or_else(|e| die(e)) {
            let ch = channel_index(&n.channel).unwrap_or_else(|| die(format_args!("unknown channel {:?}", n.channel)));
            let k = parse_payload(&n.payload).unwrap_or_else(|| die(format_args!("damaged payload {:?}", n.payload)));
            let _ = writeln!(buf, "N {ch} {k} {}", n.pid);
            seen |= Some(k) == want;
        }
        seen
    };
    let mut e = 0;
    loop {
        e += 1;
        let mut chans: Vec<usize> = (0..6).filter(|_| rng.chance(35)).collect();
        if chans.is_empty() {
            chans.push(rng.below(6) as usize);
        }
        if rng.chance(20) {
            // A LISTEN rolled back: the channel must not be delivered in this epoch.
            let other = (0..6).find(|i| !chans.contains(i)).unwrap_or(0);
            c.execute(&format!("BEGIN; LISTEN {}; ROLLBACK", CHANNELS[other])).unwrap_or_else(|e| die(e));
        }
        let names: Vec<&str> = chans.iter().map(|&i| CHANNELS[i]).collect();
        log.write(&format!("E {e} {}\n", chans.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(",")));
        c.execute("BEGIN").unwrap_or_else(|e| die(e));
        for n in &names {
            c.listen(n).unwrap_or_else(|e| die(e));
        }
        c.execute(&format!("LISTEN m; NOTIFY m, '{}'", payload(uid, e, 0, 0))).unwrap_or_else(|e| die(e));
        c.execute("COMMIT").unwrap_or_else(|e| die(e));
        let until = Instant::now() + Duration::from_millis(300 + rng.below(2700));
        while Instant::now() < until && !stop.exists() {
            c.wait(Some(Duration::from_millis(50))).unwrap_or_else(|e| die(e));
            take(&mut c, &mut buf, None);
            if buf.len() > 4096 {
                log.write(&std::mem::take(&mut buf));
            }
        }
        // End the epoch cleanly: everything up to our end marker must have arrived.
        let end = key(uid, e, 1);
        log.write(&std::mem::take(&mut buf));
        log.write(&format!("Q {e}\n"));
        c.notify("m", &payload(uid, e, 1, 0)).unwrap_or_else(|e| die(e));
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = take(&mut c, &mut buf, Some(end));
        while !seen {
            if Instant::now() > deadline {
                die("own end marker never arrived");
            }
            c.wait(Some(Duration::from_millis(100))).unwrap_or_else(|e| die(e));
            seen = take(&mut c, &mut buf, Some(end));
        }
        c.execute("UNLISTEN *").unwrap_or_else(|e| die(e));
        take(&mut c, &mut buf, None);
        log.write(&std::mem::take(&mut buf));
        log.write(&format!("X {e}\n"));
        if stop.exists() {
            break;
        }
        if rng.chance(30) {
            std::thread::sleep(Duration::from_millis(rng.below(200)));
        }
    }
    log.write("D\n");
}

// ----- the driver ------------------------------------------------------------------------------

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Role {
    Notifier,
    Listener,
}

struct Proc {
    role: Role,
    uid: u64,
    child: Child,
    park: Option<PathBuf>,
}

struct Run {
    dir: PathBuf,
    run: PathBuf,
    next_uid: u64,
    procs: Vec<Proc>,
    /// Every process ever started: (uid, role, parked hook set, killed).
    history: Vec<(u64, Role, bool, bool)>,
    failures: Vec<String>,
    kills: u64,
    parked_kills: u64,
}

impl Run {
    fn log_path(&self, uid: u64) -> PathBuf {
        self.run.join(format!("{uid}.log"))
    }

    fn spawn(&mut self, role: Role, rng: &mut Rng) {
        let uid = self.next_uid;
        self.next_uid += 1;
        let park = (role == Role::Notifier && rng.chance(PARK_PERCENT)).then(|| self.run.join(format!("{uid}.parked")));
        let mut cmd = Command::new(std::env::current_exe().unwrap());
        cmd.args(["child", if role == Role::Notifier { "notifier" } else { "listener" }])
            .arg(&self.dir)
            .arg(&self.run)
            .arg(uid.to_string())
            .arg(self.log_path(uid))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(File::create(self.run.join(format!("{uid}.err"))).unwrap());
        if let Some(p) = &park {
            cmd.env("HARK_FAULT_PARK_IN_APPEND", p);
        }
        let child = cmd.spawn().expect("spawn a soak child");
        self.history.push((uid, role, park.is_some(), false));
        self.procs.push(Proc { role, uid, child, park });
    }

    /// Children that exited by themselves before the end are failures.
    fn reap_exited(&mut self) {
        let mut i = 0;
        while i < self.procs.len() {
            if let Ok(Some(st)) = self.procs[i].child.try_wait() {
                let p = self.procs.remove(i);
                let err = std::fs::read_to_string(self.run.join(format!("{}.err", p.uid))).unwrap_or_default();
                self.failures.push(format!("{:?} {} exited by itself ({st}): {}", p.role, p.uid, err.trim()));
            } else {
                i += 1;
            }
        }
    }

    fn kill(&mut self, i: usize) {
        let mut p = self.procs.remove(i);
        let _ = p.child.kill();
        let _ = p.child.wait();
        self.kills += 1;
        if p.park.as_ref().is_some_and(|m| m.exists()) {
            self.parked_kills += 1;
        }
        if let Some(h) = self.history.iter_mut().find(|h| h.0 == p.uid) {
            h.3 = true;
        }
    }
}

/// One entry of the auditor's stream.
#[derive(Clone, Copy, Debug)]
struct Seen {
    chan: u8,
    key: u64,
    pid: i32,
}

fn auditor(dir: PathBuf, ready: std::sync::mpsc::Sender<()>) -> Result<Vec<Seen>, String> {
    let mut c = Connection::with_options(&dir, &options()).map_err(|e| e.to_string())?;
    c.set_notice_handler(Some(Box::new(|_| {})));
    c.execute(&CHANNELS.iter().map(|ch| format!("LISTEN {ch}")).collect::<Vec<_>>().join("; "))
        .map_err(|e| e.to_string())?;
    ready.send(()).unwrap();
    let mut seen = Vec::new();
    let end = key(0, 0, 0);
    let mut last = Instant::now();
    loop {
        // Commits never stop for long (a parked writer is killed within a second), so a long
        // silence means notifications are lost or the queue is wedged: fail instead of hanging.
        if last.elapsed() > Duration::from_secs(120) {
            return Err(format!("auditor: no notification for 120 s after {} received", seen.len()));
        }
        c.wait(Some(Duration::from_millis(200))).map_err(|e| e.to_string())?;
        while let Some(n) = c.notifies().map_err(|e| e.to_string())? {
            last = Instant::now();
            let chan = channel_index(&n.channel).ok_or_else(|| format!("auditor: unknown channel {:?}", n.channel))?;
            let key = parse_payload(&n.payload).ok_or_else(|| format!("auditor: damaged payload {:?}", n.payload))?;
            seen.push(Seen { chan, key, pid: n.pid });
            if key == end {
                return Ok(seen);
            }
        }
    }
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).map_or(default, |v| v.parse().expect(name))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("child") {
        // Children die with the driver, so an interrupted soak leaves nothing running.
        // SAFETY: prctl with integer arguments.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) };
        let (dir, run, uid, log) =
            (Path::new(&args[3]), Path::new(&args[4]), args[5].parse().unwrap(), Path::new(&args[6]));
        match args[2].as_str() {
            "notifier" => notifier(dir, run, uid, log),
            "listener" => listener(dir, run, uid, log),
            r => die(format_args!("unknown role {r}")),
        }
        return;
    }
    let seconds = arg(&args, "--seconds", 120);
    let notifiers = arg(&args, "--notifiers", 4);
    let listeners = arg(&args, "--listeners", 4);
    let seed = arg(&args, "--seed", seed());
    let base = std::env::temp_dir().join(format!("hark-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let (dir, run) = (base.join("q"), base.join("run"));
    std::fs::create_dir_all(&run).unwrap();
    eprintln!("soak: {seconds} s, {notifiers} notifiers + {listeners} listeners, seed {seed}, in {}", base.display());

    let (tx, rx) = std::sync::mpsc::channel();
    let adir = dir.clone();
    let audit = std::thread::spawn(move || auditor(adir, tx));
    if rx.recv_timeout(Duration::from_secs(30)).is_err() {
        eprintln!("soak: the auditor could not start: {:?}", audit.join());
        std::process::exit(1);
    }

    let mut rng = Rng::new(seed);
    let mut r = Run {
        dir: dir.clone(),
        run: run.clone(),
        next_uid: 1,
        procs: Vec::new(),
        history: Vec::new(),
        failures: Vec::new(),
        kills: 0,
        parked_kills: 0,
    };
    for _ in 0..notifiers {
        r.spawn(Role::Notifier, &mut rng);
    }
    for _ in 0..listeners {
        r.spawn(Role::Listener, &mut rng);
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < deadline && r.failures.is_empty() {
        // Exponential gaps around the mean, capped so a parked writer never stalls long.
        let gap = (-KILL_MEAN_MS * (1.0 - rng.unit()).ln()).min(1000.0);
        std::thread::sleep(Duration::from_micros((gap * 1000.0) as u64));
        r.reap_exited();
        // A writer parked mid-commit holds the writer lock: it is the next victim.
        let victim = r
            .procs
            .iter()
            .position(|p| p.park.as_ref().is_some_and(|m| m.exists()))
            .unwrap_or_else(|| rng.below(r.procs.len() as u64) as usize);
        let role = r.procs[victim].role;
        r.kill(victim);
        r.spawn(role, &mut rng);
    }

    // Wind down: no more kills; every process ends cleanly.
    std::fs::write(run.join("stop"), b"").unwrap();
    let stop_deadline = Instant::now() + Duration::from_secs(120);
    while !r.procs.is_empty() {
        if let Some(i) = r.procs.iter().position(|p| p.park.as_ref().is_some_and(|m| m.exists())) {
            r.kill(i);
            continue;
        }
        let mut i = 0;
        while i < r.procs.len() {
            match r.procs[i].child.try_wait() {
                Ok(Some(st)) => {
                    let p = r.procs.remove(i);
                    if !st.success() {
                        let err = std::fs::read_to_string(run.join(format!("{}.err", p.uid))).unwrap_or_default();
                        r.failures.push(format!("{:?} {} failed at the end ({st}): {}", p.role, p.uid, err.trim()));
                    }
                }
                _ => i += 1,
            }
        }
        if Instant::now() > stop_deadline {
            r.failures.push(format!("{} processes did not stop within 120 s", r.procs.len()));
            for i in (0..r.procs.len()).rev() {
                r.kill(i);
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    {
        let mut z = Connection::open(&dir).expect("open the queue at the end");
        z.notify("m", &payload(0, 0, 0, 0)).expect("send the last marker");
    }
    let stream = match audit.join().expect("auditor thread") {
        Ok(s) => s,
        Err(e) => {
            r.failures.push(e);
            Vec::new()
        }
    };
    let report = check(&r, &stream);
    let drained = check_drained(&dir);
    let mut failures = r.failures.clone();
    failures.extend(report.violations.iter().cloned());
    if let Err(e) = &drained {
        failures.push(e.clone());
    }
    println!(
        "soak: {seconds} s, {notifiers} notifiers + {listeners} listeners, {} processes started, {} killed ({} parked mid-commit); \
         transactions: {} committed, {} rolled back, {} refused as queue full, {} killed ({} after commit, {} before); \
         listener lifetimes checked: {} ({} ended by a kill); notifications checked: {} (auditor stream {}); {}; {}",
        r.history.len(),
        r.kills,
        r.parked_kills,
        report.committed,
        report.rolled_back,
        report.full,
        report.killed_after + report.killed_before,
        report.killed_after,
        report.killed_before,
        report.epochs,
        report.killed_epochs,
        report.checked,
        stream.len(),
        drained.as_deref().unwrap_or("queue NOT drained"),
        if failures.is_empty() { "OK" } else { "FAILED" }
    );
    if !failures.is_empty() {
        // The global order, for a post-mortem with the logs: index, channel, key (uid.t.k), PID.
        let mut dump = String::new();
        for (i, x) in stream.iter().enumerate() {
            let _ = writeln!(
                dump,
                "{i} {} {}.{}.{} {}",
                x.chan,
                x.key >> 40,
                (x.key >> 16) & 0xff_ffff,
                x.key & 0xffff,
                x.pid
            );
        }
        let _ = std::fs::write(run.join("auditor.txt"), dump);
        for f in failures.iter().take(30) {
            eprintln!("soak: {f}");
        }
        eprintln!("soak: {} problems; logs kept in {}", failures.len(), base.display());
        std::process::exit(1);
    }
    let _ = std::fs::remove_dir_all(&base);
}

/// After every session has closed, the tail reaches the head and the segment files behind it go.
fn check_drained(dir: &Path) -> Result<String, String> {
    let q = hark::Queue::open(dir, &Options::default()).map_err(|e| format!("reopen the queue: {e}"))?;
    let st = q.stats().map_err(|e| format!("queue stats: {e}"))?;
    if !st.listeners.is_empty() || st.tail != st.head || st.usage != 0.0 || st.segment_files.len() > 1 {
        return Err(format!(
            "queue not drained: head {}, tail {}, {} listeners, segment files {:?}",
            st.head,
            st.tail,
            st.listeners.len(),
            st.segment_files
        ));
    }
    Ok(format!("queue drained (head at {} bytes, {} segment file left)", st.head, st.segment_files.len()))
}

#[derive(Default)]
struct Report {
    committed: u64,
    rolled_back: u64,
    full: u64,
    killed_after: u64,
    killed_before: u64,
    epochs: u64,
    killed_epochs: u64,
    checked: u64,
    violations: Vec<String>,
}

impl Report {
    fn bad(&mut self, s: String) {
        if self.violations.len() < 1000 {
            self.violations.push(s);
        }
    }
}

fn check(r: &Run, a: &[Seen]) -> Report {
    let mut rep = Report::default();
    let mut index: HashMap<u64, usize> = HashMap::with_capacity(a.len());
    for (i, s) in a.iter().enumerate() {
        if index.insert(s.key, i).is_some() {
            rep.bad(format!("auditor received {:x} twice", s.key));
        }
    }
    rep.checked += a.len() as u64;
    // Every notification the auditor saw must be accounted for by some log.
    let mut accounted: HashSet<u64> = HashSet::new();
    accounted.insert(key(0, 0, 0));
    let mut pids: HashMap<u64, i32> = HashMap::new();

    for &(uid, role, _parked, killed) in &r.history {
        let lines = read_log(&r.log_path(uid));
        if let Some(pid) = lines.first().and_then(|l| l.strip_prefix("P ")).and_then(|p| p.parse().ok()) {
            pids.insert(uid, pid);
        }
        let ended = lines.last().is_some_and(|l| l == "D");
        if !killed && !ended {
            rep.bad(format!("{role:?} {uid} was not killed but did not finish its log"));
        }
        match role {
            Role::Notifier => check_notifier(&mut rep, uid, &lines, a, &index, &mut accounted),
            Role::Listener => check_listener(&mut rep, uid, &lines, a, &index, &mut accounted),
        }
    }
    for s in a {
        if !accounted.contains(&s.key) {
            rep.bad(format!(
                "auditor received {}.{}.{}, which no process logged",
                s.key >> 40,
                (s.key >> 16) & 0xff_ffff,
                s.key & 0xffff
            ));
        }
        let uid = key_uid(s.key);
        if uid != 0 && pids.get(&uid).is_some_and(|&p| p != s.pid) {
            rep.bad(format!("notification of process {uid} carries PID {} instead of {:?}", s.pid, pids.get(&uid)));
        }
    }
    rep
}

/// A notifier's transaction as logged: number, the (channel, key) pairs it expects to become
/// visible, the keys a `ROLLBACK TO` dropped, and its outcome (`C`, `R`, `F`, or none if killed).
type LoggedTxn = (u64, Vec<(u8, u64)>, Vec<u64>, Option<char>);

fn check_notifier(
    rep: &mut Report,
    uid: u64,
    lines: &[String],
    a: &[Seen],
    index: &HashMap<u64, usize>,
    accounted: &mut HashSet<u64>,
) {
    let mut txns: Vec<LoggedTxn> = Vec::new();
    for l in lines {
        let mut w = l.split(' ');
        match w.next() {
            Some("T") => {
                let t: u64 = w.next().unwrap().parse().unwrap();
                let _kind = w.next();
                let mut kept = Vec::new();
                let mut dropped = Vec::new();
                let mut after_bar = false;
                for x in w {
                    if x == "|" {
                        after_bar = true;
                    } else if after_bar {
                        dropped.push(x.parse().unwrap());
                    } else {
                        let (c, k) = x.split_once(':').unwrap();
                        kept.push((c.parse().unwrap(), k.parse().unwrap()));
                    }
                }
                txns.push((t, kept, dropped, None));
            }
            Some(tag @ ("C" | "R" | "F")) => {
                let t: u64 = w.next().unwrap().parse().unwrap();
                match txns.last_mut() {
                    Some(x) if x.0 == t => x.3 = tag.chars().next(),
                    _ => rep.bad(format!("notifier {uid}: log out of order at {l:?}")),
                }
            }
            _ => {}
        }
    }
    let mut last_pos: Option<usize> = None;
    for (t, kept, dropped, outcome) in &txns {
        for (_, k) in kept {
            accounted.insert(*k);
        }
        for k in dropped {
            if index.contains_key(k) {
                rep.bad(format!("notifier {uid} txn {t}: a notification dropped by ROLLBACK TO was delivered"));
            }
        }
        let present: Vec<Option<usize>> = kept.iter().map(|(_, k)| index.get(k).copied()).collect();
        let n_present = present.iter().flatten().count();
        let whole = n_present == kept.len();
        match outcome {
            Some('C') => {
                rep.committed += 1;
                if !whole {
                    rep.bad(format!(
                        "notifier {uid} txn {t}: committed, but {} of {} notifications never arrived",
                        kept.len() - n_present,
                        kept.len()
                    ));
                    continue;
                }
            }
            Some(o) => {
                if *o == 'R' {
                    rep.rolled_back += 1;
                } else {
                    rep.full += 1;
                }
                if n_present > 0 {
                    rep.bad(format!("notifier {uid} txn {t}: {} notifications of a transaction that did not commit ({o}) were delivered", n_present));
                }
                continue;
            }
            None => {
                if whole && !kept.is_empty() {
                    rep.killed_after += 1;
                } else if n_present == 0 {
                    rep.killed_before += 1;
                    continue;
                } else {
                    rep.bad(format!("notifier {uid} txn {t}: killed mid-commit and only {n_present} of {} notifications became visible", kept.len()));
                    continue;
                }
            }
        }
        // Visible: contiguous in the global order, in send order, after this notifier's earlier ones.
        let pos: Vec<usize> = present.into_iter().flatten().collect();
        if let Some(&first) = pos.first() {
            if pos.iter().enumerate().any(|(j, &p)| p != first + j) {
                rep.bad(format!(
                    "notifier {uid} txn {t}: its notifications are not contiguous and in order in the commit order"
                ));
            }
            for ((c, _), &p) in kept.iter().zip(&pos) {
                if a[p].chan != *c {
                    rep.bad(format!("notifier {uid} txn {t}: a notification arrived on the wrong channel"));
                }
            }
            if last_pos.is_some_and(|l| l >= first) {
                rep.bad(format!("notifier {uid} txn {t}: committed before its predecessor in the global order"));
            }
            last_pos = Some(*pos.last().unwrap());
        }
    }
}

fn check_listener(
    rep: &mut Report,
    uid: u64,
    lines: &[String],
    a: &[Seen],
    index: &HashMap<u64, usize>,
    accounted: &mut HashSet<u64>,
) {
    struct Epoch {
        e: u64,
        chans: Vec<u8>,
        got: Vec<(u8, u64, i32)>,
        clean: bool,
    }
    let mut epochs: Vec<Epoch> = Vec::new();
    for l in lines {
        let mut w = l.split(' ');
        match w.next() {
            Some("E") => {
                let e = w.next().unwrap().parse().unwrap();
                let mut chans: Vec<u8> = w.next().unwrap().split(',').map(|c| c.parse().unwrap()).collect();
                chans.push(MARKER);
                accounted.insert(key(uid, e, 0));
                epochs.push(Epoch { e, chans, got: Vec::new(), clean: false });
            }
            Some("Q") => {
                let e = w.next().unwrap().parse().unwrap();
                accounted.insert(key(uid, e, 1));
            }
            Some("N") => {
                let c = w.next().unwrap().parse().unwrap();
                let k = w.next().unwrap().parse().unwrap();
                let p = w.next().unwrap().parse().unwrap();
                epochs.last_mut().expect("N before E").got.push((c, k, p));
            }
            Some("X") => epochs.last_mut().expect("X before E").clean = true,
            _ => {}
        }
    }
    for ep in &epochs {
        rep.epochs += 1;
        if !ep.clean {
            rep.killed_epochs += 1;
        }
        let who = format!("listener {uid} epoch {} (channels {:?})", ep.e, ep.chans);
        let start = index.get(&key(uid, ep.e, 0)).copied();
        let end = index.get(&key(uid, ep.e, 1)).copied();
        let Some(start) = start else {
            if !ep.got.is_empty() {
                rep.bad(format!("{who}: received notifications although its LISTEN never committed"));
            }
            continue;
        };
        if ep.got.is_empty() {
            if ep.clean {
                rep.bad(format!("{who}: ended cleanly without receiving anything, not even its own markers"));
            }
            continue;
        }
        // Map every received notification to its place in the global order.
        let mut places = Vec::with_capacity(ep.got.len());
        for &(c, k, p) in &ep.got {
            match index.get(&k) {
                Some(&i) if a[i].chan == c && a[i].pid == p => places.push(i),
                Some(_) => {
                    rep.bad(format!("{who}: received {k:x} with a channel or PID that differs from the committed one"))
                }
                None => rep.bad(format!(
                    "{who}: received {k:x}, which never committed (rolled back, or killed before commit)"
                )),
            }
        }
        if places.len() != ep.got.len() {
            continue;
        }
        rep.checked += places.len() as u64;
        if places[0] > start {
            rep.bad(format!(
                "{who}: missed notifications committed after its LISTEN (first received at {}, LISTEN at {start})",
                places[0]
            ));
        }
        // One contiguous run of the stream filtered to the epoch's channels: exactly once, in order.
        let mut expect = places[0];
        for (j, &p) in places.iter().enumerate() {
            if p != expect {
                let missing = (expect..p.max(expect)).filter(|&i| ep.chans.contains(&a[i].chan)).count();
                rep.bad(format!(
                    "{who}: notification {j} is at {p} in the commit order, expected {expect} ({})",
                    if p < expect { "duplicate or out of order".to_owned() } else { format!("{missing} missed") }
                ));
                break;
            }
            expect = p + 1;
            while expect < a.len() && !ep.chans.contains(&a[expect].chan) {
                expect += 1;
            }
        }
        if ep.clean {
            match end {
                Some(end) if *places.last().unwrap() >= end => {}
                _ => rep.bad(format!("{who}: ended cleanly but did not receive everything up to its end marker")),
            }
        }
    }
}
