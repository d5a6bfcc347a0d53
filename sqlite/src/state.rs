//! One database connection's state, its SQL functions and its hooks.
//!
//! SQLite calls a connection's functions and hooks on one thread at a time (the connection's
//! mutex), but re-entrantly: a nested statement run by `pg_notify` may commit (an autocommit
//! `SELECT pg_notify(…)`) and so call the hooks inside the function. Flags are `Cell`s; the
//! parts behind `RefCell`s are never borrowed across a nested statement by the hooks, which use
//! `try_borrow_mut` and leave the work to the function when it is busy.

use rusqlite::ffi;
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::{Connection, Error, Result};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ffi::CStr;
use std::os::raw::{c_char, c_int, c_uint, c_void};
use std::path::PathBuf;
use std::rc::Rc;

use crate::cache::Stmts;
use crate::outbox::Batch;

pub(crate) struct State {
    pub db: *mut ffi::sqlite3,
    /// The main database's file ("" for an in-memory or temporary one), for the live peer.
    pub path: PathBuf,
    /// The (database, queue) this connection has the live peer watch (`peer.rs`).
    pub watched: RefCell<Option<(PathBuf, PathBuf)>>,
    /// The queue directory chosen with `hark_queue(dir)`; None: hark's default.
    pub dir: RefCell<Option<PathBuf>>,
    pub hark: RefCell<Option<hark::Connection>>,
    /// The database's publication key (`hark_meta`), once read from committed data.
    pub key: Cell<Option<u64>>,
    /// The outbox tables are known to exist (reset by a rollback: they may have been created in
    /// the transaction undone).
    pub schema_ok: Cell<bool>,
    /// The current transaction wrote outbox rows.
    pub txn_wrote: Cell<bool>,
    /// A commit of a transaction that wrote outbox rows was seen by the commit hook; published
    /// once the connection is back in autocommit.
    pub commit_seen: Cell<bool>,
    /// Hash of (channel, payload) → outbox id, for PostgreSQL's folding of duplicates in a
    /// transaction (the outbox row is compared before folding).
    pub fold: RefCell<HashMap<u64, i64>>,
    /// A publication failed (queue full, ...): the next notifying transaction retries it first.
    pub backlog: Cell<bool>,
    /// The last publication error, for `hark_publish()` to report.
    pub last_error: RefCell<Option<String>>,
    /// Outbox rows at or below this id (of this queue) were deleted.
    pub cleaned: Cell<u64>,
    /// The extension's statements, kept between transactions (`cache.rs`).
    pub stmts: Rc<Stmts>,
    /// The rows of a publication, kept for the next.
    pub batch: RefCell<Batch>,
    /// The outbox rows the current transaction wrote, in id order (`outbox::own_rows_intact`).
    pub txn_rows: RefCell<Batch>,
    /// The rows in memory may not be the transaction's (a notification nested in another's
    /// outbox insert): publish by reading the outbox.
    pub rows_unsure: Cell<bool>,
    /// `pg_notify` is inserting its row.
    pub inserting: Cell<bool>,
    /// The statement whose commit publishes the rows in memory, until it ends: a COMMIT that
    /// started with them checked, or a statement that started in autocommit mode.
    pub commit_stmt: Cell<*mut c_void>,
    /// That statement's commit happened: publish the rows from memory.
    pub from_memory: Cell<bool>,
    /// The main database's data version when the commit hook last ran (`commit_completed`).
    pub commit_version: Cell<Option<u32>>,
}

/// A `Send` wrapper for the state pointer captured by the SQL functions (SQLite runs them on the
/// connection's thread; the pointer is never used elsewhere).
#[derive(Clone, Copy)]
struct Ptr(*const State);
unsafe impl Send for Ptr {}

/// Owns the state: captured by `pg_notify` alone, it frees the state when SQLite destroys that
/// function, which happens when the connection closes, after which no hook runs.
struct Owner(*mut State);
unsafe impl Send for Owner {}
impl Drop for Owner {
    fn drop(&mut self) {
        // SAFETY: the pointer came from Box::into_raw in `register`; this is its only owner.
        let st = unsafe { Box::from_raw(self.0) };
        let watched = st.watched.borrow_mut().take();
        if let Some((db, q)) = watched {
            crate::peer::unwatch(&db, &q);
        }
    }
}

fn user_error(msg: impl Into<String>) -> Error {
    Error::UserFunctionError(msg.into().into())
}

pub(crate) fn hark_error(e: hark::Error) -> Error {
    user_error(e.message().to_owned())
}

