//! Parameters (`$n` bound by `execute_params`, PostgreSQL's extended protocol) and libpq's
//! escaping functions: a value is never SQL text, whatever it holds, and every mistake gets
//! PostgreSQL's error (the texts and positions checked against PostgreSQL 15 through libpq's
//! PQexecParams, PQexec, PQescapeLiteral and PQescapeIdentifier).

mod common;

use common::{drain, TempDir};
use hark::{convert_pyformat, escape_identifier, escape_literal, Connection, ErrorKind, Param, Placeholders};

/// Values that would break out of a literal, a comment or a statement if pasted into SQL.
const HOSTILE: &[&str] = &[
    "'",
    "''",
    "it's",
    "\\",
    "\\'",
    "'\\",
    "E'x'",
    "e'\\''",
    "$$",
    "$$; NOTIFY evil, 'x'; $$",
    "$tag$",
    "$1",
    "%s",
    "--",
    "-- NOTIFY evil",
    "/*",
    "*/",
    "/* /*",
    ";",
    "'); NOTIFY evil, 'pwned'; --",
    "\"; LISTEN evil; \"",
    "\\x00",
    "é ✓ \u{1F600}",
    "",
];

fn session(t: &TempDir) -> Connection {
    Connection::open(t.queue()).unwrap()
}

#[test]
fn hostile_values_stay_values() {
    let t = TempDir::new("params-hostile");
    let mut c = session(&t);
    c.execute("LISTEN events; LISTEN evil").unwrap();
    for v in HOSTILE.iter().filter(|v| !v.is_empty()) {
        c.listen(v).unwrap();
    }
    for v in HOSTILE {
        let r = c
            .execute_params("SELECT pg_notify('events', $1), $1 AS v, $1::text || $2 AS w", &[(*v).into(), "!".into()]);
        let r = r.unwrap_or_else(|e| panic!("{v:?}: {e}"));
        assert_eq!(r.rows, [[Some(String::new()), Some(v.to_string()), Some(format!("{v}!"))]], "{v:?}");
        // As a channel name too (not empty, shorter than 64 bytes).
        if !v.is_empty() {
            c.execute_params("SELECT pg_notify($1, $2)", &[(*v).into(), (*v).into()]).unwrap();
        }
    }
    let got = drain(&mut c);
    let mut want = Vec::new();
    for v in HOSTILE {
        want.push(("events".to_string(), v.to_string()));
        if !v.is_empty() {
            want.push((v.to_string(), v.to_string()));
        }
    }
    // Nothing reached "evil" but the value that names it.
    assert_eq!(got, want);
}

