//! `make bench`'s bridge figures, on a PostgreSQL cluster given by its connection string: two
//! "hosts" (queue directories), each with a `hark bridge` process, against plain PostgreSQL
//! clients on the same cluster, in the same run. Prints one JSON object.
//!
//!   bridge_bench HARK_BINARY CONNINFO [--quick]
//!
//! * latency: one notification committed on host A, received by a listener on host B (local
//!   commit → A's bridge → PostgreSQL → B's bridge → listener), against one PostgreSQL client
//!   notifying another, and a hark wake-up on one queue (the bridge's two local hops cost two),
//!   the three in turn round by round, so that they share the machine's load of the moment.
//! * PostgreSQL's clients use a database of their own on the same cluster (`hark_bench_pg`,
//!   created if missing): PostgreSQL signals every listening backend of a database at every
//!   NOTIFY in it, so in the bridges' database each of their NOTIFYs would also wake the bridges'
//!   two idle backends, and PostgreSQL's figures would carry that cost.
//! * throughput: host A commits transactions of N notifications as fast as it can; the rate is
//!   B's listener's, from the first to the last. Against PostgreSQL's best batched NOTIFY for the
//!   same N, to a listening client: the fastest of a client sending transactions of N
//!   notifications as `SELECT pg_notify(…) FROM (VALUES …)` or as NOTIFY statements (what the
//!   bridge sends), one or 50 per message, or as one prepared `pg_notify … unnest($2::text[])` a
//!   round trip.
//! * PostgreSQL's figures again with a second listening connection beside the first
//!   (`postgres_two_listeners`): with bridges, every notification is delivered to two backends,
//!   the receiving bridge's and the sending bridge's own (a bridge listens on the channels it
//!   sends on, and PostgreSQL delivers a backend's notifications to itself too), so this is the
//!   work PostgreSQL does for a bridged notification.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio_postgres::{AsyncMessage, NoTls};

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

struct Host {
    dir: PathBuf,
    bridge: Child,
}

