//! A session's receiving side (PostgreSQL's `asyncQueueReadAllNotifications` and the client's
//! `select` loop): its wake-up socket, its listener slot, its inbox, and the protocol that keeps
//! a listener that keeps up free of system calls for its notifiers.
//!
//! The wake-up protocol, in four steps, is the same for every caller, whether it sleeps here
//! ([`Receiver::wait`]) or in a binding's own loop (Python's wait and asyncio loop, Node's event loop,
//! through [`crate::Connection::prepare_to_sleep`] and [`crate::Connection::woke`]):
//! 1. *arm*: raise the slot's `wake_pending` flag, so that notifiers committing meanwhile send
//!    nothing, and read what is waiting;
//! 2. *watch*: if traffic is steady, watch the head for a few microseconds (yielding the CPU
//!    between looks), reading again when it moves;
//! 3. *disarm*: drain the socket, lower the flag, and read once more: a commit after that read
//!    finds the flag low and sends a datagram, so no wake-up is lost;
//! 4. *sleep*: poll the descriptor, and note how long the sleep took, to decide whether the next
//!    watch is worth it.

use super::event::Gap;
use super::fxhash::FxBuild;
use super::inbox::{Inbox, Item};
use crate::error::{Error, Notice, Result, Severity};
use crate::layout::{MAX_CHANNEL_LEN, POS_BUSY};
use crate::queue::pattern::Spec;
use crate::queue::{Queue, Segments};
use crate::sys::wake::{poll_readable, WakeSocket};
use std::collections::{HashSet, VecDeque};
use std::os::fd::RawFd;
use std::sync::atomic::Ordering::SeqCst;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// At most this many notifications, or about this many payload bytes, are copied out of the queue
/// per read, so that a listener far behind never holds its backlog in memory.
const READ_BATCH: usize = 4096;
const READ_BATCH_BYTES: usize = 1 << 20;
/// How often a reader with an age limit checks it before a read.
const AGE_CHECK_NS: u64 = 1_000_000;

/// How long a wait watches the head before sleeping: about one cross-CPU wake-up on this class of
/// machine, so a steady stream of commits keeps the listener awake and the notifiers syscall-free.
const SPIN: Duration = Duration::from_micros(50);

/// A session's attachment to a durable subscription.
pub(crate) struct Attached {
    pub name: String,
    pub auto_ack: bool,
    /// Where the next read starts: past what was copied into the inbox, which the slot's
    /// position (the acknowledged one) may lag.
    pub cursor: u64,
    /// The notifications handed out and not acknowledged, as (position, end), oldest first: what
    /// an acknowledgement covers, and what it settles of a cut's debt (`queue/cut.rs`).
    pub unacked: VecDeque<(u64, u64)>,
}

impl Attached {
    pub fn new(name: String, auto_ack: bool, cursor: u64) -> Attached {
        Attached { name, auto_ack, cursor, unacked: VecDeque::new() }
    }

    /// Acknowledges the first `count` notifications handed out, moving subscription slot `i`'s
    /// position to `to`: what a cut left owed of them is settled first, then the position moves.
    pub fn acknowledge(&mut self, queue: &Queue, i: usize, count: usize, to: u64) -> Result<()> {
        let acked = self.unacked.range(..count);
        queue.settle_owed(i, |owed_to| acked.clone().filter(|e| e.0 < owed_to).count() as u64, to)?;
        queue.acknowledge(i, to);
        self.unacked.drain(..count);
        Ok(())
    }
}

pub(crate) struct Receiver {
    queue: Arc<Queue>,
    sock: WakeSocket,
    sock_id: u64,
    /// The listener slot, while the session listens.
    pub(crate) slot: Option<usize>,
    /// The committed channels, as bytes, for matching entries.
    pub(crate) channel_set: HashSet<Vec<u8>, FxBuild>,
    /// A subscription's patterns (globs), matched after the exact channels.
    pub(crate) patterns: Vec<Spec>,
    /// Set while the session is attached to a durable subscription (in `slot`).
    pub(crate) sub: Option<Attached>,
    /// The slot's `cuts` count whose gaps this session took.
    cuts_seen: u64,
    /// When this session last checked its age limit before a read (monotonic ns).
    age_checked: u64,
    /// Mapped segments, shared with the session's appends.
    pub(crate) segs: Segments,
    inbox: Inbox,
    /// Whether a wait watches the head before sleeping (see `prepare_to_sleep`).
    spin: bool,
    /// The descriptor woke a wait, and its datagram is not read yet.
    undrained: bool,
    /// Warnings met while reading (a segment file that could not be removed), for the session to
    /// hand to its notice handler.
    notices: Vec<Notice>,
}

