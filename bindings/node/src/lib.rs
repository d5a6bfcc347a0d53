//! The native half of hark's Node package.
//!
//! `lib/client.js` builds node-postgres' `Client` (an `EventEmitter` with `'notification'`
//! events) on the small surface exported here, which napi-rs turns into `index.js` and
//! `index.d.ts`:
//!
//! * `open(dir, options)` opens a session off the JS thread and resolves with a [`Connection`].
//! * [`Connection`] owns one `hark::Connection` on the JS thread. Its statements are
//!   synchronous: each is a few microseconds of work on shared memory, and a Promise around them
//!   would only add a turn of the event loop (`Client.query` still returns one, as node-postgres).
//! * [`Connection::watch`] has the event loop poll the session's descriptor ([`waiter`]) and
//!   call back when it becomes readable; the callback drains notifications in batches with
//!   [`Connection::take`], which runs the core's wake-up protocol. Nothing here ever blocks the
//!   JS thread waiting for a notification (the protocol's watch of the queue lasts at most
//!   ~50 µs, and only while traffic is steady).
//!
//! Errors are thrown as JS `Error`s with node-postgres' fields: `code` is the SQLSTATE, and
//! `harkCode` the C constant's name (see [`error`]).
//!
//! Every export runs inside a panic boundary ([`Connection::guard`], [`guarded`]): a panic (a
//! bug in hark) is thrown as an `Error` with `harkCode` `HARK_ERR_PANIC`, the process goes on,
//! and the session it happened in is closed, since nobody can vouch for its state (later calls
//! fail with `HARK_ERR_CLOSED`; closing frees its listener slot, so the queue does not wait).

mod error;
mod waiter;

use napi::bindgen_prelude::{AsyncTask, Result};
use napi::{Env, JsFunction, JsObject, JsString, NapiRaw, Task};
use napi_derive::napi;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use waiter::Waiter;

/// A notification as node-postgres delivers it: `msg.channel`, `msg.payload`, `msg.processId`.
// Only its TypeScript type is used: `Connection::take` makes these objects by hand.
#[napi(object)]
pub struct Notification {
    pub channel: String,
    pub payload: String,
    /// PID of the process whose session sent it (PostgreSQL's backend PID).
    pub process_id: i32,
    /// Its position in the queue (unique, increasing in commit order; `ack` takes it).
    pub position: f64,
    /// Its transaction's commit sequence number.
    pub txn: f64,
    /// When its transaction committed.
    #[napi(ts_type = "Date")]
    pub commit_time: f64,
}

