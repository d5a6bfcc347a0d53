//! [`Session`]: one hark connection, as the Python package drives it.
//!
//! Every method reaches the connection through [`SessionLock`], whose documentation gives the
//! threading rules: core calls return Rust values, and Python objects and exceptions are made
//! once the connection is released.

use crate::errors::{to_py, IntoPy};
use crate::lock::SessionLock;
use hark::{Connection, Notice, Options};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyList, PyString, PyTuple};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A blocking wait sleeps at most this long with the GIL released before it takes the GIL back
/// and runs Python's signal handlers, so that Ctrl-C interrupts it within this delay. Waiting
/// for another thread's call on the same connection is sliced the same way.
pub(crate) const WAIT_SLICE: Duration = Duration::from_millis(50);

/// Where the core's notices go: the handler runs inside core calls (with the connection held
/// and maybe without the GIL), so it only stores them; Python takes them after the call.
type NoticeSink = Arc<Mutex<Vec<Notice>>>;

/// A notice as Python receives it: `(severity, sqlstate, message, detail, hint)`.
type NoticeTuple = (&'static str, &'static str, String, Option<String>, Option<String>);

/// A statement's result as Python receives it: `(tag, columns, types, rows)`.
type QueryTuple<'py> = (String, Vec<String>, Vec<&'static str>, Bound<'py, PyList>);

/// A notification as Python receives it: `(channel, payload, pid, position, txn, commit_time_ns)`.
type NotifyTuple<'py> = (Bound<'py, PyString>, Bound<'py, PyString>, i32, u64, u64, u64);

/// A listener or subscription as Python receives it: `(subscription, backend_pid, os_pid, alive,
/// channels, position, lag_bytes, lag_notifications, lag_age_s, max_lag_bytes, max_lag_age_s,
/// gap_pending)`.
type ReceiverTuple = (Option<String>, i32, i32, bool, Option<Vec<String>>, u64, u64, u64, Option<f64>, u64, f64, u64);

/// The queue's state as Python receives it: `(head, tail, usage, max_queue_size, segment_size,
/// max_payload, segment_files, receivers)`.
type StatsTuple = (u64, u64, f64, u64, u64, usize, Vec<String>, Vec<ReceiverTuple>);

/// One session on a queue directory (`hark::Connection`). Private: use `hark.Connection`.
#[pyclass(module = "hark._hark", frozen)]
pub(crate) struct Session {
    conn: SessionLock,
    notices: NoticeSink,
    /// Fixed for the session's life, so read without taking the connection.
    pid: i32,
    path: PathBuf,
}

