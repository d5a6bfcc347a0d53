//! # hark: PostgreSQL's LISTEN/NOTIFY as an embedded, cross-process library
//!
//! Any processes on one machine open the same *queue directory* and LISTEN, NOTIFY and
//! BEGIN/COMMIT/ROLLBACK with PostgreSQL's semantics (channels, payloads, delivery only at commit,
//! one global commit order, duplicates folded within a transaction), with no server.
//!
//! ```
//! # let dir = std::env::temp_dir().join(format!("hark-doc-lib-{}", std::process::id()));
//! let mut listener = hark::connect(Some(&dir))?;
//! listener.execute("LISTEN events")?;
//!
//! let mut app = hark::connect(Some(&dir))?;          // usually another process
//! app.execute("BEGIN")?;
//! app.execute("NOTIFY events, 'order 42 paid'")?;
//! app.execute("COMMIT")?;
//!
//! if listener.wait(Some(std::time::Duration::from_secs(1)))? {
//!     let n = listener.notifies()?.unwrap();
//!     println!("Asynchronous notification \"{}\" with payload \"{}\" received from server process with PID {}.",
//!              n.channel, n.payload, n.pid);
//! }
//! # drop((listener, app)); std::fs::remove_dir_all(&dir).unwrap();
//! # Ok::<(), hark::Error>(())
//! ```
//!
//! ## Design
//!
//! This is PostgreSQL's `async.c` with its server-side props (postmaster, commit log, signals,
//! crash restart) replaced by things every process can do for itself. The rules the code keeps are
//! PostgreSQL's R1–R31 and hark's invariants I1–I10 (see the README).
//!
//! ### Files of a queue directory
//!
//! A queue directory cannot be mistaken (`queue/path.rs`): a path that looks like a PostgreSQL
//! connection string or URL is refused, and a queue is created only in a missing directory or an
//! empty one (or one holding only hark's own files, left by an interrupted creation), never among
//! other files; with `Options::create` off, only an existing queue is opened. The default
//! directory (`options.rs`) is `$HARK_DIR`, else `/dev/shm/hark-<uid>`: it depends on the user
//! alone, so that a service and a login shell of one user meet on one queue.
//!
//! The directory is opened once, with `O_NOFOLLOW` (a symbolic link in its place is refused, so
//! that a link another user plants, at the default `/dev/shm/hark-<uid>` say, cannot send hark to
//! create or wipe files elsewhere), and its owner and mode are checked on that descriptor (I10):
//! the caller's, 0700; or with `group_shared`, of a group of the caller's, 02770, setgid so that
//! files made in it get its group. Every file is then reached through it (`openat` with
//! `O_NOFOLLOW`, `sys/fs.rs`) and checked on its descriptor: a regular file of the directory's
//! owner, or when group-shared, of the directory's group (a process gives its own files that
//! group if they lack it, so that every member can open every file).
//!
//! * `control`: a memory-mapped file of `#[repr(C)]` structures (`layout.rs`): a header written
//!   once at creation (magic, format version, boot id, sizes, a random queue id), then the moving
//!   parts: the writer lock and the tail lock (process-shared *robust* pthread mutexes), `head`
//!   (one past the last committed byte), `tail` (the minimum listener position, as last computed),
//!   `stop` (the oldest segment not yet deleted), 4096 listener slots, 256 channel-bucket bitmaps
//!   (bit *i* of bucket *b*: slot *i* may listen on a channel hashing to *b*), a word summary
//!   per bitmap (bit *w*: word *w* of that bitmap has held a slot, so a notifier reads only
//!   those words, however many listeners wait on other channels), per-segment
//!   summaries (bit *b*: a notification on bucket *b* was written into that segment), and exact
//!   channel lists beside both (`queue/channels.rs`): each listener's channels and each segment's
//!   channels as 64-bit hashes, up to 15 and 31 of them, so that an idle listener whose channel
//!   merely shares a bucket with a busy one is not taken for interested.
//!   Last, 1024 publication marks (`queue/marks.rs`, see "Publishing from an outside source").
//! * `000000000000000`, `000000000000001`, …: segment files of fixed size (16 MiB by default),
//!   named like `pg_notify/`'s, each allocated for real (`posix_fallocate`) before it is mapped,
//!   so that a full file system is an error at commit, never a SIGBUS (for a file another process
//!   truncates, see "Damage by another member" below). Segments are mapped whole
//!   with `MAP_POPULATE` (one system call instead of a fault per page).
//! * `spare`: at most one segment file the tail has passed, kept so that the writer's next
//!   segment is a rename (`renameat2(RENAME_NOREPLACE)`) of already allocated pages rather than a
//!   fresh allocation the kernel must zero, as PostgreSQL recycles WAL segments. Its old bytes are
//!   never read: readers stop at the head, and every byte below the head was written first.
//!   Before the rename the spare is checked on an `O_PATH` descriptor: anything but a regular
//!   file of the queue (a FIFO, a directory, a symlink) is removed, or ignored when it cannot be,
//!   never renamed into a segment's name, where it would fail every commit needing that segment.
//! * `slots`: an empty file whose byte *i* is locked (`F_OFD_SETLK`) by the owner of listener slot
//!   *i* for as long as it lives. The kernel drops the lock when the process dies, whatever happens
//!   to its PID afterwards: a free lock on an active slot proves its owner is dead. A forked
//!   child would share the lock's file description and so keep a dead parent's slot "alive": a
//!   `pthread_atfork` handler points the child's copies at `/dev/null` first thing (`sys/fork.rs`).
//!   Byte 2^32 + *pid* is locked the same way by the session whose backend PID is *pid*, so that
//!   no two live sessions share one (`queue/pids.rs`).
//! * `w.<id>`: one Unix datagram socket file per session that ever listened (`sys/wake.rs`),
//!   its wake-up address. Being files in the directory, they obey its permissions: no other user
//!   can send to them. Removed at close, by whoever reaps a dead listener's slot, and by `stats`
//!   for sessions that died after their last UNLISTEN.
//! * `lock`: `flock`ed while a process creates or wipes the queue. Opening a queue of the current
//!   boot takes no lock, so a process stopped inside an open delays no other open.
//!
//! Positions are 64-bit byte offsets from the queue's creation; they never wrap. Position *p* is
//! in segment *p / segment_size*. Entries (`layout.rs`) are a 32-byte header (length, kind,
//! channel length, the sender's backend PID, payload length, commit sequence number, commit time
//! in nanoseconds since the epoch) followed by
//! the channel and payload bytes, 8-byte aligned, never crossing a segment: when the next entry
//! does not fit, a filler entry covers the rest of the segment (PostgreSQL does the same per page).
//!
//! ### The life of a notification
//!
//! 1. `NOTIFY` (or `pg_notify`, or [`Connection::notify`]) checks channel and payload
//!    (`session/statements.rs`) and records them in the session's transaction block
//!    (`session/block.rs`, whose pending work is `session/txn.rs`), folding
//!    a duplicate of a pending (channel, payload), keeping the first. Savepoints mark positions in
//!    that list; `ROLLBACK TO` truncates it. LISTEN/UNLISTEN are recorded the same way.
//! 2. At commit (`session/commit.rs`), listen changes are staged first: a session that starts
//!    listening claims a slot (`queue/registry.rs`), publishes its channel buckets, then reads the
//!    head as its start position; a listening session adding channels publishes their buckets.
//!    Both happen before the append, so the transaction's own notifications reach it (R11) and no
//!    wake-up for a later commit can be missed.
//! 3. The append (`queue/append.rs`), under the writer lock: lay the entries out from the head and
//!    check the size limit against the tail (recomputing a stale tail once) before writing
//!    anything; then write the entries past the head, creating segment files as needed, record
//!    their buckets in the segment summaries, and finally store the new head. That single store is
//!    the commit: before it nothing of the transaction is visible, after it all of it is (I1).
//!    Holding the lock from first byte to head store makes queue order commit order (R17).
//! 4. After the lock is released, listen changes are applied (a session left with no channel
//!    gives its slot back), and every slot in the buckets of the notified channels is woken
//!    (`wake_buckets`), except the sender itself: if its `wake_pending` flag was clear, the
//!    notifier sets it and sends one datagram to the listener's socket file; if it was set, nothing
//!    happens, so a busy listener costs a notifier one load (I7).
//! 5. A listener's descriptor (`sys/wake.rs`, a Unix datagram socket bound in the queue directory) becomes
//!    readable. [`Connection::consume_input`] (`session/receiver.rs`) drains it, clears `wake_pending`, then — only outside
//!    a transaction block (R13) — marks its position busy, walks the entries from its position to
//!    the head (`queue/read.rs`, every length checked), copies those on channels it listens on
//!    *now* (R15) into its inbox (`session/inbox.rs`: one byte buffer, no allocation per
//!    notification; the payload is checked as UTF-8 after the copy, never in shared memory), and
//!    stores the new position. [`Connection::notifies`] (owned) and [`Connection::notifies_ref`]
//!    (borrowed) hand them out in order, refill the inbox from the queue when it runs dry, and
//!    when the queue is dry too clear `wake_pending` and look once more, so that a caller about
//!    to sleep on the descriptor gets a datagram for the next commit. [`Connection::wait`] instead *raises*
//!    `wake_pending` first (notifiers then make no system call), reads, watches the head for a
//!    few microseconds when traffic is steady (yielding the CPU between looks), and only then
//!    clears the flag, looks once more and sleeps: a listener that keeps up costs its notifiers no
//!    syscall at all. [`Connection::prepare_to_sleep`] and [`Connection::woke`] are the same
//!    steps for callers that sleep on the descriptor themselves (the Python and Node bindings).
//! 6. When a commit moves the head into a new segment, or a listener's reading moves it into
//!    another one, that session tries to advance the tail (`queue/tail.rs`; skipped if another
//!    session is at it): under the tail lock it reads the head, then each active slot's position.
//!    A slot more than a segment behind whose channels were not notified in the segments behind
//!    it (by the exact lists where both are listed, else by buckets) is moved to the start of the
//!    head's segment (PostgreSQL 19's "direct advancement", per segment); one that is interested
//!    is checked for a dead owner (reaped) or woken so it catches up. Only a full advance (the
//!    queue looks full, or stats are asked for) checks every slot's owner: asking the kernel
//!    about a byte lock walks all of them, so checking each at every segment would cost
//!    O(listeners²).
//!    The minimum becomes the tail, and segment files wholly behind it are deleted (I5), except
//!    one renamed to `spare` when there is none.
//!
//! ### A session
//!
//! [`Connection`] (`session/mod.rs`) ties three parts that each own their state: the transaction
//! block (`session/block.rs`, the only code that changes the block's state: idle, implicit,
//! explicit, failed), the receiver (`session/receiver.rs`: the wake-up socket, the listener slot,
//! the inbox and the wait protocol), and the SQL executor (`sql/`), which parses a text and runs
//! each statement through the same methods as the direct API (`session/statements.rs`).
//! Parameters (`$1`, …) are tokens of the lexer, bound to typed values passed beside the text
//! ([`Connection::execute_params`], `sql/params.rs`) and read where the token stands, never
//! pasted into SQL: the bindings' `query(text, values)`, `execute(query, params)` and
//! `hark_exec_params` all come here, psycopg's `%s` turned into `$n` on the same scanner
//! (`sql/pyformat.rs`). The
//! commit (`session/commit.rs`) takes the block's pending work, publishes it, and gives the
//! buffers back.
//!
//! Each session has its own backend PID, as each PostgreSQL connection has its backend's
//! (`queue/pids.rs`): `pg_backend_pid()`, and the sender PID of its notifications. It is the
//! process's id when no live session of the queue holds that one (the process's first session),
//! else a synthetic one from a counter in the control file, at or above 2^22 (Linux's
//! `PID_MAX_LIMIT`, so no process has it). A byte lock on `slots` held for the session's life
//! proves it taken: the kernel drops it at death, and a held one is skipped, so two live sessions
//! never share a PID and "skip my own" (`n.pid == backend_pid`) skips exactly one session's.
//!
//! ### Locks and memory ordering
//!
//! Lock order: writer lock, then tail lock (the writer takes the tail lock only to recompute a
//! stale tail when the queue looks full). Registration (part of a LISTEN's commit) and reaping take
//! the tail lock alone. Nothing else waits for a lock another process holds: giving a slot back
//! (close, the last UNLISTEN) clears it under its own byte lock only, `usage` and `stats` advance
//! the tail only if nobody else is at it and otherwise read the positions without the lock, and
//! opening a queue takes the directory lock only to create or wipe it. All shared atomics use
//! `SeqCst`; the orderings that matter are:
//! * entries are written before the head store, and readers load the head before reading entries;
//! * a notifier stores the head, then reads a bitmap's word summary, the words it marks, and
//!   the slots' `wake_pending` (a registering listener sets its word's bit before the summary's);
//!   a listener drains its socket, clears `wake_pending`, then loads the head. In the total
//!   order either the listener's load sees the new head, or the notifier's swap sees the flag
//!   clear and sends;
//! * a registering listener publishes its buckets and channel list before loading its start
//!   position; a listener changing channels lists old and new ones from before its append until
//!   after it (a seqlock generation, odd while it rewrites, makes a reader assume interest);
//! * a listener marks its position `POS_BUSY` (compare-and-swap) while reading; the tail advancer
//!   moves only positions that are not busy, also by compare-and-swap.
//!
//! ### Publishing from an outside source
//!
//! A program whose data lives elsewhere (the SQLite extension's outbox table) numbers its
//! notifications in its own commit order and publishes them after its own commit, possibly from
//! another process than the one that committed them. [`Connection::publish_marked`] makes that
//! exactly-once: the queue keeps, per source key, a *publication mark*, the highest number
//! published, advanced by the same head store that publishes the items. Under the writer lock the
//! append reads the mark, leaves out the items at or below it, and rewrites the mark in two
//! halves around the head store (`committed`, then `pending` with the head it is valid from, the
//! head store, then `committed` again), so that a writer killed at any instruction leaves a mark
//! that says exactly whether its items were published. Nothing is scanned. A queue holds 1024
//! marks, never given back until it is wiped.
//!
//! ### Crash model
//!
//! A process may be killed at any instruction (I3). Holding the writer lock: the robust mutex
//! hands the next locker `EOWNERDEAD`; the dead writer's bytes lie past the head and are
//! overwritten, since nothing is published until the head store. Holding the tail lock: the same;
//! deletions are idempotent and `stop` is stored after them. While listening: its slot stays
//! active until a tail advance finds its byte lock free and reaps it, so the queue drains. While
//! registering: the slot's byte lock is taken before the slot is touched, and whoever holds the
//! lock of a non-free slot whose owner is gone cleans it first. After a reboot (the stored boot id
//! differs) the first open wipes the queue (I6), like PostgreSQL's start-up.
//!
//! ### Damage by another member
//!
//! Every member of a queue (the same user, or any member of a `group_shared` queue) can write its
//! files, so one member could otherwise crash or hang the others. Two defences:
//! * Values read from the control file are checked before anything acts on them (`queue/mod.rs`
//!   `head`, `head_and_tail`, `check_listener_position`, `stored_tail_fits`): the head is aligned,
//!   never behind a head this process has read, and at most a full queue (plus two segments) past
//!   the stored tail; a listener's position lies between the tail and the head; the first segment
//!   file is at most a full queue behind the tail. So every loop over segments or entries is
//!   bounded by the queue's geometry. A value that fails a check gives `Corrupted` (XX001), and
//!   the locks held are released on the way out.
//! * Touching a page of a mapping past the end of its (truncated) file raises SIGBUS. When the
//!   first queue file is mapped, hark installs a process-wide SIGBUS handler (`sys/guard.rs`).
//!   Every mapping of a queue file is recorded in a fixed, lock-free table of 8192 address ranges
//!   (a mapping that does not fit is not guarded). For a fault inside a recorded mapping, the
//!   handler replaces the pages from the faulting one to the mapping's end with private zero pages,
//!   so the access completes, and flags the mapping as damaged. Operations check the flags of the
//!   mappings they used: a commit before it moves the head (so nothing it wrote into zeros is
//!   published), a read before it returns (dropping what it copied in that read), and stats and
//!   usage too. A damaged mapping fails the operation with `Corrupted` ("queue file was truncated or
//!   damaged while mapped"), and every later operation of the process on that queue fails the same
//!   way: it never goes on over zeros. A process asleep on a queue lock when the control file is
//!   truncated would wait for a wake-up that never comes (the holder's unlock lands on its private
//!   zero pages); lockers therefore sleep in one-second slices, and the next slice touches the
//!   lock word, faults, and fails the same way. A fault anywhere else is not hark's: the handler passes it
//!   to the handler installed before it, called with the same arguments, or, if there was none
//!   (the default action, or "ignore"), restores the default action and returns, so that the
//!   access faults again and kills the process as it would without hark. The handler uses only
//!   atomics, `mmap` and `sigaction`. A program that installs its own SIGBUS handler after hark
//!   must call the previous one for faults that are not its own, or a truncated queue file kills it
//!   as before.
//!
//! What a member can still do to the others: delete or rewrite notifications, and make the others'
//! operations fail with errors (until the files are sound again, or for good in a process that
//! saw a mapping truncated). It cannot make them crash, and cannot make them spin or walk without
//! end. A member can still stall the others by holding the writer lock (stopped, or the lock word
//! overwritten to look held), as any stopped writer does.
//!
//! ### Durable subscriptions, cuts and gaps
//!
//! A *subscription* (`queue/subs.rs`, `session/subscribe.rs`) is a slot in state
//! `SLOT_SUBSCRIPTION`: its position is the acknowledged one, and it outlives its sessions (tail
//! advance never reaps it). Its name and its channels or patterns are kept in the slot's text
//! (`queue/text.rs`, under the channel list's seqlock), beside the exact channel hashes. A session
//! attaches by taking the slot's byte lock on `slots`, as a listener owns its slot, so one session
//! at a time is attached and a dead one's attachment ends with it; it reads from a private cursor
//! past the acknowledged position, publishing it as `read_pos`, and moves the position only when
//! it acknowledges (to the end of an entry it handed out, which it remembers with the others not
//! yet acknowledged, so a position is
//! always an entry boundary). Detaching raises `wake_pending`, so notifiers send nothing while
//! nobody is attached. Patterns (`queue/pattern.rs`) are filed in prefix buckets by their first
//! four literal bytes (or in one "every commit" bitmap when shorter); a commit wakes, besides its
//! channels' buckets, the prefix bucket of each channel's first four bytes, so a pattern
//! subscriber is not woken by unrelated commits, and a subscriber with patterns counts as
//! interested in every segment.
//!
//! A reader past its lag limits (checked at each tail advance, at attach, and by the reader itself
//! before each read: bytes every time, age at most once a millisecond), or holding back a
//! full queue under the cut policy (`append.rs`), is *cut* (`queue/cut.rs`): under the tail lock,
//! the cutter announces the cut (the slot's `cuts` becomes odd), walks the entries from the slot's
//! floor, counting those on its channels, to the first one to keep, records the count, the commit
//! numbers of the first and last skipped and where the skipped range starts, raises the slot's
//! floor `cut_to` (tail advance counts the slot at `max(pos, cut_to)`), ends the cut (`cuts` even)
//! and wakes the owner. The owner compares `cuts` with the count whose gaps it took, after
//! publishing the position a read reached; when they differ, it takes the gap under the tail lock
//! (so a cut under way finishes first) and drops from its inbox what that read copied from the
//! skipped range, which was counted (and may have been overwritten since). A notification is
//! thus delivered or counted, never both, never neither; the gap is handed out after what came
//! before the range and before what follows it (`session/inbox.rs`). A second cut before the
//! owner takes the first may start past an owner's read that overlapped the first: that *hole*
//! is recorded, and the owner counts what it drops from it. A subscriber's read but
//! unacknowledged notifications that a cut passes are *owed*: the owner lowers the count as it
//! acknowledges them, and what is still owed when the next session attaches is that session's
//! gap (the queue no longer holds them to deliver again). Every change of a slot's gap record is
//! written whole into the slot's journal before it is applied; a cutter killed halfway leaves
//! `cuts` odd, and the next holder of the tail lock (told by the robust mutex) applies the
//! journal if it was complete and ends the cut.
//!
//! Every entry carries its commit time (the notifier's `CLOCK_REALTIME` at the append, the same
//! for a transaction's entries), for receivers and for age limits and lag figures.
//!
//! ### Room to grow
//!
//! A *bridge to a real PostgreSQL* is a subscription that forwards entries with `pg_notify` and a
//! notifier that appends what it hears. A *SQLite extension* calls the same `Connection` from a
//! commit hook. The entry header's kind byte and reserved field, and the control file's version
//! number, let such additions be recognised by older readers.
//!
//! ### What is not guaranteed
//!
//! Nothing is durable: there is no fsync, and a reboot empties the queue (R31), subscriptions
//! included. A listening session that closes or dies loses what it had not read (R22); a
//! subscription keeps it. A process stopped (SIGSTOP) while holding the
//! writer lock stalls commits until it continues; one stopped while holding the tail lock stalls
//! the commits that need it (a LISTEN that registers, or a commit that finds the queue full), and
//! nothing else. A forked child must not use its parent's sessions (they refuse). Other processes
//! of the same user (or of the group, for a `group_shared` queue) can write the queue's files:
//! hark checks every value it reads from them and turns a file truncated under its mapping into an
//! error (see "Damage by another member"), but cannot stop such a process from deleting or
//! rewriting notifications, or from making the others' operations fail.

