//! `hark_conn`: opening and finishing a session, its status and last error, and its notices.

use crate::failure::{c_string, empty, Failure};
use crate::result::hark_result;
use hark::{Connection, Options, TransactionStatus};
use std::ffi::{CStr, CString, OsStr};
use std::os::raw::{c_char, c_int, c_void};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// A session on a queue directory: libpq's `PGconn`, with its "backend" inside the calling process.
///
/// Ownership: created by hark_connect or hark_connect_options, owned by the caller, released with
/// hark_finish (exactly once). Threads: a connection may be handed to another thread, but must not
/// be used by two threads at the same time; separate connections are independent, so a process
/// may open one per thread. After fork(), the child must not use its parent's connections (calls
/// fail with HARK_ERR_CLOSED); it may still hark_finish them.
pub struct hark_conn {
    session: Option<Connection>,
    /// `HARK_OK`, or why hark_connect failed.
    status: hark_result,
    open_failure: Option<Failure>,
    /// Message and SQLSTATE of the most recent call if it failed, else empty (cleared when a
    /// call starts).
    last_text: CString,
    last_sqlstate: CString,
    /// The gap the most recent call met (it failed with HARK_ERR_GAP), for hark_last_gap.
    pub(crate) last_gap: Option<hark::Gap>,
    notice: (hark_notice_processor, *mut c_void),
}

/// Options for hark_connect_options. Zero in a field means "the default, or whatever the existing
/// queue was created with"; sizes are fixed when a queue is created, and reopening a queue with a
/// different explicit size fails with HARK_ERR_INVALID_ARGUMENT. Initialise with
/// `hark_options o = {0};` and set the fields you need. The struct is only read during the call.
/// Its layout is frozen: options added later are only given through hark_connect_params, whose
/// keyword arrays (as libpq's `PQconnectdbParams`) can grow without changing the ABI.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct hark_options {
    /// Maximum bytes between the slowest listener and the head (default 8 GiB, minimum 512 KiB).
    pub max_queue_size: u64,
    /// Maximum payload length in bytes (default 7999, as PostgreSQL; at most 1 MiB).
    pub max_payload: u64,
    /// Size of each segment file, a power of two (0: chosen from the two sizes above).
    pub segment_size: u64,
    /// Share the queue with the directory's group: directory 02770 (setgid) and files 0660 instead of
    /// 0700 and 0600.
    pub group_shared: bool,
}

impl hark_options {
    /// The core's options: a zero size means the default (or the existing queue's).
    pub(crate) fn to_options(self) -> Options {
        let nonzero = |n: u64| (n != 0).then_some(n);
        Options {
            max_queue_size: nonzero(self.max_queue_size),
            // Larger than usize only on 32-bit targets; saturate into the core's range check.
            max_payload: nonzero(self.max_payload).map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
            segment_size: nonzero(self.segment_size),
            group_shared: self.group_shared,
            create: true,
            ..Options::default()
        }
    }
}

/// A notice processor, like libpq's `PQnoticeProcessor`: called synchronously, on the thread
/// making the hark call, with the `arg` given to hark_set_notice_processor and a message such as
/// `"WARNING:  there is already a transaction in progress\n"` (severity, two spaces, message,
/// DETAIL/HINT lines, a final newline). `message` is valid only during the call. The processor
/// must not call hark functions on the same connection.
pub type hark_notice_processor = Option<unsafe extern "C" fn(arg: *mut c_void, message: *const c_char)>;

/// A session's transaction state, numbered as libpq's `PGTransactionStatusType`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum hark_transaction_status_type {
    /// Not in a transaction block.
    HARK_TRANS_IDLE = 0,
    /// Inside BEGIN … .
    HARK_TRANS_INTRANS = 2,
    /// Inside a block after an error; only ROLLBACK ends it.
    HARK_TRANS_INERROR = 3,
    /// The connection is NULL or not open.
    HARK_TRANS_UNKNOWN = 4,
}

/// The notice processor a connection starts with: writes the message to standard error, as libpq's
/// default does. May be passed to hark_set_notice_processor to restore the default.
#[no_mangle]
pub unsafe extern "C" fn hark_default_notice_processor(arg: *mut c_void, message: *const c_char) {
    ffi_boundary!((), {
        let _ = arg; // the default needs no context
        if !message.is_null() {
            use std::io::Write;
            // SAFETY: a non-NULL message is a NUL-terminated string by this function's contract.
            let bytes = unsafe { CStr::from_ptr(message) }.to_bytes();
            let _ = std::io::stderr().write_all(bytes);
        }
    })
}

