//! The waiter: one native thread per watched session that sleeps in `poll()` on the session's
//! descriptor (I8) and tells the JavaScript thread through a threadsafe function.
//!
//! The session itself never leaves the JavaScript thread (`hark::Connection` is not `Sync`); the
//! thread only watches its descriptor. The hand-over is a small protocol so that a readable
//! descriptor is reported once, not in a busy loop:
//!
//! 1. The thread waits until it is *armed*, then polls the session's descriptor and its own stop
//!    descriptor (an eventfd), with no timeout.
//! 2. When the session's descriptor is readable it queues one call of the JS callback
//!    (non-blocking: the thread never waits for the JS thread) and goes back to step 1, disarmed.
//! 3. The JS callback drains the session (`consume_input`, which empties the descriptor) and then
//!    re-arms the thread ([`Waiter::arm`]). A wake-up that arrives after the drain makes the
//!    descriptor readable again, so nothing is missed; one that arrived before it was consumed by it.
//!    While a backlog lasts (a batch came back full), the JS side keeps taking on later turns of
//!    the event loop and re-arms only when it runs short, so the thread cannot queue calls that
//!    Node would dispatch back to back.
//! 4. When nobody asks for notifications (only `notifications()` iterators consume, and each is
//!    busy with what it has), the callback takes nothing and so re-arms nothing: the thread
//!    sleeps on its condition variable, not in `poll()` on a descriptor left readable, and the
//!    backlog stays in the queue. The JS side takes, and thereby re-arms, once a consumer asks.
//!
//! Stopping writes the eventfd and joins the thread, which at that point is either in `poll()` or
//! waiting to be armed; both return at once. The threadsafe function is released after the join,
//! so a stopped waiter holds no reference to the event loop.

use napi::threadsafe_function::{ErrorStrategy, ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi::Env;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

pub(crate) type Callback = ThreadsafeFunction<(), ErrorStrategy::Fatal>;

#[derive(Default)]
struct State {
    armed: bool,
    stop: bool,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
    stop_fd: OwnedFd,
}

pub(crate) struct Waiter {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
    callback: Option<Callback>,
}

impl Waiter {
    /// Starts watching `fd`. The caller guarantees that `fd` stays open until [`Waiter::stop`]
    /// returns (the session owning it outlives the waiter).
    pub(crate) fn start(fd: RawFd, callback: Callback) -> io::Result<Waiter> {
        // SAFETY: plain eventfd creation; the result is checked before use.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: raw is a freshly created descriptor owned by nobody else.
        let stop_fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let shared = Arc::new(Shared {
            state: Mutex::new(State { armed: true, stop: false }),
            changed: Condvar::new(),
            stop_fd,
        });
        let thread_shared = Arc::clone(&shared);
        let thread_callback = callback.clone();
        let thread = std::thread::Builder::new()
            .name("hark-waiter".into())
            .spawn(move || run(fd, &thread_shared, &thread_callback))?;
        Ok(Waiter { shared, thread: Some(thread), callback: Some(callback) })
    }

    /// Lets the thread poll again: the JS side has drained the descriptor.
    pub(crate) fn arm(&self) {
        let mut s = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
        if !s.armed {
            s.armed = true;
            self.shared.changed.notify_one();
        }
    }

    /// Whether a waiting thread keeps the event loop alive.
    pub(crate) fn set_ref(&mut self, env: &Env, keep_alive: bool) -> napi::Result<()> {
        match &mut self.callback {
            Some(cb) if keep_alive => cb.refer(env),
            Some(cb) => cb.unref(env),
            None => Ok(()),
        }
    }

    /// Stops and joins the thread, then releases the threadsafe function.
    pub(crate) fn stop(&mut self) {
        {
            let mut s = self.shared.state.lock().unwrap_or_else(|p| p.into_inner());
            s.stop = true;
            self.shared.changed.notify_one();
        }
        let one: u64 = 1;
        // SAFETY: writes 8 bytes from a valid u64 to our own eventfd. It cannot fail short of the
        // counter overflowing, which one write per stop cannot do.
        unsafe { libc::write(self.shared.stop_fd.as_raw_fd(), &one as *const u64 as *const libc::c_void, 8) };
        if let Some(t) = self.thread.take() {
            // The thread never blocks on the JS thread (its calls are non-blocking), so this
            // returns as soon as it sees the stop.
            let _ = t.join();
        }
        self.callback = None;
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.stop();
    }
}

fn run(fd: RawFd, shared: &Shared, callback: &Callback) {
    loop {
        {
            let mut s = shared.state.lock().unwrap_or_else(|p| p.into_inner());
            while !s.armed && !s.stop {
                s = shared.changed.wait(s).unwrap_or_else(|p| p.into_inner());
            }
            if s.stop {
                return;
            }
            s.armed = false;
        }
        let mut fds = [
            libc::pollfd { fd, events: libc::POLLIN, revents: 0 },
            libc::pollfd { fd: shared.stop_fd.as_raw_fd(), events: libc::POLLIN, revents: 0 },
        ];
        loop {
            // SAFETY: fds is a valid array of two pollfd structures for the duration of the call.
            let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
            if n >= 0 || io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
                break;
            }
        }
        if fds[1].revents != 0 {
            return;
        }
        // Readable, or an error condition on the descriptor: either way the JS side must look
        // (consume_input reports a real error). The status is Closing only while the environment
        // shuts down, when there is nobody left to tell.
        if callback.call((), ThreadsafeFunctionCallMode::NonBlocking) == napi::Status::Closing {
            return;
        }
    }
}