/// A notice (a WARNING or NOTICE that is not an error), as libpq's notice processor gets it, with
/// node-postgres' field names (`code` is the SQLSTATE).
#[napi(object)]
pub struct Notice {
    /// `NOTICE` or `WARNING`.
    pub severity: String,
    /// The SQLSTATE, as node-postgres' `notice.code`.
    pub code: String,
    /// The SQLSTATE again, under the name the other languages use.
    pub sqlstate: String,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

/// The result of one statement of a `query`: its command tag, and for a `SELECT` its column
/// names, their PostgreSQL type names (`int4`, `text`, `bool`, …) and rows as text (`null` for
/// SQL NULL). `lib/types.js` turns the text into values as node-postgres' type parsers do.
#[napi(object)]
pub struct QueryResult {
    pub tag: String,
    pub fields: Vec<String>,
    pub types: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

/// Options fixed when a queue is created (see `hark::Options`); sizes in bytes.
#[napi(object)]
pub struct OpenOptions {
    pub max_queue_size: Option<f64>,
    pub max_payload: Option<f64>,
    pub segment_size: Option<f64>,
    pub group_shared: Option<bool>,
    /// `false`: open only an existing queue (see `hark::Options::create`).
    pub create: Option<bool>,
    /// Cut readers that hold a full queue back instead of failing commits
    /// (see `hark::Options::cut_laggards`).
    pub cut_laggards: Option<bool>,
    /// Lag limits for every plain listener, in bytes and milliseconds.
    pub listener_max_lag_bytes: Option<f64>,
    pub listener_max_lag_age_ms: Option<f64>,
}

/// One listener (no `subscription`) or durable subscription of the queue, in `stats()`.
#[napi(object)]
pub struct ReceiverStat {
    /// The subscription's name; absent for a plain listener.
    pub subscription: Option<String>,
    /// The backend PID of its session (what its notifications carry); 0 for a subscription
    /// nobody is attached to.
    pub process_id: i32,
    /// The operating-system process id of that session's process (0 when detached).
    pub os_pid: i32,
    /// Whether its session lives.
    pub alive: bool,
    /// Its channels and patterns; absent when they were too long to be kept (over about 1 KiB).
    pub channels: Option<Vec<String>>,
    /// Where it reads next (a subscription: one past its acknowledged notification).
    pub position: f64,
    /// Bytes between its position and the head.
    pub lag_bytes: f64,
    /// Unread notifications on its channels.
    pub lag_notifications: f64,
    /// Milliseconds since the oldest unread notification on its channels was committed; absent
    /// when it has none.
    pub lag_age_ms: Option<f64>,
    /// Its lag limits (0: none).
    pub max_lag_bytes: f64,
    pub max_lag_age_ms: f64,
    /// Notifications skipped by cuts and not yet reported to it.
    pub gap_pending: f64,
}

/// The state of a queue at one moment (`stats()`; what `hark stat` shows).
#[napi(object)]
pub struct QueueStats {
    /// Byte positions of the head (where the next commit goes) and the tail (the oldest kept).
    pub head: f64,
    pub tail: f64,
    /// `pg_notification_queue_usage()`.
    pub usage: f64,
    pub max_queue_size: f64,
    pub segment_size: f64,
    pub max_payload: f64,
    /// The segment files in the directory, in order.
    pub segment_files: Vec<String>,
    /// Listeners and durable subscriptions, in slot order.
    pub receivers: Vec<ReceiverStat>,
}

/// How to attach to a durable subscription (see `hark::SubscribeOptions`).
#[napi(object)]
pub struct SubscribeOptions {
    /// `'explicit'` (the default) or `'auto'`.
    pub ack: Option<String>,
    pub create: Option<bool>,
    pub max_lag_bytes: Option<f64>,
    pub max_lag_age_ms: Option<f64>,
}

/// Bits of [`Connection::status`].
#[napi]
pub const PENDING_NOTIFICATIONS: u32 = 1;
#[napi]
pub const PENDING_NOTICES: u32 = 2;

type NoticeBuffer = Arc<Mutex<Vec<hark::Notice>>>;

/// Opening a queue touches the file system (and may wait for another process that is creating
/// it), so it runs on a libuv worker; it is short and bounded, and the session it creates is
/// `Send`.
pub struct Open {
    dir: Option<PathBuf>,
    options: hark::Options,
}

impl Task for Open {
    type Output = std::result::Result<hark::Connection, hark::Error>;
    type JsValue = Connection;

