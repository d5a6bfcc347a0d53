//! Descriptors that must not outlive their process in a forked child.
//!
//! A listener slot is owned through an open-file-description lock (`F_OFD_SETLK`, see `fs.rs`):
//! the kernel drops it when the last descriptor of that description closes. `fork()` copies
//! descriptors, so a child that never uses hark would keep its parent's slots "alive" after the
//! parent died, and the queue would fill behind them. `O_CLOEXEC` covers `exec`, not `fork`, and
//! Linux has no close-on-fork flag, so every such descriptor is registered here, and a
//! `pthread_atfork` child handler points each of them at `/dev/null` in the child (`dup3`, so the
//! number stays valid for the child's own clean-up and is never reused for something else).
//! The parent's locks are untouched: they belong to the description, which the parent still holds.
//!
//! Children made by `posix_spawn`/`vfork` run no atfork handler, but they `exec` at once, and
//! `O_CLOEXEC` closes the descriptors there.

use std::cell::UnsafeCell;
use std::os::fd::RawFd;
use std::sync::Once;

/// The registered descriptors, guarded by a plain pthread mutex: the atfork handlers must take
/// and release it around `fork()` (prepare/parent/child), which a Rust `Mutex` cannot express.
struct Registry {
    lock: UnsafeCell<libc::pthread_mutex_t>,
    fds: UnsafeCell<Vec<RawFd>>,
    /// `/dev/null`, opened by the prepare handler for the child to `dup3` from.
    spare: UnsafeCell<RawFd>,
}

// SAFETY: every field is touched only with `lock` held (or in the single-threaded child).
unsafe impl Sync for Registry {}

static REGISTRY: Registry = Registry {
    lock: UnsafeCell::new(libc::PTHREAD_MUTEX_INITIALIZER),
    fds: UnsafeCell::new(Vec::new()),
    spare: UnsafeCell::new(-1),
};
static HANDLERS: Once = Once::new();

fn with_lock<T>(f: impl FnOnce(&mut Vec<RawFd>) -> T) -> T {
    // SAFETY: the mutex is statically initialised and never moved; fds is only accessed with it
    // held, so the &mut is unique.
    unsafe {
        libc::pthread_mutex_lock(REGISTRY.lock.get());
        let v = f(&mut *REGISTRY.fds.get());
        libc::pthread_mutex_unlock(REGISTRY.lock.get());
        v
    }
}

extern "C" fn prepare() {
    // SAFETY: taken here, released by `parent` or `child`, on the forking thread either way, so
    // that no other thread holds it (or is mid-update) when memory is copied.
    unsafe {
        libc::pthread_mutex_lock(REGISTRY.lock.get());
        let fds = &*REGISTRY.fds.get();
        *REGISTRY.spare.get() = if fds.is_empty() {
            -1
        } else {
            libc::open(b"/dev/null\0".as_ptr() as *const libc::c_char, libc::O_RDONLY | libc::O_CLOEXEC)
        };
    }
}

extern "C" fn parent() {
    // SAFETY: the prepare handler took the lock on this thread and opened `spare`.
    unsafe {
        let spare = *REGISTRY.spare.get();
        if spare >= 0 {
            libc::close(spare);
        }
        libc::pthread_mutex_unlock(REGISTRY.lock.get());
    }
}

extern "C" fn child() {
    // SAFETY: the child has one thread, this one, which holds the lock since `prepare`. Only
    // async-signal-safe calls (dup3, close) are made; the vector is cleared, not freed.
    unsafe {
        let spare = *REGISTRY.spare.get();
        let fds = &mut *REGISTRY.fds.get();
        for &fd in fds.iter() {
            if spare < 0 || libc::dup3(spare, fd, libc::O_CLOEXEC) < 0 {
                // No /dev/null to point it at: close it. The session owning the number refuses
                // every call in the child and forgets the descriptor instead of closing it.
                libc::close(fd);
            }
        }
        fds.clear();
        if spare >= 0 {
            libc::close(spare);
        }
        libc::pthread_mutex_unlock(REGISTRY.lock.get());
    }
}

/// Registers `fd`: a forked child will not keep what it refers to.
pub fn register(fd: RawFd) {
    HANDLERS.call_once(|| {
        // SAFETY: the handlers only use the registry as described above.
        unsafe { libc::pthread_atfork(Some(prepare), Some(parent), Some(child)) };
    });
    with_lock(|fds| fds.push(fd));
}

/// Forgets `fd`, before the caller closes it.
pub fn unregister(fd: RawFd) {
    with_lock(|fds| {
        if let Some(i) = fds.iter().position(|&f| f == fd) {
            fds.swap_remove(i);
        }
    });
}
