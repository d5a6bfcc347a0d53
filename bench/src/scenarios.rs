//! The scenarios: each starts real processes on a fresh queue directory and measures them.

use crate::floor;
use crate::measure::{dir_usage, machine, now_ns, rss_bytes, Pace};
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Lines, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

pub const ALL: [&str; 12] = [
    "per-commit",
    "batched",
    "latency",
    "fanout",
    "patterns",
    "notifiers",
    "payload",
    "backlog",
    "subscription",
    "reattach",
    "broadcast",
    "floor",
];

type Res<T> = Result<T, Box<dyn std::error::Error>>;

pub struct Config {
    pub prefix: Vec<String>,
    pub quick: bool,
    pub base: Option<PathBuf>,
    /// Another implementation of the scenario roles (`PROGRAM --role NAME TARGET ARGS…`), and
    /// the target it is given instead of a queue directory; `{fresh}` in it becomes a fresh path.
    pub driver: Option<(String, String)>,
    /// The roles the driver plays (all when empty); hark's own processes play the others.
    pub driver_roles: Vec<String>,
    /// Multiplies the counts of notifications (for peers a hundred times slower than hark, so
    /// that a run takes seconds, not hours).
    pub scale: f64,
}

impl Default for Config {
    fn default() -> Config {
        Config { prefix: Vec::new(), quick: false, base: None, driver: None, driver_roles: Vec::new(), scale: 1.0 }
    }
}

impl Config {
    fn n(&self, full: u64, quick: u64) -> u64 {
        if self.quick {
            quick
        } else {
            // A scaled count never drops below a few hundred notifications.
            ((full as f64 * self.scale) as u64).max(quick.min(500))
        }
    }

    /// The number of samples of a paced latency run: not scaled, since the pace, not the
    /// peer's speed, sets the run's length, and a shorter run meets fewer of the machine's
    /// hiccups (which would flatter its tail against a longer one).
    fn samples(&self, full: u64, quick: u64) -> u64 {
        if self.quick {
            quick
        } else {
            full
        }
    }

    /// A fresh queue directory (hark), or the driver's target.
    fn fresh_target(&self, tag: &str) -> PathBuf {
        match &self.driver {
            Some((_, t)) => PathBuf::from(t.replace("{fresh}", &self.fresh_dir(tag).display().to_string())),
            None => self.fresh_dir(tag),
        }
    }

    /// Creates the hark queue a scenario runs on (drivers make their own targets).
    fn create(&self, dir: &Path, max_payload: usize) -> Res<()> {
        if self.driver.is_none() {
            hark::Queue::open(dir, &hark::Options::new().max_payload(max_payload))?;
        }
        Ok(())
    }

