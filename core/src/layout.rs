//! The bytes on disk: the control file's `#[repr(C)]` layout and the entry format of segments.
//!
//! Everything here is shared between processes through `MAP_SHARED` mappings. Fields that change
//! after creation are atomics; the header is written once, before the file is linked into place.
//! Nothing read from these files is trusted: offsets and lengths are checked before use.

use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64, AtomicU8};

/// First bytes of the control file.
pub const MAGIC: [u8; 8] = *b"HARKQ\0\0\x01";
/// The queue format version this library reads and writes.
pub const FORMAT_VERSION: u32 = 7;
/// PostgreSQL's page: the unit of `pg_notification_queue_usage` and of the size limit.
pub const PAGE_SIZE: u64 = 8192;
/// Longest channel name in bytes (NAMEDATALEN - 1).
pub const MAX_CHANNEL_LEN: usize = 63;
/// Listener slots per queue.
pub const SLOT_COUNT: usize = 4096;
/// Channel hash buckets: the granularity of "wake only who cares" (I7).
pub const BUCKET_COUNT: usize = 256;
/// `pos` bit set while a listener is reading from its position (nobody else may move it then).
pub const POS_BUSY: u64 = 1 << 63;

pub const SLOT_FREE: u32 = 0;
/// A session's listener slot (freed when the session ends or dies).
pub const SLOT_ACTIVE: u32 = 1;
/// A durable subscription's slot: it outlives the sessions that attach to it.
pub const SLOT_SUBSCRIPTION: u32 = 2;

/// `Slot::flags`: the slot matches channel patterns as well (so it is woken through the prefix
/// buckets, and counts as interested in every segment).
pub const SLOT_PATTERNS: u32 = 1;
/// `Slot::flags`: a subscription acknowledged automatically at each receive.
pub const SLOT_AUTO_ACK: u32 = 2;

/// Written once at creation.
#[repr(C)]
pub struct Header {
    pub magic: [u8; 8],
    pub version: u32,
    pub flags: u32,
    /// `/proc/sys/kernel/random/boot_id` of the boot that created the queue.
    pub boot_id: [u8; 40],
    /// Random; names the listeners' wake-up sockets so that they differ per queue.
    pub queue_id: u64,
    pub segment_size: u64,
    pub max_queue_size: u64,
    pub max_payload: u64,
    pub slot_count: u32,
    pub bucket_count: u32,
    pub summary_count: u32,
    pub _reserved0: u32,
    pub file_size: u64,
    pub _reserved: [u64; 16],
}

pub const FLAG_GROUP_SHARED: u32 = 1;
/// A full queue cuts the listeners that hold it back (each gets a gap signal) instead of failing
/// the commit.
pub const FLAG_CUT_LAGGARDS: u32 = 2;

/// `Header::_reserved` words: the lag limits given to plain listeners at registration (0: none).
pub const RESERVED_LISTENER_MAX_LAG_BYTES: usize = 0;
pub const RESERVED_LISTENER_MAX_LAG_AGE_NS: usize = 1;

/// A `pthread_mutex_t` in its own cache line.
#[repr(C, align(64))]
pub struct MutexCell(pub [u8; 64]);

const _: () = assert!(std::mem::size_of::<libc::pthread_mutex_t>() <= 64);

/// The queue's moving parts.
#[repr(C, align(64))]
pub struct Shared {
    /// The one writer lock (PostgreSQL's notify-insertion lock): appends and head moves.
    pub write_lock: MutexCell,
    /// Serialises tail advance, segment deletion, and listener registration.
    pub tail_lock: MutexCell,
    /// Byte position one past the last committed entry. Moving it publishes a transaction.
    pub head: AtomicU64,
    /// Commit sequence number of the next transaction.
    pub next_txn: AtomicU64,
    pub _pad0: [u64; 6],
    /// Minimum position of all registered listeners, as last computed.
    pub tail: AtomicU64,
    /// Number of the oldest segment file not yet deleted.
    pub stop: AtomicU64,
    /// One past the highest slot index ever registered.
    pub slot_hwm: AtomicU32,
    /// Counter behind the synthetic backend PIDs (`queue/pids.rs`).
    pub next_backend_pid: AtomicU32,
    /// CLOCK_MONOTONIC nanoseconds of the last half-full warning (rate limit).
    pub last_warning: AtomicU64,
    /// Set (never cleared) once a subscription with patterns attached: until then notifiers
    /// skip the prefix buckets, so queues without patterns pay nothing for them.
    pub patterns_used: AtomicU64,
    pub _pad2: [u64; 3],
}

