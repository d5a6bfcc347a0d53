//! psql's variables: `-v NAME=VALUE`, `\set`, `\unset`, their interpolation into SQL and
//! meta-command arguments (`:name`, `:'name'` as a literal, `:"name"` as an identifier), and the
//! Boolean ones that steer the shell (`ON_ERROR_STOP`).

use std::collections::BTreeMap;

pub struct Vars {
    values: BTreeMap<String, String>,
}

/// Variables psql gives a Boolean meaning: an empty value means `on`, unsetting means `off`, and
/// anything but a Boolean is refused.
const BOOLEANS: [&str; 1] = ["ON_ERROR_STOP"];

impl Vars {
    /// The variables a session starts with.
    pub fn new(dir: &str) -> Vars {
        let mut values = BTreeMap::new();
        values.insert("DIR".to_owned(), dir.to_owned());
        values.insert("ON_ERROR_STOP".to_owned(), "off".to_owned());
        Vars { values }
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Sets `name`; an error, in psql's words, leaves it as it was.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), String> {
        if name.is_empty() || !name.chars().all(|c| c.is_alphanumeric() || c == '_') {
            return Err(format!("invalid variable name: \"{name}\""));
        }
        let value = if BOOLEANS.contains(&name) {
            let value = if value.is_empty() { "on" } else { value };
            parse_bool(value)
                .ok_or_else(|| format!("unrecognized value \"{value}\" for \"{name}\": Boolean expected"))?;
            value
        } else {
            value
        };
        self.values.insert(name.to_owned(), value.to_owned());
        Ok(())
    }

    pub fn unset(&mut self, name: &str) {
        if BOOLEANS.contains(&name) {
            self.values.insert(name.to_owned(), "off".to_owned());
        } else {
            self.values.remove(name);
        }
    }

    /// Whether Boolean variable `name` is on.
    pub fn is_on(&self, name: &str) -> bool {
        self.get(name).and_then(parse_bool).unwrap_or(false)
    }

    /// `\set` without arguments: every variable, `NAME = 'value'`, by name.
    pub fn listing(&self) -> String {
        self.values.iter().map(|(k, v)| format!("{k} = '{v}'\n")).collect()
    }

    /// `-v NAME=VALUE` (or `-v NAME` to unset).
    pub fn assign(&mut self, spec: &str) -> Result<(), String> {
        match spec.split_once('=') {
            Some((name, value)) => self.set(name, value),
            None => {
                self.unset(spec);
                Ok(())
            }
        }
    }
}

/// psql's `ParseVariableBool`: `on`, `off`, and any prefix of `true`, `false`, `yes`, `no`, or
/// `1`, `0`, in any case (`o` alone is ambiguous).
pub fn parse_bool(value: &str) -> Option<bool> {
    let v = value.to_ascii_lowercase();
    let prefix_of = |word: &str| !v.is_empty() && word.starts_with(v.as_str());
    if prefix_of("true") || prefix_of("yes") || v == "1" || (v.len() >= 2 && prefix_of("on")) {
        Some(true)
    } else if prefix_of("false") || prefix_of("no") || v == "0" || (v.len() >= 2 && prefix_of("off")) {
        Some(false)
    } else {
        None
    }
}

/// Where the SQL being read is, across lines: inside a quoted string or identifier, or a block
/// comment, nothing is interpolated.
#[derive(Default)]
pub struct SqlState {
    quote: Option<char>,
    comment_depth: usize,
}

