//! Query parameters: Python values as the core's [`hark::Param`], and psycopg's placeholders
//! (`%s`, `%(name)s`) turned into `$n` by the core (on its own lexer: a `%s` inside quotes or a
//! comment is text). The checks of the values against the placeholders, with psycopg's
//! messages, are in `hark/_params.py`.

use crate::errors::IntoPy;
use hark::{Param, Placeholders};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyFloat, PyInt, PyString};

/// A Python value as a parameter: None is NULL; `str` text of no declared type (as psycopg sends
/// it); `bool`, `int` and `float` keep their type (`boolean`, `integer`/`bigint`, `double
/// precision`); an `int` beyond 64 bits goes as its decimal text. Anything else is refused,
/// naming its type, as psycopg refuses a type it cannot adapt.
pub(crate) fn to_param(v: &Bound<'_, PyAny>) -> PyResult<Param> {
    if v.is_none() {
        return Ok(Param::Null);
    }
    if let Ok(s) = v.cast::<PyString>() {
        return Ok(Param::Text(s.to_str()?.to_owned()));
    }
    // bool before int: Python's bool is an int.
    if let Ok(b) = v.cast::<PyBool>() {
        return Ok(Param::Bool(b.is_true()));
    }
    if let Ok(i) = v.cast::<PyInt>() {
        return Ok(match i.extract::<i64>() {
            Ok(n) => Param::Int(n),
            Err(_) => Param::Text(i.str()?.to_str()?.to_owned()),
        });
    }
    if let Ok(f) = v.cast::<PyFloat>() {
        return Ok(Param::Float(f.value()));
    }
    let name = v.get_type().qualname()?;
    Err(PyTypeError::new_err(format!("cannot adapt type '{name}' using placeholder '%s' (format: AUTO)")))
}

/// `(text, written, names)`: the query with `$n` for psycopg's placeholders, how many
/// placeholders it has (a name used twice counts twice), and the names of its named ones in `$n`
/// order (None when they are positional).
/// Placeholder mistakes raise `hark.SqlSyntaxError` with psycopg's message.
#[pyfunction]
pub(crate) fn convert_pyformat(query: &str) -> PyResult<(String, usize, Option<Vec<String>>)> {
    let q = hark::convert_pyformat(query).py_err()?;
    let names = match q.placeholders {
        Placeholders::Positional(_) => None,
        Placeholders::Named(names) => Some(names),
    };
    Ok((q.text, q.written, names))
}