    fn compute(&mut self) -> Result<Self::Output> {
        // On a libuv worker: a panic must not unwind into libuv. The session, if any, is dropped
        // (closed) by the unwinding.
        catch_unwind(AssertUnwindSafe(|| {
            let dir = self.dir.take().unwrap_or_else(hark::default_dir);
            hark::Connection::with_options(dir, &self.options)
        }))
        .map_err(|p| napi::Error::from_reason(error::panic_message(&*p)))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> Result<Connection> {
        guarded(&env, || {
            let mut conn = output.map_err(|e| error::to_js(&env, &e))?;
            let notices: NoticeBuffer = Arc::default();
            let sink = Arc::clone(&notices);
            conn.set_notice_handler(Some(Box::new(move |n: &hark::Notice| {
                sink.lock().unwrap_or_else(|p| p.into_inner()).push(n.clone());
            })));
            Ok(Connection {
                conn: Some(conn),
                waiter: None,
                notices,
                keep_alive: true,
                #[cfg(feature = "test-panic")]
                panic_at_take: false,
            })
        })
    }

    fn reject(&mut self, env: Env, err: napi::Error) -> Result<Self::JsValue> {
        // compute's panic (its only error) as the others: an Error with harkCode HARK_ERR_PANIC.
        Err(error::panic_error(&env, &err.reason))
    }
}

/// The panic boundary of the functions that have no session: a panic becomes an `Error` with
/// `harkCode` `HARK_ERR_PANIC`.
fn guarded<T>(env: &Env, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(error::panic_error(env, &error::panic_message(&*p))))
}

fn size(name: &str, v: Option<f64>) -> std::result::Result<Option<u64>, hark::Error> {
    match v {
        None => Ok(None),
        Some(x) if x.is_finite() && x >= 0.0 && x.fract() == 0.0 && x <= 9007199254740991.0 => Ok(Some(x as u64)),
        Some(_) => Err(error::invalid(format!("{name} must be a non-negative integer"))),
    }
}

fn options(o: Option<OpenOptions>) -> std::result::Result<hark::Options, hark::Error> {
    let mut opts = hark::Options::new();
    if let Some(o) = o {
        opts.max_queue_size = size("maxQueueSize", o.max_queue_size)?;
        opts.max_payload = size("maxPayload", o.max_payload)?.map(|v| v.min(usize::MAX as u64) as usize);
        opts.segment_size = size("segmentSize", o.segment_size)?;
        opts.group_shared = o.group_shared.unwrap_or(false);
        opts.create = o.create.unwrap_or(true);
        opts.cut_laggards = o.cut_laggards;
        opts.listener_max_lag_bytes = size("listenerMaxLagBytes", o.listener_max_lag_bytes)?;
        opts.listener_max_lag_age =
            size("listenerMaxLagAge", o.listener_max_lag_age_ms)?.map(std::time::Duration::from_millis);
    }
    Ok(opts)
}

/// Opens a session on the queue in `dir` (the default directory when omitted), creating the
/// queue if needed.
#[napi(ts_return_type = "Promise<Connection>")]
pub fn open(env: Env, dir: Option<String>, options: Option<OpenOptions>) -> Result<AsyncTask<Open>> {
    guarded(&env, || {
        let options = self::options(options).map_err(|e| error::to_js(&env, &e))?;
        Ok(AsyncTask::new(Open { dir: dir.map(PathBuf::from), options }))
    })
}

/// The default queue directory: `$HARK_DIR`, else `/dev/shm/hark-<uid>` (`/tmp/hark-<uid>`
/// without `/dev/shm`).
#[napi]
pub fn default_dir(env: Env) -> Result<String> {
    guarded(&env, || Ok(hark::default_dir().to_string_lossy().into_owned()))
}

/// `value` as an SQL string literal, quoted as libpq's `PQescapeLiteral` (and node-postgres'
/// `escapeLiteral`) quote it: ` E'…'` when it has a backslash; the text ends at a NUL.
#[napi]
pub fn escape_literal(value: String) -> String {
    hark::escape_literal(&value)
}

/// `value` as an SQL identifier in double quotes, as libpq's `PQescapeIdentifier`.
#[napi]
pub fn escape_identifier(value: String) -> String {
    hark::escape_identifier(&value)
}

/// A core result as JavaScript receives it.
fn js_result(r: hark::QueryResult) -> QueryResult {
    let types = r.types.iter().map(|t| (*t).to_owned()).collect();
    QueryResult { tag: r.tag, fields: r.columns, types, rows: r.rows }
}

/// One session on a queue, owned by the JS thread.
#[napi]
pub struct Connection {
    conn: Option<hark::Connection>,
    waiter: Option<Waiter>,
    notices: NoticeBuffer,
    keep_alive: bool,
    /// Test hook: the next `take` panics inside the session.
    #[cfg(feature = "test-panic")]
    panic_at_take: bool,
}

impl Connection {
    /// The panic boundary every method runs in: `f`'s result, or, if it panicked, an `Error` with
    /// `harkCode` `HARK_ERR_PANIC` after the session was closed (later calls then fail as on a
    /// closed session, and its listener slot is freed).
    fn guard<T>(&mut self, env: &Env, f: impl FnOnce(&mut Self) -> Result<T>) -> Result<T> {
        match catch_unwind(AssertUnwindSafe(|| f(self))) {
            Ok(r) => r,
            Err(p) => {
                let message = error::panic_message(&*p);
                // Closing runs hark's code again on a session in an unknown state: should that
                // panic too, what is left of it is dropped with it, and it is closed all the same.
                if let Some(w) = self.waiter.take() {
                    w.stop();
                }
                if let Some(mut conn) = self.conn.take() {
                    let _ = catch_unwind(AssertUnwindSafe(move || conn.close()));
                }
                Err(error::panic_error(env, &message))
            }
        }
    }

