//! Deeply nested and very long SQL (I9): nesting beyond hark's limit of 256 parentheses and
//! function calls fails with PostgreSQL's `54001 stack depth limit exceeded`; long flat chains of
//! `||` and `::` work at any length. Every statement runs on a thread with a 128 KiB stack (musl's
//! default), the smallest a binding's caller is likely to give hark: a crash here is a stack
//! overflow the limit failed to prevent.

mod common;

use common::TempDir;
use hark::{Connection, ErrorKind, QueryResult};

const SMALL_STACK: usize = 128 << 10;

/// Runs `sql` on a fresh session of `t`'s queue, on a thread with a small stack.
fn run_small(t: &TempDir, sql: String) -> hark::Result<QueryResult> {
    let mut c = Connection::open(t.queue()).unwrap();
    std::thread::Builder::new()
        .stack_size(SMALL_STACK)
        .spawn(move || {
            let r = c.execute(&sql);
            // The session is usable after the statement, whatever it did.
            assert_eq!(c.execute("SELECT 1").unwrap().rows, [[Some("1".to_string())]]);
            r
        })
        .unwrap()
        .join()
        .unwrap()
}

fn nested_parens(n: usize) -> String {
    format!("SELECT {}1{}", "(".repeat(n), ")".repeat(n))
}

fn nested_calls(n: usize) -> String {
    format!("SELECT {}'c'{}", "pg_notify(".repeat(n), ", 'p')".repeat(n))
}

fn assert_too_deep(r: hark::Result<QueryResult>) {
    let e = r.expect_err("nesting beyond the limit must fail");
    assert_eq!((e.kind(), e.sqlstate(), e.message()), (ErrorKind::Syntax, "54001", "stack depth limit exceeded"));
    assert_eq!(
        e.hint(),
        Some("Parentheses and function calls may nest at most 256 levels deep in hark; write the expression with less nesting.")
    );
    assert_eq!(e.position(), None, "PostgreSQL's 54001 points nowhere");
}

#[test]
fn ten_thousand_nested_parentheses_fail_with_54001() {
    let t = TempDir::new("deep-parens");
    assert_too_deep(run_small(&t, nested_parens(10_000)));
}

#[test]
fn ten_thousand_nested_function_calls_fail_with_54001() {
    let t = TempDir::new("deep-calls");
    assert_too_deep(run_small(&t, nested_calls(10_000)));
}

#[test]
fn the_limit_is_256_levels_of_parentheses_and_calls_together() {
    let t = TempDir::new("deep-limit");
    let r = run_small(&t, nested_parens(256)).unwrap();
    assert_eq!(r.rows, [[Some("1".to_string())]]);
    assert_too_deep(run_small(&t, nested_parens(257)));
    // 256 calls deep parse; the inner pg_notify's void is then no channel for the next one.
    let e = run_small(&t, nested_calls(256)).unwrap_err();
    assert_eq!((e.sqlstate(), e.message()), ("42883", "function pg_notify(void, unknown) does not exist"));
    assert_too_deep(run_small(&t, nested_calls(257)));
    // Calls and parentheses count together, wherever they are in the statement.
    let mixed = format!("SELECT 1, pg_notify({}'c'{}, 'p')", "(".repeat(256), ")".repeat(256));
    assert_too_deep(run_small(&t, mixed));
    // Deep but valid: each level a call whose value is cast back to text and concatenated.
    let valid = format!("SELECT {}'c'{}", "pg_notify(('c' || ".repeat(128), ")::text, 'p')".repeat(128));
    let r = run_small(&t, valid).unwrap();
    assert_eq!(r.columns, ["pg_notify"]);
    assert_eq!(r.rows, [[Some(String::new())]]);
}

#[test]
fn a_too_deep_statement_runs_none_of_the_text() {
    let t = TempDir::new("deep-atomic");
    let mut l = Connection::open(t.queue()).unwrap();
    l.listen("c").unwrap();
    assert_too_deep(run_small(&t, format!("NOTIFY c, 'before'; {}", nested_parens(300))));
    l.notify("c", "after").unwrap();
    assert_eq!(l.notifies().unwrap().unwrap().payload, "after");
    assert!(l.notifies().unwrap().is_none());
}

#[test]
fn thirty_thousand_chained_concatenations_work() {
    let t = TempDir::new("long-concat");
    let r = run_small(&t, format!("SELECT 'a'{}", " || 'b'".repeat(30_000))).unwrap();
    assert_eq!(r.rows, [[Some(format!("a{}", "b".repeat(30_000)))]]);
    assert_eq!((r.columns[0].as_str(), r.types[0]), ("?column?", "text"));
    // 100,000 long, through pg_notify: one notification with the whole payload.
    let mut l = Connection::open(t.queue()).unwrap();
    l.listen("c").unwrap();
    let payload = format!("SELECT pg_notify('c', ''{})", " || 'x'".repeat(7_999));
    assert_eq!(run_small(&t, payload).unwrap().tag, "SELECT 1");
    assert_eq!(l.notifies().unwrap().unwrap().payload, "x".repeat(7_999));
    let r = run_small(&t, format!("SELECT ''{}", " || 'x'".repeat(100_000))).unwrap();
    assert_eq!(r.rows[0][0].as_ref().map(String::len), Some(100_000));
}

