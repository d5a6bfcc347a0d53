//! Splitting SQL text into statements at top-level semicolons, as psql does before sending each
//! one: semicolons inside quotes, dollar quotes and comments do not count. It walks the text with
//! the lexer's own scanner (`lexer::scan`), so the two cannot disagree on a quoting rule.

use super::lexer::{scan, Lexeme};

/// Splits `text` into complete statements (each without its `;`, trimmed, empty ones dropped) and
/// the unfinished rest, which a shell keeps reading into.
///
/// ```
/// let (stmts, rest) = hark::split_statements("LISTEN a; NOTIFY a, 'x;y'; SELECT");
/// assert_eq!(stmts, ["LISTEN a", "NOTIFY a, 'x;y'"]);
/// assert_eq!(rest, " SELECT");
/// ```
pub fn split_statements(text: &str) -> (Vec<String>, String) {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let byte = |i: usize| chars.get(i).map_or(text.len(), |c| c.0);
    let mut out = Vec::new();
    let mut start = 0; // byte offset where the current statement begins
    let mut i = 0;
    while i < chars.len() {
        match scan(&chars, i) {
            // The text ends inside a string, a dollar quote or a comment: the rest is unfinished.
            Err(_) => break,
            Ok((lexeme, next)) => {
                if matches!(lexeme, Lexeme::Op) && chars[i].1 == ';' {
                    let s = text[start..byte(i)].trim();
                    if !s.is_empty() {
                        out.push(s.to_owned());
                    }
                    start = byte(next);
                }
                i = next;
            }
        }
    }
    let rest = text[start..].to_owned();
    (out, rest)
}

#[cfg(test)]
mod tests {
    use super::split_statements;

    #[test]
    fn semicolons_inside_any_quoting_do_not_split() {
        let text = "NOTIFY a, E'it\\'s; fine'; /* a; /* nested; */ b; */ LISTEN \"x;y\"; SELECT $t$;$t$ || $$;$$; -- c;\nNOTIFY b";
        let (stmts, rest) = split_statements(text);
        assert_eq!(
            stmts,
            ["NOTIFY a, E'it\\'s; fine'", "/* a; /* nested; */ b; */ LISTEN \"x;y\"", "SELECT $t$;$t$ || $$;$$"]
        );
        assert_eq!(rest, " -- c;\nNOTIFY b");
    }

    #[test]
    fn text_ending_inside_a_quote_or_comment_is_unfinished() {
        for open in ["SELECT 'a;", "SELECT E'\\';", "SELECT $q$ ;", "SELECT /* ; /* */ ;", "LISTEN \"a;"] {
            let (stmts, rest) = split_statements(&format!("LISTEN x; {open}"));
            assert_eq!(stmts, ["LISTEN x"], "{open}");
            assert_eq!(rest, format!(" {open}"), "{open}");
        }
    }
}
