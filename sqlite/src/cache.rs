//! The extension's own SQL, prepared once per connection and kept between transactions.
//!
//! Preparing a statement (parsing, code generation) cost more than the rest of a notification
//! together: the outbox INSERT at every `pg_notify` and the SELECT of every publication. Kept
//! statements must be finalized before the connection closes, or `sqlite3_close` refuses to close
//! it (`SQLITE_BUSY`, "unfinalized statements") and `sqlite3_close_v2` leaves it a zombie for
//! ever. SQLite's own place for that is a virtual table's `xDisconnect`, which `sqlite3_close`
//! calls before it looks for unfinalized statements: each connection connects the eponymous
//! table `hark_statement_guard` (no rows) at load, and its disconnection finalizes the kept
//! statements and stops the keeping (a close refused for the application's own statements
//! leaves the connection open, and then each statement is prepared for one use, as it would be
//! if the guard could not be connected).
//!
//! A kept statement in use (a trigger on `hark_outbox` that notifies, re-entering `pg_notify`)
//! is not shared: the nested use prepares its own for one use. SQLite prepares a kept statement
//! again by itself after a schema change (`sqlite3_prepare_v2`'s rule).

use rusqlite::ffi;
use rusqlite::vtab::{
    eponymous_only_module, sqlite3_vtab, sqlite3_vtab_cursor, IndexInfo, VTab, VTabConnection, VTabCursor, Values,
};
use rusqlite::{Connection, Error, Result};
use std::cell::Cell;
use std::ffi::CStr;
use std::marker::PhantomData;
use std::os::raw::{c_char, c_int};
use std::rc::Rc;

/// The statements kept.
#[derive(Clone, Copy)]
pub(crate) enum Sql {
    Insert,
    Pending,
    Fold,
    Key,
}

const COUNT: usize = 4;

impl Sql {
    /// The statement's text, NUL-terminated.
    fn text(self) -> &'static str {
        match self {
            Sql::Insert => "INSERT INTO hark_outbox (queue, channel, payload) VALUES (?1, ?2, ?3)\0",
            Sql::Pending => {
                "SELECT id, channel, payload FROM hark_outbox WHERE id > ?1 AND queue = ?2 ORDER BY id LIMIT ?3\0"
            }
            Sql::Fold => "SELECT 1 FROM hark_outbox WHERE id = ?1 AND channel = ?2 AND payload = ?3\0",
            Sql::Key => "SELECT value FROM hark_meta WHERE name = 'key'\0",
        }
    }
}

/// Whether `text` is one of the extension's statements, as SQLite's trace shows them (with
/// `-- ` before the text of a statement run inside another).
pub(crate) fn is_own_sql(text: &[u8]) -> bool {
    let text = text.strip_prefix(b"-- ").unwrap_or(text);
    [Sql::Insert, Sql::Pending, Sql::Fold, Sql::Key].iter().any(|s| {
        let own = s.text().as_bytes();
        own[..own.len() - 1] == *text
    })
}

/// A connection's kept statements.
pub(crate) struct Stmts {
    slots: [Cell<*mut ffi::sqlite3_stmt>; COUNT],
    busy: [Cell<bool>; COUNT],
    /// The guard is connected: statements may be kept.
    armed: Cell<bool>,
}

impl Stmts {
    pub fn new() -> Rc<Stmts> {
        Rc::new(Stmts { slots: Default::default(), busy: Default::default(), armed: Cell::new(false) })
    }

    /// Connects this connection's guard, after which statements are kept. Without one (SQLite
    /// built without virtual tables, ...) every statement is prepared for one use.
    pub fn arm(self: &Rc<Stmts>, conn: &Connection) {
        let module = eponymous_only_module::<Guard>();
        if conn.create_module(GUARD, module, Some(GuardAux(self.clone()))).is_err() {
            return;
        }
        // Preparing a statement that names the eponymous table connects it, and the connection
        // arms the cache (not a table of the application's that would have the same name).
        let _ = conn.prepare(&format!("SELECT 0 FROM {GUARD}"));
    }

