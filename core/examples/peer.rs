//! A Rust peer for cross-process and cross-language tests.
//!
//! ```text
//! peer listen DIR CHANNEL COUNT [TIMEOUT_S]
//!     LISTENs, prints "READY <pid>" once the LISTEN has committed, then one line per
//!     notification, "channel<TAB>payload<TAB>pid", and exits 0 after COUNT of them
//!     (exit 2 on timeout, default 30 s without a notification).
//! peer notify DIR CHANNEL PREFIX COUNT [PER_TXN]
//!     Sends COUNT notifications with payloads PREFIX-0, PREFIX-1, …, PER_TXN per transaction
//!     (default 1), then prints "SENT <count> <pid>".
//! ```

use std::io::Write;
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let r = match args.first().map(String::as_str) {
        Some("listen") if args.len() >= 4 => listen(&args),
        Some("notify") if args.len() >= 5 => notify(&args),
        _ => {
            eprintln!(
                "usage: peer listen DIR CHANNEL COUNT [TIMEOUT_S] | peer notify DIR CHANNEL PREFIX COUNT [PER_TXN]"
            );
            std::process::exit(64);
        }
    };
    if let Err(e) = r {
        eprintln!("peer: {e}");
        std::process::exit(1);
    }
}

fn listen(a: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let count: u64 = a[3].parse()?;
    let timeout = Duration::from_secs_f64(a.get(4).map_or(Ok(30.0), |s| s.parse())?);
    let mut conn = hark::Connection::open(&a[1])?;
    conn.listen(&a[2])?;
    let out = std::io::stdout();
    let mut out = out.lock();
    writeln!(out, "READY {}", conn.backend_pid())?;
    out.flush()?;
    let mut got = 0;
    while got < count {
        if !conn.wait(Some(timeout))? {
            eprintln!("peer: timed out after {got} of {count} notifications");
            std::process::exit(2);
        }
        while let Some(n) = conn.notifies()? {
            writeln!(out, "{}\t{}\t{}", n.channel, n.payload, n.pid)?;
            got += 1;
        }
        out.flush()?;
    }
    Ok(())
}

fn notify(a: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let count: u64 = a[4].parse()?;
    let per_txn: u64 = a.get(5).map_or(Ok(1), |s| s.parse())?.max(1);
    let mut conn = hark::Connection::open(&a[1])?;
    let mut sent = 0;
    while sent < count {
        conn.begin()?;
        for _ in 0..per_txn.min(count - sent) {
            conn.notify(&a[2], &format!("{}-{}", a[3], sent))?;
            sent += 1;
        }
        conn.commit()?;
    }
    println!("SENT {sent} {}", conn.backend_pid());
    Ok(())
}
