//! hark_exec, hark_exec_params and their result, `hark_query` (libpq's `PQexec`,
//! `PQexecParams` and `PGresult`).

use crate::conn::hark_conn;
use crate::failure::{c_string, empty, text_arg, Failure};
use crate::result::hark_result;
use std::ffi::CString;
use std::os::raw::{c_char, c_int, c_uint};

/// The result of hark_exec: libpq's `PGresult`. Owned by the caller and released with
/// hark_query_clear; independent of the connection (it stays valid after hark_finish). Every
/// string it returns belongs to it and lives until hark_query_clear. It is never modified after
/// hark_exec returns, so it may be read from several threads at once.
pub struct hark_query {
    status: hark_result,
    sqlstate: CString,
    message: CString,
    command: CString,
    columns: Vec<CString>,
    rows: Vec<Vec<Option<CString>>>,
}

impl hark_query {
    fn failed(f: &Failure) -> hark_query {
        hark_query {
            status: f.code,
            sqlstate: c_string(f.sqlstate),
            message: c_string(&f.message),
            command: CString::default(),
            columns: Vec::new(),
            rows: Vec::new(),
        }
    }

    fn succeeded(r: hark::QueryResult) -> hark_query {
        hark_query {
            status: hark_result::HARK_OK,
            sqlstate: c_string("00000"),
            message: CString::default(),
            command: c_string(&r.tag),
            columns: r.columns.iter().map(|c| c_string(c)).collect(),
            rows: r.rows.iter().map(|row| row.iter().map(|v| v.as_deref().map(c_string)).collect()).collect(),
        }
    }

    fn cell(&self, row: c_int, column: c_int) -> Option<&Option<CString>> {
        let row = usize::try_from(row).ok()?;
        let column = usize::try_from(column).ok()?;
        self.rows.get(row)?.get(column)
    }
}

/// Executes SQL text in hark's dialect (`LISTEN ch`, `NOTIFY ch, 'payload'`, `BEGIN`, `COMMIT`,
/// `SELECT pg_notify(…)`, `SELECT pg_listening_channels()`, …; several statements separated by
/// `;` run as one implicit transaction) and returns the result of the last statement, like
/// `PQexec`. Always returns a result unless `conn` is NULL (or hark failed internally): check
/// hark_query_status. On failure the connection's hark_error_message is set too. Notifications
/// that arrived meanwhile wait in hark_notifies.
#[no_mangle]
pub unsafe extern "C" fn hark_exec(conn: *mut hark_conn, sql: *const c_char) -> *mut hark_query {
    ffi_boundary!(std::ptr::null_mut(), {
        // SAFETY: NULL or a live connection that no other thread is using (contract).
        let Some(c) = (unsafe { conn.as_mut() }) else { return std::ptr::null_mut() };
        let q = match c.run(|s| Ok(s.execute(text_arg(sql, "sql")?)?)) {
            Ok(r) => hark_query::succeeded(r),
            Err(f) => hark_query::failed(&f),
        };
        Box::into_raw(Box::new(q))
    })
}

