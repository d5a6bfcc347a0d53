//! Test hooks that stop a process at a chosen point of the protocol, so that crash and stall
//! tests can kill or hold it exactly there. Compiled only with the `test-hooks` cargo feature:
//! a release build reads no `HARK_FAULT_*` variable and contains none of these names.
//!
//! `HARK_FAULT_PARK_IN_APPEND=<file>`: an append writes `<file>` and sleeps for ever after
//! writing its entries and before publishing them, holding the writer lock.
//! `HARK_FAULT_PARK_IN_TAIL=<file>`: a tail advance does the same while holding the tail lock.
//! `HARK_FAULT_PARK_IN_MARK=<file>` and `HARK_FAULT_PARK_AFTER_HEAD=<file>`: an append that
//! advances a publication mark (`queue/marks.rs`) does the same halfway through rewriting the
//! mark, and just after its head store, before the mark's `committed` value follows.
//! `HARK_FAULT_PARK_IN_CUT=<file>`: a change of a slot's gap record (a cut, `queue/cut.rs`) does
//! the same halfway through applying its journal (the count stored, the floor not), holding the
//! tail lock.
//! `HARK_FAULT_PARK_IN_NAMES=<file>`: a session writing its slot's channels and names
//! (`queue/text.rs`) does the same halfway, the hashes written and the names not, the slot's
//! channel generation odd (holding the tail lock when it attaches to a subscription).
//! `HARK_FAULT_PANIC_ON_SQL=<text>`: executing exactly that SQL text panics, so that the bindings'
//! panic policy (report an error, close the session, keep the process) can be tested.

/// Where a process can be parked.
#[derive(Clone, Copy)]
pub enum Point {
    Append,
    Tail,
    MarkPending,
    AfterHead,
    Cut,
    Names,
}

#[cfg(feature = "test-hooks")]
pub fn park(point: Point) {
    use std::path::PathBuf;
    use std::sync::OnceLock;
    static APPEND: OnceLock<Option<PathBuf>> = OnceLock::new();
    static TAIL: OnceLock<Option<PathBuf>> = OnceLock::new();
    static MARK: OnceLock<Option<PathBuf>> = OnceLock::new();
    static AFTER_HEAD: OnceLock<Option<PathBuf>> = OnceLock::new();
    static CUT: OnceLock<Option<PathBuf>> = OnceLock::new();
    static NAMES: OnceLock<Option<PathBuf>> = OnceLock::new();
    let (cell, var) = match point {
        Point::Append => (&APPEND, "HARK_FAULT_PARK_IN_APPEND"),
        Point::Tail => (&TAIL, "HARK_FAULT_PARK_IN_TAIL"),
        Point::MarkPending => (&MARK, "HARK_FAULT_PARK_IN_MARK"),
        Point::AfterHead => (&AFTER_HEAD, "HARK_FAULT_PARK_AFTER_HEAD"),
        Point::Cut => (&CUT, "HARK_FAULT_PARK_IN_CUT"),
        Point::Names => (&NAMES, "HARK_FAULT_PARK_IN_NAMES"),
    };
    if let Some(marker) = cell.get_or_init(|| std::env::var_os(var).map(PathBuf::from)) {
        let _ = std::fs::write(marker, std::process::id().to_string());
        loop {
            std::thread::sleep(std::time::Duration::from_secs(3600));
        }
    }
}

#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn park(_point: Point) {}

#[cfg(feature = "test-hooks")]
pub fn panic_on_sql(sql: &str) {
    if std::env::var_os("HARK_FAULT_PANIC_ON_SQL").is_some_and(|v| v == sql) {
        panic!("injected panic (HARK_FAULT_PANIC_ON_SQL)");
    }
}

#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn panic_on_sql(_sql: &str) {}

/// Where a read of the queue can run a test's code (`set_read_hook`): once it has fixed where it
/// starts and what it will read, and once it has published the position it reached.
/// `Start` comes first, before the read looks at where it starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadPoint {
    /// After the gaps met before the read are taken.
    Start,
    Reading,
    Published,
}

#[cfg(feature = "test-hooks")]
pub type ReadHook = Box<dyn FnMut(ReadPoint) + Send>;

#[cfg(feature = "test-hooks")]
static READ_HOOK: std::sync::Mutex<Option<ReadHook>> = std::sync::Mutex::new(None);

/// Runs `hook` at every [`ReadPoint`] of every session of this process until it is replaced or
/// cleared (`None`), so that a test can make another session cut this one in mid-read. The hook
/// is not re-entered: reads it makes itself run without it.
#[cfg(feature = "test-hooks")]
pub fn set_read_hook(hook: Option<ReadHook>) {
    *READ_HOOK.lock().unwrap_or_else(|e| e.into_inner()) = hook;
}

#[cfg(feature = "test-hooks")]
pub fn read_point(point: ReadPoint) {
    let taken = READ_HOOK.lock().unwrap_or_else(|e| e.into_inner()).take();
    if let Some(mut hook) = taken {
        hook(point);
        let mut slot = READ_HOOK.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_none() {
            *slot = Some(hook);
        }
    }
}

#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub fn read_point(_point: ReadPoint) {}
