//! A session: one connection's listen set, transaction state and inbox (PostgreSQL's backend).

mod block;
mod commit;
mod event;
mod fxhash;
mod inbox;
mod marked;
mod receiver;
mod statements;
mod subscribe;
mod txn;

pub use event::{AckMode, Event, Gap, SubscribeOptions};
pub use inbox::NotificationRef;

pub(crate) use block::State;
pub(crate) use txn::ListenAction;

use crate::error::{Error, ErrorKind, Notice, Result, Severity};
use crate::options::Options;
use crate::queue::Queue;
use crate::sys::{fork, proc};
use block::Block;
use receiver::Receiver;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// A notification as a listener receives it: PostgreSQL's three fields (R6), and where and when
/// it was committed.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Notification {
    /// The channel name (libpq's `relname`).
    pub channel: String,
    /// The payload, `""` when none was given (libpq's `extra`).
    pub payload: String,
    /// The backend PID of the session that sent it (libpq's `be_pid`): compare it with
    /// [`Connection::backend_pid`] to recognise your own notifications.
    pub pid: i32,
    /// Its position in the queue: unique for the queue's life (until a reboot wipes it) and
    /// increasing in commit order, so a consumer can make its processing idempotent. A
    /// subscription acknowledges it with [`Connection::ack`].
    pub position: u64,
    /// The commit sequence number of its transaction: the same for every notification of one
    /// transaction, increasing from one commit to the next.
    pub txn: u64,
    /// When its transaction committed (the notifier's clock).
    pub commit_time: std::time::SystemTime,
}

/// Where a session stands with respect to transactions, in libpq's words (`PQtransactionStatus`),
/// which every binding uses: C `HARK_TRANS_IDLE`/`INTRANS`/`INERROR`, and the strings of
/// [`TransactionStatus::name`] in Python and Node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionStatus {
    /// Not in a transaction block (libpq's `PQTRANS_IDLE`).
    Idle,
    /// Inside `BEGIN` … (libpq's `PQTRANS_INTRANS`).
    InTrans,
    /// Inside a block after an error; only ROLLBACK (or COMMIT, which rolls back) ends it
    /// (libpq's `PQTRANS_INERROR`).
    InError,
}

impl TransactionStatus {
    /// `"idle"`, `"intrans"` or `"inerror"`: the status as Python and Node spell it.
    pub fn name(self) -> &'static str {
        match self {
            TransactionStatus::Idle => "idle",
            TransactionStatus::InTrans => "intrans",
            TransactionStatus::InError => "inerror",
        }
    }
}

/// Notice handler type: called synchronously with each notice.
pub type NoticeHandler = Box<dyn FnMut(&Notice) + Send>;

/// One session on a queue: PostgreSQL's connection with its backend.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("hark-doc-conn-{}", std::process::id()));
/// let mut listener = hark::Connection::open(&dir)?;
/// let mut notifier = hark::Connection::open(&dir)?;
/// listener.listen("events")?;
/// notifier.begin()?;
/// notifier.notify("events", "first")?;
/// notifier.notify("events", "first")?; // folded: same channel and payload in one transaction
/// notifier.notify("events", "second")?;
/// assert!(listener.notifies()?.is_none()); // nothing before the commit
/// notifier.commit()?;
/// let n = listener.notifies()?.unwrap();
/// assert_eq!((n.channel.as_str(), n.payload.as_str()), ("events", "first"));
/// assert_eq!(listener.notifies()?.unwrap().payload, "second");
/// assert!(listener.notifies()?.is_none());
/// # drop((listener, notifier)); std::fs::remove_dir_all(&dir).unwrap();
/// # Ok::<(), hark::Error>(())
/// ```
///
/// A session is three parts, each owning its state: the transaction block (`block.rs`, the
/// only code that changes the block state), the receiver (`receiver.rs`: wake-up socket,
/// listener slot, inbox and the wait protocol), and the SQL executor (`crate::sql`), which runs
/// statements through the methods below. This file holds what ties them: opening, the
/// statements' API, the commit's orchestration (`commit.rs`) and closing.
pub struct Connection {
    pub(crate) queue: Arc<Queue>,
    pid: i32,
    fork_gen: u64,
    closed: bool,
    /// This session's own description of `slots`; its byte lock owns the receiver's slot.
    /// Closed by `Drop`, except in a forked child (see `sys/fork.rs`).
    lock_fd: std::mem::ManuallyDrop<OwnedFd>,
    /// Committed channels, in LISTEN order.
    pub(crate) channels: Vec<String>,
    pub(crate) block: Block,
    pub(crate) rx: Receiver,
    /// Whether the session ever committed a LISTEN (R25's quirk needs it; `DISCARD` keeps it).
    pub(crate) listened_ever: bool,
    notice_handler: Option<NoticeHandler>,
}