#[test]
fn thirty_thousand_chained_casts_work() {
    let t = TempDir::new("long-cast");
    let r = run_small(&t, format!("SELECT 'x'{}", "::text".repeat(30_000))).unwrap();
    assert_eq!((r.columns[0].as_str(), r.types[0]), ("text", "text"));
    assert_eq!(r.rows, [[Some("x".to_string())]]);
    let r = run_small(&t, format!("SELECT '7'::int{}::int8 AS n", "::text::int".repeat(15_000))).unwrap();
    assert_eq!((r.columns[0].as_str(), r.types[0], r.rows[0][0].as_deref()), ("n", "int8", Some("7")));
}

/// A chain means what the left-nested expression it stands for means: operands left to right,
/// each error at its own operator, NULL absorbing.
#[test]
fn chains_keep_postgres_semantics() {
    let t = TempDir::new("chain-semantics");
    let one = |sql: &str| run_small(&t, sql.to_string()).unwrap().rows[0][0].clone();
    assert_eq!(one("SELECT 'a' || 1 || 2.50"), Some("a12.50".into()));
    assert_eq!(one("SELECT 'a' || NULL || 'b'"), None);
    assert_eq!(one("SELECT ('a' || 'b')::text || ('c' || ('d' || 'e'))"), Some("abcde".into()));
    assert_eq!(one("SELECT - - 1"), Some("1".into()));
    assert_eq!(one("SELECT - - - 1.5"), Some("-1.5".into()));
    assert_eq!(one("SELECT -(-1)"), Some("1".into()));
    assert_eq!(one("SELECT -(- (-(2.50)))"), Some("-2.50".into()));
    let e = run_small(&t, "SELECT 'a' || 1 || 2 || (1 || 2)".into()).unwrap_err();
    assert_eq!(
        (e.sqlstate(), e.message(), e.position()),
        ("42883", "operator does not exist: integer || integer", Some(28))
    );
    let e = run_small(&t, "SELECT '12'::int::text::bool".into()).unwrap_err();
    assert_eq!(
        (e.sqlstate(), e.message(), e.position()),
        ("22P02", "invalid input syntax for type boolean: \"12\"", None)
    );
}

/// The parser's loop tells calls from other operands followed by `(`, and closes what it opened.
#[test]
fn parentheses_after_operands_that_are_not_names_are_syntax_errors() {
    let t = TempDir::new("not-calls");
    for (sql, near, pos) in [
        ("SELECT 1(2)", "(", 9),
        ("SELECT 'a'(", "(", 11),
        ("SELECT ((1)(", "(", 12),
        ("SELECT null()", "(", 12),
        ("SELECT pg_notify('a' 'b')", "'b'", 22),
        ("SELECT (1", "", 10),
        ("SELECT pg_notify('a',", "", 22),
    ] {
        let e = run_small(&t, sql.to_string()).unwrap_err();
        let message = if near.is_empty() {
            "syntax error at end of input".to_string()
        } else {
            format!("syntax error at or near \"{near}\"")
        };
        assert_eq!((e.sqlstate(), e.message(), e.position()), ("42601", message.as_str(), Some(pos)), "{sql}");
    }
    // A quoted name is a function name too.
    let r = run_small(&t, "SELECT \"pg_notify\"('c', 'p')".to_string()).unwrap();
    assert_eq!(
        (r.columns.as_slice(), r.rows.as_slice()),
        (["pg_notify".to_string()].as_slice(), [vec![Some(String::new())]].as_slice())
    );
}

/// PostgreSQL nests block comments; the lexer counts them in a loop.
#[test]
fn deeply_nested_comments_are_skipped() {
    let t = TempDir::new("deep-comments");
    let r = run_small(&t, format!("SELECT 1 {}{} AS one", "/*".repeat(10_000), "*/".repeat(10_000))).unwrap();
    assert_eq!(r.rows, [[Some("1".to_string())]]);
    let e = run_small(&t, format!("SELECT 1 {}{}", "/*".repeat(10_000), "*/".repeat(9_999))).unwrap_err();
    assert_eq!((e.sqlstate(), e.position()), ("42601", Some(10)));
    assert!(e.message().starts_with("unterminated /* comment at or near"), "{e}");
}
