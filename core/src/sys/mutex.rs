//! A process-shared, robust `pthread_mutex_t` living in the control file.
//!
//! When the holder dies at any instruction, the kernel marks the mutex and the next locker gets
//! `EOWNERDEAD`: it takes the lock, marks it consistent, and learns that the dead holder may have
//! left work half done. The queue protocol makes every half-done step harmless (a writer publishes
//! by moving `head` last), so recovery is only "carry on" (I3).

use crate::error::{Error, Result};

pub struct RobustMutex(*mut libc::pthread_mutex_t);

/// Polls of a contended lock before blocking: four with growing pauses (about 1 µs in all), then
/// eight that each yield the CPU first.
const SPIN_ROUNDS: u32 = 12;
const PAUSE_ROUNDS: u32 = 4;
/// A blocked locker wakes up this often (seconds) to look at the lock word again.
const SLEEP_SLICE_S: libc::time_t = 1;

// SAFETY: a process-shared pthread mutex is meant to be used from any thread of any process.
unsafe impl Send for RobustMutex {}
unsafe impl Sync for RobustMutex {}

/// Held lock; `recovered` says the previous holder died while holding it.
pub struct Guard<'a> {
    mutex: &'a RobustMutex,
    pub recovered: bool,
}

impl RobustMutex {
    /// Wraps a mutex that `init` has initialised in mapped memory that outlives this value.
    ///
    /// # Safety
    /// `ptr` must point into a live mapping, aligned for `pthread_mutex_t`, initialised by `init`.
    pub unsafe fn from_ptr(ptr: *mut libc::pthread_mutex_t) -> RobustMutex {
        RobustMutex(ptr)
    }

    /// Initialises a mutex in a fresh, not yet shared, mapping.
    ///
    /// # Safety
    /// `ptr` must be valid for writes and not in use by any other thread or process.
    pub unsafe fn init(ptr: *mut libc::pthread_mutex_t) -> Result<()> {
        let mut attr: libc::pthread_mutexattr_t = std::mem::zeroed();
        let mut r = libc::pthread_mutexattr_init(&mut attr);
        if r == 0 {
            r = libc::pthread_mutexattr_setpshared(&mut attr, libc::PTHREAD_PROCESS_SHARED);
        }
        if r == 0 {
            r = libc::pthread_mutexattr_setrobust(&mut attr, libc::PTHREAD_MUTEX_ROBUST);
        }
        if r == 0 {
            r = libc::pthread_mutex_init(ptr, &attr);
        }
        libc::pthread_mutexattr_destroy(&mut attr);
        if r != 0 {
            return Err(Error::io("initialise the queue lock", std::io::Error::from_raw_os_error(r)));
        }
        Ok(())
    }

    /// Takes the lock. Critical sections are short (an append is a few hundred nanoseconds), so
    /// a contended locker first polls for a moment before sleeping in the kernel. When the holder
    /// was preempted (more busy processes than CPUs), pausing cannot help: yielding lets it (or
    /// a listener) run on this CPU. Measured with `hark bench notifiers` on 2 vCPUs: 4 notifiers
    /// went from 72–75% to 84–87% of one notifier's throughput.
    pub fn lock(&self) -> Result<Guard<'_>> {
        for round in 0..SPIN_ROUNDS {
            if let Some(g) = self.try_lock()? {
                return Ok(g);
            }
            if round < PAUSE_ROUNDS {
                for _ in 0..(8 << round) {
                    std::hint::spin_loop();
                }
            } else {
                // SAFETY: sched_yield has no preconditions.
                unsafe { libc::sched_yield() };
            }
        }
        // Sleep in slices rather than for good. A control file truncated while we sleep leaves us
        // waiting on a futex of the file that the holder's unlock (now on private zero pages, see
        // guard.rs) never wakes; the next slice touches the lock word, which faults, so the
        // mapping is flagged damaged and the caller's checks fail within a slice.
        loop {
            let mut deadline = libc::timespec { tv_sec: 0, tv_nsec: 0 };
            // SAFETY: clock_gettime writes the timespec it is given.
            unsafe { libc::clock_gettime(libc::CLOCK_REALTIME, &mut deadline) };
            deadline.tv_sec += SLEEP_SLICE_S;
            // SAFETY: as in try_lock; the deadline is a valid timespec.
            let r = unsafe { libc::pthread_mutex_timedlock(self.0, &deadline) };
            if r != libc::ETIMEDOUT {
                return self.finish(r);
            }
        }
    }

    /// Takes the lock only if it is free now.
    pub fn try_lock(&self) -> Result<Option<Guard<'_>>> {
        // SAFETY: as in lock.
        let r = unsafe { libc::pthread_mutex_trylock(self.0) };
        if r == libc::EBUSY {
            return Ok(None);
        }
        self.finish(r).map(Some)
    }

    fn finish(&self, r: libc::c_int) -> Result<Guard<'_>> {
        match r {
            0 => Ok(Guard { mutex: self, recovered: false }),
            libc::EOWNERDEAD => {
                // SAFETY: we hold the mutex; marking it consistent is the documented recovery.
                unsafe { libc::pthread_mutex_consistent(self.0) };
                Ok(Guard { mutex: self, recovered: true })
            }
            libc::ENOTRECOVERABLE => Err(Error::corrupted("queue lock is not recoverable")),
            e => Err(Error::io("take the queue lock", std::io::Error::from_raw_os_error(e))),
        }
    }
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        // SAFETY: this guard holds the lock.
        unsafe { libc::pthread_mutex_unlock(self.mutex.0) };
    }
}
