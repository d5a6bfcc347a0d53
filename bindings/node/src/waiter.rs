//! The waiter: the session's descriptor (I8) watched by Node's own event loop, with a libuv
//! `uv_poll_t`, and the core's wake-up protocol (`core/src/session/receiver.rs`) run on the
//! JavaScript thread.
//!
//! Why on the event loop, not on a thread of its own. A thread that sleeps in `poll()` and then
//! tells the JavaScript thread (a threadsafe function, that is `uv_async_send`) costs every
//! notification two cross-thread wake-ups, the notifier's datagram waking the thread and the
//! thread waking the loop; and the thread cannot run the protocol, which needs the session, so
//! every wake-up of the listener lowered its wake-up flag and its notifiers paid a `sendto` per
//! commit. Sharing the session with the thread behind a mutex would let the thread run the
//! protocol, but the loop would still be woken second-hand, and the watch would spin on a second
//! CPU while the JavaScript thread sleeps. Polled by the loop itself, a datagram wakes the
//! JavaScript thread directly (one hop, as a Rust listener's `wait`), and the protocol runs where
//! the session lives:
//!
//! 1. [`Connection::take`](crate::Connection::take) calls `prepare_to_sleep` when the session's
//!    inbox is empty: it raises the wake-up flag, reads, watches the queue's head for at most
//!    ~50 µs (only while traffic is steady, and yielding the CPU), lowers the flag and looks once
//!    more. Notifications found are returned to JavaScript, and the flag stays raised while the
//!    client works through them: notifiers committing meanwhile make no system call. Only when
//!    nothing came does the session go to sleep: [`Waiter::sleep`] starts the poll.
//! 2. The poll's callback ([`on_readable`]) notes how long the sleep took, stops being "asleep"
//!    and calls the JavaScript callback, which takes again (step 1). After the callback the poll
//!    is stopped unless the session went back to sleep in it: a descriptor left readable (the
//!    session reads its datagram only before the next sleep, or nobody asked for notifications)
//!    is never polled, so the loop cannot spin on it.
//! 3. `woke` (the protocol's bookkeeping) is told at the next take, with the sleep's length, so
//!    that the watch resumes when commits come faster than a watch lasts.
//!
//! The poll is active only while the session sleeps, so it never keeps the loop alive; a second
//! handle, an async handle that is never sent, does that ("anchor": ref'd while the client keeps
//! the process alive, the default, and unref'd after `unref()`), whether the session sleeps, is
//! awake, or waits for a consumer.
//!
//! Both handles are closed by [`Waiter::stop`] (the session's `close`), or by Node's cleanup of
//! the environment (an async cleanup hook, so that a worker's loop is not closed with them open);
//! their memory and the shared state go when both close callbacks have run. Everything here runs
//! on the JavaScript thread: the state is in `Cell`s behind an `Rc`.

use napi::sys;
use std::cell::Cell;
use std::ffi::{c_int, c_void};
use std::ptr;
use std::rc::Rc;
use std::time::{Duration, Instant};

// The few libuv functions needed; Node exports libuv's symbols to addons.
const UV_ASYNC: c_int = 1;
const UV_POLL: c_int = 8;
const UV_READABLE: c_int = 1;
type UvHandle = c_void;
extern "C" {
    fn uv_handle_size(kind: c_int) -> usize;
    fn uv_handle_get_data(handle: *const UvHandle) -> *mut c_void;
    fn uv_handle_set_data(handle: *mut UvHandle, data: *mut c_void);
    fn uv_poll_init(lp: *mut sys::uv_loop_s, handle: *mut UvHandle, fd: c_int) -> c_int;
    fn uv_poll_start(
        handle: *mut UvHandle,
        events: c_int,
        cb: unsafe extern "C" fn(*mut UvHandle, c_int, c_int),
    ) -> c_int;
    fn uv_poll_stop(handle: *mut UvHandle) -> c_int;
    fn uv_async_init(
        lp: *mut sys::uv_loop_s,
        handle: *mut UvHandle,
        cb: Option<unsafe extern "C" fn(*mut UvHandle)>,
    ) -> c_int;
    fn uv_close(handle: *mut UvHandle, cb: Option<unsafe extern "C" fn(*mut UvHandle)>);
    fn uv_ref(handle: *mut UvHandle);
    fn uv_unref(handle: *mut UvHandle);
    fn uv_strerror(err: c_int) -> *const std::ffi::c_char;
}

struct Shared {
    env: sys::napi_env,
    poll: *mut UvHandle,
    anchor: *mut UvHandle,
    /// The JavaScript callback and the async context it is called in.
    callback: Cell<sys::napi_ref>,
    context: Cell<sys::napi_async_context>,
    cleanup: Cell<sys::napi_async_cleanup_hook_handle>,
    /// The poll is started: the session is asleep since `since`.
    sleeping: Cell<bool>,
    since: Cell<Instant>,
    /// A sleep that ended readable, after this long, not yet told to the session.
    woke: Cell<Option<Duration>>,
    stopped: Cell<bool>,
    /// Handles whose close callback has not run yet.
    open_handles: Cell<u8>,
}