pub(crate) fn register(conn: Connection) -> Result<bool> {
    // SAFETY: the handle of the connection being initialised.
    let db = unsafe { conn.handle() };
    let path = PathBuf::from(conn.path().unwrap_or(""));
    let st = Box::into_raw(Box::new(State {
        db,
        path,
        watched: RefCell::new(None),
        dir: RefCell::new(None),
        hark: RefCell::new(None),
        key: Cell::new(None),
        schema_ok: Cell::new(false),
        txn_wrote: Cell::new(false),
        commit_seen: Cell::new(false),
        fold: RefCell::new(HashMap::new()),
        backlog: Cell::new(false),
        last_error: RefCell::new(None),
        cleaned: Cell::new(0),
        stmts: Stmts::new(),
        batch: RefCell::new(Batch::default()),
        txn_rows: RefCell::new(Batch::default()),
        rows_unsure: Cell::new(false),
        inserting: Cell::new(false),
        commit_stmt: Cell::new(std::ptr::null_mut()),
        from_memory: Cell::new(false),
        commit_version: Cell::new(None),
    }));
    let p = Ptr(st);
    let owner = Owner(st);
    let flags = FunctionFlags::SQLITE_UTF8;
    conn.create_scalar_function("pg_notify", 2, flags, move |ctx| {
        let _own = &owner;
        // SAFETY: the state lives until this function is destroyed.
        let st = unsafe { &*owner.0 };
        call(st, ctx, crate::outbox::pg_notify)
    })?;
    let direct = flags | FunctionFlags::SQLITE_DIRECTONLY;
    conn.create_scalar_function("hark_queue", 1, direct, move |ctx| {
        let p = p;
        call(unsafe { &*p.0 }, ctx, set_queue)
    })?;
    conn.create_scalar_function("hark_queue", 0, direct, move |ctx| {
        let p = p;
        call(unsafe { &*p.0 }, ctx, |st, _, _| Ok(Some(st.with_hark(|h| Ok(h.queue().path().display().to_string()))?)))
    })?;
    conn.create_scalar_function("hark_publish", 0, direct, move |ctx| {
        let p = p;
        call(unsafe { &*p.0 }, ctx, |st, _, _| crate::outbox::publish_now(st).map(|n| Some(n.to_string())))
    })?;
    conn.create_scalar_function("hark_notify_changes", 2, direct, move |ctx| {
        let p = p;
        call(unsafe { &*p.0 }, ctx, crate::triggers::notify_changes)
    })?;
    for n in [1, 2] {
        conn.create_scalar_function("hark_notify_tcn", n, direct, move |ctx| {
            let p = p;
            call(unsafe { &*p.0 }, ctx, crate::triggers::notify_tcn)
        })?;
    }
    // SAFETY: `st` outlives the hooks (freed at close, after which they never run).
    unsafe {
        ffi::sqlite3_commit_hook(db, Some(on_commit), st as *mut c_void);
        ffi::sqlite3_rollback_hook(db, Some(on_rollback), st as *mut c_void);
        let mask = (ffi::SQLITE_TRACE_STMT | ffi::SQLITE_TRACE_PROFILE) as c_uint;
        ffi::sqlite3_trace_v2(db, mask, Some(on_trace), st as *mut c_void);
    }
    // SAFETY: as above.
    let st = unsafe { &*st };
    st.stmts.arm(&conn);
    // A process that loads the extension publishes what a dead writer left.
    if unsafe { ffi::sqlite3_get_autocommit(db) } != 0 {
        let _ = crate::outbox::publish_if_set_up(st);
    }
    // Loaded for the life of the process: the live peer's thread runs its code (peer.rs).
    Ok(true)
}