impl Connection {
    /// Opens a session on the queue in `dir` (created if missing) with default options.
    pub fn open(dir: impl AsRef<Path>) -> Result<Connection> {
        Connection::with_options(dir, &Options::default())
    }

    /// Opens a session on the queue in `dir` with `options`.
    pub fn with_options(dir: impl AsRef<Path>, options: &Options) -> Result<Connection> {
        Connection::on(Queue::open(dir, options)?)
    }

    /// Opens a session on the default queue directory ([`crate::default_dir`]).
    pub fn open_default() -> Result<Connection> {
        Connection::open(crate::options::default_dir())
    }

    /// Opens another session on an already open queue.
    pub fn on(queue: Arc<Queue>) -> Result<Connection> {
        let lock_fd = queue.dir.open_file(crate::queue::SLOTS, true)?.expect("created");
        // Its byte lock will prove this session alive: a forked child must not keep it.
        fork::register(lock_fd.as_raw_fd());
        let opened = queue
            .claim_backend_pid(lock_fd.as_raw_fd())
            .and_then(|pid| Ok((pid, Receiver::new(queue.clone(), proc::random_u64())?)));
        let (pid, rx) = match opened {
            Ok(v) => v,
            Err(e) => {
                fork::unregister(lock_fd.as_raw_fd());
                return Err(e);
            }
        };
        Ok(Connection {
            queue,
            pid,
            fork_gen: proc::fork_generation(),
            closed: false,
            lock_fd: std::mem::ManuallyDrop::new(lock_fd),
            channels: Vec::new(),
            block: Block::default(),
            rx,
            listened_ever: false,
            notice_handler: None,
        })
    }

    /// The queue this session is on.
    pub fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    /// This session's backend PID (`pg_backend_pid()`, `PQbackendPID`): what other sessions see
    /// as the sender of its notifications. Unique among the live sessions of the queue, as a
    /// PostgreSQL backend's PID is: the process's id for the first session of a process (more
    /// exactly, when no other live session holds that PID), a synthetic one of at least 2^22,
    /// above any Linux process id, for the others (`queue/pids.rs`).
    pub fn backend_pid(&self) -> i32 {
        self.pid
    }

    /// The descriptor that becomes readable when notifications may be waiting (`PQsocket`, I8).
    /// Poll it, then call [`Connection::consume_input`] and drain [`Connection::notifies`].
    pub fn as_raw_fd(&self) -> RawFd {
        self.rx.raw_fd()
    }

    /// Channels this session listens on after its last committed change (`pg_listening_channels`),
    /// in LISTEN order.
    pub fn listening_channels(&self) -> Vec<String> {
        self.channels.clone()
    }

    /// `pg_notification_queue_usage()`: the fraction of the maximum size in use, in whole pages.
    pub fn queue_usage(&self) -> Result<f64> {
        self.check_usable()?;
        self.queue.usage()
    }

    /// The session's transaction state.
    pub fn transaction_status(&self) -> TransactionStatus {
        self.block.status()
    }

