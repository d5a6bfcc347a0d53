//! `hark`: a psql-like shell, listen/notify/stat, and a live browser dashboard for hark queues.

use clap::{Args, Parser, Subcommand};
use hark::{AckMode, Connection, ErrorKind, SubscribeOptions};
use hark_cli::format::{render_error, TableStyle};
use hark_cli::listen::Receive;
use hark_cli::serve::{self, ServeConfig, TokenSource};
use hark_cli::shell::{Shell, ShellOptions};
use hark_cli::stat;
use hark_cli::tcn::{tcn_payload, TcnOp};
use std::io::{self, IsTerminal, Read};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// PostgreSQL's LISTEN/NOTIFY on a queue directory shared by the processes of one machine.
///
/// The queue directory is the one given with -d/--dir DIR, else $HARK_DIR, else /dev/shm/hark-<uid>
/// (/tmp/hark-<uid> without /dev/shm): one rule, so that a service and a login shell of the same
/// user meet on one queue. A queue is created there if there is none (unless --no-create), in a
/// missing or empty directory only. Positional arguments are never a directory, except the one
/// DIR that shell and stat take (they take nothing else): for listen, notify and serve they are
/// channels (and notify's payload), and an argument that names a directory is refused.
#[derive(Parser)]
#[command(name = "hark", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Read and execute statements as psql does (interactively when standard input is a terminal).
    Shell(ShellArgs),
    /// Print notifications on CHANNELs as they arrive.
    Listen(ListenArgs),
    /// Send one notification.
    Notify(NotifyArgs),
    /// Drop durable subscriptions (those `hark listen --subscription` consumes), with their
    /// positions.
    Unsubscribe(UnsubscribeArgs),
    /// Show the queue's size, positions, segment files, listeners and subscriptions with their lag.
    Stat(StatArgs),
    /// Forward notifications to browsers (WebSocket /ws, Server-Sent Events /events) with a live
    /// dashboard at /.
    ///
    /// The dashboard shows the last --history notifications as soon as it opens, one line each
    /// (a JSON payload opens on a click), with filters by channel and by text, pause, clear, and
    /// a field to listen on one more channel or pattern (not with --open). A WebSocket at / (plain mode)
    /// sends each payload as it is and nothing else, for code such as
    /// `new WebSocket("ws://localhost:9292")` with `console.log(event.data)`.
    ///
    /// Every request must present a secret token: as `?token=` in the URL, as the cookie the
    /// dashboard sets when opened with it, or as `Authorization: Bearer TOKEN`; others get 403.
    /// By default a fresh token is made at start and the dashboard's URL with it is printed on
    /// standard error (`http://localhost:9292/?token=…`). To choose the token, for scripts, give
    /// it in --token-file or in the environment variable HARK_SERVE_TOKEN (at least 16 letters,
    /// digits or `-._~`). Requests whose Host is not 127.0.0.1, [::1], localhost or an
    /// --allow-host name (with the port), or whose Origin is another site, are refused too.
    Serve(ServeArgs),
    /// Carry CHANNELs between this queue and a PostgreSQL database, both ways, so that other
    /// machines' queues bridged to the same database (and any PostgreSQL client on it) hear them.
    Bridge(hark_cli::bridge::BridgeArgs),
    /// Measure hark with real processes: per-commit, batched, latency, fanout, patterns,
    /// notifiers, payload, backlog, subscription, reattach, broadcast, floor (`hark bench --help`
    /// for the options).
    #[command(disable_help_flag = true)]
    Bench {
        /// Scenarios and options, passed to the benchmark coordinator.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// How to open (and, the first time, create) the queue: the options of `hark::Options`.
#[derive(Args)]
struct QueueArgs {
    /// Share the queue with the directory's group (directory 02770, setgid; files 0660 of its
    /// group). Every process of every member must give it; see the README on sharing a queue.
    #[arg(long)]
    group_shared: bool,
    /// Largest payload in bytes, for a queue this creates (default 7999, as PostgreSQL; at most
    /// 1048576). An existing queue keeps its own: a different value is an error.
    #[arg(long, value_name = "BYTES")]
    max_payload: Option<usize>,
    /// Largest queue in bytes, for a queue this creates (default 8 GiB, as PostgreSQL; at least
    /// 524288). An existing queue keeps its own: a different value is an error.
    #[arg(long, value_name = "BYTES")]
    max_queue_size: Option<u64>,
    /// Open only an existing queue: fail (`queue "DIR" does not exist`) rather than create one.
    #[arg(long)]
    no_create: bool,
    /// For a queue this creates: when it is full, cut the listeners and subscriptions holding it
    /// back (each is told by a gap what it skipped) instead of failing commits with 54000. An
    /// existing queue keeps its own policy: a different one is an error.
    #[arg(long)]
    cut_laggards: bool,
    /// For a queue this creates: a plain listener further than BYTES behind the newest commit is
    /// cut, with a gap (subscriptions set their own limits). An existing queue keeps its own.
    #[arg(long, value_name = "BYTES", value_parser = clap::value_parser!(u64).range(1..))]
    listener_max_lag_bytes: Option<u64>,
    /// For a queue this creates: a plain listener whose oldest unread commit is older than S
    /// seconds is cut, with a gap. An existing queue keeps its own.
    #[arg(long, value_name = "S", value_parser = positive_seconds)]
    listener_max_lag_age: Option<f64>,
}

impl QueueArgs {
    fn options(&self) -> hark::Options {
        hark::Options {
            max_payload: self.max_payload,
            max_queue_size: self.max_queue_size,
            cut_laggards: self.cut_laggards.then_some(true),
            listener_max_lag_bytes: self.listener_max_lag_bytes,
            listener_max_lag_age: self.listener_max_lag_age.map(Duration::from_secs_f64),
            ..hark::Options::new()
        }
        .group_shared(self.group_shared)
        .create(!self.no_create)
    }
}

#[derive(Args)]
struct ShellArgs {
    /// Queue directory (the same as --dir).
    #[arg(value_name = "DIR", conflicts_with = "dir")]
    positional_dir: Option<PathBuf>,
    /// Queue directory.
    #[arg(short = 'd', long)]
    dir: Option<PathBuf>,
    #[command(flatten)]
    queue: QueueArgs,
    /// Execute this SQL (several statements in it run as one implicit transaction) and exit.
    #[arg(short = 'c', long = "command", value_name = "SQL", conflicts_with = "file")]
    command: Option<String>,
    /// Read statements from FILE (`-` for standard input) and exit.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<String>,
    /// Quiet: no command tags.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Print rows only (no header, no row-count footer).
    #[arg(short = 't', long = "tuples-only")]
    tuples_only: bool,
    /// Unaligned output: fields separated by `|`.
    #[arg(short = 'A', long = "no-align")]
    no_align: bool,
    /// Set variable NAME to VALUE, as \set does (`-v NAME` unsets it). `-v ON_ERROR_STOP=1` makes
    /// a script stop at its first error, with exit status 3.
    #[arg(short = 'v', long = "set", visible_alias = "variable", value_name = "NAME=VALUE")]
    variables: Vec<String>,
}

#[derive(Args)]
#[command(
    override_usage = "hark listen [OPTIONS] CHANNEL...\n       hark listen [OPTIONS] --subscription NAME CHANNEL|PATTERN..."
)]
struct ListenArgs {
    /// Channels to listen on (exact names, as LISTEN takes them); with --subscription, channels
    /// or patterns (`orders.*`: `*`, `?` and `\` escapes, as Redis' PSUBSCRIBE).
    #[arg(required = true, value_name = "CHANNEL")]
    args: Vec<String>,
    /// Queue directory.
    #[arg(short = 'd', long)]
    dir: Option<PathBuf>,
    #[command(flatten)]
    queue: QueueArgs,
    /// One JSON object per line: {"channel","payload","pid"} (with --subscription, also
    /// "position", "txn" and "commit_time" in milliseconds); a gap is
    /// {"gap":{"skipped","first_txn","last_txn","resumed_at"}}.
    #[arg(long)]
    json: bool,
    /// Exit after N notifications.
    #[arg(long, value_name = "N")]
    count: Option<u64>,
    /// Exit after S seconds (status 1 if --count was given and not reached).
    #[arg(long, value_name = "S", value_parser = seconds)]
    timeout: Option<f64>,
    /// Consume the durable subscription NAME (created on CHANNELs if it does not exist; the
    /// channels and lag limits given replace its stored ones; its position is kept): print what
    /// was committed on them since its last acknowledged notification, then what commits. Each
    /// notification is acknowledged once its line is written and flushed, so a killed `hark
    /// listen` receives again only what it had not printed, plus at most its last printed line.
    #[arg(long, value_name = "NAME")]
    subscription: Option<String>,
    /// With --subscription: when another process is attached to NAME, wait for it to let go (for
    /// at most S seconds, when given) instead of failing at once with 55006.
    #[arg(
        long,
        value_name = "S",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "inf",
        value_parser = seconds_or_forever,
        requires = "subscription"
    )]
    wait: Option<f64>,
    /// With --subscription: past BYTES of queue between it and the newest commit, the
    /// subscription is cut (moved forward; the skipped notifications are reported as a gap)
    /// instead of holding the queue back.
    #[arg(long, value_name = "BYTES", requires = "subscription", value_parser = clap::value_parser!(u64).range(1..))]
    max_lag_bytes: Option<u64>,
    /// With --subscription: when its oldest unread commit is older than S seconds, the
    /// subscription is cut, as with --max-lag-bytes.
    #[arg(long, value_name = "S", requires = "subscription", value_parser = positive_seconds)]
    max_lag_age: Option<f64>,
    /// With --subscription: print without acknowledging (the next attach receives the same
    /// notifications again).
    #[arg(long, requires = "subscription")]
    no_ack: bool,
}

