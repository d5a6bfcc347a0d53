//! Errors and notices, with PostgreSQL's message texts and SQLSTATEs.
//!
//! Every error a user can cause carries an [`ErrorKind`] (the identity shared by all languages:
//! `HARK_ERR_QUEUE_FULL` in C, `hark.QueueFullError` in Python, `err.code === 'HARK_ERR_QUEUE_FULL'`
//! in Node), PostgreSQL's five-character SQLSTATE and its message text where it has one.

use std::fmt;
use std::io;

/// The family of an error. The numeric codes are part of the C ABI and are never renumbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// A bad argument: empty or too long channel, payload too long, NUL or invalid UTF-8.
    InvalidArgument,
    /// The SQL dialect could not parse or does not know a statement, function or value, or the
    /// statement nests deeper than hark parses (`54001 stack depth limit exceeded`).
    Syntax,
    /// A statement not allowed in the session's transaction state (aborted block, savepoint
    /// outside a block, unknown savepoint).
    TransactionState,
    /// The queue has reached its maximum size.
    QueueFull,
    /// Every listener slot of the queue is taken.
    TooManyListeners,
    /// The file system is full (or a file-size limit was hit) while allocating a segment.
    DiskFull,
    /// A control or segment file holds data that cannot be hark's.
    Corrupted,
    /// The queue was written by an incompatible version of hark.
    Incompatible,
    /// The queue directory or one of its files is not safe to use (owner, mode, symlink).
    PermissionDenied,
    /// Any other operating-system error.
    Io,
    /// The connection was closed, or belongs to the parent of a forked process.
    Closed,
    /// A durable subscription is attached by another live session.
    InUse,
    /// A subscription (or a listener under a lag limit) was cut: notifications were skipped.
    /// Raised once, by the receive that meets the gap, before the notifications after it; see
    /// [`Error::gap`].
    Gap,
    /// A bug in hark: a call panicked. The call fails with this kind, the process goes on, and
    /// the session it happened in is closed (every binding does the same).
    Panic,
}

impl ErrorKind {
    /// The stable number used by the C ABI (`hark_result`).
    pub fn code(self) -> i32 {
        match self {
            ErrorKind::InvalidArgument => 100,
            ErrorKind::Syntax => 101,
            ErrorKind::TransactionState => 102,
            ErrorKind::InUse => 103,
            ErrorKind::QueueFull => 200,
            ErrorKind::TooManyListeners => 201,
            ErrorKind::DiskFull => 202,
            ErrorKind::Corrupted => 300,
            ErrorKind::Incompatible => 301,
            ErrorKind::PermissionDenied => 302,
            ErrorKind::Io => 400,
            ErrorKind::Closed => 500,
            ErrorKind::Gap => 600,
            ErrorKind::Panic => 901,
        }
    }

    /// The constant's name in C (and the `code` of a Node error).
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::InvalidArgument => "HARK_ERR_INVALID_ARGUMENT",
            ErrorKind::Syntax => "HARK_ERR_SYNTAX",
            ErrorKind::TransactionState => "HARK_ERR_TRANSACTION_STATE",
            ErrorKind::InUse => "HARK_ERR_IN_USE",
            ErrorKind::QueueFull => "HARK_ERR_QUEUE_FULL",
            ErrorKind::TooManyListeners => "HARK_ERR_TOO_MANY_LISTENERS",
            ErrorKind::DiskFull => "HARK_ERR_DISK_FULL",
            ErrorKind::Corrupted => "HARK_ERR_CORRUPTED",
            ErrorKind::Incompatible => "HARK_ERR_INCOMPATIBLE",
            ErrorKind::PermissionDenied => "HARK_ERR_PERMISSION_DENIED",
            ErrorKind::Io => "HARK_ERR_IO",
            ErrorKind::Closed => "HARK_ERR_CLOSED",
            ErrorKind::Gap => "HARK_ERR_GAP",
            ErrorKind::Panic => "HARK_ERR_PANIC",
        }
    }

    /// Every kind, in code order (for bindings that build tables).
    pub const ALL: [ErrorKind; 14] = [
        ErrorKind::InvalidArgument,
        ErrorKind::Syntax,
        ErrorKind::TransactionState,
        ErrorKind::InUse,
        ErrorKind::QueueFull,
        ErrorKind::TooManyListeners,
        ErrorKind::DiskFull,
        ErrorKind::Corrupted,
        ErrorKind::Incompatible,
        ErrorKind::PermissionDenied,
        ErrorKind::Io,
        ErrorKind::Closed,
        ErrorKind::Gap,
        ErrorKind::Panic,
    ];
}

/// An error, shaped like a PostgreSQL error report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    kind: ErrorKind,
    sqlstate: &'static str,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
    position: Option<usize>,
    gap: Option<Box<crate::Gap>>,
}