    fn session(&mut self, env: &Env) -> Result<&mut hark::Connection> {
        self.conn.as_mut().ok_or_else(|| error::to_js(env, &error::closed()))
    }

    /// Runs `f` on the session, turning a core error into a JS error.
    fn with<T>(&mut self, env: &Env, f: impl FnOnce(&mut hark::Connection) -> hark::Result<T>) -> Result<T> {
        let conn = self.session(env)?;
        f(conn).map_err(|e| error::to_js(env, &e))
    }
}

#[napi]
impl Connection {
    /// Executes SQL text in hark's dialect and returns the result of each of its statements, in
    /// order (none for a text without statements). When a statement fails, throws its error: the
    /// results of the statements before it are dropped, as node-postgres drops them, and their
    /// effects are what PostgreSQL leaves (undone when they ran in the text's implicit
    /// transaction, kept when a COMMIT in the text ended theirs).
    #[napi]
    pub fn query(&mut self, env: Env, sql: String) -> Result<Vec<QueryResult>> {
        self.guard(&env, |this| {
            let (results, r) = this.session(&env)?.execute_all(&sql);
            r.map_err(|e| error::to_js(&env, &e))?;
            Ok(results.into_iter().map(js_result).collect())
        })
    }

    /// Executes one statement with `$1`, `$2`, … bound to `values` (strings, or null for SQL
    /// NULL), as node-postgres' parameters through PostgreSQL's extended protocol: the values are
    /// never pasted into the text. Returns its result (none for an empty text).
    #[napi]
    pub fn query_params(&mut self, env: Env, sql: String, values: Vec<Option<String>>) -> Result<Vec<QueryResult>> {
        self.guard(&env, |this| {
            let params: Vec<hark::Param> = values.into_iter().map(hark::Param::from).collect();
            let r = this.session(&env)?.execute_params(&sql, &params).map_err(|e| error::to_js(&env, &e))?;
            Ok(if r.is_empty_query() { Vec::new() } else { vec![js_result(r)] })
        })
    }

    /// `LISTEN channel` (the name verbatim, as `pg_notify` takes it).
    #[napi]
    pub fn listen(&mut self, env: Env, channel: String) -> Result<()> {
        self.guard(&env, |this| this.with(&env, |c| c.listen(&channel)))
    }

    /// `UNLISTEN channel`, or `UNLISTEN *` without a channel.
    #[napi]
    pub fn unlisten(&mut self, env: Env, channel: Option<String>) -> Result<()> {
        self.guard(&env, |this| {
            this.with(&env, |c| match &channel {
                Some(ch) => c.unlisten(ch),
                None => c.unlisten_all(),
            })
        })
    }

    /// `SELECT pg_notify(channel, payload)`.
    #[napi]
    pub fn notify(&mut self, env: Env, channel: String, payload: Option<String>) -> Result<()> {
        self.guard(&env, |this| this.with(&env, |c| c.notify(&channel, payload.as_deref().unwrap_or(""))))
    }

    /// Returns up to `max` notifications, in order, and runs the core's wake-up protocol (see
    /// [`waiter`]).
    ///
    /// An empty array means that nothing was waiting: the session lowered its wake-up flag and
    /// sleeps, and the watch callback is called when its descriptor becomes readable. Any other
    /// array leaves it awake, its flag raised (notifiers committing meanwhile make no system
    /// call) and its descriptor unpolled: the caller takes again, on a later turn of the event
    /// loop, until it gets an empty array (or stops taking, say because nobody consumes: then
    /// the backlog stays in the queue, and nothing runs until the caller takes again).
    ///
    /// The queue is read only when the notifications already read are all taken: each read
    /// copies up to the core's read batch (4,096) into the session, so reading on every call
    /// would move a backlog from the queue, which is bounded and built for slow readers, into
    /// this process at up to 4,096 per call of 1,024.
    #[napi(ts_return_type = "Array<Notification>")]
    pub fn take(&mut self, env: Env, max: u32) -> Result<JsObject> {
        self.guard(&env, |this| this.take_batch(&env, max))
    }

