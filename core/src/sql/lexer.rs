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
    /// A parameter `$n`: its number, bound at execution to the n-th value passed in.
    Param(usize),
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

/// What one step of the scanner found (PostgreSQL's scan.l, reduced to the dialect's needs).
/// Both [`lex`] and the statement splitter (`split.rs`) walk text with [`scan`], so that they
/// agree on every quoting rule: a semicolon inside a string, a dollar quote or a comment is never
/// taken for the end of a statement.
pub(crate) enum Lexeme {
    Space,
    Comment,
    /// A `'…'` or `E'…'` string, decoded (escapes applied) but not yet checked as UTF-8.
    Str(Vec<u8>),
    /// A `"quoted"` identifier, not yet checked.
    Quoted(Vec<u8>),
    /// A `$tag$…$tag$` string: the body lies between these character indexes.
    Dollar(usize, usize),
    Word,
    Number {
        decimal: bool,
    },
    /// A parameter, `$` and digits.
    Param,
    /// A parameter with letters right after its digits (`$1abc`), an error as in PostgreSQL.
    ParamJunk,
    /// Punctuation or an operator: `||` and `::`, or one character.
    Op,
    /// A character the dialect has no use for.
    Unknown(char),
}

/// A string, quoted identifier, dollar quote or comment that the text ends inside of.
#[derive(Clone, Copy)]
pub(crate) enum Unterminated {
    Comment,
    Str,
    Quoted,
    Dollar,
}

/// Scans the lexeme starting at character `i` of `chars` (`i < chars.len()`): what it is and the
/// index just past it.
pub(crate) fn scan(chars: &[(usize, char)], i: usize) -> std::result::Result<(Lexeme, usize), Unterminated> {
    let n = chars.len();
    let at = |i: usize| chars.get(i).map(|c| c.1);
    let c = chars[i].1;
    if c.is_whitespace() {
        return Ok((Lexeme::Space, i + 1));
    }
    if c == '-' && at(i + 1) == Some('-') {
        let mut j = i;
        while j < n && chars[j].1 != '\n' {
            j += 1;
        }
        return Ok((Lexeme::Comment, j));
    }
    if c == '/' && at(i + 1) == Some('*') {
        // Block comments nest, as in PostgreSQL; counted, not recursed into.
        let (mut j, mut depth) = (i, 0usize);
        loop {
            if j >= n {
                return Err(Unterminated::Comment);
            }
            if chars[j].1 == '/' && at(j + 1) == Some('*') {
                depth += 1;
                j += 2;
            } else if chars[j].1 == '*' && at(j + 1) == Some('/') {
                depth -= 1;
                j += 2;
                if depth == 0 {
                    return Ok((Lexeme::Comment, j));
                }
            } else {
                j += 1;
            }
        }
    }
    if (c == 'e' || c == 'E') && at(i + 1) == Some('\'') {
        let (s, next) = quoted(chars, i + 1, '\'', true).map_err(|_| Unterminated::Str)?;
        return Ok((Lexeme::Str(s), next));
    }
    if c == '\'' {
        let (s, next) = quoted(chars, i, '\'', false).map_err(|_| Unterminated::Str)?;
        return Ok((Lexeme::Str(s), next));
    }
    if c == '"' {
        let (s, next) = quoted(chars, i, '"', false).map_err(|_| Unterminated::Quoted)?;
        return Ok((Lexeme::Quoted(s), next));
    }
    if c == '$' {
        if let Some(tag_end) = dollar_tag(chars, i) {
            let tag_len = tag_end - i;
            let mut j = tag_end;
            loop {
                if j >= n {
                    return Err(Unterminated::Dollar);
                }
                if chars[j..].iter().map(|c| c.1).take(tag_len).eq(chars[i..tag_end].iter().map(|c| c.1)) {
                    return Ok((Lexeme::Dollar(tag_end, j), j + tag_len));
                }
                j += 1;
            }
        }
        if at(i + 1).is_some_and(|d| d.is_ascii_digit()) {
            let mut j = i + 1;
            while j < n && chars[j].1.is_ascii_digit() {
                j += 1;
            }
            if j < n && (chars[j].1.is_alphanumeric() || chars[j].1 == '_') {
                while j < n && (chars[j].1.is_alphanumeric() || chars[j].1 == '_' || chars[j].1 == '$') {
                    j += 1;
                }
                return Ok((Lexeme::ParamJunk, j));
            }
            return Ok((Lexeme::Param, j));
        }
    }
    if c.is_alphabetic() || c == '_' {
        let mut j = i;
        while j < n && (chars[j].1.is_alphanumeric() || chars[j].1 == '_' || chars[j].1 == '$') {
            j += 1;
        }
        return Ok((Lexeme::Word, j));
    }
    if c.is_ascii_digit() || (c == '.' && at(i + 1).is_some_and(|d| d.is_ascii_digit())) {
        let (mut j, mut seen_dot, mut seen_exp) = (i, false, false);
        while j < n {
            let d = chars[j].1;
            if d.is_ascii_digit() {
                j += 1;
            } else if d == '.' && !seen_dot && !seen_exp && at(j + 1) != Some('.') {
                seen_dot = true;
                j += 1;
            } else if (d == 'e' || d == 'E')
                && !seen_exp
                && at(j + 1).is_some_and(|x| x.is_ascii_digit() || x == '+' || x == '-')
            {
                seen_exp = true;
                j += 2;
            } else {
                break;
            }
        }
        return Ok((Lexeme::Number { decimal: seen_dot || seen_exp }, j));
    }
    let two = |a: char| at(i + 1) == Some(a);
    match c {
        '|' if two('|') => Ok((Lexeme::Op, i + 2)),
        ':' if two(':') => Ok((Lexeme::Op, i + 2)),
        ',' | ';' | '(' | ')' | '*' | '.' | '=' | '+' | '-' | '<' | '>' | '[' | ']' | '/' | '%' | ':' | '|' | '!'
        | '~' | '^' | '&' | '@' | '#' | '?' => Ok((Lexeme::Op, i + 1)),
        other => Ok((Lexeme::Unknown(other), i + 1)),
    }
}