/// One listener (a session that has committed a LISTEN) or one durable subscription.
#[repr(C, align(64))]
pub struct Slot {
    pub state: AtomicU32,
    /// The owner's backend PID (`queue/pids.rs`): what its notifications carry. 0 while a
    /// subscription has nobody attached.
    pub pid: AtomicI32,
    /// Set by a notifier that sent a wake-up datagram, cleared by the listener before it reads.
    pub wake_pending: AtomicU32,
    /// Number of channels listened on (for `hark stat`).
    pub channels: AtomicU32,
    /// Next byte position to read; for a subscription, one past the last acknowledged entry.
    /// `POS_BUSY` while the owner is reading.
    pub pos: AtomicU64,
    /// Names the owner's wake-up socket.
    pub sock_id: AtomicU64,
    /// Incremented at every registration (for `hark stat` and debugging).
    pub generation: AtomicU64,
    /// The owner's operating-system process id (for `hark stat`).
    pub os_pid: AtomicI32,
    /// `SLOT_PATTERNS`, `SLOT_AUTO_ACK`.
    pub flags: AtomicU32,
    /// Lag limits (0: none): past them the slot is cut (`queue/cut.rs`).
    pub max_lag_bytes: AtomicU64,
    pub max_lag_age_ns: AtomicU64,
    /// Where an attached subscriber has read up to (its `pos` is the acknowledged position).
    pub read_pos: AtomicU64,
    /// The floor set by the last cut: nothing before it is read any more. Tail advance counts
    /// the slot at `max(pos, cut_to)`.
    pub cut_to: AtomicU64,
    /// Written under the tail lock by cutters and by the owner taking the gap: notifications
    /// skipped and not yet reported, the commit sequence numbers of the first and last of
    /// them, and twice the number of cuts begun (odd while one is under way; the owner compares
    /// it around a read).
    pub gap_count: AtomicU64,
    pub gap_first_txn: AtomicU64,
    pub gap_last_txn: AtomicU64,
    pub cuts: AtomicU64,
    /// Where the unreported gap starts (the first cut's starting point).
    pub gap_from: AtomicU64,
    /// Inside the unreported gap's range, what its owner had read past the floor of a later cut
    /// (from the first cut's floor to its published position): no cutter counted it, so the
    /// owner counts what it drops from there when it takes the gap. Empty when equal.
    pub hole_from: AtomicU64,
    pub hole_to: AtomicU64,
    /// What an attached subscriber had read and not acknowledged when a cut passed it: the
    /// queue no longer holds it, so unless acknowledged it becomes the gap of the next attach.
    /// `owed_to` is the read position then (0: nothing owed); the owner lowers `owed_count` as it
    /// acknowledges (tail lock held).
    pub owed_to: AtomicU64,
    pub owed_count: AtomicU64,
    pub owed_first_txn: AtomicU64,
    pub owed_last_txn: AtomicU64,
    /// A cut's outcome, written whole before it is applied, so that the next holder of the tail
    /// lock finishes the cut of a cutter that died halfway (`queue/cut.rs`).
    pub journal: [AtomicU64; JOURNAL_LEN],
}

/// `Slot::journal`: the `cuts` value of the cut it describes (odd), then the new values of
/// `gap_count`, `gap_from`, `gap_first_txn`, `gap_last_txn`, `cut_to`, `hole_from`, `hole_to`,
/// `owed_to`, `owed_count`, `owed_first_txn`, `owed_last_txn`.
pub const JOURNAL_LEN: usize = 12;

/// Channel hashes a listener's `ChannelList` holds; a listener with more channels is matched by
/// its buckets alone.
pub const SLOT_HASHES: usize = 15;
/// Channel hashes a segment's `ChannelList` holds; a segment with more channels is matched by its
/// bucket summary alone.
pub const SEGMENT_HASHES: usize = 31;
/// `ChannelList::count` when the channels did not fit.
pub const HASHES_MANY: u32 = u32::MAX;