    /// Installs the function that receives notices (like `PQsetNoticeProcessor`). `None` restores
    /// the default, which writes them to standard error as libpq does.
    pub fn set_notice_handler(&mut self, handler: Option<NoticeHandler>) {
        self.notice_handler = handler;
    }

    /// PostgreSQL's WARNING for COMMIT, ROLLBACK or PREPARE TRANSACTION outside a block.
    pub(crate) fn warn_no_transaction(&mut self) {
        self.notice(Notice::new(Severity::Warning, "25P01", "there is no transaction in progress"));
    }

    pub(crate) fn notice(&mut self, n: Notice) {
        match &mut self.notice_handler {
            Some(h) => h(&n),
            None => eprintln!("{n}"),
        }
    }

    pub(crate) fn flush_notices_pub(&mut self) {
        self.flush_notices();
    }

    /// Hands the receiver's warnings to the notice handler.
    fn flush_notices(&mut self) {
        for n in self.rx.take_notices() {
            self.notice(n);
        }
    }

    /// `Ok` when the session can be used: not closed, and in the process that opened it (a
    /// forked child gets a `Closed` error). Every fallible method checks this first; getters that
    /// cannot fail (`listening_channels`, `backend_pid`) do not, so bindings check it for them.
    pub fn ensure_usable(&self) -> Result<()> {
        self.check_usable()
    }

    pub(crate) fn check_usable(&self) -> Result<()> {
        if self.closed {
            return Err(Error::closed());
        }
        if self.fork_gen != proc::fork_generation() {
            return Err(Error::new(
                ErrorKind::Closed,
                "08003",
                "connection was opened by the parent process; open a new connection after fork()",
            ));
        }
        Ok(())
    }

    // ----- receiving (receiver.rs) -----------------------------------------------------------

    /// Reads what the session's descriptor announced (`PQconsumeInput`): clears its readability
    /// and, outside a transaction block, copies waiting notifications into the session's inbox.
    pub fn consume_input(&mut self) -> Result<()> {
        self.check_usable()?;
        let r = self.rx.consume_input(self.block.is_idle());
        self.flush_notices();
        r
    }

    /// The next notification, or `None` (`PQnotifies`). Never blocks. Outside a transaction
    /// block, an empty inbox is refilled from the queue first.
    pub fn notifies(&mut self) -> Result<Option<Notification>> {
        Ok(self.notifies_ref()?.map(|n| n.to_owned()))
    }

