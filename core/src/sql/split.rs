//! Splitting SQL text into statements at top-level semicolons, as psql does before sending each
//! one: semicolons inside quotes, dollar quotes and comments do not count.

/// Splits `text` into complete statements (each without its `;`, trimmed, empty ones dropped) and
/// the unfinished rest, which a shell keeps reading into.
///
/// ```
/// let (stmts, rest) = hark::split_statements("LISTEN a; NOTIFY a, 'x;y'; SELECT");
/// assert_eq!(stmts, ["LISTEN a", "NOTIFY a, 'x;y'"]);
/// assert_eq!(rest, " SELECT");
/// ```
pub fn split_statements(text: &str) -> (Vec<String>, String) {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let mut depth = 0;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        depth += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        depth -= 1;
                        i += 2;
                        if depth == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            q @ (b'\'' | b'"') => {
                let escapes = q == b'\'' && i > 0 && (b[i - 1] == b'e' || b[i - 1] == b'E') && (i < 2 || !is_word(b[i - 2]));
                i += 1;
                while i < b.len() {
                    if escapes && b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if b[i] == q {
                        if b.get(i + 1) == Some(&q) {
                            i += 2;
                            continue;
                        }
                        break;
                    }
                    i += 1;
                }
                i += 1;
                continue;
            }
            b'$' if i == 0 || !is_word(b[i - 1]) => {
                if let Some(len) = tag_len(&b[i..]) {
                    let tag = &b[i..i + len];
                    let mut j = i + len;
                    while j < b.len() && !b[j..].starts_with(tag) {
                        j += 1;
                    }
                    i = (j + len).min(b.len() + 1);
                    continue;
                }
            }
            b';' => {
                let s = text[start..i].trim();
                if !s.is_empty() {
                    out.push(s.to_owned());
                }
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    let rest = if start < text.len() { text[start..].to_owned() } else { String::new() };
    // An unterminated quote or comment makes `i` run past the end: all of it is the rest.
    (out, rest)
}

fn is_word(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// Length of a `$tag$` opener at the start of `b`.
fn tag_len(b: &[u8]) -> Option<usize> {
    let mut j = 1;
    while j < b.len() {
        let c = b[j];
        if c == b'$' {
            return Some(j + 1);
        }
        if !(c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 || (j > 1 && c.is_ascii_digit())) {
            return None;
        }
        j += 1;
    }
    None
}
