//! `hark shell`: psql's read–execute–print loop over a hark session.
//!
//! Input is split into statements at top-level semicolons, and each statement is executed on its
//! own as psql sends it, then its result, and after it the notifications received, are printed and
//! flushed, so that a program driving several shells through pipes sees each answer before it
//! sends the next statement. Errors and notices go to standard error in libpq's words; when the
//! input is a file (`-f`, `\i`), each report starts with `hark:FILE:LINE: `, as psql's does.
//!
//! psql's variables (`vars.rs`: `-v`, `\set`, `:name` interpolation, `ON_ERROR_STOP`, which makes
//! a script stop at its first error with exit status 3), `\i`, `\timing`, `\conninfo` and `\h`
//! (`help.rs`) work as in psql.

mod help;
mod vars;

use crate::format::{notification_line, render_error, render_table, TableStyle};
use hark::{Connection, TransactionStatus};
use std::io::{self, BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use vars::{SqlState, Vars};

/// psql's exit status for a script stopped by an error under `ON_ERROR_STOP`.
pub const EXIT_ERROR_STOP: i32 = 3;

/// psql's output flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct ShellOptions {
    /// `-q`: no command tags.
    pub quiet: bool,
    pub style: TableStyle,
}

/// Whether the input loop goes on after a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Flow {
    Continue,
    /// `\q`.
    Quit,
    /// An error under `ON_ERROR_STOP`: the script (and those that included it) ends.
    Stop,
}

pub struct Shell {
    conn: Connection,
    opts: ShellOptions,
    /// `hark:FILE:LINE: ` while reading a file, empty otherwise; shared with the notice handler.
    prefix: Arc<Mutex<String>>,
    interactive: bool,
    vars: Vars,
    /// `\timing`: print how long each query took.
    timing: bool,
    /// Where the SQL being read is (in a string, a comment), for interpolation.
    sql_state: SqlState,
    /// The file being read, for `\ir`.
    file: Option<PathBuf>,
}

const HELP: &str = "\
General
  \\conninfo              display information about the current queue and session
  \\q                     quit hark
  \\?                     show this help
  \\h [NAME]              help on syntax of SQL commands, * for all commands

Input/Output
  \\echo [-n] [STRING]    write string to standard output (-n for no newline)
  \\i FILE                execute commands from file
  \\ir FILE               as \\i, but relative to location of current script
  \\timing [on|off]       toggle timing of commands (currently TIMING)

Variables
  \\set [NAME [VALUE]]    set internal variable, or list all if no parameters
  \\unset NAME            unset (delete) internal variable
  :NAME, :'NAME', :\"NAME\" in SQL: the value, as it is, as a literal, as an identifier
  ON_ERROR_STOP           stop a script at its first error (exit status 3)

SQL (terminate each statement with a semicolon)
  LISTEN channel                    UNLISTEN { channel | * }
  NOTIFY channel [ , 'payload' ]    SELECT pg_notify('channel', 'payload')
  BEGIN / START TRANSACTION         COMMIT / END / ROLLBACK / ABORT
  SAVEPOINT name                    RELEASE [ SAVEPOINT ] name
  ROLLBACK TO [ SAVEPOINT ] name    DISCARD ALL
  SELECT pg_listening_channels(), pg_notification_queue_usage(), pg_backend_pid()
";

impl Shell {
    pub fn new(mut conn: Connection, opts: ShellOptions) -> Shell {
        let prefix = Arc::new(Mutex::new(String::new()));
        let p = Arc::clone(&prefix);
        conn.set_notice_handler(Some(Box::new(move |n| {
            let _ = io::stdout().flush();
            let p = p.lock().unwrap_or_else(|e| e.into_inner());
            eprintln!("{p}{n}");
        })));
        let vars = Vars::new(&conn.queue().path().display().to_string());
        Shell {
            conn,
            opts,
            prefix,
            interactive: false,
            vars,
            timing: false,
            sql_state: SqlState::default(),
            file: None,
        }
    }

    /// `-v NAME=VALUE` (`-v NAME` unsets).
    pub fn assign_variable(&mut self, spec: &str) -> Result<(), String> {
        self.vars.assign(spec)
    }

    fn set_prefix(&self, prefix: String) {
        *self.prefix.lock().unwrap_or_else(|e| e.into_inner()) = prefix;
    }