    /// Finalizes every kept statement and keeps none from now on.
    fn disarm(&self) {
        self.armed.set(false);
        for (slot, busy) in self.slots.iter().zip(&self.busy) {
            if !busy.get() {
                // SAFETY: a statement this cache prepared and nobody uses (finalize(NULL) is a no-op).
                unsafe { ffi::sqlite3_finalize(slot.replace(std::ptr::null_mut())) };
            }
        }
    }

    /// The statement `sql` on `db`, kept or prepared for this use, with nothing bound. Texts
    /// bound to it must outlive it (`'t`).
    pub fn get<'s, 't>(&'s self, db: *mut ffi::sqlite3, sql: Sql) -> Result<Stmt<'s, 't>> {
        let i = sql as usize;
        let keep = self.armed.get() && !self.busy[i].get();
        let kept = if keep { self.slots[i].get() } else { std::ptr::null_mut() };
        let raw = if kept.is_null() {
            let mut raw = std::ptr::null_mut();
            let text = sql.text();
            // SAFETY: a valid connection handle on its thread; the text is NUL-terminated.
            let rc = unsafe {
                ffi::sqlite3_prepare_v2(
                    db,
                    text.as_ptr() as *const c_char,
                    text.len() as c_int,
                    &mut raw,
                    std::ptr::null_mut(),
                )
            };
            if rc != ffi::SQLITE_OK {
                return Err(error(db, rc));
            }
            if keep {
                self.slots[i].set(raw);
            }
            raw
        } else {
            kept
        };
        if keep {
            self.busy[i].set(true);
        }
        Ok(Stmt { db, raw, home: keep.then_some(self), index: i, texts: PhantomData })
    }
}

impl Drop for Stmts {
    fn drop(&mut self) {
        self.disarm();
    }
}

/// An error of the connection `db` after the result code `rc`, with SQLite's message.
fn error(db: *mut ffi::sqlite3, rc: c_int) -> Error {
    // SAFETY: errmsg returns a NUL-terminated string owned by the connection.
    let msg = unsafe { CStr::from_ptr(ffi::sqlite3_errmsg(db)) }.to_string_lossy().into_owned();
    Error::SqliteFailure(ffi::Error::new(rc), Some(msg))
}

/// One use of a statement: reset and unbound (or finalized, when not kept) when dropped.
pub(crate) struct Stmt<'s, 't> {
    db: *mut ffi::sqlite3,
    raw: *mut ffi::sqlite3_stmt,
    home: Option<&'s Stmts>,
    index: usize,
    texts: PhantomData<&'t str>,
}

impl<'t> Stmt<'_, 't> {
    pub fn bind_i64(&mut self, i: c_int, v: i64) -> Result<()> {
        // SAFETY: a prepared statement of this connection.
        self.check(unsafe { ffi::sqlite3_bind_int64(self.raw, i, v) })
    }

    /// Binds `s` without a copy: it outlives this use of the statement.
    pub fn bind_text(&mut self, i: c_int, s: &'t str) -> Result<()> {
        // SAFETY: SQLITE_STATIC: `s` lives until the statement is reset and unbound (Drop).
        self.check(unsafe {
            ffi::sqlite3_bind_text(self.raw, i, s.as_ptr() as *const c_char, s.len() as c_int, ffi::SQLITE_STATIC())
        })
    }

    fn check(&self, rc: c_int) -> Result<()> {
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(error(self.db, rc))
        }
    }

    /// Steps once: Ok(true) with a row, Ok(false) when done.
    pub fn step(&mut self) -> Result<bool> {
        // SAFETY: as above.
        match unsafe { ffi::sqlite3_step(self.raw) } {
            ffi::SQLITE_ROW => Ok(true),
            ffi::SQLITE_DONE => Ok(false),
            _ => {
                // The statement's own error code and message (reset reports them).
                let rc = unsafe { ffi::sqlite3_reset(self.raw) };
                Err(error(self.db, rc))
            }
        }
    }

    /// Column `i` of the current row as an integer (NULL: None).
    pub fn int(&self, i: c_int) -> Option<i64> {
        // SAFETY: the statement has a current row.
        unsafe {
            if ffi::sqlite3_column_type(self.raw, i) == ffi::SQLITE_NULL {
                None
            } else {
                Some(ffi::sqlite3_column_int64(self.raw, i))
            }
        }
    }

    /// Column `i` of the current row as text, valid until the next step.
    pub fn text(&self, i: c_int) -> Result<&str> {
        // SAFETY: the statement has a current row; text then bytes, as SQLite's docs require.
        let bytes = unsafe {
            let p = ffi::sqlite3_column_text(self.raw, i);
            let n = ffi::sqlite3_column_bytes(self.raw, i) as usize;
            if p.is_null() {
                &[][..]
            } else {
                std::slice::from_raw_parts(p, n)
            }
        };
        std::str::from_utf8(bytes).map_err(Error::Utf8Error)
    }
}

