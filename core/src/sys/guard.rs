//! Turning SIGBUS on a mapped queue file into an error.
//!
//! Touching a page of a `MAP_SHARED` mapping that lies past the end of its file (someone truncated
//! the file while it was mapped) raises SIGBUS, which kills the process by default. Another member
//! of a queue can truncate its files, and must not be able to crash the others that way. So every
//! mapping of a queue file is recorded in a fixed, lock-free table of address ranges, and a SIGBUS
//! handler, installed once for the process when the first queue file is mapped, looks the faulting
//! address up there:
//!
//! * inside a recorded mapping: the pages from the faulting one to the end of that mapping are
//!   replaced by private zero pages (`mmap` with `MAP_FIXED`), so the faulting access completes,
//!   and the mapping is flagged damaged. The queue code checks the flags of the mappings an
//!   operation used (a load each) and turns a damaged one into an error; nothing read from a
//!   damaged mapping is handed out as a notification;
//! * anywhere else: the fault is not ours, and goes to the handler installed before (called with
//!   the same arguments), or, when that was the default action or "ignore", the default action is
//!   restored and the handler returns, so that the access faults again and kills the process as
//!   it would have without hark.
//!
//! The handler uses only atomics, `mmap` and `sigaction`. A program that installs its own SIGBUS
//! handler after hark must call the previous one for faults it does not handle itself, as any
//! well-behaved handler does; otherwise a truncated queue file kills it as before. Mappings that
//! do not fit in the table (more than [`ENTRIES`] at once in one process) are simply not guarded.

