//! # hark-bridge: a hark queue's channels carried between machines through PostgreSQL
//!
//! hark is for the processes of one machine. A bridge joins one machine's queue to a PostgreSQL
//! database, so that its processes keep hark's local delivery among themselves and also hear what
//! other machines' processes commit, through PostgreSQL's own LISTEN/NOTIFY, with no change to
//! their code. There is no protocol of hark's own on the network: any PostgreSQL client
//! (psql, node-postgres, psycopg) on the database hears and sends on the same channels.
//!
//! ```no_run
//! let config = hark_bridge::Config::new("/srv/q", "postgresql://bridge@db.example/app", ["orders", "stock"]);
//! let bridge = hark_bridge::Bridge::start(config)?;   // runs on a thread of its own
//! // … the application runs …
//! bridge.stop();                                        // or drop it
//! # Ok::<(), String>(())
//! ```
//!
//! ## Design
//!
//! One thread, one link of two PostgreSQL connections (`pg.rs`: one listens, and sends streams;
//! the other sends a transaction that goes alone, free of delivering the bridge's own
//! notifications to itself; through tokio-postgres, settings read as libpq reads them:
//! `conninfo.rs`; opened host by host as libpq, `connect.rs`, with TLS by libpq's `sslmode`
//! rules through rustls: `tls.rs`, `tls_libpq.rs`), one local session (attached to the
//! bridge's durable subscription; it also commits what PostgreSQL delivers, so that those commits
//! wake the local listeners and not the bridge itself), and a state file (`state.rs`).
//!
//! 1. **Connect.** The bridge connects twice, learns both backend PIDs and LISTENs on the
//!    bridged channels and on the mark channel `hark.bridge` (`wire.rs`) on the first. Failing
//!    that, or when either connection is lost later (the link is reopened whole), it waits and
//!    tries again, the wait doubling from [`Config::backoff_min`] to [`Config::backoff_max`]; each
//!    phase is written to `bridge.NAME.state` in the queue directory, which `hark stat` shows.
//! 2. **Local to PostgreSQL** (`outbound.rs`). The durable subscription `bridge.NAME`, on the
//!    bridged channels and `hark.bridge.origin`, hands out local transactions in commit order, also
//!    those committed while PostgreSQL was away or the bridge was not running. Each is sent as one
//!    PostgreSQL transaction ending with an end mark on `hark.bridge` (origin and local commit
//!    number), never merged with another (PostgreSQL would fold duplicates across them), as NOTIFY
//!    statements. Several go in one message, each between BEGIN and COMMIT, and the local
//!    acknowledgement covers exactly those whose COMMIT PostgreSQL reported; PostgreSQL stops a
//!    message at a refused statement, and the bridge ends the failed transaction block it leaves
//!    with a ROLLBACK and sends the rest again. While PostgreSQL runs one message, the bridge reads
//!    the next batch from the local queue (at most one batch ahead), and sends it once the reply
//!    came and what PostgreSQL delivered meanwhile is committed.
//! 3. **PostgreSQL to local** (`inbound.rs`). Notifications arrive in PostgreSQL's order, each
//!    transaction's together. Those carrying either of the bridge's backend PIDs are its own sends
//!    and are skipped (no echo), and so is a transaction whose end mark names the bridge's own
//!    origin (a backend of an earlier connection or run that committed it late). The rest are
//!    grouped back into their transactions (exactly, for another bridge's transactions, which end
//!    with a mark; by backend PID and arrival for other clients, and for a PID that sent a mark
//!    once but whose group waited a second for its mark: PostgreSQL gave a gone bridge's PID to
//!    another client) and each group is committed as one local transaction by the bridge's session,
//!    whose first notification is on `hark.bridge.origin` with the bridge's name. That mark is what
//!    step 2 skips: it is in the queue with the transaction, so a replay after a crash of the
//!    bridge recognises it too (a backend PID would not survive the restart). A session's own
//!    commit does not wake it: the bridge reads its own transactions back (and acknowledges them)
//!    1 ms after the first of them, together, off the listeners' wake-up.
//! 4. **Repeats.** A transaction is sent twice only when PostgreSQL committed it and the bridge did
//!    not record it locally: the connection was lost between sending COMMIT and its reply, or the
//!    bridge died between the reply and the acknowledgement (a bridge told to stop waits for the
//!    reply to what it sent, up to `STOP_WAIT`, and acknowledges what it committed). A receiving
//!    bridge remembers the last commit number of each origin and skips a marked transaction it
//!    already committed, so its host's listeners get each transaction once, also across its own
//!    restarts: the number travels in the local transaction's `hark.bridge.origin` notification
//!    and, once the bridge acknowledged that transaction, in `bridge.NAME.origins` (`origins.rs`).
//!    A plain PostgreSQL listener gets the repeat.
//! 5. **The gap.** PostgreSQL keeps nothing for a listener that is gone: what it delivered while
//!    the bridge was disconnected, or not running, is lost. Each time the bridge listens again
//!    after having listened before (in this process or an earlier one of the same name on this
//!    queue), it commits a notification on `hark.bridge.gap` before anything else, so that local
//!    listeners that care hear of the gap instead of silence. So does a PostgreSQL transaction
//!    larger than the whole local queue (refused by an empty queue), which is left out. The other
//!    way, a subscription cut at its lag limit ([`Config::max_lag_bytes`]) sends `hark.bridge.gap`
//!    to PostgreSQL.
//!
//! ## What is not guaranteed
//!
//! PostgreSQL's payloads are shorter than 8,000 bytes: a longer local one is not sent (the rest of
//! its transaction is), and `hark.bridge.dropped` on PostgreSQL, standard error and `hark stat` say
//! so; the other way, a payload longer than a queue's smaller `max_payload` is left out of its
//! transaction, and a local `hark.bridge.dropped` says so. PostgreSQL's queue is 8 GB and a
//! listener that falls behind holds it back for every client of the database. Transactions of
//! clients other than bridges are regrouped from their arrival: two that one backend commits back
//! to back may be committed locally as one (in order, nothing folded). Notifications PostgreSQL
//! delivered while the bridge was away are lost (the gap signal says so). A subscription cut at its
//! lag limit that skips transactions the bridge committed from PostgreSQL, unacknowledged, skips
//! their commit numbers too: a repeat of one of those reaching a restarted bridge is committed
//! again. TLS has no certificate revocation lists and no encrypted client keys.