    fn prefix(&self) -> String {
        self.prefix.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Executes `sql` as one query (what psql sends), prints each statement's result (psql 15
    /// shows every result of a query of several statements), then its error if one stopped it,
    /// then the notifications that arrived. Returns whether the query succeeded.
    pub fn execute(&mut self, sql: &str) -> bool {
        let started = Instant::now();
        let (results, status) = self.conn.execute_all(sql);
        let elapsed = started.elapsed();
        // Taken before anything is printed: a reader that sees this query's result and then
        // makes another session commit must not find that commit's notification printed here
        // (it belongs after the next query, as psql prints it).
        let (notifications, failure) = self.take_notifications();
        let mut out = io::stdout().lock();
        for r in results.iter().filter(|r| !r.is_empty_query()) {
            if r.tag.starts_with("SELECT") {
                let _ = out.write_all(render_table(r, self.opts.style).as_bytes());
            } else if !self.opts.quiet {
                let _ = writeln!(out, "{}", r.tag);
            }
        }
        let ok = match status {
            Ok(()) => true,
            Err(e) => {
                let _ = out.flush();
                eprint!("{}{}", self.prefix(), render_error(&e, Some(sql)));
                false
            }
        };
        if self.timing {
            let _ = writeln!(out, "{}", timing_line(elapsed));
        }
        let _ = out.write_all(notifications.as_bytes());
        let _ = out.flush();
        drop(out);
        if let Some(e) = failure {
            eprint!("{}{}", self.prefix(), render_error(&e, None));
        }
        ok
    }

    /// psql's `PrintNotifications`: everything received so far, oldest first, as text, and the
    /// error that stopped the taking. Inside a transaction block nothing is taken: PostgreSQL
    /// sends notifications only between transactions, and a session's inbox can hold some there
    /// only after `COMMIT AND CHAIN`.
    fn take_notifications(&mut self) -> (String, Option<hark::Error>) {
        let mut text = String::new();
        if self.conn.transaction_status() != TransactionStatus::Idle {
            return (text, None);
        }
        // Like libpq's PQnotifies, take only what has arrived by now: the session's notifies()
        // would go on reading the queue, and a notification committed while these are printed
        // belongs after the next statement.
        let mut failure = self.conn.consume_input().err();
        for _ in 0..self.conn.pending() {
            match self.conn.notifies_ref() {
                Ok(Some(n)) => {
                    text.push_str(&notification_line(&n));
                    text.push('\n');
                }
                Ok(None) => break,
                Err(e) => {
                    failure = Some(e);
                    break;
                }
            }
        }
        (text, failure)
    }

    /// `-c SQL`: the whole string as one query (several statements in it run as one implicit
    /// transaction, and each one's result is printed). Returns the exit status.
    /// A string that starts with a backslash is one meta-command line, as psql takes it.
    pub fn run_command(&mut self, sql: &str) -> i32 {
        let ok = if sql.trim_start().starts_with('\\') {
            self.run_meta(sql.trim_start()).1
        } else {
            let sql = vars::interpolate_sql(sql, &self.vars, &mut SqlState::default());
            self.execute(&sql)
        };
        if ok {
            0
        } else {
            1
        }
    }

    /// Reads statements from `input` until its end or `\q`. `file` names the input in error
    /// reports (`None` for standard input, which psql reports without a location). Returns the
    /// exit status: 3 when `ON_ERROR_STOP` stopped it, as psql's.
    pub fn run_script(&mut self, input: &mut dyn BufRead, file: Option<&str>) -> i32 {
        self.file = file.map(PathBuf::from);
        match self.process(input, file) {
            Flow::Stop => EXIT_ERROR_STOP,
            Flow::Continue | Flow::Quit => 0,
        }
    }

    /// The loop of `run_script` and `\i`: lines until the end of `input`, `\q` or a stop.
    fn process(&mut self, input: &mut dyn BufRead, file: Option<&str>) -> Flow {
        let mut buffer = String::new();
        let mut lineno = 0usize;
        let mut raw = Vec::new();
        loop {
            raw.clear();
            match input.read_until(b'\n', &mut raw) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => {
                    eprintln!("hark: error: could not read input: {e}");
                    return Flow::Stop;
                }
            }
            lineno += 1;
            if let Some(f) = file {
                self.set_prefix(format!("hark:{f}:{lineno}: "));
            }
            let line = String::from_utf8_lossy(&raw);
            let line = line.strip_suffix('\n').unwrap_or(&line);
            let line = line.strip_suffix('\r').unwrap_or(line);
            let flow = self.take_line(&mut buffer, line);
            if flow != Flow::Continue {
                return flow;
            }
        }
        // psql sends an unterminated last statement at the end of a script.
        let rest = skip_blank(&buffer).trim_end().to_owned();
        if !rest.is_empty() && !self.execute(&rest) {
            return self.after_error();
        }
        Flow::Continue
    }