/// A number of seconds: not negative, and finite (one that a duration can hold).
fn seconds(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if Duration::try_from_secs_f64(v).is_ok() => Ok(v),
        _ => Err(format!("{s:?} is not a number of seconds")),
    }
}

/// A lag limit in seconds: more than zero (the core takes zero as no limit).
fn positive_seconds(s: &str) -> Result<f64, String> {
    match seconds(s)? {
        v if v > 0.0 => Ok(v),
        _ => Err("a lag limit must be more than 0 seconds (leave it out for none)".to_owned()),
    }
}

/// A number of seconds, or `inf` (what `--wait` alone means).
fn seconds_or_forever(s: &str) -> Result<f64, String> {
    if s == "inf" {
        return Ok(f64::INFINITY);
    }
    seconds(s)
}

#[derive(Args)]
struct UnsubscribeArgs {
    /// Durable subscriptions to drop.
    #[arg(required = true, value_name = "NAME")]
    names: Vec<String>,
    /// Queue directory.
    #[arg(short = 'd', long)]
    dir: Option<PathBuf>,
    /// The queue is shared with the directory's group (as created with --group-shared).
    #[arg(long)]
    group_shared: bool,
}

#[derive(Args)]
#[command(
    override_usage = "hark notify [OPTIONS] CHANNEL [PAYLOAD]\n       hark notify [OPTIONS] [CHANNEL] --tcn TABLE OP KEY=VALUE..."
)]
struct NotifyArgs {
    /// CHANNEL [PAYLOAD]; PAYLOAD `-` reads it from standard input (one final newline
    /// dropped). With --tcn, CHANNEL defaults to `tcn`.
    #[arg(value_name = "CHANNEL")]
    args: Vec<String>,
    /// Queue directory.
    #[arg(short = 'd', long)]
    dir: Option<PathBuf>,
    #[command(flatten)]
    queue: QueueArgs,
    /// Build the payload as PostgreSQL's tcn extension does: TABLE, OP (I, U or D) and the key
    /// columns' values as KEY=VALUE.
    #[arg(long, num_args = 3.., value_names = ["TABLE", "OP", "KEY=VALUE"], allow_hyphen_values = true)]
    tcn: Option<Vec<String>>,
}

