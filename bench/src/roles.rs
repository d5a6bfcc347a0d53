//! The processes of a scenario. Each is this program again, started with `--role NAME ARGS…`; it
//! talks to the coordinator through its standard input (commands) and output (one line each).

use crate::measure::{now_ns, percentiles, Pace};
use hark::{Connection, Options};
use std::fmt::Write as _;
use std::io::Write;
use std::time::Duration;

type Res = Result<(), Box<dyn std::error::Error>>;

/// Appends `v` as 20 zero-padded digits (the harness's own cost must stay small beside hark's).
fn push_20_digits(out: &mut String, mut v: u64) {
    let mut d = [b'0'; 20];
    for slot in d.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    out.push_str(std::str::from_utf8(&d).expect("digits"));
}

/// Reads 20 digits back.
fn parse_20_digits(s: &str) -> Option<u64> {
    let b = s.as_bytes().get(..20)?;
    b.iter().try_fold(0u64, |acc, &c| c.is_ascii_digit().then(|| acc * 10 + (c - b'0') as u64))
}

fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn wait_for_line() -> String {
    let mut s = String::new();
    let _ = std::io::stdin().read_line(&mut s);
    s.trim().to_owned()
}

fn open(dir: &str, max_payload: usize) -> hark::Result<Connection> {
    Connection::with_options(dir, &Options::new().max_payload(max_payload))
}

pub fn run(role: &str, a: &[String]) -> Res {
    match role {
        "listener" => listener(a),
        "notifier" => notifier(a),
        "idle" => idle(a),
        _ => Err(format!("unknown role {role}").into()),
    }
}

/// listener DIR MAX_PAYLOAD CHANNEL NOTIFIERS COUNT MODE
///
/// Receives COUNT notifications. Payloads start with "<notifier>:<20-digit sequence or send
/// time>"; in `throughput` mode each notifier's sequence must arrive complete and in order, and
/// the line "END <ns>" gives the time of the last receive; in `latency` (and `latency-idle`)
/// mode it prints "LAT p50 p90 p99 max" in microseconds; in `backlog` mode it waits for "GO" on standard input
/// before reading anything, then prints "END <ns>". `sub-throughput` is `throughput` through a
/// durable subscription (acknowledged at each receive) instead of LISTEN; `sub-reattach`
/// creates the subscription, detaches, waits for "GO", then attaches again and reads the backlog
/// committed meanwhile, as `backlog`.
fn listener(a: &[String]) -> Res {
    let (dir, max_payload, channel) = (&a[0], a[1].parse()?, &a[2]);
    let (notifiers, count, mode): (usize, u64, &str) = (a[3].parse()?, a[4].parse()?, &a[5]);
    let mut c = open(dir, max_payload)?;
    let sub = hark::SubscribeOptions::new().ack(hark::AckMode::Auto);
    match mode {
        "sub-throughput" => c.subscribe("bench", &[channel], &sub)?,
        "sub-reattach" => {
            c.subscribe("bench", &[channel], &sub)?;
            c.detach()?;
        }
        _ => c.listen(channel)?,
    }
    say("READY");
    if mode == "backlog" || mode == "sub-reattach" {
        wait_for_line();
    }
    if mode == "sub-reattach" {
        c.subscribe("bench", &[channel], &sub)?;
    }
    let mut next = vec![0u64; notifiers];
    let latency = Pace::of_mode(mode).is_some();
    let mut lat = Vec::with_capacity(if latency { count as usize } else { 0 });
    let mut got = 0u64;
    while got < count {
        if !c.wait(Some(Duration::from_secs(60)))? {
            return Err(format!("timed out after {got} of {count} notifications").into());
        }
        while let Some(n) = c.notifies_ref()? {
            let (who, rest) = n.payload.split_once(':').ok_or("bad payload")?;
            let who: usize = who.parse()?;
            let v = parse_20_digits(rest).ok_or("bad payload")?;
            if latency {
                lat.push((now_ns().saturating_sub(v)) as f64 / 1000.0);
            } else {
                if v != next[who] {
                    return Err(format!("notifier {who}: expected {}, got {v}: lost or reordered", next[who]).into());
                }
                next[who] += 1;
            }
            got += 1;
        }
    }
    if latency {
        let p = percentiles(lat);
        say(&format!("LAT {} {} {} {}", p[0], p[1], p[2], p[3]));
    } else {
        // The time of the last receive, and the CPU time this listener used.
        say(&format!("END {} {}", now_ns(), cpu_ns()));
    }
    wait_for_line(); // stay measurable until the coordinator lets go
    Ok(())
}