/// The processor and its argument, moved into the core's notice handler.
struct Processor(unsafe extern "C" fn(*mut c_void, *const c_char), *mut c_void);

// SAFETY: the handler runs only inside calls on its connection, which the caller may make from any
// thread but never from two at once (hark_conn's contract); the caller vouches that `arg` may be
// used from whichever thread makes those calls, as with any libpq callback argument.
unsafe impl Send for Processor {}

impl Processor {
    fn call(&self, message: &CStr) {
        // SAFETY: the caller's processor, called with its own argument and a string that lives
        // for the call, as hark_notice_processor promises.
        unsafe { (self.0)(self.1, message.as_ptr()) }
    }
}

impl hark_conn {
    fn open(dir: *const c_char, options: &Options) -> hark_conn {
        let dir = (!dir.is_null()).then(|| {
            // SAFETY: a non-NULL dir is a NUL-terminated string (hark_connect's contract).
            unsafe { CStr::from_ptr(dir) }.to_bytes()
        });
        hark_conn::open_bytes(dir, options)
    }

    /// Opens on `dir` (`None`: the default directory). Paths are bytes on Unix: no UTF-8 needed.
    pub(crate) fn open_bytes(dir: Option<&[u8]>, options: &Options) -> hark_conn {
        let opened = match dir {
            None => Connection::with_options(hark::default_dir(), options),
            Some(bytes) => Connection::with_options(Path::new(OsStr::from_bytes(bytes)), options),
        };
        hark_conn::from_open(opened.map_err(Failure::from))
    }

    /// A connection object for the outcome of an open, failed or not (libpq's way).
    pub(crate) fn from_open(opened: Result<Connection, Failure>) -> hark_conn {
        let mut conn = hark_conn {
            session: None,
            status: hark_result::HARK_OK,
            open_failure: None,
            last_text: CString::default(),
            last_sqlstate: CString::default(),
            last_gap: None,
            notice: (Some(hark_default_notice_processor), std::ptr::null_mut()),
        };
        match opened {
            Ok(session) => {
                conn.session = Some(session);
                conn.install_notice_processor();
            }
            Err(f) => {
                conn.status = f.code;
                conn.record(&f);
                conn.open_failure = Some(f);
            }
        }
        conn
    }

    fn install_notice_processor(&mut self) {
        let (Some(f), arg) = self.notice else { return };
        if let Some(s) = &mut self.session {
            let p = Processor(f, arg);
            s.set_notice_handler(Some(Box::new(move |n| {
                p.call(&c_string(&format!("{n}\n")));
            })));
        }
    }

    /// Forgets the last error, as every call but the read-only ones does first.
    pub(crate) fn clear_error(&mut self) {
        self.last_text = CString::default();
        self.last_sqlstate = CString::default();
    }

    pub(crate) fn record(&mut self, f: &Failure) {
        self.last_text = c_string(&f.message);
        self.last_sqlstate = c_string(f.sqlstate);
        self.last_gap = f.gap;
    }

    /// Runs `op` on the open session: clears the last error first, records the new one on failure.
    pub(crate) fn run<T>(&mut self, op: impl FnOnce(&mut Connection) -> Result<T, Failure>) -> Result<T, Failure> {
        self.last_text = CString::default();
        self.last_sqlstate = CString::default();
        self.last_gap = None;
        let r = match &mut self.session {
            Some(s) => match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| op(s))) {
                Ok(r) => r,
                Err(payload) => Err(self.close_after_panic(payload.as_ref())),
            },
            None => Err(Failure::new(
                hark_result::HARK_ERR_CLOSED,
                "08003",
                format!("no connection: {}", self.open_failure.as_ref().map_or("", |f| f.message.as_str())),
            )),
        };
        if let Err(f) = &r {
            self.record(f);
        }
        r
    }

    /// hark's panic policy, the same in every language: a panic inside a call is a bug, reported
    /// as an error (HARK_ERR_PANIC, SQLSTATE XX000); the process goes on, and the session it
    /// happened in is closed, since its state is unknown. Its listener slot is given back (or, if
    /// even closing panics, reaped once the process exits).
    fn close_after_panic(&mut self, payload: &(dyn std::any::Any + Send)) -> Failure {
        if let Some(s) = self.session.take() {
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(s))).is_err() {
                // Leave it be: the slot's byte lock goes with the process.
            }
        }
        let f = Failure::from(hark::Error::panicked(&hark::Error::panic_message(payload)));
        self.status = hark_result::HARK_ERR_PANIC;
        self.open_failure = Some(f.clone());
        f
    }

    /// Like [`hark_conn::run`] for calls that return a `hark_result`.
    pub(crate) fn result(&mut self, op: impl FnOnce(&mut Connection) -> Result<(), Failure>) -> hark_result {
        match self.run(op) {
            Ok(()) => hark_result::HARK_OK,
            Err(f) => f.code,
        }
    }

    /// The session if it is open in this process: `None` after a failed open, and in a child
    /// that inherited the connection through fork() (as hark_status says HARK_ERR_CLOSED there).
    pub(crate) fn session(&self) -> Option<&Connection> {
        self.session.as_ref().filter(|s| s.ensure_usable().is_ok())
    }
}

