//! Values of `SELECT` expressions: PostgreSQL's types as far as the dialect needs them, their
//! text output, casts, and the column names PostgreSQL would give.

use super::parser::{CastChain, Expr};
use crate::error::{Error, ErrorKind, Result};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    /// A string literal not yet given a type (PostgreSQL's `unknown`).
    Unknown(String),
    Text(String),
    Int(i64),
    Numeric(String),
    Bool(bool),
    Float(f64),
    /// `real`: kept in single precision, as its text output shows.
    Float4(f32),
    Json(String),
    Void,
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null | Value::Unknown(_) => "unknown",
            Value::Text(_) => "text",
            Value::Int(v) if i32::try_from(*v).is_ok() => "integer",
            Value::Int(_) => "bigint",
            Value::Numeric(_) => "numeric",
            Value::Bool(_) => "boolean",
            Value::Float(_) => "double precision",
            Value::Float4(_) => "real",
            Value::Json(_) => "json",
            Value::Void => "void",
        }
    }

    /// PostgreSQL's name of the result column's type (`typname`): an untyped literal in a
    /// `SELECT` list resolves to `text`, as in PostgreSQL.
    pub fn pg_type(&self) -> &'static str {
        match self {
            Value::Null | Value::Unknown(_) | Value::Text(_) => "text",
            Value::Int(v) if i32::try_from(*v).is_ok() => "int4",
            Value::Int(_) => "int8",
            Value::Numeric(_) => "numeric",
            Value::Bool(_) => "bool",
            Value::Float(_) => "float8",
            Value::Float4(_) => "float4",
            Value::Json(_) => "json",
            Value::Void => "void",
        }
    }

    /// Whether the value may be passed where `text` is expected without an explicit cast.
    pub fn is_textual(&self) -> bool {
        matches!(self, Value::Null | Value::Unknown(_) | Value::Text(_))
    }

    /// The text output of the value (`None` for SQL NULL).
    pub fn output(&self) -> Option<String> {
        match self {
            Value::Null => None,
            Value::Unknown(s) | Value::Text(s) | Value::Numeric(s) | Value::Json(s) => Some(s.clone()),
            Value::Int(v) => Some(v.to_string()),
            Value::Bool(b) => Some(if *b { "t" } else { "f" }.into()),
            Value::Float(f) => Some(float8_out(*f)),
            Value::Float4(f) => Some(float4_out(*f)),
            Value::Void => Some(String::new()),
        }
    }

    /// [`output`](Value::output) without copying a string the value already holds.
    pub fn into_output(self) -> Option<String> {
        match self {
            Value::Unknown(s) | Value::Text(s) | Value::Numeric(s) | Value::Json(s) => Some(s),
            v => v.output(),
        }
    }
}

/// Values of literals.
pub fn literal(e: &Expr) -> Result<Option<Value>> {
    Ok(Some(match e {
        Expr::Str(s) => Value::Unknown(s.clone()),
        Expr::Int(s) => match s.parse::<i64>() {
            Ok(v) => Value::Int(v),
            Err(_) => Value::Numeric(numeric_out(s)),
        },
        Expr::Num(s) => {
            // PostgreSQL refuses exponents beyond ±1000 (NUMERIC_MAX_PRECISION); without the limit
            // printing `1e999999999999` would try to allocate that many digits.
            let exp_ok = match s.find(['e', 'E']) {
                Some(i) => s[i + 1..].parse::<i64>().is_ok_and(|x| x.abs() <= 1000),
                None => true,
            };
            if !exp_ok {
                return Err(Error::new(
                    ErrorKind::InvalidArgument,
                    "22P02",
                    format!("invalid input syntax for type numeric: \"{s}\""),
                ));
            }
            Value::Numeric(numeric_out(s))
        }
        Expr::Null => Value::Null,
        Expr::Bool(b) => Value::Bool(*b),
        _ => return Ok(None),
    }))
}

/// `a || b`: text concatenation; NULL if either side is NULL; at least one side must be text.
pub fn concat(a: Value, b: Value, pos: usize) -> Result<Value> {
    if !a.is_textual() && !b.is_textual() {
        return Err(Error::new(
            ErrorKind::Syntax,
            "42883",
            format!("operator does not exist: {} || {}", a.type_name(), b.type_name()),
        )
        .with_hint("No operator matches the given name and argument types. You might need to add explicit type casts.")
        .at(pos));
    }
    // The left side is moved, not copied, so a long chain grows one string instead of copying it
    // at every step.
    match (a.into_output(), b.into_output()) {
        (Some(x), Some(y)) => Ok(Value::Text(x + &y)),
        _ => Ok(Value::Null),
    }
}

/// PostgreSQL's canonical name of a type as written in a cast (the column name it gives).
pub fn canonical_type(ty: &str) -> Option<&'static str> {
    Some(match ty {
        "text" => "text",
        "varchar" | "character varying" => "varchar",
        "int" | "integer" | "int4" => "int4",
        "bigint" | "int8" => "int8",
        "smallint" | "int2" => "int2",
        "bool" | "boolean" => "bool",
        "numeric" | "decimal" => "numeric",
        "float8" | "float" | "double precision" => "float8",
        "real" | "float4" => "float4",
        "json" => "json",
        "jsonb" => "jsonb",
        _ => return None,
    })
}

