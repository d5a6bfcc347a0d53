//! hark errors as JavaScript `Error` objects: `code` is the C constant's name
//! (`HARK_ERR_QUEUE_FULL`), `message` PostgreSQL's text, and `sqlstate`, `detail`, `hint` and
//! `position` are set when the core has them (node-postgres puts the same fields on its errors).

use napi::{Env, JsObject};

/// Converts a core error into a napi error that throws (or rejects with) the JS object built here.
pub(crate) fn to_js(env: &Env, err: &hark::Error) -> napi::Error {
    match build(env, err) {
        Ok(obj) => napi::Error::from(obj.into_unknown()),
        // Building the object itself failed (out of memory, exception pending): fall back to a
        // plain error with the same message.
        Err(e) => e,
    }
}

/// The JS error object for `err`, as a value (a gap is delivered in a batch, not thrown).
pub(crate) fn to_js_object(env: &Env, err: &hark::Error) -> napi::Result<JsObject> {
    let mut obj = build(env, err)?;
    if let Some(g) = err.gap() {
        let mut gap = env.create_object()?;
        gap.set_named_property("skipped", env.create_double(g.skipped as f64)?)?;
        gap.set_named_property("firstTxn", env.create_double(g.first_txn as f64)?)?;
        gap.set_named_property("lastTxn", env.create_double(g.last_txn as f64)?)?;
        gap.set_named_property("resumedAt", env.create_double(g.resumed_at as f64)?)?;
        obj.set_named_property("gap", gap)?;
    }
    Ok(obj)
}

fn build(env: &Env, err: &hark::Error) -> napi::Result<JsObject> {
    let mut obj = env.create_error(napi::Error::from_reason(err.message()))?;
    obj.set_named_property("code", env.create_string(err.kind().name())?)?;
    obj.set_named_property("sqlstate", env.create_string(err.sqlstate())?)?;
    if let Some(d) = err.detail() {
        obj.set_named_property("detail", env.create_string(d)?)?;
    }
    if let Some(h) = err.hint() {
        obj.set_named_property("hint", env.create_string(h)?)?;
    }
    if let Some(p) = err.position() {
        obj.set_named_property("position", env.create_uint32(p.min(u32::MAX as usize) as u32)?)?;
    }
    Ok(obj)
}

/// The error every call on a closed connection gets, as the core reports it.
pub(crate) fn closed() -> hark::Error {
    hark::Error::closed()
}

/// A bad argument detected by the binding itself (not by the core).
pub(crate) fn invalid(message: impl Into<String>) -> hark::Error {
    hark::Error::new(hark::ErrorKind::InvalidArgument, "22023", message)
}

/// The text of a panic's payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    hark::Error::panic_message(payload)
}

/// A panic caught at the boundary, as a JS error: the core's `Error::panicked`, so code
/// `HARK_ERR_PANIC`, SQLSTATE XX000 and the same message as in C and Python.
pub(crate) fn panic_error(env: &Env, what: &str) -> napi::Error {
    to_js(env, &hark::Error::panicked(what))
}
