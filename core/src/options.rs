//! Queue options fixed at creation, and the default queue directory.

use crate::error::{Error, Result};
use crate::layout::{ENTRY_HEADER, MAX_CHANNEL_LEN, PAGE_SIZE};
use std::path::PathBuf;

/// PostgreSQL's payload limit: strictly under 8000 bytes.
pub const DEFAULT_MAX_PAYLOAD: usize = 7999;
/// The largest payload a queue may be created for (1 MiB), the size PostgreSQL users ask for.
pub const MAX_MAX_PAYLOAD: usize = 1 << 20;
/// PostgreSQL's default `max_notify_queue_pages` × 8 KiB.
pub const DEFAULT_MAX_QUEUE_SIZE: u64 = 8 << 30;
/// PostgreSQL's minimum: 64 pages.
pub const MIN_MAX_QUEUE_SIZE: u64 = 64 * PAGE_SIZE;
/// The largest queue hark accepts (1 TiB): positions are 64-bit, this only bounds the control file.
pub const MAX_MAX_QUEUE_SIZE: u64 = 1 << 40;
const MIN_SEGMENT_SIZE: u64 = 64 << 10;
const MAX_SEGMENT_SIZE: u64 = 1 << 30;
const DEFAULT_SEGMENT_SIZE: u64 = 16 << 20;

/// Options for opening (and, the first time, creating) a queue directory.
///
/// Sizes are fixed when the queue is created. Reopening an existing queue with an explicit value
/// that differs from the stored one is an error rather than a silent surprise; leave a field `None`
/// to accept whatever the queue was created with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Maximum bytes between the slowest listener and the head (default 8 GiB, minimum 512 KiB).
    pub max_queue_size: Option<u64>,
    /// Maximum payload length in bytes (default 7999, as PostgreSQL; at most 1 MiB).
    pub max_payload: Option<usize>,
    /// Size of each segment file (a power of two; by default chosen from the two sizes above).
    pub segment_size: Option<u64>,
    /// Let other users of the directory's group share the queue: directory 02770 (setgid, so that
    /// files get its group), files 0660 of the directory's group. Without it the directory must
    /// be private to its owner (0700, files 0600).
    pub group_shared: bool,
    /// Create the queue if there is none (the default): in a missing directory, which is made,
    /// or in an empty one; never in a directory that holds anything else. `false` opens only an
    /// existing queue and fails with `queue "…" does not exist` (SQLSTATE 3D000) otherwise.
    pub create: bool,
    /// What a commit does when the queue is full. `false` (the default, PostgreSQL's
    /// behaviour): it fails with `54000 too many notifications in the NOTIFY queue`. `true`: the
    /// listeners and subscriptions that hold the queue back are *cut* (moved forward, each told
    /// by a gap signal what it skipped) so that notifiers never stall on a reader that stopped.
    /// Fixed when the queue is created; `None` accepts the stored value.
    pub cut_laggards: Option<bool>,
    /// A lag limit in bytes for every plain listener (subscriptions set their own): a listener
    /// further behind the head is cut, with a gap signal. Checked when the head enters a new
    /// segment and when the queue is full. Fixed when the queue is created; 0 means none.
    pub listener_max_lag_bytes: Option<u64>,
    /// A lag limit in age for every plain listener: a listener whose oldest unread commit is
    /// older is cut, with a gap signal (checked as the byte limit). Fixed when the queue is
    /// created; zero means none.
    pub listener_max_lag_age: Option<std::time::Duration>,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_queue_size: None,
            max_payload: None,
            segment_size: None,
            group_shared: false,
            create: true,
            cut_laggards: None,
            listener_max_lag_bytes: None,
            listener_max_lag_age: None,
        }
    }
}

/// The sizes and policies a queue is created with, after defaults and validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    pub max_queue_size: u64,
    pub max_payload: usize,
    pub segment_size: u64,
    pub cut_laggards: bool,
    pub listener_max_lag_bytes: u64,
    pub listener_max_lag_age_ns: u64,
}

impl Options {
    /// Options with every size left to its default.
    pub fn new() -> Options {
        Options::default()
    }
    /// Sets [`Options::max_queue_size`].
    pub fn max_queue_size(mut self, bytes: u64) -> Options {
        self.max_queue_size = Some(bytes);
        self
    }
    /// Sets [`Options::max_payload`].
    pub fn max_payload(mut self, bytes: usize) -> Options {
        self.max_payload = Some(bytes);
        self
    }
    /// Sets [`Options::segment_size`].
    pub fn segment_size(mut self, bytes: u64) -> Options {
        self.segment_size = Some(bytes);
        self
    }
    /// Sets [`Options::group_shared`].
    pub fn group_shared(mut self, yes: bool) -> Options {
        self.group_shared = yes;
        self
    }
    /// Sets [`Options::create`].
    pub fn create(mut self, yes: bool) -> Options {
        self.create = yes;
        self
    }
    /// Sets [`Options::cut_laggards`].
    pub fn cut_laggards(mut self, yes: bool) -> Options {
        self.cut_laggards = Some(yes);
        self
    }
    /// Sets [`Options::listener_max_lag_bytes`].
    pub fn listener_max_lag_bytes(mut self, bytes: u64) -> Options {
        self.listener_max_lag_bytes = Some(bytes);
        self
    }
    /// Sets [`Options::listener_max_lag_age`].
    pub fn listener_max_lag_age(mut self, age: std::time::Duration) -> Options {
        self.listener_max_lag_age = Some(age);
        self
    }