/// Where a cast's parts are in the statement, for its errors' positions.
#[derive(Clone, Copy)]
pub struct CastAt {
    /// The type name.
    pub ty: usize,
    /// The `::`.
    pub op: usize,
    /// The value cast, when it is written in the statement (not a parameter).
    pub operand: Option<usize>,
}

/// `value::ty`. Errors carry PostgreSQL's positions: an unknown type at its name, an impossible
/// cast at the `::`, bad input from an untyped literal at the literal (it is parsed when the
/// statement is); a value of a real type converted at run time gives none.
pub fn cast(v: Value, ty: &str, at: CastAt) -> Result<Value> {
    let Some(canon) = canonical_type(ty) else {
        return Err(Error::new(ErrorKind::Syntax, "42704", format!("type \"{ty}\" does not exist")).at(at.ty));
    };
    if v == Value::Null {
        return Ok(Value::Null);
    }
    let from_text = matches!(v, Value::Unknown(_) | Value::Text(_) | Value::Json(_));
    let literal = matches!(v, Value::Unknown(_));
    let text = v.output().unwrap_or_default();
    let input_error = |e: Error| match at.operand {
        Some(pos) if literal => e.at(pos),
        _ => e,
    };
    let bad_input = |tyname: &str| {
        input_error(Error::new(
            ErrorKind::InvalidArgument,
            "22P02",
            format!("invalid input syntax for type {tyname}: \"{text}\""),
        ))
    };
    let out_of_range = |tyname: &str| {
        input_error(Error::new(
            ErrorKind::InvalidArgument,
            "22003",
            format!("\"{}\" is out of range for type {tyname}", text.trim()),
        ))
    };
    let cannot = |to: &str| {
        Error::new(ErrorKind::Syntax, "42846", format!("cannot cast type {} to {to}", v.type_name())).at(at.op)
    };
    Ok(match canon {
        "text" | "varchar" => Value::Text(text),
        "json" | "jsonb" => {
            if !from_text {
                return Err(cannot("json"));
            }
            Value::Json(text)
        }
        "int4" | "int8" | "int2" => {
            let (name, min, max) = match canon {
                "int4" => ("integer", i32::MIN as i64, i32::MAX as i64),
                "int2" => ("smallint", i16::MIN as i64, i16::MAX as i64),
                _ => ("bigint", i64::MIN, i64::MAX),
            };
            let n = match &v {
                Value::Int(n) => *n,
                Value::Float(f) => f.round() as i64,
                Value::Float4(f) => f.round() as i64,
                Value::Numeric(s) => s.parse::<f64>().map_err(|_| bad_input(name))?.round() as i64,
                Value::Bool(b) if canon == "int4" => *b as i64,
                _ if from_text => text.trim().parse::<i64>().map_err(|_| bad_input(name))?,
                _ => return Err(cannot(name)),
            };
            if n < min || n > max {
                return Err(if from_text {
                    input_error(Error::new(
                        ErrorKind::InvalidArgument,
                        "22003",
                        format!("value \"{}\" is out of range for type {name}", text.trim()),
                    ))
                } else {
                    Error::new(ErrorKind::InvalidArgument, "22003", format!("{name} out of range"))
                });
            }
            Value::Int(n)
        }
        "bool" => match &v {
            Value::Bool(b) => Value::Bool(*b),
            Value::Int(n) => Value::Bool(*n != 0),
            _ if from_text => match text.trim().to_ascii_lowercase().as_str() {
                "t" | "true" | "y" | "yes" | "on" | "1" => Value::Bool(true),
                "f" | "false" | "n" | "no" | "off" | "0" => Value::Bool(false),
                _ => return Err(bad_input("boolean")),
            },
            _ => return Err(cannot("boolean")),
        },
        "numeric" => match &v {
            Value::Int(n) => Value::Numeric(n.to_string()),
            Value::Numeric(s) => Value::Numeric(s.clone()),
            Value::Float(f) => Value::Numeric(float8_out(*f)),
            Value::Float4(f) => Value::Numeric(float4_out(*f)),
            _ if from_text => {
                let t = text.trim();
                if t.parse::<f64>().is_err() {
                    return Err(bad_input("numeric"));
                }
                Value::Numeric(numeric_out(t))
            }
            _ => return Err(cannot("numeric")),
        },
        "float4" => {
            let f = match &v {
                Value::Int(n) => *n as f32,
                Value::Float(f) => *f as f32,
                Value::Float4(f) => *f,
                Value::Numeric(_) => text.parse().map_err(|_| bad_input("real"))?,
                _ if from_text => text.trim().parse().map_err(|_| bad_input("real"))?,
                _ => return Err(cannot("real")),
            };
            if f.is_infinite() && !text.trim().to_ascii_lowercase().contains("inf") {
                return Err(out_of_range("real"));
            }
            Value::Float4(f)
        }
        _ => {
            // float8
            let f = match &v {
                Value::Int(n) => *n as f64,
                Value::Float(f) => *f,
                Value::Float4(f) => *f as f64,
                Value::Numeric(s) => s.parse().map_err(|_| bad_input("double precision"))?,
                _ if from_text => text.trim().parse().map_err(|_| bad_input("double precision"))?,
                _ => return Err(cannot("double precision")),
            };
            if f.is_infinite()
                && matches!(v, Value::Numeric(_) | Value::Unknown(_) | Value::Text(_))
                && !text.to_ascii_lowercase().contains("inf")
            {
                return Err(out_of_range("double precision"));
            }
            Value::Float(f)
        }
    })
}

