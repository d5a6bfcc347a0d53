//! `hark bridge`: the queue's channels carried to and from a PostgreSQL database (crate
//! hark-bridge), until SIGINT or SIGTERM.

use clap::Args;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Args)]
#[command(override_usage = "hark bridge [OPTIONS] [DIR] --postgres CONNINFO --channel NAME...")]
pub struct BridgeArgs {
    /// Queue directory (or give it with --dir).
    pub dir: Option<PathBuf>,
    /// Queue directory.
    #[arg(short = 'd', long = "dir", value_name = "DIR", conflicts_with = "dir")]
    pub dir_opt: Option<PathBuf>,
    /// The database: a libpq connection string (`host=db user=bridge dbname=app`) or a
    /// `postgresql://` URI. What it leaves unset comes from PGHOST, PGPORT, PGUSER, PGDATABASE,
    /// PGPASSWORD, … and libpq's defaults; a password from PGPASSFILE or ~/.pgpass. TLS as
    /// libpq: sslmode (default prefer), sslrootcert, sslcert, sslkey or PGSSLMODE, ….
    #[arg(long, value_name = "CONNINFO", default_value = "")]
    pub postgres: String,
    /// A channel to carry both ways (repeat, or give several after one --channel).
    #[arg(long = "channel", value_name = "NAME", required = true, num_args = 1..)]
    pub channels: Vec<String>,
    /// The bridge's name on this queue (its state file `bridge.NAME.state`, its subscription).
    #[arg(long, default_value = "default")]
    pub name: String,
    /// Longest wait between two connection attempts, in seconds.
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    pub max_backoff: f64,
    /// Lag limit of the bridge's subscription, in bytes of the local queue: what PostgreSQL has
    /// not taken past it (while it is unreachable, say) is skipped, and `hark.bridge.gap` sent
    /// in its place. Default: none (the queue holds it, up to its maximum size).
    #[arg(long, value_name = "BYTES")]
    pub max_lag_bytes: Option<u64>,
    /// Share the queue with the directory's group (as every member must give it).
    #[arg(long)]
    pub group_shared: bool,
}

pub fn run(a: BridgeArgs) -> u8 {
    let dir = a.dir_opt.or(a.dir).unwrap_or_else(hark::default_dir);
    let mut config = hark_bridge::Config::new(dir, &a.postgres, a.channels);
    config.name = a.name;
    config.options = hark::Options::new().group_shared(a.group_shared);
    config.backoff_max = Duration::from_secs_f64(a.max_backoff.clamp(0.01, 3600.0));
    config.backoff_min = config.backoff_min.min(config.backoff_max);
    config.max_lag_bytes = a.max_lag_bytes;
    // SIGINT and SIGTERM are taken here, by sigwait, and never by the bridge's thread.
    // SAFETY: a sigset initialised by sigemptyset, used by this thread only.
    let set = unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    };
    let bridge = match hark_bridge::Bridge::start(config) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("hark bridge: {e}");
            return 1;
        }
    };
    // A watcher thread turns the signal into a stop; the bridge may also end on its own error.
    let stopper = bridge.stopper();
    std::thread::spawn(move || {
        let mut sig = 0;
        // SAFETY: `set` is a valid signal set; sigwait writes the signal number.
        unsafe { libc::sigwait(&set, &mut sig) };
        stopper.stop();
    });
    match bridge.join() {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("hark bridge: {e}");
            1
        }
    }
}

/// The bridges' part of `hark stat`: one paragraph per bridge state file in `dir`.
pub fn stat_text(dir: &std::path::Path) -> String {
    let mut out = String::new();
    for r in hark_bridge::state::read_all(dir) {
        let state =
            if r.running { r.get("state").to_owned() } else { format!("not running (last: {})", r.get("state")) };
        out.push_str(&format!("bridge       {}: {} since {}, pid {}\n", r.name, state, r.get("since"), r.get("pid")));
        out.push_str(&format!("  postgres   {} (connects {}", r.get("postgres"), r.get("connects")));
        if !r.get("pg_backend_pid").is_empty() {
            out.push_str(&format!(", backend pid {}", r.get("pg_backend_pid")));
            if !r.get("pg_sender_pid").is_empty() {
                out.push_str(&format!(" (sending: {})", r.get("pg_sender_pid")));
            }
        }
        if r.get("state") == "disconnected" {
            out.push_str(&format!(", next attempt in {} ms", r.get("retry_in_ms")));
        }
        out.push_str(")\n");
        out.push_str(&format!("  channels   {}\n", r.get("channels")));
        out.push_str(&format!(
            "  sent       {} transactions, {} notifications to PostgreSQL; {} too long for it\n",
            r.get("to_pg_transactions"),
            r.get("to_pg_notifications"),
            r.get("too_long")
        ));
        out.push_str(&format!(
            "  received   {} transactions, {} notifications from PostgreSQL; {} gaps signalled; {} repeats skipped\n",
            r.get("from_pg_transactions"),
            r.get("from_pg_notifications"),
            r.get("gaps_signalled"),
            r.get("repeats_skipped")
        ));
        if !r.get("last_error").is_empty() {
            out.push_str(&format!("  last error {}\n", r.get("last_error")));
        }
    }
    out
}

/// The same as a JSON array of objects (every field as a string, and `running`).
pub fn stat_json(dir: &std::path::Path) -> String {
    let items: Vec<serde_json::Value> = hark_bridge::state::read_all(dir)
        .iter()
        .map(|r| {
            let mut object = serde_json::Map::new();
            object.insert("running".into(), r.running.into());
            for (k, v) in &r.fields {
                object.insert(k.clone(), v.as_str().into());
            }
            serde_json::Value::Object(object)
        })
        .collect();
    serde_json::Value::Array(items).to_string()
}