impl Drop for Host {
    fn drop(&mut self) {
        let _ = self.bridge.kill();
        let _ = self.bridge.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn host(hark: &Path, conninfo: &str, name: &str) -> Host {
    let dir = std::env::temp_dir().join(format!("hark-bridge-bench-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let q = dir.join("q");
    std::fs::create_dir_all(&dir).unwrap();
    drop(hark::Connection::open(&q).unwrap());
    let bridge = Command::new(hark)
        .arg("bridge")
        .arg(&q)
        .args(["--postgres", conninfo, "--channel", "bench"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = hark_bridge::state::read_all(&q);
        if r.first().is_some_and(|r| r.running && r.get("state") == "connected") {
            break;
        }
        assert!(Instant::now() < deadline, "the bridge on {} did not connect", q.display());
        std::thread::sleep(Duration::from_millis(20));
    }
    Host { dir, bridge }
}

/// Latency, one notification at a time, the three measured in turn, round by round, so that
/// they share the machine's load of the moment: commit → receive across the two hosts (the
/// bridges), one PostgreSQL client notifying another (in a database of their own), and a hark
/// wake-up on one queue (commit → a listener asleep on another thread).
fn latency(a: &Host, b: &Host, pg_conninfo: &str, rt: &tokio::runtime::Runtime, rounds: usize) -> [Vec<f64>; 3] {
    let mut tx = hark::Connection::open(a.dir.join("q")).unwrap();
    let mut rx = hark::Connection::open(b.dir.join("q")).unwrap();
    rx.listen("bench").unwrap();
    let pg_rx = pg_listener(pg_conninfo);
    let pg_tx = rt.block_on(pg_client(pg_conninfo));
    let local = a.dir.join("local");
    let mut local_tx = hark::Connection::open(&local).unwrap();
    let mut local_rx = hark::Connection::open(&local).unwrap();
    local_rx.listen("bench").unwrap();
    let (start, started) = std::sync::mpsc::channel::<Instant>();
    let (heard, hear) = std::sync::mpsc::channel::<f64>();
    let listener = std::thread::spawn(move || {
        while let Ok(t0) = started.recv() {
            loop {
                local_rx.wait(Some(Duration::from_secs(10))).unwrap();
                if local_rx.notifies().unwrap().is_some() {
                    break;
                }
            }
            heard.send(t0.elapsed().as_secs_f64() * 1e6).unwrap();
        }
    });
    let mut out = [Vec::new(), Vec::new(), Vec::new()];
    for i in 0..rounds + 20 {
        let t0 = Instant::now();
        tx.notify("bench", &i.to_string()).unwrap();
        loop {
            rx.wait(Some(Duration::from_secs(10))).unwrap();
            if let Some(n) = rx.notifies().unwrap() {
                assert_eq!(n.payload, i.to_string());
                break;
            }
        }
        let bridged = t0.elapsed().as_secs_f64() * 1e6;
        std::thread::sleep(Duration::from_millis(2));
        let t0 = Instant::now();
        rt.block_on(pg_tx.batch_execute(&format!("NOTIFY plain, '{i}'"))).unwrap();
        let (t1, p) = pg_rx.recv().unwrap();
        assert_eq!(p, i.to_string());
        let pg = (t1 - t0).as_secs_f64() * 1e6;
        std::thread::sleep(Duration::from_millis(2));
        start.send(Instant::now()).unwrap();
        local_tx.notify("bench", "x").unwrap();
        let woken = hear.recv().unwrap();
        if i >= 20 {
            out[0].push(bridged);
            out[1].push(pg);
            out[2].push(woken);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(start);
    listener.join().unwrap();
    out
}

/// PostgreSQL's clients work in a database of their own (created if missing): a listening
/// backend is signalled at every NOTIFY in its database, whatever the channel, so in the
/// bridges' database each of their NOTIFYs would also wake the two bridges' backends (measured:
/// 130 µs client to client becomes 210 µs). `conninfo` is a `key=value` string; the last
/// `dbname` wins.
fn pg_database(conninfo: &str, rt: &tokio::runtime::Runtime) -> String {
    rt.block_on(async {
        let client = pg_client(conninfo).await;
        if let Err(e) = client.batch_execute("CREATE DATABASE hark_bench_pg").await {
            let exists = e.code() == Some(&tokio_postgres::error::SqlState::DUPLICATE_DATABASE);
            assert!(exists, "could not create the database hark_bench_pg: {e}");
        }
    });
    format!("{conninfo} dbname=hark_bench_pg")
}

/// A PostgreSQL connection listening on `plain` (a channel the bridges do not carry), from a
/// thread of its own (as a listening process would): what it receives, with the time each
/// arrived. Dropping it closes the connection and waits for its thread, so that no listener of
/// one measurement is left for PostgreSQL to deliver to during the next.
struct PgListener {
    rx: std::sync::mpsc::Receiver<(Instant, String)>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::ops::Deref for PgListener {
    type Target = std::sync::mpsc::Receiver<(Instant, String)>;
    fn deref(&self) -> &Self::Target {
        &self.rx
    }
}

impl Drop for PgListener {
    fn drop(&mut self) {
        let _ = self.stop.take().map(|s| s.send(()));
        let _ = self.thread.take().map(|t| t.join());
    }
}

fn pg_listener(conninfo: &str) -> PgListener {
    let (tx, rx) = std::sync::mpsc::channel();
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let conninfo = conninfo.to_owned();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let (client, mut conn) = tokio_postgres::connect(&conninfo, NoTls).await.unwrap();
            let driver = async move {
                while let Some(Ok(m)) = futures_util::future::poll_fn(|cx| conn.poll_message(cx)).await {
                    if let AsyncMessage::Notification(n) = m {
                        if tx.send((Instant::now(), n.payload().to_owned())).is_err() {
                            return;
                        }
                    }
                }
            };
            let listen = async {
                client.batch_execute("LISTEN plain").await.unwrap();
                ready_tx.send(()).unwrap();
                std::future::pending::<()>().await
            };
            tokio::select! { _ = driver => {}, _ = listen => {}, _ = stopped => {} }
        });
    });
    ready.recv().unwrap();
    PgListener { rx, stop: Some(stop), thread: Some(thread) }
}

async fn pg_client(conninfo: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(conninfo, NoTls).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A second listening connection, as a sending bridge's own connection is (what it hears waits
/// in its channel until it is dropped); `None` when not asked for.
fn second_listener(conninfo: &str, wanted: bool) -> Option<PgListener> {
    wanted.then(|| pg_listener(conninfo))
}

/// One PostgreSQL client notifying another, one notification at a time.
async fn pg_latency(conninfo: &str, rounds: usize, two: bool) -> Vec<f64> {
    let _second = second_listener(conninfo, two);
    let rx = pg_listener(conninfo);
    let tx = pg_client(conninfo).await;
    let mut out = Vec::new();
    for i in 0..rounds + 20 {
        let t0 = Instant::now();
        tx.batch_execute(&format!("NOTIFY plain, '{i}'")).await.unwrap();
        let (t1, p) = rx.recv().unwrap();
        assert_eq!(p, i.to_string());
        if i >= 20 {
            out.push((t1 - t0).as_secs_f64() * 1e6);
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    out
}

/// How a PostgreSQL client sends its transactions, each tried for PostgreSQL's best.
#[derive(Clone, Copy)]
enum Form {
    /// `BEGIN; SELECT pg_notify(c, p) FROM (VALUES …) AS v(c, p); COMMIT;`, `per_message`
    /// transactions in one simple-query message.
    Values,
    /// `BEGIN; NOTIFY plain, '…'; …; COMMIT;`, `per_message` transactions in one message (the
    /// statements the bridge sends).
    Notify,
    /// One transaction a round trip: `SELECT pg_notify($1, p) FROM unnest($2::text[]) p`,
    /// prepared, the payloads as one array (as `bench/peers/pg_peer.c` batches).
    Unnest,
}

fn transaction_sql(form: Form, first: usize, size: usize) -> String {
    match form {
        Form::Values => {
            let rows: Vec<String> = (first..first + size).map(|k| format!("('plain','{k}')")).collect();
            format!("BEGIN; SELECT pg_notify(c, p) FROM (VALUES {}) AS v(c, p); COMMIT;", rows.join(","))
        }
        _ => {
            let rows: String = (first..first + size).map(|k| format!("NOTIFY plain, '{k}';")).collect();
            format!("BEGIN;{rows}COMMIT;")
        }
    }
}

/// PostgreSQL's rate for transactions of `size` sent in `form`, `per_message` transactions per
/// round trip.
async fn pg_throughput(conninfo: &str, size: usize, total: usize, form: Form, per_message: usize, two: bool) -> f64 {
    let _second = second_listener(conninfo, two);
    let rx = pg_listener(conninfo);
    let tx = pg_client(conninfo).await;
    let unnest = tx.prepare("SELECT pg_notify($1, p) FROM unnest($2::text[]) p").await.unwrap();
    let start = Instant::now();
    let mut sent = 0;
    while sent < total {
        if let Form::Unnest = form {
            let payloads: Vec<String> = (sent..sent + size).map(|k| k.to_string()).collect();
            tx.query(&unnest, &[&"plain", &payloads]).await.unwrap();
            sent += size;
            continue;
        }
        let mut sql = String::new();
        for _ in 0..per_message {
            if sent < total {
                sql.push_str(&transaction_sql(form, sent, size));
                sent += size;
            }
        }
        tx.batch_execute(&sql).await.unwrap();
    }
    let mut got = 0;
    let mut last = start;
    while got < total {
        let (t, _) = rx.recv().unwrap();
        last = t;
        got += 1;
    }
    total as f64 / (last - start).as_secs_f64()
}

/// PostgreSQL's best rate for transactions of `size`: the fastest of the ways a client batches.
async fn pg_best(conninfo: &str, size: usize, total: usize, two: bool) -> f64 {
    let mut best: f64 = 0.0;
    for (form, per_message) in
        [(Form::Values, 1), (Form::Values, 50), (Form::Notify, 1), (Form::Notify, 50), (Form::Unnest, 1)]
    {
        best = best.max(pg_throughput(conninfo, size, total, form, per_message, two).await);
    }
    best
}

/// Host A streams transactions of `size`; the rate at host B's listener.
fn bridge_throughput(a: &Host, b: &Host, size: usize, total: usize) -> f64 {
    let mut rx = hark::Connection::open(b.dir.join("q")).unwrap();
    rx.listen("bench").unwrap();
    let mut tx = hark::Connection::open(a.dir.join("q")).unwrap();
    let start = Instant::now();
    let mut k = 0;
    while k < total {
        tx.begin().unwrap();
        for _ in 0..size {
            tx.notify("bench", &k.to_string()).unwrap();
            k += 1;
        }
        tx.commit().unwrap();
    }
    let mut got = 0;
    while got < total {
        assert!(rx.wait(Some(Duration::from_secs(30))).unwrap(), "host B received {got} of {total}");
        while let Some(n) = rx.notifies_ref().unwrap() {
            if n.payload != got.to_string().as_str() {
                for h in [a, b] {
                    eprintln!("{:?}", hark_bridge::state::read_all(&h.dir.join("q"))[0].fields);
                }
                panic!("in order, once: got {} expected {got}", n.payload);
            }
            got += 1;
        }
    }
    total as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (hark_bin, conninfo) = (PathBuf::from(&args[1]), args[2].clone());
    let quick = args.iter().any(|a| a == "--quick");
    let rounds = if quick { 50 } else { 1000 };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let pg_conninfo = pg_database(&conninfo, &rt);
    let a = host(&hark_bin, &conninfo, "a");
    let b = host(&hark_bin, &conninfo, "b");
    let [mut bridge, mut pg, mut local] = latency(&a, &b, &pg_conninfo, &rt, rounds);
    let mut pg2 = rt.block_on(pg_latency(&pg_conninfo, rounds, true));
    let mut json = format!(
        "{{\"latency\":{{\"bridge\":{{\"p50_us\":{:.1},\"p99_us\":{:.1}}},\"postgres\":{{\"p50_us\":{:.1},\"p99_us\":{:.1}}},\"postgres_two_listeners\":{{\"p50_us\":{:.1},\"p99_us\":{:.1}}},\"hark\":{{\"p50_us\":{:.1},\"p99_us\":{:.1}}}}},\"throughput\":{{",
        percentile(&mut bridge, 0.5),
        percentile(&mut bridge, 0.99),
        percentile(&mut pg, 0.5),
        percentile(&mut pg, 0.99),
        percentile(&mut pg2, 0.5),
        percentile(&mut pg2, 0.99),
        percentile(&mut local, 0.5),
        percentile(&mut local, 0.99)
    );
    let sizes = [1usize, 10, 100];
    for (i, size) in sizes.iter().enumerate() {
        let total = if quick { 2000 } else { 20000 }.max(*size * 20);
        let bridged = bridge_throughput(&a, &b, *size, total);
        let pg = rt.block_on(pg_best(&pg_conninfo, *size, total, false));
        let pg2 = rt.block_on(pg_best(&pg_conninfo, *size, total, true));
        json.push_str(&format!(
            "{}\"n{size}\":{{\"bridge\":{bridged:.0},\"postgres\":{pg:.0},\"postgres_two_listeners\":{pg2:.0}}}",
            if i > 0 { "," } else { "" },
        ));
    }
    json.push_str("}}");
    println!("{json}");
}