#[pymethods]
impl Session {
    #[new]
    #[pyo3(signature = (dir=None, *, max_queue_size=None, max_payload=None, segment_size=None, group_shared=false, create=true, cut_laggards=None, listener_max_lag_bytes=None, listener_max_lag_age=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        dir: Option<PathBuf>,
        max_queue_size: Option<u64>,
        max_payload: Option<usize>,
        segment_size: Option<u64>,
        group_shared: bool,
        create: bool,
        cut_laggards: Option<bool>,
        listener_max_lag_bytes: Option<u64>,
        listener_max_lag_age: Option<f64>,
    ) -> PyResult<Session> {
        let listener_max_lag_age = listener_max_lag_age
            .map(|s| {
                Duration::try_from_secs_f64(s)
                    .map_err(|_| PyValueError::new_err("listener_max_lag_age must be a non-negative number of seconds"))
            })
            .transpose()?;
        let options = Options {
            max_queue_size,
            max_payload,
            segment_size,
            group_shared,
            create,
            cut_laggards,
            listener_max_lag_bytes,
            listener_max_lag_age,
        };
        let dir = dir.unwrap_or_else(hark::default_dir);
        // Opening may create the queue (mkdir, fallocate of the first segment): no Python needed.
        let mut conn = py.detach(|| Connection::with_options(&dir, &options)).py_err()?;
        let notices: NoticeSink = Arc::default();
        let sink = Arc::clone(&notices);
        conn.set_notice_handler(Some(Box::new(move |n: &Notice| {
            sink.lock().unwrap_or_else(|p| p.into_inner()).push(n.clone());
        })));
        let (pid, path) = (conn.backend_pid(), conn.queue().path().to_path_buf());
        Ok(Session { conn: SessionLock::new(conn), notices, pid, path })
    }

    /// Runs SQL text; returns `(tag, columns, types, rows)` of its last statement: the columns'
    /// PostgreSQL type names (`int4`, `text`, …) and the rows as tuples of `str | None`.
    fn execute<'py>(&self, py: Python<'py>, sql: &str) -> PyResult<QueryTuple<'py>> {
        let r = self.conn.blocking(py, |c| c.execute(sql))?.py_err()?;
        py_result(py, r)
    }

    /// Runs one statement with `$1`, `$2`, … bound to `params` (values converted by
    /// `params::to_param`, before the connection is taken); returns as `execute`.
    fn execute_params<'py>(
        &self,
        py: Python<'py>,
        sql: &str,
        params: Vec<Bound<'py, PyAny>>,
    ) -> PyResult<QueryTuple<'py>> {
        let params = params.iter().map(crate::params::to_param).collect::<PyResult<Vec<_>>>()?;
        let r = self.conn.blocking(py, |c| c.execute_params(sql, &params))?.py_err()?;
        py_result(py, r)
    }

    fn listen(&self, py: Python<'_>, channel: &str) -> PyResult<()> {
        self.conn.blocking(py, |c| c.listen(channel))?.py_err()
    }

    fn unlisten(&self, py: Python<'_>, channel: &str) -> PyResult<()> {
        self.conn.blocking(py, |c| c.unlisten(channel))?.py_err()
    }

    fn unlisten_all(&self, py: Python<'_>) -> PyResult<()> {
        self.conn.blocking(py, |c| c.unlisten_all())?.py_err()
    }

    fn notify(&self, py: Python<'_>, channel: &str, payload: &str) -> PyResult<()> {
        self.conn.blocking(py, |c| c.notify(channel, payload))?.py_err()
    }

    /// Creates or attaches to a durable subscription (see `hark.Connection.subscribe`).
    #[pyo3(signature = (name, channels, *, auto_ack, create, wait, max_lag_bytes, max_lag_age))]
    #[allow(clippy::too_many_arguments)]
    fn subscribe(
        &self,
        py: Python<'_>,
        name: &str,
        channels: Vec<String>,
        auto_ack: bool,
        create: bool,
        wait: Option<f64>,
        max_lag_bytes: Option<u64>,
        max_lag_age: Option<f64>,
    ) -> PyResult<()> {
        let secs = |s: f64, what: &str| {
            Duration::try_from_secs_f64(s)
                .map_err(|_| PyValueError::new_err(format!("{what} must be a non-negative number of seconds")))
        };
        let options = hark::SubscribeOptions {
            ack: if auto_ack { hark::AckMode::Auto } else { hark::AckMode::Explicit },
            create: Some(create),
            wait: wait.map(|w| secs(w, "wait")).transpose()?,
            max_lag_bytes,
            max_lag_age: max_lag_age.map(|a| secs(a, "max_lag_age")).transpose()?,
        };
        let list: Vec<&str> = channels.iter().map(String::as_str).collect();
        // Waiting for another session to detach sleeps: without the GIL.
        self.conn.blocking(py, |c| c.subscribe(name, &list, &options))?.py_err()
    }

    fn ack(&self, py: Python<'_>, position: u64) -> PyResult<()> {
        self.conn.quick(py, |c| c.ack(position))?.py_err()
    }

    fn detach(&self, py: Python<'_>) -> PyResult<()> {
        self.conn.quick(py, |c| c.detach())?.py_err()
    }

    fn unsubscribe(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        self.conn.blocking(py, |c| c.unsubscribe(name))?.py_err()
    }

    #[getter]
    fn subscription(&self, py: Python<'_>) -> PyResult<Option<String>> {
        self.conn.quick(py, |c| c.subscription().map(str::to_owned))
    }

    fn begin(&self, py: Python<'_>) -> PyResult<()> {
        self.conn.quick(py, |c| c.begin())?.py_err()
    }

    fn commit(&self, py: Python<'_>) -> PyResult<()> {
        self.conn.blocking(py, |c| c.commit())?.py_err()
    }

    /// Discards the block's work and reads what is waiting: nothing waits for another process.
    fn rollback(&self, py: Python<'_>) -> PyResult<()> {
        self.conn.quick(py, |c| c.rollback())?.py_err()
    }

    fn savepoint(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        self.conn.quick(py, |c| c.savepoint(name))?.py_err()
    }

    fn release(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        self.conn.quick(py, |c| c.release(name))?.py_err()
    }

    fn rollback_to(&self, py: Python<'_>, name: &str) -> PyResult<()> {
        self.conn.quick(py, |c| c.rollback_to(name))?.py_err()
    }

    /// Reads what the descriptor announced, without blocking; returns how many notifications
    /// are ready to be taken with `next_notify`.
    fn poll(&self, py: Python<'_>) -> PyResult<usize> {
        self.conn.quick(py, |c| c.consume_input().map(|()| c.pending()))?.py_err()
    }

    /// Waits until at least one notification is ready or `timeout` seconds pass (`None`:
    /// forever); returns how many are ready (0 on timeout). The GIL is released while waiting,
    /// and Python's signal handlers run every `WAIT_SLICE`, so a KeyboardInterrupt ends the wait.
    ///
    /// It follows the core's wait protocol (`Connection::prepare_to_sleep`, then a poll of the
    /// descriptor, then `Connection::woke`), so that while this listener keeps up its notifiers
    /// make no system call to wake it; the connection is not held while it sleeps.
    #[pyo3(signature = (timeout=None))]
    fn wait(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<usize> {
        let deadline = match timeout {
            None => None,
            Some(t) if t.is_nan() => return Err(PyValueError::new_err("timeout must be a number, not NaN")),
            // A deadline too far away to represent is no deadline.
            Some(t) => Duration::try_from_secs_f64(t.max(0.0)).ok().and_then(|d| Instant::now().checked_add(d)),
        };
        loop {
            // Another thread's call may hold the connection (say, a commit waiting for another
            // process): the timeout still counts while this one waits for it.
            let prepared = self
                .conn
                .blocking_until(py, deadline, |c| c.prepare_to_sleep().map(|_| (c.pending(), c.as_raw_fd())))?;
            let Some((ready, fd)) = prepared.transpose().py_err()? else { return Ok(0) };
            if ready > 0 {
                return Ok(ready);
            }
            let slice = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) if !left.is_zero() => left.min(WAIT_SLICE),
                    _ => return Ok(0),
                },
                None => WAIT_SLICE,
            };
            // The descriptor stays open while `self` is alive (closing a session keeps it until
            // the object is freed), and `self` outlives this call.
            let slept = Instant::now();
            let readable = py
                .detach(|| poll_readable(fd, slice))
                .map_err(|e| PyOSError::new_err(format!("could not wait for notifications: {e}")))?;
            let slept = slept.elapsed();
            self.conn.quick(py, |c| c.woke(readable, slept))?;
            py.check_signals()?;
        }
    }

    /// The first half of `wait`, for an event loop that waits on `fileno()` itself: reads what
    /// is waiting with the wake-up flag raised (so notifiers committing meanwhile make no system
    /// call), watches the queue for a few microseconds while traffic is steady, then lowers the
    /// flag and looks once more. Returns how many notifications are ready; if none, wait for the
    /// descriptor, then call `woke`.
    fn prepare_to_sleep(&self, py: Python<'_>) -> PyResult<usize> {
        self.conn.blocking(py, |c| c.prepare_to_sleep().map(|_| c.pending()))?.py_err()
    }

    /// A consumer stops taking notifications for now: lowers the wake-up flag, and leaves the
    /// descriptor readable if notifications are already waiting. Does nothing on a closed
    /// connection, nor when another thread is using it (that thread's call leaves it settled or
    /// awake): a generator that ends must not wait for, say, another thread's commit.
    fn settle(&self, py: Python<'_>) -> PyResult<()> {
        let settled =
            self.conn.quick_until(py, Some(Instant::now()), |c| if c.is_closed() { Ok(()) } else { c.settle() })?;
        settled.unwrap_or(Ok(())).py_err()
    }

    /// The second half of `wait`: the descriptor was waited on for `slept` seconds, and was
    /// `readable` at the end (or not: a timeout).
    fn woke(&self, py: Python<'_>, readable: bool, slept: f64) -> PyResult<()> {
        let slept = Duration::try_from_secs_f64(slept.max(0.0)).unwrap_or(Duration::MAX);
        self.conn.quick(py, |c| c.woke(readable, slept))
    }

    /// Takes the next notification that is ready, as `(channel, payload, pid)`, or `None`.
    fn next_notify<'py>(&self, py: Python<'py>) -> PyResult<Option<NotifyTuple<'py>>> {
        // The strings are made from the notification the session lends, with no Rust copy in
        // between: the one exception to "no Python objects while the connection is held". Making
        // a str runs no Python code and cannot release the GIL (strings are not tracked by the
        // garbage collector, so no collection and no finalizer runs). pyo3 makes the tuple, and
        // any exception, after the connection is released.
        self.conn
            .quick(py, |c| {
                Ok(c.notifies_ref()?.map(|n| {
                    let ns = n.commit_time.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
                    (PyString::new(py, n.channel), PyString::new(py, n.payload), n.pid, n.position, n.txn, ns)
                }))
            })?
            .py_err()
    }

    /// Notifications ready to be taken without reading the queue.
    #[getter]
    fn pending(&self, py: Python<'_>) -> PyResult<usize> {
        self.conn.quick(py, |c| c.pending())
    }

    /// Notices raised since the last call, as `(severity, sqlstate, message, detail, hint)`.
    fn take_notices(&self) -> Vec<NoticeTuple> {
        // The sink's lock is only ever held to push or drain a vector, never while waiting for
        // anything: taking it with the GIL held cannot deadlock.
        let mut sink = self.notices.lock().unwrap_or_else(|p| p.into_inner());
        sink.drain(..).map(|n| (n.severity.as_str(), n.sqlstate, n.message, n.detail, n.hint)).collect()
    }

    /// Whether there are notices waiting for `take_notices` (cheap).
    #[getter]
    fn has_notices(&self) -> bool {
        !self.notices.lock().unwrap_or_else(|p| p.into_inner()).is_empty()
    }

    fn fileno(&self, py: Python<'_>) -> PyResult<i32> {
        let (closed, fd) = self.conn.quick(py, |c| (c.is_closed(), c.as_raw_fd()))?;
        if closed {
            return Err(to_py(hark::Error::closed()));
        }
        Ok(fd)
    }

    #[getter]
    fn pid(&self) -> i32 {
        self.pid
    }

    fn listening_channels(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.conn.quick(py, |c| c.ensure_usable().map(|()| c.listening_channels()))?.py_err()
    }

    /// The queue's positions and sizes and each listener's and subscription's lag (`hark stat`).
    /// Moves the queue's tail first, which waits for the tail lock.
    fn stats(&self, py: Python<'_>) -> PyResult<StatsTuple> {
        let st = self.conn.blocking(py, |c| c.ensure_usable().and_then(|()| c.queue().stats()))?.py_err()?;
        let receivers = st
            .listeners
            .into_iter()
            .map(|l| {
                (
                    l.subscription,
                    l.pid,
                    l.os_pid,
                    l.alive,
                    l.channel_names,
                    l.position,
                    l.lag,
                    l.lag_notifications,
                    l.lag_age.map(|d| d.as_secs_f64()),
                    l.max_lag_bytes,
                    l.max_lag_age.as_secs_f64(),
                    l.gap_pending,
                )
            })
            .collect();
        Ok((
            st.head,
            st.tail,
            st.usage,
            st.max_queue_size,
            st.segment_size,
            st.max_payload,
            st.segment_files,
            receivers,
        ))
    }

    /// May move the queue's tail first, which waits for the tail lock.
    fn queue_usage(&self, py: Python<'_>) -> PyResult<f64> {
        self.conn.blocking(py, |c| c.queue_usage())?.py_err()
    }

    /// `"idle"`, `"intrans"` or `"inerror"` (libpq's transaction states).
    #[getter]
    fn transaction_status(&self, py: Python<'_>) -> PyResult<&'static str> {
        Ok(self.conn.quick(py, |c| c.transaction_status())?.name())
    }

    #[getter]
    fn path(&self) -> PathBuf {
        self.path.clone()
    }

    /// Frees the listener slot, which waits for the tail lock.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        self.conn.blocking(py, |c| c.close())
    }

    #[getter]
    fn closed(&self, py: Python<'_>) -> PyResult<bool> {
        self.conn.quick(py, |c| c.is_closed())
    }

    /// Test hook: panics while holding the connection, with the GIL held or released, as a bug
    /// inside the core would.
    #[cfg(feature = "fault-hooks")]
    fn _panic_inside(&self, py: Python<'_>, blocking: bool) -> PyResult<()> {
        let boom = |_: &mut Connection| panic!("a panic inside the session (test hook)");
        if blocking {
            self.conn.blocking(py, boom)
        } else {
            self.conn.quick(py, boom)
        }
    }
}

