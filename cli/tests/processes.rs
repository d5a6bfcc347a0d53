//! `hark listen`, `notify`, `stat` and `shell` as separate processes on one queue directory.

mod common;

use common::{hark, listeners, normalize_pids, piped, wait_until, Reaper, TempDir};
use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc::{channel, Receiver};
use std::time::Duration;

fn dir_arg(dir: &TempDir) -> String {
    dir.path().to_str().unwrap().to_owned()
}

/// Runs a command to completion; returns (status code, stdout, stderr).
fn run(cmd: &mut Command, stdin: &str) -> (i32, String, String) {
    let mut child = cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // Written from a thread: a child whose output fills its pipe before it has read all of its
    // input would otherwise wait for us while we wait for it.
    let mut input = child.stdin.take().unwrap();
    let stdin = stdin.to_owned();
    let writer = std::thread::spawn(move || input.write_all(stdin.as_bytes()).unwrap());
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn notify(dir: &TempDir, args: &[&str]) {
    let (code, out, err) = run(hark().arg("notify").arg("--dir").arg(dir_arg(dir)).args(args), "");
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""), "hark notify {args:?}");
}

/// Lines of a child's standard output, read by a thread so that a test can wait with a deadline.
fn lines(child: &mut Reaper) -> Receiver<String> {
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn next_line(rx: &Receiver<String>, what: &str) -> String {
    rx.recv_timeout(Duration::from_secs(10)).unwrap_or_else(|_| panic!("no line from {what}"))
}

#[test]
fn listen_receives_what_notify_sends() {
    let dir = TempDir::new("listen");
    let mut l =
        piped(hark().args(["listen", "--dir", &dir_arg(&dir), "--json", "--count", "5", "orders", "tcn", "Mixed"]));
    wait_until("the listener to register", || listeners(dir.path()) == 1);
    notify(&dir, &["orders", "{\"id\": 42}"]);
    notify(&dir, &["orders"]);
    notify(&dir, &["Mixed", "case is kept: these are names, not SQL identifiers"]);
    notify(&dir, &["--tcn", "we\"ird", "I", "k=O'Brien"]);
    notify(&dir, &["elsewhere", "not listened to"]);
    let (code, out, err) = run(hark().args(["notify", "--dir", &dir_arg(&dir), "orders", "-"]), "from stdin\n");
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    let status = l.0.wait().unwrap();
    assert!(status.success(), "hark listen exited with {status}");
    let mut out = String::new();
    l.0.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    assert_eq!(
        normalize_pids(&out.replace("\"pid\":", "PID ")),
        concat!(
            "{\"channel\":\"orders\",\"payload\":\"{\\\"id\\\": 42}\",PID N}\n",
            "{\"channel\":\"orders\",\"payload\":\"\",PID N}\n",
            "{\"channel\":\"Mixed\",\"payload\":\"case is kept: these are names, not SQL identifiers\",PID N}\n",
            "{\"channel\":\"tcn\",\"payload\":\"\\\"we\\\"\\\"ird\\\",I,\\\"k\\\"='O''Brien'\",PID N}\n",
            "{\"channel\":\"orders\",\"payload\":\"from stdin\",PID N}\n",
        )
    );
}

#[test]
fn listen_prints_psql_lines_and_honours_timeout() {
    let dir = TempDir::new("timeout");
    let mut l = piped(hark().args(["listen", "--dir", &dir_arg(&dir), "--count", "3", "--timeout", "1.5", "tcn"]));
    wait_until("the listener to register", || listeners(dir.path()) == 1);
    // PostgreSQL's documented tcn payloads, built by --tcn.
    notify(&dir, &["--tcn", "tcndata", "I", "a=1", "b=2012-12-22"]);
    notify(&dir, &["tcn", "--tcn", "tcndata", "update", "a=1", "b=2012-12-23"]);
    let out = l.0.wait_with_output_reaped();
    assert_eq!(out.0, 1, "a --count not reached by --timeout fails");
    assert_eq!(
        normalize_pids(&out.1),
        concat!(
            "Asynchronous notification \"tcn\" with payload \"\"tcndata\",I,\"a\"='1',\"b\"='2012-12-22'\" received from server process with PID N.\n",
            "Asynchronous notification \"tcn\" with payload \"\"tcndata\",U,\"a\"='1',\"b\"='2012-12-23'\" received from server process with PID N.\n",
        )
    );
    assert_eq!(out.2, "hark listen: timed out after 2 of 3 notifications\n");

    // Without --count, a timeout is the normal end.
    let (code, out, err) = run(hark().args(["listen", "--dir", &dir_arg(&dir), "--timeout", "0.2", "quiet"]), "");
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
}

trait WaitReaped {
    fn wait_with_output_reaped(&mut self) -> (i32, String, String);
}

impl WaitReaped for std::process::Child {
    fn wait_with_output_reaped(&mut self) -> (i32, String, String) {
        let mut out = String::new();
        let mut err = String::new();
        self.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        self.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        let status = self.wait().unwrap();
        (status.code().unwrap_or(-1), out, err)
    }
}

#[test]
fn notify_reports_errors_as_postgresql_does() {
    let dir = TempDir::new("notify-errors");
    let long = "x".repeat(8000);
    let (code, _, err) = run(hark().args(["notify", "--dir", &dir_arg(&dir), "c", &long]), "");
    assert_eq!(
        (code, err.as_str()),
        (
            1,
            "ERROR:  payload string too long\n\
             DETAIL:  The payload is 8000 bytes; this queue's max_payload is 7999 bytes.\n\
             HINT:  max_payload is chosen when a queue is created, up to 1048576 bytes: the max_payload option \
             (maxPayload in Node, --max-payload of the hark command).\n"
        )
    );
    let (code, _, err) = run(hark().args(["notify", "--dir", &dir_arg(&dir), &"c".repeat(64)]), "");
    assert_eq!((code, err.as_str()), (1, "ERROR:  channel name too long\n"));
    let (code, _, err) = run(hark().args(["notify", "--dir", &dir_arg(&dir), "--tcn", "t", "X", "k=1"]), "");
    assert_eq!(code, 2);
    assert!(err.contains("must be I, U or D"), "{err}");
    let (code, _, err) = run(hark().args(["notify", "--dir", &dir_arg(&dir), "--tcn", "t", "I", "novalue"]), "");
    assert_eq!(code, 2);
    assert!(err.contains("KEY=VALUE"), "{err}");
    let (code, _, _) = run(hark().args(["notify", "--dir", &dir_arg(&dir), "a", "b", "c"]), "");
    assert_eq!(code, 2);
}

/// Two shells driven through pipes, as in the seed article's chat: each answer must arrive
/// before the next statement is sent, so every statement's output is flushed at once.
#[test]
fn shells_chat_through_pipes() {
    let dir = TempDir::new("chat");
    let mut a = piped(hark().args(["shell", &dir_arg(&dir)]));
    let mut b = piped(hark().args(["shell", &dir_arg(&dir)]));
    let (a_pid, b_pid) = (a.0.id(), b.0.id());
    let (a_out, b_out) = (lines(&mut a), lines(&mut b));
    let mut a_in = a.0.stdin.take().unwrap();
    let mut b_in = b.0.stdin.take().unwrap();
    let say = |input: &mut std::process::ChildStdin, out: &Receiver<String>, sql: &str, want: &[String]| {
        writeln!(input, "{sql}").unwrap();
        input.flush().unwrap();
        for w in want {
            assert_eq!(&next_line(out, sql), w, "after {sql}");
        }
    };
    let line = |payload: &str, pid: u32| {
        format!("Asynchronous notification \"cnpug\" with payload \"{payload}\" received from server process with PID {pid}.")
    };
    say(&mut a_in, &a_out, "listen cnpug;", &["LISTEN".into()]);
    say(&mut b_in, &b_out, "listen cnpug;", &["LISTEN".into()]);
    say(
        &mut a_in,
        &a_out,
        "notify cnpug, 'hello, every body.';",
        &["NOTIFY".into(), line("hello, every body.", a_pid)],
    );
    say(
        &mut b_in,
        &b_out,
        "notify cnpug, 'hello';",
        &["NOTIFY".into(), line("hello, every body.", a_pid), line("hello", b_pid)],
    );
    say(&mut a_in, &a_out, "listen cnpug;", &["LISTEN".into(), line("hello", b_pid)]);
    // B's rolled-back notification never reaches A.
    say(
        &mut b_in,
        &b_out,
        "begin; notify cnpug, 'never'; rollback;",
        &["BEGIN".into(), "NOTIFY".into(), "ROLLBACK".into()],
    );
    say(&mut b_in, &b_out, "notify cnpug, 'hello1';", &["NOTIFY".into(), line("hello1", b_pid)]);
    say(
        &mut a_in,
        &a_out,
        "select 1 as one;",
        &[" one ".into(), "-----".into(), "   1".into(), "(1 row)".into(), "".into(), line("hello1", b_pid)],
    );
    say(&mut a_in, &a_out, "unlisten cnpug;", &["UNLISTEN".into()]);
    drop((a_in, b_in));
    assert!(a.0.wait().unwrap().success() && b.0.wait().unwrap().success());
}

/// Deeply nested SQL fails with PostgreSQL's 54001 and the shell goes on; long chains work.
/// Before hark limited nesting, the first of these killed the shell (SIGABRT on stack overflow).
#[test]
fn shell_survives_deeply_nested_and_long_sql() {
    let dir = TempDir::new("deep");
    let input = format!(
        "SELECT {}1{};\nSELECT {}'c'{};\nSELECT 'a'{} AS s;\nSELECT 'x'{};\n",
        "(".repeat(10_000),
        ")".repeat(10_000),
        "pg_notify(".repeat(10_000),
        ", 'p')".repeat(10_000),
        " || 'b'".repeat(30_000),
        "::text".repeat(30_000),
    );
    let (code, out, err) = run(hark().args(["shell", &dir_arg(&dir)]), &input);
    assert_eq!(code, 0, "{err}");
    let too_deep = "ERROR:  stack depth limit exceeded\nHINT:  Parentheses and function calls may nest at most 256 levels deep in hark; write the expression with less nesting.\n";
    assert_eq!(err, too_deep.repeat(2));
    let long = format!("a{}", "b".repeat(30_000));
    let dashes = "-".repeat(long.len() + 2);
    assert_eq!(
        out,
        format!(" {:^w$} \n{dashes}\n {long}\n(1 row)\n\n text \n------\n x\n(1 row)\n\n", "s", w = long.len())
    );
}

#[test]
fn command_and_file_options() {
    let dir = TempDir::new("options");
    let (code, out, err) = run(hark().args(["shell", &dir_arg(&dir), "-c", "LISTEN a; NOTIFY a, 'x'"]), "");
    assert_eq!(code, 0, "{err}");
    // psql 15 shows the result of every statement of a -c query (checked against psql 15).
    assert_eq!(
        normalize_pids(&out),
        "LISTEN\nNOTIFY\nAsynchronous notification \"a\" with payload \"x\" received from server process with PID N.\n"
    );
    let (code, out, err) =
        run(hark().args(["shell", &dir_arg(&dir), "-c", "SELECT 1 AS a; LISTEN x; SELECT 2 AS b"]), "");
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (0, " a \n---\n 1\n(1 row)\n\nLISTEN\n b \n---\n 2\n(1 row)\n\n", "")
    );
    let (code, out, err) =
        run(hark().args(["shell", &dir_arg(&dir), "-q", "-t", "-A", "-c", "SELECT 'a' AS x, 2 AS y"]), "");
    assert_eq!((code, out.as_str(), err.as_str()), (0, "a|2\n", ""));
    let (code, out, err) = run(hark().args(["shell", &dir_arg(&dir), "-c", "NOTIFY a 'x'"]), "");
    assert_eq!((code, out.as_str()), (1, ""));
    assert_eq!(err, "ERROR:  syntax error at or near \"'x'\"\nLINE 1: NOTIFY a 'x'\n                 ^\n");
    let (code, _, err) = run(hark().args(["shell", &dir_arg(&dir), "-f", "/nonexistent/x.sql"]), "");
    assert_eq!(code, 1);
    assert!(err.starts_with("hark: error: /nonexistent/x.sql: "), "{err}");
    // `-f -` reads standard input but reports locations like a file.
    let (code, out, err) = run(hark().args(["shell", &dir_arg(&dir), "-f", "-"]), "SELECT 1 AS a;\nNOTIFY a b;\n");
    assert_eq!(code, 0);
    assert_eq!(out, " a \n---\n 1\n(1 row)\n\n");
    assert!(err.starts_with("hark:<stdin>:2: ERROR:  syntax error at or near \"b\"\n"), "{err}");
}

