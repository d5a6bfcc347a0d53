//! Backend PIDs: each session's own PID, unique among the live sessions of the queue, as a
//! PostgreSQL backend's is among the server's (`pg_backend_pid()`, `PQbackendPID`, the `be_pid`
//! of its notifications).
//!
//! A session's PID is the process's own id when no other live session of the queue holds it
//! (usually: the process's first session), so that a program with one connection shows the PID
//! `ps` shows. Its other sessions get synthetic PIDs from a counter in the control file, at or
//! above `SYNTHETIC_PID_MIN`, which no Linux process id reaches. Either way the session proves
//! its PID taken with a byte lock on `slots` (`PID_LOCK_BASE + pid`) held for its life: the
//! kernel drops it when the process dies, and a PID whose lock someone holds is skipped. So two
//! live sessions never share a PID, even across PID namespaces or after the counter wraps, and a
//! program that skips its own notifications (`n.pid == backend_pid`) skips only its own.

use super::Queue;
use crate::error::{Error, ErrorKind, Result};
use crate::layout::{PID_LOCK_BASE, SYNTHETIC_PID_MIN};
use crate::sys::fs::{ofd_try_lock, ofd_unlock};
use crate::sys::proc;
use std::os::fd::RawFd;
use std::sync::atomic::Ordering;

/// How many synthetic PIDs exist: `SYNTHETIC_PID_MIN..=i32::MAX`.
const SYNTHETIC_COUNT: u32 = (i32::MAX - SYNTHETIC_PID_MIN) as u32 + 1;
/// Synthetic PIDs tried before giving up: each one skipped is held by a live session.
const MAX_TRIES: u32 = 1 << 16;

impl Queue {
    /// Takes a backend PID for a session, locking it through the session's own description of
    /// `slots` (`lock_fd`), which holds it until [`Queue::release_backend_pid`] or until the
    /// description is closed.
    pub(crate) fn claim_backend_pid(&self, lock_fd: RawFd) -> Result<i32> {
        let take = |pid: i32| {
            ofd_try_lock(lock_fd, PID_LOCK_BASE + pid as u64).map_err(|e| Error::io("lock a backend PID", e))
        };
        let own = proc::pid();
        if own > 0 && own < SYNTHETIC_PID_MIN && take(own)? {
            return Ok(own);
        }
        let counter = &self.shared().next_backend_pid;
        for _ in 0..MAX_TRIES {
            let pid = SYNTHETIC_PID_MIN + (counter.fetch_add(1, Ordering::SeqCst) % SYNTHETIC_COUNT) as i32;
            if take(pid)? {
                return Ok(pid);
            }
        }
        Err(Error::new(ErrorKind::TooManyListeners, "53300", "sorry, too many clients already"))
    }

    /// Gives a backend PID back (the session closed).
    pub(crate) fn release_backend_pid(&self, lock_fd: RawFd, pid: i32) {
        ofd_unlock(lock_fd, PID_LOCK_BASE + pid as u64);
    }
}
