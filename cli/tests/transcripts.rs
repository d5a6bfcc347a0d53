//! Shell transcripts: each `shell/NAME.sql` is piped into `hark shell` (or read with `-f`) and
//! standard output and standard error must equal `NAME[.VARIANT].out` and `.err`, PIDs written
//! `PID N`. Files marked `-- psql: compatible` have expected output written by psql 15 against
//! PostgreSQL (`psql-reference.sh`); the others were written by hark and checked by hand
//! (`HARK_BLESS=1` rewrites those, never the psql ones).

mod common;

use common::{normalize_pids, TempDir};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn shell_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/shell")
}

struct Variant {
    name: String,
    args: Vec<String>,
}

fn variants(sql: &str) -> Vec<Variant> {
    let v: Vec<Variant> = sql
        .lines()
        .filter_map(|l| l.strip_prefix("-- variant "))
        .filter_map(|l| l.split_once(':'))
        .map(|(name, args)| Variant {
            name: name.trim().to_owned(),
            args: args.split_whitespace().map(str::to_owned).collect(),
        })
        .collect();
    if v.is_empty() {
        vec![Variant { name: "default".into(), args: Vec::new() }]
    } else {
        v
    }
}

fn run(sql_path: &Path, args: &[String]) -> (String, String) {
    let dir = TempDir::new("transcript");
    let reads_file = args.iter().any(|a| a == "-f");
    let stdin = if reads_file { Stdio::null() } else { Stdio::from(std::fs::File::open(sql_path).unwrap()) };
    let out = Command::new(env!("CARGO_BIN_EXE_hark"))
        .arg("shell")
        .args(args)
        .current_dir(shell_dir())
        .env("HARK_DIR", dir.path())
        .stdin(stdin)
        .output()
        .expect("run hark shell");
    assert!(out.status.success(), "hark shell {args:?} < {} exited with {}", sql_path.display(), out.status);
    (normalize_pids(&String::from_utf8_lossy(&out.stdout)), normalize_pids(&String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn transcripts_match_expected_output() {
    let bless = std::env::var_os("HARK_BLESS").is_some();
    let mut files: Vec<PathBuf> = std::fs::read_dir(shell_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    assert!(files.len() >= 7, "transcripts missing from {}", shell_dir().display());
    let mut failures = Vec::new();
    let mut checked = 0;
    for sql_path in &files {
        let sql = std::fs::read_to_string(sql_path).unwrap();
        let from_psql = sql.lines().any(|l| l == "-- psql: compatible");
        let stem = sql_path.file_stem().unwrap().to_str().unwrap().to_owned();
        for v in variants(&sql) {
            let base = if v.name == "default" { stem.clone() } else { format!("{stem}.{}", v.name) };
            let (out, err) = run(sql_path, &v.args);
            for (ext, got) in [("out", &out), ("err", &err)] {
                let path = shell_dir().join(format!("{base}.{ext}"));
                if bless && !from_psql {
                    std::fs::write(&path, got).unwrap();
                    continue;
                }
                let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                checked += 1;
                if &want != got {
                    failures.push(format!(
                        "{base}.{ext} differs (hark shell {}):\n--- expected\n{want}--- got\n{got}---",
                        v.args.join(" ")
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} of {checked} outputs differ:\n{}", failures.len(), failures.join("\n"));
    eprintln!("{checked} transcript outputs match");
}