/// Executes one statement with parameters, like libpq's `PQexecParams` (same arguments, same
/// order): `$1` … `$n_params` in `command` are bound to `param_values[0]` … as values, never
/// pasted into the text, so a value may hold anything (quotes, backslashes, `$$`, `--`, `;`).
/// A NULL entry of `param_values` is SQL NULL; `param_values` may be NULL when `n_params` is 0.
/// Values are text of no declared type, as libpq sends them with no `param_types`: text in
/// `pg_notify($1, $2)`, read by a cast in `$1::int`. hark supports text only, so `param_types`
/// must be NULL or all 0 (unspecified), `param_formats` NULL or all 0 (text), and
/// `result_format` 0; anything else fails with HARK_ERR_INVALID_ARGUMENT. `param_lengths` is
/// ignored, as libpq ignores it for text values (each value ends at its NUL).
///
/// PostgreSQL's errors, as PQexecParams gets them: `command` holds one statement only (42601
/// `cannot insert multiple commands into a prepared statement`); `n_params` must be the highest
/// `$n` (08P01 `bind message supplies 1 parameters, but prepared statement "" requires 2`); a
/// `$k` below it that the statement does not use fails with 42P18 `could not determine data type
/// of parameter $k`, and `$0` with 42P02 `there is no parameter $0`; a value that is not UTF-8
/// with 22021. Returns a result as hark_exec does (NULL only for a NULL `conn`).
#[no_mangle]
pub unsafe extern "C" fn hark_exec_params(
    conn: *mut hark_conn,
    command: *const c_char,
    n_params: c_int,
    param_types: *const c_uint,
    param_values: *const *const c_char,
    param_lengths: *const c_int,
    param_formats: *const c_int,
    result_format: c_int,
) -> *mut hark_query {
    let _ = param_lengths;
    ffi_boundary!(std::ptr::null_mut(), {
        // SAFETY: NULL or a live connection that no other thread is using (contract).
        let Some(c) = (unsafe { conn.as_mut() }) else { return std::ptr::null_mut() };
        let q = match c.run(|s| {
            let sql = text_arg(command, "command")?;
            // SAFETY: each array is NULL or holds n_params entries (contract).
            let params = unsafe { params(n_params, param_types, param_values, param_formats, result_format) }?;
            Ok(s.execute_params(sql, &params)?)
        }) {
            Ok(r) => hark_query::succeeded(r),
            Err(f) => hark_query::failed(&f),
        };
        Box::into_raw(Box::new(q))
    })
}

/// The values of hark_exec_params, after its checks on the arrays.
///
/// # Safety
/// Each array pointer is NULL or points to `n` entries; each value is NULL or NUL-terminated.
unsafe fn params(
    n: c_int,
    types: *const c_uint,
    values: *const *const c_char,
    formats: *const c_int,
    result_format: c_int,
) -> Result<Vec<hark::Param>, Failure> {
    let unsupported = |what: String| Failure::new(crate::result::hark_result::HARK_ERR_INVALID_ARGUMENT, "22023", what);
    let n = usize::try_from(n).map_err(|_| unsupported(format!("n_params must not be negative (got {n})")))?;
    if result_format != 0 {
        return Err(unsupported(format!(
            "result_format {result_format} is not supported: hark returns text results only (0)"
        )));
    }
    if n > 0 && values.is_null() {
        return Err(Failure::null("param_values"));
    }
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        // SAFETY: a non-NULL array has n entries (contract).
        if !types.is_null() && unsafe { *types.add(i) } != 0 {
            return Err(unsupported(format!(
                "parameter types are not supported: param_types[{i}] must be 0 (unspecified), or param_types NULL"
            )));
        }
        // SAFETY: as above.
        if !formats.is_null() && unsafe { *formats.add(i) } != 0 {
            return Err(unsupported(format!(
                "binary parameters are not supported: param_formats[{i}] must be 0 (text)"
            )));
        }
        // SAFETY: values has n entries, each NULL or NUL-terminated (contract).
        let v = unsafe { *values.add(i) };
        out.push(if v.is_null() {
            hark::Param::Null
        } else {
            // SAFETY: as above.
            hark::Param::Text(unsafe { text_arg(v, &format!("parameter ${}", i + 1)) }?.to_owned())
        });
    }
    Ok(out)
}

/// Frees a result, like `PQclear`. NULL does nothing.
#[no_mangle]
pub unsafe extern "C" fn hark_query_clear(res: *mut hark_query) {
    ffi_boundary!((), {
        if !res.is_null() {
            // SAFETY: a non-NULL res came from hark_exec and is cleared once (contract).
            drop(unsafe { Box::from_raw(res) });
        }
    })
}

