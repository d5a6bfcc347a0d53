//! `hark._hark`: the native half of the Python package.
//!
//! It is deliberately thin: one class, [`Session`], that wraps a [`hark::Connection`] and exposes
//! the operations the pure-Python package (`hark/_connection.py`) builds its psycopg-shaped API
//! on. Everything a user sees (`hark.Connection`, `hark.Notify`, transactions, the generators)
//! lives in Python; everything that touches the queue lives in `core/`.
//!
//! Threads: a `Session` may be shared by several Python threads; `lock.rs` says how that stays
//! free of deadlocks with the GIL (no Python code runs while a thread holds the connection, and
//! no thread waits for the connection while holding the GIL).

mod errors;
mod lock;
mod params;
mod session;

use pyo3::prelude::*;

#[pymodule]
fn _hark(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<session::Session>()?;
    m.add("MAX_CHANNEL_LEN", hark::MAX_CHANNEL_LEN)?;
    m.add("DEFAULT_MAX_PAYLOAD", hark::DEFAULT_MAX_PAYLOAD)?;
    m.add("DEFAULT_MAX_QUEUE_SIZE", hark::DEFAULT_MAX_QUEUE_SIZE)?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(default_dir, m)?)?;
    m.add_function(wrap_pyfunction!(params::convert_pyformat, m)?)?;
    Ok(())
}

/// The directory `connect()` uses when none is given: `$HARK_DIR`, else
/// `/dev/shm/hark-<uid>` (`/tmp/hark-<uid>` without `/dev/shm`).
#[pyfunction]
fn default_dir() -> std::path::PathBuf {
    hark::default_dir()
}
