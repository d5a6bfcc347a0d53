//! Durable subscriptions: hark_subscribe, hark_ack, hark_detach, hark_unsubscribe, and the gap a
//! receive met (hark_last_gap).

use crate::conn::hark_conn;
use crate::failure::{text_arg, Failure};
use crate::result::hark_result;
use hark::{AckMode, SubscribeOptions};
use std::ffi::{c_char, c_int};
use std::time::Duration;

/// What a receiver skipped when it was cut (see hark_last_gap).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct hark_gap {
    /// Notifications on the receiver's channels that were skipped.
    pub skipped: u64,
    /// Commit sequence numbers (hark_notification's `txn`) of the first and last skipped.
    pub first_txn: u64,
    pub last_txn: u64,
    /// The position the receiver resumed from.
    pub resumed_at: u64,
}

/// Creates the durable subscription `name` on `channels` (`nchannels` exact names, or globs with
/// `*`, `?` and `\` escapes) if it does not exist, and attaches this connection to it. The
/// subscription keeps its position and channels while nobody is attached, across crashes and
/// restarts (not across a reboot); the attached connection receives through hark_socket,
/// hark_consume_input, hark_notifies and hark_wait every notification on its channels after its
/// last acknowledged one, in commit order. Options as keyword/value arrays (both may be NULL), as
/// hark_connect_params: `ack` (`explicit`, the default: only hark_ack acknowledges; `auto`: each
/// hark_notifies that returns a notification acknowledges those it returned before, so the last
/// one returned comes again after a detach, a close or a crash), `create` (`off`: only attach to an
/// existing one, SQLSTATE 42704 otherwise), `wait_ms` (wait this long for another attached
/// connection to let go, instead of failing at once with HARK_ERR_IN_USE, 55006),
/// `max_lag_bytes` and `max_lag_age_ms` (past them the subscription is cut, and a receive reports
/// the gap). A connection that listens cannot subscribe, nor the reverse. Everything is read only
/// during the call.
#[no_mangle]
pub unsafe extern "C" fn hark_subscribe(
    conn: *mut hark_conn,
    name: *const c_char,
    channels: *const *const c_char,
    nchannels: c_int,
    keywords: *const *const c_char,
    values: *const *const c_char,
) -> hark_result {
    ffi_boundary!(hark_result::HARK_ERR_PANIC, {
        // SAFETY: NULL or a live connection that no other thread is using (contract).
        let Some(c) = (unsafe { conn.as_mut() }) else { return hark_result::HARK_ERR_NULL_PARAMETER };
        c.result(|s| {
            // SAFETY: the arguments' contract, as documented above.
            let name = unsafe { text_arg(name, "name") }?;
            if channels.is_null() || nchannels < 1 {
                return Err(Failure::new(
                    hark_result::HARK_ERR_INVALID_ARGUMENT,
                    "22023",
                    "a subscription needs at least one channel or pattern",
                ));
            }
            // SAFETY: `nchannels` strings (contract).
            let list: Vec<&str> = (0..nchannels as usize)
                .map(|i| unsafe { text_arg(*channels.add(i), "channel") })
                .collect::<Result<_, _>>()?;
            // SAFETY: the arrays' contract.
            let options = unsafe { options(keywords, values) }?;
            Ok(s.subscribe(name, &list, &options)?)
        })
    })
}

/// Acknowledges the notification at `position` (hark_notification's `position`) and every one
/// before it: a later attach does not receive them again. An unknown position is
/// HARK_ERR_INVALID_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn hark_ack(conn: *mut hark_conn, position: u64) -> hark_result {
    ffi_boundary!(hark_result::HARK_ERR_PANIC, {
        // SAFETY: NULL or a live connection that no other thread is using (contract).
        match unsafe { conn.as_mut() } {
            None => hark_result::HARK_ERR_NULL_PARAMETER,
            Some(c) => c.result(|s| Ok(s.ack(position)?)),
        }
    })
}