/// Shorthand for results in this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A new error of `kind` with PostgreSQL's `sqlstate` and `message`.
    pub fn new(kind: ErrorKind, sqlstate: &'static str, message: impl Into<String>) -> Error {
        Error { kind, sqlstate, message: message.into(), detail: None, hint: None, position: None, gap: None }
    }
    pub(crate) fn with_detail(mut self, detail: impl Into<String>) -> Error {
        self.detail = Some(detail.into());
        self
    }
    pub(crate) fn with_hint(mut self, hint: impl Into<String>) -> Error {
        self.hint = Some(hint.into());
        self
    }
    pub(crate) fn at(mut self, position: usize) -> Error {
        self.position = Some(position);
        self
    }

    /// The error a receive gives when it meets a gap (`HK001`, [`ErrorKind::Gap`]).
    pub fn from_gap(gap: crate::Gap) -> Error {
        let mut e = Error::new(
            ErrorKind::Gap,
            "HK001",
            format!(
                "{} notification{} skipped (commits {} to {})",
                gap.skipped,
                if gap.skipped == 1 { " was" } else { "s were" },
                gap.first_txn,
                gap.last_txn
            ),
        )
        .with_detail(format!(
            "The receiver fell behind its lag limit, or held back a full queue under the cut policy, and \
             was moved forward to position {}.",
            gap.resumed_at
        ))
        .with_hint("Receive again for the notifications after the gap.");
        e.gap = Some(Box::new(gap));
        e
    }

    /// What a [`ErrorKind::Gap`] error skipped.
    pub fn gap(&self) -> Option<&crate::Gap> {
        self.gap.as_deref()
    }

    /// The family of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }
    /// PostgreSQL's SQLSTATE, for example `54000` for a full queue.
    pub fn sqlstate(&self) -> &'static str {
        self.sqlstate
    }
    /// The primary message, without severity (`channel name too long`).
    pub fn message(&self) -> &str {
        &self.message
    }
    /// PostgreSQL's DETAIL line, if any.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }
    /// PostgreSQL's HINT line, if any.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }
    /// For errors in SQL text: the 1-based character position the error points at.
    pub fn position(&self) -> Option<usize> {
        self.position
    }

    // Constructors for the errors that recur across modules.
    pub(crate) fn invalid(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::InvalidArgument, "22023", message)
    }
    pub(crate) fn syntax(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Syntax, "42601", message)
    }
    pub(crate) fn corrupted(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::Corrupted, "XX001", message)
    }
    pub(crate) fn unsafe_path(message: impl Into<String>) -> Error {
        Error::new(ErrorKind::PermissionDenied, "42501", message)
    }
    /// `connection is closed` (08003), what every call on a closed session fails with.
    pub fn closed() -> Error {
        Error::new(ErrorKind::Closed, "08003", "connection is closed")
    }
    /// What a call that panicked fails with (XX000, [`ErrorKind::Panic`]); `what` is the panic's
    /// message. The bindings close the session it happened in: its state is unknown.
    pub fn panicked(what: &str) -> Error {
        Error::new(ErrorKind::Panic, "XX000", format!("internal error in hark: {what}; the connection was closed"))
    }

    /// The message of a caught panic's payload.
    pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
        payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown panic".to_owned())
    }

    pub(crate) fn aborted_block() -> Error {
        Error::new(
            ErrorKind::TransactionState,
            "25P02",
            "current transaction is aborted, commands ignored until end of transaction block",
        )
    }
    /// An operating-system error during `what` (a verb phrase naming the file).
    pub(crate) fn io(what: impl fmt::Display, err: io::Error) -> Error {
        match err.raw_os_error() {
            Some(libc::ENOSPC) | Some(libc::EFBIG) | Some(libc::EDQUOT) => {
                Error::new(ErrorKind::DiskFull, "53100", format!("could not {what}: {err}"))
            }
            _ => Error::new(ErrorKind::Io, "58030", format!("could not {what}: {err}")),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(d) = &self.detail {
            write!(f, "\nDETAIL:  {d}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\nHINT:  {h}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// Severity of a [`Notice`], as PostgreSQL names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Notice,
    Warning,
}

impl Severity {
    /// `NOTICE` or `WARNING`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Notice => "NOTICE",
            Severity::Warning => "WARNING",
        }
    }
}

/// A non-error message for the caller: identifier truncation, the half-full queue warning,
/// `there is no transaction in progress`. Delivered through the connection's notice handler,
/// like libpq's notice processor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub severity: Severity,
    pub sqlstate: &'static str,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl Notice {
    pub(crate) fn new(severity: Severity, sqlstate: &'static str, message: impl Into<String>) -> Notice {
        Notice { severity, sqlstate, message: message.into(), detail: None, hint: None }
    }
}

impl fmt::Display for Notice {
    /// libpq's default rendering: `WARNING:  message` and DETAIL/HINT lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:  {}", self.severity.as_str(), self.message)?;
        if let Some(d) = &self.detail {
            write!(f, "\nDETAIL:  {d}")?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\nHINT:  {h}")?;
        }
        Ok(())
    }
}