pub(crate) struct Waiter {
    shared: Rc<Shared>,
}

fn uv_error(what: &str, rc: c_int) -> napi::Error {
    // SAFETY: uv_strerror returns a static string for any code.
    let text = unsafe { std::ffi::CStr::from_ptr(uv_strerror(rc)) }.to_string_lossy();
    napi::Error::from_reason(format!("could not {what}: {text}"))
}

fn check(status: sys::napi_status) -> napi::Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(napi::Error::new(napi::Status::from(status), "N-API call failed".to_owned()))
    }
}

fn alloc_handle(kind: c_int) -> *mut UvHandle {
    // SAFETY: plain allocation of the size libuv asks for (zeroed; libuv initialises it).
    unsafe { libc::calloc(1, uv_handle_size(kind)) }
}

impl Waiter {
    /// Starts watching `fd` on `env`'s event loop; `callback` is called (with no arguments) when
    /// the sleeping session's descriptor becomes readable. The session starts asleep. The caller
    /// guarantees that `fd` stays open until [`Waiter::stop`] returns.
    pub(crate) fn start(env: sys::napi_env, fd: c_int, callback: sys::napi_value) -> napi::Result<Waiter> {
        let mut lp: *mut sys::uv_loop_s = ptr::null_mut();
        // SAFETY: env is the live environment of the calling JavaScript thread, and every value
        // passed is valid for these calls.
        check(unsafe { sys::napi_get_uv_event_loop(env, &mut lp) })?;
        let shared = Rc::new(Shared {
            env,
            poll: alloc_handle(UV_POLL),
            anchor: alloc_handle(UV_ASYNC),
            callback: Cell::new(ptr::null_mut()),
            context: Cell::new(ptr::null_mut()),
            cleanup: Cell::new(ptr::null_mut()),
            sleeping: Cell::new(false),
            since: Cell::new(Instant::now()),
            woke: Cell::new(None),
            stopped: Cell::new(false),
            open_handles: Cell::new(0),
        });
        // SAFETY: as above; the handles are freshly allocated and initialised once, on this
        // loop. Each initialised handle holds one count of `shared` (its data) until its close
        // callback, which frees the handle; a handle never initialised is freed here.
        unsafe {
            let s = &*shared;
            let fail = |e: napi::Error, poll_open: bool| {
                release(s);
                s.stopped.set(true);
                if poll_open {
                    uv_close(s.poll, Some(on_close));
                } else {
                    libc::free(s.poll);
                }
                libc::free(s.anchor);
                Err(e)
            };
            if s.poll.is_null() || s.anchor.is_null() {
                return fail(napi::Error::from_reason("out of memory"), false);
            }
            let mut cb_ref = ptr::null_mut();
            if let Err(e) = check(sys::napi_create_reference(env, callback, 1, &mut cb_ref)) {
                return fail(e, false);
            }
            s.callback.set(cb_ref);
            let text = "hark.Client";
            let mut name = ptr::null_mut();
            let mut context = ptr::null_mut();
            if let Err(e) = check(sys::napi_create_string_utf8(env, text.as_ptr().cast(), text.len(), &mut name))
                .and_then(|()| check(sys::napi_async_init(env, ptr::null_mut(), name, &mut context)))
            {
                return fail(e, false);
            }
            s.context.set(context);
            let rc = uv_poll_init(lp, s.poll, fd);
            if rc != 0 {
                return fail(uv_error("watch the session's descriptor", rc), false);
            }
            uv_handle_set_data(s.poll, Rc::into_raw(Rc::clone(&shared)) as *mut c_void);
            uv_unref(s.poll);
            s.open_handles.set(1);
            let rc = uv_async_init(lp, s.anchor, None);
            if rc != 0 {
                return fail(uv_error("create the session's loop handle", rc), true);
            }
            uv_handle_set_data(s.anchor, Rc::into_raw(Rc::clone(&shared)) as *mut c_void);
            s.open_handles.set(2);
            let mut hook = ptr::null_mut();
            let arg = Rc::as_ptr(&shared) as *mut c_void;
            if let Err(e) = check(sys::napi_add_async_cleanup_hook(env, Some(on_env_cleanup), arg, &mut hook)) {
                shutdown(s);
                return Err(e);
            }
            s.cleanup.set(hook);
        }
        let w = Waiter { shared };
        w.sleep();
        Ok(w)
    }

    /// The session found nothing and lowered its flag: sleep until the descriptor is readable.
    pub(crate) fn sleep(&self) {
        let s = &self.shared;
        if s.stopped.get() {
            return;
        }
        s.since.set(Instant::now());
        if !s.sleeping.replace(true) {
            // SAFETY: the poll handle is initialised and not closing (`stopped` is false).
            let rc = unsafe { uv_poll_start(s.poll, UV_READABLE, on_readable) };
            if rc != 0 {
                // Cannot happen for a descriptor the loop accepted at init; should it, the session
                // is woken by the next statement's settle instead of hanging silently.
                s.sleeping.set(false);
            }
        }
    }

