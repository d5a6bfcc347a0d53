//! A small two-process measurement for the core: one notifier process, one listener process.
//!
//! ```text
//! cargo run --release -p hark --example twoproc -- [COUNT] [throughput|latency]
//! ```
//! Prints notifications per second, one per transaction with 64-byte payloads (first send to
//! last receive, with a check that none was lost and order held), and the commit-to-wake-up
//! latency of a listener blocked in `wait` (timestamps on CLOCK_MONOTONIC in the payload, 200 µs
//! between sends). The full benchmarks with peers are `hark bench` / `make bench`.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

fn now_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid out-parameter.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("listener") {
        return listener(&args[1], args[2].parse()?, &args[3]);
    }
    let count: u64 = args.first().map_or(Ok(1_000_000), |s| s.parse())?;
    let only = args.get(1).map(String::as_str);
    let dir = std::env::temp_dir().join(format!("hark-twoproc-{}", std::process::id()));
    if only != Some("latency") {
        let tput = run(&dir, count, "throughput")?;
        println!("per-commit: {count} notifications in {:.3} s = {:.0} notifications/s", tput[0], count as f64 / tput[0]);
    }
    if only != Some("throughput") {
        let lat = run(&dir, 20_000, "latency")?;
        println!(
            "commit-to-wake-up latency (listener blocked in wait): p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, max {:.1} µs",
            lat[0], lat[1], lat[2], lat[3]
        );
    }
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}

fn run(dir: &std::path::Path, count: u64, mode: &str) -> Result<Vec<f64>, Box<dyn std::error::Error>> {
    let mut child = Command::new(std::env::current_exe()?)
        .args(["listener", &dir.display().to_string(), &count.to_string(), mode])
        .stdout(Stdio::piped())
        .spawn()?;
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(out.next().ok_or("listener died")??, "READY");
    let mut c = hark::Connection::open(dir)?;
    let pad = "x".repeat(64);
    let start = now_ns();
    for i in 0..count {
        if mode == "latency" {
            let p = format!("{:020}{}", now_ns(), &pad[..44]);
            c.notify("bench", &p)?;
            let until = now_ns() + 200_000;
            while now_ns() < until {
                std::hint::spin_loop();
            }
        } else {
            let p = format!("{i:020}{}", &pad[..44]);
            c.notify("bench", &p)?;
        }
    }
    let line = out.next().ok_or("listener died")??;
    child.wait()?;
    let mut v: Vec<f64> = line.split(' ').map(|x| x.parse().unwrap()).collect();
    if mode != "latency" {
        v[0] = (v[0] - start as f64) / 1e9; // first send to last receive
    }
    Ok(v)
}

fn listener(dir: &str, count: u64, mode: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut c = hark::Connection::open(dir)?;
    c.listen("bench")?;
    println!("READY");
    std::io::stdout().flush()?;
    let mut got = 0u64;
    let mut lat = Vec::with_capacity(count as usize);
    while got < count {
        if !c.wait(Some(Duration::from_secs(30)))? {
            return Err(format!("timed out after {got}").into());
        }
        while let Some(n) = c.notifies()? {
            let v: u64 = n.payload[..20].parse()?;
            if mode == "latency" {
                lat.push((now_ns() - v) as f64 / 1000.0);
            } else {
                if v != got {
                    return Err(format!("expected {got}, got {v}: lost or reordered").into());
                }
            }
            got += 1;
        }
    }
    if mode == "latency" {
        lat.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let q = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
        println!("{} {} {} {}", q(0.5), q(0.9), q(0.99), lat[lat.len() - 1]);
    } else {
        println!("{}", now_ns());
    }
    Ok(())
}
