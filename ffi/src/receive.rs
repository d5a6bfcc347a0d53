//! Receiving: hark_consume_input, hark_notifies, hark_freemem, hark_wait, hark_queue_usage.

use crate::conn::hark_conn;
use crate::failure::Failure;
use crate::result::hark_result;
use hark::NotificationRef;
use std::os::raw::{c_char, c_double, c_int, c_void};
use std::time::Duration;

/// One notification, libpq's `PGnotify` with its field names. Returned by hark_notifies; the
/// struct and both strings are one allocation that the caller owns and releases with one
/// hark_freemem call (after which neither string may be used). Independent of the connection:
/// it stays valid after hark_finish and may be passed to and freed on any thread.
#[repr(C)]
#[derive(Debug)]
pub struct hark_notification {
    /// The channel name (libpq's historical field name), NUL-terminated UTF-8.
    pub relname: *mut c_char,
    /// The backend PID of the session that sent it (compare with hark_backend_pid to skip your
    /// own: it differs between the connections of one process).
    pub be_pid: c_int,
    /// The payload, `""` if none was given, NUL-terminated UTF-8.
    pub extra: *mut c_char,
    /// Its position in the queue: unique for the queue's life, increasing in commit order (a key
    /// for idempotent processing; hark_ack takes it). Fields after libpq's three are hark's own.
    pub position: u64,
    /// The commit sequence number of its transaction (the same for all of one transaction).
    pub txn: u64,
    /// When its transaction committed, in nanoseconds since the Unix epoch.
    pub commit_time_ns: i64,
}

/// Copies `n` into one malloc'ed block: the struct, then the channel and payload strings.
fn to_c(n: &NotificationRef<'_>) -> Option<*mut hark_notification> {
    let head = std::mem::size_of::<hark_notification>();
    let (ch, pl) = (n.channel.as_bytes(), n.payload.as_bytes());
    let total = head.checked_add(ch.len())?.checked_add(pl.len())?.checked_add(2)?;
    // SAFETY: malloc of a non-zero size; the result is checked for NULL and is aligned for any
    // C object, so for hark_notification at its start.
    let block = unsafe { libc::malloc(total) }.cast::<u8>();
    if block.is_null() {
        return None;
    }
    // SAFETY: every write below stays inside the `total` bytes just allocated: `head` bytes of
    // struct, then ch.len() + 1, then pl.len() + 1. The strings hold no NUL (the core refuses it).
    unsafe {
        let relname = block.add(head);
        std::ptr::copy_nonoverlapping(ch.as_ptr(), relname, ch.len());
        *relname.add(ch.len()) = 0;
        let extra = relname.add(ch.len() + 1);
        std::ptr::copy_nonoverlapping(pl.as_ptr(), extra, pl.len());
        *extra.add(pl.len()) = 0;
        let out = block.cast::<hark_notification>();
        let ns = n.commit_time.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as i64);
        out.write(hark_notification {
            relname: relname.cast(),
            be_pid: n.pid,
            extra: extra.cast(),
            position: n.position,
            txn: n.txn,
            commit_time_ns: ns,
        });
        Some(out)
    }
}

/// Reads what the connection's descriptor announced, like `PQconsumeInput`: clears the readability
/// of hark_socket and, outside a transaction block, moves waiting notifications into the
/// connection's list for hark_notifies. Returns 1 on success, 0 on trouble (see
/// hark_error_message; 0 also for a NULL `conn`). The result does not say whether anything
/// arrived. May be called at any time.
#[no_mangle]
pub unsafe extern "C" fn hark_consume_input(conn: *mut hark_conn) -> c_int {
    ffi_boundary!(0, {
        // SAFETY: NULL or a live connection that no other thread is using (contract).
        match unsafe { conn.as_mut() } {
            None => 0,
            Some(c) => c.run(|s| Ok(s.consume_input()?)).is_ok() as c_int,
        }
    })
}

