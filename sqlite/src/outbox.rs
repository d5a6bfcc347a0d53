//! The outbox: `pg_notify` stores a row in the caller's transaction; after the commit the rows
//! above the database's publication mark are published, in id order, exactly once.

use crate::cache::{Sql, Stmts};
use crate::state::{hark_error, State};
use rusqlite::ffi;
use rusqlite::functions::Context;
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, Result};

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
    let channel = text_arg(ctx, 0)?;
    let payload = text_arg(ctx, 1)?;
    let queue = st.with_hark(|h| {
        h.check_notification(channel, payload).map_err(hark_error)?;
        Ok(h.queue().queue_id() as i64)
    })?;
    if !st.txn_wrote.get() {
        first_of_transaction(st, db)?;
    }
    let hash = fold_hash(channel, payload);
    let known = st.fold.borrow().get(&hash).copied();
    if let Some(id) = known {
        // Still there (not undone by ROLLBACK TO or a failed statement)? Then fold. The
        // statement compares the pair itself: two pairs of one hash are never folded together
        // (at worst a duplicate of the first is sent again).
        let mut s = st.stmts.get(st.db, Sql::Fold)?;
        s.bind_i64(1, id)?;
        s.bind_text(2, channel)?;
        s.bind_text(3, payload)?;
        if s.step()? {
            return Ok(None);
        }
    }
    // Set first: an autocommit caller (a plain SELECT pg_notify) may commit inside the insert.
    st.txn_wrote.set(true);
    // Inside a trigger SQLite restores the caller's last_insert_rowid() when the trigger ends.
    // A trigger on the outbox that notifies would write a row inside this one's insert, with a
    // higher id than this row's: the rows in memory are then not in id order, and the commit
    // reads the outbox instead.
    if st.inserting.replace(true) {
        st.rows_unsure.set(true);
    }
    let r = (|| {
        let mut s = st.stmts.get(st.db, Sql::Insert)?;
        s.bind_i64(1, queue)?;
        s.bind_text(2, channel)?;
        s.bind_text(3, payload)?;
        s.step()
    })();
    st.inserting.set(false);
    r?;
    // SAFETY: the connection's handle, on its thread.
    let id = unsafe { ffi::sqlite3_last_insert_rowid(st.db) };
    st.fold.borrow_mut().insert(hash, id);
    // Rows in memory at or above the new id were undone (see `own_rows_intact`).
    let mut rows = st.txn_rows.borrow_mut();
    rows.truncate_from(id as u64);
    rows.push(id as u64, channel, payload);
    Ok(None)
}

/// Argument `i` as text, borrowed from SQLite (NULL: empty). Other types are refused as before.
fn text_arg<'a>(ctx: &'a Context<'_>, i: usize) -> Result<&'a str> {
    match ctx.get_raw(i) {
        ValueRef::Null => Ok(""),
        ValueRef::Text(b) => std::str::from_utf8(b).map_err(rusqlite::Error::Utf8Error),
        _ => ctx.get::<String>(i).map(|_| ""),
    }
}

fn fold_hash(channel: &str, payload: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (channel, payload).hash(&mut h);
    h.finish()
}