    pub(crate) fn geometry(&self) -> Result<Geometry> {
        let max_queue_size = self.max_queue_size.unwrap_or(DEFAULT_MAX_QUEUE_SIZE);
        if !(MIN_MAX_QUEUE_SIZE..=MAX_MAX_QUEUE_SIZE).contains(&max_queue_size) {
            return Err(Error::invalid(format!(
                "max_queue_size must be between {MIN_MAX_QUEUE_SIZE} and {MAX_MAX_QUEUE_SIZE} bytes"
            )));
        }
        let max_payload = self.max_payload.unwrap_or(DEFAULT_MAX_PAYLOAD);
        if !(1..=MAX_MAX_PAYLOAD).contains(&max_payload) {
            return Err(Error::invalid(format!("max_payload must be between 1 and {MAX_MAX_PAYLOAD} bytes")));
        }
        // A segment holds at least two of the largest entries, and the number of segments a full
        // queue spans stays small enough for the control file's per-segment summaries.
        let largest_entry = (ENTRY_HEADER + MAX_CHANNEL_LEN + max_payload) as u64;
        let floor = (2 * largest_entry).next_power_of_two().max(MIN_SEGMENT_SIZE);
        let segment_size = match self.segment_size {
            Some(s) => {
                if !s.is_power_of_two() || s < floor || s > MAX_SEGMENT_SIZE {
                    return Err(Error::invalid(format!(
                        "segment_size must be a power of two between {floor} and {MAX_SEGMENT_SIZE} bytes"
                    )));
                }
                s
            }
            None => DEFAULT_SEGMENT_SIZE
                .min((max_queue_size / 8).next_power_of_two())
                .max(floor)
                .max((max_queue_size / 65536).next_power_of_two()),
        };
        if max_queue_size / segment_size > 65536 {
            return Err(Error::invalid(format!(
                "segment_size must be at least max_queue_size / 65536 ({} bytes for this queue)",
                (max_queue_size / 65536).next_power_of_two()
            )));
        }
        let age = self.listener_max_lag_age.map_or(0, |d| d.as_nanos().min(u64::MAX as u128) as u64);
        Ok(Geometry {
            max_queue_size,
            max_payload,
            segment_size,
            cut_laggards: self.cut_laggards.unwrap_or(false),
            listener_max_lag_bytes: self.listener_max_lag_bytes.unwrap_or(0),
            listener_max_lag_age_ns: age,
        })
    }
}

/// The directory used when none is given: `$HARK_DIR` when set (and not empty), else
/// `/dev/shm/hark-<uid>` (`/tmp/hark-<uid>` on a system without `/dev/shm`), `<uid>` being the
/// effective user id.
///
/// One rule, on purpose: apart from `$HARK_DIR`, it depends on the user alone, so that every
/// process of a user meets on the same queue, whatever its environment. A systemd service may
/// lack `$XDG_RUNTIME_DIR` or have another one than a login shell, and `/run/user/<uid>` exists
/// only while the user is logged in (or lingers): a default taken from either would put a service
/// and a shell of the same user on two different queues without a word. `$TMPDIR` is not read
/// either, for the same reason.
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("HARK_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    shared_default_dir()
}

/// `/dev/shm/hark-<uid>` (memory, so that the kernel never writes queue pages back to a disk),
/// else `/tmp/hark-<uid>`. Both lie in a directory every user may write, so another user may
/// create that name first; the queue is opened there only if it is a directory of the calling
/// user, never through a symbolic link (I10).
pub(crate) fn shared_default_dir() -> PathBuf {
    // SAFETY: geteuid cannot fail.
    let uid = unsafe { libc::geteuid() };
    let shm = std::path::Path::new("/dev/shm");
    let base = if shm.is_dir() { shm } else { std::path::Path::new("/tmp") };
    base.join(format!("hark-{uid}"))
}

/// What to do when [`shared_default_dir`] is taken by another user.
pub(crate) const SHARED_DEFAULT_HINT: &str =
    "This is the default queue directory, in a directory every user can write: \
another user (or a link of theirs) took its name first, and hark will not use it. Give a queue directory of your own \
(set $HARK_DIR, or pass one); an administrator can remove the impostor.";
