//! The queue directory: its control file, opened (or created, or wiped after a reboot) and checked.

mod append;
mod channels;
mod cut;
mod marks;
mod path;
pub(crate) mod pattern;
mod pids;
mod read;
mod registry;
mod segments;
mod stats;
pub(crate) mod subs;
mod tail;
mod text;

pub(crate) use append::AppendOutcome;
pub(crate) use marks::MarkedAppend;
pub(crate) use path::no_queue;
pub(crate) use read::Meta;
pub(crate) use segments::Segments;
pub use stats::{ListenerStat, QueueStats};
pub(crate) use subs::SubSpec;

use crate::error::{Error, ErrorKind, Result};
use crate::layout::*;
use crate::options::{Geometry, Options};
use crate::sys::fs::{self, Dir, FileLock};
use crate::sys::mmap::Mmap;
use crate::sys::mutex::RobustMutex;
use crate::sys::proc;
use crate::sys::wake::WakeSender;
use std::os::fd::{AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// An open queue directory. Cheap to share between the sessions of one process (`Arc<Queue>`).
pub struct Queue {
    pub(crate) dir: Dir,
    path: PathBuf,
    control: Mmap,
    pub(crate) geo: Geometry,
    layout: ControlLayout,
    write_lock: RobustMutex,
    tail_lock: RobustMutex,
    /// Our own description of `slots`, used only to test other sessions' slot locks.
    checker: OwnedFd,
    pub(crate) sender: WakeSender,
    /// The highest head this process has read: the head never moves backwards.
    seen_head: AtomicU64,
    /// A mapping of this queue's files was found truncated (see `sys/guard.rs`): from then on
    /// every operation of this process on the queue fails, rather than go on over zeros.
    damaged: AtomicBool,
}

pub(crate) const CONTROL: &str = "control";
const CONTROL_NEW: &str = "control.new";
const LOCK: &str = "lock";
pub(crate) const SLOTS: &str = "slots";
/// A segment file the tail passed, kept (at most one) for the writer to rename into its next
/// segment instead of allocating and zeroing a fresh one, as PostgreSQL recycles WAL segments.
pub(crate) const SPARE: &str = "spare";

/// Segment files are named by segment number in 15 upper-case hex digits, as `pg_notify/`.
pub(crate) fn segment_name(seg: u64) -> String {
    format!("{seg:015X}")
}

/// The positions of the bits set in `word`, lowest first: how the slot bitmaps, their word
/// summaries and the segments' bucket summaries are walked.
pub(crate) fn set_bits(mut word: u64) -> impl Iterator<Item = usize> {
    std::iter::from_fn(move || {
        (word != 0).then(|| {
            let bit = word.trailing_zeros() as usize;
            word &= word - 1;
            bit
        })
    })
}

fn is_segment_name(name: &str) -> bool {
    name.len() == 15 && name.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

impl Queue {
    /// Opens the queue directory at `dir`. Without a queue there, and with
    /// [`Options::create`](Options#structfield.create) (the default), creates the directory if
    /// missing and the queue's files in it, but only in a missing or empty directory (`path.rs`). A path that looks like a PostgreSQL connection
    /// string or URL is refused. After a reboot (the stored boot id differs) the old queue is
    /// wiped first, as PostgreSQL empties `pg_notify/` at start.
    pub fn open(dir: impl AsRef<Path>, options: &Options) -> Result<Arc<Queue>> {
        let path = dir.as_ref().to_path_buf();
        path::refuse_server_address(&path)?;
        let requested = options.geometry()?;
        // The default `hark-<uid>` lies in a directory every user can write: another user may
        // have made it (or a link) first, and even group sharing must not accept theirs.
        let shared_default = path == crate::options::shared_default_dir();
        let dir = Dir::open(&path, options.group_shared, shared_default, options.create)?;
        // The common case, a queue of this boot, needs no lock: nobody wipes or replaces a
        // control file of the current boot, and a new one is renamed into place complete. So a
        // process stopped while opening (holding the lock below) delays only creations and wipes.
        let current = match dir.open_file(CONTROL, false)? {
            Some(fd) if read_header(&fd)?.boot_id == proc::boot_id() => Some(fd),
            Some(_) => None,
            // No queue yet: only where one may be made, before the lock file is.
            None => {
                path::check_creatable(&dir, &path, options.create)?;
                None
            }
        };
        let mut _open_lock = None;
        let control = match current {
            Some(fd) => fd,
            None => {
                let lock_fd = dir.open_file(LOCK, true)?.expect("created");
                _open_lock = Some(FileLock::exclusive(lock_fd).map_err(|e| Error::io("lock the queue directory", e))?);
                match dir.open_file(CONTROL, false)? {
                    Some(fd) => match read_header(&fd)? {
                        h if h.boot_id != proc::boot_id() => {
                            drop(fd);
                            create(&dir, requested, options.group_shared)?
                        }
                        _ => fd,
                    },
                    None => create(&dir, requested, options.group_shared)?,
                }
            }
        };
        let header = read_header(&control)?;
        let geo = check_header(&header, &control)?;
        check_requested(options, geo)?;
        let layout = ControlLayout::new(header.summary_count as usize);
        let map = Mmap::map(control.as_raw_fd(), layout.size).map_err(|e| Error::io("map the control file", e))?;
        let checker = dir.open_file(SLOTS, true)?.expect("created");
        let sender = WakeSender::new().map_err(|e| Error::io("create a wake-up socket", e))?;
        // SAFETY: the mutexes sit at fixed, 64-byte aligned offsets inside the mapping, which
        // lives as long as the Queue; they were initialised by `create`.
        let (write_lock, tail_lock) = unsafe {
            let shared = map.as_ptr().add(layout.shared) as *mut Shared;
            (
                RobustMutex::from_ptr((*shared).write_lock.0.as_mut_ptr() as *mut _),
                RobustMutex::from_ptr((*shared).tail_lock.0.as_mut_ptr() as *mut _),
            )
        };
        let q = Queue {
            dir,
            path,
            control: map,
            geo,
            layout,
            write_lock,
            tail_lock,
            checker,
            sender,
            seen_head: AtomicU64::new(0),
            damaged: AtomicBool::new(false),
        };
        q.check_positions()?;
        Ok(Arc::new(q))
    }

    /// The directory this queue lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Maximum queue size in bytes.
    pub fn max_queue_size(&self) -> u64 {
        self.geo.max_queue_size
    }
    /// Maximum payload length in bytes.
    pub fn max_payload(&self) -> usize {
        self.geo.max_payload
    }
    /// Segment file size in bytes.
    pub fn segment_size(&self) -> u64 {
        self.geo.segment_size
    }

    pub(crate) fn shared(&self) -> &Shared {
        // SAFETY: layout.shared is inside the mapping (checked size), 64-byte aligned, and Shared
        // holds only atomics and the mutex cells, which are only touched through pthread calls.
        unsafe { &*(self.control.as_ptr().add(self.layout.shared) as *const Shared) }
    }

    pub(crate) fn slot(&self, i: usize) -> &Slot {
        assert!(i < SLOT_COUNT);
        // SAFETY: i < SLOT_COUNT, so the slot lies inside the mapping; Slot is all atomics.
        unsafe { &*(self.control.as_ptr().add(self.layout.slots) as *const Slot).add(i) }
    }

    /// Word `w` of bucket `b`'s bitmap of listener slots.
    pub(crate) fn bucket_word(&self, b: usize, w: usize) -> &AtomicU64 {
        assert!(b < BUCKET_COUNT && w < BUCKET_WORDS);
        // SAFETY: in bounds by the assertion and the layout; 8-byte aligned atomics.
        unsafe { &*(self.control.as_ptr().add(self.layout.buckets) as *const AtomicU64).add(b * BUCKET_WORDS + w) }
    }

    /// The word summary of bitmap `k` (`ControlLayout::word_summaries`): `k < BUCKET_COUNT` is
    /// bucket `k`'s, `BUCKET_COUNT + b` prefix bucket `b`'s.
    pub(crate) fn word_summary(&self, k: usize) -> &AtomicU64 {
        assert!(k < BUCKET_SUMMARIES);
        // SAFETY: in bounds by the assertion and the layout; 8-byte aligned atomics.
        unsafe { &*(self.control.as_ptr().add(self.layout.word_summaries) as *const AtomicU64).add(k) }
    }

    /// Word `w` of the summary of buckets notified in segment `seg`.
    pub(crate) fn summary_word(&self, seg: u64, w: usize) -> &AtomicU64 {
        assert!(w < SUMMARY_WORDS);
        let i = (seg % self.layout.summary_count as u64) as usize;
        // SAFETY: i < summary_count and w < SUMMARY_WORDS keep it inside the mapping.
        unsafe { &*(self.control.as_ptr().add(self.layout.summaries) as *const AtomicU64).add(i * SUMMARY_WORDS + w) }
    }

    pub(crate) fn seg_of(&self, pos: u64) -> u64 {
        pos / self.geo.segment_size
    }

    /// PostgreSQL's page of a position: usage and the size limit count whole 8 KiB pages.
    pub(crate) fn page_of(pos: u64) -> u64 {
        pos / PAGE_SIZE
    }

    pub(crate) fn max_pages(&self) -> u64 {
        self.geo.max_queue_size / PAGE_SIZE
    }

    /// `pg_notification_queue_usage()`: the fraction of the maximum size between the slowest
    /// listener and the head, in whole pages.
    ///
    /// It first advances the tail (reaping dead listeners), unless another process is at it: then
    /// it reads the listeners' positions without the lock rather than wait, since that process may
    /// be stopped. The figure is then the same, except that a listener which died and was not yet
    /// reaped still counts.
    pub fn usage(&self) -> Result<f64> {
        // A segment file that could not be removed is not the caller's concern here: the next
        // commit or read that moves the tail reports it as a warning.
        let advanced = self.advance_tail_if_free()?.is_some();
        let (head, tail) = self.head_and_tail()?;
        let tail = if advanced { tail } else { self.slowest_position(head).min(head) };
        Ok((Self::page_of(head) - Self::page_of(tail)) as f64 / self.max_pages() as f64)
    }

    /// The most the head can lie past the tail: an append never takes it more than the maximum
    /// size past the stored tail (which only moves forward), plus the rest of a segment.
    fn span(&self) -> u64 {
        self.geo.max_queue_size + 2 * self.geo.segment_size
    }

    /// The head, checked before anything acts on it: never behind a head this process has read
    /// (so it never moves backwards), aligned, and far from overflowing. Also fails once a
    /// mapping of the queue was found damaged.
    pub(crate) fn head(&self) -> Result<u64> {
        let floor = self.seen_head.load(Ordering::Relaxed);
        let head = self.shared().head.load(Ordering::SeqCst);
        self.check_damage(None)?;
        if head < floor || head % ENTRY_ALIGN as u64 != 0 || head > MAX_POSITION {
            return Err(self.bad_positions(format_args!("head {head}, after {floor}")));
        }
        if head > floor {
            // A plain store, not a read-modify-write (this runs at every commit and read): two
            // threads racing may leave the lower of their heads, which only makes the check
            // above a little later to catch a head moved backwards, never wrong.
            self.seen_head.store(head, Ordering::Relaxed);
        }
        Ok(head)
    }

    /// The head and the stored tail (at most the head), checked: the head at most a full queue
    /// past the tail. The tail is read after the head, so it can only be closer than it was.
    pub(crate) fn head_and_tail(&self) -> Result<(u64, u64)> {
        let head = self.head()?;
        let tail = self.shared().tail.load(Ordering::SeqCst).min(head);
        if head - tail > self.span() {
            return Err(self.bad_positions(format_args!("head {head}, tail {tail}")));
        }
        Ok((head, tail))
    }

    /// Whether `pos`, a listener's position read before `head`, can be one: no listener is
    /// ever past the head, nor behind the stored tail, which is at most a full queue behind it.
    pub(crate) fn check_listener_position(&self, pos: u64, head: u64) -> Result<()> {
        if pos > head || head - pos > self.span() || pos % ENTRY_ALIGN as u64 != 0 {
            return Err(self.bad_positions(format_args!("listener at {pos}, head {head}")));
        }
        Ok(())
    }

    fn bad_positions(&self, what: std::fmt::Arguments) -> Error {
        Error::corrupted(format!("control file of queue \"{}\" is corrupted ({what})", self.path.display()))
    }

    /// Fails when a mapping of the queue this process uses was found truncated under it: the
    /// control file's, or one of `segs`. Sticky: the queue keeps failing in this process.
    pub(crate) fn check_damage(&self, segs: Option<&Segments>) -> Result<()> {
        if self.control.damaged() || segs.is_some_and(|s| s.damaged()) {
            self.damaged.store(true, Ordering::SeqCst);
        }
        if self.damaged.load(Ordering::Relaxed) {
            return Err(Error::corrupted(format!(
                "queue file was truncated or damaged while mapped (queue \"{}\")",
                self.path.display()
            ))
            .with_hint(
                "Another process shrank a file of the queue directory. Every session of this process on \
                 this queue now fails; open it anew once its files are sound.",
            ));
        }
        Ok(())
    }

    /// A sanity check of the moving positions, so that a corrupted control file is reported at
    /// open rather than found by a reader later.
    fn check_positions(&self) -> Result<()> {
        let s = self.shared();
        let head = s.head.load(Ordering::SeqCst);
        let tail = s.tail.load(Ordering::SeqCst);
        let stop = s.stop.load(Ordering::SeqCst);
        if head % ENTRY_ALIGN as u64 != 0 || head > MAX_POSITION || !self.stored_tail_fits(head, tail, stop) {
            return Err(Error::corrupted(format!(
                "control file of queue \"{}\" is corrupted (head {head}, tail {tail}, first segment {stop})",
                self.path.display()
            )));
        }
        if s.slot_hwm.load(Ordering::SeqCst) as usize > SLOT_COUNT {
            return Err(Error::corrupted(format!(
                "control file of queue \"{}\" is corrupted (listener count)",
                self.path.display()
            )));
        }
        self.seen_head.store(head, Ordering::SeqCst);
        self.check_damage(None)
    }

    /// Whether the stored tail and first segment fit a head (read under the tail lock, or at
    /// open): the tail at most a full queue behind the head, and no more segment files behind it
    /// than a full queue spans. Positions beyond that would make the next tail advance walk (and
    /// unlink) billions of names.
    pub(crate) fn stored_tail_fits(&self, head: u64, tail: u64, stop: u64) -> bool {
        tail <= head
            && head - tail <= self.span()
            && stop <= self.seg_of(tail)
            && self.seg_of(tail) - stop <= self.layout.summary_count as u64
    }
}

/// Positions stay far below this (2^62 bytes: 146 years at a gigabyte a second), so that no sum
/// of a position and a size overflows.
const MAX_POSITION: u64 = 1 << 62;

fn read_header(fd: &OwnedFd) -> Result<Header> {
    let st = fs::fstat(fd.as_raw_fd()).map_err(|e| Error::io("stat the control file", e))?;
    if (st.st_size as usize) < std::mem::size_of::<Header>() {
        return Err(Error::corrupted("control file of the queue is truncated"));
    }
    // SAFETY: Header is plain old data; any bit pattern is a valid value, and pread fills it.
    let mut h: Header = unsafe { std::mem::zeroed() };
    let n = unsafe {
        libc::pread(fd.as_raw_fd(), &mut h as *mut Header as *mut libc::c_void, std::mem::size_of::<Header>(), 0)
    };
    if n != std::mem::size_of::<Header>() as isize {
        return Err(Error::corrupted("control file of the queue is truncated"));
    }
    if h.magic != MAGIC {
        return Err(Error::corrupted("control file is not a hark queue (bad magic number)"));
    }
    if h.version != FORMAT_VERSION {
        return Err(Error::new(
            ErrorKind::Incompatible,
            "0A000",
            format!(
                "queue format version {} is not supported by this version of hark (it reads version {FORMAT_VERSION})",
                h.version
            ),
        )
        .with_hint(
            "Every process on a queue must use one format. Once none uses it, remove the queue directory \
             (notifications do not outlive a reboot anyway) and the next open creates it anew.",
        ));
    }
    Ok(h)
}

fn check_header(h: &Header, fd: &OwnedFd) -> Result<Geometry> {
    let geo = Options {
        max_queue_size: Some(h.max_queue_size),
        max_payload: usize::try_from(h.max_payload).ok(),
        segment_size: Some(h.segment_size),
        ..Options::default()
    }
    .geometry()
    .map_err(|e| Error::corrupted(format!("control file of the queue is corrupted: {}", e.message())))?;
    let geo = Geometry {
        cut_laggards: h.flags & FLAG_CUT_LAGGARDS != 0,
        listener_max_lag_bytes: h._reserved[RESERVED_LISTENER_MAX_LAG_BYTES],
        listener_max_lag_age_ns: h._reserved[RESERVED_LISTENER_MAX_LAG_AGE_NS],
        ..geo
    };
    let expect_summaries = summary_count(&geo);
    let layout = ControlLayout::new(h.summary_count as usize);
    let st = fs::fstat(fd.as_raw_fd()).map_err(|e| Error::io("stat the control file", e))?;
    if h.slot_count as usize != SLOT_COUNT
        || h.bucket_count as usize != BUCKET_COUNT
        || h.summary_count as usize != expect_summaries
        || h.file_size != layout.size as u64
        || (st.st_size as u64) < h.file_size
    {
        return Err(Error::corrupted("control file of the queue is corrupted (sizes do not match)"));
    }
    Ok(geo)
}

fn check_requested(options: &Options, geo: Geometry) -> Result<()> {
    let clash = |what: &str, stored: u64, asked: u64| {
        Error::invalid(format!("queue was created with {what} {stored}; it cannot be reopened with {asked}"))
            .with_hint("Sizes are fixed when a queue is created; leave the option unset to use the stored value.")
    };
    if let Some(v) = options.max_queue_size.filter(|&v| v != geo.max_queue_size) {
        return Err(clash("max_queue_size", geo.max_queue_size, v));
    }
    if let Some(v) = options.max_payload.filter(|&v| v != geo.max_payload) {
        return Err(clash("max_payload", geo.max_payload as u64, v as u64));
    }
    if let Some(v) = options.segment_size.filter(|&v| v != geo.segment_size) {
        return Err(clash("segment_size", geo.segment_size, v));
    }
    if let Some(v) = options.cut_laggards.filter(|&v| v != geo.cut_laggards) {
        return Err(clash("cut_laggards", geo.cut_laggards as u64, v as u64));
    }
    if let Some(v) = options.listener_max_lag_bytes.filter(|&v| v != geo.listener_max_lag_bytes) {
        return Err(clash("listener_max_lag_bytes", geo.listener_max_lag_bytes, v));
    }
    let age = options.listener_max_lag_age.map(|d| d.as_nanos().min(u64::MAX as u128) as u64);
    if let Some(v) = age.filter(|&v| v != geo.listener_max_lag_age_ns) {
        return Err(clash("listener_max_lag_age (ns)", geo.listener_max_lag_age_ns, v));
    }
    Ok(())
}

fn summary_count(geo: &Geometry) -> usize {
    (geo.max_queue_size / geo.segment_size) as usize + 4
}

/// Writes a fresh control file beside the old one and renames it into place, after removing the
/// segment files of any earlier queue. Runs under the directory's open lock.
fn create(dir: &Dir, geo: Geometry, group_shared: bool) -> Result<OwnedFd> {
    for name in dir.list()? {
        if is_segment_name(&name) || crate::sys::wake::parse_socket_name(&name).is_some() {
            dir.unlink(&name)?;
        }
    }
    // A spare that cannot be removed (a directory with files in it) is never used; see
    // `segments::take_spare`.
    let _ = dir.remove_entry(SPARE);
    dir.unlink(CONTROL_NEW)?;
    let fd = dir.create_new(CONTROL_NEW)?;
    let layout = ControlLayout::new(summary_count(&geo));
    fs::set_len(fd.as_raw_fd(), layout.size as u64).map_err(|e| Error::io("size the control file", e))?;
    fs::allocate(fd.as_raw_fd(), layout.size as u64).map_err(|e| Error::io("allocate the control file", e))?;
    let map = Mmap::map(fd.as_raw_fd(), layout.size).map_err(|e| Error::io("map the control file", e))?;
    // SAFETY: the mapping is fresh, zero-filled, private to this process until the rename below,
    // and large enough for the header and Shared at their offsets.
    unsafe {
        let h = &mut *(map.as_ptr() as *mut Header);
        h.version = FORMAT_VERSION;
        h.flags =
            if group_shared { FLAG_GROUP_SHARED } else { 0 } | if geo.cut_laggards { FLAG_CUT_LAGGARDS } else { 0 };
        h._reserved[RESERVED_LISTENER_MAX_LAG_BYTES] = geo.listener_max_lag_bytes;
        h._reserved[RESERVED_LISTENER_MAX_LAG_AGE_NS] = geo.listener_max_lag_age_ns;
        h.boot_id = proc::boot_id();
        h.queue_id = proc::random_u64();
        h.segment_size = geo.segment_size;
        h.max_queue_size = geo.max_queue_size;
        h.max_payload = geo.max_payload as u64;
        h.slot_count = SLOT_COUNT as u32;
        h.bucket_count = BUCKET_COUNT as u32;
        h.summary_count = layout.summary_count as u32;
        h.file_size = layout.size as u64;
        let shared = map.as_ptr().add(layout.shared) as *mut Shared;
        RobustMutex::init((*shared).write_lock.0.as_mut_ptr() as *mut _)?;
        RobustMutex::init((*shared).tail_lock.0.as_mut_ptr() as *mut _)?;
        // The magic goes last: a file without it is never mistaken for a queue.
        std::ptr::write_volatile(&mut h.magic, MAGIC);
    }
    if map.damaged() {
        return Err(Error::corrupted("control file of the queue was truncated while it was being created"));
    }
    drop(map);
    dir.rename(CONTROL_NEW, CONTROL)?;
    Ok(fd)
}