#[test]
fn stat_shows_listeners_and_lag() {
    let dir = TempDir::new("stat");
    let (code, _, err) = run(hark().args(["stat", &dir_arg(&dir)]), "");
    assert_eq!(code, 1);
    assert!(err.starts_with(&format!("ERROR:  queue \"{}\" does not exist\n", dir_arg(&dir))), "{err}");
    assert!(!dir.path().exists(), "stat must not create a queue");

    // A shell that listens on two channels and then sits idle reads nothing: it lags.
    let mut sh = piped(hark().args(["shell", &dir_arg(&dir)]));
    let sh_out = lines(&mut sh);
    let mut sh_in = sh.0.stdin.take().unwrap();
    writeln!(sh_in, "LISTEN a; LISTEN b;").unwrap();
    assert_eq!(next_line(&sh_out, "LISTEN a"), "LISTEN");
    assert_eq!(next_line(&sh_out, "LISTEN b"), "LISTEN");
    notify(&dir, &["a", "one"]);
    notify(&dir, &["b", "two"]);

    let (code, text, err) = run(hark().args(["stat", &dir_arg(&dir)]), "");
    assert_eq!(code, 0, "{err}");
    assert!(text.starts_with(&format!("queue        {}\n", dir_arg(&dir))), "{text}");
    assert!(text.contains("listeners    1\n"), "{text}");
    assert!(text.contains("segments     1 file of "), "{text}");
    let header = text.lines().find(|l| l.trim_start().starts_with("pid")).expect("header");
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["pid", "os_pid", "slot", "position", "lag", "unread", "oldest", "state", "channels"]
    );
    // The shell's one session has its process's id as its backend PID.
    let row = text.lines().find(|l| l.split_whitespace().next() == Some(&sh.0.id().to_string())).expect("listener row");
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[1], sh.0.id().to_string(), "os_pid: {row}");
    // Its lag three ways: bytes (as `152B` or `1.5KiB`), unread notifications, and the age of the
    // oldest; then its channels by name.
    assert!(cols[4].ends_with('B') && cols[4] != "0B", "lag: {row}");
    assert_eq!(cols[5], "2", "unread: {row}");
    assert!(cols[6].ends_with('s'), "oldest: {row}");
    assert_eq!(cols[7..], ["alive", "a", "b"], "{row}");
    assert!(text.contains("max payload  7.8 KiB\n") && text.contains(" of 8 GiB in use ("), "{text}");

    let (code, json, _) = run(hark().args(["stat", &dir_arg(&dir), "--json"]), "");
    assert_eq!(code, 0);
    assert!(json.starts_with("{\"dir\":"), "{json}");
    assert!(json.contains(&format!("\"listeners\":[{{\"pid\":{0},\"os_pid\":{0},", sh.0.id())), "{json}");
    assert!(json.contains("\"channels\":2,\"channel_names\":[\"a\",\"b\"],"), "{json}");
    assert!(json.contains("\"lag_notifications\":2,\"lag_age_ms\":"), "{json}");
    assert!(!json.contains("\"lag\":0,"), "{json}");

    // A durable subscription, detached: its name, and the same figures.
    let mut sub = hark::Connection::open(dir.path()).unwrap();
    sub.subscribe("audit", &["a"], &hark::SubscribeOptions::default()).unwrap();
    drop(sub);
    let (_, text, _) = run(hark().args(["stat", &dir_arg(&dir)]), "");
    assert!(text.lines().any(|l| l.ends_with("  detached  subscription audit: a")), "{text}");

    // Once the shell has read them, it no longer lags.
    writeln!(sh_in, "SELECT 1 AS x;").unwrap();
    for _ in 0..5 {
        next_line(&sh_out, "SELECT");
    }
    assert!(next_line(&sh_out, "notification").contains("\"one\""));
    assert!(next_line(&sh_out, "notification").contains("\"two\""));
    let (_, json, _) = run(hark().args(["stat", &dir_arg(&dir), "--json"]), "");
    assert!(json.contains("\"lag\":0,\"lag_notifications\":0,\"lag_age_ms\":null,"), "{json}");
}