#[test]
fn escaped_literals_and_identifiers_read_back_verbatim() {
    let t = TempDir::new("params-escape");
    let mut c = session(&t);
    for v in HOSTILE {
        let sql = format!("SELECT {} AS v", escape_literal(v));
        let r = c.execute(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(r.rows, [[Some(v.to_string())]], "{sql}");
        if !v.is_empty() {
            let sql = format!("LISTEN {}", escape_identifier(v));
            c.execute(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
            assert!(c.listening_channels().contains(&v.to_string()), "{sql}");
        }
    }
    assert_eq!(escape_literal("a\\b'c"), " E'a\\\\b''c'");
    assert_eq!(escape_literal("up to\0here"), "'up to'");
    assert_eq!(escape_identifier("Mixed\"Case"), "\"Mixed\"\"Case\"");
}

fn fails(r: hark::Result<hark::QueryResult>) -> (ErrorKind, String, String, Option<usize>) {
    let e = r.expect_err("must fail");
    (e.kind(), e.sqlstate().to_owned(), e.message().to_owned(), e.position())
}

#[test]
fn missing_and_extra_values_fail_as_postgres() {
    let t = TempDir::new("params-count");
    let mut c = session(&t);
    let two: [Param; 2] = ["a".into(), "b".into()];
    // Checked against PostgreSQL 15 through PQexecParams with unspecified types.
    assert_eq!(
        fails(c.execute_params("SELECT $1, $2", &["a".into()])),
        (
            ErrorKind::InvalidArgument,
            "08P01".into(),
            "bind message supplies 1 parameters, but prepared statement \"\" requires 2".into(),
            None
        )
    );
    // A `$k` the statement skips has no type to take, unless its value brings one.
    assert_eq!(
        fails(c.execute_params("SELECT $1, $3", &two)),
        (ErrorKind::Syntax, "42P18".into(), "could not determine data type of parameter $2".into(), None)
    );
    assert_eq!(
        fails(c.execute_params("SELECT $2::int", &["1".into(), "2".into()])).2,
        "could not determine data type of parameter $1"
    );
    assert_eq!(
        fails(c.execute_params("SELECT $2::int", &[Param::Null, "2".into()])).2,
        "could not determine data type of parameter $1"
    );
    let r = c.execute_params("SELECT $2::int", &[Param::Int(1), "2".into()]).unwrap();
    assert_eq!(r.rows, [[Some("2".to_string())]]);
    assert_eq!(
        fails(c.execute_params("SELECT $0", &two)),
        (ErrorKind::Syntax, "42P02".into(), "there is no parameter $0".into(), Some(8))
    );
    assert_eq!(
        fails(c.execute_params("SELECT $1", &two)),
        (
            ErrorKind::InvalidArgument,
            "08P01".into(),
            "bind message supplies 2 parameters, but prepared statement \"\" requires 1".into(),
            None
        )
    );
    assert_eq!(
        fails(c.execute_params("", &two)).2,
        "bind message supplies 2 parameters, but prepared statement \"\" requires 0"
    );
    // The simple protocol has no values at all.
    assert_eq!(
        fails(c.execute("SELECT 'a', $1")),
        (ErrorKind::Syntax, "42P02".into(), "there is no parameter $1".into(), Some(13))
    );
    // A parameter is an expression, not a name or a NOTIFY payload.
    assert_eq!(fails(c.execute_params("NOTIFY events, $1", &["x".into()])).2, "syntax error at or near \"$1\"");
    assert_eq!(fails(c.execute_params("LISTEN $1", &["x".into()])).2, "syntax error at or near \"$1\"");
    assert_eq!(fails(c.execute("SELECT $1abc")).2, "trailing junk after parameter at or near \"$1abc\"");
    assert_eq!(fails(c.execute("SELECT a$1")).2, "column \"a$1\" does not exist");
    assert_eq!(fails(c.execute("SELECT $99999999999")).2, "parameter number too large at or near \"$99999999999\"");
}

#[test]
fn one_statement_only_and_no_nul() {
    let t = TempDir::new("params-multi");
    let mut c = session(&t);
    c.execute("LISTEN a").unwrap();
    assert_eq!(
        fails(c.execute_params("SELECT pg_notify('a', $1); SELECT 1", &["x".into()])),
        (ErrorKind::Syntax, "42601".into(), "cannot insert multiple commands into a prepared statement".into(), None)
    );
    // A trailing semicolon, or empty statements, are still one statement.
    c.execute_params(";SELECT pg_notify('a', $1);;", &["one".into()]).unwrap();
    assert_eq!(
        fails(c.execute_params("SELECT pg_notify('a', $1)", &["nul\0byte".into()])),
        (ErrorKind::InvalidArgument, "22021".into(), "invalid byte sequence for encoding \"UTF8\": 0x00".into(), None)
    );
    assert_eq!(drain(&mut c), [("a".to_string(), "one".to_string())]);
}

#[test]
fn a_failed_bind_fails_the_open_block() {
    let t = TempDir::new("params-block");
    let mut c = session(&t);
    c.execute("LISTEN a; BEGIN").unwrap();
    c.execute_params("SELECT pg_notify('a', $1)", &["kept?".into()]).unwrap();
    fails(c.execute_params("SELECT $2", &["x".into()]));
    assert_eq!(fails(c.execute("SELECT 1")).1, "25P02");
    assert_eq!(c.execute("COMMIT").unwrap().tag, "ROLLBACK");
    assert_eq!(drain(&mut c), []);
}

#[test]
fn text_values_take_the_type_they_are_used_as() {
    let t = TempDir::new("params-types");
    let mut c = session(&t);
    let r = c
        .execute_params(
            "SELECT $1, $1::int AS i, $2::bool AS b, $3::json AS j, $4 AS n",
            &["42".into(), "yes".into(), "{\"a\": 1}".into(), Param::Null],
        )
        .unwrap();
    assert_eq!(r.columns, ["?column?", "i", "b", "j", "n"]);
    assert_eq!(r.types, ["text", "int4", "bool", "json", "text"]);
    assert_eq!(r.rows, [[Some("42".into()), Some("42".into()), Some("t".into()), Some("{\"a\": 1}".into()), None]]);
    // Bad input for a cast is the value's fault: no position in the statement, as PostgreSQL.
    assert_eq!(
        fails(c.execute_params("SELECT $1::int", &["4x".into()])),
        (ErrorKind::InvalidArgument, "22P02".into(), "invalid input syntax for type integer: \"4x\"".into(), None)
    );
    // Typed values keep their type.
    let r = c
        .execute_params(
            "SELECT $1, $2, $3, $4",
            &[Param::Int(7), Param::Float(0.5), Param::Bool(false), Param::Json("[]".into())],
        )
        .unwrap();
    assert_eq!(r.types, ["int4", "float8", "bool", "json"]);
    assert_eq!(r.rows, [[Some("7".into()), Some("0.5".into()), Some("f".into()), Some("[]".into())]]);
    assert_eq!(
        fails(c.execute_params("SELECT pg_notify('a', $1)", &[Param::Int(7)])).2,
        "function pg_notify(unknown, integer) does not exist"
    );
    // NULL: pg_notify is not strict (R2, R3).
    assert_eq!(fails(c.execute_params("SELECT pg_notify($1, 'x')", &[Param::Null])).2, "channel name cannot be empty");
}

#[test]
fn pyformat_queries_run_with_their_values() {
    let t = TempDir::new("params-pyformat");
    let mut c = session(&t);
    c.execute("LISTEN events").unwrap();
    let q = convert_pyformat("SELECT pg_notify(%s, %s || '%s 100%%') -- %s").unwrap();
    assert_eq!(q.placeholders, Placeholders::Positional(2));
    c.execute_params(&q.text, &["events".into(), "'; --".into()]).unwrap();
    assert_eq!(drain(&mut c), [("events".to_string(), "'; --%s 100%".to_string())]);
}