mod connect;
mod conninfo;
#[cfg(feature = "test-hooks")]
mod hooks;
mod inbound;
mod origins;
mod outbound;
pub mod pg;
pub mod state;
pub mod tls;
mod tls_libpq;
pub mod wire;

pub use conninfo::{default_socket_dir, describe, redact, resolve, resolve_with, Target};

use inbound::Inbound;
use outbound::{Outbound, SendError};
use state::{now_secs, Phase, State, StateFile};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// What to bridge, and where.
#[derive(Clone)]
pub struct Config {
    /// The queue directory.
    pub dir: PathBuf,
    /// How to open it (and create it, the first time).
    pub options: hark::Options,
    /// A libpq connection string or `postgresql://` URI; empty: the `PG*` variables and defaults.
    pub postgres: String,
    /// The channels carried both ways, verbatim (as `pg_notify` takes them).
    pub channels: Vec<String>,
    /// The bridge's name on this queue (its state file, its subscription): default `default`.
    pub name: String,
    /// The first wait before reconnecting; doubled at each failure up to `backoff_max`.
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// The lag limit of the bridge's subscription, in bytes of the local queue: past it, what
    /// was not sent yet is skipped and `hark.bridge.gap` is sent instead. `None`: no limit (the
    /// subscription holds the queue back, up to its maximum size, while PostgreSQL is away).
    pub max_lag_bytes: Option<u64>,
}