/// The same row changes as `tcn/postgres.sql` makes under PostgreSQL's tcn trigger, sent with
/// `hark notify --tcn`, must print what psql printed there (`tcn/postgres.out`).
#[test]
fn tcn_matches_postgresql() {
    let dir = TempDir::new("tcn");
    let mut l = piped(hark().args(["listen", "--dir", &dir_arg(&dir), "--count", "9", "tcn", "changes"]));
    wait_until("the listener to register", || listeners(dir.path()) == 1);
    let changes: &[&[&str]] = &[
        &["--tcn", "tcndata", "I", "a=1", "b=2012-12-22"],
        &["--tcn", "tcndata", "I", "a=1", "b=2012-12-23"],
        &["--tcn", "tcndata", "I", "a=2", "b=2012-12-23"],
        // An UPDATE reports the old row's key.
        &["--tcn", "tcndata", "U", "a=1", "b=2012-12-22"],
        &["--tcn", "tcndata", "U", "a=1", "b=2012-12-23"],
        &["--tcn", "tcndata", "D", "a=1", "b=2012-12-22"],
        &["changes", "--tcn", "we\"ird", "I", "k=O'Brien"],
        &["changes", "--tcn", "we\"ird", "U", "k=O'Brien"],
        &["--tcn", "mytable", "I", "key=1"],
    ];
    for args in changes {
        notify(&dir, args);
    }
    let (code, out, err) = l.0.wait_with_output_reaped();
    assert_eq!((code, err.as_str()), (0, ""));
    let want = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/tcn/postgres.out")).unwrap();
    assert_eq!(normalize_pids(&out), want);
}

