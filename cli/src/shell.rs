//! `hark shell`: psql's read–execute–print loop over a hark session.
//!
//! Input is split into statements at top-level semicolons, and each statement is executed on its
//! own as psql sends it, then its result, and after it the notifications received, are printed and
//! flushed, so that a program driving several shells through pipes sees each answer before it
//! sends the next statement. Errors and notices go to standard error in libpq's words; when the
//! input is a file (`-f`), each report starts with `hark:FILE:LINE: `, as psql's does.

use crate::format::{notification_line, render_error, render_table, TableStyle};
use hark::{Connection, TransactionStatus};
use std::io::{self, BufRead, Write};
use std::sync::{Arc, Mutex};

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
    Quit,
}

pub struct Shell {
    conn: Connection,
    opts: ShellOptions,
    /// `hark:FILE:LINE: ` while reading a file, empty otherwise; shared with the notice handler.
    prefix: Arc<Mutex<String>>,
    interactive: bool,
}

const HELP: &str = "\
General
  \\q                     quit hark
  \\?                     show this help

Input/Output
  \\echo [-n] [STRING]    write string to standard output (-n for no newline)

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
        Shell { conn, opts, prefix, interactive: false }
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
        let (results, status) = self.conn.execute_all(sql);
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
    pub fn run_command(&mut self, sql: &str) -> i32 {
        if self.execute(sql) {
            0
        } else {
            1
        }
    }

    /// Reads statements from `input` until its end or `\q`. `file` names the input in error
    /// reports (`None` for standard input, which psql reports without a location).
    pub fn run_script(&mut self, input: &mut dyn BufRead, file: Option<&str>) -> i32 {
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
                    return 1;
                }
            }
            lineno += 1;
            if let Some(f) = file {
                self.set_prefix(format!("hark:{f}:{lineno}: "));
            }
            let line = String::from_utf8_lossy(&raw);
            let line = line.strip_suffix('\n').unwrap_or(&line);
            let line = line.strip_suffix('\r').unwrap_or(line);
            if self.take_line(&mut buffer, line) == Flow::Quit {
                return 0;
            }
        }
        // psql sends an unterminated last statement at the end of a script.
        let rest = skip_blank(&buffer).trim_end();
        if !rest.is_empty() {
            self.execute(rest);
        }
        0
    }

    /// Adds one input line: runs a meta-command, or appends to the statement buffer and executes
    /// every statement completed by it.
    fn take_line(&mut self, buffer: &mut String, line: &str) -> Flow {
        if skip_blank(buffer).is_empty() && line.trim_start().starts_with('\\') {
            buffer.clear();
            return self.meta(line.trim_start());
        }
        buffer.push_str(line);
        buffer.push('\n');
        let (statements, rest) = hark::split_statements(buffer);
        for s in statements {
            self.execute(&format!("{};", skip_blank(&s)));
        }
        *buffer = rest;
        Flow::Continue
    }

    fn meta(&mut self, line: &str) -> Flow {
        let body = &line[1..];
        let (cmd, args) = match body.find(char::is_whitespace) {
            Some(i) => (&body[..i], &body[i..]),
            None => (body, ""),
        };
        let mut out = io::stdout().lock();
        match cmd {
            "q" | "quit" => return Flow::Quit,
            "?" => {
                let _ = out.write_all(HELP.as_bytes());
            }
            "echo" => {
                let mut words = meta_args(args);
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
                let prefix = self.prefix();
                if prefix.is_empty() {
                    eprintln!("invalid command \\{cmd}");
                } else {
                    eprintln!("{prefix}error: invalid command \\{cmd}");
                }
                if self.interactive {
                    eprintln!("Try \\? for help.");
                }
            }
        }
        let _ = out.flush();
        Flow::Continue
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
/// quotes, blanks are kept, `''` is a quote and `\n`, `\t`, `\\` are escapes.
fn meta_args(s: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            break;
        }
        let mut word = String::new();
        while let Some(&c) = chars.peek() {
            if c.is_whitespace() {
                break;
            }
            chars.next();
            if c != '\'' {
                word.push(c);
                continue;
            }
            loop {
                match chars.next() {
                    None => break,
                    Some('\'') if chars.peek() == Some(&'\'') => {
                        chars.next();
                        word.push('\'');
                    }
                    Some('\'') => break,
                    Some('\\') => match chars.next() {
                        Some('n') => word.push('\n'),
                        Some('t') => word.push('\t'),
                        Some('r') => word.push('\r'),
                        Some(other) => word.push(other),
                        None => break,
                    },
                    Some(other) => word.push(other),
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
    fn meta_arguments_split_like_psql() {
        assert_eq!(super::meta_args(" hello 'world x'  it''s"), ["hello", "world x", "its"]);
        assert_eq!(super::meta_args("'it''s' 'a\\tb'"), ["it's", "a\tb"]);
        assert!(super::meta_args("   ").is_empty());
    }
}
