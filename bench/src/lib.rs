//! hark's benchmark scenarios, run with real processes: this coordinator starts listener and
//! notifier processes (this same program with `--role`), synchronises their start, and reports
//! what it measured as a table, or with `--json` as one JSON object on the last line.
//!
//! Scenarios: `per-commit`, `batched`, `latency`, `fanout`, `patterns` (100 durable subscriptions
//! on patterns that match nothing, with and without a literal prefix), `notifiers`, `payload`, `backlog`,
//! `subscription` (per-commit into a durable subscription), `reattach` (a subscriber catching up
//! on a backlog committed while it was away), `broadcast` (one notifier, 1, 10 and 100
//! listeners), and `floor` (this machine's own limits: a pipe wake-up between two processes, and
//! memcpy).

mod floor;
mod measure;
mod roles;
mod scenarios;

pub use measure::machine;

/// Runs `hark bench` with `args`. `prefix` is what must precede `--role` to start this program
/// again as a scenario process (`["bench"]` under the `hark` command, nothing for `hark-bench`).
pub fn main(prefix: &[&str], args: &[String]) -> i32 {
    if args.first().map(String::as_str) == Some("--role") {
        let Some(role) = args.get(1) else {
            eprintln!("hark bench: --role needs a name");
            return 64;
        };
        return match roles::run(role, &args[2..]) {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("hark bench --role {role}: {e}");
                1
            }
        };
    }
    let mut opts = scenarios::Config { prefix: prefix.iter().map(|s| s.to_string()).collect(), ..Default::default() };
    let mut json = false;
    let mut names = Vec::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--json" => json = true,
            "--quick" => opts.quick = true,
            "--dir" => match it.next() {
                Some(d) => opts.base = Some(d.into()),
                None => {
                    eprintln!("hark bench: --dir needs a directory");
                    return 64;
                }
            },
            "--driver" => match (it.next(), it.next()) {
                (Some(p), Some(t)) => opts.driver = Some((p.clone(), t.clone())),
                _ => {
                    eprintln!("hark bench: --driver needs a program and a target");
                    return 64;
                }
            },
            "--scale" => match it.next().and_then(|f| f.parse::<f64>().ok()).filter(|f| *f > 0.0) {
                Some(f) => opts.scale = f,
                None => {
                    eprintln!("hark bench: --scale needs a positive factor");
                    return 64;
                }
            },
            "--driver-roles" => match it.next() {
                Some(r) => opts.driver_roles = r.split(',').map(str::to_owned).collect(),
                None => {
                    eprintln!("hark bench: --driver-roles needs a comma-separated list");
                    return 64;
                }
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return 0;
            }
            s if scenarios::ALL.contains(&s) => names.push(s.to_owned()),
            s => {
                eprintln!("hark bench: unknown scenario or option '{s}'\n{USAGE}");
                return 64;
            }
        }
    }
    if names.is_empty() {
        names = scenarios::ALL.iter().map(|s| s.to_string()).collect();
    }
    match scenarios::run_all(&opts, &names, !json) {
        Ok(report) => {
            if json {
                println!("{report}");
            }
            0
        }
        Err(e) => {
            eprintln!("hark bench: {e}");
            1
        }
    }
}

const USAGE: &str = "usage: hark bench [SCENARIO…] [--json] [--quick] [--dir DIR]
scenarios: per-commit batched latency fanout patterns notifiers payload backlog subscription reattach broadcast floor (default: all)
  --json   print the figures as one JSON object on the last line
  --quick  small counts (a smoke run, not a measurement)
  --dir    where to make the scenario queues (default: /dev/shm, else the temp directory)
  --scale F
           multiply the counts of notifications by F (for much slower peers)
  --driver PROGRAM TARGET
           run the scenarios' processes with another implementation of the same roles
           (`PROGRAM --role NAME TARGET ARGS…`, see bench/peers/), e.g. PostgreSQL through libpq;
           `{fresh}` in TARGET becomes a fresh path per run
  --driver-roles ROLE,…
           the roles the driver plays (default: all); hark's own processes play the others,
           e.g. `listener` to measure a binding's listener against the Rust notifier";
