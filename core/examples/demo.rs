//! Two processes on one queue directory: a listener, and a notifier that commits one transaction
//! and rolls another back. The listener prints what psql would print; the rolled-back
//! notification never appears.
//!
//! Run with `cargo run -p hark --example demo` (or `make demo`).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("listener") => listener(&args.next().expect("queue directory")),
        _ => parent(),
    }
}

fn parent() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("hark-demo-{}", std::process::id()));
    let mut child = Command::new(std::env::current_exe()?).arg("listener").arg(&dir).stdout(Stdio::piped()).spawn()?;
    let mut lines = BufReader::new(child.stdout.take().expect("piped")).lines();
    // The listener says when its LISTEN has committed: only later commits reach it (R19).
    println!("[listener] {}", lines.next().ok_or("listener exited early")??);

    let mut conn = hark::Connection::open(&dir)?;
    println!("[notifier {}] BEGIN; NOTIFY events, 'order 42 paid'; NOTIFY events, 'order 42 paid'; NOTIFY events, 'order 43 paid'; COMMIT", conn.backend_pid());
    conn.execute(
        "BEGIN; NOTIFY events, 'order 42 paid'; NOTIFY events, 'order 42 paid'; NOTIFY events, 'order 43 paid'; COMMIT",
    )?;
    println!("[notifier {}] BEGIN; NOTIFY events, 'never seen'; ROLLBACK", conn.backend_pid());
    conn.execute("BEGIN; NOTIFY events, 'never seen'; ROLLBACK")?;
    conn.execute("NOTIFY events, 'done'")?;
    for line in lines {
        println!("[listener] {}", line?);
    }
    let status = child.wait()?;
    std::fs::remove_dir_all(&dir)?;
    if !status.success() {
        return Err("listener failed".into());
    }
    Ok(())
}

fn listener(dir: &str) -> Result<(), Box<dyn std::error::Error>> {
    let mut conn = hark::Connection::open(dir)?;
    conn.execute("LISTEN events")?;
    println!("LISTEN events (PID {})", conn.backend_pid());
    loop {
        if !conn.wait(Some(Duration::from_secs(10)))? {
            return Err("no notification within 10 s".into());
        }
        while let Some(n) = conn.notifies()? {
            if n.payload.is_empty() {
                println!(
                    "Asynchronous notification \"{}\" received from server process with PID {}.",
                    n.channel, n.pid
                );
            } else {
                println!(
                    "Asynchronous notification \"{}\" with payload \"{}\" received from server process with PID {}.",
                    n.channel, n.payload, n.pid
                );
            }
            if n.payload == "never seen" {
                return Err("a rolled-back notification was delivered".into());
            }
            if n.payload == "done" {
                return Ok(());
            }
        }
    }
}