/// `line` with its `:name`, `:'name'` and `:"name"` replaced by variables' values, outside
/// quotes and comments; `::` (a cast) and names of unset variables are left as they are.
pub fn interpolate_sql(line: &str, vars: &Vars, state: &mut SqlState) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if state.comment_depth > 0 {
            if c == '*' && next == Some('/') {
                state.comment_depth -= 1;
                out.push_str("*/");
                i += 2;
                continue;
            }
            if c == '/' && next == Some('*') {
                state.comment_depth += 1;
                out.push_str("/*");
                i += 2;
                continue;
            }
        } else if let Some(q) = state.quote {
            if c == q {
                state.quote = None;
            }
        } else if c == '\'' || c == '"' {
            state.quote = Some(c);
        } else if c == '-' && next == Some('-') {
            out.extend(&chars[i..]);
            break;
        } else if c == '/' && next == Some('*') {
            state.comment_depth = 1;
            out.push_str("/*");
            i += 2;
            continue;
        } else if c == ':' {
            if next == Some(':') {
                out.push_str("::");
                i += 2;
                continue;
            }
            if let Some((text, used)) = variable_at(&chars[i..], vars) {
                out.push_str(&text);
                i += used;
                continue;
            }
        }
        out.push(c);
        i += 1;
    }
    out
}

/// The replacement for a reference starting at `s[0] == ':'`, and how many characters it spans:
/// the value, as a literal or an identifier; `:'name'` and `:"name"` of an unset variable stay as
/// written (so that their quotes are not read as a string's).
pub fn variable_at(s: &[char], vars: &Vars) -> Option<(String, usize)> {
    let name_len = |from: usize| s[from..].iter().take_while(|c| c.is_alphanumeric() || **c == '_').count();
    match s.get(1) {
        Some(&q @ ('\'' | '"')) => {
            let n = name_len(2);
            if n == 0 || s.get(2 + n) != Some(&q) {
                return None;
            }
            let name: String = s[2..2 + n].iter().collect();
            let text = match vars.get(&name) {
                None => s[..n + 3].iter().collect(),
                Some(value) if q == '\'' => hark::escape_literal(value),
                Some(value) => hark::escape_identifier(value),
            };
            Some((text, n + 3))
        }
        _ => {
            let n = name_len(1);
            if n == 0 {
                return None;
            }
            let name: String = s[1..1 + n].iter().collect();
            Some((vars.get(&name)?.to_owned(), n + 1))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        let mut v = Vars::new("/q");
        v.set("a", "1").unwrap();
        v.set("b", "it's").unwrap();
        v
    }

    #[test]
    fn sql_is_interpolated_outside_quotes_and_comments() {
        let v = vars();
        let mut st = SqlState::default();
        assert_eq!(
            interpolate_sql("SELECT :a, :'b', :\"b\", :nosuch, 1::text, ':a' -- :a", &v, &mut st),
            "SELECT 1, 'it''s', \"it's\", :nosuch, 1::text, ':a' -- :a"
        );
        // A string or a block comment goes on over the next line.
        assert_eq!(interpolate_sql("SELECT 'x :a", &v, &mut st), "SELECT 'x :a");
        assert_eq!(interpolate_sql(":a' /* :a", &v, &mut st), ":a' /* :a");
        assert_eq!(interpolate_sql("/* :a */ */ :a", &v, &mut st), "/* :a */ */ 1");
    }

    #[test]
    fn booleans_as_psql_reads_them() {
        for t in ["on", "ON", "t", "true", "y", "yes", "1"] {
            assert_eq!(parse_bool(t), Some(true), "{t}");
        }
        for f in ["off", "of", "f", "FALSE", "n", "no", "0"] {
            assert_eq!(parse_bool(f), Some(false), "{f}");
        }
        for x in ["o", "", "maybe", "2"] {
            assert_eq!(parse_bool(x), None, "{x}");
        }
        let mut v = vars();
        assert_eq!(
            v.set("ON_ERROR_STOP", "maybe").unwrap_err(),
            "unrecognized value \"maybe\" for \"ON_ERROR_STOP\": Boolean expected"
        );
        assert!(!v.is_on("ON_ERROR_STOP"));
        v.set("ON_ERROR_STOP", "").unwrap();
        assert_eq!(v.get("ON_ERROR_STOP"), Some("on"));
        v.unset("ON_ERROR_STOP");
        assert_eq!(v.get("ON_ERROR_STOP"), Some("off"));
    }
}