pub(crate) fn boxed(conn: hark_conn) -> *mut hark_conn {
    Box::into_raw(Box::new(conn))
}

/// Opens a session on the queue directory `dir`, or on the default directory when `dir` is NULL
/// (`$HARK_DIR`, else `/dev/shm/hark-<uid>`; `/tmp/hark-<uid>` without `/dev/shm`), like
/// `PQconnectdb`: a connection object comes back even when opening fails; check hark_status and
/// read hark_error_message, then release it with hark_finish either way. Returns NULL only if
/// hark itself failed (out of memory, an internal bug). `dir` is only read during the call.
/// Without a queue there, one is created, in a missing directory (made 0700) or an empty one;
/// a directory holding other files is refused (HARK_ERR_PERMISSION_DENIED, SQLSTATE 55000), and so
/// is a `dir` that looks like a PostgreSQL connection string or URL (`"dbname=app"`,
/// `"postgresql://…"`: HARK_ERR_INVALID_ARGUMENT). To open only an existing queue, give
/// hark_connect_params the keyword `create` with the value `off`.
#[no_mangle]
pub unsafe extern "C" fn hark_connect(dir: *const c_char) -> *mut hark_conn {
    ffi_boundary!(std::ptr::null_mut(), { boxed(hark_conn::open(dir, &Options::default())) })
}

/// hark_connect with options (NULL `options`: the defaults). A bad option value gives a
/// connection whose status is HARK_ERR_INVALID_ARGUMENT.
#[no_mangle]
pub unsafe extern "C" fn hark_connect_options(dir: *const c_char, options: *const hark_options) -> *mut hark_conn {
    ffi_boundary!(std::ptr::null_mut(), {
        // SAFETY: NULL or a valid hark_options, by this function's contract.
        let o = unsafe { options.as_ref() }.copied().unwrap_or_default();
        boxed(hark_conn::open(dir, &o.to_options()))
    })
}

/// Closes the session and frees the connection, like `PQfinish`: an open transaction is discarded
/// (as if rolled back), the listener registration released and unread notifications dropped.
/// NULL does nothing. `conn` must not be used afterwards; notifications and query results taken
/// from it stay valid until freed.
#[no_mangle]
pub unsafe extern "C" fn hark_finish(conn: *mut hark_conn) {
    ffi_boundary!((), {
        if !conn.is_null() {
            // SAFETY: a non-NULL conn came from hark_connect* and is finished once (contract).
            drop(unsafe { Box::from_raw(conn) });
        }
    })
}

/// `HARK_OK` if the connection opened and is usable, otherwise the `hark_result` of the failed
/// open, HARK_ERR_CLOSED in a child process that inherited the connection through fork(), or
/// HARK_ERR_PANIC once a call on it hit a bug in hark (the call failed with that code and the
/// session was closed; open a new connection) (HARK_ERR_NULL_PARAMETER for a NULL `conn`),
/// like `PQstatus`.
#[no_mangle]
pub unsafe extern "C" fn hark_status(conn: *const hark_conn) -> hark_result {
    ffi_boundary!(hark_result::HARK_ERR_PANIC, {
        // SAFETY: NULL or a live connection (contract).
        match unsafe { conn.as_ref() } {
            None => hark_result::HARK_ERR_NULL_PARAMETER,
            Some(c) => match &c.session {
                // A session belongs to the process that opened it.
                Some(s) if s.ensure_usable().is_err() => hark_result::HARK_ERR_CLOSED,
                _ => c.status,
            },
        }
    })
}

/// The message of the most recent failed call on this connection (including a failed open), or
/// `""` if the most recent call succeeded, like `PQerrorMessage`: the message, then PostgreSQL's
/// `DETAIL:` and `HINT:` lines if any, with no trailing newline. For a NULL `conn`, a static
/// message. The string belongs to the connection: valid until the next call that takes `conn`
/// (other than hark_status, hark_error_message, hark_error_sqlstate, hark_socket,
/// hark_backend_pid and hark_transaction_status) or hark_finish. Do not free it.
#[no_mangle]
pub unsafe extern "C" fn hark_error_message(conn: *const hark_conn) -> *const c_char {
    ffi_boundary!(b"internal error in hark_error_message\0".as_ptr().cast(), {
        // SAFETY: NULL or a live connection (contract).
        match unsafe { conn.as_ref() } {
            None => b"connection pointer is NULL\0".as_ptr().cast(),
            Some(c) => c.last_text.as_ptr(),
        }
    })
}

