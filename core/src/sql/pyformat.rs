//! Python's DB-API placeholders (`%s`, `%(name)s`, paramstyles `format` and `pyformat`), turned
//! into PostgreSQL's `$n` with psycopg 3's rules and messages, so that a query written for
//! psycopg runs unchanged on hark's `execute_params`.
//!
//! Unlike psycopg, which finds placeholders with a regular expression over the whole text, this
//! walks the text with the lexer's scanner: a `%s` inside a string, a quoted identifier, a dollar
//! quote or a comment is text, never a placeholder. `%%` is one `%` everywhere, as in psycopg, so
//! that `'100%%'` written for psycopg still means `100%`.

use super::lexer::{scan, Lexeme};
use crate::error::{Error, Result};

/// A query whose placeholders were turned into `$1`, `$2`, … (see [`convert_pyformat`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PyFormatQuery {
    /// The text to run with [`Connection::execute_params`](crate::Connection::execute_params).
    pub text: String,
    /// What the values must be.
    pub placeholders: Placeholders,
    /// How many placeholders the text has, a name used twice counted twice (the number psycopg
    /// gives in its messages).
    pub written: usize,
}

/// The placeholders of a query, which say how its values are to be passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Placeholders {
    /// `%s` placeholders (none: 0): a sequence of this many values, the n-th bound to `$n`.
    Positional(usize),
    /// `%(name)s` placeholders: a mapping; `$n` is bound to the value of the n-th name, in the
    /// order the names first appear (a name used twice is one `$n`).
    Named(Vec<String>),
}

/// Turns psycopg's placeholders into `$n`: `%s` (also `%t` and `%b`, which psycopg uses to ask
/// for text or binary; hark has text only) and `%(name)s`, and `%%` into `%`. A `%` before a
/// space, `%(` with no name and format after it, a format other than `s`, `t` or `b`, and positional
/// and named placeholders in one query fail with psycopg's messages (kind `Syntax`, SQLSTATE
/// 42601). A `%` at the end of a line or of the text is left as it is, as psycopg leaves it.
///
/// ```
/// use hark::{convert_pyformat, Placeholders};
/// let q = convert_pyformat("SELECT pg_notify(%s, %s), '%s stays; 100%%' -- %s")?;
/// assert_eq!(q.text, "SELECT pg_notify($1, $2), '%s stays; 100%' -- %s");
/// assert_eq!(q.placeholders, Placeholders::Positional(2));
/// let q = convert_pyformat("SELECT pg_notify(%(ch)s, %(msg)s || %(ch)s)")?;
/// assert_eq!(q.text, "SELECT pg_notify($1, $2 || $1)");
/// assert_eq!(q.placeholders, Placeholders::Named(vec!["ch".into(), "msg".into()]));
/// # Ok::<(), hark::Error>(())
/// ```
pub fn convert_pyformat(query: &str) -> Result<PyFormatQuery> {
    let chars: Vec<(usize, char)> = query.char_indices().collect();
    let byte = |i: usize| chars.get(i).map_or(query.len(), |c| c.0);
    let at = |i: usize| chars.get(i).map(|c| c.1);
    let mut text = String::with_capacity(query.len() + 8);
    let mut positional = 0usize;
    let mut named: Vec<(String, char)> = Vec::new();
    let mut written = 0;
    let mut i = 0;
    while i < chars.len() {
        let (lexeme, next) = match scan(&chars, i) {
            Ok(found) => found,
            // The text ends inside a string or comment: the rest is text, and running it fails
            // with the lexer's error.
            Err(_) => {
                text.push_str(&query[byte(i)..].replace("%%", "%"));
                break;
            }
        };
        match lexeme {
            Lexeme::Op if chars[i].1 == '%' => {
                let Some(c) = at(i + 1).filter(|&c| c != '\n') else {
                    text.push('%');
                    i += 1;
                    continue;
                };
                if c == '%' {
                    text.push('%');
                    i += 2;
                    continue;
                }
                // `%(name)f`: the name runs to the first `)`, and a format follows it.
                let close = (c == '(').then(|| (i + 2..chars.len()).find(|&k| chars[k].1 == ')')).flatten();
                let (name, fmt, end) = match close {
                    Some(k) if k > i + 2 && at(k + 1).is_some_and(|f| f != '\n') => {
                        (Some(query[byte(i + 2)..byte(k)].to_owned()), chars[k + 1].1, k + 2)
                    }
                    _ if c == '(' => {
                        let word = query[byte(i)..].split_whitespace().next().unwrap_or("%(");
                        return Err(Error::syntax(format!("incomplete placeholder: '{word}'")));
                    }
                    _ if c == ' ' => {
                        return Err(Error::syntax(
                            "incomplete placeholder: '%'; if you want to use '%' as an operator you can double it up, i.e. use '%%'",
                        ))
                    }
                    _ => (None, c, i + 2),
                };
                if !matches!(fmt, 's' | 't' | 'b') {
                    return Err(Error::syntax(format!(
                        "only '%s', '%b', '%t' are allowed as placeholders, got '{}'",
                        &query[byte(i)..byte(end)]
                    )));
                }
                let is_named = name.is_some();
                if (is_named && positional > 0) || (!is_named && !named.is_empty()) {
                    return Err(Error::syntax("positional and named placeholders cannot be mixed"));
                }
                let n = match name {
                    None => {
                        positional += 1;
                        positional
                    }
                    Some(name) => match named.iter().position(|(x, _)| *x == name) {
                        Some(k) => {
                            // psycopg's text and binary formats cannot share one `$n`.
                            if named[k].1 != fmt {
                                return Err(Error::syntax(format!(
                                    "placeholder '{name}' cannot have different formats"
                                )));
                            }
                            k + 1
                        }
                        None => {
                            named.push((name, fmt));
                            named.len()
                        }
                    },
                };
                text.push('$');
                text.push_str(&n.to_string());
                written += 1;
                i = end;
            }
            Lexeme::Str(_) | Lexeme::Quoted(_) | Lexeme::Dollar(..) | Lexeme::Comment => {
                text.push_str(&query[byte(i)..byte(next)].replace("%%", "%"));
                i = next;
            }
            _ => {
                text.push_str(&query[byte(i)..byte(next)]);
                i = next;
            }
        }
    }
    let placeholders = if named.is_empty() {
        Placeholders::Positional(positional)
    } else {
        Placeholders::Named(named.into_iter().map(|(n, _)| n).collect())
    };
    Ok(PyFormatQuery { text, placeholders, written })
}

