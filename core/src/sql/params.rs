//! Parameters: `$1`, `$2`, … in a statement, bound to values passed beside the text, as
//! PostgreSQL's extended query protocol binds them (`PQexecParams`). A value is never pasted into
//! SQL text: the lexer reads `$n` as a token of its own, and the executor takes the n-th value
//! where the token stands, so no value can end a string, open a comment or end a statement.
//!
//! Also here: libpq's `PQescapeLiteral` and `PQescapeIdentifier`, for the programs that build SQL
//! text themselves.

use super::lexer::{Tok, Token};
use super::value::Value;
use crate::error::{Error, ErrorKind, Result};

/// A value bound to a parameter `$n` (see [`Connection::execute_params`](crate::Connection::execute_params)).
///
/// [`Param::Text`] is what libpq and node-postgres send: text of no declared type, which
/// PostgreSQL calls `unknown`. It becomes text where text is wanted (`pg_notify($1, $2)`,
/// `$1 || 'x'`, a column of its own) and is read as the type of a cast (`$1::int`). The other
/// variants are values of a type already (`integer`/`bigint`, `double precision`, `boolean`,
/// `json`), as psycopg sends Python's `int`, `float`, `bool` and `Json`.
#[derive(Debug, Clone, PartialEq)]
pub enum Param {
    /// SQL NULL.
    Null,
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Json(String),
}

impl Param {
    pub(crate) fn value(&self) -> Value {
        match self {
            Param::Null => Value::Null,
            Param::Text(s) => Value::Unknown(s.clone()),
            Param::Int(v) => Value::Int(*v),
            Param::Float(v) => Value::Float(*v),
            Param::Bool(v) => Value::Bool(*v),
            Param::Json(s) => Value::Json(s.clone()),
        }
    }
}

impl From<&str> for Param {
    fn from(s: &str) -> Param {
        Param::Text(s.to_owned())
    }
}
impl From<String> for Param {
    fn from(s: String) -> Param {
        Param::Text(s)
    }
}
impl From<i64> for Param {
    fn from(v: i64) -> Param {
        Param::Int(v)
    }
}
impl From<i32> for Param {
    fn from(v: i32) -> Param {
        Param::Int(v.into())
    }
}
impl From<f64> for Param {
    fn from(v: f64) -> Param {
        Param::Float(v)
    }
}
impl From<bool> for Param {
    fn from(v: bool) -> Param {
        Param::Bool(v)
    }
}
impl<T: Into<Param>> From<Option<T>> for Param {
    fn from(v: Option<T>) -> Param {
        v.map_or(Param::Null, Into::into)
    }
}

/// The simple protocol has no values: any `$n` is PostgreSQL's `there is no parameter $n`, at
/// the `$`.
pub(crate) fn check_no_refs(tokens: &[Token]) -> Result<()> {
    match tokens.iter().find_map(|t| if let Tok::Param(n) = t.tok { Some((n, t.pos)) } else { None }) {
        Some((n, pos)) => Err(no_parameter(n).at(pos)),
        None => Ok(()),
    }
}

/// What PostgreSQL's extended protocol checks when it parses a statement whose parameter types
/// were left unspecified (as libpq, node-postgres and psycopg leave them for text): `$0` does not
/// exist, the statement needs as many values as its highest `$n`, and a `$k` below that which the
/// statement never uses has no type to take, unless its value brings one. Returns how many values
/// the statement needs.
pub(crate) fn check_refs(tokens: &[Token], params: &[Param]) -> Result<usize> {
    let mut used = Vec::new();
    for t in tokens {
        if let Tok::Param(n) = t.tok {
            if n == 0 {
                return Err(no_parameter(n).at(t.pos));
            }
            if used.len() < n {
                used.resize(n, false);
            }
            used[n - 1] = true;
        }
    }
    let typed =
        |k: usize| matches!(params.get(k), Some(Param::Int(_) | Param::Float(_) | Param::Bool(_) | Param::Json(_)));
    if let Some(k) = (0..used.len()).find(|&k| !used[k] && !typed(k)) {
        return Err(Error::new(
            ErrorKind::Syntax,
            "42P18",
            format!("could not determine data type of parameter ${}", k + 1),
        ));
    }
    Ok(used.len())
}

fn no_parameter(n: usize) -> Error {
    Error::new(ErrorKind::Syntax, "42P02", format!("there is no parameter ${n}"))
}

/// What PostgreSQL checks when the values are bound (its Bind message), after the statement
/// parsed: as many values as the statement needs, and text without a NUL byte.
pub(crate) fn check_bind(required: usize, params: &[Param]) -> Result<()> {
    if params.len() != required {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "08P01",
            format!(
                "bind message supplies {} parameters, but prepared statement \"\" requires {required}",
                params.len()
            ),
        ));
    }
    for p in params {
        if let Param::Text(s) | Param::Json(s) = p {
            if s.as_bytes().contains(&0) {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    "22021",
                    "invalid byte sequence for encoding \"UTF8\": 0x00",
                ));
            }
        }
    }
    Ok(())
}

/// PostgreSQL refuses several statements in one text with parameters.
pub(crate) fn multiple_commands() -> Error {
    Error::syntax("cannot insert multiple commands into a prepared statement")
}

/// `s` as an SQL string literal, as libpq's `PQescapeLiteral` writes it: in single quotes, each
/// quote doubled; when `s` has a backslash, each backslash doubled too and the literal written
/// ` E'…'` (with a space before it, so that it cannot join a word written just before), which
/// reads the same whatever `standard_conforming_strings` says. As libpq, the text ends at the
/// first NUL character, which no SQL string can hold.
///
/// ```
/// assert_eq!(hark::escape_literal("it's"), "'it''s'");
/// assert_eq!(hark::escape_literal(r"C:\dir"), r" E'C:\\dir'");
/// ```
pub fn escape_literal(s: &str) -> String {
    escape(s, '\'')
}

/// `s` as an SQL identifier, as libpq's `PQescapeIdentifier` writes it: in double quotes, each
/// double quote doubled, so that it is taken verbatim (no case folding). As libpq, the text ends
/// at the first NUL character.
///
/// ```
/// assert_eq!(hark::escape_identifier("Order \"42\""), "\"Order \"\"42\"\"\"");
/// ```
pub fn escape_identifier(s: &str) -> String {
    escape(s, '"')
}

fn escape(s: &str, quote: char) -> String {
    let s = s.split('\0').next().unwrap_or_default();
    let literal = quote == '\'';
    let backslashes = literal && s.contains('\\');
    let mut out = String::with_capacity(s.len() + 4);
    if backslashes {
        out.push_str(" E");
    }
    out.push(quote);
    for c in s.chars() {
        if c == quote || (backslashes && c == '\\') {
            out.push(c);
        }
        out.push(c);
    }
    out.push(quote);
    out
}

#[cfg(test)]
mod tests {
    use super::{escape_identifier, escape_literal};

    #[test]
    fn escapes_as_libpq() {
        assert_eq!(escape_literal(""), "''");
        assert_eq!(escape_literal("a'b"), "'a''b'");
        assert_eq!(escape_literal("a\\'b"), " E'a\\\\''b'");
        assert_eq!(escape_literal("ab\0cd"), "'ab'");
        assert_eq!(escape_literal("é$$--/*;"), "'é$$--/*;'");
        assert_eq!(escape_identifier("a\"b\\c"), "\"a\"\"b\\c\"");
        assert_eq!(escape_identifier("x\0y"), "\"x\"");
    }
}