impl Drop for Stmt<'_, '_> {
    fn drop(&mut self) {
        // SAFETY: a statement of this connection, used by nobody else.
        unsafe {
            match self.home {
                Some(home) => {
                    ffi::sqlite3_reset(self.raw);
                    ffi::sqlite3_clear_bindings(self.raw);
                    home.busy[self.index].set(false);
                    if !home.armed.get() {
                        // Disarmed while in use: finalize now.
                        ffi::sqlite3_finalize(home.slots[self.index].replace(std::ptr::null_mut()));
                    }
                }
                None => {
                    ffi::sqlite3_finalize(self.raw);
                }
            }
        }
    }
}

/// The eponymous table's name.
const GUARD: &str = "hark_statement_guard";

struct GuardAux(Rc<Stmts>);

/// The guard: its disconnection (at `sqlite3_close`) finalizes the kept statements.
#[repr(C)]
struct Guard {
    base: sqlite3_vtab,
    stmts: Rc<Stmts>,
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.stmts.disarm();
    }
}

// SAFETY: `base` comes first (repr(C)), as SQLite's virtual tables require.
unsafe impl<'vtab> VTab<'vtab> for Guard {
    type Aux = GuardAux;
    type Cursor = GuardCursor;

    fn connect(_db: &mut VTabConnection, aux: Option<&GuardAux>, _args: &[&[u8]]) -> Result<(String, Guard)> {
        let stmts = aux.ok_or_else(|| Error::ModuleError("hark_statement_guard: no state".into()))?.0.clone();
        stmts.armed.set(true);
        Ok(("CREATE TABLE x(unused)".to_owned(), Guard { base: sqlite3_vtab::default(), stmts }))
    }

    fn best_index(&self, info: &mut IndexInfo) -> Result<()> {
        info.set_estimated_cost(1.0);
        Ok(())
    }

    fn open(&'vtab mut self) -> Result<GuardCursor> {
        Ok(GuardCursor { base: sqlite3_vtab_cursor::default() })
    }
}

/// A cursor over no rows.
#[repr(C)]
struct GuardCursor {
    base: sqlite3_vtab_cursor,
}

// SAFETY: `base` comes first (repr(C)).
unsafe impl VTabCursor for GuardCursor {
    fn filter(&mut self, _: c_int, _: Option<&str>, _: &Values<'_>) -> Result<()> {
        Ok(())
    }
    fn next(&mut self) -> Result<()> {
        Ok(())
    }
    fn eof(&self) -> bool {
        true
    }
    fn column(&self, _: &mut rusqlite::vtab::Context, _: c_int) -> Result<()> {
        Ok(())
    }
    fn rowid(&self) -> Result<i64> {
        Ok(0)
    }
}