/// Ends this connection's attachment; the subscription stays at its acknowledged position (what
/// was received and not acknowledged comes again at the next attach). hark_finish does the same.
#[no_mangle]
pub unsafe extern "C" fn hark_detach(conn: *mut hark_conn) -> hark_result {
    ffi_boundary!(hark_result::HARK_ERR_PANIC, {
        // SAFETY: NULL or a live connection that no other thread is using (contract).
        match unsafe { conn.as_mut() } {
            None => hark_result::HARK_ERR_NULL_PARAMETER,
            Some(c) => c.result(|s| Ok(s.detach()?)),
        }
    })
}

/// Drops the durable subscription `name` (SQLSTATE 42704 if there is none; HARK_ERR_IN_USE while
/// another connection is attached to it).
#[no_mangle]
pub unsafe extern "C" fn hark_unsubscribe(conn: *mut hark_conn, name: *const c_char) -> hark_result {
    ffi_boundary!(hark_result::HARK_ERR_PANIC, {
        // SAFETY: NULL or a live connection that no other thread is using (contract).
        match unsafe { conn.as_mut() } {
            None => hark_result::HARK_ERR_NULL_PARAMETER,
            // SAFETY: NUL-terminated or NULL (contract).
            Some(c) => c.result(|s| Ok(s.unsubscribe(unsafe { text_arg(name, "name") }?)?)),
        }
    })
}

/// When the most recent call on `conn` failed with HARK_ERR_GAP (hark_notifies, hark_wait or
/// hark_consume_input met a gap), writes what was skipped to `*gap` and returns 1; else returns 0
/// (and for a NULL argument).
#[no_mangle]
pub unsafe extern "C" fn hark_last_gap(conn: *const hark_conn, gap: *mut hark_gap) -> c_int {
    ffi_boundary!(0, {
        // SAFETY: NULL or a live connection (contract).
        let Some(c) = (unsafe { conn.as_ref() }) else { return 0 };
        match (c.last_gap, gap.is_null()) {
            (Some(g), false) => {
                let out = hark_gap {
                    skipped: g.skipped,
                    first_txn: g.first_txn,
                    last_txn: g.last_txn,
                    resumed_at: g.resumed_at,
                };
                // SAFETY: non-NULL, writable (contract).
                unsafe { gap.write(out) };
                1
            }
            _ => 0,
        }
    })
}

/// Reads the option arrays of hark_subscribe.
///
/// # Safety
/// `keywords` is NULL or NULL-terminated; `values` has as many entries, each NULL or a string.
unsafe fn options(keywords: *const *const c_char, values: *const *const c_char) -> Result<SubscribeOptions, Failure> {
    let mut o = SubscribeOptions::new();
    let invalid = |m: String| Failure::new(hark_result::HARK_ERR_INVALID_ARGUMENT, "22023", m);
    // SAFETY: the arrays' contract, as this function's.
    for (k, v) in unsafe { crate::params::keyword_pairs(keywords, values) }? {
        let (k, v) = (String::from_utf8_lossy(&k), String::from_utf8_lossy(&v));
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        let int = || v.parse::<u64>().map_err(|_| invalid(format!("invalid integer value \"{v}\" for option \"{k}\"")));
        match &*k {
            "ack" => {
                o.ack = match v {
                    "explicit" => AckMode::Explicit,
                    "auto" => AckMode::Auto,
                    _ => return Err(invalid(format!("invalid value \"{v}\" for option \"ack\" (explicit or auto)"))),
                }
            }
            "create" => {
                o.create = Some(match v.to_ascii_lowercase().as_str() {
                    "on" | "true" | "yes" | "1" => true,
                    "off" | "false" | "no" | "0" => false,
                    _ => return Err(invalid(format!("invalid boolean value \"{v}\" for option \"create\""))),
                })
            }
            "wait_ms" => o.wait = Some(Duration::from_millis(int()?)),
            "max_lag_bytes" => o.max_lag_bytes = Some(int()?),
            "max_lag_age_ms" => o.max_lag_age = Some(Duration::from_millis(int()?)),
            _ => return Err(invalid(format!("invalid subscription option \"{k}\""))),
        }
    }
    Ok(o)
}