impl Drop for Session {
    /// A session freed without `close()` frees its listener slot here, which waits for the tail
    /// lock: not with the GIL held. Nobody else can reach the session any more, so the GIL can go.
    fn drop(&mut self) {
        let conn = &mut self.conn;
        if Python::try_attach(|py| py.detach(|| conn.close_unshared())).is_none() {
            conn.close_unshared(); // pyo3 cannot attach here (interpreter finalizing): no GIL to release
        }
    }
}

/// `poll(2)` for readability, for at most `timeout` (rounded up to a millisecond): whether the
/// descriptor is readable. An interrupted poll is not an error: the caller checks signals and
/// loops.
fn poll_readable(fd: i32, timeout: Duration) -> std::io::Result<bool> {
    let ms = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32;
    let mut pfd = libc::pollfd { fd, events: libc::POLLIN, revents: 0 };
    // SAFETY: `pfd` is a valid pollfd for the duration of the call, and the count is 1.
    let r = unsafe { libc::poll(&mut pfd, 1, ms) };
    if r < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
        return Ok(false);
    }
    Ok(r > 0)
}

/// A statement's result as Python receives it: `(tag, columns, rows)`, rows as tuples of
/// `str | None`.
fn py_result(py: Python<'_>, r: hark::QueryResult) -> PyResult<QueryTuple<'_>> {
    let rows = PyList::empty(py);
    for row in r.rows {
        rows.append(PyTuple::new(py, row)?)?;
    }
    Ok((r.tag, r.columns, r.types, rows))
}