/// The first notification of a transaction: the tables exist, the key is known, a publication
/// that failed is retried (a full queue fails this notification, as PostgreSQL's full queue
/// fails a NOTIFY's commit), and published rows are deleted now and then.
fn first_of_transaction(st: &State, db: &Connection) -> Result<()> {
    if !st.schema_ok.get() {
        db.execute_batch(SCHEMA)?;
        st.schema_ok.set(true);
    }
    let key = key(st)?.expect("created above");
    if st.backlog.get() {
        publish(st)?;
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
fn key(st: &State) -> Result<Option<u64>> {
    if let Some(k) = st.key.get() {
        return Ok(Some(k));
    }
    let k = read_key(st.db, &st.stmts)?;
    // Kept until a rollback (which may undo the transaction that created it).
    if k.is_some() {
        st.key.set(k);
    }
    Ok(k)
}

/// Publishes every committed row of this connection's queue above the mark. Only called when
/// the connection's own transaction wrote no outbox row (its rows would not be committed).
pub(crate) fn publish(st: &State) -> Result<usize> {
    let Some(key) = key(st)? else { return Ok(0) };
    let r = st.with_hark(|h| publish_rows(st.db, &st.stmts, h, key, &mut st.batch.borrow_mut()));
    match &r {
        Ok(_) => {
            if st.backlog.get() {
                st.backlog.set(false);
                *st.last_error.borrow_mut() = None;
            }
        }
        Err(e) => {
            st.backlog.set(true);
            *st.last_error.borrow_mut() = Some(e.to_string());
        }
    }
    r
}

/// Outbox rows held in memory, kept from use to use so that publishing allocates nothing once
/// warm: every channel and payload in one string, and each row's id and spans in it.
#[derive(Default)]
pub(crate) struct Batch {
    text: String,
    rows: Vec<(u64, usize, usize, usize)>,
}

impl Batch {
    pub fn clear(&mut self) {
        self.text.clear();
        self.rows.clear();
    }

    fn push(&mut self, id: u64, channel: &str, payload: &str) {
        let start = self.text.len();
        self.text.push_str(channel);
        let mid = self.text.len();
        self.text.push_str(payload);
        self.rows.push((id, start, mid, self.text.len()));
    }

    /// Forgets the rows from id `id` on.
    fn truncate_from(&mut self, id: u64) {
        let keep = self.rows.partition_point(|r| r.0 < id);
        if keep < self.rows.len() {
            self.text.truncate(self.rows[keep].1);
            self.rows.truncate(keep);
        }
    }

    fn last(&self) -> Option<(u64, &str, &str)> {
        self.rows.last().map(|r| self.item(r))
    }

    fn item(&self, &(i, a, b, c): &(u64, usize, usize, usize)) -> (u64, &str, &str) {
        (i, &self.text[a..b], &self.text[b..c])
    }

    /// Publishes the rows in order, `BATCH` per append, each append advancing the mark `key`.
    fn publish(&self, h: &mut hark::Connection, key: u64) -> Result<usize> {
        let mut total = 0;
        for chunk in self.rows.chunks(BATCH) {
            total += match chunk {
                [one] => h.publish_marked(key, &[self.item(one)]),
                rows => h.publish_marked(key, &rows.iter().map(|r| self.item(r)).collect::<Vec<_>>()),
            }
            .map_err(hark_error)?;
        }
        Ok(total)
    }
}

/// Publishes the committed rows of `h`'s queue above the mark `key`, in id order, in batches
/// (each its own append, each advancing the mark). `db` must see only committed rows.
pub(crate) fn publish_rows(
    db: *mut ffi::sqlite3,
    stmts: &Stmts,
    h: &mut hark::Connection,
    key: u64,
    batch: &mut Batch,
) -> Result<usize> {
    let queue = h.queue().queue_id() as i64;
    let mut mark = h.published_mark(key).map_err(hark_error)?;
    let mut total = 0;
    loop {
        batch.clear();
        {
            let mut s = stmts.get(db, Sql::Pending)?;
            s.bind_i64(1, mark as i64)?;
            s.bind_i64(2, queue)?;
            s.bind_i64(3, BATCH as i64)?;
            while s.step()? {
                batch.push(s.int(0).unwrap_or(0) as u64, s.text(1)?, s.text(2)?);
            }
        }
        let Some((last, ..)) = batch.last() else { break };
        total += batch.publish(h, key)?;
        mark = last;
        if batch.rows.len() < BATCH {
            break;
        }
    }
    Ok(total)
}

/// Right before a COMMIT statement runs: whether the rows this transaction wrote, as kept in
/// memory, are all still in the outbox. Undoing (ROLLBACK TO, a statement that failed) always
/// takes the newest rows, and a row written after an undo takes the lowest free id, at or below
/// the first undone one (which `pg_notify` forgets then); so the rows in memory are exactly
/// the transaction's if the newest of them is still there.
pub(crate) fn own_rows_intact(st: &State) -> bool {
    let Ok(rows) = st.txn_rows.try_borrow() else { return false };
    let Some((id, channel, payload)) = rows.last() else { return false };
    let check = || -> Result<bool> {
        let mut s = st.stmts.get(st.db, Sql::Fold)?;
        s.bind_i64(1, id as i64)?;
        s.bind_text(2, channel)?;
        s.bind_text(3, payload)?;
        s.step()
    };
    check().unwrap_or(false)
}

/// After a COMMIT checked by `own_rows_intact`: publishes the transaction's rows from memory,
/// without reading them back, when every older row of the queue is published (the mark is
/// right below them); else reads the outbox as `publish` does.
pub(crate) fn publish_own(st: &State) -> Result<usize> {
    let first = st.txn_rows.try_borrow().ok().and_then(|r| r.rows.first().map(|r| r.0));
    let (Some(key), Some(first)) = (st.key.get(), first) else { return publish(st) };
    let r = st.with_hark(|h| {
        if h.published_mark(key).map_err(hark_error)? + 1 < first {
            return Ok(None); // a row of another writer waits: read them all, in order
        }
        st.txn_rows.borrow().publish(h, key).map(Some)
    });
    match r {
        Ok(None) => publish(st),
        Ok(Some(n)) => {
            if st.backlog.get() {
                st.backlog.set(false);
                *st.last_error.borrow_mut() = None;
            }
            Ok(n)
        }
        Err(e) => {
            st.backlog.set(true);
            *st.last_error.borrow_mut() = Some(e.to_string());
            Err(e)
        }
    }
}

/// The database's publication key read from `hark_meta`, None without one.
pub(crate) fn read_key(db: *mut ffi::sqlite3, stmts: &Stmts) -> Result<Option<u64>> {
    let r = stmts.get(db, Sql::Key).and_then(|mut s| Ok(if s.step()? { s.int(0) } else { None }));
    match r {
        Ok(v) => Ok(v.map(|v| v as u64)),
        Err(rusqlite::Error::SqliteFailure(_, Some(m))) if m.starts_with("no such table") => Ok(None),
        Err(e) => Err(e),
    }
}

/// Publishes when the database has an outbox (at load, after a commit).
pub(crate) fn publish_if_set_up(st: &State) -> Result<usize> {
    if st.txn_wrote.get() {
        return Ok(0);
    }
    publish(st)
}

/// `hark_publish()`: publishes now and reports a failure.
pub(crate) fn publish_now(st: &State) -> Result<usize> {
    if st.txn_wrote.get() {
        return Err(rusqlite::Error::UserFunctionError(
            "hark_publish() cannot run in a transaction that notified: its notifications are published at commit"
                .into(),
        ));
    }
    publish(st)
}