type Body = fn(&State, &Context<'_>, &Connection) -> Result<Option<String>>;

fn call(
    st: &State,
    ctx: &Context<'_>,
    f: impl FnOnce(&State, &Context<'_>, &Connection) -> Result<Option<String>>,
) -> Result<Option<String>> {
    // SAFETY: the connection of the call; used only during it.
    let conn = unsafe { ctx.get_connection()? };
    st.catch_up_on_commit();
    let r = f(st, ctx, &conn);
    // An autocommit statement run by the function (an outbox insert from a plain SELECT) may
    // have committed inside it, when the hooks could not publish.
    st.publish_if_committed();
    r
}

const _: Body = set_queue;

fn set_queue(st: &State, ctx: &Context<'_>, db: &Connection) -> Result<Option<String>> {
    if !db.is_autocommit() || st.txn_wrote.get() {
        return Err(user_error("hark_queue() cannot change the queue inside a transaction"));
    }
    let dir: Option<String> = ctx.get(0)?;
    let conn = match &dir {
        Some(d) => hark::Connection::open(d),
        None => hark::Connection::open_default(),
    }
    .map_err(hark_error)?;
    let path = conn.queue().path().display().to_string();
    st.watch(conn.queue().path());
    *st.hark.borrow_mut() = Some(conn);
    *st.dir.borrow_mut() = dir.map(PathBuf::from);
    st.key.set(None);
    let _ = crate::outbox::publish_if_set_up(st);
    Ok(Some(path))
}

impl State {
    /// Runs `f` on this connection's hark session, opened on first use.
    pub fn with_hark<T>(&self, f: impl FnOnce(&mut hark::Connection) -> Result<T>) -> Result<T> {
        let mut h = self.hark.try_borrow_mut().map_err(|_| user_error("hark session busy (re-entrant call)"))?;
        if h.is_none() {
            let c = match &*self.dir.borrow() {
                Some(d) => hark::Connection::open(d),
                None => hark::Connection::open_default(),
            }
            .map_err(hark_error)?;
            self.watch(c.queue().path());
            *h = Some(c);
        }
        f(h.as_mut().expect("opened"))
    }

    /// Has the live peer watch this connection's database on `queue` (instead of another).
    fn watch(&self, queue: &std::path::Path) {
        let mut w = self.watched.borrow_mut();
        if let Some((db, q)) = w.take() {
            crate::peer::unwatch(&db, &q);
        }
        if !self.path.as_os_str().is_empty() {
            crate::peer::watch(self.path.clone(), queue.to_path_buf());
            *w = Some((self.path.clone(), queue.to_path_buf()));
        }
    }

    /// Forgets the transaction's state (commit or rollback done).
    fn end_txn(&self) {
        self.txn_wrote.set(false);
        if let Ok(mut f) = self.fold.try_borrow_mut() {
            f.clear();
        }
        if let Ok(mut r) = self.txn_rows.try_borrow_mut() {
            r.clear();
        }
        self.rows_unsure.set(false);
    }

    /// After a statement: once back in autocommit after a commit that wrote outbox rows,
    /// publish them.
    pub fn publish_if_committed(&self) {
        // SAFETY: the connection's handle, on its thread.
        if !self.commit_seen.get() || unsafe { ffi::sqlite3_get_autocommit(self.db) } == 0 {
            return;
        }
        if self.hark.try_borrow_mut().is_err() {
            return; // inside a function that will look again when it returns
        }
        self.commit_seen.set(false);
        let own = self.from_memory.replace(false) && !self.rows_unsure.get();
        self.txn_wrote.set(false);
        crate::fault::park_before_publish();
        let _ = if own { crate::outbox::publish_own(self) } else { crate::outbox::publish_if_set_up(self) };
        self.end_txn();
    }

    /// At a notification: a commit of a transaction that notified was seen and has not been
    /// published, because no statement end was seen since (a program replaced the trace
    /// callback): if that commit completed, this is another transaction, whose rows must not be
    /// folded with, nor kept beside, the committed ones; those are published first, by reading
    /// the outbox (`first_of_transaction`), as after a failed publication.
    pub fn catch_up_on_commit(&self) {
        if self.commit_seen.get() && self.commit_completed() {
            self.commit_seen.set(false);
            self.from_memory.set(false);
            self.end_txn();
            self.backlog.set(true);
        }
    }

    /// Whether the commit whose hook ran last completed: the data version of the main database
    /// changes when a commit completes (its second phase) and not when the commit fails and
    /// leaves the transaction open (SQLITE_BUSY in rollback-journal mode). False when this
    /// SQLite cannot tell (SQLITE_FCNTL_DATA_VERSION came in 3.26).
    fn commit_completed(&self) -> bool {
        match (self.commit_version.get(), data_version(self.db)) {
            (Some(then), Some(now)) => then != now,
            _ => false,
        }
    }

    /// A statement starts (or one of its triggers: the same statement again), so that the
    /// publication after its commit needs not read the rows back:
    /// - before a COMMIT of a transaction that notified, the rows kept in memory are checked
    ///   against the outbox (nothing can undo them between this check and the commit, which is
    ///   this statement's);
    /// - a statement that starts in autocommit mode commits at its end what its triggers
    ///   notified, and nothing undoes a part of it meanwhile: a failure either rolls the whole
    ///   transaction back (which the rollback hook sees) or, under `OR FAIL`, keeps what was
    ///   done; so the rows in memory are exactly what it commits.
    ///
    /// The extension's own statements, run inside the statement, are not the statement; any
    /// other statement forgets the check.
    fn statement_starts(&self, stmt: *mut c_void, sql: *const c_char) {
        // SAFETY: the connection's handle, on its thread.
        let autocommit = unsafe { ffi::sqlite3_get_autocommit(self.db) } != 0;
        if autocommit && stmt == self.commit_stmt.get() {
            return; // a trigger program of the statement
        }
        // SAFETY: `sql` is the statement's text, NUL-terminated, for the callback's duration.
        let text = if sql.is_null() { &b""[..] } else { unsafe { CStr::from_ptr(sql) }.to_bytes() };
        if crate::cache::is_own_sql(text) {
            return;
        }
        self.commit_stmt.set(std::ptr::null_mut());
        if autocommit {
            if !self.txn_wrote.get() {
                self.commit_stmt.set(stmt);
            }
            return;
        }
        if !self.txn_wrote.get() || self.rows_unsure.get() || !is_commit(text) {
            return;
        }
        if crate::outbox::own_rows_intact(self) {
            self.commit_stmt.set(stmt);
        }
    }
}

/// `COMMIT` or `END`, as SQLite's transaction statements spell them (without a leading comment).
fn is_commit(sql: &[u8]) -> bool {
    let s = &sql[sql.iter().take_while(|c| c.is_ascii_whitespace()).count()..];
    [&b"commit"[..], b"end"].iter().any(|w| {
        s.len() >= w.len()
            && s[..w.len()].eq_ignore_ascii_case(w)
            && s.get(w.len()).map_or(true, |c| c.is_ascii_whitespace() || *c == b';')
    })
}

/// The main database's data version (SQLITE_FCNTL_DATA_VERSION), None if not supported.
fn data_version(db: *mut ffi::sqlite3) -> Option<u32> {
    const SQLITE_FCNTL_DATA_VERSION: c_int = 35;
    let mut v: u32 = 0;
    // SAFETY: a valid connection on its thread; the opcode writes one u32.
    let rc = unsafe {
        ffi::sqlite3_file_control(
            db,
            b"main\0".as_ptr() as *const c_char,
            SQLITE_FCNTL_DATA_VERSION,
            &mut v as *mut u32 as *mut c_void,
        )
    };
    (rc == ffi::SQLITE_OK).then_some(v)
}

unsafe extern "C" fn on_commit(p: *mut c_void) -> c_int {
    let st = &*(p as *const State);
    if st.txn_wrote.get() {
        st.commit_version.set(data_version(st.db));
        st.commit_seen.set(true);
        // The commit of the COMMIT statement whose start checked the rows in memory.
        st.from_memory.set(!st.commit_stmt.get().is_null());
    }
    0
}

unsafe extern "C" fn on_rollback(p: *mut c_void) {
    let st = &*(p as *const State);
    st.end_txn();
    st.commit_seen.set(false);
    st.commit_stmt.set(std::ptr::null_mut());
    st.from_memory.set(false);
    st.schema_ok.set(false);
    st.key.set(None);
}

unsafe extern "C" fn on_trace(kind: c_uint, p: *mut c_void, stmt: *mut c_void, x: *mut c_void) -> c_int {
    let st = &*(p as *const State);
    if kind == ffi::SQLITE_TRACE_STMT as c_uint {
        st.statement_starts(stmt, x as *const c_char);
        return 0;
    }
    // A statement ended. A transaction has ended only at a commit or a rollback
    // (sqlite3_get_autocommit is also true inside an implicit transaction, while its statement
    // runs). The extension's own statements end inside a call of its functions, which
    // publishes when it returns (looked at only when there is something to do: this runs at the
    // end of every statement of the connection).
    if !st.commit_seen.get() && st.commit_stmt.get() != stmt {
        return 0;
    }
    let text = ffi::sqlite3_sql(stmt as *mut ffi::sqlite3_stmt);
    if !text.is_null() && crate::cache::is_own_sql(CStr::from_ptr(text).to_bytes()) {
        return 0;
    }
    if st.commit_seen.get() {
        st.publish_if_committed();
    }
    if st.commit_stmt.get() == stmt {
        // That COMMIT is over (committed and published, or failed and the transaction goes on).
        st.commit_stmt.set(std::ptr::null_mut());
        st.from_memory.set(false);
    }
    0
}
