//! The queue's state for a program: hark_stats (what `hark stat` prints), with every listener's
//! and durable subscription's lag.

use crate::conn::hark_conn;
use crate::failure::Failure;
use crate::result::hark_result;
use hark::{ListenerStat, QueueStats};
use std::ffi::{c_char, c_double, c_int};
use std::mem::{align_of, size_of};

/// One listener or durable subscription of the queue (part of hark_queue_stats).
#[repr(C)]
#[derive(Debug)]
pub struct hark_receiver_stat {
    /// The subscription's name, or NULL for a plain listener.
    pub subscription: *const c_char,
    /// The backend PID of its session (what its notifications carry); 0 for a subscription
    /// nobody is attached to.
    pub backend_pid: c_int,
    /// The operating-system process id of that session's process (0 when detached).
    pub os_pid: c_int,
    /// 1 while its session lives.
    pub alive: c_int,
    /// How many channels (and patterns) it receives.
    pub channel_count: c_int,
    /// Those channels and patterns (`channel_count` strings), or NULL when they were too long to
    /// be kept in the queue's control file (more than about 1 KiB in all).
    pub channel_names: *const *const c_char,
    /// Where it reads next (a subscription: one past its acknowledged notification).
    pub position: u64,
    /// Bytes between its position and the head of the queue.
    pub lag_bytes: u64,
    /// Unread notifications on its channels.
    pub lag_notifications: u64,
    /// How long ago the oldest unread notification on its channels was committed, in
    /// nanoseconds; -1 when there is none.
    pub lag_age_ns: i64,
    /// Its lag limits (0: none).
    pub max_lag_bytes: u64,
    pub max_lag_age_ns: u64,
    /// Notifications skipped by cuts and not yet reported to it.
    pub gap_pending: u64,
}

/// The state of a queue at one moment, returned by hark_stats: the struct, its receivers and
/// their strings are one allocation that the caller releases with one hark_freemem call.
#[repr(C)]
#[derive(Debug)]
pub struct hark_queue_stats {
    /// Byte positions of the head (where the next commit goes) and of the tail (the oldest
    /// entry kept).
    pub head: u64,
    pub tail: u64,
    /// `pg_notification_queue_usage()`: the fraction of the maximum size in use.
    pub usage: c_double,
    pub max_queue_size: u64,
    pub segment_size: u64,
    pub max_payload: u64,
    /// Segment files in the directory.
    pub segment_files: c_int,
    /// Listeners and subscriptions, in slot order.
    pub receiver_count: c_int,
    pub receivers: *const hark_receiver_stat,
}

/// Advances the tail (as a commit does), then reports the queue's positions and sizes and each
/// listener's and durable subscription's lag, into `*stats` (only on HARK_OK), one block freed
/// with hark_freemem, independent of the connection.
#[no_mangle]
pub unsafe extern "C" fn hark_stats(conn: *mut hark_conn, stats: *mut *mut hark_queue_stats) -> hark_result {
    ffi_boundary!(hark_result::HARK_ERR_PANIC, {
        // SAFETY: NULL or a live connection that no other thread is using (contract).
        let Some(c) = (unsafe { conn.as_mut() }) else { return hark_result::HARK_ERR_NULL_PARAMETER };
        c.result(|s| {
            if stats.is_null() {
                return Err(Failure::null("stats"));
            }
            let st = s.queue().stats()?;
            let block = to_c(&st).ok_or_else(Failure::out_of_memory)?;
            // SAFETY: non-NULL and writable (contract).
            unsafe { stats.write(block) };
            Ok(())
        })
    })
}

/// Copies `st` into one malloc'ed block: the struct, the receivers, the name pointer arrays,
/// then the strings.
fn to_c(st: &QueueStats) -> Option<*mut hark_queue_stats> {
    let ls = &st.listeners;
    let names = |l: &ListenerStat| l.channel_names.as_ref().map_or(0, Vec::len);
    let receivers_at = size_of::<hark_queue_stats>().checked_next_multiple_of(align_of::<hark_receiver_stat>())?;
    let pointers_at = receivers_at
        .checked_add(ls.len().checked_mul(size_of::<hark_receiver_stat>())?)?
        .checked_next_multiple_of(align_of::<*const c_char>())?;
    let pointer_count: usize = ls.iter().map(names).sum();
    let text_at = pointers_at.checked_add(pointer_count.checked_mul(size_of::<*const c_char>())?)?;
    let text: usize = ls
        .iter()
        .map(|l| {
            l.subscription.as_ref().map_or(0, |s| s.len() + 1)
                + l.channel_names.iter().flatten().map(|c| c.len() + 1).sum::<usize>()
        })
        .sum();
    let total = text_at.checked_add(text)?.max(1);
    // SAFETY: malloc of a non-zero size, checked for NULL; malloc's alignment suits every part.
    let block = unsafe { libc::malloc(total) }.cast::<u8>();
    if block.is_null() {
        return None;
    }
    // SAFETY: every write below stays inside the `total` bytes computed above for exactly these
    // parts, each at an offset aligned for its type. The strings hold no NUL (the core refuses
    // it in names and channels).
    unsafe {
        let receivers = block.add(receivers_at).cast::<hark_receiver_stat>();
        let mut pointer = block.add(pointers_at).cast::<*const c_char>();
        let mut t = block.add(text_at);
        let mut put = |s: &str| {
            let at = t;
            std::ptr::copy_nonoverlapping(s.as_ptr(), t, s.len());
            *t.add(s.len()) = 0;
            t = t.add(s.len() + 1);
            at.cast::<c_char>().cast_const()
        };
        for (k, l) in ls.iter().enumerate() {
            let subscription = l.subscription.as_deref().map_or(std::ptr::null(), &mut put);
            let channel_names = match &l.channel_names {
                None => std::ptr::null(),
                Some(v) => {
                    let first = pointer.cast_const();
                    for c in v {
                        pointer.write(put(c));
                        pointer = pointer.add(1);
                    }
                    first
                }
            };
            receivers.add(k).write(hark_receiver_stat {
                subscription,
                backend_pid: l.pid,
                os_pid: l.os_pid,
                alive: c_int::from(l.alive),
                channel_count: c_int::try_from(l.channel_names.as_ref().map_or(l.channels as usize, Vec::len))
                    .unwrap_or(c_int::MAX),
                channel_names,
                position: l.position,
                lag_bytes: l.lag,
                lag_notifications: l.lag_notifications,
                lag_age_ns: l.lag_age.map_or(-1, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX)),
                max_lag_bytes: l.max_lag_bytes,
                max_lag_age_ns: u64::try_from(l.max_lag_age.as_nanos()).unwrap_or(u64::MAX),
                gap_pending: l.gap_pending,
            });
        }
        let out = block.cast::<hark_queue_stats>();
        out.write(hark_queue_stats {
            head: st.head,
            tail: st.tail,
            usage: st.usage,
            max_queue_size: st.max_queue_size,
            segment_size: st.segment_size,
            max_payload: st.max_payload as u64,
            segment_files: c_int::try_from(st.segment_files.len()).unwrap_or(c_int::MAX),
            receiver_count: c_int::try_from(ls.len()).unwrap_or(c_int::MAX),
            receivers,
        });
        Some(out)
    }
}