impl Config {
    pub fn new<I, S>(dir: impl Into<PathBuf>, postgres: &str, channels: I) -> Config
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Config {
            dir: dir.into(),
            options: hark::Options::new(),
            postgres: postgres.to_owned(),
            channels: channels.into_iter().map(Into::into).collect(),
            name: "default".to_owned(),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(10),
            max_lag_bytes: None,
        }
    }

    fn check(&self) -> Result<(), String> {
        state::check_name(&self.name)?;
        if self.channels.is_empty() {
            return Err("no channel to bridge".to_owned());
        }
        for ch in &self.channels {
            if ch.is_empty() {
                return Err("a channel name cannot be empty".to_owned());
            }
            if ch.len() > hark::MAX_CHANNEL_LEN {
                return Err(format!("channel name too long: \"{ch}\""));
            }
            if wire::is_reserved(ch) {
                return Err(format!(
                    "channel \"{ch}\" is reserved for the bridge's own use (names starting with \"{}\")",
                    wire::RESERVED_PREFIX
                ));
            }
        }
        Ok(())
    }
}

/// A running bridge.
pub struct Bridge {
    stop: Arc<Notify>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl Bridge {
    /// Checks the configuration, opens the queue and claims the bridge's name on it, then runs
    /// the bridge on a thread of its own. Errors here are final; once running, the bridge
    /// retries PostgreSQL for ever and stops only when told (or on a local error it cannot go
    /// past, which [`Bridge::join`] returns).
    pub fn start(config: Config) -> Result<Bridge, String> {
        let setup = Setup::new(config)?;
        let stop = Arc::new(Notify::new());
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("hark-bridge".into())
            .spawn(move || run(setup, stop2))
            .map_err(|e| format!("could not start the bridge's thread: {e}"))?;
        Ok(Bridge { stop, thread: Some(thread) })
    }

    /// Asks the bridge to stop; it commits what it holds and marks its state stopped.
    pub fn stop(&self) {
        self.stop.notify_one();
    }

    /// A handle that stops the bridge from another thread.
    pub fn stopper(&self) -> Stopper {
        Stopper(self.stop.clone())
    }

    /// Waits for the bridge's thread; its error if it ended on one.
    pub fn join(mut self) -> Result<(), String> {
        match self.thread.take().map(|t| t.join()) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err("the bridge's thread panicked".to_owned()),
            None => Ok(()),
        }
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(t) = self.thread.take() {
            self.stop.notify_one();
            let _ = t.join();
        }
    }
}

/// Stops a [`Bridge`] from anywhere.
#[derive(Clone)]
pub struct Stopper(Arc<Notify>);

impl Stopper {
    pub fn stop(&self) {
        self.0.notify_one();
    }
}

/// What `start` checks and opens before the thread runs.
struct Setup {
    config: Config,
    pg: Target,
    inbound: Inbound,
    outbound: Outbound,
    file: StateFile,
    state: State,
    /// Whether an earlier run of this bridge listened (a restart is a gap too).
    listened_before: Option<u64>,
}

