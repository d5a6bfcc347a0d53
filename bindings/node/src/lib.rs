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
//! * [`Connection::watch`] starts the [`waiter`] thread that calls back when the session's
//!   descriptor becomes readable; the callback drains notifications in batches with
//!   [`Connection::take`]. Nothing here ever blocks the JS thread waiting for a notification.
//!
//! Errors are thrown as JS `Error`s whose `code` is the C constant's name (see [`error`]).

mod error;
mod waiter;

use napi::bindgen_prelude::{AsyncTask, Result};
use napi::{Env, JsFunction, JsObject, JsString, Task};
use napi_derive::napi;
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
}

/// A notice (a WARNING or NOTICE that is not an error), as libpq's notice processor gets it.
#[napi(object)]
pub struct Notice {
    /// `NOTICE` or `WARNING`.
    pub severity: String,
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
        let dir = self.dir.take().unwrap_or_else(hark::default_dir);
        Ok(hark::Connection::with_options(dir, &self.options))
    }

    fn resolve(&mut self, env: Env, output: Self::Output) -> Result<Connection> {
        let mut conn = output.map_err(|e| error::to_js(&env, &e))?;
        let notices: NoticeBuffer = Arc::default();
        let sink = Arc::clone(&notices);
        conn.set_notice_handler(Some(Box::new(move |n: &hark::Notice| {
            sink.lock().unwrap_or_else(|p| p.into_inner()).push(n.clone());
        })));
        Ok(Connection { conn: Some(conn), waiter: None, notices, keep_alive: true })
    }
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
    }
    Ok(opts)
}

/// Opens a session on the queue in `dir` (the default directory when omitted), creating the
/// queue if needed.
#[napi(ts_return_type = "Promise<Connection>")]
pub fn open(env: Env, dir: Option<String>, options: Option<OpenOptions>) -> Result<AsyncTask<Open>> {
    let options = self::options(options).map_err(|e| error::to_js(&env, &e))?;
    Ok(AsyncTask::new(Open { dir: dir.map(PathBuf::from), options }))
}

/// The default queue directory: `$HARK_DIR`, else `/dev/shm/hark-<uid>` (`/tmp/hark-<uid>`
/// without `/dev/shm`).
#[napi]
pub fn default_dir() -> String {
    hark::default_dir().to_string_lossy().into_owned()
}

/// One session on a queue, owned by the JS thread.
#[napi]
pub struct Connection {
    conn: Option<hark::Connection>,
    waiter: Option<Waiter>,
    notices: NoticeBuffer,
    keep_alive: bool,
}

