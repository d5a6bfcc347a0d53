//! [`SessionLock`]: one connection shared by several Python threads, without ever deadlocking
//! with the GIL.
//!
//! Two rules make that hold, and every method of [`crate::session::Session`] goes through here:
//!
//! 1. No Python code runs while a thread holds the connection. The closures given to
//!    [`SessionLock::quick`] and [`SessionLock::blocking`] only call the core and return Rust
//!    values; exceptions, lists and tuples are built after the lock is released, and notices
//!    reach Python handlers after the call returns (the core hands them to a sink that Python
//!    empties). Python code could release the GIL, or call back into the same connection. (One
//!    exception, argued at `Session::next_notify`: `str` objects, whose making runs no Python.)
//! 2. No thread waits for the connection while it holds the GIL. A thread that finds the
//!    connection in use sleeps with the GIL released, and takes the GIL back every
//!    `WAIT_SLICE` to run Python's signal handlers, so Ctrl-C still ends that wait. Calls that
//!    may wait for another process (the queue's writer lock or tail lock) run with the GIL
//!    released from start to end ([`SessionLock::blocking`]).
//!
//! Whether the connection is in use is a flag under a mutex held only for a few instructions
//! (`Turn::busy`, waited for on a condition variable, so that the wait can end every slice); the
//! connection itself sits in a second mutex that only the flag's holder locks, so locking it
//! never waits.
//!
//! A panic inside the core leaves the connection in a state nobody vouches for: the next thread
//! to take it closes it (which frees its listener slot, so the queue does not wait for it) and
//! every later call fails as on a closed connection.

use crate::session::WAIT_SLICE;
use hark::Connection;
use pyo3::prelude::*;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub(crate) struct SessionLock {
    turn: Mutex<Turn>,
    /// Signalled when `busy` turns false and someone waits.
    freed: Condvar,
    conn: Mutex<Connection>,
}

#[derive(Default)]
struct Turn {
    /// Whether a thread holds the connection.
    busy: bool,
    /// Threads asleep on `freed` (so that letting go costs no system call when there are none).
    waiting: usize,
}

/// Holding the connection; dropping it lets the next thread in.
struct Held<'a>(&'a SessionLock);

impl Drop for Held<'_> {
    fn drop(&mut self) {
        let mut turn = self.0.turn();
        turn.busy = false;
        let wake = turn.waiting > 0;
        drop(turn);
        if wake {
            self.0.freed.notify_one();
        }
    }
}

impl SessionLock {
    pub(crate) fn new(conn: Connection) -> SessionLock {
        SessionLock { turn: Mutex::default(), freed: Condvar::new(), conn: Mutex::new(conn) }
    }

    /// Runs `f` on the connection with the GIL held, for calls that never wait for another
    /// process. If another thread is using the connection, waits for it with the GIL released.
    /// The only error is the one a signal handler raised during that wait (KeyboardInterrupt).
    pub(crate) fn quick<R>(&self, py: Python<'_>, f: impl FnOnce(&mut Connection) -> R) -> PyResult<R> {
        Ok(self.quick_until(py, None, f)?.expect("no deadline"))
    }

    /// [`SessionLock::quick`] that gives up (`None`) if another thread still uses the connection
    /// at `deadline`.
    pub(crate) fn quick_until<R>(
        &self,
        py: Python<'_>,
        deadline: Option<Instant>,
        f: impl FnOnce(&mut Connection) -> R,
    ) -> PyResult<Option<R>> {
        let Some(held) = self.hold(py, deadline)? else { return Ok(None) };
        if self.conn.is_poisoned() {
            // Closing may wait for the tail lock: not with the GIL held.
            py.detach(|| drop(self.conn()));
        }
        let r = catch_unwind(AssertUnwindSafe(|| f(&mut self.conn())));
        let r = r.map_err(|payload| self.closed_by_panic(payload.as_ref()));
        drop(held);
        r.map(Some)
    }