use std::sync::atomic::{compiler_fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::{Once, OnceLock};

/// Mappings guarded at once per process (a session maps the control file and at most two segments).
pub const ENTRIES: usize = 8192;

/// One guarded range. `start` is claimed first (0 means free) and `len` set last; `len` is cleared
/// first and `start` last on release, so the handler never pairs one mapping's start with
/// another's length.
struct Entry {
    start: AtomicUsize,
    len: AtomicUsize,
    damaged: AtomicBool,
}

#[allow(clippy::declare_interior_mutable_const)] // only used to initialise TABLE
const FREE: Entry = Entry { start: AtomicUsize::new(0), len: AtomicUsize::new(0), damaged: AtomicBool::new(false) };
static TABLE: [Entry; ENTRIES] = [FREE; ENTRIES];
/// Where the next search for a free entry starts (a hint; any entry may be taken).
static NEXT: AtomicUsize = AtomicUsize::new(0);
/// The system's page size, read once before the handler is installed.
static PAGE: AtomicUsize = AtomicUsize::new(4096);
/// The SIGBUS disposition that was in place before ours.
static PREVIOUS: OnceLock<libc::sigaction> = OnceLock::new();
static INSTALL: Once = Once::new();

/// A mapping recorded in the table; released on drop.
pub struct Guarded(Option<usize>);

impl Guarded {
    /// Records `[start, start + len)`, installing the handler first if this is the first time.
    /// Returns an unguarded value when the table is full.
    pub fn register(start: usize, len: usize) -> Guarded {
        INSTALL.call_once(install);
        let hint = NEXT.load(Ordering::Relaxed);
        for k in 0..ENTRIES {
            let i = (hint + k) % ENTRIES;
            let e = &TABLE[i];
            if e.start.load(Ordering::Relaxed) == 0
                && e.start.compare_exchange(0, start, Ordering::SeqCst, Ordering::SeqCst).is_ok()
            {
                e.damaged.store(false, Ordering::SeqCst);
                e.len.store(len, Ordering::SeqCst);
                NEXT.store(i + 1, Ordering::Relaxed);
                return Guarded(Some(i));
            }
        }
        Guarded(None)
    }

    /// Whether a fault inside the mapping replaced some of its pages by zeros. Call it after the
    /// accesses it should cover: the compiler fence keeps them before the load (the handler runs
    /// on the faulting thread, so program order is all that is needed).
    pub fn damaged(&self) -> bool {
        compiler_fence(Ordering::SeqCst);
        self.0.is_some_and(|i| TABLE[i].damaged.load(Ordering::Relaxed))
    }

    /// Forgets the range. Must happen before the range is unmapped: once it is, the kernel may
    /// hand its addresses to a mapping that is not ours.
    pub fn release(&mut self) {
        if let Some(i) = self.0.take() {
            TABLE[i].len.store(0, Ordering::SeqCst);
            TABLE[i].start.store(0, Ordering::SeqCst);
        }
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.release();
    }
}

fn install() {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if page > 0 {
        PAGE.store(page as usize, Ordering::SeqCst);
    }
    // SAFETY: a zeroed sigaction is a valid value to fill in; the handler has the SA_SIGINFO
    // signature; the old disposition is written by the kernel into `old`.
    unsafe {
        let mut new: libc::sigaction = std::mem::zeroed();
        new.sa_sigaction = on_sigbus as *const () as usize;
        new.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK | libc::SA_RESTART;
        libc::sigemptyset(&mut new.sa_mask);
        let mut old: libc::sigaction = std::mem::zeroed();
        if libc::sigaction(libc::SIGBUS, &new, &mut old) == 0 {
            let _ = PREVIOUS.set(old);
        }
    }
}

/// The SIGBUS handler (see the module documentation). Async-signal-safe: atomics, `mmap`,
/// `sigaction`, and a call to the previous handler.
extern "C" fn on_sigbus(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo_t for a SA_SIGINFO handler; for SIGBUS si_addr is
    // the faulting address.
    let addr = unsafe { (*info).si_addr() } as usize;
    // SAFETY: errno is thread-local; it is put back before returning to the interrupted code.
    let errno = unsafe { *libc::__errno_location() };
    let page = PAGE.load(Ordering::Relaxed);
    for e in &TABLE {
        let start = e.start.load(Ordering::SeqCst);
        if start == 0 || addr < start {
            continue;
        }
        let len = e.len.load(Ordering::SeqCst);
        if addr - start >= len {
            continue;
        }
        let from = addr & !(page - 1);
        let end = (start + len).next_multiple_of(page);
        // SAFETY: [from, end) lies inside a live mapping of ours (entries are released before
        // unmapping, and the faulting thread is using this one), so replacing those pages takes
        // nothing from anybody else; the new pages are private zeros, readable and writable like
        // the old ones.
        let p = unsafe {
            libc::mmap(
                from as *mut libc::c_void,
                end - from,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_FIXED | libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if p != libc::MAP_FAILED {
            e.damaged.store(true, Ordering::SeqCst);
            // SAFETY: as above.
            unsafe { *libc::__errno_location() = errno };
            return;
        }
        break; // cannot repair it: fail as if hark were not here
    }
    // SAFETY: as above.
    unsafe { *libc::__errno_location() = errno };
    chain(sig, info, ctx);
}

/// Hands a fault that is not ours to whoever handled SIGBUS before.
fn chain(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    let handler = PREVIOUS.get().map(|old| (old.sa_sigaction, old.sa_flags));
    match handler {
        Some((h, flags)) if h != libc::SIG_DFL && h != libc::SIG_IGN => {
            if flags & libc::SA_SIGINFO != 0 {
                // SAFETY: the previous disposition declared a three-argument handler.
                let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
                    unsafe { std::mem::transmute(h) };
                f(sig, info, ctx);
            } else {
                // SAFETY: the previous disposition declared a one-argument handler.
                let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(h) };
                f(sig);
            }
        }
        _ => {
            // The default action (ignoring a fault is not possible: it would recur forever).
            // Returning re-executes the access, which faults again and now kills the process.
            // SAFETY: a zeroed sigaction with SIG_DFL (0) is the default disposition.
            unsafe {
                let mut dfl: libc::sigaction = std::mem::zeroed();
                dfl.sa_sigaction = libc::SIG_DFL;
                libc::sigemptyset(&mut dfl.sa_mask);
                libc::sigaction(libc::SIGBUS, &dfl, std::ptr::null_mut());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_are_reused_and_flags_start_clear() {
        let a = Guarded::register(0x1000_0000, 8192);
        let i = a.0.expect("the table has room");
        TABLE[i].damaged.store(true, Ordering::SeqCst);
        assert!(a.damaged());
        drop(a);
        assert_eq!(TABLE[i].start.load(Ordering::SeqCst), 0);
        // Whichever entry it gets, a new registration starts undamaged.
        let b = Guarded::register(0x1000_0000, 8192);
        assert!(!b.damaged());
    }
}
