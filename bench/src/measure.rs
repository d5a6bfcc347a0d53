//! Clocks, percentiles and process/directory sizes.

use std::path::Path;

/// CLOCK_MONOTONIC in nanoseconds: comparable between processes of one machine.
pub fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid out-parameter.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Spins until `until_ns` (sub-millisecond gaps without a sleep's wake-up cost).
pub fn spin_until(until_ns: u64) {
    while now_ns() < until_ns {
        std::hint::spin_loop();
    }
}

/// How a paced sender spends the time between two sends.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// It spins: a process busy between its commits, which keeps its CPU (the woken process
    /// runs on another, which may have to be woken from idle).
    Busy,
    /// It sleeps: a process that blocks between its commits, as one waiting for its next request
    /// (its CPU is free for the woken processes; the gaps are a little longer than asked, by
    /// the timer's slack, which the latency measured from the send time does not include).
    Idle,
}

impl Pace {
    /// The pace of a latency run's mode: `latency` is busy, `latency-idle` idle.
    pub fn of_mode(mode: &str) -> Option<Pace> {
        match mode {
            "latency" => Some(Pace::Busy),
            "latency-idle" => Some(Pace::Idle),
            _ => None,
        }
    }

    /// Waits until `until_ns`.
    pub fn until(self, until_ns: u64) {
        match self {
            Pace::Busy => spin_until(until_ns),
            Pace::Idle => {
                let now = now_ns();
                if until_ns > now {
                    std::thread::sleep(std::time::Duration::from_nanos(until_ns - now));
                }
            }
        }
    }
}

/// p50, p90, p99 and max of microsecond samples.
pub fn percentiles(mut us: Vec<f64>) -> [f64; 4] {
    us.sort_by(|a, b| a.partial_cmp(b).expect("no NaN"));
    let q = |p: f64| us[((us.len() as f64 * p) as usize).min(us.len() - 1)];
    [q(0.50), q(0.90), q(0.99), us[us.len() - 1]]
}

/// Resident set size of a process in bytes (VmRSS).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Bytes allocated to the files of a directory, and how many segment files it holds (counting
/// the spare one kept for reuse).
pub fn dir_usage(dir: &Path) -> (u64, usize) {
    use std::os::unix::fs::MetadataExt;
    let mut bytes = 0;
    let mut segments = 0;
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            if let Ok(m) = e.metadata() {
                bytes += m.blocks() * 512;
            }
            let name = e.file_name();
            let n = name.to_string_lossy();
            if (n.len() == 15 && n.bytes().all(|b| b.is_ascii_hexdigit())) || n == "spare" {
                segments += 1;
            }
        }
    }
    (bytes, segments)
}

/// A short description of this machine for reports.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("model name")).map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    // SAFETY: sysconf has no preconditions.
    let cpus = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| s.lines().next().and_then(|l| l.split_whitespace().nth(1)).and_then(|k| k.parse::<u64>().ok()))
        .map_or(0, |kb| kb / 1024 / 1024);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cpus} × {cpu}, {mem} GiB, Linux {}", kernel.trim())
}