    fn fresh_dir(&self, tag: &str) -> PathBuf {
        let base = self.base.clone().unwrap_or_else(|| {
            let shm = Path::new("/dev/shm");
            if shm.is_dir() {
                shm.into()
            } else {
                std::env::temp_dir()
            }
        });
        let d = base.join(format!("hark-bench-{}-{tag}-{}", std::process::id(), now_ns()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }
}

/// A scenario process.
struct Proc {
    child: Child,
    out: Lines<BufReader<ChildStdout>>,
    stdin: Option<ChildStdin>,
}

impl Proc {
    fn start(cfg: &Config, role: &str, args: &[String]) -> Res<Proc> {
        let driven = cfg.driver_roles.is_empty() || cfg.driver_roles.iter().any(|r| r == role);
        let mut cmd = match &cfg.driver {
            Some((program, _)) if driven => {
                // "python3 peer.py": a program and its leading arguments.
                let mut words = program.split_whitespace();
                let mut c = Command::new(words.next().ok_or("empty driver")?);
                c.args(words);
                c
            }
            _ => {
                let mut c = Command::new(std::env::current_exe()?);
                c.args(&cfg.prefix);
                c
            }
        };
        let mut child = cmd.args(["--role", role]).args(args).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn()?;
        let out = BufReader::new(child.stdout.take().expect("piped")).lines();
        let stdin = child.stdin.take();
        Ok(Proc { child, out, stdin })
    }

    /// The next line, which must start with `word`; returns the rest.
    fn expect(&mut self, word: &str) -> Res<String> {
        match self.out.next() {
            Some(Ok(l)) if l.starts_with(word) => Ok(l[word.len()..].trim().to_owned()),
            Some(Ok(l)) => Err(format!("expected {word}, the process said {l:?}").into()),
            _ => {
                let st = self.child.wait()?;
                Err(format!("a {word} was expected but the process ended ({st})").into())
            }
        }
    }

    fn send(&mut self, line: &str) -> Res<()> {
        let s = self.stdin.as_mut().ok_or("stdin closed")?;
        writeln!(s, "{line}")?;
        s.flush()?;
        Ok(())
    }

    fn finish(mut self) -> Res<()> {
        drop(self.stdin.take());
        let st = self.child.wait()?;
        if !st.success() {
            return Err(format!("a scenario process failed ({st})").into());
        }
        Ok(())
    }
}

fn s(v: &[&dyn ToString]) -> Vec<String> {
    v.iter().map(|x| x.to_string()).collect()
}

/// One throughput run on a fresh queue: `notifiers` processes each sending `each` notifications,
/// `per_txn` per transaction, of `size` bytes, into one listener. Notifications per second, first
/// send to last receive; the listener checks that none was lost and each notifier's order held.
fn throughput(
    cfg: &Config,
    tag: &str,
    notifiers: usize,
    each: u64,
    per_txn: u64,
    size: usize,
    max_payload: usize,
) -> Res<f64> {
    let dir = cfg.fresh_target(tag);
    cfg.create(&dir, max_payload)?;
    let r = throughput_on(cfg, &dir, notifiers, each, per_txn, size, max_payload);
    let _ = std::fs::remove_dir_all(&dir);
    r
}

fn throughput_on(
    cfg: &Config,
    dir: &Path,
    notifiers: usize,
    each: u64,
    per_txn: u64,
    size: usize,
    max_payload: usize,
) -> Res<f64> {
    throughput_as(cfg, dir, "throughput", notifiers, each, per_txn, size, max_payload)
}

/// `throughput_on` with the listener in `mode` (`throughput`, or `sub-throughput`: a durable
/// subscription instead of LISTEN).
#[allow(clippy::too_many_arguments)]
fn throughput_as(
    cfg: &Config,
    dir: &Path,
    mode: &str,
    notifiers: usize,
    each: u64,
    per_txn: u64,
    size: usize,
    max_payload: usize,
) -> Res<f64> {
    let d = dir.display().to_string();
    let total = each * notifiers as u64;
    let l_started = now_ns();
    let mut l = Proc::start(cfg, "listener", &s(&[&d, &max_payload, &"bench", &notifiers, &total, &mode]))?;
    l.expect("READY")?;
    let mut ns = Vec::new();
    for i in 0..notifiers {
        let mut p =
            Proc::start(cfg, "notifier", &s(&[&d, &max_payload, &"bench", &i, &each, &per_txn, &size, &"throughput"]))?;
        p.expect("READY")?;
        ns.push(p);
    }
    for p in &mut ns {
        p.send("GO")?;
    }
    let mut start = u64::MAX;
    for p in &mut ns {
        start = start.min(p.expect("START")?.parse()?);
    }
    let end_line = l.expect("END")?;
    let mut end_fields = end_line.split(' ');
    let end: u64 = end_fields.next().unwrap_or("").parse()?;
    let listener_cpu: Option<u64> = end_fields.next().and_then(|c| c.parse().ok());
    for p in ns {
        p.expect_done()?;
    }
    l.finish()?;
    // How much of the run the listener was on a CPU (hark's own listener reports its CPU time).
    let started = l_started;
    *LAST_LISTENER_SHARE.lock().expect("not poisoned") =
        listener_cpu.map(|c| c as f64 / end.saturating_sub(started).max(1) as f64);
    Ok(total as f64 / ((end - start) as f64 / 1e9))
}

/// The listener's share of CPU during the last throughput run, when its role reports it.
static LAST_LISTENER_SHARE: std::sync::Mutex<Option<f64>> = std::sync::Mutex::new(None);

fn last_listener_share() -> Option<f64> {
    *LAST_LISTENER_SHARE.lock().expect("not poisoned")
}

impl Proc {
    fn expect_done(mut self) -> Res<()> {
        self.expect("DONE")?;
        self.finish()
    }
}

fn latency(cfg: &Config) -> Res<[f64; 4]> {
    let dir = cfg.fresh_target("latency");
    let d = dir.display().to_string();
    let count = cfg.samples(20_000, 500);
    let mut l = Proc::start(cfg, "listener", &s(&[&d, &7999, &"bench", &1, &count, &"latency"]))?;
    l.expect("READY")?;
    let mut n = Proc::start(cfg, "notifier", &s(&[&d, &7999, &"bench", &0, &count, &1, &64, &"latency"]))?;
    n.expect("READY")?;
    n.send("GO")?;
    n.expect("START")?;
    let v: Vec<f64> = l.expect("LAT")?.split(' ').map(|x| x.parse()).collect::<Result<_, _>>()?;
    n.expect_done()?;
    l.finish()?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok([v[0], v[1], v[2], v[3]])
}

/// Samples a process's resident set size every 20 ms until stopped; returns the maximum.
fn sample_rss(pid: u32) -> (Arc<AtomicBool>, std::thread::JoinHandle<u64>) {
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let h = std::thread::spawn(move || {
        let mut max = 0;
        while !s2.load(Ordering::SeqCst) {
            max = max.max(rss_bytes(pid).unwrap_or(0));
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        max
    });
    (stop, h)
}

struct Backlog {
    bytes: u64,
    rows: Vec<(String, u64, u64, u64, usize)>, // phase, notifier RSS, listener RSS, dir bytes, segments
}

fn backlog(cfg: &Config) -> Res<Backlog> {
    let dir = cfg.fresh_dir("backlog");
    let d = dir.display().to_string();
    let target: u64 = cfg.n(4 << 30, 64 << 20);
    let size = 7999usize;
    let count = target / (size as u64 + 32);
    hark::Queue::open(&dir, &hark::Options::new())?;
    let mut l = Proc::start(cfg, "listener", &s(&[&d, &7999, &"bench", &1, &count, &"backlog"]))?;
    l.expect("READY")?;
    let mut n = Proc::start(cfg, "notifier", &s(&[&d, &7999, &"bench", &0, &count, &1, &size, &"throughput"]))?;
    n.expect("READY")?;
    let (lp, np) = (l.child.id(), n.child.id());
    let mut rows = Vec::new();
    let snap = |phase: &str, rows: &mut Vec<_>, nr: u64, lr: u64| {
        let (b, segs) = dir_usage(&dir);
        rows.push((phase.to_owned(), nr, lr, b, segs));
    };
    snap("before", &mut rows, rss_bytes(np).unwrap_or(0), rss_bytes(lp).unwrap_or(0));
    let (stop_n, h_n) = sample_rss(np);
    let (stop_l, h_l) = sample_rss(lp);
    n.send("GO")?;
    n.expect("START")?;
    n.expect("DONE")?;
    let behind = hark::Queue::open(&dir, &hark::Options::new())?.stats()?.listeners.first().map_or(0, |x| x.lag);
    snap("behind", &mut rows, rss_bytes(np).unwrap_or(0), rss_bytes(lp).unwrap_or(0));
    l.send("GO")?;
    l.expect("END")?;
    stop_n.store(true, Ordering::SeqCst);
    stop_l.store(true, Ordering::SeqCst);
    let (max_n, max_l) = (h_n.join().unwrap_or(0), h_l.join().unwrap_or(0));
    // The listener's catch-up moved the tail as it crossed segments; no other commit is needed.
    snap("caught up", &mut rows, rss_bytes(np).unwrap_or(0), rss_bytes(lp).unwrap_or(0));
    rows.push(("max".into(), max_n, max_l, 0, 0));
    n.finish()?;
    l.finish()?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Backlog { bytes: behind, rows })
}

/// Runs the named scenarios; prints tables as it goes when `tables`; returns the JSON report.
pub fn run_all(cfg: &Config, names: &[String], tables: bool) -> Res<String> {
    let mut j = String::from("{");
    let _ = write!(j, "\"machine\":{:?}", machine());
    let out = |s: String| {
        if tables {
            println!("{s}");
        }
    };
    out(format!("hark bench on {}\n", machine()));
    let per = cfg.n(1_000_000, 20_000);
    for name in names {
        match name.as_str() {
            "per-commit" => {
                let r = throughput(cfg, "per-commit", 1, per, 1, 64, 7999)?;
                out(format!("| per-commit | 1 notifier → 1 listener, 64-byte payloads, 1 per transaction | {r:.0} notifications/s |"));
                let _ = write!(j, ",\"per-commit\":{{\"notifications_per_s\":{r:.0}}}");
            }
            "batched" => {
                let r = throughput(cfg, "batched", 1, cfg.n(5_000_000, 50_000), 1000, 64, 7999)?;
                out(format!("| batched | 1,000 notifications per transaction | {r:.0} notifications/s |"));
                let _ = write!(j, ",\"batched\":{{\"notifications_per_s\":{r:.0}}}");
            }
            "latency" => {
                let p = latency(cfg)?;
                out(format!("| latency | commit → receive, listener blocked on its fd | p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, max {:.1} µs |", p[0], p[1], p[2], p[3]));
                let _ = write!(
                    j,
                    ",\"latency\":{{\"p50_us\":{:.2},\"p90_us\":{:.2},\"p99_us\":{:.2},\"max_us\":{:.2}}}",
                    p[0], p[1], p[2], p[3]
                );
            }
            "fanout" => {
                let _ = write!(j, ",\"fanout\":{{");
                for (i, k) in [0usize, 10, 100, 1000].into_iter().enumerate() {
                    let r = fanout(cfg, k, per)?;
                    out(format!(
                        "| fanout | per-commit with {k} idle listeners on other channels | {r:.0} notifications/s |"
                    ));
                    let _ = write!(j, "{}\"k{k}\":{{\"notifications_per_s\":{r:.0}}}", if i > 0 { "," } else { "" });
                }
                j.push('}');
            }
            "patterns" => {
                let _ = write!(j, ",\"patterns\":{{");
                let base = fanout_as(cfg, 0, per, "listen")?;
                out(format!("| patterns | per-commit, no pattern subscriptions | {base:.0} notifications/s |"));
                let _ = write!(j, "\"none\":{{\"notifications_per_s\":{base:.0}}}");
                for (mode, what) in [("prefix", "`idle.I.*`: a literal prefix"), ("wildcard", "`*.idleI`: no prefix")] {
                    let r = fanout_as(cfg, 100, per, mode)?;
                    out(format!(
                        "| patterns | per-commit with 100 pattern subscriptions matching nothing ({what}) | {r:.0} notifications/s ({:.0}% of none) |",
                        100.0 * r / base
                    ));
                    let _ = write!(j, ",\"{mode}100\":{{\"notifications_per_s\":{r:.0}}}");
                }
                j.push('}');
            }
            "notifiers" => {
                let _ = write!(j, ",\"notifiers\":{{");
                for (i, n) in [1usize, 2, 4].into_iter().enumerate() {
                    let r = throughput(cfg, "notifiers", n, per / n as u64, 1, 64, 7999)?;
                    let share = last_listener_share();
                    let note =
                        share.map_or(String::new(), |x| format!(" (listener on a CPU {:.0}% of its life)", 100.0 * x));
                    out(format!("| notifiers | {n} notifier processes → 1 listener | {r:.0} notifications/s{note} |"));
                    let share_json = share.map_or(String::new(), |x| format!(",\"listener_cpu_share\":{x:.3}"));
                    let _ = write!(
                        j,
                        "{}\"n{n}\":{{\"notifications_per_s\":{r:.0}{share_json}}}",
                        if i > 0 { "," } else { "" }
                    );
                }
                j.push('}');
            }
            "payload" => {
                let a = throughput(cfg, "payload-7999", 1, cfg.n(200_000, 2_000), 1, 7999, 7999)?;
                out(format!(
                    "| payload | 7,999-byte payloads | {a:.0} notifications/s ({:.0} MB/s) |",
                    a * 7999.0 / 1e6
                ));
                let _ = write!(j, ",\"payload\":{{\"b7999\":{{\"notifications_per_s\":{a:.0}}}");
                if cfg.driver.is_none() {
                    // PostgreSQL's limit is 7,999 bytes; hark's is set per queue, up to 1 MiB.
                    let b = throughput(cfg, "payload-1m", 1, cfg.n(2_000, 50), 1, 1 << 20, 1 << 20)?;
                    out(format!("| payload | 1 MiB payloads (queue created with max_payload = 1 MiB) | {b:.0} notifications/s ({:.0} MB/s) |", b * 1048576.0 / 1e6));
                    let _ = write!(j, ",\"b1048576\":{{\"notifications_per_s\":{b:.0}}}");
                }
                j.push('}');
            }
            "backlog" => {
                let b = backlog(cfg)?;
                out(format!("| backlog | listener {} MiB behind, then catching up | phase: notifier RSS / listener RSS / directory |", b.bytes >> 20));
                let _ = write!(j, ",\"backlog\":{{\"behind_bytes\":{}", b.bytes);
                for (phase, nr, lr, db, segs) in &b.rows {
                    if phase == "max" {
                        out(format!("|  | max during the run | {} MiB / {} MiB |", nr >> 20, lr >> 20));
                    } else {
                        out(format!(
                            "|  | {phase} | {} MiB / {} MiB / {} MiB in {segs} segment files |",
                            nr >> 20,
                            lr >> 20,
                            db >> 20
                        ));
                    }
                    let key = phase.replace(' ', "_");
                    let _ = write!(j, ",\"{key}\":{{\"notifier_rss\":{nr},\"listener_rss\":{lr},\"dir_bytes\":{db},\"segments\":{segs}}}");
                }
                j.push('}');
            }
            "subscription" => {
                let dir = cfg.fresh_target("subscription");
                cfg.create(&dir, 7999)?;
                let sub = throughput_as(cfg, &dir, "sub-throughput", 1, per, 1, 64, 7999)?;
                let _ = std::fs::remove_dir_all(&dir);
                let plain = throughput(cfg, "subscription-plain", 1, per, 1, 64, 7999)?;
                out(format!(
                    "| subscription | per-commit into a durable subscription (acknowledged at each receive) | {sub:.0} notifications/s ({:.0}% of a LISTEN's {plain:.0}/s in this run) |",
                    100.0 * sub / plain
                ));
                let _ = write!(
                    j,
                    ",\"subscription\":{{\"notifications_per_s\":{sub:.0},\"listen_notifications_per_s\":{plain:.0}}}"
                );
            }
            "reattach" => {
                let n = cfg.n(1_000_000, 20_000);
                let r = reattach(cfg, n)?;
                let plain = throughput(cfg, "reattach-batched", 1, n, 1000, 64, 7999)?;
                out(format!(
                    "| reattach | a subscriber re-attaches after {n} notifications (1,000 per transaction) and reads them | {r:.0} notifications/s ({:.0}% of a LISTEN's batched {plain:.0}/s in this run) |",
                    100.0 * r / plain
                ));
                let _ = write!(j, ",\"reattach\":{{\"backlog\":{n},\"notifications_per_s\":{r:.0},\"batched_notifications_per_s\":{plain:.0}}}");
            }
            "broadcast" => {
                let _ = write!(j, ",\"broadcast\":{{");
                for (i, k) in [1usize, 10, 100].into_iter().enumerate() {
                    let (rate, busy, idle) = broadcast(cfg, k)?;
                    out(format!(
                        "| broadcast | 1 notifier → {k} listeners on one channel | {rate:.0} deliveries/s; slowest listener's p99 {busy:.1} µs (notifier busy between commits), {idle:.1} µs (idle) |"
                    ));
                    let _ = write!(
                        j,
                        "{}\"n{k}\":{{\"deliveries_per_s\":{rate:.0},\"slowest_p99_us\":{busy:.2},\"slowest_p99_idle_us\":{idle:.2}}}",
                        if i > 0 { "," } else { "" }
                    );
                }
                j.push('}');
            }
            "floor" => {
                let n = cfg.samples(20_000, 500) as usize;
                let p = floor::pipe_wakeup(n, Pace::Busy)?;
                let q = floor::pipe_wakeup(n, Pace::Idle)?;
                let m = floor::memcpy_gbps(256 << 20, if cfg.quick { 1 } else { 8 });
                out(format!("| floor | pipe wake-up between two processes | p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, max {:.1} µs |", p[0], p[1], p[2], p[3]));
                out(format!("| floor | the same, the writer idle between writes | p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, max {:.1} µs |", q[0], q[1], q[2], q[3]));
                out(format!("| floor | memcpy bandwidth | {m:.1} GB/s |"));
                let pct = |p: [f64; 4]| {
                    format!(
                        "{{\"p50_us\":{:.2},\"p90_us\":{:.2},\"p99_us\":{:.2},\"max_us\":{:.2}}}",
                        p[0], p[1], p[2], p[3]
                    )
                };
                let _ = write!(j, ",\"floor\":{{\"pipe\":{},\"pipe_idle\":{},\"memcpy_gbps\":{m:.2}}}", pct(p), pct(q));
            }
            other => return Err(format!("unknown scenario {other}").into()),
        }
    }
    j.push('}');
    Ok(j)
}

/// `per-commit` with `k` idle listener sessions (held by one extra process) on other channels.
fn fanout(cfg: &Config, k: usize, per: u64) -> Res<f64> {
    fanout_as(cfg, k, per, "listen")
}

/// `per-commit` with `k` idle sessions in one extra process, in the idle role's `mode`
/// (`listen`, or subscriptions on patterns that match nothing: `prefix`, `wildcard`).
fn fanout_as(cfg: &Config, k: usize, per: u64, mode: &str) -> Res<f64> {
    let dir = cfg.fresh_target(&format!("fanout{k}{mode}"));
    cfg.create(&dir, 7999)?;
    let mut idle = Proc::start(cfg, "idle", &s(&[&dir.display(), &k, &mode]))?;
    idle.expect("READY")?;
    let r = throughput_on(cfg, &dir, 1, per, 1, 64, 7999);
    idle.finish()?;
    let _ = std::fs::remove_dir_all(&dir);
    r
}

/// A subscriber re-attaching after `n` notifications (1,000 per transaction) were committed while
/// it was away: notifications per second of its catch-up, from its attach to its last receive.
fn reattach(cfg: &Config, n: u64) -> Res<f64> {
    let dir = cfg.fresh_target("reattach");
    cfg.create(&dir, 7999)?;
    let d = dir.display().to_string();
    let mut l = Proc::start(cfg, "listener", &s(&[&d, &7999, &"bench", &1, &n, &"sub-reattach"]))?;
    l.expect("READY")?;
    let mut p = Proc::start(cfg, "notifier", &s(&[&d, &7999, &"bench", &0, &n, &1000, &64, &"throughput"]))?;
    p.expect("READY")?;
    p.send("GO")?;
    p.expect("START")?;
    p.expect_done()?;
    let start = now_ns();
    l.send("GO")?;
    let end: u64 = l.expect("END")?.split(' ').next().unwrap_or("").parse()?;
    l.finish()?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(n as f64 / ((end - start) as f64 / 1e9))
}

/// One notifier, `k` listener processes on its channel: deliveries per second (each listener
/// checks it got every notification, in order), then, in two more runs at a steady pace (one
/// notification every 150 µs), the p99 commit-to-receive latency of the slowest listener, with
/// the notifier busy (spinning) and idle (sleeping) between its commits.
fn broadcast(cfg: &Config, k: usize) -> Res<(f64, f64, f64)> {
    let count = cfg.n(200_000, 5_000) / k as u64;
    let (dir, mut ls, mut p) = start_broadcast(cfg, &format!("broadcast{k}"), k, count, "throughput")?;
    let start: u64 = p.expect("START")?.parse()?;
    let mut end = 0u64;
    for l in &mut ls {
        end = end.max(l.expect("END")?.split(' ').next().unwrap_or("").parse()?);
    }
    p.expect_done()?;
    for l in ls {
        l.finish()?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    let rate = (count * k as u64) as f64 / ((end - start) as f64 / 1e9);

    let busy = broadcast_p99(cfg, k, "latency")?;
    let idle = broadcast_p99(cfg, k, "latency-idle")?;
    Ok((rate, busy, idle))
}

/// The p99 latency of the slowest of `k` listeners, the notifier paced as `mode` says.
fn broadcast_p99(cfg: &Config, k: usize, mode: &str) -> Res<f64> {
    let lat_count = cfg.samples(5_000, 200);
    let (dir, mut ls, mut p) = start_broadcast(cfg, &format!("broadcast{k}-{mode}"), k, lat_count, mode)?;
    p.expect("START")?;
    let mut p99 = 0f64;
    for l in &mut ls {
        let v: Vec<f64> = l.expect("LAT")?.split(' ').map(|x| x.parse()).collect::<Result<_, _>>()?;
        p99 = p99.max(v[2]);
    }
    p.expect_done()?;
    for l in ls {
        l.finish()?;
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(p99)
}

/// A fresh queue with `k` listener processes and one notifier in `mode`, all ready, the notifier
/// told to go.
fn start_broadcast(cfg: &Config, tag: &str, k: usize, count: u64, mode: &str) -> Res<(PathBuf, Vec<Proc>, Proc)> {
    let dir = cfg.fresh_target(tag);
    cfg.create(&dir, 7999)?;
    let d = dir.display().to_string();
    let mut ls = Vec::new();
    for _ in 0..k {
        let mut l = Proc::start(cfg, "listener", &s(&[&d, &7999, &"bench", &1, &count, &mode]))?;
        l.expect("READY")?;
        ls.push(l);
    }
    let mut p = Proc::start(cfg, "notifier", &s(&[&d, &7999, &"bench", &0, &count, &1, &64, &mode]))?;
    p.expect("READY")?;
    p.send("GO")?;
    Ok((dir, ls, p))
}