/// The exact channels (as [`channel_hash`]es) of a listener or of a segment, so that deciding
/// whether a listener behind the head cares about a segment does not depend on bucket collisions
/// (an idle listener whose channel shares a bucket with a busy one must not pin the queue, I5).
/// A listener's list is rewritten by its owner between two increments of `gen` (odd meanwhile, a
/// seqlock); a segment's list only grows, under the writer lock, hash before count.
#[repr(C, align(64))]
pub struct ChannelList<const N: usize> {
    pub gen: AtomicU32,
    /// Hashes in use, or `HASHES_MANY`.
    pub count: AtomicU32,
    pub hashes: [AtomicU64; N],
}

const _: () = assert!(std::mem::size_of::<ChannelList<SLOT_HASHES>>() == 128);
const _: () = assert!(std::mem::size_of::<ChannelList<SEGMENT_HASHES>>() == 256);

/// Bytes of a slot's text: a subscription's name and its channels and patterns, or a listener's
/// channels, for `hark stat` and for matching while nobody is attached.
pub const SLOT_TEXT_LEN: usize = 1016;

/// A slot's names, rewritten by its owner under the slot's `ChannelList` generation (a seqlock):
/// `name_len` bytes of subscription name (0 for a listener), then `len - name_len` bytes of
/// channel names and patterns, each ended by `\n`. `len` is `u32::MAX` when they did not fit.
#[repr(C, align(8))]
pub struct SlotText {
    pub name_len: AtomicU32,
    pub len: AtomicU32,
    pub bytes: [AtomicU8; SLOT_TEXT_LEN],
}

const _: () = assert!(std::mem::size_of::<SlotText>() == 1024);

/// Patterns are woken through a bucket of the hash of this many leading bytes.
pub const PREFIX_LEN: usize = 4;

/// Where each part lives in the control file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlLayout {
    pub shared: usize,
    pub slots: usize,
    pub buckets: usize,
    pub summaries: usize,
    pub summary_count: usize,
    /// A `ChannelList<SLOT_HASHES>` per slot.
    pub slot_channels: usize,
    /// A `ChannelList<SEGMENT_HASHES>` per summary.
    pub segment_channels: usize,
    /// A prefix-bucket bitmap per bucket (patterns by the hash of their first `PREFIX_LEN`
    /// bytes), then one bitmap of the slots whose patterns have a shorter literal prefix.
    pub prefix_buckets: usize,
    /// One u64 per bitmap of `buckets` and of `prefix_buckets` (`BUCKET_SUMMARIES` in all): bit
    /// `w` set once word `w` of that bitmap has had a bit set. Only ever set (a slot's bits come
    /// and go with its owners; a stale bit costs a notifier one load), so a notifier looks only
    /// at the words that may hold listeners, not at every word up to the highest slot in use.
    pub word_summaries: usize,
    /// A `SlotText` per slot.
    pub slot_text: usize,
    /// `MARK_COUNT` publication marks (`queue/marks.rs`).
    pub marks: usize,
    pub size: usize,
}

/// u64 words in one bucket's bitmap of slots.
pub const BUCKET_WORDS: usize = SLOT_COUNT / 64;
/// Word summaries (`ControlLayout::word_summaries`): one per bucket bitmap, then one per prefix
/// bucket bitmap (the last for the patterns with a shorter literal prefix).
pub const BUCKET_SUMMARIES: usize = BUCKET_COUNT + BUCKET_COUNT + 1;
const _: () = assert!(BUCKET_WORDS <= 64, "a word summary is one u64");

/// u64 words in one segment's summary of buckets.
pub const SUMMARY_WORDS: usize = BUCKET_COUNT / 64;