/// PostgreSQL's five-character SQLSTATE of the most recent failed call (`"54000"` for a full
/// queue, `"22023"` for a bad argument, …), or `""` if it succeeded or `conn` is NULL. Same
/// lifetime as hark_error_message's string; do not free it.
#[no_mangle]
pub unsafe extern "C" fn hark_error_sqlstate(conn: *const hark_conn) -> *const c_char {
    ffi_boundary!(empty(), {
        // SAFETY: NULL or a live connection (contract).
        unsafe { conn.as_ref() }.map_or(empty(), |c| c.last_sqlstate.as_ptr())
    })
}

/// The descriptor to wait on with select/poll/epoll for readability, like `PQsocket`: it becomes
/// readable when notifications may be waiting; then call hark_consume_input and drain
/// hark_notifies. -1 if `conn` is NULL or not open. The descriptor belongs to the connection:
/// never close or read it, and stop using it after hark_finish.
#[no_mangle]
pub unsafe extern "C" fn hark_socket(conn: *const hark_conn) -> c_int {
    ffi_boundary!(-1, {
        // SAFETY: NULL or a live connection (contract).
        match unsafe { conn.as_ref() }.and_then(hark_conn::session) {
            None => -1,
            Some(s) => s.as_raw_fd(),
        }
    })
}

/// The session's backend PID, like `PQbackendPID`: what other sessions see as the sender of its
/// notifications (their `be_pid`) and `pg_backend_pid()` returns; 0 if `conn` is NULL or not open.
/// Unique among the live sessions of the queue, as a PostgreSQL backend's: the process's own id
/// for its first connection, a synthetic one (2^22 or more, above any Linux process id) for the
/// others, so that comparing a notification's `be_pid` with it skips exactly this connection's.
#[no_mangle]
pub unsafe extern "C" fn hark_backend_pid(conn: *const hark_conn) -> c_int {
    ffi_boundary!(0, {
        // SAFETY: NULL or a live connection (contract).
        unsafe { conn.as_ref() }.and_then(hark_conn::session).map_or(0, |s| s.backend_pid())
    })
}

/// The session's transaction state, like `PQtransactionStatus`.
#[no_mangle]
pub unsafe extern "C" fn hark_transaction_status(conn: *const hark_conn) -> hark_transaction_status_type {
    ffi_boundary!(hark_transaction_status_type::HARK_TRANS_UNKNOWN, {
        // SAFETY: NULL or a live connection (contract).
        match unsafe { conn.as_ref() }.and_then(hark_conn::session).map(|s| s.transaction_status()) {
            None => hark_transaction_status_type::HARK_TRANS_UNKNOWN,
            Some(TransactionStatus::Idle) => hark_transaction_status_type::HARK_TRANS_IDLE,
            Some(TransactionStatus::InTrans) => hark_transaction_status_type::HARK_TRANS_INTRANS,
            Some(TransactionStatus::InError) => hark_transaction_status_type::HARK_TRANS_INERROR,
        }
    })
}

/// Sets the function that receives this connection's notices (identifier truncation, the
/// half-full queue warning, `there is no transaction in progress`) and returns the previous one,
/// like `PQsetNoticeProcessor`. A NULL `proc` changes nothing and returns the current processor.
/// Returns NULL if `conn` is NULL. `arg` is passed back to `proc` untouched and must stay valid
/// while `proc` is installed.
#[no_mangle]
pub unsafe extern "C" fn hark_set_notice_processor(
    conn: *mut hark_conn,
    proc: hark_notice_processor,
    arg: *mut c_void,
) -> hark_notice_processor {
    ffi_boundary!(None, {
        // SAFETY: NULL or a live connection, not used by another thread now (contract).
        let c = unsafe { conn.as_mut() }?;
        let previous = c.notice.0;
        if proc.is_some() {
            c.notice = (proc, arg);
            c.install_notice_processor();
        }
        previous
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn may_move_between_threads<T: Send>() {}

    #[test]
    fn a_session_may_be_handed_to_another_thread() {
        // hark_conn's documentation promises this of the session it wraps; the notice argument
        // is the caller's to vouch for (see `Processor`).
        may_move_between_threads::<Connection>();
        may_move_between_threads::<Processor>();
    }
}
