//! # hark for SQLite: notifications that commit with the data
//!
//! A SQLite loadable extension (`libhark_sqlite.so`). On each database connection that loads it,
//! it registers:
//!
//! * `pg_notify(channel, payload)`: the notification is delivered by hark if and only if the
//!   SQLite transaction that called it commits, once, in the database's commit order;
//! * `hark_notify_changes(table, channel)`: AFTER INSERT/UPDATE/DELETE triggers on `table` that
//!   send `{"table" : …, "action" : "INSERT", "data" : {…}}`, the row (NEW, OLD for a DELETE) as
//!   PostgreSQL's `row_to_json` writes it, every column;
//! * `hark_notify_tcn(table[, channel])`: the same in the format of PostgreSQL's `tcn`
//!   extension, `"orders",I,"id"='1'` (primary key columns; channel `tcn` by default);
//! * `hark_queue([dir])`: the hark queue directory of this connection (default: hark's default
//!   queue, `$HARK_DIR` or `/dev/shm/hark-<uid>`), set before the first notification;
//! * `hark_publish()`: publishes what committed transactions left unpublished (normally done at
//!   every commit and at load).
//!
//! ## How (`outbox.rs`)
//!
//! `pg_notify` writes a row into the table `hark_outbox` of the same database, in the caller's
//! transaction: SQLite commits or undoes it with the data, savepoints and failed statements
//! included. Its rowid orders rows in commit order, since SQLite has one writer (a new row takes
//! the highest rowid plus one, and the highest published row is never deleted).
//! After a commit (the statement's end, seen by a `sqlite3_trace_v2` profile callback with the
//! connection back in autocommit) the connection publishes every row above the database's
//! publication mark, in id order, with `hark::Connection::publish_marked`: the mark (keyed by a
//! random id stored in `hark_meta`) is advanced by the very store that makes the notifications
//! visible, so a publication repeated after a crash, or racing another process's, is skipped.
//! Rows below the mark are deleted later, in a later transaction that notifies.
//!
//! The common case costs no read of the outbox: the transaction's rows are also kept in memory
//! (`pg_notify` forgets those a later row's id shows undone), and when a `COMMIT` statement
//! starts (the trace callback's statement event) the newest of them is looked up; found, they
//! are exactly the transaction's rows, since an undo always takes the newest rows, and nothing
//! can undo them between that look and the commit, which is that statement's. A statement that
//! starts in autocommit mode (a trigger's usual case: the INSERT is the transaction) needs no
//! look: nothing undoes part of it before its commit, at its end (a failure rolls the whole
//! transaction back, which the rollback hook sees, or under `OR FAIL` keeps what was done).
//! After that commit the rows are published from memory if the mark lies right below the first
//! of them (no other writer's row waits); otherwise, and after a `RELEASE`, a `COMMIT` the
//! extension does not recognise, or a statement that ran another statement of the
//! application's inside it, the outbox is read. The extension's statements
//! are prepared once per connection and kept (`cache.rs`), finalized when `sqlite3_close`
//! disconnects the connection's `hark_statement_guard` virtual table.
//!
//! A thread per process (`peer.rs`) publishes what a dead writer left within half a second, on
//! every database and queue this process's connections used.
//!
//! Each row records the id of the queue its writer used; a connection publishes only the rows
//! of its own queue, so that a queue wiped at reboot (PostgreSQL forgets its queue at restart
//! too) never receives the old queue's notifications.

mod cache;
mod fault;
mod outbox;
mod peer;
mod state;
mod triggers;

use rusqlite::ffi;
use rusqlite::Connection;
use std::os::raw::{c_char, c_int};

/// The entry point SQLite looks for by default.
///
/// # Safety
/// Called by SQLite's extension loader with a valid connection and API table.
#[no_mangle]
pub unsafe extern "C" fn sqlite3_extension_init(
    db: *mut ffi::sqlite3,
    pz_err_msg: *mut *mut c_char,
    p_api: *mut ffi::sqlite3_api_routines,
) -> c_int {
    Connection::extension_init2(db, pz_err_msg, p_api, state::register)
}

/// The entry point SQLite derives from the file name `libhark_sqlite.so`.
///
/// # Safety
/// As [`sqlite3_extension_init`].
#[no_mangle]
pub unsafe extern "C" fn sqlite3_harksqlite_init(
    db: *mut ffi::sqlite3,
    pz_err_msg: *mut *mut c_char,
    p_api: *mut ffi::sqlite3_api_routines,
) -> c_int {
    Connection::extension_init2(db, pz_err_msg, p_api, state::register)
}
