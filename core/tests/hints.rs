//! HINTs where hark's rules differ from PostgreSQL's fixed ones: a statement outside hark's SQL
//! says what the dialect accepts, and a payload too long says the queue's limit and how to raise
//! it. Errors PostgreSQL would give too keep its text alone.

mod common;

use common::TempDir;
use hark::{Connection, Options};

#[test]
fn sql_outside_the_dialect_says_what_hark_understands() {
    let t = TempDir::new("hint-dialect");
    let mut c = Connection::open(t.queue()).unwrap();
    for (sql, near) in [
        ("SELECT * FROM t", "*"),
        ("SELECT 1 FROM t", "FROM"),
        ("SELECT 1 + 2", "+"),
        ("select 1 where true", "where"),
        ("INSERT INTO t VALUES (1)", "INSERT"),
        ("CREATE TABLE t (a int)", "CREATE"),
    ] {
        let e = c.execute(sql).unwrap_err();
        assert_eq!((e.sqlstate(), e.message()), ("42601", format!("syntax error at or near \"{near}\"").as_str()));
        let hint = e.hint().unwrap_or_else(|| panic!("no hint for {sql}"));
        assert!(hint.starts_with("hark understands LISTEN, UNLISTEN, NOTIFY, BEGIN,"), "{hint}");
        assert!(hint.contains("pg_notify()") && hint.ends_with("it has no tables."), "{hint}");
    }
    // Mistakes in hark's own statements, and misspelt words, are PostgreSQL's errors, hint and all
    // (none).
    for sql in ["NOTIFY a 'x'", "LISTEN;", "DISCARD;", "SELECT 1,", "SELECT (1", "SELEC 1", "FROB x"] {
        let e = c.execute(sql).unwrap_err();
        assert_eq!((e.sqlstate(), e.hint()), ("42601", None), "{sql}: {}", e.message());
    }
}

#[test]
fn a_payload_too_long_says_the_limit_and_how_to_raise_it() {
    let t = TempDir::new("hint-payload");
    let mut c = Connection::with_options(t.queue(), &Options::new().max_payload(100)).unwrap();
    let e = c.notify("c", &"p".repeat(101)).unwrap_err();
    assert_eq!((e.sqlstate(), e.message()), ("22023", "payload string too long"));
    assert_eq!(e.detail(), Some("The payload is 101 bytes; this queue's max_payload is 100 bytes."));
    assert_eq!(
        e.hint(),
        Some(
            "max_payload is chosen when a queue is created, up to 1048576 bytes: the max_payload option \
             (maxPayload in Node, --max-payload of the hark command)."
        )
    );
    let e = c.execute(&format!("SELECT pg_notify('c', '{}')", "é".repeat(51))).unwrap_err();
    assert_eq!(e.detail(), Some("The payload is 102 bytes; this queue's max_payload is 100 bytes."));
}