/// --group-shared, --max-payload and --max-queue-size reach the queue from every command that may
/// create one, and the hint of a refused group-writable directory names the option.
#[test]
fn queue_options_create_a_group_shared_queue_of_the_given_sizes() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("options");
    let q = dir_arg(&dir);
    let opts = ["--group-shared", "--max-payload", "16", "--max-queue-size", "1048576"];
    let (code, out, err) = run(hark().args(["notify", "--dir", &q, "c", "sixteen bytes..."]).args(opts), "");
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    let mode = std::fs::metadata(dir.path()).unwrap().permissions().mode();
    assert_eq!(mode & 0o7777, 0o2770, "a group-shared queue directory: {mode:o}");
    let (code, out, _) = run(hark().args(["stat", &q, "--group-shared", "--json"]), "");
    assert_eq!(code, 0);
    assert!(out.contains("\"max_queue_size\":1048576,") && out.contains("\"max_payload\":16,"), "{out}");

    // Without the option the group-writable directory is refused, and the hint says which to give.
    let (code, _, err) = run(hark().args(["notify", "--dir", &q, "c", "x"]), "");
    assert_eq!(code, 1);
    assert!(err.contains("is writable by its group (mode 0770)") && err.contains("--group-shared"), "{err}");
    let (code, _, err) = run(hark().args(["stat", &q]), "");
    assert!(code == 1 && err.contains("writable by its group"), "{err}");

    // The sizes hold: a longer payload is refused, a different size is an error.
    let (code, _, err) = run(hark().args(["notify", "--dir", &q, "--group-shared", "c", "seventeen bytes.."]), "");
    assert!(code == 1 && err.contains("payload string too long"), "{err}");
    let (code, _, err) = run(hark().args(["shell", &q, "--group-shared", "--max-payload", "17", "-c", "NOTIFY c"]), "");
    assert!(code == 1 && err.contains("queue was created with max_payload 16; it cannot be reopened with 17"), "{err}");

    // listen and serve open it too.
    let mut l = piped(hark().args(["listen", "--dir", &q, "--group-shared", "--count", "1", "c"]));
    let shared = hark::Options::new().group_shared(true);
    let listening =
        || hark::Queue::open(dir.path(), &shared).and_then(|q| q.stats()).map(|s| s.listeners.len()).unwrap();
    wait_until("the listener to register", || listening() == 1);
    let (code, _, err) = run(hark().args(["shell", &q, "--group-shared", "-c", "NOTIFY c, 'shared'"]), "");
    assert_eq!((code, err.as_str()), (0, ""));
    let (code, out, err) = l.0.wait_with_output_reaped();
    assert_eq!(code, 0, "{err}");
    assert!(out.starts_with("Asynchronous notification \"c\" with payload \"shared\" received"), "{out}");
    let _server = common::serve(dir.path(), &["--group-shared", "c"]);
    assert_eq!(listening(), 1);
    let (code, _, err) = run(hark().args(["serve", "--dir", &q, "--addr", "127.0.0.1:0", "c"]), "");
    assert!(code == 1 && err.contains("writable by its group"), "{err}");
}

