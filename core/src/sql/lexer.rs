//! Tokens of the SQL dialect, following PostgreSQL's scanner: identifiers fold to lower case and
//! truncate to 63 bytes with a NOTICE, `"quoted"` identifiers keep their case, and strings come as
//! `'…'` (with `''`), `E'…'` (with backslash escapes) and `$tag$…$tag$`.

use crate::error::{Error, ErrorKind, Notice, Result, Severity};
use crate::layout::MAX_CHANNEL_LEN;

#[derive(Debug, Clone, PartialEq)]
pub enum Tok {
    /// An unquoted word, already folded (keywords are words too).
    Word(String),
    /// A `"quoted"` identifier.
    Quoted(String),
    Str(String),
    Int(String),
    Num(String),
    /// Punctuation and operators: `,` `;` `(` `)` `*` `||` `::` `.` and any other operator text.
    Op(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub tok: Tok,
    /// 1-based character position of the token's first character.
    pub pos: usize,
    /// The token as written (for `syntax error at or near "…"`).
    pub text: String,
}

pub struct Lexed {
    pub tokens: Vec<Token>,
    pub notices: Vec<Notice>,
}

/// Splits `sql` into tokens. Comments (`--`, nested `/* */`) are skipped.
pub fn lex(sql: &str) -> Result<Lexed> {
    let chars: Vec<(usize, char)> = sql.char_indices().collect();
    let mut out = Lexed { tokens: Vec::new(), notices: Vec::new() };
    let mut i = 0;
    let n = chars.len();
    let at = |i: usize| chars.get(i).map(|c| c.1);
    let text_from = |a: usize, b: usize| -> String {
        let s = chars.get(a).map_or(sql.len(), |c| c.0);
        let e = chars.get(b).map_or(sql.len(), |c| c.0);
        sql[s..e].to_owned()
    };
    while i < n {
        let c = chars[i].1;
        let start = i;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c == '-' && at(i + 1) == Some('-') {
            while i < n && chars[i].1 != '\n' {
                i += 1;
            }
            continue;
        }
        if c == '/' && at(i + 1) == Some('*') {
            let mut depth = 0;
            loop {
                if i >= n {
                    return Err(Error::syntax(format!(
                        "unterminated /* comment at or near \"{}\"",
                        text_from(start, n)
                    ))
                    .at(start + 1));
                }
                if chars[i].1 == '/' && at(i + 1) == Some('*') {
                    depth += 1;
                    i += 2;
                } else if chars[i].1 == '*' && at(i + 1) == Some('/') {
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
        let tok = if (c == 'e' || c == 'E') && at(i + 1) == Some('\'') {
            i += 1;
            let (s, next) = quoted(&chars, i, '\'', true).map_err(|_| unterminated_string(&text_from(start, n), start))?;
            i = next;
            Tok::Str(utf8(s).map_err(|e| e.at(start + 1))?)
        } else if c == '\'' {
            let (s, next) = quoted(&chars, i, '\'', false).map_err(|_| unterminated_string(&text_from(start, n), start))?;
            i = next;
            Tok::Str(utf8(s)?)
        } else if c == '"' {
            let (s, next) = quoted(&chars, i, '"', false).map_err(|_| {
                Error::syntax(format!("unterminated quoted identifier at or near \"{}\"", text_from(start, n))).at(start + 1)
            })?;
            let s = utf8(s)?;
            i = next;
            if s.is_empty() {
                return Err(Error::syntax("zero-length delimited identifier at or near \"\"\"\"").at(start + 1));
            }
            Tok::Quoted(truncate_ident(s, &mut out.notices))
        } else if c == '$' && dollar_tag(&chars, i).is_some() {
            let tag_end = dollar_tag(&chars, i).expect("checked");
            let tag: Vec<char> = chars[i..tag_end].iter().map(|c| c.1).collect();
            let mut j = tag_end;
            let body_start = j;
            loop {
                if j >= n {
                    return Err(Error::syntax(format!(
                        "unterminated dollar-quoted string at or near \"{}\"",
                        text_from(start, n)
                    ))
                    .at(start + 1));
                }
                if chars[j..].iter().map(|c| c.1).take(tag.len()).eq(tag.iter().copied()) {
                    break;
                }
                j += 1;
            }
            let body = text_from(body_start, j);
            i = j + tag.len();
            Tok::Str(body)
        } else if c.is_alphabetic() || c == '_' {
            while i < n && (chars[i].1.is_alphanumeric() || chars[i].1 == '_' || chars[i].1 == '$') {
                i += 1;
            }
            let word: String = text_from(start, i).chars().map(|c| c.to_ascii_lowercase()).collect();
            Tok::Word(truncate_ident(word, &mut out.notices))
        } else if c.is_ascii_digit() || (c == '.' && at(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            let mut seen_dot = false;
            let mut seen_exp = false;
            while i < n {
                let d = chars[i].1;
                if d.is_ascii_digit() {
                    i += 1;
                } else if d == '.' && !seen_dot && !seen_exp && at(i + 1) != Some('.') {
                    seen_dot = true;
                    i += 1;
                } else if (d == 'e' || d == 'E') && !seen_exp && at(i + 1).is_some_and(|x| x.is_ascii_digit() || x == '+' || x == '-') {
                    seen_exp = true;
                    i += 2;
                } else {
                    break;
                }
            }
            let t = text_from(start, i);
            if seen_dot || seen_exp {
                Tok::Num(t)
            } else {
                Tok::Int(t)
            }
        } else {
            i += 1;
            let two = |a: char| at(i) == Some(a);
            match c {
                '|' if two('|') => {
                    i += 1;
                    Tok::Op("||".into())
                }
                ':' if two(':') => {
                    i += 1;
                    Tok::Op("::".into())
                }
                ',' | ';' | '(' | ')' | '*' | '.' | '=' | '+' | '-' | '<' | '>' | '[' | ']' | '/' | '%' | ':' | '|' | '!' | '~' | '^' | '&' | '@' | '#' | '?' => {
                    Tok::Op(c.to_string())
                }
                _ => {
                    return Err(Error::syntax(format!("syntax error at or near \"{c}\"")).at(start + 1));
                }
            }
        };
        out.tokens.push(Token { tok, pos: start + 1, text: text_from(start, i) });
    }
    Ok(out)
}

fn unterminated_string(rest: &str, start: usize) -> Error {
    Error::syntax(format!("unterminated quoted string at or near \"{rest}\"")).at(start + 1)
}

/// Reads a quoted string starting at the opening quote; a doubled quote stands for one. The result
/// is bytes: `\\x` and octal escapes of an `E'…'` string make single bytes, as in PostgreSQL, so
/// `E'\\xc3\\xa9'` is `é` and `E'\\xff'` is refused by [`utf8`].
fn quoted(chars: &[(usize, char)], open: usize, q: char, escapes: bool) -> std::result::Result<(Vec<u8>, usize), ()> {
    let mut s = Vec::new();
    let mut i = open + 1;
    let mut buf = [0u8; 4];
    while i < chars.len() {
        let c = chars[i].1;
        if c == q {
            if chars.get(i + 1).map(|c| c.1) == Some(q) {
                s.extend_from_slice(q.encode_utf8(&mut buf).as_bytes());
                i += 2;
                continue;
            }
            return Ok((s, i + 1));
        }
        if escapes && c == '\\' && i + 1 < chars.len() {
            let used = escape(&chars[i + 1..], &mut s);
            i += 1 + used;
            continue;
        }
        s.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        i += 1;
    }
    Err(())
}

/// The text of a string literal, or PostgreSQL's error for bytes that are not UTF-8.
fn utf8(bytes: Vec<u8>) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        let bad = &e.as_bytes()[e.utf8_error().valid_up_to()..];
        let len = e.utf8_error().error_len().unwrap_or(bad.len());
        let shown: Vec<String> = bad[..len].iter().map(|b| format!("0x{b:02x}")).collect();
        Error::new(ErrorKind::InvalidArgument, "22021", format!("invalid byte sequence for encoding \"UTF8\": {}", shown.join(" ")))
    })
}

/// One backslash escape of an `E'…'` string (the character after the backslash onwards): appends
/// its bytes to `out` and returns how many characters it used.
fn escape(rest: &[(usize, char)], out: &mut Vec<u8>) -> usize {
    let c = rest[0].1;
    let hex = |from: usize, max: usize| {
        let digits: String = rest[from..].iter().map(|c| c.1).take(max).take_while(|c| c.is_ascii_hexdigit()).collect();
        (u32::from_str_radix(&digits, 16).ok(), digits.len())
    };
    let mut push = |ch: char| out.extend_from_slice(ch.encode_utf8(&mut [0u8; 4]).as_bytes());
    match c {
        'b' => push('\u{8}'),
        'f' => push('\u{c}'),
        'n' => push('\n'),
        'r' => push('\r'),
        't' => push('\t'),
        'x' => match hex(1, 2) {
            (Some(v), n) if n > 0 => {
                out.push(v as u8);
                return 1 + n;
            }
            _ => push('x'),
        },
        'u' | 'U' => {
            let want = if c == 'u' { 4 } else { 8 };
            match hex(1, want) {
                (Some(v), n) if n == want => {
                    if let Some(ch) = char::from_u32(v) {
                        push(ch);
                    }
                    return 1 + n;
                }
                _ => push(c),
            }
        }
        '0'..='7' => {
            let digits: String = rest.iter().map(|c| c.1).take(3).take_while(|c| ('0'..='7').contains(c)).collect();
            let v = u32::from_str_radix(&digits, 8).unwrap_or(0);
            out.push(v as u8); // PostgreSQL keeps the low eight bits
            return digits.len();
        }
        other => push(other),
    }
    1
}

/// `$tag$` at `i`: returns the index after its closing `$`.
fn dollar_tag(chars: &[(usize, char)], i: usize) -> Option<usize> {
    let mut j = i + 1;
    while j < chars.len() {
        let c = chars[j].1;
        if c == '$' {
            return Some(j + 1);
        }
        let ok = if j == i + 1 { c.is_alphabetic() || c == '_' } else { c.is_alphanumeric() || c == '_' };
        if !ok {
            return None;
        }
        j += 1;
    }
    None
}

/// PostgreSQL truncates identifiers of 64 bytes or more to 63, on a character boundary, with a
/// NOTICE (R1).
fn truncate_ident(s: String, notices: &mut Vec<Notice>) -> String {
    if s.len() <= MAX_CHANNEL_LEN {
        return s;
    }
    let mut end = MAX_CHANNEL_LEN;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    let short = s[..end].to_owned();
    notices.push(Notice::new(
        Severity::Notice,
        "42622",
        format!("identifier \"{s}\" will be truncated to \"{short}\""),
    ));
    short
}
