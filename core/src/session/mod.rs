//! A session: one connection's listen set, transaction state and inbox (PostgreSQL's backend).

mod commit;
mod fxhash;
mod inbox;
mod txn;

pub use inbox::NotificationRef;

pub(crate) use txn::ListenAction;

use crate::error::{Error, ErrorKind, Notice, Result, Severity};
use crate::layout::MAX_CHANNEL_LEN;
use crate::options::Options;
use crate::queue::{Queue, Segments};
use crate::sys::proc;
use crate::sys::wake::{poll_readable, WakeSocket};
use std::collections::HashSet;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use txn::Txn;

/// A notification as a listener receives it: PostgreSQL's three fields (R6).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Notification {
    /// The channel name (libpq's `relname`).
    pub channel: String,
    /// The payload, `""` when none was given (libpq's `extra`).
    pub payload: String,
    /// PID of the process whose session sent it (libpq's `be_pid`).
    pub pid: i32,
}

/// Where a session stands with respect to transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransactionStatus {
    /// Not in a transaction block (libpq's `PQTRANS_IDLE`).
    Idle,
    /// Inside `BEGIN` … (libpq's `PQTRANS_INTRANS`).
    InBlock,
    /// Inside a block after an error; only ROLLBACK (or COMMIT, which rolls back) ends it
    /// (libpq's `PQTRANS_INERROR`).
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Block {
    Idle,
    /// Several statements of one `execute` call outside a block (PostgreSQL's implicit block).
    Implicit,
    Explicit,
    Failed,
}

/// Notice handler type: called synchronously with each notice.
pub type NoticeHandler = Box<dyn FnMut(&Notice) + Send>;

/// At most this many notifications, or about this many payload bytes, are copied out of the queue
/// per read, so that a listener far behind never holds its backlog in memory.
const READ_BATCH: usize = 4096;
const READ_BATCH_BYTES: usize = 1 << 20;