    /// What an error does to the input loop: nothing, unless `ON_ERROR_STOP` stops a script.
    fn after_error(&self) -> Flow {
        if self.vars.is_on("ON_ERROR_STOP") && !self.interactive {
            Flow::Stop
        } else {
            Flow::Continue
        }
    }

    /// Adds one input line: runs a meta-command, or appends to the statement buffer and executes
    /// every statement completed by it.
    fn take_line(&mut self, buffer: &mut String, line: &str) -> Flow {
        if skip_blank(buffer).is_empty() && line.trim_start().starts_with('\\') {
            buffer.clear();
            self.sql_state = SqlState::default();
            return self.run_meta(line.trim_start()).0;
        }
        let line = vars::interpolate_sql(line, &self.vars, &mut self.sql_state);
        buffer.push_str(&line);
        buffer.push('\n');
        let (statements, rest) = hark::split_statements(buffer);
        *buffer = rest;
        for s in statements {
            if !self.execute(&format!("{};", skip_blank(&s))) && self.after_error() == Flow::Stop {
                buffer.clear();
                return Flow::Stop;
            }
        }
        Flow::Continue
    }

    /// Runs a meta-command line and reports its error, in psql's words; returns what the input
    /// loop does next and whether the command succeeded.
    fn run_meta(&mut self, line: &str) -> (Flow, bool) {
        match self.meta(line) {
            Ok(flow) => (flow, true),
            Err(msg) => {
                let _ = io::stdout().flush();
                let prefix = self.prefix();
                if prefix.is_empty() {
                    eprintln!("{msg}");
                } else {
                    eprintln!("{prefix}error: {msg}");
                }
                (self.after_error(), false)
            }
        }
    }

    fn meta(&mut self, line: &str) -> Result<Flow, String> {
        let body = &line[1..];
        let (cmd, args) = match body.find(char::is_whitespace) {
            Some(i) => (&body[..i], &body[i..]),
            None => (body, ""),
        };
        let mut out = io::stdout().lock();
        match cmd {
            "q" | "quit" => return Ok(Flow::Quit),
            "?" => {
                let timing = if self.timing { "on" } else { "off" };
                let _ = out.write_all(HELP.replace("TIMING", timing).as_bytes());
            }
            "h" | "help" => {
                let _ = out.write_all(help::help(args).as_bytes());
            }
            "conninfo" => {
                let _ = writeln!(
                    out,
                    "You are connected to queue \"{}\" with backend PID {} (process {}).",
                    self.conn.queue().path().display(),
                    self.conn.backend_pid(),
                    std::process::id()
                );
            }
            "set" => {
                let words = meta_args(args, &self.vars);
                match words.split_first() {
                    None => {
                        let _ = out.write_all(self.vars.listing().as_bytes());
                    }
                    Some((name, values)) => self.vars.set(name, &values.concat())?,
                }
            }
            "unset" => match meta_args(args, &self.vars).first() {
                Some(name) => self.vars.unset(name),
                None => return Err("\\unset: missing required argument".into()),
            },
            "timing" => {
                let result = match meta_args(args, &self.vars).first() {
                    None => {
                        self.timing = !self.timing;
                        Ok(())
                    }
                    Some(v) => match vars::parse_bool(v) {
                        Some(on) => {
                            self.timing = on;
                            Ok(())
                        }
                        None => Err(format!("unrecognized value \"{v}\" for \"\\timing\": Boolean expected")),
                    },
                };
                if let Err(e) = &result {
                    drop(out);
                    let _ = self.report(e);
                    out = io::stdout().lock();
                }
                let _ = writeln!(out, "Timing is {}.", if self.timing { "on" } else { "off" });
                let _ = out.flush();
                return Ok(if result.is_err() { self.after_error() } else { Flow::Continue });
            }
            "i" | "include" | "ir" | "include_relative" => {
                let Some(name) = meta_args(args, &self.vars).into_iter().next() else {
                    return Err(format!("\\{cmd}: missing required argument"));
                };
                drop(out);
                let relative = cmd.starts_with("ir") || cmd == "include_relative";
                return self.include(&name, relative);
            }
            "echo" => {
                let mut words = meta_args(args, &self.vars);
                let newline = if words.first().map(String::as_str) == Some("-n") {
                    words.remove(0);
                    false
                } else {
                    true
                };
                let _ = write!(out, "{}{}", words.join(" "), if newline { "\n" } else { "" });
            }
            _ => {
                let _ = out.flush();
                let msg = if self.interactive {
                    format!("invalid command \\{cmd}\nTry \\? for help.")
                } else {
                    format!("invalid command \\{cmd}")
                };
                return Err(msg);
            }
        }
        let _ = out.flush();
        Ok(Flow::Continue)
    }