/// `--no-create` opens only an existing queue; without it, a queue is made only in a missing or
/// empty directory; a connection string is not taken for a directory.
#[test]
fn queue_directories_are_never_mistaken() {
    let dir = TempDir::new("no-create");
    for args in [
        &["notify", "--no-create", "--dir", &dir_arg(&dir), "c"][..],
        &["listen", "--no-create", "--timeout", "0", "--dir", &dir_arg(&dir), "c"],
        &["shell", "--no-create", &dir_arg(&dir), "-c", "SELECT 1"],
    ] {
        let (code, _, err) = run(hark().args(args), "");
        assert_eq!(code, 1, "{args:?}");
        assert!(err.contains(&format!("queue \"{}\" does not exist", dir_arg(&dir))), "{args:?}: {err}");
        assert!(!dir.path().exists(), "{args:?} created the queue");
    }
    notify(&dir, &["c"]);
    let (code, _, err) = run(hark().args(["notify", "--no-create", "--dir", &dir_arg(&dir), "c"]), "");
    assert_eq!((code, err.as_str()), (0, ""));

    let populated = TempDir::new("populated");
    std::fs::create_dir_all(populated.path()).unwrap();
    std::fs::write(populated.path().join("notes.txt"), "mine").unwrap();
    let (code, _, err) = run(hark().args(["notify", "--dir", &dir_arg(&populated), "c"]), "");
    assert_eq!(code, 1);
    assert!(err.contains("exists but is not empty"), "{err}");
    assert_eq!(std::fs::read_dir(populated.path()).unwrap().count(), 1, "nothing was written");

    let (code, _, err) = run(hark().args(["shell", "dbname=app", "-c", "SELECT 1"]), "");
    assert_eq!(code, 1);
    assert!(err.contains("looks like a connection string") && err.contains("HINT:"), "{err}");
}