impl Setup {
    fn new(config: Config) -> Result<Setup, String> {
        config.check()?;
        let pg = resolve(&config.postgres)?;
        let open = |what: &str| {
            hark::Connection::with_options(&config.dir, &config.options)
                .map_err(|e| format!("could not open the queue in {} ({what}): {e}", config.dir.display()))
        };
        let mut sub_conn = open("the bridge's session")?;
        let previous = state::read_all(&config.dir).into_iter().find(|r| r.name == config.name);
        let file = StateFile::claim(&config.dir, &config.name)?;
        // `connects` counts every connection of this bridge on this queue, across restarts.
        let previous_connects = previous.as_ref().map_or(0, |r| r.get("connects").parse::<u64>().unwrap_or(0));
        let listened_before = previous.filter(|_| previous_connects > 0).map(|r| r.get("since").parse().unwrap_or(0));
        let mut state = State::new(&config.name, describe(&pg), config.channels.clone());
        state.connects = previous_connects;
        let (origins_file, received) = origins::Origins::load(&config.dir, &config.name)?;
        let mut channels: Vec<&str> = config.channels.iter().map(String::as_str).collect();
        channels.push(wire::LOCAL_ORIGIN);
        let mut options = hark::SubscribeOptions::new().ack(hark::AckMode::Explicit).wait(Duration::from_secs(5));
        options.max_lag_bytes = config.max_lag_bytes;
        sub_conn
            .subscribe(&subscription_name(&config.name), &channels, &options)
            .map_err(|e| format!("could not attach to the bridge's subscription: {e}"))?;
        // One session both reads the subscription and commits what PostgreSQL delivers: its own
        // commits do not wake it (hark wakes no session by its own commit), so the listeners are
        // woken alone, and `serve` reads the bridge's own transactions back a moment later.
        let shared: outbound::Shared = Arc::new(Mutex::new(sub_conn));
        let queue_id = shared.lock().unwrap_or_else(|e| e.into_inner()).queue().queue_id();
        let origin = origin(&config, queue_id)?;
        let mut inbound = Inbound::new(shared.clone(), &config.name, &origin);
        for (origin, txn) in &received {
            inbound.learn(origin, *txn);
        }
        let outbound = Outbound::new(shared, origins_file, &config.name, &origin, received);
        Ok(Setup { config, pg, inbound, outbound, file, state, listened_before })
    }
}

/// The durable subscription through which the bridge reads the local queue.
pub fn subscription_name(bridge: &str) -> String {
    format!("bridge.{bridge}")
}

/// The bridge's name in its end marks: its name, this machine's name, and a tag of this queue
/// (this boot's id, the control file's identity and the queue's random id: a queue removed and
/// created anew at the same path may get the same inode number), so that the commit numbers it
/// sends, which restart from zero with a new queue, are never taken for an earlier queue's.
fn origin(config: &Config, queue_id: u64) -> Result<String, String> {
    let mut host = [0u8; 256];
    // SAFETY: gethostname writes at most len bytes into our buffer.
    let host = if unsafe { libc::gethostname(host.as_mut_ptr().cast(), host.len()) } == 0 {
        let end = host.iter().position(|b| *b == 0).unwrap_or(host.len());
        String::from_utf8_lossy(&host[..end]).replace(' ', "_")
    } else {
        "unknown".to_owned()
    };
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let control = std::fs::metadata(config.dir.join("control"))
        .map_err(|e| format!("could not look at {}: {e}", config.dir.join("control").display()))?;
    use std::os::unix::fs::MetadataExt;
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in format!("{}|{}|{}|{queue_id}", boot.trim(), control.dev(), control.ino()).bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    Ok(format!("{}@{host}#{h:016x}", config.name))
}

/// The state, written to the file at each change of phase and at most once a second otherwise.
struct Reporter {
    file: StateFile,
    state: State,
    written: Instant,
}

impl Reporter {
    fn phase(&mut self, phase: Phase) {
        self.state.phase = phase;
        self.state.since = now_secs();
        self.flush();
    }

    fn flush(&mut self) {
        self.file.write(&self.state);
        self.written = Instant::now();
    }

    fn tick(&mut self, inbound: &Inbound, outbound: &Outbound) {
        self.state.from_pg_transactions = inbound.transactions;
        self.state.from_pg_notifications = inbound.notifications;
        self.state.to_pg_transactions = outbound.transactions;
        self.state.to_pg_notifications = outbound.notifications;
        self.state.too_long = outbound.too_long;
        self.state.repeats_skipped = inbound.repeats_skipped;
        if self.written.elapsed() >= Duration::from_secs(1) {
            self.flush();
        }
    }
}

