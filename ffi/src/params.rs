//! `hark_connect_params`: options as keyword/value arrays, like libpq's `PQconnectdbParams`, so
//! that options can be added without changing the ABI (unlike the fixed `hark_options` struct).

use crate::conn::{boxed, hark_conn, hark_options};
use crate::failure::Failure;
use crate::result::hark_result;
use hark::Options;
use std::ffi::{c_char, CStr};

/// Opens a session with options given as two parallel arrays, like libpq's `PQconnectdbParams`:
/// `keywords` ends with a NULL entry, and `values[i]` is the value of `keywords[i]`. A NULL or
/// empty value is ignored (the option keeps its default); a keyword given twice takes its last
/// value. Keywords: `dir` (the queue directory; the default directory when absent),
/// `max_queue_size`, `max_payload`, `segment_size` (decimal byte counts, as in hark_options;
/// 0 for the default), `group_shared` and `create` (`on`/`off`, `true`/`false`, `yes`/`no`,
/// `1`/`0`; `create` is on by default: `off` opens only an existing queue, and fails with
/// HARK_ERR_IO and SQLSTATE 3D000, `queue "…" does not exist`, when there is none),
/// `cut_laggards` (a boolean: a full queue cuts the readers holding it back, each told by a gap,
/// instead of failing commits), `listener_max_lag_bytes` and `listener_max_lag_age_ms` (lag
/// limits for every plain listener; the three are fixed when the queue is created). NULL
/// `keywords` opens the default directory with default options. An unknown keyword or a bad value
/// gives a connection whose status is HARK_ERR_INVALID_ARGUMENT and whose error message says
/// which, in libpq's words (`invalid connection option "…"`). The arrays are only read during the
/// call. Returns NULL only if hark itself failed.
#[no_mangle]
pub unsafe extern "C" fn hark_connect_params(
    keywords: *const *const c_char,
    values: *const *const c_char,
) -> *mut hark_conn {
    ffi_boundary!(std::ptr::null_mut(), {
        // SAFETY: the arrays' contract, as documented above.
        let conn = match unsafe { parse(keywords, values) } {
            Ok((dir, options)) => hark_conn::open_bytes(dir.as_deref(), &options),
            Err(f) => hark_conn::from_open(Err(f)),
        };
        boxed(conn)
    })
}

/// Reads the arrays into a directory and the core's options.
///
/// # Safety
/// `keywords` is NULL or a NULL-terminated array of NUL-terminated strings; when it has entries,
/// `values` has as many, each NULL or NUL-terminated.
unsafe fn parse(
    keywords: *const *const c_char,
    values: *const *const c_char,
) -> Result<(Option<Vec<u8>>, Options), Failure> {
    let mut dir = None;
    let mut options = hark_options::default();
    let mut create = true;
    let mut extra = Options::default();
    // SAFETY: the arrays' contract, as this function's.
    for (k, v) in unsafe { keyword_pairs(keywords, values) }? {
        let (key, v) = (String::from_utf8_lossy(&k), &v[..]);
        let known = [
            "dir",
            "max_queue_size",
            "max_payload",
            "segment_size",
            "group_shared",
            "create",
            "cut_laggards",
            "listener_max_lag_bytes",
            "listener_max_lag_age_ms",
        ];
        if !known.contains(&&*key) {
            return Err(invalid(format!("invalid connection option \"{key}\"")));
        }
        if v.is_empty() {
            continue; // libpq ignores NULL and empty values
        }
        match &*key {
            "dir" => dir = Some(v.to_vec()),
            "max_queue_size" => options.max_queue_size = integer(&key, v)?,
            "max_payload" => options.max_payload = integer(&key, v)?,
            "segment_size" => options.segment_size = integer(&key, v)?,
            "create" => create = boolean(&key, v)?,
            "cut_laggards" => extra.cut_laggards = Some(boolean(&key, v)?),
            "listener_max_lag_bytes" => extra.listener_max_lag_bytes = Some(integer(&key, v)?),
            "listener_max_lag_age_ms" => {
                extra.listener_max_lag_age = Some(std::time::Duration::from_millis(integer(&key, v)?))
            }
            _ => options.group_shared = boolean(&key, v)?,
        }
    }
    Ok((
        dir,
        Options {
            cut_laggards: extra.cut_laggards,
            listener_max_lag_bytes: extra.listener_max_lag_bytes,
            listener_max_lag_age: extra.listener_max_lag_age,
            ..options.to_options().create(create)
        },
    ))
}

/// A keyword and its value, as bytes.
pub(crate) type KeywordPair = (Vec<u8>, Vec<u8>);

/// The (keyword, value) pairs of two parallel C arrays, as hark_connect_params and
/// hark_subscribe take them: a NULL `keywords` is none; a NULL value is an empty one.
///
/// # Safety
/// `keywords` is NULL or a NULL-terminated array of NUL-terminated strings; when it has entries,
/// `values` has as many, each NULL or NUL-terminated.
pub(crate) unsafe fn keyword_pairs(
    keywords: *const *const c_char,
    values: *const *const c_char,
) -> Result<Vec<KeywordPair>, Failure> {
    let mut out = Vec::new();
    if keywords.is_null() {
        return Ok(out);
    }
    for i in 0.. {
        // SAFETY: keywords is NULL-terminated, and i has not passed its terminator.
        let k = unsafe { *keywords.add(i) };
        if k.is_null() {
            break;
        }
        if values.is_null() {
            return Err(Failure::null("values"));
        }
        // SAFETY: as many values as keywords, each NULL or NUL-terminated (contract).
        let (k, v) = unsafe { (CStr::from_ptr(k).to_bytes(), *values.add(i)) };
        let v = if v.is_null() { &[][..] } else { unsafe { CStr::from_ptr(v) }.to_bytes() };
        out.push((k.to_vec(), v.to_vec()));
    }
    Ok(out)
}

fn invalid(message: String) -> Failure {
    Failure::new(hark_result::HARK_ERR_INVALID_ARGUMENT, "22023", message)
}

fn integer(key: &str, v: &[u8]) -> Result<u64, Failure> {
    std::str::from_utf8(v).ok().and_then(|s| s.trim().parse().ok()).ok_or_else(|| {
        invalid(format!("invalid integer value \"{}\" for connection option \"{key}\"", String::from_utf8_lossy(v)))
    })
}

fn boolean(key: &str, v: &[u8]) -> Result<bool, Failure> {
    match String::from_utf8_lossy(v).trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "yes" | "1" => Ok(true),
        "off" | "false" | "no" | "0" => Ok(false),
        _ => Err(invalid(format!(
            "invalid boolean value \"{}\" for connection option \"{key}\"",
            String::from_utf8_lossy(v)
        ))),
    }
}