/// The oldest notification not yet returned, or NULL if there is none, like `PQnotifies`. Never
/// blocks. Outside a transaction block an empty list is refilled from the queue first, so a loop
/// of hark_notifies alone also drains. The caller owns the result: release it with hark_freemem.
/// NULL is also returned for a NULL or unopened `conn`, and on an error (then
/// hark_error_message is set; out of memory loses that one notification, as libpq drops the
/// connection). A receiver that was cut (a subscription or listener past its lag limit, or
/// holding back a full queue under the cut policy) gets NULL once with HARK_ERR_GAP in
/// hark_error_sqlstate's family (SQLSTATE `HK001`) and the gap in hark_last_gap, in place of the
/// skipped notifications; the next call goes on with those after the gap.
#[no_mangle]
pub unsafe extern "C" fn hark_notifies(conn: *mut hark_conn) -> *mut hark_notification {
    ffi_boundary!(std::ptr::null_mut(), {
        // SAFETY: NULL or a live connection that no other thread is using (contract).
        let Some(c) = (unsafe { conn.as_mut() }) else { return std::ptr::null_mut() };
        // The block is filled straight from the notification the session lends: one copy.
        let taken = c.run(|s| match s.notifies_ref()? {
            None => Ok(None),
            Some(n) => to_c(&n).map(Some).ok_or_else(Failure::out_of_memory),
        });
        taken.ok().flatten().unwrap_or(std::ptr::null_mut())
    })
}

/// Frees memory that hark allocated for the caller (a hark_notification), like `PQfreemem`.
/// NULL does nothing. Thread-safe.
#[no_mangle]
pub unsafe extern "C" fn hark_freemem(ptr: *mut c_void) {
    ffi_boundary!((), {
        // SAFETY: NULL or a block from hark_notifies (malloc'ed), freed once (contract).
        unsafe { libc::free(ptr) }
    })
}

/// Waits until a notification is available or `timeout_ms` milliseconds pass (negative: wait
/// forever); a convenience for programs that need no select loop. Returns 1 if hark_notifies
/// will return a notification, 0 on timeout, -1 on error (see hark_error_message; also for a
/// NULL `conn`). A signal does not end the wait early.
#[no_mangle]
pub unsafe extern "C" fn hark_wait(conn: *mut hark_conn, timeout_ms: c_int) -> c_int {
    ffi_boundary!(-1, {
        // SAFETY: NULL or a live connection that no other thread is using (contract).
        let Some(c) = (unsafe { conn.as_mut() }) else { return -1 };
        let timeout = u64::try_from(timeout_ms).ok().map(Duration::from_millis);
        match c.run(|s| Ok(s.wait(timeout)?)) {
            Ok(true) => 1,
            Ok(false) => 0,
            Err(_) => -1,
        }
    })
}

/// `pg_notification_queue_usage()`: the fraction (0 to 1) of the queue's maximum size in use.
/// Writes `*usage` only on HARK_OK.
#[no_mangle]
pub unsafe extern "C" fn hark_queue_usage(conn: *mut hark_conn, usage: *mut c_double) -> hark_result {
    ffi_boundary!(hark_result::HARK_ERR_PANIC, {
        // SAFETY: NULL or a live connection that no other thread is using (contract).
        let Some(c) = (unsafe { conn.as_mut() }) else { return hark_result::HARK_ERR_NULL_PARAMETER };
        let r = c.run(|s| {
            if usage.is_null() {
                return Err(Failure::null("usage"));
            }
            Ok(s.queue_usage()?)
        });
        match r {
            Ok(u) => {
                // SAFETY: checked non-NULL above; points to a writable double (contract).
                unsafe { usage.write(u) };
                hark_result::HARK_OK
            }
            Err(f) => f.code,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CStr;

    #[test]
    fn a_notification_is_one_block_with_both_strings() {
        let n = NotificationRef {
            channel: "caf\u{e9}",
            payload: "",
            pid: 42,
            position: 0,
            txn: 0,
            commit_time: std::time::UNIX_EPOCH,
        };
        let p = to_c(&n).unwrap();
        unsafe {
            assert_eq!(CStr::from_ptr((*p).relname).to_str().unwrap(), "caf\u{e9}");
            assert_eq!(CStr::from_ptr((*p).extra).to_bytes(), b"");
            assert_eq!((*p).be_pid, 42);
            let start = p as usize;
            let end = start + std::mem::size_of::<hark_notification>() + 5 + 1 + 1;
            assert!(((*p).relname as usize) >= start && ((*p).extra as usize) < end);
            hark_freemem(p.cast());
        }
    }
}