/// Positional arguments of listen, notify and serve are channels only: an argument naming a
/// directory (the issue's `hark notify q orders`, with a queue in ./q) is refused with a hint
/// rather than sent to another queue, and --dir, $HARK_DIR and stat's/shell's DIR all name it.
#[test]
fn a_directory_is_never_taken_for_a_channel_nor_guessed() {
    let base = TempDir::new("which-dir");
    let q = base.path().join("q");
    std::fs::create_dir_all(&q).unwrap();
    let elsewhere = base.path().join("default");
    let in_base = |args: &[&str]| {
        let mut cmd = hark();
        cmd.current_dir(base.path()).env("HARK_DIR", &elsewhere).args(args);
        run(&mut cmd, "")
    };
    for args in [
        &["notify", "q", "orders"][..],
        &["notify", "./q", "orders"],
        &["notify", "q/", "orders"],
        &["listen", "--timeout", "0", "q", "orders"],
        &["serve", "--addr", "127.0.0.1:0", "q", "orders"],
        &["notify", "q", "--tcn", "t", "I", "k=1"],
    ] {
        let (code, out, err) = in_base(args);
        assert_eq!((code, out.as_str()), (2, ""), "{args:?}: {err}");
        assert!(
            err.contains("names a directory, not a channel\nHINT:  Give the queue directory with --dir "),
            "{args:?}: {err}"
        );
    }
    assert!(!elsewhere.exists(), "a refused command created the default queue");
    assert_eq!(std::fs::read_dir(&q).unwrap().count(), 0, "a refused command created a queue in q");

    // --dir names it; then $HARK_DIR; stat and shell take it as --dir or as their one argument.
    assert_eq!(in_base(&["notify", "--dir", "q", "orders", "to q"]).0, 0);
    assert_eq!(in_base(&["notify", "orders", "to the default"]).0, 0);
    assert!(q.join("control").exists() && elsewhere.join("control").exists());
    for args in [&["stat", "--dir", "q", "--json"][..], &["stat", "q", "--json"]] {
        let (code, out, err) = in_base(args);
        assert_eq!(code, 0, "{err}");
        assert!(out.contains("\"dir\":\"q\""), "{out}");
    }
    let (code, out, _) = in_base(&["stat", "--json"]);
    assert!(code == 0 && out.contains(&format!("\"dir\":\"{}\"", elsewhere.display())), "{out}");
    let (code, _, err) = in_base(&["stat", "q", "--dir", "q"]);
    assert!(code == 2 && err.contains("cannot be used with"), "{err}");
}

