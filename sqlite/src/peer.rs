//! The live peer: a thread per process that loaded the extension, which publishes what a dead
//! writer committed but did not publish, within `2 × PERIOD` plus a publication, without
//! waiting for anyone's next commit.
//!
//! Every database (file, queue) a connection of this process used is watched. Each `PERIOD` the
//! thread reads, on a connection of its own, the highest outbox id of its queue and the
//! database's publication mark; rows that were above the mark at the previous look and still are
//! belong to a writer that did not publish them (a live writer publishes within microseconds of
//! its commit), and the thread publishes them. Racing a writer is harmless: the mark makes every
//! publication exactly-once (`outbox::publish_rows`).
//!
//! The thread uses the host's SQLite through the extension API, on connections no other thread
//! touches, so it runs only when that SQLite is thread-safe (`sqlite3_threadsafe()`), and the
//! extension stays loaded for the process's life (`SQLITE_OK_LOAD_PERMANENTLY`).

use rusqlite::{ffi, Connection, OpenFlags};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How often the thread looks.
pub(crate) const PERIOD: Duration = Duration::from_millis(200);

struct Watched {
    db: PathBuf,
    queue: PathBuf,
    /// Connections of this process on (db, queue): watched while there is one.
    users: usize,
    /// Open on first look: the database and a hark session on its queue.
    conns: Option<(Connection, hark::Connection)>,
    /// The highest unpublished id at the previous look.
    pending: Option<u64>,
}

type Registry = Arc<Mutex<Vec<Watched>>>;

/// This process's registry and the process id that started its thread (a forked child starts
/// its own: threads do not survive fork).
static REGISTRY: Mutex<Option<(u32, Registry)>> = Mutex::new(None);

/// Watches the database file `db` on `queue` while a connection of this process uses them (each
/// `watch` is undone by an `unwatch`).
pub(crate) fn watch(db: PathBuf, queue: PathBuf) {
    // SAFETY: a plain query of the host SQLite's compile-time option.
    if unsafe { ffi::sqlite3_threadsafe() } == 0 || db.as_os_str().is_empty() {
        return; // a single-threaded SQLite, or a temporary or in-memory database
    }
    let reg = {
        let Ok(mut g) = REGISTRY.lock() else { return };
        match &*g {
            Some((pid, reg)) if *pid == std::process::id() => reg.clone(),
            _ => {
                let reg: Registry = Arc::new(Mutex::new(Vec::new()));
                let r = reg.clone();
                let started = std::thread::Builder::new().name("hark-sqlite-peer".into()).spawn(move || run(r));
                if started.is_err() {
                    return;
                }
                *g = Some((std::process::id(), reg.clone()));
                reg
            }
        }
    };
    let Ok(mut list) = reg.lock() else { return };
    match list.iter_mut().find(|w| w.db == db && w.queue == queue) {
        Some(w) => w.users += 1,
        None => list.push(Watched { db, queue, users: 1, conns: None, pending: None }),
    }
}

/// A connection stopped using (db, queue).
pub(crate) fn unwatch(db: &PathBuf, queue: &PathBuf) {
    let reg = match REGISTRY.lock() {
        Ok(g) => match &*g {
            Some((pid, reg)) if *pid == std::process::id() => reg.clone(),
            _ => return,
        },
        Err(_) => return,
    };
    let Ok(mut list) = reg.lock() else { return };
    if let Some(i) = list.iter().position(|w| &w.db == db && &w.queue == queue) {
        list[i].users -= 1;
        if list[i].users == 0 {
            list.swap_remove(i);
        }
    }
}

fn run(reg: Registry) {
    loop {
        std::thread::sleep(PERIOD);
        let Ok(mut list) = reg.lock() else { return };
        for w in list.iter_mut() {
            if look(w).is_err() {
                // Closed, moved or broken: open anew at the next look.
                w.conns = None;
                w.pending = None;
            }
        }
    }
}

fn look(w: &mut Watched) -> Result<(), Box<dyn std::error::Error>> {
    if w.conns.is_none() {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
        let db = Connection::open_with_flags(&w.db, flags)?;
        db.busy_timeout(Duration::from_secs(1))?;
        let h = hark::Connection::open(&w.queue)?;
        w.conns = Some((db, h));
    }
    let (db, h) = w.conns.as_mut().expect("opened");
    // This thread's own connection: its statements are prepared for each use (a look every
    // PERIOD), so closing it never finds one open.
    let stmts = crate::cache::Stmts::new();
    // SAFETY: the handle of a connection only this thread uses.
    let raw = unsafe { db.handle() };
    let Some(key) = crate::outbox::read_key(raw, &stmts)? else { return Ok(()) };
    let mark = h.published_mark(key)?;
    let max: Option<i64> =
        db.query_row("SELECT max(id) FROM hark_outbox WHERE queue = ?1", [h.queue().queue_id() as i64], |r| r.get(0))?;
    let max = max.unwrap_or(0) as u64;
    match w.pending {
        Some(p) if mark < p => {
            crate::outbox::publish_rows(raw, &stmts, h, key, &mut Default::default())?;
            w.pending = None;
        }
        _ => w.pending = (max > mark).then_some(max),
    }
    Ok(())
}