fn run(setup: Setup, stop: Arc<Notify>) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("could not start the bridge's runtime: {e}"))?;
    let Setup { config, pg, mut inbound, mut outbound, file, state, listened_before } = setup;
    let reporter = Arc::new(Mutex::new(Reporter { file, state, written: Instant::now() }));
    let mut sides = Sides { inbound: &mut inbound, outbound: &mut outbound };
    let result = rt.block_on(bridge_loop(&config, &pg, &mut sides, &reporter, listened_before, &stop));
    let mut r = reporter.lock().unwrap_or_else(|e| e.into_inner());
    r.tick(&inbound, &outbound);
    if let Err(e) = &result {
        r.state.last_error = e.clone();
    }
    r.phase(Phase::Stopped);
    result
}

/// The two directions.
struct Sides<'a> {
    inbound: &'a mut Inbound,
    outbound: &'a mut Outbound,
}

async fn bridge_loop(
    config: &Config,
    pg: &Target,
    sides: &mut Sides<'_>,
    reporter: &Mutex<Reporter>,
    mut listened_before: Option<u64>,
    stop: &Notify,
) -> Result<(), String> {
    let report = |f: &mut dyn FnMut(&mut Reporter)| f(&mut reporter.lock().unwrap_or_else(|e| e.into_inner()));
    let mut backoff = config.backoff_min;
    let mut disconnected_at = listened_before.unwrap_or(0);
    let mut restarted = listened_before.is_some();
    // SAFETY: the descriptor is the subscription session's wake-up socket, bound before the
    // bridge starts and never replaced; the session (in `sides`) outlives this registration,
    // which ends with this function.
    let local_fd = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(Fd(sides.outbound.fd()), tokio::io::Interest::READABLE)
    }
    .map_err(|e| format!("could not watch the local queue: {e}"))?;
    loop {
        let inbound = &mut *sides.inbound;
        report(&mut |r| r.phase(Phase::Connecting));
        let connected = tokio::select! {
            _ = stop.notified() => return Ok(()),
            c = pg::connect(pg, &config.channels) => c,
        };
        let mut link = match connected {
            Ok(l) => l,
            Err(e) => {
                eprintln!("hark bridge: could not connect to PostgreSQL ({}): {e}", describe(pg));
                report(&mut |r| {
                    r.state.last_error = e.clone();
                    r.state.retry_in_ms = backoff.as_millis() as u64;
                    r.phase(Phase::Disconnected);
                });
                tokio::select! {
                    _ = stop.notified() => return Ok(()),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(config.backoff_max);
                continue;
            }
        };
        inbound.own_pg_pids = [link.backend_pid, link.sender_pid];
        if listened_before.is_some() {
            let reason = if restarted { "restarted" } else { "reconnected" };
            let now = now_secs();
            let signal = |i: &mut Inbound| i.signal_gap(reason, disconnected_at, now);
            let room = Some((&mut *sides.outbound, &link));
            if let Some(error) = commit_with_retry(stop, inbound, signal, room).await? {
                eprintln!("hark bridge: lost PostgreSQL: {error}");
                report(&mut |r| {
                    r.state.last_error = error.clone();
                    r.phase(Phase::Disconnected);
                });
                continue;
            }
            report(&mut |r| r.state.gaps_signalled += 1);
        }
        listened_before = Some(now_secs());
        restarted = false;
        report(&mut |r| {
            r.state.connects += 1;
            r.state.pg_backend_pid = Some(link.backend_pid);
            r.state.pg_sender_pid = Some(link.sender_pid);
            r.state.retry_in_ms = 0;
            r.phase(Phase::Connected);
        });
        let up_since = Instant::now();
        let lost = serve(&mut link, sides, &local_fd, reporter, stop).await?;
        let inbound = &mut *sides.inbound;
        let Some(error) = lost else { return Ok(()) };
        eprintln!("hark bridge: lost PostgreSQL: {error}");
        // What came of a transaction is committed now, or, if the queue is full (of what the
        // bridge could not send), at the next chance once connected again.
        match inbound.disconnected() {
            Err(e) if !full(&e) => return Err(format!("local queue: {e}")),
            _ => {}
        }
        disconnected_at = now_secs();
        // A connection that lasted resets the wait; one that failed at once keeps doubling it.
        if up_since.elapsed() > config.backoff_max {
            backoff = config.backoff_min;
        }
        report(&mut |r| {
            r.state.last_error = error.clone();
            r.state.pg_backend_pid = None;
            r.state.pg_sender_pid = None;
            r.state.retry_in_ms = backoff.as_millis() as u64;
            r.phase(Phase::Disconnected);
        });
        tokio::select! {
            _ = stop.notified() => return Ok(()),
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(config.backoff_max);
    }
}

/// Moves notifications while the connection lives. `Ok(None)`: told to stop; `Ok(Some(e))`: the
/// connection was lost.
async fn serve(
    link: &mut pg::Link,
    sides: &mut Sides<'_>,
    local_fd: &tokio::io::unix::AsyncFd<Fd>,
    reporter: &Mutex<Reporter>,
    stop: &Notify,
) -> Result<Option<String>, String> {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let Sides { inbound, outbound } = sides;
    // What committed locally while PostgreSQL was away (or before a restart) goes first.
    let mut drained = read_local(outbound, inbound)?;
    let mut refused_until: Option<tokio::time::Instant> = None;
    // The bridge's own commits wake nobody in the bridge: they are read back (skipped,
    // acknowledged) `OWN_READBACK` after the first of them, off the listeners' wake-up, together.
    let mut committed = inbound.transactions;
    let mut own_unread: Option<tokio::time::Instant> = None;
    loop {
        if refused_until.is_some_and(|t| t <= tokio::time::Instant::now()) {
            refused_until = None;
        }
        if inbound.transactions != committed {
            committed = inbound.transactions;
            own_unread.get_or_insert_with(tokio::time::Instant::now);
        }
        if own_unread.is_some_and(|t| t.elapsed() >= OWN_READBACK) {
            own_unread = None;
            drained = read_local(outbound, inbound)?;
        }
        // A group's wait for the rest of its transaction ends at its deadline, checked here too:
        // a local queue that wakes the bridge without pause would keep the timer below from ever
        // firing. What already arrived is taken first (it may continue the group), as the select
        // below takes notifications before any timer.
        let due = |i: &Inbound| i.group_deadline().filter(|(t, _)| *t <= tokio::time::Instant::now());
        if due(inbound).is_some() {
            if let Some(e) = take_arrived(stop, inbound, outbound, link).await? {
                return Ok(Some(e));
            }
        }
        if let Some((_, end)) = due(inbound) {
            let room = Some((&mut **outbound, &*link));
            if let Some(e) = commit_with_retry(stop, inbound, end, room).await? {
                return Ok(Some(e));
            }
        }
        if refused_until.is_none() && outbound.has_work() {
            let (sent, stopping) = {
                let send = outbound.send(link);
                tokio::pin!(send);
                tokio::select! {
                    biased;
                    sent = &mut send => (sent, false),
                    // PostgreSQL's reply is awaited, so that what it committed is acknowledged
                    // and not sent again by the next run; for at most `STOP_WAIT` (what it may
                    // have committed then is sent again, as after a crash).
                    _ = stop.notified() => {
                        let lost = || SendError::Lost("stopped before PostgreSQL answered".to_owned());
                        (tokio::time::timeout(STOP_WAIT, &mut send).await.unwrap_or_else(|_| Err(lost())), true)
                    }
                }
            };
            if stopping {
                if let Err(SendError::Local(e)) = sent {
                    return Err(e);
                }
                commit_with_retry(stop, inbound, Inbound::commit_pending, None).await?;
                return Ok(None);
            }
            match sent {
                Ok(()) => {}
                Err(SendError::Lost(e)) => return Ok(Some(e)),
                Err(SendError::Local(e)) => return Err(e),
                Err(SendError::Refused(e)) => {
                    eprintln!("hark bridge: PostgreSQL refused a transaction, retrying in a second: {e}");
                    reporter.lock().unwrap_or_else(|e| e.into_inner()).state.last_error = e;
                    refused_until = Some(tokio::time::Instant::now() + Duration::from_secs(1));
                }
            }
            // The send read the local queue while PostgreSQL worked.
            for (origin, txn) in outbound.take_heard() {
                inbound.learn(&origin, txn);
            }
            drained = outbound.drained();
            reporter.lock().unwrap_or_else(|e| e.into_inner()).tick(inbound, outbound);
            if refused_until.is_none() && outbound.has_work() && !inbound.waits_for_quiet() {
                // The next batch goes at once, after what PostgreSQL delivered meanwhile (once
                // the local queue was read to its end: see `read_local`); a group of a plain
                // client waiting for its quiet moment is let to end first, below.
                if drained {
                    if let Some(e) = take_arrived(stop, inbound, outbound, link).await? {
                        return Ok(Some(e));
                    }
                }
                continue;
            }
        }
        if !drained {
            drained = read_local(outbound, inbound)?;
            continue;
        }
        let group_deadline = inbound.group_deadline().map(|(t, _)| t);
        let retry_at = refused_until.unwrap_or_else(tokio::time::Instant::now);
        tokio::select! {
            biased;
            _ = stop.notified() => {
                commit_with_retry(stop, inbound, Inbound::commit_pending, None).await?;
                return Ok(None);
            }
            notes = link.notes.recv() => {
                match notes {
                    Some(Ok(notes)) => {
                        if let Some(e) = take_notes(stop, inbound, outbound, link, notes).await? {
                            return Ok(Some(e));
                        }
                        // Take what already arrived before looking anywhere else.
                        if let Some(e) = take_arrived(stop, inbound, outbound, link).await? {
                            return Ok(Some(e));
                        }
                    }
                    Some(Err(e)) => return Ok(Some(e)),
                    None => return Ok(Some("the connection to PostgreSQL was closed".to_owned())),
                }
            }
            ready = local_fd.readable() => {
                let mut guard = ready.map_err(|e| format!("could not watch the local queue: {e}"))?;
                guard.clear_ready();
                // Reads the bridge's own commits too.
                own_unread = None;
                committed = inbound.transactions;
                drained = outbound.read_woken().map_err(|e| format!("local queue: {e}"))?;
                for (origin, txn) in outbound.take_heard() {
                    inbound.learn(&origin, txn);
                }
            }
            // The group is committed at the top of the loop.
            _ = tokio::time::sleep_until(group_deadline.unwrap_or_else(tokio::time::Instant::now)), if group_deadline.is_some() => {}
            _ = tokio::time::sleep_until(retry_at), if refused_until.is_some() => {}
            _ = tokio::time::sleep_until(own_unread.unwrap_or_else(tokio::time::Instant::now) + OWN_READBACK), if own_unread.is_some() => {}
            _ = tick.tick() => {}
        }
        reporter.lock().unwrap_or_else(|e| e.into_inner()).tick(inbound, outbound);
    }
}

/// Commits notifications from PostgreSQL into the local queue, in order (the commit of each
/// group one ends), making room meanwhile if the queue is full (`commit_with_retry`).
/// `Ok(Some(e))`: the connection was lost.
async fn take_notes(
    stop: &Notify,
    inbound: &mut Inbound,
    outbound: &mut Outbound,
    link: &pg::Link,
    notes: Vec<pg::PgNote>,
) -> Result<Option<String>, String> {
    for n in notes {
        // Taken by `push` once it holds or skips it: a commit the local queue refused leaves
        // it here for the next try.
        let mut slot = Some(n);
        let pushed = commit_with_retry(stop, inbound, |i| i.push(&mut slot), Some((&mut *outbound, link))).await?;
        if pushed.is_some() {
            return Ok(pushed);
        }
    }
    Ok(None)
}

/// [`take_notes`] for what already arrived, in order.
async fn take_arrived(
    stop: &Notify,
    inbound: &mut Inbound,
    outbound: &mut Outbound,
    link: &mut pg::Link,
) -> Result<Option<String>, String> {
    while let Ok(more) = link.notes.try_recv() {
        match more {
            Ok(notes) => {
                if let Some(e) = take_notes(stop, inbound, outbound, link, notes).await? {
                    return Ok(Some(e));
                }
            }
            Err(e) => return Ok(Some(e)),
        }
    }
    Ok(None)
}

/// Reads what the local subscription has (`Outbound::read_local`), and tells the inbound side
/// which commit numbers the bridge's own transactions in it carry: at start, those committed
/// after the last acknowledgement, which the origins file may not hold (`origins.rs`). `serve`
/// reads until the subscription is drained before it commits anything from PostgreSQL.
fn read_local(outbound: &mut Outbound, inbound: &mut Inbound) -> Result<bool, String> {
    let drained = outbound.read_local().map_err(|e| format!("local queue: {e}"))?;
    for (origin, txn) in outbound.take_heard() {
        inbound.learn(&origin, txn);
    }
    Ok(drained)
}

/// How long a stop waits for PostgreSQL's reply to what the bridge sent.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// How long after the bridge's first own commit it reads its own commits back.
const OWN_READBACK: Duration = Duration::from_millis(1);

/// The local subscription's descriptor, for the runtime to watch (the session owns it).
struct Fd(std::os::fd::RawFd);

impl std::os::fd::AsRawFd for Fd {
    fn as_raw_fd(&self) -> std::os::fd::RawFd {
        self.0
    }
}

/// Runs a local commit until it succeeds. A full local queue (or disk) is waited out, as a
/// PostgreSQL client blocked on a full queue would be, except that with `room` (the bridge is
/// connected) the bridge meanwhile sends what its subscription holds and acknowledges it: the
/// queue may be full of just that, which nobody else would ever free. `Ok(Some(e))`: the
/// connection was lost while making room (the commit is left to the caller's next try); an
/// error the queue cannot recover from ends the bridge.
async fn commit_with_retry(
    stop: &Notify,
    inbound: &mut Inbound,
    mut f: impl FnMut(&mut Inbound) -> hark::Result<()>,
    mut room: Option<(&mut Outbound, &pg::Link)>,
) -> Result<Option<String>, String> {
    let mut logged = false;
    loop {
        match f(inbound) {
            Ok(()) => return Ok(None),
            Err(e) if full(&e) => {
                if !logged {
                    eprintln!("hark bridge: could not commit into the local queue, retrying: {e}");
                    logged = true;
                }
                if let Some((outbound, link)) = room.as_mut() {
                    match outbound.make_room(link).await {
                        Ok(()) => {}
                        Err(SendError::Lost(e)) => return Ok(Some(e)),
                        Err(SendError::Local(e)) => return Err(e),
                        Err(SendError::Refused(e)) => eprintln!("hark bridge: PostgreSQL refused a transaction: {e}"),
                    }
                    for (origin, txn) in outbound.take_heard() {
                        inbound.learn(&origin, txn);
                    }
                }
                tokio::select! {
                    _ = stop.notified() => return Err(format!("stopped while the local queue refused a commit: {e}")),
                    _ = tokio::time::sleep(Duration::from_millis(100)) => {}
                }
            }
            Err(e) => return Err(format!("local queue: {e}")),
        }
    }
}

/// Whether a local commit failed for want of room (queue or disk), which time can cure.
fn full(e: &hark::Error) -> bool {
    matches!(e.kind(), hark::ErrorKind::QueueFull | hark::ErrorKind::DiskFull | hark::ErrorKind::Io)
}