    /// The session is awake (it has notifications, or a full batch was taken): no polling until
    /// it sleeps again.
    pub(crate) fn awake(&self) {
        let s = &self.shared;
        if !s.stopped.get() && s.sleeping.replace(false) {
            // SAFETY: as in `sleep`.
            unsafe { uv_poll_stop(s.poll) };
        }
    }

    /// How long the last sleep lasted, if it ended with the descriptor readable and the session
    /// was not told yet.
    pub(crate) fn take_woke(&self) -> Option<Duration> {
        self.shared.woke.take()
    }

    /// Whether the client keeps the event loop (and so the process) alive.
    pub(crate) fn set_ref(&self, keep_alive: bool) {
        let s = &self.shared;
        if s.stopped.get() {
            return;
        }
        // SAFETY: the anchor is initialised and not closing.
        unsafe {
            if keep_alive {
                uv_ref(s.anchor)
            } else {
                uv_unref(s.anchor)
            }
        }
    }

    /// Stops watching: closes both handles (their memory goes in their close callbacks) and drops
    /// the callback. The descriptor may be closed as soon as this returns (libuv removes it from
    /// its epoll set when the poll handle closes). Stopping twice is a no-op.
    pub(crate) fn stop(&self) {
        // SAFETY: called on the JavaScript thread that owns the handles.
        unsafe { shutdown(&self.shared) }
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Releases what `start` made before any handle held `shared`: the callback and the context.
unsafe fn release(s: &Shared) {
    let cb = s.callback.replace(ptr::null_mut());
    if !cb.is_null() {
        sys::napi_delete_reference(s.env, cb);
    }
    let cx = s.context.replace(ptr::null_mut());
    if !cx.is_null() {
        sys::napi_async_destroy(s.env, cx);
    }
}

unsafe fn shutdown(s: &Shared) {
    if s.stopped.replace(true) {
        return;
    }
    s.sleeping.set(false);
    release(s);
    // Each close callback drops its handle's count of `shared`; the last one removes the cleanup
    // hook (and so lets a worker's environment finish tearing down).
    uv_close(s.poll, Some(on_close));
    uv_close(s.anchor, Some(on_close));
}

unsafe extern "C" fn on_close(handle: *mut UvHandle) {
    let shared = Rc::from_raw(uv_handle_get_data(handle) as *const Shared);
    libc::free(handle);
    let left = shared.open_handles.get() - 1;
    shared.open_handles.set(left);
    if left == 0 {
        let hook = shared.cleanup.replace(ptr::null_mut());
        if !hook.is_null() {
            sys::napi_remove_async_cleanup_hook(hook);
        }
    }
}

/// Node tears the environment down (process exit, or a worker's end) with the session open.
unsafe extern "C" fn on_env_cleanup(_hook: sys::napi_async_cleanup_hook_handle, arg: *mut c_void) {
    // `arg` is alive: the hook is removed before the last count of `shared` goes.
    shutdown(&*(arg as *const Shared));
}

unsafe extern "C" fn on_readable(handle: *mut UvHandle, _status: c_int, _events: c_int) {
    // The handle's count keeps `shared` alive for the whole callback, even if JavaScript ends the
    // session (its close callback runs on a later turn of the loop).
    let s = &*(uv_handle_get_data(handle) as *const Shared);
    if s.stopped.get() {
        return;
    }
    // Readable, or an error condition (status < 0): either way the session must look, and a real
    // error surfaces from its next read.
    if s.sleeping.get() {
        s.woke.set(Some(s.since.get().elapsed()));
    }
    s.sleeping.set(false);
    call_js(s);
    if !s.stopped.get() && !s.sleeping.get() {
        uv_poll_stop(s.poll);
    }
}

/// Calls the JavaScript callback as Node calls its own I/O callbacks (`napi_make_callback`: in
/// the callback's async context, running microtasks and `process.nextTick` callbacks after it);
/// a throw becomes an uncaught exception, as a throw in any event handler does.
unsafe fn call_js(s: &Shared) {
    let env = s.env;
    let mut scope = ptr::null_mut();
    if sys::napi_open_handle_scope(env, &mut scope) != sys::Status::napi_ok {
        return;
    }
    let mut func = ptr::null_mut();
    let mut recv = ptr::null_mut();
    if sys::napi_get_reference_value(env, s.callback.get(), &mut func) == sys::Status::napi_ok
        && !func.is_null()
        && sys::napi_get_global(env, &mut recv) == sys::Status::napi_ok
    {
        let mut result = ptr::null_mut();
        let status = sys::napi_make_callback(env, s.context.get(), recv, func, 0, ptr::null(), &mut result);
        if status == sys::Status::napi_pending_exception {
            let mut err = ptr::null_mut();
            if sys::napi_get_and_clear_last_exception(env, &mut err) == sys::Status::napi_ok {
                sys::napi_fatal_exception(env, err);
            }
        }
    }
    sys::napi_close_handle_scope(env, scope);
}
