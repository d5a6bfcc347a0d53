//! The bytes on disk: the control file's `#[repr(C)]` layout and the entry format of segments.
//!
//! Everything here is shared between processes through `MAP_SHARED` mappings. Fields that change
//! after creation are atomics; the header is written once, before the file is linked into place.
//! Nothing read from these files is trusted: offsets and lengths are checked before use.

use std::sync::atomic::{AtomicI32, AtomicU32, AtomicU64};

/// First bytes of the control file.
pub const MAGIC: [u8; 8] = *b"HARKQ\0\0\x01";
/// The queue format version this library reads and writes.
pub const FORMAT_VERSION: u32 = 4;
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
pub const SLOT_ACTIVE: u32 = 1;

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
    pub _pad2: [u64; 4],
}

/// One listener (a session that has committed a LISTEN).
#[repr(C, align(64))]
pub struct Slot {
    pub state: AtomicU32,
    /// The owner's backend PID (`queue/pids.rs`): what its notifications carry.
    pub pid: AtomicI32,
    /// Set by a notifier that sent a wake-up datagram, cleared by the listener before it reads.
    pub wake_pending: AtomicU32,
    /// Number of channels listened on (for `hark stat`).
    pub channels: AtomicU32,
    /// Next byte position to read; `POS_BUSY` while the owner is reading.
    pub pos: AtomicU64,
    /// Names the owner's wake-up socket.
    pub sock_id: AtomicU64,
    /// Incremented at every registration (for `hark stat` and debugging).
    pub generation: AtomicU64,
    /// The owner's operating-system process id (for `hark stat`).
    pub os_pid: AtomicI32,
    pub _pad0: u32,
    pub _pad: [u64; 2],
}

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
    /// `MARK_COUNT` publication marks (`queue/marks.rs`).
    pub marks: usize,
    pub size: usize,
}

/// u64 words in one bucket's bitmap of slots.
pub const BUCKET_WORDS: usize = SLOT_COUNT / 64;
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
        let marks = segment_channels + summary_count * std::mem::size_of::<ChannelList<SEGMENT_HASHES>>();
        let size = marks + MARK_COUNT * std::mem::size_of::<Mark>();
        let size = size.next_multiple_of(4096);
        ControlLayout { shared, slots, buckets, summaries, summary_count, slot_channels, segment_channels, marks, size }
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
const _: () = assert!(std::mem::size_of::<Slot>() == 64);

/// Byte `PID_LOCK_BASE + pid` of the `slots` file is locked (`F_OFD_SETLK`) by the session whose
/// backend PID is `pid`, for as long as it lives, so that no two live sessions share one. Far
/// past the slot bytes `0..SLOT_COUNT`.
pub const PID_LOCK_BASE: u64 = 1 << 32;
/// Synthetic backend PIDs start here: Linux process ids stay below its `PID_MAX_LIMIT` (2^22), so
/// a synthetic PID never equals a process's.
pub const SYNTHETIC_PID_MIN: i32 = 1 << 22;

/// Entry header, 8-byte aligned, in native byte order:
/// `len u32 | kind u8 | channel_len u8 | reserved u16 | pid i32 | payload_len u32 | txn u64`,
/// followed by the channel bytes, the payload bytes and zero padding to a multiple of 8.
pub const ENTRY_HEADER: usize = 24;
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