#[derive(Args)]
struct StatArgs {
    /// Queue directory (the same as --dir).
    #[arg(value_name = "DIR", conflicts_with = "dir")]
    positional_dir: Option<PathBuf>,
    /// Queue directory.
    #[arg(short = 'd', long)]
    dir: Option<PathBuf>,
    /// The queue is shared with the directory's group (as created with --group-shared).
    #[arg(long)]
    group_shared: bool,
    /// Print one JSON object.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
#[command(override_usage = "hark serve [OPTIONS] CHANNEL...")]
struct ServeArgs {
    /// Channels to forward.
    #[arg(required = true, value_name = "CHANNEL")]
    args: Vec<String>,
    /// Queue directory.
    #[arg(short = 'd', long)]
    dir: Option<PathBuf>,
    #[command(flatten)]
    queue: QueueArgs,
    /// Loopback address and port to serve on (port 0 picks a free one).
    #[arg(long, default_value = "127.0.0.1:9292")]
    addr: SocketAddr,
    /// Serve on a Unix socket at PATH instead of a TCP port: created 0600, so only you can
    /// connect, in a directory that must be yours and writable by you only. Clients send
    /// `Host: localhost` (`curl --unix-socket PATH 'http://localhost/events?token=…'`).
    #[arg(long, value_name = "PATH", conflicts_with = "addr")]
    unix: Option<PathBuf>,
    /// Notifications queued for one browser before it is dropped as too slow.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    client_queue: u32,
    /// Browsers served at once.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    max_clients: u32,
    /// Recent notifications kept and shown to a page when it opens (at most 8 MiB of them; 0 keeps
    /// none).
    #[arg(long, value_name = "N", default_value_t = 200)]
    history: u32,
    /// Read the token from the first line of FILE, which must be yours and closed to group and
    /// others (chmod 600). Takes precedence over HARK_SERVE_TOKEN.
    #[arg(long, value_name = "FILE")]
    token_file: Option<PathBuf>,
    /// Also accept requests addressed to NAME (with the port), for a name of this machine other
    /// than localhost. Repeatable.
    #[arg(long = "allow-host", value_name = "NAME")]
    allow_host: Vec<String>,
    /// Serve without a token. Any user of this machine, and any program or web page able to reach
    /// the port, can then read the notifications.
    #[arg(long, conflicts_with = "token_file")]
    open: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let status = match cli.command {
        Command::Shell(a) => shell(a),
        Command::Listen(a) => listen(a),
        Command::Notify(a) => notify(a),
        Command::Unsubscribe(a) => unsubscribe(a),
        Command::Stat(a) => stat_cmd(a),
        Command::Serve(a) => serve_cmd(a),
        Command::Bridge(a) => hark_cli::bridge::run(a),
        Command::Bench { args } => hark_bench::main(&["bench"], &args).clamp(0, 255) as u8,
    };
    ExitCode::from(status)
}

/// The queue directory: `--dir` (or shell's and stat's positional DIR), else $HARK_DIR, else the
/// default.
fn queue_dir(dir: Option<PathBuf>) -> PathBuf {
    dir.unwrap_or_else(hark::default_dir)
}

/// Refuses a channel argument that is a directory or written as a path: the queue directory is
/// given with --dir only, so such an argument is a mistake, never a guess to be made.
fn check_channels(command: &str, channels: &[String]) -> Result<(), u8> {
    for ch in channels {
        let path_like =
            ch.starts_with(['/', '~']) || ch.starts_with("./") || ch.starts_with("../") || ch.ends_with('/');
        if path_like || (!ch.is_empty() && std::path::Path::new(ch).is_dir()) {
            eprintln!(
                "hark {command}: {ch:?} names a directory, not a channel\n\
                 HINT:  Give the queue directory with --dir {ch} (or $HARK_DIR); the other arguments are channels."
            );
            return Err(2);
        }
    }
    Ok(())
}

fn open(dir: &std::path::Path, queue: &QueueArgs) -> Result<Connection, u8> {
    Connection::with_options(dir, &queue.options()).map_err(|e| {
        eprint!("hark: could not open the queue in {}\n{}", dir.display(), render_error(&e, None));
        1
    })
}

fn fail(e: &hark::Error) -> u8 {
    eprint!("{}", render_error(e, None));
    1
}

fn shell(a: ShellArgs) -> u8 {
    let dir = queue_dir(a.dir.or(a.positional_dir));
    let conn = match open(&dir, &a.queue) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let opts = ShellOptions { quiet: a.quiet, style: TableStyle { unaligned: a.no_align, tuples_only: a.tuples_only } };
    let mut sh = Shell::new(conn, opts);
    for v in &a.variables {
        if let Err(e) = sh.assign_variable(v) {
            eprintln!("hark: error: {e}");
            return 1;
        }
    }
    let code = if let Some(sql) = a.command {
        sh.run_command(&sql)
    } else if let Some(f) = a.file.as_deref().filter(|f| *f != "-") {
        match std::fs::File::open(f) {
            Ok(file) => sh.run_script(&mut io::BufReader::new(file), Some(f)),
            Err(e) => {
                eprintln!("hark: error: {f}: {e}");
                1
            }
        }
    } else if a.file.is_some() {
        sh.run_script(&mut io::stdin().lock(), Some("<stdin>"))
    } else if io::stdin().is_terminal() {
        let banner = format!(
            "hark ({}) on {}\nType \"\\?\" for help; end statements with \";\".\n",
            env!("CARGO_PKG_VERSION"),
            dir.display()
        );
        sh.run_interactive(&banner)
    } else {
        sh.run_script(&mut io::stdin().lock(), None)
    };
    code as u8
}

fn listen(a: ListenArgs) -> u8 {
    let (dir, channels) = (queue_dir(a.dir), a.args);
    if let Err(code) = check_channels("listen", &channels) {
        return code;
    }
    let mut conn = match open(&dir, &a.queue) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if let Some(name) = &a.subscription {
        let mut options = SubscribeOptions::new().ack(AckMode::Explicit);
        options.max_lag_bytes = a.max_lag_bytes;
        options.max_lag_age = a.max_lag_age.map(Duration::from_secs_f64);
        if let Err(code) = subscribe(&mut conn, name, &channels, options, a.wait) {
            return code;
        }
    } else {
        for ch in &channels {
            if let Err(e) = conn.listen(ch) {
                return fail(&e);
            }
        }
    }
    let r = Receive {
        json: a.json,
        subscription: a.subscription.is_some(),
        ack: a.subscription.is_some() && !a.no_ack,
        count: a.count,
        timeout: a.timeout.map(Duration::from_secs_f64),
    };
    hark_cli::listen::run(&mut conn, &r, &mut io::stdout().lock())
}

/// Attaches `conn` to the subscription `name`, waiting `wait` seconds (infinite: until it is
/// free) for another session to let go of it. Reports a failure and returns the exit status.
fn subscribe(
    conn: &mut Connection,
    name: &str,
    channels: &[String],
    options: SubscribeOptions,
    wait: Option<f64>,
) -> Result<(), u8> {
    let channels: Vec<&str> = channels.iter().map(String::as_str).collect();
    // The core waits for a bounded time, given as a duration: a long wait is made of rounds,
    // against a deadline of our own (none: for ever, or too far to be told from it).
    const ROUND: Duration = Duration::from_secs(3600);
    let deadline = wait.map(|s| Duration::try_from_secs_f64(s).ok().and_then(|w| Instant::now().checked_add(w)));
    let mut options = options;
    loop {
        options.wait = deadline.map(|d| d.map_or(ROUND, |d| d.saturating_duration_since(Instant::now()).min(ROUND)));
        match conn.subscribe(name, &channels, &options) {
            Ok(()) => return Ok(()),
            Err(e)
                if e.kind() == ErrorKind::InUse && deadline.is_some_and(|d| d.map_or(true, |d| Instant::now() < d)) =>
            {
                continue
            }
            Err(e) if e.kind() == ErrorKind::InUse => {
                // The core's hint speaks of the API; say what the command takes.
                let hint = match wait {
                    None => "One process at a time may consume a subscription. Give --wait to wait for it to let go."
                        .to_owned(),
                    Some(s) => format!("It was still attached after waiting {s} seconds."),
                };
                eprintln!("ERROR:  {}\nHINT:  {hint}", e.message());
                return Err(1);
            }
            Err(e) => return Err(fail(&e)),
        }
    }
}

fn unsubscribe(a: UnsubscribeArgs) -> u8 {
    let dir = queue_dir(a.dir);
    // Dropping must not create a queue.
    let options = hark::Options::new().group_shared(a.group_shared).create(false);
    let mut conn = match Connection::with_options(&dir, &options) {
        Ok(c) => c,
        Err(e) => {
            eprint!("hark: could not open the queue in {}\n{}", dir.display(), render_error(&e, None));
            return 1;
        }
    };
    for name in &a.names {
        if let Err(e) = conn.unsubscribe(name) {
            return fail(&e);
        }
    }
    0
}

fn notify(a: NotifyArgs) -> u8 {
    let (dir, mut rest) = (queue_dir(a.dir), a.args);
    if let Err(code) = check_channels("notify", &rest[..rest.len().min(1)]) {
        return code;
    }
    let (channel, payload) = if let Some(t) = a.tcn {
        if rest.len() > 1 {
            eprintln!("hark notify: with --tcn, give at most a channel (the payload is built from --tcn)");
            return 2;
        }
        let Some(op) = TcnOp::parse(&t[1]) else {
            eprintln!("hark notify: --tcn operation must be I, U or D (or INSERT, UPDATE, DELETE), not {:?}", t[1]);
            return 2;
        };
        let mut key = Vec::new();
        for kv in &t[2..] {
            let Some((k, v)) = kv.split_once('=') else {
                eprintln!("hark notify: --tcn key column must be written KEY=VALUE, not {kv:?}");
                return 2;
            };
            key.push((k.to_owned(), v.to_owned()));
        }
        (rest.pop().unwrap_or_else(|| "tcn".to_owned()), tcn_payload(&t[0], op, &key))
    } else {
        match rest.len() {
            1 => (rest.remove(0), String::new()),
            2 => {
                let payload = rest.pop().unwrap_or_default();
                let payload = if payload == "-" {
                    let mut s = String::new();
                    if let Err(e) = io::stdin().read_to_string(&mut s) {
                        eprintln!("hark notify: could not read the payload from standard input: {e}");
                        return 1;
                    }
                    if s.ends_with('\n') {
                        s.pop();
                    }
                    s
                } else {
                    payload
                };
                (rest.remove(0), payload)
            }
            0 => {
                eprintln!("hark notify: no channel given");
                return 2;
            }
            _ => {
                eprintln!(
                    "hark notify: too many arguments (expected CHANNEL [PAYLOAD]; the queue directory goes with --dir)"
                );
                return 2;
            }
        }
    };
    let mut conn = match open(&dir, &a.queue) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match conn.notify(&channel, &payload) {
        Ok(()) => 0,
        Err(e) => fail(&e),
    }
}

fn stat_cmd(a: StatArgs) -> u8 {
    let dir = queue_dir(a.dir.or(a.positional_dir));
    // Looking must not create a queue.
    let options = hark::Options::new().group_shared(a.group_shared).create(false);
    let stats = hark::Queue::open(&dir, &options).and_then(|q| q.stats());
    match stats {
        Ok(s) => {
            let text = if a.json {
                let queue = stat::render_json(&dir, &s);
                let queue = queue.trim_end().strip_suffix('}').unwrap_or(&queue);
                format!("{queue},\"bridges\":{}}}\n", hark_cli::bridge::stat_json(&dir))
            } else {
                stat::render_text(&dir, &s) + &hark_cli::bridge::stat_text(&dir)
            };
            print!("{text}");
            0
        }
        Err(e) => fail(&e),
    }
}

fn serve_cmd(a: ServeArgs) -> u8 {
    let (dir, channels) = (queue_dir(a.dir), a.args);
    if let Err(code) = check_channels("serve", &channels) {
        return code;
    }
    let env_token = std::env::var_os("HARK_SERVE_TOKEN");
    let token = if a.open {
        if env_token.is_some() {
            eprintln!("hark serve: HARK_SERVE_TOKEN is set but --open serves without a token; unset one or the other");
            return 2;
        }
        TokenSource::Open
    } else if let Some(f) = &a.token_file {
        match serve::read_token_file(f) {
            Ok(token) => TokenSource::Given { token, from: f.display().to_string() },
            Err(e) => {
                eprintln!("hark serve: {e}");
                return 1;
            }
        }
    } else if let Some(t) = env_token {
        match t.into_string() {
            Ok(token) => TokenSource::Given { token, from: "HARK_SERVE_TOKEN".into() },
            Err(_) => {
                eprintln!("hark serve: HARK_SERVE_TOKEN is not valid UTF-8");
                return 1;
            }
        }
    } else {
        TokenSource::Generate
    };
    let cfg = ServeConfig {
        dir,
        options: a.queue.options(),
        addr: a.addr,
        unix: a.unix,
        channels,
        client_queue: a.client_queue as usize,
        max_clients: a.max_clients as usize,
        token,
        allow_hosts: a.allow_host,
        history: a.history as usize,
    };
    match serve::run(cfg) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("hark serve: {e}");
            1
        }
    }
}
