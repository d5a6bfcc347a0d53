//! The outbox: `pg_notify` stores a row in the caller's transaction; after the commit the rows
//! above the database's publication mark are published, in id order, exactly once.

use crate::state::{hark_error, State};
use rusqlite::ffi;
use rusqlite::functions::Context;
use rusqlite::{params, Connection, OptionalExtension, Result};

/// Ids are rowids: a new row gets the highest id plus one, so ids grow in commit order as long as
/// the highest published row is never deleted (see `first_of_transaction`). No AUTOINCREMENT:
/// its `sqlite_sequence` row would be one more page written at every commit.
const SCHEMA: &str = "CREATE TABLE IF NOT EXISTS hark_outbox (
    id INTEGER PRIMARY KEY,
    queue INTEGER NOT NULL,
    channel TEXT NOT NULL,
    payload TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS hark_meta (name TEXT PRIMARY KEY, value) WITHOUT ROWID;
INSERT OR IGNORE INTO hark_meta VALUES ('key', (abs(random()) % 9007199254740991) + 1);";

/// Rows published per append.
const BATCH: usize = 512;
/// Published rows are deleted once this many have gathered.
const CLEAN_EVERY: u64 = 256;

/// `pg_notify(channel, payload)`.
pub(crate) fn pg_notify(st: &State, ctx: &Context<'_>, db: &Connection) -> Result<Option<String>> {
    // PostgreSQL: a NULL channel is an empty one (refused), a NULL payload an empty payload.
    let channel: String = ctx.get::<Option<String>>(0)?.unwrap_or_default();
    let payload: String = ctx.get::<Option<String>>(1)?.unwrap_or_default();
    let queue = st.with_hark(|h| {
        h.check_notification(&channel, &payload).map_err(hark_error)?;
        Ok(h.queue().queue_id() as i64)
    })?;
    if !st.txn_wrote.get() {
        first_of_transaction(st, db)?;
    }
    let known = st.fold.borrow().get(&(channel.clone(), payload.clone())).copied();
    if let Some(id) = known {
        // Still there (not undone by ROLLBACK TO or a failed statement)? Then fold.
        let there: Option<i64> = db
            .query_row(
                "SELECT 1 FROM hark_outbox WHERE id = ?1 AND channel = ?2 AND payload = ?3",
                params![id, channel, payload],
                |r| r.get(0),
            )
            .optional()?;
        if there.is_some() {
            return Ok(None);
        }
    }
    // Set first: an autocommit caller (a plain SELECT pg_notify) may commit inside the insert.
    st.txn_wrote.set(true);
    // Inside a trigger SQLite restores the caller's last_insert_rowid() when the trigger ends.
    db.execute(
        "INSERT INTO hark_outbox (queue, channel, payload) VALUES (?1, ?2, ?3)",
        params![queue, channel, payload],
    )?;
    // SAFETY: the connection's handle, on its thread.
    let id = unsafe { ffi::sqlite3_last_insert_rowid(st.db) };
    st.fold.borrow_mut().insert((channel, payload), id);
    Ok(None)
}

/// The first notification of a transaction: the tables exist, the key is known, a publication
/// that failed is retried (a full queue fails this notification, as PostgreSQL's full queue
/// fails a NOTIFY's commit), and published rows are deleted now and then.
fn first_of_transaction(st: &State, db: &Connection) -> Result<()> {
    if !st.schema_ok.get() {
        db.execute_batch(SCHEMA)?;
        st.schema_ok.set(true);
    }
    let key = key(st, db)?.expect("created above");
    if st.backlog.get() {
        publish(st, db)?;
    }
    let mark = st.with_hark(|h| h.published_mark(key).map_err(hark_error))?;
    if mark >= st.cleaned.get() + CLEAN_EVERY {
        let queue = st.with_hark(|h| Ok(h.queue().queue_id() as i64))?;
        // Strictly below the mark: the row at the mark stays, so that no new row can take an id
        // at or below it (it would be taken for published).
        db.execute("DELETE FROM hark_outbox WHERE id < ?1 AND queue = ?2", params![mark as i64, queue])?;
        st.cleaned.set(mark);
    }
    Ok(())
}

/// The database's publication key, None when `hark_meta` does not exist.
fn key(st: &State, db: &Connection) -> Result<Option<u64>> {
    if let Some(k) = st.key.get() {
        return Ok(Some(k));
    }
    let k = read_key(db)?;
    // Kept until a rollback (which may undo the transaction that created it).
    if k.is_some() {
        st.key.set(k);
    }
    Ok(k)
}

/// Publishes every committed row of this connection's queue above the mark. Only called when
/// the connection's own transaction wrote no outbox row (its rows would not be committed).
pub(crate) fn publish(st: &State, db: &Connection) -> Result<usize> {
    let Some(key) = key(st, db)? else { return Ok(0) };
    let r = st.with_hark(|h| publish_rows(db, h, key));
    match &r {
        Ok(_) => {
            st.backlog.set(false);
            *st.last_error.borrow_mut() = None;
        }
        Err(e) => {
            st.backlog.set(true);
            *st.last_error.borrow_mut() = Some(e.to_string());
        }
    }
    r
}

/// Publishes the committed rows of `h`'s queue above the mark `key`, in id order, in batches
/// (each its own append, each advancing the mark). `db` must see only committed rows.
pub(crate) fn publish_rows(db: &Connection, h: &mut hark::Connection, key: u64) -> Result<usize> {
    let queue = h.queue().queue_id() as i64;
    let mut mark = h.published_mark(key).map_err(hark_error)?;
    let mut total = 0;
    let mut stmt =
        db.prepare("SELECT id, channel, payload FROM hark_outbox WHERE id > ?1 AND queue = ?2 ORDER BY id LIMIT ?3")?;
    loop {
        let rows: Vec<(i64, String, String)> = stmt
            .query_map(params![mark as i64, queue, BATCH as i64], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<Result<_>>()?;
        let Some(last) = rows.last() else { break };
        let last = last.0 as u64;
        let items: Vec<(u64, &str, &str)> = rows.iter().map(|(i, c, p)| (*i as u64, c.as_str(), p.as_str())).collect();
        total += h.publish_marked(key, &items).map_err(hark_error)?;
        mark = last;
        if rows.len() < BATCH {
            break;
        }
    }
    Ok(total)
}

/// The database's publication key read from `hark_meta`, None without one.
pub(crate) fn read_key(db: &Connection) -> Result<Option<u64>> {
    match db.query_row("SELECT value FROM hark_meta WHERE name = 'key'", [], |r| r.get::<_, i64>(0)) {
        Ok(v) => Ok(Some(v as u64)),
        Err(rusqlite::Error::QueryReturnedNoRows) => Ok(None),
        Err(rusqlite::Error::SqliteFailure(_, Some(m))) if m.starts_with("no such table") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Publishes when the database has an outbox (at load, after a commit).
pub(crate) fn publish_if_set_up(st: &State, db: &Connection) -> Result<usize> {
    if st.txn_wrote.get() {
        return Ok(0);
    }
    publish(st, db)
}

/// `hark_publish()`: publishes now and reports a failure.
pub(crate) fn publish_now(st: &State, db: &Connection) -> Result<usize> {
    if st.txn_wrote.get() {
        return Err(rusqlite::Error::UserFunctionError(
            "hark_publish() cannot run in a transaction that notified: its notifications are published at commit"
                .into(),
        ));
    }
    publish(st, db)
}