/// `hark stat` on a queue of another user says why it cannot look (permission denied, or the
/// owner), never that there is no queue.
#[test]
fn stat_on_another_users_queue_says_why_it_cannot_look() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!(
            "skipped: stat_on_another_users_queue_says_why_it_cannot_look needs root to run as harktest1 and harktest2"
        );
        return;
    }
    let (uid1, gid1) = common::test_user("harktest1");
    let (uid2, gid2) = common::test_user("harktest2");
    let base = TempDir::new("stat-perm");
    std::fs::create_dir_all(base.path()).unwrap();
    std::os::unix::fs::chown(base.path(), Some(uid1), Some(gid1)).unwrap();
    let q = base.path().join("q");
    let q = q.to_str().unwrap();
    let (code, _, err) = run(hark().args(["notify", "--dir", q, "c"]).uid(uid1).gid(gid1), "");
    assert_eq!((code, err.as_str()), (0, ""));
    for (mode, why) in [(0o700, "Permission denied"), (0o755, "is owned by another user")] {
        std::fs::set_permissions(base.path(), std::fs::Permissions::from_mode(mode)).unwrap();
        let (code, out, err) = run(hark().args(["stat", q]).uid(uid2).gid(gid2), "");
        assert_eq!((code, out.as_str()), (1, ""), "{err}");
        assert!(err.contains(why) && !err.contains("does not exist"), "{mode:o}: {err}");
    }
}