/// How long `wait` watches the head before sleeping: about one cross-CPU wake-up on this class of
/// machine, so a steady stream of commits keeps the listener awake and the notifiers syscall-free.
const SPIN: Duration = Duration::from_micros(50);

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
pub struct Connection {
    pub(crate) queue: Arc<Queue>,
    pid: i32,
    fork_gen: u64,
    closed: bool,
    sock: WakeSocket,
    sock_id: u64,
    /// This session's own description of `slots`; its byte lock owns `slot`.
    lock_fd: OwnedFd,
    pub(crate) slot: Option<usize>,
    /// Committed channels, in LISTEN order, and the same as a set of bytes for matching.
    pub(crate) channels: Vec<String>,
    pub(crate) channel_set: HashSet<Vec<u8>, fxhash::FxBuild>,
    pub(crate) block: Block,
    pub(crate) txn: Txn,
    /// Whether the session ever committed a LISTEN (R25's quirk needs it; `DISCARD` keeps it).
    pub(crate) listened_ever: bool,
    pub(crate) segs: Segments,
    inbox: inbox::Inbox,
    notice_handler: Option<NoticeHandler>,
    /// Whether `wait` watches the head before sleeping (see `look_before_sleeping`).
    spin: bool,
    /// The descriptor woke `wait`, and its datagram is not read yet.
    undrained: bool,
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
        let sock_id = proc::random_u64();
        let sock = WakeSocket::bind(queue.queue_id, sock_id)
            .map_err(|e| Error::io("create the session's wake-up socket", e))?;
        Ok(Connection {
            queue,
            pid: proc::pid(),
            fork_gen: proc::fork_generation(),
            closed: false,
            sock,
            sock_id,
            lock_fd,
            slot: None,
            channels: Vec::new(),
            channel_set: HashSet::default(),
            block: Block::Idle,
            txn: Txn::default(),
            listened_ever: false,
            segs: Segments::default(),
            inbox: inbox::Inbox::default(),
            notice_handler: None,
            spin: true,
            undrained: false,
        })
    }

    /// The queue this session is on.
    pub fn queue(&self) -> &Arc<Queue> {
        &self.queue
    }

    /// The PID other sessions see as the sender of this session's notifications
    /// (`pg_backend_pid()`, `PQbackendPID`).
    pub fn backend_pid(&self) -> i32 {
        self.pid
    }

    /// The descriptor that becomes readable when notifications may be waiting (`PQsocket`, I8).
    /// Poll it, then call [`Connection::consume_input`] and drain [`Connection::notifies`].
    pub fn as_raw_fd(&self) -> RawFd {
        self.sock.raw()
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
        match self.block {
            Block::Idle | Block::Implicit => TransactionStatus::Idle,
            Block::Explicit => TransactionStatus::InBlock,
            Block::Failed => TransactionStatus::Failed,
        }
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

    // ----- the statements, each run as PostgreSQL runs one statement ---------------------------

    /// `LISTEN channel`, with the channel taken verbatim (no case folding). Takes effect at commit.
    pub fn listen(&mut self, channel: &str) -> Result<()> {
        // Checked inside the statement: an invalid argument fails an open block, as in PostgreSQL.
        self.statement(|c| {
            check_channel(channel)?;
            c.txn.actions.push(ListenAction::Listen(channel.to_owned()));
            Ok(())
        })
    }

    /// `UNLISTEN channel`. Takes effect at commit; unknown channels are ignored (R10).
    pub fn unlisten(&mut self, channel: &str) -> Result<()> {
        // Checked inside the statement: an invalid argument fails an open block, as in PostgreSQL.
        self.statement(|c| {
            check_channel(channel)?;
            c.record_unlisten(ListenAction::Unlisten(channel.to_owned()));
            Ok(())
        })
    }

    /// `UNLISTEN *`.
    pub fn unlisten_all(&mut self) -> Result<()> {
        self.statement(|c| {
            c.record_unlisten(ListenAction::UnlistenAll);
            Ok(())
        })
    }

    /// Records an UNLISTEN, except, as PostgreSQL, in a session that never committed a LISTEN and
    /// has no other listen action pending: it could not be listening, so nothing is recorded (the
    /// difference shows in `PREPARE TRANSACTION`, R25).
    pub(crate) fn record_unlisten(&mut self, a: ListenAction) {
        if self.listened_ever || !self.txn.actions.is_empty() {
            self.txn.actions.push(a);
        }
    }

    /// `SELECT pg_notify(channel, payload)`: queued now, visible to listeners at commit.
    pub fn notify(&mut self, channel: &str, payload: &str) -> Result<()> {
        self.statement(|c| {
            c.check_notify(channel, payload)?;
            c.txn.notify(channel, payload);
            Ok(())
        })
    }

    /// PostgreSQL's checks on `pg_notify`'s arguments, in its order (R2, R3).
    pub(crate) fn check_notify(&self, channel: &str, payload: &str) -> Result<()> {
        check_text(channel)?;
        check_text(payload)?;
        if channel.is_empty() {
            return Err(Error::invalid("channel name cannot be empty"));
        }
        if channel.len() > MAX_CHANNEL_LEN {
            return Err(Error::invalid("channel name too long"));
        }
        if payload.len() > self.queue.max_payload() {
            return Err(Error::invalid("payload string too long"));
        }
        Ok(())
    }

    /// `BEGIN`. Inside a block it only warns, as PostgreSQL does.
    pub fn begin(&mut self) -> Result<()> {
        self.check_usable()?;
        match self.block {
            Block::Idle | Block::Implicit => self.block = Block::Explicit,
            Block::Explicit => {
                self.notice(Notice::new(Severity::Warning, "25001", "there is already a transaction in progress"))
            }
            Block::Failed => return Err(Error::aborted_block()),
        }
        Ok(())
    }

    /// `COMMIT`. Outside a block it only warns. In a failed block it rolls back and returns a
    /// `TransactionState` error, so that a caller of this method cannot mistake it for a commit
    /// (through `execute`, `COMMIT` reports the `ROLLBACK` tag instead, as PostgreSQL does).
    pub fn commit(&mut self) -> Result<()> {
        self.check_usable()?;
        match self.block {
            Block::Idle => {
                self.warn_no_transaction();
                Ok(())
            }
            Block::Failed => {
                self.abort_txn();
                Err(Error::new(
                    ErrorKind::TransactionState,
                    "25P02",
                    "current transaction was aborted by an earlier error; COMMIT rolled it back",
                ))
            }
            Block::Implicit | Block::Explicit => self.end_txn(),
        }
    }

    /// `ROLLBACK`. Outside a block it only warns.
    pub fn rollback(&mut self) -> Result<()> {
        self.check_usable()?;
        if self.block == Block::Idle {
            self.warn_no_transaction();
            return Ok(());
        }
        self.abort_txn();
        self.deliver()
    }

    /// `SAVEPOINT name` (only inside a block).
    pub fn savepoint(&mut self, name: &str) -> Result<()> {
        self.in_block("SAVEPOINT")?;
        self.txn.savepoint(name);
        Ok(())
    }

    /// `RELEASE SAVEPOINT name`: its notifications and listen actions pass to the enclosing level.
    pub fn release(&mut self, name: &str) -> Result<()> {
        self.in_block("RELEASE SAVEPOINT")?;
        self.txn.release(name).inspect_err(|_| self.block = Block::Failed)
    }

    /// `ROLLBACK TO SAVEPOINT name`: drops what was done since; also leaves a failed state.
    pub fn rollback_to(&mut self, name: &str) -> Result<()> {
        self.check_usable()?;
        match self.block {
            Block::Explicit | Block::Failed => {}
            _ => return Err(not_in_block("ROLLBACK TO SAVEPOINT")),
        }
        match self.txn.rollback_to(name) {
            Ok(()) => {
                self.block = Block::Explicit;
                Ok(())
            }
            Err(e) => {
                self.block = Block::Failed;
                Err(e)
            }
        }
    }

    fn in_block(&mut self, what: &str) -> Result<()> {
        self.check_usable()?;
        match self.block {
            Block::Explicit => Ok(()),
            Block::Failed => Err(Error::aborted_block()),
            Block::Idle | Block::Implicit => Err(not_in_block(what)),
        }
    }

    /// Runs one non-transaction-control statement: in a block it joins the transaction (an error
    /// fails the block); outside one it is its own transaction (autocommit).
    pub(crate) fn statement<T>(&mut self, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        self.check_usable()?;
        match self.block {
            Block::Failed => Err(Error::aborted_block()),
            Block::Explicit | Block::Implicit => f(self).inspect_err(|_| self.fail()),
            Block::Idle => {
                self.block = Block::Implicit;
                let v = f(self).inspect_err(|_| self.fail())?;
                self.end_txn()?;
                Ok(v)
            }
        }
    }

    /// An error inside a transaction: an explicit block becomes failed, an implicit one ends.
    pub(crate) fn fail(&mut self) {
        match self.block {
            Block::Explicit => self.block = Block::Failed,
            Block::Implicit => self.abort_txn(),
            _ => {}
        }
    }

    /// Ends the transaction without effect (ROLLBACK, or an error outside a block).
    pub(crate) fn abort_txn(&mut self) {
        self.txn.clear();
        self.block = Block::Idle;
    }

    /// Commits and, back outside any transaction, delivers what is waiting (R13).
    pub(crate) fn end_txn(&mut self) -> Result<()> {
        self.block = Block::Idle;
        self.commit_taken()?;
        self.deliver()
    }

    /// Commits the pending transaction, then keeps its (cleared) buffers for the next one.
    pub(crate) fn commit_taken(&mut self) -> Result<()> {
        let mut txn = std::mem::take(&mut self.txn);
        let r = self.commit_txn(&txn);
        txn.clear();
        self.txn = txn;
        r
    }

    // ----- receiving ---------------------------------------------------------------------------

    /// Reads what the session's descriptor announced (`PQconsumeInput`): clears its readability
    /// and, outside a transaction block, copies waiting notifications into the session's inbox.
    pub fn consume_input(&mut self) -> Result<()> {
        self.check_usable()?;
        // Drain first, then clear the flag, then read the head: a notifier that saw the flag set
        // committed before our read; one that saw it clear sends a new datagram.
        self.sock.drain();
        if let Some(i) = self.slot {
            self.queue.slot(i).wake_pending.store(0, Ordering::SeqCst);
        }
        self.deliver()
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
    pub fn notifies_ref(&mut self) -> Result<Option<NotificationRef<'_>>> {
        self.check_usable()?;
        if self.inbox.is_empty() {
            self.deliver()?;
            if self.inbox.is_empty() {
                // Running dry: from here the caller may sleep on the descriptor, so notifiers must
                // send datagrams again. Clear the flag, then look once more (no lost wake-up).
                if let Some(i) = self.slot {
                    self.queue.slot(i).wake_pending.store(0, Ordering::SeqCst);
                    self.deliver()?;
                }
            }
        }
        Ok(self.inbox.pop())
    }

    /// Waits until a notification is available or `timeout` passes (`None`: forever). Returns
    /// whether one is available; take it with [`Connection::notifies`].
    ///
    /// A listening session first raises its wake-up flag, so that notifiers committing meanwhile
    /// need no system call, and reads the queue; if its queue just ran dry it watches the head for
    /// a few microseconds; then it lowers the flag, looks once more, and sleeps on its descriptor.
    pub fn wait(&mut self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if !self.inbox.is_empty() {
                return Ok(true);
            }
            if self.look_before_sleeping()? {
                return Ok(true);
            }
            let ms = match deadline {
                None => -1,
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Ok(false);
                    }
                    left.as_micros().div_ceil(1000).min(i32::MAX as u128) as i32
                }
            };
            let slept = Instant::now();
            match poll_readable(self.sock.raw(), ms) {
                // The datagram is read later, before the flag is lowered for the next sleep:
                // straight after a wake-up the session reads the queue, not its socket.
                Ok(_) => self.undrained = true,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(Error::io("wait for notifications", e)),
            }
            // Had we spun, would it have caught this commit? Then spin next time.
            self.spin = slept.elapsed() < SPIN;
        }
    }

    /// Reads what is waiting, with the wake-up flag raised; watches the head briefly when that is
    /// worth it; then lowers the flag and looks once more, so that a commit after that look sends
    /// a datagram (no lost wake-up). Returns whether the inbox holds notifications; if not, the
    /// caller may sleep on its descriptor.
    ///
    /// The watch adapts: it stops once a watch catches nothing (sparse traffic, where spinning
    /// would only burn CPU and, on a busy machine, cost the listener its scheduling credit), and
    /// resumes when a sleep ends sooner than a watch would have.
    fn look_before_sleeping(&mut self) -> Result<bool> {
        self.check_usable()?;
        let (Some(i), Block::Idle) = (self.slot, self.block) else {
            self.consume_input()?;
            return Ok(!self.inbox.is_empty());
        };
        let q = self.queue.clone();
        let flag = &q.slot(i).wake_pending;
        let head = &q.shared().head;
        flag.store(1, Ordering::SeqCst);
        self.deliver()?;
        if !self.inbox.is_empty() {
            return Ok(true);
        }
        if self.spin {
            let start = Instant::now();
            let mut seen = head.load(Ordering::SeqCst);
            while start.elapsed() < SPIN {
                // Look at the head's cache line only now and then: every look takes it from the
                // notifier's core, which then waits to take it back at its next commit. Between
                // looks, yield: on a machine with more busy processes than CPUs the notifiers
                // need this CPU more than the watch does (free when nobody else is runnable).
                for _ in 0..256 {
                    std::hint::spin_loop();
                }
                // SAFETY: sched_yield has no preconditions.
                unsafe { libc::sched_yield() };
                let now = head.load(Ordering::SeqCst);
                if now != seen {
                    seen = now;
                    self.deliver()?;
                    if !self.inbox.is_empty() {
                        return Ok(true);
                    }
                }
            }
            self.spin = false;
        }
        if std::mem::take(&mut self.undrained) {
            self.sock.drain();
        }
        flag.store(0, Ordering::SeqCst);
        self.deliver()?;
        Ok(!self.inbox.is_empty())
    }

    /// Notifications already copied into the inbox.
    pub fn pending(&self) -> usize {
        self.inbox.len()
    }

    /// Copies committed notifications on our channels from the queue into the inbox, when the
    /// session is registered and outside a transaction block.
    pub(crate) fn deliver(&mut self) -> Result<()> {
        let Some(i) = self.slot else { return Ok(()) };
        if self.block != Block::Idle {
            return Ok(());
        }
        use crate::layout::POS_BUSY;
        use std::sync::atomic::Ordering::SeqCst;
        let q = &self.queue;
        let slot = q.slot(i);
        // Mark the position busy so that the tail advancer does not move it under us.
        let pos = loop {
            let raw = slot.pos.load(SeqCst);
            let p = raw & !POS_BUSY;
            if slot.pos.compare_exchange(raw, p | POS_BUSY, SeqCst, SeqCst).is_ok() {
                break p;
            }
        };
        // Checked before the walk: a damaged control file gives an error, never a walk of
        // billions of bytes, and the position is given back unmoved.
        let head = match q.head().and_then(|h| q.check_listener_position(pos, h).map(|()| h)) {
            Ok(h) => h,
            Err(e) => {
                slot.pos.store(pos, SeqCst);
                return Err(e);
            }
        };
        if pos == head {
            slot.pos.store(pos, SeqCst);
            return Ok(());
        }
        let set = &self.channel_set;
        let inbox = &mut self.inbox;
        inbox.compact();
        let mut bad_text = None;
        let mut taken = 0;
        let mut bytes = 0;
        // Most traffic repeats a channel: remember the last one matched.
        let mut last: ([u8; MAX_CHANNEL_LEN], usize) = ([0; MAX_CHANNEL_LEN], 0);
        let scanned = q.scan(
            &mut self.segs,
            pos,
            head,
            |ch| {
                if ch.len() == last.1 && ch == &last.0[..last.1] {
                    return true;
                }
                let hit = set.contains(ch);
                if hit {
                    last.0[..ch.len()].copy_from_slice(ch);
                    last.1 = ch.len();
                }
                hit
            },
            |ch, payload, pid| {
                bytes += payload.len();
                if inbox.push(ch, pid, |out| payload.copy_into(out)).is_err() {
                    bad_text = Some(());
                }
                taken += 1;
                taken < READ_BATCH && bytes < READ_BATCH_BYTES
            },
        );
        // Store the position reached even when the scan stopped at a bad entry: what it copied
        // before that point is delivered once, and the next read stops at the same entry again.
        slot.pos.store(scanned.pos, SeqCst);
        if scanned.stopped_early {
            // Keep the descriptor readable while a backlog remains.
            q.wake(i);
        }
        if q.seg_of(scanned.pos) != q.seg_of(pos) {
            // Catching up may have released whole segments: let the disk follow (I5).
            self.advance_tail_after_the_fact();
        }
        if let Some(e) = scanned.error {
            if self.queue.check_damage(None).is_err() {
                // Read from a file truncated under its mapping: what this read copied may be zeros.
                self.inbox.clear();
            }
            return Err(e);
        }
        if bad_text.is_some() {
            return Err(Error::corrupted("a notification in the queue is not valid UTF-8"));
        }
        Ok(())
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
        self.txn = Txn::default();
        self.block = Block::Idle;
        if let Some(i) = self.slot.take() {
            self.queue.unregister(i, self.lock_fd.as_raw_fd());
        }
        self.inbox.clear();
        self.segs.clear();
    }

    /// Whether [`Connection::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    pub(crate) fn sock_id(&self) -> u64 {
        self.sock_id
    }

    pub(crate) fn lock_raw(&self) -> RawFd {
        self.lock_fd.as_raw_fd()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.close();
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

fn not_in_block(what: &str) -> Error {
    Error::new(ErrorKind::TransactionState, "25P01", format!("{what} can only be used in transaction blocks"))
}

/// Strings in the queue are C strings in UTF-8, as PostgreSQL's text: no NUL byte (R3).
fn check_text(s: &str) -> Result<()> {
    if s.as_bytes().contains(&0) {
        return Err(Error::new(
            ErrorKind::InvalidArgument,
            "22021",
            "invalid byte sequence for encoding \"UTF8\": 0x00",
        ));
    }
    Ok(())
}

/// A channel given to the direct API: verbatim, 1–63 bytes.
fn check_channel(channel: &str) -> Result<()> {
    check_text(channel)?;
    if channel.is_empty() {
        return Err(Error::invalid("channel name cannot be empty"));
    }
    if channel.len() > MAX_CHANNEL_LEN {
        return Err(Error::invalid("channel name too long"));
    }
    Ok(())
}