#[cfg(test)]
mod tests {
    use super::{convert_pyformat, Placeholders};

    fn err(q: &str) -> String {
        convert_pyformat(q).unwrap_err().message().to_owned()
    }

    #[test]
    fn placeholders_only_outside_quotes_and_comments() {
        let q = convert_pyformat("SELECT %s, E'%s\\'%s', \"%s\", $$%s$$, $t$%s$t$ /* %s /* %s */ */ -- %s\n, %t, %b")
            .unwrap();
        assert_eq!(q.text, "SELECT $1, E'%s\\'%s', \"%s\", $$%s$$, $t$%s$t$ /* %s /* %s */ */ -- %s\n, $2, $3");
        assert_eq!(q.placeholders, Placeholders::Positional(3));
    }

    #[test]
    fn percent_rules_as_psycopg() {
        assert_eq!(convert_pyformat("SELECT '100%%', 5 %% 2, %s").unwrap().text, "SELECT '100%', 5 % 2, $1");
        assert_eq!(convert_pyformat("SELECT 1 %\n").unwrap().text, "SELECT 1 %\n");
        assert_eq!(convert_pyformat("SELECT 1 %").unwrap().text, "SELECT 1 %");
        assert_eq!(convert_pyformat("SELECT 1").unwrap().placeholders, Placeholders::Positional(0));
    }

    #[test]
    fn errors_as_psycopg() {
        assert_eq!(err("SELECT %d"), "only '%s', '%b', '%t' are allowed as placeholders, got '%d'");
        assert_eq!(err("SELECT %(x)d"), "only '%s', '%b', '%t' are allowed as placeholders, got '%(x)d'");
        assert_eq!(err("SELECT %(x"), "incomplete placeholder: '%(x'");
        assert_eq!(err("SELECT %(x) "), "only '%s', '%b', '%t' are allowed as placeholders, got '%(x) '");
        assert_eq!(err("SELECT %()s"), "incomplete placeholder: '%()s'");
        assert_eq!(
            err("SELECT 5 % 2"),
            "incomplete placeholder: '%'; if you want to use '%' as an operator you can double it up, i.e. use '%%'"
        );
        assert_eq!(err("SELECT %s, %(x)s"), "positional and named placeholders cannot be mixed");
        assert_eq!(err("SELECT %(x)s, %s"), "positional and named placeholders cannot be mixed");
        assert_eq!(err("SELECT %(x)s, %(x)b"), "placeholder 'x' cannot have different formats");
    }

    #[test]
    fn names_number_in_order_of_first_use() {
        let q = convert_pyformat("SELECT %(b)s, %(a)s, %(b)s, %(a b)s").unwrap();
        assert_eq!(q.text, "SELECT $1, $2, $1, $3");
        assert_eq!(q.placeholders, Placeholders::Named(vec!["b".into(), "a".into(), "a b".into()]));
        assert_eq!(q.written, 4);
    }
}
