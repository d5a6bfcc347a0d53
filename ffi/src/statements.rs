//! The direct calls: LISTEN, UNLISTEN, NOTIFY and transaction control without SQL text.
//!
//! Each returns a `hark_result` and, on failure, leaves the message in hark_error_message. Channel
//! names are taken verbatim (no case folding, as `pg_notify` takes them): 1 to 63 bytes of UTF-8.
//! Outside a transaction block each statement commits at once; inside one (hark_begin) it takes
//! effect at hark_commit, and a failure leaves the block aborted until hark_rollback.

use crate::conn::hark_conn;
use crate::failure::{text_arg, Failure};
use crate::result::hark_result;
use hark::Connection;
use std::os::raw::c_char;

/// Runs `op` on `conn`, or returns HARK_ERR_NULL_PARAMETER for a NULL `conn`.
///
/// # Safety
/// `conn` is NULL or a live connection that no other thread is using.
unsafe fn on(conn: *mut hark_conn, op: impl FnOnce(&mut Connection) -> Result<(), Failure>) -> hark_result {
    // SAFETY: by this function's contract.
    match unsafe { conn.as_mut() } {
        None => hark_result::HARK_ERR_NULL_PARAMETER,
        Some(c) => c.result(op),
    }
}

/// `LISTEN channel`. The channel is only read during the call.
#[no_mangle]
pub unsafe extern "C" fn hark_listen(conn: *mut hark_conn, channel: *const c_char) -> hark_result {
    ffi_boundary!(hark_result::HARK_ERR_PANIC, { on(conn, |s| Ok(s.listen(text_arg(channel, "channel")?)?)) })
}

/// `UNLISTEN channel`, or `UNLISTEN *` when `channel` is NULL. Unknown channels are ignored.
#[no_mangle]
pub unsafe extern "C" fn hark_unlisten(conn: *mut hark_conn, channel: *const c_char) -> hark_result {
    ffi_boundary!(hark_result::HARK_ERR_PANIC, {
        on(
            conn,
            |s| {
                if channel.is_null() {
                    Ok(s.unlisten_all()?)
                } else {
                    Ok(s.unlisten(text_arg(channel, "channel")?)?)
                }
            },
        )
    })
}

/// `SELECT pg_notify(channel, payload)`: the notification is sent when the transaction commits
/// (at once outside a block). A NULL `payload` is an empty one. Duplicates (same channel and
/// payload) within one transaction are sent once. The payload is limited to the queue's maximum
/// (7999 bytes by default). Both strings are only read during the call.
#[no_mangle]
pub unsafe extern "C" fn hark_notify(
    conn: *mut hark_conn,
    channel: *const c_char,
    payload: *const c_char,
) -> hark_result {
    ffi_boundary!(hark_result::HARK_ERR_PANIC, {
        on(conn, |s| {
            let channel = text_arg(channel, "channel")?;
            let payload = if payload.is_null() { "" } else { text_arg(payload, "payload")? };
            Ok(s.notify(channel, payload)?)
        })
    })
}

/// `BEGIN`: starts a transaction block (inside one it only warns, through the notice processor).
#[no_mangle]
pub unsafe extern "C" fn hark_begin(conn: *mut hark_conn) -> hark_result {
    ffi_boundary!(hark_result::HARK_ERR_PANIC, { on(conn, |s| Ok(s.begin()?)) })
}

/// `COMMIT`: publishes the block's notifications atomically and applies its LISTEN/UNLISTEN.
/// Outside a block it only warns. In an aborted block it rolls back and returns
/// HARK_ERR_TRANSACTION_STATE, so that a rolled-back block is never mistaken for a commit. A
/// commit that would overfill the queue fails with HARK_ERR_QUEUE_FULL and sends nothing.
#[no_mangle]
pub unsafe extern "C" fn hark_commit(conn: *mut hark_conn) -> hark_result {
    ffi_boundary!(hark_result::HARK_ERR_PANIC, { on(conn, |s| Ok(s.commit()?)) })
}

/// `ROLLBACK`: discards the block's notifications and listen changes (outside a block it only
/// warns).
#[no_mangle]
pub unsafe extern "C" fn hark_rollback(conn: *mut hark_conn) -> hark_result {
    ffi_boundary!(hark_result::HARK_ERR_PANIC, { on(conn, |s| Ok(s.rollback()?)) })
}

/// `SAVEPOINT name` (only inside a block). The name is only read during the call.
#[no_mangle]
pub unsafe extern "C" fn hark_savepoint(conn: *mut hark_conn, name: *const c_char) -> hark_result {
    ffi_boundary!(hark_result::HARK_ERR_PANIC, { on(conn, |s| Ok(s.savepoint(text_arg(name, "savepoint name")?)?)) })
}

/// `RELEASE SAVEPOINT name`: what was done since the savepoint joins the enclosing level.
#[no_mangle]
pub unsafe extern "C" fn hark_release(conn: *mut hark_conn, name: *const c_char) -> hark_result {
    ffi_boundary!(hark_result::HARK_ERR_PANIC, { on(conn, |s| Ok(s.release(text_arg(name, "savepoint name")?)?)) })
}

/// `ROLLBACK TO SAVEPOINT name`: drops what was done since the savepoint; also leaves an aborted
/// block usable again.
#[no_mangle]
pub unsafe extern "C" fn hark_rollback_to(conn: *mut hark_conn, name: *const c_char) -> hark_result {
    ffi_boundary!(hark_result::HARK_ERR_PANIC, { on(conn, |s| Ok(s.rollback_to(text_arg(name, "savepoint name")?)?)) })
}