    /// Prints a meta-command's error as `run_meta` does, for one that goes on after it.
    fn report(&self, msg: &str) -> Flow {
        let prefix = self.prefix();
        if prefix.is_empty() {
            eprintln!("{msg}");
        } else {
            eprintln!("{prefix}error: {msg}");
        }
        self.after_error()
    }

    /// `\i FILE` (and `\ir`, relative to the script being read): its lines as if typed here,
    /// with its own statement buffer and error locations.
    fn include(&mut self, name: &str, relative: bool) -> Result<Flow, String> {
        let path = match (&self.file, relative) {
            (Some(current), true) if Path::new(name).is_relative() => {
                current.parent().unwrap_or(Path::new("")).join(name)
            }
            _ => PathBuf::from(name),
        };
        let shown = path.display().to_string();
        let file = std::fs::File::open(&path).map_err(|e| format!("{shown}: {}", os_error_text(&e)))?;
        let saved_prefix = self.prefix();
        let saved_file = self.file.replace(path.clone());
        let saved_state = std::mem::take(&mut self.sql_state);
        let flow = self.process(&mut io::BufReader::new(file), Some(&shown));
        self.set_prefix(saved_prefix);
        self.file = saved_file;
        self.sql_state = saved_state;
        Ok(flow)
    }

    /// The prompt psql would show: `=>` when idle, `=*>` in a transaction block, `=!>` in a failed
    /// one, and `->` while a statement is unfinished.
    fn prompt(&self, continuing: bool) -> String {
        let state = match (continuing, self.conn.transaction_status()) {
            (true, _) => "-",
            (false, TransactionStatus::Idle) => "=",
            (false, TransactionStatus::InTrans) => "=*",
            (false, TransactionStatus::InError) => "=!",
        };
        format!("hark{state}> ")
    }

    /// The terminal loop: a prompt, line editing and history (rustyline).
    pub fn run_interactive(&mut self, banner: &str) -> i32 {
        self.interactive = true;
        let mut editor = match rustyline::DefaultEditor::new() {
            Ok(e) => e,
            Err(e) => {
                eprintln!("hark: error: could not set up line editing: {e}");
                return self.run_script(&mut io::stdin().lock(), None);
            }
        };
        println!("{banner}");
        let mut buffer = String::new();
        loop {
            let prompt = self.prompt(!skip_blank(&buffer).is_empty());
            match editor.readline(&prompt) {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = editor.add_history_entry(line.as_str());
                    }
                    // An error under ON_ERROR_STOP (in an included file) returns to the prompt.
                    if self.take_line(&mut buffer, &line) == Flow::Quit {
                        break;
                    }
                }
                // Ctrl-C drops the statement being typed, as psql does.
                Err(rustyline::error::ReadlineError::Interrupted) => buffer.clear(),
                Err(rustyline::error::ReadlineError::Eof) => {
                    println!("\\q");
                    break;
                }
                Err(e) => {
                    eprintln!("hark: error: {e}");
                    return 1;
                }
            }
        }
        0
    }
}