/// Splits `sql` into tokens. Comments (`--`, nested `/* */`) are skipped.
pub fn lex(sql: &str) -> Result<Lexed> {
    let chars: Vec<(usize, char)> = sql.char_indices().collect();
    let mut out = Lexed { tokens: Vec::new(), notices: Vec::new() };
    let n = chars.len();
    let text_from = |a: usize, b: usize| -> String {
        let s = chars.get(a).map_or(sql.len(), |c| c.0);
        let e = chars.get(b).map_or(sql.len(), |c| c.0);
        sql[s..e].to_owned()
    };
    let mut i = 0;
    while i < n {
        let start = i;
        let (lexeme, next) = scan(&chars, i).map_err(|u| {
            let rest = text_from(start, n);
            match u {
                Unterminated::Comment => Error::syntax(format!("unterminated /* comment at or near \"{rest}\"")),
                Unterminated::Str => Error::syntax(format!("unterminated quoted string at or near \"{rest}\"")),
                Unterminated::Quoted => Error::syntax(format!("unterminated quoted identifier at or near \"{rest}\"")),
                Unterminated::Dollar => {
                    Error::syntax(format!("unterminated dollar-quoted string at or near \"{rest}\""))
                }
            }
            .at(start + 1)
        })?;
        i = next;
        let tok = match lexeme {
            Lexeme::Space | Lexeme::Comment => continue,
            Lexeme::Str(bytes) => {
                // An E'' string's bad escape is placed at the string, as PostgreSQL places it.
                let e_string = matches!(chars[start].1, 'e' | 'E');
                Tok::Str(utf8(bytes).map_err(|e| if e_string { e.at(start + 1) } else { e })?)
            }
            Lexeme::Quoted(bytes) => {
                let s = utf8(bytes)?;
                if s.is_empty() {
                    return Err(Error::syntax("zero-length delimited identifier at or near \"\"\"\"").at(start + 1));
                }
                Tok::Quoted(truncate_ident(s, &mut out.notices))
            }
            Lexeme::Dollar(a, b) => Tok::Str(text_from(a, b)),
            Lexeme::Word => {
                let word: String = text_from(start, i).chars().map(|c| c.to_ascii_lowercase()).collect();
                Tok::Word(truncate_ident(word, &mut out.notices))
            }
            Lexeme::Number { decimal: true } => Tok::Num(text_from(start, i)),
            Lexeme::Number { decimal: false } => Tok::Int(text_from(start, i)),
            Lexeme::Param => {
                // PostgreSQL keeps parameter numbers in an int.
                let digits = text_from(start + 1, i);
                match digits.parse::<usize>() {
                    Ok(k) if k <= i32::MAX as usize => Tok::Param(k),
                    _ => {
                        return Err(
                            Error::syntax(format!("parameter number too large at or near \"${digits}\"")).at(start + 1)
                        )
                    }
                }
            }
            Lexeme::ParamJunk => {
                return Err(Error::syntax(format!(
                    "trailing junk after parameter at or near \"{}\"",
                    text_from(start, i)
                ))
                .at(start + 1))
            }
            Lexeme::Op => Tok::Op(text_from(start, i)),
            Lexeme::Unknown(c) => return Err(Error::syntax(format!("syntax error at or near \"{c}\"")).at(start + 1)),
        };
        out.tokens.push(Token { tok, pos: start + 1, text: text_from(start, i) });
    }
    Ok(out)
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
        Error::new(
            ErrorKind::InvalidArgument,
            "22021",
            format!("invalid byte sequence for encoding \"UTF8\": {}", shown.join(" ")),
        )
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