mod error;
mod layout;
mod options;
mod queue;
mod session;
mod sql;
mod sys;

/// Hooks for tests of this crate (the `test-hooks` feature, never in a release build).
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub mod test_hooks {
    pub use crate::sys::fault::{set_read_hook, ReadPoint};
}

pub use error::{Error, ErrorKind, Notice, Result, Severity};
pub use options::{default_dir, Options, DEFAULT_MAX_PAYLOAD, DEFAULT_MAX_QUEUE_SIZE, MAX_MAX_PAYLOAD};
pub use queue::{ListenerStat, Queue, QueueStats};
pub use session::{
    AckMode, Connection, Event, Gap, NoticeHandler, Notification, NotificationRef, SubscribeOptions, TransactionStatus,
};
pub use sql::{
    convert_pyformat, escape_identifier, escape_literal, split_statements, Param, Placeholders, PyFormatQuery,
    QueryResult,
};

/// Longest channel name, in bytes (PostgreSQL's NAMEDATALEN − 1).
pub const MAX_CHANNEL_LEN: usize = layout::MAX_CHANNEL_LEN;

/// Opens a session on the queue in `dir`, or in [`default_dir`] when `None`, creating the queue
/// if it does not exist (only in a missing or empty directory; see
/// [`Options::create`](Options#structfield.create)).
pub fn connect(dir: Option<&std::path::Path>) -> Result<Connection> {
    match dir {
        Some(d) => Connection::open(d),
        None => Connection::open_default(),
    }
}
