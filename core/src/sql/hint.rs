//! The HINT on a syntax error where a statement leaves hark's dialect (one of PostgreSQL's
//! statements that hark does not have, or a `SELECT` with `*`, `FROM`, `WHERE`, arithmetic…):
//! PostgreSQL would run it, so the bare `syntax error at or near "*"` alone would leave the user
//! guessing what hark accepts.

use super::lexer::{Tok, Token};

/// What hark's SQL is, in one sentence.
pub const DIALECT: &str =
    "hark understands LISTEN, UNLISTEN, NOTIFY, BEGIN, START TRANSACTION, COMMIT, END, ROLLBACK, \
ABORT, SAVEPOINT, RELEASE, ROLLBACK TO, DISCARD ALL, and SELECT of constants, $n parameters, || and casts, and of \
pg_notify(), pg_listening_channels(), pg_notification_queue_usage() and pg_backend_pid(); it has no tables.";

/// PostgreSQL's statements that hark does not have (the first words of psql's `\h` list): a
/// syntax error at one of them as a statement's first word is SQL outside the dialect, where a
/// misspelt word (`SELEC`) is a plain syntax error, as in PostgreSQL.
const OTHER_STATEMENTS: [&str; 38] = [
    "alter",
    "analyze",
    "call",
    "checkpoint",
    "close",
    "cluster",
    "comment",
    "copy",
    "create",
    "deallocate",
    "declare",
    "delete",
    "do",
    "drop",
    "execute",
    "explain",
    "fetch",
    "grant",
    "import",
    "insert",
    "load",
    "lock",
    "merge",
    "move",
    "reassign",
    "refresh",
    "reindex",
    "reset",
    "revoke",
    "security",
    "set",
    "show",
    "table",
    "truncate",
    "update",
    "vacuum",
    "values",
    "with",
];

/// Words that PostgreSQL's SELECT accepts where hark's stops.
const SELECT_CLAUSES: [&str; 20] = [
    "from",
    "where",
    "group",
    "having",
    "window",
    "order",
    "limit",
    "offset",
    "fetch",
    "for",
    "union",
    "intersect",
    "except",
    "into",
    "distinct",
    "all",
    "join",
    "with",
    "values",
    "table",
];

/// The hint for a syntax error at token `i` of `toks`, if the statement leaves the dialect there.
pub(super) fn outside_dialect(toks: &[Token], i: usize) -> Option<&'static str> {
    if i == 0 {
        let known = matches!(&toks.first()?.tok, Tok::Word(w) if OTHER_STATEMENTS.contains(&w.as_str()));
        return known.then_some(DIALECT);
    }
    if !matches!(toks.first().map(|t| &t.tok), Some(Tok::Word(w)) if w == "select") {
        return None;
    }
    let leaves = match &toks.get(i)?.tok {
        Tok::Op(op) => !matches!(op.as_str(), "," | "(" | ")" | ";" | "||" | "::"),
        Tok::Word(w) => SELECT_CLAUSES.contains(&w.as_str()),
        _ => false,
    };
    leaves.then_some(DIALECT)
}