/// psql's `Time: …` line: milliseconds, and from a second on the time as minutes, hours and
/// days too.
fn timing_line(elapsed: Duration) -> String {
    let ms = elapsed.as_secs_f64() * 1000.0;
    if ms < 1000.0 {
        return format!("Time: {ms:.3} ms");
    }
    let mut seconds = ms / 1000.0;
    let mut minutes = (seconds / 60.0).floor();
    seconds -= 60.0 * minutes;
    if minutes < 60.0 {
        return format!("Time: {ms:.3} ms ({:02}:{seconds:06.3})", minutes as i64);
    }
    let mut hours = (minutes / 60.0).floor();
    minutes -= 60.0 * hours;
    if hours < 24.0 {
        return format!("Time: {ms:.3} ms ({:02}:{:02}:{seconds:06.3})", hours as i64, minutes as i64);
    }
    let days = (hours / 24.0).floor();
    hours -= 24.0 * days;
    format!("Time: {ms:.3} ms ({days:.0} d {:02}:{:02}:{seconds:06.3})", hours as i64, minutes as i64)
}

/// An I/O error as strerror words it (`No such file or directory`), as psql prints it.
fn os_error_text(e: &io::Error) -> String {
    let text = e.to_string();
    match text.rfind(" (os error ") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// `s` without its leading blanks and `--` comments, which psql never puts into the text it
/// sends (so that `LINE n:` counts from the statement's first word).
fn skip_blank(s: &str) -> &str {
    let mut s = s.trim_start();
    while let Some(comment) = s.strip_prefix("--") {
        s = comment.find('\n').map_or("", |i| &comment[i + 1..]).trim_start();
    }
    s
}

/// Splits a meta-command's arguments as psql does: words separated by blanks; inside single
/// quotes, blanks are kept, `''` is a quote and `\n`, `\t`, `\\` are escapes; outside them,
/// `:name`, `:'name'` and `:"name"` are replaced by a variable's value, which is not parsed again.
fn meta_args(s: &str, vars: &Vars) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let mut words = Vec::new();
    let mut i = 0;
    loop {
        while chars.get(i).is_some_and(|c| c.is_whitespace()) {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        let mut word = String::new();
        while let Some(&c) = chars.get(i) {
            if c.is_whitespace() {
                break;
            }
            i += 1;
            if c == ':' {
                if let Some((text, used)) = vars::variable_at(&chars[i - 1..], vars) {
                    word.push_str(&text);
                    i += used - 1;
                    continue;
                }
            }
            if c != '\'' {
                word.push(c);
                continue;
            }
            while let Some(&q) = chars.get(i) {
                i += 1;
                match q {
                    '\'' if chars.get(i) == Some(&'\'') => {
                        i += 1;
                        word.push('\'');
                    }
                    '\'' => break,
                    '\\' => {
                        let Some(&e) = chars.get(i) else { break };
                        i += 1;
                        word.push(match e {
                            'n' => '\n',
                            't' => '\t',
                            'r' => '\r',
                            other => other,
                        });
                    }
                    other => word.push(other),
                }
            }
        }
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    #[test]
    fn timing_lines_as_psql_prints_them() {
        use std::time::Duration;
        assert_eq!(super::timing_line(Duration::from_micros(188)), "Time: 0.188 ms");
        assert_eq!(super::timing_line(Duration::from_millis(61_234)), "Time: 61234.000 ms (01:01.234)");
        assert_eq!(super::timing_line(Duration::from_secs(3_725)), "Time: 3725000.000 ms (01:02:05.000)");
        assert_eq!(super::timing_line(Duration::from_secs(90_000)), "Time: 90000000.000 ms (1 d 01:00:00.000)");
    }

    #[test]
    fn meta_arguments_split_like_psql() {
        let mut v = super::Vars::new("/q");
        v.set("b", "it's x").unwrap();
        assert_eq!(super::meta_args(" hello 'world x'  it''s", &v), ["hello", "world x", "its"]);
        assert_eq!(super::meta_args("'it''s' 'a\\tb'", &v), ["it's", "a\tb"]);
        assert!(super::meta_args("   ", &v).is_empty());
        // A value goes in as it is, blanks and quotes and all; an unset name stays as written.
        assert_eq!(
            super::meta_args(":b :'b' :\"b\" ':b' :nosuch :'nosuch' ::b", &v),
            ["it's x", "'it''s x'", "\"it's x\"", ":b", ":nosuch", ":'nosuch'", ":it's x"]
        );
    }
}
