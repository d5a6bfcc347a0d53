//! Segment files and a session's small cache of their mappings.

use super::{segment_name, Queue, SPARE};
use crate::error::{Error, Result};
use crate::sys::fs;
use crate::sys::mmap::Mmap;
use std::os::fd::AsRawFd;

/// How many mappings a session keeps: the segment it reads or writes, and its neighbour.
const CACHED: usize = 2;

/// Segments up to this size are mapped with all their pages (the default is 16 MiB).
const POPULATE_UP_TO: u64 = 64 << 20;

/// A session's mapped segments, most recently used last.
#[derive(Default)]
pub(crate) struct Segments {
    maps: Vec<(u64, Mmap)>,
    /// Whether this session mapped a segment before: then it streams through segments.
    mapped_before: bool,
    /// A mapping dropped from the cache had been found truncated (see `damaged`).
    dropped_damaged: bool,
}

impl Segments {
    /// The mapping of segment `seg`. A writer (`create`) makes the file, allocated for real, if it
    /// is missing; a reader expects it to exist, since it lies between its position and the head.
    /// When the caller is about to walk the segment from its first byte (`from_start`), or has
    /// mapped segments before (it streams through them), all the segment's pages are mapped at
    /// once; a session's first mapping of a segment it enters midway is lazy, so that a one-shot
    /// notifier does not pay for mapping 16 MiB to write 100 bytes.
    pub(crate) fn get(&mut self, q: &Queue, seg: u64, create: bool, from_start: bool) -> Result<&Mmap> {
        if let Some(i) = self.maps.iter().position(|(s, _)| *s == seg) {
            if i + 1 != self.maps.len() {
                let m = self.maps.remove(i);
                self.maps.push(m);
            }
            return Ok(&self.maps.last().expect("just found").1);
        }
        if self.maps.len() == CACHED {
            // Unmap first: never more than CACHED segments mapped (they are mapped whole).
            // A commit or read spanning more segments than that checks them all at its end.
            let (_, old) = self.maps.remove(0);
            self.dropped_damaged |= old.damaged();
        }
        let whole = from_start || self.mapped_before;
        self.maps.push((seg, map_segment(q, seg, create, whole)?));
        self.mapped_before = true;
        Ok(&self.maps.last().expect("just pushed").1)
    }

    /// Whether an access found one of the mapped segment files truncated (see `sys/guard.rs`).
    pub(crate) fn damaged(&self) -> bool {
        self.dropped_damaged || self.maps.iter().any(|(_, m)| m.damaged())
    }

    /// Drops every mapping (after a fork, or when the session closes).
    pub(crate) fn clear(&mut self) {
        self.maps.clear();
    }
}

fn map_segment(q: &Queue, seg: u64, create: bool, whole: bool) -> Result<Mmap> {
    let name = segment_name(seg);
    let size = q.geo.segment_size;
    if create {
        take_spare(q, &name)?;
    }
    let fd = match q.dir.open_file(&name, create)? {
        Some(fd) => fd,
        None => {
            return Err(Error::corrupted(format!("segment file \"{name}\" of the NOTIFY queue is missing"))
                .with_detail(format!(
                    "Could not access async queue at page {}, offset 0.",
                    seg * size / crate::layout::PAGE_SIZE
                )))
        }
    };
    let st = fs::fstat(fd.as_raw_fd()).map_err(|e| Error::io(format_args!("stat \"{name}\""), e))?;
    if create {
        // Only a segment at or past the head is ever created, so nothing refers to its bytes yet.
        // A recycled file, or one mapped before, is allocated already.
        let allocated = st.st_size as u64 >= size && st.st_blocks as u64 * 512 >= size;
        if !allocated {
            if let Err(e) = fs::allocate(fd.as_raw_fd(), size) {
                drop(fd);
                let _ = q.dir.unlink(&name);
                return Err(Error::io(format_args!("allocate segment file \"{name}\""), e));
            }
        }
    } else if (st.st_size as u64) < size {
        return Err(Error::corrupted(format!(
            "segment file \"{name}\" of the NOTIFY queue is truncated ({} of {size} bytes)",
            st.st_size
        )));
    }
    // All pages at once: one system call instead of a fault per page (unless segments are made
    // huge, where that would count them whole in every process's RSS).
    let map = if whole && size <= POPULATE_UP_TO { Mmap::map_populated } else { Mmap::map };
    map(fd.as_raw_fd(), size as usize).map_err(|e| Error::io(format_args!("map segment file \"{name}\""), e))
}

/// A missing segment takes the spare file a tail advance left behind, if there is one: its pages
/// are allocated already, so neither the file system nor the kernel's page zeroing runs again. Its
/// old bytes are never read: readers stop at the head, and every byte below the head is written by
/// an append first. Anything else found as `spare` (a FIFO, a directory, a symlink, a file of
/// another user) is removed if it can be and never used: renamed to a segment's name it would fail
/// every commit that needs that segment.
fn take_spare(q: &Queue, name: &str) -> Result<()> {
    match q.dir.is_queue_file(SPARE) {
        None => {}
        Some(true) => {
            q.dir.rename_noreplace(SPARE, name)?;
        }
        // Left in place if it cannot be removed (a directory with files in it): the writer
        // allocates fresh segments, and a tail advance finds the name taken and deletes the
        // segments it passes instead.
        Some(false) => drop(q.dir.remove_entry(SPARE)),
    }
    Ok(())
}