    /// Runs `f` on the connection with the GIL released, for calls that may wait for another
    /// process: commits (the writer lock), LISTEN and UNLISTEN (the tail lock), closing.
    pub(crate) fn blocking<R: Send>(&self, py: Python<'_>, f: impl FnOnce(&mut Connection) -> R + Send) -> PyResult<R> {
        let held = self.hold(py, None)?.expect("no deadline");
        let r = py.detach(|| {
            catch_unwind(AssertUnwindSafe(|| f(&mut self.conn())))
                .map_err(|payload| self.closed_by_panic(payload.as_ref()))
        });
        drop(held);
        r
    }

    /// [`SessionLock::blocking`] that gives up (`None`) if another thread still uses the
    /// connection at `deadline`.
    pub(crate) fn blocking_until<R: Send>(
        &self,
        py: Python<'_>,
        deadline: Option<Instant>,
        f: impl FnOnce(&mut Connection) -> R + Send,
    ) -> PyResult<Option<R>> {
        let Some(held) = self.hold(py, deadline)? else { return Ok(None) };
        let r = py.detach(|| {
            catch_unwind(AssertUnwindSafe(|| f(&mut self.conn())))
                .map_err(|payload| self.closed_by_panic(payload.as_ref()))
        });
        drop(held);
        r.map(Some)
    }

    /// hark's panic policy, as in every binding: a panic inside a call (a bug) fails that call
    /// with `hark.InternalError` (`HARK_ERR_PANIC`, XX000), the process goes on, and the session
    /// is closed now, its state being unknown (the lock it poisoned makes `conn` close it).
    fn closed_by_panic(&self, payload: &(dyn std::any::Any + Send)) -> PyErr {
        drop(self.conn());
        crate::errors::to_py(hark::Error::panicked(&hark::Error::panic_message(payload)))
    }

    /// Closes the connection of a session nobody else can reach any more (it is being freed).
    pub(crate) fn close_unshared(&mut self) {
        self.conn.get_mut().unwrap_or_else(|p| p.into_inner()).close();
    }

    /// Takes the connection for this thread, waiting with the GIL released while another thread
    /// uses it, and running signal handlers every `WAIT_SLICE` meanwhile; `None` if it is still
    /// in use at `deadline`.
    fn hold(&self, py: Python<'_>, deadline: Option<Instant>) -> PyResult<Option<Held<'_>>> {
        if self.enter_within(Duration::ZERO) {
            return Ok(Some(Held(self)));
        }
        loop {
            let slice = match deadline {
                None => WAIT_SLICE,
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left.min(WAIT_SLICE),
                    _ => return Ok(None),
                },
            };
            if py.detach(|| self.enter_within(slice)) {
                return Ok(Some(Held(self)));
            }
            py.check_signals()?;
        }
    }

    /// Sets `busy` if it is clear within `timeout`; whether it did.
    fn enter_within(&self, timeout: Duration) -> bool {
        let mut turn = self.turn();
        if turn.busy && !timeout.is_zero() {
            turn.waiting += 1;
            turn = self.freed.wait_timeout_while(turn, timeout, |t| t.busy).unwrap_or_else(|p| p.into_inner()).0;
            turn.waiting -= 1;
        }
        !std::mem::replace(&mut turn.busy, true)
    }

    /// Whose turn it is. Held only for a few instructions, never across a wait or a call, so
    /// taking it with the GIL held cannot deadlock; nothing panics under it, but a poisoned
    /// `Turn` would still be accurate.
    fn turn(&self) -> MutexGuard<'_, Turn> {
        self.turn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The connection, for the holder of `busy` (so that this never waits). After a panic inside
    /// the core, the connection is closed first.
    fn conn(&self) -> MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|poisoned| {
            let mut conn = poisoned.into_inner();
            // `close` marks the connection closed before anything that could fail, so even a
            // second panic leaves every later call with a `Closed` error.
            let _ = catch_unwind(AssertUnwindSafe(|| conn.close()));
            self.conn.clear_poison();
            conn
        })
    }
}
