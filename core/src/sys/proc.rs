//! Facts about this process and machine: boot id, clocks, randomness, fork detection.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Once;

/// The kernel's boot id (36 characters), or an empty value where the kernel has none.
pub fn boot_id() -> [u8; 40] {
    let mut out = [0u8; 40];
    if let Ok(s) = std::fs::read_to_string("/proc/sys/kernel/random/boot_id") {
        let s = s.trim().as_bytes();
        let n = s.len().min(40);
        out[..n].copy_from_slice(&s[..n]);
    }
    out
}

pub fn monotonic_ns() -> u64 {
    // SAFETY: ts is plain data filled by clock_gettime.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

pub fn random_u64() -> u64 {
    let mut v = 0u64;
    // SAFETY: writes at most 8 bytes into v.
    let n = unsafe { libc::getrandom(&mut v as *mut u64 as *mut libc::c_void, 8, 0) };
    if n != 8 {
        // Fall back on time and PID: uniqueness, not secrecy, is what callers need.
        v = monotonic_ns() ^ ((pid() as u64) << 32) ^ 0x9e37_79b9_7f4a_7c15;
    }
    v
}

pub fn pid() -> i32 {
    // SAFETY: getpid cannot fail.
    unsafe { libc::getpid() }
}

static FORK_GENERATION: AtomicU64 = AtomicU64::new(0);
static ATFORK: Once = Once::new();

extern "C" fn after_fork_in_child() {
    FORK_GENERATION.fetch_add(1, Ordering::SeqCst);
}

/// A number that changes in a child after every `fork()`: a session remembers the value it was
/// opened under and refuses to act in another process. Costs one load, unlike `getpid()`.
pub fn fork_generation() -> u64 {
    ATFORK.call_once(|| {
        // SAFETY: registers a handler that only touches an atomic.
        unsafe { libc::pthread_atfork(None, None, Some(after_fork_in_child)) };
    });
    FORK_GENERATION.load(Ordering::Relaxed)
}

/// CLOCK_REALTIME in nanoseconds since the Unix epoch (the commit time entries carry).
pub fn realtime_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid timespec to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut ts) };
    (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64)
}