impl ControlLayout {
    pub fn new(summary_count: usize) -> ControlLayout {
        let shared = 512;
        let slots = shared + std::mem::size_of::<Shared>();
        let buckets = slots + SLOT_COUNT * std::mem::size_of::<Slot>();
        let summaries = buckets + BUCKET_COUNT * BUCKET_WORDS * 8;
        let slot_channels = (summaries + summary_count * SUMMARY_WORDS * 8).next_multiple_of(64);
        let segment_channels = slot_channels + SLOT_COUNT * std::mem::size_of::<ChannelList<SLOT_HASHES>>();
        let prefix_buckets = segment_channels + summary_count * std::mem::size_of::<ChannelList<SEGMENT_HASHES>>();
        let word_summaries = prefix_buckets + (BUCKET_COUNT + 1) * BUCKET_WORDS * 8;
        let slot_text = (word_summaries + BUCKET_SUMMARIES * 8).next_multiple_of(64);
        let marks = (slot_text + SLOT_COUNT * std::mem::size_of::<SlotText>()).next_multiple_of(64);
        let size = marks + MARK_COUNT * std::mem::size_of::<Mark>();
        let size = size.next_multiple_of(4096);
        ControlLayout {
            shared,
            slots,
            buckets,
            summaries,
            summary_count,
            slot_channels,
            segment_channels,
            prefix_buckets,
            word_summaries,
            slot_text,
            marks,
            size,
        }
    }
}

/// Publication marks per queue: one per outside source of notifications (a SQLite database).
pub const MARK_COUNT: usize = 1024;

/// A publication mark (`queue/marks.rs`): the highest item a source has published, advanced by
/// the same head store that publishes the items. `key` 0 is a free mark; all fields change under
/// the writer lock only.
#[repr(C, align(64))]
pub struct Mark {
    pub key: AtomicU64,
    /// The value once the append that set `pending` is known to have published.
    pub committed: AtomicU64,
    /// The value an append in flight (or just done) set, valid once the head reaches
    /// `pending_head`.
    pub pending: AtomicU64,
    /// The head the append that set `pending` stores; `u64::MAX` while `pending` is rewritten.
    pub pending_head: AtomicU64,
    pub _pad: [u64; 4],
}

const _: () = assert!(std::mem::size_of::<Mark>() == 64);

const _: () = assert!(std::mem::size_of::<Header>() <= 512);
const _: () = assert!(std::mem::size_of::<Slot>() == 320);

/// Byte `PID_LOCK_BASE + pid` of the `slots` file is locked (`F_OFD_SETLK`) by the session whose
/// backend PID is `pid`, for as long as it lives, so that no two live sessions share one. Far
/// past the slot bytes `0..SLOT_COUNT`.
pub const PID_LOCK_BASE: u64 = 1 << 32;
/// Synthetic backend PIDs start here: Linux process ids stay below its `PID_MAX_LIMIT` (2^22), so
/// a synthetic PID never equals a process's.
pub const SYNTHETIC_PID_MIN: i32 = 1 << 22;

/// Entry header, 8-byte aligned, in native byte order:
/// `len u32 | kind u8 | channel_len u8 | reserved u16 | pid i32 | payload_len u32 | txn u64 |
/// time u64` (`txn` the commit sequence number, `time` the commit time in nanoseconds since the
/// Unix epoch, both the same for every entry of a transaction), followed by the channel bytes,
/// the payload bytes and zero padding to a multiple of 8.
pub const ENTRY_HEADER: usize = 32;
pub const ENTRY_ALIGN: usize = 8;
pub const KIND_NOTIFICATION: u8 = 1;
/// Covers the rest of a segment when the next entry does not fit in it.
pub const KIND_FILLER: u8 = 2;

/// Bytes an entry with these string lengths takes.
pub fn entry_size(channel_len: usize, payload_len: usize) -> usize {
    (ENTRY_HEADER + channel_len + payload_len).next_multiple_of(ENTRY_ALIGN)
}

/// A channel's 64-bit hash (FNV-1a), as stored in channel lists. Part of the format.
pub fn channel_hash(channel: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in channel {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// The bucket of a channel with hash `h`. Part of the format.
pub fn bucket_of_hash(h: u64) -> usize {
    let h = h ^ (h >> 32);
    ((h ^ (h >> 16)) as usize) % BUCKET_COUNT
}

/// The channel's bucket.
pub fn bucket_of(channel: &[u8]) -> usize {
    bucket_of_hash(channel_hash(channel))
}