/// The casts of a chain applied in turn (`v::a::b`).
pub fn cast_chain(mut v: Value, chain: &CastChain) -> Result<Value> {
    for c in &chain.casts {
        v = cast(v, &c.ty, CastAt { ty: c.pos, op: c.op_pos, operand: chain.operand_pos })?;
    }
    Ok(v)
}

/// The column name PostgreSQL gives an expression (FigureColname), with its strength.
pub fn column_name(e: &Expr) -> (String, u8) {
    match e {
        Expr::Call { name, .. } => (name.clone(), 2),
        Expr::Cast(operand, chain) => {
            // The name of a function under the casts (`(f()::a)::b`), else the outermost type.
            let mut under = operand;
            while let Expr::Cast(inner, _) = &**under {
                under = inner;
            }
            match &**under {
                Expr::Call { name, .. } => (name.clone(), 2),
                _ => {
                    let ty = chain.last_type();
                    (canonical_type(ty).unwrap_or(ty).to_owned(), 1)
                }
            }
        }
        Expr::Bool(_) => ("bool".into(), 1),
        _ => ("?column?".into(), 0),
    }
}

/// A numeric literal as PostgreSQL prints it: digits kept, exponent applied, scale preserved.
pub fn numeric_out(lit: &str) -> String {
    let (neg, lit) = match lit.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, lit),
    };
    let (mant, exp) = match lit.find(['e', 'E']) {
        Some(i) => (&lit[..i], lit[i + 1..].parse::<i64>().unwrap_or(0)),
        None => (lit, 0),
    };
    let (int_part, frac_part) = match mant.find('.') {
        Some(i) => (&mant[..i], &mant[i + 1..]),
        None => (mant, ""),
    };
    let digits: String = format!("{int_part}{frac_part}");
    let point = int_part.len() as i64 + exp; // digits before the point
    let scale = (frac_part.len() as i64 - exp).max(0) as usize;
    let mut s = String::new();
    if point <= 0 {
        s.push('0');
    } else {
        let ip = point as usize;
        if ip <= digits.len() {
            s.push_str(&digits[..ip]);
        } else {
            s.push_str(&digits);
            s.push_str(&"0".repeat(ip - digits.len()));
        }
    }
    let s_int = s.trim_start_matches('0');
    let mut out = if s_int.is_empty() { "0".to_owned() } else { s_int.to_owned() };
    if scale > 0 {
        let mut frac = String::new();
        for k in 0..scale {
            let idx = point + k as i64;
            let d = if idx < 0 || idx as usize >= digits.len() { '0' } else { digits.as_bytes()[idx as usize] as char };
            frac.push(d);
        }
        out.push('.');
        out.push_str(&frac);
    }
    if neg && out.chars().any(|c| c.is_ascii_digit() && c != '0') {
        out.insert(0, '-');
    }
    out
}

/// float8 output as PostgreSQL 12+ prints it: the shortest text that reads back exactly, in
/// exponent form below 1e-4 or from 1e15 on.
pub fn float8_out(f: f64) -> String {
    // Shortest round-trip digits, e.g. "1.9073486328125e-6"; plain notation up to DBL_DIG.
    float_out(f.is_nan(), f.is_infinite(), f == 0.0, f.is_sign_negative(), format!("{f:e}"), format!("{f}"), 15)
}

/// PostgreSQL's `real` output: the shortest digits that read back as the same f32, in plain
/// notation for exponents below FLT_DIG (6), e.g. `1.234567e+06`.
pub fn float4_out(f: f32) -> String {
    float_out(f.is_nan(), f.is_infinite(), f == 0.0, f.is_sign_negative(), format!("{f:e}"), format!("{f}"), 6)
}

fn float_out(nan: bool, inf: bool, zero: bool, negative: bool, sci: String, plain: String, digits: i32) -> String {
    if nan {
        return "NaN".into();
    }
    if inf {
        return if negative { "-Infinity".into() } else { "Infinity".into() };
    }
    if zero {
        return if negative { "-0".into() } else { "0".into() };
    }
    let (mant, exp) = sci.split_once('e').expect("{:e} has an exponent");
    let exp: i32 = exp.parse().expect("integer exponent");
    if !(-4..digits).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mant}e{sign}{:02}", exp.abs());
    }
    plain
}