    /// [`Connection::notifies`] without the copies: the next notification, lent until the next
    /// call on this session. Receiving this way allocates nothing per notification.
    ///
    /// ```
    /// # let dir = std::env::temp_dir().join(format!("hark-doc-ref-{}", std::process::id()));
    /// # let mut listener = hark::Connection::open(&dir)?;
    /// # let mut notifier = hark::Connection::open(&dir)?;
    /// listener.listen("events")?;
    /// notifier.notify("events", "a")?;
    /// notifier.notify("events", "b")?;
    /// let mut seen = String::new();
    /// while let Some(n) = listener.notifies_ref()? {
    ///     seen.push_str(n.payload);
    /// }
    /// assert_eq!(seen, "ab");
    /// # drop((listener, notifier)); std::fs::remove_dir_all(&dir).unwrap();
    /// # Ok::<(), hark::Error>(())
    /// ```
    ///
    /// A receiver that was cut ([`Gap`]) gets, once, an error of kind [`ErrorKind::Gap`]
    /// ([`Error::gap`] says what was skipped) in place of the skipped notifications; the next
    /// call goes on with those after the gap. [`Connection::next_event`] gives it as a value.
    pub fn notifies_ref(&mut self) -> Result<Option<NotificationRef<'_>>> {
        self.check_usable()?;
        self.flush_notices();
        match self.rx.next(self.block.is_idle())? {
            None => Ok(None),
            Some(inbox::Item::Notification(n)) => Ok(Some(n)),
            Some(inbox::Item::Gap(g)) => Err(Error::from_gap(g)),
        }
    }

    /// Waits until a notification is available or `timeout` passes (`None`: forever). Returns
    /// whether one is available; take it with [`Connection::notifies`].
    ///
    /// A listening session first raises its wake-up flag, so that notifiers committing meanwhile
    /// need no system call, and reads the queue; if its queue just ran dry it watches the head for
    /// a few microseconds; then it lowers the flag, looks once more, and sleeps on its descriptor.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<bool> {
        self.check_usable()?;
        let r = self.rx.wait(self.block.is_idle(), timeout);
        self.flush_notices();
        r
    }

    /// The first half of [`Connection::wait`], for a caller that sleeps on
    /// [`Connection::as_raw_fd`] itself (an event loop, or a binding that must not hold the
    /// session while it sleeps): reads what is waiting with the wake-up flag raised, watches the
    /// head briefly when traffic is steady, then lowers the flag and looks once more. Returns
    /// whether notifications are ready; if not, poll the descriptor, then call
    /// [`Connection::woke`]. Used this way, a listener that keeps up costs its notifiers no
    /// system call, exactly as with `wait`.
    pub fn prepare_to_sleep(&mut self) -> Result<bool> {
        self.check_usable()?;
        let r = self.rx.prepare_to_sleep(self.block.is_idle(), true);
        self.flush_notices();
        r
    }

    /// The second half of [`Connection::wait`]: tells the session that a sleep on its descriptor
    /// ended after `slept`, `readable` or not (timed out, interrupted).
    pub fn woke(&mut self, readable: bool, slept: Duration) {
        self.rx.woke(readable, slept);
    }

    /// For a caller that stops taking notifications before [`Connection::notifies`] returned
    /// `None` (say, after a batch, or when a consumer pauses) and may then sleep on the
    /// descriptor: lowers the wake-up flag that [`Connection::prepare_to_sleep`] raised, and
    /// makes the descriptor readable if notifications are already waiting.
    pub fn settle(&mut self) -> Result<()> {
        self.check_usable()?;
        let r = self.rx.settle(self.block.is_idle());
        self.flush_notices();
        r
    }

    /// Notifications already copied into the inbox.
    pub fn pending(&self) -> usize {
        self.rx.pending()
    }

    /// Copies committed notifications on our channels into the inbox, outside a block.
    pub(crate) fn deliver(&mut self) -> Result<()> {
        let r = self.rx.deliver(self.block.is_idle());
        self.flush_notices();
        r
    }

    // ----- closing -----------------------------------------------------------------------------

    /// Ends the session: its transaction is discarded, its listener slot freed and unread
    /// notifications dropped (R22). Later calls fail with a `Closed` error.
    pub fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        if self.fork_gen != proc::fork_generation() {
            return; // the parent's session: leave its slot alone
        }
        self.block = Block::default();
        self.detach_quietly();
        if let Some(i) = self.rx.slot.take() {
            self.queue.unregister(i, self.lock_fd.as_raw_fd());
        }
        self.queue.release_backend_pid(self.lock_fd.as_raw_fd(), self.pid);
        self.rx.close();
    }

    /// Whether [`Connection::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    pub(crate) fn lock_raw(&self) -> RawFd {
        self.lock_fd.as_raw_fd()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.close();
        if self.fork_gen != proc::fork_generation() {
            // A forked child's copy: the atfork handler already pointed the descriptor at
            // /dev/null (or, failing that, closed it, so its number may be another file's now).
            return;
        }
        fork::unregister(self.lock_fd.as_raw_fd());
        // SAFETY: dropped once, here, and never used again.
        unsafe { std::mem::ManuallyDrop::drop(&mut self.lock_fd) };
    }
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("dir", &self.queue.path())
            .field("pid", &self.pid)
            .field("channels", &self.channels)
            .field("status", &self.transaction_status())
            .finish()
    }
}
