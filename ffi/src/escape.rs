//! hark_escape_literal and hark_escape_identifier: libpq's `PQescapeLiteral` and
//! `PQescapeIdentifier`, for programs that build SQL text (parameters, hark_exec_params, need
//! neither).

use crate::conn::hark_conn;
use crate::failure::{utf8_arg, Failure};
use std::os::raw::c_char;

/// `str` as an SQL string literal, quoted as libpq's `PQescapeLiteral` quotes it: `'it''s'`, and
/// ` E'C:\\dir'` (with a leading space) when the text has a backslash, so that it reads the same
/// whatever `standard_conforming_strings` says. At most `length` bytes are read, fewer if a NUL
/// comes first (as libpq). Returns a NUL-terminated string the caller releases with
/// hark_freemem, or NULL when `conn` or `str` is NULL, the bytes are not UTF-8 (22021), or
/// memory runs out; the reason is then in hark_error_message. `conn` is only where the error
/// goes: it need not be open.
#[no_mangle]
pub unsafe extern "C" fn hark_escape_literal(conn: *mut hark_conn, str: *const c_char, length: usize) -> *mut c_char {
    ffi_boundary!(std::ptr::null_mut(), {
        // SAFETY: the contract of both escape functions (see escape).
        unsafe { escape(conn, str, length, hark::escape_literal) }
    })
}

/// `str` as an SQL identifier, quoted as libpq's `PQescapeIdentifier` quotes it: in double
/// quotes, each double quote doubled, so that it is taken verbatim (`"Events"` keeps its capital).
/// Reads, returns and fails as hark_escape_literal.
#[no_mangle]
pub unsafe extern "C" fn hark_escape_identifier(
    conn: *mut hark_conn,
    str: *const c_char,
    length: usize,
) -> *mut c_char {
    ffi_boundary!(std::ptr::null_mut(), {
        // SAFETY: the contract of both escape functions (see escape).
        unsafe { escape(conn, str, length, hark::escape_identifier) }
    })
}

/// # Safety
/// `conn` is NULL or a live connection no other thread is using; `str` is NULL or readable for
/// `length` bytes or up to a NUL, whichever comes first.
unsafe fn escape(conn: *mut hark_conn, str: *const c_char, length: usize, quote: fn(&str) -> String) -> *mut c_char {
    // SAFETY: NULL or a live connection that no other thread is using (contract).
    let Some(c) = (unsafe { conn.as_mut() }) else { return std::ptr::null_mut() };
    let escaped = (|| {
        if str.is_null() {
            return Err(Failure::null("str"));
        }
        // Up to `length` bytes or the first NUL: strnlen, which reads no byte past either.
        // SAFETY: str is readable up to length bytes or its NUL (contract).
        let len = unsafe { libc::strnlen(str, length) };
        // SAFETY: the len bytes just measured are readable.
        let bytes = unsafe { std::slice::from_raw_parts(str.cast::<u8>(), len) };
        Ok(quote(utf8_arg(bytes, "str")?))
    })()
    .and_then(|s| malloc_string(&s).ok_or_else(Failure::out_of_memory));
    match escaped {
        Ok(p) => {
            c.clear_error();
            p
        }
        Err(f) => {
            c.record(&f);
            std::ptr::null_mut()
        }
    }
}

/// `s` in a malloc'ed, NUL-terminated block (freed with hark_freemem), or None without memory.
fn malloc_string(s: &str) -> Option<*mut c_char> {
    // SAFETY: malloc of a non-zero size, checked for NULL; then s.len() + 1 bytes written into it.
    unsafe {
        let p = libc::malloc(s.len() + 1).cast::<u8>();
        if p.is_null() {
            return None;
        }
        std::ptr::copy_nonoverlapping(s.as_ptr(), p, s.len());
        *p.add(s.len()) = 0;
        Some(p.cast())
    }
}