    /// Creates or attaches to the durable subscription `name` (see `hark::Connection::subscribe`).
    #[napi]
    pub fn subscribe(
        &mut self,
        env: Env,
        name: String,
        channels: Vec<String>,
        options: Option<SubscribeOptions>,
    ) -> Result<()> {
        self.guard(&env, |this| {
            let mut o = hark::SubscribeOptions::new();
            if let Some(opts) = options {
                o.ack = match opts.ack.as_deref() {
                    None | Some("explicit") => hark::AckMode::Explicit,
                    Some("auto") => hark::AckMode::Auto,
                    Some(other) => {
                        return Err(error::to_js(
                            &env,
                            &error::invalid(format!("ack must be 'explicit' or 'auto', not '{other}'")),
                        ))
                    }
                };
                o.create = opts.create;
                o.max_lag_bytes = size("maxLagBytes", opts.max_lag_bytes).map_err(|e| error::to_js(&env, &e))?;
                o.max_lag_age = size("maxLagAge", opts.max_lag_age_ms)
                    .map_err(|e| error::to_js(&env, &e))?
                    .map(std::time::Duration::from_millis);
            }
            let list: Vec<&str> = channels.iter().map(String::as_str).collect();
            this.with(&env, |c| c.subscribe(&name, &list, &o))
        })
    }

    /// Acknowledges the notification at `position` and every one before it.
    #[napi]
    pub fn ack(&mut self, env: Env, position: f64) -> Result<()> {
        self.guard(&env, |this| {
            if !(position >= 0.0 && position.fract() == 0.0) {
                return Err(error::to_js(&env, &error::invalid("position must be a notification's position")));
            }
            this.session(&env)?.ack(position as u64).map_err(|e| error::to_js(&env, &e))
        })
    }

    /// Ends the attachment; the subscription stays.
    #[napi]
    pub fn detach(&mut self, env: Env) -> Result<()> {
        self.guard(&env, |this| this.session(&env)?.detach().map_err(|e| error::to_js(&env, &e)))
    }

    /// Drops the durable subscription `name`.
    #[napi]
    pub fn unsubscribe(&mut self, env: Env, name: String) -> Result<()> {
        self.guard(&env, |this| this.session(&env)?.unsubscribe(&name).map_err(|e| error::to_js(&env, &e)))
    }

    /// The subscription this session is attached to.
    #[napi(getter)]
    pub fn subscription(&mut self, env: Env) -> Result<Option<String>> {
        self.guard(&env, |this| Ok(this.session(&env)?.subscription().map(str::to_owned)))
    }

    /// `PENDING_NOTIFICATIONS` when notifications already read from the queue wait to be taken
    /// (after a commit, or after `take` stopped at its maximum), `PENDING_NOTICES` when notices
    /// wait in [`Connection::take_notices`].
    #[napi]
    pub fn status(&mut self, env: Env) -> Result<u32> {
        self.guard(&env, |this| {
            let mut s = 0;
            if this.conn.as_ref().is_some_and(|c| c.pending() > 0) {
                s |= PENDING_NOTIFICATIONS;
            }
            if !this.notices.lock().unwrap_or_else(|p| p.into_inner()).is_empty() {
                s |= PENDING_NOTICES;
            }
            Ok(s)
        })
    }

    /// The notices raised since the last call, oldest first.
    #[napi]
    pub fn take_notices(&mut self, env: Env) -> Result<Vec<Notice>> {
        self.guard(&env, |this| {
            let taken = std::mem::take(&mut *this.notices.lock().unwrap_or_else(|p| p.into_inner()));
            Ok(taken
                .into_iter()
                .map(|n| Notice {
                    severity: n.severity.as_str().to_owned(),
                    code: n.sqlstate.to_owned(),
                    sqlstate: n.sqlstate.to_owned(),
                    message: n.message,
                    detail: n.detail,
                    hint: n.hint,
                })
                .collect())
        })
    }