/// Borrows a result, or returns `$none` for a NULL `res`.
macro_rules! with_query {
    ($res:expr, $none:expr, |$q:ident| $body:expr) => {
        ffi_boundary!($none, {
            // SAFETY: NULL or a live result from hark_exec (contract).
            match unsafe { $res.as_ref() } {
                None => $none,
                Some($q) => $body,
            }
        })
    };
}

/// `HARK_OK` if the statements ran, otherwise why they failed; HARK_ERR_NULL_PARAMETER for NULL.
#[no_mangle]
pub unsafe extern "C" fn hark_query_status(res: *const hark_query) -> hark_result {
    with_query!(res, hark_result::HARK_ERR_NULL_PARAMETER, |q| q.status)
}

/// PostgreSQL's SQLSTATE: `"00000"` on success, e.g. `"42601"` for a syntax error; `""` for NULL.
#[no_mangle]
pub unsafe extern "C" fn hark_query_sqlstate(res: *const hark_query) -> *const c_char {
    with_query!(res, empty(), |q| q.sqlstate.as_ptr())
}

/// The error message (with DETAIL/HINT lines), or `""` on success or for NULL.
#[no_mangle]
pub unsafe extern "C" fn hark_query_error_message(res: *const hark_query) -> *const c_char {
    with_query!(res, empty(), |q| q.message.as_ptr())
}

/// The command tag of the last statement (`"LISTEN"`, `"NOTIFY"`, `"COMMIT"`, `"SELECT 1"`, …),
/// like `PQcmdStatus`; `""` for an empty query, a failure or NULL.
#[no_mangle]
pub unsafe extern "C" fn hark_query_command(res: *const hark_query) -> *const c_char {
    with_query!(res, empty(), |q| q.command.as_ptr())
}

/// Number of rows of a `SELECT` (0 for other statements, failures and NULL), like `PQntuples`.
#[no_mangle]
pub unsafe extern "C" fn hark_query_ntuples(res: *const hark_query) -> c_int {
    with_query!(res, 0, |q| c_int::try_from(q.rows.len()).unwrap_or(c_int::MAX))
}

/// Number of columns of a `SELECT` (0 otherwise), like `PQnfields`.
#[no_mangle]
pub unsafe extern "C" fn hark_query_nfields(res: *const hark_query) -> c_int {
    with_query!(res, 0, |q| c_int::try_from(q.columns.len()).unwrap_or(c_int::MAX))
}

/// The name of column `column` (from 0), like `PQfname`; NULL if out of range or `res` is NULL.
#[no_mangle]
pub unsafe extern "C" fn hark_query_fname(res: *const hark_query, column: c_int) -> *const c_char {
    with_query!(res, std::ptr::null(), |q| {
        usize::try_from(column).ok().and_then(|i| q.columns.get(i)).map_or(std::ptr::null(), |c| c.as_ptr())
    })
}

/// The value at (`row`, `column`) as text, like `PQgetvalue`: `""` for SQL NULL (tell it apart
/// with hark_query_getisnull), NULL if out of range or `res` is NULL.
#[no_mangle]
pub unsafe extern "C" fn hark_query_getvalue(res: *const hark_query, row: c_int, column: c_int) -> *const c_char {
    with_query!(res, std::ptr::null(), |q| match q.cell(row, column) {
        None => std::ptr::null(),
        Some(None) => empty(),
        Some(Some(v)) => v.as_ptr(),
    })
}

/// 1 if the value at (`row`, `column`) is SQL NULL, 0 if it is not or is out of range or `res`
/// is NULL, like `PQgetisnull`.
#[no_mangle]
pub unsafe extern "C" fn hark_query_getisnull(res: *const hark_query, row: c_int, column: c_int) -> c_int {
    with_query!(res, 0, |q| matches!(q.cell(row, column), Some(None)) as c_int)
}

#[cfg(test)]
mod tests {
    fn shareable<T: Send + Sync>() {}

    #[test]
    fn a_query_result_may_be_read_from_several_threads() {
        shareable::<super::hark_query>();
    }
}