impl Receiver {
    pub fn new(queue: Arc<Queue>, sock_id: u64) -> Result<Receiver> {
        let sock = WakeSocket::new().map_err(|e| Error::io("create the session's wake-up socket", e))?;
        Ok(Receiver {
            queue,
            sock,
            sock_id,
            slot: None,
            channel_set: HashSet::default(),
            patterns: Vec::new(),
            sub: None,
            cuts_seen: 0,
            age_checked: 0,
            segs: Segments::default(),
            inbox: Inbox::default(),
            spin: true,
            undrained: false,
            notices: Vec::new(),
        })
    }

    pub fn raw_fd(&self) -> RawFd {
        self.sock.raw()
    }

    pub fn sock_id(&self) -> u64 {
        self.sock_id
    }

    /// Makes the wake-up socket reachable by notifiers, before the session first registers.
    pub fn bind(&mut self) -> Result<()> {
        let dir = &self.queue.dir;
        let (mode, gid) = if dir.group_shared { (0o660, Some(dir.gid)) } else { (0o600, None) };
        self.sock
            .bind(dir.raw(), self.sock_id, mode, gid)
            .map_err(|e| Error::io("bind the session's wake-up socket in the queue directory", e))
    }

    /// Warnings collected since the last call.
    pub fn take_notices(&mut self) -> Vec<Notice> {
        std::mem::take(&mut self.notices)
    }

    /// Notifications already copied into the inbox.
    pub fn pending(&self) -> usize {
        self.inbox.len()
    }

    /// `PQconsumeInput`: clears the descriptor's readability and, when `idle` (outside a
    /// transaction block, R13), copies waiting notifications into the inbox.
    pub fn consume_input(&mut self, idle: bool) -> Result<()> {
        // Drain first, then clear the flag, then read the head: a notifier that saw the flag set
        // committed before our read; one that saw it clear sends a new datagram.
        self.sock.drain();
        if let Some(i) = self.slot {
            self.queue.slot(i).wake_pending.store(0, SeqCst);
        }
        self.deliver(idle)
    }