    /// Has the event loop watch the session's descriptor: `callback` is called (with no
    /// arguments) when it becomes readable while the session sleeps, and is expected to call
    /// [`Connection::take`]. The session starts asleep.
    #[napi(ts_args_type = "callback: () => void")]
    pub fn watch(&mut self, env: Env, callback: JsFunction) -> Result<()> {
        self.guard(&env, |this| {
            if this.waiter.is_some() {
                return Ok(());
            }
            let fd = this.session(&env)?.as_raw_fd();
            // SAFETY: the callback is a live value of this call's scope.
            let w = Waiter::start(env.raw(), fd, unsafe { callback.raw() })?;
            w.set_ref(this.keep_alive);
            this.waiter = Some(w);
            Ok(())
        })
    }

    /// Whether a watched session keeps the Node process alive (like `socket.ref()`/`unref()`).
    #[napi]
    pub fn set_keep_alive(&mut self, env: Env, keep_alive: bool) -> Result<()> {
        self.guard(&env, |this| {
            this.keep_alive = keep_alive;
            if let Some(w) = &this.waiter {
                w.set_ref(keep_alive);
            }
            Ok(())
        })
    }

    /// Ends the session: stops watching it, discards the transaction and unread notifications and
    /// frees the listener slot. Later calls fail with `HARK_ERR_CLOSED`; closing twice is a no-op.
    #[napi]
    pub fn close(&mut self, env: Env) -> Result<()> {
        self.guard(&env, |this| {
            this.end();
            Ok(())
        })
    }

    /// The PID other sessions see as the sender of this session's notifications.
    #[napi(getter)]
    pub fn backend_pid(&mut self, env: Env) -> Result<i32> {
        self.guard(&env, |this| Ok(this.session(&env)?.backend_pid()))
    }

    /// The queue directory this session is on.
    #[napi(getter)]
    pub fn dir(&mut self, env: Env) -> Result<String> {
        self.guard(&env, |this| Ok(this.session(&env)?.queue().path().to_string_lossy().into_owned()))
    }

    /// Channels this session listens on (`pg_listening_channels()`), in LISTEN order.
    #[napi]
    pub fn listening_channels(&mut self, env: Env) -> Result<Vec<String>> {
        self.guard(&env, |this| Ok(this.session(&env)?.listening_channels()))
    }

    /// The queue's positions and sizes and each listener's and subscription's lag (moves the
    /// tail first, as a commit does).
    #[napi]
    pub fn stats(&mut self, env: Env) -> Result<QueueStats> {
        self.guard(&env, |this| {
            let st = this.with(&env, |c| c.ensure_usable().and_then(|()| c.queue().stats()))?;
            let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
            Ok(QueueStats {
                head: st.head as f64,
                tail: st.tail as f64,
                usage: st.usage,
                max_queue_size: st.max_queue_size as f64,
                segment_size: st.segment_size as f64,
                max_payload: st.max_payload as f64,
                segment_files: st.segment_files,
                receivers: st
                    .listeners
                    .into_iter()
                    .map(|l| ReceiverStat {
                        subscription: l.subscription,
                        process_id: l.pid,
                        os_pid: l.os_pid,
                        alive: l.alive,
                        channels: l.channel_names,
                        position: l.position as f64,
                        lag_bytes: l.lag as f64,
                        lag_notifications: l.lag_notifications as f64,
                        lag_age_ms: l.lag_age.map(ms),
                        max_lag_bytes: l.max_lag_bytes as f64,
                        max_lag_age_ms: ms(l.max_lag_age),
                        gap_pending: l.gap_pending as f64,
                    })
                    .collect(),
            })
        })
    }

    /// `pg_notification_queue_usage()`: the fraction of the maximum queue size in use.
    #[napi]
    pub fn queue_usage(&mut self, env: Env) -> Result<f64> {
        self.guard(&env, |this| this.with(&env, |c| c.queue_usage()))
    }

    /// `idle`, `intrans` (inside BEGIN …) or `inerror` (inside a block after an error): libpq's
    /// words, as in every language.
    #[napi(ts_return_type = "'idle' | 'intrans' | 'inerror'")]
    pub fn transaction_status(&mut self, env: Env) -> Result<&'static str> {
        self.guard(&env, |this| Ok(this.session(&env)?.transaction_status().name()))
    }

    /// Whether [`Connection::close`] was called (or a panic closed the session).
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.conn.is_none()
    }
}

