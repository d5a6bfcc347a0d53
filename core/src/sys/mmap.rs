//! Shared memory mappings of queue files.

use super::guard::Guarded;
use std::io;
use std::os::fd::RawFd;
use std::ptr::NonNull;

/// A `MAP_SHARED`, read-write mapping of a whole file, unmapped on drop. It is guarded against
/// truncation of the file (`guard.rs`): a fault on it zero-fills the pages and flags it damaged.
pub struct Mmap {
    ptr: NonNull<u8>,
    len: usize,
    guard: Guarded,
}

// SAFETY: the mapping is plain shared memory; all concurrent access to it goes through atomics or
// through bytes that the queue protocol hands to exactly one writer at a time.
unsafe impl Send for Mmap {}
unsafe impl Sync for Mmap {}

impl Mmap {
    /// Maps `len` bytes of `fd` from offset 0. The caller has checked that the file is at least
    /// `len` bytes long and allocated (otherwise touching the tail would raise SIGBUS).
    pub fn map(fd: RawFd, len: usize) -> io::Result<Mmap> {
        Mmap::map_flags(fd, len, 0)
    }

    /// [`Mmap::map`], with every page mapped up front (`MAP_POPULATE`): one system call instead of
    /// a page fault per 4 KiB for a file that is about to be read or written from end to end.
    pub fn map_populated(fd: RawFd, len: usize) -> io::Result<Mmap> {
        Mmap::map_flags(fd, len, libc::MAP_POPULATE)
    }

    fn map_flags(fd: RawFd, len: usize, flags: libc::c_int) -> io::Result<Mmap> {
        // SAFETY: a fresh mapping chosen by the kernel; the result is checked.
        let p = unsafe {
            libc::mmap(std::ptr::null_mut(), len, libc::PROT_READ | libc::PROT_WRITE, libc::MAP_SHARED | flags, fd, 0)
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p as *mut u8).expect("mmap never returns NULL on success");
        Ok(Mmap { ptr, len, guard: Guarded::register(p as usize, len) })
    }

    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// Whether an access so far found the file truncated under the mapping (and read zeros, or
    /// wrote into private pages nobody else sees). Call after the accesses to check.
    pub fn damaged(&self) -> bool {
        self.guard.damaged()
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        self.guard.release();
        // SAFETY: ptr/len came from a successful mmap and are unmapped once.
        unsafe { libc::munmap(self.ptr.as_ptr() as *mut libc::c_void, self.len) };
    }
}