    /// `PQnotifies`: the next notification (or gap), lent until the next call. An empty inbox is
    /// refilled from the queue first when `idle`. An auto-acknowledging subscription
    /// acknowledges what it handed out before.
    pub fn next(&mut self, idle: bool) -> Result<Option<Item<'_>>> {
        if self.inbox.is_empty() {
            self.deliver(idle)?;
            if self.inbox.is_empty() {
                // Running dry: from here the caller may sleep on the descriptor, so notifiers must
                // send datagrams again. Clear the flag, then look once more (no lost wake-up).
                if let Some(i) = self.slot {
                    self.queue.slot(i).wake_pending.store(0, SeqCst);
                    self.deliver(idle)?;
                }
            }
        }
        let end = if self.sub.is_some() { self.inbox.next_end() } else { None };
        let item = self.inbox.pop();
        if let (Some(Item::Notification(n)), Some(i), Some(sub), Some(end)) = (&item, self.slot, &mut self.sub, end) {
            if sub.auto_ack {
                // Everything before this one is processed: the caller asked for the next.
                sub.acknowledge(&self.queue, i, sub.unacked.len(), n.position)?;
            }
            sub.unacked.push_back((n.position, end));
        }
        Ok(item)
    }

    /// Waits until a notification is available or `timeout` passes (`None`: forever).
    pub fn wait(&mut self, idle: bool, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            if self.prepare_to_sleep(idle, false)? {
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
            let readable = match poll_readable(self.sock.raw(), ms) {
                Ok(r) => r,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => false,
                Err(e) => return Err(Error::io("wait for notifications", e)),
            };
            self.woke(readable, slept.elapsed());
        }
    }

    /// Steps 1–3 of the protocol (see the module's comment): returns whether the inbox holds
    /// notifications; if not, the caller may sleep on the descriptor, then call `woke`.
    ///
    /// `external`: the caller sleeps on the descriptor with its own machinery (`select`, an event
    /// loop) and may not report back through `woke`. Then a datagram that announced what is now
    /// in the inbox is drained before returning, and the disarm step always drains, so that the
    /// descriptor is not left readable with nothing new behind it (which would make such a loop
    /// turn once more for nothing). [`Receiver::wait`] knows from its own poll whether a datagram
    /// is waiting, and reads the queue before its socket.
    ///
    /// The watch adapts: it stops once a watch catches nothing (sparse traffic, where spinning
    /// would only burn CPU and, on a busy machine, cost the listener its scheduling credit), and
    /// resumes when a sleep ends sooner than a watch would have.
    pub fn prepare_to_sleep(&mut self, idle: bool, external: bool) -> Result<bool> {
        let (Some(i), true) = (self.slot, idle) else {
            self.consume_input(idle)?;
            return Ok(!self.inbox.is_empty());
        };
        let q = self.queue.clone();
        let flag = &q.slot(i).wake_pending;
        let head = &q.shared().head;
        flag.store(1, SeqCst);
        self.deliver(idle)?;
        if !self.inbox.is_empty() {
            if external {
                self.sock.drain();
            }
            return Ok(true);
        }
        if self.spin {
            let start = Instant::now();
            let mut seen = head.load(SeqCst);
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
                let now = head.load(SeqCst);
                if now != seen {
                    seen = now;
                    self.deliver(idle)?;
                    if !self.inbox.is_empty() {
                        if external {
                            self.sock.drain();
                        }
                        return Ok(true);
                    }
                }
            }
            self.spin = false;
        }
        if std::mem::take(&mut self.undrained) || external {
            self.sock.drain();
        }
        flag.store(0, SeqCst);
        self.deliver(idle)?;
        Ok(!self.inbox.is_empty())
    }

    /// The caller stops taking notifications for now (a generator ends, a consumer pauses): the
    /// wake-up flag goes down, so that the next commit sends a datagram, and if notifications
    /// are already waiting (in the inbox, or in the queue: one more look), the descriptor is made
    /// readable by a datagram to itself, so that a caller about to sleep on it is not left asleep
    /// with notifications waiting (I8).
    pub fn settle(&mut self, idle: bool) -> Result<()> {
        let Some(i) = self.slot else { return Ok(()) };
        self.queue.slot(i).wake_pending.store(0, SeqCst);
        self.deliver(idle)?;
        if !self.inbox.is_empty() {
            self.queue.wake(i);
        }
        Ok(())
    }

    /// Step 4's bookkeeping, after a sleep on the descriptor that took `slept`: a readable
    /// descriptor's datagram is read before the next sleep (straight after a wake-up the session
    /// reads the queue, not its socket), and a sleep shorter than a watch turns watching back on.
    pub fn woke(&mut self, readable: bool, slept: Duration) {
        if readable {
            self.undrained = true;
        }
        self.spin = slept < SPIN;
    }

    /// Copies committed notifications on our channels from the queue into the inbox, when the
    /// session is registered and `idle` (outside a transaction block). A cut of the slot met
    /// before or during the read becomes a gap in the inbox (`queue/cut.rs`).
    pub fn deliver(&mut self, idle: bool) -> Result<()> {
        let Some(i) = self.slot else { return Ok(()) };
        if !idle {
            return Ok(());
        }
        let q = self.queue.clone();
        let slot = q.slot(i);
        let mut past_limits = false;
        if slot.max_lag_bytes.load(SeqCst) != 0 || slot.max_lag_age_ns.load(SeqCst) != 0 {
            // The age limit costs a walk and the tail lock: at most once a millisecond.
            let now = crate::sys::proc::monotonic_ns();
            let age_due = now.saturating_sub(self.age_checked) >= AGE_CHECK_NS;
            if age_due {
                self.age_checked = now;
            }
            past_limits = q.past_own_limits(i, age_due);
        }
        if past_limits || slot.cuts.load(SeqCst) != self.cuts_seen {
            self.take_gap(i, past_limits)?;
        }
        crate::sys::fault::read_point(crate::sys::fault::ReadPoint::Start);
        // Any cut after the gaps taken makes this read suspect, even one that ends before the
        // read starts (it may have moved the floor the read starts from).
        let cuts_before = self.cuts_seen;
        // Mark the position busy so that the tail advancer does not move it under us.
        let pos = loop {
            let raw = slot.pos.load(SeqCst);
            let p = raw & !POS_BUSY;
            if slot.pos.compare_exchange(raw, p | POS_BUSY, SeqCst, SeqCst).is_ok() {
                break p;
            }
        };
        let mut from = pos.max(slot.cut_to.load(SeqCst));
        if let Some(sub) = &self.sub {
            from = from.max(sub.cursor);
        }
        // Checked before the walk: a damaged control file gives an error, never a walk of
        // billions of bytes, and the position is given back unmoved.
        let head = match q.head().and_then(|h| q.check_listener_position(from, h).map(|()| h)) {
            Ok(h) => h,
            Err(e) => {
                slot.pos.store(pos, SeqCst);
                return Err(e);
            }
        };
        if from == head {
            slot.pos.store(if self.sub.is_some() { pos } else { from }, SeqCst);
            return Ok(());
        }
        crate::sys::fault::read_point(crate::sys::fault::ReadPoint::Reading);
        let set = &self.channel_set;
        let patterns = &self.patterns;
        let inbox = &mut self.inbox;
        inbox.compact();
        let mut bad_text = None;
        let mut taken = 0;
        let mut bytes = 0;
        // Most traffic repeats a channel: remember the last one matched.
        let mut last: ([u8; MAX_CHANNEL_LEN], usize) = ([0; MAX_CHANNEL_LEN], 0);
        let scanned = q.scan(
            &mut self.segs,
            from,
            head,
            |ch| {
                if ch.len() == last.1 && ch == &last.0[..last.1] {
                    return true;
                }
                let hit = set.contains(ch) || patterns.iter().any(|p| p.matches(ch));
                if hit {
                    last.0[..ch.len()].copy_from_slice(ch);
                    last.1 = ch.len();
                }
                hit
            },
            |ch, payload, meta| {
                bytes += payload.len();
                if inbox.push(ch, meta, |out| payload.copy_into(out)).is_err() {
                    bad_text = Some(());
                }
                taken += 1;
                taken < READ_BATCH && bytes < READ_BATCH_BYTES
            },
        );
        // Store the position reached even when the scan stopped at a bad entry: what it copied
        // before that point is delivered once, and the next read stops at the same entry again.
        // A subscription's position moves only when it acknowledges; its read position is
        // published for cutters instead.
        match &mut self.sub {
            Some(sub) => {
                sub.cursor = scanned.pos;
                slot.read_pos.store(scanned.pos, SeqCst);
                slot.pos.store(pos, SeqCst);
            }
            None => slot.pos.store(scanned.pos, SeqCst),
        }
        crate::sys::fault::read_point(crate::sys::fault::ReadPoint::Published);
        if slot.cuts.load(SeqCst) != cuts_before {
            // Cut while reading: what this read copied from the skipped range was counted as
            // skipped (and may have been overwritten meanwhile): drop it, report the gap.
            self.take_gap(i, false)?;
            return Ok(());
        }
        if scanned.stopped_early {
            // Keep the descriptor readable while a backlog remains.
            q.wake(i);
        }
        if q.seg_of(scanned.pos) != q.seg_of(from) {
            // Catching up may have released whole segments: let the disk follow (I5).
            self.notices.extend(truncate_after_the_fact(&self.queue));
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

    /// Takes the slot's pending gap (first cutting the slot if `past_limits`): drops what the
    /// inbox holds from the skipped range, queues the gap in its place, and moves the read
    /// position past the range.
    fn take_gap(&mut self, i: usize, past_limits: bool) -> Result<()> {
        let q = self.queue.clone();
        let (g, cuts) = q.take_gap(i, past_limits.then_some(&mut self.segs))?;
        self.cuts_seen = cuts;
        // What this session read from the hole was counted by no cutter: it counts it here.
        let (hole, hole_first, hole_last) = self.inbox.count_unread(g.hole_from, g.hole_to);
        let (mut first_txn, mut last_txn) = (g.first_txn, g.last_txn);
        if hole > 0 {
            first_txn = if g.count > 0 { first_txn.min(hole_first) } else { hole_first };
            last_txn = last_txn.max(hole_last);
        }
        let skipped = g.count + hole;
        let gap = (skipped > 0).then_some(Gap { skipped, first_txn, last_txn, resumed_at: g.cut_to });
        if gap.is_some() {
            self.inbox.cut(g.from, g.cut_to, gap);
        }
        if let Some(sub) = &mut self.sub {
            sub.cursor = sub.cursor.max(g.cut_to);
        }
        Ok(())
    }

    /// Starts reading as the owner of subscription slot `i`, from its acknowledged position.
    pub fn attach(&mut self, i: usize, sub: Attached) {
        self.inbox.clear();
        self.slot = Some(i);
        self.cuts_seen = 0; // a gap met while nobody was attached is reported now
        self.sub = Some(sub);
    }

    /// Stops reading a subscription; what was read and not acknowledged is owed to the next
    /// attach.
    pub fn detach(&mut self) {
        self.inbox.clear();
        self.slot = None;
        self.sub = None;
        self.patterns.clear();
        self.channel_set.clear();
    }

    /// Drops what was not read and removes the socket's file (at close).
    pub fn close(&mut self) {
        self.sock.unlink();
        self.inbox.clear();
        self.segs.clear();
    }
}

/// Advances the tail once a session's own work is done (committed, or read): a failure here
/// (say, a segment file that cannot be removed) must not turn a committed transaction or a
/// successful read into an error, so it becomes a warning; the next advance retries.
pub(crate) fn truncate_after_the_fact(queue: &Queue) -> Option<Notice> {
    let (Err(e) | Ok(Some(e))) = queue.advance_tail(false) else { return None };
    let mut n =
        Notice::new(Severity::Warning, e.sqlstate(), format!("could not truncate the NOTIFY queue: {}", e.message()));
    n.detail = e.detail().map(str::to_owned);
    Some(n)
}