/// ON_ERROR_STOP makes a script fail CI: it stops at the first error (SQL or meta-command) with
/// psql's exit status 3, from -f or standard input; -c fails with 1 as psql's does. `\conninfo`,
/// `\timing` and `-c '\h …'` answer as psql's do.
#[test]
fn on_error_stop_conninfo_timing_and_help() {
    let dir = TempDir::new("stop");
    let q = dir_arg(&dir);
    let files = TempDir::new("stop-script");
    std::fs::create_dir_all(files.path()).unwrap();
    let script = files.path().join("s.sql");
    std::fs::write(&script, "SELECT 1 AS a;\nSELECT nosuch;\nSELECT 3 AS never;\n").unwrap();
    let f = script.to_str().unwrap();
    let stopped = |out: &str| out.contains(" a \n") && !out.contains("never");
    let (code, out, err) = run(hark().args(["shell", &q, "-v", "ON_ERROR_STOP=1", "-f", f]), "");
    assert!(code == 3 && stopped(&out), "{code} {out} {err}");
    assert!(err.starts_with(&format!("hark:{f}:2: ERROR:  column \"nosuch\" does not exist\n")), "{err}");
    let (code, out, _) =
        run(hark().args(["shell", &q, "-v", "ON_ERROR_STOP=on"]), &std::fs::read_to_string(&script).unwrap());
    assert!(code == 3 && stopped(&out), "{code} {out}");
    let (code, out, _) = run(hark().args(["shell", &q]), "\\set ON_ERROR_STOP\n\\nosuch\nSELECT 3 AS never;\n");
    assert!(code == 3 && !out.contains("never"), "{code} {out}");
    // Without it, the script goes on and succeeds, as psql's does.
    let (code, out, _) = run(hark().args(["shell", &q, "-f", f]), "");
    assert!(code == 0 && out.contains("never"), "{code} {out}");
    let (code, _, _) = run(hark().args(["shell", &q, "-v", "ON_ERROR_STOP=1", "-c", "SELECT nosuch"]), "");
    assert_eq!(code, 1);
    let (code, _, err) = run(hark().args(["shell", &q, "-v", "ON_ERROR_STOP=maybe", "-c", "SELECT 1"]), "");
    assert!(code == 1 && err.contains("unrecognized value \"maybe\" for \"ON_ERROR_STOP\": Boolean expected"), "{err}");

    let (code, out, _) = run(hark().args(["shell", &q, "-c", "\\conninfo"]), "");
    assert_eq!(code, 0);
    assert!(out.starts_with(&format!("You are connected to queue \"{q}\" with backend PID ")), "{out}");
    let (code, out, _) = run(hark().args(["shell", &q]), "\\timing\nSELECT 1 AS x;\n\\timing\nSELECT 2 AS y;\n");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(code, 0);
    assert_eq!(lines[..5], ["Timing is on.", " x ", "---", " 1", "(1 row)"]);
    let time = lines[6];
    let ms = time.strip_prefix("Time: ").and_then(|t| t.strip_suffix(" ms")).expect(time);
    assert!(ms.split_once('.').is_some_and(|(_, frac)| frac.len() == 3) && ms.parse::<f64>().is_ok(), "{time}");
    assert_eq!(lines[7], "Timing is off.");
    assert!(!out[out.find("Timing is off.").unwrap()..].contains("Time:"), "{out}");
    let (code, out, _) = run(hark().args(["shell", &q, "-c", "\\h notify"]), "");
    assert_eq!(code, 0);
    assert!(out.starts_with("Command:     NOTIFY\nDescription: generate a notification\n"), "{out}");
}