/// User plus system CPU time of this process, in nanoseconds.
fn cpu_ns() -> u64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000_000 + tv.tv_usec as u64 * 1000;
    t(ru.ru_utime) + t(ru.ru_stime)
}

/// notifier DIR MAX_PAYLOAD CHANNEL INDEX COUNT PER_TXN PAYLOAD_BYTES MODE
///
/// Waits for "GO", prints "START <ns>", sends COUNT notifications PER_TXN per transaction (in
/// `latency` mode one per transaction, stamped with the send time, 150 µs apart, spinning in
/// between; in `latency-idle` mode sleeping in between), then "DONE".
fn notifier(a: &[String]) -> Res {
    let (dir, max_payload, channel) = (&a[0], a[1].parse()?, &a[2]);
    let (idx, count, per_txn, size): (usize, u64, u64, usize) =
        (a[3].parse()?, a[4].parse()?, a[5].parse()?, a[6].parse()?);
    let pace = Pace::of_mode(&a[7]);
    let mut c = open(dir, max_payload)?;
    let head = format!("{idx}:");
    let fill = "x".repeat(size.saturating_sub(head.len() + 20));
    let mut payload = String::with_capacity(size);
    say("READY");
    wait_for_line();
    say(&format!("START {}", now_ns()));
    let mut i = 0;
    while i < count {
        if let Some(pace) = pace {
            payload.clear();
            let t = now_ns();
            let _ = write!(payload, "{head}{t:020}{fill}");
            c.notify(channel, &payload)?;
            pace.until(t + 150_000);
            i += 1;
            continue;
        }
        let n = per_txn.min(count - i);
        if n > 1 {
            c.begin()?;
        }
        for _ in 0..n {
            payload.clear();
            payload.push_str(&head);
            push_20_digits(&mut payload, i);
            payload.push_str(&fill);
            c.notify(channel, &payload)?;
            i += 1;
        }
        if n > 1 {
            c.commit()?;
        }
    }
    say("DONE");
    wait_for_line(); // stay measurable until the coordinator lets go
    Ok(())
}

/// idle DIR K [MODE]: K sessions, each listening on a channel nobody notifies (MODE `listen`,
/// the default) or attached to a durable subscription on a pattern nobody's channel matches:
/// `prefix` (`idle.I.*`, filed under its literal prefix) or `wildcard` (`*.idleI`, which no
/// prefix can file), until standard input closes or says anything. Subscriptions are read
/// whenever their descriptor wakes them, so that they keep up as a real consumer would.
fn idle(a: &[String]) -> Res {
    let k: usize = a[1].parse()?;
    let mode = a.get(2).map_or("listen", String::as_str);
    let q = hark::Queue::open(&a[0], &Options::new())?;
    let mut conns = Vec::with_capacity(k);
    for i in 0..k {
        let mut c = Connection::on(q.clone())?;
        match mode {
            "listen" => c.listen(&format!("idle-{i}"))?,
            "prefix" => c.subscribe(&format!("idle-{i}"), &[&format!("idle.{i}.*")], &Default::default())?,
            "wildcard" => c.subscribe(&format!("idle-{i}"), &[&format!("*.idle{i}")], &Default::default())?,
            other => return Err(format!("unknown idle mode {other}").into()),
        }
        conns.push(c);
    }
    say("READY");
    if mode == "listen" {
        wait_for_line();
        return Ok(());
    }
    let mut fds: Vec<libc::pollfd> = std::iter::once(0)
        .chain(conns.iter().map(|c| c.as_raw_fd()))
        .map(|fd| libc::pollfd { fd, events: libc::POLLIN, revents: 0 })
        .collect();
    loop {
        // SAFETY: fds is a valid array of pollfd for its length.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 1000) };
        if n < 0 {
            continue;
        }
        if fds[0].revents != 0 {
            return Ok(());
        }
        for (f, c) in fds[1..].iter_mut().zip(conns.iter_mut()) {
            if f.revents != 0 {
                f.revents = 0;
                c.consume_input()?;
                while c.notifies()?.is_some() {}
            }
        }
    }
}