impl Connection {
    fn take_batch(&mut self, env: &Env, max: u32) -> Result<JsObject> {
        #[cfg(feature = "test-panic")]
        if std::mem::take(&mut self.panic_at_take) {
            let conn = self.session(env)?;
            let _ = conn.prepare_to_sleep();
            panic!("a panic inside take (test hook)");
        }
        let waiter = self.waiter.as_ref();
        let conn = self.conn.as_mut().ok_or_else(|| error::to_js(env, &error::closed()))?;
        if let Some(slept) = waiter.and_then(Waiter::take_woke) {
            conn.woke(true, slept);
        }
        let mut out = env.create_empty_array()?;
        if conn.pending() == 0 {
            match conn.prepare_to_sleep() {
                Ok(true) => {}
                Ok(false) => {
                    if let Some(w) = waiter {
                        w.sleep();
                    }
                    return Ok(out);
                }
                Err(e) => {
                    // Not polled until the caller takes again (a statement's settle, or a
                    // consumer asking): a descriptor left readable must not spin the loop.
                    if let Some(w) = waiter {
                        w.awake();
                    }
                    return Err(error::to_js(env, &e));
                }
            }
        }
        if let Some(w) = waiter {
            w.awake();
        }
        // The `Notification` objects are made here from the notifications the session lends:
        // each JS string is copied straight from its inbox, with no Rust `String` in between,
        // and the property names are made once per batch, at its first notification. Only what
        // the inbox holds is taken (`notifies_ref` reads the queue only when it is empty).
        let mut keys: Option<[JsString; 6]> = None;
        let mut taken = 0;
        while taken < max && conn.pending() > 0 {
            let n = match conn.notifies_ref() {
                Ok(Some(n)) => n,
                Ok(None) => break,
                Err(e) if e.kind() == hark::ErrorKind::Gap => {
                    // In its place in the batch, for the client to emit as a 'gap' event.
                    let mut o = error::to_js_object(env, &e)?;
                    o.set_named_property("isGap", env.get_boolean(true)?)?;
                    out.set_element(taken, o)?;
                    taken += 1;
                    continue;
                }
                Err(e) => return Err(error::to_js(env, &e)),
            };
            let [channel, payload, process_id, position, txn, commit_time] = match keys {
                Some(k) => k,
                None => *keys.insert([
                    env.create_string("channel")?,
                    env.create_string("payload")?,
                    env.create_string("processId")?,
                    env.create_string("position")?,
                    env.create_string("txn")?,
                    env.create_string("commitTime")?,
                ]),
            };
            let ms = n.commit_time.duration_since(std::time::UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64() * 1000.0);
            let mut o = env.create_object()?;
            o.set_property(channel, env.create_string(n.channel)?)?;
            o.set_property(payload, env.create_string(n.payload)?)?;
            o.set_property(process_id, env.create_int32(n.pid)?)?;
            o.set_property(position, env.create_double(n.position as f64)?)?;
            o.set_property(txn, env.create_double(n.txn as f64)?)?;
            o.set_property(commit_time, env.create_date(ms)?)?;
            out.set_element(taken, o)?;
            taken += 1;
        }
        Ok(out)
    }

    /// Stops watching (before the descriptor closes) and closes the session.
    fn end(&mut self) {
        if let Some(w) = self.waiter.take() {
            w.stop();
        }
        self.conn = None;
    }
}

/// Test hooks, built only with the `test-panic` feature (a separate test build of the addon).
#[cfg(feature = "test-panic")]
#[napi]
impl Connection {
    /// Panics inside the boundary, now (`'now'`) or in the next `take` (`'take'`), after the
    /// session read the queue.
    #[napi(js_name = "_panicForTest")]
    pub fn panic_for_test(&mut self, env: Env, when: String) -> Result<()> {
        self.guard(&env, |this| {
            if when == "take" {
                this.panic_at_take = true;
                return Ok(());
            }
            panic!("a panic inside the session (test hook)")
        })
    }
}

impl Drop for Connection {
    /// A connection garbage-collected without `close()` still stops being polled before its
    /// descriptor closes.
    fn drop(&mut self) {
        self.end();
    }
}