impl Connection {
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
        let (results, r) = self.session(&env)?.execute_all(&sql);
        r.map_err(|e| error::to_js(&env, &e))?;
        Ok(results
            .into_iter()
            .map(|r| {
                let types = r.types.iter().map(|t| (*t).to_owned()).collect();
                QueryResult { tag: r.tag, fields: r.columns, types, rows: r.rows }
            })
            .collect())
    }

    /// `LISTEN channel` (the name verbatim, as `pg_notify` takes it).
    #[napi]
    pub fn listen(&mut self, env: Env, channel: String) -> Result<()> {
        self.with(&env, |c| c.listen(&channel))
    }

    /// `UNLISTEN channel`, or `UNLISTEN *` without a channel.
    #[napi]
    pub fn unlisten(&mut self, env: Env, channel: Option<String>) -> Result<()> {
        self.with(&env, |c| match &channel {
            Some(ch) => c.unlisten(ch),
            None => c.unlisten_all(),
        })
    }

    /// `SELECT pg_notify(channel, payload)`.
    #[napi]
    pub fn notify(&mut self, env: Env, channel: String, payload: Option<String>) -> Result<()> {
        self.with(&env, |c| c.notify(&channel, payload.as_deref().unwrap_or("")))
    }

    /// Reads what the descriptor announced and returns up to `max` notifications, in order.
    ///
    /// When fewer than `max` came back, the backlog is drained and the waiter is re-armed. When
    /// `max` came back, it is not: the caller takes again on a later turn of the event loop.
    /// Re-arming at once would let the waiter queue the next call while this batch is being
    /// emitted, and Node dispatches queued threadsafe calls back to back (up to 1,000 at a time),
    /// so a long backlog would hold the event loop until it is gone.
    ///
    /// The queue is read only when the notifications already read cannot fill the batch: each
    /// read copies up to the core's read batch (4,096) into the session, so reading on every call
    /// would move a backlog from the queue, which is bounded and built for slow readers, into
    /// this process at up to 4,096 per call of 1,024.
    #[napi(ts_return_type = "Array<Notification>")]
    pub fn take(&mut self, env: Env, max: u32) -> Result<JsObject> {
        if self.session(&env)?.pending() < max as usize {
            self.with(&env, |c| c.consume_input())?;
        }
        // The `Notification` objects are made here from the notifications the session lends:
        // each JS string is copied straight from its inbox, with no Rust `String` in between,
        // and the property names are made once per batch, at its first notification.
        let mut out = env.create_empty_array()?;
        let mut keys: Option<[JsString; 3]> = None;
        let mut taken = 0;
        let conn = self.session(&env)?;
        while taken < max {
            let Some(n) = conn.notifies_ref().map_err(|e| error::to_js(&env, &e))? else { break };
            let [channel, payload, process_id] = match keys {
                Some(k) => k,
                None => *keys.insert([env.create_string("channel")?, env.create_string("payload")?, env.create_string("processId")?]),
            };
            let mut o = env.create_object()?;
            o.set_property(channel, env.create_string(n.channel)?)?;
            o.set_property(payload, env.create_string(n.payload)?)?;
            o.set_property(process_id, env.create_int32(n.pid)?)?;
            out.set_element(taken, o)?;
            taken += 1;
        }
        // Fewer than `max` means the inbox could not fill the batch, so consume_input above ran
        // and drained the descriptor: a wake-up since then left it readable again, so arming
        // after the reads loses nothing.
        if taken < max {
            if let Some(w) = &self.waiter {
                w.arm();
            }
        }
        Ok(out)
    }

    /// `PENDING_NOTIFICATIONS` when notifications already read from the queue wait to be taken
    /// (after a commit, or after `take` stopped at its maximum), `PENDING_NOTICES` when notices
    /// wait in [`Connection::take_notices`].
    #[napi]
    pub fn status(&self) -> u32 {
        let mut s = 0;
        if self.conn.as_ref().is_some_and(|c| c.pending() > 0) {
            s |= PENDING_NOTIFICATIONS;
        }
        if !self.notices.lock().unwrap_or_else(|p| p.into_inner()).is_empty() {
            s |= PENDING_NOTICES;
        }
        s
    }

    /// The notices raised since the last call, oldest first.
    #[napi]
    pub fn take_notices(&self) -> Vec<Notice> {
        let taken = std::mem::take(&mut *self.notices.lock().unwrap_or_else(|p| p.into_inner()));
        taken
            .into_iter()
            .map(|n| Notice {
                severity: n.severity.as_str().to_owned(),
                sqlstate: n.sqlstate.to_owned(),
                message: n.message,
                detail: n.detail,
                hint: n.hint,
            })
            .collect()
    }

    /// Starts the waiter thread, which calls `callback` (with no arguments) whenever the session's
    /// descriptor becomes readable; the callback is expected to call [`Connection::take`].
    #[napi(ts_args_type = "callback: () => void")]
    pub fn watch(&mut self, env: Env, callback: JsFunction) -> Result<()> {
        if self.waiter.is_some() {
            return Ok(());
        }
        let fd = self.session(&env)?.as_raw_fd();
        let tsfn: waiter::Callback =
            callback.create_threadsafe_function(0, |_ctx| Ok(Vec::<napi::JsUnknown>::new()))?;
        let mut w = Waiter::start(fd, tsfn)
            .map_err(|e| error::to_js(&env, &hark::Error::new(hark::ErrorKind::Io, "58030", format!("could not start the waiter thread: {e}"))))?;
        w.set_ref(&env, self.keep_alive)?;
        self.waiter = Some(w);
        Ok(())
    }

    /// Whether a watched session keeps the Node process alive (like `socket.ref()`/`unref()`).
    #[napi]
    pub fn set_keep_alive(&mut self, env: Env, keep_alive: bool) -> Result<()> {
        self.keep_alive = keep_alive;
        match &mut self.waiter {
            Some(w) => w.set_ref(&env, keep_alive),
            None => Ok(()),
        }
    }

    /// Ends the session: stops the waiter, discards the transaction and unread notifications and
    /// frees the listener slot. Later calls fail with `HARK_ERR_CLOSED`; closing twice is a no-op.
    #[napi]
    pub fn close(&mut self) {
        // The waiter polls the session's descriptor: stop it before the descriptor closes.
        if let Some(mut w) = self.waiter.take() {
            w.stop();
        }
        self.conn = None;
    }

    /// The PID other sessions see as the sender of this session's notifications.
    #[napi(getter)]
    pub fn backend_pid(&mut self, env: Env) -> Result<i32> {
        Ok(self.session(&env)?.backend_pid())
    }

    /// The queue directory this session is on.
    #[napi(getter)]
    pub fn dir(&mut self, env: Env) -> Result<String> {
        Ok(self.session(&env)?.queue().path().to_string_lossy().into_owned())
    }

    /// Channels this session listens on (`pg_listening_channels()`), in LISTEN order.
    #[napi]
    pub fn listening_channels(&mut self, env: Env) -> Result<Vec<String>> {
        Ok(self.session(&env)?.listening_channels())
    }

    /// `pg_notification_queue_usage()`: the fraction of the maximum queue size in use.
    #[napi]
    pub fn queue_usage(&mut self, env: Env) -> Result<f64> {
        self.with(&env, |c| c.queue_usage())
    }

    /// `idle`, `transaction` (inside BEGIN …) or `failed` (inside a block after an error).
    #[napi(ts_return_type = "'idle' | 'transaction' | 'failed'")]
    pub fn transaction_status(&mut self, env: Env) -> Result<&'static str> {
        Ok(match self.session(&env)?.transaction_status() {
            hark::TransactionStatus::Idle => "idle",
            hark::TransactionStatus::InBlock => "transaction",
            hark::TransactionStatus::Failed => "failed",
        })
    }

    /// Whether [`Connection::close`] was called.
    #[napi(getter)]
    pub fn closed(&self) -> bool {
        self.conn.is_none()
    }
}

impl Drop for Connection {
    /// A connection garbage-collected without `close()` still stops its thread before its
    /// descriptor closes.
    fn drop(&mut self) {
        self.close();
    }
}
